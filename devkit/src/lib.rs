//! Local development kit. Nothing here ships in a Lambda: it starts the local AWS servers,
//! provisions the bucket, queues and tables, generates sample data, and plays Lambda's SQS
//! event source mapping so the real worker handler runs against real queues.
//!
//! - [`servers`]: install-checked local servers on free loopback ports, stopped on drop or exit.
//! - [`provision`]: bucket, queue + DLQ, tables; idempotent.
//! - [`sample`]: deterministic seed-shaped CSV files, and the typed rows they must become.
//! - [`bridge`]: SQS to worker, as the event source mapping does it.
//! - [`lambda_api`]: the functions as `cargo lambda watch` serves them, for the bridge.
//! - [`counting`]: what S3 sends each key's GETs, to hold `bytes_read` against.
//! - [`faults`]: throttled writes and S3 SlowDown, injected around the real servers.
//! - [`pipeline`]: coordinator + bridge + worker until the job is final.
//! - [`rehearsal`]: `sam deploy` rehearsed on moto with IAM enforced, the real binaries run
//!   under their deployed roles (docs/deploy.md).

pub mod bridge;
pub mod counting;
pub mod faults;
pub mod inventory;
pub mod lambda_api;
pub mod pipeline;
pub mod provision;
pub mod rehearsal;
pub mod sample;
pub mod servers;
