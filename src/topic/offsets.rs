//! [`OffsetStore`]: the committed offsets of consumer groups, durable and crash-safe.
//!
//! # Why an append-only log of CRC-framed records
//! Kafka keeps committed offsets as records of the `__consumer_offsets` topic: a commit is an
//! append, the latest record per key wins, and compaction drops the older ones. partlog does the
//! same in one file, `consumer-offsets.log`, because a commit must be acknowledged only once
//! durable, and an append costs one `fdatasync` of the tail, where rewriting a checkpoint file
//! atomically costs a temp-file write, its fsync, a rename and a directory fsync (ext4 forces a
//! journal commit for the rename): see `benches/groups.rs`.
//!
//! # Frame layout (big-endian)
//! | bytes | field |
//! |---|---|
//! | 1 | magic: `0xC0` a commit, `0xC1` a group's generation |
//! | 4 | payload length `n` (at most [`MAX_FRAME_BYTES`]) |
//! | 4 | CRC-32C of the length field and the payload |
//! | n | payload, by magic (below) |
//!
//! - `0xC0`, a commit: group (u16 length + UTF-8), entry count u32, then per entry: topic (u16
//!   length + UTF-8), partition u32, offset i64.
//! - `0xC1`, a generation: group (u16 length + UTF-8), generation i32. Written at every
//!   rebalance, as Kafka writes a group's metadata (with its generation) to
//!   `__consumer_offsets`, so generations keep growing across a restart of the coordinator.
//!
//! One commit is one frame, so a commit of several partitions is all or nothing.
//!
//! # Invariants
//! - One store per directory: opening takes the directory lock that `Log` takes (a second
//!   store, in this process or another, gets [`Error::Locked`]); two stores would write their
//!   frames over each other's acknowledged commits.
//! - A commit returns `Ok` only after its frame is written and `fdatasync`ed (and, for a new
//!   file, the directory synced): it survives a crash and a power cut.
//! - Opening reads frames from the start. Frames are appended in order and each is synced
//!   before the next is written, so only the last can be torn. At the first frame that is
//!   short, has a bad magic, length or CRC, or does not decode:
//!   - if an intact frame follows it anywhere in the file, the damage is not a torn write but
//!     damaged media: opening fails with [`Error::Corrupt`] naming the file and the frame's
//!     position, and changes nothing (every commit stays on disk for whoever repairs it);
//!   - otherwise it is the torn last write, and the file is cut there: that loses at most the
//!     commit being written, whose caller never saw `Ok`, and never yields an offset that was
//!     not committed. (Damage to the last frame alone cannot be told from a torn write.)
//! - After a failed write or sync the store refuses commits ([`Error::PreviousIo`]) until
//!   reopened: what is on disk is then unknown.
//! - Compaction writes the live offsets (one frame per group) with `write_atomically` over the
//!   file: a crash leaves the old log or the compacted one, both holding the same offsets.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::assignor::TopicPartition;
use crate::batch::crc32c;
use crate::checkpoint;
use crate::error::GroupError;
use crate::error::{Error, Result};
use crate::log::DirLock;

/// Name of the offsets file in its directory.
pub const OFFSETS_FILE: &str = "consumer-offsets.log";
/// Name of a data directory's offsets file, at its top ([`OffsetStore::open_in_data_dir`]).
pub const DATA_DIR_OFFSETS_FILE: &str = "partlog-consumer-offsets.log";
/// The lock file of a data directory's offsets store.
pub const DATA_DIR_OFFSETS_LOCK: &str = ".partlog-consumer-offsets.lock";
/// The sub-directory of a data directory where earlier versions kept the store: a Kafka
/// broker refuses a data directory holding it (not a `<topic>-<partition>` name).
pub const LEGACY_OFFSETS_DIR: &str = "__consumer_offsets";

/// Removes the old store directory (after its file was copied out and the copy opened): the
/// files an earlier version kept there, then the directory. Anything else stays, and is an
/// error.
fn remove_legacy_dir(legacy: &Path, lock: DirLock) -> Result<()> {
    let mut tmp = OFFSETS_FILE.to_owned();
    tmp.push_str(".tmp");
    for name in [OFFSETS_FILE, tmp.as_str()] {
        checkpoint::remove_if_exists(&legacy.join(name))?;
    }
    // The lock file goes last, while still held: no old store can open in between.
    checkpoint::remove_if_exists(&legacy.join(crate::log::LOCK_FILE))?;
    drop(lock);
    fs::remove_dir(legacy).map_err(|e| Error::io(legacy, "remove directory", e))
}
/// Largest frame payload: bounds what a garbled length can make the reader allocate.
pub const MAX_FRAME_BYTES: u32 = 16 << 20;
const MAGIC: u8 = 0xC0;
const GENERATION_MAGIC: u8 = 0xC1;
/// CRC work the search for an intact frame after a damaged one may do before giving up (and
/// calling the damage corrupt: never cut what cannot be shown to be a torn tail).
const SEARCH_CRC_BUDGET: usize = 64 << 20;
const FRAME_HEADER: usize = 9;
/// Default size past which the file is compacted (when it is also twice the live size).
const DEFAULT_COMPACT_BYTES: u64 = 4 << 20;

/// What opening the store found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct OffsetsRecovery {
    /// Whole frames read.
    pub frames: u64,
    /// Where a torn tail was cut, and how many bytes it had.
    pub truncated: Option<(u64, u64)>,
}

/// Committed offsets per (group, topic, partition). See the module docs.
///
/// Not thread-safe on its own (`&mut self` to commit); the
/// [`GroupCoordinator`](super::GroupCoordinator) holds it behind its lock.
#[derive(Debug)]
pub struct OffsetStore {
    path: PathBuf,
    file: File,
    /// The directory lock, held as long as the store.
    _lock: DirLock,
    /// Bytes of valid frames: where the next frame goes.
    len: u64,
    offsets: BTreeMap<String, BTreeMap<TopicPartition, i64>>,
    /// The last generation recorded per group.
    generations: BTreeMap<String, i32>,
    compact_bytes: u64,
    failed: bool,
    recovery: OffsetsRecovery,
}

fn put_str(buf: &mut Vec<u8>, s: &str) -> Result<()> {
    let len = u16::try_from(s.len()).map_err(|_| GroupError::InvalidGroupId {
        group: s.chars().take(64).collect(),
    })?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Encodes one commit as a frame.
fn encode(group: &str, entries: &[(TopicPartition, i64)]) -> Result<Vec<u8>> {
    frame(MAGIC, &commit_payload(group, entries)?)
}

/// Encodes a group's generation as a frame.
fn encode_generation(group: &str, generation: i32) -> Result<Vec<u8>> {
    let mut payload = Vec::with_capacity(6 + group.len());
    put_str(&mut payload, group)?;
    payload.extend_from_slice(&generation.to_be_bytes());
    frame(GENERATION_MAGIC, &payload)
}

fn commit_payload(group: &str, entries: &[(TopicPartition, i64)]) -> Result<Vec<u8>> {
    let mut payload = Vec::with_capacity(16 + group.len() + entries.len() * 24);
    put_str(&mut payload, group)?;
    let count = u32::try_from(entries.len()).map_err(|_| Error::BatchTooLarge {
        size: entries.len(),
        max: u32::MAX as usize,
    })?;
    payload.extend_from_slice(&count.to_be_bytes());
    for (tp, offset) in entries {
        put_str(&mut payload, &tp.topic)?;
        payload.extend_from_slice(&tp.partition.to_be_bytes());
        payload.extend_from_slice(&offset.to_be_bytes());
    }
    Ok(payload)
}

fn frame(magic: u8, payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n <= MAX_FRAME_BYTES)
        .ok_or(Error::BatchTooLarge {
            size: payload.len(),
            max: MAX_FRAME_BYTES as usize,
        })?;
    let mut frame = Vec::with_capacity(FRAME_HEADER + payload.len());
    frame.push(magic);
    frame.extend_from_slice(&len.to_be_bytes());
    let mut crc_input = Vec::with_capacity(4 + payload.len());
    crc_input.extend_from_slice(&len.to_be_bytes());
    crc_input.extend_from_slice(payload);
    frame.extend_from_slice(&crc32c(&crc_input).to_be_bytes());
    frame.extend_from_slice(payload);
    Ok(frame)
}

/// A cursor over a payload; every read is bounds-checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)?.try_into().ok().map(u16::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take(8)?.try_into().ok().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)?.try_into().ok().map(i32::from_be_bytes)
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u16()?;
        String::from_utf8(self.take(n.into())?.to_vec()).ok()
    }
}

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
enum Decoded {
    Commit(String, Vec<(TopicPartition, i64)>),
    Generation(String, i32),
}

fn decode_generation(payload: &[u8]) -> Option<Decoded> {
    let mut c = Cursor(payload);
    let group = c.string()?;
    let generation = c.i32()?;
    (c.0.is_empty() && generation >= 0).then_some(Decoded::Generation(group, generation))
}

fn decode_payload(payload: &[u8]) -> Option<Decoded> {
    let mut c = Cursor(payload);
    let group = c.string()?;
    let count = c.u32()?;
    let mut entries = Vec::new();
    for _ in 0..count {
        let topic = c.string()?;
        let partition = c.u32()?;
        let offset = c.i64()?;
        if offset < 0 {
            return None;
        }
        entries.push((TopicPartition { topic, partition }, offset));
    }
    c.0.is_empty().then_some(Decoded::Commit(group, entries))
}

/// Decodes the frame at the start of `bytes`: `Some((commit, frame length))`, or `None` if it
/// is torn or corrupt.
fn decode_frame(bytes: &[u8]) -> Option<(Decoded, usize)> {
    let (magic, len) = frame_header(bytes)?;
    let mut c = Cursor(bytes);
    c.take(1)?;
    let len_bytes = c.take(4)?;
    let crc = c.u32()?;
    let payload = c.take(len as usize)?;
    let mut crc_input = Vec::with_capacity(4 + payload.len());
    crc_input.extend_from_slice(len_bytes);
    crc_input.extend_from_slice(payload);
    if crc32c(&crc_input) != crc {
        return None;
    }
    let decoded = match magic {
        MAGIC => decode_payload(payload)?,
        _ => decode_generation(payload)?,
    };
    Some((decoded, FRAME_HEADER + len as usize))
}

/// The magic and payload length of a frame header at the start of `bytes`, if the magic is
/// known and the length allowed.
fn frame_header(bytes: &[u8]) -> Option<(u8, u32)> {
    let mut c = Cursor(bytes);
    let magic = *c.take(1)?.first()?;
    if magic != MAGIC && magic != GENERATION_MAGIC {
        return None;
    }
    let len = c.u32()?;
    (len <= MAX_FRAME_BYTES).then_some((magic, len))
}

/// Where the first intact frame after the damaged one at `damaged` starts, if any: proof that
/// the damage is not a torn tail. `Err(())` if the search ran out of its CRC budget (so the
/// damage cannot be shown to be a torn tail either).
fn intact_frame_after(bytes: &[u8], damaged: usize) -> std::result::Result<Option<usize>, ()> {
    let mut budget = SEARCH_CRC_BUDGET;
    for p in damaged + 1..bytes.len() {
        let rest = &bytes[p..];
        let Some((_, len)) = frame_header(rest) else {
            continue;
        };
        if FRAME_HEADER + len as usize > rest.len() {
            continue;
        }
        budget = budget.checked_sub(len as usize + 4).ok_or(())?;
        if decode_frame(rest).is_some() {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

impl OffsetStore {
    /// Opens (or creates) the store in `dir`, taking the directory's lock, reading every
    /// commit and cutting a torn tail (see the module docs).
    ///
    /// # Errors
    /// [`Error::Locked`] if another store (or a `Log`), in this process or another, holds
    /// `dir`; [`Error::Corrupt`] (with the file and the damaged frame's position) if a frame
    /// before intact ones is damaged, in which case nothing is changed; [`Error::Io`] if the
    /// directory or file cannot be created, read, cut or synced.
    pub fn open(dir: impl AsRef<Path>) -> Result<OffsetStore> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
        let lock = DirLock::acquire(dir)?;
        Self::open_locked(dir, dir.join(OFFSETS_FILE), lock)
    }

    /// Opens (or creates) the store of the data directory `data`: the file
    /// [`DATA_DIR_OFFSETS_FILE`] at its top, locked through [`DATA_DIR_OFFSETS_LOCK`]. Regular
    /// files, because a Kafka broker loads every sub-directory of a data directory as a
    /// partition and refuses the directory for one that is not `<topic>-<partition>` (its
    /// `LogManager` skips only `remote-log-index-cache` and `__cluster_metadata-N`, both its
    /// own); files it ignores.
    ///
    /// A store an earlier version kept in the sub-directory [`LEGACY_OFFSETS_DIR`] is taken
    /// over: its file is copied in (atomically) unless the copy is already there, and once the
    /// store has opened, the old directory is removed. A crash at any point leaves either the
    /// old directory alone or a complete copy, which then wins.
    ///
    /// # Errors
    /// [`Error::Locked`] if another store holds the data directory's (or the old directory's)
    /// lock; [`Error::Io`] if the old directory holds files partlog did not put there (it is
    /// then left in place) or a file cannot be read, copied or removed; as
    /// [`OffsetStore::open`].
    pub fn open_in_data_dir(data: impl AsRef<Path>) -> Result<OffsetStore> {
        let data = data.as_ref();
        fs::create_dir_all(data).map_err(|e| Error::io(data, "create directory", e))?;
        let lock = DirLock::acquire_file(&data.join(DATA_DIR_OFFSETS_LOCK), data)?;
        let path = data.join(DATA_DIR_OFFSETS_FILE);
        let legacy = data.join(LEGACY_OFFSETS_DIR);
        let legacy_lock = if legacy.is_dir() {
            let legacy_lock = DirLock::acquire(&legacy)?;
            let old = legacy.join(OFFSETS_FILE);
            if !path.exists() && old.exists() {
                let bytes = fs::read(&old).map_err(|e| Error::io(&old, "read", e))?;
                checkpoint::write_atomically(&path, &bytes)?;
            }
            Some(legacy_lock)
        } else {
            None
        };
        let store = Self::open_locked(data, path, lock)?;
        if let Some(legacy_lock) = legacy_lock {
            remove_legacy_dir(&legacy, legacy_lock)?;
            checkpoint::sync_dir(data)?;
        }
        Ok(store)
    }

    fn open_locked(dir: &Path, path: PathBuf, lock: DirLock) -> Result<OffsetStore> {
        // A compaction's temp file that never got renamed: the log it was made from is intact.
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        checkpoint::remove_if_exists(Path::new(&tmp))?;
        let existed = path.exists();
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, "open", e))?;
        if !existed {
            checkpoint::sync_dir(dir)?;
        }
        let bytes = fs::read(&path).map_err(|e| Error::io(&path, "read", e))?;
        let mut store = OffsetStore {
            path,
            file,
            _lock: lock,
            len: 0,
            offsets: BTreeMap::new(),
            generations: BTreeMap::new(),
            compact_bytes: DEFAULT_COMPACT_BYTES,
            failed: false,
            recovery: OffsetsRecovery::default(),
        };
        let mut pos = 0usize;
        while pos < bytes.len() {
            let Some((decoded, n)) = bytes.get(pos..).and_then(decode_frame) else {
                break;
            };
            store.apply(decoded);
            store.recovery.frames += 1;
            pos += n;
        }
        store.len = pos as u64;
        if pos < bytes.len() {
            let reason = match intact_frame_after(&bytes, pos) {
                Ok(None) => None,
                Ok(Some(next)) => Some(format!(
                    "damaged frame before an intact one at byte {next}: damaged media, not a \
                     torn write"
                )),
                Err(()) => Some(
                    "damaged frame, and the rest of the file cannot be shown to be a torn write"
                        .to_owned(),
                ),
            };
            if let Some(reason) = reason {
                return Err(Error::corrupt(&store.path, pos as u64, reason));
            }
            store.recovery.truncated = Some((pos as u64, (bytes.len() - pos) as u64));
            store
                .file
                .set_len(store.len)
                .and_then(|()| store.file.sync_all())
                .map_err(|e| Error::io(&store.path, "truncate", e))?;
        }
        Ok(store)
    }

    /// Compacts once the file passes `bytes` (and twice the live offsets' size); for tests and
    /// tuning. Default 4 MiB.
    pub fn set_compact_bytes(&mut self, bytes: u64) {
        self.compact_bytes = bytes;
    }

    /// What opening found.
    pub fn recovery(&self) -> &OffsetsRecovery {
        &self.recovery
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of valid frames in the file.
    pub fn file_len(&self) -> u64 {
        self.len
    }

    fn apply(&mut self, decoded: Decoded) {
        match decoded {
            Decoded::Commit(group, entries) => {
                let g = self.offsets.entry(group).or_default();
                for (tp, offset) in entries {
                    g.insert(tp, offset);
                }
            }
            Decoded::Generation(group, generation) => {
                self.generations.insert(group, generation);
            }
        }
    }

    /// Appends `frame` and syncs it; on failure the store refuses every later write.
    fn append(&mut self, frame: &[u8]) -> Result<()> {
        if self.failed {
            return Err(Error::PreviousIo);
        }
        let r = self
            .file
            .write_all_at(frame, self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = r {
            self.failed = true;
            return Err(Error::io(&self.path, "append", e));
        }
        self.len += frame.len() as u64;
        Ok(())
    }

    /// Commits `entries` for `group` durably, as one frame: all or nothing.
    ///
    /// # Errors
    /// [`GroupError::InvalidOffset`] for a negative offset, [`GroupError::InvalidGroupId`] for
    /// names over 65535 bytes; [`Error::Io`] if the write or sync fails (the store then refuses
    /// commits: [`Error::PreviousIo`]).
    pub fn commit(&mut self, group: &str, entries: &[(TopicPartition, i64)]) -> Result<()> {
        if self.failed {
            return Err(Error::PreviousIo);
        }
        if let Some((tp, offset)) = entries.iter().find(|(_, o)| *o < 0) {
            return Err(GroupError::InvalidOffset {
                topic: tp.topic.clone(),
                partition: tp.partition,
                offset: *offset,
            }
            .into());
        }
        let frame = encode(group, entries)?;
        self.append(&frame)?;
        self.apply(Decoded::Commit(group.to_owned(), entries.to_vec()));
        self.compact_if_due()
    }

    /// Records `generation` as `group`'s current one, durably (the coordinator does at every
    /// rebalance, before any member hears of the generation).
    ///
    /// # Errors
    /// [`GroupError::InvalidGroupId`] for names over 65535 bytes; [`Error::Io`] if the write
    /// or sync fails (the store then refuses writes: [`Error::PreviousIo`]).
    pub fn record_generation(&mut self, group: &str, generation: i32) -> Result<()> {
        let generation = generation.max(0);
        self.append(&encode_generation(group, generation)?)?;
        self.apply(Decoded::Generation(group.to_owned(), generation));
        self.compact_if_due()
    }

    /// The last generation recorded for `group`.
    pub fn generation(&self, group: &str) -> Option<i32> {
        self.generations.get(group).copied()
    }

    /// Every group's last recorded generation.
    pub fn generations(&self) -> &BTreeMap<String, i32> {
        &self.generations
    }

    fn compact_if_due(&mut self) -> Result<()> {
        if self.len > self.compact_bytes {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrites the file with only the live offsets, if that halves it at least.
    fn compact(&mut self) -> Result<()> {
        let mut snapshot = Vec::new();
        for (group, &generation) in &self.generations {
            snapshot.extend(encode_generation(group, generation)?);
        }
        for (group, offsets) in &self.offsets {
            let entries: Vec<_> = offsets.iter().map(|(tp, o)| (tp.clone(), *o)).collect();
            snapshot.extend(encode(group, &entries)?);
        }
        if snapshot.len() as u64 * 2 > self.len {
            return Ok(());
        }
        let r = checkpoint::write_atomically(&self.path, &snapshot).and_then(|()| {
            File::options()
                .read(true)
                .write(true)
                .open(&self.path)
                .map_err(|e| Error::io(&self.path, "open", e))
        });
        match r {
            Ok(file) => {
                self.file = file;
                self.len = snapshot.len() as u64;
                Ok(())
            }
            Err(e) => {
                // The handle may name the replaced file: no more appends through it.
                self.failed = true;
                Err(e)
            }
        }
    }

    /// The committed offset of `group` for `tp`.
    pub fn committed(&self, group: &str, tp: &TopicPartition) -> Option<i64> {
        self.offsets.get(group)?.get(tp).copied()
    }

    /// Every committed offset of `group`.
    pub fn group_offsets(&self, group: &str) -> BTreeMap<TopicPartition, i64> {
        self.offsets.get(group).cloned().unwrap_or_default()
    }

    /// Groups with at least one committed offset.
    pub fn groups(&self) -> Vec<String> {
        self.offsets.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: u32) -> TopicPartition {
        TopicPartition::new(t, p)
    }

    #[test]
    fn frames_round_trip_and_reject_damage() {
        let frame = encode("g", &[(tp("t", 1), 42), (tp("u", 0), 7)]).unwrap();
        let (decoded, n) = decode_frame(&frame).unwrap();
        assert_eq!(n, frame.len());
        assert_eq!(
            decoded,
            Decoded::Commit("g".into(), vec![(tp("t", 1), 42), (tp("u", 0), 7)])
        );
        let generation = encode_generation("g", 7).unwrap();
        assert_eq!(
            decode_frame(&generation),
            Some((Decoded::Generation("g".into(), 7), generation.len()))
        );
        for frame in [frame, generation] {
            for i in 0..frame.len() {
                let mut bad = frame.clone();
                bad[i] ^= 0x10;
                assert!(decode_frame(&bad).is_none(), "flip at {i}");
                assert!(decode_frame(&frame[..i]).is_none(), "cut at {i}");
            }
        }
    }

    #[test]
    fn compaction_keeps_the_latest_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = OffsetStore::open(dir.path()).unwrap();
        s.set_compact_bytes(2000);
        for i in 0..500 {
            s.commit("g", &[(tp("t", i % 3), i64::from(i))]).unwrap();
            assert!(s.file_len() <= 2100);
        }
        drop(s);
        let s = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(s.committed("g", &tp("t", 0)), Some(498));
        assert_eq!(s.committed("g", &tp("t", 1)), Some(499));
        assert_eq!(s.committed("g", &tp("t", 2)), Some(497));
        assert_eq!(s.recovery().truncated, None);
    }
}
