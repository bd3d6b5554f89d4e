//! The durability seam: every place where partlog makes something durable, or changes a
//! directory, tells this module what it did. In release builds these are empty inline
//! functions; under `cfg(test)` a recorder registered for a directory keeps, per file, the bytes
//! known to be on disk, and per directory the names a directory sync made durable, so that the
//! power-loss harness can build the disk images a power cut could leave (the model of ALICE,
//! OSDI 2014, and of LazyFS).
//!
//! What is recorded, and what it means in the model:
//! - `created(path)`: a name now links a new, empty file (or an existing one, which changes
//!   nothing). Not durable until the directory is synced.
//! - `renamed(from, to)`, `removed(path)`: namespace changes, not durable until the directory is
//!   synced.
//! - `file_synced(path)`: fsync / fdatasync of the whole file: its bytes and size are durable.
//! - `range_synced(path, start, end)`: msync of a byte range: those bytes are durable, and the
//!   size up to `end`.
//! - `dir_synced(dir)`: every namespace change in `dir` so far is durable.
//!
//! Plain writes (`pwrite`, stores into a map) are not recorded: what they left is read from the
//! files when an image is built. Every hook is called after the operation succeeded.

#[cfg(not(test))]
mod hooks {
    use std::path::Path;

    #[inline(always)]
    pub(crate) fn created(_: &Path) {}
    #[inline(always)]
    pub(crate) fn renamed(_: &Path, _: &Path) {}
    #[inline(always)]
    pub(crate) fn removed(_: &Path) {}
    #[inline(always)]
    pub(crate) fn file_synced(_: &Path) {}
    #[inline(always)]
    pub(crate) fn range_synced(_: &Path, _: usize, _: usize) {}
    #[inline(always)]
    pub(crate) fn dir_synced(_: &Path) {}
}

#[cfg(test)]
mod hooks {
    use std::path::Path;

    use super::trace::{with_recorder, Event};

    pub(crate) fn created(path: &Path) {
        with_recorder(path, |r, name| r.apply(Event::Created(name)));
    }
    pub(crate) fn renamed(from: &Path, to: &Path) {
        with_recorder(from, |r, from| {
            let to = super::trace::name_of(to);
            r.apply(Event::Renamed(from, to));
        });
    }
    pub(crate) fn removed(path: &Path) {
        with_recorder(path, |r, name| r.apply(Event::Removed(name)));
    }
    pub(crate) fn file_synced(path: &Path) {
        with_recorder(path, |r, name| r.apply(Event::FileSynced(name)));
    }
    pub(crate) fn range_synced(path: &Path, start: usize, end: usize) {
        with_recorder(path, |r, name| {
            r.apply(Event::RangeSynced(name, start, end))
        });
    }
    pub(crate) fn dir_synced(dir: &Path) {
        super::trace::with_dir_recorder(dir, |r| r.apply(Event::DirSynced));
    }
}

pub(crate) use hooks::*;

#[cfg(test)]
pub(crate) mod trace;
