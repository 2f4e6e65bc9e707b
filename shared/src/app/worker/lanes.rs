//! Ordered write lanes: one defined winner for rows that share a key, whatever the timing.
//! Each row goes to the lane its key hashes to, and a lane writes its chunks one after
//! another, in the order its rows were decoded; `write_concurrency` lanes run at once. So
//! the rows of one key are applied in row order: a later row wins a put (and a delete), the
//! first row wins an insert (a later one is never sent), and an update merges them in row
//! order. Within a chunk the writer applies the same rule (`ChunkWriter::write`); across a
//! lane's chunks the lane remembers the keys it has written in this part (64-bit hashes: a
//! collision could only miscount a duplicate, never reorder a write) and counts each later
//! row of a key as `rows_duplicate`, not as another row written. What holds across parts,
//! objects and batches: `docs/write-control.md`.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::LazyLock;

use super::chunk_writer::SourcedRow;
use crate::contract::write::WriteMode;

/// SipHash keyed at random once per process: the same key hashes the same in every lane of
/// this worker, and no input can be crafted offline to collide (a collision would count a
/// row as a duplicate).
static KEY_HASHER: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(Default::default);

/// A row key as a 64-bit hash, computed once per row as it is decoded: picks its lane, is
/// what a lane remembers, and is compared before the key itself in a chunk.
pub fn key_hash(key: &(String, String)) -> u64 {
    KEY_HASHER.hash_one(key)
}

/// Sets of key hashes: already uniform 64-bit values, so a cheap hasher does.
type HashSet64 = HashSet<u64, foldhash::fast::RandomState>;

/// Distinct keys a lane remembers for certain: between `WINDOW` and twice that, so its
/// memory stays flat (about 0.6 MB a lane) however many rows a part reads. A key repeated
/// further apart than that is treated as a key of an earlier part: written again (put,
/// update, delete) or found by its condition (insert, `rows_existing`): the same table.
pub const WINDOW: usize = 16_384;

/// The keys one lane has written recently in this part: two generations of `WINDOW`.
#[derive(Debug, Default)]
pub struct Seen {
    current: HashSet64,
    previous: HashSet64,
}

impl Seen {
    fn contains(&self, hash: &u64) -> bool {
        self.current.contains(hash) || self.previous.contains(hash)
    }

    fn remember(&mut self, hashes: impl IntoIterator<Item = u64>) {
        for hash in hashes {
            self.current.insert(hash);
            if self.current.len() >= WINDOW {
                self.previous = std::mem::take(&mut self.current);
            }
        }
    }

    /// Keys remembered now (at most `2 * WINDOW`).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }
}

/// A lane's chunk after the keys of its earlier chunks are accounted for.
pub struct Settled {
    pub rows: Vec<SourcedRow>,
    /// Rows whose key an earlier chunk of the lane wrote: not sent (insert: the first row
    /// won), or sent and counted as duplicates of that row (put, delete: the later row
    /// wins; update: merged in row order), so `rows_written` counts the item once.
    pub repeats: u64,
    /// Whether the repeats were left out of `rows` (insert) or are still in it.
    pub dropped: bool,
}

/// Applies the lane's memory of keys to its next chunk (in row order) and remembers the
/// chunk's keys.
pub fn settle(mode: WriteMode, chunk: Vec<SourcedRow>, seen: &mut Seen) -> Settled {
    let before = |hash: &u64, seen: &Seen| seen.contains(hash);
    let hashes: Vec<u64> = chunk.iter().map(|row| row.key_hash).collect();
    let settled = match mode {
        WriteMode::Insert => {
            let total = chunk.len();
            let rows: Vec<SourcedRow> = chunk
                .into_iter()
                .zip(&hashes)
                .filter(|(_, hash)| !before(hash, seen))
                .map(|(row, _)| row)
                .collect();
            Settled {
                repeats: (total - rows.len()) as u64,
                rows,
                dropped: true,
            }
        }
        // Each key once: the writer keeps one row per key of a chunk (or merges them).
        _ => {
            let distinct: HashSet64 = hashes.iter().copied().collect();
            Settled {
                repeats: distinct.iter().filter(|hash| before(hash, seen)).count() as u64,
                rows: chunk,
                dropped: false,
            }
        }
    };
    seen.remember(hashes);
    settled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::item::Item;
    use crate::ingest::typing::TypedRow;
    use std::sync::Arc;

    fn row(key: &str) -> SourcedRow {
        let key = (key.to_owned(), String::new());
        SourcedRow {
            object: Arc::from("a.csv"),
            ranged: false,
            slot: None,
            key_hash: key_hash(&key),
            row: TypedRow {
                key,
                item: Item::default(),
                line: 1,
                offset: 0,
                delete: false,
                size: 0,
            },
        }
    }

    fn keys(settled: &Settled) -> Vec<&str> {
        settled.rows.iter().map(|r| r.row.key.0.as_str()).collect()
    }

    #[test]
    fn a_key_an_earlier_chunk_wrote_is_a_duplicate_dropped_by_an_insert_only() {
        for mode in [WriteMode::Put, WriteMode::Update, WriteMode::Delete] {
            let mut seen = Seen::default();
            let first = settle(mode, vec![row("a"), row("b")], &mut seen);
            assert_eq!((first.repeats, keys(&first)), (0, vec!["a", "b"]));
            // "a" twice again: one key repeated (the writer counts the in-chunk repeat).
            let next = settle(mode, vec![row("a"), row("c"), row("a")], &mut seen);
            assert_eq!((next.repeats, next.dropped), (1, false), "{mode:?}");
            assert_eq!(keys(&next), ["a", "c", "a"], "all sent, in row order");
        }
        let mut seen = Seen::default();
        settle(WriteMode::Insert, vec![row("a")], &mut seen);
        let next = settle(
            WriteMode::Insert,
            vec![row("a"), row("c"), row("a")],
            &mut seen,
        );
        assert_eq!((next.repeats, next.dropped), (2, true));
        assert_eq!(
            keys(&next),
            ["c"],
            "the first row of a key won: later ones never sent"
        );
    }

    #[test]
    fn a_lane_remembers_a_window_of_keys_so_its_memory_stays_flat() {
        let mut seen = Seen::default();
        let chunk = |from: usize| (from..from + 25).map(|i| row(&format!("k{i}"))).collect();
        for i in (0..10 * WINDOW).step_by(25) {
            settle(WriteMode::Put, chunk(i), &mut seen);
            assert!(seen.len() <= 2 * WINDOW, "{} keys held", seen.len());
        }
        // The most recent WINDOW keys are still known: a repeat of them is a duplicate.
        let recent = settle(WriteMode::Put, chunk(10 * WINDOW - 25), &mut seen);
        assert_eq!(recent.repeats, 25);
        // The first keys are long forgotten: written again, as a key of an earlier part.
        let old = settle(WriteMode::Insert, chunk(0), &mut seen);
        assert_eq!((old.repeats, old.rows.len()), (0, 25));
    }
}
