//! The checks an attribute mapping gets before a job starts; every error names the attribute.

use super::columns::ColumnType;
use super::mapping::{Attribute, Constant, Part, parse_template};
use super::schema::{Schema, SchemaError};
use crate::contract::numbers::parse_decimal;
use crate::contract::schema::MAX_NAME_BYTES;

impl Schema {
    pub(super) fn validate_mapping(&self) -> Result<(), SchemaError> {
        let composites = [&self.partition_key, &self.sort_key]
            .into_iter()
            .filter(|key| key.len() > 1)
            .map(|key| key.join("#"))
            .collect::<Vec<_>>();
        for (name, attribute) in &self.attributes {
            let fail = |reason: String| SchemaError::Attribute {
                attribute: name.clone(),
                reason,
            };
            if name.is_empty() {
                return Err(fail("the name is empty".into()));
            }
            if name.len() > MAX_NAME_BYTES {
                return Err(fail(format!(
                    "the name is {} bytes, over DynamoDB's {MAX_NAME_BYTES}-byte limit",
                    name.len()
                )));
            }
            let identity = matches!(attribute, Attribute::From(c) if c == name);
            if self.column(name).is_some() && !identity {
                return Err(fail(
                    "is also a declared column: the two would write one attribute".into(),
                ));
            }
            if composites.contains(name) {
                return Err(fail("is the composite key's attribute".into()));
            }
            if self.ttl.as_ref().is_some_and(|ttl| &ttl.attribute == name) {
                return Err(fail("is the ttl attribute".into()));
            }
            let key = [&self.partition_key, &self.sort_key]
                .iter()
                .any(|k| k.as_slice() == [name.as_str()]);
            self.check_source(attribute, key).map_err(fail)?;
        }
        Ok(())
    }

    /// One attribute's source: its columns declared and fit for it, a key's fit for a key.
    fn check_source(&self, attribute: &Attribute, key: bool) -> Result<(), String> {
        let declared = |name: &str| {
            self.column(name)
                .ok_or_else(|| format!("column {name:?} is not a declared column"))
        };
        match attribute {
            Attribute::From(name) => {
                let column = declared(name)?;
                if key {
                    self.check_key_column(column, false)
                        .map_err(|e| format!("as a key: {e}"))?;
                }
                Ok(())
            }
            Attribute::Template(text) => {
                let parts = parse_template(text)?;
                for part in &parts {
                    let Part::Column(name) = part else { continue };
                    let column = declared(name)?;
                    // A template is text: only types with one canonical text fit in one.
                    if !matches!(
                        column.kind,
                        ColumnType::String
                            | ColumnType::Number
                            | ColumnType::Integer
                            | ColumnType::Timestamp
                    ) {
                        return Err(format!(
                            "column {name:?} is a {}: templates take string, number, integer and timestamp columns",
                            column.kind.name()
                        ));
                    }
                    if key && column.nullable {
                        return Err(format!(
                            "column {name:?} is nullable: a key's columns are never empty"
                        ));
                    }
                }
                Ok(())
            }
            Attribute::Value(Constant::String(text)) if key && text.is_empty() => {
                Err("a key constant cannot be empty".into())
            }
            Attribute::Value(Constant::String(_)) => Ok(()),
            Attribute::Value(Constant::Number(text)) => parse_decimal(text)
                .map(|_| ())
                .map_err(|e| format!("the constant is not a number: {e}")),
        }
    }
}
