//! The completion event: one summary message per finished job, to a configurable SQS queue
//! (`COMPLETION_QUEUE_URL`), next to the `job finished` log line.
//!
//! Exactly one, by an outbox in the job item: the single conditional write that makes a job
//! final also sets `event_pending` and claims the sending for its winner, who sends the event
//! and then clears the flag. Anyone else who finds the job final with its event pending (a
//! redelivered batch, the scheduled check) must first claim it with a conditional write,
//! which fails while a fresh claim stands: concurrent duplicates send nothing. A failed send
//! releases the claim, so the next delivery sends at once; a crash leaves the claim to expire
//! after [`CLAIM_LEASE`]. Only a crash between sending and clearing can send it twice; the
//! event carries `job_id` for consumers to deduplicate, and a FIFO destination queue
//! deduplicates by it on its own.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::jobs::{BatchStats, Job, JobError, JobLedger, JobStatus};

#[derive(Debug, Error)]
pub enum CompletionError {
    #[error("sending the completion event of job {job_id} to {queue_url} failed")]
    Send {
        job_id: String,
        queue_url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Job(#[from] JobError),
}

/// The event's body: a stable summary of the finished job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionEvent {
    /// Always `s3fanout.job.finished`.
    pub event: String,
    pub job_id: String,
    pub status: JobStatus,
    pub bucket: String,
    pub prefix: String,
    pub total_batches: u64,
    pub batches_failed: u64,
    pub files_skipped: u64,
    #[serde(flatten)]
    pub totals: BatchStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_report: Option<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

pub const EVENT_NAME: &str = "s3fanout.job.finished";

/// How long a claim to send an event stands before someone else may take it over.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether the caller already holds the right to send (it made the final transition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Held,
    Needed,
}

impl CompletionEvent {
    pub fn of(job: &Job) -> Self {
        Self {
            event: EVENT_NAME.to_owned(),
            job_id: job.job_id.clone(),
            status: job.status,
            bucket: job.bucket.clone(),
            prefix: job.prefix.clone(),
            total_batches: job.total_batches,
            batches_failed: job.batches_failed,
            files_skipped: job.files_skipped,
            totals: job.totals,
            error: job.error.clone(),
            rejects_report: job.rejects_report.clone(),
            started_at: job.started_at.clone(),
            finished_at: job.finished_at.clone(),
            duration_seconds: job.duration_seconds,
        }
    }
}

/// Sends a finished job's event if it is still pending.
#[derive(Debug, Clone)]
pub struct Announcer {
    sqs: aws_sdk_sqs::Client,
    /// No queue: the event is the log line alone, and the flag is just cleared.
    queue_url: Option<String>,
    ledger: JobLedger,
}

impl Announcer {
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: Option<String>, ledger: JobLedger) -> Self {
        Self {
            sqs,
            queue_url,
            ledger,
        }
    }

    /// Sends the event of a final job whose event is pending, if this caller holds or wins
    /// the claim; otherwise does nothing.
    pub async fn announce(&self, job: &Job, claim: Claim) -> Result<(), CompletionError> {
        if !job.status.is_final() || !job.event_pending {
            return Ok(());
        }
        let claimed_ms = match claim {
            Claim::Held => job.event_claimed_ms.unwrap_or_default(),
            Claim::Needed => match self.ledger.claim_event(&job.job_id, CLAIM_LEASE).await? {
                Some(claimed_ms) => claimed_ms,
                None => return Ok(()), // someone else is sending it, or has
            },
        };
        if let Err(error) = self.send(job).await {
            // Best effort: an unreleased claim only delays the retry by the lease.
            if let Err(release) = self
                .ledger
                .release_event_claim(&job.job_id, claimed_ms)
                .await
            {
                tracing::warn!(job_id = %job.job_id, error = %crate::report(&release), "could not release the event claim");
            }
            return Err(error);
        }
        self.ledger.clear_event_pending(&job.job_id).await?;
        Ok(())
    }

    async fn send(&self, job: &Job) -> Result<(), CompletionError> {
        if let Some(queue_url) = &self.queue_url {
            let body = serde_json::to_string(&CompletionEvent::of(job))
                .expect("an event of strings and numbers serializes");
            let mut send = self
                .sqs
                .send_message()
                .queue_url(queue_url)
                .message_body(body);
            if queue_url.ends_with(".fifo") {
                send = send
                    .message_group_id(&job.job_id)
                    .message_deduplication_id(&job.job_id);
            }
            send.send().await.map_err(|e| CompletionError::Send {
                job_id: job.job_id.clone(),
                queue_url: queue_url.clone(),
                source: e.into(),
            })?;
            tracing::info!(job_id = %job.job_id, status = job.status.as_str(), %queue_url, "completion event sent");
        }
        Ok(())
    }
}
