//! Sets (SS, NS, BS) from one field: split on the column's `separator`, or, with none
//! declared, a JSON array. Elements keep the order they were written in; DynamoDB refuses
//! an empty set and a set holding one element twice, and so does typing: a duplicate is
//! never dropped silently, as that would store other data than the file holds. Numbers are
//! compared by value (`1` and `1.0` are one element, as DynamoDB sees them). Empty strings
//! and binaries are allowed as elements (DynamoDB allows them in sets).
//!
//! With a separator, string elements are kept byte for byte; number and binary elements are
//! trimmed before parsing, as those columns are.

use std::collections::HashSet;
use std::hash::Hash;

use thiserror::Error;

use super::binary::{self, BinaryError};
use super::json::{self, JsonError};
use super::numbers::{NumberError, parse_decimal};
use crate::contract::schema::{BinaryEncoding, ColumnType};
use crate::ingest::item::Value;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SetError {
    #[error("empty set: DynamoDB sets hold at least one element")]
    Empty,
    /// The 1-based position of the repeat (never the element).
    #[error("duplicate element in a set (element {0}): DynamoDB refuses duplicates")]
    Duplicate(usize),
    #[error("set element {index}: {problem}")]
    Element { index: usize, problem: ElementError },
    #[error("set (no separator: a JSON array): {0}")]
    Json(JsonError),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ElementError {
    #[error(transparent)]
    Number(NumberError),
    #[error(transparent)]
    Binary(BinaryError),
    #[error("expected {0}")]
    Expected(&'static str),
}

/// How one set column is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    pub kind: ColumnType,
    pub encoding: BinaryEncoding,
    pub separator: Option<String>,
}

impl SetSpec {
    pub fn parse(&self, text: &str) -> Result<Value, SetError> {
        let elements: Vec<Element> = match &self.separator {
            Some(separator) => text.split(separator.as_str()).map(Element::Text).collect(),
            None => json::parse_list(text)
                .map_err(SetError::Json)?
                .into_iter()
                .map(Element::Json)
                .collect(),
        };
        self.of_elements(elements)
    }

    /// A set from a JSON array's elements (a JSON Lines field), typed as a field's would be.
    pub fn from_list(&self, list: Vec<Value>) -> Result<Value, SetError> {
        self.of_elements(list.into_iter().map(Element::Json).collect())
    }

    fn of_elements(&self, elements: Vec<Element<'_>>) -> Result<Value, SetError> {
        if elements.is_empty() {
            return Err(SetError::Empty);
        }
        Ok(match self.kind {
            ColumnType::NumberSet => Value::Ns(unique(each(elements, Element::number)?)?),
            ColumnType::BinarySet => {
                Value::Bs(unique(each(elements, |e| e.binary(self.encoding))?)?)
            }
            _ => Value::Ss(unique(each(elements, Element::string)?)?),
        })
    }
}

/// Every element typed by `f`, or the first one's problem with its 1-based position.
fn each<'a, T>(
    elements: Vec<Element<'a>>,
    f: impl Fn(Element<'a>) -> Result<T, ElementError>,
) -> Result<Vec<T>, SetError> {
    elements
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            f(e).map_err(|problem| SetError::Element {
                index: i + 1,
                problem,
            })
        })
        .collect()
}

/// One element before typing: a piece of the delimited field, or a JSON array's element.
enum Element<'a> {
    Text(&'a str),
    Json(Value),
}

impl Element<'_> {
    fn string(self) -> Result<String, ElementError> {
        match self {
            Element::Text(text) => Ok(text.to_owned()),
            Element::Json(Value::S(s)) => Ok(s),
            Element::Json(_) => Err(ElementError::Expected("a JSON string")),
        }
    }

    fn number(self) -> Result<String, ElementError> {
        let text = match self {
            Element::Text(text) => text.trim().to_owned(),
            // The JSON parser already checked and canonicalised it.
            Element::Json(Value::N(n)) => return Ok(n),
            Element::Json(Value::S(s)) => s,
            Element::Json(_) => return Err(ElementError::Expected("a JSON number")),
        };
        parse_decimal(&text)
            .map(|n| n.text)
            .map_err(ElementError::Number)
    }

    fn binary(self, encoding: BinaryEncoding) -> Result<Vec<u8>, ElementError> {
        let decode = |text: &str| binary::decode(encoding, text).map_err(ElementError::Binary);
        match self {
            Element::Text(text) => decode(text.trim()),
            Element::Json(Value::S(s)) => decode(&s),
            Element::Json(_) => Err(ElementError::Expected("a JSON string")),
        }
    }
}

/// The elements if no two are equal; else the position of the first repeat.
fn unique<T: Eq + Hash>(elements: Vec<T>) -> Result<Vec<T>, SetError> {
    let mut seen = HashSet::with_capacity(elements.len());
    if let Some(at) = elements.iter().position(|e| !seen.insert(e)) {
        return Err(SetError::Duplicate(at + 1));
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: ColumnType, separator: Option<&str>) -> SetSpec {
        SetSpec {
            kind,
            encoding: BinaryEncoding::Base64,
            separator: separator.map(str::to_owned),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn delimited_sets_keep_their_order_and_type_their_elements() {
        let ss = spec(ColumnType::StringSet, Some("|"));
        assert_eq!(ss.parse("b| a|"), Ok(Value::Ss(strings(&["b", " a", ""]))));
        let ns = spec(ColumnType::NumberSet, Some(";"));
        assert_eq!(
            ns.parse(" 1.50 ; -0;7e1"),
            Ok(Value::Ns(strings(&["1.5", "0", "70"])))
        );
        let bs = spec(ColumnType::BinarySet, Some(","));
        assert_eq!(
            bs.parse("aGk=, AA"),
            Ok(Value::Bs(vec![b"hi".to_vec(), vec![0]]))
        );
        let hex = SetSpec {
            encoding: BinaryEncoding::Hex,
            ..bs.clone()
        };
        assert_eq!(
            hex.parse("00ff,AB"),
            Ok(Value::Bs(vec![vec![0, 255], vec![0xab]]))
        );
        let multi = spec(ColumnType::StringSet, Some("::"));
        assert_eq!(multi.parse("a::b:c"), Ok(Value::Ss(strings(&["a", "b:c"]))));
    }

    #[test]
    fn json_array_sets() {
        let ss = spec(ColumnType::StringSet, None);
        assert_eq!(
            ss.parse(r#"["x", "", "y"]"#),
            Ok(Value::Ss(strings(&["x", "", "y"])))
        );
        let ns = spec(ColumnType::NumberSet, None);
        assert_eq!(
            ns.parse(r#"[1, "2.0", 3e0]"#),
            Ok(Value::Ns(strings(&["1", "2", "3"])))
        );
        let bs = spec(ColumnType::BinarySet, None);
        assert_eq!(bs.parse(r#"["aGk="]"#), Ok(Value::Bs(vec![b"hi".to_vec()])));
        assert_eq!(ss.parse("[]"), Err(SetError::Empty));
        assert!(matches!(
            ss.parse("a|b"),
            Err(SetError::Json(JsonError::Syntax(0)))
        ));
        assert_eq!(
            ss.parse(r#"["a", 1]"#),
            Err(SetError::Element {
                index: 2,
                problem: ElementError::Expected("a JSON string")
            })
        );
        assert_eq!(
            ns.parse(r#"[[1]]"#),
            Err(SetError::Element {
                index: 1,
                problem: ElementError::Expected("a JSON number")
            })
        );
    }

    #[test]
    fn duplicates_and_bad_elements_are_refused_by_position() {
        let ss = spec(ColumnType::StringSet, Some("|"));
        assert_eq!(ss.parse("a|b|a"), Err(SetError::Duplicate(3)));
        let ns = spec(ColumnType::NumberSet, Some("|"));
        assert_eq!(
            ns.parse("1|1.0"),
            Err(SetError::Duplicate(2)),
            "equal numbers"
        );
        assert_eq!(
            ns.parse("1|1e200"),
            Err(SetError::Element {
                index: 2,
                problem: ElementError::Number(NumberError::Overflow)
            })
        );
        assert_eq!(
            ns.parse("1||2"),
            Err(SetError::Element {
                index: 2,
                problem: ElementError::Number(NumberError::Syntax)
            })
        );
        let bs = spec(ColumnType::BinarySet, None);
        assert_eq!(
            bs.parse(r#"["AA==", "AA"]"#),
            Err(SetError::Duplicate(2)),
            "same bytes"
        );
        assert_eq!(
            bs.parse(r#"["%"]"#),
            Err(SetError::Element {
                index: 1,
                problem: ElementError::Binary(BinaryError::Base64)
            })
        );
        let text = SetError::Duplicate(3).to_string();
        assert_eq!(
            text,
            "duplicate element in a set (element 3): DynamoDB refuses duplicates"
        );
    }
}
