//! The one append path. A client's batch, a leader's and a follower's copy of a fetch response
//! all go through [`Log::append_batches`]; [`Log::append`] and [`Log::append_batch`] are thin
//! wrappers over it.
//!
//! Rules, checked before anything is written (an append that breaks one writes nothing):
//! - every batch is whole and valid: client and leader batches fully (header, length, CRC and
//!   every record, compressed ones inflated under a bound: `log::validate`, Kafka's broker-side
//!   validator), a follower's header, length and CRC (Kafka's follower check: never inflated);
//! - a client or leader batch is stored in the codec `compression.type` asks for: as sent when
//!   that is its own codec, otherwise re-encoded (`log::validate`);
//! - no batch is larger than `max_batch_bytes`;
//! - [`AppendOrigin::Follower`]: the first batch starts at the log end offset, each batch starts
//!   right after the one before it, and the batches' leader epochs never decrease;
//! - control batches (transaction markers) come only from [`AppendOrigin::Coordinator`] or
//!   [`AppendOrigin::Follower`]; a client's or leader's is refused
//!   ([`ProducerError::ControlBatchFromClient`]),
//!   as Kafka's validator refuses one from a client;
//! - batches with a producer id follow the producer rules (`log::producer_state`), markers
//!   included; an ABORT marker of an open transaction adds an entry to the `.txnindex` of the
//!   segment it lands in (`log::txn_index`).
//!
//! The writer lock is taken once per call; the roll rule is applied to each batch.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use bytes::Bytes;

use super::producer_state::{Analysis, BatchMetadata, Check, One};
use super::txn_index::AbortedTxn;
use super::{validate, AppendInfo, Log, Unwritten, Writer};
use crate::batch::{
    self, BatchError, BatchHeader, Compression, EndTxnMarker, RecordBatch, HEADER_SIZE,
};
use crate::error::{Error, ProducerError, Result};
use crate::segment::active::ActiveSegment;

thread_local! {
    /// The buffer a batch the log compresses itself is encoded into, kept between appends.
    static PACKED: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Largest [`PACKED`] buffer kept for the next append.
const PACKED_KEEP_BYTES: usize = 8 << 20;

/// Who appends, which decides the offsets and leader epochs the batches get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AppendOrigin {
    /// A producer's batches: the log assigns offsets from its log end offset; the batches'
    /// `partitionLeaderEpoch` is kept as sent (a producer sends -1).
    Client,
    /// The partition leader's own append: offsets assigned as for [`AppendOrigin::Client`], and
    /// `leader_epoch` stamped into every batch's `partitionLeaderEpoch` (outside the CRC).
    Leader {
        /// The leader's epoch; must not be negative.
        leader_epoch: i32,
    },
    /// A follower copying its leader's batches: offsets and epochs are kept. The first batch
    /// must start at or above the log end offset, each next one at or above the offset after
    /// the previous one (offset gaps, as a compacted leader's log has, are kept, as Kafka's
    /// follower keeps them), and their epochs must not decrease.
    Follower,
    /// A transaction coordinator's append (Kafka's `COORDINATOR` origin): transaction markers
    /// (see [`EndTxnMarker`]), checked against the producer state, with offsets assigned as for
    /// [`AppendOrigin::Client`]; `leader_epoch`, if given, is stamped as for
    /// [`AppendOrigin::Leader`].
    Coordinator {
        /// The partition leader's epoch to stamp, if any; must not be negative.
        leader_epoch: Option<i32>,
    },
}

impl AppendOrigin {
    /// The leader epoch this origin stamps into every batch, if it stamps one.
    fn stamped_epoch(self) -> Option<i32> {
        match self {
            AppendOrigin::Leader { leader_epoch } => Some(leader_epoch),
            AppendOrigin::Coordinator { leader_epoch } => leader_epoch,
            _ => None,
        }
    }
}

/// Batches to append: laid end to end, as a fetch response carries them, or already parsed.
#[derive(Debug, Clone, Copy)]
pub enum Batches<'a> {
    /// Whole batches end to end (a fetch response's records, a segment slice). Shared, never
    /// written to.
    Bytes(&'a Bytes),
    /// Parsed batches, in order.
    Parsed(&'a [RecordBatch]),
}

impl<'a> From<&'a Bytes> for Batches<'a> {
    fn from(b: &'a Bytes) -> Self {
        Batches::Bytes(b)
    }
}

impl<'a> From<&'a [RecordBatch]> for Batches<'a> {
    fn from(b: &'a [RecordBatch]) -> Self {
        Batches::Parsed(b)
    }
}

impl<'a> From<&'a Vec<RecordBatch>> for Batches<'a> {
    fn from(b: &'a Vec<RecordBatch>) -> Self {
        Batches::Parsed(b)
    }
}

impl<'a> From<&'a RecordBatch> for Batches<'a> {
    fn from(b: &'a RecordBatch) -> Self {
        Batches::Parsed(std::slice::from_ref(b))
    }
}

/// What the checks before the lock learned about an append.
struct Plan {
    /// Base offset of the first batch (as sent).
    first_base: i64,
    /// Offsets the batches span: the sum of `last_offset_delta + 1`.
    span: i64,
}

/// The "no batches" error: what parsing empty bytes says.
/// Adds a written batch to the append's answer (the first one gives its place).
impl Log {
    /// Writes one validated batch into the active segment and publishes the new log end.
    /// Returns the batch's position and its segment's base offset. Bytes built for this append
    /// (`Unwritten::Scratch`) get their base offset and leader epoch set in place (outside the
    /// CRC), so the segment writes them in one piece; shared bytes are patched in the copy.
    fn write_one(
        &self,
        active: &mut Option<ActiveSegment>,
        header: &BatchHeader,
        bytes: Unwritten<'_>,
    ) -> Result<(u64, i64)> {
        let active = active.as_mut().ok_or(Error::Closed)?;
        let bytes: &[u8] = match bytes {
            Unwritten::Shared(b) => b,
            Unwritten::Scratch(b) => {
                let _ = batch::set_base_offset(b, header.base_offset);
                let _ = batch::set_partition_leader_epoch(b, header.partition_leader_epoch);
                b
            }
        };
        let r = active.append(header, bytes);
        let position = self.fail_on_io(r)?;
        self.log_end_offset
            .store(header.next_offset(), Ordering::Release);
        Ok((position, active.base_offset()))
    }
}

fn note(
    info: &mut Option<AppendInfo>,
    header: &BatchHeader,
    position: u64,
    segment_base_offset: i64,
) {
    match info.as_mut() {
        None => {
            *info = Some(AppendInfo {
                first_offset: header.base_offset,
                last_offset: header.last_offset(),
                max_timestamp: header.max_timestamp,
                segment_base_offset,
                position,
                size: header.total_size(),
                leader_epoch: epoch_of(header),
                duplicate: false,
            })
        }
        Some(i) => {
            i.leader_epoch = epoch_of(header);
            i.last_offset = header.last_offset();
            i.max_timestamp = i.max_timestamp.max(header.max_timestamp);
            i.size += header.total_size();
        }
    }
}

/// A batch's leader epoch, `None` for Kafka's "no epoch" (negative).
fn epoch_of(header: &BatchHeader) -> Option<i32> {
    (header.partition_leader_epoch >= 0).then_some(header.partition_leader_epoch)
}

/// True if an append of this one batch takes [`Log::append_one`]: a data batch with a producer
/// id, from anyone but a follower (the common case of an idempotent or transactional producer).
fn one_producer_batch(h: &BatchHeader, origin: AppendOrigin) -> bool {
    h.producer_id >= 0 && !h.is_control() && origin != AppendOrigin::Follower
}

fn no_batches() -> Error {
    Error::InvalidBatch(BatchError::TooShort {
        needed: HEADER_SIZE,
        available: 0,
    })
}

impl Log {
    /// Appends one or many batches, in order, as `origin` says (see [`AppendOrigin`] and the
    /// module docs of `log::append`). Returns where they landed: the first offset of the first
    /// batch, the last offset of the last, the largest timestamp, the segment and position of
    /// the first batch, and the bytes appended.
    ///
    /// ```
    /// use partlog::batch::{BatchBuilder, SimpleRecord};
    /// use partlog::log::AppendOrigin;
    /// use partlog::{Config, Log};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let leader = Log::open(dir.path().join("leader"), Config::default())?;
    /// let follower = Log::open(dir.path().join("follower"), Config::default())?;
    /// let mut b = BatchBuilder::new();
    /// b.push(&SimpleRecord::new(1, Some("k"), Some("v")))?;
    /// let batch = b.build()?;
    /// leader.append_batches(&batch, AppendOrigin::Leader { leader_epoch: 3 })?;
    /// leader.append_batches(&batch, AppendOrigin::Leader { leader_epoch: 3 })?;
    /// // A fetch response: whole batches end to end, copied with the leader's offsets.
    /// let fetched = leader.read(0, 1 << 20)?;
    /// let info = follower.append_batches(&fetched.bytes, AppendOrigin::Follower)?;
    /// assert_eq!((info.first_offset, info.last_offset), (0, 1));
    /// assert_eq!(follower.read(0, 1 << 20)?.bytes, fetched.bytes);
    /// assert_eq!(follower.read(1, 1)?.batches[0].partition_leader_epoch(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Nothing is written when any of these is returned: [`Error::InvalidBatch`] for no batches
    /// or a batch that does not validate (torn, bad CRC, bad record);
    /// [`Error::InvalidRecords`] for a client's or leader's compressed batch whose records do
    /// not inflate, inflate past `max_decompressed_batch_bytes`, or break a record rule;
    /// [`Error::BatchTooLarge`] (also for a batch that outgrows the limit when re-encoded); [`Error::InvalidOffset`] if the offsets would overflow;
    /// [`Error::NegativeLeaderEpoch`] for a leader append at a negative epoch; for a
    /// follower append [`Error::UnexpectedAppendOffset`],
    /// [`Error::NonContiguousBatches`], [`Error::EpochDecreased`];
    /// [`Error::PreviousIo`] / [`Error::Closed`] if the log cannot be written. [`Error::Io`] if
    /// the file system fails part way (the log then refuses writes until reopened).
    pub fn append_batches<'a>(
        &self,
        batches: impl Into<Batches<'a>>,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        if let Some(leader_epoch) = origin.stamped_epoch() {
            if leader_epoch < 0 {
                return Err(Error::NegativeLeaderEpoch { leader_epoch });
            }
        }
        let full = !matches!(origin, AppendOrigin::Follower);
        let mut run = None;
        let mut list: Vec<RecordBatch> = Vec::new();
        match batches.into() {
            Batches::Bytes(bytes) => {
                if !full {
                    // Whole batches end to end, kept as they are: one write per segment.
                    run = Some(&bytes[..]);
                }
                for b in batch::batches(bytes.clone()) {
                    // The walk checks header, length and CRC.
                    let (_, b) = b?;
                    list.push(b);
                }
            }
            Batches::Parsed(parsed) => {
                for b in parsed {
                    // A `RecordBatch` may come from a lighter parser: check it again.
                    list.push(RecordBatch::parse_crc_only(b.as_bytes().clone())?);
                }
            }
        }
        if full {
            // Kafka's validation of what is inside, and the codec `compression.type` asks for.
            for (i, b) in list.iter_mut().enumerate() {
                if let Some(stored) = validate::check(b, i, &self.config)? {
                    *b = stored;
                }
            }
        }
        let list = &list[..];
        // The markers the control batches hold (a client may not send any).
        let mut markers: Vec<Option<EndTxnMarker>> = Vec::new();
        if list.iter().any(|b| b.header().is_control()) {
            for (i, b) in list.iter().enumerate() {
                match origin {
                    AppendOrigin::Client | AppendOrigin::Leader { .. }
                        if b.header().is_control() =>
                    {
                        return Err(ProducerError::ControlBatchFromClient { batch: i }.into());
                    }
                    // Only a producer's control batch is a transaction marker (Kafka reads no
                    // other: a KRaft control batch has no producer id).
                    _ if b.header().producer_id < 0 => markers.push(None),
                    // A leader's batch is taken as it wrote it.
                    AppendOrigin::Follower => markers.push(b.end_txn_marker().ok().flatten()),
                    _ => markers.push(b.end_txn_marker()?),
                }
            }
        }
        let marker_of = |i: usize| markers.get(i).copied().flatten();
        let plan = self.plan(list.iter().map(RecordBatch::header), origin)?;
        if let [one] = list {
            if one_producer_batch(one.header(), origin) {
                return self.append_one(one.header(), Unwritten::Shared(one.as_bytes()), origin);
            }
        }
        let planned = || {
            self.append_planned(
                &plan,
                list.iter()
                    .enumerate()
                    .map(|(i, b)| (b.header(), marker_of(i))),
                list.iter()
                    .map(|b| (b.header(), Unwritten::Shared(b.as_bytes()))),
                origin,
                run,
            )
        };
        self.unless_history_was_dropped(planned(), planned)
    }

    /// Appends one batch the log encoded into `bytes` (the thread's reused buffer, see
    /// `append_encoded`) for a client or a leader: its base offset (and a leader's epoch) is set
    /// in place, outside the CRC, so the segment writes it in one piece.
    pub(super) fn append_scratch(
        &self,
        header: &BatchHeader,
        bytes: &mut [u8],
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        debug_assert!(
            origin != AppendOrigin::Follower,
            "a follower's batches are not built here"
        );
        // The log's `compression.type` decides the codec (for `producer` the log itself is the
        // producer, and writes uncompressed, Kafka's producer default).
        let (codec, level) = self.config.compression_target(Compression::None);
        if codec != Compression::None && header.compression() == Compression::None {
            // The thread's reused buffer, as the uncompressed batch's (no page faults of a
            // fresh allocation per append).
            let mut packed = PACKED.take();
            let appended = validate::encode_into(
                &bytes[..HEADER_SIZE],
                &bytes[HEADER_SIZE..],
                codec,
                level,
                &mut packed,
            )
            .map_err(Error::from)
            .and_then(|header| self.append_scratch_as_is(&header, &mut packed, origin));
            if packed.capacity() <= PACKED_KEEP_BYTES {
                PACKED.set(packed);
            }
            return appended;
        }
        self.append_scratch_as_is(header, bytes, origin)
    }

    /// [`Log::append_scratch`] once the codec is settled.
    fn append_scratch_as_is(
        &self,
        header: &BatchHeader,
        bytes: &mut [u8],
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        let plan = self.plan(std::iter::once(header), origin)?;
        if one_producer_batch(header, origin) {
            return self.append_one(header, Unwritten::Scratch(bytes), origin);
        }
        self.append_planned(
            &plan,
            std::iter::once((header, None)),
            std::iter::once((header, Unwritten::Scratch(bytes))),
            origin,
            None,
        )
    }

    /// The checks that need no lock: sizes, and for a follower contiguity and epochs.
    fn plan<'h>(
        &self,
        headers: impl Iterator<Item = &'h BatchHeader>,
        origin: AppendOrigin,
    ) -> Result<Plan> {
        let max = self.config.effective_max_batch_bytes();
        let mut first_base = None;
        let mut span: i64 = 0;
        let mut previous: Option<&BatchHeader> = None;
        for h in headers {
            let size = h.total_size();
            if size > max {
                return Err(Error::BatchTooLarge { size, max });
            }
            if origin == AppendOrigin::Follower {
                if let Some(p) = previous {
                    // A batch starting above the previous one's end leaves an offset gap,
                    // as a compacted leader's log has; below it, offsets would go backwards.
                    if h.base_offset < p.next_offset() {
                        return Err(Error::NonContiguousBatches {
                            expected_offset: p.next_offset(),
                            base_offset: h.base_offset,
                        });
                    }
                    if h.partition_leader_epoch < p.partition_leader_epoch {
                        return Err(Error::EpochDecreased {
                            previous_epoch: p.partition_leader_epoch,
                            leader_epoch: h.partition_leader_epoch,
                            base_offset: h.base_offset,
                        });
                    }
                }
            }
            first_base.get_or_insert(h.base_offset);
            span = span
                .checked_add(i64::from(h.last_offset_delta) + 1)
                .ok_or_else(|| Error::InvalidOffset {
                    first_offset: h.base_offset,
                    log_end_offset: self.log_end_offset(),
                })?;
            previous = Some(h);
        }
        let first_base = first_base.ok_or_else(no_batches)?;
        Ok(Plan { first_base, span })
    }

    /// Writes planned batches under one writer lock, each after its own roll decision. `run`,
    /// for a follower, is every batch end to end as the leader sent them (nothing to patch):
    /// written one run per segment instead of one write per batch.
    #[allow(clippy::too_many_arguments)]
    fn append_planned<'h, 'b>(
        &self,
        plan: &Plan,
        headers: impl Iterator<Item = (&'h BatchHeader, Option<EndTxnMarker>)> + Clone,
        batches: impl Iterator<Item = (&'h BatchHeader, Unwritten<'b>)>,
        origin: AppendOrigin,
        run: Option<&[u8]>,
    ) -> Result<AppendInfo> {
        self.check_writable()?;
        let mut w = self.writer()?;
        let leo = w.active.as_ref().ok_or(Error::Closed)?.next_offset;
        // A follower's first batch may start above the log end (a gap the leader's compaction
        // left), as Kafka's follower accepts; never below it.
        if origin == AppendOrigin::Follower && plan.first_base < leo {
            return Err(Error::UnexpectedAppendOffset {
                first_offset: plan.first_base,
                log_end_offset: leo,
            });
        }
        if leo.checked_add(plan.span).is_none() {
            return Err(Error::InvalidOffset {
                first_offset: leo,
                log_end_offset: leo,
            });
        }
        // The producer rules, before any offset is given: a duplicate appends nothing, a
        // refusal writes nothing.
        // The markers, by the batch's index in the append.
        let markers: Vec<Option<EndTxnMarker>> = if headers.clone().any(|(_, m)| m.is_some()) {
            headers.clone().map(|(_, m)| m).collect()
        } else {
            Vec::new()
        };
        let pending = if headers.clone().any(|(h, _)| h.producer_id >= 0) {
            let (check, mut next) = match origin {
                AppendOrigin::Follower => (Check::Replication, None),
                _ => (Check::Client, Some(leo)),
            };
            let analysis =
                w.producers
                    .analyze(headers.clone(), check, &mut |h| match next.as_mut() {
                        Some(n) => {
                            let base = *n;
                            *n += i64::from(h.last_offset_delta) + 1;
                            base
                        }
                        None => h.base_offset,
                    })?;
            match analysis {
                Analysis::Append(u) => Some(u),
                Analysis::Duplicate(d) => return Ok(self.duplicate_answer(&d)),
            }
        } else {
            None
        };
        // A transaction this append opens bounds the last stable offset before its first batch
        // is visible (readers load the log end, then the bound).
        if headers
            .clone()
            .any(|(h, _)| h.is_transactional() && !h.is_control())
        {
            self.first_unstable_offset.fetch_min(leo, Ordering::AcqRel);
        }
        let marker_at = |index: usize| markers.get(index).copied().flatten();
        // Index in the append of the batch being written.
        let mut index = 0usize;
        // Headers written so far by this call, for a snapshot at a roll in its middle.
        let mut written: Vec<(BatchHeader, Option<EndTxnMarker>)> = Vec::new();
        // Aborts below this offset were indexed at a roll in the middle of this append.
        let mut indexed_below = i64::MIN;
        let now = self.clock.now_ms();
        let mut info: Option<AppendInfo> = None;
        let mut records = 0u64;
        let mut batches = batches.peekable();
        while let Some((h, bytes)) = batches.next() {
            let active = w.active.as_ref().ok_or(Error::Closed)?;
            let header = BatchHeader {
                base_offset: match origin {
                    AppendOrigin::Follower => h.base_offset,
                    _ => active.next_offset,
                },
                partition_leader_epoch: origin.stamped_epoch().unwrap_or(h.partition_leader_epoch),
                ..*h
            };
            if active.should_roll(&header, &self.config, now) {
                let r = self
                    .producers_at_roll(
                        &mut w,
                        &written,
                        pending.is_some(),
                        header.base_offset,
                        &mut indexed_below,
                    )
                    .and_then(|()| self.roll(&mut w, header.base_offset));
                self.fail_on_io(r)?;
                if index > 0 {
                    self.pause(super::pause::Point::AppendRolledMidway);
                }
            }
            if let Some(run) = run {
                // This batch and every one after it lie end to end in `run`.
                let mut headers = vec![header];
                headers.extend(batches.by_ref().map(|(h, _)| *h));
                let first_index = index;
                let mut rest = &headers[..];
                let mut at = 0;
                loop {
                    let active = w.active.as_mut().ok_or(Error::Closed)?;
                    let position = active.size() as u64;
                    let segment_base_offset = active.base_offset();
                    let tail = run.get(at..).unwrap_or_default();
                    let r = active.append_run(rest, tail, &self.config, now);
                    let n = self.fail_on_io(r)?;
                    if pending.is_some() {
                        let done = first_index + headers.len() - rest.len();
                        written.extend(
                            rest[..n]
                                .iter()
                                .enumerate()
                                .map(|(k, h)| (*h, marker_at(done + k))),
                        );
                    }
                    for h in &rest[..n] {
                        note(&mut info, h, position, segment_base_offset);
                        records += u64::try_from(h.record_count).unwrap_or(0);
                        at += h.total_size();
                    }
                    if let Some(last) = rest[..n].last() {
                        self.log_end_offset
                            .store(last.next_offset(), Ordering::Release);
                    }
                    rest = &rest[n..];
                    let Some(next) = rest.first() else { break };
                    // The next batch did not fit: it starts a new segment.
                    let r = self
                        .producers_at_roll(
                            &mut w,
                            &written,
                            pending.is_some(),
                            next.base_offset,
                            &mut indexed_below,
                        )
                        .and_then(|()| self.roll(&mut w, next.base_offset));
                    self.fail_on_io(r)?;
                    self.pause(super::pause::Point::AppendRolledMidway);
                }
                break;
            }
            let (position, segment_base_offset) = self.write_one(&mut w.active, &header, bytes)?;
            records += u64::try_from(header.record_count).unwrap_or(0);
            note(&mut info, &header, position, segment_base_offset);
            // Kept only if a later batch of this append may roll (never for one batch).
            if pending.is_some() && batches.peek().is_some() {
                written.push((header, marker_at(index)));
            }
            index += 1;
        }
        let info = info.ok_or_else(no_batches)?;
        // The batches are in the segment: their producers' state follows, in the same order.
        let end = info.last_offset + 1;
        let mut aborted = match pending {
            Some(u) => w.producers.apply(u, end),
            None => {
                w.producers.advance_to(end);
                Vec::new()
            }
        };
        aborted.retain(|a| a.last_offset >= indexed_below);
        if !aborted.is_empty() {
            let r = self.index_aborted(&aborted);
            self.fail_on_io(r)?;
        }
        self.publish_first_unstable(&w);
        self.end_append(w, records, now)?;
        Ok(info)
    }

    /// The end of an append (writer lock held as `w`, released here): `records` more are
    /// unflushed; a flush if `flush.messages` or `flush.ms` asks for one.
    #[inline(always)]
    fn end_append(&self, mut w: MutexGuard<'_, Writer>, records: u64, now: i64) -> Result<()> {
        w.unflushed_records += records;
        let flush = self
            .config
            .flush_messages
            .is_some_and(|n| w.unflushed_records >= n)
            || self
                .config
                .flush_ms
                .is_some_and(|ms| now.saturating_sub(w.last_flush_ms) >= ms);
        drop(w);
        if flush {
            self.flush()?;
        }
        Ok(())
    }

    /// [`Log::append_planned`] for one planned (size-checked) data batch with a producer id from
    /// a client, a leader or a coordinator: the producer is looked up once and checked in place
    /// (`ProducerStateManager::check_one`), its entry held while the batch is written and
    /// updated in place after; a failed roll or write leaves it as it was. The same rules as
    /// the general path, in the same order: the producer rules, then the roll, then the write.
    /// Nothing is allocated for a producer the log knows.
    #[inline(always)]
    fn append_one(
        &self,
        h: &BatchHeader,
        mut bytes: Unwritten<'_>,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        let r = self.append_one_checked(h, bytes.reborrow(), origin);
        self.unless_history_was_dropped(r, || self.append_one_checked(h, bytes, origin))
    }

    /// `r`, the answer of an append, unless it refused a batch as out of order and the
    /// producer's batches a snapshot dropped are then found in the log: the append, which
    /// wrote nothing, is asked `again` (a retry of one of them is a duplicate, see
    /// `Log::complete_producer_histories`).
    #[inline(always)]
    fn unless_history_was_dropped(
        &self,
        r: Result<AppendInfo>,
        again: impl FnOnce() -> Result<AppendInfo>,
    ) -> Result<AppendInfo> {
        if let Err(Error::Producer(ProducerError::OutOfOrderSequence { .. })) = &r {
            return self.after_history_lookup(r, again);
        }
        r
    }

    /// [`Log::unless_history_was_dropped`] for a refusal. The lookup is an extra: if it fails
    /// (a segment that cannot be mapped), the refusal stands.
    #[cold]
    #[inline(never)]
    fn after_history_lookup(
        &self,
        refusal: Result<AppendInfo>,
        again: impl FnOnce() -> Result<AppendInfo>,
    ) -> Result<AppendInfo> {
        if let Ok(true) = self.complete_producer_histories() {
            return again();
        }
        refusal
    }

    /// [`Log::append_one`], once.
    #[inline(never)]
    fn append_one_checked(
        &self,
        h: &BatchHeader,
        bytes: Unwritten<'_>,
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        self.check_writable()?;
        let mut guard = self.writer()?;
        let now = self.clock.now_ms();
        let active = guard.active.as_ref().ok_or(Error::Closed)?;
        let leo = active.next_offset;
        if leo
            .checked_add(i64::from(h.last_offset_delta) + 1)
            .is_none()
        {
            return Err(Error::InvalidOffset {
                first_offset: leo,
                log_end_offset: leo,
            });
        }
        let header = BatchHeader {
            base_offset: leo,
            partition_leader_epoch: origin.stamped_epoch().unwrap_or(h.partition_leader_epoch),
            ..*h
        };
        if active.should_roll(&header, &self.config, now) {
            // The rules first (a refusal or a duplicate rolls nothing), then the roll; the
            // state is checked again below, unchanged but for its map end offset.
            if let One::Duplicate(d) = guard.producers.check_one(&header, Check::Client)? {
                return Ok(self.duplicate_answer(&d));
            }
            guard.producers.advance_to(leo);
            let r = self.roll(&mut guard, leo);
            self.fail_on_io(r)?;
        }
        let w: &mut Writer = &mut guard;
        let slot = match w.producers.check_one(&header, Check::Client)? {
            One::Append(slot) => slot,
            One::Duplicate(d) => return Ok(self.duplicate_answer(&d)),
        };
        if header.is_transactional() {
            // As the general path: bounds the last stable offset before the batch is visible.
            self.first_unstable_offset.fetch_min(leo, Ordering::AcqRel);
        }
        let (position, segment_base_offset) = self.write_one(&mut w.active, &header, bytes)?;
        let mut info = None;
        note(&mut info, &header, position, segment_base_offset);
        let info = info.ok_or_else(no_batches)?;
        if let Some(new) = slot.record() {
            guard.producers.insert_new(new);
        }
        self.publish_first_unstable(&guard);
        let records = u64::try_from(header.record_count).unwrap_or(0);
        self.end_append(guard, records, now)?;
        Ok(info)
    }

    /// Before a roll to `new_base` in the middle of an append: the producer state up to
    /// `new_base` is the state before the append plus the batches it wrote so far. With no
    /// producer batch in the append that is the state as it is, moved up (the roll snapshots
    /// it); otherwise it is snapshotted here, the append's changes being applied only at its end.
    /// The aborts among the batches written so far are indexed first (from `indexed_below` on,
    /// which moves to `new_base`): a snapshot at `new_base` must never stand for markers below
    /// it whose `.txnindex` entries are not written, as recovery replays only after it.
    fn producers_at_roll(
        &self,
        w: &mut Writer,
        written: &[(BatchHeader, Option<EndTxnMarker>)],
        has_producers: bool,
        new_base: i64,
        indexed_below: &mut i64,
    ) -> Result<()> {
        if !has_producers {
            w.producers.advance_to(new_base);
            return Ok(());
        }
        let mut state = w.producers.clone();
        let mut aborted = Vec::new();
        for (h, m) in written {
            aborted.extend(state.replay(h, *m));
        }
        aborted.retain(|a| a.last_offset >= *indexed_below);
        self.index_aborted(&aborted)?;
        *indexed_below = new_base;
        state.advance_to(new_base);
        super::producer_state::write_snapshot(&self.dir, &state).map(|_| ())
    }

    /// Writes aborted transactions into the `.txnindex` of the segments holding their markers
    /// (writer lock held).
    pub(super) fn index_aborted(&self, aborted: &[AbortedTxn]) -> Result<()> {
        let mut txn = super::lock(&self.txn_indexes);
        let mut i = 0;
        while i < aborted.len() {
            let base = self
                .floor_segment(aborted[i].last_offset)
                .map_or(aborted[i].last_offset, |s| s.base_offset());
            let mut j = i + 1;
            while j < aborted.len()
                && self
                    .floor_segment(aborted[j].last_offset)
                    .is_some_and(|s| s.base_offset() == base)
            {
                j += 1;
            }
            txn.append(&self.dir, base, &aborted[i..j])?;
            i = j;
        }
        Ok(())
    }

    /// The answer to a retried batch: the original batch's offsets and timestamp, and its place
    /// if the log still holds it.
    fn duplicate_answer(&self, d: &BatchMetadata) -> AppendInfo {
        let mut info = AppendInfo {
            first_offset: d.first_offset(),
            last_offset: d.last_offset,
            max_timestamp: d.timestamp,
            segment_base_offset: d.first_offset(),
            position: 0,
            size: 0,
            leader_epoch: None,
            duplicate: true,
        };
        if let Some(seg) = self.floor_segment(d.first_offset()) {
            info.segment_base_offset = seg.base_offset();
            if let Ok(view) = self.view_of(&seg) {
                let data = view.data();
                if let Ok(Some((position, h))) = view.locate(&seg, d.first_offset(), &data) {
                    info.position = position as u64;
                    info.size = h.total_size();
                    info.leader_epoch = epoch_of(&h);
                }
            }
        }
        info
    }
}
