//! The control queue's steps: a long listing continues in the next invocation, which claims
//! its step in the ledger and resumes from the checkpoint; a split object's scans are
//! composed into its parse batches (`compose.rs`).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::time::Instant;

use super::enqueue::{JobBatches, ListingStep};
use super::{Coordinator, CoordinatorError, JobStarted, LISTING_STALLED_AFTER};
use crate::app::lambda;
use crate::contract::ids::{BatchNo, JobId, RunId};
use crate::contract::messages::{ComposeRanges, ContinueListing, ControlMessage};
use crate::fan_in::Ledger as _;
use crate::job::model::{Job, ListingCheckpoint};
use crate::port::ledger::JobError;

/// Last-attempt marks written or cleared at once.
const MARK_CALLS: usize = 16;

impl Coordinator {
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
        let run = RunId::fresh();
        if !self
            .ledger
            .claim_listing(job_id, message.invocation, &run, LISTING_STALLED_AFTER)
            .await?
        {
            tracing::info!(%job_id, invocation = message.invocation, "another run owns this listing step");
            return Ok(None);
        }
        tracing::info!(%job_id, invocation = checkpoint.invocation, batches = checkpoint.progress.batches, "listing continues");
        let so_far = checkpoint.progress.planning_bytes_read;
        let result = (self.planning_step(so_far))
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
        run: &RunId,
        deadline: Option<Instant>,
    ) -> Result<Option<JobStarted>, CoordinatorError> {
        let job_id = &job.job_id;
        let request = job.request();
        let report = self.report_location(&request);
        // A single-object job whose first invocation died is planned again (same batches).
        let batches = JobBatches {
            job_id,
            request: &request,
            report: &report,
        };
        let step = ListingStep {
            resume: Some(checkpoint),
            owner: run,
            deadline,
        };
        let listed = self.enqueue(batches, step).await?;
        match self.conclude(job_id, listed, run).await {
            Ok(started) => Ok(Some(started)),
            // This run's claim went stale and another run took the step over.
            Err(CoordinatorError::Job(JobError::AlreadySealed(_) | JobError::NotOwner(_))) => {
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The control queue's SQS event: each message continues one listing or composes a
    /// split object's scans; failed ones are reported for redelivery.
    pub async fn handle_control_event(
        &self,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> SqsBatchResponse {
        // The dead-letter queues reach the coordinator through the same kind of event.
        let (dead, records): (Vec<_>, Vec<_>) =
            (event.records.into_iter()).partition(|message| self.is_dead_letter(message));
        let mut response = if dead.is_empty() {
            SqsBatchResponse::default()
        } else {
            self.handle_dead_letters(dead).await
        };
        for message in records {
            let id = message.message_id.clone().unwrap_or_default();
            let body = message.body.as_deref().unwrap_or_default();
            let control = match serde_json::from_str::<ControlMessage>(body) {
                Ok(control) => control,
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "not a control message; left for the dead-letter queue");
                    response.batch_item_failures.push(lambda::failure(id));
                    continue;
                }
            };
            let last_delivery =
                lambda::receive_count(&message) >= self.config.control_max_receive_count;
            let (job_id, result) = match &control {
                ControlMessage::Continue(continuation) => {
                    if last_delivery {
                        // Should this invocation be killed (not return an error), the stuck-job
                        // check fails the job once the deadline has passed, instead of waking
                        // it forever.
                        let deadline_ms = lambda::deadline_ms(deadline);
                        if let Err(e) = self
                            .ledger
                            .mark_listing_last_attempt(&continuation.job_id, deadline_ms)
                            .await
                        {
                            tracing::error!(job_id = %continuation.job_id, error = %crate::report(&e), "could not mark the listing's last attempt");
                        }
                    }
                    (
                        &continuation.job_id,
                        self.continue_listing(continuation, deadline)
                            .await
                            .map(drop),
                    )
                }
                ControlMessage::ExportPhase(step) => {
                    (&step.job_id, self.export_phase(step).await.map(drop))
                }
                ControlMessage::ComposeInventory(compose) => (
                    &compose.job_id,
                    self.compose_inventory(compose).await.map(drop),
                ),
                ControlMessage::Compose(compose) => {
                    if last_delivery {
                        self.mark_parse_batches(compose, deadline).await;
                    }
                    let result = self.compose_ranges(compose).await.map(drop);
                    if last_delivery {
                        // Returned, not killed: the step is settled either way (a failure
                        // fails the job just below).
                        self.clear_parse_marks(compose).await;
                    }
                    (&compose.job_id, result)
                }
            };
            let result = result.map_err(|e| crate::report(&e));
            if let Err(reason) = &result
                && last_delivery
            {
                // The step fails for good: end the job instead of waking it forever.
                self.fail_job(job_id, reason).await;
                continue;
            }
            if let Err(reason) = result {
                tracing::error!(message_id = %id, %reason, "a control step failed; left for redelivery");
                response.batch_item_failures.push(lambda::failure(id));
            }
        }
        response
    }

    /// Before a compose step's last delivery runs, a last-attempt mark on every parse batch
    /// it enqueues: should the process be killed, the stuck-job check counts them as failed
    /// once the deadline has passed, so the job ends instead of waiting on batches nobody
    /// will send. One write per range, on a last delivery only.
    async fn mark_parse_batches(&self, compose: &ComposeRanges, deadline: Option<Instant>) {
        let deadline_ms = lambda::deadline_ms(deadline);
        let job_id = &compose.job_id;
        let marked = self
            .each_parse_batch(compose, |batch| {
                self.ledger.mark_last_attempt(job_id, batch, deadline_ms)
            })
            .await;
        if let Err(e) = marked {
            tracing::error!(%job_id, error = %crate::report(&e), "could not mark the compose step's last attempt; a kill now would leave its job waiting");
        }
    }

    async fn clear_parse_marks(&self, compose: &ComposeRanges) {
        let job_id = &compose.job_id;
        let cleared = self
            .each_parse_batch(compose, |batch| {
                self.ledger.clear_last_attempt(job_id, batch)
            })
            .await;
        if let Err(e) = cleared {
            // Left, a mark past its deadline counts a parse batch not yet done as failed.
            tracing::error!(%job_id, error = %crate::report(&e), "could not clear the compose step's last-attempt marks");
        }
    }

    async fn each_parse_batch<'a, F, Fut>(
        &'a self,
        compose: &'a ComposeRanges,
        call: F,
    ) -> Result<(), JobError>
    where
        F: Fn(BatchNo) -> Fut + 'a,
        Fut: Future<Output = Result<(), JobError>> + 'a,
    {
        let object = &compose.compose;
        stream::iter(0..object.range_count())
            .map(|index| call(BatchNo(object.parse_batch(index))))
            .buffer_unordered(MARK_CALLS)
            .try_collect()
            .await
    }

    /// Wakes invocation `invocation` of a paused listing through the control queue.
    pub(super) async fn wake(
        &self,
        job_id: &JobId,
        invocation: u32,
    ) -> Result<(), CoordinatorError> {
        let Some(queue_url) = &self.config.control_queue_url else {
            return Ok(());
        };
        let body = serde_json::to_string(&ContinueListing {
            job_id: job_id.clone(),
            invocation,
        })
        .expect("a string and a number serialize");
        // On a FIFO control queue, one wake-up per step.
        let dedup = format!("{job_id}-{invocation}");
        self.queues
            .send(queue_url, &body, &dedup)
            .await
            .map_err(|e| CoordinatorError::Wake {
                job_id: job_id.clone(),
                source: e.into(),
            })?;
        Ok(())
    }
}
