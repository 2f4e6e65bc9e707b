//! One in-memory pipeline for the use cases' tests: the port doubles, a coordinator and a
//! worker wired to them, and a CSV whose notes hold quoted commas, quotes and newlines.

use std::sync::Arc;

use crate::app::config::{CoordinatorConfig, Tables, WorkerConfig};
use crate::app::coordinator::Coordinator;
use crate::app::metrics::MemorySink;
use crate::app::worker::Worker;
use crate::contract::messages::{BatchMessage, ComposeRanges, ControlMessage};
use crate::contract::schema::Schema;
use crate::ingest::item::{Item, Value};
use crate::job::model::Job;
use crate::port::Adapters;
use crate::port::memory::{MemoryLedger, MemoryObjects, MemoryQueues, MemoryTable};
use crate::port::table::RecordTable;

pub const WORK: &str = "work";
pub const CONTROL: &str = "control";
pub const RECORDS: &str = "records";

pub struct Rig {
    pub adapters: Adapters,
    pub ledger: Arc<MemoryLedger>,
    pub objects: Arc<MemoryObjects>,
    pub queues: Arc<MemoryQueues>,
    /// Where the rows land, whatever `RecordTable` wraps it.
    pub table: Arc<MemoryTable>,
}

impl Rig {
    pub fn new() -> Self {
        let table = Arc::new(MemoryTable::new("id", None));
        Self::writing_through(table.clone(), table)
    }

    /// Rows written through `records` (e.g. a slow table) that stores them in `table`.
    pub fn writing_through(table: Arc<MemoryTable>, records: Arc<dyn RecordTable>) -> Self {
        let ledger = Arc::new(MemoryLedger::new());
        let objects = Arc::new(MemoryObjects::new());
        let queues = Arc::new(MemoryQueues::new());
        let adapters = Adapters {
            ledger: ledger.clone(),
            objects: objects.clone(),
            queues: queues.clone(),
            records,
            ..Adapters::memory()
        };
        Self {
            adapters,
            ledger,
            objects,
            queues,
            table,
        }
    }

    /// The coordinator's defaults on the rig's queues; tests change what they exercise.
    pub fn coordinator_config() -> CoordinatorConfig {
        CoordinatorConfig {
            control_queue_url: Some(CONTROL.into()),
            checkpoint_margin: std::time::Duration::ZERO,
            ..CoordinatorConfig::new(tables(), WORK)
        }
    }

    pub fn coordinator(&self, config: CoordinatorConfig) -> Coordinator {
        Coordinator::new(self.adapters.clone(), config)
            .with_metrics(Arc::new(MemorySink::default()))
    }

    /// The worker's defaults on the rig's queues (continuations go back to the work queue).
    pub fn worker_config() -> WorkerConfig {
        WorkerConfig {
            tables: tables(),
            control_queue_url: Some(CONTROL.into()),
            queue_url: Some(WORK.into()),
            ..WorkerConfig::default()
        }
    }

    pub fn worker(&self, config: WorkerConfig) -> Worker {
        Worker::new(self.adapters.clone(), config).with_metrics(Arc::new(MemorySink::default()))
    }

    /// The batch messages sent so far, in batch order (taken off the queue).
    pub fn batches(&self) -> Vec<BatchMessage> {
        let mut batches: Vec<BatchMessage> = (self.queues.drain(WORK).iter())
            .map(|body| serde_json::from_str(body).unwrap())
            .collect();
        batches.sort_by_key(|b| b.batch);
        batches
    }

    /// The compose steps woken so far (taken off the control queue).
    pub fn compose_messages(&self) -> Vec<ComposeRanges> {
        (self.queues.drain(CONTROL).iter())
            .map(|body| match serde_json::from_str(body).unwrap() {
                ControlMessage::Compose(compose) => compose,
                other => panic!("not a compose message: {other:?}"),
            })
            .collect()
    }

    pub async fn job(&self, id: &str) -> Job {
        use crate::fan_in::Ledger;
        self.ledger.get(&id.into()).await.unwrap().unwrap()
    }

    /// (id, note) of every stored row, in key order.
    pub fn rows(&self) -> Vec<(String, String)> {
        let text = |item: &Item, name: &str| match item.get(name) {
            Some(Value::S(s)) => s.clone(),
            _ => String::new(),
        };
        (self.table.items(RECORDS).iter())
            .map(|item| (text(item, "id"), text(item, "note")))
            .collect()
    }
}

fn tables() -> Tables {
    Tables::new(RECORDS, "jobs")
}

/// The schema of [`notes_csv`]: a string key `id` and a nullable string `note`.
pub fn notes_schema() -> Schema {
    serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "note", "type": "string", "nullable": true},
        ],
    }))
    .unwrap()
}

/// The header of [`notes_csv`].
pub const NOTES_HEADER: &str = "id,note\n";

/// `rows` rows `{name}-NNNN,note` and their (id, note). With `quoted`, three notes in four
/// are quoted: a comma, doubled quotes and CRLF inside, dozens of lines, or empty; rows end
/// in LF and CRLF by turns.
pub fn notes_csv(name: &str, rows: usize, quoted: bool) -> (String, Vec<(String, String)>) {
    let mut text = String::from(NOTES_HEADER);
    let mut expected = Vec::new();
    for i in 0..rows {
        let note = match (quoted, i % 4) {
            (true, 0) => format!("line one of {i}\nline two, \"quoted\"\r\nthree"),
            (true, 1) => format!("{}end", "x\n".repeat(30 + i % 7)),
            (true, 2) => String::new(),
            _ => format!("plain {i}"),
        };
        let field = if note.contains(['\n', '"', ',']) {
            format!("\"{}\"", note.replace('"', "\"\""))
        } else {
            note.clone()
        };
        let id = format!("{name}-{i:04}");
        let end = if quoted && i % 2 == 1 { "\r\n" } else { "\n" };
        text.push_str(&format!("{id},{field}{end}"));
        expected.push((id, note));
    }
    (text, expected)
}
