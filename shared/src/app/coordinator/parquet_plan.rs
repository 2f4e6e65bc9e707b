//! A large Parquet object's batches, from its footer's row groups: the footer is read with
//! ranged GETs (its last 8 bytes, then the metadata), and consecutive groups fill a batch up
//! to the chunk size in column-chunk bytes (a group over it is a batch alone), so a worker
//! fetches only its groups' chunks and the footer. A corrupt footer is planned as one
//! footer-only task: the worker re-reads those few bytes and rejects the object with the
//! reason, counted as any rejected object.

use std::collections::HashSet;

use tokio::io::AsyncReadExt;

use super::object_plan::PlanError;
use crate::contract::messages::RowGroupTask;
use crate::ingest::format::parquet_rows::RowGroupSpan;
use crate::ingest::format::parquet_rows::footer::{self, TAIL_BYTES};
use crate::port::objects::{ObjectStore, Read};

/// The tasks of `key` (`size` bytes at `etag`), `chunk` bytes of column chunks each (of
/// the `needed` fields' chunks only, when the job reads only those).
pub async fn plan_row_groups(
    objects: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    etag: &str,
    size: u64,
    chunk: u64,
    needed: Option<&HashSet<String>>,
) -> Result<Vec<RowGroupTask>, PlanError> {
    let mut object = ParquetObject {
        key: key.to_owned(),
        etag: etag.to_owned(),
        size,
        footer_start: size.saturating_sub(TAIL_BYTES),
    };
    let tail = get(objects, bucket, &object, object.footer_start, size).await?;
    let Ok(length) = footer::metadata_length(&tail, size) else {
        return Ok(vec![object.footer_only()]);
    };
    object.footer_start = footer::footer_start(size, length);
    let metadata = get(
        objects,
        bucket,
        &object,
        object.footer_start,
        size - TAIL_BYTES,
    )
    .await?;
    let spans = footer::decode(&metadata).and_then(|meta| footer::row_groups(&meta, size, needed));
    Ok(match spans {
        Ok(spans) => object.tasks(&spans, chunk),
        Err(_) => vec![object.footer_only()],
    })
}

async fn get(
    objects: &dyn ObjectStore,
    bucket: &str,
    object: &ParquetObject,
    from: u64,
    to: u64,
) -> Result<Vec<u8>, PlanError> {
    let read = Read {
        from,
        to: Some(to),
        if_match: Some(&object.etag),
    };
    let mut reader = objects.get(bucket, &object.key, read).await?.reader;
    let mut bytes = Vec::with_capacity((to - from) as usize);
    reader
        .read_to_end(&mut bytes)
        .await
        .map_err(|source| PlanError::Header {
            bucket: bucket.to_owned(),
            key: object.key.clone(),
            source,
        })?;
    Ok(bytes)
}

/// Where an object's footer is and what it is (key, ETag, size, footer start).
#[derive(Debug, Clone)]
pub struct ParquetObject {
    pub key: String,
    pub etag: String,
    pub size: u64,
    pub footer_start: u64,
}

impl ParquetObject {
    fn task(
        &self,
        first: &RowGroupSpan,
        last: &RowGroupSpan,
        start: u64,
        end: u64,
    ) -> RowGroupTask {
        RowGroupTask {
            key: self.key.clone(),
            etag: self.etag.clone(),
            size: self.size,
            footer_start: self.footer_start,
            first_group: first.index as u64,
            stop_group: last.index as u64 + 1,
            start,
            end,
            rows_done: 0,
        }
    }

    /// One task with no row group: the worker reads only the footer (an empty file's, or a
    /// corrupt one's, which it then rejects with its reason, as any object's reject).
    pub fn footer_only(&self) -> RowGroupTask {
        RowGroupTask {
            key: self.key.clone(),
            etag: self.etag.clone(),
            size: self.size,
            footer_start: self.footer_start,
            first_group: 0,
            stop_group: 0,
            start: 0,
            end: 0,
            rows_done: 0,
        }
    }

    /// The object's tasks: row groups in order, `chunk` bytes of the column chunks read
    /// (the needed fields' with a projection) a batch at most unless one group alone is more.
    pub fn tasks(&self, groups: &[RowGroupSpan], chunk: u64) -> Vec<RowGroupTask> {
        let mut tasks = Vec::new();
        // First group, span start, span end, bytes read.
        let mut open: Option<(usize, u64, u64, u64)> = None;
        for (i, group) in groups.iter().enumerate() {
            if let Some((first, start, end, read)) = open {
                if read + group.read <= chunk {
                    let (start, end) = (start.min(group.start), end.max(group.end));
                    open = Some((first, start, end, read + group.read));
                    continue;
                }
                tasks.push(self.task(&groups[first], &groups[i - 1], start, end));
            }
            open = Some((i, group.start, group.end, group.read));
        }
        if let Some((first, start, end, _)) = open {
            tasks.push(self.task(&groups[first], &groups[groups.len() - 1], start, end));
        }
        if tasks.is_empty() {
            tasks.push(self.footer_only());
        }
        tasks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(index: usize, start: u64, end: u64) -> RowGroupSpan {
        RowGroupSpan {
            index,
            rows: 10,
            start,
            end,
            read: end - start,
        }
    }

    #[test]
    fn small_groups_share_a_batch_a_large_one_is_alone_and_an_empty_file_reads_its_footer() {
        let object = ParquetObject {
            key: "a.parquet".into(),
            etag: "e".into(),
            size: 1_000,
            footer_start: 900,
        };
        let groups = [
            span(0, 4, 104),
            span(1, 104, 204),
            span(2, 204, 304),
            span(3, 304, 804),
            span(4, 804, 900),
        ];
        let tasks = object.tasks(&groups, 250);
        let planned: Vec<_> = tasks
            .iter()
            .map(|t| (t.first_group, t.stop_group, t.start, t.end))
            .collect();
        assert_eq!(
            planned,
            [
                (0, 2, 4, 204),
                (2, 3, 204, 304),
                (3, 4, 304, 804),
                (4, 5, 804, 900)
            ]
        );
        let empty = object.tasks(&[], 250);
        assert_eq!(empty, [object.footer_only()]);
    }
}
