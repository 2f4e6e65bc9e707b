//! The job ledger port: one record per job; every batch counted exactly once by one atomic
//! conditional write; exactly one final transition. The pure rules of when and how a job
//! ends are in [`crate::job::rules`]; the provided methods here apply them over the port's
//! primitive writes, so every backend ends jobs the same way.

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::BoxError;
use crate::clock;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::job::model::{BatchStats, Job, ListingCheckpoint, Recorded};
use crate::job::rules::{self, Ending};

#[derive(Debug, Error)]
pub enum JobError {
    #[error("{operation} on job {job_id} failed")]
    Backend {
        operation: &'static str,
        job_id: JobId,
        #[source]
        source: BoxError,
    },
    #[error("job {0} already exists")]
    AlreadyExists(JobId),
    #[error("job {0} does not exist")]
    NotFound(JobId),
    #[error("job {0} is already sealed")]
    AlreadySealed(JobId),
    #[error("another run owns the listing of job {0}")]
    NotOwner(JobId),
    #[error("job item {job_id} is malformed")]
    Malformed {
        job_id: JobId,
        #[source]
        source: BoxError,
    },
}

/// What sealing fixes: the listing's final counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub total_batches: u64,
    pub files_listed: u64,
    pub files_skipped: u64,
}

/// Which jobs a scan returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    All,
    Running,
    /// Finished jobs whose completion event is still owed.
    EventPending,
}

/// The final transition's stamp.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub ending: Ending,
    pub finished_at: String,
    pub duration_seconds: f64,
    /// Held by the winner: the right to send the completion event (see
    /// [`crate::app::completion`]).
    pub event_claimed_ms: u64,
}

impl Finish {
    /// `ending` for a job started at `started_ms`, stamped now.
    pub fn now(ending: Ending, started_ms: u64) -> Self {
        let now_ms = clock::now_ms();
        Self {
            ending,
            finished_at: chrono::Utc::now().to_rfc3339(),
            duration_seconds: now_ms.saturating_sub(started_ms) as f64 / 1000.0,
            event_claimed_ms: now_ms,
        }
    }
}

#[async_trait]
pub trait Ledger: Send + Sync {
    /// Writes a new job; `AlreadyExists` if the id is taken.
    async fn create(&self, job: &Job) -> Result<(), JobError>;

    /// A consistent read of a job.
    async fn get(&self, job_id: &JobId) -> Result<Option<Job>, JobError>;

    /// Ends the listing: fixes the total, only if the job is not sealed yet and, with an
    /// `owner`, only for that run (`NotOwner` otherwise). Returns the sealed job.
    async fn seal_total(
        &self,
        job_id: &JobId,
        seal: Seal,
        owner: Option<&RunId>,
    ) -> Result<Job, JobError>;

    /// Takes listing step `invocation` for `owner`: only if the job is running, unsealed, at
    /// that step, and nobody owns it (or its owner went silent for longer than
    /// `stale_after`).
    async fn claim_listing(
        &self,
        job_id: &JobId,
        invocation: u32,
        owner: &RunId,
        stale_after: Duration,
    ) -> Result<bool, JobError>;

    /// Gives up `owner`'s claim on the current listing step (a claim someone else holds is
    /// left alone).
    async fn release_listing(&self, job_id: &JobId, owner: &RunId) -> Result<(), JobError>;

    /// Records where invocation `checkpoint.invocation` resumes and hands the listing over,
    /// only if `owner` still owns the step before it. `false`: it does not; stop.
    async fn checkpoint(
        &self,
        job_id: &JobId,
        checkpoint: &ListingCheckpoint,
        owner: &RunId,
    ) -> Result<bool, JobError>;

    /// Counts a batch exactly once with its stats; a batch counted as failed before (a
    /// redrive) is `Recovered` instead; a duplicate is `AlreadyCounted`.
    async fn record_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        stats: &BatchStats,
    ) -> Result<Recorded, JobError>;

    /// Counts a batch that failed its last delivery exactly once, as done but failed.
    async fn record_failed_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        reason: &str,
    ) -> Result<Recorded, JobError>;

    /// The one write that ends a job, conditional on it still RUNNING (and, for
    /// [`Ending::AllBatchesCounted`], sealed with every batch counted). It also makes the
    /// completion event owed, claimed by the winner. `None`: someone else ended it.
    async fn finish(&self, job_id: &JobId, finish: &Finish) -> Result<Option<Job>, JobError>;

    /// Takes the right to send an owed completion event, unless someone claimed it within
    /// `lease`. Returns the claim's stamp, the token to release it with.
    async fn claim_event(&self, job_id: &JobId, lease: Duration) -> Result<Option<u64>, JobError>;

    /// Gives up the claim stamped `claimed_ms`; a claim taken over since is left alone.
    async fn release_event_claim(&self, job_id: &JobId, claimed_ms: u64) -> Result<(), JobError>;

    /// Marks a job's completion event as sent.
    async fn clear_event_pending(&self, job_id: &JobId) -> Result<(), JobError>;

    /// The jobs that match (a scan: one small record per job, run rarely).
    async fn jobs(&self, filter: JobFilter) -> Result<Vec<Job>, JobError>;

    /// Seals, and finishes the job if every batch was already counted.
    async fn seal(
        &self,
        job_id: &JobId,
        seal: Seal,
        owner: Option<&RunId>,
    ) -> Result<Option<Job>, JobError> {
        let job = self.seal_total(job_id, seal, owner).await?;
        self.try_finish(&job).await
    }

    /// Ends a job whose every batch is counted, as [`rules::ending`] decides. At most one
    /// caller ever wins, and the winner gets the final job back and logs its summary.
    async fn try_finish(&self, job: &Job) -> Result<Option<Job>, JobError> {
        let Some(ending) = rules::ending(job) else {
            return Ok(None);
        };
        let finished = self
            .finish(&job.job_id, &Finish::now(ending, job.started_ms))
            .await?;
        finished.iter().for_each(log_final);
        Ok(finished)
    }

    /// Marks a running job FAILED for a reason (it can never be sealed). Returns the job if
    /// this call made the transition.
    async fn fail(&self, job_id: &JobId, reason: &str) -> Result<Option<Job>, JobError> {
        let Some(job) = self.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()));
        };
        let finish = Finish::now(Ending::Abandoned(reason.to_owned()), job.started_ms);
        let finished = self.finish(job_id, &finish).await?;
        finished.iter().for_each(log_final);
        Ok(finished)
    }

    /// The `limit` most recently started jobs, newest first.
    async fn recent_jobs(&self, limit: usize) -> Result<Vec<Job>, JobError> {
        let mut jobs = self.jobs(JobFilter::All).await?;
        jobs.sort_by_key(|job| std::cmp::Reverse(job.started_ms));
        jobs.truncate(limit);
        Ok(jobs)
    }
}

/// The completion callback's record: one structured line per job, written exactly once.
fn log_final(job: &Job) {
    let summary = serde_json::to_string(job).unwrap_or_default();
    tracing::info!(
        job_id = %job.job_id,
        status = job.status.as_str(),
        rows_written = job.totals.rows_written,
        rows_rejected = job.totals.rows_rejected,
        duration_seconds = job.duration_seconds,
        %summary,
        "job finished"
    );
}
