//! Checks of the deployed configuration itself, before anything runs: the README's IAM table
//! against the roles' policies, each role's trust, the settings the design rests on
//! (visibility timeouts, retention, partial batch responses, the dead-letter count the worker knows),
//! the schedule's target and input, and in object mode the bucket's notification filters.

use std::collections::BTreeSet;

use shared::contract::messages::CoordinatorRequest;

use super::manifest::{DeployedFunction, Manifest};

/// The key endings object mode loads: the CSV ones of `is_loadable_key` (a unit test keeps them
/// together; JSON Lines keys load in prefix jobs only): each must have exactly one
/// notification configuration.
pub const LOADABLE_SUFFIXES: [&str; 3] = [".csv", ".csv.gz", ".csv.zst"];

/// Every finding, as a sentence; empty when the configuration is as documented.
pub fn configuration(manifest: &Manifest, readme: &str) -> Vec<String> {
    let mut findings = Vec::new();
    for f in manifest.functions.values() {
        findings.extend(trust(f));
        findings.extend(mappings(manifest, f));
    }
    if let (Some(worker), Some(queue)) = (
        manifest.function_by_binary("worker"),
        manifest.queues.get("BatchQueue"),
    ) {
        let known = worker.environment.get("MAX_RECEIVE_COUNT");
        let redrive = queue
            .redrive
            .as_ref()
            .map(|r| r.max_receive_count.to_string());
        if known != redrive.as_ref() {
            findings.push(format!(
                "the worker's MAX_RECEIVE_COUNT ({known:?}) differs from the batch queue's maxReceiveCount ({redrive:?})"
            ));
        }
    }
    findings.extend(retention(manifest));
    findings.extend(records_table(manifest));
    findings.extend(schedules(manifest));
    findings.extend(iam_table(manifest, readme));
    findings
}

/// With `ExistingRecordsTable` the stack creates no records table and every function loads
/// into the named one; without it, into the table it created. (The IAM table check then holds
/// the grants to exactly that table's ARN, through the `RecordsTableName` output.)
fn records_table(manifest: &Manifest) -> Vec<String> {
    let existing = manifest
        .parameter("ExistingRecordsTable")
        .filter(|name| !name.is_empty());
    let created = manifest.created_tables.iter().any(|t| t == "RecordsTable");
    let mut findings = Vec::new();
    match existing {
        Some(name) if created => findings.push(format!(
            "ExistingRecordsTable names {name}, yet the stack created its own RecordsTable"
        )),
        None if !created => findings.push("the stack created no RecordsTable".into()),
        _ => {}
    }
    let target = existing.or(manifest.outputs.get("RecordsTableName").map(String::as_str));
    if let Some(name) = existing
        && manifest.outputs.get("RecordsTableName").map(String::as_str) != Some(name)
    {
        findings.push(format!("the RecordsTableName output is not {name}"));
    }
    // A function without the variable cannot start at all, which the run shows with the
    // binary's own error naming it.
    let additional = additional_table_arns(manifest).join(",");
    for f in manifest.functions.values() {
        let allows = f
            .environment
            .get("ADDITIONAL_RECORDS_TABLES")
            .map(String::as_str);
        if allows.unwrap_or_default() != additional {
            findings.push(format!(
                "{}'s ADDITIONAL_RECORDS_TABLES is {allows:?}, not the stack's AdditionalRecordsTableArns {additional:?}",
                f.logical_id
            ));
        }
        let Some(loads_into) = f.environment.get("RECORDS_TABLE").map(String::as_str) else {
            continue;
        };
        if Some(loads_into) != target {
            findings.push(format!(
                "{}'s RECORDS_TABLE is {loads_into:?}, not the records table {target:?}",
                f.logical_id
            ));
        }
    }
    findings
}

/// SQS's longest retention (14 days). A standard queue's message keeps its first enqueue time
/// when it is dead-lettered, so a DLQ that keeps less than its source drops late failures.
pub const MAX_RETENTION_SECONDS: u64 = 14 * 24 * 3600;

/// Every queue keeps messages as long as SQS allows: a job's batches are all queued when it
/// starts, and a message that expires unreceived is gone without a trace.
fn retention(manifest: &Manifest) -> Vec<String> {
    manifest
        .queues
        .iter()
        .filter(|(_, queue)| queue.retention_seconds < MAX_RETENTION_SECONDS)
        .map(|(id, queue)| {
            format!(
                "{id} keeps messages {} s, under SQS's most ({MAX_RETENTION_SECONDS} s): a batch or a dead letter older than that is dropped unseen",
                queue.retention_seconds
            )
        })
        .collect()
}

/// Each schedule must target the coordinator, enabled, with an input the coordinator reads
/// as the stuck-job check at the stack's `StuckJobThresholdSeconds`: the input the rehearsal
/// then invokes it with, as EventBridge would.
fn schedules(manifest: &Manifest) -> Vec<String> {
    if manifest.schedules.is_empty() {
        return vec!["the stack has no schedule".into()];
    }
    let coordinator = manifest.function_by_binary("coordinator").map(|f| &f.arn);
    let threshold = manifest
        .parameter("StuckJobThresholdSeconds")
        .and_then(|t| t.parse::<u64>().ok());
    let mut findings = Vec::new();
    for s in &manifest.schedules {
        if coordinator != Some(&s.target_arn) {
            findings.push(format!(
                "schedule {} targets {}, not the coordinator ({coordinator:?})",
                s.rule, s.target_arn
            ));
        }
        if s.state.as_deref() != Some("ENABLED") {
            findings.push(format!("schedule {} is {:?}, not ENABLED", s.rule, s.state));
        }
        if s.expression.is_none() {
            findings.push(format!("schedule {} has no schedule expression", s.rule));
        }
        let input = s.input.as_deref().unwrap_or_default();
        match serde_json::from_str::<CoordinatorRequest>(input) {
            Ok(CoordinatorRequest::CheckStuckJobs { check_stuck_jobs })
                if Some(check_stuck_jobs.older_than_seconds) == threshold => {}
            other => findings.push(format!(
                "schedule {}'s input {input:?} is not the stuck-job check at StuckJobThresholdSeconds ({threshold:?}): the coordinator reads it as {other:?}",
                s.rule
            )),
        }
    }
    findings
}

/// In object mode the bucket must notify the coordinator of each loadable upload once, and
/// of nothing else: one `ObjectCreated` configuration per loadable suffix, each filtered by
/// that suffix alone, and no other destination.
pub fn object_mode_notification(manifest: &Manifest) -> Vec<String> {
    let mut findings = Vec::new();
    let notification = &manifest.bucket_notification;
    for (kind, _) in notification.as_object().into_iter().flatten() {
        if kind != "LambdaFunctionConfigurations" {
            findings.push(format!("the bucket also notifies through {kind}"));
        }
    }
    let coordinator = manifest.function_by_binary("coordinator").map(|f| &f.arn);
    let mut suffixes = Vec::new();
    for config in as_list(&notification["LambdaFunctionConfigurations"]) {
        let id = config["Id"].as_str().unwrap_or_default();
        if coordinator.map(String::as_str) != config["LambdaFunctionArn"].as_str() {
            findings.push(format!(
                "notification {id} invokes {}, not the coordinator",
                config["LambdaFunctionArn"]
            ));
        }
        let events = strings(&config["Events"]);
        if events.iter().any(|e| !e.starts_with("s3:ObjectCreated:")) || events.is_empty() {
            findings.push(format!(
                "notification {id} is for {events:?}, not ObjectCreated"
            ));
        }
        let rules = as_list(&config["Filter"]["Key"]["FilterRules"]);
        match rules.as_slice() {
            [rule] if rule["Name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("suffix")) => {
                suffixes.push(rule["Value"].as_str().unwrap_or_default().to_owned());
            }
            _ => findings.push(format!(
                "notification {id} is filtered by {rules:?}, not by one suffix: it invokes the coordinator for keys it cannot load"
            )),
        }
    }
    for suffix in &suffixes {
        if !LOADABLE_SUFFIXES.contains(&suffix.as_str()) {
            findings.push(format!(
                "a notification is filtered by suffix {suffix:?}, which is not a loadable suffix {LOADABLE_SUFFIXES:?}"
            ));
        }
    }
    for loadable in LOADABLE_SUFFIXES {
        match suffixes.iter().filter(|s| *s == loadable).count() {
            1 => {}
            0 => findings.push(format!(
                "no notification for {loadable} uploads: they would start no job"
            )),
            n => findings.push(format!(
                "{n} notifications for {loadable} uploads: each would start a job"
            )),
        }
    }
    findings
}

fn trust(f: &DeployedFunction) -> Option<String> {
    let statements = as_list(&f.trust_policy["Statement"]);
    let trusted = statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"]).contains("sts:AssumeRole")
            && strings(&s["Principal"]["Service"]).contains("lambda.amazonaws.com")
    });
    (!trusted).then(|| {
        format!(
            "{}'s role does not trust lambda.amazonaws.com",
            f.logical_id
        )
    })
}

fn mappings(manifest: &Manifest, f: &DeployedFunction) -> Vec<String> {
    let mut findings = Vec::new();
    for m in &f.event_source_mappings {
        let Some((queue_id, queue)) = manifest.queue_by_arn(&m.event_source_arn) else {
            findings.push(format!(
                "{}: mapping from an unknown source {}",
                f.logical_id, m.event_source_arn
            ));
            continue;
        };
        if !m.enabled {
            findings.push(format!(
                "{}: the mapping from {queue_id} is disabled",
                f.logical_id
            ));
        }
        if queue.visibility_timeout_seconds < 6 * f.timeout_seconds {
            findings.push(format!(
                "{queue_id}'s visibility timeout ({} s) is under 6x {}'s timeout ({} s)",
                queue.visibility_timeout_seconds, f.logical_id, f.timeout_seconds
            ));
        }
        if !m
            .function_response_types
            .iter()
            .any(|t| t == "ReportBatchItemFailures")
        {
            findings.push(format!(
                "{}: the mapping from {queue_id} lacks ReportBatchItemFailures, so a partial batch response would be ignored",
                f.logical_id
            ));
        }
        // A dead-letter queue's own consumer (the coordinator's accounting) retries a letter
        // until the queue's retention instead: there is nowhere further for it to go.
        let is_dead_letter_queue = manifest.queues.values().any(|q| {
            q.redrive
                .as_ref()
                .is_some_and(|r| r.dead_letter_target_arn == m.event_source_arn)
        });
        if queue.redrive.is_none() && !is_dead_letter_queue {
            findings.push(format!("{queue_id} has no dead-letter queue"));
        }
    }
    findings
}

/// The README's "function | may | on" rows against the deployed inline policies (as sets of
/// action and resource ARN pairs) and attached managed policies (by name).
fn iam_table(manifest: &Manifest, readme: &str) -> Vec<String> {
    let rows = readme_rows(readme);
    if rows.is_empty() {
        return vec!["README.md has no IAM table (| function | may | on |)".into()];
    }
    let mut findings = Vec::new();
    for f in manifest.functions.values() {
        let mut documented = BTreeSet::new();
        let mut managed = BTreeSet::new();
        for row in rows
            .iter()
            .filter(|r| r.function == f.binary || r.function == "both")
        {
            let names = ticked(&row.may);
            if row.may.starts_with("managed") {
                managed.extend(names.into_iter().filter(|n| !n.contains(':')));
                continue;
            }
            for resource in ticked(&row.on) {
                match resolve_all(manifest, &resource) {
                    Some(arns) => documented.extend(arns.iter().flat_map(|arn| {
                        names
                            .iter()
                            .filter(|n| n.contains(':'))
                            .map(|a| (a.clone(), arn.clone()))
                    })),
                    None => {
                        findings.push(format!("README IAM table: unknown resource `{resource}`"))
                    }
                }
            }
        }
        let granted = granted(f);
        for (action, arn) in granted.difference(&documented) {
            findings.push(format!(
                "{} may {action} on {arn}, which the README's IAM table does not say",
                f.binary
            ));
        }
        for (action, arn) in documented.difference(&granted) {
            findings.push(format!("the README's IAM table says {} may {action} on {arn}, which its role does not grant", f.binary));
        }
        let attached: BTreeSet<String> = f.policies.managed.keys().cloned().collect();
        if attached != managed {
            findings.push(format!(
                "{}'s managed policies are {attached:?}; the README's IAM table names {managed:?}",
                f.binary
            ));
        }
    }
    findings
}

struct Row {
    function: String,
    may: String,
    on: String,
}

fn readme_rows(readme: &str) -> Vec<Row> {
    readme
        .lines()
        .skip_while(|l| !l.starts_with("| function | may | on |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            match cells.as_slice() {
                [function, may, on] => Some(Row {
                    function: function.to_string(),
                    may: may.to_string(),
                    on: on.to_string(),
                }),
                _ => None,
            }
        })
        .collect()
}

/// The `code` spans of a cell.
fn ticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A resource of the README table (`JobsTable`, `InputBucket/{RejectsPrefix}*`) as its ARN.
/// [`resolve`], where `AdditionalRecordsTables` stands for every ARN of the stack's
/// `AdditionalRecordsTableArns` parameter (none when it is empty).
fn resolve_all(manifest: &Manifest, resource: &str) -> Option<Vec<String>> {
    if resource == ADDITIONAL_TABLES {
        return Some(additional_table_arns(manifest));
    }
    resolve(manifest, resource).map(|arn| vec![arn])
}

const ADDITIONAL_TABLES: &str = "AdditionalRecordsTables";

fn additional_table_arns(manifest: &Manifest) -> Vec<String> {
    manifest
        .parameter("AdditionalRecordsTableArns")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|arn| !arn.is_empty())
        .map(str::to_owned)
        .collect()
}

fn resolve(manifest: &Manifest, resource: &str) -> Option<String> {
    let (id, path) = match resource.split_once('/') {
        Some((id, path)) => (id, Some(path)),
        None => (resource, None),
    };
    let mut arn = if id == "InputBucket" {
        format!("arn:aws:s3:::{}", manifest.input_bucket)
    } else if let Some(queue) = manifest.queues.get(id) {
        queue.arn.clone()
    } else if let Some(table) = manifest.outputs.get(&format!("{id}Name")) {
        let account = manifest
            .queues
            .values()
            .next()?
            .arn
            .split(':')
            .nth(4)?
            .to_owned();
        format!(
            "arn:aws:dynamodb:{}:{account}:table/{table}",
            manifest.region
        )
    } else {
        return None;
    };
    if let Some(path) = path {
        let mut path = path.to_owned();
        for (name, value) in &manifest.parameters {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        arn = format!("{arn}/{path}");
    }
    Some(arn)
}

/// Every (action, resource) an inline policy of the function's role allows.
fn granted(f: &DeployedFunction) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for document in f.policies.inline.values() {
        for statement in as_list(&document["Statement"]) {
            if statement["Effect"] != "Allow" {
                continue;
            }
            for action in strings(&statement["Action"]) {
                for resource in strings(&statement["Resource"]) {
                    pairs.insert((action.clone(), resource));
                }
            }
        }
    }
    pairs
}

fn as_list(value: &serde_json::Value) -> Vec<serde_json::Value> {
    match value {
        serde_json::Value::Array(items) => items.clone(),
        serde_json::Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

fn strings(value: &serde_json::Value) -> BTreeSet<String> {
    as_list(value)
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests;
