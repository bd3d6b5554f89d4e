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
//! - It never conflicts within its own process, so a registry of the lock files this process
//!   holds (by device and inode, so any path to the directory counts, and a directory that was
//!   removed and made again is a new one) refuses a second holder here.
//! - The process loses it when it closes *any* descriptor of the lock file. So, under the
//!   registry's mutex, a lock file is opened only after `stat` shows that this process does not
//!   hold it; and should the file have been replaced between the `stat` and the `open` by one
//!   this process holds, the new descriptor is kept with the holder's entry and closed only
//!   after the holder's own.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::fs::{self, File, Metadata};

use super::LOCK_FILE;
use crate::error::{Error, Result};

/// The lock files this process holds, by (device, inode), each with the descriptors that must
/// not be closed before the holder's (see the module docs; almost always none).
type Registry = BTreeMap<(u64, u64), Vec<File>>;

static HELD: Mutex<Registry> = Mutex::new(BTreeMap::new());

fn held() -> MutexGuard<'static, Registry> {
    HELD.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key(meta: &Metadata) -> (u64, u64) {
    fs::file_key(meta)
}

/// Whether this process holds the lock file at `path`, by `stat` (which opens nothing).
fn held_here(held: &Registry, path: &Path) -> Result<bool> {
    match fs::metadata(path) {
        Ok(meta) => Ok(held.contains_key(&key(&meta))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, "stat", e)),
    }
}

/// If this process holds the file `file` was opened on, keeps `file` open with the holder's
/// entry (closing it would release the holder's lock) and returns `None`; else gives it back
/// with its registry key.
fn park_if_held(
    held: &mut Registry,
    path: &Path,
    file: File,
) -> Result<Option<(File, (u64, u64))>> {
    let meta = file.metadata().map_err(|e| Error::io(path, "stat", e))?;
    match held.get_mut(&key(&meta)) {
        Some(parked) => {
            parked.push(file);
            Ok(None)
        }
        None => Ok(Some((file, key(&meta)))),
    }
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
        Self::acquire_file(&dir.join(LOCK_FILE), dir)
    }

    /// Takes the lock file `path` (in an existing directory), creating it; `holder` is what
    /// [`Error::Locked`] names. For a lock other than a directory's `.lock`.
    ///
    /// # Errors
    /// As [`DirLock::acquire`].
    pub(crate) fn acquire_file(path: &Path, holder: &Path) -> Result<DirLock> {
        let locked = || Error::Locked {
            path: holder.to_owned(),
        };
        let path = path.to_owned();
        // Held until the lock is taken and registered: no other holder of this process can
        // come or go meanwhile.
        let mut held = held();
        if held_here(&held, &path)? {
            return Err(locked());
        }
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, "open", e))?;
        crate::durability::created(&path);
        let Some((file, key)) = park_if_held(&mut held, &path, file)? else {
            return Err(locked());
        };
        match fs::try_lock_exclusive(&file) {
            Ok(()) => {
                held.insert(key, Vec::new());
                Ok(DirLock {
                    file: Some(file),
                    key,
                })
            }
            Err(e) if is_contended(e) => Err(locked()),
            Err(e) => Err(Error::io(&path, "lock", e.into())),
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = held();
        // Closing the descriptor releases the lock; then any parked one may go too.
        drop(self.file.take());
        drop(held.remove(&self.key));
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
/// [`Error::Io`] if the lock file cannot be read.
pub fn is_locked(dir: impl AsRef<Path>) -> Result<bool> {
    let path = dir.as_ref().join(LOCK_FILE);
    let mut held = held();
    if held_here(&held, &path)? {
        return Ok(true);
    }
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io(&path, "open", e)),
    };
    let Some((file, _)) = park_if_held(&mut held, &path, file)? else {
        return Ok(true);
    };
    match fs::try_lock_shared(&file) {
        Ok(()) => {
            let _ = fs::unlock(&file);
            Ok(false)
        }
        Err(e) if is_contended(e) => Ok(true),
        Err(e) => Err(Error::io(&path, "lock", e.into())),
    }
}
