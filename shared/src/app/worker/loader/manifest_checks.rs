//! An export data file read to its end, held to its manifest: its number of items
//! (`itemCount`) and its stored bytes' MD5 (`md5Checksum`). A difference is reported beside
//! the batch's rejects and counted; the rows already landed (they are written as read).

use std::sync::Mutex;

use super::{Loader, lock};
use crate::ingest::digest::{Digest, Mismatch};
use crate::ingest::rejects::BatchRejects;

impl Loader<'_> {
    /// Whether an export data file read whole held another number of lines than its
    /// manifest says (reported beside the batch's rejects, naming both counts).
    pub(super) fn miscounted(
        &self,
        key: &str,
        records: u64,
        rejects: &Mutex<BatchRejects>,
    ) -> bool {
        let Some(expected) = self.export.and_then(|e| e.item_counts.get(key)) else {
            return false;
        };
        if records == *expected {
            return false;
        }
        let reason = format!(
            "the data file holds {records} items and its export's manifest says {expected} (itemCount)"
        );
        tracing::warn!(%key, records, expected, "export data file miscounted");
        lock(rejects).object(key, reason);
        true
    }

    /// Whether an export data file read whole is not the file its manifest hashed (a
    /// replaced or damaged file that still decodes: its rows landed, the job says so).
    pub(super) fn corrupt(
        &self,
        key: &str,
        digest: Option<Digest>,
        size: u64,
        rejects: &Mutex<BatchRejects>,
    ) -> bool {
        let (Some(digest), Some(expected)) = (digest, self.export.and_then(|e| e.md5s.get(key)))
        else {
            return false;
        };
        let Err(Mismatch { actual, bytes }) = digest.verify(expected, size) else {
            return false;
        };
        let expected = crate::ingest::typing::error::cap(expected, 64);
        let reason = format!(
            "the data file's MD5 is {actual} (of {bytes} of its {size} bytes) and its export's manifest says {expected} (md5Checksum): its rows were written, but it is not the file the export wrote"
        );
        tracing::warn!(%key, %actual, %expected, "export data file does not match its manifest's MD5");
        lock(rejects).object(key, reason);
        true
    }
}
