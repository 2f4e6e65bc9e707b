//! The ledger on DynamoDB: one item per job. A batch is counted by a single conditional
//! UpdateItem (its id joins a number set only if absent, and the counters move in the same
//! write); the final transition is one more conditional write only one caller can win.
//!
//! Why not TransactWriteItems: it costs twice the writes, and of the local servers dynalite
//! lacks it and moto copies every table per call. The conditional UpdateItem is atomic on its
//! own and works on all of them.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::errors::is_condition_failure;
use super::update::{Update, Updated, number, string};
use crate::clock;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::job::attrs;
use crate::job::model::{BatchStats, Job, JobStatus, ListingCheckpoint, Recorded};
use crate::job::rules::Ending;
use crate::port::ledger::{Finish, JobError, JobFilter, Ledger, Seal};

/// The jobs table.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    ddb: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(ddb: Client, table: &str) -> Self {
        Self {
            ddb,
            table: table.to_owned(),
        }
    }

    async fn update(
        &self,
        operation: &'static str,
        job_id: &JobId,
        update: Update,
        returning: bool,
    ) -> Result<Updated, JobError> {
        update
            .send(&self.ddb, &self.table, returning)
            .await
            .map_err(|e| backend(operation, job_id, e))
    }

    /// An applied update's item as a job.
    fn applied(job_id: &JobId, item: HashMap<String, AttributeValue>) -> Result<Job, JobError> {
        parse_job(job_id, item)
    }

    /// Counted, or (a lost condition) already counted, or the job is gone.
    async fn recorded(&self, job_id: &JobId, updated: Updated) -> Result<Recorded, JobError> {
        match updated {
            Updated::Applied(item) => Ok(Recorded::Counted(Self::applied(job_id, item)?)),
            Updated::ConditionFailed => match self.get(job_id).await? {
                Some(job) => Ok(Recorded::AlreadyCounted(job)),
                None => Err(JobError::NotFound(job_id.clone())),
            },
        }
    }

    /// The exactly-once core of both ways of counting a batch: the batch id joins the done
    /// set and `batches_done` moves, only if the id is not in the set yet.
    fn count_once(job_id: &JobId, batch: BatchNo) -> Update {
        Update::of(attrs::JOB_ID, job_id.as_str())
            .add(attrs::BATCHES_DONE, number(1))
            .add(attrs::DONE_BATCHES, batch_set(batch))
            .when_exists(attrs::JOB_ID)
            .when(|u| {
                format!(
                    "NOT contains({}, {})",
                    u.name(attrs::DONE_BATCHES),
                    u.value(number(batch.get()))
                )
            })
    }

    /// A redriven batch that failed before: its counts join the job and it leaves the failed
    /// set, once. The status of a job that already ended stays.
    async fn recover_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        stats: &BatchStats,
    ) -> Result<Recorded, JobError> {
        let update = with_stats(Update::of(attrs::JOB_ID, job_id.as_str()), stats)
            .add(attrs::BATCHES_FAILED, AttributeValue::N("-1".into()))
            .add(attrs::BATCHES_RECOVERED, number(1))
            .delete(attrs::FAILED_BATCHES, batch_set(batch))
            .when(|u| {
                format!(
                    "contains({}, {})",
                    u.name(attrs::FAILED_BATCHES),
                    u.value(number(batch.get()))
                )
            });
        match self
            .update("UpdateItem(recover batch)", job_id, update, true)
            .await?
        {
            Updated::Applied(item) => Ok(Recorded::Recovered(Self::applied(job_id, item)?)),
            Updated::ConditionFailed => match self.get(job_id).await? {
                Some(job) => Ok(Recorded::AlreadyCounted(job)),
                None => Err(JobError::NotFound(job_id.clone())),
            },
        }
    }
}

#[async_trait]
impl Ledger for DynamoLedger {
    async fn create(&self, job: &Job) -> Result<(), JobError> {
        let item = serde_dynamo::to_item(job).map_err(|e| malformed(&job.job_id, e))?;
        let result = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", attrs::JOB_ID)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(JobError::AlreadyExists(job.job_id.clone())),
            Err(e) => Err(backend("PutItem", &job.job_id, e)),
        }
    }

    async fn get(&self, job_id: &JobId) -> Result<Option<Job>, JobError> {
        let output = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(attrs::JOB_ID, string(job_id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", job_id, e))?;
        output.item.map(|item| parse_job(job_id, item)).transpose()
    }

    async fn seal_total(
        &self,
        job_id: &JobId,
        seal: Seal,
        owner: Option<&RunId>,
    ) -> Result<Job, JobError> {
        let mut update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::SEALED, AttributeValue::Bool(true))
            .set(attrs::TOTAL_BATCHES, number(seal.total_batches))
            .set(attrs::FILES_LISTED, number(seal.files_listed))
            .set(attrs::FILES_SKIPPED, number(seal.files_skipped))
            .when_exists(attrs::JOB_ID)
            .when_equals(attrs::SEALED, AttributeValue::Bool(false));
        if let Some(owner) = owner {
            update = update.when_equals(attrs::LISTING_OWNER, string(owner.as_str()));
        }
        match self
            .update("UpdateItem(seal)", job_id, update, true)
            .await?
        {
            Updated::Applied(item) => Self::applied(job_id, item),
            Updated::ConditionFailed => Err(match self.get(job_id).await? {
                Some(job) if job.sealed => JobError::AlreadySealed(job_id.clone()),
                Some(_) => JobError::NotOwner(job_id.clone()),
                None => JobError::NotFound(job_id.clone()),
            }),
        }
    }

    async fn claim_listing(
        &self,
        job_id: &JobId,
        invocation: u32,
        owner: &RunId,
        stale_after: Duration,
    ) -> Result<bool, JobError> {
        let now = clock::now_ms();
        let stale = now.saturating_sub(stale_after.as_millis() as u64);
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::LISTING_OWNER, string(owner.as_str()))
            .set(attrs::LISTING_UPDATED_MS, number(now))
            .when_equals(attrs::STATUS, string(JobStatus::Running.as_str()))
            .when_equals(attrs::SEALED, AttributeValue::Bool(false))
            .when(|u| at_step(u, invocation))
            .when(|u| {
                let owner = u.name(attrs::LISTING_OWNER);
                let updated = u.name(attrs::LISTING_UPDATED_MS);
                let stale = u.value(number(stale));
                format!("(attribute_not_exists({owner}) OR {updated} < {stale})")
            });
        let updated = self.update("UpdateItem(claim listing)", job_id, update, false);
        Ok(matches!(updated.await?, Updated::Applied(_)))
    }

    async fn release_listing(&self, job_id: &JobId, owner: &RunId) -> Result<(), JobError> {
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .remove(attrs::LISTING_OWNER)
            .when_equals(attrs::LISTING_OWNER, string(owner.as_str()));
        self.update("UpdateItem(release listing)", job_id, update, false)
            .await?;
        Ok(())
    }

    async fn checkpoint(
        &self,
        job_id: &JobId,
        checkpoint: &ListingCheckpoint,
        owner: &RunId,
    ) -> Result<bool, JobError> {
        let previous = checkpoint.invocation.saturating_sub(1);
        let cursor = checkpoint.cursor.clone().unwrap_or_default();
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(
                attrs::LISTING_INVOCATION,
                number(u64::from(checkpoint.invocation)),
            )
            .set(attrs::LISTING_CURSOR, AttributeValue::S(cursor))
            .set(attrs::BATCHES_ENQUEUED, number(checkpoint.next_batch))
            .set(attrs::FILES_LISTED, number(checkpoint.files_listed))
            .set(attrs::FILES_SKIPPED, number(checkpoint.files_skipped))
            .set(attrs::LISTING_UPDATED_MS, number(clock::now_ms()))
            .remove(attrs::LISTING_OWNER)
            .when_equals(attrs::STATUS, string(JobStatus::Running.as_str()))
            .when_equals(attrs::SEALED, AttributeValue::Bool(false))
            .when(|u| at_step(u, previous))
            .when_equals(attrs::LISTING_OWNER, string(owner.as_str()));
        let updated = self.update("UpdateItem(checkpoint)", job_id, update, false);
        Ok(matches!(updated.await?, Updated::Applied(_)))
    }

    async fn record_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        stats: &BatchStats,
    ) -> Result<Recorded, JobError> {
        let update = with_stats(Self::count_once(job_id, batch), stats);
        let updated = self.update("UpdateItem(record batch)", job_id, update, true);
        match self.recorded(job_id, updated.await?).await? {
            Recorded::AlreadyCounted(_) => self.recover_batch(job_id, batch, stats).await,
            counted => Ok(counted),
        }
    }

    async fn record_failed_batch(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        reason: &str,
    ) -> Result<Recorded, JobError> {
        let update = Self::count_once(job_id, batch)
            .add(attrs::BATCHES_FAILED, number(1))
            .add(attrs::FAILED_BATCHES, batch_set(batch))
            .set(attrs::LAST_BATCH_ERROR, string(reason));
        let updated = self.update("UpdateItem(record failed batch)", job_id, update, true);
        self.recorded(job_id, updated.await?).await
    }

    async fn finish(&self, job_id: &JobId, finish: &Finish) -> Result<Option<Job>, JobError> {
        let ending = &finish.ending;
        let mut update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::STATUS, string(ending.status().as_str()))
            .set(attrs::FINISHED_AT, string(&finish.finished_at))
            .set(
                attrs::DURATION_SECONDS,
                AttributeValue::N(format!("{:.3}", finish.duration_seconds)),
            )
            // The completion event is owed from the same write that makes the job final,
            // and the winner holds the right to send it.
            .set(attrs::EVENT_PENDING, AttributeValue::Bool(true))
            .set(attrs::EVENT_CLAIMED_MS, number(finish.event_claimed_ms))
            .when_equals(attrs::STATUS, string(JobStatus::Running.as_str()));
        if let Some(reason) = ending.reason() {
            update = update.set(attrs::ERROR, string(reason));
        }
        if let Ending::AllBatchesCounted { .. } = ending {
            update = update
                .when_equals(attrs::SEALED, AttributeValue::Bool(true))
                .when(|u| {
                    format!(
                        "{} = {}",
                        u.name(attrs::BATCHES_DONE),
                        u.name(attrs::TOTAL_BATCHES)
                    )
                });
        }
        match self
            .update("UpdateItem(finish)", job_id, update, true)
            .await?
        {
            Updated::Applied(item) => Ok(Some(Self::applied(job_id, item)?)),
            Updated::ConditionFailed => Ok(None),
        }
    }

    async fn claim_event(&self, job_id: &JobId, lease: Duration) -> Result<Option<u64>, JobError> {
        let now = clock::now_ms();
        let stale = now.saturating_sub(lease.as_millis() as u64);
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::EVENT_CLAIMED_MS, number(now))
            .when_equals(attrs::EVENT_PENDING, AttributeValue::Bool(true))
            .when(|u| {
                let claimed = u.name(attrs::EVENT_CLAIMED_MS);
                let stale = u.value(number(stale));
                format!("(attribute_not_exists({claimed}) OR {claimed} < {stale})")
            });
        let updated = self.update("UpdateItem(claim event)", job_id, update, false);
        Ok(matches!(updated.await?, Updated::Applied(_)).then_some(now))
    }

    async fn release_event_claim(&self, job_id: &JobId, claimed_ms: u64) -> Result<(), JobError> {
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .remove(attrs::EVENT_CLAIMED_MS)
            .when_equals(attrs::EVENT_CLAIMED_MS, number(claimed_ms));
        self.update("UpdateItem(release event claim)", job_id, update, false)
            .await?;
        Ok(())
    }

    async fn clear_event_pending(&self, job_id: &JobId) -> Result<(), JobError> {
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::EVENT_PENDING, AttributeValue::Bool(false))
            .remove(attrs::EVENT_CLAIMED_MS)
            .when_exists(attrs::JOB_ID);
        match self
            .update("UpdateItem(event sent)", job_id, update, false)
            .await?
        {
            Updated::Applied(_) => Ok(()),
            Updated::ConditionFailed => Err(JobError::NotFound(job_id.clone())),
        }
    }

    async fn jobs(&self, filter: JobFilter) -> Result<Vec<Job>, JobError> {
        let filter = match filter {
            JobFilter::All => None,
            JobFilter::Running => Some((attrs::STATUS, string(JobStatus::Running.as_str()))),
            JobFilter::EventPending => Some((attrs::EVENT_PENDING, AttributeValue::Bool(true))),
        };
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
                .map_err(|e| backend("Scan", &JobId::new("*"), e))?;
            for item in page.items.unwrap_or_default() {
                let id = item
                    .get(attrs::JOB_ID)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                jobs.push(parse_job(&JobId::new(id), item)?);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(jobs),
            }
        }
    }
}

/// The condition that the listing is at step `invocation` (a new job has no step yet).
fn at_step(update: &mut Update, invocation: u32) -> String {
    let step = update.name(attrs::LISTING_INVOCATION);
    let value = update.value(number(u64::from(invocation)));
    match invocation {
        0 => format!("(attribute_not_exists({step}) OR {step} = {value})"),
        _ => format!("{step} = {value}"),
    }
}

/// The batch counters a counted batch adds to its job.
fn with_stats(update: Update, stats: &BatchStats) -> Update {
    update
        .add(attrs::FILES, number(stats.files))
        .add(attrs::FILES_FAILED, number(stats.files_failed))
        .add(attrs::ROWS_WRITTEN, number(stats.rows_written))
        .add(attrs::ROWS_REJECTED, number(stats.rows_rejected))
        .add(attrs::ROWS_DUPLICATE, number(stats.rows_duplicate))
        .add(attrs::BYTES, number(stats.bytes))
        .add(attrs::WRITE_RETRIES, number(stats.write_retries))
        .add(attrs::S3_THROTTLES, number(stats.s3_throttles))
        .add(attrs::ROWS_EXISTING, number(stats.rows_existing))
        .add(attrs::WRITE_UNITS, number(stats.write_units))
}

fn batch_set(batch: BatchNo) -> AttributeValue {
    AttributeValue::Ns(vec![batch.to_string()])
}

fn parse_job(job_id: &JobId, item: HashMap<String, AttributeValue>) -> Result<Job, JobError> {
    serde_dynamo::from_item(item).map_err(|e| malformed(job_id, e))
}

fn malformed(job_id: &JobId, source: serde_dynamo::Error) -> JobError {
    JobError::Malformed {
        job_id: job_id.clone(),
        source: Box::new(source),
    }
}

fn backend(
    operation: &'static str,
    job_id: &JobId,
    source: impl std::error::Error + Send + Sync + 'static,
) -> JobError {
    JobError::Backend {
        operation,
        job_id: job_id.clone(),
        source: Box::new(source),
    }
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
        item.insert(attrs::DONE_BATCHES.into(), batch_set(BatchNo(0)));
        assert_eq!(parse_job(&"j1".into(), item).unwrap(), job);
    }
}
