//! Worker Lambda: an SQS event of batch messages in, a partial-batch response out (the event
//! source mapping needs `FunctionResponseTypes: [ReportBatchItemFailures]`).
//! Wiring only; the logic is `shared::app::worker`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use shared::app::config::WorkerConfig;
use shared::app::{lambda::deadline_from_epoch_ms, worker::Worker};
use shared::aws::Clients;
use shared::port::Adapters;

/// glibc's malloc and free were a third of the worker loop's instructions (callgrind).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::app::lambda::init_logging();
    let config = WorkerConfig::from_env()?;
    let adapters = Adapters::aws(&Clients::from_env().await, &config.tables.jobs);
    let worker = Worker::new(adapters, config);
    let worker = &worker;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = deadline_from_epoch_ms(event.context.deadline);
        Ok::<SqsBatchResponse, Error>(worker.handle(event.payload, deadline).await)
    }))
    .await
}
