//! A batch's rejects, collected while it loads, rendered as the JSON Lines report: one record
//! per rejected row (object key, line, reason, raw text capped) or rejected object (line 0).

use crate::contract::rejects::RejectRecord;
use crate::ingest::decode::RowReject;

/// Records kept per batch report; beyond it the rest are counted, not listed.
pub const MAX_RECORDS_PER_BATCH: usize = 10_000;

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
}
