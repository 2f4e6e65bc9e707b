//! Cutting a decoded stream into plain parts at record boundaries, with no IO of its own: the
//! inflate step (`docs/compressed.md`) feeds it the decompressed bytes of a large compressed
//! object and PUTs each part it closes.
//!
//! Records are found as a sequential parse finds them: CSV by the scan's DFA in the job's
//! dialect from RecordStart ([`crate::ingest::scan::next_state`], the same transitions the
//! range reader is proved against), a line format by its `\n`s. A record starts at a byte
//! read in RecordStart that is not `\n` (blank lines belong to no record). Part p + 1 starts at
//! the first record start at least `part_bytes` past part p's start: the cuts depend only on
//! the bytes, so a part written twice is the same part. Each part is the header's bytes and
//! then its records, so a fresh range reader from just past the header reads exactly the
//! records a sequential parse of the object reads there.
//!
//! A record longer than the record cap keeps only its first `max_record + 1` bytes (still over
//! the cap, so it is rejected for its length at its own line and offset, as a whole read
//! rejects it) and ends its part: a part never holds more than `part_bytes` + the cap + the
//! header.

use crate::contract::dialect::CsvDialect;
use crate::ingest::scan::{ParseState, next_state};

/// How records end.
#[derive(Debug, Clone, Copy)]
pub enum Walk {
    /// CSV in this dialect (quoted fields may hold `\n`).
    Csv(CsvDialect),
    /// A record per line (JSON Lines, DynamoDB JSON).
    Lines,
}

impl Walk {
    fn step(&self, state: ParseState, byte: u8) -> ParseState {
        match self {
            Walk::Csv(dialect) => next_state(state, byte, dialect),
            Walk::Lines if byte == b'\n' => ParseState::RecordStart,
            Walk::Lines => ParseState::Unquoted,
        }
    }
}

/// A closed part: the header's bytes, then records starting at decoded offset `offset` (on
/// line `line` of the object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub index: u64,
    pub offset: u64,
    pub line: u64,
    /// Where the records start in `bytes` (the header's length).
    pub data_start: u64,
    pub bytes: Vec<u8>,
}

/// Where the header of a CSV ends: just past the first record's terminator (blank lines
/// before it included), fed in pieces.
#[derive(Debug, Clone)]
pub struct HeaderEnd {
    dialect: CsvDialect,
    state: ParseState,
    started: bool,
    offset: u64,
}

impl HeaderEnd {
    pub fn new(dialect: CsvDialect) -> Self {
        Self {
            dialect,
            state: ParseState::RecordStart,
            started: false,
            offset: 0,
        }
    }

    /// Feeds `bytes`; `Some(end)`: the header ends at decoded offset `end` (within them).
    pub fn feed(&mut self, bytes: &[u8]) -> Option<u64> {
        for &byte in bytes {
            if self.state == ParseState::RecordStart && byte != b'\n' {
                self.started = true;
            }
            self.state = next_state(self.state, byte, &self.dialect);
            self.offset += 1;
            if self.started && self.state == ParseState::RecordStart {
                return Some(self.offset);
            }
        }
        None
    }
}

/// Cuts decoded bytes into parts from a record boundary on.
#[derive(Debug)]
pub struct Splitter {
    walk: Walk,
    part_bytes: u64,
    max_record: u64,
    header: Vec<u8>,
    state: ParseState,
    /// Decoded offset of the next byte fed.
    offset: u64,
    /// `\n`s before `offset`.
    newlines: u64,
    /// No record of the current part yet (its start is the first record start).
    seeking: bool,
    index: u64,
    start: u64,
    line: u64,
    record_start: u64,
    /// The current record went over the cap: the part ends at the next record start.
    cut: bool,
    bytes: Vec<u8>,
}

impl Splitter {
    /// Parts from part `index`, whose first record is the first to start at or after
    /// `offset`, a position where the parser is between records and `line - 1` newlines
    /// came before; every part begins with `header`.
    pub fn new(
        walk: Walk,
        part_bytes: u64,
        max_record: usize,
        header: Vec<u8>,
        (index, offset, line): (u64, u64, u64),
    ) -> Self {
        Self {
            walk,
            part_bytes: part_bytes.max(1),
            max_record: max_record as u64,
            bytes: header.clone(),
            header,
            state: ParseState::RecordStart,
            offset,
            newlines: line.saturating_sub(1),
            seeking: true,
            index,
            start: offset,
            line,
            record_start: offset,
            cut: false,
        }
    }

    /// Decoded offset of the next byte fed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The part being built: its number, first record's offset and line (where a
    /// continuation starts if this part is dropped).
    pub fn current(&self) -> (u64, u64, u64) {
        match self.seeking {
            true => (self.index, self.offset, self.newlines + 1),
            false => (self.index, self.start, self.line),
        }
    }

    /// Feeds `bytes`: how many it took, and a part if one closed (then the bytes after those
    /// taken start the next part and must be fed again).
    pub fn feed(&mut self, bytes: &[u8]) -> (usize, Option<Part>) {
        for (i, &byte) in bytes.iter().enumerate() {
            let record_starts = self.state == ParseState::RecordStart && byte != b'\n';
            if record_starts {
                if self.seeking {
                    self.seeking = false;
                    self.start = self.offset;
                    self.line = self.newlines + 1;
                } else if self.cut || self.offset >= self.start + self.part_bytes {
                    return (i, Some(self.close()));
                }
                self.record_start = self.offset;
            }
            let in_record = record_starts || self.state != ParseState::RecordStart;
            if !self.seeking {
                if in_record && self.offset - self.record_start > self.max_record {
                    self.cut = true;
                } else {
                    self.bytes.push(byte);
                }
            }
            if byte == b'\n' {
                self.newlines += 1;
            }
            self.state = self.walk.step(self.state, byte);
            self.offset += 1;
        }
        (bytes.len(), None)
    }

    /// The last part, at the stream's end (`None`: no record after the last cut).
    pub fn finish(mut self) -> Option<Part> {
        (!self.seeking).then(|| self.close())
    }

    fn close(&mut self) -> Part {
        let bytes = std::mem::replace(&mut self.bytes, self.header.clone());
        let part = Part {
            index: self.index,
            offset: self.start,
            line: self.line,
            data_start: self.header.len() as u64,
            bytes,
        };
        self.index += 1;
        self.seeking = true;
        self.cut = false;
        part
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ingest::csv_stream::{Record, RecordReader};

    /// Every part of `data` (from `offset`), fed in pieces of `piece` bytes.
    fn split(data: &[u8], walk: Walk, part_bytes: u64, piece: usize, header: &[u8]) -> Vec<Part> {
        let mut splitter = Splitter::new(walk, part_bytes, 1 << 20, header.to_vec(), (0, 0, 1));
        let mut parts = Vec::new();
        for chunk in data.chunks(piece.max(1)) {
            let mut rest = chunk;
            loop {
                let (taken, part) = splitter.feed(rest);
                rest = &rest[taken..];
                match part {
                    Some(part) => parts.push(part),
                    None => break,
                }
            }
        }
        parts.extend(splitter.finish());
        parts
    }

    /// (offset, line, fields) of every record of a sequential parse of `data`.
    async fn records(data: &[u8]) -> Vec<(u64, u64, Vec<Vec<u8>>)> {
        let mut reader = RecordReader::new(data);
        let mut record = Record::default();
        let mut out = Vec::new();
        while reader.read(&mut record).await.unwrap() {
            out.push((
                record.start(),
                record.line(),
                record.iter().map(<[u8]>::to_vec).collect(),
            ));
        }
        out
    }

    fn csv_text() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop::sample::select(vec![
            "a",
            "bc",
            ",",
            "\"",
            "\"\"",
            "\n",
            "\r\n",
            "\n\n",
            "x,\"y\nz\",w\n",
        ]);
        prop::collection::vec(piece, 0..120).prop_map(|pieces| pieces.concat().into_bytes())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Parts concatenated (headers aside) hold every record of the object once: each
        /// part's records, read alone, are the object's records that start in it, at the
        /// part's offset and line.
        #[test]
        fn parts_hold_exactly_the_records_a_sequential_parse_reads(
            data in csv_text(),
            part_bytes in 1u64..40,
            piece in 1usize..50,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let whole = records(&data).await;
                let parts = split(&data, Walk::Csv(CsvDialect::default()), part_bytes, piece, b"");
                // The same cuts whatever the pieces.
                assert_eq!(parts, split(&data, Walk::Csv(CsvDialect::default()), part_bytes, 7, b""));
                let mut again = Vec::new();
                for part in &parts {
                    assert_eq!(part.data_start, 0);
                    let mut reader = RecordReader::new(&part.bytes[..]).mid_object();
                    let mut record = Record::default();
                    while reader.read(&mut record).await.unwrap() {
                        again.push((
                            part.offset + record.start(),
                            part.line + record.line() - 1,
                            record.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
                        ));
                    }
                }
                assert_eq!(again, whole);
            });
        }
    }

    #[test]
    fn parts_start_at_records_past_the_size_and_keep_the_header() {
        let data = b"1,a\n2,\"b\nb\"\n\n3,c\n4,d\n";
        let parts = split(data, Walk::Csv(CsvDialect::default()), 5, 3, b"id,v\n");
        let texts: Vec<&[u8]> = parts.iter().map(|p| &p.bytes[..]).collect();
        assert_eq!(
            texts,
            [&b"id,v\n1,a\n2,\"b\nb\"\n\n"[..], &b"id,v\n3,c\n4,d\n"[..]]
        );
        assert_eq!(
            parts
                .iter()
                .map(|p| (p.index, p.offset, p.line, p.data_start))
                .collect::<Vec<_>>(),
            [(0, 0, 1, 5), (1, 13, 5, 5)]
        );
    }

    #[test]
    fn lines_cut_after_newlines_whatever_the_quotes() {
        let data = b"{\"a\":\"\\\"\"}\n{\"b\":1}\n{\"c\":2}";
        let parts = split(data, Walk::Lines, 1, 4, b"");
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].bytes, b"{\"b\":1}\n");
        assert_eq!((parts[2].offset, parts[2].line), (19, 3));
    }

    #[test]
    fn a_record_over_the_cap_is_cut_past_it_and_ends_its_part() {
        let mut data = b"1,a\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100));
        data.extend(b"\n2,b\n3,c\n");
        let mut splitter = Splitter::new(
            Walk::Csv(CsvDialect::default()),
            1 << 20,
            10,
            Vec::new(),
            (0, 0, 1),
        );
        let (taken, part) = splitter.feed(&data);
        let part = part.unwrap();
        assert_eq!(part.bytes, [&b"1,a\n"[..], &[b'x'; 11]].concat());
        assert_eq!(taken, 4 + 101);
        let (_, none) = splitter.feed(&data[taken..]);
        assert!(none.is_none());
        let last = splitter.finish().unwrap();
        assert_eq!(
            (last.offset, last.line, &last.bytes[..]),
            (105, 3, &b"2,b\n3,c\n"[..])
        );
    }

    #[test]
    fn the_header_ends_past_its_terminator_in_any_piece() {
        let mut header = HeaderEnd::new(CsvDialect::default());
        assert_eq!(header.feed(b"\n\"a\nb\""), None);
        assert_eq!(header.feed(b",c\r\n1,2\n"), Some(10));
    }
}
