//! The write side of the active segment: appends into the preallocated map, index upkeep, the
//! roll rules, and trimming when the segment stops being active.

use crate::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::batch::{self, BatchHeader};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::fs::FileExt;
use crate::index::{IndexReader, IndexWriter, OffsetEntry, TimeEntry};

use crate::batch::HEADER_SIZE;
use crate::mmap::{AppendFailed, MapWriter};

use super::scan::{self, Bounds, Indexer, ScanStop, Validation};
use super::{Segment, SegmentPaths, SegmentView};

/// Where the map is not faulted in ahead (see [`PREFAULT_AHEAD_BYTES`]), batches at least this
/// big (a page) are written with `pwrite` rather than copied through the map: a fault on a
/// fresh map page costs a zero-fill of the page on top of the copy.
const WRITE_THROUGH_FILE_BYTES: usize = 4 * 1024;

/// Where the map is faulted in ahead, only batches at least this big go through `pwrite`: the
/// copy into prefaulted pages costs a zero-fill of each page on top of the copy, which a
/// `pwrite` does not, while a `pwrite` has a fixed cost per call (~3 us on the 2-vCPU VM), so
/// the crossover lies at a few tens of KiB (measured: 11 KB batches 20 % faster through the
/// prefaulted map, 100 KB batches 35 % slower).
const WRITE_THROUGH_FILE_PREFAULTED_BYTES: usize = 32 * 1024;

/// How far ahead of its appends the active segment's map is faulted in (`MADV_POPULATE_WRITE`,
/// one call per 64 KiB appended), so that appends copy into pages already mapped: cheaper than
/// a fault per page at the first store, and than `pwrite`, on the 2-vCPU VM partlog is
/// measured on (BENCHMARKS.md, issue 21). At most this much of zeros is dirtied ahead of the
/// data.
const PREFAULT_AHEAD_BYTES: usize = 64 * 1024;

/// How far ahead of its appends the active segment reserves disk blocks (see `mmap`: a store
/// into a mapped page without a block faults with SIGBUS on a full disk). One `fallocate` per
/// MiB appended.
const RESERVE_AHEAD_BYTES: usize = 1 << 20;

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub(crate) segment: Arc<Segment>,
    /// The log file's map (and the file).
    log: MapWriter,
    offset_index: IndexWriter<OffsetEntry>,
    time_index: IndexWriter<TimeEntry>,
    indexer: Indexer,
    /// Offset after the last batch in the segment (the base offset while empty).
    pub(crate) next_offset: i64,
    /// Max timestamp of the segment's first batch: time-based rolling counts from it.
    rolling_timestamp: Option<i64>,
    /// Wall-clock time the segment was created or reopened.
    created_ms: i64,
    /// Bytes of the log known to be on disk (flushes sync only what lies past this).
    flushed_to: Arc<AtomicUsize>,
}

/// How full the active segment is (or would be), as the roll rule sees it.
struct Fill {
    size: usize,
    offset_entries: usize,
    time_entries: usize,
    rolling_timestamp: Option<i64>,
}

/// How to open the last segment of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// After a clean shutdown: trust the data, read only the tail after the last index entry.
    Clean,
    /// After a crash: validate every batch, cut at the first bad one. Batches that end at or
    /// below `trusted_below` (the recovery point: flushed data) get a header check only, so rot
    /// in a flushed batch's payload is reported on read rather than costing the flushed batches
    /// after it.
    Recover {
        /// The recovery point.
        trusted_below: i64,
    },
}

/// What opening the last segment found.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) active: ActiveSegment,
    /// Where recovery cut the segment, and why.
    pub(crate) truncated: Option<ScanStop>,
}

fn open_rw(path: &Path) -> Result<File> {
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, "open", e))?;
    crate::durability::created(path);
    Ok(file)
}

impl ActiveSegment {
    /// Creates a new, empty segment with `base_offset` in `dir`.
    pub(crate) fn create(
        dir: &Path,
        base_offset: i64,
        config: &Config,
        now_ms: i64,
    ) -> Result<Self> {
        SegmentPaths::new(dir, base_offset).remove_all()?;
        let mode = OpenMode::Recover {
            trusted_below: i64::MIN,
        };
        let opened = Self::open(dir, base_offset, config, now_ms, mode)?;
        Ok(opened.active)
    }

    /// Opens the segment with `base_offset` in `dir` as the active one (creating its files if
    /// absent): maps the log at `segment_bytes` (or its size, if larger), recovers or trusts its
    /// data according to `mode`, and reopens or rebuilds its indexes.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        config: &Config,
        now_ms: i64,
        mode: OpenMode,
    ) -> Result<Opened> {
        let paths = SegmentPaths::new(dir, base_offset);
        let log_file = open_rw(&paths.log)?;
        let file_len = log_file
            .metadata()
            .map_err(|e| Error::io(&paths.log, "stat", e))?
            .len();
        let file_len = usize::try_from(file_len)
            .map_err(|_| Error::corrupt(&paths.log, 0, "segment too large"))?;
        let capacity = file_len.max(config.segment_bytes as usize);
        log_file
            .set_len(capacity as u64)
            .map_err(|e| Error::io(&paths.log, "preallocate", e))?;
        // Published up to the old length: what preallocation added is zeros already, so a
        // recovery that keeps all of it has nothing to cut (no `set_len` down and back up).
        let mut log = MapWriter::of_len(
            log_file,
            capacity as u64,
            capacity,
            file_len,
            RESERVE_AHEAD_BYTES,
        )
        .map_err(|e| Error::io(&paths.log, "mmap", e))?
        .prefault_ahead(PREFAULT_AHEAD_BYTES);
        // Only the file's old length can hold data: what preallocation added is zeros. Nor can
        // what lies past its first hole (a crash's sparse preallocated tail), which is not read
        // through the map: on a full tmpfs that read would fault (SIGBUS).
        let readable = crate::mmap::backed_prefix(log.file(), file_len)
            .map_err(|e| Error::io(&paths.log, "seek", e))?;
        let data = log.shared().slice(0, readable).unwrap_or_default();

        let index_bytes = config.segment_index_bytes as usize;
        let interval = config.index_interval_bytes;
        // In clean mode, trust indexes that pass their checks and walk only the batches after
        // the last offset-index entry; otherwise (or if they fail) rebuild from a full scan.
        let clean = match mode {
            OpenMode::Clean => clean_tail(&paths, base_offset, file_len, &data, interval),
            OpenMode::Recover { .. } => None,
        };
        let (outcome, offset_keep, time_keep, rebuilt) = match clean {
            Some((outcome, offset_keep, time_keep)) => (outcome, offset_keep, time_keep, false),
            None => {
                let trusted_below = match mode {
                    OpenMode::Recover { trusted_below } => trusted_below,
                    OpenMode::Clean => i64::MIN,
                };
                let bounds = Bounds {
                    trusted_below,
                    ..Bounds::from(base_offset)
                };
                let outcome = scan::scan(
                    &data,
                    0,
                    base_offset,
                    bounds,
                    Indexer::new(base_offset, interval),
                    Validation::Full,
                );
                (outcome, 0, 0, true)
            }
        };
        drop(data);
        let valid = outcome.valid_end as usize;
        // Nobody else holds the map yet, so the cut cannot fail for lack of uniqueness.
        if !log
            .truncate(valid)
            .map_err(|e| Error::io(&paths.log, "truncate", e))?
        {
            return Err(Error::corrupt(
                &paths.log,
                valid as u64,
                "segment map in use during recovery",
            ));
        }
        let mut offset_index = IndexWriter::open(&paths.index, index_bytes, offset_keep)?;
        let mut time_index = IndexWriter::open(&paths.time_index, index_bytes, time_keep)?;
        // An index is sparse: if a rebuilt one does not fit (the config shrank), the entries
        // that fit still speed up lookups, and the full index rolls the segment.
        for e in &outcome.offset_entries {
            if offset_index.len() >= offset_index.max_entries() {
                break;
            }
            offset_index.append(*e)?;
        }
        for e in &outcome.time_entries {
            if time_index.len() + 1 >= time_index.max_entries() {
                break;
            }
            time_index.append(*e)?;
        }
        if rebuilt {
            offset_index.flush()?;
            time_index.flush()?;
        }
        let segment = Arc::new(Segment::new(paths, base_offset, valid as u64, i64::MAX));
        segment.set_max_timestamp(outcome.indexer.max_timestamp);
        let active = ActiveSegment {
            segment,
            log,
            offset_index,
            time_index,
            indexer: outcome.indexer,
            next_offset: outcome.next_offset.unwrap_or(base_offset),
            rolling_timestamp: outcome.first_batch_timestamp,
            created_ms: now_ms,
            flushed_to: Arc::new(AtomicUsize::new(0)),
        };
        active.publish_view(false);
        Ok(Opened {
            active,
            truncated: outcome.stop.filter(|s| !s.zero_tail),
        })
    }

    /// Hands readers the segment's maps; `frozen` once no more bytes will be appended.
    fn publish_view(&self, frozen: bool) {
        self.segment.set_view(Some(self.view(frozen)));
    }

    fn view(&self, frozen: bool) -> Arc<SegmentView> {
        let log = self.log.shared();
        Arc::new(SegmentView {
            log: Arc::clone(log),
            offset_index: self.offset_index.reader(),
            time_index: self.time_index.reader(),
            frozen: if frozen {
                log.slice(0, log.published())
            } else {
                None
            },
        })
    }

    /// Cuts the segment in place at byte `position`, where the batch starting at `next_offset`
    /// begins (or the end): the log map and file, and the index entries of the cut batches. The
    /// cost is what is cut (plus one fsync, so that the cut is durable), not the segment's size.
    ///
    /// Returns `Ok(false)`, changing nothing, if a reader still holds bytes or a view of the
    /// segment (their bytes must not change under them): the caller then rewrites the kept part
    /// to a new file instead.
    pub(crate) fn truncate_in_place(
        &mut self,
        position: usize,
        next_offset: i64,
        interval: u32,
    ) -> Result<bool> {
        let base_offset = self.base_offset();
        let relative = next_offset - base_offset;
        let offset_keep = self
            .offset_index
            .kept_while(|e| i64::from(e.relative_offset) < relative);
        let time_keep = self
            .time_index
            .kept_while(|e| i64::from(e.relative_offset) < relative);
        {
            // Held while the maps change: a reader that wants the view waits (it would
            // otherwise map the file anew); none can take a new reference meanwhile.
            let mut slot = self.segment.slot();
            drop(slot.take());
            if !(self.log.is_unique()
                && self.offset_index.is_unique()
                && self.time_index.is_unique())
            {
                // The same maps, handed out again.
                *slot = Some(self.view(false));
                return Ok(false);
            }
            let path = &self.segment.paths().log;
            self.offset_index.truncate(offset_keep)?;
            self.time_index.truncate(time_keep)?;
            if !self
                .log
                .truncate(position)
                .map_err(|e| Error::io(path, "truncate", e))?
            {
                return Err(Error::corrupt(path, position as u64, "segment map in use"));
            }
            *slot = Some(self.view(false));
        }
        // The indexer resumes at the last kept index entry and walks the batches after it.
        let last_offset_entry = self.offset_index.reader().last();
        let start = last_offset_entry.map_or(0, |e| e.position as usize);
        let indexer = Indexer::resume(
            base_offset,
            interval,
            last_offset_entry,
            self.time_index.reader().last(),
            start as u64,
        );
        let data = self.log.shared().slice(0, position).unwrap_or_default();
        // The batch at that entry holds the offset it names (see `entry_batch_base`); if not,
        // the scan below reports the mismatch.
        let min_offset = last_offset_entry.map_or(base_offset, |e| {
            let named = base_offset + i64::from(e.relative_offset);
            super::entry_batch_base(&data, start, named).unwrap_or(i64::MAX)
        });
        let outcome = scan::scan(
            &data,
            start as u64,
            base_offset,
            Bounds::from(min_offset),
            indexer,
            Validation::Header,
        );
        drop(data);
        let path = &self.segment.paths().log;
        // The cut may fall in an offset gap (`next_offset` above the kept batches' end).
        if outcome.valid_end != position as u64
            || outcome.next_offset.unwrap_or(base_offset) > next_offset
        {
            return Err(Error::corrupt(
                path,
                outcome.valid_end,
                "the kept batches do not end where the cut was made",
            ));
        }
        self.indexer = outcome.indexer;
        self.next_offset = next_offset;
        if position == 0 {
            self.rolling_timestamp = None;
        }
        self.flushed_to.fetch_min(position, Ordering::AcqRel);
        self.segment.set_size(position as u64);
        self.segment.set_max_timestamp(self.indexer.max_timestamp);
        // The cut is durable before the log goes on: a crash cannot bring back cut batches
        // behind batches appended after the cut.
        self.log
            .file()
            .sync_all()
            .map_err(|e| Error::io(path, "fsync", e))?;
        crate::durability::file_synced(path);
        Ok(true)
    }

    /// The segment's base offset.
    pub(crate) fn base_offset(&self) -> i64 {
        self.segment.base_offset()
    }

    /// Bytes in the segment.
    pub(crate) fn size(&self) -> usize {
        self.log.len()
    }

    /// Kafka's roll rule: would appending a batch with `header` overflow the segment, is the
    /// segment too old, is an index full, or would an offset not fit in an i32 relative offset?
    pub(crate) fn should_roll(&self, header: &BatchHeader, config: &Config, now_ms: i64) -> bool {
        let now = Fill {
            size: self.size(),
            offset_entries: self.offset_index.len(),
            time_entries: self.time_index.len(),
            rolling_timestamp: self.rolling_timestamp,
        };
        self.would_roll(&now, header, config, now_ms)
    }

    /// [`ActiveSegment::should_roll`] for the segment filled as `fill` says.
    fn would_roll(&self, fill: &Fill, header: &BatchHeader, config: &Config, now_ms: i64) -> bool {
        if fill.size == 0 {
            return false;
        }
        let too_big = fill.size + header.total_size() > config.segment_bytes as usize;
        let too_old = fill
            .rolling_timestamp
            .is_some_and(|first| header.max_timestamp.saturating_sub(first) > config.segment_ms)
            || now_ms.saturating_sub(self.created_ms) > config.segment_ms;
        // The time index keeps its last slot for the entry written when the segment rolls.
        let index_full = fill.offset_entries >= self.offset_index.max_entries()
            || fill.time_entries + 1 >= self.time_index.max_entries();
        let offset_overflow =
            header.last_offset().saturating_sub(self.base_offset()) > i64::from(i32::MAX);
        too_big || too_old || index_full || offset_overflow
    }

    /// Appends the longest prefix of `headers` that fits without a roll (at least one batch)
    /// and returns how many batches it took. `bytes` holds the batches end to end, each already
    /// carrying the base offset and leader epoch of its header (a follower's copy of its
    /// leader's batches): they are written as they are, in one write, then indexed batch by
    /// batch. One `pwrite` per fetch answer instead of one per batch.
    pub(crate) fn append_run(
        &mut self,
        headers: &[BatchHeader],
        bytes: &[u8],
        config: &Config,
        now_ms: i64,
    ) -> Result<usize> {
        // How many fit: the roll rule, batch by batch, on the fill they would leave.
        let mut fill = Fill {
            size: self.size(),
            offset_entries: self.offset_index.len(),
            time_entries: self.time_index.len(),
            rolling_timestamp: self.rolling_timestamp,
        };
        let mut indexer = self.indexer.clone();
        let mut count = 0;
        let mut run_bytes = 0;
        for h in headers {
            if count > 0 && self.would_roll(&fill, h, config, now_ms) {
                break;
            }
            let entries = indexer.on_batch(h, fill.size as u64);
            fill.offset_entries += usize::from(entries.offset.is_some());
            fill.time_entries += usize::from(entries.time.is_some());
            fill.size += h.total_size();
            fill.rolling_timestamp.get_or_insert(h.max_timestamp);
            run_bytes += h.total_size();
            count += 1;
        }
        let run = bytes.get(..run_bytes).ok_or_else(|| {
            Error::corrupt(
                &self.segment.paths().log,
                0,
                "batch run shorter than its headers",
            )
        })?;
        if count == 1 {
            return self.append(&headers[0], run).map(|_| 1);
        }
        let path = &self.segment.paths().log;
        let at = self.log.len() as u64;
        let start = if cfg!(target_os = "linux") && run_bytes >= self.write_through_file_bytes() {
            let reserve = self.reserves_before_pwrite();
            self.log
                .append_by_file(run_bytes, reserve, |file, pos| file.write_all_at(run, pos))
        } else {
            self.log
                .append_with(run_bytes, |dst| dst.copy_from_slice(run))
        }
        .map_err(|e| match e {
            AppendFailed::Full => Error::corrupt(path, at, "append past the segment's end"),
            AppendFailed::Io(e) => Error::io(path, "write", e),
        })?;
        let mut pos = start;
        for h in &headers[..count] {
            let entries = self.indexer.on_batch(h, pos as u64);
            if let Some(e) = entries.offset {
                self.offset_index.append(e)?;
            }
            if let Some(e) = entries.time {
                self.time_index.append(e)?;
            }
            if self.rolling_timestamp.is_none() {
                self.rolling_timestamp = Some(h.max_timestamp);
            }
            self.next_offset = h.next_offset();
            pos += h.total_size();
        }
        self.segment.set_size(pos as u64);
        self.segment.set_max_timestamp(self.indexer.max_timestamp);
        Ok(count)
    }

    /// Whether a `pwrite` append reserves its blocks ahead first. Into reserved (unwritten)
    /// blocks it skips ext4's delayed allocation: ~20 % of a 100 KB `pwrite` into a sparse file
    /// on this VM. But each flush must then convert the written part of an unwritten extent,
    /// ~15 % more per `fdatasync` of such a batch. So it reserves unless the segment was flushed
    /// within the last reservation distance (it is flushed after every few appends).
    fn reserves_before_pwrite(&self) -> bool {
        let flushed = self.flushed_to.load(Ordering::Relaxed);
        self.log.len().saturating_sub(flushed) >= RESERVE_AHEAD_BYTES
    }

    /// Appends of at least this many bytes go through `pwrite`, not the map.
    fn write_through_file_bytes(&self) -> usize {
        if self.log.prefaults() {
            WRITE_THROUGH_FILE_PREFAULTED_BYTES
        } else {
            WRITE_THROUGH_FILE_BYTES
        }
    }

    /// Appends one validated batch whose bytes are `bytes` and whose header (with the offsets it
    /// will have on disk) is `header`. If the bytes carry another base offset (a producer's
    /// batch) or another partition leader epoch (a leader stamps its own), `header`'s values are
    /// written into the copy (both lie outside the CRC); bytes that already carry them are
    /// written as they are, in one piece. The caller has checked the roll rule.
    pub(crate) fn append(&mut self, header: &BatchHeader, bytes: &[u8]) -> Result<u64> {
        let base_offset = header.base_offset;
        let epoch = header.partition_leader_epoch;
        let patch = batch::peek_frame(bytes).map(|(base, _)| base) != Some(base_offset)
            || batch::peek_partition_leader_epoch(bytes) != Some(epoch);
        let patch_header = |dst: &mut [u8]| {
            if patch {
                // `dst` starts with a whole batch header (the batch was validated).
                let _ = batch::set_base_offset(dst, base_offset);
                let _ = batch::set_partition_leader_epoch(dst, epoch);
            }
        };
        let size = bytes.len();
        let path = &self.segment.paths().log;
        let at = self.log.len() as u64;
        let pos = if cfg!(target_os = "linux") && size >= self.write_through_file_bytes() {
            // Large batch: through the file (no zero-fill of fresh map pages). A batch that
            // still needs its base offset goes in two writes, the header patched in a copy.
            let write = |file: &File, pos: u64| -> std::io::Result<()> {
                if !patch {
                    return file.write_all_at(bytes, pos);
                }
                let (head, tail) = bytes.split_at(HEADER_SIZE.min(size));
                let mut patched = [0u8; HEADER_SIZE];
                let patched = &mut patched[..head.len()];
                patched.copy_from_slice(head);
                patch_header(patched);
                file.write_all_at(patched, pos)?;
                file.write_all_at(tail, pos + head.len() as u64)
            };
            let reserve = self.reserves_before_pwrite();
            self.log.append_by_file(size, reserve, write)
        } else {
            self.log.append_with(size, |dst| {
                dst.copy_from_slice(bytes);
                patch_header(dst);
            })
        }
        .map_err(|e| match e {
            AppendFailed::Full => Error::corrupt(path, at, "append past the segment's end"),
            AppendFailed::Io(e) => Error::io(path, "write", e),
        })?;
        let entries = self.indexer.on_batch(header, pos as u64);
        if let Some(e) = entries.offset {
            self.offset_index.append(e)?;
        }
        if let Some(e) = entries.time {
            self.time_index.append(e)?;
        }
        if self.rolling_timestamp.is_none() {
            self.rolling_timestamp = Some(header.max_timestamp);
        }
        self.next_offset = header.next_offset();
        self.segment.set_size((pos + size) as u64);
        self.segment.set_max_timestamp(self.indexer.max_timestamp);
        Ok(pos as u64)
    }

    /// Writes everything appended so far to disk (msync of the log and both indexes).
    pub(crate) fn flush(&self) -> Result<()> {
        let len = self.log.len();
        let path = &self.segment.paths().log;
        self.log
            .shared()
            .flush_range(0, len)
            .map_err(|e| Error::io(path, "msync", e))?;
        crate::durability::range_synced(path, 0, len);
        self.offset_index.flush()?;
        self.time_index.flush()
    }

    /// What a flush outside the writer's lock needs.
    pub(crate) fn flush_handle(&self) -> FlushHandle {
        FlushHandle {
            path: self.segment.paths().log.clone(),
            log: Arc::clone(self.log.shared()),
            from: self.flushed_to.load(Ordering::Acquire),
            to: self.log.len(),
            flushed_to: Arc::clone(&self.flushed_to),
        }
    }

    /// The segment stops being active (it rolled, or the log closes): write the final time-index
    /// entry, trim all three files to their contents, and sync them. The segment's view stays
    /// valid for readers. If a step fails, the files are still cut to their contents (see
    /// [`ActiveSegment::cut_to_contents`]).
    pub(crate) fn finish(mut self) -> Result<Arc<Segment>> {
        match self.finish_files() {
            Ok(()) => Ok(self.segment),
            Err(e) => {
                self.cut_to_contents();
                Err(e)
            }
        }
    }

    fn finish_files(&mut self) -> Result<()> {
        if let Some(e) = self.indexer.time_entry() {
            self.time_index.append(e)?;
        }
        self.publish_view(true);
        self.flush()?;
        let path = &self.segment.paths().log;
        let file = self.log.file();
        file.set_len(self.log.len() as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io(path, "trim", e))?;
        crate::durability::file_synced(path);
        self.offset_index.trim()?;
        self.time_index.trim()?;
        Ok(())
    }

    /// The segment is given up after a failed write (the log is fail-stop): cuts the three files
    /// to what they hold, syncing nothing, on a best-effort basis. The sparse preallocated tail
    /// would otherwise be read by the next open's recovery, and on a full tmpfs a read of a page
    /// without a block faults (SIGBUS) as a store does. Readers keep their views: they look only
    /// at written bytes.
    pub(crate) fn cut_to_contents(self) {
        let _ = self.log.file().set_len(self.log.len() as u64);
        self.offset_index.cut_to_entries();
        self.time_index.cut_to_entries();
    }
}

/// Handle to flush the active segment without holding the log's writer lock. It holds the map
/// itself, so a roll or a deletion in the meantime cannot make it fail.
///
/// Only the log's new bytes are synced: the active segment's indexes need not be durable, as
/// recovery rebuilds them from the log (and they are synced when the segment rolls).
#[derive(Debug, Clone)]
pub(crate) struct FlushHandle {
    path: std::path::PathBuf,
    log: Arc<crate::mmap::SharedMap>,
    from: usize,
    to: usize,
    flushed_to: Arc<AtomicUsize>,
}

impl FlushHandle {
    pub(crate) fn flush(&self) -> Result<()> {
        if self.to > self.from {
            self.log
                .flush_range(self.from, self.to)
                .map_err(|e| Error::io(&self.path, "msync", e))?;
            crate::durability::range_synced(&self.path, self.from, self.to);
            self.flushed_to.fetch_max(self.to, Ordering::AcqRel);
        }
        Ok(())
    }
}

/// On a clean open: check the existing indexes and walk the batches after the last offset-index
/// entry. `None` means the indexes cannot be trusted (or the tail does not parse) and the segment
/// must be scanned in full.
fn clean_tail(
    paths: &SegmentPaths,
    base_offset: i64,
    file_len: usize,
    data: &bytes::Bytes,
    interval: u32,
) -> Option<(scan::ScanOutcome, usize, usize)> {
    let offset_index = IndexReader::<OffsetEntry>::open_read_only(&paths.index).ok()?;
    let time_index = IndexReader::<TimeEntry>::open_read_only(&paths.time_index).ok()?;
    offset_index
        .validate(file_len as u64, i64::from(i32::MAX) + 1)
        .ok()?;
    time_index
        .validate(file_len as u64, i64::from(i32::MAX) + 1)
        .ok()?;
    // The last time entry must be the segment's largest timestamp, as for inactive segments:
    // retention and time lookups trust it.
    if let Some(t) = time_index.last() {
        if !super::time_entry_is_segment_max(data, &offset_index, base_offset, t) {
            return None;
        }
    }
    let last_offset_entry = offset_index.last();
    let start = last_offset_entry.map_or(0, |e| e.position as u64);
    let indexer = Indexer::resume(
        base_offset,
        interval,
        last_offset_entry,
        time_index.last(),
        start,
    );
    // The batch at that entry holds the offset it names (see `entry_batch_base`); if not, the
    // indexes are rebuilt.
    let min_offset = match last_offset_entry {
        None => base_offset,
        Some(e) => super::entry_batch_base(
            data,
            start as usize,
            base_offset + i64::from(e.relative_offset),
        )?,
    };
    let mut outcome = scan::scan(
        data,
        start,
        base_offset,
        Bounds::from(min_offset),
        indexer,
        Validation::Header,
    );
    // The tail must parse to the end of the file, and the index entries found in it are
    // already on disk: keep the files' entries and add none.
    if outcome.stop.is_some() || (last_offset_entry.is_some() && outcome.batches == 0) {
        return None;
    }
    // Entries the walk produces were not on disk (the last offset entry is where it started),
    // so they are added after the kept ones.
    let offset_keep = offset_index.len();
    let time_keep = time_index.len();
    if outcome.first_batch_timestamp.is_none() && start > 0 {
        // Time-based rolling counts from the first batch; read its header.
        outcome.first_batch_timestamp = scan::peek_header(data, 0).map(|h| h.max_timestamp);
    }
    Some((outcome, offset_keep, time_keep))
}
