//! Large-object planning: the bytes after the header split into ranges of `chunk` bytes. Which
//! rows a range owns is exact (see [`crate::ingest::scan`]): a row belongs to the range
//! holding its first byte, S3 Select's ScanRange rule.
//!
//! An object of one range is parsed at once (its first row is just past the header). An
//! object of `n > 1` ranges takes `2n` batches: batches `0..n` scan one range each, and once
//! all are counted the coordinator composes the scans and enqueues batches `n..2n`, which
//! parse one range each from its exact first row. A JSON Lines object needs no scan (a line
//! is a record: a range's first line starts after its first newline), so its `n` ranges are
//! `n` parse batches at once ([`SplitObject::by_lines`]).

use crate::contract::ids::JobId;
use crate::contract::messages::{RangeTask, RowSpan, SplitObject};
use crate::contract::rejects::ReportLocation;

/// Default range size: big enough that per-range costs vanish, small enough for one worker.
pub const DEFAULT_CHUNK_BYTES: u64 = 32 << 20;

/// Splits `[data_start, size)` into ranges of `chunk` bytes (the last one shorter).
pub fn plan_ranges(data_start: u64, size: u64, chunk: u64) -> Vec<(u64, u64)> {
    let chunk = chunk.max(1);
    let mut ranges = Vec::new();
    let mut start = data_start;
    while start < size {
        let end = start.saturating_add(chunk).min(size);
        ranges.push((start, end));
        start = end;
    }
    ranges
}

impl SplitObject {
    /// The ranges, in order.
    pub fn ranges(&self) -> Vec<(u64, u64)> {
        plan_ranges(self.data_start, self.size, self.chunk)
    }

    pub fn range_count(&self) -> u64 {
        (self.size.saturating_sub(self.data_start)).div_ceil(self.chunk.max(1))
    }

    /// Range `index` as a task; `rows` once the scans are composed.
    pub fn task(&self, (start, end): (u64, u64), rows: Option<RowSpan>) -> RangeTask {
        RangeTask {
            key: self.key.clone(),
            etag: self.etag.clone(),
            start,
            end,
            header: self.header.clone(),
            rows,
            header_end: self.header_in_object.then_some(self.data_start),
        }
    }

    /// Batches the object takes: `n` parses, plus `n` scans first when `n > 1` (never for
    /// an object split by lines).
    pub fn total_batches(&self) -> u64 {
        match self.range_count() {
            n if self.by_lines => n,
            0 | 1 => self.range_count(),
            n => 2 * n,
        }
    }

    /// Whether its ranges are scanned before they are parsed.
    pub fn scanned(&self) -> bool {
        !self.by_lines && self.range_count() > 1
    }

    /// The batch that scans range `index`.
    pub fn scan_batch(&self, index: u64) -> u64 {
        self.first_batch + index
    }

    /// The batch that parses range `index` (after the `n` scans; the only batch of an object
    /// of one range).
    pub fn parse_batch(&self, index: u64) -> u64 {
        match self.range_count() {
            _ if self.by_lines => self.first_batch + index,
            0 | 1 => self.first_batch + index,
            n => self.first_batch + n + index,
        }
    }
}

/// Where a split object's scans and compose marker are stored, next to the job's rejects
/// reports: one folder per object, named by its first batch (a prefix job may split several,
/// and counts a folder's scans to know when all of an object's are in).
pub fn scan_folder(report: &ReportLocation, job_id: &JobId, object: &SplitObject) -> String {
    format!("{}{job_id}/scans/{:06}/", report.prefix, object.first_batch)
}

/// Where the scan of range `index` is stored.
pub fn scan_key(
    report: &ReportLocation,
    job_id: &JobId,
    object: &SplitObject,
    index: u64,
) -> String {
    format!(
        "{}range-{index:06}.json",
        scan_folder(report, job_id, object)
    )
}

/// Written once the parse batches are enqueued: a later compose message has nothing to do.
pub fn composed_key(report: &ReportLocation, job_id: &JobId, object: &SplitObject) -> String {
    format!("{}composed.json", scan_folder(report, job_id, object))
}

/// Where the coordinator stores a split object's plan when it enqueues its scans, so that
/// whoever finds a scan killed on its last delivery (the stuck check) can wake its compose.
pub fn object_key(report: &ReportLocation, job_id: &JobId, object: &SplitObject) -> String {
    format!("{}object.json", scan_folder(report, job_id, object))
}

/// Where a scan that found the object changed or gone stores why: the compose step then
/// rejects the object (one rejected object, under the job's tolerance) instead of parsing it.
pub fn unreadable_key(report: &ReportLocation, job_id: &JobId, object: &SplitObject) -> String {
    format!("{}unreadable.txt", scan_folder(report, job_id, object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_data_once() {
        assert_eq!(plan_ranges(10, 35, 10), vec![(10, 20), (20, 30), (30, 35)]);
        assert_eq!(plan_ranges(10, 10, 10), vec![]);
        assert_eq!(plan_ranges(0, 3, 0), vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(plan_ranges(4, 5, 100), vec![(4, 5)]);
    }

    #[test]
    fn a_split_object_counts_its_ranges_and_batches() {
        let object = |size, chunk| SplitObject {
            key: "k".into(),
            etag: "e".into(),
            header: vec![],
            data_start: 10,
            size,
            chunk,
            first_batch: 7,
            by_lines: false,
            header_in_object: false,
        };
        for (size, chunk, ranges, batches) in [(35, 10, 3, 6), (20, 10, 1, 1), (10, 10, 0, 0)] {
            let object = object(size, chunk);
            assert_eq!(object.ranges().len() as u64, ranges);
            assert_eq!(object.range_count(), ranges);
            assert_eq!(object.total_batches(), batches);
            if ranges > 1 {
                assert_eq!(object.scan_batch(0), 7);
                assert_eq!(object.parse_batch(0), 7 + ranges);
                assert_eq!(object.parse_batch(ranges - 1), 7 + batches - 1);
            }
            assert_eq!(object.scanned(), ranges > 1);
            // Split by lines: the same ranges, parsed at once, no scans.
            let lines = SplitObject {
                by_lines: true,
                ..object
            };
            assert_eq!(lines.total_batches(), ranges);
            assert!(!lines.scanned());
            if ranges > 0 {
                assert_eq!(lines.parse_batch(ranges - 1), 7 + ranges - 1);
            }
        }
    }
}
