//! Split objects inside a prefix job, on the doubles: one job mixes key batches and the scans
//! and parses of several split objects; each object's scans wake its own compose step, and
//! every row lands once, reading each split object twice and each small one once.

use super::Composed;
use super::object_plan::HEADER_WINDOW;
use crate::app::config::CoordinatorConfig;
use crate::app::test_rig::{NOTES_HEADER, Rig, notes_csv, notes_schema};
use crate::contract::messages::JobRequest;
use crate::job::model::{Job, JobStatus};

#[tokio::test]
async fn a_prefix_splits_its_big_plain_csvs_and_loads_every_row_once() {
    let rig = Rig::new();
    let mut expected = Vec::new();
    let mut input = 0;
    for i in 0..30 {
        let (text, rows) = notes_csv(&format!("s{i:02}"), 3, false);
        input += text.len() as u64;
        rig.objects.insert("b", &format!("in/s{i:02}.csv"), text);
        expected.extend(rows);
    }
    // Two big ones among the small: a quoted one (ranges cut through quoted newlines) and a
    // plain one.
    let mut split_data = 0;
    let mut header_windows = 0;
    for (key, name, quoted) in [("in/m-big.csv", "q", true), ("in/z-big.csv", "p", false)] {
        let (text, rows) = notes_csv(name, 200, quoted);
        input += text.len() as u64;
        split_data += (text.len() - NOTES_HEADER.len()) as u64;
        header_windows += HEADER_WINDOW.min(text.len() as u64);
        rig.objects.insert("b", key, text);
        expected.extend(rows);
    }
    expected.sort();

    let coordinator = rig.coordinator(CoordinatorConfig {
        batch_size: 8,
        batch_bytes: 1 << 20,
        list_page_size: 7,
        range_chunk_bytes: 1024,
        ..Rig::coordinator_config()
    });
    let worker = rig.worker(Rig::worker_config());
    let request = JobRequest {
        job_id: Some("mixed".into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "in/")
    };
    let started = coordinator.start_job(request, None).await.unwrap();

    let mut numbers = Vec::new();
    let mut composed = 0;
    let mut job: Job;
    loop {
        let batches = rig.batches();
        for batch in &batches {
            numbers.push(batch.batch.get());
            worker.process_batch(batch).await.unwrap();
        }
        for compose in rig.compose_messages() {
            if let Composed::Enqueued { .. } = coordinator.compose_ranges(&compose).await.unwrap() {
                composed += 1;
            }
        }
        job = rig.job("mixed").await;
        if job.status.is_final() || batches.is_empty() {
            break;
        }
    }
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(composed, 2, "one compose per split object");
    numbers.sort();
    assert_eq!(
        numbers,
        (0..started.listing.batches).collect::<Vec<_>>(),
        "every batch number once: key batches, scans and parses of both objects"
    );
    let ranges: u64 = (started.listing.batches - 30u64.div_ceil(8)) / 2;
    assert!(ranges > 10, "{ranges} ranges in all");
    assert_eq!(job.totals.rows_written, 30 * 3 + 400);
    assert_eq!(job.totals.rows_rejected, 0);
    // Small objects once, split ones' data twice (scans + row spans), and their headers'
    // windows once, at planning.
    assert_eq!(job.planning_bytes_read, header_windows);
    assert_eq!(
        job.totals.bytes_read,
        input - 2 * NOTES_HEADER.len() as u64 - split_data + 2 * split_data + header_windows
    );
    // (Here the windows hold whole objects; at a real chunk size they are a sliver.)
    assert!((job.totals.bytes_read - header_windows) as f64 <= 2.1 * input as f64);
    assert_eq!(rig.rows(), expected, "every row once, byte for byte");
}
