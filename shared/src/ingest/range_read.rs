//! Large-object mode: one big CSV read as byte ranges by parallel ranged GETs, every row once.
//!
//! The rule is S3 Select's ScanRange rule: a row belongs to the range that holds its first
//! byte. Where rows start is not visible from inside a range (a `\n` inside quotes is data),
//! so an object of several ranges is read twice, each time in parallel and each time once:
//! a scan of every range ([`scan_range`], [`crate::ingest::scan`]) and, once the scans are
//! composed, a parse of every range from its exact first row to the first row after it
//! ([`open_range`]). Nothing is read from the object's start, whatever the quoting: bytes
//! read per object are at most twice its size.

use std::future::Future;

use thiserror::Error;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::contract::dialect::CsvDialect;
use crate::contract::messages::RangeTask;
use crate::contract::schema::Schema;
use crate::ingest::csv_stream::{Record, RecordReader};
use crate::ingest::decode::{ObjectDecoder, RowWindow};
use crate::ingest::scan::{RangeScan, Scanner};
use crate::ingest::typing::{HeaderError, RowTyper};

/// Where a ranged read gets its bytes: the object's bytes `from..to`.
pub trait ByteSource {
    type Reader: AsyncBufRead + Unpin;
    type Error;
    fn read(&self, from: u64, to: u64) -> impl Future<Output = Result<Self::Reader, Self::Error>>;
}

#[derive(Debug, Error)]
pub enum RangeOpenError<E> {
    #[error("opening the object failed")]
    Source(#[source] E),
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A range message without the scan's row span (planned by an older coordinator).
    #[error("the range was planned without exact row boundaries; load the object again")]
    Unscanned,
    /// A header carried by the object (`header_end`) that is not one record ending there.
    #[error("the object's header, bytes 0..{end}, does not read as one record ending there")]
    HeaderUnreadable { end: u64 },
    #[error("the range's row span {first}..{stop} does not fit its bytes {start}..{end}")]
    BadSpan {
        first: u64,
        stop: u64,
        start: u64,
        end: u64,
    },
}

/// Opens one range for decoding: its rows are exactly the rows whose first byte lies in
/// `[task.start, task.end)`, read from the span the scans found. `None`: no row starts in
/// the range (nothing is read).
pub async fn open_range<S: ByteSource>(
    source: &S,
    task: &RangeTask,
    schema: &Schema,
    max_record_bytes: usize,
) -> Result<Option<ObjectDecoder<S::Reader>>, RangeOpenError<S::Error>> {
    let span = task.rows.ok_or(RangeOpenError::Unscanned)?;
    if span.first >= span.stop {
        return Ok(None);
    }
    let header = match task.header_end {
        Some(end) => read_header(source, end, &schema.csv, max_record_bytes).await?,
        None => Record::from_fields(&task.header),
    };
    let typer = RowTyper::new(schema, &header)?;
    if span.first < task.start || span.first >= task.end || span.stop < task.end {
        return Err(RangeOpenError::BadSpan {
            first: span.first,
            stop: span.stop,
            start: task.start,
            end: task.end,
        });
    }
    let body = source
        .read(span.first, span.stop)
        .await
        .map_err(RangeOpenError::Source)?;
    let reader = RecordReader::at_offset(body, span.first)
        .with_dialect(&schema.csv)
        .mid_object()
        .with_max_record_bytes(max_record_bytes)
        .with_horizon(task.end, span.stop);
    let window = RowWindow {
        from: task.start,
        to: task.end,
    };
    Ok(Some(ObjectDecoder::with_typer(
        reader, typer, window, schema.csv,
    )))
}

/// A header the object carries, bytes `0..end` (a BOM, then one record): read by a range's
/// worker instead of being copied into every message. Costs one GET of `end` bytes.
async fn read_header<S: ByteSource>(
    source: &S,
    end: u64,
    dialect: &CsvDialect,
    max_record_bytes: usize,
) -> Result<Record, RangeOpenError<S::Error>> {
    let body = source.read(0, end).await.map_err(RangeOpenError::Source)?;
    let mut reader = RecordReader::new(body)
        .with_dialect(dialect)
        .with_max_record_bytes(max_record_bytes);
    let mut header = Record::default();
    let read = reader.read(&mut header).await.unwrap_or(false);
    match read && !header.is_oversized() && header.end() == end {
        true => Ok(header),
        false => Err(RangeOpenError::HeaderUnreadable { end }),
    }
}

/// Scans the bytes `start..end` of an object in `dialect` arriving in `body` (see
/// [`crate::ingest::scan`]). Memory is the reader's buffer; the bytes are looked at once.
pub async fn scan_range<R: AsyncBufRead + Unpin>(
    mut body: R,
    start: u64,
    end: u64,
    dialect: &CsvDialect,
) -> std::io::Result<RangeScan> {
    let mut scanner = Scanner::with_dialect(start, dialect);
    let mut left = end.saturating_sub(start);
    while left > 0 {
        let buffer = body.fill_buf().await?;
        if buffer.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the object ended {left} bytes before byte {end}"),
            ));
        }
        let take = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        scanner.feed(&buffer[..take]);
        body.consume(take);
        left -= take as u64;
    }
    Ok(scanner.finish())
}

/// An object held in memory (tests and benchmarks).
pub struct InMemory<'a>(pub &'a [u8]);

impl<'a> ByteSource for InMemory<'a> {
    type Reader = &'a [u8];
    type Error = std::convert::Infallible;

    async fn read(&self, from: u64, to: u64) -> Result<&'a [u8], Self::Error> {
        let len = self.0.len();
        let to = usize::try_from(to).unwrap_or(usize::MAX).min(len);
        let from = usize::try_from(from).unwrap_or(usize::MAX).min(to);
        Ok(&self.0[from..to])
    }
}

#[cfg(test)]
#[path = "range_read_tests.rs"]
mod tests;
