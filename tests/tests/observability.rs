//! What an operator sees: JSON log lines that carry the job, batch and message ids; one EMF
//! metric record per batch and one per job; the stuck-job check.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use serde_json::Value;
use shared::app::metrics::MemorySink;
use shared::contract::messages::JobRequest;
use shared::fan_in::Ledger as _;
use shared::fan_in::LedgerStore as _;
use shared::job::model::{Job, JobId, JobStatus};

/// Collects formatted log lines in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[tokio::test]
async fn logs_carry_job_batch_and_message_ids_and_metrics_come_once_per_batch_and_job() {
    let env = TestEnv::new(default_servers(), "observability").await;
    let spec = SampleSpec::new("o/", 6, 20);
    spec.upload(&env.clients.s3, &env.resources.bucket, 6, || {})
        .await
        .unwrap();
    env.put(
        "o/bad.csv",
        "timestamp,temp,humidity,measure_point\n2025-11-26 00:00:01 UTC,x,1,B\n",
    )
    .await;

    // The Lambda functions' log format: JSON with the open spans listed.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut pipeline = env.pipeline();
    pipeline.coordinator.batch_size = 3; // 7 objects: 3 batches
    let job = pipeline
        .run(JobRequest::new(&env.resources.bucket, "o/"), |_| {})
        .await
        .unwrap();
    assert_eq!(job.status, JobStatus::Complete);

    let lines = captured.lines();
    let counted: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "batch counted")
        .collect();
    assert_eq!(counted.len(), 3, "one line per batch");
    for line in &counted {
        let message_span = line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "message")
            .expect("the message span is listed");
        assert_eq!(message_span["job_id"], job.job_id.as_str());
        assert!(message_span["batch"].is_number());
        assert!(!message_span["message_id"].as_str().unwrap().is_empty());
    }
    // A row reject names its object through the object span, and its job through the message.
    let reject = lines
        .iter()
        .find(|l| l["fields"]["message"] == "row rejected")
        .expect("the reject is logged");
    assert_eq!(reject["span"]["name"], "object");
    assert_eq!(reject["span"]["key"], "o/bad.csv");
    assert_eq!(reject["spans"][0]["job_id"], job.job_id.as_str());
    assert_eq!(reject["fields"]["line"], 2);
    // No row payloads at info level: the raw text is only in the rejects report.
    assert!(
        !lines
            .iter()
            .any(|l| l.to_string().contains("2025-11-26 00:00:01 UTC,x,1,B"))
    );
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "job finished")
        .collect();
    assert_eq!(finished.len(), 1);

    let records = pipeline.metrics.records();
    let batches: Vec<_> = records.iter().filter(|r| r.event == "batch").collect();
    assert_eq!(batches.len(), 3);
    let rows: f64 = batches
        .iter()
        .map(|r| r.value("RowsWritten").unwrap())
        .sum();
    assert_eq!(rows, 120.0);
    let rejected: f64 = batches
        .iter()
        .map(|r| r.value("RowsRejected").unwrap())
        .sum();
    assert_eq!(rejected, 1.0);
    let jobs: Vec<_> = records.iter().filter(|r| r.event == "job").collect();
    assert_eq!(
        jobs.len(),
        1,
        "one job record, from whichever function finished it"
    );
    assert_eq!(jobs[0].value("JobsCompleted"), Some(1.0));
    assert_eq!(jobs[0].properties["JobId"], job.job_id.as_str());
}

#[tokio::test]
async fn the_stuck_job_check_reports_only_jobs_running_past_the_threshold() {
    let env = TestEnv::new(default_servers(), "stuck").await;
    let ledger = env.ledger();
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut old = Job::new("job-old", &env.resources.bucket, "");
    old.started_ms = now_ms - 2 * 3600 * 1000;
    let mut older = Job::new("job-older", &env.resources.bucket, "");
    older.started_ms = now_ms - 3 * 3600 * 1000;
    let fresh = Job::new("job-fresh", &env.resources.bucket, "");
    let mut done = Job::new("job-done", &env.resources.bucket, "");
    done.started_ms = old.started_ms;
    done.status = JobStatus::Complete;
    for job in [&old, &older, &fresh, &done] {
        ledger.create(job).await.unwrap();
    }

    let sink = Arc::new(MemorySink::default());
    let coordinator = env
        .coordinator(env.pipeline().coordinator)
        .with_metrics(sink.clone());
    let stuck = coordinator
        .check_stuck_jobs(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        stuck.job_ids,
        vec![JobId::new("job-older"), JobId::new("job-old")]
    );
    let record = &sink.records()[0];
    assert_eq!(record.value("StuckJobs"), Some(2.0));
    assert_eq!(record.properties["OldestStuckJobId"], "job-older");

    let none = coordinator
        .check_stuck_jobs(Duration::from_secs(4 * 3600))
        .await
        .unwrap();
    assert!(none.job_ids.is_empty());
    assert_eq!(
        sink.records()[1].value("StuckJobs"),
        Some(0.0),
        "0 is reported too"
    );
}

/// `s3-fanout jobs` lists the newest jobs first, as many as asked for.
#[tokio::test]
async fn recent_jobs_are_listed_newest_first() {
    let env = TestEnv::new(default_servers(), "jobs-list").await;
    let ledger = env.ledger();
    for (id, started_ms) in [("job-old", 1_000), ("job-new", 3_000), ("job-mid", 2_000)] {
        let mut job = Job::new(id, &env.resources.bucket, "p/");
        job.started_ms = started_ms;
        ledger.create(&job).await.unwrap();
    }
    let recent = ledger.recent_jobs(2).await.unwrap();
    let ids: Vec<&str> = recent.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, vec!["job-new", "job-mid"]);
    assert!(recent.iter().all(|j| j.status == JobStatus::Running));
}
