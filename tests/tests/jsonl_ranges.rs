//! A big JSON Lines object split by lines against real local servers (s3s-fs, dynalite): a
//! few MB in 64 KiB ranges, no scan phase, every line loaded once, each bad line rejected
//! alone with its byte offset, and about the object's bytes read once.

use devkit::provision::ensure_table;
use integration_tests::{TestEnv, default_servers};
use shared::contract::messages::JobRequest;
use shared::contract::schema::Schema;
use shared::job::model::JobStatus;

const RANGE: u64 = 64 << 10;

#[tokio::test]
async fn a_3_mb_jsonl_object_in_64_kib_ranges_loads_every_line_once() {
    let env = TestEnv::new(default_servers(), "jsonl-ranges").await;
    let table = format!("{}-notes", env.resources.bucket);
    ensure_table(&env.clients.dynamodb, &table, "id", None)
        .await
        .unwrap();
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string"},
        ],
    }))
    .unwrap();
    // Lines of ~300 bytes, escaped newlines and quotes inside strings, CRLF every other
    // line; every 997th line is broken JSON.
    let (mut body, mut good, mut bad_offsets) = (String::new(), Vec::new(), Vec::new());
    for i in 0..11_000 {
        let offset = body.len() as u64;
        if i % 997 == 0 {
            body.push_str(&format!("{{\"id\": \"broken-{i}\", \"note\": \n"));
            bad_offsets.push(offset);
            continue;
        }
        let id = format!("row-{i:05}");
        let note = format!("line one\nline \"two\" é {i} {}", "p".repeat(220 + i % 90));
        let line = serde_json::json!({"id": id, "note": note}).to_string();
        body.push_str(&line);
        body.push_str(if i % 2 == 0 { "\n" } else { "\r\n" });
        good.push((id, note));
    }
    let size = body.len() as u64;
    assert!(size > 3_000_000, "{size} bytes");
    env.put("big/lines.jsonl", &body).await;

    let mut pipeline = env.pipeline();
    pipeline.coordinator.range_chunk_bytes = RANGE;
    pipeline.records_table(&table);
    pipeline.pollers = 4;
    let request = JobRequest {
        key: Some("big/lines.jsonl".into()),
        schema: Some(schema),
        tolerated_rejects: Some(shared::contract::rejects::RejectTolerance::Count(100)),
        ..JobRequest::new(&env.resources.bucket, "")
    };
    let started = std::time::Instant::now();
    let job = pipeline.run(request, |_| {}).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();

    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let ranges = size.div_ceil(RANGE);
    assert_eq!(
        job.total_batches, ranges,
        "one parse batch per range, no scans"
    );
    assert_eq!(job.totals.rows_written, good.len() as u64);
    assert_eq!(job.totals.rows_rejected, bad_offsets.len() as u64);
    assert_eq!(job.totals.rows_duplicate, 0, "no line read by two ranges");
    // Each range reads its bytes, the byte before them and the rest of its last line.
    let longest = body.lines().map(str::len).max().unwrap_or(0) as u64 + 1;
    let read = job.totals.bytes_read;
    assert!(
        read >= size && read <= size + ranges * (1 + longest),
        "{read} bytes read of {size}"
    );
    eprintln!(
        "{size} bytes in {ranges} ranges: {read} read ({:.4}x), {} rows in {seconds:.1} s",
        read as f64 / size as f64,
        job.totals.rows_written
    );
    assert_eq!(env.count_items(&table).await, good.len() as u64);
    env.assert_notes(&table, good.iter().step_by(101)).await;
    env.assert_notes(&table, good.last()).await;
    let rejects = env.reject_records(&job).await;
    let mut offsets: Vec<u64> = rejects.iter().filter_map(|r| r.byte_offset).collect();
    offsets.sort_unstable();
    assert_eq!(offsets, bad_offsets, "each bad line alone, at its offset");
    assert!(rejects.iter().all(|r| r.reason.contains("invalid JSON")));
}
