//! One decoder interface over every format, dispatched by [`Format`]: what the worker opens,
//! pumps, stops and resumes, whatever the object holds.

use tokio::io::AsyncBufRead;

use super::Format;
use super::ddbjson::DynamoDbJsonDecoder;
use super::jsonl::JsonLinesDecoder;
use super::parquet_rows::{ParquetDecoder, Sparse};
use crate::contract::schema::Schema;
use crate::ingest::decode::{DecodeError, Decoded, ObjectDecoder};

// One per object being read, never in a collection: boxing CSV's would cost it an
// allocation per object for nothing.
#[allow(clippy::large_enum_variant)]
pub enum RowDecoder<R> {
    Csv(ObjectDecoder<R>),
    JsonLines(JsonLinesDecoder<R>),
    DynamoDbJson(DynamoDbJsonDecoder<R>),
    /// Decoded from bytes in memory: the reader is not kept.
    Parquet(Box<ParquetDecoder>),
}

impl<R: AsyncBufRead + Unpin> RowDecoder<R> {
    /// A whole object in `format`; records over `max_record_bytes` are rejected.
    pub async fn open(
        format: Format,
        read: R,
        schema: &Schema,
        max_record_bytes: usize,
    ) -> Result<Self, DecodeError> {
        Ok(match format {
            Format::Csv => {
                Self::Csv(ObjectDecoder::open_capped(read, schema, max_record_bytes).await?)
            }
            Format::JsonLines => Self::JsonLines(JsonLinesDecoder::open_capped(
                read,
                schema,
                max_record_bytes,
            )?),
            Format::DynamoDbJson => Self::DynamoDbJson(DynamoDbJsonDecoder::open_at(
                read,
                0,
                schema,
                max_record_bytes,
            )),
            Format::Parquet => {
                // Row groups are found from the footer at the end: the object is read whole
                // (a large one is planned by row group and fetched by range instead).
                let mut read = read;
                let mut bytes = Vec::new();
                tokio::io::AsyncReadExt::read_to_end(&mut read, &mut bytes)
                    .await
                    .map_err(DecodeError::Read)?;
                let source = Sparse::whole(bytes.into());
                Self::Parquet(Box::new(ParquetDecoder::open(source, None, schema)?))
            }
        })
    }

    /// The next row or reject; `None` at the end. An error is a failed read of the body.
    pub async fn next(&mut self) -> std::io::Result<Option<Decoded>> {
        match self {
            Self::Csv(d) => d.next().await,
            Self::JsonLines(d) => d.next().await,
            Self::DynamoDbJson(d) => d.next().await,
            Self::Parquet(d) => Ok(d.next_decoded()),
        }
    }

    /// Skips up to `n` records untyped (a resumed read); returns how many there were.
    pub async fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        match self {
            Self::Csv(d) => d.skip(n).await,
            Self::JsonLines(d) => d.skip(n).await,
            Self::DynamoDbJson(d) => d.skip(n).await,
            Self::Parquet(d) => Ok(d.skip(n)),
        }
    }

    /// Offset of the next byte the reader would read.
    pub fn position(&self) -> u64 {
        match self {
            Self::Csv(d) => d.position(),
            Self::JsonLines(d) => d.position(),
            Self::DynamoDbJson(d) => d.position(),
            // Read by rows, never resumed by offset.
            Self::Parquet(_) => 0,
        }
    }

    /// Where the record after the last one yielded starts.
    pub fn next_row(&self) -> u64 {
        match self {
            Self::Csv(d) => d.next_row(),
            Self::JsonLines(d) => d.next_row(),
            Self::DynamoDbJson(d) => d.next_row(),
            Self::Parquet(_) => 0,
        }
    }

    /// Records yielded so far (rows and rejects), skipped ones included.
    pub fn records(&self) -> u64 {
        match self {
            Self::Csv(d) => d.records(),
            Self::JsonLines(d) => d.records(),
            Self::DynamoDbJson(d) => d.records(),
            Self::Parquet(d) => d.records(),
        }
    }

    /// The CSV header's names (a ranged resume needs them); empty for the others.
    pub fn header(&self) -> &[String] {
        match self {
            Self::Csv(d) => d.header(),
            Self::JsonLines(_) | Self::DynamoDbJson(_) | Self::Parquet(_) => &[],
        }
    }

    /// Where a header read from the object ends (0: none was).
    pub fn header_end(&self) -> u64 {
        match self {
            Self::Csv(d) => d.header_end(),
            Self::JsonLines(_) | Self::DynamoDbJson(_) | Self::Parquet(_) => 0,
        }
    }
}

impl<R> From<ObjectDecoder<R>> for RowDecoder<R> {
    fn from(decoder: ObjectDecoder<R>) -> Self {
        Self::Csv(decoder)
    }
}
