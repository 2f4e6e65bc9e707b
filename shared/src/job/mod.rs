//! The job ledger's model and pure rules. The ledger itself is a port
//! ([`crate::port::ledger`]): a header item per job, counter shards and one marker per
//! batch, every batch counted exactly once, one final transition.

pub mod attrs;
pub mod model;
pub mod rules;
pub mod shards;
