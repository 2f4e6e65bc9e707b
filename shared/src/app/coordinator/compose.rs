//! Phase two of a split object: once every scan batch is counted, the worker that counted
//! the last one wakes this step through the control queue. It reads the scans (small S3
//! objects next to the job's rejects reports), composes them in order into each range's exact
//! row span, and enqueues the parse batches `n..2n` (the job was sealed at `2n` when the scans
//! were enqueued). Idempotent: the same scans give the same batches under the same numbers,
//! which workers count once, and a marker written last makes a later duplicate a no-op.

use futures::{StreamExt, TryStreamExt, stream};

use super::enqueue::JobBatches;
use super::{Coordinator, CoordinatorError};
use crate::contract::ids::{BatchNo, JobId};
use crate::contract::messages::{ComposeRanges, SplitObject, Work};
use crate::contract::rejects::ReportLocation;
use crate::fan_in::JobError;
use crate::fan_in::Ledger as _;
use crate::ingest::rejects::BatchRejects;
use crate::ingest::scan::{RangeScan, compose};
use crate::job::model::BatchStats;
use crate::plan::ranges::{composed_key, scan_key, unreadable_key};
use crate::port::objects::{Failure, ObjectError, Read};

/// Scan objects read at once.
const SCAN_READS: usize = 32;

/// What a compose message led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Composed {
    /// The parse batches were enqueued.
    Enqueued { batches: u64 },
    /// Nothing to do: the job has ended, or the batches were enqueued before.
    Nothing,
    /// A scan failed for good: the job was failed with this reason.
    Failed(String),
    /// The object changed or vanished after planning: it is one rejected object (its parse
    /// batches are counted, the first with the reject), under the job's tolerance.
    Rejected(String),
}

impl Coordinator {
    pub async fn compose_ranges(
        &self,
        message: &ComposeRanges,
    ) -> Result<Composed, CoordinatorError> {
        let job_id = &message.job_id;
        let object = &message.compose;
        let Some(job) = self.ledger.get(job_id).await? else {
            return Err(JobError::NotFound(job_id.clone()).into());
        };
        if job.status.is_final() {
            return Ok(Composed::Nothing);
        }
        let request = job.request();
        let report = self.report_location(&request);
        let marker = composed_key(&report, job_id, object);
        if self.objects.head(&report.bucket, &marker).await.is_ok() {
            tracing::info!(%job_id, "the parse batches were enqueued before");
            return Ok(Composed::Nothing);
        }
        if let Some(reason) = self
            .read_stored(&report.bucket, &unreadable_key(&report, job_id, object))
            .await?
        {
            let reason = String::from_utf8_lossy(&reason).into_owned();
            return self
                .reject_split_object(&job, &report, &marker, object, reason)
                .await;
        }
        let count = object.range_count();
        let scans: Vec<Option<RangeScan>> = stream::iter(0..count)
            .map(|index| self.read_scan(&report, job_id, object, index))
            .buffered(SCAN_READS)
            .try_collect()
            .await?;
        if let Some(missing) = scans.iter().position(Option::is_none) {
            if job.batches_failed == 0 {
                // Counted scans are stored before they are counted: this one is on its way.
                return Err(CoordinatorError::ScanMissing {
                    job_id: job_id.clone(),
                    index: missing as u64,
                });
            }
            let reason = format!(
                "the scan of range {missing} of s3://{}/{} failed for good, so row \
                 boundaries after it are unknown: {}",
                job.bucket,
                object.key,
                job.last_batch_error
                    .as_deref()
                    .unwrap_or("no reason recorded")
            );
            self.fail_job(job_id, &reason).await;
            return Ok(Composed::Failed(reason));
        }
        let scans: Vec<RangeScan> = scans.into_iter().flatten().collect();
        let spans = match compose(object.data_start, object.size, &scans) {
            Ok(spans) => spans,
            Err(error) => {
                let reason = format!(
                    "composing the scans of s3://{}/{} failed: {error}",
                    job.bucket, object.key
                );
                self.fail_job(job_id, &reason).await;
                return Ok(Composed::Failed(reason));
            }
        };
        let mut queue = self.queue();
        let batches = JobBatches {
            job_id,
            request: &request,
            report: &report,
        };
        for ((index, range), span) in (0..).zip(object.ranges()).zip(spans) {
            let batch = BatchNo(object.parse_batch(index));
            let task = object.task(range, Some(span));
            queue.push(batches.entry(batch, Work::Range(task))).await?;
        }
        queue.flush().await?;
        self.objects
            .put(&report.bucket, &marker, b"{}".to_vec(), "application/json")
            .await
            .map_err(CoordinatorError::Scans)?;
        tracing::info!(%job_id, ranges = count, "scans composed; parse batches enqueued");
        Ok(Composed::Enqueued { batches: count })
    }

    /// An object that changed or vanished after planning is rejected as one object, like a
    /// small one: the first parse batch reports it and counts it in `files_failed`, the others
    /// are counted empty, so the job ends by its tolerance instead of failing whole. The
    /// counts are exactly once and the report's key is fixed, so a repeated step changes
    /// nothing.
    async fn reject_split_object(
        &self,
        job: &crate::job::model::Job,
        report: &ReportLocation,
        marker: &str,
        object: &SplitObject,
        reason: String,
    ) -> Result<Composed, CoordinatorError> {
        let job_id = &job.job_id;
        let first = BatchNo(object.parse_batch(0));
        let mut rejects = BatchRejects::default();
        rejects.object(&object.key, reason.clone());
        self.objects
            .put(
                &report.bucket,
                &report.batch_key(job_id, first),
                rejects.to_jsonl().into_bytes(),
                "application/x-ndjson",
            )
            .await
            .map_err(CoordinatorError::Scans)?;
        let mut last = None;
        for index in 0..object.range_count() {
            let stats = BatchStats {
                files_failed: u64::from(index == 0),
                ..BatchStats::default()
            };
            let batch = BatchNo(object.parse_batch(index));
            last = Some(self.ledger.record_batch(job_id, batch, &stats).await?);
        }
        self.objects
            .put(&report.bucket, marker, b"{}".to_vec(), "application/json")
            .await
            .map_err(CoordinatorError::Scans)?;
        tracing::warn!(%job_id, key = %object.key, %reason, "a split object changed or vanished: rejected as one object");
        if let Some(recorded) = last
            && let Some(finished) = self.ledger.try_finish(recorded.job()).await?
        {
            self.metrics
                .emit(crate::app::metrics::job_finished("coordinator", &finished));
            self.announcer
                .announce(&finished, crate::app::completion::Claim::Held)
                .await?;
        }
        Ok(Composed::Rejected(reason))
    }

    /// A small object the coordinator stored beside the scans (a scan, a plan, a reason);
    /// `None` if it is not there.
    pub(super) async fn read_stored(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, CoordinatorError> {
        let body = match self.objects.get(bucket, key, Read::default()).await {
            Ok(body) => body,
            Err(ObjectError {
                failure: Failure::NotFound,
                ..
            }) => return Ok(None),
            Err(error) => return Err(CoordinatorError::Scans(error)),
        };
        let mut bytes = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut { body.reader }, &mut bytes)
            .await
            .map_err(|source| unreadable(key, source.into()))?;
        Ok(Some(bytes))
    }

    /// A stored object's JSON; `None` if it is not there.
    pub(super) async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<T>, CoordinatorError> {
        match self.read_stored(bucket, key).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|source| unreadable(key, source.into())),
            None => Ok(None),
        }
    }

    /// One stored scan; `None` if it is not there.
    async fn read_scan(
        &self,
        report: &ReportLocation,
        job_id: &JobId,
        object: &SplitObject,
        index: u64,
    ) -> Result<Option<RangeScan>, CoordinatorError> {
        let key = scan_key(report, job_id, object, index);
        self.read_json(&report.bucket, &key).await
    }
}

fn unreadable(key: &str, source: crate::BoxError) -> CoordinatorError {
    CoordinatorError::ScanUnreadable {
        key: key.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::config::CoordinatorConfig;
    use crate::app::test_rig::{NOTES_HEADER, Rig, notes_csv, notes_schema};
    use crate::contract::messages::{BatchMessage, JobRequest};
    use crate::fan_in::{Ledger, LedgerStore};
    use crate::job::model::JobStatus;

    fn coordinator(rig: &Rig, chunk: u64) -> Coordinator {
        rig.coordinator(CoordinatorConfig {
            range_chunk_bytes: chunk,
            ..Rig::coordinator_config()
        })
    }

    fn request(key: &str) -> JobRequest {
        JobRequest {
            job_id: Some("split".into()),
            key: Some(key.into()),
            schema: Some(notes_schema()),
            ..JobRequest::new("b", "")
        }
    }

    #[tokio::test]
    async fn scans_then_compose_then_parses_load_every_row_once_reading_at_most_twice() {
        let rig = Rig::new();
        let (text, expected) = notes_csv("row", 300, true);
        let size = text.len() as u64;
        rig.objects.insert("b", "big.csv", text);
        let coordinator = coordinator(&rig, 512);
        let worker = rig.worker(Rig::worker_config());

        let started = coordinator
            .start_job(request("big.csv"), None)
            .await
            .unwrap();
        let scans = rig.batches();
        let ranges = scans.len() as u64;
        assert!(ranges > 20, "{ranges} ranges");
        assert_eq!(
            started.listing.batches,
            2 * ranges,
            "scans and parses, sealed"
        );
        assert!(scans.iter().all(|b| matches!(b.work, Work::Scan(_))));
        for (i, scan) in scans.iter().enumerate() {
            worker.process_batch(scan).await.unwrap();
            if i == 3 {
                worker.process_batch(scan).await.unwrap(); // a redelivery
            }
            let woken = rig.compose_messages();
            assert_eq!(woken.len(), usize::from(i + 1 == scans.len()), "scan {i}");
            if let Some(compose) = woken.first() {
                assert_eq!(
                    coordinator.compose_ranges(compose).await.unwrap(),
                    Composed::Enqueued { batches: ranges }
                );
                // A duplicate wake-up (e.g. a redelivered last scan) enqueues nothing.
                assert_eq!(
                    coordinator.compose_ranges(compose).await.unwrap(),
                    Composed::Nothing
                );
            }
        }
        let parses = rig.batches();
        let numbers: Vec<u64> = parses.iter().map(|b| b.batch.get()).collect();
        assert_eq!(numbers, (ranges..2 * ranges).collect::<Vec<_>>());
        for parse in &parses {
            assert!(matches!(&parse.work, Work::Range(task) if task.rows.is_some()));
            worker.process_batch(parse).await.unwrap();
        }
        worker.process_batch(&parses[5]).await.unwrap(); // a redelivery

        let job = rig.job("split").await;
        assert_eq!(job.status, JobStatus::Complete, "{job:?}");
        assert_eq!(job.totals.rows_written, 300);
        assert_eq!(job.totals.rows_rejected, 0);
        assert_eq!(job.totals.rows_duplicate, 0);
        let data = size - NOTES_HEADER.len() as u64;
        assert_eq!(job.totals.bytes, data, "the input once");
        // Planning read the header's window once.
        let planning = crate::app::coordinator::object_plan::HEADER_WINDOW.min(size);
        assert_eq!(job.planning_bytes_read, planning);
        assert_eq!(
            job.totals.bytes_read,
            2 * data + planning,
            "scans + row spans: exactly twice, and the header's window"
        );
        assert_eq!(rig.rows(), expected);
    }

    /// A 280 KB header (over SQS's 256 KiB body limit) on a split object: no scan, compose
    /// or parse message carries it; each parse's worker reads it from the object, and those
    /// reads are counted in `bytes_read`.
    #[tokio::test]
    async fn a_header_wider_than_a_message_stays_in_the_object_and_each_parse_reads_it() {
        let rig = Rig::new();
        let extra = 40_000;
        let mut text = String::from("id,note");
        for c in 0..extra {
            text.push_str(&format!(",x{c:05}"));
        }
        text.push('\n');
        let header_end = text.len() as u64;
        assert!(header_end > 256 << 10, "wider than an SQS body");
        let empty = ",".repeat(extra);
        for i in 0..30 {
            text.push_str(&format!("row-{i:04},\"note, {i}\"{empty}\n"));
        }
        let size = text.len() as u64;
        rig.objects.insert("b", "wide.csv", text);
        let coordinator = coordinator(&rig, 256 << 10);
        let worker = rig.worker(Rig::worker_config());

        coordinator
            .start_job(request("wide.csv"), None)
            .await
            .unwrap();
        let small = |body: String| assert!(body.len() < 16 << 10, "{} bytes", body.len());
        let scans = rig.batches();
        assert!(scans.len() >= 4, "{} ranges", scans.len());
        for scan in &scans {
            small(scan.to_json());
            assert!(scan.work.scan().unwrap().object.header_in_object);
            worker.process_batch(scan).await.unwrap();
        }
        let compose = rig.compose_messages().remove(0);
        small(serde_json::to_string(&compose).unwrap());
        coordinator.compose_ranges(&compose).await.unwrap();
        let parses = rig.batches();
        for parse in &parses {
            small(parse.to_json());
            assert!(
                matches!(&parse.work, Work::Range(task) if task.header.is_empty() && task.header_end == Some(header_end))
            );
            worker.process_batch(parse).await.unwrap();
        }

        let job = rig.job("split").await;
        assert_eq!(job.status, JobStatus::Complete, "{job:?}");
        assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (30, 0));
        let data = size - header_end;
        // Parses where a row starts read the header once each.
        let reading = parses
            .iter()
            .filter(|p| matches!(&p.work, Work::Range(task) if task.rows.is_some_and(|r| r.first < r.stop)))
            .count() as u64;
        assert!(reading >= 2, "{reading}");
        // Planning read a first window, then one as wide as the record cap.
        let windows = crate::app::coordinator::object_plan::HEADER_WINDOW
            + (crate::ingest::csv_stream::DEFAULT_MAX_RECORD_BYTES as u64 + 1).min(size);
        assert_eq!(job.planning_bytes_read, windows);
        assert_eq!(
            job.totals.bytes_read,
            2 * data + reading * header_end + windows
        );
        let mut rows = rig.rows();
        rows.sort();
        assert_eq!(rows.len(), 30);
        assert_eq!(rows[7], ("row-0007".to_string(), "note, 7".to_string()));
    }

    #[tokio::test]
    async fn an_object_of_one_range_is_parsed_without_a_scan() {
        let rig = Rig::new();
        let (text, _) = notes_csv("row", 10, true);
        rig.objects.insert("b", "one.csv", text.clone());
        let coordinator = coordinator(&rig, text.len() as u64 - 5);
        let started = coordinator
            .start_job(request("one.csv"), None)
            .await
            .unwrap();
        assert_eq!(started.listing.batches, 1);
        let batches = rig.batches();
        assert!(batches[0].work.scan().is_none());
        rig.worker(Rig::worker_config())
            .process_batch(&batches[0])
            .await
            .unwrap();
        let job = rig.job("split").await;
        assert_eq!(
            (job.status, job.totals.rows_written),
            (JobStatus::Complete, 10)
        );
    }

    /// A split job whose scans have all run but the first.
    async fn every_scan_but_the_first() -> (Rig, Coordinator, Vec<BatchMessage>) {
        let rig = Rig::new();
        let (text, _) = notes_csv("row", 40, true);
        rig.objects.insert("b", "big.csv", text);
        let coordinator = coordinator(&rig, 256);
        coordinator
            .start_job(request("big.csv"), None)
            .await
            .unwrap();
        let scans = rig.batches();
        let worker = rig.worker(Rig::worker_config());
        for scan in &scans[1..] {
            worker.process_batch(scan).await.unwrap();
        }
        (rig, coordinator, scans)
    }

    #[tokio::test]
    async fn a_scan_that_failed_for_good_fails_the_job_at_compose() {
        let (rig, coordinator, scans) = every_scan_but_the_first().await;
        assert!(rig.compose_messages().is_empty(), "one scan is still owed");
        let ledger = &rig.ledger;
        ledger
            .record_failed_batch(&"split".into(), BatchNo(0), "GET failed five times")
            .await
            .unwrap();
        let compose = ComposeRanges {
            job_id: "split".into(),
            compose: scans[0].work.scan().unwrap().object.clone(),
        };
        let outcome = coordinator.compose_ranges(&compose).await.unwrap();
        assert!(
            matches!(outcome, Composed::Failed(ref reason) if reason.contains("range 0")),
            "{outcome:?}"
        );
        let job = ledger.get(&"split".into()).await.unwrap().unwrap();
        assert_eq!(job.status, JobStatus::Failed);
        assert!(rig.batches().is_empty(), "no parse was enqueued");
    }

    /// A prefix job of one small object and one split object that is replaced after
    /// planning, with `tolerated` rejected objects: every message run until none is left.
    async fn replaced_in_a_prefix(tolerated: u64) -> (Rig, crate::job::model::Job) {
        let rig = Rig::new();
        let (small, _) = notes_csv("s", 3, true);
        rig.objects.insert("b", "in/a-small.csv", small);
        let (big, _) = notes_csv("row", 40, true);
        rig.objects.insert("b", "in/big.csv", big);
        let coordinator = coordinator(&rig, 256);
        let request = JobRequest {
            job_id: Some("split".into()),
            schema: Some(notes_schema()),
            tolerated_rejects: Some(crate::contract::rejects::RejectTolerance::Count(tolerated)),
            ..JobRequest::new("b", "in/")
        };
        coordinator.start_job(request, None).await.unwrap();
        let (replaced, _) = notes_csv("other", 40, true);
        rig.objects.insert("b", "in/big.csv", replaced);
        let worker = rig.worker(Rig::worker_config());
        loop {
            let batches = rig.batches();
            let composes = rig.compose_messages();
            if batches.is_empty() && composes.is_empty() {
                break;
            }
            for batch in &batches {
                worker.process_batch(batch).await.unwrap();
            }
            for compose in &composes {
                coordinator.compose_ranges(compose).await.unwrap();
                // A repeated step changes nothing.
                assert_eq!(
                    coordinator.compose_ranges(compose).await.unwrap(),
                    Composed::Nothing
                );
            }
        }
        let job = rig.job("split").await;
        (rig, job)
    }

    #[tokio::test]
    async fn a_split_object_replaced_inside_a_prefix_is_one_rejected_object_under_the_tolerance() {
        let (rig, job) = replaced_in_a_prefix(1).await;
        assert_eq!(job.status, JobStatus::Complete, "{job:?}");
        assert_eq!(
            job.totals.files_failed, 1,
            "one object, however many ranges"
        );
        assert_eq!(job.totals.rows_written, 3, "the small object's rows land");
        assert_eq!(job.batches_failed, 0);
        let reports = rig.objects.keys_under("b", "_rejects/split/batch-");
        assert_eq!(reports.len(), 1, "{reports:?}");
        let report = String::from_utf8(rig.objects.bytes("b", &reports[0]).unwrap()).unwrap();
        assert!(
            report.contains("\"key\":\"in/big.csv\"")
                && report.contains("the object changed after the job was planned"),
            "{report}"
        );
        // Past the tolerance the job fails, every valid row still landed.
        let (_, strict) = replaced_in_a_prefix(0).await;
        assert_eq!(strict.status, JobStatus::Failed, "{strict:?}");
        assert_eq!(
            (strict.totals.rows_written, strict.totals.files_failed),
            (3, 1)
        );
    }

    #[tokio::test]
    async fn a_scan_killed_on_its_last_delivery_gets_its_compose_woken_by_the_stuck_check() {
        let (rig, coordinator, _) = every_scan_but_the_first().await;
        // Scan 0 ran on its last delivery and was killed: marked, its deadline long past.
        let ledger = &rig.ledger;
        let past = crate::clock::now_ms() - 60_000;
        ledger
            .mark_last_attempt(&"split".into(), BatchNo(0), past)
            .await
            .unwrap();
        assert!(
            rig.compose_messages().is_empty(),
            "nothing woke the compose"
        );

        let checked = coordinator
            .check_stuck_jobs(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(checked.batches_failed, [("split".into(), 0)]);
        assert_eq!(checked.composes_woken, ["split".into()] as [JobId; 1]);
        let composes = rig.compose_messages();
        assert_eq!(composes.len(), 1, "the killed scan's object");
        let outcome = coordinator.compose_ranges(&composes[0]).await.unwrap();
        assert!(matches!(outcome, Composed::Failed(_)), "{outcome:?}");
        let job = rig.job("split").await;
        assert_eq!(job.status, JobStatus::Failed, "ended, not RUNNING: {job:?}");
        // The next check finds nothing more to wake.
        let again = coordinator
            .check_stuck_jobs(std::time::Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(again.composes_woken.is_empty());
    }
}
