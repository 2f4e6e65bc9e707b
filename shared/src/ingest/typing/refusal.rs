//! What DynamoDB itself refuses in a put, in its own words: the in-memory record table
//! applies this, so the worker's handling of a refused write (isolating the offending item)
//! is tested without a server. Typing checks the same limits first, so a typed row only
//! meets these when something slipped past it.

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
        if let Value::N(text) = value {
            let problem = match parse_decimal(text) {
                Ok(_) => continue,
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
            };
            return Some(problem.into());
        }
    }
    let keys = [(partition, MAX_PARTITION_KEY_BYTES, true)]
        .into_iter()
        .chain(sort.map(|s| (s, MAX_SORT_KEY_BYTES, false)));
    for (name, max, is_partition) in keys {
        let Some(text) = item.get(name).and_then(Value::as_text) else {
            return Some(format!(
                "One or more parameter values were invalid: Missing the key {name} in the item"
            ));
        };
        if text.is_empty() {
            return Some(format!(
                "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {name}"
            ));
        }
        if text.len() > max {
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
        let unnamed = item(&[("p", Value::S("k".into())), ("", Value::S("v".into()))]);
        assert!(
            refusal(&unnamed, "p", None)
                .unwrap()
                .contains("name cannot be empty")
        );
    }
}
