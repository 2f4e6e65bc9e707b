//! Column projection: with `unmapped: drop` a row needs only the fields its schema reads
//! (declared columns and the columns the mapping reads), so a worker fetches only those
//! columns' chunks and the reader decodes only them. With `unmapped: keep` every column
//! lands, so every chunk is needed and nothing is projected.

use std::collections::HashSet;
use std::ops::Range;

use ::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use ::parquet::schema::types::{Type, TypePtr};

use crate::contract::schema::{Schema, Unmapped};
use crate::ingest::typing::json_row::fields_read;

/// Chunks closer than this may be fetched as one range: a separate GET costs more (a
/// request, a round trip) than reading 64 KiB of an unneeded column between two needed ones.
pub const MERGE_GAP: u64 = 64 * 1024;
/// The unneeded bytes merging may add, as a fraction of the needed ones (1/20): so a
/// projected read stays within 1.05x of the chunks it needs.
const GAP_BUDGET_DIVISOR: u64 = 20;

/// The top-level fields a row needs, or `None` when every field lands (`unmapped: keep`).
pub fn needed_fields(schema: &Schema) -> Option<HashSet<String>> {
    (schema.unmapped == Unmapped::Drop).then(|| fields_read(schema).into_iter().collect())
}

/// The file's root schema cut to the `needed` top-level fields, or `None` when that keeps
/// every field or none (a file with none of them still has rows: each is read whole, so it
/// is rejected for what it lacks, as without projection).
pub fn projected_schema(meta: &ParquetMetaData, needed: &HashSet<String>) -> Option<Type> {
    let root = meta.file_metadata().schema();
    let fields: Vec<TypePtr> = root
        .get_fields()
        .iter()
        .filter(|field| needed.contains(field.name()))
        .cloned()
        .collect();
    if fields.is_empty() || fields.len() == root.get_fields().len() {
        return None;
    }
    Type::group_type_builder(root.name())
        .with_fields(fields)
        .build()
        .ok()
}

/// Byte ranges of the column chunks of row groups `groups` whose top-level field is in
/// `needed` (every chunk if `None`), in file order. Neighbouring chunks are merged into one
/// GET across the smallest gaps first, each gap at most [`MERGE_GAP`], all of them at most
/// 1/20 of the needed bytes. Offsets are the footer's, checked against the object by
/// [`super::footer::row_groups`].
pub fn chunk_ranges(
    meta: &ParquetMetaData,
    groups: Range<usize>,
    needed: Option<&HashSet<String>>,
) -> Vec<Range<u64>> {
    let projected = projecting(meta, needed);
    let mut ranges: Vec<Range<u64>> = Vec::new();
    for group in meta.row_groups().get(groups).unwrap_or_default() {
        for column in group.columns() {
            let (from, length) = column.byte_range();
            if reads(projected, column) && length > 0 {
                ranges.push(from..from + length);
            }
        }
    }
    ranges.sort_by_key(|r| r.start);
    merge(ranges)
}

/// The fields a read of this file is cut to: `needed`, unless the cut keeps every field or
/// none (then every chunk is read, as [`projected_schema`] says).
pub fn projecting<'a>(
    meta: &ParquetMetaData,
    needed: Option<&'a HashSet<String>>,
) -> Option<&'a HashSet<String>> {
    needed.filter(|needed| projected_schema(meta, needed).is_some())
}

/// Whether a read cut to `projected` (from [`projecting`]) fetches `column`'s chunk.
pub fn reads(projected: Option<&HashSet<String>>, column: &ColumnChunkMetaData) -> bool {
    let root = column.column_descr().path().parts().first();
    projected.is_none_or(|needed| root.is_some_and(|r| needed.contains(r)))
}

/// Sorted ranges merged where they touch or overlap, and across the smallest gaps within
/// the budget.
fn merge(ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    let mut touching: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match touching.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => touching.push(range),
        }
    }
    let needed: u64 = touching.iter().map(|r| r.end - r.start).sum();
    let mut budget = needed / GAP_BUDGET_DIVISOR;
    // Gap i lies between range i and range i + 1.
    let mut gaps: Vec<(u64, usize)> = touching
        .windows(2)
        .enumerate()
        .map(|(i, pair)| (pair[1].start - pair[0].end, i))
        .filter(|(gap, _)| *gap <= MERGE_GAP)
        .collect();
    gaps.sort_unstable();
    let mut bridged = vec![false; touching.len()];
    for (gap, i) in gaps {
        if gap > budget {
            break;
        }
        budget -= gap;
        bridged[i] = true;
    }
    let mut merged: Vec<Range<u64>> = Vec::with_capacity(touching.len());
    for (i, range) in touching.into_iter().enumerate() {
        match merged.last_mut() {
            Some(last) if i > 0 && bridged[i - 1] => last.end = range.end,
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_bridged_smallest_first_within_the_budget() {
        // 3,800 needed bytes: a budget of 190 bridges the 50 and the 100 gaps, not the 150.
        let ranges = vec![0..1000, 1050..2000, 2150..3000, 3100..4100];
        assert_eq!(merge(ranges), vec![0..2000, 2150..4100]);
        // Touching and overlapping chunks are one range whatever the budget.
        assert_eq!(merge(vec![0..10, 10..20, 15..30]), vec![0..30]);
        // A gap over MERGE_GAP is never bridged.
        let far = 10 * MERGE_GAP;
        assert_eq!(
            merge(vec![0..far, far + MERGE_GAP + 1..2 * far]),
            vec![0..far, far + MERGE_GAP + 1..2 * far]
        );
        assert!(merge(Vec::new()).is_empty());
    }
}
