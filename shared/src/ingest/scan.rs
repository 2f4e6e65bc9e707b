//! Where rows begin inside any byte range of a CSV object, without reading the bytes before it.
//!
//! The record reader ([`crate::ingest::csv_stream`]) runs `csv-core`'s DFA with the job's
//! dialect ([`CsvDialect`]: `,` or another byte between fields, `"` or another byte quoting
//! with doubled quotes inside), records ending at `\n`, no escapes, no comments. For where
//! records start, only five of its states matter ([`ParseState`]) and only four classes of
//! bytes (the quote, the delimiter, `\n`, anything else), whichever bytes the dialect picks. A range
//! scanned alone does not know which state the parser is in at its first byte, so the scan
//! runs from every state at once and records, per start state, the state at the range's end
//! and the offset of the first record that starts inside it ([`RangeScan`]). Runs that reach
//! the same state share their future, so they merge; on real data all five usually merge
//! within a few fields and the scan goes on as a single run.
//!
//! Composing the scans in order ([`compose`], ParPaRaw's prefix sum of transition functions)
//! gives every range's true start state, hence the exact offset of its first row and of the
//! first row after it: a fresh parser started there reads exactly the rows a sequential parse
//! of the whole object reads ([`crate::ingest::range_read`]). Proved against the real reader by
//! the property tests in `ranges.rs`.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::contract::dialect::CsvDialect;
use crate::contract::messages::RowSpan;

const NEWLINE: u8 = b'\n';

/// The parser's state between two bytes, as far as record boundaries are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParseState {
    /// Between records: a `\n` here is a blank line, any other byte starts a record.
    RecordStart,
    /// Just after a delimiter: a `"` opens a quoted field.
    FieldStart,
    /// Inside an unquoted field: a `"` is data.
    Unquoted,
    /// Inside a quoted field: only a `"` matters.
    Quoted,
    /// A `"` inside a quoted field: it closed the field, or doubles with the next byte.
    QuoteInQuoted,
}

impl ParseState {
    pub const ALL: [ParseState; 5] = [
        ParseState::RecordStart,
        ParseState::FieldStart,
        ParseState::Unquoted,
        ParseState::Quoted,
        ParseState::QuoteInQuoted,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Quote,
    Delimiter,
    Newline,
    Other,
}

fn class_of(byte: u8, dialect: &CsvDialect) -> Class {
    match byte {
        NEWLINE => Class::Newline,
        _ if byte == dialect.quote => Class::Quote,
        _ if byte == dialect.delimiter => Class::Delimiter,
        _ => Class::Other,
    }
}

/// `csv-core`'s transitions (`transition_nfa` with the epsilon states folded in).
fn step(state: ParseState, class: Class) -> ParseState {
    use Class::*;
    use ParseState::*;
    match (state, class) {
        (Quoted, Quote) => QuoteInQuoted,
        (Quoted, _) => Quoted,
        (QuoteInQuoted, Quote) => Quoted,
        (RecordStart | FieldStart, Quote) => Quoted,
        (Unquoted, Quote) => Unquoted,
        (_, Delimiter) => FieldStart,
        (_, Newline) => RecordStart,
        (_, Other) => Unquoted,
    }
}

/// The state after `byte` from `state`, in `dialect`: one step of a sequential walk (the
/// inflate step's record boundaries, [`crate::ingest::inflate`]).
pub fn next_state(state: ParseState, byte: u8, dialect: &CsvDialect) -> ParseState {
    step(state, class_of(byte, dialect))
}

/// One start state's run through a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRun {
    pub from: ParseState,
    pub to: ParseState,
    /// The first record starting in the range, if any.
    pub first_row: Option<u64>,
}

/// What a range's bytes do to the parser, from every state it may start in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeScan {
    pub start: u64,
    pub end: u64,
    pub runs: Vec<StateRun>,
}

impl RangeScan {
    pub fn run(&self, from: ParseState) -> Option<&StateRun> {
        self.runs.iter().find(|run| run.from == from)
    }
}

/// Start states following the same run: bit `i` is `ParseState::ALL[i]`.
#[derive(Debug, Clone, Copy)]
struct Track {
    state: ParseState,
    members: u8,
    /// Members whose first record start is not found yet.
    waiting: u8,
}

/// Scans a range fed in pieces, from every start state at once.
#[derive(Debug, Clone)]
pub struct Scanner {
    dialect: CsvDialect,
    start: u64,
    /// Offset of the next byte fed.
    offset: u64,
    tracks: Vec<Track>,
    first_row: [Option<u64>; 5],
    /// At a headerless object's byte 0: how much of a UTF-8 BOM has been seen (the reader
    /// consumes one there outside any record, [`RecordReader::skip_bom`]); `None` past it.
    ///
    /// [`RecordReader::skip_bom`]: crate::ingest::csv_stream::RecordReader::skip_bom
    bom: Option<usize>,
}

const BOM: &[u8] = b"\xef\xbb\xbf";

impl Scanner {
    /// A scan of the range starting at `start`, in the default dialect.
    pub fn new(start: u64) -> Self {
        Self::with_dialect(start, &CsvDialect::default())
    }

    /// A scan of the range starting at `start` of an object in `dialect` (a headerless
    /// object's first range skips a BOM at byte 0, as its reader does; the range must hold
    /// at least 3 bytes, or the object end, for the scan to tell a BOM from data).
    pub fn with_dialect(start: u64, dialect: &CsvDialect) -> Self {
        let tracks = (0..ParseState::ALL.len())
            .map(|i| Track {
                state: ParseState::ALL[i],
                members: 1 << i,
                waiting: 1 << i,
            })
            .collect();
        Self {
            dialect: *dialect,
            start,
            offset: start,
            tracks,
            first_row: [None; 5],
            bom: (start == 0 && !dialect.header).then_some(0),
        }
    }

    /// The next bytes of the range. Only the quote, the delimiter and `\n` are looked at one
    /// by one (found with `memchr3`); a run of other bytes is one transition (applying it
    /// twice changes nothing).
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let (Some(seen), Some(&byte)) = (self.bom, bytes.first()) {
            if byte != BOM[seen] {
                self.not_a_bom(seen);
                break;
            }
            self.offset += 1;
            bytes = &bytes[1..];
            self.bom = (seen + 1 < BOM.len()).then_some(seen + 1);
        }
        let mut gap = 0;
        let CsvDialect {
            quote, delimiter, ..
        } = self.dialect;
        for at in memchr::memchr3_iter(quote, delimiter, NEWLINE, bytes) {
            if at > gap {
                self.apply(Class::Other, gap);
            }
            self.apply(class_of(bytes[at], &self.dialect), at);
            gap = at + 1;
        }
        if bytes.len() > gap {
            self.apply(Class::Other, gap);
        }
        self.offset += bytes.len() as u64;
    }

    /// The first `seen` bytes looked like a BOM but are data after all: plain bytes at 0.
    fn not_a_bom(&mut self, seen: usize) {
        self.bom = None;
        if seen > 0 {
            let offset = self.offset;
            self.offset = 0;
            self.apply(Class::Other, 0);
            self.offset = offset;
        }
    }

    fn apply(&mut self, class: Class, at: usize) {
        if let [track] = self.tracks.as_mut_slice()
            && track.waiting == 0
        {
            // One run left, every first row known: only the end state is still wanted.
            track.state = step(track.state, class);
            return;
        }
        let position = self.offset + at as u64;
        for track in &mut self.tracks {
            if track.waiting != 0
                && track.state == ParseState::RecordStart
                && class != Class::Newline
            {
                for (i, first) in self.first_row.iter_mut().enumerate() {
                    if track.waiting & (1 << i) != 0 {
                        *first = Some(position);
                    }
                }
                track.waiting = 0;
            }
            track.state = step(track.state, class);
        }
        self.merge();
    }

    /// Runs in the same state share their future: keep one.
    fn merge(&mut self) {
        let mut i = 0;
        while i < self.tracks.len() {
            let mut j = i + 1;
            while j < self.tracks.len() {
                if self.tracks[j].state == self.tracks[i].state {
                    let gone = self.tracks.swap_remove(j);
                    self.tracks[i].members |= gone.members;
                    self.tracks[i].waiting |= gone.waiting;
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
    }

    pub fn finish(mut self) -> RangeScan {
        if let Some(seen) = self.bom {
            self.not_a_bom(seen);
        }
        let runs = ParseState::ALL
            .iter()
            .enumerate()
            .map(|(i, &from)| {
                let track = self
                    .tracks
                    .iter()
                    .find(|t| t.members & (1 << i) != 0)
                    .expect("every start state follows exactly one track");
                StateRun {
                    from,
                    to: track.state,
                    first_row: self.first_row[i],
                }
            })
            .collect();
        RangeScan {
            start: self.start,
            end: self.offset,
            runs,
        }
    }
}

/// The scan of `bytes`, which start at offset `start` of the object (default dialect).
pub fn scan_bytes(start: u64, bytes: &[u8]) -> RangeScan {
    scan_bytes_in(start, bytes, &CsvDialect::default())
}

/// The scan of `bytes` of an object in `dialect`, starting at offset `start`.
pub fn scan_bytes_in(start: u64, bytes: &[u8], dialect: &CsvDialect) -> RangeScan {
    let mut scanner = Scanner::with_dialect(start, dialect);
    scanner.feed(bytes);
    scanner.finish()
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ComposeError {
    #[error(
        "the scans do not tile the object: expected one starting at byte {expected}, got {got}"
    )]
    Gap { expected: u64, got: u64 },
    #[error("the scans end at byte {got}, not at the object's end {size}")]
    Short { got: u64, size: u64 },
    #[error("the scan of bytes {start}..{end} lacks the run from {from:?}")]
    Malformed {
        start: u64,
        end: u64,
        from: ParseState,
    },
}

/// Composes the scans of consecutive ranges tiling `data_start..size` (the parser is between
/// records at `data_start`, just past the header): for each range, the rows it owns, i.e.
/// those starting in it, as the span from its first row to the first row after it. Linear in
/// the number of ranges.
pub fn compose(
    data_start: u64,
    size: u64,
    scans: &[RangeScan],
) -> Result<Vec<RowSpan>, ComposeError> {
    let mut state = ParseState::RecordStart;
    let mut expected = data_start;
    let mut firsts = Vec::with_capacity(scans.len());
    for scan in scans {
        if scan.start != expected {
            return Err(ComposeError::Gap {
                expected,
                got: scan.start,
            });
        }
        let run = scan.run(state).ok_or(ComposeError::Malformed {
            start: scan.start,
            end: scan.end,
            from: state,
        })?;
        firsts.push(run.first_row);
        state = run.to;
        expected = scan.end;
    }
    if expected != size {
        return Err(ComposeError::Short {
            got: expected,
            size,
        });
    }
    let mut spans = vec![RowSpan { first: 0, stop: 0 }; firsts.len()];
    let mut next = size;
    for (span, first) in spans.iter_mut().zip(&firsts).rev() {
        *span = RowSpan {
            first: first.unwrap_or(next),
            stop: next,
        };
        next = first.unwrap_or(next);
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Record starts by running the transitions byte by byte from one state.
    fn starts_from(state: ParseState, bytes: &[u8], base: u64) -> (ParseState, Vec<u64>) {
        starts_in(state, bytes, base, &CsvDialect::default())
    }

    fn starts_in(
        state: ParseState,
        bytes: &[u8],
        base: u64,
        dialect: &CsvDialect,
    ) -> (ParseState, Vec<u64>) {
        let mut state = state;
        let mut starts = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            let class = class_of(b, dialect);
            if state == ParseState::RecordStart && class != Class::Newline {
                starts.push(base + i as u64);
            }
            state = step(state, class);
        }
        (state, starts)
    }

    #[test]
    fn each_run_matches_a_byte_by_byte_walk_even_fed_in_pieces() {
        let text = b"a,\"x\ny\"\"z\",b\r\n\n\"\"\"\",c\"d\n,\n\"open";
        for split in 0..=text.len() {
            let mut scanner = Scanner::new(100);
            scanner.feed(&text[..split]);
            scanner.feed(&text[split..]);
            let scan = scanner.finish();
            assert_eq!(scan, scan_bytes(100, text));
            assert_eq!((scan.start, scan.end), (100, 100 + text.len() as u64));
            for from in ParseState::ALL {
                let (to, starts) = starts_from(from, text, 100);
                let run = scan.run(from).unwrap();
                assert_eq!(run.to, to, "from {from:?}");
                assert_eq!(run.first_row, starts.first().copied(), "from {from:?}");
            }
        }
    }

    #[test]
    fn another_dialect_classes_its_own_delimiter_and_quote_and_not_the_default_ones() {
        let dialect = CsvDialect {
            delimiter: b'\t',
            quote: b'\'',
            header: false,
        };
        // `"` and `,` are data here; `'` quotes a newline, and a tab separates.
        let text = b"a\t'x\ny''z'\t\"b\n,\"\n'\t\n";
        for split in 0..=text.len() {
            let mut scanner = Scanner::with_dialect(7, &dialect);
            scanner.feed(&text[..split]);
            scanner.feed(&text[split..]);
            let scan = scanner.finish();
            assert_eq!(scan, scan_bytes_in(7, text, &dialect));
            for from in ParseState::ALL {
                let (to, starts) = starts_in(from, text, 7, &dialect);
                let run = scan.run(from).unwrap();
                assert_eq!((run.to, run.first_row), (to, starts.first().copied()));
            }
        }
        // From a record start: the quoted newline is data, `"b\n` ends the first record,
        // `,"\n` is one whose `"` opens nothing (not this dialect's quote), and the last
        // opens a quote that never closes.
        let (_, starts) = starts_in(ParseState::RecordStart, text, 0, &dialect);
        assert_eq!(starts, vec![0, 14, 17]);
        let (_, default_starts) = starts_from(ParseState::RecordStart, text, 0);
        assert_ne!(starts, default_starts);
    }

    #[test]
    fn runs_that_never_merge_are_all_kept() {
        // Only quotes: the quoted and unquoted readings alternate for ever.
        let scan = scan_bytes(0, &[b'"'; 1001]);
        assert_eq!(
            scan.run(ParseState::RecordStart).unwrap().to,
            ParseState::Quoted
        );
        assert_eq!(
            scan.run(ParseState::Quoted).unwrap().to,
            ParseState::QuoteInQuoted
        );
        assert_eq!(
            scan.run(ParseState::Unquoted).unwrap().to,
            ParseState::Unquoted
        );
    }

    #[test]
    fn compose_chains_states_and_finds_the_next_row_start() {
        // Ranges: [0,4) "a,\"x", [4,8) "\ny\"\n", [8,10) "zz", [10,12) "\n\n"
        let text = b"a,\"x\ny\"\nzz\n\n";
        let cuts = [0usize, 4, 8, 10, 12];
        let scans: Vec<RangeScan> = cuts
            .windows(2)
            .map(|w| scan_bytes(w[0] as u64, &text[w[0]..w[1]]))
            .collect();
        let spans = compose(0, 12, &scans).unwrap();
        assert_eq!(
            spans,
            vec![
                RowSpan { first: 0, stop: 8 },
                RowSpan { first: 8, stop: 8 },
                RowSpan { first: 8, stop: 12 },
                RowSpan {
                    first: 12,
                    stop: 12
                },
            ]
        );
        assert_eq!(
            compose(1, 12, &scans),
            Err(ComposeError::Gap {
                expected: 1,
                got: 0
            })
        );
        assert_eq!(
            compose(0, 13, &scans),
            Err(ComposeError::Short { got: 12, size: 13 })
        );
    }
}
