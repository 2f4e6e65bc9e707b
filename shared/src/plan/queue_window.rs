//! How many of a job's batches may wait in the batch queue at once. Every batch used to be
//! queued as soon as it was listed, so a job whose writes outlast the queue's retention
//! (14 days) lost its late batches. A listing now holds once the job's queued batches would
//! take longer than the window to drain at the rate the job has shown, and goes on once
//! half of them are gone: no batch waits much longer than the window, whatever the job's
//! length. Design and bounds: `docs/queue-window.md`.

use std::time::Duration;

/// A listing's limit on its job's queued batches (enqueued, not yet counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueWindow {
    /// Always allowed, rate or not: enough to keep every worker busy before the job has
    /// shown a rate (`QUEUE_WINDOW_MIN_BATCHES`).
    pub min_batches: u64,
    /// Queued work beyond this many seconds at the job's rate is held back
    /// (`QUEUE_WINDOW_SECONDS`).
    pub seconds: u64,
}

impl Default for QueueWindow {
    fn default() -> Self {
        Self {
            min_batches: Self::DEFAULT_MIN_BATCHES,
            seconds: Self::DEFAULT_SECONDS,
        }
    }
}

impl QueueWindow {
    /// 1,000 batches of at most 16 MiB: ~16 GiB in flight per job before any is counted.
    pub const DEFAULT_MIN_BATCHES: u64 = 1_000;
    /// One day: a 14th of the queues' retention, so the rate may fall 14-fold after a hold
    /// before a queued batch could expire.
    pub const DEFAULT_SECONDS: u64 = 86_400;

    /// Batches the job may have queued after `counted` batches in `elapsed` since it started.
    pub fn allowed(&self, counted: u64, elapsed: Duration) -> u64 {
        let elapsed = elapsed.as_secs_f64().max(1.0);
        let drained_in_window = counted as f64 * self.seconds as f64 / elapsed;
        self.min_batches
            .max(drained_in_window.min(u64::MAX as f64) as u64)
    }

    /// Whether a listing with `enqueued` batches numbered must hold (checkpoint without
    /// waking the next step).
    pub fn is_full(&self, enqueued: u64, counted: u64, elapsed: Duration) -> bool {
        enqueued.saturating_sub(counted) > self.allowed(counted, elapsed)
    }

    /// Whether a held listing may go on: its queue is down to half of what it may hold
    /// (the half keeps a slow job from waking once per counted batch).
    pub fn has_room(&self, enqueued: u64, counted: u64, elapsed: Duration) -> bool {
        enqueued.saturating_sub(counted) <= self.allowed(counted, elapsed) / 2
    }

    /// How many batches a listing enqueues between two looks at the ledger: a tenth of the
    /// floor, so a listing overshoots the window by at most that (and a page).
    pub fn check_every(&self) -> u64 {
        (self.min_batches / 10).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn before_any_batch_is_counted_the_floor_is_allowed() {
        let window = QueueWindow::default();
        assert_eq!(window.allowed(0, Duration::ZERO), 1_000);
        assert!(!window.is_full(1_000, 0, Duration::from_secs(60)));
        assert!(window.is_full(1_001, 0, Duration::from_secs(60)));
    }

    #[test]
    fn a_fast_job_never_holds() {
        // 50 workers at ~9 s a batch: ~5.5 batches/s, half a million a day.
        let window = QueueWindow::default();
        let counted = 330;
        let elapsed = Duration::from_secs(60);
        assert_eq!(window.allowed(counted, elapsed), 475_200);
        assert!(!window.is_full(100_000, counted, elapsed));
    }

    #[test]
    fn a_slow_job_holds_a_day_of_its_own_work() {
        // A capped job: 400 units/s and ~370,000 one-unit rows a batch is ~93 batches a day.
        let window = QueueWindow {
            min_batches: 50,
            seconds: DAY.as_secs(),
        };
        let counted = 93 * 3;
        let elapsed = 3 * DAY;
        assert_eq!(window.allowed(counted, elapsed), 93);
        assert!(window.is_full(counted + 94, counted, elapsed));
        assert!(!window.is_full(counted + 93, counted, elapsed));
        // Held, it goes on once 46 or fewer are left.
        assert!(!window.has_room(counted + 47, counted, elapsed));
        assert!(window.has_room(counted + 46, counted, elapsed));
    }

    #[test]
    fn a_queued_batch_waits_at_most_the_window_at_the_rate_it_was_held_at() {
        // Whatever the rate, what is queued at a hold drains in the window at that rate.
        let window = QueueWindow {
            min_batches: 10,
            seconds: DAY.as_secs(),
        };
        for per_day in [20u64, 100, 1_000, 50_000] {
            let elapsed = 2 * DAY;
            let counted = 2 * per_day;
            let queued = window.allowed(counted, elapsed);
            let rate = counted as f64 / elapsed.as_secs_f64();
            let drain = queued as f64 / rate;
            assert!(drain <= DAY.as_secs_f64() + 1.0, "{per_day}/day: {drain} s");
        }
    }

    #[test]
    fn the_ledger_is_read_every_tenth_of_the_floor() {
        assert_eq!(QueueWindow::default().check_every(), 100);
        let tiny = QueueWindow {
            min_batches: 3,
            seconds: 1,
        };
        assert_eq!(tiny.check_every(), 1);
    }
}
