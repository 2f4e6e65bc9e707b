//! Pure fan-out planning: which keys go in which batch, how a large object splits into byte
//! ranges, which S3 notifications start jobs. No IO: reading a large object's header to plan
//! its ranges is the coordinator's step.

pub mod batching;
pub mod cost;
pub mod inventory;
pub mod pacing;
pub mod queue_window;
pub mod ranges;
pub mod trigger;
