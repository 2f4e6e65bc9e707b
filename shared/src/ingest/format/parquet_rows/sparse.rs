//! The bytes of a Parquet object a worker fetched (its footer and its row groups' column
//! chunks), served to the parquet reader as if they were the whole file: a read outside them
//! is an error, never a silent fetch, so bytes read stay those planned.

use ::parquet::errors::{ParquetError, Result};
use ::parquet::file::reader::{ChunkReader, Length};
use bytes::{Buf, Bytes};

/// Pieces of one object at their offsets, non-overlapping.
#[derive(Debug, Clone)]
pub struct Sparse {
    size: u64,
    pieces: Vec<(u64, Bytes)>,
}

impl Sparse {
    /// An object of `size` bytes of which nothing is fetched yet.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            pieces: Vec::new(),
        }
    }

    /// A whole object in memory.
    pub fn whole(bytes: Bytes) -> Self {
        let size = bytes.len() as u64;
        Self {
            size,
            pieces: vec![(0, bytes)],
        }
    }

    /// Adds the bytes fetched at `offset`.
    pub fn insert(&mut self, offset: u64, bytes: Bytes) {
        let at = self.pieces.partition_point(|(start, _)| *start < offset);
        self.pieces.insert(at, (offset, bytes));
    }

    /// Bytes held.
    pub fn held(&self) -> u64 {
        self.pieces.iter().map(|(_, b)| b.len() as u64).sum()
    }

    fn piece(&self, start: u64, length: u64) -> Result<Bytes> {
        let at = self.pieces.partition_point(|(from, _)| *from <= start);
        let found = at.checked_sub(1).and_then(|i| self.pieces.get(i));
        match found {
            Some((from, bytes)) if start + length <= from + bytes.len() as u64 => {
                let offset = (start - from) as usize;
                Ok(bytes.slice(offset..offset + length as usize))
            }
            _ => Err(ParquetError::General(format!(
                "bytes {start}..{} of the object were not fetched",
                start + length
            ))),
        }
    }
}

impl Length for Sparse {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Sparse {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> Result<Self::T> {
        // The reader reads on from here up to the end of the piece it starts in.
        let at = self.pieces.partition_point(|(from, _)| *from <= start);
        let (from, bytes) = at
            .checked_sub(1)
            .and_then(|i| self.pieces.get(i))
            .ok_or_else(|| ParquetError::General(format!("byte {start} was not fetched")))?;
        let length = (from + bytes.len() as u64).saturating_sub(start);
        Ok(self.piece(start, length)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        self.piece(start, length as u64)
    }
}
