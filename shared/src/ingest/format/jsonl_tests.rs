//! The JSON Lines decoder: typing by the schema, nested values, exact numbers, and every kind
//! of bad line rejected alone with its line and byte offset.

use std::collections::BTreeMap;

use super::jsonl::JsonLinesDecoder;
use crate::contract::schema::Schema;
use crate::ingest::decode::{Decoded, DecodedObject};
use crate::ingest::item::Value;

fn schema(value: serde_json::Value) -> Schema {
    let schema: Schema = serde_json::from_value(value).unwrap();
    schema.validate().unwrap();
    schema
}

/// `id` (key), a number, an integer, a bool, a timestamp, a number set, a map, a list.
fn typed_schema() -> Schema {
    schema(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "price", "type": "number"},
            {"name": "qty", "type": "integer", "nullable": true},
            {"name": "ok", "type": "bool", "nullable": true},
            {"name": "at", "type": "timestamp", "nullable": true},
            {"name": "sizes", "type": "number_set", "nullable": true},
            {"name": "dims", "type": "map", "nullable": true},
            {"name": "history", "type": "list", "nullable": true},
            {"name": "label", "type": "string", "nullable": true},
        ],
    }))
}

async fn decode_with(text: &[u8], schema: &Schema, cap: usize) -> DecodedObject {
    let mut decoder = JsonLinesDecoder::open_capped(text, schema, cap).unwrap();
    let mut out = DecodedObject::default();
    while let Some(decoded) = decoder.next().await.unwrap() {
        match decoded {
            Decoded::Row(row) => out.rows.push(row),
            Decoded::Reject(reject) => out.rejects.push(reject),
        }
    }
    out
}

async fn decode(text: &str) -> DecodedObject {
    decode_with(text.as_bytes(), &typed_schema(), 1 << 20).await
}

fn n(text: &str) -> Value {
    Value::N(text.into())
}

fn s(text: &str) -> Value {
    Value::S(text.into())
}

#[tokio::test]
async fn fields_are_typed_by_the_schema_nested_values_stay_m_and_l_and_numbers_exact() {
    let decoded = decode(concat!(
        r#"{"id": "a", "price": 0.1, "qty": 7, "ok": true, "at": "2025-11-26 02:56:13 UTC", "#,
        r#""sizes": [1, 2.5], "dims": {"w": 12, "deep": {"x": [1, "two"]}}, "history": [{"p": 1.10}], "#,
        r#""big": 12345678901234567890123456789012345678, "extra": {"k": null}, "flag": false}"#,
        "\n",
        // Strings in typed columns are typed as the CSV text would be; a number in a string
        // column is its text.
        r#"{"id": "b", "price": " 21.50 ", "qty": "007", "ok": "0", "label": 12}"#,
        "\n",
    ))
    .await;
    assert!(decoded.rejects.is_empty(), "{:?}", decoded.rejects);
    let (a, b) = (&decoded.rows[0].item, &decoded.rows[1].item);
    assert_eq!(a["price"], n("0.1"));
    assert_eq!(a["qty"], n("7"));
    assert_eq!(a["ok"], Value::Bool(true));
    assert_eq!(a["at"], s("2025-11-26T02:56:13Z"));
    assert_eq!(a["sizes"], Value::Ns(vec!["1".into(), "2.5".into()]));
    let deep = BTreeMap::from([("x".into(), Value::L(vec![n("1"), s("two")]))]);
    assert_eq!(
        a["dims"],
        Value::M(BTreeMap::from([
            ("deep".into(), Value::M(deep)),
            ("w".into(), n("12")),
        ]))
    );
    assert_eq!(
        a["history"],
        Value::L(vec![Value::M(BTreeMap::from([("p".into(), n("1.1"))]))])
    );
    // Undeclared fields land under their own names as the JSON says, numbers exact.
    assert_eq!(a["big"], n("12345678901234567890123456789012345678"));
    assert_eq!(
        a["extra"],
        Value::M(BTreeMap::from([("k".into(), Value::Null)]))
    );
    assert_eq!(a["flag"], Value::Bool(false));
    assert_eq!(decoded.rows[0].key, ("a".into(), String::new()));
    assert_eq!(b["price"], n("21.5"));
    assert_eq!(b["qty"], n("7"));
    assert_eq!(b["ok"], Value::Bool(false));
    assert_eq!(b["label"], s("12"));
    assert!(
        !b.contains_key("at"),
        "an absent nullable field stores nothing"
    );
}

#[tokio::test]
async fn every_kind_of_bad_line_is_rejected_alone_with_its_line_and_byte_offset() {
    let lines = [
        r#"{"id": "ok1", "price": 1}"#,
        r#"{"id": "x", "price": 1"#,              // 2: invalid JSON
        r#"[1, 2]"#,                              // 3: not an object
        r#"42"#,                                  // 4: not an object
        r#"{"id": "y"}"#,                         // 5: a required field missing
        r#"{"price": 1}"#,                        // 6: the key missing
        r#"{"id": "z", "price": 1e200}"#,         // 7: over DynamoDB's number limit
        r#"{"id": "z", "price": {"a": 1}}"#,      // 8: an object in a number column
        r#"{"id": "z", "price": 1, "price": 2}"#, // 9: a field twice
        r#"{"id": "z", "price": "cheap"}"#,       // 10: a string that is no number
        r#"{"id": "z", "price": 1, "sizes": [1, 1.0]}"#, // 11: a duplicate in a set
        r#"{"id": "ok2", "price": 2}"#,
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let decoded = decode(&text).await;
    let ids: Vec<&str> = decoded.rows.iter().map(|r| r.key.0.as_str()).collect();
    assert_eq!(ids, ["ok1", "ok2"]);
    let starts: Vec<u64> = lines
        .iter()
        .scan(0u64, |at, l| {
            let start = *at;
            *at += l.len() as u64 + 1;
            Some(start)
        })
        .collect();
    let expected = [
        (2, "invalid JSON"),
        (3, "expected a JSON object"),
        (4, "expected a JSON object"),
        (5, "column price: required field missing"),
        (6, "column id: required field missing"),
        (7, "number overflow"),
        (8, "column price: the field is an object"),
        (9, "names one key twice"),
        (10, "column price: "),
        (11, "column sizes: duplicate element in a set"),
    ];
    assert_eq!(
        decoded.rejects.len(),
        expected.len(),
        "{:?}",
        decoded.rejects
    );
    for (reject, (line, reason)) in decoded.rejects.iter().zip(expected) {
        assert_eq!(reject.line, line, "{reject:?}");
        assert_eq!(
            reject.byte_offset,
            Some(starts[line as usize - 1]),
            "{reject:?}"
        );
        assert!(reject.reason.contains(reason), "{line}: {}", reject.reason);
        assert_eq!(reject.raw, lines[line as usize - 1]);
    }
}

#[tokio::test]
async fn invalid_utf8_and_an_item_over_400_kb_are_rejected_alone() {
    let mut text = b"{\"id\": \"\xff\", \"price\": 1}\n".to_vec();
    let big = "x".repeat(410_000);
    text.extend_from_slice(
        format!("{{\"id\": \"b\", \"price\": 1, \"label\": \"{big}\"}}\n").as_bytes(),
    );
    text.extend_from_slice(b"{\"id\": \"c\", \"price\": 1}\n");
    let decoded = decode_with(&text, &typed_schema(), 1 << 20).await;
    assert_eq!(decoded.rows.len(), 1);
    assert_eq!(decoded.rejects[0].reason, "invalid UTF-8");
    assert_eq!(decoded.rejects[1].line, 2);
    assert!(
        decoded.rejects[1].reason.contains("400 KB"),
        "{}",
        decoded.rejects[1].reason
    );
    assert!(decoded.rejects[1].raw.len() <= crate::ingest::decode::MAX_RAW_BYTES);
}

#[tokio::test]
async fn a_line_over_the_cap_is_rejected_with_flat_memory_and_the_next_loads() {
    // 8 MiB with no newline until the end, through a 1 KiB cap: never buffered.
    let mut text = b"{\"id\": \"big\", \"label\": \"".to_vec();
    text.resize(8 << 20, b'x');
    text.extend_from_slice(b"\"}\n{\"id\": \"next\", \"price\": 3}\n{\"id\": \"open\"");
    let schema = typed_schema();
    let mut decoder = JsonLinesDecoder::open_capped(&text[..], &schema, 1024).unwrap();
    let Some(Decoded::Reject(reject)) = decoder.next().await.unwrap() else {
        panic!("the long line is a reject");
    };
    assert!(
        decoder.buffered_capacity() <= 1024,
        "{}",
        decoder.buffered_capacity()
    );
    assert_eq!((reject.line, reject.byte_offset), (1, Some(0)));
    assert!(reject.reason.contains("record cap"), "{}", reject.reason);
    let Some(Decoded::Row(row)) = decoder.next().await.unwrap() else {
        panic!("the next line loads");
    };
    assert_eq!((row.key.0.as_str(), row.line), ("next", 2));
    // The last line has no newline and is invalid: rejected, then the end.
    assert!(matches!(decoder.next().await.unwrap(), Some(Decoded::Reject(r)) if r.line == 3));
    assert!(decoder.next().await.unwrap().is_none());
}

#[tokio::test]
async fn blank_lines_crlf_and_a_bom_keep_exact_lines_and_offsets() {
    let text =
        "\u{feff}{\"id\": \"a\", \"price\": 1}\r\n\r\n   \n{\"id\": \"b\", \"price\": \"x\"}\r\n";
    let decoded = decode(text).await;
    assert_eq!(decoded.rows.len(), 1);
    assert_eq!(decoded.rows[0].key.0, "a");
    assert_eq!(decoded.rejects[0].line, 4);
    assert_eq!(decoded.rejects[0].byte_offset, Some(34));
    assert_eq!(decoded.rejects[0].raw, "{\"id\": \"b\", \"price\": \"x\"}");
    assert_eq!(decode("").await, DecodedObject::default());
    assert_eq!(decode("\n \r\n").await, DecodedObject::default());
}

#[tokio::test]
async fn skip_resumes_after_the_lines_already_loaded() {
    let text = "{\"id\": \"a\", \"price\": 1}\n\n{\"id\": \"b\", \"price\": 1}\n{\"id\": \"c\", \"price\": 1}\n";
    let schema = typed_schema();
    let mut decoder = JsonLinesDecoder::open(text.as_bytes(), &schema).unwrap();
    assert_eq!(decoder.skip(2).await.unwrap(), 2);
    assert_eq!((decoder.records(), decoder.next_row()), (2, 49));
    let Some(Decoded::Row(row)) = decoder.next().await.unwrap() else {
        panic!("row c");
    };
    assert_eq!((row.key.0.as_str(), row.line, row.offset), ("c", 4, 49));
    assert_eq!(decoder.skip(5).await.unwrap(), 0);
    assert_eq!(decoder.records(), 3);
}

#[tokio::test]
async fn mapping_and_key_rules_apply_per_line() {
    let schema = schema(serde_json::json!({
        "partition_key": ["pk"],
        "sort_key": ["site", "n"],
        "columns": [
            {"name": "site", "type": "string"},
            {"name": "n", "type": "integer"},
            {"name": "place", "type": "string", "nullable": true},
        ],
        "attributes": {"pk": {"template": "SITE#{site}"}, "where": {"from": "place"}},
        "unmapped": "keep",
    }));
    let text = concat!(
        r#"{"site": "kyiv", "n": 2, "place": "centre", "note": "x"}"#,
        "\n",
        r#"{"site": "lviv", "n": 1, "pk": "forged"}"#,
        "\n",
        r#"{"site": "odesa", "n": 3, "": 1}"#,
        "\n",
    );
    let decoded = decode_with(text.as_bytes(), &schema, 1 << 20).await;
    assert_eq!(decoded.rows.len(), 1, "{:?}", decoded.rejects);
    let item = &decoded.rows[0].item;
    assert_eq!(item["pk"], s("SITE#kyiv"));
    assert_eq!(item["where"], s("centre"));
    assert_eq!(item["note"], s("x"));
    assert!(
        !item.contains_key("place"),
        "renamed: not under its own name"
    );
    let reasons: Vec<&str> = decoded.rejects.iter().map(|r| r.reason.as_str()).collect();
    assert!(
        reasons[0].contains("field pk: has the name of a mapped"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("cannot be empty"), "{reasons:?}");
}
