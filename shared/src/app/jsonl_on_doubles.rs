//! JSON Lines through the whole pipeline on the doubles: one prefix job over a `.jsonl`, a
//! `.jsonl.gz` and a `.ndjson.zst` (and a CSV beside them), each with a bad line; every good
//! line lands, each bad one is rejected alone in the report with its line and byte offset,
//! and the plain `.jsonl`, larger than the range chunk, is split into ranges by lines (no
//! scan phase), each line read by one range.

use crate::app::config::CoordinatorConfig;
use crate::app::test_rig::{Rig, notes_schema};
use crate::contract::messages::{JobRequest, Work};
use crate::ingest::compression::testing::{gzip, zstd};
use crate::ingest::format::Format;
use crate::job::model::JobStatus;

/// `rows` good lines of `name`, with a bad one (invalid JSON) as line `bad`.
fn lines(name: &str, rows: usize, bad: usize) -> String {
    let mut text = String::new();
    for i in 1..=rows + 1 {
        if i == bad {
            text.push_str("{\"id\": \"broken\"\n");
        } else {
            text.push_str(&format!(
                "{{\"id\": \"{name}-{i:04}\", \"note\": \"n {i}\", \"meta\": {{\"n\": {i}}}}}\n"
            ));
        }
    }
    text
}

#[tokio::test]
async fn a_prefix_of_jsonl_gz_and_zst_objects_loads_every_good_line_and_rejects_each_bad_one() {
    let rig = Rig::new();
    let (plain, gz, zst) = (
        lines("plain", 300, 7),
        lines("gz", 50, 2),
        lines("zst", 50, 51),
    );
    rig.objects.insert("b", "in/a.jsonl", plain.clone());
    rig.objects
        .insert("b", "in/b.jsonl.gz", gzip(gz.as_bytes()).await);
    rig.objects
        .insert("b", "in/c.NDJSON.zst", zstd(zst.as_bytes()).await);
    rig.objects.insert("b", "in/d.csv", "id,note\ncsv-1,x\n");
    rig.objects.insert("b", "in/skip.txt", "{}\n");
    let request = JobRequest {
        job_id: Some("jsonl".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        // The plain .jsonl is larger than this: split by lines, without scans.
        range_chunk_bytes: 1024,
        ..Rig::coordinator_config()
    });
    let started = coordinator.start_job(request, None).await.unwrap();
    let batches = rig.batches();
    let ranges = (plain.len() as u64).div_ceil(1024);
    assert_eq!(
        started.listing.batches,
        1 + ranges,
        "a key batch and the ranges"
    );
    assert!(batches.iter().all(|b| b.work.scan().is_none()));
    let ranged: Vec<_> = batches
        .iter()
        .filter_map(|b| match &b.work {
            Work::Range(task) => Some(task),
            _ => None,
        })
        .collect();
    assert_eq!(ranged.len() as u64, ranges);
    assert!(ranged.iter().all(|r| r.key == "in/a.jsonl"));
    let worker = rig.worker(Rig::worker_config());
    for batch in &batches {
        worker.process_batch(batch).await.unwrap();
    }

    let job = rig.job("jsonl").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(
        (job.totals.rows_written, job.totals.rows_rejected),
        (300 + 50 + 50 + 1, 3)
    );
    assert_eq!(job.totals.rows_duplicate, 0, "no line read by two ranges");
    let rows = rig.rows();
    assert!(rows.contains(&("plain-0300".into(), "n 300".into())));
    assert!(rows.contains(&("gz-0001".into(), "n 1".into())));
    assert!(rows.contains(&("zst-0050".into(), "n 50".into())));
    assert!(rows.contains(&("csv-1".into(), "x".into())));
    let report: String = batches
        .iter()
        .filter_map(|b| {
            rig.objects.bytes(
                "b",
                &format!("_rejects/jsonl/batch-{:06}.jsonl", b.batch.get()),
            )
        })
        .map(|bytes| String::from_utf8(bytes).unwrap())
        .collect();
    // The offset in the decoded stream (a compressed object's lines are numbered there).
    let offset = |text: &str, line: usize| -> usize {
        text.lines().take(line - 1).map(|l| l.len() + 1).sum()
    };
    for (object, line, offset) in [
        ("in/a.jsonl", 7, offset(&plain, 7)),
        ("in/b.jsonl.gz", 2, offset(&gz, 2)),
        ("in/c.NDJSON.zst", 51, offset(&zst, 51)),
    ] {
        assert!(
            report.lines().any(|l| l.contains(object)
                && l.contains(&format!("\"line\":{line},"))
                && l.contains(&format!("\"byte_offset\":{offset},"))
                && l.contains("invalid JSON")),
            "{object} line {line} at {offset}:\n{report}"
        );
    }
}

#[tokio::test]
async fn the_request_format_is_carried_to_the_workers_and_overrides_the_suffix() {
    let rig = Rig::new();
    rig.objects.insert(
        "b",
        "in/lines.csv",
        "{\"id\": \"one\", \"note\": \"a\"}\n{\"id\": \"two\"}\n",
    );
    let request = JobRequest {
        job_id: Some("forced".into()),
        schema: Some(notes_schema()),
        format: Some(Format::JsonLines),
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(Rig::coordinator_config());
    coordinator.start_job(request, None).await.unwrap();
    let batches = rig.batches();
    assert!(batches.iter().all(|b| b.format == Some(Format::JsonLines)));
    let worker = rig.worker(Rig::worker_config());
    for batch in &batches {
        worker.process_batch(batch).await.unwrap();
    }
    assert_eq!(
        rig.rows(),
        [("one".into(), "a".into()), ("two".into(), String::new())]
    );
}
