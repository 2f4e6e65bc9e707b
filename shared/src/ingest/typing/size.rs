//! An item's size as DynamoDB computes it against its 400 KB limit: attribute names count,
//! strings by their UTF-8 bytes, numbers by their significant digits (1 byte per two, plus
//! 1), binaries by their raw length, bools and nulls 1 byte, a set the sum of its elements,
//! a list or map 3 bytes plus, per element, 1 byte and the element (a map's key name too).

use super::numbers::significant_digits;
use crate::ingest::item::{Item, Value};

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// A list's or map's own overhead.
const CONTAINER: usize = 3;

/// Bytes one value adds (its attribute name not included).
pub fn value_size(value: &Value) -> usize {
    match value {
        Value::S(s) => s.len(),
        Value::N(n) => number_size(significant_digits(n)),
        Value::B(b) => b.len(),
        Value::Bool(_) | Value::Null => 1,
        Value::Ss(set) => set.iter().map(String::len).sum(),
        Value::Ns(set) => set.iter().map(|n| number_size(significant_digits(n))).sum(),
        Value::Bs(set) => set.iter().map(Vec::len).sum(),
        Value::L(list) => CONTAINER + list.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        Value::M(map) => {
            CONTAINER
                + map
                    .iter()
                    .map(|(name, v)| 1 + name.len() + value_size(v))
                    .sum::<usize>()
        }
    }
}

/// DynamoDB's stored size of a number with this many significant digits.
pub fn number_size(significant: usize) -> usize {
    significant.div_ceil(2) + 1
}

/// The whole item's size: every attribute's name plus its value.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_dynamodb_s_rules() {
        assert_eq!(value_size(&Value::S("héllo".into())), 6);
        assert_eq!(value_size(&Value::N("19.8".into())), 3);
        assert_eq!(value_size(&Value::N("1200".into())), 2);
        assert_eq!(value_size(&Value::N("0".into())), 2);
        assert_eq!(value_size(&Value::Bool(true)), 1);
        let item = Item::from_iter([
            ("temp".to_owned(), Value::N("19.8".into())),
            ("k".to_owned(), Value::S("abc".into())),
        ]);
        assert_eq!(item_size(&item), 4 + 3 + 1 + 3);
    }

    #[test]
    fn nested_values_sets_and_binaries_are_sized_as_dynamodb_does() {
        use std::collections::BTreeMap;
        assert_eq!(value_size(&Value::B(vec![0; 10])), 10);
        assert_eq!(value_size(&Value::Ss(vec!["ab".into(), "é".into()])), 4);
        // 1 (2 bytes) + 123 (3 bytes)
        assert_eq!(value_size(&Value::Ns(vec!["1".into(), "123".into()])), 5);
        assert_eq!(value_size(&Value::Bs(vec![vec![1, 2], vec![]])), 2);
        assert_eq!(value_size(&Value::L(vec![])), 3);
        assert_eq!(value_size(&Value::M(BTreeMap::new())), 3);
        // 3 + (1 + "abc") + (1 + 2-byte number)
        let list = Value::L(vec![Value::S("abc".into()), Value::N("7".into())]);
        assert_eq!(value_size(&list), 3 + 4 + 3);
        // 3 + (1 + "k" + the list) + (1 + "flag" + 1)
        let map = Value::M(BTreeMap::from([
            ("k".into(), list),
            ("flag".into(), Value::Bool(true)),
        ]));
        assert_eq!(value_size(&map), 3 + (1 + 1 + 10) + (1 + 4 + 1));
    }
}
