//! Idempotent-producer state of one partition, as Kafka's log keeps it (its
//! `ProducerStateManager`, `ProducerStateEntry`, `BatchMetadata` and `ProducerAppendInfo`), and its
//! `.snapshot` files.
//!
//! For each producer id the log keeps the producer's epoch, the metadata of its last
//! [`NUM_BATCHES_TO_RETAIN`] batches of that epoch (sequences, offsets, timestamp), and the fields
//! transactions need (coordinator epoch, first offset of the open transaction).
//!
//! Rules on a client or leader append of a batch with a producer id (Kafka 4.x, checked in this
//! order; a refusal writes nothing of the append):
//! 1. a batch whose epoch and `[first, last]` sequences match one of the retained batches is a
//!    duplicate: nothing is appended and the append answers with the original offsets;
//! 2. an epoch older than the producer's is fenced ([`ProducerError::InvalidProducerEpoch`]);
//! 3. a new epoch must start at sequence 0, unless the log holds no epoch for the producer;
//! 4. within an epoch, the first sequence must follow the last one (`i32::MAX` is followed by
//!    0), else [`ProducerError::OutOfOrderSequence`] (a gap, or a duplicate older than the five);
//! 5. an unknown producer id is accepted at any sequence (KIP-360: the log no longer raises
//!    `UNKNOWN_PRODUCER_ID`).
//!
//! A follower's append (and recovery's replay) updates the state with no check, as Kafka's
//! replication origin does.
//!
//! # Transactions
//! A transactional batch opens its producer's transaction (its first offset is kept, and
//! counted among the ongoing transactions that bound the last stable offset); a COMMIT or ABORT
//! marker (a control batch) closes it. Rules on a coordinator's marker (Kafka 4.0/4.1, and 4.2+
//! for transaction version 0/1): an epoch older than the producer's is fenced
//! ([`ProducerError::InvalidProducerEpoch`]), a coordinator epoch older than the last marker's
//! is fenced ([`ProducerError::CoordinatorFenced`]); a marker for a producer with no open
//! transaction is written and changes nothing but the epochs and timestamp (no aborted
//! transaction is recorded for it). An ABORT of an open transaction yields an [`AbortedTxn`]
//! for the segment's `.txnindex`.
//!
//! # Snapshot file layout (`<20-digit offset>.snapshot`, big-endian)
//! `version: i16 = 1`, `crc: u32` (CRC-32C of every byte after it), `count: i32`, then `count`
//! entries of 46 bytes: `producer_id: i64, epoch: i16, last_sequence: i32, last_offset: i64,
//! offset_delta: i32, timestamp: i64, coordinator_epoch: i32, current_txn_first_offset: i64`.
//! Only the newest batch of each producer is written (`last_offset` -1 for none), so after a
//! restart one batch per producer is known, as in Kafka. The file named `N` holds the state of
//! every batch below offset `N`.

use crate::fs;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};

use crate::batch::{crc32c, BatchHeader, EndTxnMarker, TxnResult};
use crate::checkpoint;
pub use crate::error::ProducerError;
use crate::error::{Error, Result};
use crate::log::txn_index::AbortedTxn;

/// How many batches per producer are kept for duplicate detection (Kafka's
/// `NUM_BATCHES_TO_RETAIN`).
pub const NUM_BATCHES_TO_RETAIN: usize = 5;
/// Suffix of producer-state snapshot files.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// The only snapshot version Kafka writes and reads.
const SNAPSHOT_VERSION: i16 = 1;
/// Bytes before the entries: version, CRC, count.
const SNAPSHOT_HEADER: usize = 10;
/// Bytes per entry.
const SNAPSHOT_ENTRY: usize = 46;
const NO_EPOCH: i16 = -1;
const NO_SEQUENCE: i32 = -1;

/// `seq + n`, wrapping past `i32::MAX` to 0 (Kafka's `DefaultRecordBatch.incrementSequence`).
pub fn increment_sequence(seq: i32, n: i32) -> i32 {
    if seq > i32::MAX - n {
        n - (i32::MAX - seq) - 1
    } else {
        seq + n
    }
}

/// `seq - n`, wrapping below 0 to `i32::MAX` (Kafka's `DefaultRecordBatch.decrementSequence`).
pub fn decrement_sequence(seq: i32, n: i32) -> i32 {
    if seq < n {
        i32::MAX - (n - seq) + 1
    } else {
        seq - n
    }
}

/// True if `next` is the sequence right after `last` (0 after `i32::MAX`).
fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (next == 0 && last == i32::MAX)
}

/// What the log remembers of one batch of a producer (Kafka's `BatchMetadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchMetadata {
    /// Sequence of the batch's last record.
    pub last_sequence: i32,
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// `last_offset - first offset`.
    pub offset_delta: i32,
    /// The batch's max timestamp.
    pub timestamp: i64,
}

impl BatchMetadata {
    /// Sequence of the batch's first record.
    pub fn first_sequence(&self) -> i32 {
        decrement_sequence(self.last_sequence, self.offset_delta)
    }

    /// Offset of the batch's first record.
    pub fn first_offset(&self) -> i64 {
        self.last_offset - i64::from(self.offset_delta)
    }
}

/// One producer's state (Kafka's `ProducerStateEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStateEntry {
    /// The producer id.
    pub producer_id: i64,
    /// The producer's current epoch (-1 if none known).
    pub producer_epoch: i16,
    /// The last batches of the current epoch, oldest first, at most [`NUM_BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// Epoch of the transaction coordinator that wrote the last marker (-1 if none).
    pub coordinator_epoch: i32,
    /// Timestamp of the last batch or marker (for `producer.id.expiration.ms`).
    pub last_timestamp: i64,
    /// First offset of the producer's open transaction, if one is open.
    pub current_txn_first_offset: Option<i64>,
}

impl ProducerStateEntry {
    fn empty(producer_id: i64) -> Self {
        ProducerStateEntry {
            producer_id,
            producer_epoch: NO_EPOCH,
            batches: VecDeque::new(),
            coordinator_epoch: -1,
            last_timestamp: -1,
            current_txn_first_offset: None,
        }
    }

    /// The last sequence of the newest retained batch, -1 for none.
    pub fn last_sequence(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_sequence)
    }

    /// The retained batch with exactly this epoch and sequence range (Kafka's
    /// `findDuplicateBatch`).
    fn find_duplicate(&self, epoch: i16, first: i32, last: i32) -> Option<BatchMetadata> {
        if epoch != self.producer_epoch {
            return None;
        }
        self.batches
            .iter()
            .find(|b| b.first_sequence() == first && b.last_sequence == last)
            .copied()
    }

    fn update_epoch(&mut self, epoch: i16) {
        if epoch != self.producer_epoch {
            self.producer_epoch = epoch;
            self.batches.clear();
        }
    }

    fn add_batch(&mut self, epoch: i16, meta: BatchMetadata) {
        self.update_epoch(epoch);
        if self.batches.len() == NUM_BATCHES_TO_RETAIN {
            self.batches.pop_front();
        }
        self.batches.push_back(meta);
        self.last_timestamp = meta.timestamp;
    }
}

/// The hasher of producer ids: one multiply (the ids are `i64`s handed out by a coordinator;
/// SipHash was a visible share of a one-record idempotent append). Like Java's `HashMap` of
/// `Long` that Kafka uses, it is not hardened against chosen colliding ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProducerIdHasher(u64);

impl std::hash::Hasher for ProducerIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_i64(&mut self, id: i64) {
        // Fibonacci hashing; the high bits mixed down, as the table uses both ends.
        let h = (id as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 29);
    }
}

type ProducerMap =
    HashMap<i64, ProducerStateEntry, std::hash::BuildHasherDefault<ProducerIdHasher>>;

/// Who appends, as the producer rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A client or leader append: duplicates are answered, the rules are checked.
    Client,
    /// A follower's copy or recovery's replay: the state follows the batches, no check.
    Replication,
}

/// The producer states of a partition (Kafka's `ProducerStateManager`). See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: ProducerMap,
    /// The open transactions: first offset -> producer id (Kafka's `ongoingTxns`).
    ongoing: BTreeMap<i64, i64>,
    /// Every batch below this offset is accounted for (Kafka's `lastMapOffset`, exclusive here).
    map_end_offset: i64,
}

/// One change to a producer's state, from one batch.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// A data batch (its offsets as written).
    Batch {
        producer_id: i64,
        epoch: i16,
        meta: BatchMetadata,
        transactional: bool,
    },
    /// A control batch (transaction marker) at `offset`: the transaction ends.
    Marker {
        producer_id: i64,
        epoch: i16,
        timestamp: i64,
        offset: i64,
        marker: EndTxnMarker,
    },
}

impl Op {
    fn producer_id(&self) -> i64 {
        match *self {
            Op::Batch { producer_id, .. } | Op::Marker { producer_id, .. } => producer_id,
        }
    }

    fn apply_to(&self, e: &mut ProducerStateEntry) {
        match *self {
            Op::Batch {
                epoch,
                meta,
                transactional,
                ..
            } => {
                if transactional {
                    e.current_txn_first_offset
                        .get_or_insert(meta.first_offset());
                }
                e.add_batch(epoch, meta);
            }
            Op::Marker {
                epoch,
                timestamp,
                marker,
                ..
            } => {
                e.update_epoch(epoch);
                e.current_txn_first_offset = None;
                e.coordinator_epoch = marker.coordinator_epoch;
                e.last_timestamp = timestamp;
            }
        }
    }
}

/// The state changes of one append, applied once its batches are written. Allocates nothing
/// for an append of one batch.
#[derive(Debug, Default)]
pub(crate) struct PendingUpdate {
    first: Option<Op>,
    rest: Vec<Op>,
}

impl PendingUpdate {
    fn push(&mut self, op: Op) {
        if self.first.is_none() {
            self.first = Some(op);
        } else {
            self.rest.push(op);
        }
    }

    fn ops(&self) -> impl Iterator<Item = &Op> {
        self.first.iter().chain(&self.rest)
    }

    /// The state of `producer_id` as the earlier batches of this append leave it: the state's
    /// own entry, borrowed, unless this append already changed it (then a copy).
    fn entry<'a>(
        &self,
        state: &'a ProducerStateManager,
        producer_id: i64,
    ) -> Cow<'a, ProducerStateEntry> {
        let mut entry = match state.producers.get(&producer_id) {
            Some(e) => Cow::Borrowed(e),
            None => Cow::Owned(ProducerStateEntry::empty(producer_id)),
        };
        for op in self.ops().filter(|o| o.producer_id() == producer_id) {
            op.apply_to(entry.to_mut());
        }
        entry
    }
}

/// What checking an append found.
#[derive(Debug)]
pub(crate) enum Analysis {
    /// Append; then apply the update.
    Append(PendingUpdate),
    /// A retry of a batch the log holds: append nothing, answer with it.
    Duplicate(BatchMetadata),
}

impl ProducerStateManager {
    /// An empty state, accounting for nothing below `offset`.
    pub fn new_at(offset: i64) -> Self {
        ProducerStateManager {
            producers: ProducerMap::default(),
            ongoing: BTreeMap::new(),
            map_end_offset: offset,
        }
    }

    /// The state of `producer_id`, if the log knows it.
    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// Every producer's state.
    pub fn entries(&self) -> impl Iterator<Item = &ProducerStateEntry> {
        self.producers.values()
    }

    /// Number of producers known.
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// True if no producer is known.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Every batch below this offset has been applied.
    pub fn map_end_offset(&self) -> i64 {
        self.map_end_offset
    }

    /// The first offset of the earliest open transaction (Kafka's first unstable offset), if
    /// any is open.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Checks the batches of one append, whose offsets are already known (`headers` carry their
    /// final base offsets), and returns the state changes to apply once they are written, or the
    /// batch they duplicate.
    /// Each header comes with the transaction marker its batch holds, if it is one.
    pub(crate) fn analyze<'h>(
        &self,
        headers: impl Iterator<Item = (&'h BatchHeader, Option<EndTxnMarker>)>,
        check: Check,
        next_offset: &mut dyn FnMut(&BatchHeader) -> i64,
    ) -> std::result::Result<Analysis, ProducerError> {
        let mut update = PendingUpdate::default();
        for (h, marker) in headers {
            let base_offset = next_offset(h);
            if h.producer_id < 0 {
                continue;
            }
            if h.is_control() {
                let Some(marker) = marker else {
                    if check == Check::Client {
                        return Err(ProducerError::NotATransactionMarker {
                            producer_id: h.producer_id,
                        });
                    }
                    continue;
                };
                if check == Check::Client {
                    let entry = update.entry(self, h.producer_id);
                    check_marker(&entry, h, &marker)?;
                }
                update.push(Op::Marker {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    timestamp: h.max_timestamp,
                    offset: base_offset,
                    marker,
                });
                continue;
            }
            let last_sequence = increment_sequence(h.base_sequence, h.last_offset_delta);
            if check == Check::Client {
                if h.base_sequence < 0 {
                    return Err(ProducerError::InvalidSequence {
                        producer_id: h.producer_id,
                        base_sequence: h.base_sequence,
                    });
                }
                let entry = update.entry(self, h.producer_id);
                if let Some(d) =
                    entry.find_duplicate(h.producer_epoch, h.base_sequence, last_sequence)
                {
                    return Ok(Analysis::Duplicate(d));
                }
                check_batch(&entry, h)?;
            }
            update.push(Op::Batch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                meta: BatchMetadata {
                    last_sequence,
                    last_offset: base_offset + i64::from(h.last_offset_delta),
                    offset_delta: h.last_offset_delta,
                    timestamp: h.max_timestamp,
                },
                transactional: h.is_transactional(),
            });
        }
        Ok(Analysis::Append(update))
    }

    /// Applies an append's changes; `end_offset` is the offset after its last batch. Returns
    /// the transactions its ABORT markers closed, for the `.txnindex` (as Kafka's append: the
    /// transactions the append opened count as ongoing until their own marker, in order).
    pub(crate) fn apply(&mut self, update: PendingUpdate, end_offset: i64) -> Vec<AbortedTxn> {
        // (producer, first offset, marker offset, aborted)
        let mut completed: Vec<(i64, i64, i64, bool)> = Vec::new();
        for op in update.ops() {
            let id = op.producer_id();
            let entry = self
                .producers
                .entry(id)
                .or_insert_with(|| ProducerStateEntry::empty(id));
            let before = entry.current_txn_first_offset;
            op.apply_to(entry);
            match (*op, before, entry.current_txn_first_offset) {
                (Op::Marker { offset, marker, .. }, Some(first), None) => {
                    completed.push((id, first, offset, marker.result == TxnResult::Abort));
                }
                (_, None, Some(first)) => {
                    self.ongoing.insert(first, id);
                }
                _ => {}
            }
        }
        self.map_end_offset = self.map_end_offset.max(end_offset);
        let mut aborted = Vec::new();
        for (id, first, last, abort) in completed {
            if abort {
                let lso = self
                    .ongoing
                    .iter()
                    .find(|&(_, &p)| p != id)
                    .map_or(last + 1, |(&o, _)| o);
                aborted.push(AbortedTxn::new(id, first, last, lso));
            }
            self.ongoing.remove(&first);
        }
        aborted
    }

    /// Notes that every batch below `end_offset` is accounted for (an append with no producer).
    pub(crate) fn advance_to(&mut self, end_offset: i64) {
        self.map_end_offset = self.map_end_offset.max(end_offset);
    }

    /// Updates the state with a batch (and the marker it holds, if any) as a follower would
    /// (no check), for recovery's replay. Returns the transaction an ABORT marker closed.
    pub(crate) fn replay(
        &mut self,
        header: &BatchHeader,
        marker: Option<EndTxnMarker>,
    ) -> Vec<AbortedTxn> {
        if let Ok(Analysis::Append(u)) = self.analyze(
            std::iter::once((header, marker)),
            Check::Replication,
            &mut |h| h.base_offset,
        ) {
            self.apply(u, header.next_offset())
        } else {
            self.map_end_offset = self.map_end_offset.max(header.next_offset());
            Vec::new()
        }
    }

    /// Removes the producers whose last batch or marker is `expiration_ms` or more older than
    /// `now_ms` and that have no open transaction (Kafka's `removeExpiredProducers`). Returns
    /// how many were removed.
    pub fn remove_expired(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.current_txn_first_offset.is_some()
                || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// The state in Kafka's snapshot layout (see the module docs).
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        let mut entries: Vec<&ProducerStateEntry> = self.producers.values().collect();
        entries.sort_by_key(|e| e.producer_id);
        let mut buf = Vec::with_capacity(SNAPSHOT_HEADER + SNAPSHOT_ENTRY * entries.len());
        buf.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        buf.extend_from_slice(&[0; 4]);
        let count = i32::try_from(entries.len()).unwrap_or(i32::MAX);
        buf.extend_from_slice(&count.to_be_bytes());
        for e in entries.into_iter().take(count as usize) {
            let last = e.batches.back();
            buf.extend_from_slice(&e.producer_id.to_be_bytes());
            buf.extend_from_slice(&e.producer_epoch.to_be_bytes());
            buf.extend_from_slice(&last.map_or(NO_SEQUENCE, |b| b.last_sequence).to_be_bytes());
            buf.extend_from_slice(&last.map_or(-1i64, |b| b.last_offset).to_be_bytes());
            buf.extend_from_slice(&last.map_or(0i32, |b| b.offset_delta).to_be_bytes());
            buf.extend_from_slice(&last.map_or(e.last_timestamp, |b| b.timestamp).to_be_bytes());
            buf.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            buf.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let crc = crc32c(&buf[6..]);
        buf[2..6].copy_from_slice(&crc.to_be_bytes());
        buf
    }

    /// Parses a snapshot (see the module docs) taken at `offset`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming `path` and the byte position for a wrong version, size or CRC.
    pub fn from_snapshot_bytes(bytes: &[u8], offset: i64, path: &Path) -> Result<Self> {
        let bad = |pos: usize, why: String| Error::corrupt(path, pos as u64, why);
        if bytes.len() < SNAPSHOT_HEADER {
            return Err(bad(
                0,
                format!("snapshot of {} bytes is too short", bytes.len()),
            ));
        }
        let i16_at = |p: usize| i16::from_be_bytes([bytes[p], bytes[p + 1]]);
        let i32_at =
            |p: usize| i32::from_be_bytes([bytes[p], bytes[p + 1], bytes[p + 2], bytes[p + 3]]);
        let i64_at = |p: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&bytes[p..p + 8]);
            i64::from_be_bytes(b)
        };
        let version = i16_at(0);
        if version != SNAPSHOT_VERSION {
            return Err(bad(0, format!("snapshot version {version}, expected 1")));
        }
        let crc = i32_at(2) as u32;
        let actual = crc32c(&bytes[6..]);
        if crc != actual {
            return Err(bad(
                2,
                format!("snapshot CRC {crc:#x}, computed {actual:#x}"),
            ));
        }
        let count = i32_at(6);
        let expected = usize::try_from(count)
            .ok()
            .and_then(|n| n.checked_mul(SNAPSHOT_ENTRY))
            .and_then(|n| n.checked_add(SNAPSHOT_HEADER));
        if expected != Some(bytes.len()) {
            return Err(bad(
                6,
                format!(
                    "snapshot of {} bytes cannot hold {count} entries",
                    bytes.len()
                ),
            ));
        }
        let mut state = ProducerStateManager::new_at(offset);
        for i in 0..count as usize {
            let p = SNAPSHOT_HEADER + i * SNAPSHOT_ENTRY;
            let producer_id = i64_at(p);
            let mut e = ProducerStateEntry::empty(producer_id);
            e.producer_epoch = i16_at(p + 8);
            let last_sequence = i32_at(p + 10);
            let last_offset = i64_at(p + 14);
            let offset_delta = i32_at(p + 22);
            let timestamp = i64_at(p + 26);
            e.coordinator_epoch = i32_at(p + 34);
            let txn = i64_at(p + 38);
            e.current_txn_first_offset = (txn >= 0).then_some(txn);
            if txn >= 0 {
                state.ongoing.insert(txn, producer_id);
            }
            e.last_timestamp = timestamp;
            if last_offset >= 0 {
                e.batches.push_back(BatchMetadata {
                    last_sequence,
                    last_offset,
                    offset_delta,
                    timestamp,
                });
            }
            state.producers.insert(producer_id, e);
        }
        Ok(state)
    }
}

/// Kafka's epoch and sequence checks for a client batch (`ProducerAppendInfo.checkProducerEpoch`
/// and `checkSequence`).
fn check_batch(
    entry: &ProducerStateEntry,
    h: &BatchHeader,
) -> std::result::Result<(), ProducerError> {
    if h.producer_epoch < entry.producer_epoch {
        return Err(ProducerError::InvalidProducerEpoch {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            current_epoch: entry.producer_epoch,
        });
    }
    let out_of_order = || ProducerError::OutOfOrderSequence {
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        first_sequence: h.base_sequence,
        last_sequence: entry.last_sequence(),
    };
    if entry.producer_epoch == NO_EPOCH {
        // Unknown producer (or one whose batches all went): any sequence.
        return Ok(());
    }
    if h.producer_epoch != entry.producer_epoch {
        if h.base_sequence != 0 {
            return Err(out_of_order());
        }
    } else if !in_sequence(entry.last_sequence(), h.base_sequence) {
        return Err(out_of_order());
    }
    if !h.is_transactional() {
        if let Some(txn_first_offset) = entry.current_txn_first_offset {
            return Err(ProducerError::InvalidTxnState {
                producer_id: h.producer_id,
                txn_first_offset,
            });
        }
    }
    Ok(())
}

/// Kafka's checks of a coordinator's marker (`ProducerAppendInfo.checkProducerEpoch` for a
/// marker, then the coordinator epoch of `appendEndTxnMarker`).
fn check_marker(
    entry: &ProducerStateEntry,
    h: &BatchHeader,
    marker: &EndTxnMarker,
) -> std::result::Result<(), ProducerError> {
    if h.producer_epoch < entry.producer_epoch {
        return Err(ProducerError::InvalidProducerEpoch {
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            current_epoch: entry.producer_epoch,
        });
    }
    if marker.coordinator_epoch < entry.coordinator_epoch {
        return Err(ProducerError::CoordinatorFenced {
            producer_id: h.producer_id,
            coordinator_epoch: marker.coordinator_epoch,
            current_coordinator_epoch: entry.coordinator_epoch,
        });
    }
    Ok(())
}

/// Path of the snapshot at `offset` in `dir`.
pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

/// The snapshot files in `dir`, by offset.
pub(crate) fn list_snapshots(dir: &Path) -> Result<BTreeMap<i64, PathBuf>> {
    let mut out = BTreeMap::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(offset) = crate::segment::parse_file_name(name, SNAPSHOT_SUFFIX) {
            out.insert(offset, entry.path());
        }
    }
    Ok(out)
}

/// Writes `state` as the snapshot at its map end offset, in place, without a sync (Kafka's
/// roll): a torn or lost file fails its CRC or is missing, and loading falls back to an older
/// one. The directory entry becomes durable with the caller's next directory sync.
pub(crate) fn write_snapshot(dir: &Path, state: &ProducerStateManager) -> Result<PathBuf> {
    use std::io::Write;
    let path = snapshot_path(dir, state.map_end_offset());
    let mut f = fs::File::create(&path).map_err(|e| Error::io(&path, "create", e))?;
    crate::durability::created(&path);
    f.write_all(&state.to_snapshot_bytes())
        .map_err(|e| Error::io(&path, "write", e))?;
    Ok(path)
}

/// [`write_snapshot`], then an fsync of the file (a clean close, whose marker trusts it).
pub(crate) fn write_snapshot_synced(dir: &Path, state: &ProducerStateManager) -> Result<()> {
    let path = write_snapshot(dir, state)?;
    fs::File::open(&path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(&path, "fsync", e))?;
    crate::durability::file_synced(&path);
    Ok(())
}

/// Removes the snapshots for which `doomed(offset)` holds.
pub(crate) fn remove_snapshots(dir: &Path, doomed: impl Fn(i64) -> bool) -> Result<usize> {
    let mut n = 0;
    for (offset, path) in list_snapshots(dir)? {
        if doomed(offset) {
            checkpoint::remove_if_exists(&path)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Loads the newest valid snapshot in `[min_offset, at_most]`, removing every
/// snapshot that fails its checks (Kafka falls back to the next older one). `None` if there is
/// none.
pub(crate) fn load_latest(
    dir: &Path,
    min_offset: i64,
    at_most: i64,
) -> Result<Option<ProducerStateManager>> {
    let snapshots = list_snapshots(dir)?;
    for (&offset, path) in snapshots.range(..=at_most).rev() {
        if offset < min_offset {
            break;
        }
        let bytes = fs::read(path).map_err(|e| Error::io(path, "read", e))?;
        match ProducerStateManager::from_snapshot_bytes(&bytes, offset, path) {
            Ok(state) => return Ok(Some(state)),
            Err(_) => {
                checkpoint::remove_if_exists(path)?;
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
#[path = "producer_state_tests.rs"]
mod tests;
