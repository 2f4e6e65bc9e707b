//! What DynamoDB itself refuses in a put, in its own words: the in-memory record table
//! applies this, so the worker's handling of a refused write (isolating the offending item)
//! is tested without a server. Typing checks the same limits first, so a typed row only
//! meets these when something slipped past it.

use super::json::MAX_DEPTH;
use super::keys::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
use super::numbers::{NumberError, parse_decimal};
use super::size::{MAX_ITEM_BYTES, item_size};
use crate::ingest::item::{Item, Value};

/// Why DynamoDB would refuse `item` in a table keyed by `partition` (and `sort`), with the
/// message of its ValidationException; `None` when it would store it.
pub fn refusal(item: &Item, partition: &str, sort: Option<&str>) -> Option<String> {
    for (name, value) in item {
        if name.is_empty() {
            return Some(
                "One or more parameter values were invalid: An attribute name cannot be empty"
                    .into(),
            );
        }
        if let Some(problem) = value_problem(value, 0) {
            return Some(problem.into());
        }
    }
    let keys = [(partition, MAX_PARTITION_KEY_BYTES, true)]
        .into_iter()
        .chain(sort.map(|s| (s, MAX_SORT_KEY_BYTES, false)));
    for (name, max, is_partition) in keys {
        let bytes = match item.get(name) {
            Some(Value::S(text) | Value::N(text)) => text.len(),
            Some(Value::B(bytes)) => bytes.len(),
            _ => {
                return Some(format!(
                    "One or more parameter values were invalid: Missing the key {name} in the item"
                ));
            }
        };
        if bytes == 0 {
            return Some(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {name}"
            ));
        }
        if bytes > max {
            return Some(if is_partition {
                "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of 2048 bytes".into()
            } else {
                "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes".into()
            });
        }
    }
    (item_size(item) > MAX_ITEM_BYTES)
        .then(|| "Item size has exceeded the maximum allowed size".to_owned())
}

/// What DynamoDB refuses inside one value (`depth` lists and maps enclose it).
fn value_problem(value: &Value, depth: usize) -> Option<&'static str> {
    match value {
        Value::N(text) => number_problem(text),
        Value::Ns(set) if !set.is_empty() => set
            .iter()
            .find_map(|n| number_problem(n))
            .or_else(|| duplicates(set)),
        Value::Ss(set) if !set.is_empty() => duplicates(set),
        Value::Bs(set) if !set.is_empty() => duplicates(set),
        Value::Ss(_) | Value::Ns(_) | Value::Bs(_) => {
            Some("One or more parameter values were invalid: An set may not be empty")
        }
        Value::L(_) | Value::M(_) if depth >= MAX_DEPTH => {
            Some("Nesting Levels have exceeded supported limits")
        }
        Value::L(list) => list.iter().find_map(|v| value_problem(v, depth + 1)),
        Value::M(map) => map.values().find_map(|v| value_problem(v, depth + 1)),
        Value::S(_) | Value::B(_) | Value::Bool(_) | Value::Null => None,
    }
}

fn duplicates<T: Eq + std::hash::Hash>(set: &[T]) -> Option<&'static str> {
    let mut seen = std::collections::HashSet::new();
    (!set.iter().all(|e| seen.insert(e))).then_some(
        "One or more parameter values were invalid: Input collection contains duplicates",
    )
}

fn number_problem(text: &str) -> Option<&'static str> {
    Some(match parse_decimal(text) {
        Ok(_) => return None,
        Err(NumberError::Overflow) => {
            "Number overflow. Attempting to store a number with magnitude larger than supported range"
        }
        Err(NumberError::Underflow) => {
            "Number underflow. Attempting to store a number with magnitude smaller than supported range"
        }
        Err(NumberError::TooManyDigits(_)) => {
            "Attempting to store more than 38 significant digits in a Number"
        }
        Err(NumberError::Syntax | NumberError::Integer) => {
            "The parameter cannot be converted to a numeric value"
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(pairs: &[(&str, Value)]) -> Item {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn what_the_server_refuses() {
        let ok = item(&[("p", Value::S("k".into())), ("t", Value::N("1".into()))]);
        assert_eq!(refusal(&ok, "p", None), None);
        let overflow = item(&[("p", Value::S("k".into())), ("t", Value::N("1e200".into()))]);
        assert!(
            refusal(&overflow, "p", None)
                .unwrap()
                .starts_with("Number overflow")
        );
        let no_key = item(&[("t", Value::N("1".into()))]);
        assert!(
            refusal(&no_key, "p", None)
                .unwrap()
                .contains("Missing the key p")
        );
        let long_sort = item(&[
            ("p", Value::S("k".into())),
            ("s", Value::S("x".repeat(1025))),
        ]);
        assert!(
            refusal(&long_sort, "p", Some("s"))
                .unwrap()
                .contains("1024 bytes")
        );
        let big = item(&[
            ("p", Value::S("k".into())),
            ("b", Value::S("x".repeat(MAX_ITEM_BYTES))),
        ]);
        assert!(
            refusal(&big, "p", None)
                .unwrap()
                .contains("maximum allowed size")
        );
        let key = || ("p", Value::S("k".into()));
        let inner = item(&[
            key(),
            ("l", Value::L(vec![Value::Ns(vec!["1e200".into()])])),
        ]);
        assert!(
            refusal(&inner, "p", None)
                .unwrap()
                .starts_with("Number overflow")
        );
        let empty = item(&[key(), ("s", Value::Ss(vec![]))]);
        assert!(
            refusal(&empty, "p", None)
                .unwrap()
                .contains("may not be empty")
        );
        let twice = item(&[key(), ("s", Value::Bs(vec![vec![1], vec![1]]))]);
        assert!(refusal(&twice, "p", None).unwrap().contains("duplicates"));
        let deep = (0..33).fold(Value::Null, |v, _| Value::L(vec![v]));
        let too_deep = item(&[key(), ("d", deep)]);
        assert!(refusal(&too_deep, "p", None).unwrap().contains("Nesting"));
        let binary_key = item(&[("p", Value::B(vec![1]))]);
        assert_eq!(refusal(&binary_key, "p", None), None);
        let empty_binary_key = item(&[("p", Value::B(vec![]))]);
        assert!(
            refusal(&empty_binary_key, "p", None)
                .unwrap()
                .contains("key attribute")
        );
        let unnamed = item(&[("p", Value::S("k".into())), ("", Value::S("v".into()))]);
        assert!(
            refusal(&unnamed, "p", None)
                .unwrap()
                .contains("name cannot be empty")
        );
    }
}
