use super::*;
use crate::contract::messages::RowSpan;
use crate::ingest::csv_stream::DEFAULT_MAX_RECORD_BYTES;
use crate::ingest::decode::{Decoded, RowReject};
use crate::ingest::scan::{compose, scan_bytes_in};
use crate::ingest::typing::TypedRow;
use crate::plan::ranges::plan_ranges;
use proptest::prelude::*;

/// A schema that keeps every column as text, keyed by the first.
fn text_schema(columns: usize) -> Schema {
    text_schema_in(columns, CsvDialect::default())
}

fn text_schema_in(columns: usize, dialect: CsvDialect) -> Schema {
    let columns: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
    let mut schema: Schema = serde_json::from_value(serde_json::json!({
        "partition_key": [columns[0]],
        "columns": columns.iter().map(|c| serde_json::json!({"name": c, "type": "string", "nullable": true})).collect::<Vec<_>>(),
    }))
    .expect("a valid schema");
    schema.csv = dialect;
    schema
}

/// The header record and where the data after it starts (the schema's columns and 0
/// for a headerless dialect, as the coordinator plans them).
async fn header_of(bytes: &[u8]) -> (Vec<String>, u64) {
    header_in(bytes, &text_schema(1)).await
}

async fn header_in(bytes: &[u8], schema: &Schema) -> (Vec<String>, u64) {
    if !schema.csv.header {
        return (crate::ingest::decode::schema_header(schema), 0);
    }
    let mut reader = RecordReader::new(bytes).with_dialect(&schema.csv);
    let mut record = Record::default();
    assert!(reader.read(&mut record).await.unwrap());
    let names = record
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    (names, record.end())
}

/// The ranges between `cuts` (sorted offsets inside the data), each with the row span the
/// composed scans give it: what the coordinator and the scan batches compute.
fn tasks(bytes: &[u8], header: &[String], data_start: u64, cuts: &[u64]) -> Vec<RangeTask> {
    tasks_in(bytes, header, data_start, cuts, &CsvDialect::default())
}

fn tasks_in(
    bytes: &[u8],
    header: &[String],
    data_start: u64,
    cuts: &[u64],
    dialect: &CsvDialect,
) -> Vec<RangeTask> {
    let size = bytes.len() as u64;
    let mut bounds = vec![data_start];
    // A headerless object's first range holds at least a BOM's 3 bytes (the coordinator
    // plans it so): whether they are one is decided inside it.
    let first_cut = if dialect.header { data_start } else { 2 };
    bounds.extend(cuts.iter().copied().filter(|&c| c > first_cut && c < size));
    bounds.push(size);
    bounds.sort_unstable();
    bounds.dedup();
    let ranges: Vec<(u64, u64)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    let scans: Vec<_> = ranges
        .iter()
        .map(|&(start, end)| scan_bytes_in(start, &bytes[start as usize..end as usize], dialect))
        .collect();
    let spans = compose(data_start, size, &scans).unwrap();
    ranges
        .into_iter()
        .zip(spans)
        .map(|((start, end), span)| RangeTask {
            key: "big.csv".into(),
            etag: "e".into(),
            start,
            end,
            header: header.to_vec(),
            rows: Some(span),
            header_end: None,
        })
        .collect()
}

/// Every row and reject of every range, in order.
async fn decode_ranges(
    bytes: &[u8],
    tasks: &[RangeTask],
    schema: &Schema,
    cap: usize,
) -> Vec<Decoded> {
    let mut out = Vec::new();
    for task in tasks {
        let opened = open_range(&InMemory(bytes), task, schema, cap)
            .await
            .unwrap();
        let Some(mut decoder) = opened else { continue };
        while let Some(decoded) = decoder.next().await.unwrap() {
            out.push(decoded);
        }
    }
    out
}

/// Rows, and rejects as what they say (line numbers are relative in ranges).
fn split(decoded: Vec<Decoded>) -> (Vec<TypedRow>, Vec<(String, String)>) {
    let mut rows = Vec::new();
    let mut rejects = Vec::new();
    for d in decoded {
        match d {
            Decoded::Row(row) => rows.push(row),
            Decoded::Reject(reject) => rejects.push(reject_key(&reject)),
        }
    }
    (rows, rejects)
}

fn reject_key(reject: &RowReject) -> (String, String) {
    if reject.reason.contains("record cap") {
        // The length said may run on to the next row in a range cut at the horizon.
        ("over the cap".into(), format!("{:?}", reject.byte_offset))
    } else {
        (reject.reason.clone(), reject.raw.clone())
    }
}

async fn whole(bytes: &[u8], schema: &Schema, cap: usize) -> Vec<Decoded> {
    let mut decoder = ObjectDecoder::open_capped(bytes, schema, cap)
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(decoded) = decoder.next().await.unwrap() {
        out.push(decoded);
    }
    out
}

/// Checks ranged decoding against a whole parse, for the given cut points.
async fn check_cuts(bytes: &[u8], columns: usize, cuts: &[u64], cap: usize) {
    check_cuts_in(bytes, columns, cuts, cap, CsvDialect::default()).await
}

async fn check_cuts_in(
    bytes: &[u8],
    columns: usize,
    cuts: &[u64],
    cap: usize,
    dialect: CsvDialect,
) {
    let schema = text_schema_in(columns, dialect);
    let (header, data_start) = header_in(bytes, &schema).await;
    let tasks = tasks_in(bytes, &header, data_start, cuts, &dialect);
    let ranged = split(decode_ranges(bytes, &tasks, &schema, cap).await);
    let sequential = split(whole(bytes, &schema, cap).await);
    assert_eq!(
        ranged,
        sequential,
        "cuts {cuts:?} of {:?}",
        String::from_utf8_lossy(bytes)
    );
}

async fn check_every_chunk(text: &str, columns: usize) {
    for chunk in 1..=text.len() as u64 + 1 {
        let cuts: Vec<u64> = plan_ranges(0, text.len() as u64, chunk)
            .iter()
            .map(|r| r.0)
            .collect();
        check_cuts(text.as_bytes(), columns, &cuts, DEFAULT_MAX_RECORD_BYTES).await;
    }
}

#[tokio::test]
async fn boundaries_on_newlines_crlf_inside_rows_and_at_the_end() {
    check_every_chunk("c0,c1\na,1\nb,2\nc,3\n", 2).await;
    check_every_chunk("c0,c1\r\na,1\r\n\r\nb,2\r\nc,3", 2).await;
    check_every_chunk("\n\nc0,c1\n\na,1\n\n\nb,2\n", 2).await;
    check_every_chunk("c0,c1\na,1\nshort\nb,2,extra\nc,3\n", 2).await;
}

#[tokio::test]
async fn quoted_newlines_stray_quotes_and_a_bom_inside_read_exactly() {
    check_every_chunk("c0,\"c1\"\na,\"x\ny\nz\"\n\"b\"\"\",2\n\"\n\",3\n", 2).await;
    check_every_chunk("c0,c1\na,\"1\r\n2\"\r\nb,\"\"\r\n", 2).await;
    check_every_chunk("c0,c1\na\"b,\"c\nd\"x,1\n\u{feff}e,\"\"\"\n\"\n", 2).await;
}

#[tokio::test]
async fn a_long_quoted_field_full_of_newlines_crosses_many_ranges() {
    let long = "y\n".repeat(5_000);
    let text = format!("c0,c1\na,\"x\n{long}\"\nb,2\n");
    for chunk in [7, 100, 4096] {
        let cuts: Vec<u64> = plan_ranges(0, text.len() as u64, chunk)
            .iter()
            .map(|r| r.0)
            .collect();
        check_cuts(text.as_bytes(), 2, &cuts, DEFAULT_MAX_RECORD_BYTES).await;
    }
}

#[tokio::test]
async fn header_only_and_empty_data() {
    let schema = text_schema(2);
    for text in [&b"c0,c1\n"[..], b"c0,c1"] {
        let (header, data_start) = header_of(text).await;
        let tasks = tasks(text, &header, data_start, &[]);
        assert!(decode_ranges(text, &tasks, &schema, 64).await.is_empty());
    }
}

#[tokio::test]
async fn a_range_without_a_row_span_is_refused() {
    let text = b"c0,c1\na,1\n";
    let task = RangeTask {
        key: "big.csv".into(),
        etag: "e".into(),
        start: 6,
        end: 10,
        header: vec!["c0".into(), "c1".into()],
        rows: None,
        header_end: None,
    };
    let refused = open_range(&InMemory(text), &task, &text_schema(2), 64).await;
    assert!(matches!(refused, Err(RangeOpenError::Unscanned)));
    let bad = RangeTask {
        rows: Some(RowSpan { first: 2, stop: 10 }),
        ..task
    };
    let refused = open_range(&InMemory(text), &bad, &text_schema(2), 64).await;
    assert!(matches!(refused, Err(RangeOpenError::BadSpan { .. })));
}

#[tokio::test]
async fn an_oversized_row_is_rejected_by_its_range_without_reading_to_its_end() {
    // A record with no newline for 1 MB, then a good row.
    let text = format!("c0,c1\na,{}\nb,2\n", "z".repeat(1_000_000));
    let bytes = text.as_bytes();
    let (header, data_start) = header_of(bytes).await;
    let tasks = tasks(bytes, &header, data_start, &[1000, 2000, 500_000]);
    let schema = text_schema(2);
    let mut first = open_range(&InMemory(bytes), &tasks[0], &schema, 100)
        .await
        .unwrap()
        .unwrap();
    match first.next().await.unwrap() {
        Some(Decoded::Reject(reject)) => {
            assert_eq!(reject.byte_offset, Some(data_start));
            assert!(
                reject.reason.contains("100-byte record cap"),
                "{}",
                reject.reason
            );
            assert!(reject.raw.is_empty());
        }
        other => panic!("expected a reject, got {other:?}"),
    }
    assert!(first.next().await.unwrap().is_none());
    // It stopped at the range end, not at the record's end a megabyte later.
    assert!(first.position() < 1000 + 64 * 1024, "{}", first.position());
    check_cuts(bytes, 2, &[1000, 2000, 500_000], 100).await;
}

/// Bytes rich in what the parser looks at: quotes, doubled quotes, delimiters, CR, LF,
/// CRLF, a BOM, and a few data bytes.
fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "\"", "\"\"", ",", "\r", "\n", "\r\n", "a", "bc", "\u{feff}", "é",
    ]);
    prop::collection::vec(token, 0..120).prop_map(|tokens| tokens.concat().into_bytes())
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

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

/// Records (offset, fields) of a reader, to compare below the typing layer.
async fn records<R: AsyncBufRead + Unpin>(
    mut reader: RecordReader<R>,
) -> Vec<(u64, u64, Vec<Vec<u8>>)> {
    let mut record = Record::default();
    let mut out = Vec::new();
    while reader.read(&mut record).await.unwrap() {
        out.push((
            record.start(),
            record.end(),
            record.iter().map(<[u8]>::to_vec).collect(),
        ));
    }
    out
}

/// A dialect of the common ones: a delimiter of `,` `;` TAB `|`, a quote of `"` `'`, a
/// header or none.
fn dialect() -> impl Strategy<Value = CsvDialect> {
    let delimiter = prop::sample::select(vec![b',', b';', b'\t', b'|']);
    let quote = prop::sample::select(vec![b'"', b'\'']);
    (delimiter, quote, prop::bool::ANY).prop_map(|(delimiter, quote, header)| CsvDialect {
        delimiter,
        quote,
        header,
    })
}

/// Bytes rich in what every dialect above looks at, and in what it does not.
fn dialect_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "\"", "'", "''", ",", ";", "\t", "|", "\r", "\n", "\r\n", "a", "\u{feff}", "é",
    ]);
    prop::collection::vec(token, 0..120).prop_map(|tokens| tokens.concat().into_bytes())
}

#[tokio::test]
async fn semicolon_tab_and_headerless_files_read_exactly_in_every_chunk() {
    let semi = CsvDialect {
        delimiter: b';',
        ..CsvDialect::default()
    };
    let tsv = CsvDialect {
        delimiter: b'\t',
        quote: b'\'',
        header: false,
    };
    let cases = [
        ("c0;c1\na;\"x;\ny\"\nb,c;2\n", semi),
        ("a\t'x\ty\nz'\n'b''\t\"\tc\n\"q\t1\n", tsv),
    ];
    for (text, dialect) in cases {
        for chunk in 1..=text.len() as u64 + 1 {
            let cuts: Vec<u64> = plan_ranges(0, text.len() as u64, chunk)
                .iter()
                .map(|r| r.0)
                .collect();
            check_cuts_in(text.as_bytes(), 2, &cuts, DEFAULT_MAX_RECORD_BYTES, dialect).await;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any dialect, any bytes, with a header or without, cut anywhere: the ranges' rows
    /// and rejects equal a whole parse's in the same dialect.
    #[test]
    fn any_dialect_ranged_rows_and_rejects_equal_a_whole_parse(
        data in dialect_bytes(),
        dialect in dialect(),
        columns in 1usize..4,
        cuts in prop::collection::vec(0u64..400, 0..8),
        cap in prop_oneof![Just(DEFAULT_MAX_RECORD_BYTES), 20usize..60],
    ) {
        let mut bytes = Vec::new();
        if dialect.header {
            let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
            bytes = format!("{}\n", header.join(&(dialect.delimiter as char).to_string())).into_bytes();
        }
        bytes.extend_from_slice(&data);
        block_on(check_cuts_in(&bytes, columns, &cuts, cap, dialect));
    }

    /// Any bytes after a header, cut anywhere: the records the ranges read from their
    /// spans, concatenated, are the records of one sequential parse, each once, with the
    /// same offsets and fields.
    #[test]
    fn ranged_records_equal_a_sequential_parse(data in csv_bytes(), cuts in prop::collection::vec(0u64..400, 0..8)) {
        let mut bytes = b"h\n".to_vec();
        bytes.extend_from_slice(&data);
        let mut cuts: Vec<u64> = cuts.into_iter().map(|c| c % (bytes.len() as u64 + 1)).collect();
        cuts.sort_unstable();
        block_on(async {
            let (header, data_start) = header_of(&bytes).await;
            let mut sequential = records(RecordReader::new(&bytes[..])).await;
            sequential.remove(0); // the header
            let mut ranged = Vec::new();
            for task in tasks(&bytes, &header, data_start, &cuts) {
                let span = task.rows.unwrap();
                let part = &bytes[span.first as usize..span.stop as usize];
                let reader = RecordReader::at_offset(part, span.first).mid_object();
                let got = records(reader).await;
                for (start, _, _) in &got {
                    prop_assert!(task.start <= *start && *start < task.end, "{start} outside {task:?}");
                }
                ranged.extend(got);
            }
            prop_assert_eq!(ranged, sequential, "cuts {:?}", cuts);
            Ok(())
        })?;
    }

    /// The same through the decoder the worker runs (typing, rejects, the record cap).
    #[test]
    fn ranged_rows_and_rejects_equal_a_whole_parse(
        data in csv_bytes(),
        columns in 1usize..4,
        cuts in prop::collection::vec(0u64..400, 0..8),
        cap in prop_oneof![Just(DEFAULT_MAX_RECORD_BYTES), 20usize..60],
    ) {
        let header: Vec<String> = (0..columns).map(|i| format!("c{i}")).collect();
        let mut bytes = format!("{}\n", header.join(",")).into_bytes();
        bytes.extend_from_slice(&data);
        block_on(check_cuts(&bytes, columns, &cuts, cap));
    }

    /// Realistic CSV in ranges of any size, from one byte to more than the object.
    #[test]
    fn ranges_together_equal_a_whole_parse((text, columns) in csv_text(), chunk_seed in 1u64..10_000) {
        let chunk = 1 + chunk_seed % (text.len() as u64 + 2);
        let cuts: Vec<u64> = plan_ranges(0, text.len() as u64, chunk).iter().map(|r| r.0).collect();
        block_on(check_cuts(text.as_bytes(), columns, &cuts, DEFAULT_MAX_RECORD_BYTES));
    }
}
