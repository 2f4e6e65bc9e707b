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
