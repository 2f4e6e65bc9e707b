//! What every ledger does: exactly-once counting (across every shard, under concurrent
//! duplicates and a crash between any two writes), recovery of a failed batch, owned listing
//! steps, last-attempt marks, one final transition only for exactly the sealed set, and the
//! completion event's claim.

use std::time::Duration;

use futures::future::join_all;

use super::crash::CrashAfter;
use crate::job::model::{BatchNo, BatchStats, Job, JobId, JobStatus, ListingCheckpoint, Recorded};
use crate::job::shards::{self, SHARDS};
use crate::port::ledger::{JobError, JobFilter, Ledger, Seal};

fn stats(rows: u64) -> BatchStats {
    BatchStats {
        files: 1,
        rows_written: rows,
        ..BatchStats::default()
    }
}

fn seal(total_batches: u64) -> Seal {
    Seal {
        total_batches,
        files_listed: total_batches,
        files_skipped: 0,
    }
}

/// Runs every check, with job ids starting with `namespace`.
pub async fn run(ledger: &dyn Ledger, namespace: &str) {
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
    a_crash_between_any_two_writes_counts_once(ledger, namespace).await;
}

/// Concurrent duplicates: only for ledgers that apply conditional writes atomically under
/// concurrent requests (the double, dynalite, DynamoDB; not moto).
pub async fn run_concurrent(ledger: &dyn Ledger, namespace: &str) {
    concurrent_duplicates_count_once(ledger, &JobId::new(format!("{namespace}-dup"))).await;
}

/// Counts `batches` batches of one row each, `width` at a time; returns the `Counted` ones.
async fn count_all(ledger: &dyn Ledger, job_id: &JobId, batches: std::ops::Range<u64>) -> usize {
    let mut counted = 0;
    let one = stats(1);
    for chunk in batches.collect::<Vec<_>>().chunks(16) {
        let results = join_all(
            chunk
                .iter()
                .map(|b| ledger.record_batch(job_id, BatchNo(*b), &one)),
        )
        .await;
        counted += results
            .into_iter()
            .filter(|r| matches!(r, Ok(Recorded::Counted(_))))
            .count();
    }
    counted
}

async fn counts_spread_over_every_shard(ledger: &dyn Ledger, job_id: &JobId) {
    let total = u64::from(SHARDS) * 2 + 5;
    ledger
        .create(&Job::new(job_id, "bucket", ""))
        .await
        .unwrap();
    assert_eq!(
        count_all(ledger, job_id, 0..total - 1).await as u64,
        total - 1
    );
    assert_eq!(ledger.seal(job_id, seal(total), None).await.unwrap(), None);
    let view = ledger.get(job_id).await.unwrap().unwrap();
    assert_eq!(
        (view.batches_done, view.totals.rows_written),
        (total - 1, total - 1)
    );
    assert_eq!(ledger.shards(job_id).await.unwrap().len(), SHARDS as usize);
    let last = ledger
        .record_batch(job_id, BatchNo(total - 1), &stats(1))
        .await
        .unwrap();
    assert_eq!(
        last.job().batches_done,
        total,
        "the last count sees every shard"
    );
    let finished = ledger.try_finish(last.job()).await.unwrap().unwrap();
    assert_eq!(finished.status, JobStatus::Complete);
    assert_eq!(finished.totals.rows_written, total);
    assert_eq!(finished.batch_sum, shards::expected_sum(total));
    assert_eq!(ledger.try_finish(last.job()).await.unwrap(), None);
}

async fn only_exactly_the_sealed_set_completes(ledger: &dyn Ledger, job_id: &JobId) {
    ledger
        .create(&Job::new(job_id, "bucket", ""))
        .await
        .unwrap();
    for batch in [0, 5] {
        ledger
            .record_batch(job_id, BatchNo(batch), &stats(1))
            .await
            .unwrap();
    }
    assert_eq!(
        ledger.seal(job_id, seal(2), None).await.unwrap(),
        None,
        "two batches counted, but not batches 0 and 1"
    );
    let view = ledger.get(job_id).await.unwrap().unwrap();
    assert_eq!(ledger.try_finish(&view).await.unwrap(), None);
    let third = ledger
        .record_batch(job_id, BatchNo(1), &stats(1))
        .await
        .unwrap();
    let ended = ledger.try_finish(third.job()).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::Failed);
    assert!(ended.error.unwrap().contains("outside the sealed set"));
}

async fn last_attempts_are_marked_and_cleared(ledger: &dyn Ledger, job_id: &JobId) {
    ledger
        .create(&Job::new(job_id, "bucket", ""))
        .await
        .unwrap();
    ledger
        .mark_last_attempt(job_id, BatchNo(3), 1_000)
        .await
        .unwrap();
    ledger
        .mark_last_attempt(job_id, BatchNo(35), 2_000)
        .await
        .unwrap();
    let mut marks = ledger.last_attempts(job_id).await.unwrap();
    marks.sort();
    assert_eq!(marks, vec![(BatchNo(3), 1_000), (BatchNo(35), 2_000)]);
    ledger.clear_last_attempt(job_id, BatchNo(3)).await.unwrap();
    assert_eq!(
        ledger.last_attempts(job_id).await.unwrap(),
        vec![(BatchNo(35), 2_000)]
    );
    // A count is unaffected by a mark on its shard.
    ledger
        .record_batch(job_id, BatchNo(3), &stats(4))
        .await
        .unwrap();
    let view = ledger.get(job_id).await.unwrap().unwrap();
    assert_eq!((view.batches_done, view.totals.rows_written), (1, 4));

    ledger
        .mark_listing_last_attempt(job_id, 5_000)
        .await
        .unwrap();
    let header = ledger.header(job_id).await.unwrap().unwrap();
    assert_eq!(header.listing_last_attempt_ms, Some(5_000));
    assert!(
        ledger
            .claim_listing(job_id, 0, &"run".into(), Duration::from_secs(60))
            .await
            .unwrap()
    );
    let checkpoint = ListingCheckpoint {
        invocation: 1,
        cursor: None,
        next_batch: 1,
        files_listed: 1,
        files_skipped: 0,
    };
    assert!(
        ledger
            .checkpoint(job_id, &checkpoint, &"run".into())
            .await
            .unwrap()
    );
    let header = ledger.header(job_id).await.unwrap().unwrap();
    assert_eq!(
        header.listing_last_attempt_ms, None,
        "progress clears the mark"
    );
}

async fn concurrent_duplicates_count_once(ledger: &dyn Ledger, job_id: &JobId) {
    ledger
        .create(&Job::new(job_id, "bucket", ""))
        .await
        .unwrap();
    ledger.seal(job_id, seal(3), None).await.unwrap();
    for batch in 0..3 {
        let results = join_all((0..8).map(|_| async {
            let recorded = ledger
                .record_batch(job_id, BatchNo(batch), &stats(10))
                .await
                .unwrap();
            let finished = ledger.try_finish(recorded.job()).await.unwrap();
            (matches!(recorded, Recorded::Counted(_)), finished.is_some())
        }))
        .await;
        assert_eq!(
            results.iter().filter(|(c, _)| *c).count(),
            1,
            "batch {batch}"
        );
        let finishers = results.iter().filter(|(_, f)| *f).count();
        assert_eq!(finishers, usize::from(batch == 2), "batch {batch}");
    }
    let view = ledger.get(job_id).await.unwrap().unwrap();
    assert_eq!((view.batches_done, view.totals.rows_written), (3, 30));
    assert_eq!(view.status, JobStatus::Complete);
}

/// Every way a count can stop: the first delivery dies before its k1-th write, the
/// redelivery before its k2-th, a third finishes. Batches 31 and 32 sit on the last and the
/// first shard (the shard boundary); failed counts and a redrive's recovery too.
async fn a_crash_between_any_two_writes_counts_once(ledger: &dyn Ledger, namespace: &str) {
    let total = u64::from(SHARDS) + 1;
    let cases = (0..4)
        .flat_map(|k1| (0..5).map(move |k2| (total - 1, k1, k2)))
        .chain((0..4).map(|k1| (total - 2, k1, 4)));
    for (batch, k1, k2) in cases {
        {
            {
                let job_id = JobId::new(format!("{namespace}-crash-{batch}-{k1}-{k2}"));
                ledger
                    .create(&Job::new(&job_id, "bucket", ""))
                    .await
                    .unwrap();
                for other in (0..total).filter(|b| *b != batch) {
                    ledger
                        .record_batch(&job_id, BatchNo(other), &stats(1))
                        .await
                        .unwrap();
                }
                ledger.seal(&job_id, seal(total), None).await.unwrap();
                for k in [k1, k2] {
                    let crashing = CrashAfter::new(ledger, k);
                    let crashed = crashing
                        .record_batch(&job_id, BatchNo(batch), &stats(5))
                        .await;
                    assert!(
                        crashed.is_err() || k >= crashing.writes(),
                        "{k}: {crashed:?}"
                    );
                }
                let last = ledger
                    .record_batch(&job_id, BatchNo(batch), &stats(5))
                    .await
                    .unwrap();
                let _ = ledger.try_finish(last.job()).await.unwrap();
                let view = ledger.get(&job_id).await.unwrap().unwrap();
                assert_eq!(
                    (view.batches_done, view.totals.rows_written, view.status),
                    (total, total - 1 + 5, JobStatus::Complete),
                    "batch {batch}, crashes after {k1} then {k2} writes"
                );
            }
        }
    }
    // A failed count, crashed, then a redrive's recovery, crashed at every write.
    for k in 0..9 {
        let job_id = JobId::new(format!("{namespace}-crash-redrive-{k}"));
        ledger
            .create(&Job::new(&job_id, "bucket", ""))
            .await
            .unwrap();
        ledger.seal(&job_id, seal(1), None).await.unwrap();
        let _ = CrashAfter::new(ledger, k.min(2))
            .record_failed_batch(&job_id, BatchNo(0), "lost")
            .await;
        let failed = ledger
            .record_failed_batch(&job_id, BatchNo(0), "lost")
            .await
            .unwrap();
        let ended = ledger.try_finish(failed.job()).await.unwrap();
        let ended = match ended {
            Some(job) => job,
            None => ledger.get(&job_id).await.unwrap().unwrap(),
        };
        assert_eq!(ended.status, JobStatus::CompletedWithErrors, "{k}");
        let _ = CrashAfter::new(ledger, k)
            .record_batch(&job_id, BatchNo(0), &stats(7))
            .await;
        ledger
            .record_batch(&job_id, BatchNo(0), &stats(7))
            .await
            .unwrap();
        ledger
            .record_batch(&job_id, BatchNo(0), &stats(7))
            .await
            .unwrap();
        let view = ledger.get(&job_id).await.unwrap().unwrap();
        assert_eq!(
            (
                view.batches_done,
                view.batches_failed,
                view.batches_recovered,
                view.totals.rows_written
            ),
            (1, 0, 1, 7),
            "recovery crashed after {k} writes"
        );
    }
}

async fn counts_each_batch_once_and_finishes_once(ledger: &dyn Ledger, job_id: &JobId) {
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
    ledger: &dyn Ledger,
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

async fn only_the_owner_moves_the_listing(ledger: &dyn Ledger, job_id: &JobId) {
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
        next_batch: 3,
        files_listed: 30,
        files_skipped: 1,
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

async fn the_completion_event_is_claimed_once(ledger: &dyn Ledger, job_id: &JobId) {
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

async fn abandoned_jobs_fail_once(ledger: &dyn Ledger, job_id: &JobId) {
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
