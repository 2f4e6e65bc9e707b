//! The worker: one SQS event in, one partial-batch response out. Each message is one batch of
//! objects. Inside a batch the seed's loop runs on the current thread: `buffer_unordered`
//! schedules objects, a semaphore bounds GETs in flight, rows flow from decode straight into
//! 25-item BatchWriteItem calls. Only then is the batch counted in the job ledger, so a crash
//! before counting means redelivery rewrites the same rows (same keys) and counts once.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::{StreamExt, TryFutureExt, TryStreamExt, stream};
use thiserror::Error;
use tokio::sync::Semaphore;

use crate::aws::Clients;
use crate::config::WorkerConfig;
use crate::decode::{SensorReading, decode_sensor_csv};
use crate::dynamo_writer::{MAX_BATCH_ITEMS, WriteError, WriteOutcome, write_chunk};
use crate::jobs::{BatchStats, JobError, JobLedger, Recorded};
use crate::message::BatchMessage;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum WorkerError {
    #[error("message body is not a batch message")]
    BadMessage(#[source] serde_json::Error),
    #[error("GET s3://{bucket}/{key} failed")]
    Fetch {
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Job(#[from] JobError),
}

/// One object, downloaded and decoded.
struct FetchedObject {
    readings: Vec<SensorReading>,
    stats: BatchStats,
}

pub struct Worker {
    clients: Clients,
    ledger: JobLedger,
    config: WorkerConfig,
}

impl Worker {
    pub fn new(clients: Clients, config: WorkerConfig) -> Self {
        let ledger = JobLedger::new(clients.dynamodb.clone(), &config.tables.jobs);
        Self {
            clients,
            ledger,
            config,
        }
    }

    /// Processes every message; the failed ones are listed for redelivery, the rest are
    /// acknowledged. A message without an id yields an empty identifier, which Lambda treats
    /// as a failure of the whole event: safe, since every step is idempotent.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let permits = Semaphore::new(self.config.fetch_concurrency);
        let width = event.records.len().max(1);
        let failures: Vec<BatchItemFailure> = stream::iter(event.records)
            .map(|message| self.handle_message(&permits, message))
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
        permits: &Semaphore,
        message: SqsMessage,
    ) -> Option<BatchItemFailure> {
        let message_id = message.message_id.unwrap_or_default();
        let result =
            match serde_json::from_str::<BatchMessage>(message.body.as_deref().unwrap_or("")) {
                Ok(batch) => self.process_batch(permits, &batch).await,
                Err(e) => Err(WorkerError::BadMessage(e)),
            };
        let error = result.err()?;
        tracing::error!(%message_id, error = %crate::report(&error), "batch failed; left for redelivery");
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = message_id;
        Some(failure)
    }

    /// Loads one batch and counts it. Returns the ledger's view after counting.
    pub async fn process_batch(
        &self,
        permits: &Semaphore,
        batch: &BatchMessage,
    ) -> Result<Recorded, WorkerError> {
        let stats = self.load(permits, batch).await?;
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
        }
        // Also after AlreadyCounted: a crash between counting and finishing is healed here.
        self.ledger.try_finish(recorded.job()).await?;
        Ok(recorded)
    }

    /// Downloads, decodes and writes every object of the batch; returns what it did.
    async fn load(
        &self,
        permits: &Semaphore,
        batch: &BatchMessage,
    ) -> Result<BatchStats, WorkerError> {
        let mut stats = BatchStats::default();
        let written = stream::iter(&batch.keys)
            .map(|key| self.fetch_object(permits, &batch.bucket, key))
            .buffer_unordered(self.config.task_concurrency)
            .map_ok(|object| {
                stats.files += object.stats.files;
                stats.files_failed += object.stats.files_failed;
                stats.rows_rejected += object.stats.rows_rejected;
                stats.bytes += object.stats.bytes;
                stream::iter(object.readings.into_iter().map(Ok))
            })
            .try_flatten()
            .try_chunks(MAX_BATCH_ITEMS)
            .map_err(|chunk_error| chunk_error.1)
            .map_ok(|chunk| {
                write_chunk(&self.clients.dynamodb, &self.config.tables.records, chunk)
                    .map_err(WorkerError::from)
            })
            .try_buffer_unordered(self.config.write_concurrency)
            .try_fold(WriteOutcome::default(), |mut total, outcome| async move {
                total += outcome;
                Ok(total)
            })
            .await?;
        stats.rows_written = written.written;
        stats.rows_duplicate = written.duplicates;
        Ok(stats)
    }

    /// One GET under a semaphore permit, then decode. Row rejects and a rejected object are
    /// logged with key, line and reason and counted; only a failed GET fails the batch.
    async fn fetch_object(
        &self,
        permits: &Semaphore,
        bucket: &str,
        key: &str,
    ) -> Result<FetchedObject, WorkerError> {
        let fetch_error = |source: BoxError| WorkerError::Fetch {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source,
        };
        let body = {
            let _permit = permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            let output = self
                .clients
                .s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| fetch_error(e.into()))?;
            output
                .body
                .collect()
                .await
                .map_err(|e| fetch_error(e.into()))?
                .into_bytes()
        };
        let mut stats = BatchStats {
            bytes: body.len() as u64,
            ..BatchStats::default()
        };
        let readings = match decode_sensor_csv(&body) {
            Ok(decoded) => {
                for reject in &decoded.rejects {
                    tracing::warn!(bucket, key, line = reject.line, reason = %reject.reason, "row rejected");
                }
                stats.files = 1;
                stats.rows_rejected = decoded.rejects.len() as u64;
                decoded.readings
            }
            Err(error) => {
                tracing::warn!(bucket, key, reason = %error, "object rejected");
                stats.files_failed = 1;
                Vec::new()
            }
        };
        Ok(FetchedObject { readings, stats })
    }
}
