//! `bytes_read` counts what a batch took from S3 in every outcome: an object refused after
//! some of it was fetched, a corrupt compressed stream, and a compressed object whose parts
//! each decode it from the start again (each part's read is its own).

use std::time::Duration;

use super::resume_on_doubles::{one_batch, run_chain, slow_rig, worker};
use crate::app::test_rig::{Rig, notes_csv};
use crate::ingest::compression::testing::gzip;
use crate::job::model::JobStatus;

#[tokio::test]
async fn a_refused_object_and_a_corrupt_stream_count_the_bytes_they_fetched() {
    let rig = Rig::new();
    // No `id` column: refused at its header, after the header was read.
    let headless = "note,other\nx,y\n".repeat(200);
    rig.objects.insert("b", "in/a-no-id.csv", headless.clone());
    // A gzip stream cut short: rows decode until the cut, then the object is refused.
    let (text, _) = notes_csv("cut", 2_000, false);
    let packed = gzip(text.as_bytes()).await;
    let cut = packed[..packed.len() * 3 / 4].to_vec();
    rig.objects.insert("b", "in/b-cut.csv.gz", cut.clone());
    let batch = one_batch(&rig, "refused", None, 1 << 30).await;
    rig.worker(Rig::worker_config())
        .process_batch(&batch)
        .await
        .unwrap();
    let job = rig.job("refused").await;
    assert_eq!(job.totals.files_failed, 2, "{job:?}");
    // The header's bytes at least, and the cut stream's whole; never more than both.
    let fetched = job.totals.bytes_read;
    let most = (headless.len() + cut.len()) as u64;
    assert!(
        fetched > cut.len() as u64 / 2 && fetched <= most,
        "{fetched} bytes read of {most}"
    );
}

#[tokio::test]
async fn each_part_of_a_compressed_object_counts_the_stream_it_read_again() {
    let (rig, _) = slow_rig(Duration::from_millis(8));
    let (text, _) = notes_csv("z", 1_200, true);
    let packed = gzip(text.as_bytes()).await;
    let size = packed.len() as u64;
    rig.objects.insert("b", "in/z.csv.gz", packed);
    let batch = one_batch(&rig, "gz-parts", None, 1 << 30).await;
    let worker = worker(&rig, Duration::from_millis(100));
    let parts = run_chain(&worker, batch, Duration::from_millis(150)).await;
    assert!(parts >= 2, "{parts} parts");
    let job = rig.job("gz-parts").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.bytes, size, "its input once");
    // The last part decoded it whole; every earlier one read some of it as well.
    let read = job.totals.bytes_read;
    assert!(
        read > size && read <= parts as u64 * size,
        "{read} bytes read over {parts} parts of a {size}-byte object"
    );
}
