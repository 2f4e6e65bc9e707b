//! A capped job whose instance share is tiny (the template's 50 instances, 400 units/s: 8
//! units/s each) on the doubles, in paused time: every part stops and hands on before its
//! deadline with the rows in flight written, and every row lands once.

use std::time::Duration;

use tokio::time::Instant;

use super::{Processed, Worker, WorkerError};
use crate::app::config::{CoordinatorConfig, WorkerConfig, WorkerShape};
use crate::app::test_rig::{Rig, notes_csv, notes_schema};
use crate::contract::messages::{BatchMessage, JobRequest};
use crate::contract::write::{WriteMode, WriteOptions, WriteRate};
use crate::job::model::JobStatus;

const INSTANCES: usize = 50;
const CAP: f64 = 400.0;
/// Lambda's 120 s less the 10 s deadline margin.
const INVOCATION: Duration = Duration::from_secs(110);
const MARGIN: Duration = Duration::from_secs(20);

/// Runs `batch` part after part, each part an invocation with [`INVOCATION`] to its
/// deadline, asserting that each one ends before its stop (the rows in flight are written
/// by then); returns the parts it took.
async fn run_chain(worker: &Worker, mut batch: BatchMessage) -> usize {
    for parts in 1..=100 {
        let deadline = Instant::now() + INVOCATION;
        let processed = worker.process(&batch, Some(deadline)).await;
        // Writes are instant here: a part that ends later than a second past its stop
        // slept past it (the pacer's old wait, ~5,600 rows in flight at 8 units/s).
        let late = Instant::now().saturating_duration_since(deadline - MARGIN);
        assert!(
            late <= Duration::from_secs(1),
            "part {parts} ended {late:?} after its stop"
        );
        match processed {
            Ok(Processed::Counted(_)) => return parts,
            Ok(Processed::Continued(next)) => batch = *next,
            Ok(Processed::Shared) => unreachable!("no inflated object here"),
            Err(error @ WorkerError::NoProgress) => panic!("part {parts}: {error}"),
            Err(error) => panic!("part {parts}: {error}"),
        }
    }
    panic!("the batch never finished");
}

async fn capped_job_on_two_batches(mode: WriteMode) {
    let rig = Rig::new();
    let mut expected = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let (text, rows) = notes_csv(name, 500, true);
        rig.objects.insert("b", &format!("in/{name}.csv"), text);
        expected.extend(rows);
    }
    expected.sort();
    let request = JobRequest {
        job_id: Some("capped".into()),
        schema: Some(notes_schema()),
        write: WriteOptions {
            write_mode: mode,
            max_write_rate: Some(WriteRate::Units(CAP)),
            ..WriteOptions::default()
        },
        ..JobRequest::new("b", "in/")
    };
    let coordinator = rig.coordinator(CoordinatorConfig {
        batch_size: 2,
        control_queue_url: None,
        worker: WorkerShape {
            max_concurrency: INSTANCES,
            ..WorkerShape::default()
        },
        ..Rig::coordinator_config()
    });
    coordinator.start_job(request, None).await.unwrap();
    let batches = rig.batches();
    assert_eq!(batches.len(), 2);
    let worker = rig.worker(WorkerConfig {
        max_concurrency: INSTANCES,
        resume_margin: MARGIN,
        ..Rig::worker_config()
    });

    // Two messages of one invocation share the instance's share, as on Lambda.
    let started = Instant::now();
    let chains = batches.into_iter().map(|batch| run_chain(&worker, batch));
    let parts: usize = futures::future::join_all(chains).await.into_iter().sum();
    let elapsed = started.elapsed().as_secs_f64();

    let job = rig.job("capped").await;
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.batches_done, 2);
    assert_eq!(job.totals.rows_written, 2000, "every row counted once");
    assert_eq!(job.totals.write_units, 2000, "one unit a row, no retries");
    assert_eq!(rig.rows(), expected, "every row once");
    // 2,000 units at 8 a second: never faster than the share; 90 s of each 110 s work.
    let share = CAP / INSTANCES as f64;
    assert!(elapsed >= 2000.0 / share - 1.0, "{elapsed} s");
    assert!(elapsed <= 2000.0 / share * 1.4, "{elapsed} s");
    assert!(parts >= 4, "{parts} parts");
}

#[tokio::test(start_paused = true)]
async fn a_capped_put_job_with_a_small_share_hands_on_in_time_and_writes_every_row_once() {
    capped_job_on_two_batches(WriteMode::Put).await;
}

#[tokio::test(start_paused = true)]
async fn a_capped_insert_job_with_a_small_share_hands_on_in_time_and_writes_every_row_once() {
    capped_job_on_two_batches(WriteMode::Insert).await;
}

/// A cap whose share cannot write one chunk in an invocation is refused at the request,
/// with the numbers, before the job exists.
#[tokio::test]
async fn a_cap_too_small_for_the_worker_instances_is_refused_before_anything_is_written() {
    let rig = Rig::new();
    let (text, _) = notes_csv("a", 10, false);
    rig.objects.insert("b", "in/a.csv", text);
    let coordinator = rig.coordinator(CoordinatorConfig {
        worker: WorkerShape {
            max_concurrency: INSTANCES,
            ..WorkerShape::default()
        },
        ..Rig::coordinator_config()
    });
    let capped = |job_id: &str, cap: f64| JobRequest {
        job_id: Some(job_id.into()),
        schema: Some(notes_schema()),
        write: WriteOptions {
            max_write_rate: Some(WriteRate::Units(cap)),
            ..WriteOptions::default()
        },
        ..JobRequest::new("b", "in/")
    };
    // 10 units/s over 50 instances: 0.2 each, 18 units in a part's 90 s.
    let refused = coordinator
        .start_job(capped("tiny", 10.0), None)
        .await
        .unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains("0.200 units/s") && text.contains("18.0 units"),
        "{text}"
    );
    assert!(text.contains("at least 13.9"), "{text}");
    use crate::fan_in::Ledger;
    assert!(rig.ledger.get(&"tiny".into()).await.unwrap().is_none());
    assert!(rig.batches().is_empty(), "nothing enqueued");
    // The shipped example's 400 units/s passes.
    coordinator
        .start_job(capped("fine", CAP), None)
        .await
        .unwrap();
}
