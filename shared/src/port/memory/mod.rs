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
