//! The use cases: the coordinator (starting, continuing and checking jobs), the worker
//! (loading one batch and counting it), the completion outbox and redrive; their settings,
//! metrics, and the Lambda/SQS glue they share. They reach IO only through the ports.

pub mod completion;
pub mod config;
pub mod coordinator;
#[cfg(test)]
mod ddbjson_on_doubles;
#[cfg(test)]
mod dead_letters_on_doubles;
#[cfg(test)]
mod every_type_on_doubles;
#[cfg(test)]
mod export_chain_on_doubles;
#[cfg(test)]
mod export_on_doubles;
#[cfg(test)]
mod inflate_on_doubles;
#[cfg(test)]
mod inventory_on_doubles;
#[cfg(test)]
mod jsonl_on_doubles;
pub mod lambda;
pub mod metrics;
#[cfg(test)]
mod named_table_on_doubles;
#[cfg(test)]
mod parquet_on_doubles;
pub mod queue_writer;
pub mod redrive;
#[cfg(test)]
mod single_table_on_doubles;
#[cfg(test)]
mod test_rig;
pub mod worker;
pub mod write_cap;
