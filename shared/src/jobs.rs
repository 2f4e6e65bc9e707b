//! The job ledger: one item per job in the jobs table. It is the fan-in: each batch is counted
//! exactly once by a single conditional UpdateItem (the batch id joins a number set only if
//! absent, and the counters move in the same write), and the job reaches its final status by
//! one more conditional write that only one caller can win.
//!
//! Why not TransactWriteItems: it costs twice the writes, and of the local servers dynalite
//! lacks it and moto copies every table per call (12 s at 100k items). The conditional
//! UpdateItem is atomic on its own and works on all of them.
//!
//! The done-batch set lives in the job item, so one job holds at most ~40,000 batches before
//! the 400 KB item limit (at 100 keys a batch: 4 million objects).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::rejects::RejectTolerance;
use crate::schema::Schema;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum JobError {
    #[error("{operation} on job {job_id} failed")]
    Dynamo {
        operation: &'static str,
        job_id: String,
        #[source]
        source: BoxError,
    },
    #[error("job {0} already exists")]
    AlreadyExists(String),
    #[error("job {0} does not exist")]
    NotFound(String),
    #[error("job {0} is already sealed")]
    AlreadySealed(String),
    #[error("another run owns the listing of job {0}")]
    NotOwner(String),
    #[error("job item {job_id} is malformed")]
    Malformed {
        job_id: String,
        #[source]
        source: serde_dynamo::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Running,
    Complete,
    /// Every batch is accounted for, but some reached the dead-letter queue.
    CompletedWithErrors,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "RUNNING",
            JobStatus::Complete => "COMPLETE",
            JobStatus::CompletedWithErrors => "COMPLETED_WITH_ERRORS",
            JobStatus::Failed => "FAILED",
        }
    }

    pub fn is_final(self) -> bool {
        self != JobStatus::Running
    }
}

/// What one worker batch did, added to the job's totals when the batch is counted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchStats {
    /// Objects decoded (rows may still have been rejected).
    pub files: u64,
    /// Objects rejected whole (e.g. a header without the required columns).
    pub files_failed: u64,
    pub rows_written: u64,
    pub rows_rejected: u64,
    /// Rows superseded by a later row with the same key in the same write batch.
    pub rows_duplicate: u64,
    pub bytes: u64,
    /// BatchWriteItem retry rounds for UnprocessedItems (DynamoDB throttling).
    pub write_retries: u64,
    /// S3 throttling replies (503 SlowDown) the SDK retried.
    pub s3_throttles: u64,
}

impl BatchStats {
    /// Every row read: written, superseded in its write batch, or rejected.
    pub fn rows_read(&self) -> u64 {
        self.rows_written + self.rows_duplicate + self.rows_rejected
    }
}

/// The job item as stored. Missing counters read as zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    pub status: JobStatus,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    /// The one object of a single-object job (no listing then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Set once listing has ended: only then is `total_batches` final.
    #[serde(default)]
    pub sealed: bool,
    #[serde(default)]
    pub total_batches: u64,
    /// Counted batches, failed ones included: the job is done when this reaches the total.
    #[serde(default)]
    pub batches_done: u64,
    /// Batches that failed their last delivery and went to the dead-letter queue.
    #[serde(default)]
    pub batches_failed: u64,
    /// Failed batches that succeeded after a redrive (no longer in `batches_failed`).
    #[serde(default)]
    pub batches_recovered: u64,
    /// Why the last failed batch failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_batch_error: Option<String>,
    #[serde(default)]
    pub files_listed: u64,
    /// Listed keys that are not CSV objects.
    #[serde(default)]
    pub files_skipped: u64,
    #[serde(flatten)]
    pub totals: BatchStats,
    /// The job's schema, when it declared one (the sensor schema otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Schema>,
    /// Rejected rows beyond this end the job FAILED; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_rejects: Option<RejectTolerance>,
    /// Where the job's rejects reports are written (`s3://bucket/prefix/job_id/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects_report: Option<String>,
    pub started_at: String,
    pub started_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set by the final transition, cleared once the completion event is sent (an outbox:
    /// see [`crate::completion`]).
    #[serde(default)]
    pub event_pending: bool,
    /// A listing too long for one coordinator invocation continues in the next: its number
    /// (0 for the first), where it resumes, and the batches enqueued so far.
    #[serde(default)]
    pub listing_invocation: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_cursor: Option<String>,
    #[serde(default)]
    pub batches_enqueued: u64,
    /// When the listing last changed hands (ms since the epoch; 0: never).
    #[serde(default)]
    pub listing_updated_ms: u64,
    /// The run that owns the current listing step: only it may enqueue, checkpoint or seal.
    /// Absent between a checkpoint and the next run's claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listing_owner: Option<String>,
    /// When the completion event's sending was claimed (see [`crate::completion`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_claimed_ms: Option<u64>,
}

/// Where a paused listing resumes, as checkpointed in the job item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingCheckpoint {
    /// The invocation that will resume it.
    pub invocation: u32,
    /// ListObjectsV2 continuation token; `None`: from the start.
    pub cursor: Option<String>,
    /// The next batch's number (batches enqueued so far).
    pub next_batch: u64,
    pub files_listed: u64,
    pub files_skipped: u64,
}

impl Job {
    pub fn new(job_id: &str, bucket: &str, prefix: &str) -> Self {
        let now = SystemTime::now();
        Self {
            job_id: job_id.to_owned(),
            status: JobStatus::Running,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            key: None,
            sealed: false,
            total_batches: 0,
            batches_done: 0,
            batches_failed: 0,
            batches_recovered: 0,
            last_batch_error: None,
            files_listed: 0,
            files_skipped: 0,
            totals: BatchStats::default(),
            schema: None,
            tolerated_rejects: None,
            rejects_report: None,
            started_at: chrono::DateTime::<chrono::Utc>::from(now).to_rfc3339(),
            started_ms: millis(now),
            finished_at: None,
            duration_seconds: None,
            error: None,
            event_pending: false,
            listing_invocation: 0,
            listing_cursor: None,
            batches_enqueued: 0,
            listing_updated_ms: 0,
            listing_owner: None,
            event_claimed_ms: None,
        }
    }

    /// Where the listing stands: the invocation that owns it and where it resumes (from the
    /// start if it never checkpointed).
    pub fn listing_position(&self) -> ListingCheckpoint {
        ListingCheckpoint {
            invocation: self.listing_invocation,
            cursor: self.listing_cursor.clone(),
            next_batch: self.batches_enqueued,
            files_listed: self.files_listed,
            files_skipped: self.files_skipped,
        }
    }

    /// Milliseconds since the listing last showed progress (its start or last checkpoint).
    pub fn listing_idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.started_ms.max(self.listing_updated_ms))
    }

    /// Whether every batch of a sealed, running job has been counted.
    pub fn is_ready_to_finish(&self) -> bool {
        self.status == JobStatus::Running && self.sealed && self.batches_done == self.total_batches
    }

    /// Rows per second over the job's wall time, once finished.
    pub fn rows_per_second(&self) -> Option<f64> {
        self.duration_seconds
            .filter(|s| *s > 0.0)
            .map(|s| self.totals.rows_written as f64 / s)
    }
}

/// Whether `record_batch` moved the counters, found the batch already counted, or counted
/// a batch that had failed before (a redrive) after all.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Counted(Job),
    AlreadyCounted(Job),
    Recovered(Job),
}

impl Recorded {
    pub fn job(&self) -> &Job {
        match self {
            Recorded::Counted(job) | Recorded::AlreadyCounted(job) | Recorded::Recovered(job) => {
                job
            }
        }
    }
}

/// The jobs table.
#[derive(Debug, Clone)]
pub struct JobLedger {
    ddb: aws_sdk_dynamodb::Client,
    table: String,
}

impl JobLedger {
    pub fn new(ddb: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            ddb,
            table: table.to_owned(),
        }
    }

    /// Writes a new RUNNING, unsealed job; fails if the id is taken.
    pub async fn create(&self, job: &Job) -> Result<(), JobError> {
        let item = serde_dynamo::to_item(job).map_err(|source| JobError::Malformed {
            job_id: job.job_id.clone(),
            source,
        })?;
        let result = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", "job_id")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(JobError::AlreadyExists(job.job_id.clone())),
            Err(e) => Err(dynamo_error("PutItem", &job.job_id, e)),
        }
    }

    /// Consistent read of a job.
    pub async fn get(&self, job_id: &str) -> Result<Option<Job>, JobError> {
        let output = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error("GetItem", job_id, e))?;
        output.item.map(|item| parse_job(job_id, item)).transpose()
    }

    /// Ends the listing: fixes the total. If every batch was already counted, this call
    /// finishes the job (returns it); otherwise the last batch to be counted will. With an
    /// `owner`, only that run may seal (a duplicate run of the same step gets `NotOwner`).
    pub async fn seal(
        &self,
        job_id: &str,
        total_batches: u64,
        files_listed: u64,
        files_skipped: u64,
        owner: Option<&str>,
    ) -> Result<Option<Job>, JobError> {
        let mut condition = "attribute_exists(#id) AND #sealed = :false".to_owned();
        let mut request = self.ddb.update_item();
        if let Some(owner) = owner {
            condition.push_str(" AND #owner = :owner");
            request = request
                .expression_attribute_names("#owner", "listing_owner")
                .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()));
        }
        let result = request
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression(
                "SET #sealed = :true, #total = :total, #listed = :listed, #skipped = :skipped",
            )
            .condition_expression(condition)
            .expression_attribute_names("#id", "job_id")
            .expression_attribute_names("#sealed", "sealed")
            .expression_attribute_names("#total", "total_batches")
            .expression_attribute_names("#listed", "files_listed")
            .expression_attribute_names("#skipped", "files_skipped")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":total", number(total_batches))
            .expression_attribute_values(":listed", number(files_listed))
            .expression_attribute_values(":skipped", number(files_skipped))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let job = match result {
            Ok(output) => parse_job(job_id, output.attributes.unwrap_or_default())?,
            Err(e) if is_condition_failure(&e) => {
                return Err(match self.get(job_id).await? {
                    Some(job) if job.sealed => JobError::AlreadySealed(job_id.to_owned()),
                    Some(_) => JobError::NotOwner(job_id.to_owned()),
                    None => JobError::NotFound(job_id.to_owned()),
                });
            }
            Err(e) => return Err(dynamo_error("UpdateItem(seal)", job_id, e)),
        };
        self.try_finish(&job).await
    }

    /// Takes the listing step `invocation` for the run `owner`: only if the job is running,
    /// unsealed, at that step, and nobody owns it (or its owner went silent for longer than
    /// `stale_after`, longer than any invocation lives). Only the owner enqueues, so two runs
    /// of one step (a duplicate wake-up) never send different batches under one number.
    pub async fn claim_listing(
        &self,
        job_id: &str,
        invocation: u32,
        owner: &str,
        stale_after: Duration,
    ) -> Result<bool, JobError> {
        let now = millis(SystemTime::now());
        let at_step = match invocation {
            0 => "(attribute_not_exists(#inv) OR #inv = :inv)",
            _ => "#inv = :inv",
        };
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression("SET #owner = :owner, #updated = :now")
            .condition_expression(format!(
                "#status = :running AND #sealed = :false AND {at_step} \
                 AND (attribute_not_exists(#owner) OR #updated < :stale)"
            ))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#sealed", "sealed")
            .expression_attribute_names("#inv", "listing_invocation")
            .expression_attribute_names("#owner", "listing_owner")
            .expression_attribute_names("#updated", "listing_updated_ms")
            .expression_attribute_values(
                ":running",
                AttributeValue::S(JobStatus::Running.as_str().into()),
            )
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":inv", number(u64::from(invocation)))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(
                ":stale",
                number(now.saturating_sub(stale_after.as_millis() as u64)),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(dynamo_error("UpdateItem(claim listing)", job_id, e)),
        }
    }

    /// Gives up `owner`'s claim on the current listing step after an error, so a retry can
    /// claim it at once instead of waiting for the claim to go stale.
    pub async fn release_listing(&self, job_id: &str, owner: &str) -> Result<(), JobError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression("REMOVE #owner")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "listing_owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(dynamo_error("UpdateItem(release listing)", job_id, e)),
        }
    }

    /// Pauses a listing: records where invocation `checkpoint.invocation` resumes and hands
    /// the listing over (no owner until the next run claims it), only if `owner` still owns
    /// the step before it. `false` means it does not, and this run must stop.
    pub async fn checkpoint(
        &self,
        job_id: &str,
        checkpoint: &ListingCheckpoint,
        owner: &str,
    ) -> Result<bool, JobError> {
        let previous = checkpoint.invocation.saturating_sub(1);
        let at_previous = match previous {
            0 => "(attribute_not_exists(#inv) OR #inv = :previous)",
            _ => "#inv = :previous",
        };
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression(
                "SET #inv = :inv, #cursor = :cursor, #enqueued = :enqueued, \
                 #listed = :listed, #skipped = :skipped, #updated = :now REMOVE #owner",
            )
            .condition_expression(format!(
                "#status = :running AND #sealed = :false AND {at_previous} AND #owner = :owner"
            ))
            .expression_attribute_names("#owner", "listing_owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#sealed", "sealed")
            .expression_attribute_names("#inv", "listing_invocation")
            .expression_attribute_names("#cursor", "listing_cursor")
            .expression_attribute_names("#enqueued", "batches_enqueued")
            .expression_attribute_names("#listed", "files_listed")
            .expression_attribute_names("#skipped", "files_skipped")
            .expression_attribute_names("#updated", "listing_updated_ms")
            .expression_attribute_values(":now", number(millis(SystemTime::now())))
            .expression_attribute_values(
                ":running",
                AttributeValue::S(JobStatus::Running.as_str().into()),
            )
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":previous", number(u64::from(previous)))
            .expression_attribute_values(":inv", number(u64::from(checkpoint.invocation)))
            .expression_attribute_values(
                ":cursor",
                AttributeValue::S(checkpoint.cursor.clone().unwrap_or_default()),
            )
            .expression_attribute_values(":enqueued", number(checkpoint.next_batch))
            .expression_attribute_values(":listed", number(checkpoint.files_listed))
            .expression_attribute_values(":skipped", number(checkpoint.files_skipped))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(dynamo_error("UpdateItem(checkpoint)", job_id, e)),
        }
    }

    /// Counts a batch exactly once: the batch id joins the job's set of done batches and the
    /// counters move in the same conditional write, which fails if the id is already there.
    /// Redelivered or concurrent duplicates therefore see `AlreadyCounted`. A batch counted
    /// as failed (dead-lettered) that succeeds after a redrive is `Recovered` instead.
    pub async fn record_batch(
        &self,
        job_id: &str,
        batch: u64,
        stats: &BatchStats,
    ) -> Result<Recorded, JobError> {
        let counted = self.count_once(job_id, batch, &format!(", {STATS_ADDS}"), "");
        let result = with_stats(counted, stats).send().await;
        match self
            .recorded(job_id, "UpdateItem(record_batch)", result)
            .await?
        {
            Recorded::AlreadyCounted(_) => self.recover_batch(job_id, batch, stats).await,
            counted => Ok(counted),
        }
    }

    /// A redriven batch that failed before: its counts join the job and it leaves the failed
    /// set, once (the write is conditional on the batch being in that set). The status of a
    /// job that already ended stays: a job has exactly one final transition.
    async fn recover_batch(
        &self,
        job_id: &str,
        batch: u64,
        stats: &BatchStats,
    ) -> Result<Recorded, JobError> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression(format!(
                "ADD {STATS_ADDS}, #failed :minus_one, #recovered :one DELETE #failed_set :batch_set"
            ))
            .condition_expression("contains(#failed_set, :batch)")
            .expression_attribute_names("#failed", "batches_failed")
            .expression_attribute_names("#recovered", "batches_recovered")
            .expression_attribute_names("#failed_set", "failed_batches")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .expression_attribute_values(":batch", number(batch))
            .expression_attribute_values(":batch_set", AttributeValue::Ns(vec![batch.to_string()]))
            .return_values(ReturnValue::AllNew);
        match with_stats(update, stats).send().await {
            Ok(output) => Ok(Recorded::Recovered(parse_job(
                job_id,
                output.attributes.unwrap_or_default(),
            )?)),
            Err(e) if is_condition_failure(&e) => match self.get(job_id).await? {
                Some(job) => Ok(Recorded::AlreadyCounted(job)),
                None => Err(JobError::NotFound(job_id.to_owned())),
            },
            Err(e) => Err(dynamo_error("UpdateItem(recover_batch)", job_id, e)),
        }
    }

    /// Every RUNNING job (a scan: the stuck-job check runs rarely and the ledger holds one
    /// small item per job).
    pub async fn running_jobs(&self) -> Result<Vec<Job>, JobError> {
        let running = AttributeValue::S(JobStatus::Running.as_str().into());
        self.scan_jobs(Some(("status", running))).await
    }

    /// Ids of finished jobs whose completion event is still owed (a crash came between the
    /// final transition and the event).
    pub async fn jobs_owing_an_event(&self) -> Result<Vec<String>, JobError> {
        let owed = self
            .scan_jobs(Some(("event_pending", AttributeValue::Bool(true))))
            .await?;
        Ok(owed.into_iter().map(|job| job.job_id).collect())
    }

    /// The `limit` most recently started jobs, newest first (a scan: one small item per job).
    pub async fn recent_jobs(&self, limit: usize) -> Result<Vec<Job>, JobError> {
        let mut jobs = self.scan_jobs(None).await?;
        jobs.sort_by_key(|job| std::cmp::Reverse(job.started_ms));
        jobs.truncate(limit);
        Ok(jobs)
    }

    /// Every job, or those whose `attribute` equals a value.
    async fn scan_jobs(
        &self,
        filter: Option<(&str, AttributeValue)>,
    ) -> Result<Vec<Job>, JobError> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .ddb
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take());
            if let Some((attribute, value)) = &filter {
                request = request
                    .filter_expression("#attribute = :value")
                    .expression_attribute_names("#attribute", *attribute)
                    .expression_attribute_values(":value", value.clone());
            }
            let page = request
                .send()
                .await
                .map_err(|e| dynamo_error("Scan", "*", e))?;
            for item in page.items.unwrap_or_default() {
                let id = item
                    .get("job_id")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                jobs.push(parse_job(&id, item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(jobs),
            }
        }
    }

    /// Counts a batch that failed its last delivery (it is on its way to the dead-letter
    /// queue) exactly once, as done-but-failed, so the job can still end instead of waiting
    /// on a batch that will never come.
    pub async fn record_failed_batch(
        &self,
        job_id: &str,
        batch: u64,
        reason: &str,
    ) -> Result<Recorded, JobError> {
        let result = self
            .count_once(
                job_id,
                batch,
                ", #failed :one, #failed_set :batch_set",
                "#last = :reason",
            )
            .expression_attribute_names("#failed", "batches_failed")
            .expression_attribute_names("#failed_set", "failed_batches")
            .expression_attribute_names("#last", "last_batch_error")
            .expression_attribute_values(":reason", AttributeValue::S(reason.to_owned()))
            .send()
            .await;
        self.recorded(job_id, "UpdateItem(record_failed_batch)", result)
            .await
    }

    /// The exactly-once core of both ways of counting a batch: the batch id joins the done
    /// set and `batches_done` moves, only if the id is not in the set yet. `adds` and `sets`
    /// extend the update with the caller's own counters.
    fn count_once(
        &self,
        job_id: &str,
        batch: u64,
        adds: &str,
        sets: &str,
    ) -> UpdateItemFluentBuilder {
        let mut update = format!("ADD #done :one, #set :batch_set{adds}");
        if !sets.is_empty() {
            update.push_str(" SET ");
            update.push_str(sets);
        }
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression(update)
            .condition_expression("attribute_exists(#id) AND NOT contains(#set, :batch)")
            .expression_attribute_names("#id", "job_id")
            .expression_attribute_names("#done", "batches_done")
            .expression_attribute_names("#set", "done_batches")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":batch", number(batch))
            .expression_attribute_values(":batch_set", AttributeValue::Ns(vec![batch.to_string()]))
            .return_values(ReturnValue::AllNew)
    }

    /// Counted, or already counted (a lost condition), or an error.
    async fn recorded(
        &self,
        job_id: &str,
        operation: &'static str,
        result: Result<UpdateItemOutput, SdkError<UpdateItemError, HttpResponse>>,
    ) -> Result<Recorded, JobError> {
        match result {
            Ok(output) => Ok(Recorded::Counted(parse_job(
                job_id,
                output.attributes.unwrap_or_default(),
            )?)),
            Err(e) if is_condition_failure(&e) => match self.get(job_id).await? {
                Some(job) => Ok(Recorded::AlreadyCounted(job)),
                None => Err(JobError::NotFound(job_id.to_owned())),
            },
            Err(e) => Err(dynamo_error(operation, job_id, e)),
        }
    }

    /// Ends a job whose every batch is counted: COMPLETE, or FAILED if its rejects exceed
    /// its tolerance. At most one caller ever wins (the write is conditional on RUNNING and on
    /// the counts), and the winner gets the final job back and logs its summary: that is the
    /// job's completion callback.
    pub async fn try_finish(&self, job: &Job) -> Result<Option<Job>, JobError> {
        if !job.is_ready_to_finish() {
            return Ok(None);
        }
        let seconds = millis(SystemTime::now()).saturating_sub(job.started_ms) as f64 / 1000.0;
        let too_many_rejects = job.tolerated_rejects.and_then(|tolerance| {
            tolerance.exceeded(job.totals.rows_rejected, job.totals.rows_read())
        });
        let failed_batches = (job.batches_failed > 0).then(|| {
            format!(
                "{} of {} batches failed their last delivery and are in the dead-letter queue (last error: {})",
                job.batches_failed,
                job.total_batches,
                job.last_batch_error.as_deref().unwrap_or("unknown")
            )
        });
        let (status, reason) = match (too_many_rejects, failed_batches) {
            (Some(reason), _) => (JobStatus::Failed, Some(reason)),
            (None, Some(reason)) => (JobStatus::CompletedWithErrors, Some(reason)),
            (None, None) => (JobStatus::Complete, None),
        };
        let ending = Ending::AllBatchesCounted {
            status,
            reason: reason.as_deref(),
        };
        self.transition(&job.job_id, ending, seconds).await
    }

    /// Marks a running job FAILED with a reason (e.g. the coordinator could not list or
    /// enqueue). Returns the job if this call made the transition.
    pub async fn fail(&self, job_id: &str, reason: &str) -> Result<Option<Job>, JobError> {
        let Some(job) = self.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.to_owned()));
        };
        let seconds = millis(SystemTime::now()).saturating_sub(job.started_ms) as f64 / 1000.0;
        self.transition(job_id, Ending::Abandoned(reason), seconds)
            .await
    }

    /// The one write that ends a job: conditional on RUNNING (and, to complete, on every
    /// batch being counted), so only one caller ever makes it.
    async fn transition(
        &self,
        job_id: &str,
        ending: Ending<'_>,
        seconds: f64,
    ) -> Result<Option<Job>, JobError> {
        // The completion event is owed from the same write that makes the job final.
        let mut update =
            "SET #status = :final, #finished_at = :now, #duration = :duration, #pending = :pending, \
             #claimed = :claimed"
                .to_owned();
        let mut condition = "#status = :running".to_owned();
        let mut request = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#finished_at", "finished_at")
            .expression_attribute_names("#duration", "duration_seconds")
            .expression_attribute_names("#pending", "event_pending")
            .expression_attribute_values(":pending", AttributeValue::Bool(true))
            // The winner holds the right to send the event (see `claim_event`).
            .expression_attribute_names("#claimed", "event_claimed_ms")
            .expression_attribute_values(":claimed", number(millis(SystemTime::now())))
            .expression_attribute_values(
                ":running",
                AttributeValue::S(JobStatus::Running.as_str().into()),
            )
            .expression_attribute_values(":now", AttributeValue::S(chrono::Utc::now().to_rfc3339()))
            .expression_attribute_values(":duration", AttributeValue::N(format!("{seconds:.3}")));
        let (status, failure) = match ending {
            Ending::AllBatchesCounted { status, reason } => {
                condition.push_str(" AND #sealed = :true AND #done = #total");
                request = request
                    .expression_attribute_names("#sealed", "sealed")
                    .expression_attribute_names("#done", "batches_done")
                    .expression_attribute_names("#total", "total_batches")
                    .expression_attribute_values(":true", AttributeValue::Bool(true));
                (status, reason)
            }
            Ending::Abandoned(reason) => (JobStatus::Failed, Some(reason)),
        };
        request = request
            .expression_attribute_values(":final", AttributeValue::S(status.as_str().into()));
        if let Some(reason) = failure {
            update.push_str(", #error = :error");
            request = request
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", AttributeValue::S(reason.to_owned()));
        }
        let result = request
            .update_expression(update)
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let job = parse_job(job_id, output.attributes.unwrap_or_default())?;
                log_final(&job);
                Ok(Some(job))
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(dynamo_error("UpdateItem(finish)", job_id, e)),
        }
    }
}

impl JobLedger {
    /// Takes the right to send a job's owed completion event: only if the event is pending
    /// and nobody claimed it within `lease` (the final transition's winner holds the first
    /// claim). A claimant that crashed before sending loses its claim when the lease ends.
    /// Returns the claim's time stamp, the token to release it with.
    pub async fn claim_event(
        &self,
        job_id: &str,
        lease: Duration,
    ) -> Result<Option<u64>, JobError> {
        let now = millis(SystemTime::now());
        let stale = now.saturating_sub(lease.as_millis() as u64);
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression("SET #claimed = :now")
            .condition_expression(
                "#pending = :true AND (attribute_not_exists(#claimed) OR #claimed < :stale)",
            )
            .expression_attribute_names("#pending", "event_pending")
            .expression_attribute_names("#claimed", "event_claimed_ms")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":stale", number(stale))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Some(now)),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(dynamo_error("UpdateItem(claim event)", job_id, e)),
        }
    }

    /// Gives up the claim stamped `claimed_ms` after a failed send, so the next delivery can
    /// send at once; a claim someone else has taken over since is left alone.
    pub async fn release_event_claim(&self, job_id: &str, claimed_ms: u64) -> Result<(), JobError> {
        let result = self
            .ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression("REMOVE #claimed")
            .condition_expression("#claimed = :mine")
            .expression_attribute_names("#claimed", "event_claimed_ms")
            .expression_attribute_values(":mine", number(claimed_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(dynamo_error("UpdateItem(release event claim)", job_id, e)),
        }
    }

    /// Marks a job's completion event as sent.
    pub async fn clear_event_pending(&self, job_id: &str) -> Result<(), JobError> {
        self.ddb
            .update_item()
            .table_name(&self.table)
            .key("job_id", AttributeValue::S(job_id.to_owned()))
            .update_expression("SET #pending = :false REMOVE #claimed")
            .condition_expression("attribute_exists(job_id)")
            .expression_attribute_names("#pending", "event_pending")
            .expression_attribute_names("#claimed", "event_claimed_ms")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await
            .map_err(|e| dynamo_error("UpdateItem(event sent)", job_id, e))?;
        Ok(())
    }
}

/// The batch counters a counted batch adds to its job.
const STATS_ADDS: &str = "#files :files, #files_failed :files_failed, #written :written, \
    #rejected :rejected, #duplicate :duplicate, #bytes :bytes, \
    #write_retries :write_retries, #s3_throttles :s3_throttles";

/// Names and values for [`STATS_ADDS`].
fn with_stats(update: UpdateItemFluentBuilder, stats: &BatchStats) -> UpdateItemFluentBuilder {
    update
        .expression_attribute_names("#files", "files")
        .expression_attribute_names("#files_failed", "files_failed")
        .expression_attribute_names("#written", "rows_written")
        .expression_attribute_names("#rejected", "rows_rejected")
        .expression_attribute_names("#duplicate", "rows_duplicate")
        .expression_attribute_names("#bytes", "bytes")
        .expression_attribute_names("#write_retries", "write_retries")
        .expression_attribute_names("#s3_throttles", "s3_throttles")
        .expression_attribute_values(":files", number(stats.files))
        .expression_attribute_values(":files_failed", number(stats.files_failed))
        .expression_attribute_values(":written", number(stats.rows_written))
        .expression_attribute_values(":rejected", number(stats.rows_rejected))
        .expression_attribute_values(":duplicate", number(stats.rows_duplicate))
        .expression_attribute_values(":bytes", number(stats.bytes))
        .expression_attribute_values(":write_retries", number(stats.write_retries))
        .expression_attribute_values(":s3_throttles", number(stats.s3_throttles))
}

/// How a job ends.
enum Ending<'a> {
    /// Every batch is counted: COMPLETE, or COMPLETED_WITH_ERRORS / FAILED for a reason.
    AllBatchesCounted {
        status: JobStatus,
        reason: Option<&'a str>,
    },
    /// It can never be sealed (listing or enqueueing failed): FAILED for this reason.
    Abandoned(&'a str),
}

/// The completion callback's record: one structured line per job, written exactly once.
fn log_final(job: &Job) {
    let summary = serde_json::to_string(job).unwrap_or_default();
    tracing::info!(
        job_id = %job.job_id,
        status = job.status.as_str(),
        rows_written = job.totals.rows_written,
        rows_rejected = job.totals.rows_rejected,
        duration_seconds = job.duration_seconds,
        %summary,
        "job finished"
    );
}

/// Whether a conditional write lost: DynamoDB's ConditionalCheckFailedException.
fn is_condition_failure<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

fn parse_job(job_id: &str, item: HashMap<String, AttributeValue>) -> Result<Job, JobError> {
    serde_dynamo::from_item(item).map_err(|source| JobError::Malformed {
        job_id: job_id.to_owned(),
        source,
    })
}

fn dynamo_error(
    operation: &'static str,
    job_id: &str,
    source: impl std::error::Error + Send + Sync + 'static,
) -> JobError {
    JobError::Dynamo {
        operation,
        job_id: job_id.to_owned(),
        source: Box::new(source),
    }
}

fn number(n: u64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_round_trips_through_an_item_and_ignores_the_batch_set() {
        let mut job = Job::new("j1", "bucket", "data/");
        job.totals.rows_written = 7;
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&job).unwrap();
        assert_eq!(item["status"], AttributeValue::S("RUNNING".into()));
        assert_eq!(item["rows_written"], AttributeValue::N("7".into()));
        item.insert("done_batches".into(), AttributeValue::Ns(vec!["0".into()]));
        assert_eq!(parse_job("j1", item).unwrap(), job);
    }

    #[test]
    fn only_a_sealed_running_job_with_every_batch_done_is_ready() {
        let mut job = Job::new("j", "b", "");
        job.total_batches = 2;
        job.batches_done = 2;
        assert!(!job.is_ready_to_finish(), "unsealed");
        job.sealed = true;
        assert!(job.is_ready_to_finish());
        job.batches_done = 1;
        assert!(!job.is_ready_to_finish(), "a batch is missing");
        job.batches_done = 2;
        job.status = JobStatus::Complete;
        assert!(!job.is_ready_to_finish(), "already final");
    }

    #[test]
    fn an_empty_sealed_job_is_ready_at_once() {
        let mut job = Job::new("j", "b", "");
        job.sealed = true;
        assert!(job.is_ready_to_finish());
    }
}
