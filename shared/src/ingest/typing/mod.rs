//! Types one CSV row into one DynamoDB item, by the job's schema. Columns are matched by header
//! name in any order; every column lands as an attribute under its header name (declared ones
//! typed, extra ones as strings); the key attributes hold the key columns' texts (composite
//! ones joined as [`keys`] documents), or, with typed keys, a single key column's own value
//! (N or B). Every value is checked against DynamoDB's own limits
//! here, so a row the service would refuse is rejected alone, with a [`RowError`] naming the
//! column and the limit, instead of failing the write that holds it.
//!
//! Strings land byte for byte (padding, whitespace-only and newline-only values included),
//! and so do a delimited string set's elements; every other type is parsed, so trimmed
//! first. Binaries, sets, lists and maps are typed by [`fields`] ([`binary`], [`sets`],
//! [`json`]); the same limits hold inside them (numbers, nesting, duplicates, size).
//!
//! An empty field of a nullable column is stored as the schema says (omitted, NULL or an
//! empty string), and the item's expiry for TTL is added when the schema sets one ([`ttl`]).

pub mod binary;
pub mod error;
pub mod fields;
pub mod header;
pub mod json;
pub mod keys;
pub mod numbers;
pub mod refusal;
pub mod sets;
pub mod size;
pub mod timestamps;
pub mod ttl;

#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod typed_keys_tests;
#[cfg(test)]
mod types_tests;

use std::collections::HashMap;

use crate::contract::schema::{EmptyValue, KeyTypes, Schema};
use crate::ingest::csv_stream::Record;
pub use crate::ingest::item::Item;
use crate::ingest::item::Value;
pub use error::{RowError, ValueError};
use fields::Typing;
pub use header::HeaderError;
use keys::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, join_parts};
pub use numbers::{Decimal, NumberError, parse_decimal};
pub use size::MAX_ITEM_BYTES;
use size::value_size;
pub use timestamps::normalise_timestamp;
use ttl::TtlRule;

/// One row, typed and keyed, and where it was in its object.
#[derive(Debug, Clone)]
pub struct TypedRow {
    /// (partition key, sort key or empty): identifies the item, for de-duplication.
    pub key: (String, String),
    pub item: Item,
    /// The 1-based line the row starts on (as in a reject of this row).
    pub line: u64,
    /// The offset of the row's first byte in its object.
    pub offset: u64,
}

/// Rows are equal when they write the same item: where they were read is not compared (a
/// ranged read counts lines from its own start, a whole read from the object's).
impl PartialEq for TypedRow {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.item == other.item
    }
}

/// How one header position is typed.
#[derive(Debug, Clone)]
struct Slot {
    /// Empty for a column with no name in the header (a trailing comma).
    name: String,
    typing: Typing,
    nullable: bool,
    key: bool,
    empty: EmptyValue,
}

/// A schema applied to one object's header.
#[derive(Debug, Clone)]
pub struct RowTyper {
    slots: Vec<Slot>,
    partition: Vec<usize>,
    sort: Vec<usize>,
    partition_attribute: String,
    sort_attribute: Option<String>,
    ttl: Option<TtlRule>,
    key_types: KeyTypes,
}

/// One key attribute's text (for telling rows apart) and size.
struct KeyValue {
    text: String,
    /// The key is the column's own typed value, already in the item; else the text is
    /// stored as S.
    typed: bool,
    bytes: usize,
}

impl RowTyper {
    /// Checks the header against the schema; linear in the header's width.
    pub fn new(schema: &Schema, header: &Record) -> Result<Self, HeaderError> {
        let found = header::names_of(header);
        let index = header::index(&found)?;
        let missing: Vec<String> = schema
            .columns
            .iter()
            .filter(|c| !c.nullable && !index.contains_key(c.name.as_str()))
            .map(|c| c.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(HeaderError::MissingColumns { missing, found });
        }
        let partition_attribute = schema.partition_attribute();
        let sort_attribute = schema.sort_attribute();
        // A composite key's attribute is not a column: a header column of that name would be
        // overwritten by the key in every row.
        let composites = [
            (schema.partition_key.len() > 1).then_some(&partition_attribute),
            sort_attribute
                .as_ref()
                .filter(|_| schema.sort_key.len() > 1),
        ];
        if let Some(clash) = composites
            .into_iter()
            .flatten()
            .find(|a| index.contains_key(a.as_str()))
        {
            return Err(HeaderError::KeyAttributeClash(clash.clone()));
        }
        let declared: HashMap<&str, _> = schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        let is_key = |name: &str| {
            schema.partition_key.iter().any(|k| k == name)
                || schema.sort_key.iter().any(|k| k == name)
        };
        let slots = found
            .iter()
            .map(|name| match declared.get(name.as_str()) {
                Some(column) => Slot {
                    name: name.clone(),
                    typing: Typing::of(column),
                    nullable: column.nullable,
                    key: is_key(name),
                    empty: schema.empty_value_of(name),
                },
                None => Slot {
                    name: name.clone(),
                    typing: Typing::string(),
                    nullable: true,
                    key: false,
                    empty: schema.empty_values,
                },
            })
            .collect();
        // A TTL column that is nullable and missing from the header: no row has an expiry.
        let ttl = schema
            .ttl
            .as_ref()
            .and_then(|ttl| match (&ttl.column, ttl.after_seconds) {
                (Some(column), _) => index.get(column.as_str()).map(|&slot| TtlRule::Column {
                    slot,
                    attribute: ttl.attribute.clone(),
                }),
                (None, Some(after)) => Some(TtlRule::Fixed {
                    loaded_at: crate::clock::now_ms() / 1000,
                    after,
                    attribute: ttl.attribute.clone(),
                }),
                (None, None) => None,
            });
        // Key columns are non-nullable, so validated schemas have them in the header.
        let positions = |names: &[String]| -> Vec<usize> {
            names
                .iter()
                .filter_map(|n| index.get(n.as_str()).copied())
                .collect()
        };
        Ok(Self {
            slots,
            partition: positions(&schema.partition_key),
            sort: positions(&schema.sort_key),
            partition_attribute,
            sort_attribute,
            ttl,
            key_types: schema.key_types,
        })
    }

    /// Counts a TTL duration from `epoch_seconds` instead of now (for tests, and for a
    /// caller that wants every object of a job to expire together).
    pub fn loaded_at(mut self, epoch_seconds: u64) -> Self {
        if let Some(TtlRule::Fixed { loaded_at, .. }) = &mut self.ttl {
            *loaded_at = epoch_seconds;
        }
        self
    }

    /// Number of fields every row must have.
    pub fn width(&self) -> usize {
        self.slots.len()
    }

    pub fn type_row(&self, row: &Record) -> Result<TypedRow, RowError> {
        if row.len() != self.slots.len() {
            return Err(RowError::FieldCount {
                expected: self.slots.len(),
                found: row.len(),
            });
        }
        let mut item = Item::with_capacity(self.slots.len() + 2);
        let mut size = 0;
        for (i, (slot, raw)) in self.slots.iter().zip(row.iter()).enumerate() {
            let fail = |problem| RowError::column(&slot.name, i, problem);
            let text = std::str::from_utf8(raw).map_err(|_| fail(ValueError::InvalidUtf8))?;
            // Strings are kept byte for byte; the other types are parsed, so padding goes.
            let text = if slot.typing.keeps_padding() {
                text
            } else {
                text.trim()
            };
            if text.is_empty() {
                if slot.key {
                    return Err(fail(ValueError::EmptyKey));
                }
                if !slot.nullable {
                    return Err(fail(ValueError::EmptyValue));
                }
                let stored = match slot.empty {
                    // An unnamed column's empty fields are always left out: no attribute name.
                    _ if slot.name.is_empty() => continue,
                    EmptyValue::Omit => continue,
                    EmptyValue::Null => Value::Null,
                    EmptyValue::EmptyString => Value::S(String::new()),
                };
                size += slot.name.len() + value_size(&stored);
                item.insert(slot.name.clone(), stored);
                continue;
            }
            if slot.name.is_empty() {
                return Err(fail(ValueError::Unnamed));
            }
            let (value, bytes) = slot.typing.value(text).map_err(fail)?;
            size += slot.name.len() + bytes;
            item.insert(slot.name.clone(), value);
        }
        if let Some(rule) = &self.ttl {
            size = self.expire(rule, &mut item, size)?;
        }
        let partition = self.key_value(&item, &self.partition);
        if partition.bytes > MAX_PARTITION_KEY_BYTES {
            return Err(RowError::PartitionKeyTooLong {
                bytes: partition.bytes,
            });
        }
        let sort = self.key_value(&item, &self.sort);
        if sort.bytes > MAX_SORT_KEY_BYTES {
            return Err(RowError::SortKeyTooLong { bytes: sort.bytes });
        }
        if !partition.typed {
            size = insert_key(&mut item, &self.partition_attribute, &partition.text, size);
        }
        if let (Some(attribute), false) = (&self.sort_attribute, sort.typed) {
            size = insert_key(&mut item, attribute, &sort.text, size);
        }
        if size > MAX_ITEM_BYTES {
            return Err(RowError::ItemTooLarge { bytes: size });
        }
        Ok(TypedRow {
            key: (partition.text, sort.text),
            item,
            line: row.line(),
            offset: row.start(),
        })
    }

    /// Adds the row's expiry (a Number) under the TTL attribute; returns the new size.
    fn expire(&self, rule: &TtlRule, item: &mut Item, size: usize) -> Result<usize, RowError> {
        let expiry = match rule {
            TtlRule::Fixed {
                loaded_at, after, ..
            } => Some(loaded_at + after),
            TtlRule::Column { slot, .. } => {
                let source = &self.slots[*slot];
                match item.get(&source.name) {
                    None => None,
                    Some(value) => ttl::expiry_of(&source.typing, value)
                        .map_err(|problem| RowError::column(&source.name, *slot, problem))?,
                }
            }
        };
        let Some(expiry) = expiry else {
            return Ok(size);
        };
        let attribute = rule.attribute();
        let value = Value::N(expiry.to_string());
        let added = attribute.len() + value_size(&value);
        Ok(match item.insert(attribute.to_owned(), value) {
            Some(old) => size + added - (attribute.len() + value_size(&old)),
            None => size + added,
        })
    }

    /// A key's value: a single column's own typed value when keys keep their types (the
    /// schema allows only S, N and B columns there; B is measured by its bytes), else the
    /// key columns' canonical texts, joined for a composite key (key columns are never
    /// null). An empty `positions` (no sort key) is an empty text.
    fn key_value(&self, item: &Item, positions: &[usize]) -> KeyValue {
        let value = |i: usize| item.get(&self.slots[i].name);
        if let ([only], KeyTypes::Typed) = (positions, self.key_types) {
            let own = value(*only);
            let bytes = match own {
                Some(Value::B(b)) => b.len(),
                other => other.and_then(Value::as_text).map_or(0, str::len),
            };
            return KeyValue {
                text: own
                    .and_then(Value::key_text)
                    .map(|t| t.into_owned())
                    .unwrap_or_default(),
                typed: true,
                bytes,
            };
        }
        let text = join_parts(
            positions
                .iter()
                .map(|&i| value(i).and_then(Value::as_text).unwrap_or_default()),
        );
        KeyValue {
            bytes: text.len(),
            typed: false,
            text,
        }
    }
}

/// Sets a key attribute unless the column of the same name already holds that very string
/// (the common single-column key); returns the item's new size (a number key column's own
/// attribute becomes the key's string, replacing its number).
fn insert_key(item: &mut Item, attribute: &str, text: &str, size: usize) -> usize {
    if matches!(item.get(attribute), Some(Value::S(existing)) if existing == text) {
        return size;
    }
    let added = attribute.len() + text.len();
    match item.insert(attribute.to_owned(), Value::S(text.to_owned())) {
        Some(old) => size + added - (attribute.len() + value_size(&old)),
        None => size + added,
    }
}
