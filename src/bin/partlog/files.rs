//! The files of a log directory, classified by name (nothing is opened).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use partlog::log::{CLEAN_SHUTDOWN_FILE, LEFTOVER_SUFFIXES};
use partlog::segment::{parse_file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// What kind of file a path names, judging by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `.log` segment file.
    Log,
    /// An `.index` offset index.
    OffsetIndex,
    /// A `.timeindex` time index.
    TimeIndex,
}

/// The kind of `path` by its suffix, and the base offset its name encodes (if it is a
/// 20-digit segment name).
pub fn classify(path: &Path) -> Option<(Kind, Option<i64>)> {
    let name = path.file_name()?.to_str()?;
    [
        (Kind::Log, LOG_SUFFIX),
        (Kind::OffsetIndex, INDEX_SUFFIX),
        (Kind::TimeIndex, TIME_INDEX_SUFFIX),
    ]
    .into_iter()
    .find(|(_, suffix)| name.ends_with(suffix))
    .map(|(kind, suffix)| (kind, parse_file_name(name, suffix)))
}

/// The segment files and leftovers of a directory.
#[derive(Debug, Default)]
pub struct Listing {
    /// `.log` files by base offset.
    pub logs: BTreeMap<i64, PathBuf>,
    /// `.index` files by base offset.
    pub indexes: BTreeMap<i64, PathBuf>,
    /// `.timeindex` files by base offset.
    pub time_indexes: BTreeMap<i64, PathBuf>,
    /// Files with a leftover suffix (the library's [`LEFTOVER_SUFFIXES`]: what opening the log
    /// removes).
    pub leftovers: Vec<PathBuf>,
    /// Files that end like segment files but whose name is not a 20-digit base offset.
    pub misnamed: Vec<PathBuf>,
}

/// Lists `dir`.
///
/// # Errors
/// The I/O error of reading the directory.
pub fn list(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if LEFTOVER_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            listing.leftovers.push(path);
            continue;
        }
        match classify(&path) {
            Some((Kind::Log, Some(base))) => {
                listing.logs.insert(base, path);
            }
            Some((Kind::OffsetIndex, Some(base))) => {
                listing.indexes.insert(base, path);
            }
            Some((Kind::TimeIndex, Some(base))) => {
                listing.time_indexes.insert(base, path);
            }
            Some((_, None)) => listing.misnamed.push(path),
            None => {}
        }
    }
    listing.leftovers.sort();
    listing.misnamed.sort();
    Ok(listing)
}

/// How many of the whole `size`-byte entries at the start of `data` (an index file's contents)
/// hold data. With `preallocated`, a trailing run of all-zero entries is free space that the
/// writer preallocated and is not counted; without it every whole entry counts, zeros included
/// (an all-zero entry is valid data: a time-index entry for timestamp 0 at the segment's base
/// offset, an offset-index entry for the base offset at position 0).
///
/// Index files are preallocated only while their segment is active and the log open: closing
/// the log trims them. So zeros may be preallocated space only in the last segment of a log
/// without the clean-shutdown marker. Shared by `dump` and `verify`, so that both read the same
/// entries from a file.
pub fn used_entries(data: &[u8], size: usize, preallocated: bool) -> usize {
    let whole = data.len() / size;
    if !preallocated {
        return whole;
    }
    data.chunks_exact(size)
        .rposition(|c| c.iter().any(|&b| b != 0))
        .map_or(0, |i| i + 1)
}

/// Whether the index file of the segment based at `base` in `dir` may end in preallocated space
/// (see [`used_entries`]): the log was not closed cleanly and no later segment exists. An
/// unknown base (a misnamed file) or an unreadable directory count as "may".
pub fn index_may_be_preallocated(dir: &Path, base: Option<i64>) -> bool {
    if dir.join(CLEAN_SHUTDOWN_FILE).exists() {
        return false;
    }
    let Some(base) = base else { return true };
    list(dir).map_or(true, |l| l.logs.keys().all(|&b| b <= base))
}
