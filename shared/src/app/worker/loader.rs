//! A batch's objects, loaded concurrently and streamed. Objects are scheduled by
//! `buffer_unordered`; each GET holds a permit of an AIMD limiter (halved when S3 throttles) for
//! as long as its body is in flight; rows leave the decoder one by one through a bounded
//! channel into 25-row chunks written `write_concurrency` at a time. Everything runs on the
//! current thread, and memory is bounded by the limits, not by object or batch size.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt, stream};
use thiserror::Error;
use tracing::Instrument;

use super::chunk_writer::{MAX_BATCH_ITEMS, SourcedRow, WriteOutcome};
use crate::BoxError;
use crate::contract::messages::{RangeTask, Work};
use crate::contract::schema::Schema;
use crate::ingest::compression::{self, BoxedRead, Encoding};
use crate::ingest::decode::{DecodeError, Decoded, ObjectDecoder};
use crate::ingest::ranges::{self, ByteSource, RangeOpenError};
use crate::ingest::rejects::BatchRejects;
use crate::job::model::BatchStats;
use crate::limiter::{AimdLimiter, AimdPermit, ThrottleCounter};
use crate::port::objects::{Failure, ObjectError, ObjectStore, Read};
use crate::port::table::WriteError;

/// Row chunks waiting for a write: enough for decoding to run ahead of writing without piling
/// up. Rows travel in chunks, not one by one: a channel send per row costs more CPU than
/// typing the row.
const CHUNK_BUFFER: usize = 8;

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
    /// Rows rejected while typing (rows the table refused are in `written.rejected`).
    pub rows_rejected: u64,
    /// Input size: whole objects' sizes, ranges' lengths.
    pub bytes: u64,
    /// Bytes actually read from S3 (a range reads its row span, not its window).
    pub bytes_read: u64,
    /// S3 throttling replies seen while loading (the SDK retried them).
    pub s3_throttles: u64,
    pub written: WriteOutcome,
}

impl LoadStats {
    /// The counters the ledger adds to the job.
    pub fn batch_stats(&self) -> BatchStats {
        BatchStats {
            files: self.files,
            files_failed: self.files_failed,
            rows_written: self.written.written,
            rows_rejected: self.rows_rejected + self.written.rejected,
            rows_duplicate: self.written.duplicates,
            bytes: self.bytes,
            bytes_read: self.bytes_read,
            write_retries: self.written.retries,
            s3_throttles: self.s3_throttles,
            rows_existing: self.written.existing,
            write_units: self.written.units,
        }
    }
}

/// How objects are read and typed.
pub struct Loader<'a> {
    pub objects: &'a dyn ObjectStore,
    pub throttles: &'a ThrottleCounter,
    pub fetch_limit: &'a AimdLimiter,
    pub task_concurrency: usize,
    pub write_concurrency: usize,
    pub schema: &'a Schema,
    /// Cap on the decoded bytes of one compressed object.
    pub max_decoded_bytes: u64,
    /// Records longer than this are rejected, not buffered.
    pub max_record_bytes: usize,
}

/// One object's contribution.
struct ObjectOutcome {
    loaded: bool,
    rejected_rows: u64,
    bytes: u64,
    bytes_read: u64,
}

/// An object or range ready to decode (`None`: a range where no row starts).
struct Opened<R> {
    decoder: Option<ObjectDecoder<R>>,
    /// Its input size.
    bytes: u64,
    /// Where a ranged read starts (its bytes read are then counted by the decoder); `None`:
    /// a whole object, read whole.
    read_from: Option<u64>,
}

/// Why an object could not be opened: for good (a reject) or for now (a retry).
enum OpenFailure {
    Reject(String),
    Retry(LoadError),
}

/// A ranged GET source pinned to the ETag the coordinator planned with.
struct PinnedObject<'a> {
    objects: &'a dyn ObjectStore,
    bucket: &'a str,
    task: &'a RangeTask,
}

impl ByteSource for PinnedObject<'_> {
    type Reader = BoxedRead;
    type Error = ObjectError;

    async fn read(&self, from: u64, to: u64) -> Result<BoxedRead, ObjectError> {
        let read = Read {
            from,
            to: Some(to),
            if_match: Some(&self.task.etag),
        };
        let body = self.objects.get(self.bucket, &self.task.key, read).await?;
        Ok(body.reader)
    }
}

impl Loader<'_> {
    /// Loads every unit of work, handing 25-row chunks to `write`. Rejects go to `rejects`.
    pub async fn load<F, Fut>(
        &self,
        bucket: &str,
        work: &[Work<'_>],
        rejects: &Mutex<BatchRejects>,
        write: F,
    ) -> Result<LoadStats, LoadError>
    where
        F: Fn(Vec<SourcedRow>) -> Fut,
        Fut: Future<Output = Result<WriteOutcome, WriteError>>,
    {
        let throttles_before = self.throttles.get();
        let (tx, rx) = mpsc::channel::<Vec<SourcedRow>>(CHUNK_BUFFER);
        let mut stats = LoadStats::default();
        let stats_ref = &mut stats;
        let produce = async move {
            let tx = tx; // owned here, so the channel closes when production ends
            stream::iter(work)
                .map(|work| {
                    let span = match work {
                        Work::Object(key) => tracing::info_span!("object", key = %key),
                        Work::Range(task) => tracing::info_span!(
                            "object", key = %task.key, range_start = task.start, range_end = task.end
                        ),
                    };
                    self.load_work(bucket, *work, tx.clone(), rejects)
                        .instrument(span)
                })
                .buffer_unordered(self.task_concurrency.max(1))
                .try_for_each(|object| {
                    stats_ref.files += u64::from(object.loaded);
                    stats_ref.files_failed += u64::from(!object.loaded);
                    stats_ref.rows_rejected += object.rejected_rows;
                    stats_ref.bytes += object.bytes;
                    stats_ref.bytes_read += object.bytes_read;
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

    async fn load_work(
        &self,
        bucket: &str,
        work: Work<'_>,
        rows: mpsc::Sender<Vec<SourcedRow>>,
        rejects: &Mutex<BatchRejects>,
    ) -> Result<ObjectOutcome, LoadError> {
        let key = work.key();
        let source = RowSource {
            object: Arc::from(key),
            ranged: matches!(work, Work::Range(_)),
        };
        // Rows rejected so far: they stay counted if the object is rejected partway.
        let mut rejected_rows = 0;
        let permit = self.fetch_limit.acquire().await;
        let throttles_before = self.throttles.get();
        let decoded = match work {
            Work::Object(key) => {
                let opened = self.open_object(bucket, key).await;
                self.decode(opened, bucket, &source, rows, rejects, &mut rejected_rows)
                    .await
            }
            Work::Range(task) => {
                let opened = self.open_range(bucket, task).await;
                self.decode(opened, bucket, &source, rows, rejects, &mut rejected_rows)
                    .await
            }
        };
        // The GET permit is held until the body is read: it bounds bodies in flight.
        self.verdict(permit, throttles_before);
        let (bytes, bytes_read) = match decoded {
            Ok(measured) => measured,
            Err(OpenFailure::Reject(reason)) => {
                let reason = match work {
                    Work::Object(_) => reason,
                    Work::Range(task) => format!("bytes {}..{}: {reason}", task.start, task.end),
                };
                lock(rejects).object(key, reason);
                return Ok(ObjectOutcome {
                    loaded: false,
                    rejected_rows,
                    bytes: 0,
                    bytes_read: 0,
                });
            }
            Err(OpenFailure::Retry(error)) => return Err(error),
        };
        // The line that lets an operator follow one object (its key is on the span).
        tracing::info!(bytes, bytes_read, rejected = rejected_rows, "object loaded");
        Ok(ObjectOutcome {
            loaded: true,
            rejected_rows,
            bytes,
            bytes_read,
        })
    }

    /// Decodes an opened object; returns its input size and the bytes read.
    async fn decode<R: tokio::io::AsyncBufRead + Unpin>(
        &self,
        opened: Result<Opened<R>, OpenFailure>,
        bucket: &str,
        source: &RowSource,
        rows: mpsc::Sender<Vec<SourcedRow>>,
        rejects: &Mutex<BatchRejects>,
        rejected_rows: &mut u64,
    ) -> Result<(u64, u64), OpenFailure> {
        let opened = opened?;
        let Some(mut decoder) = opened.decoder else {
            return Ok((opened.bytes, 0));
        };
        self.pump(&mut decoder, source, rows, rejects, rejected_rows)
            .await
            .map_err(|error| self.classify_read(bucket, &source.object, error))?;
        let bytes_read = match opened.read_from {
            Some(from) => decoder.position().saturating_sub(from),
            None => opened.bytes,
        };
        Ok((opened.bytes, bytes_read))
    }

    /// A whole object, decompressed if its key says so.
    async fn open_object(&self, bucket: &str, key: &str) -> Result<Opened<BoxedRead>, OpenFailure> {
        let object = match self.objects.get(bucket, key, Read::default()).await {
            Ok(object) => object,
            Err(error) => return Err(fetch_failure(bucket, key, error)),
        };
        let bytes = object.size;
        let body =
            compression::decoded(object.reader, Encoding::of_key(key), self.max_decoded_bytes);
        match ObjectDecoder::open_capped(body, self.schema, self.max_record_bytes).await {
            Ok(decoder) => Ok(Opened {
                decoder: Some(decoder),
                bytes,
                read_from: None,
            }),
            Err(error @ DecodeError::HeaderTooLong { .. }) => {
                Err(OpenFailure::Reject(error.to_string()))
            }
            Err(DecodeError::Header(error)) => Err(OpenFailure::Reject(error.to_string())),
            Err(DecodeError::Read(error)) => Err(self.classify_read(bucket, key, error)),
        }
    }

    /// One range of a large object, every GET pinned to the planned ETag.
    async fn open_range(
        &self,
        bucket: &str,
        task: &RangeTask,
    ) -> Result<Opened<BoxedRead>, OpenFailure> {
        let source = PinnedObject {
            objects: self.objects,
            bucket,
            task,
        };
        match ranges::open_range(&source, task, self.schema, self.max_record_bytes).await {
            Ok(decoder) => Ok(Opened {
                decoder,
                bytes: task.end - task.start,
                read_from: task.rows.map(|span| span.first),
            }),
            Err(RangeOpenError::Source(error)) => Err(fetch_failure(bucket, &task.key, error)),
            Err(error) => Err(OpenFailure::Reject(error.to_string())),
        }
    }

    /// Decodes every row into chunks for the writer, counting rejected rows. Rows decoded
    /// before a failed read are still handed over (a corrupt tail rejects only the rest).
    async fn pump<R: tokio::io::AsyncBufRead + Unpin>(
        &self,
        decoder: &mut ObjectDecoder<R>,
        source: &RowSource,
        mut rows: mpsc::Sender<Vec<SourcedRow>>,
        rejects: &Mutex<BatchRejects>,
        rejected_rows: &mut u64,
    ) -> Result<(), PumpError> {
        let mut chunk = Vec::with_capacity(MAX_BATCH_ITEMS);
        let mut failed = None;
        loop {
            let decoded = match decoder.next().await {
                Ok(Some(decoded)) => decoded,
                Ok(None) => break,
                Err(error) => {
                    failed = Some(PumpError::Read(error));
                    break;
                }
            };
            match decoded {
                Decoded::Row(row) => {
                    chunk.push(SourcedRow {
                        object: source.object.clone(),
                        ranged: source.ranged,
                        row,
                    });
                    if chunk.len() == MAX_BATCH_ITEMS {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(MAX_BATCH_ITEMS));
                        rows.send(full)
                            .await
                            .map_err(|_| PumpError::WriterStopped)?;
                    }
                }
                Decoded::Reject(reject) => {
                    *rejected_rows += 1;
                    lock(rejects).row(&source.object, reject);
                }
            }
        }
        if !chunk.is_empty() {
            rows.send(chunk)
                .await
                .map_err(|_| PumpError::WriterStopped)?;
        }
        failed.map_or(Ok(()), Err)
    }

    /// A failed body read: corrupt compressed data or the size cap are for good; anything
    /// else (a dropped connection) is retried.
    fn classify_read(&self, bucket: &str, key: &str, error: impl Into<PumpError>) -> OpenFailure {
        match error.into() {
            PumpError::WriterStopped => OpenFailure::Retry(LoadError::WriterStopped),
            PumpError::Read(error)
                if Encoding::of_key(key).is_compressed() && !compression::is_body_error(&error) =>
            {
                OpenFailure::Reject(format!("decompressing failed: {error}"))
            }
            PumpError::Read(error) => OpenFailure::Retry(LoadError::Read {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                source: error.into(),
            }),
        }
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

/// Which object rows come from, carried with each row to the writer.
struct RowSource {
    object: Arc<str>,
    ranged: bool,
}

/// What stops decoding an opened object.
enum PumpError {
    Read(std::io::Error),
    WriterStopped,
}

impl From<std::io::Error> for PumpError {
    fn from(error: std::io::Error) -> Self {
        Self::Read(error)
    }
}

/// A failed GET: permanent ones are rejects, the rest are retried with the batch.
fn fetch_failure(bucket: &str, key: &str, error: ObjectError) -> OpenFailure {
    let detail = crate::report(&*error.source);
    match error.failure {
        Failure::Changed => OpenFailure::Reject(format!(
            "the object changed after the job was planned (its ETag no longer matches): {detail}"
        )),
        _ if error.is_permanent() => OpenFailure::Reject(format!("GET failed: {detail}")),
        _ => OpenFailure::Retry(LoadError::Fetch {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source: error.into(),
        }),
    }
}

fn lock(rejects: &Mutex<BatchRejects>) -> std::sync::MutexGuard<'_, BatchRejects> {
    // A list of records: a panic elsewhere cannot leave it half-written.
    rejects
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
