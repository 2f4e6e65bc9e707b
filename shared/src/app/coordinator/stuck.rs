//! The scheduled check behind the stuck-job alarm: counts jobs RUNNING too long, wakes
//! listings whose invocation died, ends what a killed process left open (a batch or a
//! listing killed on its last delivery, a finish lost after every batch was counted), and
//! sends completion events a crash left owed. Its reads are per running job: a header and
//! its counter shards, never the batches' items.

use std::time::Duration;

use super::{Coordinator, CoordinatorError, LISTING_STALLED_AFTER, StuckJobs};
use crate::app::completion::Claim;
use crate::app::metrics;
use crate::clock;
use crate::contract::ids::JobId;
use crate::fan_in::Ledger as _;
use crate::job::model::{Job, Recorded};
use crate::port::ledger::JobFilter;

/// Past an invocation's deadline, how long to wait before treating it as killed (clock skew
/// between the invocation and this check).
pub const KILL_GRACE: Duration = Duration::from_secs(5);

impl Coordinator {
    /// The scheduled check behind the stuck-job alarm: counts jobs RUNNING for longer than
    /// the threshold and emits `StuckJobs` (0 included, so the alarm always has data).
    pub async fn check_stuck_jobs(
        &self,
        older_than: Duration,
    ) -> Result<StuckJobs, CoordinatorError> {
        let now_ms = clock::now_ms();
        let running = self.ledger.jobs(JobFilter::Running).await?;
        let batches_failed = self.fail_killed_batches(&running, now_ms).await;
        let composes_woken = self.wake_composes_of_killed_scans(&batches_failed).await;
        let mut jobs_ended = self.fail_killed_listings(&running, now_ms).await;
        jobs_ended.extend(self.finish_counted_jobs(&running).await);
        let running: Vec<Job> = running
            .into_iter()
            .filter(|job| !jobs_ended.contains(&job.job_id))
            .collect();
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
            export_phases_resumed: self.resume_export_phases(&running).await,
            batches_failed,
            composes_woken,
            jobs_ended,
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

    /// Counts as failed the batches whose last delivery was killed: marked, and past the
    /// deadline of the invocation that ran it (plus [`KILL_GRACE`] for clock skew). A batch
    /// that was counted after all stays counted (the count is exactly once either way).
    async fn fail_killed_batches(&self, running: &[Job], now_ms: u64) -> Vec<(JobId, u64)> {
        let mut failed = Vec::new();
        for job in running {
            let result = async {
                let marks = self.ledger.last_attempts(&job.job_id).await?;
                let mut counted = Vec::new();
                for (batch, deadline_ms) in marks {
                    if now_ms <= deadline_ms + KILL_GRACE.as_millis() as u64 {
                        continue;
                    }
                    let reason = format!(
                        "batch {batch} was killed on its last delivery (no result by its invocation's deadline)"
                    );
                    let recorded = self
                        .ledger
                        .record_failed_batch(&job.job_id, batch, &reason)
                        .await?;
                    if matches!(recorded, Recorded::Counted(_)) {
                        tracing::error!(job_id = %job.job_id, batch = batch.get(), "a batch killed on its last delivery is counted as failed");
                        counted.push((job.job_id.clone(), batch.get()));
                    }
                    self.ledger.clear_last_attempt(&job.job_id, batch).await?;
                }
                Ok::<_, CoordinatorError>(counted)
            };
            match result.await {
                Ok(counted) => failed.extend(counted),
                Err(error) => {
                    tracing::error!(job_id = %job.job_id, error = %crate::report(&error), "could not settle killed last deliveries")
                }
            }
        }
        failed
    }

    /// Fails the jobs whose listing was killed on its last delivery (marked, deadline past,
    /// no checkpoint since): nothing would wake it again but this check, forever.
    async fn fail_killed_listings(&self, running: &[Job], now_ms: u64) -> Vec<JobId> {
        let mut ended = Vec::new();
        for job in running.iter().filter(|job| !job.sealed) {
            let Some(deadline_ms) = job.listing_last_attempt_ms else {
                continue;
            };
            if now_ms <= deadline_ms + KILL_GRACE.as_millis() as u64 {
                continue;
            }
            let reason = format!(
                "the listing's invocation {} was killed on its last delivery",
                job.listing_invocation
            );
            self.fail_job(&job.job_id, &reason).await;
            ended.push(job.job_id.clone());
        }
        ended
    }

    /// Finishes sealed jobs whose every batch is counted but whose final transition was lost
    /// (a crash after sealing, or after the last count).
    async fn finish_counted_jobs(&self, running: &[Job]) -> Vec<JobId> {
        let mut ended = Vec::new();
        for job in running.iter().filter(|job| job.sealed) {
            // Fresh: this check may just have counted its killed batches.
            let fresh = async {
                match self.ledger.get(&job.job_id).await? {
                    Some(fresh) => self.ledger.try_finish(&fresh).await,
                    None => Ok(None),
                }
            };
            let finished = match fresh.await {
                Ok(finished) => finished,
                Err(error) => {
                    tracing::error!(job_id = %job.job_id, error = %crate::report(&error), "could not finish a counted job");
                    continue;
                }
            };
            if let Some(finished) = finished {
                tracing::warn!(job_id = %job.job_id, status = finished.status.as_str(), "a counted job whose finish was lost is finished");
                self.metrics
                    .emit(metrics::job_finished("coordinator", &finished));
                if let Err(e) = self.announcer.announce(&finished, Claim::Held).await {
                    tracing::error!(job_id = %job.job_id, error = %crate::report(&e), "could not send the completion event; the next check retries it");
                }
                ended.push(job.job_id.clone());
            }
        }
        ended
    }

    /// Wakes the listings whose invocation died: unsealed, with no start or checkpoint for
    /// longer than any invocation lives. The woken invocation resumes from the checkpoint (or
    /// the start); should the old one still run, the ledger lets only one go on. A held
    /// listing is not dead: it is woken once its job's queue has drained to half its window.
    async fn resume_stalled_listings(&self, running: &[Job], now_ms: u64) -> Vec<JobId> {
        if self.config.control_queue_url.is_none() {
            return Vec::new();
        }
        let stalled = |job: &Job| {
            job.listing_idle_ms(now_ms) > LISTING_STALLED_AFTER.as_millis() as u64
                && (!job.listing_held || job.listing_owner.is_some())
        };
        let released = |job: &Job| {
            let elapsed = Duration::from_millis(now_ms.saturating_sub(job.started_ms));
            job.listing_held
                && job.listing_owner.is_none()
                && (self.config.queue_window).has_room(
                    job.batches_enqueued,
                    job.batches_done,
                    elapsed,
                )
        };
        let mut resumed = Vec::new();
        for job in running
            .iter()
            .filter(|job| !job.sealed && (stalled(job) || released(job)))
        {
            match self.wake(&job.job_id, job.listing_invocation).await {
                Ok(()) => {
                    if job.listing_held && job.listing_owner.is_none() {
                        tracing::info!(job_id = %job.job_id, invocation = job.listing_invocation, "a held listing's queue has drained; woken");
                    } else {
                        tracing::warn!(job_id = %job.job_id, invocation = job.listing_invocation, "a listing's invocation died; woken again");
                    }
                    resumed.push(job.job_id.clone());
                }
                Err(error) => {
                    tracing::error!(job_id = %job.job_id, error = %crate::report(&error), "could not wake a stalled listing")
                }
            }
        }
        resumed
    }

    /// Runs again the phase steps of export chains that a crash or a dead letter lost
    /// (`docs/exports.md`): the step is idempotent, so a step still on its way is harmless.
    async fn resume_export_phases(&self, running: &[Job]) -> Vec<JobId> {
        let mut resumed = Vec::new();
        for job in running.iter().filter(|job| job.export.is_some()) {
            match self.heal_export_phase(job).await {
                Ok(true) => resumed.push(job.job_id.clone()),
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(job_id = %job.job_id, error = %crate::report(&error), "could not run a lost export phase step again")
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
