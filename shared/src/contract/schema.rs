//! The data contract: which columns a job expects, their types, and which columns make the
//! DynamoDB key. A job may declare its own schema; the sensor schema is the default.
//! A schema is validated before any work starts, and every error names the column at fault.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use super::columns::{BinaryEncoding, Column, ColumnType, KeyType, KeyTypes, TimestampStore};
pub use super::dialect::CsvDialect;
pub use super::mapping::{Attribute, Constant, Unmapped};

/// How an empty field of a nullable column is stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmptyValue {
    /// No attribute (an update then leaves the item's attribute as it was).
    #[default]
    Omit,
    /// DynamoDB's NULL.
    Null,
    /// An empty string (S), whatever the column's type.
    EmptyString,
}

impl EmptyValue {
    pub fn is_omit(&self) -> bool {
        *self == EmptyValue::Omit
    }
}

/// Where each item's expiry (DynamoDB TTL: a Number of epoch seconds) comes from: a column
/// (`{"attribute": "expires_at", "column": "valid_until"}`, epoch seconds or a timestamp) or
/// a duration after the load (`{"attribute": "expires_at", "after_seconds": 86400}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ttl {
    /// The attribute the table's TTL setting names.
    pub attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seconds: Option<u64>,
}

/// DynamoDB's limit on an attribute name (names must be under 64 KB).
pub const MAX_NAME_BYTES: usize = 65_535;

/// Longest `after_seconds`: 100 years. DynamoDB ignores expiries more than 5 years in the past
/// only; a figure beyond this is a unit mistake (milliseconds), not a plan.
pub const MAX_TTL_AFTER_SECONDS: u64 = 100 * 365 * 24 * 3600;

/// A job's declared columns and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub columns: Vec<Column>,
    /// Columns whose values, joined by `#`, form the partition key.
    pub partition_key: Vec<String>,
    /// Columns whose values, joined by `#`, form the sort key (empty: no sort key).
    #[serde(default)]
    pub sort_key: Vec<String>,
    /// How empty fields of nullable columns are stored (columns may say otherwise).
    #[serde(default, skip_serializing_if = "EmptyValue::is_omit")]
    pub empty_values: EmptyValue,
    /// Each item's expiry, if the job sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Ttl>,
    /// Whether key attributes are strings (`text`, the default) or keep a single key
    /// column's type (`typed`: N or B keys).
    #[serde(default, skip_serializing_if = "KeyTypes::is_text")]
    pub key_types: KeyTypes,
    /// Attributes written from a column, a template or a constant ([`super::mapping`]); a
    /// key may name one of them instead of columns.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Attribute>,
    /// Whether columns no attribute is mapped `from` land under their own names.
    #[serde(default, skip_serializing_if = "Unmapped::is_keep")]
    pub unmapped: Unmapped,
    /// How a CSV object's bytes are fields (delimiter, quote, header); ignored by JSON Lines.
    #[serde(default, skip_serializing_if = "CsvDialect::is_default")]
    pub csv: CsvDialect,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("schema has no columns")]
    NoColumns,
    #[error("schema declares column {0:?} twice")]
    DuplicateColumn(String),
    #[error("schema has a column with an empty name")]
    EmptyName,
    #[error("schema has no partition key columns")]
    NoPartitionKey,
    #[error("key column {0:?} is not a declared column")]
    UnknownKeyColumn(String),
    #[error("key column {0:?} cannot be nullable")]
    NullableKey(String),
    #[error("key column {0:?} cannot be a bool")]
    BoolKey(String),
    #[error(
        "key column {column:?} cannot be a {kind}: DynamoDB keys are strings, numbers or binaries"
    )]
    UnkeyableType { column: String, kind: &'static str },
    #[error(
        "key column {0:?} is binary: a binary key needs `\"key_types\": \"typed\"` and a single-column key"
    )]
    BinaryKeyNotTyped(String),
    #[error("column {column:?}: {reason}")]
    ColumnOption { column: String, reason: String },
    #[error("column {0:?} is in both the partition and the sort key")]
    KeyInBoth(String),
    #[error(
        "key column {0:?} of a composite key has `#` in its name: the key attribute's name would be ambiguous"
    )]
    SeparatorInKeyName(String),
    #[error("key attribute {0:?} is a declared column's name: the key would overwrite that column")]
    KeyAttributeIsAColumn(String),
    #[error("key attribute name {0:?} is over DynamoDB's 255-byte limit for key attributes")]
    KeyNameTooLong(String),
    #[error(
        "column {0:?} sets `empty` but is not nullable: its empty fields are rejected, never stored"
    )]
    EmptyOnRequiredColumn(String),
    #[error("ttl: {0}")]
    Ttl(String),
    #[error("attribute {attribute:?}: {reason}")]
    Attribute { attribute: String, reason: String },
    #[error("csv: {0}")]
    Dialect(String),
}

impl Schema {
    /// Sensor rows: `timestamp,temp,humidity,measure_point`, keyed by
    /// (`measure_point`, `timestamp`) so a redelivered row overwrites itself.
    pub fn sensor() -> Self {
        let column = Column::new;
        Self {
            columns: vec![
                column("timestamp", ColumnType::Timestamp),
                column("temp", ColumnType::Number),
                column("humidity", ColumnType::Number),
                column("measure_point", ColumnType::String),
            ],
            partition_key: vec!["measure_point".into()],
            sort_key: vec!["timestamp".into()],
            empty_values: EmptyValue::Omit,
            ttl: None,
            key_types: KeyTypes::Text,
            attributes: BTreeMap::new(),
            unmapped: Unmapped::Keep,
            csv: CsvDialect::default(),
        }
    }

    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.columns.is_empty() {
            return Err(SchemaError::NoColumns);
        }
        if let Some(problem) = self.csv.problem() {
            return Err(SchemaError::Dialect(problem));
        }
        for (i, column) in self.columns.iter().enumerate() {
            if column.name.trim().is_empty() {
                return Err(SchemaError::EmptyName);
            }
            if let Some(reason) = column.option_problem() {
                return Err(SchemaError::ColumnOption {
                    column: column.name.clone(),
                    reason,
                });
            }
            if self.columns[..i].iter().any(|c| c.name == column.name) {
                return Err(SchemaError::DuplicateColumn(column.name.clone()));
            }
        }
        if self.partition_key.is_empty() {
            return Err(SchemaError::NoPartitionKey);
        }
        for key in [&self.partition_key, &self.sort_key] {
            if self.mapped_key(key).is_some() {
                continue;
            }
            for name in key.iter() {
                if self.attributes.contains_key(name) {
                    return Err(SchemaError::Attribute {
                        attribute: name.clone(),
                        reason:
                            "a mapped key attribute must be its key alone (compose with a template)"
                                .into(),
                    });
                }
                let column = self
                    .column(name)
                    .ok_or_else(|| SchemaError::UnknownKeyColumn(name.clone()))?;
                self.check_key_column(column, key.len() > 1)?;
            }
        }
        if let Some(both) = self
            .partition_key
            .iter()
            .find(|n| self.sort_key.contains(n))
        {
            return Err(SchemaError::KeyInBoth(both.clone()));
        }
        for key in [&self.partition_key, &self.sort_key] {
            if key.len() < 2 {
                continue;
            }
            if let Some(name) = key.iter().find(|n| n.contains('#')) {
                return Err(SchemaError::SeparatorInKeyName(name.clone()));
            }
            let attribute = key.join("#");
            if self.column(&attribute).is_some() {
                return Err(SchemaError::KeyAttributeIsAColumn(attribute));
            }
        }
        let attributes = [Some(self.partition_attribute()), self.sort_attribute()];
        if let Some(long) = attributes.into_iter().flatten().find(|a| a.len() > 255) {
            return Err(SchemaError::KeyNameTooLong(long));
        }
        if let Some(column) = self
            .columns
            .iter()
            .find(|c| c.empty.is_some() && !c.nullable)
        {
            return Err(SchemaError::EmptyOnRequiredColumn(column.name.clone()));
        }
        if let Some(ttl) = &self.ttl {
            self.validate_ttl(ttl).map_err(SchemaError::Ttl)?;
        }
        self.validate_mapping()
    }

    /// Whether a column can be (part of) a key.
    pub(super) fn check_key_column(
        &self,
        column: &Column,
        composite: bool,
    ) -> Result<(), SchemaError> {
        let name = &column.name;
        if column.nullable {
            return Err(SchemaError::NullableKey(name.clone()));
        }
        if column.kind == ColumnType::Bool {
            return Err(SchemaError::BoolKey(name.clone()));
        }
        if !column.kind.is_scalar_key() {
            return Err(SchemaError::UnkeyableType {
                column: name.clone(),
                kind: column.kind.name(),
            });
        }
        // A binary has no one text form to join or to store as S.
        if column.kind == ColumnType::Binary && (self.key_types.is_text() || composite) {
            return Err(SchemaError::BinaryKeyNotTyped(name.clone()));
        }
        Ok(())
    }

    /// The mapped attribute a key names, when it names one alone (else the key is columns).
    pub fn mapped_key(&self, key: &[String]) -> Option<&Attribute> {
        match key {
            [only] => self.attributes.get(only),
            _ => None,
        }
    }

    fn validate_ttl(&self, ttl: &Ttl) -> Result<(), String> {
        let attribute = &ttl.attribute;
        if attribute.is_empty() {
            return Err("attribute is empty".into());
        }
        if [Some(self.partition_attribute()), self.sort_attribute()]
            .iter()
            .flatten()
            .any(|key| key == attribute)
        {
            return Err(format!("attribute {attribute:?} is a key attribute"));
        }
        match (&ttl.column, ttl.after_seconds) {
            (Some(_), Some(_)) | (None, None) => {
                Err("give exactly one of `column` and `after_seconds`".into())
            }
            (None, Some(seconds)) if seconds == 0 || seconds > MAX_TTL_AFTER_SECONDS => {
                Err(format!(
                    "after_seconds {seconds} is not within 1..={MAX_TTL_AFTER_SECONDS} (100 years)"
                ))
            }
            (None, Some(_)) if self.column(attribute).is_some() => Err(format!(
                "attribute {attribute:?} is a declared column: the expiry would overwrite it"
            )),
            (None, Some(_)) => Ok(()),
            (Some(name), None) => {
                let column = self
                    .column(name)
                    .ok_or_else(|| format!("column {name:?} is not a declared column"))?;
                if !matches!(
                    column.kind,
                    ColumnType::Integer | ColumnType::Number | ColumnType::Timestamp
                ) {
                    return Err(format!(
                        "column {name:?} must be an integer or number (epoch seconds) or a timestamp"
                    ));
                }
                if attribute != name && self.column(attribute).is_some() {
                    return Err(format!(
                        "attribute {attribute:?} is another declared column: the expiry would overwrite it"
                    ));
                }
                Ok(())
            }
        }
    }

    /// How a column's empty fields are stored (undeclared columns: the schema's policy).
    pub fn empty_value_of(&self, name: &str) -> EmptyValue {
        self.column(name)
            .and_then(|c| c.empty)
            .unwrap_or(self.empty_values)
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The DynamoDB attribute holding the partition key: the column's own name, or the
    /// names joined by `#` for a composite key.
    pub fn partition_attribute(&self) -> String {
        self.partition_key.join("#")
    }

    /// The sort key attribute, if the schema has one.
    pub fn sort_attribute(&self) -> Option<String> {
        (!self.sort_key.is_empty()).then(|| self.sort_key.join("#"))
    }

    /// The schema of a delete job's CSV: the key columns alone (other columns, if present,
    /// are read as extra strings and ignored).
    pub fn keys_only(&self) -> Self {
        let keys = [&self.partition_key, &self.sort_key];
        let mapped: BTreeMap<String, Attribute> = self
            .attributes
            .iter()
            .filter(|(name, _)| keys.iter().any(|k| k.as_slice() == [name.as_str()]))
            .map(|(name, a)| (name.clone(), a.clone()))
            .collect();
        let sources: Vec<String> = mapped.values().flat_map(Attribute::columns).collect();
        let is_key = |name: &String| {
            sources.contains(name)
                || keys
                    .iter()
                    .any(|k| k.contains(name) && !mapped.contains_key(name))
        };
        Self {
            columns: self
                .columns
                .iter()
                .filter(|c| is_key(&c.name))
                .cloned()
                .collect(),
            attributes: mapped,
            ..self.clone()
        }
    }

    /// An attribute each load computes anew (a TTL counted from the load), which an insert
    /// ignores when it tells its own earlier write from another item.
    pub fn recomputed_attribute(&self) -> Option<&str> {
        self.ttl
            .as_ref()
            .filter(|ttl| ttl.after_seconds.is_some())
            .map(|ttl| ttl.attribute.as_str())
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self::sensor()
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
