//! Buffers messages and sends them in full batches through the queue port, with every
//! failed entry checked and retried: SQS can accept a call and still fail some entries, and
//! ignoring them silently loses batches.

use crate::port::queue::{Entry, MAX_BATCH_BYTES, MAX_ENTRIES, QueueError, Queues};
use crate::retry::partial_failure_backoff;

/// Buffers messages and sends them in full batches; every entry is either accepted or the
/// call fails with the entry named.
pub struct QueueWriter<'a> {
    queues: &'a dyn Queues,
    queue_url: String,
    pending: Vec<Entry>,
    pending_bytes: usize,
    sent: u64,
}

impl<'a> QueueWriter<'a> {
    pub fn new(queues: &'a dyn Queues, queue_url: &str) -> Self {
        Self {
            queues,
            queue_url: queue_url.to_owned(),
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
            let failed = self.queues.send_batch(&self.queue_url, &pending).await?;
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
    use crate::port::queue::{FailedEntry, Received};
    use std::sync::Mutex;
    use std::time::Duration;

    /// Fails the listed ids the first `fail_times` times they are sent.
    struct FlakySender {
        calls: Mutex<Vec<Vec<String>>>,
        fail_ids: Vec<&'static str>,
        fail_times: usize,
        sender_fault: bool,
    }

    impl FlakySender {
        fn new(fail_ids: Vec<&'static str>, fail_times: usize) -> Self {
            Self {
                calls: Mutex::new(Vec::new()),
                fail_ids,
                fail_times,
                sender_fault: false,
            }
        }
    }

    #[async_trait::async_trait]
    impl Queues for FlakySender {
        async fn send_batch(
            &self,
            _queue_url: &str,
            entries: &[Entry],
        ) -> Result<Vec<FailedEntry>, QueueError> {
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone()).collect();
            let mut calls = self.calls.lock().unwrap();
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

        async fn send(&self, _: &str, _: &str, _: &str) -> Result<(), QueueError> {
            unreachable!("the writer only sends batches")
        }

        async fn receive(
            &self,
            _: &str,
            _: usize,
            _: Duration,
        ) -> Result<Vec<Received>, QueueError> {
            unreachable!("the writer never receives")
        }

        async fn delete(&self, _: &str, _: &[String]) -> Result<(), QueueError> {
            unreachable!("the writer never deletes")
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
        let sender = FlakySender::new(vec![], 0);
        let mut writer = QueueWriter::new(&sender, "q");
        for i in 0..25 {
            writer.push(entry(i)).await.unwrap();
        }
        writer.flush().await.unwrap();
        let sizes: Vec<usize> = sender.calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
        assert_eq!(writer.sent(), 25);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_entries_are_retried_until_accepted() {
        let sender = FlakySender::new(vec!["3", "7"], 2);
        let mut writer = QueueWriter::new(&sender, "q");
        for i in 0..10 {
            writer.push(entry(i)).await.unwrap();
        }
        let calls = sender.calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert_eq!(calls[1], vec!["3".to_string(), "7".to_string()]);
        assert_eq!(writer.sent(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn persistent_failure_names_the_entry() {
        let sender = FlakySender::new(vec!["4"], usize::MAX);
        let mut writer = QueueWriter::new(&sender, "q");
        writer.push(entry(4)).await.unwrap();
        let err = writer.flush().await.unwrap_err();
        assert!(
            matches!(err, QueueError::RetriesExhausted { ref id, .. } if id == "4"),
            "{err}"
        );
        assert_eq!(sender.calls.lock().unwrap().len(), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn sender_fault_is_not_retried() {
        let mut sender = FlakySender::new(vec!["1"], usize::MAX);
        sender.sender_fault = true;
        let mut writer = QueueWriter::new(&sender, "q");
        writer.push(entry(1)).await.unwrap();
        let err = writer.flush().await.unwrap_err();
        assert!(matches!(err, QueueError::Rejected { .. }), "{err}");
        assert_eq!(sender.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn oversized_message_is_refused_before_sending() {
        let sender = FlakySender::new(vec![], 0);
        let mut writer = QueueWriter::new(&sender, "q");
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
