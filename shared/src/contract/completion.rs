//! The completion event: one summary message per finished job, sent by the outbox in
//! [`crate::app::completion`], and the job status and counters it reports.

use serde::{Deserialize, Serialize};

use crate::contract::ids::JobId;
use crate::contract::rejects::RejectTolerance;

/// The event's body: a stable summary of the finished job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionEvent {
    /// Always `s3fanout.job.finished`.
    pub event: String,
    pub job_id: JobId,
    pub status: JobStatus,
    pub bucket: String,
    pub prefix: String,
    pub total_batches: u64,
    pub batches_failed: u64,
    pub files_skipped: u64,
    /// Rejected rows (`rows_rejected`) and rejected objects (`files_failed`) are among these.
    #[serde(flatten)]
    pub totals: BatchStats,
    /// What the job tolerated (absent: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_rejects: Option<RejectTolerance>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_report: Option<String>,
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
}

pub const EVENT_NAME: &str = "s3fanout.job.finished";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Running,
    Complete,
    /// Every batch is accounted for, but some reached the dead-letter queue.
    CompletedWithErrors,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "RUNNING",
            JobStatus::Complete => "COMPLETE",
            JobStatus::CompletedWithErrors => "COMPLETED_WITH_ERRORS",
            JobStatus::Failed => "FAILED",
        }
    }

    pub fn is_final(self) -> bool {
        self != JobStatus::Running
    }
}

/// What one worker batch did, added to the job's totals when the batch is counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Objects decoded (rows may still have been rejected).
    pub files: u64,
    /// Objects rejected whole (e.g. a header without the required columns).
    pub files_failed: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    /// Rows superseded by a later row with the same key in the same write batch.
    pub rows_duplicate: u64,
    pub bytes: u64,
    /// BatchWriteItem retry rounds for UnprocessedItems (DynamoDB throttling).
    pub write_retries: u64,
    /// S3 throttling replies (503 SlowDown) the SDK retried.
    pub s3_throttles: u64,
    /// Insert mode: rows whose key already held an item (left alone; not rejects).
    #[serde(default)]
    pub rows_existing: u64,
    /// Write units the rows' writes were paced by: each attempt's items, rounded up to 1 KB
    /// each, as DynamoDB bills them (see docs/write-control.md for the modes' estimates).
    #[serde(default)]
    pub write_units: u64,
}

impl BatchStats {
    /// Every row read: written, superseded in its write batch, rejected, or (insert mode)
    /// finding its key taken.
    pub fn rows_read(&self) -> u64 {
        self.rows_written + self.rows_duplicate + self.rows_rejected + self.rows_existing
    }
}
