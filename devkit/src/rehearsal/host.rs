//! A function as Lambda runs it: its real binary, started with exactly the environment it
//! was deployed with (plus the variables Lambda itself sets, the function role's credentials
//! and the local endpoints), fetching its invocations from a Lambda Runtime API served here
//! (`/2018-06-01/runtime/invocation/next`, `.../{id}/response`, `.../{id}/error`).
//!
//! Several processes of one function poll the same API, as sandboxes do; an invocation goes
//! to whichever asks next. An invocation that gets no answer within the deployed timeout
//! fails, and a function whose processes all exited (an error at init) fails every
//! invocation with the tail of its log.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

use crate::bridge::{BridgeError, Invoke};

use super::RehearsalError;
use super::manifest::{Credentials, DeployedFunction};

type Reply = Result<Bytes, String>;

struct Invocation {
    id: String,
    payload: Bytes,
    deadline_ms: u64,
    reply: oneshot::Sender<Reply>,
}

/// One deployed function, its processes and its Runtime API.
pub struct FunctionHost {
    pub name: String,
    pub arn: String,
    pub logical_id: String,
    timeout: Duration,
    queue: mpsc::UnboundedSender<Invocation>,
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    processes: Mutex<Vec<Child>>,
    /// Runtime API `next` calls: a process that made one has finished its init.
    pub polls: AtomicUsize,
    /// Invocations handed out.
    pub invocations: AtomicUsize,
    pub log: PathBuf,
    ids: AtomicUsize,
}

/// What a function process is started with besides its deployed environment.
pub struct Launch<'a> {
    pub function: &'a DeployedFunction,
    pub credentials: &'a Credentials,
    pub region: &'a str,
    pub endpoint: &'a str,
    pub processes: usize,
    pub log_dir: &'a Path,
}

impl FunctionHost {
    /// Serves the Runtime API on a free port and starts the processes.
    pub async fn start(launch: Launch<'_>) -> Result<Arc<Self>, RehearsalError> {
        let f = launch.function;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| RehearsalError::io("binding the runtime API", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| RehearsalError::io("binding the runtime API", e))?
            .port();
        let (queue, next) = mpsc::unbounded_channel();
        let host = Arc::new(Self {
            name: f.name.clone(),
            arn: f.arn.clone(),
            logical_id: f.logical_id.clone(),
            timeout: Duration::from_secs(f.timeout_seconds),
            queue,
            next: tokio::sync::Mutex::new(next),
            pending: Mutex::new(HashMap::new()),
            processes: Mutex::new(Vec::new()),
            polls: AtomicUsize::new(0),
            invocations: AtomicUsize::new(0),
            log: launch.log_dir.join(format!("{}.log", f.logical_id)),
            ids: AtomicUsize::new(0),
        });
        serve(listener, host.clone(), runtime_api);
        let env = environment(&launch, port);
        for _ in 0..launch.processes.max(1) {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&host.log)
                .map_err(|e| RehearsalError::io("opening a function log", e))?;
            let log_err = log
                .try_clone()
                .map_err(|e| RehearsalError::io("opening a function log", e))?;
            let mut command = Command::new(&f.bootstrap);
            command
                .env_clear()
                .envs(&env)
                .current_dir(f.bootstrap.parent().unwrap_or(Path::new(".")))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            let child = crate::servers::spawn_tied_to_this_process(command)
                .map_err(|e| RehearsalError::io("starting a function", e))?;
            host.lock_processes().push(child);
        }
        Ok(host)
    }

    /// Waits until every process finished its init (asked for an invocation), or fails
    /// with the log of a process that exited instead.
    pub async fn wait_ready(&self, processes: usize) -> Result<(), RehearsalError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.polls.load(Ordering::SeqCst) < processes {
            if self.exited() > 0 {
                return Err(self.init_failed());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(RehearsalError::Function {
                    function: self.logical_id.clone(),
                    reason: format!("no process finished its init within 20 s\n{}", self.tail()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// A synchronous invoke (`RequestResponse`): the function's response, or its error.
    pub async fn invoke_bytes(&self, payload: Bytes) -> Result<Bytes, RehearsalError> {
        let (reply, answer) = oneshot::channel();
        let id = format!(
            "{}-{}",
            self.logical_id,
            self.ids.fetch_add(1, Ordering::SeqCst)
        );
        let deadline_ms = epoch_ms() + self.timeout.as_millis() as u64;
        let invocation = Invocation {
            id,
            payload,
            deadline_ms,
            reply,
        };
        if self.queue.send(invocation).is_err() {
            return Err(self.failed("the runtime API is gone".into()));
        }
        let timeout = tokio::time::sleep(self.timeout);
        tokio::pin!(timeout);
        tokio::pin!(answer);
        loop {
            tokio::select! {
                reply = &mut answer => {
                    return match reply {
                        Ok(Ok(body)) => Ok(body),
                        Ok(Err(error)) => Err(self.failed(format!("function error: {error}"))),
                        Err(_) => Err(self.failed("the invocation was dropped".into())),
                    };
                }
                () = &mut timeout => {
                    return Err(self.failed(format!("timed out after {:?} (the deployed timeout)", self.timeout)));
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    if self.exited() == self.lock_processes().len() {
                        return Err(self.init_failed());
                    }
                }
            }
        }
    }

    pub async fn invoke_json(
        &self,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, RehearsalError> {
        let body = self.invoke_bytes(Bytes::from(payload.to_string())).await?;
        serde_json::from_slice(&body)
            .map_err(|e| self.failed(format!("its response is not JSON: {e}")))
    }

    /// The function's log (stdout and stderr of every process).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    fn exited(&self) -> usize {
        self.lock_processes()
            .iter_mut()
            .map(|child| child.try_wait())
            .filter(|status| matches!(status, Ok(Some(_))))
            .count()
    }

    fn init_failed(&self) -> RehearsalError {
        self.failed(format!("its process exited at init:\n{}", self.tail()))
    }

    fn failed(&self, reason: String) -> RehearsalError {
        RehearsalError::Function {
            function: self.logical_id.clone(),
            reason,
        }
    }

    fn lock_processes(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FunctionHost {
    fn drop(&mut self) {
        for child in self.lock_processes().iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bridge delivers SQS batches to a hosted function as the event source mapping does.
impl Invoke for FunctionHost {
    async fn invoke(&self, event: SqsEvent) -> Result<SqsBatchResponse, BridgeError> {
        let payload = serde_json::to_vec(&event).map_err(|e| BridgeError::Invoke(e.into()))?;
        let body = self
            .invoke_bytes(Bytes::from(payload))
            .await
            .map_err(|e| BridgeError::Invoke(e.into()))?;
        serde_json::from_slice(&body).map_err(|e| BridgeError::Invoke(e.into()))
    }
}

/// Exactly the deployed environment, plus what Lambda sets for every function, the role's
/// credentials and the endpoints of the local servers (the only local addition).
fn environment(launch: &Launch<'_>, port: u16) -> BTreeMap<String, String> {
    let f = launch.function;
    let mut env: BTreeMap<String, String> = f.environment.clone();
    let lambda = [
        ("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}")),
        ("AWS_LAMBDA_FUNCTION_NAME", f.name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", f.memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", f.name),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "rehearsal".into()),
        ("AWS_REGION", launch.region.into()),
        ("AWS_DEFAULT_REGION", launch.region.into()),
        ("_HANDLER", f.handler.clone().unwrap_or_default()),
        (
            "AWS_ACCESS_KEY_ID",
            launch.credentials.access_key_id.clone(),
        ),
        (
            "AWS_SECRET_ACCESS_KEY",
            launch.credentials.secret_access_key.clone(),
        ),
        (
            "AWS_SESSION_TOKEN",
            launch.credentials.session_token.clone().unwrap_or_default(),
        ),
        ("AWS_ENDPOINT_URL_S3", launch.endpoint.into()),
        ("AWS_ENDPOINT_URL_SQS", launch.endpoint.into()),
        ("AWS_ENDPOINT_URL_DYNAMODB", launch.endpoint.into()),
    ];
    env.extend(lambda.into_iter().map(|(k, v)| (k.to_owned(), v)));
    env
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

type Handler<S> = fn(Arc<S>, Request<Incoming>) -> HandlerFuture;
type HandlerFuture =
    std::pin::Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send + 'static>>;

/// Serves `handler` on `listener` until the process ends.
pub(super) fn serve<S: Send + Sync + 'static>(
    listener: tokio::net::TcpListener,
    state: Arc<S>,
    handler: Handler<S>,
) {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handler(state, request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

pub(super) fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

fn runtime_api(host: Arc<FunctionHost>, request: Request<Incoming>) -> HandlerFuture {
    Box::pin(async move {
        let path = request.uri().path().to_owned();
        let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
            return respond(StatusCode::NOT_FOUND, "unknown path");
        };
        if rest == "invocation/next" {
            return next_invocation(&host).await;
        }
        let body = request
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if rest == "init/error" {
            return respond(StatusCode::ACCEPTED, "");
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let (id, outcome) = match parts.as_slice() {
            ["invocation", id, "response"] => (*id, Ok(body)),
            ["invocation", id, "error"] => (*id, Err(String::from_utf8_lossy(&body).into_owned())),
            _ => return respond(StatusCode::NOT_FOUND, "unknown path"),
        };
        let waiting = host
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        match waiting {
            Some(reply) => {
                let _ = reply.send(outcome);
                respond(StatusCode::ACCEPTED, "")
            }
            None => respond(StatusCode::BAD_REQUEST, "unknown request id"),
        }
    })
}

async fn next_invocation(host: &FunctionHost) -> Response<Full<Bytes>> {
    host.polls.fetch_add(1, Ordering::SeqCst);
    let invocation = host.next.lock().await.recv().await;
    let Some(invocation) = invocation else {
        return respond(StatusCode::GONE, "shutting down");
    };
    host.invocations.fetch_add(1, Ordering::SeqCst);
    host.pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(invocation.id.clone(), invocation.reply);
    let mut response = respond(StatusCode::OK, invocation.payload);
    let headers = response.headers_mut();
    let pairs = [
        ("lambda-runtime-aws-request-id", invocation.id),
        (
            "lambda-runtime-deadline-ms",
            invocation.deadline_ms.to_string(),
        ),
        ("lambda-runtime-invoked-function-arn", host.arn.clone()),
        ("content-type", "application/json".into()),
    ];
    for (name, value) in pairs {
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
