//! Scan batches (phase one of a split object, see [`crate::plan::ranges`]): read one range
//! once, store what its bytes do to the parser from every start state
//! ([`crate::ingest::scan`]) as a small S3 object next to the job's rejects reports, and be
//! counted like any batch. Storing before counting means a counted scan is always readable;
//! a redelivery stores the same bytes again. Whoever sees every scan counted (the last one,
//! or a redelivery of any) wakes the compose step.

use super::{Worker, WorkerError};
use crate::contract::messages::{BatchMessage, ComposeRanges, ScanTask};
use crate::fan_in::Ledger as _;
use crate::ingest::ranges::scan_range;
use crate::job::model::BatchStats;
use crate::plan::ranges::{scan_folder, scan_key, unreadable_key};
use crate::port::objects::{Failure, Read};

/// What a scan batch did.
pub(super) enum Scanned {
    Stored(BatchStats),
    /// The object cannot be read as planned (changed, gone, forbidden): no retry helps.
    Impossible(String),
}

impl Worker {
    /// Scans one range and stores the result; returns the batch's counters (bytes read).
    pub(super) async fn scan(
        &self,
        batch: &BatchMessage,
        task: &ScanTask,
    ) -> Result<Scanned, WorkerError> {
        let object = &task.object;
        let ranges = object.ranges();
        let &(start, end) = usize::try_from(task.index)
            .ok()
            .and_then(|i| ranges.get(i))
            .ok_or(WorkerError::BadScan {
                index: task.index,
                ranges: ranges.len() as u64,
            })?;
        let failed = |source: crate::BoxError| WorkerError::Scan {
            bucket: batch.bucket.clone(),
            key: object.key.clone(),
            start,
            end,
            source,
        };
        let read = Read {
            from: start,
            to: Some(end),
            if_match: Some(&object.etag),
        };
        let permit = self.fetch_limit.acquire().await;
        let body = match self.objects.get(&batch.bucket, &object.key, read).await {
            Ok(body) => body,
            Err(error) if error.is_permanent() => {
                let why = match error.failure {
                    Failure::Changed => {
                        "the object changed after the job was planned (its ETag no longer matches)"
                    }
                    _ => "the object cannot be read",
                };
                return Ok(Scanned::Impossible(format!(
                    "{why}: {}",
                    crate::report(&error)
                )));
            }
            Err(error) => return Err(failed(error.into())),
        };
        let dialect = batch.schema.as_ref().map(|s| s.csv).unwrap_or_default();
        let scan = scan_range(body.reader, start, end, &dialect)
            .await
            .map_err(|e| failed(e.into()))?;
        permit.succeeded();
        let key = scan_key(&batch.report, &batch.job_id, object, task.index);
        let json = serde_json::to_vec(&scan).expect("a scan serializes");
        self.objects
            .put(&batch.report.bucket, &key, json, "application/json")
            .await
            .map_err(WorkerError::StoreScan)?;
        tracing::info!(job_id = %batch.job_id, index = task.index, start, end, "range scanned");
        Ok(Scanned::Stored(BatchStats {
            bytes_read: end - start,
            ..BatchStats::default()
        }))
    }

    /// A scan no retry can do (the object changed or is gone): its reason is stored for the
    /// compose step, which rejects the object as one rejected object under the job's
    /// tolerance, like a small one. The scan is then counted done like any other (stored
    /// before counted) and wakes the step at once.
    pub(super) async fn store_unreadable(
        &self,
        batch: &BatchMessage,
        task: &ScanTask,
        reason: &str,
    ) -> Result<(), WorkerError> {
        tracing::error!(job_id = %batch.job_id, index = task.index, %reason, "a range cannot be scanned: its object is rejected");
        let key = unreadable_key(&batch.report, &batch.job_id, &task.object);
        self.objects
            .put(
                &batch.report.bucket,
                &key,
                reason.as_bytes().to_vec(),
                "text/plain",
            )
            .await
            .map_err(WorkerError::StoreScan)
    }

    /// Once every scan of the object is in, wakes the compose step; a scan that found the
    /// object unreadable (`failed`) wakes it at once, to reject the object. Duplicates are harmless: the
    /// step is idempotent.
    ///
    /// In a single-object job the scans are the only batches before the compose, so the
    /// job's count tells; the count's own view may cover one counter shard only, so the
    /// whole job is read (header and shards: constant per scan), and the last scan counted
    /// sees them all. A prefix job may split several objects among its key batches: there
    /// the object's stored scans are counted (stored before counted, so the last scan to be
    /// stored sees them all): one LIST per scan, a page per 1,000 ranges.
    pub(super) async fn wake_compose_when_scanned(
        &self,
        batch: &BatchMessage,
        task: &ScanTask,
        failed: bool,
    ) -> Result<(), WorkerError> {
        let Some(job) = self.ledger.get(&batch.job_id).await? else {
            return Ok(());
        };
        if job.status.is_final() {
            return Ok(());
        }
        let ranges = task.object.range_count();
        let all_in = match &job.key {
            Some(_) => job.batches_done >= ranges,
            None => failed || self.scans_stored(batch, task).await? >= ranges,
        };
        if !all_in {
            return Ok(());
        }
        let Some(queue_url) = &self.config.control_queue_url else {
            return Err(WorkerError::Wake("CONTROL_QUEUE_URL is not set".into()));
        };
        let body = serde_json::to_string(&ComposeRanges {
            job_id: batch.job_id.clone(),
            compose: task.object.clone(),
        })
        .expect("a compose message serializes");
        self.queues
            .send(queue_url, &body, &format!("{}-compose", batch.job_id))
            .await
            .map_err(|e| WorkerError::Wake(e.into()))?;
        tracing::info!(job_id = %batch.job_id, key = %task.object.key, "every range scanned; compose woken");
        Ok(())
    }

    /// How many of the object's scans are stored.
    async fn scans_stored(
        &self,
        batch: &BatchMessage,
        task: &ScanTask,
    ) -> Result<u64, WorkerError> {
        let folder = scan_folder(&batch.report, &batch.job_id, &task.object);
        let (mut stored, mut token) = (0, None);
        loop {
            let page = self
                .objects
                .list_page(&batch.report.bucket, &folder, 1000, token)
                .await
                .map_err(WorkerError::CountScans)?;
            stored += (page.objects.iter())
                .filter(|o| {
                    (o.key.strip_prefix(folder.as_str())).is_some_and(|k| k.starts_with("range-"))
                })
                .count() as u64;
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(stored),
            }
        }
    }
}
