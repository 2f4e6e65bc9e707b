//! S3 notifications start jobs: a marker starts one job for its folder, a duplicate
//! notification starts nothing, and in object mode a `.csv` upload loads that object.

use aws_lambda_events::event::s3::S3Event;
use aws_sdk_dynamodb::types::AttributeValue;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::coordinator::TriggerOutcome;
use shared::fan_in::Ledger;
use shared::job::model::{Job, JobId, JobStatus};
use shared::plan::trigger::TriggerMode;

/// The sample notification, pointed at this test's bucket and `key` (URL-encoded as S3 does).
fn notification(env: &TestEnv, encoded_key: &str) -> S3Event {
    let mut event: S3Event =
        serde_json::from_str(include_str!("../../events/s3-put-marker.json")).unwrap();
    event.records[0].s3.bucket.name = Some(env.resources.bucket.clone());
    event.records[0].s3.object.key = Some(encoded_key.to_owned());
    event
}

/// Runs the job's queued batches through a worker until it is final.
async fn drive_to_the_end(env: &TestEnv, job_id: &JobId) -> Job {
    let worker = env.worker(env.pipeline().worker);
    env.deliver_until_final(&worker, job_id).await
}

fn started(outcome: &TriggerOutcome) -> JobId {
    match outcome {
        TriggerOutcome::Started(started) => started.job_id.clone(),
        other => panic!("expected a started job, got {other:?}"),
    }
}

#[tokio::test]
async fn a_marker_starts_one_job_for_its_folder_even_when_notified_twice() {
    let env = TestEnv::new(default_servers(), "marker").await;
    let spec = SampleSpec::new("day/", 5, 100);
    spec.upload(&env.clients.s3, &env.resources.bucket, 5, || {})
        .await
        .unwrap();
    env.put("day/_SUCCESS", "").await;
    let coordinator = env.coordinator(env.pipeline().coordinator);
    let event = notification(&env, "day/_SUCCESS");

    let first = coordinator.handle_s3_event(&event, None).await.unwrap();
    let job_id = started(&first[0]);
    let again = coordinator.handle_s3_event(&event, None).await.unwrap();
    assert_eq!(
        again,
        vec![TriggerOutcome::AlreadyStarted {
            job_id: job_id.clone()
        }]
    );

    let job = drive_to_the_end(&env, &job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.prefix, "day/");
    assert_eq!(
        (job.files_listed, job.files_skipped),
        (6, 1),
        "the marker is listed and skipped"
    );
    assert_eq!(job.totals.rows_written, 500);
    assert_eq!(env.record_count().await, 500);
}

#[tokio::test]
async fn in_object_mode_a_csv_upload_loads_that_object_alone() {
    let env = TestEnv::new(default_servers(), "object-trigger").await;
    let spec = SampleSpec::new("in/", 2, 50);
    env.put("in/two words.csv", &spec.body(0)).await;
    env.put("in/other.csv", &spec.body(1)).await;
    let mut config = env.pipeline().coordinator;
    config.trigger.mode = TriggerMode::Object;
    let coordinator = env.coordinator(config);

    let outcomes = coordinator
        .handle_s3_event(&notification(&env, "in/two+words.csv"), None)
        .await
        .unwrap();
    let job = drive_to_the_end(&env, &started(&outcomes[0])).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(
        (job.total_batches, job.totals.files, job.totals.rows_written),
        (1, 1, 50)
    );
    assert_eq!(
        env.readings_of(&spec.expected(0)[0].measure_point).await,
        spec.expected(0)
    );
    assert!(
        env.readings_of(&spec.expected(1)[0].measure_point)
            .await
            .is_empty(),
        "only the uploaded object"
    );
}

#[tokio::test]
async fn in_marker_mode_a_csv_upload_starts_nothing() {
    let env = TestEnv::new(default_servers(), "marker-mode").await;
    let coordinator = env.coordinator(env.pipeline().coordinator);
    let outcomes = coordinator
        .handle_s3_event(&notification(&env, "in/a.csv"), None)
        .await
        .unwrap();
    assert!(matches!(&outcomes[0], TriggerOutcome::Ignored { key, .. } if key == "in/a.csv"));
}

#[tokio::test]
async fn in_object_mode_a_large_csv_upload_starts_a_ranged_job() {
    let env = TestEnv::new(default_servers(), "object-large").await;
    let spec = SampleSpec::new("in/", 1, 2_000);
    env.put("in/big.csv", &spec.body(0)).await;
    let mut config = env.pipeline().coordinator;
    config.trigger.mode = TriggerMode::Object;
    config.range_chunk_bytes = 16 * 1024;
    let coordinator = env.coordinator(config);

    let outcomes = coordinator
        .handle_s3_event(&notification(&env, "in/big.csv"), None)
        .await
        .unwrap();
    // The coordinator composes the ranges' scans through the control queue.
    let worker = env.worker(env.pipeline().worker);
    let job = env
        .deliver_with_control_until_final(&worker, &coordinator, &started(&outcomes[0]))
        .await;
    assert_eq!(job.status, JobStatus::Complete);
    assert!(job.total_batches >= 10, "{} batches", job.total_batches);
    assert_eq!(job.totals.rows_written, 2_000);
    assert_eq!(env.record_count().await, 2_000);
}

#[tokio::test]
async fn a_marker_with_a_job_configuration_loads_with_its_schema_and_a_bad_one_ends_failed() {
    let env = TestEnv::new(default_servers(), "marker-options").await;
    let spec = SampleSpec::new("cfg/", 2, 20);
    spec.upload(&env.clients.s3, &env.resources.bucket, 2, || {})
        .await
        .unwrap();
    // The marker's own options: `temp` typed as a string (so it lands as S, not N).
    let schema = serde_json::json!({
        "columns": [
            {"name": "measure_point", "type": "string"},
            {"name": "timestamp", "type": "timestamp"},
            {"name": "temp", "type": "string"},
            {"name": "humidity", "type": "number"},
        ],
        "partition_key": ["measure_point"],
        "sort_key": ["timestamp"],
    });
    let marker = serde_json::json!({"s3_fanout": {"schema": schema, "write_mode": "insert"}});
    env.put("cfg/_SUCCESS", &marker.to_string()).await;
    let coordinator = env.coordinator(env.pipeline().coordinator);
    let first = coordinator
        .handle_s3_event(&notification(&env, "cfg/_SUCCESS"), None)
        .await
        .unwrap();
    let job = drive_to_the_end(&env, &started(&first[0])).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 40);
    let want = &spec.expected(0)[3];
    let item = env.item(&want.measure_point, &want.timestamp).await;
    let body = spec.body(0);
    let temp_text = body.lines().nth(4).and_then(|row| row.split(',').nth(1));
    assert_eq!(
        item["temp"],
        AttributeValue::S(temp_text.unwrap().into()),
        "typed by the marker's schema"
    );
    assert_eq!(
        item["humidity"],
        AttributeValue::N(format!("{}", want.humidity))
    );

    // A folder configuration with a typo: the job ends FAILED naming it, nothing is loaded.
    env.put("bad/_s3-fanout.json", r#"{"write_mod": "insert"}"#)
        .await;
    env.put("bad/_SUCCESS", "").await;
    let outcome = coordinator
        .handle_s3_event(&notification(&env, "bad/_SUCCESS"), None)
        .await
        .unwrap();
    let [TriggerOutcome::Refused { job_id, reason }] = outcome.as_slice() else {
        panic!("{outcome:?}")
    };
    assert!(reason.contains("unknown option \"write_mod\""), "{reason}");
    let job = env.ledger().get(job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.error
            .as_deref()
            .unwrap_or_default()
            .contains("bad/_s3-fanout.json"),
        "{job:?}"
    );
    assert_eq!(job.total_batches, 0);
}
