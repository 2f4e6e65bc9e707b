//! The chunk writer against throttling and refusing tables.

use super::*;
use crate::ingest::item::Value;
use crate::port::memory::MemoryTable;
use crate::port::table::KeyNames;
use std::time::Duration;
use tokio::time::Instant;

/// Leaves the last `throttle` items unprocessed on each of the first `rounds` calls.
struct ThrottlingTable {
    calls: Mutex<Vec<usize>>,
    stored: Mutex<Vec<Item>>,
    throttle: usize,
    rounds: usize,
}

impl ThrottlingTable {
    fn new(throttle: usize, rounds: usize) -> Self {
        Self {
            calls: Mutex::new(vec![]),
            stored: Mutex::new(vec![]),
            throttle,
            rounds,
        }
    }
}

#[async_trait::async_trait]
impl RecordTable for ThrottlingTable {
    async fn batch_put(&self, _: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        let round = self.calls.lock().unwrap().len();
        self.calls.lock().unwrap().push(items.len());
        let keep = if round < self.rounds {
            items.len().saturating_sub(self.throttle)
        } else {
            items.len()
        };
        let (stored, unprocessed) = items.split_at(keep);
        let copied = |items: &[&Item]| items.iter().map(|item| (*item).clone()).collect::<Vec<_>>();
        self.stored.lock().unwrap().extend(copied(stored));
        Ok(copied(unprocessed))
    }
}

/// Refuses like the server; the first request it accepts is half left unprocessed.
struct StrictAndThrottled {
    throttled: Mutex<bool>,
    inner: MemoryTable,
}

#[async_trait::async_trait]
impl RecordTable for StrictAndThrottled {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        let refused = items.iter().find_map(|item| {
            crate::ingest::typing::refusal::refusal(item, "measure_point", Some("timestamp"))
        });
        if let Some(message) = refused {
            let table = table.to_owned();
            return Err(WriteError::Refused { table, message });
        }
        if !std::mem::replace(&mut *self.throttled.lock().unwrap(), true) {
            let (sent, held) = items.split_at(items.len() / 2);
            self.inner.batch_put(table, sent).await?;
            return Ok(held.iter().map(|item| (*item).clone()).collect());
        }
        self.inner.batch_put(table, items).await
    }
}

fn row(point: &str, second: u32, temp: &str) -> SourcedRow {
    let timestamp = format!("2025-11-26T00:00:{second:02}Z");
    let key = (point.to_owned(), timestamp.clone());
    let item = Item::from_iter([
        ("measure_point".into(), Value::S(point.into())),
        ("timestamp".into(), Value::S(timestamp)),
        ("temp".into(), Value::N(temp.into())),
    ]);
    SourcedRow {
        object: Arc::from("data/a.csv"),
        ranged: false,
        slot: None,
        key_hash: crate::app::worker::lanes::key_hash(&key),
        row: TypedRow {
            key,
            size: crate::ingest::typing::item_size(&item),
            item,
            line: u64::from(second) + 2,
            offset: 0,
            delete: false,
        },
    }
}

static KEY: std::sync::LazyLock<KeyNames> =
    std::sync::LazyLock::new(|| KeyNames::new("measure_point", Some("timestamp")));

fn writer<'a>(
    table: &'a dyn RecordTable,
    limiter: &'a AimdLimiter,
    deadline: Option<Instant>,
    rejects: &'a Mutex<BatchRejects>,
) -> ChunkWriter<'a> {
    ChunkWriter {
        table,
        table_name: "t",
        key: &KEY,
        mode: WriteMode::Put,
        pacer: None,
        recomputed: None,
        limiter,
        deadline,
        rejects,
    }
}

#[tokio::test(start_paused = true)]
async fn unprocessed_items_are_retried_until_stored_and_cut_the_limit() {
    let table = ThrottlingTable::new(10, 2);
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let chunk: Vec<_> = (0..25).map(|i| row("p", i, "1")).collect();
    let outcome = writer(&table, &limiter, None, &rejects)
        .write(chunk)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 25,
            duplicates: 0,
            rejected: 0,
            retries: 2,
            existing: 0,
            // Every attempt is paced: 25 items, then the 10 left twice.
            units: 45,
        }
    );
    assert_eq!(*table.calls.lock().unwrap(), vec![25, 10, 10]);
    assert_eq!(table.stored.lock().unwrap().len(), 25);
    assert_eq!(limiter.report().cuts, 2);
}

#[tokio::test(start_paused = true)]
async fn endless_throttling_fails_loudly_after_the_schedule() {
    let table = ThrottlingTable::new(1, usize::MAX);
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let err = writer(&table, &limiter, None, &rejects)
        .write(vec![row("p", 1, "1"), row("p", 2, "1")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::RetriesExhausted {
                left: 1,
                retries: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_stop_before_the_deadline() {
    let table = ThrottlingTable::new(1, usize::MAX);
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let deadline = Instant::now() + Duration::from_secs(2);
    let started = Instant::now();
    let err = writer(&table, &limiter, Some(deadline), &rejects)
        .write(vec![row("p", 1, "1")])
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::RetriesExhausted { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn duplicate_keys_in_a_chunk_keep_the_last_row() {
    let table = ThrottlingTable::new(0, 0);
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let chunk = vec![row("p", 1, "1"), row("q", 1, "2"), row("p", 1, "3")];
    let outcome = writer(&table, &limiter, None, &rejects)
        .write(chunk)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 2,
            duplicates: 1,
            rejected: 0,
            retries: 0,
            existing: 0,
            units: 2,
        }
    );
    let stored = table.stored.lock().unwrap();
    assert_eq!(stored[0]["temp"], Value::N("3".into()));
    assert_eq!(stored[1]["measure_point"], Value::S("q".into()));
}

#[tokio::test(start_paused = true)]
async fn a_refused_write_is_split_until_only_the_bad_row_is_rejected() {
    let table = MemoryTable::new("measure_point", Some("timestamp"));
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::new(BatchRejects::default());
    let mut chunk: Vec<_> = (0..25).map(|i| row("p", i, "1")).collect();
    chunk[17] = row("p", 17, "1e200");
    let outcome = writer(&table, &limiter, None, &rejects)
        .write(chunk)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 24,
            duplicates: 0,
            rejected: 1,
            retries: 0,
            existing: 0,
            units: outcome.units,
        }
    );
    assert_eq!(table.items("t").len(), 24);
    let rejects = rejects.into_inner().unwrap();
    let [record] = rejects.records() else {
        panic!("one reject expected: {:?}", rejects.records())
    };
    assert_eq!((record.key.as_str(), record.line), ("data/a.csv", 19));
    assert_eq!(
        record.reason,
        "DynamoDB refused the item: Number overflow. Attempting to store a number with \
         magnitude larger than supported range"
    );
    assert!(record.raw.contains("\"temp\":\"1e200\""), "{}", record.raw);
}

#[tokio::test(start_paused = true)]
async fn several_refused_rows_and_throttling_together_lose_nothing() {
    let table = StrictAndThrottled {
        throttled: Mutex::new(false),
        inner: MemoryTable::new("measure_point", Some("timestamp")),
    };
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::new(BatchRejects::default());
    let mut chunk: Vec<_> = (0..25).map(|i| row("p", i, "1")).collect();
    for bad in [0, 12, 24] {
        chunk[bad] = row("p", bad as u32, "1e200");
    }
    let outcome = writer(&table, &limiter, None, &rejects)
        .write(chunk)
        .await
        .unwrap();
    assert_eq!((outcome.written, outcome.rejected), (22, 3));
    assert_eq!(outcome.retries, 1);
    assert_eq!(table.inner.items("t").len(), 22);
    let lines: Vec<u64> = rejects
        .into_inner()
        .unwrap()
        .records()
        .iter()
        .map(|r| r.line)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(lines, vec![2, 14, 26]);
}

#[tokio::test(start_paused = true)]
async fn other_failures_still_fail_the_chunk() {
    struct Down;
    #[async_trait::async_trait]
    impl RecordTable for Down {
        async fn batch_put(&self, table: &str, _: &[&Item]) -> Result<Vec<Item>, WriteError> {
            Err(WriteError::Call {
                operation: "BatchWriteItem",
                table: table.into(),
                source: "connection refused".into(),
            })
        }
    }
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::new(BatchRejects::default());
    let err = writer(&Down, &limiter, None, &rejects)
        .write(vec![row("p", 1, "1")])
        .await
        .unwrap_err();
    assert!(matches!(err, WriteError::Call { .. }), "{err}");
    assert!(rejects.into_inner().unwrap().is_empty());
}

fn moded<'a>(
    table: &'a dyn RecordTable,
    mode: WriteMode,
    limiter: &'a AimdLimiter,
    rejects: &'a Mutex<BatchRejects>,
) -> ChunkWriter<'a> {
    ChunkWriter {
        mode,
        ..writer(table, limiter, None, rejects)
    }
}

#[tokio::test]
async fn an_insert_counts_taken_keys_as_existing_and_its_own_redelivery_as_written() {
    let table = MemoryTable::new("measure_point", Some("timestamp"));
    table
        .batch_put("t", &[&row("p", 1, "99").row.item])
        .await
        .unwrap();
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let insert = moded(&table, WriteMode::Insert, &limiter, &rejects);
    let chunk = || vec![row("p", 1, "1"), row("p", 2, "2"), row("p", 3, "3")];
    let first = insert.write(chunk()).await.unwrap();
    assert_eq!((first.written, first.existing), (2, 1));
    // The same chunk again (a redelivered batch): its own rows are found and still count as
    // written; the item that was there before the job is still existing, and kept.
    let again = insert.write(chunk()).await.unwrap();
    assert_eq!((again.written, again.existing), (2, 1));
    let stored = table.items("t");
    assert_eq!(stored[0]["temp"], Value::N("99".into()));
    assert_eq!(stored[1]["temp"], Value::N("2".into()));
    // Another row for a key this job inserted is not this row: existing.
    let other = insert.write(vec![row("p", 2, "7")]).await.unwrap();
    assert_eq!((other.written, other.existing), (0, 1));
    assert!(rejects.into_inner().unwrap().is_empty());
}

#[tokio::test]
async fn an_update_merges_and_a_delete_removes_by_key_both_idempotent() {
    let table = MemoryTable::new("measure_point", Some("timestamp"));
    let mut wide = row("p", 1, "1").row.item;
    wide.insert("humidity".into(), Value::N("40".into()));
    table.batch_put("t", &[&wide]).await.unwrap();
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let update = moded(&table, WriteMode::Update, &limiter, &rejects);
    for _ in 0..2 {
        let outcome = update
            .write(vec![row("p", 1, "5"), row("q", 1, "6")])
            .await
            .unwrap();
        assert_eq!((outcome.written, outcome.existing), (2, 0));
    }
    let stored = table.items("t");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0]["temp"], Value::N("5".into()));
    assert_eq!(stored[0]["humidity"], Value::N("40".into()), "kept");
    let delete = moded(&table, WriteMode::Delete, &limiter, &rejects);
    for _ in 0..2 {
        let outcome = delete.write(vec![row("p", 1, "0")]).await.unwrap();
        assert_eq!(outcome.written, 1);
    }
    assert_eq!(table.items("t").len(), 1);
    assert_eq!(table.items("t")[0]["measure_point"], Value::S("q".into()));
}

/// An incremental export's chunk can hold only deletes (or only puts): the empty half is not
/// sent (DynamoDB refuses an empty request, and halving it never ended).
#[tokio::test]
async fn a_chunk_of_only_deletes_or_only_puts_of_an_export_writes_its_rows() {
    let table = MemoryTable::new("measure_point", Some("timestamp"));
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let put = moded(&table, WriteMode::Put, &limiter, &rejects);
    let change = |second, delete| {
        let mut sourced = row("p", second, "1");
        sourced.row.delete = delete;
        sourced
    };
    let bounded = |write| tokio::time::timeout(Duration::from_secs(5), write);
    let puts = bounded(put.write(vec![change(1, false), change(2, false)])).await;
    assert_eq!(puts.expect("ends").unwrap().written, 2);
    let deletes = bounded(put.write(vec![change(1, true)])).await;
    assert_eq!(deletes.expect("ends").unwrap().written, 1);
    assert_eq!(table.items("t").len(), 1);
}

#[tokio::test]
async fn a_refused_insert_or_update_rejects_that_row_alone() {
    let table = MemoryTable::new("measure_point", Some("timestamp"));
    let limiter = AimdLimiter::new(8, 1);
    for mode in [WriteMode::Insert, WriteMode::Update] {
        let rejects = Mutex::default();
        let writer = moded(&table, mode, &limiter, &rejects);
        let outcome = writer
            .write(vec![row("r", 1, "1e200"), row("r", 2, "1")])
            .await
            .unwrap();
        assert_eq!((outcome.written, outcome.rejected), (1, 1), "{mode:?}");
        assert_eq!(rejects.into_inner().unwrap().records().len(), 1);
    }
}

/// Throttles every single write `times` times before taking it.
struct ThrottledSingles {
    left: Mutex<usize>,
    inner: MemoryTable,
}

#[async_trait::async_trait]
impl RecordTable for ThrottledSingles {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        self.inner.batch_put(table, items).await
    }

    async fn update(&self, table: &str, key: &KeyNames, item: Item) -> Result<(), WriteError> {
        let throttled = {
            let mut left = self.left.lock().unwrap();
            let throttled = *left > 0;
            *left = left.saturating_sub(1);
            throttled
        };
        if throttled {
            return Err(WriteError::Throttled {
                operation: "UpdateItem",
                table: table.into(),
            });
        }
        self.inner.update(table, key, item).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_throttled_single_write_backs_off_cuts_the_limit_and_lands() {
    let table = ThrottledSingles {
        left: Mutex::new(3),
        inner: MemoryTable::new("measure_point", Some("timestamp")),
    };
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let outcome = moded(&table, WriteMode::Update, &limiter, &rejects)
        .write(vec![row("p", 1, "1")])
        .await
        .unwrap();
    assert_eq!((outcome.written, outcome.retries, outcome.units), (1, 3, 4));
    assert_eq!(limiter.report().cuts, 3);
    assert_eq!(table.inner.items("t").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_attempt_takes_its_billed_units_from_the_pacer() {
    let table = MemoryTable::new("measure_point", Some("timestamp"));
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let pacer = RatePacer::new(10.0);
    let mut big = row("p", 1, "1");
    // 2,100 bytes of value: 3 write units (1 KB started thrice).
    big.row
        .item
        .insert("note".into(), Value::S("x".repeat(2100)));
    big.row.size = crate::ingest::typing::item_size(&big.row.item);
    let writer = ChunkWriter {
        pacer: Some(&pacer),
        ..writer(&table, &limiter, None, &rejects)
    };
    let started = Instant::now();
    let mut chunk: Vec<_> = (2..12).map(|i| row("p", i, "1")).collect();
    chunk.push(big);
    let first = writer.write(chunk).await.unwrap();
    assert_eq!(first.units, 13);
    // The next chunk waits for the first one's 13 units at 10 per second.
    let second = writer.write(vec![row("q", 1, "1")]).await.unwrap();
    assert_eq!(second.units, 1);
    assert_eq!(started.elapsed(), Duration::from_millis(1300));
    assert_eq!(pacer.spent().0, 14);
}

/// Throttles the first `left` BatchWriteItem calls whole (the SDK gave up on them).
struct ThrottledCalls {
    left: Mutex<usize>,
    inner: MemoryTable,
}

#[async_trait::async_trait]
impl RecordTable for ThrottledCalls {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        let throttled = {
            let mut left = self.left.lock().unwrap();
            let throttled = *left > 0;
            *left = left.saturating_sub(1);
            throttled
        };
        if throttled {
            return Err(WriteError::Throttled {
                operation: "BatchWriteItem",
                table: table.into(),
            });
        }
        self.inner.batch_put(table, items).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_whole_batch_call_throttled_is_retried_like_unprocessed_items() {
    let table = ThrottledCalls {
        left: Mutex::new(2),
        inner: MemoryTable::new("measure_point", Some("timestamp")),
    };
    let limiter = AimdLimiter::new(8, 1);
    let rejects = Mutex::default();
    let chunk: Vec<_> = (0..5).map(|i| row("p", i, "1")).collect();
    let outcome = writer(&table, &limiter, None, &rejects)
        .write(chunk)
        .await
        .unwrap();
    assert_eq!(
        (outcome.written, outcome.retries, outcome.units),
        (5, 2, 15)
    );
    assert_eq!(limiter.report().cuts, 2);
    assert_eq!(table.inner.items("t").len(), 5);
}
