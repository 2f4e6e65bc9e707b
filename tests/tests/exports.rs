//! A DynamoDB S3 export (full, written in AWS's documented layout by the test's generator,
//! since no local server has the export API) applied to an existing table on dynalite that
//! holds unrelated items: copied under another prefix than its manifests name, with an empty
//! partition, every item lands as it is and reads back equal, the unrelated item untouched;
//! a manifest whose itemCount disagrees ends the job COMPLETED_WITH_ERRORS; a corrupt line
//! is rejected alone; an incremental export applied after the full one (modifications,
//! deletions, an insert) leaves the source's final state.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::ScalarAttributeType;
use devkit::provision::ensure_typed_table;
use integration_tests::{TestEnv, default_servers};
use shared::aws::attribute_values::{from_sdk, to_sdk};
use shared::contract::messages::JobRequest;
use shared::ingest::export_writer::{ExportSpec, write_export};
use shared::ingest::item::{Item, Value};
use shared::job::model::{Job, JobStatus};

const EXPORT_ID: &str = "01764583200000-abcd1234";

fn item(id: &str, n: u32) -> Item {
    Item::from_iter([
        ("id".to_owned(), Value::S(id.into())),
        ("n".to_owned(), Value::N(format!("{n}.5"))),
        ("b".to_owned(), Value::B(vec![0xff, n as u8])),
        (
            "ns".to_owned(),
            Value::Ns(vec!["1".into(), format!("{}", n + 2)]),
        ),
        ("bs".to_owned(), Value::Bs(vec![vec![1], vec![2, n as u8]])),
        (
            "m".to_owned(),
            Value::M(BTreeMap::from([
                (
                    "l".to_owned(),
                    Value::L(vec![Value::Null, Value::Bool(true)]),
                ),
                ("s".to_owned(), Value::S(String::new())),
            ])),
        ),
    ])
}

fn unrelated() -> Item {
    Item::from_iter([
        ("id".to_owned(), Value::S("unrelated".into())),
        ("n".to_owned(), Value::N("1".into())),
        ("note".to_owned(), Value::S("left alone".into())),
    ])
}

/// The export of `spec` uploaded under `copy/` (its manifests name `exports/2026/` in
/// another bucket), loaded into a fresh (id S, n N) table holding [`unrelated`].
async fn apply(env: &TestEnv, name: &str, spec: &ExportSpec) -> (Job, Vec<Item>) {
    let table = format!("{}-{name}", env.resources.bucket);
    ensure_typed_table(
        &env.clients.dynamodb,
        &table,
        ("id", ScalarAttributeType::S),
        Some(("n", ScalarAttributeType::N)),
    )
    .await
    .unwrap();
    (env.clients.dynamodb.put_item())
        .table_name(&table)
        .set_item(Some(to_sdk(unrelated())))
        .send()
        .await
        .unwrap();
    load(env, &table, name, name, spec).await
}

/// Uploads `spec` under `copy/{folder}/` and applies it to `table` as job `name`.
async fn load(
    env: &TestEnv,
    table: &str,
    folder: &str,
    name: &str,
    spec: &ExportSpec,
) -> (Job, Vec<Item>) {
    for (key, bytes) in write_export(spec).await {
        let moved = key.replacen("exports/2026/", &format!("copy/{folder}/"), 1);
        env.put_bytes(&moved, bytes).await;
    }
    let request = JobRequest {
        job_id: Some(name.into()),
        export: Some(format!("copy/{folder}/AWSDynamoDB/{}/", spec.export_id)),
        ..JobRequest::new(&env.resources.bucket, "")
    };
    let mut pipeline = env.pipeline();
    pipeline.records_table(table);
    let job = pipeline.run(request, |_| {}).await.unwrap();
    let scanned = (env.clients.dynamodb.scan())
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let items = scanned.items.unwrap_or_default().into_iter().map(from_sdk);
    (job, sorted(items.collect()))
}

fn sorted(mut items: Vec<Item>) -> Vec<Item> {
    // Sets come back in the server's order: compare them as sets.
    for item in &mut items {
        for value in item.values_mut() {
            match value {
                Value::Ss(set) | Value::Ns(set) => set.sort(),
                Value::Bs(set) => set.sort(),
                _ => {}
            }
        }
    }
    items.sort_by_key(|i| format!("{:?}{:?}", i["id"], i["n"]));
    items
}

fn spec() -> ExportSpec {
    ExportSpec {
        bucket: "source-bucket".into(),
        prefix: Some("exports/2026".into()),
        export_id: EXPORT_ID.into(),
        files: vec![
            (0..30).map(|n| item("a", n)).collect(),
            vec![],
            (0..20).map(|n| item("b", n)).collect(),
        ],
        ..ExportSpec::default()
    }
}

#[tokio::test]
async fn a_moved_full_export_lands_item_for_item_beside_the_table_s_unrelated_items() {
    let env = TestEnv::new(default_servers(), "exports").await;
    let spec = spec();
    let (job, items) = apply(&env, "full", &spec).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.totals.files, job.totals.rows_written), (3, 50));
    let mut want = spec.files.concat();
    want.push(unrelated());
    assert_eq!(items, sorted(want));

    // A manifest claiming 21 items for a file of 20, and a corrupt line in another.
    let wrong = ExportSpec {
        claimed_count: Some((2, 21)),
        extra_lines: vec![(
            0,
            "{\"Item\":{\"id\":{\"S\":\"a\"},\"n\":{\"Q\":\"1\"}}}".into(),
        )],
        ..spec
    };
    let (job, items) = apply(&env, "wrong", &wrong).await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors, "{job:?}");
    assert_eq!(job.totals.files_miscounted, 1);
    assert!(
        job.error.as_deref().unwrap().contains("itemCount"),
        "{job:?}"
    );
    assert_eq!((job.totals.rows_written, job.totals.rows_rejected), (50, 1));
    assert_eq!(items.len(), 51);
    let rejects = env.reject_records(&job).await;
    assert!(
        rejects
            .iter()
            .any(|r| r.line == 31 && r.reason.contains("unknown type descriptor \"Q\"")),
        "{rejects:?}"
    );
    assert!(
        rejects.iter().any(|r| r
            .reason
            .contains("holds 20 items and its export's manifest says 21")),
        "{rejects:?}"
    );
}

#[tokio::test]
async fn an_incremental_export_after_the_full_one_leaves_the_source_s_final_state() {
    let env = TestEnv::new(default_servers(), "incremental").await;
    let spec = spec();
    let (job, _) = apply(&env, "base", &spec).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let key = |id: &str, n: u32| {
        Item::from_iter([
            ("id".to_owned(), Value::S(id.into())),
            ("n".to_owned(), Value::N(format!("{n}.5"))),
        ])
    };
    let mut modified = item("a", 1);
    modified.insert("note".into(), Value::S("changed".into()));
    modified.remove("bs");
    let changes = ExportSpec {
        export_id: "01764586800000-ef567890".into(),
        changes: Some(vec![
            vec![(key("a", 1), Some(modified.clone())), (key("a", 2), None)],
            vec![(key("c", 9), Some(item("c", 9))), (key("b", 0), None)],
        ]),
        ..spec.clone()
    };
    let table = format!("{}-base", env.resources.bucket);
    let (job, items) = load(&env, &table, "base", "incr", &changes).await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.totals.rows_written, 4);
    let mut want: Vec<Item> = spec.files.concat();
    want.retain(|i| i != &item("a", 2) && i != &item("b", 0));
    for existing in want.iter_mut().filter(|i| **i == item("a", 1)) {
        *existing = modified.clone();
    }
    want.push(item("c", 9));
    want.push(unrelated());
    assert_eq!(items, sorted(want));
}
