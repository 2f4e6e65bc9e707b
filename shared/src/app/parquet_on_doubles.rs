//! Parquet through the whole pipeline on the doubles: a prefix job over a small file (read
//! whole, a NaN row in it), a large one (planned by row group from its footer, its batches
//! fetching only their groups' column chunks and the footer) and two corrupt ones (one small,
//! one large): every good row lands typed as declared, the bad row and both corrupt objects
//! are rejected with their reasons, and bytes read stay within 1.1x of the column chunks.

use std::collections::BTreeMap;

use crate::app::config::CoordinatorConfig;
use crate::app::test_rig::{RECORDS, Rig};
use crate::contract::messages::{BatchMessage, JobRequest, Work};
use crate::ingest::format::parquet_rows::footer;
use crate::ingest::format::parquet_rows::test_files::{Spec, every_type_file, snappy, zstd};
use crate::ingest::format::parquet_rows::tests::{every_type_schema, expected_item};
use crate::ingest::item::Value;
use crate::job::model::{Job, JobStatus};

/// Runs every batch enqueued (the large file's job `id`): it completes with its 20,000 rows
/// written and none rejected. Returns the job and the batches run.
async fn run_every_batch(
    rig: &Rig,
    worker: &crate::app::worker::Worker,
    id: &str,
) -> (Job, Vec<BatchMessage>) {
    let batches = rig.batches();
    for batch in &batches {
        worker.process_batch(batch).await.unwrap();
    }
    let job = rig.job(id).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(
        (job.totals.rows_written, job.totals.rows_rejected),
        (20_000, 0)
    );
    (job, batches)
}

/// Bytes of every row group's column chunks in `file`.
pub fn column_chunk_bytes(file: &[u8]) -> u64 {
    let size = file.len() as u64;
    let length = footer::metadata_length(&file[file.len() - 8..], size).unwrap();
    let start = footer::footer_start(size, length) as usize;
    let meta = footer::decode(&file[start..file.len() - 8]).unwrap();
    let spans = footer::row_groups(&meta, size, None).unwrap();
    spans.iter().map(|g| g.bytes()).sum()
}

fn items(rig: &Rig) -> BTreeMap<String, BTreeMap<String, Value>> {
    rig.table
        .items(RECORDS)
        .into_iter()
        .map(|item| {
            let Some(Value::S(id)) = item.get("id").cloned() else {
                panic!("no id: {item:?}");
            };
            (id, item.into_iter().collect())
        })
        .collect()
}

#[tokio::test]
async fn a_prefix_of_parquet_loads_every_row_typed_by_row_group_and_rejects_the_corrupt() {
    let rig = Rig::new();
    // Rows 0..40 in the small file, row 3 NaN; the large file (outside the prefix) is a
    // single-object job below, over the same ids.
    let mut small = Spec::new(&[15, 25], snappy());
    small.bad_row = Some(3);
    rig.objects
        .insert("b", "in/small.parquet", every_type_file(&small));
    let large = every_type_file(&Spec::new(&[6000, 6000, 6000, 2000], zstd()));
    rig.objects.insert("b", "big/large.parquet", large.clone());
    let mut corrupt_small = every_type_file(&Spec::new(&[3], snappy()));
    let end = corrupt_small.len();
    corrupt_small[end - 1] = b'X';
    rig.objects
        .insert("b", "in/bad-magic.parquet", corrupt_small);
    let mut corrupt_large = large.clone();
    let meta = footer::metadata_length(&large[large.len() - 8..], large.len() as u64).unwrap();
    let from = large.len() - 8 - meta as usize;
    for b in &mut corrupt_large[from..from + 40] {
        *b = 0xee;
    }
    rig.objects
        .insert("b", "in/bad-footer.parquet", corrupt_large);
    let chunk = 64 << 10;
    assert!(large.len() as u64 > 3 * chunk, "{}", large.len());
    let coordinator = rig.coordinator(CoordinatorConfig {
        range_chunk_bytes: chunk,
        ..Rig::coordinator_config()
    });
    let worker = rig.worker(Rig::worker_config());

    let request = JobRequest {
        job_id: Some("pq".into()),
        schema: Some(every_type_schema()),
        ..JobRequest::new("b", "in/")
    };
    coordinator.start_job(request, None).await.unwrap();
    let batches = rig.batches();
    // The small files in a key batch; the large corrupt one as one footer-only task.
    let tasks: Vec<_> = batches
        .iter()
        .filter_map(|b| match &b.work {
            Work::RowGroups(task) => Some(task),
            _ => None,
        })
        .collect();
    assert_eq!(tasks.len(), 1, "{batches:?}");
    assert_eq!(
        (
            tasks[0].key.as_str(),
            tasks[0].first_group,
            tasks[0].stop_group
        ),
        ("in/bad-footer.parquet", 0, 0)
    );
    for batch in &batches {
        worker.process_batch(batch).await.unwrap();
    }
    let job = rig.job("pq").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (39, 1));
    assert_eq!(job.totals.files_failed, 2, "{job:?}");
    let stored = items(&rig);
    for i in (0..40).filter(|&i| i != 3) {
        let id = crate::ingest::format::parquet_rows::test_files::id(i);
        assert_eq!(stored.get(&id), Some(&expected_item(i)), "row {i}");
    }
    let report: String = batches
        .iter()
        .filter_map(|b| {
            rig.objects.bytes(
                "b",
                &format!("_rejects/pq/batch-{:06}.jsonl", b.batch.get()),
            )
        })
        .map(|bytes| String::from_utf8(bytes).unwrap())
        .collect();
    for (object, reason) in [
        ("in/small.parquet", "NaN"),
        ("in/bad-magic.parquet", "does not end with the magic PAR1"),
        ("in/bad-footer.parquet", "corrupt Parquet footer"),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(object) && l.contains(reason)),
            "{object}: {reason}\n{report}"
        );
    }
    assert!(
        report.contains("\"line\":4"),
        "the NaN row's number: {report}"
    );

    // The large one: several row-group batches, each reading its chunks and the footer.
    let request = JobRequest {
        job_id: Some("pq-large".into()),
        key: Some("big/large.parquet".into()),
        schema: Some(every_type_schema()),
        ..JobRequest::new("b", "")
    };
    let started = coordinator.start_job(request, None).await.unwrap();
    let full_batches = started.listing.batches;
    let (job, batches) = run_every_batch(&rig, &worker, "pq-large").await;
    assert!(full_batches >= 3, "{full_batches}");
    assert!(batches.iter().all(|b| matches!(b.work, Work::RowGroups(_))));
    let stored = items(&rig);
    for i in [0, 1, 5999, 6000, 12_001, 19_999] {
        let id = crate::ingest::format::parquet_rows::test_files::id(i);
        assert_eq!(stored.get(&id), Some(&expected_item(i)), "row {i}");
    }
    let needed = column_chunk_bytes(&large);
    let read = job.totals.bytes_read;
    assert!(
        (needed..=needed * 11 / 10).contains(&read),
        "{read} bytes read for {needed} of column chunks ({} in the file)",
        large.len()
    );

    // The same file under a schema reading three of its fourteen columns (the key, and two
    // mapped to new names), the others dropped: only their chunks are fetched (within 1.1x,
    // footers included), and decoded.
    let narrow: crate::contract::schema::Schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "n64", "type": "integer"},
            {"name": "name", "type": "string", "nullable": true},
        ],
        "attributes": {"big_n": "n64", "label": "name"},
        "unmapped": "drop",
    }))
    .unwrap();
    narrow.validate().unwrap();
    let request = JobRequest {
        job_id: Some("pq-narrow".into()),
        key: Some("big/large.parquet".into()),
        schema: Some(narrow),
        ..JobRequest::new("b", "")
    };
    let started = coordinator.start_job(request, None).await.unwrap();
    let (job, _) = run_every_batch(&rig, &worker, "pq-narrow").await;
    let stored = items(&rig);
    for i in [0, 1, 5999, 6000, 12_001, 19_999] {
        let id = crate::ingest::format::parquet_rows::test_files::id(i);
        let full = expected_item(i);
        let mut expected = BTreeMap::from([("id".to_owned(), full["id"].clone())]);
        for (from, to) in [("n64", "big_n"), ("name", "label")] {
            if let Some(value) = full.get(from) {
                expected.insert(to.to_owned(), value.clone());
            }
        }
        assert_eq!(stored.get(&id), Some(&expected), "row {i}");
    }
    // Batches are sized by the chunks read: three columns' fill fewer batches than fourteen.
    assert!(
        started.listing.batches < full_batches,
        "{} narrow batches, {full_batches} full",
        started.listing.batches
    );
    let (footer_bytes, narrow_chunks) = chunks_of(&large, &["id", "n64", "name"]);
    // What the batches fetched (planning read the object's tail once, as for any schema).
    let needed = narrow_chunks + footer_bytes * started.listing.batches;
    let narrow_read = job.totals.bytes_read - job.planning_bytes_read;
    assert!(
        (narrow_chunks..=needed * 11 / 10).contains(&narrow_read),
        "{narrow_read} bytes read for {narrow_chunks} of the three columns' chunks and \
         {footer_bytes} of footer a batch"
    );
    assert!(
        narrow_read < read / 2,
        "{narrow_read} of {read} read for every column: projected"
    );
}

/// The footer's bytes and those of the column chunks of the top-level `columns` in `file`.
fn chunks_of(file: &[u8], columns: &[&str]) -> (u64, u64) {
    let size = file.len() as u64;
    let length = footer::metadata_length(&file[file.len() - 8..], size).unwrap();
    let start = footer::footer_start(size, length) as usize;
    let meta = footer::decode(&file[start..file.len() - 8]).unwrap();
    let chunks = (meta.row_groups().iter())
        .flat_map(|group| group.columns())
        .filter(|c| columns.contains(&c.column_descr().path().parts()[0].as_str()))
        .map(|c| c.byte_range().1)
        .sum();
    (size - start as u64, chunks)
}

/// Three orders in the sample request's columns, written by the parquet crate: a full one,
/// one with every nullable column null, one with a null inside its struct.
fn orders_file() -> Vec<u8> {
    use std::sync::Arc;

    use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int32Type, Int64Type};
    use ::parquet::file::properties::WriterProperties;
    use ::parquet::file::writer::SerializedFileWriter;
    use ::parquet::schema::parser::parse_message_type;

    let message = "message order {
      required binary order_id (STRING);
      required int64 placed_at (TIMESTAMP(MICROS,true));
      required int64 total (DECIMAL(12,2));
      required int32 quantity;
      optional boolean paid;
      optional binary receipt;
      optional group lines (LIST) { repeated group list { optional binary element (STRING); } }
      optional group address { optional binary city (STRING); }
    }";
    let text = |s: &str| ByteArray::from(s.as_bytes().to_vec());
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(
        &mut out,
        Arc::new(parse_message_type(message).unwrap()),
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let mut leaf = 0;
    while let Some(mut column) = group.next_column().unwrap() {
        match leaf {
            0 => column.typed::<ByteArrayType>().write_batch(
                &[text("o-1"), text("o-2"), text("o-3")],
                None,
                None,
            ),
            1 => column.typed::<Int64Type>().write_batch(
                &[
                    1_700_000_000_123_456,
                    1_700_000_001_000_000,
                    1_700_000_002_000_001,
                ],
                None,
                None,
            ),
            2 => column
                .typed::<Int64Type>()
                .write_batch(&[1999, 500, -1], None, None),
            3 => column
                .typed::<Int32Type>()
                .write_batch(&[2, 1, 3], None, None),
            4 => column
                .typed::<BoolType>()
                .write_batch(&[true, false], Some(&[1, 0, 1]), None),
            5 => column.typed::<ByteArrayType>().write_batch(
                &[ByteArray::from(vec![1, 2]), ByteArray::from(vec![0xff])],
                Some(&[1, 0, 1]),
                None,
            ),
            6 => column.typed::<ByteArrayType>().write_batch(
                &[text("lamp"), text("bulb"), text("cable")],
                Some(&[3, 3, 0, 3]),
                Some(&[0, 1, 0, 0]),
            ),
            _ => {
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&[text("Kyiv")], Some(&[2, 0, 1]), None)
            }
        }
        .unwrap();
        column.close().unwrap();
        leaf += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
    out
}

#[tokio::test]
async fn the_parquet_sample_request_loads_its_orders_typed_as_declared() {
    let request: JobRequest =
        serde_json::from_str(include_str!("../../../events/prefix-job-parquet.json")).unwrap();
    // The sample's table is keyed by its partition key column.
    let table = std::sync::Arc::new(crate::port::memory::MemoryTable::new("order_id", None));
    let rig = Rig::writing_through(table.clone(), table);
    let key = format!("{}2026/orders.parquet", request.prefix);
    rig.objects.insert(&request.bucket, &key, orders_file());
    let coordinator = rig.coordinator(Rig::coordinator_config());
    let worker = rig.worker(Rig::worker_config());
    let started = coordinator.start_job(request, None).await.unwrap();
    for batch in &rig.batches() {
        worker.process_batch(batch).await.unwrap();
    }
    let job = rig.job(started.job_id.as_ref()).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (3, 0));
    let by_id: BTreeMap<String, BTreeMap<String, Value>> = rig
        .table
        .items(RECORDS)
        .into_iter()
        .map(|item| {
            let Some(Value::S(id)) = item.get("order_id").cloned() else {
                panic!("no order_id: {item:?}");
            };
            (id, item.into_iter().collect())
        })
        .collect();
    let (s, n) = (|t: &str| Value::S(t.into()), |t: &str| Value::N(t.into()));
    let order = |fields: Vec<(&str, Value)>| -> BTreeMap<String, Value> {
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    let expected = [
        order(vec![
            ("order_id", s("o-1")),
            ("placed_at", s("2023-11-14T22:13:20.123456Z")),
            ("total", n("19.99")),
            ("quantity", n("2")),
            ("paid", Value::Bool(true)),
            ("receipt", Value::B(vec![1, 2])),
            ("lines", Value::L(vec![s("lamp"), s("bulb")])),
            (
                "address",
                Value::M(BTreeMap::from([("city".to_owned(), s("Kyiv"))])),
            ),
        ]),
        // Every nullable column null: omitted, the schema's default policy.
        order(vec![
            ("order_id", s("o-2")),
            ("placed_at", s("2023-11-14T22:13:21Z")),
            ("total", n("5")),
            ("quantity", n("1")),
        ]),
        order(vec![
            ("order_id", s("o-3")),
            ("placed_at", s("2023-11-14T22:13:22.000001Z")),
            ("total", n("-0.01")),
            ("quantity", n("3")),
            ("paid", Value::Bool(false)),
            ("receipt", Value::B(vec![0xff])),
            ("lines", Value::L(vec![s("cable")])),
            (
                "address",
                Value::M(BTreeMap::from([("city".to_owned(), Value::Null)])),
            ),
        ]),
    ];
    for want in expected {
        let Some(Value::S(id)) = want.get("order_id") else {
            unreachable!()
        };
        assert_eq!(by_id.get(id), Some(&want), "{id}");
    }
}
