//! An adaptive in-flight limit (AIMD): a semaphore that backs off when the service pushes
//! back. A throttling signal halves the limit, at most once per generation of
//! permits (so a burst of throttled replies to requests sent under the old limit cuts once);
//! every `limit` clean completions raise it by one, up to the configured maximum.
//!
//! And a rate pacer ([`RatePacer`]): a cap on units per second (DynamoDB write units), which
//! the AIMD limit works under: the pacer keeps a job polite to the table's other traffic, the
//! limit backs off further when the table throttles anyway.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// A counter of throttling replies (S3 503 SlowDown, 429), bumped by the SDK interceptor in
/// [`crate::aws`] and read by limiters to learn of throttling the SDK retried transparently.
#[derive(Debug, Default)]
pub struct ThrottleCounter(AtomicU64);

impl ThrottleCounter {
    pub fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct State {
    limit: usize,
    max: usize,
    min: usize,
    /// Permits to swallow as they come back, after a cut bigger than the idle permits.
    debt: usize,
    clean_since_raise: usize,
    generation: u64,
    cuts: u64,
    lowest: usize,
}

#[derive(Debug)]
pub struct AimdLimiter {
    semaphore: Semaphore,
    state: Mutex<State>,
}

/// What the limiter has done, for the batch's stats.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LimiterReport {
    pub limit: usize,
    pub lowest: usize,
    pub cuts: u64,
}

pub struct AimdPermit<'a> {
    limiter: &'a AimdLimiter,
    permit: Option<SemaphorePermit<'a>>,
    generation: u64,
}

impl AimdLimiter {
    /// Starts at `max` in flight; never goes below `min`.
    pub fn new(max: usize, min: usize) -> Self {
        let max = max.max(1);
        Self {
            semaphore: Semaphore::new(max),
            state: Mutex::new(State {
                limit: max,
                max,
                min: min.clamp(1, max),
                debt: 0,
                clean_since_raise: 0,
                generation: 0,
                cuts: 0,
                lowest: max,
            }),
        }
    }

    pub async fn acquire(&self) -> AimdPermit<'_> {
        let permit = self
            .semaphore
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let generation = self.lock().generation;
        AimdPermit {
            limiter: self,
            permit: Some(permit),
            generation,
        }
    }

    pub fn report(&self) -> LimiterReport {
        let state = self.lock();
        LimiterReport {
            limit: state.limit,
            lowest: state.lowest,
            cuts: state.cuts,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain numbers: a panic elsewhere cannot leave it inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AimdPermit<'_> {
    /// The request went through without throttling.
    pub fn succeeded(mut self) {
        let mut state = self.limiter.lock();
        state.clean_since_raise += 1;
        if state.clean_since_raise >= state.limit && state.limit < state.max {
            state.clean_since_raise = 0;
            state.limit += 1;
            if state.debt > 0 {
                state.debt -= 1;
            } else {
                self.limiter.semaphore.add_permits(1);
            }
        }
        drop(state);
        self.release();
    }

    /// The service pushed back: halve the limit, once per generation.
    pub fn throttled(mut self) {
        let mut state = self.limiter.lock();
        if self.generation == state.generation && state.limit > state.min {
            let new_limit = (state.limit / 2).max(state.min);
            let cut = state.limit - new_limit;
            let idle = self.limiter.semaphore.forget_permits(cut);
            state.debt += cut - idle;
            state.limit = new_limit;
            state.lowest = state.lowest.min(new_limit);
            state.generation += 1;
            state.cuts += 1;
            state.clean_since_raise = 0;
        }
        drop(state);
        self.release();
    }

    fn release(&mut self) {
        let Some(permit) = self.permit.take() else {
            return;
        };
        let mut state = self.limiter.lock();
        if state.debt > 0 {
            state.debt -= 1;
            permit.forget();
        }
    }
}

impl Drop for AimdPermit<'_> {
    /// A permit dropped without a verdict (an error, a cancelled future) counts as neither.
    fn drop(&mut self) {
        self.release();
    }
}

/// Paces work to `units_per_second`: each [`take`](RatePacer::take) of n units reserves the
/// next n / rate seconds of the schedule and waits for its slot to begin. Unused time earns
/// no credit (no burst after a pause), so over any stretch of steady work the rate is the
/// cap, and a few concurrent takers share it in the order they asked. O(1) per take.
#[derive(Debug)]
pub struct RatePacer {
    units_per_second: f64,
    /// When the next take's slot begins.
    next: Mutex<Option<Instant>>,
    units: AtomicU64,
    waited_ms: AtomicU64,
}

impl RatePacer {
    /// A pacer to `units_per_second` (more than zero; a lower figure is taken as 1 unit per
    /// hour, so a bad figure slows work down rather than letting it loose).
    pub fn new(units_per_second: f64) -> Self {
        Self {
            units_per_second: if units_per_second.is_finite() && units_per_second > 0.0 {
                units_per_second
            } else {
                1.0 / 3600.0
            },
            next: Mutex::new(None),
            units: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    pub fn units_per_second(&self) -> f64 {
        self.units_per_second
    }

    /// Waits until `units` may be spent, and counts them as spent.
    pub async fn take(&self, units: u64) {
        let start = self.reserve_before(units, None);
        self.wait_for(start.unwrap_or_else(Instant::now)).await;
    }

    /// Waits for `units` unless their slot would begin at or after `limit` (then reserves
    /// nothing and returns false): a paced wait never sleeps past the point where the work
    /// must have stopped.
    pub async fn take_before(&self, units: u64, limit: Option<Instant>) -> bool {
        match self.reserve_before(units, limit) {
            Some(start) => {
                self.wait_for(start).await;
                true
            }
            None => false,
        }
    }

    /// Reserves the next `units / rate` seconds of the schedule if that slot begins before
    /// `limit` (always, without one), and returns when it begins; the caller then waits for
    /// it ([`wait_for`](Self::wait_for)). `None`: the schedule is booked up to `limit`.
    pub fn reserve_before(&self, units: u64, limit: Option<Instant>) -> Option<Instant> {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let start = next.map_or(now, |next| next.max(now));
        if limit.is_some_and(|limit| start >= limit) {
            return None;
        }
        *next = Some(start + self.slot(units));
        drop(next);
        self.units.fetch_add(units, Ordering::Relaxed);
        Some(start)
    }

    /// Changes the end of the schedule by `units`: more for a reservation that turned out
    /// bigger, fewer (negative) to give back a reservation not used. Slots already handed
    /// out stay where they are; the next reservation begins earlier or later.
    pub fn adjust(&self, units: i64) {
        if units == 0 {
            return;
        }
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(end) = next.as_mut() {
            let by = self.slot(units.unsigned_abs());
            *end = if units > 0 { *end + by } else { *end - by };
        }
        drop(next);
        if units > 0 {
            self.units.fetch_add(units as u64, Ordering::Relaxed);
        } else {
            self.units
                .fetch_sub(units.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Waits for a reserved slot to begin.
    pub async fn wait_for(&self, start: Instant) {
        let now = Instant::now();
        if start > now {
            self.waited_ms
                .fetch_add((start - now).as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep_until(start).await;
        }
    }

    fn slot(&self, units: u64) -> Duration {
        Duration::from_secs_f64(units as f64 / self.units_per_second)
    }

    /// Units taken so far, and milliseconds spent waiting for them.
    pub fn spent(&self) -> (u64, u64) {
        (
            self.units.load(Ordering::Relaxed),
            self.waited_ms.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_holds_concurrent_takers_to_the_rate_without_a_burst() {
        let pacer = RatePacer::new(100.0);
        let started = Instant::now();
        // 4 takers of 25 units, 10 times each: 1,000 units at 100/s is 10 s of schedule;
        // the last take starts 25 units (0.25 s) before the schedule ends.
        futures::future::join_all((0..4).map(|_| async {
            for _ in 0..10 {
                pacer.take(25).await;
            }
        }))
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        assert!((elapsed - 9.75).abs() < 0.01, "{elapsed}");
        assert_eq!(pacer.spent().0, 1000);
        // A pause earns no credit: the next take after 5 idle seconds starts at once, and
        // the one after waits its full slot.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let before = Instant::now();
        pacer.take(50).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
        pacer.take(50).await;
        assert_eq!(before.elapsed(), Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn a_paced_wait_refuses_a_slot_past_its_limit_instead_of_sleeping_past_it() {
        let pacer = RatePacer::new(10.0);
        let limit = Instant::now() + Duration::from_secs(1);
        // 10 units a second: slots at 0, 0.5 s; the third would begin at the limit.
        assert!(pacer.take_before(5, Some(limit)).await);
        assert!(pacer.take_before(5, Some(limit)).await);
        let before = Instant::now();
        assert!(!pacer.take_before(1, Some(limit)).await);
        assert_eq!(before.elapsed(), Duration::ZERO, "refused at once");
        assert_eq!(pacer.spent().0, 10, "a refusal reserves nothing");
        // A reservation given back moves the next slot earlier; one grown, later.
        let start = pacer.reserve_before(10, None).unwrap();
        pacer.adjust(-10);
        assert_eq!(pacer.reserve_before(1, None), Some(start));
        pacer.adjust(9);
        assert_eq!(
            pacer.reserve_before(1, None),
            Some(start + Duration::from_secs(1))
        );
    }

    #[test]
    fn a_pacer_with_a_bad_rate_crawls_instead_of_running_free() {
        assert!(RatePacer::new(0.0).units_per_second() < 0.001);
        assert!(RatePacer::new(f64::NAN).units_per_second() < 0.001);
    }

    fn in_flight_capacity(limiter: &AimdLimiter) -> usize {
        limiter.semaphore.available_permits()
    }

    #[tokio::test]
    async fn a_throttle_halves_the_limit_once_per_generation() {
        let limiter = AimdLimiter::new(16, 2);
        let permits: Vec<_> = futures::future::join_all((0..8).map(|_| limiter.acquire())).await;
        // Eight replies from the same generation come back throttled: one cut.
        for permit in permits {
            permit.throttled();
        }
        let report = limiter.report();
        assert_eq!((report.limit, report.cuts, report.lowest), (8, 1, 8));
        assert_eq!(in_flight_capacity(&limiter), 8);
        // A request sent under the new limit can cut again.
        limiter.acquire().await.throttled();
        assert_eq!(limiter.report().limit, 4);
        assert_eq!(in_flight_capacity(&limiter), 4);
    }

    #[tokio::test]
    async fn a_cut_larger_than_the_idle_permits_is_paid_back_as_permits_return() {
        let limiter = AimdLimiter::new(4, 1);
        let held: Vec<_> = futures::future::join_all((0..4).map(|_| limiter.acquire())).await;
        let mut held = held.into_iter();
        held.next().unwrap().throttled(); // limit 4 -> 2 with nothing idle: debt 2, this one swallowed
        assert_eq!(in_flight_capacity(&limiter), 0);
        held.next().unwrap().succeeded(); // swallowed: debt paid
        assert_eq!(in_flight_capacity(&limiter), 0);
        for permit in held {
            permit.succeeded();
        }
        // Two clean completions at limit 2 also earned one additive step: 3 in circulation.
        assert_eq!(limiter.report().limit, 3);
        assert_eq!(in_flight_capacity(&limiter), 3);
    }

    #[tokio::test]
    async fn clean_completions_raise_the_limit_back_to_the_maximum() {
        let limiter = AimdLimiter::new(8, 1);
        limiter.acquire().await.throttled();
        limiter.acquire().await.throttled();
        assert_eq!(limiter.report().limit, 2);
        for _ in 0..200 {
            limiter.acquire().await.succeeded();
        }
        let report = limiter.report();
        assert_eq!((report.limit, report.lowest, report.cuts), (8, 2, 2));
        assert_eq!(in_flight_capacity(&limiter), 8);
    }

    #[tokio::test]
    async fn the_limit_never_goes_below_the_minimum() {
        let limiter = AimdLimiter::new(8, 3);
        for _ in 0..10 {
            limiter.acquire().await.throttled();
        }
        assert_eq!(limiter.report().limit, 3);
        assert_eq!(in_flight_capacity(&limiter), 3);
    }

    #[tokio::test]
    async fn a_dropped_permit_returns_without_changing_the_limit() {
        let limiter = AimdLimiter::new(2, 1);
        drop(limiter.acquire().await);
        assert_eq!(limiter.report().limit, 2);
        assert_eq!(in_flight_capacity(&limiter), 2);
    }
}
