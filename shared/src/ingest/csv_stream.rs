//! An incremental CSV record reader over any async byte source, on `csv-core`'s DFA.
//!
//! Why not `csv-async`: it builds a fresh `csv-core` DFA for every reader, and with one reader
//! per object that build was 13% of the worker's instructions (callgrind, 2,000 small files).
//! Here built parsers are pooled and `reset` for the next object (`csv-core`'s `Clone` does not
//! copy the whole DFA, so cloning a template is not an option). Records end at `\n` only, so
//! line numbers count every physical line (the default CRLF terminator lags by one after each
//! `\r\n`); the `\r` a CRLF leaves on the last field is stripped, and blank lines are skipped.

use std::sync::Mutex;

use csv_core::{ReadRecordResult, Terminator};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Built parsers not in use; at most as many as objects were ever read at once (capped).
static POOL: Mutex<Vec<csv_core::Reader>> = Mutex::new(Vec::new());
const MAX_POOLED: usize = 1024;

fn pooled_parser() -> csv_core::Reader {
    let reused = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop();
    match reused {
        Some(mut parser) => {
            parser.reset();
            parser
        }
        None => csv_core::ReaderBuilder::new()
            .terminator(Terminator::Any(b'\n'))
            .build(),
    }
}

/// One record: its fields, the line it starts on, and where its bytes are in the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    data: Vec<u8>,
    ends: Vec<usize>,
    line: u64,
    start: u64,
    end: u64,
}

impl Record {
    /// A record from literal fields (tests and tools).
    pub fn from_fields<T: AsRef<[u8]>>(fields: &[T]) -> Self {
        let mut record = Self::default();
        for field in fields {
            record.data.extend_from_slice(field.as_ref());
            record.ends.push(record.data.len());
        }
        record
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The 1-based line the record starts on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Offset of the record's first byte (blank lines before it are not part of it).
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset just past the record's terminator.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Whether a field holds a newline, which only a quoted field can.
    pub fn has_quoted_newline(&self) -> bool {
        memchr::memchr(b'\n', &self.data).is_some()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.data[start..end])
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Drops the `\r` of a CRLF line ending from the last field.
    fn strip_carriage_return(&mut self) {
        if let Some(&end) = self.ends.last() {
            let start = self.ends.len().checked_sub(2).map_or(0, |i| self.ends[i]);
            if end > start && self.data[end - 1] == b'\r' {
                *self.ends.last_mut().expect("checked above") -= 1;
                self.data.truncate(end - 1);
            }
        }
    }

    fn is_blank(&self) -> bool {
        self.ends.len() == 1 && self.ends[0] == 0
    }
}

pub struct RecordReader<R> {
    source: R,
    /// Always `Some` until dropped, when it goes back to the pool.
    core: Option<csv_core::Reader>,
    done: bool,
    /// Offset of the next unread byte.
    position: u64,
    /// Blank lines skipped here rather than by the parser (its line count misses them).
    skipped_lines: u64,
}

impl<R> Drop for RecordReader<R> {
    fn drop(&mut self) {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(parser) = self.core.take().filter(|_| pool.len() < MAX_POOLED) {
            pool.push(parser);
        }
    }
}

impl<R: AsyncBufRead + Unpin> RecordReader<R> {
    pub fn new(source: R) -> Self {
        Self::at_offset(source, 0)
    }

    /// A reader whose first byte is at `offset` of the object (a ranged read): record
    /// offsets are then offsets in the object.
    pub fn at_offset(source: R, offset: u64) -> Self {
        Self {
            source,
            core: Some(pooled_parser()),
            done: false,
            position: offset,
            skipped_lines: 0,
        }
    }

    /// Reads the next non-blank record into `record`; `false` at the end of the input.
    pub async fn read(&mut self, record: &mut Record) -> std::io::Result<bool> {
        loop {
            if !self.read_any(record).await? {
                return Ok(false);
            }
            record.strip_carriage_return();
            if !record.is_blank() {
                return Ok(true);
            }
        }
    }

    async fn read_any(&mut self, record: &mut Record) -> std::io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        // Blank lines are skipped before the parser sees them, so the record's offset is its
        // first byte: ranged reads decide which range owns a record by that offset.
        loop {
            let input = self.source.fill_buf().await?;
            let newlines = input.iter().take_while(|&&b| b == b'\n').count();
            if newlines == 0 {
                break;
            }
            self.source.consume(newlines);
            self.position += newlines as u64;
            self.skipped_lines += newlines as u64;
        }
        record.start = self.position;
        let core = self.core.as_mut().expect("the parser is held until drop");
        record.data.clear();
        record.ends.clear();
        if record.data.capacity() == 0 {
            record.data.resize(256, 0);
        } else {
            record.data.resize(record.data.capacity(), 0);
        }
        record.ends.resize(16, 0);
        let (mut out_len, mut ends_len) = (0, 0);
        let mut at_end_of_input = false;
        loop {
            let input = self.source.fill_buf().await?;
            at_end_of_input |= input.is_empty();
            let (result, read, written, ended) = core.read_record(
                input,
                &mut record.data[out_len..],
                &mut record.ends[ends_len..],
            );
            self.source.consume(read);
            self.position += read as u64;
            out_len += written;
            ends_len += ended;
            match result {
                ReadRecordResult::InputEmpty => continue,
                ReadRecordResult::OutputFull => {
                    let grown = record.data.len() * 2;
                    record.data.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull => {
                    let grown = record.ends.len() * 2;
                    record.ends.resize(grown, 0);
                }
                ReadRecordResult::Record => {
                    record.data.truncate(out_len);
                    record.ends.truncate(ends_len);
                    // Count back from where the parser is: the record's own newlines (quoted
                    // ones) and its terminator. Counting forward would miss the blank lines
                    // the parser skips before a record.
                    let inside = record.data.iter().filter(|&&b| b == b'\n').count() as u64;
                    let terminator = u64::from(!at_end_of_input);
                    record.line = (core.line() + self.skipped_lines)
                        .saturating_sub(inside + terminator)
                        .max(1);
                    record.end = self.position;
                    return Ok(true);
                }
                ReadRecordResult::End => {
                    self.done = true;
                    record.data.clear();
                    record.ends.clear();
                    return Ok(false);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn records(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let mut reader = RecordReader::new(text);
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record).await.unwrap() {
            let fields = record
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push((record.line(), fields));
        }
        out
    }

    fn owned(fields: &[&str]) -> Vec<String> {
        fields.iter().map(|f| f.to_string()).collect()
    }

    #[tokio::test]
    async fn lines_fields_quotes_crlf_and_blank_lines() {
        let got = records(b"a,b\r\n\r\n1,\"x\r\ny\"\r\n\n\"q\"\"\",\n3,4").await;
        assert_eq!(
            got,
            vec![
                (1, owned(&["a", "b"])),
                (3, owned(&["1", "x\r\ny"])),
                (6, owned(&["q\"", ""])),
                (7, owned(&["3", "4"])),
            ]
        );
    }

    #[tokio::test]
    async fn empty_input_has_no_records() {
        assert!(records(b"").await.is_empty());
        assert!(records(b"\n\r\n").await.is_empty());
    }

    #[tokio::test]
    async fn long_fields_and_many_fields_grow_the_buffers() {
        let long = "z".repeat(10_000);
        let many = vec!["f"; 100].join(",");
        let text = format!("{long},{many}\n");
        let got = records(text.as_bytes()).await;
        assert_eq!(got[0].1.len(), 101);
        assert_eq!(got[0].1[0], long);
    }

    #[tokio::test]
    async fn input_arriving_in_tiny_pieces_reads_the_same() {
        let text = b"a,\"b\nc\",d\r\n1,2,3\n".to_vec();
        let whole = records(&text).await;
        // A reader that hands out one byte at a time.
        let pieces = tokio::io::BufReader::with_capacity(1, &text[..]);
        let mut reader = RecordReader::new(pieces);
        let mut record = Record::default();
        let mut got = Vec::new();
        while reader.read(&mut record).await.unwrap() {
            got.push((
                record.line(),
                record
                    .iter()
                    .map(|f| String::from_utf8_lossy(f).into_owned())
                    .collect::<Vec<_>>(),
            ));
        }
        assert_eq!(got, whole);
        assert_eq!(whole[1].0, 3);
    }

    #[tokio::test]
    async fn records_know_their_byte_offsets_past_blank_lines() {
        let text = b"a,b\n\n\n\"x\ny\",2\r\n3,4";
        let mut reader = RecordReader::at_offset(&text[..], 100);
        let mut record = Record::default();
        let mut spans = Vec::new();
        while reader.read(&mut record).await.unwrap() {
            spans.push((record.start(), record.end(), record.line()));
        }
        assert_eq!(spans, vec![(100, 104, 1), (106, 115, 4), (115, 118, 6)]);
    }

    #[test]
    fn records_from_fields() {
        let record = Record::from_fields(&["a", "", "c"]);
        assert_eq!(record.len(), 3);
        assert_eq!(record.get(1), Some(&b""[..]));
        assert_eq!(record.get(3), None);
    }
}
