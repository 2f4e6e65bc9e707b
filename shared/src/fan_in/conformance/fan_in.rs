//! The fan-in part of the ledger contract: counts spread over every shard, only exactly the
//! sealed set completes, last-attempt marks, concurrent duplicates, and a crash between any
//! two writes (through [`CrashAfter`]). Run by [`super::ledger::run`].

use std::time::Duration;

use futures::future::join_all;

use super::crash::CrashAfter;
use super::ledger::{seal, stats};
use crate::fan_in::{Ledger, LedgerStore};
use crate::job::model::{
    BatchNo, Job, JobId, JobStatus, ListingCheckpoint, ListingProgress, Recorded,
};
use crate::job::shards::{self, SHARDS};

/// Counts `batches` batches of one row each, `width` at a time; returns the `Counted` ones.
async fn count_all(
    ledger: &dyn LedgerStore,
    job_id: &JobId,
    batches: std::ops::Range<u64>,
) -> usize {
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

pub(super) async fn counts_spread_over_every_shard(ledger: &dyn LedgerStore, job_id: &JobId) {
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

pub(super) async fn only_exactly_the_sealed_set_completes(
    ledger: &dyn LedgerStore,
    job_id: &JobId,
) {
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

pub(super) async fn last_attempts_are_marked_and_cleared(ledger: &dyn LedgerStore, job_id: &JobId) {
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
        progress: ListingProgress {
            batches: 1,
            files_listed: 1,
            files_skipped: 0,
            planning_bytes_read: 0,
        },
        held: false,
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

pub(super) async fn concurrent_duplicates_count_once(ledger: &dyn LedgerStore, job_id: &JobId) {
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
pub(super) async fn a_crash_between_any_two_writes_counts_once(
    ledger: &dyn LedgerStore,
    namespace: &str,
) {
    let total = u64::from(SHARDS) + 1;
    let cases = (0..4)
        .flat_map(|k1| (0..5).map(move |k2| (total - 1, k1, k2)))
        .chain((0..4).map(|k1| (total - 2, k1, 4)));
    for (batch, k1, k2) in cases {
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
