//! Typed errors. Every error that concerns bytes on disk names the file and the byte position;
//! every offset error names the valid range.
//!
//! The layers' error enums live here, below every layer (`replica` and `topic` re-export theirs):
//! `Error` folds them in as data, so the umbrella names no upper module and the lower layers
//! (`batch`, `segment`, `log`) that return it depend on nothing above them.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::batch::BatchError;
mod producer;
mod replica;
mod topic;

pub use producer::ProducerError;
pub use replica::ReplicaError;
pub use topic::{GroupError, TopicError, MAX_PARTITIONS};

/// Result alias for partlog operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in partlog.
///
/// The enum is `#[non_exhaustive]`: new failure modes may be added without a major release.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on `path`.
    Io {
        /// The file or directory being worked on.
        path: PathBuf,
        /// What partlog was doing (`"open"`, `"fsync"`, `"mmap"`...).
        op: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// Bytes on disk are not what partlog wrote: a bad CRC, a torn batch, an impossible length,
    /// an index entry pointing outside its log.
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte position in that file where the damage was found.
        position: u64,
        /// What was wrong.
        reason: String,
    },
    /// A record batch handed to partlog (to append) is malformed.
    InvalidBatch(BatchError),
    /// A client's (or leader's) compressed batch was refused by the append's validation of
    /// what is inside it (as Kafka's broker validates it): its records do not decompress, inflate
    /// past `max_decompressed_batch_bytes`, or break a record rule. Nothing was written.
    InvalidRecords {
        /// Index of the batch in the append (0-based).
        batch: usize,
        /// The batch's base offset as sent (a producer sends 0).
        base_offset: i64,
        /// What is wrong; record positions count from the batch's start as if its records were
        /// stored uncompressed after the 61-byte header.
        source: BatchError,
    },
    /// The requested offset is outside `[log_start_offset, log_end_offset]`.
    OffsetOutOfRange {
        /// The offset asked for.
        requested: i64,
        /// The first offset the log holds.
        log_start_offset: i64,
        /// The offset the next appended record will get.
        log_end_offset: i64,
    },
    /// A configuration value is out of its allowed range.
    Config {
        /// The knob, by its partlog name (the README table gives the Kafka name).
        knob: &'static str,
        /// The rejected value, rendered.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A batch is larger than `max_batch_bytes` or than a whole segment.
    BatchTooLarge {
        /// The batch's size in bytes.
        size: usize,
        /// The largest size accepted.
        max: usize,
    },
    /// An append would give offsets that are not after the log end offset, or that overflow i64.
    InvalidOffset {
        /// The first offset of the rejected append.
        first_offset: i64,
        /// The log end offset at that moment.
        log_end_offset: i64,
    },
    /// A record batch names a codec partlog cannot decode (kept for codec ids outside Kafka's
    /// 0-4, which batch parsing already refuses; gzip, snappy, lz4 and zstd are decoded).
    UnsupportedCompression {
        /// The compression codec id (attributes bits 0-2).
        codec: u8,
    },
    /// An earlier write or fsync failed, so the in-memory and on-disk states may differ; the log
    /// refuses further writes until it is reopened (and recovered).
    PreviousIo,
    /// The log was closed.
    Closed,
    /// Another process (or another `Log` in this process) holds the log directory.
    Locked {
        /// The log directory.
        path: PathBuf,
    },
    /// A follower append whose first batch starts below the log end offset (Kafka's
    /// `UnexpectedAppendOffsetException`; above it is an offset gap, which is kept). Nothing
    /// was written.
    UnexpectedAppendOffset {
        /// The first batch's base offset.
        first_offset: i64,
        /// The follower's log end offset.
        log_end_offset: i64,
    },
    /// A follower append whose offsets go backwards: a batch starts below the offset after the
    /// one before it (above it is an offset gap, which is kept). Nothing was written.
    NonContiguousBatches {
        /// The lowest offset the batch could have started at.
        expected_offset: i64,
        /// The offset it starts at.
        base_offset: i64,
    },
    /// A follower append (or the log it goes to) whose leader epochs decrease. Nothing was
    /// written.
    EpochDecreased {
        /// The epoch before the batch.
        previous_epoch: i32,
        /// The batch's `partitionLeaderEpoch`.
        leader_epoch: i32,
        /// The batch's base offset.
        base_offset: i64,
    },
    /// A leader epoch that must not be negative was.
    NegativeLeaderEpoch {
        /// The rejected epoch.
        leader_epoch: i32,
    },
    /// An offset waited on for durability was truncated away before it became durable.
    TruncatedBeforeDurable {
        /// The offset waited for (exclusive end of the append).
        offset: i64,
        /// The log end offset after the truncation.
        log_end_offset: i64,
    },
    /// A batch broke the idempotent-producer rules (fenced epoch, out-of-order sequence).
    /// Nothing was written.
    Producer(ProducerError),
    /// A replication call (epoch cache, replica tracker) broke one of its rules.
    Replica(ReplicaError),
    /// A topic operation was refused (bad name, unknown topic or partition...).
    Topic(TopicError),
    /// The group coordinator refused a call (unknown member, stale generation...).
    Group(GroupError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        position: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            path: path.into(),
            position,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, op, source } => write!(f, "{op} {}: {source}", path.display()),
            Error::Corrupt {
                path,
                position,
                reason,
            } => write!(f, "corrupt {} at byte {position}: {reason}", path.display()),
            Error::InvalidBatch(e) => write!(f, "invalid record batch: {e}"),
            Error::InvalidRecords {
                batch,
                base_offset,
                source,
            } => write!(
                f,
                "invalid records in batch {batch} (base offset {base_offset} as sent): {source}"
            ),
            Error::OffsetOutOfRange {
                requested,
                log_start_offset,
                log_end_offset,
            } => write!(
                f,
                "offset {requested} is out of range: the log holds [{log_start_offset}, {log_end_offset})"
            ),
            Error::Config {
                knob,
                value,
                reason,
            } => write!(f, "bad config {knob} = {value}: {reason}"),
            Error::BatchTooLarge { size, max } => {
                write!(f, "record batch of {size} bytes is larger than the limit of {max}")
            }
            Error::InvalidOffset {
                first_offset,
                log_end_offset,
            } => write!(
                f,
                "append at offset {first_offset} is not at or after the log end offset {log_end_offset}"
            ),
            Error::UnsupportedCompression { codec } => {
                write!(f, "compressed record batch (codec {codec}) cannot be decoded")
            }
            Error::PreviousIo => write!(
                f,
                "an earlier I/O error left the log in an unknown state; reopen it to recover"
            ),
            Error::Closed => write!(f, "the log is closed"),
            Error::Locked { path } => write!(f, "log directory {} is in use", path.display()),
            Error::UnexpectedAppendOffset {
                first_offset,
                log_end_offset,
            } => write!(
                f,
                "follower append starts at {first_offset}, below the log end offset {log_end_offset}"
            ),
            Error::NonContiguousBatches {
                expected_offset,
                base_offset,
            } => write!(
                f,
                "batch starts at {base_offset}, below {expected_offset} where the previous batch ended (offsets must grow)"
            ),
            Error::EpochDecreased {
                previous_epoch,
                leader_epoch,
                base_offset,
            } => write!(
                f,
                "batch at {base_offset} has leader epoch {leader_epoch}, below the previous {previous_epoch}"
            ),
            Error::NegativeLeaderEpoch { leader_epoch } => {
                write!(f, "leader epoch {leader_epoch} is negative")
            }
            Error::TruncatedBeforeDurable {
                offset,
                log_end_offset,
            } => write!(
                f,
                "offsets up to {offset} were truncated (log end offset {log_end_offset}) before they were flushed"
            ),
            Error::Producer(e) => write!(f, "{e}"),
            Error::Replica(e) => write!(f, "{e}"),
            Error::Topic(e) => write!(f, "{e}"),
            Error::Group(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::InvalidBatch(e) => Some(e),
            Error::InvalidRecords { source, .. } => Some(source),
            Error::Producer(e) => Some(e),
            Error::Replica(e) => Some(e),
            Error::Topic(e) => Some(e),
            Error::Group(e) => Some(e),
            _ => None,
        }
    }
}

impl From<BatchError> for Error {
    fn from(e: BatchError) -> Self {
        match e {
            BatchError::UnsupportedCompression { codec } => Error::UnsupportedCompression { codec },
            e => Error::InvalidBatch(e),
        }
    }
}

impl From<ProducerError> for Error {
    fn from(e: ProducerError) -> Self {
        Error::Producer(e)
    }
}

impl From<ReplicaError> for Error {
    fn from(e: ReplicaError) -> Self {
        Error::Replica(e)
    }
}

impl From<TopicError> for Error {
    fn from(e: TopicError) -> Self {
        Error::Topic(e)
    }
}

impl From<GroupError> for Error {
    fn from(e: GroupError) -> Self {
        Error::Group(e)
    }
}
