//! The format seam: which decoder reads an object, and one decoder interface over them all.
//!
//! A format is the request's `format` when it names one, else the key's suffix (before any
//! `.gz` / `.zst`, which [`crate::ingest::compression`] undoes first). CSV is the first
//! implementation ([`crate::ingest::decode`]); JSON Lines the second ([`jsonl`]), DynamoDB JSON the third ([`ddbjson`]), Parquet the fourth ([`parquet_rows`]). Adding one:
//! `docs/formats.md`.

pub mod ddbjson;
pub mod decoder;
pub mod jsonl;
pub mod line_ranges;
pub mod lines;
pub mod parquet_rows;

#[cfg(test)]
mod conformance_tests;
#[cfg(test)]
mod ddbjson_tests;
#[cfg(test)]
mod jsonl_tests;

pub use crate::contract::format::{Format, SUFFIXES};
pub use decoder::RowDecoder;
