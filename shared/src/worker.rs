//! The worker: one SQS event in, one partial-batch response out. Each message is one batch of
//! objects, loaded by [`Loader`] (the seed's loop, streaming and adaptive), written by
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

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{FutureExt, StreamExt, stream};
use thiserror::Error;
use tokio::time::Instant;
use tracing::Instrument;

use crate::aws::Clients;
use crate::completion::{Announcer, Claim, CompletionError};
use crate::config::WorkerConfig;
use crate::dynamo_writer::{BatchWriteApi, ChunkWriter};
use crate::jobs::{BatchStats, JobError, JobLedger, Recorded};
use crate::limiter::AimdLimiter;
use crate::loader::{LoadError, Loader};
use crate::message::BatchMessage;
use crate::metrics::{self, MetricsSink, StdoutSink};
use crate::rejects::{BatchRejects, ReportError};
use crate::schema::{Schema, SchemaError};

/// Time kept free before the Lambda deadline: retries stop in time to report a failure
/// instead of being killed mid-batch.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("message body is not a batch message")]
    BadMessage(#[source] serde_json::Error),
    #[error("the batch's schema is invalid")]
    BadSchema(#[source] SchemaError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Completion(#[from] CompletionError),
    #[error("processing panicked: {0}")]
    Panicked(String),
}

/// The Lambda deadline (ms since the epoch, from `Context`) as an `Instant`, less the margin.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Instant::now() + left.saturating_sub(DEADLINE_MARGIN)
}

/// Clients, ledger and limits, kept across invocations of a warm Lambda, so what the limits
/// learned about throttling carries over.
pub struct Worker<W = aws_sdk_dynamodb::Client> {
    clients: Clients,
    writes: W,
    ledger: JobLedger,
    announcer: Announcer,
    config: WorkerConfig,
    fetch_limit: AimdLimiter,
    write_limit: AimdLimiter,
    metrics: Arc<dyn MetricsSink>,
}

impl Worker {
    pub fn new(clients: Clients, config: WorkerConfig) -> Self {
        let writes = clients.dynamodb.clone();
        Self::with_writes(clients, config, writes)
    }
}

impl<W: BatchWriteApi> Worker<W> {
    /// A worker whose record writes go through `writes` (e.g. a fault-injecting wrapper).
    pub fn with_writes(clients: Clients, config: WorkerConfig, writes: W) -> Self {
        let ledger = JobLedger::new(clients.dynamodb.clone(), &config.tables.jobs);
        Self {
            announcer: Announcer::new(
                clients.sqs.clone(),
                config.completion_queue_url.clone(),
                ledger.clone(),
            ),
            ledger,
            fetch_limit: AimdLimiter::new(
                config.fetch_concurrency,
                4.min(config.fetch_concurrency),
            ),
            write_limit: AimdLimiter::new(config.write_concurrency, 1),
            clients,
            writes,
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
        let body = message.body.clone().unwrap_or_default();
        // Every log line of this message carries its ids (JSON logs list the open spans).
        let span = tracing::info_span!(
            "message",
            message_id = %message_id,
            job_id = tracing::field::Empty,
            batch = tracing::field::Empty
        );
        let result = isolated(
            async {
                let batch: BatchMessage =
                    serde_json::from_str(&body).map_err(WorkerError::BadMessage)?;
                tracing::Span::current()
                    .record("job_id", batch.job_id.as_str())
                    .record("batch", batch.batch);
                self.process_batch(&batch, deadline).await
            }
            .instrument(span.clone()),
        )
        .await;
        let _in_message = span.enter();
        let error = result.err()?;
        let receives: u32 = message
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        if receives >= self.config.max_receive_count {
            self.count_as_failed(&body, &error).await;
        }
        tracing::error!(%message_id, error = %crate::report(&error), "batch failed; left for redelivery");
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message_id;
        Some(failure)
    }

    /// A batch failing its last delivery goes to the dead-letter queue next: count it as
    /// failed, so its job ends (COMPLETED_WITH_ERRORS) instead of waiting on it forever. A
    /// body that names no job has nothing to count; the dead-letter alarm covers it.
    async fn count_as_failed(&self, body: &str, error: &WorkerError) {
        let Ok(batch) = serde_json::from_str::<BatchMessage>(body) else {
            tracing::error!(
                "an unreadable message failed its last delivery; it goes to the dead-letter queue"
            );
            return;
        };
        let reason = crate::report(error);
        let result = async {
            let recorded = self
                .ledger
                .record_failed_batch(&batch.job_id, batch.batch, &reason)
                .await?;
            if let Some(job) = self.ledger.try_finish(recorded.job()).await? {
                self.metrics.emit(metrics::job_finished("worker", &job));
                self.announcer.announce(&job, Claim::Held).await?;
            }
            Ok::<_, WorkerError>(())
        }
        .await;
        match result {
            Ok(()) => {
                tracing::error!(job_id = %batch.job_id, batch = batch.batch, %reason, "batch failed its last delivery; counted as failed, goes to the dead-letter queue")
            }
            Err(e) => {
                tracing::error!(job_id = %batch.job_id, batch = batch.batch, error = %crate::report(&e), "could not count a dead-lettered batch")
            }
        }
    }

    /// Loads one batch, writes its rejects report, and counts it. Returns the ledger's view.
    pub async fn process_batch(
        &self,
        batch: &BatchMessage,
        deadline: Option<Instant>,
    ) -> Result<Recorded, WorkerError> {
        let started = Instant::now();
        let schema = batch.schema.clone().unwrap_or_default();
        schema.validate().map_err(WorkerError::BadSchema)?;
        let stats = self.load(batch, &schema, deadline).await?;
        let recorded = self
            .ledger
            .record_batch(&batch.job_id, batch.batch, &stats)
            .await?;
        match &recorded {
            Recorded::Counted(_) => {
                tracing::info!(job_id = %batch.job_id, batch = batch.batch, ?stats, "batch counted")
            }
            Recorded::AlreadyCounted(_) => {
                tracing::info!(job_id = %batch.job_id, batch = batch.batch, "batch was already counted (redelivery); counters unchanged")
            }
            Recorded::Recovered(_) => {
                tracing::warn!(job_id = %batch.job_id, batch = batch.batch, ?stats, "a batch counted as failed succeeded after a redrive; counted and no longer failed")
            }
        }
        let counted = matches!(recorded, Recorded::Counted(_) | Recorded::Recovered(_));
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.metrics.emit(metrics::batch(
            &batch.job_id,
            batch.batch,
            &batch.bucket,
            &stats,
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
        Ok(recorded)
    }

    async fn load(
        &self,
        batch: &BatchMessage,
        schema: &Schema,
        deadline: Option<Instant>,
    ) -> Result<BatchStats, WorkerError> {
        let loader = Loader {
            s3: &self.clients.s3,
            throttles: &self.clients.s3_throttles,
            fetch_limit: &self.fetch_limit,
            task_concurrency: self.config.task_concurrency,
            write_concurrency: self.config.write_concurrency,
            schema,
            max_decoded_bytes: self.config.max_decoded_bytes,
        };
        let writer = ChunkWriter {
            api: &self.writes,
            table: &self.config.tables.records,
            limiter: &self.write_limit,
            deadline,
        };
        let rejects = Mutex::new(BatchRejects::default());
        let loaded = loader
            .load(&batch.bucket, &batch.work(), &rejects, |chunk| {
                writer.write(chunk)
            })
            .await?;
        let rejects = rejects.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(uri) = rejects
            .write(&self.clients.s3, &batch.report, &batch.job_id, batch.batch)
            .await?
        {
            tracing::warn!(job_id = %batch.job_id, batch = batch.batch, rejects = loaded.rows_rejected, files_failed = loaded.files_failed, report = %uri, "rejects reported");
        }
        Ok(BatchStats {
            files: loaded.files,
            files_failed: loaded.files_failed,
            rows_written: loaded.written.written,
            rows_rejected: loaded.rows_rejected,
            rows_duplicate: loaded.written.duplicates,
            bytes: loaded.bytes,
            write_retries: loaded.written.retries,
            s3_throttles: loaded.s3_throttles,
        })
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

    #[test]
    fn the_deadline_keeps_a_margin() {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let deadline = deadline_from_epoch_ms(now_ms + 60_000);
        let left = deadline - Instant::now();
        assert!(
            left <= Duration::from_secs(50) && left > Duration::from_secs(45),
            "{left:?}"
        );
        // A deadline already past leaves no time rather than underflowing.
        assert!(deadline_from_epoch_ms(0) <= Instant::now());
    }
}
