//! Phase two of a split object: once every scan batch is counted, the worker that counted
//! the last one wakes this step through the control queue. It reads the scans (small S3
//! objects next to the job's rejects reports), composes them in order into each range's exact
//! row span, and enqueues the parse batches `n..2n` (the job was sealed at `2n` when the scans
//! were enqueued). Idempotent: the same scans give the same batches under the same numbers,
//! which workers count once, and a marker written last makes a later duplicate a no-op.

use futures::{StreamExt, TryStreamExt, stream};

use super::enqueue::batch_entry;
use super::{Coordinator, CoordinatorError};
use crate::contract::messages::{ComposeRanges, JobRequest};
use crate::contract::rejects::ReportLocation;
use crate::ingest::scan::{RangeScan, compose};
use crate::plan::ranges::{composed_key, scan_key};
use crate::port::ledger::JobError;
use crate::port::objects::{Failure, ObjectError, Read};

/// Scan objects read at once.
const SCAN_READS: usize = 32;

/// What a compose message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Composed {
    /// The parse batches were enqueued.
    Enqueued { batches: u64 },
    /// Nothing to do: the job has ended, or the batches were enqueued before.
    Nothing,
    /// A scan failed for good: the job was failed with this reason.
    Failed(String),
}

impl Coordinator {
    pub async fn compose_ranges(
        &self,
        message: &ComposeRanges,
    ) -> Result<Composed, CoordinatorError> {
        let job_id = &message.job_id;
        let object = &message.compose;
        let Some(job) = self.ledger.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()).into());
        };
        if job.status.is_final() {
            return Ok(Composed::Nothing);
        }
        let request = JobRequest {
            job_id: Some(job_id.clone()),
            key: job.key.clone(),
            schema: job.schema.clone(),
            ..JobRequest::new(&job.bucket, &job.prefix)
        };
        let report = self.report_location(&request);
        let marker = composed_key(&report, job_id);
        if self.objects.head(&report.bucket, &marker).await.is_ok() {
            tracing::info!(%job_id, "the parse batches were enqueued before");
            return Ok(Composed::Nothing);
        }
        let count = object.range_count();
        let scans: Vec<Option<RangeScan>> = stream::iter(0..count)
            .map(|index| self.read_scan(&report, job_id, index))
            .buffered(SCAN_READS)
            .try_collect()
            .await?;
        if let Some(missing) = scans.iter().position(Option::is_none) {
            if job.batches_failed == 0 {
                // Counted scans are stored before they are counted: this one is on its way.
                return Err(CoordinatorError::ScanMissing {
                    job_id: job_id.clone(),
                    index: missing as u64,
                });
            }
            let reason = format!(
                "the scan of range {missing} of s3://{}/{} failed its last delivery, so row \
                 boundaries after it are unknown: {}",
                job.bucket,
                object.key,
                job.last_batch_error
                    .as_deref()
                    .unwrap_or("no reason recorded")
            );
            self.fail_job(job_id, &reason).await;
            return Ok(Composed::Failed(reason));
        }
        let scans: Vec<RangeScan> = scans.into_iter().flatten().collect();
        let spans = match compose(object.data_start, object.size, &scans) {
            Ok(spans) => spans,
            Err(error) => {
                let reason = format!(
                    "composing the scans of s3://{}/{} failed: {error}",
                    job.bucket, object.key
                );
                self.fail_job(job_id, &reason).await;
                return Ok(Composed::Failed(reason));
            }
        };
        let mut queue = self.queue();
        for ((index, range), span) in (0..).zip(object.ranges()).zip(spans) {
            let batch = count + index;
            let task = object.task(range, Some(span));
            queue
                .push(batch_entry(
                    job_id,
                    &request,
                    &report,
                    batch,
                    vec![],
                    Some(task),
                ))
                .await?;
        }
        queue.flush().await?;
        self.objects
            .put(&report.bucket, &marker, b"{}".to_vec(), "application/json")
            .await
            .map_err(CoordinatorError::Scans)?;
        tracing::info!(%job_id, ranges = count, "scans composed; parse batches enqueued");
        Ok(Composed::Enqueued { batches: count })
    }

    /// One stored scan; `None` if it is not there.
    async fn read_scan(
        &self,
        report: &ReportLocation,
        job_id: &str,
        index: u64,
    ) -> Result<Option<RangeScan>, CoordinatorError> {
        let key = scan_key(report, job_id, index);
        let body = match self
            .objects
            .get(&report.bucket, &key, Read::default())
            .await
        {
            Ok(body) => body,
            Err(ObjectError {
                failure: Failure::NotFound,
                ..
            }) => return Ok(None),
            Err(error) => return Err(CoordinatorError::Scans(error)),
        };
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut { body.reader }, &mut bytes)
            .await
            .map_err(|source| CoordinatorError::ScanUnreadable {
                key: key.clone(),
                source: source.into(),
            })?;
        serde_json::from_slice(&bytes).map(Some).map_err(|source| {
            CoordinatorError::ScanUnreadable {
                key,
                source: source.into(),
            }
        })
    }
}
