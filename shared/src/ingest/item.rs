//! A typed row as a DynamoDB item, in our own terms: the AWS adapter converts it to the SDK's
//! `AttributeValue` when it writes, so typing stays free of the SDK.

use std::collections::HashMap;

/// One attribute's value: the DynamoDB types a CSV field can become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (S).
    S(String),
    /// A number (N), as its canonical decimal text.
    N(String),
    Bool(bool),
    /// DynamoDB's NULL: an empty field stored as null (the job's empty-value policy).
    Null,
}

impl Value {
    /// The text of a string or number; `None` for a bool or null.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::S(s) | Value::N(s) => Some(s),
            Value::Bool(_) | Value::Null => None,
        }
    }
}

pub type Item = HashMap<String, Value>;
