//! BatchWriteItem with UnprocessedItems retried. DynamoDB returns throttled puts in
//! `UnprocessedItems` on a *successful* response, which the SDK's retries never see; dropping
//! them silently loses rows, so every one is retried with backoff or the call fails.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use thiserror::Error;

use crate::decode::SensorReading;
use crate::retry::partial_failure_backoff;

/// DynamoDB's cap on requests per BatchWriteItem.
pub const MAX_BATCH_ITEMS: usize = 25;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("BatchWriteItem to table {table} failed")]
    Call {
        table: String,
        #[source]
        source: Box<SdkError<BatchWriteItemError>>,
    },
    #[error("{left} item(s) still unprocessed by table {table} after retries (throttled)")]
    RetriesExhausted { table: String, left: usize },
    #[error("converting a row to a DynamoDB item failed")]
    Convert(#[from] serde_dynamo::Error),
}

/// The narrow seam over DynamoDB: one BatchWriteItem of puts, returning the unprocessed ones.
pub trait BatchWriteApi {
    fn batch_write(
        &self,
        table: &str,
        items: Vec<Item>,
    ) -> impl Future<Output = Result<Vec<Item>, WriteError>>;
}

impl BatchWriteApi for aws_sdk_dynamodb::Client {
    async fn batch_write(&self, table: &str, items: Vec<Item>) -> Result<Vec<Item>, WriteError> {
        let requests = items
            .into_iter()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .expect("item is set");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let output = self
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|source| WriteError::Call {
                table: table.to_owned(),
                source: Box::new(source),
            })?;
        Ok(output
            .unprocessed_items
            .unwrap_or_default()
            .remove(table)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|request| request.put_request.map(|put| put.item))
            .collect())
    }
}

/// What one chunk write did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: u64,
    /// Rows dropped because a later row in the same chunk had the same key (DynamoDB rejects
    /// a BatchWriteItem that names one key twice; the later row wins, as a sequential load
    /// would have it).
    pub duplicates: u64,
}

impl std::ops::AddAssign for WriteOutcome {
    fn add_assign(&mut self, other: Self) {
        self.written += other.written;
        self.duplicates += other.duplicates;
    }
}

/// Writes up to 25 readings in one BatchWriteItem, retrying unprocessed items with backoff.
pub async fn write_chunk(
    api: &impl BatchWriteApi,
    table: &str,
    chunk: Vec<SensorReading>,
) -> Result<WriteOutcome, WriteError> {
    debug_assert!(chunk.len() <= MAX_BATCH_ITEMS);
    let total = chunk.len();
    let unique = last_wins_by_key(chunk);
    let outcome = WriteOutcome {
        written: unique.len() as u64,
        duplicates: (total - unique.len()) as u64,
    };
    let mut pending = unique
        .iter()
        .map(serde_dynamo::to_item)
        .collect::<Result<Vec<Item>, _>>()?;
    let mut delays = partial_failure_backoff();
    while !pending.is_empty() {
        pending = api.batch_write(table, pending).await?;
        if pending.is_empty() {
            break;
        }
        let Some(delay) = delays.next() else {
            return Err(WriteError::RetriesExhausted {
                table: table.to_owned(),
                left: pending.len(),
            });
        };
        tracing::debug!(unprocessed = pending.len(), "retrying UnprocessedItems");
        tokio::time::sleep(delay).await;
    }
    Ok(outcome)
}

/// Keeps the last reading for each key, in first-seen order.
fn last_wins_by_key(chunk: Vec<SensorReading>) -> Vec<SensorReading> {
    let mut position: HashMap<(String, String), usize> = HashMap::with_capacity(chunk.len());
    let mut unique: Vec<SensorReading> = Vec::with_capacity(chunk.len());
    for reading in chunk {
        let key = (reading.measure_point.clone(), reading.timestamp.clone());
        match position.get(&key) {
            Some(&i) => unique[i] = reading,
            None => {
                position.insert(key, unique.len());
                unique.push(reading);
            }
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Leaves the last `throttle` items unprocessed on each of the first `rounds` calls.
    struct ThrottlingTable {
        calls: RefCell<Vec<usize>>,
        stored: RefCell<Vec<Item>>,
        throttle: usize,
        rounds: usize,
    }

    impl ThrottlingTable {
        fn new(throttle: usize, rounds: usize) -> Self {
            Self {
                calls: RefCell::new(vec![]),
                stored: RefCell::new(vec![]),
                throttle,
                rounds,
            }
        }
    }

    impl BatchWriteApi for ThrottlingTable {
        async fn batch_write(
            &self,
            _: &str,
            mut items: Vec<Item>,
        ) -> Result<Vec<Item>, WriteError> {
            let round = self.calls.borrow().len();
            self.calls.borrow_mut().push(items.len());
            let keep = if round < self.rounds {
                items.len().saturating_sub(self.throttle)
            } else {
                items.len()
            };
            let unprocessed = items.split_off(keep);
            self.stored.borrow_mut().extend(items);
            Ok(unprocessed)
        }
    }

    fn reading(point: &str, second: u32, temp: f64) -> SensorReading {
        SensorReading {
            measure_point: point.into(),
            timestamp: format!("2025-11-26T00:00:{second:02}Z"),
            temp,
            humidity: 50.0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unprocessed_items_are_retried_until_stored() {
        let table = ThrottlingTable::new(10, 2);
        let chunk: Vec<_> = (0..25).map(|i| reading("p", i, 1.0)).collect();
        let outcome = write_chunk(&table, "t", chunk).await.unwrap();
        assert_eq!(
            outcome,
            WriteOutcome {
                written: 25,
                duplicates: 0
            }
        );
        assert_eq!(*table.calls.borrow(), vec![25, 10, 10]);
        assert_eq!(table.stored.borrow().len(), 25);
    }

    #[tokio::test(start_paused = true)]
    async fn endless_throttling_fails_loudly() {
        let table = ThrottlingTable::new(1, usize::MAX);
        let chunk = vec![reading("p", 1, 1.0), reading("p", 2, 1.0)];
        let err = write_chunk(&table, "t", chunk).await.unwrap_err();
        assert!(
            matches!(err, WriteError::RetriesExhausted { left: 1, .. }),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_keys_in_a_chunk_keep_the_last_row() {
        let table = ThrottlingTable::new(0, 0);
        let chunk = vec![
            reading("p", 1, 1.0),
            reading("q", 1, 2.0),
            reading("p", 1, 3.0),
        ];
        let outcome = write_chunk(&table, "t", chunk).await.unwrap();
        assert_eq!(
            outcome,
            WriteOutcome {
                written: 2,
                duplicates: 1
            }
        );
        let stored = table.stored.borrow();
        assert_eq!(stored[0]["temp"], AttributeValue::N("3".into()));
        assert_eq!(stored[0]["measure_point"], AttributeValue::S("p".into()));
        assert_eq!(stored[1]["measure_point"], AttributeValue::S("q".into()));
    }

    #[test]
    fn items_carry_typed_attributes() {
        let item: Item = serde_dynamo::to_item(reading("Kyiv_1", 5, 19.8)).unwrap();
        assert_eq!(item["temp"], AttributeValue::N("19.8".into()));
        assert_eq!(item["humidity"], AttributeValue::N("50".into()));
        assert_eq!(
            item["timestamp"],
            AttributeValue::S("2025-11-26T00:00:05Z".into())
        );
    }
}
