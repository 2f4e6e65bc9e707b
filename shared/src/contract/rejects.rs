//! The rejects' wire types: where a job's reports go, one report line, and how many
//! rejected rows and rejected objects a job tolerates.

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

    /// The report of part `part` of a batch (part 0 is the batch's own key), so the parts
    /// of a resumed batch keep their rejects apart and a redelivered part overwrites its own.
    pub fn part_key(&self, job_id: &JobId, batch: BatchNo, part: u32) -> String {
        match part {
            0 => self.batch_key(job_id, batch),
            _ => format!(
                "{}{job_id}/batch-{:06}-part-{part:03}.jsonl",
                self.prefix,
                batch.get()
            ),
        }
    }

    /// The report of plain part `index` of an inflated object (part `part` of its chain), so
    /// the object's parts, which share its batch number, keep their rejects apart.
    pub fn inflated_part_key(
        &self,
        job_id: &JobId,
        batch: BatchNo,
        index: u64,
        part: u32,
    ) -> String {
        let chain = match part {
            0 => String::new(),
            _ => format!("-part-{part:03}"),
        };
        format!(
            "{}{job_id}/batch-{:06}-inflated-{index:06}{chain}.jsonl",
            self.prefix,
            batch.get()
        )
    }

    /// Where an inflated object's scratch objects live: its parts, their counters and the
    /// list of parts (`docs/compressed.md`), removed once the object is counted.
    pub fn inflate_prefix(&self, job_id: &JobId, batch: BatchNo) -> String {
        format!("{}{job_id}/inflate/{:06}/", self.prefix, batch.get())
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

/// How many rejects a job tolerates before it ends FAILED (all valid rows still land). It
/// applies to rejected rows and, separately, to rejected objects (a bad header, gone,
/// forbidden, corrupt): either beyond it fails the job.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectTolerance {
    /// At most this many rejected rows, and at most this many rejected objects.
    Count(u64),
    /// At most this percentage of all rows read, and of all objects read.
    Percent(f64),
}

impl RejectTolerance {
    /// Why the job must fail, if its rejected rows exceed the tolerance.
    pub fn exceeded(&self, rows_rejected: u64, rows_read: u64) -> Option<String> {
        self.check("rows", rows_rejected, rows_read)
    }

    /// Why the job must fail, if its rejected objects exceed the tolerance (`objects` counts
    /// every object read, rejected ones included).
    pub fn exceeded_objects(&self, objects_rejected: u64, objects: u64) -> Option<String> {
        self.check("objects", objects_rejected, objects)
    }

    fn check(&self, what: &str, rejected: u64, total: u64) -> Option<String> {
        match *self {
            RejectTolerance::Count(max) if rejected > max => Some(format!(
                "{rejected} {what} rejected, more than the {max} tolerated"
            )),
            RejectTolerance::Percent(max) if total > 0 => {
                let percent = rejected as f64 * 100.0 / total as f64;
                (percent > max).then(|| {
                    format!("{percent:.2}% of {what} rejected ({rejected} of {total}), more than the {max}% tolerated")
                })
            }
            _ => None,
        }
    }

    /// As the summary shows it.
    pub fn describe(&self) -> String {
        match self {
            RejectTolerance::Count(max) => format!("at most {max} rows and {max} objects rejected"),
            RejectTolerance::Percent(max) => {
                format!("at most {max}% of rows and {max}% of objects rejected")
            }
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
        assert_eq!(
            location.part_key(&"j1".into(), BatchNo(12), 0),
            "_rejects/j1/batch-000012.jsonl"
        );
        assert_eq!(
            location.part_key(&"j1".into(), BatchNo(12), 3),
            "_rejects/j1/batch-000012-part-003.jsonl"
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

    #[test]
    fn rejected_objects_are_held_to_the_same_tolerance() {
        assert_eq!(RejectTolerance::Count(0).exceeded_objects(0, 20), None);
        assert_eq!(
            RejectTolerance::Count(0).exceeded_objects(1, 20).as_deref(),
            Some("1 objects rejected, more than the 0 tolerated")
        );
        assert_eq!(RejectTolerance::Percent(10.0).exceeded_objects(2, 20), None);
        assert!(
            RejectTolerance::Percent(10.0)
                .exceeded_objects(3, 20)
                .unwrap()
                .contains("15.00% of objects rejected (3 of 20)")
        );
    }
}
