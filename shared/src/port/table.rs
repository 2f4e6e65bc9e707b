//! The record table port: one BatchWriteItem of puts. Throttled puts come back as
//! unprocessed items on a successful call; the caller retries them.

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
    /// Puts up to 25 items with distinct keys; returns the ones left unprocessed.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<Vec<Item>, WriteError>;
}
