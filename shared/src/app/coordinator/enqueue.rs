//! Enqueueing a job's batches: a prefix listed page by page, or one object planned whole or
//! in byte ranges. Batches go out as they fill; a listing nearing the deadline checkpoints.

use std::time::Duration;

use tokio::time::Instant;

use super::listing::PrefixLister;
use super::object_plan::{ObjectPlan, PlanError, plan_object};
use super::{Coordinator, CoordinatorError, Listed};
use crate::app::queue_writer::QueueWriter;
use crate::clock;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::contract::messages::{
    BatchMessage, JobRequest, RowGroupTask, RowSpan, ScanTask, SplitObject, Work,
};
use crate::contract::rejects::ReportLocation;
use crate::fan_in::{JobError, Ledger as _};
use crate::ingest::compression::Encoding;
use crate::ingest::format::Format;
use crate::job::model::{ListingCheckpoint, ListingProgress};
use crate::plan::batching::{KeyBatcher, is_loadable_key};
use crate::plan::ranges::object_key;
use crate::port::objects::ListedObject;
use crate::port::queue::Entry;

impl Coordinator {
    pub(super) fn queue(&self) -> QueueWriter<'_> {
        QueueWriter::new(&*self.queues, &self.config.queue_url)
    }

    /// Enqueues a job's batches: one object's, or a prefix listing's (from `step.resume`).
    pub(super) async fn enqueue(
        &self,
        job: JobBatches<'_>,
        step: ListingStep<'_>,
    ) -> Result<Listed, CoordinatorError> {
        let request = job.request;
        if let Some(export) = &request.export {
            // Planned again from its manifests (a job the stuck check restarts): the same
            // batches under the same numbers, counted once.
            let schema = request.schema.clone().unwrap_or_default();
            let plan = self.plan_chain(&request.bucket, export, &schema).await?;
            return (self.enqueue_export(job, &plan).await).map(Listed::Done);
        }
        if request.inventory.inventory.is_some() {
            // Planned again (the stuck check woke a job still counting): the same count
            // batches under the same numbers, counted once; the compose step seals.
            let plan = self
                .plan_inventory(&request.bucket, &request.inventory)
                .await?;
            return self.enqueue_inventory_counts(job, &plan).await;
        }
        match &request.key {
            Some(key) => self.enqueue_object(job, key).await.map(Listed::Done),
            None => self.enqueue_prefix(job, step).await,
        }
    }

    /// Lists from the start or from a checkpoint, enqueueing batches as they fill, until
    /// the listing ends, the deadline nears (then it checkpoints and wakes the next
    /// invocation) or the job's queue is full (then it checkpoints held, and the stuck check
    /// wakes it once the queue drains). A paused listing's last batch is cut short, so each
    /// invocation's batches depend only on where it resumed.
    async fn enqueue_prefix(
        &self,
        job: JobBatches<'_>,
        step: ListingStep<'_>,
    ) -> Result<Listed, CoordinatorError> {
        let (job_id, request) = (job.job_id, job.request);
        let mut lister = PrefixLister::new(
            &*self.objects,
            &request.bucket,
            &request.prefix,
            self.config.list_page_size,
        );
        let (keys, bytes) = (self.config.batch_size, self.config.batch_bytes);
        let mut batcher = KeyBatcher::new(keys, bytes);
        let (mut progress, mut invocation) = (ListingProgress::default(), 0);
        if let Some(checkpoint) = step.resume {
            if let Some(cursor) = checkpoint.cursor {
                lister = lister.resume(cursor);
            }
            batcher = KeyBatcher::starting_at(keys, bytes, checkpoint.progress.batches);
            (progress, invocation) = (checkpoint.progress, checkpoint.invocation);
        }
        // The first look at the job's queue comes once a tenth of the window is listed.
        let mut next_look = batcher.emitted() + self.config.queue_window.check_every();
        let mut queue = self.queue();
        let message = |(batch, keys): (u64, Vec<String>)| {
            // Listing is in key order, so first..last says which batch holds any key.
            tracing::info!(
                %job_id,
                batch,
                keys = keys.len(),
                first_key = keys.first().map(String::as_str).unwrap_or_default(),
                last_key = keys.last().map(String::as_str).unwrap_or_default(),
                "batch enqueued"
            );
            job.entry(BatchNo(batch), Work::Objects { keys })
        };
        while let Some(page) = lister.next_page().await.map_err(CoordinatorError::List)? {
            for object in page {
                progress.files_listed += 1;
                if !is_loadable_key(&object.key) {
                    progress.files_skipped += 1;
                    continue;
                }
                match self.plan_in_prefix(request, &object).await? {
                    ObjectPlan::RowGroups(tasks) => {
                        let first = batcher.reserve(tasks.len() as u64);
                        self.enqueue_row_groups(&mut queue, job, first, tasks)
                            .await?;
                    }
                    ObjectPlan::Inflate(task) => {
                        // Its parts share the one number it takes (docs/compressed.md).
                        let batch = BatchNo(batcher.reserve(1));
                        queue.push(job.entry(batch, Work::Inflate(task))).await?;
                    }
                    ObjectPlan::Split(mut split) => {
                        // Its scans and parses take the next numbers; the key batch being
                        // filled goes on filling.
                        split.first_batch = batcher.reserve(split.total_batches());
                        self.enqueue_split(&mut queue, job, &split).await?;
                    }
                    ObjectPlan::Whole => {
                        for closed in batcher.push(object.key, object.size) {
                            queue.push(message(closed)).await?;
                        }
                    }
                }
            }
            let Some(cursor) = lister.cursor() else {
                continue;
            };
            let mut held = false;
            if batcher.emitted() >= next_look {
                next_look = batcher.emitted() + self.config.queue_window.check_every();
                held = self.queue_is_full(job_id, batcher.emitted()).await?;
            }
            if held || self.must_pause(step.deadline) {
                if let Some(last) = batcher.finish() {
                    queue.push(message(last)).await?;
                }
                queue.flush().await?;
                progress.batches = batcher.emitted();
                progress.planning_bytes_read = self.planning_bytes();
                let checkpoint = ListingCheckpoint {
                    invocation: invocation + 1,
                    cursor: Some(cursor.to_owned()),
                    progress,
                    held,
                };
                if !self
                    .ledger
                    .checkpoint(job_id, &checkpoint, step.owner)
                    .await?
                {
                    tracing::info!(%job_id, "this run no longer owns the listing; stopping");
                } else if held {
                    tracing::info!(%job_id, batches = progress.batches, "listing held: the job's queue is full; the stuck check wakes it once it drains");
                } else {
                    self.wake(job_id, checkpoint.invocation).await?;
                    tracing::info!(
                        %job_id,
                        next_invocation = checkpoint.invocation,
                        batches = progress.batches,
                        "listing paused before the deadline"
                    );
                }
                return Ok(Listed::Paused(progress));
            }
        }
        if let Some(last) = batcher.finish() {
            queue.push(message(last)).await?;
        }
        queue.flush().await?;
        progress.batches = batcher.emitted();
        progress.planning_bytes_read = self.planning_bytes();
        Ok(Listed::Done(progress))
    }

    /// Whether the job's queued batches (numbered, not yet counted) fill its window, so the
    /// listing must hold. Never without a control queue: nothing could resume it then.
    async fn queue_is_full(&self, job_id: &JobId, enqueued: u64) -> Result<bool, CoordinatorError> {
        if self.config.control_queue_url.is_none() {
            return Ok(false);
        }
        let Some(job) = self.ledger.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()).into());
        };
        let elapsed = Duration::from_millis(clock::now_ms().saturating_sub(job.started_ms));
        Ok(self
            .config
            .queue_window
            .is_full(enqueued, job.batches_done, elapsed))
    }

    /// One object: one batch, or one batch per range when it is large.
    async fn enqueue_object(
        &self,
        job: JobBatches<'_>,
        key: &str,
    ) -> Result<ListingProgress, CoordinatorError> {
        let (job_id, request) = (job.job_id, job.request);
        if !is_loadable_key(key) {
            return Ok(ListingProgress {
                batches: 0,
                files_listed: 1,
                files_skipped: 1,
                planning_bytes_read: self.planning_bytes(),
            });
        }
        let schema = request.schema.clone().unwrap_or_default();
        let format = Format::resolve(request.format, key);
        let chunk = self.config.range_chunk_bytes;
        let plan =
            plan_object(&*self.objects, &request.bucket, key, &schema, format, chunk).await?;
        let mut queue = self.queue();
        let batches = match plan {
            ObjectPlan::Whole => {
                tracing::info!(%job_id, batch = 0, key, "batch enqueued");
                let keys = vec![key.to_owned()];
                queue
                    .push(job.entry(BatchNo(0), Work::Objects { keys }))
                    .await?;
                1
            }
            ObjectPlan::Split(object) => {
                self.enqueue_split(&mut queue, job, &object).await?;
                object.total_batches()
            }
            ObjectPlan::Inflate(task) => {
                tracing::info!(%job_id, batch = 0, key, "compressed object to be inflated into parts");
                queue
                    .push(job.entry(BatchNo(0), Work::Inflate(task)))
                    .await?;
                1
            }
            ObjectPlan::RowGroups(tasks) => {
                let batches = tasks.len() as u64;
                self.enqueue_row_groups(&mut queue, job, 0, tasks).await?;
                batches
            }
        };
        queue.flush().await?;
        Ok(ListingProgress {
            batches,
            files_listed: 1,
            files_skipped: 0,
            planning_bytes_read: self.planning_bytes(),
        })
    }
}

impl Coordinator {
    /// An object listed in a prefix, planned as a single-object job's would be when it is
    /// above the chunk size and of a kind that plans (a plain CSV or JSON Lines object in
    /// ranges, a Parquet object by row groups, a compressed one to be inflated); `Whole`
    /// otherwise: read in a key batch (also an object gone since the listing, or a header
    /// the worker will reject, which the worker then reports).
    async fn plan_in_prefix(
        &self,
        request: &JobRequest,
        object: &ListedObject,
    ) -> Result<ObjectPlan, CoordinatorError> {
        let chunk = self.config.range_chunk_bytes;
        let format = Format::resolve(request.format, &object.key);
        let plans = Encoding::of_key(&object.key).is_compressed()
            || format.splits()
            || format.by_row_groups();
        if object.size <= chunk || !plans {
            return Ok(ObjectPlan::Whole);
        }
        let schema = request.schema.clone().unwrap_or_default();
        let planned = plan_object(
            &*self.objects,
            &request.bucket,
            &object.key,
            &schema,
            format,
            chunk,
        )
        .await;
        match planned {
            Ok(plan) => Ok(plan),
            Err(PlanError::Object(error)) if error.is_permanent() => Ok(ObjectPlan::Whole),
            Err(error) => Err(error.into()),
        }
    }

    /// A Parquet object's row-group batches, numbered from `first`.
    async fn enqueue_row_groups(
        &self,
        queue: &mut QueueWriter<'_>,
        job: JobBatches<'_>,
        first: u64,
        tasks: Vec<RowGroupTask>,
    ) -> Result<(), CoordinatorError> {
        tracing::info!(
            job_id = %job.job_id,
            key = tasks.first().map(|t| t.key.as_str()).unwrap_or_default(),
            batches = tasks.len(),
            first_batch = first,
            "Parquet object planned by row group"
        );
        for (i, task) in tasks.into_iter().enumerate() {
            let batch = BatchNo(first + i as u64);
            queue.push(job.entry(batch, Work::RowGroups(task))).await?;
        }
        Ok(())
    }

    /// A split object's batches: one parse batch if it has one range (its rows start just
    /// past the header, so they need no scan), else a scan batch per range (phase one; once
    /// every scan is in, the compose step enqueues the parses).
    async fn enqueue_split(
        &self,
        queue: &mut QueueWriter<'_>,
        job: JobBatches<'_>,
        object: &SplitObject,
    ) -> Result<(), CoordinatorError> {
        let (job_id, report) = (job.job_id, job.report);
        let ranges = object.ranges();
        tracing::info!(
            %job_id,
            key = %object.key,
            ranges = ranges.len(),
            first_batch = object.first_batch,
            chunk_bytes = object.chunk,
            "large object split into ranges"
        );
        if let [range] = ranges.as_slice() {
            let rows = RowSpan {
                first: range.0,
                stop: object.size,
            };
            let task = object.task(*range, Some(rows));
            let batch = BatchNo(object.parse_batch(0));
            queue.push(job.entry(batch, Work::Range(task))).await?;
            return Ok(());
        }
        if object.by_lines {
            // Each range owns the lines starting in it, and finds the first one itself.
            for (index, &(start, end)) in ranges.iter().enumerate() {
                let rows = RowSpan {
                    first: start,
                    stop: end,
                };
                let task = object.task((start, end), Some(rows));
                let batch = BatchNo(object.parse_batch(index as u64));
                queue.push(job.entry(batch, Work::Range(task))).await?;
            }
            return Ok(());
        }
        // The plan, once per object: the stuck check wakes the compose from it should a scan
        // be killed on its last delivery (nothing else would).
        let plan = serde_json::to_vec(object).expect("a split object serializes");
        self.objects
            .put(
                &report.bucket,
                &object_key(report, job_id, object),
                plan,
                "application/json",
            )
            .await
            .map_err(CoordinatorError::Scans)?;
        for index in 0..ranges.len() as u64 {
            let batch = BatchNo(object.scan_batch(index));
            let scan = Work::Scan(ScanTask {
                object: object.clone(),
                index,
            });
            queue.push(job.entry(batch, scan)).await?;
        }
        Ok(())
    }
}

/// What every batch message of one job carries: the job, the request it started with,
/// where its rejects go.
#[derive(Clone, Copy)]
pub(super) struct JobBatches<'a> {
    pub job_id: &'a JobId,
    pub request: &'a JobRequest,
    pub report: &'a ReportLocation,
}

impl JobBatches<'_> {
    /// Batch `batch` of the job, doing `work`.
    pub fn message(&self, batch: BatchNo, work: Work) -> BatchMessage {
        let request = self.request;
        BatchMessage {
            job_id: self.job_id.clone(),
            batch,
            bucket: request.bucket.clone(),
            work,
            schema: request.schema.clone(),
            format: request.format,
            table: request.table.clone(),
            report: self.report.clone(),
            write: request.write.clone(),
            resumed: None,
        }
    }

    /// Its SQS entry (the batch number is the entry's id within a send).
    pub fn entry(&self, batch: BatchNo, work: Work) -> Entry {
        Entry {
            id: batch.to_string(),
            body: self.message(batch, work).to_json(),
        }
    }
}

/// The listing step a run owns: where it resumes (from the start: `None`), the run that
/// may checkpoint it, and the deadline it hands on before.
pub(super) struct ListingStep<'a> {
    pub resume: Option<ListingCheckpoint>,
    pub owner: &'a RunId,
    pub deadline: Option<Instant>,
}
