//! Deterministic seed-shaped sample data: files of `timestamp,temp,humidity,measure_point`
//! rows like the first seed's, and the typed readings each row must become, so tests can
//! check what landed value by value.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, Utc};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use thiserror::Error;

const CITIES: [&str; 10] = [
    "Kyiv", "Lviv", "Odesa", "Kharkiv", "Dnipro", "Warsaw", "Krakow", "Vilnius", "Riga", "Tallinn",
];
const HEADER: &str = "timestamp,temp,humidity,measure_point\n";

/// A row of the default sensor schema as it must be stored: read back from DynamoDB with
/// `serde_dynamo` and compared value by value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    pub measure_point: String,
    pub timestamp: String,
    pub temp: f64,
    pub humidity: f64,
}

#[derive(Debug, Error)]
#[error("uploading s3://{bucket}/{key} failed")]
pub struct UploadError {
    bucket: String,
    key: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleSpec {
    pub prefix: String,
    pub files: usize,
    pub rows_per_file: usize,
    pub seed: u64,
}

impl SampleSpec {
    pub fn new(prefix: &str, files: usize, rows_per_file: usize) -> Self {
        Self {
            prefix: prefix.to_owned(),
            files,
            rows_per_file,
            seed: 2025,
        }
    }

    pub fn key(&self, file: usize) -> String {
        format!("{}sensor-{file:06}.csv", self.prefix)
    }

    pub fn total_rows(&self) -> u64 {
        (self.files * self.rows_per_file) as u64
    }

    /// One file's rows. Each file is one measure point, so every row key is unique.
    fn rows(&self, file: usize) -> impl Iterator<Item = SampleRow> {
        let mut rng =
            fastrand::Rng::with_seed(self.seed ^ (file as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let start: DateTime<Utc> = "2025-11-26T00:00:00Z".parse().expect("a valid constant");
        let mut at = start + Duration::seconds(rng.i64(0..3600));
        let point = format!("{}_{file}", CITIES[file % CITIES.len()]);
        (0..self.rows_per_file).map(move |_| {
            at += Duration::seconds(rng.i64(4..=9));
            SampleRow {
                at,
                temp_tenths: rng.i32(150..=300),
                humidity_tenths: rng.i32(400..=800),
                point: point.clone(),
            }
        })
    }

    /// The CSV text of one file.
    pub fn body(&self, file: usize) -> String {
        let mut body = String::with_capacity(HEADER.len() + self.rows_per_file * 44);
        body.push_str(HEADER);
        for row in self.rows(file) {
            let _ = writeln!(
                body,
                "{},{},{},{}",
                row.at.format("%Y-%m-%d %H:%M:%S UTC"),
                tenths(row.temp_tenths),
                tenths(row.humidity_tenths),
                row.point
            );
        }
        body
    }

    /// The typed readings one file must become.
    pub fn expected(&self, file: usize) -> Vec<SensorReading> {
        self.rows(file)
            .map(|row| SensorReading {
                measure_point: row.point,
                timestamp: row.at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                temp: f64::from(row.temp_tenths) / 10.0,
                humidity: f64::from(row.humidity_tenths) / 10.0,
            })
            .collect()
    }

    /// Uploads every file, `concurrency` PUTs at a time. Returns the bytes uploaded.
    pub async fn upload(
        &self,
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        concurrency: usize,
        mut on_file: impl FnMut(),
    ) -> Result<u64, UploadError> {
        stream::iter(0..self.files)
            .map(|file| async move {
                let key = self.key(file);
                let body = self.body(file).into_bytes();
                let size = body.len() as u64;
                s3.put_object()
                    .bucket(bucket)
                    .key(&key)
                    .content_type("text/csv")
                    .body(body.into())
                    .send()
                    .await
                    .map_err(|e| UploadError {
                        bucket: bucket.to_owned(),
                        key,
                        source: e.into(),
                    })?;
                Ok(size)
            })
            .buffer_unordered(concurrency.max(1))
            .inspect_ok(|_| on_file())
            .try_fold(0, |total, size| async move { Ok(total + size) })
            .await
    }
}

struct SampleRow {
    at: DateTime<Utc>,
    temp_tenths: i32,
    humidity_tenths: i32,
    point: String,
}

fn tenths(value: i32) -> String {
    format!("{}.{}", value / 10, value % 10)
}

/// `bytes` as an object named with `suffix` holds them: gzip for `.gz`, zstd for `.zst`,
/// else as they are.
pub async fn encoded(suffix: &str, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use async_compression::tokio::write::{GzipEncoder, ZstdEncoder};
    use tokio::io::AsyncWriteExt as _;
    if suffix.ends_with(".gz") {
        let mut encoder = GzipEncoder::new(Vec::new());
        encoder.write_all(bytes).await?;
        encoder.shutdown().await?;
        Ok(encoder.into_inner())
    } else if suffix.ends_with(".zst") {
        let mut encoder = ZstdEncoder::new(Vec::new());
        encoder.write_all(bytes).await?;
        encoder.shutdown().await?;
        Ok(encoder.into_inner())
    } else {
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::contract::schema::Schema;
    use shared::ingest::decode::decode_all;

    #[test]
    fn files_are_deterministic_and_differ_from_each_other() {
        let spec = SampleSpec::new("data/", 3, 100);
        assert_eq!(spec.body(1), spec.body(1));
        assert_ne!(spec.body(1), spec.body(2));
        assert_eq!(spec.key(7), "data/sensor-000007.csv");
        assert!(spec.body(0).starts_with(HEADER));
        assert_eq!(spec.body(0).lines().count(), 101);
    }

    #[tokio::test]
    async fn decoding_a_generated_file_yields_exactly_its_expected_readings() {
        let spec = SampleSpec::new("", 12, 100);
        for file in 0..spec.files {
            let decoded = decode_all(spec.body(file).as_bytes(), &Schema::sensor())
                .await
                .unwrap();
            assert!(decoded.rejects.is_empty());
            let readings: Vec<SensorReading> = decoded
                .rows
                .into_iter()
                .map(|row| serde_dynamo::from_item(dynamo_item(row.item)).unwrap())
                .collect();
            assert_eq!(readings, spec.expected(file));
        }
    }

    fn dynamo_item(item: shared::ingest::item::Item) -> serde_dynamo::Item {
        use shared::ingest::item::Value;
        let attributes: std::collections::HashMap<String, serde_dynamo::AttributeValue> = item
            .into_iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::S(s) => serde_dynamo::AttributeValue::S(s),
                    Value::N(n) => serde_dynamo::AttributeValue::N(n),
                    Value::Bool(b) => serde_dynamo::AttributeValue::Bool(b),
                    Value::Null => serde_dynamo::AttributeValue::Null(true),
                    other => panic!("the sensor schema types no {other:?}"),
                };
                (name, value)
            })
            .collect();
        attributes.into()
    }

    #[test]
    fn row_keys_are_unique_within_a_file() {
        let spec = SampleSpec::new("", 1, 1000);
        let mut keys: Vec<String> = spec.expected(0).into_iter().map(|r| r.timestamp).collect();
        keys.dedup();
        assert_eq!(keys.len(), 1000);
    }
}
