//! The one backoff policy: exponential with jitter, capped. `backon` supplies the schedule;
//! callers that retry *part* of a response (failed SQS entries, UnprocessedItems) walk the
//! schedule themselves, since that is not an error the SDK's own retries see.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays between attempts for partial-failure retries: 50 ms doubling to 5 s, jittered.
/// Bounded to 10 retries (about 20 s in all) unless the caller stops at a deadline instead.
pub fn partial_failure_backoff(until_deadline: bool) -> impl Iterator<Item = Duration> {
    let builder = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter();
    match until_deadline {
        true => builder.without_max_times(),
        false => builder.with_max_times(10),
    }
    .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_bounded_and_capped() {
        let delays: Vec<Duration> = partial_failure_backoff(false).collect();
        assert_eq!(delays.len(), 10);
        // Jitter adds up to one base delay on top, so the cap is 2x the max delay.
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
        assert_eq!(partial_failure_backoff(true).take(100).count(), 100);
    }
}
