//! S3 Inventory reports as a job's listing (`docs/inventory.md`): the manifest and its
//! checksum ([`manifest`]), the data files' rows by name of column ([`columns`]; gzip CSV in
//! [`csv`], Parquet in [`parquet`]; ORC is refused), each data file's MD5 checked while it
//! streams ([`crate::ingest::digest`]), and the deterministic batcher that turns one data file's rows into
//! the same numbered key batches on every read ([`batches`]). Pure: the worker does the
//! reads.

pub mod batches;
pub mod columns;
pub mod csv;
pub mod manifest;
pub mod parquet;
#[cfg(test)]
mod tests;

use thiserror::Error;

use crate::ingest::digest::{self, Digest, Mismatch};

pub use batches::{FileCount, InventoryBatcher, KeyFilter};
pub use manifest::{DataFile, FileFormat, Manifest};

/// A Parquet data file is read whole into memory (it cannot be read front to back); AWS
/// writes them far smaller than this.
pub const MAX_PARQUET_FILE_BYTES: u64 = 256 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InventoryError {
    #[error("{key}: {reason}")]
    Manifest { key: String, reason: String },
    #[error(
        "{key} does not match its manifest.checksum (MD5 {actual}, the checksum file says {expected})"
    )]
    Checksum {
        key: String,
        actual: String,
        expected: String,
    },
    #[error("the inventory data file {file} does not read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file} line {line}: {reason}")]
    Row {
        file: String,
        line: u64,
        reason: String,
    },
    #[error(
        "the inventory data file {file} does not match its manifest (MD5 {actual} of {bytes} bytes, the manifest says {expected} of {size})"
    )]
    DataChecksum {
        file: String,
        actual: String,
        bytes: u64,
        expected: String,
        size: u64,
    },
}

/// Checks what a [`Digest`] saw of `file` against its manifest entry (`md5`, `size`).
pub fn check_digest(
    digest: &Digest,
    file: &str,
    md5: &str,
    size: u64,
) -> Result<(), InventoryError> {
    digest
        .verify(md5, size)
        .map_err(|m| data_checksum(m, file, md5, size))
}

/// As [`check_digest`], for a data file read whole (Parquet).
pub fn check_bytes(bytes: &[u8], file: &str, md5: &str, size: u64) -> Result<(), InventoryError> {
    digest::verify_bytes(bytes, md5, size).map_err(|m| data_checksum(m, file, md5, size))
}

fn data_checksum(
    Mismatch { actual, bytes }: Mismatch,
    file: &str,
    md5: &str,
    size: u64,
) -> InventoryError {
    InventoryError::DataChecksum {
        file: file.to_owned(),
        actual,
        bytes,
        expected: crate::ingest::typing::error::cap(md5, 64),
        size,
    }
}

/// One row of an inventory: an object (or a version or delete marker) of the source bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub bucket: Option<String>,
    pub key: String,
    /// Empty for a delete marker (and absent if the report has no Size column).
    pub size: Option<u64>,
    /// `IsLatest` (true when the report lists current versions only).
    pub latest: bool,
    pub delete_marker: bool,
}

impl Listed {
    /// The current version of a live object: what a load reads.
    pub fn is_current(&self) -> bool {
        self.latest && !self.delete_marker
    }
}

/// The rows of one data file, whichever its format.
// One per data file read, never in a collection: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum DataRows {
    Csv(csv::CsvInventory<crate::ingest::compression::BoxedRead>),
    Parquet(parquet::ParquetInventory),
}

impl DataRows {
    /// The rows of a CSV data file from its stored bytes (gzip when its key says so), its
    /// MD5 computed as they pass ([`check_digest`] once the rows are read).
    pub fn csv<R>(raw: R, columns: columns::CsvColumns, file: &str) -> (Self, Digest)
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        use crate::ingest::compression::{self, Encoding};
        let (hashing, digest) = digest::Hashing::new(raw);
        let decoded = compression::decoded(
            tokio::io::BufReader::new(hashing),
            Encoding::of_key(file),
            compression::DEFAULT_MAX_DECODED_BYTES,
        );
        (
            Self::Csv(csv::CsvInventory::new(decoded, columns, file)),
            digest,
        )
    }

    pub async fn next(&mut self) -> Result<Option<Listed>, InventoryError> {
        match self {
            Self::Csv(rows) => rows.next().await,
            Self::Parquet(rows) => rows.next_row(),
        }
    }
}

/// Every row of a data file through `batcher`: its count (the count step). `on_batch` sees
/// each closed batch (the emit step sends them).
pub async fn batch_file(
    rows: &mut DataRows,
    mut batcher: InventoryBatcher,
    file: &str,
    mut on_batch: impl FnMut(u64, Vec<String>),
) -> Result<FileCount, InventoryError> {
    while let Some(row) = rows.next().await? {
        for (n, keys) in batcher.push(row, file)? {
            on_batch(n, keys);
        }
    }
    let (last, count) = batcher.finish();
    if let Some((n, keys)) = last {
        on_batch(n, keys);
    }
    Ok(count)
}
