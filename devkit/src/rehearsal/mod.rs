//! `sam deploy` rehearsed offline: `template.yaml` translated and deployed to moto's
//! CloudFormation with IAM enforced, the deployed configuration read back and checked, and
//! the real function binaries run under their own roles with exactly their deployed
//! environment, fed as the deployed event sources say. docs/deploy.md says what it proves.
//!
//! Two stacks of the one template are deployed: `TriggerMode=marker` (the default, with the
//! stack's own records table) and `TriggerMode=object` (loading into an existing table named
//! by `ExistingRecordsTable`), each with its own bucket, tables, queues, roles and functions.
//!
//! - [`manifest`]: the deployed stacks as `tools/rehearsal/deploy.py` read them back.
//! - [`checks`]: the configuration against the README's IAM table and the design's rules.
//! - [`host`]: a function's processes behind a Lambda Runtime API.
//! - [`invoke_api`]: the Lambda Invoke API, where moto's S3 sends the bucket's notifications.
//! - [`scenario`]: the jobs: marker upload, manual invoke, a batch dead-lettered without
//!   running, scheduled stuck-job check; then
//!   per-object jobs on the object-mode stack.

pub mod checks;
pub mod host;
pub mod invoke_api;
pub mod manifest;
pub mod scenario;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::bridge::SqsBridge;
use crate::servers::{LocalAws, ServerError, tools_dir};
use host::{FunctionHost, Launch};
use invoke_api::InvokeApi;
use manifest::{Deployment, Manifest};

#[derive(Debug, Error)]
pub enum RehearsalError {
    #[error("{context}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the rehearsal's moto server failed")]
    Server(#[from] ServerError),
    #[error("deploying the template failed:\n{0}")]
    Deploy(String),
    #[error("the deployed configuration differs from what the design and the README say:\n- {}", .0.join("\n- "))]
    Configuration(Vec<String>),
    #[error("{function}: {reason}")]
    Function { function: String, reason: String },
    #[error("IAM denied {function} the action {action}: {line}")]
    Denied {
        function: String,
        action: String,
        line: String,
    },
    #[error("{0}")]
    Job(String),
    #[error("{failure}\nthe functions' logs end with:\n{logs}")]
    WithLogs {
        failure: Box<RehearsalError>,
        logs: String,
    },
}

impl RehearsalError {
    fn io(context: &'static str, source: std::io::Error) -> Self {
        Self::Io { context, source }
    }
}

/// What to rehearse.
#[derive(Debug, Clone)]
pub struct Options {
    pub template: PathBuf,
    /// Holds the built `coordinator` and `worker` binaries.
    pub code_dir: PathBuf,
    pub readme: PathBuf,
    pub prefix_job_event: PathBuf,
    /// `KEY=VALUE` parameter overrides.
    pub parameters: Vec<String>,
    pub files: usize,
    pub rows_per_file: usize,
    /// How long a job may take before the rehearsal fails.
    pub job_timeout: Duration,
    /// Also deploy the template with `TriggerMode=object` and run per-object jobs on it.
    pub object_mode: bool,
}

impl Options {
    /// The repository's template, README and events, and binaries from `code_dir`.
    pub fn for_repository(code_dir: PathBuf) -> Self {
        let root = repository_root();
        Self {
            template: root.join("template.yaml"),
            code_dir,
            readme: root.join("README.md"),
            prefix_job_event: root.join("events/prefix-job.json"),
            parameters: Vec::new(),
            files: 4,
            rows_per_file: 25,
            job_timeout: Duration::from_secs(60),
            object_mode: true,
        }
    }
}

pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// What was checked and how it went, one line each.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
}

impl Report {
    fn say(&mut self, line: impl Into<String>) {
        let line = line.into();
        tracing::info!("{line}");
        self.lines.push(line);
    }
}

/// Deploys, checks and runs everything; the first failure ends it.
pub async fn run(options: &Options) -> Result<Report, RehearsalError> {
    let mut report = Report::default();
    let (invoke_api, invoke_url) = InvokeApi::start().await?;
    let launcher = repository_root().join("tools/rehearsal/moto_iam.py");
    let local = LocalAws::start_rehearsal_moto(&launcher, &invoke_url)?;
    let endpoint = local.endpoints.s3.clone().unwrap_or_default();
    let work = local.run_dir().join("rehearsal");
    let stacks = deploy(options, &endpoint, &work).await?.stacks;
    let [marker, rest @ ..] = stacks.as_slice() else {
        return Err(RehearsalError::Deploy("deploy.py deployed no stack".into()));
    };
    let object = rest.first();
    if options.object_mode && object.is_none() {
        return Err(RehearsalError::Deploy(
            "deploy.py deployed no object-mode stack".into(),
        ));
    }
    describe(marker, &mut report);
    let readme = std::fs::read_to_string(&options.readme)
        .map_err(|e| RehearsalError::io("reading README.md", e))?;
    let findings = checks::configuration(marker, &readme);
    if !findings.is_empty() {
        return Err(RehearsalError::Configuration(findings));
    }
    report.say("README IAM table, role trust, visibility timeouts, response types, dead-letter counts and the schedule's target and input match the deployed stack");
    if let Some(object) = object {
        let mut findings = checks::configuration(object, &readme);
        findings.extend(checks::object_mode_notification(object));
        if !findings.is_empty() {
            return Err(RehearsalError::Configuration(
                findings
                    .into_iter()
                    .map(|f| format!("{} (TriggerMode=object): {f}", object.stack))
                    .collect(),
            ));
        }
        report.say(format!(
            "{} (TriggerMode=object): {} resources, the same checks hold; bucket notification: one ObjectCreated configuration per loadable suffix {:?} to the coordinator, none for other keys; records table: {}",
            object.stack,
            object.resource_count,
            checks::LOADABLE_SUFFIXES,
            match object.parameter("ExistingRecordsTable").filter(|t| !t.is_empty()) {
                Some(table) => format!("the existing {table} (ExistingRecordsTable; none created)"),
                None => "the stack's own".into(),
            }
            + &match object.parameter("AdditionalRecordsTableArns").filter(|t| !t.is_empty()) {
                Some(arns) => format!(", and jobs may name {arns} (AdditionalRecordsTableArns); the grants name exactly these tables"),
                None => ", the grants name exactly it".into(),
            }
        ));
    }

    let mut hosts = Vec::new();
    for manifest in &stacks {
        let stack_work = work.join(&manifest.stack);
        std::fs::create_dir_all(&stack_work)
            .map_err(|e| RehearsalError::io("making a stack's log folder", e))?;
        hosts.extend(start_functions(manifest, &stack_work, &invoke_api).await?);
    }
    let bridges: Vec<BridgeParts<'_>> = stacks
        .iter()
        .flat_map(|manifest| bridges(manifest, &hosts))
        .collect();
    // The marker stack's worker mapping can be paused (disabled), so the scenario can let a
    // batch die in the queue without running, as a throttled or failed-at-init receive does.
    let (pause_worker, worker_paused) = tokio::sync::watch::channel(false);
    let marker_worker = marker.function_by_binary("worker").map(|f| f.arn.clone());
    let bridges: Vec<SqsBridge<'_, FunctionHost>> = bridges
        .iter()
        .map(|(sqs, queue, host, m)| {
            let mut bridge = SqsBridge::new(sqs, &queue.url, &queue.arn, host.as_ref());
            bridge.batch_size = m.batch_size.unwrap_or(10) as usize;
            bridge.batching_window = Duration::from_secs(m.maximum_batching_window_seconds);
            bridge.report_batch_item_failures = m
                .function_response_types
                .iter()
                .any(|t| t == "ReportBatchItemFailures");
            bridge.pollers = m
                .maximum_concurrency
                .map_or(usize::MAX, |c| c as usize)
                .min(host_processes(m.maximum_concurrency));
            if marker_worker.as_ref() == Some(&host.arn) {
                bridge.paused = Some(worker_paused.clone());
            }
            bridge
        })
        .collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let polling = futures::future::join_all(bridges.iter().map(|bridge| {
        let mut stopped = stopped.clone();
        bridge.run_until(async move {
            let _ = stopped.wait_for(|&s| s).await;
        })
    }));
    let scenario = async {
        let moto_log = local.run_dir().join("moto.log");
        let result = scenario::run(
            options,
            &moto_log,
            (marker, object),
            &hosts,
            &invoke_api,
            &pause_worker,
            &mut report,
        )
        .await;
        stop.send_replace(true);
        result
    };
    let (result, _) = tokio::join!(scenario, polling);
    match result {
        Ok(()) => Ok(report),
        Err(failure @ RehearsalError::Denied { .. }) => Err(failure),
        Err(failure) => Err(RehearsalError::WithLogs {
            failure: Box::new(failure),
            logs: hosts
                .iter()
                .map(|h| format!("== {}\n{}", h.name, scenario::tail(&h.log_text(), 8)))
                .collect::<Vec<_>>()
                .join("\n"),
        }),
    }
}

/// What was deployed, one report line per setting the run depends on.
fn describe(manifest: &Manifest, report: &mut Report) {
    report.say(format!(
        "deployed {} resources through CloudFormation (CREATE_COMPLETE); IAM enforced from here on",
        manifest.resource_count
    ));
    for f in manifest.functions.values() {
        report.say(format!(
            "{}: timeout {} s, memory {} MB, {} environment variables, role {}",
            f.logical_id,
            f.timeout_seconds,
            f.memory_mb,
            f.environment.len(),
            f.role_arn.rsplit('/').next().unwrap_or_default()
        ));
        for m in &f.event_source_mappings {
            report.say(format!(
                "{} mapping: batch size {:?}, window {} s, maximum concurrency {:?}, response types {:?}",
                f.logical_id,
                m.batch_size,
                m.maximum_batching_window_seconds,
                m.maximum_concurrency,
                m.function_response_types
            ));
        }
    }
    for (id, q) in &manifest.queues {
        report.say(format!(
            "{id}: visibility {} s, retention {} s, redrive {:?}",
            q.visibility_timeout_seconds,
            q.retention_seconds,
            q.redrive.as_ref().map(|r| r.max_receive_count)
        ));
    }
    report.say(format!(
        "bucket notification: {}",
        manifest.bucket_notification
    ));
}

/// Runs deploy.py with the SAM CLI's python; its stdout is the manifests.
async fn deploy(
    options: &Options,
    endpoint: &str,
    work: &Path,
) -> Result<Deployment, RehearsalError> {
    let mut command = std::process::Command::new(tools_dir().join("lambda-venv/bin/python"));
    command
        .arg(repository_root().join("tools/rehearsal/deploy.py"))
        .arg("--endpoint")
        .arg(endpoint)
        .arg("--template")
        .arg(&options.template)
        .arg("--code-dir")
        .arg(&options.code_dir)
        .arg("--work")
        .arg(work);
    for parameter in &options.parameters {
        command.arg("--parameter").arg(parameter);
    }
    if options.object_mode {
        command.arg("--object-mode-stack");
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| RehearsalError::Deploy(e.to_string()))?
        .map_err(|e| RehearsalError::io("running tools/rehearsal/deploy.py", e))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        return Err(RehearsalError::Deploy(
            lines[lines.len().saturating_sub(15)..].join("\n"),
        ));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|e| RehearsalError::Deploy(format!("its manifest did not parse: {e}")))
}

/// Sandboxes per function: as many as its mapping lets run at once, at most two here.
fn host_processes(maximum_concurrency: Option<u32>) -> usize {
    maximum_concurrency.map_or(1, |c| c as usize).clamp(1, 2)
}

async fn start_functions(
    manifest: &Manifest,
    work: &Path,
    invoke_api: &Arc<InvokeApi>,
) -> Result<Vec<Arc<FunctionHost>>, RehearsalError> {
    let mut hosts = Vec::new();
    for f in manifest.functions.values() {
        let credentials = manifest.credentials.get(&f.logical_id).ok_or_else(|| {
            RehearsalError::Deploy(format!("no credentials for {}", f.logical_id))
        })?;
        let processes = host_processes(
            f.event_source_mappings
                .iter()
                .filter_map(|m| m.maximum_concurrency)
                .max(),
        );
        let host = FunctionHost::start(Launch {
            function: f,
            credentials,
            region: &manifest.region,
            endpoint: &manifest.endpoint,
            processes,
            log_dir: work,
        })
        .await?;
        host.wait_ready(processes).await?;
        invoke_api.register(host.clone());
        hosts.push(host);
    }
    Ok(hosts)
}

type BridgeParts<'m> = (
    aws_sdk_sqs::Client,
    &'m manifest::DeployedQueue,
    Arc<FunctionHost>,
    &'m manifest::Mapping,
);

/// One poller per event source mapping, polling with the function's own role (as Lambda's
/// pollers do; the SAM-attached AWSLambdaSQSQueueExecutionRole is what allows it).
fn bridges<'m>(manifest: &'m Manifest, hosts: &[Arc<FunctionHost>]) -> Vec<BridgeParts<'m>> {
    let mut parts = Vec::new();
    for host in hosts {
        let Some(f) = manifest.functions.values().find(|f| f.arn == host.arn) else {
            continue;
        };
        let Some(credentials) = manifest.credentials.get(&f.logical_id) else {
            continue;
        };
        for m in f.event_source_mappings.iter().filter(|m| m.enabled) {
            if let Some((_, queue)) = manifest.queue_by_arn(&m.event_source_arn) {
                let clients = scenario::clients(manifest, credentials);
                parts.push((clients.sqs, queue, host.clone(), m));
            }
        }
    }
    parts
}
