//! Duplicate keys with one defined winner (`worker::lanes`): a table double whose every call
//! takes a random time (up to 2 s, in paused time) reorders concurrent writes; rows of one
//! key, adjacent, across chunks and across resumed parts, still give the table a sequential
//! load would, in every mode, in 20 runs of different timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Processed, Worker};
use crate::app::config::{CoordinatorConfig, WorkerConfig};
use crate::app::test_rig::{RECORDS, Rig};
use crate::contract::messages::{BatchMessage, JobRequest};
use crate::contract::schema::Schema;
use crate::contract::write::{WriteMode, WriteOptions, WriteRate};
use crate::ingest::item::{Item, Value};
use crate::port::memory::MemoryTable;
use crate::port::table::{Inserted, KeyNames, RecordTable, TableDescription, WriteError};

const ROWS: usize = 1500;
/// 300 keys, each on two adjacent rows, again every 600 rows (other chunks, other parts).
fn key(i: usize) -> String {
    format!("k{:03}", (i / 2) % 300)
}

/// Row `i`'s attributes: `a` on two rows in three, `b` on even rows (an empty field is
/// omitted), so a merge, a put and an insert each leave a different item.
fn attrs(i: usize) -> (Option<String>, Option<String>) {
    (
        (i % 3 != 2).then(|| format!("a{i}")),
        i.is_multiple_of(2).then(|| format!("b{i}")),
    )
}

fn csv() -> String {
    let mut text = String::from("id,a,b\n");
    for i in 0..ROWS {
        let (a, b) = attrs(i);
        text.push_str(&format!(
            "{},{},{}\n",
            key(i),
            a.unwrap_or_default(),
            b.unwrap_or_default()
        ));
    }
    text
}

fn schema() -> Schema {
    serde_json::from_value(serde_json::json!({
        "partition_key": ["id"],
        "columns": [
            {"name": "id", "type": "string"},
            {"name": "a", "type": "string", "nullable": true},
            {"name": "b", "type": "string", "nullable": true},
        ],
    }))
    .unwrap()
}

/// The table a sequential load leaves: put keeps a key's last row, insert its first,
/// update merges its rows in order, delete removes it (a key not in the file stays).
fn sequential(mode: WriteMode) -> Vec<(String, Option<String>, Option<String>)> {
    let mut table = std::collections::BTreeMap::new();
    table.insert("other".to_owned(), (Some("x".to_owned()), None));
    for i in 0..ROWS {
        let (a, b) = attrs(i);
        match mode {
            WriteMode::Put => {
                table.insert(key(i), (a, b));
            }
            WriteMode::Insert => {
                table.entry(key(i)).or_insert((a, b));
            }
            WriteMode::Update => {
                let item = table.entry(key(i)).or_insert((None, None));
                item.0 = a.or(item.0.take());
                item.1 = b.or(item.1.take());
            }
            WriteMode::Delete => {
                table.remove(&key(i));
            }
        }
    }
    table.into_iter().map(|(k, (a, b))| (k, a, b)).collect()
}

/// A memory table whose every call first waits a pseudo-random 0..2 s.
struct Jittery {
    inner: Arc<MemoryTable>,
    state: AtomicU64,
}

impl Jittery {
    async fn wait(&self) {
        let mut x = self.state.load(Ordering::Relaxed);
        // xorshift64: a different seed per run, a different order of completions.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(x % 2000)).await;
    }
}

#[async_trait::async_trait]
impl RecordTable for Jittery {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        self.wait().await;
        self.inner.batch_put(table, items).await
    }

    async fn batch_delete(
        &self,
        table: &str,
        key: &KeyNames,
        keys: &[&Item],
    ) -> Result<Vec<Item>, WriteError> {
        self.wait().await;
        self.inner.batch_delete(table, key, keys).await
    }

    async fn put_if_absent(
        &self,
        table: &str,
        key: &KeyNames,
        item: Item,
    ) -> Result<Inserted, WriteError> {
        self.wait().await;
        self.inner.put_if_absent(table, key, item).await
    }

    async fn update(&self, table: &str, key: &KeyNames, item: Item) -> Result<(), WriteError> {
        self.wait().await;
        self.inner.update(table, key, item).await
    }

    async fn describe(&self, table: &str) -> Result<TableDescription, WriteError> {
        self.inner.describe(table).await
    }
}

/// Runs a batch part after part (10 s invocations, paced to 100 units/s: ~600 rows each).
async fn run_chain(worker: &Worker, mut batch: BatchMessage) -> usize {
    for parts in 1..=50 {
        let deadline = Instant::now() + Duration::from_secs(10);
        match worker.process(&batch, Some(deadline)).await.unwrap() {
            Processed::Counted(_) => return parts,
            Processed::Continued(next) => batch = *next,
            Processed::Shared => unreachable!("no inflated object here"),
        }
    }
    panic!("the batch never finished");
}

/// One load of the file in `mode` with timing `seed`: the table, and the parts it took.
async fn load(
    mode: WriteMode,
    seed: u64,
) -> (Vec<(String, Option<String>, Option<String>)>, usize) {
    let table = Arc::new(MemoryTable::new("id", None));
    let jittery = Arc::new(Jittery {
        inner: table.clone(),
        state: AtomicU64::new(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
    });
    let rig = Rig::writing_through(table.clone(), jittery);
    let mut existing: Vec<Item> = (0..300)
        .map(|i| Item::from_iter([("id".to_owned(), Value::S(format!("k{i:03}")))]))
        .filter(|_| mode == WriteMode::Delete)
        .collect();
    existing.push(Item::from_iter([
        ("id".to_owned(), Value::S("other".into())),
        ("a".to_owned(), Value::S("x".into())),
    ]));
    table
        .batch_put(RECORDS, &existing.iter().collect::<Vec<_>>())
        .await
        .unwrap();
    rig.objects.insert("b", "in/dups.csv", csv());
    let request = JobRequest {
        job_id: Some("dups".into()),
        schema: Some(schema()),
        write: WriteOptions {
            write_mode: mode,
            max_write_rate: Some(WriteRate::Units(100.0)),
            ..WriteOptions::default()
        },
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        control_queue_url: None,
        ..Rig::coordinator_config()
    });
    coordinator.start_job(request, None).await.unwrap();
    let worker = rig.worker(WorkerConfig {
        resume_margin: Duration::from_secs(4),
        ..Rig::worker_config()
    });
    let batch = rig.batches().remove(0);
    let parts = run_chain(&worker, batch).await;
    let totals = rig.job("dups").await.totals;
    assert_eq!(totals.rows_read(), ROWS as u64, "{mode:?}: {totals:?}");
    // Within a part each key counts once: at most 300 keys a part are not duplicates.
    assert!(
        totals.rows_duplicate >= (ROWS - 300 * parts) as u64,
        "{mode:?}: {totals:?} in {parts} parts"
    );
    let text = |item: &Item, name: &str| match item.get(name) {
        Some(Value::S(s)) => Some(s.clone()),
        _ => None,
    };
    let mut rows: Vec<_> = (table.items(RECORDS).iter())
        .map(|item| (text(item, "id").unwrap(), text(item, "a"), text(item, "b")))
        .collect();
    rows.sort();
    (rows, parts)
}

async fn same_winner_in_20_runs(mode: WriteMode) {
    let expected = sequential(mode);
    for seed in 0..20 {
        let (table, parts) = load(mode, seed).await;
        assert!(parts >= 2, "{mode:?}: the file spans parts ({parts})");
        assert!(
            table == expected,
            "{mode:?}, run {seed}: not the sequential load's table"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn duplicate_keys_put_the_later_row_in_every_run() {
    same_winner_in_20_runs(WriteMode::Put).await;
}

#[tokio::test(start_paused = true)]
async fn duplicate_keys_insert_the_first_row_in_every_run() {
    same_winner_in_20_runs(WriteMode::Insert).await;
}

#[tokio::test(start_paused = true)]
async fn duplicate_keys_update_merges_rows_in_order_in_every_run() {
    same_winner_in_20_runs(WriteMode::Update).await;
}

#[tokio::test(start_paused = true)]
async fn duplicate_keys_delete_every_listed_key_in_every_run() {
    same_winner_in_20_runs(WriteMode::Delete).await;
}
