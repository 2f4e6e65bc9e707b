//! DynamoDB JSON through the whole pipeline on the doubles: a prefix job with
//! `format: dynamodb_json` and no schema reads by the table's own key; a `.json`, a
//! `.json.gz` and a `.json.zst`, each with a bad line, land every good item attribute for
//! attribute, and each bad line is rejected alone in the report.

use std::sync::Arc;

use crate::app::config::CoordinatorConfig;
use crate::app::test_rig::{Rig, notes_schema};
use crate::contract::messages::{JobRequest, Work};
use crate::ingest::compression::testing::{gzip, zstd};
use crate::ingest::format::Format;
use crate::ingest::item::Value;
use crate::job::model::JobStatus;
use crate::port::memory::MemoryTable;
use crate::port::table::KeyType;

/// `rows` items `{"Item": ...}` keyed `name`-i (and sort key i), with line `bad` broken.
fn lines(name: &str, rows: usize, bad: usize) -> String {
    (1..=rows + 1)
        .map(|i| {
            if i == bad {
                format!("{{\"Item\":{{\"id\":{{\"S\":\"{name}\"}},\"n\":{{\"X\":\"1\"}}}}}}\n")
            } else {
                format!(
                    "{{\"Item\":{{\"id\":{{\"S\":\"{name}\"}},\"n\":{{\"N\":\"{i}\"}},\
                     \"tags\":{{\"SS\":[\"a\",\"b\"]}},\"m\":{{\"M\":{{\"l\":{{\"L\":[{{\"BOOL\":true}}]}}}}}}}}}}\n"
                )
            }
        })
        .collect()
}

#[tokio::test]
async fn a_prefix_of_json_gz_and_zst_items_lands_every_good_item_keyed_by_the_table() {
    let table = Arc::new(MemoryTable::new("id", Some("n")).with_key_types(KeyType::S, KeyType::N));
    let rig = Rig::writing_through(table.clone(), table);
    rig.objects.insert("b", "in/a.json", lines("plain", 30, 7));
    rig.objects.insert(
        "b",
        "in/b.json.gz",
        gzip(lines("gz", 5, 2).as_bytes()).await,
    );
    rig.objects.insert(
        "b",
        "in/c.json.zst",
        zstd(lines("zst", 5, 6).as_bytes()).await,
    );
    let request = JobRequest {
        job_id: Some("typed".into()),
        format: Some(Format::DynamoDbJson),
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        range_chunk_bytes: 1024,
        ..Rig::coordinator_config()
    });
    coordinator.start_job(request, None).await.unwrap();
    let worker = rig.worker(Rig::worker_config());
    let batches = rig.batches();
    assert!(batches.iter().all(|b| !matches!(b.work, Work::Range(_))));
    for batch in &batches {
        worker.process_batch(batch).await.unwrap();
    }
    let job = rig.job("typed").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (40, 3));
    let items = rig.table.items("records");
    assert_eq!(items.len(), 40);
    let seven = items
        .iter()
        .find(|i| i["id"] == Value::S("plain".into()) && i["n"] == Value::N("8".into()))
        .unwrap();
    assert_eq!(seven["tags"], Value::Ss(vec!["a".into(), "b".into()]));
    assert_eq!(
        seven["m"],
        Value::M([("l".to_owned(), Value::L(vec![Value::Bool(true)]))].into())
    );
    let report: String = batches
        .iter()
        .filter_map(|b| {
            (rig.objects).bytes(
                "b",
                &format!("_rejects/typed/batch-{:06}.jsonl", b.batch.get()),
            )
        })
        .map(|bytes| String::from_utf8(bytes).unwrap())
        .collect();
    for (object, line) in [("in/a.json", 7), ("in/b.json.gz", 2), ("in/c.json.zst", 6)] {
        assert!(
            report.lines().any(|l| l.contains(object)
                && l.contains(&format!("\"line\":{line},"))
                && l.contains("unknown type descriptor")),
            "{object} line {line}:\n{report}"
        );
    }
}

#[tokio::test]
async fn a_schema_whose_key_the_table_does_not_have_is_refused_before_the_job_exists() {
    let rig = Rig::new();
    let mut schema = notes_schema();
    schema.partition_key = vec!["note".into()];
    let request = JobRequest {
        job_id: Some("wrong".into()),
        format: Some(Format::DynamoDbJson),
        schema: Some(schema),
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(Rig::coordinator_config());
    let error = coordinator.start_job(request, None).await.unwrap_err();
    assert!(error.to_string().contains("\"note\""), "{error}");
    assert!(rig.batches().is_empty());
}
