//! What crosses a wire: the request that starts a job, the messages between coordinator and
//! workers, the completion event, the data contract (schema) and the rejects records. Serde
//! types only, no IO.

pub mod columns;
pub mod completion;
pub mod dialect;
pub mod format;
pub mod ids;
pub mod inventory;
pub mod mapping;
mod mapping_check;
pub mod messages;
pub mod numbers;
pub mod options;
pub mod rejects;
pub mod schema;
pub mod write;
