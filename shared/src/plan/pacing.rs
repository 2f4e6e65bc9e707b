//! A capped job's share per worker instance, and whether it is enough for a part to make
//! progress: each instance paces itself to cap / `WORKER_MAX_CONCURRENCY` and writes only
//! in the part of an invocation before its stop (`docs/write-control.md`). A share that
//! cannot write one BatchWriteItem's worth in that time would crawl through its batches one
//! row per invocation, so the coordinator refuses it at the request, and `plan` shows it.

use std::time::Duration;

use thiserror::Error;

/// The least a part must be able to write: one BatchWriteItem of 25 one-unit rows.
pub const MIN_UNITS_PER_PART: f64 = 25.0;

/// What one worker instance may write of a capped job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share {
    pub units_per_second: f64,
    /// Write units one invocation writes before it must stop and hand on.
    pub units_per_part: f64,
}

#[derive(Debug, Error, PartialEq)]
#[error(
    "max_write_rate {cap} write units/s over {instances} worker instances \
     (WORKER_MAX_CONCURRENCY) is {:.3} units/s each: {:.1} units in the {:.0} s an \
     invocation writes before it hands on, less than one 25-row BatchWriteItem \
     ({MIN_UNITS_PER_PART} units); raise max_write_rate to at least {:.1} or lower the \
     worker's MaximumConcurrency", .share.units_per_second, .share.units_per_part,
    .part_seconds, .least
)]
pub struct ShareTooSmall {
    pub cap: f64,
    pub instances: usize,
    pub part_seconds: f64,
    pub share: Share,
    /// The smallest cap that passes.
    pub least: f64,
}

/// The time a worker invocation of `timeout` writes before it stops: its deadline (Lambda's
/// less `deadline_margin`) less the resume margin, which never takes more than 90% of it
/// (`worker::Stop::before`).
pub fn part_seconds(timeout: Duration, deadline_margin: Duration, resume_margin: Duration) -> f64 {
    let left = timeout.saturating_sub(deadline_margin);
    let margin = resume_margin.min(left.mul_f64(0.9));
    (left - margin).as_secs_f64()
}

/// The share of `cap` units/s each of `instances` gets, and what it writes in a part.
pub fn share(cap: f64, instances: usize, part_seconds: f64) -> Share {
    let units_per_second = cap / instances.max(1) as f64;
    Share {
        units_per_second,
        units_per_part: units_per_second * part_seconds,
    }
}

/// The share, or why it is too small for a part to make progress.
pub fn check(cap: f64, instances: usize, part_seconds: f64) -> Result<Share, ShareTooSmall> {
    let share = share(cap, instances, part_seconds);
    if share.units_per_part >= MIN_UNITS_PER_PART {
        return Ok(share);
    }
    Err(ShareTooSmall {
        cap,
        instances,
        part_seconds,
        share,
        least: MIN_UNITS_PER_PART * instances.max(1) as f64 / part_seconds.max(1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_s_worker_writes_90_s_of_each_invocation() {
        let secs = Duration::from_secs;
        assert_eq!(part_seconds(secs(120), secs(10), secs(20)), 90.0);
        // A 30 s function: the margin takes at most 90% of the 20 s left.
        assert!((part_seconds(secs(30), secs(10), secs(20)) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn a_share_below_one_chunk_a_part_is_refused_with_the_numbers() {
        // The shipped capped example: 400 units/s over 50 instances, 8 each, 720 a part.
        let ok = check(400.0, 50, 90.0).unwrap();
        assert_eq!((ok.units_per_second, ok.units_per_part), (8.0, 720.0));
        // 10 units/s over 100 instances: 0.1 each, 9 units a part.
        let refused = check(10.0, 100, 90.0).unwrap_err();
        let text = refused.to_string();
        for figure in [
            "max_write_rate 10 ",
            "100 worker instances",
            "0.100 units/s",
            "9.0 units",
            "27.8",
        ] {
            assert!(text.contains(figure), "{figure:?} in {text}");
        }
        assert!(
            check(refused.least, 100, 90.0).is_ok(),
            "the least cap passes"
        );
    }
}
