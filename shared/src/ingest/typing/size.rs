//! An item's size as DynamoDB computes it against its 400 KB limit: attribute names count,
//! strings by their UTF-8 bytes, numbers by their significant digits (1 byte per two, plus
//! 1), bools and nulls 1 byte. No sets or other types are ever produced by typing.

use super::numbers::significant_digits;
use crate::ingest::item::{Item, Value};

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// Bytes one value adds (its attribute name not included).
pub fn value_size(value: &Value) -> usize {
    match value {
        Value::S(s) => s.len(),
        Value::N(n) => number_size(significant_digits(n)),
        Value::Bool(_) | Value::Null => 1,
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
        let item = Item::from([
            ("temp".to_owned(), Value::N("19.8".into())),
            ("k".to_owned(), Value::S("abc".into())),
        ]);
        assert_eq!(item_size(&item), 4 + 3 + 1 + 3);
    }
}
