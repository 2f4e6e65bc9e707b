//! The DynamoDB JSON decoder: wrapped and bare items straight into the item model, the key
//! by the schema, and every kind of bad line rejected alone with its line and byte offset.

use super::ddbjson::DynamoDbJsonDecoder;
use crate::contract::schema::Schema;
use crate::ingest::decode::{Decoded, DecodedObject};
use crate::ingest::item::Value;

/// Partition key `id` (N), sort key `at` (S).
fn schema() -> Schema {
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "columns": [{"name": "id", "type": "number"}, {"name": "at", "type": "string"}],
        "partition_key": ["id"],
        "sort_key": ["at"],
    }))
    .unwrap();
    schema.validate().unwrap();
    schema
}

async fn decode_with(text: &[u8], cap: usize) -> DecodedObject {
    let mut decoder = DynamoDbJsonDecoder::open_at(text, 0, &schema(), cap);
    let mut out = DecodedObject::default();
    while let Some(decoded) = decoder.next().await.unwrap() {
        match decoded {
            Decoded::Row(row) => out.rows.push(row),
            Decoded::Reject(reject) => out.rejects.push(reject),
        }
    }
    out
}

#[tokio::test]
async fn wrapped_and_bare_items_land_as_they_are_keyed_by_the_schema() {
    let text = concat!(
        "\u{feff}",
        r#"{"Item":{"id":{"N":"01"},"at":{"S":"x"},"tags":{"SS":["a"]},"m":{"M":{"n":{"N":"1.50"}}}}}"#,
        "\r\n\n",
        r#"{"id":{"N":"2"},"at":{"S":"y"},"Item":{"S":"an attribute named Item"}}"#,
        "\n",
        r#"{"Item":{"id":{"N":"3"},"at":{"S":"z"}}}"#,
    );
    let decoded = decode_with(text.as_bytes(), 1 << 20).await;
    assert!(decoded.rejects.is_empty(), "{:?}", decoded.rejects);
    let rows = &decoded.rows;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].key, ("1".into(), "x".into()));
    assert_eq!(rows[0].item["id"], Value::N("1".into()));
    assert_eq!(rows[0].item.len(), 4);
    assert_eq!(
        rows[0].item["m"],
        Value::M([("n".to_owned(), Value::N("1.5".into()))].into())
    );
    assert_eq!(
        rows[1].item["Item"],
        Value::S("an attribute named Item".into())
    );
    assert_eq!((rows[1].line, rows[2].line), (3, 4));
}

#[tokio::test]
async fn every_kind_of_bad_line_is_rejected_alone_with_its_line_offset_and_reason() {
    let good = r#"{"Item":{"id":{"N":"1"},"at":{"S":"a"}}}"#;
    let bad = [
        (r#"{"Item":{"id":{"N":"1"},"at":"#, "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            r#"{"Item":{"id":{"N":"1"},"at":{"Q":"a"}}}"#,
            "attribute at: unknown type descriptor \"Q\"",
        ),
        (
            r#"{"Item":{"id":{"N":"1e200"},"at":{"S":"a"}}}"#,
            "number overflow",
        ),
        (
            r#"{"Item":{"id":{"N":"1"},"at":{"S":"a"},"s":{"NS":["1","01"]}}}"#,
            "duplicate element",
        ),
        (
            r#"{"Item":{"id":{"S":"1"},"at":{"S":"a"}}}"#,
            "partition key attribute \"id\" is not of the key's type N",
        ),
        (
            r#"{"Item":{"id":{"N":"1"}}}"#,
            "no sort key attribute \"at\"",
        ),
        (r#"{"Item":{"id":{"N":"1"},"at":{"S":""}}}"#, "empty"),
    ];
    let mut text = format!("{good}\n");
    for (line, _) in &bad {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(good);
    let decoded = decode_with(text.as_bytes(), 1 << 20).await;
    assert_eq!(decoded.rows.len(), 2);
    assert_eq!(decoded.rejects.len(), bad.len());
    let mut offset = good.len() as u64 + 1;
    for (i, ((line, why), reject)) in bad.iter().zip(&decoded.rejects).enumerate() {
        assert!(reject.reason.contains(why), "{} lacks {why}", reject.reason);
        assert_eq!(reject.line, i as u64 + 2);
        assert_eq!(reject.byte_offset, Some(offset));
        assert_eq!(reject.raw, *line);
        offset += line.len() as u64 + 1;
    }
}

#[tokio::test]
async fn an_item_over_400_kb_and_a_line_over_the_cap_are_rejected_and_the_next_loads() {
    let big = "x".repeat(410 * 1024);
    let text = format!(
        "{{\"id\":{{\"N\":\"1\"}},\"at\":{{\"S\":\"a\"}},\"big\":{{\"S\":\"{big}\"}}}}\n\
         {{\"id\":{{\"N\":\"2\"}},\"at\":{{\"S\":\"a\"}},\"big\":{{\"S\":\"{}\"}}}}\n\
         {{\"id\":{{\"N\":\"3\"}},\"at\":{{\"S\":\"a\"}}}}\n",
        "y".repeat(200)
    );
    let decoded = decode_with(text.as_bytes(), 1 << 20).await;
    assert_eq!(decoded.rows.len(), 2);
    assert!(decoded.rejects[0].reason.contains("400 KB item limit"));
    let capped = decode_with(text.as_bytes(), 100).await;
    assert_eq!(capped.rows.len(), 1);
    assert_eq!(capped.rejects.len(), 2);
    assert!(capped.rejects[0].reason.contains("record cap"));
}

#[tokio::test]
async fn skip_passes_lines_untyped_and_counts_them() {
    let text = b"{\"id\":{\"N\":\"1\"},\"at\":{\"S\":\"a\"}}\nnot json\n{\"id\":{\"N\":\"3\"},\"at\":{\"S\":\"a\"}}\n";
    let mut decoder = DynamoDbJsonDecoder::open(&text[..], &schema());
    assert_eq!(decoder.skip(2).await.unwrap(), 2);
    assert_eq!(decoder.records(), 2);
    let Some(Decoded::Row(row)) = decoder.next().await.unwrap() else {
        panic!("the third line is a row");
    };
    assert_eq!(row.key.0, "3");
    assert_eq!(decoder.next_row(), text.len() as u64);
}

#[tokio::test]
async fn incremental_changes_put_new_images_delete_keys_and_reject_lines_with_neither() {
    let text = concat!(
        r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{"id":{"N":"1"},"at":{"S":"a"}},"NewImage":{"id":{"N":"1"},"at":{"S":"a"},"v":{"S":"new"}}}"#,
        "\n",
        r#"{"Metadata":{"WriteTimestampMicros":{"N":"2"}},"Keys":{"id":{"N":"2"},"at":{"S":"b"}},"OldImage":{"id":{"N":"2"},"at":{"S":"b"}}}"#,
        "\n",
        r#"{"Metadata":{"WriteTimestampMicros":{"N":"3"}}}"#,
        "\n",
    );
    let mut decoder = DynamoDbJsonDecoder::open(text.as_bytes(), &schema()).reading_changes();
    let mut out = Vec::new();
    while let Some(decoded) = decoder.next().await.unwrap() {
        out.push(decoded);
    }
    let [
        Decoded::Row(put),
        Decoded::Row(delete),
        Decoded::Reject(neither),
    ] = &out[..]
    else {
        panic!("{out:?}");
    };
    assert!(!put.delete && put.item["v"] == Value::S("new".into()));
    assert!(delete.delete && delete.item.len() == 2 && delete.key == ("2".into(), "b".into()));
    assert!(
        neither.reason.contains("neither NewImage nor Keys"),
        "{}",
        neither.reason
    );
}
