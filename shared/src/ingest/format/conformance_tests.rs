//! The same assertions over every format, where they apply: equivalent objects in CSV and in
//! JSON Lines give the same items, and the same bad rows are rejected alone for the same
//! reason. (What differs by design: CSV checks required columns once in its header and
//! rejects the object; JSON Lines checks each line. DynamoDB JSON holds typed items, so its
//! objects are CSV's items written in it, and its bad lines break the same rules.)

use super::{Format, RowDecoder};
use crate::contract::messages::JobRequest;
use crate::contract::schema::Schema;
use crate::ingest::decode::{Decoded, DecodedObject};
use crate::ingest::item::typed_json;

async fn decode(format: Format, bytes: &[u8], schema: &Schema) -> DecodedObject {
    let mut decoder = RowDecoder::open(format, bytes, schema, 1 << 20)
        .await
        .unwrap();
    let mut out = DecodedObject::default();
    while let Some(decoded) = decoder.next().await.unwrap() {
        match decoded {
            Decoded::Row(row) => out.rows.push(row),
            Decoded::Reject(reject) => out.rejects.push(reject),
        }
    }
    out
}

/// Decodes both, and checks they agree: the same items and the same rejects' reasons.
async fn assert_same(schema: &Schema, csv: &str, jsonl: &str) -> DecodedObject {
    let from_csv = decode(Format::Csv, csv.as_bytes(), schema).await;
    let from_jsonl = decode(Format::JsonLines, jsonl.as_bytes(), schema).await;
    assert_eq!(from_csv.rows, from_jsonl.rows);
    let reasons =
        |d: &DecodedObject| -> Vec<String> { d.rejects.iter().map(|r| r.reason.clone()).collect() };
    assert_eq!(reasons(&from_csv), reasons(&from_jsonl));
    // CSV's line 1 is its header: the same row is one line further down.
    for (c, j) in from_csv.rejects.iter().zip(&from_jsonl.rejects) {
        assert_eq!(c.line, j.line + 1);
    }
    from_jsonl
}

#[tokio::test]
async fn the_sensor_rows_give_the_same_items_and_rejects_in_both_formats() {
    let csv = "timestamp,temp,humidity,measure_point\n\
               2025-11-26 02:56:13 UTC,21.50,59.1,Kyiv_18\n\
               2025-11-26 02:56:20 UTC,hot,58.2,Kyiv_18\n\
               2025-11-26 02:56:27 UTC,0.10,60,Lviv\n";
    let jsonl = concat!(
        r#"{"timestamp": "2025-11-26 02:56:13 UTC", "temp": 21.50, "humidity": "59.1", "measure_point": "Kyiv_18"}"#,
        "\n",
        r#"{"timestamp": "2025-11-26 02:56:20 UTC", "temp": "hot", "humidity": 58.2, "measure_point": "Kyiv_18"}"#,
        "\n",
        r#"{"measure_point": "Lviv", "humidity": 60, "temp": "0.10", "timestamp": "2025-11-26 02:56:27 UTC"}"#,
        "\n",
    );
    let decoded = assert_same(&Schema::sensor(), csv, jsonl).await;
    assert_eq!(decoded.rows.len(), 2);
    assert_eq!(decoded.rejects.len(), 1);
}

#[tokio::test]
async fn every_type_gives_the_same_item_in_both_formats() {
    let request: JobRequest = serde_json::from_str(include_str!(
        "../../../../events/prefix-job-every-type.json"
    ))
    .unwrap();
    let schema = request.schema.unwrap();
    let csv = "sku,listed_at,title,price,in_stock,updated,checksum,thumbnail,tags,sizes,signatures,history,dimensions,extra\n\
               1,2025-11-26 02:56:13 UTC,Lamp,19.90,true,2025-11-27T08:00:00Z,9f86d081,,home|light,\"[1, 2.5]\",\"[\"\"AAE=\"\", \"\"/w==\"\"]\",\"[{\"\"at\"\": 1, \"\"p\"\": 0.10}]\",\"{\"\"w\"\": 12, \"\"unit\"\": \"\"cm\"\"}\",\n\
               2,2025-11-26 02:56:14 UTC,Lamp,19.90,true,2025-11-27T08:00:00Z,9f86d081,,home,\"[1, 1.0]\",,,{},\n";
    let jsonl = concat!(
        r#"{"sku": 1, "listed_at": "2025-11-26 02:56:13 UTC", "title": "Lamp", "price": 19.90, "in_stock": true, "#,
        r#""updated": "2025-11-27T08:00:00Z", "checksum": "9f86d081", "thumbnail": null, "tags": ["home", "light"], "#,
        r#""sizes": [1, 2.5], "signatures": ["AAE=", "/w=="], "history": [{"at": 1, "p": 0.10}], "#,
        r#""dimensions": {"w": 12, "unit": "cm"}, "extra": null}"#,
        "\n",
        r#"{"sku": 2, "listed_at": "2025-11-26 02:56:14 UTC", "title": "Lamp", "price": "19.90", "in_stock": "true", "#,
        r#""updated": "2025-11-27T08:00:00Z", "checksum": "9f86d081", "tags": ["home"], "sizes": [1, 1.0], "dimensions": {}}"#,
        "\n",
    );
    let decoded = assert_same(&schema, csv, jsonl).await;
    assert_eq!(decoded.rows.len(), 1);
    assert!(decoded.rejects[0].reason.contains("duplicate element"));
}

/// The rows' items as DynamoDB JSON lines, `{"Item": ...}` (a full export's form).
fn as_dynamodb_json(decoded: &DecodedObject) -> String {
    decoded
        .rows
        .iter()
        .map(|row| format!("{{\"Item\":{}}}\n", typed_json(row.item.iter())))
        .collect()
}

#[tokio::test]
async fn csv_s_items_written_as_dynamodb_json_read_back_the_same_and_bad_lines_alone() {
    let request: JobRequest = serde_json::from_str(include_str!(
        "../../../../events/prefix-job-every-type.json"
    ))
    .unwrap();
    let schema = request.schema.unwrap();
    let csv = "sku,listed_at,title,price,in_stock,updated,checksum,thumbnail,tags,sizes,signatures,history,dimensions,extra\n\
               1,2025-11-26 02:56:13 UTC,Lamp,19.90,true,2025-11-27T08:00:00Z,9f86d081,,home|light,\"[1, 2.5]\",\"[\"\"AAE=\"\", \"\"/w==\"\"]\",\"[{\"\"at\"\": 1, \"\"p\"\": 0.10}]\",\"{\"\"w\"\": 12, \"\"unit\"\": \"\"cm\"\"}\",\n";
    let from_csv = decode(Format::Csv, csv.as_bytes(), &schema).await;
    assert_eq!(from_csv.rows.len(), 1);
    let mut lines = as_dynamodb_json(&from_csv);
    // The same bad values as CSV's rows: a number that is not one, a duplicate set element.
    let sku = from_csv.rows[0].item["sku"].to_typed_json();
    lines.push_str(&format!("{{\"sku\":{sku},\"price\":{{\"N\":\"hot\"}}}}\n"));
    lines.push_str(&format!(
        "{{\"sku\":{sku},\"sizes\":{{\"NS\":[\"1\",\"1.0\"]}}}}\n"
    ));
    lines.push_str(&as_dynamodb_json(&from_csv));
    let from_json = decode(Format::DynamoDbJson, lines.as_bytes(), &schema).await;
    assert_eq!(from_json.rows.len(), 2);
    assert_eq!(from_json.rows[0], from_csv.rows[0]);
    assert_eq!(from_json.rows[1], from_csv.rows[0]);
    let lines: Vec<u64> = from_json.rejects.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3]);
    let number = crate::ingest::typing::NumberError::Syntax.to_string();
    assert!(from_json.rejects[0].reason.contains(&number));
    assert!(
        from_json.rejects[1]
            .reason
            .contains("duplicate element in a set (element 2)")
    );
}

#[tokio::test]
async fn the_sensor_rows_read_the_same_from_dynamodb_json() {
    let csv = "timestamp,temp,humidity,measure_point\n\
               2025-11-26 02:56:13 UTC,21.50,59.1,Kyiv_18\n\
               2025-11-26 02:56:27 UTC,0.10,60,Lviv\n";
    let schema = Schema::sensor();
    let from_csv = decode(Format::Csv, csv.as_bytes(), &schema).await;
    let json = as_dynamodb_json(&from_csv);
    let from_json = decode(Format::DynamoDbJson, json.as_bytes(), &schema).await;
    assert_eq!(from_json.rows, from_csv.rows);
    assert_eq!(from_json.rows.len(), 2);
    assert!(from_json.rejects.is_empty());
}
