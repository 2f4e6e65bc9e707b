//! The record table port: what a row can do to the table. Puts and deletes go 25 at a time
//! (BatchWriteItem; throttled requests come back unprocessed on a successful call and the
//! caller retries them); an insert (a put only where the key is free) and an update (a merge
//! into the item) are single-item conditional or partial writes, which BatchWriteItem cannot
//! express. A request the table refuses as invalid (DynamoDB's ValidationException) writes
//! none of its items and comes back as [`WriteError::Refused`]; the caller can split it to
//! find the offending item.
//!
//! Only puts are required: a wrapper or test table that loads puts alone answers the other
//! writes with [`WriteError::Unsupported`].

use async_trait::async_trait;
use thiserror::Error;

use crate::BoxError;
pub use crate::contract::columns::KeyType;
use crate::ingest::item::Item;

#[derive(Debug, Error)]
pub enum WriteError {
    #[error("{operation} on table {table} failed")]
    Call {
        operation: &'static str,
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
    /// A single-item write throttled beyond the SDK's own retries (the table or the
    /// account's capacity): retried by the caller with backoff, like unprocessed items.
    #[error("{operation} on table {table} was throttled")]
    Throttled {
        operation: &'static str,
        table: String,
    },
    #[error(
        "{left} item(s) still unprocessed by table {table} after {retries} retries (throttled)"
    )]
    RetriesExhausted {
        table: String,
        left: usize,
        retries: u64,
    },
    #[error("this record table does not support {operation}")]
    Unsupported { operation: &'static str },
}

/// The names of the table's key attributes (the job's schema gives them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyNames {
    pub partition: String,
    pub sort: Option<String>,
}

impl KeyNames {
    pub fn new(partition: &str, sort: Option<&str>) -> Self {
        Self {
            partition: partition.to_owned(),
            sort: sort.map(str::to_owned),
        }
    }

    /// Whether `attribute` is one of the key attributes.
    pub fn contains(&self, attribute: &str) -> bool {
        self.partition == attribute || self.sort.as_deref() == Some(attribute)
    }

    /// Only the key attributes of `item` (those it has).
    pub fn key_of(&self, item: &Item) -> Item {
        item.iter()
            .filter(|(name, _)| self.contains(name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// What an insert found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The key was free; the item is stored.
    Written,
    /// An item with that key was there already and was left alone; it is returned (read
    /// back with a strongly consistent read) so the caller can tell its own earlier write
    /// from someone else's item. `None`: it was gone again by the time it was read.
    Exists(Option<Item>),
}

/// A table's write capacity, as its description states it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    /// Provisioned mode: the table's write capacity units per second.
    Provisioned { write_units: f64 },
    /// On-demand mode, with the table's maximum write request units per second if one is
    /// set (`OnDemandThroughput.MaxWriteRequestUnits`).
    OnDemand { max_write_units: Option<f64> },
}

/// One key attribute of a table: its name and declared type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: String,
    pub kind: KeyType,
}

impl KeyAttribute {
    pub fn new(name: &str, kind: KeyType) -> Self {
        Self {
            name: name.to_owned(),
            kind,
        }
    }
}

/// A table's primary key, as its description states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKey {
    pub partition: KeyAttribute,
    pub sort: Option<KeyAttribute>,
}

/// What the coordinator reads of a table once per job: its key schema (checked against the
/// job's mapping before anything is written) and its write capacity (for a rate cap given as
/// a fraction).
#[derive(Debug, Clone, PartialEq)]
pub struct TableDescription {
    pub key: TableKey,
    pub capacity: Capacity,
}

#[async_trait]
pub trait RecordTable: Send + Sync {
    /// Puts up to 25 items with distinct keys; returns the ones left unprocessed, as they
    /// were sent. All or nothing when refused ([`WriteError::Refused`]). Borrowed: the
    /// caller keeps its rows to send again, so the items are copied once, into the request.
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError>;

    /// Deletes up to 25 items by key (each `keys` entry holds the key attributes; any
    /// other attribute is ignored). Deleting a key that holds no item succeeds. Returns the
    /// keys left unprocessed.
    async fn batch_delete(
        &self,
        table: &str,
        key: &KeyNames,
        keys: &[&Item],
    ) -> Result<Vec<Item>, WriteError> {
        let _ = (table, key, keys);
        Err(WriteError::Unsupported {
            operation: "batch_delete",
        })
    }

    /// Puts `item` only if no item has its key (one conditional PutItem).
    async fn put_if_absent(
        &self,
        table: &str,
        key: &KeyNames,
        item: Item,
    ) -> Result<Inserted, WriteError> {
        let _ = (table, key, item);
        Err(WriteError::Unsupported {
            operation: "put_if_absent",
        })
    }

    /// Sets each non-key attribute of `item` on the item with its key, keeping the item's
    /// other attributes; creates the item if there is none (one UpdateItem).
    async fn update(&self, table: &str, key: &KeyNames, item: Item) -> Result<(), WriteError> {
        let _ = (table, key, item);
        Err(WriteError::Unsupported {
            operation: "update",
        })
    }

    /// The table's key schema and write capacity (one DescribeTable).
    async fn describe(&self, table: &str) -> Result<TableDescription, WriteError> {
        let _ = table;
        Err(WriteError::Unsupported {
            operation: "describe",
        })
    }
}
