//! Enqueueing a job's batches: a prefix listed page by page, or one object planned whole or
//! in byte ranges. Batches go out as they fill; a listing nearing the deadline checkpoints.

use tokio::time::Instant;

use super::listing::PrefixLister;
use super::object_plan::{ObjectPlan, PlanError, plan_object};
use super::{Coordinator, CoordinatorError, Enqueued, Listed};
use crate::app::queue_writer::QueueWriter;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::contract::messages::{
    BatchMessage, InflateTask, JobRequest, RowGroupTask, RowSpan, ScanTask, SplitObject, Work,
};
use crate::contract::rejects::ReportLocation;
use crate::ingest::compression::Encoding;
use crate::ingest::format::Format;
use crate::job::model::ListingCheckpoint;
use crate::plan::batching::{KeyBatcher, is_loadable_key};
use crate::plan::ranges::object_key;
use crate::port::objects::ListedObject;
use crate::port::queue::Entry;

impl Coordinator {
    pub(super) fn queue(&self) -> QueueWriter<'_> {
        QueueWriter::new(&*self.queues, &self.config.queue_url)
    }

    /// Enqueues a job's batches: one object's, or a prefix listing's (from `resume`).
    pub(super) async fn enqueue(
        &self,
        job_id: &JobId,
        request: &JobRequest,
        report: &ReportLocation,
        resume: Option<ListingCheckpoint>,
        owner: &RunId,
        deadline: Option<Instant>,
    ) -> Result<Listed, CoordinatorError> {
        if let Some(export) = &request.export {
            // Planned again from its manifests (a job the stuck check restarts): the same
            // batches under the same numbers, counted once.
            let schema = request.schema.clone().unwrap_or_default();
            let plan = self.plan_export(&request.bucket, export, &schema).await?;
            return (self.enqueue_export(job_id, request, report, &plan).await).map(Listed::Done);
        }
        if request.inventory.inventory.is_some() {
            // Planned again (the stuck check woke a job still counting): the same count
            // batches under the same numbers, counted once; the compose step seals.
            let plan = self
                .plan_inventory(&request.bucket, &request.inventory)
                .await?;
            return self
                .enqueue_inventory_counts(job_id, request, report, &plan)
                .await;
        }
        match &request.key {
            Some(key) => self
                .enqueue_object(job_id, request, key, report)
                .await
                .map(Listed::Done),
            None => {
                self.enqueue_prefix(job_id, request, report, resume, owner, deadline)
                    .await
            }
        }
    }

    /// Lists from the start or from a checkpoint, enqueueing batches as they fill, until
    /// the listing ends or the deadline nears (then it checkpoints and wakes the next
    /// invocation). A paused listing's last batch is cut short, so each invocation's batches
    /// depend only on where it resumed.
    async fn enqueue_prefix(
        &self,
        job_id: &JobId,
        request: &JobRequest,
        report: &ReportLocation,
        resume: Option<ListingCheckpoint>,
        owner: &RunId,
        deadline: Option<Instant>,
    ) -> Result<Listed, CoordinatorError> {
        let mut lister = PrefixLister::new(
            &*self.objects,
            &request.bucket,
            &request.prefix,
            self.config.list_page_size,
        );
        let (keys, bytes) = (self.config.batch_size, self.config.batch_bytes);
        let mut batcher = KeyBatcher::new(keys, bytes);
        let (mut listed, mut skipped, mut invocation) = (0, 0, 0);
        if let Some(checkpoint) = resume {
            if let Some(cursor) = checkpoint.cursor {
                lister = lister.resume(cursor);
            }
            batcher = KeyBatcher::starting_at(keys, bytes, checkpoint.next_batch);
            (listed, skipped, invocation) = (
                checkpoint.files_listed,
                checkpoint.files_skipped,
                checkpoint.invocation,
            );
        }
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
            batch_entry(
                job_id,
                request,
                report,
                BatchNo(batch),
                Work::Objects { keys },
            )
        };
        while let Some(page) = lister.next_page().await.map_err(CoordinatorError::List)? {
            for object in page {
                listed += 1;
                if !is_loadable_key(&object.key) {
                    skipped += 1;
                    continue;
                }
                if let Some(tasks) = self.row_groups_in_prefix(request, &object).await? {
                    let first = batcher.reserve(tasks.len() as u64);
                    self.enqueue_row_groups(&mut queue, job_id, request, report, first, tasks)
                        .await?;
                    continue;
                }
                if let Some(task) = self.inflate_in_prefix(request, &object).await? {
                    // Its parts share the one number it takes (docs/compressed.md).
                    let batch = BatchNo(batcher.reserve(1));
                    let entry = batch_entry(job_id, request, report, batch, Work::Inflate(task));
                    queue.push(entry).await?;
                    continue;
                }
                if let Some(mut split) = self.split_in_prefix(request, &object).await? {
                    // Its scans and parses take the next numbers; the key batch being filled
                    // goes on filling.
                    split.first_batch = batcher.reserve(split.total_batches());
                    self.enqueue_split(&mut queue, job_id, request, report, &split)
                        .await?;
                    continue;
                }
                for closed in batcher.push(object.key, object.size) {
                    queue.push(message(closed)).await?;
                }
            }
            if let Some(cursor) = lister.cursor()
                && self.must_pause(deadline)
            {
                if let Some(last) = batcher.finish() {
                    queue.push(message(last)).await?;
                }
                queue.flush().await?;
                let checkpoint = ListingCheckpoint {
                    invocation: invocation + 1,
                    cursor: Some(cursor.to_owned()),
                    next_batch: batcher.emitted(),
                    files_listed: listed,
                    files_skipped: skipped,
                };
                if self.ledger.checkpoint(job_id, &checkpoint, owner).await? {
                    self.wake(job_id, checkpoint.invocation).await?;
                    tracing::info!(
                        %job_id,
                        next_invocation = checkpoint.invocation,
                        batches = checkpoint.next_batch,
                        "listing paused before the deadline"
                    );
                } else {
                    tracing::info!(%job_id, "this run no longer owns the listing; stopping");
                }
                return Ok(Listed::Paused(Enqueued {
                    batches: batcher.emitted(),
                    listed,
                    skipped,
                }));
            }
        }
        if let Some(last) = batcher.finish() {
            queue.push(message(last)).await?;
        }
        queue.flush().await?;
        Ok(Listed::Done(Enqueued {
            batches: batcher.emitted(),
            listed,
            skipped,
        }))
    }

    /// One object: one batch, or one batch per range when it is large.
    async fn enqueue_object(
        &self,
        job_id: &JobId,
        request: &JobRequest,
        key: &str,
        report: &ReportLocation,
    ) -> Result<Enqueued, CoordinatorError> {
        if !is_loadable_key(key) {
            return Ok(Enqueued {
                batches: 0,
                listed: 1,
                skipped: 1,
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
                let entry =
                    batch_entry(job_id, request, report, BatchNo(0), Work::Objects { keys });
                queue.push(entry).await?;
                1
            }
            ObjectPlan::Split(object) => {
                self.enqueue_split(&mut queue, job_id, request, report, &object)
                    .await?;
                object.total_batches()
            }
            ObjectPlan::Inflate(task) => {
                tracing::info!(%job_id, batch = 0, key, "compressed object to be inflated into parts");
                let entry = batch_entry(job_id, request, report, BatchNo(0), Work::Inflate(task));
                queue.push(entry).await?;
                1
            }
            ObjectPlan::RowGroups(tasks) => {
                let batches = tasks.len() as u64;
                self.enqueue_row_groups(&mut queue, job_id, request, report, 0, tasks)
                    .await?;
                batches
            }
        };
        queue.flush().await?;
        Ok(Enqueued {
            batches,
            listed: 1,
            skipped: 0,
        })
    }
}

impl Coordinator {
    /// A plain CSV in a prefix listed above the chunk size, planned into ranges as a
    /// single-object job's would be; `None`: it is read whole in a key batch (small,
    /// compressed, or a header the worker will reject; also an object gone since the
    /// listing, which the worker then reports).
    async fn split_in_prefix(
        &self,
        request: &JobRequest,
        object: &ListedObject,
    ) -> Result<Option<SplitObject>, CoordinatorError> {
        let chunk = self.config.range_chunk_bytes;
        let format = Format::resolve(request.format, &object.key);
        // Only plain CSV and JSON Lines split; anything else is read whole by one worker.
        if object.size <= chunk || Encoding::of_key(&object.key).is_compressed() || !format.splits()
        {
            return Ok(None);
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
            Ok(ObjectPlan::Split(split)) => Ok(Some(split)),
            Ok(ObjectPlan::Whole | ObjectPlan::RowGroups(_) | ObjectPlan::Inflate(_)) => Ok(None),
            Err(PlanError::Object(error)) if error.is_permanent() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// A compressed object in a prefix listed above the chunk size, to be inflated as a
    /// single-object job's would be; `None`: read whole in a key batch (small, not a record
    /// format, or gone since the listing, which the worker then reports).
    async fn inflate_in_prefix(
        &self,
        request: &JobRequest,
        object: &ListedObject,
    ) -> Result<Option<InflateTask>, CoordinatorError> {
        let chunk = self.config.range_chunk_bytes;
        if object.size <= chunk || !Encoding::of_key(&object.key).is_compressed() {
            return Ok(None);
        }
        let format = Format::resolve(request.format, &object.key);
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
            Ok(ObjectPlan::Inflate(task)) => Ok(Some(task)),
            Ok(_) => Ok(None),
            Err(PlanError::Object(error)) if error.is_permanent() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// A large Parquet object in a prefix, planned by row group as a single-object job's
    /// would be; `None`: read whole in a key batch (small, not Parquet, or gone since the
    /// listing, which the worker then reports).
    async fn row_groups_in_prefix(
        &self,
        request: &JobRequest,
        object: &ListedObject,
    ) -> Result<Option<Vec<RowGroupTask>>, CoordinatorError> {
        let chunk = self.config.range_chunk_bytes;
        let format = Format::resolve(request.format, &object.key);
        if object.size <= chunk || !format.by_row_groups() {
            return Ok(None);
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
            Ok(ObjectPlan::RowGroups(tasks)) => Ok(Some(tasks)),
            Ok(_) => Ok(None),
            Err(PlanError::Object(error)) if error.is_permanent() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// A Parquet object's row-group batches, numbered from `first`.
    async fn enqueue_row_groups(
        &self,
        queue: &mut QueueWriter<'_>,
        job_id: &JobId,
        request: &JobRequest,
        report: &ReportLocation,
        first: u64,
        tasks: Vec<RowGroupTask>,
    ) -> Result<(), CoordinatorError> {
        tracing::info!(
            %job_id,
            key = tasks.first().map(|t| t.key.as_str()).unwrap_or_default(),
            batches = tasks.len(),
            first_batch = first,
            "Parquet object planned by row group"
        );
        for (i, task) in tasks.into_iter().enumerate() {
            let batch = BatchNo(first + i as u64);
            let message = batch_message(job_id, request, report, batch, Work::RowGroups(task));
            queue
                .push(Entry {
                    id: batch.to_string(),
                    body: message.to_json(),
                })
                .await?;
        }
        Ok(())
    }

    /// A split object's batches: one parse batch if it has one range (its rows start just
    /// past the header, so they need no scan), else a scan batch per range (phase one; once
    /// every scan is in, the compose step enqueues the parses).
    async fn enqueue_split(
        &self,
        queue: &mut QueueWriter<'_>,
        job_id: &JobId,
        request: &JobRequest,
        report: &ReportLocation,
        object: &SplitObject,
    ) -> Result<(), CoordinatorError> {
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
            let entry = batch_entry(job_id, request, report, batch, Work::Range(task));
            queue.push(entry).await?;
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
                let entry = batch_entry(job_id, request, report, batch, Work::Range(task));
                queue.push(entry).await?;
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
            queue
                .push(batch_entry(job_id, request, report, batch, scan))
                .await?;
        }
        Ok(())
    }
}

/// The SQS entry of one batch.
pub(super) fn batch_entry(
    job_id: &JobId,
    request: &JobRequest,
    report: &ReportLocation,
    batch: BatchNo,
    work: Work,
) -> Entry {
    Entry {
        id: batch.to_string(),
        body: batch_message(job_id, request, report, batch, work).to_json(),
    }
}

/// One batch of the job `request` started.
pub(super) fn batch_message(
    job_id: &JobId,
    request: &JobRequest,
    report: &ReportLocation,
    batch: BatchNo,
    work: Work,
) -> BatchMessage {
    BatchMessage {
        job_id: job_id.clone(),
        batch,
        bucket: request.bucket.clone(),
        work,
        schema: request.schema.clone(),
        format: request.format,
        table: request.table.clone(),
        report: report.clone(),
        write: request.write.clone(),
        resumed: None,
    }
}
