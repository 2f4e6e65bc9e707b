//! `s3-fanout jobs`: the most recent jobs in the ledger, as a table or JSON.

use anyhow::{Context, Result};
use clap::Args;
use shared::fan_in::Ledger as _;

use crate::summary::running_seconds;
use crate::target::{TargetArgs, ledger_of};

#[derive(Args)]
pub struct JobsArgs {
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

pub async fn jobs(args: JobsArgs) -> Result<()> {
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
