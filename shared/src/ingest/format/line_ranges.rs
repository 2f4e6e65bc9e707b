//! JSON Lines in byte ranges, exactly and linearly. A line is a record (valid JSON text holds
//! no raw newline), so no scan is needed: a line starts at byte 0 or just after a `\n`, and a
//! range `first..stop` owns the lines starting in it (S3 Select's ScanRange rule, as CSV's
//! ranges). Its reader starts one byte early (is byte `first - 1` a `\n`?), skips to just
//! past the first `\n` (the previous range's last line), and reads lines until one starts at
//! `stop` or later; the last may run past `stop`, and is read to its end. Bytes read per
//! range: its length, plus one, plus the rest of its last line.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::jsonl::JsonLinesDecoder;
use crate::contract::messages::RowSpan;
use crate::contract::schema::Schema;
use crate::ingest::decode::DecodeError;
use crate::ingest::range_read::ByteSource;

#[derive(Debug, thiserror::Error)]
pub enum LinesOpenError<E> {
    #[error("opening the object failed")]
    Source(#[source] E),
    #[error("reading the object failed")]
    Read(#[source] std::io::Error),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A range's lines: those starting in `span.first..span.stop` (`first` need not be a line
/// start). `None`: no line starts in it. One GET of `first - 1 .. stop + max_record_bytes + 1`:
/// the last line may end past `stop`, and one longer than the cap is rejected whatever its
/// end (the client reads only to its end; the rest of the window is never read).
pub async fn open_lines_range<S: ByteSource>(
    source: &S,
    span: RowSpan,
    schema: &Schema,
    max_record_bytes: usize,
) -> Result<Option<(u64, JsonLinesDecoder<S::Reader>)>, LinesOpenError<S::Error>> {
    if span.first >= span.stop {
        return Ok(None);
    }
    let from = span.first.saturating_sub(1);
    let to = span.stop.saturating_add(max_record_bytes as u64 + 1);
    let mut body = source
        .read(from, to)
        .await
        .map_err(LinesOpenError::Source)?;
    let first = match span.first {
        0 => 0,
        // A line starts in the range after a `\n` at `first - 1 ..= stop - 2`.
        _ => match skip_past_newline(&mut body, span.stop - 1 - from).await {
            Ok(Some(skipped)) => from + skipped,
            Ok(None) => return Ok(None),
            Err(error) => return Err(LinesOpenError::Read(error)),
        },
    };
    let decoder =
        JsonLinesDecoder::open_at(body, first, schema, max_record_bytes)?.until(span.stop);
    Ok(Some((from, decoder)))
}

/// Consumes bytes through the first `\n` among the next `within`; how many, `None` if none.
async fn skip_past_newline<R: AsyncBufRead + Unpin>(
    body: &mut R,
    within: u64,
) -> std::io::Result<Option<u64>> {
    let mut consumed = 0;
    while consumed < within {
        let buffer = body.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(None);
        }
        let left = usize::try_from(within - consumed).unwrap_or(usize::MAX);
        let window = &buffer[..buffer.len().min(left)];
        if let Some(at) = memchr::memchr(b'\n', window) {
            body.consume(at + 1);
            return Ok(Some(consumed + at as u64 + 1));
        }
        let taken = window.len();
        body.consume(taken);
        consumed += taken as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::decode::Decoded;
    use crate::ingest::range_read::InMemory;
    use crate::plan::ranges::plan_ranges;
    use proptest::prelude::*;

    fn schema() -> Schema {
        serde_json::from_value(serde_json::json!({
            "partition_key": ["id"],
            "columns": [
                {"name": "id", "type": "string"},
                {"name": "n", "type": "number", "nullable": true},
            ],
        }))
        .unwrap()
    }

    /// Rows as (offset, item) and rejects as (offset, reason, raw): line numbers count from
    /// a range's first line, offsets are the object's.
    type Seen = (u64, String);

    fn seen(decoded: Decoded) -> Seen {
        match decoded {
            Decoded::Row(row) => {
                let sorted: std::collections::BTreeMap<_, _> = row.item.iter().collect();
                (row.offset, format!("{sorted:?}"))
            }
            // A line over the cap is cut at the window's end in a range: its length differs.
            Decoded::Reject(r) if r.reason.contains("record cap") => {
                (r.byte_offset.unwrap_or(u64::MAX), "over the cap".into())
            }
            Decoded::Reject(r) => (
                r.byte_offset.unwrap_or(u64::MAX),
                format!("{}|{}", r.reason, r.raw),
            ),
        }
    }

    async fn whole(bytes: &[u8], cap: usize) -> Vec<Seen> {
        let mut decoder = JsonLinesDecoder::open_capped(bytes, &schema(), cap).unwrap();
        let mut out = Vec::new();
        while let Some(d) = decoder.next().await.unwrap() {
            out.push(seen(d));
        }
        out
    }

    /// Every range's lines in order, and the bytes each read.
    async fn ranged(bytes: &[u8], cuts: &[u64], cap: usize) -> (Vec<Seen>, Vec<u64>) {
        let size = bytes.len() as u64;
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < size));
        bounds.push(size);
        bounds.sort_unstable();
        bounds.dedup();
        let (mut out, mut read) = (Vec::new(), Vec::new());
        for w in bounds.windows(2) {
            let span = RowSpan {
                first: w[0],
                stop: w[1],
            };
            let opened = open_lines_range(&InMemory(bytes), span, &schema(), cap)
                .await
                .unwrap();
            let Some((from, mut decoder)) = opened else {
                continue;
            };
            while let Some(d) = decoder.next().await.unwrap() {
                let s = seen(d);
                assert!(
                    (w[0]..w[1]).contains(&s.0) || s.0 == u64::MAX,
                    "{s:?} outside {w:?}"
                );
                out.push(s);
            }
            read.push(decoder.position() - from);
        }
        (out, read)
    }

    #[tokio::test]
    async fn ranges_own_the_lines_that_start_in_them_whatever_the_cut() {
        let text = "{\"id\":\"a\",\"n\":1}\n\n{\"id\":\"b\"}\r\nnot json\n  \n{\"id\":\"c\",\"n\":\"x\"}\n{\"id\":\"d\"}";
        let bytes = text.as_bytes();
        let sequential = whole(bytes, 1 << 20).await;
        assert_eq!(sequential.len(), 5);
        for chunk in 1..=bytes.len() as u64 + 1 {
            let cuts: Vec<u64> = plan_ranges(0, bytes.len() as u64, chunk)
                .iter()
                .map(|r| r.0)
                .collect();
            let (got, read) = ranged(bytes, &cuts, 1 << 20).await;
            assert_eq!(got, sequential, "chunk {chunk}");
            // Each range reads its bytes, one before them and the rest of its last line.
            let total: u64 = read.iter().sum();
            assert!(
                total <= 2 * bytes.len() as u64 + cuts.len() as u64,
                "{total}"
            );
        }
    }

    #[tokio::test]
    async fn a_range_inside_one_long_line_reads_nothing_of_it_but_its_own_bytes() {
        let long = format!("{{\"id\":\"{}\"}}\n{{\"id\":\"z\"}}\n", "y".repeat(10_000));
        let span = RowSpan {
            first: 100,
            stop: 200,
        };
        let opened = open_lines_range(&InMemory(long.as_bytes()), span, &schema(), 1 << 20)
            .await
            .unwrap();
        assert!(opened.is_none(), "no line starts in 100..200");
        // The range holding the long line's end owns the next line.
        let end = 10_009;
        let span = RowSpan {
            first: end - 5,
            stop: long.len() as u64,
        };
        let (_, mut decoder) = open_lines_range(&InMemory(long.as_bytes()), span, &schema(), 64)
            .await
            .unwrap()
            .unwrap();
        let Some(Decoded::Row(row)) = decoder.next().await.unwrap() else {
            panic!("the line after the long one");
        };
        assert_eq!(row.offset, end + 1);
    }

    fn jsonl_bytes() -> impl Strategy<Value = Vec<u8>> {
        let token = prop::sample::select(vec![
            "{\"id\":\"a\"}",
            "{\"id\":\"b\",\"n\":2}",
            "{\"n\":3}",
            "[1]",
            "{bad",
            "\n",
            "\r\n",
            "\n\n",
            " ",
            "\u{feff}",
            "é",
        ]);
        prop::collection::vec(token, 0..60).prop_map(|t| t.concat().into_bytes())
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any lines cut anywhere: the rows and rejects of every range, in order, are a
        /// sequential read's, each once; each range reads at most its bytes, one more, and
        /// the rest of its last line.
        #[test]
        fn ranged_lines_equal_a_sequential_read(
            bytes in jsonl_bytes(),
            cuts in prop::collection::vec(0u64..600, 0..10),
            cap in prop_oneof![Just(1usize << 20), 8usize..40],
        ) {
            block_on(async {
                let sequential = whole(&bytes, cap).await;
                let (got, read) = ranged(&bytes, &cuts, cap).await;
                prop_assert_eq!(got, sequential);
                let bound = 2 * bytes.len() as u64 + 1 + cuts.len() as u64;
                prop_assert!(read.iter().sum::<u64>() <= bound);
                Ok(())
            })?;
        }
    }
}
