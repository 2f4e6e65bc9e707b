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
use shared::contract::write::WriteMode;
use shared::job::model::JobStatus;

use crate::plan::{self, PlanArgs};

/// Worker invocations at once in the local runs (as `s3-fanout run`).
const WORKERS: u64 = 4;
const BATCH_SIZE: u64 = 50;
/// BatchWriteItem calls in flight the ceiling loop is swept over (the workers run
/// WRITE_CONCURRENCY, 16, each: 64 in all); the best is the ceiling, so the pipeline is
/// never judged against a loop that was merely badly tuned.
const CEILING_IN_FLIGHT: [usize; 4] = [16, 32, 64, 128];
/// Lambda's CPU share at 512 MB (the template's worker) and at 1,769 MB (one full vCPU).
const VCPU_AT: [(u32, f64); 2] = [(512, 512.0 / 1769.0), (1769, 1.0)];

/// What the ceiling loop measured.
#[derive(Clone, Copy)]
struct Ceiling {
    rows_per_second: f64,
    /// This process's CPU per row sent (the SDK's BatchWriteItem path alone: items are
    /// built before the clock starts), the floor under the pipeline's own CPU per row.
    cpu_per_row: f64,
}

/// Rows per second the DynamoDB server takes from a lean loop: prebuilt 25-item
/// BatchWriteItem calls, `in_flight` at once, UnprocessedItems retried.
async fn write_ceiling(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    rows: usize,
    in_flight: usize,
) -> Result<Ceiling> {
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
    let cpu_before = crate::bench::usage().0;
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
        .buffer_unordered(in_flight)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Ceiling {
        rows_per_second: rows as f64 / started.elapsed().as_secs_f64(),
        cpu_per_row: (crate::bench::usage().0 - cpu_before) / rows as f64,
    })
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

/// What one local job measured.
struct LocalJob {
    /// The job's own seconds, from its ledger.
    seconds: f64,
    /// CPU seconds of this process (coordinator, SQS bridge and workers; the servers are
    /// processes of their own) while the job ran.
    cpu_seconds: f64,
    rows: u64,
    spec: SampleSpec,
    resources: Resources,
}

/// One local job of `files` x 100 rows on fresh resources, in `mode`.
async fn local_job(
    servers: &LocalAws,
    files: usize,
    run: usize,
    mode: WriteMode,
) -> Result<LocalJob> {
    let clients = servers.clients();
    let resources = Resources::named(&format!("bench-e2e-{files}-{run}-{mode:?}").to_lowercase());
    let provisioned = provision::ensure(&clients, &resources, QueueSettings::default()).await?;
    let spec = SampleSpec::new("e2e/", files, 100);
    spec.upload(&clients.s3, &resources.bucket, 64, || {})
        .await?;
    let mut pipeline = LocalPipeline::new(clients, &resources, &provisioned);
    pipeline.coordinator.batch_size = BATCH_SIZE as usize;
    pipeline.pollers = WORKERS as usize;
    pipeline.timeout = Duration::from_secs(900);
    let mut request = JobRequest::new(&resources.bucket, &spec.prefix);
    request.write.write_mode = mode;
    let before = crate::bench::usage().0;
    let job = pipeline
        .run(request, |_| {})
        .await
        .context("running a local job")?;
    let cpu_seconds = crate::bench::usage().0 - before;
    if job.status != JobStatus::Complete || job.totals.rows_written != spec.total_rows() {
        bail!(
            "the bench job ended {:?} with {} rows",
            job.status,
            job.totals.rows_written
        );
    }
    Ok(LocalJob {
        seconds: job.duration_seconds.unwrap_or_default(),
        cpu_seconds,
        rows: job.totals.rows_written,
        spec,
        resources,
    })
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
    let mut best = (0.0, 0);
    let mut ceiling_cpu = Vec::new();
    for in_flight in CEILING_IN_FLIGHT {
        let mut rates = Vec::new();
        for _ in 0..runs {
            let measured =
                write_ceiling(&clients.dynamodb, ceiling_table, 50_000, in_flight).await?;
            rates.push(measured.rows_per_second);
            ceiling_cpu.push(measured.cpu_per_row);
        }
        let rate = median(&mut rates);
        eprintln!("DynamoDB server ceiling at {in_flight} in flight: {rate:.0} rows/s");
        if rate > best.0 {
            best = (rate, in_flight);
        }
    }
    let (ceiling, ceiling_in_flight) = best;
    let ceiling_cpu_per_row = median(&mut ceiling_cpu);

    println!(
        "\nEnd to end on the local servers (prefix → SQS → {WORKERS} workers → DynamoDB → COMPLETE), batches of {BATCH_SIZE}, median of {runs} runs, against the `plan` model:\n"
    );
    println!(
        "| files x 100 rows | job seconds | rows/s | of the DynamoDB server's ceiling | plan predicts | plan error |"
    );
    println!("|---|---|---|---|---|---|");
    let mut cpu_per_row = Vec::new();
    for files in [200usize, 1_000] {
        let mut seconds = Vec::new();
        let mut page_seconds = 0.0;
        for run in 0..runs {
            let job = local_job(servers, files, run, WriteMode::Put).await?;
            page_seconds =
                list_page_seconds(&clients.s3, &job.resources.bucket, &job.spec.prefix).await?;
            seconds.push(job.seconds);
            if files == 1_000 {
                cpu_per_row.push((WriteMode::Put, job.cpu_seconds / job.rows as f64));
            }
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
        "\nDynamoDB server ceiling (lean BatchWriteItem loop, 25 items, best of {CEILING_IN_FLIGHT:?} in flight: {ceiling_in_flight}): {ceiling:.0} rows/s"
    );
    for run in 0..runs {
        let job = local_job(servers, 1_000, run, WriteMode::Insert).await?;
        cpu_per_row.push((WriteMode::Insert, job.cpu_seconds / job.rows as f64));
    }
    print_cpu_per_row(&mut cpu_per_row, runs, ceiling_cpu_per_row);
    Ok(())
}

/// CPU per row written end to end (this process: coordinator, bridge and workers; not the
/// servers), and the rows/s it allows one worker at Lambda's CPU share for its memory;
/// beside it, the ceiling loop's client CPU per row: the SDK's write path alone.
fn print_cpu_per_row(measured: &mut [(WriteMode, f64)], runs: usize, ceiling_per_row: f64) {
    println!(
        "\nCPU per row written end to end, 1,000 files x 100 rows, median of {runs} runs (coordinator, SQS bridge and {WORKERS} workers in one process; the servers excluded):\n"
    );
    let header: Vec<String> = VCPU_AT
        .iter()
        .map(|(mb, vcpu)| format!("rows/s of one worker at {mb} MB ({vcpu:.2} vCPU)"))
        .collect();
    println!("| write mode | CPU µs per row | {} |", header.join(" | "));
    println!("|---|---|{}", "---|".repeat(VCPU_AT.len()));
    for mode in [WriteMode::Put, WriteMode::Insert] {
        let mut values: Vec<f64> = measured
            .iter()
            .filter(|(m, _)| *m == mode)
            .map(|(_, v)| *v)
            .collect();
        if values.is_empty() {
            continue;
        }
        let per_row = median(&mut values);
        println!("| {mode:?} | {} |", cpu_row_cells(per_row));
    }
    println!(
        "| the ceiling loop's client (prebuilt items, SDK BatchWriteItem only; median over every in-flight count) | {} |",
        cpu_row_cells(ceiling_per_row)
    );
}

/// A CPU-per-row table's cells: µs per row, then the rows/s it allows at each CPU share.
fn cpu_row_cells(per_row: f64) -> String {
    let implied: Vec<String> = VCPU_AT
        .iter()
        .map(|(_, vcpu)| format!("{:.0}", vcpu / per_row))
        .collect();
    format!("{:.1} | {}", per_row * 1e6, implied.join(" | "))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
