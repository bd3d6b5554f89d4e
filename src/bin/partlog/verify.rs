//! `partlog verify`: checks a log directory, read-only, without opening it as a log (opening
//! would recover, and so modify, it).
//!
//! Checked, in order: index files without their `.log` (orphans, a warning); then per segment,
//! in base offset order, every batch fully valid, the first batch starting at or above the
//! segment's base offset and each next one above the previous one's last offset (a batch
//! starting at or below it overlaps: a problem; so is a batch that leaves a gap when the one
//! right after it starts below its end, as its base offset rotted upwards), all within
//! `[base offset, next segment's base offset)`, no record timestamp above
//! its batch's `maxTimestamp`; every `.index` entry increasing and pointing at the start of the
//! batch whose base offset it names; every `.timeindex` entry increasing and naming the first
//! batch that reached its timestamp, the last entry holding the segment's largest timestamp;
//! finally the checkpoints. The first problem ends the check.
//!
//! Preallocated space (trailing zeros) in the last segment's files and a missing final time-index
//! entry in a log that was not closed cleanly are what a crash leaves, and what the next open
//! repairs: they are warnings. Anywhere else they are problems (in a cleanly closed log, zero
//! index entries are data: closing trims the index files). Also warnings: a log that another
//! process holds open (its files may change under the reader), leftover temporary files and
//! orphan index files (opening removes both), and files that look like segment files but are
//! misnamed.
//!
//! Offset gaps (a batch starting above the offset after the previous one, a segment ending
//! below the next one's base offset) are legal, as in Kafka's logs (compaction, a follower's
//! copy of a compacted leader, a truncation inside a batch): they are listed as information,
//! as the library keeps them. So `verify` cannot tell a gap from batches that were cleanly
//! removed from the middle of a file or from the end of a segment; what partlog's own crashes
//! leave (zeros, a torn length, a bad CRC) it does find, as the library's recovery does.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use partlog::batch::{BatchHeader, RecordBatch, TimestampType};
use partlog::index::{IndexEntry, OffsetEntry, TimeEntry};
use partlog::log::{
    read_offset_checkpoint, CLEAN_SHUTDOWN_FILE, LOCK_FILE, LOG_START_OFFSET_FILE,
    RECOVERY_POINT_FILE,
};
use partlog::segment::{file_stem, SegmentPaths, LOG_SUFFIX};

use crate::files;
use crate::text::human_bytes;
use crate::walk::{walk, Step};
use crate::{CliError, Outcome};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory. Prints a summary and exits 0 if all is well; prints
    /// `file:position: problem` and exits 1 otherwise.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// "No timestamp", as Kafka writes it: records with it get no time-index entry.
const NO_TIMESTAMP: i64 = -1;

/// Something wrong (or worth a warning) at a byte position of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub path: PathBuf,
    /// Byte position in the file (0 for a problem with the file as a whole).
    pub position: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}",
            self.path.display(),
            self.position,
            self.message
        )
    }
}

/// Why a directory did not verify.
#[derive(Debug)]
pub enum VerifyError {
    /// The data is wrong.
    Problem(Finding),
    /// A file could not be read.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Problem(p) => p.fmt(f),
            VerifyError::Io { path, op, source } => {
                write!(f, "cannot {op} {}: {source}", path.display())
            }
        }
    }
}

fn problem(path: &Path, position: u64, message: impl Into<String>) -> VerifyError {
    VerifyError::Problem(finding(path, position, message))
}

fn finding(path: &Path, position: u64, message: impl Into<String>) -> Finding {
    Finding {
        path: path.to_owned(),
        position,
        message: message.into(),
    }
}

fn io_error<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> VerifyError + 'a {
    move |source| VerifyError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// What a directory that verified holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of segments.
    pub segments: usize,
    /// Base offsets of the first and last segments.
    pub base_offsets: Option<(i64, i64)>,
    /// Number of batches.
    pub batches: u64,
    /// Number of records (as the batch headers count them).
    pub records: u64,
    /// Bytes of batches (preallocated space excluded).
    pub bytes: u64,
    /// Offset index entries.
    pub index_entries: u64,
    /// Time index entries.
    pub time_index_entries: u64,
    /// First and last offsets held.
    pub offsets: Option<(i64, i64)>,
    /// The offset the next record would get (None without segments).
    pub log_end_offset: Option<i64>,
    /// The log-start-offset checkpoint, if present.
    pub log_start_offset: Option<i64>,
    /// The recovery-point checkpoint, if present and readable.
    pub recovery_point: Option<i64>,
    /// Whether the clean-shutdown marker is present.
    pub clean_shutdown: bool,
    /// Offset gaps, where the offsets skip (legal: see the module docs), in log order.
    pub gaps: Vec<Finding>,
}

/// What verifying one `.log` learned about its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchInfo {
    /// Byte position in the `.log`.
    position: u64,
    /// Offset of its first record.
    base_offset: i64,
    /// Offset of its last record.
    last_offset: i64,
    /// Its `maxTimestamp`.
    max_timestamp: i64,
    /// Largest `max_timestamp` of the batches before this one in the segment.
    max_before: i64,
}

#[derive(Debug, Default)]
struct SegmentFacts {
    /// The valid batches, in file order (so by position and by offset).
    batches: Vec<BatchInfo>,
    /// Records, as the headers count them.
    records: u64,
    /// Bytes of valid batches from the start of the file.
    valid_end: u64,
    /// Largest batch max timestamp, or [`NO_TIMESTAMP`].
    max_timestamp: i64,
    /// Offset gaps found (information).
    gaps: Vec<Finding>,
}

/// One segment to check, with its place in the log.
#[derive(Debug)]
struct SegmentCheck<'a> {
    /// The segment's base offset.
    base: i64,
    /// The next segment's base offset, if this is not the last segment.
    next_base: Option<i64>,
    /// True for the last (active) segment.
    is_last: bool,
    /// Whether the clean-shutdown marker is present.
    clean: bool,
    /// Where warnings go.
    warnings: &'a mut Vec<Finding>,
}

impl SegmentCheck<'_> {
    /// Exclusive bound of the relative offsets the segment may hold.
    fn relative_end(&self) -> i64 {
        self.next_base
            .map_or(i64::from(i32::MAX) + 1, |n| n.saturating_sub(self.base))
    }

    fn verify_log(&mut self, path: &Path) -> Result<SegmentFacts, VerifyError> {
        let data = Bytes::from(fs::read(path).map_err(io_error(path, "read"))?);
        let mut facts = SegmentFacts {
            max_timestamp: NO_TIMESTAMP,
            ..SegmentFacts::default()
        };
        // The lowest offset the next batch may start at: the library's open cuts the segment at
        // the first batch that starts below it (an overlap); above it is an offset gap.
        let mut expected = self.base;
        let mut walker = walk(data.clone());
        for step in walker.by_ref() {
            match step {
                Step::Batch {
                    position,
                    header,
                    batch,
                } => {
                    let pos = position as u64;
                    let batch = batch.map_err(|e| {
                        problem(
                            path,
                            pos,
                            format!("invalid batch (base offset {}): {e}", header.base_offset),
                        )
                    })?;
                    if let Some(gap) = self.check_offsets(path, pos, &batch, expected)? {
                        // Offsets only grow, gaps or not: a gap right before a batch that
                        // starts below this one's end means this base offset (outside the CRC)
                        // rotted upwards, and the library's open cuts the segment here.
                        let after = data
                            .get(position + header.total_size()..)
                            .unwrap_or_default();
                        if BatchHeader::parse(after).is_ok_and(|h| {
                            h.total_size() <= after.len() && h.base_offset < header.next_offset()
                        }) {
                            return Err(problem(
                                path,
                                pos,
                                format!(
                                    "batch base offset {} leaves a gap after offset {expected} and the next batch \
                                     starts below its end (a base offset rotted upwards)",
                                    header.base_offset
                                ),
                            ));
                        }
                        facts.gaps.push(gap);
                    }
                    check_timestamps(path, pos, &batch)?;
                    facts.batches.push(BatchInfo {
                        position: pos,
                        base_offset: header.base_offset,
                        last_offset: header.last_offset(),
                        max_timestamp: header.max_timestamp,
                        max_before: facts.max_timestamp,
                    });
                    facts.max_timestamp = facts.max_timestamp.max(header.max_timestamp);
                    facts.records += u64::try_from(header.record_count).unwrap_or(0);
                    expected = header.last_offset().saturating_add(1);
                }
                Step::Invalid { position, reason } | Step::Torn { position, reason } => {
                    return Err(problem(path, position as u64, reason));
                }
                Step::Zeros { position, len } => {
                    if self.is_last {
                        self.warnings.push(finding(
                            path,
                            position as u64,
                            format!(
                                "{len} zero bytes of preallocated space after the last batch (the log is open or was not \
                                 closed cleanly; opening it trims them)"
                            ),
                        ));
                    } else {
                        return Err(problem(
                            path,
                            position as u64,
                            format!("{len} zero bytes after the last batch, in a segment that is not the last"),
                        ));
                    }
                }
            }
        }
        facts.valid_end = walker.valid_end() as u64;
        if let Some(next) = self.next_base {
            // `check_offsets` keeps every batch below the next base.
            if expected < next {
                facts.gaps.push(finding(
                    path,
                    facts.valid_end,
                    format!(
                        "offset gap: the segment ends at offset {expected}, below the next segment's base offset \
                         {next} (offsets {expected} to {} are not in the log)",
                        next - 1
                    ),
                ));
            }
        }
        Ok(facts)
    }

    /// Checks the batch's offsets against the lowest one it may start at (`expected`); returns
    /// the offset gap before it, if it starts above `expected`.
    fn check_offsets(
        &self,
        path: &Path,
        pos: u64,
        batch: &RecordBatch,
        expected: i64,
    ) -> Result<Option<Finding>, VerifyError> {
        let (first, last) = (batch.base_offset(), batch.last_offset());
        let place = if expected == self.base {
            format!("the segment's base offset {expected}")
        } else {
            format!(
                "offset {expected}, right after the previous batch's last offset {}",
                expected - 1
            )
        };
        if first < expected {
            return Err(problem(
                path,
                pos,
                format!(
                    "batch base offset {first} overlaps: the batch must start at or above {place}"
                ),
            ));
        }
        let gap = (first > expected).then(|| {
            finding(
                path,
                pos,
                format!(
                    "offset gap: batch base offset {first} is above {place} (offsets {expected} to {} are not in the log)",
                    first - 1
                ),
            )
        });
        if let Some(next) = self.next_base {
            if last >= next {
                return Err(problem(
                    path,
                    pos,
                    format!(
                        "batch last offset {last} reaches into the next segment, based at {next}"
                    ),
                ));
            }
        }
        if last.saturating_sub(self.base) > i64::from(i32::MAX) {
            return Err(problem(
                path,
                pos,
                format!(
                    "batch last offset {last} is more than 2^31-1 past the segment's base offset {}",
                    self.base
                ),
            ));
        }
        Ok(gap)
    }

    /// Entries of an index file: whole entries, with a trailing run of zero entries dropped
    /// (with a warning) in the last segment of a log not closed cleanly (closing trims the index
    /// files, so in a clean log zero entries are data, e.g. a time-index entry for timestamp 0).
    fn entries<E: IndexEntry>(&mut self, path: &Path) -> Result<Vec<E>, VerifyError> {
        let data = fs::read(path).map_err(io_error(path, "read"))?;
        if data.len() % E::SIZE != 0 {
            return Err(problem(
                path,
                (data.len() - data.len() % E::SIZE) as u64,
                format!(
                    "{} length {} is not a multiple of {} (the entry size)",
                    E::NAME,
                    data.len(),
                    E::SIZE
                ),
            ));
        }
        let mut used = data.len() / E::SIZE;
        if self.is_last && !self.clean {
            let data_entries = files::used_entries(&data, E::SIZE, true);
            if data_entries < used {
                self.warnings.push(finding(
                    path,
                    (data_entries * E::SIZE) as u64,
                    format!(
                        "{} zero entries of preallocated space (the log is open or was not closed cleanly; opening it trims \
                         them)",
                        used - data_entries
                    ),
                ));
                used = data_entries;
            }
        }
        Ok(data
            .chunks_exact(E::SIZE)
            .take(used)
            .map(E::decode)
            .collect())
    }

    fn verify_offset_index(
        &mut self,
        path: &Path,
        facts: &SegmentFacts,
    ) -> Result<u64, VerifyError> {
        let entries = self.entries::<OffsetEntry>(path)?;
        let mut prev: Option<OffsetEntry> = None;
        for (i, e) in entries.iter().enumerate() {
            let pos = (i * OffsetEntry::SIZE) as u64;
            let what = format!(
                "offset index entry {i} (relative offset {}, position {})",
                e.relative_offset, e.position
            );
            e.check(prev.as_ref(), facts.valid_end, self.relative_end())
                .map_err(|why| problem(path, pos, format!("{what}: {why}")))?;
            let offset = self.base.saturating_add(i64::from(e.relative_offset));
            let position = u64::try_from(e.position).unwrap_or(u64::MAX);
            match facts
                .batches
                .binary_search_by_key(&position, |b| b.position)
            {
                Err(_) => {
                    return Err(problem(
                        path,
                        pos,
                        format!("{what}: no batch starts at position {position}"),
                    ));
                }
                // Kafka names the batch by its last offset; partlog once used the base.
                Ok(j)
                    if offset != facts.batches[j].last_offset
                        && offset != facts.batches[j].base_offset =>
                {
                    return Err(problem(
                        path,
                        pos,
                        format!(
                            "{what}: names offset {offset} but the batch at position {position} has offsets {}..={}",
                            facts.batches[j].base_offset, facts.batches[j].last_offset
                        ),
                    ));
                }
                Ok(_) => {}
            }
            prev = Some(*e);
        }
        Ok(entries.len() as u64)
    }

    fn verify_time_index(&mut self, path: &Path, facts: &SegmentFacts) -> Result<u64, VerifyError> {
        let entries = self.entries::<TimeEntry>(path)?;
        let mut prev: Option<TimeEntry> = None;
        for (i, e) in entries.iter().enumerate() {
            let pos = (i * TimeEntry::SIZE) as u64;
            let what = format!(
                "time index entry {i} (timestamp {}, relative offset {})",
                e.timestamp, e.relative_offset
            );
            e.check(prev.as_ref(), facts.valid_end, self.relative_end())
                .map_err(|why| problem(path, pos, format!("{what}: {why}")))?;
            let offset = self.base.saturating_add(i64::from(e.relative_offset));
            // The batch ending at `offset` (as Kafka writes it; partlog once named the start).
            let j = facts.batches.partition_point(|b| b.base_offset <= offset);
            let Some(j) = j.checked_sub(1).filter(|&j| {
                let b = facts.batches[j];
                b.last_offset == offset || b.base_offset == offset
            }) else {
                return Err(problem(
                    path,
                    pos,
                    format!("{what}: no batch ends (or starts) at offset {offset}"),
                ));
            };
            let b = facts.batches[j];
            if b.max_timestamp != e.timestamp {
                return Err(problem(
                    path,
                    pos,
                    format!(
                        "{what}: the batch at offset {offset} (position {}) has maxTimestamp {}",
                        b.position, b.max_timestamp
                    ),
                ));
            }
            if b.max_before >= e.timestamp {
                return Err(problem(
                    path,
                    pos,
                    format!(
                        "{what}: an earlier batch already reached maxTimestamp {} before offset {offset}",
                        b.max_before
                    ),
                ));
            }
            prev = Some(*e);
        }
        let last = entries.last().map(|e| e.timestamp);
        if facts.max_timestamp > NO_TIMESTAMP && last != Some(facts.max_timestamp) {
            let pos = (entries.len() * TimeEntry::SIZE) as u64;
            let have = last.map_or_else(
                || "the time index has no entry".to_owned(),
                |t| format!("the last entry has timestamp {t}"),
            );
            let message = format!(
                "{have} but the segment's largest timestamp is {}",
                facts.max_timestamp
            );
            if self.is_last && !self.clean {
                self.warnings.push(finding(
                    path,
                    pos,
                    format!("{message} (the final entry is written when the segment is closed)"),
                ));
            } else {
                return Err(problem(path, pos, message));
            }
        }
        Ok(entries.len() as u64)
    }
}

/// No record may carry a timestamp above its batch's `maxTimestamp` (the time index trusts it).
fn check_timestamps(path: &Path, pos: u64, batch: &RecordBatch) -> Result<(), VerifyError> {
    if batch.timestamp_type() != TimestampType::CreateTime {
        return Ok(());
    }
    // A compressed batch cannot be opened; its CRC was checked.
    let Ok(records) = batch.records() else {
        return Ok(());
    };
    for r in records.flatten() {
        if r.timestamp > batch.max_timestamp() {
            return Err(problem(
                path,
                pos,
                format!(
                    "record at offset {} has timestamp {}, above the batch's maxTimestamp {}",
                    r.offset,
                    r.timestamp,
                    batch.max_timestamp()
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a one-offset checkpoint with the library's reader (the one `Log::open` uses):
/// `Ok(None)` if absent, `Err((position, reason))` if it does not parse.
fn read_checkpoint(path: &Path) -> Result<Result<Option<i64>, (u64, String)>, VerifyError> {
    match read_offset_checkpoint(path) {
        Ok(offset) => Ok(Ok(offset)),
        Err(partlog::Error::Corrupt {
            position, reason, ..
        }) => Ok(Err((position, reason))),
        Err(partlog::Error::Io { source, .. }) => Err(io_error(path, "read")(source)),
        Err(e) => Ok(Err((0, e.to_string()))),
    }
}

/// True if a `Log` holds the directory's lock right now (the library's probe: it changes no
/// file, and a `Log::open` racing with it could only fail with `Locked` during that instant).
fn in_use(dir: &Path) -> bool {
    partlog::log::is_locked(dir).unwrap_or(false)
}

/// Verifies the log in `dir`, read-only. Warnings (repairable states a crash leaves) are
/// pushed to `warnings`; the first problem is returned as an error.
///
/// # Errors
/// [`VerifyError::Problem`] for the first problem found, [`VerifyError::Io`] if a file cannot
/// be read.
pub fn verify_dir(dir: &Path, warnings: &mut Vec<Finding>) -> Result<Summary, VerifyError> {
    let meta = fs::metadata(dir).map_err(io_error(dir, "open"))?;
    if !meta.is_dir() {
        return Err(VerifyError::Io {
            path: dir.to_owned(),
            op: "verify",
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let listing = files::list(dir).map_err(io_error(dir, "list"))?;
    if in_use(dir) {
        warnings.push(finding(
            &dir.join(LOCK_FILE),
            0,
            "the log is open in another process: its files may change while they are read",
        ));
    }
    for (kind, map) in [
        ("offset index", &listing.indexes),
        ("time index", &listing.time_indexes),
    ] {
        for (base, path) in map.iter().filter(|(b, _)| !listing.logs.contains_key(b)) {
            // A deleted segment's index files wait under their names for the delete delay
            // (retention renames only the `.log`), and a crash can leave them: opening removes
            // them.
            warnings.push(finding(
                path,
                0,
                format!(
                    "orphan {kind}: {}{LOG_SUFFIX} does not exist (a deleted segment's, waiting \
                     for file_delete_delay_ms or left by a crash; opening the log removes it)",
                    file_stem(*base)
                ),
            ));
        }
    }
    for path in &listing.leftovers {
        warnings.push(finding(
            path,
            0,
            "left over from an interrupted operation (opening the log removes it)",
        ));
    }
    for path in &listing.misnamed {
        warnings.push(finding(
            path,
            0,
            "not a segment file name (20-digit base offset expected); ignored",
        ));
    }
    let clean = dir.join(CLEAN_SHUTDOWN_FILE).exists();
    let bases: Vec<i64> = listing.logs.keys().copied().collect();
    let mut summary = Summary {
        segments: bases.len(),
        base_offsets: bases.first().copied().zip(bases.last().copied()),
        clean_shutdown: clean,
        ..Summary::default()
    };
    for (i, (&base, log_path)) in listing.logs.iter().enumerate() {
        let mut check = SegmentCheck {
            base,
            next_base: bases.get(i + 1).copied(),
            is_last: i + 1 == bases.len(),
            clean,
            warnings,
        };
        let mut facts = check.verify_log(log_path)?;
        let paths = SegmentPaths::new(dir, base);
        match listing.indexes.get(&base) {
            Some(p) => summary.index_entries += check.verify_offset_index(p, &facts)?,
            None => check.warnings.push(finding(
                &paths.index,
                0,
                "missing offset index (rebuilt from the log when the segment is read)",
            )),
        }
        match listing.time_indexes.get(&base) {
            Some(p) => summary.time_index_entries += check.verify_time_index(p, &facts)?,
            None => check.warnings.push(finding(
                &paths.time_index,
                0,
                "missing time index (rebuilt from the log when the segment is read)",
            )),
        }
        summary.gaps.append(&mut facts.gaps);
        summary.batches += facts.batches.len() as u64;
        summary.records += facts.records;
        summary.bytes += facts.valid_end;
        if let (Some(first), Some(last)) = (facts.batches.first(), facts.batches.last()) {
            let start = summary.offsets.map_or(first.base_offset, |(s, _)| s);
            summary.offsets = Some((start, last.last_offset));
        }
        if check.is_last {
            summary.log_end_offset = Some(
                facts
                    .batches
                    .last()
                    .map_or(base, |b| b.last_offset.saturating_add(1)),
            );
        }
    }

    let start_path = dir.join(LOG_START_OFFSET_FILE);
    summary.log_start_offset =
        read_checkpoint(&start_path)?.map_err(|(pos, why)| problem(&start_path, pos, why))?;
    let recovery_path = dir.join(RECOVERY_POINT_FILE);
    match read_checkpoint(&recovery_path)? {
        Ok(r) => summary.recovery_point = r,
        Err((pos, why)) => warnings.push(finding(
            &recovery_path,
            pos,
            format!("{why} (opening the log recovers every segment)"),
        )),
    }
    if let (Some(leo), Some(rp)) = (summary.log_end_offset, summary.recovery_point) {
        if rp > leo {
            warnings.push(finding(
                &recovery_path,
                0,
                format!("recovery point {rp} is beyond the log end offset {leo}"),
            ));
        }
    }
    if let (Some(leo), Some(lso)) = (summary.log_end_offset, summary.log_start_offset) {
        if lso > leo {
            warnings.push(finding(
                &start_path,
                0,
                format!("log start offset {lso} is beyond the log end offset {leo}"),
            ));
        }
    }
    if bases.is_empty() {
        warnings.push(finding(dir, 0, "no segment files"));
    }
    Ok(summary)
}

fn print_summary(out: &mut dyn Write, dir: &Path, s: &Summary, warnings: usize) -> io::Result<()> {
    let opt = |o: Option<i64>| o.map_or_else(|| "none".to_owned(), |o| o.to_string());
    writeln!(out, "verified {}: OK", dir.display())?;
    match s.base_offsets {
        Some((first, last)) => writeln!(
            out,
            "segments: {} (base offsets {first} to {last})",
            s.segments
        )?,
        None => writeln!(out, "segments: 0")?,
    }
    writeln!(out, "batches: {}", s.batches)?;
    match s.offsets {
        Some((first, last)) => writeln!(out, "records: {} (offsets {first} to {last})", s.records)?,
        None => writeln!(out, "records: {}", s.records)?,
    }
    writeln!(out, "bytes: {} ({})", s.bytes, human_bytes(s.bytes))?;
    writeln!(
        out,
        "index entries: {} offset, {} time",
        s.index_entries, s.time_index_entries
    )?;
    writeln!(
        out,
        "offset gaps: {} (legal, as in Kafka's logs)",
        s.gaps.len()
    )?;
    for g in &s.gaps {
        writeln!(out, "  {g}")?;
    }
    writeln!(out, "log end offset: {}", opt(s.log_end_offset))?;
    writeln!(
        out,
        "log start offset checkpoint: {}",
        opt(s.log_start_offset)
    )?;
    writeln!(out, "recovery point checkpoint: {}", opt(s.recovery_point))?;
    writeln!(
        out,
        "clean shutdown: {}",
        if s.clean_shutdown { "yes" } else { "no" }
    )?;
    writeln!(out, "warnings: {warnings}")
}

/// Runs `partlog verify`.
///
/// # Errors
/// [`CliError::Usage`] for bad arguments, [`CliError::Failed`] if a file cannot be read.
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CliError> {
    let dir = &args.dir;
    let mut warnings = Vec::new();
    let result = verify_dir(dir, &mut warnings);
    // Diagnostics go to stderr; failing to write them must not change the exit status.
    for w in &warnings {
        let _ = writeln!(err, "warning: {w}");
    }
    match result {
        Ok(summary) => {
            print_summary(out, dir, &summary, warnings.len())?;
            Ok(Outcome::Success)
        }
        Err(VerifyError::Problem(p)) => {
            let _ = writeln!(err, "{p}");
            Ok(Outcome::Problems)
        }
        Err(e @ VerifyError::Io { .. }) => Err(CliError::Failed(e.to_string())),
    }
}
