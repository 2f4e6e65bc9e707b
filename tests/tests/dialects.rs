//! CSV dialects against real local servers (s3s-fs, dynalite): a `;`-separated prefix and a
//! headerless, `'`-quoted TSV prefix each load every row once, a small object whole and a
//! big one split into ranges (scans in the dialect, composed, parsed), with notes full of
//! the dialect's delimiter, quote and newlines.

use devkit::provision::ensure_table;
use integration_tests::{TestEnv, default_servers};
use shared::contract::dialect::CsvDialect;
use shared::contract::messages::JobRequest;
use shared::contract::schema::Schema;
use shared::job::model::JobStatus;

const RANGE: u64 = 64 << 10;

/// `rows` notes in `dialect` (a header only if it has one), and the (id, note) expected.
fn notes(name: &str, rows: usize, dialect: &CsvDialect) -> (String, Vec<(String, String)>) {
    let (d, q) = (dialect.delimiter as char, dialect.quote as char);
    let mut text = match dialect.header {
        true => format!("id{d}note\n"),
        false => String::new(),
    };
    let mut expected = Vec::new();
    for i in 0..rows {
        let note = match i % 3 {
            0 => format!("one{d} two {q}quoted{q}\r\nthree, \"four\"\t{i}"),
            1 => format!("plain {i}"),
            _ => format!("{}end", "x\n".repeat(5 + i % 7)),
        };
        let field = match note.contains([d, q, '\n', '\r']) {
            true => format!("{q}{}{q}", note.replace(q, &format!("{q}{q}"))),
            false => note.clone(),
        };
        let id = format!("{name}-{i:05}");
        text.push_str(&format!("{id}{d}{field}"));
        text.push_str(if i % 2 == 1 { "\r\n" } else { "\n" });
        expected.push((id, note));
    }
    (text, expected)
}

/// Loads a small and a split object of `dialect` under `prefix` and checks every row.
async fn loads_whole_and_split(test: &str, dialect: CsvDialect) {
    let env = TestEnv::new(default_servers(), test).await;
    let table = format!("{}-notes", env.resources.bucket);
    ensure_table(&env.clients.dynamodb, &table, "id", None)
        .await
        .unwrap();
    let mut schema: Schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string"},
        ],
    }))
    .unwrap();
    schema.csv = dialect;
    let (small, mut expected) = notes("small", 50, &dialect);
    let (big, big_rows) = notes("big", 6_000, &dialect);
    assert!(big.len() as u64 > 3 * RANGE, "{} bytes", big.len());
    env.put("in/small.csv", &small).await;
    env.put("in/big.csv", &big).await;
    expected.extend(big_rows);

    let mut pipeline = env.pipeline();
    pipeline.coordinator.range_chunk_bytes = RANGE;
    pipeline.records_table(&table);
    let request = JobRequest {
        schema: Some(schema),
        ..JobRequest::new(&env.resources.bucket, "in/")
    };
    let job = pipeline.run(request, |_| {}).await.unwrap();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let ranges = (big.len() as u64).div_ceil(RANGE);
    assert_eq!(
        job.total_batches,
        1 + 2 * ranges,
        "one key batch, a scan and a parse per range"
    );
    assert_eq!(job.totals.rows_written, expected.len() as u64);
    assert_eq!(job.totals.rows_rejected, 0);
    assert_eq!(job.totals.rows_duplicate, 0, "no row read by two ranges");
    let input = (small.len() + big.len()) as u64;
    // The workers read the small file once and the big one twice; planning read the big
    // one's header window, if it has a header.
    let planning = job.planning_bytes_read;
    assert!(planning <= 64 << 10, "{planning}");
    assert!(
        job.totals.bytes_read - planning <= small.len() as u64 + 2 * big.len() as u64,
        "{} bytes read of {input}",
        job.totals.bytes_read
    );
    assert_eq!(env.count_items(&table).await, expected.len() as u64);
    let spot: Vec<_> = expected.iter().step_by(97).collect();
    env.assert_notes(&table, spot).await;
    env.assert_notes(&table, expected.last()).await;
}

#[tokio::test]
async fn a_semicolon_prefix_loads_whole_and_split() {
    let dialect = CsvDialect {
        delimiter: b';',
        ..CsvDialect::default()
    };
    loads_whole_and_split("dialect-semi", dialect).await;
}

#[tokio::test]
async fn a_headerless_quote_tsv_prefix_loads_whole_and_split() {
    let dialect = CsvDialect {
        delimiter: b'\t',
        quote: b'\'',
        header: false,
    };
    loads_whole_and_split("dialect-tsv", dialect).await;
}
