//! # partlog-raft
//!
//! openraft's log store over partlog: each Raft group's log is a partlog log, a directory of
//! Kafka v2 record batches in memory-mapped segments, with partlog's indexes, crash recovery and
//! epoch cache underneath. The embedder brings the network (openraft's `RaftNetwork`) and the
//! state machine (`RaftStateMachine`); this crate is the log (`RaftLogStorage`).
//!
//! How Raft maps onto the partition log (KRaft, Kafka's own metadata quorum, stores its Raft log
//! the same way):
//!
//! | Raft | partlog |
//! |---|---|
//! | index | offset (openraft's first index is 0, partlog's first offset is 0) |
//! | term | `partitionLeaderEpoch` of the entry's batch; `leader-epoch-checkpoint` |
//! | entry | one record in a batch of its own |
//! | blank / membership entry | a control batch (see [`BLANK_CONTROL_TYPE`]) |
//! | `truncate(log_id)` | `Log::truncate_to(index)` + epoch cache cut |
//! | `purge(log_id)` | `Log::delete_records(index + 1)`; the log id in `raft-purged` |
//! | vote, committed | `raft-vote`, `raft-committed` (atomic JSON files) |
//! | `append` callback | after `Log::flush`, one flush for all appends queued meanwhile |
//!
//! openraft is used at 0.9 with `storage-v2` and `single-term-leader` (the standard Raft leader
//! id, where the term alone identifies the leader); see [`LogStore`].

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod error;
mod flusher;
mod meta;
mod store;

pub use codec::{BLANK_CONTROL_TYPE, HOLE_CONTROL_TYPE, MEMBERSHIP_CONTROL_TYPE};
pub use error::{Error, Result};
pub use flusher::OnDurable;
pub use meta::{COMMITTED_FILE, PURGED_FILE, VOTE_FILE};
pub use store::{LogStore, StoreConfig};

/// openraft, as this crate uses it (0.9, `storage-v2`, `single-term-leader`, `serde`).
pub use openraft;
