//! DynamoDB JSON: each non-blank line an `{"Item": {...}}` (as DynamoDB's S3 exports write
//! it) or a bare item, in DynamoDB's typed form. Items land as they are, attribute for
//! attribute; the schema gives only the key (names and types, [`ItemKey`]), which every
//! item must carry. A bad line (not JSON, not an object, an unknown type descriptor, a value
//! or the item over a DynamoDB limit, a key missing or mistyped) is rejected alone with its
//! line, byte offset and reason; the lines after it load.

use std::collections::BTreeMap;

use tokio::io::AsyncBufRead;

use super::jsonl::raw_text;
use super::lines::{Line, LineReader};
use crate::contract::schema::Schema;
use crate::ingest::csv_stream::DEFAULT_MAX_RECORD_BYTES;
use crate::ingest::decode::{Decoded, RowReject};
use crate::ingest::item::{Item, Value};
use crate::ingest::typing::TypedRow;
use crate::ingest::typing::ddb_json::{self, TypedJsonError};
use crate::ingest::typing::item_key::ItemKey;

pub struct DynamoDbJsonDecoder<R> {
    reader: LineReader<R>,
    key: ItemKey,
    line: Line,
    next_row: u64,
    records: u64,
    done: bool,
    /// Lines are an incremental export's changes, not items.
    changes: bool,
}

impl<R> DynamoDbJsonDecoder<R> {
    /// Reads lines as an incremental export's changes ([`change_of_line`]).
    pub fn reading_changes(mut self) -> Self {
        self.changes = true;
        self
    }
}

impl<R: AsyncBufRead + Unpin> DynamoDbJsonDecoder<R> {
    pub fn open(read: R, schema: &Schema) -> Self {
        Self::open_at(read, 0, schema, DEFAULT_MAX_RECORD_BYTES)
    }

    /// From `offset`, a line start (0: the whole object); lines over `max_record_bytes`
    /// are rejected, not buffered.
    pub fn open_at(read: R, offset: u64, schema: &Schema, max_record_bytes: usize) -> Self {
        Self {
            reader: LineReader::at_offset(read, offset).with_max_line_bytes(max_record_bytes),
            key: ItemKey::of_schema(schema),
            line: Line::default(),
            next_row: offset,
            records: 0,
            done: false,
            changes: false,
        }
    }

    pub fn position(&self) -> u64 {
        self.reader.position()
    }

    pub fn next_row(&self) -> u64 {
        self.next_row
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Skips up to `n` non-blank lines unparsed (a resumed read); returns how many.
    pub async fn skip(&mut self, n: u64) -> std::io::Result<u64> {
        let mut skipped = 0;
        while skipped < n && !self.done {
            if !self.reader.read(&mut self.line).await? {
                self.done = true;
                break;
            }
            skipped += 1;
            self.records += 1;
            self.next_row = self.line.end();
        }
        Ok(skipped)
    }

    /// The next row or reject; `None` at the end. An error is a failed read, never data.
    pub async fn next(&mut self) -> std::io::Result<Option<Decoded>> {
        if self.done || !self.reader.read(&mut self.line).await? {
            self.done = true;
            return Ok(None);
        }
        self.records += 1;
        self.next_row = self.line.end();
        let line = &self.line;
        let typed = if line.is_oversized() {
            Err(format!(
                "a line of {} bytes or more is longer than the {}-byte record cap (DynamoDB \
                 items hold at most 400 KB); skipped to the next line",
                line.end() - line.start(),
                self.reader.max_line_bytes()
            ))
        } else {
            match std::str::from_utf8(line.text()) {
                Err(_) => Err("invalid UTF-8".to_owned()),
                Ok(text) => {
                    let change = match self.changes {
                        true => change_of_line(text),
                        false => item_of_line(text).map(|item| (item, false)),
                    };
                    change.and_then(|(item, delete)| {
                        let (key, size) = self.key.check(&item)?;
                        Ok(TypedRow {
                            key,
                            item,
                            line: line.line(),
                            offset: line.start(),
                            delete,
                            size,
                        })
                    })
                }
            }
        };
        Ok(Some(match typed {
            Ok(row) => Decoded::Row(row),
            Err(reason) => Decoded::Reject(RowReject {
                line: line.line(),
                byte_offset: Some(line.start()),
                reason,
                raw: raw_text(line.text()),
            }),
        }))
    }
}

/// One line's item: the `Item` wrapper's when the line is one (and reads as one), else the
/// line itself as a bare item (so an item whose only attribute is named `Item` still
/// loads).
pub fn item_of_line(text: &str) -> Result<Item, String> {
    let object = ddb_json::parse_line(text).map_err(|e| line_reason(&e))?;
    if object.len() == 1 && matches!(object.get("Item"), Some(Value::M(_))) {
        let wrapped = wrapped(object.clone());
        return match wrapped {
            Ok(item) => Ok(item),
            Err(error) => ddb_json::item(object).map_err(|_| line_reason(&error)),
        };
    }
    ddb_json::item(object).map_err(|e| line_reason(&e))
}

/// One incremental export line, `{"Metadata":..,"Keys":..,"NewImage":..,"OldImage":..}`:
/// its `NewImage` to put (an insert or a modification), or, without one, its `Keys` to
/// delete (`true`).
pub fn change_of_line(text: &str) -> Result<(Item, bool), String> {
    let mut object = ddb_json::parse_line(text).map_err(|e| change_reason(&e))?;
    if let Some(image) = object.remove("NewImage") {
        let item = ddb_json::object_member(image, "NewImage to hold an object of typed attributes")
            .map_err(|e| change_reason(&e))?;
        return Ok((item, false));
    }
    let keys = object
        .remove("Keys")
        .ok_or_else(|| "an incremental export's line has neither NewImage nor Keys".to_owned())?;
    let keys = ddb_json::object_member(keys, "Keys to hold an object of typed attributes")
        .map_err(|e| change_reason(&e))?;
    Ok((keys, true))
}

fn change_reason(error: &TypedJsonError) -> String {
    format!("the line is not one incremental export change: {error}")
}

fn wrapped(mut object: BTreeMap<String, Value>) -> Result<Item, TypedJsonError> {
    let inner = object.remove("Item").unwrap_or(Value::Null);
    ddb_json::object_member(inner, "Item to hold an object of typed attributes")
}

fn line_reason(error: &TypedJsonError) -> String {
    format!("the line is not one DynamoDB JSON item: {error}")
}
