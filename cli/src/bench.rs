//! `s3-fanout bench`: the worker's read path (list + GET + decode + type) against the first
//! seed's loop, side by side on the same local S3 and the same files, one thread each.
//! Every run is a child process of its own, so CPU time and peak RSS are that run's alone;
//! modes alternate and the table shows medians.

use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use shared::app::coordinator::PrefixLister;
use shared::app::worker::WriteOutcome;
use shared::aws::{Clients, S3Objects};
use shared::contract::schema::Schema;
use shared::ingest::rejects::BatchRejects;
use shared::limiter::AimdLimiter;
use shared::{app::worker::Loader, contract::messages::Unit};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Args)]
pub struct BenchArgs {
    /// Seed-shaped files of 100 rows.
    #[arg(long, default_value_t = 10_000)]
    pub files: usize,
    /// Runs of each mode; the table shows medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Local S3 server.
    #[arg(long, default_value = "s3s-fs")]
    pub s3: devkit::servers::Server,
    /// Size of each large object of the range-mode table (a plain, a quoted and a
    /// no-newline CSV), in MiB (0 skips it).
    #[arg(long, default_value_t = 1024)]
    pub large_mib: u64,
    /// Decoded size of the `.csv.gz` the inflate table loads through scratch parts, in MiB
    /// (0 skips it).
    #[arg(long, default_value_t = 256)]
    pub inflate_mib: u64,
    /// Range size in the range-mode table, in MiB.
    #[arg(long, default_value_t = 32)]
    pub chunk_mib: u64,
    /// Skip the end-to-end table (local jobs against the DynamoDB ceiling and the plan).
    #[arg(long)]
    pub no_e2e: bool,
    /// Skip the write rate cap table (capped local jobs against their cap).
    #[arg(long)]
    pub no_cap: bool,
    /// Time to first byte the latency table injects, in ms (0 skips the table).
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// Synthetic jobs of these many batches for the ledger table (empty: skip it).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub ledger_batches: Vec<u64>,
    /// Objects of the planning table (LIST-driven against S3 Inventory-driven planning;
    /// 0 skips it).
    #[arg(long, default_value_t = 20_000)]
    pub planning_objects: usize,
    /// Objects per data file of the planning table's inventory report.
    #[arg(long, default_value_t = 2_500)]
    pub planning_per_file: usize,
    /// Only the ledger table (skips every other table).
    #[arg(long)]
    pub ledger_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Mode {
    /// The worker's loader: AIMD semaphore (256) + buffer_unordered (512), streaming typed decode.
    Ours,
    /// The first seed: Semaphore(750) + buffer_unordered(1000), String per body and field, all collected.
    Seed,
    /// The server's ceiling: signed GETs over a bare HTTP client, 256 in flight, bodies dropped.
    Ceiling,
    /// One large object as byte ranges (large-object mode), ranges decoded 4 at a time.
    Ranges,
    /// The same object in one GET, decoded as one stream.
    WholeObject,
    /// The same rows in memory through a lean `csv` `ByteRecord` loop, typed, no item built.
    MemoryCeiling,
    /// The same rows in memory through the worker's decoder, items built.
    MemoryOurs,
    /// The same rows written as Parquet (before the clock), through the worker's decoder.
    MemoryParquet,
}

/// What one child run measured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Measured {
    pub files: u64,
    pub rows: u64,
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_mb: f64,
    /// Bytes read from S3 (large-object modes).
    #[serde(default)]
    pub bytes_read: u64,
}

#[derive(Args)]
pub struct ChildArgs {
    #[arg(long)]
    pub mode: Mode,
    #[arg(long)]
    pub bucket: String,
    /// The prefix (files modes), the object key (large-object modes) or the rows' shape,
    /// `plain` or `quoted` (in-memory modes).
    #[arg(long)]
    pub prefix: String,
    /// Range size for `ranges`, in bytes; the rows' size for the in-memory modes.
    #[arg(long, default_value_t = 32 << 20)]
    pub chunk_bytes: u64,
    /// GETs in flight for `ours` (the semaphore and the buffer_unordered width).
    #[arg(long)]
    pub in_flight: Option<usize>,
}

pub async fn bench(args: BenchArgs) -> Result<()> {
    let servers = devkit::servers::LocalAws::start(devkit::servers::ServerChoice {
        s3: args.s3,
        dynamodb: devkit::servers::Server::Dynalite,
    })?;
    let ledger_sizes: Vec<u64> = args
        .ledger_batches
        .iter()
        .copied()
        .filter(|n| *n > 0)
        .collect();
    if args.ledger_only {
        return crate::ledger_bench::ledger_bench(&servers, &ledger_sizes).await;
    }
    let clients = servers.clients();
    let bucket = "s3fanout-bench";
    clients
        .s3
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .context("creating the bench bucket")?;
    let spec = devkit::sample::SampleSpec::new("bench/", args.files, 100);
    let started = Instant::now();
    spec.upload(&clients.s3, bucket, 64, || {}).await?;
    eprintln!(
        "uploaded {} files in {:.1}s to {}",
        args.files,
        started.elapsed().as_secs_f64(),
        args.s3
    );

    let mut results: Vec<(Mode, Vec<Measured>)> = vec![
        (Mode::Ceiling, vec![]),
        (Mode::Ours, vec![]),
        (Mode::Seed, vec![]),
    ];
    let modes = results.len();
    for run in 0..args.runs {
        // The order rotates per run, so no loop always meets a cold server.
        for slot in 0..modes {
            let (mode, measured) = &mut results[(slot + run) % modes];
            let m = run_child(*mode, &servers, bucket, &spec.prefix)?;
            eprintln!(
                "run {} {:?}: {:.0} files/s, {:.2} CPU s, {:.0} MB",
                run + 1,
                mode,
                m.files as f64 / m.wall_seconds,
                m.cpu_seconds,
                m.peak_rss_mb
            );
            let rows = match mode {
                Mode::Ceiling => 0, // bodies are not decoded
                _ => spec.total_rows(),
            };
            if m.files != args.files as u64 || m.rows != rows {
                bail!(
                    "{mode:?} read {} files / {} rows, expected {} / {}",
                    m.files,
                    m.rows,
                    args.files,
                    rows
                );
            }
            measured.push(m);
        }
    }
    let medians: Vec<(Mode, Measured)> = results
        .iter()
        .map(|(mode, runs)| (*mode, median(runs)))
        .collect();
    print_table(&medians, args.files, args.runs, args.s3);
    if args.latency_ms > 0 {
        latency_bench(&args, &servers, bucket).await?;
    }
    if args.large_mib > 0 {
        crate::bench_large::large_object_bench(&args, &servers, bucket).await?;
    }
    if args.inflate_mib > 0 {
        crate::bench_inflate::inflate_bench(&servers, args.inflate_mib, args.chunk_mib).await?;
    }
    if !args.no_e2e {
        let ours = medians[1].1;
        let files_per_second = ours.files as f64 / ours.wall_seconds;
        crate::e2e_bench::e2e_bench(&servers, files_per_second, args.runs).await?;
    }
    if args.planning_objects > 0 {
        crate::plan_bench::planning_bench(&servers, args.planning_objects, args.planning_per_file)
            .await?;
    }
    if !ledger_sizes.is_empty() {
        crate::ledger_bench::ledger_bench(&servers, &ledger_sizes).await?;
    }
    if !args.no_cap {
        crate::cap_bench::cap_bench(&servers).await?;
    }
    Ok(())
}

/// Files/s of the worker's read path against in-flight limits, with a delaying proxy in
/// front of the server, next to the C / L bound.
async fn latency_bench(
    args: &BenchArgs,
    servers: &devkit::servers::LocalAws,
    bucket: &str,
) -> Result<()> {
    let files = 2_000;
    let spec = devkit::sample::SampleSpec::new("bench-latency/", files, 100);
    spec.upload(&servers.clients().s3, bucket, 64, || {})
        .await?;
    let upstream = servers
        .endpoints
        .s3
        .clone()
        .context("the bench's S3 server has an endpoint")?;
    let latency = std::time::Duration::from_millis(args.latency_ms);
    let proxy = crate::latency::start(&upstream, latency)?;
    println!(
        "\nWorker read path through a proxy adding {} ms to every response's first byte, {files} files, one thread, median of {} runs:\n",
        args.latency_ms, args.runs
    );
    println!("| GETs in flight | files/s | C / L bound | of the bound | CPU s |");
    println!("|---|---|---|---|---|");
    for in_flight in [16usize, 64, 256, 1024] {
        let mut runs = Vec::new();
        for _ in 0..args.runs {
            let mut command = child_command(Mode::Ours, servers, bucket, &spec.prefix, 32 << 20)?;
            command
                .env("AWS_ENDPOINT_URL_S3", &proxy)
                .args(["--in-flight", &in_flight.to_string()]);
            let m = run_command(Mode::Ours, command)?;
            if m.rows != spec.total_rows() {
                bail!(
                    "the latency run read {} rows, expected {}",
                    m.rows,
                    spec.total_rows()
                );
            }
            runs.push(m);
        }
        let m = median(&runs);
        let bound = in_flight as f64 / latency.as_secs_f64();
        let rate = m.files as f64 / m.wall_seconds;
        println!(
            "| {in_flight} | {rate:.0} | {bound:.0} | {:.0}% | {:.2} |",
            100.0 * rate / bound,
            m.cpu_seconds
        );
    }
    Ok(())
}

fn run_child(
    mode: Mode,
    servers: &devkit::servers::LocalAws,
    bucket: &str,
    prefix: &str,
) -> Result<Measured> {
    run_child_with(mode, servers, bucket, prefix, 32 << 20)
}

pub(crate) fn run_child_with(
    mode: Mode,
    servers: &devkit::servers::LocalAws,
    bucket: &str,
    prefix: &str,
    chunk_bytes: u64,
) -> Result<Measured> {
    run_command(
        mode,
        child_command(mode, servers, bucket, prefix, chunk_bytes)?,
    )
}

/// A `bench-child` run of `mode` against the servers.
fn child_command(
    mode: Mode,
    servers: &devkit::servers::LocalAws,
    bucket: &str,
    prefix: &str,
    chunk_bytes: u64,
) -> Result<Command> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args([
            "bench-child",
            "--mode",
            mode_name(mode),
            "--bucket",
            bucket,
            "--prefix",
            prefix,
            "--chunk-bytes",
            &chunk_bytes.to_string(),
        ])
        .envs(servers.env());
    Ok(command)
}

fn run_command(mode: Mode, mut command: Command) -> Result<Measured> {
    let output = command.output().context("running a bench child")?;
    if !output.status.success() {
        bail!(
            "bench child {mode:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("reading a bench child's result")
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Ours => "ours",
        Mode::Seed => "seed",
        Mode::Ceiling => "ceiling",
        Mode::Ranges => "ranges",
        Mode::WholeObject => "whole-object",
        Mode::MemoryCeiling => "memory-ceiling",
        Mode::MemoryOurs => "memory-ours",
        Mode::MemoryParquet => "memory-parquet",
    }
}

/// One measured run, in this process (a child of `bench`); prints its JSON result.
pub async fn child(args: ChildArgs) -> Result<()> {
    let clients = Clients::from_env().await;
    // An in-memory run's rows are made before the clock starts: only decoding is measured.
    let memory = match args.mode {
        Mode::MemoryCeiling | Mode::MemoryOurs => {
            Some(crate::bench_memory::shaped(&args.prefix, args.chunk_bytes)?)
        }
        Mode::MemoryParquet => {
            let (csv, rows) = crate::bench_memory::shaped(&args.prefix, args.chunk_bytes)?;
            Some((crate::bench_parquet::parquet_of(&csv)?, rows))
        }
        _ => None,
    };
    let before = usage();
    let started = Instant::now();
    let mut bytes_read = 0;
    let (files, rows) = match args.mode {
        Mode::Ours => ours(&clients, &args.bucket, &args.prefix, args.in_flight).await?,
        Mode::Seed => seed(&clients.s3, &args.bucket, &args.prefix).await?,
        Mode::Ceiling => {
            let keys = list_keys(&clients, &args.bucket, &args.prefix).await?;
            let (files, _) = crate::ceiling::lean_gets(&args.bucket, &keys).await?;
            (files, 0)
        }
        Mode::Ranges | Mode::WholeObject => {
            let (files, rows, read) = crate::bench_large::large(
                &clients,
                &args.bucket,
                &args.prefix,
                args.mode,
                args.chunk_bytes,
            )
            .await?;
            bytes_read = read;
            (files, rows)
        }
        Mode::MemoryCeiling | Mode::MemoryOurs => {
            let (body, _) = memory.as_ref().context("an in-memory run has its rows")?;
            let rows = if args.mode == Mode::MemoryCeiling {
                crate::bench_memory::ceiling(body)?
            } else {
                crate::bench_memory::ours(body).await?
            };
            (1, rows)
        }
        Mode::MemoryParquet => {
            let (file, _) = memory.as_ref().context("an in-memory run has its rows")?;
            // Its input: the Parquet file's own bytes (the CSV's are the table's size).
            bytes_read = file.len() as u64;
            (1, crate::bench_parquet::ours(file).await?)
        }
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    let after = usage();
    let measured = Measured {
        files,
        rows,
        wall_seconds,
        cpu_seconds: after.0 - before.0,
        peak_rss_mb: after.1,
        bytes_read,
    };
    println!("{}", serde_json::to_string(&measured)?);
    Ok(())
}

/// The worker's read path: list, then the loader with a sink that counts rows.
/// `in_flight` sets both limits (GET permits and `buffer_unordered` width); the worker's
/// defaults (256 and 512) otherwise.
async fn ours(
    clients: &Clients,
    bucket: &str,
    prefix: &str,
    in_flight: Option<usize>,
) -> Result<(u64, u64)> {
    let keys = list_keys(clients, bucket, prefix).await?;
    let work: Vec<Unit> = keys.iter().map(|key| Unit::Object(key)).collect();
    let defaults = shared::app::config::WorkerConfig::default();
    let (fetches, tasks) = match in_flight {
        Some(n) => (n, n),
        None => (defaults.fetch_concurrency, defaults.task_concurrency),
    };
    let stats = load_counting(clients, bucket, &work, fetches, tasks).await?;
    Ok((stats.files, stats.written.written))
}

/// Every key under `prefix`, listed page by page.
async fn list_keys(clients: &Clients, bucket: &str, prefix: &str) -> Result<Vec<String>> {
    let objects = S3Objects::new(clients.s3.clone());
    let mut lister = PrefixLister::new(&objects, bucket, prefix, 1000);
    let mut keys = Vec::new();
    while let Some(page) = lister.next_page().await? {
        keys.extend(page.into_iter().map(|o| o.key));
    }
    Ok(keys)
}

/// The worker's loader with a sink that counts rows instead of writing them.
pub(crate) async fn load_counting(
    clients: &Clients,
    bucket: &str,
    work: &[Unit<'_>],
    fetch_concurrency: usize,
    task_concurrency: usize,
) -> Result<shared::app::worker::LoadStats> {
    let config = shared::app::config::WorkerConfig::default();
    let limiter = AimdLimiter::new(fetch_concurrency, 4.min(fetch_concurrency));
    let schema = Schema::sensor();
    let objects = S3Objects::new(clients.s3.clone());
    let never = shared::app::worker::Stop::never();
    let loader = Loader {
        stop: &never,
        objects: &objects,
        throttles: &clients.s3_throttles,
        fetch_limit: &limiter,
        task_concurrency,
        write_concurrency: config.write_concurrency,
        write_mode: shared::contract::write::WriteMode::Put,
        schema: &schema,
        format: None,
        max_decoded_bytes: config.max_decoded_bytes,
        max_record_bytes: config.max_record_bytes,
        pacing: None,
        export: None,
        listed_by_inventory: false,
    };
    let rejects = Mutex::new(BatchRejects::default());
    let stats = loader
        .load(bucket, work, &rejects, |chunk| async move {
            Ok(WriteOutcome {
                written: chunk.len() as u64,
                ..WriteOutcome::default()
            })
        })
        .await?;
    Ok(stats)
}

/// The first seed's loop, as published: list everything, then Semaphore(750) +
/// buffer_unordered(1000), each body to a String, each row to four Strings, all collected.
async fn seed(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<(u64, u64)> {
    #[derive(Deserialize)]
    #[allow(dead_code)] // the seed's struct: its fields are parsed, never read
    struct Record {
        timestamp: String,
        temp: String,
        humidity: String,
        measure_point: String,
    }
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1000)
            .set_continuation_token(token)
            .send()
            .await?;
        keys.extend(
            page.contents
                .unwrap_or_default()
                .into_iter()
                .filter_map(|o| o.key)
                .filter(|k| k.ends_with(".csv")),
        );
        token = page.next_continuation_token;
        if token.is_none() {
            break;
        }
    }
    let files = keys.len() as u64;
    let semaphore = Arc::new(Semaphore::new(750));
    let records: Vec<Vec<Record>> = stream::iter(keys)
        .map(|key| {
            let s3 = s3.clone();
            let bucket = bucket.to_string();
            let semaphore = semaphore.clone();
            async move {
                let permit = semaphore.acquire().await?;
                let response = s3.get_object().bucket(&bucket).key(&key).send().await?;
                let body = response.body.collect().await?;
                drop(permit);
                let text = String::from_utf8(body.to_vec())?;
                let mut reader = csv::Reader::from_reader(text.as_bytes());
                let records: Result<Vec<Record>, _> = reader.deserialize().collect();
                Ok::<_, anyhow::Error>(records?)
            }
        })
        .buffer_unordered(1000)
        .try_collect()
        .await?;
    let rows = records.iter().map(Vec::len).sum::<usize>() as u64;
    Ok((files, rows))
}

/// (user + system CPU seconds, peak RSS in MB) of this process so far.
pub(crate) fn usage() -> (f64, f64) {
    // SAFETY: getrusage writes into the struct we pass and nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        seconds(usage.ru_utime) + seconds(usage.ru_stime),
        peak_rss_kib().unwrap_or(usage.ru_maxrss as f64) / 1024.0,
    )
}

/// This process image's own peak RSS (`VmHWM`). `ru_maxrss` is not: exec keeps the
/// spawning process's high-water mark, so a child of a parent holding a 1 GiB object would
/// report at least that.
fn peak_rss_kib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) fn median(runs: &[Measured]) -> Measured {
    let pick = |f: fn(&Measured) -> f64| {
        let mut values: Vec<f64> = runs.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    Measured {
        files: runs[0].files,
        rows: runs[0].rows,
        wall_seconds: pick(|m| m.wall_seconds),
        cpu_seconds: pick(|m| m.cpu_seconds),
        peak_rss_mb: pick(|m| m.peak_rss_mb),
        bytes_read: runs[0].bytes_read,
    }
}

fn print_table(
    medians: &[(Mode, Measured)],
    files: usize,
    runs: usize,
    s3: devkit::servers::Server,
) {
    println!(
        "\nRead path over {files} seed-shaped files (100 rows, ~4.5 KB each), local {s3}, one thread, median of {runs} runs:\n"
    );
    println!("| loop | files/s | rows/s | CPU s | files per CPU-s | peak RSS MB |");
    println!("|---|---|---|---|---|---|");
    for (mode, m) in medians {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.0} | {:.0} |",
            match mode {
                Mode::Ceiling =>
                    "ceiling (list + signed GETs on a bare HTTP client, 256 in flight, bodies dropped)",
                Mode::Ours => "ours (list + GET + streaming decode + typing)",
                _ => "seed (Semaphore 750 + buffer_unordered 1000, Strings, collect)",
            },
            m.files as f64 / m.wall_seconds,
            m.rows as f64 / m.wall_seconds,
            m.cpu_seconds,
            m.files as f64 / m.cpu_seconds,
            m.peak_rss_mb
        );
    }
    if let [(_, ceiling), (_, ours), (_, seed)] = medians {
        let files_per_second = |m: &Measured| m.files as f64 / m.wall_seconds;
        let files_per_cpu = |m: &Measured| m.files as f64 / m.cpu_seconds;
        println!(
            "\nours / seed: {:.2}x files/s, {:.2}x files per CPU-second, {:.2}x peak RSS",
            files_per_second(ours) / files_per_second(seed),
            files_per_cpu(ours) / files_per_cpu(seed),
            ours.peak_rss_mb / seed.peak_rss_mb
        );
        println!(
            "ours / ceiling: {:.2}x files/s, {:.2}x files per CPU-second",
            files_per_second(ours) / files_per_second(ceiling),
            files_per_cpu(ours) / files_per_cpu(ceiling),
        );
    }
}
