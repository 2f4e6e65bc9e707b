//! The ledger's pure rules: when a job may end and with which status. The adapters only
//! carry out what these decide, so every backend ends jobs the same way.

use super::model::{Job, JobStatus};

/// How a job ends: the one final transition's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Every batch is counted: COMPLETE, or COMPLETED_WITH_ERRORS / FAILED for a reason.
    /// The transition is conditional on the job still being sealed with every batch counted.
    AllBatchesCounted {
        status: JobStatus,
        reason: Option<String>,
    },
    /// It can never be sealed (listing or enqueueing failed): FAILED for this reason.
    Abandoned(String),
}

impl Ending {
    pub fn status(&self) -> JobStatus {
        match self {
            Ending::AllBatchesCounted { status, .. } => *status,
            Ending::Abandoned(_) => JobStatus::Failed,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Ending::AllBatchesCounted { reason, .. } => reason.as_deref(),
            Ending::Abandoned(reason) => Some(reason),
        }
    }
}

/// The ending of a job whose every batch is counted, or `None` while it must wait. Rejected
/// rows or rejected objects beyond the tolerance fail it; dead-lettered batches complete it
/// with errors.
pub fn ending(job: &Job) -> Option<Ending> {
    if job.counted_beyond_seal() {
        let reason = format!(
            "{} batches were counted for a job sealed with {}: batch numbers outside the sealed set",
            job.batches_done, job.total_batches
        );
        return Some(Ending::AllBatchesCounted {
            status: JobStatus::Failed,
            reason: Some(reason),
        });
    }
    if !job.is_ready_to_finish() {
        return None;
    }
    let too_many_rejects = job.tolerated_rejects.and_then(|tolerance| {
        let t = &job.totals;
        let rows = tolerance.exceeded(t.rows_rejected, t.rows_read());
        let objects = tolerance.exceeded_objects(t.files_failed, t.files + t.files_failed);
        match (rows, objects) {
            (Some(rows), Some(objects)) => Some(format!("{rows}; {objects}")),
            (rows, objects) => rows.or(objects),
        }
    });
    let failed_batches = (job.batches_failed > 0).then(|| {
        format!(
            "{} of {} batches failed their last delivery and are in the dead-letter queue (last error: {})",
            job.batches_failed,
            job.total_batches,
            job.last_batch_error.as_deref().unwrap_or("unknown")
        )
    });
    let unlike_manifest = [
        (
            job.totals.files_miscounted,
            "held another number of items than their manifest's itemCount",
        ),
        (
            job.totals.files_corrupt,
            "were not the files their manifest hashed (md5Checksum)",
        ),
    ];
    let failed_batches = unlike_manifest
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} export data file(s) {what} (named in the rejects report)"))
        .fold(failed_batches, |errors, e| {
            Some(errors.map_or(e.clone(), |errors| format!("{errors}; {e}")))
        });
    let (status, reason) = match (too_many_rejects, failed_batches) {
        (Some(reason), _) => (JobStatus::Failed, Some(reason)),
        (None, Some(reason)) => (JobStatus::CompletedWithErrors, Some(reason)),
        (None, None) => (JobStatus::Complete, None),
    };
    Some(Ending::AllBatchesCounted { status, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::rejects::RejectTolerance;

    fn ready() -> Job {
        let mut job = Job::new("j", "b", "");
        job.sealed = true;
        job.total_batches = 4;
        job.batches_done = 4;
        job.batch_sum = 6;
        job.totals.rows_written = 90;
        job.totals.rows_rejected = 10;
        job
    }

    #[test]
    fn a_miscounted_export_file_completes_the_job_with_errors() {
        let mut job = ready();
        job.totals.files_miscounted = 1;
        let ended = ending(&job).unwrap();
        assert_eq!(ended.status(), JobStatus::CompletedWithErrors);
        assert!(ended.reason().unwrap().contains("itemCount"));
    }

    #[test]
    fn a_corrupt_export_file_completes_the_job_with_errors_beside_a_miscounted_one() {
        let mut job = ready();
        job.totals.files_corrupt = 2;
        job.totals.files_miscounted = 1;
        let ended = ending(&job).unwrap();
        assert_eq!(ended.status(), JobStatus::CompletedWithErrors);
        let reason = ended.reason().unwrap();
        assert!(
            reason.contains("1 export data file(s) held another number"),
            "{reason}"
        );
        assert!(
            reason.contains("; 2 export data file(s) were not the files"),
            "{reason}"
        );
    }

    #[test]
    fn a_job_still_counting_has_no_ending() {
        let mut job = ready();
        job.batches_done = 3;
        assert_eq!(ending(&job), None);
    }

    #[test]
    fn the_counted_set_must_be_the_sealed_set() {
        let mut job = ready();
        job.batch_sum = 7; // e.g. 0, 1, 2 and 4 instead of 3
        assert_eq!(ending(&job), None, "as many batches, not the same ones");
        job.batches_done = 5;
        let ended = ending(&job).unwrap();
        assert_eq!(ended.status(), JobStatus::Failed);
        assert!(ended.reason().unwrap().contains("outside the sealed set"));
    }

    #[test]
    fn a_clean_job_completes() {
        let ended = ending(&ready()).unwrap();
        assert_eq!(ended.status(), JobStatus::Complete);
        assert_eq!(ended.reason(), None);
    }

    #[test]
    fn dead_lettered_batches_complete_with_errors_naming_the_last_error() {
        let mut job = ready();
        job.batches_failed = 1;
        job.last_batch_error = Some("GET timed out".into());
        let ended = ending(&job).unwrap();
        assert_eq!(ended.status(), JobStatus::CompletedWithErrors);
        assert!(ended.reason().unwrap().contains("1 of 4 batches"));
        assert!(ended.reason().unwrap().contains("GET timed out"));
    }

    #[test]
    fn rejects_beyond_the_tolerance_fail_the_job_even_with_failed_batches() {
        let mut job = ready();
        job.batches_failed = 1;
        job.tolerated_rejects = Some(RejectTolerance::Count(9));
        assert_eq!(ending(&job).unwrap().status(), JobStatus::Failed);
        job.tolerated_rejects = Some(RejectTolerance::Count(10));
        assert_eq!(
            ending(&job).unwrap().status(),
            JobStatus::CompletedWithErrors
        );
    }

    #[test]
    fn rejected_objects_beyond_the_tolerance_fail_the_job() {
        let mut job = ready();
        job.totals.rows_rejected = 0;
        job.totals.files = 19;
        job.totals.files_failed = 1;
        assert_eq!(
            ending(&job).unwrap().status(),
            JobStatus::Complete,
            "unlimited by default"
        );
        job.tolerated_rejects = Some(RejectTolerance::Count(0));
        let ended = ending(&job).unwrap();
        assert_eq!(ended.status(), JobStatus::Failed);
        assert_eq!(
            ended.reason(),
            Some("1 objects rejected, more than the 0 tolerated")
        );
        job.totals.rows_rejected = 3;
        let both = ending(&job).unwrap();
        assert_eq!(
            both.reason(),
            Some(
                "3 rows rejected, more than the 0 tolerated; 1 objects rejected, more than the 0 tolerated"
            )
        );
        job.tolerated_rejects = Some(RejectTolerance::Count(5));
        assert_eq!(ending(&job).unwrap().status(), JobStatus::Complete);
    }
}
