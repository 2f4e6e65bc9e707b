//! A large compressed object, inflated into plain parts and loaded in parallel under its one
//! batch number (`docs/compressed.md`): the inflate step decodes the stream once and writes
//! parts at record boundaries to a scratch prefix, sending each part's message as it goes;
//! each part is an ordinary range of a plain object; whoever sees every part done (the last
//! part, or the inflate step if every part finished first) counts the batch with the sum of
//! their counters, once, and removes the scratch objects.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, ReadBuf};
use tokio::time::Instant;

use super::open::{OpenFailure, fetch_failure};
use super::resume::{self, Stop};
use super::{Processed, Reading, Worker, WorkerError};
use crate::contract::messages::{
    BatchMessage, InflateNext, InflateTask, PartTask, RangeTask, Resumed, RowSpan, Unit, Work,
    carried_header,
};
use crate::contract::schema::Schema;
use crate::fan_in::Ledger;
use crate::ingest::compression::{self, BoxedRead, Encoding};
use crate::ingest::csv_stream::{Record, RecordReader};
use crate::ingest::decode::schema_header;
use crate::ingest::format::{Format, RowDecoder};
use crate::ingest::inflate::{HeaderEnd, Part, Splitter, Walk};
use crate::ingest::rejects::BatchRejects;
use crate::job::model::BatchStats;
use crate::job::shards::Outcome;
use crate::port::objects::{Failure, Read};

/// What the inflate step stores at the stream's end: how many parts there are, and its own
/// counters (the object's input size and compressed bytes read, an object reject).
#[derive(Debug, Serialize, Deserialize)]
struct PartsList {
    parts: u64,
    stats: BatchStats,
}

/// Scratch objects read at once when a batch's parts are summed.
const READS_IN_FLIGHT: usize = 32;

/// The scratch objects of batch `batch`'s inflated object.
struct Scratch {
    prefix: String,
}

impl Scratch {
    fn of(batch: &BatchMessage) -> Self {
        Self {
            prefix: batch.report.inflate_prefix(&batch.job_id, batch.batch),
        }
    }

    fn part(&self, index: u64, format: Format) -> String {
        let suffix = match format {
            Format::JsonLines => ".jsonl",
            Format::DynamoDbJson => ".json",
            Format::Csv | Format::Parquet => ".csv",
        };
        format!("{}part-{index:06}{suffix}", self.prefix)
    }

    fn done_prefix(&self) -> String {
        format!("{}done/", self.prefix)
    }

    fn done(&self, index: u64) -> String {
        format!("{}part-{index:06}.json", self.done_prefix())
    }

    fn list(&self) -> String {
        format!("{}parts.json", self.prefix)
    }
}

/// Counts the compressed bytes the decoder consumes.
struct Counting {
    inner: BoxedRead,
    read: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.read.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

impl AsyncBufRead for Counting {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        self.get_mut().inner.as_mut().poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        self.read.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.as_mut().consume(amt)
    }
}

/// How the stream ended for this invocation.
enum Inflated {
    /// Every part is written: `parts` of them.
    Done { parts: u64 },
    /// The stop came first: the parts before `next` are written.
    Paused(InflateNext),
    /// The object cannot be loaded (an unusable header, a corrupt or oversized stream, a
    /// refused GET): the parts before `parts` (written before it showed) still load.
    Rejected { parts: u64, reason: String },
}

/// A read of the decoded stream that failed: for good (the object is rejected: corrupt,
/// truncated, over `MAX_DECODED_BYTES`) or for now (the download).
fn read_failure(
    task: &InflateTask,
    bucket: &str,
    error: std::io::Error,
) -> Result<String, WorkerError> {
    match compression::is_body_error(&error) {
        true => Err(WorkerError::Load(super::LoadError::Read {
            bucket: bucket.to_owned(),
            key: task.key.clone(),
            source: error.into(),
        })),
        false => Ok(format!("decompressing failed: {error}")),
    }
}

impl Worker {
    /// The inflate step of `batch`: writes the object's parts (from where an earlier
    /// invocation stopped), sends each part's message, and at the stream's end stores the
    /// list of parts; near the deadline it hands the rest on.
    pub(super) async fn inflate(
        &self,
        batch: &BatchMessage,
        task: &InflateTask,
        schema: &Schema,
        stop: &Stop,
        started: Instant,
    ) -> Result<Processed, WorkerError> {
        // A duplicate (or a chain forked by one) arriving after the object was counted would
        // only write scratch objects again that nothing removes: it stops here.
        let marker = self.ledger.marker(&batch.job_id, batch.batch).await?;
        if marker.is_some_and(|m| m.outcome == Outcome::Counted || m.recovery.is_some()) {
            tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), "the inflated object is counted already: nothing to do");
            return Ok(Processed::Shared);
        }
        let read = Arc::new(AtomicU64::new(0));
        let outcome = self
            .inflate_stream(batch, task, schema, stop, &read)
            .await?;
        let mut own = BatchStats {
            bytes_read: read.load(Ordering::Relaxed),
            ..BatchStats::default()
        };
        let (parts, rejected) = match outcome {
            Inflated::Paused(next) => {
                let written = next.part - task.next.map_or(0, |n| n.part);
                if written == 0 {
                    return Err(WorkerError::NoProgress);
                }
                return self.hand_on_inflate(batch, task, next, &own).await;
            }
            Inflated::Done { parts } => (parts, None),
            Inflated::Rejected { parts, reason } => (parts, Some(reason)),
        };
        own.bytes = task.size;
        match &rejected {
            None => own.files = 1,
            Some(reason) => {
                own.files_failed = 1;
                let mut rejects = BatchRejects::default();
                rejects.object(&task.key, reason.clone());
                let key = (batch.report).part_key(&batch.job_id, batch.batch, batch.part());
                (self.objects)
                    .put(
                        &batch.report.bucket,
                        &key,
                        rejects.to_jsonl().into_bytes(),
                        "application/x-ndjson",
                    )
                    .await
                    .map_err(WorkerError::Report)?;
            }
        }
        let list = PartsList {
            parts,
            stats: resume::sum(&resume::carried_stats(batch), &own),
        };
        let body = serde_json::to_vec(&list).expect("a list of parts serializes");
        let scratch = Scratch::of(batch);
        (self.objects)
            .put(
                &batch.report.bucket,
                &scratch.list(),
                body,
                "application/json",
            )
            .await
            .map_err(WorkerError::Scratch)?;
        tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), key = %task.key, parts, "compressed object inflated into parts");
        self.count_when_every_part_is_done(batch, started).await
    }

    /// Decodes the object and writes the parts from `task.next` on, until its end or the
    /// stop.
    async fn inflate_stream(
        &self,
        batch: &BatchMessage,
        task: &InflateTask,
        schema: &Schema,
        stop: &Stop,
        read: &Arc<AtomicU64>,
    ) -> Result<Inflated, WorkerError> {
        let first = task.next.map_or(0, |n| n.part);
        let rejected = |parts, reason| Ok::<_, WorkerError>(Inflated::Rejected { parts, reason });
        let pinned = Read {
            if_match: Some(&task.etag),
            ..Read::default()
        };
        let body = match self.objects.get(&batch.bucket, &task.key, pinned).await {
            Ok(body) => body,
            Err(error) => match fetch_failure(&batch.bucket, &task.key, error) {
                OpenFailure::Retry(error) => return Err(error.into()),
                OpenFailure::Reject(reason) | OpenFailure::Missing(reason) => {
                    return rejected(first, reason);
                }
            },
        };
        let counting = Counting {
            inner: body.reader,
            read: read.clone(),
        };
        let encoding = Encoding::of_key(&task.key);
        let mut decoded = compression::decoded(counting, encoding, self.config.max_decoded_bytes);
        let format = Format::resolve(batch.format, &task.key);
        let cap = self.config.max_record_bytes;
        let with_header = format == Format::Csv && schema.csv.header;

        // The header (a CSV's first record), or a BOM at byte 0, which belongs to no record.
        let mut head = Vec::new();
        let mut header_end = HeaderEnd::new(schema.csv);
        let data_start = loop {
            let buf = match decoded.fill_buf().await {
                Ok(buf) => buf,
                Err(error) => return rejected(first, read_failure(task, &batch.bucket, error)?),
            };
            if buf.is_empty() {
                // The object's end: all header, or (none expected) under 3 bytes of data.
                break if with_header { head.len() } else { 0 };
            }
            if with_header {
                if let Some(end) = header_end.feed(buf) {
                    let take = end as usize - head.len();
                    head.extend_from_slice(&buf[..take]);
                    decoded.consume(take);
                    break head.len();
                }
                let taken = buf.len();
                head.extend_from_slice(buf);
                decoded.consume(taken);
                if head.len() > cap + 1 {
                    break head.len(); // oversized: the check below rejects it
                }
            } else {
                let take = (3 - head.len()).min(buf.len());
                head.extend_from_slice(&buf[..take]);
                decoded.consume(take);
                if head.len() == 3 {
                    break match head.as_slice() == b"\xef\xbb\xbf" {
                        true => 3,
                        false => 0,
                    };
                }
            }
        };
        let header = head[..data_start].to_vec();
        // The same checks as a whole read: a decoder opened on the header alone.
        let check: BoxedRead = Box::pin(std::io::Cursor::new(match with_header {
            true => header.clone(),
            false => Vec::new(),
        }));
        if let Err(error) = RowDecoder::open(format, check, schema, cap).await {
            return rejected(first, error.to_string());
        }
        let names = match (format, with_header) {
            (Format::Csv, true) => {
                let mut reader = RecordReader::new(&header[..]).with_dialect(&schema.csv);
                let mut record = Record::default();
                let _ = reader.read(&mut record).await;
                (record.iter())
                    .map(|name| String::from_utf8_lossy(name).into_owned())
                    .collect()
            }
            (Format::Csv, false) => schema_header(schema),
            _ => Vec::new(),
        };
        let header = match with_header {
            true => header,
            false => Vec::new(),
        };
        let mut pending = head[data_start..].to_vec();
        let (first, offset, line) = match task.next {
            Some(next) => (next.part, next.offset, next.line),
            None => {
                let newlines = memchr::memchr_iter(b'\n', &head[..data_start]).count() as u64;
                (0, data_start as u64, newlines + 1)
            }
        };

        // Bytes before the first part to write are only skipped: decompression, no scan.
        let mut at = data_start as u64;
        let drop = (offset - at).min(pending.len() as u64) as usize;
        pending.drain(..drop);
        at += drop as u64;
        while at < offset {
            if stop.due() {
                return Ok(Inflated::Paused(InflateNext {
                    part: first,
                    offset,
                    line,
                }));
            }
            let buf = match decoded.fill_buf().await {
                Ok(buf) => buf,
                Err(error) => return rejected(first, read_failure(task, &batch.bucket, error)?),
            };
            if buf.is_empty() {
                return rejected(
                    first,
                    format!(
                        "the object ends at decoded byte {at}, before its part {first} at {offset}: it changed, though its ETag did not"
                    ),
                );
            }
            let take = ((offset - at) as usize).min(buf.len());
            decoded.consume(take);
            at += take as u64;
        }

        let walk = match format {
            Format::Csv => Walk::Csv(schema.csv),
            _ => Walk::Lines,
        };
        let mut splitter = Splitter::new(walk, task.part_bytes, cap, header, (first, offset, line));
        let mut rest = &pending[..];
        loop {
            while !rest.is_empty() {
                let (taken, part) = splitter.feed(rest);
                rest = &rest[taken..];
                if let Some(part) = part {
                    self.send_part(batch, task, format, &names, part).await?;
                }
            }
            if stop.due() {
                let (part, offset, line) = splitter.current();
                return Ok(Inflated::Paused(InflateNext { part, offset, line }));
            }
            let buf = match decoded.fill_buf().await {
                Ok(buf) => buf,
                Err(error) => {
                    let (parts, ..) = splitter.current();
                    return rejected(parts, read_failure(task, &batch.bucket, error)?);
                }
            };
            if buf.is_empty() {
                break;
            }
            let (taken, part) = splitter.feed(buf);
            decoded.consume(taken);
            if let Some(part) = part {
                self.send_part(batch, task, format, &names, part).await?;
            }
            rest = &[];
        }
        let (unclosed, ..) = splitter.current();
        let parts = match splitter.finish() {
            Some(last) => {
                let parts = last.index + 1;
                self.send_part(batch, task, format, &names, last).await?;
                parts
            }
            None => unclosed,
        };
        Ok(Inflated::Done { parts })
    }

    /// Stores one part and sends its message (a part written twice is the same bytes under
    /// the same key, and its message names the same work).
    async fn send_part(
        &self,
        batch: &BatchMessage,
        task: &InflateTask,
        format: Format,
        names: &[String],
        part: Part,
    ) -> Result<(), WorkerError> {
        let scratch = Scratch::of(batch);
        let key = scratch.part(part.index, format);
        let size = part.bytes.len() as u64;
        (self.objects)
            .put(
                &batch.report.bucket,
                &key,
                part.bytes,
                "application/octet-stream",
            )
            .await
            .map_err(WorkerError::Scratch)?;
        let (header, header_end) = carried_header(names, part.data_start);
        let message = BatchMessage {
            work: Work::InflatedPart(PartTask {
                source: task.key.clone(),
                index: part.index,
                offset: part.offset,
                data_start: part.data_start,
                line: part.line,
                range: RangeTask {
                    key,
                    etag: String::new(),
                    start: part.data_start,
                    end: size,
                    header,
                    rows: Some(RowSpan {
                        first: part.data_start,
                        stop: size,
                    }),
                    header_end: header_end.filter(|_| format == Format::Csv),
                },
            }),
            resumed: None,
            ..batch.clone()
        };
        let Some(queue_url) = &self.config.queue_url else {
            return Err(WorkerError::SendPart("QUEUE_URL is not set".into()));
        };
        let dedup = format!("{}-{}-inflated-{}", batch.job_id, batch.batch, part.index);
        (self.queues)
            .send(queue_url, &message.to_json(), &dedup)
            .await
            .map_err(|e| WorkerError::SendPart(e.into()))?;
        tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), part = part.index, offset = part.offset, line = part.line, bytes = size, "part of a compressed object written");
        Ok(())
    }

    /// The inflate step's continuation: the same object from its first unwritten part.
    async fn hand_on_inflate(
        &self,
        batch: &BatchMessage,
        task: &InflateTask,
        next: InflateNext,
        own: &BatchStats,
    ) -> Result<Processed, WorkerError> {
        let Some(queue_url) = &self.config.queue_url else {
            return Err(WorkerError::Continue("QUEUE_URL is not set".into()));
        };
        let continued = BatchMessage {
            work: Work::Inflate(InflateTask {
                next: Some(next),
                ..task.clone()
            }),
            resumed: Some(Resumed {
                part: batch.part() + 1,
                carried: resume::sum(&resume::carried_stats(batch), own),
                ..Resumed::default()
            }),
            ..batch.clone()
        };
        let dedup = format!("{}-{}-part-{}", batch.job_id, batch.batch, continued.part());
        (self.queues)
            .send(queue_url, &continued.to_json(), &dedup)
            .await
            .map_err(|e| WorkerError::Continue(e.into()))?;
        tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), next_part = next.part, offset = next.offset, "inflating paused before the deadline; the rest goes on as the next part");
        Ok(Processed::Continued(Box::new(continued)))
    }

    /// One part of an inflated object: its rows, as a range of the scratch object; near the
    /// deadline its rest goes on; its last invocation stores its counters and counts the
    /// batch if every part is then done.
    pub(super) async fn inflated_part(
        &self,
        batch: &BatchMessage,
        part: &PartTask,
        schema: &Schema,
        deadline: Option<Instant>,
        stop: &Stop,
        started: Instant,
    ) -> Result<Processed, WorkerError> {
        let bucket = &batch.report.bucket;
        let info = match self.objects.head(bucket, &part.range.key).await {
            Ok(info) => info,
            Err(error) if error.failure == Failure::NotFound => {
                // Removed once the object was counted: this is a late duplicate.
                tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), part = part.index, "the part is gone: its object was counted and cleaned up");
                return Ok(Processed::Shared);
            }
            Err(error) => return Err(WorkerError::Scratch(error)),
        };
        let range = RangeTask {
            etag: info.etag.unwrap_or_default(),
            ..part.range.clone()
        };
        let units = [Unit::Range(&range)];
        let report =
            (batch.report).inflated_part_key(&batch.job_id, batch.batch, part.index, batch.part());
        let reading = Reading {
            bucket,
            units: &units,
            report: &report,
            part: Some(part),
        };
        let (loaded, left) = self
            .load_units(batch, reading, schema, deadline, stop)
            .await?;
        // The object's input and its `files` are the inflate step's to count.
        let mut own = BatchStats {
            files: 0,
            bytes: 0,
            ..loaded
        };
        let carried = resume::carried_stats(batch);
        if !left.is_empty() {
            if !resume::made_progress(&loaded) && !stop.paced() {
                return Err(WorkerError::NoProgress);
            }
            let mut next = resume::continuation(batch, left, &resume::sum(&carried, &own));
            if let Work::InflatedPart(rest) = &mut next.work
                && let Some((from, to)) = part.range.rows.zip(rest.range.rows)
            {
                // Its lines count from its first row: move the line by the rows read.
                let newlines = self.newlines(bucket, &range, from.first, to.first).await?;
                rest.line += newlines;
                own.bytes_read += to.first - from.first;
                if let Some(resumed) = &mut next.resumed {
                    resumed.carried = resume::sum(&carried, &own);
                }
            }
            let Some(queue_url) = &self.config.queue_url else {
                return Err(WorkerError::Continue("QUEUE_URL is not set".into()));
            };
            let dedup = format!(
                "{}-{}-inflated-{}-part-{}",
                batch.job_id,
                batch.batch,
                part.index,
                next.part()
            );
            (self.queues)
                .send(queue_url, &next.to_json(), &dedup)
                .await
                .map_err(|e| WorkerError::Continue(e.into()))?;
            tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), part = part.index, "part paused before the deadline; the rest goes on");
            return Ok(Processed::Continued(Box::new(next)));
        }
        let stats = resume::sum(&carried, &own);
        let body = serde_json::to_vec(&stats).expect("counters serialize");
        let scratch = Scratch::of(batch);
        (self.objects)
            .put(bucket, &scratch.done(part.index), body, "application/json")
            .await
            .map_err(WorkerError::Scratch)?;
        self.count_when_every_part_is_done(batch, started).await
    }

    /// `\n`s in bytes `from..to` of a part (where a resumed part's first row is).
    async fn newlines(
        &self,
        bucket: &str,
        range: &RangeTask,
        from: u64,
        to: u64,
    ) -> Result<u64, WorkerError> {
        if to <= from {
            return Ok(0);
        }
        let read = Read {
            from,
            to: Some(to),
            if_match: Some(&range.etag),
        };
        let body =
            (self.objects.get(bucket, &range.key, read).await).map_err(WorkerError::Scratch)?;
        let mut bytes = Vec::new();
        let mut reader = body.reader;
        reader
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| WorkerError::BadPartsList(format!("reading a part back failed: {e}")))?;
        Ok(memchr::memchr_iter(b'\n', &bytes).count() as u64)
    }

    /// Counts the batch if its list of parts is stored and every part is done: the sum of
    /// the inflate step's counters and every part's, through the ledger's exactly-once
    /// count; then removes the scratch objects. Several shares may get here; one counts.
    async fn count_when_every_part_is_done(
        &self,
        batch: &BatchMessage,
        started: Instant,
    ) -> Result<Processed, WorkerError> {
        let scratch = Scratch::of(batch);
        let bucket = &batch.report.bucket;
        let list = match self
            .objects
            .get(bucket, &scratch.list(), Read::default())
            .await
        {
            Ok(body) => read_json::<PartsList>(body.reader).await?,
            Err(error) if error.failure == Failure::NotFound => return Ok(Processed::Shared),
            Err(error) => return Err(WorkerError::Scratch(error)),
        };
        let done = self.list_keys(bucket, &scratch.done_prefix()).await?;
        let wanted: Vec<String> = (0..list.parts).map(|i| scratch.done(i)).collect();
        if !wanted.iter().all(|key| done.binary_search(key).is_ok()) {
            return Ok(Processed::Shared);
        }
        let parts: Vec<BatchStats> = stream::iter(&wanted)
            .map(|key| async move {
                let body = (self.objects.get(bucket, key, Read::default()).await)
                    .map_err(WorkerError::Scratch)?;
                read_json::<BatchStats>(body.reader).await
            })
            .buffered(READS_IN_FLIGHT)
            .try_collect()
            .await?;
        let stats = (parts.iter()).fold(list.stats, |total, part| resume::sum(&total, part));
        let recorded = self
            .ledger
            .record_batch(&batch.job_id, batch.batch, &stats)
            .await?;
        tracing::info!(job_id = %batch.job_id, batch = batch.batch.get(), parts = list.parts, ?stats, "every part of an inflated object is done; the object's batch is counted");
        self.clean_up(bucket, &scratch.prefix).await;
        self.after_count(batch, recorded, &stats, started).await
    }

    /// Every key under `prefix`, in order.
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, WorkerError> {
        let (mut keys, mut token) = (Vec::new(), None);
        loop {
            let page = (self.objects.list_page(bucket, prefix, 1000, token).await)
                .map_err(WorkerError::Scratch)?;
            keys.extend(page.objects.into_iter().map(|o| o.key));
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(keys),
            }
        }
    }

    /// Removes an inflated object's scratch objects once it is counted. A failure leaves
    /// them (logged): the batch is counted either way.
    async fn clean_up(&self, bucket: &str, prefix: &str) {
        let removed = async {
            let keys = self.list_keys(bucket, prefix).await?;
            stream::iter(&keys)
                .map(|key| async move {
                    (self.objects.delete(bucket, key).await).map_err(WorkerError::Scratch)
                })
                .buffer_unordered(READS_IN_FLIGHT)
                .try_collect::<Vec<()>>()
                .await?;
            Ok::<_, WorkerError>(keys.len())
        }
        .await;
        match removed {
            Ok(count) => tracing::info!(%prefix, count, "scratch objects removed"),
            Err(error) => {
                tracing::warn!(%prefix, error = %crate::report(&error), "could not remove every scratch object")
            }
        }
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(
    mut reader: BoxedRead,
) -> Result<T, WorkerError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| WorkerError::BadPartsList(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| WorkerError::BadPartsList(e.to_string()))
}
