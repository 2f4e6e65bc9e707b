//! Streaming CSV decode: bytes arrive from the HTTP body, rows leave typed, one at a time.
//! Nothing holds a whole object: memory per object is one record plus the reader's buffer.
//!
//! RFC 4180 quoting (commas, doubled quotes, newlines inside quotes), CRLF, a UTF-8 BOM and
//! blank lines are handled; an empty object has no header and no rows.

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::io::AsyncBufRead;

use crate::contract::dialect::CsvDialect;
use crate::contract::schema::Schema;
use crate::ingest::csv_stream::{DEFAULT_MAX_RECORD_BYTES, Record, RecordReader};
use crate::ingest::typing::{HeaderError, RowTyper, TypedRow};

/// Raw text kept per rejected row in the report.
pub const MAX_RAW_BYTES: usize = 1024;

#[derive(Debug, Error)]
pub enum DecodeError {
    /// The object is unusable as a whole (permanent).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The header record is longer than the record cap (permanent).
    #[error("the header is longer than {max} bytes (the record cap)")]
    HeaderTooLong { max: usize },
    /// Reading the body failed (e.g. the connection dropped): retryable.
    #[error("reading the object failed")]
    Read(#[source] std::io::Error),
    /// A Parquet object whose footer or schema is unusable (permanent).
    #[error(transparent)]
    Parquet(Box<crate::ingest::format::parquet_rows::ParquetOpenError>),
}

impl From<crate::ingest::format::parquet_rows::ParquetOpenError> for DecodeError {
    fn from(error: crate::ingest::format::parquet_rows::ParquetOpenError) -> Self {
        Self::Parquet(Box::new(error))
    }
}

/// One rejected row: where it is, why, and what it said (capped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowReject {
    /// 1-based line; in a ranged read, counted from the range's first row.
    pub line: u64,
    /// Byte offset of the row in the object: in ranged reads (where a line number would need
    /// every byte before the range) and for records over the cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<u64>,
    pub reason: String,
    pub raw: String,
}

/// In a ranged read, the rows the range owns: those whose first byte is in `from..to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowWindow {
    pub from: u64,
    pub to: u64,
}

/// What the decoder yields for each record.
#[derive(Debug, PartialEq)]
pub enum Decoded {
    Row(TypedRow),
    Reject(RowReject),
}

pub struct ObjectDecoder<R> {
    reader: RecordReader<R>,
    /// `None` once there are no more rows (or never were: no header).
    typer: Option<RowTyper>,
    record: Record,
    window: Option<RowWindow>,
    /// Where the record after the last one yielded starts (a row boundary to resume at).
    next_row: u64,
    /// Records yielded (rows and rejects), the way a resumed compressed read skips them.
    records: u64,
    /// The header's names (empty in a ranged read, whose header came from elsewhere).
    header: Vec<String>,
    /// Where the header read from the object ends (0: none was read).
    header_end: u64,
    /// For the raw text of rejects.
    dialect: CsvDialect,
}

/// The names a headerless CSV's fields have: the schema's columns, in order.
pub fn schema_header(schema: &Schema) -> Vec<String> {
    schema.columns.iter().map(|c| c.name.clone()).collect()
}

impl<R: AsyncBufRead + Unpin> ObjectDecoder<R> {
    /// Reads the header and applies the schema to it (records capped at the default).
    pub async fn open(read: R, schema: &Schema) -> Result<Self, DecodeError> {
        Self::open_capped(read, schema, DEFAULT_MAX_RECORD_BYTES).await
    }

    /// Reads the header and applies the schema to it; records over `max_record_bytes` are
    /// rejected, not buffered.
    pub async fn open_capped(
        read: R,
        schema: &Schema,
        max_record_bytes: usize,
    ) -> Result<Self, DecodeError> {
        let dialect = schema.csv;
        let mut reader = RecordReader::new(read)
            .with_dialect(&dialect)
            .with_max_record_bytes(max_record_bytes);
        let mut record = Record::default();
        if !dialect.header {
            // The schema names the columns, in order; every record is data.
            let header = schema_header(schema);
            let typer = RowTyper::new(schema, &Record::from_fields(&header))?;
            let mut reader = reader.mid_object();
            reader.skip_bom().await.map_err(DecodeError::Read)?;
            return Ok(Self {
                next_row: reader.position(),
                reader,
                typer: Some(typer),
                record,
                window: None,
                records: 0,
                header,
                header_end: 0,
                dialect,
            });
        }
        // No header at all: an empty object, which has no rows either.
        let typer = match reader.read(&mut record).await.map_err(DecodeError::Read)? {
            true if record.is_oversized() => {
                return Err(DecodeError::HeaderTooLong {
                    max: max_record_bytes,
                });
            }
            true => Some(RowTyper::new(schema, &record)?),
            false => None,
        };
        let header = (record.iter())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect();
        Ok(Self {
            next_row: reader.position(),
            header_end: reader.position(),
            reader,
            typer,
            record,
            window: None,
            records: 0,
            header,
            dialect,
        })
    }

    /// A ranged read: the header came from elsewhere, and only rows in `window` are yielded.
    pub fn with_typer(
        reader: RecordReader<R>,
        typer: RowTyper,
        window: RowWindow,
        dialect: CsvDialect,
    ) -> Self {
        Self {
            next_row: reader.position(),
            reader,
            typer: Some(typer),
            record: Record::default(),
            window: Some(window),
            records: 0,
            header: Vec::new(),
            header_end: 0,
            dialect,
        }
    }

    /// Offset of the next byte the reader would read (after the last record, at the end).
    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    /// Where the record after the last one yielded starts: a fresh parser started there
    /// reads exactly the rows this decoder has not yielded yet.
    pub fn next_row(&self) -> u64 {
        self.next_row
    }

    /// Records yielded so far (rows and rejects), skipped ones included.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The header's names, as read (lossy UTF-8); empty in a ranged read.
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// Where the header read from the object ends (0 when none was: headerless, ranged).
    pub fn header_end(&self) -> u64 {
        self.header_end
    }

    /// Skips up to `n` records without typing them (a resumed compressed read: these rows
    /// were loaded by an earlier part); returns how many there were.
    pub async fn skip(&mut self, n: u64) -> Result<u64, std::io::Error> {
        let mut skipped = 0;
        while skipped < n && self.typer.is_some() {
            if !self.reader.read(&mut self.record).await? {
                self.typer = None;
                break;
            }
            skipped += 1;
            self.records += 1;
            self.next_row = self.record.end();
        }
        Ok(skipped)
    }

    /// A decoder with no rows.
    pub fn empty(read: R) -> Self {
        Self {
            reader: RecordReader::new(read),
            typer: None,
            record: Record::default(),
            window: None,
            next_row: 0,
            records: 0,
            header: Vec::new(),
            header_end: 0,
            dialect: CsvDialect::default(),
        }
    }

    /// The next row or reject; `None` at the end of the object. An error is a failed read
    /// of the body (retryable), never bad data.
    pub async fn next(&mut self) -> Result<Option<Decoded>, std::io::Error> {
        loop {
            let Some(typer) = &self.typer else {
                return Ok(None);
            };
            if !self.reader.read(&mut self.record).await? {
                self.typer = None;
                return Ok(None);
            }
            if self.window.is_none_or(|w| self.record.start() < w.to) {
                // Yielded below (a row or a reject), unless it is before a range's window.
                if self.window.is_none_or(|w| self.record.start() >= w.from) {
                    self.records += 1;
                    self.next_row = self.record.end();
                }
            }
            let record = &self.record;
            let reject = |reason| {
                Decoded::Reject(RowReject {
                    line: record.line(),
                    byte_offset: (self.window.is_some() || record.is_oversized())
                        .then(|| record.start()),
                    reason,
                    raw: raw_text(record, &self.dialect),
                })
            };
            if let Some(window) = self.window {
                if record.start() < window.from {
                    continue; // before the range: not this range's row
                }
                if record.start() >= window.to {
                    self.typer = None; // the next range's first row: this range is done
                    return Ok(None);
                }
            }
            if record.is_oversized() {
                return Ok(Some(reject(format!(
                    "a record of {} bytes or more is longer than the {}-byte record cap (DynamoDB \
                     items hold at most 400 KB); skipped to the next record",
                    record.end() - record.start(),
                    self.reader.max_record_bytes()
                ))));
            }
            return Ok(Some(match typer.type_row(record) {
                Ok(row) => Decoded::Row(row),
                Err(reason) => reject(reason.to_string()),
            }));
        }
    }
}

/// The record as CSV text of its dialect again, capped at [`MAX_RAW_BYTES`] (on a char
/// boundary).
fn raw_text(record: &Record, dialect: &CsvDialect) -> String {
    let (delimiter, quote) = (dialect.delimiter as char, dialect.quote as char);
    let fields: Vec<String> = record
        .iter()
        .map(|f| {
            let f = String::from_utf8_lossy(f);
            if f.contains([delimiter, quote, '\n', '\r']) {
                let doubled = format!("{quote}{quote}");
                format!("{quote}{}{quote}", f.replace(quote, &doubled))
            } else {
                f.into_owned()
            }
        })
        .collect();
    let mut text = fields.join(&delimiter.to_string());
    if text.len() > MAX_RAW_BYTES {
        let mut cut = MAX_RAW_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Rows and rejects of a whole in-memory object (tests and benchmarks).
#[derive(Debug, Default, PartialEq)]
pub struct DecodedObject {
    pub rows: Vec<TypedRow>,
    pub rejects: Vec<RowReject>,
}

pub async fn decode_all(bytes: &[u8], schema: &Schema) -> Result<DecodedObject, DecodeError> {
    let mut decoder = ObjectDecoder::open(bytes, schema).await?;
    let mut out = DecodedObject::default();
    while let Some(decoded) = decoder.next().await.map_err(DecodeError::Read)? {
        match decoded {
            Decoded::Row(row) => out.rows.push(row),
            Decoded::Reject(reject) => out.rejects.push(reject),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::item::Value as AttributeValue;

    async fn decode(text: &str) -> DecodedObject {
        decode_all(text.as_bytes(), &Schema::sensor())
            .await
            .unwrap()
    }

    fn s(row: &TypedRow, name: &str) -> String {
        match &row.item[name] {
            AttributeValue::S(s) | AttributeValue::N(s) => s.clone(),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn bad_rows_are_rejected_with_line_reason_and_raw_text_and_the_rest_continue() {
        let decoded = decode(
            "timestamp,temp,humidity,measure_point\n\
             2025-11-26 02:56:13 UTC,hot,59.1,Kyiv_18\n\
             2025-11-26 02:56:20 UTC,22.4,58.2\n\
             yesterday,22.4,58.2,Kyiv_18\n\
             2025-11-26 02:56:34 UTC,23.1,NaN,Kyiv_18\n\
             2025-11-26 02:56:41 UTC,20.3,62.9,\n\
             \n\
             2025-11-26 02:56:48 UTC,23.3,63.2,Kyiv_18\n",
        )
        .await;
        assert_eq!(decoded.rows.len(), 1);
        assert_eq!(s(&decoded.rows[0], "temp"), "23.3");
        let lines: Vec<u64> = decoded.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6]);
        assert_eq!(
            decoded.rejects[0].raw,
            "2025-11-26 02:56:13 UTC,hot,59.1,Kyiv_18"
        );
        assert!(
            decoded.rejects[1]
                .reason
                .contains("expected 4 fields, found 3")
        );
    }

    #[tokio::test]
    async fn quoting_crlf_bom_and_quoted_newlines() {
        let decoded = decode(
            "\u{feff}timestamp,temp,humidity,\"measure_point\"\r\n\
             2025-11-26 02:56:13 UTC,1.5,2,\"Kyiv, \"\"centre\"\"\"\r\n\
             2025-11-26 02:56:14 UTC,1.5,2,\"two\nlines\"\r\n\
             2025-11-26 02:56:15 UTC,x,2,after\r\n",
        )
        .await;
        assert_eq!(s(&decoded.rows[0], "measure_point"), "Kyiv, \"centre\"");
        assert_eq!(s(&decoded.rows[1], "measure_point"), "two\nlines");
        // Line numbers count the quoted newline and are not thrown off by CRLF.
        assert_eq!(decoded.rejects[0].line, 5);
        assert_eq!(decoded.rejects[0].raw, "2025-11-26 02:56:15 UTC,x,2,after");
    }

    #[tokio::test]
    async fn crlf_files_keep_exact_line_numbers_and_skip_blank_lines() {
        let decoded = decode(
            "timestamp,temp,humidity,measure_point,note\r\n\r\n\
             2025-11-26 02:56:13 UTC,1,2,K,\"quoted\"\r\n\
             \r\n\
             2025-11-26 02:56:14 UTC,bad,2,K,x\r\n",
        )
        .await;
        assert_eq!(decoded.rows.len(), 1);
        assert_eq!(s(&decoded.rows[0], "note"), "quoted");
        assert_eq!(s(&decoded.rows[0], "measure_point"), "K");
        assert_eq!(decoded.rejects.len(), 1);
        assert_eq!(decoded.rejects[0].line, 5);
    }

    #[tokio::test]
    async fn empty_and_header_only_objects_have_no_rows() {
        assert_eq!(decode("").await, DecodedObject::default());
        assert_eq!(
            decode("timestamp,temp,humidity,measure_point\n").await,
            DecodedObject::default()
        );
        assert_eq!(
            decode("timestamp,temp,humidity,measure_point").await,
            DecodedObject::default()
        );
    }

    #[tokio::test]
    async fn a_header_without_a_required_column_rejects_the_object() {
        let err = decode_all(b"timestamp,temp,measure_point\n1,2,3\n", &Schema::sensor())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            DecodeError::Header(HeaderError::MissingColumns { .. })
        ));
        assert!(err.to_string().contains("humidity"), "{err}");
    }

    fn sensor_in(dialect: &str) -> Schema {
        let mut schema = Schema::sensor();
        schema.csv = serde_json::from_str(dialect).unwrap();
        schema
    }

    #[tokio::test]
    async fn a_semicolon_file_is_rejected_whole_as_comma_and_loads_in_its_dialect() {
        let text = "timestamp;temp;humidity;measure_point\n\
                    2025-11-26 02:56:13 UTC;21,5;59.1;\"Kyiv; centre\"\n\
                    2025-11-26 02:56:14 UTC;22.5;bad;Kyiv\n";
        let err = decode_all(text.as_bytes(), &Schema::sensor())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("lacks required column"), "{err}");
        let decoded = decode_all(text.as_bytes(), &sensor_in(r#"{"delimiter": ";"}"#))
            .await
            .unwrap();
        // `21,5` is one field here (and not a number): rejected, with its text in `;` form.
        assert_eq!(decoded.rows.len(), 0);
        assert_eq!(decoded.rejects.len(), 2);
        assert_eq!(
            decoded.rejects[0].raw,
            "2025-11-26 02:56:13 UTC;21,5;59.1;\"Kyiv; centre\""
        );
        assert_eq!(decoded.rejects[1].line, 3);
        let fixed = text.replace("21,5", "21.5").replace("bad", "58");
        let decoded = decode_all(fixed.as_bytes(), &sensor_in(r#"{"delimiter": ";"}"#))
            .await
            .unwrap();
        assert_eq!(decoded.rows.len(), 2);
        assert_eq!(s(&decoded.rows[0], "measure_point"), "Kyiv; centre");
    }

    #[tokio::test]
    async fn a_headerless_tsv_takes_the_schemas_columns_in_order_from_its_first_line() {
        let text = "2025-11-26 02:56:13 UTC\t21.5\t59.1\t'Kyiv\tA'\n\
                    \n\
                    2025-11-26 02:56:14 UTC\t22.5\t58\n\
                    2025-11-26 02:56:15 UTC\t23\t57\tLviv\n";
        let schema = sensor_in(r#"{"delimiter": "\t", "quote": "'", "header": false}"#);
        let mut decoder = ObjectDecoder::open(text.as_bytes(), &schema).await.unwrap();
        assert_eq!(
            decoder.header(),
            ["timestamp", "temp", "humidity", "measure_point"]
        );
        let mut out = DecodedObject::default();
        while let Some(decoded) = decoder.next().await.unwrap() {
            match decoded {
                Decoded::Row(row) => out.rows.push(row),
                Decoded::Reject(reject) => out.rejects.push(reject),
            }
        }
        assert_eq!(out.rows.len(), 2);
        assert_eq!(s(&out.rows[0], "measure_point"), "Kyiv\tA");
        assert_eq!(s(&out.rows[1], "measure_point"), "Lviv");
        assert_eq!(out.rejects.len(), 1);
        assert_eq!(out.rejects[0].line, 3);
        assert!(out.rejects[0].reason.contains("expected 4 fields, found 3"));
        // An empty headerless object has no rows; skipping (a compressed resume) counts
        // records from the first line.
        assert!(decode_all(b"", &schema).await.unwrap().rows.is_empty());
        let mut resumed = ObjectDecoder::open(text.as_bytes(), &schema).await.unwrap();
        assert_eq!(resumed.skip(2).await.unwrap(), 2);
        match resumed.next().await.unwrap() {
            Some(Decoded::Row(row)) => assert_eq!(s(&row, "measure_point"), "Lviv"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn raw_text_is_capped_on_a_char_boundary() {
        let long = "é".repeat(MAX_RAW_BYTES);
        let comma = CsvDialect::default();
        let raw = raw_text(&Record::from_fields(&[long.as_str(), "x"]), &comma);
        assert!(raw.len() <= MAX_RAW_BYTES && raw.len() >= MAX_RAW_BYTES - 1);
        assert_eq!(
            raw_text(&Record::from_fields(&["a,b", "c\"d"]), &comma),
            "\"a,b\",\"c\"\"d\""
        );
        let semi = CsvDialect {
            delimiter: b';',
            quote: b'\'',
            header: true,
        };
        assert_eq!(
            raw_text(&Record::from_fields(&["a,b", "c;'d"]), &semi),
            "a,b;'c;''d'"
        );
    }
}
