//! Loading into the user's own table on the local servers: the table's key schema, read with
//! DescribeTable when the job starts, is the truth; a job whose keys it would refuse is refused
//! at the request, before any job item or batch exists.

use aws_sdk_dynamodb::types::ScalarAttributeType;
use devkit::provision::ensure_typed_table;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::coordinator::{Coordinator, CoordinatorError};
use shared::contract::messages::{BatchMessage, JobRequest};
use shared::port::ledger::Ledger;

#[tokio::test]
async fn a_job_whose_key_types_differ_from_the_table_s_is_refused_with_nothing_created() {
    let env = TestEnv::new(default_servers(), "key-types").await;
    let spec = SampleSpec::new("in/", 2, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 2, || {})
        .await
        .unwrap();
    // The user's table: the same key names, but the sort key is a number (epoch seconds).
    let table = format!("{}-numeric", env.resources.bucket);
    ensure_typed_table(
        &env.clients.dynamodb,
        &table,
        ("measure_point", ScalarAttributeType::S),
        Some(("timestamp", ScalarAttributeType::N)),
    )
    .await
    .unwrap();
    let mut config = env.pipeline().coordinator;
    config.tables.records = table.clone();
    let coordinator = Coordinator::on_aws(&env.clients, config);
    let request = JobRequest {
        job_id: Some("typed-keys".into()),
        ..JobRequest::new(&env.resources.bucket, "in/")
    };

    let refused = coordinator.start_job(request.clone(), None).await;
    let Err(CoordinatorError::InvalidRequest(reason)) = &refused else {
        panic!("not refused: {refused:?}");
    };
    assert_eq!(
        reason,
        &format!(
            "table {table}'s sort key \"timestamp\" is of type N (number), and the job's schema produces S (string) for it"
        )
    );
    assert!(
        env.ledger()
            .get(&"typed-keys".into())
            .await
            .unwrap()
            .is_none(),
        "no job item"
    );
    let queued: Vec<BatchMessage> = env.drain(&env.provisioned.queue_url).await;
    assert!(queued.is_empty(), "no batch: {queued:?}");

    // A table that does not exist is refused the same way, naming DescribeTable.
    let mut config = env.pipeline().coordinator;
    config.tables.records = format!("{}-absent", env.resources.bucket);
    let absent = Coordinator::on_aws(&env.clients, config)
        .start_job(request.clone(), None)
        .await
        .unwrap_err();
    assert!(matches!(absent, CoordinatorError::Table(_)), "{absent:?}");
    let reason = shared::report(&absent);
    assert!(reason.contains("DescribeTable"), "{reason}");

    // The stack's own table, keyed as the schema writes: the same request starts.
    let started = Coordinator::on_aws(&env.clients, env.pipeline().coordinator)
        .start_job(request, None)
        .await
        .unwrap();
    assert_eq!(started.total_batches, 1);
}
