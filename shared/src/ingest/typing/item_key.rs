//! The key of an item that arrives whole (DynamoDB JSON): its attributes are the data's, so
//! only the key is checked here, as DynamoDB would check it. The key's names come from the
//! schema's `partition_key` / `sort_key` (one attribute each) and its types from the
//! schema's columns of those names (string S, number or integer N, binary B): the job's
//! check at start compares exactly that key with the table's, and an item whose key
//! attribute is missing or of another type is refused alone here.

use super::error::RowError;
use super::keys::{MAX_PARTITION_KEY_BYTES, MAX_SORT_KEY_BYTES};
use super::size::{MAX_ITEM_BYTES, item_size, value_size};
use crate::contract::columns::KeyType;
use crate::contract::schema::Schema;
use crate::ingest::item::{Item, Value};

/// One key attribute: its name and the type the table needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    pub name: String,
    pub kind: KeyType,
}

/// The key every whole item of a job must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemKey {
    pub partition: KeyPart,
    pub sort: Option<KeyPart>,
}

impl ItemKey {
    /// The schema's key, typed by its columns (an undeclared key attribute is S).
    pub fn of_schema(schema: &Schema) -> Self {
        let part = |name: &str| KeyPart {
            name: name.to_owned(),
            kind: schema
                .column(name)
                .map_or(KeyType::S, |column| column.key_type()),
        };
        Self {
            partition: part(&schema.partition_attribute()),
            sort: schema.sort_attribute().map(|name| part(&name)),
        }
    }

    /// The item's key texts (partition, sort or empty) and its size, or why DynamoDB would
    /// refuse it: a key attribute missing, of another type or empty, a key or the item over
    /// its limit, an empty attribute name.
    pub fn check(&self, item: &Item) -> Result<((String, String), usize), String> {
        if item.keys().any(String::is_empty) {
            return Err("an attribute has an empty name (DynamoDB refuses it)".into());
        }
        let partition = part(item, &self.partition, "partition")?;
        let bytes = value_size(partition);
        if bytes > MAX_PARTITION_KEY_BYTES {
            return Err(RowError::PartitionKeyTooLong { bytes }.to_string());
        }
        let sort = match &self.sort {
            Some(sort) => {
                let value = part(item, sort, "sort")?;
                let bytes = value_size(value);
                if bytes > MAX_SORT_KEY_BYTES {
                    return Err(RowError::SortKeyTooLong { bytes }.to_string());
                }
                text(value)
            }
            None => String::new(),
        };
        let bytes = item_size(item);
        if bytes > MAX_ITEM_BYTES {
            return Err(RowError::ItemTooLarge { bytes }.to_string());
        }
        Ok(((text(partition), sort), bytes))
    }
}

fn part<'a>(item: &'a Item, key: &KeyPart, role: &str) -> Result<&'a Value, String> {
    let value = item.get(&key.name).ok_or_else(|| {
        format!(
            "the item has no {role} key attribute {:?} (of type {})",
            key.name, key.kind
        )
    })?;
    let kind = match value {
        Value::S(_) => Some(KeyType::S),
        Value::N(_) => Some(KeyType::N),
        Value::B(_) => Some(KeyType::B),
        _ => None,
    };
    if kind != Some(key.kind) {
        return Err(format!(
            "{role} key attribute {:?} is not of the key's type {}",
            key.name, key.kind
        ));
    }
    if matches!(value, Value::S(s) if s.is_empty()) || matches!(value, Value::B(b) if b.is_empty())
    {
        return Err(format!(
            "{role} key attribute {:?} is empty (DynamoDB refuses empty keys)",
            key.name
        ));
    }
    Ok(value)
}

fn text(value: &Value) -> String {
    value.key_text().map(|t| t.into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ItemKey {
        ItemKey {
            partition: KeyPart {
                name: "id".into(),
                kind: KeyType::N,
            },
            sort: Some(KeyPart {
                name: "at".into(),
                kind: KeyType::B,
            }),
        }
    }

    #[test]
    fn a_key_of_the_right_types_gives_its_texts_and_every_other_is_refused_with_a_reason() {
        let item = |id: Value, at: Value| Item::from_iter([("id".into(), id), ("at".into(), at)]);
        let ok = item(Value::N("7".into()), Value::B(vec![0xab]));
        // id (2) + a 1-digit N (2) + at (2) + a 1-byte B (1).
        assert_eq!(key().check(&ok), Ok((("7".into(), "ab".into()), 7)));
        let wrong = item(Value::S("7".into()), Value::B(vec![1]));
        assert!(
            key()
                .check(&wrong)
                .unwrap_err()
                .contains("partition key attribute \"id\" is not of the key's type N (number)")
        );
        let empty = item(Value::N("7".into()), Value::B(vec![]));
        assert!(key().check(&empty).unwrap_err().contains("empty"));
        let missing = Item::from_iter([("id".into(), Value::N("1".into()))]);
        assert!(
            key()
                .check(&missing)
                .unwrap_err()
                .contains("no sort key attribute \"at\"")
        );
        let long = item(Value::N("1".into()), Value::B(vec![0; 1025]));
        assert!(key().check(&long).unwrap_err().contains("1024-byte"));
    }

    #[test]
    fn the_schema_s_key_columns_give_the_key_s_types() {
        let schema: Schema = serde_json::from_value(serde_json::json!({
            "columns": [{"name": "id", "type": "integer"}, {"name": "at", "type": "string"}],
            "partition_key": ["id"],
            "sort_key": ["at"],
        }))
        .unwrap();
        let key = ItemKey::of_schema(&schema);
        assert_eq!(key.partition.kind, KeyType::N);
        assert_eq!(key.sort.map(|s| s.kind), Some(KeyType::S));
    }
}
