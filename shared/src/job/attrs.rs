//! The jobs table's attribute names, one constant each, so a ledger write cannot misspell a
//! field of [`Job`](super::model::Job): a test checks every constant against the model's
//! serde names. The shard and marker attributes are the ledger's own bookkeeping.

pub const JOB_ID: &str = "job_id";
pub const STATUS: &str = "status";
pub const SEALED: &str = "sealed";
pub const TOTAL_BATCHES: &str = "total_batches";
pub const BATCHES_DONE: &str = "batches_done";
pub const BATCH_SUM: &str = "batch_sum";
pub const BATCHES_FAILED: &str = "batches_failed";
pub const BATCHES_RECOVERED: &str = "batches_recovered";
pub const LAST_BATCH_ERROR: &str = "last_batch_error";
pub const FILES_LISTED: &str = "files_listed";
pub const FILES_SKIPPED: &str = "files_skipped";
pub const PLANNING_BYTES_READ: &str = "planning_bytes_read";
pub const FINISHED_AT: &str = "finished_at";
pub const DURATION_SECONDS: &str = "duration_seconds";
pub const ERROR: &str = "error";
pub const EVENT_PENDING: &str = "event_pending";
pub const EVENT_CLAIMED_MS: &str = "event_claimed_ms";
pub const LISTING_INVOCATION: &str = "listing_invocation";
pub const LISTING_CURSOR: &str = "listing_cursor";
pub const BATCHES_ENQUEUED: &str = "batches_enqueued";
pub const LISTING_UPDATED_MS: &str = "listing_updated_ms";
pub const LISTING_OWNER: &str = "listing_owner";
pub const LISTING_LAST_ATTEMPT_MS: &str = "listing_last_attempt_ms";
pub const LISTING_HELD: &str = "listing_held";
pub const STARTED_MS: &str = "started_ms";
pub const EXPORT_PHASE: &str = "export_phase";
pub const EXPORT_FENCE_MS: &str = "export_fence_ms";

/// The batch counters ([`BatchStats`](super::model::BatchStats)), flattened into the item.
pub const FILES: &str = "files";
pub const FILES_FAILED: &str = "files_failed";
pub const ROWS_WRITTEN: &str = "rows_written";
pub const ROWS_REJECTED: &str = "rows_rejected";
pub const ROWS_DUPLICATE: &str = "rows_duplicate";
pub const BYTES: &str = "bytes";
pub const BYTES_READ: &str = "bytes_read";
pub const WRITE_RETRIES: &str = "write_retries";
pub const S3_THROTTLES: &str = "s3_throttles";
pub const ROWS_EXISTING: &str = "rows_existing";
pub const WRITE_UNITS: &str = "write_units";
pub const FILES_MISCOUNTED: &str = "files_miscounted";
pub const FILES_MISSING: &str = "files_missing";

/// Shards and markers live in the jobs table under derived keys (`{job}#s{k}`,
/// `{job}#b{n}`), each its own partition; only headers carry [`JOB_INDEX`], the partition key
/// of the sparse index [`BY_START`] (sort key [`STARTED_MS`]) that lists jobs. Its value is
/// the header's stage, so the stuck check's queries read only the jobs at its stage, never the
/// account's history: [`RUNNING`] from creation, [`OWED`] from the final transition (its
/// completion event owed), [`DONE`] once the event is sent.
pub const JOB_INDEX: &str = "job_index";
pub const RUNNING: &str = "running";
pub const OWED: &str = "owed";
pub const DONE: &str = "done";
/// Every header before stages (running and finished alike): still listed, never written.
pub const LEGACY_INDEX: &str = "job";

/// The jobs table's TTL attribute (epoch seconds): the ledger's items do not outlive their use.
pub const EXPIRES_AT: &str = "expires_at";
/// Markers and shards expire this long after their last write. No batch message lives past
/// SQS's 14-day retention (the template keeps every queue at it), so after 30 days nothing can
/// be counted or redriven that would need them.
pub const COUNTS_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// A finished job's header expires this long after its completion event was sent: `status` and
/// `jobs` show it until then.
pub const FINISHED_TTL_SECONDS: u64 = 90 * 24 * 3600;
pub const BY_START: &str = "by-start";
/// A shard's intent tokens (a string set).
pub const INTENTS: &str = "intents";
/// A shard's last-attempt marks: one attribute per batch, `la_{batch}` = deadline ms.
pub const LAST_ATTEMPT_PREFIX: &str = "la_";
/// A marker's fields.
pub const BATCH: &str = "batch";
pub const OUTCOME: &str = "outcome";
pub const TOKEN: &str = "token";
pub const RECOVERY: &str = "recovery";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::model::Job;

    #[test]
    fn every_model_attribute_name_is_a_field_of_the_job_item() {
        let mut job = Job::new("j", "b", "p/");
        job.last_batch_error = Some("e".into());
        job.finished_at = Some("t".into());
        job.duration_seconds = Some(1.0);
        job.error = Some("e".into());
        job.listing_cursor = Some("c".into());
        job.listing_owner = Some("o".into());
        job.listing_last_attempt_ms = Some(1);
        job.event_claimed_ms = Some(1);
        job.export_fence_ms = Some(1);
        let item = serde_json::to_value(&job).unwrap();
        let fields = item.as_object().unwrap();
        for name in [
            JOB_ID,
            STATUS,
            SEALED,
            TOTAL_BATCHES,
            BATCHES_DONE,
            BATCHES_FAILED,
            BATCHES_RECOVERED,
            LAST_BATCH_ERROR,
            FILES_LISTED,
            FILES_SKIPPED,
            PLANNING_BYTES_READ,
            FINISHED_AT,
            DURATION_SECONDS,
            ERROR,
            EVENT_PENDING,
            EVENT_CLAIMED_MS,
            LISTING_INVOCATION,
            LISTING_CURSOR,
            BATCHES_ENQUEUED,
            LISTING_UPDATED_MS,
            LISTING_OWNER,
            LISTING_LAST_ATTEMPT_MS,
            LISTING_HELD,
            STARTED_MS,
            EXPORT_PHASE,
            EXPORT_FENCE_MS,
            BATCH_SUM,
            FILES,
            FILES_FAILED,
            ROWS_WRITTEN,
            ROWS_REJECTED,
            ROWS_DUPLICATE,
            BYTES,
            BYTES_READ,
            WRITE_RETRIES,
            S3_THROTTLES,
        ] {
            assert!(
                fields.contains_key(name),
                "{name} is not a field of the job item"
            );
        }
        for own in [JOB_INDEX, INTENTS, EXPIRES_AT] {
            assert!(
                !fields.contains_key(own),
                "{own} must stay the ledger's own"
            );
        }
    }
}
