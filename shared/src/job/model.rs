//! The job item: one per job in the jobs table, the fan-in's state. Counters that are missing
//! read as zero, so old items and new fields live together.

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::contract::completion::CompletionEvent;
pub use crate::contract::completion::{BatchStats, JobStatus};
use crate::contract::format::Format;
pub use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::contract::inventory::InventoryOptions;
use crate::contract::messages::JobRequest;
use crate::contract::rejects::RejectTolerance;
use crate::contract::schema::Schema;
use crate::contract::write::WriteOptions;

/// The job item as stored. Missing counters read as zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    pub status: JobStatus,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// The one object of a single-object job (no listing then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The DynamoDB export a job applies (no listing then): a job planned again (the stuck
    /// check) reads the same export, never the bucket's prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<crate::contract::messages::ExportNames>,
    /// An export job's current phase: the chain's export whose batches may write
    /// (`docs/exports.md`). A worker of an older phase's batch writes nothing.
    #[serde(default)]
    pub export_phase: u32,
    /// When the current phase was recorded (ms since the epoch; absent for the first): its
    /// batches are sent only once the fence wait has passed since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_fence_ms: Option<u64>,
    /// The S3 Inventory report a job reads instead of a listing (and its key filter): a job
    /// planned again reads the same report, never the bucket's prefix.
    #[serde(flatten)]
    pub inventory: InventoryOptions,
    /// Set once listing has ended: only then is `total_batches` final.
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub total_batches: u64,
    /// Counted batches, failed ones included: the job is done when this reaches the total.
    #[serde(default)]
    pub batches_done: u64,
    /// Sum of the counted batches' numbers: with `batches_done` it proves the counted set is
    /// exactly the sealed one (see [`super::shards::expected`]).
    #[serde(default)]
    pub batch_sum: u64,
    /// Batches that failed their last delivery and went to the dead-letter queue.
    #[serde(default)]
    pub batches_failed: u64,
    /// Failed batches that succeeded after a redrive (no longer in `batches_failed`).
    #[serde(default)]
    pub batches_recovered: u64,
    /// Why the last failed batch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_batch_error: Option<String>,
    #[serde(default)]
    pub files_listed: u64,
    /// Listed keys that are not CSV objects.
    #[serde(default)]
    pub files_skipped: u64,
    #[serde(flatten)]
    pub totals: BatchStats,
    /// Of `totals.bytes_read`, what the coordinator read while planning (the rest is the
    /// workers', counted per batch).
    #[serde(default)]
    pub planning_bytes_read: u64,
    /// The job's schema, when it declared one (the sensor schema otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// Rejected rows beyond this end the job FAILED; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_rejects: Option<RejectTolerance>,
    /// The job's format, when it named one (by each key's suffix otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// The table the job loads into, when it named one (the deployment's default otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The job's write mode and rate cap (resolved to units per second at the start).
    #[serde(flatten)]
    pub write: WriteOptions,
    /// Where the job's rejects reports are written (`s3://bucket/prefix/job_id/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_report: Option<String>,
    pub started_at: String,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set by the final transition, cleared once the completion event is sent (an outbox:
    /// see [`crate::app::completion`]).
    #[serde(default)]
    pub event_pending: bool,
    /// A listing too long for one coordinator invocation continues in the next: its number
    /// (0 for the first), where it resumes, and the batches enqueued so far.
    #[serde(default)]
    pub listing_invocation: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_cursor: Option<String>,
    #[serde(default)]
    pub batches_enqueued: u64,
    /// When the listing last changed hands (ms since the epoch; 0: never).
    #[serde(default)]
    pub listing_updated_ms: u64,
    /// The run that owns the current listing step: only it may enqueue, checkpoint or seal.
    /// Absent between a checkpoint and the next run's claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_owner: Option<RunId>,
    /// The deadline (ms since the epoch) of a listing invocation running its last delivery:
    /// past it, that invocation was killed and the job is failed instead of woken again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_last_attempt_ms: Option<u64>,
    /// The listing checkpointed to hold back (its job's queue is full, see
    /// [`crate::plan::queue_window`]): nothing wakes it but the stuck check, once the queue
    /// has drained.
    #[serde(default)]
    pub listing_held: bool,
    /// When the completion event's sending was claimed (see [`crate::app::completion`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_claimed_ms: Option<u64>,
}

/// How far a job's planning has got: the batches numbered so far (the next batch's number)
/// and the keys seen. The one shape of every listing count: what an invocation enqueued,
/// what a checkpoint keeps, what sealing fixes, what the invoker is told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListingProgress {
    /// Sealed: the job's total. Serialized under that name for the invoker.
    #[serde(rename = "total_batches")]
    pub batches: u64,
    pub files_listed: u64,
    /// Listed keys without a loadable suffix.
    pub files_skipped: u64,
    /// Bytes S3 sent the coordinator while planning (header windows, Parquet footers,
    /// manifests), over every invocation so far: part of the job's `bytes_read`.
    pub planning_bytes_read: u64,
}

/// Where a paused listing resumes, as checkpointed in the job item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingCheckpoint {
    /// The invocation that will resume it.
    pub invocation: u32,
    /// ListObjectsV2 continuation token; `None`: from the start.
    pub cursor: Option<String>,
    /// The counts so far; the next batch is number `progress.batches`.
    pub progress: ListingProgress,
    /// Paused because the job's queue is full, not for the deadline: the next step is woken
    /// by the stuck check once the queue has drained.
    pub held: bool,
}

impl Job {
    pub fn new(job_id: impl Into<JobId>, bucket: &str, prefix: &str) -> Self {
        let now = std::time::SystemTime::now();
        Self {
            job_id: job_id.into(),
            status: JobStatus::Running,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            key: None,
            export: None,
            export_phase: 0,
            export_fence_ms: None,
            inventory: InventoryOptions::default(),
            sealed: false,
            total_batches: 0,
            batches_done: 0,
            batch_sum: 0,
            batches_failed: 0,
            batches_recovered: 0,
            last_batch_error: None,
            files_listed: 0,
            files_skipped: 0,
            totals: BatchStats::default(),
            planning_bytes_read: 0,
            schema: None,
            tolerated_rejects: None,
            format: None,
            table: None,
            write: WriteOptions::default(),
            rejects_report: None,
            started_at: chrono::DateTime::<chrono::Utc>::from(now).to_rfc3339(),
            started_ms: clock::millis(now),
            finished_at: None,
            duration_seconds: None,
            error: None,
            event_pending: false,
            listing_invocation: 0,
            listing_cursor: None,
            batches_enqueued: 0,
            listing_updated_ms: 0,
            listing_owner: None,
            listing_last_attempt_ms: None,
            listing_held: false,
            event_claimed_ms: None,
        }
    }

    /// Where the listing stands: the invocation that owns it and where it resumes (from the
    /// start if it never checkpointed).
    pub fn listing_position(&self) -> ListingCheckpoint {
        ListingCheckpoint {
            invocation: self.listing_invocation,
            cursor: self.listing_cursor.clone(),
            progress: ListingProgress {
                batches: self.batches_enqueued,
                files_listed: self.files_listed,
                files_skipped: self.files_skipped,
                planning_bytes_read: self.planning_bytes_read,
            },
            held: self.listing_held,
        }
    }

    /// Milliseconds since the listing last showed progress (its start or last checkpoint).
    pub fn listing_idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.started_ms.max(self.listing_updated_ms))
    }

    /// Whether the counted batches of a sealed, running job are exactly the sealed set
    /// 0..total: as many, with the same sum of numbers (batch numbers are distinct).
    pub fn is_ready_to_finish(&self) -> bool {
        self.status == JobStatus::Running
            && self.sealed
            && self.batches_done == self.total_batches
            && self.batch_sum == super::shards::expected_sum(self.total_batches)
    }

    /// Whether a sealed, running job counted more batches than it was sealed with: numbers
    /// outside the sealed set, so it can never complete.
    pub fn counted_beyond_seal(&self) -> bool {
        self.status == JobStatus::Running && self.sealed && self.batches_done > self.total_batches
    }

    /// Rows per second over the job's wall time, once finished.
    pub fn rows_per_second(&self) -> Option<f64> {
        self.duration_seconds
            .filter(|s| *s > 0.0)
            .map(|s| self.totals.rows_written as f64 / s)
    }
}

/// Whether `record_batch` moved the counters, found the batch already counted, or counted
/// a batch that had failed before (a redrive) after all.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Counted(Job),
    AlreadyCounted(Job),
    Recovered(Job),
}

impl Recorded {
    pub fn job(&self) -> &Job {
        match self {
            Recorded::Counted(job) | Recorded::AlreadyCounted(job) | Recorded::Recovered(job) => {
                job
            }
        }
    }
}

impl Job {
    /// The request that started this job, as the ledger keeps it: what a continued listing
    /// or a compose step plans its batches from.
    pub fn request(&self) -> JobRequest {
        JobRequest {
            job_id: Some(self.job_id.clone()),
            key: self.key.clone(),
            export: self.export.clone(),
            inventory: self.inventory.clone(),
            // An export's data files are DynamoDB JSON (the job's format is set by it).
            format: self.format.or_else(|| {
                (self.export.as_ref()).map(|_| crate::contract::format::Format::DynamoDbJson)
            }),
            schema: self.schema.clone(),
            tolerated_rejects: self.tolerated_rejects,
            table: self.table.clone(),
            write: self.write.clone(),
            ..JobRequest::new(&self.bucket, &self.prefix)
        }
    }

    /// The completion event that announces this (final) job.
    pub fn completion_event(&self) -> CompletionEvent {
        let job = self;
        CompletionEvent {
            event: crate::contract::completion::EVENT_NAME.to_owned(),
            job_id: job.job_id.clone(),
            status: job.status,
            bucket: job.bucket.clone(),
            prefix: job.prefix.clone(),
            total_batches: job.total_batches,
            batches_failed: job.batches_failed,
            files_skipped: job.files_skipped,
            totals: job.totals,
            tolerated_rejects: job.tolerated_rejects,
            error: job.error.clone(),
            rejects_report: job.rejects_report.clone(),
            started_at: job.started_at.clone(),
            finished_at: job.finished_at.clone(),
            duration_seconds: job.duration_seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sealed_running_job_with_every_batch_done_is_ready() {
        let mut job = Job::new("j", "b", "");
        job.total_batches = 2;
        job.batches_done = 2;
        job.batch_sum = 1;
        assert!(!job.is_ready_to_finish(), "unsealed");
        job.sealed = true;
        assert!(job.is_ready_to_finish());
        job.batches_done = 1;
        assert!(!job.is_ready_to_finish(), "a batch is missing");
        job.batches_done = 2;
        job.batch_sum = 2;
        assert!(
            !job.is_ready_to_finish(),
            "batches 0 and 2 are not the sealed set"
        );
        job.batch_sum = 1;
        job.status = JobStatus::Complete;
        assert!(!job.is_ready_to_finish(), "already final");
    }

    #[test]
    fn an_empty_sealed_job_is_ready_at_once() {
        let mut job = Job::new("j", "b", "");
        job.sealed = true;
        assert!(job.is_ready_to_finish());
    }
}
