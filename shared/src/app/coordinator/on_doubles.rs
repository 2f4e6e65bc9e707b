//! The coordinator's listing, continuation, claims, stuck-job check and completion outbox on
//! the in-memory doubles: fast, and the same code paths as on AWS.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::app::config::Tables;
use crate::contract::completion::CompletionEvent;
use crate::contract::ids::BatchNo;
use crate::contract::messages::{BatchMessage, ContinueListing};
use crate::job::model::JobStatus;
use crate::port::memory::{MemoryLedger, MemoryObjects, MemoryQueues, MemoryTable};
use crate::port::table::KeyType;

const WORK: &str = "work-queue";
const CONTROL: &str = "control-queue";
const DONE: &str = "completion-queue";

struct Doubles {
    ledger: Arc<MemoryLedger>,
    objects: Arc<MemoryObjects>,
    queues: Arc<MemoryQueues>,
    records: Arc<MemoryTable>,
}

impl Doubles {
    fn new() -> Self {
        Self {
            ledger: Arc::new(MemoryLedger::new()),
            objects: Arc::new(MemoryObjects::new()),
            queues: Arc::new(MemoryQueues::new()),
            records: Arc::new(MemoryTable::new("measure_point", Some("timestamp"))),
        }
    }

    /// A coordinator with batches of 10 keys and listing pages of 10; with `pausing`, every
    /// listing step pauses after its first page (the deadline is always near).
    fn coordinator(&self, pausing: bool) -> Coordinator {
        self.coordinator_with(pausing, crate::plan::batching::DEFAULT_BATCH_BYTES)
    }

    /// Batches that also close at `batch_bytes`.
    fn coordinator_with(&self, pausing: bool, batch_bytes: u64) -> Coordinator {
        let adapters = Adapters {
            ledger: self.ledger.clone(),
            objects: self.objects.clone(),
            queues: self.queues.clone(),
            records: self.records.clone(),
            ..Adapters::memory()
        };
        let config = CoordinatorConfig {
            batch_size: 10,
            batch_bytes,
            list_page_size: 10,
            range_chunk_bytes: 1 << 20,
            completion_queue_url: Some(DONE.into()),
            control_queue_url: Some(CONTROL.into()),
            checkpoint_margin: Duration::from_secs(if pausing { 3600 } else { 0 }),
            ..CoordinatorConfig::new(Tables::new("records", "jobs"), WORK)
        };
        Coordinator::new(adapters, config).with_metrics(Arc::new(metrics::MemorySink::default()))
    }

    fn upload(&self, csv: usize, other: usize) {
        for i in 0..csv {
            self.objects.insert("b", &format!("in/{i:03}.csv"), "h\n");
        }
        for i in 0..other {
            self.objects.insert("b", &format!("in/{i:03}.txt"), "x");
        }
    }

    /// Every message sent to `queue` so far, parsed (and taken off the queue).
    fn sent<T: serde::de::DeserializeOwned>(&self, queue: &str) -> Vec<T> {
        let bodies = self.queues.drain(queue);
        bodies
            .iter()
            .map(|body| serde_json::from_str(body).unwrap())
            .collect()
    }

    fn batches(&self) -> Vec<BatchMessage> {
        let mut batches: Vec<BatchMessage> = self.sent(WORK);
        batches.sort_by_key(|b| b.batch);
        batches
    }
}

fn request(job_id: &str) -> JobRequest {
    JobRequest {
        job_id: Some(job_id.into()),
        ..JobRequest::new("b", "in/")
    }
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(1))
}

#[tokio::test]
async fn a_job_whose_key_types_differ_from_the_table_s_is_refused_before_anything_exists() {
    let mut doubles = Doubles::new();
    doubles.upload(3, 0);
    // The table's sort key is a number; the sensor schema writes its timestamp as text.
    doubles.records = Arc::new(
        MemoryTable::new("measure_point", Some("timestamp")).with_key_types(KeyType::S, KeyType::N),
    );
    let refused = doubles
        .coordinator(false)
        .start_job(request("typed"), None)
        .await
        .unwrap_err();
    let reason = refused.to_string();
    assert!(
        matches!(refused, CoordinatorError::InvalidRequest(_)),
        "{refused:?}"
    );
    assert!(
        reason.contains(
            "sort key \"timestamp\" is of type N (number), and the job's schema produces S (string)"
        ),
        "{reason}"
    );
    assert!(doubles.ledger.get(&"typed".into()).await.unwrap().is_none());
    assert!(doubles.queues.drain(WORK).is_empty());
    assert!(doubles.queues.drain(CONTROL).is_empty());

    // The same request against a table keyed as the schema writes: started.
    doubles.records = Arc::new(MemoryTable::new("measure_point", Some("timestamp")));
    let started = doubles
        .coordinator(false)
        .start_job(request("typed"), None)
        .await
        .unwrap();
    assert_eq!(started.listing.batches, 1);
}

#[tokio::test]
async fn a_prefix_becomes_batches_of_csv_keys_and_a_sealed_job() {
    let doubles = Doubles::new();
    doubles.upload(25, 2);
    let started = doubles
        .coordinator(false)
        .start_job(request("j"), None)
        .await
        .unwrap();
    assert_eq!(
        (
            started.listing.batches,
            started.listing.files_listed,
            started.listing.files_skipped
        ),
        (3, 27, 2)
    );
    assert!(!started.continues);
    let batches = doubles.batches();
    let keys: Vec<String> = batches
        .iter()
        .flat_map(|b| b.work.keys().to_vec())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("in/{i:03}.csv")).collect();
    assert_eq!(keys, expected, "every CSV key once, in order");
    assert_eq!(
        batches
            .iter()
            .map(|b| b.work.keys().len())
            .collect::<Vec<_>>(),
        [10, 10, 5]
    );
    let job = doubles.ledger.get(&"j".into()).await.unwrap().unwrap();
    assert!(job.sealed);
    assert_eq!(job.total_batches, 3);
    assert_eq!(job.status, JobStatus::Running);
}

#[tokio::test]
async fn batches_close_at_their_byte_bound_across_listing_pages() {
    let doubles = Doubles::new();
    // Sizes 1..=60 bytes cycling, one 500-byte object among them; batches of at most 10
    // keys and 100 bytes, listing pages of 10, every step pausing after one page.
    let mut sizes = Vec::new();
    for i in 0..40 {
        let size = if i == 17 { 500 } else { 1 + (i * 37) % 60 };
        doubles
            .objects
            .insert("b", &format!("in/{i:03}.csv"), vec![b'x'; size]);
        sizes.push((format!("in/{i:03}.csv"), size as u64));
    }
    let coordinator = doubles.coordinator_with(true, 100);
    let mut started = coordinator.start_job(request("j"), soon()).await.unwrap();
    let mut steps = 1;
    while started.continues {
        let wake: Vec<ContinueListing> = doubles.sent(CONTROL);
        started = (coordinator.continue_listing(&wake[0], soon()).await)
            .unwrap()
            .expect("the step ran");
        steps += 1;
    }
    assert_eq!(steps, 4, "pages of 10 keys");
    let batches = doubles.batches();
    assert_eq!(started.listing.batches, batches.len() as u64);
    let size_of = |key: &String| sizes.iter().find(|(k, _)| k == key).unwrap().1;
    let keys: Vec<String> = batches
        .iter()
        .flat_map(|b| b.work.keys().to_vec())
        .collect();
    assert_eq!(
        keys,
        sizes.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
    for batch in &batches {
        let bytes: u64 = batch.work.keys().iter().map(size_of).sum();
        assert!(batch.work.keys().len() <= 10);
        assert!(
            bytes <= 100 || batch.work.keys().len() == 1,
            "batch {} holds {bytes} bytes in {} keys",
            batch.batch,
            batch.work.keys().len()
        );
    }
    let big = batches
        .iter()
        .find(|b| b.work.keys().contains(&"in/017.csv".to_owned()));
    assert_eq!(
        big.unwrap().work.keys().len(),
        1,
        "the big object is a batch of its own"
    );
    // Bytes, not the key bound, set the count: 40 keys fit 4 batches of 10 keys.
    assert!(batches.len() > 10, "{} batches", batches.len());
}

#[tokio::test]
async fn an_empty_prefix_completes_at_once_and_sends_one_completion_event() {
    let doubles = Doubles::new();
    doubles.upload(0, 3);
    let started = doubles
        .coordinator(false)
        .start_job(request("empty"), None)
        .await
        .unwrap();
    let finished = started.finished.expect("nothing to wait for");
    assert_eq!(finished.status, JobStatus::Complete);
    let events: Vec<CompletionEvent> = doubles.sent(DONE);
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].job_id.as_str(), events[0].files_skipped),
        ("empty", 3)
    );
    let job = doubles.ledger.get(&"empty".into()).await.unwrap().unwrap();
    assert!(!job.event_pending, "the outbox is cleared once sent");
}

#[tokio::test]
async fn a_listing_continues_step_by_step_and_duplicate_wake_ups_send_nothing() {
    let doubles = Doubles::new();
    doubles.upload(35, 0);
    let coordinator = doubles.coordinator(true);
    let started = coordinator
        .start_job(request("long"), soon())
        .await
        .unwrap();
    assert!(started.continues);
    let mut steps = 1;
    loop {
        // A duplicate of the previous step wakes this one again: harmless, as shown below.
        let wakes: Vec<ContinueListing> = doubles.sent(CONTROL);
        assert!(!wakes.is_empty() && wakes.iter().all(|w| w.invocation == steps));
        let wake = &wakes[0];
        let resumed = coordinator.continue_listing(wake, soon()).await.unwrap();
        // The same wake-up again (a redelivery) finds the step done or taken.
        assert_eq!(
            coordinator.continue_listing(wake, soon()).await.unwrap(),
            None
        );
        steps += 1;
        if !resumed.expect("the step ran").continues {
            break;
        }
    }
    assert_eq!(steps, 4, "pages of 10 keys: 35 keys take four steps");
    let batches = doubles.batches();
    let numbers: Vec<u64> = batches.iter().map(|b| b.batch.get()).collect();
    assert_eq!(
        numbers,
        [0, 1, 2, 3],
        "numbered on across steps, none twice"
    );
    let keys: Vec<String> = batches
        .iter()
        .flat_map(|b| b.work.keys().to_vec())
        .collect();
    assert_eq!(keys.len(), 35);
    let job = doubles.ledger.get(&"long".into()).await.unwrap().unwrap();
    assert!(job.sealed);
    assert_eq!((job.total_batches, job.files_listed), (4, 35));
}

#[tokio::test]
async fn the_stuck_check_wakes_a_dead_listing_and_sends_an_owed_event() {
    let doubles = Doubles::new();
    doubles.upload(15, 0);
    let coordinator = doubles.coordinator(true);
    let started = coordinator
        .start_job(request("dead"), soon())
        .await
        .unwrap();
    assert!(started.continues);
    doubles.queues.drain(CONTROL); // the wake-up was lost with its invocation
    let long_ago = crate::clock::now_ms() - 2 * LISTING_STALLED_AFTER.as_millis() as u64;
    doubles.ledger.edit(&"dead".into(), |job| {
        job.started_ms = long_ago;
        job.listing_updated_ms = long_ago;
    });
    let owed = Job::new("owed", "b", "");
    doubles.ledger.create(&owed).await.unwrap();
    doubles
        .ledger
        .fail(&"owed".into(), "listing failed")
        .await
        .unwrap();
    // Its finisher crashed before sending; the claim has long expired.
    doubles
        .ledger
        .edit(&"owed".into(), |job| job.event_claimed_ms = Some(0));

    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(report.job_ids, ["dead"]);
    assert_eq!(report.listings_resumed, ["dead"]);
    assert_eq!(report.events_sent, ["owed"]);
    let wake: ContinueListing = serde_json::from_str(&doubles.queues.drain(CONTROL)[0]).unwrap();
    assert_eq!((wake.job_id.as_str(), wake.invocation), ("dead", 1));
    assert_eq!(doubles.queues.drain(DONE).len(), 1);
    let again = coordinator
        .check_stuck_jobs(Duration::from_secs(60))
        .await
        .unwrap();
    assert!(again.events_sent.is_empty(), "an event is sent once");
}

#[tokio::test]
async fn a_failed_send_releases_the_claim_so_the_next_delivery_sends() {
    /// Fails every send to the completion queue.
    struct Unreachable;
    #[async_trait::async_trait]
    impl Queues for Unreachable {
        async fn send_batch(
            &self,
            _: &str,
            _: &[crate::port::queue::Entry],
        ) -> Result<Vec<crate::port::queue::FailedEntry>, QueueError> {
            unreachable!()
        }
        async fn send(&self, queue_url: &str, _: &str, _: &str) -> Result<(), QueueError> {
            Err(QueueError::Call {
                operation: "SendMessage",
                queue_url: queue_url.into(),
                source: "connection refused".into(),
            })
        }
        async fn receive(
            &self,
            _: &str,
            _: usize,
            _: Duration,
        ) -> Result<Vec<crate::port::queue::Received>, QueueError> {
            unreachable!()
        }
        async fn delete(&self, _: &str, _: &[String]) -> Result<(), QueueError> {
            unreachable!()
        }
    }
    let ledger = Arc::new(MemoryLedger::new());
    ledger.create(&Job::new("j", "b", "")).await.unwrap();
    let seal = ListingProgress {
        batches: 0,
        files_listed: 0,
        files_skipped: 0,
        planning_bytes_read: 0,
    };
    let job = ledger.seal(&"j".into(), seal, None).await.unwrap().unwrap();
    let failing = Announcer::new(Arc::new(Unreachable), Some(DONE.into()), ledger.clone());
    assert!(failing.announce(&job, Claim::Held).await.is_err());
    let pending = ledger.get(&"j".into()).await.unwrap().unwrap();
    assert!(pending.event_pending);
    assert_eq!(pending.event_claimed_ms, None, "the claim was released");
    let queues = Arc::new(MemoryQueues::new());
    let working = Announcer::new(queues.clone(), Some(DONE.into()), ledger.clone());
    working.announce(&pending, Claim::Needed).await.unwrap();
    working.announce(&pending, Claim::Needed).await.unwrap();
    assert_eq!(queues.drain(DONE).len(), 1, "sent once");
    assert!(
        !ledger
            .get(&"j".into())
            .await
            .unwrap()
            .unwrap()
            .event_pending
    );
}

/// A batch killed on its last delivery (its mark's deadline long past) is counted as failed
/// by the stuck check, which then ends the job; a mark whose invocation may still run is left.
#[tokio::test]
async fn the_stuck_check_fails_a_batch_killed_on_its_last_delivery_and_ends_the_job() {
    let doubles = Doubles::new();
    let coordinator = doubles.coordinator(false);
    let ledger = &doubles.ledger;
    let job_id = JobId::new("killed");
    ledger.create(&Job::new(&job_id, "b", "")).await.unwrap();
    let seal = ListingProgress {
        batches: 3,
        files_listed: 3,
        files_skipped: 0,
        planning_bytes_read: 0,
    };
    ledger.seal(&job_id, seal, None).await.unwrap();
    ledger
        .record_batch(&job_id, BatchNo(0), &Default::default())
        .await
        .unwrap();
    let now = crate::clock::now_ms();
    ledger
        .mark_last_attempt(&job_id, BatchNo(1), now - 60_000)
        .await
        .unwrap();
    ledger
        .mark_last_attempt(&job_id, BatchNo(2), now + 60_000)
        .await
        .unwrap();
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.batches_failed, vec![(job_id.clone(), 1)]);
    let job = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!((job.status, job.batches_failed), (JobStatus::Running, 1));
    assert!(
        job.last_batch_error
            .unwrap()
            .contains("killed on its last delivery")
    );
    assert_eq!(
        ledger.last_attempts(&job_id).await.unwrap(),
        vec![(BatchNo(2), now + 60_000)]
    );

    // The other invocation was killed too: once its deadline passes, the job ends.
    ledger
        .mark_last_attempt(&job_id, BatchNo(2), now - 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    // The grace has not passed for batch 2 yet (deadline now - 1 ms): age it.
    assert!(report.batches_failed.is_empty(), "{report:?}");
    ledger
        .mark_last_attempt(&job_id, BatchNo(2), now - 60_000)
        .await
        .unwrap();
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.batches_failed, vec![(job_id.clone(), 2)]);
    assert_eq!(report.jobs_ended, vec![job_id.clone()]);
    let job = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    let events = doubles.queues.drain(DONE);
    assert_eq!(events.len(), 1, "{events:?}");
    // A batch that did get counted before its mark expired stays counted once.
    let again = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(again.batches_failed.is_empty() && again.jobs_ended.is_empty());
}

/// Sealed, every batch counted, the finish lost (the finisher crashed): the check finishes it.
#[tokio::test]
async fn the_stuck_check_finishes_a_sealed_job_whose_finish_was_lost() {
    let doubles = Doubles::new();
    let coordinator = doubles.coordinator(false);
    let ledger = &doubles.ledger;
    let job_id = JobId::new("lost-finish");
    ledger.create(&Job::new(&job_id, "b", "")).await.unwrap();
    ledger
        .record_batch(&job_id, BatchNo(0), &Default::default())
        .await
        .unwrap();
    let seal = ListingProgress {
        batches: 1,
        files_listed: 1,
        files_skipped: 0,
        planning_bytes_read: 0,
    };
    // Sealed, then the process died before finishing.
    ledger.seal_total(&job_id, seal, None).await.unwrap();
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.jobs_ended, vec![job_id.clone()]);
    let job = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(doubles.queues.drain(DONE).len(), 1);
}

/// A listing killed on its last delivery ends its job FAILED instead of being woken forever.
#[tokio::test]
async fn the_stuck_check_fails_a_listing_killed_on_its_last_delivery() {
    let doubles = Doubles::new();
    let coordinator = doubles.coordinator(false);
    let ledger = &doubles.ledger;
    let job_id = JobId::new("killed-listing");
    let mut job = Job::new(&job_id, "b", "in/");
    job.started_ms -= 20 * 60 * 1000;
    ledger.create(&job).await.unwrap();
    ledger
        .mark_listing_last_attempt(&job_id, crate::clock::now_ms() - 60_000)
        .await
        .unwrap();
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.jobs_ended, vec![job_id.clone()]);
    assert!(report.listings_resumed.is_empty(), "not woken again");
    assert!(doubles.queues.drain(CONTROL).is_empty());
    let job = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(job.error.unwrap().contains("killed on its last delivery"));
}

/// A cap given as a fraction is resolved once at the start (an on-demand table without a
/// maximum: the stack's 40,000) and travels with the mode in every batch, continuations too.
#[tokio::test]
async fn a_capped_job_resolves_its_cap_once_and_every_batch_carries_it() {
    use crate::contract::write::{WriteMode, WriteRate};
    let doubles = Doubles::new();
    doubles.upload(25, 0);
    let coordinator = doubles.coordinator(true);
    let mut capped = request("capped");
    capped.write.write_mode = WriteMode::Insert;
    capped.write.max_write_rate = Some(WriteRate::Share {
        fraction: 0.25,
        on_demand_units: None,
    });
    let started = coordinator.start_job(capped, soon()).await.unwrap();
    let mut continues = started.continues;
    while continues {
        let wakes: Vec<ContinueListing> = doubles.sent(CONTROL);
        continues = coordinator
            .continue_listing(&wakes[0], soon())
            .await
            .unwrap()
            .is_some_and(|step| step.continues);
    }
    let batches = doubles.batches();
    assert_eq!(batches.len(), 3);
    for batch in &batches {
        assert_eq!(batch.write.write_mode, WriteMode::Insert);
        assert_eq!(batch.write.write_units_per_second, Some(10_000.0));
    }
    let job = doubles.ledger.get(&"capped".into()).await.unwrap().unwrap();
    assert_eq!(job.write.write_units_per_second, Some(10_000.0));

    let mut bad = request("bad-cap");
    bad.write.max_write_rate = Some(WriteRate::Units(-5.0));
    let err = coordinator.start_job(bad, None).await.unwrap_err();
    assert!(err.to_string().contains("-5"), "{err}");
    assert!(
        doubles
            .ledger
            .get(&"bad-cap".into())
            .await
            .unwrap()
            .is_none()
    );
}

mod queue_window;
mod triggered;
