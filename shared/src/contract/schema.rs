//! The data contract: which columns a job expects, their types, and which columns make the
//! DynamoDB key. A job may declare its own schema; the sensor schema is the default.
//! A schema is validated before any work starts, and every error names the column at fault.

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use super::columns::{BinaryEncoding, Column, ColumnType, KeyType, KeyTypes, TimestampStore};

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
        }
    }

    pub fn validate(&self) -> Result<(), SchemaError> {
        if self.columns.is_empty() {
            return Err(SchemaError::NoColumns);
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
        for name in self.partition_key.iter().chain(&self.sort_key) {
            let column = self
                .column(name)
                .ok_or_else(|| SchemaError::UnknownKeyColumn(name.clone()))?;
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
            let composite = [&self.partition_key, &self.sort_key]
                .iter()
                .any(|key| key.len() > 1 && key.contains(name));
            if column.kind == ColumnType::Binary && (self.key_types.is_text() || composite) {
                return Err(SchemaError::BinaryKeyNotTyped(name.clone()));
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
        match &self.ttl {
            Some(ttl) => self.validate_ttl(ttl).map_err(SchemaError::Ttl),
            None => Ok(()),
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
        let is_key =
            |name: &String| self.partition_key.contains(name) || self.sort_key.contains(name);
        Self {
            columns: self
                .columns
                .iter()
                .filter(|c| is_key(&c.name))
                .cloned()
                .collect(),
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
mod tests {
    use super::*;

    fn schema(json: &str) -> Result<(), SchemaError> {
        serde_json::from_str::<Schema>(json).unwrap().validate()
    }

    #[test]
    fn the_sensor_schema_is_valid() {
        assert_eq!(Schema::sensor().validate(), Ok(()));
        assert_eq!(Schema::sensor().partition_attribute(), "measure_point");
        assert_eq!(
            Schema::sensor().sort_attribute().as_deref(),
            Some("timestamp")
        );
    }

    #[test]
    fn a_user_schema_with_a_composite_sort_key_parses_and_validates() {
        let json = r#"{
            "columns": [
                {"name": "site", "type": "string"},
                {"name": "day", "type": "timestamp"},
                {"name": "seq", "type": "integer"},
                {"name": "ok", "type": "bool", "nullable": true},
                {"name": "reading", "type": "number", "nullable": true}
            ],
            "partition_key": ["site"],
            "sort_key": ["day", "seq"]
        }"#;
        let schema: Schema = serde_json::from_str(json).unwrap();
        assert_eq!(schema.validate(), Ok(()));
        assert_eq!(schema.sort_attribute().as_deref(), Some("day#seq"));
    }

    #[test]
    fn empty_values_and_ttl_parse_and_validate() {
        let json = r#"{
            "columns": [
                {"name": "id", "type": "string"},
                {"name": "note", "type": "string", "nullable": true, "empty": "empty_string"},
                {"name": "reading", "type": "number", "nullable": true},
                {"name": "until", "type": "timestamp", "nullable": true}
            ],
            "partition_key": ["id"],
            "empty_values": "null",
            "ttl": {"attribute": "expires_at", "column": "until"}
        }"#;
        let schema: Schema = serde_json::from_str(json).unwrap();
        assert_eq!(schema.validate(), Ok(()));
        assert_eq!(schema.empty_value_of("note"), EmptyValue::EmptyString);
        assert_eq!(schema.empty_value_of("reading"), EmptyValue::Null);
        assert_eq!(schema.empty_value_of("undeclared"), EmptyValue::Null);
        assert_eq!(schema.recomputed_attribute(), None);
        let ttl = |attribute: &str, column: Option<&str>, after_seconds| {
            let mut s = schema.clone();
            s.ttl = Some(Ttl {
                attribute: attribute.into(),
                column: column.map(str::to_owned),
                after_seconds,
            });
            s.validate().map_err(|e| e.to_string())
        };
        assert_eq!(ttl("exp", None, Some(60)), Ok(()));
        assert_eq!(ttl("until", Some("until"), None), Ok(()), "in place");
        let err = |r: Result<(), String>| r.unwrap_err();
        assert!(err(ttl("exp", Some("until"), Some(60))).contains("exactly one"));
        assert!(err(ttl("exp", None, None)).contains("exactly one"));
        assert!(err(ttl("exp", None, Some(0))).contains("not within"));
        assert!(err(ttl("exp", None, Some(MAX_TTL_AFTER_SECONDS + 1))).contains("not within"));
        assert!(err(ttl("id", None, Some(60))).contains("key attribute"));
        assert!(err(ttl("note", None, Some(60))).contains("declared column"));
        assert!(err(ttl("note", Some("until"), None)).contains("another declared column"));
        assert!(err(ttl("exp", Some("note"), None)).contains("integer or number"));
        assert!(err(ttl("exp", Some("nope"), None)).contains("not a declared column"));
        assert!(err(ttl("", None, Some(1))).contains("empty"));
        let mut after = schema.clone();
        after.ttl = Some(Ttl {
            attribute: "exp".into(),
            column: None,
            after_seconds: Some(60),
        });
        assert_eq!(after.recomputed_attribute(), Some("exp"));
    }

    #[test]
    fn invalid_schemas_name_the_problem() {
        let col = |n: &str, t: &str, nullable: bool| {
            format!(r#"{{"name":"{n}","type":"{t}","nullable":{nullable}}}"#)
        };
        let s = |cols: Vec<String>, pk: &str, sk: &str| {
            format!(
                r#"{{"columns":[{}],"partition_key":[{pk}],"sort_key":[{sk}]}}"#,
                cols.join(",")
            )
        };
        assert_eq!(
            schema(&s(vec![], r#""a""#, "")),
            Err(SchemaError::NoColumns)
        );
        assert_eq!(
            schema(&s(
                vec![col("a", "string", false), col("a", "number", false)],
                r#""a""#,
                ""
            )),
            Err(SchemaError::DuplicateColumn("a".into()))
        );
        assert_eq!(
            schema(&s(vec![col("a", "string", false)], "", "")),
            Err(SchemaError::NoPartitionKey)
        );
        assert_eq!(
            schema(&s(vec![col("a", "string", false)], r#""b""#, "")),
            Err(SchemaError::UnknownKeyColumn("b".into()))
        );
        assert_eq!(
            schema(&s(vec![col("a", "string", true)], r#""a""#, "")),
            Err(SchemaError::NullableKey("a".into()))
        );
        assert_eq!(
            schema(&s(vec![col("a", "bool", false)], r#""a""#, "")),
            Err(SchemaError::BoolKey("a".into()))
        );
        assert_eq!(
            schema(&s(vec![col("a", "string", false)], r#""a""#, r#""a""#)),
            Err(SchemaError::KeyInBoth("a".into()))
        );
        assert_eq!(
            schema(&s(vec![col(" ", "string", false)], r#"" ""#, "")),
            Err(SchemaError::EmptyName)
        );
        let ab = vec![col("a", "string", false), col("b#c", "string", false)];
        assert_eq!(
            schema(&s(ab.clone(), r#""a","b#c""#, "")),
            Err(SchemaError::SeparatorInKeyName("b#c".into()))
        );
        // A single-column key may have `#` in its name: nothing is joined.
        assert_eq!(schema(&s(ab, r#""b#c""#, "")), Ok(()));
        assert_eq!(
            schema(&s(
                vec![
                    col("a", "string", false),
                    col("b", "string", false),
                    col("a#b", "string", true)
                ],
                r#""a","b""#,
                ""
            )),
            Err(SchemaError::KeyAttributeIsAColumn("a#b".into()))
        );
        let long = "k".repeat(256);
        assert_eq!(
            schema(&s(
                vec![col(&long, "string", false)],
                &format!("\"{long}\""),
                ""
            )),
            Err(SchemaError::KeyNameTooLong(long))
        );
        let nullable_empty = r#"{"name":"b","type":"number","empty":"null"}"#;
        assert_eq!(
            schema(&s(
                vec![col("a", "string", false), nullable_empty.into()],
                r#""a""#,
                ""
            )),
            Err(SchemaError::EmptyOnRequiredColumn("b".into()))
        );
        // An unknown type is a parse error that names the variants.
        let err = serde_json::from_str::<Schema>(&s(vec![col("a", "float", false)], r#""a""#, ""))
            .unwrap_err();
        assert!(err.to_string().contains("float"), "{err}");
    }
}
