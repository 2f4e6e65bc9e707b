//! What every ledger does: exactly-once counting (across every shard, under concurrent
//! duplicates and a crash between any two writes), recovery of a failed batch, owned listing
//! steps, last-attempt marks, one final transition only for exactly the sealed set, and the
//! completion event's claim.

use std::time::Duration;

use super::fan_in::*;
use crate::fan_in::{JobError, JobFilter, Ledger, LedgerStore, ListingProgress};
use crate::job::model::{BatchNo, BatchStats, Job, JobId, JobStatus, ListingCheckpoint, Recorded};

pub(super) fn stats(rows: u64) -> BatchStats {
    BatchStats {
        files: 1,
        rows_written: rows,
        ..BatchStats::default()
    }
}

pub(super) fn seal(total_batches: u64) -> ListingProgress {
    ListingProgress {
        batches: total_batches,
        files_listed: total_batches,
        files_skipped: 0,
        planning_bytes_read: PLANNING_BYTES,
    }
}

/// What each sealed job's coordinator read while planning: part of its `bytes_read`.
const PLANNING_BYTES: u64 = 4_096;

/// Runs every check, with job ids starting with `namespace`.
pub async fn run(ledger: &dyn LedgerStore, namespace: &str) {
    run_without_crash_matrix(ledger, namespace).await;
    a_crash_between_any_two_writes_counts_once(ledger, namespace).await;
}

/// Every check but the crash matrix, which replays the counting protocol (`fan_in`, the
/// same code over any backend) with a crash after each of its writes: ~500 counts, which a
/// backend's primitives need not pass twice (moto takes ~1 minute for them; dynalite and
/// the double run them).
pub async fn run_without_crash_matrix(ledger: &dyn LedgerStore, namespace: &str) {
    counts_each_batch_once_and_finishes_once(ledger, &JobId::new(format!("{namespace}-count")))
        .await;
    a_failed_batch_ends_the_job_and_a_redrive_recovers_it(
        ledger,
        &JobId::new(format!("{namespace}-fail")),
    )
    .await;
    only_the_owner_moves_the_listing(ledger, &JobId::new(format!("{namespace}-list"))).await;
    the_completion_event_is_claimed_once(ledger, &JobId::new(format!("{namespace}-event"))).await;
    abandoned_jobs_fail_once(ledger, &JobId::new(format!("{namespace}-abandon"))).await;
    counts_spread_over_every_shard(ledger, &JobId::new(format!("{namespace}-wide"))).await;
    only_exactly_the_sealed_set_completes(ledger, &JobId::new(format!("{namespace}-exact"))).await;
    last_attempts_are_marked_and_cleared(ledger, &JobId::new(format!("{namespace}-last"))).await;
}

/// Concurrent duplicates: only for ledgers that apply conditional writes atomically under
/// concurrent requests (the double, dynalite, DynamoDB; not moto).
pub async fn run_concurrent(ledger: &dyn LedgerStore, namespace: &str) {
    concurrent_duplicates_count_once(ledger, &JobId::new(format!("{namespace}-dup"))).await;
}

async fn counts_each_batch_once_and_finishes_once(ledger: &dyn LedgerStore, job_id: &JobId) {
    let job = Job::new(job_id, "bucket", "p/");
    ledger.create(&job).await.unwrap();
    assert!(matches!(
        ledger.create(&job).await,
        Err(JobError::AlreadyExists(_))
    ));
    let counted = ledger
        .record_batch(job_id, BatchNo(0), &stats(10))
        .await
        .unwrap();
    assert!(matches!(counted, Recorded::Counted(ref j) if j.batches_done == 1));
    let again = ledger
        .record_batch(job_id, BatchNo(0), &stats(10))
        .await
        .unwrap();
    assert!(matches!(again, Recorded::AlreadyCounted(ref j) if j.totals.rows_written == 10));
    assert_eq!(
        ledger.try_finish(again.job()).await.unwrap(),
        None,
        "unsealed"
    );
    assert_eq!(ledger.seal(job_id, seal(2), None).await.unwrap(), None);
    assert!(matches!(
        ledger.seal(job_id, seal(2), None).await,
        Err(JobError::AlreadySealed(_))
    ));
    let last = ledger
        .record_batch(job_id, BatchNo(1), &stats(5))
        .await
        .unwrap();
    let finished = ledger
        .try_finish(last.job())
        .await
        .unwrap()
        .expect("the last batch ends it");
    assert_eq!(finished.status, JobStatus::Complete);
    assert_eq!(finished.totals.rows_written, 15);
    assert_eq!(finished.planning_bytes_read, PLANNING_BYTES);
    assert_eq!(
        finished.totals.bytes_read, PLANNING_BYTES,
        "the batches read none"
    );
    assert!(finished.event_pending);
    assert!(finished.finished_at.is_some());
    assert_eq!(
        ledger.try_finish(last.job()).await.unwrap(),
        None,
        "one final transition"
    );
    let running = ledger.jobs(JobFilter::Running).await.unwrap();
    assert!(running.iter().all(|j| j.job_id != *job_id));
    assert!(matches!(
        ledger
            .record_batch(
                &JobId::new(format!("{job_id}-missing")),
                BatchNo(0),
                &stats(1)
            )
            .await,
        Err(JobError::NotFound(_))
    ));
}

async fn a_failed_batch_ends_the_job_and_a_redrive_recovers_it(
    ledger: &dyn LedgerStore,
    job_id: &JobId,
) {
    ledger
        .create(&Job::new(job_id, "bucket", ""))
        .await
        .unwrap();
    ledger.seal(job_id, seal(1), None).await.unwrap();
    let failed = ledger
        .record_failed_batch(job_id, BatchNo(0), "the table was gone")
        .await
        .unwrap();
    assert!(matches!(failed, Recorded::Counted(ref j) if j.batches_failed == 1));
    let twice = ledger
        .record_failed_batch(job_id, BatchNo(0), "again")
        .await
        .unwrap();
    assert!(matches!(twice, Recorded::AlreadyCounted(ref j) if j.batches_failed == 1));
    let ended = ledger.try_finish(failed.job()).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::CompletedWithErrors);
    assert!(ended.error.unwrap().contains("the table was gone"));
    let recovered = ledger
        .record_batch(job_id, BatchNo(0), &stats(7))
        .await
        .unwrap();
    let job = match recovered {
        Recorded::Recovered(job) => job,
        other => panic!("expected a recovery, got {other:?}"),
    };
    assert_eq!((job.batches_failed, job.batches_recovered), (0, 1));
    assert_eq!(job.totals.rows_written, 7);
    assert_eq!(
        job.status,
        JobStatus::CompletedWithErrors,
        "the final status stays"
    );
    let after = ledger
        .record_batch(job_id, BatchNo(0), &stats(7))
        .await
        .unwrap();
    assert!(matches!(after, Recorded::AlreadyCounted(ref j) if j.totals.rows_written == 7));
}

async fn only_the_owner_moves_the_listing(ledger: &dyn LedgerStore, job_id: &JobId) {
    let stale = Duration::from_secs(3600);
    let mut job = Job::new(job_id, "bucket", "p/");
    job.listing_owner = Some("first".into());
    job.listing_updated_ms = job.started_ms;
    ledger.create(&job).await.unwrap();
    assert!(
        !ledger
            .claim_listing(job_id, 0, &"other".into(), stale)
            .await
            .unwrap(),
        "owned"
    );
    let checkpoint = ListingCheckpoint {
        invocation: 1,
        cursor: Some("after-key-9".into()),
        progress: ListingProgress {
            batches: 3,
            files_listed: 30,
            files_skipped: 1,
            planning_bytes_read: 1_234,
        },
        // Round-trips: a held listing stays held until the next checkpoint.
        held: true,
    };
    assert!(
        !ledger
            .checkpoint(job_id, &checkpoint, &"other".into())
            .await
            .unwrap()
    );
    assert!(
        ledger
            .checkpoint(job_id, &checkpoint, &"first".into())
            .await
            .unwrap()
    );
    let paused = ledger.get(job_id).await.unwrap().unwrap();
    assert_eq!(paused.listing_position(), checkpoint);
    assert_eq!(paused.listing_owner, None);
    assert!(
        !ledger
            .claim_listing(job_id, 0, &"late".into(), stale)
            .await
            .unwrap(),
        "old step"
    );
    assert!(
        ledger
            .claim_listing(job_id, 1, &"second".into(), stale)
            .await
            .unwrap()
    );
    assert!(
        !ledger
            .claim_listing(job_id, 1, &"duplicate".into(), stale)
            .await
            .unwrap()
    );
    assert!(matches!(
        ledger
            .seal(job_id, seal(3), Some(&"duplicate".into()))
            .await,
        Err(JobError::NotOwner(_))
    ));
    ledger
        .release_listing(job_id, &"duplicate".into())
        .await
        .unwrap();
    assert!(
        !ledger
            .claim_listing(job_id, 1, &"third".into(), stale)
            .await
            .unwrap(),
        "not released"
    );
    ledger
        .release_listing(job_id, &"second".into())
        .await
        .unwrap();
    assert!(
        ledger
            .claim_listing(job_id, 1, &"third".into(), stale)
            .await
            .unwrap()
    );
    // A claim older than the stale limit can be taken over.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(
        ledger
            .claim_listing(job_id, 1, &"fourth".into(), Duration::ZERO)
            .await
            .unwrap()
    );
    let sealed = ledger
        .seal_total(job_id, seal(3), Some(&"fourth".into()))
        .await
        .unwrap();
    assert!(sealed.sealed);
    assert_eq!(sealed.total_batches, 3);
    assert!(
        !ledger
            .claim_listing(job_id, 1, &"fifth".into(), Duration::ZERO)
            .await
            .unwrap(),
        "sealed"
    );
}

async fn the_completion_event_is_claimed_once(ledger: &dyn LedgerStore, job_id: &JobId) {
    let lease = Duration::from_secs(60);
    ledger
        .create(&Job::new(job_id, "bucket", ""))
        .await
        .unwrap();
    assert_eq!(
        ledger.claim_event(job_id, lease).await.unwrap(),
        None,
        "nothing owed yet"
    );
    let finished = ledger.seal(job_id, seal(0), None).await.unwrap().unwrap();
    let held = finished
        .event_claimed_ms
        .expect("the winner holds the claim");
    assert_eq!(
        ledger.claim_event(job_id, lease).await.unwrap(),
        None,
        "claim held"
    );
    ledger.release_event_claim(job_id, held + 1).await.unwrap();
    assert_eq!(
        ledger.claim_event(job_id, lease).await.unwrap(),
        None,
        "not its claim"
    );
    ledger.release_event_claim(job_id, held).await.unwrap();
    let claimed = ledger.claim_event(job_id, lease).await.unwrap();
    assert!(claimed.is_some(), "released: claimable at once");
    assert_eq!(ledger.claim_event(job_id, lease).await.unwrap(), None);
    let owed = ledger.jobs(JobFilter::EventPending).await.unwrap();
    assert!(owed.iter().any(|j| j.job_id == *job_id));
    ledger.clear_event_pending(job_id).await.unwrap();
    assert_eq!(
        ledger.claim_event(job_id, Duration::ZERO).await.unwrap(),
        None,
        "sent"
    );
    let owed = ledger.jobs(JobFilter::EventPending).await.unwrap();
    assert!(owed.iter().all(|j| j.job_id != *job_id));
    assert!(
        ledger
            .clear_event_pending(&JobId::new(format!("{job_id}-missing")))
            .await
            .is_err()
    );
}

async fn abandoned_jobs_fail_once(ledger: &dyn LedgerStore, job_id: &JobId) {
    ledger
        .create(&Job::new(job_id, "bucket", ""))
        .await
        .unwrap();
    let failed = ledger
        .fail(job_id, "listing failed")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.error.as_deref(), Some("listing failed"));
    assert_eq!(ledger.fail(job_id, "again").await.unwrap(), None);
    assert!(matches!(
        ledger
            .fail(&JobId::new(format!("{job_id}-missing")), "x")
            .await,
        Err(JobError::NotFound(_))
    ));
    let recent = ledger.recent_jobs(1000).await.unwrap();
    assert!(recent.iter().any(|j| j.job_id == *job_id));
    assert!(
        recent
            .windows(2)
            .all(|w| w[0].started_ms >= w[1].started_ms)
    );
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_ledger_keeps_the_contract() {
        let ledger = crate::port::memory::MemoryLedger::new();
        super::run(&ledger, "mem").await;
        super::run_concurrent(&ledger, "mem").await;
    }
}
