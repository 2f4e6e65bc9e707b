//! The record table in a map, keyed like the real table by its partition (and sort) key
//! attributes. Like DynamoDB, it refuses a whole request holding an item the service would
//! refuse (a number out of range, a key too long, an item over 400 KB: see
//! [`refusal`]), writing none of it.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ingest::item::Item;
use crate::ingest::typing::refusal::refusal;
use crate::port::table::{RecordTable, WriteError};

#[derive(Debug)]
pub struct MemoryTable {
    partition: String,
    sort: Option<String>,
    items: Mutex<BTreeMap<(String, String, String), Item>>,
}

impl MemoryTable {
    pub fn new(partition: &str, sort: Option<&str>) -> Self {
        Self {
            partition: partition.to_owned(),
            sort: sort.map(str::to_owned),
            items: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String, String), Item>> {
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
            .and_then(|v| v.as_text())
            .unwrap_or_default()
            .to_owned()
    }
}

#[async_trait]
impl RecordTable for MemoryTable {
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<Vec<Item>, WriteError> {
        if let Some(message) = items
            .iter()
            .find_map(|item| refusal(item, &self.partition, self.sort.as_deref()))
        {
            return Err(WriteError::Refused {
                table: table.to_owned(),
                message,
            });
        }
        let mut stored = self.lock();
        for item in items {
            let key = (
                table.to_owned(),
                Self::text(&item, Some(&self.partition)),
                Self::text(&item, self.sort.as_ref()),
            );
            stored.insert(key, item);
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::item::Value;

    fn item(point: &str, temp: &str) -> Item {
        Item::from([
            ("measure_point".to_owned(), Value::S(point.into())),
            ("timestamp".to_owned(), Value::S("t".into())),
            ("temp".to_owned(), Value::N(temp.into())),
        ])
    }

    #[tokio::test]
    async fn a_request_holding_a_value_the_server_refuses_writes_nothing() {
        let table = MemoryTable::new("measure_point", Some("timestamp"));
        let err = table
            .batch_put("t", vec![item("a", "1"), item("b", "1e200")])
            .await
            .unwrap_err();
        assert!(
            matches!(&err, WriteError::Refused { message, .. } if message.starts_with("Number overflow")),
            "{err}"
        );
        assert!(table.items("t").is_empty());
        let left = table.batch_put("t", vec![item("a", "1")]).await.unwrap();
        assert!(left.is_empty());
        assert_eq!(table.items("t").len(), 1);
    }
}
