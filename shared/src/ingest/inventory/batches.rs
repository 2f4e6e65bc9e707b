//! One data file's rows to numbered key batches, the same on every read: rows are taken in
//! file order (the file is pinned by its MD5 and ETag), filtered (current versions of live
//! objects, the job's key prefix and suffix, loadable suffixes), and batched by the job's
//! batch size and batch bytes (the `Size` column) exactly as a prefix listing is. So the
//! count step and every emit of the same file make the same batches under the same local
//! numbers `0..K`.

use serde::{Deserialize, Serialize};

pub use crate::contract::inventory::KeyFilter;

use super::{InventoryError, Listed};
use crate::plan::batching::{KeyBatcher, is_loadable_key};

/// What one data file holds for the job: the count step stores it, the compose step numbers
/// the files from it, and each emit checks it made the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileCount {
    /// Key batches the file makes.
    pub batches: u64,
    /// Objects in them.
    pub objects: u64,
    /// Their listed sizes.
    pub bytes: u64,
    /// Every row of the file.
    pub rows: u64,
    /// Current objects that pass the filter (the job's `files_listed` share).
    pub listed: u64,
    /// Of those, keys this loader does not read (the job's `files_skipped` share).
    pub skipped: u64,
}

/// The batcher of one data file.
#[derive(Debug)]
pub struct InventoryBatcher {
    filter: KeyFilter,
    source_bucket: String,
    batcher: KeyBatcher,
    count: FileCount,
}

impl InventoryBatcher {
    /// Batches of at most `keys` keys and, as whole objects allow, `bytes` listed bytes.
    pub fn new(filter: KeyFilter, source_bucket: &str, keys: usize, bytes: u64) -> Self {
        Self {
            filter,
            source_bucket: source_bucket.to_owned(),
            batcher: KeyBatcher::new(keys, bytes),
            count: FileCount::default(),
        }
    }

    /// Takes the next row; returns the batches it closed, numbered from 0 in this file. A
    /// row of another bucket than the manifest's `sourceBucket` is refused.
    pub fn push(
        &mut self,
        row: Listed,
        file: &str,
    ) -> Result<Vec<(u64, Vec<String>)>, InventoryError> {
        self.count.rows += 1;
        if let Some(bucket) = &row.bucket
            && *bucket != self.source_bucket
        {
            return Err(InventoryError::Row {
                file: file.to_owned(),
                line: self.count.rows,
                reason: format!(
                    "the row is of bucket {bucket:?}, the manifest's sourceBucket is {:?}",
                    self.source_bucket
                ),
            });
        }
        if !row.is_current() || !self.filter.matches(&row.key) {
            return Ok(Vec::new());
        }
        self.count.listed += 1;
        if !is_loadable_key(&row.key) {
            self.count.skipped += 1;
            return Ok(Vec::new());
        }
        let size = row.size.unwrap_or(0);
        self.count.objects += 1;
        self.count.bytes += size;
        Ok(self.batcher.push(row.key, size))
    }

    /// The last, partial batch (if any) and the file's count.
    pub fn finish(mut self) -> (Option<(u64, Vec<String>)>, FileCount) {
        let last = self.batcher.finish();
        self.count.batches = self.batcher.emitted();
        (last, self.count)
    }
}
