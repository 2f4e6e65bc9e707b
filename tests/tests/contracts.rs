//! Each port's contract suite against its AWS adapter on the local servers: the same suites
//! the in-memory doubles pass in the unit tests (`shared::port::contract`).

use integration_tests::{TestEnv, default_servers, moto_servers};
use shared::aws::{DynamoLedger, DynamoTable, S3Objects, SqsQueues};
use shared::port::contract;
use shared::port::table::KeyNames;

/// dynalite, which locks per key as DynamoDB does.
#[tokio::test]
async fn the_dynamodb_ledger_keeps_the_ledger_contract() {
    let env = TestEnv::new(default_servers(), "ledger-contract").await;
    let ledger = DynamoLedger::new(env.clients.dynamodb.clone(), &env.resources.tables.jobs);
    contract::ledger::run(&ledger, "contract").await;
}

/// moto's DynamoDB too: the reference server for conditional expressions.
#[tokio::test]
async fn the_dynamodb_ledger_keeps_the_ledger_contract_on_moto() {
    let env = TestEnv::new(moto_servers(), "ledger-contract-moto").await;
    let ledger = DynamoLedger::new(env.clients.dynamodb.clone(), &env.resources.tables.jobs);
    contract::ledger::run(&ledger, "contract").await;
}

/// s3s-fs ignores If-Match, so that check runs on moto below.
#[tokio::test]
async fn the_s3_store_keeps_the_object_contract() {
    let env = TestEnv::new(default_servers(), "objects-contract").await;
    let store = S3Objects::new(env.clients.s3.clone());
    contract::objects::run(&store, &env.resources.bucket, "contract/", false).await;
}

#[tokio::test]
async fn the_s3_store_keeps_the_object_contract_with_if_match_on_moto() {
    let env = TestEnv::new(moto_servers(), "objects-contract-moto").await;
    let store = S3Objects::new(env.clients.s3.clone());
    contract::objects::run(&store, &env.resources.bucket, "contract/", true).await;
}

#[tokio::test]
async fn the_sqs_queues_keep_the_queue_contract() {
    let env = TestEnv::new(default_servers(), "queue-contract").await;
    let queues = SqsQueues::new(env.clients.sqs.clone());
    // The completion queue: nothing else of this test's sends there.
    contract::queue::run(&queues, &env.provisioned.completion_queue_url).await;
}

/// dynalite for every write a job's mode can make (moto below: the reference for
/// conditional and update expressions).
#[tokio::test]
async fn the_dynamodb_table_keeps_the_record_table_contract() {
    let env = TestEnv::new(default_servers(), "table-contract").await;
    let table = DynamoTable::new(env.clients.dynamodb.clone());
    let key = KeyNames::new("measure_point", Some("timestamp"));
    contract::table::run(&table, &env.resources.tables.records, &key, true).await;
}

#[tokio::test]
async fn the_dynamodb_table_keeps_the_record_table_contract_on_moto() {
    let env = TestEnv::new(moto_servers(), "table-contract-moto").await;
    let table = DynamoTable::new(env.clients.dynamodb.clone());
    let key = KeyNames::new("measure_point", Some("timestamp"));
    // moto stores numbers DynamoDB refuses (1e200): that part runs on dynalite above.
    contract::table::run(&table, &env.resources.tables.records, &key, false).await;
}
