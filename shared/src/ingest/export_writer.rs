//! Tests' stand-in for DynamoDB's ExportTableToPointInTime (no local server has it): writes a
//! full export in AWS's documented layout from items built in the test:
//! `<prefix>/AWSDynamoDB/<id>/` with `manifest-summary.json` and `manifest-files.json`, each
//! with its `.checksum` (MD5, hex), an empty `_started`, and `data/<n>.json.gz` files of
//! `{"Item": ...}` lines (an empty partition is an empty file).

use async_compression::tokio::write::GzipEncoder;
use md5::Digest as _;
use tokio::io::AsyncWriteExt;

use crate::ingest::item::{Item, typed_json};
use crate::ingest::typing::binary::encode_base64;

/// One export to write.
#[derive(Debug, Clone, Default)]
pub struct ExportSpec {
    /// The bucket it was "written to" (`s3Bucket`).
    pub bucket: String,
    /// `s3Prefix` (`None`: the bucket's root).
    pub prefix: Option<String>,
    pub export_id: String,
    /// Each data file's items (an empty one is an empty partition).
    pub files: Vec<Vec<Item>>,
    /// Raw lines appended to data file `.0` (a corrupt line), counted as items.
    pub extra_lines: Vec<(usize, String)>,
    /// A manifest entry that claims another item count: (file, count); the summary's total
    /// follows it, as a consistent but wrong manifest would.
    pub claimed_count: Option<(usize, u64)>,
}

/// Every object of the export: (key, bytes).
pub async fn write_export(spec: &ExportSpec) -> Vec<(String, Vec<u8>)> {
    let root = match spec.prefix.as_deref() {
        Some(prefix) => format!("{prefix}/AWSDynamoDB/{}/", spec.export_id),
        None => format!("AWSDynamoDB/{}/", spec.export_id),
    };
    let mut objects = Vec::new();
    let mut entries = String::new();
    let mut total = 0;
    for (n, items) in spec.files.iter().enumerate() {
        let mut text = String::new();
        for item in items {
            text.push_str(&format!("{{\"Item\":{}}}\n", typed_json(item.iter())));
        }
        let mut count = items.len() as u64;
        for (_, line) in spec.extra_lines.iter().filter(|(file, _)| *file == n) {
            text.push_str(line);
            text.push('\n');
            count += 1;
        }
        if let Some((_, claimed)) = spec.claimed_count.filter(|(file, _)| *file == n) {
            count = claimed;
        }
        total += count;
        let bytes = if text.is_empty() {
            Vec::new()
        } else {
            gzip(text.as_bytes()).await
        };
        let key = format!("{root}data/{n:04}-{}.json.gz", spec.export_id);
        let md5 = md5::Md5::digest(&bytes);
        entries.push_str(
            &serde_json::json!({
                "itemCount": count,
                "md5Checksum": encode_base64(&md5),
                "etag": format!("{}", crate::ingest::item::hex(&md5)),
                "dataFileS3Key": key,
            })
            .to_string(),
        );
        entries.push('\n');
        objects.push((key, bytes));
    }
    let files_key = format!("{root}manifest-files.json");
    let summary = serde_json::json!({
        "version": "2020-06-30",
        "exportArn": format!("arn:aws:dynamodb:us-east-1:123456789012:table/source/export/{}", spec.export_id),
        "startTime": "2026-12-01T10:00:00.000Z",
        "endTime": "2026-12-01T10:05:00.000Z",
        "tableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/source",
        "tableId": "00000000-0000-0000-0000-000000000000",
        "exportTime": "2026-12-01T10:00:00.000Z",
        "s3Bucket": spec.bucket,
        "s3Prefix": spec.prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": null,
        "manifestFilesS3Key": files_key,
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
    })
    .to_string()
    .into_bytes();
    let checksum = |bytes: &[u8]| crate::ingest::item::hex(&md5::Md5::digest(bytes)).into_bytes();
    objects.push((
        format!("{root}manifest-files.checksum"),
        checksum(entries.as_bytes()),
    ));
    objects.push((files_key, entries.into_bytes()));
    objects.push((
        format!("{root}manifest-summary.checksum"),
        checksum(&summary),
    ));
    objects.push((format!("{root}manifest-summary.json"), summary));
    objects.push((format!("{root}_started"), Vec::new()));
    objects
}

async fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzipEncoder::new(Vec::new());
    // Writing into memory cannot fail.
    let _ = encoder.write_all(bytes).await;
    let _ = encoder.shutdown().await;
    encoder.into_inner()
}
