//! Identifiers that travel between functions. Each is its own type so that a job id, a batch
//! number and a listing run cannot be swapped for a neighbour of the same primitive type.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A job's id: the ledger key, the rejects report folder, the completion event's dedup key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh id: time-ordered, unique.
    pub fn fresh() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether a requested id can be used: `#` is reserved for the ledger's per-shard and
    /// per-batch items (`{job}#s{k}`, `{job}#b{n}`), so an id holding it could collide with
    /// another job's items.
    pub fn check(&self) -> Result<(), &'static str> {
        match self.0.as_str() {
            "" => Err("job_id is empty"),
            id if id.contains('#') => Err("job_id may not contain '#' (reserved by the ledger)"),
            id if id.len() > 512 => Err("job_id is longer than 512 bytes"),
            _ => Ok(()),
        }
    }
}

/// A batch's number within its job: 0-based, unique, the unit of exactly-once counting.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct BatchNo(pub u64);

impl BatchNo {
    pub fn get(self) -> u64 {
        self.0
    }
}

/// One coordinator run's claim on a job's listing (the listing owner).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(String);

impl RunId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// A fresh id, unique to this run.
    pub fn fresh() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_inner {
    ($($id:ty),*) => {$(
        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}
display_inner!(JobId, BatchNo, RunId);

impl From<&str> for JobId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<&JobId> for JobId {
    fn from(id: &JobId) -> Self {
        id.clone()
    }
}

impl From<String> for JobId {
    fn from(id: String) -> Self {
        Self(id)
    }
}

impl From<&str> for RunId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl AsRef<str> for JobId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for JobId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for JobId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_wire_form() {
        let json =
            serde_json::to_string(&(JobId::new("j-1"), BatchNo(7), RunId::new("r"))).unwrap();
        assert_eq!(json, r#"["j-1",7,"r"]"#);
        let back: (JobId, BatchNo) = serde_json::from_str(r#"["j-1",7]"#).unwrap();
        assert_eq!(back, (JobId::new("j-1"), BatchNo(7)));
    }
}
