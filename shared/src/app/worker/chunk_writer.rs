//! BatchWriteItem with UnprocessedItems retried. DynamoDB returns throttled puts in
//! `UnprocessedItems` on a *successful* response, which the SDK's retries never see; dropping
//! them silently loses rows, so every one is retried with backoff until the deadline, or the
//! call fails. Each call holds a permit of the write limiter, and unprocessed items count as
//! throttling there, so a throttled table gets fewer calls in flight, not more.
//!
//! Defence in depth: typing checks DynamoDB's limits, but should a request still be refused
//! as invalid (a ValidationException writes none of it), the request is split in halves and
//! each half retried, down to single rows; only the rows refused alone are rejected, with the
//! table's message as the reason, and every other row lands. One bad row in 25 costs about
//! 2·log2(25) ≈ 10 extra calls; a clean chunk costs nothing extra.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::ingest::decode::{MAX_RAW_BYTES, RowReject};
use crate::ingest::item::{Item, Value};
use crate::ingest::rejects::BatchRejects;
use crate::ingest::typing::TypedRow;
use crate::ingest::typing::error::cap;
use crate::limiter::AimdLimiter;
use crate::port::table::{RecordTable, WriteError};
use crate::retry::partial_failure_backoff;

/// DynamoDB's cap on requests per BatchWriteItem.
pub const MAX_BATCH_ITEMS: usize = 25;

/// A typed row and the object it came from, so a row the table refuses is reported like any
/// other rejected row.
#[derive(Debug, Clone)]
pub struct SourcedRow {
    pub object: Arc<str>,
    /// Read from a range of its object: its reject then carries the byte offset.
    pub ranged: bool,
    pub row: TypedRow,
}

/// What writes did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: u64,
    /// Rows dropped because a later row in the same chunk had the same key (DynamoDB rejects
    /// a BatchWriteItem that names one key twice; the later row wins, as a sequential load
    /// would have it).
    pub duplicates: u64,
    /// Rows the table refused as invalid, each alone (reported as rejects).
    pub rejected: u64,
    /// Retry rounds for UnprocessedItems.
    pub retries: u64,
}

impl std::ops::AddAssign for WriteOutcome {
    fn add_assign(&mut self, other: Self) {
        self.written += other.written;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.retries += other.retries;
    }
}

/// Where and how chunks are written.
pub struct ChunkWriter<'a> {
    pub table: &'a dyn RecordTable,
    pub table_name: &'a str,
    pub limiter: &'a AimdLimiter,
    /// Retries stop before this instant (the Lambda deadline less a margin); without one,
    /// after the backoff schedule's ten retries.
    pub deadline: Option<Instant>,
    /// Where rows the table refuses are reported.
    pub rejects: &'a Mutex<BatchRejects>,
}

/// Why a put of some rows stopped, and the rows it had not written.
struct Stopped {
    rows: Vec<SourcedRow>,
    error: WriteError,
}

impl ChunkWriter<'_> {
    /// Writes up to 25 rows in one BatchWriteItem, retrying unprocessed items with backoff
    /// and isolating rows the table refuses.
    pub async fn write(&self, chunk: Vec<SourcedRow>) -> Result<WriteOutcome, WriteError> {
        debug_assert!(chunk.len() <= MAX_BATCH_ITEMS);
        let total = chunk.len();
        let rows = last_wins_by_key(chunk);
        let mut outcome = WriteOutcome {
            written: rows.len() as u64,
            duplicates: (total - rows.len()) as u64,
            ..WriteOutcome::default()
        };
        let mut delays = partial_failure_backoff(self.deadline.is_some());
        let mut groups = vec![rows];
        while let Some(group) = groups.pop() {
            let Err(stopped) = self.put_all(group, &mut delays, &mut outcome.retries).await else {
                continue;
            };
            let Stopped { mut rows, error } = stopped;
            match error {
                WriteError::Refused { message, .. } if rows.len() == 1 => {
                    outcome.written -= 1;
                    outcome.rejected += 1;
                    self.reject(rows.remove(0), &message);
                }
                WriteError::Refused { .. } => {
                    tracing::debug!(rows = rows.len(), "write refused as invalid; splitting it");
                    let half = rows.split_off(rows.len() / 2);
                    groups.push(half);
                    groups.push(rows);
                }
                error => return Err(error),
            }
        }
        Ok(outcome)
    }

    /// Puts `pending` until no item is left unprocessed.
    async fn put_all(
        &self,
        mut pending: Vec<SourcedRow>,
        delays: &mut impl Iterator<Item = Duration>,
        retries: &mut u64,
    ) -> Result<(), Stopped> {
        loop {
            // Sent as copies: a refused request must be split and sent again.
            let items = pending.iter().map(|r| r.row.item.clone()).collect();
            let permit = self.limiter.acquire().await;
            let unprocessed = match self.table.batch_put(self.table_name, items).await {
                Ok(unprocessed) => unprocessed,
                Err(error) => {
                    return Err(Stopped {
                        rows: pending,
                        error,
                    });
                }
            };
            if unprocessed.is_empty() {
                permit.succeeded();
                return Ok(());
            }
            permit.throttled();
            pending = still_pending(pending, &unprocessed);
            let delay = delays.next().filter(|delay| {
                self.deadline
                    .is_none_or(|deadline| Instant::now() + *delay < deadline)
            });
            let Some(delay) = delay else {
                let error = WriteError::RetriesExhausted {
                    table: self.table_name.to_owned(),
                    left: pending.len(),
                    retries: *retries,
                };
                return Err(Stopped {
                    rows: pending,
                    error,
                });
            };
            *retries += 1;
            tracing::debug!(
                unprocessed = pending.len(),
                ?delay,
                "retrying UnprocessedItems"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Reports a row the table refused alone; its raw text is the item, as JSON (capped).
    fn reject(&self, sourced: SourcedRow, message: &str) {
        let raw: serde_json::Map<String, serde_json::Value> = sourced
            .row
            .item
            .iter()
            .map(|(name, value)| {
                let json = match value {
                    Value::S(s) | Value::N(s) => serde_json::Value::from(s.as_str()),
                    Value::Bool(b) => serde_json::Value::from(*b),
                };
                (name.clone(), json)
            })
            .collect();
        let reject = RowReject {
            line: sourced.row.line,
            byte_offset: sourced.ranged.then_some(sourced.row.offset),
            reason: format!("DynamoDB refused the item: {message}"),
            raw: cap(&serde_json::Value::Object(raw).to_string(), MAX_RAW_BYTES),
        };
        self.rejects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .row(&sourced.object, reject);
    }
}

/// The rows whose items came back unprocessed (at most 25 each way, so pairwise is fine).
fn still_pending(pending: Vec<SourcedRow>, unprocessed: &[Item]) -> Vec<SourcedRow> {
    let mut left: Vec<&Item> = unprocessed.iter().collect();
    pending
        .into_iter()
        .filter(
            |row| match left.iter().position(|item| **item == row.row.item) {
                Some(i) => {
                    left.swap_remove(i);
                    true
                }
                None => false,
            },
        )
        .collect()
}

/// Keeps the last row for each key, in first-seen order (a chunk is at most 25 rows, so a
/// scan is cheaper than hashing).
fn last_wins_by_key(chunk: Vec<SourcedRow>) -> Vec<SourcedRow> {
    let mut unique: Vec<SourcedRow> = Vec::with_capacity(chunk.len());
    for row in chunk {
        match unique.iter().position(|u| u.row.key == row.row.key) {
            Some(i) => unique[i] = row,
            None => unique.push(row),
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::memory::MemoryTable;
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
        async fn batch_put(&self, _: &str, mut items: Vec<Item>) -> Result<Vec<Item>, WriteError> {
            let round = self.calls.lock().unwrap().len();
            self.calls.lock().unwrap().push(items.len());
            let keep = if round < self.rounds {
                items.len().saturating_sub(self.throttle)
            } else {
                items.len()
            };
            let unprocessed = items.split_off(keep);
            self.stored.lock().unwrap().extend(items);
            Ok(unprocessed)
        }
    }

    /// Refuses like the server; the first request it accepts is half left unprocessed.
    struct StrictAndThrottled {
        throttled: Mutex<bool>,
        inner: MemoryTable,
    }

    #[async_trait::async_trait]
    impl RecordTable for StrictAndThrottled {
        async fn batch_put(
            &self,
            table: &str,
            mut items: Vec<Item>,
        ) -> Result<Vec<Item>, WriteError> {
            let refused = items.iter().find_map(|item| {
                crate::ingest::typing::refusal::refusal(item, "measure_point", Some("timestamp"))
            });
            if let Some(message) = refused {
                let table = table.to_owned();
                return Err(WriteError::Refused { table, message });
            }
            if !std::mem::replace(&mut *self.throttled.lock().unwrap(), true) {
                let held = items.split_off(items.len() / 2);
                self.inner.batch_put(table, items).await?;
                return Ok(held);
            }
            self.inner.batch_put(table, items).await
        }
    }

    fn row(point: &str, second: u32, temp: &str) -> SourcedRow {
        let timestamp = format!("2025-11-26T00:00:{second:02}Z");
        SourcedRow {
            object: Arc::from("data/a.csv"),
            ranged: false,
            row: TypedRow {
                key: (point.into(), timestamp.clone()),
                item: Item::from([
                    ("measure_point".into(), Value::S(point.into())),
                    ("timestamp".into(), Value::S(timestamp)),
                    ("temp".into(), Value::N(temp.into())),
                ]),
                line: u64::from(second) + 2,
                offset: 0,
            },
        }
    }

    fn writer<'a>(
        table: &'a dyn RecordTable,
        limiter: &'a AimdLimiter,
        deadline: Option<Instant>,
        rejects: &'a Mutex<BatchRejects>,
    ) -> ChunkWriter<'a> {
        ChunkWriter {
            table,
            table_name: "t",
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
                retries: 2
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
                retries: 0
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
                retries: 0
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
            async fn batch_put(&self, table: &str, _: Vec<Item>) -> Result<Vec<Item>, WriteError> {
                Err(WriteError::Call {
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
}
