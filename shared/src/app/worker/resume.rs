//! Resumable batches: a worker that nears its deadline stops every object at a row boundary
//! and hands what is left to a continuation message for the same batch, carrying the
//! counters of every part so far. Only the part that finishes the batch counts it, once, with
//! the sum; the ledger's exactly-once condition on the batch number does the rest. Why
//! duplicates of either part are harmless: `docs/resumable.md`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::contract::messages::{
    BatchMessage, ObjectTail, RangeTask, Resumed, RowGroupTask, RowSpan, Unit, Work, carried_header,
};
use crate::ingest::compression::Encoding;
use crate::job::model::BatchStats;

/// When decoding must stop: once `due`, it stays due, so every object of the part stops at
/// its next row and the part ends promptly.
#[derive(Debug, Default)]
pub struct Stop {
    at: Option<Instant>,
    hit: AtomicBool,
    /// Due early because the job's pacer had no slot left before `at`.
    paced: AtomicBool,
}

impl Stop {
    /// Never due: the batch runs to its end in this call.
    pub fn never() -> Self {
        Self::default()
    }

    pub fn at(at: Instant) -> Self {
        Self {
            at: Some(at),
            ..Self::default()
        }
    }

    /// When decoding must stop (`None`: never). Writes of a capped job are paced to begin
    /// before it, so the rows in flight at the stop are what the share writes by then.
    pub fn due_at(&self) -> Option<Instant> {
        self.at
    }

    /// Due now: the job's pacer is booked up to the stop, so a row decoded now could not
    /// be written before it.
    pub fn paced_out(&self) {
        self.paced.store(true, Ordering::Relaxed);
        self.hit.store(true, Ordering::Relaxed);
    }

    /// Whether the stop came from the pacer: a part that then did nothing still hands on
    /// (the instance's share went to the job's other rows), rather than failing.
    pub fn paced(&self) -> bool {
        self.paced.load(Ordering::Relaxed)
    }

    /// Due `margin` before `deadline`, but leaving at least a tenth of the time from `now`
    /// to work: a margin as long as the invocation would stop every part before its first
    /// row, and the batch would fail as making no progress until it was dead-lettered.
    pub fn before(deadline: Instant, margin: Duration, now: Instant) -> Self {
        let most = deadline.saturating_duration_since(now).mul_f64(0.9);
        Self::at(deadline - margin.min(most))
    }

    pub fn due(&self) -> bool {
        if self.hit.load(Ordering::Relaxed) {
            return true;
        }
        let due = self.at.is_some_and(|at| Instant::now() >= at);
        if due {
            self.hit.store(true, Ordering::Relaxed);
        }
        due
    }
}

/// Work a stopped part did not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Left {
    /// An object not started.
    Object(String),
    /// A range (or a plain object from its next row) still to read.
    Range(RangeTask),
    /// A compressed object's rows after the first `rows_done`.
    Tail(ObjectTail),
    /// A Parquet task's rows after its first `rows_done`.
    RowGroups(RowGroupTask),
}

impl Left {
    /// A unit left whole for a later part.
    pub fn untouched(unit: Unit<'_>) -> Left {
        match unit {
            Unit::Object(key) => Left::Object(key.to_owned()),
            Unit::Range(task) => Left::Range(task.clone()),
            Unit::Tail(tail) => Left::Tail(tail.clone()),
            Unit::RowGroups(task) => Left::RowGroups(task.clone()),
        }
    }

    /// The rest of a plain object read whole up to `next_row`; `None` if nothing is left.
    /// A header wider than [`INLINE_HEADER_BYTES`] (ending at `header_end`) is read again
    /// from the object by the continuation rather than carried.
    pub fn plain_rest(
        key: &str,
        etag: &str,
        (header, header_end): (&[String], u64),
        next_row: u64,
        size: u64,
    ) -> Option<Left> {
        let (header, header_end) = carried_header(header, header_end);
        (next_row < size).then(|| {
            Left::Range(RangeTask {
                key: key.to_owned(),
                etag: etag.to_owned(),
                start: next_row,
                end: size,
                header,
                rows: Some(RowSpan {
                    first: next_row,
                    stop: size,
                }),
                header_end,
            })
        })
    }

    /// The rest of a range read up to `next_row`; `None` if the range's rows are done (the
    /// next row belongs to the next range).
    pub fn range_rest(task: &RangeTask, next_row: u64) -> Option<Left> {
        let span = task.rows?;
        (next_row < task.end && next_row < span.stop).then(|| {
            Left::Range(RangeTask {
                start: next_row,
                rows: Some(RowSpan {
                    first: next_row,
                    stop: span.stop,
                }),
                ..task.clone()
            })
        })
    }
}

/// Where a decoder stopped at the stop, and what the object's read knew.
pub struct StoppedAt<'a> {
    /// Where the next row starts.
    pub next_row: u64,
    /// Records yielded so far (skipped ones included).
    pub records: u64,
    pub header: &'a [String],
    /// Where the header ends in the object (0: none was read from it).
    pub header_end: u64,
    /// The version read ("" if the GET named none).
    pub etag: &'a str,
    /// The object's size (a whole read) or the range's length.
    pub size: u64,
    /// Where a ranged read started; `None` for a whole object.
    pub read_from: Option<u64>,
    /// Rows have no byte offsets to resume at (Parquet): resumed by rows done.
    pub by_rows: bool,
}

/// What is left of `work` stopped `at`, with the input bytes and bytes read of the part
/// before it (the rest is counted by the part that reads it, so the parts add up to the
/// object; a compressed object counts its bytes in the part that finishes it, its rows being
/// numbered, not its bytes). A Parquet read fetches its bytes before its first row, and a
/// resumed part fetches them again: each part counts what it fetched as read, the input once.
/// `None`: nothing is left, the work is done.
pub fn rest_of(unit: Unit<'_>, at: &StoppedAt<'_>) -> Option<(Left, u64, u64)> {
    let tail = |key: &str| ObjectTail {
        key: key.to_owned(),
        etag: at.etag.to_owned(),
        rows_done: at.records,
    };
    match unit {
        // A Parquet file cannot be entered at a byte: it resumes by rows done. It was
        // fetched whole before its first row, so those bytes were read, whatever is left.
        Unit::Object(key) if at.by_rows => Some((Left::Tail(tail(key)), 0, at.size)),
        // Nor can a compressed stream; how much of it was read is not known here (the
        // decoder counts decompressed bytes): the loader counts what the part took from
        // the stream (`received`), and the part that finishes it the whole object.
        Unit::Object(key) if Encoding::of_key(key).is_compressed() => {
            Some((Left::Tail(tail(key)), 0, 0))
        }
        Unit::Object(key) => Left::plain_rest(
            key,
            at.etag,
            (at.header, at.header_end),
            at.next_row,
            at.size,
        )
        .map(|left| (left, at.next_row, at.next_row)),
        Unit::Range(task) => Left::range_rest(task, at.next_row).map(|left| {
            let from = at.read_from.unwrap_or(task.start);
            let bytes = at.next_row.saturating_sub(task.start);
            (left, bytes, at.next_row.saturating_sub(from))
        }),
        // Its input is counted by the part that finishes it; its footer and column chunks
        // were fetched by this part (and will be again by the next): each fetch is read.
        Unit::RowGroups(task) => Some((
            Left::RowGroups(RowGroupTask {
                rows_done: at.records,
                ..task.clone()
            }),
            0,
            at.size,
        )),
        Unit::Tail(done) => Some((
            Left::Tail(ObjectTail {
                rows_done: at.records,
                ..done.clone()
            }),
            0,
            if at.by_rows { at.size } else { 0 },
        )),
    }
}

/// The continuation of `batch`: the same work with only what is `left`, and its progress
/// (the counters of every part so far, and the objects a key batch read partway).
pub fn continuation(batch: &BatchMessage, left: Vec<Left>, so_far: &BatchStats) -> BatchMessage {
    let mut resumed = Resumed {
        part: batch.part() + 1,
        carried: *so_far,
        ..Resumed::default()
    };
    let mut keys = Vec::new();
    // A range batch stays a range batch (row groups likewise); a key batch carries its
    // partly read objects in its progress.
    let mut rest = None;
    for item in left {
        match (item, &batch.work) {
            (Left::Object(key), _) => keys.push(key),
            (Left::Range(task), Work::Range(_)) => rest = Some(Work::Range(task)),
            // A part of an inflated object stays one (its line is moved by its worker).
            (Left::Range(range), Work::InflatedPart(part)) => {
                rest = Some(Work::InflatedPart(crate::contract::messages::PartTask {
                    range,
                    ..part.clone()
                }))
            }
            (Left::Range(task), _) => resumed.ranges.push(task),
            (Left::Tail(tail), _) => resumed.tails.push(tail),
            (Left::RowGroups(task), Work::RowGroups(_)) => rest = Some(Work::RowGroups(task)),
            (Left::RowGroups(task), _) => resumed.row_groups.push(task),
        }
    }
    // Listing order, so a part's log reads like the batch's.
    keys.sort();
    resumed.ranges.sort_by(|a, b| a.key.cmp(&b.key));
    resumed.tails.sort_by(|a, b| a.key.cmp(&b.key));
    let work = match (rest, &batch.work) {
        (Some(work), _) => work,
        (None, Work::Export { files, .. }) => Work::Export {
            keys,
            files: files.clone(),
        },
        (None, Work::InventoryObjects { .. }) => Work::InventoryObjects { keys },
        (None, _) => Work::Objects { keys },
    };
    BatchMessage {
        work,
        resumed: Some(resumed),
        ..batch.clone()
    }
}

/// The counters the earlier parts of `batch` carried (zero for a first part).
pub fn carried_stats(batch: &BatchMessage) -> BatchStats {
    batch
        .resumed
        .as_ref()
        .map(|r| r.carried)
        .unwrap_or_default()
}

/// `a + b`, counter by counter.
pub fn sum(a: &BatchStats, b: &BatchStats) -> BatchStats {
    let mut total = *a;
    total += b;
    total
}

/// Whether a stopped part did anything: one that did nothing would hand on the same work
/// forever, so it fails instead (and, redelivered, ends in the dead-letter queue, counted).
pub fn made_progress(part: &BatchStats) -> bool {
    part.files
        + part.files_failed
        + part.rows_written
        + part.rows_rejected
        + part.rows_duplicate
        + part.rows_existing
        > 0
        || part.bytes > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ids::BatchNo;
    use crate::contract::rejects::ReportLocation;

    fn task() -> RangeTask {
        RangeTask {
            key: "big.csv".into(),
            etag: "e".into(),
            start: 100,
            end: 200,
            header: vec!["a".into()],
            rows: Some(RowSpan {
                first: 104,
                stop: 210,
            }),
            header_end: None,
        }
    }

    #[test]
    fn a_range_resumes_at_its_next_row_until_its_rows_are_done() {
        let Some(Left::Range(rest)) = Left::range_rest(&task(), 150) else {
            panic!("rows are left");
        };
        assert_eq!((rest.start, rest.end), (150, 200));
        assert_eq!(
            rest.rows,
            Some(RowSpan {
                first: 150,
                stop: 210
            })
        );
        // The next row starts in the next range: nothing is left of this one.
        assert_eq!(Left::range_rest(&task(), 200), None);
        assert_eq!(Left::range_rest(&task(), 205), None);
        assert_eq!(Left::plain_rest("k", "e", (&[], 0), 50, 50), None);
        let Some(Left::Range(plain)) = Left::plain_rest("k", "e", (&["h".into()], 2), 20, 50)
        else {
            panic!("rows are left");
        };
        assert_eq!(
            plain.rows,
            Some(RowSpan {
                first: 20,
                stop: 50
            })
        );
        assert_eq!(plain.header, ["h"]);
    }

    #[test]
    fn a_continuation_carries_what_is_left_and_the_sum_so_far() {
        let batch = BatchMessage {
            job_id: "j".into(),
            batch: BatchNo(4),
            bucket: "b".into(),
            work: Work::Objects {
                keys: vec![
                    "a.csv".into(),
                    "b.csv".into(),
                    "c.csv.gz".into(),
                    "d.csv".into(),
                ],
            },
            schema: None,
            format: None,
            table: None,
            report: ReportLocation {
                bucket: "b".into(),
                prefix: "_rejects/".into(),
            },
            resumed: None,
            write: Default::default(),
        };
        let first = BatchStats {
            rows_written: 10,
            bytes: 300,
            ..BatchStats::default()
        };
        let left = vec![
            Left::Object("d.csv".into()),
            Left::Tail(ObjectTail {
                key: "c.csv.gz".into(),
                etag: "e".into(),
                rows_done: 3,
            }),
            Left::plain_rest("b.csv", "e", (&["h".into()], 2), 40, 90).unwrap(),
        ];
        let second = continuation(&batch, left, &first);
        assert_eq!((second.batch, second.part()), (BatchNo(4), 1));
        let keys: Vec<String> = second.units().iter().map(|w| w.key().to_owned()).collect();
        assert_eq!(keys, ["d.csv", "b.csv", "c.csv.gz"]);
        assert_eq!(carried_stats(&second), first);
        // The next part adds its own counters to the carried ones.
        let own = BatchStats {
            rows_written: 5,
            files: 3,
            ..BatchStats::default()
        };
        let third = continuation(
            &second,
            vec![Left::Object("d.csv".into())],
            &sum(&first, &own),
        );
        assert_eq!(third.part(), 2);
        let carried = carried_stats(&third);
        assert_eq!(
            (carried.rows_written, carried.files, carried.bytes),
            (15, 3, 300)
        );
        assert!(!made_progress(&BatchStats::default()));
        assert!(made_progress(&own));
    }

    #[test]
    fn a_margin_never_takes_the_whole_time_left() {
        let now = Instant::now();
        let secs = Duration::from_secs;
        // A 120 s function: its deadline 110 s away, the 20 s margin applies.
        assert_eq!(
            Stop::before(now + secs(110), secs(20), now).at,
            Some(now + secs(90))
        );
        // A 30 s function: its deadline 20 s away, 2 s of them still go to work.
        assert_eq!(
            Stop::before(now + secs(20), secs(20), now).at,
            Some(now + secs(2))
        );
        // A deadline already past: due at once.
        assert!(Stop::before(now, secs(20), now + secs(1)).due());
    }

    #[test]
    fn a_stop_stays_due_once_due() {
        assert!(!Stop::never().due());
        let stop = Stop::at(Instant::now());
        assert!(stop.due());
        assert!(stop.due());
        assert!(!Stop::at(Instant::now() + Duration::from_secs(60)).due());
    }
}
