//! One SQS delivery run in a process of its own, so that a test can kill it with SIGKILL in
//! the middle of its work, as Lambda kills an invocation at its timeout or memory limit:
//!
//! `last_delivery worker|continuation BODY RECEIVE_COUNT DEADLINE_SECONDS`
//!
//! The function is the real one (`Worker::handle`, `Coordinator::handle_control_event`),
//! configured from the environment as on Lambda; its writes (worker: rows and stored scans;
//! continuation: batch messages) go through a port that takes a second per call, so a kill
//! lands mid-work.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use shared::app::config::{CoordinatorConfig, WorkerConfig};
use shared::app::coordinator::Coordinator;
use shared::app::worker::Worker;
use shared::aws::Clients;
use shared::ingest::item::Item;
use shared::port::Adapters;
use shared::port::objects::{Body, ObjectError, ObjectInfo, ObjectStore, Page, Read};
use shared::port::queue::{Entry, FailedEntry, QueueError, Queues, Received};
use shared::port::table::{RecordTable, WriteError};

const SLOW: Duration = Duration::from_secs(1);

struct SlowTable(Arc<dyn RecordTable>);

#[async_trait]
impl RecordTable for SlowTable {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        tokio::time::sleep(SLOW).await;
        self.0.batch_put(table, items).await
    }
}

struct SlowObjects(Arc<dyn ObjectStore>);

#[async_trait]
impl ObjectStore for SlowObjects {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: i32,
        cursor: Option<String>,
    ) -> Result<Page, ObjectError> {
        self.0.list_page(bucket, prefix, page_size, cursor).await
    }
    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        self.0.head(bucket, key).await
    }
    async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError> {
        self.0.get(bucket, key, read).await
    }
    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        tokio::time::sleep(SLOW).await;
        self.0.put(bucket, key, body, content_type).await
    }
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.0.delete(bucket, key).await
    }
}

struct SlowQueues(Arc<dyn Queues>);

#[async_trait]
impl Queues for SlowQueues {
    async fn send_batch(
        &self,
        url: &str,
        entries: &[Entry],
    ) -> Result<Vec<FailedEntry>, QueueError> {
        tokio::time::sleep(SLOW).await;
        self.0.send_batch(url, entries).await
    }
    async fn send(&self, url: &str, body: &str, dedup_id: &str) -> Result<(), QueueError> {
        self.0.send(url, body, dedup_id).await
    }
    async fn receive(
        &self,
        url: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        self.0.receive(url, max, wait).await
    }
    async fn delete(&self, url: &str, receipts: &[String]) -> Result<(), QueueError> {
        self.0.delete(url, receipts).await
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, role, body, receive_count, deadline_seconds] = args.as_slice() else {
        anyhow::bail!(
            "usage: last_delivery worker|continuation BODY RECEIVE_COUNT DEADLINE_SECONDS"
        );
    };
    let mut message = SqsMessage::default();
    message.message_id = Some("m-1".into());
    message.body = Some(body.clone());
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), receive_count.clone());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(deadline_seconds.parse()?)
        - shared::app::lambda::DEADLINE_MARGIN;
    let clients = Clients::from_env().await;
    let response = match role.as_str() {
        "worker" => {
            let config = WorkerConfig::from_env()?;
            let mut adapters = Adapters::aws(&clients, &config.tables.jobs);
            adapters.records = Arc::new(SlowTable(adapters.records.clone()));
            adapters.objects = Arc::new(SlowObjects(adapters.objects.clone()));
            Worker::new(adapters, config)
                .handle(event, Some(deadline))
                .await
        }
        "continuation" => {
            let config = CoordinatorConfig::from_env()?;
            let mut adapters = Adapters::aws(&clients, &config.tables.jobs);
            adapters.queues = Arc::new(SlowQueues(adapters.queues.clone()));
            Coordinator::new(adapters, config)
                .handle_control_event(event, Some(deadline))
                .await
        }
        other => anyhow::bail!("unknown role {other}"),
    };
    println!("{}", serde_json::to_string(&response)?);
    Ok(())
}
