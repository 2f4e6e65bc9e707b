//! An export chain's batches on the worker (`docs/exports.md`): the fence read before any
//! write, and the wake of the next phase by the count that completes this one.

use super::{Worker, WorkerError};
use crate::contract::messages::{BatchMessage, ExportFiles, ExportPhaseStep};
use crate::fan_in::Ledger as _;

impl Worker {
    /// Whether this export batch may write: one consistent read of the job's header,
    /// before any write of this invocation. A batch of a phase older than the job's has
    /// been counted (a phase starts only once every batch before it is), so it is a late
    /// duplicate: writing it would put an older image back over a newer one.
    pub(super) async fn export_fenced(
        &self,
        batch: &BatchMessage,
        files: &ExportFiles,
    ) -> Result<bool, WorkerError> {
        let Some(job) = self.ledger.header(&batch.job_id).await? else {
            return Ok(false);
        };
        if job.export_phase > files.phase {
            tracing::warn!(job_id = %batch.job_id, batch = batch.batch.get(), batch_phase = files.phase, job_phase = job.export_phase, "a late duplicate of an older export phase's batch: nothing written");
            return Ok(true);
        }
        Ok(false)
    }

    /// After this batch is counted (or found counted: a crash before the wake heals on
    /// redelivery): once every batch of its phase is, wakes the next phase's step.
    /// Duplicates are harmless: the step is idempotent.
    pub(super) async fn wake_next_export_phase(
        &self,
        batch: &BatchMessage,
        files: &ExportFiles,
    ) -> Result<(), WorkerError> {
        let Some(next) = files.next_phase else {
            return Ok(());
        };
        let Some(job) = self.ledger.get(&batch.job_id).await? else {
            return Ok(());
        };
        if job.status.is_final() || job.export_phase >= next || job.batches_done < files.phase_end {
            return Ok(());
        }
        let Some(queue_url) = &self.config.control_queue_url else {
            return Err(WorkerError::Wake("CONTROL_QUEUE_URL is not set".into()));
        };
        let step = ExportPhaseStep {
            job_id: batch.job_id.clone(),
            export_phase: next,
        };
        let body = serde_json::to_string(&step).map_err(|e| WorkerError::Wake(e.into()))?;
        let dedup = format!("{}-export-phase-{next}", batch.job_id);
        (self.queues.send(queue_url, &body, &dedup).await)
            .map_err(|e| WorkerError::Wake(e.into()))?;
        tracing::info!(job_id = %batch.job_id, phase = files.phase, next, "every batch of the export phase counted; the next phase's step woken");
        Ok(())
    }
}
