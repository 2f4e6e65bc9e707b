//! Bytes taken from GET bodies, counted where they leave the object store: what a unit of
//! work read from S3 whether it loaded, stopped or was rejected. A unit's own arithmetic
//! (its range, its decoder's position) says how much of its input it consumed; a rejected
//! object or a compressed stream stopped part way has no such figure, and used to count 0.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use crate::ingest::compression::BoxedRead;
use crate::port::objects::{Body, ObjectError, ObjectInfo, ObjectStore, Page, Read};

/// An object store whose GET bodies count the bytes consumed from them into `received`.
pub(super) struct Received<'a> {
    inner: &'a dyn ObjectStore,
    received: Arc<AtomicU64>,
}

impl<'a> Received<'a> {
    pub(super) fn new(inner: &'a dyn ObjectStore) -> Self {
        Self {
            inner,
            received: Arc::default(),
        }
    }

    /// Bytes consumed from every body this store has returned so far.
    pub(super) fn bytes(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl ObjectStore for Received<'_> {
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
        let reader: BoxedRead = Box::pin(Counting {
            inner: body.reader,
            received: self.received.clone(),
        });
        Ok(Body { reader, ..body })
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

/// A body that adds what its reader consumes to a shared count.
struct Counting {
    inner: BoxedRead,
    received: Arc<AtomicU64>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        let read = buf.filled().len() - before;
        self.received.fetch_add(read as u64, Ordering::Relaxed);
        polled
    }
}

impl AsyncBufRead for Counting {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<&[u8]>> {
        self.get_mut().inner.as_mut().poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        self.received.fetch_add(amt as u64, Ordering::Relaxed);
        self.inner.as_mut().consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::memory::MemoryObjects;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn bytes_taken_from_a_body_are_counted_however_they_are_read() {
        let store = MemoryObjects::new();
        store.insert("b", "k", vec![7u8; 10_000]);
        let received = Received::new(&store);
        let mut whole = received.get("b", "k", Read::default()).await.unwrap();
        let mut first = [0u8; 100];
        whole.reader.read_exact(&mut first).await.unwrap();
        assert_eq!(received.bytes(), 100, "only what was taken");
        let range = Read {
            from: 9_000,
            to: Some(10_000),
            if_match: None,
        };
        let mut rest = Vec::new();
        let mut ranged = received.get("b", "k", range).await.unwrap();
        ranged.reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(received.bytes(), 1_100);
    }
}
