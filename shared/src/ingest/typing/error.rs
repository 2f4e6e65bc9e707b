//! Why a row is rejected, as a typed reason. Reasons name the column and the limit but never
//! hold field values: they go to logs as well as to the rejects report, whose `raw` text is
//! the one place a row's contents are kept. Names in reasons are capped.

use thiserror::Error;

use super::binary::BinaryError;
use super::json::JsonError;
use super::keys::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
use super::numbers::NumberError;
use super::sets::SetError;
use super::size::MAX_ITEM_BYTES;

/// Column names in reasons are cut to this many bytes.
pub const MAX_NAME_IN_REASON: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RowError {
    #[error("expected {expected} fields, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("column {column}: {problem}")]
    Column {
        /// The header name (capped), or `#N (no name in the header)`.
        column: String,
        problem: ValueError,
    },
    #[error("partition key is {bytes} bytes, over DynamoDB's {MAX_PARTITION_KEY_BYTES}-byte limit")]
    PartitionKeyTooLong { bytes: usize },
    #[error("sort key is {bytes} bytes, over DynamoDB's {MAX_SORT_KEY_BYTES}-byte limit")]
    SortKeyTooLong { bytes: usize },
    /// JSON Lines: the line is not one valid JSON object (the reason never holds its text).
    #[error("the line is not one JSON object DynamoDB can hold: {0}")]
    Line(JsonError),
    /// JSON Lines: an undeclared field that cannot land under its own name.
    #[error("field {name}: {problem}")]
    Field { name: String, problem: &'static str },
    #[error("item is {bytes} bytes, over DynamoDB's 400 KB item limit ({MAX_ITEM_BYTES} bytes)")]
    ItemTooLarge { bytes: usize },
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("empty key field")]
    EmptyKey,
    #[error("empty value in a non-nullable column")]
    EmptyValue,
    #[error(
        "a value in a column with no name in the header (a trailing comma?): DynamoDB attribute names cannot be empty"
    )]
    Unnamed,
    #[error(transparent)]
    Number(#[from] NumberError),
    #[error("invalid bool (true/false/1/0)")]
    Bool,
    #[error("invalid timestamp (YYYY-MM-DD HH:MM:SS[.f] UTC or RFC 3339): {0}")]
    Timestamp(String),
    /// The TTL column's value cannot be an expiry (the reason never holds the value).
    #[error("invalid expiry for TTL: {0}")]
    Expiry(String),
    #[error(transparent)]
    Binary(#[from] BinaryError),
    #[error(transparent)]
    Set(#[from] SetError),
    #[error(transparent)]
    Json(#[from] JsonError),
    /// A JSON Lines field of a type the column cannot hold (`{0}`: what it was).
    #[error("the field is {0}, which this column's type cannot hold")]
    JsonType(&'static str),
    /// A JSON Lines line without a required (non-nullable) declared field.
    #[error("required field missing from the line")]
    MissingField,
}

impl RowError {
    pub fn column(name: &str, position: usize, problem: ValueError) -> Self {
        RowError::Column {
            column: column_label(name, position),
            problem,
        }
    }
}

/// A column as reasons name it: its header name capped, or its 1-based position.
pub fn column_label(name: &str, position: usize) -> String {
    if name.is_empty() {
        return format!("#{} (no name in the header)", position + 1);
    }
    cap(name, MAX_NAME_IN_REASON)
}

/// `text` cut to at most `max` bytes on a char boundary, with `…` when cut.
pub fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_column_and_cap_long_names() {
        let long = "é".repeat(100);
        let reason = RowError::column(&long, 3, ValueError::EmptyValue).to_string();
        assert!(reason.len() < MAX_NAME_IN_REASON + 60, "{reason}");
        assert!(
            reason.ends_with("…: empty value in a non-nullable column"),
            "{reason}"
        );
        assert_eq!(
            RowError::column("", 4, ValueError::Unnamed).to_string(),
            "column #5 (no name in the header): a value in a column with no name in the header \
             (a trailing comma?): DynamoDB attribute names cannot be empty"
        );
        assert_eq!(
            RowError::column("temp", 1, NumberError::Overflow.into()).to_string(),
            "column temp: number overflow: magnitude above DynamoDB's largest, \
             9.9999999999999999999999999999999999999E+125"
        );
    }
}
