//! Buckets in a map. ETags change with every put, so If-Match behaves as on S3; listing pages
//! resume after the last key of the previous page.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::port::objects::{
    Body, Failure, ListedObject, ObjectError, ObjectInfo, ObjectStore, Page, Read,
};

#[derive(Debug, Default)]
pub struct MemoryObjects {
    objects: Mutex<BTreeMap<(String, String), Stored>>,
}

#[derive(Debug, Clone)]
struct Stored {
    bytes: Arc<Vec<u8>>,
    etag: String,
}

impl MemoryObjects {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<(String, String), Stored>> {
        self.objects
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores an object (test setup); returns its ETag.
    pub fn insert(&self, bucket: &str, key: &str, bytes: impl Into<Vec<u8>>) -> String {
        let mut objects = self.lock();
        let etag = format!("\"v{}\"", objects.len() + 1);
        let stored = Stored {
            bytes: Arc::new(bytes.into()),
            etag: etag.clone(),
        };
        objects.insert((bucket.to_owned(), key.to_owned()), stored);
        etag
    }

    /// The keys of `bucket` that start with `prefix`, in order (test assertions).
    pub fn keys_under(&self, bucket: &str, prefix: &str) -> Vec<String> {
        (self.lock().keys())
            .filter(|(b, key)| b == bucket && key.starts_with(prefix))
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// An object's bytes, if stored.
    pub fn bytes(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let objects = self.lock();
        let stored = objects.get(&(bucket.to_owned(), key.to_owned()))?;
        Some(stored.bytes.as_ref().clone())
    }

    fn find(
        &self,
        operation: &'static str,
        bucket: &str,
        key: &str,
    ) -> Result<Stored, ObjectError> {
        self.lock()
            .get(&(bucket.to_owned(), key.to_owned()))
            .cloned()
            .ok_or_else(|| ObjectError {
                operation,
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                failure: Failure::NotFound,
                source: "NoSuchKey: no such key in memory".into(),
            })
    }
}

#[async_trait]
impl ObjectStore for MemoryObjects {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: i32,
        cursor: Option<String>,
    ) -> Result<Page, ObjectError> {
        let objects = self.lock();
        let mut matching = objects
            .iter()
            .filter(|((b, key), _)| b == bucket && key.starts_with(prefix))
            .filter(|((_, key), _)| cursor.as_ref().is_none_or(|after| key > after))
            .map(|((_, key), stored)| ListedObject {
                key: key.clone(),
                size: stored.bytes.len() as u64,
            });
        let page: Vec<ListedObject> = matching.by_ref().take(page_size.max(1) as usize).collect();
        let more = matching.next().is_some();
        let next = more.then(|| page.last().map(|o| o.key.clone())).flatten();
        Ok(Page {
            objects: page,
            next,
        })
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        let stored = self.find("HEAD", bucket, key)?;
        Ok(ObjectInfo {
            size: stored.bytes.len() as u64,
            etag: Some(stored.etag),
        })
    }

    async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError> {
        let stored = self.find("GET", bucket, key)?;
        if read.if_match.is_some_and(|etag| etag != stored.etag) {
            return Err(ObjectError {
                operation: "GET",
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                failure: Failure::Changed,
                source: "PreconditionFailed: the ETag does not match".into(),
            });
        }
        let len = stored.bytes.len();
        let to = read
            .to
            .map_or(len, |to| usize::try_from(to).unwrap_or(usize::MAX).min(len));
        let from = usize::try_from(read.from).unwrap_or(usize::MAX).min(to);
        let rest = stored.bytes[from..to].to_vec();
        Ok(Body {
            size: rest.len() as u64,
            etag: Some(stored.etag.clone()),
            reader: Box::pin(std::io::Cursor::new(rest)),
        })
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        _content_type: &str,
    ) -> Result<(), ObjectError> {
        self.insert(bucket, key, body);
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.lock().remove(&(bucket.to_owned(), key.to_owned()));
        Ok(())
    }
}
