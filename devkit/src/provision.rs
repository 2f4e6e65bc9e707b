//! Creates what the pipeline needs, idempotently: the bucket, the work queue with its
//! dead-letter queue, and the two tables. The same shapes as `template.yaml`.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use shared::app::config::Tables;
use shared::aws::Clients;
use thiserror::Error;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
#[error("provisioning {what} failed")]
pub struct ProvisionError {
    what: String,
    #[source]
    source: BoxError,
}

fn failed(what: impl Into<String>) -> impl FnOnce(BoxError) -> ProvisionError {
    let what = what.into();
    move |source| ProvisionError { what, source }
}

/// Names of everything the pipeline touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub bucket: String,
    pub queue: String,
    pub dead_letter_queue: String,
    /// The coordinator's own queue: wake-ups of paused listings.
    pub control_queue: String,
    /// Completion events.
    pub completion_queue: String,
    pub tables: Tables,
}

impl Resources {
    /// All names derived from one stem, e.g. `s3fanout-local`.
    pub fn named(stem: &str) -> Self {
        Self {
            bucket: stem.to_owned(),
            queue: format!("{stem}-batches"),
            dead_letter_queue: format!("{stem}-batches-dlq"),
            control_queue: format!("{stem}-control"),
            completion_queue: format!("{stem}-completed"),
            tables: Tables::new(&format!("{stem}-records"), &format!("{stem}-jobs")),
        }
    }
}

/// Queue settings, as in the template.
#[derive(Debug, Clone, Copy)]
pub struct QueueSettings {
    /// How long a received message stays hidden before redelivery.
    pub visibility_timeout: Duration,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: 5,
        }
    }
}

/// URLs and ARNs known once the queues exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provisioned {
    pub queue_url: String,
    pub queue_arn: String,
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: String,
    pub control_queue_url: String,
    pub control_queue_arn: String,
    pub completion_queue_url: String,
    /// Deliveries before the dead-letter queue (the worker needs it too).
    pub max_receive_count: u32,
}

pub async fn ensure(
    clients: &Clients,
    resources: &Resources,
    queue: QueueSettings,
) -> Result<Provisioned, ProvisionError> {
    ensure_bucket(&clients.s3, &resources.bucket).await?;
    ensure_table(
        &clients.dynamodb,
        &resources.tables.records,
        "measure_point",
        Some("timestamp"),
    )
    .await?;
    ensure_jobs_table(&clients.dynamodb, &resources.tables.jobs).await?;
    let (dead_letter_queue_url, dlq_arn) =
        ensure_queue(&clients.sqs, &resources.dead_letter_queue, vec![]).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": queue.max_receive_count.to_string(),
    });
    let (queue_url, queue_arn) = ensure_queue(
        &clients.sqs,
        &resources.queue,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                queue.visibility_timeout.as_secs().to_string(),
            ),
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
        ],
    )
    .await?;
    let (control_queue_url, control_queue_arn) =
        ensure_queue(&clients.sqs, &resources.control_queue, vec![]).await?;
    let (completion_queue_url, _) =
        ensure_queue(&clients.sqs, &resources.completion_queue, vec![]).await?;
    Ok(Provisioned {
        queue_url,
        queue_arn,
        dead_letter_queue_url,
        dead_letter_queue_arn: dlq_arn,
        control_queue_url,
        control_queue_arn,
        completion_queue_url,
        max_receive_count: queue.max_receive_count,
    })
}

async fn ensure_bucket(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), ProvisionError> {
    match s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(failed(format!("bucket {bucket}"))(e.into())),
    }
}

async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<(String, String), ProvisionError> {
    let mut request = sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(key, value);
    }
    let url = request
        .send()
        .await
        .map_err(|e| failed(format!("queue {name}"))(e.into()))?
        .queue_url
        .unwrap_or_default();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| failed(format!("queue {name} attributes"))(e.into()))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    Ok((url, arn))
}

/// The job ledger's table, as in the template: key `job_id` (headers, counter shards and
/// batch markers under derived keys) and the sparse index that lists job headers newest
/// first (`job_index` = the header's stage, `started_ms`), keys only.
pub async fn ensure_jobs_table(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Result<(), ProvisionError> {
    use shared::job::attrs;
    let index = GlobalSecondaryIndex::builder()
        .index_name(attrs::BY_START)
        .key_schema(key(attrs::JOB_INDEX, KeyType::Hash))
        .key_schema(key(attrs::STARTED_MS, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::KeysOnly)
                .build(),
        )
        .build()
        .expect("name, keys and projection are set");
    let request = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(attrs::JOB_ID, ScalarAttributeType::S))
        .attribute_definitions(attribute(attrs::JOB_INDEX, ScalarAttributeType::S))
        .attribute_definitions(attribute(attrs::STARTED_MS, ScalarAttributeType::N))
        .key_schema(key(attrs::JOB_ID, KeyType::Hash))
        .global_secondary_indexes(index);
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(failed(format!("table {table}"))(e.into())),
    }
    wait_active(ddb, table).await
}

fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("name and type are set")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("name and type are set")
}

/// A PAY_PER_REQUEST table with string key attributes, ACTIVE when this returns.
pub async fn ensure_table(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    partition_key: &str,
    sort_key: Option<&str>,
) -> Result<(), ProvisionError> {
    let string = |name| (name, ScalarAttributeType::S);
    ensure_typed_table(ddb, table, string(partition_key), sort_key.map(string)).await
}

/// As [`ensure_table`], with each key attribute's type (S, N or B).
pub async fn ensure_typed_table(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    (partition_key, partition_type): (&str, ScalarAttributeType),
    sort_key: Option<(&str, ScalarAttributeType)>,
) -> Result<(), ProvisionError> {
    let mut request = ddb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(partition_key, partition_type))
        .key_schema(key(partition_key, KeyType::Hash));
    if let Some((sort_key, sort_type)) = sort_key {
        request = request
            .attribute_definitions(attribute(sort_key, sort_type))
            .key_schema(key(sort_key, KeyType::Range));
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(failed(format!("table {table}"))(e.into())),
    }
    wait_active(ddb, table).await
}

async fn wait_active(ddb: &aws_sdk_dynamodb::Client, table: &str) -> Result<(), ProvisionError> {
    for _ in 0..100 {
        let status = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| failed(format!("table {table} status"))(e.into()))?
            .table
            .and_then(|t| t.table_status);
        if status == Some(TableStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(failed(format!("table {table}"))(
        "not ACTIVE after 10 s".into(),
    ))
}
