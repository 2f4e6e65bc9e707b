//! ListObjectsV2, one page at a time. The caller holds one page, never the whole listing, and
//! the continuation token is explicit so a long listing can be checkpointed and resumed.

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("ListObjectsV2 on s3://{bucket}/{prefix} failed")]
pub struct ListError {
    pub bucket: String,
    pub prefix: String,
    #[source]
    pub source: Box<SdkError<ListObjectsV2Error>>,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub key: String,
}

/// Walks a prefix page by page.
pub struct PrefixLister {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    page_size: i32,
    next_token: Option<String>,
    done: bool,
}

impl PrefixLister {
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, prefix: &str, page_size: i32) -> Self {
        Self {
            s3,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            page_size,
            next_token: None,
            done: false,
        }
    }

    /// A listing that resumes after `cursor` (a continuation token from [`Self::cursor`]).
    pub fn resume(self, cursor: String) -> Self {
        Self {
            next_token: Some(cursor),
            ..self
        }
    }

    /// Where the listing would resume: `None` before the first page and at the end.
    pub fn cursor(&self) -> Option<&str> {
        self.next_token.as_deref()
    }

    /// The next page, or `None` once the listing is exhausted.
    pub async fn next_page(&mut self) -> Result<Option<Vec<ListedObject>>, ListError> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .max_keys(self.page_size)
            .set_continuation_token(self.next_token.take())
            .send()
            .await
            .map_err(|source| ListError {
                bucket: self.bucket.clone(),
                prefix: self.prefix.clone(),
                source: Box::new(source),
            })?;
        self.next_token = page.next_continuation_token;
        self.done = self.next_token.is_none();
        let objects = page
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|object| object.key.map(|key| ListedObject { key }))
            .collect();
        Ok(Some(objects))
    }
}
