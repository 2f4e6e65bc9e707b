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
use std::hash::{Hash, Hasher};

use super::chunk_writer::SourcedRow;
use crate::contract::write::WriteMode;

/// A row's key as a 64-bit hash: picks its lane, and is what a lane remembers.
pub fn key_hash(row: &SourcedRow) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    row.row.key.hash(&mut hasher);
    hasher.finish()
}

/// The keys one lane has written so far in this part.
#[derive(Debug, Default)]
pub struct Seen(HashSet<u64>);

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
    let before = |hash: &u64, seen: &Seen| seen.0.contains(hash);
    let hashes: Vec<u64> = chunk.iter().map(key_hash).collect();
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
            let distinct: HashSet<u64> = hashes.iter().copied().collect();
            Settled {
                repeats: distinct.iter().filter(|hash| before(hash, seen)).count() as u64,
                rows: chunk,
                dropped: false,
            }
        }
    };
    seen.0.extend(hashes);
    settled
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::item::Item;
    use crate::ingest::typing::TypedRow;
    use std::sync::Arc;

    fn row(key: &str) -> SourcedRow {
        SourcedRow {
            object: Arc::from("a.csv"),
            ranged: false,
            slot: None,
            row: TypedRow {
                key: (key.into(), String::new()),
                item: Item::new(),
                line: 1,
                offset: 0,
                delete: false,
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
}
