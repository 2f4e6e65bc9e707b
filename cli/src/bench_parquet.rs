//! Parquet beside CSV in the in-memory table of `s3-fanout bench`: the plain CSV body's rows
//! written as a Parquet file (snappy pages, row groups of 65,536 rows; the timestamp and the
//! point as strings, the two numbers as doubles), made before the clock starts, then read by
//! the worker's own decoder (footer, pages, typing under the sensor schema, items built).

use std::sync::Arc;

use anyhow::{Context, Result};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DoubleType};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use shared::contract::schema::Schema;
use shared::ingest::format::{Format, RowDecoder};

const SENSOR: &str = "message sensor {
  required binary timestamp (STRING);
  required double temp;
  required double humidity;
  required binary measure_point (STRING);
}";

const GROUP_ROWS: usize = 65_536;

/// The rows of a sensor CSV `body` (with its header) as a Parquet file.
pub fn parquet_of(body: &[u8]) -> Result<Vec<u8>> {
    let schema = Arc::new(parse_message_type(SENSOR)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, props)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    let mut columns: [Vec<ByteArray>; 2] = [Vec::new(), Vec::new()];
    let mut numbers: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut more = true;
    while more {
        more = reader.read_byte_record(&mut record)?;
        if more {
            let field = |i: usize| record.get(i).context("a field is missing");
            let number = |i: usize| -> Result<f64> { Ok(std::str::from_utf8(field(i)?)?.parse()?) };
            columns[0].push(ByteArray::from(field(0)?.to_vec()));
            numbers[0].push(number(1)?);
            numbers[1].push(number(2)?);
            columns[1].push(ByteArray::from(field(3)?.to_vec()));
        }
        let rows = columns[0].len();
        if rows == GROUP_ROWS || (!more && rows > 0) {
            let mut group = writer.next_row_group()?;
            let mut leaf = 0;
            while let Some(mut column) = group.next_column()? {
                match leaf {
                    0 | 3 => {
                        let values = std::mem::take(&mut columns[leaf / 3]);
                        column
                            .typed::<ByteArrayType>()
                            .write_batch(&values, None, None)?;
                    }
                    _ => {
                        let values = std::mem::take(&mut numbers[leaf - 1]);
                        column
                            .typed::<DoubleType>()
                            .write_batch(&values, None, None)?;
                    }
                }
                column.close()?;
                leaf += 1;
            }
            group.close()?;
        }
    }
    writer.close()?;
    Ok(out)
}

/// The worker's decoder over a Parquet file in memory; returns the rows typed.
pub async fn ours(file: &[u8]) -> Result<u64> {
    let decoder = RowDecoder::open(Format::Parquet, file, &Schema::sensor(), 1 << 20).await?;
    crate::bench_memory::typed_rows(decoder).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_large::{Shape, body};
    use shared::ingest::decode::Decoded;

    #[tokio::test]
    async fn the_csv_rows_read_back_from_parquet_as_the_same_items() {
        let (csv, rows) = body(Shape::Plain, 200_000);
        let file = parquet_of(&csv).unwrap();
        assert!(file.len() < csv.len(), "{} of {}", file.len(), csv.len());
        assert_eq!(ours(&file).await.unwrap(), rows);
        let schema = Schema::sensor();
        let mut from_csv = RowDecoder::open(Format::Csv, &csv[..], &schema, 1 << 20)
            .await
            .unwrap();
        let mut from_parquet = RowDecoder::open(Format::Parquet, &file[..], &schema, 1 << 20)
            .await
            .unwrap();
        let mut compared = 0;
        while let Some(Decoded::Row(a)) = from_csv.next().await.unwrap() {
            let Some(Decoded::Row(b)) = from_parquet.next().await.unwrap() else {
                panic!("Parquet ended early");
            };
            assert_eq!(a.item, b.item, "row {compared}");
            compared += 1;
        }
        assert_eq!(compared, rows);
    }
}
