//! Typing one row: one test per kind of bad value, and the shapes strings keep.

use super::*;
use crate::contract::schema::{Column, ColumnType};

fn record(fields: &[&str]) -> Record {
    Record::from_fields(fields)
}

fn sensor(header: &[&str]) -> RowTyper {
    RowTyper::new(&Schema::sensor(), &record(header)).unwrap()
}

const HEADER: [&str; 4] = ["timestamp", "temp", "humidity", "measure_point"];
const T: &str = "2025-11-26 02:56:13 UTC";

/// The reason a sensor row is rejected with.
fn reason(fields: &[&str]) -> String {
    sensor(&HEADER)
        .type_row(&record(fields))
        .unwrap_err()
        .to_string()
}

fn column(name: &str, kind: ColumnType, nullable: bool) -> Column {
    Column {
        nullable,
        ..Column::new(name, kind)
    }
}

/// site (S), day (timestamp), seq (integer), ok (bool, nullable), reading (number, nullable);
/// key (site; day, seq).
fn meter_schema() -> Schema {
    Schema {
        columns: vec![
            column("site", ColumnType::String, false),
            column("day", ColumnType::Timestamp, false),
            column("seq", ColumnType::Integer, false),
            column("ok", ColumnType::Bool, true),
            column("reading", ColumnType::Number, true),
        ],
        partition_key: vec!["site".into()],
        sort_key: vec!["day".into(), "seq".into()],
        ..Schema::sensor()
    }
}

#[test]
fn a_seed_row_becomes_a_typed_keyed_item() {
    let row = sensor(&HEADER)
        .type_row(&record(&[T, "19.8", "59.1", "Kyiv_18"]))
        .unwrap();
    assert_eq!(row.key, ("Kyiv_18".into(), "2025-11-26T02:56:13Z".into()));
    assert_eq!(row.item["temp"], Value::N("19.8".into()));
    assert_eq!(row.item["humidity"], Value::N("59.1".into()));
    assert_eq!(
        row.item["timestamp"],
        Value::S("2025-11-26T02:56:13Z".into())
    );
    assert_eq!(row.item["measure_point"], Value::S("Kyiv_18".into()));
    assert_eq!(row.item.len(), 4);
}

#[test]
fn extra_columns_are_kept_as_strings_and_order_does_not_matter() {
    let typer = sensor(&["note", "measure_point", "humidity", "timestamp", "temp"]);
    let row = typer
        .type_row(&record(&[
            "  spaced ",
            "Lviv",
            " 60 ",
            "2025-01-02T03:04:05+02:00",
            "-3e2",
        ]))
        .unwrap();
    assert_eq!(row.item["note"], Value::S("  spaced ".into()));
    assert_eq!(
        row.item["timestamp"],
        Value::S("2025-01-02T01:04:05Z".into())
    );
    assert_eq!(row.item["temp"], Value::N("-300".into()));
    assert_eq!(
        row.item["humidity"],
        Value::N("60".into()),
        "numbers are trimmed"
    );
    let empty_extra = typer
        .type_row(&record(&["", "Lviv", "60", "2025-01-02T03:04:05Z", "1"]))
        .unwrap();
    assert!(!empty_extra.item.contains_key("note"));
}

#[test]
fn strings_land_byte_for_byte_padded_whitespace_only_newline_only_and_crlf() {
    let typer = sensor(&["timestamp", "temp", "humidity", "measure_point", "note"]);
    for shape in ["  x ", "   ", "\n", "\n\n", "a\r\nb", "\r\n", "\t"] {
        let row = typer
            .type_row(&record(&[T, "1", "1", shape, shape]))
            .unwrap();
        assert_eq!(row.item["note"], Value::S(shape.into()), "{shape:?}");
        assert_eq!(
            row.item["measure_point"],
            Value::S(shape.into()),
            "{shape:?}"
        );
        assert_eq!(row.key.0, shape, "{shape:?}");
    }
    // Padding around a timestamp, number or bool is not part of its value.
    let row = typer
        .type_row(&record(&[&format!(" {T}\t"), " 1.5 ", "\n2\n", "K", ""]))
        .unwrap();
    assert_eq!(
        row.item["timestamp"],
        Value::S("2025-11-26T02:56:13Z".into())
    );
    assert_eq!(row.item["humidity"], Value::N("2".into()));
}

#[test]
fn wrong_field_counts() {
    assert_eq!(reason(&["a", "b"]), "expected 4 fields, found 2");
    assert_eq!(
        reason(&[T, "1", "1", "K", "extra"]),
        "expected 4 fields, found 5"
    );
}

#[test]
fn invalid_utf8() {
    let typer = sensor(&HEADER);
    let bad = Record::from_fields(&[T.as_bytes(), b"1", b"1", &[b'K', 0xff]]);
    assert_eq!(
        typer.type_row(&bad).unwrap_err().to_string(),
        "column measure_point: invalid UTF-8"
    );
}

#[test]
fn unparseable_numbers_nan_and_infinity() {
    for bad in ["hot", "NaN", "inf", "0x10", "1_000", "1,5"] {
        assert_eq!(
            reason(&[T, bad, "1", "K"]),
            "column temp: invalid number (expected [+-]digits[.digits][e[+-]digits])",
            "{bad}"
        );
    }
}

#[test]
fn numbers_past_dynamodb_s_range_are_rejected_naming_the_limit() {
    let overflow = reason(&[T, "1e200", "1", "K"]);
    assert!(
        overflow.starts_with("column temp: number overflow"),
        "{overflow}"
    );
    assert!(overflow.contains("E+125"), "{overflow}");
    assert!(reason(&[T, "9e999", "1", "K"]).contains("overflow"));
    let underflow = reason(&[T, "1", "1e-200", "K"]);
    assert!(
        underflow.starts_with("column humidity: number underflow"),
        "{underflow}"
    );
    assert!(underflow.contains("1E-130"), "{underflow}");
    assert_eq!(
        reason(&[T, &"1".repeat(39), "1", "K"]),
        "column temp: number has 39 significant digits, more than DynamoDB's 38"
    );
}

#[test]
fn negative_zero_and_leading_zeros_are_one_value_and_one_key() {
    let schema = Schema {
        columns: vec![
            column("id", ColumnType::Number, false),
            column("v", ColumnType::Number, false),
        ],
        partition_key: vec!["id".into()],
        sort_key: vec![],
        ..Schema::sensor()
    };
    let typer = RowTyper::new(&schema, &record(&["id", "v"])).unwrap();
    let key = |id: &str| typer.type_row(&record(&[id, "-0"])).unwrap();
    assert_eq!(key("007").key.0, "7");
    assert_eq!(key("7.000").key.0, key("+7").key.0);
    assert_eq!(key("-0").key.0, "0");
    assert_eq!(
        key("1").item["v"],
        Value::N("0".into()),
        "negative zero is zero"
    );
}

#[test]
fn bad_integers_bools_and_timestamps() {
    let typer = RowTyper::new(&meter_schema(), &record(&["seq", "site", "day", "ok"])).unwrap();
    let reason = |fields: [&str; 4]| typer.type_row(&record(&fields)).unwrap_err().to_string();
    assert_eq!(
        reason(["x", "A", T, ""]),
        "column seq: invalid integer (expected a 64-bit integer)"
    );
    assert_eq!(
        reason(["9223372036854775808", "A", T, ""]),
        "column seq: invalid integer (expected a 64-bit integer)"
    );
    assert_eq!(
        reason(["1", "A", T, "maybe"]),
        "column ok: invalid bool (true/false/1/0)"
    );
    let timestamp = reason(["1", "A", "2025-02-30 00:00:00 UTC", ""]);
    assert!(
        timestamp.starts_with("column day: invalid timestamp"),
        "{timestamp}"
    );
    assert!(
        !timestamp.contains("2025-02-30"),
        "no field values in reasons: {timestamp}"
    );
}

#[test]
fn empty_keys_and_empty_non_nullable_values() {
    assert_eq!(
        reason(&[T, "1", "1", ""]),
        "column measure_point: empty key field"
    );
    assert_eq!(
        reason(&[T, " ", "1", "K"]),
        "column temp: empty value in a non-nullable column"
    );
    assert_eq!(
        reason(&["  ", "1", "1", "K"]),
        "column timestamp: empty key field"
    );
}

#[test]
fn a_value_under_a_column_with_no_name_is_rejected_an_empty_one_is_not() {
    // `a,b,c,d,` : a trailing comma in the header.
    let typer = sensor(&["timestamp", "temp", "humidity", "measure_point", ""]);
    let row = typer.type_row(&record(&[T, "1", "1", "K", ""])).unwrap();
    assert!(!row.item.contains_key(""));
    let err = typer
        .type_row(&record(&[T, "1", "1", "K", "x"]))
        .unwrap_err();
    assert_eq!(
        err,
        RowError::Column {
            column: "#5 (no name in the header)".into(),
            problem: ValueError::Unnamed
        }
    );
}

#[test]
fn key_sizes_are_dynamodb_s() {
    let typer = sensor(&HEADER);
    assert!(
        typer
            .type_row(&record(&[T, "1", "1", &"k".repeat(2048)]))
            .is_ok()
    );
    assert_eq!(
        reason(&[T, "1", "1", &"k".repeat(2049)]),
        "partition key is 2049 bytes, over DynamoDB's 2048-byte limit"
    );
    // Bytes, not characters: 1,025 two-byte characters are 2,050 bytes.
    assert!(reason(&[T, "1", "1", &"é".repeat(1025)]).contains("2050 bytes"));
    // A composite sort key over 1,024 bytes once joined.
    let typer = RowTyper::new(&meter_schema(), &record(&["site", "day", "seq"])).unwrap();
    let long_site = "s".repeat(10);
    assert!(typer.type_row(&record(&[&long_site, T, "1"])).is_ok());
    let schema = Schema {
        columns: vec![
            column("p", ColumnType::String, false),
            column("a", ColumnType::String, false),
            column("b", ColumnType::String, false),
        ],
        partition_key: vec!["p".into()],
        sort_key: vec!["a".into(), "b".into()],
        ..Schema::sensor()
    };
    let typer = RowTyper::new(&schema, &record(&["p", "a", "b"])).unwrap();
    let half = "x".repeat(512);
    assert_eq!(
        typer.type_row(&record(&["p", &half, &half])).unwrap_err(),
        RowError::SortKeyTooLong { bytes: 1025 }
    );
}

#[test]
fn item_size_counts_names_and_number_storage_as_dynamodb_does() {
    let typer = sensor(&["timestamp", "temp", "humidity", "measure_point", "blob"]);
    // timestamp 9+20, temp 4+2 ("1"), humidity 8+2, measure_point 13+1, blob 4+n.
    let fixed = 29 + 6 + 10 + 14 + 4;
    let fits = "x".repeat(MAX_ITEM_BYTES - fixed);
    assert!(typer.type_row(&record(&[T, "1", "1", "K", &fits])).is_ok());
    let over = "x".repeat(MAX_ITEM_BYTES - fixed + 1);
    assert_eq!(
        typer
            .type_row(&record(&[T, "1", "1", "K", &over]))
            .unwrap_err(),
        RowError::ItemTooLarge {
            bytes: MAX_ITEM_BYTES + 1
        }
    );
}

#[test]
fn composite_key_parts_holding_the_separator_make_different_keys() {
    let schema = Schema {
        columns: vec![
            column("a", ColumnType::String, false),
            column("b", ColumnType::String, false),
        ],
        partition_key: vec!["a".into(), "b".into()],
        sort_key: vec![],
        ..Schema::sensor()
    };
    let typer = RowTyper::new(&schema, &record(&["a", "b"])).unwrap();
    let first = typer.type_row(&record(&["a#b", "c"])).unwrap();
    let second = typer.type_row(&record(&["a", "b#c"])).unwrap();
    assert_ne!(first.key, second.key);
    assert_eq!(first.item["a#b"], Value::S("a\\#b#c".into()));
    assert_eq!(keys::split_parts("a\\#b#c"), ["a#b", "c"]);
}

#[test]
fn user_schema_types_nullables_and_composite_keys() {
    let typer = RowTyper::new(&meter_schema(), &record(&["seq", "site", "day", "ok"])).unwrap();
    let row = typer
        .type_row(&record(&["007", "A", "2025-11-26 00:00:00 UTC", "TRUE"]))
        .unwrap();
    assert_eq!(row.key, ("A".into(), "2025-11-26T00:00:00Z#7".into()));
    assert_eq!(
        row.item["day#seq"],
        Value::S("2025-11-26T00:00:00Z#7".into())
    );
    assert_eq!(row.item["seq"], Value::N("7".into()));
    assert_eq!(row.item["ok"], Value::Bool(true));
    assert!(
        !row.item.contains_key("reading"),
        "nullable and absent from the header"
    );
    let no_ok = typer
        .type_row(&record(&["8", "A", "2025-11-26 00:00:00 UTC", ""]))
        .unwrap();
    assert!(!no_ok.item.contains_key("ok"));
}

#[test]
fn header_problems_reject_the_file() {
    let err = RowTyper::new(
        &Schema::sensor(),
        &record(&["timestamp", "temp", "measure_point"]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        HeaderError::MissingColumns {
            missing: vec!["humidity".into()],
            found: vec!["timestamp".into(), "temp".into(), "measure_point".into()],
        }
    );
    let err = RowTyper::new(&Schema::sensor(), &record(&["temp", "temp"])).unwrap_err();
    assert_eq!(err, HeaderError::DuplicateColumn("temp".into()));
    // A column named like the composite key attribute would be overwritten by it.
    let err =
        RowTyper::new(&meter_schema(), &record(&["site", "day", "seq", "day#seq"])).unwrap_err();
    assert_eq!(err, HeaderError::KeyAttributeClash("day#seq".into()));
    // A BOM (quoted first name included) and padding around header names are ignored.
    for first in ["\u{feff}timestamp", "\u{feff}\"timestamp\""] {
        assert!(
            RowTyper::new(
                &Schema::sensor(),
                &record(&[first, " temp", "humidity ", "measure_point"])
            )
            .is_ok()
        );
    }
}

#[tokio::test]
async fn a_bom_before_a_quoted_first_header_name_is_read_through_the_parser() {
    let text = "\u{feff}\"timestamp\",temp,humidity,measure_point\n2025-11-26 02:56:13 UTC,1,2,K\n";
    let decoded = crate::ingest::decode::decode_all(text.as_bytes(), &Schema::sensor())
        .await
        .unwrap();
    assert_eq!(decoded.rows.len(), 1);
    assert!(decoded.rejects.is_empty());
}

#[test]
fn rows_remember_where_they_were_but_compare_by_what_they_write() {
    let typer = sensor(&HEADER);
    let row = typer.type_row(&record(&[T, "1", "1", "K"])).unwrap();
    let mut moved = row.clone();
    moved.line = 99;
    moved.offset = 1234;
    assert_eq!(row, moved);
}

#[test]
fn reasons_never_hold_the_field_value_so_logs_cannot_either() {
    let typer = RowTyper::new(
        &meter_schema(),
        &record(&["site", "day", "seq", "ok", "reading"]),
    )
    .unwrap();
    let secret = "SECRET-4711";
    let rows = [
        [secret, T, "1", "", "SECRET-4711"],
        [secret, "SECRET-4711", "1", "", ""],
        [secret, T, "SECRET-4711", "", ""],
        [secret, T, "1", "SECRET-4711", ""],
        [secret, T, "1", "", "1e4711"],
    ];
    for fields in rows {
        let reason = typer.type_row(&record(&fields)).unwrap_err().to_string();
        assert!(!reason.contains("4711"), "{reason}");
    }
}
