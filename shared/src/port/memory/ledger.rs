//! The ledger in a map, with the same conditions as the DynamoDB adapter, each checked and
//! applied under one lock (as DynamoDB applies a conditional write atomically per item).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::job::model::{BatchStats, Job, JobStatus, ListingCheckpoint, Recorded};
use crate::job::rules::Ending;
use crate::port::ledger::{Finish, JobError, JobFilter, Ledger, Seal};

#[derive(Debug, Default)]
pub struct MemoryLedger {
    jobs: Mutex<BTreeMap<JobId, Record>>,
}

/// A job and the ledger's own bookkeeping of it.
#[derive(Debug, Clone)]
struct Record {
    job: Job,
    done: BTreeSet<BatchNo>,
    failed: BTreeSet<BatchNo>,
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

    /// Changes a stored job directly, as a test's setup (e.g. to age a claim).
    pub fn edit(&self, job_id: &JobId, change: impl FnOnce(&mut Job)) {
        if let Some(record) = self.lock().get_mut(job_id) {
            change(&mut record.job);
        }
    }
}

fn add_stats(totals: &mut BatchStats, stats: &BatchStats) {
    totals.files += stats.files;
    totals.files_failed += stats.files_failed;
    totals.rows_written += stats.rows_written;
    totals.rows_rejected += stats.rows_rejected;
    totals.rows_duplicate += stats.rows_duplicate;
    totals.bytes += stats.bytes;
    totals.write_retries += stats.write_retries;
    totals.s3_throttles += stats.s3_throttles;
    totals.rows_existing += stats.rows_existing;
    totals.write_units += stats.write_units;
}

fn not_found(job_id: &JobId) -> JobError {
    JobError::NotFound(job_id.clone())
}

#[async_trait]
impl Ledger for MemoryLedger {
    async fn create(&self, job: &Job) -> Result<(), JobError> {
        let mut jobs = self.lock();
        if jobs.contains_key(&job.job_id) {
            return Err(JobError::AlreadyExists(job.job_id.clone()));
        }
        let record = Record {
            job: job.clone(),
            done: BTreeSet::new(),
            failed: BTreeSet::new(),
        };
        jobs.insert(job.job_id.clone(), record);
        Ok(())
    }

    async fn get(&self, job_id: &JobId) -> Result<Option<Job>, JobError> {
        Ok(self.lock().get(job_id).map(|record| record.job.clone()))
    }

    async fn seal_total(
        &self,
        job_id: &JobId,
        seal: Seal,
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
        job.total_batches = seal.total_batches;
        job.files_listed = seal.files_listed;
        job.files_skipped = seal.files_skipped;
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
        job.batches_enqueued = checkpoint.next_batch;
        job.files_listed = checkpoint.files_listed;
        job.files_skipped = checkpoint.files_skipped;
        job.listing_updated_ms = clock::now_ms();
        job.listing_owner = None;
        Ok(true)
    }

    async fn record_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        stats: &BatchStats,
    ) -> Result<Recorded, JobError> {
        let mut jobs = self.lock();
        let record = jobs.get_mut(job_id).ok_or_else(|| not_found(job_id))?;
        if record.done.insert(batch) {
            record.job.batches_done += 1;
            add_stats(&mut record.job.totals, stats);
            return Ok(Recorded::Counted(record.job.clone()));
        }
        if record.failed.remove(&batch) {
            record.job.batches_failed -= 1;
            record.job.batches_recovered += 1;
            add_stats(&mut record.job.totals, stats);
            return Ok(Recorded::Recovered(record.job.clone()));
        }
        Ok(Recorded::AlreadyCounted(record.job.clone()))
    }

    async fn record_failed_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        reason: &str,
    ) -> Result<Recorded, JobError> {
        let mut jobs = self.lock();
        let record = jobs.get_mut(job_id).ok_or_else(|| not_found(job_id))?;
        if !record.done.insert(batch) {
            return Ok(Recorded::AlreadyCounted(record.job.clone()));
        }
        record.failed.insert(batch);
        record.job.batches_done += 1;
        record.job.batches_failed += 1;
        record.job.last_batch_error = Some(reason.to_owned());
        Ok(Recorded::Counted(record.job.clone()))
    }

    async fn finish(&self, job_id: &JobId, finish: &Finish) -> Result<Option<Job>, JobError> {
        let mut jobs = self.lock();
        let Some(Record { job, .. }) = jobs.get_mut(job_id) else {
            return Ok(None);
        };
        let allowed = job.status == JobStatus::Running
            && match finish.ending {
                Ending::AllBatchesCounted { .. } => {
                    job.sealed && job.batches_done == job.total_batches
                }
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

    async fn jobs(&self, filter: JobFilter) -> Result<Vec<Job>, JobError> {
        Ok(self
            .lock()
            .values()
            .map(|record| &record.job)
            .filter(|job| match filter {
                JobFilter::All => true,
                JobFilter::Running => job.status == JobStatus::Running,
                JobFilter::EventPending => job.event_pending,
            })
            .cloned()
            .collect())
    }
}
