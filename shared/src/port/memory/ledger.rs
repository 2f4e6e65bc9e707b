//! The ledger in maps, with the same conditions as the DynamoDB adapter, each checked and
//! applied under one lock (as DynamoDB applies a conditional write atomically per item):
//! headers, counter shards (with their intent tokens) and batch markers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::job::model::{Job, JobStatus, ListingCheckpoint, ListingProgress};
use crate::job::rules::Ending;
use crate::job::shards::{self, Delta, Marker, Outcome, Recovery, Shard};
use crate::port::ledger::{Finish, JobError, JobFilter, LedgerStore};

#[derive(Debug, Default)]
pub struct MemoryLedger {
    jobs: Mutex<BTreeMap<JobId, Record>>,
    parts: Mutex<Parts>,
}

/// A job's header item.
#[derive(Debug, Clone)]
struct Record {
    job: Job,
}

/// The counter shards (each with its intent tokens) and batch markers of every job.
#[derive(Debug, Default)]
struct Parts {
    shards: BTreeMap<(JobId, u32), (Shard, BTreeSet<String>)>,
    markers: BTreeMap<(JobId, BatchNo), Marker>,
}

impl MemoryLedger {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<JobId, Record>> {
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn parts(&self) -> MutexGuard<'_, Parts> {
        self.parts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many items the ledger holds for `job_id` (header, shards, markers), and the
    /// intent tokens left in its shards.
    pub fn items(&self, job_id: &JobId) -> (usize, usize) {
        let parts = self.parts();
        let shards = parts.shards.keys().filter(|(j, _)| j == job_id).count();
        let markers = parts.markers.keys().filter(|(j, _)| j == job_id).count();
        let tokens = parts
            .shards
            .iter()
            .filter(|((j, _), _)| j == job_id)
            .map(|(_, (_, tokens))| tokens.len())
            .sum();
        (1 + shards + markers, tokens)
    }

    /// Changes a stored job directly, as a test's setup (e.g. to age a claim).
    pub fn edit(&self, job_id: &JobId, change: impl FnOnce(&mut Job)) {
        if let Some(record) = self.lock().get_mut(job_id) {
            change(&mut record.job);
        }
    }
}

fn not_found(job_id: &JobId) -> JobError {
    JobError::NotFound(job_id.clone())
}

#[async_trait]
impl LedgerStore for MemoryLedger {
    async fn create(&self, job: &Job) -> Result<(), JobError> {
        let mut jobs = self.lock();
        if jobs.contains_key(&job.job_id) {
            return Err(JobError::AlreadyExists(job.job_id.clone()));
        }
        let record = Record { job: job.clone() };
        jobs.insert(job.job_id.clone(), record);
        Ok(())
    }

    async fn header(&self, job_id: &JobId) -> Result<Option<Job>, JobError> {
        Ok(self.lock().get(job_id).map(|record| record.job.clone()))
    }

    async fn headers(&self, filter: JobFilter, limit: Option<usize>) -> Result<Vec<Job>, JobError> {
        let mut jobs: Vec<Job> = self
            .lock()
            .values()
            .map(|record| record.job.clone())
            .filter(|job| filter.matches(job))
            .collect();
        jobs.sort_by_key(|job| std::cmp::Reverse(job.started_ms));
        jobs.truncate(limit.unwrap_or(usize::MAX));
        Ok(jobs)
    }

    async fn seal_total(
        &self,
        job_id: &JobId,
        listing: ListingProgress,
        owner: Option<&RunId>,
    ) -> Result<Job, JobError> {
        let mut jobs = self.lock();
        let job = &mut jobs.get_mut(job_id).ok_or_else(|| not_found(job_id))?.job;
        if job.sealed {
            return Err(JobError::AlreadySealed(job_id.clone()));
        }
        if owner.is_some_and(|owner| job.listing_owner.as_ref() != Some(owner)) {
            return Err(JobError::NotOwner(job_id.clone()));
        }
        job.sealed = true;
        job.total_batches = listing.batches;
        job.files_listed = listing.files_listed;
        job.files_skipped = listing.files_skipped;
        job.planning_bytes_read = listing.planning_bytes_read;
        Ok(job.clone())
    }

    async fn claim_listing(
        &self,
        job_id: &JobId,
        invocation: u32,
        owner: &RunId,
        stale_after: Duration,
    ) -> Result<bool, JobError> {
        let now = clock::now_ms();
        let stale = now.saturating_sub(stale_after.as_millis() as u64);
        let mut jobs = self.lock();
        let Some(Record { job, .. }) = jobs.get_mut(job_id) else {
            return Ok(false);
        };
        let free = job.listing_owner.is_none() || job.listing_updated_ms < stale;
        if job.status != JobStatus::Running
            || job.sealed
            || job.listing_invocation != invocation
            || !free
        {
            return Ok(false);
        }
        job.listing_owner = Some(owner.to_owned());
        job.listing_updated_ms = now;
        Ok(true)
    }

    async fn release_listing(&self, job_id: &JobId, owner: &RunId) -> Result<(), JobError> {
        if let Some(Record { job, .. }) = self.lock().get_mut(job_id)
            && job.listing_owner.as_ref() == Some(owner)
        {
            job.listing_owner = None;
        }
        Ok(())
    }

    async fn checkpoint(
        &self,
        job_id: &JobId,
        checkpoint: &ListingCheckpoint,
        owner: &RunId,
    ) -> Result<bool, JobError> {
        let mut jobs = self.lock();
        let Some(Record { job, .. }) = jobs.get_mut(job_id) else {
            return Ok(false);
        };
        if job.status != JobStatus::Running
            || job.sealed
            || job.listing_invocation != checkpoint.invocation.saturating_sub(1)
            || job.listing_owner.as_ref() != Some(owner)
        {
            return Ok(false);
        }
        job.listing_invocation = checkpoint.invocation;
        job.listing_cursor = Some(checkpoint.cursor.clone().unwrap_or_default());
        job.batches_enqueued = checkpoint.progress.batches;
        job.files_listed = checkpoint.progress.files_listed;
        job.files_skipped = checkpoint.progress.files_skipped;
        job.planning_bytes_read = checkpoint.progress.planning_bytes_read;
        job.listing_updated_ms = clock::now_ms();
        job.listing_held = checkpoint.held;
        job.listing_owner = None;
        job.listing_last_attempt_ms = None;
        Ok(true)
    }

    async fn advance_export_phase(
        &self,
        job_id: &JobId,
        phase: u32,
        now_ms: u64,
    ) -> Result<bool, JobError> {
        let mut jobs = self.lock();
        let job = &mut jobs.get_mut(job_id).ok_or_else(|| not_found(job_id))?.job;
        if job.status != JobStatus::Running || job.export_phase >= phase {
            return Ok(false);
        }
        job.export_phase = phase;
        job.export_fence_ms = Some(now_ms);
        Ok(true)
    }

    async fn mark_listing_last_attempt(
        &self,
        job_id: &JobId,
        deadline_ms: u64,
    ) -> Result<(), JobError> {
        let mut jobs = self.lock();
        let job = &mut jobs.get_mut(job_id).ok_or_else(|| not_found(job_id))?.job;
        job.listing_last_attempt_ms = Some(deadline_ms);
        Ok(())
    }

    async fn finish(&self, job_id: &JobId, finish: &Finish) -> Result<Option<Job>, JobError> {
        let mut jobs = self.lock();
        let Some(Record { job, .. }) = jobs.get_mut(job_id) else {
            return Ok(None);
        };
        let allowed = job.status == JobStatus::Running
            && match finish.ending {
                Ending::AllBatchesCounted { .. } => job.sealed,
                Ending::Abandoned(_) => true,
            };
        if !allowed {
            return Ok(None);
        }
        job.status = finish.ending.status();
        job.finished_at = Some(finish.finished_at.clone());
        job.duration_seconds = Some((finish.duration_seconds * 1000.0).round() / 1000.0);
        job.event_pending = true;
        job.event_claimed_ms = Some(finish.event_claimed_ms);
        if let Some(reason) = finish.ending.reason() {
            job.error = Some(reason.to_owned());
        }
        Ok(Some(job.clone()))
    }

    async fn claim_event(&self, job_id: &JobId, lease: Duration) -> Result<Option<u64>, JobError> {
        let now = clock::now_ms();
        let stale = now.saturating_sub(lease.as_millis() as u64);
        let mut jobs = self.lock();
        let Some(Record { job, .. }) = jobs.get_mut(job_id) else {
            return Ok(None);
        };
        if !job.event_pending || job.event_claimed_ms.is_some_and(|claimed| claimed >= stale) {
            return Ok(None);
        }
        job.event_claimed_ms = Some(now);
        Ok(Some(now))
    }

    async fn release_event_claim(&self, job_id: &JobId, claimed_ms: u64) -> Result<(), JobError> {
        if let Some(Record { job, .. }) = self.lock().get_mut(job_id)
            && job.event_claimed_ms == Some(claimed_ms)
        {
            job.event_claimed_ms = None;
        }
        Ok(())
    }

    async fn clear_event_pending(&self, job_id: &JobId) -> Result<(), JobError> {
        let mut jobs = self.lock();
        let job = &mut jobs.get_mut(job_id).ok_or_else(|| not_found(job_id))?.job;
        job.event_pending = false;
        job.event_claimed_ms = None;
        Ok(())
    }

    async fn shards(&self, job_id: &JobId) -> Result<Vec<(u32, Shard)>, JobError> {
        Ok(self
            .parts()
            .shards
            .iter()
            .filter(|((j, _), _)| j == job_id)
            .map(|((_, k), (shard, _))| (*k, shard.clone()))
            .collect())
    }

    async fn add_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError> {
        let mut parts = self.parts();
        let entry = parts.shards.entry((job_id.clone(), shard)).or_default();
        entry.1.insert(token.to_owned());
        Ok(())
    }

    async fn drop_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError> {
        if let Some((_, tokens)) = self.parts().shards.get_mut(&(job_id.clone(), shard)) {
            tokens.remove(token);
        }
        Ok(())
    }

    async fn apply(
        &self,
        job_id: &JobId,
        shard: u32,
        token: &str,
        delta: &Delta,
    ) -> Result<Option<Shard>, JobError> {
        let mut parts = self.parts();
        let Some((counters, tokens)) = parts.shards.get_mut(&(job_id.clone(), shard)) else {
            return Ok(None);
        };
        if !tokens.remove(token) {
            return Ok(None);
        }
        counters.apply(delta);
        Ok(Some(counters.clone()))
    }

    async fn put_marker(&self, job_id: &JobId, marker: &Marker) -> Result<bool, JobError> {
        let mut parts = self.parts();
        let key = (job_id.clone(), marker.batch);
        if parts.markers.contains_key(&key) {
            return Ok(false);
        }
        parts.markers.insert(key, marker.clone());
        Ok(true)
    }

    async fn marker(&self, job_id: &JobId, batch: BatchNo) -> Result<Option<Marker>, JobError> {
        Ok(self.parts().markers.get(&(job_id.clone(), batch)).cloned())
    }

    async fn put_recovery(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        recovery: &Recovery,
    ) -> Result<bool, JobError> {
        let mut parts = self.parts();
        let Some(marker) = parts.markers.get_mut(&(job_id.clone(), batch)) else {
            return Ok(false);
        };
        if marker.outcome != Outcome::Failed || marker.recovery.is_some() {
            return Ok(false);
        }
        marker.recovery = Some(recovery.clone());
        Ok(true)
    }

    async fn mark_last_attempt(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        deadline_ms: u64,
    ) -> Result<(), JobError> {
        let mut parts = self.parts();
        let entry = parts
            .shards
            .entry((job_id.clone(), shards::shard_of(batch)))
            .or_default();
        entry.0.last_attempts.insert(batch.get(), deadline_ms);
        Ok(())
    }

    async fn clear_last_attempt(&self, job_id: &JobId, batch: BatchNo) -> Result<(), JobError> {
        let mut parts = self.parts();
        if let Some((shard, _)) = parts
            .shards
            .get_mut(&(job_id.clone(), shards::shard_of(batch)))
        {
            shard.last_attempts.remove(&batch.get());
        }
        Ok(())
    }
}
