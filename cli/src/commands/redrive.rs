//! `s3-fanout redrive`: dead-letter queue back to the work queue.

use anyhow::{Context, Result};
use clap::Args;
use devkit::provision::Resources;
use shared::aws::{Clients, Endpoints};

use crate::target::TargetArgs;

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
    let from = url_of(args.from, resources.dead_letter_queue).await?;
    let to = url_of(args.to, resources.queue).await?;
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
