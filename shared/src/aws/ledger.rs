//! The ledger on DynamoDB: a header item per job (this file), counter shards and batch markers
//! under derived keys in the same table (`ledger_parts.rs`). A batch is counted by three
//! single-item conditional writes of about one write unit each, whatever the job's size
//! (`crate::fan_in::counting`); the final transition is one more conditional write only one
//! caller can win. Jobs are listed through the sparse index `by-start` (headers only), never
//! by scanning the batches' items.
//!
//! Why not TransactWriteItems: it costs twice the writes, and of the local servers dynalite
//! lacks it and moto copies every table per call. Single-item conditional writes are atomic
//! on their own and work on all of them.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::errors::is_condition_failure;
use super::update::{Update, Updated, WriteMeter, number, string};
use crate::clock;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::fan_in::Ledger as _;
use crate::job::attrs;
use crate::job::model::{Job, JobStatus, ListingCheckpoint, ListingProgress};
use crate::job::rules::Ending;
use crate::job::shards::{Delta, Marker, Recovery, Shard};
use crate::port::ledger::{Finish, JobError, JobFilter, LedgerStore};

/// The jobs table.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    pub(super) ddb: Client,
    pub(super) table: String,
    pub(super) meter: std::sync::Arc<WriteMeter>,
}

impl DynamoLedger {
    pub fn new(ddb: Client, table: &str) -> Self {
        Self {
            ddb,
            table: table.to_owned(),
            meter: Default::default(),
        }
    }

    /// Write units this ledger's writes consumed so far, as the server reported them, and
    /// the number of writes (the bench's cost per count).
    pub fn write_units(&self) -> (f64, u64) {
        self.meter.total()
    }

    pub(super) async fn update(
        &self,
        operation: &'static str,
        job_id: &JobId,
        update: Update,
        returning: bool,
    ) -> Result<Updated, JobError> {
        update
            .send(&self.ddb, &self.table, returning, &self.meter)
            .await
            .map_err(|e| backend(operation, job_id, e))
    }

    /// The headers of one index stage that match `filter`, newest first, at most `limit`. A
    /// header that does not parse is logged and skipped: one bad item must not hide the rest
    /// (from the stuck check above all).
    async fn stage(
        &self,
        stage: &str,
        filter: JobFilter,
        limit: Option<usize>,
    ) -> Result<Vec<Job>, JobError> {
        let everyone = JobId::new("*");
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .query()
                .table_name(&self.table)
                .index_name(attrs::BY_START)
                .key_condition_expression("#index = :stage")
                .expression_attribute_names("#index", attrs::JOB_INDEX)
                .expression_attribute_values(":stage", string(stage))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query(by-start)", &everyone, e))?;
            let keys: Vec<HashMap<String, AttributeValue>> = (page.items.unwrap_or_default())
                .into_iter()
                .filter_map(|item| {
                    let id = item.get(attrs::JOB_ID)?.clone();
                    Some(HashMap::from([(attrs::JOB_ID.to_owned(), id)]))
                })
                .collect();
            let mut found = Vec::new();
            for item in self.batch_get(&everyone, keys).await? {
                let id = (item.get(attrs::JOB_ID).and_then(|v| v.as_s().ok()))
                    .cloned()
                    .unwrap_or_default();
                match parse_job(&JobId::new(&id), item) {
                    Ok(job) => found.push(job),
                    Err(error) => {
                        tracing::error!(job_id = %id, error = %crate::report(&error), "a job header does not parse; skipped")
                    }
                }
            }
            found.sort_by_key(|job| std::cmp::Reverse(job.started_ms));
            jobs.extend(found.into_iter().filter(|job| filter.matches(job)));
            if limit.is_some_and(|limit| jobs.len() >= limit) {
                return Ok(jobs);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(jobs),
            }
        }
    }

    /// An applied update's item as a job.
    fn applied(job_id: &JobId, item: HashMap<String, AttributeValue>) -> Result<Job, JobError> {
        parse_job(job_id, item)
    }
}

#[async_trait]
impl LedgerStore for DynamoLedger {
    async fn create(&self, job: &Job) -> Result<(), JobError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(job).map_err(|e| malformed(&job.job_id, e))?;
        // Only headers carry the index key: the index lists jobs, not their batches.
        item.insert(attrs::JOB_INDEX.into(), string(attrs::RUNNING));
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

    async fn header(&self, job_id: &JobId) -> Result<Option<Job>, JobError> {
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
        listing: ListingProgress,
        owner: Option<&RunId>,
    ) -> Result<Job, JobError> {
        let mut update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::SEALED, AttributeValue::Bool(true))
            .set(attrs::TOTAL_BATCHES, number(listing.batches))
            .set(attrs::FILES_LISTED, number(listing.files_listed))
            .set(attrs::FILES_SKIPPED, number(listing.files_skipped))
            .set(
                attrs::PLANNING_BYTES_READ,
                number(listing.planning_bytes_read),
            )
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
            .set(attrs::BATCHES_ENQUEUED, number(checkpoint.progress.batches))
            .set(
                attrs::FILES_LISTED,
                number(checkpoint.progress.files_listed),
            )
            .set(
                attrs::FILES_SKIPPED,
                number(checkpoint.progress.files_skipped),
            )
            .set(
                attrs::PLANNING_BYTES_READ,
                number(checkpoint.progress.planning_bytes_read),
            )
            .set(attrs::LISTING_UPDATED_MS, number(clock::now_ms()))
            .set(attrs::LISTING_HELD, AttributeValue::Bool(checkpoint.held))
            .remove(attrs::LISTING_OWNER)
            .remove(attrs::LISTING_LAST_ATTEMPT_MS)
            .when_equals(attrs::STATUS, string(JobStatus::Running.as_str()))
            .when_equals(attrs::SEALED, AttributeValue::Bool(false))
            .when(|u| at_step(u, previous))
            .when_equals(attrs::LISTING_OWNER, string(owner.as_str()));
        let updated = self.update("UpdateItem(checkpoint)", job_id, update, false);
        Ok(matches!(updated.await?, Updated::Applied(_)))
    }

    async fn advance_export_phase(
        &self,
        job_id: &JobId,
        phase: u32,
        now_ms: u64,
    ) -> Result<bool, JobError> {
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::EXPORT_PHASE, number(u64::from(phase)))
            .set(attrs::EXPORT_FENCE_MS, number(now_ms))
            .when_equals(attrs::STATUS, string(JobStatus::Running.as_str()))
            .when(|u| {
                let name = u.name(attrs::EXPORT_PHASE);
                let phase = u.value(number(u64::from(phase)));
                format!("(attribute_not_exists({name}) OR {name} < {phase})")
            });
        let updated = self.update("UpdateItem(export phase)", job_id, update, false);
        Ok(matches!(updated.await?, Updated::Applied(_)))
    }

    async fn mark_listing_last_attempt(
        &self,
        job_id: &JobId,
        deadline_ms: u64,
    ) -> Result<(), JobError> {
        let update = Update::of(attrs::JOB_ID, job_id.as_str())
            .set(attrs::LISTING_LAST_ATTEMPT_MS, number(deadline_ms))
            .when_exists(attrs::JOB_ID);
        match self
            .update("UpdateItem(listing last attempt)", job_id, update, false)
            .await?
        {
            Updated::Applied(_) => Ok(()),
            Updated::ConditionFailed => Err(JobError::NotFound(job_id.clone())),
        }
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
            .set(attrs::JOB_INDEX, string(attrs::OWED))
            .set(attrs::EVENT_CLAIMED_MS, number(finish.event_claimed_ms))
            .when_equals(attrs::STATUS, string(JobStatus::Running.as_str()));
        if let Some(reason) = ending.reason() {
            update = update.set(attrs::ERROR, string(reason));
        }
        if let Ending::AllBatchesCounted { .. } = ending {
            update = update.when_equals(attrs::SEALED, AttributeValue::Bool(true));
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
            .set(attrs::JOB_INDEX, string(attrs::DONE))
            .set(
                attrs::EXPIRES_AT,
                super::ledger_parts::expiry(attrs::FINISHED_TTL_SECONDS),
            )
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

    async fn headers(&self, filter: JobFilter, limit: Option<usize>) -> Result<Vec<Job>, JobError> {
        // Each stage is its own index partition, newest first: a filter reads only its own.
        let stages: &[&str] = match filter {
            JobFilter::Running => &[attrs::RUNNING, attrs::LEGACY_INDEX],
            JobFilter::EventPending => &[attrs::OWED, attrs::LEGACY_INDEX],
            JobFilter::All => &[
                attrs::RUNNING,
                attrs::OWED,
                attrs::DONE,
                attrs::LEGACY_INDEX,
            ],
        };
        let mut jobs = Vec::new();
        for stage in stages {
            jobs.extend(self.stage(stage, filter, limit).await?);
        }
        jobs.sort_by_key(|job| std::cmp::Reverse(job.started_ms));
        if let Some(limit) = limit {
            jobs.truncate(limit);
        }
        Ok(jobs)
    }

    async fn shards(&self, job_id: &JobId) -> Result<Vec<(u32, Shard)>, JobError> {
        self.shard_items(job_id).await
    }

    async fn add_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError> {
        self.add_intent_item(job_id, shard, token).await
    }

    async fn drop_intent(&self, job_id: &JobId, shard: u32, token: &str) -> Result<(), JobError> {
        self.drop_intent_item(job_id, shard, token).await
    }

    async fn apply(
        &self,
        job_id: &JobId,
        shard: u32,
        token: &str,
        delta: &Delta,
    ) -> Result<Option<Shard>, JobError> {
        self.apply_item(job_id, shard, token, delta).await
    }

    async fn put_marker(&self, job_id: &JobId, marker: &Marker) -> Result<bool, JobError> {
        self.put_marker_item(job_id, marker).await
    }

    async fn marker(&self, job_id: &JobId, batch: BatchNo) -> Result<Option<Marker>, JobError> {
        self.marker_item(job_id, batch).await
    }

    async fn put_recovery(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        recovery: &Recovery,
    ) -> Result<bool, JobError> {
        self.put_recovery_item(job_id, batch, recovery).await
    }

    async fn mark_last_attempt(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        deadline_ms: u64,
    ) -> Result<(), JobError> {
        self.mark_last_attempt_item(job_id, batch, Some(deadline_ms))
            .await
    }

    async fn clear_last_attempt(&self, job_id: &JobId, batch: BatchNo) -> Result<(), JobError> {
        self.mark_last_attempt_item(job_id, batch, None).await
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

pub(super) fn parse_job(
    job_id: &JobId,
    item: HashMap<String, AttributeValue>,
) -> Result<Job, JobError> {
    serde_dynamo::from_item(item).map_err(|e| malformed(job_id, e))
}

pub(super) fn malformed(job_id: &JobId, source: serde_dynamo::Error) -> JobError {
    JobError::Malformed {
        job_id: job_id.clone(),
        source: Box::new(source),
    }
}

pub(super) fn backend(
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
    fn job_round_trips_through_an_item_and_ignores_the_index_key() {
        let mut job = Job::new("j1", "bucket", "data/");
        job.totals.rows_written = 7;
        let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&job).unwrap();
        assert_eq!(item["status"], AttributeValue::S("RUNNING".into()));
        assert_eq!(item["rows_written"], AttributeValue::N("7".into()));
        item.insert(attrs::JOB_INDEX.into(), string(attrs::RUNNING));
        assert_eq!(parse_job(&"j1".into(), item).unwrap(), job);
    }
}
