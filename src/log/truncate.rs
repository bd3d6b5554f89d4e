//! Truncation: dropping every batch at or after an offset (a follower whose log diverged from its
//! leader's does this, as Kafka's `truncateTo`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{lock, Log};
use crate::checkpoint;
use crate::error::{Error, Result};
use crate::segment::active::{ActiveSegment, OpenMode};
use crate::segment::Segment;

impl Log {
    /// Removes every batch holding an offset at or after `offset`; the log end offset becomes
    /// the base offset of the batch that held `offset` (batches are never split), or `offset`
    /// if it starts a batch. Does nothing at or past the log end offset.
    ///
    /// If the batch holding `offset` began below the log start offset, cutting at its base
    /// would hand out again offsets that were deleted: the log is then emptied and restarts at
    /// `offset` (Kafka's rule), so the log start offset never decreases.
    ///
    /// A cut inside the active segment is made in place (its cost is what it cuts, plus one
    /// fsync) unless a reader still holds bytes of that segment: readers that hold batches from
    /// the cut part keep valid bytes, since the kept part is then rewritten to a new file, never
    /// changed under a reader's map. A cut in an older segment rewrites that segment's kept
    /// part; later segments are deleted.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] below the log start offset; [`Error::Io`] if the file system
    /// fails (the log then refuses writes until reopened, as after any error once the cut began).
    pub fn truncate_to(&self, offset: i64) -> Result<i64> {
        self.check_writable()?;
        // Held until the log is marked failed if the cut fails: a reader that waits for it then
        // sees either a consistent list or a failed log (see `read::Log::retry`).
        let _structure = lock(&self.structure_lock);
        let mut w = self.writer()?;
        let leo = self.log_end_offset();
        if offset >= leo {
            return Ok(leo);
        }
        let lso = self.log_start_offset();
        if offset < lso {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start_offset: lso,
                log_end_offset: leo,
            });
        }
        let started = self.truncation_count();
        let r = self
            .truncate_locked(&mut w, offset)
            .and_then(|leo| self.rebuild_producer_state(&mut w).map(|()| leo));
        self.fail_if_cut(r, started)
    }

    /// Removes every segment and starts an empty one at `offset`, which becomes both the log
    /// start and the log end offset (Kafka's `truncateFullyAndStartAt`: a follower whose log
    /// end is below its leader's log start does this). Returns `offset`.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] below the log start offset (it never decreases);
    /// [`Error::Io`] if the file system fails (the log then refuses writes until reopened).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<i64> {
        self.truncate_fully(offset, |log| log.log_start_offset())
    }

    /// [`truncate_fully_and_start_at`](Self::truncate_fully_and_start_at) at any offset, below
    /// the log start offset too (Kafka's `truncateFullyAndStartAt` takes any): a follower's
    /// reset, when its leader's first batch begins below the follower's log start (the leader's
    /// log start is inside that batch) or, after an unclean election, its leader's history
    /// leaves the follower's below the follower's log start. Nothing of the log is kept, so no
    /// deleted offset is handed out again from it. Returns `offset`.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] for a negative offset; [`Error::Io`] if the file system
    /// fails (the log then refuses writes until reopened).
    pub fn reset_to(&self, offset: i64) -> Result<i64> {
        self.truncate_fully(offset, |_| 0)
    }

    /// Empties the log and starts it at `offset`, which must not be below `lowest(self)`
    /// (read under the locks). A truncation: it holds the structure lock as the others do, so
    /// a read's last attempt (see `read::Log::retry`) never races it.
    fn truncate_fully(&self, offset: i64, lowest: impl FnOnce(&Log) -> i64) -> Result<i64> {
        self.check_writable()?;
        let _structure = lock(&self.structure_lock);
        let mut w = self.writer()?;
        if offset < lowest(self) {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start_offset: self.log_start_offset(),
                log_end_offset: self.log_end_offset(),
            });
        }
        let started = self.truncation_count();
        let r = self.truncate_fully_locked(&mut w, offset);
        self.fail_if_cut(r, started)
    }

    /// A truncation that failed once it had begun (`begin_truncation` counted it) left the
    /// segments, offsets and active segment in a state no one checked: the log refuses writes
    /// until reopened, whatever the error (recovery puts it right). Before that point only an
    /// I/O error does.
    fn fail_if_cut(&self, r: Result<i64>, started: u64) -> Result<i64> {
        if r.is_err() && self.truncation_count() != started {
            self.failed.store(true, Ordering::Release);
        }
        self.fail_on_io(r)
    }

    fn truncate_fully_locked(&self, w: &mut super::Writer, offset: i64) -> Result<i64> {
        // 1. The recovery point comes down if it is above `offset`.
        self.begin_truncation(offset)?;
        // 2. The new start is durable before any file goes, so a crash cannot bring back an
        //    offset below it; then published, start and end in the order that keeps
        //    start <= end for readers.
        self.checkpoint_log_start(offset)?;
        if offset > self.log_end_offset() {
            self.log_end_offset.store(offset, Ordering::Release);
            self.log_start_offset.store(offset, Ordering::Release);
        } else {
            self.log_start_offset.store(offset, Ordering::Release);
            self.log_end_offset.store(offset, Ordering::Release);
        }
        // 3. Every segment goes, newest first, and an empty one starts at `offset`.
        let all: Vec<Arc<Segment>> = self.segments().clone();
        w.active = None;
        self.remove_newest_first(&all)?;
        self.remove_orphans_at_or_above(offset)?;
        let active = ActiveSegment::create(&self.dir, offset, &self.config, self.clock.now_ms())?;
        checkpoint::sync_dir(&self.dir)?;
        *self.segments_mut() = vec![Arc::clone(&active.segment)];
        lock(&self.mapped).clear();
        w.active = Some(active);
        // 4. Nothing below `offset` is left to recover.
        if self.recovery_point() < offset {
            self.reset_recovery_point(offset)?;
        }
        // 5. Nor any producer state (Kafka's `truncateFullyAndStartAt`).
        self.remove_all_snapshots()?;
        self.install_producers(
            w,
            super::producer_state::ProducerStateManager::new_at(offset),
            None,
        );
        Ok(offset)
    }

    /// Removes the files of `segments` (in base-offset order), newest first, syncing the
    /// directory after each: unlinks are not ordered on disk without it, and a crash in between
    /// must leave a prefix of the log (found by the power-loss harness: a crash during
    /// `truncate_fully_and_start_at` kept a newer segment whose older neighbour was gone, and
    /// the log reopened with a start it never had).
    fn remove_newest_first(&self, segments: &[Arc<Segment>]) -> Result<()> {
        for s in segments.iter().rev() {
            s.mark_deleted();
            s.paths().remove_all()?;
            checkpoint::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn truncate_locked(&self, w: &mut super::Writer, offset: i64) -> Result<i64> {
        let target = self.floor_segment(offset).ok_or(Error::Closed)?;
        // Where the cut falls in the target segment: at the batch holding `offset`.
        let view = self.view_of(&target)?;
        let data = view.data();
        let (pos, new_leo) = match view.locate(&target, offset, &data)? {
            Some((pos, h)) => (pos, h.base_offset.min(offset)),
            // `offset` lies past the segment's last batch (it is the active one).
            None => (data.len(), offset),
        };
        if new_leo < self.log_start_offset() {
            // The batch holding `offset` straddles the log start: keeping its base as the end
            // would lower the start and reuse deleted offsets.
            drop((data, view));
            return self.truncate_fully_locked(w, offset);
        }

        // 0. Producer snapshots above the cut are renamed `.deleted` first (removed after the
        //    delete delay, or by the next open), without a sync of their own: the directory
        //    sync below makes them durable, or the recovery point's rename's does (one
        //    directory sync, not two). A crash before that leaves the log uncut and an older
        //    snapshot to start from: the state is replayed from it, never wrong.
        let retired = self.retire_snapshots((
            std::ops::Bound::Excluded(new_leo),
            std::ops::Bound::Unbounded,
        ))?;
        let any_retired = !retired.is_empty();
        self.delete_later(retired);
        // 1. The recovery point comes down first: batches appended after the cut must be
        //    validated by recovery if we crash before they are flushed. A flush in flight is
        //    told not to raise it again.
        if !self.begin_truncation(new_leo)? && any_retired {
            checkpoint::sync_dir(&self.dir)?;
        }
        // 2. Readers stop asking for what is going away.
        self.log_end_offset.store(new_leo, Ordering::Release);

        // 3. A cut inside the active segment (a follower's usual case) happens in place: it
        //    costs what it cuts. Not while a reader holds the segment's bytes: they must not
        //    change under it, and the kept part is then rewritten to a new file instead.
        let target_is_active = w
            .active
            .as_ref()
            .is_some_and(|a| a.base_offset() == target.base_offset());
        let (view, data) = if target_is_active {
            drop((data, view));
            let interval = self.config.index_interval_bytes;
            let active = w.active.as_mut().ok_or(Error::Closed)?;
            if active.truncate_in_place(pos, new_leo, interval)? {
                return Ok(new_leo);
            }
            let view = self.view_of(&target)?;
            let data = view.data();
            (view, data)
        } else {
            (view, data)
        };

        // 4. Later segments go, newest first, so a crash in between leaves a prefix of the log.
        let later: Vec<Arc<Segment>> = {
            let segs = self.segments();
            segs.iter()
                .filter(|s| s.base_offset() > target.base_offset())
                .cloned()
                .collect()
        };
        w.active = None;
        self.remove_newest_first(&later)?;

        // 5. The target segment is rewritten with the kept bytes and reopened as the active one.
        let kept = data.slice(0..pos);
        let tmp = self
            .dir
            .join(crate::segment::file_name(target.base_offset(), ".tmp"));
        checkpoint::write_atomically(&tmp, &kept)?;
        // Readers that chose the old segment start again, and none maps it from now on: its
        // name is about to belong to the rewritten file.
        target.mark_deleted();
        let p = target.paths();
        // Unlinked, not truncated: a reader may still map the old ones.
        checkpoint::remove_if_exists(&p.index)?;
        checkpoint::remove_if_exists(&p.time_index)?;
        crate::fs::rename(&tmp, &p.log).map_err(|e| Error::io(&p.log, "rename", e))?;
        crate::durability::renamed(&tmp, &p.log);
        checkpoint::sync_dir(&self.dir)?;
        drop((data, view, kept));
        let opened = ActiveSegment::open(
            &self.dir,
            target.base_offset(),
            &self.config,
            self.clock.now_ms(),
            // The kept batches were part of the log: their framing is all that needs checking.
            OpenMode::Recover {
                trusted_below: new_leo,
            },
        )?;
        let mut active = opened.active;
        // A cut in an offset gap leaves the log end at `offset`, above the kept batches (as
        // Kafka's `truncateTo` does); the next append takes it.
        if opened.truncated.is_none() {
            active.next_offset = active.next_offset.max(new_leo);
        }
        let next = active.next_offset;
        {
            let mut segs = self.segments_mut();
            segs.retain(|s| s.base_offset() < target.base_offset());
            segs.push(Arc::clone(&active.segment));
        }
        lock(&self.mapped).retain(|s| s.base_offset() < target.base_offset());
        w.active = Some(active);
        // The rewritten segment holds exactly the kept batches.
        self.log_end_offset.store(next, Ordering::Release);
        Ok(next)
    }
}
