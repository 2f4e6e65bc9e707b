//! `redrive`: batches in the dead-letter queue (or kept by the coordinator when it took them
//! off it) go back to the work queue, and a batch that was counted as failed is counted after
//! all when it succeeds, once.

use devkit::bridge::ControlInvoker;
use devkit::sample::SampleSpec;
use integration_tests::{TestEnv, default_servers};
use shared::app::redrive::{redrive, redrive_kept};
use shared::app::worker::Worker;
use shared::fan_in::Ledger as _;
use shared::job::model::{BatchNo, JobId};
use shared::job::model::{Job, JobStatus, Recorded};

/// A job of `batches` one-file batches whose batch 0 failed its last delivery: counted as
/// failed in the ledger, its message in the dead-letter queue.
async fn job_with_a_dead_lettered_batch(env: &TestEnv, batches: u64) -> (JobId, SampleSpec) {
    let spec = SampleSpec::new("r/", batches as usize, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 4, || {})
        .await
        .unwrap();
    let job = env.sealed_job("job-redrive", batches, batches).await;
    let ledger = env.ledger();
    ledger
        .record_failed_batch(&job.job_id, BatchNo(0), "the records table was missing")
        .await
        .unwrap();
    env.clients
        .sqs
        .send_message()
        .queue_url(&env.provisioned.dead_letter_queue_url)
        .message_body(env.batch(&job.job_id, 0, vec![spec.key(0)]).to_json())
        .send()
        .await
        .unwrap();
    (job.job_id, spec)
}

/// Moves every message of the dead-letter queue back to the work queue.
async fn redrive_all(env: &TestEnv) -> u64 {
    redrive(
        &shared::aws::SqsQueues::new(env.clients.sqs.clone()),
        &env.provisioned.dead_letter_queue_url,
        &env.provisioned.queue_url,
        u64::MAX,
    )
    .await
    .unwrap()
}

/// Delivers the work queue through the bridge until the job counts one batch recovered.
async fn deliver_until_recovered(env: &TestEnv, worker: &Worker, job_id: &JobId) -> Job {
    let bridge = devkit::bridge::SqsBridge::new(
        &env.clients.sqs,
        &env.provisioned.queue_url,
        &env.provisioned.queue_arn,
        worker,
    );
    for _ in 0..10 {
        bridge.poll_once().await.unwrap();
        let job = env.ledger().get(job_id).await.unwrap().unwrap();
        if job.batches_recovered == 1 {
            return job;
        }
    }
    panic!("the redriven batch was not delivered and recovered");
}

#[tokio::test]
async fn a_redriven_batch_of_an_ended_job_is_counted_once_and_no_longer_failed() {
    let env = TestEnv::new(default_servers(), "redrive-ended").await;
    let (job_id, spec) = job_with_a_dead_lettered_batch(&env, 2).await;
    let worker = env.worker(env.pipeline().worker);
    worker
        .process(&env.batch(&job_id, 1, vec![spec.key(1)]), None)
        .await
        .unwrap();
    let ended = env.ledger().get(&job_id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::CompletedWithErrors);
    assert_eq!((ended.batches_failed, ended.totals.rows_written), (1, 10));

    let moved = redrive_all(&env).await;
    assert_eq!(moved, 1);
    // The job has ended, so deliver through the bridge until the batch is recovered.
    let recovered = deliver_until_recovered(&env, &worker, &job_id).await;
    assert_eq!(
        recovered.status,
        JobStatus::CompletedWithErrors,
        "one final transition"
    );
    assert_eq!(recovered.batches_failed, 0);
    assert_eq!(recovered.totals.rows_written, 20);
    assert_eq!(env.record_count().await, 20);
    // Delivered again, the batch changes nothing.
    let again = worker
        .process(&env.batch(&job_id, 0, vec![spec.key(0)]), None)
        .await
        .unwrap()
        .counted();
    assert!(matches!(
        again,
        Some(Recorded::AlreadyCounted(ref j)) if j.totals.rows_written == 20
    ));
    let empty = redrive_all(&env).await;
    assert_eq!(empty, 0);
}

#[tokio::test]
async fn a_batch_recovered_before_the_job_ends_lets_it_complete() {
    let env = TestEnv::new(default_servers(), "redrive-running").await;
    let (job_id, spec) = job_with_a_dead_lettered_batch(&env, 2).await;
    let worker = env.worker(env.pipeline().worker);
    let recovered = worker
        .process(&env.batch(&job_id, 0, vec![spec.key(0)]), None)
        .await
        .unwrap()
        .counted();
    assert!(matches!(recovered, Some(Recorded::Recovered(ref j)) if j.batches_failed == 0));
    worker
        .process(&env.batch(&job_id, 1, vec![spec.key(1)]), None)
        .await
        .unwrap();
    let job = env.ledger().get(&job_id).await.unwrap().unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!((job.batches_recovered, job.totals.rows_written), (1, 20));
}

/// A batch moved to the dead-letter queue on deliveries that never ran our code (throttled,
/// failed at init): the coordinator, consuming the dead-letter queue as the template's event
/// source does (moto's SQS, through the bridge), keeps it in S3 (s3s-fs), counts it failed in
/// the ledger (dynalite) and ends the job; `redrive --job` sends the kept copy back, and the
/// batch is recovered.
#[tokio::test]
async fn a_batch_dead_lettered_without_running_ends_its_job_and_redrives_from_its_kept_copy() {
    let env = TestEnv::new(default_servers(), "redrive-never-ran").await;
    let spec = SampleSpec::new("n/", 2, 10);
    spec.upload(&env.clients.s3, &env.resources.bucket, 4, || {})
        .await
        .unwrap();
    let job = env.sealed_job("job-never-ran", 2, 2).await;
    let worker = env.worker(env.pipeline().worker);
    worker
        .process(&env.batch(&job.job_id, 1, vec![spec.key(1)]), None)
        .await
        .unwrap();
    let dead = env.batch(&job.job_id, 0, vec![spec.key(0)]);
    env.clients
        .sqs
        .send_message()
        .queue_url(&env.provisioned.dead_letter_queue_url)
        .message_body(dead.to_json())
        .send()
        .await
        .unwrap();

    let coordinator = env.coordinator(env.pipeline().coordinator);
    let invoker = ControlInvoker {
        coordinator: &coordinator,
        budget: None,
    };
    let dead_letters = devkit::bridge::SqsBridge::new(
        &env.clients.sqs,
        &env.provisioned.dead_letter_queue_url,
        &env.provisioned.dead_letter_queue_arn,
        &invoker,
    );
    let mut delivered = 0;
    for _ in 0..10 {
        delivered += dead_letters.poll_once().await.unwrap().deleted;
        if delivered == 1 {
            break;
        }
    }
    assert_eq!(
        delivered, 1,
        "the dead letter was accounted for and deleted"
    );
    let ended = env.ledger().get(&job.job_id).await.unwrap().unwrap();
    assert_eq!(ended.status, JobStatus::CompletedWithErrors);
    assert_eq!((ended.batches_done, ended.batches_failed), (2, 1));
    let reason = ended.last_batch_error.unwrap();
    assert!(reason.contains("reached the dead-letter queue"), "{reason}");
    assert_eq!(env.record_count().await, 10);

    let sent = redrive_kept(
        &shared::aws::S3Objects::new(env.clients.s3.clone()),
        &shared::aws::SqsQueues::new(env.clients.sqs.clone()),
        &env.report(),
        &job.job_id,
        &env.provisioned.queue_url,
    )
    .await
    .unwrap();
    assert_eq!(sent, 1);
    let recovered = deliver_until_recovered(&env, &worker, &job.job_id).await;
    assert_eq!(recovered.batches_failed, 0);
    assert_eq!(recovered.totals.rows_written, 20);
    assert_eq!(env.record_count().await, 20);
}
