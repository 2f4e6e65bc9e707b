//! Split objects inside a prefix job, on the doubles: one job mixes key batches and the scans
//! and parses of several split objects; each object's scans wake its own compose step, and
//! every row lands once, reading each split object twice and each small one once.

use std::sync::Arc;
use std::time::Duration;

use super::{Composed, Coordinator};
use crate::app::config::{CoordinatorConfig, Tables, WorkerConfig};
use crate::app::metrics::MemorySink;
use crate::app::worker::Worker;
use crate::aws::Adapters;
use crate::contract::messages::{BatchMessage, ControlMessage, JobRequest};
use crate::ingest::item::Value;
use crate::job::model::{Job, JobStatus};
use crate::port::ledger::Ledger;
use crate::port::memory::{MemoryLedger, MemoryObjects, MemoryQueues, MemoryTable};

const WORK: &str = "work";
const CONTROL: &str = "control";

fn schema() -> crate::contract::schema::Schema {
    serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string", "nullable": true},
        ],
    }))
    .unwrap()
}

/// `rows` rows named `{name}-NNNN`; with `quoted`, notes hold commas, quotes and newlines.
fn csv(name: &str, rows: usize, quoted: bool) -> (String, Vec<(String, String)>) {
    let mut text = String::from("id,note\n");
    let mut expected = Vec::new();
    for i in 0..rows {
        let note = match (quoted, i % 3) {
            (true, 0) => format!("one, \"two\"\nthree {i}"),
            (true, 1) => "x\n".repeat(30 + i % 5),
            _ => format!("plain {i}"),
        };
        let field = if note.contains(['\n', '"', ',']) {
            format!("\"{}\"", note.replace('"', "\"\""))
        } else {
            note.clone()
        };
        text.push_str(&format!("{name}-{i:04},{field}\n"));
        expected.push((format!("{name}-{i:04}"), note));
    }
    (text, expected)
}

#[tokio::test]
async fn a_prefix_splits_its_big_plain_csvs_and_loads_every_row_once() {
    let objects = Arc::new(MemoryObjects::new());
    let queues = Arc::new(MemoryQueues::new());
    let table = Arc::new(MemoryTable::new("id", None));
    let ledger = Arc::new(MemoryLedger::new());
    let adapters = Adapters {
        ledger: ledger.clone(),
        objects: objects.clone(),
        queues: queues.clone(),
        records: table.clone(),
        ..Adapters::memory()
    };
    let mut expected = Vec::new();
    let mut input = 0;
    for i in 0..30 {
        let (text, rows) = csv(&format!("s{i:02}"), 3, false);
        input += text.len() as u64;
        objects.insert("b", &format!("in/s{i:02}.csv"), text);
        expected.extend(rows);
    }
    // Two big ones among the small: a quoted one (ranges cut through quoted newlines) and a
    // plain one.
    let mut split_data = 0;
    for (key, name, quoted) in [("in/m-big.csv", "q", true), ("in/z-big.csv", "p", false)] {
        let (text, rows) = csv(name, 200, quoted);
        input += text.len() as u64;
        split_data += (text.len() - "id,note\n".len()) as u64;
        objects.insert("b", key, text);
        expected.extend(rows);
    }
    expected.sort();

    let config = CoordinatorConfig {
        tables: Tables {
            records: "records".into(),
            jobs: "jobs".into(),
        },
        queue_url: WORK.into(),
        batch_size: 8,
        batch_bytes: 1 << 20,
        list_page_size: 7,
        rejects_bucket: None,
        rejects_prefix: "_rejects/".into(),
        trigger: Default::default(),
        range_chunk_bytes: 1024,
        completion_queue_url: None,
        control_queue_url: Some(CONTROL.into()),
        checkpoint_margin: Duration::from_secs(0),
        control_max_receive_count: 5,
        allowed_buckets: vec![],
        on_demand_write_units: 40_000,
    };
    let coordinator =
        Coordinator::new(adapters.clone(), config).with_metrics(Arc::new(MemorySink::default()));
    let worker_config = WorkerConfig {
        tables: Tables {
            records: "records".into(),
            jobs: "jobs".into(),
        },
        control_queue_url: Some(CONTROL.into()),
        ..WorkerConfig::default()
    };
    let worker =
        Worker::new(adapters.clone(), worker_config).with_metrics(Arc::new(MemorySink::default()));
    let request = JobRequest {
        job_id: Some("mixed".into()),
        schema: Some(schema()),
        ..JobRequest::new("b", "in/")
    };
    let started = coordinator.start_job(request, None).await.unwrap();

    let mut numbers = Vec::new();
    let mut composed = 0;
    let mut job: Job;
    loop {
        let batches: Vec<BatchMessage> = (queues.drain(WORK).iter())
            .map(|body| serde_json::from_str(body).unwrap())
            .collect();
        for batch in &batches {
            numbers.push(batch.batch.get());
            worker.process_batch(batch, None).await.unwrap();
        }
        for body in queues.drain(CONTROL) {
            let ControlMessage::Compose(compose) = serde_json::from_str(&body).unwrap() else {
                panic!("only compose messages: {body}");
            };
            if let Composed::Enqueued { .. } = coordinator.compose_ranges(&compose).await.unwrap() {
                composed += 1;
            }
        }
        job = ledger.get(&"mixed".into()).await.unwrap().unwrap();
        if job.status.is_final() || batches.is_empty() && queues.drain(CONTROL).is_empty() {
            break;
        }
    }
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(composed, 2, "one compose per split object");
    numbers.sort();
    assert_eq!(
        numbers,
        (0..started.total_batches).collect::<Vec<_>>(),
        "every batch number once: key batches, scans and parses of both objects"
    );
    let ranges: u64 = (started.total_batches - 30u64.div_ceil(8)) / 2;
    assert!(ranges > 10, "{ranges} ranges in all");
    assert_eq!(job.totals.rows_written, 30 * 3 + 400);
    assert_eq!(job.totals.rows_rejected, 0);
    // Small objects once, split ones' data twice (scans + row spans), their headers never.
    assert_eq!(
        job.totals.bytes_read,
        input - 2 * 8 - split_data + 2 * split_data
    );
    assert!(job.totals.bytes_read as f64 <= 2.1 * input as f64);
    let got: Vec<(String, String)> = (table.items("records").iter())
        .map(|item| {
            let text = |name: &str| match item.get(name) {
                Some(Value::S(s)) => s.clone(),
                _ => String::new(),
            };
            (text("id"), text("note"))
        })
        .collect();
    assert_eq!(got, expected, "every row once, byte for byte");
}
