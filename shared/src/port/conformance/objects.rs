//! What every object store does: pages in key order with sizes, HEAD, whole and ranged GETs,
//! If-Match pinning (where the server enforces it), PUT, DELETE, and semantic failures.

use tokio::io::AsyncReadExt;

use crate::port::objects::{Failure, ObjectStore, Read};

async fn read_all(store: &dyn ObjectStore, bucket: &str, key: &str, read: Read<'_>) -> Vec<u8> {
    let mut body = store.get(bucket, key, read).await.unwrap();
    let mut bytes = Vec::new();
    body.reader.read_to_end(&mut bytes).await.unwrap();
    bytes
}

/// Runs every check on keys under `prefix` in an existing `bucket`. `if_match` says whether
/// the backend enforces If-Match (s3s-fs does not: the README says which server proves it).
pub async fn run(store: &dyn ObjectStore, bucket: &str, prefix: &str, if_match: bool) {
    for i in 0..5 {
        let body = format!("object {i}\n").repeat(i + 1).into_bytes();
        store
            .put(bucket, &format!("{prefix}k{i}.csv"), body, "text/csv")
            .await
            .unwrap();
    }
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_page(bucket, prefix, 2, cursor).await.unwrap();
        assert!(page.objects.len() <= 2);
        keys.extend(page.objects.iter().map(|o| (o.key.clone(), o.size)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<(String, u64)> = (0..5)
        .map(|i| (format!("{prefix}k{i}.csv"), 9 * (i as u64 + 1)))
        .collect();
    assert_eq!(keys, expected, "every key once, in order, with its size");

    let key = format!("{prefix}k2.csv");
    let info = store.head(bucket, &key).await.unwrap();
    assert_eq!(info.size, 27);
    let etag = info.etag.expect("an ETag");
    assert_eq!(
        read_all(store, bucket, &key, Read::default()).await.len(),
        27
    );
    let tail = read_all(
        store,
        bucket,
        &key,
        Read {
            from: 20,
            to: None,
            if_match: Some(&etag),
        },
    )
    .await;
    assert_eq!(tail, b"ject 2\n");
    let middle = read_all(
        store,
        bucket,
        &key,
        Read {
            from: 20,
            to: Some(24),
            if_match: Some(&etag),
        },
    )
    .await;
    assert_eq!(middle, b"ject", "a bounded range holds from..to");
    let body = store
        .get(
            bucket,
            &key,
            Read {
                from: 20,
                to: None,
                if_match: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(body.size, 7, "a ranged body's size is what it holds");
    assert_eq!(
        body.etag.as_deref(),
        Some(etag.as_str()),
        "a GET names the version it read"
    );

    if if_match {
        let stale = store
            .get(
                bucket,
                &key,
                Read {
                    from: 0,
                    to: None,
                    if_match: Some("\"not-the-etag\""),
                },
            )
            .await
            .err()
            .expect("a mismatched ETag fails");
        assert_eq!(stale.failure, Failure::Changed);
    }
    let missing = format!("{prefix}missing.csv");
    let gone = store
        .get(bucket, &missing, Read::default())
        .await
        .err()
        .expect("no object");
    assert_eq!(gone.failure, Failure::NotFound);
    assert!(gone.is_permanent());
    let gone = store.head(bucket, &missing).await.expect_err("no object");
    assert_eq!(gone.failure, Failure::NotFound);
    let empty = store
        .list_page(bucket, &format!("{prefix}none/"), 10, None)
        .await
        .unwrap();
    assert!(empty.objects.is_empty() && empty.next.is_none());

    // DELETE: the object is gone (GET and HEAD say so), its neighbours stay, and deleting
    // what is not there is no error.
    let doomed = format!("{prefix}k4.csv");
    store.delete(bucket, &doomed).await.unwrap();
    let gone = store.head(bucket, &doomed).await.expect_err("deleted");
    assert_eq!(gone.failure, Failure::NotFound);
    store.delete(bucket, &doomed).await.unwrap();
    store.delete(bucket, &missing).await.unwrap();
    assert_eq!(store.head(bucket, &key).await.unwrap().size, 27);
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        super::run(&crate::port::memory::MemoryObjects::new(), "b", "c/", true).await;
    }
}
