//! The narrow IO traits the use cases need. Each has an AWS adapter in [`crate::aws`] and an
//! in-memory double in [`memory`], and both are held to one contract suite per port
//! ([`contract`]): the double runs it in unit tests, the adapter against the local servers.

pub mod counting;
pub mod ledger;
pub mod memory;
pub mod objects;
pub mod queue;
pub mod table;

#[cfg(any(test, feature = "contract"))]
pub mod contract;
