//! `s3-fanout status`: one job from the ledger, optionally followed until it ends.

use shared::fan_in::Ledger as _;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::summary::{print_summary, running_seconds};
use crate::target::{TargetArgs, ledger_of};

#[derive(Args)]
pub struct StatusArgs {
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

pub async fn status(args: StatusArgs) -> Result<()> {
    let (ledger, table) = ledger_of(&args.target, args.jobs_table.as_deref()).await;
    let read = || async {
        match ledger
            .get(&args.job_id.as_str().into())
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
