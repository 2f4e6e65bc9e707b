//! In-memory doubles of every port, for fast tests of the use cases. Each is held to the same
//! contract suite as its AWS adapter ([`crate::port::contract`]), so what a unit test on a
//! double shows holds for the real thing.

mod ledger;
mod objects;
mod queue;
mod table;

pub use ledger::MemoryLedger;
pub use objects::MemoryObjects;
pub use queue::MemoryQueues;
pub use table::MemoryTable;

impl super::Adapters {
    /// The in-memory doubles (a record table keyed by `measure_point` + `timestamp`, the
    /// default schema's key).
    pub fn memory() -> Self {
        Self {
            ledger: std::sync::Arc::new(MemoryLedger::new()),
            objects: std::sync::Arc::new(MemoryObjects::new()),
            queues: std::sync::Arc::new(MemoryQueues::new()),
            records: std::sync::Arc::new(MemoryTable::new("measure_point", Some("timestamp"))),
            s3_throttles: std::sync::Arc::default(),
        }
    }
}
