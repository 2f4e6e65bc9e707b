//! `redrive`: moves messages from a dead-letter queue back to the queue they came from, for
//! an operator who fixed what made them fail. Each received message is deleted from the
//! dead-letter queue only once it is safely in the work queue, so a failure part-way leaves
//! it where it was (to reappear after the visibility timeout), never lost; a message moved
//! twice is a duplicate delivery, which workers count once. Plain receive/send/delete, so it
//! runs on every SQS (SQS's own StartMessageMoveTask does the same on AWS).

use std::time::Duration;

use crate::app::queue_writer::QueueWriter;
use crate::port::queue::{Entry, QueueError, Queues};

/// Moves up to `max` messages from `from_url` to `to_url`; returns how many moved.
pub async fn redrive(
    queues: &dyn Queues,
    from_url: &str,
    to_url: &str,
    max: u64,
) -> Result<u64, QueueError> {
    let mut moved = 0;
    while moved < max {
        let wanted = (max - moved).min(10) as usize;
        let messages = queues
            .receive(from_url, wanted, Duration::from_secs(1))
            .await?;
        if messages.is_empty() {
            break;
        }
        let mut queue = QueueWriter::new(queues, to_url);
        for (i, message) in messages.iter().enumerate() {
            let entry = Entry {
                id: i.to_string(),
                body: message.body.clone(),
            };
            queue.push(entry).await?;
        }
        queue.flush().await?;
        let receipts: Vec<String> = messages.iter().map(|m| m.receipt.clone()).collect();
        queues.delete(from_url, &receipts).await?;
        moved += messages.len() as u64;
        tracing::info!(moved, "messages redriven");
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::memory::MemoryQueues;

    #[tokio::test]
    async fn moves_every_message_once_and_empties_the_source() {
        let queues = MemoryQueues::new();
        for i in 0..23 {
            queues.send("dlq", &format!("m{i}"), "").await.unwrap();
        }
        assert_eq!(redrive(&queues, "dlq", "work", 100).await.unwrap(), 23);
        let moved = queues.drain("work");
        assert_eq!(moved.len(), 23);
        assert_eq!(moved[0], "m0");
        assert!(queues.drain("dlq").is_empty());
        assert_eq!(redrive(&queues, "dlq", "work", 100).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn stops_at_the_maximum() {
        let queues = MemoryQueues::new();
        for i in 0..15 {
            queues.send("dlq", &format!("m{i}"), "").await.unwrap();
        }
        assert_eq!(redrive(&queues, "dlq", "work", 12).await.unwrap(), 12);
        assert_eq!(queues.drain("work").len(), 12);
        assert_eq!(queues.drain("dlq").len(), 3);
    }
}
