//! SDK clients, built once per cold start and shared by every invocation.
//!
//! Endpoints come from the SDK's standard variables (`AWS_ENDPOINT_URL_S3`, `_SQS`,
//! `_DYNAMODB`, falling back to `AWS_ENDPOINT_URL`). The product has no emulator-specific
//! branch: the one local concession is path-style S3 addressing whenever an S3 endpoint is
//! overridden, since local servers have no per-bucket DNS names.

use std::sync::Arc;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::interceptors::FinalizerInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};

use crate::limiter::ThrottleCounter;

/// Attempts per SDK call, including the first. Adaptive mode adds client-side rate limiting
/// when the service throttles, so retries do not become a storm.
const MAX_ATTEMPTS: u32 = 5;

/// Per-service endpoint overrides; `None` means the real AWS endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub s3: Option<String>,
    pub sqs: Option<String>,
    pub dynamodb: Option<String>,
}

impl Endpoints {
    /// Reads the standard variables, service-specific first.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let global = var("AWS_ENDPOINT_URL");
        let pick = |name: &str| var(name).or_else(|| global.clone());
        Self {
            s3: pick("AWS_ENDPOINT_URL_S3"),
            sqs: pick("AWS_ENDPOINT_URL_SQS"),
            dynamodb: pick("AWS_ENDPOINT_URL_DYNAMODB"),
        }
    }
}

/// The three clients the pipeline uses. Cheap to clone (they are `Arc`s inside).
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// S3 throttling replies seen, retried or not: the worker's GET limit reads it.
    pub s3_throttles: Arc<ThrottleCounter>,
}

/// Counts HTTP 503/429 replies on every attempt, including those the SDK retries away.
#[derive(Debug)]
struct ThrottleObserver(Arc<ThrottleCounter>);

impl Intercept for ThrottleObserver {
    fn name(&self) -> &'static str {
        "ThrottleObserver"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if context
            .response()
            .is_some_and(|r| matches!(r.status().as_u16(), 503 | 429))
        {
            self.0.record();
        }
        Ok(())
    }
}

impl Clients {
    /// Credentials and region from the environment, as in Lambda.
    pub async fn from_env() -> Self {
        let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
        Self::new(&sdk, &Endpoints::from_env())
    }

    pub fn new(sdk: &SdkConfig, endpoints: &Endpoints) -> Self {
        let s3_throttles = Arc::new(ThrottleCounter::default());
        let retry = RetryConfig::adaptive().with_max_attempts(MAX_ATTEMPTS);
        let mut s3 = aws_sdk_s3::config::Builder::from(sdk)
            .retry_config(retry.clone())
            .interceptor(ThrottleObserver(s3_throttles.clone()));
        if let Some(url) = &endpoints.s3 {
            s3 = s3.endpoint_url(url).force_path_style(true);
        }
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        if let Some(url) = &endpoints.sqs {
            sqs = sqs.endpoint_url(url);
        }
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk).retry_config(retry);
        if let Some(url) = &endpoints.dynamodb {
            dynamodb = dynamodb.endpoint_url(url);
        }
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            s3_throttles,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_variable_overrides_the_global_one() {
        let endpoints = Endpoints::from_lookup(|name| match name {
            "AWS_ENDPOINT_URL" => Some("http://global".into()),
            "AWS_ENDPOINT_URL_S3" => Some("http://s3".into()),
            _ => None,
        });
        assert_eq!(endpoints.s3.as_deref(), Some("http://s3"));
        assert_eq!(endpoints.sqs.as_deref(), Some("http://global"));
        assert_eq!(endpoints.dynamodb.as_deref(), Some("http://global"));
    }

    #[test]
    fn no_variables_means_real_aws() {
        assert_eq!(Endpoints::from_lookup(|_| None), Endpoints::default());
    }
}
