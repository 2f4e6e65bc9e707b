//! A request naming an S3 Inventory report (`inventory`: its `manifest.json` key or folder)
//! instead of a prefix (`docs/inventory.md`). Before the job exists the manifest is read and
//! checked against its `manifest.checksum`, its format (CSV or Parquet) and its
//! `sourceBucket` (an allowed bucket); the data files are never read here. Phase one enqueues
//! one count batch per data file (`0..n`); the job stays unsealed, since no one knows yet how
//! many key batches each file makes. The compose step ([`Coordinator::compose_inventory`])
//! reads the stored counts, numbers the files, seals, and enqueues the emit batches
//! (`n..2n`), which send the key batches.

use futures::{StreamExt, TryStreamExt, stream};

use super::compose::Composed;
use super::enqueue::JobBatches;
use super::{Coordinator, CoordinatorError, Listed};
use crate::contract::ids::BatchNo;
use crate::contract::inventory::{
    ComposeInventory, EmitPlan, InventoryFile, InventoryOptions, InventoryTask, StoredCount,
};
use crate::contract::messages::Work;
use crate::fan_in::Ledger as _;
use crate::fan_in::ListingProgress;
use crate::ingest::inventory::MAX_PARQUET_FILE_BYTES;
use crate::ingest::inventory::manifest::{
    FileFormat, check_checksum, checksum_key, manifest_key, parse_manifest,
};
use crate::plan::inventory::{composed_key, count_key, emit_batch, number_files};
use crate::port::ledger::JobError;

/// Stored counts read at once.
const COUNT_READS: usize = 32;

/// An inventory's data files, checked in its manifest.
#[derive(Debug, Clone)]
pub(super) struct InventoryPlan {
    pub manifest: String,
    pub files: Vec<InventoryFile>,
}

fn invalid(reason: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::InvalidRequest(reason.to_string())
}

impl Coordinator {
    /// Reads and checks the manifest `options` names in `bucket`.
    pub(super) async fn plan_inventory(
        &self,
        bucket: &str,
        options: &InventoryOptions,
    ) -> Result<InventoryPlan, CoordinatorError> {
        let key = manifest_key(options.inventory.as_deref().unwrap_or_default());
        let read = |key: String| async move {
            match self.read_stored(bucket, &key).await {
                Ok(Some(bytes)) => Ok(bytes),
                Ok(None) => Err(invalid(format!(
                    "the inventory's {key} is not in s3://{bucket}"
                ))),
                Err(error) => Err(invalid(format!(
                    "the inventory's {key} is unreadable: {}",
                    crate::report(&error)
                ))),
            }
        };
        let bytes = read(key.clone()).await?;
        // Required: a manifest is the job's whole listing, so it is never used unchecked.
        let checksum = read(checksum_key(&key)).await?;
        check_checksum(&key, &bytes, &checksum).map_err(invalid)?;
        let manifest = parse_manifest(&key, &bytes).map_err(invalid)?;
        let source = manifest.source_bucket_name().to_owned();
        let allowed = &self.config.allowed_buckets;
        if !allowed.is_empty() && !allowed.contains(&source) {
            return Err(invalid(format!(
                "{key}: its sourceBucket {source:?} is not in ALLOWED_BUCKETS"
            )));
        }
        let parquet = manifest.format == FileFormat::Parquet;
        if let Some(big) =
            (manifest.files.iter()).find(|f| parquet && f.size > MAX_PARQUET_FILE_BYTES)
        {
            return Err(invalid(format!(
                "{key}: the Parquet data file {} is {} bytes, above the {MAX_PARQUET_FILE_BYTES} a worker reads into memory",
                big.key, big.size
            )));
        }
        let n = manifest.files.len() as u64;
        let files = (manifest.files.iter().enumerate())
            .map(|(i, file)| InventoryFile {
                manifest: key.clone(),
                index: i as u64,
                files: n,
                key: file.key.clone(),
                size: file.size,
                md5: file.md5.clone(),
                parquet,
                schema: manifest.schema.clone(),
                source_bucket: source.clone(),
                filter: options.filter(),
                batch_size: self.config.batch_size as u64,
                batch_bytes: self.config.batch_bytes,
            })
            .collect();
        tracing::info!(manifest = %key, files = n, bytes = manifest.total_bytes(), source_bucket = %source, "inventory manifest checked");
        Ok(InventoryPlan {
            manifest: key,
            files,
        })
    }

    /// Phase one: a count batch per data file. The job stays unsealed (the compose step
    /// seals it), except an inventory without data files, sealed empty.
    pub(super) async fn enqueue_inventory_counts(
        &self,
        job: JobBatches<'_>,
        plan: &InventoryPlan,
    ) -> Result<Listed, CoordinatorError> {
        let n = plan.files.len() as u64;
        let counted = ListingProgress {
            batches: n,
            planning_bytes_read: self.planning_bytes(),
            ..ListingProgress::default()
        };
        if n == 0 {
            return Ok(Listed::Done(counted));
        }
        let mut queue = self.queue();
        for file in &plan.files {
            let task = InventoryTask {
                file: file.clone(),
                emit: None,
            };
            let batch = BatchNo(file.index);
            queue.push(job.entry(batch, Work::Inventory(task))).await?;
        }
        queue.flush().await?;
        tracing::info!(job_id = %job.job_id, manifest = %plan.manifest, files = n, "inventory count batches enqueued");
        Ok(Listed::Paused(counted))
    }

    /// Phase two: every count is in. Reads them, numbers the files' key batches after the
    /// `2n` count and emit batches, seals the job at `2n + ΣK`, and enqueues the emit
    /// batches. A count that found its file unreadable as the manifest says fails the job
    /// (nothing after it could be numbered). Idempotent: the same counts give the same
    /// numbers, and a marker written last makes a later duplicate a no-op.
    pub async fn compose_inventory(
        &self,
        message: &ComposeInventory,
    ) -> Result<Composed, CoordinatorError> {
        let job_id = &message.job_id;
        let n = message.compose_inventory.files;
        let Some(job) = self.ledger.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()).into());
        };
        if job.status.is_final() {
            return Ok(Composed::Nothing);
        }
        let request = job.request();
        let report = self.report_location(&request);
        let marker = composed_key(&report, job_id);
        if self.objects.head(&report.bucket, &marker).await.is_ok() {
            tracing::info!(%job_id, "the inventory's emit batches were enqueued before");
            return Ok(Composed::Nothing);
        }
        let bucket = &report.bucket;
        let counts: Vec<Option<StoredCount>> = stream::iter(0..n)
            .map(|i| count_key(&report, job_id, i))
            .map(|key| async move { self.read_json::<StoredCount>(bucket, &key).await })
            .buffered(COUNT_READS)
            .try_collect()
            .await?;
        let mut files = Vec::with_capacity(counts.len());
        for (i, count) in counts.into_iter().enumerate() {
            let reason = match count {
                Some(StoredCount {
                    error: Some(error), ..
                }) => Some(error),
                Some(StoredCount { file: None, .. }) => {
                    Some(format!("the stored count of data file {i} names no file"))
                }
                Some(count) => {
                    files.push(count);
                    None
                }
                None if job.batches_failed > 0 => Some(format!(
                    "the count batch of inventory data file {i} failed: {}",
                    job.last_batch_error
                        .as_deref()
                        .unwrap_or("no reason recorded")
                )),
                None => {
                    return Err(CoordinatorError::InventoryCountMissing {
                        job_id: job_id.clone(),
                        index: i as u64,
                    });
                }
            };
            if let Some(reason) = reason {
                let reason = format!("the inventory cannot be loaded: {reason}");
                self.fail_job(job_id, &reason).await;
                return Ok(Composed::Failed(reason));
            }
        }
        let (bases, total) = number_files(&files.iter().map(|c| c.batches).collect::<Vec<_>>());
        let seal = ListingProgress {
            batches: total,
            files_listed: files.iter().map(|c| c.listed).sum(),
            files_skipped: files.iter().map(|c| c.skipped).sum(),
            // The manifests' reads, counted when the job was created.
            planning_bytes_read: job.planning_bytes_read,
        };
        match self.ledger.seal(job_id, seal, None).await {
            Ok(_) => {}
            // A duplicate compose (or a redelivery after a crash past the seal): the same
            // counts sealed the same total.
            Err(JobError::AlreadySealed(_)) if job.total_batches == total || !job.sealed => {}
            Err(error) => return Err(error.into()),
        }
        let mut queue = self.queue();
        let batches = JobBatches {
            job_id,
            request: &request,
            report: &report,
        };
        for (count, base) in files.iter().zip(&bases) {
            let file = count.file.clone().expect("checked above");
            let index = file.index;
            let task = InventoryTask {
                file,
                emit: Some(EmitPlan {
                    base: *base,
                    batches: count.batches,
                    etag: count.etag.clone(),
                    next: 0,
                }),
            };
            let batch = BatchNo(emit_batch(n, index));
            queue
                .push(batches.entry(batch, Work::Inventory(task)))
                .await?;
        }
        queue.flush().await?;
        self.objects
            .put(&report.bucket, &marker, b"{}".to_vec(), "application/json")
            .await
            .map_err(CoordinatorError::Scans)?;
        tracing::info!(%job_id, files = n, total_batches = total, "inventory composed: sealed, emit batches enqueued");
        Ok(Composed::Enqueued { batches: n })
    }
}
