//! The leader epoch cache: which leader epoch began at which offset, kept in memory and in Kafka's
//! `leader-epoch-checkpoint` file in the partition directory. See [`LeaderEpochCache`].

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::checkpoint::write_atomically;
use crate::error::ReplicaError;
use crate::error::{Error, Result};

/// Name of the epoch checkpoint file in a partition directory (Kafka's name).
pub const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Largest checkpoint file [`LeaderEpochCache::load`] reads: a million entries of ~30 bytes.
/// Anything bigger is not a file partlog (or Kafka) wrote.
pub const MAX_CHECKPOINT_BYTES: u64 = 32 << 20;

/// One entry: `leader_epoch` began at `start_offset` (the offset of its first batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpochEntry {
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The first offset written under that epoch.
    pub start_offset: i64,
}

impl EpochEntry {
    /// An entry; not checked until it is assigned.
    pub fn new(leader_epoch: i32, start_offset: i64) -> Self {
        EpochEntry {
            leader_epoch,
            start_offset,
        }
    }
}

/// One batch's epoch facts, as a log scan or a follower append sees them: the batch's
/// `partitionLeaderEpoch` and base offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchEpoch {
    /// The batch's `partitionLeaderEpoch`; negative (Kafka's `-1`) when the batch is not stamped.
    pub leader_epoch: i32,
    /// The batch's base offset.
    pub base_offset: i64,
}

impl BatchEpoch {
    /// A batch's epoch facts.
    pub fn new(leader_epoch: i32, base_offset: i64) -> Self {
        BatchEpoch {
            leader_epoch,
            base_offset,
        }
    }
}

/// The answer to "where did epoch `e` end?" (Kafka's `OffsetForLeaderEpoch` answer): the largest
/// known epoch `<= e` and the offset at which it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct EpochEndOffset {
    /// The epoch the answer is about (the requested one, or the largest known one below it).
    pub leader_epoch: i32,
    /// The first offset after that epoch: the next epoch's start, or the log end offset for the
    /// latest epoch.
    pub end_offset: i64,
}

/// Why the cache does not describe the log it belongs to (see
/// [`LeaderEpochCache::check_against_log`]); the caller rebuilds it from the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EpochCacheMismatch {
    /// An entry starts past the log end offset: the log lost data the cache still describes.
    EntryPastLogEnd {
        /// The offending entry.
        entry: EpochEntry,
        /// The log end offset.
        log_end_offset: i64,
    },
    /// The cache does not give the last batch the epoch stamped in it.
    LastBatchEpoch {
        /// The last batch of the log.
        batch: BatchEpoch,
        /// The epoch the cache gives to the batch's base offset.
        cached_epoch: Option<i32>,
    },
    /// An entry starts inside the last batch (after its base offset, before the log end).
    EntryInsideLastBatch {
        /// The offending entry.
        entry: EpochEntry,
        /// The last batch of the log.
        batch: BatchEpoch,
    },
}

/// Kafka's `LeaderEpochFileCache`: `(leader_epoch, start_offset)` entries, backed by the
/// `leader-epoch-checkpoint` file in the partition directory.
///
/// Invariants, checked on load and kept by every method:
/// 1. entries are strictly increasing in epoch *and* in start offset;
/// 2. every epoch and start offset is `>= 0`;
/// 3. after a successful mutating call the file on disk holds exactly the entries in memory
///    (written atomically: temp file, fsync, rename, directory fsync).
///
/// If a write fails, the cache keeps its previous entries in memory (the file holds either the
/// old or the new list, never a mix), refuses further changes with [`Error::PreviousIo`], and
/// should be reloaded.
///
/// The file layout (Kafka's `LeaderEpochCheckpointFile`): line 1 the version `0`, line 2 the
/// number of entries, then one `epoch start_offset` line per entry, each line ending in `\n`.
///
/// ```
/// use partlog::replica::LeaderEpochCache;
/// let dir = tempfile::tempdir()?;
/// let mut cache = LeaderEpochCache::load(dir.path())?; // no file yet: empty
/// cache.assign(1, 0)?;
/// cache.assign(3, 40)?; // a new leader at epoch 3, its log end offset 40
/// // A follower whose last batch is of epoch 2 asks where epoch 2 ended on this leader.
/// let end = cache.end_offset_for(2, 55).expect("epoch 1 is below 2");
/// assert_eq!((end.leader_epoch, end.end_offset), (1, 40));
/// assert_eq!(LeaderEpochCache::load(dir.path())?.entries(), cache.entries());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Not thread-safe by itself: mutating methods take `&mut self`; hold it behind a lock.
#[derive(Debug)]
pub struct LeaderEpochCache {
    /// The checkpoint file.
    path: PathBuf,
    /// Strictly increasing in both fields; what the file holds.
    entries: Vec<EpochEntry>,
    /// A checkpoint write failed: memory and disk may differ, so changes are refused.
    failed: bool,
}

impl LeaderEpochCache {
    /// Loads the cache of the partition in `dir`. A missing file is an empty cache (nothing is
    /// written); a leftover `leader-epoch-checkpoint.tmp` from an interrupted write is ignored.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (with the byte position of the bad line) when the file is not a valid
    /// checkpoint: unknown version, count not matching the entries, entries not strictly
    /// increasing, negative values, text that is not numbers, a missing final newline, or a file
    /// over [`MAX_CHECKPOINT_BYTES`]. The caller can then [`rebuild_from`](Self::rebuild_from)
    /// the log. [`Error::Io`] when the file cannot be read.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LeaderEpochCache {
                    path,
                    entries: Vec::new(),
                    failed: false,
                })
            }
            Err(e) => return Err(Error::io(&path, "open", e)),
        };
        let mut text = Vec::new();
        file.by_ref()
            .take(MAX_CHECKPOINT_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(|e| Error::io(&path, "read", e))?;
        if text.len() as u64 > MAX_CHECKPOINT_BYTES {
            return Err(Error::corrupt(
                &path,
                MAX_CHECKPOINT_BYTES,
                format!("epoch checkpoint is larger than {MAX_CHECKPOINT_BYTES} bytes"),
            ));
        }
        let entries = parse_checkpoint(&text).map_err(|(position, reason)| {
            Error::corrupt(
                &path,
                position,
                format!("leader epoch checkpoint: {reason}"),
            )
        })?;
        Ok(LeaderEpochCache {
            path,
            entries,
            failed: false,
        })
    }

    /// Builds the cache of the partition in `dir` from its batches, in log order, and writes the
    /// checkpoint file (replacing any). Each batch goes through
    /// [`record_batch_epoch`](Self::record_batch_epoch): unstamped batches (negative epoch) are
    /// skipped, and a batch whose epoch is not above the latest one adds nothing (Kafka's
    /// segment recovery does the same).
    ///
    /// # Errors
    /// [`ReplicaError::InvalidEpochEntry`] for a stamped batch with a negative base offset;
    /// [`Error::Io`] if the file cannot be written.
    pub fn rebuild_from(dir: &Path, batches: impl IntoIterator<Item = BatchEpoch>) -> Result<Self> {
        let mut entries: Vec<EpochEntry> = Vec::new();
        for batch in batches {
            if let Some(entry) = entry_for_batch(&entries, batch)? {
                entries = assigned(&entries, entry);
            }
        }
        let mut cache = LeaderEpochCache {
            path: dir.join(LEADER_EPOCH_CHECKPOINT_FILE),
            entries: Vec::new(),
            failed: false,
        };
        cache.replace(entries)?;
        Ok(cache)
    }

    /// The checkpoint file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[EpochEntry] {
        &self.entries
    }

    /// Whether the cache has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The latest entry, if any.
    pub fn latest_entry(&self) -> Option<EpochEntry> {
        self.entries.last().copied()
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.leader_epoch)
    }

    /// The earliest entry, if any.
    pub fn earliest_entry(&self) -> Option<EpochEntry> {
        self.entries.first().copied()
    }

    /// Assigns `leader_epoch` to start at `start_offset` (Kafka's `assign`). Nothing changes when
    /// the epoch equals the latest entry's and the start is not lower. Otherwise every entry
    /// whose epoch is `>= leader_epoch` or whose start is `>= start_offset` is removed, the new
    /// entry is added, and the checkpoint is written before this returns. Returns whether the
    /// cache changed.
    ///
    /// A new leader calls this with its epoch and log end offset before writing any record of
    /// that epoch.
    ///
    /// # Errors
    /// [`ReplicaError::InvalidEpochEntry`] if either value is negative; [`Error::PreviousIo`]
    /// after an earlier failed write; [`Error::Io`] if the checkpoint cannot be written (the
    /// cache then keeps its old entries).
    pub fn assign(&mut self, leader_epoch: i32, start_offset: i64) -> Result<bool> {
        let entry = EpochEntry::new(leader_epoch, start_offset);
        check_entry(entry)?;
        self.check_writable()?;
        if !needs_update(&self.entries, entry) {
            return Ok(false);
        }
        self.replace(assigned(&self.entries, entry))?;
        Ok(true)
    }

    /// Records the epoch of a batch appended (or found at recovery) at the log end, the one rule
    /// for followers and for rebuilding: a stamped batch whose epoch is above the latest entry
    /// starts a new entry at its base offset; anything else changes nothing. Returns whether
    /// the cache changed.
    ///
    /// # Errors
    /// As [`assign`](Self::assign).
    pub fn record_batch_epoch(&mut self, batch: BatchEpoch) -> Result<bool> {
        match entry_for_batch(&self.entries, batch)? {
            Some(entry) => self.assign(entry.leader_epoch, entry.start_offset),
            None => Ok(false),
        }
    }

    /// Kafka's `endOffsetFor`: where `requested_epoch` ended, given the log end offset.
    ///
    /// - a negative epoch (Kafka's undefined `-1`) -> `None`;
    /// - the latest epoch -> `(requested_epoch, log_end_offset)`;
    /// - no epoch above `requested_epoch` is known (including an empty cache) -> `None`;
    /// - `requested_epoch` below the first entry -> `(requested_epoch, start of the first entry)`;
    /// - otherwise `(largest epoch <= requested_epoch, start of the smallest epoch > requested_epoch)`.
    pub fn end_offset_for(
        &self,
        requested_epoch: i32,
        log_end_offset: i64,
    ) -> Option<EpochEndOffset> {
        if requested_epoch < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested_epoch) {
            return Some(EpochEndOffset {
                leader_epoch: requested_epoch,
                end_offset: log_end_offset,
            });
        }
        // Index of the first entry whose epoch is above the requested one.
        let higher = self
            .entries
            .partition_point(|e| e.leader_epoch <= requested_epoch);
        let next = self.entries.get(higher)?;
        let leader_epoch = match higher.checked_sub(1) {
            Some(floor) => self.entries[floor].leader_epoch,
            None => requested_epoch,
        };
        Some(EpochEndOffset {
            leader_epoch,
            end_offset: next.start_offset,
        })
    }

    /// The epoch of the entry covering `offset`: the entry with the largest start `<= offset`.
    /// `None` below the first entry (or when empty).
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        let covering = self.entries.partition_point(|e| e.start_offset <= offset);
        covering
            .checked_sub(1)
            .map(|i| self.entries[i].leader_epoch)
    }

    /// Removes every entry starting at or after `end_offset` (the log was truncated to end
    /// there) and writes the checkpoint if anything was removed. Returns whether it changed.
    ///
    /// # Errors
    /// [`ReplicaError::NegativeOffset`]; [`Error::PreviousIo`]; [`Error::Io`].
    pub fn truncate_from_end(&mut self, end_offset: i64) -> Result<bool> {
        non_negative("end_offset", end_offset)?;
        self.check_writable()?;
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        if keep == self.entries.len() {
            return Ok(false);
        }
        self.replace(self.entries[..keep].to_vec())?;
        Ok(true)
    }

    /// The log start offset rose to `start_offset`: drops the entries wholly below it. The last
    /// entry starting at or below `start_offset` is kept with its start raised to
    /// `start_offset` (Kafka's rule: `truncate_from_start(6)` keeps an entry at offset 6).
    /// Writes the checkpoint if anything changed; returns whether it did.
    ///
    /// # Errors
    /// [`ReplicaError::NegativeOffset`]; [`Error::PreviousIo`]; [`Error::Io`].
    pub fn truncate_from_start(&mut self, start_offset: i64) -> Result<bool> {
        non_negative("start_offset", start_offset)?;
        self.check_writable()?;
        let at_or_below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(last_below) = at_or_below.checked_sub(1) else {
            return Ok(false);
        };
        let mut entries = Vec::with_capacity(self.entries.len() - last_below);
        entries.push(EpochEntry::new(
            self.entries[last_below].leader_epoch,
            start_offset,
        ));
        entries.extend_from_slice(&self.entries[at_or_below..]);
        if entries == self.entries {
            return Ok(false);
        }
        self.replace(entries)?;
        Ok(true)
    }

    /// Removes every entry and writes the (empty) checkpoint.
    ///
    /// # Errors
    /// [`Error::PreviousIo`]; [`Error::Io`].
    pub fn clear_and_flush(&mut self) -> Result<()> {
        self.check_writable()?;
        self.replace(Vec::new())
    }

    /// Checks, after log recovery, that the cache can describe the log: no entry starts past
    /// `log_end_offset` (an entry starting exactly there is a leader's new, still empty epoch),
    /// and, if the log's last batch is stamped, the cache gives its base offset the batch's
    /// epoch and no entry starts inside it. Entries below the log start are not a mismatch
    /// ([`truncate_from_start`](Self::truncate_from_start) removes them).
    ///
    /// # Errors
    /// The first mismatch found; the caller rebuilds with [`rebuild_from`](Self::rebuild_from)
    /// (or truncates with [`truncate_from_end`](Self::truncate_from_end), Kafka's choice).
    pub fn check_against_log(
        &self,
        log_end_offset: i64,
        last_batch: Option<BatchEpoch>,
    ) -> Result<(), EpochCacheMismatch> {
        if let Some(&entry) = self
            .entries
            .iter()
            .find(|e| e.start_offset > log_end_offset)
        {
            return Err(EpochCacheMismatch::EntryPastLogEnd {
                entry,
                log_end_offset,
            });
        }
        let Some(batch) = last_batch.filter(|b| b.leader_epoch >= 0) else {
            return Ok(());
        };
        let cached_epoch = self.epoch_for_offset(batch.base_offset);
        if cached_epoch != Some(batch.leader_epoch) {
            return Err(EpochCacheMismatch::LastBatchEpoch {
                batch,
                cached_epoch,
            });
        }
        if let Some(&entry) = self
            .entries
            .iter()
            .find(|e| e.start_offset > batch.base_offset && e.start_offset < log_end_offset)
        {
            return Err(EpochCacheMismatch::EntryInsideLastBatch { entry, batch });
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if self.failed {
            Err(Error::PreviousIo)
        } else {
            Ok(())
        }
    }

    /// Writes `entries` to the checkpoint, then makes them the cache's. On failure the cache
    /// keeps its old entries and refuses further changes.
    fn replace(&mut self, entries: Vec<EpochEntry>) -> Result<()> {
        if let Err(e) = write_atomically(&self.path, render_checkpoint(&entries).as_bytes()) {
            self.failed = true;
            return Err(e);
        }
        self.entries = entries;
        Ok(())
    }
}

fn non_negative(what: &'static str, offset: i64) -> Result<()> {
    if offset < 0 {
        Err(ReplicaError::NegativeOffset { what, offset }.into())
    } else {
        Ok(())
    }
}

fn check_entry(entry: EpochEntry) -> Result<()> {
    if entry.leader_epoch < 0 || entry.start_offset < 0 {
        Err(ReplicaError::InvalidEpochEntry {
            leader_epoch: entry.leader_epoch,
            start_offset: entry.start_offset,
        }
        .into())
    } else {
        Ok(())
    }
}

/// Kafka's "is an update needed": the epoch differs from the latest one, or its start is lower.
fn needs_update(entries: &[EpochEntry], entry: EpochEntry) -> bool {
    match entries.last() {
        Some(latest) => {
            entry.leader_epoch != latest.leader_epoch || entry.start_offset < latest.start_offset
        }
        None => true,
    }
}

/// `entries` after assigning `entry` (which needs the update): entries conflicting with it
/// (epoch `>=` or start `>=`) removed from the end, then `entry` appended. Because both fields
/// increase, the conflicting entries are exactly a suffix.
fn assigned(entries: &[EpochEntry], entry: EpochEntry) -> Vec<EpochEntry> {
    let keep = entries
        .iter()
        .rposition(|e| e.leader_epoch < entry.leader_epoch && e.start_offset < entry.start_offset)
        .map_or(0, |i| i + 1);
    let mut out = Vec::with_capacity(keep + 1);
    out.extend_from_slice(&entries[..keep]);
    out.push(entry);
    out
}

/// The entry a batch at the log end starts, if any (see `record_batch_epoch`).
fn entry_for_batch(entries: &[EpochEntry], batch: BatchEpoch) -> Result<Option<EpochEntry>> {
    if batch.leader_epoch < 0 {
        return Ok(None);
    }
    let entry = EpochEntry::new(batch.leader_epoch, batch.base_offset);
    check_entry(entry)?;
    let above_latest = entries
        .last()
        .is_none_or(|latest| batch.leader_epoch > latest.leader_epoch);
    Ok(above_latest.then_some(entry))
}

fn render_checkpoint(entries: &[EpochEntry]) -> String {
    use std::fmt::Write;
    let mut text = format!("0\n{}\n", entries.len());
    for e in entries {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{} {}", e.leader_epoch, e.start_offset);
    }
    text
}

/// Parses a checkpoint; on failure, the byte position of the bad line and what was wrong.
fn parse_checkpoint(text: &[u8]) -> std::result::Result<Vec<EpochEntry>, (u64, String)> {
    let Some(body) = text.strip_suffix(b"\n") else {
        return Err((
            text.len() as u64,
            "file is empty or its last line has no newline (torn write?)".to_owned(),
        ));
    };
    let mut lines = Vec::new();
    let mut position = 0u64;
    for line in body.split(|&b| b == b'\n') {
        lines.push((position, line));
        position += line.len() as u64 + 1;
    }
    let mut lines = lines.into_iter();
    let (pos, version) = lines.next().unwrap_or((0, b""));
    if version != b"0" {
        return Err((pos, format!("unknown version {:?}", lossy(version))));
    }
    let Some((pos, count)) = lines.next() else {
        return Err((position, "missing entry count line".to_owned()));
    };
    let count: usize = ascii(count)
        .and_then(|s| s.parse().ok())
        .filter(|_| count.first().is_some_and(u8::is_ascii_digit))
        .ok_or_else(|| (pos, format!("bad entry count {:?}", lossy(count))))?;
    let mut entries: Vec<EpochEntry> = Vec::with_capacity(count.min(lines.len()));
    for (pos, line) in lines {
        if entries.len() == count {
            return Err((pos, format!("more entries than the count {count}")));
        }
        let entry = parse_entry(line).ok_or_else(|| {
            (
                pos,
                format!("entry {:?} is not `epoch start_offset`", lossy(line)),
            )
        })?;
        if entry.leader_epoch < 0 || entry.start_offset < 0 {
            return Err((pos, format!("negative value in entry {:?}", lossy(line))));
        }
        if let Some(prev) = entries.last() {
            if entry.leader_epoch <= prev.leader_epoch || entry.start_offset <= prev.start_offset {
                return Err((
                    pos,
                    format!(
                        "entry {} {} does not follow {} {} (both must increase)",
                        entry.leader_epoch,
                        entry.start_offset,
                        prev.leader_epoch,
                        prev.start_offset
                    ),
                ));
            }
        }
        entries.push(entry);
    }
    if entries.len() != count {
        return Err((
            position,
            format!("count says {count} entries, file has {}", entries.len()),
        ));
    }
    Ok(entries)
}

fn parse_entry(line: &[u8]) -> Option<EpochEntry> {
    let mut fields = ascii(line)?.split_ascii_whitespace();
    let leader_epoch = parse_signed(fields.next()?)?;
    let start_offset = parse_signed(fields.next()?)?;
    if fields.next().is_some() {
        return None;
    }
    Some(EpochEntry {
        leader_epoch: i32::try_from(leader_epoch).ok()?,
        start_offset,
    })
}

/// Parses an optionally `-`-signed decimal (no `+`, which `str::parse` would accept).
fn parse_signed(field: &str) -> Option<i64> {
    if field.starts_with('+') {
        return None;
    }
    field.parse().ok()
}

fn ascii(line: &[u8]) -> Option<&str> {
    std::str::from_utf8(line).ok().filter(|s| s.is_ascii())
}

fn lossy(line: &[u8]) -> String {
    const SHOWN: usize = 40;
    let shown = &line[..line.len().min(SHOWN)];
    String::from_utf8_lossy(shown).into_owned()
}

#[cfg(test)]
#[path = "epoch_cache_tests.rs"]
mod tests;
