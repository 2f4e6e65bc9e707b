//! A chunk of up to 25 rows, written as the job's write mode says: puts and deletes in one
//! BatchWriteItem, inserts and updates one item at a time ([`single`]). Every attempt first
//! takes its write units from the job's rate pacer, when the job is capped: a first attempt
//! waits for the slots its rows booked as they were decoded, a retry books anew; a slot
//! that would begin past the deadline fails the write instead of sleeping past it.
//!
//! BatchWriteItem with UnprocessedItems retried. DynamoDB returns throttled puts in
//! `UnprocessedItems` on a *successful* response, which the SDK's retries never see; dropping
//! them silently loses rows, so every one is retried with backoff until the deadline, or the
//! call fails. Each call holds a permit of the write limiter, and unprocessed items count as
//! throttling there, so a throttled table gets fewer calls in flight, not more.
//!
//! Defence in depth: typing checks DynamoDB's limits, but should a request still be refused
//! as invalid (a ValidationException writes none of it), the request is split in halves and
//! each half retried, down to single rows; only the rows refused alone are rejected, with the
//! table's message as the reason, and every other row lands. One bad row in 25 costs about
//! 2·log2(25) ≈ 10 extra calls; a clean chunk costs nothing extra.

mod single;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::contract::write::WriteMode;
use crate::ingest::decode::{MAX_RAW_BYTES, RowReject};
use crate::ingest::item::Item;
use crate::ingest::rejects::BatchRejects;
use crate::ingest::typing::TypedRow;
use crate::ingest::typing::error::cap;
use crate::ingest::typing::size::item_size;
use crate::limiter::{AimdLimiter, RatePacer};
use crate::port::table::{KeyNames, RecordTable, WriteError};
use crate::retry::partial_failure_backoff;

/// DynamoDB's cap on requests per BatchWriteItem.
pub const MAX_BATCH_ITEMS: usize = 25;

/// A typed row and the object it came from, so a row the table refuses is reported like any
/// other rejected row.
#[derive(Debug, Clone)]
pub struct SourcedRow {
    pub object: Arc<str>,
    /// Read from a range of its object: its reject then carries the byte offset.
    pub ranged: bool,
    /// When the row's first write may begin, booked from the job's pacer as it was decoded
    /// (`loader::Pacing`); `None`: unbooked (uncapped, or the writer books it).
    pub slot: Option<Instant>,
    pub row: TypedRow,
    /// `lanes::key_hash` of the row's key: rows of one key compare equal on it first.
    pub key_hash: u64,
}

impl SourcedRow {
    /// Whether the two rows are of one key (the hash tells most keys apart without a
    /// string comparison).
    fn same_key(&self, other: &SourcedRow) -> bool {
        self.key_hash == other.key_hash && self.row.key == other.row.key
    }
}

/// What writes did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: u64,
    /// Rows whose key an earlier row of the part had (`worker::lanes`): dropped or
    /// overwritten (put, delete: the later row wins), never sent (insert: the first wins),
    /// or merged into the item (update); `written` counts the item once.
    pub duplicates: u64,
    /// Rows the table refused as invalid, each alone (reported as rejects).
    pub rejected: u64,
    /// Retry rounds for UnprocessedItems (and throttled single writes).
    pub retries: u64,
    /// Insert mode: rows whose key held an item already (not written, not rejected).
    pub existing: u64,
    /// Write units taken for every attempt (see [`units`]).
    pub units: u64,
}

impl std::ops::AddAssign for WriteOutcome {
    fn add_assign(&mut self, other: Self) {
        self.written += other.written;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.retries += other.retries;
        self.existing += other.existing;
        self.units += other.units;
    }
}

/// The write units DynamoDB bills for writing `item`: one per started KB. Inserts that find
/// their key taken are billed the same (a failed condition still consumes the write); an
/// update is billed for the larger of the old and new item and a delete for the deleted
/// item, which the writer cannot know: it counts the row's own size (a key, for a delete).
pub fn units(item: &Item) -> u64 {
    units_of_size(item_size(item))
}

/// The write units of an item of `size` bytes.
pub fn units_of_size(size: usize) -> u64 {
    (size.div_ceil(1024) as u64).max(1)
}

/// Where and how chunks are written.
pub struct ChunkWriter<'a> {
    pub table: &'a dyn RecordTable,
    pub table_name: &'a str,
    /// The table's key attributes (the job's schema).
    pub key: &'a KeyNames,
    pub mode: WriteMode,
    /// The job's rate cap, this worker's share of it; `None`: uncapped.
    pub pacer: Option<&'a RatePacer>,
    /// An attribute a redelivery computes anew (a TTL counted from the load): an insert
    /// ignores it when telling its own earlier write from someone else's item.
    pub recomputed: Option<&'a str>,
    pub limiter: &'a AimdLimiter,
    /// Retries stop before this instant (the Lambda deadline less a margin); without one,
    /// after the backoff schedule's ten retries.
    pub deadline: Option<Instant>,
    /// Where rows the table refuses are reported.
    pub rejects: &'a Mutex<BatchRejects>,
}

/// Why a put of some rows stopped, and the rows it had not written.
struct Stopped {
    rows: Vec<SourcedRow>,
    error: WriteError,
}

impl ChunkWriter<'_> {
    /// The units one write of `row` takes from the pacer: a delete is charged for its key.
    pub fn charge(&self, row: &TypedRow) -> u64 {
        match self.mode {
            WriteMode::Delete => units(&self.key.key_of(&row.item)),
            _ => units_of_size(row.size),
        }
    }

    /// Waits until `rows` (one call's rows, `charged` units) may be written: a first
    /// attempt of booked rows for the latest of their slots (so a call never runs ahead of
    /// the schedule), anything else for a new slot. Returns false, without waiting, if
    /// that slot would begin past the deadline: the write cannot finish in time.
    async fn paced(&self, rows: &[SourcedRow], charged: u64, first: bool) -> bool {
        let Some(pacer) = self.pacer else {
            return true;
        };
        let booked = first && rows.iter().all(|row| row.slot.is_some());
        match rows.iter().filter_map(|row| row.slot).max() {
            Some(slot) if booked => {
                pacer.wait_for(slot).await;
                true
            }
            _ => pacer.take_before(charged, self.deadline).await,
        }
    }

    /// Writes up to 25 rows by the job's mode, retrying throttled writes with backoff and
    /// isolating rows the table refuses.
    pub async fn write(&self, chunk: Vec<SourcedRow>) -> Result<WriteOutcome, WriteError> {
        debug_assert!(chunk.len() <= MAX_BATCH_ITEMS);
        let total = chunk.len();
        // Rows of one key, in row order: the later wins a put or delete (and BatchWriteItem
        // takes a key once), the first an insert, an update merges every one in turn.
        let (rows, distinct) = match self.mode {
            WriteMode::Put | WriteMode::Delete => {
                let rows = last_wins_by_key(chunk);
                let distinct = rows.len();
                (rows, distinct)
            }
            WriteMode::Insert => {
                let rows = first_wins_by_key(chunk);
                let distinct = rows.len();
                (rows, distinct)
            }
            WriteMode::Update => {
                let distinct = distinct_keys(&chunk);
                (chunk, distinct)
            }
        };
        let mut outcome = WriteOutcome {
            written: distinct as u64,
            duplicates: (total - distinct) as u64,
            ..WriteOutcome::default()
        };
        match self.mode {
            // An incremental export's changes: its puts, then its deletes (a key appears
            // once per export, so the two never touch the same item).
            WriteMode::Put if rows.iter().any(|r| r.row.delete) => {
                let (deletes, puts): (Vec<_>, Vec<_>) =
                    rows.into_iter().partition(|r| r.row.delete);
                self.write_batched(puts, &mut outcome).await?;
                let deleter = ChunkWriter {
                    mode: WriteMode::Delete,
                    ..*self
                };
                deleter.write_batched(deletes, &mut outcome).await?;
            }
            WriteMode::Put | WriteMode::Delete => self.write_batched(rows, &mut outcome).await?,
            WriteMode::Insert | WriteMode::Update => self.write_each(rows, &mut outcome).await?,
        }
        Ok(outcome)
    }

    /// One BatchWriteItem of puts or deletes; a refused request is split in halves down to
    /// the rows refused alone.
    async fn write_batched(
        &self,
        rows: Vec<SourcedRow>,
        outcome: &mut WriteOutcome,
    ) -> Result<(), WriteError> {
        // An empty request is invalid, and halving it would never end (a chunk of an
        // incremental export can hold only deletes, or only puts).
        if rows.is_empty() {
            return Ok(());
        }
        let mut delays = partial_failure_backoff(self.deadline.is_some());
        let mut groups = vec![rows];
        // Only the chunk as decoded holds booked slots: halves sent again book anew.
        let mut first = true;
        while let Some(group) = groups.pop() {
            let sent = self.put_all(group, &mut delays, outcome, first).await;
            first = false;
            let Err(stopped) = sent else {
                continue;
            };
            let Stopped { mut rows, error } = stopped;
            match error {
                WriteError::Refused { message, .. } if rows.len() == 1 => {
                    outcome.written -= 1;
                    outcome.rejected += 1;
                    self.reject(rows.remove(0), &message);
                }
                WriteError::Refused { .. } => {
                    tracing::debug!(rows = rows.len(), "write refused as invalid; splitting it");
                    let half = rows.split_off(rows.len() / 2);
                    groups.push(half);
                    groups.push(rows);
                }
                error => return Err(error),
            }
        }
        Ok(())
    }

    /// Puts (or deletes) `pending` until no item is left unprocessed.
    async fn put_all(
        &self,
        mut pending: Vec<SourcedRow>,
        delays: &mut impl Iterator<Item = Duration>,
        outcome: &mut WriteOutcome,
        mut first: bool,
    ) -> Result<(), Stopped> {
        loop {
            // Lent, not moved: a refused request must be split and sent again.
            let items: Vec<&Item> = pending.iter().map(|r| &r.row.item).collect();
            let charged: u64 = pending.iter().map(|r| self.charge(&r.row)).sum();
            if !self.paced(&pending, charged, first).await {
                let error = self.out_of_time(pending.len(), outcome);
                return Err(Stopped {
                    rows: pending,
                    error,
                });
            }
            // A retry of unprocessed items is billed again: it books anew.
            first = false;
            outcome.units += charged;
            let permit = self.limiter.acquire().await;
            let sent = match self.mode {
                WriteMode::Delete => {
                    self.table
                        .batch_delete(self.table_name, self.key, &items)
                        .await
                }
                _ => self.table.batch_put(self.table_name, &items).await,
            };
            match sent {
                Ok(unprocessed) if unprocessed.is_empty() => {
                    permit.succeeded();
                    return Ok(());
                }
                Ok(unprocessed) => {
                    permit.throttled();
                    pending = still_pending(pending, &unprocessed, self.key);
                }
                // The whole call throttled past the SDK's retries: every item is still due.
                Err(WriteError::Throttled { .. }) => permit.throttled(),
                Err(error) => {
                    return Err(Stopped {
                        rows: pending,
                        error,
                    });
                }
            }
            let delay = delays.next().filter(|delay| {
                self.deadline
                    .is_none_or(|deadline| Instant::now() + *delay < deadline)
            });
            let Some(delay) = delay else {
                let error = self.out_of_time(pending.len(), outcome);
                return Err(Stopped {
                    rows: pending,
                    error,
                });
            };
            outcome.retries += 1;
            tracing::debug!(
                unprocessed = pending.len(),
                ?delay,
                "retrying UnprocessedItems"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// The error of a write whose next attempt could not finish before the deadline.
    fn out_of_time(&self, left: usize, outcome: &WriteOutcome) -> WriteError {
        WriteError::RetriesExhausted {
            table: self.table_name.to_owned(),
            left,
            retries: outcome.retries,
        }
    }

    /// Reports a row the table refused alone; its raw text is the item, as JSON (capped).
    fn reject(&self, sourced: SourcedRow, message: &str) {
        let raw: serde_json::Map<String, serde_json::Value> = sourced
            .row
            .item
            .iter()
            .map(|(name, value)| (name.clone(), value.to_json()))
            .collect();
        let reject = RowReject {
            line: sourced.row.line,
            byte_offset: sourced.ranged.then_some(sourced.row.offset),
            reason: format!("DynamoDB refused the item: {message}"),
            raw: cap(&serde_json::Value::Object(raw).to_string(), MAX_RAW_BYTES),
        };
        self.rejects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .row(&sourced.object, reject);
    }
}

/// The rows whose items (or, for deletes, keys) came back unprocessed, told by key: keys
/// are distinct within a chunk. At most 25 each way, so pairwise is fine.
fn still_pending(
    pending: Vec<SourcedRow>,
    unprocessed: &[Item],
    key: &KeyNames,
) -> Vec<SourcedRow> {
    let mut left: Vec<Item> = unprocessed.iter().map(|item| key.key_of(item)).collect();
    pending
        .into_iter()
        .filter(|row| {
            let row_key = key.key_of(&row.row.item);
            match left.iter().position(|item| *item == row_key) {
                Some(i) => {
                    left.swap_remove(i);
                    true
                }
                None => false,
            }
        })
        .collect()
}

/// Keeps the first row for each key, in row order.
fn first_wins_by_key(chunk: Vec<SourcedRow>) -> Vec<SourcedRow> {
    let mut unique: Vec<SourcedRow> = Vec::with_capacity(chunk.len());
    for row in chunk {
        if !unique.iter().any(|u| u.same_key(&row)) {
            unique.push(row);
        }
    }
    unique
}

/// How many keys the rows hold.
fn distinct_keys(rows: &[SourcedRow]) -> usize {
    (0..rows.len())
        .filter(|&i| !rows[..i].iter().any(|r| r.same_key(&rows[i])))
        .count()
}

/// Keeps the last row for each key, in first-seen order (a chunk is at most 25 rows, so a
/// scan is cheaper than hashing).
fn last_wins_by_key(chunk: Vec<SourcedRow>) -> Vec<SourcedRow> {
    let mut unique: Vec<SourcedRow> = Vec::with_capacity(chunk.len());
    for row in chunk {
        match unique.iter().position(|u| u.same_key(&row)) {
            Some(i) => unique[i] = row,
            None => unique.push(row),
        }
    }
    unique
}

#[cfg(test)]
mod tests;
