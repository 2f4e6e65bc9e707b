//! Batch numbers of an inventory job (`docs/inventory.md`). The ledger needs dense numbers
//! `0..total` and a total sealed once, but a data file's number of key batches is known
//! only once it is read. So with `n` data files: count batches `0..n` (one per file), emit
//! batches `n..2n` (one per file), then file i's key batches from
//! `2n + Σ_{j<i} K_j`; the job is sealed at `2n + ΣK` once every count is in.

use crate::contract::ids::JobId;
use crate::contract::rejects::ReportLocation;

/// SendMessageBatch calls an emit step keeps in flight: its sends, not its read, set its
/// time (a 10^6-object file is 1,000 calls: 20 s one at a time on AWS, 2.5 s eight at a time).
pub const SENDS_IN_FLIGHT: usize = 8;

/// The job's inventory scratch folder, beside its rejects reports.
pub fn folder(report: &ReportLocation, job_id: &JobId) -> String {
    format!("{}{job_id}/inventory/", report.prefix)
}

/// Where data file `i`'s count step stores its count.
pub fn count_key(report: &ReportLocation, job_id: &JobId, i: u64) -> String {
    format!("{}count-{i:06}.json", folder(report, job_id))
}

/// The compose step's marker: its emit batches are enqueued.
pub fn composed_key(report: &ReportLocation, job_id: &JobId) -> String {
    format!("{}composed.json", folder(report, job_id))
}

/// Count batch of data file `i`.
pub fn count_batch(i: u64) -> u64 {
    i
}

/// Emit batch of data file `i` of `n`.
pub fn emit_batch(n: u64, i: u64) -> u64 {
    n + i
}

/// Each file's first key batch and the job's total, from every file's count of key
/// batches (in manifest order).
pub fn number_files(counts: &[u64]) -> (Vec<u64>, u64) {
    let n = counts.len() as u64;
    let mut next = 2 * n;
    let bases = counts
        .iter()
        .map(|k| {
            let base = next;
            next += k;
            base
        })
        .collect();
    (bases, next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_number_after_the_counts_and_emits_densely() {
        let (bases, total) = number_files(&[3, 0, 2]);
        assert_eq!(bases, [6, 9, 9]);
        assert_eq!(total, 11);
        assert_eq!((count_batch(2), emit_batch(3, 2)), (2, 5));
        // Every number 0..total once: counts, emits, then each file's K.
        let mut all: Vec<u64> = (0..3)
            .map(count_batch)
            .chain((0..3).map(|i| emit_batch(3, i)))
            .collect();
        for (base, k) in bases.iter().zip([3u64, 0, 2]) {
            all.extend(*base..base + k);
        }
        assert_eq!(all, (0..total).collect::<Vec<_>>());
        assert_eq!(number_files(&[]), (vec![], 0));
    }
}
