//! The files of a log directory, classified by name (nothing is opened).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use partlog::segment::{parse_file_name, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX};

/// Suffixes of files an interrupted operation leaves behind (removed when the log opens).
pub const LEFTOVER_SUFFIXES: [&str; 4] = [".deleted", ".cleaned", ".swap", ".tmp"];

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
    /// Files with a leftover suffix (`.deleted`, `.cleaned`, `.swap`, `.tmp`).
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
