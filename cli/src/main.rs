//! Operator CLI. `run` does a whole local job: start the servers (unless `AWS_ENDPOINT_URL*`
//! already point somewhere), provision, generate sample data, run coordinator + SQS bridge +
//! workers until the job is final, and print the summary.

mod bench;
mod ceiling;
mod e2e_bench;
mod latency;
mod plan;

/// glibc's malloc and free were a third of the worker loop's instructions (callgrind).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use devkit::pipeline::LocalPipeline;
use devkit::provision::{self, QueueSettings, Resources};
use devkit::sample::SampleSpec;
use devkit::servers::{LocalAws, Server, ServerChoice};
use indicatif::{ProgressBar, ProgressStyle};
use shared::aws::{Clients, Endpoints};
use shared::jobs::{Job, JobStatus};
use shared::message::JobRequest;

#[derive(Parser)]
#[command(
    name = "s3-fanout",
    version,
    about = "Load CSV objects from S3 into DynamoDB, fanned out over SQS and Lambda workers."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log output: `pretty` for people, `json` as the Lambdas write it.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run one job end to end on local servers and print its summary: a prefix of many
    /// files, or (--large-object) one big object in byte ranges.
    Run(RunArgs),
    /// Upload deterministic seed-shaped CSV files (needs AWS_ENDPOINT_URL* or real AWS).
    Gen(GenArgs),
    /// Start the local servers, provision everything, print the environment, wait for Ctrl-C.
    Serve(TargetArgs),
    /// Show a job from the ledger (needs AWS_ENDPOINT_URL* or real AWS, e.g. inside `serve`).
    Status(StatusArgs),
    /// List the most recent jobs from the ledger.
    Jobs(JobsArgs),
    /// Move the batches in the dead-letter queue back to the work queue (after a fix).
    Redrive(RedriveArgs),
    /// Predict a job's wall time, requests and cost on AWS (no servers needed).
    Plan(plan::PlanArgs),
    /// Benchmark the worker's read path against the first seed's loop; prints a table.
    Bench(bench::BenchArgs),
    /// One measured bench run (started by `bench`).
    #[command(hide = true)]
    BenchChild(bench::ChildArgs),
}

#[derive(Args)]
struct TargetArgs {
    /// Stem of every resource name: bucket STEM, queue STEM-batches, tables STEM-records/-jobs.
    #[arg(long, default_value = "s3fanout-local")]
    stem: String,
    /// Local S3 server, when this command starts the servers.
    #[arg(long, default_value = "s3s-fs")]
    s3: Server,
    /// Local DynamoDB server, when this command starts the servers.
    #[arg(long, default_value = "dynalite")]
    dynamodb: Server,
}

#[derive(Args)]
struct SampleArgs {
    /// Number of CSV files.
    #[arg(long, default_value_t = 1000)]
    files: usize,
    /// Rows per file (the seed's files have 100).
    #[arg(long, default_value_t = 100)]
    rows: usize,
    /// Key prefix the files are written under and the job lists.
    #[arg(long, default_value = "data/")]
    prefix: String,
}

#[derive(Args)]
struct GenArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    sample: SampleArgs,
}

#[derive(Args)]
struct StatusArgs {
    job_id: String,
    #[command(flatten)]
    target: TargetArgs,
    /// Print the job item as JSON.
    #[arg(long)]
    json: bool,
    /// Follow a running job with a progress bar (batches, rows/s, ETA) until it ends.
    #[arg(long)]
    watch: bool,
    /// The jobs table (the stack's `JobsTableName` output on AWS); STEM-jobs otherwise.
    #[arg(long, env = "JOBS_TABLE")]
    jobs_table: Option<String>,
}

#[derive(Args)]
struct RedriveArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Dead-letter queue URL (default: the stem's, looked up by name).
    #[arg(long)]
    from: Option<String>,
    /// Work queue URL (default: the stem's, looked up by name).
    #[arg(long)]
    to: Option<String>,
    /// Most messages to move.
    #[arg(long, default_value_t = u64::MAX)]
    max: u64,
}

#[derive(Args)]
struct JobsArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// How many jobs, newest first.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Print the job items as JSON.
    #[arg(long)]
    json: bool,
    /// The jobs table (the stack's `JobsTableName` output on AWS); STEM-jobs otherwise.
    #[arg(long, env = "JOBS_TABLE")]
    jobs_table: Option<String>,
}

#[derive(Args)]
struct RunArgs {
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Gen(args) => gen_command(args).await,
            Command::Serve(args) => serve(args).await,
            Command::Status(args) => status(args).await,
            Command::Jobs(args) => jobs(args).await,
            Command::Redrive(args) => redrive(args).await,
            Command::Plan(args) => {
                let predicted = plan::plan(&args);
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&predicted)?);
                } else {
                    plan::print(&predicted, &args);
                }
                Ok(())
            }
            Command::Bench(args) => bench::bench(args).await,
            Command::BenchChild(args) => bench::child(args).await,
        }
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.compact().init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Servers this command started (stopped when dropped), or none if the environment already
/// points the SDK somewhere.
struct Target {
    clients: Clients,
    _servers: Option<LocalAws>,
    resources: Resources,
}

async fn connect(args: &TargetArgs) -> Result<Target> {
    let resources = Resources::named(&args.stem);
    if Endpoints::from_env() != Endpoints::default() {
        eprintln!("using the endpoints in AWS_ENDPOINT_URL*");
        return Ok(Target {
            clients: Clients::from_env().await,
            _servers: None,
            resources,
        });
    }
    let choice = ServerChoice {
        s3: args.s3,
        dynamodb: args.dynamodb,
    };
    let started = Instant::now();
    let servers = LocalAws::start(choice).context("starting the local AWS servers")?;
    eprintln!(
        "local servers up in {:.1}s: S3 {} ({}), SQS moto ({}), DynamoDB {} ({})",
        started.elapsed().as_secs_f64(),
        choice.s3,
        servers.endpoints.s3.as_deref().unwrap_or_default(),
        servers.endpoints.sqs.as_deref().unwrap_or_default(),
        choice.dynamodb,
        servers.endpoints.dynamodb.as_deref().unwrap_or_default(),
    );
    Ok(Target {
        clients: servers.clients(),
        _servers: Some(servers),
        resources,
    })
}

async fn run(args: RunArgs) -> Result<()> {
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
            bar.set_prefix(short_id(&job.job_id));
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

async fn upload(target: &Target, spec: &SampleSpec) -> Result<()> {
    let bar = ProgressBar::new(spec.files as u64).with_style(
        ProgressStyle::with_template("{spinner} uploading [{bar:30}] {pos}/{len} files")
            .context("progress template")?
            .progress_chars("=> "),
    );
    let started = Instant::now();
    let bytes = spec
        .upload(&target.clients.s3, &target.resources.bucket, 64, || {
            bar.inc(1)
        })
        .await
        .context("uploading sample data")?;
    bar.finish_and_clear();
    eprintln!(
        "generated {} files, {} rows, {:.1} MB under s3://{}/{} in {:.1}s",
        spec.files,
        spec.total_rows(),
        bytes as f64 / 1e6,
        target.resources.bucket,
        spec.prefix,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn gen_command(args: GenArgs) -> Result<()> {
    if Endpoints::from_env() == Endpoints::default() {
        bail!(
            "gen writes to the S3 the environment points at: run it inside `s3-fanout serve`'s environment, set AWS_ENDPOINT_URL_S3, or use `s3-fanout run`"
        );
    }
    let target = connect(&args.target).await?;
    provision::ensure(&target.clients, &target.resources, QueueSettings::default())
        .await
        .context("provisioning")?;
    upload(
        &target,
        &SampleSpec::new(&args.sample.prefix, args.sample.files, args.sample.rows),
    )
    .await
}

async fn serve(args: TargetArgs) -> Result<()> {
    let target = connect(&args).await?;
    let provisioned =
        provision::ensure(&target.clients, &target.resources, QueueSettings::default())
            .await
            .context("provisioning")?;
    if let Some(servers) = &target._servers {
        for (name, value) in servers.env() {
            println!("export {name}={value}");
        }
    }
    println!("export QUEUE_URL={}", provisioned.queue_url);
    println!("export RECORDS_TABLE={}", target.resources.tables.records);
    println!("export JOBS_TABLE={}", target.resources.tables.jobs);
    eprintln!("serving; Ctrl-C stops the servers");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(())
}

/// The ledger the environment points at (`AWS_ENDPOINT_URL*`, or real AWS).
async fn ledger_of(
    target: &TargetArgs,
    jobs_table: Option<&str>,
) -> (shared::jobs::JobLedger, String) {
    if Endpoints::from_env() == Endpoints::default() {
        eprintln!("no AWS_ENDPOINT_URL* set: reading the ledger in real AWS");
    }
    let clients = Clients::from_env().await;
    let table = jobs_table
        .map(str::to_owned)
        .unwrap_or_else(|| Resources::named(&target.stem).tables.jobs);
    (
        shared::jobs::JobLedger::new(clients.dynamodb.clone(), &table),
        table,
    )
}

async fn status(args: StatusArgs) -> Result<()> {
    let (ledger, table) = ledger_of(&args.target, args.jobs_table.as_deref()).await;
    let read = || async {
        match ledger
            .get(&args.job_id)
            .await
            .context("reading the job ledger")?
        {
            Some(job) => Ok(job),
            None => bail!("no job {} in table {table}", args.job_id),
        }
    };
    let mut job = read().await?;
    if args.watch && !job.status.is_final() {
        let bar = ProgressBar::new(job.total_batches).with_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {pos}/{len} batches  {msg}  ETA {eta}",
            )
            .context("progress template")?
            .progress_chars("=> "),
        );
        while !job.status.is_final() {
            // Before sealing the total is still growing: the bar's length follows it.
            bar.set_length(job.total_batches.max(job.batches_done));
            bar.set_position(job.batches_done);
            let seconds = running_seconds(&job).max(1e-3);
            bar.set_message(format!(
                "{} rows, {:.0} rows/s{}",
                job.totals.rows_written,
                job.totals.rows_written as f64 / seconds,
                if job.sealed { "" } else { ", still listing" }
            ));
            tokio::time::sleep(Duration::from_secs(1)).await;
            job = read().await?;
        }
        bar.finish_and_clear();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        print_summary(&job, Duration::ZERO);
    }
    Ok(())
}

async fn redrive(args: RedriveArgs) -> Result<()> {
    if Endpoints::from_env() == Endpoints::default() {
        eprintln!("no AWS_ENDPOINT_URL* set: redriving in real AWS");
    }
    let clients = Clients::from_env().await;
    let resources = Resources::named(&args.target.stem);
    let url_of = |given: Option<String>, name: String| {
        let sqs = clients.sqs.clone();
        async move {
            match given {
                Some(url) => Ok(url),
                None => sqs
                    .get_queue_url()
                    .queue_name(&name)
                    .send()
                    .await
                    .with_context(|| format!("looking up queue {name}"))
                    .map(|out| out.queue_url.unwrap_or_default()),
            }
        }
    };
    let from = url_of(args.from, resources.dead_letter_queue).await?;
    let to = url_of(args.to, resources.queue).await?;
    let moved = shared::redrive::redrive(&clients.sqs, &from, &to, args.max)
        .await
        .context("redriving")?;
    println!("moved {moved} messages from {from} to {to}");
    Ok(())
}

async fn jobs(args: JobsArgs) -> Result<()> {
    let (ledger, _) = ledger_of(&args.target, args.jobs_table.as_deref()).await;
    let jobs = ledger
        .recent_jobs(args.limit)
        .await
        .context("reading the job ledger")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<21}  {:>13}  {:>12}  {:>9}  {:<25}  {:>9}",
        "job", "status", "batches", "rows", "rejected", "started", "seconds"
    );
    for job in &jobs {
        let seconds = job.duration_seconds.unwrap_or_else(|| running_seconds(job));
        println!(
            "{:<36}  {:<21}  {:>13}  {:>12}  {:>9}  {:<25}  {:>9.1}",
            job.job_id,
            job.status.as_str(),
            format!("{}/{}", job.batches_done, job.total_batches),
            job.totals.rows_written,
            job.totals.rows_rejected,
            job.started_at,
            seconds
        );
    }
    Ok(())
}

/// Seconds since the job started, by this machine's clock.
fn running_seconds(job: &Job) -> f64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now_ms.saturating_sub(job.started_ms) as f64 / 1000.0
}

/// What the EMF batch records say about the batches (the same records CloudWatch would get).
fn print_batch_metrics(records: &[shared::metrics::MetricRecord]) {
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

fn print_summary(job: &Job, wall: Duration) {
    let t = &job.totals;
    let seconds = job.duration_seconds.unwrap_or_else(|| {
        if wall.is_zero() {
            running_seconds(job)
        } else {
            wall.as_secs_f64()
        }
    });
    println!("job {}  {}", job.job_id, job.status.as_str());
    println!("  source          s3://{}/{}", job.bucket, job.prefix);
    println!(
        "  batches         {}/{}",
        job.batches_done, job.total_batches
    );
    println!(
        "  files           {} loaded, {} rejected, {} skipped (not .csv)",
        t.files, t.files_failed, job.files_skipped
    );
    println!("  rows written    {}", t.rows_written);
    println!("  rows rejected   {}", t.rows_rejected);
    println!("  rows duplicate  {}", t.rows_duplicate);
    println!("  bytes read      {:.1} MB", t.bytes as f64 / 1e6);
    println!(
        "  retries         {} write (UnprocessedItems), {} S3 throttled",
        t.write_retries, t.s3_throttles
    );
    if t.rows_rejected + t.files_failed > 0 {
        println!(
            "  rejects report  {}",
            job.rejects_report.as_deref().unwrap_or("-")
        );
    }
    println!("  seconds         {seconds:.2}");
    println!(
        "  rows/s          {:.0}",
        t.rows_written as f64 / seconds.max(1e-9)
    );
    if let Some(error) = &job.error {
        println!("  error           {error}");
    }
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
