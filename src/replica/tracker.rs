//! The leader's view of a partition's replicas, without I/O. See [`ReplicaTracker`].

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ReplicaError;
use crate::error::{Error, Result};
pub use crate::id::ReplicaId;

/// How the leader computes its high watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HighWatermarkPolicy {
    /// Kafka's: the smallest log end offset among the leader, the ISR and the followers caught up
    /// within `replica_lag_time_max_ms`; it only advances while the ISR has at least
    /// `min(min_insync_replicas, replication factor)` members.
    #[default]
    InSyncReplicas,
    /// KRaft's (Raft's): every replica is a voter; the high watermark is the log end offset that
    /// a majority of voters has reached (the `n/2 + 1`-th highest), and it only advances once
    /// that offset is past the current epoch's start offset, i.e. once a record of the leader's
    /// own epoch is on a majority. The ISR is still tracked but does not gate anything.
    Majority,
}

/// Knobs of a [`ReplicaTracker`], Kafka's defaults in [`Default`].
///
/// ```
/// use partlog::replica::{HighWatermarkPolicy, TrackerConfig};
/// let config = TrackerConfig { min_insync_replicas: 2, ..Default::default() };
/// assert!(config.validate().is_ok());
/// assert_eq!(config.policy, HighWatermarkPolicy::InSyncReplicas);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Kafka `min.insync.replicas`: while the ISR is smaller than
    /// `min(min_insync_replicas, replication factor)` (Kafka's `effectiveMinIsr`), `acks=all`
    /// appends are refused and (policy [`HighWatermarkPolicy::InSyncReplicas`]) the high
    /// watermark does not advance. At least 1.
    pub min_insync_replicas: usize,
    /// Kafka `replica.lag.time.max.ms`: a follower not caught up for longer leaves the ISR.
    /// At least 0.
    pub replica_lag_time_max_ms: i64,
    /// How the high watermark is computed.
    pub policy: HighWatermarkPolicy,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            min_insync_replicas: 1,
            replica_lag_time_max_ms: 30_000,
            policy: HighWatermarkPolicy::InSyncReplicas,
        }
    }
}

impl TrackerConfig {
    /// Checks every knob's range.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first knob out of range.
    pub fn validate(&self) -> Result<()> {
        if self.min_insync_replicas == 0 {
            return Err(Error::Config {
                knob: "min_insync_replicas",
                value: self.min_insync_replicas.to_string(),
                reason: "must be at least 1",
            });
        }
        if self.replica_lag_time_max_ms < 0 {
            return Err(Error::Config {
                knob: "replica_lag_time_max_ms",
                value: self.replica_lag_time_max_ms.to_string(),
                reason: "must not be negative",
            });
        }
        Ok(())
    }
}

/// What a leader knows when it takes office for an epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderTerm {
    /// This replica, the leader.
    pub leader: ReplicaId,
    /// Every replica of the partition (Kafka's assigned replicas), the leader included.
    pub replicas: Vec<ReplicaId>,
    /// The in-sync replicas, the leader included.
    pub isr: Vec<ReplicaId>,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The offset at which the epoch starts: the leader's log end offset when it was elected.
    pub epoch_start_offset: i64,
    /// The leader's log end offset now.
    pub log_end_offset: i64,
    /// The high watermark the leader knew before (as a follower, or from its checkpoint).
    pub high_watermark: i64,
}

impl LeaderTerm {
    /// A term just elected: every replica in sync, the epoch starting at `log_end_offset`.
    pub fn new(
        leader: ReplicaId,
        replicas: Vec<ReplicaId>,
        leader_epoch: i32,
        log_end_offset: i64,
        high_watermark: i64,
    ) -> Self {
        LeaderTerm {
            leader,
            isr: replicas.clone(),
            replicas,
            leader_epoch,
            epoch_start_offset: log_end_offset,
            log_end_offset,
            high_watermark,
        }
    }
}

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaState {
    /// The follower's log end offset: the offset of its latest fetch; `None` before its first
    /// fetch under this leader.
    pub log_end_offset: Option<i64>,
    /// The leader's log end offset when it served the follower's previous fetch.
    pub last_fetch_leader_log_end_offset: Option<i64>,
    /// When that fetch arrived (0: never).
    pub last_fetch_time_ms: i64,
    /// The latest time `t` such that the follower's latest fetch offset was at least the
    /// leader's log end offset at `t` (`i64::MIN`: never).
    pub last_caught_up_time_ms: i64,
    /// Whether the follower is in the ISR.
    pub in_sync: bool,
}

impl ReplicaState {
    fn reset(caught_up_time_ms: i64) -> Self {
        ReplicaState {
            log_end_offset: None,
            last_fetch_leader_log_end_offset: None,
            last_fetch_time_ms: 0,
            last_caught_up_time_ms: caught_up_time_ms,
            in_sync: false,
        }
    }

    /// Kafka's `isCaughtUp`: at the leader's log end offset, or caught up within the lag time.
    fn is_caught_up(&self, leader_log_end_offset: i64, now_ms: i64, max_lag_ms: i64) -> bool {
        self.log_end_offset == Some(leader_log_end_offset)
            || now_ms.saturating_sub(self.last_caught_up_time_ms) <= max_lag_ms
    }
}

/// Where an `acks=all` append stands (Kafka's `checkEnoughReplicasReachOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcksAllStatus {
    /// The high watermark has not reached the append yet.
    Pending,
    /// The high watermark covers the append: acknowledge it.
    Complete,
    /// The high watermark covers the append, but the ISR shrank below `min_insync_replicas`
    /// meanwhile (Kafka's `NOT_ENOUGH_REPLICAS_AFTER_APPEND`).
    NotEnoughReplicasAfterAppend,
}

/// The leader's view of a partition's replicas (Kafka's `Partition` + `Replica` bookkeeping,
/// without I/O): each follower's log end offset and last caught-up time, the in-sync replica set
/// (ISR), and the high watermark.
///
/// Time comes in as `now_ms` arguments (milliseconds, any monotonic origin, e.g. a
/// [`Clock`](crate::Clock)); nothing sleeps or spawns.
///
/// Invariants:
/// 1. the ISR is a subset of the replica set and always contains the leader;
/// 2. `0 <= high_watermark <= log_end_offset` (the leader's), and the high watermark never
///    decreases while this tracker lives;
/// 3. `epoch_start_offset <= log_end_offset`.
///
/// A leader serving a follower's fetch calls, in Kafka's order: [`Self::on_fetch`],
/// [`Self::maybe_expand_isr`], [`Self::maybe_advance_hw`]; after its own
/// appends [`Self::set_leader_log_end`] then `maybe_advance_hw`; and periodically
/// [`Self::shrink_isr`] then `maybe_advance_hw`.
///
/// ```
/// use partlog::replica::{LeaderTerm, ReplicaId, ReplicaTracker, TrackerConfig};
/// let (a, b) = (ReplicaId(1), ReplicaId(2));
/// let term = LeaderTerm::new(a, vec![a, b], 0, 0, 0);
/// let mut tracker = ReplicaTracker::new(TrackerConfig::default(), term, 1_000)?;
/// tracker.set_leader_log_end(10)?;
/// assert_eq!(tracker.maybe_advance_hw(1_000), None); // b has not fetched yet
/// tracker.on_fetch(b, 10, 10, 1_100)?;
/// assert_eq!(tracker.maybe_advance_hw(1_100), Some(10));
/// assert!(tracker.is_committed(9));
/// # Ok::<(), partlog::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReplicaTracker {
    config: TrackerConfig,
    leader: ReplicaId,
    leader_epoch: i32,
    /// Invariant: `<= log_end_offset`.
    epoch_start_offset: i64,
    /// The leader's log end offset. Invariant: `>= high_watermark`.
    log_end_offset: i64,
    /// Invariant: never decreases.
    high_watermark: i64,
    /// Every replica but the leader.
    followers: BTreeMap<ReplicaId, ReplicaState>,
    /// Invariant: contains the leader; a subset of the leader and `followers`.
    isr: BTreeSet<ReplicaId>,
    /// Kafka's partition epoch within this leader epoch: 0 at the start of the epoch, raised
    /// by every [`update_isr`](Self::update_isr). Invariant: never decreases within an epoch.
    partition_epoch: i32,
}

impl ReplicaTracker {
    /// A tracker for a newly elected leader. Followers start unknown (no log end offset); the
    /// ones in the ISR count as caught up at `now_ms`, the others never (Kafka's reset on
    /// election).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad knob; [`Error::Replica`] when the term is inconsistent: the
    /// leader or an ISR member not among the replicas, a replica listed twice, the ISR without
    /// the leader, a negative epoch or offset, a high watermark or epoch start past the log end.
    pub fn new(config: TrackerConfig, term: LeaderTerm, now_ms: i64) -> Result<Self> {
        config.validate()?;
        validate_offsets(&term)?;
        let mut followers = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for &r in &term.replicas {
            if !seen.insert(r) {
                return Err(ReplicaError::DuplicateReplica { replica: r }.into());
            }
            if r != term.leader {
                // Never caught up (Kafka's 0, but a clock may start near 0).
                followers.insert(r, ReplicaState::reset(i64::MIN));
            }
        }
        if !seen.contains(&term.leader) {
            return Err(ReplicaError::UnknownReplica {
                replica: term.leader,
            }
            .into());
        }
        let isr = checked_isr(term.leader, &seen, &term.isr)?;
        for (r, state) in followers.iter_mut() {
            if isr.contains(r) {
                state.last_caught_up_time_ms = now_ms;
            }
        }
        Ok(ReplicaTracker {
            config,
            leader: term.leader,
            leader_epoch: term.leader_epoch,
            epoch_start_offset: term.epoch_start_offset,
            log_end_offset: term.log_end_offset,
            high_watermark: term.high_watermark,
            followers,
            isr,
            partition_epoch: 0,
        })
    }

    /// The same leader is re-elected at `leader_epoch`, which starts at the current log end
    /// offset, with a new ISR. Followers keep their log end offsets; those in the ISR count as
    /// having fetched and caught up at `now_ms`, the others as never (Kafka's reset on
    /// re-election). The high watermark is kept.
    ///
    /// # Errors
    /// [`ReplicaError::EpochNotIncreasing`] unless `leader_epoch` is above the current one;
    /// [`ReplicaError::UnknownReplica`], [`ReplicaError::DuplicateReplica`] or
    /// [`ReplicaError::LeaderNotInIsr`] for a bad ISR. Nothing changes on error.
    pub fn start_epoch(&mut self, leader_epoch: i32, isr: &[ReplicaId], now_ms: i64) -> Result<()> {
        if leader_epoch <= self.leader_epoch {
            return Err(ReplicaError::EpochNotIncreasing {
                current: self.leader_epoch,
                requested: leader_epoch,
            }
            .into());
        }
        let replicas: BTreeSet<ReplicaId> = self.replicas().into_iter().collect();
        let isr = checked_isr(self.leader, &replicas, isr)?;
        for (r, state) in self.followers.iter_mut() {
            let time = if isr.contains(r) { now_ms } else { i64::MIN };
            state.last_fetch_leader_log_end_offset = Some(self.log_end_offset);
            state.last_fetch_time_ms = time;
            state.last_caught_up_time_ms = time;
        }
        self.leader_epoch = leader_epoch;
        self.epoch_start_offset = self.log_end_offset;
        self.isr = isr;
        self.partition_epoch = 0;
        Ok(())
    }

    /// The controller changed the ISR within the current leader epoch (Kafka's partition
    /// epoch: an `AlterPartition` or a controller-side shrink, no new leader), to `isr` at
    /// `partition_epoch`. Followers that join count as caught up at `now_ms`; those that leave
    /// as never caught up (as [`remove_from_isr`](Self::remove_from_isr)). The high watermark is
    /// kept; call [`maybe_advance_hw`](Self::maybe_advance_hw) after.
    ///
    /// # Errors
    /// [`ReplicaError::EpochNotIncreasing`] unless `partition_epoch` is above the current one
    /// (a stale or repeated update); [`ReplicaError::UnknownReplica`],
    /// [`ReplicaError::DuplicateReplica`] or [`ReplicaError::LeaderNotInIsr`] for a bad ISR.
    /// Nothing changes on error.
    pub fn update_isr(
        &mut self,
        partition_epoch: i32,
        isr: &[ReplicaId],
        now_ms: i64,
    ) -> Result<()> {
        if partition_epoch <= self.partition_epoch {
            return Err(ReplicaError::EpochNotIncreasing {
                current: self.partition_epoch,
                requested: partition_epoch,
            }
            .into());
        }
        let replicas: BTreeSet<ReplicaId> = self.replicas().into_iter().collect();
        let isr = checked_isr(self.leader, &replicas, isr)?;
        for (r, state) in self.followers.iter_mut() {
            match (self.isr.contains(r), isr.contains(r)) {
                (false, true) => state.last_caught_up_time_ms = now_ms,
                (true, false) => state.last_caught_up_time_ms = i64::MIN,
                _ => {}
            }
        }
        self.isr = isr;
        self.partition_epoch = partition_epoch;
        Ok(())
    }

    /// The partition epoch within the current leader epoch (see
    /// [`update_isr`](Self::update_isr)).
    pub fn partition_epoch(&self) -> i32 {
        self.partition_epoch
    }

    /// The knobs.
    pub fn config(&self) -> &TrackerConfig {
        &self.config
    }

    /// The leader.
    pub fn leader(&self) -> ReplicaId {
        self.leader
    }

    /// Every replica, the leader included, in id order.
    pub fn replicas(&self) -> Vec<ReplicaId> {
        let mut all: Vec<ReplicaId> = self.followers.keys().copied().collect();
        let at = all.partition_point(|&r| r < self.leader);
        all.insert(at, self.leader);
        all
    }

    /// The replication factor: how many replicas there are, the leader included.
    pub fn replication_factor(&self) -> usize {
        self.followers.len() + 1
    }

    /// The in-sync replicas, the leader included, in id order.
    pub fn isr(&self) -> Vec<ReplicaId> {
        self.isr.iter().copied().collect()
    }

    /// Whether `replica` is in sync.
    pub fn is_in_sync(&self, replica: ReplicaId) -> bool {
        self.isr.contains(&replica)
    }

    /// What the leader knows of a follower; `None` for the leader or an unknown replica.
    pub fn replica_state(&self, replica: ReplicaId) -> Option<ReplicaState> {
        self.followers.get(&replica).map(|state| ReplicaState {
            in_sync: self.isr.contains(&replica),
            ..*state
        })
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The offset at which the current leader epoch starts.
    pub fn epoch_start_offset(&self) -> i64 {
        self.epoch_start_offset
    }

    /// The leader's log end offset, as last set.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// The high watermark: offsets below it are committed.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The leader appended: its log end offset is now `log_end_offset`.
    ///
    /// # Errors
    /// [`ReplicaError::LogEndBelowHighWatermark`] if it is below the high watermark, or
    /// [`ReplicaError::EpochStartBeyondLogEnd`] if below the epoch's start (a leader never
    /// truncates); nothing changes.
    pub fn set_leader_log_end(&mut self, log_end_offset: i64) -> Result<()> {
        if log_end_offset < self.high_watermark {
            return Err(ReplicaError::LogEndBelowHighWatermark {
                log_end_offset,
                high_watermark: self.high_watermark,
            }
            .into());
        }
        if log_end_offset < self.epoch_start_offset {
            return Err(ReplicaError::EpochStartBeyondLogEnd {
                epoch_start_offset: self.epoch_start_offset,
                log_end_offset,
            }
            .into());
        }
        self.log_end_offset = log_end_offset;
        Ok(())
    }

    /// Records a fetch from follower `replica` at `fetch_offset` (its log end offset), served
    /// when the leader's log end offset was `leader_log_end_offset_at_fetch`, at `now_ms`
    /// (Kafka's `updateFetchState`). The follower's last caught-up time becomes:
    /// - `now_ms` if `fetch_offset >= leader_log_end_offset_at_fetch`;
    /// - else the time of its previous fetch, if `fetch_offset` reaches the leader's log end
    ///   offset at that previous fetch;
    /// - else unchanged;
    ///
    /// and never moves back. Does not touch the ISR or the high watermark.
    ///
    /// # Errors
    /// [`ReplicaError::UnknownReplica`] if `replica` is not a follower;
    /// [`ReplicaError::NegativeOffset`]; [`ReplicaError::FetchOffsetBeyondLogEnd`] if
    /// `fetch_offset > leader_log_end_offset_at_fetch`. Nothing changes on error.
    pub fn on_fetch(
        &mut self,
        replica: ReplicaId,
        fetch_offset: i64,
        leader_log_end_offset_at_fetch: i64,
        now_ms: i64,
    ) -> Result<()> {
        let state = self
            .followers
            .get_mut(&replica)
            .ok_or(ReplicaError::UnknownReplica { replica })?;
        if fetch_offset < 0 {
            return Err(ReplicaError::NegativeOffset {
                what: "fetch_offset",
                offset: fetch_offset,
            }
            .into());
        }
        if fetch_offset > leader_log_end_offset_at_fetch {
            return Err(ReplicaError::FetchOffsetBeyondLogEnd {
                replica,
                fetch_offset,
                log_end_offset: leader_log_end_offset_at_fetch,
            }
            .into());
        }
        let caught_up_at = if fetch_offset >= leader_log_end_offset_at_fetch {
            Some(now_ms)
        } else if state
            .last_fetch_leader_log_end_offset
            .is_some_and(|previous| fetch_offset >= previous)
        {
            Some(state.last_fetch_time_ms)
        } else {
            None
        };
        if let Some(t) = caught_up_at {
            state.last_caught_up_time_ms = state.last_caught_up_time_ms.max(t);
        }
        state.log_end_offset = Some(fetch_offset);
        state.last_fetch_leader_log_end_offset = Some(
            state
                .last_fetch_leader_log_end_offset
                .map_or(leader_log_end_offset_at_fetch, |previous| {
                    previous.max(leader_log_end_offset_at_fetch)
                }),
        );
        state.last_fetch_time_ms = now_ms;
        Ok(())
    }

    /// Adds follower `replica` to the ISR if it is out of it and its log end offset has reached
    /// both the high watermark and the current epoch's start offset (Kafka's `maybeExpandIsr`).
    /// Returns whether it was added.
    ///
    /// # Errors
    /// [`ReplicaError::UnknownReplica`] if `replica` is not a follower.
    pub fn maybe_expand_isr(&mut self, replica: ReplicaId) -> Result<bool> {
        let state = self
            .followers
            .get(&replica)
            .ok_or(ReplicaError::UnknownReplica { replica })?;
        if self.isr.contains(&replica) {
            return Ok(false);
        }
        let joins = state
            .log_end_offset
            .is_some_and(|leo| leo >= self.high_watermark && leo >= self.epoch_start_offset);
        if joins {
            self.isr.insert(replica);
        }
        Ok(joins)
    }

    /// Removes follower `replica` from the ISR now, whatever its fetch position (the controller's
    /// decision: its broker died, or shut down uncleanly and may have lost what it acknowledged;
    /// it must not hold the high watermark back nor be elected before it has caught up again).
    /// Returns whether it was in the ISR.
    ///
    /// # Errors
    /// [`ReplicaError::UnknownReplica`] if `replica` is not a follower.
    pub fn remove_from_isr(&mut self, replica: ReplicaId) -> Result<bool> {
        let Some(state) = self.followers.get_mut(&replica) else {
            return Err(ReplicaError::UnknownReplica { replica }.into());
        };
        // Not "caught up" any more either, so it does not hold the high watermark back as a
        // replica about to rejoin; its next fetches count afresh.
        state.last_caught_up_time_ms = i64::MIN;
        Ok(self.isr.remove(&replica))
    }

    /// Removes from the ISR every follower that is not caught up: its log end offset differs
    /// from the leader's and it was last caught up more than `replica_lag_time_max_ms` before
    /// `now_ms` (Kafka's `maybeShrinkIsr`). The leader is never removed. Returns the removed
    /// replicas in id order.
    pub fn shrink_isr(&mut self, now_ms: i64) -> Vec<ReplicaId> {
        let lagging: Vec<ReplicaId> = self
            .isr
            .iter()
            .filter_map(|r| self.followers.get(r).map(|state| (*r, state)))
            .filter(|(_, state)| {
                !state.is_caught_up(
                    self.log_end_offset,
                    now_ms,
                    self.config.replica_lag_time_max_ms,
                )
            })
            .map(|(r, _)| r)
            .collect();
        for r in &lagging {
            self.isr.remove(r);
        }
        lagging
    }

    /// Recomputes the high watermark under the configured [`HighWatermarkPolicy`] and raises it
    /// if the result is higher; returns the new value if it moved. The high watermark never
    /// decreases and never passes the leader's log end offset.
    pub fn maybe_advance_hw(&mut self, now_ms: i64) -> Option<i64> {
        let candidate = match self.config.policy {
            HighWatermarkPolicy::InSyncReplicas => self.in_sync_candidate(now_ms)?,
            HighWatermarkPolicy::Majority => self.majority_candidate()?,
        };
        let candidate = candidate.min(self.log_end_offset);
        if candidate > self.high_watermark {
            self.high_watermark = candidate;
            Some(candidate)
        } else {
            None
        }
    }

    /// Kafka: the smallest log end offset among the leader, the ISR, and the followers caught up
    /// (they may be about to join); `None` while the ISR is below
    /// `min(min_insync_replicas, replication factor)` or an ISR member's offset is unknown.
    fn in_sync_candidate(&self, now_ms: i64) -> Option<i64> {
        if self.below_min_isr() {
            return None;
        }
        let mut candidate = self.log_end_offset;
        for (r, state) in &self.followers {
            let counts = self.isr.contains(r)
                || state.is_caught_up(
                    self.log_end_offset,
                    now_ms,
                    self.config.replica_lag_time_max_ms,
                );
            if counts {
                // An unknown offset is below any (Kafka's -1): it holds the watermark back.
                candidate = candidate.min(state.log_end_offset?);
            }
        }
        Some(candidate)
    }

    /// KRaft: the `n/2 + 1`-th highest log end offset among all voters, if it is known and past
    /// the epoch's start offset.
    fn majority_candidate(&self) -> Option<i64> {
        let mut offsets: Vec<Option<i64>> = self
            .followers
            .values()
            .map(|s| s.log_end_offset)
            .chain(std::iter::once(Some(self.log_end_offset)))
            .collect();
        // Highest first; unknown (None) last.
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        let majority_offset = (*offsets.get(offsets.len() / 2)?)?;
        (majority_offset > self.epoch_start_offset).then_some(majority_offset)
    }

    /// Kafka's `effectiveMinIsr`: `min(min_insync_replicas, replication factor)`, the one
    /// minimum that gates `acks=all` appends, their completion and the high watermark.
    pub fn effective_min_isr(&self) -> usize {
        self.config
            .min_insync_replicas
            .min(self.replication_factor())
    }

    /// Whether the ISR is below [`effective_min_isr`](Self::effective_min_isr).
    fn below_min_isr(&self) -> bool {
        self.isr.len() < self.effective_min_isr()
    }

    /// Whether an `acks=all` append may be taken now (Kafka refuses it with
    /// `NOT_ENOUGH_REPLICAS` otherwise): the ISR has at least
    /// [`effective_min_isr`](Self::effective_min_isr) members, the same rule that lets the
    /// high watermark advance. Always true under [`HighWatermarkPolicy::Majority`], where
    /// appends wait for a majority.
    pub fn can_accept_acks_all(&self) -> bool {
        match self.config.policy {
            HighWatermarkPolicy::InSyncReplicas => !self.below_min_isr(),
            HighWatermarkPolicy::Majority => true,
        }
    }

    /// Whether `offset` is committed: below the high watermark.
    pub fn is_committed(&self, offset: i64) -> bool {
        offset < self.high_watermark
    }

    /// Where an `acks=all` append whose last offset is `required_offset - 1` stands (Kafka's
    /// `checkEnoughReplicasReachOffset`): pending until the high watermark reaches
    /// `required_offset`, then complete, or (policy [`HighWatermarkPolicy::InSyncReplicas`]) not
    /// enough replicas if the ISR is below [`effective_min_isr`](Self::effective_min_isr) by
    /// then.
    pub fn acks_all_status(&self, required_offset: i64) -> AcksAllStatus {
        if self.high_watermark < required_offset {
            AcksAllStatus::Pending
        } else if self.config.policy == HighWatermarkPolicy::InSyncReplicas && self.below_min_isr()
        {
            AcksAllStatus::NotEnoughReplicasAfterAppend
        } else {
            AcksAllStatus::Complete
        }
    }
}

fn validate_offsets(term: &LeaderTerm) -> Result<()> {
    if term.leader_epoch < 0 || term.epoch_start_offset < 0 {
        return Err(ReplicaError::InvalidEpochEntry {
            leader_epoch: term.leader_epoch,
            start_offset: term.epoch_start_offset,
        }
        .into());
    }
    for (what, offset) in [
        ("log_end_offset", term.log_end_offset),
        ("high_watermark", term.high_watermark),
    ] {
        if offset < 0 {
            return Err(ReplicaError::NegativeOffset { what, offset }.into());
        }
    }
    if term.high_watermark > term.log_end_offset {
        return Err(ReplicaError::LogEndBelowHighWatermark {
            log_end_offset: term.log_end_offset,
            high_watermark: term.high_watermark,
        }
        .into());
    }
    if term.epoch_start_offset > term.log_end_offset {
        return Err(ReplicaError::EpochStartBeyondLogEnd {
            epoch_start_offset: term.epoch_start_offset,
            log_end_offset: term.log_end_offset,
        }
        .into());
    }
    Ok(())
}

/// The ISR as a set, checked: members among `replicas`, none twice, the leader included.
fn checked_isr(
    leader: ReplicaId,
    replicas: &BTreeSet<ReplicaId>,
    isr: &[ReplicaId],
) -> Result<BTreeSet<ReplicaId>> {
    let mut set = BTreeSet::new();
    for &r in isr {
        if !replicas.contains(&r) {
            return Err(ReplicaError::UnknownReplica { replica: r }.into());
        }
        if !set.insert(r) {
            return Err(ReplicaError::DuplicateReplica { replica: r }.into());
        }
    }
    if !set.contains(&leader) {
        return Err(ReplicaError::LeaderNotInIsr { leader }.into());
    }
    Ok(set)
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
