//! Opening a unit of work for decoding in its format: a whole object (decompressed if its key
//! says so),
//! one range of a large object pinned to the planned ETag, or the rest of a compressed object
//! a stopped part left (see [`super::resume`]: a compressed stream cannot be entered mid-way,
//! so it is decoded from the start again, pinned to the version the first part read, and the
//! rows already loaded are skipped untyped).

use std::collections::HashSet;
use std::ops::Range;

use futures::{StreamExt, TryStreamExt};

use super::loader::{LoadError, Loader};
use crate::contract::messages::{ObjectTail, RangeTask, RowGroupTask};
use crate::ingest::compression::{self, BoxedRead, Encoding};
use crate::ingest::decode::DecodeError;
use crate::ingest::digest::{Digest, Hashing};
use crate::ingest::format::ddbjson::DynamoDbJsonDecoder;
use crate::ingest::format::line_ranges::{LinesOpenError, open_lines_range};
use crate::ingest::format::parquet_rows::{ParquetDecoder, Sparse, footer, projection};
use crate::ingest::format::{Format, RowDecoder};
use crate::ingest::range_read::{self, ByteSource, RangeOpenError};
use crate::port::objects::{Failure, ObjectError, ObjectStore, Read};

/// Column chunk GETs of one row-group task in flight: a projected task fetches a range per
/// needed column and group, so they overlap, as a batch's objects do.
const CHUNK_GETS_IN_FLIGHT: usize = 8;

/// An object or range ready to decode (`None`: a range where no row starts).
pub(super) struct Opened<R> {
    pub(super) decoder: Option<RowDecoder<R>>,
    /// Its input size.
    pub(super) bytes: u64,
    /// Where a ranged read starts (its bytes read are then counted by the decoder); `None`:
    /// a whole object, read whole.
    pub(super) read_from: Option<u64>,
    /// The version a whole-object GET read (a later part pins its reads to it).
    pub(super) etag: Option<String>,
    /// Bytes fetched for a header the object carries (`RangeTask::header_end`), counted in
    /// bytes read once, beside the decoder's own.
    pub(super) header_read: u64,
    /// The MD5 of the stored bytes as they pass, for an export data file whose manifest
    /// gives one (read from byte 0 to its end, so it covers the whole file).
    pub(super) digest: Option<Digest>,
}

/// Why an object could not be opened: for good (a reject) or for now (a retry).
pub(super) enum OpenFailure {
    Reject(String),
    /// The object is gone (404): a reject, or for keys an inventory listed, missing.
    Missing(String),
    Retry(LoadError),
}

/// A ranged GET source pinned to the ETag the coordinator planned with.
pub(super) struct PinnedObject<'a> {
    objects: &'a dyn ObjectStore,
    bucket: &'a str,
    task: &'a RangeTask,
}

impl ByteSource for PinnedObject<'_> {
    type Reader = BoxedRead;
    type Error = ObjectError;

    async fn read(&self, from: u64, to: u64) -> Result<BoxedRead, ObjectError> {
        let read = Read {
            from,
            to: Some(to),
            if_match: Some(&self.task.etag),
        };
        let body = self.objects.get(self.bucket, &self.task.key, read).await?;
        Ok(body.reader)
    }
}

impl Loader<'_> {
    /// A whole body, hashed as it passes if `key` is an export data file with a manifest
    /// MD5: the file is read once and checked (the MD5 is of the compressed bytes).
    fn hashed(&self, key: &str, body: BoxedRead) -> (BoxedRead, Option<Digest>) {
        if !self.export.is_some_and(|e| e.md5s.contains_key(key)) {
            return (body, None);
        }
        let (hashing, digest) = Hashing::new(body);
        (Box::pin(tokio::io::BufReader::new(hashing)), Some(digest))
    }

    /// An incremental export's data files hold changes, not items.
    fn changes<R>(&self, decoder: RowDecoder<R>) -> RowDecoder<R> {
        match decoder {
            RowDecoder::DynamoDbJson(d) if self.export.is_some_and(|e| e.incremental) => {
                RowDecoder::DynamoDbJson(d.reading_changes())
            }
            other => other,
        }
    }

    /// A whole object, decompressed if its key says so.
    pub(super) async fn open_object(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Opened<BoxedRead>, OpenFailure> {
        let object = match self.objects.get(bucket, key, Read::default()).await {
            Ok(object) => object,
            Err(error) => return Err(fetch_failure(bucket, key, error)),
        };
        let bytes = object.size;
        let etag = object.etag;
        // An export's empty partition may be an empty object, not an empty gzip stream.
        if bytes == 0 && self.export.is_some() {
            return Ok(Opened {
                decoder: None,
                bytes,
                read_from: None,
                etag,
                header_read: 0,
                digest: None,
            });
        }
        let (raw, digest) = self.hashed(key, object.reader);
        let body = compression::decoded(raw, Encoding::of_key(key), self.max_decoded_bytes);
        let format = Format::resolve(self.format, key);
        match RowDecoder::open(format, body, self.schema, self.max_record_bytes).await {
            Ok(decoder) => Ok(Opened {
                decoder: Some(self.changes(decoder)),
                bytes,
                read_from: None,
                etag,
                header_read: 0,
                digest,
            }),
            Err(error @ DecodeError::HeaderTooLong { .. }) => {
                Err(OpenFailure::Reject(error.to_string()))
            }
            Err(DecodeError::Header(error)) => Err(OpenFailure::Reject(error.to_string())),
            Err(DecodeError::Parquet(error)) => Err(OpenFailure::Reject(error.to_string())),
            Err(DecodeError::Read(error)) => Err(self.classify_read(bucket, key, error)),
        }
    }

    /// One range of a large object, every GET pinned to the planned ETag (a CSV range, or
    /// the rest of any plain object a stopped part left).
    pub(super) async fn open_range(
        &self,
        bucket: &str,
        task: &RangeTask,
    ) -> Result<Opened<BoxedRead>, OpenFailure> {
        let source = PinnedObject {
            objects: self.objects,
            bucket,
            task,
        };
        if Format::resolve(self.format, &task.key).is_lines() {
            return self.open_lines_rest(&source, task).await;
        }
        match range_read::open_range(&source, task, self.schema, self.max_record_bytes).await {
            Ok(decoder) => Ok(Opened {
                // A header the object carries was read only if a row starts in the range.
                header_read: match &decoder {
                    Some(_) => task.header_end.unwrap_or(0),
                    None => 0,
                },
                decoder: decoder.map(RowDecoder::from),
                bytes: task.end - task.start,
                read_from: task.rows.map(|span| span.first),
                etag: None,
                digest: None,
            }),
            Err(RangeOpenError::Source(error)) => Err(fetch_failure(bucket, &task.key, error)),
            Err(error) => Err(OpenFailure::Reject(error.to_string())),
        }
    }

    /// A lines range: the lines starting in its row span (a split JSON Lines object's range,
    /// which finds its first line itself, or the rest of a plain JSON Lines or DynamoDB JSON
    /// object from its next line).
    async fn open_lines_rest(
        &self,
        source: &PinnedObject<'_>,
        task: &RangeTask,
    ) -> Result<Opened<BoxedRead>, OpenFailure> {
        let span = task.rows.ok_or_else(|| {
            OpenFailure::Reject("a JSON Lines range without its row span".to_owned())
        })?;
        let opened = |decoder, read_from| Opened {
            decoder,
            bytes: task.end - task.start,
            read_from: Some(read_from),
            etag: None,
            header_read: 0,
            digest: None,
        };
        if Format::resolve(self.format, &task.key) == Format::DynamoDbJson {
            // Never split: only the rest of an object, whose next line's start is exact.
            if span.first >= span.stop {
                return Ok(opened(None, span.first));
            }
            let body = match source.read(span.first, span.stop).await {
                Ok(body) => body,
                Err(error) => return Err(fetch_failure(source.bucket, &task.key, error)),
            };
            let decoder =
                DynamoDbJsonDecoder::open_at(body, span.first, self.schema, self.max_record_bytes);
            return Ok(opened(
                Some(self.changes(RowDecoder::DynamoDbJson(decoder))),
                span.first,
            ));
        }
        match open_lines_range(source, span, self.schema, self.max_record_bytes).await {
            Ok(Some((from, decoder))) => Ok(opened(Some(RowDecoder::JsonLines(decoder)), from)),
            Ok(None) => Ok(opened(None, span.first)),
            Err(LinesOpenError::Source(error)) => {
                Err(fetch_failure(source.bucket, &task.key, error))
            }
            Err(LinesOpenError::Read(error)) => {
                Err(self.classify_read(source.bucket, &task.key, error))
            }
            Err(LinesOpenError::Decode(error)) => Err(OpenFailure::Reject(error.to_string())),
        }
    }

    /// The rest of a compressed object, pinned to the version the first part read: decoded
    /// from the start again, the rows already loaded skipped untyped.
    pub(super) async fn open_tail(
        &self,
        bucket: &str,
        tail: &ObjectTail,
    ) -> Result<Opened<BoxedRead>, OpenFailure> {
        let read = Read {
            if_match: Some(&tail.etag),
            ..Read::default()
        };
        let object = match self.objects.get(bucket, &tail.key, read).await {
            Ok(object) => object,
            Err(error) => return Err(fetch_failure(bucket, &tail.key, error)),
        };
        let bytes = object.size;
        let encoding = Encoding::of_key(&tail.key);
        let (raw, digest) = self.hashed(&tail.key, object.reader);
        let body = compression::decoded(raw, encoding, self.max_decoded_bytes);
        let format = Format::resolve(self.format, &tail.key);
        let mut decoder =
            match RowDecoder::open(format, body, self.schema, self.max_record_bytes).await {
                Ok(decoder) => self.changes(decoder),
                Err(DecodeError::Read(error)) => {
                    return Err(self.classify_read(bucket, &tail.key, error));
                }
                Err(error) => return Err(OpenFailure::Reject(error.to_string())),
            };
        decoder
            .skip(tail.rows_done)
            .await
            .map_err(|error| self.classify_read(bucket, &tail.key, error))?;
        Ok(Opened {
            decoder: Some(decoder),
            bytes,
            read_from: None,
            etag: Some(tail.etag.clone()),
            header_read: 0,
            digest,
        })
    }
}

impl Loader<'_> {
    /// Row groups of a Parquet object: only its footer and their column chunks are fetched
    /// (with `unmapped: drop`, only the chunks of the fields the schema reads), pinned to
    /// the planned ETag; the rows an earlier part loaded are skipped.
    pub(super) async fn open_row_groups(
        &self,
        bucket: &str,
        task: &RowGroupTask,
    ) -> Result<Opened<BoxedRead>, OpenFailure> {
        let mut source = Sparse::new(task.size);
        let mut chunks: Vec<Range<u64>> = std::iter::once(task.start..task.end).collect();
        if task.footer_start < task.size {
            let footer = self
                .fetch_span(bucket, task, task.footer_start, task.size)
                .await?;
            if let Some(needed) = projection::needed_fields(self.schema) {
                chunks = projected_chunks(task, &footer, &needed)?;
            }
            source.insert(task.footer_start, footer);
        }
        let fetches = chunks
            .into_iter()
            .filter(|range| range.start < range.end)
            .map(|range| async move {
                let bytes = self
                    .fetch_span(bucket, task, range.start, range.end)
                    .await?;
                Ok::<_, OpenFailure>((range.start, bytes))
            });
        let mut fetched = futures::stream::iter(fetches).buffered(CHUNK_GETS_IN_FLIGHT);
        while let Some((from, bytes)) = fetched.try_next().await? {
            source.insert(from, bytes);
        }
        let bytes = source.held();
        let groups = task.first_group as usize..task.stop_group as usize;
        let mut decoder = ParquetDecoder::open(source, Some(groups), self.schema)
            .map_err(|error| OpenFailure::Reject(error.to_string()))?;
        decoder.skip(task.rows_done);
        Ok(Opened {
            decoder: Some(RowDecoder::Parquet(Box::new(decoder))),
            bytes,
            read_from: None,
            etag: Some(task.etag.clone()),
            header_read: 0,
            digest: None,
        })
    }

    /// Bytes `from..to` of a row-group task's object, in memory.
    async fn fetch_span(
        &self,
        bucket: &str,
        task: &RowGroupTask,
        from: u64,
        to: u64,
    ) -> Result<bytes::Bytes, OpenFailure> {
        let read = Read {
            from,
            to: Some(to),
            if_match: Some(&task.etag),
        };
        let object = match self.objects.get(bucket, &task.key, read).await {
            Ok(object) => object,
            Err(error) => return Err(fetch_failure(bucket, &task.key, error)),
        };
        let mut reader = object.reader;
        let mut bytes = Vec::with_capacity((to - from) as usize);
        tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
            .await
            .map_err(|error| self.classify_read(bucket, &task.key, error))?;
        if bytes.len() as u64 != to - from {
            return Err(OpenFailure::Reject(format!(
                "a GET of bytes {from}..{to} returned {} bytes",
                bytes.len()
            )));
        }
        Ok(bytes.into())
    }
}

/// The byte ranges of a row-group task's chunks of the `needed` fields, from its footer.
fn projected_chunks(
    task: &RowGroupTask,
    footer: &[u8],
    needed: &HashSet<String>,
) -> Result<Vec<Range<u64>>, OpenFailure> {
    let metadata = &footer[..footer.len().saturating_sub(footer::TAIL_BYTES as usize)];
    let meta = footer::decode(metadata).map_err(|error| OpenFailure::Reject(error.to_string()))?;
    let groups = task.first_group as usize..task.stop_group as usize;
    Ok(projection::chunk_ranges(&meta, groups, Some(needed)))
}

/// A failed GET: permanent ones are rejects, the rest are retried with the batch.
pub(super) fn fetch_failure(bucket: &str, key: &str, error: ObjectError) -> OpenFailure {
    let detail = crate::report(&*error.source);
    match error.failure {
        Failure::Changed => OpenFailure::Reject(format!(
            "the object changed after the job was planned (its ETag no longer matches): {detail}"
        )),
        Failure::NotFound => OpenFailure::Missing(format!("GET failed: {detail}")),
        _ if error.is_permanent() => OpenFailure::Reject(format!("GET failed: {detail}")),
        _ => OpenFailure::Retry(LoadError::Fetch {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            source: error.into(),
        }),
    }
}
