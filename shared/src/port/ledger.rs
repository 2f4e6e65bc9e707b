//! The job ledger port: the storage primitives a backend implements (DynamoDB in
//! [`crate::aws`], a double in [`crate::port::memory`]): a header item per job,
//! [`crate::job::shards::SHARDS`] counter shards and one marker item per batch, each written
//! by a single conditional operation. How a batch is counted exactly once by three of them,
//! and how a job ends exactly once, is written once for every backend above this port, in
//! [`crate::fan_in`] (as object_store splits the trait a backend implements from the one
//! callers use).

use std::time::Duration;

use async_trait::async_trait;
use thiserror::Error;

use crate::BoxError;
use crate::clock;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::job::model::{Job, ListingCheckpoint, ListingProgress};
use crate::job::rules::Ending;
use crate::job::shards::{Delta, Marker, Recovery, Shard};

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

/// Which jobs a scan returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFilter {
    All,
    Running,
    /// Finished jobs whose completion event is still owed.
    EventPending,
}

impl JobFilter {
    pub fn matches(self, job: &Job) -> bool {
        match self {
            JobFilter::All => true,
            JobFilter::Running => job.status == crate::job::model::JobStatus::Running,
            JobFilter::EventPending => job.event_pending,
        }
    }
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
pub trait LedgerStore: Send + Sync {
    // ---- The job's header item: one per job, written a few times per job, never per count.

    /// Writes a new job; `AlreadyExists` if the id is taken.
    async fn create(&self, job: &Job) -> Result<(), JobError>;

    /// A consistent read of a job's header item alone (its counters are in the shards).
    async fn header(&self, job_id: &JobId) -> Result<Option<Job>, JobError>;

    /// The headers that match, newest first, at most `limit` (an index of headers, never a
    /// scan of the batches).
    async fn headers(&self, filter: JobFilter, limit: Option<usize>) -> Result<Vec<Job>, JobError>;

    /// Ends the listing: fixes the total, only if the job is not sealed yet and, with an
    /// `owner`, only for that run (`NotOwner` otherwise). Returns the sealed header.
    async fn seal_total(
        &self,
        job_id: &JobId,
        listing: ListingProgress,
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
    /// only if `owner` still owns the step before it (clearing any last-attempt mark).
    /// `false`: it does not; stop.
    async fn checkpoint(
        &self,
        job_id: &JobId,
        checkpoint: &ListingCheckpoint,
        owner: &RunId,
    ) -> Result<bool, JobError>;

    /// Records that an export job's phase `phase` starts (the fence, `docs/exports.md`),
    /// stamped `now_ms`: only if the job is running and its phase is before `phase`.
    /// `false`: it is not (recorded before, or the job ended).
    async fn advance_export_phase(
        &self,
        job_id: &JobId,
        phase: u32,
        now_ms: u64,
    ) -> Result<bool, JobError>;

    /// Marks that a listing invocation runs its last delivery, until `deadline_ms`.
    async fn mark_listing_last_attempt(
        &self,
        job_id: &JobId,
        deadline_ms: u64,
    ) -> Result<(), JobError>;

    /// The one write that ends a job, conditional on it still RUNNING (and, for
    /// [`Ending::AllBatchesCounted`], sealed). It also makes the completion event owed,
    /// claimed by the winner. `None`: someone else ended it. Whether every batch is counted
    /// is checked by [`crate::fan_in::Ledger::try_finish`] on a fresh view: a stable fact once true, since
    /// counts only grow and the total is fixed by the seal.
    async fn finish(&self, job_id: &JobId, finish: &Finish) -> Result<Option<Job>, JobError>;

    /// Takes the right to send an owed completion event, unless someone claimed it within
    /// `lease`. Returns the claim's stamp, the token to release it with.
    async fn claim_event(&self, job_id: &JobId, lease: Duration) -> Result<Option<u64>, JobError>;

    /// Gives up the claim stamped `claimed_ms`; a claim taken over since is left alone.
    async fn release_event_claim(&self, job_id: &JobId, claimed_ms: u64) -> Result<(), JobError>;

    /// Marks a job's completion event as sent.
    async fn clear_event_pending(&self, job_id: &JobId) -> Result<(), JobError>;

    // ---- Counter shards and batch markers: the fan-in's items (see `crate::job::shards`).

    /// Every counter shard of a job that exists (a consistent read each).
    async fn shards(&self, job_id: &JobId) -> Result<Vec<(u32, Shard)>, JobError>;

    /// Adds an intent token to a shard.
    async fn add_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError>;

    /// Removes an intent token from a shard (an unused one).
    async fn drop_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError>;

    /// Applies `delta` to a shard and removes `token`, only if `token` is there: `Some`
    /// (the shard as it now is) if this call applied it.
    async fn apply(
        &self,
        job_id: &JobId,
        shard: u32,
        token: &str,
        delta: &Delta,
    ) -> Result<Option<Shard>, JobError>;

    /// Creates a batch's marker only if it has none: `false` if it had one.
    async fn put_marker(&self, job_id: &JobId, marker: &Marker) -> Result<bool, JobError>;

    /// A consistent read of a batch's marker.
    async fn marker(&self, job_id: &JobId, batch: BatchNo) -> Result<Option<Marker>, JobError>;

    /// Records a failed batch's recovery in its marker, only if it failed and has none yet.
    async fn put_recovery(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        recovery: &Recovery,
    ) -> Result<bool, JobError>;

    /// Marks that `batch` runs its last delivery in an invocation ending at `deadline_ms`.
    async fn mark_last_attempt(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        deadline_ms: u64,
    ) -> Result<(), JobError>;

    /// Removes a batch's last-attempt mark.
    async fn clear_last_attempt(&self, job_id: &JobId, batch: BatchNo) -> Result<(), JobError>;
}
