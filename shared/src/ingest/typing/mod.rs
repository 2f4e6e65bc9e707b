//! Types one row into one DynamoDB item, by the job's schema (a CSV record here; a JSON
//! Lines object through the same slots in [`json_row`]). Columns are matched by header
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
//!
//! With an attribute mapping ([`mapping`]) a row's fields are typed first, then the mapped
//! attributes (renames, templates, constants) are written, then the columns that land
//! under their own names (all but renamed ones, or only single key columns when unmapped
//! columns are dropped), then the key attributes.

pub mod binary;
pub mod ddb_json;
pub mod error;
pub mod fields;
pub mod header;
pub mod item_key;
pub mod json;
pub mod json_row;
pub mod keys;
pub mod mapping;
// Numbers are part of the data contract (a schema's constants are checked with them too).
pub use crate::contract::numbers;
pub mod refusal;
pub mod sets;
pub mod size;
pub mod timestamps;
pub mod ttl;

#[cfg(test)]
mod mapping_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod typed_keys_tests;
#[cfg(test)]
mod types_tests;

use std::collections::{HashMap, HashSet};

use crate::contract::schema::{Attribute, EmptyValue, KeyTypes, Schema, Unmapped};
use crate::ingest::csv_stream::Record;
pub use crate::ingest::item::Item;
use crate::ingest::item::Value;
pub use error::{RowError, ValueError};
use fields::Typing;
pub use header::HeaderError;
use keys::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES, join_parts};
use mapping::{Field, Mapped};
pub use numbers::{Decimal, NumberError, parse_decimal};
pub use size::MAX_ITEM_BYTES;
pub use size::item_size;
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
    /// The row deletes its key instead of putting an item (an incremental export's line
    /// without `NewImage`: `item` then holds the key attributes).
    pub delete: bool,
    /// `item`'s size as DynamoDB counts it ([`size::item_size`]), worked out while typing
    /// (against the 400 KB limit), so a write is charged without walking the item again.
    pub size: usize,
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
    /// The column lands under its own name (not renamed, and not dropped as unmapped).
    own: bool,
}

impl Slot {
    /// What an empty field stores (`missing`: the problem if the column is required).
    fn empty_field(&self, missing: ValueError) -> Result<Field, ValueError> {
        if self.key {
            return Err(ValueError::EmptyKey);
        }
        if !self.nullable {
            return Err(missing);
        }
        let stored = match self.empty {
            // An unnamed column's empty fields are always left out: no attribute name.
            _ if self.name.is_empty() => None,
            EmptyValue::Omit => None,
            EmptyValue::Null => Some(Value::Null),
            EmptyValue::EmptyString => Some(Value::S(String::new())),
        };
        Ok(stored.map(|v| {
            let bytes = value_size(&v);
            (v, bytes)
        }))
    }
}

/// Where a key's value comes from.
#[derive(Debug, Clone)]
enum KeyPlan {
    /// The columns at these header positions (none: no sort key).
    Columns(Vec<usize>),
    /// The mapped attribute `mapped[index]`; `text`: stored as its text in S (a `from` key
    /// under text key types), else as it is.
    Mapped { index: usize, text: bool },
}

/// A schema applied to one object's header.
#[derive(Debug, Clone)]
pub struct RowTyper {
    slots: Vec<Slot>,
    mapped: Vec<Mapped>,
    partition: KeyPlan,
    sort: KeyPlan,
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
        let keep = schema.unmapped == Unmapped::Keep;
        // An extra column kept under its own name would be overwritten by a mapped attribute.
        if let Some(clash) = schema
            .attributes
            .keys()
            .find(|a| keep && schema.column(a).is_none() && index.contains_key(a.as_str()))
        {
            return Err(HeaderError::MappedAttributeClash(clash.clone()));
        }
        let mapped: Vec<Mapped> = schema
            .attributes
            .iter()
            .map(|(name, attribute)| Mapped::new(name, attribute, &index))
            .collect();
        let declared: HashMap<&str, _> = schema
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c))
            .collect();
        let keys = [&schema.partition_key, &schema.sort_key];
        // Worked out once, not per header name: the columns keys read, the renamed ones.
        let key_columns: HashSet<String> = keys
            .iter()
            .flat_map(|key| match schema.mapped_key(key) {
                Some(attribute) => attribute.columns(),
                None => key.to_vec(),
            })
            .collect();
        let renamed: HashSet<&str> = schema
            .attributes
            .values()
            .filter_map(|a| match a {
                Attribute::From(column) => Some(column.as_str()),
                _ => None,
            })
            .collect();
        let is_key = |name: &str| key_columns.contains(name);
        // A single key column is its key attribute: it lands whatever the mapping says.
        let own = |name: &str| {
            let key_attribute = keys
                .iter()
                .any(|key| key.len() == 1 && key[0] == name && schema.mapped_key(key).is_none());
            key_attribute || (keep && !renamed.contains(name))
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
                    own: own(name),
                },
                None => Slot {
                    name: name.clone(),
                    typing: Typing::string(),
                    nullable: true,
                    key: false,
                    empty: schema.empty_values,
                    own: keep,
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
        let plan = |names: &[String]| match schema.mapped_key(names) {
            Some(attribute) => KeyPlan::Mapped {
                index: schema
                    .attributes
                    .keys()
                    .position(|a| a == &names[0])
                    .unwrap_or_default(),
                text: schema.key_types.is_text() && matches!(attribute, Attribute::From(_)),
            },
            None => KeyPlan::Columns(
                names
                    .iter()
                    .filter_map(|n| index.get(n.as_str()).copied())
                    .collect(),
            ),
        };
        Ok(Self {
            slots,
            mapped,
            partition: plan(&schema.partition_key),
            sort: plan(&schema.sort_key),
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
        let mut fields: Vec<Field> = Vec::with_capacity(self.slots.len());
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
                fields.push(slot.empty_field(ValueError::EmptyValue).map_err(fail)?);
                continue;
            }
            if slot.name.is_empty() {
                return Err(fail(ValueError::Unnamed));
            }
            fields.push(Some(slot.typing.value(text).map_err(fail)?));
        }
        self.assemble(fields, Vec::new(), row.line(), row.start())
    }

    /// A row from its typed fields (one per slot) and, for JSON Lines, the undeclared
    /// fields that land under their own names (`extras`: name, value, bytes): the mapped
    /// attributes, the own-name columns, the expiry and the keys, every limit checked.
    fn assemble(
        &self,
        fields: Vec<Field>,
        extras: Vec<(String, Value, usize)>,
        line: u64,
        offset: u64,
    ) -> Result<TypedRow, RowError> {
        let expiry = match &self.ttl {
            Some(rule) => self.expiry(rule, &fields)?,
            None => None,
        };
        let mut item = Item::with_capacity_and_hasher(
            self.slots.len() + self.mapped.len() + 2,
            Default::default(),
        );
        let mut size = 0;
        for mapped in &self.mapped {
            if let Some(value) = mapped.value(&fields) {
                size = put(&mut item, &mapped.name, value, size);
            }
        }
        let partition = self.key_value(&fields, &item, &self.partition);
        if partition.bytes > MAX_PARTITION_KEY_BYTES {
            return Err(RowError::PartitionKeyTooLong {
                bytes: partition.bytes,
            });
        }
        let sort = self.key_value(&fields, &item, &self.sort);
        if sort.bytes > MAX_SORT_KEY_BYTES {
            return Err(RowError::SortKeyTooLong { bytes: sort.bytes });
        }
        for (slot, field) in self.slots.iter().zip(fields) {
            if let (true, Some((value, bytes))) = (slot.own, field) {
                size += slot.name.len() + bytes;
                item.insert(slot.name.clone(), value);
            }
        }
        for (name, value, bytes) in extras {
            size += name.len() + bytes;
            item.insert(name, value);
        }
        if let (Some(rule), Some(expiry)) = (&self.ttl, expiry) {
            size = put(
                &mut item,
                rule.attribute(),
                Value::N(expiry.to_string()),
                size,
            );
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
        debug_assert_eq!(size, item_size(&item), "the running size is the item's");
        Ok(TypedRow {
            key: (partition.text, sort.text),
            item,
            line,
            offset,
            delete: false,
            size,
        })
    }

    /// The row's expiry in epoch seconds, if it has one.
    fn expiry(&self, rule: &TtlRule, fields: &[Field]) -> Result<Option<u64>, RowError> {
        match rule {
            TtlRule::Fixed {
                loaded_at, after, ..
            } => Ok(Some(loaded_at + after)),
            TtlRule::Column { slot, .. } => {
                let source = &self.slots[*slot];
                match fields.get(*slot).and_then(Option::as_ref) {
                    None => Ok(None),
                    Some((value, _)) => ttl::expiry_of(&source.typing, value)
                        .map_err(|problem| RowError::column(&source.name, *slot, problem)),
                }
            }
        }
    }

    /// A key's value: a single column's own typed value when keys keep their types (the
    /// schema allows only S, N and B columns there; B is measured by its bytes), else the
    /// key columns' canonical texts, joined for a composite key (key columns are never
    /// null). An empty `positions` (no sort key) is an empty text. A mapped key is the
    /// attribute as the mapping wrote it, or its text for a `from` key under text keys.
    fn key_value(&self, fields: &[Field], item: &Item, plan: &KeyPlan) -> KeyValue {
        let text_key = |text: String| KeyValue {
            bytes: text.len(),
            typed: false,
            text,
        };
        let own = match plan {
            KeyPlan::Mapped { index, text } => {
                let own = self.mapped.get(*index).and_then(|m| item.get(&m.name));
                if *text {
                    return text_key(own.and_then(Value::as_text).unwrap_or_default().into());
                }
                own
            }
            KeyPlan::Columns(positions) => {
                let value = |i: usize| fields.get(i).and_then(Option::as_ref).map(|(v, _)| v);
                match (positions.as_slice(), self.key_types) {
                    ([only], KeyTypes::Typed) => value(*only),
                    _ => {
                        return text_key(join_parts(
                            positions
                                .iter()
                                .map(|&i| value(i).and_then(Value::as_text).unwrap_or_default()),
                        ));
                    }
                }
            }
        };
        let bytes = match own {
            Some(Value::B(b)) => b.len(),
            other => other.and_then(Value::as_text).map_or(0, str::len),
        };
        KeyValue {
            text: own
                .and_then(Value::key_text)
                .map(|t| t.into_owned())
                .unwrap_or_default(),
            typed: true,
            bytes,
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
    put(item, attribute, Value::S(text.to_owned()), size)
}

/// Sets an attribute; returns the item's new size (a replaced value no longer counts).
fn put(item: &mut Item, attribute: &str, value: Value, size: usize) -> usize {
    let added = attribute.len() + value_size(&value);
    match item.insert(attribute.to_owned(), value) {
        Some(old) => size + added - (attribute.len() + value_size(&old)),
        None => size + added,
    }
}
