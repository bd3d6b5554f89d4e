//! Errors of the topic layer: [`TopicError`] for topics and producing, [`GroupError`] for the
//! group coordinator and consumers. Both fold into [`crate::Error`].

use std::fmt;

/// Most partitions a topic may have here (each partition is a log with its own files). Kept
/// beside [`TopicError::InvalidPartitionCount`], which states it; `topic` re-exports it.
pub const MAX_PARTITIONS: u32 = 10_000;

/// What can go wrong with a topic (beyond the I/O and corruption errors of [`crate::Error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TopicError {
    /// The name breaks Kafka's topic name rules.
    InvalidName {
        /// The rejected name (as given; it may hold anything).
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A topic of that name exists already.
    AlreadyExists {
        /// The topic.
        topic: String,
    },
    /// No topic of that name exists in the data directory.
    NotFound {
        /// The topic.
        topic: String,
    },
    /// A partition count that is zero, too large, or (when adding partitions) not above the
    /// current count: Kafka never removes partitions.
    InvalidPartitionCount {
        /// The topic.
        topic: String,
        /// The count asked for.
        requested: u32,
        /// The current count (0 when creating).
        current: u32,
    },
    /// A partition number at or above the topic's partition count.
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partition_count: u32,
    },
    /// A partition directory's `partition.metadata` names another topic id than the topic's
    /// (Kafka's `InconsistentTopicIdException`): the directory belongs to another incarnation
    /// of the topic (deleted and created again), and is left alone.
    InconsistentTopicId {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The topic's id.
        expected: String,
        /// The id the partition directory holds.
        found: String,
    },
    /// The data directory's `meta.properties` is refused (KRaft's rules): a version 0
    /// (`broker.id`) file, a missing key, or another node's file.
    MetaProperties {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A partition directory with a `partition.metadata` but no partlog metadata file for its
    /// topic: a Kafka broker's (or one partlog no longer knows), not the leftover of a crash in
    /// the middle of a create (partlog writes `partition.metadata` only after the topic's
    /// metadata file, and removes it before deleting). Create and add-partitions refuse to
    /// remove it; [`Topic::adopt`](crate::topic::Topic::adopt) opens it.
    ForeignPartitionDir {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
    },
    /// [`Topic::adopt`](crate::topic::Topic::adopt) found no partition directories to adopt, or
    /// directories that do not make a topic (a gap in the numbers, no or differing topic ids).
    CannotAdopt {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// A [`TopicSource`](crate::topic::TopicSource) that cannot serve a `read_committed`
    /// read (it does not know its partitions' last stable offsets).
    ReadCommittedUnsupported {
        /// The topic.
        topic: String,
    },
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::InvalidName { name, reason } => {
                write!(f, "invalid topic name {name:?}: {reason}")
            }
            TopicError::AlreadyExists { topic } => write!(f, "topic {topic} already exists"),
            TopicError::NotFound { topic } => write!(f, "topic {topic} does not exist"),
            TopicError::InvalidPartitionCount {
                topic,
                requested,
                current,
            } => write!(
                f,
                "topic {topic}: cannot have {requested} partitions (it has {current}; the count \
                 must be between 1 and {} and may only grow)",
                MAX_PARTITIONS
            ),
            TopicError::UnknownPartition {
                topic,
                partition,
                partition_count,
            } => write!(
                f,
                "topic {topic} has no partition {partition} (it has {partition_count})"
            ),
            TopicError::InconsistentTopicId {
                topic,
                partition,
                expected,
                found,
            } => write!(
                f,
                "partition {topic}-{partition} holds topic id {found}, but the topic's id is \
                 {expected}"
            ),
            TopicError::MetaProperties { path, reason } => {
                write!(f, "{}: {reason}", path.display())
            }
            TopicError::ForeignPartitionDir { topic, partition } => write!(
                f,
                "partition directory {topic}-{partition} holds a topic id but topic {topic} has \
                 no metadata: a broker's directory, not removed (adopt it instead)"
            ),
            TopicError::CannotAdopt { topic, reason } => {
                write!(f, "cannot adopt topic {topic}: {reason}")
            }
            TopicError::ReadCommittedUnsupported { topic } => {
                write!(
                    f,
                    "topic {topic}: this source cannot serve read_committed reads"
                )
            }
        }
    }
}

impl std::error::Error for TopicError {}

/// What the group coordinator refuses, or a consumer cannot do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// A group id that is empty or too long (at most 255 bytes), or a client id that is too long.
    InvalidGroupId {
        /// The rejected id.
        group: String,
    },
    /// The member is not (or no longer) in the group: it left, or its session timed out. It
    /// must join again (Kafka's `UNKNOWN_MEMBER_ID`).
    UnknownMember {
        /// The group.
        group: String,
        /// The member.
        member_id: String,
    },
    /// A commit or heartbeat from an earlier generation: the group rebalanced since, and the
    /// member's assignment may have moved to another member (Kafka's `ILLEGAL_GENERATION`).
    IllegalGeneration {
        /// The group.
        group: String,
        /// The member.
        member_id: String,
        /// The generation the member acted in.
        generation: i32,
        /// The group's current generation.
        current_generation: i32,
    },
    /// A session timeout outside the coordinator's bounds (Kafka's
    /// `group.min.session.timeout.ms`, `group.max.session.timeout.ms`).
    InvalidSessionTimeout {
        /// The rejected timeout.
        session_timeout_ms: i64,
        /// Smallest allowed.
        min: i64,
        /// Largest allowed.
        max: i64,
    },
    /// A committed offset that is negative.
    InvalidOffset {
        /// The topic.
        topic: String,
        /// The partition.
        partition: u32,
        /// The rejected offset.
        offset: i64,
    },
    /// A consumer was given no topic to read, or two sources for the same topic.
    InvalidSubscription {
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::InvalidGroupId { group } => {
                write!(f, "invalid group or client id {group:?}: 1 to 255 bytes")
            }
            GroupError::UnknownMember { group, member_id } => {
                write!(f, "group {group} has no member {member_id}; join again")
            }
            GroupError::IllegalGeneration {
                group,
                member_id,
                generation,
                current_generation,
            } => write!(
                f,
                "group {group}: member {member_id} acted in generation {generation}, but the \
                 group is at generation {current_generation}; rejoin"
            ),
            GroupError::InvalidSessionTimeout {
                session_timeout_ms,
                min,
                max,
            } => write!(
                f,
                "session timeout {session_timeout_ms} ms is outside [{min}, {max}] ms"
            ),
            GroupError::InvalidOffset {
                topic,
                partition,
                offset,
            } => write!(f, "cannot commit offset {offset} for {topic}-{partition}"),
            GroupError::InvalidSubscription { reason } => write!(f, "bad subscription: {reason}"),
        }
    }
}

impl std::error::Error for GroupError {}
