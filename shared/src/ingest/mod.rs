//! From bytes to typed items, with no IO of its own: incremental CSV records and JSON Lines
//! over any `AsyncBufRead` (the [`format`] seam picks one), decompression, typing by the
//! job's schema, ranged reads of large CSVs, and the rejects collected on the way.

pub mod compression;
pub mod csv_stream;
pub mod decode;
pub mod digest;
pub mod export;
#[cfg(any(test, feature = "contract"))]
pub mod export_writer;
pub mod format;
pub mod inflate;
pub mod inventory;
#[cfg(any(test, feature = "contract"))]
pub mod inventory_writer;
pub mod item;
pub mod range_read;
pub mod rejects;
pub mod scan;
pub mod typing;
