//! S3 ObjectCreated notifications to job requests. A marker object (`_SUCCESS` by default)
//! starts a prefix job for its folder; in `object` trigger mode each `.csv` starts a job for
//! that one object. The job id is derived from the event (bucket, key, version or ETag,
//! sequencer), so the same notification delivered twice names the same job, and the
//! ledger's create-if-absent makes the second delivery a no-op.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use serde::Serialize;

use crate::contract::ids::JobId;
use crate::contract::messages::JobRequest;
use crate::plan::batching::is_loadable_key;

/// Which uploads start jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerMode {
    /// Only a marker object starts a job, for its whole folder.
    Marker,
    /// A marker starts a folder job, and each `.csv` starts a job of its own.
    Object,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriggerConfig {
    pub marker_name: String,
    pub mode: TriggerMode,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self {
            marker_name: "_SUCCESS".into(),
            mode: TriggerMode::Marker,
        }
    }
}

/// What one notification record asks for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
// One per notification record, handled at once: boxing the request would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Triggered {
    Start(JobRequest),
    Ignore { key: String, reason: String },
}

pub fn jobs_from_event(event: &S3Event, config: &TriggerConfig) -> Vec<Triggered> {
    event
        .records
        .iter()
        .map(|r| from_record(r, config))
        .collect()
}

fn from_record(record: &S3EventRecord, config: &TriggerConfig) -> Triggered {
    let raw_key = record.s3.object.key.clone().unwrap_or_default();
    let key = decode_key(&raw_key);
    let ignore = |reason: &str| Triggered::Ignore {
        key: key.clone(),
        reason: reason.to_owned(),
    };
    let event_name = record.event_name.as_deref().unwrap_or_default();
    if !event_name.starts_with("ObjectCreated") {
        return ignore("not an ObjectCreated event");
    }
    let Some(bucket) = record.s3.bucket.name.clone().filter(|b| !b.is_empty()) else {
        return ignore("the event names no bucket");
    };
    let object = &record.s3.object;
    let version = object
        .version_id
        .clone()
        .or_else(|| object.e_tag.clone())
        .unwrap_or_default();
    let sequencer = object.sequencer.clone().unwrap_or_default();
    let job_id = event_job_id(&bucket, &key, &version, &sequencer);
    let file_name = key.rsplit('/').next().unwrap_or_default();
    if file_name == config.marker_name {
        let mut request = JobRequest::new(&bucket, &key[..key.len() - file_name.len()]);
        request.job_id = Some(job_id);
        return Triggered::Start(request);
    }
    if is_loadable_key(&key) {
        if config.mode == TriggerMode::Marker {
            return ignore(
                "a loadable upload; jobs start on the folder's marker (TRIGGER_MODE=marker)",
            );
        }
        let mut request = JobRequest::new(&bucket, "");
        request.key = Some(key);
        request.job_id = Some(job_id);
        return Triggered::Start(request);
    }
    ignore("neither a marker nor a loadable (.csv, .jsonl, .ndjson) object")
}

/// Keys in S3 notifications are URL-encoded, with `+` for a space.
fn decode_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .unwrap_or(spaced)
}

/// A stable id for one notification: a name-based (v5) UUID of what identifies the upload.
pub fn event_job_id(bucket: &str, key: &str, version: &str, sequencer: &str) -> JobId {
    let name = format!("s3-fanout\n{bucket}\n{key}\n{version}\n{sequencer}");
    JobId::new(uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes()).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(file: &str) -> S3Event {
        let text = match file {
            "marker" => include_str!("../../../events/s3-put-marker.json"),
            _ => include_str!("../../../events/s3-put-csv.json"),
        };
        serde_json::from_str(text).unwrap()
    }

    fn started(t: &Triggered) -> &JobRequest {
        match t {
            Triggered::Start(request) => request,
            other => panic!("expected a job, got {other:?}"),
        }
    }

    #[test]
    fn a_marker_starts_a_job_for_its_folder() {
        let triggered = jobs_from_event(&event("marker"), &TriggerConfig::default());
        let request = started(&triggered[0]);
        assert_eq!(request.bucket, "s3fanout-local");
        assert_eq!(request.prefix, "data/2025-11-26/");
        assert_eq!(request.key, None);
    }

    #[test]
    fn a_csv_starts_its_own_job_only_in_object_mode() {
        let marker_mode = jobs_from_event(&event("csv"), &TriggerConfig::default());
        assert!(
            matches!(marker_mode[0], Triggered::Ignore { ref reason, .. } if reason.contains("TRIGGER_MODE"))
        );
        let config = TriggerConfig {
            mode: TriggerMode::Object,
            ..TriggerConfig::default()
        };
        let object_mode = jobs_from_event(&event("csv"), &config);
        // The URL-encoded key is decoded: `+` is a space, `%2B` a plus.
        assert_eq!(
            started(&object_mode[0]).key.as_deref(),
            Some("data/Kyiv readings+1.csv")
        );
    }

    #[test]
    fn the_same_notification_names_the_same_job_and_a_new_upload_another() {
        let config = TriggerConfig::default();
        let first = started(&jobs_from_event(&event("marker"), &config)[0])
            .job_id
            .clone();
        let again = started(&jobs_from_event(&event("marker"), &config)[0])
            .job_id
            .clone();
        assert_eq!(first, again);
        let mut reuploaded = event("marker");
        reuploaded.records[0].s3.object.sequencer = Some("0055AED6DCD90281FF".into());
        let other = started(&jobs_from_event(&reuploaded, &config)[0])
            .job_id
            .clone();
        assert_ne!(first, other);
    }

    #[test]
    fn other_events_and_keys_are_ignored_with_a_reason() {
        let mut removed = event("marker");
        removed.records[0].event_name = Some("ObjectRemoved:Delete".into());
        assert!(
            matches!(&jobs_from_event(&removed, &TriggerConfig::default())[0], Triggered::Ignore { reason, .. } if reason.contains("ObjectCreated"))
        );
        let mut notes = event("marker");
        notes.records[0].s3.object.key = Some("data/notes.txt".into());
        assert!(matches!(
            &jobs_from_event(&notes, &TriggerConfig::default())[0],
            Triggered::Ignore { .. }
        ));
    }
}
