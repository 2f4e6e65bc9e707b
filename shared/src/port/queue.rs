//! The queue port: batch sends with per-entry failures (SQS can accept a call and still fail
//! some entries), single sends, and receive/delete for moving messages between queues.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::BoxError;

/// SQS accepts at most 10 entries and 256 KiB of bodies per SendMessageBatch.
pub const MAX_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("{operation} on {queue_url} failed")]
    Call {
        operation: &'static str,
        queue_url: String,
        #[source]
        source: BoxError,
    },
    #[error("SQS rejected message {id}: {code}: {message}")]
    Rejected {
        id: String,
        code: String,
        message: String,
    },
    #[error("SQS kept failing message {id} after retries: {code}: {message}")]
    RetriesExhausted {
        id: String,
        code: String,
        message: String,
    },
    #[error("message {id} is {size} bytes, over the SQS limit of {MAX_BATCH_BYTES}")]
    TooLarge { id: String, size: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: String,
    pub body: String,
}

/// An entry the queue did not accept. `sender_fault` failures will never succeed on retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    pub id: String,
    pub code: String,
    pub message: String,
    pub sender_fault: bool,
}

/// A received message and the handle to delete it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub body: String,
    pub receipt: String,
}

#[async_trait]
pub trait Queues: Send + Sync {
    /// One SendMessageBatch (at most [`MAX_ENTRIES`]): the entries not accepted.
    async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[Entry],
    ) -> Result<Vec<FailedEntry>, QueueError>;

    /// One message. On a FIFO queue (`.fifo`), `dedup_id` is its group and deduplication id.
    async fn send(&self, queue_url: &str, body: &str, dedup_id: &str) -> Result<(), QueueError>;

    /// One message that becomes visible only after `delay` (SQS `DelaySeconds`, at most
    /// 900 s). A queue that cannot delay one message (a FIFO queue) refuses it rather than
    /// send it at once.
    async fn send_delayed(
        &self,
        queue_url: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let _ = body;
        Err(QueueError::Call {
            operation: "SendMessage(DelaySeconds)",
            queue_url: queue_url.to_owned(),
            source: format!("this queue cannot delay a message by {delay:?}").into(),
        })
    }

    /// Up to `max` (at most 10) messages, waiting up to `wait` for the first.
    async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError>;

    /// Deletes received messages by their receipts.
    async fn delete(&self, queue_url: &str, receipts: &[String]) -> Result<(), QueueError>;
}
