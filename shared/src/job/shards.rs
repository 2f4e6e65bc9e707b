//! The fan-in's pure arithmetic (design and numbers: `docs/ledger.md`). A batch is counted by
//! three small writes whatever the job's size: an *intent* token joins the batch's counter
//! shard, the batch's *marker* item is created only if absent (the exactly-once gate), and
//! the shard *applies* the marker's delta only while the marker's own token is still there
//! (removing it in the same write). So each marker's delta is applied at most once (its token
//! is added once, before the marker exists, and removed by the one write that applies it) and
//! at least once (anyone who finds the marker applies its token). A job's counters are the
//! sum of its [`SHARDS`] shards; nothing grows with the number of batches except the count of
//! marker items.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::{BatchNo, BatchStats, Job};

/// Counter shards per job: consecutive batches land on different shards, so at 1,000 counts
/// a second each shard takes about 31 counts (62 one-unit writes) a second.
pub const SHARDS: u32 = 32;

/// The shard that counts `batch`.
pub fn shard_of(batch: BatchNo) -> u32 {
    (batch.get() % u64::from(SHARDS)) as u32
}

/// The batches of a job sealed with `total` that shard `shard` must count: how many, and the
/// sum of their numbers. With distinct batch numbers (markers make them distinct), a shard
/// holding exactly that many with exactly that sum holds exactly those batches: any other set
/// of as many numbers from the shard's residue class has a larger sum.
pub fn expected(total: u64, shard: u32) -> (u64, u64) {
    let shards = u64::from(SHARDS);
    let k = u64::from(shard);
    if k >= total {
        return (0, 0);
    }
    let count = (total - k).div_ceil(shards);
    // k + (k + S) + ... + (k + (count - 1) S)
    let count_w = u128::from(count);
    let sum = count_w * u128::from(k) + u128::from(shards) * count_w * (count_w - 1) / 2;
    (count, u64::try_from(sum).unwrap_or(u64::MAX))
}

/// The sum of batch numbers 0..total: the whole job's [`expected`] sum.
pub fn expected_sum(total: u64) -> u64 {
    let total = u128::from(total);
    u64::try_from(total * total.saturating_sub(1) / 2).unwrap_or(u64::MAX)
}

/// One counter shard as stored: sums over the batches it counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    #[serde(default)]
    pub batches_done: u64,
    #[serde(default)]
    pub batches_failed: u64,
    #[serde(default)]
    pub batches_recovered: u64,
    /// Sum of the counted batches' numbers (the exact-set check, see [`expected`]).
    #[serde(default)]
    pub batch_sum: u64,
    #[serde(flatten)]
    pub totals: BatchStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_batch_error: Option<String>,
    /// Batches on their last delivery, with the deadline (ms since the epoch) of the
    /// invocation that runs them: past it, that invocation was killed.
    #[serde(skip)]
    pub last_attempts: BTreeMap<u64, u64>,
}

impl Shard {
    /// Whether this shard holds exactly its share of a job sealed with `total` batches.
    pub fn is_complete(&self, shard: u32, total: u64) -> bool {
        expected(total, shard) == (self.batches_done, self.batch_sum)
    }

    pub fn apply(&mut self, delta: &Delta) {
        self.batches_done += delta.done;
        self.batches_failed = self.batches_failed.saturating_add_signed(delta.failed);
        self.batches_recovered += delta.recovered;
        self.batch_sum += delta.batch_sum;
        self.totals += &delta.stats;
        if let Some(reason) = &delta.error {
            self.last_batch_error = Some(reason.clone());
        }
    }
}

/// What one marker operation adds to its shard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub done: u64,
    pub failed: i64,
    pub recovered: u64,
    pub batch_sum: u64,
    pub stats: BatchStats,
    pub error: Option<String>,
}

/// A batch's marker: created once (the exactly-once gate); it names the intent token its
/// delta is applied with, so that anyone who finds it can finish a crashed count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    pub batch: BatchNo,
    pub outcome: Outcome,
    /// The token of the count (succeeded or failed).
    pub token: String,
    #[serde(default)]
    pub stats: BatchStats,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A failed batch that succeeded after a redrive: the recovery's token and stats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub token: String,
    pub stats: BatchStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Counted,
    Failed,
}

/// The longest failure reason a marker keeps.
pub const MAX_REASON_BYTES: usize = 512;

/// A fresh intent token for `batch` (the batch number keeps leftovers of crashes readable).
pub fn token(batch: BatchNo) -> String {
    format!("{}:{}", batch.get(), uuid::Uuid::now_v7().simple())
}

impl Marker {
    pub fn counted(batch: BatchNo, token: String, stats: BatchStats) -> Self {
        Self {
            batch,
            outcome: Outcome::Counted,
            token,
            stats,
            reason: None,
            recovery: None,
        }
    }

    /// A failed count; the reason is cut to [`MAX_REASON_BYTES`] so that the marker and the
    /// shard that keeps the last reason stay small.
    pub fn failed(batch: BatchNo, token: String, reason: &str) -> Self {
        let mut end = reason.len().min(MAX_REASON_BYTES);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            batch,
            outcome: Outcome::Failed,
            token,
            stats: BatchStats::default(),
            reason: Some(reason[..end].to_owned()),
            recovery: None,
        }
    }

    /// The count's delta: one more batch done (and failed), its number, its stats.
    pub fn delta(&self) -> Delta {
        let failed = self.outcome == Outcome::Failed;
        Delta {
            done: 1,
            failed: i64::from(failed),
            recovered: 0,
            batch_sum: self.batch.get(),
            stats: self.stats,
            error: if failed { self.reason.clone() } else { None },
        }
    }
}

impl Recovery {
    /// A recovery's delta: the batch moves from failed to recovered and adds its stats.
    pub fn delta(&self) -> Delta {
        Delta {
            failed: -1,
            recovered: 1,
            stats: self.stats,
            ..Delta::default()
        }
    }
}

/// The job as its header and shards say: the header's own fields, the shards' counters
/// summed. `shards` may be a subset (a partial view, e.g. one shard after a count).
pub fn view<'a>(mut header: Job, shards: impl IntoIterator<Item = &'a Shard>) -> Job {
    let mut sum = Shard::default();
    for shard in shards {
        sum.batches_done += shard.batches_done;
        sum.batches_failed += shard.batches_failed;
        sum.batches_recovered += shard.batches_recovered;
        sum.batch_sum += shard.batch_sum;
        sum.totals += &shard.totals;
        if shard.last_batch_error.is_some() {
            sum.last_batch_error = shard.last_batch_error.clone();
        }
    }
    header.batches_done = sum.batches_done;
    header.batches_failed = sum.batches_failed;
    header.batches_recovered = sum.batches_recovered;
    header.batch_sum = sum.batch_sum;
    header.totals = sum.totals;
    header.totals.bytes_read += header.planning_bytes_read;
    if sum.last_batch_error.is_some() {
        header.last_batch_error = sum.last_batch_error;
    }
    header
}

/// `header` (e.g. as a final transition left it) with the counters of `counted`, a view.
pub fn view_like(mut header: Job, counted: &Job) -> Job {
    header.batches_done = counted.batches_done;
    header.batches_failed = counted.batches_failed;
    header.batches_recovered = counted.batches_recovered;
    header.batch_sum = counted.batch_sum;
    header.totals = counted.totals;
    header.last_batch_error = counted.last_batch_error.clone();
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form against counting by hand, for totals around the shard count.
    #[test]
    fn expected_counts_and_sums_match_the_batches_of_each_shard() {
        for total in [0, 1, 2, 31, 32, 33, 64, 65, 1000, 100_003] {
            for shard in 0..SHARDS {
                let mine: Vec<u64> = (0..total)
                    .filter(|b| shard_of(BatchNo(*b)) == shard)
                    .collect();
                let sum: u64 = mine.iter().sum();
                assert_eq!(
                    expected(total, shard),
                    (mine.len() as u64, sum),
                    "{total} {shard}"
                );
            }
            let all: u64 = (0..total).sum();
            assert_eq!(expected_sum(total), all);
        }
    }

    #[test]
    fn a_shard_is_complete_only_with_exactly_its_batches() {
        let total = 70; // shard 3 holds 3, 35, 67
        let mut shard = Shard::default();
        for b in [3, 35] {
            shard.apply(
                &Marker::counted(BatchNo(b), token(BatchNo(b)), BatchStats::default()).delta(),
            );
        }
        assert!(!shard.is_complete(3, total), "one missing");
        let mut stray = shard.clone();
        stray.apply(&Marker::counted(BatchNo(99), "t".into(), BatchStats::default()).delta());
        assert!(
            !stray.is_complete(3, total),
            "a batch outside the sealed set"
        );
        shard.apply(&Marker::failed(BatchNo(67), "t".into(), "gone").delta());
        assert!(shard.is_complete(3, total));
        assert_eq!(
            (shard.batches_failed, shard.last_batch_error.as_deref()),
            (1, Some("gone"))
        );
    }

    #[test]
    fn a_recovery_moves_a_failed_batch_to_recovered_and_adds_its_stats() {
        let mut shard = Shard::default();
        shard.apply(&Marker::failed(BatchNo(0), "a".into(), "x").delta());
        let stats = BatchStats {
            rows_written: 7,
            ..BatchStats::default()
        };
        shard.apply(
            &Recovery {
                token: "b".into(),
                stats,
            }
            .delta(),
        );
        assert_eq!(
            (
                shard.batches_done,
                shard.batches_failed,
                shard.batches_recovered
            ),
            (1, 0, 1)
        );
        assert_eq!(shard.totals.rows_written, 7);
    }

    #[test]
    fn the_view_sums_the_shards_over_the_header() {
        let header = Job::new("j", "b", "");
        let mut one = Shard::default();
        one.apply(
            &Marker::counted(
                BatchNo(0),
                "a".into(),
                BatchStats {
                    rows_written: 2,
                    ..BatchStats::default()
                },
            )
            .delta(),
        );
        let mut two = Shard::default();
        two.apply(&Marker::failed(BatchNo(1), "b".into(), "bad").delta());
        let job = view(header, [&one, &two]);
        assert_eq!(
            (job.batches_done, job.batches_failed, job.batch_sum),
            (2, 1, 1)
        );
        assert_eq!(job.totals.rows_written, 2);
        assert_eq!(job.last_batch_error.as_deref(), Some("bad"));
    }

    #[test]
    fn a_failure_reason_is_cut_at_a_character_boundary() {
        let long = "é".repeat(400);
        let marker = Marker::failed(BatchNo(1), "t".into(), &long);
        let kept = marker.reason.unwrap();
        assert!(kept.len() <= MAX_REASON_BYTES && long.starts_with(&kept));
    }

    #[test]
    fn tokens_are_fresh_and_name_their_batch() {
        let a = token(BatchNo(12));
        assert!(a.starts_with("12:"));
        assert_ne!(a, token(BatchNo(12)));
    }
}
