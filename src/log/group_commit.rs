//! Group commit: many appenders that each need their append on disk share flushes.
//!
//! A [`FlushSequencer`] lets an appender wait until the log's recovery point covers its last
//! offset. At most one of the waiters runs [`Log::flush`] at a time; the others wait on a
//! condition variable. A flush syncs every byte appended before it took the log end offset, so
//! one fsync acknowledges every append that finished before it began: under many writers the
//! number of fsyncs is a small fraction of the number of appends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use super::Log;
use crate::error::{Error, Result};

/// Shares flushes between appenders that wait for durability. See the module docs.
///
/// ```
/// use partlog::log::FlushSequencer;
/// use partlog::{batch::SimpleRecord, Config, Log};
///
/// let dir = tempfile::tempdir()?;
/// let log = Log::open(dir.path(), Config::default())?;
/// let sequencer = FlushSequencer::new();
/// let info = log.append(&[SimpleRecord::new(0, None::<&str>, Some("v"))])?;
/// sequencer.wait_durable(&log, info.last_offset + 1)?;
/// assert!(log.recovery_point() > info.last_offset);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct FlushSequencer {
    /// True while one waiter runs a flush.
    flushing: Mutex<bool>,
    /// Signalled when a flush ends.
    flushed: Condvar,
    /// Flushes run so far.
    flushes: AtomicU64,
}

impl FlushSequencer {
    /// A sequencer with no flush run yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns once every offset below `end_offset` is on disk (`log.recovery_point() >=
    /// end_offset`), flushing if no other waiter is: at most one flush runs at a time, and each
    /// covers every append before it.
    ///
    /// # Errors
    /// [`Error::TruncatedBeforeDurable`] if the log was truncated below `end_offset`
    /// before those offsets became durable; whatever [`Log::flush`] returns.
    pub fn wait_durable(&self, log: &Log, end_offset: i64) -> Result<()> {
        loop {
            if log.recovery_point() >= end_offset {
                return Ok(());
            }
            let leo = log.log_end_offset();
            if leo < end_offset {
                return Err(Error::TruncatedBeforeDurable {
                    offset: end_offset,
                    log_end_offset: leo,
                });
            }
            let mut flushing = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
            if *flushing {
                // Woken when that flush ends: it may have covered us.
                let _unused = self
                    .flushed
                    .wait(flushing)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            if log.recovery_point() >= end_offset {
                return Ok(());
            }
            *flushing = true;
            drop(flushing);
            let r = log.flush();
            self.flushes.fetch_add(1, Ordering::Relaxed);
            *self.flushing.lock().unwrap_or_else(PoisonError::into_inner) = false;
            self.flushed.notify_all();
            r?;
        }
    }

    /// Flushes this sequencer ran so far.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}
