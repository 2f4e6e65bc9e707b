//! S3 Inventory reports as a job's listing, on the doubles: a 3-data-file report (written in
//! AWS's layout) goes through count (one redelivered), compose (run twice), emit (one
//! redelivered, one stopped before its deadline and resumed part by part) and the key
//! batches: every object loads once, the one deleted after the report is counted missing
//! and reported, the job completes; a tampered manifest is refused before the job exists.

use crate::app::coordinator::Composed;
use crate::app::test_rig::{CONTROL, Rig, notes_csv, notes_schema};
use crate::contract::inventory::{ComposeInventory, InventoryOptions};
use crate::contract::messages::{BatchMessage, ControlMessage, JobRequest};
use crate::ingest::inventory::Listed;
use crate::ingest::inventory_writer::{
    InventorySpec, WrittenFormat, manifest_key, row, write_inventory,
};
use crate::job::model::JobStatus;

const SOURCE: &str = "src";
const REPORTS: &str = "reports";

/// `files` data files of `per_file` objects each (2 rows an object) in the source bucket,
/// listed by a report in the reports bucket; the report also lists a delete marker, an old
/// version, a `.txt` and one object deleted since (not in the bucket).
async fn rig_with_inventory(
    files: usize,
    per_file: usize,
) -> (Rig, InventorySpec, Vec<(String, String)>) {
    let rig = Rig::new();
    let mut expected = Vec::new();
    let mut listed = Vec::new();
    for f in 0..files {
        let mut rows: Vec<Listed> = Vec::new();
        for o in 0..per_file {
            let key = format!("data/file {f}/part+{o:03}.csv");
            let (text, objects_rows) = notes_csv(&format!("f{f}o{o}"), 2, o % 3 == 0);
            rig.objects.insert(SOURCE, &key, text.clone());
            expected.extend(objects_rows);
            rows.push(row(SOURCE, &key, text.len() as u64));
        }
        listed.push(rows);
    }
    listed[0].push(Listed {
        size: None,
        delete_marker: true,
        ..row(SOURCE, "data/file 0/deleted-marker.csv", 0)
    });
    listed[1].push(Listed {
        latest: false,
        ..row(SOURCE, "data/file 1/old.csv", 10)
    });
    listed[1].push(row(SOURCE, "data/file 1/readme.txt", 10));
    // Listed, then deleted before the job: never inserted.
    listed[2].insert(1, row(SOURCE, "data/file 2/gone.csv", 40));
    let spec = InventorySpec {
        source_bucket: SOURCE.into(),
        destination_bucket: REPORTS.into(),
        prefix: Some("inventories".into()),
        config_id: "daily".into(),
        timestamp: "2026-12-01T00-00Z".into(),
        format: WrittenFormat::Csv,
        files: listed,
    };
    for (key, bytes) in write_inventory(&spec).await {
        rig.objects.insert(REPORTS, &key, bytes);
    }
    expected.sort();
    (rig, spec, expected)
}

fn request(job_id: &str, spec: &InventorySpec) -> JobRequest {
    JobRequest {
        job_id: Some(job_id.into()),
        schema: Some(notes_schema()),
        inventory: InventoryOptions {
            inventory: Some(manifest_key(spec)),
            inventory_key_prefix: Some("data/".into()),
            ..InventoryOptions::default()
        },
        ..JobRequest::new(REPORTS, "")
    }
}

fn composes(rig: &Rig) -> Vec<ComposeInventory> {
    (rig.queues.drain(CONTROL).iter())
        .map(|body| match serde_json::from_str(body).unwrap() {
            ControlMessage::ComposeInventory(compose) => compose,
            other => panic!("not an inventory compose: {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_three_file_inventory_loads_every_object_once_and_reports_the_missing_one() {
    let (rig, spec, expected) = rig_with_inventory(3, 10).await;
    let coordinator = rig.coordinator(crate::app::config::CoordinatorConfig {
        batch_size: 4,
        ..Rig::coordinator_config()
    });
    let started = coordinator
        .start_job(request("inv", &spec), None)
        .await
        .unwrap();
    assert!(
        started.continues,
        "unsealed until the compose step: {started:?}"
    );
    let job = rig.job("inv").await;
    assert!(!job.sealed);
    assert_eq!(job.request().inventory, request("inv", &spec).inventory);

    // Phase one: three counts, the first delivered twice.
    let counts = rig.batches();
    assert_eq!(
        counts.iter().map(|b| b.batch.get()).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(
        counts
            .iter()
            .all(|b| b.bucket == REPORTS && b.work.keys().is_empty())
    );
    let worker = rig.worker(Rig::worker_config());
    for batch in [&counts[0], &counts[0], &counts[1], &counts[2]] {
        worker.process_batch(batch).await.unwrap();
    }
    // The last count (and the redelivery after it) woke the compose step.
    let woken = composes(&rig);
    assert!(!woken.is_empty());
    assert_eq!(woken[0].compose_inventory.files, 3);
    assert_eq!(
        coordinator.compose_inventory(&woken[0]).await.unwrap(),
        Composed::Enqueued { batches: 3 }
    );
    assert_eq!(
        coordinator.compose_inventory(&woken[0]).await.unwrap(),
        Composed::Nothing
    );
    // 10 + 10 + 11 loadable listed objects in batches of 4: 3 + 3 + 3 key batches after
    // the 6 count and emit batches.
    let job = rig.job("inv").await;
    assert!(job.sealed);
    assert_eq!(job.total_batches, 6 + 9);
    assert_eq!((job.files_listed, job.files_skipped), (32, 1), "{job:?}");

    // Phase two: three emits, the second delivered twice (the same batches again), the
    // third stopped before its deadline after each key batch and resumed part by part.
    let emits = rig.batches();
    assert_eq!(
        emits.iter().map(|b| b.batch.get()).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    for batch in [&emits[0], &emits[1], &emits[1]] {
        worker.process_batch(batch).await.unwrap();
    }
    let mut part: BatchMessage = emits[2].clone();
    let mut parts = 1;
    loop {
        let deadline = tokio::time::Instant::now();
        match worker.process(&part, Some(deadline)).await.unwrap() {
            crate::app::worker::Processed::Continued(next) => {
                // The continuation is on the work queue too: take it from the rig below.
                part = *next;
                parts += 1;
            }
            crate::app::worker::Processed::Counted(_) => break,
            crate::app::worker::Processed::Shared => unreachable!("no inflated object here"),
        }
    }
    assert_eq!(parts, 3, "one key batch a part");
    let keys: Vec<BatchMessage> = rig
        .batches()
        .into_iter()
        .filter(|b| b.work.inventory().is_none())
        .collect();
    let mut numbers: Vec<u64> = keys.iter().map(|b| b.batch.get()).collect();
    numbers.dedup();
    assert_eq!(
        numbers,
        (6..15).collect::<Vec<_>>(),
        "file 2's batches once each, file 1's twice"
    );
    assert!(
        keys.iter()
            .all(|b| b.bucket == SOURCE && b.work.listed_by_inventory())
    );
    assert!(
        keys.iter()
            .flat_map(|b| b.work.keys())
            .all(|k| k.starts_with("data/file ") && k.ends_with(".csv"))
    );
    for batch in &keys {
        worker.process_batch(batch).await.unwrap();
    }

    let job = rig.job("inv").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(
        (
            job.totals.files,
            job.totals.files_missing,
            job.totals.files_failed
        ),
        (30, 1, 0)
    );
    assert_eq!(job.totals.rows_written, 60);
    let mut rows = rig.rows();
    rows.sort();
    assert_eq!(rows, expected, "every object's rows once");
    // The missing object is in its batch's rejects report (file 2's first key batch).
    let report = String::from_utf8(
        rig.objects
            .bytes(REPORTS, "_rejects/inv/batch-000012.jsonl")
            .unwrap(),
    )
    .unwrap();
    assert!(
        report.contains("data/file 2/gone.csv") && report.contains("gone since"),
        "{report}"
    );
    assert_eq!(job.completion_event().totals.files_missing, 1);
    // Every GET counted: the manifest and its checksum (planning), each data file by its
    // count and by its emit (file 2's emit in three parts, each opening the file again and
    // counted at its size, what one GET of it sends), and every object once.
    let size =
        |bucket: &str, key: &str| rig.objects.bytes(bucket, key).map_or(0, |b| b.len() as u64);
    let report = |name: &str| size(REPORTS, &format!("inventories/src/daily/{name}"));
    let manifest =
        report("2026-12-01T00-00Z/manifest.json") + report("2026-12-01T00-00Z/manifest.checksum");
    let data: Vec<u64> = (0..3)
        .map(|f| report(&format!("data/{f:04}-daily.csv.gz")))
        .collect();
    assert!(data.iter().all(|&bytes| bytes > 0), "{data:?}");
    let objects: u64 = rig
        .objects
        .keys_under(SOURCE, "")
        .iter()
        .map(|k| size(SOURCE, k))
        .sum();
    assert_eq!(job.planning_bytes_read, manifest);
    assert_eq!(
        job.totals.bytes_read,
        manifest + 2 * data.iter().sum::<u64>() + 2 * data[2] + objects
    );
}

#[tokio::test]
async fn a_tampered_manifest_or_a_source_bucket_not_allowed_is_refused_before_the_job_exists() {
    let (rig, spec, _) = rig_with_inventory(3, 2).await;
    let coordinator = rig.coordinator(Rig::coordinator_config());
    let key = manifest_key(&spec);
    let original = rig.objects.bytes(REPORTS, &key).unwrap();
    let tampered = String::from_utf8(original.clone())
        .unwrap()
        .replace("\"size\"", "\"size\" ");
    rig.objects.insert(REPORTS, &key, tampered);
    let refused = coordinator
        .start_job(request("tampered", &spec), None)
        .await
        .unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains(&key) && text.contains("manifest.checksum"),
        "{text}"
    );
    use crate::fan_in::Ledger;
    assert!(rig.ledger.get(&"tampered".into()).await.unwrap().is_none());
    assert!(rig.batches().is_empty());

    rig.objects.insert(REPORTS, &key, original);
    let narrow = rig.coordinator(crate::app::config::CoordinatorConfig {
        allowed_buckets: vec![REPORTS.into()],
        ..Rig::coordinator_config()
    });
    let refused = narrow
        .start_job(request("elsewhere", &spec), None)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("sourceBucket \"src\" is not in ALLOWED_BUCKETS"),
        "{refused}"
    );
    let mixed = JobRequest {
        prefix: "data/".into(),
        ..request("mixed", &spec)
    };
    assert!(coordinator.start_job(mixed, None).await.is_err());
}

#[tokio::test]
async fn a_data_file_replaced_after_its_count_fails_its_key_batches_so_the_job_still_ends() {
    let (rig, spec, _) = rig_with_inventory(3, 4).await;
    let coordinator = rig.coordinator(crate::app::config::CoordinatorConfig {
        batch_size: 2,
        ..Rig::coordinator_config()
    });
    coordinator
        .start_job(request("replaced", &spec), None)
        .await
        .unwrap();
    let worker = rig.worker(Rig::worker_config());
    for batch in rig.batches() {
        worker.process_batch(&batch).await.unwrap();
    }
    for compose in composes(&rig) {
        coordinator.compose_inventory(&compose).await.unwrap();
    }
    // File 0 is replaced between its count and its emit (its ETag changes).
    let objects = write_inventory(&spec).await;
    let (file0, bytes) = objects
        .iter()
        .find(|(k, _)| k.contains("/data/0000-"))
        .unwrap();
    let mut changed = bytes.clone();
    changed.push(0);
    rig.objects.insert(REPORTS, file0, changed);
    let emits = rig.batches();
    let error = worker.process_batch(&emits[0]).await.unwrap_err();
    assert!(
        error.to_string().contains("cannot send its batches"),
        "{error}"
    );
    let job = rig.job("replaced").await;
    assert_eq!(job.batches_failed, 2, "file 0's 2 key batches: {job:?}");
    // The emit's own last delivery counts it failed; the other files load; the job ends.
    use crate::fan_in::Ledger;
    rig.ledger
        .record_failed_batch(
            &"replaced".into(),
            emits[0].batch,
            "its last delivery failed",
        )
        .await
        .unwrap();
    for batch in &emits[1..] {
        worker.process_batch(batch).await.unwrap();
    }
    for batch in rig.batches() {
        worker.process_batch(&batch).await.unwrap();
    }
    let job = rig.job("replaced").await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!(
        job.totals.files,
        8 - 1 + 1,
        "files 1 and 2: 4 + 5 listed, one gone"
    );
}

#[tokio::test]
async fn a_job_whose_count_batches_were_lost_is_planned_again_by_the_stuck_check() {
    use crate::app::coordinator::LISTING_STALLED_AFTER;
    use crate::contract::messages::ContinueListing;
    let (rig, spec, expected) = rig_with_inventory(3, 3).await;
    let coordinator = rig.coordinator(Rig::coordinator_config());
    coordinator
        .start_job(request("lost", &spec), None)
        .await
        .unwrap();
    assert_eq!(rig.batches().len(), 3, "the counts, lost with their queue");
    let long_ago = crate::clock::now_ms() - 2 * LISTING_STALLED_AFTER.as_millis() as u64;
    rig.ledger.edit(&"lost".into(), |job| {
        job.started_ms = long_ago;
        job.listing_updated_ms = long_ago;
    });
    let report = coordinator
        .check_stuck_jobs(std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(report.listings_resumed, ["lost"]);
    let wake: ContinueListing = serde_json::from_str(&rig.queues.drain(CONTROL)[0]).unwrap();
    coordinator.continue_listing(&wake, None).await.unwrap();
    // The same count batches under the same numbers; then the job runs as any other.
    let worker = rig.worker(Rig::worker_config());
    let counts = rig.batches();
    assert_eq!(
        counts.iter().map(|b| b.batch.get()).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for batch in &counts {
        worker.process_batch(batch).await.unwrap();
    }
    for compose in composes(&rig) {
        coordinator.compose_inventory(&compose).await.unwrap();
    }
    loop {
        let batches = rig.batches();
        if batches.is_empty() {
            break;
        }
        for batch in &batches {
            worker.process_batch(batch).await.unwrap();
        }
    }
    let job = rig.job("lost").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let mut rows = rig.rows();
    rows.sort();
    assert_eq!(rows, expected);
}
