//! Errors of the replication bookkeeping: bad arguments to the epoch cache and the replica
//! tracker. They fold into [`crate::Error::Replica`].

use std::fmt;

use crate::id::ReplicaId;

/// A replication call was given arguments that break one of its rules.
///
/// Nothing is changed when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicaError {
    /// A leader epoch entry with a negative epoch or start offset (Kafka rejects these too).
    InvalidEpochEntry {
        /// The rejected epoch.
        leader_epoch: i32,
        /// The rejected start offset.
        start_offset: i64,
    },
    /// An offset argument that must not be negative was.
    NegativeOffset {
        /// Which argument (`"end_offset"`, `"fetch_offset"`...).
        what: &'static str,
        /// The rejected value.
        offset: i64,
    },
    /// The replica is not in the partition's replica set.
    UnknownReplica {
        /// The replica asked about.
        replica: ReplicaId,
    },
    /// The same replica is listed twice in a replica set or ISR.
    DuplicateReplica {
        /// The replica listed twice.
        replica: ReplicaId,
    },
    /// The in-sync replica set must contain the leader.
    LeaderNotInIsr {
        /// The leader.
        leader: ReplicaId,
    },
    /// Leader epochs only increase.
    EpochNotIncreasing {
        /// The epoch in force.
        current: i32,
        /// The epoch asked for.
        requested: i32,
    },
    /// A follower reported a fetch offset past the leader's log end offset at that fetch.
    FetchOffsetBeyondLogEnd {
        /// The follower.
        replica: ReplicaId,
        /// Its fetch offset.
        fetch_offset: i64,
        /// The leader's log end offset when the fetch was served.
        log_end_offset: i64,
    },
    /// The leader's log end offset would fall below the high watermark, or a high watermark was
    /// given above the log end offset.
    LogEndBelowHighWatermark {
        /// The log end offset.
        log_end_offset: i64,
        /// The high watermark.
        high_watermark: i64,
    },
    /// The current epoch's start offset is past the leader's log end offset.
    EpochStartBeyondLogEnd {
        /// The epoch's start offset.
        epoch_start_offset: i64,
        /// The log end offset.
        log_end_offset: i64,
    },
    /// The call needs this replica to be the partition's leader (at `leader_epoch`, if given),
    /// and it is not (Kafka's `NOT_LEADER_OR_FOLLOWER`).
    NotLeader {
        /// The epoch the caller asked for, if any.
        leader_epoch: Option<i32>,
    },
    /// The call needs this replica to be a follower, and it is not.
    NotFollower,
    /// A truncation would remove offsets below the high watermark (committed data), which only an
    /// unclean election may do. Nothing was cut.
    TruncationBelowHighWatermark {
        /// Where the truncation would cut.
        offset: i64,
        /// The high watermark.
        high_watermark: i64,
    },
    /// The log start offset cannot pass the high watermark.
    LogStartBeyondHighWatermark {
        /// The log start offset asked for.
        log_start_offset: i64,
        /// The high watermark.
        high_watermark: i64,
    },
    /// The replica set has no live leader (it died and no election has run, or no replica may
    /// be elected).
    NoLeader,
    /// An `acks=all` produce was refused up front: the ISR is smaller than
    /// `min_insync_replicas` (Kafka's `NOT_ENOUGH_REPLICAS`).
    NotEnoughReplicas {
        /// The in-sync replicas now.
        isr: usize,
        /// The configured minimum.
        min_insync_replicas: usize,
    },
    /// An `acks=all` produce was appended (and is in the leader's log, `first_offset..=
    /// last_offset`), but the ISR fell below the effective `min_insync_replicas` before it was
    /// answered: it is not acknowledged (Kafka's `NOT_ENOUGH_REPLICAS_AFTER_APPEND`; a producer
    /// retrying it may write it twice). Unlike [`ReplicaError::NotEnoughReplicas`], the
    /// records were written.
    NotEnoughReplicasAfterAppend {
        /// Offset of the first record appended.
        first_offset: i64,
        /// Offset of the last record appended.
        last_offset: i64,
        /// The in-sync replicas when the produce was answered.
        isr: usize,
        /// The effective minimum (`min(min_insync_replicas, replicas)`).
        min_insync_replicas: usize,
    },
    /// The replica is down (killed or powered off) and cannot do what was asked.
    ReplicaDown {
        /// The replica.
        replica: ReplicaId,
    },
}

impl fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplicaError::InvalidEpochEntry {
                leader_epoch,
                start_offset,
            } => write!(
                f,
                "invalid leader epoch entry: epoch {leader_epoch} at offset {start_offset}"
            ),
            ReplicaError::NegativeOffset { what, offset } => {
                write!(f, "{what} must not be negative, got {offset}")
            }
            ReplicaError::UnknownReplica { replica } => {
                write!(f, "replica {replica} is not in the replica set")
            }
            ReplicaError::DuplicateReplica { replica } => {
                write!(f, "replica {replica} is listed twice")
            }
            ReplicaError::LeaderNotInIsr { leader } => {
                write!(f, "the in-sync replicas must include the leader {leader}")
            }
            ReplicaError::EpochNotIncreasing { current, requested } => write!(
                f,
                "leader epoch {requested} is not above the current epoch {current}"
            ),
            ReplicaError::FetchOffsetBeyondLogEnd {
                replica,
                fetch_offset,
                log_end_offset,
            } => write!(
                f,
                "replica {replica} fetched at {fetch_offset}, past the leader's log end offset {log_end_offset}"
            ),
            ReplicaError::LogEndBelowHighWatermark {
                log_end_offset,
                high_watermark,
            } => write!(
                f,
                "log end offset {log_end_offset} is below the high watermark {high_watermark}"
            ),
            ReplicaError::EpochStartBeyondLogEnd {
                epoch_start_offset,
                log_end_offset,
            } => write!(
                f,
                "epoch start offset {epoch_start_offset} is past the log end offset {log_end_offset}"
            ),
            ReplicaError::NotLeader { leader_epoch } => match leader_epoch {
                Some(e) => write!(f, "this replica is not the leader at epoch {e}"),
                None => write!(f, "this replica is not the leader"),
            },
            ReplicaError::NotFollower => write!(f, "this replica is not a follower"),
            ReplicaError::TruncationBelowHighWatermark {
                offset,
                high_watermark,
            } => write!(
                f,
                "truncation to {offset} would cut below the high watermark {high_watermark} (only an unclean election may)"
            ),
            ReplicaError::NoLeader => write!(f, "the partition has no live leader"),
            ReplicaError::NotEnoughReplicas {
                isr,
                min_insync_replicas,
            } => write!(
                f,
                "{isr} in-sync replicas, fewer than min.insync.replicas = {min_insync_replicas}"
            ),
            ReplicaError::NotEnoughReplicasAfterAppend {
                first_offset,
                last_offset,
                isr,
                min_insync_replicas,
            } => write!(
                f,
                "offsets {first_offset}..={last_offset} were appended, but the in-sync replicas fell to {isr}, fewer than min.insync.replicas = {min_insync_replicas}, before they were acknowledged"
            ),
            ReplicaError::ReplicaDown { replica } => write!(f, "replica {} is down", replica.0),
            ReplicaError::LogStartBeyondHighWatermark {
                log_start_offset,
                high_watermark,
            } => write!(
                f,
                "log start offset {log_start_offset} would pass the high watermark {high_watermark}"
            ),
        }
    }
}

impl std::error::Error for ReplicaError {}
