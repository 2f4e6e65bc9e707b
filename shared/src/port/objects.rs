//! The object store port: list a prefix a page at a time, HEAD, GET (whole or a byte range,
//! optionally pinned to an ETag), PUT. Failures carry a semantic kind, decided once by the
//! adapter, so the use cases never read service error codes.

use async_trait::async_trait;
use thiserror::Error;

use crate::BoxError;
use crate::ingest::compression::BoxedRead;

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
    pub size: u64,
}

/// One page of a listing and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub objects: Vec<ListedObject>,
    pub next: Option<String>,
}

/// What a HEAD tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: Option<String>,
}

/// Which bytes a GET reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Read<'a> {
    /// From this offset (0 and no `to`: the whole object, no Range header).
    pub from: u64,
    /// Up to this offset, exclusive (`None`: to the end). Must be above `from`.
    pub to: Option<u64>,
    /// Only if the object still has this ETag (else [`Failure::Changed`]).
    pub if_match: Option<&'a str>,
}

/// A GET's body and how many bytes it holds.
pub struct Body {
    pub reader: BoxedRead,
    pub size: u64,
    /// The version read, so a later part of the same work can pin its reads to it.
    pub etag: Option<String>,
}

/// Why an object operation failed, as far as the use cases care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No such key or bucket.
    NotFound,
    /// The caller may not read or write it.
    Forbidden,
    /// Archived (e.g. Glacier): not readable without a restore.
    Archived,
    /// The object no longer has the ETag the job was planned with.
    Changed,
    /// Anything else (network, throttling past the SDK's retries, a server error).
    Other,
}

#[derive(Debug, Error)]
#[error("{operation} s3://{bucket}/{key} failed")]
pub struct ObjectError {
    pub operation: &'static str,
    pub bucket: String,
    pub key: String,
    pub failure: Failure,
    #[source]
    pub source: BoxError,
}

impl ObjectError {
    /// Failures no retry can fix: the object is a reject, not a reason to redeliver.
    pub fn is_permanent(&self) -> bool {
        self.failure != Failure::Other
    }
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// One page of keys under `prefix`, in key order, resuming at `cursor`.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: i32,
        cursor: Option<String>,
    ) -> Result<Page, ObjectError>;

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError>;

    async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError>;

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError>;

    /// Removes an object; one that is not there is no error (S3's DeleteObject).
    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError>;
}
