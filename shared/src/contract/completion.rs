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
    /// Bytes read from S3: the input once for whole objects; for split objects, the scans
    /// plus the parses' row spans (at most about twice the object).
    #[serde(default)]
    pub bytes_read: u64,
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
    /// Export data files whose lines differ in number from their manifest's `itemCount`.
    #[serde(default)]
    pub files_miscounted: u64,
    /// Export data files whose stored bytes' MD5 is not their manifest's `md5Checksum`.
    #[serde(default)]
    pub files_corrupt: u64,
    /// Objects an S3 Inventory listed that no longer exist (deleted since the report):
    /// skipped and reported, not failed.
    #[serde(default)]
    pub files_missing: u64,
}

impl BatchStats {
    /// Every counter under its field name: the one list the ledger adds, reads and sums.
    pub fn counters(&self) -> [(&'static str, u64); 14] {
        [
            ("files", self.files),
            ("files_failed", self.files_failed),
            ("rows_written", self.rows_written),
            ("rows_rejected", self.rows_rejected),
            ("rows_duplicate", self.rows_duplicate),
            ("bytes", self.bytes),
            ("bytes_read", self.bytes_read),
            ("write_retries", self.write_retries),
            ("s3_throttles", self.s3_throttles),
            ("rows_existing", self.rows_existing),
            ("write_units", self.write_units),
            ("files_miscounted", self.files_miscounted),
            ("files_corrupt", self.files_corrupt),
            ("files_missing", self.files_missing),
        ]
    }

    /// Every row read: written, superseded in its write batch, rejected, or (insert mode)
    /// finding its key taken.
    pub fn rows_read(&self) -> u64 {
        self.rows_written + self.rows_duplicate + self.rows_rejected + self.rows_existing
    }
}

impl std::ops::AddAssign<&BatchStats> for BatchStats {
    fn add_assign(&mut self, other: &BatchStats) {
        let BatchStats {
            files,
            files_failed,
            rows_written,
            rows_rejected,
            rows_duplicate,
            bytes,
            bytes_read,
            write_retries,
            s3_throttles,
            rows_existing,
            write_units,
            files_miscounted,
            files_corrupt,
            files_missing,
        } = other;
        self.files += files;
        self.files_failed += files_failed;
        self.rows_written += rows_written;
        self.rows_rejected += rows_rejected;
        self.rows_duplicate += rows_duplicate;
        self.bytes += bytes;
        self.bytes_read += bytes_read;
        self.write_retries += write_retries;
        self.s3_throttles += s3_throttles;
        self.rows_existing += rows_existing;
        self.write_units += write_units;
        self.files_miscounted += files_miscounted;
        self.files_corrupt += files_corrupt;
        self.files_missing += files_missing;
    }
}

#[cfg(test)]
mod counter_tests {
    use super::BatchStats;

    #[test]
    fn counters_are_every_field_under_its_serde_name_and_add_up() {
        let stats = BatchStats {
            files: 1,
            files_failed: 2,
            rows_written: 3,
            rows_rejected: 4,
            rows_duplicate: 5,
            bytes: 6,
            bytes_read: 7,
            write_retries: 8,
            s3_throttles: 9,
            rows_existing: 10,
            write_units: 11,
            files_miscounted: 12,
            files_corrupt: 14,
            files_missing: 13,
        };
        let json = serde_json::to_value(stats).unwrap();
        let fields = json.as_object().unwrap();
        assert_eq!(fields.len(), stats.counters().len());
        for (name, value) in stats.counters() {
            assert_eq!(fields[name], value, "{name}");
        }
        let mut sum = stats;
        sum += &stats;
        assert!(
            sum.counters()
                .iter()
                .zip(stats.counters())
                .all(|(s, o)| s.1 == 2 * o.1)
        );
    }
}
