//! An S3 Inventory report as a job's listing, on the wire (`docs/inventory.md`): the
//! request's fields, the count and emit steps' tasks (phase one and two, one batch per data
//! file each), the counts they store and the compose step's wake-up.

use serde::{Deserialize, Serialize};

use crate::contract::ids::JobId;

/// A request's inventory, flattened into the request and the job item: the report's
/// `manifest.json` key (or its folder) in the request's bucket, instead of a prefix, and an
/// optional filter on the objects' keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<String>,
    /// Only objects whose key starts with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_key_prefix: Option<String>,
    /// Only objects whose key ends with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_key_suffix: Option<String>,
}

impl InventoryOptions {
    pub fn filter(&self) -> KeyFilter {
        KeyFilter {
            prefix: self.inventory_key_prefix.clone(),
            suffix: self.inventory_key_suffix.clone(),
        }
    }

    /// A filter without an inventory means nothing: say so instead of ignoring it.
    pub fn check(&self) -> Result<(), String> {
        let filtered = self.inventory_key_prefix.is_some() || self.inventory_key_suffix.is_some();
        match (&self.inventory, filtered) {
            (None, true) => Err(
                "inventory_key_prefix and inventory_key_suffix filter an inventory: name one \
                 (`inventory`)"
                    .into(),
            ),
            (Some(key), _) if key.trim().is_empty() => Err("inventory is empty".into()),
            _ => Ok(()),
        }
    }
}

/// The filter on an inventory's keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

impl KeyFilter {
    pub fn matches(&self, key: &str) -> bool {
        self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && self.suffix.as_deref().is_none_or(|s| key.ends_with(s))
    }
}

/// One data file of an inventory job, as the coordinator checked it in the manifest:
/// everything its count and emit steps need to make the same batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryFile {
    /// The manifest's key (in the batch's bucket, the report's destination).
    pub manifest: String,
    /// This file's place in the manifest, `0..files`.
    pub index: u64,
    pub files: u64,
    pub key: String,
    pub size: u64,
    /// The manifest's `MD5checksum` of the stored file.
    pub md5: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parquet: bool,
    /// The manifest's `fileSchema` (CSV: its columns by name).
    pub schema: String,
    /// Where the listed objects are (the manifest's `sourceBucket`).
    pub source_bucket: String,
    #[serde(default)]
    pub filter: KeyFilter,
    /// The job's batch bounds, fixed at its start so every read makes the same batches.
    pub batch_size: u64,
    pub batch_bytes: u64,
}

/// What an emit step sends: file `index`'s `batches` key batches from number `base`,
/// starting at its local batch `next` (a resumed part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmitPlan {
    pub base: u64,
    pub batches: u64,
    /// The version the count step read: every read of the file is pinned to it.
    pub etag: String,
    #[serde(default)]
    pub next: u64,
}

/// A count (phase one, `emit` absent) or emit (phase two) batch of one data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryTask {
    pub file: InventoryFile,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emit: Option<EmitPlan>,
}

/// What a count step stores for its file (`{rejects prefix}{job}/inventory/count-NNNNNN.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredCount {
    /// Key batches the file makes.
    pub batches: u64,
    pub objects: u64,
    pub bytes: u64,
    pub rows: u64,
    pub listed: u64,
    pub skipped: u64,
    /// The version read (emit steps pin their reads to it).
    pub etag: String,
    /// The file counted (the compose step builds its emit batch from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<InventoryFile>,
    /// Set when the file cannot be read as its manifest says (its MD5, a row): the compose
    /// step then fails the job with it, since no batch after this file can be numbered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The control-queue message of an inventory job's fan-in: every count is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeInventory {
    pub job_id: JobId,
    pub compose_inventory: InventoryCompose,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryCompose {
    pub manifest: String,
    pub files: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_needs_an_inventory_and_matches_prefix_and_suffix() {
        let bare = InventoryOptions {
            inventory_key_suffix: Some(".csv".into()),
            ..InventoryOptions::default()
        };
        assert!(bare.check().unwrap_err().contains("inventory"));
        let named = InventoryOptions {
            inventory: Some("inv/manifest.json".into()),
            inventory_key_prefix: Some("data/".into()),
            ..bare
        };
        assert_eq!(named.check(), Ok(()));
        let filter = named.filter();
        assert!(filter.matches("data/a.csv"));
        assert!(!filter.matches("data/a.csv.gz") && !filter.matches("other/a.csv"));
        assert!(KeyFilter::default().matches("anything"));
    }
}
