//! `redrive`: moves messages from a dead-letter queue back to the queue they came from, for
//! an operator who fixed what made them fail. Each received message is deleted from the
//! dead-letter queue only once it is safely in the work queue, so a failure part-way leaves
//! it where it was (to reappear after the visibility timeout), never lost; a message moved
//! twice is a duplicate delivery, which workers count once. Plain receive/send/delete, so it
//! runs on every SQS (SQS's own StartMessageMoveTask does the same on AWS). The batches the
//! coordinator took off the dead-letter queue (and counted as failed) are kept in S3 instead:
//! [`redrive_kept`] sends a job's back.

use std::time::Duration;

use crate::app::coordinator::dead_letters::dead_letters_folder;
use crate::app::queue_writer::QueueWriter;
use crate::contract::ids::JobId;
use crate::contract::rejects::ReportLocation;
use crate::port::objects::{ObjectError, ObjectStore, Read};
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

/// Why the kept dead letters of a job could not all be sent back.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error(transparent)]
    Objects(#[from] ObjectError),
    #[error("reading s3://{bucket}/{key} failed")]
    Read {
        bucket: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// Sends every batch of `job_id` that the coordinator kept when it took it off a dead-letter
/// queue (see [`crate::app::coordinator::dead_letters`]) back to `to_url`; returns how many.
/// The kept copies stay as the record of what died: sending them again is a duplicate
/// delivery, which the ledger counts once (a recovered batch stays recovered).
pub async fn redrive_kept(
    objects: &dyn ObjectStore,
    queues: &dyn Queues,
    report: &ReportLocation,
    job_id: &JobId,
    to_url: &str,
) -> Result<u64, RedriveError> {
    let folder = format!("{}{}", report.prefix, dead_letters_folder(job_id));
    let (mut sent, mut cursor) = (0, None);
    let mut queue = QueueWriter::new(queues, to_url);
    loop {
        let page = (objects.list_page(&report.bucket, &folder, 1000, cursor)).await?;
        for object in page.objects {
            let body = objects
                .get(&report.bucket, &object.key, Read::default())
                .await?;
            let mut text = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut { body.reader }, &mut text)
                .await
                .map_err(|source| RedriveError::Read {
                    bucket: report.bucket.clone(),
                    key: object.key.clone(),
                    source,
                })?;
            queue
                .push(Entry {
                    id: sent.to_string(),
                    body: text,
                })
                .await?;
            sent += 1;
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    queue.flush().await?;
    tracing::info!(%job_id, sent, "kept dead letters redriven");
    Ok(sent)
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
