//! Types one JSON Lines object by the job's schema, through the same [`RowTyper`] as a CSV
//! row: its slots are the declared columns (and the columns the mapping reads), in schema
//! order, and each line's fields fill them by name. What differs from CSV is per line, as
//! each line names its own fields: a required field missing is that line's reject (CSV
//! checks its header once), and so is an undeclared field that cannot land under its own
//! name (a mapped or composite key attribute's name, an empty or over-long name).
//!
//! Values keep their JSON types without a text detour: objects are M, arrays L (or a set
//! in a set column), numbers exact; undeclared fields land as they are.

use std::collections::{BTreeMap, HashSet};

use super::error::{MAX_NAME_IN_REASON, RowError, ValueError, cap};
use super::fields::Typing;
use super::header::{HeaderError, MAX_NAME_BYTES};
use super::size::value_size;
use super::{RowTyper, TypedRow};
use crate::contract::schema::{Column, ColumnType, Schema, Unmapped};
use crate::ingest::csv_stream::Record;
use crate::ingest::item::Value;

/// The fields a schema reads, its slots: the declared columns, then the columns the mapping
/// reads (a column the mapping reads is a slot even when undeclared, so templates find it).
/// With `unmapped: drop` no other field of an object is used.
pub fn fields_read(schema: &Schema) -> Vec<String> {
    let mut names: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
    for attribute in schema.attributes.values() {
        for column in attribute.columns() {
            if !names.contains(&column) {
                names.push(column);
            }
        }
    }
    names
}

/// A schema applied to JSON Lines objects.
#[derive(Debug, Clone)]
pub struct JsonRowTyper {
    typer: RowTyper,
    /// Undeclared fields land under their own names (`unmapped: keep`).
    keep: bool,
    /// Names an undeclared field may not land under: they would overwrite the mapping or a
    /// composite key.
    reserved: HashSet<String>,
}

impl JsonRowTyper {
    /// Fails only on a schema no object could be typed by (as a CSV header would).
    pub fn new(schema: &Schema) -> Result<Self, HeaderError> {
        let names = fields_read(schema);
        let mut typer = RowTyper::new(schema, &Record::from_fields(&names))?;
        let any = Typing::of(&Column::new("", ColumnType::Json));
        for slot in &mut typer.slots {
            if schema.column(&slot.name).is_none() {
                slot.typing = any.clone(); // undeclared: lands as the JSON says
            }
        }
        let mut reserved: HashSet<String> = schema.attributes.keys().cloned().collect();
        if schema.partition_key.len() > 1 {
            reserved.insert(schema.partition_attribute());
        }
        if let Some(sort) = schema
            .sort_attribute()
            .filter(|_| schema.sort_key.len() > 1)
        {
            reserved.insert(sort);
        }
        Ok(Self {
            typer,
            keep: schema.unmapped == Unmapped::Keep,
            reserved,
        })
    }

    /// Counts a TTL duration from `epoch_seconds` (see [`RowTyper::loaded_at`]).
    pub fn loaded_at(mut self, epoch_seconds: u64) -> Self {
        self.typer = self.typer.loaded_at(epoch_seconds);
        self
    }

    /// One line's object as a row (`line`, `offset`: where the line is in its object).
    pub fn type_object(
        &self,
        mut object: BTreeMap<String, Value>,
        line: u64,
        offset: u64,
    ) -> Result<TypedRow, RowError> {
        let slots = &self.typer.slots;
        let mut fields = Vec::with_capacity(slots.len());
        for (i, slot) in slots.iter().enumerate() {
            let fail = |problem| RowError::column(&slot.name, i, problem);
            let field = match object.remove(&slot.name) {
                // Absent, as a nullable column absent from a CSV header: nothing stored.
                None if slot.nullable && !slot.key => None,
                None => return Err(fail(ValueError::MissingField)),
                Some(value) => match slot.typing.json_value(value).map_err(fail)? {
                    Some(typed) => Some(typed),
                    None => slot.empty_field(ValueError::EmptyValue).map_err(fail)?,
                },
            };
            fields.push(field);
        }
        let mut extras = Vec::new();
        if self.keep {
            for (name, value) in object {
                let problem = if name.is_empty() {
                    Some("DynamoDB attribute names cannot be empty")
                } else if name.len() > MAX_NAME_BYTES {
                    Some("the name is over DynamoDB's attribute name limit")
                } else if self.reserved.contains(&name) {
                    Some("has the name of a mapped or key attribute, which would overwrite it")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(RowError::Field {
                        name: cap(&name, MAX_NAME_IN_REASON),
                        problem,
                    });
                }
                let bytes = value_size(&value);
                extras.push((name, value, bytes));
            }
        }
        self.typer.assemble(fields, extras, line, offset)
    }
}
