//! The rejects' wire types: where a job's reports go, one report line, and how many
//! rejected rows a job tolerates.

use serde::{Deserialize, Serialize};

use crate::contract::ids::{BatchNo, JobId};

/// Where a job's reports go: `s3://{bucket}/{prefix}{job_id}/batch-NNNNNN.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLocation {
    pub bucket: String,
    pub prefix: String,
}

impl ReportLocation {
    pub fn batch_key(&self, job_id: &JobId, batch: BatchNo) -> String {
        format!("{}{job_id}/batch-{:06}.jsonl", self.prefix, batch.get())
    }

    pub fn job_uri(&self, job_id: &JobId) -> String {
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
    fn report_keys_are_deterministic_per_batch() {
        let location = ReportLocation {
            bucket: "b".into(),
            prefix: "_rejects/".into(),
        };
        assert_eq!(
            location.batch_key(&"j1".into(), BatchNo(12)),
            "_rejects/j1/batch-000012.jsonl"
        );
        assert_eq!(location.job_uri(&"j1".into()), "s3://b/_rejects/j1/");
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
