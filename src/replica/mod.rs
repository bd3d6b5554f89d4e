//! Replication: the storage half of Kafka's follower-copy protocol.
//!
//! - [`LeaderEpochCache`]: which epoch began where (Kafka's `leader-epoch-checkpoint`);
//! - [`ReplicaTracker`]: a leader's I/O-free view of its followers (fetch positions, ISR, high
//!   watermark);
//! - [`Partition`]: one replica, a [`Log`](crate::Log) with the epoch cache, the high watermark
//!   (and its `replication-offset-checkpoint`) and a leader's or follower's role: leader appends,
//!   fetch validation and answers, follower appends and truncation;
//! - [`FetchRequest`] / [`FetchResponse`]: the protocol's messages as plain data, for the
//!   embedder's transport;
//! - [`ReplicaSet`]: N replicas of one partition in one process, with elections, the ISR and
//!   failures (killed processes, power cuts) played by the set.
//!
//! The cache and the tracker do not depend on the log; `Partition` puts them over it.

mod epoch_cache;
mod fetch;
mod follower;
mod hw_checkpoint;
mod partition;
mod replica_set;
mod tracker;

pub use crate::error::ReplicaError;
pub use epoch_cache::{
    BatchEpoch, EpochCacheMismatch, EpochEndOffset, EpochEntry, LeaderEpochCache,
    LEADER_EPOCH_CHECKPOINT_FILE, MAX_CHECKPOINT_BYTES,
};
pub use fetch::{FetchRequest, FetchResponse, FetchedRecords, FollowerProgress, OffsetEpochCheck};
pub use hw_checkpoint::REPLICATION_OFFSET_CHECKPOINT_FILE;
pub use partition::{
    load_epoch_cache, Durability, Election, LeaderAndIsr, LogView, Partition, PartitionConfig,
};
pub use replica_set::{
    Acks, ElectionReport, Failure, Produced, ReplicaSet, ReplicaSetConfig, UncleanLeaderElection,
};
pub use tracker::{
    AcksAllStatus, HighWatermarkPolicy, LeaderTerm, ReplicaId, ReplicaState, ReplicaTracker,
    TrackerConfig,
};

#[cfg(test)]
mod leader_tests;
#[cfg(test)]
mod partition_tests;
