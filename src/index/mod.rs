//! Sparse indexes of a segment, memory-mapped: the offset index (`.index`) and the time index
//! (`.timeindex`), laid out byte for byte as Kafka lays them out (big-endian).
//!
//! An index file is preallocated to `segment_index_bytes` (rounded down to whole entries) while its
//! segment is active, and trimmed to its entries when the segment rolls or the log closes. Index
//! files carry no checksum: on load every entry is checked against its neighbours and against the
//! log file, and a bad index is rebuilt from the log, never trusted.

mod offset_index;
mod time_index;

use crate::fs::File;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use offset_index::OffsetEntry;
pub use time_index::TimeEntry;

use crate::error::{Error, Result};
use crate::mmap::{AppendFailed, MapWriter, SharedMap};

/// How far ahead of its entries an active index reserves disk blocks (see `mmap`): 8,192
/// offset entries, the index of ~32 MiB of log at the default interval.
const RESERVE_AHEAD_BYTES: usize = 64 * 1024;

/// A fixed-size index entry.
pub trait IndexEntry: Copy + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Bytes per entry on disk.
    const SIZE: usize;
    /// What the index is called in error messages.
    const NAME: &'static str;
    /// Decodes an entry from exactly [`Self::SIZE`] bytes (shorter input decodes as zeros).
    fn decode(bytes: &[u8]) -> Self;
    /// Encodes the entry into exactly [`Self::SIZE`] bytes.
    fn encode(&self, out: &mut [u8]);
    /// The key the index is searched by (relative offset, or timestamp).
    fn key(&self) -> i64;
    /// The relative offset the entry points to.
    fn relative_offset(&self) -> i32;
    /// Checks the entry after `prev` (if any) in a segment whose log holds `log_size` bytes and
    /// whose relative offsets stay below `relative_end` (exclusive).
    fn check(
        &self,
        prev: Option<&Self>,
        log_size: u64,
        relative_end: i64,
    ) -> Result<(), &'static str>;
}

fn entry_at<E: IndexEntry>(bytes: &[u8], i: usize) -> E {
    let start = i * E::SIZE;
    E::decode(bytes.get(start..start + E::SIZE).unwrap_or(&[]))
}

/// Index of the last entry whose key is `<= target` in `bytes` (whole entries, keys
/// non-decreasing), searching the most recent entries first as Kafka does: lookups cluster at the
/// tail, and those pages stay in the page cache.
fn floor_index<E: IndexEntry>(bytes: &[u8], target: i64) -> Option<usize> {
    let n = bytes.len() / E::SIZE;
    if n == 0 || entry_at::<E>(bytes, 0).key() > target {
        return None;
    }
    // Entries in the last 8 KiB.
    let warm = (8192 / E::SIZE).min(n);
    let (mut lo, mut hi) = if entry_at::<E>(bytes, n - warm).key() <= target {
        (n - warm, n)
    } else {
        (0, n - warm)
    };
    // Invariant: key(lo) <= target, and every index >= hi has key > target (or is past the end).
    let mut lo_key = entry_at::<E>(bytes, lo).key();
    // The first probes interpolate: offsets and timestamps usually grow about evenly with the
    // entries, so a guess lands at or next to the answer, and each probe of a large index is a
    // cache miss. Then plain halving, so a skewed index costs at most these extra probes.
    let mut guesses = 3;
    while hi - lo > 1 {
        let mid = if guesses > 0 {
            guesses -= 1;
            let last = hi - 1;
            let last_key = entry_at::<E>(bytes, last).key();
            if last_key <= target {
                return Some(last);
            }
            hi = last;
            if hi - lo <= 1 {
                break;
            }
            // lo_key <= target < last_key, so the fraction is in [0, 1). A guess needs no
            // exactness (it is clamped, then checked like any probe): f64 is enough, and
            // cheaper than the 128-bit division exact arithmetic would need.
            let fraction = (target as f64 - lo_key as f64) / (last_key as f64 - lo_key as f64);
            let ahead = (fraction * (last - lo) as f64) as usize;
            lo + ahead.clamp(1, hi - lo - 1)
        } else {
            lo + (hi - lo) / 2
        };
        let key = entry_at::<E>(bytes, mid).key();
        if key <= target {
            lo = mid;
            lo_key = key;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// Read side of an index: a shared map of whole entries.
#[derive(Debug, Clone)]
pub struct IndexReader<E> {
    map: Arc<SharedMap>,
    _entry: std::marker::PhantomData<fn() -> E>,
}

impl<E: IndexEntry> IndexReader<E> {
    pub(crate) fn new(map: Arc<SharedMap>) -> Self {
        IndexReader {
            map,
            _entry: std::marker::PhantomData,
        }
    }

    /// Opens an index file read-only, taking its whole length as entries, up to its first hole:
    /// a file grown sparse (as an active segment's index is) holds no entry in pages that were
    /// never written, and reading them through the map would fault on a full tmpfs (SIGBUS).
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened or mapped, [`Error::Corrupt`] if its length is
    /// not a whole number of entries.
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "stat", e))?
            .len();
        let len =
            usize::try_from(len).map_err(|_| Error::corrupt(path, 0, "index file too large"))?;
        if len % E::SIZE != 0 {
            return Err(Error::corrupt(
                path,
                (len - len % E::SIZE) as u64,
                format!("{} length {len} is not a multiple of {}", E::NAME, E::SIZE),
            ));
        }
        let backed =
            crate::mmap::backed_prefix(&file, len).map_err(|e| Error::io(path, "seek", e))?;
        let map = SharedMap::read_only_of(&file, len as u64, backed - backed % E::SIZE)
            .map_err(|e| Error::io(path, "mmap", e))?;
        Ok(Self::new(map))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.published() / E::SIZE
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last entry whose key is `<= target`.
    pub fn floor(&self, target: i64) -> Option<E> {
        self.floor_at(target).map(|(_, e)| e)
    }

    /// [`IndexReader::floor`] with the entry's position in the index.
    pub fn floor_at(&self, target: i64) -> Option<(usize, E)> {
        self.map
            .with_published(|b| floor_index::<E>(b, target).map(|i| (i, entry_at(b, i))))
    }

    /// Entry `i`, if the index has that many.
    pub fn entry(&self, i: usize) -> Option<E> {
        self.map
            .with_published(|b| (i < b.len() / E::SIZE).then(|| entry_at(b, i)))
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<E> {
        self.map
            .with_published(|b| (b.len() >= E::SIZE).then(|| entry_at(b, b.len() / E::SIZE - 1)))
    }

    /// All entries, in order.
    pub fn entries(&self) -> Vec<E> {
        self.map
            .with_published(|b| b.chunks_exact(E::SIZE).map(E::decode).collect())
    }

    /// Checks every entry; on the first bad one returns its byte position and what is wrong.
    pub fn validate(&self, log_size: u64, relative_end: i64) -> Result<(), (u64, &'static str)> {
        self.map.with_published(|b| {
            let mut prev: Option<E> = None;
            for (i, chunk) in b.chunks_exact(E::SIZE).enumerate() {
                let e = E::decode(chunk);
                e.check(prev.as_ref(), log_size, relative_end)
                    .map_err(|why| ((i * E::SIZE) as u64, why))?;
                prev = Some(e);
            }
            Ok(())
        })
    }
}

/// Write side of an index: the active segment's preallocated, writable map.
#[derive(Debug)]
pub(crate) struct IndexWriter<E> {
    path: PathBuf,
    map: MapWriter,
    _entry: std::marker::PhantomData<fn() -> E>,
}

impl<E: IndexEntry> IndexWriter<E> {
    /// Opens (creating if absent) the index at `path` for appending: keeps `entries` existing
    /// entries, preallocates the file to `max_bytes` rounded down to whole entries.
    pub(crate) fn open(path: &Path, max_bytes: usize, entries: usize) -> Result<Self> {
        let published = entries * E::SIZE;
        // An index written under a larger `segment_index_bytes` keeps its entries (it is then
        // full, and the segment rolls on its next append).
        let capacity = (max_bytes - max_bytes % E::SIZE).max(published);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io(path, "open", e))?;
        crate::durability::created(path);
        // Anything past the kept entries is stale: cut it (a file no longer than them has
        // nothing to cut: a new one), then grow back with zeros.
        let file_len = file
            .metadata()
            .map_err(|e| Error::io(path, "stat", e))?
            .len();
        if file_len > published as u64 {
            file.set_len(published as u64)
                .map_err(|e| Error::io(path, "preallocate", e))?;
        }
        file.set_len(capacity as u64)
            .map_err(|e| Error::io(path, "preallocate", e))?;
        let map = MapWriter::of_len(
            file,
            capacity as u64,
            capacity,
            published,
            RESERVE_AHEAD_BYTES,
        )
        .map_err(|e| Error::io(path, "mmap", e))?
        .without_read_around();
        Ok(IndexWriter {
            path: path.to_owned(),
            map,
            _entry: std::marker::PhantomData,
        })
    }

    /// The read side.
    pub(crate) fn reader(&self) -> IndexReader<E> {
        IndexReader::new(Arc::clone(self.map.shared()))
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len() / E::SIZE
    }

    pub(crate) fn max_entries(&self) -> usize {
        self.map.shared().capacity() / E::SIZE
    }

    /// Appends an entry. The caller keeps entries in order; a full index is an error.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the index is full, [`Error::Io`] if the file system is (or fails).
    pub(crate) fn append(&mut self, entry: E) -> Result<()> {
        let at = self.map.len() as u64;
        self.map
            .append_with(E::SIZE, |dst| entry.encode(dst))
            .map(|_| ())
            .map_err(|e| match e {
                AppendFailed::Full => {
                    Error::corrupt(&self.path, at, format!("{} is full", E::NAME))
                }
                AppendFailed::Io(e) => Error::io(&self.path, "write", e),
            })
    }

    /// True if no reader holds the index's map.
    pub(crate) fn is_unique(&mut self) -> bool {
        self.map.is_unique()
    }

    /// How many entries to keep so that every kept one satisfies `keep` (entries are checked
    /// from the end: the cost is the number removed).
    pub(crate) fn kept_while(&self, keep: impl Fn(&E) -> bool) -> usize {
        let reader = self.reader();
        let mut n = reader.len();
        while n > 0 && reader.entry(n - 1).is_some_and(|e| !keep(&e)) {
            n -= 1;
        }
        n
    }

    /// Cuts the index to its first `entries` entries, in place. `Ok(false)` (nothing changed) if
    /// a reader holds the map.
    pub(crate) fn truncate(&mut self, entries: usize) -> Result<bool> {
        self.map
            .truncate(entries * E::SIZE)
            .map_err(|e| Error::io(&self.path, "truncate", e))
    }

    /// Writes dirty entries to disk.
    pub(crate) fn flush(&self) -> Result<()> {
        self.map
            .shared()
            .flush_range(0, self.map.len())
            .map_err(|e| Error::io(&self.path, "msync", e))?;
        crate::durability::range_synced(&self.path, 0, self.map.len());
        Ok(())
    }

    /// Cuts the file to its entries, syncing nothing, ignoring a failure (the segment is given
    /// up after a failed write; see `ActiveSegment::cut_to_contents`).
    pub(crate) fn cut_to_entries(&self) {
        let _ = self.map.file().set_len(self.map.len() as u64);
    }

    /// Cuts the file to its entries and syncs it (the segment is no longer active). The map
    /// stays valid for the published entries.
    pub(crate) fn trim(&self) -> Result<()> {
        self.flush()?;
        let file = self.map.file();
        file.set_len(self.map.len() as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(&self.path, "trim", e))?;
        crate::durability::file_synced(&self.path);
        Ok(())
    }
}

/// Rebuilds an index from scratch: writes `entries` to a temporary file, syncs it, and renames
/// it over `path`.
pub(crate) fn write_index_file<E: IndexEntry>(path: &Path, entries: &[E]) -> Result<()> {
    let mut buf = vec![0u8; entries.len() * E::SIZE];
    for (chunk, e) in buf.chunks_exact_mut(E::SIZE).zip(entries) {
        e.encode(chunk);
    }
    crate::checkpoint::write_atomically(path, &buf)
}

#[cfg(test)]
mod tests;
