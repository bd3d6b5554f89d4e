//! The log's side of the producer state: loading it at open from the newest snapshot and the
//! batches after it, rebuilding it after a truncation, snapshots at roll and close, expiry.

use super::open::Listing;
use super::producer_state::{
    self, load_latest, load_latest_of, remove_listed, remove_snapshots, BatchMetadata,
    ProducerStateEntry, ProducerStateManager,
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
        let wanted = w.producers.incomplete_histories(below);
        if wanted.is_empty() {
            return Ok(false);
        }
        let top = wanted
            .iter()
            .map(|&(_, _, before, _)| before)
            .max()
            .unwrap_or(below);
        // Per producer: its batches found so far, oldest first, and how many it may take.
        let mut found: std::collections::HashMap<i64, (i16, i64, usize, Vec<BatchMetadata>)> =
            wanted
                .iter()
                .map(|&(pid, epoch, before, need)| (pid, (epoch, before, need, Vec::new())))
                .collect();
        let segments: Vec<_> = self.segments().clone();
        let mut scanned = 0u64;
        for seg in segments.iter().rev().filter(|s| s.base_offset() < top) {
            if scanned >= Self::HISTORY_SCAN_BYTES
                || found.values().all(|(_, _, need, got)| got.len() >= *need)
            {
                break;
            }
            let view = self.view_of(seg)?;
            let data = view.data();
            scanned += data.len() as u64;
            let mut here: std::collections::HashMap<i64, Vec<BatchMetadata>> = Default::default();
            let mut pos = 0usize;
            while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
                let Ok(h) = BatchHeader::parse(rest) else {
                    break;
                };
                if h.base_offset >= top {
                    break;
                }
                if h.producer_id >= 0 && !h.is_control() {
                    if let Some((epoch, before, ..)) = found.get(&h.producer_id) {
                        if h.producer_epoch == *epoch && h.last_offset() < *before {
                            here.entry(h.producer_id).or_default().push(BatchMetadata {
                                last_sequence: producer_state::increment_sequence(
                                    h.base_sequence,
                                    h.last_offset_delta,
                                ),
                                last_offset: h.last_offset(),
                                offset_delta: h.last_offset_delta,
                                timestamp: h.max_timestamp,
                            });
                        }
                    }
                }
                pos += h.total_size();
            }
            for (pid, mut older) in here {
                if let Some((.., got)) = found.get_mut(&pid) {
                    older.append(got);
                    *got = older;
                }
            }
        }
        let mut changed = false;
        for (pid, (.., got)) in found {
            if !got.is_empty() {
                w.producers.prepend_history(pid, &got);
                changed = true;
            }
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
        w.producers = state;
        w.producer_history_below = history_below;
        self.publish_first_unstable(&w);
        Ok(())
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
        w.producers = state;
        w.producer_history_below = history_below;
        self.publish_first_unstable(w);
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
            let mut pos = 0usize;
            while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
                let h = BatchHeader::parse(rest).map_err(|e| {
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
                pos += h.total_size();
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

    /// Snapshots below `offset` go (retention and delete-records: Kafka deletes a segment's
    /// snapshot with it).
    pub(super) fn remove_snapshots_below(&self, offset: i64) -> Result<()> {
        remove_snapshots(&self.dir, |o| o < offset)?;
        lock(&self.txn_indexes).remove_below(&self.dir, offset)
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
