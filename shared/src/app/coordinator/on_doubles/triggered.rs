//! S3-triggered jobs on the doubles: options from the folder's configuration or the marker,
//! and a job that cannot work recorded FAILED with the reason.

use super::*;

/// The notification of an upload of `key` to bucket `b` (the shipped sample, re-aimed).
fn upload_event(key: &str) -> aws_lambda_events::event::s3::S3Event {
    let mut event: aws_lambda_events::event::s3::S3Event =
        serde_json::from_str(include_str!("../../../../../events/s3-put-marker.json")).unwrap();
    event.records[0].s3.bucket.name = Some("b".into());
    event.records[0].s3.object.key = Some(key.into());
    event
}

async fn triggered(coordinator: &Coordinator, key: &str) -> TriggerOutcome {
    let mut outcomes = coordinator
        .handle_s3_event(&upload_event(key), None)
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 1);
    outcomes.remove(0)
}

const ID_SCHEMA: &str =
    r#"{"columns": [{"name": "id", "type": "string"}], "partition_key": ["id"]}"#;

#[tokio::test]
async fn an_uploaded_job_takes_its_options_from_the_marker_or_else_the_folder() {
    let mut doubles = Doubles::new();
    doubles.records = Arc::new(MemoryTable::new("id", None));
    doubles.upload(3, 0);
    // The folder's configuration: its schema, and insert mode.
    doubles.objects.insert(
        "b",
        "in/_s3-fanout.json",
        format!(r#"{{"schema": {ID_SCHEMA}, "write_mode": "insert"}}"#),
    );
    doubles.objects.insert("b", "in/_SUCCESS", "");
    let coordinator = doubles.coordinator(false);
    let TriggerOutcome::Started(started) = triggered(&coordinator, "in/_SUCCESS").await else {
        panic!("not started")
    };
    let job = doubles.ledger.get(&started.job_id).await.unwrap().unwrap();
    assert_eq!(job.schema.as_ref().unwrap().partition_key, ["id"]);
    assert_eq!(
        job.write.write_mode,
        crate::contract::write::WriteMode::Insert
    );
    let batches = doubles.batches();
    assert!(
        batches.iter().all(|b| b.schema == job.schema),
        "{batches:?}"
    );

    // A marker with options of its own wins, whole, over the folder's (update, no insert).
    doubles.objects.insert(
        "b",
        "in/_SUCCESS",
        format!(r#"{{"s3_fanout": {{"schema": {ID_SCHEMA}, "write_mode": "update"}}}}"#),
    );
    let mut event = upload_event("in/_SUCCESS");
    event.records[0].s3.object.sequencer = Some("02".into());
    let outcomes = coordinator.handle_s3_event(&event, None).await.unwrap();
    let [TriggerOutcome::Started(again)] = outcomes.as_slice() else {
        panic!("{outcomes:?}")
    };
    let job = doubles.ledger.get(&again.job_id).await.unwrap().unwrap();
    assert_eq!(
        job.write.write_mode,
        crate::contract::write::WriteMode::Update
    );
}

#[tokio::test]
async fn an_uploaded_job_that_cannot_work_ends_failed_naming_the_problem() {
    let doubles = Doubles::new();
    doubles.upload(3, 0);
    let coordinator = doubles.coordinator(false);
    let cases = [
        (r#"{"scheme": {}}"#, "unknown option \"scheme\""),
        ("{oops", "not valid JSON"),
        (
            r#"{"schema": {"columns": [{"name": "x", "type": "string"}], "partition_key": ["nope"]}}"#,
            "key column \"nope\" is not a declared column",
        ),
        // Valid options, but the sensor-keyed table does not take this schema's key.
        (
            &format!(r#"{{"schema": {ID_SCHEMA}}}"#) as &str,
            "partition key is \"measure_point\"",
        ),
    ];
    for (i, (config, reason)) in cases.iter().enumerate() {
        doubles.objects.insert("b", "in/_s3-fanout.json", *config);
        doubles.objects.insert("b", "in/_SUCCESS", "");
        let mut event = upload_event("in/_SUCCESS");
        event.records[0].s3.object.sequencer = Some(format!("1{i}"));
        let outcomes = coordinator.handle_s3_event(&event, None).await.unwrap();
        let [
            TriggerOutcome::Refused {
                job_id,
                reason: said,
            },
        ] = outcomes.as_slice()
        else {
            panic!("{outcomes:?}")
        };
        assert!(said.contains(reason), "{said}");
        let job = doubles.ledger.get(job_id).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert!(
            job.error.as_deref().unwrap_or_default().contains(reason),
            "{job:?}"
        );
        // The same notification again: the job is there, nothing more happens.
        let again = coordinator.handle_s3_event(&event, None).await.unwrap();
        assert!(
            matches!(&again[..], [TriggerOutcome::AlreadyStarted { .. }]),
            "{again:?}"
        );
    }
    assert!(doubles.batches().is_empty(), "nothing was enqueued");
    let events: Vec<CompletionEvent> = doubles.sent(DONE);
    assert_eq!(
        events.len(),
        cases.len(),
        "one completion event per failed job"
    );
}
