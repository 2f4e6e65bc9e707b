//! What every record table does: puts overwrite, an insert leaves an existing item alone and
//! hands it back, an update merges attributes (creating the item when absent), a delete
//! removes by key and succeeds on a missing one, NULL survives the trip, a value the service
//! refuses is refused before anything is written, and the capacity can be read.

use crate::ingest::item::{Item, Value};
use crate::port::table::{Inserted, KeyNames, RecordTable, WriteError};

fn item(key: &KeyNames, point: &str, attributes: &[(&str, Value)]) -> Item {
    let mut item = Item::from_iter([(key.partition.clone(), Value::S(point.to_owned()))]);
    if let Some(sort) = &key.sort {
        item.insert(sort.clone(), Value::S("t0".into()));
    }
    for (name, value) in attributes {
        item.insert((*name).to_owned(), value.clone());
    }
    item
}

/// The stored item at `point` (an insert of its bare key finds it), or `None`.
async fn stored(table: &dyn RecordTable, name: &str, key: &KeyNames, point: &str) -> Option<Item> {
    match table
        .put_if_absent(name, key, item(key, point, &[]))
        .await
        .unwrap()
    {
        Inserted::Exists(found) => found,
        Inserted::Written => {
            // It was absent: take the probe away again.
            let probe = [item(key, point, &[])];
            assert!(
                table
                    .batch_delete(name, key, &probe.iter().collect::<Vec<_>>())
                    .await
                    .unwrap()
                    .is_empty()
            );
            None
        }
    }
}

/// Runs every check on `name`, a table keyed by `key`'s attributes (strings), under
/// partition keys of its own (so it can share a table with other tests). moto stores numbers
/// DynamoDB refuses: `refuses_bad_numbers` is false there.
pub async fn run(table: &dyn RecordTable, name: &str, key: &KeyNames, refuses_bad_numbers: bool) {
    let point = |suffix: &str| format!("contract-table-{suffix}");
    let n = |text: &str| Value::N(text.into());

    // Puts overwrite whole items.
    let first = item(key, &point("a"), &[("x", n("1")), ("y", n("2"))]);
    assert!(table.batch_put(name, &[&first]).await.unwrap().is_empty());
    let second = item(key, &point("a"), &[("x", n("3"))]);
    assert!(table.batch_put(name, &[&second]).await.unwrap().is_empty());
    assert_eq!(
        stored(table, name, key, &point("a")).await,
        Some(second.clone())
    );

    // An insert writes a free key, and leaves a taken one alone, handing it back.
    let fresh = item(key, &point("b"), &[("x", n("5")), ("gone", Value::Null)]);
    assert_eq!(
        table.put_if_absent(name, key, fresh.clone()).await.unwrap(),
        Inserted::Written
    );
    let other = item(key, &point("b"), &[("x", n("6"))]);
    assert_eq!(
        table.put_if_absent(name, key, other).await.unwrap(),
        Inserted::Exists(Some(fresh.clone())),
        "the existing item, NULL included, is returned and kept"
    );

    // An update merges: given attributes change, the others stay; an absent item is created.
    let merge = item(
        key,
        &point("b"),
        &[("x", n("7")), ("z", Value::S(String::new()))],
    );
    table.update(name, key, merge).await.unwrap();
    let merged = item(
        key,
        &point("b"),
        &[
            ("x", n("7")),
            ("gone", Value::Null),
            ("z", Value::S(String::new())),
        ],
    );
    assert_eq!(stored(table, name, key, &point("b")).await, Some(merged));
    let created = item(key, &point("c"), &[("x", n("8"))]);
    table.update(name, key, created.clone()).await.unwrap();
    assert_eq!(stored(table, name, key, &point("c")).await, Some(created));

    // Deletes take keys (other attributes ignored); a missing key is no error.
    let keys = [
        second,
        item(key, &point("c"), &[("ignored", n("1"))]),
        item(key, &point("never-written"), &[]),
    ];
    assert!(
        table
            .batch_delete(name, key, &keys.iter().collect::<Vec<_>>())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stored(table, name, key, &point("a")).await, None);
    assert_eq!(stored(table, name, key, &point("c")).await, None);
    assert!(stored(table, name, key, &point("b")).await.is_some());

    // A value the service refuses is refused whole, by every kind of write.
    if refuses_bad_numbers {
        refuses(table, name, key, &point("d")).await;
    }

    let described = table.describe(name).await.unwrap();
    assert_eq!(described.key.partition.name, key.partition);
    assert_eq!(described.key.sort.map(|sort| sort.name), key.sort.clone());
    let cleanup = [item(key, &point("b"), &[])];
    assert!(
        table
            .batch_delete(name, key, &cleanup.iter().collect::<Vec<_>>())
            .await
            .unwrap()
            .is_empty()
    );
}

async fn refuses(table: &dyn RecordTable, name: &str, key: &KeyNames, point: &str) {
    let n = |text: &str| Value::N(text.into());
    let bad = item(key, point, &[("x", n("1e200"))]);
    let refused = |r: Result<(), WriteError>| matches!(r, Err(WriteError::Refused { .. }));
    assert!(refused(table.update(name, key, bad.clone()).await));
    assert!(refused(
        table
            .put_if_absent(name, key, bad.clone())
            .await
            .map(|_| ())
    ));
    assert!(refused(table.batch_put(name, &[&bad]).await.map(|_| ())));
    assert_eq!(stored(table, name, key, point).await, None);
}
