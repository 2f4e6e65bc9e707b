//! Everything the coordinator and worker Lambdas share. The handlers in `functions/` only
//! translate Lambda events into calls to [`app::coordinator`] and [`app::worker`].
//!
//! Layers, each depending only on those above it:
//! - [`contract`]: the wire types: job requests, batch messages, the completion event, the
//!   data contract (schema) and the rejects records.
//! - [`plan`]: pure fan-out planning: keys to batches, byte ranges, S3 notifications to jobs.
//! - [`ingest`]: IO-free CSV decoding and typing over any `AsyncBufRead`, compression,
//!   ranged reads, rejects.
//! - [`job`]: the job ledger's model and its pure rules (when a job ends, and how).
//! - [`port`]: the narrow IO traits the use cases need (ledger, objects, queues, record
//!   table), each with an in-memory double held to the same contract as its AWS adapter.
//! - [`fan_in`]: the exactly-once counting protocol and the one final transition, written
//!   once over the ledger port's primitives for every backend.
//! - [`aws`]: the one place that names the AWS SDK: clients, the error classifier, and the
//!   adapters behind every port.
//! - [`app`]: the use cases (coordinator, worker, completion outbox, redrive), their
//!   configuration, metrics and the Lambda/SQS glue.
//!
//! Cross-cutting helpers: [`retry`] (the one backoff policy), [`limiter`] (adaptive in-flight
//! limits), [`clock`] and [`report`].

pub mod app;
pub mod aws;
pub mod clock;
pub mod contract;
pub mod fan_in;
pub mod ingest;
pub mod job;
pub mod limiter;
pub mod plan;
pub mod port;
pub mod retry;

/// A boxed error with its source chain, for errors that only travel to a log or a report.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Renders an error with its whole source chain on one line (`a: b: c`), for logs and
/// reports. SDK errors keep their detail (code, message) in the chain, not the top level.
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = inner.source();
    }
    out
}
