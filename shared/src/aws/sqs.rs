//! The queues on SQS.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};

use crate::port::queue::{Entry, FailedEntry, QueueError, Queues, Received};

#[derive(Debug, Clone)]
pub struct SqsQueues {
    sqs: Client,
}

impl SqsQueues {
    pub fn new(sqs: Client) -> Self {
        Self { sqs }
    }
}

fn failed(
    operation: &'static str,
    queue_url: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> QueueError {
    QueueError::Call {
        operation,
        queue_url: queue_url.to_owned(),
        source: Box::new(source),
    }
}

#[async_trait]
impl Queues for SqsQueues {
    async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[Entry],
    ) -> Result<Vec<FailedEntry>, QueueError> {
        let request_entries = entries
            .iter()
            .map(|e| {
                SendMessageBatchRequestEntry::builder()
                    .id(&e.id)
                    .message_body(&e.body)
                    .build()
                    .map_err(|e| failed("SendMessageBatch", queue_url, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let output = self
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(|e| failed("SendMessageBatch", queue_url, e))?;
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

    async fn send(&self, queue_url: &str, body: &str, dedup_id: &str) -> Result<(), QueueError> {
        let mut send = self
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body);
        if queue_url.ends_with(".fifo") {
            send = send
                .message_group_id(dedup_id)
                .message_deduplication_id(dedup_id);
        }
        send.send()
            .await
            .map_err(|e| failed("SendMessage", queue_url, e))?;
        Ok(())
    }

    async fn send_delayed(
        &self,
        queue_url: &str,
        body: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        if queue_url.ends_with(".fifo") {
            // A FIFO queue has no per-message delay: sending at once would break the wait.
            return Err(QueueError::Call {
                operation: "SendMessage(DelaySeconds)",
                queue_url: queue_url.to_owned(),
                source: "a FIFO queue cannot delay one message".into(),
            });
        }
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .delay_seconds(delay.as_millis().div_ceil(1000).min(900) as i32)
            .send()
            .await
            .map_err(|e| failed("SendMessage", queue_url, e))?;
        Ok(())
    }

    async fn receive(
        &self,
        queue_url: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs() as i32)
            .send()
            .await
            .map_err(|e| failed("ReceiveMessage", queue_url, e))?;
        Ok(received
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| Received {
                body: m.body.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
            })
            .collect())
    }

    async fn delete(&self, queue_url: &str, receipts: &[String]) -> Result<(), QueueError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let entries = receipts
            .iter()
            .enumerate()
            .map(|(i, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
                    .map_err(|e| failed("DeleteMessageBatch", queue_url, e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.sqs
            .delete_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| failed("DeleteMessageBatch", queue_url, e))?;
        Ok(())
    }
}
