//! The counting protocol over the ledger's item operations (why it is exactly once:
//! [`crate::job::shards`] and `docs/ledger.md`). Writes, in order: an intent token joins the
//! batch's shard; the batch's marker is created if absent; the shard applies the marker's
//! delta if the marker's token is still there. A duplicate that finds the marker drops its
//! own token and applies the marker's (a no-op unless the first counter crashed before
//! applying). A redriven batch that had failed records its recovery in the marker, with a
//! token added before, and applies it the same way.

use crate::contract::ids::{BatchNo, JobId};
use crate::fan_in::Ledger as _;
use crate::job::model::{BatchStats, Job, Recorded};
use crate::job::shards::{self, Marker, Outcome, Recovery, Shard};
use crate::port::ledger::{JobError, LedgerStore};

/// What a delivery reports about its batch.
#[derive(Debug, Clone, Copy)]
pub enum Count<'a> {
    Succeeded(BatchStats),
    Failed(&'a str),
}

pub async fn record<L: LedgerStore + ?Sized>(
    ledger: &L,
    job_id: &JobId,
    batch: BatchNo,
    count: Count<'_>,
) -> Result<Recorded, JobError> {
    let shard = shards::shard_of(batch);
    let token = shards::token(batch);
    ledger.add_intent(job_id, shard, &token).await?;
    let marker = match count {
        Count::Succeeded(stats) => Marker::counted(batch, token.clone(), stats),
        Count::Failed(reason) => Marker::failed(batch, token.clone(), reason),
    };
    if ledger.put_marker(job_id, &marker).await? {
        return match ledger.apply(job_id, shard, &token, &marker.delta()).await? {
            Some(applied) => Ok(Recorded::Counted(
                progress(ledger, job_id, shard, applied).await?,
            )),
            // A duplicate that found the marker applied it first.
            None => Ok(Recorded::AlreadyCounted(view(ledger, job_id).await?)),
        };
    }
    ledger.drop_intent(job_id, shard, &token).await?;
    let Some(existing) = ledger.marker(job_id, batch).await? else {
        return Err(JobError::Malformed {
            job_id: job_id.clone(),
            source: format!("batch {batch} has no marker after losing its creation").into(),
        });
    };
    // Finish whatever a crashed delivery left half done: the count first, then a recovery.
    let counted_now = ledger
        .apply(job_id, shard, &existing.token, &existing.delta())
        .await?
        .is_some();
    if let Some(recovery) = &existing.recovery {
        let recovered_now = ledger
            .apply(job_id, shard, &recovery.token, &recovery.delta())
            .await?
            .is_some();
        let job = view(ledger, job_id).await?;
        return Ok(if recovered_now {
            Recorded::Recovered(job)
        } else {
            Recorded::AlreadyCounted(job)
        });
    }
    match (count, existing.outcome) {
        // A batch counted as failed succeeds after a redrive: it recovers, once.
        (Count::Succeeded(stats), Outcome::Failed) => recover(ledger, job_id, batch, stats).await,
        _ => {
            let job = view(ledger, job_id).await?;
            Ok(if counted_now {
                Recorded::Counted(job)
            } else {
                Recorded::AlreadyCounted(job)
            })
        }
    }
}

async fn recover<L: LedgerStore + ?Sized>(
    ledger: &L,
    job_id: &JobId,
    batch: BatchNo,
    stats: BatchStats,
) -> Result<Recorded, JobError> {
    let shard = shards::shard_of(batch);
    let recovery = Recovery {
        token: shards::token(batch),
        stats,
    };
    ledger.add_intent(job_id, shard, &recovery.token).await?;
    let ours = ledger.put_recovery(job_id, batch, &recovery).await?;
    let recovery = if ours {
        recovery
    } else {
        // Another delivery recorded a recovery first: apply its token, not ours.
        ledger.drop_intent(job_id, shard, &recovery.token).await?;
        let theirs = ledger.marker(job_id, batch).await?.and_then(|m| m.recovery);
        match theirs {
            Some(theirs) => theirs,
            None => return Ok(Recorded::AlreadyCounted(view(ledger, job_id).await?)),
        }
    };
    let applied = ledger
        .apply(job_id, shard, &recovery.token, &recovery.delta())
        .await?;
    let job = view(ledger, job_id).await?;
    Ok(if applied.is_some() {
        Recorded::Recovered(job)
    } else {
        Recorded::AlreadyCounted(job)
    })
}

/// The job after a count: the exact view when the count completed its shard of a sealed job
/// (a candidate for the final transition, once per shard), else the header with this
/// count's shard only (a partial view: cheap, one read, and never finishes a job, since
/// `try_finish` decides on a fresh view). The header is read after the shard was written,
/// so a seal landing meanwhile is seen here or sees this count (see `Ledger::seal`).
async fn progress<L: LedgerStore + ?Sized>(
    ledger: &L,
    job_id: &JobId,
    shard: u32,
    applied: Shard,
) -> Result<Job, JobError> {
    let Some(header) = ledger.header(job_id).await? else {
        return Err(JobError::NotFound(job_id.clone()));
    };
    if header.sealed && applied.is_complete(shard, header.total_batches) {
        let all = ledger.shards(job_id).await?;
        return Ok(shards::view(header, all.iter().map(|(_, s)| s)));
    }
    Ok(shards::view(header, [&applied]))
}

async fn view<L: LedgerStore + ?Sized>(ledger: &L, job_id: &JobId) -> Result<Job, JobError> {
    ledger
        .get(job_id)
        .await?
        .ok_or_else(|| JobError::NotFound(job_id.clone()))
}
