//! Planning a single-object job: a plain CSV or JSON Lines object bigger than the chunk size
//! is split into byte ranges (see [`crate::ingest::range_read`], [`crate::ingest::format::line_ranges`]
//! and [`crate::plan::ranges`]); a compressed one bigger than it is inflated into plain parts
//! (`docs/compressed.md`); anything else is read whole by one worker.

use thiserror::Error;

use super::parquet_plan::plan_row_groups;
use crate::contract::messages::{InflateTask, RowGroupTask, SplitObject, carried_header};
use crate::contract::schema::Schema;
use crate::ingest::compression::Encoding;
use crate::ingest::csv_stream::{DEFAULT_MAX_RECORD_BYTES, Record, RecordReader};
use crate::ingest::decode::schema_header;
use crate::ingest::format::Format;
use crate::ingest::format::parquet_rows::projection;
use crate::ingest::typing::RowTyper;
use crate::port::objects::{ObjectError, ObjectStore, Read};

#[derive(Debug, Error)]
pub enum PlanError {
    #[error("planning the ranges of an object failed")]
    Object(#[from] ObjectError),
    #[error("reading the header of s3://{bucket}/{key} failed")]
    Header {
        bucket: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
}

/// How one object is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectPlan {
    /// One worker reads it whole: small, compressed, or with a header the worker will reject
    /// (so the reject is reported the usual way).
    Whole,
    /// Split into ranges of `chunk` bytes after the header.
    Split(SplitObject),
    /// A Parquet object's row groups, a batch each task.
    RowGroups(Vec<RowGroupTask>),
    /// A compressed object above the chunk size (compressed): one batch that inflates it
    /// into plain parts of `chunk` decoded bytes, loaded in parallel under its number.
    Inflate(InflateTask),
}

/// HEADs the object and, if it is a plain CSV above `chunk` bytes, reads its header once
/// and plans its ranges, pinned to the ETag the HEAD returned.
pub async fn plan_object(
    objects: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    schema: &Schema,
    format: Format,
    chunk: u64,
) -> Result<ObjectPlan, PlanError> {
    if Encoding::of_key(key).is_compressed() {
        // A compressed stream cannot be split; a large one is inflated into plain parts
        // (formats read as a stream of records only: not Parquet).
        if !format.splits() && !format.is_lines() {
            return Ok(ObjectPlan::Whole);
        }
        let head = objects.head(bucket, key).await?;
        let Some(etag) = head.etag.filter(|_| head.size > chunk) else {
            return Ok(ObjectPlan::Whole);
        };
        return Ok(ObjectPlan::Inflate(InflateTask {
            key: key.to_owned(),
            etag,
            size: head.size,
            part_bytes: chunk,
            next: None,
        }));
    }
    if format.by_row_groups() {
        // Small ones are read whole in a key batch; large ones by row group.
        let head = objects.head(bucket, key).await?;
        let Some(etag) = head.etag.filter(|_| head.size > chunk) else {
            return Ok(ObjectPlan::Whole);
        };
        // Sized by the chunks the job reads: with `unmapped: drop`, its fields' only.
        let needed = projection::needed_fields(schema);
        let tasks = plan_row_groups(
            objects,
            bucket,
            key,
            &etag,
            head.size,
            chunk,
            needed.as_ref(),
        )
        .await?;
        return Ok(ObjectPlan::RowGroups(tasks));
    }
    if !format.splits() {
        return Ok(ObjectPlan::Whole);
    }
    let head = objects.head(bucket, key).await?;
    let Some(etag) = head.etag.filter(|_| head.size > chunk) else {
        return Ok(ObjectPlan::Whole);
    };
    if format == Format::JsonLines {
        // No header and no scan: each range finds its first line itself.
        return Ok(ObjectPlan::Split(SplitObject {
            key: key.to_owned(),
            etag,
            header: Vec::new(),
            data_start: 0,
            size: head.size,
            chunk,
            first_batch: 0,
            by_lines: true,
            header_in_object: false,
        }));
    }
    if !schema.csv.header {
        // No header to read: the schema names the columns, and rows start at byte 0. The
        // first range holds a whole BOM's worth of bytes, so its scan decides whether the
        // object starts with one (`Scanner::with_dialect`).
        let chunk = chunk.max(3);
        return Ok(ObjectPlan::Split(SplitObject {
            key: key.to_owned(),
            etag,
            header: schema_header(schema),
            data_start: 0,
            size: head.size,
            chunk,
            first_batch: 0,
            by_lines: false,
            header_in_object: false,
        }));
    }
    let Some(header) = read_header(objects, bucket, key, &etag, head.size, schema).await? else {
        return Ok(ObjectPlan::Whole);
    };
    // An oversized header is rejected by the worker that reads the object whole.
    if header.is_oversized() || RowTyper::new(schema, &header).is_err() {
        return Ok(ObjectPlan::Whole);
    }
    let names: Vec<String> = (header.iter())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    // A wide header is read by each parse's worker, not carried in every message.
    let (header_names, header_end) = carried_header(&names, header.end());
    let object = SplitObject {
        key: key.to_owned(),
        etag,
        header: header_names,
        data_start: header.end(),
        size: head.size,
        chunk,
        first_batch: 0,
        by_lines: false,
        header_in_object: header_end.is_some(),
    };
    if object.range_count() == 0 {
        return Ok(ObjectPlan::Whole); // a header and nothing after it
    }
    Ok(ObjectPlan::Split(object))
}

/// The header's first read: most headers are far shorter. Reads are bounded because the
/// server sends what a GET asks for whether or not the client reads it: an open-ended GET of
/// a 40 MB object for its first line cost the server a whole extra read of the object.
pub(super) const HEADER_WINDOW: u64 = 64 << 10;

/// The header record, read with ranged GETs of at most [`HEADER_WINDOW`], then of the record
/// cap (and one byte over, so an oversized header shows as such); `None` for an object with no
/// record, or whose header does not end within the cap's window (read whole and rejected by
/// the worker, which reports it the usual way).
async fn read_header(
    objects: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    etag: &str,
    size: u64,
    schema: &Schema,
) -> Result<Option<Record>, PlanError> {
    for window in [HEADER_WINDOW, DEFAULT_MAX_RECORD_BYTES as u64 + 1] {
        let window = window.min(size);
        let read = Read {
            from: 0,
            to: Some(window),
            if_match: Some(etag),
        };
        let body = objects.get(bucket, key, read).await?.reader;
        let mut reader = RecordReader::new(body)
            .with_dialect(&schema.csv)
            .with_max_record_bytes(DEFAULT_MAX_RECORD_BYTES);
        let mut header = Record::default();
        let has_header = reader
            .read(&mut header)
            .await
            .map_err(|source| PlanError::Header {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                source,
            })?;
        // A record (or blank lines before it) running to the window's end may go on past
        // it, unless the object ends there: read a wider window.
        if window == size || header.is_oversized() || (has_header && header.end() < window) {
            return Ok(has_header.then_some(header));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::contract::messages::INLINE_HEADER_BYTES;
    use crate::port::memory::MemoryObjects;
    use crate::port::objects::{Body, ObjectInfo, Page};

    /// The doubles' store, recording the byte window of every GET.
    #[derive(Default)]
    struct Recording {
        inner: MemoryObjects,
        gets: Mutex<Vec<(u64, Option<u64>)>>,
    }

    #[async_trait]
    impl ObjectStore for Recording {
        async fn list_page(
            &self,
            bucket: &str,
            prefix: &str,
            page_size: i32,
            cursor: Option<String>,
        ) -> Result<Page, ObjectError> {
            self.inner
                .list_page(bucket, prefix, page_size, cursor)
                .await
        }

        async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
            self.inner.head(bucket, key).await
        }

        async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError> {
            self.gets.lock().unwrap().push((read.from, read.to));
            self.inner.get(bucket, key, read).await
        }

        async fn put(
            &self,
            bucket: &str,
            key: &str,
            body: Vec<u8>,
            content_type: &str,
        ) -> Result<(), ObjectError> {
            self.inner.put(bucket, key, body, content_type).await
        }

        async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
            self.inner.delete(bucket, key).await
        }
    }

    fn schema() -> Schema {
        serde_json::from_value(serde_json::json!({
            "partition_key": ["c0"],
            "columns": [{"name": "c0", "type": "string"}],
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn the_header_is_read_with_bounded_gets_whatever_its_width() {
        let rows = "x\n".repeat(1 << 20);
        // Headers of 1, ~100 KiB and ~2 MiB of names (over the record cap).
        for columns in [1, 12_000, 250_000] {
            let names: Vec<String> = (0..columns).map(|c| format!("c{c}")).collect();
            let header = names.join(",");
            let width = header.len();
            let objects = Recording::default();
            objects
                .inner
                .insert("b", "big.csv", format!("{header}\n{rows}"));
            let plan = plan_object(&objects, "b", "big.csv", &schema(), Format::Csv, 1 << 20)
                .await
                .unwrap();
            let gets = objects.gets.lock().unwrap().clone();
            assert!(gets.iter().all(|(_, to)| to.is_some()), "{width}: {gets:?}");
            match plan {
                ObjectPlan::Split(object) => {
                    assert!(width < DEFAULT_MAX_RECORD_BYTES, "{width}");
                    assert_eq!(object.data_start, width as u64 + 1);
                    // A wide header stays in the object: each parse reads it there.
                    let wide = object.data_start > INLINE_HEADER_BYTES;
                    assert_eq!(object.header_in_object, wide, "{width}");
                    match wide {
                        true => assert!(object.header.is_empty()),
                        false => assert_eq!(object.header, names),
                    }
                    let task = object.task(object.ranges()[0], None);
                    assert_eq!(task.header_end, wide.then_some(object.data_start));
                    let windows = if width < HEADER_WINDOW as usize { 1 } else { 2 };
                    assert_eq!(gets.len(), windows, "{width}: {gets:?}");
                }
                ObjectPlan::Whole => {
                    assert!(width > DEFAULT_MAX_RECORD_BYTES, "{width}: read whole");
                    assert_eq!(gets.len(), 2, "{gets:?}");
                }
                ObjectPlan::RowGroups(_) | ObjectPlan::Inflate(_) => {
                    panic!("a plain CSV planned by row group or inflated")
                }
            }
        }
    }

    #[tokio::test]
    async fn a_dialects_header_is_read_in_it_and_a_headerless_object_needs_no_read() {
        let rows = "x;1\n".repeat(1 << 19);
        let objects = Recording::default();
        objects
            .inner
            .insert("b", "semi.csv", format!("c0;'c;1'\n{rows}"));
        objects.inner.insert("b", "bare.csv", rows.clone());
        let mut schema = schema();
        schema.csv.delimiter = b';';
        schema.csv.quote = b'\'';
        let plan = plan_object(&objects, "b", "semi.csv", &schema, Format::Csv, 1 << 20)
            .await
            .unwrap();
        let ObjectPlan::Split(object) = plan else {
            panic!("{plan:?}");
        };
        assert_eq!(object.header, ["c0", "c;1"]);
        assert_eq!(object.data_start, 9);
        assert_eq!(objects.gets.lock().unwrap().len(), 1);
        schema.csv.header = false;
        let plan = plan_object(&objects, "b", "bare.csv", &schema, Format::Csv, 1 << 20)
            .await
            .unwrap();
        let ObjectPlan::Split(object) = plan else {
            panic!("{plan:?}");
        };
        assert_eq!(
            (object.header, object.data_start),
            (vec!["c0".to_owned()], 0)
        );
        assert_eq!(object.size, rows.len() as u64);
        assert_eq!(
            objects.gets.lock().unwrap().len(),
            1,
            "no GET for no header"
        );
    }
}
