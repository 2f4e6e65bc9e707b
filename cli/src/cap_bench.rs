//! The write rate cap on the local servers: local jobs (4 pollers) capped at a few write
//! unit rates, the rate the table saw against the cap, and the `plan` model's time for each.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use devkit::pipeline::LocalPipeline;
use devkit::provision::{self, QueueSettings, Resources};
use devkit::sample::SampleSpec;
use devkit::servers::LocalAws;
use shared::contract::messages::JobRequest;
use shared::contract::write::WriteRate;
use shared::job::model::JobStatus;

use crate::plan::{self, PlanArgs};

const FILES: usize = 100;
const POLLERS: usize = 4;
/// Caps in write units per second, well under the local DynamoDB server's ceiling.
const CAPS: [f64; 2] = [500.0, 2_000.0];

/// One capped job of `FILES` x 100 rows; its seconds and write units.
async fn capped_job(servers: &LocalAws, cap: f64) -> Result<(f64, u64)> {
    let clients = servers.clients();
    let resources = Resources::named(&format!("bench-cap-{cap:.0}"));
    // Capped batches run longer than the default visibility timeout.
    let settings = QueueSettings {
        visibility_timeout: Duration::from_secs(300),
        ..QueueSettings::default()
    };
    let provisioned = provision::ensure(&clients, &resources, settings).await?;
    let spec = SampleSpec::new("cap/", FILES, 100);
    spec.upload(&clients.s3, &resources.bucket, 64, || {})
        .await?;
    let mut pipeline = LocalPipeline::new(clients, &resources, &provisioned);
    pipeline.coordinator.batch_size = 5;
    pipeline.pollers = POLLERS;
    // One worker serves every poller here: it is the one instance, taking the whole cap.
    pipeline.worker.max_concurrency = 1;
    pipeline.timeout = Duration::from_secs(600);
    let mut request = JobRequest::new(&resources.bucket, &spec.prefix);
    request.write.max_write_rate = Some(WriteRate::Units(cap));
    let job = pipeline
        .run(request, |_| {})
        .await
        .context("running a capped local job")?;
    if job.status != JobStatus::Complete || job.totals.rows_written != spec.total_rows() {
        bail!(
            "the capped job ended {:?} with {} rows",
            job.status,
            job.totals.rows_written
        );
    }
    Ok((
        job.duration_seconds.unwrap_or_default(),
        job.totals.write_units,
    ))
}

/// The capped-rate table.
pub async fn cap_bench(servers: &LocalAws) -> Result<()> {
    println!(
        "\nWrite rate cap (`max_write_rate`) on the local servers: {FILES} files x 100 rows, {POLLERS} pollers, one worker instance, against the `plan` model:\n"
    );
    println!(
        "| cap (write units/s) | write units | job seconds | measured units/s | of the cap | plan predicts |"
    );
    println!("|---|---|---|---|---|---|");
    for cap in CAPS {
        let (seconds, units) = capped_job(servers, cap).await?;
        let rate = units as f64 / seconds;
        let predicted = plan::plan(&PlanArgs {
            objects: FILES as u64,
            rows_per_object: 100,
            batch_size: 5,
            concurrency: 1,
            max_write_rate: Some(cap),
            ..PlanArgs::default()
        });
        println!(
            "| {cap:.0} | {units} | {seconds:.2} | {rate:.0} | {:.0}% | {:.2} s |",
            100.0 * rate / cap,
            predicted.wall_seconds
        );
    }
    Ok(())
}
