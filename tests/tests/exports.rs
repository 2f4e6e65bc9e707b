//! A DynamoDB S3 export (full, written in AWS's documented layout by the test's generator,
//! since no local server has the export API) applied to an existing table on dynalite that
//! holds unrelated items: copied under another prefix than its manifests name, with an empty
//! partition, every item lands as it is and reads back equal, the unrelated item untouched;
//! a manifest whose itemCount disagrees ends the job COMPLETED_WITH_ERRORS; a corrupt line
//! is rejected alone; an incremental export applied after the full one (modifications,
//! deletions, an insert) leaves the source's final state; a chain (a full export and two
//! incrementals from a source table built here) applied in one job leaves the source's
//! final state item for item, through the pipeline and with its batches driven by hand,
//! reversed, repeated, and older phases' duplicates delivered after later phases started
//! (`docs/exports.md`); a chain with a gap is refused before anything is written.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::ScalarAttributeType;
use devkit::provision::ensure_typed_table;
use integration_tests::{TestEnv, default_servers};
use shared::aws::attribute_values::{from_sdk, to_sdk};
use shared::contract::messages::JobRequest;
use shared::fan_in::Ledger as _;
use shared::ingest::export_writer::{ExportSpec, SourceTable, write_export};
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
        export: Some(format!("copy/{folder}/AWSDynamoDB/{}/", spec.export_id).into()),
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

const FULL: &str = "01764583200000-aaaa0000";
const FIRST: &str = "01764586800000-bbbb1111";
const SECOND: &str = "01764590400000-cccc2222";
/// The tests' fence wait (`EXPORT_FENCE_SECONDS`): their workers finish in well under it.
const FENCE: std::time::Duration = std::time::Duration::from_secs(1);

fn noted(id: &str, n: u32, note: &str) -> Item {
    let mut item = item(id, n);
    item.insert("note".into(), Value::S(note.into()));
    item
}

fn key_of(id: &str, n: u32) -> Item {
    Item::from_iter([
        ("id".to_owned(), Value::S(id.into())),
        ("n".to_owned(), Value::N(format!("{n}.5"))),
    ])
}

fn chain_base(export_id: &str) -> ExportSpec {
    ExportSpec {
        bucket: "source-bucket".into(),
        prefix: Some("exports/2026".into()),
        export_id: export_id.into(),
        ..ExportSpec::default()
    }
}

/// A source table changed between its exports: a full export at 10:00 (one empty data
/// file), 10:00-11:00 (modifications, deletions, inserts: a2 deleted) and 11:00-12:00 (a2
/// created again with another image, a1 modified again, c9 inserted before deleted, list,
/// map, set and binary values changed). Returns the exports and the source's final items.
fn source_chain() -> (Vec<ExportSpec>, Vec<Item>) {
    let mut source = SourceTable::new(&["id", "n"]);
    for n in 0..12 {
        source.put(noted("a", n, "v0"));
    }
    for n in 0..5 {
        source.put(noted("b", n, "v0"));
    }
    let full = ExportSpec {
        export_time: Some("2026-12-01T10:00:00.000Z".into()),
        ..source.full_export(chain_base(FULL), 18)
    };
    source.put(noted("a", 1, "v1"));
    source.delete(&key_of("a", 2));
    source.delete(&key_of("b", 0));
    source.put(noted("c", 9, "v1"));
    let mut listed = noted("b", 3, "v1");
    listed.insert(
        "m".into(),
        Value::M(BTreeMap::from([(
            "l".to_owned(),
            Value::L(vec![Value::S("x".into()), Value::M(BTreeMap::new())]),
        )])),
    );
    source.put(listed);
    let first = ExportSpec {
        window: Some((
            "2026-12-01T10:00:00.000Z".into(),
            "2026-12-01T11:00:00.000Z".into(),
        )),
        ..source.incremental_export(chain_base(FIRST), 3)
    };
    let mut again = noted("a", 2, "again");
    again.insert("bs".into(), Value::Bs(vec![vec![9], vec![8, 7]]));
    again.remove("ns");
    source.put(again);
    source.put(noted("a", 1, "v2"));
    source.delete(&key_of("c", 9));
    source.put(noted("d", 4, "v2"));
    source.delete(&key_of("a", 7));
    let first_end = "2026-12-01T11:00:00.000Z";
    let second = ExportSpec {
        window: Some((first_end.into(), "2026-12-01T12:00:00.000Z".into())),
        ..source.incremental_export(chain_base(SECOND), 3)
    };
    (vec![full, first, second], source.items())
}

/// A fresh (id S, n N) table holding [`unrelated`], and the chain uploaded under
/// `copy/{folder}/` (its manifests name `exports/2026/` in another bucket).
async fn chain_table(env: &TestEnv, name: &str, exports: &[ExportSpec]) -> String {
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
    for spec in exports {
        for (key, bytes) in write_export(spec).await {
            let moved = key.replacen("exports/2026/", &format!("copy/{name}/"), 1);
            env.put_bytes(&moved, bytes).await;
        }
    }
    table
}

async fn scan(env: &TestEnv, table: &str) -> Vec<Item> {
    let scanned = (env.clients.dynamodb.scan())
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    sorted(
        scanned
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_sdk)
            .collect(),
    )
}

fn chain_request(job_id: &str, export: shared::contract::messages::ExportNames) -> JobRequest {
    JobRequest {
        job_id: Some(job_id.into()),
        export: Some(export),
        ..JobRequest::new("", "")
    }
}

#[tokio::test]
async fn a_chain_of_a_full_and_two_incremental_exports_leaves_the_source_s_final_state() {
    let started = std::time::Instant::now();
    let env = TestEnv::unhurried(default_servers(), "chain").await;
    let (exports, final_items) = source_chain();
    let table = chain_table(&env, "chain", &exports).await;
    // The chain named by its folder: found and ordered by time.
    let request = JobRequest {
        bucket: env.resources.bucket.clone(),
        ..chain_request("chain", "copy/chain/".into())
    };
    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    pipeline.coordinator.export_fence = FENCE;
    pipeline.coordinator.batch_size = 4;
    let job = pipeline.run(request, |_| {}).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.export_phase, 2);
    let mut want = final_items;
    want.push(unrelated());
    assert_eq!(scan(&env, &table).await, sorted(want));
    eprintln!("chain through the pipeline: {:?}", started.elapsed());
}

/// Receives every batch message waiting in the work queue.
async fn received(env: &TestEnv) -> Vec<shared::contract::messages::BatchMessage> {
    env.drain(&env.provisioned.queue_url).await
}

/// Waits (at most 10 s) for the control queue's phase steps (the delayed one included).
async fn steps(env: &TestEnv) -> Vec<shared::contract::messages::ExportPhaseStep> {
    for _ in 0..10 {
        let found: Vec<shared::contract::messages::ExportPhaseStep> =
            env.drain(&env.provisioned.control_queue_url).await;
        if !found.is_empty() {
            return found;
        }
    }
    panic!("no phase step on the control queue");
}

#[tokio::test]
async fn a_chain_delivered_reversed_and_repeated_with_late_older_duplicates_ends_equal_to_the_source()
 {
    use shared::app::coordinator::PhaseStep;
    let started = std::time::Instant::now();
    let env = TestEnv::unhurried(default_servers(), "chain-by-hand").await;
    let (exports, final_items) = source_chain();
    let table = chain_table(&env, "by-hand", &exports).await;
    let mut pipeline = env.pipeline();
    pipeline.records_table(&table);
    let coordinator = env.coordinator(shared::app::config::CoordinatorConfig {
        export_fence: FENCE,
        batch_size: 2,
        ..pipeline.coordinator.clone()
    });
    let worker = env.worker(pipeline.worker.clone());
    let deliver = |batch: &shared::contract::messages::BatchMessage| {
        let batch = batch.clone();
        let worker = &worker;
        async move { worker.process(&batch, None).await.unwrap() }
    };
    let names = [FULL, FIRST, SECOND].map(|id| format!("copy/by-hand/AWSDynamoDB/{id}/"));
    let request = JobRequest {
        bucket: env.resources.bucket.clone(),
        ..chain_request("by-hand", names.to_vec().into())
    };
    coordinator.start_job(request, None).await.unwrap();
    let phase = |batches: &[shared::contract::messages::BatchMessage]| {
        let phases = batches.iter().map(|b| b.work.export().unwrap().phase);
        phases.collect::<std::collections::BTreeSet<_>>()
    };
    let mut history: Vec<Vec<shared::contract::messages::BatchMessage>> = Vec::new();
    let mut batches = received(&env).await;
    for k in 0..3u32 {
        assert_eq!(
            phase(&batches),
            [k].into(),
            "only phase {k} is on the queue"
        );
        // Reversed, then every other one again.
        for batch in batches.iter().rev() {
            deliver(batch).await;
        }
        for batch in batches.iter().step_by(2) {
            deliver(batch).await;
        }
        // Every earlier phase's batches once more, after this phase started: the fence.
        for older in history.iter().flatten() {
            deliver(older).await;
        }
        if k == 1 {
            // The first incremental landed, not the full export's images again.
            let items = scan(&env, &table).await;
            let a1 = items
                .iter()
                .find(|i| i["n"] == Value::N("1.5".into()) && i["id"] == Value::S("a".into()));
            assert_eq!(a1.map(|i| i["note"].clone()), Some(Value::S("v1".into())));
        }
        history.push(std::mem::take(&mut batches));
        if k == 2 {
            break;
        }
        let woken = steps(&env).await;
        assert_eq!(woken[0].export_phase, k + 1, "{woken:?}");
        let fenced = coordinator.export_phase(&woken[0]).await.unwrap();
        assert_eq!(fenced, PhaseStep::Fenced { wait: FENCE });
        assert!(
            received(&env).await.is_empty(),
            "phase {} waits for the fence",
            k + 1
        );
        // The delayed step, then the phase's batches.
        for step in steps(&env).await {
            coordinator.export_phase(&step).await.unwrap();
        }
        batches = received(&env).await;
    }
    let job = env.ledger().get(&"by-hand".into()).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let mut want = final_items;
    want.push(unrelated());
    assert_eq!(scan(&env, &table).await, sorted(want));

    // A gap (the full export, then the second incremental): refused, nothing written.
    let request = JobRequest {
        bucket: env.resources.bucket.clone(),
        ..chain_request("gap", vec![names[0].clone(), names[2].clone()].into())
    };
    let refused = coordinator
        .start_job(request, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("a gap") && refused.contains(SECOND) && refused.contains(FULL),
        "{refused}"
    );
    assert!(
        refused.contains("2026-12-01T10:00:00.000Z")
            && refused.contains("2026-12-01T11:00:00.000Z"),
        "{refused}"
    );
    assert!(env.ledger().get(&"gap".into()).await.unwrap().is_none());
    assert!(received(&env).await.is_empty());
    eprintln!("chain by hand: {:?}", started.elapsed());
}
