//! A batch's objects, loaded concurrently and streamed. Objects are scheduled by
//! `buffer_unordered`; each GET holds a permit of an AIMD limiter (halved when S3 throttles) for
//! as long as its body is in flight; rows leave the decoder one by one through a bounded
//! channel into 25-row chunks written `write_concurrency` at a time, one per lane. Everything runs on the
//! current thread, and memory is bounded by the limits, not by object or batch size. The
//! chunks go through ordered lanes by key (`lanes`): the rows of one key are written in
//! row order, whatever the timing. The row pump is [`pump`]; an export data file is held to
//! its manifest in [`manifest_checks`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, TryStreamExt, stream};
use thiserror::Error;
use tracing::Instrument;

mod manifest_checks;
mod pump;

use super::chunk_writer::{MAX_BATCH_ITEMS, SourcedRow, WriteOutcome};
use super::lanes::{self, Seen};
use super::open::{OpenFailure, Opened};
use super::received::Received;
use super::resume::{Left, Stop, StoppedAt, rest_of};
use crate::BoxError;
use crate::contract::messages::Unit;
use crate::contract::schema::Schema;
use crate::contract::write::WriteMode;
use crate::ingest::compression::{self, Encoding};
use crate::ingest::digest::Digest;
use crate::ingest::format::{Format, RowDecoder};
use crate::ingest::rejects::BatchRejects;
use crate::ingest::typing::TypedRow;
use crate::job::model::BatchStats;
use crate::limiter::{AimdLimiter, AimdPermit, RatePacer, ThrottleCounter};
use crate::port::objects::ObjectStore;
use crate::port::table::WriteError;

/// Row chunks waiting for a write: enough for decoding to run ahead of writing without piling
/// up. Rows travel in chunks, not one by one: a channel send per row costs more CPU than
/// typing the row.
const CHUNK_BUFFER: usize = 8;

/// Chunks queued per write lane: a lane whose call is slow holds up the router (and so the
/// other lanes) only once this many of its chunks wait.
const LANE_BUFFER: usize = 3;

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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadStats {
    /// Objects decoded (some rows may still have been rejected).
    pub files: u64,
    /// Objects rejected whole: unusable header, or a GET that can never succeed.
    pub files_failed: u64,
    /// Export data files whose lines differ in number from their manifest's item count.
    pub files_miscounted: u64,
    /// Export data files whose stored bytes' MD5 is not their manifest's `md5Checksum`.
    pub files_corrupt: u64,
    /// Objects an inventory listed that are gone (404): skipped, not failed.
    pub files_missing: u64,
    /// Rows rejected while typing (rows the table refused are in `written.rejected`).
    pub rows_rejected: u64,
    /// Input size: whole objects' sizes, ranges' lengths.
    pub bytes: u64,
    /// Bytes actually read from S3 (a range reads its row span, not its window).
    pub bytes_read: u64,
    /// S3 throttling replies seen while loading (the SDK retried them).
    pub s3_throttles: u64,
    pub written: WriteOutcome,
    /// What a load stopped before its deadline left undone (empty: everything was done).
    pub left: Vec<Left>,
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
            files_miscounted: self.files_miscounted,
            files_corrupt: self.files_corrupt,
            files_missing: self.files_missing,
        }
    }
}

/// Whether `work` is read through a decompressor (a compressed whole object or its rest).
fn stream_is_compressed(work: Unit<'_>) -> bool {
    match work {
        Unit::Object(key) => Encoding::of_key(key).is_compressed(),
        Unit::Tail(tail) => Encoding::of_key(&tail.key).is_compressed(),
        Unit::Range(_) | Unit::RowGroups(_) => false,
    }
}

/// How objects are read and typed.
#[derive(Clone, Copy)]
pub struct Loader<'a> {
    pub objects: &'a dyn ObjectStore,
    pub throttles: &'a ThrottleCounter,
    pub fetch_limit: &'a AimdLimiter,
    pub task_concurrency: usize,
    /// Write lanes (each writes its chunks in row order): rows of one key share a lane.
    pub write_concurrency: usize,
    /// Which row of a key wins across a lane's chunks (`lanes::settle`).
    pub write_mode: WriteMode,
    pub schema: &'a Schema,
    /// The batch's format; `None`: each object's by its key.
    pub format: Option<Format>,
    /// Cap on the decoded bytes of one compressed object.
    pub max_decoded_bytes: u64,
    /// Records longer than this are rejected, not buffered.
    pub max_record_bytes: usize,
    /// When due, every object stops at its next row boundary and what is left is returned
    /// in [`LoadStats::left`] (a resumable batch nearing its deadline).
    pub stop: &'a Stop,
    /// A capped job's pacer: each row books its write slot as it is decoded (see
    /// [`Pacing`]). `None`: uncapped.
    pub pacing: Option<Pacing<'a>>,
    /// An export's data files: each whole object's lines are compared with its manifest's
    /// item count.
    pub export: Option<&'a crate::contract::messages::ExportFiles>,
    /// The keys come from an S3 Inventory: one gone since the report is missing, not failed.
    pub listed_by_inventory: bool,
}

/// Write slots booked as rows are decoded, not as they are written: a row enters the
/// pipeline only if its write may begin before the stop, so the rows in flight when a part
/// stops are exactly what the instance's share can write by then, however small the share
/// (the writer waits for each row's slot: `SourcedRow::slot`). Booking at the writer
/// instead let thousands of rows pile up in flight, each waiting its turn past the deadline.
#[derive(Clone, Copy)]
pub struct Pacing<'a> {
    pub pacer: &'a RatePacer,
    /// The units a row's first write is billed (the writer's rule: `ChunkWriter::charge`).
    pub units: &'a (dyn Fn(&TypedRow) -> u64 + Sync),
}

/// One object's contribution.
struct ObjectOutcome {
    loaded: bool,
    /// Listed by an inventory, gone since: neither loaded nor failed.
    missing: bool,
    /// An export data file read to its end with another number of lines than its manifest's.
    miscounted: bool,
    /// An export data file read to its end whose bytes are not the ones its manifest hashed.
    corrupt: bool,
    rejected_rows: u64,
    bytes: u64,
    bytes_read: u64,
    /// Stopped before its end (or before it started): the rest, for a later part.
    left: Option<Left>,
    /// Counts as a file when done: false for a Parquet task that does not end its object.
    counts_file: bool,
}

/// What decoding an object did: its input size and bytes read (for a stopped object, the
/// part before its next row), and what is left of it.
struct Measured {
    bytes: u64,
    bytes_read: u64,
    left: Option<Left>,
    /// What an export data file's MD5 was as it passed, read to its end.
    digest: Option<Digest>,
    /// Lines or records read, the skipped ones of a resumed read included.
    records: u64,
    /// See [`ObjectOutcome::counts_file`].
    counts_file: bool,
}

impl Loader<'_> {
    /// Loads every unit of work, handing 25-row chunks to `write`. Rejects go to `rejects`.
    pub async fn load<F, Fut>(
        &self,
        bucket: &str,
        work: &[Unit<'_>],
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
                        Unit::Object(key) => tracing::info_span!("object", key = %key),
                        Unit::Range(task) => tracing::info_span!(
                            "object", key = %task.key, range_start = task.start, range_end = task.end
                        ),
                        Unit::Tail(tail) => tracing::info_span!(
                            "object", key = %tail.key, rows_done = tail.rows_done
                        ),
                        Unit::RowGroups(task) => tracing::info_span!(
                            "object", key = %task.key, first_group = task.first_group,
                            stop_group = task.stop_group, rows_done = task.rows_done
                        ),
                    };
                    self.load_work(bucket, *work, tx.clone(), rejects)
                        .instrument(span)
                })
                .buffer_unordered(self.task_concurrency.max(1))
                .try_for_each(|object| {
                    stats_ref.files +=
                        u64::from(object.loaded && object.left.is_none() && object.counts_file);
                    stats_ref.files_failed += u64::from(!object.loaded && !object.missing);
                    stats_ref.files_missing += u64::from(object.missing);
                    stats_ref.files_miscounted += u64::from(object.miscounted);
                    stats_ref.files_corrupt += u64::from(object.corrupt);
                    stats_ref.rows_rejected += object.rejected_rows;
                    stats_ref.bytes += object.bytes;
                    stats_ref.bytes_read += object.bytes_read;
                    stats_ref.left.extend(object.left);
                    futures::future::ready(Ok(()))
                })
                .await
        };
        let lanes = self.write_concurrency.max(1);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..lanes)
            .map(|_| mpsc::channel::<Vec<SourcedRow>>(LANE_BUFFER))
            .unzip();
        let route = route(rx, senders);
        let mode = self.write_mode;
        let write = &write;
        let consume = futures::future::try_join_all(receivers.into_iter().map(|chunks| {
            // One lane: its chunks one after another, in row order.
            chunks.map(Ok).try_fold(
                (WriteOutcome::default(), Seen::default()),
                move |(mut total, mut seen), chunk| async move {
                    let settled = lanes::settle(mode, chunk, &mut seen);
                    let mut outcome = match settled.rows.is_empty() {
                        true => WriteOutcome::default(),
                        false => write(settled.rows).await?,
                    };
                    outcome.duplicates += settled.repeats;
                    if !settled.dropped {
                        outcome.written -= settled.repeats.min(outcome.written);
                    }
                    total += outcome;
                    Ok::<_, WriteError>((total, seen))
                },
            )
        }));
        let (produced, (), written) = futures::join!(produce, route, consume);
        // A failed write closes the channels, so producers then fail too: report the cause.
        stats.written =
            written?
                .into_iter()
                .fold(WriteOutcome::default(), |mut total, (lane, _)| {
                    total += lane;
                    total
                });
        produced?;
        stats.s3_throttles = self.throttles.get().saturating_sub(throttles_before);
        Ok(stats)
    }

    async fn load_work(
        &self,
        bucket: &str,
        work: Unit<'_>,
        rows: mpsc::Sender<Vec<SourcedRow>>,
        rejects: &Mutex<BatchRejects>,
    ) -> Result<ObjectOutcome, LoadError> {
        let key = work.key();
        let source = RowSource {
            object: Arc::from(key),
            ranged: matches!(work, Unit::Range(_)),
        };
        // Rows rejected so far: they stay counted if the object is rejected partway.
        let mut rejected_rows = 0;
        if self.stop.due() {
            return Ok(ObjectOutcome::untouched(work));
        }
        let permit = self.fetch_limit.acquire().await;
        if self.stop.due() {
            // Waiting for the permit took the time left: leave the object to the next part.
            drop(permit);
            return Ok(ObjectOutcome::untouched(work));
        }
        let throttles_before = self.throttles.get();
        // This unit's GETs count what they hand over, for the outcomes that have no figure
        // of their own (a reject, a compressed stream stopped part way).
        let received = Received::new(self.objects);
        let unit = Loader {
            objects: &received,
            ..*self
        };
        let opened = match work {
            Unit::Object(key) => unit.open_object(bucket, key).await,
            Unit::Range(task) => unit.open_range(bucket, task).await,
            Unit::Tail(tail) => unit.open_tail(bucket, tail).await,
            Unit::RowGroups(task) => unit.open_row_groups(bucket, task).await,
        };
        let decoded = self
            .decode(
                opened,
                work,
                bucket,
                &source,
                rows,
                rejects,
                &mut rejected_rows,
            )
            .await;
        // The GET permit is held until the body is read: it bounds bodies in flight.
        self.verdict(permit, throttles_before);
        let Measured {
            bytes,
            mut bytes_read,
            left,
            digest,
            records,
            counts_file,
        } = match decoded {
            Ok(measured) => measured,
            Err(failure) => {
                let (reason, gone) = match failure {
                    OpenFailure::Retry(error) => return Err(error),
                    OpenFailure::Reject(reason) => (reason, false),
                    OpenFailure::Missing(reason) => (reason, true),
                };
                let missing = gone && self.listed_by_inventory;
                let reason = match (missing, work) {
                    (true, _) => format!(
                        "listed by the S3 Inventory but gone since (counted missing, not failed): {reason}"
                    ),
                    (false, Unit::Object(_) | Unit::Tail(_)) => reason,
                    (false, Unit::Range(task)) => {
                        format!("bytes {}..{}: {reason}", task.start, task.end)
                    }
                    (false, Unit::RowGroups(task)) => format!(
                        "row groups {}..{}: {reason}",
                        task.first_group, task.stop_group
                    ),
                };
                lock(rejects).object(key, reason);
                return Ok(ObjectOutcome {
                    loaded: false,
                    missing,
                    miscounted: false,
                    corrupt: false,
                    rejected_rows,
                    bytes: 0,
                    // Whatever was fetched before it was refused was read all the same.
                    bytes_read: received.bytes(),
                    left: None,
                    counts_file: true,
                });
            }
        };
        if left.is_some() && stream_is_compressed(work) {
            // Stopped in a compressed stream: the next part decodes it from the start again,
            // so this part's compressed bytes are its own read, not a share of the object's.
            bytes_read = received.bytes();
        }
        // The line that lets an operator follow one object (its key is on the span).
        match &left {
            None => tracing::info!(bytes, bytes_read, rejected = rejected_rows, "object loaded"),
            Some(_) => tracing::info!(
                bytes,
                bytes_read,
                rejected = rejected_rows,
                "object stopped at a row boundary before the deadline; the rest goes on"
            ),
        }
        let miscounted = left.is_none() && self.miscounted(key, records, rejects);
        let corrupt = left.is_none() && self.corrupt(key, digest, bytes, rejects);
        Ok(ObjectOutcome {
            loaded: true,
            missing: false,
            miscounted,
            corrupt,
            rejected_rows,
            bytes,
            bytes_read,
            left,
            counts_file,
        })
    }

    /// Decodes an opened object (`work`); returns its input size, the bytes read, and,
    /// if it stopped before its end, the rest.
    #[allow(clippy::too_many_arguments)]
    async fn decode<R: tokio::io::AsyncBufRead + Unpin>(
        &self,
        opened: Result<Opened<R>, OpenFailure>,
        work: Unit<'_>,
        bucket: &str,
        source: &RowSource,
        rows: mpsc::Sender<Vec<SourcedRow>>,
        rejects: &Mutex<BatchRejects>,
        rejected_rows: &mut u64,
    ) -> Result<Measured, OpenFailure> {
        let opened = opened?;
        let Some(mut decoder) = opened.decoder else {
            return Ok(Measured {
                bytes: opened.bytes,
                bytes_read: 0,
                left: None,
                digest: None,
                records: 0,
                counts_file: true,
            });
        };
        // A whole object can resume only pinned to the version read so far.
        let stoppable = !matches!(work, Unit::Object(_)) || opened.etag.is_some();
        let stopped = self
            .pump(
                &mut decoder,
                source,
                rows,
                rejects,
                rejected_rows,
                stoppable,
            )
            .await
            .map_err(|error| self.classify_read(bucket, &source.object, error))?;
        let stopped_at = StoppedAt {
            next_row: decoder.next_row(),
            records: decoder.records(),
            header: decoder.header(),
            header_end: decoder.header_end(),
            etag: opened.etag.as_deref().unwrap_or_default(),
            size: opened.bytes,
            read_from: opened.read_from,
            by_rows: matches!(decoder, RowDecoder::Parquet(_)),
        };
        if let Some((left, bytes, bytes_read)) =
            stopped.then(|| rest_of(work, &stopped_at)).flatten()
        {
            return Ok(Measured {
                bytes,
                bytes_read: bytes_read + opened.header_read,
                left: Some(left),
                digest: None,
                records: 0,
                counts_file: true,
            });
        }
        let bytes_read = opened.header_read
            + match opened.read_from {
                Some(from) => decoder.position().saturating_sub(from),
                None => opened.bytes,
            };
        Ok(Measured {
            bytes: opened.bytes,
            bytes_read,
            left: None,
            digest: opened.digest,
            records: decoder.records(),
            counts_file: match &decoder {
                RowDecoder::Parquet(parquet) => parquet.ends_file(),
                _ => true,
            },
        })
    }

    /// A failed body read: corrupt compressed data or the size cap are for good; anything
    /// else (a dropped connection) is retried.
    pub(super) fn classify_read(
        &self,
        bucket: &str,
        key: &str,
        error: impl Into<PumpError>,
    ) -> OpenFailure {
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

/// Hands the decoded rows to the lane of each key, in 25-row chunks (a send per chunk, not
/// per row), and the partial chunks once decoding ends. Stops when a lane has failed.
async fn route(
    mut decoded: mpsc::Receiver<Vec<SourcedRow>>,
    mut lanes: Vec<mpsc::Sender<Vec<SourcedRow>>>,
) {
    let count = lanes.len() as u64;
    let mut pending: Vec<Vec<SourcedRow>> = (0..lanes.len()).map(|_| Vec::new()).collect();
    while let Some(rows) = decoded.next().await {
        for row in rows {
            let lane = (row.key_hash % count) as usize;
            pending[lane].push(row);
            if pending[lane].len() == MAX_BATCH_ITEMS {
                let full =
                    std::mem::replace(&mut pending[lane], Vec::with_capacity(MAX_BATCH_ITEMS));
                if lanes[lane].send(full).await.is_err() {
                    return;
                }
            }
        }
    }
    for (lane, rows) in lanes.iter_mut().zip(pending) {
        if !rows.is_empty() && lane.send(rows).await.is_err() {
            return;
        }
    }
}

impl ObjectOutcome {
    /// Work left untouched for a later part.
    fn untouched(work: Unit<'_>) -> Self {
        Self {
            loaded: true,
            missing: false,
            miscounted: false,
            corrupt: false,
            rejected_rows: 0,
            bytes: 0,
            bytes_read: 0,
            left: Some(Left::untouched(work)),
            counts_file: true,
        }
    }
}

/// Which object rows come from, carried with each row to the writer.
struct RowSource {
    object: Arc<str>,
    ranged: bool,
}

/// What stops decoding an opened object.
pub(super) enum PumpError {
    Read(std::io::Error),
    WriterStopped,
}

impl From<std::io::Error> for PumpError {
    fn from(error: std::io::Error) -> Self {
        Self::Read(error)
    }
}

fn lock(rejects: &Mutex<BatchRejects>) -> std::sync::MutexGuard<'_, BatchRejects> {
    // A list of records: a panic elsewhere cannot leave it half-written.
    rejects
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
