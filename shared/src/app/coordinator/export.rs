//! A request naming a DynamoDB S3 export (`export`: its `manifest-summary.json` key or its
//! folder) applied to the job's table. Before the job exists, both manifests are read and
//! checked (against their checksum files where present, and the files' item counts against
//! the summary's), every data file is resolved where the export actually is ([`relocate`]:
//! a copy under another prefix or in another bucket loads) and HEADed for its size, and the
//! first item found is checked to carry the table's key with its types. The data files are
//! then enqueued in batches by bytes, each carrying its files' manifest item counts, which
//! the worker compares with the lines it reads.

use tokio::io::AsyncBufReadExt;

use super::enqueue::JobBatches;
use super::{Coordinator, CoordinatorError};
use crate::contract::ids::BatchNo;
use crate::contract::messages::{ExportFiles, Work};
use crate::contract::schema::Schema;
use crate::ingest::compression::{self, Encoding};
use crate::ingest::export::{
    self, DataFile, PlannedFile, Summary, check_md5, checksum_keys, parse_files, parse_summary,
    relocate,
};
use crate::ingest::format::ddbjson::{change_of_line, item_of_line};
use crate::ingest::typing::item_key::ItemKey;
use crate::job::model::ListingProgress;
use crate::port::objects::{Failure, Read};

/// An export's data files, checked and batched.
#[derive(Debug, Clone)]
pub(super) struct ExportPlan {
    pub summary_key: String,
    pub summary: Summary,
    pub batches: Vec<Vec<PlannedFile>>,
}

impl ExportPlan {
    fn files(&self) -> u64 {
        self.batches.iter().map(|b| b.len() as u64).sum()
    }
}

fn invalid(reason: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::InvalidRequest(reason.to_string())
}

impl Coordinator {
    /// Reads and checks the export `export` names in `bucket`, and plans its data files.
    pub(super) async fn plan_export(
        &self,
        bucket: &str,
        export: &str,
        schema: &Schema,
    ) -> Result<ExportPlan, CoordinatorError> {
        let summary_key = export::summary_key(export);
        let bytes = self.read_manifest(bucket, &summary_key).await?;
        let summary = parse_summary(&summary_key, &bytes).map_err(invalid)?;
        let files_key =
            relocate(&summary_key, &summary, &summary.manifest_files_s3_key).map_err(invalid)?;
        let files_bytes = self.read_manifest(bucket, &files_key).await?;
        let files = parse_files(&files_key, &files_bytes).map_err(invalid)?;
        if let Some(total) = summary.item_count {
            let listed: u64 = files.iter().map(|f| f.item_count).sum();
            if listed != total {
                return Err(invalid(format!(
                    "{files_key} lists {listed} items and {summary_key} says {total} (itemCount)"
                )));
            }
        }
        let mut planned = Vec::with_capacity(files.len());
        for DataFile {
            item_count,
            data_file_s3_key,
            ..
        } in files
        {
            let key = relocate(&summary_key, &summary, &data_file_s3_key).map_err(invalid)?;
            let info = (self.objects.head(bucket, &key).await).map_err(|error| match error
                .failure
            {
                Failure::NotFound => invalid(format!(
                    "the export's data file {key} (manifest: {data_file_s3_key}) is not in s3://{bucket}"
                )),
                _ => CoordinatorError::Export(error),
            })?;
            planned.push(PlannedFile {
                key,
                size: info.size,
                items: item_count,
            });
        }
        self.check_export_key(bucket, &planned, &summary, schema)
            .await?;
        let batches = export::batches(planned, self.config.batch_size, self.config.batch_bytes);
        Ok(ExportPlan {
            summary_key,
            summary,
            batches,
        })
    }

    /// A manifest's bytes, checked against its checksum file when one is there.
    async fn read_manifest(&self, bucket: &str, key: &str) -> Result<Vec<u8>, CoordinatorError> {
        let bytes = (self.read_stored(bucket, key).await)
            .map_err(|_| invalid(format!("reading the export's {key} failed")))?
            .ok_or_else(|| invalid(format!("the export's {key} is not in s3://{bucket}")))?;
        for checksum_key in checksum_keys(key) {
            if let Ok(Some(checksum)) = self.read_stored(bucket, &checksum_key).await {
                check_md5(key, &checksum_key, &bytes, &checksum).map_err(invalid)?;
                break;
            }
        }
        Ok(bytes)
    }

    /// The export's key against the table's, before anything is written: the first item of
    /// the first data file holding any must carry the job's key (names and types).
    async fn check_export_key(
        &self,
        bucket: &str,
        files: &[PlannedFile],
        summary: &Summary,
        schema: &Schema,
    ) -> Result<(), CoordinatorError> {
        let Some(file) = files.iter().find(|f| f.items > 0 && f.size > 0) else {
            return Ok(());
        };
        let body = (self.objects.get(bucket, &file.key, Read::default()).await)
            .map_err(CoordinatorError::Export)?;
        let mut lines = compression::decoded(body.reader, Encoding::of_key(&file.key), 1 << 30);
        let mut line = String::new();
        while line.trim().is_empty() {
            line.clear();
            let read = lines.read_line(&mut line).await.map_err(|e| {
                invalid(format!(
                    "the export's data file {} is unreadable: {e}",
                    file.key
                ))
            })?;
            if read == 0 {
                return Ok(());
            }
        }
        let item = match summary.is_incremental() {
            true => change_of_line(&line).map(|(item, _)| item),
            false => item_of_line(&line),
        };
        let item = item.map_err(|reason| {
            invalid(format!(
                "the first line of the export's {} does not read: {reason}",
                file.key
            ))
        })?;
        ItemKey::of_schema(schema)
            .check(&item)
            .map(|_| ())
            .map_err(|reason| {
                invalid(format!(
                    "the export's items do not carry the table's key (first item of {}): {reason}",
                    file.key
                ))
            })
    }

    /// Enqueues the planned batches: each data file's key and its manifest item count.
    pub(super) async fn enqueue_export(
        &self,
        job: JobBatches<'_>,
        plan: &ExportPlan,
    ) -> Result<ListingProgress, CoordinatorError> {
        let mut queue = self.queue();
        for (n, files) in plan.batches.iter().enumerate() {
            let batch = BatchNo(n as u64);
            let work = Work::Export {
                keys: files.iter().map(|f| f.key.clone()).collect(),
                files: ExportFiles {
                    item_counts: files.iter().map(|f| (f.key.clone(), f.items)).collect(),
                    incremental: plan.summary.is_incremental(),
                },
            };
            tracing::info!(job_id = %job.job_id, batch = n, files = files.len(), export = %plan.summary_key, "batch enqueued");
            queue.push(job.entry(batch, work)).await?;
        }
        queue.flush().await?;
        Ok(ListingProgress {
            batches: plan.batches.len() as u64,
            files_listed: plan.files(),
            files_skipped: 0,
        })
    }
}
