//! Coordinator Lambda: a manual `{"bucket", "prefix"}` event starts a prefix job.
//! Wiring only; the logic is `shared::coordinator`.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::aws::Clients;
use shared::config::CoordinatorConfig;
use shared::coordinator::{Coordinator, JobStarted};
use shared::message::PrefixJobRequest;

/// glibc's malloc and free were a third of the worker loop's instructions (callgrind).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .init();
    let config = CoordinatorConfig::from_env()?;
    let coordinator = Coordinator::new(Clients::from_env().await, config);
    let coordinator = &coordinator;
    run(service_fn(
        move |event: LambdaEvent<PrefixJobRequest>| async move {
            Ok::<JobStarted, Error>(coordinator.start_prefix_job(event.payload).await?)
        },
    ))
    .await
}
