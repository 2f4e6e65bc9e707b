//! DynamoDB JSON (the typed form DynamoDB's API and its S3 exports write:
//! `{"a":{"S":"x"},"n":{"N":"1"}}`) to our item model, checked against the same limits as
//! every other format: numbers by [`parse_decimal`] (exact, canonical), sets by
//! [`SetSpec`] (non-empty, no duplicates), nesting at most [`MAX_DEPTH`], base64 binaries.
//! The line is first read by the JSON parser (which keeps number texts exact), then each
//! type descriptor is unwrapped here.

use std::collections::BTreeMap;

use thiserror::Error;

use super::binary::decode_base64;
use super::json::{JsonError, MAX_DEPTH, parse_object};
use super::numbers::parse_decimal;
use super::sets::{SetError, SetSpec};
use crate::contract::schema::{BinaryEncoding, ColumnType};
use crate::ingest::item::{Item, Value};

/// JSON levels a line may nest: two per DynamoDB level (descriptor and container), the
/// item's own object, a wrapper (`Item`, `NewImage`) and its line.
pub const MAX_JSON_DEPTH: usize = 2 * MAX_DEPTH + 3;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TypedJsonError {
    #[error("{0}")]
    Json(JsonError),
    /// Where (an attribute path, capped) and what.
    #[error("attribute {path}: {problem}")]
    At { path: String, problem: TypedProblem },
    #[error("expected {0}")]
    Shape(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TypedProblem {
    #[error(
        "expected a type descriptor: an object with one member, S, N, B, BOOL, NULL, SS, NS, BS, L or M"
    )]
    NotDescriptor,
    /// The descriptor's name (capped).
    #[error("unknown type descriptor {0:?}")]
    Unknown(String),
    #[error("{0} holds {1}")]
    Payload(&'static str, &'static str),
    #[error("{0}")]
    Number(super::numbers::NumberError),
    #[error("{0}")]
    Binary(super::binary::BinaryError),
    #[error("{0}")]
    Set(SetError),
    #[error("lists and maps nested more than DynamoDB's {MAX_DEPTH} levels")]
    TooDeep,
    #[error("NULL holds true (DynamoDB refuses NULL: false)")]
    NullFalse,
}

/// A line's JSON object (before any wrapper is unwrapped).
pub fn parse_line(text: &str) -> Result<BTreeMap<String, Value>, TypedJsonError> {
    parse_object(text, MAX_JSON_DEPTH).map_err(TypedJsonError::Json)
}

/// An object of typed attributes (an item, `Keys`, an image) as an item.
pub fn item(object: BTreeMap<String, Value>) -> Result<Item, TypedJsonError> {
    object
        .into_iter()
        .map(|(name, typed)| {
            let value = value(typed, 0).map_err(|problem| TypedJsonError::At {
                path: capped(&name),
                problem,
            })?;
            Ok((name, value))
        })
        .collect()
}

/// A member that must hold an object (`Item`, `Keys`, `NewImage`).
pub fn object_member(value: Value, what: &'static str) -> Result<Item, TypedJsonError> {
    match value {
        Value::M(map) => item(map),
        _ => Err(TypedJsonError::Shape(what)),
    }
}

/// One typed value; `depth` lists and maps enclose it.
fn value(typed: Value, depth: usize) -> Result<Value, TypedProblem> {
    let Value::M(map) = typed else {
        return Err(TypedProblem::NotDescriptor);
    };
    let mut members = map.into_iter();
    let (Some((descriptor, payload)), None) = (members.next(), members.next()) else {
        return Err(TypedProblem::NotDescriptor);
    };
    let set = |kind| SetSpec {
        kind,
        encoding: BinaryEncoding::Base64,
        separator: None,
    };
    let list = |payload, name| match payload {
        Value::L(list) => Ok(list),
        _ => Err(TypedProblem::Payload(name, "a JSON array")),
    };
    Ok(match (descriptor.as_str(), payload) {
        ("S", Value::S(s)) => Value::S(s),
        ("N", Value::S(n)) => Value::N(parse_decimal(&n).map_err(TypedProblem::Number)?.text),
        ("B", Value::S(b)) => Value::B(decode_base64(&b).map_err(TypedProblem::Binary)?),
        ("BOOL", Value::Bool(b)) => Value::Bool(b),
        ("NULL", Value::Bool(true)) => Value::Null,
        ("NULL", Value::Bool(false)) => return Err(TypedProblem::NullFalse),
        ("SS", payload) => set(ColumnType::StringSet)
            .from_list(list(payload, "SS")?)
            .map_err(TypedProblem::Set)?,
        ("NS", payload) => set(ColumnType::NumberSet)
            .from_list(list(payload, "NS")?)
            .map_err(TypedProblem::Set)?,
        ("BS", payload) => set(ColumnType::BinarySet)
            .from_list(list(payload, "BS")?)
            .map_err(TypedProblem::Set)?,
        ("L", payload) => {
            let elements = list(payload, "L")?;
            if depth + 1 > MAX_DEPTH {
                return Err(TypedProblem::TooDeep);
            }
            Value::L(
                elements
                    .into_iter()
                    .map(|e| value(e, depth + 1))
                    .collect::<Result<_, _>>()?,
            )
        }
        ("M", Value::M(members)) => {
            if depth + 1 > MAX_DEPTH {
                return Err(TypedProblem::TooDeep);
            }
            Value::M(
                members
                    .into_iter()
                    .map(|(k, v)| Ok((k, value(v, depth + 1)?)))
                    .collect::<Result<_, _>>()?,
            )
        }
        ("S" | "N" | "B", _) => return Err(TypedProblem::Payload(leak(&descriptor), "a string")),
        ("BOOL" | "NULL", _) => {
            return Err(TypedProblem::Payload(leak(&descriptor), "true or false"));
        }
        ("M", _) => return Err(TypedProblem::Payload("M", "a JSON object")),
        (other, _) => return Err(TypedProblem::Unknown(capped(other))),
    })
}

/// The static name of a known descriptor (for a reason).
fn leak(descriptor: &str) -> &'static str {
    match descriptor {
        "S" => "S",
        "N" => "N",
        "B" => "B",
        "BOOL" => "BOOL",
        _ => "NULL",
    }
}

fn capped(name: &str) -> String {
    super::error::cap(name, super::error::MAX_NAME_IN_REASON)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Result<Item, TypedJsonError> {
        item(parse_line(text)?)
    }

    #[test]
    fn every_type_is_read_exactly() {
        let item = one(concat!(
            r#"{"s":{"S":"x"},"n":{"N":"007.50"},"b":{"B":"AAE="},"t":{"BOOL":true},"z":{"NULL":true},"#,
            r#""ss":{"SS":["a","b"]},"ns":{"NS":["1","2.5"]},"bs":{"BS":["/w=="]},"#,
            r#""l":{"L":[{"N":"1"},{"M":{"k":{"S":""}}}]},"m":{"M":{}}}"#
        ))
        .unwrap();
        assert_eq!(item["s"], Value::S("x".into()));
        assert_eq!(item["n"], Value::N("7.5".into()));
        assert_eq!(item["b"], Value::B(vec![0, 1]));
        assert_eq!(item["t"], Value::Bool(true));
        assert_eq!(item["z"], Value::Null);
        assert_eq!(item["ss"], Value::Ss(vec!["a".into(), "b".into()]));
        assert_eq!(item["ns"], Value::Ns(vec!["1".into(), "2.5".into()]));
        assert_eq!(item["bs"], Value::Bs(vec![vec![0xff]]));
        let inner = Value::M(BTreeMap::from([("k".into(), Value::S(String::new()))]));
        assert_eq!(item["l"], Value::L(vec![Value::N("1".into()), inner]));
        assert_eq!(item["m"], Value::M(BTreeMap::new()));
    }

    #[test]
    fn each_bad_value_names_its_attribute_and_the_rule() {
        let reason = |text: &str| one(text).unwrap_err().to_string();
        assert_eq!(
            reason(r#"{"a":{"X":"1"}}"#),
            "attribute a: unknown type descriptor \"X\""
        );
        assert!(reason(r#"{"a":"plain"}"#).contains("expected a type descriptor"));
        assert!(reason(r#"{"a":{"S":"x","N":"1"}}"#).contains("expected a type descriptor"));
        assert!(reason(r#"{"a":{"N":1}}"#).contains("N holds a string"));
        assert!(reason(r#"{"a":{"N":"1e200"}}"#).contains("overflow"));
        assert!(reason(r#"{"a":{"NS":["1","1.0"]}}"#).contains("duplicate element"));
        assert!(reason(r#"{"a":{"SS":[]}}"#).contains("empty set"));
        assert!(reason(r#"{"a":{"B":"%%"}}"#).contains("attribute a"));
        assert!(reason(r#"{"a":{"NULL":false}}"#).contains("NULL"));
        assert!(reason(r#"{"a":{"S":"x"}"#).contains("invalid JSON"));
    }

    #[test]
    fn nesting_is_limited_to_dynamodb_s_32_levels_not_the_json_s() {
        let nested = |levels: usize| {
            let mut text = r#"{"S":"x"}"#.to_owned();
            for _ in 0..levels {
                text = format!(r#"{{"L":[{text}]}}"#);
            }
            format!(r#"{{"Item":{{"a":{text}}}}}"#)
        };
        assert!(parse_line(&nested(MAX_DEPTH)).is_ok());
        let wrapped = parse_line(&nested(MAX_DEPTH))
            .unwrap()
            .remove("Item")
            .unwrap();
        assert!(object_member(wrapped, "an object").is_ok());
        let too_deep = parse_line(&nested(MAX_DEPTH + 1))
            .map_err(|e| e.to_string())
            .and_then(|mut line| {
                object_member(line.remove("Item").unwrap(), "an object").map_err(|e| e.to_string())
            });
        assert!(too_deep.unwrap_err().contains("nested more than"));
    }
}
