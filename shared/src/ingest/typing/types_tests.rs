//! Typing the types beyond strings, numbers and bools: binaries, sets, lists, maps, JSON,
//! epoch timestamps and typed keys, each rule DynamoDB enforces refusing the row alone.

use std::collections::BTreeMap;

use super::*;
use crate::contract::schema::{BinaryEncoding, Column, ColumnType, TimestampStore};

pub(super) fn record(fields: &[&str]) -> Record {
    Record::from_fields(fields)
}

pub(super) fn column(name: &str, kind: ColumnType) -> Column {
    Column::new(name, kind)
}

/// `id` (string key) and the given columns, validated.
pub(super) fn schema_with(columns: Vec<Column>) -> Schema {
    let mut all = vec![column("id", ColumnType::String)];
    all.extend(columns);
    let schema = Schema {
        columns: all,
        partition_key: vec!["id".into()],
        sort_key: vec![],
        ..Schema::sensor()
    };
    schema.validate().unwrap();
    schema
}

/// Types one row of `id` plus one field under `column`.
pub(super) fn one(column: Column, field: &str) -> Result<Value, RowError> {
    let name = column.name.clone();
    let schema = schema_with(vec![column]);
    let typer = RowTyper::new(&schema, &record(&["id", &name])).unwrap();
    let row = typer.type_row(&record(&["k", field]))?;
    Ok(row.item[&name].clone())
}

/// The reason `field` under `column` is rejected with.
pub(super) fn refused(column: Column, field: &str) -> String {
    one(column, field).unwrap_err().to_string()
}

pub(super) fn s(text: &str) -> Value {
    Value::S(text.into())
}

pub(super) fn n(text: &str) -> Value {
    Value::N(text.into())
}

pub(super) fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|t| (*t).to_owned()).collect()
}

pub(super) fn with(mut column: Column, f: impl FnOnce(&mut Column)) -> Column {
    f(&mut column);
    column
}

#[test]
fn binaries_decode_from_base64_by_default_or_hex() {
    let b64 = column("b", ColumnType::Binary);
    assert_eq!(
        one(b64.clone(), " aGVsbG8= "),
        Ok(Value::B(b"hello".to_vec()))
    );
    assert_eq!(one(b64.clone(), "AAE"), Ok(Value::B(vec![0, 1])));
    let hex = with(column("b", ColumnType::Binary), |c| {
        c.encoding = Some(BinaryEncoding::Hex)
    });
    assert_eq!(one(hex.clone(), "00FFab"), Ok(Value::B(vec![0, 255, 0xab])));
    assert_eq!(
        refused(b64, "not base64!"),
        "column b: invalid base64 (RFC 4648 standard alphabet, `=` padding optional)"
    );
    assert_eq!(
        refused(hex, "abc"),
        "column b: invalid hex (two hex digits per byte)"
    );
}

#[test]
fn sets_come_from_a_separator_or_a_json_array() {
    let ss = with(column("tags", ColumnType::StringSet), |c| {
        c.separator = Some("|".into())
    });
    assert_eq!(
        one(ss.clone(), " red|blue "),
        Ok(Value::Ss(texts(&[" red", "blue "]))),
        "string elements byte for byte, in written order"
    );
    let ns = column("ns", ColumnType::NumberSet);
    assert_eq!(
        one(ns.clone(), "[3, 1.50, -0]"),
        Ok(Value::Ns(texts(&["3", "1.5", "0"])))
    );
    let bs = with(column("bs", ColumnType::BinarySet), |c| {
        c.encoding = Some(BinaryEncoding::Hex);
        c.separator = Some(";".into());
    });
    assert_eq!(one(bs, "00;ff"), Ok(Value::Bs(vec![vec![0], vec![255]])));
    let json_ss = column("tags", ColumnType::StringSet);
    assert_eq!(
        one(json_ss, r#"["a","b"]"#),
        Ok(Value::Ss(texts(&["a", "b"])))
    );
}

#[test]
fn a_duplicate_in_a_set_and_an_empty_set_are_refused_naming_the_column() {
    let ss = with(column("tags", ColumnType::StringSet), |c| {
        c.separator = Some(",".into())
    });
    assert_eq!(
        refused(ss, "a,b,a"),
        "column tags: duplicate element in a set (element 3): DynamoDB refuses duplicates"
    );
    assert_eq!(
        refused(column("ns", ColumnType::NumberSet), "[1, 1.0]"),
        "column ns: duplicate element in a set (element 2): DynamoDB refuses duplicates"
    );
    assert_eq!(
        refused(column("ns", ColumnType::NumberSet), "[]"),
        "column ns: empty set: DynamoDB sets hold at least one element"
    );
    assert_eq!(
        refused(column("bs", ColumnType::BinarySet), r#"["AA==", "AA"]"#),
        "column bs: duplicate element in a set (element 2): DynamoDB refuses duplicates"
    );
}

#[test]
fn numbers_inside_sets_lists_and_maps_keep_dynamodb_s_limits() {
    let overflow = "number overflow: magnitude above DynamoDB's largest";
    let delimited = with(column("ns", ColumnType::NumberSet), |c| {
        c.separator = Some("|".into())
    });
    let reason = refused(delimited, "1|1e200");
    assert!(
        reason.starts_with("column ns: set element 2: ") && reason.contains(overflow),
        "{reason}"
    );
    let reason = refused(column("ns", ColumnType::NumberSet), "[1, 1e200]");
    assert!(
        reason.starts_with("column ns: set (no separator: a JSON array): a number in the JSON: ")
            && reason.contains(overflow),
        "{reason}"
    );
    let reason = refused(column("l", ColumnType::List), "[1, [2, 1e-200]]");
    assert!(
        reason.starts_with("column l: a number in the JSON: number underflow"),
        "{reason}"
    );
    let reason = refused(
        column("m", ColumnType::Map),
        r#"{"x": 123456789012345678901234567890123456789}"#,
    );
    assert!(reason.contains("39 significant digits"), "{reason}");
}

#[test]
fn lists_maps_and_json_nest_with_exact_numbers() {
    let list = one(
        column("l", ColumnType::List),
        r#"[1, "two", [true, null], {"k": 0.1}]"#,
    );
    assert_eq!(
        list,
        Ok(Value::L(vec![
            n("1"),
            s("two"),
            Value::L(vec![Value::Bool(true), Value::Null]),
            Value::M(BTreeMap::from([("k".into(), n("0.1"))])),
        ]))
    );
    let map = one(
        column("m", ColumnType::Map),
        r#" {"big": 99999999999999999999999999999999999999, "e": 1E-130} "#,
    );
    assert_eq!(
        map,
        Ok(Value::M(BTreeMap::from([
            ("big".into(), n("99999999999999999999999999999999999999")),
            ("e".into(), n("1E-130")),
        ])))
    );
    let json = column("j", ColumnType::Json);
    assert_eq!(one(json.clone(), "\"text\""), Ok(s("text")));
    assert_eq!(one(json.clone(), "-12.50"), Ok(n("-12.5")));
    assert_eq!(one(json.clone(), "false"), Ok(Value::Bool(false)));
    assert_eq!(one(json.clone(), "null"), Ok(Value::Null));
    assert_eq!(one(json, "[]"), Ok(Value::L(vec![])));
    assert_eq!(
        refused(column("l", ColumnType::List), "{}"),
        "column l: expected a JSON array"
    );
    assert_eq!(
        refused(column("m", ColumnType::Map), "[1]"),
        "column m: expected a JSON object"
    );
    assert_eq!(
        refused(column("m", ColumnType::Map), r#"{"a":1,"a":2}"#),
        "column m: a JSON object names one key twice (a map holds each key once)"
    );
    assert_eq!(
        refused(column("j", ColumnType::Json), "{'a': 1}"),
        "column j: invalid JSON at byte 1"
    );
}

#[test]
fn nesting_32_levels_is_kept_and_33_refused() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert!(one(column("l", ColumnType::List), &nested(32)).is_ok());
    assert_eq!(
        refused(column("l", ColumnType::List), &nested(33)),
        "column l: lists and maps nested more than DynamoDB's 32 levels"
    );
    let maps = |depth: usize| format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth));
    assert!(one(column("j", ColumnType::Json), &maps(32)).is_ok());
    assert!(refused(column("j", ColumnType::Json), &maps(33)).contains("32 levels"));
}

#[test]
fn epoch_timestamps_are_numbers_and_rfc3339_stays_the_default() {
    let at = "2025-11-26 02:56:13.5 UTC";
    assert_eq!(
        one(column("t", ColumnType::Timestamp), at),
        Ok(s("2025-11-26T02:56:13.500Z"))
    );
    let stored = |store| {
        with(column("t", ColumnType::Timestamp), |c| {
            c.store = Some(store)
        })
    };
    assert_eq!(
        one(stored(TimestampStore::EpochSeconds), at),
        Ok(n("1764125773.5"))
    );
    assert_eq!(
        one(stored(TimestampStore::EpochMillis), at),
        Ok(n("1764125773500"))
    );
    assert_eq!(
        one(stored(TimestampStore::Rfc3339), at),
        Ok(s("2025-11-26T02:56:13.500Z"))
    );
}

#[test]
fn nested_values_count_toward_the_400_kb_item_as_dynamodb_sizes_them() {
    // id 2+1; a list of one string: name 1 + 3 + (1 + n).
    let fixed = 3 + 1 + 3 + 1;
    let list = |n: usize| format!("[\"{}\"]", "x".repeat(n));
    let l = column("l", ColumnType::List);
    assert!(one(l.clone(), &list(MAX_ITEM_BYTES - fixed)).is_ok());
    assert_eq!(
        one(l, &list(MAX_ITEM_BYTES - fixed + 1)),
        Err(RowError::ItemTooLarge {
            bytes: MAX_ITEM_BYTES + 1
        })
    );
    // A binary counts its bytes, not its text: 300 KB of bytes is 400 KB of base64.
    let bytes = vec![7u8; 300 * 1024];
    let b = column("b", ColumnType::Binary);
    assert!(one(b, &binary::encode_base64(&bytes)).is_ok());
}

#[test]
fn empty_fields_of_new_types_follow_the_empty_value_policy() {
    let nullable = |kind| Column {
        nullable: true,
        ..column("c", kind)
    };
    for kind in [
        ColumnType::Binary,
        ColumnType::StringSet,
        ColumnType::List,
        ColumnType::Json,
    ] {
        let schema = schema_with(vec![nullable(kind)]);
        let typer = RowTyper::new(&schema, &record(&["id", "c"])).unwrap();
        let row = typer.type_row(&record(&["k", ""])).unwrap();
        assert!(!row.item.contains_key("c"), "{kind:?}: omitted by default");
        assert_eq!(
            refused(column("c", kind), ""),
            "column c: empty value in a non-nullable column"
        );
    }
}

#[test]
fn a_ttl_from_an_epoch_timestamp_column_is_its_whole_seconds() {
    let until = with(column("until", ColumnType::Timestamp), |c| {
        c.store = Some(TimestampStore::EpochMillis)
    });
    let mut schema = schema_with(vec![until]);
    schema.ttl = Some(crate::contract::schema::Ttl {
        attribute: "expires_at".into(),
        column: Some("until".into()),
        after_seconds: None,
    });
    schema.validate().unwrap();
    let typer = RowTyper::new(&schema, &record(&["id", "until"])).unwrap();
    let row = typer
        .type_row(&record(&["k", "2025-11-26T02:56:13.999Z"]))
        .unwrap();
    assert_eq!(row.item["until"], n("1764125773999"));
    assert_eq!(row.item["expires_at"], n("1764125773"));
}

#[test]
fn reasons_for_the_new_types_never_hold_the_value() {
    let secret = "SECRET-VALUE";
    for (kind, field) in [
        (ColumnType::Binary, format!("{secret}!")),
        (
            ColumnType::StringSet,
            format!(r#"["{secret}", "{secret}"]"#),
        ),
        (
            ColumnType::Map,
            format!(r#"{{"{secret}": 1, "{secret}": 2}}"#),
        ),
        (ColumnType::Json, format!("[\"{secret}\", {secret}]")),
        (ColumnType::NumberSet, format!("[\"{secret}\"]")),
    ] {
        let reason = refused(column("c", kind), &field);
        assert!(!reason.contains(secret), "{reason}");
        assert!(reason.starts_with("column c: "), "{reason}");
    }
}

/// The README's sample row under `events/prefix-job-every-type.json`'s schema.
#[test]
fn the_every_type_sample_event_types_its_sample_row() {
    let request: crate::contract::messages::JobRequest = serde_json::from_str(include_str!(
        "../../../../events/prefix-job-every-type.json"
    ))
    .unwrap();
    let schema = request.schema.unwrap();
    schema.validate().unwrap();
    let header = [
        "sku",
        "listed_at",
        "title",
        "price",
        "in_stock",
        "updated",
        "checksum",
        "thumbnail",
        "tags",
        "sizes",
        "signatures",
        "history",
        "dimensions",
        "extra",
    ];
    let typer = RowTyper::new(&schema, &record(&header)).unwrap();
    let row = typer
        .type_row(&record(&[
            "0042",
            "2025-11-26 02:56:13 UTC",
            "Desk lamp",
            "19.90",
            "true",
            "2025-11-27T08:00:00+02:00",
            "9f86d081",
            "iVBORw0KGgo=",
            "home|light",
            "[1, 2.5]",
            r#"["AAE=", "/w=="]"#,
            r#"[{"at": 1764125773, "price": 21.5}]"#,
            r#"{"w": 12, "h": 40, "unit": "cm"}"#,
            "",
        ]))
        .unwrap();
    let item = &row.item;
    assert_eq!(row.key, ("42".into(), "1764125773000".into()));
    assert_eq!(item["sku"], n("42"));
    assert_eq!(item["listed_at"], n("1764125773000"));
    assert_eq!(item["title"], s("Desk lamp"));
    assert_eq!(item["price"], n("19.9"));
    assert_eq!(item["in_stock"], Value::Bool(true));
    assert_eq!(item["updated"], s("2025-11-27T06:00:00Z"));
    assert_eq!(item["checksum"], Value::B(vec![0x9f, 0x86, 0xd0, 0x81]));
    assert_eq!(
        item["thumbnail"],
        Value::B(vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a])
    );
    assert_eq!(item["tags"], Value::Ss(texts(&["home", "light"])));
    assert_eq!(item["sizes"], Value::Ns(texts(&["1", "2.5"])));
    assert_eq!(item["signatures"], Value::Bs(vec![vec![0, 1], vec![255]]));
    assert_eq!(
        item["history"],
        Value::L(vec![Value::M(BTreeMap::from([
            ("at".into(), n("1764125773")),
            ("price".into(), n("21.5")),
        ]))])
    );
    assert_eq!(
        item["dimensions"],
        Value::M(BTreeMap::from([
            ("w".into(), n("12")),
            ("h".into(), n("40")),
            ("unit".into(), s("cm")),
        ]))
    );
    assert_eq!(item["extra"], Value::Null);
    assert_eq!(item.len(), header.len());
}
