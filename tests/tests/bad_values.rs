//! Bad values never sink good rows (on the local servers): a value DynamoDB would refuse is
//! rejected alone while typing; one that slips past typing anyway is isolated from its
//! BatchWriteItem; composite keys never collide; strings land byte for byte; rejected
//! objects count against the job's tolerance.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{TestEnv, default_servers};
use shared::aws::DynamoTable;
use shared::contract::completion::CompletionEvent;
use shared::contract::messages::JobRequest;
use shared::contract::rejects::RejectTolerance;
use shared::contract::schema::Schema;
use shared::ingest::item::Value;
use shared::ingest::typing::Item;
use shared::job::model::JobStatus;
use shared::port::table::{RecordTable, WriteError};

const HEADER: &str = "timestamp,temp,humidity,measure_point";

/// `files` objects of `rows` rows each under `data/`: object `f` holds point `P{f}`, row `r`
/// second `r` of 2025-11-26 00:MM:SS (so every row has its own key). `poison` replaces the
/// temp of one (file, row).
async fn upload(env: &TestEnv, files: usize, rows: usize, poison: Option<(usize, usize, &str)>) {
    for f in 0..files {
        let mut text = format!("{HEADER}\n");
        for r in 0..rows {
            let temp = match poison {
                Some((pf, pr, value)) if (pf, pr) == (f, r) => value.to_owned(),
                _ => format!("{}.5", r % 30),
            };
            text.push_str(&format!(
                "2025-11-26 00:{:02}:{:02} UTC,{temp},50,P{f}\n",
                r / 60,
                r % 60
            ));
        }
        env.put(&format!("data/f{f:02}.csv"), &text).await;
    }
}

#[tokio::test]
async fn one_1e200_in_a_20_file_prefix_rejects_that_row_alone_and_the_other_999_land() {
    let env = TestEnv::new(default_servers(), "one-1e200").await;
    upload(&env, 20, 50, Some((7, 23, "1e200"))).await;
    let mut pipeline = env.pipeline();
    pipeline.coordinator.batch_size = 100; // one batch: one bad value used to sink all of it
    let job = pipeline
        .run(JobRequest::new(&env.resources.bucket, "data/"), |_| {})
        .await
        .unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.error);
    assert_eq!(job.totals.rows_written, 999);
    assert_eq!(job.totals.rows_rejected, 1);
    assert_eq!(job.totals.files, 20);
    assert_eq!(env.record_count().await, 999);
    let records = env.reject_records(&job).await;
    let [record] = records.as_slice() else {
        panic!("one reject expected: {records:?}")
    };
    // Row 23 of the data is line 25 (the header is line 1).
    assert_eq!((record.key.as_str(), record.line), ("data/f07.csv", 25));
    assert!(
        record.reason.starts_with("column temp: number overflow")
            && record
                .reason
                .contains("9.9999999999999999999999999999999999999E+125"),
        "{}",
        record.reason
    );
    assert!(
        record.raw.contains("1e200"),
        "the raw text is in the report: {}",
        record.raw
    );
}

/// The test-only hook: the real DynamoDB adapter, with one row's temp turned into a number
/// the server refuses after typing has passed it.
struct PoisonOne {
    inner: DynamoTable,
    point: String,
    timestamp: String,
}

#[async_trait::async_trait]
impl RecordTable for PoisonOne {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        let text =
            |item: &Item, name: &str| item.get(name).and_then(Value::as_text).map(str::to_owned);
        let mut items: Vec<Item> = items.iter().map(|item| (*item).clone()).collect();
        for item in &mut items {
            if text(item, "measure_point").as_deref() == Some(&self.point)
                && text(item, "timestamp").as_deref() == Some(&self.timestamp)
            {
                item.insert("temp".into(), Value::N("1e200".into()));
            }
        }
        self.inner
            .batch_put(table, &items.iter().collect::<Vec<_>>())
            .await
    }
}

#[tokio::test]
async fn a_row_only_the_server_refuses_is_isolated_from_its_write_and_the_rest_lands() {
    let env = TestEnv::new(default_servers(), "isolate").await;
    upload(&env, 20, 50, None).await;
    let poison = PoisonOne {
        inner: DynamoTable::new(env.clients.dynamodb.clone()),
        point: "P12".into(),
        timestamp: "2025-11-26T00:00:40Z".into(),
    };
    let job = env
        .pipeline()
        .run_with_writes(
            JobRequest::new(&env.resources.bucket, "data/"),
            std::sync::Arc::new(poison),
            |_| {},
        )
        .await
        .unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.error);
    assert_eq!(
        (job.totals.rows_written, job.totals.rows_rejected),
        (999, 1)
    );
    assert_eq!(env.record_count().await, 999);
    let records = env.reject_records(&job).await;
    let [record] = records.as_slice() else {
        panic!("one reject expected: {records:?}")
    };
    assert_eq!((record.key.as_str(), record.line), ("data/f12.csv", 42));
    // dynalite's words, as DynamoDB's.
    assert_eq!(
        record.reason,
        "DynamoDB refused the item: Number overflow. Attempting to store a number with \
         magnitude larger than supported range"
    );
}

#[tokio::test]
async fn composite_keys_whose_parts_hold_the_separator_land_as_two_items() {
    let env = TestEnv::new(default_servers(), "composite").await;
    let table = format!("{}-composite", env.resources.tables.records);
    devkit::provision::ensure_table(&env.clients.dynamodb, &table, "site", Some("a#b"))
        .await
        .unwrap();
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "columns": [
            {"name": "site", "type": "string"},
            {"name": "a", "type": "string"},
            {"name": "b", "type": "string"},
            {"name": "v", "type": "number"}
        ],
        "partition_key": ["site"],
        "sort_key": ["a", "b"]
    }))
    .unwrap();
    env.put("c/pair.csv", "site,a,b,v\nS,a#b,c,1\nS,a,b#c,2\n")
        .await;
    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    let mut request = JobRequest::new(&env.resources.bucket, "c/");
    request.schema = Some(schema);
    let job = pipeline.run(request, |_| {}).await.unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.error);
    assert_eq!((job.totals.rows_written, job.totals.rows_duplicate), (2, 0));
    assert_eq!(env.count_items(&table).await, 2);
    for (sort, v) in [("a\\#b#c", "1"), ("a#b\\#c", "2")] {
        let item = env
            .clients
            .dynamodb
            .get_item()
            .table_name(&table)
            .key("site", AttributeValue::S("S".into()))
            .key("a#b", AttributeValue::S(sort.into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no item with sort key {sort}"));
        assert_eq!(item["v"], AttributeValue::N(v.into()), "{sort}");
    }
}

#[tokio::test]
async fn strings_land_byte_for_byte() {
    let env = TestEnv::new(default_servers(), "strings").await;
    let shapes: [(&str, &str); 5] = [
        ("padded", "\"  x \""),
        ("spaces", "\"   \""),
        ("newline", "\"\n\""),
        ("crlf", "\"a\r\nb\""),
        ("unquoted", "  y  "),
    ];
    let mut text = format!("{HEADER},note\r\n");
    for (i, (point, note)) in shapes.iter().enumerate() {
        text.push_str(&format!("2025-11-26 00:00:0{i} UTC,1,2,{point},{note}\r\n"));
    }
    env.put("s/shapes.csv", &text).await;
    let job = env
        .pipeline()
        .run(JobRequest::new(&env.resources.bucket, "s/"), |_| {})
        .await
        .unwrap();
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (5, 0));
    let expected = ["  x ", "   ", "\n", "a\r\nb", "  y  "];
    for (i, ((point, _), note)) in shapes.iter().zip(expected).enumerate() {
        let item: HashMap<String, AttributeValue> =
            env.item(point, &format!("2025-11-26T00:00:0{i}Z")).await;
        assert_eq!(item["note"], AttributeValue::S(note.into()), "{point}");
    }
}

#[tokio::test]
async fn a_rejected_object_under_a_count_of_0_ends_the_job_failed_after_every_good_row_lands() {
    let env = TestEnv::new(default_servers(), "tolerance").await;
    upload(&env, 3, 10, None).await;
    env.put(
        "data/no-humidity.csv",
        "timestamp,temp,measure_point\n2025-11-26 00:00:00 UTC,1,Q\n",
    )
    .await;
    let mut request = JobRequest::new(&env.resources.bucket, "data/");
    request.tolerated_rejects = Some(RejectTolerance::Count(0));
    let job = env.pipeline().run(request, |_| {}).await.unwrap();

    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.error.as_deref(),
        Some("1 objects rejected, more than the 0 tolerated")
    );
    assert_eq!((job.totals.files, job.totals.files_failed), (3, 1));
    assert_eq!(job.totals.rows_written, 30);
    assert_eq!(env.record_count().await, 30);
    let events: Vec<CompletionEvent> = env.drain(&env.provisioned.completion_queue_url).await;
    let [event] = events.as_slice() else {
        panic!("one completion event expected: {events:?}")
    };
    assert_eq!(event.status, JobStatus::Failed);
    assert_eq!(
        (event.totals.files_failed, event.totals.rows_rejected),
        (1, 0)
    );
    assert_eq!(event.tolerated_rejects, Some(RejectTolerance::Count(0)));
    assert_eq!(event.error, job.error);
}
