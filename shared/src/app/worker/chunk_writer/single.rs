//! Inserts and updates, one item per call: a condition (insert) or a partial write (update)
//! has no BatchWriteItem form. The rows of a chunk go one after another; chunks run
//! `write_concurrency` at a time, as batched chunks do.
//!
//! An insert is idempotent under redelivery: when its key is taken, the writer reads the
//! item there (the adapter's consistent read) and counts the row as written if that item is
//! the row itself, the attribute a redelivery computes anew aside (a TTL counted from the
//! load): that is the row's own earlier delivery, or an identical item, which leaves the
//! table as the row would. Anything else is counted as existing and left alone.

use super::{ChunkWriter, SourcedRow, WriteOutcome, units_of_size};
use crate::contract::write::WriteMode;
use crate::ingest::item::Item;
use crate::port::table::{Inserted, WriteError};
use crate::retry::partial_failure_backoff;
use tokio::time::Instant;

impl ChunkWriter<'_> {
    /// Inserts or updates each row alone; a row the table refuses is rejected alone.
    pub(super) async fn write_each(
        &self,
        rows: Vec<SourcedRow>,
        outcome: &mut WriteOutcome,
    ) -> Result<(), WriteError> {
        let mut delays = partial_failure_backoff(self.deadline.is_some());
        for row in rows {
            let mut first = true;
            loop {
                let charged = units_of_size(row.row.size);
                if !self.paced(std::slice::from_ref(&row), charged, first).await {
                    return Err(self.out_of_time(1, outcome));
                }
                first = false;
                outcome.units += charged;
                let permit = self.limiter.acquire().await;
                let item = row.row.item.clone();
                let result = match self.mode {
                    WriteMode::Insert => self
                        .table
                        .put_if_absent(self.table_name, self.key, item)
                        .await
                        .map(Some),
                    _ => self
                        .table
                        .update(self.table_name, self.key, item)
                        .await
                        .map(|()| None),
                };
                match result {
                    Ok(inserted) => {
                        permit.succeeded();
                        if let Some(Inserted::Exists(found)) = inserted {
                            let own = found.is_some_and(|existing| {
                                same_item(&existing, &row.row.item, self.recomputed)
                            });
                            if !own {
                                outcome.written -= 1;
                                outcome.existing += 1;
                            }
                        }
                        break;
                    }
                    Err(WriteError::Refused { message, .. }) => {
                        drop(permit);
                        outcome.written -= 1;
                        outcome.rejected += 1;
                        self.reject(row, &message);
                        break;
                    }
                    Err(WriteError::Throttled { .. }) => {
                        permit.throttled();
                        let delay = delays.next().filter(|delay| {
                            self.deadline
                                .is_none_or(|deadline| Instant::now() + *delay < deadline)
                        });
                        let Some(delay) = delay else {
                            return Err(self.out_of_time(1, outcome));
                        };
                        outcome.retries += 1;
                        tokio::time::sleep(delay).await;
                    }
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(())
    }
}

/// Whether `existing` holds exactly `row`'s attributes, `recomputed` aside.
fn same_item(existing: &Item, row: &Item, recomputed: Option<&str>) -> bool {
    let counted = |item: &Item| {
        item.keys()
            .filter(|name| Some(name.as_str()) != recomputed)
            .count()
    };
    counted(existing) == counted(row)
        && row
            .iter()
            .filter(|(name, _)| Some(name.as_str()) != recomputed)
            // Sets come back in the table's order, not the row's.
            .all(|(name, value)| existing.get(name).is_some_and(|e| e.same_as(value)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::item::Value;

    #[test]
    fn an_item_is_the_row_s_own_when_every_attribute_but_the_recomputed_one_matches() {
        let row = Item::from_iter([
            ("k".to_owned(), Value::S("a".into())),
            ("x".to_owned(), Value::N("1".into())),
            ("ttl".to_owned(), Value::N("100".into())),
        ]);
        let mut later = row.clone();
        later.insert("ttl".into(), Value::N("160".into()));
        assert!(same_item(&row, &row, None));
        assert!(!same_item(&later, &row, None));
        assert!(same_item(&later, &row, Some("ttl")));
        let mut other = later.clone();
        other.insert("x".into(), Value::N("2".into()));
        assert!(!same_item(&other, &row, Some("ttl")));
        let mut more = row.clone();
        more.insert("extra".into(), Value::Null);
        assert!(!same_item(&more, &row, Some("ttl")), "an extra attribute");
    }

    #[test]
    fn a_set_read_back_in_another_order_is_still_the_row_s_own() {
        let set = |items: &[&str]| Value::Ss(items.iter().map(|s| (*s).to_owned()).collect());
        let row = Item::from_iter([("tags".to_owned(), set(&["a", "b"]))]);
        let read_back = Item::from_iter([("tags".to_owned(), set(&["b", "a"]))]);
        assert!(same_item(&read_back, &row, None));
        let other = Item::from_iter([("tags".to_owned(), set(&["a", "c"]))]);
        assert!(!same_item(&other, &row, None));
    }
}
