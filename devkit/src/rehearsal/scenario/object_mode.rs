//! The object-mode stack's jobs (`TriggerMode=object`): each upload with a loadable suffix
//! starts a job of its own, for that object alone; a stray file, a marker and the rejects
//! report a worker writes invoke nothing.

use std::time::{Duration, Instant};

use super::{RehearsalError, Report, Run};
use crate::rehearsal::checks;
use crate::rehearsal::invoke_api::AsyncInvocation;
use crate::sample::SampleSpec;

impl Run<'_> {
    /// On the object-mode stack: each upload with a loadable suffix starts a job of its own,
    /// for that object alone; a stray file, a marker and the rejects report a worker writes
    /// invoke nothing.
    pub(super) async fn object_jobs(&self, report: &mut Report) -> Result<(), RehearsalError> {
        if self.parameter("TriggerMode")? != "object" {
            return Err(RehearsalError::Job(format!(
                "{} should have TriggerMode=object",
                self.manifest.stack
            )));
        }
        let prefix = "rehearsal/object/";
        let before = self.invoke_api.started();
        let finished_before = self.invoke_api.finished().len();
        let started = Instant::now();
        let ignored = [
            format!("{prefix}notes.txt"),
            format!("{prefix}{}", self.parameter("MarkerName")?),
        ];
        for key in &ignored {
            self.put(key, "not data").await?;
        }
        // One object per loadable suffix, each one file of the sample (rows of its own); the
        // first has one bad row more, so its worker writes a rejects report.
        let spec = SampleSpec::new(
            prefix,
            checks::LOADABLE_SUFFIXES.len(),
            self.options.rows_per_file,
        );
        let mut keys = Vec::new();
        for (file, suffix) in checks::LOADABLE_SUFFIXES.iter().enumerate() {
            let key = format!("{prefix}sensor-{file:06}{suffix}");
            let mut csv = spec.body(file);
            if file == 0 {
                csv.push_str("2025-11-26 00:00:00 UTC,warm,55.0,Rejected_0\n");
            }
            self.put_bytes(&key, encoded(suffix, csv.as_bytes()).await?)
                .await?;
            keys.push(key);
        }
        let invoked = self.notifications(finished_before, keys.len()).await?;
        let mut jobs: Vec<String> = Vec::new();
        for key in &keys {
            let job_id = started_job(&invoked, key)?;
            if jobs.contains(&job_id) {
                return Err(RehearsalError::Job(format!(
                    "{key} started job {job_id}, which another upload started too"
                )));
            }
            jobs.push(job_id);
        }
        let events = self
            .completions(jobs.len(), |e| {
                jobs.iter().any(|j| e["job_id"] == j.as_str())
            })
            .await?;
        for (file, (key, job_id)) in keys.iter().zip(&jobs).enumerate() {
            let event = events
                .iter()
                .find(|e| e["job_id"] == job_id.as_str())
                .ok_or_else(|| RehearsalError::Job(format!("no completion event for {job_id}")))?;
            let rejected = u64::from(file == 0);
            if event["status"] != "COMPLETE"
                || event["rows_written"] != spec.rows_per_file
                || event["rows_rejected"] != rejected
            {
                return Err(RehearsalError::Job(format!(
                    "the job of {key} should be COMPLETE with {} rows written and {rejected} rejected, got {event}",
                    spec.rows_per_file
                )));
            }
        }
        self.check_rows(&spec, &keys).await?;
        let rejects = self
            .keys_under(&format!("{}{}/", self.parameter("RejectsPrefix")?, jobs[0]))
            .await?;
        if rejects.is_empty() {
            return Err(RehearsalError::Job(format!(
                "the job of {} rejected a row but wrote no rejects report",
                keys[0]
            )));
        }
        // S3 notifications are asynchronous: give an unwanted one time to arrive.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let all = self.invoke_api.finished();
        let unwanted: Vec<&serde_json::Value> = all[finished_before..]
            .iter()
            .map(|i| &i.payload["Records"][0]["s3"]["object"]["key"])
            .filter(|k| !keys.iter().any(|key| notified_key(k) == *key))
            .collect();
        if self.invoke_api.started() != before + keys.len() || !unwanted.is_empty() {
            return Err(RehearsalError::Job(format!(
                "in object mode only the {} loadable uploads may invoke the coordinator, once each; {} invocations, also for {unwanted:?}",
                keys.len(),
                self.invoke_api.started() - before
            )));
        }
        for (key, job_id) in keys.iter().zip(&jobs) {
            report.say(format!(
                "object job: the {key} upload's S3 notification started job {job_id} for that object alone: COMPLETE, {} rows in the table, completion event received",
                spec.rows_per_file
            ));
        }
        report.say(format!(
            "object mode: {}, {} and the worker's rejects report {} uploaded: no invocation (the notification filter holds); {} per-object jobs in {:.1} s",
            ignored[0],
            ignored[1],
            rejects.join(", "),
            keys.len(),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    async fn keys_under(&self, prefix: &str) -> Result<Vec<String>, RehearsalError> {
        let listed = self
            .admin
            .s3
            .list_objects_v2()
            .bucket(&self.manifest.input_bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| {
                RehearsalError::Job(format!("listing {prefix}: {}", shared::report(&e)))
            })?;
        Ok(listed
            .contents
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| o.key)
            .collect())
    }

    /// The asynchronous invocations that end after the first `finished_before`, once there
    /// are `count` of them.
    async fn notifications(
        &self,
        finished_before: usize,
        count: usize,
    ) -> Result<Vec<AsyncInvocation>, RehearsalError> {
        let deadline = Instant::now() + self.options.job_timeout;
        loop {
            self.no_denials()?;
            self.no_failed_notifications()?;
            let finished = self.invoke_api.finished();
            if finished.len() >= finished_before + count {
                return Ok(finished[finished_before..].to_vec());
            }
            if Instant::now() > deadline {
                return Err(RehearsalError::Job(format!(
                    "{count} uploads should each invoke the coordinator within {:?}; {} did",
                    self.options.job_timeout,
                    finished.len() - finished_before
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The job the upload of `key` started, from its S3 notification's invocation: exactly one
/// invocation names the key, and its only record started a job.
fn started_job(invoked: &[AsyncInvocation], key: &str) -> Result<String, RehearsalError> {
    let named: Vec<&AsyncInvocation> = invoked
        .iter()
        .filter(|i| notified_key(&i.payload["Records"][0]["s3"]["object"]["key"]) == key)
        .collect();
    let [invocation] = named.as_slice() else {
        return Err(RehearsalError::Job(format!(
            "the upload of {key} should invoke the coordinator once; it did {} times",
            named.len()
        )));
    };
    let outcome = invocation
        .outcome
        .as_ref()
        .map_err(|e| RehearsalError::Job(format!("the notification of {key} failed: {e}")))?;
    match outcome.as_array().map(Vec::as_slice) {
        Some([started]) if started["outcome"] == "started" && started["files_listed"] == 1 => {
            Ok(started["job_id"].as_str().unwrap_or_default().to_owned())
        }
        _ => Err(RehearsalError::Job(format!(
            "the notification of {key} should start a job for that one object; the coordinator answered {outcome}"
        ))),
    }
}

/// A key as an S3 notification names it: URL-encoded, with `+` for a space.
fn notified_key(raw: &serde_json::Value) -> String {
    let spaced = raw.as_str().unwrap_or_default().replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// A CSV body as an upload with `suffix` holds it.
async fn encoded(suffix: &str, csv: &[u8]) -> Result<Vec<u8>, RehearsalError> {
    crate::sample::encoded(suffix, csv)
        .await
        .map_err(|e| RehearsalError::io("compressing a sample file", e))
}

impl Run<'_> {
    /// On the object-mode stack, which allows one more table (`AdditionalRecordsTableArns`): a
    /// manual job naming it loads there under the functions' own roles, and one naming a table
    /// the deployment does not allow is refused before any job exists. The data is JSON Lines,
    /// which object mode's notifications leave alone, so only the manual job reads it.
    pub(super) async fn named_table_jobs(&self, report: &mut Report) -> Result<(), RehearsalError> {
        let arns = self.parameter("AdditionalRecordsTableArns")?;
        let Some(table) = arns
            .split(',')
            .next()
            .and_then(|arn| arn.rsplit_once("table/"))
        else {
            return Err(RehearsalError::Job(format!(
                "{} should allow an additional table, has AdditionalRecordsTableArns={arns:?}",
                self.manifest.stack
            )));
        };
        let table = table.1.to_owned();
        let prefix = "rehearsal/named-table/";
        let spec = SampleSpec::new(prefix, 2, self.options.rows_per_file);
        let mut keys = Vec::new();
        for file in 0..spec.files {
            let key = format!("{prefix}sensor-{file:06}.jsonl");
            self.put(&key, &as_json_lines(&spec.body(file))).await?;
            keys.push(key);
        }
        let coordinator = self.host("coordinator")?;
        let bucket = &self.manifest.input_bucket;
        let refused = coordinator
            .invoke_json(
                &serde_json::json!({"bucket": bucket, "prefix": prefix, "table": "not-allowed"}),
            )
            .await;
        match refused {
            Err(error) if error.to_string().contains("not-allowed") => {}
            other => {
                return Err(RehearsalError::Job(format!(
                    "a job naming a table the deployment does not allow should be refused, got {other:?}"
                )));
            }
        }
        let started = Instant::now();
        let response = coordinator
            .invoke_json(&serde_json::json!({"bucket": bucket, "prefix": prefix, "table": table}))
            .await?;
        let job_id = response["job_id"].as_str().unwrap_or_default().to_owned();
        let event = self.completion(|e| e["job_id"] == job_id.as_str()).await?;
        if event["status"] != "COMPLETE" || event["rows_written"] != spec.total_rows() {
            return Err(RehearsalError::Job(format!(
                "the job naming {table} should be COMPLETE with {} rows written, got {event}",
                spec.total_rows()
            )));
        }
        self.check_rows_in(&table, &spec, &keys).await?;
        report.say(format!(
            "named table: a job naming {table} (allowed by AdditionalRecordsTableArns) loaded its {} JSON Lines rows there under the functions' roles ({:.1} s); a job naming not-allowed was refused before it started",
            spec.total_rows(),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }
}

/// The sample's CSV as JSON Lines: one object per row, the numbers as JSON numbers.
fn as_json_lines(csv: &str) -> String {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let mut out = String::new();
    for line in lines {
        let row: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(line.split(','))
            .map(|(&name, value)| {
                let value = match value.parse::<f64>() {
                    Ok(number) if name != "measure_point" => serde_json::json!(number),
                    _ => serde_json::json!(value),
                };
                (name.to_owned(), value)
            })
            .collect();
        out.push_str(&serde_json::Value::Object(row).to_string());
        out.push('\n');
    }
    out
}
