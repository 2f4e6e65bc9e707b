//! Where a command's resources live: the local servers it starts, or the endpoints the
//! environment already points at.

use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use devkit::provision::Resources;
use devkit::servers::{LocalAws, Server, ServerChoice};
use shared::aws::{Clients, Endpoints};

#[derive(Args)]
pub struct TargetArgs {
    /// Stem of every resource name: bucket STEM, queue STEM-batches, tables STEM-records/-jobs.
    #[arg(long, default_value = "s3fanout-local")]
    pub stem: String,
    /// Local S3 server, when this command starts the servers.
    #[arg(long, default_value = "s3s-fs")]
    pub s3: Server,
    /// Local DynamoDB server, when this command starts the servers.
    #[arg(long, default_value = "dynalite")]
    pub dynamodb: Server,
}

/// Servers this command started (stopped when dropped), or none if the environment already
/// points the SDK somewhere.
pub struct Target {
    pub clients: Clients,
    pub _servers: Option<LocalAws>,
    pub resources: Resources,
}

pub async fn connect(args: &TargetArgs) -> Result<Target> {
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

/// The ledger the environment points at (`AWS_ENDPOINT_URL*`, or real AWS).
pub async fn ledger_of(
    target: &TargetArgs,
    jobs_table: Option<&str>,
) -> (shared::aws::DynamoLedger, String) {
    if Endpoints::from_env() == Endpoints::default() {
        eprintln!("no AWS_ENDPOINT_URL* set: reading the ledger in real AWS");
    }
    let clients = Clients::from_env().await;
    let table = jobs_table
        .map(str::to_owned)
        .unwrap_or_else(|| Resources::named(&target.stem).tables.jobs);
    (
        shared::aws::DynamoLedger::new(clients.dynamodb.clone(), &table),
        table,
    )
}
