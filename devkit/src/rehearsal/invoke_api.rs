//! The Lambda Invoke API (`POST /2015-03-31/functions/{name or ARN}/invocations`) in front of
//! the hosted functions. moto's S3 sends the bucket's notifications here (as asynchronous
//! `Event` invokes, as S3 does); each is recorded with its outcome, so the rehearsal can
//! say which uploads invoked what.

use std::sync::{Arc, Mutex, RwLock};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::RehearsalError;
use super::host::{FunctionHost, respond, serve};

/// One asynchronous invocation and how it ended.
#[derive(Debug, Clone)]
pub struct AsyncInvocation {
    pub function: String,
    pub payload: serde_json::Value,
    pub outcome: Result<serde_json::Value, String>,
}

#[derive(Default)]
pub struct InvokeApi {
    functions: RwLock<Vec<Arc<FunctionHost>>>,
    started: Mutex<usize>,
    finished: Mutex<Vec<AsyncInvocation>>,
}

impl InvokeApi {
    /// Serves on a free loopback port; returns the API and its URL.
    pub async fn start() -> Result<(Arc<Self>, String), RehearsalError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| RehearsalError::io("binding the invoke API", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| RehearsalError::io("binding the invoke API", e))?
            .port();
        let api = Arc::new(Self::default());
        serve(listener, api.clone(), |api, request| {
            Box::pin(async move { api.handle(request).await })
        });
        Ok((api, format!("http://127.0.0.1:{port}")))
    }

    pub fn register(&self, host: Arc<FunctionHost>) {
        self.functions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(host);
    }

    /// Asynchronous invocations received so far.
    pub fn started(&self) -> usize {
        *self.started.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asynchronous invocations that have ended, in the order they ended.
    pub fn finished(&self) -> Vec<AsyncInvocation> {
        self.finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn function(&self, name_or_arn: &str) -> Option<Arc<FunctionHost>> {
        self.functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|f| f.name == name_or_arn || f.arn == name_or_arn)
            .cloned()
    }

    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
        let path = request.uri().path().to_owned();
        let name = path
            .strip_prefix("/2015-03-31/functions/")
            .and_then(|rest| rest.strip_suffix("/invocations"))
            .map(percent_decode);
        let Some(host) = name.as_deref().and_then(|name| self.function(name)) else {
            return respond(StatusCode::NOT_FOUND, "ResourceNotFoundException");
        };
        let asynchronous = request
            .headers()
            .get("x-amz-invocation-type")
            .is_some_and(|v| v == "Event");
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if !asynchronous {
            return match host.invoke_bytes(body).await {
                Ok(response) => respond(StatusCode::OK, response),
                Err(error) => {
                    let mut response = respond(StatusCode::OK, error.to_string());
                    response.headers_mut().insert(
                        "x-amz-function-error",
                        hyper::header::HeaderValue::from_static("Unhandled"),
                    );
                    response
                }
            };
        }
        *self.started.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        let api = self.clone();
        tokio::spawn(async move {
            let payload = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            let outcome = host
                .invoke_json(&payload)
                .await
                .map_err(|e| shared::report(&e));
            api.finished
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(AsyncInvocation {
                    function: host.logical_id.clone(),
                    payload,
                    outcome,
                });
        });
        respond(StatusCode::ACCEPTED, "")
    }
}

/// ARNs arrive with `:` percent-encoded.
fn percent_decode(text: &str) -> String {
    text.replace("%3A", ":").replace("%3a", ":")
}
