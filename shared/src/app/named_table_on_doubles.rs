//! A job naming its `table` on the doubles: it loads there when the deployment allows that
//! table, keeps it (and its format) across listing steps, and is refused before anything
//! exists when it names any other; a worker refuses a batch naming a table it does not allow.

use std::time::Duration;

use tokio::time::Instant;

use crate::app::config::{CoordinatorConfig, Tables, WorkerConfig};
use crate::app::coordinator::CoordinatorError;
use crate::app::test_rig::{CONTROL, RECORDS, Rig, notes_schema};
use crate::app::worker::WorkerError;
use crate::contract::format::Format;
use crate::contract::messages::{ControlMessage, JobRequest};
use crate::fan_in::Ledger;

fn allowing_orders() -> Tables {
    Tables {
        additional: vec!["events".into(), "orders".into()],
        ..Rig::worker_config().tables
    }
}

fn request(job_id: &str, table: &str) -> JobRequest {
    JobRequest {
        job_id: Some(job_id.into()),
        schema: Some(notes_schema()),
        // Forced over `.csv` keys: a step that forgot the format would read them as CSV.
        format: Some(Format::JsonLines),
        table: Some(table.into()),
        ..JobRequest::new("b", "in/")
    }
}

#[tokio::test]
async fn a_job_naming_an_allowed_table_loads_there_across_listing_steps() {
    let rig = Rig::new();
    for i in 0..3 {
        let line = format!("{{\"id\": \"r{i}\", \"note\": \"n{i}\"}}\n");
        rig.objects.insert("b", &format!("in/{i}.csv"), line);
    }
    // One key a page and a margin that always pauses: every key is its own listing step.
    let coordinator = rig.coordinator(CoordinatorConfig {
        tables: allowing_orders(),
        list_page_size: 1,
        batch_size: 1,
        checkpoint_margin: Duration::from_secs(3600),
        ..Rig::coordinator_config()
    });
    let soon = || Some(Instant::now() + Duration::from_secs(1));
    let mut started = coordinator
        .start_job(request("named", "orders"), soon())
        .await
        .unwrap();
    let mut steps = 1;
    while started.continues {
        let Ok(ControlMessage::Continue(wake)) =
            serde_json::from_str(&rig.queues.drain(CONTROL)[0])
        else {
            panic!("a paused listing wakes its next step");
        };
        started = (coordinator.continue_listing(&wake, soon()).await)
            .unwrap()
            .expect("the step ran");
        steps += 1;
    }
    assert!(steps >= 3, "{steps} listing steps");
    assert_eq!(rig.job("named").await.table.as_deref(), Some("orders"));
    let batches = rig.batches();
    assert_eq!(batches.len(), 3);
    for batch in &batches {
        assert_eq!(batch.table.as_deref(), Some("orders"), "{batch:?}");
        assert_eq!(batch.format, Some(Format::JsonLines), "{batch:?}");
    }

    // A worker of a deployment that does not allow the table writes nothing for it.
    let narrow = rig.worker(Rig::worker_config());
    let refused = narrow.process_batch(&batches[0]).await.unwrap_err();
    assert!(
        matches!(&refused, WorkerError::BadTable(reason) if reason.contains("\"orders\"")),
        "{refused:?}"
    );
    let worker = rig.worker(WorkerConfig {
        tables: allowing_orders(),
        ..Rig::worker_config()
    });
    for batch in &batches {
        worker.process_batch(batch).await.unwrap();
    }
    assert_eq!(rig.table.items("orders").len(), 3);
    assert!(rig.table.items(RECORDS).is_empty());
    assert_eq!(rig.job("named").await.totals.rows_written, 3);
}

#[tokio::test]
async fn a_job_naming_a_table_the_deployment_does_not_allow_is_refused_before_anything_exists() {
    let rig = Rig::new();
    rig.objects.insert("b", "in/0.csv", "{\"id\": \"r\"}\n");
    let coordinator = rig.coordinator(CoordinatorConfig {
        tables: allowing_orders(),
        ..Rig::coordinator_config()
    });
    let refused = coordinator
        .start_job(request("elsewhere", "payments"), None)
        .await
        .unwrap_err();
    let reason = refused.to_string();
    assert!(
        matches!(refused, CoordinatorError::InvalidRequest(_)),
        "{refused:?}"
    );
    assert!(
        reason.contains("\"payments\"") && reason.contains("records, events, orders"),
        "{reason}"
    );
    assert!(rig.ledger.get(&"elsewhere".into()).await.unwrap().is_none());
    assert!(rig.batches().is_empty());
    assert!(rig.queues.drain(CONTROL).is_empty());
}
