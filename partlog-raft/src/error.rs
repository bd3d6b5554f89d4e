//! [`Error`]: what opening or driving a [`LogStore`](crate::LogStore) can fail with.

use std::path::PathBuf;

/// An error of the log store. Inside openraft's traits it travels as a `StorageError` whose
/// source is this error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The partlog log (or its epoch cache) failed: I/O, corruption, a full disk.
    #[error(transparent)]
    Log(#[from] partlog::Error),
    /// A checkpoint file of this crate (`raft-vote`, `raft-committed`, `raft-purged`) does not
    /// parse.
    #[error("{}: {reason}", path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A Raft term that does not fit a Kafka `partitionLeaderEpoch` (an `i32`).
    #[error(
        "term {term} does not fit a partition leader epoch (at most {})",
        i32::MAX
    )]
    TermOutOfRange {
        /// The term.
        term: u64,
    },
    /// A Raft index that does not fit a Kafka offset (an `i64`).
    #[error("index {index} does not fit an offset")]
    IndexOutOfRange {
        /// The index.
        index: u64,
    },
    /// Entries that do not start at the log end (openraft appends without holes).
    #[error("append at index {first_index}, but the log ends at {log_end_offset}")]
    NotAtLogEnd {
        /// The index of the first entry given.
        first_index: u64,
        /// The log end offset (the next index).
        log_end_offset: i64,
    },
    /// A record in the log that is not an entry this crate wrote (or was damaged in a way the
    /// CRC did not catch).
    #[error("offset {offset}: {reason}")]
    Decode {
        /// The record's offset.
        offset: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// A truncation that would have removed more than asked: the entry at the index is inside
    /// a batch of several records (a batch this crate did not write).
    #[error(
        "truncation to {index} cut the log to {log_end_offset}: a batch holds several entries"
    )]
    TruncationSplitsBatch {
        /// The index asked for.
        index: u64,
        /// Where the log now ends.
        log_end_offset: i64,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
