//! The worker: one SQS event in, one partial-batch response out. Each message is one batch of
//! objects, loaded by [`Loader`] (bounded concurrent GETs, streaming decode), written by
//! [`ChunkWriter`], then counted once in the job ledger. Rows are written before the count,
//! with keys from the data, so a crash before counting means redelivery rewrites the same
//! items and counts once.
//!
//! Failures are classified. Permanent ones that concern one object (unusable header, object
//! gone) are rejects: reported, counted, and the batch still completes. Retryable ones (a GET
//! or write that failed after the SDK's retries, a ledger call) fail only that message, which
//! SQS redelivers; a panic in one message fails that message alone. A batch failing on its
//! last delivery (`MAX_RECEIVE_COUNT`) is counted as failed in the ledger before it goes to
//! the dead-letter queue, so its job still ends.

mod chunk_writer;
mod export_phase;
mod inflate;
mod inventory;
mod lanes;
mod loader;
mod open;
mod received;
mod resume;
mod scan_batch;

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt, stream};
use thiserror::Error;
use tokio::time::Instant;
use tracing::Instrument;

pub use chunk_writer::{ChunkWriter, MAX_BATCH_ITEMS, SourcedRow, WriteOutcome};
pub use loader::{LoadError, LoadStats, Loader, Pacing};
pub use resume::{Left, Stop};

use crate::app::completion::{Announcer, Claim, CompletionError};
use crate::app::config::WorkerConfig;
use crate::app::lambda;
use crate::app::metrics::{self, MetricsSink, StdoutSink};
use crate::app::write_cap::JobPacers;
use crate::contract::messages::{BatchMessage, Work};
use crate::contract::schema::{Schema, SchemaError};
use crate::contract::write::WriteMode;
use crate::fan_in::{JobError, Ledger, LedgerStore};
use crate::ingest::rejects::BatchRejects;
use crate::ingest::typing::TypedRow;
use crate::job::model::{BatchStats, Recorded};
use crate::limiter::{AimdLimiter, ThrottleCounter};
use crate::port::Adapters;
use crate::port::objects::{ObjectError, ObjectStore};
use crate::port::queue::Queues;
use crate::port::table::{KeyNames, RecordTable};

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("message body is not a batch message")]
    BadMessage(#[source] serde_json::Error),
    #[error("the batch's schema is invalid")]
    BadSchema(#[source] SchemaError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("writing the rejects report failed")]
    Report(#[source] ObjectError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Completion(#[from] CompletionError),
    #[error("scanning bytes {start}..{end} of s3://{bucket}/{key} failed")]
    Scan {
        bucket: String,
        key: String,
        start: u64,
        end: u64,
        #[source]
        source: crate::BoxError,
    },
    #[error("a scan batch names range {index}, but its object has {ranges}")]
    BadScan { index: u64, ranges: u64 },
    #[error("storing the scan failed")]
    StoreScan(#[source] ObjectError),
    #[error("counting the stored scans of a split object failed")]
    CountScans(#[source] ObjectError),
    #[error("waking the compose step failed (is CONTROL_QUEUE_URL set?)")]
    Wake(#[source] crate::BoxError),
    #[error("the batch's table is refused: {0}")]
    BadTable(String),
    #[error("processing panicked: {0}")]
    Panicked(String),
    #[error(
        "the batch stopped before its deadline without loading a row (RESUME_MARGIN_SECONDS \
         leaves no time to work?)"
    )]
    NoProgress,
    #[error("sending the rest of the batch to the batch queue failed")]
    Continue(#[source] crate::BoxError),
    #[error("reading an inventory data file failed")]
    InventoryRead(#[source] crate::ingest::inventory::InventoryError),
    #[error("reading an inventory data file failed")]
    InventoryGet(#[source] ObjectError),
    #[error("an inventory emit cannot send its batches: {0}")]
    Emit(String),
    #[error("sending an inventory's key batches failed")]
    Queue(#[source] crate::port::queue::QueueError),
    #[error("an inflated object's scratch objects could not be stored or read")]
    Scratch(#[source] ObjectError),
    #[error("an inflated object's list of parts is unreadable: {0}")]
    BadPartsList(String),
    #[error("sending an inflated object's part failed")]
    SendPart(#[source] crate::BoxError),
}

/// Ports, limits and settings, kept across invocations of a warm Lambda, so what the limits
/// learned about throttling carries over.
pub struct Worker {
    objects: Arc<dyn ObjectStore>,
    records: Arc<dyn RecordTable>,
    ledger: Arc<dyn LedgerStore>,
    queues: Arc<dyn Queues>,
    s3_throttles: Arc<ThrottleCounter>,
    announcer: Announcer,
    config: WorkerConfig,
    fetch_limit: AimdLimiter,
    write_limit: AimdLimiter,
    /// This instance's share of each capped job's write rate.
    pacers: JobPacers,
    metrics: Arc<dyn MetricsSink>,
}

impl Worker {
    /// A worker whose IO goes through `adapters`.
    pub fn new(adapters: Adapters, config: WorkerConfig) -> Self {
        Self {
            announcer: Announcer::new(
                adapters.queues.clone(),
                config.completion_queue_url.clone(),
                adapters.ledger.clone(),
            ),
            queues: adapters.queues,
            objects: adapters.objects,
            records: adapters.records,
            ledger: adapters.ledger,
            s3_throttles: adapters.s3_throttles,
            fetch_limit: AimdLimiter::new(
                config.fetch_concurrency,
                4.min(config.fetch_concurrency),
            ),
            write_limit: AimdLimiter::new(config.write_concurrency, 1),
            pacers: JobPacers::new(config.max_concurrency),
            config,
            metrics: Arc::new(StdoutSink),
        }
    }

    /// Sends metric records to `sink` instead of stdout.
    pub fn with_metrics(mut self, sink: Arc<dyn MetricsSink>) -> Self {
        self.metrics = sink;
        self
    }

    /// The GET limit as it stands (for reports and tests).
    pub fn fetch_limit(&self) -> &AimdLimiter {
        &self.fetch_limit
    }

    /// Processes every message; the failed ones are listed for redelivery, the rest are
    /// acknowledged. A message without an id yields an empty identifier, which Lambda treats
    /// as a failure of the whole event: safe, since every step is idempotent.
    pub async fn handle(&self, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        let width = event.records.len().max(1);
        let failures: Vec<BatchItemFailure> = stream::iter(event.records)
            .map(|message| self.handle_message(message, deadline))
            .buffer_unordered(width)
            .filter_map(|failure| async move { failure })
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }

    async fn handle_message(
        &self,
        message: SqsMessage,
        deadline: Option<Instant>,
    ) -> Option<BatchItemFailure> {
        let message_id = message.message_id.clone().unwrap_or_default();
        // Every log line of this message carries its ids (JSON logs list the open spans).
        let span = tracing::info_span!(
            "message",
            message_id = %message_id,
            job_id = tracing::field::Empty,
            batch = tracing::field::Empty
        );
        let last_delivery = lambda::receive_count(&message) >= self.config.max_receive_count;
        // One parse per message: the mark, the work and the failed count all use it.
        let body = message.body.as_deref().unwrap_or_default();
        let batch = match serde_json::from_str::<BatchMessage>(body) {
            Ok(batch) => batch,
            Err(error) => {
                // It names no job: nothing to mark or count. The dead-letter queue keeps it.
                let _in_message = span.enter();
                let error = WorkerError::BadMessage(error);
                tracing::error!(%message_id, last_delivery, error = %crate::report(&error), "unreadable message; left for redelivery, then the dead-letter queue");
                return Some(lambda::failure(message_id));
            }
        };
        span.record("job_id", batch.job_id.as_str())
            .record("batch", batch.batch.get());
        let marked = last_delivery && self.mark_last_attempt(&batch, deadline).await;
        let result = isolated(self.process(&batch, deadline))
            .instrument(span.clone())
            .await;
        let _in_message = span.enter();
        let failed = match &result {
            Ok(_) => false,
            Err(error) if last_delivery => !self.count_as_failed(&batch, error).await,
            Err(_) => true,
        };
        // The batch is accounted for (counted, counted as failed, or handed on to a
        // continuation): the mark has done its job. Should clearing fail, the stuck check
        // finds a counted batch counted and clears it; a handed-on one it counts as failed
        // while the continuation runs (a window of this one call: docs/resumable.md).
        if marked
            && !failed
            && let Err(e) = self
                .ledger
                .clear_last_attempt(&batch.job_id, batch.batch)
                .await
        {
            tracing::warn!(error = %crate::report(&e), "could not clear a last-attempt mark");
        }
        let error = result.err()?;
        tracing::error!(%message_id, error = %crate::report(&error), "batch failed; left for redelivery");
        Some(lambda::failure(message_id))
    }

    /// Before a batch's last delivery runs, a durable mark with this invocation's deadline:
    /// should the process be killed (timeout, memory) before it counts the batch either way,
    /// the stuck-job check counts it as failed once the deadline has passed, so its job ends.
    /// Returns whether the mark is made.
    async fn mark_last_attempt(&self, batch: &BatchMessage, deadline: Option<Instant>) -> bool {
        let deadline_ms = lambda::deadline_ms(deadline);
        match self
            .ledger
            .mark_last_attempt(&batch.job_id, batch.batch, deadline_ms)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(job_id = %batch.job_id, batch = batch.batch.get(), error = %crate::report(&e), "could not mark the last attempt; a kill now would leave its job waiting");
                false
            }
        }
    }

    /// A batch failing its last delivery goes to the dead-letter queue next: count it as
    /// failed, so its job ends (COMPLETED_WITH_ERRORS) instead of waiting on it forever.
    /// Returns whether the batch is now counted.
    async fn count_as_failed(&self, batch: &BatchMessage, error: &WorkerError) -> bool {
        let reason = crate::report(error);
        let result = async {
            let recorded = self
                .ledger
                .record_failed_batch(&batch.job_id, batch.batch, &reason)
                .await?;
            if let Some(scan) = batch.work.scan() {
                // The compose step fails the job: its rows cannot be split exactly.
                self.wake_compose_when_scanned(batch, scan, true).await?;
            }
            if let Some(task) = batch.work.inventory().filter(|t| t.emit.is_none()) {
                // The compose step fails the job: no file after this one can be numbered.
                self.wake_inventory_compose(batch, task).await?;
            }
            if let Some(files) = batch.work.export() {
                // A failed batch is counted: its phase may be complete.
                self.wake_next_export_phase(batch, files).await?;
            }
            if let Some(job) = self.ledger.try_finish(recorded.job()).await? {
                self.metrics.emit(metrics::job_finished("worker", &job));
                self.announcer.announce(&job, Claim::Held).await?;
            }
            Ok::<_, WorkerError>(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::error!(job_id = %batch.job_id, batch = batch.batch.get(), %reason, "batch failed its last delivery; counted as failed, goes to the dead-letter queue");
                true
            }
            Err(e) => {
                tracing::error!(job_id = %batch.job_id, batch = batch.batch.get(), error = %crate::report(&e), "could not count a dead-lettered batch; the stuck-job check will");
                false
            }
        }
    }

    /// An export batch of a phase the job has passed (the fence): it writes nothing.
    async fn fenced(&self, batch: &BatchMessage) -> Result<bool, WorkerError> {
        match batch.work.export() {
            Some(files) => self.export_fenced(batch, files).await,
            None => Ok(false),
        }
    }

    /// The one entry point for a batch: loads it, or as much of it as the deadline allows.
    /// With a batch queue configured and a deadline, decoding stops `resume_margin` before
    /// it (at most 90% of the time left, so a short function timeout still leaves time to
    /// work), and the rest goes to a continuation message for the same batch (which this
    /// returns); the part that finishes the batch counts it with the counters of every part.
    /// Without a deadline the batch is done in this call.
    pub async fn process(
        &self,
        batch: &BatchMessage,
        deadline: Option<Instant>,
    ) -> Result<Processed, WorkerError> {
        let started = Instant::now();
        let stop = match (deadline, &self.config.queue_url, &batch.work) {
            // A scan is one bounded read: it never hands on.
            (_, _, Work::Scan(_)) | (None, _, _) | (_, None, _) => Stop::never(),
            (Some(deadline), Some(_), _) => {
                Stop::before(deadline, self.config.resume_margin, started)
            }
        };
        let mut schema = batch.schema.clone().unwrap_or_default();
        schema.validate().map_err(WorkerError::BadSchema)?;
        if batch.write.write_mode == WriteMode::Delete {
            // A delete's CSV lists keys: only the key columns are needed.
            schema = schema.keys_only();
        }
        match &batch.work {
            Work::Inflate(task) => return self.inflate(batch, task, &schema, &stop, started).await,
            Work::InflatedPart(part) => {
                return (self.inflated_part(batch, part, &schema, deadline, &stop, started)).await;
            }
            _ => {}
        }
        let inventory = batch.work.inventory();
        let (part, unreadable) = match (batch.work.scan(), inventory) {
            (None, Some(task)) => match &task.emit {
                None => (self.count_inventory(batch, task).await?, false),
                Some(emit) => match self.emit_inventory(batch, task, emit, &stop).await? {
                    inventory::Emitted::Done(stats) => (stats, false),
                    inventory::Emitted::Paused { next, stats } => {
                        let continued = self.hand_on_emit(batch, task, emit, next, &stats).await?;
                        return Ok(Processed::Continued(Box::new(continued)));
                    }
                },
            },
            (Some(scan), _) => match self.scan(batch, scan).await? {
                scan_batch::Scanned::Stored(stats) => (stats, false),
                scan_batch::Scanned::Impossible(reason) => {
                    self.store_unreadable(batch, scan, &reason).await?;
                    (BatchStats::default(), true)
                }
            },
            (None, None) if self.fenced(batch).await? => (BatchStats::default(), false),
            (None, None) => {
                let (part, left) = self.load(batch, &schema, deadline, &stop).await?;
                if !left.is_empty() {
                    return self.hand_on(batch, &part, left, &stop).await;
                }
                (part, false)
            }
        };
        let stats = resume::sum(&resume::carried_stats(batch), &part);
        let recorded = self
            .ledger
            .record_batch(&batch.job_id, batch.batch, &stats)
            .await?;
        if let Some(scan) = batch.work.scan() {
            // Also after AlreadyCounted: a crash before the wake-up is healed here.
            self.wake_compose_when_scanned(batch, scan, unreadable)
                .await?;
        }
        if let Some(task) = inventory.filter(|t| t.emit.is_none()) {
            // Also after AlreadyCounted, as for scans.
            self.wake_inventory_compose(batch, task).await?;
        }
        if let Some(files) = batch.work.export() {
            // Also after AlreadyCounted, as for scans.
            self.wake_next_export_phase(batch, files).await?;
        }
        match &recorded {
            Recorded::Counted(_) => {
                tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), ?stats, "batch counted")
            }
            Recorded::AlreadyCounted(_) => {
                tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), "batch was already counted (redelivery); counters unchanged")
            }
            Recorded::Recovered(_) => {
                tracing::warn!(job_id = %batch.job_id, batch = batch.batch.get(), ?stats, "a batch counted as failed succeeded after a redrive; counted and no longer failed")
            }
        }
        self.after_count(batch, recorded, &stats, started).await
    }

    /// Metrics, the job's end if this count completed it (or a crash before it left it
    /// unfinished) and its completion event, once a batch is counted.
    async fn after_count(
        &self,
        batch: &BatchMessage,
        recorded: Recorded,
        stats: &BatchStats,
        started: Instant,
    ) -> Result<Processed, WorkerError> {
        let counted = matches!(recorded, Recorded::Counted(_) | Recorded::Recovered(_));
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.metrics.emit(metrics::batch(
            &batch.job_id,
            batch.batch,
            &batch.bucket,
            stats,
            duration_ms,
            counted,
        ));
        // Also after AlreadyCounted: a crash between counting and finishing is healed here,
        // and so is one between finishing and sending the completion event.
        let finished = self.ledger.try_finish(recorded.job()).await?;
        if let Some(job) = &finished {
            self.metrics.emit(metrics::job_finished("worker", job));
        }
        match &finished {
            Some(job) => self.announcer.announce(job, Claim::Held).await?,
            None => {
                self.announcer
                    .announce(recorded.job(), Claim::Needed)
                    .await?
            }
        }
        Ok(Processed::Counted(Box::new(recorded)))
    }

    /// Sends the continuation of a part that stopped before its deadline; the batch is not
    /// counted (its last part will be). The message this part came from is then done.
    async fn hand_on(
        &self,
        batch: &BatchMessage,
        part: &BatchStats,
        left: Vec<Left>,
        stop: &Stop,
    ) -> Result<Processed, WorkerError> {
        // A part the pacer stopped before its first row goes on: the instance's share went
        // to the job's other rows (a sibling message, the last part's tail), which is
        // progress; the next part finds the schedule free again.
        if !resume::made_progress(part) && !stop.paced() {
            return Err(WorkerError::NoProgress);
        }
        let Some(queue_url) = &self.config.queue_url else {
            return Err(WorkerError::Continue("QUEUE_URL is not set".into()));
        };
        let so_far = resume::sum(&resume::carried_stats(batch), part);
        let next = resume::continuation(batch, left, &so_far);
        let dedup_id = format!("{}-{}-part-{}", batch.job_id, batch.batch, next.part());
        self.queues
            .send(queue_url, &next.to_json(), &dedup_id)
            .await
            .map_err(|e| WorkerError::Continue(e.into()))?;
        tracing::info!(
            job_id = %batch.job_id,
            batch = batch.batch.get(),
            part = batch.part(),
            rows_written = part.rows_written,
            objects_left = next.units().len(),
            "batch paused before the deadline; the rest goes on as the next part"
        );
        Ok(Processed::Continued(Box::new(next)))
    }

    async fn load(
        &self,
        batch: &BatchMessage,
        schema: &Schema,
        deadline: Option<Instant>,
        stop: &Stop,
    ) -> Result<(BatchStats, Vec<Left>), WorkerError> {
        let report = (batch.report).part_key(&batch.job_id, batch.batch, batch.part());
        let units = batch.units();
        let reading = Reading {
            bucket: &batch.bucket,
            units: &units,
            report: &report,
            part: None,
        };
        self.load_units(batch, reading, schema, deadline, stop)
            .await
    }

    /// Loads `reading`'s units of `batch`, its rejects reported under `reading.report`
    /// (those of an inflated object's part renamed as the object's own).
    async fn load_units(
        &self,
        batch: &BatchMessage,
        reading: Reading<'_>,
        schema: &Schema,
        deadline: Option<Instant>,
        stop: &Stop,
    ) -> Result<(BatchStats, Vec<Left>), WorkerError> {
        // The coordinator checked the job's table; a message naming another (hand-made, or
        // from a deployment since narrowed) is refused here too, before any write.
        let table_name = (self.config.tables)
            .target(batch.table.as_deref())
            .map_err(WorkerError::BadTable)?;
        let rejects = Mutex::new(BatchRejects::default());
        let key = KeyNames::new(
            &schema.partition_attribute(),
            schema.sort_attribute().as_deref(),
        );
        let pacer = self.pacers.for_job(&batch.job_id, &batch.write);
        let writer = ChunkWriter {
            table: &*self.records,
            table_name,
            key: &key,
            mode: batch.write.write_mode,
            pacer: pacer.as_deref(),
            recomputed: schema.recomputed_attribute(),
            limiter: &self.write_limit,
            deadline,
            rejects: &rejects,
        };
        let charge = |row: &TypedRow| writer.charge(row);
        let loader = Loader {
            objects: &*self.objects,
            throttles: &self.s3_throttles,
            fetch_limit: &self.fetch_limit,
            task_concurrency: self.config.task_concurrency,
            write_concurrency: self.config.write_concurrency,
            write_mode: batch.write.write_mode,
            schema,
            format: batch.format,
            max_decoded_bytes: self.config.max_decoded_bytes,
            max_record_bytes: self.config.max_record_bytes,
            stop,
            pacing: pacer.as_deref().map(|pacer| Pacing {
                pacer,
                units: &charge,
            }),
            export: batch.work.export(),
            listed_by_inventory: batch.work.listed_by_inventory(),
        };
        let mut loaded = loader
            .load(reading.bucket, reading.units, &rejects, |chunk| {
                writer.write(chunk)
            })
            .await?;
        let mut rejects = rejects.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(part) = reading.part {
            rejects.relocate(
                &part.range.key,
                &part.source,
                |line| part.source_line(line),
                |offset| part.source_offset(offset),
            );
        }
        if !rejects.is_empty() {
            // The key is a function of (job, batch): a redelivery overwrites its own report.
            let key = reading.report;
            let body = rejects.to_jsonl().into_bytes();
            self.objects
                .put(&batch.report.bucket, key, body, "application/x-ndjson")
                .await
                .map_err(WorkerError::Report)?;
            let uri = format!("s3://{}/{key}", batch.report.bucket);
            tracing::warn!(job_id = %batch.job_id, batch = batch.batch.get(), rejects = loaded.batch_stats().rows_rejected, files_failed = loaded.files_failed, report = %uri, "rejects reported");
        }
        let left = std::mem::take(&mut loaded.left);
        Ok((loaded.batch_stats(), left))
    }
}

#[cfg(test)]
impl Worker {
    /// For tests: a batch done in one call (no deadline, so nothing is handed on).
    pub(crate) async fn process_batch(
        &self,
        batch: &BatchMessage,
    ) -> Result<Recorded, WorkerError> {
        match self.process(batch, None).await? {
            Processed::Counted(recorded) => Ok(*recorded),
            Processed::Continued(_) => {
                unreachable!("a batch without a deadline is never handed on")
            }
            Processed::Shared => panic!("a share of an inflated object counts nothing itself"),
        }
    }
}

/// What a batch's load reads: from which bucket, which units, where its rejects report
/// goes, and, for an inflated object's part, the part (its rejects name the object).
struct Reading<'a> {
    bucket: &'a str,
    units: &'a [crate::contract::messages::Unit<'a>],
    report: &'a str,
    part: Option<&'a crate::contract::messages::PartTask>,
}

/// What one delivery of a batch message did.
#[derive(Debug)]
pub enum Processed {
    /// The batch is done and counted (or was already): the ledger's view.
    Counted(Box<Recorded>),
    /// The deadline came first: the rest was sent as this continuation of the same batch.
    Continued(Box<BatchMessage>),
    /// This message's share of an inflated object (its inflate step, or one of its parts)
    /// is done; the batch is counted by whichever share sees every part done
    /// (`docs/compressed.md`).
    Shared,
}

impl Processed {
    /// The ledger's view once the batch is counted; `None` if the rest was handed on or
    /// other parts of the batch count it.
    pub fn counted(self) -> Option<Recorded> {
        match self {
            Processed::Counted(recorded) => Some(*recorded),
            Processed::Continued(_) | Processed::Shared => None,
        }
    }
}

/// Runs one message's work so that a panic fails that message alone.
async fn isolated<T>(work: impl Future<Output = Result<T, WorkerError>>) -> Result<T, WorkerError> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(WorkerError::Panicked(panic_text(&panic))))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod resume_on_doubles;

#[cfg(test)]
mod bytes_read_on_doubles;

#[cfg(test)]
mod paced_on_doubles;

#[cfg(test)]
mod duplicates_on_doubles;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_that_message_s_error() {
        let panicked = isolated(async {
            if true {
                panic!("boom in batch 7");
            }
            Ok(())
        })
        .await;
        assert!(
            matches!(panicked, Err(WorkerError::Panicked(ref text)) if text == "boom in batch 7")
        );
        let fine = isolated(async { Ok::<_, WorkerError>(5) }).await;
        assert_eq!(fine.unwrap(), 5);
    }
}
