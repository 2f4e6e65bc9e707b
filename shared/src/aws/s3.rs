//! The object store on S3.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;

use super::errors::object_failure;
use crate::port::objects::{Body, ListedObject, ObjectError, ObjectInfo, ObjectStore, Page, Read};

#[derive(Debug, Clone)]
pub struct S3Objects {
    s3: Client,
}

impl S3Objects {
    pub fn new(s3: Client) -> Self {
        Self { s3 }
    }
}

fn failed<E>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    error: SdkError<E, Response>,
) -> ObjectError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    ObjectError {
        operation,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        failure: object_failure(&error),
        source: Box::new(error),
    }
}

#[async_trait]
impl ObjectStore for S3Objects {
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        page_size: i32,
        cursor: Option<String>,
    ) -> Result<Page, ObjectError> {
        let page = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(page_size)
            .set_continuation_token(cursor)
            .send()
            .await
            .map_err(|e| failed("ListObjectsV2", bucket, prefix, e))?;
        let objects = page
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|object| {
                let size = object.size.unwrap_or(0).max(0) as u64;
                object.key.map(|key| ListedObject { key, size })
            })
            .collect();
        Ok(Page {
            objects,
            next: page.next_continuation_token,
        })
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<ObjectInfo, ObjectError> {
        let head = self
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failed("HEAD", bucket, key, e))?;
        Ok(ObjectInfo {
            size: head.content_length.unwrap_or(0).max(0) as u64,
            etag: head.e_tag,
        })
    }

    async fn get(&self, bucket: &str, key: &str, read: Read<'_>) -> Result<Body, ObjectError> {
        let range = match read.to {
            Some(to) => Some(format!("bytes={}-{}", read.from, to.saturating_sub(1))),
            None => {
                (read.from > 0 || read.if_match.is_some()).then(|| format!("bytes={}-", read.from))
            }
        };
        let response = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_if_match(read.if_match.map(str::to_owned))
            .set_range(range)
            .send()
            .await
            .map_err(|e| failed("GET", bucket, key, e))?;
        Ok(Body {
            size: response.content_length.unwrap_or(0).max(0) as u64,
            etag: response.e_tag.clone(),
            reader: Box::pin(response.body.into_async_read()),
        })
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), ObjectError> {
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(|e| failed("PUT", bucket, key, e))?;
        Ok(())
    }

    async fn delete(&self, bucket: &str, key: &str) -> Result<(), ObjectError> {
        self.s3
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| failed("DELETE", bucket, key, e))?;
        Ok(())
    }
}
