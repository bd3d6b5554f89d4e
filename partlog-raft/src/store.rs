//! [`LogStore`]: openraft's `RaftLogReader` + `RaftLogStorage` over a partlog [`Log`].

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{
    AnyError, Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftTypeConfig, StorageError,
    StorageIOError, Vote,
};
use partlog::batch::RecordBatch;
use partlog::log::AppendOrigin;
use partlog::replica::{BatchEpoch, LeaderEpochCache};
use partlog::{Config, Log};

use crate::codec::{self, offset_of};
use crate::error::{Error, Result};
use crate::flusher::{self, OnDurable, Queue, Request, Stats};
use crate::meta::{JsonFile, COMMITTED_FILE, PURGED_FILE, VOTE_FILE};

/// Settings of a [`LogStore`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The partlog log's settings. Retention is turned off whatever they say
    /// (`retention_ms` and `retention_bytes` = -1): in a Raft log only `purge` deletes entries.
    pub log: Config,
    /// The byte budget of a read that may stop early (openraft's `limited_get_log_entries`,
    /// which feeds replication): at least one entry is returned however large. 1 MiB by default.
    pub max_read_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            log: Config::default(),
            max_read_bytes: 1 << 20,
        }
    }
}

/// The Raft state that is not in the log.
#[derive(Debug)]
struct State<C: RaftTypeConfig> {
    vote: Option<Vote<C::NodeId>>,
    committed: Option<LogId<C::NodeId>>,
    purged: Option<LogId<C::NodeId>>,
}

/// What every handle of one store shares.
pub(crate) struct Shared<C: RaftTypeConfig> {
    pub(crate) log: Log,
    pub(crate) stats: Stats,
    epochs: Mutex<LeaderEpochCache>,
    state: Mutex<State<C>>,
    queue: Queue,
    vote_file: JsonFile,
    committed_file: JsonFile,
    purged_file: JsonFile,
    max_read_bytes: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// openraft's log store over a partlog log: one Raft group's log in one directory.
///
/// - Raft index = offset, Raft term = the batch's `partitionLeaderEpoch` (openraft's standard
///   leader id, the `single-term-leader` feature, which this crate turns on): a log id is
///   `(leader epoch, offset)`, and the directory's `leader-epoch-checkpoint` says where each
///   term began, as Kafka's does.
/// - One entry per record, one record per batch (see the `codec` module); blank and membership
///   entries are control batches.
/// - `append` writes into the log and returns; its callback fires from a flushing thread once
///   the entries are on disk, many appends sharing one fsync (group commit).
/// - `truncate` is `Log::truncate_to` (and the epoch cache cut); `purge` is
///   `Log::delete_records`, the last purged log id written durably first.
/// - The vote and the committed log id live in `raft-vote` and `raft-committed`, written
///   atomically. At open a committed log id that the recovered log does not hold (its tail was
///   never flushed) falls back to the last purged log id.
///
/// Handles are cheap clones of one store (the reader openraft asks for is one); the log closes
/// when the last is dropped. Calls do blocking file I/O on the caller's thread, as openraft's
/// own examples' stores do; only the fsync behind `append` runs elsewhere.
///
/// ```
/// use openraft::storage::RaftLogStorage;
/// use partlog_raft::{LogStore, StoreConfig};
///
/// use std::io::Cursor; // the default snapshot type of `declare_raft_types!`
/// openraft::declare_raft_types!(pub Config: D = String, R = String);
///
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let mut store = LogStore::<Config>::open(dir.path(), StoreConfig::default())?;
/// assert_eq!(store.get_log_state().await?.last_log_id, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct LogStore<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
}

impl<C: RaftTypeConfig> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.shared.log.dir())
            .field("log_start_offset", &self.shared.log.log_start_offset())
            .field("log_end_offset", &self.shared.log.log_end_offset())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn storage_error<NID: openraft::NodeId>(
    subject: ErrorSubject<NID>,
    verb: ErrorVerb,
    e: &Error,
) -> StorageError<NID> {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    /// Opens (or creates) the store in `dir`: recovers the log, finishes a purge a crash cut
    /// short, loads the epoch cache (rebuilt from the batches if it does not match the log), the
    /// vote and the committed log id, and starts the flushing thread.
    ///
    /// # Errors
    /// [`Error::Log`] as `partlog::Log::open` (a second store on the same directory gets
    /// `partlog::Error::Locked`); [`Error::Checkpoint`] for a garbled `raft-*` file.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<Self> {
        let dir = dir.as_ref();
        let mut log_config = config.log;
        log_config.retention_ms = -1;
        log_config.retention_bytes = -1;
        let log = Log::open(dir, log_config)?;

        let purged_file = JsonFile::new(dir, PURGED_FILE);
        let purged: Option<LogId<C::NodeId>> = purged_file.read::<Option<_>>()?.flatten();
        // Without a purged log id, a log that starts past 0 was started there by an append past
        // the end of an empty log: no entry below its start exists.
        if let Some(p) = &purged {
            let start = offset_of(p.index)? + 1;
            if log.log_start_offset() < start {
                // A purge wrote its log id, then crashed before moving the log start.
                if start <= log.log_end_offset() {
                    log.delete_records(start)?;
                } else {
                    log.truncate_fully_and_start_at(start)?;
                }
            }
        }
        let (epochs, _) = partlog::replica::load_epoch_cache(&log)?;

        let vote_file = JsonFile::new(dir, VOTE_FILE);
        let vote = vote_file.read()?;
        let committed_file = JsonFile::new(dir, COMMITTED_FILE);
        let mut committed: Option<LogId<C::NodeId>> = committed_file.read::<Option<_>>()?.flatten();
        if let Some(c) = &committed {
            let held = offset_of(c.index).ok().is_some_and(|offset| {
                offset < log.log_end_offset()
                    && (offset < log.log_start_offset()
                        || epochs.epoch_for_offset(offset)
                            == codec::epoch_of(c.leader_id.term).ok())
            });
            if !held {
                committed.clone_from(&purged);
            }
        }

        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            log,
            stats: Stats::default(),
            epochs: Mutex::new(epochs),
            state: Mutex::new(State {
                vote,
                committed,
                purged,
            }),
            queue: Queue { tx },
            vote_file,
            committed_file,
            purged_file,
            max_read_bytes: config.max_read_bytes.max(1),
        });
        flusher::spawn(Arc::downgrade(&shared), rx).map_err(|e| partlog::Error::Io {
            path: dir.to_owned(),
            op: "spawn the flushing thread",
            source: e,
        })?;
        Ok(LogStore { shared })
    }

    /// The partlog log underneath (read-only uses: offsets, size, reads of the raw batches).
    pub fn log(&self) -> &Log {
        &self.shared.log
    }

    /// The epoch cache's entries: `(term, first index)` of each term in the log.
    pub fn terms(&self) -> Vec<(u64, u64)> {
        lock(&self.shared.epochs)
            .entries()
            .iter()
            .filter_map(|e| {
                Some((
                    u64::try_from(e.leader_epoch).ok()?,
                    u64::try_from(e.start_offset).ok()?,
                ))
            })
            .collect()
    }

    /// Flushes the group commit ran, and durability callbacks it fired, since open: with many
    /// concurrent appends the first is a fraction of the second.
    pub fn flush_stats(&self) -> (u64, u64) {
        let s = &self.shared.stats;
        (
            s.flushes.load(Ordering::Relaxed),
            s.callbacks.load(Ordering::Relaxed),
        )
    }

    /// Entries with indexes in `[from, to)` that the log holds, stopping before the first that
    /// would take the bytes read past `max_bytes` (but returning at least one).
    fn read_entries(&self, from: u64, to: u64, max_bytes: usize) -> Result<Vec<Entry<C>>> {
        let log = &self.shared.log;
        let from = i64::try_from(from)
            .unwrap_or(i64::MAX)
            .max(log.log_start_offset());
        let to = i64::try_from(to)
            .unwrap_or(i64::MAX)
            .min(log.log_end_offset());
        let mut out = Vec::new();
        let (mut next, mut bytes) = (from, 0usize);
        while next < to {
            let read = match log.read_up_to(next, max_bytes.min(1 << 20), to) {
                Ok(r) => r,
                // Purged meanwhile: entries that are not there may be left out.
                Err(partlog::Error::OffsetOutOfRange { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            if read.batches.is_empty() {
                break;
            }
            for batch in &read.batches {
                bytes = bytes.saturating_add(batch.size());
                if bytes > max_bytes && !out.is_empty() {
                    return Ok(out);
                }
                codec::decode(batch, next, to, &mut out)?;
            }
            next = read.next_offset;
        }
        Ok(out)
    }

    fn last_log_id(&self) -> Result<Option<LogId<C::NodeId>>> {
        let log = &self.shared.log;
        let leo = log.log_end_offset();
        if leo <= log.log_start_offset() {
            return Ok(lock(&self.shared.state).purged.clone());
        }
        let read = log.read(leo - 1, 1)?;
        let Some(batch) = read.batches.first() else {
            return Ok(lock(&self.shared.state).purged.clone());
        };
        codec::log_id::<C>(batch.partition_leader_epoch(), batch.last_offset()).map(Some)
    }

    /// `RaftLogStorage::append` with any callback: writes `entries` (readable when this
    /// returns) and queues `on_durable`, which the flushing thread runs once they are on disk,
    /// after one flush shared by every append queued meanwhile. openraft's `append` is this with
    /// its `LogFlushed` callback; benches and tests call it directly.
    ///
    /// # Errors
    /// [`Error::NotAtLogEnd`] if the first entry's index is not the log end offset;
    /// [`Error::TermOutOfRange`] / [`Error::IndexOutOfRange`]; [`Error::Log`] if the log refuses
    /// the write. `on_durable` is not run then.
    pub fn append_then(
        &self,
        entries: impl IntoIterator<Item = Entry<C>>,
        on_durable: OnDurable,
    ) -> Result<()> {
        let end_offset = self.append_entries(entries)?;
        if let Err(mpsc::SendError(Request::Durable { callback, .. })) =
            self.shared.queue.tx.send(Request::Durable {
                end_offset,
                callback: on_durable,
            })
        {
            callback(Err(std::io::Error::other("the flushing thread is gone")));
        }
        Ok(())
    }

    fn append_entries(&self, entries: impl IntoIterator<Item = Entry<C>>) -> Result<i64> {
        let now = now_ms();
        let log = &self.shared.log;
        let start = u64::try_from(log.log_start_offset()).unwrap_or_default();
        // Entries below the log start were purged: they are applied and gone; appending one
        // again (openraft's test suite does, after a purge) keeps nothing.
        let batches = entries
            .into_iter()
            .filter(|e| e.log_id.index >= start)
            .map(|e| codec::encode(&e, now))
            .collect::<Result<Vec<RecordBatch>>>()?;
        let Some(first) = batches.first() else {
            return Ok(log.log_end_offset());
        };
        let leo = log.log_end_offset();
        let first_offset = first.base_offset();
        if first_offset < leo {
            return Err(Error::NotAtLogEnd {
                first_index: u64::try_from(first_offset).unwrap_or_default(),
                log_end_offset: leo,
            });
        }
        if first_offset > leo {
            // Past the log end: openraft never does this (after a snapshot it purges first),
            // but its contract places each entry at its index, and its test suite relies on it.
            if leo == log.log_start_offset() {
                self.shared.queue.barrier();
                log.truncate_fully_and_start_at(first_offset)?;
                lock(&self.shared.epochs).truncate_from_start(first_offset)?;
            } else {
                let epoch = first.partition_leader_epoch();
                let holes = (leo..first_offset)
                    .map(|o| codec::hole(o, epoch, now))
                    .collect::<Result<Vec<_>>>()?;
                log.append_batches(&holes, AppendOrigin::Follower)?;
            }
        }
        // Offsets and epochs are the entries' own: the follower rules (contiguous, epochs
        // never decreasing, header and CRC checked) are Raft's too.
        let info = log.append_batches(&batches, AppendOrigin::Follower)?;
        let mut epochs = lock(&self.shared.epochs);
        for b in &batches {
            // Writes the checkpoint only when a batch starts a new term.
            epochs
                .record_batch_epoch(BatchEpoch::new(b.partition_leader_epoch(), b.base_offset()))?;
        }
        Ok(info.last_offset + 1)
    }

    fn truncate_at(&self, index: u64) -> Result<()> {
        let log = &self.shared.log;
        let offset = offset_of(index)?;
        if offset >= log.log_end_offset() {
            return Ok(());
        }
        // Callbacks queued before the cut are settled first: none may confirm a removed entry.
        self.shared.queue.barrier();
        let leo = log.truncate_to(offset)?;
        lock(&self.shared.epochs).truncate_from_end(leo)?;
        if leo != offset {
            return Err(Error::TruncationSplitsBatch {
                index,
                log_end_offset: leo,
            });
        }
        Ok(())
    }

    fn purge_upto(&self, log_id: LogId<C::NodeId>) -> Result<()> {
        let start = offset_of(log_id.index)? + 1;
        {
            let mut state = lock(&self.shared.state);
            if state
                .purged
                .as_ref()
                .is_some_and(|p| p.index >= log_id.index)
            {
                return Ok(());
            }
            // Durable before the log start moves: after a crash in between, open finishes it.
            self.shared.purged_file.write(&Some(&log_id))?;
            state.purged = Some(log_id);
        }
        let log = &self.shared.log;
        if start <= log.log_end_offset() {
            log.delete_records(start)?;
        } else {
            self.shared.queue.barrier();
            log.truncate_fully_and_start_at(start)?;
        }
        lock(&self.shared.epochs).truncate_from_start(start)?;
        Ok(())
    }
}

/// `[start, end)` of a range of indexes.
fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<C::NodeId>> {
        let (from, to) = bounds(&range);
        self.read_entries(from, to, usize::MAX)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry<C>>, StorageError<C::NodeId>> {
        self.read_entries(start, end, self.shared.max_read_bytes)
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        let last_log_id = self
            .last_log_id()
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Read, &e))?;
        let last_purged_log_id = lock(&self.shared.state).purged.clone();
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.shared
            .vote_file
            .write(vote)
            .map_err(|e| storage_error(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
        lock(&self.shared.state).vote = Some(vote.clone());
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(lock(&self.shared.state).vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        let mut state = lock(&self.shared.state);
        if state.committed != committed {
            self.shared
                .committed_file
                .write(&committed)
                .map_err(|e| storage_error(ErrorSubject::Store, ErrorVerb::Write, &e))?;
            state.committed = committed;
        }
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(lock(&self.shared.state).committed.clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.append_then(entries, Box::new(move |r| callback.log_io_completed(r)))
            .map_err(|e| storage_error(ErrorSubject::Logs, ErrorVerb::Write, &e))
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.truncate_at(log_id.index)
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.purge_upto(log_id.clone())
            .map_err(|e| storage_error(ErrorSubject::Log(log_id), ErrorVerb::Delete, &e))
    }
}
