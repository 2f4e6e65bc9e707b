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

use crate::port::Adapters;

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
}
