//! Large compressed objects on the local servers (`docs/compressed.md`): a `.csv.gz` and a
//! `.csv.zst` above the chunk size are inflated into plain parts of 64 KiB by one worker
//! whose invocations are short (the inflate step hands on), the parts loaded in parallel
//! under the object's one batch number: every row once (counted in dynalite), the job
//! COMPLETE with exact totals, the scratch objects removed. The S3 requests and bytes each
//! job asks for are counted and printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use devkit::bridge::{BridgeError, Invoke};
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::config::{CoordinatorConfig, WorkerConfig};
use shared::app::coordinator::Coordinator;
use shared::app::worker::Worker;
use shared::aws::S3Objects;
use shared::contract::messages::{BatchMessage, JobRequest, Work};
use shared::job::model::JobStatus;
use shared::port::Adapters;
use shared::port::objects::{Body, ObjectError, ObjectInfo, ObjectStore, Page, Read};
use tokio::io::AsyncWriteExt;

/// Compressed size above which an object is inflated, and decoded bytes per part.
const CHUNK: u64 = 64 << 10;

/// Added to each PUT of a part, so that the inflate step of ~20 parts outlasts one
/// invocation and hands on.
const PART_PUT_DELAY: Duration = Duration::from_millis(100);

/// One job at a time: the local DynamoDB server is the bottleneck, and two jobs at once
/// only make each slower.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// S3 requests and bytes, as the job's adapters ask for them.
#[derive(Default)]
struct Counts {
    gets: AtomicU64,
    bytes_got: AtomicU64,
    puts: AtomicU64,
    bytes_put: AtomicU64,
    heads: AtomicU64,
    lists: AtomicU64,
    deletes: AtomicU64,
}

struct Counting {
    inner: S3Objects,
    counts: Arc<Counts>,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

#[async_trait]
impl ObjectStore for Counting {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: i32,
        cursor: Option<String>,
    ) -> Result<Page, ObjectError> {
        add(&self.counts.lists, 1);
        self.inner
            .list_page(bucket, prefix, page_size, cursor)
            .await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        add(&self.counts.heads, 1);
        self.inner.head(bucket, key).await
    }

    async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError> {
        add(&self.counts.gets, 1);
        let body = self.inner.get(bucket, key, read).await?;
        add(&self.counts.bytes_got, body.size);
        Ok(body)
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        add(&self.counts.puts, 1);
        add(&self.counts.bytes_put, body.len() as u64);
        if key.contains("/inflate/") && key.contains("/part-") && !key.contains("/done/") {
            // As a multi-GB object's many parts would, inflating outlasts an invocation.
            tokio::time::sleep(PART_PUT_DELAY).await;
        }
        self.inner.put(bucket, key, body, content_type).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        add(&self.counts.deletes, 1);
        self.inner.delete(bucket, key).await
    }
}

/// The worker, each invocation given `budget` before its deadline; counts the inflate
/// step's continuations and the parts it sent.
struct ShortInvocations<'a> {
    worker: &'a Worker,
    budget: Duration,
    invocations: AtomicUsize,
    inflate_continuations: AtomicUsize,
    parts: AtomicUsize,
}

impl Invoke for ShortInvocations<'_> {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        self.invocations.fetch_add(1, Ordering::SeqCst);
        for record in &event.records {
            let body = record.body.as_deref().unwrap_or_default();
            if let Ok(batch) = serde_json::from_str::<BatchMessage>(body) {
                match &batch.work {
                    Work::Inflate(task) if task.next.is_some() => {
                        self.inflate_continuations.fetch_add(1, Ordering::SeqCst);
                    }
                    Work::InflatedPart(_) if batch.resumed.is_none() => {
                        self.parts.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            }
        }
        let deadline = tokio::time::Instant::now() + self.budget;
        Ok(self.worker.handle(event, Some(deadline)).await)
    }
}

async fn compress(bytes: &[u8], zstd: bool) -> Vec<u8> {
    if zstd {
        let mut encoder = ZstdEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    } else {
        let mut encoder = GzipEncoder::new(Vec::new());
        encoder.write_all(bytes).await.unwrap();
        encoder.shutdown().await.unwrap();
        encoder.into_inner()
    }
}

async fn inflated_on_servers(test: &str, key: &str, rows: usize, zstd: bool) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let began = Instant::now();
    let env = TestEnv::unhurried(default_servers(), test).await;
    let spec = SampleSpec::new("in/", 1, rows);
    let body = spec.body(0);
    let decoded = body.len() as u64;
    let packed = compress(body.as_bytes(), zstd).await;
    let size = packed.len() as u64;
    assert!(size > CHUNK, "{size} compressed bytes, over the threshold");
    env.put_bytes(key, packed).await;
    drop(body);

    let pipeline = env.pipeline();
    let counts = Arc::new(Counts::default());
    let adapters = Adapters {
        objects: Arc::new(Counting {
            inner: S3Objects::new(env.clients.s3.clone()),
            counts: counts.clone(),
        }),
        ..Adapters::aws(&env.clients, &pipeline.coordinator.tables.jobs)
    };
    let coordinator = Coordinator::new(
        adapters.clone(),
        CoordinatorConfig {
            range_chunk_bytes: CHUNK,
            ..pipeline.coordinator.clone()
        },
    );
    let request = JobRequest {
        job_id: Some(test.into()),
        key: Some(key.to_owned()),
        ..JobRequest::new(&env.resources.bucket, "")
    };
    let started = coordinator.start_job(request, None).await.unwrap();
    assert_eq!(
        started.listing.batches, 1,
        "one batch number for the object"
    );

    // Each invocation has 3.5 s, the last 1.5 s kept for the writes in flight: the inflate
    // step (a slowed PUT and a SendMessage per part) hands on, and so may a part.
    let worker = Worker::new(
        adapters,
        WorkerConfig {
            queue_url: Some(env.provisioned.queue_url.clone()),
            resume_margin: Duration::from_millis(1500),
            ..pipeline.worker.clone()
        },
    );
    let invoker = ShortInvocations {
        worker: &worker,
        budget: Duration::from_millis(3500),
        invocations: AtomicUsize::new(0),
        inflate_continuations: AtomicUsize::new(0),
        parts: AtomicUsize::new(0),
    };
    let loading = Instant::now();
    let job = env.deliver_to_until_final(&invoker, test).await;
    let loaded = loading.elapsed();

    let parts = invoker.parts.load(Ordering::SeqCst) as u64;
    let continuations = invoker.inflate_continuations.load(Ordering::SeqCst);
    let c = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    eprintln!(
        "{test}: {decoded} decoded bytes in {size} compressed; {parts} parts, {continuations} inflate continuations, {} invocations; loaded in {loaded:.2?} ({:.2?} with setup); S3: {} GET ({} bytes), {} PUT ({} bytes), {} HEAD, {} LIST, {} DELETE; bytes_read {}",
        invoker.invocations.load(Ordering::SeqCst),
        began.elapsed(),
        c(&counts.gets),
        c(&counts.bytes_got),
        c(&counts.puts),
        c(&counts.bytes_put),
        c(&counts.heads),
        c(&counts.lists),
        c(&counts.deletes),
        job.totals.bytes_read,
    );
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.total_batches, job.batches_done), (1, 1));
    assert!(continuations >= 1, "the inflate step handed on");
    assert!(parts >= decoded / CHUNK, "{parts} parts of {decoded} bytes");
    assert_eq!(job.totals.rows_written, spec.total_rows());
    assert_eq!(job.totals.rows_rejected + job.totals.rows_duplicate, 0);
    assert_eq!((job.totals.files, job.totals.files_failed), (1, 0));
    assert_eq!(job.totals.bytes, size, "the input, once");
    assert!(
        job.totals.bytes_read >= size + decoded - 100,
        "the object and every part read: {}",
        job.totals.bytes_read
    );
    assert_eq!(
        env.record_count().await,
        spec.total_rows(),
        "every row once"
    );
    // Spot checks across the object: the first and last rows, and every ~1/9 of the way.
    let expected = spec.expected(0);
    for index in (0..expected.len())
        .step_by(expected.len() / 9)
        .chain([expected.len() - 1])
    {
        let want = &expected[index];
        let item = env.item(&want.measure_point, &want.timestamp).await;
        assert_eq!(
            item["temp"],
            aws_sdk_dynamodb::types::AttributeValue::N(format!("{}", want.temp)),
            "row {index}"
        );
    }
    // The parts were written once each, plus their counters and the list of parts.
    assert!(c(&counts.bytes_put) >= decoded, "{}", c(&counts.bytes_put));
    let scratch = env
        .clients
        .s3
        .list_objects_v2()
        .bucket(&env.resources.bucket)
        .prefix(format!("_rejects/{test}/inflate/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        scratch.contents.unwrap_or_default().len(),
        0,
        "the scratch objects are removed"
    );
    assert!(
        c(&counts.deletes) > 2 * parts,
        "parts, counters and the list"
    );
}

#[tokio::test]
async fn a_large_csv_gz_is_inflated_into_parts_and_loads_every_row_once() {
    inflated_on_servers("inflate-gz", "big/readings.csv.gz", 33_000, false).await;
}

#[tokio::test]
async fn a_large_csv_zst_is_inflated_into_parts_and_loads_every_row_once() {
    inflated_on_servers("inflate-zst", "big/readings.csv.zst", 33_000, true).await;
}
