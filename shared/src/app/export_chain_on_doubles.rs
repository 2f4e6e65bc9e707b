//! An export chain (a full export, then two incrementals) on the doubles
//! (`docs/exports.md`): phase k+1's batches are not sent before every batch of phase k is
//! counted; the phase step fences first and sends only after the fence wait; a late
//! duplicate of a phase-0 batch after the fence writes nothing; a gap is refused before
//! anything is written; a lost phase step is run again by the stuck check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::app::config::CoordinatorConfig;
use crate::app::coordinator::PhaseStep;
use crate::app::test_rig::Rig;
use crate::contract::messages::{BatchMessage, ControlMessage, ExportPhaseStep, JobRequest};
use crate::ingest::export_writer::{ExportSpec, SourceTable, write_export};
use crate::ingest::item::{Item, Value};
use crate::job::model::JobStatus;
use crate::port::memory::MemoryTable;
use crate::port::table::{KeyType, RecordTable};

const CONTROL: &str = "control";
const FENCE: Duration = Duration::from_millis(300);
const FULL: &str = "01764583200000-aaaa0000";
const FIRST: &str = "01764586800000-bbbb1111";
const SECOND: &str = "01764590400000-cccc2222";

fn item(id: &str, n: u32, note: &str) -> Item {
    Item::from_iter([
        ("id".to_owned(), Value::S(id.into())),
        ("n".to_owned(), Value::N(n.to_string())),
        ("note".to_owned(), Value::S(note.into())),
        ("b".to_owned(), Value::B(vec![0xff, n as u8])),
        (
            "ss".to_owned(),
            Value::Ss(vec!["x".into(), format!("y{n}")]),
        ),
        (
            "m".to_owned(),
            Value::M(BTreeMap::from([(
                "l".to_owned(),
                Value::L(vec![Value::Null, Value::N(n.to_string())]),
            )])),
        ),
    ])
}

fn key(id: &str, n: u32) -> Item {
    Item::from_iter([
        ("id".to_owned(), Value::S(id.into())),
        ("n".to_owned(), Value::N(n.to_string())),
    ])
}

fn base(export_id: &str) -> ExportSpec {
    ExportSpec {
        bucket: "source-bucket".into(),
        prefix: Some("exports/2026".into()),
        export_id: export_id.into(),
        ..ExportSpec::default()
    }
}

fn window(from: &str, to: &str) -> Option<(String, String)> {
    Some((
        format!("2026-12-01T{from}:00.000Z"),
        format!("2026-12-01T{to}:00.000Z"),
    ))
}

/// The chain's three exports from a source table, and the source's final items: a full
/// export at 10:00, then 10:00-11:00 and 11:00-12:00 (modifications, deletions, inserts,
/// and a2 deleted in the first and created again in the second).
fn chain() -> (Vec<ExportSpec>, Vec<Item>) {
    let mut source = SourceTable::new(&["id", "n"]);
    for n in 0..6 {
        source.put(item("a", n, "v0"));
    }
    for n in 0..3 {
        source.put(item("b", n, "v0"));
    }
    let full = ExportSpec {
        export_time: Some("2026-12-01T10:00:00.000Z".into()),
        ..source.full_export(base(FULL), 4)
    };
    source.put(item("a", 1, "v1"));
    source.delete(&key("a", 2));
    source.put(item("c", 9, "v1"));
    source.delete(&key("b", 0));
    let first = ExportSpec {
        window: window("10:00", "11:00"),
        ..source.incremental_export(base(FIRST), 2)
    };
    source.put(item("a", 2, "again"));
    source.put(item("a", 1, "v2"));
    source.delete(&key("c", 9));
    source.put(item("b", 1, "v2"));
    let second = ExportSpec {
        window: window("11:00", "12:00"),
        ..source.incremental_export(base(SECOND), 2)
    };
    (vec![full, first, second], source.items())
}

fn unrelated() -> Item {
    item("other", 1, "left alone")
}

async fn rig_with(exports: &[ExportSpec]) -> Rig {
    let table = Arc::new(MemoryTable::new("id", Some("n")).with_key_types(KeyType::S, KeyType::N));
    table.batch_put("records", &[&unrelated()]).await.unwrap();
    let rig = Rig::writing_through(table.clone(), table);
    for spec in exports {
        for (key, bytes) in write_export(spec).await {
            rig.objects
                .insert("b", &key.replacen("exports/2026/", "copy/", 1), bytes);
        }
    }
    rig
}

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        batch_size: 1,
        export_fence: FENCE,
        ..Rig::coordinator_config()
    }
}

fn request(job_id: &str, export: crate::contract::messages::ExportNames) -> JobRequest {
    JobRequest {
        job_id: Some(job_id.into()),
        export: Some(export),
        ..JobRequest::new("b", "")
    }
}

fn names(ids: &[&str]) -> crate::contract::messages::ExportNames {
    let names = ids.iter().map(|id| format!("copy/AWSDynamoDB/{id}/"));
    crate::contract::messages::ExportNames::Chain(names.collect())
}

fn phase_steps(rig: &Rig) -> Vec<ExportPhaseStep> {
    (rig.queues.drain(CONTROL).iter())
        .map(|body| match serde_json::from_str(body).unwrap() {
            ControlMessage::ExportPhase(step) => step,
            other => panic!("not an export phase step: {other:?}"),
        })
        .collect()
}

fn sorted(mut items: Vec<Item>) -> Vec<Item> {
    items.sort_by_key(|i| format!("{:?}{:?}", i["id"], i["n"]));
    items
}

fn phases(batches: &[BatchMessage]) -> Vec<u32> {
    batches
        .iter()
        .map(|b| b.work.export().unwrap().phase)
        .collect()
}

#[tokio::test]
async fn each_phase_waits_for_the_one_before_and_a_late_duplicate_after_the_fence_writes_nothing() {
    let (exports, final_items) = chain();
    let rig = rig_with(&exports).await;
    let coordinator = rig.coordinator(config());
    let worker = rig.worker(Rig::worker_config());
    // The chain named by its folder: the three exports found and ordered by time.
    coordinator
        .start_job(request("chain", "copy/".into()), None)
        .await
        .unwrap();
    let job = rig.job("chain").await;
    // Full: 4 files (9 items dealt in turn); first: 2 files; second: 2 files.
    assert_eq!(
        (job.sealed, job.total_batches, job.export_phase),
        (true, 8, 0)
    );
    let phase0 = rig.batches();
    assert_eq!(
        phases(&phase0),
        [0, 0, 0, 0],
        "only the full export is sent"
    );
    let numbers: Vec<u64> = phase0.iter().map(|b| b.batch.get()).collect();
    assert_eq!(numbers, [0, 1, 2, 3]);

    // Every batch but the last, in reverse order and twice: the phase is not complete.
    for batch in phase0[1..].iter().rev().chain(phase0[1..].iter()) {
        worker.process_batch(batch).await.unwrap();
    }
    assert!(
        phase_steps(&rig).is_empty(),
        "no phase step before the phase is counted"
    );
    assert!(rig.batches().is_empty(), "nothing of phase 1 is sent");
    worker.process_batch(&phase0[0]).await.unwrap();
    let steps = phase_steps(&rig);
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].export_phase, 1);

    // The step fences first: the job's phase is 1, and it comes back after the wait.
    let fenced = coordinator.export_phase(&steps[0]).await.unwrap();
    assert_eq!(fenced, PhaseStep::Fenced { wait: FENCE });
    assert_eq!(rig.job("chain").await.export_phase, 1);
    assert_eq!(rig.queues.delays(CONTROL), [FENCE]);
    assert!(rig.batches().is_empty(), "phase 1 waits for the fence");
    let again = phase_steps(&rig);
    // A duplicate of the wake-up before the wait sends nothing either.
    let early = coordinator.export_phase(&steps[0]).await.unwrap();
    assert!(matches!(early, PhaseStep::Fenced { .. }), "{early:?}");
    assert!(rig.batches().is_empty());
    let _ = phase_steps(&rig);
    tokio::time::sleep(FENCE).await;
    let sent = coordinator.export_phase(&again[0]).await.unwrap();
    assert_eq!(
        sent,
        PhaseStep::Sent {
            phase: 1,
            batches: 2
        }
    );
    let phase1 = rig.batches();
    assert_eq!(phases(&phase1), [1, 1]);

    for batch in phase1.iter().rev() {
        worker.process_batch(batch).await.unwrap();
    }
    // Phase 1 landed: a1 is v1. A late duplicate of the phase-0 batch holding a1 (v0)
    // finds the fence and writes nothing; its count is unchanged.
    let a1 = |rig: &Rig| {
        (rig.table.items("records").into_iter())
            .find(|i| i["id"] == Value::S("a".into()) && i["n"] == Value::N("1".into()))
    };
    assert_eq!(a1(&rig), Some(item("a", 1, "v1")));
    let before = rig.job("chain").await;
    for batch in &phase0 {
        worker.process_batch(batch).await.unwrap();
    }
    assert_eq!(
        a1(&rig),
        Some(item("a", 1, "v1")),
        "the fence kept the older image out"
    );
    let after = rig.job("chain").await;
    assert_eq!(
        (after.batches_done, after.totals.rows_written),
        (before.batches_done, before.totals.rows_written)
    );

    // Phase 2 the same way, then the job is done and equals the source.
    let steps = phase_steps(&rig);
    assert_eq!(
        steps.iter().map(|s| s.export_phase).collect::<Vec<_>>(),
        [2]
    );
    coordinator.export_phase(&steps[0]).await.unwrap();
    tokio::time::sleep(FENCE).await;
    for step in phase_steps(&rig) {
        coordinator.export_phase(&step).await.unwrap();
    }
    let phase2 = rig.batches();
    assert_eq!(phases(&phase2), [2, 2]);
    for batch in phase2.iter().chain(&phase2) {
        worker.process_batch(batch).await.unwrap();
    }
    let job = rig.job("chain").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.batches_done, 8);
    let mut want = final_items;
    want.push(unrelated());
    assert_eq!(sorted(rig.table.items("records")), sorted(want));
}

#[tokio::test]
async fn a_chain_with_a_gap_or_an_overlap_is_refused_before_anything_is_written() {
    let (exports, _) = chain();
    let rig = rig_with(&exports).await;
    let coordinator = rig.coordinator(config());
    let refused = |job: &'static str, ids: &'static [&'static str]| {
        let coordinator = &coordinator;
        async move {
            (coordinator.start_job(request(job, names(ids)), None).await)
                .unwrap_err()
                .to_string()
        }
    };
    let gap = refused("gap", &[FULL, SECOND]).await;
    assert!(
        gap.contains(&format!(
            "a gap: copy/AWSDynamoDB/{FULL}/manifest-summary.json ends at 2026-12-01T10:00:00.000Z and copy/AWSDynamoDB/{SECOND}/manifest-summary.json starts at 2026-12-01T11:00:00.000Z"
        )),
        "{gap}"
    );
    let overlap = refused("overlap", &[FULL, SECOND, FIRST]).await;
    assert!(overlap.contains("a gap"), "{overlap}");
    let backwards = refused("backwards", &[FULL, FIRST, FIRST]).await;
    assert!(backwards.contains("an overlap"), "{backwards}");
    let first = refused("first", &[FIRST, SECOND]).await;
    assert!(
        first.contains("starts with the incremental export"),
        "{first}"
    );
    let twice = refused("twice", &[FULL, FULL]).await;
    assert!(twice.contains("is a second full export"), "{twice}");
    use crate::fan_in::Ledger as _;
    for job in ["gap", "overlap", "backwards", "first", "twice"] {
        assert!(
            rig.ledger.get(&job.into()).await.unwrap().is_none(),
            "{job}"
        );
    }
    assert!(rig.batches().is_empty());
    assert!(phase_steps(&rig).is_empty());
    assert_eq!(rig.table.items("records"), [unrelated()]);
}

#[tokio::test]
async fn a_lost_phase_step_is_run_again_by_the_stuck_check() {
    let (exports, final_items) = chain();
    let rig = rig_with(&exports).await;
    let coordinator = rig.coordinator(config());
    let worker = rig.worker(Rig::worker_config());
    coordinator
        .start_job(request("lost", names(&[FULL, FIRST, SECOND])), None)
        .await
        .unwrap();
    let check = || coordinator.check_stuck_jobs(Duration::from_secs(3600));
    for batch in rig.batches() {
        worker.process_batch(&batch).await.unwrap();
    }
    // The wake-up is lost (its step died on its last delivery): the check runs it.
    assert_eq!(phase_steps(&rig).len(), 1);
    let report = check().await.unwrap();
    assert_eq!(
        report.export_phases_resumed,
        [crate::contract::ids::JobId::new("lost")]
    );
    assert_eq!(rig.job("lost").await.export_phase, 1, "fenced by the check");
    // The delayed step is lost too: once the wait has passed, the check sends the phase.
    assert_eq!(phase_steps(&rig).len(), 1);
    tokio::time::sleep(FENCE).await;
    let report = check().await.unwrap();
    assert_eq!(
        report.export_phases_resumed,
        [crate::contract::ids::JobId::new("lost")]
    );
    let phase1 = rig.batches();
    assert_eq!(phases(&phase1), [1, 1]);
    // Sent and marked: the check leaves the phase alone while it runs.
    assert!(check().await.unwrap().export_phases_resumed.is_empty());
    for batch in &phase1 {
        worker.process_batch(batch).await.unwrap();
    }
    for _ in 0..2 {
        let _ = phase_steps(&rig);
        tokio::time::sleep(FENCE).await;
        check().await.unwrap();
    }
    for batch in rig.batches() {
        worker.process_batch(&batch).await.unwrap();
    }
    let job = rig.job("lost").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    let mut want = final_items;
    want.push(unrelated());
    assert_eq!(sorted(rig.table.items("records")), sorted(want));
}
