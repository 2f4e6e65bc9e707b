//! Metrics in CloudWatch Embedded Metric Format: one JSON line on stdout per record, which
//! CloudWatch Logs turns into metrics with no API call and no extra latency. Namespace
//! `S3Fanout`, one dimension `Function`; job ids, batch numbers and buckets ride along as
//! properties (searchable in Logs Insights) instead of dimensions, since every distinct
//! dimension value is a billed custom metric.
//!
//! No EMF crate fitted: the maintained ones hang off the `metrics` facade and its global
//! recorder, while this needs three record shapes written at known points.

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::contract::ids::{BatchNo, JobId};
use crate::job::model::{BatchStats, Job, JobStatus};

pub const NAMESPACE: &str = "S3Fanout";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
    Seconds,
    CountPerSecond,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::CountPerSecond => "Count/Second",
        }
    }
}

/// One EMF record: metrics plus the properties that explain them.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRecord {
    /// Which record this is (`batch`, `job`, `stuck_jobs`), as the `Event` property.
    pub event: &'static str,
    /// The `Function` dimension.
    pub function: &'static str,
    pub timestamp_ms: u64,
    pub metrics: Vec<(&'static str, f64, Unit)>,
    pub properties: Map<String, Value>,
}

impl MetricRecord {
    fn new(event: &'static str, function: &'static str) -> Self {
        Self {
            event,
            function,
            timestamp_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            metrics: Vec::new(),
            properties: Map::new(),
        }
    }

    fn metric(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.metrics.push((name, value, unit));
        self
    }

    fn property(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.properties.insert(name.to_owned(), value.into());
        self
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, v, _)| *v)
    }

    /// The EMF document.
    pub fn to_emf(&self) -> Value {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [["Function"]],
                    "Metrics": self.metrics.iter()
                        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
                        .collect::<Vec<_>>(),
                }],
            }),
        );
        root.insert("Function".into(), self.function.into());
        root.insert("Event".into(), self.event.into());
        for (name, value) in &self.properties {
            root.insert(name.clone(), value.clone());
        }
        for (name, value, _) in &self.metrics {
            root.insert((*name).to_owned(), json!(value));
        }
        Value::Object(root)
    }
}

/// Per batch, by the worker that loaded it.
pub fn batch(
    job_id: &JobId,
    batch: BatchNo,
    bucket: &str,
    stats: &BatchStats,
    duration_ms: f64,
    counted: bool,
) -> MetricRecord {
    MetricRecord::new("batch", "worker")
        .property("JobId", job_id.as_str())
        .property("Batch", batch.get())
        .property("Bucket", bucket)
        .metric("Batches", 1.0, Unit::Count)
        .metric(
            "BatchesAlreadyCounted",
            f64::from(u8::from(!counted)),
            Unit::Count,
        )
        .metric("Objects", stats.files as f64, Unit::Count)
        .metric("ObjectsRejected", stats.files_failed as f64, Unit::Count)
        // Neither loaded nor failed: listed by an S3 Inventory, deleted since.
        .metric("ObjectsMissing", stats.files_missing as f64, Unit::Count)
        .metric(
            "ExportFilesMiscounted",
            stats.files_miscounted as f64,
            Unit::Count,
        )
        .metric(
            "ExportFilesCorrupt",
            stats.files_corrupt as f64,
            Unit::Count,
        )
        .metric("RowsWritten", stats.rows_written as f64, Unit::Count)
        .metric("RowsRejected", stats.rows_rejected as f64, Unit::Count)
        .metric("RowsDuplicate", stats.rows_duplicate as f64, Unit::Count)
        .metric("BytesRead", stats.bytes_read as f64, Unit::Bytes)
        .metric("WriteRetries", stats.write_retries as f64, Unit::Count)
        .metric("S3Throttles", stats.s3_throttles as f64, Unit::Count)
        .metric("BatchDuration", duration_ms, Unit::Milliseconds)
}

/// Once per job, by whichever function made its final transition.
pub fn job_finished(function: &'static str, job: &Job) -> MetricRecord {
    let seconds = job.duration_seconds.unwrap_or(0.0);
    MetricRecord::new("job", function)
        .property("JobId", job.job_id.as_str())
        .property("Status", job.status.as_str())
        .property("Bucket", job.bucket.as_str())
        .property("Prefix", job.prefix.as_str())
        .metric(
            "JobsCompleted",
            f64::from(u8::from(job.status == JobStatus::Complete)),
            Unit::Count,
        )
        .metric(
            "JobsFailed",
            f64::from(u8::from(job.status == JobStatus::Failed)),
            Unit::Count,
        )
        .metric(
            "JobRowsWritten",
            job.totals.rows_written as f64,
            Unit::Count,
        )
        .metric(
            "JobRowsRejected",
            job.totals.rows_rejected as f64,
            Unit::Count,
        )
        .metric("JobWallTime", seconds, Unit::Seconds)
        .metric(
            "JobRowsPerSecond",
            job.rows_per_second().unwrap_or(0.0),
            Unit::CountPerSecond,
        )
}

/// By the coordinator's scheduled check: jobs RUNNING for longer than the threshold.
pub fn stuck_jobs(count: usize, oldest: Option<&str>, threshold_seconds: u64) -> MetricRecord {
    let mut record = MetricRecord::new("stuck_jobs", "coordinator")
        .property("ThresholdSeconds", threshold_seconds)
        .metric("StuckJobs", count as f64, Unit::Count);
    if let Some(job_id) = oldest {
        record = record.property("OldestStuckJobId", job_id);
    }
    record
}

/// Where records go.
pub trait MetricsSink: Send + Sync {
    fn emit(&self, record: MetricRecord);
}

/// Lambda: one line on stdout, which CloudWatch Logs reads as EMF.
pub struct StdoutSink;

impl MetricsSink for StdoutSink {
    fn emit(&self, record: MetricRecord) {
        println!("{}", record.to_emf());
    }
}

/// Local runs and tests: kept for the CLI to summarise.
#[derive(Default)]
pub struct MemorySink(Mutex<Vec<MetricRecord>>);

impl MemorySink {
    pub fn records(&self) -> Vec<MetricRecord> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl MetricsSink for MemorySink {
    fn emit(&self, record: MetricRecord) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_record_has_the_exact_emf_shape() {
        let stats = BatchStats {
            files: 3,
            files_failed: 1,
            rows_written: 250,
            rows_rejected: 2,
            rows_duplicate: 1,
            bytes: 4096,
            bytes_read: 4096,
            write_retries: 4,
            s3_throttles: 5,
            files_missing: 6,
            files_corrupt: 1,
            ..BatchStats::default()
        };
        let mut record = batch(&"job-1".into(), BatchNo(7), "in", &stats, 812.5, true);
        record.timestamp_ms = 1_764_123_373_000;
        let emf = record.to_emf();
        assert_eq!(
            emf["_aws"],
            json!({
                "Timestamp": 1_764_123_373_000u64,
                "CloudWatchMetrics": [{
                    "Namespace": "S3Fanout",
                    "Dimensions": [["Function"]],
                    "Metrics": [
                        {"Name": "Batches", "Unit": "Count"},
                        {"Name": "BatchesAlreadyCounted", "Unit": "Count"},
                        {"Name": "Objects", "Unit": "Count"},
                        {"Name": "ObjectsRejected", "Unit": "Count"},
                        {"Name": "ObjectsMissing", "Unit": "Count"},
                        {"Name": "ExportFilesMiscounted", "Unit": "Count"},
                        {"Name": "ExportFilesCorrupt", "Unit": "Count"},
                        {"Name": "RowsWritten", "Unit": "Count"},
                        {"Name": "RowsRejected", "Unit": "Count"},
                        {"Name": "RowsDuplicate", "Unit": "Count"},
                        {"Name": "BytesRead", "Unit": "Bytes"},
                        {"Name": "WriteRetries", "Unit": "Count"},
                        {"Name": "S3Throttles", "Unit": "Count"},
                        {"Name": "BatchDuration", "Unit": "Milliseconds"}
                    ]
                }]
            })
        );
        // Every metric and dimension named in `_aws` is a top-level member, as EMF requires.
        assert_eq!(emf["Function"], "worker");
        assert_eq!(emf["Event"], "batch");
        assert_eq!(emf["JobId"], "job-1");
        assert_eq!(emf["Batch"], 7);
        assert_eq!(emf["RowsWritten"], 250.0);
        assert_eq!(emf["BatchDuration"], 812.5);
        assert_eq!(emf["BatchesAlreadyCounted"], 0.0);
        assert_eq!(emf["ObjectsMissing"], 6.0);
        assert_eq!(
            (
                emf["ExportFilesMiscounted"].as_f64(),
                emf["ExportFilesCorrupt"].as_f64()
            ),
            (Some(0.0), Some(1.0))
        );
        for metric in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
        {
            let name = metric["Name"].as_str().unwrap();
            assert!(emf[name].is_number(), "{name} has a value");
        }
    }

    #[test]
    fn a_job_record_counts_its_outcome() {
        let mut job = Job::new("job-2", "in", "data/");
        job.status = JobStatus::Failed;
        job.duration_seconds = Some(4.0);
        job.totals.rows_written = 100;
        let emf = job_finished("worker", &job).to_emf();
        assert_eq!(
            (emf["JobsCompleted"].as_f64(), emf["JobsFailed"].as_f64()),
            (Some(0.0), Some(1.0))
        );
        assert_eq!(emf["JobRowsPerSecond"], 25.0);
        assert_eq!(emf["Status"], "FAILED");
        assert_eq!(
            emf["_aws"]["CloudWatchMetrics"][0]["Metrics"][5],
            json!({"Name": "JobRowsPerSecond", "Unit": "Count/Second"})
        );
    }

    #[test]
    fn the_stuck_job_record_names_the_oldest() {
        let emf = stuck_jobs(2, Some("j-old"), 3600).to_emf();
        assert_eq!(emf["StuckJobs"], 2.0);
        assert_eq!(emf["OldestStuckJobId"], "j-old");
        assert_eq!(emf["Function"], "coordinator");
        assert_eq!(
            stuck_jobs(0, None, 60).to_emf().get("OldestStuckJobId"),
            None
        );
    }

    #[test]
    fn the_memory_sink_keeps_records() {
        let sink = MemorySink::default();
        sink.emit(stuck_jobs(1, None, 1));
        assert_eq!(sink.records()[0].value("StuckJobs"), Some(1.0));
    }
}
