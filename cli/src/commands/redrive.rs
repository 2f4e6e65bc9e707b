//! `s3-fanout redrive`: dead-letter queue back to the work queue, or (`--job`) the batches of
//! one job the coordinator took off the dead-letter queue and kept in S3.

use anyhow::{Context, Result, bail};
use clap::Args;
use devkit::provision::Resources;
use shared::aws::{Clients, Endpoints};
use shared::contract::rejects::ReportLocation;
use shared::fan_in::Ledger as _;

use crate::target::{TargetArgs, ledger_of};

#[derive(Args)]
pub struct RedriveArgs {
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
    /// Send back this job's dead-lettered batches, kept under its rejects report by the
    /// coordinator (which counted them failed), instead of the queue's messages.
    #[arg(long)]
    job: Option<String>,
    /// The jobs table, for `--job` (the stack's `JobsTableName` output on AWS).
    #[arg(long, env = "JOBS_TABLE")]
    jobs_table: Option<String>,
}

pub async fn redrive(args: RedriveArgs) -> Result<()> {
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
    let to = url_of(args.to, resources.queue).await?;
    if let Some(job_id) = &args.job {
        let (ledger, table) = ledger_of(&args.target, args.jobs_table.as_deref()).await;
        let job_id = job_id.as_str().into();
        let Some(job) = ledger
            .get(&job_id)
            .await
            .context("reading the job ledger")?
        else {
            bail!("no job {job_id} in table {table}");
        };
        let report = job
            .rejects_report
            .as_deref()
            .and_then(|uri| report_location(uri, job_id.as_ref()))
            .with_context(|| format!("job {job_id} names no rejects report location"))?;
        let sent = shared::app::redrive::redrive_kept(
            &shared::aws::S3Objects::new(clients.s3.clone()),
            &shared::aws::SqsQueues::new(clients.sqs.clone()),
            &report,
            &job_id,
            &to,
        )
        .await
        .context("redriving the kept dead letters")?;
        println!("sent {sent} kept dead-lettered batches of job {job_id} to {to}");
        return Ok(());
    }
    let from = url_of(args.from, resources.dead_letter_queue).await?;
    let moved = shared::app::redrive::redrive(
        &shared::aws::SqsQueues::new(clients.sqs.clone()),
        &from,
        &to,
        args.max,
    )
    .await
    .context("redriving")?;
    println!("moved {moved} messages from {from} to {to}");
    Ok(())
}

/// The report location of `s3://bucket/prefix{job_id}/`.
fn report_location(uri: &str, job_id: &str) -> Option<ReportLocation> {
    let (bucket, path) = uri.strip_prefix("s3://")?.split_once('/')?;
    let prefix = path.strip_suffix('/')?.strip_suffix(job_id)?;
    Some(ReportLocation {
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_job_s_report_uri_gives_its_location() {
        let location = super::report_location("s3://b/_rejects/j-1/", "j-1").unwrap();
        assert_eq!(
            (location.bucket.as_str(), location.prefix.as_str()),
            ("b", "_rejects/")
        );
        assert!(super::report_location("s3://b/_rejects/other/", "j-1").is_none());
    }
}
