//! A request naming a DynamoDB S3 export (`export`: its `manifest-summary.json` key or its
//! folder) applied to the job's table. Before the job exists, both manifests are read and
//! checked (against their checksum files where present, and the files' item counts against
//! the summary's), every data file is resolved where the export actually is ([`relocate`]:
//! a copy under another prefix or in another bucket loads) and HEADed for its size, and the
//! first item found is checked to carry the table's key with its types. The data files are
//! then enqueued in batches by bytes, each carrying its files' manifest item counts, which
//! the worker compares with the lines it reads.
//!
//! **Chains** (`docs/exports.md`): a request may name a full export then incrementals (a
//! list, or a folder holding them, ordered by time); their times must follow on. Each export
//! is a phase; every phase's batches are numbered at the start (phase k gets a contiguous
//! range) and the job is sealed at once, but only the first phase is sent. The count that
//! completes a phase wakes [`Coordinator::export_phase`], which records the next phase in the
//! job item (the fence) and sends that phase's batches once the fence wait has passed. A
//! single export is a chain of one, on the same path.

use futures::{StreamExt as _, TryStreamExt as _, stream};
use tokio::io::AsyncBufReadExt;

mod stored_chain;

pub use stored_chain::{StoredChain, StoredPhase, chain_key, phase_sent_key};

use super::enqueue::JobBatches;
use super::{Coordinator, CoordinatorError};
use crate::clock;
use crate::contract::ids::JobId;
use crate::contract::messages::{ExportNames, ExportPhaseStep};
use crate::contract::schema::Schema;
use crate::fan_in::Ledger as _;
use crate::ingest::compression::{self, Encoding};
use crate::ingest::export::{
    self, DataFile, PlannedFile, SUMMARY_NAME, Summary, check_chain, check_md5, checksum_keys,
    order_by_time, parse_files, parse_summary, relocate,
};
use crate::ingest::format::ddbjson::{change_of_line, item_of_line};
use crate::ingest::typing::item_key::ItemKey;
use crate::job::model::{Job, ListingProgress};
use crate::port::ledger::JobError;
use crate::port::objects::{Body, Failure, Read};

/// Data files HEADed at once while an export is planned.
const DATA_FILE_HEADS: usize = 32;

/// An export's data files, checked and batched.
#[derive(Debug, Clone)]
pub(super) struct ExportPlan {
    pub summary_key: String,
    pub summary: Summary,
    pub batches: Vec<Vec<PlannedFile>>,
}

/// A chain of exports (one for a single export), each planned, in the order applied.
#[derive(Debug, Clone)]
pub(super) struct ChainPlan {
    pub phases: Vec<ExportPlan>,
}

impl ChainPlan {
    /// Whether any of its exports is incremental (put mode only).
    pub fn is_incremental(&self) -> bool {
        self.phases.iter().any(|p| p.summary.is_incremental())
    }

    /// What the chain applies, for messages: the stored form.
    pub fn stored(&self) -> StoredChain {
        StoredChain {
            phases: (self.phases.iter())
                .map(|phase| StoredPhase {
                    summary_key: phase.summary_key.clone(),
                    incremental: phase.summary.is_incremental(),
                    batches: (phase.batches.iter())
                        .map(|files| files.iter().map(|f| (f.key.clone(), f.items)).collect())
                        .collect(),
                    md5s: (phase.batches.iter().flatten())
                        .filter_map(|f| Some((f.key.clone(), f.md5.clone()?)))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// What a phase step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhaseStep {
    /// Nothing to do: the job ended, the phase is past, or its previous one is not counted.
    Nothing,
    /// The fence is recorded (or was, too recently): the step comes back after the wait.
    Fenced { wait: std::time::Duration },
    /// The phase's batches are sent.
    Sent { phase: u32, batches: u64 },
}

/// The windows in which a data file's first line is looked for: most lines fit the first,
/// an item near DynamoDB's 400 KB the second (even uncompressed), the last is the file.
const FIRST_LINE_WINDOWS: [u64; 3] = [64 << 10, 4 << 20, u64::MAX];

/// The first non-blank line of a data file, if one ends inside the body (`whole`: the body
/// is the whole file, so its last line may end without a newline).
async fn first_line(body: Body, key: &str, whole: bool) -> std::io::Result<Option<String>> {
    let mut lines = compression::decoded(body.reader, Encoding::of_key(key), 1 << 30);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if (whole || line.ends_with('\n')) && !line.trim().is_empty() {
            return Ok(Some(line));
        }
    }
}

fn invalid(reason: impl std::fmt::Display) -> CoordinatorError {
    CoordinatorError::InvalidRequest(reason.to_string())
}

impl Coordinator {
    /// The exports a request names, in the order applied: each name a summary key, an
    /// export's folder, or a folder holding several (ordered by time); each checked and
    /// planned, and the chain's times checked to follow on.
    pub(super) async fn plan_chain(
        &self,
        bucket: &str,
        names: &ExportNames,
        schema: &Schema,
    ) -> Result<ChainPlan, CoordinatorError> {
        if names.names().is_empty() {
            return Err(invalid("\"export\" names no export (an empty list)"));
        }
        let mut summaries = Vec::new();
        for name in names.names() {
            summaries.extend(self.summaries_of(bucket, name).await?);
        }
        let mut read = Vec::with_capacity(summaries.len());
        for (key, bytes) in summaries {
            let summary = parse_summary(&key, &bytes).map_err(invalid)?;
            read.push((key, summary));
        }
        if names.names().len() == 1 {
            // A folder holding several exports: applied in time order.
            order_by_time(&mut read);
        }
        check_chain(&read).map_err(invalid)?;
        let mut phases = Vec::with_capacity(read.len());
        for (key, summary) in read {
            phases.push(self.plan_export(bucket, key, summary, schema).await?);
        }
        Ok(ChainPlan { phases })
    }

    /// The summaries a name stands for: its own `manifest-summary.json` if there is one,
    /// else every export's summary found under the folder it names.
    async fn summaries_of(
        &self,
        bucket: &str,
        name: &str,
    ) -> Result<Vec<(String, Vec<u8>)>, CoordinatorError> {
        let key = export::summary_key(name);
        if let Some(bytes) = self.read_checked(bucket, &key).await? {
            return Ok(vec![(key, bytes)]);
        }
        let folder = match name.is_empty() || name.ends_with('/') {
            true => name.to_owned(),
            false => format!("{name}/"),
        };
        let mut found = Vec::new();
        let mut lister = super::listing::PrefixLister::new(
            &*self.objects,
            bucket,
            &folder,
            self.config.list_page_size,
        );
        let suffix = format!("/{SUMMARY_NAME}");
        while let Some(page) = lister.next_page().await.map_err(CoordinatorError::Export)? {
            let summaries = page.into_iter().map(|o| o.key);
            found.extend(summaries.filter(|k| k.ends_with(&suffix)));
        }
        if found.is_empty() {
            return Err(invalid(format!(
                "the export's {key} is not in s3://{bucket}, nor any export's {SUMMARY_NAME} under {folder}"
            )));
        }
        let mut out = Vec::with_capacity(found.len());
        for key in found {
            let bytes = self.read_manifest(bucket, &key).await?;
            out.push((key, bytes));
        }
        Ok(out)
    }

    /// Reads and checks the export whose summary is `summary_key`, and plans its data files.
    async fn plan_export(
        &self,
        bucket: &str,
        summary_key: String,
        summary: Summary,
        schema: &Schema,
    ) -> Result<ExportPlan, CoordinatorError> {
        let files_key =
            relocate(&summary_key, &summary, &summary.manifest_files_s3_key).map_err(invalid)?;
        let files_bytes = self.read_manifest(bucket, &files_key).await?;
        let files = parse_files(&files_key, &files_bytes).map_err(invalid)?;
        if let Some(total) = summary.item_count {
            let listed: u64 = files.iter().map(|f| f.item_count).sum();
            if listed != total {
                return Err(invalid(format!(
                    "{files_key} lists {listed} items and {summary_key} says {total} (itemCount)"
                )));
            }
        }
        // HEADs in flight at once, in manifest order: one planning invocation sizes
        // 100,000 data files in minutes, not one round trip after another.
        let planned: Vec<PlannedFile> = stream::iter(files)
            .map(|file| self.plan_data_file(bucket, &summary_key, &summary, file))
            .buffered(DATA_FILE_HEADS)
            .try_collect()
            .await?;
        self.check_export_key(bucket, &planned, &summary, schema)
            .await?;
        let batches = export::batches(planned, self.config.batch_size, self.config.batch_bytes);
        Ok(ExportPlan {
            summary_key,
            summary,
            batches,
        })
    }

    /// One data file where the export actually is, sized by a HEAD.
    async fn plan_data_file(
        &self,
        bucket: &str,
        summary_key: &str,
        summary: &Summary,
        file: DataFile,
    ) -> Result<PlannedFile, CoordinatorError> {
        let DataFile {
            item_count,
            data_file_s3_key,
            md5_checksum,
            ..
        } = file;
        let key = relocate(summary_key, summary, &data_file_s3_key).map_err(invalid)?;
        let info = (self.objects.head(bucket, &key).await).map_err(|error| match error.failure {
            Failure::NotFound => invalid(format!(
                "the export's data file {key} (manifest: {data_file_s3_key}) is not in s3://{bucket}"
            )),
            _ => CoordinatorError::Export(error),
        })?;
        Ok(PlannedFile {
            key,
            size: info.size,
            items: item_count,
            md5: md5_checksum,
        })
    }

    /// A manifest's bytes, checked against its checksum file when one is there.
    async fn read_manifest(&self, bucket: &str, key: &str) -> Result<Vec<u8>, CoordinatorError> {
        self.read_checked(bucket, key)
            .await?
            .ok_or_else(|| invalid(format!("the export's {key} is not in s3://{bucket}")))
    }

    /// A manifest's bytes if it is there, checked against its checksum file when one is.
    async fn read_checked(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, CoordinatorError> {
        let Some(bytes) = (self.read_stored(bucket, key).await)
            .map_err(|_| invalid(format!("reading the export's {key} failed")))?
        else {
            return Ok(None);
        };
        for checksum_key in checksum_keys(key) {
            if let Ok(Some(checksum)) = self.read_stored(bucket, &checksum_key).await {
                check_md5(key, &checksum_key, &bytes, &checksum).map_err(invalid)?;
                break;
            }
        }
        Ok(Some(bytes))
    }

    /// The export's key against the table's, before anything is written: the first item of
    /// the first data file holding any must carry the job's key (names and types).
    async fn check_export_key(
        &self,
        bucket: &str,
        files: &[PlannedFile],
        summary: &Summary,
        schema: &Schema,
    ) -> Result<(), CoordinatorError> {
        let Some(file) = files.iter().find(|f| f.items > 0 && f.size > 0) else {
            return Ok(());
        };
        // Only the first line is needed: windows that grow until it is whole, so a big data
        // file costs a few KB here, not its size.
        let mut line = String::new();
        for window in FIRST_LINE_WINDOWS {
            let window = window.min(file.size);
            let read = Read {
                from: 0,
                to: Some(window),
                if_match: None,
            };
            let body = (self.objects.get(bucket, &file.key, read).await)
                .map_err(CoordinatorError::Export)?;
            match first_line(body, &file.key, window == file.size).await {
                Ok(Some(first)) => {
                    line = first;
                    break;
                }
                Ok(None) if window == file.size => return Ok(()),
                Err(e) if window == file.size => {
                    return Err(invalid(format!(
                        "the export's data file {} is unreadable: {e}",
                        file.key
                    )));
                }
                // Cut inside the first line (or inside a compressed block): read wider.
                Ok(None) | Err(_) => {}
            }
        }
        let item = match summary.is_incremental() {
            true => change_of_line(&line).map(|(item, _)| item),
            false => item_of_line(&line),
        };
        let item = item.map_err(|reason| {
            invalid(format!(
                "the first line of the export's {} does not read: {reason}",
                file.key
            ))
        })?;
        ItemKey::of_schema(schema)
            .check(&item)
            .map(|_| ())
            .map_err(|reason| {
                invalid(format!(
                    "the export's items do not carry the table's key (first item of {}): {reason}",
                    file.key
                ))
            })
    }

    /// Stores the chain's plan (the phase steps send from it), then sends the batches of
    /// its first phase with any; every phase's batches are numbered, so the job is sealed
    /// with them all. The same plan again (the stuck check replanning) stores and sends
    /// the same batches under the same numbers, counted once.
    pub(super) async fn enqueue_export(
        &self,
        job: JobBatches<'_>,
        plan: &ChainPlan,
    ) -> Result<ListingProgress, CoordinatorError> {
        let stored = plan.stored();
        let key = chain_key(job.report, job.job_id);
        let json = serde_json::to_vec(&stored).map_err(|e| invalid(e.to_string()))?;
        (self.objects)
            .put(&job.report.bucket, &key, json, "application/json")
            .await
            .map_err(CoordinatorError::Scans)?;
        if let Some(first) = stored.next_with_batches(0) {
            self.send_phase(job, &stored, first).await?;
        }
        let (_, total) = stored.bases();
        Ok(ListingProgress {
            batches: total,
            files_listed: stored.files(),
            files_skipped: 0,
            planning_bytes_read: self.planning_bytes(),
        })
    }

    /// Sends phase `phase`'s batches, then marks the phase sent.
    async fn send_phase(
        &self,
        job: JobBatches<'_>,
        stored: &StoredChain,
        phase: u32,
    ) -> Result<u64, CoordinatorError> {
        let mut queue = self.queue();
        let work = stored.work(phase);
        let sent = work.len() as u64;
        let export = stored
            .phases
            .get(phase as usize)
            .map(|p| p.summary_key.as_str());
        for (batch, work) in work {
            tracing::info!(job_id = %job.job_id, batch = batch.get(), phase, export = export.unwrap_or_default(), "batch enqueued");
            queue.push(job.entry(batch, work)).await?;
        }
        queue.flush().await?;
        let marker = phase_sent_key(job.report, job.job_id, phase);
        (self.objects)
            .put(
                &job.report.bucket,
                &marker,
                b"{}".to_vec(),
                "application/json",
            )
            .await
            .map_err(CoordinatorError::Scans)?;
        Ok(sent)
    }

    /// A chain's phase step (`docs/exports.md`). Phase `export_phase` starts only once
    /// every batch before it is counted: the first delivery records it in the job item (the
    /// fence; from then on a worker holding an older phase's batch writes nothing) and comes
    /// back after the fence wait, delayed on the control queue; a delivery that finds the
    /// fence at least that old sends the phase's batches. Every worker invocation that read
    /// the older phase before the fence has been killed by its timeout by then, so no write
    /// of an older phase can land after one of this phase. Idempotent: a duplicate before the
    /// wait schedules itself again; one after it sends the same batches again (counted once).
    pub async fn export_phase(
        &self,
        message: &ExportPhaseStep,
    ) -> Result<PhaseStep, CoordinatorError> {
        let job_id = &message.job_id;
        let Some(job) = self.ledger.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()).into());
        };
        let request = job.request();
        let report = self.report_location(&request);
        let stored: StoredChain = (self.read_json(&report.bucket, &chain_key(&report, job_id)))
            .await?
            .ok_or_else(|| CoordinatorError::ChainMissing {
                job_id: job_id.clone(),
            })?;
        // Phases without batches are passed over.
        let Some(phase) = stored.next_with_batches(message.export_phase) else {
            return Ok(PhaseStep::Nothing);
        };
        if job.status.is_final() || job.export_phase > phase {
            return Ok(PhaseStep::Nothing);
        }
        let (bases, _) = stored.bases();
        let before = bases[phase as usize];
        if job.export_phase < phase {
            if job.batches_done < before {
                tracing::info!(%job_id, phase, counted = job.batches_done, needed = before, "export phase not started: the phase before is not counted yet");
                return Ok(PhaseStep::Nothing);
            }
            if self
                .ledger
                .advance_export_phase(job_id, phase, clock::now_ms())
                .await?
            {
                tracing::info!(%job_id, phase, "export phase fenced: older phases' batches write nothing from now on");
            }
            return self
                .come_back(job_id, phase, self.config.export_fence)
                .await;
        }
        // The current phase: its batches go out once the fence is old enough.
        if let Some(fenced_ms) = job.export_fence_ms {
            let waited = clock::now_ms().saturating_sub(fenced_ms);
            let wait = self.config.export_fence.as_millis() as u64;
            if waited < wait {
                let left = std::time::Duration::from_millis(wait - waited);
                return self.come_back(job_id, phase, left).await;
            }
        }
        let batches = JobBatches {
            job_id,
            request: &request,
            report: &report,
        };
        let sent = self.send_phase(batches, &stored, phase).await?;
        tracing::info!(%job_id, phase, batches = sent, export = %stored.phases[phase as usize].summary_key, "export phase sent");
        Ok(PhaseStep::Sent {
            phase,
            batches: sent,
        })
    }

    /// Sends the phase step to the control queue again, visible after `wait`.
    async fn come_back(
        &self,
        job_id: &JobId,
        phase: u32,
        wait: std::time::Duration,
    ) -> Result<PhaseStep, CoordinatorError> {
        let Some(queue_url) = &self.config.control_queue_url else {
            return Err(invalid("an export chain needs CONTROL_QUEUE_URL"));
        };
        let body = serde_json::to_string(&ExportPhaseStep {
            job_id: job_id.clone(),
            export_phase: phase,
        })
        .map_err(|e| invalid(e.to_string()))?;
        self.queues.send_delayed(queue_url, &body, wait).await?;
        Ok(PhaseStep::Fenced { wait })
    }

    /// For the stuck check: a running chain job whose phase step was lost (its current
    /// phase counted and a later one due, or its current phase fenced but never sent)
    /// gets the step again. `true` if it was sent.
    pub(super) async fn heal_export_phase(&self, job: &Job) -> Result<bool, CoordinatorError> {
        if job.export.is_none() || !job.sealed || job.status.is_final() {
            return Ok(false);
        }
        let request = job.request();
        let report = self.report_location(&request);
        let Some(stored) = (self
            .read_json::<StoredChain>(&report.bucket, &chain_key(&report, &job.job_id)))
        .await?
        else {
            return Ok(false);
        };
        let (bases, _) = stored.bases();
        let current = job.export_phase;
        let end = (bases.get(current as usize + 1).copied()).unwrap_or(job.total_batches);
        let due = match stored.next_with_batches(current + 1) {
            Some(next) if job.batches_done >= end => Some(next),
            _ => None,
        };
        let due = match due {
            Some(next) => next,
            None => {
                let marker = phase_sent_key(&report, &job.job_id, current);
                let fenced = job.export_fence_ms.is_some();
                if !fenced || self.objects.head(&report.bucket, &marker).await.is_ok() {
                    return Ok(false);
                }
                current
            }
        };
        let step = ExportPhaseStep {
            job_id: job.job_id.clone(),
            export_phase: due,
        };
        tracing::warn!(job_id = %job.job_id, phase = due, "an export phase step was lost; sent again");
        self.export_phase(&step).await?;
        Ok(true)
    }
}
