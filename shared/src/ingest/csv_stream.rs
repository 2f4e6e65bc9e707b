//! An incremental CSV record reader over any async byte source, on `csv-core`'s DFA.
//!
//! Why not `csv-async`: it builds a fresh `csv-core` DFA for every reader, and with one reader
//! per object that build was 13% of the worker's instructions (callgrind, 2,000 small files).
//! Here built parsers are pooled and `reset` for the next object (`csv-core`'s `Clone` does not
//! copy the whole DFA, so cloning a template is not an option). Records end at `\n` only, so
//! line numbers count every physical line (the default CRLF terminator lags by one after each
//! `\r\n`); the `\r` a CRLF leaves on the last field is stripped, and blank lines are skipped.
//!
//! A record is never buffered past [`DEFAULT_MAX_RECORD_BYTES`] (or the reader's own cap): past
//! it, the parser goes on over the record's bytes into a scratch buffer, so it stays in step
//! and the next record starts exactly where a full parse would start it, and the record comes
//! back marked [`Record::is_oversized`] with its offsets only. Memory stays flat whatever the
//! input (a multi-GB object with no newline included).

use std::sync::Mutex;

use csv_core::{ReadRecordResult, Terminator};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::contract::dialect::CsvDialect;

/// Built parsers of the default dialect not in use; at most as many as objects were ever
/// read at once (capped). Other dialects are built per reader: rarer, and not worth a pool
/// per dialect.
static POOL: Mutex<Vec<csv_core::Reader>> = Mutex::new(Vec::new());
const MAX_POOLED: usize = 1024;

/// Records longer than this (bytes, terminator included) are skipped, not buffered: above
/// DynamoDB's 400 KB item cap, so no storable row is lost.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

fn pooled_parser() -> csv_core::Reader {
    let reused = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop();
    match reused {
        Some(mut parser) => {
            parser.reset();
            parser
        }
        None => built(&CsvDialect::default()),
    }
}

fn built(dialect: &CsvDialect) -> csv_core::Reader {
    csv_core::ReaderBuilder::new()
        .terminator(Terminator::Any(b'\n'))
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .build()
}

/// One record: its fields, the line it starts on, and where its bytes are in the input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    data: Vec<u8>,
    ends: Vec<usize>,
    line: u64,
    start: u64,
    end: u64,
    /// Longer than the reader's cap: its fields were not kept.
    oversized: bool,
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

    /// Whether the record was longer than the reader's cap (no fields kept; offsets exact,
    /// except that a record cut short at a known row start ends there).
    pub fn is_oversized(&self) -> bool {
        self.oversized
    }

    /// Bytes the record's buffers hold (tests of the cap).
    pub fn buffered_capacity(&self) -> usize {
        self.data.capacity() + self.ends.capacity() * std::mem::size_of::<usize>()
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
        !self.oversized && self.ends.len() == 1 && self.ends[0] == 0
    }
}

pub struct RecordReader<R> {
    source: R,
    /// Always `Some` until dropped, when it goes back to the pool (if of the default dialect).
    core: Option<csv_core::Reader>,
    pooled: bool,
    done: bool,
    /// Offset of the next unread byte.
    position: u64,
    /// Blank lines skipped here rather than by the parser (its line count misses them).
    skipped_lines: u64,
    /// Lines the parser counted that are not the input's (see [`Self::mid_object`]).
    line_bias: u64,
    max_record_bytes: usize,
    /// In a ranged read: once an oversized record runs past `.0` (the range end), it ends at
    /// `.1` (the next row start, known from the scan), and nothing after it is read.
    horizon: Option<(u64, u64)>,
}

impl<R> Drop for RecordReader<R> {
    fn drop(&mut self) {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        let keep = self.pooled && pool.len() < MAX_POOLED;
        if let Some(parser) = self.core.take().filter(|_| keep) {
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
            pooled: true,
            done: false,
            position: offset,
            skipped_lines: 0,
            line_bias: 0,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            horizon: None,
        }
    }

    /// Reads `dialect`'s delimiter and quote (call before [`Self::mid_object`]).
    pub fn with_dialect(mut self, dialect: &CsvDialect) -> Self {
        let plain = CsvDialect {
            header: dialect.header,
            ..CsvDialect::default()
        };
        if *dialect != plain {
            self.core = Some(built(dialect));
            self.pooled = false;
        }
        self
    }

    /// Records longer than `max` bytes come back oversized instead of buffered.
    pub fn with_max_record_bytes(mut self, max: usize) -> Self {
        self.max_record_bytes = max.max(1);
        self
    }

    /// The input starts at a record boundary inside the object, not at its start: a UTF-8
    /// BOM there is data, as it is to a parser that read everything before it. (`csv-core`
    /// strips a BOM on its first call; one blank line fed first makes that call.)
    pub fn mid_object(mut self) -> Self {
        let core = self.core.as_mut().expect("the parser is held until drop");
        let (_, read, _, _) = core.read_record(b"\n", &mut [0; 4], &mut [0; 4]);
        debug_assert_eq!(read, 1);
        self.line_bias = 1;
        self
    }

    /// A headerless object's start: a UTF-8 BOM in its first bytes is consumed here, outside
    /// any record, and nowhere else (call on a [`Self::mid_object`] reader, so the parser
    /// strips none after blank lines). The scan skips the same bytes
    /// ([`crate::ingest::scan::Scanner::with_dialect`]), so whole and ranged reads agree.
    pub async fn skip_bom(&mut self) -> std::io::Result<()> {
        const BOM: &[u8] = b"\xef\xbb\xbf";
        if self.source.fill_buf().await?.starts_with(BOM) {
            self.source.consume(BOM.len());
            self.position += BOM.len() as u64;
        }
        Ok(())
    }

    /// See [`RecordReader::horizon`]: an oversized record reaching `range_end` ends at
    /// `next_row`.
    pub fn with_horizon(mut self, range_end: u64, next_row: u64) -> Self {
        self.horizon = Some((range_end, next_row));
        self
    }

    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> u64 {
        self.position
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
        record.oversized = false;
        let max = self.max_record_bytes;
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
        // Newlines in an oversized record's bytes, for its line number.
        let mut newlines = 0;
        loop {
            let input = self.source.fill_buf().await?;
            at_end_of_input |= input.is_empty();
            let (result, read, written, ended) = core.read_record(
                input,
                &mut record.data[out_len..],
                &mut record.ends[ends_len..],
            );
            if record.oversized {
                newlines += memchr::memchr_iter(b'\n', &input[..read]).count() as u64;
            }
            self.source.consume(read);
            self.position += read as u64;
            out_len += written;
            ends_len += ended;
            let grow = matches!(
                result,
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull
            );
            if grow && !record.oversized {
                let ends_bytes = record.ends.len() * 2 * std::mem::size_of::<usize>();
                if self.position - record.start > max as u64 || ends_bytes > max {
                    // Past the cap: from here on the buffers are scratch space.
                    record.oversized = true;
                    newlines = record.data[..out_len]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count() as u64;
                }
            }
            if record.oversized {
                (out_len, ends_len) = (0, 0);
                if let Some((range_end, next_row)) = self.horizon
                    && self.position >= range_end
                    && !matches!(result, ReadRecordResult::Record)
                {
                    // The scan says where the next row starts: no need to read up to it.
                    self.done = true;
                    record.data.clear();
                    record.ends.clear();
                    record.line = (core.line() + self.skipped_lines)
                        .saturating_sub(newlines + self.line_bias)
                        .max(1);
                    record.end = next_row;
                    return Ok(true);
                }
            }
            match result {
                ReadRecordResult::InputEmpty => continue,
                ReadRecordResult::OutputFull if !record.oversized => {
                    let grown = record.data.len() * 2;
                    record.data.resize(grown, 0);
                }
                ReadRecordResult::OutputEndsFull if !record.oversized => {
                    let grown = record.ends.len() * 2;
                    record.ends.resize(grown, 0);
                }
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {}
                ReadRecordResult::Record => {
                    record.end = self.position;
                    if !record.oversized && record.end - record.start > max as u64 {
                        record.oversized = true;
                        newlines = record.data[..out_len]
                            .iter()
                            .filter(|&&b| b == b'\n')
                            .count() as u64
                            + u64::from(!at_end_of_input);
                    }
                    if record.oversized {
                        record.data.clear();
                        record.ends.clear();
                        record.line = (core.line() + self.skipped_lines)
                            .saturating_sub(newlines + self.line_bias)
                            .max(1);
                        return Ok(true);
                    }
                    record.data.truncate(out_len);
                    record.ends.truncate(ends_len);
                    // Count back from where the parser is: the record's own newlines (quoted
                    // ones) and its terminator. Counting forward would miss the blank lines
                    // the parser skips before a record.
                    let inside = record.data.iter().filter(|&&b| b == b'\n').count() as u64;
                    let terminator = u64::from(!at_end_of_input);
                    record.line = (core.line() + self.skipped_lines)
                        .saturating_sub(inside + terminator + self.line_bias)
                        .max(1);
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

    /// A record over the cap is skipped with flat memory, and the parser stays in step.
    #[tokio::test]
    async fn an_oversized_record_is_skipped_without_buffering_it() {
        use tokio::io::AsyncReadExt;
        const CAP: usize = 64 << 10;
        let huge = 16u64 << 20;
        for filler in [b'z', b','] {
            // 16 MiB without a newline (letters, or commas: one field per byte), then rows.
            let source = tokio::io::repeat(filler)
                .take(huge)
                .chain(&b"\n\"q\nr\",2\nb,3\n"[..]);
            let mut reader =
                RecordReader::new(tokio::io::BufReader::new(source)).with_max_record_bytes(CAP);
            let mut record = Record::default();
            assert!(reader.read(&mut record).await.unwrap());
            assert!(record.is_oversized());
            assert_eq!(
                (record.start(), record.end(), record.line()),
                (0, huge + 1, 1)
            );
            assert!(record.is_empty());
            assert!(
                record.buffered_capacity() <= 3 * CAP,
                "{} bytes buffered",
                record.buffered_capacity()
            );
            assert!(reader.read(&mut record).await.unwrap());
            assert!(!record.is_oversized());
            assert_eq!(record.get(0), Some(&b"q\nr"[..]));
            assert_eq!((record.start(), record.line()), (huge + 1, 2));
            assert!(reader.read(&mut record).await.unwrap());
            assert_eq!((record.get(0), record.line()), (Some(&b"b"[..]), 4));
            assert!(!reader.read(&mut record).await.unwrap());
        }
    }

    #[tokio::test]
    async fn a_record_just_over_the_cap_is_oversized_and_one_at_it_is_not() {
        let text = b"abcdefg\nabcdefgh\nx\n";
        let mut reader = RecordReader::new(&text[..]).with_max_record_bytes(8);
        let mut record = Record::default();
        let mut seen = Vec::new();
        while reader.read(&mut record).await.unwrap() {
            seen.push((record.start(), record.is_oversized(), record.line()));
        }
        assert_eq!(seen, vec![(0, false, 1), (8, true, 2), (17, false, 3)]);
    }

    #[tokio::test]
    async fn mid_object_keeps_a_bom_as_data() {
        let text = "\u{feff}a,b\n".as_bytes();
        let fresh = records(text).await;
        assert_eq!(fresh[0].1[0], "a");
        let mut reader = RecordReader::at_offset(text, 10).mid_object();
        let mut record = Record::default();
        assert!(reader.read(&mut record).await.unwrap());
        assert_eq!(record.get(0), Some("\u{feff}a".as_bytes()));
        assert_eq!((record.start(), record.line()), (10, 1));
    }

    #[tokio::test]
    async fn a_dialect_splits_and_quotes_on_its_own_bytes_and_pools_only_the_default() {
        let text = b"a;'b;c''d';\"e,f\"\n1;'x\ny';2\n";
        let semi = CsvDialect {
            delimiter: b';',
            quote: b'\'',
            header: true,
        };
        let mut reader = RecordReader::new(&text[..]).with_dialect(&semi);
        assert!(!reader.pooled);
        let mut record = Record::default();
        let mut got = Vec::new();
        while reader.read(&mut record).await.unwrap() {
            got.push(record.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
        }
        let bytes = |fields: &[&str]| -> Vec<Vec<u8>> {
            fields.iter().map(|f| f.as_bytes().to_vec()).collect()
        };
        assert_eq!(
            got,
            vec![
                bytes(&["a", "b;c'd", "\"e,f\""]),
                bytes(&["1", "x\ny", "2"])
            ]
        );
        let tab = CsvDialect {
            delimiter: b'\t',
            ..CsvDialect::default()
        };
        let mut reader = RecordReader::new(&b"a,b\t\"c\td\"\n"[..]).with_dialect(&tab);
        assert!(reader.read(&mut record).await.unwrap());
        assert_eq!(record.get(0), Some(&b"a,b"[..]));
        assert_eq!(record.get(1), Some(&b"c\td"[..]));
        // Only `header` differs from the default: the pooled parser serves.
        let headerless = CsvDialect {
            header: false,
            ..CsvDialect::default()
        };
        assert!(RecordReader::new(&b""[..]).with_dialect(&headerless).pooled);
    }

    #[test]
    fn records_from_fields() {
        let record = Record::from_fields(&["a", "", "c"]);
        assert_eq!(record.len(), 3);
        assert_eq!(record.get(1), Some(&b""[..]));
        assert_eq!(record.get(3), None);
    }
}
