//! The one place that names the AWS SDK: clients built once per cold start, the one error
//! classifier, and the adapters behind every port. A test over the sources
//! (`tests/layering.rs`) keeps `aws_sdk_*` out of every other layer.

mod clients;
mod errors;
pub mod item;
mod ledger;
mod ledger_parts;
mod s3;
mod sqs;
mod table;
mod update;

use std::sync::Arc;

pub use clients::{Clients, Endpoints};
pub use ledger::DynamoLedger;
pub use ledger_parts::item_size;
pub use s3::S3Objects;
pub use sqs::SqsQueues;
pub use table::DynamoTable;

use crate::limiter::ThrottleCounter;
use crate::port::ledger::Ledger;
use crate::port::objects::ObjectStore;
use crate::port::queue::Queues;
use crate::port::table::RecordTable;

/// Every port, by its AWS adapter (or, in tests, its double).
#[derive(Clone)]
pub struct Adapters {
    pub ledger: Arc<dyn Ledger>,
    pub objects: Arc<dyn ObjectStore>,
    pub queues: Arc<dyn Queues>,
    pub records: Arc<dyn RecordTable>,
    /// S3 throttling replies seen, retried or not: the worker's GET limit reads it.
    pub s3_throttles: Arc<ThrottleCounter>,
}

impl Adapters {
    /// The AWS adapters over `clients`, the ledger on table `jobs_table`.
    pub fn aws(clients: &Clients, jobs_table: &str) -> Self {
        Self {
            ledger: Arc::new(DynamoLedger::new(clients.dynamodb.clone(), jobs_table)),
            objects: Arc::new(S3Objects::new(clients.s3.clone())),
            queues: Arc::new(SqsQueues::new(clients.sqs.clone())),
            records: Arc::new(DynamoTable::new(clients.dynamodb.clone())),
            s3_throttles: clients.s3_throttles.clone(),
        }
    }

    /// The in-memory doubles (a record table keyed by `measure_point` + `timestamp`, the
    /// default schema's key).
    pub fn memory() -> Self {
        use crate::port::memory::{MemoryLedger, MemoryObjects, MemoryQueues, MemoryTable};
        Self {
            ledger: Arc::new(MemoryLedger::new()),
            objects: Arc::new(MemoryObjects::new()),
            queues: Arc::new(MemoryQueues::new()),
            records: Arc::new(MemoryTable::new("measure_point", Some("timestamp"))),
            s3_throttles: Arc::default(),
        }
    }
}
