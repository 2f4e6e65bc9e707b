//! `s3-fanout run`: a whole local job. Start the servers (unless `AWS_ENDPOINT_URL*` already
//! point somewhere), provision, generate sample data, run coordinator + SQS bridge + workers
//! until the job is final, and print the summary.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use devkit::pipeline::LocalPipeline;
use devkit::provision::{self, QueueSettings};
use devkit::sample::SampleSpec;
use indicatif::{ProgressBar, ProgressStyle};
use shared::contract::messages::JobRequest;
use shared::job::model::JobStatus;

use super::r#gen::{SampleArgs, upload};
use crate::summary::print_summary;
use crate::target::{TargetArgs, connect};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    sample: SampleArgs,
    /// Do not upload sample data; load whatever is under the prefix.
    #[arg(long)]
    no_gen: bool,
    /// Object keys per SQS message (one worker batch).
    #[arg(long, default_value_t = 50)]
    batch_size: usize,
    /// Concurrent worker invocations (Lambda concurrency).
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// S3 GETs in flight per worker (the semaphore).
    #[arg(long, default_value_t = 256)]
    fetch_concurrency: usize,
    /// Give up if the job is not final after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Print the final job item as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Generate one large object (files x rows rows) under PREFIX/large/ and load it as
    /// byte ranges (large-object mode) instead of many small files.
    #[arg(long)]
    large_object: bool,
    /// Range size in large-object mode, in MiB.
    #[arg(long, default_value_t = 32)]
    chunk_mib: u64,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let target = connect(&args.target).await?;
    let provisioned =
        provision::ensure(&target.clients, &target.resources, QueueSettings::default())
            .await
            .context("provisioning the bucket, queues and tables")?;
    let spec = match args.large_object {
        true => SampleSpec::new(
            &format!("{}large/", args.sample.prefix),
            1,
            args.sample.files * args.sample.rows,
        ),
        false => SampleSpec::new(&args.sample.prefix, args.sample.files, args.sample.rows),
    };
    if !args.no_gen {
        upload(&target, &spec).await?;
    }

    let mut pipeline = LocalPipeline::new(target.clients.clone(), &target.resources, &provisioned);
    pipeline.coordinator.batch_size = args.batch_size;
    pipeline.coordinator.range_chunk_bytes = args.chunk_mib.max(1) << 20;
    pipeline.worker.fetch_concurrency = args.fetch_concurrency;
    pipeline.pollers = args.workers;
    pipeline.timeout = Duration::from_secs(args.timeout);

    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} job {prefix} [{bar:30}] {pos}/{len} batches  {msg}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let request = match args.large_object {
        true => JobRequest {
            key: Some(spec.key(0)),
            ..JobRequest::new(&target.resources.bucket, "")
        },
        false => JobRequest::new(&target.resources.bucket, &args.sample.prefix),
    };
    let started = Instant::now();
    let job = pipeline
        .run(request, |job| {
            bar.set_prefix(short_id(job.job_id.as_str()));
            if job.sealed {
                bar.set_length(job.total_batches);
            }
            bar.set_position(job.batches_done);
            bar.set_message(format!("{} rows written", job.totals.rows_written));
        })
        .await
        .context("running the job")?;
    bar.finish_and_clear();
    let wall = started.elapsed();

    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        print_summary(&job, wall);
        print_batch_metrics(&pipeline.metrics.records());
    }
    if job.status != JobStatus::Complete {
        bail!("job {} ended {}", job.job_id, job.status.as_str());
    }
    if !args.no_gen {
        let generated = spec.total_rows();
        if job.totals.rows_written != generated {
            bail!(
                "rows written ({}) differ from rows generated ({generated})",
                job.totals.rows_written
            );
        }
        println!("rows written equal rows generated: {generated}");
    }
    Ok(())
}

/// What the EMF batch records say about the batches (the same records CloudWatch would get).
fn print_batch_metrics(records: &[shared::app::metrics::MetricRecord]) {
    let mut durations: Vec<f64> = records
        .iter()
        .filter(|r| r.event == "batch")
        .filter_map(|r| r.value("BatchDuration"))
        .collect();
    if durations.is_empty() {
        return;
    }
    durations.sort_by(f64::total_cmp);
    let at = |q: f64| durations[((durations.len() - 1) as f64 * q).round() as usize];
    println!(
        "  batch time      p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} batch records",
        at(0.5),
        at(0.95),
        at(1.0),
        durations.len()
    );
}

fn short_id(id: &str) -> String {
    id.chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}
