//! The record table port: one BatchWriteItem of puts. Throttled puts come back as
//! unprocessed items on a successful call; the caller retries them. A request the table
//! refuses as invalid (DynamoDB's ValidationException) writes none of its items and comes
//! back as [`WriteError::Refused`]; the caller can split it to find the offending item.

use async_trait::async_trait;
use thiserror::Error;

use crate::BoxError;
use crate::ingest::item::Item;

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("BatchWriteItem to table {table} failed")]
    Call {
        table: String,
        #[source]
        source: BoxError,
    },
    /// The table refused the request as invalid (nothing of it was written): `message` is
    /// the table's own reason.
    #[error("table {table} refused the write: {message}")]
    Refused { table: String, message: String },
    /// The table's key schema does not match the job's items (every row would be refused
    /// alike): a configuration error that fails the batch instead of rejecting its rows.
    #[error("table {table} does not take the job's keys: {message}")]
    KeySchema { table: String, message: String },
    #[error(
        "{left} item(s) still unprocessed by table {table} after {retries} retries (throttled)"
    )]
    RetriesExhausted {
        table: String,
        left: usize,
        retries: u64,
    },
}

#[async_trait]
pub trait RecordTable: Send + Sync {
    /// Puts up to 25 items with distinct keys; returns the ones left unprocessed, as they
    /// were sent. All or nothing when refused ([`WriteError::Refused`]).
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<Vec<Item>, WriteError>;
}
