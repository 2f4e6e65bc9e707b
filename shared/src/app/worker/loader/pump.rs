//! The row pump: decoded rows into 25-row chunks for the writer, each row booking its write
//! slot first when the job is capped, rejects collected, stopping at a row boundary when
//! the part's stop is due.

use std::sync::Mutex;

use futures::SinkExt;
use futures::channel::mpsc;

use super::{Loader, PumpError, RowSource, lock};
use crate::app::worker::chunk_writer::{MAX_BATCH_ITEMS, SourcedRow};
use crate::app::worker::lanes;
use crate::ingest::decode::Decoded;
use crate::ingest::format::RowDecoder;
use crate::ingest::rejects::BatchRejects;

impl Loader<'_> {
    /// Decodes every row into chunks for the writer, counting rejected rows. Rows decoded
    /// before a failed read are still handed over (a corrupt tail rejects only the rest).
    /// Returns whether it stopped early because the stop was due (`stoppable` only), at a
    /// row boundary: every row decoded so far has been handed over.
    pub(super) async fn pump<R: tokio::io::AsyncBufRead + Unpin>(
        &self,
        decoder: &mut RowDecoder<R>,
        source: &RowSource,
        mut rows: mpsc::Sender<Vec<SourcedRow>>,
        rejects: &Mutex<BatchRejects>,
        rejected_rows: &mut u64,
        stoppable: bool,
    ) -> Result<bool, PumpError> {
        let mut chunk = Vec::with_capacity(MAX_BATCH_ITEMS);
        let mut failed = None;
        let mut stopped = false;
        // An object that cannot resume books its slots wherever they fall.
        let limit = self.stop.due_at().filter(|_| stoppable);
        loop {
            if stoppable && self.stop.due() {
                stopped = true;
                break;
            }
            // One unit booked before the record is read (its size is not known yet), grown
            // to the row's units after, or given back if no row comes: booking after the
            // read would let every concurrent object add one row past the stop.
            let slot = match self.pacing {
                None => None,
                Some(pacing) => match pacing.pacer.reserve_before(1, limit) {
                    Some(slot) => Some((pacing, slot)),
                    None => {
                        self.stop.paced_out();
                        stopped = true;
                        break;
                    }
                },
            };
            let give_back = || {
                if let Some((pacing, _)) = slot {
                    pacing.pacer.adjust(-1);
                }
            };
            let decoded = match decoder.next().await {
                Ok(Some(decoded)) => decoded,
                Ok(None) => {
                    give_back();
                    break;
                }
                Err(error) => {
                    give_back();
                    failed = Some(PumpError::Read(error));
                    break;
                }
            };
            match decoded {
                Decoded::Row(row) => {
                    if let Some((pacing, _)) = slot {
                        let units = (pacing.units)(&row).max(1);
                        pacing.pacer.adjust(units as i64 - 1);
                    }
                    chunk.push(SourcedRow {
                        key_hash: lanes::key_hash(&row.key),
                        object: source.object.clone(),
                        ranged: source.ranged,
                        slot: slot.map(|(_, slot)| slot),
                        row,
                    });
                    if chunk.len() == MAX_BATCH_ITEMS {
                        let full =
                            std::mem::replace(&mut chunk, Vec::with_capacity(MAX_BATCH_ITEMS));
                        rows.send(full)
                            .await
                            .map_err(|_| PumpError::WriterStopped)?;
                    }
                }
                Decoded::Reject(reject) => {
                    give_back();
                    *rejected_rows += 1;
                    lock(rejects).row(&source.object, reject);
                }
            }
        }
        if !chunk.is_empty() {
            rows.send(chunk)
                .await
                .map_err(|_| PumpError::WriterStopped)?;
        }
        failed.map_or(Ok(stopped), Err)
    }
}
