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
}

impl Value {
    /// The text of a string or number; `None` for a bool.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::S(s) | Value::N(s) => Some(s),
            Value::Bool(_) => None,
        }
    }
}

pub type Item = HashMap<String, Value>;
