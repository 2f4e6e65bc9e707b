//! The rejects report: one JSON Lines object per batch under a job's report prefix, one record
//! per rejected row (object key, line, reason, raw text capped) or rejected object (line 0).
//! The key is a function of (job, batch), so a redelivered batch overwrites its own report.
//! And the job's tolerance: how many rejects it accepts before it ends FAILED.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::decode::RowReject;

/// Records kept per batch report; beyond it the rest are counted, not listed.
pub const MAX_RECORDS_PER_BATCH: usize = 10_000;

#[derive(Debug, Error)]
#[error("writing the rejects report s3://{bucket}/{key} failed")]
pub struct ReportError {
    pub bucket: String,
    pub key: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Where a job's reports go: `s3://{bucket}/{prefix}{job_id}/batch-NNNNNN.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLocation {
    pub bucket: String,
    pub prefix: String,
}

impl ReportLocation {
    pub fn batch_key(&self, job_id: &str, batch: u64) -> String {
        format!("{}{job_id}/batch-{batch:06}.jsonl", self.prefix)
    }

    pub fn job_uri(&self, job_id: &str) -> String {
        format!("s3://{}/{}{job_id}/", self.bucket, self.prefix)
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRecord {
    pub key: String,
    /// 0 when the whole object was rejected.
    pub line: u64,
    /// Where the row starts in the object (ranged reads of large objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<u64>,
    pub reason: String,
    #[serde(default)]
    pub raw: String,
}

/// A batch's rejects, collected while it loads.
#[derive(Debug, Default)]
pub struct BatchRejects {
    records: Vec<RejectRecord>,
    dropped: u64,
}

impl BatchRejects {
    pub fn row(&mut self, key: &str, reject: RowReject) {
        tracing::warn!(key, line = reject.line, byte_offset = reject.byte_offset, reason = %reject.reason, "row rejected");
        self.push(RejectRecord {
            key: key.to_owned(),
            line: reject.line,
            byte_offset: reject.byte_offset,
            reason: reject.reason,
            raw: reject.raw,
        });
    }

    pub fn object(&mut self, key: &str, reason: String) {
        tracing::warn!(key, %reason, "object rejected");
        self.push(RejectRecord {
            key: key.to_owned(),
            line: 0,
            byte_offset: None,
            reason,
            raw: String::new(),
        });
    }

    fn push(&mut self, record: RejectRecord) {
        if self.records.len() < MAX_RECORDS_PER_BATCH {
            self.records.push(record);
        } else {
            self.dropped += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn records(&self) -> &[RejectRecord] {
        &self.records
    }

    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for record in &self.records {
            // Strings and integers always serialize.
            out.push_str(&serde_json::to_string(record).expect("a reject record serializes"));
            out.push('\n');
        }
        if self.dropped > 0 {
            let note = serde_json::json!({"truncated": self.dropped, "reason": format!("more than {MAX_RECORDS_PER_BATCH} rejects in this batch; the rest are counted only")});
            out.push_str(&note.to_string());
            out.push('\n');
        }
        out
    }

    /// Writes the batch's report (nothing if there were no rejects); returns its URI.
    pub async fn write(
        &self,
        s3: &aws_sdk_s3::Client,
        location: &ReportLocation,
        job_id: &str,
        batch: u64,
    ) -> Result<Option<String>, ReportError> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = location.batch_key(job_id, batch);
        s3.put_object()
            .bucket(&location.bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .body(self.to_jsonl().into_bytes().into())
            .send()
            .await
            .map_err(|e| ReportError {
                bucket: location.bucket.clone(),
                key: key.clone(),
                source: e.into(),
            })?;
        Ok(Some(format!("s3://{}/{key}", location.bucket)))
    }
}

/// How many rejected rows a job tolerates before it ends FAILED (all valid rows still land).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectTolerance {
    /// At most this many rejected rows.
    Count(u64),
    /// At most this percentage of all rows read.
    Percent(f64),
}

impl RejectTolerance {
    /// Why the job must fail, if the rejects exceed the tolerance.
    pub fn exceeded(&self, rows_rejected: u64, rows_read: u64) -> Option<String> {
        match *self {
            RejectTolerance::Count(max) if rows_rejected > max => Some(format!(
                "{rows_rejected} rows rejected, more than the {max} tolerated"
            )),
            RejectTolerance::Percent(max) if rows_read > 0 => {
                let percent = rows_rejected as f64 * 100.0 / rows_read as f64;
                (percent > max).then(|| {
                    format!("{percent:.2}% of rows rejected ({rows_rejected} of {rows_read}), more than the {max}% tolerated")
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_name_object_line_reason_and_raw_text() {
        let mut rejects = BatchRejects::default();
        rejects.row(
            "data/a.csv",
            RowReject {
                byte_offset: None,
                line: 7,
                reason: "column temp: invalid number \"x\"".into(),
                raw: "t,x,1,K".into(),
            },
        );
        rejects.object(
            "data/b.csv",
            "header lacks required column(s) [\"humidity\"]".into(),
        );
        let lines: Vec<RejectRecord> = rejects
            .to_jsonl()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0].key, "data/a.csv");
        assert_eq!((lines[0].line, lines[0].raw.as_str()), (7, "t,x,1,K"));
        assert_eq!(lines[1].line, 0);
        assert!(lines[1].reason.contains("humidity"));
    }

    #[test]
    fn the_report_is_capped_and_says_so() {
        let mut rejects = BatchRejects::default();
        for line in 0..(MAX_RECORDS_PER_BATCH as u64 + 5) {
            rejects.row(
                "k",
                RowReject {
                    byte_offset: None,
                    line,
                    reason: "r".into(),
                    raw: String::new(),
                },
            );
        }
        let text = rejects.to_jsonl();
        assert_eq!(text.lines().count(), MAX_RECORDS_PER_BATCH + 1);
        assert!(text.lines().last().unwrap().contains("\"truncated\":5"));
    }

    #[test]
    fn report_keys_are_deterministic_per_batch() {
        let location = ReportLocation {
            bucket: "b".into(),
            prefix: "_rejects/".into(),
        };
        assert_eq!(
            location.batch_key("j1", 12),
            "_rejects/j1/batch-000012.jsonl"
        );
        assert_eq!(location.job_uri("j1"), "s3://b/_rejects/j1/");
    }

    #[test]
    fn tolerance_by_count_and_by_percent() {
        assert_eq!(RejectTolerance::Count(2).exceeded(2, 100), None);
        assert!(
            RejectTolerance::Count(2)
                .exceeded(3, 100)
                .unwrap()
                .contains("3 rows rejected")
        );
        assert_eq!(RejectTolerance::Percent(1.0).exceeded(1, 100), None);
        assert!(
            RejectTolerance::Percent(1.0)
                .exceeded(2, 100)
                .unwrap()
                .contains("2.00%")
        );
        assert_eq!(RejectTolerance::Percent(0.0).exceeded(0, 0), None);
        let parsed: RejectTolerance = serde_json::from_str(r#"{"percent": 1.5}"#).unwrap();
        assert_eq!(parsed, RejectTolerance::Percent(1.5));
        let parsed: RejectTolerance = serde_json::from_str(r#"{"count": 0}"#).unwrap();
        assert_eq!(parsed, RejectTolerance::Count(0));
    }
}
