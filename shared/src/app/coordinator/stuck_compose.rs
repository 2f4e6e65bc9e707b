//! A scan killed on its last delivery is counted failed by the stuck check, but its compose
//! step would then never be woken (the last scan wakes it, and there is none): the job would
//! stay RUNNING. So the check wakes the compose of every split object one of whose scans it
//! has just counted failed, from the plan the coordinator stored beside the scans
//! ([`crate::plan::ranges::object_key`]); the compose then ends the object as it would have
//! (a missing scan with a failed batch fails the job with the reason). Cost: a LIST of the
//! job's scan folders, only for jobs with a scan killed.

use super::{Coordinator, CoordinatorError};
use crate::contract::ids::JobId;
use crate::contract::messages::{ComposeRanges, SplitObject};
use crate::fan_in::Ledger as _;

impl Coordinator {
    /// Wakes the compose of each split object with a batch among `failed`; returns the jobs
    /// whose compose was woken.
    pub(super) async fn wake_composes_of_killed_scans(
        &self,
        failed: &[(JobId, u64)],
    ) -> Vec<JobId> {
        let mut woken = Vec::new();
        let mut jobs: Vec<&JobId> = failed.iter().map(|(job_id, _)| job_id).collect();
        jobs.dedup();
        for job_id in jobs {
            let batches: Vec<u64> = (failed.iter())
                .filter(|(id, _)| id == job_id)
                .map(|(_, batch)| *batch)
                .collect();
            match self.wake_composes(job_id, &batches).await {
                Ok(0) => {}
                Ok(_) => woken.push(job_id.clone()),
                Err(error) => {
                    tracing::error!(%job_id, error = %crate::report(&error), "could not wake the compose of a killed scan; the job stays RUNNING (the stuck-job alarm shows it)")
                }
            }
        }
        woken
    }

    pub(super) async fn wake_composes(
        &self,
        job_id: &JobId,
        batches: &[u64],
    ) -> Result<usize, CoordinatorError> {
        let Some(job) = self.ledger.get(job_id).await? else {
            return Ok(0);
        };
        let Some(queue_url) = &self.config.control_queue_url else {
            return Ok(0);
        };
        let report = self.report_location(&job.request());
        let folder = format!("{}{job_id}/scans/", report.prefix);
        let (mut plans, mut composed, mut cursor) = (Vec::new(), Vec::new(), None);
        loop {
            let page = self
                .objects
                .list_page(&report.bucket, &folder, 1000, cursor)
                .await
                .map_err(CoordinatorError::Scans)?;
            for object in page.objects {
                if let Some(plan_folder) = object.key.strip_suffix("object.json") {
                    plans.push((plan_folder.to_owned(), object.key));
                } else if let Some(done) = object.key.strip_suffix("composed.json") {
                    composed.push(done.to_owned());
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let mut woken = 0;
        for (plan_folder, key) in plans {
            if composed.contains(&plan_folder) {
                continue;
            }
            let Some(object) = self.read_json::<SplitObject>(&report.bucket, &key).await? else {
                continue; // listed, then gone: nothing to wake
            };
            let scans = object.first_batch..object.first_batch + object.range_count();
            if !batches.iter().any(|batch| scans.contains(batch)) {
                continue;
            }
            let body = serde_json::to_string(&ComposeRanges {
                job_id: job_id.clone(),
                compose: object,
            })
            .expect("a compose message serializes");
            self.queues
                .send(queue_url, &body, &format!("{job_id}-compose"))
                .await
                .map_err(|e| CoordinatorError::Wake {
                    job_id: job_id.clone(),
                    source: e.into(),
                })?;
            tracing::warn!(%job_id, %key, "a scan was killed on its last delivery; its compose is woken");
            woken += 1;
        }
        Ok(woken)
    }
}
