//! [`Partition`]: one replica of a partition, a [`Log`] with what replication adds over it (the
//! leader epoch cache, the high watermark, the leader's or follower's role). Kafka's
//! `UnifiedLog` + `Partition`, kept apart from the log: the `Log` knows nothing of epochs.
//!
//! # Invariants
//! - The epoch cache describes the log: each entry starts at a batch of its epoch (or, for the
//!   latest, at the log end offset of a leader that has not written yet). Checked at open and
//!   rebuilt from the batches if it does not; every follower append records its batches'
//!   epochs, every truncation cuts the cache, every log start move trims it.
//! - A leader's epoch is in the cache, durably, before any batch of that epoch is written.
//! - `log_start_offset <= high_watermark <= log_end_offset`; on the leader the high watermark
//!   never decreases; a follower never truncates below it records of an epoch after the latest
//!   unclean election it was told of ([`Election`]).
//! - Under [`Durability::OnFlush`] the high watermark counts only what the leader has flushed,
//!   and a follower flushes what it appended before it fetches again.
//!
//! # Example: a leader and a follower over threads and channels
//! The embedder provides the transport; here, `std::sync::mpsc`.
//! ```
//! use std::sync::mpsc;
//! use std::thread;
//! use partlog::batch::SimpleRecord;
//! use partlog::replica::{
//!     FetchRequest, FetchResponse, LeaderAndIsr, Partition, PartitionConfig, ReplicaId,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! let (leader_id, follower_id) = (ReplicaId(1), ReplicaId(2));
//! let leader = Partition::open(dir.path().join("1"), PartitionConfig::new("orders", 0, leader_id))?;
//! let follower = Partition::open(dir.path().join("2"), PartitionConfig::new("orders", 0, follower_id))?;
//! let assignment = LeaderAndIsr {
//!     leader_epoch: 1,
//!     replicas: vec![leader_id, follower_id],
//!     isr: vec![leader_id, follower_id],
//! };
//! leader.become_leader(&assignment, 0)?;
//! follower.become_follower(1, partlog::replica::Election::Clean)?;
//! for i in 0..10 {
//!     leader.append_records(&[SimpleRecord::new(i, None::<&str>, Some(format!("v{i}")))], 0)?;
//! }
//!
//! let (to_leader, requests) = mpsc::channel::<FetchRequest>();
//! let (to_follower, responses) = mpsc::channel::<FetchResponse>();
//! let serving = thread::spawn(move || {
//!     for request in requests {
//!         let response = leader.handle_fetch(&request, 0).expect("fetch");
//!         to_follower.send(response).expect("send");
//!     }
//!     leader
//! });
//! // Fetch until the follower has everything and knows it is committed.
//! while follower.high_watermark() < 10 {
//!     to_leader.send(follower.fetch_request(1 << 20)?)?;
//!     follower.apply_fetch(&responses.recv()?)?;
//! }
//! drop(to_leader);
//! let leader = serving.join().unwrap();
//! assert_eq!(leader.high_watermark(), 10);
//! assert_eq!(follower.log().read(0, 1 << 20)?.bytes, leader.log().read(0, 1 << 20)?.bytes);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::epoch_cache::{BatchEpoch, LeaderEpochCache};
use super::fetch::{FetchRequest, FetchResponse, FetchedRecords, OffsetEpochCheck};
use super::hw_checkpoint;
use super::tracker::{AcksAllStatus, LeaderTerm, ReplicaId, ReplicaTracker, TrackerConfig};
use crate::batch::SimpleRecord;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::ReplicaError;
use crate::error::{Error, Result};
use crate::log::{AppendOrigin, Batches, ExternalCheckpoints, FlushSequencer, Log, LogRead};
use crate::AppendInfo;

/// When an append counts as done (and, on a leader, may count towards the high watermark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Kafka's default: done once in memory (the page cache); flushed later by the log's flush
    /// policy. A power cut of every in-sync replica at once can lose acknowledged data.
    #[default]
    OnAppend,
    /// Raft's rule: done once on disk. The leader's high watermark counts only its flushed
    /// offsets, and a follower flushes what it appended before it fetches again. Concurrent
    /// appends share flushes (group commit, see [`FlushSequencer`]).
    OnFlush,
}

/// How the current leader was elected, which decides whether a follower may cut committed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Election {
    /// From the in-sync replicas: it holds every committed offset, so a follower never needs to
    /// truncate below its high watermark, and refuses to.
    #[default]
    Clean,
    /// From outside the ISR (Kafka's `unclean.leader.election.enable`): a follower truncates
    /// wherever its log diverges, committed records of earlier epochs included.
    Unclean,
    /// From the in-sync replicas, but an earlier leader, at `unclean_epoch`, was elected
    /// uncleanly: a follower whose committed records are older than that epoch (it was away
    /// then) may have to cut them, and does; records of `unclean_epoch` or later stay protected.
    CleanAfterUnclean {
        /// The latest leader epoch that was elected uncleanly.
        unclean_epoch: i32,
    },
}

/// A [`Partition`]'s settings.
#[derive(Debug, Clone)]
pub struct PartitionConfig {
    /// The topic name (written in the high-watermark checkpoint; no whitespace).
    pub topic: String,
    /// The partition number.
    pub partition: u32,
    /// This replica's id (the broker holding it).
    pub replica_id: ReplicaId,
    /// The log's settings.
    pub log: Config,
    /// When appends count as done.
    pub durability: Durability,
    /// The leader's ISR and high-watermark rules.
    pub tracker: TrackerConfig,
}

impl PartitionConfig {
    /// Defaults for everything but the names.
    pub fn new(topic: impl Into<String>, partition: u32, replica_id: ReplicaId) -> Self {
        PartitionConfig {
            topic: topic.into(),
            partition,
            replica_id,
            log: Config::default(),
            durability: Durability::default(),
            tracker: TrackerConfig::default(),
        }
    }
}

/// A leader's assignment (what Kafka's controller sends in `LeaderAndIsr`): the epoch, every
/// replica, and the in-sync ones. The leader is the partition's own replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderAndIsr {
    /// The new leader epoch: above every epoch this replica knows.
    pub leader_epoch: i32,
    /// Every replica, the leader included.
    pub replicas: Vec<ReplicaId>,
    /// The in-sync replicas, the leader included.
    pub isr: Vec<ReplicaId>,
}

/// What the replica is for now.
#[derive(Debug)]
enum Role {
    /// Opened, no role yet.
    Unassigned,
    Leader(Box<ReplicaTracker>),
    Follower {
        leader_epoch: i32,
        election: Election,
    },
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) cache: LeaderEpochCache,
    role: Role,
    /// The largest leader epoch this replica has heard of (as leader or follower).
    known_epoch: Option<i32>,
    /// Role changes so far: a term is one value of it. A fetch or an append that let go of
    /// the lock part way compares it to know that it ends in the term it began in.
    term: u64,
    /// The latest leader epoch it was told was elected uncleanly: committed records of older
    /// epochs may be cut as a follower.
    pub(super) unclean_epoch: Option<i32>,
}

/// One replica of a partition. See the module docs.
///
/// `Send + Sync`: calls take `&self`; replication state sits behind one mutex, held for the
/// log append of a leader or follower but not for reads or flushes.
#[derive(Debug)]
pub struct Partition {
    log: Log,
    config: PartitionConfig,
    state: Mutex<State>,
    /// The high watermark, readable without the state lock. Changed under it.
    high_watermark: AtomicI64,
    sequencer: FlushSequencer,
    epoch_cache_rebuilt: bool,
    /// The value the `replication-offset-checkpoint` file holds (`None`: no file, or not known).
    /// Locked across a checkpoint write, so writes are serialized and one that would write the
    /// same value again is skipped.
    checkpointed: Mutex<Option<i64>>,
}

impl Partition {
    /// Opens (or creates) the partition's log in `dir`, loads its epoch cache (rebuilt from the
    /// batches' epochs if missing, garbled or not matching the log after recovery) and its high
    /// watermark (clamped to the log). The replica has no role until
    /// [`become_leader`](Self::become_leader) or [`become_follower`](Self::become_follower).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad topic name or log config; as [`Log::open`];
    /// [`Error::Corrupt`] for a garbled high-watermark checkpoint.
    pub fn open(dir: impl AsRef<Path>, config: PartitionConfig) -> Result<Partition> {
        Self::open_with_clock(dir, config, Arc::new(SystemClock))
    }

    /// [`Partition::open`] with an injected clock for the log.
    ///
    /// # Errors
    /// As [`Partition::open`].
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        config: PartitionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Partition> {
        Self::open_with_checkpoints(dir, config, clock, ExternalCheckpoints::default(), None)
    }

    /// [`Partition::open_with_clock`] with checkpoint values kept outside the partition's
    /// directory (Kafka's data-directory files, which the topic layer reads): see
    /// [`Log::open_with_checkpoints`]; `high_watermark` is used where the partition's own
    /// `replication-offset-checkpoint` has no line for it.
    ///
    /// # Errors
    /// As [`Partition::open`].
    pub fn open_with_checkpoints(
        dir: impl AsRef<Path>,
        config: PartitionConfig,
        clock: Arc<dyn Clock>,
        checkpoints: ExternalCheckpoints,
        high_watermark: Option<i64>,
    ) -> Result<Partition> {
        if config.topic.is_empty() || config.topic.chars().any(char::is_whitespace) {
            return Err(Error::Config {
                knob: "topic",
                value: config.topic.clone(),
                reason: "must be non-empty, without whitespace",
            });
        }
        config.tracker.validate()?;
        let log = Log::open_with_checkpoints(dir, config.log.clone(), clock, checkpoints)?;
        let (cache, rebuilt) = load_epoch_cache(&log)?;
        let lso = log.log_start_offset();
        let leo = log.log_end_offset();
        let own = hw_checkpoint::read(log.dir(), &config.topic, config.partition)?;
        let checkpointed = own.or(high_watermark);
        let hw = checkpointed.unwrap_or(lso).clamp(lso, leo);
        let mut on_disk = own;
        if checkpointed.is_some_and(|c| c > hw) {
            // The log lost what the checkpoint covered (a power cut): a stale value must not
            // cover other records once the log grows again.
            hw_checkpoint::write(log.dir(), &config.topic, config.partition, hw)?;
            on_disk = Some(hw);
        }
        Ok(Partition {
            log,
            config,
            state: Mutex::new(State {
                cache,
                role: Role::Unassigned,
                known_epoch: None,
                term: 0,
                unclean_epoch: None,
            }),
            high_watermark: AtomicI64::new(hw),
            sequencer: FlushSequencer::new(),
            epoch_cache_rebuilt: rebuilt,
            checkpointed: Mutex::new(on_disk),
        })
    }

    /// The log underneath, read-only (reads, lookups, inspection). Every write goes through
    /// the partition, which keeps the epoch cache and the high watermark with it: appends as
    /// leader or follower, [`flush`](Self::flush), [`tick`](Self::tick),
    /// [`apply_retention`](Self::apply_retention), [`delete_records`](Self::delete_records).
    pub fn log(&self) -> LogView<'_> {
        LogView { log: &self.log }
    }

    /// Flushes the log (see [`Log::flush`]).
    ///
    /// # Errors
    /// As [`Log::flush`].
    pub fn flush(&self) -> Result<()> {
        self.log.flush()
    }

    /// The periodic work of the partition as of `now_ms` ([`Log::tick`] with the partition's
    /// rules): a flush if the log's `flush_ms` has passed since the last one, then
    /// [`Partition::apply_retention`], which deletes only below the high watermark and trims
    /// the epoch cache.
    ///
    /// # Errors
    /// As [`Log::flush`] and [`Partition::apply_retention`].
    pub fn tick(&self, now_ms: i64) -> Result<crate::log::RetentionReport> {
        if self.log.flush_due(now_ms)? {
            self.log.flush()?;
        }
        self.apply_retention(now_ms)
    }

    /// The settings.
    pub fn config(&self) -> &PartitionConfig {
        &self.config
    }

    /// Whether opening rebuilt the epoch cache from the log's batches.
    pub fn epoch_cache_rebuilt(&self) -> bool {
        self.epoch_cache_rebuilt
    }

    /// The high watermark: every offset below it is committed.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The log end offset.
    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// The log start offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// The epoch cache's entries, oldest first.
    pub fn epoch_entries(&self) -> Vec<super::EpochEntry> {
        self.lock().cache.entries().to_vec()
    }

    /// The leader epoch this replica leads at, if it is the leader.
    pub fn leader_epoch(&self) -> Option<i32> {
        match &self.lock().role {
            Role::Leader(t) => Some(t.leader_epoch()),
            _ => None,
        }
    }

    /// The in-sync replicas, if this replica is the leader.
    pub fn isr(&self) -> Option<Vec<ReplicaId>> {
        match &self.lock().role {
            Role::Leader(t) => Some(t.isr()),
            _ => None,
        }
    }

    /// What this leader knows of follower `replica` (Kafka's `ReplicaState`, as
    /// `DescribeQuorum` reports it): its log end offset (the offset of its latest fetch in this
    /// term; `None` before one), when it last fetched, when it was last caught up with the
    /// leader's log end, and whether it is in the ISR.
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] unless this replica leads;
    /// [`ReplicaError::UnknownReplica`] for a replica that is not one of its followers.
    pub fn replica_state(&self, replica: ReplicaId) -> Result<super::ReplicaState> {
        match &self.lock().role {
            Role::Leader(t) => t
                .replica_state(replica)
                .ok_or_else(|| ReplicaError::UnknownReplica { replica }.into()),
            _ => Err(ReplicaError::NotLeader { leader_epoch: None }.into()),
        }
    }

    /// How many flushes group commit ran (under [`Durability::OnFlush`]).
    pub fn group_commit_flushes(&self) -> u64 {
        self.sequencer.flushes()
    }

    /// The pause points of the log underneath (tests only).
    #[cfg(test)]
    pub(super) fn log_pauses(&self) -> &crate::log::Pauses {
        self.log.pauses()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn set_high_watermark(&self, hw: i64) {
        self.high_watermark.store(hw, Ordering::Release);
    }

    /// Reads like [`Log::read`], but only batches below the high watermark: what a consumer may
    /// see.
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read_committed(&self, from_offset: i64, max_bytes: usize) -> Result<LogRead> {
        self.log
            .read_up_to(from_offset, max_bytes, self.high_watermark())
    }

    /// The last stable offset a consumer sees (Kafka's `UnifiedLog.lastStableOffset`): the
    /// log's ([`Log::last_stable_offset`]), never past the high watermark.
    pub fn last_stable_offset(&self) -> i64 {
        // The log's bound first: the high watermark only grows on a leader.
        let lso = self.log.last_stable_offset();
        lso.min(self.high_watermark())
    }

    /// A consumer's fetch at an isolation level: [`Partition::read_committed`] for
    /// `ReadUncommitted`; for `ReadCommitted` only below the last stable offset (and the high
    /// watermark), with the aborted transactions of the range (see
    /// [`Log::read_with_isolation`] and [`IsolationLevel`](crate::log::IsolationLevel)).
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read_isolated(
        &self,
        from_offset: i64,
        max_bytes: usize,
        isolation: crate::log::IsolationLevel,
    ) -> Result<LogRead> {
        self.log
            .read_with_isolation(from_offset, max_bytes, self.high_watermark(), isolation)
    }

    /// Writes the high watermark to the `replication-offset-checkpoint` file (Kafka does this
    /// periodically; so should the embedder, and [`Partition::close`] does). A value the file
    /// already holds is not written again (no fsyncs for a periodic call that changes nothing).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be written.
    pub fn checkpoint_high_watermark(&self) -> Result<()> {
        let mut on_disk = self
            .checkpointed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let hw = self.high_watermark();
        if *on_disk == Some(hw) {
            return Ok(());
        }
        // Unknown until the write succeeds: a failed one may have left either value.
        *on_disk = None;
        hw_checkpoint::write(
            self.log.dir(),
            &self.config.topic,
            self.config.partition,
            hw,
        )?;
        *on_disk = Some(hw);
        Ok(())
    }

    /// Checkpoints the high watermark and closes the log cleanly.
    ///
    /// # Errors
    /// As [`Partition::checkpoint_high_watermark`] and [`Log::close`].
    pub fn close(self) -> Result<()> {
        self.checkpoint_high_watermark()?;
        self.log.close()
    }

    /// Drops the partition as a killed process would: nothing is flushed or checkpointed.
    pub fn abandon(self) {
        self.log.abandon();
    }

    // ---------------------------------------------------------------------------------------
    // Leader side.

    /// Becomes the leader at `assignment.leader_epoch`, which must be above every epoch this
    /// replica knows. The epoch starts at the log end offset, and is written to the epoch
    /// checkpoint (synced) before this returns, so before any record of it. Under
    /// [`Durability::OnFlush`] the log is flushed first. The high watermark is kept (clamped to
    /// the log end).
    ///
    /// # Errors
    /// [`Error::NegativeLeaderEpoch`], [`ReplicaError::EpochNotIncreasing`], and the
    /// tracker's errors for a bad replica set or ISR; [`Error::Io`]. Nothing changes on error.
    pub fn become_leader(&self, assignment: &LeaderAndIsr, now_ms: i64) -> Result<()> {
        let epoch = assignment.leader_epoch;
        if epoch < 0 {
            return Err(Error::NegativeLeaderEpoch {
                leader_epoch: epoch,
            });
        }
        let mut st = self.lock();
        let known = st.known_epoch.max(st.cache.latest_epoch());
        if let Some(current) = known.filter(|&k| epoch <= k) {
            return Err(ReplicaError::EpochNotIncreasing {
                current,
                requested: epoch,
            }
            .into());
        }
        if self.config.durability == Durability::OnFlush {
            self.log.flush()?;
        }
        let leo = self.log.log_end_offset();
        let hw = self.high_watermark().min(leo);
        let term = LeaderTerm {
            leader: self.config.replica_id,
            replicas: assignment.replicas.clone(),
            isr: assignment.isr.clone(),
            leader_epoch: epoch,
            epoch_start_offset: leo,
            log_end_offset: leo,
            high_watermark: hw,
        };
        let mut tracker = ReplicaTracker::new(self.config.tracker.clone(), term, now_ms)?;
        st.cache.assign(epoch, leo)?;
        st.known_epoch = Some(epoch);
        self.set_high_watermark(tracker.maybe_advance_hw(now_ms).unwrap_or(hw));
        st.role = Role::Leader(Box::new(tracker));
        st.term += 1;
        Ok(())
    }

    /// Appends batches as the leader: offsets assigned, the leader's epoch stamped in each (see
    /// [`Log::append_batches`] with [`AppendOrigin::Leader`]). Under [`Durability::OnFlush`]
    /// returns once the batches are on disk. The high watermark moves if the ISR allows (with
    /// no followers, at once).
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] unless this replica leads; as [`Log::append_batches`];
    /// under `OnFlush`, as [`FlushSequencer::wait_durable`] (the batches are then written but
    /// maybe not durable).
    pub fn append_as_leader<'a>(
        &self,
        batches: impl Into<Batches<'a>>,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        self.leader_append(now_ms, |log, origin| log.append_batches(batches, origin))
    }

    /// Appends a transaction marker as the leader, for a transaction coordinator (see
    /// [`Log::append_marker`]): the leader's epoch stamped, the high watermark moved as for
    /// [`Partition::append_as_leader`].
    ///
    /// # Errors
    /// As [`Partition::append_as_leader`] and [`Log::append_marker`].
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: crate::batch::EndTxnMarker,
        timestamp: i64,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let batch = marker.build_batch(producer_id, producer_epoch, timestamp)?;
        self.leader_append(now_ms, |log, origin| {
            let leader_epoch = match origin {
                AppendOrigin::Leader { leader_epoch } => Some(leader_epoch),
                _ => None,
            };
            log.append_batches(&batch, AppendOrigin::Coordinator { leader_epoch })
        })
    }

    /// Runs `append` as the leader (with the origin that stamps the leader's epoch), then moves
    /// the high watermark as the durability mode says.
    fn leader_append(
        &self,
        now_ms: i64,
        append: impl FnOnce(&Log, AppendOrigin) -> Result<AppendInfo>,
    ) -> Result<AppendInfo> {
        let (info, leader_epoch) = {
            let mut st = self.lock();
            let Role::Leader(tracker) = &mut st.role else {
                return Err(ReplicaError::NotLeader { leader_epoch: None }.into());
            };
            let leader_epoch = tracker.leader_epoch();
            let info = append(&self.log, AppendOrigin::Leader { leader_epoch })?;
            if self.config.durability == Durability::OnAppend {
                self.leader_progress(tracker, self.log.log_end_offset(), now_ms)?;
            }
            (info, leader_epoch)
        };
        if self.config.durability == Durability::OnFlush {
            self.wait_durable(info.last_offset + 1)?;
            self.log.pause(crate::log::Point::LeaderAppendDurable);
            let mut st = self.lock();
            // While it waited, the replica may have lost leadership, been cut by the new
            // leader and been overwritten: durable offsets are not durable batches.
            if !self.holds_batches_of(&st, leader_epoch, info.last_offset) {
                return Err(ReplicaError::NotLeader {
                    leader_epoch: Some(leader_epoch),
                }
                .into());
            }
            if let Role::Leader(tracker) = &mut st.role {
                let durable = self.log.recovery_point().max(tracker.log_end_offset());
                self.leader_progress(tracker, durable, now_ms)?;
            }
        }
        Ok(info)
    }

    /// Whether the offsets up to `last_offset` still hold the batches this replica appended as
    /// leader at `leader_epoch`. Within that term (a replica leads an epoch at most once, and a
    /// leader never truncates) they do; after it, the epoch cache must still give
    /// `last_offset` that epoch (only that epoch's leader wrote batches of it, at those
    /// offsets), below the log end. Offsets below the log start cannot be told apart: not held.
    fn holds_batches_of(&self, st: &State, leader_epoch: i32, last_offset: i64) -> bool {
        match &st.role {
            Role::Leader(t) if t.leader_epoch() == leader_epoch => true,
            _ => {
                last_offset < self.log.log_end_offset()
                    && last_offset >= self.log.log_start_offset()
                    && st.cache.epoch_for_offset(last_offset) == Some(leader_epoch)
            }
        }
    }

    /// [`Partition::append_as_leader`] of one batch built from `records`.
    ///
    /// # Errors
    /// As [`Partition::append_as_leader`], and [`Error::InvalidBatch`] for no records.
    pub fn append_records(&self, records: &[SimpleRecord], now_ms: i64) -> Result<AppendInfo> {
        // Encoded straight into the log's reused buffer with the leader's epoch: no batch built
        // only to be validated again.
        self.leader_append(now_ms, |log, origin| log.append_as(records, origin))
    }

    /// The leader's own log end (as counted for the high watermark) is now `end`.
    fn leader_progress(&self, tracker: &mut ReplicaTracker, end: i64, now_ms: i64) -> Result<()> {
        if end > tracker.log_end_offset() {
            tracker.set_leader_log_end(end)?;
        }
        if let Some(hw) = tracker.maybe_advance_hw(now_ms) {
            self.set_high_watermark(hw);
        }
        Ok(())
    }

    /// Removes follower `replica` from the ISR now (see [`ReplicaTracker::remove_from_isr`]) and
    /// advances the high watermark if that lets it. Returns whether it was in the ISR.
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] unless this replica leads;
    /// [`ReplicaError::UnknownReplica`].
    pub fn remove_from_isr(&self, replica: ReplicaId, now_ms: i64) -> Result<bool> {
        let mut st = self.lock();
        let Role::Leader(tracker) = &mut st.role else {
            return Err(ReplicaError::NotLeader { leader_epoch: None }.into());
        };
        let removed = tracker.remove_from_isr(replica)?;
        if let Some(hw) = tracker.maybe_advance_hw(now_ms) {
            self.set_high_watermark(hw);
        }
        Ok(removed)
    }

    /// Applies an ISR change the controller made within the current leader epoch, at
    /// `partition_epoch` (Kafka's partition epoch; see [`ReplicaTracker::update_isr`]), and
    /// advances the high watermark if that lets it. A new leader epoch goes through
    /// [`become_leader`](Self::become_leader) instead.
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] unless this replica leads; as
    /// [`ReplicaTracker::update_isr`]. Nothing changes on error.
    pub fn update_isr(&self, partition_epoch: i32, isr: &[ReplicaId], now_ms: i64) -> Result<()> {
        let mut st = self.lock();
        let Role::Leader(tracker) = &mut st.role else {
            return Err(ReplicaError::NotLeader { leader_epoch: None }.into());
        };
        tracker.update_isr(partition_epoch, isr, now_ms)?;
        if let Some(hw) = tracker.maybe_advance_hw(now_ms) {
            self.set_high_watermark(hw);
        }
        Ok(())
    }

    /// Removes from the ISR the followers not caught up for `replica_lag_time_max_ms`, and
    /// advances the high watermark if that lets it (Kafka's periodic `maybeShrinkIsr`). Returns
    /// the removed replicas.
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] unless this replica leads.
    pub fn shrink_isr(&self, now_ms: i64) -> Result<Vec<ReplicaId>> {
        let mut st = self.lock();
        let Role::Leader(tracker) = &mut st.role else {
            return Err(ReplicaError::NotLeader { leader_epoch: None }.into());
        };
        let removed = tracker.shrink_isr(now_ms);
        if let Some(hw) = tracker.maybe_advance_hw(now_ms) {
            self.set_high_watermark(hw);
        }
        Ok(removed)
    }

    /// Whether an `acks=all` append may be taken now (the ISR is at least
    /// `min(min_insync_replicas, replication factor)`, the high watermark's own gate).
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] unless this replica leads.
    pub fn can_accept_acks_all(&self) -> Result<bool> {
        match &self.lock().role {
            Role::Leader(t) => Ok(t.can_accept_acks_all()),
            _ => Err(ReplicaError::NotLeader { leader_epoch: None }.into()),
        }
    }

    /// Where an `acks=all` append (as a leader append of this replica returned it) stands:
    /// see [`ReplicaTracker::acks_all_status`], for `append.last_offset + 1`. An append made
    /// in an earlier term of this replica counts only while its offsets still hold its epoch's
    /// batches (see [`AppendInfo::leader_epoch`]): once the replica was cut and overwritten by
    /// another leader, the high watermark covering those offsets says nothing about it.
    ///
    /// # Errors
    /// [`ReplicaError::NotLeader`] unless this replica leads (Kafka's
    /// `NOT_LEADER_OR_FOLLOWER`), with `leader_epoch: Some(append epoch)` when it leads but the
    /// append's batches are gone (the delayed produce fails; the producer retries), or with
    /// `None` for an append that carries no epoch (not a leader append).
    pub fn acks_all_status(&self, append: &AppendInfo) -> Result<AcksAllStatus> {
        let st = self.lock();
        let Some(leader_epoch) = append.leader_epoch else {
            return Err(ReplicaError::NotLeader { leader_epoch: None }.into());
        };
        let Role::Leader(t) = &st.role else {
            return Err(ReplicaError::NotLeader {
                leader_epoch: Some(leader_epoch),
            }
            .into());
        };
        if !self.holds_batches_of(&st, leader_epoch, append.last_offset) {
            return Err(ReplicaError::NotLeader {
                leader_epoch: Some(leader_epoch),
            }
            .into());
        }
        Ok(t.acks_all_status(append.last_offset + 1))
    }

    /// KRaft's `validateOffsetAndEpoch`, Kafka's fetch-time divergence check: may a replica
    /// whose log ends at `offset`, last epoch `last_epoch`, go on from there? Below the log
    /// start -> out of range; then the leader's answer for `last_epoch` (its `endOffsetFor`)
    /// is compared: undefined -> out of range; an older epoch, or an end below `offset` ->
    /// diverging; then `offset` must not pass the log end.
    pub fn validate_offset_and_epoch(
        &self,
        offset: i64,
        last_epoch: Option<i32>,
    ) -> OffsetEpochCheck {
        let st = self.lock();
        let (lso, leo) = (self.log.log_start_offset(), self.log.log_end_offset());
        check_offset_and_epoch(&st.cache, offset, last_epoch, lso, leo)
    }

    /// Serves a follower's fetch (Kafka's `Partition.fetchRecords` for a follower), in Kafka's
    /// order: not the leader -> [`FetchResponse::NotLeader`]; the follower's current leader
    /// epoch older or newer than ours -> fenced or unknown epoch; then the divergence and range
    /// check of [`validate_offset_and_epoch`](Self::validate_offset_and_epoch); else the batches
    /// from the fetch offset (whole, zero-copy), with the high watermark, log start and log end
    /// taken before the read. A records answer also records the follower's fetch offset (ISR
    /// and high watermark may move).
    ///
    /// # Errors
    /// [`ReplicaError::UnknownReplica`] for a replica not in the replica set;
    /// [`Error::Corrupt`] / [`Error::Io`] from the read.
    pub fn handle_fetch(&self, request: &FetchRequest, now_ms: i64) -> Result<FetchResponse> {
        // A role change during the read (demoted, cut by a new leader, elected again) makes
        // the read and the validation belong to different terms: serve the request again,
        // against the term it now meets. Each retry needs another role change.
        for _ in 0..MAX_FETCH_ATTEMPTS {
            if let Some(response) = self.try_fetch(request, now_ms)? {
                return Ok(response);
            }
        }
        Ok(FetchResponse::NotLeader)
    }

    /// One attempt of [`handle_fetch`](Self::handle_fetch): `None` if the role changed
    /// between the validation and the end of the read (nothing was credited).
    fn try_fetch(&self, request: &FetchRequest, now_ms: i64) -> Result<Option<FetchResponse>> {
        let (term, leader_epoch, hw, lso, leo) = {
            let st = self.lock();
            let Role::Leader(tracker) = &st.role else {
                return Ok(Some(FetchResponse::NotLeader));
            };
            let leader_epoch = tracker.leader_epoch();
            match request.current_leader_epoch {
                Some(e) if e < leader_epoch => {
                    return Ok(Some(FetchResponse::FencedLeaderEpoch { leader_epoch }))
                }
                Some(e) if e > leader_epoch => {
                    return Ok(Some(FetchResponse::UnknownLeaderEpoch { leader_epoch }))
                }
                _ => {}
            }
            if tracker.replica_state(request.replica_id).is_none() {
                return Err(ReplicaError::UnknownReplica {
                    replica: request.replica_id,
                }
                .into());
            }
            let hw = self.high_watermark();
            let lso = self.log.log_start_offset();
            let leo = self.log.log_end_offset();
            match check_offset_and_epoch(
                &st.cache,
                request.fetch_offset,
                request.last_fetched_epoch,
                lso,
                leo,
            ) {
                OffsetEpochCheck::Valid => {}
                OffsetEpochCheck::Diverging(e) => {
                    return Ok(Some(FetchResponse::DivergingEpoch(e)))
                }
                OffsetEpochCheck::OutOfRange {
                    log_start_offset,
                    log_end_offset,
                } => {
                    return Ok(Some(FetchResponse::OffsetOutOfRange {
                        log_start_offset,
                        log_end_offset,
                    }))
                }
            }
            (st.term, leader_epoch, hw, lso, leo)
        };
        let read = self
            .log
            .read_up_to(request.fetch_offset, request.max_bytes, leo);
        let mut st = self.lock();
        // The read and the validation belong to one term only if no role change came between
        // them: a leader's log is only appended to (and trimmed at the start) within a term.
        if st.term != term {
            return Ok(None);
        }
        let records = match read {
            Ok(r) => r.bytes,
            Err(Error::OffsetOutOfRange {
                log_start_offset,
                log_end_offset,
                ..
            }) => {
                // Retention (or delete-records) moved the log start since the check.
                return Ok(Some(FetchResponse::OffsetOutOfRange {
                    log_start_offset,
                    log_end_offset,
                }));
            }
            Err(e) => return Err(e),
        };
        if let Role::Leader(tracker) = &mut st.role {
            // The follower's log ends at its fetch offset (it may have fetched before we
            // appended: the leader's end at the fetch is `leo`).
            tracker.on_fetch(request.replica_id, request.fetch_offset, leo, now_ms)?;
            tracker.maybe_expand_isr(request.replica_id)?;
            if let Some(hw) = tracker.maybe_advance_hw(now_ms) {
                self.set_high_watermark(hw);
            }
        }
        Ok(Some(FetchResponse::Records(FetchedRecords {
            records,
            leader_epoch,
            high_watermark: hw,
            log_start_offset: lso,
            log_end_offset: leo,
        })))
    }

    /// Moves the log start offset up to `offset` (Kafka's DeleteRecords), never past the high
    /// watermark, and trims the epoch cache. Returns the log start offset.
    ///
    /// # Errors
    /// [`ReplicaError::LogStartBeyondHighWatermark`]; as [`Log::delete_records`].
    pub fn delete_records(&self, offset: i64) -> Result<i64> {
        let mut st = self.lock();
        let hw = self.high_watermark();
        if offset > hw {
            return Err(ReplicaError::LogStartBeyondHighWatermark {
                log_start_offset: offset,
                high_watermark: hw,
            }
            .into());
        }
        let lso = self.log.delete_records(offset)?;
        st.cache.truncate_from_start(lso)?;
        Ok(lso)
    }

    /// Applies the log's retention below the high watermark (see
    /// [`Log::apply_retention_below`]: as Kafka, records not yet committed are kept for the
    /// followers that still need them) and trims the epoch cache to the new log start.
    ///
    /// # Errors
    /// As [`Log::apply_retention`].
    pub fn apply_retention(&self, now_ms: i64) -> Result<crate::log::RetentionReport> {
        let mut st = self.lock();
        let report = self
            .log
            .apply_retention_below(now_ms, self.high_watermark())?;
        st.cache.truncate_from_start(report.log_start_offset)?;
        if self.high_watermark() < report.log_start_offset {
            self.set_high_watermark(report.log_start_offset);
        }
        Ok(report)
    }

    // Follower side: see `follower.rs`.

    /// The current role as a follower: `(leader_epoch, election)`.
    pub(super) fn follower_role(st: &State) -> Result<(i32, Election)> {
        match st.role {
            Role::Follower {
                leader_epoch,
                election,
            } => Ok((leader_epoch, election)),
            _ => Err(ReplicaError::NotFollower.into()),
        }
    }

    /// Becomes a follower of the leader at `leader_epoch` (not below any epoch this replica
    /// knows), elected as `election` says (the latest unclean election it names is kept: a
    /// later clean one does not forget it). Nothing is truncated now: the first fetch finds
    /// where the logs part (KIP-101), and the high watermark is kept.
    ///
    /// # Errors
    /// [`Error::NegativeLeaderEpoch`]; [`ReplicaError::EpochNotIncreasing`] for an epoch
    /// below a known one. Nothing changes on error.
    pub fn become_follower(&self, leader_epoch: i32, election: Election) -> Result<()> {
        if leader_epoch < 0 {
            return Err(Error::NegativeLeaderEpoch { leader_epoch });
        }
        let mut st = self.lock();
        let known = st.known_epoch.max(st.cache.latest_epoch());
        if let Some(current) = known.filter(|&k| leader_epoch < k) {
            return Err(ReplicaError::EpochNotIncreasing {
                current,
                requested: leader_epoch,
            }
            .into());
        }
        st.known_epoch = Some(leader_epoch);
        let unclean = match election {
            Election::Clean => None,
            Election::Unclean => Some(leader_epoch),
            Election::CleanAfterUnclean { unclean_epoch } => Some(unclean_epoch),
        };
        st.unclean_epoch = st.unclean_epoch.max(unclean);
        st.role = Role::Follower {
            leader_epoch,
            election,
        };
        st.term += 1;
        Ok(())
    }

    pub(super) fn durability(&self) -> Durability {
        self.config.durability
    }

    /// Waits until the log is durable up to `end_offset` (group commit, see
    /// [`FlushSequencer::wait_durable`]).
    pub(super) fn wait_durable(&self, end_offset: i64) -> Result<()> {
        self.sequencer.wait_durable(&self.log, end_offset)
    }
}

/// A read-only view of a [`Partition`]'s log: reads, lookups and inspection, no writers (they
/// would bypass the partition's rules: retention past the high watermark, truncation without
/// the epoch cache). See [`Partition::log`].
#[derive(Debug, Clone, Copy)]
pub struct LogView<'a> {
    log: &'a Log,
}

impl<'a> LogView<'a> {
    /// See [`Log::dir`].
    pub fn dir(&self) -> &'a Path {
        self.log.dir()
    }

    /// See [`Log::config`].
    pub fn config(&self) -> &'a Config {
        self.log.config()
    }

    /// See [`Log::open_report`].
    pub fn open_report(&self) -> &'a crate::OpenReport {
        self.log.open_report()
    }

    /// See [`Log::log_end_offset`].
    pub fn log_end_offset(&self) -> i64 {
        self.log.log_end_offset()
    }

    /// See [`Log::log_start_offset`].
    pub fn log_start_offset(&self) -> i64 {
        self.log.log_start_offset()
    }

    /// See [`Log::recovery_point`].
    pub fn recovery_point(&self) -> i64 {
        self.log.recovery_point()
    }

    /// See [`Log::last_stable_offset`] (the log's, not bounded by the high watermark: see
    /// [`Partition::last_stable_offset`]).
    pub fn last_stable_offset(&self) -> i64 {
        self.log.last_stable_offset()
    }

    /// See [`Log::first_unstable_offset`].
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.log.first_unstable_offset()
    }

    /// See [`Log::aborted_txns`].
    pub fn aborted_txns(&self) -> Vec<(i64, Vec<crate::log::AbortedTxn>)> {
        self.log.aborted_txns()
    }

    /// See [`Log::segment_count`].
    pub fn segment_count(&self) -> usize {
        self.log.segment_count()
    }

    /// See [`Log::segment_base_offsets`].
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.log.segment_base_offsets()
    }

    /// See [`Log::size`].
    pub fn size(&self) -> u64 {
        self.log.size()
    }

    /// See [`Log::mapped_segments`].
    pub fn mapped_segments(&self) -> usize {
        self.log.mapped_segments()
    }

    /// See [`Log::segment_infos`].
    ///
    /// # Errors
    /// As [`Log::segment_infos`].
    pub fn segment_infos(&self) -> Result<Vec<crate::log::SegmentInfo>> {
        self.log.segment_infos()
    }

    /// See [`Log::read`].
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read(&self, from_offset: i64, max_bytes: usize) -> Result<LogRead> {
        self.log.read(from_offset, max_bytes)
    }

    /// See [`Log::read_up_to`].
    ///
    /// # Errors
    /// As [`Log::read_up_to`].
    pub fn read_up_to(
        &self,
        from_offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<LogRead> {
        self.log.read_up_to(from_offset, max_bytes, max_offset)
    }

    /// See [`Log::read_record`].
    ///
    /// # Errors
    /// As [`Log::read_record`].
    pub fn read_record(&self, offset: i64) -> Result<Option<crate::batch::PositionedBatch>> {
        self.log.read_record(offset)
    }

    /// See [`Log::offset_for_timestamp`].
    ///
    /// # Errors
    /// As [`Log::offset_for_timestamp`].
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        self.log.offset_for_timestamp(timestamp)
    }

    // The writers, for the replica module only (the follower's side applies the partition's
    // rules around them).

    pub(super) fn append_batches<'b>(
        &self,
        batches: impl Into<Batches<'b>>,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        self.log.append_batches(batches, origin)
    }

    pub(super) fn delete_records(&self, before_offset: i64) -> Result<i64> {
        self.log.delete_records(before_offset)
    }

    pub(super) fn truncate_to(&self, offset: i64) -> Result<i64> {
        self.log.truncate_to(offset)
    }

    pub(super) fn reset_to(&self, offset: i64) -> Result<i64> {
        self.log.reset_to(offset)
    }

    pub(super) fn truncate_fully_and_start_at(&self, offset: i64) -> Result<i64> {
        self.log.truncate_fully_and_start_at(offset)
    }
}

/// How many times [`Partition::handle_fetch`] serves a request again after a role change
/// during its read, before it answers [`FetchResponse::NotLeader`] (retry later).
const MAX_FETCH_ATTEMPTS: usize = 4;

/// The divergence and range check shared by fetches and `validate_offset_and_epoch`.
fn check_offset_and_epoch(
    cache: &LeaderEpochCache,
    offset: i64,
    last_epoch: Option<i32>,
    lso: i64,
    leo: i64,
) -> OffsetEpochCheck {
    let out_of_range = OffsetEpochCheck::OutOfRange {
        log_start_offset: lso,
        log_end_offset: leo,
    };
    // Kafka checks the log start first: below it, the replica restarts there; no divergence
    // answer can point at offsets that no longer exist.
    if offset < lso {
        return out_of_range;
    }
    if let Some(last_epoch) = last_epoch {
        match cache.end_offset_for(last_epoch, leo) {
            None => return out_of_range,
            Some(e) if e.leader_epoch < last_epoch || e.end_offset < offset => {
                return OffsetEpochCheck::Diverging(e)
            }
            Some(_) => {}
        }
    }
    if offset < lso || offset > leo {
        return out_of_range;
    }
    OffsetEpochCheck::Valid
}

/// The leader epoch cache of `log`'s directory, checked against the log (and rebuilt from its
/// batches' epochs if missing, garbled or not matching, as after a crash that cut the log),
/// trimmed to the log start and cut at the log end: an entry starting at the log end (an epoch
/// begun with no record yet, or whose records a crash took) is dropped, as Kafka's load does
/// (`truncateFromEnd(logEndOffset)`; a leader assigns it again when elected). Returns it and
/// whether it was rebuilt. [`Partition::open`] does
/// this; so does any other owner of a log with epochs (an openraft log store).
///
/// # Errors
/// As [`Log::read`] and [`LeaderEpochCache::rebuild_from`] (an I/O error other than a garbled
/// file).
pub fn load_epoch_cache(log: &Log) -> Result<(LeaderEpochCache, bool)> {
    let lso = log.log_start_offset();
    let leo = log.log_end_offset();
    let last = if leo > lso {
        log.read(leo - 1, 1)?
            .batches
            .first()
            .map(|b| BatchEpoch::new(b.partition_leader_epoch(), b.base_offset()))
    } else {
        None
    };
    let loaded = match LeaderEpochCache::load(log.dir()) {
        Ok(c) => Some(c),
        Err(Error::Corrupt { .. }) => None,
        Err(e) => return Err(e),
    };
    // A missing file is an empty cache: it matches only a log whose last batch is unstamped.
    let (mut cache, rebuilt) = match loaded.filter(|c| c.check_against_log(leo, last).is_ok()) {
        Some(c) => (c, false),
        None => (
            LeaderEpochCache::rebuild_from(log.dir(), batch_epochs(log)?)?,
            true,
        ),
    };
    cache.truncate_from_end(leo)?;
    cache.truncate_from_start(lso)?;
    Ok((cache, rebuilt))
}

/// Every batch's epoch and base offset, from the log start to the log end.
fn batch_epochs(log: &Log) -> Result<Vec<BatchEpoch>> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    let end = log.log_end_offset();
    while next < end {
        let read = log.read(next, 8 << 20)?;
        if read.batches.is_empty() {
            break;
        }
        out.extend(
            read.batches
                .iter()
                .map(|b| BatchEpoch::new(b.partition_leader_epoch(), b.base_offset())),
        );
        next = read.next_offset;
    }
    Ok(out)
}
