//! What S3 sends the coordinator while it plans a job: a split object's header windows, a
//! Parquet footer, an export's or inventory's manifests. S3 sends a GET's whole body (the
//! range asked for) whether or not it is read to the end, so each GET counts its body's
//! size, not the bytes taken from it. The total goes into the job's `bytes_read`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::port::objects::{Body, ObjectError, ObjectInfo, ObjectStore, Page, Read};

/// An object store that adds the size of every GET body it returns to `sent`.
pub(super) struct PlanningReads {
    inner: Arc<dyn ObjectStore>,
    sent: Arc<AtomicU64>,
}

impl PlanningReads {
    pub(super) fn new(inner: Arc<dyn ObjectStore>, sent: Arc<AtomicU64>) -> Self {
        Self { inner, sent }
    }
}

#[async_trait]
impl ObjectStore for PlanningReads {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: i32,
        cursor: Option<String>,
    ) -> Result<Page, ObjectError> {
        self.inner
            .list_page(bucket, prefix, page_size, cursor)
            .await
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        self.inner.head(bucket, key).await
    }

    async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError> {
        let body = self.inner.get(bucket, key, read).await?;
        self.sent.fetch_add(body.size, Ordering::Relaxed);
        Ok(body)
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        self.inner.put(bucket, key, body, content_type).await
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.inner.delete(bucket, key).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::memory::MemoryObjects;

    #[tokio::test]
    async fn a_get_counts_what_it_asked_for_even_if_left_unread() {
        let store = MemoryObjects::new();
        store.insert("b", "k", vec![7u8; 10_000]);
        let sent = Arc::new(AtomicU64::new(5));
        let reads = PlanningReads::new(Arc::new(store), sent.clone());
        let window = Read {
            from: 0,
            to: Some(4_096),
            if_match: None,
        };
        drop(reads.get("b", "k", window).await.unwrap());
        assert_eq!(sent.load(Ordering::Relaxed), 5 + 4_096);
        drop(reads.get("b", "k", Read::default()).await.unwrap());
        assert_eq!(sent.load(Ordering::Relaxed), 5 + 4_096 + 10_000);
    }
}
