//! A typed row as a DynamoDB item, in our own terms: the AWS adapter converts it to the SDK's
//! `AttributeValue` when it writes, so typing stays free of the SDK.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use crate::ingest::typing::binary::encode_base64;

/// One attribute's value: every DynamoDB type.
///
/// Sets keep their elements in the order the field wrote them (typing refuses a duplicate
/// rather than dropping it); DynamoDB itself keeps no order, so two sets are the same set
/// only if equal as sets, which [`Value::same_as`] compares. Maps are ordered by key, so a
/// map has one form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (S).
    S(String),
    /// A number (N), as its canonical decimal text.
    N(String),
    /// Bytes (B).
    B(Vec<u8>),
    Bool(bool),
    /// DynamoDB's NULL: an empty field stored as null (the job's empty-value policy), or a
    /// JSON null.
    Null,
    /// A string set (SS).
    Ss(Vec<String>),
    /// A number set (NS), canonical texts.
    Ns(Vec<String>),
    /// A binary set (BS).
    Bs(Vec<Vec<u8>>),
    /// A list (L).
    L(Vec<Value>),
    /// A map (M).
    M(BTreeMap<String, Value>),
}

impl Value {
    /// The text of a string or number; `None` for every other type.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::S(s) | Value::N(s) => Some(s),
            _ => None,
        }
    }

    /// A key value's text, one per value of its type (S and N their text, B lowercase hex):
    /// what rows and doubles tell keys apart by. `None` for a type no key can have.
    pub fn key_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::S(s) | Value::N(s) => Some(Cow::Borrowed(s)),
            Value::B(bytes) => Some(Cow::Owned(hex(bytes))),
            _ => None,
        }
    }

    /// The value as plain JSON, for a rejects report's `raw`: strings and numbers as JSON
    /// strings (a number's exact text), binaries as base64, sets and lists as arrays, maps
    /// as objects.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        let base64 = |b: &[u8]| Json::from(encode_base64(b));
        match self {
            Value::S(s) | Value::N(s) => Json::from(s.as_str()),
            Value::B(b) => base64(b),
            Value::Bool(b) => Json::from(*b),
            Value::Null => Json::Null,
            Value::Ss(set) | Value::Ns(set) => set.iter().map(|s| Json::from(s.as_str())).collect(),
            Value::Bs(set) => set.iter().map(|b| base64(b)).collect(),
            Value::L(list) => list.iter().map(Value::to_json).collect(),
            Value::M(map) => Json::Object(
                map.iter()
                    .map(|(name, value)| (name.clone(), value.to_json()))
                    .collect(),
            ),
        }
    }

    /// The value in DynamoDB's typed JSON (`{"N": "1.5"}`), as its API and its S3 exports
    /// write it: the inverse of the DynamoDB JSON format's reading.
    pub fn to_typed_json(&self) -> serde_json::Value {
        use serde_json::{Value as Json, json};
        let base64 = |b: &[u8]| Json::from(encode_base64(b));
        match self {
            Value::S(s) => json!({ "S": s }),
            Value::N(n) => json!({ "N": n }),
            Value::B(b) => json!({ "B": base64(b) }),
            Value::Bool(b) => json!({ "BOOL": b }),
            Value::Null => json!({ "NULL": true }),
            Value::Ss(set) => json!({ "SS": set }),
            Value::Ns(set) => json!({ "NS": set }),
            Value::Bs(set) => json!({ "BS": set.iter().map(|b| base64(b)).collect::<Vec<_>>() }),
            Value::L(list) => {
                json!({ "L": list.iter().map(Value::to_typed_json).collect::<Vec<_>>() })
            }
            Value::M(map) => json!({ "M": typed_json(map.iter()) }),
        }
    }

    /// Equality as DynamoDB stores values: sets compare as sets (their order is not kept).
    pub fn same_as(&self, other: &Value) -> bool {
        fn same_set<T: Ord + Clone>(a: &[T], b: &[T]) -> bool {
            let sorted = |s: &[T]| {
                let mut s = s.to_vec();
                s.sort();
                s
            };
            a.len() == b.len() && sorted(a) == sorted(b)
        }
        match (self, other) {
            (Value::Ss(a), Value::Ss(b)) | (Value::Ns(a), Value::Ns(b)) => same_set(a, b),
            (Value::Bs(a), Value::Bs(b)) => same_set(a, b),
            (Value::L(a), Value::L(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Value::M(a), Value::M(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|other| v.same_as(other)))
            }
            (a, b) => a == b,
        }
    }
}

/// Attributes as one DynamoDB JSON object (`{"a": {"S": "x"}, ...}`).
pub fn typed_json<'a>(
    attributes: impl Iterator<Item = (&'a String, &'a Value)>,
) -> serde_json::Value {
    serde_json::Value::Object(
        attributes
            .map(|(name, value)| (name.clone(), value.to_typed_json()))
            .collect(),
    )
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A typed item: attribute names to values. Built once per row, so its hasher is foldhash's
/// (seeded per process, so still not predictable from the input) rather than SipHash.
pub type Item = HashMap<String, Value, foldhash::fast::RandomState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_are_the_same_in_any_order_and_keys_have_one_text() {
        let a = Value::Ss(vec!["x".into(), "y".into()]);
        let b = Value::Ss(vec!["y".into(), "x".into()]);
        assert_ne!(a, b);
        assert!(a.same_as(&b));
        assert!(!a.same_as(&Value::Ss(vec!["x".into()])));
        let nested = |set| Value::M(BTreeMap::from([("k".into(), Value::L(vec![set]))]));
        assert!(nested(a.clone()).same_as(&nested(b)));
        assert!(!nested(a).same_as(&nested(Value::S("x".into()))));
        assert_eq!(Value::B(vec![0, 0xab]).key_text().as_deref(), Some("00ab"));
        assert_eq!(Value::N("7".into()).key_text().as_deref(), Some("7"));
        assert_eq!(Value::L(vec![]).key_text(), None);
        assert_eq!(Value::Bool(true).as_text(), None);
        let json = Value::M(BTreeMap::from([
            ("b".into(), Value::Bs(vec![b"hi".to_vec()])),
            (
                "l".into(),
                Value::L(vec![Value::N("1.5".into()), Value::Null]),
            ),
        ]))
        .to_json();
        assert_eq!(json.to_string(), r#"{"b":["aGk="],"l":["1.5",null]}"#);
    }
}
