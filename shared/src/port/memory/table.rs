//! The record table in a map, keyed like the real table by its partition (and sort) key
//! attributes. Like DynamoDB, it refuses a whole request holding an item the service would
//! refuse (a number out of range, a key too long, an item over 400 KB: see
//! [`refusal`]), writing none of it. Inserts, updates and deletes follow DynamoDB's
//! semantics: an insert leaves an existing item alone and hands it back, an update merges
//! attributes (creating the item if absent), a delete of a missing key succeeds.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ingest::item::Item;
use crate::ingest::typing::refusal::refusal;
use crate::port::table::{
    Capacity, Inserted, KeyAttribute, KeyNames, KeyType, RecordTable, TableDescription, TableKey,
    WriteError,
};

#[derive(Debug)]
pub struct MemoryTable {
    partition: String,
    sort: Option<String>,
    items: Mutex<BTreeMap<(String, String, String), Item>>,
    capacity: Mutex<Option<Capacity>>,
    /// The key types `describe` reports (S and S unless set).
    types: (KeyType, KeyType),
}

type Stored = BTreeMap<(String, String, String), Item>;

impl MemoryTable {
    pub fn new(partition: &str, sort: Option<&str>) -> Self {
        Self {
            partition: partition.to_owned(),
            sort: sort.map(str::to_owned),
            items: Mutex::default(),
            capacity: Mutex::default(),
            types: (KeyType::S, KeyType::S),
        }
    }

    /// The key types `describe` reports, for the partition and the sort key.
    pub fn with_key_types(self, partition: KeyType, sort: KeyType) -> Self {
        Self {
            types: (partition, sort),
            ..self
        }
    }

    /// The capacity `describe` reports (on-demand without a maximum otherwise).
    pub fn with_capacity(self, capacity: Capacity) -> Self {
        *self
            .capacity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(capacity);
        self
    }

    fn key(&self, table: &str, item: &Item) -> (String, String, String) {
        (
            table.to_owned(),
            Self::text(item, Some(&self.partition)),
            Self::text(item, self.sort.as_ref()),
        )
    }

    /// DynamoDB's refusal of any of `items` (or of none: an empty BatchWriteItem is a
    /// validation error), as its error.
    fn refuse(&self, table: &str, items: &[&Item]) -> Result<(), WriteError> {
        if items.is_empty() {
            return Err(WriteError::Refused {
                table: table.to_owned(),
                message: "a BatchWriteItem request must hold at least one item".into(),
            });
        }
        match items
            .iter()
            .find_map(|item| refusal(item, &self.partition, self.sort.as_deref()))
        {
            Some(message) => Err(WriteError::Refused {
                table: table.to_owned(),
                message,
            }),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Stored> {
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every item of `table`, in key order.
    pub fn items(&self, table: &str) -> Vec<Item> {
        self.lock()
            .iter()
            .filter(|((t, _, _), _)| t == table)
            .map(|(_, item)| item.clone())
            .collect()
    }

    fn text(item: &Item, attribute: Option<&String>) -> String {
        attribute
            .and_then(|a| item.get(a))
            .and_then(|v| v.key_text())
            .unwrap_or_default()
            .into_owned()
    }
}

#[async_trait]
impl RecordTable for MemoryTable {
    async fn batch_put(&self, table: &str, items: &[&Item]) -> Result<Vec<Item>, WriteError> {
        self.refuse(table, items)?;
        let mut stored = self.lock();
        for item in items {
            stored.insert(self.key(table, item), (*item).clone());
        }
        Ok(Vec::new())
    }

    async fn batch_delete(
        &self,
        table: &str,
        key: &KeyNames,
        keys: &[&Item],
    ) -> Result<Vec<Item>, WriteError> {
        let keys: Vec<Item> = keys.iter().map(|k| key.key_of(k)).collect();
        self.refuse(table, &keys.iter().collect::<Vec<_>>())?;
        let mut stored = self.lock();
        for item in &keys {
            stored.remove(&self.key(table, item));
        }
        Ok(Vec::new())
    }

    async fn put_if_absent(
        &self,
        table: &str,
        _key: &KeyNames,
        item: Item,
    ) -> Result<Inserted, WriteError> {
        self.refuse(table, &[&item])?;
        let mut stored = self.lock();
        let key = self.key(table, &item);
        if let Some(existing) = stored.get(&key) {
            return Ok(Inserted::Exists(Some(existing.clone())));
        }
        stored.insert(key, item);
        Ok(Inserted::Written)
    }

    async fn update(&self, table: &str, _key: &KeyNames, item: Item) -> Result<(), WriteError> {
        self.refuse(table, &[&item])?;
        let mut stored = self.lock();
        let merged = stored.entry(self.key(table, &item)).or_default();
        merged.extend(item);
        Ok(())
    }

    async fn describe(&self, _table: &str) -> Result<TableDescription, WriteError> {
        let set = *self
            .capacity
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(TableDescription {
            key: TableKey {
                partition: KeyAttribute::new(&self.partition, self.types.0),
                sort: self
                    .sort
                    .as_deref()
                    .map(|sort| KeyAttribute::new(sort, self.types.1)),
            },
            capacity: set.unwrap_or(Capacity::OnDemand {
                max_write_units: None,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::item::Value;

    #[tokio::test]
    async fn the_memory_table_keeps_the_record_table_contract() {
        let table = MemoryTable::new("pk", Some("sk"));
        let key = KeyNames::new("pk", Some("sk"));
        crate::port::conformance::table::run(&table, "contract", &key, true).await;
    }

    fn item(point: &str, temp: &str) -> Item {
        Item::from_iter([
            ("measure_point".to_owned(), Value::S(point.into())),
            ("timestamp".to_owned(), Value::S("t".into())),
            ("temp".to_owned(), Value::N(temp.into())),
        ])
    }

    #[tokio::test]
    async fn a_request_holding_a_value_the_server_refuses_writes_nothing() {
        let table = MemoryTable::new("measure_point", Some("timestamp"));
        let err = table
            .batch_put("t", &[&item("a", "1"), &item("b", "1e200")])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, WriteError::Refused { message, .. } if message.starts_with("Number overflow")),
            "{err}"
        );
        assert!(table.items("t").is_empty());
        let left = table.batch_put("t", &[&item("a", "1")]).await.unwrap();
        assert!(left.is_empty());
        assert_eq!(table.items("t").len(), 1);
    }

    #[tokio::test]
    async fn binary_and_number_keys_are_told_apart_by_their_values() {
        let table = MemoryTable::new("b", Some("n"));
        let key = |b: Vec<u8>, n: &str| {
            Item::from_iter([
                ("b".to_owned(), Value::B(b)),
                ("n".to_owned(), Value::N(n.into())),
            ])
        };
        table
            .batch_put(
                "t",
                &[
                    &key(vec![1], "1"),
                    &key(vec![1, 0], "1"),
                    &key(vec![1], "2"),
                ],
            )
            .await
            .unwrap();
        table.batch_put("t", &[&key(vec![1], "1")]).await.unwrap();
        assert_eq!(
            table.items("t").len(),
            3,
            "the last put overwrote its own key"
        );
        let err = table
            .batch_put("t", &[&key(Vec::new(), "1")])
            .await
            .unwrap_err();
        assert!(matches!(err, WriteError::Refused { .. }), "{err}");
    }
}
