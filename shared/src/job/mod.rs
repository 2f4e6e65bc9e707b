//! The job ledger's model and pure rules. The ledger itself is a port
//! ([`crate::port::ledger`]): one item per job, every batch counted exactly once, one final
//! transition.

pub mod attrs;
pub mod model;
pub mod rules;
