//! What crosses the wire: the request that starts a job and the batch message a worker gets.

use serde::{Deserialize, Serialize};

use crate::contract::completion::BatchStats;
use crate::contract::format::Format;
use crate::contract::ids::{BatchNo, JobId};
use crate::contract::inventory::{ComposeInventory, InventoryOptions, InventoryTask};
use crate::contract::rejects::{RejectTolerance, ReportLocation};
use crate::contract::schema::Schema;
use crate::contract::write::WriteOptions;

/// A job to start: every loadable (CSV or JSON Lines) object under `prefix` (`{"bucket": "...", "prefix": "data/"}`),
/// or one object (`{"bucket": "...", "key": "data/big.csv"}`); optionally with a job id, a
/// schema (the sensor schema otherwise), a format (by each key's suffix otherwise) and a
/// reject tolerance (unlimited otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// One object instead of a prefix listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Optional caller-chosen id; a fresh time-ordered id otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// How every object is read (`"csv"` | `"jsonl"`); absent: by each key's suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_rejects: Option<RejectTolerance>,
    /// The table to load into, among those the deployment allows; absent: its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Write mode and rate cap (`write_mode`, `max_write_rate`): put, uncapped otherwise.
    #[serde(flatten)]
    pub write: WriteOptions,
    /// A DynamoDB S3 export to apply (its `manifest-summary.json` key, or its folder)
    /// instead of a prefix listing; or a chain of them (a list: a full export, then
    /// incrementals), or a folder holding several (`docs/exports.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportNames>,
    /// An S3 Inventory report (`inventory`: its manifest.json key) instead of a prefix
    /// listing, with an optional key filter (`docs/inventory.md`).
    #[serde(flatten)]
    pub inventory: InventoryOptions,
}

impl JobRequest {
    pub fn new(bucket: &str, prefix: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            key: None,
            job_id: None,
            schema: None,
            format: None,
            tolerated_rejects: None,
            table: None,
            write: WriteOptions::default(),
            export: None,
            inventory: InventoryOptions::default(),
        }
    }
}

/// What the coordinator is invoked with: a job to start, an S3 notification, the scheduled
/// stuck-job check (`{"check_stuck_jobs": {"older_than_seconds": 3600}}`), or an SQS event
/// from its control queue carrying [`ContinueListing`] messages (a long listing continuing).
#[derive(Debug, Clone, PartialEq)]
// One per invocation, never in a collection: boxing the job request would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum CoordinatorRequest {
    CheckStuckJobs { check_stuck_jobs: StuckJobCheck },
    Job(JobRequest),
    S3(aws_lambda_events::event::s3::S3Event),
    Control(aws_lambda_events::event::sqs::SqsEvent),
}

impl<'de> Deserialize<'de> for CoordinatorRequest {
    /// S3 and SQS events both hold `Records`; each record's `eventSource` tells them apart.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        let source = value
            .pointer("/Records/0/eventSource")
            .and_then(|s| s.as_str());
        let parsed = if source == Some("aws:sqs") {
            serde_json::from_value(value).map(CoordinatorRequest::Control)
        } else if value.get("Records").is_some() {
            serde_json::from_value(value).map(CoordinatorRequest::S3)
        } else if let Some(check) = value.get("check_stuck_jobs") {
            serde_json::from_value(check.clone())
                .map(|check_stuck_jobs| CoordinatorRequest::CheckStuckJobs { check_stuck_jobs })
        } else {
            serde_json::from_value(value).map(CoordinatorRequest::Job)
        };
        parsed.map_err(D::Error::custom)
    }
}

/// A control-queue message: invocation `invocation` of a paused listing should resume it
/// from the checkpoint in the job item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinueListing {
    pub job_id: JobId,
    pub invocation: u32,
}

/// A control-queue message of phase two of a split object: every scan of `object` is
/// counted, so the coordinator composes them and enqueues the parse batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComposeRanges {
    pub job_id: JobId,
    pub compose: SplitObject,
}

/// A request's `export`: one name (a `manifest-summary.json` key, or a folder holding one
/// export or several), or a list of them applied in its order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ExportNames {
    One(String),
    Chain(Vec<String>),
}

impl ExportNames {
    /// The names as given, in order.
    pub fn names(&self) -> &[String] {
        match self {
            ExportNames::One(name) => std::slice::from_ref(name),
            ExportNames::Chain(names) => names,
        }
    }
}

impl From<&str> for ExportNames {
    fn from(name: &str) -> Self {
        ExportNames::One(name.to_owned())
    }
}

impl From<Vec<String>> for ExportNames {
    fn from(names: Vec<String>) -> Self {
        ExportNames::Chain(names)
    }
}

impl From<String> for ExportNames {
    fn from(name: String) -> Self {
        ExportNames::One(name)
    }
}

/// A control-queue message of an export chain: phase `export_phase` (the chain's export of
/// that index) should start once every batch before it is counted (`docs/exports.md`). The
/// first delivery records the phase in the job item (the fence) and sends this message to
/// itself again delayed by the fence wait; the delivery that finds the fence older than the
/// wait sends the phase's batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportPhaseStep {
    pub job_id: JobId,
    pub export_phase: u32,
}

/// Any control-queue message (told apart by their fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ControlMessage {
    ExportPhase(ExportPhaseStep),
    ComposeInventory(ComposeInventory),
    Compose(ComposeRanges),
    Continue(ContinueListing),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StuckJobCheck {
    /// A job RUNNING for longer than this is stuck.
    pub older_than_seconds: u64,
}

/// One SQS message: one worker batch of one job. `work` says what the batch does, with
/// exactly its own fields; the rest is the job's context, the same for every kind of work.
/// On the wire it is version [`BATCH_MESSAGE_VERSION`] (`"v"`): see [`wire`] for how older
/// messages are still read and newer ones refused.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "wire::Incoming")]
pub struct BatchMessage {
    pub job_id: JobId,
    pub batch: BatchNo,
    pub bucket: String,
    pub work: Work,
    /// The job's schema; absent means the default sensor schema.
    pub schema: Option<Schema>,
    /// The job's format; absent: by each key's suffix (and from older coordinators).
    pub format: Option<Format>,
    /// The table this batch loads into; absent: the deployment's default.
    pub table: Option<String>,
    /// Where this batch's rejects report goes.
    pub report: ReportLocation,
    /// The job's write mode and resolved rate cap.
    pub write: WriteOptions,
    /// A later part of this batch: an earlier invocation stopped before its deadline and
    /// handed on what it had not done (`work` then holds only what is left).
    pub resumed: Option<Resumed>,
}

/// The kinds of work a batch can be: each with exactly its own fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// Whole objects, each read from its first byte (or its next row when resumed).
    Objects { keys: Vec<String> },
    /// An export's data files (DynamoDB JSON), with the items each must hold.
    Export {
        keys: Vec<String>,
        files: ExportFiles,
    },
    /// One byte range of one large object: its rows, exactly.
    Range(RangeTask),
    /// Row groups of one large Parquet object.
    RowGroups(RowGroupTask),
    /// Phase one of a split object: scan one range (no rows are loaded).
    Scan(ScanTask),
    /// An inventory job's count (phase one) or emit (phase two, `emit` set) of one data
    /// file (`docs/inventory.md`): no rows are loaded.
    Inventory(InventoryTask),
    /// Objects an S3 Inventory listed: whole objects, except that one gone since the report
    /// (404) is counted missing, not failed.
    InventoryObjects { keys: Vec<String> },
    /// A large compressed object, decoded once and written as plain parts to a scratch
    /// prefix (`docs/compressed.md`): no rows are loaded here.
    Inflate(InflateTask),
    /// One plain part of an inflated object: its rows, as a range of the scratch object,
    /// under the object's own batch number.
    InflatedPart(PartTask),
}

impl Work {
    /// The objects a key batch names (none for the other kinds).
    pub fn keys(&self) -> &[String] {
        match self {
            Work::Objects { keys }
            | Work::Export { keys, .. }
            | Work::InventoryObjects { keys } => keys,
            Work::Range(_)
            | Work::RowGroups(_)
            | Work::Scan(_)
            | Work::Inventory(_)
            | Work::Inflate(_)
            | Work::InflatedPart(_) => &[],
        }
    }

    /// The inventory step this batch is, if it is one.
    pub fn inventory(&self) -> Option<&InventoryTask> {
        match self {
            Work::Inventory(task) => Some(task),
            _ => None,
        }
    }

    /// Whether its objects come from an S3 Inventory (a 404 is missing, not failed).
    pub fn listed_by_inventory(&self) -> bool {
        matches!(self, Work::InventoryObjects { .. })
    }

    /// The scan this batch is, if it is one.
    pub fn scan(&self) -> Option<&ScanTask> {
        match self {
            Work::Scan(scan) => Some(scan),
            _ => None,
        }
    }

    /// The export files' manifest counts, for an export batch.
    pub fn export(&self) -> Option<&ExportFiles> {
        match self {
            Work::Export { files, .. } => Some(files),
            _ => None,
        }
    }
}

/// The version of [`BatchMessage`] this build writes (`"v"` on the wire).
pub const BATCH_MESSAGE_VERSION: u32 = 2;

/// The batch message on the wire. Version 2 names its work in `"work"`. A message without
/// `"v"` is version 1 (the optional `keys`/`range`/`row_groups`/`scan`/`export` fields of
/// coordinators before the change): it is still read, each shape mapped to its work exactly
/// as those workers read it (a scan first, then a range, row groups, an export, else keys),
/// so batches in flight across a deploy load. A version above this build's is refused with
/// the reason, never guessed at: the message fails and is redelivered, then dead-lettered
/// and kept for a redrive once the newer worker runs.
pub mod wire {
    use super::*;

    #[derive(Deserialize)]
    pub struct Incoming {
        #[serde(default)]
        v: Option<u32>,
        job_id: JobId,
        batch: BatchNo,
        bucket: String,
        #[serde(default)]
        work: Option<Work>,
        #[serde(default)]
        schema: Option<Schema>,
        #[serde(default)]
        format: Option<Format>,
        #[serde(default)]
        table: Option<String>,
        report: ReportLocation,
        #[serde(flatten)]
        write: WriteOptions,
        #[serde(default)]
        resumed: Option<Resumed>,
        // Version 1's shapes.
        #[serde(default)]
        keys: Vec<String>,
        #[serde(default)]
        range: Option<RangeTask>,
        #[serde(default)]
        row_groups: Option<RowGroupTask>,
        #[serde(default)]
        scan: Option<ScanTask>,
        #[serde(default)]
        export: Option<ExportFiles>,
    }

    #[derive(Serialize)]
    pub(super) struct Outgoing<'a> {
        v: u32,
        job_id: &'a JobId,
        batch: BatchNo,
        bucket: &'a str,
        work: &'a Work,
        #[serde(skip_serializing_if = "Option::is_none")]
        schema: Option<&'a Schema>,
        #[serde(skip_serializing_if = "Option::is_none")]
        format: Option<Format>,
        #[serde(skip_serializing_if = "Option::is_none")]
        table: Option<&'a str>,
        report: &'a ReportLocation,
        #[serde(flatten)]
        write: &'a WriteOptions,
        #[serde(skip_serializing_if = "Option::is_none")]
        resumed: Option<&'a Resumed>,
    }

    impl<'a> From<&'a BatchMessage> for Outgoing<'a> {
        fn from(m: &'a BatchMessage) -> Self {
            Outgoing {
                v: BATCH_MESSAGE_VERSION,
                job_id: &m.job_id,
                batch: m.batch,
                bucket: &m.bucket,
                work: &m.work,
                schema: m.schema.as_ref(),
                format: m.format,
                table: m.table.as_deref(),
                report: &m.report,
                write: &m.write,
                resumed: m.resumed.as_ref(),
            }
        }
    }

    impl TryFrom<Incoming> for BatchMessage {
        type Error = String;

        fn try_from(m: Incoming) -> Result<Self, String> {
            let legacy = !m.keys.is_empty()
                || m.range.is_some()
                || m.row_groups.is_some()
                || m.scan.is_some()
                || m.export.is_some();
            let work = match (m.v, m.work) {
                (Some(BATCH_MESSAGE_VERSION), Some(_)) if legacy => {
                    return Err(format!(
                        "a version {BATCH_MESSAGE_VERSION} batch message names its work in \"work\" only, not in version 1's keys/range/row_groups/scan/export"
                    ));
                }
                (Some(BATCH_MESSAGE_VERSION), Some(work)) => work,
                (Some(BATCH_MESSAGE_VERSION), None) => {
                    return Err("a version 2 batch message lacks its \"work\"".into());
                }
                (None | Some(1), None) => match (m.scan, m.range, m.row_groups, m.export) {
                    (Some(scan), ..) => Work::Scan(scan),
                    (None, Some(range), ..) => Work::Range(range),
                    (None, None, Some(groups), _) => Work::RowGroups(groups),
                    (None, None, None, Some(files)) => Work::Export {
                        keys: m.keys,
                        files,
                    },
                    (None, None, None, None) => Work::Objects { keys: m.keys },
                },
                (None | Some(1), Some(_)) => {
                    return Err("a version 1 batch message has no \"work\" field".into());
                }
                (Some(v), _) => {
                    return Err(format!(
                        "batch message version {v} is not one this worker reads (1 and {BATCH_MESSAGE_VERSION}): a newer coordinator wrote it; it fails here and is kept by the dead-letter queue for a redrive once the newer worker runs"
                    ));
                }
            };
            Ok(BatchMessage {
                job_id: m.job_id,
                batch: m.batch,
                bucket: m.bucket,
                work,
                schema: m.schema,
                format: m.format,
                table: m.table,
                report: m.report,
                write: m.write,
                resumed: m.resumed,
            })
        }
    }
}

impl Serialize for BatchMessage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        wire::Outgoing::from(self).serialize(serializer)
    }
}

/// What a batch of an export's data files must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFiles {
    /// The manifest's `itemCount` of each data file, by its (resolved) key.
    pub item_counts: std::collections::BTreeMap<String, u64>,
    /// The manifest's `md5Checksum` of each data file that has one, by its key.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub md5s: std::collections::BTreeMap<String, String>,
    /// Lines are changes (`NewImage` put, else `Keys` deleted), not `{"Item": ...}`.
    #[serde(default)]
    pub incremental: bool,
    /// The chain's export this batch belongs to (0 for a single export): a worker that
    /// finds the job's phase past it writes nothing (the fence, `docs/exports.md`).
    #[serde(default)]
    pub phase: u32,
    /// The first batch number after this phase: once that many are counted, the phase is.
    #[serde(default)]
    pub phase_end: u64,
    /// The next phase with batches, if any: woken by the count that completes this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_phase: Option<u32>,
}

/// What a continuation carries besides the keys and range left: its part number, the
/// counters of every earlier part (only the last part counts the batch, with the sum), and
/// the objects an earlier part read partway.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    /// 1 for the first continuation.
    pub part: u32,
    /// The counters of every earlier part (the ledger's batch counters, on the wire).
    pub carried: BatchStats,
    /// Plain objects read partway: the rest, from the next row's exact byte offset, as a
    /// row span pinned to the ETag the first read saw.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<RangeTask>,
    /// Compressed objects read partway: decoded again, skipping the rows already loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tails: Vec<ObjectTail>,
    /// Parquet row groups of a key batch read partway (`rows_done` set).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub row_groups: Vec<RowGroupTask>,
}

/// Consecutive row groups of one Parquet object, planned from its footer: the worker fetches
/// the footer and the groups' column chunks (`start..end`) only, pinned to `etag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowGroupTask {
    pub key: String,
    pub etag: String,
    /// The object's size; its footer is `footer_start..size`.
    pub size: u64,
    pub footer_start: u64,
    /// Row groups `first_group..stop_group`, by index in the footer.
    pub first_group: u64,
    pub stop_group: u64,
    /// The byte span of their column chunks.
    pub start: u64,
    pub end: u64,
    /// Rows of these groups an earlier part loaded (a resumed part skips them).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_done: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl RowGroupTask {
    /// Bytes a worker fetches: the column chunks and the footer.
    pub fn fetched_bytes(&self) -> u64 {
        (self.end - self.start) + (self.size - self.footer_start)
    }
}

/// The rest of a compressed object: a compressed stream cannot be entered mid-way, so its
/// next row is named by number (records after the header already loaded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectTail {
    pub key: String,
    /// The version the first part read; later reads are pinned to it.
    pub etag: String,
    pub rows_done: u64,
}

/// One range of one large object: a worker batch in large-object mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeTask {
    pub key: String,
    /// The ETag the coordinator saw: every ranged GET is pinned to it (If-Match), so an
    /// object replaced mid-job fails loudly instead of mixing two versions.
    pub etag: String,
    /// First byte of the range (rows starting here or later).
    pub start: u64,
    /// One past the last byte: rows starting here belong to the next range.
    pub end: u64,
    /// The object's header, read once by the coordinator (empty when `header_end` is set).
    pub header: Vec<String>,
    /// The rows this range owns, exactly, from the scan phase. A range without it (planned
    /// by an older coordinator) is rejected rather than guessed at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<RowSpan>,
    /// A header too wide to carry ([`INLINE_HEADER_BYTES`]): it is the object's first record,
    /// ending at this offset, and the worker reads bytes `0..header_end` itself, pinned to
    /// `etag` like the range, instead of every message carrying it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_end: Option<u64>,
}

/// A header longer than this (in bytes, as stored) is not copied into scan, compose and
/// parse messages but read from the object by each range's worker: SQS refuses bodies over
/// 256 KiB, and a header may be up to the record cap (1 MiB). Under it, the copy is cheaper
/// than one more GET per range.
pub const INLINE_HEADER_BYTES: u64 = 16 << 10;

/// How a range names its object's header, which ends at `header_end`: inline when it is
/// short, else by its end.
pub fn carried_header(header: &[String], header_end: u64) -> (Vec<String>, Option<u64>) {
    match header_end > INLINE_HEADER_BYTES {
        true => (Vec::new(), Some(header_end)),
        false => (header.to_vec(), None),
    }
}

/// The rows a range owns: every record starting in `first..stop`, where `first` is the first
/// record start in the range and `stop` the first one after it (or the object's end). Both
/// are record boundaries of a sequential parse, so a fresh parser reads exactly these rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowSpan {
    pub first: u64,
    pub stop: u64,
}

/// A plain CSV split into ranges: everything each phase needs to rebuild the same ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitObject {
    pub key: String,
    pub etag: String,
    /// The header's names; empty when `header_in_object`.
    pub header: Vec<String>,
    /// Just past the header: the parser is between records here.
    pub data_start: u64,
    pub size: u64,
    pub chunk: u64,
    /// The batch number of its first scan: scans are `first_batch..first_batch + n`, parses
    /// the `n` after them (0 in a single-object job; a prefix job numbers on from its keys).
    #[serde(default)]
    pub first_batch: u64,
    /// Split by lines (JSON Lines): a line is a record, so each range finds its own first
    /// line and there is no scan phase: `n` parse batches from `first_batch`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_lines: bool,
    /// The header is too wide to carry in messages ([`INLINE_HEADER_BYTES`]): it is bytes
    /// `0..data_start` of the object, read by each parse's worker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub header_in_object: bool,
}

/// A compressed object above the chunk size, to be inflated into plain parts of about
/// `part_bytes` decoded bytes each (`docs/compressed.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflateTask {
    pub key: String,
    /// The ETag the coordinator saw: every GET of the object is pinned to it.
    pub etag: String,
    /// The compressed size.
    pub size: u64,
    /// Decoded bytes per part: a part ends at the first record start this far past its own.
    pub part_bytes: u64,
    /// Where an earlier invocation stopped: the first part not yet written. Absent: from
    /// the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<InflateNext>,
}

/// The first part an inflate continuation writes: its number, the decoded offset of its
/// first record and the line that record starts on (every byte before it is only skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InflateNext {
    pub part: u64,
    pub offset: u64,
    pub line: u64,
}

/// One plain part of an inflated object: the rows of `range`, a range of the scratch object
/// (its header's bytes, then its records), reported as rows of `source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartTask {
    /// The compressed object it came from: rejects name it.
    pub source: String,
    /// Its number among the object's parts.
    pub index: u64,
    /// The decoded offset in `source` of the part's first record.
    pub offset: u64,
    /// Where the records start in the part object (past the header's bytes).
    pub data_start: u64,
    /// The line (in `source`) of the record at `range.rows.first`: a resumed part moves it.
    pub line: u64,
    /// The part's rows as a range of the scratch object (its ETag is taken from a HEAD at
    /// each delivery).
    pub range: RangeTask,
}

impl PartTask {
    /// The decoded offset in the source of byte `at` of the part object.
    pub fn source_offset(&self, at: u64) -> u64 {
        self.offset + at.saturating_sub(self.data_start)
    }

    /// The line in the source of line `line` of a read starting at `range.rows.first`.
    pub fn source_line(&self, line: u64) -> u64 {
        match line {
            0 => 0,
            _ => self.line + line - 1,
        }
    }
}

/// Phase one of a split object: scan range `index` (batch `index`) and store the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanTask {
    pub object: SplitObject,
    pub index: u64,
}

/// One unit of a batch's work, as the loader reads it: a whole object, one range of a large
/// one, the rest of a compressed one, or Parquet row groups.
#[derive(Debug, Clone, Copy)]
pub enum Unit<'a> {
    Object(&'a str),
    Range(&'a RangeTask),
    /// The rest of a compressed object an earlier part read partway.
    Tail(&'a ObjectTail),
    /// Row groups of a Parquet object.
    RowGroups(&'a RowGroupTask),
}

impl Unit<'_> {
    pub fn key(&self) -> &str {
        match self {
            Unit::Object(key) => key,
            Unit::Range(task) => &task.key,
            Unit::Tail(tail) => &tail.key,
            Unit::RowGroups(task) => &task.key,
        }
    }
}

impl BatchMessage {
    /// What the loader reads: the range or row groups, or every key and what earlier parts
    /// left (a scan loads nothing).
    pub fn units(&self) -> Vec<Unit<'_>> {
        let mut units: Vec<Unit<'_>> = match &self.work {
            Work::Range(range) => return vec![Unit::Range(range)],
            Work::InflatedPart(part) => return vec![Unit::Range(&part.range)],
            Work::RowGroups(groups) => return vec![Unit::RowGroups(groups)],
            Work::Scan(_) | Work::Inventory(_) | Work::Inflate(_) => return Vec::new(),
            Work::Objects { keys }
            | Work::Export { keys, .. }
            | Work::InventoryObjects { keys } => keys.iter().map(|key| Unit::Object(key)).collect(),
        };
        if let Some(resumed) = &self.resumed {
            units.extend(resumed.ranges.iter().map(Unit::Range));
            units.extend(resumed.tails.iter().map(Unit::Tail));
            units.extend(resumed.row_groups.iter().map(Unit::RowGroups));
        }
        units
    }

    /// The part this message is: 0 for the batch as enqueued.
    pub fn part(&self) -> u32 {
        self.resumed.as_ref().map_or(0, |r| r.part)
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, integers and plain enums always serializes.
        serde_json::to_string(self).expect("BatchMessage serializes")
    }
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
