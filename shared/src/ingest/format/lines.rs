//! Lines over any async byte source, for line-based formats: each with its 1-based line
//! number and byte offsets in the object. A line is never buffered past the cap: past it
//! the rest is consumed without being kept (as [`crate::ingest::csv_stream`] does with an
//! oversized record), so memory stays flat on a multi-GB object with no newline.
//!
//! `\n` ends a line; a `\r` before it is dropped, and so is a UTF-8 BOM on the object's
//! first line. Blank lines (only spaces, tabs or `\r`) are skipped but counted.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use crate::ingest::csv_stream::DEFAULT_MAX_RECORD_BYTES;

const BOM: &[u8] = b"\xef\xbb\xbf";

/// One line's bytes (without its terminator) and where it is.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Line {
    text: Vec<u8>,
    line: u64,
    start: u64,
    end: u64,
    oversized: bool,
}

impl Line {
    /// The line's bytes (empty when oversized).
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// The 1-based line number.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Offset of the line's first byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset just past its terminator.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Longer than the cap (terminator included): its bytes were not kept.
    pub fn is_oversized(&self) -> bool {
        self.oversized
    }

    /// Bytes the line's buffer holds (tests of the cap).
    pub fn buffered_capacity(&self) -> usize {
        self.text.capacity()
    }

    fn is_blank(&self) -> bool {
        !self.oversized && self.text.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r'))
    }
}

pub struct LineReader<R> {
    source: R,
    position: u64,
    /// Lines read so far (blank ones included).
    lines: u64,
    max_line_bytes: usize,
    /// A range's end: no line starting here or later is read (it is the next range's).
    until: Option<u64>,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(source: R) -> Self {
        Self::at_offset(source, 0)
    }

    /// A reader whose first byte is at `offset` of the object, a line start (a resumed
    /// read): offsets are the object's, line numbers count from here.
    pub fn at_offset(source: R, offset: u64) -> Self {
        Self {
            source,
            position: offset,
            lines: 0,
            max_line_bytes: DEFAULT_MAX_RECORD_BYTES,
            until: None,
        }
    }

    /// Reads only the lines that start before `end` (a range's; the last may run past it).
    pub fn until(mut self, end: u64) -> Self {
        self.until = Some(end);
        self
    }

    /// Lines longer than `max` bytes come back oversized instead of buffered.
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.max_line_bytes = max.max(1);
        self
    }

    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// Offset of the next unread byte.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Reads the next non-blank line into `line`; `false` at the end of the input.
    pub async fn read(&mut self, line: &mut Line) -> std::io::Result<bool> {
        loop {
            if !self.read_any(line).await? {
                return Ok(false);
            }
            if !line.is_blank() {
                return Ok(true);
            }
        }
    }

    async fn read_any(&mut self, line: &mut Line) -> std::io::Result<bool> {
        if self.until.is_some_and(|end| self.position >= end) {
            return Ok(false);
        }
        line.text.clear();
        line.oversized = false;
        line.start = self.position;
        line.line = self.lines + 1;
        let mut read_any = false;
        loop {
            let input = self.source.fill_buf().await?;
            if input.is_empty() {
                break;
            }
            read_any = true;
            let (piece, used, ended) = match memchr::memchr(b'\n', input) {
                Some(at) => (&input[..at], at + 1, true),
                None => (input, input.len(), false),
            };
            // Past the cap nothing more is kept: the line is only consumed to its end.
            let wanted = line.text.len() + piece.len();
            if !line.oversized && wanted < self.max_line_bytes {
                // Doubling, but never past the cap: a line just under it holds at most that.
                if wanted > line.text.capacity() {
                    let grown = wanted
                        .max(line.text.capacity() * 2)
                        .min(self.max_line_bytes);
                    line.text.reserve_exact(grown - line.text.len());
                }
                line.text.extend_from_slice(piece);
            } else if !line.oversized {
                line.oversized = true;
                line.text = Vec::new();
            }
            self.source.consume(used);
            self.position += used as u64;
            if ended {
                break;
            }
        }
        if !read_any {
            return Ok(false);
        }
        self.lines += 1;
        line.end = self.position;
        if line.text.last() == Some(&b'\r') {
            line.text.pop();
        }
        if line.start == 0 && line.text.starts_with(BOM) {
            line.text.drain(..BOM.len());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all(input: &[u8], max: usize) -> Vec<Line> {
        let mut reader = LineReader::new(input).with_max_line_bytes(max);
        let mut out = Vec::new();
        let mut line = Line::default();
        while reader.read(&mut line).await.unwrap() {
            out.push(line.clone());
        }
        out
    }

    #[tokio::test]
    async fn lines_keep_numbers_and_offsets_over_blank_lines_crlf_and_a_bom() {
        let lines = all(b"\xef\xbb\xbfa\r\n\r\n  \nbc\nd", 64).await;
        let seen: Vec<(&[u8], u64, u64, u64)> = lines
            .iter()
            .map(|l| (l.text(), l.line(), l.start(), l.end()))
            .collect();
        assert_eq!(
            seen,
            [
                (&b"a"[..], 1, 0, 6),
                (&b"bc"[..], 4, 11, 14),
                (&b"d"[..], 5, 14, 15)
            ]
        );
    }

    #[tokio::test]
    async fn a_line_over_the_cap_is_consumed_unkept_and_the_next_one_is_exact() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nok\n");
        let lines = all(&input, 100).await;
        assert!(lines[0].is_oversized() && lines[0].text().is_empty());
        assert_eq!((lines[0].start(), lines[0].end()), (0, 10_001));
        assert_eq!((lines[1].text(), lines[1].line()), (&b"ok"[..], 2));
    }

    #[tokio::test]
    async fn a_line_just_under_the_cap_is_kept_in_no_more_than_the_cap() {
        let max = 100_000;
        let mut input = vec![b'y'; max - 1];
        input.push(b'\n');
        // Small reads, as a body arrives: growth must not overshoot the cap.
        let source = tokio::io::BufReader::with_capacity(1000, &input[..]);
        let mut reader = LineReader::new(source).with_max_line_bytes(max);
        let mut line = Line::default();
        assert!(reader.read(&mut line).await.unwrap());
        assert!(!line.is_oversized());
        assert_eq!(line.text().len(), max - 1);
        assert!(
            line.buffered_capacity() <= max,
            "{}",
            line.buffered_capacity()
        );
    }
}
