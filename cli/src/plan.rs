//! `s3-fanout plan`: predicts a job's wall time, request counts and dollar cost on AWS from
//! the object count and sizes, the worker settings and the table's write limit. The model
//! (written up in `docs/plan-model.md`) is a pipeline of three stages that overlap — listing,
//! reading, writing — so the slowest one sets the pace, plus the last batch's own time.

use clap::Args;
use serde::Serialize;

/// What the model needs. Rates default to what this repository measured (README tables);
/// prices to AWS us-east-1 list prices (arm64 Lambda, SQS standard, DynamoDB on-demand).
#[derive(Args, Debug, Clone, PartialEq)]
pub struct PlanArgs {
    /// Objects under the prefix.
    #[arg(long, default_value_t = 10_000)]
    pub objects: u64,
    /// Mean object size in bytes.
    #[arg(long, default_value_t = 4_500)]
    pub object_bytes: u64,
    /// Mean rows per object.
    #[arg(long, default_value_t = 100)]
    pub rows_per_object: u64,
    /// Mean stored item size in bytes (write units are per started KiB).
    #[arg(long, default_value_t = 120)]
    pub item_bytes: u64,
    /// Object keys per worker batch (BATCH_SIZE).
    #[arg(long, default_value_t = 100)]
    pub batch_size: u64,
    /// A batch also closes at this many bytes (BATCH_BYTES; 16 MiB).
    #[arg(long, default_value_t = 16 << 20)]
    pub batch_bytes: u64,
    /// Worker memory in MB (1769 MB is one full vCPU).
    #[arg(long, default_value_t = 1769)]
    pub worker_memory_mb: u64,
    /// Workers at once (the event source's MaximumConcurrency).
    #[arg(long, default_value_t = 50)]
    pub concurrency: u64,
    /// Objects one worker reads and types per second at one full vCPU (the `bench` table).
    #[arg(long, default_value_t = 2_800.0)]
    pub files_per_worker_second: f64,
    /// Rows one worker can write per second (WRITE_CONCURRENCY BatchWriteItem calls of 25
    /// in flight at ~10 ms each: 16 x 25 / 0.010).
    #[arg(long, default_value_t = 40_000.0)]
    pub rows_written_per_worker_second: f64,
    /// The records table's write limit in write units per second (on-demand default).
    #[arg(long, default_value_t = 40_000.0)]
    pub table_write_units: f64,
    /// Seconds per ListObjectsV2 page of 1,000 keys (plus enqueueing it).
    #[arg(long, default_value_t = 0.1)]
    pub list_page_seconds: f64,
    /// Seconds a worker invocation spends beyond its batch (start, ledger writes).
    #[arg(long, default_value_t = 0.05)]
    pub invocation_overhead_seconds: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Default for PlanArgs {
    /// The command line's defaults.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            plan: PlanArgs,
        }
        <Defaults as clap::Parser>::parse_from(["plan"]).plan
    }
}

/// US-East-1 list prices, USD.
pub mod price {
    pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const S3_GET: f64 = 0.0004 / 1e3;
    pub const S3_LIST: f64 = 0.005 / 1e3;
}

/// Requests a job makes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Requests {
    pub s3_list: u64,
    pub s3_get: u64,
    /// SendMessageBatch calls plus the event source's receives and deletes.
    pub sqs: u64,
    pub lambda_invocations: u64,
    /// Record writes plus two ledger writes per batch (count, maybe finish).
    pub dynamodb_write_units: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cost {
    pub lambda: f64,
    pub sqs: f64,
    pub dynamodb: f64,
    pub s3: f64,
    pub total: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub batches: u64,
    pub rows: u64,
    pub workers: u64,
    pub listing_seconds: f64,
    pub reading_seconds: f64,
    pub writing_seconds: f64,
    /// The stage that sets the pace.
    pub bottleneck: &'static str,
    pub wall_seconds: f64,
    pub lambda_gb_seconds: f64,
    pub requests: Requests,
    pub cost: Cost,
}

pub fn plan(input: &PlanArgs) -> Plan {
    // A batch closes at BATCH_SIZE keys or BATCH_BYTES bytes, whichever comes first.
    let by_bytes = (input.batch_bytes / input.object_bytes.max(1)).max(1);
    let batch_size = input.batch_size.max(1).min(by_bytes);
    let batches = input.objects.div_ceil(batch_size);
    let rows = input.objects * input.rows_per_object;
    let workers = input.concurrency.max(1).min(batches.max(1));
    // A vCPU share below one full vCPU slows reading in proportion.
    let cpu_share = (input.worker_memory_mb as f64 / 1769.0).min(1.0);
    let files_per_second = input.files_per_worker_second.max(1e-9) * cpu_share;
    let units_per_row = input.item_bytes.max(1).div_ceil(1024);

    let pages = input.objects.div_ceil(1000);
    let listing_seconds = pages as f64 * input.list_page_seconds;
    let reading_seconds = input.objects as f64 / (files_per_second * workers as f64);
    // Writes are capped by the workers and by the table, whichever is lower.
    let write_rows_per_second = (input.rows_written_per_worker_second * workers as f64)
        .min(input.table_write_units / units_per_row as f64);
    let writing_seconds = rows as f64 / write_rows_per_second.max(1e-9);
    let stages = [
        ("listing", listing_seconds),
        ("reading", reading_seconds),
        ("writing", writing_seconds),
    ];
    let (bottleneck, slowest) = stages.into_iter().fold(("listing", 0.0), |best, stage| {
        if stage.1 > best.1 { stage } else { best }
    });
    // The pipeline runs at the slowest stage's pace; the last batch still has to go through.
    let batch_seconds =
        batch_size.min(input.objects) as f64 / files_per_second + input.invocation_overhead_seconds;
    let wall_seconds = slowest + batch_seconds;

    // Each worker is busy for its batch's share of the slowest stage, plus overhead.
    let busy_seconds =
        slowest * workers as f64 + batches as f64 * input.invocation_overhead_seconds;
    let lambda_gb_seconds = busy_seconds * input.worker_memory_mb as f64 / 1024.0;
    let requests = Requests {
        s3_list: pages,
        s3_get: input.objects,
        sqs: batches.div_ceil(10) + 2 * batches,
        // The coordinator lists for ~14 minutes per invocation, then continues in the next.
        lambda_invocations: batches + ((listing_seconds / 840.0).ceil() as u64).max(1),
        dynamodb_write_units: rows * units_per_row + 2 * batches,
    };
    let lambda = lambda_gb_seconds * price::LAMBDA_ARM_GB_SECOND
        + requests.lambda_invocations as f64 * price::LAMBDA_REQUEST;
    let sqs = requests.sqs as f64 * price::SQS_REQUEST;
    let dynamodb = requests.dynamodb_write_units as f64 * price::DYNAMODB_WRITE_UNIT;
    let s3 = requests.s3_get as f64 * price::S3_GET + requests.s3_list as f64 * price::S3_LIST;
    Plan {
        batches,
        rows,
        workers,
        listing_seconds,
        reading_seconds,
        writing_seconds,
        bottleneck,
        wall_seconds,
        lambda_gb_seconds,
        requests,
        cost: Cost {
            lambda,
            sqs,
            dynamodb,
            s3,
            total: lambda + sqs + dynamodb + s3,
        },
    }
}

pub fn print(plan: &Plan, input: &PlanArgs) {
    println!(
        "{} objects ({} rows, {:.1} MB), {} batches (at most {} keys, {} bytes), {} workers of {} MB",
        input.objects,
        plan.rows,
        (input.objects * input.object_bytes) as f64 / 1e6,
        plan.batches,
        input.batch_size,
        input.batch_bytes,
        plan.workers,
        input.worker_memory_mb
    );
    println!();
    println!("| stage | seconds |");
    println!("|---|---|");
    println!(
        "| listing ({} pages) | {:.1} |",
        plan.requests.s3_list, plan.listing_seconds
    );
    println!("| reading + typing | {:.1} |", plan.reading_seconds);
    println!("| writing | {:.1} |", plan.writing_seconds);
    println!(
        "| **wall** (bottleneck: {}) | **{:.1}** |",
        plan.bottleneck, plan.wall_seconds
    );
    println!();
    println!("| item | requests | USD |");
    println!("|---|---|---|");
    println!(
        "| Lambda ({:.0} GB-s, {} invocations) | {} | {:.4} |",
        plan.lambda_gb_seconds,
        plan.requests.lambda_invocations,
        plan.requests.lambda_invocations,
        plan.cost.lambda
    );
    println!("| SQS | {} | {:.4} |", plan.requests.sqs, plan.cost.sqs);
    println!(
        "| DynamoDB write units | {} | {:.4} |",
        plan.requests.dynamodb_write_units, plan.cost.dynamodb
    );
    println!(
        "| S3 GET + LIST | {} + {} | {:.4} |",
        plan.requests.s3_get, plan.requests.s3_list, plan.cost.s3
    );
    println!("| **total** | | **{:.4}** |", plan.cost.total);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        plan: PlanArgs,
    }

    fn input(args: &[&str]) -> PlanArgs {
        Cli::parse_from(std::iter::once("plan").chain(args.iter().copied())).plan
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn a_million_small_objects_are_bound_by_the_table() {
        let plan = plan(&input(&["--objects", "1000000"]));
        assert_eq!(plan.batches, 10_000);
        assert_eq!(plan.rows, 100_000_000);
        assert_eq!(plan.workers, 50);
        // 100M rows at 40,000 units/s, one unit per 120-byte item.
        assert!(
            close(plan.writing_seconds, 2_500.0),
            "{}",
            plan.writing_seconds
        );
        // 1M objects at 2,800 files/s x 50 workers.
        assert!(close(plan.reading_seconds, 1e6 / 140_000.0));
        assert!(close(plan.listing_seconds, 100.0));
        assert_eq!(plan.bottleneck, "writing");
        assert!(close(plan.wall_seconds, 2_500.0 + 100.0 / 2_800.0 + 0.05));
        assert_eq!(plan.requests.s3_list, 1_000);
        assert_eq!(plan.requests.sqs, 1_000 + 20_000);
        assert_eq!(plan.requests.dynamodb_write_units, 100_000_000 + 20_000);
        assert!(close(
            plan.cost.dynamodb,
            100_020_000.0 * price::DYNAMODB_WRITE_UNIT
        ));
        assert!(close(
            plan.cost.total,
            plan.cost.lambda + plan.cost.sqs + plan.cost.dynamodb + plan.cost.s3
        ));
    }

    #[test]
    fn few_workers_make_reading_the_bottleneck_and_small_memory_slows_it() {
        let few_rows = [
            "--objects",
            "10000",
            "--concurrency",
            "1",
            "--rows-per-object",
            "1",
        ];
        let full = plan(&input(&few_rows));
        assert_eq!(full.bottleneck, "reading");
        assert!(close(full.reading_seconds, 10_000.0 / 2_800.0));
        let half = plan(&input(
            &[&few_rows[..], &["--worker-memory-mb", "884"]].concat(),
        ));
        assert!(half.reading_seconds > 1.99 * full.reading_seconds);
        // Gigabyte-seconds: one worker busy for the whole slowest stage plus overheads.
        let busy = full.reading_seconds + 100.0 * 0.05;
        assert!(close(full.lambda_gb_seconds, busy * 1769.0 / 1024.0));
    }

    #[test]
    fn big_items_cost_a_write_unit_per_started_kib_and_workers_never_exceed_batches() {
        let plan = plan(&input(&[
            "--objects",
            "30",
            "--item-bytes",
            "2049",
            "--batch-size",
            "10",
        ]));
        assert_eq!(plan.workers, 3, "3 batches, 3 workers");
        assert_eq!(plan.requests.dynamodb_write_units, 3_000 * 3 + 6);
        assert_eq!(plan.requests.s3_get, 30);
    }

    #[test]
    fn big_objects_fill_a_batch_by_bytes_before_keys() {
        // 64 MiB objects: one a batch, though 100 keys would be allowed.
        let big = plan(&input(&["--objects", "20", "--object-bytes", "67108864"]));
        assert_eq!(big.batches, 20);
        // 1 MiB objects: 16 a batch.
        let mid = plan(&input(&["--objects", "160", "--object-bytes", "1048576"]));
        assert_eq!(mid.batches, 10);
        // Small objects: the key bound.
        assert_eq!(plan(&input(&["--objects", "1000"])).batches, 10);
    }
}
