//! The bench's "ceiling" row: the local S3 server's GET rate from the leanest client loop at
//! the worker's concurrency. Each GET is signed with `aws-sigv4` (the server checks
//! signatures, so skipping them would measure a different server) and sent over a bare
//! hyper HTTP/1.1 client with pooled connections; bodies are read and dropped. No SDK
//! orchestration, retries, XML or decoding: what is left is the floor a client can reach.

use std::time::SystemTime;

use anyhow::{Context, Result};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures::{StreamExt, TryStreamExt, stream};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// GETs in flight: the worker's FETCH_CONCURRENCY.
const IN_FLIGHT: usize = 256;

/// GETs every key once; returns (objects, bytes).
pub async fn lean_gets(bucket: &str, keys: &[String]) -> Result<(u64, u64)> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .context("the ceiling loop needs AWS_ENDPOINT_URL_S3 (a local server)")?;
    let identity: Identity = Credentials::new(
        std::env::var("AWS_ACCESS_KEY_ID").context("AWS_ACCESS_KEY_ID")?,
        std::env::var("AWS_SECRET_ACCESS_KEY").context("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "bench",
    )
    .into();
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let get = |key: &String| {
        let uri = format!("{}/{bucket}/{key}", endpoint.trim_end_matches('/'));
        let (client, identity, region, settings) = (&client, &identity, &region, &settings);
        async move {
            let params = v4::SigningParams::builder()
                .identity(identity)
                .region(region)
                .name("s3")
                .time(SystemTime::now())
                .settings(settings.clone())
                .build()?
                .into();
            let signable = SignableRequest::new(
                "GET",
                &uri,
                std::iter::empty(),
                SignableBody::UnsignedPayload,
            )?;
            let (instructions, _) = sign(signable, &params)?.into_parts();
            let mut request = http::Request::get(&uri).body(Empty::<Bytes>::new())?;
            instructions.apply_to_request_http1x(&mut request);
            let response = client.request(request).await?;
            anyhow::ensure!(
                response.status().is_success(),
                "GET {uri}: {}",
                response.status()
            );
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<u64, anyhow::Error>(body.len() as u64)
        }
    };
    let bytes = stream::iter(keys)
        .map(get)
        .buffer_unordered(IN_FLIGHT)
        .try_fold(0u64, |total, n| async move { Ok(total + n) })
        .await?;
    Ok((keys.len() as u64, bytes))
}
