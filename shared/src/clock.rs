//! Wall-clock time as the ledger stores it: milliseconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch of `t` (0 before the epoch).
pub fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> u64 {
    millis(SystemTime::now())
}
