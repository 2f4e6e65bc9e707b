//! Planning a single-object job: a plain CSV bigger than the chunk size is split into byte
//! ranges (see [`crate::ingest::ranges`] and [`crate::plan::ranges`]); anything else is read
//! whole by one worker.

use thiserror::Error;

use crate::contract::messages::SplitObject;
use crate::contract::schema::Schema;
use crate::ingest::compression::Encoding;
use crate::ingest::csv_stream::{DEFAULT_MAX_RECORD_BYTES, Record, RecordReader};
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
}

/// HEADs the object and, if it is a plain CSV above `chunk` bytes, reads its header once
/// and plans its ranges, pinned to the ETag the HEAD returned.
pub async fn plan_object(
    objects: &dyn ObjectStore,
    bucket: &str,
    key: &str,
    schema: &Schema,
    chunk: u64,
) -> Result<ObjectPlan, PlanError> {
    if Encoding::of_key(key).is_compressed() {
        return Ok(ObjectPlan::Whole); // a compressed stream cannot be split
    }
    let head = objects.head(bucket, key).await?;
    let Some(etag) = head.etag.filter(|_| head.size > chunk) else {
        return Ok(ObjectPlan::Whole);
    };
    let read = Read {
        from: 0,
        to: None,
        if_match: Some(&etag),
    };
    let body = objects.get(bucket, key, read).await?.reader;
    // Only the header record is read, and at most the record cap of it; the rest of the
    // body is dropped unread.
    let mut reader = RecordReader::new(body).with_max_record_bytes(DEFAULT_MAX_RECORD_BYTES);
    let mut header = Record::default();
    let has_header = reader
        .read(&mut header)
        .await
        .map_err(|source| PlanError::Header {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source,
        })?;
    // An oversized header is rejected by the worker that reads the object whole.
    if !has_header || header.is_oversized() || RowTyper::new(schema, &header).is_err() {
        return Ok(ObjectPlan::Whole);
    }
    let object = SplitObject {
        key: key.to_owned(),
        etag,
        header: header
            .iter()
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect(),
        data_start: header.end(),
        size: head.size,
        chunk,
        first_batch: 0,
    };
    if object.range_count() == 0 {
        return Ok(ObjectPlan::Whole); // a header and nothing after it
    }
    Ok(ObjectPlan::Split(object))
}
