//! A chain's plan as stored at its start (`chain.json` beside the job's rejects reports):
//! each phase's batches of data files with their manifest item counts and MD5s, from which
//! every phase step rebuilds the same numbered batches.

use serde::{Deserialize, Serialize};

use crate::contract::ids::{BatchNo, JobId};
use crate::contract::messages::{ExportFiles, Work};
use crate::contract::rejects::ReportLocation;

/// A chain's plan as the coordinator stores it beside the job's rejects reports at the
/// start (`{rejects}{job}/export/chain.json`): what each phase step sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChain {
    pub phases: Vec<StoredPhase>,
}

/// One export of a chain: its batches, each its data files' keys and manifest item counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPhase {
    pub summary_key: String,
    pub incremental: bool,
    pub batches: Vec<Vec<(String, u64)>>,
    /// Each data file's manifest `md5Checksum`, by key (absent in a chain stored before
    /// the worker checked them).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub md5s: std::collections::BTreeMap<String, String>,
}

impl StoredChain {
    /// The first batch number of each phase, and the total.
    pub fn bases(&self) -> (Vec<u64>, u64) {
        let mut bases = Vec::with_capacity(self.phases.len());
        let mut next = 0;
        for phase in &self.phases {
            bases.push(next);
            next += phase.batches.len() as u64;
        }
        (bases, next)
    }

    /// The first phase at or after `phase` that has batches.
    pub fn next_with_batches(&self, phase: u32) -> Option<u32> {
        (phase as usize..self.phases.len())
            .find(|&k| !self.phases[k].batches.is_empty())
            .map(|k| k as u32)
    }

    /// Phase `phase`'s batches: (number, work).
    pub fn work(&self, phase: u32) -> Vec<(BatchNo, Work)> {
        let (bases, _) = self.bases();
        let Some(stored) = self.phases.get(phase as usize) else {
            return Vec::new();
        };
        let base = bases[phase as usize];
        let phase_end = base + stored.batches.len() as u64;
        let next_phase = self.next_with_batches(phase + 1);
        (stored.batches.iter().enumerate())
            .map(|(i, files)| {
                let work = Work::Export {
                    keys: files.iter().map(|(key, _)| key.clone()).collect(),
                    files: ExportFiles {
                        item_counts: files.iter().cloned().collect(),
                        md5s: (files.iter())
                            .filter_map(|(key, _)| {
                                Some((key.clone(), stored.md5s.get(key)?.clone()))
                            })
                            .collect(),
                        incremental: stored.incremental,
                        phase,
                        phase_end,
                        next_phase,
                    },
                };
                (BatchNo(base + i as u64), work)
            })
            .collect()
    }

    pub(super) fn files(&self) -> u64 {
        let batches = self.phases.iter().flat_map(|p| p.batches.iter());
        batches.map(|b| b.len() as u64).sum()
    }
}

/// Where a job's chain plan is kept.
pub fn chain_key(report: &ReportLocation, job_id: &JobId) -> String {
    format!("{}{job_id}/export/chain.json", report.prefix)
}

/// The marker a phase step writes once every batch of its phase is sent.
pub fn phase_sent_key(report: &ReportLocation, job_id: &JobId, phase: u32) -> String {
    format!("{}{job_id}/export/phase-{phase:03}.sent", report.prefix)
}
