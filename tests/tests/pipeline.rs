//! The whole pipeline against real local servers: coordinator, SQS, bridge, worker, DynamoDB.

use shared::job::model::BatchNo;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use devkit::bridge::{BridgeError, Invoke, SqsBridge};
use devkit::provision::QueueSettings;
use devkit::sample::SampleSpec;
use futures::future::join_all;
use integration_tests::{TestEnv, default_servers, moto_servers};
use shared::contract::messages::JobRequest;
use shared::fan_in::Ledger as _;
use shared::job::model::{BatchStats, Job, JobStatus, Recorded};

fn request(env: &TestEnv, prefix: &str) -> JobRequest {
    JobRequest::new(&env.resources.bucket, prefix)
}

#[tokio::test]
async fn every_row_lands_typed_the_job_completes_once_and_a_rerun_duplicates_nothing() {
    let env = TestEnv::new(default_servers(), "pipeline").await;
    let spec = SampleSpec::new("data/", 210, 100);
    spec.upload(&env.clients.s3, &env.resources.bucket, 32, || {})
        .await
        .unwrap();
    env.put("data/notes.txt", "not a csv").await;
    env.put("elsewhere/sensor.csv", "outside the prefix").await;

    let mut pipeline = env.pipeline();
    pipeline.coordinator.batch_size = 8; // 27 batches, the last one partial
    pipeline.coordinator.list_page_size = 50; // 5 pages of continuation tokens
    pipeline.pollers = 3;
    let job = pipeline.run(request(&env, "data/"), |_| {}).await.unwrap();

    assert_eq!(job.status, JobStatus::Complete);
    assert!(job.sealed);
    assert_eq!((job.total_batches, job.batches_done), (27, 27));
    assert_eq!((job.files_listed, job.files_skipped), (211, 1));
    assert_eq!(job.totals.files, 210);
    assert_eq!(job.totals.rows_written, 21_000);
    assert_eq!(job.totals.rows_rejected, 0);
    assert!(job.finished_at.is_some() && job.duration_seconds.is_some());

    // Each batch has exactly one marker item (the ledger's exactly-once gate), no other.
    let mut done = BTreeSet::new();
    for batch in 0..30u64 {
        let marker = env
            .clients
            .dynamodb
            .get_item()
            .table_name(&env.resources.tables.jobs)
            .key(
                "job_id",
                AttributeValue::S(format!("{}#b{batch}", job.job_id)),
            )
            .send()
            .await
            .unwrap()
            .item;
        if marker.is_some() {
            done.insert(batch);
        }
    }
    assert_eq!(done, (0..27).collect());

    // Every row is there, typed, value for value.
    assert_eq!(env.record_count().await, 21_000);
    for file in [0, 7, 104, 209] {
        let expected = spec.expected(file);
        let stored = env.readings_of(&expected[0].measure_point).await;
        assert_eq!(stored, expected, "file {file}");
    }
    let one = env
        .clients
        .dynamodb
        .get_item()
        .table_name(&env.resources.tables.records)
        .key(
            "measure_point",
            AttributeValue::S(spec.expected(3)[0].measure_point.clone()),
        )
        .key(
            "timestamp",
            AttributeValue::S(spec.expected(3)[0].timestamp.clone()),
        )
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(
        matches!(one["temp"], AttributeValue::N(_)),
        "numbers are stored as numbers"
    );
    assert!(matches!(one["humidity"], AttributeValue::N(_)));

    // Running the same job again overwrites, never duplicates.
    let again = pipeline.run(request(&env, "data/"), |_| {}).await.unwrap();
    assert_eq!(again.status, JobStatus::Complete);
    assert_ne!(again.job_id, job.job_id);
    assert_eq!(again.totals.rows_written, 21_000);
    assert_eq!(env.record_count().await, 21_000);
}

#[tokio::test]
async fn bad_rows_are_counted_and_every_valid_row_lands() {
    let env = TestEnv::new(default_servers(), "bad-rows").await;
    env.put(
        "in/mixed.csv",
        "measure_point,timestamp,temp,humidity\n\
         Kyiv_1,2025-11-26 02:56:13 UTC,19.8,59.1\n\
         Kyiv_1,2025-11-26 02:56:20 UTC,warm,58.2\n\
         Kyiv_1,not a time,22.4,58.2\n\
         Kyiv_1,2025-11-26T02:56:34Z,23.1,63.8\n",
    )
    .await;
    env.put(
        "in/no-humidity.csv",
        "timestamp,temp,measure_point\n2025-11-26 02:56:13 UTC,1,Lviv_2\n",
    )
    .await;
    env.put("in/empty.csv", "").await;

    let job = env
        .pipeline()
        .run(request(&env, "in/"), |_| {})
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.totals.files, 2, "mixed.csv and empty.csv decode");
    assert_eq!(
        job.totals.files_failed, 1,
        "the header without humidity is rejected whole"
    );
    assert_eq!(job.totals.rows_written, 2);
    assert_eq!(job.totals.rows_rejected, 2);
    let stored = env.readings_of("Kyiv_1").await;
    let temps: Vec<f64> = stored.iter().map(|r| r.temp).collect();
    assert_eq!(temps, vec![19.8, 23.1]);
}

#[tokio::test]
async fn an_empty_prefix_completes_at_sealing() {
    let env = TestEnv::new(default_servers(), "empty").await;
    let job = env
        .pipeline()
        .run(request(&env, "nothing/"), |_| {})
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(
        (job.total_batches, job.batches_done, job.totals.rows_written),
        (0, 0, 0)
    );
}

fn sqs_event(id: &str, body: &str) -> SqsEvent {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.into());
    message.body = Some(body.into());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    event
}

/// Duplicate delivery (sequential and concurrent) writes the same rows and counts once.
#[tokio::test]
async fn a_redelivered_batch_is_counted_once() {
    let env = TestEnv::new(default_servers(), "redelivery").await;
    let spec = SampleSpec::new("d/", 3, 100);
    spec.upload(&env.clients.s3, &env.resources.bucket, 8, || {})
        .await
        .unwrap();
    let ledger = env.ledger();
    let job = env.sealed_job("job-redelivery", 1, 3).await;

    let message = env
        .batch(&job.job_id, 0, (0..3).map(|i| spec.key(i)).collect())
        .to_json();
    let worker = env.worker(env.pipeline().worker);
    let responses =
        join_all((0..4).map(|i| worker.handle(sqs_event(&format!("m{i}"), &message), None))).await;
    assert!(responses.iter().all(|r| r.batch_item_failures.is_empty()));
    let again = worker.handle(sqs_event("m-late", &message), None).await;
    assert!(again.batch_item_failures.is_empty());

    let stored = ledger.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Complete);
    assert_eq!(stored.batches_done, 1);
    assert_eq!(stored.totals.rows_written, 300);
    assert_eq!(stored.totals.files, 3);
    assert_eq!(env.record_count().await, 300);
}

/// Deliveries of the last batch race to count it and to finish the job: it is counted once
/// and the job has exactly one final transition. `concurrent` sends them at the same moment;
/// otherwise one after another.
async fn exactly_one_finisher(env: &TestEnv, concurrent: bool) {
    let ledger = env.ledger();
    let job = env.sealed_job("job-race", 3, 3).await;
    let stats = BatchStats {
        files: 1,
        rows_written: 10,
        ..BatchStats::default()
    };
    for batch in 0..2 {
        assert!(matches!(
            ledger
                .record_batch(&job.job_id, BatchNo(batch), &stats)
                .await
                .unwrap(),
            Recorded::Counted(_)
        ));
    }
    let deliver = || async {
        let recorded = ledger
            .record_batch(&job.job_id, BatchNo(2), &stats)
            .await
            .unwrap();
        let finished = ledger.try_finish(recorded.job()).await.unwrap();
        (matches!(recorded, Recorded::Counted(_)), finished)
    };
    let outcomes = if concurrent {
        join_all((0..8).map(|_| deliver())).await
    } else {
        let mut outcomes = Vec::new();
        for _ in 0..8 {
            outcomes.push(deliver().await);
        }
        outcomes
    };
    assert_eq!(
        outcomes.iter().filter(|(counted, _)| *counted).count(),
        1,
        "counted once"
    );
    let finishers: Vec<&Job> = outcomes.iter().filter_map(|(_, f)| f.as_ref()).collect();
    assert_eq!(finishers.len(), 1, "exactly one final transition");
    assert_eq!(finishers[0].status, JobStatus::Complete);
    assert_eq!(finishers[0].totals.rows_written, 30);

    // A stale snapshot that still looks ready cannot finish it again.
    let mut stale = finishers[0].clone();
    stale.status = JobStatus::Running;
    assert!(ledger.try_finish(&stale).await.unwrap().is_none());
    // Nor can a late duplicate count again.
    let late = ledger
        .record_batch(&job.job_id, BatchNo(0), &stats)
        .await
        .unwrap();
    assert!(matches!(late, Recorded::AlreadyCounted(ref j) if j.batches_done == 3));
}

/// dynalite serialises writes per key, as DynamoDB guarantees for conditional writes.
#[tokio::test]
async fn exactly_one_finisher_among_concurrent_duplicates_on_dynalite() {
    let env = TestEnv::new(default_servers(), "race-dynalite").await;
    exactly_one_finisher(&env, true).await;
}

/// moto evaluates the same conditions, but not atomically under concurrent requests (it once
/// counted two of eight simultaneous duplicates), so on moto the duplicates come in turn.
#[tokio::test]
async fn exactly_one_finisher_among_sequential_duplicates_on_moto() {
    let env = TestEnv::new(moto_servers(), "race-moto").await;
    exactly_one_finisher(&env, false).await;
}

/// The bridge acknowledges good messages, leaves a poison one for redelivery, and SQS moves
/// it to the dead-letter queue after maxReceiveCount receives (moto implements redrive).
#[tokio::test]
async fn the_bridge_redelivers_failures_until_the_dead_letter_queue() {
    let env = TestEnv::new(default_servers(), "bridge").await;
    let spec = SampleSpec::new("b/", 2, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 4, || {})
        .await
        .unwrap();
    let ledger = env.ledger();
    let job = env.sealed_job("job-bridge", 1, 2).await;
    let good = env.batch(&job.job_id, 0, vec![spec.key(0), spec.key(1)]);
    env.send(good.to_json()).await;
    env.send("{not json".to_owned()).await;

    let worker = env.worker(env.pipeline().worker);
    let bridge = SqsBridge::new(
        &env.clients.sqs,
        &env.provisioned.queue_url,
        &env.provisioned.queue_arn,
        &worker,
    );
    let (mut received, mut deleted) = (0, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut in_dlq = Vec::new();
    while in_dlq.is_empty() && std::time::Instant::now() < deadline {
        let delivery = bridge.poll_once().await.unwrap();
        received += delivery.received;
        deleted += delivery.deleted;
        in_dlq = env
            .clients
            .sqs
            .receive_message()
            .queue_url(&env.provisioned.dead_letter_queue_url)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
    }
    assert_eq!(in_dlq.len(), 1, "the poison message reached the DLQ");
    assert_eq!(in_dlq[0].body.as_deref(), Some("{not json"));
    assert_eq!(deleted, 1, "only the good message was acknowledged");
    assert!(
        received >= 4,
        "1 good + 3 receives of the poison message, got {received}"
    );
    let stored = ledger.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Complete);
    assert_eq!(stored.totals.rows_written, 20);
}

/// A coordinator that cannot list leaves a FAILED job with the reason, not a RUNNING one.
#[tokio::test]
async fn a_listing_failure_marks_the_job_failed_with_the_reason() {
    let env = TestEnv::new(default_servers(), "list-fail").await;
    let mut request = request(&env, "data/");
    request.bucket = "no-such-bucket-s3fanout".into();
    request.job_id = Some("job-list-fail".into());
    let error = env.pipeline().run(request, |_| {}).await.unwrap_err();
    assert!(
        shared::report(&error).contains("no-such-bucket-s3fanout"),
        "{}",
        shared::report(&error)
    );
    let ledger = env.ledger();
    let job = ledger.get(&"job-list-fail".into()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .contains("ListObjectsV2"),
        "{job:?}"
    );
    assert!(job.finished_at.is_some());
}

/// A batch that fails every delivery is counted as failed on its last one, so its job ends
/// COMPLETED_WITH_ERRORS (with every row of the other batches) instead of waiting forever.
#[tokio::test]
async fn a_batch_bound_for_the_dead_letter_queue_ends_its_job_with_errors() {
    let env = TestEnv::new(default_servers(), "dead-letter").await;
    let spec = SampleSpec::new("dl/", 2, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 2, || {})
        .await
        .unwrap();
    let job = env.sealed_job("job-dead-letter", 2, 2).await;
    let good = env.batch(&job.job_id, 0, vec![spec.key(0)]);
    let mut poison = env.batch(&job.job_id, 1, vec![spec.key(1)]);
    poison.schema = Some(shared::contract::schema::Schema {
        sort_key: vec!["missing".into()],
        ..shared::contract::schema::Schema::sensor()
    });
    env.send(good.to_json()).await;
    env.send(poison.to_json()).await;
    let worker = env.worker(env.pipeline().worker);
    let done = env.deliver_until_final(&worker, &job.job_id).await;
    assert_eq!(done.status, JobStatus::CompletedWithErrors);
    assert_eq!((done.batches_done, done.batches_failed), (2, 1));
    assert_eq!(done.totals.rows_written, 10, "the good batch landed");
    let error = done.error.unwrap();
    assert!(
        error.contains("1 of 2 batches failed") && error.contains("schema is invalid"),
        "{error}"
    );
    assert!(done.last_batch_error.unwrap().contains("missing"));
}

/// The messages of `queue_url` that are waiting or in flight (received, not yet deleted).
async fn messages_in(env: &TestEnv, queue_url: &str) -> (u64, u64) {
    let attributes = env
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let count = |name| attributes.get(&name).map_or(0, |n| n.parse().unwrap());
    (
        count(QueueAttributeName::ApproximateNumberOfMessages),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

/// Two jobs back to back through the pipeline `s3-fanout run` drives, on one set of queues
/// with the 30 s visibility timeout `serve` provisions: the first job's pollers must stop
/// without a receive still pending at the server, or that receive takes the second job's
/// message and hides it for 30 s.
#[tokio::test]
async fn a_second_job_on_the_same_queues_runs_at_full_speed() {
    let env =
        TestEnv::with_queues(default_servers(), "back-to-back", QueueSettings::default()).await;
    let spec = SampleSpec::new("hold/", 4, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 4, || {})
        .await
        .unwrap();
    let pipeline = env.pipeline();
    for run in ["first", "second"] {
        let started = Instant::now();
        let job = pipeline.run(request(&env, "hold/"), |_| {}).await.unwrap();
        let took = started.elapsed();
        eprintln!("the {run} job took {took:?}");
        assert_eq!(job.status, JobStatus::Complete, "{job:?}");
        assert_eq!((job.total_batches, job.totals.rows_written), (1, 40));
        assert!(
            took < Duration::from_secs(10),
            "the {run} job took {took:?}: a message was hidden for the visibility timeout"
        );
        assert_eq!(
            messages_in(&env, &env.provisioned.queue_url).await,
            (0, 0),
            "after the {run} job, no message is left waiting or hidden"
        );
    }
}

/// Counts its invocations; nothing fails.
#[derive(Default)]
struct CountingInvoker(AtomicUsize);

impl Invoke for CountingInvoker {
    async fn invoke(&self, _: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(SqsBatchResponse::default())
    }
}

/// A receive in flight when the bridge is told to stop is let finish, and the message it got
/// is given back at once: not invoked, not hidden for the visibility timeout.
#[tokio::test]
async fn a_stopping_bridge_gives_back_what_its_last_receive_got() {
    let env = TestEnv::with_queues(default_servers(), "give-back", QueueSettings::default()).await;
    let invoker = CountingInvoker::default();
    let mut bridge = SqsBridge::new(
        &env.clients.sqs,
        &env.provisioned.queue_url,
        &env.provisioned.queue_arn,
        &invoker,
    );
    bridge.pollers = 1;
    bridge.wait = Duration::from_secs(3);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stop_then_send = async {
        // The poller's first long poll is pending on the empty queue by now.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.send(()).unwrap();
        env.send("for whoever polls next".to_owned()).await;
    };
    let started = Instant::now();
    tokio::join!(
        bridge.run_until(async {
            stopped.await.unwrap();
        }),
        stop_then_send
    );
    let took = started.elapsed();
    assert_eq!(invoker.0.load(Ordering::SeqCst), 0, "nothing was invoked");

    let received = env
        .clients
        .sqs
        .receive_message()
        .queue_url(&env.provisioned.queue_url)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1, "the message is visible at once");
    assert_eq!(received[0].body(), Some("for whoever polls next"));
    let receives = received[0]
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .map(String::as_str);
    assert_eq!(
        receives,
        Some("2"),
        "the stopping poller had received it (stopped after {took:?})"
    );
}
