//! `s3-fanout rehearse`: `sam deploy` rehearsed offline (docs/deploy.md). Deploys the
//! template to moto with IAM enforced (twice: `TriggerMode=marker` and `TriggerMode=object`)
//! and runs the built function binaries under their deployed roles; prints what it checked,
//! exits non-zero on the first failure.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use devkit::rehearsal::{self, Options};

#[derive(Args)]
pub struct RehearseArgs {
    /// Folder holding the built `coordinator` and `worker` binaries (scripts/rehearse.sh
    /// builds them).
    #[arg(long)]
    code_dir: PathBuf,
    /// The SAM template to deploy (default: the repository's template.yaml).
    #[arg(long)]
    template: Option<PathBuf>,
    /// A parameter override, KEY=VALUE; repeatable. It applies to both stacks, except
    /// `TriggerMode` (the second stack's is `object`) and `InputBucketName` (the second
    /// stack's bucket keeps its default name).
    #[arg(long = "parameter")]
    parameters: Vec<String>,
    /// Deploy and run only the marker-mode stack, not the second, `TriggerMode=object` one.
    #[arg(long)]
    marker_only: bool,
    /// Files per job (small: the rehearsal proves wiring, not speed).
    #[arg(long, default_value_t = 4)]
    files: usize,
    /// Rows per file.
    #[arg(long, default_value_t = 25)]
    rows: usize,
}

pub async fn rehearse(args: RehearseArgs) -> Result<()> {
    let mut options = Options::for_repository(args.code_dir);
    if let Some(template) = args.template {
        options.template = template;
    }
    options.parameters = args.parameters;
    options.object_mode = !args.marker_only;
    options.files = args.files;
    options.rows_per_file = args.rows;
    match rehearsal::run(&options).await {
        Ok(report) => {
            for line in &report.lines {
                println!("ok: {line}");
            }
            println!("rehearsal passed");
            Ok(())
        }
        Err(error) => Err(anyhow!(error).context("rehearsal failed")),
    }
}
