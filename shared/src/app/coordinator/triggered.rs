//! Jobs started by an S3 upload: their options are read from the upload's folder (see
//! [`crate::contract::options`]), and a job that cannot work (invalid options, a schema the
//! table's keys refuse) ends FAILED with the reason, visible in `status` and the completion
//! event: a notification has nobody to answer, so a refusal would be silent.

use tokio::io::AsyncReadExt;

use super::{Coordinator, CoordinatorError, TriggerOutcome};
use crate::contract::ids::JobId;
use crate::contract::messages::JobRequest;
use crate::contract::options::{JOB_CONFIG_NAME, JobOptions, MAX_OPTIONS_BYTES};
use crate::job::model::Job;
use crate::port::ledger::JobError;
use crate::port::objects::{Failure, Read};

/// Where a triggered job's options came from.
enum Options {
    /// No configuration: the defaults, as a manual request without options.
    Defaults,
    /// Boxed: options hold a whole schema.
    Given(Box<JobOptions>),
    /// A configuration that cannot be used, and why.
    Invalid(String),
}

impl Coordinator {
    pub(super) async fn start_triggered(
        &self,
        mut request: JobRequest,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<TriggerOutcome, CoordinatorError> {
        match self.triggered_options(&request).await? {
            Options::Defaults => {}
            Options::Given(options) => options.apply(&mut request),
            Options::Invalid(reason) => return self.refuse_triggered(&request, reason).await,
        }
        match self.start_job(request.clone(), deadline).await {
            Ok(started) => Ok(TriggerOutcome::Started(Box::new(started))),
            Err(CoordinatorError::Job(JobError::AlreadyExists(job_id))) => {
                tracing::info!(%job_id, "duplicate S3 notification: job already started");
                Ok(TriggerOutcome::AlreadyStarted { job_id })
            }
            Err(
                error @ (CoordinatorError::InvalidRequest(_) | CoordinatorError::InvalidSchema(_)),
            ) => self.refuse_triggered(&request, crate::report(&error)).await,
            Err(error) => Err(error),
        }
    }

    /// The marker's own options if it holds some, else the folder's configuration object.
    async fn triggered_options(&self, request: &JobRequest) -> Result<Options, CoordinatorError> {
        let folder = match &request.key {
            Some(key) => &key[..key.rfind('/').map_or(0, |slash| slash + 1)],
            None => request.prefix.as_str(),
        };
        if request.key.is_none() {
            let marker = format!("{folder}{}", self.config.trigger.marker_name);
            let body = match self.read_options(&request.bucket, &marker).await? {
                Ok(Some(body)) => body,
                Ok(None) => {
                    return Ok(Options::Invalid(format!(
                        "the marker s3://{}/{marker} is gone, so its job options cannot be read",
                        request.bucket
                    )));
                }
                Err(reason) => return Ok(Options::Invalid(reason)),
            };
            match JobOptions::from_marker(&body) {
                Ok(Some(options)) => return Ok(Options::Given(Box::new(options))),
                Ok(None) => {}
                Err(reason) => {
                    return Ok(Options::Invalid(format!(
                        "the marker s3://{}/{marker}: {reason}",
                        request.bucket
                    )));
                }
            }
        }
        let config = format!("{folder}{JOB_CONFIG_NAME}");
        Ok(match self.read_options(&request.bucket, &config).await? {
            Ok(None) => Options::Defaults,
            Ok(Some(body)) => match JobOptions::parse(&body) {
                Ok(options) => Options::Given(Box::new(options)),
                Err(reason) => Options::Invalid(format!(
                    "the job configuration s3://{}/{config}: {reason}",
                    request.bucket
                )),
            },
            Err(reason) => Options::Invalid(reason),
        })
    }

    /// A small object's bytes (`Ok(None)`: there is none); a reason for one that cannot be a
    /// configuration; an error for a failure worth retrying the notification for.
    async fn read_options(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Result<Option<Vec<u8>>, String>, CoordinatorError> {
        let unreadable = |error: crate::port::objects::ObjectError| {
            if error.failure == Failure::NotFound {
                Ok(Ok(None))
            } else if error.is_permanent() {
                Ok(Err(format!(
                    "s3://{bucket}/{key} cannot be read: {}",
                    crate::report(&error)
                )))
            } else {
                Err(CoordinatorError::Options(error))
            }
        };
        let head = match self.objects.head(bucket, key).await {
            Ok(head) => head,
            Err(error) => return unreadable(error),
        };
        if head.size > MAX_OPTIONS_BYTES {
            return Ok(Err(format!(
                "s3://{bucket}/{key} is {} bytes, over the {MAX_OPTIONS_BYTES}-byte limit of a job configuration",
                head.size
            )));
        }
        if head.size == 0 {
            return Ok(Ok(Some(Vec::new())));
        }
        let mut body = match self.objects.get(bucket, key, Read::default()).await {
            Ok(body) => body.reader,
            Err(error) => return unreadable(error),
        };
        let mut bytes = Vec::new();
        // Bounded even if the object grew after the HEAD.
        let read = (&mut body)
            .take(MAX_OPTIONS_BYTES + 1)
            .read_to_end(&mut bytes)
            .await;
        match read {
            Ok(_) if bytes.len() as u64 > MAX_OPTIONS_BYTES => Ok(Err(format!(
                "s3://{bucket}/{key} is over the {MAX_OPTIONS_BYTES}-byte limit of a job configuration"
            ))),
            Ok(_) => Ok(Ok(Some(bytes))),
            Err(error) => Err(CoordinatorError::OptionsRead {
                key: key.to_owned(),
                source: error,
            }),
        }
    }

    /// Records the triggered job as FAILED with `reason` (once: a redelivered notification
    /// finds it), and sends its completion event.
    async fn refuse_triggered(
        &self,
        request: &JobRequest,
        reason: String,
    ) -> Result<TriggerOutcome, CoordinatorError> {
        let job_id = request.job_id.clone().unwrap_or_else(JobId::fresh);
        let mut job = Job::new(&job_id, &request.bucket, &request.prefix);
        job.key = request.key.clone();
        match self.ledger.create(&job).await {
            Ok(()) => {}
            Err(JobError::AlreadyExists(job_id)) => {
                return Ok(TriggerOutcome::AlreadyStarted { job_id });
            }
            Err(error) => return Err(error.into()),
        }
        tracing::error!(%job_id, %reason, "an S3-triggered job cannot run; FAILED");
        self.fail_job(&job_id, &reason).await;
        Ok(TriggerOutcome::Refused { job_id, reason })
    }
}
