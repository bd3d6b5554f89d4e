//! A segment: one `.log` file of record batches plus its `.index` and `.timeindex`, all named by
//! the segment's base offset zero-padded to 20 digits, as Kafka names them.
//!
//! `Segment` is the read side, shared by every reader; the active segment's write side is
//! `ActiveSegment`, owned by the log's writer. An inactive segment's files are mapped lazily on
//! first use (and may be unmapped again by the log); its indexes are checked when mapped and
//! rebuilt from the log if they are missing or wrong.

pub(crate) mod active;
pub(crate) mod scan;

use crate::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::batch::{
    peek_span, BatchError, BatchHeader, BatchSpan, RecordBatch, TimestampType, HEADER_SIZE,
};
use crate::error::{Error, Result};
use crate::index::{IndexReader, OffsetEntry, TimeEntry};
use crate::mmap::SharedMap;
use scan::{Bounds, Indexer, Validation, NO_TIMESTAMP};

/// File name suffix of a segment's record batches.
pub const LOG_SUFFIX: &str = ".log";
/// File name suffix of a segment's offset index.
pub const INDEX_SUFFIX: &str = ".index";
/// File name suffix of a segment's time index.
pub const TIME_INDEX_SUFFIX: &str = ".timeindex";

/// `00000000000000000042` for base offset 42.
pub fn file_stem(base_offset: i64) -> String {
    file_name(base_offset, "")
}

/// `<20-digit base offset><suffix>`, as Kafka names a segment's files (`0000…0042.log`). Built
/// digit by digit: an open names every segment's files, and the formatting machinery costs
/// more than the rest of a name.
pub fn file_name(base_offset: i64, suffix: &str) -> String {
    let Ok(mut v) = u64::try_from(base_offset) else {
        return format!("{base_offset:020}{suffix}");
    };
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while v > 0 {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let mut name = String::with_capacity(digits.len() + suffix.len());
    // ASCII digits are UTF-8: the fallback is never taken (it would give the same digits).
    match std::str::from_utf8(&digits) {
        Ok(d) => name.push_str(d),
        Err(_) => return format!("{base_offset:020}{suffix}"),
    }
    name.push_str(suffix);
    name
}

/// Parses a segment file name (`<20 digits><suffix>`) into its base offset.
pub fn parse_file_name(name: &str, suffix: &str) -> Option<i64> {
    split_file_name(name)
        .filter(|&(_, s)| s == suffix)
        .map(|(base, _)| base)
}

/// Splits a name of the form `<20 digits><suffix>` into the offset and the suffix (which may be
/// empty or anything else): one pass over the digits, so a directory listing classifies each
/// name once whatever the number of suffixes it knows.
pub fn split_file_name(name: &str) -> Option<(i64, &str)> {
    let digits = name.as_bytes().get(..20)?;
    let base = digits.iter().try_fold(0i64, |acc, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
    })?;
    // The first 20 bytes are ASCII digits, so byte 20 starts a character.
    Some((base, &name[20..]))
}

/// The three paths of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentPaths {
    /// `.log`
    pub log: PathBuf,
    /// `.index`
    pub index: PathBuf,
    /// `.timeindex`
    pub time_index: PathBuf,
}

impl SegmentPaths {
    /// Removes the three files (those that exist).
    pub(crate) fn remove_all(&self) -> Result<()> {
        for path in [&self.log, &self.index, &self.time_index] {
            crate::checkpoint::remove_if_exists(path)?;
        }
        Ok(())
    }

    /// The paths of the segment with `base_offset` in `dir`.
    pub fn new(dir: &Path, base_offset: i64) -> Self {
        // One join (a `Path::join` parses both sides): the three names differ only in their
        // suffix. An open builds these for every segment in the directory.
        let stem = dir.join(file_stem(base_offset)).into_os_string();
        let with = |suffix: &str| {
            let mut path = std::ffi::OsString::with_capacity(stem.len() + suffix.len());
            path.push(&stem);
            path.push(suffix);
            PathBuf::from(path)
        };
        SegmentPaths {
            log: with(LOG_SUFFIX),
            index: with(INDEX_SUFFIX),
            time_index: with(TIME_INDEX_SUFFIX),
        }
    }
}

/// What a reader of a segment needs: its maps.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub(crate) log: Arc<SharedMap>,
    pub(crate) offset_index: IndexReader<OffsetEntry>,
    pub(crate) time_index: IndexReader<TimeEntry>,
    /// All of the log's bytes, for a segment no longer written: reads slice this instead of
    /// making a new `Bytes` (an allocation) each time.
    pub(crate) frozen: Option<Bytes>,
}

/// "Largest timestamp not computed yet".
const UNKNOWN: i64 = i64::MIN;

/// The read side of a segment. See the module docs.
#[derive(Debug)]
pub(crate) struct Segment {
    base_offset: i64,
    paths: SegmentPaths,
    /// Bytes of batches in the `.log` file.
    size: AtomicU64,
    /// Exclusive bound of the offsets this segment may hold: the next segment's base offset, or
    /// `i64::MAX` while the segment is active.
    end_offset: AtomicI64,
    /// Largest batch max-timestamp in the segment, [`NO_TIMESTAMP`] if none, or `UNKNOWN`.
    max_timestamp: AtomicI64,
    view: Mutex<Option<Arc<SegmentView>>>,
    /// Set when the segment was removed from its log (its files renamed `.deleted`).
    deleted: AtomicBool,
    /// Set when mapping found damage: batches that do not validate, or the segment ending before
    /// the next one begins. Its largest timestamp then covers only the readable part.
    damaged: AtomicBool,
    /// Byte position where mapping found the damage (valid while `damaged` is set).
    damaged_at: AtomicU64,
    /// Set when a lookup found the offset index wrong: the next mapping rebuilds it.
    index_suspect: AtomicBool,
    /// Held while the index files are rebuilt (see [`Segment::view`]).
    rebuild: Mutex<()>,
    /// Test-only: run by an index rebuild after its scan, before it writes the files (a test
    /// holds the rebuild there).
    #[cfg(test)]
    pub(crate) rebuild_hook: RebuildHook,
}

/// Test-only: what an index rebuild runs after its scan (see `Segment::rebuild_hook`).
#[cfg(test)]
#[derive(Default)]
pub(crate) struct RebuildHook(pub(crate) Mutex<Option<Box<dyn FnOnce() + Send>>>);

#[cfg(test)]
impl std::fmt::Debug for RebuildHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RebuildHook")
    }
}

impl Segment {
    pub(crate) fn new(paths: SegmentPaths, base_offset: i64, size: u64, end_offset: i64) -> Self {
        Segment {
            base_offset,
            paths,
            size: AtomicU64::new(size),
            end_offset: AtomicI64::new(end_offset),
            max_timestamp: AtomicI64::new(UNKNOWN),
            view: Mutex::new(None),
            deleted: AtomicBool::new(false),
            damaged: AtomicBool::new(false),
            damaged_at: AtomicU64::new(0),
            index_suspect: AtomicBool::new(false),
            rebuild: Mutex::new(()),
            #[cfg(test)]
            rebuild_hook: RebuildHook::default(),
        }
    }

    /// The first offset this segment may hold; its files are named by it.
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// The segment's files.
    pub fn paths(&self) -> &SegmentPaths {
        &self.paths
    }

    /// Bytes of record batches in the segment.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Release);
    }

    /// Exclusive bound of the segment's offsets (the next segment's base offset).
    pub(crate) fn end_offset(&self) -> i64 {
        self.end_offset.load(Ordering::Acquire)
    }

    pub(crate) fn set_end_offset(&self, end: i64) {
        self.end_offset.store(end, Ordering::Release);
    }

    pub(crate) fn set_max_timestamp(&self, ts: i64) {
        self.max_timestamp.store(ts, Ordering::Release);
    }

    /// The byte position of damage found when the segment was mapped (its readable batches
    /// end there), if any.
    pub fn damaged_at(&self) -> Option<u64> {
        self.damaged
            .load(Ordering::Acquire)
            .then(|| self.damaged_at.load(Ordering::Acquire))
    }

    /// A lookup found an index entry that does not match the log: an inactive segment is
    /// unmapped so that its next mapping rebuilds both indexes (readers keep their views). The
    /// active segment's indexes stay; lookups through a wrong entry fall back to a walk.
    fn distrust_indexes(&self) {
        self.index_suspect.store(true, Ordering::Release);
        if self.end_offset() != i64::MAX {
            self.set_view(None);
        }
    }

    /// True once the segment was deleted from its log.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }

    /// Marks the segment removed from its log (a truncation cut it, or it goes with its files)
    /// and unmaps it; readers holding its bytes keep them, and a reader that chose it and finds
    /// its files gone knows why.
    ///
    /// Once marked, the segment is never mapped again: its name may already belong to another
    /// file (a truncation renames the rewritten segment over it), whose length can change under
    /// a map that this segment would not know about.
    ///
    /// Waits for an index rebuild in flight, whose files must not be written once it is marked.
    pub(crate) fn mark_deleted(&self) {
        let _rebuild = self.rebuild_lock();
        let mut slot = self.slot();
        self.deleted.store(true, Ordering::Release);
        *slot = None;
    }

    /// Marks the segment deleted, unmaps it (readers holding its bytes keep them), and renames
    /// its `.log` with a `.deleted` suffix: no open (partlog's or Kafka's) loads the segment
    /// again, and both remove its index files then as orphans. Returns the new name, if the
    /// file was there, to remove later.
    ///
    /// The index files keep their names (the caller removes them later): on ext4 a rename
    /// costs 18-25 µs, so renaming all three made deleting 100 segments three times as slow.
    pub(crate) fn rename_log_deleted(&self) -> Result<Option<PathBuf>> {
        self.mark_deleted();
        crate::checkpoint::rename_to_deleted(&self.paths.log)
    }

    /// The largest record timestamp, or the `.log` file's modification time if the segment
    /// holds no timestamp (Kafka's `LogSegment.largestTimestamp`).
    pub(crate) fn largest_timestamp_or_mtime(&self, index_interval: u32) -> Result<(i64, bool)> {
        let (ts, mapped) = self.max_timestamp(index_interval)?;
        if ts >= 0 {
            return Ok((ts, mapped));
        }
        let path = &self.paths.log;
        let modified = crate::fs::metadata(path)
            .and_then(|m| m.modified())
            .map_err(|e| Error::io(path, "stat", e))?;
        let ms = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Ok((ms, mapped))
    }

    fn slot(&self) -> MutexGuard<'_, Option<Arc<SegmentView>>> {
        // A panic while holding this lock cannot leave the slot half-updated (it is one store),
        // so a poisoned lock is still good.
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_view(&self, view: Option<Arc<SegmentView>>) {
        *self.slot() = view;
    }

    /// True while the segment's files are mapped.
    #[cfg(test)]
    pub(crate) fn is_mapped(&self) -> bool {
        self.slot().is_some()
    }

    /// The segment's maps, mapping its files first if needed. Returns whether this call mapped
    /// them (so the caller can account for open maps).
    ///
    /// If the indexes are missing or wrong, the view installed at once has none (lookups walk
    /// the segment's batch headers from its start, checking each), and this call then rebuilds
    /// them under the segment's rebuild lock, not its view lock: other readers of the segment
    /// go on meanwhile, through that view, and never wait for the rebuild's scan or fsyncs. If
    /// another reader is rebuilding already, this one does not wait for it either.
    pub(crate) fn view(&self, index_interval: u32) -> Result<(Arc<SegmentView>, bool)> {
        let mut slot = self.slot();
        if let Some(v) = slot.as_ref() {
            return Ok((Arc::clone(v), false));
        }
        if self.is_deleted() {
            let e = std::io::Error::new(std::io::ErrorKind::NotFound, "segment deleted");
            return Err(Error::io(&self.paths.log, "map", e));
        }
        let path = &self.paths.log;
        let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "stat", e))?
            .len();
        let len_usize =
            usize::try_from(len).map_err(|_| Error::corrupt(path, 0, "segment too large"))?;
        let log = SharedMap::read_only_of(&file, len, len_usize)
            .map_err(|e| Error::io(path, "mmap", e))?;
        self.size.store(len, Ordering::Release);
        if !self.index_suspect.swap(false, Ordering::AcqRel) {
            if let Some(view) = self.open_indexes(&log, len) {
                let v = Arc::new(view);
                *slot = Some(Arc::clone(&v));
                return Ok((v, true));
            }
        }
        // Missing or bad indexes: readers walk meanwhile (an index of no entries), and this
        // call rebuilds them.
        let none =
            SharedMap::read_only_of(&file, len, 0).map_err(|e| Error::io(path, "mmap", e))?;
        let walking = Arc::new(SegmentView {
            frozen: log.slice(0, log.published()),
            log,
            offset_index: IndexReader::new(Arc::clone(&none)),
            time_index: IndexReader::new(none),
        });
        *slot = Some(Arc::clone(&walking));
        drop(slot);
        let view = match self.rebuild_indexes(&walking, index_interval) {
            Ok(Some(rebuilt)) => rebuilt,
            // Another reader is rebuilding them, or the segment was deleted meanwhile.
            Ok(None) => walking,
            // The indexes are a cache: reads stay right by walking. The next mapping tries
            // again.
            Err(_) => {
                self.index_suspect.store(true, Ordering::Release);
                walking
            }
        };
        Ok((view, true))
    }

    /// The rebuild lock (see [`Segment::view`]): held while index files are rebuilt, and by
    /// [`Segment::mark_deleted`], so that no rebuilt file is written once the segment is
    /// deleted (its name may already belong to another segment's file).
    fn rebuild_lock(&self) -> MutexGuard<'_, ()> {
        self.rebuild.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds both indexes from the log bytes of `walking` (a view without indexes) and
    /// installs a view that has them, unless another call is rebuilding them already or the
    /// segment was deleted (`Ok(None)`). Marks the segment damaged if the scan stops short.
    fn rebuild_indexes(
        &self,
        walking: &SegmentView,
        index_interval: u32,
    ) -> Result<Option<Arc<SegmentView>>> {
        let _rebuilding = match self.rebuild.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
        };
        if self.is_deleted() {
            return Ok(None);
        }
        let data = walking.data();
        let bounds = Bounds {
            end_offset: self.end_offset(),
            ..Bounds::from(self.base_offset)
        };
        let outcome = scan::scan(
            &data,
            0,
            self.base_offset,
            bounds,
            Indexer::new(self.base_offset, index_interval),
            Validation::Crc,
        );
        // The rebuilt indexes cover only the batches before any damage: what lies beyond (its
        // timestamps among it) is unknown, and time lookups must not skip over it. Ending below
        // the next segment's base is an offset gap, not damage.
        if outcome.stop.is_some() {
            self.damaged_at.store(outcome.valid_end, Ordering::Release);
            self.damaged.store(true, Ordering::Release);
        }
        self.run_rebuild_hook();
        let max_timestamp = outcome.write_indexes(&self.paths)?;
        self.max_timestamp.store(max_timestamp, Ordering::Release);
        let rebuilt = Arc::new(SegmentView {
            frozen: walking.frozen.clone(),
            log: Arc::clone(&walking.log),
            offset_index: IndexReader::open_read_only(&self.paths.index)?,
            time_index: IndexReader::open_read_only(&self.paths.time_index)?,
        });
        // Installed in place of whatever view is there (the walking one, or another reader's
        // of the same bytes); not if the segment was unmapped meanwhile (the log counts maps).
        let mut slot = self.slot();
        if slot.is_some() {
            *slot = Some(Arc::clone(&rebuilt));
        }
        Ok(Some(rebuilt))
    }

    /// Runs the test's rebuild hook, if one is set; nothing outside tests.
    #[inline(always)]
    fn run_rebuild_hook(&self) {
        #[cfg(test)]
        if let Some(hook) = self
            .rebuild_hook
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            hook();
        }
    }

    /// Opens and checks the index files; `None` if either is missing or wrong.
    fn open_indexes(&self, log: &Arc<SharedMap>, log_size: u64) -> Option<SegmentView> {
        let relative_end = self.end_offset().saturating_sub(self.base_offset);
        let offset_index = IndexReader::<OffsetEntry>::open_read_only(&self.paths.index).ok()?;
        let time_index = IndexReader::<TimeEntry>::open_read_only(&self.paths.time_index).ok()?;
        offset_index.validate(log_size, relative_end).ok()?;
        time_index.validate(log_size, relative_end).ok()?;
        let view = SegmentView {
            log: Arc::clone(log),
            offset_index,
            time_index,
            frozen: log.slice(0, log.published()),
        };
        // The last time entry must name a batch that really has that timestamp, and no later
        // batch may have a larger one: it is what retention and timestamp lookups trust.
        let max_ts = match view.time_index.last() {
            Some(t) => {
                let ok = view.log.with_published(|data| {
                    time_entry_is_segment_max(data, &view.offset_index, self.base_offset, t)
                });
                if !ok {
                    return None;
                }
                t.timestamp
            }
            None if log_size == 0 => NO_TIMESTAMP,
            None => UNKNOWN,
        };
        if max_ts != UNKNOWN {
            self.max_timestamp.store(max_ts, Ordering::Release);
        }
        Some(view)
    }

    /// The largest record timestamp, if known without mapping the segment.
    pub(crate) fn known_max_timestamp(&self) -> Option<i64> {
        let known = self.max_timestamp.load(Ordering::Acquire);
        (known != UNKNOWN).then_some(known)
    }

    /// The largest record timestamp in the segment ([`NO_TIMESTAMP`] if it has none), mapping
    /// the segment if it was never mapped.
    pub(crate) fn max_timestamp(&self, index_interval: u32) -> Result<(i64, bool)> {
        let known = self.max_timestamp.load(Ordering::Acquire);
        if known != UNKNOWN {
            return Ok((known, false));
        }
        let (view, mapped) = self.view(index_interval)?;
        let known = self.max_timestamp.load(Ordering::Acquire);
        if known != UNKNOWN {
            return Ok((known, mapped));
        }
        // Indexes valid but with no time entry, or being rebuilt by another reader: walk the
        // batch headers. A walk that stops short (a batch out of place or unreadable, or the
        // segment running past the next one's base) marks the segment damaged there, as the
        // rebuild's scan would: what lies beyond is unknown, and time lookups must not skip it.
        // Offset gaps (a batch starting above where the previous one ended) are legal.
        let mut max = NO_TIMESTAMP;
        let (stopped_at, ends_short) = view.log.with_published(|data| {
            let (mut pos, mut expected) = (0, self.base_offset);
            let end = self.end_offset();
            while let Some(h) = scan::peek_header(data, pos) {
                if h.base_offset < expected
                    || h.next_offset() > end
                    || (h.base_offset > expected
                        && overlap_follows(data, pos, h.total_size(), h.next_offset()))
                {
                    break;
                }
                max = max.max(h.max_timestamp);
                expected = h.next_offset();
                pos += h.total_size();
            }
            (pos, pos < data.len())
        });
        if ends_short {
            self.damaged_at.store(stopped_at as u64, Ordering::Release);
            self.damaged.store(true, Ordering::Release);
        }
        self.max_timestamp.store(max, Ordering::Release);
        Ok((max, mapped))
    }
}

/// Batches read from one segment.
#[derive(Debug)]
pub(crate) struct SegmentRead {
    /// The batches, laid end to end as on disk.
    pub(crate) bytes: Bytes,
    pub(crate) batches: Vec<RecordBatch>,
    /// Offset after the last batch returned.
    pub(crate) next_offset: i64,
}

impl SegmentView {
    /// The published bytes of the log.
    pub(crate) fn data(&self) -> Bytes {
        match &self.frozen {
            Some(b) => b.clone(),
            None => self.log.slice(0, self.log.published()).unwrap_or_default(),
        }
    }

    /// Position and header of the batch holding `offset` in `seg`, found through the offset
    /// index then a header walk; `Ok(None)` if the segment's batches end before `offset`.
    ///
    /// Inside an offset gap, the batch found is the first one after `offset` (as Kafka's
    /// `LogSegment.read` answers). The walk checks that offsets grow from the indexed batch
    /// (which must hold exactly the entry's offset) or from the segment's base offset, so a base
    /// offset rotted downwards is reported as damage rather than answered with the wrong batch.
    pub(crate) fn locate(
        &self,
        seg: &Segment,
        offset: i64,
        data: &[u8],
    ) -> Result<Option<(usize, BatchHeader)>> {
        self.locate_hinted(seg, offset, data, None)
    }

    /// Starts loading the line where the batch holding `relative` most likely is, if bytes
    /// grow evenly with offsets (interpolated from the offset index's last entry), so that it
    /// loads alongside the index search rather than after it: on a large log both are cache
    /// misses, and the walk needs the search's answer. Only a hint: the index and the walk
    /// decide.
    fn prefetch_likely_place(&self, relative: i64, data: &[u8]) {
        let Some(last) = self.offset_index.last() else {
            return;
        };
        if let (Ok(r), Ok(n), Ok(p)) = (
            u64::try_from(relative),
            u64::try_from(last.relative_offset),
            u64::try_from(last.position),
        ) {
            if r < n {
                // r < n < 2^31 and p < 2^31: the product fits.
                let guess = (p * r / n) as usize;
                crate::mmap::prefetch(data.get(guess..guess + 1).unwrap_or(&[]));
            }
        }
    }

    /// [`SegmentView::locate`]; `hint` is where in the offset index an entry for exactly
    /// `offset` may be (the time index's entries usually pair with the offset index's, as both
    /// are written at the same batches): if it is there, the binary search is skipped.
    fn locate_hinted(
        &self,
        seg: &Segment,
        offset: i64,
        data: &[u8],
        hint: Option<usize>,
    ) -> Result<Option<(usize, BatchHeader)>> {
        let relative = offset.saturating_sub(seg.base_offset);
        // First, so that it overlaps the index reads below (the hinted entry too).
        self.prefetch_likely_place(relative, data);
        let hinted = hint.and_then(|i| Some((i, self.offset_index.entry(i)?)));
        let floor = match hinted {
            Some((i, e)) if i64::from(e.relative_offset) == relative => Some((i, e)),
            _ => self.offset_index.floor_at(relative),
        };
        // Where the batch sought must end by, if the index is right: the next entry's batch.
        let next = self.offset_index.entry(floor.map_or(0, |(i, _)| i + 1));
        let ahead = prefetch_bound(floor.map(|(_, e)| e), next, relative);
        let floor = floor.map(|(_, e)| e);
        let Some(entry) = floor else {
            return walk_to(seg, data, 0, seg.base_offset, offset, ahead);
        };
        let start = entry.position as usize;
        let from_index = match entry_batch_base(
            data,
            start,
            seg.base_offset + i64::from(entry.relative_offset),
        ) {
            Some(expected) => walk_to(seg, data, start, expected, offset, ahead),
            // The entry does not land on the batch it names.
            None => Err(Error::corrupt(
                &seg.paths.log,
                start as u64,
                format!(
                    "offset index entry for offset {} does not name the batch at its position",
                    seg.base_offset + i64::from(entry.relative_offset)
                ),
            )),
        };
        match from_index {
            Ok(found) => Ok(found),
            Err(from_index) => {
                // Index files carry no checksum: an entry can pass every check and still not
                // land on its batch. Walk from the segment's start instead; if that works, the
                // index was wrong, and an inactive segment rebuilds it when next mapped.
                let found = walk_to(seg, data, 0, seg.base_offset, offset, usize::MAX)
                    .map_err(|_| from_index)?;
                seg.distrust_indexes();
                Ok(found)
            }
        }
    }

    /// Whole batches of `seg` from the one holding `offset`: at least one batch (if any holds an
    /// offset in `offset..max_offset`), then more while the total stays within `max_bytes`.
    /// Batches whose base offset is at or above `max_offset` are not returned. Damage after
    /// the first batch ends the answer there (the next read reports it).
    pub(crate) fn read(
        &self,
        seg: &Segment,
        offset: i64,
        max_bytes: usize,
        max_offset: i64,
        verify_crc: bool,
    ) -> Result<Option<SegmentRead>> {
        let path = &seg.paths.log;
        let data = self.data();
        let Some((start, first)) = self.locate(seg, offset, &data)? else {
            return Ok(None);
        };
        if first.base_offset >= max_offset {
            return Ok(None);
        }
        let mut batches = vec![batch_at(
            path,
            &data,
            start,
            first.total_size(),
            verify_crc,
        )?];
        let mut next_offset = first.next_offset();
        let mut pos = start + first.total_size();
        // Any further batch is at least a header long.
        while pos < data.len() && pos + HEADER_SIZE - start <= max_bytes {
            let Ok(header) = header_at(path, &data, pos) else {
                break;
            };
            let size = header.total_size();
            if header.base_offset < next_offset
                || (header.base_offset > next_offset
                    && overlap_follows(&data, pos, size, header.next_offset()))
                || header.base_offset >= max_offset
                || pos + size - start > max_bytes
            {
                break;
            }
            let Ok(batch) = batch_at(path, &data, pos, size, verify_crc) else {
                break;
            };
            next_offset = header.next_offset();
            batches.push(batch);
            pos += size;
        }
        Ok(Some(SegmentRead {
            bytes: data.slice(start..pos),
            batches,
            next_offset,
        }))
    }

    /// The batch of `seg` holding `offset` (its CRC checked if `verify_crc`) and its position;
    /// `Ok(None)` if the segment's batches end before `offset`. The one-batch form of
    /// [`SegmentView::read`], without the list: the walk and the CRC run over the mapped bytes,
    /// and only the batch found is made a [`Bytes`] (no allocation for a sealed segment, one
    /// for the active segment's).
    pub(crate) fn read_batch(
        &self,
        seg: &Segment,
        offset: i64,
        verify_crc: bool,
    ) -> Result<Option<(usize, RecordBatch)>> {
        let find = |data: &[u8]| -> Result<Option<(usize, BatchHeader)>> {
            let Some((start, header)) = self.locate(seg, offset, data)? else {
                return Ok(None);
            };
            if verify_crc {
                // `locate` checked that the whole batch is present.
                let batch = data
                    .get(start..start + header.total_size())
                    .unwrap_or_default();
                crate::mmap::prefetch_pages(batch);
                crate::batch::check_crc(batch, header.crc)
                    .map_err(|e| Error::corrupt(&seg.paths.log, start as u64, e.to_string()))?;
            }
            Ok(Some((start, header)))
        };
        let found = match &self.frozen {
            Some(all) => find(all)?,
            None => self.log.with_published(find)?,
        };
        let Some((start, header)) = found else {
            return Ok(None);
        };
        let end = start + header.total_size();
        let bytes = match &self.frozen {
            Some(all) => all.slice(start..end),
            // The published length only grows while this view is held.
            None => self.log.slice(start, end).unwrap_or_default(),
        };
        let batch = RecordBatch::with_header(header, bytes)
            .map_err(|e| Error::corrupt(&seg.paths.log, start as u64, e.to_string()))?;
        Ok(Some((start, batch)))
    }

    /// The first offset at or above `min_offset` whose record timestamp is `>= timestamp`, if
    /// `seg` holds one.
    pub(crate) fn offset_for_timestamp(
        &self,
        seg: &Segment,
        timestamp: i64,
        min_offset: i64,
        verify_crc: bool,
    ) -> Result<Option<i64>> {
        let path = &seg.paths.log;
        let base_offset = seg.base_offset;
        let data = self.data();
        // The entry says every record before its offset is older than its timestamp. Index
        // files carry no checksum, so the entry must at least match the batch it names (that
        // batch reached exactly that timestamp); if not, search from the segment's start and
        // have the index rebuilt.
        let floor = self.time_index.floor_at(timestamp);
        let (indexed, found_at) = match floor {
            None => (base_offset, None),
            Some((i, e)) => {
                let o = base_offset + i64::from(e.relative_offset);
                match self.locate_hinted(seg, o, &data, Some(i)) {
                    Ok(Some((pos, h))) if h.base_offset <= o && h.max_timestamp == e.timestamp => {
                        (o, Some(pos))
                    }
                    _ => {
                        seg.distrust_indexes();
                        (base_offset, None)
                    }
                }
            }
        };
        let from = indexed.max(min_offset);
        let start = match found_at {
            Some(pos) if from == indexed => Some(pos),
            _ => self.locate(seg, from, &data)?.map(|(pos, _)| pos),
        };
        let Some(mut pos) = start else {
            return Ok(None);
        };
        // The batch that reaches `timestamp` starts before the next time entry's batch, whose
        // place the offset index's entry of the same rank usually gives (both are written at
        // the same batches). Only a hint for the walk's prefetch.
        let bound = floor
            .and_then(|(i, e)| {
                let next = self.time_index.entry(i + 1)?;
                let end = usize::try_from(self.offset_index.entry(i + 1)?.position).ok()?;
                let span = end.checked_sub(pos)?;
                // Where `timestamp` falls between the two entries, if time passes evenly
                // with bytes, plus an eighth of the span (as `prefetch_bound`). In f64: any
                // i64 timestamps, no overflow; a NaN or infinite fraction clamps or casts to
                // a place within the span.
                let (t0, t1) = (e.timestamp as f64, next.timestamp as f64);
                let fraction = ((timestamp as f64 - t0) / (t1 - t0)).clamp(0.0, 1.0);
                let guess = (fraction * span as f64) as usize;
                Some((pos + guess.min(span) + span / 8 + 256).min(end + HEADER_SIZE))
            })
            .unwrap_or(pos + WALK_FIRST_PREFETCH);
        let mut walk = Walk::start(&data, pos, bound);
        let mut expected = None;
        while pos < data.len() {
            let header = header_at(path, &data, pos)?;
            if expected.is_some_and(|e| header.base_offset < e) {
                return Err(Error::corrupt(
                    path,
                    pos as u64,
                    format!(
                        "batch base offset {} below offset {}, where the previous batch ended",
                        header.base_offset,
                        expected.unwrap_or_default()
                    ),
                ));
            }
            let size = header.total_size();
            if expected.is_some_and(|e| header.base_offset > e)
                && overlap_follows(&data, pos, size, header.next_offset())
            {
                return Err(Error::corrupt(
                    path,
                    pos as u64,
                    format!(
                        "batch base offset {} leaves a gap and the next batch starts below its end \
                         (a base offset rotted upwards)",
                        header.base_offset
                    ),
                ));
            }
            expected = Some(header.next_offset());
            if header.max_timestamp >= timestamp && header.last_offset() >= min_offset {
                let batch = batch_at(path, &data, pos, size, verify_crc)?;
                // A batch stamped with its append time has no record times of its own: its
                // first offset in range is the answer. (A compressed batch is decompressed by
                // `first_offset_reaching`; a codec it cannot name never parses, so the
                // `UnsupportedCompression` arm below is a fallback, not a path.)
                if header.timestamp_type() == TimestampType::LogAppendTime {
                    return Ok(Some(header.base_offset.max(min_offset)));
                }
                match batch.first_offset_reaching(timestamp, min_offset) {
                    Ok(Some(offset)) => return Ok(Some(offset)),
                    Ok(None) => {}
                    Err(BatchError::UnsupportedCompression { .. }) => {
                        return Ok(Some(header.base_offset.max(min_offset)))
                    }
                    Err(e) => return Err(Error::corrupt(path, pos as u64, e.to_string())),
                }
                // No record in range reached the batch's max timestamp: keep looking.
            }
            pos = walk.pass(pos, size);
        }
        Ok(None)
    }
}

/// How far a walk from the index entry `floor` (or the segment's start) to the batch holding
/// `relative` prefetches, the next entry being `next`. The batch sought starts before `next`'s
/// position; interpolating between the two entries' offsets and positions says about where, so
/// only the bytes up to that guess, plus an eighth of the span, are asked for at once (the walk
/// loads any further lines it reaches). With the whole span prefetched, issuing the prefetches
/// was half of a lookup in one-record batches.
fn prefetch_bound(floor: Option<OffsetEntry>, next: Option<OffsetEntry>, relative: i64) -> usize {
    let Some(n) = next else {
        return usize::MAX;
    };
    let (r0, p0) = floor.map_or((0, 0), |e| (i64::from(e.relative_offset), e.position));
    let (r1, p1) = (i64::from(n.relative_offset), n.position);
    let (Ok(done), Ok(range), Ok(p0), Ok(p1)) = (
        u64::try_from(relative.saturating_sub(r0)),
        u64::try_from(r1 - r0),
        u64::try_from(p0),
        u64::try_from(p1),
    ) else {
        return usize::MAX;
    };
    if range == 0 || p1 <= p0 {
        return p1 as usize;
    }
    let span = p1 - p0;
    // span < 2^31 and done.min(range) < 2^32: the product fits.
    let guess = p0 + span * done.min(range) / range;
    (guess + span / 8 + 256).min(p1) as usize
}

/// How a walk over consecutive batches loads memory and moves on, shared by the offset walk
/// ([`walk_to`]) and the time walk ([`SegmentView::offset_for_timestamp`]).
///
/// - Prefetch: the batch sought lies before a bound the caller guessed (at most
///   [`WALK_PREFETCH`] ahead). Only the first [`WALK_FIRST_PREFETCH`] bytes start loading at
///   once; the rest once the walk passes over a batch. When the first batch is the one sought
///   (large batches) the CRC streams it anyway, and a prefetch of lines the walk never reads
///   would stall the loads the lookup does need.
/// - Stride: a batch the size of the last one passed over moves the walk by a remembered size
///   rather than by the size just loaded, so the next header's load does not wait for this
///   one's (the branch predictor runs ahead while batches keep their size, and the loaded
///   size confirms it). Producers of one record size make batches of one size.
struct Walk<'a> {
    data: &'a [u8],
    /// The rest of the way to prefetch, until the first batch passed over.
    rest: Option<(usize, usize)>,
    last_size: usize,
    last_step: usize,
}

impl<'a> Walk<'a> {
    /// Starts a walk at `pos` whose batch lies before about `bound`.
    #[inline(always)]
    fn start(data: &'a [u8], pos: usize, bound: usize) -> Self {
        let limit = bound.min(pos.saturating_add(WALK_PREFETCH));
        let first = limit.min(pos.saturating_add(WALK_FIRST_PREFETCH));
        let walk = Walk {
            data,
            rest: Some((first, limit)),
            last_size: 0,
            last_step: 0,
        };
        crate::mmap::prefetch(walk.window(pos, first));
        walk
    }

    fn window(&self, from: usize, to: usize) -> &'a [u8] {
        self.data
            .get(from..to.min(self.data.len()))
            .unwrap_or_default()
    }

    /// Passes over the batch of `size` bytes at `pos`: the position after it.
    #[inline(always)]
    fn pass(&mut self, pos: usize, size: usize) -> usize {
        if let Some((from, to)) = self.rest.take() {
            crate::mmap::prefetch(self.window(from, to));
        }
        if size == self.last_size {
            pos + self.last_step
        } else {
            self.last_size = size;
            // Opaque to the optimizer, which would otherwise see that both arms add the same
            // value and fold them into the load-dependent one.
            self.last_step = std::hint::black_box(size);
            pos + size
        }
    }
}

/// Most bytes a walk prefetches.
const WALK_PREFETCH: usize = 8 << 10;
/// Bytes a walk prefetches before it knows it must pass over a batch.
const WALK_FIRST_PREFETCH: usize = 512;

/// Where a walk from an offset-index entry naming `entry_offset` at `pos` starts: the base
/// offset of the batch at `pos` if that batch ends at `entry_offset` (as Kafka and partlog write
/// entries) or starts there (as partlog wrote them before it matched Kafka); `None` if it does
/// neither (the entry is wrong). Exact matches only: the base offset lies outside the CRC, and
/// the index is what catches a damaged one (offset gaps being legal, a walk from a wrong entry
/// could not tell it).
pub(crate) fn entry_batch_base(data: &[u8], pos: usize, entry_offset: i64) -> Option<i64> {
    match data.get(pos..).and_then(peek_span) {
        Some(s) if s.last_offset() == entry_offset || s.base_offset == entry_offset => {
            Some(s.base_offset)
        }
        _ => None,
    }
}

/// True if the batch after the one at `pos` (`size` bytes, ending before `next_offset`) starts
/// below `next_offset`. Asked of a batch that starts above the offset expected of it: in a log
/// with offset gaps (legal) offsets still only grow, so a gap followed by an overlap is a base
/// offset rotted upwards (it lies outside the CRC), and the batch after the gap is the damaged
/// one. (The last batch of a segment has no such witness: a base offset rotted upwards there
/// reads as a gap, as it does in Kafka.)
pub(crate) fn overlap_follows(data: &[u8], pos: usize, size: usize, next_offset: i64) -> bool {
    data.get(pos.saturating_add(size)..)
        .and_then(peek_span)
        .is_some_and(|s| s.base_offset < next_offset)
}

/// Walks batch headers from `pos` (where a batch starting at or above offset `expected` must
/// be) to the first batch holding `offset` or, if `offset` is in an offset gap, the first batch
/// after it; `Ok(None)` if the segment's batches end before it.
///
/// Offsets must grow: a batch starting above the offset after the previous one leaves a gap
/// (legal, as in Kafka's logs); one starting below it is reported as damage rather than
/// answered with the wrong batch.
fn walk_to(
    seg: &Segment,
    data: &[u8],
    mut pos: usize,
    mut expected: i64,
    offset: i64,
    ahead: usize,
) -> Result<Option<(usize, BatchHeader)>> {
    let path = &seg.paths.log;
    // The batch sought lies before `ahead`.
    let mut walk = Walk::start(data, pos, ahead);
    // The hops stay in this tight loop (no `Result` built per batch); anything unusual leaves
    // it for the checked path below, which names the damage.
    let (mut span, mut found) = (None, false);
    while pos < data.len() {
        // Batches passed over need only their span; the one found is parsed whole.
        span = data.get(pos..).and_then(peek_span);
        match span {
            Some(s)
                if s.base_offset == expected
                    || (s.base_offset > expected
                        && !overlap_follows(data, pos, s.total_size, s.next_offset())) =>
            {
                if s.last_offset() >= offset {
                    found = true;
                    break;
                }
                expected = s.next_offset();
                pos = walk.pass(pos, s.total_size);
            }
            _ => break,
        }
    }
    if found {
        return Ok(Some((pos, header_at(path, data, pos)?)));
    }
    if pos < data.len() {
        let span = match span {
            Some(s) => s,
            None => span_at(path, data, pos)?,
        };
        let why = if span.base_offset < expected {
            format!(
                "batch base offset {} below offset {expected}, where the previous batch ended",
                span.base_offset
            )
        } else {
            format!(
                "batch base offset {} leaves a gap after offset {expected} and the next batch starts below its end \
                 (a base offset rotted upwards)",
                span.base_offset
            )
        };
        return Err(Error::corrupt(path, pos as u64, why));
    }
    // A segment ending below the next one's base leaves an offset gap: the caller goes on to
    // the next segment.
    Ok(None)
}

/// True if the batch `t` names (found through `offset_index`, or from the start if the index
/// does not lead there) has exactly `t.timestamp` as its largest timestamp and no batch after
/// it has a larger one: then `t` is the segment's largest timestamp, as the final entry written
/// at roll must be. Reads batch headers only.
pub(crate) fn time_entry_is_segment_max(
    data: &[u8],
    offset_index: &IndexReader<OffsetEntry>,
    base_offset: i64,
    t: TimeEntry,
) -> bool {
    let target = base_offset + i64::from(t.relative_offset);
    let walk = |mut pos: usize, mut expected: i64| -> Option<usize> {
        loop {
            let h = scan::peek_header(data, pos)?;
            if h.base_offset < expected || h.base_offset > target {
                return None;
            }
            if h.last_offset() >= target {
                return (h.max_timestamp == t.timestamp).then_some(pos + h.total_size());
            }
            expected = h.next_offset();
            pos += h.total_size();
        }
    };
    let from_index = offset_index
        .floor(i64::from(t.relative_offset))
        .and_then(|e| {
            let pos = e.position as usize;
            walk(
                pos,
                entry_batch_base(data, pos, base_offset + i64::from(e.relative_offset))?,
            )
        });
    let Some(mut pos) = from_index.or_else(|| walk(0, base_offset)) else {
        return false;
    };
    while pos < data.len() {
        match scan::peek_header(data, pos) {
            Some(h) if h.max_timestamp <= t.timestamp => pos += h.total_size(),
            _ => return false,
        }
    }
    true
}

/// The batch of `size` bytes at `pos`, its CRC checked if `verify_crc`; damage is reported with
/// the file and position.
fn batch_at(
    path: &Path,
    data: &Bytes,
    pos: usize,
    size: usize,
    verify_crc: bool,
) -> Result<RecordBatch> {
    let bytes = data.slice(pos..pos + size);
    let batch = if verify_crc {
        RecordBatch::parse_crc_only(bytes)
    } else {
        RecordBatch::parse_header_only(bytes)
    };
    batch.map_err(|e| Error::corrupt(path, pos as u64, e.to_string()))
}

/// The span of the batch at `pos` (header fields a walk needs, checked); damage is reported
/// as [`header_at`] reports it.
fn span_at(path: &Path, data: &[u8], pos: usize) -> Result<BatchSpan> {
    if let Some(span) = data.get(pos..).and_then(peek_span) {
        return Ok(span);
    }
    // `header_at` checks all that `peek_span` checks and more, so it fails here too.
    header_at(path, data, pos)?;
    Err(Error::corrupt(path, pos as u64, "unreadable batch header"))
}

/// Parses the header at `pos`, reporting damage with the file and position.
pub(crate) fn header_at(path: &Path, data: &[u8], pos: usize) -> Result<BatchHeader> {
    let rest = data.get(pos..).unwrap_or(&[]);
    let header =
        BatchHeader::parse(rest).map_err(|e| Error::corrupt(path, pos as u64, e.to_string()))?;
    if header.total_size() > rest.len() {
        return Err(Error::corrupt(
            path,
            pos as u64,
            format!(
                "batch declares {} bytes, {} left in the file",
                header.total_size(),
                rest.len()
            ),
        ));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_as_kafka_writes_them() {
        for base in [0, 7, 42, 1_000_000_007, i64::MAX] {
            let name = file_name(base, LOG_SUFFIX);
            assert_eq!(name, format!("{base:020}.log"));
            assert_eq!(file_stem(base), format!("{base:020}"));
            assert_eq!(parse_file_name(&name, LOG_SUFFIX), Some(base));
            assert_eq!(parse_file_name(&name, INDEX_SUFFIX), None);
        }
        assert_eq!(file_name(-3, ".snapshot"), format!("{:020}.snapshot", -3));
        assert_eq!(
            parse_file_name(&file_name(-3, LOG_SUFFIX), LOG_SUFFIX),
            None
        );
        // Past i64::MAX, one digit short or long, a non-digit, a suffix of the right length.
        for bad in [
            "99999999999999999999.log",
            "0000000000000000042.log",
            "000000000000000000042.log",
            "0000000000000000004x.log",
            "00000000000000000042.lag",
            "00000000000000000042.log.deleted",
        ] {
            assert_eq!(parse_file_name(bad, LOG_SUFFIX), None, "{bad}");
        }
        assert_eq!(
            parse_file_name("00000000000000000042.timeindex", TIME_INDEX_SUFFIX),
            Some(42)
        );
    }

    #[test]
    fn segment_paths_are_the_directory_joined_with_each_file_name() {
        for dir in ["/data/t-0", "/data/t-0/", "t-0", "", "/", "./a//b"] {
            let dir = Path::new(dir);
            for base in [0, 42, i64::MAX, -3] {
                let paths = SegmentPaths::new(dir, base);
                // (Byte for byte: `Path`'s `==` compares components, `a//b` == `a/b`.)
                for (got, suffix) in [
                    (&paths.log, LOG_SUFFIX),
                    (&paths.index, INDEX_SUFFIX),
                    (&paths.time_index, TIME_INDEX_SUFFIX),
                ] {
                    let want = dir.join(file_name(base, suffix));
                    assert_eq!(got.as_os_str(), want.as_os_str());
                }
            }
        }
    }

    fn entry(relative_offset: i32, position: i32) -> OffsetEntry {
        OffsetEntry {
            relative_offset,
            position,
        }
    }

    #[test]
    fn prefetch_bound_stays_between_the_entries_and_follows_the_offset() {
        let (a, b) = (Some(entry(100, 4_000)), Some(entry(124, 8_096)));
        // Never past the next entry's batch, never before the guess.
        let mut last = 0;
        for relative in 100..124 {
            let bound = prefetch_bound(a, b, relative);
            assert!(bound <= 8_096, "{relative}: {bound}");
            assert!(bound >= last, "monotone in the offset sought");
            let guess = 4_000 + 4_096 * (relative as usize - 100) / 24;
            assert!(bound >= guess.min(8_096), "{relative}: {bound} < {guess}");
            last = bound;
        }
        // Near the first entry, much less than the whole span.
        assert!(prefetch_bound(a, b, 100) < 5_000);
        // No next entry: no bound. From the segment's start: interpolated from position 0.
        assert_eq!(prefetch_bound(a, None, 110), usize::MAX);
        assert!(prefetch_bound(None, Some(entry(20, 4_000)), 0) < 1_000);
        // Entries that make no sense (the walk checks them) give the plain bound.
        assert_eq!(
            prefetch_bound(Some(entry(5, 900)), Some(entry(5, 100)), 5),
            100
        );
        assert_eq!(
            prefetch_bound(Some(entry(5, 100)), Some(entry(9, 900)), 2),
            usize::MAX
        );
        assert_eq!(
            prefetch_bound(Some(entry(5, -1)), Some(entry(9, 900)), 6),
            usize::MAX
        );
        assert_eq!(
            prefetch_bound(Some(entry(0, 0)), Some(entry(i32::MAX, i32::MAX)), i64::MAX),
            i32::MAX as usize
        );
        let far_below =
            prefetch_bound(Some(entry(i32::MAX, 0)), Some(entry(i32::MAX, 9)), i64::MIN);
        assert_eq!(far_below, usize::MAX);
    }
}
