//! The seed's loop, streaming and adaptive. Objects are scheduled by `buffer_unordered`; each
//! GET holds a permit of an AIMD limiter (the seed's semaphore, halved when S3 throttles) for
//! as long as its body is in flight; rows leave the decoder one by one through a bounded
//! channel into 25-row chunks written `write_concurrency` at a time. Everything runs on the
//! current thread, and memory is bounded by the limits, not by object or batch size.

use std::future::Future;
use std::sync::Mutex;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt, stream};
use thiserror::Error;
use tracing::Instrument;

use crate::decode::{DecodeError, Decoded, ObjectDecoder};
use crate::dynamo_writer::{MAX_BATCH_ITEMS, WriteError, WriteOutcome};
use crate::limiter::{AimdLimiter, AimdPermit, ThrottleCounter};
use crate::rejects::BatchRejects;
use crate::schema::Schema;
use crate::typing::TypedRow;

/// Row chunks waiting for a write: enough for decoding to run ahead of writing without piling
/// up. Rows travel in chunks, not one by one: a channel send per row costs more CPU than
/// typing the row.
const CHUNK_BUFFER: usize = 8;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Retryable failures: the batch is left for redelivery. Permanent per-object failures are
/// not errors; they are rejects.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("GET s3://{bucket}/{key} failed")]
    Fetch {
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },
    #[error("reading s3://{bucket}/{key} failed mid-body")]
    Read {
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("the writer stopped before every row was handed over")]
    WriterStopped,
}

/// What loading a set of objects did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// Objects decoded (some rows may still have been rejected).
    pub files: u64,
    /// Objects rejected whole: unusable header, or a GET that can never succeed.
    pub files_failed: u64,
    pub rows_rejected: u64,
    pub bytes: u64,
    /// S3 throttling replies seen while loading (the SDK retried them).
    pub s3_throttles: u64,
    pub written: WriteOutcome,
}

/// How objects are read and typed.
pub struct Loader<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub throttles: &'a ThrottleCounter,
    pub fetch_limit: &'a AimdLimiter,
    pub task_concurrency: usize,
    pub write_concurrency: usize,
    pub schema: &'a Schema,
}

/// One object's contribution.
struct ObjectOutcome {
    loaded: bool,
    rejected_rows: u64,
    bytes: u64,
}

impl Loader<'_> {
    /// Loads every key, handing 25-row chunks to `write`. Rejects go to `rejects`.
    pub async fn load<F, Fut>(
        &self,
        bucket: &str,
        keys: &[String],
        rejects: &Mutex<BatchRejects>,
        write: F,
    ) -> Result<LoadStats, LoadError>
    where
        F: Fn(Vec<TypedRow>) -> Fut,
        Fut: Future<Output = Result<WriteOutcome, WriteError>>,
    {
        let throttles_before = self.throttles.get();
        let (tx, rx) = mpsc::channel::<Vec<TypedRow>>(CHUNK_BUFFER);
        let mut stats = LoadStats::default();
        let stats_ref = &mut stats;
        let produce = async move {
            let tx = tx; // owned here, so the channel closes when production ends
            stream::iter(keys)
                .map(|key| {
                    self.load_object(bucket, key, tx.clone(), rejects)
                        .instrument(tracing::info_span!("object", key = %key))
                })
                .buffer_unordered(self.task_concurrency.max(1))
                .try_for_each(|object| {
                    stats_ref.files += u64::from(object.loaded);
                    stats_ref.files_failed += u64::from(!object.loaded);
                    stats_ref.rows_rejected += object.rejected_rows;
                    stats_ref.bytes += object.bytes;
                    futures::future::ready(Ok(()))
                })
                .await
        };
        let consume = rx
            .flat_map(stream::iter)
            .chunks(MAX_BATCH_ITEMS)
            .map(&write)
            .buffer_unordered(self.write_concurrency.max(1))
            .try_fold(WriteOutcome::default(), |mut total, outcome| async move {
                total += outcome;
                Ok(total)
            });
        let (produced, written) = futures::join!(produce, consume);
        // A failed write closes the channel, so producers then fail too: report the cause.
        stats.written = written?;
        produced?;
        stats.s3_throttles = self.throttles.get().saturating_sub(throttles_before);
        Ok(stats)
    }

    async fn load_object(
        &self,
        bucket: &str,
        key: &str,
        mut rows: mpsc::Sender<Vec<TypedRow>>,
        rejects: &Mutex<BatchRejects>,
    ) -> Result<ObjectOutcome, LoadError> {
        let reject_object = |reason: String| {
            lock(rejects).object(key, reason);
            Ok(ObjectOutcome {
                loaded: false,
                rejected_rows: 0,
                bytes: 0,
            })
        };
        let permit = self.fetch_limit.acquire().await;
        let throttles_before = self.throttles.get();
        let response = match self.s3.get_object().bucket(bucket).key(key).send().await {
            Ok(response) => response,
            Err(error) if is_permanent(&error) => {
                permit.succeeded();
                return reject_object(format!("GET failed: {}", crate::report(&error)));
            }
            Err(error) => {
                self.verdict(permit, throttles_before);
                return Err(LoadError::Fetch {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    source: error.into(),
                });
            }
        };
        let bytes = response.content_length.unwrap_or(0).max(0) as u64;
        let read_error = |source: std::io::Error| LoadError::Read {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source: source.into(),
        };
        let mut decoder =
            match ObjectDecoder::open(response.body.into_async_read(), self.schema).await {
                Ok(decoder) => decoder,
                Err(DecodeError::Header(error)) => {
                    permit.succeeded();
                    return reject_object(error.to_string());
                }
                Err(DecodeError::Read(error)) => return Err(read_error(error)),
            };
        let mut rejected_rows = 0;
        let mut chunk = Vec::with_capacity(MAX_BATCH_ITEMS);
        loop {
            match decoder.next().await {
                Ok(Some(Decoded::Row(row))) => {
                    chunk.push(row);
                    if chunk.len() == MAX_BATCH_ITEMS {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(MAX_BATCH_ITEMS));
                        rows.send(full)
                            .await
                            .map_err(|_| LoadError::WriterStopped)?;
                    }
                }
                Ok(Some(Decoded::Reject(reject))) => {
                    rejected_rows += 1;
                    lock(rejects).row(key, reject);
                }
                Ok(None) => break,
                Err(error) => return Err(read_error(error)),
            }
        }
        if !chunk.is_empty() {
            rows.send(chunk)
                .await
                .map_err(|_| LoadError::WriterStopped)?;
        }
        self.verdict(permit, throttles_before);
        // The line that lets an operator follow one object (its key is on the span).
        tracing::info!(bytes, rejected = rejected_rows, "object loaded");
        Ok(ObjectOutcome {
            loaded: true,
            rejected_rows,
            bytes,
        })
    }

    /// Tells the limiter whether S3 pushed back while this request was in flight.
    fn verdict(&self, permit: AimdPermit<'_>, throttles_before: u64) {
        if self.throttles.get() > throttles_before {
            permit.throttled();
        } else {
            permit.succeeded();
        }
    }
}

/// GET failures no retry can fix: the object is gone, or we may not read it.
fn is_permanent<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    matches!(
        error.code(),
        Some("NoSuchKey" | "NoSuchBucket" | "AccessDenied" | "InvalidObjectState")
    )
}

fn lock(rejects: &Mutex<BatchRejects>) -> std::sync::MutexGuard<'_, BatchRejects> {
    // A list of records: a panic elsewhere cannot leave it half-written.
    rejects
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
