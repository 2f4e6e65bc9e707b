//! The in-memory table of `s3-fanout bench`: the same rows as the large-object table, with
//! no S3 at all, decoded by a lean loop (the parse-and-type ceiling) and by the worker's own
//! decoder. Range mode and one-GET mode are then judged as ratios of the ceiling measured in
//! the same run, on any machine.

use anyhow::{Context, Result, bail};
use shared::contract::schema::Schema;
use shared::ingest::decode::{Decoded, ObjectDecoder};
use shared::ingest::format::RowDecoder;

use crate::bench_large::{Shape, body};

/// The parse-and-type ceiling: the `csv` crate's `ByteRecord` reader, every field typed as
/// the sensor schema types it (the timestamp validated into epoch seconds, two numbers
/// parsed, the string checked as UTF-8), no item built. Returns the rows typed.
pub fn ceiling(body: &[u8]) -> Result<u64> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    let mut checksum = 0f64;
    while reader.read_byte_record(&mut record)? {
        let field = |i: usize| -> Result<&str> {
            std::str::from_utf8(record.get(i).context("a field is missing")?)
                .context("a field is not UTF-8")
        };
        let seconds = epoch_seconds(field(0)?).context("a bad timestamp")?;
        let temp: f64 = field(1)?.parse()?;
        let humidity: f64 = field(2)?.parse()?;
        let point = field(3)?;
        checksum += seconds as f64 + temp + humidity + point.len() as f64;
        rows += 1;
    }
    // Keeps the typed values observable, so the compiler cannot drop the typing.
    std::hint::black_box(checksum);
    Ok(rows)
}

/// `2025-11-26 02:56:13 UTC` as epoch seconds, the date validated.
fn epoch_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 23 || !text.ends_with(" UTC") {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(number(0, 4)?).ok()?,
        number(5, 7)?,
        number(8, 10)?,
    )?;
    let time = date.and_hms_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?)?;
    Some(time.and_utc().timestamp())
}

/// The worker's decoder over the same bytes: records, typing under the schema, items
/// built (`TypedRow`), nothing written. Returns the rows typed.
pub async fn ours(body: &[u8]) -> Result<u64> {
    let decoder = ObjectDecoder::open(body, &Schema::sensor()).await?;
    typed_rows(RowDecoder::from(decoder)).await
}

/// Every row `decoder` yields, typed and dropped; a reject fails the bench (its inputs
/// are all valid). Shared by the CSV and Parquet in-memory rows.
pub async fn typed_rows(mut decoder: RowDecoder<&[u8]>) -> Result<u64> {
    let mut rows = 0u64;
    while let Some(decoded) = decoder.next().await? {
        match decoded {
            Decoded::Row(row) => {
                std::hint::black_box(&row);
                rows += 1;
            }
            Decoded::Reject(reject) => bail!("a row was rejected: {reject:?}"),
        }
    }
    Ok(rows)
}

/// The body a memory child decodes: `shape` of about `bytes` bytes, and its row count.
pub fn shaped(shape: &str, bytes: u64) -> Result<(Vec<u8>, u64)> {
    let shape = match shape {
        "plain" => Shape::Plain,
        "quoted" => Shape::Quoted,
        other => bail!("no in-memory body of shape {other:?} (plain or quoted)"),
    };
    Ok(body(shape, bytes))
}
