//! The record table in a map, keyed like the real table by its partition (and sort) key
//! attributes.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::ingest::item::Item;
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
