//! Parquet: rows of a file's row groups, typed by the schema as a JSON Lines object is
//! ([`JsonRowTyper`]), its top-level columns the fields. The decoder reads from bytes in
//! memory ([`Sparse`]): a whole object, or a row-group task's column chunks and footer. A
//! bad value rejects its row alone (row number, reason); data that does not decode rejects
//! the rows from there on as one reject.

pub mod footer;
pub mod sparse;
pub mod values;

#[cfg(test)]
pub mod test_files;
#[cfg(test)]
pub mod tests;

use std::collections::HashSet;
use std::ops::Range;

use ::parquet::file::reader::FileReader;
use ::parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
use ::parquet::record::reader::RowIter;
use ::parquet::record::{Field, Row};
use thiserror::Error;

pub use footer::{FooterError, RowGroupSpan};
pub use sparse::Sparse;

use super::jsonl::raw_text;
use crate::contract::schema::{ColumnType, Schema};
use crate::ingest::decode::{Decoded, RowReject};
use crate::ingest::item::Value;
use crate::ingest::typing::header::HeaderError;
use crate::ingest::typing::json_row::JsonRowTyper;

#[derive(Debug, Error)]
pub enum ParquetOpenError {
    #[error(transparent)]
    Footer(#[from] FooterError),
    #[error("the Parquet file does not open: {0}")]
    Reader(String),
    #[error("row groups {first}..{stop} are not in the file (it has {groups})")]
    NoSuchGroups {
        first: usize,
        stop: usize,
        groups: usize,
    },
    #[error(transparent)]
    Schema(#[from] HeaderError),
}

pub struct ParquetDecoder {
    rows: RowIter<'static>,
    typer: JsonRowTyper,
    /// Declared timestamp columns: a DATE there is midnight UTC, not a day's text.
    timestamps: HashSet<String>,
    /// Row number (1-based) of the first row read, counted over the whole file.
    first_row: u64,
    records: u64,
    done: bool,
}

impl ParquetDecoder {
    /// The rows of `groups` (every row group if `None`) of the file `source` holds; the
    /// footer must be in it, and each chosen group's column chunks.
    pub fn open(
        source: Sparse,
        groups: Option<Range<usize>>,
        schema: &Schema,
    ) -> Result<Self, ParquetOpenError> {
        let typer = JsonRowTyper::new(schema)?;
        let opened = |options| {
            SerializedFileReader::new_with_options(source.clone(), options).map_err(|error| {
                match footer_problem(&source) {
                    Some(footer) => ParquetOpenError::Footer(footer),
                    None => ParquetOpenError::Reader(error.to_string()),
                }
            })
        };
        let all = opened(ReadOptionsBuilder::new().build())?;
        let count = all.metadata().num_row_groups();
        let groups = groups.unwrap_or(0..count);
        if groups.start > groups.end || groups.end > count {
            return Err(ParquetOpenError::NoSuchGroups {
                first: groups.start,
                stop: groups.end,
                groups: count,
            });
        }
        let first_row = 1 + all.metadata().row_groups()[..groups.start]
            .iter()
            .map(|g| g.num_rows().max(0) as u64)
            .sum::<u64>();
        let chosen = groups.clone();
        let options = ReadOptionsBuilder::new()
            .with_predicate(Box::new(move |_, index| chosen.contains(&index)))
            .build();
        let reader: Box<dyn FileReader> = Box::new(opened(options)?);
        let timestamps = schema
            .columns
            .iter()
            .filter(|c| c.kind == ColumnType::Timestamp)
            .map(|c| c.name.clone())
            .collect();
        Ok(Self {
            rows: RowIter::from_file_into(reader),
            typer,
            timestamps,
            first_row,
            records: 0,
            done: false,
        })
    }

    /// Counts a TTL duration from `epoch_seconds` (tests).
    pub fn loaded_at(mut self, epoch_seconds: u64) -> Self {
        self.typer = self.typer.loaded_at(epoch_seconds);
        self
    }

    /// Rows yielded (rows and rejects), skipped ones included.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Skips up to `n` rows untyped (a resumed read); returns how many there were.
    pub fn skip(&mut self, n: u64) -> u64 {
        let mut skipped = 0;
        while skipped < n && !self.done {
            match self.rows.next() {
                Some(Ok(_)) => {
                    skipped += 1;
                    self.records += 1;
                }
                // Left for `next` to report.
                Some(Err(_)) | None => break,
            }
        }
        skipped
    }

    /// The next row or reject; `None` at the end.
    pub fn next_decoded(&mut self) -> Option<Decoded> {
        if self.done {
            return None;
        }
        let line = self.first_row + self.records;
        let row = match self.rows.next()? {
            Ok(row) => row,
            Err(error) => {
                // The reader cannot go on past data it cannot decode.
                self.done = true;
                return Some(Decoded::Reject(RowReject {
                    line,
                    byte_offset: None,
                    reason: format!(
                        "the row group's data does not decode, so this row and the rest of \
                         the batch's row groups are not loaded: {error}"
                    ),
                    raw: String::new(),
                }));
            }
        };
        self.records += 1;
        let typed = self.object(&row).and_then(|object| {
            self.typer
                .type_object(object, line, 0)
                .map_err(|e| e.to_string())
        });
        Some(match typed {
            Ok(row) => Decoded::Row(row),
            Err(reason) => Decoded::Reject(RowReject {
                line,
                byte_offset: None,
                reason,
                raw: raw_text(row.to_string().as_bytes()),
            }),
        })
    }

    fn object(&self, row: &Row) -> Result<std::collections::BTreeMap<String, Value>, String> {
        let mut object = values::row_object(row)?;
        for (name, field) in row.get_column_iter() {
            if let (Field::Date(days), true) = (field, self.timestamps.contains(name)) {
                object.insert(name.clone(), Value::S(values::date_as_timestamp(*days)?));
            }
        }
        Ok(object)
    }
}

/// The footer's own problem, if it has one: a clearer reason than the reader's.
fn footer_problem(source: &Sparse) -> Option<FooterError> {
    use ::parquet::file::reader::{ChunkReader, Length};
    let size = source.len();
    let Some(tail) = size
        .checked_sub(footer::TAIL_BYTES)
        .and_then(|at| source.get_bytes(at, footer::TAIL_BYTES as usize).ok())
    else {
        return Some(FooterError::TooSmall { size });
    };
    let length = match footer::metadata_length(&tail, size) {
        Ok(length) => length,
        Err(error) => return Some(error),
    };
    let start = footer::footer_start(size, length);
    let metadata = source.get_bytes(start, length as usize).ok()?;
    footer::decode(&metadata).err()
}
