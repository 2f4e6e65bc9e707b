//! DynamoDB's S3 exports as input (AWS's "DynamoDB table export output format"): a
//! `manifest-summary.json` under `<prefix>/AWSDynamoDB/<ExportId>/`, its `manifest-files.json`
//! (one JSON object per line: `itemCount`, `md5Checksum`, `etag`, `dataFileS3Key`), each
//! beside a checksum file (`.checksum` in AWS's documentation; `.md5` accepted too), and the
//! data files. Pure: parsing, checking and relocating; the coordinator does the reads.
//!
//! **Relocation.** `manifestFilesS3Key` and every `dataFileS3Key` are relative to the bucket
//! the export was written to (`s3Bucket`, under `s3Prefix`). An export copied under another
//! prefix or into another bucket is found where its summary actually is: each key is cut at
//! its `AWSDynamoDB/` segment (after the original `s3Prefix`) and put under the summary's
//! own root, in the bucket the request names.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use thiserror::Error;

/// The folder segment every export key holds.
pub const EXPORT_SEGMENT: &str = "AWSDynamoDB/";
pub const SUMMARY_NAME: &str = "manifest-summary.json";

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExportError {
    #[error("{key}: {reason}")]
    Manifest { key: String, reason: String },
    /// A chain of exports that does not follow on: a gap, an overlap, a second full
    /// export, an incremental first, a time missing.
    #[error("the export chain does not follow on: {0}")]
    Chain(String),
    #[error(
        "{key} does not match its checksum file {checksum} (MD5 {actual}, the file says {expected})"
    )]
    Checksum {
        key: String,
        checksum: String,
        actual: String,
        expected: String,
    },
}

/// The fields of `manifest-summary.json` the load needs (others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub version: String,
    #[serde(default)]
    pub export_arn: Option<String>,
    #[serde(default)]
    pub s3_prefix: Option<String>,
    pub manifest_files_s3_key: String,
    #[serde(default)]
    pub item_count: Option<u64>,
    #[serde(default)]
    pub output_format: Option<String>,
    /// `FULL_EXPORT` or `INCREMENTAL_EXPORT` (version 2023-08-01); absent in 2020-06-30.
    #[serde(default)]
    pub export_type: Option<String>,
    /// A full export's point in time.
    #[serde(default)]
    pub export_time: Option<String>,
    /// An incremental export's window, `[from, to)`.
    #[serde(default)]
    pub export_from_time: Option<String>,
    #[serde(default)]
    pub export_to_time: Option<String>,
}

impl Summary {
    pub fn is_incremental(&self) -> bool {
        self.export_type.as_deref() == Some("INCREMENTAL_EXPORT")
    }
}

/// When an export starts (`None`: a full export, from the table's beginning) and ends.
type Span = (Option<DateTime<Utc>>, DateTime<Utc>);

fn time(key: &str, field: &str, value: Option<&str>) -> Result<DateTime<Utc>, ExportError> {
    let value = value.ok_or_else(|| ExportError::Chain(format!("{key} has no {field}")))?;
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| ExportError::Chain(format!("{key}: {field} {value:?} is not a time ({e})")))
}

impl Summary {
    /// Its span: a full export ends at `exportTime`; an incremental covers
    /// `exportFromTime..exportToTime`.
    pub fn span(&self, key: &str) -> Result<Span, ExportError> {
        if self.is_incremental() {
            let from = time(key, "exportFromTime", self.export_from_time.as_deref())?;
            let to = time(key, "exportToTime", self.export_to_time.as_deref())?;
            Ok((Some(from), to))
        } else {
            Ok((None, time(key, "exportTime", self.export_time.as_deref())?))
        }
    }
}

fn stamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Orders the exports found in one folder by time: the full export first, then the
/// incrementals by `exportFromTime` (a time missing sorts first, and [`check_chain`] names it).
pub fn order_by_time(exports: &mut [(String, Summary)]) {
    exports.sort_by_key(|(key, summary)| {
        let span = summary.span(key).ok();
        (
            summary.is_incremental(),
            span.map(|(from, end)| from.unwrap_or(end)),
            key.clone(),
        )
    });
}

/// Checks that a chain follows on: one full export first, then incrementals, each starting
/// (`exportFromTime`) exactly where the one before ends (`exportTime` of the full export,
/// `exportToTime` of an incremental). A single export is its own chain (no times needed).
pub fn check_chain(exports: &[(String, Summary)]) -> Result<(), ExportError> {
    if exports.len() < 2 {
        return Ok(());
    }
    let chain = |reason: String| Err(ExportError::Chain(reason));
    let (first, summary) = &exports[0];
    if summary.is_incremental() {
        return chain(format!(
            "it starts with the incremental export {first}; a chain starts with a full export"
        ));
    }
    let mut previous = (first, summary.span(first)?.1);
    for (key, summary) in &exports[1..] {
        let (start, end) = summary.span(key)?;
        let Some(start) = start else {
            return chain(format!(
                "{key} is a second full export (exportTime {}) after {}; a chain holds one full export, first",
                stamp(&end),
                previous.0
            ));
        };
        let (before, ended) = &previous;
        if start > *ended {
            return chain(format!(
                "a gap: {before} ends at {} and {key} starts at {} (exportFromTime): the changes between are in neither",
                stamp(ended),
                stamp(&start)
            ));
        }
        if start < *ended {
            return chain(format!(
                "an overlap: {before} ends at {} and {key} starts at {} (exportFromTime), before it",
                stamp(ended),
                stamp(&start)
            ));
        }
        previous = (key, end);
    }
    Ok(())
}

/// One line of `manifest-files.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataFile {
    pub item_count: u64,
    #[serde(default)]
    pub md5_checksum: Option<String>,
    #[serde(default)]
    pub etag: Option<String>,
    pub data_file_s3_key: String,
}

/// Where an export is: its summary's key, from a request's `export` (that key, or its
/// folder).
pub fn summary_key(export: &str) -> String {
    if export.ends_with(SUMMARY_NAME) {
        export.to_owned()
    } else if export.is_empty() || export.ends_with('/') {
        format!("{export}{SUMMARY_NAME}")
    } else {
        format!("{export}/{SUMMARY_NAME}")
    }
}

/// The keys of the files an export may check a manifest against (first found wins).
pub fn checksum_keys(manifest_key: &str) -> [String; 2] {
    let stem = manifest_key.strip_suffix(".json").unwrap_or(manifest_key);
    [format!("{stem}.checksum"), format!("{stem}.md5")]
}

/// Parses and checks a summary: a version this loader knows, DynamoDB JSON output.
pub fn parse_summary(key: &str, bytes: &[u8]) -> Result<Summary, ExportError> {
    let fail = |reason: String| ExportError::Manifest {
        key: key.to_owned(),
        reason,
    };
    let summary: Summary = serde_json::from_slice(bytes)
        .map_err(|e| fail(format!("not an export's manifest summary ({e})")))?;
    if !matches!(summary.version.as_str(), "2020-06-30" | "2023-08-01") {
        return Err(fail(format!(
            "export manifest version {:?} is not one this loader knows (2020-06-30, 2023-08-01)",
            summary.version
        )));
    }
    match summary.output_format.as_deref() {
        None | Some("DYNAMODB_JSON") => Ok(summary),
        Some(other) => Err(fail(format!(
            "the export's output format is {other}; only DYNAMODB_JSON is loaded"
        ))),
    }
}

/// Parses `manifest-files.json`: one object per non-blank line.
pub fn parse_files(key: &str, bytes: &[u8]) -> Result<Vec<DataFile>, ExportError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ExportError::Manifest {
        key: key.to_owned(),
        reason: "not UTF-8".into(),
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| ExportError::Manifest {
                key: key.to_owned(),
                reason: format!("line {} is not a data file entry ({e})", i + 1),
            })
        })
        .collect()
}

/// Checks `bytes` against a checksum file's text: an MD5 as hex or base64 (whitespace
/// around it ignored).
pub fn check_md5(
    key: &str,
    checksum_key: &str,
    bytes: &[u8],
    checksum: &[u8],
) -> Result<(), ExportError> {
    use md5::Digest as _;
    let digest = md5::Md5::digest(bytes);
    let expected = String::from_utf8_lossy(checksum);
    if crate::ingest::digest::md5_matches(&digest, &expected) {
        return Ok(());
    }
    let (hex, expected) = (crate::ingest::item::hex(&digest), expected.trim());
    Err(ExportError::Checksum {
        key: key.to_owned(),
        checksum: checksum_key.to_owned(),
        actual: hex,
        expected: crate::ingest::typing::error::cap(expected, 64),
    })
}

/// Resolves a key the manifests name (relative to the bucket the export was written to)
/// against where the summary actually is.
pub fn relocate(summary_key: &str, summary: &Summary, key: &str) -> Result<String, String> {
    let root = match summary_key.rfind(EXPORT_SEGMENT) {
        Some(at) => &summary_key[..at],
        None => {
            return Err(format!(
                "{summary_key} is not under an {EXPORT_SEGMENT} folder"
            ));
        }
    };
    let written = summary
        .s3_prefix
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(|p| format!("{}/", p.trim_end_matches('/')));
    let relative = written
        .as_deref()
        .and_then(|prefix| key.strip_prefix(prefix))
        .filter(|rest| rest.starts_with(EXPORT_SEGMENT))
        .or_else(|| key.find(EXPORT_SEGMENT).map(|at| &key[at..]))
        .ok_or_else(|| format!("{key} is not under the export's {EXPORT_SEGMENT} folder"))?;
    Ok(format!("{root}{relative}"))
}

/// One planned data file: its resolved key, size and manifest item count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub key: String,
    pub size: u64,
    pub items: u64,
    /// The manifest's `md5Checksum` (base64), checked by the worker as it reads the file.
    pub md5: Option<String>,
}

/// Data files in batches of at most `keys` files and, as far as whole files allow, `bytes`
/// bytes (a file larger than that is a batch of its own).
pub fn batches(files: Vec<PlannedFile>, keys: usize, bytes: u64) -> Vec<Vec<PlannedFile>> {
    let mut out: Vec<Vec<PlannedFile>> = Vec::new();
    let mut current: Vec<PlannedFile> = Vec::new();
    let mut current_bytes = 0;
    for file in files {
        if !current.is_empty()
            && (current.len() >= keys.max(1) || current_bytes + file.size > bytes)
        {
            out.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += file.size;
        current.push(file);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUMMARY: &str = r#"{"version":"2020-06-30","exportArn":"arn:aws:dynamodb:us-east-1:123456789012:table/T/export/01","startTime":"2020-11-04T07:28:34.028Z","endTime":"2020-11-04T07:33:43.897Z","tableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/T","tableId":"x","exportTime":"2020-11-04T07:28:34.028Z","s3Bucket":"orig","s3Prefix":"2020-Nov","s3SseAlgorithm":"AES256","s3SseKmsKeyId":null,"manifestFilesS3Key":"2020-Nov/AWSDynamoDB/01/manifest-files.json","billedSizeBytes":0,"itemCount":8,"outputFormat":"DYNAMODB_JSON"}"#;

    #[test]
    fn aws_s_documented_summary_parses_and_its_keys_resolve_where_the_copy_is() {
        let summary = parse_summary("k", SUMMARY.as_bytes()).unwrap();
        assert_eq!(summary.item_count, Some(8));
        assert!(!summary.is_incremental());
        let copy = "restores/x/AWSDynamoDB/01/manifest-summary.json";
        assert_eq!(
            relocate(copy, &summary, &summary.manifest_files_s3_key),
            Ok("restores/x/AWSDynamoDB/01/manifest-files.json".into())
        );
        assert_eq!(
            relocate(copy, &summary, "2020-Nov/AWSDynamoDB/01/data/a.json.gz"),
            Ok("restores/x/AWSDynamoDB/01/data/a.json.gz".into())
        );
        // At the bucket's root, and with no s3Prefix.
        let root = "AWSDynamoDB/01/manifest-summary.json";
        let bare = Summary {
            s3_prefix: None,
            ..summary.clone()
        };
        assert_eq!(
            relocate(root, &bare, "AWSDynamoDB/data/b.json.gz"),
            Ok("AWSDynamoDB/data/b.json.gz".into())
        );
        assert!(relocate("elsewhere/manifest-summary.json", &summary, "x").is_err());
    }

    #[test]
    fn other_versions_and_formats_and_bad_lines_are_refused_with_the_key() {
        let ion = SUMMARY.replace("DYNAMODB_JSON", "ION");
        assert!(
            parse_summary("s", ion.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("ION")
        );
        let old = SUMMARY.replace("2020-06-30", "2019-01-01");
        assert!(parse_summary("s", old.as_bytes()).is_err());
        let files = parse_files(
            "f",
            b"{\"itemCount\":3,\"md5Checksum\":\"x\",\"etag\":\"e\",\"dataFileS3Key\":\"p/AWSDynamoDB/01/data/a.json.gz\"}\n\n",
        )
        .unwrap();
        assert_eq!(files[0].item_count, 3);
        let bad = parse_files("f", b"{\"itemCount\":3}\n").unwrap_err();
        assert!(bad.to_string().starts_with("f: line 1"), "{bad}");
    }

    #[test]
    fn a_checksum_file_is_an_md5_in_hex_or_base64() {
        // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72 = kAFQmDzST7DWlj99KOF/cg==
        assert_eq!(
            check_md5("k", "c", b"abc", b"900150983cd24fb0d6963f7d28e17f72\n"),
            Ok(())
        );
        assert_eq!(
            check_md5("k", "c", b"abc", b"kAFQmDzST7DWlj99KOF/cg=="),
            Ok(())
        );
        assert!(check_md5("k", "c", b"abd", b"kAFQmDzST7DWlj99KOF/cg==").is_err());
        assert_eq!(
            checksum_keys("a/manifest-files.json"),
            [
                "a/manifest-files.checksum".to_owned(),
                "a/manifest-files.md5".into()
            ]
        );
        assert_eq!(summary_key("a/b"), "a/b/manifest-summary.json");
        assert_eq!(summary_key("a/b/"), "a/b/manifest-summary.json");
        assert_eq!(
            summary_key("a/b/manifest-summary.json"),
            "a/b/manifest-summary.json"
        );
    }

    fn summary(kind: &str, times: &[(&str, &str)]) -> Summary {
        let mut value: serde_json::Value = serde_json::from_str(SUMMARY).unwrap();
        if kind == "incr" {
            value["version"] = "2023-08-01".into();
            value["exportType"] = "INCREMENTAL_EXPORT".into();
        }
        for (field, t) in times {
            value[*field] = (*t).into();
        }
        parse_summary("k", value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_chain_follows_on_or_is_refused_naming_the_two_exports_and_times() {
        let full = (
            "f".to_owned(),
            summary("full", &[("exportTime", "2026-12-01T10:00:00Z")]),
        );
        let incr = |key: &str, from: &str, to: &str| {
            let s = summary("incr", &[("exportFromTime", from), ("exportToTime", to)]);
            (key.to_owned(), s)
        };
        let one = incr("i1", "2026-12-01T10:00:00.000Z", "2026-12-01T11:00:00Z");
        let two = incr("i2", "2026-12-01T11:00:00Z", "2026-12-01T12:00:00Z");
        assert_eq!(
            check_chain(&[full.clone(), one.clone(), two.clone()]),
            Ok(())
        );
        // A single export needs no times; one incremental alone is its own chain.
        assert_eq!(check_chain(std::slice::from_ref(&one)), Ok(()));
        let refused = |chain: &[(String, Summary)]| check_chain(chain).unwrap_err().to_string();
        let gap = refused(&[full.clone(), two.clone()]);
        assert!(
            gap.contains("a gap: f ends at 2026-12-01T10:00:00.000Z and i2 starts at 2026-12-01T11:00:00.000Z"),
            "{gap}"
        );
        let late = incr("i3", "2026-12-01T10:30:00Z", "2026-12-01T12:00:00Z");
        let overlap = refused(&[full.clone(), one.clone(), late]);
        assert!(overlap.contains("an overlap: i1 ends at 2026-12-01T11:00:00.000Z and i3 starts at 2026-12-01T10:30:00.000Z"), "{overlap}");
        assert!(
            refused(&[one.clone(), two.clone()]).contains("starts with the incremental export i1")
        );
        let again = ("g".to_owned(), full.1.clone());
        assert!(refused(&[full.clone(), again]).contains("g is a second full export"));
        let timeless = ("t".to_owned(), summary("incr", &[]));
        assert!(refused(&[full.clone(), timeless]).contains("t has no exportFromTime"));
        // A folder's exports in time order, whatever their keys.
        let mut found = vec![two.clone(), full.clone(), one.clone()];
        order_by_time(&mut found);
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["f", "i1", "i2"]);
    }

    #[test]
    fn data_files_batch_by_count_and_bytes() {
        let file = |size| PlannedFile {
            key: format!("k{size}"),
            size,
            items: 1,
            md5: None,
        };
        let planned = batches(vec![file(5), file(6), file(20), file(1), file(2)], 3, 10);
        let sizes: Vec<Vec<u64>> = planned
            .iter()
            .map(|b| b.iter().map(|f| f.size).collect())
            .collect();
        assert_eq!(sizes, [vec![5], vec![6], vec![20], vec![1, 2]]);
    }
}
