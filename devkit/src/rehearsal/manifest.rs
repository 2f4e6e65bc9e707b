//! The deployed stacks as `tools/rehearsal/deploy.py` read them back through the AWS APIs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};

/// What deploy.py prints: the marker-mode stack, then (when asked for) the object-mode one.
#[derive(Debug, Clone, Deserialize)]
pub struct Deployment {
    pub stacks: Vec<Manifest>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub stack: String,
    pub endpoint: String,
    pub region: String,
    pub resource_count: usize,
    /// Logical ids of the DynamoDB tables the stack created.
    #[serde(default)]
    pub created_tables: Vec<String>,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub admin: Credentials,
    pub input_bucket: String,
    pub bucket_notification: serde_json::Value,
    pub bucket_versioning: Option<String>,
    /// By logical id.
    pub functions: BTreeMap<String, DeployedFunction>,
    pub credentials: BTreeMap<String, Credentials>,
    /// By logical id.
    pub queues: BTreeMap<String, DeployedQueue>,
    pub schedules: Vec<Schedule>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeployedFunction {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
    /// The binary the template builds (`BuildProperties.Binary`).
    pub binary: String,
    /// Unpacked from the code the deployed function holds.
    pub bootstrap: PathBuf,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub architectures: Vec<String>,
    pub timeout_seconds: u64,
    pub memory_mb: u64,
    #[serde(deserialize_with = "strings")]
    pub environment: BTreeMap<String, String>,
    pub role_arn: String,
    pub trust_policy: serde_json::Value,
    pub policies: RolePolicies,
    pub event_source_mappings: Vec<Mapping>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RolePolicies {
    pub inline: BTreeMap<String, serde_json::Value>,
    pub managed: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Mapping {
    pub uuid: String,
    pub event_source_arn: String,
    pub batch_size: Option<u32>,
    pub maximum_batching_window_seconds: u64,
    pub maximum_concurrency: Option<u32>,
    pub function_response_types: Vec<String>,
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeployedQueue {
    pub url: String,
    pub arn: String,
    pub visibility_timeout_seconds: u64,
    /// MessageRetentionPeriod: how long an unreceived message is kept.
    pub retention_seconds: u64,
    pub redrive: Option<Redrive>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Redrive {
    pub dead_letter_target_arn: String,
    pub max_receive_count: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Schedule {
    pub rule: String,
    pub expression: Option<String>,
    pub state: Option<String>,
    pub target_arn: String,
    pub input: Option<String>,
}

impl Manifest {
    pub fn function_by_binary(&self, binary: &str) -> Option<&DeployedFunction> {
        self.functions.values().find(|f| f.binary == binary)
    }

    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    pub fn queue_by_arn(&self, arn: &str) -> Option<(&str, &DeployedQueue)> {
        self.queues
            .iter()
            .find(|(_, q)| q.arn == arn)
            .map(|(name, q)| (name.as_str(), q))
    }
}

/// Lambda's environment is strings; moto keeps numbers as numbers.
fn strings<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect())
}
