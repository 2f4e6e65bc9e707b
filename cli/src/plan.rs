//! `s3-fanout plan`: predicts a job's wall time, request counts and dollar cost on AWS from
//! the object count and sizes, the worker settings, the table's write limit, the write mode
//! and rate cap. The model itself is `shared::plan::cost` (written up in
//! `docs/plan-model.md`), shared with the tests; this is its command line and its table.

use clap::Args;
use shared::contract::write::WriteMode;

fn write_mode(text: &str) -> Result<WriteMode, String> {
    serde_json::from_value(serde_json::Value::from(text)).map_err(|e| e.to_string())
}

/// What the model needs. Rates default to what this repository measured (README tables);
/// prices to AWS us-east-1 list prices (arm64 Lambda, SQS standard, DynamoDB on-demand).
#[derive(Args, Debug, Clone, PartialEq)]
pub struct PlanArgs {
    /// The objects' format: how one above the range size splits (CSV in scanned ranges,
    /// JSON Lines in ranges by lines, Parquet by row groups).
    #[arg(long, value_enum, default_value = "csv")]
    pub format: PlanFormat,
    /// Objects under the prefix.
    #[arg(long, default_value_t = DEFAULT.objects)]
    pub objects: u64,
    /// Mean object size in bytes.
    #[arg(long, default_value_t = DEFAULT.object_bytes)]
    pub object_bytes: u64,
    /// Mean rows per object.
    #[arg(long, default_value_t = DEFAULT.rows_per_object)]
    pub rows_per_object: u64,
    /// Mean stored item size in bytes (write units are per started KiB).
    #[arg(long, default_value_t = DEFAULT.item_bytes)]
    pub item_bytes: u64,
    /// Object keys per worker batch (BATCH_SIZE).
    #[arg(long, default_value_t = DEFAULT.batch_size)]
    pub batch_size: u64,
    /// A batch also closes at this many bytes (BATCH_BYTES; 16 MiB).
    #[arg(long, default_value_t = DEFAULT.batch_bytes)]
    pub batch_bytes: u64,
    /// Plain CSVs above this are split into ranges of it (RANGE_CHUNK_BYTES; 32 MiB).
    #[arg(long, default_value_t = DEFAULT.range_chunk_bytes)]
    pub range_chunk_bytes: u64,
    /// Bytes a worker parses and types per second in a range (bench: MB per CPU-second).
    #[arg(long, default_value_t = DEFAULT.range_bytes_per_worker_second)]
    pub range_bytes_per_worker_second: f64,
    /// Bytes a worker scans per second (bounded GET plus the quote-state scan).
    #[arg(long, default_value_t = DEFAULT.scan_bytes_per_worker_second)]
    pub scan_bytes_per_worker_second: f64,
    /// Worker memory in MB (1769 MB is one full vCPU).
    #[arg(long, default_value_t = DEFAULT.worker_memory_mb)]
    pub worker_memory_mb: u64,
    /// Workers at once (the event source's MaximumConcurrency).
    #[arg(long, default_value_t = DEFAULT.concurrency)]
    pub concurrency: u64,
    /// Objects one worker reads and types per second at one full vCPU (the `bench` table).
    #[arg(long, default_value_t = DEFAULT.files_per_worker_second)]
    pub files_per_worker_second: f64,
    /// Rows one worker can write per second (WRITE_CONCURRENCY BatchWriteItem calls of 25
    /// in flight at ~10 ms each: 16 x 25 / 0.010).
    #[arg(long, default_value_t = DEFAULT.rows_written_per_worker_second)]
    pub rows_written_per_worker_second: f64,
    /// Rows one worker writes per second one item per call (insert and update modes: 16
    /// PutItem/UpdateItem calls in flight at ~10 ms each).
    #[arg(long, default_value_t = DEFAULT.single_writes_per_worker_second)]
    pub single_writes_per_worker_second: f64,
    /// CPU microseconds per row written end to end at one full vCPU, put and delete modes
    /// (`bench`'s "CPU per row" table): with less than a vCPU, a worker may be CPU-bound.
    #[arg(long, default_value_t = DEFAULT.cpu_seconds_per_row_batched * 1e6)]
    pub cpu_us_per_row_batched: f64,
    /// The same for insert and update modes (one call per row).
    #[arg(long, default_value_t = DEFAULT.cpu_seconds_per_row_single * 1e6)]
    pub cpu_us_per_row_single: f64,
    /// The records table's write limit in write units per second (on-demand default).
    #[arg(long, default_value_t = DEFAULT.table_write_units)]
    pub table_write_units: f64,
    /// The jobs table's write limit in write units per second (on-demand default): the
    /// ledger's three one-unit writes per count share it.
    #[arg(long, default_value_t = DEFAULT.ledger_write_units)]
    pub ledger_write_units: f64,
    /// Seconds per ListObjectsV2 page of 1,000 keys (plus enqueueing it).
    #[arg(long, default_value_t = DEFAULT.list_page_seconds)]
    pub list_page_seconds: f64,
    /// Seconds a worker invocation spends beyond its batch (start, ledger writes).
    #[arg(long, default_value_t = DEFAULT.invocation_overhead_seconds)]
    pub invocation_overhead_seconds: f64,
    /// The job's write mode: put (BatchWriteItem), insert and update (one conditional or
    /// partial write per row), delete (BatchWriteItem).
    #[arg(long, default_value = "put", value_parser = write_mode)]
    pub write_mode: WriteMode,
    /// The job's max_write_rate in write units per second (each of `--concurrency` workers
    /// takes its share).
    #[arg(long)]
    pub max_write_rate: Option<f64>,
    /// Seconds a worker invocation writes before it hands on (120 s timeout less the 10 s
    /// deadline and 20 s resume margins).
    #[arg(long, default_value_t = DEFAULT.worker_part_seconds)]
    pub worker_part_seconds: f64,
    /// An S3 Inventory report's objects per data file (for the inventory-driven planning
    /// beside the LIST-driven one; the manifest tells).
    #[arg(long, default_value_t = DEFAULT.inventory_objects_per_file)]
    pub inventory_objects_per_file: u64,
    /// Inventory rows one worker reads and batches per second (docs/inventory.md).
    #[arg(long, default_value_t = DEFAULT.inventory_rows_per_worker_second)]
    pub inventory_rows_per_worker_second: f64,
    /// Seconds per SendMessageBatch of 10 (an inventory emit step sends its file's batches).
    #[arg(long, default_value_t = DEFAULT.send_batch_seconds)]
    pub send_batch_seconds: f64,
    /// A Parquet object's row group size in bytes.
    #[arg(long, default_value_t = DEFAULT.row_group_bytes)]
    pub row_group_bytes: u64,
    /// Parquet rows one worker decodes and types per second (bench: the in-memory Parquet row).
    #[arg(long, default_value_t = DEFAULT.parquet_rows_per_worker_second)]
    pub parquet_rows_per_worker_second: f64,
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

use shared::plan::cost::{DEFAULT, ObjectFormat};
pub use shared::plan::cost::{Plan, PlanInput};

/// `--format`: the command line's names of [`ObjectFormat`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    Csv,
    JsonLines,
    Parquet,
}

impl From<PlanFormat> for ObjectFormat {
    fn from(format: PlanFormat) -> Self {
        match format {
            PlanFormat::Csv => ObjectFormat::Csv,
            PlanFormat::JsonLines => ObjectFormat::JsonLines,
            PlanFormat::Parquet => ObjectFormat::Parquet,
        }
    }
}

impl PlanArgs {
    /// The model's input from the command line.
    pub fn input(&self) -> PlanInput {
        PlanInput {
            format: self.format.into(),
            objects: self.objects,
            object_bytes: self.object_bytes,
            rows_per_object: self.rows_per_object,
            item_bytes: self.item_bytes,
            batch_size: self.batch_size,
            batch_bytes: self.batch_bytes,
            range_chunk_bytes: self.range_chunk_bytes,
            range_bytes_per_worker_second: self.range_bytes_per_worker_second,
            scan_bytes_per_worker_second: self.scan_bytes_per_worker_second,
            worker_memory_mb: self.worker_memory_mb,
            concurrency: self.concurrency,
            files_per_worker_second: self.files_per_worker_second,
            rows_written_per_worker_second: self.rows_written_per_worker_second,
            single_writes_per_worker_second: self.single_writes_per_worker_second,
            cpu_seconds_per_row_batched: self.cpu_us_per_row_batched / 1e6,
            cpu_seconds_per_row_single: self.cpu_us_per_row_single / 1e6,
            table_write_units: self.table_write_units,
            list_page_seconds: self.list_page_seconds,
            invocation_overhead_seconds: self.invocation_overhead_seconds,
            write_mode: self.write_mode,
            max_write_rate: self.max_write_rate,
            worker_part_seconds: self.worker_part_seconds,
            ledger_write_units: self.ledger_write_units,
            ledger_shards: shared::job::shards::SHARDS,
            inventory_objects_per_file: self.inventory_objects_per_file,
            inventory_rows_per_worker_second: self.inventory_rows_per_worker_second,
            send_batch_seconds: self.send_batch_seconds,
            row_group_bytes: self.row_group_bytes,
            parquet_rows_per_worker_second: self.parquet_rows_per_worker_second,
        }
    }
}

/// The model's prediction for the command line's job.
pub fn plan(args: &PlanArgs) -> Plan {
    shared::plan::cost::plan(&args.input())
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
    if plan.ranges > 0 {
        let input_bytes = (input.objects * input.object_bytes) as f64;
        let how = match input.format {
            PlanFormat::Csv => "scanning + reading + typing",
            PlanFormat::JsonLines => "reading + typing by lines",
            PlanFormat::Parquet => "reading + typing row groups",
        };
        let unit = match input.format {
            PlanFormat::Parquet => "row groups",
            _ => "ranges",
        };
        println!(
            "| {how} ({} {unit}, {:.1} MB read: {:.2}x) | {:.1} |",
            plan.ranges,
            plan.bytes_read as f64 / 1e6,
            plan.bytes_read as f64 / input_bytes.max(1.0),
            plan.reading_seconds
        );
    } else {
        println!("| reading + typing | {:.1} |", plan.reading_seconds);
    }
    println!(
        "| writing ({}, {:.0} write units/s) | {:.1} |",
        input.write_mode.as_str(),
        plan.write_units_per_second,
        plan.writing_seconds
    );
    if let Some(bound) = &plan.cpu_bound {
        println!(
            "| (CPU-bound: {:.2} vCPU at {} MB allows {:.0} rows/s per worker, its write calls {:.0}) | |",
            bound.cpu_share,
            input.worker_memory_mb,
            bound.rows_per_worker_second,
            bound.calls_allow
        );
    }
    if let Some(pacing) = &plan.pacing {
        println!(
            "| (capped: {:.2} units/s per instance, {:.0} units per invocation, {} parts a batch) | |",
            pacing.share_units_per_second, pacing.units_per_part, pacing.parts_per_batch
        );
    }
    println!(
        "| counting ({} batches in the ledger) | {:.1} |",
        plan.batches, plan.counting_seconds
    );
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
        "| DynamoDB write units ({} write calls; ledger: {}) + ledger read units {} | {} | {:.4} |",
        plan.requests.dynamodb_write_calls,
        plan.requests.ledger_write_units,
        plan.requests.ledger_read_units,
        plan.requests.dynamodb_write_units,
        plan.cost.dynamodb
    );
    println!(
        "| S3 GET + LIST | {} + {} | {:.4} |",
        plan.requests.s3_get, plan.requests.s3_list, plan.cost.s3
    );
    println!("| **total** | | **{:.4}** |", plan.cost.total);
    print_planning(input);
    if let Some(refused) = plan.pacing.as_ref().and_then(|p| p.refused.as_ref()) {
        println!();
        println!("**The coordinator refuses this job**: {refused}");
    }
}

/// Inventory-driven planning beside LIST-driven, at this job's size and at 10^6..10^8.
fn print_planning(args: &PlanArgs) {
    println!();
    println!(
        "Planning: LIST (one coordinator, {} s a page of 1,000) against an S3 Inventory report ({} objects a data file, {} workers)",
        args.list_page_seconds, args.inventory_objects_per_file, args.concurrency
    );
    println!();
    println!(
        "| objects | LIST: all batches queued (s) | objects/s | inventory: data files | first batch (s) | all batches queued (s) | objects/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut sizes = vec![1_000_000u64, 10_000_000, 100_000_000];
    if !sizes.contains(&args.objects) {
        sizes.insert(0, args.objects);
    }
    for objects in sizes {
        let input = PlanInput {
            objects,
            ..args.input()
        };
        let p = shared::plan::cost::inventory_planning(&input);
        println!(
            "| {objects} | {:.0} | {:.0} | {} | {:.1} | {:.1} | {:.0} |",
            p.list_seconds,
            p.list_objects_per_second,
            p.data_files,
            p.first_batch_seconds,
            p.planning_seconds,
            p.objects_per_second
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use shared::plan::cost::price;

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
        assert_eq!(plan.requests.dynamodb_write_units, 100_000_000 + 30_004);
        assert!(close(
            plan.cost.dynamodb,
            100_030_004.0 * price::DYNAMODB_WRITE_UNIT
                + (10_000.0 + 32.0 * 33.0) * price::DYNAMODB_READ_UNIT
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
    fn a_worker_with_little_memory_is_cpu_bound_and_plan_says_so() {
        let rows = [
            "--objects",
            "1000",
            "--rows-per-object",
            "10000",
            "--concurrency",
            "1",
        ];
        let full = plan(&input(&rows));
        assert_eq!(
            full.cpu_bound, None,
            "one vCPU writes 87,000 rows/s > 40,000"
        );
        let small = plan(&input(
            &[&rows[..], &["--worker-memory-mb", "512"]].concat(),
        ));
        let bound = small
            .cpu_bound
            .expect("0.29 vCPU cannot keep up with 40,000 rows/s");
        let expected = (512.0 / 1769.0) / 11.5e-6;
        assert!(close(bound.rows_per_worker_second, expected));
        assert_eq!(small.bottleneck, "writing");
        assert!(small.writing_seconds > 1.5 * full.writing_seconds);
        // A measured figure replaces the default.
        let lean = plan(&input(
            &[
                &rows[..],
                &["--worker-memory-mb", "512", "--cpu-us-per-row-batched", "5"],
            ]
            .concat(),
        ));
        assert_eq!(lean.cpu_bound, None);
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
        assert_eq!(plan.requests.dynamodb_write_units, 3_000 * 3 + 3 * 3 + 4);
        assert_eq!(plan.requests.s3_get, 30);
    }

    #[test]
    fn a_cap_is_shared_by_the_workers_that_run_and_single_writes_cost_a_call_per_row() {
        // 20,000 rows, 20 batches, 4 workers of concurrency 4: the whole cap, 20 s.
        let capped = plan(&input(&[
            "--objects",
            "200",
            "--batch-size",
            "10",
            "--concurrency",
            "4",
            "--max-write-rate",
            "1000",
        ]));
        assert!(close(capped.write_units_per_second, 1000.0));
        assert!(
            close(capped.writing_seconds, 20.0),
            "{}",
            capped.writing_seconds
        );
        assert_eq!(capped.bottleneck, "writing");
        // Concurrency 8 but 4 batches: 4 workers take 4/8 of the cap.
        let few = plan(&input(&[
            "--objects",
            "40",
            "--batch-size",
            "10",
            "--concurrency",
            "8",
            "--max-write-rate",
            "1000",
        ]));
        assert!(close(few.write_units_per_second, 500.0));
        // Inserts: a call per row, 1,600 rows/s per worker; puts: one per 25 rows.
        let insert = plan(&input(&["--objects", "1000", "--write-mode", "insert"]));
        assert_eq!(insert.requests.dynamodb_write_calls, 100_000);
        assert!(close(insert.writing_seconds, 100_000.0 / (1_600.0 * 10.0)));
        let put = plan(&input(&["--objects", "1000"]));
        assert_eq!(put.requests.dynamodb_write_calls, 4_000);
        assert_eq!(
            insert.requests.dynamodb_write_units,
            put.requests.dynamodb_write_units
        );
        // The shipped capped example at the template's 50 instances: 8 units/s each, 720
        // one-unit rows an invocation, so a batch of 10,000 rows takes 14 parts.
        let slow = plan(&input(&["--max-write-rate", "400"]));
        let pacing = slow.pacing.clone().unwrap();
        assert_eq!(
            (pacing.share_units_per_second, pacing.units_per_part),
            (8.0, 720.0)
        );
        assert_eq!((pacing.parts_per_batch, pacing.refused), (14, None));
        let uncapped = plan(&input(&[]));
        assert_eq!(
            slow.requests.lambda_invocations,
            uncapped.requests.lambda_invocations + 100 * 13,
            "each part after the first is an invocation"
        );
        // 10 units/s over 50: 18 units an invocation, less than a chunk: refused.
        let tiny = plan(&input(&["--max-write-rate", "10"]));
        let refused = tiny.pacing.unwrap().refused.unwrap();
        assert!(refused.contains("0.200 units/s"), "{refused}");
        let unknown = Cli::try_parse_from(["plan", "--write-mode", "upsert"]);
        assert!(unknown.is_err_and(|e| e.to_string().contains("upsert")));
    }

    #[test]
    fn the_ledger_costs_three_units_a_batch_at_a_million_batches_and_more() {
        for batches in [1_000_000u64, 10_000_000] {
            let objects = batches.to_string();
            let plan = plan(&input(&["--objects", &objects, "--batch-size", "1"]));
            assert_eq!(plan.batches, batches);
            assert_eq!(plan.requests.ledger_write_units, 3 * batches + 4);
            assert!(close(
                plan.counting_seconds,
                batches as f64 / (40_000.0 / 3.0)
            ));
            assert_ne!(plan.bottleneck, "counting", "{plan:?}");
        }
        // A table capped low makes counting the bottleneck, at a third of its write units.
        let capped = plan(&input(&[
            "--objects",
            "1000000",
            "--batch-size",
            "1",
            "--rows-per-object",
            "1",
            "--ledger-write-units",
            "300",
        ]));
        assert_eq!(capped.bottleneck, "counting");
        assert!(close(capped.counting_seconds, 1e6 / 100.0));
    }

    #[test]
    fn the_format_decides_how_a_big_object_splits() {
        let gib = ["--objects", "10", "--object-bytes", "1073741824"];
        let with = |format: &str| {
            let mut args = gib.to_vec();
            args.extend(["--format", format]);
            plan(&input(&args))
        };
        let (csv, jsonl, parquet) = (with("csv"), with("json-lines"), with("parquet"));
        assert_eq!((csv.ranges, csv.batches), (320, 640));
        assert_eq!((jsonl.ranges, jsonl.batches), (320, 320));
        assert_eq!(
            (parquet.ranges, parquet.batches),
            (80, 80),
            "128 MiB row groups"
        );
        assert_eq!(jsonl.bytes_read * 2, csv.bytes_read);
    }

    #[test]
    fn big_objects_fill_a_batch_by_bytes_before_keys() {
        // 64 MiB objects below the range size: one a batch, though 100 keys would be allowed.
        let big = plan(&input(&[
            "--objects",
            "20",
            "--object-bytes",
            "67108864",
            "--range-chunk-bytes",
            "134217728",
        ]));
        assert_eq!(big.batches, 20);
        // 1 MiB objects: 16 a batch.
        let mid = plan(&input(&["--objects", "160", "--object-bytes", "1048576"]));
        assert_eq!(mid.batches, 10);
        // Small objects: the key bound.
        assert_eq!(plan(&input(&["--objects", "1000"])).batches, 10);
    }

    #[test]
    fn a_big_plain_object_is_split_scanned_then_parsed_reading_it_twice() {
        // 100 GiB in 32 MiB ranges: 3,200 ranges, 6,400 batches, 3 GETs a range.
        let gib = 1u64 << 30;
        let big = plan(&input(&[
            "--objects",
            "1",
            "--object-bytes",
            &(100 * gib).to_string(),
            "--rows-per-object",
            "2000000000",
        ]));
        assert_eq!((big.ranges, big.batches), (3_200, 6_400));
        assert_eq!(big.bytes_read, 200 * gib);
        assert_eq!(big.requests.s3_get, 9_600);
        assert_eq!(big.workers, 50);
        let bytes = (100 * gib) as f64;
        assert!(close(
            big.reading_seconds,
            (bytes / 80e6 + bytes / 95e6) / 50.0
        ));
        // Objects at or below the range size are read whole, once.
        let small = plan(&input(&["--objects", "10", "--object-bytes", "33554432"]));
        assert_eq!((small.ranges, small.bytes_read), (0, 10 * 33_554_432));
    }
}
