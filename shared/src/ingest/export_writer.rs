//! Tests' stand-in for DynamoDB's ExportTableToPointInTime (no local server has it): writes a
//! full export in AWS's documented layout from items built in the test:
//! `<prefix>/AWSDynamoDB/<id>/` with `manifest-summary.json` and `manifest-files.json`, each
//! with its `.checksum` (MD5, hex), an empty `_started`, and `data/<n>.json.gz` files of
//! `{"Item": ...}` lines (an empty partition is an empty file). An incremental export
//! (version 2023-08-01, view NEW_IMAGE) writes its changes' lines,
//! `{"Metadata":..,"Keys":..,"NewImage":..}` (no `NewImage`: a deletion), into the data
//! folder its exports share, `<prefix>/AWSDynamoDB/data/`.

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
    /// An incremental export: each data file's changes, (keys, new image or `None` for a
    /// deletion), written instead of `files`.
    pub changes: Option<Vec<Vec<Change>>>,
    /// A full export's `exportTime` (default 2026-12-01T10:00:00.000Z).
    pub export_time: Option<String>,
    /// An incremental export's `exportFromTime` and `exportToTime` (default 10:00 to 11:00
    /// of 2026-12-01).
    pub window: Option<(String, String)>,
}

/// One incremental change: the item's keys, and its new image (`None`: deleted).
pub type Change = (Item, Option<Item>);

/// Every object of the export: (key, bytes).
pub async fn write_export(spec: &ExportSpec) -> Vec<(String, Vec<u8>)> {
    let root = match spec.prefix.as_deref() {
        Some(prefix) => format!("{prefix}/AWSDynamoDB/{}/", spec.export_id),
        None => format!("AWSDynamoDB/{}/", spec.export_id),
    };
    let mut objects = Vec::new();
    let mut entries = String::new();
    let mut total = 0;
    let texts: Vec<(String, u64)> = match &spec.changes {
        None => (spec.files.iter())
            .map(|items| {
                let lines = items.iter().map(|item| format!("{{\"Item\":{}}}\n", typed_json(item.iter())));
                (lines.collect(), items.len() as u64)
            })
            .collect(),
        Some(files) => (files.iter())
            .map(|changes| {
                let lines = changes.iter().enumerate().map(|(i, (keys, image))| {
                    let mut line = serde_json::json!({
                        "Metadata": {"WriteTimestampMicros": {"N": format!("{}", 1_764_583_200_000_000u64 + i as u64)}},
                        "Keys": typed_json(keys.iter()),
                    });
                    if let Some(image) = image {
                        line["NewImage"] = typed_json(image.iter());
                    }
                    format!("{line}\n")
                });
                (lines.collect(), changes.len() as u64)
            })
            .collect(),
    };
    let data = match (&spec.changes, spec.prefix.as_deref()) {
        (None, _) => format!("{root}data/"),
        (Some(_), Some(prefix)) => format!("{prefix}/AWSDynamoDB/data/"),
        (Some(_), None) => "AWSDynamoDB/data/".to_owned(),
    };
    for (n, (mut text, mut count)) in texts.into_iter().enumerate() {
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
        let key = format!("{data}{n:04}-{}.json.gz", spec.export_id);
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
    let mut summary = serde_json::json!({
        "version": "2020-06-30",
        "exportArn": format!("arn:aws:dynamodb:us-east-1:123456789012:table/source/export/{}", spec.export_id),
        "startTime": "2026-12-01T10:00:00.000Z",
        "endTime": "2026-12-01T10:05:00.000Z",
        "tableArn": "arn:aws:dynamodb:us-east-1:123456789012:table/source",
        "tableId": "00000000-0000-0000-0000-000000000000",
        "exportTime": spec.export_time.as_deref().unwrap_or("2026-12-01T10:00:00.000Z"),
        "s3Bucket": spec.bucket,
        "s3Prefix": spec.prefix,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": null,
        "manifestFilesS3Key": files_key,
        "billedSizeBytes": 0,
        "itemCount": total,
        "outputFormat": "DYNAMODB_JSON",
    });
    if spec.changes.is_some() {
        summary["version"] = "2023-08-01".into();
        summary["exportType"] = "INCREMENTAL_EXPORT".into();
        let (from, to) = spec.window.clone().unwrap_or_else(|| {
            (
                "2026-12-01T10:00:00.000Z".to_owned(),
                "2026-12-01T11:00:00.000Z".to_owned(),
            )
        });
        summary["exportFromTime"] = from.into();
        summary["exportToTime"] = to.into();
        summary["outputView"] = "NEW_IMAGE".into();
    }
    let summary = summary.to_string().into_bytes();
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

/// A source table built in a test, whose exports the generator writes: its state, and the
/// keys changed since its last export. An incremental export is compacted as DynamoDB's
/// are: a key changed several times appears once, with its last image or as a deletion.
#[derive(Debug, Clone, Default)]
pub struct SourceTable {
    key: Vec<String>,
    items: std::collections::BTreeMap<String, Item>,
    changed: std::collections::BTreeMap<String, Item>,
}

impl SourceTable {
    /// A table keyed by these attributes (partition, then sort).
    pub fn new(key: &[&str]) -> Self {
        Self {
            key: key.iter().map(|k| (*k).to_owned()).collect(),
            ..Self::default()
        }
    }

    fn keys_of(&self, item: &Item) -> (String, Item) {
        let keys: Item = (self.key.iter())
            .filter_map(|name| item.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        // In the key's own order (an item's map has none).
        let id: Vec<_> = self.key.iter().map(|name| item.get(name)).collect();
        (format!("{id:?}"), keys)
    }

    /// Puts an item (an insert, or a modification replacing the whole item).
    pub fn put(&mut self, item: Item) {
        let (id, keys) = self.keys_of(&item);
        self.changed.insert(id.clone(), keys);
        self.items.insert(id, item);
    }

    /// Deletes the item with these keys.
    pub fn delete(&mut self, keys: &Item) {
        let (id, keys) = self.keys_of(keys);
        self.items.remove(&id);
        self.changed.insert(id, keys);
    }

    /// Its items now, in key order.
    pub fn items(&self) -> Vec<Item> {
        self.items.values().cloned().collect()
    }

    /// A full export of its state now over `files` data files (items dealt in turn, so a
    /// file may be empty), from `base`; the changes since are what the next incremental
    /// holds.
    pub fn full_export(&mut self, base: ExportSpec, files: usize) -> ExportSpec {
        self.changed.clear();
        let mut out = vec![Vec::new(); files.max(1)];
        for (i, item) in self.items.values().enumerate() {
            out[i % files.max(1)].push(item.clone());
        }
        ExportSpec {
            files: out,
            changes: None,
            ..base
        }
    }

    /// An incremental export of the changes since the last export over `files` data files,
    /// compacted (each changed key once: its image now, or a deletion), from `base`.
    pub fn incremental_export(&mut self, base: ExportSpec, files: usize) -> ExportSpec {
        let mut out = vec![Vec::new(); files.max(1)];
        for (i, (id, keys)) in std::mem::take(&mut self.changed).into_iter().enumerate() {
            out[i % files.max(1)].push((keys, self.items.get(&id).cloned()));
        }
        ExportSpec {
            files: Vec::new(),
            changes: Some(out),
            ..base
        }
    }
}
