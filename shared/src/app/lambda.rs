//! The Lambda/SQS glue both functions share: their logging, deadlines, delivery counts and
//! partial-batch failures.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsMessage};
use tokio::time::Instant;

/// Time kept free before the Lambda deadline: retries stop in time to report a failure
/// instead of being killed mid-batch.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// JSON logs to stdout, filtered by `RUST_LOG`, without timestamps (CloudWatch stamps every
/// line): one setup for both functions.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(true)
        .with_span_list(true)
        .without_time()
        .init();
}

/// The Lambda deadline (ms since the epoch, from `Context`) as an `Instant`, less the margin.
/// `None` if it is not in the future: Lambda's always is, but an emulator may send something
/// else (`cargo lambda watch` sends 600000, a duration), and a deadline already past would
/// stop every batch before its first row. Without one, work runs as without a deadline.
pub fn deadline_from_epoch_ms(deadline_ms: u64) -> Option<Instant> {
    let left = Duration::from_millis(deadline_ms.checked_sub(crate::clock::now_ms())?);
    Some(Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// The longest an invocation can live (Lambda's limit): the deadline assumed without one.
pub const MAX_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// The invocation's real end (ms since the epoch) from a deadline taken with
/// [`deadline_from_epoch_ms`] (margin added back), or now plus [`MAX_INVOCATION`].
pub fn deadline_ms(deadline: Option<Instant>) -> u64 {
    let now = crate::clock::now_ms();
    match deadline {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now()) + DEADLINE_MARGIN;
            now + left.as_millis() as u64
        }
        None => now + MAX_INVOCATION.as_millis() as u64,
    }
}

/// How many times SQS has delivered this message (1 on the first delivery).
pub fn receive_count(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The partial-batch response entry that leaves `message_id` for redelivery.
pub fn failure(message_id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = message_id;
    failure
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_keeps_a_margin() {
        let deadline = deadline_from_epoch_ms(crate::clock::now_ms() + 60_000).unwrap();
        let left = deadline - Instant::now();
        assert!(
            left <= Duration::from_secs(50) && left > Duration::from_secs(45),
            "{left:?}"
        );
        // Less than the margin left: due at once, not underflowing.
        let close = deadline_from_epoch_ms(crate::clock::now_ms() + 5_000).unwrap();
        assert!(close <= Instant::now());
        // No usable deadline: one already past, or cargo lambda watch's fixed 600000.
        assert_eq!(deadline_from_epoch_ms(0), None);
        assert_eq!(deadline_from_epoch_ms(600_000), None);
    }

    #[test]
    fn a_missing_or_odd_receive_count_reads_as_the_first_delivery() {
        let mut message = SqsMessage::default();
        assert_eq!(receive_count(&message), 1);
        message
            .attributes
            .insert("ApproximateReceiveCount".into(), "5".into());
        assert_eq!(receive_count(&message), 5);
        message
            .attributes
            .insert("ApproximateReceiveCount".into(), "x".into());
        assert_eq!(receive_count(&message), 1);
    }
}
