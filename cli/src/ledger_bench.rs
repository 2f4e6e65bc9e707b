//! The ledger table of `s3-fanout bench`: synthetic jobs of 1k, 10k and 100k batches counted
//! against the local DynamoDB server (counts only, no rows), each with its own fresh table.
//! For each: write units per count as the server reports them (ConsumedCapacity, billed as
//! DynamoDB bills it), the largest ledger item, and the count rate. Flat columns are the
//! point: the cost of a count does not grow with the job (`docs/ledger.md`).

use std::time::Instant;

use anyhow::{Result, bail};
use devkit::provision;
use devkit::servers::LocalAws;
use futures::{StreamExt, TryStreamExt, stream};
use shared::aws::{DynamoLedger, item_size};
use shared::contract::ids::{BatchNo, JobId};
use shared::fan_in::LedgerStore as _;
use shared::fan_in::{Ledger, ListingProgress};
use shared::job::model::{BatchStats, Job, JobStatus};

/// Counts in flight: enough to keep the local server busy on two cores.
const IN_FLIGHT: usize = 64;

pub struct LedgerRun {
    pub batches: u64,
    pub seconds: f64,
    pub units_per_count: f64,
    pub writes_per_count: f64,
    pub largest_item: usize,
}

pub async fn ledger_bench(servers: &LocalAws, sizes: &[u64]) -> Result<()> {
    let mut runs = Vec::new();
    for &batches in sizes {
        let run = count_job(servers, batches).await?;
        eprintln!(
            "ledger: {batches} batches in {:.1} s, {:.2} write units per count",
            run.seconds, run.units_per_count
        );
        runs.push(run);
    }
    println!(
        "\nLedger fan-in on the local DynamoDB server (dynalite): synthetic jobs, counts only, {IN_FLIGHT} in flight, sealed half way:\n"
    );
    println!(
        "| batches | write units per count (ConsumedCapacity) | writes per count | largest ledger item | counts/s |"
    );
    println!("|---|---|---|---|---|");
    for run in &runs {
        println!(
            "| {} | {:.2} | {:.2} | {} B | {:.0} |",
            run.batches,
            run.units_per_count,
            run.writes_per_count,
            run.largest_item,
            run.batches as f64 / run.seconds
        );
    }
    Ok(())
}

async fn count_job(servers: &LocalAws, batches: u64) -> Result<LedgerRun> {
    let clients = servers.clients();
    let table = format!("bench-ledger-{batches}");
    provision::ensure_jobs_table(&clients.dynamodb, &table).await?;
    let ledger = DynamoLedger::new(clients.dynamodb.clone(), &table);
    let job_id = JobId::new(format!("ledger-bench-{batches}"));
    ledger.create(&Job::new(&job_id, "bench", "")).await?;
    let stats = BatchStats {
        files: 100,
        rows_written: 10_000,
        ..BatchStats::default()
    };
    let started = Instant::now();
    let count = |range: std::ops::Range<u64>| {
        let (ledger, job_id) = (&ledger, &job_id);
        stream::iter(range)
            .map(move |batch| async move {
                let recorded = ledger.record_batch(job_id, BatchNo(batch), &stats).await?;
                Ok::<_, anyhow::Error>(ledger.try_finish(recorded.job()).await?.is_some())
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<Vec<bool>>()
    };
    let mut finishers = count(0..batches / 2).await?;
    let seal = ListingProgress {
        batches,
        files_listed: batches * 100,
        files_skipped: 0,
        planning_bytes_read: 0,
    };
    finishers.push(ledger.seal(&job_id, seal, None).await?.is_some());
    finishers.extend(count(batches / 2..batches).await?);
    let seconds = started.elapsed().as_secs_f64();
    let (units, writes) = ledger.write_units();
    let job = ledger
        .get(&job_id)
        .await?
        .unwrap_or_else(|| Job::new("?", "", ""));
    let finished = finishers.iter().filter(|f| **f).count();
    if job.status != JobStatus::Complete
        || job.batches_done != batches
        || job.totals.rows_written != batches * 10_000
        || finished != 1
    {
        bail!(
            "the ledger bench job ended {:?} with {} of {batches} batches and {finished} final transitions",
            job.status,
            job.batches_done
        );
    }
    Ok(LedgerRun {
        batches,
        seconds,
        units_per_count: units / batches as f64,
        writes_per_count: writes as f64 / batches as f64,
        largest_item: largest_item(&clients.dynamodb, &table, &job_id).await?,
    })
}

/// The largest of the job's header and shards (markers are all alike and smaller: one is
/// measured too), read by key: the largest item a count ever writes or rewrites.
async fn largest_item(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    job_id: &JobId,
) -> Result<usize> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let mut keys = vec![job_id.to_string(), format!("{job_id}#b0")];
    keys.extend((0..shared::job::shards::SHARDS).map(|k| format!("{job_id}#s{k}")));
    let mut largest = 0;
    for key in keys {
        let item = ddb
            .get_item()
            .table_name(table)
            .key("job_id", AttributeValue::S(key))
            .send()
            .await?
            .item
            .unwrap_or_default();
        largest = largest.max(item_size(&item));
    }
    Ok(largest)
}
