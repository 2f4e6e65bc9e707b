//! Parquet on the real local servers (s3s-fs, moto SQS, dynalite), files written in the test
//! by the parquet crate's own writer (`test_files`): every supported type lands in dynalite
//! typed as declared, value for value (integers and decimals exact, floats, strings, binary,
//! booleans, dates and timestamps, a nested list and struct, nulls by the job's policy) from
//! snappy and zstd pages; NaN and infinity reject their rows alone with their row numbers;
//! a corrupt footer rejects its object with the reason; a corrupt page rejects the rest of
//! its row group row by row; a big object planned by row groups reads within 1.1x of its
//! column chunks and footer; and a batch stopped in the middle of a row group resumes at its
//! next row, every row once, every fetch counted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_sdk_dynamodb::types::AttributeValue;
use devkit::bridge::{BridgeError, Invoke};
use devkit::provision::ensure_table;
use integration_tests::{TestEnv, default_servers};
use shared::app::coordinator::Coordinator;
use shared::app::worker::Worker;
use shared::aws::DynamoTable;
use shared::aws::attribute_values::from_sdk;
use shared::contract::messages::{BatchMessage, JobRequest, Work};
use shared::contract::rejects::RejectTolerance;
use shared::contract::schema::{EmptyValue, Schema};
use shared::ingest::format::parquet_rows::footer;
use shared::ingest::format::parquet_rows::test_files::{
    self, Spec, every_type_file, every_type_schema, expected_item, expected_item_with_nulls,
    snappy, zstd,
};
use shared::ingest::item::{Item, Value};
use shared::job::model::JobStatus;
use shared::port::Adapters;
use shared::port::table::{RecordTable, TableDescription, WriteError};

type Stored = BTreeMap<String, BTreeMap<String, Value>>;

/// A fresh table keyed by `id` (S) on dynalite.
async fn table(env: &TestEnv, name: &str) -> String {
    let table = format!("{}-{name}", env.resources.bucket);
    ensure_table(&env.clients.dynamodb, &table, "id", None)
        .await
        .unwrap();
    table
}

/// Every item of `table` by id (a paginated, consistent scan).
async fn stored(env: &TestEnv, table: &str) -> Stored {
    let mut items = BTreeMap::new();
    let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
    loop {
        let page = (env.clients.dynamodb.scan())
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in page.items.unwrap_or_default() {
            let item = from_sdk(item);
            let Some(Value::S(id)) = item.get("id").cloned() else {
                panic!("an item without its id: {item:?}");
            };
            items.insert(id, item.into_iter().collect());
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return items,
        }
    }
}

/// The footer's metadata length and the row groups' spans of a file.
fn layout(file: &[u8]) -> (u64, Vec<footer::RowGroupSpan>) {
    let size = file.len() as u64;
    let length = footer::metadata_length(&file[file.len() - 8..], size).unwrap();
    let start = footer::footer_start(size, length) as usize;
    let meta = footer::decode(&file[start..file.len() - 8]).unwrap();
    (
        size - start as u64,
        footer::row_groups(&meta, size, None).unwrap(),
    )
}

/// The file with its footer's metadata overwritten: it ends with `PAR1` but does not parse.
fn garbled_footer(mut file: Vec<u8>) -> Vec<u8> {
    let (footer_bytes, _) = layout(&file);
    let from = file.len() - footer_bytes as usize;
    for b in &mut file[from..from + 40] {
        *b = 0xee;
    }
    file
}

/// The file with row group `group`'s column chunk `column` (its page header and data)
/// overwritten: that group's rows no longer decode.
fn corrupt_page(mut file: Vec<u8>, group: usize, column: usize) -> Vec<u8> {
    let size = file.len() as u64;
    let length = footer::metadata_length(&file[file.len() - 8..], size).unwrap();
    let start = footer::footer_start(size, length) as usize;
    let meta = footer::decode(&file[start..file.len() - 8]).unwrap();
    let (from, length) = meta.row_group(group).column(column).byte_range();
    for b in &mut file[from as usize..(from + length) as usize] {
        *b = 0xff;
    }
    file
}

fn schema_storing_nulls() -> Schema {
    let mut schema = every_type_schema();
    schema.empty_values = EmptyValue::Null;
    schema
}

#[tokio::test]
async fn a_prefix_of_parquet_lands_every_type_value_for_value_and_rejects_the_bad_alone() {
    let env = TestEnv::new(default_servers(), "parquet-types").await;
    let table = table(&env, "types").await;
    // Rows 0..150 in snappy (row 7 a NaN price, row 61 an infinite ratio), 150..400 in zstd.
    let mut first = Spec::new(&[40, 60, 50], snappy());
    (first.bad_row, first.infinite_row) = (Some(7), Some(61));
    let mut second = Spec::new(&[100, 100, 50], zstd());
    second.first_row = 150;
    let (first, second) = (every_type_file(&first), every_type_file(&second));
    let mut bad_magic = every_type_file(&Spec::new(&[3], snappy()));
    let end = bad_magic.len();
    bad_magic[end - 1] = b'X';
    // Large enough to be planned by row group from its footer: its footer does not parse.
    let mut large = Spec::new(&[800, 800], zstd());
    large.first_row = 5_000;
    let bad_footer = garbled_footer(every_type_file(&large));
    let chunk = bad_footer.len() as u64 / 2;
    assert!(first.len().max(second.len()) as u64 <= chunk, "read whole");
    // Rows 600..650, the second group's `name` chunk (its one page) overwritten: its 30
    // rows are rejected one by one, the first group's 20 land.
    let mut bad_page = Spec::new(&[20, 30], snappy());
    bad_page.first_row = 600;
    let bad_page = corrupt_page(every_type_file(&bad_page), 1, 7);
    // What a refused file fetches before it is refused (its tail, its footer) is read too.
    let refused = (bad_magic.len() + bad_footer.len()) as u64;
    for (key, bytes) in [
        ("pq/a-snappy.parquet", first.clone()),
        ("pq/b-zstd.parquet", second.clone()),
        ("pq/c-bad-magic.parquet", bad_magic),
        ("pq/d-bad-footer.parquet", bad_footer),
        ("pq/e-bad-page.parquet", bad_page.clone()),
    ] {
        env.put_bytes(key, bytes).await;
    }

    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    pipeline.coordinator.range_chunk_bytes = chunk;
    let request = JobRequest {
        schema: Some(every_type_schema()),
        tolerated_rejects: Some(RejectTolerance::Count(100)),
        ..JobRequest::new(&env.resources.bucket, "pq/")
    };
    let started = std::time::Instant::now();
    let job = pipeline.run(request, |_| {}).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.files_listed, 5);
    assert_eq!((job.totals.files, job.totals.files_failed), (3, 2));
    assert_eq!(
        (job.totals.rows_written, job.totals.rows_rejected),
        (418, 32)
    );
    assert_eq!(job.totals.rows_duplicate, 0);
    // The three readable files are read whole: their bytes, once; the refused ones' fetched
    // bytes count too (`bytes_read` is what the GETs handed over, whatever the outcome).
    let whole = (first.len() + second.len() + bad_page.len()) as u64;
    assert_eq!(job.totals.bytes, whole);
    let read = job.totals.bytes_read;
    assert!(
        read > whole && read <= whole + refused,
        "{read} bytes read: {whole} whole, at most {refused} of the refused files"
    );
    let items = stored(&env, &table).await;
    assert_eq!(items.len(), 418);
    for i in (0..400).filter(|i| ![7, 61].contains(i)).chain(600..620) {
        let id = test_files::id(i);
        assert_eq!(items.get(&id), Some(&expected_item(i)), "row {i}");
    }

    let rejects = env.reject_records(&job).await;
    let found: Vec<(&str, u64)> = rejects.iter().map(|r| (r.key.as_str(), r.line)).collect();
    let mut expected = vec![
        ("pq/a-snappy.parquet", 8),
        ("pq/a-snappy.parquet", 62),
        ("pq/c-bad-magic.parquet", 0),
        ("pq/d-bad-footer.parquet", 0),
    ];
    expected.extend((21..=50).map(|line| ("pq/e-bad-page.parquet", line)));
    assert_eq!(
        found, expected,
        "each bad row alone by its row number in the file, each corrupt object once"
    );
    for (reject, row) in rejects[4..].iter().zip(0..) {
        let want = format!("row group 1, row {row}: the row group's data does not decode");
        assert!(reject.reason.starts_with(&want), "{reject:?}");
    }
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    // Rows 7 and 61: the first group's 8th row, the second's 22nd (groups of 40, 60, 50).
    assert!(reasons[0].starts_with("row group 0, row 7:"), "{reasons:?}");
    assert!(
        reasons[1].starts_with("row group 1, row 21:"),
        "{reasons:?}"
    );
    assert!(
        reasons[0].contains("price") && reasons[0].contains("NaN"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].contains("ratio") && reasons[1].contains("infinities"),
        "{reasons:?}"
    );
    assert!(rejects[0].raw.contains("r00007"), "{:?}", rejects[0]);
    assert!(
        reasons[2].contains("does not end with the magic PAR1"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("corrupt Parquet footer"), "{reasons:?}");
    eprintln!("450 rows in 5 Parquet objects: {seconds:.1} s");
}

#[tokio::test]
async fn a_big_parquet_object_is_planned_by_row_groups_and_reads_about_its_column_chunks() {
    let env = TestEnv::new(default_servers(), "parquet-big").await;
    let table = table(&env, "big").await;
    // Groups of 1,000 rows (~28 KB of chunks), so the footer (~7 KB), fetched once a batch,
    // is a small part of what a batch reads.
    let mut spec = Spec::new(&[1_000; 4], zstd());
    spec.first_row = 1_000;
    let file = every_type_file(&spec);
    let (footer_bytes, groups) = layout(&file);
    let chunks: u64 = groups.iter().map(|g| g.bytes()).sum();
    env.put_bytes("big/rows.parquet", file.clone()).await;

    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    // Two groups' chunks fit a batch, three do not: two batches.
    let chunk = groups[0].bytes() * 5 / 2;
    pipeline.coordinator.range_chunk_bytes = chunk;
    pipeline.pollers = 3;
    let request = JobRequest {
        key: Some("big/rows.parquet".into()),
        schema: Some(schema_storing_nulls()),
        ..JobRequest::new(&env.resources.bucket, "")
    };
    let started = std::time::Instant::now();
    let job = pipeline.run(request, |_| {}).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.total_batches, 2, "two row groups a batch");
    assert_eq!(
        (job.totals.rows_written, job.totals.rows_rejected),
        (4_000, 0)
    );
    assert_eq!(
        (job.totals.files, job.totals.files_failed),
        (1, 0),
        "one object"
    );
    // Planning fetched the object's tail (the footer, with a little before it); each batch
    // its groups' chunks and the footer; nothing else.
    let planning = job.planning_bytes_read;
    assert!(
        planning >= footer_bytes && planning <= footer_bytes + (64 << 10),
        "{planning} read to plan, {footer_bytes} of footer"
    );
    let needed = chunks + footer_bytes;
    let read = job.totals.bytes_read - planning;
    assert_eq!(
        read,
        chunks + 2 * footer_bytes,
        "chunks once, the footer per batch"
    );
    assert_eq!(
        job.totals.bytes, read,
        "each batch's input is what it fetched"
    );
    assert!(
        read as f64 <= needed as f64 * 1.1,
        "{read} read, {needed} needed"
    );
    eprintln!(
        "{} bytes, {chunks} of column chunks, {footer_bytes} of footer: {read} read \
         ({:.3}x of chunks + footer) in {} batches, {seconds:.1} s",
        file.len(),
        read as f64 / needed as f64,
        job.total_batches
    );
    let items = stored(&env, &table).await;
    assert_eq!(items.len(), 4_000);
    for i in 1_000..5_000 {
        let id = test_files::id(i);
        assert_eq!(
            items.get(&id),
            Some(&expected_item_with_nulls(i)),
            "row {i}"
        );
    }
}

/// A table that takes `delay` per BatchWriteItem (one throttled to a low rate).
struct SlowTable {
    inner: DynamoTable,
    delay: Duration,
}

#[async_trait::async_trait]
impl RecordTable for SlowTable {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        tokio::time::sleep(self.delay).await;
        self.inner.batch_put(table, items).await
    }

    async fn describe(&self, table: &str) -> Result<TableDescription, WriteError> {
        self.inner.describe(table).await
    }
}

/// The worker, each invocation given `budget` before its deadline; every row-group task it
/// was handed, by batch and part.
struct ShortInvocations<'a> {
    worker: &'a Worker,
    budget: Duration,
    seen: Mutex<BTreeMap<(u64, u32), shared::contract::messages::RowGroupTask>>,
}

impl Invoke for ShortInvocations<'_> {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        for record in &event.records {
            let body = record.body.as_deref().unwrap_or_default();
            let message: BatchMessage = serde_json::from_str(body).expect("a batch message");
            if let Work::RowGroups(task) = &message.work {
                let mut seen = self.seen.lock().expect("not poisoned");
                seen.insert((message.batch.get(), message.part()), task.clone());
            }
        }
        let deadline = tokio::time::Instant::now() + self.budget;
        Ok(self.worker.handle(event, Some(deadline)).await)
    }
}

#[tokio::test]
async fn a_row_group_batch_stopped_mid_group_resumes_at_its_next_row_every_row_once() {
    let env = TestEnv::new(default_servers(), "parquet-resume").await;
    let table = table(&env, "resume").await;
    let mut spec = Spec::new(&[900, 900], snappy());
    spec.first_row = 10_000;
    let file = every_type_file(&spec);
    let (footer_bytes, groups) = layout(&file);
    env.put_bytes("r/rows.parquet", file.clone()).await;

    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    // One group a batch.
    pipeline.coordinator.range_chunk_bytes = groups[0].bytes() * 3 / 2;
    let adapters = Adapters::aws(&env.clients, &pipeline.coordinator.tables.jobs);
    let coordinator = Coordinator::new(adapters.clone(), pipeline.coordinator.clone());
    let request = JobRequest {
        job_id: Some("pq-resume".into()),
        key: Some("r/rows.parquet".into()),
        schema: Some(every_type_schema()),
        ..JobRequest::new(&env.resources.bucket, "")
    };
    let started = coordinator.start_job(request, None).await.unwrap();
    assert_eq!(started.listing.batches, 2, "one row group a batch");

    // 25 rows a write, 20 ms each, one at a time: a group's 900 rows take 0.72 s of writes;
    // a part decodes for ~0.4 s and keeps 1 s for the rows in flight, so it stops inside.
    let worker_config = shared::app::config::WorkerConfig {
        queue_url: Some(env.provisioned.queue_url.clone()),
        resume_margin: Duration::from_millis(1000),
        write_concurrency: 1,
        ..pipeline.worker.clone()
    };
    let slow = SlowTable {
        inner: DynamoTable::new(env.clients.dynamodb.clone()),
        delay: Duration::from_millis(20),
    };
    let worker = Worker::new(
        Adapters {
            records: std::sync::Arc::new(slow),
            ..adapters
        },
        worker_config,
    );
    let invoker = ShortInvocations {
        worker: &worker,
        budget: Duration::from_millis(1400),
        seen: Mutex::new(BTreeMap::new()),
    };
    let job = env.deliver_to_until_final(&invoker, "pq-resume").await;

    let seen = invoker.seen.into_inner().unwrap();
    let resumed: BTreeSet<u64> = seen.values().map(|t| t.rows_done).collect();
    eprintln!("{} parts, resumed at rows {resumed:?}", seen.len());
    assert!(
        resumed.iter().any(|&done| done > 0 && done < 900),
        "a part resumed inside a row group: {resumed:?}"
    );
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.total_batches, job.batches_done), (2, 2));
    assert_eq!(
        (job.totals.rows_written, job.totals.rows_rejected),
        (1_800, 0)
    );
    assert_eq!(job.totals.rows_duplicate, 0, "no row loaded twice");
    assert_eq!((job.totals.files, job.totals.files_failed), (1, 0));
    // Every part fetched its task's footer and chunks: every fetch is counted, the input once.
    let fetched: u64 = seen.values().map(|t| t.fetched_bytes()).sum();
    let input: u64 = groups.iter().map(|g| g.bytes() + footer_bytes).sum();
    assert_eq!(job.totals.bytes, input, "each task's input once");
    assert!(
        job.planning_bytes_read >= footer_bytes,
        "planning read the footer"
    );
    assert_eq!(
        job.totals.bytes_read - job.planning_bytes_read,
        fetched,
        "each part's fetch"
    );
    assert!(fetched > input, "the resumed parts fetched again");
    let items = stored(&env, &table).await;
    assert_eq!(items.len(), 1_800);
    for i in 10_000..11_800 {
        let id = test_files::id(i);
        assert_eq!(items.get(&id), Some(&expected_item(i)), "row {i}");
    }
}
