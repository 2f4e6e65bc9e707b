//! Coordinator Lambda: a manual `{"bucket", "prefix"}` (or `{"bucket", "key"}`) event or an
//! S3 notification starts a job; an SQS event from the control queue continues a long
//! listing; the scheduled `{"check_stuck_jobs": {...}}` event counts jobs stuck RUNNING.
//! Wiring only; the logic is `shared::app::coordinator`.

use std::time::Duration;

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::app::config::CoordinatorConfig;
use shared::app::coordinator::Coordinator;
use shared::app::lambda::deadline_from_epoch_ms;
use shared::aws::Clients;
use shared::contract::messages::CoordinatorRequest;
use shared::port::Adapters;

/// glibc's malloc and free were a third of the worker loop's instructions (callgrind).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::app::lambda::init_logging();
    let config = CoordinatorConfig::from_env()?;
    let adapters = Adapters::aws(&Clients::from_env().await, &config.tables.jobs);
    let coordinator = Coordinator::new(adapters, config);
    let coordinator = &coordinator;
    run(service_fn(
        move |event: LambdaEvent<CoordinatorRequest>| async move {
            // A long listing checkpoints before this and continues in a new invocation.
            let deadline = deadline_from_epoch_ms(event.context.deadline);
            let response = match event.payload {
                CoordinatorRequest::Job(request) => {
                    serde_json::to_value(coordinator.start_job(request, deadline).await?)?
                }
                CoordinatorRequest::S3(event) => {
                    serde_json::to_value(coordinator.handle_s3_event(&event, deadline).await?)?
                }
                CoordinatorRequest::Control(event) => {
                    serde_json::to_value(coordinator.handle_control_event(event, deadline).await)?
                }
                CoordinatorRequest::CheckStuckJobs { check_stuck_jobs } => {
                    let older_than = Duration::from_secs(check_stuck_jobs.older_than_seconds);
                    serde_json::to_value(coordinator.check_stuck_jobs(older_than).await?)?
                }
            };
            Ok::<serde_json::Value, Error>(response)
        },
    ))
    .await
}
