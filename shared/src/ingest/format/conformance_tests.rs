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

/// Parquet's versions of the cases, where they apply. Parquet is planned by row group, never
/// by bytes, so "rows from any plan" means any split of its row groups into consecutive
/// tasks, each reading only the footer and its groups' column chunks; its rows have no byte
/// offsets, so a resume skips rows done and a reject names its row group and row. What does
/// not apply: a split in the middle of a record (a row never spans two tasks), the scan
/// (nothing to scan for), byte offsets, and the record cap's flat memory: a task's column
/// chunks are fetched whole before its first row (bounded by the plan's chunk bytes, one
/// large group alone excepted), so a huge value costs its own bytes, and it is rejected alone
/// by DynamoDB's item size limit, not by `max_record_bytes`.
mod parquet {
    use std::ops::Range;
    use std::sync::Arc;

    use ::parquet::basic::Compression;
    use ::parquet::data_type::{ByteArray, ByteArrayType};
    use ::parquet::file::properties::WriterProperties;
    use ::parquet::file::writer::SerializedFileWriter;
    use ::parquet::schema::parser::parse_message_type;
    use bytes::Bytes;

    use crate::contract::schema::Schema;
    use crate::ingest::decode::{Decoded, DecodedObject};
    use crate::ingest::format::parquet_rows::test_files::{
        Spec, every_type_file, every_type_schema, snappy, zstd,
    };
    use crate::ingest::format::parquet_rows::{ParquetDecoder, RowGroupSpan, Sparse, footer};

    fn drain(decoder: &mut ParquetDecoder) -> DecodedObject {
        let mut out = DecodedObject::default();
        while let Some(decoded) = decoder.next_decoded() {
            match decoded {
                Decoded::Row(row) => out.rows.push(row),
                Decoded::Reject(reject) => out.rejects.push(reject),
            }
        }
        out
    }

    /// The footer's start and the row groups' spans.
    fn layout(file: &[u8]) -> (u64, Vec<RowGroupSpan>) {
        let size = file.len() as u64;
        let length = footer::metadata_length(&file[file.len() - 8..], size).unwrap();
        let start = footer::footer_start(size, length);
        let meta = footer::decode(&file[start as usize..file.len() - 8]).unwrap();
        (start, footer::row_groups(&meta, size, None).unwrap())
    }

    /// A task's read: only the footer and groups `groups`' column chunks are held.
    fn task(file: &Bytes, groups: Range<usize>, schema: &Schema) -> ParquetDecoder {
        let (footer_start, spans) = layout(file);
        let mut source = Sparse::new(file.len() as u64);
        source.insert(footer_start, file.slice(footer_start as usize..));
        if !groups.is_empty() {
            let (start, end) = (spans[groups.start].start, spans[groups.end - 1].end);
            source.insert(start, file.slice(start as usize..end as usize));
        }
        ParquetDecoder::open(source, Some(groups), schema).unwrap()
    }

    fn sequential(file: &Bytes, schema: &Schema) -> DecodedObject {
        drain(&mut ParquetDecoder::open(Sparse::whole(file.clone()), None, schema).unwrap())
    }

    #[test]
    fn rows_from_any_split_into_row_group_tasks_equal_a_sequential_read() {
        let schema = every_type_schema();
        let mut spec = Spec::new(&[7, 1, 12, 5, 9], zstd());
        spec.bad_row = Some(9);
        let file = Bytes::from(every_type_file(&spec));
        let whole = sequential(&file, &schema);
        assert_eq!((whole.rows.len(), whole.rejects.len()), (33, 1));
        let groups = spec.groups.len();
        // Every split of the 5 groups into consecutive tasks: a cut or not after each group.
        for cuts in 0..1u32 << (groups - 1) {
            let mut bounds = vec![0];
            bounds.extend((1..groups).filter(|g| cuts & (1 << (g - 1)) != 0));
            bounds.push(groups);
            let mut planned = DecodedObject::default();
            for pair in bounds.windows(2) {
                let read = drain(&mut task(&file, pair[0]..pair[1], &schema));
                planned.rows.extend(read.rows);
                planned.rejects.extend(read.rejects);
            }
            assert_eq!(planned.rows, whole.rows, "tasks at {bounds:?}");
            assert_eq!(planned.rejects, whole.rejects, "tasks at {bounds:?}");
        }
    }

    #[test]
    fn a_task_resumed_after_any_row_yields_exactly_the_rest() {
        let schema = every_type_schema();
        let file = Bytes::from(every_type_file(&Spec::new(&[6, 4, 8], snappy())));
        let whole = sequential(&file, &schema).rows;
        // The task of groups 1..3: rows 7..=18 of the file.
        let all = drain(&mut task(&file, 1..3, &schema)).rows;
        assert_eq!(all, whole[6..]);
        for done in 0..=all.len() as u64 {
            let mut resumed = task(&file, 1..3, &schema);
            assert_eq!(resumed.skip(done), done);
            let rest = drain(&mut resumed);
            assert_eq!(rest.rows, all[done as usize..], "resumed after {done} rows");
            assert_eq!(resumed.records(), all.len() as u64);
        }
    }

    #[test]
    fn a_bad_row_is_rejected_alone_with_its_row_group_and_row() {
        let schema = every_type_schema();
        let mut spec = Spec::new(&[5, 5, 5], snappy());
        (spec.bad_row, spec.infinite_row) = (Some(7), Some(13));
        let file = Bytes::from(every_type_file(&spec));
        let read = drain(&mut task(&file, 1..3, &schema));
        assert_eq!(read.rows.len(), 8, "every other row of groups 1 and 2");
        let found: Vec<(u64, &str)> = read
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].0, 8);
        assert!(
            found[0]
                .1
                .starts_with("row group 1, row 2: column \"price\""),
            "{found:?}"
        );
        assert_eq!(found[1].0, 14);
        assert!(
            found[1]
                .1
                .starts_with("row group 2, row 3: column \"ratio\""),
            "{found:?}"
        );
        assert!(read.rejects.iter().all(|r| r.byte_offset.is_none()));
    }

    #[test]
    fn a_huge_value_rejects_its_row_alone_and_the_rows_around_it_land() {
        let schema: Schema = serde_json::from_value(serde_json::json!({
            "partition_key": ["id"],
            "columns": [
                {"name": "id", "type": "string"},
                {"name": "note", "type": "string"},
            ],
        }))
        .unwrap();
        let message = "message m { required binary id (STRING); required binary note (STRING); }";
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut out = Vec::new();
        let mut writer = SerializedFileWriter::new(
            &mut out,
            Arc::new(parse_message_type(message).unwrap()),
            Arc::new(props),
        )
        .unwrap();
        let notes = ["small".to_owned(), "x".repeat(3 << 20), "after".to_owned()];
        let mut group = writer.next_row_group().unwrap();
        for leaf in 0..2 {
            let mut column = group.next_column().unwrap().unwrap();
            let values: Vec<ByteArray> = (0..3)
                .map(|i| match leaf {
                    0 => ByteArray::from(format!("k{i}").into_bytes()),
                    _ => ByteArray::from(notes[i].clone().into_bytes()),
                })
                .collect();
            (column.typed::<ByteArrayType>())
                .write_batch(&values, None, None)
                .unwrap();
            column.close().unwrap();
        }
        group.close().unwrap();
        writer.close().unwrap();
        let read = sequential(&Bytes::from(out), &schema);
        let ids: Vec<String> = read.rows.iter().map(|r| r.key.0.clone()).collect();
        assert_eq!(ids, ["k0", "k2"]);
        assert_eq!(read.rejects.len(), 1);
        let reject = &read.rejects[0];
        assert_eq!(reject.line, 2);
        assert!(
            reject.reason.starts_with("row group 0, row 1:"),
            "{}",
            reject.reason
        );
        assert!(
            reject.reason.contains("400"),
            "the item size limit: {}",
            reject.reason
        );
        assert!(reject.raw.len() <= crate::ingest::decode::MAX_RAW_BYTES + 8);
    }
}
