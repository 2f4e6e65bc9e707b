//! Dead letters accounted for, whatever killed them. A message can reach a dead-letter queue
//! on a delivery that never ran our code (an invocation throttled or failed at init still
//! counts toward `maxReceiveCount`), so nothing marked it and nothing counted it: its job
//! would wait forever. The coordinator consumes both dead-letter queues:
//!
//! - a **batch** (any part) is stored beside the job's rejects reports
//!   (`{prefix}{job}/dead-letters/batch-NNNNNN[-part-PPP].json`, what `s3-fanout redrive
//!   --job` sends back), then counted as failed, exactly once (a batch its worker already
//!   counted, failed or not, stays as counted), and its job finishes if that was its last
//!   count; a scan's compose step is woken so the split object ends too;
//! - a **compose** step fails its job with the reason (nothing else would enqueue the object's
//!   parse batches);
//! - a **listing** continuation is left to the stuck-job check, which wakes a stalled listing
//!   and fails one killed on its last delivery.
//!
//! Cost: one PUT and one counting update per dead letter; nothing per job or per history.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsMessage};

use super::{Coordinator, CoordinatorError};
use crate::app::completion::Claim;
use crate::app::{lambda, metrics};
use crate::contract::ids::{BatchNo, JobId};
use crate::contract::messages::{BatchMessage, ControlMessage};
use crate::contract::rejects::ReportLocation;
use crate::fan_in::Ledger as _;
use crate::job::model::Recorded;
use crate::port::ledger::JobError;

/// Where a dead-lettered batch part is kept for a redrive.
pub fn dead_letter_key(
    report: &ReportLocation,
    job_id: &JobId,
    batch: BatchNo,
    part: u32,
) -> String {
    let name = match part {
        0 => format!("batch-{:06}.json", batch.get()),
        _ => format!("batch-{:06}-part-{part:03}.json", batch.get()),
    };
    format!("{}{}{name}", report.prefix, dead_letters_folder(job_id))
}

/// The folder, under the rejects prefix, of a job's dead-lettered batches.
pub fn dead_letters_folder(job_id: &JobId) -> String {
    format!("{job_id}/dead-letters/")
}

impl Coordinator {
    /// Whether `message` comes from one of the dead-letter queues this coordinator consumes.
    pub(super) fn is_dead_letter(&self, message: &SqsMessage) -> bool {
        message
            .event_source_arn
            .as_ref()
            .is_some_and(|arn| self.config.dead_letter_queue_arns.contains(arn))
    }

    /// Messages of a dead-letter queue's SQS event: each is accounted for (see the module);
    /// one that could not be is reported for redelivery.
    pub async fn handle_dead_letters(&self, messages: Vec<SqsMessage>) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for message in messages {
            if let Err(reason) = self.account(&message).await {
                let id = message.message_id.clone().unwrap_or_default();
                tracing::error!(message_id = %id, %reason, "a dead letter could not be accounted for; left for redelivery");
                response.batch_item_failures.push(lambda::failure(id));
            }
        }
        response
    }

    async fn account(&self, message: &SqsMessage) -> Result<(), String> {
        let body = message.body.as_deref().unwrap_or_default();
        let receives = lambda::receive_count(message);
        if let Ok(batch) = serde_json::from_str::<BatchMessage>(body) {
            return (self.account_batch(&batch, body).await).map_err(|e| crate::report(&e));
        }
        match serde_json::from_str::<ControlMessage>(body) {
            Ok(ControlMessage::Compose(compose)) => {
                // The step is idempotent (a composed object is not enqueued twice): run it
                // once more here, and end the job only if it still cannot be done.
                if let Err(error) = self.compose_ranges(&compose).await {
                    let reason = format!(
                        "the compose step of {} reached the dead-letter queue, and running it once more failed: {}",
                        compose.compose.key,
                        crate::report(&error)
                    );
                    self.fail_job(&compose.job_id, &reason).await;
                }
                Ok(())
            }
            Ok(ControlMessage::ComposeInventory(compose)) => {
                // Idempotent too (a marker): once more, and the job ends if it still fails.
                if let Err(error) = self.compose_inventory(&compose).await {
                    let reason = format!(
                        "the inventory compose step reached the dead-letter queue, and running it once more failed: {}",
                        crate::report(&error)
                    );
                    self.fail_job(&compose.job_id, &reason).await;
                }
                Ok(())
            }
            Ok(ControlMessage::ExportPhase(step)) => {
                // Idempotent (the fence is conditional, a phase's batches are counted once):
                // once more, and the job ends if it still fails.
                if let Err(error) = self.export_phase(&step).await {
                    let reason = format!(
                        "the step of export phase {} reached the dead-letter queue, and running it once more failed: {}",
                        step.export_phase,
                        crate::report(&error)
                    );
                    self.fail_job(&step.job_id, &reason).await;
                }
                Ok(())
            }
            Ok(ControlMessage::Continue(wake)) => {
                tracing::warn!(job_id = %wake.job_id, invocation = wake.invocation, receives, "a listing continuation was dead-lettered; the stuck-job check wakes the listing again or fails it");
                Ok(())
            }
            Err(_) => {
                // Nobody can act on it; dropping it here is what keeping it would come to.
                tracing::error!(body = %body.chars().take(200).collect::<String>(), "a dead letter that is no message of ours is dropped");
                Ok(())
            }
        }
    }

    async fn account_batch(
        &self,
        batch: &BatchMessage,
        body: &str,
    ) -> Result<(), CoordinatorError> {
        let (job_id, number, part) = (&batch.job_id, batch.batch, batch.part());
        // Kept before counting, so a redrive always has what a count records as failed.
        let key = dead_letter_key(&batch.report, job_id, number, part);
        self.objects
            .put(
                &batch.report.bucket,
                &key,
                body.as_bytes().to_vec(),
                "application/json",
            )
            .await
            .map_err(CoordinatorError::DeadLetter)?;
        let reason = format!(
            "batch {number} (part {part}) reached the dead-letter queue without being counted (its deliveries were throttled, failed at init or were killed); kept at s3://{}/{key}",
            batch.report.bucket
        );
        let recorded = match self
            .ledger
            .record_failed_batch(job_id, number, &reason)
            .await
        {
            Ok(recorded) => recorded,
            // Nothing left to end (a job expired by its TTL, or a hand-made message): the
            // kept copy is the record; retrying for 14 days would change nothing.
            Err(JobError::NotFound(_)) => {
                tracing::warn!(%job_id, batch = number.get(), "a dead letter of a job the ledger does not hold; kept, not counted");
                return Ok(());
            }
            Err(error) => return Err(error.into()),
        };
        self.ledger.clear_last_attempt(job_id, number).await?;
        if matches!(recorded, Recorded::Counted(_)) {
            tracing::error!(%job_id, batch = number.get(), part, "a dead-lettered batch is counted as failed");
        }
        if batch.work.scan().is_some() {
            // Whoever counted it: the compose ends the object (a composed one is skipped),
            // and a redelivery of this letter wakes it again should this send fail.
            self.wake_composes(job_id, &[number.get()]).await?;
        }
        let Some(job) = self.ledger.get(job_id).await? else {
            return Ok(());
        };
        if let Some(task) = batch.work.inventory().filter(|t| t.emit.is_none())
            && job.batches_done >= task.file.files
            && !job.sealed
        {
            // The last count dead-lettered: compose here (it fails the job, naming the file).
            let compose = crate::contract::inventory::ComposeInventory {
                job_id: job_id.clone(),
                compose_inventory: crate::contract::inventory::InventoryCompose {
                    manifest: task.file.manifest.clone(),
                    files: task.file.files,
                },
            };
            self.compose_inventory(&compose).await?;
        }
        if let Some(files) = batch.work.export()
            && let Some(next) = files.next_phase
            && job.batches_done >= files.phase_end
        {
            // The phase's last count dead-lettered: its next phase starts from here.
            let step = crate::contract::messages::ExportPhaseStep {
                job_id: job_id.clone(),
                export_phase: next,
            };
            self.export_phase(&step).await?;
        }
        if let Some(finished) = self.ledger.try_finish(&job).await? {
            self.metrics
                .emit(metrics::job_finished("coordinator", &finished));
            self.announcer.announce(&finished, Claim::Held).await?;
        }
        Ok(())
    }
}
