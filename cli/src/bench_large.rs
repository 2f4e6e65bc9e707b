//! The large-object table of `s3-fanout bench`: one plain seed-shaped CSV, one whose every
//! row holds a quoted field with a comma, doubled quotes and a newline, and one with no
//! newline at all, each read as exact ranges (scan phase + parse phase, as the pipeline
//! does) and in one GET; the plain rows also as JSON Lines (ranges split by lines, and one
//! GET) and as DynamoDB JSON (one GET: it does not split): MB per CPU-second, bytes read /
//! object size, peak RSS.

use std::io::Write;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use shared::app::coordinator::{ObjectPlan, plan_object};
use shared::aws::{Clients, S3Objects};
use shared::contract::messages::{RangeTask, RowSpan, Unit};
use shared::contract::schema::Schema;
use shared::ingest::format::Format;
use shared::ingest::range_read::scan_range;
use shared::ingest::scan::compose;
use shared::port::objects::{ObjectStore, Read};

use crate::bench::{BenchArgs, Measured, Mode, median, run_child_with};

const HEADER: &str = "timestamp,temp,humidity,measure_point\n";

#[derive(Clone, Copy, Debug)]
pub(crate) enum Shape {
    Plain,
    Quoted,
    NoNewline,
    /// The plain rows as JSON Lines objects (numbers as JSON numbers).
    JsonLines,
    /// The plain rows as DynamoDB JSON (`{"Item": {...}}` lines).
    DynamoDbJson,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Plain => "plain",
            Shape::Quoted => "quoted (every row: a quoted field with `,`, `\"\"` and a newline)",
            Shape::NoNewline => "no newline after the header",
            Shape::JsonLines => "JSON Lines (the plain rows)",
            Shape::DynamoDbJson => "DynamoDB JSON (the plain rows; read whole: it does not split)",
        }
    }

    /// The object's key in the bench bucket (its suffix picks the format).
    fn key(self) -> String {
        let suffix = match self {
            Shape::JsonLines => "jsonl",
            Shape::DynamoDbJson => "json",
            _ => "csv",
        };
        format!("bench-large/{self:?}.{suffix}").to_lowercase()
    }

    /// The shape's name for an in-memory child (`bench_memory::shaped`).
    fn memory_name(self) -> &'static str {
        match self {
            Shape::Quoted => "quoted",
            _ => "plain",
        }
    }
}

/// A body of about `target` bytes and its row count (JSON shapes: the plain body's rows).
pub(crate) fn body(shape: Shape, target: u64) -> (Vec<u8>, u64) {
    let mut body = HEADER.as_bytes().to_vec();
    let mut rows = 0u64;
    match shape {
        Shape::NoNewline => body.resize(target as usize, b'z'),
        Shape::JsonLines | Shape::DynamoDbJson => {
            let (_, plain_rows) = self::body(Shape::Plain, target);
            return (json_body(shape, plain_rows), plain_rows);
        }
        _ => {
            while (body.len() as u64) < target {
                let i = rows;
                let (h, m, s) = ((i / 3600) % 24, (i / 60) % 60, i % 60);
                let (temp, humidity) = (10 + i % 20, 40 + i % 50);
                let written = match shape {
                    Shape::Quoted => write!(
                        body,
                        "2025-11-26 {h:02}:{m:02}:{s:02} UTC,{temp}.{},{humidity}.{},\"Kyiv, \"\"point {}\"\"\nfloor {}\"\n",
                        i % 10,
                        i % 7,
                        i % 997,
                        i % 9
                    ),
                    _ => writeln!(
                        body,
                        "2025-11-26 {h:02}:{m:02}:{s:02} UTC,{temp}.{},{humidity}.{},Kyiv_{}",
                        i % 10,
                        i % 7,
                        i % 997
                    ),
                };
                written.expect("writing to a Vec");
                rows += 1;
            }
        }
    }
    (body, rows)
}

/// The first `rows` plain rows, the same values, as JSON Lines or DynamoDB JSON.
fn json_body(shape: Shape, rows: u64) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..rows {
        let (h, m, s) = ((i / 3600) % 24, (i / 60) % 60, i % 60);
        let (temp, humidity) = (10 + i % 20, 40 + i % 50);
        let (t, u, point) = (i % 10, i % 7, i % 997);
        let written = match shape {
            Shape::DynamoDbJson => writeln!(
                body,
                r#"{{"Item":{{"timestamp":{{"S":"2025-11-26 {h:02}:{m:02}:{s:02} UTC"}},"temp":{{"N":"{temp}.{t}"}},"humidity":{{"N":"{humidity}.{u}"}},"measure_point":{{"S":"Kyiv_{point}"}}}}}}"#
            ),
            _ => writeln!(
                body,
                r#"{{"timestamp":"2025-11-26 {h:02}:{m:02}:{s:02} UTC","temp":{temp}.{t},"humidity":{humidity}.{u},"measure_point":"Kyiv_{point}"}}"#
            ),
        };
        written.expect("writing to a Vec");
    }
    body
}

pub async fn large_object_bench(
    args: &BenchArgs,
    servers: &devkit::servers::LocalAws,
    bucket: &str,
) -> Result<()> {
    let chunk = args.chunk_mib << 20;
    let target = args.large_mib << 20;
    let mut table = Vec::new();
    for shape in [
        Shape::Plain,
        Shape::Quoted,
        Shape::NoNewline,
        Shape::JsonLines,
        Shape::DynamoDbJson,
    ] {
        let key = shape.key();
        let (body, rows) = body(shape, target);
        let size = body.len() as u64;
        let started = Instant::now();
        servers
            .clients()
            .s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .body(body.into())
            .send()
            .await
            .context("uploading a large object")?;
        eprintln!(
            "uploaded {key}: {:.0} MiB, {rows} rows, in {:.1}s",
            size as f64 / (1 << 20) as f64,
            started.elapsed().as_secs_f64()
        );
        let modes: &[Mode] = match shape {
            Shape::NoNewline | Shape::JsonLines => &[Mode::Ranges, Mode::WholeObject],
            Shape::DynamoDbJson => &[Mode::WholeObject],
            Shape::Quoted => &[
                Mode::Ranges,
                Mode::WholeObject,
                Mode::MemoryCeiling,
                Mode::MemoryOurs,
            ],
            // The plain rows also as Parquet, beside CSV.
            Shape::Plain => &[
                Mode::Ranges,
                Mode::WholeObject,
                Mode::MemoryCeiling,
                Mode::MemoryOurs,
                Mode::MemoryParquet,
            ],
        };
        for &mode in modes {
            let mut runs = Vec::new();
            for run in 0..args.runs {
                let m = match mode {
                    Mode::MemoryCeiling | Mode::MemoryOurs | Mode::MemoryParquet => {
                        run_child_with(mode, servers, bucket, shape.memory_name(), target)?
                    }
                    _ => run_child_with(mode, servers, bucket, &key, chunk)?,
                };
                eprintln!(
                    "run {} {shape:?} {mode:?}: {:.0} MB/s, {:.2} CPU s, {:.2}x read, {:.0} MB RSS",
                    run + 1,
                    size as f64 / 1e6 / m.wall_seconds,
                    m.cpu_seconds,
                    m.bytes_read as f64 / size as f64,
                    m.peak_rss_mb
                );
                if m.rows != rows {
                    bail!("{shape:?} {mode:?} read {} rows, expected {rows}", m.rows);
                }
                runs.push(m);
            }
            table.push((shape, mode, size, median(&runs)));
        }
    }
    println!(
        "\nLarge objects of {} MiB, local {}, one thread, median of {} runs (ranges: {} MiB, scans then parses, 4 at a time, If-Match pinned):\n",
        args.large_mib, args.s3, args.runs, args.chunk_mib
    );
    println!(
        "| object | read | MB/s | MB per CPU-s (one core) | bytes read / size | rows | CPU s | peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let per_cpu = |size: u64, m: &Measured| size as f64 / 1e6 / m.cpu_seconds;
    for (shape, mode, size, m) in &table {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.2} | {} | {:.2} | {:.0} |",
            shape.name(),
            match mode {
                Mode::Ranges => "ranges",
                Mode::WholeObject => "one GET",
                Mode::MemoryCeiling =>
                    "in memory: parse-and-type ceiling (csv ByteRecord, typed, no item)",
                Mode::MemoryParquet =>
                    "in memory: ours, the same rows as Parquet (snappy; MB are the CSV's, bytes read the Parquet file's)",
                _ => "in memory: ours (decoder, typing, items built)",
            },
            *size as f64 / 1e6 / m.wall_seconds,
            per_cpu(*size, m),
            m.bytes_read as f64 / *size as f64,
            m.rows,
            m.cpu_seconds,
            m.peak_rss_mb
        );
    }
    let rate = |shape: fn(&Shape) -> bool, read: Mode| {
        table
            .iter()
            .find(|(s, mode, _, _)| shape(s) && *mode == read)
            .map(|(_, _, size, m)| per_cpu(*size, m))
    };
    let ranged = |shape: fn(&Shape) -> bool| rate(shape, Mode::Ranges);
    for (name, shape) in [
        (
            "plain",
            (|s: &Shape| matches!(s, Shape::Plain)) as fn(&Shape) -> bool,
        ),
        ("quoted", |s: &Shape| matches!(s, Shape::Quoted)),
    ] {
        if let (Some(ceiling), Some(ranges), Some(whole), Some(ours)) = (
            rate(shape, Mode::MemoryCeiling),
            rate(shape, Mode::Ranges),
            rate(shape, Mode::WholeObject),
            rate(shape, Mode::MemoryOurs),
        ) {
            println!(
                "\n{name}, MB per CPU-second of the in-memory ceiling: ranges {:.2}x (target: at least 0.8x), one GET {:.2}x, our decoder in memory {:.2}x",
                ranges / ceiling,
                whole / ceiling,
                ours / ceiling
            );
        }
    }
    let parquet = table
        .iter()
        .find(|(_, mode, _, _)| *mode == Mode::MemoryParquet);
    let csv = table
        .iter()
        .find(|(s, mode, _, _)| matches!(s, Shape::Plain) && *mode == Mode::MemoryOurs);
    if let (Some((_, _, _, parquet)), Some((_, _, csv_size, csv))) = (parquet, csv) {
        let rows_per_cpu = |m: &Measured| m.rows as f64 / m.cpu_seconds;
        println!(
            "\nParquet beside CSV, the same {} rows in memory through our decoder: {:.0} vs {:.0} rows per CPU-second ({:.2}x); Parquet {:.1} MB per CPU-second of its own {:.1} MB, CSV {:.1} MB per CPU-second",
            parquet.rows,
            rows_per_cpu(parquet),
            rows_per_cpu(csv),
            rows_per_cpu(parquet) / rows_per_cpu(csv),
            parquet.bytes_read as f64 / 1e6 / parquet.cpu_seconds,
            parquet.bytes_read as f64 / 1e6,
            per_cpu(*csv_size, csv),
        );
    }
    json_beside_csv(&table);
    if let (Some(plain), Some(quoted)) = (
        ranged(|s| matches!(s, Shape::Plain)),
        ranged(|s| matches!(s, Shape::Quoted)),
    ) {
        println!(
            "\nquoted / plain in ranges: {:.0}% of the MB per CPU-second (target: at least 70%)",
            100.0 * quoted / plain
        );
    }
    Ok(())
}

/// JSON Lines and DynamoDB JSON beside CSV, the same rows: rows per CPU-second against the
/// plain CSV's in the same read mode, MB per CPU-second of their own bytes, bytes read.
fn json_beside_csv(table: &[(Shape, Mode, u64, Measured)]) {
    let find = |shape: fn(&Shape) -> bool, mode: Mode| {
        (table.iter()).find(|(s, m, _, _)| shape(s) && *m == mode)
    };
    let rows_per_cpu = |m: &Measured| m.rows as f64 / m.cpu_seconds;
    for (name, shape, mode) in [
        (
            "JSON Lines in ranges",
            (|s: &Shape| matches!(s, Shape::JsonLines)) as fn(&Shape) -> bool,
            Mode::Ranges,
        ),
        (
            "JSON Lines in one GET",
            |s: &Shape| matches!(s, Shape::JsonLines),
            Mode::WholeObject,
        ),
        (
            "DynamoDB JSON in one GET",
            |s: &Shape| matches!(s, Shape::DynamoDbJson),
            Mode::WholeObject,
        ),
    ] {
        let (Some((_, _, size, json)), Some((_, _, _, csv))) =
            (find(shape, mode), find(|s| matches!(s, Shape::Plain), mode))
        else {
            continue;
        };
        println!(
            "
{name} beside plain CSV, the same {} rows: {:.0} vs {:.0} rows per CPU-second ({:.2}x); {:.1} MB per CPU-second of its own {:.1} MB; bytes read / size {:.3}",
            json.rows,
            rows_per_cpu(json),
            rows_per_cpu(csv),
            rows_per_cpu(json) / rows_per_cpu(csv),
            *size as f64 / 1e6 / json.cpu_seconds,
            *size as f64 / 1e6,
            json.bytes_read as f64 / *size as f64,
        );
    }
}

/// One large object as the pipeline reads it: in exact ranges (every range scanned, the
/// scans composed, every range parsed from its first row), or in one GET. Returns files,
/// rows and bytes read.
pub async fn large(
    clients: &Clients,
    bucket: &str,
    key: &str,
    mode: Mode,
    chunk: u64,
) -> Result<(u64, u64, u64)> {
    let objects = S3Objects::new(clients.s3.clone());
    let format = Format::resolve(None, key);
    let plan = match mode {
        Mode::Ranges => {
            plan_object(&objects, bucket, key, &Schema::sensor(), format, chunk).await?
        }
        _ => ObjectPlan::Whole,
    };
    let (tasks, scanned) = match &plan {
        ObjectPlan::Split(object) => {
            let ranges = object.ranges();
            if object.by_lines {
                // Each range owns the lines that start in it: no scan phase.
                let tasks = (ranges.into_iter())
                    .map(|(start, end)| {
                        let rows = RowSpan {
                            first: start,
                            stop: end,
                        };
                        object.task((start, end), Some(rows))
                    })
                    .collect();
                (tasks, 0)
            } else if let [range] = ranges.as_slice() {
                let rows = RowSpan {
                    first: range.0,
                    stop: object.size,
                };
                (vec![object.task(*range, Some(rows))], 0)
            } else {
                let scans: Vec<_> = stream::iter(ranges.clone())
                    .map(|(start, end)| {
                        let objects = &objects;
                        async move {
                            let read = Read {
                                from: start,
                                to: Some(end),
                                if_match: Some(&object.etag),
                            };
                            let body = objects.get(bucket, key, read).await?;
                            anyhow::Ok(
                                scan_range(body.reader, start, end, &Default::default()).await?,
                            )
                        }
                    })
                    .buffered(4)
                    .try_collect()
                    .await?;
                let spans = compose(object.data_start, object.size, &scans)?;
                let tasks: Vec<RangeTask> = ranges
                    .into_iter()
                    .zip(spans)
                    .map(|(range, span)| object.task(range, Some(span)))
                    .collect();
                (tasks, object.size - object.data_start)
            }
        }
        _ => (vec![], 0),
    };
    let work: Vec<Unit> = match &plan {
        ObjectPlan::Split(_) => tasks.iter().map(Unit::Range).collect(),
        ObjectPlan::Whole => vec![Unit::Object(key)],
        ObjectPlan::RowGroups(_) => bail!("the large-object bench reads CSV and JSON, not Parquet"),
        ObjectPlan::Inflate(_) => {
            bail!("the large-object bench reads plain objects, not compressed")
        }
    };
    let stats = crate::bench::load_counting(clients, bucket, &work, 4, 4).await?;
    Ok((
        stats.files,
        stats.written.written,
        scanned + stats.bytes_read,
    ))
}
