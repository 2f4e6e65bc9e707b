//! Large-object mode: one big CSV read as byte ranges by parallel ranged GETs, every row once.
//!
//! The rule is S3 Select's ScanRange rule: a row belongs to the range that holds its first
//! byte. The coordinator reads the header once and plans ranges over the bytes after it, so
//! every range starts at or after a row boundary it can find: a range reads from one byte
//! before its start, skips to just past the first newline, and takes every row that starts
//! before its end, reading past the end to finish the last one. The next range starts at the
//! same newline, so no row is lost or read twice, whether a boundary falls on `\n`, on
//! `\r\n`, inside a row or at the end of the object.
//!
//! Quoted newlines break that skip: a newline inside a quoted field looks like a row end. A
//! range only trusts its skip when the [`QUOTE_WINDOW`] bytes after it hold no `"` at all
//! (a quoted field around the skip point would have to close with one within a row's length).
//! Otherwise it reads the object from the start with the real parser, which knows where
//! quoted fields begin and end, and takes its rows from there: exact, at the price of
//! reading the bytes before the range. A row longer than the window that crosses a range
//! end with a newline inside quotes could still fool the next range's check; the range that
//! owns that row sees it and rejects it loudly, naming the object and offset.

use std::future::Future;
use std::io::Cursor;

use thiserror::Error;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::contract::messages::RangeTask;
use crate::contract::schema::Schema;
use crate::ingest::csv_stream::{Record, RecordReader};
use crate::ingest::decode::{ObjectDecoder, QUOTE_WINDOW, RowWindow};
use crate::ingest::typing::{HeaderError, RowTyper};

/// Where a ranged read gets its bytes: the object from `offset` to its end.
pub trait ByteSource {
    type Reader: AsyncBufRead + Unpin;
    type Error;
    fn read_from(&self, offset: u64) -> impl Future<Output = Result<Self::Reader, Self::Error>>;
}

#[derive(Debug, Error)]
pub enum RangeOpenError<E> {
    #[error("opening the object failed")]
    Source(#[source] E),
    #[error("reading the object failed")]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    Header(#[from] HeaderError),
}

/// The reader a range decodes from: bytes already looked at, then the rest of the body.
pub type RangeReader<R> = tokio::io::Chain<Cursor<Vec<u8>>, R>;

/// Opens one range for decoding: its rows are exactly the rows whose first byte lies in
/// `[task.start, task.end)`.
pub async fn open_range<S: ByteSource>(
    source: &S,
    task: &RangeTask,
    schema: &Schema,
) -> Result<ObjectDecoder<RangeReader<S::Reader>>, RangeOpenError<S::Error>> {
    let typer = RowTyper::new(schema, &Record::from_fields(&task.header))?;
    let window = RowWindow {
        from: task.start,
        to: task.end,
    };
    let read_error = RangeOpenError::Read;
    // The byte before the start tells whether the start is a row start.
    let before = task.start.saturating_sub(1);
    let mut body = source
        .read_from(before)
        .await
        .map_err(RangeOpenError::Source)?;
    let first_row = match skip_past_newline(&mut body, before)
        .await
        .map_err(read_error)?
    {
        Some(first_row) => first_row,
        // No newline after the start: no row starts in this range.
        None => return Ok(ObjectDecoder::empty(Cursor::new(Vec::new()).chain(body))),
    };
    let ahead = read_ahead(&mut body, QUOTE_WINDOW)
        .await
        .map_err(read_error)?;
    if memchr::memchr(b'"', &ahead).is_none() {
        let reader = RecordReader::at_offset(Cursor::new(ahead).chain(body), first_row);
        return Ok(ObjectDecoder::with_typer(reader, typer, window));
    }
    // Quotes near the start: only a parse from the object's start knows where rows begin.
    drop(body);
    tracing::debug!(
        start = task.start,
        "quotes after the range start; parsing from the object's start"
    );
    let whole = source.read_from(0).await.map_err(RangeOpenError::Source)?;
    let reader = RecordReader::at_offset(Cursor::new(Vec::new()).chain(whole), 0);
    Ok(ObjectDecoder::with_typer(reader, typer, window))
}

/// Consumes bytes through the first `\n`; returns the offset just past it, or `None` at the
/// end of the object.
async fn skip_past_newline<R: AsyncBufRead + Unpin>(
    body: &mut R,
    mut offset: u64,
) -> std::io::Result<Option<u64>> {
    loop {
        let buffer = body.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(None);
        }
        match memchr::memchr(b'\n', buffer) {
            Some(at) => {
                body.consume(at + 1);
                return Ok(Some(offset + at as u64 + 1));
            }
            None => {
                let len = buffer.len();
                body.consume(len);
                offset += len as u64;
            }
        }
    }
}

/// Reads up to `limit` bytes (fewer at the end of the object).
async fn read_ahead<R: AsyncBufRead + Unpin>(
    body: &mut R,
    limit: usize,
) -> std::io::Result<Vec<u8>> {
    let mut ahead = Vec::new();
    (&mut *body)
        .take(limit as u64)
        .read_to_end(&mut ahead)
        .await?;
    Ok(ahead)
}

/// An object held in memory (tests and benchmarks).
pub struct InMemory<'a>(pub &'a [u8]);

impl<'a> ByteSource for InMemory<'a> {
    type Reader = &'a [u8];
    type Error = std::convert::Infallible;

    async fn read_from(&self, offset: u64) -> Result<&'a [u8], Self::Error> {
        let from = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.0.len());
        Ok(&self.0[from..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::{Decoded, decode_all};
    use crate::ingest::typing::TypedRow;
    use crate::plan::ranges::plan_ranges;
    use proptest::prelude::*;

    /// A schema that keeps every column as text, keyed by the first.
    fn text_schema(columns: usize) -> Schema {
        let columns: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
        serde_json::from_value(serde_json::json!({
            "partition_key": [columns[0]],
            "columns": columns.iter().map(|c| serde_json::json!({"name": c, "type": "string"})).collect::<Vec<_>>(),
        }))
        .expect("a valid schema")
    }

    /// What the header record is and where the data after it starts.
    async fn header_of(bytes: &[u8]) -> (Vec<String>, u64) {
        let mut reader = RecordReader::new(bytes);
        let mut record = Record::default();
        assert!(reader.read(&mut record).await.unwrap());
        let names = record
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        (names, record.end())
    }

    /// Every row and reject of every range, in order.
    async fn decode_in_ranges(bytes: &[u8], chunk: u64, schema: &Schema) -> Vec<Decoded> {
        let (header, data_start) = header_of(bytes).await;
        let mut out = Vec::new();
        for (start, end) in plan_ranges(data_start, bytes.len() as u64, chunk) {
            let task = RangeTask {
                key: "big.csv".into(),
                etag: "e".into(),
                start,
                end,
                header: header.clone(),
            };
            let mut decoder = open_range(&InMemory(bytes), &task, schema).await.unwrap();
            while let Some(decoded) = decoder.next().await.unwrap() {
                out.push(decoded);
            }
        }
        out
    }

    fn rows(decoded: Vec<Decoded>) -> (Vec<TypedRow>, usize) {
        let mut rows = Vec::new();
        let mut rejects = 0;
        for d in decoded {
            match d {
                Decoded::Row(row) => rows.push(row),
                Decoded::Reject(_) => rejects += 1,
            }
        }
        (rows, rejects)
    }

    async fn check_every_split(text: &str, columns: usize) {
        let schema = text_schema(columns);
        let whole = decode_all(text.as_bytes(), &schema).await.unwrap();
        for chunk in 1..=text.len() as u64 + 1 {
            let (ranged, rejects) = rows(decode_in_ranges(text.as_bytes(), chunk, &schema).await);
            assert_eq!(ranged, whole.rows, "chunk {chunk} of {text:?}");
            assert_eq!(rejects, whole.rejects.len(), "chunk {chunk} of {text:?}");
        }
    }

    #[tokio::test]
    async fn boundaries_on_newlines_crlf_inside_rows_and_at_the_end() {
        check_every_split("c0,c1\na,1\nb,2\nc,3\n", 2).await;
        check_every_split("c0,c1\r\na,1\r\n\r\nb,2\r\nc,3", 2).await;
        check_every_split("\n\nc0,c1\n\na,1\n\n\nb,2\n", 2).await;
        check_every_split("c0,c1\na,1\nshort\nb,2,extra\nc,3\n", 2).await;
    }

    #[tokio::test]
    async fn quoted_newlines_and_quotes_read_exactly() {
        check_every_split("c0,\"c1\"\na,\"x\ny\nz\"\n\"b\"\"\",2\n\"\n\",3\n", 2).await;
        check_every_split("c0,c1\na,\"1\r\n2\"\r\nb,\"\"\r\n", 2).await;
    }

    #[tokio::test]
    async fn header_only_and_empty_data() {
        let schema = text_schema(2);
        assert!(decode_in_ranges(b"c0,c1\n", 1, &schema).await.is_empty());
        assert!(decode_in_ranges(b"c0,c1", 1, &schema).await.is_empty());
    }

    #[tokio::test]
    async fn a_row_that_could_fool_the_next_range_is_rejected_loudly_by_its_owner() {
        // A quoted field with a newline and then more than the window without a quote: the
        // next range's check cannot see the field around its start.
        let long = "y".repeat(QUOTE_WINDOW + 10);
        let text = format!("c0,c1\na,\"x\n{long}\"\nb,2\n");
        let (header, data_start) = header_of(text.as_bytes()).await;
        let task = RangeTask {
            key: "big.csv".into(),
            etag: "e".into(),
            start: data_start,
            end: data_start + 4,
            header,
        };
        let schema = text_schema(2);
        let mut owner = open_range(&InMemory(text.as_bytes()), &task, &schema)
            .await
            .unwrap();
        match owner.next().await.unwrap() {
            Some(Decoded::Reject(reject)) => {
                assert!(
                    reject.reason.contains("may have split inside it"),
                    "{}",
                    reject.reason
                );
                assert_eq!(reject.byte_offset, Some(data_start));
            }
            other => panic!("expected a reject, got {other:?}"),
        }
        assert!(owner.next().await.unwrap().is_none());
    }

    /// CSV text from fields that may be empty, quoted, and hold commas, quotes and newlines.
    fn csv_text() -> impl Strategy<Value = (String, usize)> {
        let field = prop_oneof![
            4 => "[a-z0-9]{0,6}",
            1 => Just(String::new()),
            2 => "[a-z ,\"\r\n]{0,8}".prop_map(|f| format!("\"{}\"", f.replace('"', "\"\""))),
        ];
        (1usize..4).prop_flat_map(move |columns| {
            let row = prop::collection::vec(field.clone(), columns..=columns + 1)
                .prop_map(|fields| fields.join(","));
            let ending = prop_oneof![Just("\n"), Just("\r\n"), Just("\n\n")];
            let rows = prop::collection::vec((row, ending), 0..12);
            (rows, prop::bool::ANY).prop_map(move |(rows, last_newline)| {
                let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
                let mut text = format!("{}\n", header.join(","));
                for (row, ending) in rows {
                    text.push_str(&row);
                    text.push_str(ending);
                }
                if !last_newline {
                    text.truncate(text.trim_end_matches(['\r', '\n']).len());
                }
                (text, columns)
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The rows of all ranges together are the rows of one whole-object parse, for any
        /// chunk size from one byte to more than the object.
        #[test]
        fn ranges_together_equal_a_whole_parse((text, columns) in csv_text(), chunk_seed in 1u64..10_000) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                let schema = text_schema(columns);
                let whole = decode_all(text.as_bytes(), &schema).await.unwrap();
                let chunk = 1 + chunk_seed % (text.len() as u64 + 2);
                let (ranged, rejects) = rows(decode_in_ranges(text.as_bytes(), chunk, &schema).await);
                prop_assert_eq!(&ranged, &whole.rows, "chunk {}", chunk);
                prop_assert_eq!(rejects, whole.rejects.len(), "chunk {}", chunk);
                Ok(())
            })?;
        }
    }
}
