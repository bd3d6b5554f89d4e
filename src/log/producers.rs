//! The log's side of the producer state: loading it at open from the newest snapshot and the
//! batches after it, rebuilding it after a truncation, snapshots at roll and close, expiry.

use std::path::PathBuf;

use super::open::Listing;
use super::producer_state::{
    self, list_snapshots, load_latest, load_latest_of, remove_listed, remove_snapshots,
    MissingHistory, ProducerStateEntry, ProducerStateManager,
};
use super::txn_index::{AbortedTxn, TxnIndexes};
use super::{lock, Log, Writer};
use crate::batch::{BatchHeader, RecordBatch};
use crate::checkpoint;
use crate::error::{Error, Result};

impl Log {
    /// The state the log holds for `producer_id` (its epoch, its last batches), if any.
    pub fn producer_state(&self, producer_id: i64) -> Result<Option<ProducerStateEntry>> {
        let w = self.writer()?;
        Ok(w.producers.entry(producer_id).cloned())
    }

    /// How many producer ids the log holds state for.
    pub fn producer_count(&self) -> Result<usize> {
        Ok(self.writer()?.producers.len())
    }

    /// Removes the producers whose last batch is `producer_id_expiration_ms` or more older than
    /// `now_ms` (Kafka's `producer.id.expiration.ms`; no open transaction). Returns how many.
    ///
    /// # Errors
    /// [`Error::PreviousIo`] if the writer lock was poisoned.
    pub fn remove_expired_producers(&self, now_ms: i64) -> Result<usize> {
        let expiry = self.config.producer_id_expiration_ms;
        Ok(self.writer()?.producers.remove_expired(now_ms, expiry))
    }

    /// Bytes of segments (from the newest down) that `complete_producer_histories` walks at
    /// most: a producer retrying after a restart retries what it sent just before it.
    const HISTORY_SCAN_BYTES: u64 = 64 << 20;

    /// Fills in, once per load of the state from a snapshot, the batches the snapshot dropped
    /// (Kafka's format keeps each producer's last batch only): for every producer with fewer
    /// than five retained batches, the oldest of them below the snapshot, its earlier batches
    /// of the same epoch are looked up in the log (a header walk over at most
    /// `HISTORY_SCAN_BYTES` of segments, newest first) and retained again. A retry of any of
    /// the producer's last five batches is then answered as a duplicate, as before the
    /// restart; Kafka's log answers it OUT_OF_ORDER_SEQUENCE once restarted. Called when a
    /// client's batch was refused as out of order, so an open costs nothing for it. Returns
    /// whether a history changed (the refused append is then worth trying again).
    ///
    /// # Errors
    /// As `Log::view_of` when a segment cannot be mapped. A batch header that does not parse
    /// ends the walk of its segment (this is a lookup; recovery vouches for the bytes).
    pub(super) fn complete_producer_histories(&self) -> Result<bool> {
        let mut w = self.writer()?;
        let Some(below) = w.producer_history_below.take() else {
            return Ok(false);
        };
        let mut missing = w.producers.missing_histories(below);
        let Some(top) = missing.values().map(|m| m.before).max() else {
            return Ok(false);
        };
        let segments: Vec<_> = self.segments().clone();
        let mut scanned = 0u64;
        for seg in segments.iter().rev().filter(|s| s.base_offset() < top) {
            if scanned >= Self::HISTORY_SCAN_BYTES
                || missing.values().all(|m| m.found.len() >= m.room)
            {
                break;
            }
            let data = self.view_of(seg)?.data();
            scanned += data.len() as u64;
            missing.values_mut().for_each(MissingHistory::start_segment);
            for (_, h) in batch_headers(&data) {
                let Ok(h) = h else { break };
                if h.base_offset >= top {
                    break;
                }
                if let Some(m) = missing.get_mut(&h.producer_id) {
                    m.note(&h);
                }
            }
            missing.values_mut().for_each(MissingHistory::end_segment);
        }
        let mut changed = false;
        for (pid, m) in &missing {
            changed |= !m.found.is_empty();
            w.producers.fill_history(*pid, m);
        }
        Ok(changed)
    }

    /// Loads the state at open (Kafka's `truncateAndReload` then `rebuildProducerState`):
    /// snapshots past the log end or below the log start go; the newest valid one left is
    /// loaded and the batches after it replayed. A clean open with no snapshot at all starts
    /// empty with no scan (Kafka's upgrade path); any other open with none replays the log from
    /// its start. Ends with a snapshot at the log end offset if there was none.
    ///
    /// The `.txnindex` files are read too; their entries from the replay's start on are
    /// dropped and written again from the replayed markers (Kafka rebuilds them in
    /// `LogSegment.recover`). A damaged one makes the replay start at the log start.
    ///
    /// `found` is the open's listing of the directory (nothing between the listing and this
    /// step creates or removes a snapshot or a `.txnindex`).
    pub(super) fn load_producer_state(&self, clean: bool, found: Listing) -> Result<()> {
        let leo = self.log_end_offset();
        let start = self.log_start_offset();
        let bases = self.segment_base_offsets();
        let (txn, damaged) = TxnIndexes::load(found.txn_indexes, &bases)?;
        *lock(&self.txn_indexes) = txn;
        let mut snapshots = found.snapshots;
        let any = !snapshots.is_empty();
        remove_listed(&mut snapshots, |o| o > leo || o < start)?;
        let latest = if damaged {
            None
        } else {
            load_latest_of(&snapshots, start, leo)?
        };
        let history_below = latest.as_ref().map(ProducerStateManager::map_end_offset);
        let mut state = match latest {
            Some(s) => s,
            None if clean && !any && !damaged => ProducerStateManager::new_at(leo),
            None => ProducerStateManager::new_at(start),
        };
        let rebuilt = self.replay_and_index(&mut state, leo)?;
        state.remove_expired(self.clock.now_ms(), self.config.producer_id_expiration_ms);
        let mut w = self.writer()?;
        if !crate::fs::exists(&producer_state::snapshot_path(&self.dir, leo)) && leo > start {
            producer_state::write_snapshot(&self.dir, &state)?;
        }
        if rebuilt {
            // The rewritten indexes' names, before anything counts on them.
            checkpoint::sync_dir(&self.dir)?;
        }
        self.install_producers(&mut w, state, history_below);
        Ok(())
    }

    /// Makes `state` the log's producer state (writer lock held as `w`); `loaded_below` is the
    /// offset of the snapshot it was loaded from, if any (see `complete_producer_histories`).
    pub(super) fn install_producers(
        &self,
        w: &mut Writer,
        state: ProducerStateManager,
        loaded_below: Option<i64>,
    ) {
        w.producers = state;
        w.producer_history_below = loaded_below;
        self.publish_first_unstable(w);
    }

    /// Replays the batches from the state's map end offset up to `to` and rebuilds the
    /// `.txnindex` entries from there on. Returns whether an index was rewritten.
    fn replay_and_index(&self, state: &mut ProducerStateManager, to: i64) -> Result<bool> {
        let from = state.map_end_offset().max(self.log_start_offset());
        let aborted = self.replay_producers(state, to)?;
        let mut txn = lock(&self.txn_indexes);
        let stale = txn.all().values().flatten().any(|t| t.last_offset >= from);
        if !stale && aborted.is_empty() {
            return Ok(false);
        }
        txn.truncate_from(&self.dir, from)?;
        drop(txn);
        self.index_aborted(&aborted)?;
        Ok(true)
    }

    /// After a truncation to the log end offset (writer lock held as `w`): the state is rebuilt
    /// from the newest snapshot left and the batches after it. The truncation removed the
    /// snapshots above the cut already, durably, before it cut anything (`truncate_locked`):
    /// a snapshot of the cut history must never describe the new one.
    pub(super) fn rebuild_producer_state(&self, w: &mut Writer) -> Result<()> {
        let leo = self.log_end_offset();
        let start = self.log_start_offset();
        let latest = load_latest(&self.dir, start, leo)?;
        let history_below = latest.as_ref().map(ProducerStateManager::map_end_offset);
        let mut state = latest.unwrap_or_else(|| ProducerStateManager::new_at(start));
        self.replay_and_index(&mut state, leo)?;
        self.install_producers(w, state, history_below);
        Ok(())
    }

    /// Applies every batch from the state's map end offset up to `to`, as a follower would.
    /// Walks batch headers only: the bytes were validated when written or by recovery (below the
    /// recovery point they are trusted, as every read path trusts them), so no CRC is computed
    /// here and a replay costs a header read per batch.
    /// Returns the transactions the replayed ABORT markers closed.
    fn replay_producers(
        &self,
        state: &mut ProducerStateManager,
        to: i64,
    ) -> Result<Vec<AbortedTxn>> {
        let mut aborted = Vec::new();
        let from = state.map_end_offset().max(self.log_start_offset());
        let segments: Vec<_> = self.segments().clone();
        let first = segments
            .partition_point(|s| s.base_offset() <= from)
            .saturating_sub(1);
        for seg in &segments[first..] {
            if seg.base_offset() >= to {
                break;
            }
            let view = self.view_of(seg)?;
            let data = view.data();
            for (pos, h) in batch_headers(&data) {
                let h = h.map_err(|e| {
                    Error::corrupt(
                        &seg.paths().log,
                        pos as u64,
                        format!("producer replay: {e}"),
                    )
                })?;
                if h.base_offset >= to {
                    break;
                }
                if h.next_offset() > state.map_end_offset() {
                    let marker = if h.is_control() && h.producer_id >= 0 {
                        let end = pos + h.total_size();
                        (end <= data.len())
                            .then(|| data.slice(pos..end))
                            .and_then(|b| RecordBatch::parse_header_only(b).ok())
                            .and_then(|b| b.end_txn_marker().ok().flatten())
                    } else {
                        None
                    };
                    aborted.extend(state.replay(&h, marker));
                }
            }
        }
        state.advance_to(to);
        Ok(aborted)
    }

    /// A roll to `new_base` (writer lock held): the state up to it is snapshotted, as Kafka's
    /// roll does (no sync: the roll's directory sync makes the name durable).
    pub(super) fn snapshot_at_roll(&self, w: &Writer) -> Result<()> {
        producer_state::write_snapshot(&self.dir, &w.producers).map(|_| ())
    }

    /// A clean close: the state at the log end offset, synced before the clean-shutdown marker.
    pub(super) fn snapshot_at_close(&self, state: &ProducerStateManager) -> Result<()> {
        producer_state::write_snapshot_synced(&self.dir, state)
    }

    /// Retention or delete-records deleted the segments below `offset`: their transaction
    /// indexes are forgotten, and their files returned (with the segments' base offsets), still
    /// under their names, for the caller to remove once the delete delay has passed, with the
    /// producer snapshots below `offset` (Kafka deletes a segment's snapshot and `.txnindex`
    /// with it). See `Log::remove_due_files`.
    pub(super) fn forget_txn_indexes_below(&self, offset: i64) -> Vec<(i64, PathBuf)> {
        lock(&self.txn_indexes).forget_files_below(&self.dir, offset)
    }

    /// The producer snapshots at offsets in `range` are renamed `.deleted` (not unlinked: ext4
    /// frees a file's blocks in the unlink, 5-10x the cost of a rename); returns the new names.
    /// Not durable until the directory is synced.
    pub(super) fn retire_snapshots(
        &self,
        range: impl std::ops::RangeBounds<i64>,
    ) -> Result<Vec<PathBuf>> {
        let mut renamed = Vec::new();
        for (_, path) in list_snapshots(&self.dir)?.range(range) {
            renamed.extend(checkpoint::rename_to_deleted(path)?);
        }
        Ok(renamed)
    }

    /// Every snapshot and `.txnindex` goes (a full truncation).
    pub(super) fn remove_all_snapshots(&self) -> Result<()> {
        lock(&self.txn_indexes).remove_all(&self.dir)?;
        if remove_snapshots(&self.dir, |_| true)? > 0 {
            checkpoint::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// The batch headers laid end to end in `data`, with their positions; ends after the first
/// one that does not parse (yielded as its error) or at the end of `data`.
fn batch_headers(
    data: &[u8],
) -> impl Iterator<
    Item = (
        usize,
        std::result::Result<BatchHeader, crate::batch::BatchError>,
    ),
> + '_ {
    let mut pos = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        let rest = data.get(pos..).filter(|r| !r.is_empty() && !done)?;
        let at = pos;
        match BatchHeader::parse(rest) {
            Ok(h) => {
                pos += h.total_size();
                Some((at, Ok(h)))
            }
            Err(e) => {
                done = true;
                Some((at, Err(e)))
            }
        }
    })
}
