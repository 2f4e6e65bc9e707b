//! Resumable batches on the in-memory doubles: a slow table and a short deadline make a batch
//! take several parts; every row lands once and the batch is counted once with exact totals,
//! whatever part is delivered twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Processed, Worker};
use crate::app::config::{CoordinatorConfig, WorkerConfig};
use crate::app::test_rig::{NOTES_HEADER, Rig, notes_csv, notes_schema};
use crate::contract::dialect::CsvDialect;
use crate::contract::messages::{BatchMessage, JobRequest, Work};
use crate::ingest::compression::testing::gzip;
use crate::ingest::item::Item;
use crate::job::model::JobStatus;
use crate::port::memory::MemoryTable;
use crate::port::table::{RecordTable, TableDescription, WriteError};

/// A table that takes `delay` per BatchWriteItem, like one throttled to a low rate.
pub(super) struct SlowTable {
    inner: Arc<MemoryTable>,
    delay: Duration,
    calls: AtomicU64,
}

#[async_trait::async_trait]
impl RecordTable for SlowTable {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(self.delay).await;
        self.inner.batch_put(table, items).await
    }

    async fn describe(&self, table: &str) -> Result<TableDescription, WriteError> {
        self.inner.describe(table).await
    }
}

/// The rig writing through a table that takes `delay` per call.
pub(super) fn slow_rig(delay: Duration) -> (Rig, Arc<SlowTable>) {
    let table = Arc::new(MemoryTable::new("id", None));
    let slow = Arc::new(SlowTable {
        inner: table.clone(),
        delay,
        calls: AtomicU64::new(0),
    });
    (Rig::writing_through(table, slow.clone()), slow)
}

/// A worker that stops `margin` before its deadline and writes one call at a time.
pub(super) fn worker(rig: &Rig, margin: Duration) -> Worker {
    rig.worker(WorkerConfig {
        write_concurrency: 1,
        resume_margin: margin,
        ..Rig::worker_config()
    })
}

/// Starts job `job_id` on prefix `in/` (or on one object, `key`, split above `chunk`) with
/// batches of 100 keys whatever their bytes, and returns its one batch.
pub(super) async fn one_batch(
    rig: &Rig,
    job_id: &str,
    key: Option<&str>,
    chunk: u64,
) -> BatchMessage {
    let request = JobRequest {
        job_id: Some(job_id.into()),
        key: key.map(str::to_owned),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", if key.is_some() { "" } else { "in/" })
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        batch_size: 100,
        batch_bytes: 1 << 30,
        range_chunk_bytes: chunk,
        control_queue_url: None,
        ..Rig::coordinator_config()
    });
    let started = coordinator.start_job(request, None).await.unwrap();
    assert_eq!(started.listing.batches, 1);
    rig.batches().remove(0)
}

/// Runs a chain of parts from `batch`, each invocation with `budget` before its deadline,
/// until the batch is counted; returns how many parts it took. A part that could not load a
/// row in its time (a slow start on a busy machine) fails, and is delivered again, as SQS
/// would.
pub(super) async fn run_chain(worker: &Worker, mut batch: BatchMessage, budget: Duration) -> usize {
    for parts in 1..=200 {
        let deadline = Instant::now() + budget;
        match worker.process(&batch, Some(deadline)).await {
            Err(super::WorkerError::NoProgress) => continue,
            Err(error) => panic!("{error}"),
            Ok(Processed::Counted(_)) => return parts,
            Ok(Processed::Continued(next)) => {
                assert_eq!(next.batch, batch.batch, "the same batch");
                assert_eq!(next.part(), batch.part() + 1);
                batch = *next;
            }
            Ok(Processed::Shared) => unreachable!("no inflated object here"),
        }
    }
    panic!("the batch never finished");
}

#[tokio::test]
async fn a_batch_on_a_slow_table_finishes_across_parts_with_every_row_once() {
    // 25 rows a write call, 8 ms each, one at a time: 1,200 rows take ~0.4 s of writes;
    // each invocation has 150 ms, of which the last 100 are kept for the rows in flight.
    let (rig, table) = slow_rig(Duration::from_millis(8));
    let mut expected = Vec::new();
    let mut input_bytes = 0;
    for name in ["a", "b", "c"] {
        let (text, rows) = notes_csv(name, 300, true);
        input_bytes += text.len() as u64;
        rig.objects.insert("b", &format!("in/{name}.csv"), text);
        expected.extend(rows);
    }
    let (text, rows) = notes_csv("z", 300, true);
    let packed = gzip(text.as_bytes()).await;
    input_bytes += packed.len() as u64;
    rig.objects.insert("b", "in/z.csv.gz", packed);
    expected.extend(rows);
    expected.sort();

    let batch = one_batch(&rig, "slow", None, 1 << 30).await;

    let worker = worker(&rig, Duration::from_millis(100));
    let parts = run_chain(&worker, batch, Duration::from_millis(150)).await;
    assert!(parts >= 3, "{parts} parts");

    let job = rig.job("slow").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.batches_done, 1, "counted once, by the last part");
    assert_eq!(job.totals.rows_written, 1200, "the sum of every part");
    assert_eq!(job.totals.rows_rejected, 0);
    assert_eq!(
        job.totals.files, 4,
        "each object counted by the part that finished it"
    );
    assert_eq!(job.totals.files_failed, 0);
    assert_eq!(
        job.totals.bytes, input_bytes,
        "the parts add up to the input"
    );
    assert_eq!(rig.rows(), expected, "every row once, byte for byte");
    // Each row was written once: no part re-read what an earlier one had loaded.
    let calls = table.calls.load(Ordering::Relaxed);
    assert!(calls <= 1200 / 25 + 2 * parts as u64, "{calls} write calls");
}

#[tokio::test]
async fn a_part_delivered_twice_forks_harmlessly_and_the_batch_counts_once() {
    let (rig, _) = slow_rig(Duration::from_millis(8));
    let (text, mut expected) = notes_csv("d", 600, true);
    rig.objects.insert("b", "in/d.csv", text.clone());
    expected.sort();
    let batch = one_batch(&rig, "dup", None, 1 << 30).await;
    let worker = worker(&rig, Duration::from_millis(60));
    let budget = Duration::from_millis(100);

    // Part 0 runs; before its message is deleted it is delivered again, and runs again:
    // two continuations of the same batch now exist. Both chains run to their end.
    let first = worker
        .process(&batch, Some(Instant::now() + budget))
        .await
        .unwrap();
    let again = worker
        .process(&batch, Some(Instant::now() + budget))
        .await
        .unwrap();
    let (Processed::Continued(one), Processed::Continued(two)) = (first, again) else {
        panic!("600 rows at 25 per 8 ms do not fit 40 ms");
    };
    let parts_one = run_chain(&worker, *one.clone(), budget).await;
    // The first chain's part 1 delivered twice as well: its second run finds nothing new.
    run_chain(&worker, *one, budget).await;
    let parts_two = run_chain(&worker, *two, budget).await;
    assert!(parts_one + parts_two >= 2);

    let job = rig.job("dup").await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.batches_done, 1);
    assert_eq!(
        job.totals.rows_written, 600,
        "one chain's exact totals, counted once"
    );
    assert_eq!(job.totals.bytes, text.len() as u64);
    assert_eq!(job.totals.files, 1);
    assert_eq!(rig.rows(), expected, "every row once");
}

#[tokio::test]
async fn a_range_resumes_at_its_next_row_and_counts_its_bytes_once() {
    let (rig, _) = slow_rig(Duration::from_millis(8));
    let (text, mut expected) = notes_csv("r", 1000, true);
    rig.objects.insert("b", "big.csv", text.clone());
    expected.sort();
    // A chunk just under the object: one range, parsed without a scan.
    let chunk = text.len() as u64 - 4;
    let batch = one_batch(&rig, "range", Some("big.csv"), chunk).await;
    assert!(matches!(batch.work, Work::Range(_)), "{batch:?}");
    let parts = run_chain(
        &worker(&rig, Duration::from_millis(60)),
        batch,
        Duration::from_millis(100),
    )
    .await;
    assert!(parts >= 3, "{parts} parts");
    let job = rig.job("range").await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.totals.rows_written, 1000);
    let data = (text.len() - NOTES_HEADER.len()) as u64;
    assert_eq!(job.totals.bytes, data, "the range once");
    // The coordinator read the header's window (here the whole object) to plan the range.
    assert_eq!(job.planning_bytes_read, text.len() as u64);
    assert_eq!(
        job.totals.bytes_read,
        data + job.planning_bytes_read,
        "each byte read by one part"
    );
    assert_eq!(rig.rows(), expected);
}

#[tokio::test]
async fn a_part_with_no_time_left_fails_rather_than_handing_on_the_same_work() {
    let (rig, _) = slow_rig(Duration::from_millis(1));
    let (text, _) = notes_csv("n", 10, true);
    rig.objects.insert("b", "in/n.csv", text);
    let batch = one_batch(&rig, "none", None, 1 << 30).await;
    // The deadline has come: the stop is due before the first GET.
    let worker = worker(&rig, Duration::from_secs(5));
    let error = worker
        .process(&batch, Some(Instant::now()))
        .await
        .unwrap_err();
    assert!(matches!(error, super::WorkerError::NoProgress), "{error}");
    assert!(rig.batches().is_empty(), "nothing handed on");
    // A margin longer than the time left takes only 90% of it: the batch still runs.
    worker
        .process(&batch, Some(Instant::now() + Duration::from_secs(4)))
        .await
        .unwrap();
    assert!(rig.batches().is_empty(), "done in one part");
    assert_eq!(rig.job("none").await.totals.rows_written, 10);
}

/// `rows` as JSON Lines (`{"id": ..., "note": ...}`), CRLF every other line.
fn notes_jsonl(rows: &[(String, String)]) -> String {
    let mut text = String::new();
    for (i, (id, note)) in rows.iter().enumerate() {
        let line = serde_json::json!({"id": id, "note": note}).to_string();
        text.push_str(&line);
        text.push_str(if i % 2 == 1 { "\r\n" } else { "\n" });
    }
    text
}

#[tokio::test]
async fn jsonl_objects_resume_across_parts_plain_by_offset_compressed_by_rows() {
    let (rig, table) = slow_rig(Duration::from_millis(8));
    let (_, plain_rows) = notes_csv("p", 600, true);
    let (_, packed_rows) = notes_csv("g", 600, true);
    let plain = notes_jsonl(&plain_rows);
    let packed = gzip(notes_jsonl(&packed_rows).as_bytes()).await;
    let input_bytes = (plain.len() + packed.len()) as u64;
    rig.objects.insert("b", "in/p.jsonl", plain);
    rig.objects.insert("b", "in/g.jsonl.gz", packed);
    let mut expected: Vec<_> = plain_rows.into_iter().chain(packed_rows).collect();
    expected.sort();

    let batch = one_batch(&rig, "lines", None, 1 << 30).await;
    let worker = worker(&rig, Duration::from_millis(100));
    // The first part stops partway: the plain object's rest is a row span at a line start,
    // the compressed one's a count of rows done.
    let first = worker
        .process(&batch, Some(Instant::now() + Duration::from_millis(150)))
        .await
        .unwrap();
    let Processed::Continued(next) = first else {
        panic!("1,200 rows at 25 per 8 ms do not fit 50 ms");
    };
    let resumed = next.resumed.clone().unwrap_or_default();
    for range in &resumed.ranges {
        assert_eq!(range.key, "in/p.jsonl");
        assert!(range.rows.is_some() && range.header.is_empty(), "{range:?}");
    }
    assert!(resumed.tails.iter().all(|t| t.key == "in/g.jsonl.gz"));
    let parts = 1 + run_chain(&worker, *next, Duration::from_millis(150)).await;
    assert!(parts >= 3, "{parts} parts");

    let job = rig.job("lines").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 1200);
    assert_eq!(job.totals.rows_rejected, 0);
    assert_eq!(job.totals.files, 2);
    assert_eq!(
        job.totals.bytes, input_bytes,
        "the parts add up to the input"
    );
    assert_eq!(rig.rows(), expected, "every row once, byte for byte");
    let calls = table.calls.load(Ordering::Relaxed);
    assert!(calls <= 1200 / 25 + 2 * parts as u64, "{calls} write calls");
}

/// `rows` as CSV of `dialect` (its delimiter and quote; a header only if it has one).
fn notes_in(rows: &[(String, String)], dialect: &CsvDialect) -> String {
    let (d, q) = (dialect.delimiter as char, dialect.quote as char);
    let mut text = if dialect.header {
        format!("id{d}note\n")
    } else {
        String::new()
    };
    for (i, (id, note)) in rows.iter().enumerate() {
        let field = if note.contains([d, q, '\n', '\r']) {
            format!("{q}{}{q}", note.replace(q, &format!("{q}{q}")))
        } else {
            note.clone()
        };
        text.push_str(&format!("{id}{d}{field}"));
        text.push_str(if i % 2 == 1 { "\r\n" } else { "\n" });
    }
    text
}

#[tokio::test]
async fn a_headerless_tsv_resumes_across_parts_plain_by_offset_compressed_by_rows() {
    let (rig, _) = slow_rig(Duration::from_millis(8));
    let dialect = CsvDialect {
        delimiter: b'\t',
        quote: b'\'',
        header: false,
    };
    let mut expected = Vec::new();
    let mut input_bytes = 0;
    for (name, key) in [("p", "in/p.csv"), ("g", "in/g.csv.gz")] {
        // Notes with tabs, quotes and newlines, quoted in this dialect.
        let rows: Vec<(String, String)> = (0..600)
            .map(|i| {
                let note = match i % 3 {
                    0 => format!("tab\there, 'quoted'\nand \"not\" {i}"),
                    1 => String::new(),
                    _ => format!("plain;{i}"),
                };
                (format!("{name}-{i:04}"), note)
            })
            .collect();
        let text = notes_in(&rows, &dialect);
        let body = match key.ends_with(".gz") {
            true => gzip(text.as_bytes()).await,
            false => text.into_bytes(),
        };
        input_bytes += body.len() as u64;
        rig.objects.insert("b", key, body);
        expected.extend(rows);
    }
    expected.sort();
    let mut schema = notes_schema();
    schema.csv = dialect;
    let request = JobRequest {
        job_id: Some("tsv".into()),
        schema: Some(schema),
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        batch_size: 100,
        batch_bytes: 1 << 30,
        ..Rig::coordinator_config()
    });
    coordinator.start_job(request, None).await.unwrap();
    let batch = rig.batches().remove(0);
    let worker = worker(&rig, Duration::from_millis(100));
    let first = worker
        .process(&batch, Some(Instant::now() + Duration::from_millis(150)))
        .await
        .unwrap();
    let Processed::Continued(next) = first else {
        panic!("1,200 rows at 25 per 8 ms do not fit 50 ms");
    };
    let resumed = next.resumed.clone().unwrap_or_default();
    for range in &resumed.ranges {
        // The plain object's rest names the schema's columns: it has no header to reread.
        assert_eq!(range.header, ["id", "note"], "{range:?}");
    }
    run_chain(&worker, *next, Duration::from_millis(150)).await;
    let job = rig.job("tsv").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 1200);
    assert_eq!(job.totals.rows_rejected, 0);
    assert_eq!(job.totals.bytes, input_bytes);
    assert_eq!(rig.rows(), expected, "every row once, byte for byte");
}

#[tokio::test]
async fn a_jsonl_split_by_lines_resumes_each_range_at_its_next_line() {
    let (rig, _) = slow_rig(Duration::from_millis(8));
    // 1,000 lines a range: more than the writer's channel holds, so each range must stop.
    let (_, mut expected) = notes_csv("j", 3000, true);
    let text = notes_jsonl(&expected);
    rig.objects.insert("b", "big.jsonl", text.clone());
    expected.sort();
    let request = JobRequest {
        job_id: Some("lines-split".into()),
        key: Some("big.jsonl".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "")
    };
    let chunk = text.len() as u64 / 3 + 1;
    let coordinator = rig.coordinator(CoordinatorConfig {
        range_chunk_bytes: chunk,
        control_queue_url: None,
        ..Rig::coordinator_config()
    });
    let started = coordinator.start_job(request, None).await.unwrap();
    assert_eq!(started.listing.batches, 3, "three ranges, no scans");
    let batches = rig.batches();
    assert!(batches.iter().all(|b| matches!(b.work, Work::Range(_))));
    let worker = worker(&rig, Duration::from_millis(60));
    let mut parts = 0;
    for batch in batches {
        parts += run_chain(&worker, batch, Duration::from_millis(100)).await;
    }
    assert!(parts >= 4, "{parts} parts: the ranges stopped and resumed");
    let job = rig.job("lines-split").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 3000);
    assert_eq!(job.totals.rows_duplicate, 0);
    assert_eq!(job.totals.bytes, text.len() as u64, "each range once");
    // Each byte once, plus per range (and per resumed part) the byte before it and the rest
    // of its last line.
    let longest = text.lines().map(str::len).max().unwrap_or(0) as u64 + 1;
    let slack = parts as u64 * (1 + longest);
    assert!(
        (text.len() as u64..=text.len() as u64 + slack).contains(&job.totals.bytes_read),
        "{} read of {}",
        job.totals.bytes_read,
        text.len()
    );
    assert_eq!(rig.rows(), expected, "every line once, byte for byte");
}

#[tokio::test]
async fn parquet_resumes_mid_row_group_by_rows_whole_and_by_row_group() {
    use crate::ingest::format::parquet_rows::test_files::{
        self, Spec, every_type_file, snappy, zstd,
    };
    use crate::ingest::format::parquet_rows::tests::{every_type_schema, expected_item};

    let (rig, _) = slow_rig(Duration::from_millis(8));
    // A small file read whole in a key batch, and a large one in row groups of 700 rows:
    // a part writes a few hundred rows, so each stops inside a row group.
    let small = every_type_file(&Spec::new(&[300, 300], zstd()));
    let mut large_spec = Spec::new(&[700, 700, 700], snappy());
    large_spec.first_row = 600;
    let large = every_type_file(&large_spec);
    rig.objects.insert("b", "in/a.parquet", small.clone());
    rig.objects.insert("b", "in/b.parquet", large.clone());
    let chunk = large.len() as u64 / 3;
    assert!(
        (small.len() as u64) < chunk,
        "{} {}",
        small.len(),
        large.len()
    );
    let request = JobRequest {
        job_id: Some("pq-resume".into()),
        schema: Some(every_type_schema()),
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        batch_size: 100,
        batch_bytes: 1 << 30,
        range_chunk_bytes: chunk,
        control_queue_url: None,
        ..Rig::coordinator_config()
    });
    coordinator.start_job(request, None).await.unwrap();
    let batches = rig.batches();
    assert!(batches.iter().any(|b| b.work.keys() == ["in/a.parquet"]));
    assert!(
        batches
            .iter()
            .filter(|b| matches!(b.work, Work::RowGroups(_)))
            .count()
            >= 2
    );
    // The input: the small file whole, each task's footer and column chunks.
    let input = small.len() as u64
        + batches
            .iter()
            .map(|b| match &b.work {
                Work::RowGroups(task) => task.fetched_bytes(),
                _ => 0,
            })
            .sum::<u64>();
    let worker = worker(&rig, Duration::from_millis(60));
    let mut parts = 0;
    for batch in batches {
        parts += run_chain(&worker, batch, Duration::from_millis(100)).await;
    }
    assert!(parts >= 6, "{parts} parts: the batches stopped and resumed");
    let job = rig.job("pq-resume").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 2700);
    assert_eq!(job.totals.rows_duplicate, 0, "no row loaded twice");
    // Each object once: the key batch's by its last part, the large one by the task that
    // ends it.
    assert_eq!(job.totals.files, 2, "{job:?}");
    // Every part fetched its bytes again (a whole file, or a task's footer and chunks), and
    // each fetch is counted; the input once.
    assert_eq!(job.totals.bytes, input, "{job:?}");
    assert!(job.totals.bytes_read > input, "{job:?}");
    let stored = rig.table.items(crate::app::test_rig::RECORDS);
    assert_eq!(stored.len(), 2700);
    for item in stored {
        let Some(crate::ingest::item::Value::S(id)) = item.get("id") else {
            panic!("{item:?}");
        };
        let i: usize = id[1..].parse().unwrap();
        assert_eq!(test_files::id(i), *id);
        let item: std::collections::BTreeMap<_, _> = item.into_iter().collect();
        assert_eq!(item, expected_item(i), "row {i}");
    }
}

#[tokio::test]
async fn an_export_data_file_resumed_across_parts_is_still_checked_whole_by_its_md5() {
    use crate::ingest::export_writer::{ExportSpec, write_export};
    use crate::ingest::item::Value;
    use crate::port::table::KeyType;
    let table = Arc::new(MemoryTable::new("id", Some("n")).with_key_types(KeyType::S, KeyType::N));
    let slow = Arc::new(SlowTable {
        inner: table.clone(),
        delay: Duration::from_millis(8),
        calls: AtomicU64::new(0),
    });
    let rig = Rig::writing_through(table, slow);
    let item = |n: u32| {
        Item::from_iter([
            ("id".to_owned(), Value::S("a".into())),
            ("n".to_owned(), Value::N(n.to_string())),
        ])
    };
    let spec = |from: u32| ExportSpec {
        bucket: "b".into(),
        export_id: "01764583200000-abcd1234".into(),
        files: vec![(from..from + 600).map(item).collect()],
        ..ExportSpec::default()
    };
    for (job_id, replaced) in [("whole", false), ("swapped", true)] {
        for (key, bytes) in write_export(&spec(0)).await {
            rig.objects.insert("b", &key, bytes);
        }
        if replaced {
            // As many items, other values, in the data file's place.
            for (key, bytes) in write_export(&spec(1000)).await {
                if key.contains("/data/") {
                    rig.objects.insert("b", &key, bytes);
                }
            }
        }
        let request = JobRequest {
            job_id: Some(job_id.into()),
            export: Some("AWSDynamoDB/01764583200000-abcd1234/".into()),
            ..JobRequest::new("b", "")
        };
        let coordinator = rig.coordinator(Rig::coordinator_config());
        coordinator.start_job(request, None).await.unwrap();
        let batch = rig.batches().pop().unwrap();
        let worker = worker(&rig, Duration::from_millis(100));
        let parts = run_chain(&worker, batch, Duration::from_millis(150)).await;
        assert!(
            parts >= 2,
            "{parts} parts: 600 rows at 25 per 8 ms do not fit 50 ms"
        );
        let job = rig.job(job_id).await;
        assert_eq!(job.totals.rows_written, 600, "{job:?}");
        assert_eq!(job.totals.files_miscounted, 0, "{job:?}");
        // The last part read the file from its first byte: its MD5 covers it all.
        assert_eq!(job.totals.files_corrupt, u64::from(replaced), "{job:?}");
        let status = [JobStatus::Complete, JobStatus::CompletedWithErrors][usize::from(replaced)];
        assert_eq!(job.status, status, "{job:?}");
    }
}
