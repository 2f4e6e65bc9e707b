//! Everything the coordinator and worker Lambdas share. The handlers in `functions/` only
//! translate Lambda events into calls to [`coordinator`] and [`worker`].
//!
//! Layout, one job per module:
//! - [`config`]: typed settings read once at cold start.
//! - [`aws`]: SDK clients, endpoints from the standard `AWS_ENDPOINT_URL*` variables.
//! - [`message`]: the job request and the batch message that travels through SQS.
//! - [`batching`]: pure fan-out planning (keys to batches).
//! - [`listing`]: ListObjectsV2, streamed page by page.
//! - [`queue`]: SendMessageBatch with every failed entry retried.
//! - [`decode`]: CSV bytes to typed sensor readings, with per-row rejects.
//! - [`dynamo_writer`]: BatchWriteItem with UnprocessedItems retried.
//! - [`jobs`]: the job ledger: exactly-once batch counting and the final transition.
//! - [`retry`]: the one backoff policy everything retries with.

pub mod aws;
pub mod batching;
pub mod config;
pub mod coordinator;
pub mod decode;
pub mod dynamo_writer;
pub mod jobs;
pub mod listing;
pub mod message;
pub mod queue;
pub mod retry;
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
