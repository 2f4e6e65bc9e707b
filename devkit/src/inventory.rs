//! An S3 Inventory report of generated sample data, in AWS's documented layout (the
//! generator is `shared::ingest::inventory_writer`, which the tests share): a local stand-in
//! for the report S3 would deliver, so an inventory job (`docs/inventory.md`) runs locally.

use futures::{StreamExt, TryStreamExt, stream};
use thiserror::Error;

use crate::sample::SampleSpec;
use shared::ingest::inventory_writer::{
    InventorySpec, WrittenFormat, manifest_key, row, write_inventory,
};

#[derive(Debug, Error)]
#[error("uploading the inventory report's {key} to s3://{bucket} failed")]
pub struct InventoryUploadError {
    bucket: String,
    key: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// The report of `sample`'s files (in `bucket`, listed `per_file` to a data file), written
/// under `inventories/` of the same bucket; returns the manifest's key.
pub async fn upload_inventory(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    sample: &SampleSpec,
    per_file: usize,
    format: WrittenFormat,
) -> Result<String, InventoryUploadError> {
    let rows: Vec<_> = (0..sample.files)
        .map(|i| row(bucket, &sample.key(i), sample.body(i).len() as u64))
        .collect();
    let spec = InventorySpec {
        source_bucket: bucket.to_owned(),
        destination_bucket: bucket.to_owned(),
        prefix: Some("inventories".into()),
        config_id: "sample".into(),
        timestamp: "2026-12-01T00-00Z".into(),
        format,
        files: rows.chunks(per_file.max(1)).map(<[_]>::to_vec).collect(),
    };
    stream::iter(write_inventory(&spec).await)
        .map(|(key, bytes)| async move {
            s3.put_object()
                .bucket(bucket)
                .key(&key)
                .body(bytes.into())
                .send()
                .await
                .map(drop)
                .map_err(|e| InventoryUploadError {
                    bucket: bucket.to_owned(),
                    key: key.clone(),
                    source: e.into(),
                })
        })
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(manifest_key(&spec))
}
