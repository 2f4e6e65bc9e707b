//! Dead letters on the doubles: a batch moved to the dead-letter queue on deliveries that never
//! ran our code ends its job through the coordinator's accounting, once however often the
//! letter comes; the kept copy redrives it; a dead scan still ends its split object.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};

use crate::app::config::CoordinatorConfig;
use crate::app::coordinator::Coordinator;
use crate::app::coordinator::dead_letters::dead_letter_key;
use crate::app::redrive::redrive_kept;
use crate::app::test_rig::{CONTROL, NOTES_HEADER, RECORDS, Rig, WORK, notes_csv, notes_schema};
use crate::contract::completion::JobStatus;
use crate::contract::messages::{BatchMessage, JobRequest};
use crate::job::model::Recorded;

const DLQ: &str = "arn:aws:sqs:us-east-1:123456789012:batches-dlq";
const DONE: &str = "done";

fn coordinator(rig: &Rig, batch_size: usize) -> Coordinator {
    rig.coordinator(CoordinatorConfig {
        batch_size,
        dead_letter_queue_arns: vec![DLQ.into()],
        completion_queue_url: Some(DONE.into()),
        ..Rig::coordinator_config()
    })
}

/// The letter as the dead-letter queue's event source delivers it.
fn dead_letter(batch: &BatchMessage, receives: u32) -> SqsEvent {
    let mut message = SqsMessage::default();
    message.message_id = Some(format!("m-{}", batch.batch));
    message.event_source_arn = Some(DLQ.into());
    message.body = Some(batch.to_json());
    message
        .attributes
        .insert("ApproximateReceiveCount".into(), receives.to_string());
    let mut event = SqsEvent::default();
    event.records = vec![message];
    event
}

fn request(job_id: &str) -> JobRequest {
    JobRequest {
        job_id: Some(job_id.into()),
        schema: Some(notes_schema()),
        ..JobRequest::new("b", "in/")
    }
}

#[tokio::test]
async fn a_batch_dead_lettered_without_ever_running_ends_its_job_once_and_redrives() {
    let rig = Rig::new();
    for name in ["a", "b", "c"] {
        rig.objects
            .insert("b", &format!("in/{name}.csv"), notes_csv(name, 5, false).0);
    }
    let coordinator = coordinator(&rig, 1);
    coordinator.start_job(request("dead"), None).await.unwrap();
    let batches = rig.batches();
    assert_eq!(batches.len(), 3);
    let worker = rig.worker(Rig::worker_config());
    for batch in &batches[..2] {
        worker.process_batch(batch).await.unwrap();
    }
    assert_eq!(rig.job("dead").await.status, JobStatus::Running);

    // The third never ran: throttled five times, then moved. Delivered twice to the consumer.
    for _ in 0..2 {
        let response = coordinator
            .handle_control_event(dead_letter(&batches[2], 1), None)
            .await;
        assert!(response.batch_item_failures.is_empty());
    }
    let job = rig.job("dead").await;
    assert_eq!(job.status, JobStatus::CompletedWithErrors);
    assert_eq!((job.batches_done, job.batches_failed), (3, 1));
    let error = job.last_batch_error.unwrap();
    assert!(error.contains("reached the dead-letter queue"), "{error}");
    assert_eq!(rig.queues.drain(DONE).len(), 1, "one completion event");
    let kept = dead_letter_key(&batches[2].report, &"dead".into(), batches[2].batch, 0);
    assert!(error.contains(&kept), "{error}");
    let stored = rig.objects.bytes("b", &kept).expect("the letter is kept");
    assert_eq!(
        serde_json::from_slice::<BatchMessage>(&stored).unwrap(),
        batches[2]
    );

    // Redriven from the kept copy: the batch loads and the job counts it recovered.
    let sent = redrive_kept(
        &*rig.objects,
        &*rig.queues,
        &batches[2].report,
        &"dead".into(),
        WORK,
    )
    .await
    .unwrap();
    assert_eq!(sent, 1);
    let redriven = rig.batches();
    let recorded = worker.process_batch(&redriven[0]).await.unwrap();
    assert!(matches!(recorded, Recorded::Recovered(_)), "{recorded:?}");
    let job = rig.job("dead").await;
    assert_eq!((job.batches_failed, job.batches_recovered), (0, 1));
    assert_eq!(rig.table.items(RECORDS).len(), 15);
}

#[tokio::test]
async fn a_batch_its_worker_counted_is_not_counted_again_by_its_dead_letter() {
    let rig = Rig::new();
    rig.objects
        .insert("b", "in/a.csv", notes_csv("a", 5, false).0);
    rig.objects.insert("b", "in/b.csv", NOTES_HEADER);
    let coordinator = coordinator(&rig, 1);
    coordinator
        .start_job(request("counted"), None)
        .await
        .unwrap();
    let batches = rig.batches();
    let worker = rig.worker(Rig::worker_config());
    // Counted, then its delete was lost until the receives ran out.
    worker.process_batch(&batches[0]).await.unwrap();
    let response = coordinator
        .handle_control_event(dead_letter(&batches[0], 5), None)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let job = rig.job("counted").await;
    assert_eq!((job.batches_done, job.batches_failed), (1, 0));
    assert_eq!(job.status, JobStatus::Running);
    worker.process_batch(&batches[1]).await.unwrap();
    assert_eq!(rig.job("counted").await.status, JobStatus::Complete);
}

#[tokio::test]
async fn a_dead_scan_still_ends_its_split_object() {
    let rig = Rig::new();
    let (csv, _) = notes_csv("big", 400, true);
    rig.objects.insert("b", "in/big.csv", csv);
    let coordinator = rig.coordinator(CoordinatorConfig {
        range_chunk_bytes: 2048,
        dead_letter_queue_arns: vec![DLQ.into()],
        ..Rig::coordinator_config()
    });
    coordinator.start_job(request("split"), None).await.unwrap();
    let scans: Vec<BatchMessage> = rig.batches();
    assert!(scans.len() > 2 && scans.iter().all(|b| b.work.scan().is_some()));
    let worker = rig.worker(Rig::worker_config());
    for scan in &scans[1..] {
        worker.process_batch(scan).await.unwrap();
    }
    // The last scan to finish woke the compose before; the dead one wakes it again, and the
    // compose ends the object (a missing scan counted failed fails the job with the reason).
    rig.queues.drain(CONTROL);
    let response = coordinator
        .handle_control_event(dead_letter(&scans[0], 1), None)
        .await;
    assert!(response.batch_item_failures.is_empty());
    let composes = rig.compose_messages();
    assert_eq!(composes.len(), 1, "the dead scan wakes its compose");
    coordinator.compose_ranges(&composes[0]).await.unwrap();
    let job = rig.job("split").await;
    assert!(job.status.is_final(), "{:?}", job.status);
    assert_eq!(job.batches_failed, 1);
}

#[tokio::test]
async fn a_dead_letter_of_a_job_the_ledger_does_not_hold_is_kept_and_not_retried() {
    let rig = Rig::new();
    rig.objects
        .insert("b", "in/a.csv", notes_csv("a", 2, false).0);
    let coordinator = coordinator(&rig, 1);
    coordinator.start_job(request("known"), None).await.unwrap();
    let mut stray = rig.batches().remove(0);
    stray.job_id = "gone".into();
    let response = coordinator
        .handle_control_event(dead_letter(&stray, 5), None)
        .await;
    assert!(response.batch_item_failures.is_empty(), "not retried");
    let kept = dead_letter_key(&stray.report, &"gone".into(), stray.batch, 0);
    assert!(rig.objects.bytes("b", &kept).is_some());
    assert_eq!(rig.job("known").await.batches_failed, 0);
}
