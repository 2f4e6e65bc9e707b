//! The checks' findings on hand-made read-backs.

use shared::ingest::format::Format;
use shared::plan::batching::is_loadable_key;

use super::*;

/// Object mode stays CSV-only: the template notifies on exactly the CSV suffixes, and each
/// is a key the worker loads as CSV. (JSON Lines and DynamoDB JSON keys load in prefix jobs; the other
/// loadable suffixes are not notified.)
#[test]
fn the_loadable_suffixes_are_the_csv_keys_the_worker_loads() {
    for suffix in LOADABLE_SUFFIXES {
        let key = format!("data/a{suffix}");
        assert!(is_loadable_key(&key), "{suffix}");
        assert_eq!(Format::of_key(&key), Some(Format::Csv), "{suffix}");
    }
    for other in [
        "a.txt",
        "a.json.bz2",
        "a.gz",
        "a.zst",
        "a.csv.bz2",
        "_SUCCESS",
    ] {
        assert!(!is_loadable_key(other), "{other}");
    }
}

const COORDINATOR: &str = "arn:aws:lambda:us-east-1:123456789012:function:stack-Coordinator";

/// A stack with a coordinator, the given notification and schedule, read back as
/// deploy.py prints it.
fn stack(notification: serde_json::Value, schedule: serde_json::Value) -> Manifest {
    let credentials =
        serde_json::json!({"access_key_id": "a", "secret_access_key": "s", "session_token": null});
    serde_json::from_value(serde_json::json!({
        "stack": "stack", "endpoint": "http://127.0.0.1:1", "region": "us-east-1",
        "resource_count": 19, "outputs": {},
        "parameters": {"TriggerMode": "object", "StuckJobThresholdSeconds": "3600"},
        "admin": credentials, "input_bucket": "input", "bucket_notification": notification,
        "bucket_versioning": "Enabled",
        "functions": {"CoordinatorFunction": {
            "logical_id": "CoordinatorFunction", "name": "stack-Coordinator", "arn": COORDINATOR,
            "binary": "coordinator", "bootstrap": "/nowhere", "runtime": null, "handler": null,
            "architectures": [], "timeout_seconds": 900, "memory_mb": 512, "environment": {},
            "role_arn": "arn:aws:iam::123456789012:role/r", "trust_policy": {},
            "policies": {"inline": {}, "managed": {}}, "event_source_mappings": []}},
        "credentials": {}, "queues": {}, "schedules": [schedule],
    }))
    .expect("a manifest")
}

fn configuration(suffix_rules: &[serde_json::Value]) -> serde_json::Value {
    let configs: Vec<serde_json::Value> = suffix_rules
        .iter()
        .enumerate()
        .map(|(i, rules)| {
            serde_json::json!({"Id": format!("n{i}"), "Events": ["s3:ObjectCreated:*"],
                "LambdaFunctionArn": COORDINATOR, "Filter": {"Key": {"FilterRules": rules}}})
        })
        .collect();
    serde_json::json!({ "LambdaFunctionConfigurations": configs })
}

fn suffix(value: &str) -> serde_json::Value {
    serde_json::json!([{"Name": "suffix", "Value": value}])
}

fn schedule(target: &str, input: &str, state: &str) -> serde_json::Value {
    serde_json::json!({"rule": "stuck", "expression": "rate(5 minutes)", "state": state,
        "target_arn": target, "input": input})
}

fn good_schedule() -> serde_json::Value {
    schedule(
        COORDINATOR,
        r#"{"check_stuck_jobs": {"older_than_seconds": 3600}}"#,
        "ENABLED",
    )
}

#[test]
fn one_notification_per_loadable_suffix_passes() {
    let notification = configuration(&LOADABLE_SUFFIXES.map(suffix));
    let manifest = stack(notification, good_schedule());
    assert_eq!(object_mode_notification(&manifest), Vec::<String>::new());
    assert_eq!(schedules(&manifest), Vec::<String>::new());
}

#[test]
fn object_mode_notifications_that_miss_repeat_or_widen_a_suffix_are_findings() {
    let unfiltered = serde_json::json!([]);
    let with_prefix = serde_json::json!([{"Name": "prefix", "Value": "in/"}, {"Name": "suffix", "Value": ".csv.zst"}]);
    let notification = configuration(&[
        suffix(".csv"),
        suffix(".csv"),
        suffix(".gz"),
        unfiltered,
        with_prefix,
    ]);
    let findings = object_mode_notification(&stack(notification, good_schedule())).join(
        "
",
    );
    for expected in [
        "2 notifications for .csv uploads",
        "no notification for .csv.gz uploads",
        "no notification for .csv.zst uploads",
        r#"suffix ".gz", which is not a loadable suffix"#,
        "notification n3 is filtered by [], not by one suffix",
        "notification n4 is filtered by",
    ] {
        assert!(
            findings.contains(expected),
            "{expected:?} missing from:
{findings}"
        );
    }
}

#[test]
fn a_notification_to_another_function_or_event_is_a_finding() {
    let mut notification = configuration(&LOADABLE_SUFFIXES.map(suffix));
    notification["LambdaFunctionConfigurations"][0]["LambdaFunctionArn"] = "arn:other".into();
    notification["LambdaFunctionConfigurations"][1]["Events"] =
        serde_json::json!(["s3:ObjectRemoved:*"]);
    notification["QueueConfigurations"] = serde_json::json!([]);
    let findings = object_mode_notification(&stack(notification, good_schedule())).join(
        "
",
    );
    assert!(
        findings.contains(r#"n0 invokes "arn:other", not the coordinator"#),
        "{findings}"
    );
    assert!(
        findings.contains(r#"n1 is for {"s3:ObjectRemoved:*"}"#),
        "{findings}"
    );
    assert!(
        findings.contains("also notifies through QueueConfigurations"),
        "{findings}"
    );
}

#[test]
fn a_schedule_with_another_target_input_or_state_is_a_finding() {
    let notification = configuration(&LOADABLE_SUFFIXES.map(suffix));
    for (schedule, expected) in [
        (
            schedule(
                "arn:other",
                r#"{"check_stuck_jobs": {"older_than_seconds": 3600}}"#,
                "ENABLED",
            ),
            "targets arn:other, not the coordinator",
        ),
        (
            schedule(
                COORDINATOR,
                r#"{"check_stuck_jobs": {"older_than_seconds": 60}}"#,
                "ENABLED",
            ),
            "is not the stuck-job check at StuckJobThresholdSeconds (Some(3600))",
        ),
        (
            schedule(
                COORDINATOR,
                r#"{"check_stuck_job": {"older_than_seconds": 3600}}"#,
                "ENABLED",
            ),
            "the coordinator reads it as Err(",
        ),
        (
            schedule(
                COORDINATOR,
                r#"{"check_stuck_jobs": {"older_than_seconds": 3600}}"#,
                "DISABLED",
            ),
            r#"is Some("DISABLED"), not ENABLED"#,
        ),
    ] {
        let findings = schedules(&stack(notification.clone(), schedule)).join(
            "
",
        );
        assert!(
            findings.contains(expected),
            "{expected:?} missing from:
{findings}"
        );
    }
}

#[test]
fn a_queue_that_keeps_messages_less_than_14_days_is_a_finding() {
    let mut manifest = stack(serde_json::json!({}), good_schedule());
    let queue = |retention: u64| -> super::super::manifest::DeployedQueue {
        serde_json::from_value(serde_json::json!({"url": "u", "arn": "a",
            "visibility_timeout_seconds": 720, "retention_seconds": retention, "redrive": null}))
        .expect("a queue")
    };
    manifest
        .queues
        .insert("BatchQueue".into(), queue(4 * 24 * 3600));
    manifest
        .queues
        .insert("BatchDeadLetterQueue".into(), queue(MAX_RETENTION_SECONDS));
    let findings = retention(&manifest);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(
        findings[0].starts_with("BatchQueue keeps messages 345600 s"),
        "{findings:?}"
    );
    manifest
        .queues
        .insert("BatchQueue".into(), queue(MAX_RETENTION_SECONDS));
    assert_eq!(retention(&manifest), Vec::<String>::new());
}

#[test]
fn an_existing_records_table_is_loaded_into_and_never_created() {
    let with = |created: &[&str], output: &str, env: &str| {
        let mut manifest = stack(serde_json::json!({}), good_schedule());
        manifest
            .parameters
            .insert("ExistingRecordsTable".into(), "theirs".into());
        manifest.created_tables = created.iter().map(|t| t.to_string()).collect();
        manifest
            .outputs
            .insert("RecordsTableName".into(), output.into());
        for f in manifest.functions.values_mut() {
            f.environment.insert("RECORDS_TABLE".into(), env.into());
        }
        records_table(&manifest)
    };
    assert_eq!(
        with(&["JobsTable"], "theirs", "theirs"),
        Vec::<String>::new()
    );
    let created = with(&["JobsTable", "RecordsTable"], "theirs", "theirs");
    assert_eq!(
        created,
        ["ExistingRecordsTable names theirs, yet the stack created its own RecordsTable"]
    );
    let elsewhere = with(&["JobsTable"], "theirs", "stack-RecordsTable");
    assert_eq!(elsewhere.len(), 1, "{elsewhere:?}");
    assert!(elsewhere[0].contains("RECORDS_TABLE"), "{elsewhere:?}");
    // Without the parameter the stack must have made its own.
    let mut own = stack(serde_json::json!({}), good_schedule());
    own.created_tables = vec!["JobsTable".into()];
    assert_eq!(records_table(&own), ["the stack created no RecordsTable"]);
}

#[test]
fn additional_tables_reach_every_function_and_the_iam_table_names_each() {
    let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/orders";
    let mut manifest = stack(serde_json::json!({}), good_schedule());
    manifest.created_tables = vec!["RecordsTable".into()];
    manifest
        .parameters
        .insert("AdditionalRecordsTableArns".into(), arn.into());
    let findings = records_table(&manifest);
    assert!(!findings.is_empty(), "functions without the variable");
    assert!(
        findings
            .iter()
            .all(|f| f.contains("ADDITIONAL_RECORDS_TABLES")),
        "{findings:?}"
    );
    for f in manifest.functions.values_mut() {
        f.environment
            .insert("ADDITIONAL_RECORDS_TABLES".into(), arn.into());
    }
    assert_eq!(records_table(&manifest), Vec::<String>::new());
    assert_eq!(
        resolve_all(&manifest, "AdditionalRecordsTables"),
        Some(vec![arn.to_owned()])
    );
    manifest
        .parameters
        .insert("AdditionalRecordsTableArns".into(), String::new());
    assert_eq!(
        resolve_all(&manifest, "AdditionalRecordsTables"),
        Some(vec![])
    );
}
