//! The rehearsal's jobs, driven as a user would: uploads to the deployed bucket (its
//! notification, as moto's S3 sends it, starts the marker job), a manual invoke of
//! `events/prefix-job.json` adjusted to the deployed bucket, a job whose one batch dies in
//! the queue without running (it must end COMPLETED_WITH_ERRORS through the dead-letter
//! queue's mapping), then the stuck-job check invoked with the schedule's own input. On the
//! object-mode stack, uploads that cannot be loaded invoke nothing and each loadable upload
//! (`.csv`, `.csv.gz`, `.csv.zst`) starts a job of its own. Every other job must end COMPLETE
//! with its completion event in the completion queue and every row in the records table.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials as SdkCredentials, SharedCredentialsProvider};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use shared::aws::{Clients, Endpoints};

use super::host::FunctionHost;
use super::invoke_api::InvokeApi;
use super::manifest::{Credentials, Manifest};
use super::{Options, RehearsalError, Report};
use crate::sample::{SampleSpec, SensorReading};

mod object_mode;

/// SDK clients for the rehearsal's moto with these credentials.
pub fn clients(manifest: &Manifest, credentials: &Credentials) -> Clients {
    let sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(manifest.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(SdkCredentials::new(
            &credentials.access_key_id,
            &credentials.secret_access_key,
            credentials.session_token.clone(),
            None,
            "rehearsal",
        )))
        .build();
    let endpoint = Some(manifest.endpoint.clone());
    Clients::new(
        &sdk,
        &Endpoints {
            s3: endpoint.clone(),
            sqs: endpoint.clone(),
            dynamodb: endpoint,
        },
    )
}

struct Run<'a> {
    options: &'a Options,
    /// moto's log, where the launcher writes every IAM denial, and where its part written
    /// after the deploy (whose probe of IAM enforcement is a deliberate denial) begins.
    moto_log: &'a std::path::Path,
    log_start: usize,
    manifest: &'a Manifest,
    hosts: &'a [Arc<FunctionHost>],
    invoke_api: &'a InvokeApi,
    /// Disables (true) or enables the marker stack's worker mapping.
    pause_worker: &'a tokio::sync::watch::Sender<bool>,
    admin: Clients,
}

/// The marker-mode stack's jobs, then (if deployed) the object-mode stack's. `hosts` are
/// every stack's functions.
pub async fn run(
    options: &Options,
    moto_log: &std::path::Path,
    (marker, object): (&Manifest, Option<&Manifest>),
    hosts: &[Arc<FunctionHost>],
    invoke_api: &InvokeApi,
    pause_worker: &tokio::sync::watch::Sender<bool>,
    report: &mut Report,
) -> Result<(), RehearsalError> {
    let log_start = std::fs::read(moto_log).map_or(0, |log| log.len());
    let on = |manifest| Run {
        options,
        moto_log,
        log_start,
        manifest,
        hosts,
        invoke_api,
        pause_worker,
        admin: clients(manifest, &manifest.admin),
    };
    let run = on(marker);
    run.marker_job(report).await?;
    run.manual_job(report).await?;
    run.dead_letter_job(report).await?;
    run.stuck_check(report).await?;
    if let Some(object) = object {
        on(object).object_jobs(report).await?;
        on(object).named_table_jobs(report).await?;
    }
    run.no_denials()?;
    report.say("no AWS call of any function was denied");
    Ok(())
}

impl Run<'_> {
    /// Data files and a stray file invoke nothing; the marker starts the folder's job.
    async fn marker_job(&self, report: &mut Report) -> Result<(), RehearsalError> {
        let marker = self.parameter("MarkerName")?;
        if self.parameter("TriggerMode")? != "marker" {
            return Err(RehearsalError::Job(
                "the marker job needs TriggerMode=marker".into(),
            ));
        }
        let spec = SampleSpec::new(
            "rehearsal/marker/",
            self.options.files,
            self.options.rows_per_file,
        );
        let started = Instant::now();
        self.upload(&spec).await?;
        self.put(&format!("{}notes.txt", spec.prefix), "not data")
            .await?;
        // S3 notifications are asynchronous: give an unwanted one time to arrive.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if self.invoke_api.started() != 0 {
            return Err(RehearsalError::Job(format!(
                "uploads that cannot start a job invoked the coordinator: {:?}",
                self.invoke_api.finished()
            )));
        }
        report.say(format!(
            "{} data files and notes.txt uploaded: no invocation (the notification filter holds)",
            spec.files
        ));
        self.put(&format!("{}{marker}", spec.prefix), "").await?;
        let event = self
            .completion(|e| e["prefix"] == spec.prefix.as_str())
            .await?;
        self.check_job(&event, &spec).await?;
        let invoked = self.invoke_api.finished();
        if self.invoke_api.started() != 1 || invoked.iter().any(|i| i.outcome.is_err()) {
            return Err(RehearsalError::Job(format!(
                "the marker job's uploads should invoke the coordinator once, successfully: {invoked:?}"
            )));
        }
        report.say(format!(
            "marker job: the {marker} upload's S3 notification started job {}: COMPLETE, {} rows in the table, completion event received ({:.1} s)",
            event["job_id"].as_str().unwrap_or_default(),
            spec.total_rows(),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// `events/prefix-job.json` with the deployed bucket, invoked as `aws lambda invoke` does.
    async fn manual_job(&self, report: &mut Report) -> Result<(), RehearsalError> {
        let text = std::fs::read_to_string(&self.options.prefix_job_event)
            .map_err(|e| RehearsalError::io("reading events/prefix-job.json", e))?;
        let mut request: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RehearsalError::Job(format!("events/prefix-job.json: {e}")))?;
        request["bucket"] = self.manifest.input_bucket.clone().into();
        let prefix = request["prefix"].as_str().unwrap_or("data/").to_owned();
        let mut spec = SampleSpec::new(&prefix, self.options.files, self.options.rows_per_file);
        spec.seed = 17;
        self.upload(&spec).await?;
        let notified = self.invoke_api.started();
        let started = Instant::now();
        let response = self.host("coordinator")?.invoke_json(&request).await?;
        let job_id = response["job_id"].as_str().unwrap_or_default().to_owned();
        let event = self.completion(|e| e["job_id"] == job_id.as_str()).await?;
        self.check_job(&event, &spec).await?;
        if self.invoke_api.started() != notified {
            return Err(RehearsalError::Job(
                "uploading data files in marker mode invoked the coordinator".into(),
            ));
        }
        report.say(format!(
            "manual invoke of events/prefix-job.json (bucket set to {}): job {job_id} COMPLETE, {} rows, completion event received ({:.1} s)",
            self.manifest.input_bucket,
            spec.total_rows(),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// A job whose one batch dies in the queue without ever running our code (received
    /// `maxReceiveCount` times by invocations that never started, as throttled or
    /// failed-at-init ones do on AWS): SQS moves it to the dead-letter queue, the
    /// coordinator's mapping of that queue counts the batch failed under its own role, and
    /// the job ends COMPLETED_WITH_ERRORS with its completion event.
    async fn dead_letter_job(&self, report: &mut Report) -> Result<(), RehearsalError> {
        let worker = self
            .manifest
            .function_by_binary("worker")
            .ok_or_else(|| RehearsalError::Job("the stack has no worker function".into()))?;
        let (queue_id, queue) = (worker.event_source_mappings.iter())
            .find_map(|m| self.manifest.queue_by_arn(&m.event_source_arn))
            .ok_or_else(|| RehearsalError::Job("the worker has no queue mapping".into()))?;
        let receives = queue
            .redrive
            .as_ref()
            .map(|r| r.max_receive_count)
            .ok_or_else(|| RehearsalError::Job(format!("{queue_id} has no dead-letter queue")))?;
        // Disabled, the mapping starts no receive; one already in flight ends within its
        // long poll (1 s), before the job below exists.
        self.pause_worker.send_replace(true);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let spec = SampleSpec::new("dead-letter/", 1, 5);
        self.upload(&spec).await?;
        let request =
            serde_json::json!({"bucket": self.manifest.input_bucket, "prefix": "dead-letter/"});
        let started = Instant::now();
        let response = self.host("coordinator")?.invoke_json(&request).await;
        let job_id = match response {
            Ok(response) => response["job_id"].as_str().unwrap_or_default().to_owned(),
            Err(error) => {
                self.pause_worker.send_replace(false);
                return Err(error);
            }
        };
        let dead = self.receive_without_running(&queue.url, receives).await;
        self.pause_worker.send_replace(false);
        let counts = dead?;
        let event = self.completion(|e| e["job_id"] == job_id.as_str()).await?;
        if event["status"] != "COMPLETED_WITH_ERRORS"
            || event["batches_failed"] != 1
            || event["rows_written"] != 0
        {
            return Err(RehearsalError::Job(format!(
                "expected COMPLETED_WITH_ERRORS with its one batch failed and no row written, got {event}"
            )));
        }
        report.say(format!(
            "a batch received {} times without running (as throttled invocations are; ApproximateReceiveCount {counts:?}, moto's first receive reads 2) until SQS moved it to {queue_id}'s dead-letter queue (maxReceiveCount {receives}): the coordinator's mapping counted it failed, job {job_id} COMPLETED_WITH_ERRORS, completion event received ({:.1} s)",
            counts.len(),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Receives the queue's one message, hiding it for 0 s each time, until a receive finds
    /// it moved to the dead-letter queue (SQS's redrive, as moto runs it: at most `receives`
    /// deliveries); returns the ApproximateReceiveCount of each.
    async fn receive_without_running(
        &self,
        url: &str,
        receives: u32,
    ) -> Result<Vec<String>, RehearsalError> {
        let receive = || async move {
            (self.admin.sqs.receive_message().queue_url(url))
                .wait_time_seconds(2)
                .visibility_timeout(0)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .send()
                .await
                .map_err(|e| RehearsalError::Job(format!("ReceiveMessage: {}", shared::report(&e))))
        };
        // The receive counts SQS reported, until a receive finds the batch gone.
        let mut counts = Vec::new();
        while counts.len() <= receives as usize {
            let got = receive().await?;
            let Some(message) = got.messages().first() else {
                break;
            };
            let count = (message.attributes())
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .cloned()
                .unwrap_or_default();
            counts.push(count);
        }
        if counts.is_empty() || counts.len() > receives as usize {
            return Err(RehearsalError::Job(format!(
                "the batch was received {} times (receive counts {counts:?}) and {}",
                counts.len(),
                if counts.is_empty() {
                    "never seen"
                } else {
                    "is still in the queue"
                }
            )));
        }
        Ok(counts)
    }

    /// Each schedule's input, sent to its target as EventBridge would.
    async fn stuck_check(&self, report: &mut Report) -> Result<(), RehearsalError> {
        if self.manifest.schedules.is_empty() {
            return Err(RehearsalError::Job("the stack has no schedule".into()));
        }
        for schedule in &self.manifest.schedules {
            let host = self
                .hosts
                .iter()
                .find(|h| h.arn == schedule.target_arn)
                .ok_or_else(|| {
                    RehearsalError::Job(format!(
                        "schedule {} targets {}, which is not a function of the stack",
                        schedule.rule, schedule.target_arn
                    ))
                })?;
            let input: serde_json::Value =
                serde_json::from_str(schedule.input.as_deref().unwrap_or("{}"))
                    .map_err(|e| RehearsalError::Job(format!("schedule input: {e}")))?;
            let response = host.invoke_json(&input).await?;
            report.say(format!(
                "schedule {:?} invoked {} with {input}: {response}",
                schedule.expression.as_deref().unwrap_or_default(),
                host.logical_id
            ));
        }
        Ok(())
    }

    async fn upload(&self, spec: &SampleSpec) -> Result<(), RehearsalError> {
        spec.upload(&self.admin.s3, &self.manifest.input_bucket, 4, || {})
            .await
            .map(|_| ())
            .map_err(|e| RehearsalError::Job(shared::report(&e)))
    }

    async fn put(&self, key: &str, body: &str) -> Result<(), RehearsalError> {
        self.put_bytes(key, body.as_bytes().to_vec()).await
    }

    async fn put_bytes(&self, key: &str, body: Vec<u8>) -> Result<(), RehearsalError> {
        self.admin
            .s3
            .put_object()
            .bucket(&self.manifest.input_bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RehearsalError::Job(format!("uploading {key}: {}", shared::report(&e))))
    }

    /// The first completion event `wanted` accepts, watching the functions for denials.
    async fn completion(
        &self,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, RehearsalError> {
        let mut events = self.completions(1, wanted).await?;
        events
            .pop()
            .ok_or_else(|| RehearsalError::Job("no completion event".into()))
    }

    /// The first `count` completion events `wanted` accepts (others are left unread until
    /// their visibility timeout), watching the functions for denials.
    async fn completions(
        &self,
        count: usize,
        wanted: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<Vec<serde_json::Value>, RehearsalError> {
        let queue = self
            .manifest
            .queues
            .get("CompletionQueue")
            .ok_or_else(|| RehearsalError::Job("the stack has no CompletionQueue".into()))?;
        let deadline = Instant::now() + self.options.job_timeout;
        let mut events = Vec::new();
        while Instant::now() < deadline {
            self.no_denials()?;
            self.no_failed_notifications()?;
            let received = self
                .admin
                .sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| {
                    RehearsalError::Job(format!(
                        "reading the completion queue: {}",
                        shared::report(&e)
                    ))
                })?;
            for message in received.messages.unwrap_or_default() {
                let event: serde_json::Value =
                    serde_json::from_str(message.body.as_deref().unwrap_or_default())
                        .unwrap_or_default();
                if wanted(&event) {
                    events.push(event);
                }
            }
            if events.len() >= count {
                return Ok(events);
            }
        }
        self.no_denials()?;
        Err(RehearsalError::Job(format!(
            "no completion event within {:?}; the functions' logs end with:\n{}",
            self.options.job_timeout,
            self.hosts
                .iter()
                .map(|h| tail(&h.log_text(), 5))
                .collect::<Vec<_>>()
                .join("\n")
        )))
    }

    /// COMPLETE, the expected counts, and every expected row in the records table.
    async fn check_job(
        &self,
        event: &serde_json::Value,
        spec: &SampleSpec,
    ) -> Result<(), RehearsalError> {
        if event["status"] != "COMPLETE" || event["rows_written"] != spec.total_rows() {
            return Err(RehearsalError::Job(format!(
                "expected COMPLETE with {} rows written, got {event}",
                spec.total_rows()
            )));
        }
        let keys: Vec<String> = (0..spec.files).map(|file| spec.key(file)).collect();
        self.check_rows(spec, &keys).await
    }

    /// Every row of each of the spec's files (uploaded as `keys`, in order) in the records
    /// table, value for value.
    async fn check_rows(&self, spec: &SampleSpec, keys: &[String]) -> Result<(), RehearsalError> {
        let table = self
            .manifest
            .outputs
            .get("RecordsTableName")
            .ok_or_else(|| RehearsalError::Job("no RecordsTableName output".into()))?;
        self.check_rows_in(table, spec, keys).await
    }

    /// [`Self::check_rows`] in another table.
    async fn check_rows_in(
        &self,
        table: &str,
        spec: &SampleSpec,
        keys: &[String],
    ) -> Result<(), RehearsalError> {
        let stored = self.records(table).await?;
        for (file, object) in keys.iter().enumerate() {
            for row in spec.expected(file) {
                let key = (row.measure_point.clone(), row.timestamp.clone());
                if stored.get(&key) != Some(&row) {
                    return Err(RehearsalError::Job(format!(
                        "row {key:?} of {object} is {:?} in the table, expected {row:?}",
                        stored.get(&key)
                    )));
                }
            }
        }
        Ok(())
    }

    async fn records(
        &self,
        table: &str,
    ) -> Result<HashMap<(String, String), SensorReading>, RehearsalError> {
        let mut rows = HashMap::new();
        let mut start = None;
        loop {
            let page = self
                .admin
                .dynamodb
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| {
                    RehearsalError::Job(format!("scanning {table}: {}", shared::report(&e)))
                })?;
            for item in page.items.unwrap_or_default() {
                let row: SensorReading = serde_dynamo::from_item(item).map_err(|e| {
                    RehearsalError::Job(format!("a stored row does not read back: {e}"))
                })?;
                rows.insert((row.measure_point.clone(), row.timestamp.clone()), row);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(rows);
            }
        }
    }

    /// Fails, naming the action, on the first call IAM denied a function (moto's launcher
    /// logs `rehearsal: denied PRINCIPAL ACTION on RESOURCE`).
    fn no_denials(&self) -> Result<(), RehearsalError> {
        let log = std::fs::read(self.moto_log).unwrap_or_default();
        let log = String::from_utf8_lossy(log.get(self.log_start..).unwrap_or_default());
        let Some(line) = log
            .lines()
            .find_map(|l| l.split("rehearsal: denied ").nth(1))
        else {
            return Ok(());
        };
        let mut words = line.split_whitespace();
        let principal = words.next().unwrap_or_default();
        let action = words.next().unwrap_or_default();
        // assumed-role/ROLE/SESSION: the session is the function's name.
        let session = principal.rsplit('/').next().unwrap_or(principal);
        let function = self
            .hosts
            .iter()
            .find(|h| h.name.starts_with(session) || session.starts_with(&h.name))
            .map_or_else(|| principal.to_owned(), |h| h.logical_id.clone());
        Err(RehearsalError::Denied {
            function,
            action: action.to_owned(),
            line: line.to_owned(),
        })
    }

    fn no_failed_notifications(&self) -> Result<(), RehearsalError> {
        match self
            .invoke_api
            .finished()
            .into_iter()
            .find(|i| i.outcome.is_err())
        {
            Some(failed) => Err(RehearsalError::Job(format!(
                "an S3 notification to {} failed: {}",
                failed.function,
                failed.outcome.err().unwrap_or_default()
            ))),
            None => Ok(()),
        }
    }

    fn host(&self, binary: &str) -> Result<&FunctionHost, RehearsalError> {
        let function = self
            .manifest
            .function_by_binary(binary)
            .ok_or_else(|| RehearsalError::Job(format!("the stack has no {binary} function")))?;
        self.hosts
            .iter()
            .find(|h| h.arn == function.arn)
            .map(Arc::as_ref)
            .ok_or_else(|| RehearsalError::Job(format!("{binary} is not running")))
    }

    fn parameter(&self, name: &str) -> Result<&str, RehearsalError> {
        self.manifest
            .parameters
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| RehearsalError::Job(format!("the stack has no parameter {name}")))
    }
}

pub(super) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
