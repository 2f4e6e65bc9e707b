//! The scheduled check behind the stuck-job alarm: counts jobs RUNNING too long, wakes
//! listings whose invocation died, and sends completion events a crash left owed.

use std::time::Duration;

use super::{Coordinator, CoordinatorError, LISTING_STALLED_AFTER, StuckJobs};
use crate::app::completion::Claim;
use crate::app::metrics;
use crate::clock;
use crate::contract::ids::JobId;
use crate::job::model::Job;
use crate::port::ledger::JobFilter;

impl Coordinator {
    /// The scheduled check behind the stuck-job alarm: counts jobs RUNNING for longer than
    /// the threshold and emits `StuckJobs` (0 included, so the alarm always has data).
    pub async fn check_stuck_jobs(
        &self,
        older_than: Duration,
    ) -> Result<StuckJobs, CoordinatorError> {
        let now_ms = clock::now_ms();
        let running = self.ledger.jobs(JobFilter::Running).await?;
        let mut stuck: Vec<&Job> = running
            .iter()
            .filter(|job| now_ms.saturating_sub(job.started_ms) > older_than.as_millis() as u64)
            .collect();
        stuck.sort_by_key(|job| job.started_ms);
        let report = StuckJobs {
            older_than_seconds: older_than.as_secs(),
            job_ids: stuck.iter().map(|job| job.job_id.clone()).collect(),
            listings_resumed: self.resume_stalled_listings(&running, now_ms).await,
            events_sent: self.send_owed_events().await,
        };
        if !report.job_ids.is_empty() {
            tracing::warn!(stuck = report.job_ids.len(), oldest = %report.job_ids[0], "jobs stuck RUNNING");
        }
        self.metrics.emit(metrics::stuck_jobs(
            report.job_ids.len(),
            report.job_ids.first().map(JobId::as_str),
            report.older_than_seconds,
        ));
        Ok(report)
    }

    /// Wakes the listings whose invocation died: unsealed, with no start or checkpoint for
    /// longer than any invocation lives. The woken invocation resumes from the checkpoint (or
    /// the start); should the old one still run, the ledger lets only one go on.
    async fn resume_stalled_listings(&self, running: &[Job], now_ms: u64) -> Vec<JobId> {
        if self.config.control_queue_url.is_none() {
            return Vec::new();
        }
        let mut resumed = Vec::new();
        for job in running.iter().filter(|job| {
            !job.sealed && job.listing_idle_ms(now_ms) > LISTING_STALLED_AFTER.as_millis() as u64
        }) {
            match self.wake(&job.job_id, job.listing_invocation).await {
                Ok(()) => {
                    tracing::warn!(job_id = %job.job_id, invocation = job.listing_invocation, "a listing's invocation died; woken again");
                    resumed.push(job.job_id.clone());
                }
                Err(error) => {
                    tracing::error!(job_id = %job.job_id, error = %crate::report(&error), "could not wake a stalled listing")
                }
            }
        }
        resumed
    }

    /// Sends the completion events still owed after a crash (a job's own finisher holds a
    /// claim for a minute, so this does not race it). Failures are logged, not returned:
    /// they must not keep the stuck-job metric from being emitted.
    async fn send_owed_events(&self) -> Vec<JobId> {
        let owed = match self.ledger.jobs(JobFilter::EventPending).await {
            Ok(owed) => owed.into_iter().map(|job| job.job_id),
            Err(error) => {
                tracing::error!(error = %crate::report(&error), "could not look for owed completion events");
                return Vec::new();
            }
        };
        let mut sent = Vec::new();
        for job_id in owed {
            let result = async {
                let Some(job) = self.ledger.get(&job_id).await? else {
                    return Ok(false);
                };
                self.announcer.announce(&job, Claim::Needed).await?;
                let job = self.ledger.get(&job_id).await?;
                Ok::<_, CoordinatorError>(job.is_some_and(|j| !j.event_pending))
            };
            match result.await {
                Ok(true) => {
                    tracing::warn!(%job_id, "a completion event owed after a crash was sent");
                    sent.push(job_id);
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%job_id, error = %crate::report(&error), "could not send an owed completion event")
                }
            }
        }
        sent
    }
}
