//! Our items to the SDK's attribute values and back, every type both ways.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::ingest::item::{Item, Value};

pub fn to_sdk(item: Item) -> HashMap<String, AttributeValue> {
    item.into_iter()
        .map(|(name, value)| (name, attribute(value)))
        .collect()
}

/// The same from a borrowed item: each name and value copied once, straight into the SDK's
/// types (a row kept for a retry is not cloned into an `Item` first).
pub fn to_sdk_copied(item: &Item) -> HashMap<String, AttributeValue> {
    item.iter()
        .map(|(name, value)| (name.clone(), attribute_copied(value)))
        .collect()
}

fn attribute_copied(value: &Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s.clone()),
        Value::N(n) => AttributeValue::N(n.clone()),
        Value::B(b) => AttributeValue::B(Blob::new(b.clone())),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::Null => AttributeValue::Null(true),
        Value::Ss(set) => AttributeValue::Ss(set.clone()),
        Value::Ns(set) => AttributeValue::Ns(set.clone()),
        Value::Bs(set) => AttributeValue::Bs(set.iter().cloned().map(Blob::new).collect()),
        Value::L(list) => AttributeValue::L(list.iter().map(attribute_copied).collect()),
        Value::M(map) => AttributeValue::M(
            map.iter()
                .map(|(name, value)| (name.clone(), attribute_copied(value)))
                .collect(),
        ),
    }
}

pub fn attribute(value: Value) -> AttributeValue {
    match value {
        Value::S(s) => AttributeValue::S(s),
        Value::N(n) => AttributeValue::N(n),
        Value::B(b) => AttributeValue::B(Blob::new(b)),
        Value::Bool(b) => AttributeValue::Bool(b),
        Value::Null => AttributeValue::Null(true),
        Value::Ss(set) => AttributeValue::Ss(set),
        Value::Ns(set) => AttributeValue::Ns(set),
        Value::Bs(set) => AttributeValue::Bs(set.into_iter().map(Blob::new).collect()),
        Value::L(list) => AttributeValue::L(list.into_iter().map(attribute).collect()),
        Value::M(map) => AttributeValue::M(
            map.into_iter()
                .map(|(name, value)| (name, attribute(value)))
                .collect(),
        ),
    }
}

/// Back from the SDK. A type the SDK adds in a later version (its `Unknown`) has no value
/// of ours: such an attribute is dropped (inside a list or map too).
pub fn from_sdk(item: HashMap<String, AttributeValue>) -> Item {
    item.into_iter()
        .filter_map(|(name, value)| Some((name, value_of(value)?)))
        .collect()
}

fn value_of(value: AttributeValue) -> Option<Value> {
    Some(match value {
        AttributeValue::S(s) => Value::S(s),
        AttributeValue::N(n) => Value::N(n),
        AttributeValue::B(b) => Value::B(b.into_inner()),
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Ss(set) => Value::Ss(set),
        AttributeValue::Ns(set) => Value::Ns(set),
        AttributeValue::Bs(set) => Value::Bs(set.into_iter().map(Blob::into_inner).collect()),
        AttributeValue::L(list) => Value::L(list.into_iter().filter_map(value_of).collect()),
        AttributeValue::M(map) => Value::M(
            map.into_iter()
                .filter_map(|(name, value)| Some((name, value_of(value)?)))
                .collect(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn every_type_goes_to_the_sdk_and_back_unchanged() {
        let map = Value::M(BTreeMap::from([
            ("n".to_owned(), Value::N("-1.5".into())),
            (
                "deep".to_owned(),
                Value::L(vec![Value::L(vec![Value::Null])]),
            ),
        ]));
        let item = Item::from_iter([
            ("s".to_owned(), Value::S("é".into())),
            (
                "n".to_owned(),
                Value::N("12345678901234567890123456789012345678".into()),
            ),
            ("b".to_owned(), Value::B(vec![0, 255, 7])),
            ("empty_b".to_owned(), Value::B(vec![])),
            ("t".to_owned(), Value::Bool(true)),
            ("null".to_owned(), Value::Null),
            (
                "ss".to_owned(),
                Value::Ss(vec!["z".into(), "a".into(), String::new()]),
            ),
            (
                "ns".to_owned(),
                Value::Ns(vec!["3".into(), "1E+125".into()]),
            ),
            ("bs".to_owned(), Value::Bs(vec![vec![2], vec![1, 1]])),
            (
                "l".to_owned(),
                Value::L(vec![Value::S("x".into()), map.clone()]),
            ),
            ("m".to_owned(), map),
        ]);
        let sdk = to_sdk(item.clone());
        assert_eq!(
            to_sdk_copied(&item),
            sdk,
            "a borrowed item converts the same"
        );
        assert_eq!(sdk["b"], AttributeValue::B(Blob::new(vec![0, 255, 7])));
        assert_eq!(
            sdk["bs"],
            AttributeValue::Bs(vec![Blob::new(vec![2]), Blob::new(vec![1, 1])])
        );
        assert_eq!(
            sdk["ss"],
            AttributeValue::Ss(vec!["z".into(), "a".into(), String::new()])
        );
        let AttributeValue::M(m) = &sdk["m"] else {
            panic!("not a map: {:?}", sdk["m"]);
        };
        assert_eq!(m["n"], AttributeValue::N("-1.5".into()));
        assert_eq!(
            m["deep"],
            AttributeValue::L(vec![AttributeValue::L(vec![AttributeValue::Null(true)])])
        );
        assert_eq!(from_sdk(sdk), item);
    }
}
