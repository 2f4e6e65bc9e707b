//! A batch's rejects, collected while it loads, rendered as the JSON Lines report: one record
//! per rejected row (object key, line, reason, raw text capped) or rejected object (line 0).
//! Each is also logged at warn with its object, line and reason (which names the column),
//! never with the row's contents: the report's `raw` is the one place those go.

use crate::contract::rejects::RejectRecord;
use crate::ingest::decode::RowReject;
use crate::ingest::typing::error::cap;

/// Records kept per batch report; beyond it the rest are counted, not listed.
pub const MAX_RECORDS_PER_BATCH: usize = 10_000;
/// Reasons are cut to this many bytes (one a server sent, or one quoting a long error).
pub const MAX_REASON_BYTES: usize = 512;

/// A batch's rejects, collected while it loads.
#[derive(Debug, Default)]
pub struct BatchRejects {
    records: Vec<RejectRecord>,
    dropped: u64,
}

impl BatchRejects {
    pub fn row(&mut self, key: &str, reject: RowReject) {
        let reason = cap(&reject.reason, MAX_REASON_BYTES);
        tracing::warn!(key, line = reject.line, byte_offset = reject.byte_offset, reason = %reason, "row rejected");
        self.push(RejectRecord {
            key: key.to_owned(),
            line: reject.line,
            byte_offset: reject.byte_offset,
            reason,
            raw: reject.raw,
        });
    }

    pub fn object(&mut self, key: &str, reason: String) {
        let reason = cap(&reason, MAX_REASON_BYTES);
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

    /// Renames the rejects of `from` as `to`'s, their lines and byte offsets moved by
    /// `line` and `offset` (an inflated object's part names the object it came from; an
    /// object's own rejects keep line 0).
    pub fn relocate(
        &mut self,
        from: &str,
        to: &str,
        line: impl Fn(u64) -> u64,
        offset: impl Fn(u64) -> u64,
    ) {
        for record in self.records.iter_mut().filter(|r| r.key == from) {
            record.key = to.to_owned();
            record.line = line(record.line);
            record.byte_offset = record.byte_offset.map(&offset);
        }
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
    fn reasons_are_capped() {
        let mut rejects = BatchRejects::default();
        rejects.object("k", "x".repeat(10 * MAX_REASON_BYTES));
        let reject = RowReject {
            byte_offset: None,
            line: 1,
            reason: "é".repeat(MAX_REASON_BYTES),
            raw: String::new(),
        };
        rejects.row("k", reject);
        for record in rejects.records() {
            assert!(record.reason.len() <= MAX_REASON_BYTES + '…'.len_utf8());
            assert!(record.reason.ends_with('…'));
        }
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
