//! Nothing hangs when a process is killed (SIGKILL, no error returned) on its last delivery:
//! a worker killed mid-batch, a scan killed while it stores its result, a listing continuation
//! and a split object's compose step each killed mid-enqueue leave durable last-attempt marks
//! (a killed scan's compose is then woken by the check); once the invocation's deadline has
//! passed, the stuck-job check counts the batches as failed (the job ends
//! COMPLETED_WITH_ERRORS) or fails the job. A
//! finish lost after sealing is completed by the same check. The killed process is the
//! real function in its own process (`src/bin/last_delivery.rs`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::coordinator::Coordinator;
use shared::app::worker::Worker;
use shared::contract::ids::{BatchNo, JobId};
use shared::contract::messages::{BatchMessage, ContinueListing, JobRequest};
use shared::fan_in::LedgerStore as _;
use shared::fan_in::{Ledger as _, ListingProgress};
use shared::job::model::{Job, JobStatus};

/// The invocation's deadline: short, so the test need not wait long for it to pass (the
/// function keeps its usual 10 s margin inside it).
const DEADLINE_SECONDS: u64 = 12;

fn last_delivery(env: &TestEnv, role: &str, body: &str) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_last_delivery"));
    if role != "worker" {
        // The worker gets no batch queue: it must not hand its batch on as a continuation
        // (docs/resumable.md) but be killed while it works.
        command.env("QUEUE_URL", &env.provisioned.queue_url);
    }
    command
        .args([role, body, "5", &DEADLINE_SECONDS.to_string()])
        .envs(default_servers().env())
        .env("RECORDS_TABLE", &env.resources.tables.records)
        .env("JOBS_TABLE", &env.resources.tables.jobs)
        .env("CONTROL_QUEUE_URL", &env.provisioned.control_queue_url)
        .env("MAX_RECEIVE_COUNT", "5")
        .env("BATCH_SIZE", "2")
        .env("CHECKPOINT_MARGIN_SECONDS", "1")
        .env("CONTROL_MAX_RECEIVE_COUNT", "5")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting last_delivery")
}

/// Polls until `ready` holds (the process has marked its last attempt), then SIGKILLs it.
async fn kill_when(mut child: Child, mut ready: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !ready().await {
        if child.try_wait().unwrap().is_some() {
            let mut out = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut out).unwrap();
            panic!("the process ended before it was killed: {out}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no mark appeared"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL"); // std's kill() is SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status:?}");
}

/// The deadline plus the check's grace, from the process start.
async fn wait_past_deadline(started: Instant) {
    let until = Duration::from_secs(DEADLINE_SECONDS)
        + shared::app::coordinator::KILL_GRACE
        + Duration::from_secs(1);
    tokio::time::sleep(until.saturating_sub(started.elapsed())).await;
}

#[tokio::test]
async fn a_worker_killed_on_its_last_delivery_still_ends_its_job() {
    let env = TestEnv::new(default_servers(), "kill-worker").await;
    // 300 rows: 12 writes of a second each, so the kill lands mid-batch.
    let spec = SampleSpec::new("k/", 1, 300);
    spec.upload(&env.clients.s3, &env.resources.bucket, 1, || {})
        .await
        .unwrap();
    let job = env.sealed_job("job-kill-worker", 2, 2).await;
    let ledger = env.ledger();
    ledger
        .record_batch(&job.job_id, BatchNo(1), &Default::default())
        .await
        .unwrap();
    let body = serde_json::to_string(&env.batch(&job.job_id, 0, vec![spec.key(0)])).unwrap();
    let started = Instant::now();
    let child = last_delivery(&env, "worker", &body);
    kill_when(child, async || {
        !ledger.last_attempts(&job.job_id).await.unwrap().is_empty()
    })
    .await;
    let stored = ledger.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.batches_done),
        (JobStatus::Running, 1)
    );

    let coordinator = env.coordinator(env.pipeline().coordinator);
    let early = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(
        early.batches_failed.is_empty(),
        "its deadline has not passed: {early:?}"
    );
    wait_past_deadline(started).await;
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.batches_failed, vec![(job.job_id.clone(), 0)]);
    assert_eq!(report.jobs_ended, vec![job.job_id.clone()]);
    let ended = ledger.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::CompletedWithErrors);
    assert_eq!((ended.batches_done, ended.batches_failed), (2, 1));
    assert!(ended.error.unwrap().contains("killed on its last delivery"));
    assert!(ledger.last_attempts(&job.job_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_continuation_killed_on_its_last_delivery_fails_its_job() {
    let env = TestEnv::new(default_servers(), "kill-listing").await;
    let spec = SampleSpec::new("l/", 30, 1);
    spec.upload(&env.clients.s3, &env.resources.bucket, 30, || {})
        .await
        .unwrap();
    // A listing paused before its step 1 (batches of 2 keys: 15 slow sends).
    let job_id = JobId::new("job-kill-listing");
    let mut job = Job::new(&job_id, &env.resources.bucket, "l/");
    job.listing_invocation = 1;
    let ledger = env.ledger();
    ledger.create(&job).await.unwrap();
    let body = serde_json::to_string(&ContinueListing {
        job_id: job_id.clone(),
        invocation: 1,
    })
    .unwrap();
    let started = Instant::now();
    let child = last_delivery(&env, "continuation", &body);
    kill_when(child, async || {
        let header = ledger.header(&job_id).await.unwrap().unwrap();
        header.listing_last_attempt_ms.is_some() && header.listing_owner.is_some()
    })
    .await;
    wait_past_deadline(started).await;
    let coordinator = env.coordinator(env.pipeline().coordinator);
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.jobs_ended, vec![job_id.clone()]);
    assert!(report.listings_resumed.is_empty(), "not woken again");
    let ended = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::Failed);
    assert!(ended.error.unwrap().contains("killed on its last delivery"));
}

#[tokio::test]
async fn a_finish_lost_after_sealing_is_completed_by_the_stuck_check() {
    let env = TestEnv::new(default_servers(), "lost-finish").await;
    let ledger = env.ledger();
    let job_id = JobId::new("job-lost-finish");
    ledger
        .create(&Job::new(&job_id, &env.resources.bucket, ""))
        .await
        .unwrap();
    for batch in 0..3 {
        ledger
            .record_batch(&job_id, BatchNo(batch), &Default::default())
            .await
            .unwrap();
    }
    let seal = ListingProgress {
        batches: 3,
        files_listed: 3,
        files_skipped: 0,
        planning_bytes_read: 0,
    };
    // The sealing run dies between sealing and finishing.
    ledger.seal_total(&job_id, seal, None).await.unwrap();
    assert_eq!(
        ledger.get(&job_id).await.unwrap().unwrap().status,
        JobStatus::Running
    );
    let coordinator = env.coordinator(env.pipeline().coordinator);
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.jobs_ended, vec![job_id.clone()]);
    let ended = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!((ended.status, ended.batches_done), (JobStatus::Complete, 3));
}

/// A one-object job (~18 KB in 4 KiB ranges), started: its coordinator and worker, and its
/// scan batches (none run yet).
async fn split_job(env: &TestEnv, job_id: &JobId) -> (Coordinator, Worker, Vec<BatchMessage>) {
    let spec = SampleSpec::new("c/", 1, 400);
    spec.upload(&env.clients.s3, &env.resources.bucket, 1, || {})
        .await
        .unwrap();
    let mut pipeline = env.pipeline();
    pipeline.coordinator.range_chunk_bytes = 4096;
    let coordinator = env.coordinator(pipeline.coordinator.clone());
    let request = JobRequest {
        job_id: Some(job_id.clone()),
        key: Some(spec.key(0)),
        ..JobRequest::new(&env.resources.bucket, "c/")
    };
    let started = coordinator.start_job(request, None).await.unwrap();
    let scans: Vec<BatchMessage> = env.drain(&env.provisioned.queue_url).await;
    let ranges = scans.len() as u64;
    assert!(ranges >= 4, "{ranges} ranges");
    assert_eq!(
        started.listing.batches,
        2 * ranges,
        "scans, then as many parses"
    );
    let worker = env.worker(pipeline.worker.clone());
    (coordinator, worker, scans)
}

/// [`split_job`] with every scan counted: its coordinator and worker, the number of ranges,
/// and the compose message the last scan counted sent.
async fn scanned_split_job(env: &TestEnv, job_id: &JobId) -> (Coordinator, Worker, u64, String) {
    let (coordinator, worker, scans) = split_job(env, job_id).await;
    let ranges = scans.len() as u64;
    for scan in &scans {
        worker.process(scan, None).await.unwrap();
    }
    let composes: Vec<serde_json::Value> = env.drain(&env.provisioned.control_queue_url).await;
    assert_eq!(composes.len(), 1, "{composes:?}");
    (coordinator, worker, ranges, composes[0].to_string())
}

#[tokio::test]
async fn a_compose_killed_on_its_last_delivery_still_ends_its_job() {
    let env = TestEnv::new(default_servers(), "kill-compose").await;
    let job_id = JobId::new("job-kill-compose");
    let (coordinator, _, ranges, compose) = scanned_split_job(&env, &job_id).await;
    // Its last delivery is killed mid-enqueue, after marking every parse batch.
    let ledger = env.ledger();
    let process_started = Instant::now();
    let child = last_delivery(&env, "continuation", &compose);
    kill_when(child, async || {
        ledger.last_attempts(&job_id).await.unwrap().len() as u64 == ranges
    })
    .await;
    let parses: Vec<BatchMessage> = env.drain(&env.provisioned.queue_url).await;
    assert!(parses.is_empty(), "killed before it enqueued: {parses:?}");

    wait_past_deadline(process_started).await;
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.batches_failed.len() as u64, ranges, "{report:?}");
    assert_eq!(report.jobs_ended, vec![job_id.clone()]);
    let ended = ledger.get(&job_id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::CompletedWithErrors);
    assert_eq!(
        (ended.batches_done, ended.batches_failed),
        (2 * ranges, ranges)
    );
    assert!(ended.error.unwrap().contains("killed on its last delivery"));
    assert!(ledger.last_attempts(&job_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_compose_that_returns_on_its_last_delivery_leaves_no_mark() {
    let env = TestEnv::new(default_servers(), "compose-last").await;
    let job_id = JobId::new("job-compose-last");
    let (coordinator, worker, _, compose) = scanned_split_job(&env, &job_id).await;
    let mut message = SqsMessage::default();
    message.message_id = Some("m-1".into());
    message.body = Some(compose);
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), "5".into());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    let response = coordinator.handle_control_event(event, None).await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        env.ledger()
            .last_attempts(&job_id)
            .await
            .unwrap()
            .is_empty(),
        "a compose that returned clears its marks: parses still to run are not failed"
    );
    for parse in env.drain::<BatchMessage>(&env.provisioned.queue_url).await {
        worker.process(&parse, None).await.unwrap();
    }
    let ended = env.ledger().get(&job_id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::Complete, "{ended:?}");
    assert_eq!(ended.totals.rows_written, 400);
}

#[tokio::test]
async fn a_scan_killed_on_its_last_delivery_gets_its_compose_woken_and_ends_its_job() {
    let env = TestEnv::new(default_servers(), "kill-scan").await;
    let job_id = JobId::new("job-kill-scan");
    let (coordinator, worker, scans) = split_job(&env, &job_id).await;
    for scan in &scans[1..] {
        worker.process(scan, None).await.unwrap();
    }
    // Scan 0's last delivery is killed while it stores its scan (a slow PUT).
    let ledger = env.ledger();
    let process_started = Instant::now();
    let child = last_delivery(&env, "worker", &serde_json::to_string(&scans[0]).unwrap());
    kill_when(child, async || {
        !ledger.last_attempts(&job_id).await.unwrap().is_empty()
    })
    .await;
    let woken: Vec<serde_json::Value> = env.drain(&env.provisioned.control_queue_url).await;
    assert!(
        woken.is_empty(),
        "killed before any compose wake: {woken:?}"
    );

    wait_past_deadline(process_started).await;
    let report = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        report.batches_failed,
        vec![(job_id.clone(), scans[0].batch.get())]
    );
    assert_eq!(report.composes_woken, vec![job_id.clone()], "{report:?}");
    let composes: Vec<serde_json::Value> = env.drain(&env.provisioned.control_queue_url).await;
    assert_eq!(composes.len(), 1, "{composes:?}");
    let mut message = SqsMessage::default();
    message.message_id = Some("m-1".into());
    message.body = Some(composes[0].to_string());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    let response = coordinator.handle_control_event(event, None).await;
    assert!(response.batch_item_failures.is_empty());
    let ended = ledger.get(&job_id).await.unwrap().unwrap();
    assert!(ended.status.is_final(), "the job ends: {ended:?}");
    assert!(
        ended
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("killed on its last delivery"),
        "{ended:?}"
    );
}
