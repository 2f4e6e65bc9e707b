//! An object store that shows each GET's key and body size (the bytes S3 sends, read or
//! not) to a callback and passes everything else through: the coordinator's planning
//! reads count with it, and the local tests hold `bytes_read` against what S3 sent.

use std::sync::Arc;

use async_trait::async_trait;

use super::objects::{Body, ObjectError, ObjectInfo, ObjectStore, Page, Read};

/// What [`SeenGets`] calls with each GET's key and body size.
pub type OnGet = Box<dyn Fn(&str, u64) + Send + Sync>;

pub struct SeenGets {
    inner: Arc<dyn ObjectStore>,
    on_get: OnGet,
}

impl SeenGets {
    pub fn new(inner: Arc<dyn ObjectStore>, on_get: OnGet) -> Self {
        Self { inner, on_get }
    }
}

#[async_trait]
impl ObjectStore for SeenGets {
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
        (self.on_get)(key, body.size);
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
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::port::memory::MemoryObjects;

    #[tokio::test]
    async fn a_get_shows_what_it_asked_for_even_if_left_unread() {
        let store = MemoryObjects::new();
        store.insert("b", "k", vec![7u8; 10_000]);
        let sent = Arc::new(AtomicU64::new(5));
        let counter = sent.clone();
        let on_get: OnGet = Box::new(move |key, bytes| {
            assert_eq!(key, "k");
            counter.fetch_add(bytes, Ordering::Relaxed);
        });
        let seen = SeenGets::new(Arc::new(store), on_get);
        let window = Read {
            from: 0,
            to: Some(4_096),
            if_match: None,
        };
        drop(seen.get("b", "k", window).await.unwrap());
        assert_eq!(sent.load(Ordering::Relaxed), 5 + 4_096);
        drop(seen.get("b", "k", Read::default()).await.unwrap());
        assert_eq!(sent.load(Ordering::Relaxed), 5 + 4_096 + 10_000);
    }
}
