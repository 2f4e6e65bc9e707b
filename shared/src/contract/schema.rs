//! The data contract: which columns a job expects, their types, and which columns make the
//! DynamoDB key. A job may declare its own schema; the sensor schema is the default.
//! A schema is validated before any work starts, and every error names the column at fault.

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Stored as S.
    String,
    /// A finite decimal, stored as N with its digits as written (no float rounding).
    Number,
    /// A 64-bit integer, stored as N.
    Integer,
    /// `true`/`false`/`1`/`0` (any case), stored as BOOL.
    Bool,
    /// `YYYY-MM-DD HH:MM:SS[.f] UTC` or RFC 3339, stored as an RFC 3339 UTC string.
    Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// An empty field is allowed (the attribute is then omitted). Key columns never are.
    #[serde(default)]
    pub nullable: bool,
}

/// A job's declared columns and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub columns: Vec<Column>,
    /// Columns whose values, joined by `#`, form the partition key.
    pub partition_key: Vec<String>,
    /// Columns whose values, joined by `#`, form the sort key (empty: no sort key).
    #[serde(default)]
    pub sort_key: Vec<String>,
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
}

impl Schema {
    /// Sensor rows: `timestamp,temp,humidity,measure_point`, keyed by
    /// (`measure_point`, `timestamp`) so a redelivered row overwrites itself.
    pub fn sensor() -> Self {
        let column = |name: &str, kind| Column {
            name: name.into(),
            kind,
            nullable: false,
        };
        Self {
            columns: vec![
                column("timestamp", ColumnType::Timestamp),
                column("temp", ColumnType::Number),
                column("humidity", ColumnType::Number),
                column("measure_point", ColumnType::String),
            ],
            partition_key: vec!["measure_point".into()],
            sort_key: vec!["timestamp".into()],
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
        Ok(())
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
        None
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
        // An unknown type is a parse error that names the variants.
        let err = serde_json::from_str::<Schema>(&s(vec![col("a", "float", false)], r#""a""#, ""))
            .unwrap_err();
        assert!(err.to_string().contains("float"), "{err}");
    }
}
