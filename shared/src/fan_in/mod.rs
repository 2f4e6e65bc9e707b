//! The fan-in: how a job's batches are counted exactly once and how it ends exactly once,
//! written once over the ledger port's primitives ([`LedgerStore`]) for every backend. The
//! pure rules are in [`crate::job::rules`] and [`crate::job::shards`]; the three-write
//! counting protocol in [`counting`]; why it holds: `docs/ledger.md`. A backend implements
//! [`LedgerStore`]; the use cases call [`Ledger`], which every store is (and a wrapper can
//! crash between any two of its writes: [`contract::crash`]).

pub mod counting;

#[cfg(any(test, feature = "contract"))]
pub mod conformance;

use async_trait::async_trait;

use crate::contract::ids::{BatchNo, JobId, RunId};
pub use crate::job::model::ListingProgress;
use crate::job::model::{BatchStats, Job, Recorded};
use crate::job::rules::{self, Ending};
use crate::job::shards;
pub use crate::port::ledger::{Finish, JobError, JobFilter, LedgerStore};
use counting::Count;

/// What the use cases call on a ledger, the same over every backend.
#[async_trait]
pub trait Ledger: LedgerStore {
    /// A job as it stands: its header with every shard's counters summed (1 + shards reads).
    async fn get(&self, job_id: &JobId) -> Result<Option<Job>, JobError> {
        let Some(header) = self.header(job_id).await? else {
            return Ok(None);
        };
        let shards = self.shards(job_id).await?;
        Ok(Some(shards::view(header, shards.iter().map(|(_, s)| s))))
    }

    /// Counts a batch exactly once with its stats; a batch counted as failed before (a
    /// redrive) is `Recovered` instead; a duplicate is `AlreadyCounted`.
    async fn record_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        stats: &BatchStats,
    ) -> Result<Recorded, JobError> {
        counting::record(self, job_id, batch, Count::Succeeded(*stats)).await
    }

    /// Counts a batch that failed its last delivery exactly once, as done but failed.
    async fn record_failed_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        reason: &str,
    ) -> Result<Recorded, JobError> {
        counting::record(self, job_id, batch, Count::Failed(reason)).await
    }

    /// The batches on their last delivery, with their invocations' deadlines.
    async fn last_attempts(&self, job_id: &JobId) -> Result<Vec<(BatchNo, u64)>, JobError> {
        let shards = self.shards(job_id).await?;
        Ok(shards
            .iter()
            .flat_map(|(_, s)| s.last_attempts.iter())
            .map(|(batch, deadline)| (BatchNo(*batch), *deadline))
            .collect())
    }

    /// The jobs that match, as they stand (header and shards each).
    async fn jobs(&self, filter: JobFilter) -> Result<Vec<Job>, JobError> {
        let mut jobs = Vec::new();
        for header in self.headers(filter, None).await? {
            let shards = self.shards(&header.job_id).await?;
            jobs.push(shards::view(header, shards.iter().map(|(_, s)| s)));
        }
        Ok(jobs)
    }

    /// The `limit` most recently started jobs, newest first.
    async fn recent_jobs(&self, limit: usize) -> Result<Vec<Job>, JobError> {
        let mut jobs = Vec::new();
        for header in self.headers(JobFilter::All, Some(limit)).await? {
            let shards = self.shards(&header.job_id).await?;
            jobs.push(shards::view(header, shards.iter().map(|(_, s)| s)));
        }
        Ok(jobs)
    }

    /// Seals, and finishes the job if every batch was already counted.
    async fn seal(
        &self,
        job_id: &JobId,
        listing: ListingProgress,
        owner: Option<&RunId>,
    ) -> Result<Option<Job>, JobError> {
        let sealed = self.seal_total(job_id, listing, owner).await?;
        // Sealing, then reading every shard: a count that lands meanwhile either is seen
        // here or sees the seal itself (each writes, then reads what the other wrote).
        let Some(job) = self.get(&sealed.job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()));
        };
        self.try_finish(&job).await
    }

    /// Ends a job whose every batch is counted, as [`rules::ending`] decides. `job` is
    /// only a hint: the decision is made on a fresh view, so a stale or partial snapshot
    /// cannot end a job. At most one caller ever wins, and the winner gets the final job
    /// back and logs its summary.
    async fn try_finish(&self, job: &Job) -> Result<Option<Job>, JobError> {
        if rules::ending(job).is_none() {
            return Ok(None);
        }
        let Some(fresh) = self.get(&job.job_id).await? else {
            return Ok(None);
        };
        let Some(ending) = rules::ending(&fresh) else {
            return Ok(None);
        };
        let finished = self
            .finish(&job.job_id, &Finish::now(ending, fresh.started_ms))
            .await?;
        let finished = finished.map(|header| shards::view_like(header, &fresh));
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
        let finished = finished.map(|header| shards::view_like(header, &job));
        finished.iter().for_each(log_final);
        Ok(finished)
    }
}

impl<T: LedgerStore + ?Sized> Ledger for T {}

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
