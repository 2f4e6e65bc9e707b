//! Fan-out planning: listed keys in, batches bounded in keys and in bytes out. Pure, so it is
//! tested without S3.

/// Default byte bound of a key batch: 16 MiB is ~370k seed-shaped rows, ~9 s of one worker's
/// writes at 40k rows/s and ~0.2 s of its decoding at 77 MB per CPU-second, under a tenth of
/// the worker's 120 s timeout (`docs/plan-model.md`, `docs/performance.md`).
use crate::contract::format::Format;

pub const DEFAULT_BATCH_BYTES: u64 = 16 << 20;

/// Whether a listed key is an object this pipeline loads: a CSV, JSON Lines or DynamoDB
/// JSON suffix (`.csv`, `.jsonl`, `.ndjson`, `.json`, each also `.gz` / `.zst`; see
/// [`Format::of_key`]). Folder markers and other files are skipped and counted by the
/// coordinator, and so are the `.json` files that describe data rather than hold it: a
/// folder's job configuration and a DynamoDB export's manifests.
pub fn is_loadable_key(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    Format::of_key(key).is_some() && !METADATA_NAMES.contains(&name)
}

/// `.json` names that are never data.
const METADATA_NAMES: [&str; 3] = [
    crate::contract::options::JOB_CONFIG_NAME,
    "manifest-summary.json",
    "manifest-files.json",
];

/// Groups keys into batches of at most `keys` keys and, as far as whole objects allow, at most
/// `bytes` bytes: a batch closes at whichever bound it reaches first, and an object larger
/// than `bytes` is a batch of its own. Each batch is emitted as soon as it is closed, so the
/// coordinator can enqueue while it is still listing.
#[derive(Debug)]
pub struct KeyBatcher {
    keys: usize,
    bytes: u64,
    current: Vec<String>,
    current_bytes: u64,
    emitted: u64,
}

impl KeyBatcher {
    pub fn new(keys: usize, bytes: u64) -> Self {
        Self::starting_at(keys, bytes, 0)
    }

    /// A batcher whose first batch is number `first` (a listing resumed mid-way).
    pub fn starting_at(keys: usize, bytes: u64, first: u64) -> Self {
        let keys = keys.max(1);
        Self {
            keys,
            bytes: bytes.max(1),
            current: Vec::with_capacity(keys),
            current_bytes: 0,
            emitted: first,
        }
    }

    /// Adds a key of `size` bytes; returns the batches it closed (with their 0-based
    /// numbers): none, one, or two (the batch it did not fit in, then itself if it fills
    /// one alone).
    pub fn push(&mut self, key: String, size: u64) -> Vec<(u64, Vec<String>)> {
        let mut closed = Vec::new();
        if !self.current.is_empty() && self.current_bytes.saturating_add(size) > self.bytes {
            closed.push(self.take());
        }
        self.current.push(key);
        self.current_bytes = self.current_bytes.saturating_add(size);
        if self.current.len() >= self.keys || self.current_bytes >= self.bytes {
            closed.push(self.take());
        }
        closed
    }

    /// Takes `count` batch numbers for work planned apart from the keys (a split object's
    /// scans and parses); returns the first. The batch being filled keeps filling.
    pub fn reserve(&mut self, count: u64) -> u64 {
        let first = self.emitted;
        self.emitted += count;
        first
    }

    /// The last, partial batch, if any.
    pub fn finish(&mut self) -> Option<(u64, Vec<String>)> {
        (!self.current.is_empty()).then(|| self.take())
    }

    /// How many batches have been emitted so far: after `finish`, the job's total.
    pub fn emitted(&self) -> u64 {
        self.emitted
    }

    fn take(&mut self) -> (u64, Vec<String>) {
        let batch = std::mem::replace(&mut self.current, Vec::with_capacity(self.keys));
        self.current_bytes = 0;
        let index = self.emitted;
        self.emitted += 1;
        (index, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_all(n: usize, size: usize) -> Vec<(u64, Vec<String>)> {
        let mut batcher = KeyBatcher::new(size, u64::MAX);
        let mut out: Vec<_> = (0..n)
            .flat_map(|i| batcher.push(format!("k{i}"), 1))
            .collect();
        out.extend(batcher.finish());
        assert_eq!(batcher.emitted(), out.len() as u64);
        out
    }

    /// Batches of `sizes` under both bounds, as lists of sizes.
    fn batch_sizes(sizes: &[u64], keys: usize, bytes: u64) -> Vec<Vec<u64>> {
        let mut batcher = KeyBatcher::new(keys, bytes);
        let mut out: Vec<_> = (sizes.iter().enumerate())
            .flat_map(|(i, size)| batcher.push(format!("{i}:{size}"), *size))
            .collect();
        out.extend(batcher.finish());
        for (i, (index, _)) in out.iter().enumerate() {
            assert_eq!(*index, i as u64, "numbered in order");
        }
        out.into_iter()
            .map(|(_, keys)| {
                keys.iter()
                    .map(|k| k.split(':').nth(1).unwrap().parse().unwrap())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_key_lands_in_exactly_one_batch_in_order() {
        for (n, size) in [(0, 3), (1, 3), (3, 3), (10, 3), (200, 7), (5, 100)] {
            let batches = batch_all(n, size);
            assert_eq!(batches.len(), n.div_ceil(size), "n={n} size={size}");
            let keys: Vec<String> = batches.iter().flat_map(|(_, b)| b.clone()).collect();
            let expected: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            assert_eq!(keys, expected);
            for (i, (index, batch)) in batches.iter().enumerate() {
                assert_eq!(*index, i as u64);
                assert!(!batch.is_empty() && batch.len() <= size);
            }
        }
    }

    #[test]
    fn a_resumed_batcher_numbers_on_from_where_it_stopped() {
        let mut batcher = KeyBatcher::starting_at(2, 100, 7);
        assert_eq!(batcher.push("a".into(), 1), vec![]);
        assert_eq!(
            batcher.push("b".into(), 1),
            vec![(7, vec!["a".into(), "b".into()])]
        );
        assert_eq!(batcher.push("c".into(), 1), vec![]);
        assert_eq!(batcher.finish(), Some((8, vec!["c".into()])));
        assert_eq!(batcher.emitted(), 9);
    }

    #[test]
    fn reserved_numbers_are_skipped_by_the_key_batches() {
        let mut batcher = KeyBatcher::new(2, 100);
        assert_eq!(batcher.push("a".into(), 1), vec![]);
        assert_eq!(batcher.reserve(6), 0);
        assert_eq!(
            batcher.push("b".into(), 1),
            vec![(6, vec!["a".into(), "b".into()])]
        );
        assert_eq!(batcher.reserve(2), 7);
        assert_eq!(batcher.finish(), None);
        assert_eq!(
            batcher.emitted(),
            9,
            "the job's total counts the reserved numbers"
        );
    }

    #[test]
    fn zero_size_is_treated_as_one() {
        assert_eq!(batch_all(3, 0).len(), 3);
    }

    #[test]
    fn a_batch_closes_at_its_byte_bound_and_a_big_object_goes_alone() {
        // 10 keys at most, 100 bytes at most.
        let sizes = [30, 30, 30, 30, 500, 10, 90, 5, 95, 1, 1];
        assert_eq!(
            batch_sizes(&sizes, 10, 100),
            vec![
                vec![30, 30, 30],
                vec![30],
                vec![500],
                vec![10, 90],
                vec![5, 95],
                vec![1, 1],
            ]
        );
        // The key bound still holds for tiny objects, and empty objects count as keys.
        assert_eq!(batch_sizes(&[0; 7], 3, 100).len(), 3);
        // Every batch is within both bounds unless it is one object.
        let sizes: Vec<u64> = (0..500).map(|i| (i * 7919) % 300).collect();
        let batches = batch_sizes(&sizes, 8, 400);
        assert_eq!(batches.concat(), sizes, "every key once, in order");
        for batch in &batches {
            assert!(batch.len() <= 8);
            assert!(
                batch.len() == 1 || batch.iter().sum::<u64>() <= 400,
                "{batch:?}"
            );
        }
    }

    #[test]
    fn csv_keys_are_recognised_case_insensitively() {
        assert!(is_loadable_key("data/a.csv"));
        assert!(is_loadable_key("data/A.CSV"));
        assert!(!is_loadable_key("data/"));
        assert!(!is_loadable_key(".csv"));
        assert!(!is_loadable_key("data/readme.txt"));
        assert!(is_loadable_key("exp/AWSDynamoDB/01/data/x.json.gz"));
        assert!(!is_loadable_key("exp/AWSDynamoDB/01/manifest-summary.json"));
        assert!(!is_loadable_key("exp/AWSDynamoDB/01/manifest-files.json"));
        assert!(!is_loadable_key("in/_s3-fanout.json"));
        assert!(is_loadable_key("data/a.csv.gz"));
        assert!(is_loadable_key("data/a.CSV.ZST"));
        assert!(!is_loadable_key("data/a.gz"));
        assert!(!is_loadable_key(".csv.gz"));
    }
}
