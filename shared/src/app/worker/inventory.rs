//! An inventory job's count and emit batches (`docs/inventory.md`). A **count** reads its
//! data file once (its MD5 checked against the manifest as it streams), filters and batches
//! its rows deterministically, stores how many key batches it makes (a small JSON beside
//! the job's rejects reports), and is counted; whoever sees every count in wakes the compose
//! step. An **emit** reads the same file again, pinned to the version the count read, and
//! sends its key batches under the numbers the compose step gave it; a redelivery sends the
//! same batches under the same numbers (counted once), and one stopped before its deadline
//! goes on as a part of the same batch from its next key batch.

use tokio::io::AsyncReadExt;

use super::resume::Stop;
use super::{Worker, WorkerError};
use crate::app::queue_writer::QueueWriter;
use crate::contract::ids::BatchNo;
use crate::contract::inventory::{
    ComposeInventory, EmitPlan, InventoryCompose, InventoryFile, InventoryTask, StoredCount,
};
use crate::contract::messages::{BatchMessage, Resumed, Work};
use crate::fan_in::Ledger as _;
use crate::ingest::digest::Digest;
use crate::ingest::inventory::columns::CsvColumns;
use crate::ingest::inventory::parquet::ParquetInventory;
use crate::ingest::inventory::{DataRows, InventoryBatcher, InventoryError};
use crate::job::model::BatchStats;
use crate::plan::inventory::{SENDS_IN_FLIGHT, count_key};
use crate::port::objects::{Failure, Read};
use crate::port::queue::{Entry, MAX_ENTRIES, Queues};

/// What an emit did.
pub(super) enum Emitted {
    Done(BatchStats),
    /// Stopped before the deadline: the rest goes on from this key batch of the file.
    Paused {
        next: u64,
        stats: BatchStats,
    },
}

/// Why a data file could not be read.
enum Unread {
    /// Not as its manifest says (gone, MD5, a row): no retry helps.
    Permanent(String),
    Retry(WorkerError),
}

impl From<WorkerError> for Unread {
    fn from(error: WorkerError) -> Self {
        Unread::Retry(error)
    }
}

fn of_inventory(error: InventoryError) -> Unread {
    match error {
        // A body cut mid-stream reads as this too: retried with the batch.
        InventoryError::Read { .. } => Unread::Retry(WorkerError::InventoryRead(error)),
        other => Unread::Permanent(other.to_string()),
    }
}

impl Worker {
    /// The rows of `file`, pinned to `etag` if given; and the digest to check once read
    /// (`None`: checked already, a Parquet file read whole).
    async fn open_inventory_file(
        &self,
        batch: &BatchMessage,
        file: &InventoryFile,
        etag: Option<&str>,
    ) -> Result<(DataRows, Option<Digest>, String), Unread> {
        let read = Read {
            if_match: etag.filter(|e| !e.is_empty()),
            ..Read::default()
        };
        let body = match self.objects.get(&batch.bucket, &file.key, read).await {
            Ok(body) => body,
            Err(error) if error.is_permanent() => {
                let why = match error.failure {
                    Failure::Changed => "changed since it was counted (its ETag no longer matches)",
                    _ => "cannot be read",
                };
                return Err(Unread::Permanent(format!(
                    "the inventory data file s3://{}/{} {why}: {}",
                    batch.bucket,
                    file.key,
                    crate::report(&error)
                )));
            }
            Err(error) => return Err(WorkerError::InventoryGet(error).into()),
        };
        let version = body.etag.clone().unwrap_or_default();
        if !file.parquet {
            let columns = CsvColumns::of_schema(&file.schema).map_err(Unread::Permanent)?;
            let (rows, digest) = DataRows::csv(body.reader, columns, &file.key);
            return Ok((rows, Some(digest), version));
        }
        let mut bytes = Vec::with_capacity(file.size as usize);
        let mut reader = body.reader;
        reader.read_to_end(&mut bytes).await.map_err(|e| {
            of_inventory(InventoryError::Read {
                file: file.key.clone(),
                reason: e.to_string(),
            })
        })?;
        crate::ingest::inventory::check_bytes(&bytes, &file.key, &file.md5, file.size)
            .map_err(|e| Unread::Permanent(e.to_string()))?;
        let rows = ParquetInventory::open(bytes.into(), &file.key).map_err(of_inventory)?;
        Ok((DataRows::Parquet(rows), None, version))
    }

    fn batcher(file: &InventoryFile) -> InventoryBatcher {
        InventoryBatcher::new(
            file.filter.clone(),
            &file.source_bucket,
            file.batch_size.max(1) as usize,
            file.batch_bytes,
        )
    }

    /// Phase one for one data file: read, check, batch, store the count.
    pub(super) async fn count_inventory(
        &self,
        batch: &BatchMessage,
        task: &InventoryTask,
    ) -> Result<BatchStats, WorkerError> {
        let file = &task.file;
        let counted = async {
            let (mut rows, digest, etag) = self.open_inventory_file(batch, file, None).await?;
            let count = crate::ingest::inventory::batch_file(
                &mut rows,
                Self::batcher(file),
                &file.key,
                |_, _| {},
            )
            .await
            .map_err(of_inventory)?;
            if let Some(digest) = digest {
                crate::ingest::inventory::check_digest(&digest, &file.key, &file.md5, file.size)
                    .map_err(|e| Unread::Permanent(e.to_string()))?;
            }
            Ok::<_, Unread>((count, etag))
        }
        .await;
        let stored = match counted {
            Ok((count, etag)) => StoredCount {
                batches: count.batches,
                objects: count.objects,
                bytes: count.bytes,
                rows: count.rows,
                listed: count.listed,
                skipped: count.skipped,
                etag,
                file: Some(file.clone()),
                error: None,
            },
            Err(Unread::Permanent(reason)) => {
                tracing::error!(job_id = %batch.job_id, file = %file.key, %reason, "an inventory data file does not read as its manifest says; the compose step fails the job");
                StoredCount {
                    file: Some(file.clone()),
                    error: Some(reason),
                    ..StoredCount::default()
                }
            }
            Err(Unread::Retry(error)) => return Err(error),
        };
        let key = count_key(&batch.report, &batch.job_id, file.index);
        let json = serde_json::to_vec(&stored).expect("a count serializes");
        self.objects
            .put(&batch.report.bucket, &key, json, "application/json")
            .await
            .map_err(WorkerError::StoreScan)?;
        tracing::info!(job_id = %batch.job_id, file = %file.key, batches = stored.batches, objects = stored.objects, "inventory data file counted");
        Ok(BatchStats {
            bytes_read: file.size,
            ..BatchStats::default()
        })
    }

    /// Once every count of the job is in (the counts are its only batches before the
    /// compose step, so the job's count tells), wakes the compose step. Duplicates are
    /// harmless: the step is idempotent.
    pub(super) async fn wake_inventory_compose(
        &self,
        batch: &BatchMessage,
        task: &InventoryTask,
    ) -> Result<(), WorkerError> {
        let Some(job) = self.ledger.get(&batch.job_id).await? else {
            return Ok(());
        };
        if job.status.is_final() || job.batches_done < task.file.files {
            return Ok(());
        }
        let Some(queue_url) = &self.config.control_queue_url else {
            return Err(WorkerError::Wake("CONTROL_QUEUE_URL is not set".into()));
        };
        let body = serde_json::to_string(&ComposeInventory {
            job_id: batch.job_id.clone(),
            compose_inventory: InventoryCompose {
                manifest: task.file.manifest.clone(),
                files: task.file.files,
            },
        })
        .expect("a compose message serializes");
        self.queues
            .send(
                queue_url,
                &body,
                &format!("{}-compose-inventory", batch.job_id),
            )
            .await
            .map_err(|e| WorkerError::Wake(e.into()))?;
        tracing::info!(job_id = %batch.job_id, files = task.file.files, "every inventory data file counted; compose woken");
        Ok(())
    }

    /// Phase two for one data file: send its key batches `base + next..base + batches`.
    pub(super) async fn emit_inventory(
        &self,
        batch: &BatchMessage,
        task: &InventoryTask,
        emit: &EmitPlan,
        stop: &Stop,
    ) -> Result<Emitted, WorkerError> {
        let file = &task.file;
        let Some(queue_url) = &self.config.queue_url else {
            return Err(WorkerError::Continue("QUEUE_URL is not set".into()));
        };
        let stats = BatchStats {
            bytes_read: file.size,
            ..BatchStats::default()
        };
        let opened = self
            .open_inventory_file(batch, file, Some(&emit.etag))
            .await;
        let (mut rows, digest, _) = match opened {
            Ok(opened) => opened,
            Err(Unread::Retry(error)) => return Err(error),
            Err(Unread::Permanent(reason)) => {
                let unsent = emit.next..emit.batches;
                return Err(self.fail_unsent(batch, emit, unsent, reason).await);
            }
        };
        let mut queue = Sender::new(&*self.queues, queue_url);
        let mut batcher = Self::batcher(file);
        let send = async |queue: &mut Sender<'_>, j: u64, keys: Vec<String>| {
            if j < emit.next || j >= emit.batches {
                return Ok(false);
            }
            // Each part sends at least one batch, so a stopped emit always progresses.
            if j > emit.next && stop.due() {
                return Ok(true);
            }
            let message = key_batch(batch, file, emit.base + j, keys);
            queue
                .push(Entry {
                    id: message.batch.to_string(),
                    body: message.to_json(),
                })
                .await?;
            Ok::<_, WorkerError>(false)
        };
        let mut paused_at = None;
        'rows: while let Some(row) = rows.next().await.map_err(emit_error)? {
            for (j, keys) in batcher.push(row, &file.key).map_err(emit_error)? {
                if send(&mut queue, j, keys).await? {
                    paused_at = Some(j);
                    break 'rows;
                }
            }
        }
        if paused_at.is_none() {
            let (last, count) = batcher.finish();
            if let Some((j, keys)) = last
                && send(&mut queue, j, keys).await?
            {
                paused_at = Some(j);
            }
            if paused_at.is_none() {
                if let Some(digest) = digest {
                    crate::ingest::inventory::check_digest(
                        &digest, &file.key, &file.md5, file.size,
                    )
                    .map_err(emit_error)?;
                }
                if count.batches != emit.batches {
                    let reason = format!(
                        "{} made {} key batches on this read and {} when it was counted",
                        file.key, count.batches, emit.batches
                    );
                    queue.flush().await?;
                    let unsent = count.batches.max(emit.next)..emit.batches;
                    return Err(self.fail_unsent(batch, emit, unsent, reason).await);
                }
            }
        }
        queue.flush().await?;
        tracing::info!(job_id = %batch.job_id, file = %file.key, first_batch = emit.base + emit.next, sent = queue.sent, paused = paused_at.is_some(), "inventory key batches sent");
        Ok(match paused_at {
            None => Emitted::Done(stats),
            Some(next) => Emitted::Paused { next, stats },
        })
    }

    /// The key batches an emit can never send are counted as failed (the job is sealed with
    /// them, so it would wait on them forever); the emit itself fails with the reason, and
    /// is counted as failed on its last delivery. Idempotent: a redelivery finds them counted.
    async fn fail_unsent(
        &self,
        batch: &BatchMessage,
        emit: &EmitPlan,
        unsent: std::ops::Range<u64>,
        reason: String,
    ) -> WorkerError {
        let why = format!("its inventory emit cannot send it: {reason}");
        for j in unsent {
            let number = BatchNo(emit.base + j);
            if let Err(error) = self
                .ledger
                .record_failed_batch(&batch.job_id, number, &why)
                .await
            {
                return error.into();
            }
        }
        WorkerError::Emit(reason)
    }

    /// The continuation of an emit that stopped before its deadline, from key batch `next`.
    pub(super) async fn hand_on_emit(
        &self,
        batch: &BatchMessage,
        task: &InventoryTask,
        emit: &EmitPlan,
        next: u64,
        part: &BatchStats,
    ) -> Result<BatchMessage, WorkerError> {
        let Some(queue_url) = &self.config.queue_url else {
            return Err(WorkerError::Continue("QUEUE_URL is not set".into()));
        };
        if next <= emit.next {
            return Err(WorkerError::NoProgress);
        }
        let carried = super::resume::sum(&super::resume::carried_stats(batch), part);
        let continued = BatchMessage {
            work: Work::Inventory(InventoryTask {
                file: task.file.clone(),
                emit: Some(EmitPlan {
                    next,
                    ..emit.clone()
                }),
            }),
            resumed: Some(Resumed {
                part: batch.part() + 1,
                carried,
                ..Resumed::default()
            }),
            ..batch.clone()
        };
        let dedup_id = format!("{}-{}-part-{}", batch.job_id, batch.batch, continued.part());
        self.queues
            .send(queue_url, &continued.to_json(), &dedup_id)
            .await
            .map_err(|e| WorkerError::Continue(e.into()))?;
        tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), next, "inventory emit paused before the deadline; the rest goes on as the next part");
        Ok(continued)
    }
}

/// Key batches buffered and sent [`SENDS_IN_FLIGHT`] calls at once, each call's failed
/// entries retried by its [`QueueWriter`].
struct Sender<'a> {
    queues: &'a dyn Queues,
    url: &'a str,
    pending: Vec<Entry>,
    sent: u64,
}

impl<'a> Sender<'a> {
    fn new(queues: &'a dyn Queues, url: &'a str) -> Self {
        Self {
            queues,
            url,
            pending: Vec::new(),
            sent: 0,
        }
    }

    async fn push(&mut self, entry: Entry) -> Result<(), WorkerError> {
        self.pending.push(entry);
        if self.pending.len() >= SENDS_IN_FLIGHT * MAX_ENTRIES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), WorkerError> {
        let entries = std::mem::take(&mut self.pending);
        let (queues, url) = (self.queues, self.url);
        let sent =
            futures::future::try_join_all(entries.chunks(MAX_ENTRIES).map(|chunk| async move {
                let mut writer = QueueWriter::new(queues, url);
                for entry in chunk {
                    writer.push(entry.clone()).await?;
                }
                writer.flush().await?;
                Ok::<_, crate::port::queue::QueueError>(writer.sent())
            }))
            .await
            .map_err(WorkerError::Queue)?;
        self.sent += sent.iter().sum::<u64>();
        Ok(())
    }
}

fn emit_error(error: InventoryError) -> WorkerError {
    match error {
        InventoryError::Read { .. } => WorkerError::InventoryRead(error),
        other => WorkerError::Emit(other.to_string()),
    }
}

/// Key batch `number`: an ordinary key batch of the source bucket whose missing objects are
/// counted missing, not failed.
fn key_batch(
    emit: &BatchMessage,
    file: &InventoryFile,
    number: u64,
    keys: Vec<String>,
) -> BatchMessage {
    BatchMessage {
        batch: BatchNo(number),
        bucket: file.source_bucket.clone(),
        work: Work::InventoryObjects { keys },
        resumed: None,
        ..emit.clone()
    }
}
