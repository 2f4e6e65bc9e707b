//! A listing holds once its job's queue is full and goes on when the stuck check sees it
//! drained: the batches queued at any time stay within the window (plus a page), every key
//! is still enqueued exactly once, and a held listing is never mistaken for a dead one.

use super::*;
use crate::plan::queue_window::QueueWindow;

const PAGE: u64 = 5;

/// One key per batch, pages of five, a window of ten batches (one second of the job's rate),
/// a look at the ledger after every page, and no deadline pauses.
fn windowed(doubles: &Doubles, control: bool) -> Coordinator {
    let adapters = Adapters {
        ledger: doubles.ledger.clone(),
        objects: doubles.objects.clone(),
        queues: doubles.queues.clone(),
        records: doubles.records.clone(),
        ..Adapters::memory()
    };
    let config = CoordinatorConfig {
        batch_size: 1,
        list_page_size: PAGE as i32,
        completion_queue_url: Some(DONE.into()),
        control_queue_url: control.then(|| CONTROL.into()),
        checkpoint_margin: Duration::ZERO,
        queue_window: QueueWindow {
            min_batches: 10,
            seconds: 1,
        },
        ..CoordinatorConfig::new(Tables::new("records", "jobs"), WORK)
    };
    Coordinator::new(adapters, config).with_metrics(Arc::new(metrics::MemorySink::default()))
}

/// Counts `batches` as a worker would.
async fn count(doubles: &Doubles, job_id: &JobId, batches: &[BatchMessage]) {
    for batch in batches {
        (doubles.ledger)
            .record_batch(job_id, batch.batch, &Default::default())
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_listing_holds_at_a_full_queue_and_the_stuck_check_wakes_it_once_drained() {
    let doubles = Doubles::new();
    doubles.upload(60, 0);
    let coordinator = windowed(&doubles, true);
    let job_id = JobId::new("held");
    let started = coordinator.start_job(request("held"), None).await.unwrap();
    // Nothing counted yet: the floor of 10 is allowed; the page that passes it is the last.
    assert!(started.continues);
    assert_eq!(started.listing.batches, 15);
    assert!(
        doubles.queues.drain(CONTROL).is_empty(),
        "a hold wakes nothing"
    );
    let job = doubles.ledger.get(&job_id).await.unwrap().unwrap();
    assert!(job.listing_held && job.listing_owner.is_none());

    // Full, and idle for longer than any invocation lives: held, not dead, so not woken.
    let long_ago = crate::clock::now_ms() - 2 * LISTING_STALLED_AFTER.as_millis() as u64;
    doubles
        .ledger
        .edit(&job_id, |job| job.listing_updated_ms = long_ago);
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(report.listings_resumed.is_empty(), "{report:?}");

    let mut all: Vec<BatchMessage> = Vec::new();
    let mut most_queued = 0;
    let mut holds = 1;
    let mut queued = doubles.batches();
    loop {
        let job = doubles.ledger.get(&job_id).await.unwrap().unwrap();
        most_queued = most_queued.max(queued.len());
        // Drain the queue to half the window, oldest first (a worker's order).
        let keep = 5.min(queued.len());
        let (done, left) = queued.split_at(queued.len() - keep);
        count(&doubles, &job_id, done).await;
        all.extend_from_slice(done);
        let mut waiting = left.to_vec();
        if job.sealed {
            count(&doubles, &job_id, &waiting).await;
            all.append(&mut waiting);
            break;
        }
        let report = coordinator
            .check_stuck_jobs(Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(
            report.listings_resumed,
            std::slice::from_ref(&job_id),
            "drained: woken"
        );
        let wakes: Vec<ContinueListing> = doubles.sent(CONTROL);
        let step = coordinator
            .continue_listing(&wakes[0], None)
            .await
            .unwrap()
            .expect("the step ran");
        if step.continues {
            holds += 1;
        }
        waiting.extend(doubles.batches());
        queued = waiting;
    }
    // The count that completes the job finishes it (the worker's step after counting).
    let counted = doubles.ledger.get(&job_id).await.unwrap().unwrap();
    let job = doubles
        .ledger
        .try_finish(&counted)
        .await
        .unwrap()
        .expect("finished");
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.total_batches, job.files_listed), (60, 60));
    let mut numbers: Vec<u64> = all.iter().map(|b| b.batch.get()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..60).collect::<Vec<_>>(), "each batch once");
    let mut keys: Vec<String> = all.iter().flat_map(|b| b.work.keys().to_vec()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 60, "every key once");
    // The window grows with the rate shown (10 per second counted at once here), so the
    // queue stays within what it allows at the hold plus the page that crossed it.
    assert!(holds >= 2, "{holds} holds");
    assert!(
        most_queued as u64 <= 60 / 2 + PAGE,
        "{most_queued} queued at once"
    );
}

#[tokio::test]
async fn without_a_control_queue_nothing_could_resume_a_hold_so_none_happens() {
    let doubles = Doubles::new();
    doubles.upload(30, 0);
    let coordinator = windowed(&doubles, false);
    let started = coordinator
        .start_job(request("unheld"), None)
        .await
        .unwrap();
    assert!(!started.continues);
    assert_eq!(started.listing.batches, 30);
    assert_eq!(doubles.batches().len(), 30);
}
