//! One partition's log: an ordered run of segments, the last one active.
//!
//! # Concurrency
//! [`Log`] is `Send + Sync`. Appends are serialized by a writer lock; reads take no lock but a
//! short read lock on the segment list, so any number of threads read while one appends, and
//! no reader waits for an append's fsync. Retention, delete-records and truncations are
//! serialized by a structure lock; retention does its slow file work outside the writer lock.
//! A reader that rebuilds a segment's index waits for that rebuild; other readers of the
//! segment walk it meanwhile. A read that races those operations retries a bounded number of
//! times (see `read::Log::retry`). A batch becomes visible to readers only once it is wholly in
//! the segment (see the publication protocol in the `mmap` module) and the log end offset has
//! moved past it.
//!
//! # Invariants
//! - `log_start_offset <= log_end_offset`; segments hold every offset in between that was
//!   appended, in base-offset order, and only the last segment is written.
//! - `recovery_point <= log_end_offset`: every batch below the recovery point is on disk. A
//!   truncation lowers the recovery point before the log end offset, and a flush raises it only
//!   if no truncation happened since it took the log end offset (`truncations`, compared under
//!   the checkpoint lock).
//! - The log start offset never decreases (but for [`Log::reset_to`], which empties the log),
//!   and it is published before anything below it becomes unreadable (retention moves it,
//!   then takes segments out of the list, then renames files).
//! - `first unstable offset`, when a transaction is open, is the first offset of the earliest
//!   one; the last stable offset is it, else the log end offset. It is published before the
//!   batch that opens a transaction becomes visible, and raised only once the `.txnindex`
//!   entries of the markers below it are written: a `read_committed` reader never sees an open
//!   transaction, nor an aborted one without its entry. It never decreases but by a truncation.
//! - A read or lookup that finds its segment gone (deleted or cut since it was chosen), or a
//!   truncation during it, starts again: so an [`Error::OffsetOutOfRange`] it returns names a
//!   range that does not contain the offset asked for, and no I/O error comes from a file that
//!   the log itself removed.

mod append;
mod group_commit;
mod lock;
mod open;
mod pause;
#[cfg(test)]
mod power_loss;
pub mod producer_state;
mod producers;
mod read;
mod record;
mod retention;
mod truncate;
pub mod txn_index;
mod validate;

use crate::fs::File;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;

use crate::batch::{RecordBatch, SimpleRecord, HEADER_SIZE};
use crate::checkpoint;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::segment::active::ActiveSegment;
use crate::segment::{Segment, SegmentView};

pub use append::{AppendOrigin, Batches};
pub use group_commit::FlushSequencer;
pub use lock::is_locked;
pub(crate) use lock::DirLock;
#[cfg(test)]
pub(crate) use pause::Pauses;
/// Pause points, for race tests of the layers above too (the replica's fetch and append).
pub(crate) use pause::Point;
pub use read::LogRead;
pub use retention::{DeletedSegment, Maintenance, RetentionReason, RetentionReport, SegmentInfo};
pub use txn_index::{AbortedTransaction, AbortedTxn, IsolationLevel, ReadCommittedFilter};

/// Name of the file whose presence says the log was closed cleanly.
pub const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// Name of the recovery-point checkpoint.
pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Name of the log-start-offset checkpoint.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset-checkpoint";
/// Suffixes of files left behind by an interrupted operation (retention's renames, atomic
/// rewrites): [`Log::open`] removes every file whose name ends with one of them. Public so that
/// inspection tools (`partlog verify`) name the same files as leftovers.
pub const LEFTOVER_SUFFIXES: [&str; 3] = [".deleted", ".cleaned", ".tmp"];

/// Reads a checkpoint file holding one offset (the recovery point, the log start offset), as
/// [`Log::open`] reads it: `Ok(None)` if the file does not exist. Read-only, for inspection
/// tools.
///
/// # Errors
/// [`Error::Corrupt`] if the file does not parse (with the byte position of the bad line);
/// [`Error::Io`] if it cannot be read.
pub fn read_offset_checkpoint(path: impl AsRef<Path>) -> Result<Option<i64>> {
    checkpoint::read_offset(path.as_ref())
}
/// Checkpoint values kept outside a log's directory, for [`Log::open_with_checkpoints`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExternalCheckpoints {
    /// The recovery point, if the caller has one.
    pub recovery_point: Option<i64>,
    /// The log start offset, if the caller has one.
    pub log_start_offset: Option<i64>,
}

impl ExternalCheckpoints {
    /// The two values.
    pub fn new(recovery_point: Option<i64>, log_start_offset: Option<i64>) -> Self {
        ExternalCheckpoints {
            recovery_point,
            log_start_offset,
        }
    }
}

/// Name of the lock file that keeps a second process out of the directory.
pub const LOCK_FILE: &str = ".lock";

/// A validated batch on its way into the log.
enum Unwritten<'a> {
    /// The caller's bytes, shared: never written to.
    Shared(&'a Bytes),
    /// Bytes the log built for this append, in a buffer it reuses (see `append_encoded`): its
    /// base offset is set in place (outside the CRC), so the segment writes it in one piece.
    Scratch(&'a mut [u8]),
}

impl Unwritten<'_> {
    /// The same bytes, for one more use.
    fn reborrow(&mut self) -> Unwritten<'_> {
        match self {
            Unwritten::Shared(b) => Unwritten::Shared(b),
            Unwritten::Scratch(b) => Unwritten::Scratch(b),
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendInfo {
    /// Offset of the first record appended.
    pub first_offset: i64,
    /// Offset of the last record appended.
    pub last_offset: i64,
    /// Largest record timestamp in the append.
    pub max_timestamp: i64,
    /// Base offset of the segment that holds the batch.
    pub segment_base_offset: i64,
    /// Byte position of the batch in that segment's `.log` file.
    pub position: u64,
    /// Size of the batch in bytes.
    pub size: usize,
    /// The `partitionLeaderEpoch` of the last batch appended, as written: a partition
    /// leader's epoch for its appends ([`AppendOrigin::Leader`]), the leader's for a
    /// follower's copy, what the producer sent for a client batch; `None` for no epoch (-1).
    /// A leader's `acks=all` append is complete only while its offsets hold batches of this
    /// epoch (see [`Partition::acks_all_status`](crate::replica::Partition::acks_all_status)).
    pub leader_epoch: Option<i32>,
    /// True if nothing was appended because the batch is an idempotent producer's retry of a
    /// batch the log holds (Kafka's duplicate answer): the offsets and timestamp are the
    /// original batch's, and the place is that batch's (size 0 and no epoch if it is no
    /// longer in the log).
    pub duplicate: bool,
}

/// What opening the log found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// True if the log had been closed cleanly (nothing was scanned).
    pub clean: bool,
    /// Segments whose batches were validated because they lie after the recovery point.
    pub segments_recovered: usize,
    /// Bytes of batches validated.
    pub bytes_recovered: u64,
    /// Where a torn or corrupt tail was cut: `(segment base offset, byte position, reason)`.
    pub truncated: Option<(i64, u64, String)>,
    /// Segments after a corrupt one, removed with it.
    pub segments_removed: usize,
}

#[derive(Debug)]
struct Writer {
    /// `None` once the log is closed.
    active: Option<ActiveSegment>,
    /// Records appended since the last flush (for `flush_messages`).
    unflushed_records: u64,
    /// Clock time of the last flush (for `flush_ms`).
    last_flush_ms: i64,
    /// The idempotent producers' state, up to the log end offset.
    producers: producer_state::ProducerStateManager,
    /// The offset of the snapshot the state was loaded from, until the histories it dropped
    /// are filled in (`Log::complete_producer_histories`): Kafka's snapshot keeps each
    /// producer's last batch only, so below it a producer's earlier batches are unknown.
    producer_history_below: Option<i64>,
}

/// One partition's log. See the module docs.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    config: Config,
    clock: Arc<dyn Clock>,
    /// All segments in base-offset order; the last is the active one.
    segments: RwLock<Vec<Arc<Segment>>>,
    writer: Mutex<Writer>,
    /// Serializes flushes.
    flush_lock: Mutex<()>,
    /// Serializes the operations that take segments out of the list or move the log start:
    /// retention, delete-records and truncations. Held across retention's slow file work (maps,
    /// renames, directory syncs), which runs outside the writer lock; taken before the writer
    /// lock, never after. While it is held the segment list only grows at its end (rolls), so a
    /// read under it never has to start again (see `read::Log::retry`).
    structure_lock: Mutex<()>,
    /// Guards the recovery-point checkpoint file and field, and holds the file open for the
    /// in-place rewrites of every flush and truncation. Always the innermost lock: taken with or
    /// without the writer or flush lock, never the other way round.
    checkpoint_lock: Mutex<CheckpointFile>,
    /// The log-start-offset checkpoint file, and the value it durably holds as far as this log
    /// knows: written by it (`CheckpointFile::write_durably`) or found at a clean open (the last
    /// close wrote it so); `None` if unknown. Every write of that file holds this lock
    /// (innermost, as the checkpoint lock), so the file and the value agree; `close` rewrites
    /// the file only if the log start differs from it.
    start_checkpoint: Mutex<StartCheckpoint>,
    log_end_offset: AtomicI64,
    /// The first offset of the earliest open transaction, `i64::MAX` if none (see the
    /// invariants). Stored under the writer lock.
    first_unstable_offset: AtomicI64,
    /// Every segment's aborted-transaction index (`log::txn_index`). Changed under the writer
    /// lock (or the structure lock, by retention); taken after both, never before.
    txn_indexes: Mutex<txn_index::TxnIndexes>,
    log_start_offset: AtomicI64,
    recovery_point: AtomicI64,
    /// Truncations so far. Bumped under the checkpoint lock (and the writer lock) by every
    /// truncation; a flush compares it, under the checkpoint lock, with the count it saw when it
    /// took the log end offset, and leaves the recovery point alone if they differ. Readers use
    /// it to notice a truncation during a read.
    truncations: AtomicU64,
    /// Set after a failed write or sync: the log refuses writes until reopened.
    failed: AtomicBool,
    closed: AtomicBool,
    /// Inactive segments that are mapped, oldest first.
    mapped: Mutex<VecDeque<Arc<Segment>>>,
    /// Files of deleted segments, removed after `file_delete_delay_ms`.
    pending_deletes: Mutex<Vec<retention::PendingDelete>>,
    report: OpenReport,
    _lock: lock::DirLock,
    /// Test-only pause points (see the `pause` module).
    #[cfg(test)]
    pauses: pause::Pauses,
}

/// A one-offset checkpoint file (the recovery point, the log start), as its lock holds it.
#[derive(Debug, Default)]
pub(crate) struct CheckpointFile {
    /// Held open for in-place rewrites; `None` until first used, and after the file is replaced.
    file: Option<File>,
    /// The file's name is durable: it existed when the log was opened (every open syncs the
    /// directory after the last change to its names), or this log renamed it into place. A file
    /// that `handle` created is not, until then.
    durable_name: bool,
}

impl CheckpointFile {
    /// A checkpoint whose name is durable if `durable_name`.
    pub(crate) fn new(durable_name: bool) -> Self {
        CheckpointFile {
            file: None,
            durable_name,
        }
    }

    /// The file, opened (created if absent) for in-place rewrites. A file it has to create
    /// (gone since the open: removed by hand; found empty) does not have a durable name.
    fn handle(&mut self, path: &Path) -> Result<&File> {
        let f = match self.file.take() {
            Some(f) => f,
            None => {
                let (f, len) = checkpoint::open_for_rewrite(path)?;
                self.durable_name &= len > 0;
                f
            }
        };
        Ok(self.file.insert(f))
    }

    /// Writes `offset`, durably before it returns; true if that synced the directory.
    ///
    /// When the file's name is durable and the file already has the fixed 24-byte layout, the
    /// new value is written in place and the file synced: one sync. A crash before that sync
    /// leaves the old value (the callers change nothing the old value would misdescribe before
    /// this returns) or, if a disk could tear one 24-byte write at offset 0 (none does: a
    /// sector, 512 bytes at least, is written whole; PostgreSQL's `pg_control` counts on the
    /// same), a garbled file that the open refuses. Otherwise (no file, a name a crash could
    /// still unlink and leave a caller's checkpoint in charge, see `Log::open_with_checkpoints`,
    /// or a file of another length, whose size an in-place write would change) a new file is
    /// renamed over it and the directory synced: a temp file sync and a directory sync.
    fn write_durably(&mut self, path: &Path, offset: i64) -> Result<bool> {
        if self.durable_name && self.file.is_none() {
            // Gone since the open (removed by hand), or of another length (an older layout):
            // renamed over. (Checked before opening: `open_for_rewrite` would cut a longer file,
            // a change a crash could leave half done.)
            let len = crate::fs::metadata(path).map(|m| m.len());
            if !matches!(len, Ok(n) if n == checkpoint::OFFSET_CHECKPOINT_LEN) {
                self.durable_name = false;
            }
        }
        if self.durable_name {
            let f = self.handle(path)?;
            checkpoint::write_offset_relaxed(f, path, offset)?;
            f.sync_data().map_err(|e| Error::io(path, "fsync", e))?;
            crate::durability::file_synced(path);
            return Ok(false);
        }
        // The rename replaces the file: a handle held open would name the old one.
        self.file = None;
        checkpoint::write_offset(path, offset)?;
        self.durable_name = true;
        Ok(true)
    }
}

/// The log-start-offset checkpoint, as its lock holds it.
#[derive(Debug, Default)]
pub(crate) struct StartCheckpoint {
    /// The value the file durably holds, as far as this log knows: written by it, or found at
    /// a clean open (the last close wrote it so); `None` if unknown.
    known: Option<i64>,
    file: CheckpointFile,
}

impl StartCheckpoint {
    /// `known` as found at the open (the file's name is set once the open is done).
    pub(crate) fn new(known: Option<i64>) -> Self {
        StartCheckpoint {
            known,
            file: CheckpointFile::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering it if it was not closed cleanly.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad config, [`Error::Locked`] if another `Log` holds the
    /// directory, [`Error::Io`] when the file system fails, [`Error::Corrupt`] for damage that
    /// recovery cannot decide about on its own (a garbled log-start-offset checkpoint).
    pub fn open(dir: impl AsRef<Path>, config: Config) -> Result<Log> {
        Self::open_with_clock(dir, config, Arc::new(SystemClock))
    }

    /// [`Log::open`] with an injected clock (for tests and simulations).
    ///
    /// # Errors
    /// As [`Log::open`].
    pub fn open_with_clock(
        dir: impl AsRef<Path>,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Log> {
        open::open(dir.as_ref(), config, clock, ExternalCheckpoints::default())
    }

    /// [`Log::open_with_clock`] with checkpoint values the caller keeps outside the log's
    /// directory (Kafka's data-directory checkpoint files, which the topic layer reads).
    ///
    /// The log's own files in its directory stay authoritative where they exist: the recovery
    /// point used is the lower of the two (a lower one only costs a longer recovery, while a
    /// higher stale one could trust unsynced bytes), and the log's own log-start file, written
    /// durably at every move, wins over the caller's, which is written only periodically.
    ///
    /// # Errors
    /// As [`Log::open`].
    pub fn open_with_checkpoints(
        dir: impl AsRef<Path>,
        config: Config,
        clock: Arc<dyn Clock>,
        checkpoints: ExternalCheckpoints,
    ) -> Result<Log> {
        open::open(dir.as_ref(), config, clock, checkpoints)
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What opening the log found.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The offset the next appended record will get.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset.load(Ordering::Acquire)
    }

    /// The first offset of the earliest open transaction, if one is open (Kafka's first
    /// unstable offset).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let fuo = self.first_unstable_offset.load(Ordering::Acquire);
        (fuo != i64::MAX).then_some(fuo)
    }

    /// The last stable offset: the first unstable offset (at least the log start), else the log
    /// end offset. Every
    /// transaction below it is committed or aborted, and a `read_committed` read stops there
    /// (see [`Log::read_with_isolation`]). Never decreases but by a truncation.
    pub fn last_stable_offset(&self) -> i64 {
        // The end first: a transaction is bounded before its first batch moves the end.
        let leo = self.log_end_offset();
        let fuo = self.first_unstable_offset.load(Ordering::Acquire);
        // An open transaction that began below the log start bounds nothing below it (Kafka
        // raises the first unstable offset to the log start).
        leo.min(fuo.max(self.log_start_offset()))
    }

    /// Publishes the producer state's first unstable offset (writer lock held as `w`).
    fn publish_first_unstable(&self, w: &Writer) {
        let fuo = w.producers.first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable_offset.store(fuo, Ordering::Release);
    }

    /// The first offset a reader may ask for.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// Every offset below this one is flushed to disk.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.load(Ordering::Acquire)
    }

    fn segments(&self) -> RwLockReadGuard<'_, Vec<Arc<Segment>>> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn segments_mut(&self) -> RwLockWriteGuard<'_, Vec<Arc<Segment>>> {
        self.segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments().len()
    }

    /// Base offsets of the segments, in order.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments().iter().map(|s| s.base_offset()).collect()
    }

    /// Total bytes of record batches in all segments.
    pub fn size(&self) -> u64 {
        self.segments().iter().map(|s| s.size()).sum()
    }

    /// How many inactive segments are memory-mapped right now.
    pub fn mapped_segments(&self) -> usize {
        lock(&self.mapped).len()
    }

    fn writer(&self) -> Result<MutexGuard<'_, Writer>> {
        // A panic in the middle of an append may have left the segment and the offsets apart.
        self.writer.lock().map_err(|_| Error::PreviousIo)
    }

    fn check_writable(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::PreviousIo);
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Marks the log failed if `r` is an I/O error, so that no more writes go to a log whose
    /// disk state is unknown.
    fn fail_on_io<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(Error::Io { .. }) = &r {
            self.failed.store(true, Ordering::Release);
        }
        r
    }

    /// Appends `records` as one batch; the log assigns their offsets.
    ///
    /// # Errors
    /// [`Error::InvalidBatch`] if `records` is empty, [`Error::BatchTooLarge`] past
    /// `max_batch_bytes`, [`Error::PreviousIo`] / [`Error::Closed`] if the log cannot be
    /// written, [`Error::Io`] if the file system fails.
    pub fn append(&self, records: &[SimpleRecord]) -> Result<AppendInfo> {
        self.append_as(records, AppendOrigin::Client)
    }

    /// [`Log::append`] for `origin` (a client, or a leader stamping its epoch; not a follower,
    /// whose batches come with their offsets).
    pub(crate) fn append_as(
        &self,
        records: &[SimpleRecord],
        origin: AppendOrigin,
    ) -> Result<AppendInfo> {
        // Sized up front: growing a 1 MiB batch by doubling copies it ~twice more.
        let estimate = records.iter().fold(HEADER_SIZE, |n, r| {
            n.saturating_add(r.encoded_size_estimate())
        });
        self.append_encoded(estimate, origin, |builder| {
            records.iter().try_for_each(|r| builder.push(r))
        })
    }

    /// Appends a record batch built elsewhere (a producer's batch as it came off the wire). The
    /// batch is fully validated first; the log assigns its offsets by rewriting its base offset,
    /// which lies outside the CRC, so the stored bytes are otherwise the producer's bytes.
    /// [`Log::append_batches`] with [`AppendOrigin::Client`].
    ///
    /// # Errors
    /// As [`Log::append`], and [`Error::InvalidBatch`] for a batch that does not validate.
    pub fn append_batch(&self, batch: &RecordBatch) -> Result<AppendInfo> {
        self.append_batches(batch, AppendOrigin::Client)
    }

    /// Appends a transaction marker for `producer_id` at `producer_epoch` (a COMMIT or ABORT,
    /// [`EndTxnMarker`](crate::batch::EndTxnMarker)), as Kafka's transaction coordinator
    /// writes one: [`Log::append_batches`] with [`AppendOrigin::Coordinator`].
    ///
    /// ```
    /// use partlog::batch::{BatchBuilder, EndTxnMarker, SimpleRecord, TxnResult};
    /// use partlog::{Config, Log};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Config::default())?;
    /// let mut b = BatchBuilder::new().producer(7, 0, 0).transactional(true);
    /// b.push(&SimpleRecord::new(1, Some("k"), Some("v")))?;
    /// log.append_batch(&b.build()?)?;
    /// assert_eq!(log.last_stable_offset(), 0); // the transaction is open
    /// log.append_marker(7, 0, EndTxnMarker::new(TxnResult::Commit, 0), 2)?;
    /// assert_eq!(log.last_stable_offset(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Log::append_batches`]; [`Error::Producer`] for a fenced producer epoch or
    /// coordinator epoch.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: crate::batch::EndTxnMarker,
        timestamp: i64,
    ) -> Result<AppendInfo> {
        let batch = marker.build_batch(producer_id, producer_epoch, timestamp)?;
        self.append_batches(&batch, AppendOrigin::Coordinator { leader_epoch: None })
    }

    /// Closes the active segment and starts a new one at `new_base`. Holds the writer lock.
    fn roll(&self, w: &mut Writer, new_base: i64) -> Result<()> {
        let old = w.active.take().ok_or(Error::Closed)?;
        let old = old.finish()?;
        old.set_end_offset(new_base);
        let new = ActiveSegment::create(&self.dir, new_base, &self.config, self.clock.now_ms())?;
        // The state up to the new base, snapshotted as Kafka's roll does (an append that rolls
        // in its middle has written its own, see `producers_at_roll`).
        if w.producers.map_end_offset() == new_base {
            self.snapshot_at_roll(w)?;
        }
        checkpoint::sync_dir(&self.dir)?;
        self.segments_mut().push(Arc::clone(&new.segment));
        w.active = Some(new);
        self.note_mapped(old);
        // Every segment is synced when it rolls, so everything below the new one is on disk:
        // the recovery point moves up with it, and recovery after a crash scans at most the
        // active segment (Kafka rescans every segment since its last flush). The writer lock is
        // held: no truncation can come between. A follower's batch above the log end (an offset
        // gap) rolls at its own base, above the log end until it is written: the recovery point
        // stops at the log end (it never passes it), and the next flush moves it on.
        let to = new_base.min(self.log_end_offset());
        self.advance_recovery_point(to, self.truncations.load(Ordering::Acquire))
    }

    /// Starts a new segment now, even if the active one has room (Kafka's forced roll). Does
    /// nothing if the active segment is empty.
    ///
    /// # Errors
    /// [`Error::Io`] if the file system fails; [`Error::PreviousIo`] / [`Error::Closed`].
    pub fn roll_now(&self) -> Result<()> {
        self.check_writable()?;
        let mut w = self.writer()?;
        let active = w.active.as_ref().ok_or(Error::Closed)?;
        if active.size() == 0 {
            return Ok(());
        }
        let base = active.next_offset;
        let r = self.roll(&mut w, base);
        self.fail_on_io(r)
    }

    /// Accounts for an inactive segment that is now mapped, unmapping the oldest mapped ones
    /// past `max_open_segments`.
    fn note_mapped(&self, segment: Arc<Segment>) {
        let mut mapped = lock(&self.mapped);
        mapped.push_back(segment);
        while mapped.len() > self.config.max_open_segments as usize {
            if let Some(old) = mapped.pop_front() {
                // Readers holding bytes or a view of it keep their own references.
                old.set_view(None);
            }
        }
    }

    /// The view of `segment`, mapping it if needed.
    fn view_of(&self, segment: &Arc<Segment>) -> Result<Arc<SegmentView>> {
        let (view, mapped_now) = segment.view(self.config.index_interval_bytes)?;
        if mapped_now {
            self.note_mapped(Arc::clone(segment));
        }
        Ok(view)
    }

    /// Writes every appended batch to disk and moves the recovery point (and its checkpoint)
    /// to the log end offset. Appends and reads go on meanwhile: the sync runs outside the
    /// writer's lock.
    ///
    /// # Errors
    /// [`Error::Io`] if a sync fails; the log then refuses writes ([`Error::PreviousIo`]).
    pub fn flush(&self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(Error::PreviousIo);
        }
        let _flushing = lock(&self.flush_lock);
        let (handle, leo, truncations) = {
            let mut w = self.writer()?;
            let Some(active) = w.active.as_ref() else {
                return Ok(());
            };
            let handle = active.flush_handle();
            w.unflushed_records = 0;
            w.last_flush_ms = self.clock.now_ms();
            let truncations = self.truncations.load(Ordering::Acquire);
            (handle, self.log_end_offset(), truncations)
        };
        // Segments rolled before this point were synced when they rolled.
        let r = handle.flush();
        self.fail_on_io(r)?;
        self.pause(pause::Point::FlushSynced);
        let r = self.advance_recovery_point(leo, truncations);
        self.fail_on_io(r)
    }

    /// Moves the recovery point (and its checkpoint) up to `to`; never down. The data below
    /// `to` is already synced; the checkpoint itself need not be (see `write_offset_relaxed`).
    /// `truncations` is the truncation count seen when `to` was taken under the writer lock:
    /// if a truncation came since, `to` may lie past the new log end, or cover batches appended
    /// after the cut that were never synced, and nothing moves.
    fn advance_recovery_point(&self, to: i64, truncations: u64) -> Result<()> {
        let mut file = lock(&self.checkpoint_lock);
        if truncations != self.truncations.load(Ordering::Acquire) {
            return Ok(());
        }
        if to > self.recovery_point() {
            debug_assert!(
                to <= self.log_end_offset(),
                "recovery point past the log end"
            );
            let path = self.dir.join(RECOVERY_POINT_FILE);
            checkpoint::write_offset_relaxed(file.handle(&path)?, &path, to)?;
            self.recovery_point.store(to, Ordering::Release);
        }
        Ok(())
    }

    /// A truncation to `to` begins: counts it (so that a flush in flight does not raise the
    /// recovery point past the cut) and lowers the recovery point (and its checkpoint) to `to` if
    /// it is above. Called with the writer lock held, before the log end offset comes down.
    /// True if that synced the log's directory (see `replace_recovery_point`).
    fn begin_truncation(&self, to: i64) -> Result<bool> {
        let mut file = lock(&self.checkpoint_lock);
        self.truncations.fetch_add(1, Ordering::AcqRel);
        if to < self.recovery_point() {
            return self.replace_recovery_point(&mut file, to);
        }
        Ok(false)
    }

    /// Sets the recovery point and its checkpoint to `to`, up or down, durably before it returns
    /// (`CheckpointFile::write_durably`: in place and one sync where it can). `file` is the held
    /// checkpoint lock. True if that synced the log's directory. A crash before the sync leaves
    /// the old value, which still describes the log (the callers cut nothing before this
    /// returns); a garbled recovery point only makes recovery scan everything.
    fn replace_recovery_point(&self, file: &mut CheckpointFile, to: i64) -> Result<bool> {
        let synced_dir = file.write_durably(&self.dir.join(RECOVERY_POINT_FILE), to)?;
        self.recovery_point.store(to, Ordering::Release);
        Ok(synced_dir)
    }

    /// Writes the log-start-offset checkpoint durably (`CheckpointFile::write_durably`: in
    /// place and one sync where it can), and notes it in `cp.known` (`cp` is the held
    /// `start_checkpoint` lock): `None` while the write is under way, so a failed one leaves the
    /// value unknown. The callers delete nothing below `offset` before this returns, so a crash
    /// before the sync leaves an old start that still describes the log.
    fn write_start_checkpoint(&self, cp: &mut StartCheckpoint, offset: i64) -> Result<()> {
        cp.known = None;
        cp.file
            .write_durably(&self.dir.join(LOG_START_OFFSET_FILE), offset)?;
        cp.known = Some(offset);
        Ok(())
    }

    /// Writes the log-start-offset checkpoint durably (see `write_start_checkpoint`).
    pub(super) fn checkpoint_log_start(&self, offset: i64) -> Result<()> {
        let mut cp = lock(&self.start_checkpoint);
        self.write_start_checkpoint(&mut cp, offset)
    }

    /// [`Log::replace_recovery_point`], taking the checkpoint lock.
    pub(super) fn reset_recovery_point(&self, to: i64) -> Result<()> {
        let mut file = lock(&self.checkpoint_lock);
        self.replace_recovery_point(&mut file, to).map(drop)
    }

    /// True if `flush_ms` has passed since the last flush and something is unflushed.
    pub(crate) fn flush_due(&self, now_ms: i64) -> Result<bool> {
        let Some(ms) = self.config.flush_ms else {
            return Ok(false);
        };
        let w = self.writer()?;
        Ok(self.log_end_offset() > self.recovery_point()
            && now_ms.saturating_sub(w.last_flush_ms) >= ms)
    }

    /// Flushes, trims the active segment, writes the recovery point and the clean-shutdown
    /// marker. The next open then reads no segment data.
    ///
    /// # Errors
    /// [`Error::Io`] if the file system fails; the marker is then not written, and the next
    /// open recovers.
    pub fn close(self) -> Result<()> {
        self.shutdown()
    }

    /// Drops the log as a crash would: no flush, no trim, no clean-shutdown marker. What was
    /// appended stays in the page cache (as after a killed process); the next open recovers.
    pub fn abandon(self) {
        self.closed.store(true, Ordering::Release);
    }

    fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let (active, producers) = match self.writer.lock() {
            Ok(mut w) => (w.active.take(), std::mem::take(&mut w.producers)),
            Err(_) => return Err(Error::PreviousIo),
        };
        let Some(active) = active else {
            return Ok(());
        };
        if self.failed.load(Ordering::Acquire) {
            active.cut_to_contents();
            return Err(Error::PreviousIo);
        }
        let leo = self.log_end_offset();
        active.finish()?;
        self.remove_all_pending()?;
        self.snapshot_at_close(&producers)?;
        // The writer is gone (`active` taken): no truncation can come any more.
        self.advance_recovery_point(leo, self.truncations.load(Ordering::Acquire))?;
        {
            // An unchanged checkpoint is not written again (a temp file, two fsyncs, a rename).
            let mut cp = lock(&self.start_checkpoint);
            let start = self.log_start_offset();
            if cp.known != Some(start) {
                self.write_start_checkpoint(&mut cp, start)?;
            }
        }
        // The marker vouches for every file above, names included: they are made durable
        // first. Synced together, a power cut could keep the marker's new name and lose the
        // snapshot's, and the clean open would then start with no producer state (the
        // power-loss harness, seed 1709: a retried idempotent batch appended twice).
        checkpoint::sync_dir(&self.dir)?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        File::create(&marker)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&marker, "create", e))?;
        crate::durability::created(&marker);
        crate::durability::file_synced(&marker);
        checkpoint::sync_dir(&self.dir)
    }

    /// The pause points a test can arm on this log.
    #[cfg(test)]
    pub(crate) fn pauses(&self) -> &Pauses {
        &self.pauses
    }

    /// Holds the caller at `point` if a test armed it; nothing outside tests.
    #[inline(always)]
    pub(crate) fn pause(&self, point: pause::Point) {
        #[cfg(test)]
        self.pauses.reach(point);
        #[cfg(not(test))]
        let _ = point;
    }

    /// The number of truncations so far (see the field).
    fn truncation_count(&self) -> u64 {
        self.truncations.load(Ordering::Acquire)
    }

    /// The segment holding `offset` (the last one whose base offset is `<= offset`).
    fn floor_segment(&self, offset: i64) -> Option<Arc<Segment>> {
        let segs = self.segments();
        let i = segs.partition_point(|s| s.base_offset() <= offset);
        i.checked_sub(1).and_then(|i| segs.get(i)).cloned()
    }

    /// The segment after the one based at `base_offset`.
    fn next_segment(&self, base_offset: i64) -> Option<Arc<Segment>> {
        let segs = self.segments();
        let i = segs.partition_point(|s| s.base_offset() <= base_offset);
        segs.get(i).cloned()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // A dropped log closes cleanly if it can; if not, the next open recovers.
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod stall_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod txn_tests;
