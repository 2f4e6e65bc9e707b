//! A Parquet object's footer: its last 8 bytes give the metadata's length and the magic
//! `PAR1`; the metadata before them lists the row groups and where their column chunks are.
//! The coordinator reads it with ranged GETs to plan by row group; a footer that does not
//! parse makes the whole object a reject, with the reason.

use std::collections::HashSet;

use ::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use thiserror::Error;

/// The magic a Parquet file starts and ends with.
pub const MAGIC: &[u8; 4] = b"PAR1";
/// The fixed end of a file: the metadata's length (4 bytes LE) and the magic.
pub const TAIL_BYTES: u64 = 8;
/// The leading magic and the tail: no file is smaller.
const MIN_FILE_BYTES: u64 = 4 + TAIL_BYTES;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FooterError {
    #[error("not a Parquet file: {size} bytes, under the 12 of an empty one")]
    TooSmall { size: u64 },
    #[error("not a Parquet file: it does not end with the magic PAR1")]
    BadMagic,
    #[error("corrupt Parquet footer: a metadata length of {length} bytes in a {size}-byte object")]
    BadLength { length: u64, size: u64 },
    #[error("corrupt Parquet footer: the metadata does not decode ({0})")]
    Metadata(String),
}

/// The metadata's length from the object's last 8 bytes (`tail`) and its `size`.
pub fn metadata_length(tail: &[u8], size: u64) -> Result<u64, FooterError> {
    if size < MIN_FILE_BYTES || tail.len() < TAIL_BYTES as usize {
        return Err(FooterError::TooSmall { size });
    }
    let tail = &tail[tail.len() - TAIL_BYTES as usize..];
    if &tail[4..] != MAGIC {
        return Err(FooterError::BadMagic);
    }
    let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if length + MIN_FILE_BYTES > size {
        return Err(FooterError::BadLength { length, size });
    }
    Ok(length)
}

/// The metadata bytes (without the 8-byte tail), decoded.
pub fn decode(metadata: &[u8]) -> Result<ParquetMetaData, FooterError> {
    ParquetMetaDataReader::decode_metadata(metadata)
        .map_err(|error| FooterError::Metadata(error.to_string()))
}

/// Where the footer (metadata and tail) starts in an object of `size` bytes.
pub fn footer_start(size: u64, metadata_length: u64) -> u64 {
    size - metadata_length - TAIL_BYTES
}

/// One row group: its rows and the bytes of its column chunks (`start..end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowGroupSpan {
    pub index: usize,
    pub rows: u64,
    pub start: u64,
    pub end: u64,
    /// The bytes of its column chunks a task reads: all of them, or with a projection only
    /// the needed fields' ([`super::projection`]). Batches are sized by these.
    pub read: u64,
}

impl RowGroupSpan {
    pub fn bytes(&self) -> u64 {
        self.end - self.start
    }
}

/// Every row group's span, in file order, and the bytes a read of the `needed` fields takes
/// of it (every field if `None`); an error if a chunk lies outside the object's data (a
/// footer that would send reads past its end).
pub fn row_groups(
    meta: &ParquetMetaData,
    size: u64,
    needed: Option<&HashSet<String>>,
) -> Result<Vec<RowGroupSpan>, FooterError> {
    let projected = super::projection::projecting(meta, needed);
    let mut spans = Vec::with_capacity(meta.num_row_groups());
    for (index, group) in meta.row_groups().iter().enumerate() {
        let mut start = u64::MAX;
        let mut end = 0u64;
        let mut read = 0u64;
        for column in group.columns() {
            let (from, length) = column.byte_range();
            let to = from
                .checked_add(length)
                .filter(|&to| to <= size)
                .ok_or_else(|| {
                    FooterError::Metadata(format!(
                        "row group {index}'s column chunk at {from}+{length} is past the object's \
                     {size} bytes"
                    ))
                })?;
            start = start.min(from);
            end = end.max(to);
            if super::projection::reads(projected, column) {
                read += length;
            }
        }
        let rows = u64::try_from(group.num_rows()).map_err(|_| {
            FooterError::Metadata(format!("row group {index} has a negative row count"))
        })?;
        if start > end {
            (start, end) = (0, 0); // a row group with no columns: nothing to read
        }
        spans.push(RowGroupSpan {
            index,
            rows,
            start,
            end,
            read,
        });
    }
    Ok(spans)
}
