//! Helpers for the integration tests: one set of local servers per test binary (started on
//! first use, killed when the binary exits), and fresh uniquely named resources per test.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, Select};
use devkit::bridge::{Invoke, SqsBridge};
use devkit::pipeline::LocalPipeline;
use devkit::provision::{self, Provisioned, QueueSettings, Resources};
use devkit::sample::SensorReading;
use devkit::servers::{LocalAws, Server, ServerChoice};
use shared::app::config::{CoordinatorConfig, WorkerConfig};
use shared::app::coordinator::Coordinator;
use shared::app::worker::Worker;
use shared::aws::Clients;
use shared::aws::DynamoLedger;
use shared::contract::messages::{BatchMessage, Work};
use shared::contract::rejects::{RejectRecord, ReportLocation};
use shared::fan_in::{Ledger, LedgerStore, ListingProgress};
use shared::job::model::{BatchNo, Job, JobId};
use shared::port::Adapters;

/// The default servers: s3s-fs, moto (SQS), dynalite.
pub fn default_servers() -> &'static LocalAws {
    static SERVERS: OnceLock<LocalAws> = OnceLock::new();
    SERVERS.get_or_init(|| {
        LocalAws::start(ServerChoice::default()).expect("starting the default local servers")
    })
}

/// moto for everything: the reference for DynamoDB and S3 behaviour.
pub fn moto_servers() -> &'static LocalAws {
    static SERVERS: OnceLock<LocalAws> = OnceLock::new();
    SERVERS.get_or_init(|| {
        LocalAws::start(ServerChoice {
            s3: Server::Moto,
            dynamodb: Server::Moto,
        })
        .expect("starting moto")
    })
}

/// A test's own bucket, queues and tables on the given servers.
pub struct TestEnv {
    pub clients: Clients,
    pub resources: Resources,
    pub provisioned: Provisioned,
}

impl TestEnv {
    /// A worker on the local servers: every port by its AWS adapter.
    pub fn worker(&self, config: WorkerConfig) -> Worker {
        Worker::new(Adapters::aws(&self.clients, &config.tables.jobs), config)
    }

    /// A coordinator on the local servers: every port by its AWS adapter.
    pub fn coordinator(&self, config: CoordinatorConfig) -> Coordinator {
        Coordinator::new(Adapters::aws(&self.clients, &config.tables.jobs), config)
    }

    /// Fresh resources named after the test. Queue messages reappear after 2 s and move to
    /// the dead-letter queue on their third receive, so redelivery tests run quickly.
    pub async fn new(servers: &LocalAws, test: &str) -> Self {
        let settings = QueueSettings {
            visibility_timeout: Duration::from_secs(2),
            max_receive_count: 3,
        };
        Self::with_queues(servers, test, settings).await
    }

    /// Fresh resources for a test of loading, not of redelivery: messages reappear after
    /// 30 s, so a batch slowed by a loaded machine is not received again (and, on its third
    /// receive, dead-lettered and counted failed) while its first delivery still runs.
    pub async fn unhurried(servers: &LocalAws, test: &str) -> Self {
        let settings = QueueSettings {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: 3,
        };
        Self::with_queues(servers, test, settings).await
    }

    /// Fresh resources named after the test, with the given queue settings.
    pub async fn with_queues(servers: &LocalAws, test: &str, settings: QueueSettings) -> Self {
        let stem = format!("t-{}-{:08x}", test.replace('_', "-"), fastrand_u32());
        let clients = servers.clients();
        let resources = Resources::named(&stem);
        let provisioned = provision::ensure(&clients, &resources, settings)
            .await
            .expect("provisioning test resources");
        Self {
            clients,
            resources,
            provisioned,
        }
    }

    pub fn pipeline(&self) -> LocalPipeline {
        let mut pipeline =
            LocalPipeline::new(self.clients.clone(), &self.resources, &self.provisioned);
        pipeline.timeout = Duration::from_secs(120);
        pipeline
    }

    /// Number of items in the records table (a paginated COUNT scan).
    pub async fn record_count(&self) -> u64 {
        self.count_items(&self.resources.tables.records).await
    }

    /// Number of items in `table` (a paginated COUNT scan).
    pub async fn count_items(&self, table: &str) -> u64 {
        let mut count = 0;
        let mut start: Option<std::collections::HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .clients
                .dynamodb
                .scan()
                .table_name(table)
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .expect("scanning records");
            count += page.count as u64;
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return count,
            }
        }
    }

    /// Every stored reading of one measure point, in timestamp order.
    pub async fn readings_of(&self, measure_point: &str) -> Vec<SensorReading> {
        let items = self
            .clients
            .dynamodb
            .query()
            .table_name(&self.resources.tables.records)
            .key_condition_expression("measure_point = :p")
            .expression_attribute_values(":p", AttributeValue::S(measure_point.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("querying records")
            .items
            .unwrap_or_default();
        serde_dynamo::from_items(items).expect("records deserialize as readings")
    }

    /// One item of the records table by its key.
    pub async fn item(
        &self,
        measure_point: &str,
        timestamp: &str,
    ) -> std::collections::HashMap<String, AttributeValue> {
        self.clients
            .dynamodb
            .get_item()
            .table_name(&self.resources.tables.records)
            .key("measure_point", AttributeValue::S(measure_point.to_owned()))
            .key("timestamp", AttributeValue::S(timestamp.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("reading a record")
            .item
            .unwrap_or_else(|| panic!("no record ({measure_point}, {timestamp})"))
    }

    /// Asserts each (id, note) is stored in `table` (keyed by `id`) byte for byte.
    pub async fn assert_notes<'a>(
        &self,
        table: &str,
        rows: impl IntoIterator<Item = &'a (String, String)>,
    ) {
        for (id, note) in rows {
            let item = self
                .clients
                .dynamodb
                .get_item()
                .table_name(table)
                .key("id", AttributeValue::S(id.clone()))
                .consistent_read(true)
                .send()
                .await
                .expect("reading a row")
                .item
                .unwrap_or_else(|| panic!("no row {id}"));
            assert_eq!(
                item.get("note"),
                Some(&AttributeValue::S(note.clone())),
                "{id}"
            );
        }
    }

    /// The job ledger of this test's jobs table.
    pub fn ledger(&self) -> DynamoLedger {
        DynamoLedger::new(self.clients.dynamodb.clone(), &self.resources.tables.jobs)
    }

    /// A job over this test's bucket, created and sealed with `batches` batches still to do.
    pub async fn sealed_job(
        &self,
        job_id: &(impl AsRef<str> + ?Sized),
        batches: u64,
        files: u64,
    ) -> Job {
        let ledger = self.ledger();
        let mut job = Job::new(job_id.as_ref(), &self.resources.bucket, "");
        // Where `batch` sends the rejects, as the coordinator would name it.
        job.rejects_report = Some(self.report().job_uri(&job.job_id));
        ledger.create(&job).await.expect("creating the job");
        let finished = ledger
            .seal(
                &JobId::new(job_id.as_ref()),
                ListingProgress {
                    batches,
                    files_listed: files,
                    files_skipped: 0,
                    planning_bytes_read: 0,
                },
                None,
            )
            .await
            .expect("sealing the job");
        assert!(finished.is_none(), "{batches} batches are still to do");
        job
    }

    /// Where this test's rejects reports go: `_rejects/` in its bucket.
    pub fn report(&self) -> ReportLocation {
        ReportLocation {
            bucket: self.resources.bucket.clone(),
            prefix: "_rejects/".into(),
        }
    }

    /// A batch message of this test's bucket, default schema, rejects under `_rejects/`.
    pub fn batch(
        &self,
        job_id: &(impl AsRef<str> + ?Sized),
        batch: u64,
        keys: Vec<String>,
    ) -> BatchMessage {
        BatchMessage {
            job_id: JobId::new(job_id.as_ref()),
            batch: BatchNo(batch),
            bucket: self.resources.bucket.clone(),
            work: Work::Objects { keys },
            schema: None,
            format: None,
            table: None,
            report: self.report(),
            write: Default::default(),
            resumed: None,
        }
    }

    /// Every message waiting in `queue_url`, parsed as JSON and deleted (until a receive
    /// comes back empty).
    pub async fn drain<T: serde::de::DeserializeOwned>(&self, queue_url: &str) -> Vec<T> {
        let mut found = Vec::new();
        loop {
            let received = self
                .clients
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receiving from a test queue");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return found;
            }
            for message in messages {
                let body = message.body().unwrap_or_default();
                found.push(serde_json::from_str(body).expect("a JSON message"));
                self.clients
                    .sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("deleting a received message");
            }
        }
    }

    /// Sends one message to this test's work queue.
    pub async fn send(&self, body: String) {
        self.clients
            .sqs
            .send_message()
            .queue_url(&self.provisioned.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("sending a test message");
    }

    /// Delivers queued batches to `worker` through the SQS bridge until the job is final
    /// (panics after 90 s).
    pub async fn deliver_until_final(
        &self,
        worker: &Worker,
        job_id: &(impl AsRef<str> + ?Sized),
    ) -> Job {
        self.deliver(worker, None, job_id.as_ref()).await
    }

    /// As [`Self::deliver_until_final`], to any function the bridge can invoke (e.g. a
    /// worker given a short deadline).
    pub async fn deliver_to_until_final(&self, invoker: &impl Invoke, job_id: &str) -> Job {
        self.deliver(invoker, None, job_id).await
    }

    /// As [`Self::deliver_until_final`], with `coordinator` handling the control queue too
    /// (a split object's scans are composed there).
    pub async fn deliver_with_control_until_final(
        &self,
        worker: &Worker,
        coordinator: &shared::app::coordinator::Coordinator,
        job_id: &(impl AsRef<str> + ?Sized),
    ) -> Job {
        self.deliver(worker, Some(coordinator), job_id.as_ref())
            .await
    }

    async fn deliver(
        &self,
        worker: &impl Invoke,
        coordinator: Option<&shared::app::coordinator::Coordinator>,
        job_id: &str,
    ) -> Job {
        let bridge = SqsBridge::new(
            &self.clients.sqs,
            &self.provisioned.queue_url,
            &self.provisioned.queue_arn,
            worker,
        );
        let control = coordinator.map(|coordinator| devkit::bridge::ControlInvoker {
            coordinator,
            budget: None,
        });
        let control_bridge = control.as_ref().map(|control| {
            SqsBridge::new(
                &self.clients.sqs,
                &self.provisioned.control_queue_url,
                &self.provisioned.control_queue_arn,
                control,
            )
        });
        let ledger = self.ledger();
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while std::time::Instant::now() < deadline {
            let job = ledger
                .get(&JobId::new(job_id))
                .await
                .expect("reading the job")
                .expect("the job exists");
            if job.status.is_final() {
                return job;
            }
            bridge.poll_once().await.expect("polling the queue");
            if let Some(control_bridge) = &control_bridge {
                control_bridge
                    .poll_once()
                    .await
                    .expect("polling the control queue");
            }
        }
        panic!("job {job_id} was not final after 90 s");
    }

    /// Every record of a job's rejects reports (under the source bucket, as by default), by
    /// object key, then line.
    pub async fn reject_records(&self, job: &Job) -> Vec<RejectRecord> {
        let uri = job
            .rejects_report
            .clone()
            .expect("the job names its report location");
        let prefix = uri
            .strip_prefix(&format!("s3://{}/", self.resources.bucket))
            .expect("reports go to the source bucket by default")
            .to_owned();
        let listed = self
            .clients
            .s3
            .list_objects_v2()
            .bucket(&self.resources.bucket)
            .prefix(&prefix)
            .send()
            .await
            .expect("listing the rejects reports");
        let mut records = Vec::new();
        // Reports only: split objects keep their scans under the same prefix.
        let reports = (listed.contents.unwrap_or_default().into_iter())
            .filter_map(|object| object.key)
            .filter(|key| key.contains("/batch-") && key.ends_with(".jsonl"));
        for key in reports {
            let text = self.get(&key).await;
            records.extend(
                text.lines().map(|line| {
                    serde_json::from_str::<RejectRecord>(line).expect("a reject record")
                }),
            );
        }
        records.sort_by(|a, b| (&a.key, a.line).cmp(&(&b.key, b.line)));
        records
    }

    /// The text of an object of this test's bucket.
    pub async fn get(&self, key: &str) -> String {
        let body = self
            .clients
            .s3
            .get_object()
            .bucket(&self.resources.bucket)
            .key(key)
            .send()
            .await
            .expect("reading a test object")
            .body
            .collect()
            .await
            .expect("reading a test object's body")
            .into_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }

    pub async fn put(&self, key: &str, body: &str) {
        self.put_bytes(key, body.as_bytes().to_vec()).await;
    }

    pub async fn put_bytes(&self, key: &str, body: Vec<u8>) {
        self.clients
            .s3
            .put_object()
            .bucket(&self.resources.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .expect("uploading a test object");
    }
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now()) as u32
}

/// About `target` bytes of CSV (`id,note`, CRLF rows) and the (id, note) of every row. When
/// `quoted`, three notes in four are quoted: commas, doubled quotes, CRLF and LF inside, some
/// longer than a 64 KiB range; otherwise every note is plain. Plain notes run from 0 to 2,000
/// bytes (rows of ~1 KB on average, so a 32 MiB file is ~32,000 rows, not a million).
pub fn notes_csv(id_prefix: &str, target: usize, quoted: bool) -> (String, Vec<(String, String)>) {
    let mut body = String::from("id,note\r\n");
    let mut rows = Vec::new();
    let mut i = 0;
    while body.len() < target {
        let note = match (quoted, i % 4) {
            (true, 0) => format!("{i}: first, \"quoted\"\nsecond line\r\nthird"),
            (true, 2) => format!(
                "{}end {i}",
                "long line, with a comma\n".repeat(i * 97 % 3000)
            ),
            (true, 3) => format!("\"\"{i}\"\""),
            _ => format!("plain {i} {}", "-".repeat(i * 37 % 2000)),
        };
        let field = if note.contains([',', '"', '\n']) {
            format!("\"{}\"", note.replace('"', "\"\""))
        } else {
            note.clone()
        };
        let id = format!("{id_prefix}-{i:06}");
        body.push_str(&format!("{id},{field}\r\n"));
        rows.push((id, note));
        i += 1;
    }
    (body, rows)
}
