//! [`ReplicaSet`]: N replicas of one partition driven in one process, each a [`Partition`] in a
//! directory of its own (each stands for a broker), with the controller's part played here:
//! elections, the ISR it keeps, and failures. It is how partlog exercises its follower-copy API
//! under faults, and what the taxi-rides example runs its brokers on.
//!
//! # What the controller does here
//! - **Produce** goes to the leader. `acks=all` is refused up front while the ISR is below
//!   `min_insync_replicas` (`NOT_ENOUGH_REPLICAS`, nothing written), and answered
//!   `NOT_ENOUGH_REPLICAS_AFTER_APPEND` (written, not acknowledged) if the ISR fell below it
//!   after the append; it is acknowledged once the high watermark covers the batch, after
//!   the followers fetched (replication runs inside [`ReplicaSet::produce`] until it stops
//!   making progress). `acks=1` is acknowledged once the leader has it.
//! - **Failures.** [`Failure::Kill`]: the process dies, the page cache keeps every byte (the
//!   log is dropped without a close and recovered at restart). [`Failure::PowerCut`]: the
//!   machine loses power, and only what the replica made durable survives: its log is cut to
//!   its recovery point (the power-loss harness in `log::power_loss` proves that everything
//!   below it survives, byte for byte). A failed replica leaves the ISR at once unless it is
//!   the last member (KRaft fences a dead broker); one that lost power is also marked as having
//!   shut down uncleanly (KIP-966): it may have lost what it acknowledged.
//! - **Elections** ([`ReplicaSet::elect`]) pick a live ISR member or eligible leader replica
//!   (KIP-966: one dropped from the ISR while that left it below `min_insync_replicas`, when
//!   the high watermark is frozen) that did not lose power, the longest log first; if every live ISR member lost power, the longest log among
//!   them and the replicas dropped from the ISR for losing power (KIP-966's eligible leader
//!   replicas). The leader epoch goes up by one and every other live replica follows. With none,
//!   and [`UncleanLeaderElection::Enabled`], the live replica with the longest log leads and the
//!   report says which committed offsets it lost.
//! - **Restart** reopens a failed replica as a follower of the current epoch: its first fetch
//!   truncates it by epoch (KIP-101/279) and it catches up; the leader takes it back into the
//!   ISR once it reaches the high watermark.

use std::path::{Path, PathBuf};

use super::epoch_cache::EpochEntry;
use super::partition::{Durability, Election, LeaderAndIsr, Partition, PartitionConfig};
use super::tracker::{AcksAllStatus, ReplicaId, TrackerConfig};
use super::FollowerProgress;
use crate::batch::SimpleRecord;
use crate::config::Config;
use crate::error::ReplicaError;
use crate::error::{Error, Result};
use crate::log::Log;

/// Whether a replica outside the ISR may be elected when no ISR member is alive (Kafka's
/// `unclean.leader.election.enable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UncleanLeaderElection {
    /// Never: the partition stays without a leader until an ISR member comes back.
    #[default]
    Disabled,
    /// Allowed: committed records may be lost, and the election report says which.
    Enabled,
}

/// A [`ReplicaSet`]'s settings.
#[derive(Debug, Clone)]
pub struct ReplicaSetConfig {
    /// Topic name (for the high-watermark checkpoints).
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// How many replicas (brokers), ids `0..replicas`.
    pub replicas: u32,
    /// Every replica's log settings.
    pub log: Config,
    /// When appends count as done.
    pub durability: Durability,
    /// ISR and high-watermark rules.
    pub tracker: TrackerConfig,
    /// See [`UncleanLeaderElection`].
    pub unclean_leader_election: UncleanLeaderElection,
    /// Byte budget of one follower fetch.
    pub fetch_max_bytes: usize,
}

impl ReplicaSetConfig {
    /// Defaults for `replicas` replicas of `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: u32, replicas: u32) -> Self {
        ReplicaSetConfig {
            topic: topic.into(),
            partition,
            replicas,
            log: Config::default(),
            durability: Durability::default(),
            tracker: TrackerConfig::default(),
            unclean_leader_election: UncleanLeaderElection::default(),
            fetch_max_bytes: 1 << 20,
        }
    }
}

/// Kafka's `acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// `acks=1`: acknowledged once the leader has the batch.
    Leader,
    /// `acks=all`: acknowledged once every in-sync replica has it (the high watermark covers
    /// it).
    All,
}

/// How a replica fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The process is killed: the log is dropped without a close; every byte it wrote stays in
    /// the page cache and is recovered at restart.
    Kill,
    /// The machine loses power: only what the replica made durable (below its recovery point)
    /// survives.
    PowerCut,
}

/// What [`ReplicaSet::produce`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Produced {
    /// Offset of the first record.
    pub first_offset: i64,
    /// Offset of the last record.
    pub last_offset: i64,
    /// The leader epoch it was written in.
    pub leader_epoch: i32,
    /// True if acknowledged under the `acks` asked for; an `acks=all` batch that is not (a
    /// follower in the ISR is down and has not been dropped from it yet) may still be
    /// committed later: see [`ReplicaSet::is_committed`].
    pub acknowledged: bool,
    /// True if the leader found the batch already in its log (an idempotent producer's retry:
    /// Kafka's duplicate answer): nothing was appended, the offsets are the original's.
    pub duplicate: bool,
}

/// What an election did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElectionReport {
    /// The new leader.
    pub leader: ReplicaId,
    /// Its epoch.
    pub leader_epoch: i32,
    /// True if it was not in the ISR, or was chosen among replicas that all lost power
    /// (KIP-966's unclean recovery): its followers may cut records they had committed.
    pub unclean: bool,
    /// Committed offsets the new leader does not hold (`from..to`), which its followers will
    /// cut: from where its epoch history leaves the committed one (it may hold other records
    /// at those offsets, an older term's `acks=1` writes) to the end of what was committed.
    /// Only ever set by an unclean election.
    pub lost: Option<(i64, i64)>,
}

#[derive(Debug)]
struct Slot {
    id: ReplicaId,
    dir: PathBuf,
    partition: Option<Partition>,
    live: bool,
}

/// N replicas of one partition in one process. See the module docs.
#[derive(Debug)]
pub struct ReplicaSet {
    config: ReplicaSetConfig,
    slots: Vec<Slot>,
    leader: Option<usize>,
    leader_epoch: i32,
    /// How the current leader was elected, with the latest unclean election before it: what
    /// a (re)started follower is told.
    election: Election,
    /// The latest leader epoch that was elected uncleanly.
    unclean_epoch: Option<i32>,
    /// The epoch history of what is committed (the leader's epoch entries below `committed`,
    /// taken when its high watermark reached it): an unclean leader's loss is where its own
    /// history leaves this one.
    committed_history: Vec<EpochEntry>,
    /// The ISR as the controller knows it (the leader's, refreshed after every step).
    isr: Vec<ReplicaId>,
    /// The highest high watermark any leader reached: what is committed.
    committed: i64,
    /// Replicas that lost power and have not caught up since (KIP-966's unclean shutdowns):
    /// out of the ISR, unless one was its last member.
    lost_power: Vec<ReplicaId>,
    /// Eligible leader replicas (KIP-966): removed from the ISR while that left it below
    /// `min_insync_replicas`. The high watermark cannot move in that state, so each holds
    /// everything committed, and may lead.
    elr: Vec<ReplicaId>,
    /// Test-only: what happens while an `acks=all` produce waits, after its batch was appended
    /// and replicated and before its answer is decided (another broker's failure, an ISR
    /// shrink): the window Kafka's delayed produce leaves open in its purgatory.
    #[cfg(test)]
    while_produce_waits: Option<WhileProduceWaits>,
}

/// See [`ReplicaSet::while_produce_waits`].
#[cfg(test)]
struct WhileProduceWaits(Box<dyn FnOnce(&mut ReplicaSet)>);

#[cfg(test)]
impl std::fmt::Debug for WhileProduceWaits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WhileProduceWaits")
    }
}

impl ReplicaSet {
    /// Opens (or creates) the replicas under `root` (`root/replica-<id>`) and elects a leader.
    ///
    /// # Errors
    /// As [`Partition::open`]; [`Error::Config`] for fewer than one replica.
    pub fn open(root: impl AsRef<Path>, config: ReplicaSetConfig, now_ms: i64) -> Result<Self> {
        let dirs: Vec<PathBuf> = (0..config.replicas)
            .map(|id| root.as_ref().join(format!("replica-{id}")))
            .collect();
        Self::open_at(&dirs, config, now_ms)
    }

    /// [`ReplicaSet::open`] with each replica in a directory of the caller's choice: replica
    /// `i` (id `i`) in `dirs[i]`, for example `<broker>/<topic>-<partition>` as Kafka lays
    /// out a broker's data. With no leader known yet, replica 0 leads first.
    ///
    /// # Errors
    /// As [`ReplicaSet::open`]; [`Error::Config`] if `dirs` does not hold one directory per
    /// replica.
    pub fn open_at(dirs: &[PathBuf], config: ReplicaSetConfig, now_ms: i64) -> Result<Self> {
        if dirs.len() != config.replicas as usize {
            return Err(Error::Config {
                knob: "replicas",
                value: format!("{} replicas, {} directories", config.replicas, dirs.len()),
                reason: "one directory per replica",
            });
        }
        if config.replicas == 0 {
            return Err(Error::Config {
                knob: "replicas",
                value: "0".into(),
                reason: "a replica set needs at least one replica",
            });
        }
        let mut slots = Vec::new();
        let mut epoch = 0;
        for (id, dir) in (0..config.replicas).zip(dirs) {
            let dir = dir.clone();
            let p = Partition::open(&dir, Self::partition_config(&config, ReplicaId(id)))?;
            epoch = epoch.max(p.epoch_entries().last().map_or(0, |e| e.leader_epoch));
            slots.push(Slot {
                id: ReplicaId(id),
                dir,
                partition: Some(p),
                live: true,
            });
        }
        let isr = slots.iter().map(|s| s.id).collect();
        let mut set = ReplicaSet {
            config,
            slots,
            leader: None,
            leader_epoch: epoch,
            election: Election::Clean,
            unclean_epoch: None,
            committed_history: Vec::new(),
            isr,
            committed: 0,
            lost_power: Vec::new(),
            elr: Vec::new(),
            #[cfg(test)]
            while_produce_waits: None,
        };
        set.elect(now_ms)?;
        Ok(set)
    }

    fn partition_config(config: &ReplicaSetConfig, id: ReplicaId) -> PartitionConfig {
        PartitionConfig {
            log: config.log.clone(),
            durability: config.durability,
            tracker: config.tracker.clone(),
            ..PartitionConfig::new(config.topic.clone(), config.partition, id)
        }
    }

    fn slot(&self, id: ReplicaId) -> Result<usize> {
        self.slots
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| ReplicaError::UnknownReplica { replica: id }.into())
    }

    fn leader_slot(&self) -> Result<&Partition> {
        self.leader
            .and_then(|i| self.slots[i].partition.as_ref())
            .ok_or_else(|| ReplicaError::NoLeader.into())
    }

    /// The current leader, if a live one was elected.
    pub fn leader(&self) -> Option<ReplicaId> {
        self.leader.map(|i| self.slots[i].id)
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch
    }

    /// The ISR as the controller knows it.
    pub fn isr(&self) -> &[ReplicaId] {
        &self.isr
    }

    /// Every replica's id.
    pub fn replica_ids(&self) -> Vec<ReplicaId> {
        self.slots.iter().map(|s| s.id).collect()
    }

    /// True if the replica is up.
    pub fn is_live(&self, id: ReplicaId) -> bool {
        self.slot(id).is_ok_and(|i| self.slots[i].live)
    }

    /// The replica's partition (up or not: a failed replica's files as they survived).
    pub fn replica(&self, id: ReplicaId) -> Option<&Partition> {
        self.slot(id)
            .ok()
            .and_then(|i| self.slots[i].partition.as_ref())
    }

    /// The highest high watermark a leader of this set reached: every offset below it was
    /// committed.
    pub fn committed(&self) -> i64 {
        self.committed
    }

    /// True if `offset` is below the current leader's high watermark.
    pub fn is_committed(&self, offset: i64) -> bool {
        self.leader_slot()
            .is_ok_and(|l| offset < l.high_watermark())
    }

    /// Appends `records` as one batch on the leader. See the module docs for `acks`.
    ///
    /// # Errors
    /// [`ReplicaError::NoLeader`]; [`ReplicaError::NotEnoughReplicas`] for `acks=all` with too
    /// small an ISR (Kafka's `NOT_ENOUGH_REPLICAS`: refused before the append, nothing
    /// written); [`ReplicaError::NotEnoughReplicasAfterAppend`] for `acks=all` when the ISR
    /// fell below the minimum after the batch was appended (the records are in the leader's
    /// log, not acknowledged); as [`Partition::append_records`] and
    /// [`Partition::acks_all_status`].
    pub fn produce(
        &mut self,
        records: &[SimpleRecord],
        acks: Acks,
        now_ms: i64,
    ) -> Result<Produced> {
        self.produce_with(acks, now_ms, |leader| {
            leader.append_records(records, now_ms)
        })
    }

    /// Appends a batch a producer built (with its producer id, epoch and sequence for an
    /// idempotent producer, in any codec) on the leader, as Kafka's produce request does: a
    /// retry of a batch the leader already holds (also one written by an earlier leader and
    /// copied to this one) is answered with the original offsets and [`Produced::duplicate`],
    /// and acknowledged under `acks=all` once those offsets are committed. See the module
    /// docs for `acks`.
    ///
    /// # Errors
    /// As [`ReplicaSet::produce`], and as [`Partition::append_as_leader`] (the producer
    /// rules' refusals among them: [`Error::Producer`]).
    pub fn produce_batch(
        &mut self,
        batch: &crate::batch::RecordBatch,
        acks: Acks,
        now_ms: i64,
    ) -> Result<Produced> {
        self.produce_with(acks, now_ms, |leader| {
            leader.append_as_leader(batch, now_ms)
        })
    }

    /// The produce path of [`ReplicaSet::produce`] and [`ReplicaSet::produce_batch`]: `append`
    /// runs on the leader once the `acks=all` precondition holds.
    fn produce_with(
        &mut self,
        acks: Acks,
        now_ms: i64,
        append: impl FnOnce(&Partition) -> Result<crate::log::AppendInfo>,
    ) -> Result<Produced> {
        let leader = self.leader_slot()?;
        if acks == Acks::All && !leader.can_accept_acks_all()? {
            return Err(ReplicaError::NotEnoughReplicas {
                isr: leader.isr().map_or(0, |i| i.len()),
                min_insync_replicas: self.effective_min_isr(),
            }
            .into());
        }
        let info = append(leader)?;
        if acks == Acks::All {
            self.replicate(now_ms)?;
            #[cfg(test)]
            if let Some(f) = self.while_produce_waits.take() {
                (f.0)(self);
            }
        }
        let acknowledged = match acks {
            Acks::Leader => true,
            // Kafka's `checkEnoughReplicasReachOffset`, asked when the produce is answered.
            Acks::All => match self.leader_slot()?.acks_all_status(&info)? {
                AcksAllStatus::Complete => true,
                AcksAllStatus::Pending => false,
                AcksAllStatus::NotEnoughReplicasAfterAppend => {
                    return Err(ReplicaError::NotEnoughReplicasAfterAppend {
                        first_offset: info.first_offset,
                        last_offset: info.last_offset,
                        isr: self.leader_slot()?.isr().map_or(0, |i| i.len()),
                        min_insync_replicas: self.effective_min_isr(),
                    }
                    .into())
                }
            },
        };
        Ok(Produced {
            first_offset: info.first_offset,
            last_offset: info.last_offset,
            leader_epoch: self.leader_epoch,
            acknowledged,
            duplicate: info.duplicate,
        })
    }

    /// Replication rounds: every live follower fetches from the leader and applies the answer,
    /// until a round changes nothing. Returns the offsets copied.
    ///
    /// # Errors
    /// As [`Partition::handle_fetch`] and [`Partition::apply_fetch`] (a follower refusing to
    /// cut below its high watermark among them: a bug or an unclean election not declared).
    pub fn replicate(&mut self, now_ms: i64) -> Result<i64> {
        let Some(li) = self.leader else {
            return Ok(0);
        };
        let mut copied = 0;
        loop {
            let mut progress = false;
            for fi in 0..self.slots.len() {
                if fi == li || !self.slots[fi].live {
                    continue;
                }
                let (Some(leader), Some(follower)) =
                    (&self.slots[li].partition, &self.slots[fi].partition)
                else {
                    continue;
                };
                let request = follower.fetch_request(self.config.fetch_max_bytes)?;
                let response = leader.handle_fetch(&request, now_ms)?;
                match follower.apply_fetch(&response)? {
                    FollowerProgress::Appended {
                        records_appended, ..
                    } if records_appended > 0 => {
                        copied += records_appended;
                        progress = true;
                    }
                    FollowerProgress::Truncated { .. } | FollowerProgress::RestartedAt { .. } => {
                        progress = true
                    }
                    _ => {}
                }
            }
            if !progress {
                break;
            }
        }
        self.refresh();
        Ok(copied)
    }

    /// The periodic work as of `now_ms`: the leader's ISR shrink (followers not caught up for
    /// `replica_lag_time_max_ms`), and every live replica's high-watermark checkpoint (Kafka
    /// writes it every `replica.high.watermark.checkpoint.interval.ms`: a restarted replica
    /// comes back with the high watermark of its last checkpoint). Returns the replicas removed.
    ///
    /// # Errors
    /// As [`Partition::shrink_isr`] and [`Partition::checkpoint_high_watermark`].
    pub fn tick(&mut self, now_ms: i64) -> Result<Vec<ReplicaId>> {
        let removed = match self.leader_slot() {
            Ok(l) => l.shrink_isr(now_ms)?,
            Err(_) => Vec::new(),
        };
        for s in &self.slots {
            if let (true, Some(p)) = (s.live, &s.partition) {
                p.checkpoint_high_watermark()?;
            }
        }
        self.refresh();
        self.note_removed(&removed);
        Ok(removed)
    }

    /// `min(min_insync_replicas, replicas)`, the one minimum the leader's tracker applies to
    /// `acks=all` and to the high watermark ([`ReplicaTracker::effective_min_isr`]): below it
    /// the high watermark is frozen.
    ///
    /// [`ReplicaTracker::effective_min_isr`]: super::ReplicaTracker::effective_min_isr
    fn effective_min_isr(&self) -> usize {
        self.config
            .tracker
            .min_insync_replicas
            .min(self.config.replicas as usize)
    }

    /// Replicas just removed from the ISR become eligible leaders if the ISR is now below
    /// the effective minimum ISR (the high watermark is frozen: they hold all that is committed).
    fn note_removed(&mut self, removed: &[ReplicaId]) {
        if self.isr.len() < self.effective_min_isr() {
            for r in removed {
                if !self.elr.contains(r) && !self.lost_power.contains(r) {
                    self.elr.push(*r);
                }
            }
        }
    }

    /// Retention on every live replica as of `now_ms`, each below its own high watermark (see
    /// [`Partition::apply_retention`]). Returns the segments each deleted.
    ///
    /// # Errors
    /// As [`Partition::apply_retention`].
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<Vec<(ReplicaId, usize)>> {
        let mut out = Vec::new();
        for s in &self.slots {
            if let (true, Some(p)) = (s.live, &s.partition) {
                out.push((s.id, p.apply_retention(now_ms)?.deleted.len()));
            }
        }
        Ok(out)
    }

    /// Takes the leader's ISR and high watermark into the controller's view.
    fn refresh(&mut self) {
        let (isr, hw, history) = match self.leader_slot() {
            Ok(l) => (l.isr(), l.high_watermark(), l.epoch_entries()),
            Err(_) => return,
        };
        if hw >= self.committed {
            self.committed_history = history;
            self.committed_history.retain(|e| e.start_offset < hw);
        }
        if let Some(isr) = isr {
            // A replica that lost power is clean again once it is in the ISR, live, and holds
            // everything committed.
            let caught_up: Vec<ReplicaId> = isr
                .iter()
                .copied()
                .filter(|&r| {
                    self.is_live(r)
                        && self
                            .replica(r)
                            .is_some_and(|p| p.log_end_offset() >= hw.max(self.committed))
                })
                .collect();
            self.lost_power.retain(|r| !caught_up.contains(r));
            self.elr.retain(|r| !isr.contains(r));
            if isr.len() >= self.effective_min_isr() {
                // The high watermark may move again: eligible leaders may fall behind it.
                self.elr.clear();
            }
            self.isr = isr;
        }
        self.committed = self.committed.max(hw);
    }

    /// Fails replica `id` as `failure` says. A failed leader leaves the partition without one
    /// until [`ReplicaSet::elect`]. A replica that is down (killed) may still lose power.
    ///
    /// # Errors
    /// [`ReplicaError::UnknownReplica`], [`ReplicaError::ReplicaDown`] to kill one that is down;
    /// for a power cut, as [`Log::open`] and [`Log::truncate_to`] on its files.
    pub fn fail(&mut self, id: ReplicaId, failure: Failure, now_ms: i64) -> Result<()> {
        let i = self.slot(id)?;
        // A killed replica's machine can still lose power (its page cache goes with it).
        if !self.slots[i].live && failure == Failure::Kill {
            return Err(ReplicaError::ReplicaDown { replica: id }.into());
        }
        self.refresh();
        self.slots[i].live = false;
        if self.leader == Some(i) {
            self.leader = None;
        }
        // Out of the ISR at once, unless it is the last member (the controller fences a dead
        // broker, as KRaft does when its session expires): a dead follower does not hold
        // acks=all back for `replica_lag_time_max_ms`, and it rejoins once caught up.
        if self.isr.contains(&id) && self.isr.len() > 1 {
            self.isr.retain(|&r| r != id);
            if let Ok(l) = self.leader_slot() {
                l.remove_from_isr(id, now_ms)?;
            }
            if failure == Failure::Kill {
                self.note_removed(&[id]);
            }
        }
        if failure == Failure::PowerCut {
            // No longer an eligible leader: it may have lost what it acknowledged.
            self.elr.retain(|&r| r != id);
            // It may have lost what it acknowledged (KIP-966's unclean shutdown).
            if !self.lost_power.contains(&id) {
                self.lost_power.push(id);
            }
            let Some(p) = self.slots[i].partition.take() else {
                return Ok(());
            };
            // Reopened at once, to show what survived; down until restarted.
            self.slots[i].partition = Some(p.power_cut()?);
        }
        Ok(())
    }

    /// Restarts a failed replica: reopened (recovering its log after a kill) as a follower of
    /// the current leader epoch. It catches up in the next replication rounds.
    ///
    /// # Errors
    /// [`ReplicaError::UnknownReplica`]; as [`Partition::open`] and
    /// [`Partition::become_follower`].
    pub fn restart(&mut self, id: ReplicaId, _now_ms: i64) -> Result<()> {
        let i = self.slot(id)?;
        if self.slots[i].live {
            return Ok(());
        }
        if let Some(p) = self.slots[i].partition.take() {
            // After a kill the process died with its log open: recovery runs at open.
            p.abandon();
        }
        let config = Self::partition_config(&self.config, id);
        let p = Partition::open(&self.slots[i].dir, config)?;
        if self.leader.is_some() {
            p.become_follower(self.leader_epoch, self.election)?;
        }
        self.slots[i].partition = Some(p);
        self.slots[i].live = true;
        Ok(())
    }

    /// Elects a leader if there is no live one: a live ISR member (the longest log), or, with
    /// none and unclean election enabled, the live replica with the longest log. The epoch goes
    /// up by one and every other live replica follows. `Ok(None)` if nobody can be elected (or
    /// a live leader exists).
    ///
    /// # Errors
    /// As [`Partition::become_leader`] and [`Partition::become_follower`].
    pub fn elect(&mut self, now_ms: i64) -> Result<Option<ElectionReport>> {
        if self.leader.is_some_and(|i| self.slots[i].live) {
            return Ok(None);
        }
        // The longest log: highest last epoch, then log end offset (KIP-966's order).
        let longest = |candidates: &mut dyn Iterator<Item = usize>| {
            candidates.max_by_key(|&i| {
                let p = self.slots[i].partition.as_ref();
                (
                    p.and_then(|p| p.epoch_entries().last().map(|e| e.leader_epoch)),
                    p.map_or(-1, |p| p.log_end_offset()),
                    std::cmp::Reverse(i),
                )
            })
        };
        let live = |i: &usize| self.slots[*i].live && self.slots[*i].partition.is_some();
        let in_isr = |i: &usize| self.isr.contains(&self.slots[*i].id);
        let eligible = |i: &usize| in_isr(i) || self.elr.contains(&self.slots[*i].id);
        let lost_power = |i: &usize| self.lost_power.contains(&self.slots[*i].id);
        // A live ISR member that kept its data; if every live ISR member lost power, the
        // longest log among them and the replicas dropped from the ISR for losing power
        // (KIP-966: what survived is spread over them; none holds less than it made durable).
        let mut clean = longest(
            &mut (0..self.slots.len())
                .filter(live)
                .filter(eligible)
                .filter(|i| !lost_power(i)),
        );
        // Every ISR member lost power: once all of them and every replica dropped for losing
        // power are back, the longest log among them leads (KIP-966's unclean recovery: what
        // survived is spread over them). Its followers may cut what they had above it, so it
        // counts as unclean. A killed ISR member comes back with everything: it is waited for.
        let isr_kept_data = self
            .isr
            .iter()
            .chain(&self.elr)
            .any(|r| !self.lost_power.contains(r));
        let recovery_ready = (0..self.slots.len())
            .filter(|i| eligible(i) || lost_power(i))
            .all(|i| live(&i));
        let mut recovered = false;
        if clean.is_none() && !isr_kept_data && recovery_ready {
            clean = longest(
                &mut (0..self.slots.len())
                    .filter(live)
                    .filter(|i| eligible(i) || lost_power(i)),
            );
            recovered = clean.is_some();
        }
        let (chosen, unclean) = match clean {
            Some(i) => (i, recovered),
            None if self.config.unclean_leader_election == UncleanLeaderElection::Enabled => {
                match longest(&mut (0..self.slots.len()).filter(live)) {
                    Some(i) => (i, true),
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let known = self
            .slots
            .iter()
            .filter_map(|s| s.partition.as_ref())
            .filter_map(|p| p.epoch_entries().last().map(|e| e.leader_epoch))
            .max()
            .unwrap_or(0);
        let epoch = self.leader_epoch.max(known) + 1;
        let replicas: Vec<ReplicaId> = self.slots.iter().map(|s| s.id).collect();
        let new_id = self.slots[chosen].id;
        let mut isr: Vec<ReplicaId> = if unclean {
            vec![new_id]
        } else {
            self.isr.clone()
        };
        if !isr.contains(&new_id) {
            isr.push(new_id);
        }
        let Some(leader) = self.slots[chosen].partition.as_ref() else {
            return Ok(None);
        };
        let leader_end = leader.log_end_offset();
        let leader_history = leader.epoch_entries();
        let leader_start = leader.log_start_offset();
        leader.become_leader(
            &LeaderAndIsr {
                leader_epoch: epoch,
                replicas,
                isr: isr.clone(),
            },
            now_ms,
        )?;
        if unclean {
            self.unclean_epoch = Some(epoch);
        }
        let election = match (unclean, self.unclean_epoch) {
            (true, _) => Election::Unclean,
            (false, Some(unclean_epoch)) => Election::CleanAfterUnclean { unclean_epoch },
            (false, None) => Election::Clean,
        };
        for (i, s) in self.slots.iter().enumerate() {
            if i != chosen && s.live {
                if let Some(p) = &s.partition {
                    p.become_follower(epoch, election)?;
                }
            }
        }
        let mut lost = None;
        if unclean {
            let kept = divergence(
                (&self.committed_history, self.committed),
                (&leader_history, leader_end),
                leader_start,
            );
            lost = (kept < self.committed).then_some((kept, self.committed));
            // What the new leader holds is what is committed from now on.
            self.committed = kept;
            self.committed_history.retain(|e| e.start_offset < kept);
        }
        self.leader = Some(chosen);
        self.leader_epoch = epoch;
        self.election = election;
        // Eligible leaders stay so only while the high watermark stays frozen.
        if isr.len() >= self.effective_min_isr() {
            self.elr.clear();
        }
        self.elr.retain(|r| !isr.contains(r));
        self.isr = isr;
        Ok(Some(ElectionReport {
            leader: new_id,
            leader_epoch: epoch,
            unclean,
            lost,
        }))
    }

    /// Closes every live replica cleanly (failed ones are dropped as they are).
    ///
    /// # Errors
    /// As [`Partition::close`].
    pub fn close(mut self) -> Result<()> {
        for s in &mut self.slots {
            if let Some(p) = s.partition.take() {
                if s.live {
                    p.close()?;
                } else {
                    p.abandon();
                }
            }
        }
        Ok(())
    }
}

/// Where two epoch histories, each `(entries, end offset)`, first give an offset different
/// epochs, looking from `from` (and from where both begin: a log start trims a history); the
/// lower end if they agree up to it. The same epoch at the same offset is the same batch.
fn divergence(a: (&[EpochEntry], i64), b: (&[EpochEntry], i64), from: i64) -> i64 {
    let end = a.1.min(b.1);
    let begin = [a.0.first(), b.0.first()]
        .into_iter()
        .flatten()
        .map(|e| e.start_offset)
        .fold(from, i64::max);
    let epoch_at = |h: &[EpochEntry], offset: i64| {
        let covering = h.partition_point(|e| e.start_offset <= offset);
        covering.checked_sub(1).map(|i| h[i].leader_epoch)
    };
    let mut points: Vec<i64> =
        a.0.iter()
            .chain(b.0)
            .map(|e| e.start_offset)
            .filter(|&o| o > begin && o < end)
            .collect();
    points.push(begin);
    points.sort_unstable();
    points
        .into_iter()
        .take_while(|&o| o < end)
        .find(|&o| epoch_at(a.0, o) != epoch_at(b.0, o))
        .unwrap_or(end)
}

impl Partition {
    /// Plays a power cut of this replica's machine, for tests and simulations: the partition
    /// is dropped as a crash would drop it, its log keeps only what was durable (below its
    /// recovery point; the power-loss harness in `log::power_loss` shows that all of it
    /// survives), and it is reopened from what is left, with no role (as after a restart). The
    /// high watermark comes from its last checkpoint, clamped to what survived.
    ///
    /// # Errors
    /// As [`Log::open`], [`Log::truncate_to`] and [`Partition::open`].
    pub fn power_cut(self) -> Result<Partition> {
        let dir = self.log().dir().to_owned();
        let config = self.config().clone();
        let durable = self.log().recovery_point();
        self.abandon();
        power_cut(&dir, &config.log, durable)?;
        Partition::open(&dir, config)
    }
}

/// What a power cut leaves of the log in `dir`: everything below `durable` (its recovery point
/// when the power went), nothing above.
fn power_cut(dir: &Path, config: &Config, durable: i64) -> Result<()> {
    let log = Log::open(dir, config.clone())?;
    if durable < log.log_start_offset() {
        let start = log.log_start_offset();
        log.truncate_fully_and_start_at(start)?;
    } else {
        log.truncate_to(durable)?;
    }
    log.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica::TrackerConfig;

    fn three_replicas_min_isr_three(dir: &Path) -> ReplicaSet {
        let config = ReplicaSetConfig {
            tracker: TrackerConfig {
                min_insync_replicas: 3,
                ..TrackerConfig::default()
            },
            ..ReplicaSetConfig::new("rides", 0, 3)
        };
        ReplicaSet::open(dir, config, 0).unwrap()
    }

    fn ride(i: i64) -> Vec<SimpleRecord> {
        vec![SimpleRecord::new(
            i,
            Some("vendor"),
            Some(format!("ride-{i}")),
        )]
    }

    fn a_follower(set: &ReplicaSet) -> ReplicaId {
        let leader = set.leader().unwrap();
        set.replica_ids()
            .into_iter()
            .find(|&r| r != leader)
            .unwrap()
    }

    /// Kafka's `NOT_ENOUGH_REPLICAS`: the ISR is already below the effective minimum, so the
    /// leader refuses the produce before appending; nothing is written.
    #[test]
    fn acks_all_below_min_isr_is_refused_before_the_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = three_replicas_min_isr_three(dir.path());
        set.fail(a_follower(&set), Failure::Kill, 0).unwrap();
        let leader = set.leader().unwrap();
        let end = set.replica(leader).unwrap().log_end_offset();
        match set.produce(&ride(1), Acks::All, 0) {
            Err(Error::Replica(ReplicaError::NotEnoughReplicas {
                isr: 2,
                min_insync_replicas: 3,
            })) => {}
            other => panic!("expected NotEnoughReplicas before the append, got {other:?}"),
        }
        assert_eq!(set.replica(leader).unwrap().log_end_offset(), end);
    }

    /// Kafka's `NOT_ENOUGH_REPLICAS_AFTER_APPEND`: the batch was appended (and replicated)
    /// while the ISR was large enough, and the ISR fell below the minimum before the produce
    /// was answered. The records stay in the leader's log, but the answer is not an
    /// acknowledgement, and it is told apart from the refusal up front.
    #[test]
    fn isr_shrinking_while_acks_all_waits_is_not_enough_replicas_after_append() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = three_replicas_min_isr_three(dir.path());
        let follower = a_follower(&set);
        let leader = set.leader().unwrap();
        set.while_produce_waits = Some(WhileProduceWaits(Box::new(move |set: &mut ReplicaSet| {
            set.fail(follower, Failure::Kill, 0).unwrap();
        })));
        let end = set.replica(leader).unwrap().log_end_offset();
        match set.produce(&ride(1), Acks::All, 0) {
            Err(Error::Replica(ReplicaError::NotEnoughReplicasAfterAppend {
                first_offset,
                last_offset,
                isr: 2,
                min_insync_replicas: 3,
            })) => assert_eq!((first_offset, last_offset), (end, end)),
            other => panic!("expected NotEnoughReplicasAfterAppend, got {other:?}"),
        }
        assert_eq!(set.replica(leader).unwrap().log_end_offset(), end + 1);
        let read = set
            .replica(leader)
            .unwrap()
            .log()
            .read(end, 1 << 20)
            .unwrap();
        assert_eq!(read.batches.len(), 1, "the records are in the leader's log");
    }
}
