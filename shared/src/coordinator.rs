//! Starting jobs. Prefix mode: list a prefix page by page, batch the CSV keys, enqueue each
//! batch as soon as it fills. Single-object mode: a plain CSV above the chunk size becomes
//! one batch per byte range, anything else one batch. Then the job's total is sealed. The job
//! item exists (RUNNING, unsealed) before the first message is sent, and completion can only
//! fire once the total is sealed, so no worker can finish a job that is still being planned.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use tokio::time::Instant;

use thiserror::Error;

use crate::aws::Clients;
use crate::batching::{KeyBatcher, is_csv_key};
use crate::completion::{Announcer, Claim, CompletionError};
use crate::config::CoordinatorConfig;
use crate::jobs::{Job, JobError, JobLedger, ListingCheckpoint};
use crate::large_object::{ObjectPlan, PlanError, plan_object};
use crate::listing::{ListError, PrefixLister};
use crate::message::{BatchMessage, ContinueListing, JobRequest};
use crate::metrics::{self, MetricsSink, StdoutSink};
use crate::queue::{Entry, QueueError, QueueWriter, SqsSender};
use crate::ranges::RangeTask;
use crate::rejects::{RejectTolerance, ReportLocation};
use crate::schema::SchemaError;
use crate::trigger::{Triggered, jobs_from_event};

#[derive(Debug, Error)]
pub enum CoordinatorError {
    #[error("the request is invalid: {0}")]
    InvalidRequest(String),
    #[error("the request's schema is invalid: {0}")]
    InvalidSchema(#[from] SchemaError),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Completion(#[from] CompletionError),
    #[error("waking the next invocation of job {job_id}'s listing failed")]
    Wake {
        job_id: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What the coordinator did; returned to the invoker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobStarted {
    pub job_id: String,
    /// The total once sealed; while the listing continues, the batches enqueued so far.
    pub total_batches: u64,
    pub files_listed: u64,
    pub files_skipped: u64,
    /// The listing paused before the deadline and continues in another invocation.
    pub continues: bool,
    /// Set when the job was already finished at sealing (e.g. an empty prefix, or workers
    /// that outran the listing).
    pub finished: Option<Job>,
}

/// What one S3 notification record led to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TriggerOutcome {
    Started(Box<JobStarted>),
    AlreadyStarted { job_id: String },
    Ignored { key: String, reason: String },
}

/// What the stuck-job check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StuckJobs {
    pub older_than_seconds: u64,
    /// Oldest first.
    pub job_ids: Vec<String>,
    /// Listings whose invocation died (no progress for longer than an invocation lives),
    /// woken again by this check.
    pub listings_resumed: Vec<String>,
    /// Finished jobs whose completion event a crash had left unsent, sent by this check.
    pub events_sent: Vec<String>,
}

/// No invocation lives longer than Lambda's 15 minutes: a listing without a start or a
/// checkpoint for longer than this has lost its invocation.
pub const LISTING_STALLED_AFTER: Duration = Duration::from_secs(16 * 60);

pub struct Coordinator {
    clients: Clients,
    ledger: JobLedger,
    announcer: Announcer,
    config: CoordinatorConfig,
    metrics: Arc<dyn MetricsSink>,
}

/// Counts from a listing (over every invocation so far).
struct Enqueued {
    batches: u64,
    listed: u64,
    skipped: u64,
}

/// How an invocation's share of the listing ended.
enum Listed {
    /// The listing is complete: the job can be sealed.
    Done(Enqueued),
    /// Checkpointed before the deadline; another invocation continues.
    Paused(Enqueued),
}

impl Coordinator {
    pub fn new(clients: Clients, config: CoordinatorConfig) -> Self {
        let ledger = JobLedger::new(clients.dynamodb.clone(), &config.tables.jobs);
        let announcer = Announcer::new(
            clients.sqs.clone(),
            config.completion_queue_url.clone(),
            ledger.clone(),
        );
        Self {
            clients,
            ledger,
            announcer,
            config,
            metrics: Arc::new(StdoutSink),
        }
    }

    /// Sends metric records to `sink` instead of stdout.
    pub fn with_metrics(mut self, sink: Arc<dyn MetricsSink>) -> Self {
        self.metrics = sink;
        self
    }

    /// An S3 notification: each record that names a marker (or, in object mode, a `.csv`)
    /// starts its job. A redelivered notification finds its job already created and starts
    /// nothing. Fails after trying every record if any failed, so S3's retry of the whole
    /// event redoes only what did not happen.
    pub async fn handle_s3_event(
        &self,
        event: &aws_lambda_events::event::s3::S3Event,
        deadline: Option<Instant>,
    ) -> Result<Vec<TriggerOutcome>, CoordinatorError> {
        let mut outcomes = Vec::new();
        let mut first_error = None;
        for triggered in jobs_from_event(event, &self.config.trigger) {
            let outcome = match triggered {
                Triggered::Ignore { key, reason } => {
                    tracing::info!(%key, %reason, "S3 notification ignored");
                    TriggerOutcome::Ignored { key, reason }
                }
                Triggered::Start(request) => match self.start_job(request, deadline).await {
                    Ok(started) => TriggerOutcome::Started(Box::new(started)),
                    Err(CoordinatorError::Job(JobError::AlreadyExists(job_id))) => {
                        tracing::info!(%job_id, "duplicate S3 notification: job already started");
                        TriggerOutcome::AlreadyStarted { job_id }
                    }
                    Err(error) => {
                        tracing::error!(error = %crate::report(&error), "starting a job from S3 failed");
                        first_error.get_or_insert(error);
                        continue;
                    }
                },
            };
            outcomes.push(outcome);
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(outcomes),
        }
    }

    /// The scheduled check behind the stuck-job alarm: counts jobs RUNNING for longer than
    /// the threshold and emits `StuckJobs` (0 included, so the alarm always has data).
    pub async fn check_stuck_jobs(
        &self,
        older_than: Duration,
    ) -> Result<StuckJobs, CoordinatorError> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let running = self.ledger.running_jobs().await?;
        let mut stuck: Vec<&Job> = running
            .iter()
            .filter(|job| now_ms.saturating_sub(job.started_ms) > older_than.as_millis() as u64)
            .collect();
        stuck.sort_by_key(|job| job.started_ms);
        let report = StuckJobs {
            older_than_seconds: older_than.as_secs(),
            job_ids: stuck.iter().map(|job| job.job_id.clone()).collect(),
            listings_resumed: self.resume_stalled_listings(&running, now_ms).await,
            events_sent: self.send_owed_events().await,
        };
        if !report.job_ids.is_empty() {
            tracing::warn!(stuck = report.job_ids.len(), oldest = %report.job_ids[0], "jobs stuck RUNNING");
        }
        self.metrics.emit(metrics::stuck_jobs(
            report.job_ids.len(),
            report.job_ids.first().map(String::as_str),
            report.older_than_seconds,
        ));
        Ok(report)
    }

    /// Wakes the listings whose invocation died: unsealed, with no start or checkpoint for
    /// longer than any invocation lives. The woken invocation resumes from the checkpoint (or
    /// the start); should the old one still run, the ledger lets only one go on.
    async fn resume_stalled_listings(&self, running: &[Job], now_ms: u64) -> Vec<String> {
        if self.config.control_queue_url.is_none() {
            return Vec::new();
        }
        let mut resumed = Vec::new();
        for job in running.iter().filter(|job| {
            !job.sealed && job.listing_idle_ms(now_ms) > LISTING_STALLED_AFTER.as_millis() as u64
        }) {
            match self.wake(&job.job_id, job.listing_invocation).await {
                Ok(()) => {
                    tracing::warn!(job_id = %job.job_id, invocation = job.listing_invocation, "a listing's invocation died; woken again");
                    resumed.push(job.job_id.clone());
                }
                Err(error) => {
                    tracing::error!(job_id = %job.job_id, error = %crate::report(&error), "could not wake a stalled listing")
                }
            }
        }
        resumed
    }

    /// Sends the completion events still owed after a crash (a job's own finisher holds a
    /// claim for a minute, so this does not race it). Failures are logged, not returned:
    /// they must not keep the stuck-job metric from being emitted.
    async fn send_owed_events(&self) -> Vec<String> {
        let owed = match self.ledger.jobs_owing_an_event().await {
            Ok(owed) => owed,
            Err(error) => {
                tracing::error!(error = %crate::report(&error), "could not look for owed completion events");
                return Vec::new();
            }
        };
        let mut sent = Vec::new();
        for job_id in owed {
            let result = async {
                let Some(job) = self.ledger.get(&job_id).await? else {
                    return Ok(false);
                };
                self.announcer.announce(&job, Claim::Needed).await?;
                let job = self.ledger.get(&job_id).await?;
                Ok::<_, CoordinatorError>(job.is_some_and(|j| !j.event_pending))
            };
            match result.await {
                Ok(true) => {
                    tracing::warn!(%job_id, "a completion event owed after a crash was sent");
                    sent.push(job_id);
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%job_id, error = %crate::report(&error), "could not send an owed completion event")
                }
            }
        }
        sent
    }

    /// Starts a job. With a `deadline` (the invocation's, from `Context`) and a control
    /// queue, a listing that would outrun it checkpoints and continues in new invocations.
    pub async fn start_job(
        &self,
        request: JobRequest,
        deadline: Option<Instant>,
    ) -> Result<JobStarted, CoordinatorError> {
        validate(&request, &self.config.allowed_buckets)?;
        let job_id = request
            .job_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let report = self.report_location(&request);
        // This run owns the listing until it seals it or hands it over at a checkpoint.
        let run = uuid::Uuid::now_v7().to_string();
        let mut job = Job::new(&job_id, &request.bucket, &request.prefix);
        job.listing_owner = Some(run.clone());
        job.listing_updated_ms = job.started_ms;
        job.key = request.key.clone();
        job.schema = request.schema.clone();
        job.tolerated_rejects = request.tolerated_rejects;
        job.rejects_report = Some(report.job_uri(&job_id));
        self.ledger.create(&job).await?;
        tracing::info!(%job_id, bucket = %request.bucket, prefix = %request.prefix, "job created");

        let planned = self
            .enqueue(&job_id, &request, &report, None, &run, deadline)
            .await;
        let listed = match planned {
            Ok(listed) => listed,
            Err(error @ CoordinatorError::Wake { .. }) => {
                // Checkpointed, but the next invocation was not woken: the stuck-job check
                // wakes it once the listing has been idle for longer than an invocation.
                tracing::error!(%job_id, error = %crate::report(&error), "listing paused but not woken; the stuck-job check resumes it");
                return Err(error);
            }
            Err(error) => {
                // A job that can never be sealed must not sit RUNNING forever.
                self.fail_job(&job_id, &crate::report(&error)).await;
                return Err(error);
            }
        };
        self.conclude(&job_id, listed, &run).await
    }

    /// One control-queue message: resumes a paused listing from the job's checkpoint.
    /// Failures are returned, not recorded: SQS redelivers the message, and resuming from
    /// the same checkpoint again enqueues the same batches under the same numbers, which
    /// workers count once.
    pub async fn continue_listing(
        &self,
        message: &ContinueListing,
        deadline: Option<Instant>,
    ) -> Result<Option<JobStarted>, CoordinatorError> {
        let job_id = &message.job_id;
        let Some(job) = self.ledger.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()).into());
        };
        if job.sealed || job.status.is_final() {
            tracing::info!(%job_id, "nothing to continue: the listing has ended");
            return Ok(None);
        }
        let checkpoint = job.listing_position();
        if checkpoint.invocation != message.invocation {
            // A later invocation is checkpointed, but a crash may have come between that
            // and its wake-up: wake it again (a duplicate wake-up is harmless).
            if checkpoint.invocation > message.invocation {
                self.wake(job_id, checkpoint.invocation).await?;
            }
            return Ok(None);
        }
        // Only one run of a step may enqueue: a duplicate wake-up finds the step taken.
        let run = uuid::Uuid::now_v7().to_string();
        if !self
            .ledger
            .claim_listing(job_id, message.invocation, &run, LISTING_STALLED_AFTER)
            .await?
        {
            tracing::info!(%job_id, invocation = message.invocation, "another run owns this listing step");
            return Ok(None);
        }
        tracing::info!(%job_id, invocation = checkpoint.invocation, batches = checkpoint.next_batch, "listing continues");
        let result = self
            .continue_claimed(&job, checkpoint, &run, deadline)
            .await;
        if result.is_err()
            && let Err(release) = self.ledger.release_listing(job_id, &run).await
        {
            tracing::warn!(%job_id, error = %crate::report(&release), "could not release the listing step; it frees itself when stale");
        }
        result
    }

    /// The claimed step of a continuing listing: plan the object again, or list on.
    async fn continue_claimed(
        &self,
        job: &Job,
        checkpoint: ListingCheckpoint,
        run: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<JobStarted>, CoordinatorError> {
        let job_id = &job.job_id;
        let request = JobRequest {
            job_id: Some(job_id.clone()),
            key: job.key.clone(),
            schema: job.schema.clone(),
            tolerated_rejects: job.tolerated_rejects,
            ..JobRequest::new(&job.bucket, &job.prefix)
        };
        let report = self.report_location(&request);
        // A single-object job whose first invocation died is planned again (same batches).
        let listed = self
            .enqueue(job_id, &request, &report, Some(checkpoint), run, deadline)
            .await?;
        match self.conclude(job_id, listed, run).await {
            Ok(started) => Ok(Some(started)),
            // This run's claim went stale and another run took the step over.
            Err(CoordinatorError::Job(JobError::AlreadySealed(_) | JobError::NotOwner(_))) => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The control queue's SQS event: each message continues one listing; failed ones are
    /// reported for redelivery.
    pub async fn handle_control_event(
        &self,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in event.records {
            let id = message.message_id.clone().unwrap_or_default();
            let body = message.body.as_deref().unwrap_or_default();
            let continuation = match serde_json::from_str::<ContinueListing>(body) {
                Ok(continuation) => continuation,
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "not a ContinueListing message; left for the dead-letter queue");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                    continue;
                }
            };
            let result = self
                .continue_listing(&continuation, deadline)
                .await
                .map_err(|e| crate::report(&e));
            let receives: u32 = message
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            if let Err(reason) = &result
                && receives >= self.config.control_max_receive_count
            {
                // The listing fails for good: end the job instead of waking it forever.
                self.fail_job(&continuation.job_id, reason).await;
                continue;
            }
            if let Err(reason) = result {
                tracing::error!(message_id = %id, %reason, "continuing a listing failed; left for redelivery");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Seals a finished listing (which may finish the job), or reports a paused one.
    async fn conclude(
        &self,
        job_id: &str,
        listed: Listed,
        owner: &str,
    ) -> Result<JobStarted, CoordinatorError> {
        let (enqueued, continues) = match listed {
            Listed::Paused(enqueued) => (enqueued, true),
            Listed::Done(enqueued) => (enqueued, false),
        };
        let mut started = JobStarted {
            job_id: job_id.to_owned(),
            total_batches: enqueued.batches,
            files_listed: enqueued.listed,
            files_skipped: enqueued.skipped,
            continues,
            finished: None,
        };
        if continues {
            return Ok(started);
        }
        started.finished = self
            .ledger
            .seal(
                job_id,
                enqueued.batches,
                enqueued.listed,
                enqueued.skipped,
                Some(owner),
            )
            .await?;
        if let Some(job) = &started.finished {
            self.metrics.emit(metrics::job_finished("coordinator", job));
            self.announcer.announce(job, Claim::Held).await?;
        }
        tracing::info!(%job_id, batches = enqueued.batches, files = enqueued.listed - enqueued.skipped, skipped = enqueued.skipped, "job sealed");
        Ok(started)
    }

    /// Marks a job FAILED for a reason that no retry can fix; failures to do so are logged.
    async fn fail_job(&self, job_id: &str, reason: &str) {
        tracing::error!(%job_id, %reason, "listing failed for good; job FAILED");
        match self.ledger.fail(job_id, reason).await {
            Ok(Some(job)) => {
                self.metrics
                    .emit(metrics::job_finished("coordinator", &job));
                if let Err(e) = self.announcer.announce(&job, Claim::Held).await {
                    tracing::error!(%job_id, error = %crate::report(&e), "could not send the completion event; the stuck-job check retries it");
                }
            }
            Ok(None) => {}
            Err(fail_error) => {
                tracing::error!(%job_id, error = %crate::report(&fail_error), "could not mark job FAILED")
            }
        }
    }

    fn report_location(&self, request: &JobRequest) -> ReportLocation {
        ReportLocation {
            bucket: (self.config.rejects_bucket.clone()).unwrap_or_else(|| request.bucket.clone()),
            prefix: self.config.rejects_prefix.clone(),
        }
    }

    /// Whether the listing must pause now to checkpoint before the deadline.
    fn must_pause(&self, deadline: Option<Instant>) -> bool {
        self.config.control_queue_url.is_some()
            && deadline.is_some_and(|deadline| {
                deadline.saturating_duration_since(Instant::now()) < self.config.checkpoint_margin
            })
    }

    /// Wakes invocation `invocation` of a paused listing through the control queue.
    async fn wake(&self, job_id: &str, invocation: u32) -> Result<(), CoordinatorError> {
        let Some(queue_url) = &self.config.control_queue_url else {
            return Ok(());
        };
        let body = serde_json::to_string(&ContinueListing {
            job_id: job_id.to_owned(),
            invocation,
        })
        .expect("a string and a number serialize");
        self.clients
            .sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| CoordinatorError::Wake {
                job_id: job_id.to_owned(),
                source: e.into(),
            })?;
        Ok(())
    }

    fn queue(&self) -> QueueWriter<SqsSender> {
        QueueWriter::new(SqsSender {
            client: self.clients.sqs.clone(),
            queue_url: self.config.queue_url.clone(),
        })
    }

    /// Enqueues a job's batches: one object's, or a prefix listing's (from `resume`).
    async fn enqueue(
        &self,
        job_id: &str,
        request: &JobRequest,
        report: &ReportLocation,
        resume: Option<ListingCheckpoint>,
        owner: &str,
        deadline: Option<Instant>,
    ) -> Result<Listed, CoordinatorError> {
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
        job_id: &str,
        request: &JobRequest,
        report: &ReportLocation,
        resume: Option<ListingCheckpoint>,
        owner: &str,
        deadline: Option<Instant>,
    ) -> Result<Listed, CoordinatorError> {
        let mut lister = PrefixLister::new(
            self.clients.s3.clone(),
            &request.bucket,
            &request.prefix,
            self.config.list_page_size,
        );
        let mut batcher = KeyBatcher::new(self.config.batch_size);
        let (mut listed, mut skipped, mut invocation) = (0, 0, 0);
        if let Some(checkpoint) = resume {
            if let Some(cursor) = checkpoint.cursor {
                lister = lister.resume(cursor);
            }
            batcher = KeyBatcher::starting_at(self.config.batch_size, checkpoint.next_batch);
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
                job_id,
                batch,
                keys = keys.len(),
                first_key = keys.first().map(String::as_str).unwrap_or_default(),
                last_key = keys.last().map(String::as_str).unwrap_or_default(),
                "batch enqueued"
            );
            batch_entry(job_id, request, report, batch, keys, None)
        };
        while let Some(page) = lister.next_page().await? {
            for object in page {
                listed += 1;
                if !is_csv_key(&object.key) {
                    skipped += 1;
                    continue;
                }
                if let Some(full) = batcher.push(object.key) {
                    queue.push(message(full)).await?;
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
                        job_id,
                        next_invocation = checkpoint.invocation,
                        batches = checkpoint.next_batch,
                        "listing paused before the deadline"
                    );
                } else {
                    tracing::info!(job_id, "this run no longer owns the listing; stopping");
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
        job_id: &str,
        request: &JobRequest,
        key: &str,
        report: &ReportLocation,
    ) -> Result<Enqueued, CoordinatorError> {
        if !is_csv_key(key) {
            return Ok(Enqueued {
                batches: 0,
                listed: 1,
                skipped: 1,
            });
        }
        let schema = request.schema.clone().unwrap_or_default();
        let chunk = self.config.range_chunk_bytes;
        let plan = plan_object(&self.clients.s3, &request.bucket, key, &schema, chunk).await?;
        let mut queue = self.queue();
        let batches = match plan {
            ObjectPlan::Whole => {
                tracing::info!(job_id, batch = 0, key, "batch enqueued");
                let entry = batch_entry(job_id, request, report, 0, vec![key.to_owned()], None);
                queue.push(entry).await?;
                1
            }
            ObjectPlan::Ranges(ranges) => {
                let count = ranges.len() as u64;
                tracing::info!(
                    job_id,
                    key,
                    ranges = count,
                    chunk_bytes = chunk,
                    "large object split into ranges"
                );
                for (batch, range) in (0..).zip(ranges) {
                    let entry = batch_entry(job_id, request, report, batch, vec![], Some(range));
                    queue.push(entry).await?;
                }
                count
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

/// The SQS entry of one batch.
fn batch_entry(
    job_id: &str,
    request: &JobRequest,
    report: &ReportLocation,
    batch: u64,
    keys: Vec<String>,
    range: Option<RangeTask>,
) -> Entry {
    Entry {
        id: batch.to_string(),
        body: BatchMessage {
            job_id: job_id.to_owned(),
            batch,
            bucket: request.bucket.clone(),
            keys,
            range,
            schema: request.schema.clone(),
            report: report.clone(),
        }
        .to_json(),
    }
}

/// Everything checkable before any work starts. `allowed_buckets` (empty: any) keeps a
/// manual invoke from pointing the coordinator at a bucket it should not read.
fn validate(request: &JobRequest, allowed_buckets: &[String]) -> Result<(), CoordinatorError> {
    if request.bucket.trim().is_empty() {
        return Err(CoordinatorError::InvalidRequest("bucket is empty".into()));
    }
    if !allowed_buckets.is_empty() && !allowed_buckets.contains(&request.bucket) {
        return Err(CoordinatorError::InvalidRequest(format!(
            "bucket {:?} is not in ALLOWED_BUCKETS",
            request.bucket
        )));
    }
    if let Some(schema) = &request.schema {
        schema.validate()?;
    }
    match request.tolerated_rejects {
        Some(RejectTolerance::Percent(p)) if !(0.0..=100.0).contains(&p) => {
            Err(CoordinatorError::InvalidRequest(format!(
                "tolerated_rejects percent {p} is not within 0..=100"
            )))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    #[test]
    fn requests_are_checked_before_any_work() {
        let ok = JobRequest::new("b", "p/");
        assert!(validate(&ok, &[]).is_ok());
        let mut empty = ok.clone();
        empty.bucket = " ".into();
        assert!(matches!(
            validate(&empty, &[]),
            Err(CoordinatorError::InvalidRequest(_))
        ));
        let mut bad_schema = ok.clone();
        bad_schema.schema = Some(Schema {
            partition_key: vec![],
            ..Schema::sensor()
        });
        let err = validate(&bad_schema, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the request's schema is invalid: schema has no partition key columns"
        );
        let allowed = ["in-bucket".to_owned()];
        assert!(validate(&JobRequest::new("in-bucket", ""), &allowed).is_ok());
        let elsewhere = validate(&ok, &allowed).unwrap_err();
        assert!(
            elsewhere.to_string().contains("not in ALLOWED_BUCKETS"),
            "{elsewhere}"
        );
        let mut bad_percent = ok;
        bad_percent.tolerated_rejects = Some(RejectTolerance::Percent(120.0));
        assert!(
            validate(&bad_percent, &[])
                .unwrap_err()
                .to_string()
                .contains("120")
        );
    }
}
