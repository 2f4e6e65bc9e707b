//! The functions as `cargo lambda watch` serves them: their real binaries behind the Lambda
//! Invoke API on loopback (`POST /2015-03-31/functions/{name}/invocations`). The SQS bridge
//! delivers to a served worker through [`LambdaInvokeApi`], as it does to the in-process one.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::bridge::{BridgeError, Invoke};

/// One function behind a Lambda Invoke API endpoint such as `http://127.0.0.1:9000`.
pub struct LambdaInvokeApi {
    url: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl LambdaInvokeApi {
    pub fn new(endpoint: &str, function: &str) -> Self {
        Self {
            url: format!(
                "{}/2015-03-31/functions/{function}/invocations",
                endpoint.trim_end_matches('/')
            ),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// A synchronous invoke: the function's JSON response, or its error.
    pub async fn invoke_json(&self, payload: Vec<u8>) -> Result<serde_json::Value, BridgeError> {
        let failed = |e: Box<dyn std::error::Error + Send + Sync>| BridgeError::Invoke(e);
        let request = hyper::Request::post(&self.url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| failed(e.into()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| failed(e.into()))?;
        let status = response.status();
        // A function error comes back flagged in this header, with the error as the body.
        let function_error = response.headers().contains_key("x-amz-function-error");
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(e.into()))?
            .to_bytes();
        if !status.is_success() || function_error {
            return Err(failed(
                format!(
                    "{} answered {status}: {}",
                    self.url,
                    String::from_utf8_lossy(&body)
                )
                .into(),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| failed(e.into()))
    }
}

impl Invoke for LambdaInvokeApi {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        let payload = serde_json::to_vec(&event).map_err(|e| BridgeError::Invoke(e.into()))?;
        let response = self.invoke_json(payload).await?;
        serde_json::from_value(response).map_err(|e| BridgeError::Invoke(e.into()))
    }
}
