//! End to end on the local servers (prefix → DynamoDB → COMPLETE) against the DynamoDB
//! server's own BatchWriteItem ceiling, and the `plan` model's time predictions checked
//! against those runs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use devkit::pipeline::LocalPipeline;
use devkit::provision::{self, QueueSettings, Resources};
use devkit::sample::SampleSpec;
use devkit::servers::LocalAws;
use futures::{StreamExt, TryStreamExt, stream};
use shared::contract::messages::JobRequest;
use shared::job::model::JobStatus;

use crate::plan::{self, PlanArgs};

/// Worker invocations at once in the local runs (as `s3-fanout run`).
const WORKERS: u64 = 4;
const BATCH_SIZE: u64 = 50;
/// BatchWriteItem calls in flight in the ceiling loop: the workers' WRITE_CONCURRENCY (16) each.
const WRITES_IN_FLIGHT: usize = 16 * WORKERS as usize;

/// Rows per second the DynamoDB server takes from a lean loop: prebuilt 25-item
/// BatchWriteItem calls, 16 in flight, UnprocessedItems retried.
async fn write_ceiling(ddb: &aws_sdk_dynamodb::Client, table: &str, rows: usize) -> Result<f64> {
    let item = |i: usize| -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                "measure_point".into(),
                AttributeValue::S(format!("Ceiling_{}", i % 100)),
            ),
            (
                "timestamp".into(),
                AttributeValue::S(format!("2025-11-26T00:00:{i:08}Z")),
            ),
            ("temp".into(), AttributeValue::N("21.5".into())),
            ("humidity".into(), AttributeValue::N("55.1".into())),
        ])
    };
    let batches: Vec<Vec<WriteRequest>> = (0..rows)
        .map(|i| {
            let put = PutRequest::builder().set_item(Some(item(i))).build()?;
            Ok(WriteRequest::builder().put_request(put).build())
        })
        .collect::<Result<Vec<_>>>()?
        .chunks(25)
        .map(<[WriteRequest]>::to_vec)
        .collect();
    let started = Instant::now();
    stream::iter(batches)
        .map(|batch| async move {
            let mut pending = batch;
            while !pending.is_empty() {
                let out = ddb
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(table))
                    .unwrap_or_default();
            }
            Ok::<_, anyhow::Error>(())
        })
        .buffer_unordered(WRITES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

/// Seconds per ListObjectsV2 page of 1,000 keys under `prefix`.
async fn list_page_seconds(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<f64> {
    let started = Instant::now();
    let objects = shared::aws::S3Objects::new(s3.clone());
    let mut lister = shared::app::coordinator::PrefixLister::new(&objects, bucket, prefix, 1000);
    let mut pages = 0;
    while lister.next_page().await?.is_some() {
        pages += 1;
    }
    Ok(started.elapsed().as_secs_f64() / f64::from(pages.max(1)))
}

/// One local job of `files` x 100 rows on fresh resources; its ledger seconds.
async fn local_job(
    servers: &LocalAws,
    files: usize,
    run: usize,
) -> Result<(f64, SampleSpec, Resources)> {
    let clients = servers.clients();
    let resources = Resources::named(&format!("bench-e2e-{files}-{run}"));
    let provisioned = provision::ensure(&clients, &resources, QueueSettings::default()).await?;
    let spec = SampleSpec::new("e2e/", files, 100);
    spec.upload(&clients.s3, &resources.bucket, 64, || {})
        .await?;
    let mut pipeline = LocalPipeline::new(clients, &resources, &provisioned);
    pipeline.coordinator.batch_size = BATCH_SIZE as usize;
    pipeline.pollers = WORKERS as usize;
    pipeline.timeout = Duration::from_secs(900);
    let job = pipeline
        .run(JobRequest::new(&resources.bucket, &spec.prefix), |_| {})
        .await
        .context("running a local job")?;
    if job.status != JobStatus::Complete || job.totals.rows_written != spec.total_rows() {
        bail!(
            "the bench job ended {:?} with {} rows",
            job.status,
            job.totals.rows_written
        );
    }
    Ok((job.duration_seconds.unwrap_or_default(), spec, resources))
}

/// The end-to-end table and the plan check. `files_per_second` is the read path's rate
/// measured on one thread in the same bench run.
pub async fn e2e_bench(servers: &LocalAws, files_per_second: f64, runs: usize) -> Result<()> {
    let clients = servers.clients();
    let ceiling_table = "bench-write-ceiling";
    provision::ensure_table(
        &clients.dynamodb,
        ceiling_table,
        "measure_point",
        Some("timestamp"),
    )
    .await?;
    let mut ceilings = Vec::new();
    for _ in 0..runs {
        ceilings.push(write_ceiling(&clients.dynamodb, ceiling_table, 50_000).await?);
    }
    let ceiling = median(&mut ceilings);
    eprintln!("DynamoDB server ceiling: {ceiling:.0} rows/s (median of {runs})");

    println!(
        "\nEnd to end on the local servers (prefix → SQS → {WORKERS} workers → DynamoDB → COMPLETE), batches of {BATCH_SIZE}, median of {runs} runs, against the `plan` model:\n"
    );
    println!(
        "| files x 100 rows | job seconds | rows/s | of the DynamoDB server's ceiling | plan predicts | plan error |"
    );
    println!("|---|---|---|---|---|---|");
    for files in [200usize, 1_000] {
        let mut seconds = Vec::new();
        let mut page_seconds = 0.0;
        for run in 0..runs {
            let (s, spec, resources) = local_job(servers, files, run).await?;
            page_seconds = list_page_seconds(&clients.s3, &resources.bucket, &spec.prefix).await?;
            seconds.push(s);
        }
        let measured = median(&mut seconds);
        let rows = files as f64 * 100.0;
        // The model with this machine's measured rates: the workers share its CPU with the
        // servers, so together they read no faster than the one-thread rate.
        let predicted = plan::plan(&PlanArgs {
            objects: files as u64,
            rows_per_object: 100,
            batch_size: BATCH_SIZE,
            concurrency: WORKERS,
            files_per_worker_second: files_per_second / WORKERS as f64,
            rows_written_per_worker_second: ceiling,
            table_write_units: ceiling,
            list_page_seconds: page_seconds,
            ..PlanArgs::default()
        });
        println!(
            "| {files} | {measured:.2} | {:.0} | {:.0}% | {:.2} | {:+.0}% |",
            rows / measured,
            100.0 * rows / measured / ceiling,
            predicted.wall_seconds,
            100.0 * (predicted.wall_seconds - measured) / measured
        );
    }
    println!(
        "\nDynamoDB server ceiling (lean BatchWriteItem loop, 25 items x {WRITES_IN_FLIGHT} in flight): {ceiling:.0} rows/s"
    );
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
