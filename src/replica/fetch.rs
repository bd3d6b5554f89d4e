//! The messages of the follower-copy protocol, as plain data: a follower's [`FetchRequest`] and
//! the leader's [`FetchResponse`]. partlog has no network; an embedder carries these over its
//! own transport (every field is a number, an enum or bytes, easy to serialize) and hands them to
//! [`Partition::handle_fetch`](super::Partition::handle_fetch) and
//! [`Partition::apply_fetch`](super::Partition::apply_fetch).

use bytes::Bytes;

use super::epoch_cache::EpochEndOffset;
use super::tracker::ReplicaId;

/// A follower's fetch (Kafka's `FetchRequest` for one partition, from a replica).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FetchRequest {
    /// The fetching replica.
    pub replica_id: ReplicaId,
    /// Where the follower wants to read from: its log end offset.
    pub fetch_offset: i64,
    /// The epoch of the follower's latest epoch-cache entry (Kafka's `lastFetchedEpoch`); `None`
    /// when it knows no epoch (an empty log): the leader then skips the divergence check.
    pub last_fetched_epoch: Option<i32>,
    /// The leader epoch the follower believes in (Kafka's `currentLeaderEpoch`); `None` skips the
    /// fencing check.
    pub current_leader_epoch: Option<i32>,
    /// Byte budget of the answer (at least one whole batch is returned, however large).
    pub max_bytes: usize,
}

/// The leader's answer to a [`FetchRequest`]. Exactly one of Kafka's outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchResponse {
    /// Batches from the fetch offset on (possibly none, at the log end).
    Records(FetchedRecords),
    /// The follower's log diverged from the leader's: it must truncate (see
    /// [`Partition::apply_fetch`](super::Partition::apply_fetch)) and fetch again. Carries no
    /// records and no high watermark on purpose (KAFKA-14704).
    DivergingEpoch(EpochEndOffset),
    /// The fetch offset is outside the leader's log, or the leader knows nothing of the
    /// follower's last fetched epoch (Kafka's `OFFSET_OUT_OF_RANGE`).
    OffsetOutOfRange {
        /// The leader's log start offset.
        log_start_offset: i64,
        /// The leader's log end offset.
        log_end_offset: i64,
    },
    /// The follower's current leader epoch is older than the leader's
    /// (`FENCED_LEADER_EPOCH`): it must learn the new epoch first.
    FencedLeaderEpoch {
        /// The leader's epoch.
        leader_epoch: i32,
    },
    /// The follower's current leader epoch is newer than the leader's
    /// (`UNKNOWN_LEADER_EPOCH`): this leader has not learned it yet; retry later.
    UnknownLeaderEpoch {
        /// The leader's epoch.
        leader_epoch: i32,
    },
    /// The replica asked is not the leader (`NOT_LEADER_OR_FOLLOWER`).
    NotLeader,
}

/// The records answer: whole batches and the leader's offsets, all taken before the read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FetchedRecords {
    /// Whole batches laid end to end exactly as in the leader's segment: a zero-copy slice of
    /// its map (empty at the log end).
    pub records: Bytes,
    /// The leader epoch of the term that served the fetch (validated it, read the batches and
    /// counted the fetch): a follower that has since learned a newer epoch drops the answer.
    pub leader_epoch: i32,
    /// The leader's high watermark before the read.
    pub high_watermark: i64,
    /// The leader's log start offset before the read.
    pub log_start_offset: i64,
    /// The leader's log end offset before the read.
    pub log_end_offset: i64,
}

/// The answer to KRaft's `validateOffsetAndEpoch` (and the first half of a fetch): may a
/// replica whose log ends at `offset` with `epoch` as its last epoch go on from there?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OffsetEpochCheck {
    /// Yes: the leader's log holds the same history up to `offset`.
    Valid,
    /// No: the logs diverge; the replica must truncate to at most the end offset (and check
    /// again).
    Diverging(EpochEndOffset),
    /// `offset` is outside the leader's log, or its epoch is unknown to the leader.
    OutOfRange {
        /// The leader's log start offset.
        log_start_offset: i64,
        /// The leader's log end offset.
        log_end_offset: i64,
    },
}

/// What [`Partition::apply_fetch`](super::Partition::apply_fetch) did with an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FollowerProgress {
    /// Records were appended (possibly none) and the high watermark and log start updated.
    Appended {
        /// Offsets the log end advanced by (0 when the answer had no records; offset gaps a
        /// compacted leader left count in it).
        records_appended: i64,
        /// The follower's log end offset now.
        log_end_offset: i64,
        /// The follower's high watermark now.
        high_watermark: i64,
    },
    /// The log was truncated after a diverging epoch (or an out-of-range answer). `complete` is
    /// false when the follower could not yet tell where the logs part (KIP-279): the next fetch
    /// continues the search.
    Truncated {
        /// The log end offset after the truncation.
        log_end_offset: i64,
        /// Whether the divergence point is found.
        complete: bool,
    },
    /// The follower's log was behind the leader's log start: it was emptied and restarted there
    /// (Kafka's `truncateFullyAndStartAt`).
    RestartedAt {
        /// The new log start (and end) offset.
        offset: i64,
    },
    /// Nothing changed: the answer was a fencing or not-leader error, or out of range with
    /// nothing to cut. The embedder learns the current leader and epoch, then fetches again.
    Unchanged,
}
