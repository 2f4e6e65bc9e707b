//! Our items to the SDK's attribute values and back.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::ingest::item::{Item, Value};

pub fn to_sdk(item: Item) -> HashMap<String, AttributeValue> {
    item.into_iter()
        .map(|(name, value)| (name, attribute(value)))
        .collect()
}

pub fn attribute(value: Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s),
        Value::N(n) => AttributeValue::N(n),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Null => AttributeValue::Null(true),
    }
}

/// Back from the SDK: attributes of other types (never written by typing) are dropped.
pub fn from_sdk(item: HashMap<String, AttributeValue>) -> Item {
    item.into_iter()
        .filter_map(|(name, value)| {
            let value = match value {
                AttributeValue::S(s) => Value::S(s),
                AttributeValue::N(n) => Value::N(n),
                AttributeValue::Bool(b) => Value::Bool(b),
                AttributeValue::Null(_) => Value::Null,
                _ => return None,
            };
            Some((name, value))
        })
        .collect()
}
