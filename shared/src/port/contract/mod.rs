//! One contract suite per port: plain async functions over `&dyn Port` that assert what every
//! implementation must do. The in-memory doubles run them in unit tests; the AWS adapters run
//! them against the local servers (`tests/tests/contracts.rs`). Each suite works in its own
//! namespace (job ids, keys, queue URLs) so it can share a server with other tests.

pub mod objects;
pub mod queue;
pub mod table;
