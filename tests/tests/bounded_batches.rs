//! Every unit of work bounded on the local servers: prefix batches close at a byte bound, and
//! a batch on a throttled table with a short deadline finishes across several invocations,
//! every row once, counted once with exact totals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use devkit::bridge::{BridgeError, INVOCATION_TIMEOUT, Invoke};
use devkit::counting::CountedGets;
use devkit::faults::FlakyWrites;
use devkit::provision::QueueSettings;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers, notes_csv};
use shared::app::coordinator::Coordinator;
use shared::app::worker::Worker;
use shared::aws::{DynamoTable, S3Objects};
use shared::contract::messages::{BatchMessage, JobRequest};
use shared::job::model::JobStatus;
use shared::port::Adapters;

/// A CSV's rows as (id, note).
type Rows = Vec<(String, String)>;

/// The worker, each invocation given `budget` before its deadline (Lambda's is 120 s).
struct ShortInvocations<'a> {
    worker: &'a Worker,
    budget: Duration,
    invocations: AtomicUsize,
}

impl Invoke for ShortInvocations<'_> {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        self.invocations.fetch_add(1, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + self.budget;
        Ok(self.worker.handle(event, Some(deadline)).await)
    }
}

#[tokio::test]
async fn a_batch_on_a_throttled_table_with_a_short_deadline_completes_across_invocations() {
    let env = TestEnv::new(default_servers(), "resume").await;
    let spec = SampleSpec::new("slow/", 6, 1500);
    let bytes = spec
        .upload(&env.clients.s3, &env.resources.bucket, 6, || {})
        .await
        .unwrap();
    let pipeline = env.pipeline();
    let adapters = Adapters::aws(&env.clients, &pipeline.coordinator.tables.jobs);
    let coordinator = Coordinator::new(adapters.clone(), pipeline.coordinator.clone());
    let request = JobRequest {
        job_id: Some("resume".into()),
        ..JobRequest::new(&env.resources.bucket, "slow/")
    };
    let started = coordinator.start_job(request, None).await.unwrap();
    assert_eq!(started.listing.batches, 1, "one batch of six objects");

    // Every second BatchWriteItem comes back with half its items unprocessed (a throttled
    // table); each invocation has 3.2 s, of which the last 2.4 s are kept for the writes in
    // flight, so a part decodes for ~0.8 s. (At 1.6 s and 1.2 s a part on a machine busy with
    // a build could not write its rows in flight in time.)
    let flaky = Arc::new(FlakyWrites::new(
        DynamoTable::new(env.clients.dynamodb.clone()),
        2,
    ));
    let worker_config = shared::app::config::WorkerConfig {
        queue_url: Some(env.provisioned.queue_url.clone()),
        resume_margin: Duration::from_millis(2400),
        write_concurrency: 2,
        ..pipeline.worker.clone()
    };
    let worker = Worker::new(
        Adapters {
            records: flaky.clone(),
            ..adapters
        },
        worker_config,
    );
    let invoker = ShortInvocations {
        worker: &worker,
        budget: Duration::from_millis(3200),
        invocations: AtomicUsize::new(0),
    };
    let job = env.deliver_to_until_final(&invoker, "resume").await;

    let invocations = invoker.invocations.load(Ordering::SeqCst);
    eprintln!(
        "{invocations} invocations, {} items unprocessed",
        flaky.unprocessed.load(Ordering::Relaxed)
    );
    assert!(invocations >= 3, "{invocations} invocations");
    assert!(
        flaky.unprocessed.load(Ordering::Relaxed) > 0,
        "the table pushed back"
    );
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(
        (job.total_batches, job.batches_done),
        (1, 1),
        "counted once"
    );
    assert_eq!(
        job.totals.rows_written,
        spec.total_rows(),
        "the sum of every part"
    );
    assert_eq!(job.totals.rows_rejected + job.totals.rows_duplicate, 0);
    assert_eq!((job.totals.files, job.totals.files_failed), (6, 0));
    assert_eq!(job.totals.bytes, bytes, "the parts add up to the input");
    assert_eq!(
        job.totals.bytes_read, bytes,
        "no part re-read what another loaded"
    );
    assert_eq!(
        env.record_count().await,
        spec.total_rows(),
        "every row once"
    );
    for file in [0, 5] {
        let stored = env.readings_of(&spec.expected(file)[0].measure_point).await;
        assert_eq!(stored, spec.expected(file), "file {file}, value for value");
    }
}

#[tokio::test]
async fn a_prefix_of_mixed_sizes_is_batched_by_bytes_and_loads_every_row_once() {
    let env = TestEnv::new(default_servers(), "by-bytes").await;
    // 40 small files (10 rows, ~450 B) and 4 big ones (2,000 rows, ~90 KB), whose measure
    // points (files 100..104) differ from the small ones'.
    let small = SampleSpec::new("mixed/a-", 40, 10);
    let big = SampleSpec::new("mixed/b-", 104, 2000);
    small
        .upload(&env.clients.s3, &env.resources.bucket, 8, || {})
        .await
        .unwrap();
    for file in 100..104 {
        env.put(&big.key(file), &big.body(file)).await;
    }
    let listed = env
        .clients
        .s3
        .list_objects_v2()
        .bucket(&env.resources.bucket)
        .prefix("mixed/")
        .send()
        .await
        .unwrap();
    let sizes: BTreeMap<String, u64> = (listed.contents())
        .iter()
        .map(|o| (o.key().unwrap().to_owned(), o.size().unwrap() as u64))
        .collect();
    assert_eq!(sizes.len(), 44);

    let mut pipeline = env.pipeline();
    pipeline.coordinator.batch_size = 100;
    pipeline.coordinator.batch_bytes = 8 << 10;
    let adapters = Adapters::aws(&env.clients, &pipeline.coordinator.tables.jobs);
    let coordinator = Coordinator::new(adapters.clone(), pipeline.coordinator.clone());
    let request = JobRequest {
        job_id: Some("by-bytes".into()),
        ..JobRequest::new(&env.resources.bucket, "mixed/")
    };
    let started = coordinator.start_job(request, None).await.unwrap();
    let batches: Vec<BatchMessage> = env.drain(&env.provisioned.queue_url).await;
    assert_eq!(batches.len() as u64, started.listing.batches);
    let mut keys: Vec<String> = Vec::new();
    for batch in &batches {
        let bytes: u64 = batch.work.keys().iter().map(|k| sizes[k]).sum();
        assert!(
            bytes <= 8 << 10 || batch.work.keys().len() == 1,
            "batch {} holds {bytes} bytes in {} keys",
            batch.batch,
            batch.work.keys().len()
        );
        keys.extend(batch.work.keys().iter().cloned());
    }
    keys.sort();
    assert_eq!(
        keys,
        sizes.keys().cloned().collect::<Vec<_>>(),
        "every key once"
    );
    // The key bound (100) alone would have made one batch; each big file is alone, and the
    // small ones fill batches of at most 8 KiB.
    assert!(
        started.listing.batches >= 4 + 2,
        "{} batches",
        started.listing.batches
    );
    for batch in &batches {
        if batch.work.keys().iter().any(|k| k.starts_with("mixed/b-")) {
            assert_eq!(
                batch.work.keys().len(),
                1,
                "a big file is a batch of its own"
            );
        }
    }

    for batch in &batches {
        env.send(batch.to_json()).await;
    }
    let worker = Worker::new(adapters, pipeline.worker.clone());
    let job = env.deliver_until_final(&worker, "by-bytes").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let rows = small.total_rows() + 4 * 2000;
    assert_eq!(job.totals.rows_written, rows);
    assert_eq!(job.totals.files, 44);
    assert_eq!(job.totals.bytes, sizes.values().sum::<u64>());
    assert_eq!(env.record_count().await, rows, "every row once");
}

#[tokio::test]
async fn a_prefix_of_small_files_and_two_big_csvs_splits_the_big_ones_and_loads_every_row_once() {
    use futures::StreamExt;
    // Queues as deployed: hidden longer than an invocation can run, so no batch is delivered
    // again because it ran long (TestEnv::new's 2 s made most ranges run two or three times).
    let settings = QueueSettings {
        visibility_timeout: 6 * INVOCATION_TIMEOUT,
        max_receive_count: 3,
    };
    let env = TestEnv::with_queues(default_servers(), "prefix-split", settings).await;
    let table = format!("{}-notes", env.resources.bucket);
    devkit::provision::ensure_table(&env.clients.dynamodb, &table, "id", None)
        .await
        .unwrap();
    let schema: shared::contract::schema::Schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string", "nullable": true},
        ],
    }))
    .unwrap();
    // (key, body, its rows as (id, note))
    let mut files: Vec<(String, String, Rows)> = (0..200)
        .map(|i| {
            let (body, rows) = notes_csv(&format!("s{i:03}"), 200, i % 2 == 0);
            (format!("mix/small-{i:03}.csv"), body, rows)
        })
        .collect();
    for (key, name, quoted) in [
        ("mix/big-quoted.csv", "q", true),
        ("mix/big-plain.csv", "p", false),
    ] {
        let (body, rows) = notes_csv(name, 32 << 20, quoted);
        files.push((key.to_owned(), body, rows));
    }
    futures::stream::iter(&files)
        .for_each_concurrent(16, |(key, body, _)| env.put(key, body))
        .await;
    let input: u64 = files.iter().map(|(_, body, _)| body.len() as u64).sum();
    let rows: u64 = files.iter().map(|(_, _, rows)| rows.len() as u64).sum();

    let mut pipeline = env.pipeline();
    let gets = CountedGets::new(Arc::new(S3Objects::new(env.clients.s3.clone())));
    pipeline.objects = Some(gets.store());
    pipeline.coordinator.range_chunk_bytes = 1 << 20;
    pipeline.coordinator.batch_size = 50;
    pipeline.records_table(&table);
    pipeline.pollers = 4;
    let request = JobRequest {
        schema: Some(schema),
        ..JobRequest::new(&env.resources.bucket, "mix/")
    };
    let job = pipeline.run(request, |_| {}).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let ranges: u64 = files[200..]
        .iter()
        .map(|(_, body, _)| (body.len() as u64 - 9).div_ceil(1 << 20))
        .sum();
    assert_eq!(
        job.total_batches,
        4 + 2 * ranges,
        "4 key batches of small files, a scan and a parse per range of the big ones"
    );
    assert_eq!(job.totals.rows_written, rows);
    assert_eq!(job.totals.rows_rejected + job.totals.rows_duplicate, 0);
    let ratio = job.totals.bytes_read as f64 / input as f64;
    eprintln!(
        "bytes read {} for {input} bytes: {ratio:.3}x",
        job.totals.bytes_read
    );
    assert!(ratio <= 2.1, "{ratio:.3}x the input read");
    // Every byte S3 sent for the job's GETs is accounted for: counted once in bytes_read
    // (the split objects' ranges twice, scan and parse; the small files once; the header
    // windows as planning), or read again by a delivery of a batch already counted, which
    // its `batch` metric says. moto hands one message to two concurrent receives now and
    // then, as SQS may (at-least-once), so that share is not always zero.
    let sent = |prefix| gets.sent_under(prefix);
    let read_again: u64 = pipeline
        .metrics
        .records()
        .iter()
        .filter(|r| r.event == "batch" && r.value("BatchesAlreadyCounted") == Some(1.0))
        .filter_map(|r| r.value("BytesRead"))
        .map(|bytes| bytes as u64)
        .sum();
    eprintln!(
        "S3 sent: big-quoted {} big-plain {} small {}; bytes_read {}, planning {}, read again {read_again}",
        sent("mix/big-quoted"),
        sent("mix/big-plain"),
        sent("mix/small-"),
        job.totals.bytes_read,
        job.planning_bytes_read
    );
    assert_eq!(
        sent("mix/"),
        job.totals.bytes_read + read_again,
        "what S3 sent is bytes_read plus what deliveries of counted batches read again"
    );
    assert_eq!(job.planning_bytes_read, 2 * (64 << 10));
    assert!(
        job.totals.bytes_read >= input,
        "every byte read at least once"
    );
    assert_eq!(env.count_items(&table).await, rows, "every row once");
    // Spot checks in the quoted big file, quoted newlines included, and in a small one.
    let quoted = &files[200].2;
    env.assert_notes(
        &table,
        quoted.iter().step_by(quoted.len() / 7).chain(&files[0].2),
    )
    .await;
}
