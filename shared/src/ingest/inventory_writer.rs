//! Tests' stand-in for an S3 Inventory report (no local server produces one), written in
//! AWS's documented layout: `{prefix}/{source}/{config}/{YYYY-MM-DDTHH-MMZ}/manifest.json`
//! (`sourceBucket`, `destinationBucket` as an ARN, `version` 2016-11-30,
//! `creationTimestamp` in milliseconds as a string, `fileFormat`, `fileSchema`,
//! `files: [{key, size, MD5checksum}]`), its `manifest.checksum` (MD5 hex), and the data
//! files under `{prefix}/{source}/{config}/data/`: gzip CSV without a header row, every
//! field quoted and keys form-URL-encoded as AWS writes them; or Parquet with AWS's
//! snake-case columns.

use std::sync::Arc;

use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::parser::parse_message_type;
use async_compression::tokio::write::GzipEncoder;
use md5::Digest as _;
use tokio::io::AsyncWriteExt;

use crate::ingest::inventory::Listed;

/// The CSV columns written (AWS's order for these fields).
pub const CSV_SCHEMA: &str =
    "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass";

/// The Parquet schema written (AWS's names and types for these fields).
pub const PARQUET_SCHEMA: &str = "message s3.inventory { required binary bucket (STRING); required binary key (STRING); optional binary version_id (STRING); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional binary e_tag (STRING); optional binary storage_class (STRING); }";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WrittenFormat {
    #[default]
    Csv,
    Parquet,
}

/// One report to write.
#[derive(Debug, Clone, Default)]
pub struct InventorySpec {
    pub source_bucket: String,
    pub destination_bucket: String,
    /// The inventory configuration's destination prefix (`None`: the bucket's root).
    pub prefix: Option<String>,
    pub config_id: String,
    /// `YYYY-MM-DDTHH-MMZ`.
    pub timestamp: String,
    pub format: WrittenFormat,
    /// Each data file's rows, in order.
    pub files: Vec<Vec<Listed>>,
}

/// A current object's row.
pub fn row(bucket: &str, key: &str, size: u64) -> Listed {
    Listed {
        bucket: Some(bucket.to_owned()),
        key: key.to_owned(),
        size: Some(size),
        latest: true,
        delete_marker: false,
    }
}

/// Where the report's manifest goes.
pub fn manifest_key(spec: &InventorySpec) -> String {
    format!("{}{}/manifest.json", root(spec), spec.timestamp)
}

fn root(spec: &InventorySpec) -> String {
    let prefix = spec
        .prefix
        .as_deref()
        .map(|p| format!("{}/", p.trim_end_matches('/')))
        .unwrap_or_default();
    format!("{prefix}{}/{}/", spec.source_bucket, spec.config_id)
}

/// Every object of the report: (key in the destination bucket, bytes).
pub async fn write_inventory(spec: &InventorySpec) -> Vec<(String, Vec<u8>)> {
    let mut objects = Vec::new();
    let mut entries = Vec::new();
    for (n, rows) in spec.files.iter().enumerate() {
        let (bytes, suffix) = match spec.format {
            WrittenFormat::Csv => (gzip(csv_text(rows).as_bytes()).await, "csv.gz"),
            WrittenFormat::Parquet => (parquet_file(rows), "parquet"),
        };
        let key = format!("{}data/{n:04}-{}.{suffix}", root(spec), spec.config_id);
        entries.push(serde_json::json!({
            "key": key,
            "size": bytes.len(),
            "MD5checksum": crate::ingest::item::hex(&md5::Md5::digest(&bytes)),
        }));
        objects.push((key, bytes));
    }
    let (format, schema) = match spec.format {
        WrittenFormat::Csv => ("CSV", CSV_SCHEMA),
        WrittenFormat::Parquet => ("Parquet", PARQUET_SCHEMA),
    };
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "sourceBucket": spec.source_bucket,
        "destinationBucket": format!("arn:aws:s3:::{}", spec.destination_bucket),
        "version": "2016-11-30",
        "creationTimestamp": "1764547200000",
        "fileFormat": format,
        "fileSchema": schema,
        "files": entries,
    }))
    .expect("a manifest serializes");
    let key = manifest_key(spec);
    let checksum = crate::ingest::item::hex(&md5::Md5::digest(&manifest));
    objects.push((
        key.replace("manifest.json", "manifest.checksum"),
        checksum.into_bytes(),
    ));
    objects.push((key, manifest));
    objects
}

/// A key as S3 Inventory writes it in CSV: form-URL-encoded (Java's `URLEncoder`: letters,
/// digits and `.-*_` kept, a space as `+`, every other byte as `%XX`, `/` included).
pub fn url_encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn csv_text(rows: &[Listed]) -> String {
    let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut text = String::new();
    for (i, row) in rows.iter().enumerate() {
        let size = row.size.map(|s| s.to_string()).unwrap_or_default();
        let etag = if row.delete_marker {
            String::new()
        } else {
            format!("{i:032x}")
        };
        let fields = [
            quoted(row.bucket.as_deref().unwrap_or_default()),
            quoted(&url_encode(&row.key)),
            quoted(&format!("v{i}")),
            quoted(&row.latest.to_string()),
            quoted(&row.delete_marker.to_string()),
            quoted(&size),
            quoted("2026-12-01T00:00:00.000Z"),
            quoted(&etag),
            quoted("STANDARD"),
        ];
        text.push_str(&fields.join(","));
        text.push('\n');
    }
    text
}

async fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzipEncoder::new(Vec::new());
    encoder.write_all(bytes).await.expect("gzip in memory");
    encoder.shutdown().await.expect("gzip in memory");
    encoder.into_inner()
}

fn parquet_file(rows: &[Listed]) -> Vec<u8> {
    let schema = Arc::new(parse_message_type(PARQUET_SCHEMA).expect("the schema parses"));
    let props = Arc::new(WriterProperties::builder().build());
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(&mut out, schema, props).expect("a writer");
    let text = |s: &str| ByteArray::from(s.as_bytes().to_vec());
    let all = vec![1i16; rows.len()];
    let mut group = writer.next_row_group().expect("a row group");
    let mut leaf = 0;
    while let Some(mut column) = group.next_column().expect("a column") {
        let written = match leaf {
            0 => column.typed::<ByteArrayType>().write_batch(
                &rows
                    .iter()
                    .map(|r| text(r.bucket.as_deref().unwrap_or_default()))
                    .collect::<Vec<_>>(),
                None,
                None,
            ),
            1 => column.typed::<ByteArrayType>().write_batch(
                &rows.iter().map(|r| text(&r.key)).collect::<Vec<_>>(),
                None,
                None,
            ),
            2 => column.typed::<ByteArrayType>().write_batch(
                &(0..rows.len())
                    .map(|i| text(&format!("v{i}")))
                    .collect::<Vec<_>>(),
                Some(&all),
                None,
            ),
            3 => column.typed::<BoolType>().write_batch(
                &rows.iter().map(|r| r.latest).collect::<Vec<_>>(),
                Some(&all),
                None,
            ),
            4 => column.typed::<BoolType>().write_batch(
                &rows.iter().map(|r| r.delete_marker).collect::<Vec<_>>(),
                Some(&all),
                None,
            ),
            5 => {
                let defs: Vec<i16> = rows.iter().map(|r| i16::from(r.size.is_some())).collect();
                let sizes: Vec<i64> = rows
                    .iter()
                    .filter_map(|r| r.size)
                    .map(|s| s as i64)
                    .collect();
                column
                    .typed::<Int64Type>()
                    .write_batch(&sizes, Some(&defs), None)
            }
            6 => column.typed::<ByteArrayType>().write_batch(
                &(0..rows.len())
                    .map(|i| text(&format!("{i:032x}")))
                    .collect::<Vec<_>>(),
                Some(&all),
                None,
            ),
            _ => column.typed::<ByteArrayType>().write_batch(
                &rows.iter().map(|_| text("STANDARD")).collect::<Vec<_>>(),
                Some(&all),
                None,
            ),
        };
        written.expect("a column writes");
        column.close().expect("a column closes");
        leaf += 1;
    }
    group.close().expect("a row group closes");
    writer.close().expect("the file closes");
    out
}
