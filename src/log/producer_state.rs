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
    /// The metadata of a batch with header `h` written at `base_offset`, whose last record has
    /// sequence `last_sequence` (`increment_sequence(h.base_sequence, h.last_offset_delta)`).
    fn of(h: &BatchHeader, base_offset: i64, last_sequence: i32) -> Self {
        BatchMetadata {
            last_sequence,
            last_offset: base_offset + i64::from(h.last_offset_delta),
            offset_delta: h.last_offset_delta,
            timestamp: h.max_timestamp,
        }
    }

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
    #[inline(always)]
    fn find_duplicate(&self, epoch: i16, first: i32, last: i32) -> Option<BatchMetadata> {
        if epoch != self.producer_epoch {
            return None;
        }
        // Oldest first, as Kafka looks; the last sequences compared first (cheaper).
        let (older, newer) = self.batches.as_slices();
        for part in [older, newer] {
            for b in part {
                if b.last_sequence == last && b.first_sequence() == first {
                    return Some(*b);
                }
            }
        }
        None
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

/// The hasher of producer ids: Dietzfelbinger's multiply-add-shift,
/// `h(x) = ((a * x + b) mod 2^128) >> 64` for a 64-bit id `x`, with `a` and `b` random 128-bit
/// keys drawn for each map ([`ProducerIdHashState`]). A few multiplies, where SipHash was a
/// visible share of a one-record idempotent append.
///
/// Producer ids come from the producers' batches, so a client may choose them. With keys it
/// cannot see, the scheme is strongly universal (Thorup, "High speed hashing for integers and
/// strings", 2015: 2-independent for `w`-bit keys into `l` bits when the arithmetic has at least
/// `w + l - 1` bits, here 127 of 128): any two distinct ids get independent, uniform 64-bit
/// hashes, so every bit range of them (the table's bucket bits, its tag bits) collides for two
/// ids only by chance: the expected number of pairs among `n` chosen ids that share a bucket
/// is `n(n-1)/2` over the number of buckets, as for random hashes, so no set of ids picked in
/// advance makes the lookups quadratic. (The fixed one-multiply hash it replaced gave every multiple of 2^51 the same low
/// 22 bits, so the same bucket.) The 64-bit result is then passed through `h ^ (h >> 32)`, a
/// bijection, so the guarantee holds for it too (see `mix`).
/// Only `i64` keys are hashed with this guarantee; other writes are mixed, without it.
#[derive(Clone, Copy)]
pub struct ProducerIdHasher {
    a: u128,
    b: u128,
    hash: u64,
}

impl ProducerIdHasher {
    fn mix(&self, x: u64) -> u64 {
        let h = (self.a.wrapping_mul(u128::from(x)).wrapping_add(self.b) >> 64) as u64;
        // The table takes its bucket from the low bits. Under one multiplier an arithmetic
        // progression of ids (Kafka hands out producer ids in sequence) is a Weyl sequence in
        // any one bit range, which now and then bunches (one key draw in ~50 put 4,096
        // consecutive ids into 48x the expected colliding pairs). Folding the high half in, a
        // bijection of `h`, keeps the pairwise guarantee and breaks the bunching.
        h ^ (h >> 32)
    }
}

impl std::fmt::Debug for ProducerIdHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are secret.
        f.debug_struct("ProducerIdHasher").finish_non_exhaustive()
    }
}

impl std::hash::Hasher for ProducerIdHasher {
    fn finish(&self) -> u64 {
        self.hash
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.hash = self.mix(u64::from_le_bytes(word) ^ self.hash.rotate_left(29));
        }
    }

    fn write_i64(&mut self, id: i64) {
        self.hash = self.mix(id as u64);
    }
}

/// Builds [`ProducerIdHasher`]s with the keys of one map, drawn at random when the map is made
/// (from the standard library's randomly keyed `RandomState`, so from the OS's randomness).
#[derive(Clone)]
pub struct ProducerIdHashState {
    a: u128,
    b: u128,
}

impl Default for ProducerIdHashState {
    fn default() -> Self {
        use std::hash::BuildHasher;
        let random = std::collections::hash_map::RandomState::new();
        let word = |i: u64| u128::from(random.hash_one(i));
        ProducerIdHashState {
            a: word(0) << 64 | word(1),
            b: word(2) << 64 | word(3),
        }
    }
}

#[cfg(test)]
impl ProducerIdHashState {
    /// A state with the given keys (tests draw them from a seeded generator).
    pub(crate) fn with_keys(a: u128, b: u128) -> Self {
        ProducerIdHashState { a, b }
    }
}

impl std::fmt::Debug for ProducerIdHashState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerIdHashState")
            .finish_non_exhaustive()
    }
}

impl std::hash::BuildHasher for ProducerIdHashState {
    type Hasher = ProducerIdHasher;

    fn build_hasher(&self) -> ProducerIdHasher {
        ProducerIdHasher {
            a: self.a,
            b: self.b,
            hash: 0,
        }
    }
}

type ProducerMap = HashMap<i64, ProducerStateEntry, ProducerIdHashState>;

/// Who appends, as the producer rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A client or leader append: duplicates are answered, the rules are checked.
    Client,
    /// A follower's copy or recovery's replay: the state follows the batches, no check.
    Replication,
}

/// A producer's batches a snapshot dropped (see `ProducerStateManager::missing_histories`):
/// those of `epoch` before offset `before`, at most `room` of them, and the ones a walk of the
/// log `found` (oldest first). The log is walked a segment at a time from the newest, each
/// segment forwards: `start_segment` and `end_segment` keep `found` in offset order.
#[derive(Debug)]
pub(crate) struct MissingHistory {
    pub(crate) epoch: i16,
    pub(crate) before: i64,
    pub(crate) room: usize,
    pub(crate) found: Vec<BatchMetadata>,
    /// How many of `found` came from the newer segments (`start_segment`).
    newer: usize,
}

impl MissingHistory {
    /// Before a segment older than those walked so far.
    pub(crate) fn start_segment(&mut self) {
        self.newer = self.found.len();
    }

    /// After it: its batches go before those of the newer segments.
    pub(crate) fn end_segment(&mut self) {
        self.found.rotate_left(self.newer);
    }

    /// Notes `h`, a batch header of the log, if it is one of the missing batches.
    pub(crate) fn note(&mut self, h: &BatchHeader) {
        if h.producer_epoch == self.epoch && !h.is_control() && h.last_offset() < self.before {
            let last_sequence = increment_sequence(h.base_sequence, h.last_offset_delta);
            self.found
                .push(BatchMetadata::of(h, h.base_offset, last_sequence));
        }
    }
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

    #[inline(always)]
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

/// How many changes an append's [`PendingUpdate`] looks through for a producer's state before
/// it keeps each producer's state as the append leaves it instead (linear in the batches of the
/// append, rather than quadratic).
const SCAN_LIMIT: usize = 8;

/// The state changes of one append, applied once its batches are written. Allocates nothing
/// for an append of one batch.
#[derive(Debug, Default)]
pub(crate) struct PendingUpdate {
    first: Option<Op>,
    rest: Vec<Op>,
    /// Past [`SCAN_LIMIT`] changes (client checks only): the state of every producer this
    /// append changed, as the changes so far leave it.
    working: Option<BTreeMap<i64, ProducerStateEntry>>,
}

impl PendingUpdate {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    /// Adds a change. With `index`, once there are more than `scan_limit` changes, the
    /// producers' states are kept up to date in `working` (built from the changes so far).
    fn push(&mut self, op: Op, state: &ProducerStateManager, index: bool, scan_limit: usize) {
        if self.first.is_none() {
            self.first = Some(op);
        } else {
            self.rest.push(op);
        }
        if index && self.len() > scan_limit {
            self.keep(op, state);
        }
    }

    /// Brings `working` up to date with `op` (the last change pushed), building it from every
    /// change so far the first time.
    #[cold]
    #[inline(never)]
    fn keep(&mut self, op: Op, state: &ProducerStateManager) {
        let start = |id: i64| {
            state
                .producers
                .get(&id)
                .cloned()
                .unwrap_or_else(|| ProducerStateEntry::empty(id))
        };
        if let Some(working) = &mut self.working {
            let id = op.producer_id();
            op.apply_to(working.entry(id).or_insert_with(|| start(id)));
            return;
        }
        let mut working = BTreeMap::new();
        for op in self.ops() {
            let id = op.producer_id();
            op.apply_to(working.entry(id).or_insert_with(|| start(id)));
        }
        self.working = Some(working);
    }

    fn ops(&self) -> impl Iterator<Item = &Op> {
        self.first.iter().chain(&self.rest)
    }

    /// The state of `producer_id` as the earlier batches of this append leave it: the state's
    /// own entry, borrowed, unless this append already changed it (then a copy, or the one kept
    /// in `working`).
    fn entry<'a>(
        &'a self,
        state: &'a ProducerStateManager,
        producer_id: i64,
    ) -> Cow<'a, ProducerStateEntry> {
        if let Some(working) = &self.working {
            if let Some(e) = working.get(&producer_id) {
                return Cow::Borrowed(e);
            }
            return match state.producers.get(&producer_id) {
                Some(e) => Cow::Borrowed(e),
                None => Cow::Owned(ProducerStateEntry::empty(producer_id)),
            };
        }
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

/// What checking one data batch found ([`ProducerStateManager::check_one`]).
#[derive(Debug)]
pub(crate) enum One<'a> {
    /// Append; then [`BatchSlot::record`] it.
    Append(BatchSlot<'a>),
    /// A retry of a batch the log holds: append nothing, answer with it.
    Duplicate(BatchMetadata),
}

/// The place of one checked data batch in the producer state, held while the batch is written:
/// the producer's entry as the map's one lookup found it, or none for a new producer.
/// Dropped without [`BatchSlot::record`] (the write failed), it leaves the state as it was.
#[derive(Debug)]
pub(crate) struct BatchSlot<'a> {
    entry: Option<&'a mut ProducerStateEntry>,
    ongoing: &'a mut BTreeMap<i64, i64>,
    map_end_offset: &'a mut i64,
    producer_id: i64,
    epoch: i16,
    meta: BatchMetadata,
    transactional: bool,
}

/// A producer the log did not know, with its first batch: for
/// [`ProducerStateManager::insert_new`].
#[derive(Debug)]
#[must_use = "a new producer's entry must be inserted"]
pub(crate) struct NewProducer(ProducerStateEntry);

impl BatchSlot<'_> {
    /// Records the batch, once it is written: what [`ProducerStateManager::apply`] does for one
    /// data batch, in place. A new producer's entry is returned, to be inserted (the one other
    /// map access, only for a producer's first batch).
    #[inline(always)]
    pub(crate) fn record(self) -> Option<NewProducer> {
        let meta = self.meta;
        let mut new = None;
        let e = match self.entry {
            Some(e) => e,
            None => new.insert(ProducerStateEntry::empty(self.producer_id)),
        };
        if self.transactional && e.current_txn_first_offset.is_none() {
            e.current_txn_first_offset = Some(meta.first_offset());
            self.ongoing.insert(meta.first_offset(), self.producer_id);
        }
        e.add_batch(self.epoch, meta);
        *self.map_end_offset = (*self.map_end_offset).max(meta.last_offset + 1);
        new.map(NewProducer)
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

    /// The producers whose retained batches may miss earlier ones because their oldest came
    /// from a snapshot taken at `below` (Kafka's snapshot keeps one batch per producer): fewer
    /// than [`NUM_BATCHES_TO_RETAIN`] retained, the oldest below `below`. By producer id.
    pub(crate) fn missing_histories(&self, below: i64) -> HashMap<i64, MissingHistory> {
        self.producers
            .values()
            .filter_map(|e| {
                let oldest = e.batches.front()?;
                let missing = MissingHistory {
                    epoch: e.producer_epoch,
                    before: oldest.first_offset(),
                    room: NUM_BATCHES_TO_RETAIN - e.batches.len(),
                    found: Vec::new(),
                    newer: 0,
                };
                (missing.room > 0 && missing.before < below).then_some((e.producer_id, missing))
            })
            .collect()
    }

    /// Puts what `missing` found (oldest first) before the producer's retained batches, the
    /// newest `room` of it.
    pub(crate) fn fill_history(&mut self, producer_id: i64, missing: &MissingHistory) {
        if let Some(e) = self.producers.get_mut(&producer_id) {
            for meta in missing.found.iter().rev().take(missing.room) {
                e.batches.push_front(*meta);
            }
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
        self.analyze_with(headers, check, next_offset, SCAN_LIMIT)
    }

    /// [`ProducerStateManager::analyze`], keeping the producers' states past `scan_limit`
    /// changes (see [`SCAN_LIMIT`]; the tests compare both ways).
    fn analyze_with<'h>(
        &self,
        headers: impl Iterator<Item = (&'h BatchHeader, Option<EndTxnMarker>)>,
        check: Check,
        next_offset: &mut dyn FnMut(&BatchHeader) -> i64,
        scan_limit: usize,
    ) -> std::result::Result<Analysis, ProducerError> {
        let index = check == Check::Client;
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
                update.push(
                    Op::Marker {
                        producer_id: h.producer_id,
                        epoch: h.producer_epoch,
                        timestamp: h.max_timestamp,
                        offset: base_offset,
                        marker,
                    },
                    self,
                    index,
                    scan_limit,
                );
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
            update.push(
                Op::Batch {
                    producer_id: h.producer_id,
                    epoch: h.producer_epoch,
                    meta: BatchMetadata::of(h, base_offset, last_sequence),
                    transactional: h.is_transactional(),
                },
                self,
                index,
                scan_limit,
            );
        }
        Ok(Analysis::Append(update))
    }

    /// [`ProducerStateManager::analyze`] for an append of one data batch (not a control batch)
    /// with a producer id, `h` carrying its final base offset: the producer is looked up once,
    /// checked in place (the same rules, in the same order), and its entry held for
    /// [`BatchSlot::record`] once the batch is written. Nothing is allocated but, for a new
    /// producer, its entry.
    #[inline(always)]
    pub(crate) fn check_one(
        &mut self,
        h: &BatchHeader,
        check: Check,
    ) -> std::result::Result<One<'_>, ProducerError> {
        debug_assert!(h.producer_id >= 0 && !h.is_control());
        let last_sequence = increment_sequence(h.base_sequence, h.last_offset_delta);
        if check == Check::Client && h.base_sequence < 0 {
            return Err(ProducerError::InvalidSequence {
                producer_id: h.producer_id,
                base_sequence: h.base_sequence,
            });
        }
        let entry = self.producers.get_mut(&h.producer_id);
        if check == Check::Client {
            match entry.as_deref() {
                Some(e) => {
                    if let Some(d) =
                        e.find_duplicate(h.producer_epoch, h.base_sequence, last_sequence)
                    {
                        return Ok(One::Duplicate(d));
                    }
                    check_batch(e, h)?;
                }
                // An unknown producer has no batch to duplicate; its epoch is still checked.
                None => check_batch(&ProducerStateEntry::empty(h.producer_id), h)?,
            }
        }
        Ok(One::Append(BatchSlot {
            entry,
            producer_id: h.producer_id,
            ongoing: &mut self.ongoing,
            map_end_offset: &mut self.map_end_offset,
            epoch: h.producer_epoch,
            meta: BatchMetadata::of(h, h.base_offset, last_sequence),
            transactional: h.is_transactional(),
        }))
    }

    /// Adds the producer [`BatchSlot::record`] made.
    pub(crate) fn insert_new(&mut self, new: NewProducer) {
        self.producers.insert(new.0.producer_id, new.0);
    }

    /// Applies an append's changes; `end_offset` is the offset after its last batch. Returns
    /// the transactions its ABORT markers closed, for the `.txnindex`, each with the last stable
    /// offset just after its marker: the first offset of the earliest transaction of another
    /// producer open at that marker, else the marker's offset + 1.
    ///
    /// The changes apply in offset order, so a transaction another batch of the same append
    /// opens after the marker does not count (Kafka's `UnifiedLog.append` takes the transactions
    /// of the whole append as ongoing: a follower copying several transactions in one fetch
    /// indexes an aborted one with a later last stable offset than its leader did, and
    /// `collectAbortedTxns`, which stops at the first entry whose last stable offset reaches the
    /// read's upper bound, then misses the aborted transactions indexed after it: their records
    /// showed under `read_committed`).
    pub(crate) fn apply(&mut self, update: PendingUpdate, end_offset: i64) -> Vec<AbortedTxn> {
        let mut aborted = Vec::new();
        for op in update.ops() {
            let id = op.producer_id();
            let entry = self
                .producers
                .entry(id)
                .or_insert_with(|| ProducerStateEntry::empty(id));
            let before = entry.current_txn_first_offset;
            op.apply_to(entry);
            let after = entry.current_txn_first_offset;
            match (*op, before, after) {
                (Op::Marker { offset, marker, .. }, Some(first), None) => {
                    self.ongoing.remove(&first);
                    if marker.result == TxnResult::Abort {
                        let lso = self
                            .ongoing
                            .iter()
                            .find(|&(_, &p)| p != id)
                            .map_or(offset + 1, |(&o, _)| o);
                        aborted.push(AbortedTxn::new(id, first, offset, lso));
                    }
                }
                (_, None, Some(first)) => {
                    self.ongoing.insert(first, id);
                }
                _ => {}
            }
        }
        self.map_end_offset = self.map_end_offset.max(end_offset);
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
        if header.producer_id >= 0 && !header.is_control() {
            if let Ok(One::Append(slot)) = self.check_one(header, Check::Replication) {
                if let Some(new) = slot.record() {
                    self.insert_new(new);
                }
            }
            self.map_end_offset = self.map_end_offset.max(header.next_offset());
            return Vec::new();
        }
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
#[inline(always)]
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
    dir.join(crate::segment::file_name(offset, SNAPSHOT_SUFFIX))
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
    remove_listed(&mut list_snapshots(dir)?, doomed)
}

/// Removes the snapshots of `listed` for which `doomed(offset)` holds, from the disk and from
/// `listed`; returns how many.
pub(crate) fn remove_listed(
    listed: &mut BTreeMap<i64, PathBuf>,
    doomed: impl Fn(i64) -> bool,
) -> Result<usize> {
    let gone: Vec<i64> = listed.keys().copied().filter(|&o| doomed(o)).collect();
    for offset in &gone {
        if let Some(path) = listed.remove(offset) {
            checkpoint::remove_if_exists(&path)?;
        }
    }
    Ok(gone.len())
}

/// Loads the newest valid snapshot in `[min_offset, at_most]`, removing every
/// snapshot that fails its checks (Kafka falls back to the next older one). `None` if there is
/// none.
pub(crate) fn load_latest(
    dir: &Path,
    min_offset: i64,
    at_most: i64,
) -> Result<Option<ProducerStateManager>> {
    load_latest_of(&list_snapshots(dir)?, min_offset, at_most)
}

/// [`load_latest`] over the snapshots already listed in `snapshots`.
pub(crate) fn load_latest_of(
    snapshots: &BTreeMap<i64, PathBuf>,
    min_offset: i64,
    at_most: i64,
) -> Result<Option<ProducerStateManager>> {
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
