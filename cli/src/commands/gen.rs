//! `s3-fanout gen`: upload sample data. `run` shares the sample arguments and the upload.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use devkit::provision::{self, QueueSettings};
use devkit::sample::SampleSpec;
use indicatif::{ProgressBar, ProgressStyle};
use shared::aws::Endpoints;

use crate::target::{Target, TargetArgs, connect};

#[derive(Args)]
pub struct SampleArgs {
    /// Number of CSV files.
    #[arg(long, default_value_t = 1000)]
    pub files: usize,
    /// Rows per file (the seed's files have 100).
    #[arg(long, default_value_t = 100)]
    pub rows: usize,
    /// Key prefix the files are written under and the job lists.
    #[arg(long, default_value = "data/")]
    pub prefix: String,
}

#[derive(Args)]
pub struct GenArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    sample: SampleArgs,
    /// Also write an S3 Inventory report of the files (AWS's layout, gzip CSV data files of
    /// this many objects each) under `inventories/`, and print the request that loads it.
    #[arg(long)]
    inventory: Option<usize>,
}

pub async fn gen_command(args: GenArgs) -> Result<()> {
    if Endpoints::from_env() == Endpoints::default() {
        bail!(
            "gen writes to the S3 the environment points at: run it inside `s3-fanout serve`'s environment, set AWS_ENDPOINT_URL_S3, or use `s3-fanout run`"
        );
    }
    let target = connect(&args.target).await?;
    provision::ensure(&target.clients, &target.resources, QueueSettings::default())
        .await
        .context("provisioning")?;
    let spec = SampleSpec::new(&args.sample.prefix, args.sample.files, args.sample.rows);
    upload(&target, &spec).await?;
    if let Some(per_file) = args.inventory {
        let bucket = &target.resources.bucket;
        let format = shared::ingest::inventory_writer::WrittenFormat::Csv;
        let manifest = devkit::inventory::upload_inventory(
            &target.clients.s3,
            bucket,
            &spec,
            per_file,
            format,
        )
        .await
        .context("writing the inventory report")?;
        let request = serde_json::json!({"bucket": bucket, "inventory": manifest});
        eprintln!("inventory report written; the job that loads it:");
        println!("{request}");
    }
    Ok(())
}

pub async fn upload(target: &Target, spec: &SampleSpec) -> Result<()> {
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
