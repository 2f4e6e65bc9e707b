//! Write control on the local servers: a job capped at R write units per second writes at R
//! across four worker instances and `plan` predicts its time; each write mode does what it
//! says to an item that existed before the job and stays idempotent when a batch is
//! delivered again after a crash; empty values and TTL land as the schema says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use devkit::bridge::SqsBridge;
use devkit::provision::QueueSettings;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::coordinator::Coordinator;
use shared::app::metrics::MemorySink;
use shared::app::worker::{Worker, WorkerError};
use shared::aws::DynamoTable;
use shared::contract::messages::{BatchMessage, JobRequest};
use shared::contract::schema::Schema;
use shared::contract::write::{WriteMode, WriteRate};
use shared::fan_in::Ledger;
use shared::ingest::item::Item;
use shared::ingest::typing::size::item_size;
use shared::job::model::{Job, JobStatus, Recorded};
use shared::plan::cost::{PlanInput, plan};
use shared::port::Adapters;
use shared::port::table::{RecordTable, WriteError};

/// What reached the table: write units stored, and when the first write began and the
/// last one ended.
#[derive(Default)]
struct Meter {
    units: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

struct Metered {
    inner: DynamoTable,
    meter: Arc<Mutex<Meter>>,
}

#[async_trait::async_trait]
impl RecordTable for Metered {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        let started = Instant::now();
        let units: u64 = items
            .iter()
            .map(|i| item_size(i).div_ceil(1024).max(1) as u64)
            .sum();
        let unprocessed = self.inner.batch_put(table, items).await?;
        let left: u64 = unprocessed
            .iter()
            .map(|i| item_size(i).div_ceil(1024).max(1) as u64)
            .sum();
        let mut meter = self.meter.lock().unwrap();
        meter.units += units - left;
        meter.first = Some(meter.first.map_or(started, |f| f.min(started)));
        meter.last = Some(Instant::now());
        Ok(unprocessed)
    }
}

/// 20,000 rows capped at 1,000 write units per second, four worker instances (each paces
/// itself to 1,000 / 4) taking one batch of 2,500 rows at a time (two each: few handoffs
/// between batches, which the pacer does not credit): the table sees 1,000 units per second
/// within 10%, and `plan` predicts the job's ~20 s within 30%.
#[tokio::test]
async fn a_capped_job_writes_at_the_cap_across_four_workers_and_plan_predicts_its_time() {
    const CAP: f64 = 1_000.0;
    const WORKERS: usize = 4;
    // Batches take ~10 s: longer than the default test visibility timeout.
    let settings = QueueSettings {
        visibility_timeout: Duration::from_secs(60),
        max_receive_count: 3,
    };
    let env = TestEnv::with_queues(default_servers(), "write-cap", settings).await;
    let spec = SampleSpec::new("capped/", 200, 100);
    spec.upload(&env.clients.s3, &env.resources.bucket, 32, || {})
        .await
        .unwrap();

    let pipeline = env.pipeline();
    let mut coordinator_config = pipeline.coordinator.clone();
    coordinator_config.batch_size = 25;
    let adapters = Adapters::aws(&env.clients, &env.resources.tables.jobs);
    let coordinator = Coordinator::new(adapters.clone(), coordinator_config);
    let mut worker_config = pipeline.worker.clone();
    worker_config.max_concurrency = WORKERS;
    let meter = Arc::new(Mutex::new(Meter::default()));
    let metrics = Arc::new(MemorySink::default());
    let workers: Vec<Worker> = (0..WORKERS)
        .map(|_| {
            let records = Metered {
                inner: DynamoTable::new(env.clients.dynamodb.clone()),
                meter: meter.clone(),
            };
            let adapters = Adapters {
                records: Arc::new(records),
                ..adapters.clone()
            };
            Worker::new(adapters, worker_config.clone()).with_metrics(metrics.clone())
        })
        .collect();

    let mut request = JobRequest::new(&env.resources.bucket, &spec.prefix);
    request.write.max_write_rate = Some(WriteRate::Units(CAP));
    let started = coordinator.start_job(request, None).await.unwrap();
    assert_eq!(started.listing.batches, 8);
    let job = run_to_the_end(&env, &workers, &started.job_id).await;

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 20_000);
    assert_eq!(job.write.write_units_per_second, Some(CAP));
    assert_eq!(
        job.totals.write_units, 20_000,
        "sensor items are 1 unit each"
    );
    let meter = meter.lock().unwrap();
    let window = (meter.last.unwrap() - meter.first.unwrap()).as_secs_f64();
    let rate = meter.units as f64 / window;
    // moto's SQS now and then hands one message to two concurrent receives (as SQS may):
    // that batch is written twice, paced both times, and counted once. Its second delivery
    // says so in its `batch` metric, with the rows (one unit each) it wrote again.
    let written_again: u64 = (metrics.records().iter())
        .filter(|r| r.event == "batch" && r.value("BatchesAlreadyCounted") == Some(1.0))
        .filter_map(|r| r.value("RowsWritten"))
        .map(|rows| rows as u64)
        .sum();
    assert_eq!(meter.units, 20_000 + written_again);
    assert!(
        (rate - CAP).abs() <= 0.1 * CAP,
        "measured {rate:.0} units/s over {window:.1} s against a cap of {CAP}"
    );

    // Planned for the work done: a batch delivered twice is 25 objects more.
    let predicted = plan(&PlanInput {
        objects: 200 + written_again / 100,
        rows_per_object: 100,
        item_bytes: 80,
        batch_size: 25,
        concurrency: WORKERS as u64,
        max_write_rate: Some(CAP),
        ..PlanInput::default()
    });
    let measured = job.duration_seconds.unwrap();
    assert!(
        (predicted.wall_seconds - measured).abs() <= 0.3 * measured,
        "plan predicted {:.1} s, the job took {measured:.1} s",
        predicted.wall_seconds
    );
    eprintln!(
        "cap {CAP}: measured {rate:.0} units/s over {window:.1} s; job {measured:.1} s, plan {:.1} s",
        predicted.wall_seconds
    );
}

/// Runs one bridge per worker, one message per invocation (the template's BatchSize), until
/// the job is final.
async fn run_to_the_end(
    env: &TestEnv,
    workers: &[Worker],
    job_id: &shared::job::model::JobId,
) -> Job {
    let bridges: Vec<_> = workers
        .iter()
        .map(|worker| {
            let mut bridge = SqsBridge::new(
                &env.clients.sqs,
                &env.provisioned.queue_url,
                &env.provisioned.queue_arn,
                worker,
            );
            bridge.pollers = 1;
            bridge.batch_size = 1;
            bridge
        })
        .collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ledger = env.ledger();
    let watch = async {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let job = ledger.get(job_id).await.unwrap().unwrap();
            if job.status.is_final() || Instant::now() > deadline {
                stop.send_replace(true);
                return job;
            }
        }
    };
    let run = futures::future::join_all(bridges.iter().map(|bridge| {
        let mut stopped = stopped.clone();
        bridge.run_until(async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        })
    }));
    let (job, _) = tokio::join!(watch, run);
    job
}

const HEADER: &str = "timestamp,temp,humidity,measure_point";

/// Five rows of point `P`, seconds 1..=5, temp = the second.
fn five_rows() -> String {
    let mut text = format!("{HEADER}\n");
    for s in 1..=5 {
        text.push_str(&format!("2025-11-26 00:00:0{s} UTC,{s},50,P\n"));
    }
    text
}

fn at(second: u32) -> String {
    format!("2025-11-26T00:00:0{second}Z")
}

/// An item of point `P` at `second`, as if loaded before the job, with an attribute no
/// CSV row has.
async fn existing_item(env: &TestEnv, second: u32) {
    env.clients
        .dynamodb
        .put_item()
        .table_name(&env.resources.tables.records)
        .item("measure_point", AttributeValue::S("P".into()))
        .item("timestamp", AttributeValue::S(at(second)))
        .item("temp", AttributeValue::N("99".into()))
        .item("note", AttributeValue::S("kept".into()))
        .send()
        .await
        .unwrap();
}

async fn find(env: &TestEnv, second: u32) -> Option<HashMap<String, AttributeValue>> {
    env.clients
        .dynamodb
        .get_item()
        .table_name(&env.resources.tables.records)
        .key("measure_point", AttributeValue::S("P".into()))
        .key("timestamp", AttributeValue::S(at(second)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
}

/// The batch is written, then counting fails (the ledger is unreachable); the redelivery to
/// a healthy worker counts it, and one more delivery changes nothing. Returns the job.
async fn crash_then_redeliver(env: &TestEnv, batch: &BatchMessage) -> Job {
    let mut broken = env.pipeline().worker;
    broken.tables.jobs = "no-such-jobs-table".into();
    let crashed = env.worker(broken).process(batch, None).await;
    assert!(matches!(crashed, Err(WorkerError::Job(_))), "{crashed:?}");
    let worker = env.worker(env.pipeline().worker);
    let counted = worker.process(batch, None).await.unwrap().counted();
    assert!(matches!(counted, Some(Recorded::Counted(_))), "{counted:?}");
    let again = worker.process(batch, None).await.unwrap().counted();
    assert!(
        matches!(again, Some(Recorded::AlreadyCounted(_))),
        "{again:?}"
    );
    let job = env.ledger().get(&batch.job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    job
}

async fn mode_batch(env: &TestEnv, name: &str, mode: WriteMode, csv: &str) -> BatchMessage {
    let key = format!("{name}/rows.csv");
    env.put(&key, csv).await;
    let job = env.sealed_job(&format!("job-{name}"), 1, 1).await;
    let mut batch = env.batch(&job.job_id, 0, vec![key]);
    batch.write.write_mode = mode;
    batch
}

#[tokio::test]
async fn an_insert_leaves_an_existing_item_alone_and_counts_its_own_redelivered_rows_as_written() {
    let env = TestEnv::new(default_servers(), "mode-insert").await;
    existing_item(&env, 3).await;
    let batch = mode_batch(&env, "insert", WriteMode::Insert, &five_rows()).await;
    let job = crash_then_redeliver(&env, &batch).await;
    // The crashed delivery wrote 4 rows; the redelivery found them as its own, and the key
    // that held an item before the job as existing: not a reject.
    assert_eq!(
        (
            job.totals.rows_written,
            job.totals.rows_existing,
            job.totals.rows_rejected
        ),
        (4, 1, 0)
    );
    let kept = find(&env, 3).await.unwrap();
    assert_eq!(kept["temp"], AttributeValue::N("99".into()));
    assert_eq!(kept["note"], AttributeValue::S("kept".into()));
    assert_eq!(
        find(&env, 5).await.unwrap()["temp"],
        AttributeValue::N("5".into())
    );
    assert_eq!(env.record_count().await, 5);
}

#[tokio::test]
async fn an_update_merges_into_the_existing_item_and_a_delete_removes_listed_keys() {
    let env = TestEnv::new(default_servers(), "mode-update-delete").await;
    existing_item(&env, 3).await;
    let batch = mode_batch(&env, "update", WriteMode::Update, &five_rows()).await;
    let job = crash_then_redeliver(&env, &batch).await;
    assert_eq!((job.totals.rows_written, job.totals.rows_existing), (5, 0));
    let merged = find(&env, 3).await.unwrap();
    assert_eq!(
        merged["temp"],
        AttributeValue::N("3".into()),
        "the row's value"
    );
    assert_eq!(
        merged["note"],
        AttributeValue::S("kept".into()),
        "the item's own"
    );
    assert_eq!(merged["humidity"], AttributeValue::N("50".into()));
    assert_eq!(env.record_count().await, 5);

    // A delete's CSV needs only the keys; a key that holds nothing is no error.
    let keys = "measure_point,timestamp\nP,2025-11-26 00:00:02 UTC\nP,2025-11-26 00:00:03 UTC\n\
                P,2025-11-26 00:00:09 UTC\n";
    let batch = mode_batch(&env, "delete", WriteMode::Delete, keys).await;
    let job = crash_then_redeliver(&env, &batch).await;
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (3, 0));
    assert!(find(&env, 2).await.is_none() && find(&env, 3).await.is_none());
    assert_eq!(env.record_count().await, 3);
}

#[tokio::test]
async fn an_update_of_a_300_column_row_merges_every_column_within_the_expression_limits() {
    // One SET of 300 clauses is over DynamoDB's 4 KB expression limit: the row is merged in
    // several calls on its key, and the item's own attributes stay.
    let env = TestEnv::new(default_servers(), "mode-update-wide").await;
    existing_item(&env, 3).await;
    let extra: Vec<String> = (0..300).map(|c| format!("column_{c:03}")).collect();
    let mut csv = format!("{HEADER},{}\n", extra.join(","));
    for s in [3, 4] {
        let values: Vec<String> = (0..300).map(|c| format!("v{s}-{c}")).collect();
        csv.push_str(&format!(
            "2025-11-26 00:00:0{s} UTC,{s},50,P,{}\n",
            values.join(",")
        ));
    }
    let batch = mode_batch(&env, "update-wide", WriteMode::Update, &csv).await;
    let job = crash_then_redeliver(&env, &batch).await;
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (2, 0));
    for s in [3, 4] {
        let item = find(&env, s).await.unwrap();
        for (c, name) in extra.iter().enumerate() {
            assert_eq!(item[name], AttributeValue::S(format!("v{s}-{c}")), "{name}");
        }
        assert_eq!(item["temp"], AttributeValue::N(s.to_string()));
    }
    let merged = find(&env, 3).await.unwrap();
    assert_eq!(
        merged["note"],
        AttributeValue::S("kept".into()),
        "the item's own"
    );
    assert_eq!(merged.len(), 4 + 300 + 1);
}

fn nullable_schema(ttl: serde_json::Value) -> Schema {
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "columns": [
            {"name": "measure_point", "type": "string"},
            {"name": "timestamp", "type": "timestamp"},
            {"name": "temp", "type": "number", "nullable": true},
            {"name": "note", "type": "string", "nullable": true, "empty": "empty_string"},
            {"name": "valid_until", "type": "integer", "nullable": true},
        ],
        "partition_key": ["measure_point"],
        "sort_key": ["timestamp"],
        "empty_values": "null",
        "ttl": ttl,
    }))
    .unwrap();
    schema.validate().unwrap();
    schema
}

#[tokio::test]
async fn empty_values_and_ttl_land_as_the_schema_says() {
    let env = TestEnv::new(default_servers(), "ttl-empty").await;
    let csv = "measure_point,timestamp,temp,note,valid_until\n\
               P,2025-11-26 00:00:01 UTC,,,1764125773\n\
               P,2025-11-26 00:00:02 UTC,5,hi,\n";
    let mut batch = mode_batch(&env, "ttl-column", WriteMode::Put, csv).await;
    batch.schema = Some(nullable_schema(
        serde_json::json!({"attribute": "expires_at", "column": "valid_until"}),
    ));
    let job = crash_then_redeliver(&env, &batch).await;
    assert_eq!(job.totals.rows_written, 2);
    let first = find(&env, 1).await.unwrap();
    assert_eq!(
        first["temp"],
        AttributeValue::Null(true),
        "the job's policy"
    );
    assert_eq!(
        first["note"],
        AttributeValue::S(String::new()),
        "the column's"
    );
    assert_eq!(first["expires_at"], AttributeValue::N("1764125773".into()));
    let second = find(&env, 2).await.unwrap();
    assert_eq!(second["valid_until"], AttributeValue::Null(true));
    assert!(
        !second.contains_key("expires_at"),
        "no expiry without a value"
    );

    // A duration after the load, in an insert job redelivered a second later: the expiry
    // differs between the deliveries, yet the redelivery knows its own rows.
    let csv = "measure_point,timestamp\nP,2025-11-26 00:00:07 UTC\nP,2025-11-26 00:00:08 UTC\n";
    let mut batch = mode_batch(&env, "ttl-after", WriteMode::Insert, csv).await;
    batch.schema = Some(nullable_schema(
        serde_json::json!({"attribute": "expires_at", "after_seconds": 86_400}),
    ));
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut broken = env.pipeline().worker;
    broken.tables.jobs = "no-such-jobs-table".into();
    let crashed = env.worker(broken).process(&batch, None).await;
    assert!(crashed.is_err());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let worker = env.worker(env.pipeline().worker);
    worker.process(&batch, None).await.unwrap();
    let job = env.ledger().get(&batch.job_id).await.unwrap().unwrap();
    assert_eq!((job.totals.rows_written, job.totals.rows_existing), (2, 0));
    let AttributeValue::N(expiry) = &find(&env, 7).await.unwrap()["expires_at"] else {
        panic!("the expiry is a Number");
    };
    let expiry: u64 = expiry.parse().unwrap();
    assert!(
        (before + 86_400..=before + 86_402).contains(&expiry),
        "{expiry} vs {before}"
    );
}
