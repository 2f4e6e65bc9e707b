//! An S3 Inventory report's `manifest.json` (AWS's layout: `sourceBucket`,
//! `destinationBucket`, `version`, `creationTimestamp`, `fileFormat`, `fileSchema` and
//! `files: [{key, size, MD5checksum}]`), checked against its `manifest.checksum` (the MD5 of
//! manifest.json, hex). Pure: the coordinator does the reads.

use md5::Digest as _;
use serde::Deserialize;

use super::InventoryError;

pub const MANIFEST_NAME: &str = "manifest.json";
pub const CHECKSUM_NAME: &str = "manifest.checksum";

/// The format of the report's data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Gzip-compressed CSV, no header row, columns as `fileSchema` lists them.
    Csv,
    Parquet,
}

/// One data file the manifest names (a key in the destination bucket).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct DataFile {
    pub key: String,
    pub size: u64,
    #[serde(rename = "MD5checksum")]
    pub md5: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    source_bucket: String,
    #[serde(default)]
    destination_bucket: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    creation_timestamp: Option<serde_json::Value>,
    file_format: String,
    file_schema: String,
    files: Vec<DataFile>,
}

/// A checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub source_bucket: String,
    /// The bucket as the manifest names it (an ARN, `arn:aws:s3:::name`, in AWS's reports).
    pub destination_bucket: Option<String>,
    pub version: Option<String>,
    /// Milliseconds since the epoch, as AWS writes it (a string of digits).
    pub creation_ms: Option<u64>,
    pub format: FileFormat,
    /// `fileSchema` as written: CSV column names, or a Parquet message type.
    pub schema: String,
    pub files: Vec<DataFile>,
}

/// The manifest's key from a request's `inventory`: the key itself, or its folder.
pub fn manifest_key(inventory: &str) -> String {
    if inventory.ends_with(MANIFEST_NAME) {
        inventory.to_owned()
    } else if inventory.is_empty() || inventory.ends_with('/') {
        format!("{inventory}{MANIFEST_NAME}")
    } else {
        format!("{inventory}/{MANIFEST_NAME}")
    }
}

/// `manifest.checksum` beside the manifest.
pub fn checksum_key(manifest_key: &str) -> String {
    let folder = manifest_key.strip_suffix(MANIFEST_NAME).unwrap_or("");
    format!("{folder}{CHECKSUM_NAME}")
}

/// Checks `bytes` against `checksum` (the MD5 in hex, whitespace around it ignored).
pub fn check_checksum(key: &str, bytes: &[u8], checksum: &[u8]) -> Result<(), InventoryError> {
    let actual = crate::ingest::item::hex(&md5::Md5::digest(bytes));
    let expected = String::from_utf8_lossy(checksum).trim().to_owned();
    if expected.eq_ignore_ascii_case(&actual) {
        return Ok(());
    }
    Err(InventoryError::Checksum {
        key: key.to_owned(),
        actual,
        expected: crate::ingest::typing::error::cap(&expected, 64),
    })
}

/// Parses a manifest: a format this loader reads, at least a `Key` column, and data files
/// that are not empty names.
pub fn parse_manifest(key: &str, bytes: &[u8]) -> Result<Manifest, InventoryError> {
    let fail = |reason: String| InventoryError::Manifest {
        key: key.to_owned(),
        reason,
    };
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| fail(format!("not an S3 Inventory manifest ({e})")))?;
    let format = match raw.file_format.to_ascii_lowercase().as_str() {
        "csv" => FileFormat::Csv,
        "parquet" => FileFormat::Parquet,
        "orc" => {
            return Err(fail(
                "the inventory's data files are ORC, which this loader does not read (no \
                 well-kept pure-Rust ORC reader); configure the inventory report as CSV or \
                 Parquet"
                    .into(),
            ));
        }
        other => return Err(fail(format!("fileFormat {other:?} is not CSV or Parquet"))),
    };
    if raw.source_bucket.trim().is_empty() {
        return Err(fail("sourceBucket is empty".into()));
    }
    if let Some(file) = raw.files.iter().find(|f| f.key.is_empty()) {
        return Err(fail(format!(
            "a data file has an empty key (size {})",
            file.size
        )));
    }
    let creation_ms = match &raw.creation_timestamp {
        None => None,
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(_) => None,
    };
    let manifest = Manifest {
        source_bucket: raw.source_bucket,
        destination_bucket: raw.destination_bucket,
        version: raw.version,
        creation_ms,
        format,
        schema: raw.file_schema,
        files: raw.files,
    };
    if format == FileFormat::Csv {
        // Fails early on a schema without a Key column.
        super::columns::CsvColumns::of_schema(&manifest.schema).map_err(fail)?;
    } else if !manifest.schema.contains(" key") {
        return Err(fail(format!(
            "the Parquet fileSchema has no key column: {}",
            crate::ingest::typing::error::cap(&manifest.schema, 200)
        )));
    }
    Ok(manifest)
}

impl Manifest {
    /// The source bucket's name (`sourceBucket` is a name; tolerate an ARN too).
    pub fn source_bucket_name(&self) -> &str {
        self.source_bucket
            .strip_prefix("arn:aws:s3:::")
            .unwrap_or(&self.source_bucket)
    }

    /// The bytes of every data file (compressed, as stored).
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of AWS's documented example (CSV, every optional field).
    pub const AWS_EXAMPLE: &str = r#"{
    "sourceBucket": "example-source-bucket",
    "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
    "version": "2016-11-30",
    "creationTimestamp" : "1514944800000",
    "fileFormat": "CSV",
    "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded, ReplicationStatus, EncryptionStatus, ObjectLockRetainUntilDate, ObjectLockMode, ObjectLockLegalHoldStatus, IntelligentTieringAccessTier, BucketKeyStatus, ChecksumAlgorithm, ObjectAccessControlList, ObjectOwner",
    "files": [
        {
            "key": "Inventory/example-source-bucket/2016-11-06T21-32Z/files/939c6d46-85a9-4ba8-87bd-9db705a579ce.csv.gz",
            "size": 2147483647,
            "MD5checksum": "f11166069f1990abeb9c97ace9cdfabc"
        }
    ]
}"#;

    #[test]
    fn aws_s_documented_example_parses() {
        let manifest = parse_manifest("m", AWS_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(manifest.source_bucket_name(), "example-source-bucket");
        assert_eq!(manifest.format, FileFormat::Csv);
        assert_eq!(manifest.creation_ms, Some(1_514_944_800_000));
        assert_eq!(manifest.version.as_deref(), Some("2016-11-30"));
        assert_eq!(manifest.files.len(), 1);
        assert_eq!(manifest.files[0].size, 2_147_483_647);
        assert_eq!(manifest.files[0].md5, "f11166069f1990abeb9c97ace9cdfabc");
        assert_eq!(manifest.total_bytes(), 2_147_483_647);
    }

    #[test]
    fn a_parquet_manifest_parses_and_orc_is_refused_with_its_reason() {
        let parquet = AWS_EXAMPLE.replace("\"CSV\"", "\"Parquet\"").replace(
            "Bucket, Key, VersionId",
            "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional int64 size;}",
        );
        let manifest = parse_manifest("m", parquet.as_bytes()).unwrap();
        assert_eq!(manifest.format, FileFormat::Parquet);
        let orc = AWS_EXAMPLE.replace("\"CSV\"", "\"ORC\"");
        let refused = parse_manifest("a/manifest.json", orc.as_bytes()).unwrap_err();
        let text = refused.to_string();
        assert!(text.starts_with("a/manifest.json: "), "{text}");
        assert!(
            text.contains("ORC") && text.contains("CSV or Parquet"),
            "{text}"
        );
    }

    #[test]
    fn a_schema_without_key_and_broken_json_are_refused_with_the_key() {
        let keyless = AWS_EXAMPLE.replace("Bucket, Key, VersionId", "Bucket, VersionId");
        let error = parse_manifest("m.json", keyless.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("no Key column"), "{error}");
        let broken = parse_manifest("m.json", b"{\"sourceBucket\": ").unwrap_err();
        assert!(
            broken
                .to_string()
                .starts_with("m.json: not an S3 Inventory manifest")
        );
    }

    #[test]
    fn the_checksum_is_the_md5_of_manifest_json_in_hex() {
        // MD5("abc") = 900150983cd24fb0d6963f7d28e17f72
        assert_eq!(
            check_checksum("k", b"abc", b"900150983CD24FB0D6963F7D28E17F72\n"),
            Ok(())
        );
        let tampered = check_checksum(
            "p/manifest.json",
            b"abd",
            b"900150983cd24fb0d6963f7d28e17f72",
        )
        .unwrap_err()
        .to_string();
        assert!(
            tampered.contains("p/manifest.json") && tampered.contains("manifest.checksum"),
            "{tampered}"
        );
        assert_eq!(checksum_key("a/b/manifest.json"), "a/b/manifest.checksum");
        assert_eq!(manifest_key("a/b"), "a/b/manifest.json");
        assert_eq!(manifest_key("a/b/"), "a/b/manifest.json");
        assert_eq!(manifest_key("a/b/manifest.json"), "a/b/manifest.json");
    }
}
