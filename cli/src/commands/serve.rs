//! `s3-fanout serve`: local servers for other shells, their environment printed as exports.

use anyhow::{Context, Result};
use devkit::provision::{self, QueueSettings};

use crate::target::{TargetArgs, connect};

pub async fn serve(args: TargetArgs) -> Result<()> {
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
