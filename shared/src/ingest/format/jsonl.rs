//! JSON Lines: each non-blank line one JSON object, typed by the schema as a CSV row is
//! ([`JsonRowTyper`]). A bad line (not JSON, not an object, over a DynamoDB limit, over the
//! record cap, a required field missing) is rejected alone, with its line, byte offset and
//! reason; the lines after it load.

use tokio::io::AsyncBufRead;

use super::lines::{Line, LineReader};
use crate::contract::schema::Schema;
use crate::ingest::csv_stream::DEFAULT_MAX_RECORD_BYTES;
use crate::ingest::decode::{DecodeError, Decoded, MAX_RAW_BYTES, RowReject};
use crate::ingest::typing::RowError;
use crate::ingest::typing::json::parse_line;
use crate::ingest::typing::json_row::JsonRowTyper;

pub struct JsonLinesDecoder<R> {
    reader: LineReader<R>,
    typer: JsonRowTyper,
    line: Line,
    /// Where the line after the last one yielded starts.
    next_row: u64,
    /// Lines yielded (rows and rejects), the way a resumed read skips them.
    records: u64,
    done: bool,
}

impl<R: AsyncBufRead + Unpin> JsonLinesDecoder<R> {
    /// Applies the schema (no header to read: every line names its fields).
    pub fn open(read: R, schema: &Schema) -> Result<Self, DecodeError> {
        Self::open_capped(read, schema, DEFAULT_MAX_RECORD_BYTES)
    }

    /// As [`Self::open`]; lines over `max_record_bytes` are rejected, not buffered.
    pub fn open_capped(
        read: R,
        schema: &Schema,
        max_record_bytes: usize,
    ) -> Result<Self, DecodeError> {
        Self::open_at(read, 0, schema, max_record_bytes)
    }

    /// The rest of an object from `offset`, a line start (a plain object resumed at its
    /// next line): offsets stay the object's; line numbers count from `offset`.
    pub fn open_at(
        read: R,
        offset: u64,
        schema: &Schema,
        max_record_bytes: usize,
    ) -> Result<Self, DecodeError> {
        Ok(Self {
            reader: LineReader::at_offset(read, offset).with_max_line_bytes(max_record_bytes),
            typer: JsonRowTyper::new(schema)?,
            line: Line::default(),
            next_row: offset,
            records: 0,
            done: false,
        })
    }

    /// Yields only the lines that start before `end` (a range's end).
    pub fn until(mut self, end: u64) -> Self {
        self.reader = self.reader.until(end);
        self
    }

    /// Counts a TTL duration from `epoch_seconds` (tests).
    pub fn loaded_at(mut self, epoch_seconds: u64) -> Self {
        self.typer = self.typer.loaded_at(epoch_seconds);
        self
    }

    /// Bytes the line buffer holds (tests of the cap).
    pub fn buffered_capacity(&self) -> usize {
        self.line.buffered_capacity()
    }

    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    pub fn next_row(&self) -> u64 {
        self.next_row
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Skips up to `n` non-blank lines unparsed (a resumed read); returns how many.
    pub async fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        let mut skipped = 0;
        while skipped < n && !self.done {
            if !self.reader.read(&mut self.line).await? {
                self.done = true;
                break;
            }
            skipped += 1;
            self.records += 1;
            self.next_row = self.line.end();
        }
        Ok(skipped)
    }

    /// The next row or reject; `None` at the end. An error is a failed read, never data.
    pub async fn next(&mut self) -> std::io::Result<Option<Decoded>> {
        if self.done || !self.reader.read(&mut self.line).await? {
            self.done = true;
            return Ok(None);
        }
        self.records += 1;
        self.next_row = self.line.end();
        let line = &self.line;
        let reject = |reason: String| {
            Decoded::Reject(RowReject {
                line: line.line(),
                byte_offset: Some(line.start()),
                reason,
                raw: raw_text(line.text()),
            })
        };
        if line.is_oversized() {
            return Ok(Some(reject(format!(
                "a line of {} bytes or more is longer than the {}-byte record cap (DynamoDB \
                 items hold at most 400 KB); skipped to the next line",
                line.end() - line.start(),
                self.reader.max_line_bytes()
            ))));
        }
        let Ok(text) = std::str::from_utf8(line.text()) else {
            return Ok(Some(reject("invalid UTF-8".into())));
        };
        let typed = parse_line(text)
            .map_err(RowError::Line)
            .and_then(|object| self.typer.type_object(object, line.line(), line.start()));
        Ok(Some(match typed {
            Ok(row) => Decoded::Row(row),
            Err(reason) => reject(reason.to_string()),
        }))
    }
}

/// The line as read, capped at [`MAX_RAW_BYTES`] on a char boundary (lossy UTF-8).
pub(super) fn raw_text(bytes: &[u8]) -> String {
    let mut text =
        String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_RAW_BYTES + 4)]).into_owned();
    if text.len() > MAX_RAW_BYTES {
        let mut cut = MAX_RAW_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}
