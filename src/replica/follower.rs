//! The follower side of [`Partition`]: the fetch it sends and what it does with the answer.

use bytes::Bytes;

use super::epoch_cache::{BatchEpoch, EpochEndOffset};
use super::fetch::{FetchRequest, FetchResponse, FetchedRecords, FollowerProgress};
use super::partition::{Durability, LogView, Partition, State};
use crate::batch::{self, LOG_OVERHEAD};
use crate::error::ReplicaError;
use crate::error::{Error, Result};
use crate::log::AppendOrigin;

impl Partition {
    /// The follower's fetch: from its log end offset, with its latest epoch as the last fetched
    /// epoch (Kafka's follower sends its epoch cache's latest epoch) and the leader epoch it
    /// follows.
    ///
    /// # Errors
    /// [`ReplicaError::NotFollower`] unless this replica follows.
    pub fn fetch_request(&self, max_bytes: usize) -> Result<FetchRequest> {
        let st = self.lock();
        let (leader_epoch, _) = Self::follower_role(&st)?;
        Ok(FetchRequest {
            replica_id: self.config().replica_id,
            fetch_offset: self.log().log_end_offset(),
            last_fetched_epoch: st.cache.latest_epoch(),
            current_leader_epoch: Some(leader_epoch),
            max_bytes,
        })
    }

    /// Applies the leader's answer to this follower's fetch:
    /// - records: appended as the leader's (see [`AppendOrigin::Follower`]), each batch's epoch
    ///   recorded in the epoch cache; then the high watermark becomes the leader's clamped to
    ///   `[log start, log end]`, and the log start rises to the leader's (not past the high
    ///   watermark). Under [`Durability::OnFlush`] the appended batches are flushed before this
    ///   returns (a follower flushes before it fetches again);
    /// - a diverging epoch: Kafka's truncation rule and nothing else (no records, no high
    ///   watermark: KAFKA-14704). With the leader's answer `(epoch, end)` and the follower's own
    ///   end offset for that epoch `(own_epoch, own_end)`: if the follower does not know
    ///   `epoch` (`own_epoch != epoch`) it truncates to `min(own_end, log end)` and the next
    ///   fetch goes on searching (KIP-279); else to `min(end, own_end, log end)`; if it knows
    ///   nothing, to `min(end, log end)`;
    /// - out of range: if the leader's log ends below ours, truncate there; if ours ends below
    ///   the leader's log start, empty the log and restart at the leader's log start;
    /// - fencing and not-leader answers: nothing.
    ///
    /// An empty follower whose fetch offset (its log start) falls inside the first batch
    /// answered (the leader deleted records up to the middle of it) starts its log again at
    /// that batch's base offset, then appends (Kafka's `truncateFullyAndStartAt`).
    ///
    /// A truncation below the high watermark is refused unless the newest committed record it
    /// cuts is of an epoch older than the latest unclean election the follower was told of
    /// ([`Election::Unclean`](super::Election::Unclean),
    /// [`Election::CleanAfterUnclean`](super::Election::CleanAfterUnclean)); it then lowers the high
    /// watermark with it. A truncation below the log start (possible only after an unclean
    /// election) empties the log and starts it at the target.
    ///
    /// # Errors
    /// [`ReplicaError::NotFollower`]; [`ReplicaError::TruncationBelowHighWatermark`];
    /// [`Error::EpochDecreased`] for records older than the follower's latest epoch;
    /// as [`Log::append_batches`](crate::Log::append_batches) (the answer does not continue
    /// this log: nothing is written); [`Error::Io`].
    pub fn apply_fetch(&self, response: &FetchResponse) -> Result<FollowerProgress> {
        match response {
            FetchResponse::Records(r) => self.apply_records(r),
            FetchResponse::DivergingEpoch(leader) => self.truncate_on_divergence(*leader),
            FetchResponse::OffsetOutOfRange {
                log_start_offset,
                log_end_offset,
            } => self.apply_out_of_range(*log_start_offset, *log_end_offset),
            FetchResponse::FencedLeaderEpoch { .. }
            | FetchResponse::UnknownLeaderEpoch { .. }
            | FetchResponse::NotLeader => {
                Self::follower_role(&self.lock())?;
                Ok(FollowerProgress::Unchanged)
            }
        }
    }

    fn apply_records(&self, r: &FetchedRecords) -> Result<FollowerProgress> {
        let (appended, leo, hw) = {
            let mut st = self.lock();
            Self::follower_role(&st)?;
            let mut before = self.log().log_end_offset();
            if !r.records.is_empty() {
                if let (Some(latest), Some(first)) = (
                    st.cache.latest_epoch(),
                    batch::peek_partition_leader_epoch(&r.records),
                ) {
                    if first < latest {
                        return Err(Error::EpochDecreased {
                            previous_epoch: latest,
                            leader_epoch: first,
                            base_offset: batch::peek_frame(&r.records).map_or(-1, |f| f.0),
                        });
                    }
                }
                if let Some(base) = straddled_start(self.log(), &r.records) {
                    // The leader's log start is inside its first batch, and this log is empty
                    // at that start: it starts again at the batch's base (Kafka's follower
                    // does the same), and the log start rises back below.
                    self.log().reset_to(base)?;
                    st.cache.clear_and_flush()?;
                    self.set_high_watermark(base);
                    before = base;
                }
                self.log()
                    .append_batches(&r.records, AppendOrigin::Follower)?;
                record_epochs(&mut st, &r.records)?;
            }
            let leo = self.log().log_end_offset();
            let lso = self.log().log_start_offset();
            let hw = r.high_watermark.clamp(lso, leo);
            self.set_high_watermark(hw);
            let new_start = r.log_start_offset.min(hw);
            if new_start > lso {
                let lso = self.log().delete_records(new_start)?;
                st.cache.truncate_from_start(lso)?;
            }
            (leo - before, leo, hw)
        };
        if self.durability() == Durability::OnFlush && appended > 0 {
            self.wait_durable(leo)?;
        }
        Ok(FollowerProgress::Appended {
            records_appended: appended,
            log_end_offset: leo,
            high_watermark: hw,
        })
    }

    fn truncate_on_divergence(&self, leader: EpochEndOffset) -> Result<FollowerProgress> {
        let mut st = self.lock();
        Self::follower_role(&st)?;
        let leo = self.log().log_end_offset();
        let (target, complete) = match st.cache.end_offset_for(leader.leader_epoch, leo) {
            None => (leader.end_offset.min(leo), true),
            Some(own) if own.leader_epoch != leader.leader_epoch => {
                (own.end_offset.min(leo), false)
            }
            Some(own) => (leader.end_offset.min(own.end_offset).min(leo), true),
        };
        let end = self.truncate_locked(&mut st, target)?;
        Ok(FollowerProgress::Truncated {
            log_end_offset: end,
            complete,
        })
    }

    fn apply_out_of_range(&self, leader_start: i64, leader_end: i64) -> Result<FollowerProgress> {
        let mut st = self.lock();
        Self::follower_role(&st)?;
        let leo = self.log().log_end_offset();
        if leader_end < leo {
            let end = self.truncate_locked(&mut st, leader_end)?;
            return Ok(FollowerProgress::Truncated {
                log_end_offset: end,
                complete: true,
            });
        }
        if leo < leader_start {
            // Everything we hold lies below the leader's log start: none of it is needed.
            self.log().truncate_fully_and_start_at(leader_start)?;
            st.cache.clear_and_flush()?;
            self.set_high_watermark(leader_start);
            return Ok(FollowerProgress::RestartedAt {
                offset: leader_start,
            });
        }
        Ok(FollowerProgress::Unchanged)
    }

    /// Truncates the log and the epoch cache to `target`, unless that cuts committed records
    /// no unclean election excuses (see [`Partition::apply_fetch`]). Returns the new log end
    /// offset.
    fn truncate_locked(&self, st: &mut State, target: i64) -> Result<i64> {
        let hw = self.high_watermark();
        let end = self.truncate_unchecked(st, target, hw)?;
        if self.high_watermark() < hw {
            // A checkpoint above the cut would cover other records once the log grows again.
            self.checkpoint_high_watermark()?;
        }
        Ok(end)
    }

    fn truncate_unchecked(&self, st: &mut State, target: i64, hw: i64) -> Result<i64> {
        if target < hw {
            // Epochs only grow along the log: the newest committed record cut has the latest
            // epoch of all those cut.
            let newest_cut = st.cache.epoch_for_offset(hw - 1);
            let excused = match (st.unclean_epoch, newest_cut) {
                (Some(unclean), Some(epoch)) => epoch < unclean,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !excused {
                return Err(ReplicaError::TruncationBelowHighWatermark {
                    offset: target,
                    high_watermark: hw,
                }
                .into());
            }
            self.set_high_watermark(target.max(self.log().log_start_offset()));
        }
        if target < self.log().log_start_offset() {
            // Nothing this log holds is in the leader's history.
            let end = self.log().reset_to(target)?;
            st.cache.clear_and_flush()?;
            self.set_high_watermark(end);
            return Ok(end);
        }
        let end = self.log().truncate_to(target)?;
        // Also when nothing was cut: an epoch this replica began as leader at the log end,
        // with no batch, goes.
        st.cache.truncate_from_end(end)?;
        if self.high_watermark() > end {
            self.set_high_watermark(end);
        }
        Ok(end)
    }
}

/// The base offset of the first batch of `records` if this log is empty and its end lies
/// inside that batch (after its base, at or before its last offset).
fn straddled_start(log: LogView<'_>, records: &[u8]) -> Option<i64> {
    let leo = log.log_end_offset();
    let span = batch::peek_span(records)?;
    (leo == log.log_start_offset() && span.base_offset < leo && leo <= span.last_offset())
        .then_some(span.base_offset)
}

/// Records the epoch of each batch in `records` (already validated by the append) in the
/// cache. Only the headers are read.
fn record_epochs(st: &mut State, records: &Bytes) -> Result<()> {
    let mut rest: &[u8] = records;
    let mut last_epoch = None;
    while let (Some((base, len)), Some(epoch)) = (
        batch::peek_frame(rest),
        batch::peek_partition_leader_epoch(rest),
    ) {
        if last_epoch != Some(epoch) {
            st.cache.record_batch_epoch(BatchEpoch::new(epoch, base))?;
            last_epoch = Some(epoch);
        }
        let size = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .saturating_add(LOG_OVERHEAD);
        rest = rest.get(size..).unwrap_or_default();
    }
    Ok(())
}
