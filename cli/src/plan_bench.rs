//! The planning table of `s3-fanout bench`: objects enqueued per second when a job is
//! planned from a LIST of its prefix (one coordinator, page after page) and from an S3
//! Inventory report of the same objects (the data files counted and emitted by workers in
//! parallel, composed once by the coordinator), on the local servers. The key batches are
//! left unloaded: a stand-in worker counts their keys and deletes them, so only planning is
//! timed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use devkit::bridge::{BridgeError, ControlInvoker, Invoke, SqsBridge};
use devkit::pipeline::LocalPipeline;
use devkit::provision::{self, QueueSettings, Resources};
use devkit::sample::SampleSpec;
use devkit::servers::LocalAws;
use shared::app::coordinator::Coordinator;
use shared::app::metrics::MemorySink;
use shared::app::worker::Worker;
use shared::contract::inventory::InventoryOptions;
use shared::contract::messages::{BatchMessage, JobRequest, Work};
use shared::fan_in::Ledger as _;
use shared::ingest::inventory_writer::WrittenFormat;
use shared::port::Adapters;

/// Worker invocations at once for the inventory's count and emit steps (as `s3-fanout run`).
const WORKERS: usize = 4;

/// The batch queue's consumer while planning is timed: inventory steps go to the real
/// worker, key batches only have their keys counted (and are deleted).
struct PlanningWorker<'a> {
    worker: &'a Worker,
    keys_enqueued: AtomicU64,
}

impl Invoke for PlanningWorker<'_> {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        let (steps, key_batches): (Vec<_>, Vec<_>) =
            event.records.into_iter().partition(|record| {
                let body = record.body.as_deref().unwrap_or_default();
                serde_json::from_str::<BatchMessage>(body)
                    .is_ok_and(|m| matches!(m.work, Work::Inventory(_)))
            });
        for record in &key_batches {
            let body = record.body.as_deref().unwrap_or_default();
            if let Ok(message) = serde_json::from_str::<BatchMessage>(body) {
                let keys = message.work.keys().len() as u64;
                self.keys_enqueued.fetch_add(keys, Ordering::Relaxed);
            }
        }
        if steps.is_empty() {
            return Ok(SqsBatchResponse::default());
        }
        let mut inventory_steps = SqsEvent::default();
        inventory_steps.records = steps;
        self.worker.invoke(inventory_steps).await
    }
}

/// Plans `objects` one-row objects both ways, the report in data files of `per_file`.
pub async fn planning_bench(servers: &LocalAws, objects: usize, per_file: usize) -> Result<()> {
    let clients = servers.clients();
    let resources = Resources::named("bench-planning");
    let provisioned = provision::ensure(&clients, &resources, QueueSettings::default()).await?;
    let bucket = resources.bucket.clone();
    let spec = SampleSpec::new("planning/", objects, 1);
    let started = Instant::now();
    spec.upload(&clients.s3, &bucket, 64, || {}).await?;
    eprintln!(
        "uploaded {objects} objects in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let manifest = devkit::inventory::upload_inventory(
        &clients.s3,
        &bucket,
        &spec,
        per_file,
        WrittenFormat::Csv,
    )
    .await?;
    let pipeline = LocalPipeline::new(clients.clone(), &resources, &provisioned);
    let adapters = Adapters::aws(&clients, &resources.tables.jobs);
    let ledger = adapters.ledger.clone();
    // Their metric records go to memory: the bench's stdout is its tables.
    let metrics = Arc::new(MemorySink::default());
    let coordinator = Coordinator::new(adapters.clone(), pipeline.coordinator.clone())
        .with_metrics(metrics.clone());
    let worker = Worker::new(adapters, pipeline.worker.clone()).with_metrics(metrics);
    let consumer = PlanningWorker {
        worker: &worker,
        keys_enqueued: AtomicU64::new(0),
    };
    let control = ControlInvoker {
        coordinator: &coordinator,
        budget: None,
    };
    let mut batches = SqsBridge::new(
        &clients.sqs,
        &pipeline.coordinator.queue_url,
        &pipeline.queue_arn,
        &consumer,
    );
    batches.pollers = WORKERS;
    let control_queue = (pipeline.coordinator.control_queue_url.clone()).unwrap_or_default();
    let compose = SqsBridge::new(
        &clients.sqs,
        &control_queue,
        &pipeline.control_queue_arn,
        &control,
    );

    // LIST-driven: one coordinator lists and enqueues; the stand-in drains the queue.
    let list_request = JobRequest {
        job_id: Some("planning-list".into()),
        ..JobRequest::new(&bucket, &spec.prefix)
    };
    let list = async {
        let started = Instant::now();
        let job = coordinator.start_job(list_request, None).await?;
        let seconds = started.elapsed().as_secs_f64();
        anyhow::Ok((seconds, job.listing.batches))
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until = || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|&stop| stop).await;
        }
    };
    let timed = async {
        let result = list.await;
        // The LIST job's key batches drain before the report's job starts.
        wait_for(|| consumer.keys_enqueued.load(Ordering::Relaxed) >= objects as u64).await?;
        stop.send_replace(true);
        result
    };
    let (listed, ()) = tokio::join!(timed, batches.run_until(until()));
    let (list_seconds, list_batches) = listed?;
    consumer.keys_enqueued.store(0, Ordering::Relaxed);

    // Inventory-driven: count and emit in parallel, composed once.
    let inventory_request = JobRequest {
        job_id: Some("planning-inventory".into()),
        inventory: InventoryOptions {
            inventory: Some(manifest),
            ..InventoryOptions::default()
        },
        ..JobRequest::new(&bucket, "")
    };
    stop.send_replace(false);
    let timed = async {
        let started = Instant::now();
        coordinator.start_job(inventory_request, None).await?;
        wait_for(|| consumer.keys_enqueued.load(Ordering::Relaxed) >= objects as u64).await?;
        let seconds = started.elapsed().as_secs_f64();
        stop.send_replace(true);
        anyhow::Ok(seconds)
    };
    let (inventory_seconds, (), ()) = tokio::join!(
        timed,
        batches.run_until(until()),
        compose.run_until(until())
    );
    let inventory_seconds = inventory_seconds?;
    let job = (ledger.get(&"planning-inventory".into()).await?)
        .context("the inventory job is in the ledger")?;
    if !job.sealed || job.files_listed != objects as u64 {
        bail!(
            "the inventory job planned {} of {objects} objects",
            job.files_listed
        );
    }
    let data_files = objects.div_ceil(per_file.max(1));
    println!(
        "\nPlanning {objects} objects (no rows loaded; key batches of {}), local servers, {WORKERS} workers for the report's steps:\n",
        pipeline.coordinator.batch_size
    );
    println!("| planned from | steps in parallel | seconds | objects enqueued per second |");
    println!("|---|---|---|---|");
    println!(
        "| LIST of the prefix ({list_batches} batches) | 1 (page after page) | {list_seconds:.2} | {:.0} |",
        objects as f64 / list_seconds
    );
    println!(
        "| S3 Inventory report, {data_files} gzip CSV data files | {WORKERS} (count, compose, emit) | {inventory_seconds:.2} | {:.0} |",
        objects as f64 / inventory_seconds
    );
    Ok(())
}

/// Polls `done` until it holds (at most 5 minutes: a planning run is seconds here).
async fn wait_for(done: impl Fn() -> bool) -> Result<()> {
    let started = Instant::now();
    while !done() {
        if started.elapsed() > Duration::from_secs(300) {
            bail!("planning did not finish in 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
