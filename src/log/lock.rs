//! The directory lock: one holder per directory, across processes and within one.
//!
//! # Why a POSIX record lock and a registry
//! A `flock` belongs to the open file description, which every `fork` shares with the child
//! until the child's `exec` closes it (`O_CLOEXEC`). While any thread spawned a process, a
//! directory whose `Log` had just been dropped stayed locked by that child, and `Log::open`
//! answered [`Error::Locked`] for a directory nobody held. Kafka locks with
//! `FileChannel.tryLock`, a lock owned by the process; so does partlog: a POSIX `fcntl`
//! record lock (`F_SETLK`, whole file), which a child never inherits.
//!
//! A POSIX lock has two traps, and this module owns both:
//! - It never conflicts within its own process, so a registry of the directories this process
//!   holds (by device and inode of the directory, so any path to it counts) refuses a second
//!   holder here.
//! - The process loses it when it closes *any* descriptor of the lock file. So the file is
//!   opened only by a holder that is registered (no one else in the process has it open), only
//!   [`is_locked`] probes it, and only when the registry says this process does not hold it;
//!   and a holder closes its descriptor before it leaves the registry.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustix::fs::{fcntl_lock, FlockOperation};

use super::LOCK_FILE;
use crate::error::{Error, Result};

/// (device, inode) of every directory a `DirLock` of this process holds.
static HELD: Mutex<BTreeSet<(u64, u64)>> = Mutex::new(BTreeSet::new());

fn held() -> MutexGuard<'static, BTreeSet<(u64, u64)>> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

fn dir_key(dir: &Path) -> Result<(u64, u64)> {
    let meta = fs::metadata(dir).map_err(|e| Error::io(dir, "stat", e))?;
    Ok((meta.dev(), meta.ino()))
}

/// Holds the lock of one directory until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// The locked descriptor; `None` only while dropping.
    file: Option<File>,
    key: (u64, u64),
}

impl DirLock {
    /// Takes the lock of `dir` (which must exist), creating its lock file.
    ///
    /// # Errors
    /// [`Error::Locked`] if another process, or another holder in this one, has it;
    /// [`Error::Io`] if the lock file cannot be opened or locked.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let key = dir_key(dir)?;
        if !held().insert(key) {
            return Err(Error::Locked {
                path: dir.to_owned(),
            });
        }
        // Registered: no one else in this process opens the file from here on.
        let release = |e: Error| {
            held().remove(&key);
            e
        };
        let path = dir.join(LOCK_FILE);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| release(Error::io(&path, "open", e)))?;
        crate::durability::created(&path);
        match fcntl_lock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock {
                file: Some(file),
                key,
            }),
            Err(e) if is_contended(e) => {
                drop(file);
                Err(release(Error::Locked {
                    path: dir.to_owned(),
                }))
            }
            Err(e) => {
                drop(file);
                Err(release(Error::io(&path, "lock", e.into())))
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Close (which releases the lock) before leaving the registry: a new holder in this
        // process may open the file only once this descriptor is gone.
        drop(self.file.take());
        held().remove(&self.key);
    }
}

fn is_contended(e: rustix::io::Errno) -> bool {
    e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::ACCESS
}

/// True if a `Log` (or another holder of the directory lock, such as an
/// [`OffsetStore`](crate::topic::OffsetStore)) holds `dir`, in this process or another. The
/// probe changes no file; a `Log::open` of `dir` in another process racing with it may fail
/// with [`Error::Locked`] for that instant. For inspection tools (`partlog verify`).
///
/// # Errors
/// [`Error::Io`] if `dir` or its lock file cannot be read.
pub fn is_locked(dir: impl AsRef<Path>) -> Result<bool> {
    let dir = dir.as_ref();
    let key = dir_key(dir)?;
    let held = held();
    // Kept locked while probing, so no holder of this process opens the file meanwhile (the
    // probe's close would release its lock).
    if held.contains(&key) {
        return Ok(true);
    }
    let path: PathBuf = dir.join(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&path, "open", e)),
    };
    let answer = match fcntl_lock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = fcntl_lock(&file, FlockOperation::NonBlockingUnlock);
            false
        }
        Err(e) if is_contended(e) => true,
        Err(e) => return Err(Error::io(&path, "lock", e.into())),
    };
    drop(file);
    drop(held);
    Ok(answer)
}
