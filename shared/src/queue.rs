//! SendMessageBatch with every failed entry checked and retried. SQS can accept a call and
//! still fail some entries; ignoring `Failed` silently loses batches.

use std::future::Future;

use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use thiserror::Error;

use crate::retry::partial_failure_backoff;

/// SQS accepts at most 10 entries and 256 KiB of bodies per SendMessageBatch.
pub const MAX_ENTRIES: usize = 10;
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("SendMessageBatch to {queue_url} failed")]
    Send {
        queue_url: String,
        #[source]
        source: Box<SdkError<SendMessageBatchError>>,
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

/// An entry SQS did not accept. `sender_fault` failures will never succeed on retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    pub id: String,
    pub code: String,
    pub message: String,
    pub sender_fault: bool,
}

/// The narrow seam over SQS: one SendMessageBatch call.
pub trait BatchSender {
    fn send_batch(
        &self,
        entries: &[Entry],
    ) -> impl Future<Output = Result<Vec<FailedEntry>, QueueError>>;
}

/// The real thing.
pub struct SqsSender {
    pub client: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl BatchSender for SqsSender {
    async fn send_batch(&self, entries: &[Entry]) -> Result<Vec<FailedEntry>, QueueError> {
        let request_entries = entries
            .iter()
            .map(|e| {
                SendMessageBatchRequestEntry::builder()
                    .id(&e.id)
                    .message_body(&e.body)
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(|source| QueueError::Send {
                queue_url: self.queue_url.clone(),
                source: Box::new(source),
            })?;
        Ok(output
            .failed
            .into_iter()
            .map(|f| FailedEntry {
                id: f.id,
                code: f.code,
                message: f.message.unwrap_or_default(),
                sender_fault: f.sender_fault,
            })
            .collect())
    }
}

/// Buffers messages and sends them in full batches; every entry is either accepted or the
/// call fails with the entry named.
pub struct QueueWriter<S> {
    sender: S,
    pending: Vec<Entry>,
    pending_bytes: usize,
    sent: u64,
}

impl<S: BatchSender> QueueWriter<S> {
    pub fn new(sender: S) -> Self {
        Self {
            sender,
            pending: Vec::with_capacity(MAX_ENTRIES),
            pending_bytes: 0,
            sent: 0,
        }
    }

    /// Messages accepted by SQS so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    pub async fn push(&mut self, entry: Entry) -> Result<(), QueueError> {
        let size = entry.body.len();
        if size > MAX_BATCH_BYTES {
            return Err(QueueError::TooLarge { id: entry.id, size });
        }
        if self.pending_bytes + size > MAX_BATCH_BYTES {
            self.flush().await?;
        }
        self.pending_bytes += size;
        self.pending.push(entry);
        if self.pending.len() == MAX_ENTRIES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends whatever is buffered, retrying failed entries with backoff.
    pub async fn flush(&mut self) -> Result<(), QueueError> {
        let mut pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut delays = partial_failure_backoff(false);
        while !pending.is_empty() {
            let failed = self.sender.send_batch(&pending).await?;
            self.sent += (pending.len() - failed.len()) as u64;
            if let Some(f) = failed.iter().find(|f| f.sender_fault) {
                return Err(QueueError::Rejected {
                    id: f.id.clone(),
                    code: f.code.clone(),
                    message: f.message.clone(),
                });
            }
            if let Some(first) = failed.first() {
                let Some(delay) = delays.next() else {
                    return Err(QueueError::RetriesExhausted {
                        id: first.id.clone(),
                        code: first.code.clone(),
                        message: first.message.clone(),
                    });
                };
                tracing::warn!(failed = failed.len(), code = %first.code, "SendMessageBatch entries failed, retrying");
                tokio::time::sleep(delay).await;
            }
            pending.retain(|e| failed.iter().any(|f| f.id == e.id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Fails the listed ids the first `fail_times` times they are sent.
    struct FlakySender {
        calls: RefCell<Vec<Vec<String>>>,
        fail_ids: Vec<&'static str>,
        fail_times: usize,
        sender_fault: bool,
    }

    impl FlakySender {
        fn new(fail_ids: Vec<&'static str>, fail_times: usize) -> Self {
            Self {
                calls: RefCell::new(Vec::new()),
                fail_ids,
                fail_times,
                sender_fault: false,
            }
        }
    }

    impl BatchSender for FlakySender {
        async fn send_batch(&self, entries: &[Entry]) -> Result<Vec<FailedEntry>, QueueError> {
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let mut calls = self.calls.borrow_mut();
            let attempt = calls
                .iter()
                .filter(|c| c.iter().any(|id| ids.contains(id)))
                .count();
            calls.push(ids.clone());
            Ok(ids
                .into_iter()
                .filter(|id| self.fail_ids.contains(&id.as_str()) && attempt < self.fail_times)
                .map(|id| FailedEntry {
                    id,
                    code: "InternalError".into(),
                    message: "try again".into(),
                    sender_fault: self.sender_fault,
                })
                .collect())
        }
    }

    fn entry(id: usize) -> Entry {
        Entry {
            id: id.to_string(),
            body: format!("body-{id}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn sends_in_batches_of_ten() {
        let mut writer = QueueWriter::new(FlakySender::new(vec![], 0));
        for i in 0..25 {
            writer.push(entry(i)).await.unwrap();
        }
        writer.flush().await.unwrap();
        let sizes: Vec<usize> = writer.sender.calls.borrow().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        assert_eq!(writer.sent(), 25);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_entries_are_retried_until_accepted() {
        let mut writer = QueueWriter::new(FlakySender::new(vec!["3", "7"], 2));
        for i in 0..10 {
            writer.push(entry(i)).await.unwrap();
        }
        let calls = writer.sender.calls.borrow().clone();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert_eq!(calls[1], vec!["3".to_string(), "7".to_string()]);
        assert_eq!(writer.sent(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn persistent_failure_names_the_entry() {
        let mut writer = QueueWriter::new(FlakySender::new(vec!["4"], usize::MAX));
        writer.push(entry(4)).await.unwrap();
        let err = writer.flush().await.unwrap_err();
        assert!(
            matches!(err, QueueError::RetriesExhausted { ref id, .. } if id == "4"),
            "{err}"
        );
        assert_eq!(writer.sender.calls.borrow().len(), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn sender_fault_is_not_retried() {
        let mut sender = FlakySender::new(vec!["1"], usize::MAX);
        sender.sender_fault = true;
        let mut writer = QueueWriter::new(sender);
        writer.push(entry(1)).await.unwrap();
        let err = writer.flush().await.unwrap_err();
        assert!(matches!(err, QueueError::Rejected { .. }), "{err}");
        assert_eq!(writer.sender.calls.borrow().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn oversized_message_is_refused_before_sending() {
        let mut writer = QueueWriter::new(FlakySender::new(vec![], 0));
        let big = Entry {
            id: "big".into(),
            body: "x".repeat(MAX_BATCH_BYTES + 1),
        };
        assert!(matches!(
            writer.push(big).await,
            Err(QueueError::TooLarge { .. })
        ));
    }
}
