//! Large compressed objects on the in-memory doubles (`docs/compressed.md`): inflated into
//! plain parts under a short deadline (the inflate step and the parts both hand on), in a
//! single-object job and inside a prefix job, with messages delivered twice: every row lands
//! once, the totals are exact, rejects name the original object and its lines, the scratch
//! objects are gone; a part that dies in the dead-letter queue still ends its job.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use tokio::time::Instant;

use crate::app::config::{CoordinatorConfig, WorkerConfig};
use crate::app::test_rig::{NOTES_HEADER, Rig, WORK, notes_schema};
use crate::app::worker::{Processed, Worker, WorkerError};
use crate::contract::completion::JobStatus;
use crate::contract::messages::{BatchMessage, JobRequest, Work};
use crate::contract::rejects::RejectRecord;
use crate::ingest::compression::testing::{gzip, zstd};
use crate::ingest::item::Item;
use crate::port::memory::{MemoryObjects, MemoryTable};
use crate::port::objects::{Body, ObjectError, ObjectInfo, ObjectStore, Page, Read};
use crate::port::table::{RecordTable, TableDescription, WriteError};

/// Decoded bytes per part (and the compressed size above which an object is inflated).
const CHUNK: u64 = 16 << 10;

/// An object store whose PUTs of inflated parts take `delay`, so inflating outlasts an
/// invocation.
struct SlowParts {
    inner: Arc<MemoryObjects>,
    delay: Duration,
}

#[async_trait]
impl ObjectStore for SlowParts {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: i32,
        cursor: Option<String>,
    ) -> Result<Page, ObjectError> {
        self.inner
            .list_page(bucket, prefix, page_size, cursor)
            .await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        self.inner.head(bucket, key).await
    }

    async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError> {
        self.inner.get(bucket, key, read).await
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        if key.contains("/inflate/") && key.contains("/part-") {
            tokio::time::sleep(self.delay).await;
        }
        self.inner.put(bucket, key, body, content_type).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.inner.delete(bucket, key).await
    }
}

/// A table that takes `delay` per BatchWriteItem, so a part outlasts an invocation.
struct SlowTable {
    inner: Arc<MemoryTable>,
    delay: Duration,
}

#[async_trait]
impl RecordTable for SlowTable {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        tokio::time::sleep(self.delay).await;
        self.inner.batch_put(table, items).await
    }

    async fn describe(&self, table: &str) -> Result<TableDescription, WriteError> {
        self.inner.describe(table).await
    }
}

/// A rig whose part PUTs and writes are slow.
fn slow_rig() -> Rig {
    let table = Arc::new(MemoryTable::new("id", None));
    let slow = Arc::new(SlowTable {
        inner: table.clone(),
        delay: Duration::from_millis(4),
    });
    let mut rig = Rig::writing_through(table, slow);
    rig.adapters.objects = Arc::new(SlowParts {
        inner: rig.objects.clone(),
        delay: Duration::from_millis(10),
    });
    rig
}

/// `rows` rows of the notes schema: a third with a quoted note holding a comma, quotes and
/// a newline, CRLF and LF line ends by turns, and every 101st row without its key (a
/// reject). Returns the text, the (id, note) of the good rows, and how many are bad.
fn csv_with_bad_rows(name: &str, rows: usize) -> (String, Vec<(String, String)>, u64) {
    let mut text = String::from(NOTES_HEADER);
    let (mut good, mut bad) = (Vec::new(), 0);
    for i in 0..rows {
        if i % 101 == 7 {
            text.push_str(&format!(",no id {i}\n"));
            bad += 1;
            continue;
        }
        let note = match i % 3 {
            0 => format!("two\nlines, \"quoted\" {i}"),
            _ => format!("plain {i}"),
        };
        let field = match note.contains('\n') {
            true => format!("\"{}\"", note.replace('"', "\"\"")),
            false => note.clone(),
        };
        let id = format!("{name}-{i:05}");
        let end = if i % 2 == 1 { "\r\n" } else { "\n" };
        text.push_str(&format!("{id},{field}{end}"));
        good.push((id, note));
    }
    (text, good, bad)
}

/// What a drained queue did: messages processed, and how many were inflate and part
/// continuations.
#[derive(Debug, Default)]
struct Drained {
    messages: usize,
    inflate_continuations: usize,
    part_continuations: usize,
    parts: usize,
}

/// Processes the work queue until it is empty, each delivery with `budget` before its
/// deadline; with `twice` = n, the 1st, (n+1)th, … message is delivered twice in a row (a
/// redelivery: the first message is the inflate step), and a delivery that made no
/// progress is delivered again, as SQS would.
async fn drain(rig: &Rig, worker: &Worker, budget: Duration, twice: Option<usize>) -> Drained {
    let mut drained = Drained::default();
    let mut pending: VecDeque<String> = VecDeque::new();
    for _ in 0..20_000 {
        pending.extend(rig.queues.drain(WORK));
        let Some(body) = pending.pop_front() else {
            return drained;
        };
        let batch: BatchMessage = serde_json::from_str(&body).unwrap();
        drained.messages += 1;
        match &batch.work {
            Work::Inflate(task) if task.next.is_some() => drained.inflate_continuations += 1,
            Work::InflatedPart(_) if batch.resumed.is_some() => drained.part_continuations += 1,
            Work::InflatedPart(_) => drained.parts += 1,
            _ => {}
        }
        let deliveries = match twice {
            Some(n) if drained.messages % n == 1 => 2,
            _ => 1,
        };
        for _ in 0..deliveries {
            match worker.process(&batch, Some(Instant::now() + budget)).await {
                Err(WorkerError::NoProgress) => pending.push_back(body.clone()),
                Err(error) => panic!("{}", crate::report(&error)),
                Ok(Processed::Counted(_) | Processed::Continued(_) | Processed::Shared) => {}
            }
        }
    }
    panic!("the queue never emptied");
}

fn worker(rig: &Rig) -> Worker {
    rig.worker(WorkerConfig {
        write_concurrency: 1,
        resume_margin: Duration::from_millis(110),
        ..Rig::worker_config()
    })
}

fn coordinator_config(batch_size: usize) -> CoordinatorConfig {
    CoordinatorConfig {
        batch_size,
        range_chunk_bytes: CHUNK,
        ..Rig::coordinator_config()
    }
}

/// Every reject record of `job`'s reports, sorted by key and line.
fn rejects(rig: &Rig, job: &str) -> Vec<RejectRecord> {
    let mut records: Vec<RejectRecord> = (rig
        .objects
        .keys_under("b", &format!("_rejects/{job}/batch-")))
    .iter()
    .flat_map(|key| {
        let text = String::from_utf8(rig.objects.bytes("b", key).unwrap()).unwrap();
        text.lines()
            .map(|line| serde_json::from_str::<RejectRecord>(line).unwrap())
            .collect::<Vec<_>>()
    })
    .collect();
    records.sort_by(|a, b| (&a.key, a.line).cmp(&(&b.key, b.line)));
    records
}

/// The lines a whole read of `text` (today's path for a small object) rejects.
async fn lines_a_whole_read_rejects(text: &str) -> Vec<u64> {
    lines_a_whole_read_of("one.csv", text).await
}

/// The lines a whole read of `text` as object `key` rejects.
async fn lines_a_whole_read_of(key: &str, text: &str) -> Vec<u64> {
    let rig = Rig::new();
    rig.objects.insert("b", key, text.to_owned());
    let request = JobRequest {
        job_id: Some("whole".into()),
        key: Some(key.into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "")
    };
    rig.coordinator(CoordinatorConfig {
        range_chunk_bytes: 1 << 30,
        ..Rig::coordinator_config()
    })
    .start_job(request, None)
    .await
    .unwrap();
    let worker = rig.worker(Rig::worker_config());
    for batch in rig.batches() {
        worker.process_batch(&batch).await.unwrap();
    }
    rejects(&rig, "whole").iter().map(|r| r.line).collect()
}

/// The rejects of `job` name `key` (the compressed object, not a scratch part), at the
/// lines a whole read gives, with decoded byte offsets where the row's text starts.
async fn assert_rejects_name_the_object(rig: &Rig, job: &str, key: &str, text: &str, bad: u64) {
    let records: Vec<RejectRecord> = (rejects(rig, job).into_iter())
        .filter(|r| r.key == key || r.key.contains("/inflate/"))
        .collect();
    assert_eq!(records.len() as u64, bad, "{records:?}");
    assert!(records.iter().all(|r| r.key == key), "{records:?}");
    let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
    assert_eq!(lines, lines_a_whole_read_rejects(text).await);
    for record in &records {
        let offset = record.byte_offset.expect("a part's rows have offsets") as usize;
        assert!(text[offset..].starts_with(",no id"), "{record:?}");
        let line = 1 + text[..offset].matches('\n').count() as u64;
        assert_eq!(line, record.line, "{record:?}");
    }
}

#[tokio::test]
async fn a_large_csv_gz_is_inflated_into_parts_under_a_short_deadline_every_row_once() {
    let rig = slow_rig();
    let (text, mut expected, bad) = csv_with_bad_rows("big", 6_000);
    let packed = gzip(text.as_bytes()).await;
    assert!(packed.len() as u64 > CHUNK, "{} bytes", packed.len());
    rig.objects.insert("b", "in/big.csv.gz", packed.clone());
    let request = JobRequest {
        job_id: Some("gz".into()),
        key: Some("in/big.csv.gz".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "")
    };
    let started = (rig.coordinator(coordinator_config(100)))
        .start_job(request, None)
        .await
        .unwrap();
    assert_eq!(
        started.listing.batches, 1,
        "one batch number for the object"
    );

    // No redeliveries here, so that the rejects reports are exact (a forked chain's reports
    // overwrite each other's by part number: docs/resumable.md); the prefix test has them.
    let drained = drain(&rig, &worker(&rig), Duration::from_millis(150), None).await;
    assert!(drained.inflate_continuations >= 1, "{drained:?}");
    assert!(drained.part_continuations >= 1, "{drained:?}");
    let parts = text.len() as u64 / CHUNK;
    assert!(drained.parts as u64 >= parts, "{drained:?}");

    let job = rig.job("gz").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.batches_done, job.batches_failed), (1, 0));
    assert_eq!(job.totals.rows_written, expected.len() as u64);
    assert_eq!(job.totals.rows_rejected, bad);
    assert_eq!((job.totals.files, job.totals.files_failed), (1, 0));
    assert_eq!(job.totals.bytes, packed.len() as u64, "the input, once");
    // The compressed object at least once, and every part read back.
    assert!(
        job.totals.bytes_read >= packed.len() as u64 + text.len() as u64 - 8,
        "{job:?}"
    );
    expected.sort();
    assert_eq!(rig.rows(), expected, "every row once, with its exact text");
    assert_rejects_name_the_object(&rig, "gz", "in/big.csv.gz", &text, bad).await;
    assert_eq!(
        rig.objects.keys_under("b", "_rejects/gz/inflate/"),
        Vec::<String>::new(),
        "the scratch objects are removed"
    );
}

#[tokio::test]
async fn a_large_csv_zst_inside_a_prefix_job_is_inflated_beside_key_batches() {
    let rig = slow_rig();
    let mut expected = Vec::new();
    let mut bytes = 0;
    for name in ["a", "b", "c"] {
        let (text, rows, _) = csv_with_bad_rows(name, 40);
        bytes += text.len() as u64;
        rig.objects.insert("b", &format!("in/{name}.csv"), text);
        expected.extend(rows);
    }
    // A small compressed object stays a whole object in a key batch.
    let (text, rows, _) = csv_with_bad_rows("small", 40);
    let small = gzip(text.as_bytes()).await;
    assert!((small.len() as u64) < CHUNK);
    bytes += small.len() as u64;
    rig.objects.insert("b", "in/d-small.csv.gz", small);
    expected.extend(rows);
    // zstd packs these rows tighter than gzip: more of them to be over the threshold.
    let (text, rows, big_bad) = csv_with_bad_rows("big", 10_000);
    let packed = zstd(text.as_bytes()).await;
    assert!(packed.len() as u64 > CHUNK, "{} bytes", packed.len());
    bytes += packed.len() as u64;
    rig.objects.insert("b", "in/b-big.csv.zst", packed);
    expected.extend(rows);
    let request = JobRequest {
        job_id: Some("zst".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "in/")
    };
    let started = (rig.coordinator(coordinator_config(2)))
        .start_job(request, None)
        .await
        .unwrap();
    // The big one takes its own number while (a, b) fills; then (c, the small one).
    assert_eq!(started.listing.batches, 3);

    // Every 5th message twice, the inflate step first: forked chains, counted once.
    let drained = drain(&rig, &worker(&rig), Duration::from_millis(150), Some(5)).await;
    assert!(drained.inflate_continuations >= 1, "{drained:?}");
    assert!(drained.part_continuations >= 1, "{drained:?}");
    let job = rig.job("zst").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.batches_done, job.batches_failed), (3, 0));
    assert_eq!(job.totals.rows_written, expected.len() as u64);
    assert_eq!(job.totals.rows_rejected, big_bad + 4);
    assert_eq!((job.totals.files, job.totals.files_failed), (5, 0));
    assert_eq!(job.totals.bytes, bytes);
    expected.sort();
    assert_eq!(rig.rows(), expected);
    // Forked chains may overwrite each other's reports: every record still names the
    // object and a line a whole read rejects.
    let whole = lines_a_whole_read_rejects(&text).await;
    let records: Vec<RejectRecord> = (rejects(&rig, "zst").into_iter())
        .filter(|r| r.key.contains("big") || r.key.contains("/inflate/"))
        .collect();
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(record.key, "in/b-big.csv.zst", "{record:?}");
        assert!(whole.contains(&record.line), "{record:?}");
    }
    assert!(
        rig.objects
            .keys_under("b", "_rejects/zst/inflate/")
            .is_empty()
    );
}

#[tokio::test]
async fn an_inflated_object_whose_header_is_unusable_is_one_rejected_object() {
    let rig = Rig::new();
    let (text, _, _) = csv_with_bad_rows("big", 6_000);
    let text = text.replacen("id,note", "key,note", 1);
    rig.objects
        .insert("b", "big.csv.gz", gzip(text.as_bytes()).await);
    let request = JobRequest {
        job_id: Some("header".into()),
        key: Some("big.csv.gz".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "")
    };
    (rig.coordinator(coordinator_config(100)))
        .start_job(request, None)
        .await
        .unwrap();
    let worker = rig.worker(Rig::worker_config());
    let drained = drain(&rig, &worker, Duration::from_secs(60), None).await;
    assert_eq!(drained.parts, 0, "no part is written");
    let job = rig.job("header").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.files, job.totals.files_failed), (0, 1));
    let records = rejects(&rig, "header");
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].key.as_str(), records[0].line),
        ("big.csv.gz", 0)
    );
    assert!(records[0].reason.contains("id"), "{records:?}");
}

/// The letter as the dead-letter queue's event source delivers it.
fn dead_letter(batch: &BatchMessage, arn: &str) -> SqsEvent {
    let mut message = SqsMessage::default();
    message.message_id = Some("dead-part".into());
    message.event_source_arn = Some(arn.into());
    message.body = Some(batch.to_json());
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    event
}

#[tokio::test]
async fn a_part_that_dies_in_the_dead_letter_queue_still_ends_its_job() {
    const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:batches-dlq";
    let rig = Rig::new();
    let (text, _, _) = csv_with_bad_rows("big", 6_000);
    rig.objects
        .insert("b", "big.csv.gz", gzip(text.as_bytes()).await);
    let request = JobRequest {
        job_id: Some("dead".into()),
        key: Some("big.csv.gz".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "")
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        dead_letter_queue_arns: vec![DLQ.into()],
        ..coordinator_config(100)
    });
    coordinator.start_job(request, None).await.unwrap();
    let worker = rig.worker(Rig::worker_config());
    let inflate = rig.batches().remove(0);
    let done = worker.process(&inflate, None).await.unwrap();
    assert!(matches!(done, Processed::Shared), "{done:?}");
    let mut parts = rig.batches();
    assert!(parts.len() > 2, "{} parts", parts.len());
    // One part never runs: throttled on every receive, then moved to the DLQ.
    let dead = parts.remove(1);
    let response = coordinator
        .handle_control_event(dead_letter(&dead, DLQ), None)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let job = rig.job("dead").await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!((job.batches_done, job.batches_failed), (1, 1));
    // The other parts still load, and change nothing.
    for part in &parts {
        worker.process(part, None).await.unwrap();
    }
    let after = rig.job("dead").await;
    assert_eq!(after.status, JobStatus::CompletedWithErrors);
    assert_eq!((after.batches_done, after.batches_failed), (1, 1));
}

#[tokio::test]
async fn a_part_killed_on_its_last_delivery_is_counted_failed_by_the_stuck_check() {
    use crate::port::ledger::LedgerStore;
    let rig = Rig::new();
    let (text, _, _) = csv_with_bad_rows("big", 6_000);
    rig.objects
        .insert("b", "big.csv.gz", gzip(text.as_bytes()).await);
    let request = JobRequest {
        job_id: Some("killed".into()),
        key: Some("big.csv.gz".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "")
    };
    let coordinator = rig.coordinator(coordinator_config(100));
    coordinator.start_job(request, None).await.unwrap();
    let worker = rig.worker(Rig::worker_config());
    let inflate = rig.batches().remove(0);
    worker.process(&inflate, None).await.unwrap();
    let parts = rig.batches();
    for part in &parts[1..] {
        worker.process(part, None).await.unwrap();
    }
    // Part 0 ran on its last delivery and was killed: marked (under the object's batch
    // number, which its parts share), its deadline long past, never counted.
    let past = crate::clock::now_ms() - 60_000;
    rig.ledger
        .mark_last_attempt(&"killed".into(), parts[0].batch, past)
        .await
        .unwrap();
    assert_eq!(rig.job("killed").await.status, JobStatus::Running);
    let checked = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(checked.batches_failed, [("killed".into(), 0)]);
    let job = rig.job("killed").await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "ended: {job:?}");
    assert_eq!((job.batches_done, job.batches_failed), (1, 1));
}

#[tokio::test]
async fn a_large_jsonl_gz_is_inflated_by_lines_its_bad_lines_named_by_the_object() {
    let rig = slow_rig();
    let mut text = String::new();
    let (mut expected, mut bad) = (Vec::new(), 0);
    for i in 0..6_000 {
        if i % 97 == 5 {
            text.push_str("{\"id\": broken\n");
            bad += 1;
            continue;
        }
        let (id, note) = (format!("j-{i:05}"), format!("say \"{i}\"\n, twice"));
        text.push_str(&serde_json::json!({"id": id, "note": note}).to_string());
        text.push_str(if i % 2 == 1 { "\r\n" } else { "\n" });
        expected.push((id, note));
    }
    let packed = gzip(text.as_bytes()).await;
    assert!(packed.len() as u64 > CHUNK, "{} bytes", packed.len());
    rig.objects.insert("b", "in/big.jsonl.gz", packed);
    let request = JobRequest {
        job_id: Some("jsonl".into()),
        key: Some("in/big.jsonl.gz".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "")
    };
    (rig.coordinator(coordinator_config(100)))
        .start_job(request, None)
        .await
        .unwrap();
    let drained = drain(&rig, &worker(&rig), Duration::from_millis(150), None).await;
    assert!(
        drained.parts as u64 >= text.len() as u64 / CHUNK,
        "{drained:?}"
    );
    let job = rig.job("jsonl").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(
        (job.totals.rows_written, job.totals.rows_rejected),
        (expected.len() as u64, bad)
    );
    expected.sort();
    assert_eq!(rig.rows(), expected);
    let records = rejects(&rig, "jsonl");
    assert_eq!(records.len() as u64, bad);
    assert!(
        records.iter().all(|r| r.key == "in/big.jsonl.gz"),
        "{records:?}"
    );
    let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
    assert_eq!(lines, lines_a_whole_read_of("one.jsonl", &text).await);
    for record in &records {
        let offset = record.byte_offset.expect("an offset") as usize;
        assert!(text[offset..].starts_with("{\"id\": broken"), "{record:?}");
    }
    assert!(
        rig.objects
            .keys_under("b", "_rejects/jsonl/inflate/")
            .is_empty()
    );
}
