//! One field's text to its attribute value, by its column's type and options.

use super::binary;
use super::error::ValueError;
use super::json;
use super::numbers::{self, parse_decimal};
use super::sets::SetSpec;
use super::size::{number_size, value_size};
use super::timestamps::{epoch_number, normalise_timestamp};
use crate::contract::schema::{BinaryEncoding, Column, ColumnType, TimestampStore};
use crate::ingest::item::Value;

/// How one column's fields are typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typing {
    pub kind: ColumnType,
    encoding: BinaryEncoding,
    /// How a set column's field is read (built once, not per field; unused otherwise).
    set: SetSpec,
    pub store: TimestampStore,
}

impl Typing {
    pub fn of(column: &Column) -> Self {
        Self {
            kind: column.kind,
            encoding: column.encoding(),
            set: SetSpec {
                kind: column.kind,
                encoding: column.encoding(),
                separator: column.separator.clone(),
            },
            store: column.store(),
        }
    }

    /// An undeclared column: a string.
    pub fn string() -> Self {
        Self::of(&Column::new("", ColumnType::String))
    }

    /// Whether fields are kept byte for byte (strings, string set elements); every other
    /// type is parsed, so padding around it goes.
    pub fn keeps_padding(&self) -> bool {
        matches!(self.kind, ColumnType::String | ColumnType::StringSet)
    }

    /// A JSON Lines field's value: a string is typed as the CSV text would be, a number or
    /// bool by its exact text, an array in a set or list column and an object in a map
    /// column as they are (no text detour), anything in a `json` column as it is. `None`:
    /// the value stores nothing (JSON null, or an empty string in a non-string column).
    pub fn json_value(&self, value: Value) -> Result<Option<(Value, usize)>, ValueError> {
        let sized = |value: Value| {
            let size = value_size(&value);
            Some((value, size))
        };
        let text = |text: &str| -> Result<Option<(Value, usize)>, ValueError> {
            let text = if self.keeps_padding() {
                text
            } else {
                text.trim()
            };
            if text.is_empty() {
                return Ok(None);
            }
            self.value(text).map(Some)
        };
        match (self.kind, value) {
            (_, Value::Null) => Ok(None),
            (ColumnType::Json, value) => Ok(sized(value)),
            (_, Value::S(s)) => text(&s),
            (_, Value::N(n)) => text(&n),
            (_, Value::Bool(b)) => text(if b { "true" } else { "false" }),
            (ColumnType::List, Value::L(list)) => Ok(sized(Value::L(list))),
            (
                ColumnType::StringSet | ColumnType::NumberSet | ColumnType::BinarySet,
                Value::L(l),
            ) => Ok(sized(self.set.from_list(l)?)),
            (ColumnType::Map, Value::M(map)) => Ok(sized(Value::M(map))),
            // Bytes as they are (a Parquet binary), never through a text encoding.
            (ColumnType::Binary, Value::B(bytes)) => Ok(sized(Value::B(bytes))),
            (_, Value::B(_)) => Err(ValueError::JsonType("binary")),
            (_, Value::L(_)) => Err(ValueError::JsonType("an array")),
            (_, _) => Err(ValueError::JsonType("an object")),
        }
    }

    /// A field's attribute value and the bytes it adds to the item. Numbers are stored in
    /// their canonical text, so a key built from one is the same for `7` and `007`.
    pub fn value(&self, text: &str) -> Result<(Value, usize), ValueError> {
        let number = |n: numbers::Decimal| {
            let size = number_size(n.significant);
            (Value::N(n.text), size)
        };
        let sized = |value: Value| {
            let size = value_size(&value);
            (value, size)
        };
        Ok(match self.kind {
            ColumnType::String => (Value::S(text.to_owned()), text.len()),
            ColumnType::Number => number(parse_decimal(text)?),
            ColumnType::Integer => number(numbers::parse_integer(text)?),
            ColumnType::Bool => {
                let value = match text.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(ValueError::Bool),
                };
                (Value::Bool(value), 1)
            }
            ColumnType::Timestamp => match self.store {
                TimestampStore::Rfc3339 => sized(Value::S(normalise_timestamp(text)?)),
                store => number(epoch_number(text, store)?),
            },
            ColumnType::Binary => sized(Value::B(binary::decode(self.encoding, text)?)),
            ColumnType::StringSet | ColumnType::NumberSet | ColumnType::BinarySet => {
                sized(self.set.parse(text)?)
            }
            ColumnType::List => sized(Value::L(json::parse_list(text)?)),
            ColumnType::Map => sized(Value::M(json::parse_map(text)?)),
            ColumnType::Json => sized(json::parse(text)?),
        })
    }
}
