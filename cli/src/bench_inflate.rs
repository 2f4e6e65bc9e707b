//! A large compressed object through the inflate step (`docs/compressed.md`): a `.csv.gz`
//! that decodes to `mib` MiB, loaded by a local job whose worker invocations have a short
//! budget, so the inflate step hands on and its plain parts load as batches of their own
//! while it goes on. S3 (the object, the scratch parts), SQS and the ledger are the local
//! servers; the rows go to the in-memory table double (held to the table's contract suite),
//! because the local DynamoDB server stores ~0.5 MB/s and would make this table about it.
//! Every row must land once; the table says what it cost.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use devkit::pipeline::LocalPipeline;
use devkit::provision::{self, QueueSettings, Resources};
use devkit::servers::LocalAws;
use shared::contract::messages::JobRequest;
use shared::job::model::JobStatus;
use shared::port::memory::MemoryTable;

/// Bytes of the note of each row.
const NOTE_BYTES: usize = 200;
/// Each worker invocation's budget (the template gives 120 s): the inflate of a few
/// hundred MB outlasts it and hands on.
const BUDGET: Duration = Duration::from_secs(20);

/// `bytes` of `id,note` rows, ids `r00000000` on, notes of pseudo-random letters (so gzip
/// keeps them near 0.6 of their size, over the inflate threshold); and how many rows.
fn wide_rows(bytes: u64) -> (String, u64) {
    let mut csv = String::with_capacity(bytes as usize + NOTE_BYTES);
    csv.push_str("id,note\n");
    let mut state: u32 = 0x9e37_79b9;
    let mut rows = 0u64;
    while (csv.len() as u64) < bytes {
        csv.push_str(&format!("r{rows:08},"));
        for _ in 0..NOTE_BYTES {
            // xorshift32: cheap, deterministic, not compressible to nothing.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            csv.push(char::from(b'a' + (state % 26) as u8));
        }
        csv.push('\n');
        rows += 1;
    }
    (csv, rows)
}

pub async fn inflate_bench(servers: &LocalAws, mib: u64, chunk_mib: u64) -> Result<()> {
    let clients = servers.clients();
    let resources = Resources::named(&format!("bench-inflate-{mib}"));
    // Hidden longer than an invocation can run: nothing is received again while it runs.
    let settings = QueueSettings {
        visibility_timeout: 6 * BUDGET,
        max_receive_count: 5,
    };
    let provisioned = provision::ensure(&clients, &resources, settings).await?;
    // The coordinator checks the job's key against the real table; the rows go to memory.
    let table = format!("{}-wide", resources.bucket);
    provision::ensure_table(&clients.dynamodb, &table, "id", None).await?;
    let records = std::sync::Arc::new(MemoryTable::new("id", None));
    let (csv, rows) = wide_rows(mib << 20);
    let decoded = csv.len() as u64;
    let packed = devkit::sample::encoded(".csv.gz", csv.as_bytes()).await?;
    drop(csv);
    let compressed = packed.len() as u64;
    let chunk = chunk_mib << 20;
    if compressed <= chunk {
        bail!("{compressed} compressed bytes are not over the {chunk}-byte inflate threshold");
    }
    let key = "inflate/wide.csv.gz";
    clients
        .s3
        .put_object()
        .bucket(&resources.bucket)
        .key(key)
        .body(packed.into())
        .send()
        .await
        .context("uploading the compressed object")?;

    let mut pipeline = LocalPipeline::new(clients.clone(), &resources, &provisioned);
    pipeline.records_table(&table);
    pipeline.coordinator.range_chunk_bytes = chunk;
    pipeline.worker_budget = BUDGET;
    // 20 s less Lambda's 10 s deadline margin leaves 10 s; stop 3 s before it.
    pipeline.worker.resume_margin = Duration::from_secs(3);
    pipeline.pollers = 4;
    pipeline.timeout = Duration::from_secs(1800);
    let schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string"},
        ],
    }))?;
    let request = JobRequest {
        key: Some(key.to_owned()),
        schema: Some(schema),
        ..JobRequest::new(&resources.bucket, "")
    };
    let before = crate::bench::usage().0;
    let job = (pipeline
        .run_with_writes(request, records.clone(), |_| {})
        .await)
        .context("the inflate job")?;
    let cpu_seconds = crate::bench::usage().0 - before;
    let seconds = job.duration_seconds.unwrap_or_default();
    if job.status != JobStatus::Complete || job.totals.rows_written != rows {
        bail!(
            "the inflate job ended {:?} with {} of {rows} rows",
            job.status,
            job.totals.rows_written
        );
    }
    let stored = records.items(&table).len() as u64;
    if stored != rows {
        bail!("{stored} items in the table for {rows} rows");
    }
    let mb = |bytes: u64| bytes as f64 / 1e6;
    println!();
    println!(
        "### One large `.csv.gz` through the inflate step ({:.0} MB decoded, {}-MiB parts, worker invocations of {} s)",
        mb(decoded),
        chunk_mib,
        BUDGET.as_secs()
    );
    println!();
    println!(
        "| compressed | decoded | rows | in the table | wall | CPU (this process) | rows/s | decoded MB per CPU-s | bytes read | reads of the compressed object |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // The parts read the decoded bytes once; each inflate invocation reads the compressed
    // stream from its start (it cannot be entered mid-way), so the rest says how many ran.
    let reads = job.totals.bytes_read.saturating_sub(decoded) as f64 / compressed as f64;
    println!(
        "| {:.1} MB | {:.1} MB | {rows} | {stored} | {seconds:.1} s | {cpu_seconds:.1} s | {:.0} | {:.1} | {:.1} MB | {reads:.2} |",
        mb(compressed),
        mb(decoded),
        rows as f64 / seconds.max(1e-9),
        mb(decoded) / cpu_seconds.max(1e-9),
        mb(job.totals.bytes_read),
    );
    Ok(())
}
