//! Fan-out planning: listed keys in, fixed-size batches out. Pure, so it is tested without S3.

/// Whether a listed key is a CSV object this pipeline loads: `.csv`, or `.csv.gz` /
/// `.csv.zst` (folder markers and other files are skipped and counted by the coordinator).
pub fn is_csv_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    [".csv", ".csv.gz", ".csv.zst"]
        .iter()
        .any(|suffix| lower.len() > suffix.len() && lower.ends_with(suffix))
}

/// Groups keys into batches of `size`, emitting each batch as soon as it is full so the
/// coordinator can enqueue while it is still listing.
#[derive(Debug)]
pub struct KeyBatcher {
    size: usize,
    current: Vec<String>,
    emitted: u64,
}

impl KeyBatcher {
    pub fn new(size: usize) -> Self {
        Self::starting_at(size, 0)
    }

    /// A batcher whose first batch is number `first` (a listing resumed mid-way).
    pub fn starting_at(size: usize, first: u64) -> Self {
        let size = size.max(1);
        Self {
            size,
            current: Vec::with_capacity(size),
            emitted: first,
        }
    }

    /// Adds a key; returns a full batch (with its 0-based index) when one is ready.
    pub fn push(&mut self, key: String) -> Option<(u64, Vec<String>)> {
        self.current.push(key);
        (self.current.len() == self.size).then(|| self.take())
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
        let batch = std::mem::replace(&mut self.current, Vec::with_capacity(self.size));
        let index = self.emitted;
        self.emitted += 1;
        (index, batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch_all(n: usize, size: usize) -> Vec<(u64, Vec<String>)> {
        let mut batcher = KeyBatcher::new(size);
        let mut out: Vec<_> = (0..n)
            .filter_map(|i| batcher.push(format!("k{i}")))
            .collect();
        out.extend(batcher.finish());
        assert_eq!(batcher.emitted(), out.len() as u64);
        out
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
        let mut batcher = KeyBatcher::starting_at(2, 7);
        assert_eq!(batcher.push("a".into()), None);
        assert_eq!(
            batcher.push("b".into()),
            Some((7, vec!["a".into(), "b".into()]))
        );
        assert_eq!(batcher.push("c".into()), None);
        assert_eq!(batcher.finish(), Some((8, vec!["c".into()])));
        assert_eq!(batcher.emitted(), 9);
    }

    #[test]
    fn zero_size_is_treated_as_one() {
        assert_eq!(batch_all(3, 0).len(), 3);
    }

    #[test]
    fn csv_keys_are_recognised_case_insensitively() {
        assert!(is_csv_key("data/a.csv"));
        assert!(is_csv_key("data/A.CSV"));
        assert!(!is_csv_key("data/"));
        assert!(!is_csv_key(".csv"));
        assert!(!is_csv_key("data/readme.txt"));
        assert!(is_csv_key("data/a.csv.gz"));
        assert!(is_csv_key("data/a.CSV.ZST"));
        assert!(!is_csv_key("data/a.gz"));
        assert!(!is_csv_key(".csv.gz"));
    }
}
