//! `redrive`: moves messages from a dead-letter queue back to the queue they came from, for
//! an operator who fixed what made them fail. Each received message is deleted from the
//! dead-letter queue only once it is safely in the work queue, so a failure part-way leaves
//! it where it was (to reappear after the visibility timeout), never lost; a message moved
//! twice is a duplicate delivery, which workers count once. Plain receive/send/delete, so it
//! runs on every SQS (SQS's own StartMessageMoveTask does the same on AWS).

use thiserror::Error;

use crate::queue::{Entry, QueueError, QueueWriter, SqsSender};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum RedriveError {
    #[error("receiving from {queue_url} failed")]
    Receive {
        queue_url: String,
        #[source]
        source: BoxError,
    },
    #[error(transparent)]
    Send(#[from] QueueError),
    #[error("deleting redriven messages from {queue_url} failed")]
    Delete {
        queue_url: String,
        #[source]
        source: BoxError,
    },
}

/// Moves up to `max` messages from `from_url` to `to_url`; returns how many moved.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    from_url: &str,
    to_url: &str,
    max: u64,
) -> Result<u64, RedriveError> {
    let mut moved = 0;
    while moved < max {
        let received = sqs
            .receive_message()
            .queue_url(from_url)
            .max_number_of_messages((max - moved).min(10) as i32)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(|e| RedriveError::Receive {
                queue_url: from_url.to_owned(),
                source: e.into(),
            })?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let mut queue = QueueWriter::new(SqsSender {
            client: sqs.clone(),
            queue_url: to_url.to_owned(),
        });
        for (i, message) in messages.iter().enumerate() {
            queue
                .push(Entry {
                    id: i.to_string(),
                    body: message.body.clone().unwrap_or_default(),
                })
                .await?;
        }
        queue.flush().await?;
        let mut delete = sqs.delete_message_batch().queue_url(from_url);
        for (i, message) in messages.iter().enumerate() {
            let entry = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(message.receipt_handle.clone().unwrap_or_default())
                .build()
                .map_err(|e| RedriveError::Delete {
                    queue_url: from_url.to_owned(),
                    source: e.into(),
                })?;
            delete = delete.entries(entry);
        }
        delete.send().await.map_err(|e| RedriveError::Delete {
            queue_url: from_url.to_owned(),
            source: e.into(),
        })?;
        moved += messages.len() as u64;
        tracing::info!(moved, "messages redriven");
    }
    Ok(moved)
}
