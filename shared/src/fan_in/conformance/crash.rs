//! A ledger that crashes: it passes every call to the ledger it wraps, except that the
//! `after`-th write fails (and every write after it) as if the process died just before it.
//! The counting protocol runs over it unchanged, so a test can stop a count between any two
//! of its writes, on the double and on a real server alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::fan_in::{Finish, JobError, JobFilter, LedgerStore, ListingProgress};
use crate::job::model::{Job, ListingCheckpoint};
use crate::job::shards::{Delta, Marker, Recovery, Shard};

pub struct CrashAfter<'a> {
    inner: &'a dyn LedgerStore,
    after: usize,
    writes: AtomicUsize,
}

impl<'a> CrashAfter<'a> {
    /// Lets `after` writes through, then crashes.
    pub fn new(inner: &'a dyn LedgerStore, after: usize) -> Self {
        Self {
            inner,
            after,
            writes: AtomicUsize::new(0),
        }
    }

    /// Writes made (or attempted) so far.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::SeqCst)
    }

    fn write(&self, job_id: &JobId) -> Result<(), JobError> {
        if self.writes.fetch_add(1, Ordering::SeqCst) >= self.after {
            return Err(JobError::Backend {
                operation: "injected crash",
                job_id: job_id.clone(),
                source: "the process died before this write".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl LedgerStore for CrashAfter<'_> {
    async fn create(&self, job: &Job) -> Result<(), JobError> {
        self.write(&job.job_id)?;
        self.inner.create(job).await
    }
    async fn header(&self, job_id: &JobId) -> Result<Option<Job>, JobError> {
        self.inner.header(job_id).await
    }
    async fn headers(&self, filter: JobFilter, limit: Option<usize>) -> Result<Vec<Job>, JobError> {
        self.inner.headers(filter, limit).await
    }
    async fn seal_total(
        &self,
        job_id: &JobId,
        listing: ListingProgress,
        owner: Option<&RunId>,
    ) -> Result<Job, JobError> {
        self.write(job_id)?;
        self.inner.seal_total(job_id, listing, owner).await
    }
    async fn claim_listing(
        &self,
        job_id: &JobId,
        invocation: u32,
        owner: &RunId,
        stale_after: Duration,
    ) -> Result<bool, JobError> {
        self.write(job_id)?;
        self.inner
            .claim_listing(job_id, invocation, owner, stale_after)
            .await
    }
    async fn release_listing(&self, job_id: &JobId, owner: &RunId) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner.release_listing(job_id, owner).await
    }
    async fn checkpoint(
        &self,
        job_id: &JobId,
        checkpoint: &ListingCheckpoint,
        owner: &RunId,
    ) -> Result<bool, JobError> {
        self.write(job_id)?;
        self.inner.checkpoint(job_id, checkpoint, owner).await
    }
    async fn advance_export_phase(
        &self,
        job_id: &JobId,
        phase: u32,
        now_ms: u64,
    ) -> Result<bool, JobError> {
        self.write(job_id)?;
        self.inner.advance_export_phase(job_id, phase, now_ms).await
    }
    async fn mark_listing_last_attempt(
        &self,
        job_id: &JobId,
        deadline_ms: u64,
    ) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner
            .mark_listing_last_attempt(job_id, deadline_ms)
            .await
    }
    async fn finish(&self, job_id: &JobId, finish: &Finish) -> Result<Option<Job>, JobError> {
        self.write(job_id)?;
        self.inner.finish(job_id, finish).await
    }
    async fn claim_event(&self, job_id: &JobId, lease: Duration) -> Result<Option<u64>, JobError> {
        self.write(job_id)?;
        self.inner.claim_event(job_id, lease).await
    }
    async fn release_event_claim(&self, job_id: &JobId, claimed_ms: u64) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner.release_event_claim(job_id, claimed_ms).await
    }
    async fn clear_event_pending(&self, job_id: &JobId) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner.clear_event_pending(job_id).await
    }
    async fn shards(&self, job_id: &JobId) -> Result<Vec<(u32, Shard)>, JobError> {
        self.inner.shards(job_id).await
    }
    async fn add_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner.add_intent(job_id, shard, token).await
    }
    async fn drop_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner.drop_intent(job_id, shard, token).await
    }
    async fn apply(
        &self,
        job_id: &JobId,
        shard: u32,
        token: &str,
        delta: &Delta,
    ) -> Result<Option<Shard>, JobError> {
        self.write(job_id)?;
        self.inner.apply(job_id, shard, token, delta).await
    }
    async fn put_marker(&self, job_id: &JobId, marker: &Marker) -> Result<bool, JobError> {
        self.write(job_id)?;
        self.inner.put_marker(job_id, marker).await
    }
    async fn marker(&self, job_id: &JobId, batch: BatchNo) -> Result<Option<Marker>, JobError> {
        self.inner.marker(job_id, batch).await
    }
    async fn put_recovery(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        recovery: &Recovery,
    ) -> Result<bool, JobError> {
        self.write(job_id)?;
        self.inner.put_recovery(job_id, batch, recovery).await
    }
    async fn mark_last_attempt(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        deadline_ms: u64,
    ) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner
            .mark_last_attempt(job_id, batch, deadline_ms)
            .await
    }
    async fn clear_last_attempt(&self, job_id: &JobId, batch: BatchNo) -> Result<(), JobError> {
        self.write(job_id)?;
        self.inner.clear_last_attempt(job_id, batch).await
    }
}
