//! The narrow IO traits the use cases need. Each has an AWS adapter in [`crate::aws`] and an
//! in-memory double in [`memory`], and both are held to one contract suite per port
//! ([`contract`]): the double runs it in unit tests, the adapter against the local servers.

pub mod ledger;
pub mod memory;
pub mod objects;
pub mod queue;
pub mod seen_gets;
pub mod table;

#[cfg(any(test, feature = "contract"))]
pub mod conformance;

use std::sync::Arc;

use crate::limiter::ThrottleCounter;

/// Every port, by its AWS adapter (`crate::aws`'s `Adapters::aws`) or its in-memory double
/// ([`Adapters::memory`]).
#[derive(Clone)]
pub struct Adapters {
    pub ledger: Arc<dyn ledger::LedgerStore>,
    pub objects: Arc<dyn objects::ObjectStore>,
    pub queues: Arc<dyn queue::Queues>,
    pub records: Arc<dyn table::RecordTable>,
    /// S3 throttling replies seen, retried or not: the worker's GET limit reads it.
    pub s3_throttles: Arc<ThrottleCounter>,
}
