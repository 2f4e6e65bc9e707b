//! Loading into the user's own table on the local servers: the table's key schema, read with
//! DescribeTable when the job starts, is the truth (a job whose keys it would refuse is refused
//! at the request, before any job item or batch exists); number and binary keys, and a row of
//! every DynamoDB type, land as typed and read back through the SDK as such, and so does a
//! single-table design's mapping (dynalite).

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ScalarAttributeType};
use devkit::provision::ensure_typed_table;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::coordinator::CoordinatorError;
use shared::contract::messages::{BatchMessage, JobRequest};
use shared::contract::schema::Schema;
use shared::fan_in::Ledger;
use shared::job::model::JobStatus;

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
    let coordinator = env.coordinator(config);
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
    let absent = env
        .coordinator(config)
        .start_job(request.clone(), None)
        .await
        .unwrap_err();
    assert!(matches!(absent, CoordinatorError::Table(_)), "{absent:?}");
    let reason = shared::report(&absent);
    assert!(reason.contains("DescribeTable"), "{reason}");

    // The stack's own table, keyed as the schema writes: the same request starts.
    let started = env
        .coordinator(env.pipeline().coordinator)
        .start_job(request, None)
        .await
        .unwrap();
    assert_eq!(started.listing.batches, 1);
}

/// The item of `table` under `key`, read back with a consistent read.
async fn stored(
    env: &TestEnv,
    table: &str,
    key: &[(&str, AttributeValue)],
) -> HashMap<String, AttributeValue> {
    let mut get = env
        .clients
        .dynamodb
        .get_item()
        .table_name(table)
        .consistent_read(true);
    for (name, value) in key {
        get = get.key(*name, value.clone());
    }
    get.send().await.unwrap().item.expect("the item is stored")
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.into())
}

#[tokio::test]
async fn a_row_of_every_type_lands_typed_in_a_table_keyed_by_numbers() {
    let env = TestEnv::new(default_servers(), "every-type").await;
    // The sample schema's table: `sku` and `listed_at` (epoch milliseconds) are numbers.
    let table = format!("{}-catalog", env.resources.bucket);
    ensure_typed_table(
        &env.clients.dynamodb,
        &table,
        ("sku", ScalarAttributeType::N),
        Some(("listed_at", ScalarAttributeType::N)),
    )
    .await
    .unwrap();
    let header = "sku,listed_at,title,price,in_stock,updated,checksum,thumbnail,tags,sizes,signatures,history,dimensions,extra";
    let row = r#"7,2025-11-26 02:56:13 UTC,Lamp,19.90,true,2025-11-27T08:00:00Z,9f86d081,,home|light,"[1, 2.5]","[""AAE="", ""/w==""]","[{""at"": 1, ""p"": 0.10}]","{""w"": 12, ""unit"": ""cm""}","#;
    // A second row with one bad value: rejected alone, the job still completes.
    let bad =
        r#"8,2025-11-26 02:56:14 UTC,Desk,5,false,2025-11-27T08:00:00Z,00,,a|a,"[1]",,,"{}","#;
    env.put("catalog/a.csv", &format!("{header}\n{row}\n{bad}\n"))
        .await;
    let mut request: JobRequest =
        serde_json::from_str(include_str!("../../events/prefix-job-every-type.json")).unwrap();
    request.bucket = env.resources.bucket.clone();
    request.tolerated_rejects = None;
    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    let job = pipeline.run(request, |_| {}).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (1, 1));
    let rejects = env.reject_records(&job).await;
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert!(
        rejects[0].line == 3
            && rejects[0].reason.contains("tags")
            && rejects[0].reason.contains("duplicate"),
        "{rejects:?}"
    );

    let item = stored(
        &env,
        &table,
        &[("sku", n("7")), ("listed_at", n("1764125773000"))],
    )
    .await;
    let want: HashMap<String, AttributeValue> = [
        ("sku", n("7")),
        ("listed_at", n("1764125773000")),
        ("title", AttributeValue::S("Lamp".into())),
        ("price", n("19.9")),
        ("in_stock", AttributeValue::Bool(true)),
        ("updated", AttributeValue::S("2025-11-27T08:00:00Z".into())),
        (
            "checksum",
            AttributeValue::B(Blob::new(vec![0x9f, 0x86, 0xd0, 0x81])),
        ),
        (
            "tags",
            AttributeValue::Ss(vec!["home".into(), "light".into()]),
        ),
        ("sizes", AttributeValue::Ns(vec!["1".into(), "2.5".into()])),
        (
            "signatures",
            AttributeValue::Bs(vec![Blob::new(vec![0, 1]), Blob::new(vec![0xff])]),
        ),
        (
            "history",
            AttributeValue::L(vec![AttributeValue::M(HashMap::from([
                ("at".to_owned(), n("1")),
                ("p".to_owned(), n("0.1")),
            ]))]),
        ),
        (
            "dimensions",
            AttributeValue::M(HashMap::from([
                ("w".to_owned(), n("12")),
                ("unit".to_owned(), AttributeValue::S("cm".into())),
            ])),
        ),
        ("extra", AttributeValue::Null(true)),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    // Sets come back in the server's order: compare them sorted.
    let sorted = |value: &AttributeValue| match value {
        AttributeValue::Ss(items) | AttributeValue::Ns(items) => {
            let mut items = items.clone();
            items.sort();
            AttributeValue::Ss(items)
        }
        AttributeValue::Bs(items) => {
            let mut items = items.clone();
            items.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            AttributeValue::Bs(items)
        }
        other => other.clone(),
    };
    assert_eq!(
        item.keys().collect::<std::collections::BTreeSet<_>>(),
        want.keys().collect(),
        "thumbnail (empty, omitted) is the only column not stored"
    );
    for (name, value) in &want {
        assert_eq!(sorted(&item[name]), sorted(value), "{name}");
    }
}

#[tokio::test]
async fn a_binary_key_is_written_as_the_bytes_its_hex_text_names() {
    let env = TestEnv::new(default_servers(), "binary-key").await;
    let table = format!("{}-blobs", env.resources.bucket);
    ensure_typed_table(
        &env.clients.dynamodb,
        &table,
        ("digest", ScalarAttributeType::B),
        None,
    )
    .await
    .unwrap();
    env.put(
        "blobs/a.csv",
        "digest,name\n00ff10,first\nDEADBEEF,second\n",
    )
    .await;
    let schema: Schema = serde_json::from_value(serde_json::json!({
        "columns": [
            {"name": "digest", "type": "binary", "encoding": "hex"},
            {"name": "name", "type": "string"},
        ],
        "partition_key": ["digest"],
        "key_types": "typed",
    }))
    .unwrap();
    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    let request = JobRequest {
        schema: Some(schema),
        ..JobRequest::new(&env.resources.bucket, "blobs/")
    };
    let job = pipeline.run(request, |_| {}).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 2);
    for (bytes, name) in [
        (vec![0x00, 0xff, 0x10], "first"),
        (vec![0xde, 0xad, 0xbe, 0xef], "second"),
    ] {
        let item = stored(
            &env,
            &table,
            &[("digest", AttributeValue::B(Blob::new(bytes)))],
        )
        .await;
        assert_eq!(item["name"], AttributeValue::S(name.into()));
    }
}

#[tokio::test]
async fn a_single_table_design_lands_attribute_by_attribute_through_the_sdk() {
    let env = TestEnv::new(default_servers(), "single-table").await;
    // The user's single-table design: string `PK` and `SK`.
    let table = format!("{}-single", env.resources.bucket);
    ensure_typed_table(
        &env.clients.dynamodb,
        &table,
        ("PK", ScalarAttributeType::S),
        Some(("SK", ScalarAttributeType::S)),
    )
    .await
    .unwrap();
    env.put(
        "sensors/a.csv",
        "timestamp,seq,temp,humidity,measure_point,note\n\
         2025-11-26 02:56:13 UTC,1,19.80,41,m-1,dropped\n\
         2025-11-26 02:56:13 UTC,2,20,,m-1,dropped\n\
         2025-11-26T02:56:13Z,1,21,40,m#1,dropped\n",
    )
    .await;
    let mut request: JobRequest =
        serde_json::from_str(include_str!("../../events/prefix-job-single-table.json")).unwrap();
    request.bucket = env.resources.bucket.clone();
    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    let job = pipeline.run(request, |_| {}).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (3, 0));

    let s = |text: &str| AttributeValue::S(text.into());
    let first = stored(
        &env,
        &table,
        &[("PK", s("SENSOR#m-1")), ("SK", s("2025-11-26T02:56:13Z#1"))],
    )
    .await;
    let want: HashMap<String, AttributeValue> = [
        ("PK", s("SENSOR#m-1")),
        ("SK", s("2025-11-26T02:56:13Z#1")),
        ("entity", s("reading")),
        ("version", n("1")),
        ("reading_time", s("2025-11-26T02:56:13Z")),
        ("temperature", n("19.8")),
        ("humidity", n("41")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    assert_eq!(
        first, want,
        "mapped attributes only: unmapped columns dropped"
    );
    // An empty nullable field leaves its attribute out; a `#` in a value gives its own key.
    let second = stored(
        &env,
        &table,
        &[("PK", s("SENSOR#m-1")), ("SK", s("2025-11-26T02:56:13Z#2"))],
    )
    .await;
    assert!(!second.contains_key("humidity"), "{second:?}");
    let hashed = stored(
        &env,
        &table,
        &[("PK", s("SENSOR#m#1")), ("SK", s("2025-11-26T02:56:13Z#1"))],
    )
    .await;
    assert_eq!(hashed["temperature"], n("21"));
    assert_eq!(env.count_items(&table).await, 3);

    // The stack's own table is keyed otherwise: the same job is refused at the start.
    let mut request: JobRequest =
        serde_json::from_str(include_str!("../../events/prefix-job-single-table.json")).unwrap();
    request.bucket = env.resources.bucket.clone();
    let refused = env
        .coordinator(env.pipeline().coordinator)
        .start_job(request, None)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("partition key is \"measure_point\""),
        "{refused}"
    );
}
