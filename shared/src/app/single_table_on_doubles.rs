//! A single-table design through the whole pipeline on the doubles: the sample event's
//! mapping (`events/prefix-job-single-table.json`: `PK` = `SENSOR#{measure_point}`, `SK` =
//! `{timestamp}#{seq}`, constants, renames, unmapped columns dropped) lands attribute by
//! attribute, and a table keyed otherwise refuses the job before any work.

use std::sync::Arc;

use crate::app::test_rig::{RECORDS, Rig};
use crate::contract::messages::JobRequest;
use crate::ingest::item::Value;
use crate::job::model::JobStatus;
use crate::port::memory::MemoryTable;

const CSV: &str = "timestamp,seq,temp,humidity,measure_point,note
2025-11-26 02:56:13 UTC,1,19.80,41,m-1,x
2025-11-26 02:56:13 UTC,2,20,,m-1,y
2025-11-26T02:56:13Z,1,21,40,m#1,z
2025-11-26T02:56:13Z,3,22,40,,no key
";

fn request() -> JobRequest {
    let mut request: JobRequest =
        serde_json::from_str(include_str!("../../../events/prefix-job-single-table.json")).unwrap();
    request.bucket = "b".into();
    request.job_id = Some("single".into());
    request.tolerated_rejects = None;
    request
}

fn s(text: &str) -> Value {
    Value::S(text.into())
}

#[tokio::test]
async fn a_single_table_mapping_lands_attribute_by_attribute() {
    let table = Arc::new(MemoryTable::new("PK", Some("SK")));
    let rig = Rig::writing_through(table.clone(), table.clone());
    rig.objects.insert("b", "sensors/a.csv", CSV);
    let coordinator = rig.coordinator(Rig::coordinator_config());
    coordinator.start_job(request(), None).await.unwrap();
    let worker = rig.worker(Rig::worker_config());
    for batch in &rig.batches() {
        worker.process_batch(batch).await.unwrap();
    }

    let job = rig.job("single").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (3, 1));
    let items = table.items(RECORDS);
    assert_eq!(items.len(), 3, "{items:?}");
    // In key order: `SENSOR#m#1` sorts before `SENSOR#m-1`; `m#1` and `m-1` stay two items.
    let (hash, first, second) = (&items[0], &items[1], &items[2]);
    assert_eq!(hash["PK"], s("SENSOR#m#1"));
    assert_eq!(first["PK"], s("SENSOR#m-1"));
    assert_eq!(first["SK"], s("2025-11-26T02:56:13Z#1"));
    assert_eq!(second["SK"], s("2025-11-26T02:56:13Z#2"));
    assert_eq!(first["entity"], s("reading"));
    assert_eq!(first["version"], Value::N("1".into()));
    assert_eq!(first["reading_time"], s("2025-11-26T02:56:13Z"));
    assert_eq!(first["temperature"], Value::N("19.8".into()));
    assert_eq!(first["humidity"], Value::N("41".into()));
    assert!(!second.contains_key("humidity"), "empty: omitted");
    let mut names: Vec<&str> = first.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "PK",
            "SK",
            "entity",
            "humidity",
            "reading_time",
            "temperature",
            "version"
        ],
        "unmapped columns (seq, temp, measure_point, note, timestamp) are dropped"
    );
}

#[tokio::test]
async fn a_table_keyed_by_the_columns_refuses_the_mapped_job_at_the_start() {
    let table = Arc::new(MemoryTable::new("measure_point", Some("timestamp")));
    let rig = Rig::writing_through(table.clone(), table.clone());
    rig.objects.insert("b", "sensors/a.csv", CSV);
    let coordinator = rig.coordinator(Rig::coordinator_config());
    let error = coordinator.start_job(request(), None).await.unwrap_err();
    let reason = crate::report(&error);
    assert!(
        reason.contains("partition key is \"measure_point\" of type S (string), and the job's schema writes its partition key as \"PK\""),
        "{reason}"
    );
    assert!(rig.batches().is_empty());
}
