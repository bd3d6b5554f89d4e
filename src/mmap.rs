//! The one home of `unsafe` in partlog: memory maps of segment and index files.
//!
//! # The publication protocol
//!
//! A [`SharedMap`] is a shared (`MAP_SHARED`) mapping of a file plus a *published length*. Bytes
//! below the published length are immutable for as long as any reference to the map exists;
//! bytes at or above it are owned by the map's single [`MapWriter`] and are never shown to a
//! reader. The writer copies new bytes above the published length and then moves the published
//! length forward with a `Release` store; a reader loads it with `Acquire` and only looks below
//! it. So readers never see a half-written batch and never race with the writer.
//!
//! The invariants every `unsafe` block below relies on:
//! 1. `raw` maps at least `capacity` bytes of the file and lives as long as the `SharedMap`
//!    (readers' [`Bytes`] hold an `Arc<SharedMap>`, so the mapping outlives every slice of it).
//!    Under `cfg(fuzzing)`, where `crate::fs` is an in-memory file system, `raw` is a
//!    `MemRaw`: the file's `MemBuf`, whose allocations are at least `capacity` bytes from
//!    the map's creation on and are freed only with the buffer, which the map holds.
//! 2. `published <= capacity` at all times.
//! 3. At most one `MapWriter` exists per `SharedMap` (it is created only together with the map
//!    and is not `Clone`), and it writes only at or above `published`.
//! 4. The published length only moves backward (truncation) when the writer holds the only
//!    reference to the map (`Arc::get_mut`), so no reader can hold a slice of the bytes that
//!    are then rewritten.
//! 5. No other mapping writes the same file region: the log holds one writer per segment file and
//!    an exclusive lock on its directory against other processes. A file truncated or rewritten
//!    behind partlog's back (by another program) is outside this contract, as for any mmap user
//!    (see memmap2's documentation): reads of pages cut off the file would fault.
//!
//! # A full file system
//!
//! Writable files are preallocated sparse (`set_len`): their pages have no disk blocks until
//! written. A store into such a page through the map makes the kernel find a block at the page
//! fault, and when the file system has none it cannot return an error: it raises SIGBUS, which
//! kills the process. So the writer never stores into a page whose blocks it has not reserved:
//! before a store past the reserved prefix it calls `fallocate` for the next `reserve_ahead`
//! bytes (or, if that much is not free, for exactly the pages the store needs), and a full disk
//! is the `ENOSPC` of that call, returned as an I/O error before anything is written. A file
//! system without `fallocate` (`EOPNOTSUPP`) gets every append through the file (`pwrite`,
//! which returns `ENOSPC` itself) instead. Large appends go through `pwrite` anyway; they
//! reserve ahead too, for speed, unless the file was flushed lately
//! ([`MapWriter::append_by_file`]). A cut keeps its blocks where it can zero them in place
//! ([`MapWriter::truncate`]). Readers never fault in a page the writer did not
//! write: they look only below the published length. Recovery, which reads what a crashed writer
//! left (a sparse preallocated tail), looks on tmpfs only below the file's first hole
//! ([`backed_prefix`]).
//! (Outside Linux nothing is reserved.)
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
#[cfg(not(fuzzing))]
use memmap2::{MmapOptions, MmapRaw};

use crate::fs::{File, FileExt};

/// What a [`SharedMap`] maps through: a `MAP_SHARED` mapping, or under `cfg(fuzzing)` the
/// buffer of an in-memory file (see `MemBuf`).
#[cfg(not(fuzzing))]
type Raw = MmapRaw;
#[cfg(fuzzing)]
type Raw = MemRaw;

/// How many of the first `len` bytes of `file` a reader may look at through a map of it: on a
/// file system whose pages are its blocks (tmpfs, hugetlbfs), up to the file's first hole (a
/// range with no pages); elsewhere, or with no hole there, `len`.
///
/// Recovery scans what a crashed writer left, and a crash leaves the active segment's
/// preallocated tail sparse. Reading a hole through a shared map makes tmpfs allocate a page
/// for it, and when none is free the kernel raises SIGBUS, as for a store (a disk file system
/// maps a zero page cache page and needs no block). The bytes of a hole read as zeros, and
/// batches are written from the start of a segment without gaps, so what lies from the first
/// hole on is preallocated space, never a written batch: a scan of the prefix sees everything a
/// scan of the whole length would, and ends where the zeros would have stopped it. Only tmpfs
/// needs the cut, so only there is `SEEK_HOLE`'s word taken. Where holes cannot be asked for
/// (another OS, a file system without `SEEK_HOLE`), the whole `len`.
///
/// # Errors
/// The `lseek` failing other than for lack of support.
pub(crate) fn backed_prefix(file: &File, len: usize) -> io::Result<usize> {
    // An in-memory file has no holes.
    #[cfg(fuzzing)]
    {
        let _ = file;
        Ok(len)
    }
    #[cfg(all(target_os = "linux", not(fuzzing)))]
    {
        if len == 0 {
            return Ok(0);
        }
        match rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(0)) {
            Ok(hole) if usize::try_from(hole).is_ok_and(|h| h < len) => {
                // `f_type` and the magics are `long`-sized: i64 here, narrower elsewhere.
                #[allow(clippy::unnecessary_cast)]
                let f_type = rustix::fs::fstatfs(file)?.f_type as i64;
                #[allow(clippy::unnecessary_cast)]
                let pages_are_blocks =
                    f_type == libc::TMPFS_MAGIC as i64 || f_type == libc::HUGETLBFS_MAGIC as i64;
                Ok(if pages_are_blocks { hole as usize } else { len })
            }
            Ok(_) => Ok(len),
            // No hole support.
            Err(e) if e == rustix::io::Errno::INVAL => Ok(len),
            // Offset 0 is at or past the end: the file was emptied under us; nothing to read.
            Err(e) if e == rustix::io::Errno::NXIO => Ok(0),
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(any(target_os = "linux", fuzzing)))]
    {
        let _ = file;
        Ok(len)
    }
}

/// Asks the CPU to start loading every cache line of `data` (a hint: nothing is read, no fault
/// can happen). A walk over batch headers is a chain of dependent loads, one cache miss after the
/// other; prefetching the region first overlaps those misses.
#[inline]
pub(crate) fn prefetch(data: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in data.chunks(64) {
        // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has (it is part of the
        // target's baseline features). A prefetch does not access memory architecturally: it
        // cannot fault or be observed, and the pointer is into a live slice anyway.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast::<i8>(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// Starts loading the first cache line of each 4 KiB page after the first that `data` spans.
/// A pass over bytes that are not cached (a CRC) then finds each page's table walk and first
/// miss already under way: the hardware prefetcher does not cross page boundaries, and would
/// otherwise start each page cold. (A random 10.8 KB batch: ~10 % faster to CRC here.)
#[inline]
pub(crate) fn prefetch_pages(data: &[u8]) {
    let start = data.as_ptr() as usize;
    // The offset in `data` of the next page boundary.
    let mut at = (start | 4095) + 1 - start;
    while let Some(b) = data.get(at) {
        prefetch(std::slice::from_ref(b));
        at += 4096;
    }
}

/// A mapping of a file with a published (readable) prefix. See the module docs.
#[derive(Debug)]
pub(crate) struct SharedMap {
    /// `None` when `capacity` is 0 (an empty file cannot be mapped).
    raw: Option<Raw>,
    capacity: usize,
    published: AtomicUsize,
}

impl SharedMap {
    /// Maps `capacity` bytes of `file`, whose length is `file_len` (as the caller last read it
    /// with a `stat` of this descriptor or set it with `set_len`: a caller that just did either
    /// need not pay for another `stat`). Invariant 1 rests on `file_len >= capacity`, checked here.
    fn map(
        file: &File,
        file_len: u64,
        capacity: usize,
        published: usize,
        writable: bool,
    ) -> io::Result<Self> {
        if published > capacity {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "published length beyond the mapping",
            ));
        }
        if file_len < capacity as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("file of {file_len} bytes is shorter than the {capacity}-byte mapping"),
            ));
        }
        #[cfg(not(fuzzing))]
        let raw = if capacity == 0 {
            None
        } else if writable {
            Some(MmapOptions::new().len(capacity).map_raw(file)?)
        } else {
            Some(MmapOptions::new().len(capacity).map_raw_read_only(file)?)
        };
        #[cfg(fuzzing)]
        let raw = {
            let _ = writable;
            let buf = file.mem_buf()?;
            (capacity > 0).then(|| MemRaw::new(buf, capacity))
        };
        Ok(SharedMap {
            raw,
            capacity,
            published: AtomicUsize::new(published),
        })
    }

    /// [`SharedMap::read_only_of`], reading the file's length itself (for tests).
    #[cfg(test)]
    pub(crate) fn read_only(file: &File, len: usize) -> io::Result<Arc<SharedMap>> {
        let file_len = file.metadata()?.len();
        Self::read_only_of(file, file_len, len)
    }

    /// Maps the first `len` bytes of `file` read-only, all of them published. `file_len` is the
    /// file's length as the caller has just read it with a `stat` of `file`: the map takes no
    /// `stat` of its own.
    pub(crate) fn read_only_of(
        file: &File,
        file_len: u64,
        len: usize,
    ) -> io::Result<Arc<SharedMap>> {
        Ok(Arc::new(Self::map(file, file_len, len, len, false)?))
    }

    /// Bytes readers may look at.
    pub(crate) fn published(&self) -> usize {
        self.published.load(Ordering::Acquire)
    }

    /// Size of the mapping.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Runs `f` over the published bytes.
    pub(crate) fn with_published<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        let len = self.published();
        match &self.raw {
            None => f(&[]),
            // SAFETY: `len` was published with Release and loaded with Acquire, so the writes
            // below it happened before; `len <= capacity` (invariant 2) so the range lies in the
            // live mapping (invariant 1); bytes below `published` are not written while this
            // borrow of `self` lasts (invariants 3 and 4: truncation needs the map uniquely).
            Some(raw) => f(unsafe { std::slice::from_raw_parts(raw.as_ptr(), len) }),
        }
    }

    /// A zero-copy [`Bytes`] of `start..end`, or `None` if that range is not published.
    pub(crate) fn slice(self: &Arc<Self>, start: usize, end: usize) -> Option<Bytes> {
        if start > end || end > self.published() {
            return None;
        }
        if start == end {
            return Some(Bytes::new());
        }
        Some(Bytes::from_owner(MapSlice {
            map: Arc::clone(self),
            start,
            len: end - start,
        }))
    }

    /// Writes the dirty pages of `start..end` to the file and waits for the device (msync).
    pub(crate) fn flush_range(&self, start: usize, end: usize) -> io::Result<()> {
        match &self.raw {
            Some(raw) if end > start && end <= self.capacity => raw.flush_range(start, end - start),
            _ => Ok(()),
        }
    }
}

/// The owner behind a [`Bytes`] that points into a map.
struct MapSlice {
    map: Arc<SharedMap>,
    start: usize,
    len: usize,
}

impl AsRef<[u8]> for MapSlice {
    fn as_ref(&self) -> &[u8] {
        match &self.map.raw {
            // SAFETY: `SharedMap::slice` built this only for `start + len <= published`, and the
            // `Arc` held here keeps the mapping alive (invariant 1) and keeps those bytes
            // immutable (invariant 4: the writer cannot truncate while this reference exists).
            Some(raw) => unsafe {
                std::slice::from_raw_parts(raw.as_ptr().add(self.start), self.len)
            },
            None => &[],
        }
    }
}

/// The single writer of a [`SharedMap`]. Not `Clone`: see invariant 3. It owns the file, and
/// reserves the file's blocks ahead of its stores (see "A full file system" in the module docs).
#[derive(Debug)]
pub(crate) struct MapWriter {
    shared: Arc<SharedMap>,
    file: File,
    /// Bytes `0..reserved` of the file have disk blocks: written, or reserved with `fallocate`.
    /// Always a multiple of `page` or equal to the capacity, so every page the writer stores
    /// into below it is backed whole.
    reserved: usize,
    /// How much a reservation reaches past the bytes that need it (fewer `fallocate` calls).
    reserve_ahead: usize,
    /// The page size.
    page: usize,
    /// The file system cannot reserve blocks: appends go through the file.
    through_file: bool,
    /// Bytes `0..prefaulted` of the map have writable page-table entries already (faulted in
    /// ahead with `MADV_POPULATE_WRITE`, or written), within `reserved`.
    prefaulted: usize,
    /// How far past an append the map is faulted in ahead; 0: never (every new page faults at
    /// its first store).
    prefault_ahead: usize,
    /// Bytes at or above `written` are zeros: no append of this writer reached them (one that
    /// failed may have written part of its bytes), and they were zeros when it was made (the
    /// callers map files whose bytes above the published length are zeros: preallocated, or
    /// cut). What [`MapWriter::truncate`] must zero is below it.
    written: usize,
}

/// Why an append failed.
#[derive(Debug)]
pub(crate) enum AppendFailed {
    /// No room in the map.
    Full,
    /// The write, or the reservation of its blocks, failed (`ENOSPC` on a full file system);
    /// nothing was published.
    Io(io::Error),
}

impl MapWriter {
    /// [`MapWriter::of_len`], reading the file's length itself (for tests).
    #[cfg(test)]
    pub(crate) fn new(
        file: File,
        capacity: usize,
        published: usize,
        reserve_ahead: usize,
    ) -> io::Result<Self> {
        let file_len = file.metadata()?.len();
        Self::of_len(file, file_len, capacity, published, reserve_ahead)
    }

    /// Maps `capacity` bytes of `file` (which must be at least that long) read-write; the first
    /// `published` bytes are taken as already written. Blocks are reserved `reserve_ahead`
    /// bytes at a time past what an append needs. `file_len` is the file's length as the caller
    /// has just set it (`set_len`) or read it (`stat`) on this descriptor: the map takes no
    /// `stat` of its own.
    pub(crate) fn of_len(
        file: File,
        file_len: u64,
        capacity: usize,
        published: usize,
        reserve_ahead: usize,
    ) -> io::Result<Self> {
        let shared = Arc::new(SharedMap::map(&file, file_len, capacity, published, true)?);
        let page = page_size();
        Ok(MapWriter {
            shared,
            file,
            // What was published was written; the page holding its end may not be whole.
            reserved: published - published % page,
            reserve_ahead,
            page,
            through_file: false,
            prefaulted: 0,
            prefault_ahead: 0,
            written: published,
        })
    }

    /// Faults the map in `ahead` bytes past each append's end, in one `madvise` call per
    /// `ahead` bytes, instead of one page fault per page at its first store (Linux 5.14+;
    /// elsewhere, or if the kernel refuses, pages fault as before). In a virtual machine a write
    /// fault on a new page of a shared file map costs several microseconds; populating a run of
    /// pages costs a fraction of that per page, and makes large appends through the map cheaper
    /// than `pwrite` (see [`MapWriter::prefaults`]). Only reserved pages are touched, so a full
    /// disk is still an error of the reservation and never a fault. The pages are dirtied ahead
    /// of the data: at most `ahead` bytes of zeros may be written back before the appends that
    /// overwrite them.
    pub(crate) fn prefault_ahead(mut self, ahead: usize) -> Self {
        if cfg!(all(target_os = "linux", not(fuzzing))) && self.shared.raw.is_some() {
            self.prefault_ahead = ahead;
            self.prefaulted = self.len() - self.len() % self.page;
        }
        self
    }

    /// Turns off the kernel's read-around for faults in the map (`MADV_RANDOM`): a fault on a
    /// page that is not in the page cache then brings in that page alone. Without it, Linux
    /// brings in up to the device's read-ahead size around the page (8 MiB on the virtio disk
    /// of the VM partlog is measured on), zero-filled where the file is sparse. For a map that
    /// grows by a few bytes at a time through a sparse preallocation (an index: a 1 GiB
    /// segment's uses 2-3 MiB of its 10 MiB) that is megabytes zero-filled for nothing at the
    /// first store, on every new segment. Only advice: where the kernel refuses it, or outside
    /// Linux, faults stay as they were.
    pub(crate) fn without_read_around(self) -> Self {
        #[cfg(all(target_os = "linux", not(fuzzing)))]
        if let Some(raw) = &self.shared.raw {
            let _ = raw.advise(memmap2::Advice::Random);
        }
        self
    }

    /// True if appends through the map find their pages faulted in already (so that copying
    /// into the map is cheaper than a `pwrite` for appends of a few pages).
    pub(crate) fn prefaults(&self) -> bool {
        self.prefault_ahead > 0 && !self.through_file
    }

    /// Makes sure the map's pages up to `end` are faulted in, and `prefault_ahead` more (within
    /// the reserved bytes). Never fails: if the kernel refuses, later stores fault page by page,
    /// and prefaulting stops.
    fn prefault(&mut self, end: usize) {
        if end <= self.prefaulted || self.prefault_ahead == 0 {
            return;
        }
        let Some(raw) = &self.shared.raw else {
            return;
        };
        let from = self.prefaulted;
        let to = end
            .saturating_add(self.prefault_ahead)
            .div_ceil(self.page)
            .saturating_mul(self.page)
            .min(self.reserved);
        if to <= from {
            return;
        }
        if populate_write(raw, from, to).is_ok() {
            self.prefaulted = to;
        } else {
            self.prefault_ahead = 0;
        }
    }

    /// The map, for readers.
    pub(crate) fn shared(&self) -> &Arc<SharedMap> {
        &self.shared
    }

    /// The mapped file (for syncs and trims; writes go through the append methods).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        // Only this writer stores `published`, so a relaxed load sees its own last store.
        self.shared.published.load(Ordering::Relaxed)
    }

    /// Makes sure bytes `..end` (at most the capacity) have disk blocks. `Ok(false)` if the file
    /// system cannot reserve blocks: then stores into the map are not safe, and the caller writes
    /// through the file.
    fn reserve(&mut self, end: usize) -> io::Result<bool> {
        if end <= self.reserved {
            return Ok(true);
        }
        if self.through_file {
            return Ok(false);
        }
        let capacity = self.shared.capacity;
        let round_up = |n: usize| {
            n.div_ceil(self.page)
                .saturating_mul(self.page)
                .min(capacity)
        };
        let needed = round_up(end);
        let ahead = round_up(end.saturating_add(self.reserve_ahead));
        let from = self.reserved;
        let r = match allocate(&self.file, from, ahead) {
            // Not that much free: exactly the pages this append needs.
            Err(e) if is_no_space(&e) && ahead > needed => {
                allocate(&self.file, from, needed).map(|()| needed)
            }
            r => r.map(|()| ahead),
        };
        match r {
            Ok(to) => {
                self.reserved = to;
                Ok(true)
            }
            Err(e) if is_unsupported(&e) => {
                self.through_file = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Notes that bytes `..end` were written (so they have blocks).
    fn written_to(&mut self, end: usize) {
        self.reserved = self.reserved.max(end - end % self.page);
        if self.prefault_ahead > 0 {
            // Those pages are in the page cache now: nothing to fault in ahead of them.
            self.prefaulted = self.prefaulted.max(end - end % self.page);
        }
    }

    /// Appends `len` bytes written by `fill` into the unpublished region, then publishes them.
    /// Returns the position of the first byte. The bytes' pages are reserved first, so a full
    /// file system is an [`AppendFailed::Io`] and never a fault.
    pub(crate) fn append_with(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<usize, AppendFailed> {
        let pos = self.len();
        if len > self.shared.capacity - pos {
            return Err(AppendFailed::Full);
        }
        if len == 0 {
            return Ok(pos);
        }
        if self.shared.raw.is_none() {
            return Err(AppendFailed::Full);
        }
        if !self.reserve(pos + len).map_err(AppendFailed::Io)? {
            let mut buf = vec![0u8; len];
            fill(&mut buf);
            return self.append_by_file(len, false, |file, at| write_at(file, &buf, at));
        }
        self.prefault(pos + len);
        let Some(raw) = &self.shared.raw else {
            return Err(AppendFailed::Full);
        };
        self.written = self.written.max(pos + len);
        // SAFETY: `pos + len <= capacity`, checked above, so the range is inside the live
        // mapping (invariant 1); it is at or above `published`, so no reader looks at it
        // (the protocol), and `&mut self` on the only writer (invariant 3) makes this the only
        // mutable view. The mapping was created writable in `MapWriter::new`. Its pages have
        // disk blocks (`reserve` above), so the stores cannot fault for want of space.
        let dst = unsafe { std::slice::from_raw_parts_mut(raw.as_mut_ptr().add(pos), len) };
        fill(dst);
        #[cfg(fuzzing)]
        raw.buf.touch();
        self.shared.published.store(pos + len, Ordering::Release);
        Ok(pos)
    }

    /// Appends `len` bytes that `write` puts into the file at the position it is given (with
    /// `pwrite`, through the page cache this shared map also sees), then publishes them.
    /// Returns the position of the first byte.
    ///
    /// For large appends this is cheaper than copying through the map: a write fault on a new
    /// page of the map zero-fills the page before the copy overwrites it, `write` does not.
    /// Readers see the bytes through the map once published: on Linux a `MAP_SHARED` map and
    /// `write` share the same page-cache pages. A full file system is the write's `ENOSPC`.
    /// With `reserve`, the bytes' blocks are reserved first, as for a store into the map.
    pub(crate) fn append_by_file(
        &mut self,
        len: usize,
        reserve: bool,
        write: impl FnOnce(&File, u64) -> io::Result<()>,
    ) -> Result<usize, AppendFailed> {
        let pos = self.len();
        if len > self.shared.capacity - pos {
            return Err(AppendFailed::Full);
        }
        // `pwrite` needs no reservation (a full disk is its own `ENOSPC`); `reserve` is the
        // caller's choice of speed (see `ActiveSegment::reserves_before_pwrite`). A file system
        // that cannot reserve (`Ok(false)`) takes the write as it is.
        if reserve {
            self.reserve(pos + len).map_err(AppendFailed::Io)?;
        }
        // The bytes land at or above `published`, where no reader looks (invariant 3 holds:
        // this writer is the only one writing there). A failed write may leave part of them.
        self.written = self.written.max(pos + len);
        write(&self.file, pos as u64).map_err(AppendFailed::Io)?;
        self.written_to(pos + len);
        self.shared.published.store(pos + len, Ordering::Release);
        Ok(pos)
    }

    /// Appends a copy of `data`; returns its position.
    #[cfg(test)]
    pub(crate) fn append(&mut self, data: &[u8]) -> Result<usize, AppendFailed> {
        self.append_with(data.len(), |dst| dst.copy_from_slice(data))
    }

    /// True if no reader holds a reference to the map (then [`MapWriter::truncate`] succeeds).
    pub(crate) fn is_unique(&mut self) -> bool {
        Arc::get_mut(&mut self.shared).is_some()
    }

    /// Cuts the published bytes back to `new_len` and zeroes everything above it in the file, so
    /// a later crash cannot resurrect the cut bytes. Fails with `Ok(false)` (changing nothing) if
    /// any reader still holds a reference to the map: its bytes must not change under it.
    ///
    /// Where the file system can (`FALLOC_FL_ZERO_RANGE`: ext4, XFS) and the cut is at most
    /// [`ZERO_IN_PLACE_MAX`], the cut bytes are zeroed in place and keep their blocks: about a
    /// tenth of the cost of cutting the file and growing it back on ext4 (which frees the
    /// blocks, then the next appends reserve them again). Elsewhere, or for a larger cut (the
    /// range could hold holes, which zeroing in place would give blocks), the file is cut and
    /// grown back.
    pub(crate) fn truncate(&mut self, new_len: usize) -> io::Result<bool> {
        if new_len >= self.len() {
            return Ok(true);
        }
        // `get_mut` succeeds only for the sole reference, with the Acquire fence that orders all
        // earlier readers' accesses (and drops) before what follows.
        if Arc::get_mut(&mut self.shared).is_none() {
            return Ok(false);
        }
        self.shared.published.store(new_len, Ordering::Release);
        // Nobody looks above `new_len` from here: we hold the only reference.
        let end = self.written.max(new_len);
        self.written = new_len;
        // Either way the pages above the cut leave the map (the partial page stays, zeroed
        // past the cut).
        self.prefaulted = self.prefaulted.min(new_len - new_len % self.page);
        if end - new_len <= ZERO_IN_PLACE_MAX && zero_range(&self.file, new_len, end) {
            // The blocks stay: `reserved` still holds.
            return Ok(true);
        }
        // Shrinking drops the pages above `new_len` (and their blocks); growing back gives zero
        // pages without blocks.
        self.reserved = self.reserved.min(new_len - new_len % self.page);
        self.prefaulted = self.prefaulted.min(self.reserved);
        self.file.set_len(new_len as u64)?;
        self.file.set_len(self.shared.capacity as u64)?;
        Ok(true)
    }
}

/// The largest cut [`MapWriter::truncate`] zeroes in place. A follower's cut of a diverged tail
/// is far smaller; a recovery's cut of a crashed writer's preallocated tail (up to a whole
/// sparse segment) is not, and is made by cutting the file, which gives no block to its holes.
const ZERO_IN_PLACE_MAX: usize = 16 << 20;

/// Makes bytes `from..to` of `file` read as zeros, keeping the file's size and giving the range
/// blocks (`fallocate(FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)`; the kernel zeroes the partial
/// blocks at either end and drops the pages of the whole ones from the page cache and every
/// map). False, with the bytes possibly unchanged or partly zeroed, if the file system cannot
/// (tmpfs, `EOPNOTSUPP`) or fails (a full disk, `ENOSPC`): the caller then cuts the file.
#[cfg(all(target_os = "linux", not(fuzzing)))]
fn zero_range(file: &File, from: usize, to: usize) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off_t::try_from(from),
        libc::off_t::try_from(to.saturating_sub(from)),
    ) else {
        return false;
    };
    if len == 0 {
        return true;
    }
    loop {
        // SAFETY: `fallocate` takes a file descriptor and three integers and touches no memory
        // of ours; the descriptor is `file`'s, open for the whole call (it is borrowed). The
        // pages it drops from our map lie above the published length, where no reader looks
        // and the writer (the caller, `&mut`) stores nothing during the call.
        let r = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE,
                offset,
                len,
            )
        };
        if r == 0 {
            return true;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// Outside Linux, and in memory, a cut cuts the file.
#[cfg(any(not(target_os = "linux"), fuzzing))]
fn zero_range(_: &File, _: usize, _: usize) -> bool {
    false
}

/// `pwrite` of all of `buf` at `at`.
fn write_at(file: &File, buf: &[u8], at: u64) -> io::Result<()> {
    file.write_all_at(buf, at)
}

/// Faults in bytes `from..to` of the writable map `raw` for writing (`MADV_POPULATE_WRITE`),
/// as stores to each page would, without storing anything. `from` is page-aligned.
#[cfg(all(target_os = "linux", not(fuzzing)))]
fn populate_write(raw: &Raw, from: usize, to: usize) -> io::Result<()> {
    // Not in the libc crate's constants for every target yet (Linux 5.14, include/uapi/asm-generic/mman-common.h).
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    if to > raw.len() || from >= to {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "range outside the map",
        ));
    }
    loop {
        // SAFETY: the range `from..to` lies inside the live mapping `raw` (checked above; the
        // map outlives this borrow), and `from` is page-aligned, as `madvise` requires.
        // `MADV_POPULATE_WRITE` changes no byte of the file or of memory: it only faults the
        // pages in writable, as a store would, or fails with an error (never a signal: a page
        // it cannot fault in is `EFAULT`, and the caller reserved the blocks first). Our map was
        // created read-write (`MapWriter`), so write faults are allowed on it.
        let r = unsafe {
            libc::madvise(
                raw.as_mut_ptr().add(from).cast::<libc::c_void>(),
                to - from,
                MADV_POPULATE_WRITE,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The bytes of a file of the in-memory file system that `crate::fs` is under `cfg(fuzzing)`:
/// shared by every handle on the file and every map of it.
///
/// The bytes live in one zeroed allocation of `cap >= len` bytes. It only ever grows; when it
/// must, the bytes are copied into a new allocation and the old one is *retired*, not freed:
/// it stays allocated until the `MemBuf` is dropped. So a pointer taken from the buffer at any
/// time stays valid memory, for at least as many bytes as the buffer had then, for as long as
/// the `MemBuf` lives (maps hold it by `Arc`): this is what makes a map of a `MemBuf` as safe
/// as a `MAP_SHARED` mapping, whatever the file's later length. Maps read the current
/// allocation at each access, so they see what was written through the file, and the other way
/// round, as a shared map and the page cache do; a slice handed out before a move points into
/// the retired allocation, whose bytes below the published length are the same (the
/// publication protocol keeps them immutable while any reader holds them).
///
/// Writes through the file (`write_at`, `set_len`) and growth take the mutex; stores through a
/// map (by the map's single writer) and reads through a map do not, as with a real map. A store
/// through a map racing with a growth of the same file from another thread could land in the
/// retired allocation and be lost: partlog grows a mapped file only through the map's writer
/// (`set_len` on its own file), so this does not happen.
#[cfg(any(fuzzing, test))]
#[cfg_attr(not(fuzzing), allow(dead_code))]
#[derive(Debug)]
pub(crate) struct MemBuf {
    state: std::sync::Mutex<MemState>,
    /// The current allocation (what `MemState::ptr` holds), for maps to load without the mutex.
    current: std::sync::atomic::AtomicPtr<u8>,
    ino: u64,
}

#[cfg(any(fuzzing, test))]
#[derive(Debug)]
struct MemState {
    ptr: *mut u8,
    cap: usize,
    len: usize,
    modified: std::time::SystemTime,
    /// Earlier allocations, freed with the buffer.
    retired: Vec<(*mut u8, usize)>,
}

// SAFETY: the raw pointers in `MemState` own heap allocations (made here with the global
// allocator, freed only in `Drop`), not thread-bound data; every access to the bytes goes through
// the methods below, which copy with the mutex held, or through maps, whose access the
// publication protocol orders (module docs). So the buffer may move between and be shared by
// threads.
#[cfg(any(fuzzing, test))]
unsafe impl Send for MemState {}

#[cfg(any(fuzzing, test))]
#[cfg_attr(not(fuzzing), allow(dead_code))]
impl MemBuf {
    /// The smallest allocation (so that tiny files do not reallocate on every write).
    const MIN_CAP: usize = 256;

    fn layout(cap: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<u8>(cap).expect("an in-memory file of less than isize::MAX")
    }

    fn alloc(cap: usize) -> *mut u8 {
        let layout = Self::layout(cap);
        // SAFETY: `cap >= MIN_CAP > 0`, so the layout is not zero-sized, as `alloc_zeroed`
        // requires.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        ptr
    }

    /// An empty file with inode number `ino`.
    pub(crate) fn new(ino: u64) -> MemBuf {
        let ptr = Self::alloc(Self::MIN_CAP);
        MemBuf {
            state: std::sync::Mutex::new(MemState {
                ptr,
                cap: Self::MIN_CAP,
                len: 0,
                modified: std::time::SystemTime::now(),
                retired: Vec::new(),
            }),
            current: std::sync::atomic::AtomicPtr::new(ptr),
            ino,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Makes the allocation at least `cap` bytes, moving the bytes if needed (the old allocation
    /// is retired, see the type's docs).
    fn reserve(&self, st: &mut MemState, cap: usize) {
        if cap <= st.cap {
            return;
        }
        let new_cap = cap.max(st.cap.saturating_mul(2));
        let ptr = Self::alloc(new_cap);
        // SAFETY: both allocations are live (the old one is only retired below, never freed
        // before `Drop`) and distinct; the old one has `st.cap >= st.len` bytes and the new one
        // `new_cap > st.cap`, so `st.len` bytes fit in both. The mutex is held: no write through
        // the file runs meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(st.ptr, ptr, st.len) };
        st.retired.push((st.ptr, st.cap));
        st.ptr = ptr;
        st.cap = new_cap;
        self.current
            .store(ptr, std::sync::atomic::Ordering::Release);
    }

    /// The file's length.
    pub(crate) fn len(&self) -> usize {
        self.state().len
    }

    /// The inode number.
    pub(crate) fn ino(&self) -> u64 {
        self.ino
    }

    /// Time of the last change.
    pub(crate) fn modified(&self) -> std::time::SystemTime {
        self.state().modified
    }

    /// Notes a change now (a store through a map).
    fn touch(&self) {
        self.state().modified = std::time::SystemTime::now();
    }

    /// Cuts or extends the file; bytes past a cut read as zeros if it grows again.
    pub(crate) fn set_len(&self, len: usize) {
        let mut st = self.state();
        if len < st.len {
            let (ptr, old) = (st.ptr, st.len);
            // SAFETY: `len < old <= cap`: the range lies in the live allocation. Maps do not
            // look at bytes past a file's end (partlog cuts a file only past what its maps
            // publish).
            unsafe { std::ptr::write_bytes(ptr.add(len), 0, old - len) };
        } else {
            self.reserve(&mut st, len);
        }
        st.len = len;
        st.modified = std::time::SystemTime::now();
    }

    /// Writes `data` at `at` (`pwrite`), growing the file (with zeros in any gap).
    pub(crate) fn write_at(&self, data: &[u8], at: usize) {
        let end = at
            .checked_add(data.len())
            .expect("a file of less than usize::MAX");
        let mut st = self.state();
        self.reserve(&mut st, end);
        // SAFETY: `end <= cap` after `reserve`, so the range lies in the live allocation, which
        // `data` (a Rust slice) cannot overlap. Bytes between the old length and `at` are zeros
        // already (fresh allocations are zeroed, cuts zero what they drop).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), st.ptr.add(at), data.len()) };
        st.len = st.len.max(end);
        st.modified = std::time::SystemTime::now();
    }

    /// Reads up to `out.len()` bytes from `at` (`pread`); returns how many (0 at or past the end).
    pub(crate) fn read_at(&self, out: &mut [u8], at: usize) -> usize {
        let st = self.state();
        let n = st.len.saturating_sub(at).min(out.len());
        if n > 0 {
            // SAFETY: `at + n <= len <= cap`: the range lies in the live allocation, which `out`
            // cannot overlap.
            unsafe { std::ptr::copy_nonoverlapping(st.ptr.add(at), out.as_mut_ptr(), n) };
        }
        n
    }

    /// The whole content.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = vec![0; self.len()];
        let n = self.read_at(&mut out, 0);
        out.truncate(n);
        out
    }
}

#[cfg(any(fuzzing, test))]
impl Drop for MemBuf {
    fn drop(&mut self) {
        let st = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for &(ptr, cap) in st.retired.iter().chain(std::iter::once(&(st.ptr, st.cap))) {
            // SAFETY: each pointer was returned by `alloc` with this layout and is freed once,
            // here; nothing can use it any more (maps and handles hold the `MemBuf` by `Arc`).
            unsafe { std::alloc::dealloc(ptr, Self::layout(cap)) };
        }
    }
}

/// Outside Linux nothing is faulted in ahead, nor in the in-memory file system.
#[cfg(not(all(target_os = "linux", not(fuzzing))))]
fn populate_write(_: &Raw, _: usize, _: usize) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

/// A "map" of an in-memory file (`cfg(fuzzing)`): the file's buffer, read at each access.
#[cfg(fuzzing)]
#[derive(Debug)]
struct MemRaw {
    buf: Arc<crate::mmap::MemBuf>,
}

#[cfg(fuzzing)]
impl MemRaw {
    /// Maps `capacity` bytes of `buf`: makes its allocation at least that long, so that
    /// `as_ptr()..as_ptr() + capacity` is valid memory for as long as `buf` lives (the
    /// allocation never shrinks; see [`MemBuf`]).
    fn new(buf: &Arc<MemBuf>, capacity: usize) -> MemRaw {
        buf.reserve(&mut buf.state(), capacity);
        MemRaw {
            buf: Arc::clone(buf),
        }
    }

    fn as_ptr(&self) -> *const u8 {
        self.buf.current.load(Ordering::Acquire)
    }

    fn as_mut_ptr(&self) -> *mut u8 {
        self.buf.current.load(Ordering::Acquire)
    }

    fn flush_range(&self, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
}

/// The size of a page of memory (4 KiB if the system will not say).
fn page_size() -> usize {
    // SAFETY: `sysconf` reads a system constant; it takes no pointer and touches no memory of
    // ours.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// Gives bytes `from..to` of `file` disk blocks (`fallocate`, keeping the file's size: the
/// range lies inside it). Blocks already there are kept, and what the range holds is unchanged.
#[cfg(all(target_os = "linux", not(fuzzing)))]
fn allocate(file: &File, from: usize, to: usize) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let too_far = || io::Error::new(io::ErrorKind::InvalidInput, "reservation beyond off_t");
    let offset = libc::off_t::try_from(from).map_err(|_| too_far())?;
    let len = libc::off_t::try_from(to.saturating_sub(from)).map_err(|_| too_far())?;
    if len == 0 {
        return Ok(());
    }
    loop {
        // SAFETY: `fallocate` takes a file descriptor and three integers and touches no memory
        // of ours; the descriptor is `file`'s, open for the whole call (it is borrowed). Mode 0
        // allocates blocks for the range and changes no byte the file holds.
        let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Outside Linux the blocks are not reserved (see the module docs), nor in memory.
#[cfg(any(not(target_os = "linux"), fuzzing))]
fn allocate(_: &File, _: usize, _: usize) -> io::Result<()> {
    Ok(())
}

/// The file system is full.
fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
}

/// The file system cannot reserve blocks.
fn is_unsupported(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EOPNOTSUPP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_memory_file_keeps_its_bytes_across_a_move_and_old_pointers_stay_valid() {
        let buf = MemBuf::new(1);
        buf.write_at(b"hello", 0);
        let before = buf.current.load(Ordering::Acquire);
        // Past the first allocation: the bytes move, the old allocation is retired.
        buf.write_at(b"world", 10_000);
        let after = buf.current.load(Ordering::Acquire);
        assert_ne!(before, after, "the buffer grew into a new allocation");
        assert_eq!(buf.len(), 10_005);
        let all = buf.to_vec();
        assert_eq!(&all[..5], b"hello");
        assert!(
            all[5..10_000].iter().all(|&b| b == 0),
            "a gap reads as zeros"
        );
        assert_eq!(&all[10_000..], b"world");
        // SAFETY: `before` is the first allocation (MIN_CAP bytes), retired but alive until
        // `buf` drops; its first five bytes were written before the move.
        let old = unsafe { std::slice::from_raw_parts(before, 5) };
        assert_eq!(old, b"hello");
        // A cut and a growth give zeros back, as a file does.
        buf.set_len(2);
        buf.set_len(5);
        assert_eq!(buf.to_vec(), b"he\0\0\0");
        let mut out = [0u8; 8];
        assert_eq!(buf.read_at(&mut out, 3), 2, "a read stops at the end");
        assert_eq!(buf.read_at(&mut out, 9), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn published_bytes_are_stable_and_unpublished_are_hidden() {
        let (_file, mut w) = new_writer(64, 0);
        assert_eq!(w.append(b"hello").unwrap(), 0);
        let hello = w.shared().slice(0, 5).unwrap();
        assert!(
            w.shared().slice(0, 6).is_none(),
            "unpublished bytes are never handed out"
        );
        assert_eq!(w.append(b" world").unwrap(), 5);
        assert_eq!(&hello[..], b"hello");
        w.shared().with_published(|b| assert_eq!(b, b"hello world"));
        assert!(matches!(w.append(&[0u8; 54]), Err(AppendFailed::Full)));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn appends_reserve_whole_pages_ahead_and_a_cut_keeps_them_when_zeroed_in_place() {
        let (_file, mut w) = new_writer(1 << 20, 64 << 10);
        assert_eq!(w.reserved, 0);
        w.append(b"abc").unwrap();
        if w.through_file {
            eprintln!("the temporary directory's file system has no fallocate: nothing to check");
            return;
        }
        assert_eq!(
            w.reserved,
            (64 << 10) + w.page,
            "one page past what was written"
        );
        let reserved = w.reserved;
        assert!(w.truncate(1).unwrap());
        if zeroes_in_place() {
            assert_eq!(w.reserved, reserved, "the cut pages kept their blocks");
        } else {
            assert_eq!(w.reserved, 0, "the cut pages lost their blocks");
        }
        w.append(&vec![7u8; 3 * w.page]).unwrap();
        w.shared()
            .with_published(|b| assert_eq!(&b[..2], &[b'a', 7]));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn without_fallocate_appends_go_through_the_file() {
        let (file, mut w) = new_writer(64, 0);
        // As if `fallocate` had answered EOPNOTSUPP.
        w.through_file = true;
        assert_eq!(w.append(b"hello").unwrap(), 0);
        assert_eq!(w.append(b" world").unwrap(), 5);
        w.shared().with_published(|b| assert_eq!(b, b"hello world"));
        let mut on_disk = [0u8; 11];
        file.read_exact_at(&mut on_disk, 0).unwrap();
        assert_eq!(&on_disk, b"hello world");
        assert!(matches!(w.append(&[0u8; 54]), Err(AppendFailed::Full)));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn truncate_refuses_while_a_reader_holds_bytes() {
        let (file, mut w) = new_writer(32, 0);
        w.append(b"abcdefgh").unwrap();
        let held = w.shared().slice(4, 8).unwrap();
        assert!(!w.truncate(4).unwrap());
        assert_eq!(&held[..], b"efgh");
        drop(held);
        assert!(w.truncate(4).unwrap());
        assert_eq!(w.len(), 4);
        w.append(b"XY").unwrap();
        w.shared().with_published(|b| assert_eq!(b, b"abcdXY"));
        // The cut bytes are gone from the file, not merely hidden.
        let ro = SharedMap::read_only(&file, 32).unwrap();
        ro.with_published(|b| assert_eq!(&b[..8], b"abcdXY\0\0"));
    }

    /// A writer of a fresh temporary file of `capacity` bytes, nothing published, and the file.
    fn new_writer(capacity: usize, reserve_ahead: usize) -> (File, MapWriter) {
        let file = tempfile::tempfile().unwrap();
        file.set_len(capacity as u64).unwrap();
        let w = MapWriter::new(file.try_clone().unwrap(), capacity, 0, reserve_ahead).unwrap();
        (file, w)
    }

    /// Whether the temporary directory's file system zeroes ranges in place.
    fn zeroes_in_place() -> bool {
        let probe = tempfile::tempfile().unwrap();
        probe.set_len(8192).unwrap();
        let ok = zero_range(&probe, 0, 8192);
        if !ok {
            eprintln!("the temporary directory's file system has no FALLOC_FL_ZERO_RANGE");
        }
        ok
    }

    /// Bytes `from..to` of `file`, read through the file.
    fn file_bytes(file: &File, from: usize, to: usize) -> Vec<u8> {
        let mut out = vec![0u8; to - from];
        file.read_exact_at(&mut out, from as u64).unwrap();
        out
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_small_cut_zeroes_in_place_and_keeps_the_blocks() {
        use std::os::unix::fs::MetadataExt;
        let (file, mut w) = new_writer(1 << 20, 0);
        w.append(&[0xAB; 65536]).unwrap();
        file.sync_all().unwrap();
        let blocks = file.metadata().unwrap().blocks();
        assert!(w.truncate(10_000).unwrap());
        assert_eq!(w.len(), 10_000);
        assert_eq!(file.metadata().unwrap().len(), 1 << 20, "the size is kept");
        assert!(file_bytes(&file, 0, 10_000).iter().all(|&b| b == 0xAB));
        assert!(file_bytes(&file, 10_000, 65_536).iter().all(|&b| b == 0));
        if zeroes_in_place() {
            // Cutting the file and growing it back would have freed all but 3 pages.
            assert_eq!(
                file.metadata().unwrap().blocks(),
                blocks,
                "the cut kept its blocks"
            );
        }
        // Appends carry on at the cut, through the map.
        w.append(b"next").unwrap();
        assert_eq!(file_bytes(&file, 10_000, 10_005), b"next\0");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_cut_zeroes_what_a_failed_append_left_past_the_published_end() {
        let (file, mut w) = new_writer(1 << 16, 0);
        w.append(&[0xAB; 100]).unwrap();
        // A write that failed after storing its bytes (as a short `pwrite` on a full disk may).
        let r = w.append_by_file(5000, true, |f, at| {
            f.write_all_at(&[0xCD; 5000], at)?;
            Err(io::Error::other("injected"))
        });
        assert!(matches!(r, Err(AppendFailed::Io(_))));
        assert_eq!(w.len(), 100);
        assert!(w.truncate(40).unwrap());
        assert!(file_bytes(&file, 0, 40).iter().all(|&b| b == 0xAB));
        assert!(
            file_bytes(&file, 40, 5100).iter().all(|&b| b == 0),
            "nothing of the failed append survives the cut"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_pwrite_reserves_ahead_only_when_asked() {
        let ahead = 64 << 10;
        let (_file, mut w) = new_writer(1 << 20, ahead);
        let write = |n: usize| move |f: &File, at: u64| f.write_all_at(&vec![1u8; n], at);
        w.append_by_file(40_000, true, write(40_000)).unwrap();
        if w.through_file {
            eprintln!("the temporary directory's file system has no fallocate: nothing to check");
            return;
        }
        let page = w.page;
        let round_up = |n: usize| n.div_ceil(page) * page;
        assert_eq!(w.reserved, round_up(40_000 + ahead), "reserved ahead");
        w.append_by_file(70_000, false, write(70_000)).unwrap();
        assert_eq!(w.reserved, round_up(40_000 + ahead), "nothing reserved");
        w.append_by_file(70_000, true, write(70_000)).unwrap();
        assert_eq!(w.reserved, round_up(180_000 + ahead));
        w.shared()
            .with_published(|b| assert!(b.len() == 180_000 && b.iter().all(|&x| x == 1)));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_cut_larger_than_the_in_place_limit_frees_the_blocks() {
        use std::os::unix::fs::MetadataExt;
        let cap = ZERO_IN_PLACE_MAX + (4 << 20);
        let (file, mut w) = new_writer(cap, 0);
        let chunk = vec![0xAB; 1 << 20];
        while w.len() + chunk.len() <= ZERO_IN_PLACE_MAX + (2 << 20) {
            w.append(&chunk).unwrap();
        }
        assert!(w.truncate(4096).unwrap());
        assert_eq!(file.metadata().unwrap().len(), cap as u64);
        let kept = file.metadata().unwrap().blocks() * 512;
        assert!(
            kept < 1 << 20,
            "the cut freed the blocks ({kept} bytes kept)"
        );
        assert!(file_bytes(&file, 4096, 8192).iter().all(|&b| b == 0));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn bytes_outlive_the_writer_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(16).unwrap();
        let mut w = MapWriter::new(file.try_clone().unwrap(), 16, 0, 0).unwrap();
        w.append(b"keep").unwrap();
        let b = w.shared().slice(0, 4).unwrap();
        drop(w);
        drop(file);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(&b[..], b"keep");
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn mapping_longer_than_file_is_refused() {
        let file = tempfile::tempfile().unwrap();
        file.set_len(10).unwrap();
        assert!(MapWriter::new(file.try_clone().unwrap(), 11, 0, 0).is_err());
        assert!(SharedMap::read_only(&file, 11).is_err());
        assert!(MapWriter::new(file.try_clone().unwrap(), 10, 11, 0).is_err());
        let empty = SharedMap::read_only(&file, 0).unwrap();
        assert_eq!(empty.slice(0, 0).unwrap().len(), 0);
    }

    /// Pages of `map`'s file in the page cache, over the whole map (`mincore`).
    #[cfg(all(target_os = "linux", not(fuzzing)))]
    fn resident_pages(map: &SharedMap) -> usize {
        let raw = map.raw.as_ref().expect("a mapped file");
        let mut vec = vec![0u8; raw.len().div_ceil(page_size())];
        // SAFETY: the range is the whole live mapping `raw` (page-aligned start, as `mincore`
        // requires), and `vec` has one byte per page of it, which is all `mincore` writes.
        let r = unsafe {
            libc::mincore(
                raw.as_mut_ptr().cast::<libc::c_void>(),
                raw.len(),
                vec.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0, "mincore: {}", io::Error::last_os_error());
        vec.iter().filter(|&&b| b & 1 != 0).count()
    }

    #[test]
    #[cfg(all(target_os = "linux", not(fuzzing)))]
    #[cfg_attr(miri, ignore)]
    fn a_map_without_read_around_faults_in_the_page_it_stores_to_not_megabytes_around_it() {
        // An index's first store into a sparse 10 MiB file. Where the device has read-ahead
        // (the disk the crate is measured on: 8 MiB), the fault without the advice brings in
        // megabytes of zeros; with it, the pages the store touches and the few the kernel
        // always maps around a fault at most.
        let dir = tempfile::tempdir().unwrap();
        let capacity = 10 << 20;
        let first_store = |name: &str, advise: bool| {
            let file = crate::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(dir.path().join(name))
                .unwrap();
            file.set_len(capacity as u64).unwrap();
            let mut w = MapWriter::new(file, capacity, 0, 64 << 10).unwrap();
            if advise {
                w = w.without_read_around();
            }
            w.append(&[7u8; 12]).unwrap();
            assert_eq!(&w.shared().slice(0, 12).unwrap()[..], &[7u8; 12]);
            resident_pages(w.shared())
        };
        let advised = first_store("advised.index", true);
        let control = first_store("control.index", false);
        let limit = (64 << 10) / page_size();
        assert!(
            advised <= limit,
            "{advised} pages resident after one 12-byte store (control: {control})"
        );
        if control <= limit {
            eprintln!("this file system reads no more than {control} pages around a fault");
        } else {
            assert!(advised < control, "{advised} against {control} pages");
        }
    }
}
