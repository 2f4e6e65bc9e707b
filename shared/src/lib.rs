//! Everything the coordinator and worker Lambdas share. The handlers in `functions/` only
//! translate Lambda events into calls to [`coordinator`] and [`worker`].
//!
//! Layout, one job per module:
//! - [`config`]: typed settings read once at cold start.
//! - [`aws`]: SDK clients, endpoints from the standard `AWS_ENDPOINT_URL*` variables.
//! - [`message`]: the job request and the batch message that travels through SQS.
//! - [`trigger`]: S3 notifications to job requests, with idempotent job ids.
//! - [`batching`]: pure fan-out planning (keys to batches).
//! - [`listing`]: ListObjectsV2, streamed page by page.
//! - [`queue`]: SendMessageBatch with every failed entry retried.
//! - [`redrive`]: dead-letter queue back to the work queue, nothing lost on the way.
//! - [`schema`]: the data contract: columns, types, key; the sensor schema is the default.
//! - [`typing`]: one CSV record to one typed, keyed DynamoDB item.
//! - [`csv_stream`]: incremental CSV records from an async byte source.
//! - [`decode`]: streaming CSV decode of an object body, with per-row rejects.
//! - [`ranges`]: large-object mode: byte ranges, each row read by exactly one range.
//! - [`large_object`]: whether a single-object job is split, and into which ranges.
//! - [`compression`]: `.csv.gz` / `.csv.zst` bodies decoded as a stream, with a size cap.
//! - [`loader`]: the seed's GET loop, streaming rows into 25-item writes.
//! - [`limiter`]: the adaptive (AIMD) in-flight limit behind GETs and writes.
//! - [`dynamo_writer`]: BatchWriteItem with UnprocessedItems retried to a deadline.
//! - [`rejects`]: the rejects report and the job's reject tolerance.
//! - [`metrics`]: CloudWatch Embedded Metric Format records and where they go.
//! - [`jobs`]: the job ledger: exactly-once batch counting and the final transition.
//! - [`completion`]: the completion event, owed by the final transition (an outbox).
//! - [`retry`]: the one backoff policy everything retries with.

pub mod aws;
pub mod batching;
pub mod completion;
pub mod compression;
pub mod config;
pub mod coordinator;
pub mod csv_stream;
pub mod decode;
pub mod dynamo_writer;
pub mod jobs;
pub mod large_object;
pub mod limiter;
pub mod listing;
pub mod loader;
pub mod message;
pub mod metrics;
pub mod queue;
pub mod ranges;
pub mod redrive;
pub mod rejects;
pub mod retry;
pub mod schema;
pub mod trigger;
pub mod typing;
pub mod worker;

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
