//! Every DynamoDB type through the whole pipeline on the doubles: the sample event's schema
//! (`events/prefix-job-every-type.json`), a CSV with a good row and one bad row per rule;
//! the good rows land typed, each bad row is rejected alone, naming its column and rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::app::test_rig::{RECORDS, Rig};
use crate::contract::messages::JobRequest;
use crate::ingest::item::Value;
use crate::job::model::JobStatus;
use crate::port::memory::MemoryTable;
use crate::port::table::KeyType;

const HEADER: &str = "sku,listed_at,title,price,in_stock,updated,checksum,thumbnail,tags,sizes,signatures,history,dimensions,extra\n";

/// A row of the sample schema; `sizes` and `history` vary, the rest is fixed.
fn row(sku: u32, sizes: &str, history: &str) -> String {
    let quote = |field: &str| format!("\"{}\"", field.replace('"', "\"\""));
    format!(
        "{sku},2025-11-26 02:56:13 UTC,Lamp,19.90,true,2025-11-27T08:00:00Z,9f86d081,,home|light,{},{},{},{},\n",
        quote(sizes),
        quote(r#"["AAE=", "/w=="]"#),
        quote(history),
        quote(r#"{"w": 12, "unit": "cm"}"#),
    )
}

#[tokio::test]
async fn every_type_lands_typed_and_each_bad_row_is_rejected_alone() {
    // Keyed as the sample's typed keys write: a number and an epoch timestamp.
    let table =
        Arc::new(MemoryTable::new("sku", Some("listed_at")).with_key_types(KeyType::N, KeyType::N));
    let rig = Rig::writing_through(table.clone(), table.clone());
    let deep = format!("{}{}", "[".repeat(33), "]".repeat(33));
    let mut csv = String::from(HEADER);
    csv.push_str(&row(1, "[1, 2.5]", r#"[{"at": 1, "p": 0.10}]"#));
    csv.push_str(&row(2, "[3]", "[]"));
    csv.push_str(&row(3, "[1, 1.0]", "[]")); // a duplicate in a set
    csv.push_str(&row(4, "[]", "[]")); // an empty set
    csv.push_str(&row(5, "[1]", &deep)); // 33 levels
    csv.push_str(&row(6, "[1]", "[1e200]")); // a number past the limits in a list
    rig.objects.insert("b", "catalog/a.csv", csv);

    let mut request: JobRequest =
        serde_json::from_str(include_str!("../../../events/prefix-job-every-type.json")).unwrap();
    request.bucket = "b".into();
    request.job_id = Some("every".into());
    request.tolerated_rejects = None;
    let coordinator = rig.coordinator(Rig::coordinator_config());
    coordinator.start_job(request, None).await.unwrap();
    let worker = rig.worker(Rig::worker_config());
    let batches = rig.batches();
    for batch in &batches {
        worker.process_batch(batch).await.unwrap();
    }

    let job = rig.job("every").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (2, 4));
    let items = table.items(RECORDS);
    assert_eq!(items.len(), 2);
    let first = &items[0];
    assert_eq!(first["sku"], Value::N("1".into()));
    assert_eq!(first["listed_at"], Value::N("1764125773000".into()));
    assert_eq!(first["checksum"], Value::B(vec![0x9f, 0x86, 0xd0, 0x81]));
    assert!(!first.contains_key("thumbnail"), "empty: omitted");
    assert_eq!(
        first["tags"],
        Value::Ss(vec!["home".into(), "light".into()])
    );
    assert_eq!(first["sizes"], Value::Ns(vec!["1".into(), "2.5".into()]));
    assert_eq!(first["signatures"], Value::Bs(vec![vec![0, 1], vec![255]]));
    assert_eq!(
        first["extra"],
        Value::Null,
        "empty: NULL, as the column says"
    );
    assert_eq!(
        first["history"],
        Value::L(vec![Value::M(BTreeMap::from([
            ("at".into(), Value::N("1".into())),
            ("p".into(), Value::N("0.1".into())),
        ]))])
    );
    assert_eq!(items[1]["history"], Value::L(vec![]));

    let report: String = batches
        .iter()
        .filter_map(|b| {
            rig.objects.bytes(
                "b",
                &format!("_rejects/every/batch-{:06}.jsonl", b.batch.get()),
            )
        })
        .map(|bytes| String::from_utf8(bytes).unwrap())
        .collect();
    for (line, reason) in [
        (4, "column sizes: duplicate element in a set (element 2)"),
        (5, "column sizes: empty set"),
        (
            6,
            "column history: lists and maps nested more than DynamoDB's 32 levels",
        ),
        (7, "column history: a number in the JSON: number overflow"),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!("\"line\":{line},")) && l.contains(reason)),
            "line {line}: {reason}\n{report}"
        );
    }
}
