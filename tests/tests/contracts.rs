//! Each port's contract suite against its AWS adapter on the local servers: the same suites
//! the in-memory doubles pass in the unit tests (`shared::port::conformance`).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, KeySchemaElement, KeyType, ProvisionedThroughput, ScalarAttributeType,
};
use integration_tests::{TestEnv, default_servers, moto_servers};
use shared::aws::{DynamoLedger, DynamoTable, S3Objects, SqsQueues};
use shared::fan_in;
use shared::port::conformance;
use shared::port::table::{
    Capacity, KeyAttribute, KeyNames, KeyType as KeyKind, RecordTable, TableKey,
};

/// dynalite, which locks per key as DynamoDB does.
#[tokio::test]
async fn the_dynamodb_ledger_keeps_the_ledger_contract() {
    let env = TestEnv::new(default_servers(), "ledger-contract").await;
    let ledger = DynamoLedger::new(env.clients.dynamodb.clone(), &env.resources.tables.jobs);
    fan_in::conformance::ledger::run(&ledger, "contract").await;
    fan_in::conformance::ledger::run_concurrent(&ledger, "contract").await;
}

/// moto's DynamoDB too: the reference server for conditional expressions, so every
/// primitive's conditions are checked there; the crash matrix (the protocol above them)
/// runs on dynalite above.
#[tokio::test]
async fn the_dynamodb_ledger_keeps_the_ledger_contract_on_moto() {
    let env = TestEnv::new(moto_servers(), "ledger-contract-moto").await;
    let ledger = DynamoLedger::new(env.clients.dynamodb.clone(), &env.resources.tables.jobs);
    fan_in::conformance::ledger::run_without_crash_matrix(&ledger, "contract").await;
}

/// s3s-fs ignores If-Match, so that check runs on moto below.
#[tokio::test]
async fn the_s3_store_keeps_the_object_contract() {
    let env = TestEnv::new(default_servers(), "objects-contract").await;
    let store = S3Objects::new(env.clients.s3.clone());
    conformance::objects::run(&store, &env.resources.bucket, "contract/", false).await;
}

#[tokio::test]
async fn the_s3_store_keeps_the_object_contract_with_if_match_on_moto() {
    let env = TestEnv::new(moto_servers(), "objects-contract-moto").await;
    let store = S3Objects::new(env.clients.s3.clone());
    conformance::objects::run(&store, &env.resources.bucket, "contract/", true).await;
}

#[tokio::test]
async fn the_sqs_queues_keep_the_queue_contract() {
    let env = TestEnv::new(default_servers(), "queue-contract").await;
    let queues = SqsQueues::new(env.clients.sqs.clone());
    // The completion queue: nothing else of this test's sends there.
    conformance::queue::run(&queues, &env.provisioned.completion_queue_url).await;
}

/// dynalite for every write a job's mode can make (moto below: the reference for
/// conditional and update expressions).
#[tokio::test]
async fn the_dynamodb_table_keeps_the_record_table_contract() {
    let env = TestEnv::new(default_servers(), "table-contract").await;
    let table = DynamoTable::new(env.clients.dynamodb.clone());
    let key = KeyNames::new("measure_point", Some("timestamp"));
    conformance::table::run(&table, &env.resources.tables.records, &key, true).await;
    // The test tables are PAY_PER_REQUEST without a maximum, keyed by two strings.
    let described = table.describe(&env.resources.tables.records).await.unwrap();
    assert_eq!(
        described.capacity,
        Capacity::OnDemand {
            max_write_units: None
        }
    );
    assert_eq!(described.key, sensor_key());
    // A provisioned table reports its write capacity units (what a fraction is of).
    let provisioned = format!("{}-provisioned", env.resources.tables.records);
    env.clients
        .dynamodb
        .create_table()
        .table_name(&provisioned)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .provisioned_throughput(
            ProvisionedThroughput::builder()
                .read_capacity_units(5)
                .write_capacity_units(7)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let described = table.describe(&provisioned).await.unwrap();
    assert_eq!(
        described.capacity,
        Capacity::Provisioned { write_units: 7.0 }
    );
    assert_eq!(
        described.key,
        TableKey {
            partition: KeyAttribute::new("pk", KeyKind::S),
            sort: None
        }
    );
    // Key types as declared: a number sort key, a binary partition key.
    let typed = format!("{}-typed", env.resources.tables.records);
    devkit::provision::ensure_typed_table(
        &env.clients.dynamodb,
        &typed,
        ("bytes", ScalarAttributeType::B),
        Some(("seq", ScalarAttributeType::N)),
    )
    .await
    .unwrap();
    assert_eq!(
        table.describe(&typed).await.unwrap().key,
        TableKey {
            partition: KeyAttribute::new("bytes", KeyKind::B),
            sort: Some(KeyAttribute::new("seq", KeyKind::N)),
        }
    );
}

fn sensor_key() -> TableKey {
    TableKey {
        partition: KeyAttribute::new("measure_point", KeyKind::S),
        sort: Some(KeyAttribute::new("timestamp", KeyKind::S)),
    }
}

#[tokio::test]
async fn the_dynamodb_table_keeps_the_record_table_contract_on_moto() {
    let env = TestEnv::new(moto_servers(), "table-contract-moto").await;
    let table = DynamoTable::new(env.clients.dynamodb.clone());
    let key = KeyNames::new("measure_point", Some("timestamp"));
    // moto stores numbers DynamoDB refuses (1e200): that part runs on dynalite above.
    conformance::table::run(&table, &env.resources.tables.records, &key, false).await;
    let described = table.describe(&env.resources.tables.records).await.unwrap();
    assert_eq!(
        described.capacity,
        Capacity::OnDemand {
            max_write_units: None
        }
    );
    assert_eq!(described.key, sensor_key());
}
