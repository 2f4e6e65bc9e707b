//! Large-object planning: the bytes after the header split into ranges of `chunk` bytes, one
//! worker batch each. Which rows a range owns is decided when it is read (see
//! [`crate::ingest::ranges`]): the rule is S3 Select's ScanRange rule, a row belongs to the
//! range holding its first byte.

/// Default range size: big enough that per-range costs vanish, small enough for one worker.
pub const DEFAULT_CHUNK_BYTES: u64 = 32 << 20;

/// Splits `[data_start, size)` into ranges of `chunk` bytes (the last one shorter).
pub fn plan_ranges(data_start: u64, size: u64, chunk: u64) -> Vec<(u64, u64)> {
    let chunk = chunk.max(1);
    let mut ranges = Vec::new();
    let mut start = data_start;
    while start < size {
        let end = start.saturating_add(chunk).min(size);
        ranges.push((start, end));
        start = end;
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_data_once() {
        assert_eq!(plan_ranges(10, 35, 10), vec![(10, 20), (20, 30), (30, 35)]);
        assert_eq!(plan_ranges(10, 10, 10), vec![]);
        assert_eq!(plan_ranges(0, 3, 0), vec![(0, 1), (1, 2), (2, 3)]);
        assert_eq!(plan_ranges(4, 5, 100), vec![(4, 5)]);
    }
}
