//! A job's write rate cap, enforced across every concurrent worker without any shared
//! state: the coordinator turns `max_write_rate` into write units per second once, when the
//! job starts (a fraction of the table's capacity, from the job's one DescribeTable), and each worker
//! instance paces its own writes to that figure divided by the most worker instances that
//! can run at once (the event source mapping's `MaximumConcurrency`, given to the worker as
//! `WORKER_MAX_CONCURRENCY`). The sum over instances can never exceed the cap; when fewer
//! instances run than the maximum, the job runs below it. Why this and not a budget shared
//! through the ledger: docs/write-control.md.

use std::sync::{Arc, Mutex};

use crate::contract::ids::JobId;
use crate::contract::write::{WriteOptions, WriteRate};
use crate::limiter::RatePacer;
use crate::port::table::Capacity;

/// The job's cap in write units per second: `max_write_rate` as given, or its fraction of
/// the table's capacity (from the description the coordinator reads once per job). On-demand
/// tables without a maximum use the request's `on_demand_units`, else `stack_on_demand_units`.
pub fn resolve(
    options: &WriteOptions,
    capacity: Capacity,
    stack_on_demand_units: f64,
) -> Option<f64> {
    match options.max_write_rate {
        None => None,
        Some(WriteRate::Units(units)) => Some(units),
        Some(WriteRate::Share {
            fraction,
            on_demand_units,
        }) => {
            let capacity = match capacity {
                Capacity::Provisioned { write_units } => write_units,
                Capacity::OnDemand { max_write_units } => max_write_units
                    .or(on_demand_units)
                    .unwrap_or(stack_on_demand_units),
            };
            Some(fraction * capacity)
        }
    }
}

/// Jobs a warm worker instance remembers pacers for: a handful run at once at most, and a
/// pacer must outlive one batch so consecutive batches of a job share its schedule.
const REMEMBERED_JOBS: usize = 8;

/// One pacer per capped job, per worker instance, holding the instance's share of the cap.
#[derive(Debug)]
pub struct JobPacers {
    instances: usize,
    pacers: Mutex<Vec<(JobId, Arc<RatePacer>)>>,
}

impl JobPacers {
    /// Pacers for one of at most `instances` concurrent worker instances.
    pub fn new(instances: usize) -> Self {
        Self {
            instances: instances.max(1),
            pacers: Mutex::default(),
        }
    }

    /// This instance's pacer for the job's batches, or `None` for an uncapped job.
    pub fn for_job(&self, job_id: &JobId, options: &WriteOptions) -> Option<Arc<RatePacer>> {
        let units = options.write_units_per_second?;
        let share = units / self.instances as f64;
        let mut pacers = self.pacers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = pacers.iter().position(|(id, _)| id == job_id) {
            // Most recently used last.
            let entry = pacers.remove(i);
            let pacer = entry.1.clone();
            pacers.push(entry);
            return Some(pacer);
        }
        if pacers.len() == REMEMBERED_JOBS {
            pacers.remove(0);
        }
        let pacer = Arc::new(RatePacer::new(share));
        pacers.push((job_id.clone(), pacer.clone()));
        Some(pacer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(rate: WriteRate) -> WriteOptions {
        WriteOptions {
            max_write_rate: Some(rate),
            ..WriteOptions::default()
        }
    }

    #[test]
    fn a_fraction_is_of_the_provisioned_capacity_or_the_on_demand_figure() {
        let share = |on_demand_units| {
            capped(WriteRate::Share {
                fraction: 0.25,
                on_demand_units,
            })
        };
        let provisioned = Capacity::Provisioned { write_units: 400.0 };
        assert_eq!(
            resolve(&share(Some(9.0)), provisioned, 40_000.0),
            Some(100.0)
        );
        let capped_on_demand = Capacity::OnDemand {
            max_write_units: Some(1000.0),
        };
        assert_eq!(
            resolve(&share(Some(9.0)), capped_on_demand, 1.0),
            Some(250.0)
        );
        let on_demand = Capacity::OnDemand {
            max_write_units: None,
        };
        assert_eq!(
            resolve(&share(Some(800.0)), on_demand, 40_000.0),
            Some(200.0)
        );
        assert_eq!(resolve(&share(None), on_demand, 40_000.0), Some(10_000.0));
        let units = capped(WriteRate::Units(300.0));
        assert_eq!(resolve(&units, on_demand, 1.0), Some(300.0));
        assert_eq!(resolve(&WriteOptions::default(), on_demand, 1.0), None);
    }

    #[test]
    fn each_instance_takes_its_share_and_keeps_one_pacer_per_job() {
        let pacers = JobPacers::new(4);
        let options = WriteOptions {
            write_units_per_second: Some(1000.0),
            ..WriteOptions::default()
        };
        let a = pacers.for_job(&JobId::new("a"), &options).unwrap();
        assert_eq!(a.units_per_second(), 250.0);
        assert!(Arc::ptr_eq(
            &a,
            &pacers.for_job(&JobId::new("a"), &options).unwrap()
        ));
        assert!(
            pacers
                .for_job(&JobId::new("b"), &WriteOptions::default())
                .is_none()
        );
        for i in 0..REMEMBERED_JOBS {
            pacers.for_job(&JobId::new(format!("other-{i}")), &options);
        }
        // "a" was the least recently used: forgotten, a new pacer next time.
        assert!(!Arc::ptr_eq(
            &a,
            &pacers.for_job(&JobId::new("a"), &options).unwrap()
        ));
    }
}
