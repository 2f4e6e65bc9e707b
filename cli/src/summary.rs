//! Job summaries shared by `run` and `status` (and the clock `jobs` uses).

use std::time::Duration;

use shared::job::model::Job;

/// Seconds since the job started, by this machine's clock.
pub fn running_seconds(job: &Job) -> f64 {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    now_ms.saturating_sub(job.started_ms) as f64 / 1000.0
}

pub fn print_summary(job: &Job, wall: Duration) {
    let t = &job.totals;
    let seconds = job.duration_seconds.unwrap_or_else(|| {
        if wall.is_zero() {
            running_seconds(job)
        } else {
            wall.as_secs_f64()
        }
    });
    println!("job {}  {}", job.job_id, job.status.as_str());
    match &job.inventory.inventory {
        Some(manifest) => println!(
            "  source          S3 Inventory s3://{}/{manifest}",
            job.bucket
        ),
        None => println!("  source          s3://{}/{}", job.bucket, job.prefix),
    }
    println!(
        "  batches         {}/{}",
        job.batches_done, job.total_batches
    );
    println!(
        "  files           {} loaded, {} rejected, {} skipped (no loadable suffix)",
        t.files, t.files_failed, job.files_skipped
    );
    if t.files_missing > 0 {
        println!(
            "  missing         {} listed by the inventory, gone since (skipped, reported)",
            t.files_missing
        );
    }
    println!("  rows written    {}", t.rows_written);
    println!("  rows rejected   {}", t.rows_rejected);
    println!(
        "  tolerated       {}",
        job.tolerated_rejects
            .map_or_else(|| "any number of rejects".to_owned(), |t| t.describe())
    );
    println!("  rows duplicate  {}", t.rows_duplicate);
    if !job.write.write_mode.is_put() {
        let mode = job.write.write_mode.as_str();
        println!(
            "  write mode      {mode} ({} rows existing)",
            t.rows_existing
        );
    }
    match job.write.write_units_per_second {
        Some(cap) => println!("  write units     {} (cap {cap:.0}/s)", t.write_units),
        None => println!("  write units     {}", t.write_units),
    }
    println!("  input bytes     {:.1} MB", t.bytes as f64 / 1e6);
    println!(
        "  bytes read      {:.1} MB ({:.2}x the input)",
        t.bytes_read as f64 / 1e6,
        t.bytes_read as f64 / t.bytes.max(1) as f64
    );
    println!(
        "  retries         {} write (UnprocessedItems), {} S3 throttled",
        t.write_retries, t.s3_throttles
    );
    if t.rows_rejected + t.files_failed + t.files_missing > 0 {
        println!(
            "  rejects report  {}",
            job.rejects_report.as_deref().unwrap_or("-")
        );
    }
    println!("  seconds         {seconds:.2}");
    println!(
        "  rows/s          {:.0}",
        t.rows_written as f64 / seconds.max(1e-9)
    );
    if let Some(error) = &job.error {
        println!("  error           {error}");
    }
}
