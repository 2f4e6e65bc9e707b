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

use std::sync::Arc;

use thiserror::Error;

use crate::contract::ids::JobId;
use crate::fan_in::{JobError, LedgerStore};
use crate::job::model::Job;
use crate::port::queue::{QueueError, Queues};

#[derive(Debug, Error)]
pub enum CompletionError {
    #[error("sending the completion event of job {job_id} failed")]
    Send {
        job_id: JobId,
        #[source]
        source: QueueError,
    },
    #[error(transparent)]
    Job(#[from] JobError),
}

/// How long a claim to send an event stands before someone else may take it over.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Whether the caller already holds the right to send (it made the final transition).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Held,
    Needed,
}

/// Sends a finished job's event if it is still pending.
#[derive(Clone)]
pub struct Announcer {
    queues: Arc<dyn Queues>,
    /// No queue: the event is the log line alone, and the flag is just cleared.
    queue_url: Option<String>,
    ledger: Arc<dyn LedgerStore>,
}

impl Announcer {
    pub fn new(
        queues: Arc<dyn Queues>,
        queue_url: Option<String>,
        ledger: Arc<dyn LedgerStore>,
    ) -> Self {
        Self {
            queues,
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
            let body = serde_json::to_string(&job.completion_event())
                .expect("an event of strings and numbers serializes");
            // On a FIFO queue the job id deduplicates a resend after a crash.
            self.queues
                .send(queue_url, &body, job.job_id.as_str())
                .await
                .map_err(|source| CompletionError::Send {
                    job_id: job.job_id.clone(),
                    source,
                })?;
            tracing::info!(job_id = %job.job_id, status = job.status.as_str(), %queue_url, "completion event sent");
        }
        Ok(())
    }
}
