//! Replication bookkeeping, the storage half of Kafka's follower-copy protocol that needs no log:
//! the [`LeaderEpochCache`] (which epoch began where, Kafka's `leader-epoch-checkpoint`) and the
//! I/O-free [`ReplicaTracker`] (a leader's view of its followers: fetch positions, ISR, high
//! watermark).
//!
//! Neither depends on [`Log`](crate::Log); the log and the replica set call into them.

mod epoch_cache;
mod error;
mod tracker;

pub use epoch_cache::{
    BatchEpoch, EpochCacheMismatch, EpochEndOffset, EpochEntry, LeaderEpochCache,
    LEADER_EPOCH_CHECKPOINT_FILE, MAX_CHECKPOINT_BYTES,
};
pub use error::ReplicaError;
pub use tracker::{
    AcksAllStatus, HighWatermarkPolicy, LeaderTerm, ReplicaId, ReplicaState, ReplicaTracker,
    TrackerConfig,
};
