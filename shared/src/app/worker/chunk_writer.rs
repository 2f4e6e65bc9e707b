//! BatchWriteItem with UnprocessedItems retried. DynamoDB returns throttled puts in
//! `UnprocessedItems` on a *successful* response, which the SDK's retries never see; dropping
//! them silently loses rows, so every one is retried with backoff until the deadline, or the
//! call fails. Each call holds a permit of the write limiter, and unprocessed items count as
//! throttling there, so a throttled table gets fewer calls in flight, not more.

use std::collections::HashMap;

use tokio::time::Instant;

use crate::ingest::item::Item;
use crate::ingest::typing::TypedRow;
use crate::limiter::AimdLimiter;
use crate::port::table::{RecordTable, WriteError};
use crate::retry::partial_failure_backoff;

/// DynamoDB's cap on requests per BatchWriteItem.
pub const MAX_BATCH_ITEMS: usize = 25;

/// What writes did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: u64,
    /// Rows dropped because a later row in the same chunk had the same key (DynamoDB rejects
    /// a BatchWriteItem that names one key twice; the later row wins, as a sequential load
    /// would have it).
    pub duplicates: u64,
    /// Retry rounds for UnprocessedItems.
    pub retries: u64,
}

impl std::ops::AddAssign for WriteOutcome {
    fn add_assign(&mut self, other: Self) {
        self.written += other.written;
        self.duplicates += other.duplicates;
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
}

impl ChunkWriter<'_> {
    /// Writes up to 25 rows in one BatchWriteItem, retrying unprocessed items with backoff.
    pub async fn write(&self, chunk: Vec<TypedRow>) -> Result<WriteOutcome, WriteError> {
        debug_assert!(chunk.len() <= MAX_BATCH_ITEMS);
        let total = chunk.len();
        let mut pending = last_wins_by_key(chunk);
        let mut outcome = WriteOutcome {
            written: pending.len() as u64,
            duplicates: (total - pending.len()) as u64,
            retries: 0,
        };
        let mut delays = partial_failure_backoff(self.deadline.is_some());
        while !pending.is_empty() {
            let permit = self.limiter.acquire().await;
            pending = self.table.batch_put(self.table_name, pending).await?;
            if pending.is_empty() {
                permit.succeeded();
                break;
            }
            permit.throttled();
            let delay = delays.next().filter(|delay| {
                self.deadline
                    .is_none_or(|deadline| Instant::now() + *delay < deadline)
            });
            let Some(delay) = delay else {
                return Err(WriteError::RetriesExhausted {
                    table: self.table_name.to_owned(),
                    left: pending.len(),
                    retries: outcome.retries,
                });
            };
            outcome.retries += 1;
            tracing::debug!(
                unprocessed = pending.len(),
                ?delay,
                "retrying UnprocessedItems"
            );
            tokio::time::sleep(delay).await;
        }
        Ok(outcome)
    }
}

/// Keeps the last row for each key, in first-seen order.
fn last_wins_by_key(chunk: Vec<TypedRow>) -> Vec<Item> {
    let mut position: HashMap<(String, String), usize> = HashMap::with_capacity(chunk.len());
    let mut unique: Vec<Item> = Vec::with_capacity(chunk.len());
    for row in chunk {
        match position.get(&row.key) {
            Some(&i) => unique[i] = row.item,
            None => {
                position.insert(row.key, unique.len());
                unique.push(row.item);
            }
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::item::Value as AttributeValue;
    use std::sync::Mutex;
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

    fn row(point: &str, second: u32, temp: &str) -> TypedRow {
        let timestamp = format!("2025-11-26T00:00:{second:02}Z");
        TypedRow {
            key: (point.into(), timestamp.clone()),
            item: Item::from([
                ("measure_point".into(), AttributeValue::S(point.into())),
                ("timestamp".into(), AttributeValue::S(timestamp)),
                ("temp".into(), AttributeValue::N(temp.into())),
            ]),
        }
    }

    fn writer<'a>(
        table: &'a ThrottlingTable,
        limiter: &'a AimdLimiter,
        deadline: Option<Instant>,
    ) -> ChunkWriter<'a> {
        ChunkWriter {
            table,
            table_name: "t",
            limiter,
            deadline,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_items_are_retried_until_stored_and_cut_the_limit() {
        let table = ThrottlingTable::new(10, 2);
        let limiter = AimdLimiter::new(8, 1);
        let chunk: Vec<_> = (0..25).map(|i| row("p", i, "1")).collect();
        let outcome = writer(&table, &limiter, None).write(chunk).await.unwrap();
        assert_eq!(
            outcome,
            WriteOutcome {
                written: 25,
                duplicates: 0,
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
        let err = writer(&table, &limiter, None)
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
        let deadline = Instant::now() + Duration::from_secs(2);
        let started = Instant::now();
        let err = writer(&table, &limiter, Some(deadline))
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
        let chunk = vec![row("p", 1, "1"), row("q", 1, "2"), row("p", 1, "3")];
        let outcome = writer(&table, &limiter, None).write(chunk).await.unwrap();
        assert_eq!(
            outcome,
            WriteOutcome {
                written: 2,
                duplicates: 1,
                retries: 0
            }
        );
        let stored = table.stored.lock().unwrap();
        assert_eq!(stored[0]["temp"], AttributeValue::N("3".into()));
        assert_eq!(stored[1]["measure_point"], AttributeValue::S("q".into()));
    }
}
