//! An object store that tallies the bytes S3 hands over to each key's GETs, so a test can
//! hold a job's `bytes_read` against what the server actually sent.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use shared::port::objects::{Body, ObjectError, ObjectInfo, ObjectStore, Page, Read};

pub struct CountedGets {
    inner: Arc<dyn ObjectStore>,
    sent: Mutex<BTreeMap<String, u64>>,
}

impl CountedGets {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            sent: Mutex::default(),
        }
    }

    /// The bytes S3 sent for GETs of keys under `prefix`, over every GET so far.
    pub fn sent_under(&self, prefix: &str) -> u64 {
        let sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        (sent.iter().filter(|(key, _)| key.starts_with(prefix)))
            .map(|(_, bytes)| bytes)
            .sum()
    }
}

#[async_trait]
impl ObjectStore for CountedGets {
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
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        *sent.entry(key.to_owned()).or_default() += body.size;
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
