//! The worker engine against real local servers: bad input is counted and reported row by
//! row while every valid row lands; user schemas; reject tolerance; throttling and
//! UnprocessedItems injected around the real servers still land every row.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aws_sdk_dynamodb::types::AttributeValue;
use devkit::faults::{FlakyWrites, with_slowdowns};
use devkit::provision::ensure_table;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::worker::Worker;
use shared::aws::DynamoTable;
use shared::contract::messages::JobRequest;
use shared::contract::rejects::{RejectRecord, RejectTolerance};
use shared::contract::schema::Schema;
use shared::fan_in::Ledger as _;
use shared::job::model::{JobStatus, Recorded};
use shared::port::Adapters;

const HEADER: &str = "timestamp,temp,humidity,measure_point";

/// Every record of every rejects report of a job.
#[tokio::test]
async fn good_and_bad_files_give_exact_counts_and_a_report_naming_each_bad_row() {
    let env = TestEnv::new(default_servers(), "bad-input").await;
    let big = "x".repeat(410 * 1024);
    env.put("in/good.csv", &format!("{HEADER},site_note\n2025-11-26 00:00:01 UTC,1.5,40,G,north\n2025-11-26 00:00:02 UTC,2.5,41,G,\n")).await;
    env.put(
        "in/mixed.csv",
        &format!(
            "{HEADER}\n\
             2025-11-26 00:00:01 UTC,1,2,M\n\
             2025-11-26 00:00:02 UTC,warm,2,M\n\
             2025-11-26 00:00:03 UTC,1,2\n\
             yesterday,1,2,M\n\
             2025-11-26 00:00:05 UTC,1,2,\n\
             2025-11-26 00:00:06 UTC,1,2,M\n"
        ),
    )
    .await;
    env.put(
        "in/no-humidity.csv",
        "timestamp,temp,measure_point\n2025-11-26 00:00:01 UTC,1,N\n",
    )
    .await;
    env.put("in/empty.csv", "").await;
    env.put("in/header-only.csv", &format!("{HEADER}\n")).await;
    env.put(
        "in/crlf-bom.csv",
        &format!("\u{feff}{HEADER},comment\r\n\r\n2025-11-26 00:00:01 UTC,3,4,C,\"two\r\nlines\"\r\n2025-11-26 00:00:02 UTC,3,4,C,\"a, \"\"quoted\"\" word\"\r\n"),
    )
    .await;
    env.put(
        "in/dup.csv",
        &format!("{HEADER}\n2025-11-26 00:00:01 UTC,1,2,D\n2025-11-26 00:00:01 UTC,9,9,D\n"),
    )
    .await;
    env.put(
        "in/big.csv",
        &format!("{HEADER},blob\n2025-11-26 00:00:01 UTC,1,2,B,{big}\n"),
    )
    .await;
    let mut invalid_utf8 =
        format!("{HEADER}\n2025-11-26 00:00:01 UTC,1,2,U\n2025-11-26 00:00:02 UTC,1,2,U")
            .into_bytes();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, b'\n']);
    env.clients
        .s3
        .put_object()
        .bucket(&env.resources.bucket)
        .key("in/utf8.csv")
        .body(invalid_utf8.into())
        .send()
        .await
        .unwrap();
    env.put("in/notes.txt", "not csv").await;

    let mut pipeline = env.pipeline();
    pipeline.coordinator.batch_size = 3;
    let job = pipeline
        .run(JobRequest::new(&env.resources.bucket, "in/"), |_| {})
        .await
        .unwrap();

    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.files_skipped, 1, "notes.txt");
    assert_eq!(job.totals.files, 8);
    assert_eq!(job.totals.files_failed, 1, "no-humidity.csv");
    // good 2 + mixed 2 + crlf 2 + dup 1 (+1 duplicate) + utf8 1
    assert_eq!(job.totals.rows_written, 8);
    assert_eq!(job.totals.rows_duplicate, 1);
    // mixed 4 + big 1 + utf8 1
    assert_eq!(job.totals.rows_rejected, 6);

    let records = env.reject_records(&job).await;
    let summary: Vec<(&str, u64)> = records.iter().map(|r| (r.key.as_str(), r.line)).collect();
    assert_eq!(
        summary,
        vec![
            ("in/big.csv", 2),
            ("in/mixed.csv", 3),
            ("in/mixed.csv", 4),
            ("in/mixed.csv", 5),
            ("in/mixed.csv", 6),
            ("in/no-humidity.csv", 0),
            ("in/utf8.csv", 3),
        ]
    );
    let reason = |key: &str, line: u64| {
        records
            .iter()
            .find(|r| r.key == key && r.line == line)
            .unwrap()
            .reason
            .clone()
    };
    assert!(reason("in/big.csv", 2).contains("400 KB"));
    // Reasons name the column, never the value (the report's raw text has that).
    assert!(reason("in/mixed.csv", 3).starts_with("column temp: invalid number"));
    assert!(!reason("in/mixed.csv", 3).contains("warm"));
    assert_eq!(reason("in/mixed.csv", 4), "expected 4 fields, found 3");
    assert!(reason("in/mixed.csv", 5).starts_with("column timestamp: invalid timestamp"));
    assert_eq!(
        reason("in/mixed.csv", 6),
        "column measure_point: empty key field"
    );
    assert!(reason("in/no-humidity.csv", 0).contains("humidity"));
    assert_eq!(
        reason("in/utf8.csv", 3),
        "column measure_point: invalid UTF-8"
    );
    let mixed_raw = &records
        .iter()
        .find(|r| r.key == "in/mixed.csv" && r.line == 3)
        .unwrap()
        .raw;
    assert_eq!(mixed_raw, "2025-11-26 00:00:02 UTC,warm,2,M");
    assert!(
        records
            .iter()
            .find(|r| r.key == "in/big.csv")
            .unwrap()
            .raw
            .len()
            <= 1024
    );

    // Every column is stored: extras as strings, quoted newlines and quotes intact.
    let good = env.item("G", "2025-11-26T00:00:01Z").await;
    assert_eq!(good["site_note"], AttributeValue::S("north".into()));
    assert!(
        !env.item("G", "2025-11-26T00:00:02Z")
            .await
            .contains_key("site_note")
    );
    let crlf = env.item("C", "2025-11-26T00:00:01Z").await;
    assert_eq!(crlf["comment"], AttributeValue::S("two\r\nlines".into()));
    assert_eq!(
        env.item("C", "2025-11-26T00:00:02Z").await["comment"],
        AttributeValue::S("a, \"quoted\" word".into())
    );
    // The later of two rows with one key wins.
    assert_eq!(
        env.item("D", "2025-11-26T00:00:01Z").await["temp"],
        AttributeValue::N("9".into())
    );
    assert_eq!(env.record_count().await, 8);
}

#[tokio::test]
async fn rejects_beyond_the_tolerance_fail_the_job_but_every_valid_row_lands() {
    let env = TestEnv::new(default_servers(), "tolerance").await;
    env.put("t/a.csv", &format!("{HEADER}\n2025-11-26 00:00:01 UTC,1,2,T\n2025-11-26 00:00:02 UTC,x,2,T\n2025-11-26 00:00:03 UTC,y,2,T\n")).await;
    let mut request = JobRequest::new(&env.resources.bucket, "t/");
    request.tolerated_rejects = Some(RejectTolerance::Count(1));
    let job = env.pipeline().run(request.clone(), |_| {}).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.error.as_deref(),
        Some("2 rows rejected, more than the 1 tolerated")
    );
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (1, 2));
    assert_eq!(env.record_count().await, 1);

    request.tolerated_rejects = Some(RejectTolerance::Percent(70.0));
    let job = env.pipeline().run(request, |_| {}).await.unwrap();
    assert_eq!(
        job.status,
        JobStatus::Complete,
        "2 of 3 is 66.7%, within 70%"
    );
}

#[tokio::test]
async fn a_user_schema_with_a_composite_sort_key_loads_typed_items() {
    let env = TestEnv::new(default_servers(), "user-schema").await;
    let table = format!("{}-meters", env.resources.bucket);
    ensure_table(&env.clients.dynamodb, &table, "site", Some("read_at#meter"))
        .await
        .unwrap();
    let request: JobRequest =
        serde_json::from_str(include_str!("../../events/prefix-job-custom-schema.json")).unwrap();
    env.put(
        "meters/m.csv",
        "meter,site,kwh,read_at,estimated,extra\n\
         7,Kyiv,12.50,2025-11-26 00:00:00 UTC,true,x\n\
         8,Kyiv,0.1,2025-11-26T00:00:00Z,,\n\
         9,Kyiv,abc,2025-11-26 00:00:00 UTC,false,\n",
    )
    .await;
    let mut request = JobRequest {
        bucket: env.resources.bucket.clone(),
        ..request
    };
    request.tolerated_rejects = None;
    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    let job = pipeline.run(request, |_| {}).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (2, 1));
    assert!(job.schema.is_some(), "the job item records its schema");

    let item = env
        .clients
        .dynamodb
        .get_item()
        .table_name(&table)
        .key("site", AttributeValue::S("Kyiv".into()))
        .key(
            "read_at#meter",
            AttributeValue::S("2025-11-26T00:00:00Z#7".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the row keyed by its composite sort key");
    // Sent as written ("12.50"); DynamoDB stores numbers normalised.
    assert_eq!(item["kwh"], AttributeValue::N("12.5".into()));
    assert_eq!(item["meter"], AttributeValue::N("7".into()));
    assert_eq!(item["estimated"], AttributeValue::Bool(true));
    assert_eq!(
        item["read_at"],
        AttributeValue::S("2025-11-26T00:00:00Z".into())
    );
    assert_eq!(item["extra"], AttributeValue::S("x".into()));
}

#[tokio::test]
async fn an_invalid_schema_is_refused_before_any_work() {
    let env = TestEnv::new(default_servers(), "bad-schema").await;
    let mut request = JobRequest::new(&env.resources.bucket, "x/");
    request.schema = Some(Schema {
        sort_key: vec!["nope".into()],
        ..Schema::sensor()
    });
    request.job_id = Some("job-bad-schema".into());
    let error = env.pipeline().run(request, |_| {}).await.unwrap_err();
    assert_eq!(
        shared::report(&error),
        "the request's schema is invalid: key column \"nope\" is not a declared column"
    );
    let ledger = env.ledger();
    assert!(
        ledger
            .get(&"job-bad-schema".into())
            .await
            .unwrap()
            .is_none(),
        "no job was created"
    );
}

/// UnprocessedItems on every other BatchWriteItem and a 503 SlowDown on every fourth GET:
/// retried with backoff, the GET limit cut, and still every row lands exactly once.
#[tokio::test]
async fn throttled_writes_and_s3_slowdowns_still_land_every_row() {
    let env = TestEnv::new(default_servers(), "throttling").await;
    let spec = SampleSpec::new("th/", 40, 100);
    spec.upload(&env.clients.s3, &env.resources.bucket, 16, || {})
        .await
        .unwrap();
    let ledger = env.ledger();
    let job = env.sealed_job("job-throttling", 2, 40).await;

    let mut clients = env.clients.clone();
    let (s3, injected) = with_slowdowns(&clients.s3, 4);
    clients.s3 = s3;
    let flaky = Arc::new(FlakyWrites::new(
        DynamoTable::new(env.clients.dynamodb.clone()),
        2,
    ));
    let config = env.pipeline().worker;
    let adapters = Adapters {
        records: flaky.clone(),
        ..Adapters::aws(&clients, &config.tables.jobs)
    };
    let worker = Worker::new(adapters, config);
    for batch in 0..2 {
        let keys = (batch * 20..batch * 20 + 20).map(|i| spec.key(i)).collect();
        let processed = worker
            .process(&env.batch(&job.job_id, batch as u64, keys), None)
            .await
            .unwrap()
            .counted();
        assert!(matches!(processed, Some(Recorded::Counted(_))));
    }

    let done = ledger.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Complete);
    assert_eq!(done.totals.rows_written, 4_000);
    assert_eq!(env.record_count().await, 4_000);
    assert!(
        injected.load(Ordering::Relaxed) >= 10,
        "SlowDowns were injected"
    );
    assert_eq!(
        done.totals.s3_throttles,
        injected.load(Ordering::Relaxed),
        "each one was seen"
    );
    assert!(
        done.totals.write_retries > 0,
        "UnprocessedItems were retried"
    );
    assert!(
        worker.fetch_limit().report().cuts >= 1,
        "the GET limit backed off"
    );
    let points: BTreeSet<String> = (0..40)
        .map(|i| spec.expected(i)[0].measure_point.clone())
        .collect();
    for point in points.iter().take(3) {
        assert_eq!(env.readings_of(point).await.len(), 100);
    }
}

/// An object deleted between listing and loading is a permanent failure: reported and
/// counted, not retried until the dead-letter queue.
#[tokio::test]
async fn a_vanished_object_is_reported_and_the_batch_completes() {
    let env = TestEnv::new(default_servers(), "vanished").await;
    let spec = SampleSpec::new("v/", 1, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 1, || {})
        .await
        .unwrap();
    let ledger = env.ledger();
    let job = env.sealed_job("job-vanished", 1, 2).await;
    let worker = env.worker(env.pipeline().worker);
    let batch = env.batch(&job.job_id, 0, vec![spec.key(0), "v/gone.csv".into()]);
    worker.process(&batch, None).await.unwrap();

    let done = ledger.get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(done.status, JobStatus::Complete);
    assert_eq!(
        (
            done.totals.files,
            done.totals.files_failed,
            done.totals.rows_written
        ),
        (1, 1, 10)
    );
    let report = env
        .get(&format!("_rejects/{}/batch-000000.jsonl", job.job_id))
        .await;
    let record: RejectRecord = serde_json::from_str(report.lines().next().unwrap()).unwrap();
    assert_eq!((record.key.as_str(), record.line), ("v/gone.csv", 0));
    assert!(record.reason.contains("NoSuchKey"), "{}", record.reason);
}
