//! Options of an S3-triggered job: the options a manual request carries besides what the
//! upload decides (bucket, folder or object, job id): `schema`, `format`, `table`,
//! `tolerated_rejects`, `write_mode`, `max_write_rate`. They come from a job configuration object in the upload's
//! folder ([`JOB_CONFIG_NAME`]) or from the marker's own body, under [`MARKER_MEMBER`] (so that
//! a marker written by another tool, such as the JSON `_SUCCESS` of Hadoop's S3A committers,
//! is never misread as options). The marker's options, when present, win over the folder's
//! whole: they belong to this one upload. Unknown or misplaced names are refused, never
//! ignored: a typo must not become a silent default load.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::contract::format::Format;
use crate::contract::messages::JobRequest;
use crate::contract::rejects::RejectTolerance;
use crate::contract::schema::Schema;
use crate::contract::write::WriteOptions;

/// The job configuration object of a folder: `<folder>/_s3-fanout.json`.
pub const JOB_CONFIG_NAME: &str = "_s3-fanout.json";

/// The member of a marker's JSON body that holds its job's options.
pub const MARKER_MEMBER: &str = "s3_fanout";

/// Longest configuration read: a schema of a few thousand columns fits.
pub const MAX_OPTIONS_BYTES: u64 = 256 << 10;

/// The options a configuration may set.
const KNOWN: [&str; 6] = [
    "schema",
    "format",
    "table",
    "tolerated_rejects",
    "write_mode",
    "max_write_rate",
];

/// What the upload itself decides: a configuration naming one is refused.
const DECIDED_BY_THE_UPLOAD: [&str; 5] = [
    "bucket",
    "prefix",
    "key",
    "job_id",
    "write_units_per_second",
];

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct JobOptions {
    #[serde(default)]
    pub schema: Option<Schema>,
    #[serde(default)]
    pub format: Option<Format>,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub tolerated_rejects: Option<RejectTolerance>,
    #[serde(flatten)]
    pub write: WriteOptions,
}

impl JobOptions {
    /// The options of a job configuration object's text.
    pub fn parse(text: &[u8]) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(text).map_err(|e| format!("not valid JSON: {e}"))?;
        Self::from_value(value)
    }

    /// The options a marker's body carries, if it is a JSON object holding [`MARKER_MEMBER`];
    /// `Ok(None)` for any other body (empty, plain text, another tool's JSON).
    pub fn from_marker(text: &[u8]) -> Result<Option<Self>, String> {
        let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(text) else {
            return Ok(None);
        };
        body.remove(MARKER_MEMBER)
            .map(|options| Self::from_value(options).map_err(|e| format!("{MARKER_MEMBER}: {e}")))
            .transpose()
    }

    fn from_value(value: Value) -> Result<Self, String> {
        let Value::Object(fields) = value else {
            return Err("not a JSON object of job options".into());
        };
        check_names(&fields)?;
        serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())
    }

    /// The request with these options in place of its defaults.
    pub fn apply(self, request: &mut JobRequest) {
        request.schema = self.schema;
        request.format = self.format;
        request.table = self.table;
        request.tolerated_rejects = self.tolerated_rejects;
        request.write = self.write;
    }
}

fn check_names(fields: &Map<String, Value>) -> Result<(), String> {
    for name in fields.keys() {
        if DECIDED_BY_THE_UPLOAD.contains(&name.as_str()) {
            return Err(format!(
                "option {name:?} is decided by the upload, not by a job configuration"
            ));
        }
        if !KNOWN.contains(&name.as_str()) {
            return Err(format!(
                "unknown option {name:?} (a job configuration may set {})",
                KNOWN.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::write::WriteMode;

    #[test]
    fn a_configuration_sets_the_request_s_options() {
        let options = JobOptions::parse(
            br#"{"schema": {"columns": [{"name": "id", "type": "string"}], "partition_key": ["id"]},
                 "tolerated_rejects": {"count": 3}, "write_mode": "insert", "max_write_rate": 400,
                 "table": "orders", "format": "jsonl"}"#,
        )
        .unwrap();
        let mut request = JobRequest::new("b", "in/");
        options.apply(&mut request);
        assert_eq!(request.schema.unwrap().partition_key, ["id"]);
        assert_eq!(request.tolerated_rejects, Some(RejectTolerance::Count(3)));
        assert_eq!(request.write.write_mode, WriteMode::Insert);
        assert_eq!(request.table.as_deref(), Some("orders"));
        assert_eq!(request.format, Some(Format::JsonLines));
        assert_eq!(
            (request.bucket.as_str(), request.prefix.as_str()),
            ("b", "in/")
        );
    }

    #[test]
    fn a_triggered_job_gets_the_csv_dialect_with_its_schema() {
        let options = JobOptions::from_marker(
            br#"{"s3_fanout": {"schema": {"columns": [{"name": "id", "type": "string"}],
                 "partition_key": ["id"], "csv": {"delimiter": "\t", "header": false}}}}"#,
        )
        .unwrap()
        .unwrap();
        let mut request = JobRequest::new("b", "in/");
        options.apply(&mut request);
        let csv = request.schema.unwrap().csv;
        assert_eq!((csv.delimiter, csv.quote, csv.header), (b'\t', b'"', false));
        let bad = JobOptions::parse(
            br#"{"schema": {"columns": [{"name": "id", "type": "string"}],
                 "partition_key": ["id"], "csv": {"delimiter": ";;"}}}"#,
        )
        .unwrap_err();
        assert!(bad.contains("expected one ASCII character"), "{bad}");
    }

    #[test]
    fn the_sample_configuration_is_valid() {
        let options = JobOptions::parse(include_bytes!("../../../events/job-config.json")).unwrap();
        options.schema.unwrap().validate().unwrap();
        options.write.validate().unwrap();
        assert_eq!(options.tolerated_rejects, Some(RejectTolerance::Count(10)));
    }

    #[test]
    fn unknown_misplaced_and_malformed_options_are_refused_with_the_reason() {
        let refused = |text: &str| JobOptions::parse(text.as_bytes()).unwrap_err();
        assert!(refused(r#"{"scheme": {}}"#).starts_with("unknown option \"scheme\""));
        assert!(refused(r#"{"prefix": "elsewhere/"}"#).contains("decided by the upload"));
        assert!(refused(r#"{"write_units_per_second": 9}"#).contains("decided by the upload"));
        assert!(refused("[1, 2]").starts_with("not a JSON object"));
        assert!(refused("{not json").starts_with("not valid JSON"));
        assert!(refused(r#"{"write_mode": "upsert"}"#).contains("upsert"));
        assert!(refused(r#"{"schema": {"columns": []}}"#).contains("partition_key"));
    }

    #[test]
    fn a_marker_holds_options_only_under_its_member() {
        for other in [
            &b""[..],
            b"done\n",
            br#"{"name": "org.apache.hadoop.fs.s3a.commit.files.SuccessData", "committer": "magic"}"#,
        ] {
            assert_eq!(JobOptions::from_marker(other), Ok(None));
        }
        let options =
            JobOptions::from_marker(br#"{"s3_fanout": {"write_mode": "update"}, "x": 1}"#)
                .unwrap()
                .unwrap();
        assert_eq!(options.write.write_mode, WriteMode::Update);
        let bad = JobOptions::from_marker(br#"{"s3_fanout": {"mode": "update"}}"#).unwrap_err();
        assert!(
            bad.starts_with("s3_fanout: unknown option \"mode\""),
            "{bad}"
        );
    }
}
