//! Fan-in under at-least-once delivery and crashes: exactly one completion event however
//! many workers finish together; a crash between writing rows and counting them, or between
//! finishing the job and sending its event, recovers on redelivery without double counting
//! or losing the event.

use devkit::sample::SampleSpec;
use futures::future::join_all;
use integration_tests::{TestEnv, default_servers};
use shared::app::worker::{Processed, Worker, WorkerError};
use shared::contract::completion::{CompletionEvent, EVENT_NAME};
use shared::fan_in::Ledger as _;
use shared::job::model::{JobStatus, Recorded};

/// A fresh destination queue for completion events.
async fn completion_queue(env: &TestEnv) -> String {
    env.clients
        .sqs
        .create_queue()
        .queue_name(format!("{}-done", env.resources.bucket))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

#[tokio::test]
async fn many_workers_finishing_together_send_exactly_one_completion_event() {
    let env = TestEnv::new(default_servers(), "one-event").await;
    let spec = SampleSpec::new("e/", 6, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 6, || {})
        .await
        .unwrap();
    let job = env.sealed_job("job-one-event", 6, 6).await;
    let queue_url = completion_queue(&env).await;
    let mut config = env.pipeline().worker;
    config.completion_queue_url = Some(queue_url.clone());
    // Six workers, each batch delivered twice, all at once.
    let workers: Vec<Worker> = (0..6).map(|_| env.worker(config.clone())).collect();
    let batches: Vec<_> = (0..6)
        .map(|b| env.batch(&job.job_id, b, vec![spec.key(b as usize)]))
        .collect();
    let results = join_all(
        batches
            .iter()
            .chain(&batches)
            .enumerate()
            .map(|(i, batch)| workers[i % 6].process(batch, None)),
    )
    .await;
    let counted = results
        .iter()
        .filter(|r| matches!(r, Ok(Processed::Counted(c)) if matches!(**c, Recorded::Counted(_))))
        .count();
    assert_eq!(counted, 6, "{results:?}");

    let events = env.drain::<CompletionEvent>(&queue_url).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.event, EVENT_NAME);
    assert_eq!(event.job_id, job.job_id);
    assert_eq!(event.status, JobStatus::Complete);
    assert_eq!(event.totals.rows_written, 60);
    assert_eq!(event.total_batches, 6);
    let stored = env.ledger().get(&job.job_id).await.unwrap().unwrap();
    assert!(!stored.event_pending, "the outbox flag is cleared");
}

#[tokio::test]
async fn a_crash_between_writing_and_counting_counts_once_on_redelivery() {
    let env = TestEnv::new(default_servers(), "crash-count").await;
    let spec = SampleSpec::new("c/", 1, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 1, || {})
        .await
        .unwrap();
    let job = env.sealed_job("job-crash-count", 1, 1).await;
    let batch = env.batch(&job.job_id, 0, vec![spec.key(0)]);

    // The rows are written, then the count fails: the ledger is unreachable.
    let mut broken = env.pipeline().worker;
    broken.tables.jobs = "no-such-jobs-table".into();
    let crashed = env.worker(broken).process(&batch, None).await;
    assert!(matches!(crashed, Err(WorkerError::Job(_))), "{crashed:?}");
    assert_eq!(env.record_count().await, 10, "rows landed before the count");
    let stored = env.ledger().get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(
        (stored.batches_done, stored.status),
        (0, JobStatus::Running)
    );

    // Redelivery rewrites the same items and counts once; a later one changes nothing.
    let worker = env.worker(env.pipeline().worker);
    let first = worker.process(&batch, None).await.unwrap().counted();
    assert!(matches!(first, Some(Recorded::Counted(_))));
    let again = worker.process(&batch, None).await.unwrap().counted();
    assert!(matches!(again, Some(Recorded::AlreadyCounted(_))));
    let stored = env.ledger().get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Complete);
    assert_eq!((stored.batches_done, stored.totals.rows_written), (1, 10));
    assert_eq!(env.record_count().await, 10);
}

#[tokio::test]
async fn a_crash_between_finishing_and_the_event_sends_it_on_redelivery() {
    let env = TestEnv::new(default_servers(), "crash-event").await;
    let spec = SampleSpec::new("x/", 1, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 1, || {})
        .await
        .unwrap();
    let job = env.sealed_job("job-crash-event", 1, 1).await;
    let batch = env.batch(&job.job_id, 0, vec![spec.key(0)]);
    let queue_url = completion_queue(&env).await;

    // The job finishes, then sending its event fails (the destination is missing).
    let mut broken = env.pipeline().worker;
    broken.completion_queue_url = Some(format!("{queue_url}-missing"));
    let crashed = env.worker(broken).process(&batch, None).await;
    assert!(
        matches!(crashed, Err(WorkerError::Completion(_))),
        "{crashed:?}"
    );
    let stored = env.ledger().get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Complete);
    assert!(stored.event_pending, "the event is still owed");

    let mut config = env.pipeline().worker;
    config.completion_queue_url = Some(queue_url.clone());
    let worker = env.worker(config);
    for _ in 0..2 {
        let redelivered = worker.process(&batch, None).await.unwrap().counted();
        assert!(matches!(redelivered, Some(Recorded::AlreadyCounted(_))));
    }
    let events = env.drain::<CompletionEvent>(&queue_url).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].totals.rows_written, 10);
}
