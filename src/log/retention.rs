//! Retention (by log start offset, size and time), delete-records, the flush policy, and the
//! periodic work an embedding application runs (`tick`, `spawn_maintenance`).
//!
//! Rules, as Kafka's `UnifiedLog.deleteOldSegments`:
//! - only a prefix of segments is ever deleted, and only segments wholly below the log end
//!   offset; the empty active segment never is;
//! - if every segment is to go, a new empty segment is rolled first, so the log end offset stays;
//! - a deleted segment's `.log` is renamed `.deleted` at once, and removed after
//!   `file_delete_delay_ms` with the segment's other files (its indexes, and the producer
//!   snapshots and transaction indexes below the first segment kept), which keep their names
//!   meanwhile; readers that hold its bytes keep valid bytes (the map outlives the file name).
//!
//! Kafka renames every one of those files `.deleted` at once. partlog renames only the `.log`:
//! one rename is 18-25 µs on ext4, and renaming four files a segment made deleting 100
//! segments cost ~10 ms, as much as Kafka's own. The directory means the same to either
//! reader meanwhile: an open (partlog's or Kafka's) loads no segment without its `.log`, removes
//! index files whose `.log` is gone, and drops producer snapshots below the log start.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{lock, Log};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::log::producer_state::remove_snapshots;
use crate::segment::Segment;

/// Why a segment was deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionReason {
    /// Every offset in it is below the log start offset (after `delete_records`).
    LogStartOffset,
    /// The log was over `retention_bytes` even without it.
    Size {
        /// The limit in force.
        retention_bytes: i64,
    },
    /// Its largest timestamp is older than `retention_ms`.
    Time {
        /// The segment's largest record timestamp (or file mtime if it has none).
        largest_timestamp: i64,
    },
}

/// One deleted segment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeletedSegment {
    /// Its base offset.
    pub base_offset: i64,
    /// The offset after its last one (the next segment's base offset).
    pub end_offset: i64,
    /// Its size in bytes.
    pub size: u64,
    /// Why it went.
    pub reason: RetentionReason,
}

/// What [`Log::apply_retention`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionReport {
    /// Segments deleted, oldest first.
    pub deleted: Vec<DeletedSegment>,
    /// The log start offset afterwards.
    pub log_start_offset: i64,
    /// Files of deleted segments whose delay had passed and that were removed (the renamed
    /// `.log`s, their indexes, and the producer snapshots and transaction indexes below them).
    pub files_removed: usize,
    /// Set when time retention stopped at a segment whose largest timestamp lies in the future
    /// (`(base offset, largest timestamp)`): such a segment, and every segment after it, stays
    /// until the clock passes that timestamp plus `retention_ms`.
    pub pinned_by_future_timestamp: Option<(i64, i64)>,
}

/// A segment as seen by [`Log::segment_infos`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SegmentInfo {
    /// Its base offset (its files' name).
    pub base_offset: i64,
    /// The offset after its last one: the next segment's base offset, or the log end offset.
    pub end_offset: i64,
    /// Bytes of batches.
    pub size: u64,
    /// Largest record timestamp, or -1 if it holds none. Time retention counts from this, so a
    /// producer's clock far in the future keeps the segment: this is where to see why.
    pub largest_timestamp: i64,
}

/// Files to be removed once `due_ms` has passed.
#[derive(Debug, Default)]
pub(super) struct PendingDelete {
    due_ms: i64,
    /// Files renamed `.deleted`.
    paths: Vec<PathBuf>,
    /// Files of deleted segments left under their names (indexes, transaction indexes), with
    /// the segment's base offset. Removed only while that base lies below the first segment:
    /// only then is the name certainly no live segment's (see `Log::remove_due_files`).
    orphans: Vec<(i64, PathBuf)>,
    /// The producer snapshots at these offsets go too: those of the deleted segments, from
    /// the first one's base to the first kept segment's.
    snapshots: Option<std::ops::Range<i64>>,
}

/// A segment retention chose to delete.
struct Doomed {
    segment: Arc<Segment>,
    /// The offset after its last one.
    end: i64,
    reason: RetentionReason,
}

/// What decides, segment by segment, whether the prefix goes on.
#[derive(Clone)]
enum Rule {
    StartOffset,
    Size { excess: i64, retention_bytes: i64 },
    Time { now_ms: i64, retention_ms: i64 },
}

impl Log {
    /// Applies retention as of `now_ms`: deletes the segments below the log start offset, then
    /// by `retention_bytes`, then by `retention_ms` (Kafka's order), and removes `.deleted`
    /// files whose delay has passed.
    ///
    /// # Errors
    /// [`Error::Io`] if the file system fails; [`Error::Corrupt`] if a segment's indexes cannot
    /// be read to learn its largest timestamp.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport> {
        self.apply_retention_below(now_ms, i64::MAX)
    }

    /// [`Log::apply_retention`], deleting only segments that end at or below `upper_bound`
    /// (Kafka deletes only below the high watermark: a follower may still need the rest).
    ///
    /// # Errors
    /// As [`Log::apply_retention`].
    pub fn apply_retention_below(&self, now_ms: i64, upper_bound: i64) -> Result<RetentionReport> {
        self.check_writable()?;
        let _structure = lock(&self.structure_lock);
        let mut report = RetentionReport {
            files_removed: self.remove_due_files(now_ms)?,
            ..RetentionReport::default()
        };
        let r = self.retain(now_ms, upper_bound, &mut report);
        self.fail_on_io(r)?;
        report.log_start_offset = self.log_start_offset();
        Ok(report)
    }

    fn retain(&self, now_ms: i64, upper_bound: i64, report: &mut RetentionReport) -> Result<()> {
        self.delete_prefix(Rule::StartOffset, now_ms, i64::MAX, report)?;
        if self.config.retention_bytes >= 0 {
            let excess =
                i64::try_from(self.size()).unwrap_or(i64::MAX) - self.config.retention_bytes;
            let rule = Rule::Size {
                excess,
                retention_bytes: self.config.retention_bytes,
            };
            self.delete_prefix(rule, now_ms, upper_bound, report)?;
        }
        if self.config.retention_ms >= 0 {
            let rule = Rule::Time {
                now_ms,
                retention_ms: self.config.retention_ms,
            };
            self.delete_prefix(rule, now_ms, upper_bound, report)?;
        }
        Ok(())
    }

    /// Moves the log start offset forward to `before_offset` (Kafka's DeleteRecords) and deletes
    /// the segments wholly below it. Never moves it backward: a smaller offset changes nothing.
    /// The new start offset is checkpointed before any file goes, so it survives a crash.
    ///
    /// Appends go on meanwhile: only the structure lock is held (see `delete_prefix`).
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] past the log end offset; [`Error::Io`] if the file system
    /// fails.
    pub fn delete_records(&self, before_offset: i64) -> Result<i64> {
        self.check_writable()?;
        // Under the structure lock no truncation runs: the log end offset only grows, and no
        // one else moves the log start.
        let _structure = lock(&self.structure_lock);
        let leo = self.log_end_offset();
        let lso = self.log_start_offset();
        if before_offset > leo {
            return Err(Error::OffsetOutOfRange {
                requested: before_offset,
                log_start_offset: lso,
                log_end_offset: leo,
            });
        }
        if before_offset <= lso {
            return Ok(lso);
        }
        let r = self.checkpoint_log_start(before_offset);
        self.fail_on_io(r)?;
        self.log_start_offset
            .store(before_offset, Ordering::Release);
        let mut report = RetentionReport::default();
        let now = self.clock.now_ms();
        let r = self.delete_prefix(Rule::StartOffset, now, i64::MAX, &mut report);
        self.fail_on_io(r)?;
        Ok(before_offset)
    }

    /// The longest prefix of `segments` (the log's list when the log end offset was `leo`)
    /// that `rule` allows, each ending at or below `upper_bound`. Time retention maps the
    /// segments whose largest timestamp is not known yet.
    fn doomed(
        &self,
        segments: &[Arc<Segment>],
        leo: i64,
        mut rule: Rule,
        upper_bound: i64,
        report: &mut RetentionReport,
    ) -> Result<Vec<Doomed>> {
        let lso = self.log_start_offset();
        let mut doomed = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            let end = segments.get(i + 1).map_or(leo, |s| s.base_offset());
            if (last && seg.size() == 0) || end > upper_bound {
                break;
            }
            let reason = match &mut rule {
                Rule::StartOffset => (end <= lso).then_some(RetentionReason::LogStartOffset),
                Rule::Size {
                    excess,
                    retention_bytes,
                } => {
                    let size = i64::try_from(seg.size()).unwrap_or(i64::MAX);
                    (*excess - size >= 0).then(|| {
                        *excess -= size;
                        RetentionReason::Size {
                            retention_bytes: *retention_bytes,
                        }
                    })
                }
                Rule::Time {
                    now_ms,
                    retention_ms,
                } => {
                    if seg.known_max_timestamp().is_none() {
                        self.pause(super::pause::Point::RetentionMapsSegment);
                    }
                    let (largest, mapped) =
                        seg.largest_timestamp_or_mtime(self.config.index_interval_bytes)?;
                    if mapped {
                        self.note_mapped(Arc::clone(seg));
                    }
                    if largest > *now_ms {
                        report.pinned_by_future_timestamp = Some((seg.base_offset(), largest));
                    }
                    (now_ms.saturating_sub(largest) > *retention_ms).then_some(
                        RetentionReason::Time {
                            largest_timestamp: largest,
                        },
                    )
                }
            };
            match reason {
                Some(reason) => doomed.push(Doomed {
                    segment: Arc::clone(seg),
                    end,
                    reason,
                }),
                None => break,
            }
        }
        Ok(doomed)
    }

    /// Deletes the longest prefix of segments that `rule` allows, each ending at or below
    /// `upper_bound`. Called with the structure lock held: no truncation, retention or
    /// delete-records runs meanwhile, so the segments before the active one stay as they are
    /// (appends only add segments at the end), and so does the log start.
    ///
    /// The slow work runs outside the writer lock, and appends go on meanwhile: learning
    /// segments' largest timestamps (mapping them), the log-start checkpoint (fsyncs), the
    /// renames and the directory sync. The writer lock is taken only if every segment is to go,
    /// to decide again with the log end offset held and roll a new segment first. The order
    /// that keeps a crash safe is as before: the new log start is durable, then published, then
    /// the segments leave the list, then their files are renamed, then the directory is synced.
    fn delete_prefix(
        &self,
        rule: Rule,
        now_ms: i64,
        upper_bound: i64,
        report: &mut RetentionReport,
    ) -> Result<()> {
        let segments: Vec<Arc<Segment>> = self.segments().clone();
        let leo = self.log_end_offset();
        let mut doomed = self.doomed(&segments, leo, rule.clone(), upper_bound, report)?;
        if !doomed.is_empty() && doomed.len() == segments.len() {
            // The active segment would go: decide again with the writer lock held (an append
            // may have grown it or rolled since), and keep the log end offset by rolling an
            // empty segment first if everything still goes. The segments' largest timestamps
            // were learned above: nothing is mapped under the lock.
            let mut w = self.writer()?;
            self.check_writable()?;
            let segments: Vec<Arc<Segment>> = self.segments().clone();
            let leo = self.log_end_offset();
            doomed = self.doomed(&segments, leo, rule, upper_bound, report)?;
            if !doomed.is_empty() && doomed.len() == segments.len() {
                self.roll(&mut w, leo)?;
            }
        }
        if doomed.is_empty() {
            return Ok(());
        }
        // The log start moves first (checkpointed, then published): a reader that then misses
        // a segment finds the start past the offset it asked for, and a timestamp lookup never
        // passes over records still at or above the published start. A segment follows the
        // doomed ones: the one that was next, or the one just rolled.
        let first_doomed = doomed[0].segment.base_offset();
        let first_kept = self
            .segments()
            .get(doomed.len())
            .map_or(self.log_end_offset(), |s| s.base_offset());
        if first_kept > self.log_start_offset() {
            self.checkpoint_log_start(first_kept)?;
            self.log_start_offset
                .fetch_max(first_kept, Ordering::AcqRel);
        }
        {
            let mut segs = self.segments_mut();
            debug_assert!(
                segs.iter()
                    .zip(&doomed)
                    .all(|(s, d)| Arc::ptr_eq(s, &d.segment)),
                "the doomed segments are no longer the list's prefix"
            );
            segs.drain(..doomed.len());
        }
        self.pause(super::pause::Point::RetentionDetached);
        lock(&self.mapped).retain(|m| !doomed.iter().any(|d| Arc::ptr_eq(&d.segment, m)));
        let mut pending = PendingDelete {
            due_ms: now_ms.saturating_add(self.config.file_delete_delay_ms),
            paths: Vec::with_capacity(doomed.len()),
            orphans: Vec::with_capacity(2 * doomed.len()),
            // A segment's snapshot goes with it (Kafka's `removeAndMarkSnapshotForDeletion`),
            // later: unlinking a file here costs 5-8x a rename on ext4. (Those below the
            // first doomed segment went with earlier segments, or at open.)
            snapshots: Some(first_doomed..first_kept),
        };
        for d in doomed {
            let base = d.segment.base_offset();
            pending.paths.extend(d.segment.rename_log_deleted()?);
            let paths = d.segment.paths();
            pending.orphans.push((base, paths.index.clone()));
            pending.orphans.push((base, paths.time_index.clone()));
            report.deleted.push(DeletedSegment {
                base_offset: base,
                end_offset: d.end,
                size: d.segment.size(),
                reason: d.reason,
            });
        }
        pending
            .orphans
            .extend(self.forget_txn_indexes_below(first_kept));
        // The renames are durable before the call returns (a crash would otherwise bring the
        // segments back, below the log start, until the next retention).
        checkpoint::sync_dir(&self.dir)?;
        lock(&self.pending_deletes).push(pending);
        Ok(())
    }

    /// Files renamed `.deleted` (a truncation's producer snapshots above the cut), removed with
    /// the segments' once `file_delete_delay_ms` has passed.
    pub(super) fn delete_later(&self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        let due_ms = self
            .clock
            .now_ms()
            .saturating_add(self.config.file_delete_delay_ms);
        lock(&self.pending_deletes).push(PendingDelete {
            due_ms,
            paths,
            ..PendingDelete::default()
        });
    }

    /// Removes the files whose delay has passed; returns how many. Called with the structure
    /// lock held, or at close.
    ///
    /// A deleted segment's index files (and the snapshots below it) kept their names, which a
    /// new segment could take again. They are removed only while their base offset lies below
    /// the first segment: under the structure lock no one else changes the first segment
    /// (appends only add segments after it), and every segment's files (any new one's too) lie
    /// at or above it. Only a full truncation (`reset_to`) lowers it, and that removes the
    /// orphans in its way first (`remove_orphans_at_or_above`).
    fn remove_due_files(&self, now_ms: i64) -> Result<usize> {
        let due: Vec<PendingDelete> = {
            let mut pending = lock(&self.pending_deletes);
            let (due, keep) = pending.drain(..).partition(|p| p.due_ms <= now_ms);
            *pending = keep;
            due
        };
        if due.is_empty() {
            return Ok(0);
        }
        let first_base = self
            .segments()
            .first()
            .map_or(i64::MAX, |s| s.base_offset());
        let mut removed = 0;
        for p in &due {
            for path in &p.paths {
                removed += usize::from(checkpoint::remove_if_exists(path)?);
            }
            for (base, path) in &p.orphans {
                if *base < first_base {
                    removed += usize::from(checkpoint::remove_if_exists(path)?);
                }
            }
        }
        let ranges: Vec<_> = due.iter().filter_map(|p| p.snapshots.clone()).collect();
        if !ranges.is_empty() {
            removed += remove_snapshots(&self.dir, |offset| {
                offset < first_base && ranges.iter().any(|r| r.contains(&offset))
            })?;
        }
        if removed > 0 {
            checkpoint::sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// A full truncation is about to start the log again at `offset`, which may lie at or below
    /// deleted segments' bases (`reset_to` may go below the log start): their files left under
    /// their names are removed now, before a new segment can take one of those names. Those
    /// below `offset` stay below the first segment and wait as before. The snapshots need
    /// nothing: a full truncation removes them all.
    pub(super) fn remove_orphans_at_or_above(&self, offset: i64) -> Result<()> {
        let mut pending = lock(&self.pending_deletes);
        for p in pending.iter_mut() {
            let (now, later) = std::mem::take(&mut p.orphans)
                .into_iter()
                .partition(|(base, _)| *base >= offset);
            p.orphans = later;
            for (_, path) in now {
                checkpoint::remove_if_exists(&path)?;
            }
            p.snapshots = None;
        }
        Ok(())
    }

    /// Removes every pending file now (at close).
    pub(super) fn remove_all_pending(&self) -> Result<usize> {
        self.remove_due_files(i64::MAX)
    }

    /// Each segment's base offset, end offset, size and largest timestamp (mapping segments
    /// whose largest timestamp is not known yet). Segments that retention or truncation removes
    /// while this runs are left out.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::Corrupt`] if a segment cannot be mapped.
    pub fn segment_infos(&self) -> Result<Vec<SegmentInfo>> {
        let segments: Vec<Arc<Segment>> = self.segments().clone();
        let leo = self.log_end_offset();
        let mut out = Vec::with_capacity(segments.len());
        for (i, seg) in segments.iter().enumerate() {
            let (largest_timestamp, mapped) =
                match seg.max_timestamp(self.config.index_interval_bytes) {
                    Ok(found) => found,
                    // Removed by retention or truncation since the list was taken.
                    Err(_) if seg.is_deleted() => continue,
                    Err(e) => return Err(e),
                };
            if mapped {
                self.note_mapped(Arc::clone(seg));
            }
            out.push(SegmentInfo {
                base_offset: seg.base_offset(),
                end_offset: segments.get(i + 1).map_or(leo, |s| s.base_offset()),
                size: seg.size(),
                largest_timestamp,
            });
        }
        Ok(out)
    }

    /// The periodic work of a log, as of `now_ms`: a flush if `flush_ms` has passed since the
    /// last one, then retention (which also removes `.deleted` files whose delay passed).
    ///
    /// # Errors
    /// As [`Log::flush`] and [`Log::apply_retention`].
    pub fn tick(&self, now_ms: i64) -> Result<RetentionReport> {
        if self.flush_due(now_ms)? {
            self.flush()?;
        }
        self.remove_expired_producers(now_ms)?;
        self.apply_retention(now_ms)
    }

    /// Runs [`Log::tick`] every `every` on a background thread, with the log's clock, until
    /// the returned handle is dropped or stopped. Errors are passed to `on_error`.
    pub fn spawn_maintenance(
        log: Arc<Log>,
        every: Duration,
        on_error: impl Fn(&Error) + Send + 'static,
    ) -> Maintenance {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || loop {
            match stopped.recv_timeout(every) {
                Err(RecvTimeoutError::Timeout) => {
                    if log.closed.load(Ordering::Acquire) {
                        return;
                    }
                    if let Err(e) = log.tick(log.clock.now_ms()) {
                        on_error(&e);
                    }
                }
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
        });
        Maintenance {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// Handle of a maintenance thread (see [`Log::spawn_maintenance`]); dropping it stops the
/// thread and waits for it.
#[derive(Debug)]
pub struct Maintenance {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.shutdown();
    }
}
