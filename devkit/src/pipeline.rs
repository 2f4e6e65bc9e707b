//! One job, end to end, on whatever servers `clients` point at: the coordinator lists and
//! enqueues while the bridge feeds batches to the worker, until the ledger says the job is
//! final. This is what `s3-fanout run` and the integration tests drive.

use std::sync::Arc;
use std::time::Duration;

use shared::app::config::{CoordinatorConfig, WorkerConfig};
use shared::app::coordinator::{Coordinator, CoordinatorError};
use shared::app::metrics::MemorySink;
use shared::app::worker::Worker;
use shared::aws::{Clients, DynamoTable};
use shared::contract::messages::JobRequest;
use shared::job::model::{Job, JobId};
use shared::port::Adapters;
use shared::port::ledger::JobError;
use shared::port::objects::ObjectStore;
use shared::port::table::RecordTable;
use thiserror::Error;

use crate::bridge::{ControlInvoker, INVOCATION_TIMEOUT, SqsBridge, WorkerInvoker};
use crate::provision::{Provisioned, Resources};
use shared::fan_in::Ledger as _;

#[derive(Debug, Error)]
pub enum PipelineError {
    #[error(transparent)]
    Coordinator(#[from] CoordinatorError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("job {job_id} was not final after {waited:?} (last seen: {last:?})")]
    Timeout {
        job_id: JobId,
        waited: Duration,
        last: Option<Box<Job>>,
    },
}

/// The stuck check's threshold when the local pipeline runs it for a held listing (only
/// the wake matters here; the count of stuck jobs is not reported).
const HELD_CHECK_AFTER: Duration = Duration::from_secs(3600);

/// Settings of a local run.
#[derive(Clone)]
pub struct LocalPipeline {
    pub clients: Clients,
    pub coordinator: CoordinatorConfig,
    pub worker: WorkerConfig,
    pub queue_arn: String,
    pub control_queue_arn: String,
    /// The batch queue's dead-letter queue, which the coordinator consumes (as the template's
    /// `BatchDeadLetters` event source does).
    pub dead_letter_queue_url: String,
    pub dead_letter_queue_arn: String,
    /// How long each coordinator invocation may run before its deadline (none: no deadline,
    /// so a listing never pauses). Short budgets make a listing continue over invocations.
    pub coordinator_budget: Option<Duration>,
    /// How long each worker invocation may run before its deadline (the template's 120 s
    /// unless set): a short one makes batches and the inflate step hand on.
    pub worker_budget: Duration,
    /// Concurrent worker invocations.
    pub pollers: usize,
    pub timeout: Duration,
    /// The metric records both functions emitted (EMF), for `run` to summarise.
    pub metrics: Arc<MemorySink>,
    /// The object store both functions use (`None`: S3 through `clients`), e.g. a
    /// [`CountedGets`](crate::counting::CountedGets) around it.
    pub objects: Option<Arc<dyn ObjectStore>>,
}

impl LocalPipeline {
    pub fn new(clients: Clients, resources: &Resources, provisioned: &Provisioned) -> Self {
        Self {
            clients,
            coordinator: CoordinatorConfig {
                completion_queue_url: Some(provisioned.completion_queue_url.clone()),
                control_queue_url: Some(provisioned.control_queue_url.clone()),
                dead_letter_queue_arns: vec![provisioned.dead_letter_queue_arn.clone()],
                ..CoordinatorConfig::new(resources.tables.clone(), &provisioned.queue_url)
            },
            worker: WorkerConfig {
                tables: resources.tables.clone(),
                max_receive_count: provisioned.max_receive_count,
                completion_queue_url: Some(provisioned.completion_queue_url.clone()),
                control_queue_url: Some(provisioned.control_queue_url.clone()),
                queue_url: Some(provisioned.queue_url.clone()),
                ..WorkerConfig::default()
            },
            queue_arn: provisioned.queue_arn.clone(),
            control_queue_arn: provisioned.control_queue_arn.clone(),
            dead_letter_queue_url: provisioned.dead_letter_queue_url.clone(),
            dead_letter_queue_arn: provisioned.dead_letter_queue_arn.clone(),
            coordinator_budget: None,
            worker_budget: INVOCATION_TIMEOUT,
            pollers: 2,
            timeout: Duration::from_secs(600),
            metrics: Arc::new(MemorySink::default()),
            objects: None,
        }
    }

    /// Loads into `table` instead of the resources' records table: the coordinator checks
    /// the job's key against it, the worker writes to it.
    pub fn records_table(&mut self, table: &str) {
        self.coordinator.tables.records = table.to_owned();
        self.worker.tables.records = table.to_owned();
    }

    /// Runs a prefix job until it is final; `progress` sees the job item as it moves. Returns
    /// once the bridges have stopped, with no receive left pending and no message hidden.
    pub async fn run(
        &self,
        request: JobRequest,
        progress: impl FnMut(&Job),
    ) -> Result<Job, PipelineError> {
        let records = DynamoTable::new(self.clients.dynamodb.clone());
        self.run_with_writes(request, Arc::new(records), progress)
            .await
    }

    /// As [`run`](Self::run), with the worker's record writes going through `writes`.
    pub async fn run_with_writes(
        &self,
        mut request: JobRequest,
        writes: Arc<dyn RecordTable>,
        mut progress: impl FnMut(&Job),
    ) -> Result<Job, PipelineError> {
        let job_id = request.job_id.get_or_insert_with(JobId::fresh).clone();
        let mut adapters = Adapters::aws(&self.clients, &self.coordinator.tables.jobs);
        if let Some(objects) = &self.objects {
            adapters.objects = objects.clone();
        }
        let ledger = adapters.ledger.clone();
        let coordinator = Coordinator::new(adapters.clone(), self.coordinator.clone())
            .with_metrics(self.metrics.clone());
        let worker_adapters = Adapters {
            records: writes,
            ..adapters
        };
        let worker =
            Worker::new(worker_adapters, self.worker.clone()).with_metrics(self.metrics.clone());
        let invoker = WorkerInvoker {
            worker: &worker,
            budget: self.worker_budget,
        };
        let mut bridge = SqsBridge::new(
            &self.clients.sqs,
            &self.coordinator.queue_url,
            &self.queue_arn,
            &invoker,
        );
        bridge.pollers = self.pollers;

        let control = ControlInvoker {
            coordinator: &coordinator,
            budget: self.coordinator_budget,
        };
        let mut control_bridge = SqsBridge::new(
            &self.clients.sqs,
            self.coordinator
                .control_queue_url
                .as_deref()
                .unwrap_or_default(),
            &self.control_queue_arn,
            &control,
        );
        control_bridge.pollers = 1;
        // Dead letters are the coordinator's too: each is counted, whatever killed it.
        let mut dead_letter_bridge = SqsBridge::new(
            &self.clients.sqs,
            &self.dead_letter_queue_url,
            &self.dead_letter_queue_arn,
            &control,
        );
        dead_letter_bridge.pollers = 1;
        // Every poller stops once the job is final (or the run failed or timed out), and the
        // run returns only when they have: see `SqsBridge::run_until`.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let until_stopped = || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|&stop| stop).await;
            }
        };
        let coordinate = async {
            let deadline = self
                .coordinator_budget
                .map(|budget| tokio::time::Instant::now() + budget);
            coordinator.start_job(request, deadline).await?;
            std::future::pending::<Result<Job, PipelineError>>().await
        };
        // Paused listings go on, and split objects' scans are composed, in invocations
        // woken through the control queue.
        let control = control_bridge.run_until(until_stopped());
        let dead_letters = dead_letter_bridge.run_until(until_stopped());
        let mut last: Option<Job> = None;
        let watch = async {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if let Some(job) = ledger.get(&job_id).await? {
                    progress(&job);
                    if job.listing_held && !job.sealed {
                        // The scheduled stuck check's part on AWS: wake a held listing once
                        // its queue has drained.
                        coordinator.check_stuck_jobs(HELD_CHECK_AFTER).await?;
                    }
                    let done = job.status.is_final();
                    last = Some(job);
                    if done {
                        return Ok::<Job, PipelineError>(last.clone().expect("just set"));
                    }
                }
            }
        };
        let outcome = async {
            let result = tokio::select! {
                result = coordinate => result,
                result = watch => result,
                () = tokio::time::sleep(self.timeout) => Err(PipelineError::Timeout {
                    job_id: job_id.clone(),
                    waited: self.timeout,
                    last: None,
                }),
            };
            stop.send_replace(true);
            result
        };
        let (result, (), (), ()) = tokio::join!(
            outcome,
            bridge.run_until(until_stopped()),
            control,
            dead_letters
        );
        result.map_err(|error| match error {
            PipelineError::Timeout { job_id, waited, .. } => PipelineError::Timeout {
                job_id,
                waited,
                last: last.map(Box::new),
            },
            other => other,
        })
    }
}
