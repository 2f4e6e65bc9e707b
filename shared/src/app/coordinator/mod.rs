//! Starting jobs. Prefix mode: list a prefix page by page, batch the CSV keys, enqueue each
//! batch as soon as it fills. Single-object mode: a plain CSV above the chunk size becomes
//! one batch per byte range, anything else one batch. Then the job's total is sealed. The job
//! item exists (RUNNING, unsealed) before the first message is sent, and completion can only
//! fire once the total is sealed, so no worker can finish a job that is still being planned.

mod compose;
mod control;
pub mod dead_letters;
mod enqueue;
mod export;
mod inventory;
mod listing;
mod object_plan;
mod parquet_plan;
mod stuck;
mod stuck_compose;
mod table_check;
mod triggered;
pub use stuck::KILL_GRACE;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use thiserror::Error;
use tokio::time::Instant;

pub use compose::Composed;
pub use export::{PhaseStep, StoredChain, chain_key};
pub use listing::PrefixLister;
pub use object_plan::{ObjectPlan, PlanError, plan_object};

use crate::app::completion::{Announcer, Claim, CompletionError};
use crate::app::config::CoordinatorConfig;
use crate::app::metrics::{self, MetricsSink, StdoutSink};
use crate::contract::format::Format;
use crate::contract::ids::{JobId, RunId};
use crate::contract::messages::JobRequest;
use crate::contract::rejects::{RejectTolerance, ReportLocation};
use crate::contract::schema::{Schema, SchemaError};
use crate::fan_in::{JobError, Ledger, LedgerStore, ListingProgress};
use crate::job::model::Job;
use crate::plan::trigger::{Triggered, jobs_from_event};
use crate::port::Adapters;
use crate::port::objects::{ObjectError, ObjectStore};
use crate::port::queue::{QueueError, Queues};
use crate::port::seen_gets::{OnGet, SeenGets};
use crate::port::table::{RecordTable, WriteError};
use enqueue::{JobBatches, ListingStep};

#[derive(Debug, Error)]
pub enum CoordinatorError {
    #[error("the request is invalid: {0}")]
    InvalidRequest(String),
    #[error("the request's schema is invalid: {0}")]
    InvalidSchema(#[from] SchemaError),
    #[error("listing the prefix failed")]
    List(#[source] ObjectError),
    #[error("reading the export's files failed")]
    Export(#[source] ObjectError),
    #[error("reading the records table's key schema and capacity (DescribeTable) failed")]
    Table(#[source] WriteError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Completion(#[from] CompletionError),
    #[error("reading the scans of a split object failed")]
    Scans(#[source] ObjectError),
    #[error("keeping a dead-lettered batch for a redrive failed")]
    DeadLetter(#[source] ObjectError),
    #[error("reading an S3-triggered job's options failed")]
    Options(#[source] ObjectError),
    #[error("reading the job options in {key} failed")]
    OptionsRead {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the stored scan {key} is unreadable")]
    ScanUnreadable {
        key: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the export chain's plan of job {job_id} is not stored")]
    ChainMissing { job_id: JobId },
    #[error("the count of inventory data file {index} of job {job_id} is not stored yet")]
    InventoryCountMissing { job_id: JobId, index: u64 },
    #[error("the scan of range {index} of job {job_id} is counted but not stored yet")]
    ScanMissing { job_id: JobId, index: u64 },
    #[error("waking the next invocation of job {job_id}'s listing failed")]
    Wake {
        job_id: JobId,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What the coordinator did; returned to the invoker.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobStarted {
    pub job_id: JobId,
    /// The total once sealed; while the listing continues, the batches enqueued so far.
    #[serde(flatten)]
    pub listing: ListingProgress,
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
    AlreadyStarted {
        job_id: JobId,
    },
    Ignored {
        key: String,
        reason: String,
    },
    /// A job that cannot work (its options, or its schema against the table): recorded
    /// FAILED with the reason.
    Refused {
        job_id: JobId,
        reason: String,
    },
}

/// What the stuck-job check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StuckJobs {
    pub older_than_seconds: u64,
    /// Oldest first.
    pub job_ids: Vec<JobId>,
    /// Listings whose invocation died (no progress for longer than an invocation lives),
    /// woken again by this check.
    pub listings_resumed: Vec<JobId>,
    /// Finished jobs whose completion event a crash had left unsent, sent by this check.
    pub events_sent: Vec<JobId>,
    /// Batches whose last delivery was killed (its deadline passed with the batch
    /// uncounted), counted as failed by this check.
    pub batches_failed: Vec<(JobId, u64)>,
    /// Jobs one of whose split objects had a scan among those: its compose step was woken.
    pub composes_woken: Vec<JobId>,
    /// Jobs this check ended: every batch counted but the finish lost, or a listing killed
    /// on its last delivery.
    pub jobs_ended: Vec<JobId>,
    /// Export chains whose phase step was lost (a phase counted with the next not started,
    /// or a phase fenced but never sent): the step was run again.
    pub export_phases_resumed: Vec<JobId>,
}

/// No invocation lives longer than Lambda's 15 minutes: a listing without a start or a
/// checkpoint for longer than this has lost its invocation.
pub const LISTING_STALLED_AFTER: Duration = Duration::from_secs(16 * 60);

#[derive(Clone)]
pub struct Coordinator {
    ledger: Arc<dyn LedgerStore>,
    objects: Arc<dyn ObjectStore>,
    queues: Arc<dyn Queues>,
    records: Arc<dyn RecordTable>,
    announcer: Announcer,
    config: CoordinatorConfig,
    metrics: Arc<dyn MetricsSink>,
    /// In a coordinator planning one job step ([`Self::planning_step`]): the bytes S3 has
    /// sent for the job's planning, over every invocation so far.
    planning_reads: Option<Arc<AtomicU64>>,
}

/// How an invocation's share of the listing ended, with its counts over every invocation
/// so far.
enum Listed {
    /// The listing is complete: the job can be sealed.
    Done(ListingProgress),
    /// Checkpointed before the deadline; another invocation continues.
    Paused(ListingProgress),
}

impl Coordinator {
    /// A coordinator whose IO goes through `adapters`.
    pub fn new(adapters: Adapters, config: CoordinatorConfig) -> Self {
        let announcer = Announcer::new(
            adapters.queues.clone(),
            config.completion_queue_url.clone(),
            adapters.ledger.clone(),
        );
        Self {
            ledger: adapters.ledger,
            objects: adapters.objects,
            queues: adapters.queues,
            records: adapters.records,
            announcer,
            config,
            metrics: Arc::new(StdoutSink),
            planning_reads: None,
        }
    }

    /// This coordinator for one step of a job's planning: its GETs count what S3 sends (a
    /// GET's whole body, read or not), from `so_far` (what earlier invocations counted).
    fn planning_step(&self, so_far: u64) -> Coordinator {
        let sent = Arc::new(AtomicU64::new(so_far));
        let counter = sent.clone();
        let on_get: OnGet = Box::new(move |_, bytes| {
            counter.fetch_add(bytes, Ordering::Relaxed);
        });
        let objects = SeenGets::new(self.objects.clone(), on_get);
        Coordinator {
            objects: Arc::new(objects),
            planning_reads: Some(sent),
            ..self.clone()
        }
    }

    /// The bytes S3 has sent for the job's planning, earlier invocations included (0 outside
    /// a planning step).
    fn planning_bytes(&self) -> u64 {
        (self.planning_reads.as_ref()).map_or(0, |sent| sent.load(Ordering::Relaxed))
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
                Triggered::Start(request) => match self.start_triggered(request, deadline).await {
                    Ok(outcome) => outcome,
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

    /// Starts a job. With a `deadline` (the invocation's, from `Context`) and a control
    /// queue, a listing that would outrun it checkpoints and continues in new invocations.
    pub async fn start_job(
        &self,
        request: JobRequest,
        deadline: Option<Instant>,
    ) -> Result<JobStarted, CoordinatorError> {
        (self.planning_step(0).start_planning(request, deadline)).await
    }

    async fn start_planning(
        &self,
        mut request: JobRequest,
        deadline: Option<Instant>,
    ) -> Result<JobStarted, CoordinatorError> {
        validate(&request, &self.config.allowed_buckets)?;
        if request.export.is_some() {
            // An export's data files are DynamoDB JSON, read by the table's key.
            request.format = Some(Format::DynamoDbJson);
        }
        // One DescribeTable a job: the key schema is checked before anything is written, and
        // a cap given as a fraction is resolved from the capacity, once for every worker.
        let table = self
            .config
            .tables
            .target(request.table.as_deref())
            .map_err(CoordinatorError::InvalidRequest)?;
        let description = self
            .records
            .describe(table)
            .await
            .map_err(CoordinatorError::Table)?;
        // A DynamoDB JSON job without a schema reads by the table's key (its items carry it).
        if request.format == Some(Format::DynamoDbJson) && request.schema.is_none() {
            request.schema = Some(table_check::schema_of_table_key(&description.key));
        }
        let schema = request.schema.clone().unwrap_or_else(Schema::sensor);
        table_check::check_keys(table, &schema, request.format, &description.key)
            .map_err(CoordinatorError::InvalidRequest)?;
        let export = match &request.export {
            Some(names) => Some(self.plan_chain(&request.bucket, names, &schema).await?),
            None => None,
        };
        // An inventory's manifest is checked before the job exists; its data files are not
        // read here (that is the point at 10^8 objects).
        let inventory = match &request.inventory.inventory {
            Some(_) => Some(
                self.plan_inventory(&request.bucket, &request.inventory)
                    .await?,
            ),
            None => None,
        };
        if let Some(plan) = &export
            && (plan.is_incremental() || plan.phases.len() > 1)
            && request.write.write_mode != crate::contract::write::WriteMode::Put
        {
            // Its deletions are deletes whatever the mode; insert or update would misread them.
            let keys: Vec<&str> = plan.phases.iter().map(|p| p.summary_key.as_str()).collect();
            return Err(CoordinatorError::InvalidRequest(format!(
                "{} holds an incremental export: it applies in the put write mode only",
                keys.join(", ")
            )));
        }
        let first_phase = export
            .as_ref()
            .map(|plan| plan.stored().next_with_batches(0));
        if let Some(plan) = &export
            && plan.phases.iter().filter(|p| !p.batches.is_empty()).count() > 1
            && self.config.control_queue_url.is_none()
        {
            return Err(CoordinatorError::InvalidRequest(
                "an export chain's later phases are started through the control queue: CONTROL_QUEUE_URL is not set".into(),
            ));
        }
        request.write.write_units_per_second = crate::app::write_cap::resolve(
            &request.write,
            description.capacity,
            self.config.on_demand_write_units as f64,
        );
        if let Some(cap) = request.write.write_units_per_second {
            // Before anything is written: a share too small to write a chunk per invocation.
            let worker = &self.config.worker;
            crate::plan::pacing::check(cap, worker.max_concurrency, worker.part_seconds())
                .map_err(|e| CoordinatorError::InvalidRequest(e.to_string()))?;
        }
        let job_id = request.job_id.clone().unwrap_or_else(JobId::fresh);
        let report = self.report_location(&request);
        // This run owns the listing until it seals it or hands it over at a checkpoint.
        let run = RunId::fresh();
        let mut job = Job::new(&job_id, &request.bucket, &request.prefix);
        job.listing_owner = Some(run.clone());
        job.listing_updated_ms = job.started_ms;
        job.key = request.key.clone();
        job.export = request.export.clone();
        job.export_phase = first_phase.flatten().unwrap_or(0);
        job.inventory = request.inventory.clone();
        job.schema = request.schema.clone();
        job.tolerated_rejects = request.tolerated_rejects;
        job.format = request.format;
        job.table = request.table.clone();
        job.write = request.write.clone();
        job.rejects_report = Some(report.job_uri(&job_id));
        // An export's or inventory's manifests, read above.
        job.planning_bytes_read = self.planning_bytes();
        self.ledger.create(&job).await?;
        tracing::info!(%job_id, bucket = %request.bucket, prefix = %request.prefix, "job created");

        let batches = JobBatches {
            job_id: &job_id,
            request: &request,
            report: &report,
        };
        let planned = match (&export, &inventory) {
            // An export is planned whole before the job exists: one step, never checkpointed.
            (Some(plan), _) => (self.enqueue_export(batches, plan).await).map(Listed::Done),
            // An inventory's count batches; the compose step seals the job.
            (None, Some(plan)) => self.enqueue_inventory_counts(batches, plan).await,
            (None, None) => {
                let step = ListingStep {
                    resume: None,
                    owner: &run,
                    deadline,
                };
                self.enqueue(batches, step).await
            }
        };
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

    /// Seals a finished listing (which may finish the job), or reports a paused one.
    async fn conclude(
        &self,
        job_id: &JobId,
        listed: Listed,
        owner: &RunId,
    ) -> Result<JobStarted, CoordinatorError> {
        let (listing, continues) = match listed {
            Listed::Paused(listing) => (listing, true),
            Listed::Done(listing) => (listing, false),
        };
        let mut started = JobStarted {
            job_id: job_id.clone(),
            listing,
            continues,
            finished: None,
        };
        if continues {
            return Ok(started);
        }
        started.finished = self.ledger.seal(job_id, listing, Some(owner)).await?;
        if let Some(job) = &started.finished {
            self.metrics.emit(metrics::job_finished("coordinator", job));
            self.announcer.announce(job, Claim::Held).await?;
        }
        tracing::info!(%job_id, batches = listing.batches, files = listing.files_listed - listing.files_skipped, skipped = listing.files_skipped, "job sealed");
        Ok(started)
    }

    /// Marks a job FAILED for a reason that no retry can fix; failures to do so are logged.
    pub(super) async fn fail_job(&self, job_id: &JobId, reason: &str) {
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
    if let Some(job_id) = &request.job_id
        && let Err(reason) = job_id.check()
    {
        return Err(CoordinatorError::InvalidRequest(reason.into()));
    }
    request
        .inventory
        .check()
        .map_err(CoordinatorError::InvalidRequest)?;
    if request.inventory.inventory.is_some()
        && (request.key.is_some() || request.export.is_some() || !request.prefix.is_empty())
    {
        return Err(CoordinatorError::InvalidRequest(
            "a request names an inventory instead of a prefix, a key or an export (filter its \
             keys with inventory_key_prefix and inventory_key_suffix)"
                .into(),
        ));
    }
    if request.export.is_some() {
        if request.key.is_some() {
            return Err(CoordinatorError::InvalidRequest(
                "a request names an export or a key, not both".into(),
            ));
        }
        if !matches!(request.format, None | Some(Format::DynamoDbJson)) {
            return Err(CoordinatorError::InvalidRequest(
                "an export's data files are DynamoDB JSON: leave `format` out or say \"dynamodb_json\"".into(),
            ));
        }
    }
    if let Some(schema) = &request.schema {
        schema.validate()?;
        if request.format == Some(Format::DynamoDbJson) || request.export.is_some() {
            table_check::check_item_schema(schema).map_err(CoordinatorError::InvalidRequest)?;
        }
    }
    request
        .write
        .validate()
        .map_err(|e| CoordinatorError::InvalidRequest(e.to_string()))?;
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
    use crate::contract::schema::Schema;

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
        let mut shard_like = ok.clone();
        shard_like.job_id = Some("other-job#s3".into());
        assert!(
            validate(&shard_like, &[])
                .unwrap_err()
                .to_string()
                .contains('#')
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

#[cfg(test)]
mod on_doubles;

#[cfg(test)]
mod prefix_split;
