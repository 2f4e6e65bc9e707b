//! Planning a single-object job: a plain CSV bigger than the chunk size is split into byte
//! ranges (see [`crate::ranges`]); anything else is read whole by one worker.

use thiserror::Error;

use crate::compression::Encoding;
use crate::csv_stream::{Record, RecordReader};
use crate::ranges::{RangeTask, plan_ranges};
use crate::schema::Schema;
use crate::typing::RowTyper;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Error)]
pub enum PlanError {
    #[error("HEAD s3://{bucket}/{key} failed")]
    Head {
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },
    #[error("reading the header of s3://{bucket}/{key} failed")]
    Header {
        bucket: String,
        key: String,
        #[source]
        source: BoxError,
    },
}

/// How one object is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectPlan {
    /// One worker reads it whole: small, compressed, or with a header the worker will reject
    /// (so the reject is reported the usual way).
    Whole,
    /// One worker per range.
    Ranges(Vec<RangeTask>),
}

/// HEADs the object and, if it is a plain CSV above `chunk` bytes, reads its header once
/// and plans its ranges, pinned to the ETag the HEAD returned.
pub async fn plan_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    schema: &Schema,
    chunk: u64,
) -> Result<ObjectPlan, PlanError> {
    if Encoding::of_key(key).is_compressed() {
        return Ok(ObjectPlan::Whole); // a compressed stream cannot be split
    }
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| PlanError::Head {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source: e.into(),
        })?;
    let size = head.content_length.unwrap_or(0).max(0) as u64;
    let Some(etag) = head.e_tag.filter(|_| size > chunk) else {
        return Ok(ObjectPlan::Whole);
    };
    let header_error = |source: BoxError| PlanError::Header {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        source,
    };
    let body = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .if_match(&etag)
        .range("bytes=0-")
        .send()
        .await
        .map_err(|e| header_error(e.into()))?
        .body
        .into_async_read();
    // Only the header record is read; the rest of the body is dropped unread.
    let mut reader = RecordReader::new(body);
    let mut header = Record::default();
    let has_header = reader
        .read(&mut header)
        .await
        .map_err(|e| header_error(e.into()))?;
    if !has_header || RowTyper::new(schema, &header).is_err() {
        return Ok(ObjectPlan::Whole);
    }
    let names: Vec<String> = header
        .iter()
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    let ranges: Vec<RangeTask> = plan_ranges(header.end(), size, chunk)
        .into_iter()
        .map(|(start, end)| RangeTask {
            key: key.to_owned(),
            etag: etag.clone(),
            start,
            end,
            header: names.clone(),
        })
        .collect();
    if ranges.is_empty() {
        return Ok(ObjectPlan::Whole); // a header and nothing after it
    }
    Ok(ObjectPlan::Ranges(ranges))
}
