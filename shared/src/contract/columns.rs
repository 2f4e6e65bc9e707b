//! One declared column: its type and the options some types take (a binary's text encoding,
//! a set's separator, a timestamp's stored form), and the checks those options get before a
//! job starts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// Stored as S.
    String,
    /// A finite decimal, stored as N with its digits as written (no float rounding).
    Number,
    /// A 64-bit integer, stored as N.
    Integer,
    /// `true`/`false`/`1`/`0` (any case), stored as BOOL.
    Bool,
    /// `YYYY-MM-DD HH:MM:SS[.f] UTC` or RFC 3339, stored as the column's `store` says (an
    /// RFC 3339 UTC string by default).
    Timestamp,
    /// Bytes as base64 (default) or hex text, stored as B.
    Binary,
    /// A set of strings (SS): a delimited field, or a JSON array of strings.
    StringSet,
    /// A set of numbers (NS): a delimited field, or a JSON array of numbers.
    NumberSet,
    /// A set of binaries (BS): a delimited field, or a JSON array of encoded strings.
    BinarySet,
    /// A JSON array, stored as L (nested values typed as for `json`).
    List,
    /// A JSON object, stored as M.
    Map,
    /// Any JSON value: string S, number N, bool BOOL, null NULL, array L, object M.
    Json,
}

impl ColumnType {
    pub fn is_set(self) -> bool {
        matches!(
            self,
            ColumnType::StringSet | ColumnType::NumberSet | ColumnType::BinarySet
        )
    }

    pub fn takes_encoding(self) -> bool {
        matches!(self, ColumnType::Binary | ColumnType::BinarySet)
    }

    /// Whether a key can be made of this type (DynamoDB keys are S, N or B).
    pub fn is_scalar_key(self) -> bool {
        matches!(
            self,
            ColumnType::String
                | ColumnType::Number
                | ColumnType::Integer
                | ColumnType::Timestamp
                | ColumnType::Binary
        )
    }

    /// The name the schema uses, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Number => "number",
            ColumnType::Integer => "integer",
            ColumnType::Bool => "bool",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Binary => "binary",
            ColumnType::StringSet => "string_set",
            ColumnType::NumberSet => "number_set",
            ColumnType::BinarySet => "binary_set",
            ColumnType::List => "list",
            ColumnType::Map => "map",
            ColumnType::Json => "json",
        }
    }
}

/// How a binary column's text encodes its bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinaryEncoding {
    /// RFC 4648 base64, standard alphabet, padding optional.
    #[default]
    Base64,
    /// Two hex digits per byte, either case.
    Hex,
}

/// How a timestamp column is stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampStore {
    /// S, RFC 3339 UTC (`2025-11-26T02:56:13Z`).
    #[default]
    Rfc3339,
    /// N, seconds since 1970 (a fraction kept exactly: `1764125773.25`).
    EpochSeconds,
    /// N, milliseconds since 1970 (a finer fraction kept exactly).
    EpochMillis,
}

impl TimestampStore {
    pub fn is_rfc3339(&self) -> bool {
        *self == TimestampStore::Rfc3339
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    /// An empty field is allowed (stored as `empty` says). Key columns never are.
    #[serde(default)]
    pub nullable: bool,
    /// How this nullable column stores an empty field; the schema's `empty_values` if unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty: Option<super::schema::EmptyValue>,
    /// A binary or binary set's text encoding (base64 if unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<BinaryEncoding>,
    /// A set's element separator; unset, a set field is a JSON array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// A timestamp's stored form (RFC 3339 if unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<TimestampStore>,
}

impl Column {
    /// A required column with no options.
    pub fn new(name: &str, kind: ColumnType) -> Self {
        Self {
            name: name.into(),
            kind,
            nullable: false,
            empty: None,
            encoding: None,
            separator: None,
            store: None,
        }
    }

    pub fn encoding(&self) -> BinaryEncoding {
        self.encoding.unwrap_or_default()
    }

    pub fn store(&self) -> TimestampStore {
        self.store.unwrap_or_default()
    }

    /// The type a key built from this column alone has when keys keep their types.
    pub fn key_type(&self) -> KeyType {
        match self.kind {
            ColumnType::Binary => KeyType::B,
            ColumnType::Number | ColumnType::Integer => KeyType::N,
            ColumnType::Timestamp if !self.store().is_rfc3339() => KeyType::N,
            _ => KeyType::S,
        }
    }

    /// Options given to a type that takes none, or given badly: the reason, if any.
    pub fn option_problem(&self) -> Option<String> {
        let kind = self.kind.name();
        if self.encoding.is_some() && !self.kind.takes_encoding() {
            return Some(format!(
                "`encoding` is for binary and binary_set columns, not {kind}"
            ));
        }
        match &self.separator {
            Some(_) if !self.kind.is_set() => {
                return Some(format!("`separator` is for set columns, not {kind}"));
            }
            Some(separator) if separator.is_empty() => {
                return Some("`separator` is empty".into());
            }
            _ => {}
        }
        if self.store.is_some() && self.kind != ColumnType::Timestamp {
            return Some(format!("`store` is for timestamp columns, not {kind}"));
        }
        None
    }
}

/// A DynamoDB key attribute type (keys are S, N or B only): what a key column produces, and
/// what a table declares (`AttributeDefinitions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    S,
    N,
    B,
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyType::S => "S (string)",
            KeyType::N => "N (number)",
            KeyType::B => "B (binary)",
        })
    }
}

/// What type the key attributes have.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyTypes {
    /// Every key attribute is a string (S): a column's text, or a composite key's joined
    /// texts (what every job before typed keys wrote).
    #[default]
    Text,
    /// A single-column key keeps its column's type: N for integer, number and epoch
    /// timestamps, B for binary, S otherwise. Composite keys are still joined strings.
    Typed,
}

impl KeyTypes {
    pub fn is_text(&self) -> bool {
        *self == KeyTypes::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_belong_to_their_types() {
        let with = |kind, f: fn(&mut Column)| {
            let mut column = Column::new("c", kind);
            f(&mut column);
            column.option_problem()
        };
        assert_eq!(
            with(ColumnType::Binary, |c| c.encoding =
                Some(BinaryEncoding::Hex)),
            None
        );
        assert_eq!(
            with(ColumnType::StringSet, |c| c.separator = Some("|".into())),
            None
        );
        assert_eq!(
            with(ColumnType::Timestamp, |c| c.store =
                Some(TimestampStore::EpochMillis)),
            None
        );
        let problem = with(ColumnType::String, |c| {
            c.encoding = Some(BinaryEncoding::Hex)
        });
        assert!(problem.unwrap().contains("not string"));
        let problem = with(ColumnType::List, |c| c.separator = Some("|".into()));
        assert!(problem.unwrap().contains("for set columns"));
        let problem = with(ColumnType::NumberSet, |c| c.separator = Some(String::new()));
        assert!(problem.unwrap().contains("empty"));
        let problem = with(ColumnType::Integer, |c| {
            c.store = Some(TimestampStore::EpochSeconds)
        });
        assert!(problem.unwrap().contains("timestamp columns"));
    }

    #[test]
    fn a_schema_of_every_type_parses_and_validates() {
        use super::super::schema::Schema;
        let json = r#"{
            "columns": [
                {"name": "id", "type": "binary", "encoding": "hex"},
                {"name": "at", "type": "timestamp", "store": "epoch_millis"},
                {"name": "photo", "type": "binary", "nullable": true},
                {"name": "tags", "type": "string_set", "separator": "|"},
                {"name": "scores", "type": "number_set"},
                {"name": "blobs", "type": "binary_set", "encoding": "base64", "separator": ";"},
                {"name": "path", "type": "list"},
                {"name": "attrs", "type": "map", "nullable": true, "empty": "null"},
                {"name": "doc", "type": "json", "nullable": true}
            ],
            "partition_key": ["id"],
            "sort_key": ["at"],
            "key_types": "typed"
        }"#;
        let schema: Schema = serde_json::from_str(json).unwrap();
        assert_eq!(schema.validate(), Ok(()));
        assert_eq!(schema.key_types, KeyTypes::Typed);
        let id = schema.column("id").unwrap();
        assert_eq!(
            (id.encoding(), id.key_type()),
            (BinaryEncoding::Hex, KeyType::B)
        );
        let at = schema.column("at").unwrap();
        assert_eq!(
            (at.store(), at.key_type()),
            (TimestampStore::EpochMillis, KeyType::N)
        );
        assert_eq!(
            schema.column("photo").unwrap().encoding(),
            BinaryEncoding::Base64
        );
        assert_eq!(
            schema.column("tags").unwrap().separator.as_deref(),
            Some("|")
        );
        // Serialised back, unset options stay unset and the default key types unsaid.
        let text = serde_json::to_string(&Schema::sensor()).unwrap();
        assert!(
            !text.contains("key_types") && !text.contains("encoding"),
            "{text}"
        );
        let again: Schema = serde_json::from_str(&serde_json::to_string(&schema).unwrap()).unwrap();
        assert_eq!(again, schema);
    }

    #[test]
    fn type_names_are_the_serde_names() {
        for kind in [
            ColumnType::String,
            ColumnType::Timestamp,
            ColumnType::StringSet,
            ColumnType::NumberSet,
            ColumnType::BinarySet,
            ColumnType::Json,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }
}
