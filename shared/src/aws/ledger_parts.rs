//! The ledger's counter shards and batch markers on DynamoDB: items of the jobs table under
//! derived keys (`{job}#s{k}`, `{job}#b{n}`), each its own partition, so no item or partition
//! takes more than its shard's share of the counts. Every write is a single-item conditional
//! write: an intent token joins a string set, a marker is put only if absent, a delta is
//! applied only while its token is in the set (and removes it). See `crate::fan_in::counting`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};

use super::ledger::{DynamoLedger, backend, malformed};
use super::update::{Update, Updated, number, string};
use crate::contract::completion::BatchStats;
use crate::contract::ids::{BatchNo, JobId};
use crate::job::attrs;
use crate::job::shards::{self, Delta, Marker, Recovery, SHARDS, Shard};
use crate::port::ledger::JobError;

type Item = HashMap<String, AttributeValue>;

pub fn shard_key(job_id: &JobId, shard: u32) -> String {
    format!("{job_id}#s{shard}")
}

pub fn marker_key(job_id: &JobId, batch: BatchNo) -> String {
    format!("{job_id}#b{}", batch.get())
}

/// The epoch second `ttl` from now, as the TTL attribute's value.
pub(super) fn expiry(ttl: u64) -> AttributeValue {
    number(crate::clock::now_ms() / 1000 + ttl)
}

fn token_set(token: &str) -> AttributeValue {
    AttributeValue::Ss(vec![token.to_owned()])
}

fn signed(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// An item's size as DynamoDB bills it, close enough for a bound: attribute names plus
/// values (strings and binary by length, numbers by about one byte per two digits, sets and
/// documents by their members plus a few bytes each).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().div_ceil(2) + 1,
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

/// A shard item as counters, its last-attempt marks included.
pub fn parse_shard(job_id: &JobId, item: Item) -> Result<Shard, JobError> {
    let marks: Vec<(u64, u64)> = item
        .iter()
        .filter_map(|(name, value)| {
            let batch = name
                .strip_prefix(attrs::LAST_ATTEMPT_PREFIX)?
                .parse()
                .ok()?;
            let deadline = value.as_n().ok()?.parse().ok()?;
            Some((batch, deadline))
        })
        .collect();
    // A shard holding only marks or intents has no counters yet: they read as zero.
    let mut item = item;
    for (counter, _) in BatchStats::default().counters() {
        item.entry(counter.to_owned()).or_insert_with(|| number(0));
    }
    let mut shard: Shard = serde_dynamo::from_item(item).map_err(|e| malformed(job_id, e))?;
    shard.last_attempts.extend(marks);
    Ok(shard)
}

impl DynamoLedger {
    pub(super) async fn add_intent_item(
        &self,
        job_id: &JobId,
        shard: u32,
        token: &str,
    ) -> Result<(), JobError> {
        let update = Update::of(attrs::JOB_ID, &shard_key(job_id, shard))
            .add(attrs::INTENTS, token_set(token))
            .set(attrs::EXPIRES_AT, expiry(attrs::COUNTS_TTL_SECONDS));
        self.update("UpdateItem(add intent)", job_id, update, false)
            .await?;
        Ok(())
    }

    pub(super) async fn drop_intent_item(
        &self,
        job_id: &JobId,
        shard: u32,
        token: &str,
    ) -> Result<(), JobError> {
        let update = Update::of(attrs::JOB_ID, &shard_key(job_id, shard))
            .delete(attrs::INTENTS, token_set(token));
        self.update("UpdateItem(drop intent)", job_id, update, false)
            .await?;
        Ok(())
    }

    pub(super) async fn apply_item(
        &self,
        job_id: &JobId,
        shard: u32,
        token: &str,
        delta: &Delta,
    ) -> Result<Option<Shard>, JobError> {
        let stats = &delta.stats;
        let mut update = Update::of(attrs::JOB_ID, &shard_key(job_id, shard))
            .add(attrs::BATCHES_DONE, number(delta.done))
            .add(attrs::BATCHES_FAILED, signed(delta.failed))
            .add(attrs::BATCHES_RECOVERED, number(delta.recovered))
            .add(attrs::BATCH_SUM, number(delta.batch_sum));
        for (counter, value) in stats.counters() {
            update = update.add(counter, number(value));
        }
        update = update.delete(attrs::INTENTS, token_set(token)).when(|u| {
            format!(
                "contains({}, {})",
                u.name(attrs::INTENTS),
                u.value(string(token))
            )
        });
        if let Some(reason) = &delta.error {
            update = update.set(attrs::LAST_BATCH_ERROR, string(reason));
        }
        match self
            .update("UpdateItem(apply)", job_id, update, true)
            .await?
        {
            Updated::Applied(item) => Ok(Some(parse_shard(job_id, item)?)),
            Updated::ConditionFailed => Ok(None),
        }
    }

    pub(super) async fn put_marker_item(
        &self,
        job_id: &JobId,
        marker: &Marker,
    ) -> Result<bool, JobError> {
        let mut item: Item = serde_dynamo::to_item(marker).map_err(|e| malformed(job_id, e))?;
        item.insert(
            attrs::JOB_ID.into(),
            string(&marker_key(job_id, marker.batch)),
        );
        item.insert(attrs::EXPIRES_AT.into(), expiry(attrs::COUNTS_TTL_SECONDS));
        let result = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", attrs::JOB_ID)
            .return_consumed_capacity(aws_sdk_dynamodb::types::ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(output) => {
                self.meter
                    .add(output.consumed_capacity.and_then(|c| c.capacity_units));
                Ok(true)
            }
            Err(e) if super::errors::is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend("PutItem(marker)", job_id, e)),
        }
    }

    pub(super) async fn marker_item(
        &self,
        job_id: &JobId,
        batch: BatchNo,
    ) -> Result<Option<Marker>, JobError> {
        let output = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(attrs::JOB_ID, string(&marker_key(job_id, batch)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem(marker)", job_id, e))?;
        output
            .item
            .map(|item| serde_dynamo::from_item(item).map_err(|e| malformed(job_id, e)))
            .transpose()
    }

    pub(super) async fn put_recovery_item(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        recovery: &Recovery,
    ) -> Result<bool, JobError> {
        let value: AttributeValue =
            serde_dynamo::to_attribute_value(recovery).map_err(|e| malformed(job_id, e))?;
        let update = Update::of(attrs::JOB_ID, &marker_key(job_id, batch))
            .set(attrs::RECOVERY, value)
            .when_equals(attrs::OUTCOME, string("failed"))
            .when(|u| format!("attribute_not_exists({})", u.name(attrs::RECOVERY)));
        let updated = self.update("UpdateItem(recovery)", job_id, update, false);
        Ok(matches!(updated.await?, Updated::Applied(_)))
    }

    pub(super) async fn mark_last_attempt_item(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        deadline_ms: Option<u64>,
    ) -> Result<(), JobError> {
        let attribute = format!("{}{}", attrs::LAST_ATTEMPT_PREFIX, batch.get());
        let update = Update::of(attrs::JOB_ID, &shard_key(job_id, shards::shard_of(batch)));
        let update = match deadline_ms {
            Some(deadline) => update.set(&attribute, number(deadline)),
            None => update.remove(&attribute),
        };
        self.update("UpdateItem(last attempt)", job_id, update, false)
            .await?;
        Ok(())
    }

    /// Every shard of a job that exists: one BatchGetItem of consistent reads.
    pub(super) async fn shard_items(&self, job_id: &JobId) -> Result<Vec<(u32, Shard)>, JobError> {
        let keys = (0..SHARDS)
            .map(|k| HashMap::from([(attrs::JOB_ID.to_owned(), string(&shard_key(job_id, k)))]));
        let items = self.batch_get(job_id, keys.collect()).await?;
        let mut shards = Vec::new();
        for item in items {
            let key = item
                .get(attrs::JOB_ID)
                .and_then(|v| v.as_s().ok())
                .and_then(|key| key.rsplit_once("#s"))
                .and_then(|(_, k)| k.parse::<u32>().ok());
            if let Some(k) = key {
                shards.push((k, parse_shard(job_id, item)?));
            }
        }
        shards.sort_by_key(|(k, _)| *k);
        Ok(shards)
    }

    /// Consistent reads of up to 100 keys, unprocessed keys retried.
    pub(super) async fn batch_get(
        &self,
        job_id: &JobId,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, JobError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| backend("BatchGetItem", job_id, e))?,
            );
            let mut delay = std::time::Duration::from_millis(20);
            while let Some(request) = pending.take() {
                let output = self
                    .ddb
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| backend("BatchGetItem", job_id, e))?;
                if let Some(mut responses) = output.responses {
                    found.extend(responses.remove(&self.table).unwrap_or_default());
                }
                pending = output
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(&self.table))
                    .filter(|left| !left.keys.is_empty());
                if pending.is_some() {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(1));
                }
            }
        }
        Ok(found)
    }
}
