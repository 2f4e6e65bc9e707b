//! DynamoDB S3 exports applied to an existing table, on the doubles: a full export (one empty
//! partition) copied under another prefix loads every item as it is beside the table's
//! unrelated items; a manifest whose item count disagrees completes the job with errors, and
//! so does a data file whose MD5 is not the manifest's; a corrupt line is rejected alone; a manifest that does not match its checksum is refused;
//! an incremental export then puts its new images and deletes the keys without one.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::app::test_rig::Rig;
use crate::contract::messages::JobRequest;
use crate::ingest::export_writer::{ExportSpec, write_export};
use crate::ingest::item::{Item, Value};
use crate::job::model::JobStatus;
use crate::port::memory::MemoryTable;
use crate::port::table::{KeyType, RecordTable};

fn item(id: &str, n: u32) -> Item {
    Item::from_iter([
        ("id".to_owned(), Value::S(id.into())),
        ("n".to_owned(), Value::N(n.to_string())),
        ("b".to_owned(), Value::B(vec![0, n as u8])),
        (
            "ss".to_owned(),
            Value::Ss(vec!["x".into(), format!("y{n}")]),
        ),
        (
            "m".to_owned(),
            Value::M(BTreeMap::from([(
                "l".to_owned(),
                Value::L(vec![Value::Null, Value::Bool(n.is_multiple_of(2))]),
            )])),
        ),
    ])
}

fn spec() -> ExportSpec {
    ExportSpec {
        bucket: "source-bucket".into(),
        prefix: Some("exports/2026".into()),
        export_id: "01764583200000-abcd1234".into(),
        files: vec![
            (0..4).map(|n| item("a", n)).collect(),
            vec![],
            (0..3).map(|n| item("b", n)).collect(),
        ],
        ..ExportSpec::default()
    }
}

/// A rig whose table is keyed (id S, n N) and holds one unrelated item; the export's
/// objects copied under `copy/` of bucket `b` (not where the manifests say they were).
async fn rig_with(spec: &ExportSpec) -> Rig {
    let table = Arc::new(MemoryTable::new("id", Some("n")).with_key_types(KeyType::S, KeyType::N));
    let unrelated = Item::from_iter([
        ("id".to_owned(), Value::S("other".into())),
        ("n".to_owned(), Value::N("1".into())),
    ]);
    table.batch_put("records", &[&unrelated]).await.unwrap();
    let rig = Rig::writing_through(table.clone(), table);
    for (key, bytes) in write_export(spec).await {
        let moved = key.replacen("exports/2026/", "copy/", 1);
        rig.objects.insert("b", &moved, bytes);
    }
    rig
}

async fn run(rig: &Rig, job_id: &str, export: &str) -> Result<(), String> {
    let request = JobRequest {
        job_id: Some(job_id.into()),
        export: Some(export.into()),
        ..JobRequest::new("b", "")
    };
    let coordinator = rig.coordinator(Rig::coordinator_config());
    coordinator
        .start_job(request, None)
        .await
        .map_err(|e| e.to_string())?;
    let worker = rig.worker(Rig::worker_config());
    for batch in rig.batches() {
        worker.process_batch(&batch).await.unwrap();
    }
    Ok(())
}

#[tokio::test]
async fn a_moved_full_export_loads_every_item_as_it_is_beside_unrelated_items() {
    let spec = spec();
    let rig = rig_with(&spec).await;
    run(&rig, "full", "copy/AWSDynamoDB/01764583200000-abcd1234")
        .await
        .unwrap();
    let job = rig.job("full").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    // Planned again (the stuck check), the job reads the same export, never a listing.
    let again = job.request();
    assert_eq!(
        (again.export, again.format),
        (
            Some("copy/AWSDynamoDB/01764583200000-abcd1234".into()),
            Some(crate::ingest::format::Format::DynamoDbJson)
        )
    );
    assert_eq!(
        (job.totals.files, job.totals.rows_written),
        (3, 7),
        "{job:?}"
    );
    // Planning read the manifests and checksums whole, and the first line of the first data
    // file holding items (here a small file, so all of it).
    let folder = "copy/AWSDynamoDB/01764583200000-abcd1234/";
    let size = |key: &str| rig.objects.bytes("b", key).map_or(0, |b| b.len() as u64);
    let manifests: u64 = (rig.objects.keys_under("b", folder).iter())
        .filter(|k| !k.contains("/data/"))
        .map(|k| size(k))
        .sum();
    let data = rig.objects.keys_under("b", "copy/");
    let first = (data.iter().filter(|k| k.contains("/data/")))
        .map(|k| size(k))
        .find(|&s| s > 0)
        .unwrap();
    assert!(manifests > 0 && first < 64 << 10, "{manifests} {first}");
    assert_eq!(job.planning_bytes_read, manifests + first, "{data:?}");
    assert!(job.totals.bytes_read > job.planning_bytes_read);
    let mut stored = rig.table.items("records");
    stored.sort_by_key(|i| format!("{:?}{:?}", i["id"], i["n"]));
    let mut expected: Vec<Item> = spec.files.concat();
    expected.push(Item::from_iter([
        ("id".to_owned(), Value::S("other".into())),
        ("n".to_owned(), Value::N("1".into())),
    ]));
    expected.sort_by_key(|i| format!("{:?}{:?}", i["id"], i["n"]));
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn a_manifest_whose_item_count_disagrees_completes_the_job_with_errors() {
    let spec = ExportSpec {
        claimed_count: Some((2, 5)),
        ..spec()
    };
    let rig = rig_with(&spec).await;
    run(
        &rig,
        "miscount",
        "copy/AWSDynamoDB/01764583200000-abcd1234/manifest-summary.json",
    )
    .await
    .unwrap();
    let job = rig.job("miscount").await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!(job.totals.files_miscounted, 1);
    assert!(
        job.error.as_deref().unwrap().contains("itemCount"),
        "{job:?}"
    );
    let report = String::from_utf8(
        rig.objects
            .bytes("b", "_rejects/miscount/batch-000000.jsonl")
            .unwrap(),
    )
    .unwrap();
    assert!(
        report.contains("holds 3 items and its export's manifest says 5"),
        "{report}"
    );
    assert_eq!(job.totals.rows_written, 7, "the items still land");
}

#[tokio::test]
async fn a_data_file_replaced_by_another_of_as_many_items_is_caught_by_its_md5() {
    let spec = spec();
    let rig = rig_with(&spec).await;
    // Another export's file 2 (same name, as many items, other values) put in its place.
    let other = ExportSpec {
        files: vec![
            spec.files[0].clone(),
            vec![],
            (10..13).map(|n| item("b", n)).collect(),
        ],
        ..spec.clone()
    };
    let mut replaced = Vec::new();
    for (key, bytes) in write_export(&other).await {
        let moved = key.replacen("exports/2026/", "copy/", 1);
        if key.contains("/data/") && rig.objects.bytes("b", &moved) != Some(bytes.clone()) {
            rig.objects.insert("b", &moved, bytes);
            replaced.push(moved);
        }
    }
    assert_eq!(replaced.len(), 1, "{replaced:?}");
    run(
        &rig,
        "replaced",
        "copy/AWSDynamoDB/01764583200000-abcd1234/",
    )
    .await
    .unwrap();
    let job = rig.job("replaced").await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!(
        (job.totals.files_corrupt, job.totals.files_miscounted),
        (1, 0)
    );
    assert!(
        job.error.as_deref().unwrap().contains("md5Checksum"),
        "{job:?}"
    );
    let report = String::from_utf8(
        rig.objects
            .bytes("b", "_rejects/replaced/batch-000000.jsonl")
            .unwrap(),
    )
    .unwrap();
    assert!(
        report.contains(&replaced[0]) && report.contains("its export's manifest says"),
        "{report}"
    );
    assert_eq!(
        job.totals.rows_written, 7,
        "what it held was written all the same"
    );
    assert_eq!(job.completion_event().totals.files_corrupt, 1);
}

#[tokio::test]
async fn a_corrupt_line_is_rejected_alone_and_a_bad_checksum_refuses_the_export() {
    let spec = ExportSpec {
        extra_lines: vec![(
            0,
            "{\"Item\":{\"id\":{\"S\":\"a\"},\"n\":{\"N\":\"x\"}}}".into(),
        )],
        ..spec()
    };
    let rig = rig_with(&spec).await;
    run(&rig, "corrupt", "copy/AWSDynamoDB/01764583200000-abcd1234/")
        .await
        .unwrap();
    let job = rig.job("corrupt").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (7, 1));
    let summary = "copy/AWSDynamoDB/01764583200000-abcd1234/manifest-summary.json";
    let mut bytes = rig.objects.bytes("b", summary).unwrap();
    bytes.push(b' ');
    rig.objects.insert("b", summary, bytes);
    let reason = run(&rig, "tampered", summary).await.unwrap_err();
    assert!(
        reason.contains("does not match its checksum file"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_incremental_export_puts_new_images_and_deletes_keys_without_one() {
    let spec = spec();
    let rig = rig_with(&spec).await;
    run(&rig, "base", "copy/AWSDynamoDB/01764583200000-abcd1234")
        .await
        .unwrap();
    let key = |id: &str, n: u32| {
        Item::from_iter([
            ("id".to_owned(), Value::S(id.into())),
            ("n".to_owned(), Value::N(n.to_string())),
        ])
    };
    let mut modified = item("a", 1);
    modified.insert("note".into(), Value::S("changed".into()));
    let changes = ExportSpec {
        export_id: "01764586800000-ef567890".into(),
        changes: Some(vec![
            vec![(key("a", 1), Some(modified.clone())), (key("a", 2), None)],
            vec![],
            vec![(key("c", 9), Some(item("c", 9))), (key("b", 0), None)],
        ]),
        ..spec.clone()
    };
    for (key, bytes) in write_export(&changes).await {
        rig.objects
            .insert("b", &key.replacen("exports/2026/", "copy/", 1), bytes);
    }
    // One data file a batch, delivered in reverse order and then all again: a key appears
    // once per export, so neither order nor repetition changes the result.
    let request = JobRequest {
        job_id: Some("incr".into()),
        export: Some("copy/AWSDynamoDB/01764586800000-ef567890".into()),
        ..JobRequest::new("b", "")
    };
    let coordinator = rig.coordinator(crate::app::config::CoordinatorConfig {
        batch_size: 1,
        ..Rig::coordinator_config()
    });
    coordinator.start_job(request, None).await.unwrap();
    let mut batches = rig.batches();
    assert_eq!(batches.len(), 3);
    batches.reverse();
    let worker = rig.worker(Rig::worker_config());
    for batch in batches.iter().chain(&batches) {
        worker.process_batch(batch).await.unwrap();
    }
    let job = rig.job("incr").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 4, "redeliveries are counted once");
    let mut stored = rig.table.items("records");
    stored.sort_by_key(|i| format!("{:?}{:?}", i["id"], i["n"]));
    let mut expected = vec![
        item("a", 0),
        modified,
        item("a", 3),
        item("b", 1),
        item("b", 2),
        item("c", 9),
        key("other", 1),
    ];
    expected.sort_by_key(|i| format!("{:?}{:?}", i["id"], i["n"]));
    assert_eq!(stored, expected);
}

#[tokio::test]
async fn the_key_check_reads_a_big_data_file_s_first_line_through_growing_windows() {
    // A first item whose line compresses to more than the first 64 KiB window (noise does
    // not compress), in a data file several times wider still.
    let mut noise = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 120_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(char::from(b'!' + (x % 90) as u8));
    }
    let mut first = item("a", 0);
    first.insert("noise".into(), Value::S(noise.clone()));
    let mut items = vec![first];
    for n in 1..6 {
        let mut next = item("a", n);
        next.insert("noise".into(), Value::S(noise[n as usize..].to_owned()));
        items.push(next);
    }
    let spec = ExportSpec {
        files: vec![items],
        ..spec()
    };
    let rig = rig_with(&spec).await;
    run(&rig, "wide", "copy/AWSDynamoDB/01764583200000-abcd1234")
        .await
        .unwrap();
    let job = rig.job("wide").await;
    assert_eq!(
        (job.status, job.totals.rows_written),
        (JobStatus::Complete, 6),
        "{job:?}"
    );
    let keys = rig.objects.keys_under("b", "copy/");
    let size = |key: &String| rig.objects.bytes("b", key).map_or(0, |b| b.len() as u64);
    let manifests: u64 = (keys.iter().filter(|k| !k.contains("/data/")))
        .map(size)
        .sum();
    let data = (keys.iter().find(|k| k.contains("/data/"))).map_or(0, size);
    assert!(data > 4 * (64 << 10), "{data}");
    // A first window too narrow for the line, then a second holding the whole file.
    assert_eq!(job.planning_bytes_read, manifests + (64 << 10) + data);
}
