//! The `plan` model (`s3-fanout plan`, written up in `docs/plan-model.md`): a job's wall time,
//! request counts and dollar cost on AWS from the object count and sizes, the worker
//! settings, the table's write limit, the write mode and the job's write rate cap; objects
//! above the range size are split by their format: CSV in ranges (scans, then parses), JSON
//! Lines in ranges by lines (parses only), Parquet by row groups. Four
//! stages overlap (listing, reading, writing, counting in the ledger), so the slowest sets
//! the pace, plus the last batch's own time. Pure arithmetic, so the CLI and the tests share
//! it.

use serde::Serialize;

use crate::contract::write::WriteMode;

/// What the model needs. Rates default to what this repository measured (README tables);
/// prices to AWS us-east-1 list prices (arm64 Lambda, SQS standard, DynamoDB on-demand).
#[derive(Debug, Clone, PartialEq)]
pub struct PlanInput {
    /// The objects' format: how one above `range_chunk_bytes` splits.
    pub format: ObjectFormat,
    pub objects: u64,
    pub object_bytes: u64,
    pub rows_per_object: u64,
    /// Mean stored item size in bytes (write units are per started KiB).
    pub item_bytes: u64,
    pub batch_size: u64,
    /// A batch also closes at this many bytes of listed object sizes (`BATCH_BYTES`).
    pub batch_bytes: u64,
    /// Plain CSVs above this are split into ranges of it (`RANGE_CHUNK_BYTES`): scanned,
    /// composed, then parsed (`docs/ranges.md`).
    pub range_chunk_bytes: u64,
    /// Bytes one worker parses and types per second in a range (`bench`: MB per CPU-second,
    /// 32 MiB ranges).
    pub range_bytes_per_worker_second: f64,
    /// Bytes one worker scans per second (a bounded GET plus the quote-state scan; ~0.4 s
    /// per 32 MiB range).
    pub scan_bytes_per_worker_second: f64,
    pub worker_memory_mb: u64,
    /// Workers at once (the event source's MaximumConcurrency).
    pub concurrency: u64,
    pub files_per_worker_second: f64,
    /// Rows one worker writes per second in BatchWriteItem calls (put, delete).
    pub rows_written_per_worker_second: f64,
    /// Rows one worker writes per second one item per call (insert, update): 16 calls in
    /// flight at ~10 ms each.
    pub single_writes_per_worker_second: f64,
    /// CPU seconds per row written end to end (GET, decode, type, write, count) on one full
    /// vCPU, in BatchWriteItem calls (put, delete): `bench`'s "CPU per row" table. A worker
    /// with less than a vCPU writes at most `cpu_share / this` rows per second.
    pub cpu_seconds_per_row_batched: f64,
    /// The same, one item per call (insert, update).
    pub cpu_seconds_per_row_single: f64,
    /// The records table's write limit in write units per second.
    pub table_write_units: f64,
    pub list_page_seconds: f64,
    pub invocation_overhead_seconds: f64,
    pub write_mode: WriteMode,
    /// The job's `max_write_rate` in write units per second (resolved), if capped.
    pub max_write_rate: Option<f64>,
    /// Seconds a worker invocation writes before it stops and hands on (the 120 s timeout
    /// less the 10 s deadline and 20 s resume margins): a capped batch takes as many parts
    /// as its units need at the instance's share.
    pub worker_part_seconds: f64,
    /// The jobs table's write limit in write units per second: the ledger's three one-unit
    /// writes per count share it.
    pub ledger_write_units: f64,
    /// The ledger's counter shards (`job::shards::SHARDS`): two writes per count land on one.
    pub ledger_shards: u32,
    /// An S3 Inventory report's objects per data file (the manifest tells; `docs/inventory.md`).
    pub inventory_objects_per_file: u64,
    /// Inventory rows one worker reads per second: GET, gunzip, CSV, URL-decode, filter,
    /// batch (`docs/inventory.md`, measured).
    pub inventory_rows_per_worker_second: f64,
    /// One SendMessageBatch of 10 messages (an emit step sends its file's batches in turn).
    pub send_batch_seconds: f64,
    /// A Parquet object's row group size in bytes (its writer's setting; the footer tells).
    pub row_group_bytes: u64,
    /// Parquet rows one worker decodes and types per second (`bench`: rows per CPU-second,
    /// the in-memory Parquet row).
    pub parquet_rows_per_worker_second: f64,
}

/// How an object above the range size is planned (the coordinator's `ObjectPlan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectFormat {
    /// Ranges, each scanned, then parsed: 2 batches and 2x the bytes (`docs/ranges.md`).
    Csv,
    /// Ranges owning the lines that start in them: 1 batch each, ~1x the bytes.
    JsonLines,
    /// Row groups, several to a batch up to the range size (or one when larger): footer
    /// and column chunks only, ~1x the bytes.
    Parquet,
}

/// The defaults of `s3-fanout plan`.
pub const DEFAULT: PlanInput = PlanInput {
    format: ObjectFormat::Csv,
    objects: 10_000,
    object_bytes: 4_500,
    rows_per_object: 100,
    item_bytes: 120,
    batch_size: 100,
    batch_bytes: 16 << 20,
    range_chunk_bytes: 32 << 20,
    range_bytes_per_worker_second: 95e6,
    scan_bytes_per_worker_second: 80e6,
    worker_memory_mb: 1769,
    concurrency: 50,
    files_per_worker_second: 2_800.0,
    rows_written_per_worker_second: 40_000.0,
    single_writes_per_worker_second: 1_600.0,
    cpu_seconds_per_row_batched: 11.5e-6,
    cpu_seconds_per_row_single: 75e-6,
    table_write_units: 40_000.0,
    list_page_seconds: 0.1,
    invocation_overhead_seconds: 0.05,
    write_mode: WriteMode::Put,
    max_write_rate: None,
    worker_part_seconds: 90.0,
    ledger_write_units: 40_000.0,
    ledger_shards: 32,
    inventory_objects_per_file: 1_000_000,
    inventory_rows_per_worker_second: 750_000.0,
    send_batch_seconds: 0.02,
    row_group_bytes: 128 << 20,
    parquet_rows_per_worker_second: 500_000.0,
};

/// Ledger writes per counted batch: intent, marker, apply (each under 1 KB: one unit).
pub const LEDGER_WRITES_PER_COUNT: u64 = 3;
/// Ledger writes per job besides the counts: create, seal, finish, event sent.
pub const LEDGER_WRITES_PER_JOB: u64 = 4;
/// Writes per second one item (a counter shard) accepts on DynamoDB.
pub const ITEM_WRITE_UNITS_PER_SECOND: f64 = 1_000.0;

impl Default for PlanInput {
    fn default() -> Self {
        DEFAULT
    }
}

/// US-East-1 list prices, USD.
pub mod price {
    pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    pub const S3_GET: f64 = 0.0004 / 1e3;
    pub const S3_LIST: f64 = 0.005 / 1e3;
}

/// Requests a job makes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Requests {
    pub s3_list: u64,
    /// Whole-object GETs, or per split range a scan GET, a read of the stored scan and a
    /// parse GET.
    pub s3_get: u64,
    /// SendMessageBatch calls plus the event source's receives and deletes.
    pub sqs: u64,
    pub lambda_invocations: u64,
    /// Record write calls: BatchWriteItem of 25 (put, delete) or one per row (insert,
    /// update).
    pub dynamodb_write_calls: u64,
    /// Record writes plus the ledger's.
    pub dynamodb_write_units: u64,
    /// The ledger's share: three one-unit writes per count (`docs/ledger.md`) plus a few per
    /// job (create, seal, finish, event).
    pub ledger_write_units: u64,
    /// One header read per count, and every shard read once per shard that completes.
    pub ledger_read_units: u64,
}

/// A capped job, per worker instance (`plan::pacing`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pacing {
    /// cap / concurrency.
    pub share_units_per_second: f64,
    /// What one invocation writes before it hands on.
    pub units_per_part: f64,
    /// Invocations a batch takes (parts), at the share or the worker's own write rate.
    pub parts_per_batch: u64,
    /// Why the coordinator would refuse the job: the share cannot write one chunk a part.
    pub refused: Option<String>,
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
    /// Ranges the job's objects are split into (Parquet: row groups; 0: whole objects).
    pub ranges: u64,
    /// Bytes read from S3: the input once, or twice for split CSV objects (scan, then
    /// parse); Parquet adds each batch's footer read.
    pub bytes_read: u64,
    /// Counting batches in the ledger: the jobs table's limit, or the shards' per-item limit
    /// (two writes per count on one shard), whichever is lower.
    pub counting_seconds: f64,
    /// Write units per second the job may use: the table's limit, or the cap's share for
    /// the workers that run (each takes cap / concurrency).
    pub write_units_per_second: f64,
    /// A capped job's share per worker instance and what it means for a batch.
    pub pacing: Option<Pacing>,
    /// Set when the worker's memory (its CPU share) caps its write rate below what its
    /// write calls allow.
    pub cpu_bound: Option<CpuBound>,
    /// The stage that sets the pace.
    pub bottleneck: &'static str,
    pub wall_seconds: f64,
    pub lambda_gb_seconds: f64,
    pub requests: Requests,
    pub cost: Cost,
    /// The same objects planned from an S3 Inventory report instead of a LIST.
    pub inventory: InventoryPlanning,
}

/// A worker whose CPU, not its write calls, sets its rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuBound {
    /// Rows per second its CPU share allows (share / CPU seconds per row).
    pub rows_per_worker_second: f64,
    /// Rows per second its write calls would allow.
    pub calls_allow: f64,
    /// Its vCPU share (memory / 1,769 MB).
    pub cpu_share: f64,
}

/// Planning a job from an S3 Inventory report instead of a LIST (`docs/inventory.md`): the
/// manifest read, then count steps (one per data file, in parallel), the compose step, then
/// emit steps (one per data file, in parallel, each sending its file's key batches).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct InventoryPlanning {
    pub data_files: u64,
    /// Key batches per data file.
    pub batches_per_file: u64,
    /// One count step: read and batch one data file.
    pub count_seconds: f64,
    /// The compose step: read the counts (32 at a time), seal, send the emit batches.
    pub compose_seconds: f64,
    /// One emit step: read the file again and send its key batches.
    pub emit_seconds: f64,
    /// Until the first key batch is in the queue.
    pub first_batch_seconds: f64,
    /// Until every key batch is in the queue (the LIST-driven figure is `listing_seconds`).
    pub planning_seconds: f64,
    /// Objects put in batches in the queue per second over the planning.
    pub objects_per_second: f64,
    /// The LIST-driven figures for the same objects.
    pub list_seconds: f64,
    pub list_objects_per_second: f64,
    /// Extra work: 2 worker batches, 2 GETs of the data file and one small PUT per file.
    pub extra_batches: u64,
    pub data_file_gets: u64,
}

/// The inventory-driven planning of `input`'s objects, beside the LIST-driven one.
pub fn inventory_planning(input: &PlanInput) -> InventoryPlanning {
    let per_file = input.inventory_objects_per_file.max(1);
    let data_files = input.objects.div_ceil(per_file).max(1);
    let by_bytes = (input.batch_bytes / input.object_bytes.max(1)).max(1);
    let keys_per_batch = input.batch_size.max(1).min(by_bytes);
    let objects_in_file = per_file.min(input.objects.max(1));
    let batches_per_file = objects_in_file.div_ceil(keys_per_batch);
    let rounds = data_files.div_ceil(input.concurrency.max(1)) as f64;
    let overhead = input.invocation_overhead_seconds;
    let count_seconds =
        overhead + objects_in_file as f64 / input.inventory_rows_per_worker_second.max(1e-9);
    // 32 stored counts read at a time (~20 ms each), then the emit batches sent.
    let compose_seconds = overhead
        + data_files.div_ceil(32) as f64 * 0.02
        + data_files.div_ceil(10) as f64 * input.send_batch_seconds;
    // The emit keeps a few SendMessageBatch calls in flight.
    let in_flight = super::inventory::SENDS_IN_FLIGHT as u64;
    let emit_seconds = count_seconds
        + batches_per_file.div_ceil(10).div_ceil(in_flight) as f64 * input.send_batch_seconds;
    let manifest_seconds = 0.1;
    // The first emit sends its first 10 batches after ~1,000 rows: about one call.
    let first_batch_seconds = manifest_seconds
        + count_seconds * rounds
        + compose_seconds
        + overhead
        + input.send_batch_seconds;
    let planning_seconds =
        manifest_seconds + count_seconds * rounds + compose_seconds + emit_seconds * rounds;
    let list_seconds = input.objects.div_ceil(1000) as f64 * input.list_page_seconds;
    InventoryPlanning {
        data_files,
        batches_per_file,
        count_seconds,
        compose_seconds,
        emit_seconds,
        first_batch_seconds,
        planning_seconds,
        objects_per_second: input.objects as f64 / planning_seconds.max(1e-9),
        list_seconds,
        list_objects_per_second: input.objects as f64 / list_seconds.max(1e-9),
        extra_batches: 2 * data_files,
        data_file_gets: 2 * data_files,
    }
}

pub fn plan(input: &PlanInput) -> Plan {
    // A batch closes at BATCH_SIZE keys or BATCH_BYTES bytes, whichever comes first.
    let by_bytes = (input.batch_bytes / input.object_bytes.max(1)).max(1);
    let batch_size = input.batch_size.max(1).min(by_bytes);
    let input_bytes = input.objects * input.object_bytes;
    let chunk = input.range_chunk_bytes.max(1);
    let split = input.object_bytes > chunk;
    let shape = Split::of(input);
    let batches = if split {
        shape.batches
    } else {
        input.objects.div_ceil(batch_size)
    };
    let ranges = if split { shape.ranges } else { 0 };
    let rows = input.objects * input.rows_per_object;
    let workers = input.concurrency.max(1).min(batches.max(1));
    // A vCPU share below one full vCPU slows reading in proportion.
    let cpu_share = (input.worker_memory_mb as f64 / 1769.0).min(1.0);
    let files_per_second = input.files_per_worker_second.max(1e-9) * cpu_share;
    // A delete is billed for the item it deletes: the stored item's size all the same.
    let units_per_row = input.item_bytes.max(1).div_ceil(1024);

    let pages = input.objects.div_ceil(1000);
    let listing_seconds = pages as f64 * input.list_page_seconds;
    let reading_seconds = if split {
        shape.reading_seconds(input, cpu_share) / workers as f64
    } else {
        input.objects as f64 / (files_per_second * workers as f64)
    };
    let (network_per_worker, cpu_per_row, write_calls) = match input.write_mode {
        WriteMode::Put | WriteMode::Delete => (
            input.rows_written_per_worker_second,
            input.cpu_seconds_per_row_batched,
            rows.div_ceil(25),
        ),
        WriteMode::Insert | WriteMode::Update => (
            input.single_writes_per_worker_second,
            input.cpu_seconds_per_row_single,
            rows,
        ),
    };
    // A worker writes as fast as its calls allow, unless its CPU share cannot keep up.
    let cpu_per_worker = cpu_share / cpu_per_row.max(1e-12);
    let per_worker = network_per_worker.min(cpu_per_worker);
    let cpu_bound = (cpu_per_worker < network_per_worker).then_some(CpuBound {
        rows_per_worker_second: cpu_per_worker,
        calls_allow: network_per_worker,
        cpu_share,
    });
    // Each worker instance paces itself to cap / concurrency: fewer workers, less of it.
    let write_units_per_second = match input.max_write_rate {
        Some(cap) => {
            (cap * workers as f64 / input.concurrency.max(1) as f64).min(input.table_write_units)
        }
        None => input.table_write_units,
    };
    // Writes are capped by the workers and by the table (or the cap), whichever is lower.
    let write_rows_per_second =
        (per_worker * workers as f64).min(write_units_per_second / units_per_row as f64);
    let writing_seconds = rows as f64 / write_rows_per_second.max(1e-9);
    // A capped batch writes at most its share's units per invocation, then hands on.
    let pacing = input.max_write_rate.map(|cap| {
        let instances = input.concurrency.max(1) as usize;
        let checked = super::pacing::check(cap, instances, input.worker_part_seconds);
        let share = checked.as_ref().map_or_else(|e| e.share, |share| *share);
        let units_per_batch = (batch_size * input.rows_per_object * units_per_row) as f64;
        let units_per_part = share
            .units_per_part
            .min(per_worker * units_per_row as f64 * input.worker_part_seconds);
        Pacing {
            share_units_per_second: share.units_per_second,
            units_per_part: share.units_per_part,
            parts_per_batch: ((units_per_batch / units_per_part.max(1e-9)).ceil() as u64).max(1),
            refused: checked.err().map(|e| e.to_string()),
        }
    });
    // Each part after a batch's first is a continuation: one more message and invocation.
    let continuations = pacing
        .as_ref()
        .map_or(0, |p| batches * (p.parts_per_batch - 1));
    let shards = f64::from(input.ledger_shards.max(1));
    let counts_per_second = (input.ledger_write_units / LEDGER_WRITES_PER_COUNT as f64)
        .min(shards * ITEM_WRITE_UNITS_PER_SECOND / 2.0);
    let counting_seconds = batches as f64 / counts_per_second.max(1e-9);
    let stages = [
        ("listing", listing_seconds),
        ("reading", reading_seconds),
        ("writing", writing_seconds),
        ("counting", counting_seconds),
    ];
    let (bottleneck, slowest) = stages.into_iter().fold(("listing", 0.0), |best, stage| {
        if stage.1 > best.1 { stage } else { best }
    });
    // The pipeline runs at the slowest stage's pace; the last batch still has to go through.
    let batch_seconds = input.invocation_overhead_seconds
        + if split {
            shape.reading_seconds(input, cpu_share) / shape.batches.max(1) as f64
        } else {
            batch_size.min(input.objects) as f64 / files_per_second
        };
    let wall_seconds = slowest + batch_seconds;

    // Each worker is busy for its batch's share of the slowest stage, plus overhead.
    let busy_seconds =
        slowest * workers as f64 + batches as f64 * input.invocation_overhead_seconds;
    let lambda_gb_seconds = busy_seconds * input.worker_memory_mb as f64 / 1024.0;
    let ledger_write_units = LEDGER_WRITES_PER_COUNT * batches + LEDGER_WRITES_PER_JOB;
    let ledger_shards = u64::from(input.ledger_shards.max(1));
    let requests = Requests {
        s3_list: pages,
        s3_get: if split { shape.gets } else { input.objects },
        // Split CSV objects add one compose message (and invocation) each.
        sqs: batches.div_ceil(10)
            + 2 * batches
            + 3 * continuations
            + if split { shape.composes } else { 0 },
        // The coordinator lists for ~14 minutes per invocation, then continues in the next.
        lambda_invocations: batches
            + continuations
            + ((listing_seconds / 840.0).ceil() as u64).max(1)
            + if split { shape.composes } else { 0 },
        dynamodb_write_calls: write_calls,
        dynamodb_write_units: rows * units_per_row + ledger_write_units,
        ledger_write_units,
        ledger_read_units: batches + ledger_shards * (ledger_shards + 1),
    };
    let lambda = lambda_gb_seconds * price::LAMBDA_ARM_GB_SECOND
        + requests.lambda_invocations as f64 * price::LAMBDA_REQUEST;
    let sqs = requests.sqs as f64 * price::SQS_REQUEST;
    let dynamodb = requests.dynamodb_write_units as f64 * price::DYNAMODB_WRITE_UNIT
        + requests.ledger_read_units as f64 * price::DYNAMODB_READ_UNIT;
    let s3 = requests.s3_get as f64 * price::S3_GET + requests.s3_list as f64 * price::S3_LIST;
    Plan {
        batches,
        rows,
        workers,
        listing_seconds,
        reading_seconds,
        writing_seconds,
        ranges,
        bytes_read: if split { shape.bytes_read } else { input_bytes },
        counting_seconds,
        write_units_per_second,
        pacing,
        cpu_bound,
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
        inventory: inventory_planning(input),
    }
}

/// How a job's objects split when they are above the range size, by format.
struct Split {
    /// Ranges (Parquet: row groups) over every object.
    ranges: u64,
    batches: u64,
    bytes_read: u64,
    /// GETs: CSV a scan, a read of the stored scan and a parse per range; JSON Lines a
    /// parse per range; Parquet a footer per object at planning, then a footer and the
    /// column chunks per batch.
    gets: u64,
    /// Compose steps (one per split CSV object).
    composes: u64,
    format: ObjectFormat,
}

/// A Parquet footer read (the last 64 KiB, as the coordinator and each batch read it).
const PARQUET_FOOTER_BYTES: u64 = 64 << 10;

impl Split {
    fn of(input: &PlanInput) -> Split {
        let chunk = input.range_chunk_bytes.max(1);
        let bytes = input.objects * input.object_bytes;
        let per_object = input.object_bytes.div_ceil(chunk);
        match input.format {
            ObjectFormat::Csv => Split {
                ranges: input.objects * per_object,
                batches: 2 * input.objects * per_object,
                bytes_read: 2 * bytes,
                gets: 3 * input.objects * per_object,
                composes: input.objects,
                format: input.format,
            },
            ObjectFormat::JsonLines => Split {
                ranges: input.objects * per_object,
                batches: input.objects * per_object,
                bytes_read: bytes,
                gets: input.objects * per_object,
                composes: 0,
                format: input.format,
            },
            ObjectFormat::Parquet => {
                let group = input.row_group_bytes.max(1);
                let groups = input.object_bytes.div_ceil(group);
                let per_batch = (chunk / group).max(1);
                let batches = input.objects * groups.div_ceil(per_batch);
                Split {
                    ranges: input.objects * groups,
                    batches,
                    bytes_read: bytes + (input.objects + batches) * PARQUET_FOOTER_BYTES,
                    gets: input.objects + 2 * batches,
                    composes: 0,
                    format: input.format,
                }
            }
        }
    }

    /// One worker's seconds for every split object (at `cpu_share` of a vCPU).
    fn reading_seconds(&self, input: &PlanInput, cpu_share: f64) -> f64 {
        let bytes = (input.objects * input.object_bytes) as f64;
        let parsing = bytes / (input.range_bytes_per_worker_second * cpu_share).max(1e-9);
        match self.format {
            ObjectFormat::Csv => bytes / input.scan_bytes_per_worker_second.max(1e-9) + parsing,
            ObjectFormat::JsonLines => parsing,
            ObjectFormat::Parquet => {
                let rows = (input.objects * input.rows_per_object) as f64;
                rows / (input.parquet_rows_per_worker_second * cpu_share).max(1e-9)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_objects_split_by_their_format() {
        // 100 objects of 1 GiB, 8 M rows each, 32 MiB ranges, 128 MiB row groups.
        let at = |format| {
            plan(&PlanInput {
                format,
                objects: 100,
                object_bytes: 1 << 30,
                rows_per_object: 8_000_000,
                ..PlanInput::default()
            })
        };
        let (csv, jsonl, parquet) = (
            at(ObjectFormat::Csv),
            at(ObjectFormat::JsonLines),
            at(ObjectFormat::Parquet),
        );
        assert_eq!((csv.ranges, csv.batches), (3_200, 6_400));
        assert_eq!(csv.bytes_read, 2 * 100 * (1 << 30));
        assert_eq!((jsonl.ranges, jsonl.batches), (3_200, 3_200));
        assert_eq!(jsonl.bytes_read, 100 * (1 << 30));
        // Eight 128 MiB row groups an object, each above the range size: one a batch.
        assert_eq!((parquet.ranges, parquet.batches), (800, 800));
        assert_eq!(parquet.requests.s3_get, 100 + 2 * 800);
        assert_eq!(parquet.bytes_read, 100 * (1 << 30) + 900 * (64 << 10));
        // Parquet is read by rows, CSV and JSON Lines by bytes.
        assert!(parquet.reading_seconds > jsonl.reading_seconds);
        assert!(csv.reading_seconds > jsonl.reading_seconds);
        // Small row groups share a batch up to the range size: 4 MiB groups, 8 a batch.
        let small_groups = plan(&PlanInput {
            format: ObjectFormat::Parquet,
            objects: 1,
            object_bytes: 1 << 30,
            row_group_bytes: 4 << 20,
            ..PlanInput::default()
        });
        assert_eq!((small_groups.ranges, small_groups.batches), (256, 32));
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn inventory_planning_grows_with_files_over_workers_where_listing_grows_with_pages() {
        let at = |objects: u64| {
            inventory_planning(&PlanInput {
                objects,
                ..PlanInput::default()
            })
        };
        let million = at(1_000_000);
        assert_eq!((million.data_files, million.batches_per_file), (1, 10_000));
        assert!(close(million.list_seconds, 100.0));
        // One file: count 0.05 s + 10^6 rows at 750,000 rows/s, compose, emit: the same read
        // plus 1,000 sends of 20 ms, 8 at a time.
        let count = 0.05 + 1e6 / 750_000.0;
        assert!(close(million.count_seconds, count));
        assert!(close(million.emit_seconds, count + 125.0 * 0.02));
        assert!(close(million.compose_seconds, 0.05 + 0.02 + 0.02));
        assert!(close(
            million.planning_seconds,
            0.1 + count + 0.09 + count + 2.5
        ));
        let hundred_million = at(100_000_000);
        assert_eq!(hundred_million.data_files, 100);
        assert!(close(hundred_million.list_seconds, 10_000.0));
        // 100 files over 50 workers: two rounds of counts, then two of emits.
        assert!(close(
            hundred_million.planning_seconds,
            0.1 + 2.0 * count + (0.05 + 4.0 * 0.02 + 10.0 * 0.02) + 2.0 * (count + 2.5)
        ));
        assert!(hundred_million.planning_seconds < 15.0);
        assert!(hundred_million.first_batch_seconds < 4.0);
        assert!(
            hundred_million.objects_per_second > 200.0 * hundred_million.list_objects_per_second
        );
        assert_eq!(hundred_million.extra_batches, 200);
    }
}
