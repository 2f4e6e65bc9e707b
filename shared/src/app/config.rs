//! Typed settings, parsed once at cold start. Every error names the variable at fault.

use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;

use crate::plan::queue_window::QueueWindow;
use crate::plan::trigger::{TriggerConfig, TriggerMode};

#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Names of the DynamoDB tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// The records table a job loads into unless it names another (`RECORDS_TABLE`).
    pub records: String,
    /// The job ledger, keyed by job_id.
    pub jobs: String,
    /// Further tables a job may name as its `table` (`ADDITIONAL_RECORDS_TABLES`: names or
    /// table ARNs, comma-separated); the functions' grants name exactly these and `records`.
    pub additional: Vec<String>,
}

impl Tables {
    /// A deployment's two tables, with no further target tables.
    pub fn new(records: &str, jobs: &str) -> Self {
        Self {
            records: records.to_owned(),
            jobs: jobs.to_owned(),
            additional: vec![],
        }
    }

    /// The table a job loads into: the one it names, if this deployment allows it, else the
    /// default. The refusal lists what is allowed.
    pub fn target<'a>(&'a self, named: Option<&'a str>) -> Result<&'a str, String> {
        match named {
            None => Ok(&self.records),
            Some(table) if table == self.records || self.additional.iter().any(|t| t == table) => {
                Ok(table)
            }
            Some(table) => Err(format!(
                "table {table:?} is not one this deployment may load into (allowed: {}); \
                 a deployment allows more with its AdditionalRecordsTableArns parameter",
                self.allowed().join(", ")
            )),
        }
    }

    /// Every table a job may load into, the default first.
    pub fn allowed(&self) -> Vec<&str> {
        std::iter::once(self.records.as_str())
            .chain(self.additional.iter().map(String::as_str))
            .collect()
    }
}

/// Coordinator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoordinatorConfig {
    pub tables: Tables,
    pub queue_url: String,
    /// Object keys per SQS message (one worker batch).
    pub batch_size: usize,
    /// A batch also closes once its objects' sizes reach this many bytes (an object larger
    /// than this is a batch of its own), so a batch's time follows its bytes, not its keys.
    pub batch_bytes: u64,
    /// ListObjectsV2 page size (S3 caps it at 1,000).
    pub list_page_size: i32,
    /// Bucket for rejects reports; the job's source bucket when unset.
    pub rejects_bucket: Option<String>,
    /// Key prefix of rejects reports: `{prefix}{job_id}/batch-NNNNNN.jsonl`.
    pub rejects_prefix: String,
    /// Which S3 uploads start jobs.
    pub trigger: TriggerConfig,
    /// A single-object job on a plain CSV bigger than this is split into byte ranges of
    /// this size, one worker batch each.
    pub range_chunk_bytes: u64,
    /// Where each finished job's completion event goes (none: the log line only).
    pub completion_queue_url: Option<String>,
    /// The coordinator's own control queue: a listing that would outrun the invocation's
    /// deadline checkpoints and continues in a new invocation woken through it. Unset: one
    /// invocation lists everything.
    pub control_queue_url: Option<String>,
    /// Time kept free before the deadline: the listing pauses when less than this is left.
    pub checkpoint_margin: Duration,
    /// The control queue's maxReceiveCount: a continuation failing on this delivery fails
    /// its job instead of going on to the dead-letter queue and being woken again forever.
    pub control_max_receive_count: u32,
    /// Buckets a job may read (empty: any the function's role can).
    pub allowed_buckets: Vec<String>,
    /// The dead-letter queues (ARNs) whose messages this coordinator is sent to account for
    /// (`DEAD_LETTER_QUEUE_ARNS`): see [`crate::app::coordinator::dead_letters`].
    pub dead_letter_queue_arns: Vec<String>,
    /// Write units per second an on-demand records table takes when it sets no maximum: a
    /// `max_write_rate` fraction is of this (the request can name its own figure).
    pub on_demand_write_units: u64,
    /// The worker's `WORKER_MAX_CONCURRENCY`, timeout and resume margin: a capped job
    /// whose share per instance cannot write one chunk in an invocation is refused.
    pub worker: WorkerShape,
    /// How many of a job's batches may be queued at once (`QUEUE_WINDOW_MIN_BATCHES`,
    /// `QUEUE_WINDOW_SECONDS`): a listing holds beyond it, so no batch outlives the queue.
    pub queue_window: QueueWindow,
    /// How long an export chain's next phase waits after its fence is recorded before its
    /// batches are sent (`EXPORT_FENCE_SECONDS`, default the worker's timeout + 30 s up to
    /// SQS's 900 s; at least the worker's timeout): every worker invocation that read the older phase has ended by
    /// then (`docs/exports.md`).
    pub export_fence: Duration,
}

/// What the coordinator knows of the worker function, to check a cap's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerShape {
    pub max_concurrency: usize,
    pub timeout: Duration,
    pub resume_margin: Duration,
}

impl Default for WorkerShape {
    /// One instance (local runs), the template's 120 s timeout, the default margin.
    fn default() -> Self {
        Self {
            max_concurrency: 1,
            timeout: Duration::from_secs(WorkerShape::DEFAULT_TIMEOUT_SECONDS),
            resume_margin: Duration::from_secs(WorkerConfig::DEFAULT_RESUME_MARGIN_SECONDS),
        }
    }
}

impl WorkerShape {
    pub const DEFAULT_TIMEOUT_SECONDS: u64 = 120;

    /// Seconds an invocation writes before it stops and hands on.
    pub fn part_seconds(&self) -> f64 {
        crate::plan::pacing::part_seconds(
            self.timeout,
            crate::app::lambda::DEADLINE_MARGIN,
            self.resume_margin,
        )
    }

    fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            max_concurrency: positive(var, "WORKER_MAX_CONCURRENCY", defaults.max_concurrency)?,
            timeout: Duration::from_secs(positive(
                var,
                "WORKER_TIMEOUT_SECONDS",
                Self::DEFAULT_TIMEOUT_SECONDS,
            )?),
            resume_margin: Duration::from_secs(positive(
                var,
                "RESUME_MARGIN_SECONDS",
                WorkerConfig::DEFAULT_RESUME_MARGIN_SECONDS,
            )?),
        })
    }
}

/// Worker settings: GETs in flight, objects in flight, write parallelism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    pub tables: Tables,
    /// Semaphore permits: S3 GETs in flight at once.
    pub fetch_concurrency: usize,
    /// `buffer_unordered` width: objects being fetched or decoded at once.
    pub task_concurrency: usize,
    /// BatchWriteItem calls in flight at once.
    pub write_concurrency: usize,
    /// The queue's maxReceiveCount: a batch failing on this delivery goes to the dead-letter
    /// queue next, so the worker counts it as failed in the ledger.
    pub max_receive_count: u32,
    /// Cap on the decoded bytes of one compressed object (a guard against inflation bombs).
    pub max_decoded_bytes: u64,
    /// Where each finished job's completion event goes (none: the log line only).
    pub completion_queue_url: Option<String>,
    /// The coordinator's control queue: the last scan of a split object wakes the compose
    /// step there (split objects need it).
    pub control_queue_url: Option<String>,
    /// Records longer than this are rejected with their offset instead of buffered.
    pub max_record_bytes: usize,
    /// The most worker instances that run at once (the event source's
    /// `MaximumConcurrency`): each takes this share of a job's write rate cap. 1 locally,
    /// where one worker serves every poller.
    pub max_concurrency: usize,
    /// The batch queue: a batch nearing the deadline hands its rest to a continuation
    /// message there (unset: every batch runs to its end in one invocation, or fails).
    pub queue_url: Option<String>,
    /// Decoding stops this long before the deadline (itself 10 s before Lambda's), leaving
    /// the time to write the rows in flight, count or hand on, and reply.
    pub resume_margin: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            tables: Tables::new("s3fanout-records", "s3fanout-jobs"),
            fetch_concurrency: 256,
            task_concurrency: 512,
            write_concurrency: 16,
            max_receive_count: 5,
            max_decoded_bytes: crate::ingest::compression::DEFAULT_MAX_DECODED_BYTES,
            completion_queue_url: None,
            control_queue_url: None,
            max_record_bytes: crate::ingest::csv_stream::DEFAULT_MAX_RECORD_BYTES,
            max_concurrency: 1,
            queue_url: None,
            resume_margin: Duration::from_secs(Self::DEFAULT_RESUME_MARGIN_SECONDS),
        }
    }
}

impl CoordinatorConfig {
    pub const DEFAULT_BATCH_SIZE: usize = 100;
    pub const DEFAULT_LIST_PAGE_SIZE: i32 = 1000;
    pub const DEFAULT_REJECTS_PREFIX: &str = "_rejects/";
    pub const DEFAULT_CHECKPOINT_MARGIN_SECONDS: u64 = 60;
    /// DynamoDB's default per-table limit for on-demand tables.
    pub const DEFAULT_ON_DEMAND_WRITE_UNITS: u64 = 40_000;
    pub const DEFAULT_CONTROL_MAX_RECEIVE_COUNT: u32 = 5;
    /// Beyond the worker's timeout, the fence waits this long: a write sent just before a
    /// kill reaching DynamoDB, and clock skew.
    pub const EXPORT_FENCE_MARGIN_SECONDS: u64 = 30;
    /// SQS's longest `DelaySeconds`.
    pub const MAX_EXPORT_FENCE_SECONDS: u64 = 900;

    /// Every setting at its default (the values `from_env` takes when a variable is unset),
    /// given the two it cannot default.
    pub fn new(tables: Tables, queue_url: impl Into<String>) -> Self {
        Self {
            tables,
            queue_url: queue_url.into(),
            batch_size: Self::DEFAULT_BATCH_SIZE,
            batch_bytes: crate::plan::batching::DEFAULT_BATCH_BYTES,
            list_page_size: Self::DEFAULT_LIST_PAGE_SIZE,
            rejects_bucket: None,
            rejects_prefix: Self::DEFAULT_REJECTS_PREFIX.to_owned(),
            trigger: TriggerConfig::default(),
            range_chunk_bytes: crate::plan::ranges::DEFAULT_CHUNK_BYTES,
            completion_queue_url: None,
            control_queue_url: None,
            checkpoint_margin: Duration::from_secs(Self::DEFAULT_CHECKPOINT_MARGIN_SECONDS),
            control_max_receive_count: Self::DEFAULT_CONTROL_MAX_RECEIVE_COUNT,
            allowed_buckets: vec![],
            dead_letter_queue_arns: vec![],
            on_demand_write_units: Self::DEFAULT_ON_DEMAND_WRITE_UNITS,
            worker: WorkerShape::default(),
            queue_window: QueueWindow::default(),
            export_fence: Duration::from_secs(
                WorkerShape::DEFAULT_TIMEOUT_SECONDS + Self::EXPORT_FENCE_MARGIN_SECONDS,
            ),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let worker = WorkerShape::from_lookup(&var)?;
        let fence = positive(
            &var,
            "EXPORT_FENCE_SECONDS",
            (worker.timeout.as_secs() + Self::EXPORT_FENCE_MARGIN_SECONDS)
                .min(Self::MAX_EXPORT_FENCE_SECONDS),
        )?;
        if fence < worker.timeout.as_secs() || fence > Self::MAX_EXPORT_FENCE_SECONDS {
            return Err(ConfigError::Invalid {
                name: "EXPORT_FENCE_SECONDS",
                value: fence.to_string(),
                reason: format!(
                    "must be at least WORKER_TIMEOUT_SECONDS ({}) and at most SQS's {} s delay",
                    worker.timeout.as_secs(),
                    Self::MAX_EXPORT_FENCE_SECONDS
                ),
            });
        }
        Ok(Self {
            tables: Tables::from_lookup(&var)?,
            queue_url: required(&var, "QUEUE_URL")?,
            batch_size: positive(&var, "BATCH_SIZE", Self::DEFAULT_BATCH_SIZE)?,
            batch_bytes: positive(
                &var,
                "BATCH_BYTES",
                crate::plan::batching::DEFAULT_BATCH_BYTES,
            )?,
            list_page_size: positive(&var, "LIST_PAGE_SIZE", Self::DEFAULT_LIST_PAGE_SIZE)?
                .min(1000),
            rejects_bucket: optional(&var, "REJECTS_BUCKET"),
            rejects_prefix: var("REJECTS_PREFIX")
                .unwrap_or_else(|| Self::DEFAULT_REJECTS_PREFIX.to_owned()),
            trigger: TriggerConfig {
                marker_name: var("MARKER_NAME")
                    .unwrap_or_else(|| TriggerConfig::default().marker_name),
                mode: match var("TRIGGER_MODE").as_deref() {
                    None | Some("marker") => TriggerMode::Marker,
                    Some("object") => TriggerMode::Object,
                    Some(other) => {
                        return Err(ConfigError::Invalid {
                            name: "TRIGGER_MODE",
                            value: other.to_owned(),
                            reason: "expected marker or object".into(),
                        });
                    }
                },
            },
            range_chunk_bytes: positive(
                &var,
                "RANGE_CHUNK_BYTES",
                crate::plan::ranges::DEFAULT_CHUNK_BYTES,
            )?,
            completion_queue_url: optional(&var, "COMPLETION_QUEUE_URL"),
            control_queue_url: optional(&var, "CONTROL_QUEUE_URL"),
            checkpoint_margin: Duration::from_secs(positive(
                &var,
                "CHECKPOINT_MARGIN_SECONDS",
                Self::DEFAULT_CHECKPOINT_MARGIN_SECONDS,
            )?),
            control_max_receive_count: positive(
                &var,
                "CONTROL_MAX_RECEIVE_COUNT",
                Self::DEFAULT_CONTROL_MAX_RECEIVE_COUNT,
            )?,
            allowed_buckets: list(&var, "ALLOWED_BUCKETS"),
            dead_letter_queue_arns: list(&var, "DEAD_LETTER_QUEUE_ARNS"),
            on_demand_write_units: positive(
                &var,
                "ON_DEMAND_WRITE_UNITS",
                Self::DEFAULT_ON_DEMAND_WRITE_UNITS,
            )?,
            worker,
            export_fence: Duration::from_secs(fence),
            queue_window: QueueWindow {
                min_batches: positive(
                    &var,
                    "QUEUE_WINDOW_MIN_BATCHES",
                    QueueWindow::DEFAULT_MIN_BATCHES,
                )?,
                seconds: positive(&var, "QUEUE_WINDOW_SECONDS", QueueWindow::DEFAULT_SECONDS)?,
            },
        })
    }
}

impl WorkerConfig {
    pub const DEFAULT_RESUME_MARGIN_SECONDS: u64 = 20;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        Ok(Self {
            tables: Tables::from_lookup(&var)?,
            fetch_concurrency: positive(&var, "FETCH_CONCURRENCY", defaults.fetch_concurrency)?,
            task_concurrency: positive(&var, "TASK_CONCURRENCY", defaults.task_concurrency)?,
            write_concurrency: positive(&var, "WRITE_CONCURRENCY", defaults.write_concurrency)?,
            max_receive_count: positive(&var, "MAX_RECEIVE_COUNT", defaults.max_receive_count)?,
            max_decoded_bytes: positive(&var, "MAX_DECODED_BYTES", defaults.max_decoded_bytes)?,
            completion_queue_url: optional(&var, "COMPLETION_QUEUE_URL"),
            control_queue_url: optional(&var, "CONTROL_QUEUE_URL"),
            max_record_bytes: positive(&var, "MAX_RECORD_BYTES", defaults.max_record_bytes)?,
            max_concurrency: positive(&var, "WORKER_MAX_CONCURRENCY", defaults.max_concurrency)?,
            queue_url: optional(&var, "QUEUE_URL"),
            resume_margin: Duration::from_secs(positive(
                &var,
                "RESUME_MARGIN_SECONDS",
                Self::DEFAULT_RESUME_MARGIN_SECONDS,
            )?),
        })
    }
}

impl Tables {
    fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let region = optional(var, "AWS_REGION");
        let additional = optional(var, "ADDITIONAL_RECORDS_TABLES")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| {
                        table_name(t, region.as_deref()).map_err(|reason| ConfigError::Invalid {
                            name: "ADDITIONAL_RECORDS_TABLES",
                            value: list.clone(),
                            reason,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Self {
            records: required(var, "RECORDS_TABLE")?,
            jobs: required(var, "JOBS_TABLE")?,
            additional,
        })
    }
}

/// A table's name from its name or ARN (`arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`). The
/// clients address tables by name in the function's own region, so an ARN of another region
/// could never be written and is refused here, at cold start.
fn table_name(entry: &str, region: Option<&str>) -> Result<String, String> {
    let Some(arn) = entry.strip_prefix("arn:") else {
        return Ok(entry.to_owned());
    };
    let parts: Vec<&str> = arn.splitn(5, ':').collect();
    let [_partition, "dynamodb", arn_region, _account, resource] = parts[..] else {
        return Err(format!("{entry:?} is not a DynamoDB table ARN"));
    };
    let Some(name) = resource
        .strip_prefix("table/")
        .filter(|n| !n.is_empty() && !n.contains('/'))
    else {
        return Err(format!(
            "{entry:?} names no table (expected ...:table/NAME)"
        ));
    };
    match region {
        Some(region) if region != arn_region => Err(format!(
            "{entry:?} is in region {arn_region}, and the functions run in {region}"
        )),
        _ => Ok(name.to_owned()),
    }
}

fn required(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    match var(name) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// An optional setting: unset and blank are the same.
fn optional(var: &impl Fn(&str) -> Option<String>, name: &'static str) -> Option<String> {
    var(name).filter(|value| !value.trim().is_empty())
}

/// An optional comma-separated list: unset and blank are empty.
fn list(var: &impl Fn(&str) -> Option<String>, name: &'static str) -> Vec<String> {
    optional(var, name)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// An optional positive integer with a default.
fn positive<T>(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let Some(value) = var(name) else {
        return Ok(default);
    };
    let invalid = |reason: String| ConfigError::Invalid {
        name,
        value: value.clone(),
        reason,
    };
    let parsed: T = value
        .trim()
        .parse()
        .map_err(|e: T::Err| invalid(e.to_string()))?;
    if parsed <= T::default() {
        return Err(invalid("must be greater than zero".into()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("RECORDS_TABLE", "records"),
        ("JOBS_TABLE", "jobs"),
        ("QUEUE_URL", "http://q"),
    ];

    #[test]
    fn the_export_fence_defaults_past_the_worker_timeout_and_is_held_to_it() {
        let config = CoordinatorConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(config.export_fence, Duration::from_secs(150));
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            CoordinatorConfig::from_lookup(lookup(&pairs))
        };
        let longer = with(&[("WORKER_TIMEOUT_SECONDS", "300")]).unwrap();
        assert_eq!(longer.export_fence, Duration::from_secs(330));
        // Lambda's longest timeout: the fence is SQS's longest delay, no margin left.
        let longest = with(&[("WORKER_TIMEOUT_SECONDS", "900")]).unwrap();
        assert_eq!(longest.export_fence, Duration::from_secs(900));
        let set = with(&[("EXPORT_FENCE_SECONDS", "200")]).unwrap();
        assert_eq!(set.export_fence, Duration::from_secs(200));
        for bad in [
            with(&[("EXPORT_FENCE_SECONDS", "60")]),
            with(&[("EXPORT_FENCE_SECONDS", "901")]),
            with(&[
                ("WORKER_TIMEOUT_SECONDS", "300"),
                ("EXPORT_FENCE_SECONDS", "299"),
            ]),
        ] {
            let error = bad.unwrap_err().to_string();
            assert!(error.contains("EXPORT_FENCE_SECONDS"), "{error}");
        }
    }

    #[test]
    fn coordinator_defaults_apply() {
        let config = CoordinatorConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(config.batch_size, 100);
        assert_eq!(config.batch_bytes, 16 << 20);
        assert_eq!(config.list_page_size, 1000);
        assert_eq!(config.tables.records, "records");
        assert_eq!(config.rejects_bucket, None);
        assert_eq!(config.rejects_prefix, "_rejects/");
        assert_eq!(config.trigger, TriggerConfig::default());
        assert_eq!(config.range_chunk_bytes, 32 << 20);
        assert_eq!(config.completion_queue_url, None);
        assert_eq!(config.control_queue_url, None);
        assert_eq!(config.checkpoint_margin, Duration::from_secs(60));
        assert!(config.allowed_buckets.is_empty());
        assert_eq!(config.on_demand_write_units, 40_000);
        assert_eq!(config.worker, WorkerShape::default());
        assert_eq!(config.worker.part_seconds(), 90.0);
        assert_eq!(
            WorkerConfig::from_lookup(lookup(&BASE))
                .unwrap()
                .max_concurrency,
            1
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("ALLOWED_BUCKETS", " a-bucket, b-bucket ,"));
        let config = CoordinatorConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.allowed_buckets, vec!["a-bucket", "b-bucket"]);
        let mut pairs = BASE.to_vec();
        pairs.push(("COMPLETION_QUEUE_URL", "http://q/done"));
        pairs.push(("WORKER_MAX_CONCURRENCY", "50"));
        let worker = WorkerConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(worker.max_concurrency, 50);
        let shape = CoordinatorConfig::from_lookup(lookup(&pairs))
            .unwrap()
            .worker;
        assert_eq!(
            shape.max_concurrency, 50,
            "the coordinator checks a cap's share"
        );
        assert_eq!(
            worker.completion_queue_url.as_deref(),
            Some("http://q/done")
        );
        assert_eq!(
            worker.queue_url.as_deref(),
            Some("http://q"),
            "continuations go there"
        );
        assert_eq!(worker.resume_margin, Duration::from_secs(20));
    }

    #[test]
    fn trigger_mode_is_checked() {
        let mut pairs = BASE.to_vec();
        pairs.push(("TRIGGER_MODE", "object"));
        let config = CoordinatorConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.trigger.mode, TriggerMode::Object);
        pairs.pop();
        pairs.push(("TRIGGER_MODE", "sometimes"));
        let err = CoordinatorConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(
            err.to_string().contains("TRIGGER_MODE=\"sometimes\""),
            "{err}"
        );
    }

    #[test]
    fn missing_variable_is_named() {
        let err = CoordinatorConfig::from_lookup(lookup(&BASE[..2])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("QUEUE_URL"));
        assert!(err.to_string().contains("QUEUE_URL"));
    }

    #[test]
    fn invalid_number_is_named_with_value() {
        let mut pairs = BASE.to_vec();
        pairs.push(("BATCH_SIZE", "lots"));
        let err = CoordinatorConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("BATCH_SIZE=\"lots\""), "{err}");
        pairs.pop();
        pairs.push(("FETCH_CONCURRENCY", "0"));
        let err = WorkerConfig::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("greater than zero"), "{err}");
    }

    #[test]
    fn page_size_is_capped_at_the_s3_maximum() {
        let mut pairs = BASE.to_vec();
        pairs.push(("LIST_PAGE_SIZE", "5000"));
        let config = CoordinatorConfig::from_lookup(lookup(&pairs)).unwrap();
        assert_eq!(config.list_page_size, 1000);
    }

    #[test]
    fn additional_tables_come_by_name_or_arn_of_the_functions_region() {
        let mut pairs = BASE.to_vec();
        pairs.push(("AWS_REGION", "eu-west-1"));
        pairs.push((
            "ADDITIONAL_RECORDS_TABLES",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/orders, events",
        ));
        let tables = CoordinatorConfig::from_lookup(lookup(&pairs))
            .unwrap()
            .tables;
        assert_eq!(tables.additional, ["orders", "events"]);
        assert_eq!(tables.allowed(), ["records", "orders", "events"]);
        assert_eq!(tables.target(None), Ok("records"));
        assert_eq!(tables.target(Some("orders")), Ok("orders"));
        let refused = tables.target(Some("payments")).unwrap_err();
        assert!(refused.contains("\"payments\"") && refused.contains("records, orders, events"));

        for (bad, reason) in [
            (
                "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
                "region us-east-1",
            ),
            ("arn:aws:s3:::bucket", "not a DynamoDB table ARN"),
            (
                "arn:aws:dynamodb:eu-west-1:123456789012:table/t/index/i",
                "names no table",
            ),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push(("AWS_REGION", "eu-west-1"));
            pairs.push(("ADDITIONAL_RECORDS_TABLES", bad));
            let error = WorkerConfig::from_lookup(lookup(&pairs)).unwrap_err();
            assert!(error.to_string().contains(reason), "{bad}: {error}");
        }
    }
}
