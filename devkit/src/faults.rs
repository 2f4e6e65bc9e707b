//! Faults injected by composition around the real servers, for tests and demos: a table that
//! leaves some writes unprocessed (as a throttled DynamoDB table does), and an S3 client that
//! turns some GetObject replies into 503 SlowDown (as a hot S3 prefix does). The requests
//! still reach the real local servers; only the replies are changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use shared::ingest::typing::Item;
use shared::port::table::{Inserted, KeyNames, RecordTable, TableDescription, WriteError};

/// Every `every`-th BatchWriteItem call writes only the first half of its items and hands the
/// rest back as unprocessed.
pub struct FlakyWrites<A> {
    inner: A,
    every: u64,
    calls: AtomicU64,
    /// Items handed back unprocessed so far.
    pub unprocessed: AtomicU64,
}

impl<A> FlakyWrites<A> {
    pub fn new(inner: A, every: u64) -> Self {
        Self {
            inner,
            every: every.max(1),
            calls: AtomicU64::new(0),
            unprocessed: AtomicU64::new(0),
        }
    }
}

#[async_trait::async_trait]
impl<A: RecordTable> RecordTable for FlakyWrites<A> {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        if !call.is_multiple_of(self.every) || items.len() < 2 {
            return self.inner.batch_put(table, items).await;
        }
        let (sent, held_back) = items.split_at(items.len() / 2);
        self.unprocessed
            .fetch_add(held_back.len() as u64, Ordering::Relaxed);
        let mut unprocessed = self.inner.batch_put(table, sent).await?;
        unprocessed.extend(held_back.iter().map(|item| (*item).clone()));
        Ok(unprocessed)
    }

    // The other writes pass through untouched.
    async fn batch_delete(
        &self,
        table: &str,
        key: &KeyNames,
        keys: &[&Item],
    ) -> Result<Vec<Item>, WriteError> {
        self.inner.batch_delete(table, key, keys).await
    }

    async fn put_if_absent(
        &self,
        table: &str,
        key: &KeyNames,
        item: Item,
    ) -> Result<Inserted, WriteError> {
        self.inner.put_if_absent(table, key, item).await
    }

    async fn update(&self, table: &str, key: &KeyNames, item: Item) -> Result<(), WriteError> {
        self.inner.update(table, key, item).await
    }

    async fn describe(&self, table: &str) -> Result<TableDescription, WriteError> {
        self.inner.describe(table).await
    }
}

/// Replaces every `every`-th GetObject reply with `503 SlowDown`.
#[derive(Debug)]
struct SlowDown {
    every: u64,
    replies: AtomicU64,
    injected: Arc<AtomicU64>,
}

impl Intercept for SlowDown {
    fn name(&self) -> &'static str {
        "SlowDownInjector"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let is_get = cfg
            .load::<Metadata>()
            .is_some_and(|m| m.name() == "GetObject");
        if !is_get || !(self.replies.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(self.every)
        {
            return Ok(());
        }
        self.injected.fetch_add(1, Ordering::Relaxed);
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
        let response = context.response_mut();
        *response.status_mut() = StatusCode::try_from(503).expect("503 is a status code");
        response
            .headers_mut()
            .insert("content-type", "application/xml");
        response
            .headers_mut()
            .insert("content-length", body.len().to_string());
        *response.body_mut() = SdkBody::from(body);
        Ok(())
    }
}

/// A copy of `s3` whose every `every`-th GetObject reply is a 503 SlowDown; the counter says
/// how many were injected.
pub fn with_slowdowns(s3: &aws_sdk_s3::Client, every: u64) -> (aws_sdk_s3::Client, Arc<AtomicU64>) {
    let injected = Arc::new(AtomicU64::new(0));
    let config = s3
        .config()
        .to_builder()
        .interceptor(SlowDown {
            every: every.max(1),
            replies: AtomicU64::new(0),
            injected: injected.clone(),
        })
        .build();
    (aws_sdk_s3::Client::from_conf(config), injected)
}
