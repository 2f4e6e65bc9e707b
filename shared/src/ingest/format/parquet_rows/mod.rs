//! Parquet: rows of a file's row groups, typed by the schema as a JSON Lines object is
//! ([`JsonRowTyper`]), its top-level columns the fields. The decoder reads from bytes in
//! memory ([`Sparse`]): a whole object, or a row-group task's column chunks and footer. A
//! bad value rejects its row alone (row number, reason; its row group and row in it); data
//! that does not decode (a corrupt page) rejects the rest of its row group row by row, and
//! the next groups are still read.

pub mod footer;
pub mod projection;
pub mod sparse;
pub mod values;

#[cfg(any(test, feature = "contract"))]
pub mod test_files;
#[cfg(test)]
pub mod tests;

use std::collections::HashSet;
use std::ops::Range;

use ::parquet::file::reader::FileReader;
use ::parquet::file::serialized_reader::{ReadOptionsBuilder, SerializedFileReader};
use ::parquet::record::reader::RowIter;
use ::parquet::record::{Field, Row};
use ::parquet::schema::types::Type;
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
    source: Sparse,
    typer: JsonRowTyper,
    /// The fields read (`unmapped: drop`): the other columns' chunks are neither fetched
    /// nor decoded. `None`: every field.
    projection: Option<Type>,
    /// Declared timestamp columns: a DATE there is midnight UTC, not a day's text.
    timestamps: HashSet<String>,
    /// Row number (1-based) of the first row read, counted over the whole file.
    first_row: u64,
    /// The chosen row groups in order: read one at a time, so data that does not decode
    /// costs the rest of its group only.
    groups: Vec<Group>,
    /// The group being read (an index into `groups`).
    current: usize,
    rows: Option<RowIter<'static>>,
    /// The rest of the current group, whose data did not decode: each row a reject.
    broken: Option<Broken>,
    /// Whether the chosen groups run to the file's last one (or the file has none).
    ends_file: bool,
    records: u64,
}

/// A row group: its index in the file, the file row number of its first row, its rows.
#[derive(Debug, Clone, Copy)]
struct Group {
    index: usize,
    first: u64,
    rows: u64,
}

/// The rows of a group from `next` up to `stop` (file row numbers) that will not decode.
struct Broken {
    next: u64,
    stop: u64,
    reason: String,
}

/// One step of the read: a row (and its file row number), or a row that will not decode.
enum Step {
    Row(Row, u64),
    Broken(u64),
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
        let metadata = all.metadata();
        let projection = projection::needed_fields(schema)
            .and_then(|needed| projection::projected_schema(metadata, &needed));
        let mut first_row = 1;
        for group in &metadata.row_groups()[..groups.start] {
            first_row += group.num_rows().max(0) as u64;
        }
        let mut chosen = Vec::with_capacity(groups.len());
        let mut next = first_row;
        for index in groups.clone() {
            let rows = metadata.row_group(index).num_rows().max(0) as u64;
            chosen.push(Group {
                index,
                first: next,
                rows,
            });
            next += rows;
        }
        let timestamps = schema
            .columns
            .iter()
            .filter(|c| c.kind == ColumnType::Timestamp)
            .map(|c| c.name.clone())
            .collect();
        Ok(Self {
            source,
            typer,
            projection,
            timestamps,
            first_row,
            groups: chosen,
            current: 0,
            rows: None,
            broken: None,
            ends_file: groups.end == count,
            records: 0,
        })
    }

    /// Counts a TTL duration from `epoch_seconds` (tests).
    pub fn loaded_at(mut self, epoch_seconds: u64) -> Self {
        self.typer = self.typer.loaded_at(epoch_seconds);
        self
    }

    /// Whether this read holds the file's last row group: an object planned as several
    /// row-group tasks is counted once, as one file, by the task that ends it.
    pub fn ends_file(&self) -> bool {
        self.ends_file
    }

    /// Rows yielded (rows and rejects), skipped ones included.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Skips up to `n` rows untyped (a resumed read); returns how many there were. Rows of
    /// a group that did not decode count as skipped: an earlier part rejected them.
    pub fn skip(&mut self, n: u64) -> u64 {
        let mut skipped = 0;
        while skipped < n && self.step().is_some() {
            skipped += 1;
        }
        skipped
    }

    /// The next row or reject; `None` at the end.
    pub fn next_decoded(&mut self) -> Option<Decoded> {
        let (row, line) = match self.step()? {
            Step::Row(row, line) => (row, line),
            Step::Broken(line) => {
                let reason = self.broken.as_ref().map(|b| b.reason.as_str());
                return Some(Decoded::Reject(RowReject {
                    line,
                    byte_offset: None,
                    reason: format!(
                        "{}: the row group's data does not decode from here, so this row is \
                         not loaded (nor the rest of its group; the next groups are read): {}",
                        self.position(line),
                        reason.unwrap_or_default()
                    ),
                    raw: String::new(),
                }));
            }
        };
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
                reason: format!("{}: {reason}", self.position(line)),
                raw: raw_text(row.to_string().as_bytes()),
            }),
        })
    }

    /// The next row of the chosen groups, in file order, or the next row of a group that
    /// did not decode: every row of every group is one step, so row numbers stay exact.
    fn step(&mut self) -> Option<Step> {
        loop {
            let group = *self.groups.get(self.current)?;
            if let Some(broken) = &mut self.broken {
                if broken.next < broken.stop {
                    broken.next += 1;
                    self.records += 1;
                    return Some(Step::Broken(broken.next - 1));
                }
                self.broken = None;
                self.next_group(group);
                continue;
            }
            let line = self.first_row + self.records;
            if self.rows.is_none() {
                match self.open_group(group.index) {
                    Ok(rows) => self.rows = Some(rows),
                    Err(reason) => {
                        self.break_group(group, line, reason);
                        continue;
                    }
                }
            }
            let Some(rows) = &mut self.rows else {
                continue;
            };
            match rows.next() {
                Some(Ok(row)) if line < group.first + group.rows => {
                    self.records += 1;
                    return Some(Step::Row(row, line));
                }
                Some(Ok(_)) => self.next_group(group),
                Some(Err(error)) => self.break_group(group, line, error.to_string()),
                None if line < group.first + group.rows => {
                    let reason = "the row group holds fewer rows than its footer says";
                    self.break_group(group, line, reason.to_owned());
                }
                None => self.next_group(group),
            }
        }
    }

    /// The rest of `group` from row `line` is rejected row by row; its reader is dropped.
    fn break_group(&mut self, group: Group, line: u64, reason: String) {
        self.rows = None;
        self.broken = Some(Broken {
            next: line,
            stop: group.first + group.rows,
            reason,
        });
    }

    /// On to the group after `group`, numbering on from its end.
    fn next_group(&mut self, group: Group) {
        self.rows = None;
        self.current += 1;
        self.records = group.first + group.rows - self.first_row;
    }

    /// A reader of one row group (its footer parsed again: a few KB, once a group).
    fn open_group(&self, index: usize) -> Result<RowIter<'static>, String> {
        let options = ReadOptionsBuilder::new()
            .with_predicate(Box::new(move |_, i| i == index))
            .build();
        let reader = SerializedFileReader::new_with_options(self.source.clone(), options)
            .map_err(|error| error.to_string())?;
        let reader: Box<dyn FileReader> = Box::new(reader);
        RowIter::from_file_into(reader)
            .project(self.projection.clone())
            .map_err(|error| error.to_string())
    }

    /// Where file row `line` is: its row group and its row in it (both 0-based, as the
    /// footer numbers groups).
    fn position(&self, line: u64) -> String {
        let at = self.groups.partition_point(|g| g.first <= line);
        match at.checked_sub(1).map(|i| self.groups[i]) {
            Some(group) => format!("row group {}, row {}", group.index, line - group.first),
            None => format!("row {line}"),
        }
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
