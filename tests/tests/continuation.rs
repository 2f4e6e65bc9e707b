//! A listing too long for one coordinator invocation checkpoints before the deadline and
//! continues in new invocations woken through the control queue. Duplicate wake-ups, a crash
//! between checkpointing and waking, and a crash mid-enqueue all end with every object
//! loaded once and the total sealed once.

use std::time::Duration;

use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::config::CoordinatorConfig;
use shared::contract::messages::{ContinueListing, JobRequest};
use shared::fan_in::Ledger as _;
use shared::fan_in::LedgerStore as _;
use shared::job::model::{JobId, JobStatus};
use tokio::time::Instant;

/// 9 CSV files and one other object: 5 pages of 2 keys.
async fn ten_objects(env: &TestEnv) -> SampleSpec {
    let spec = SampleSpec::new("long/", 9, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 9, || {})
        .await
        .unwrap();
    env.put("long/zz-readme.txt", "not csv").await;
    spec
}

/// Every invocation pauses after its first page: the deadline is already at hand.
fn paged(mut config: CoordinatorConfig) -> CoordinatorConfig {
    config.list_page_size = 2;
    config.batch_size = 2;
    config
}

#[tokio::test]
async fn a_long_listing_continues_over_five_invocations_and_loads_every_object_once() {
    let env = TestEnv::new(default_servers(), "continue").await;
    let spec = ten_objects(&env).await;
    let mut pipeline = env.pipeline();
    pipeline.coordinator = paged(pipeline.coordinator);
    pipeline.coordinator_budget = Some(Duration::ZERO);

    let job = pipeline
        .run(JobRequest::new(&env.resources.bucket, "long/"), |_| {})
        .await
        .unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(
        job.listing_invocation, 4,
        "invocations 0..=4, one page each"
    );
    assert_eq!(job.total_batches, 5);
    assert_eq!((job.files_listed, job.files_skipped), (10, 1));
    assert_eq!(job.totals.files, 9);
    assert_eq!(job.totals.rows_written, spec.total_rows());
    assert_eq!(env.record_count().await, spec.total_rows());
}

/// The listing step a job's ledger item stands at.
async fn invocation(ledger: &shared::aws::DynamoLedger, job_id: &JobId) -> u32 {
    ledger
        .get(job_id)
        .await
        .unwrap()
        .unwrap()
        .listing_invocation
}

#[tokio::test]
async fn duplicate_wake_ups_and_crashed_invocations_duplicate_nothing() {
    let env = TestEnv::new(default_servers(), "continue-crash").await;
    let spec = ten_objects(&env).await;
    let config = paged(env.pipeline().coordinator);
    let control = config.control_queue_url.clone().unwrap();
    let coordinator = env.coordinator(config.clone());
    let now = || Some(Instant::now());
    let ledger = env.ledger();

    let started = coordinator
        .start_job(JobRequest::new(&env.resources.bucket, "long/"), now())
        .await
        .unwrap();
    assert!(started.continues);
    let job_id = started.job_id.clone();
    let wake = |invocation| ContinueListing {
        job_id: job_id.clone(),
        invocation,
    };
    assert_eq!(env.drain::<ContinueListing>(&control).await, vec![wake(1)]);

    // Invocation 1 delivered twice at once: one run claims the step, the other stops (or,
    // coming late, repeats the wake-up of invocation 2).
    let (one, other) = (wake(1), wake(1));
    let (first, second) = futures::join!(
        coordinator.continue_listing(&one, now()),
        coordinator.continue_listing(&other, now())
    );
    let ran = [first.unwrap(), second.unwrap()]
        .iter()
        .filter(|started| started.is_some())
        .count();
    assert_eq!(ran, 1, "exactly one run of invocation 1");
    let woken = env.drain::<ContinueListing>(&control).await;
    assert!(
        !woken.is_empty() && woken.iter().all(|w| *w == wake(2)),
        "{woken:?}"
    );
    // And once more, late: it only repeats the wake-up of invocation 2.
    coordinator.continue_listing(&wake(1), now()).await.unwrap();
    assert_eq!(env.drain::<ContinueListing>(&control).await, vec![wake(2)]);

    // Invocation 2 crashes mid-enqueue (the work queue is unreachable): nothing recorded.
    let mut broken = config.clone();
    broken.queue_url = format!("{}-missing", config.queue_url);
    let crashed = env
        .coordinator(broken)
        .continue_listing(&wake(2), now())
        .await;
    assert!(crashed.is_err());
    assert_eq!(invocation(&ledger, &job_id).await, 2);

    // Redelivered, invocation 2 checkpoints, then crashes before waking invocation 3.
    let mut broken = config.clone();
    broken.control_queue_url = Some(format!("{control}-missing"));
    let crashed = env
        .coordinator(broken)
        .continue_listing(&wake(2), now())
        .await;
    assert!(crashed.is_err());
    assert_eq!(invocation(&ledger, &job_id).await, 3);
    assert!(
        env.drain::<ContinueListing>(&control).await.is_empty(),
        "the wake-up was lost"
    );

    // Redelivered again, invocation 2 finds the listing ahead and wakes invocation 3 again;
    // from there the listing runs to its end.
    coordinator.continue_listing(&wake(2), now()).await.unwrap();
    let mut invocations = 0;
    loop {
        let pending = env.drain::<ContinueListing>(&control).await;
        if pending.is_empty() {
            break;
        }
        for message in pending {
            coordinator.continue_listing(&message, now()).await.unwrap();
            invocations += 1;
        }
    }
    assert_eq!(invocations, 2, "invocations 3 and 4");
    let sealed = ledger.get(&job_id).await.unwrap().unwrap();
    assert!(sealed.sealed);
    assert_eq!((sealed.total_batches, sealed.files_listed), (5, 10));

    let worker = env.worker(env.pipeline().worker);
    let job = env.deliver_until_final(&worker, &job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, spec.total_rows());
    assert_eq!(env.record_count().await, spec.total_rows());
}

#[tokio::test]
async fn a_listing_whose_invocation_died_is_woken_by_the_stuck_job_check() {
    let env = TestEnv::new(default_servers(), "continue-stalled").await;
    let spec = ten_objects(&env).await;
    let config = paged(env.pipeline().coordinator);
    let control = config.control_queue_url.clone().unwrap();
    let coordinator = env.coordinator(config);
    let ledger = env.ledger();
    // A job whose first invocation died before any checkpoint, 20 minutes ago, and one that
    // has just started (its invocation may well be alive).
    let mut dead = shared::job::model::Job::new("job-dead-listing", &env.resources.bucket, "long/");
    dead.started_ms -= 20 * 60 * 1000;
    ledger.create(&dead).await.unwrap();
    let fresh = shared::job::model::Job::new("job-fresh-listing", &env.resources.bucket, "long/");
    ledger.create(&fresh).await.unwrap();

    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        report.listings_resumed,
        vec![JobId::new("job-dead-listing")]
    );
    let woken = env.drain::<ContinueListing>(&control).await;
    assert_eq!(
        woken,
        vec![ContinueListing {
            job_id: "job-dead-listing".into(),
            invocation: 0
        }]
    );
    // The woken invocation lists from the start, to the end (no deadline).
    let started = coordinator
        .continue_listing(&woken[0], None)
        .await
        .unwrap()
        .expect("the listing ran");
    assert!(!started.continues);
    assert_eq!(started.listing.batches, 5);

    let worker = env.worker(env.pipeline().worker);
    let job = env.deliver_until_final(&worker, "job-dead-listing").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, spec.total_rows());
}

#[tokio::test]
async fn a_continuation_failing_on_its_last_delivery_fails_its_job() {
    let env = TestEnv::new(default_servers(), "continue-fails").await;
    ten_objects(&env).await;
    let config = paged(env.pipeline().coordinator);
    let control = config.control_queue_url.clone().unwrap();
    let started = env
        .coordinator(config.clone())
        .start_job(
            JobRequest::new(&env.resources.bucket, "long/"),
            Some(Instant::now()),
        )
        .await
        .unwrap();
    let mut event: aws_lambda_events::event::sqs::SqsEvent =
        serde_json::from_str(include_str!("../../events/sqs-continue-listing.json")).unwrap();
    let body = serde_json::to_string(&env.drain::<ContinueListing>(&control).await[0]).unwrap();
    event.records[0].body = Some(body);
    // The work queue is gone: every delivery fails.
    let mut broken = config;
    broken.queue_url = format!("{}-missing", broken.queue_url);
    let coordinator = env.coordinator(broken);

    let early = coordinator.handle_control_event(event.clone(), None).await;
    assert_eq!(early.batch_item_failures.len(), 1, "left for redelivery");
    let ledger = env.ledger();
    let job = ledger.get(&started.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Running);

    event.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), "5".into());
    let last = coordinator.handle_control_event(event, None).await;
    assert!(
        last.batch_item_failures.is_empty(),
        "consumed: the job ended"
    );
    let job = ledger.get(&started.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.error.as_deref().unwrap_or_default().contains("missing"),
        "{job:?}"
    );
}

#[tokio::test]
async fn a_listing_held_at_a_full_queue_goes_on_once_it_drains_and_loads_every_object_once() {
    let env = TestEnv::new(default_servers(), "queue-window").await;
    let spec = SampleSpec::new("held/", 24, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 24, || {})
        .await
        .unwrap();
    let mut pipeline = env.pipeline();
    // One key a batch, pages of 3, and at most 4 batches queued (the rate shown over one
    // second adds little here): the listing holds several times, and the stuck check (run
    // by the local pipeline while a listing is held) wakes it as the workers drain it.
    pipeline.coordinator.batch_size = 1;
    pipeline.coordinator.list_page_size = 3;
    pipeline.coordinator.queue_window = shared::plan::queue_window::QueueWindow {
        min_batches: 4,
        seconds: 1,
    };
    let mut held_seen = 0;
    let job = pipeline
        .run(JobRequest::new(&env.resources.bucket, "held/"), |job| {
            if job.listing_held && !job.sealed {
                held_seen += 1;
            }
        })
        .await
        .unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert!(held_seen > 0, "the listing never held");
    assert!(job.listing_invocation >= 2, "{job:?}");
    assert_eq!(job.total_batches, 24);
    assert_eq!(job.totals.files, 24);
    assert_eq!(job.totals.rows_written, spec.total_rows());
    assert_eq!(env.record_count().await, spec.total_rows());
    // The bound itself (the window plus the page that crossed it) is checked exactly on
    // the doubles, where the rate is not the machine's.
}
