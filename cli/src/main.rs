//! Operator CLI `s3-fanout`: the top-level arguments, logging and dispatch. Each subcommand
//! lives in `commands/` (or its own module for `plan` and `bench`).

mod bench;
mod bench_inflate;
mod bench_large;
mod bench_memory;
mod bench_parquet;
mod cap_bench;
mod ceiling;
mod commands;
mod e2e_bench;
mod latency;
mod ledger_bench;
mod plan;
mod plan_bench;
mod summary;
mod target;

/// glibc's malloc and free were a third of the worker loop's instructions (callgrind).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use commands::{r#gen, jobs, redrive, rehearse, run, serve, status};

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
    Run(run::RunArgs),
    /// Upload deterministic seed-shaped CSV files (needs AWS_ENDPOINT_URL* or real AWS).
    Gen(r#gen::GenArgs),
    /// Start the local servers, provision everything, print the environment, wait for Ctrl-C.
    Serve(target::TargetArgs),
    /// Show a job from the ledger (needs AWS_ENDPOINT_URL* or real AWS, e.g. inside `serve`).
    Status(status::StatusArgs),
    /// List the most recent jobs from the ledger.
    Jobs(jobs::JobsArgs),
    /// Move the batches in the dead-letter queue back to the work queue (after a fix).
    Redrive(redrive::RedriveArgs),
    /// Rehearse `sam deploy` offline: deploy the template to moto with IAM enforced and run
    /// the built functions under their deployed roles (docs/deploy.md).
    Rehearse(rehearse::RehearseArgs),
    /// Predict a job's wall time, requests and cost on AWS (no servers needed).
    Plan(plan::PlanArgs),
    /// Benchmark the worker's read path against the first seed's loop; prints a table.
    Bench(bench::BenchArgs),
    /// One measured bench run (started by `bench`).
    #[command(hide = true)]
    BenchChild(bench::ChildArgs),
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
            Command::Run(args) => run::run(args).await,
            Command::Gen(args) => r#gen::gen_command(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Status(args) => status::status(args).await,
            Command::Jobs(args) => jobs::jobs(args).await,
            Command::Redrive(args) => redrive::redrive(args).await,
            Command::Rehearse(args) => rehearse::rehearse(args).await,
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
