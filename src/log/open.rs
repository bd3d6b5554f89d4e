//! Opening a log: listing its directory, and recovery after an unclean stop.

use crate::fs::{self, File};
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};

use super::lock::DirLock;
use super::producer_state::SNAPSHOT_SUFFIX;
use super::txn_index::TXN_INDEX_SUFFIX;
use super::{
    ExternalCheckpoints, Log, OpenReport, Writer, CLEAN_SHUTDOWN_FILE, LEFTOVER_SUFFIXES,
    LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE,
};
use crate::checkpoint;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mmap::SharedMap;
use crate::segment::active::{ActiveSegment, OpenMode};
use crate::segment::scan::{self, Bounds, Indexer, Validation};
use crate::segment::{
    split_file_name, Segment, SegmentPaths, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX,
};

/// What an open finds in its directory, from one listing: the log's other steps (the
/// producer state, the aborted-transaction indexes) take their files from here rather than list
/// the directory again.
#[derive(Debug, Default)]
pub(super) struct Listing {
    /// Segment base offset → size of its `.log`.
    pub logs: BTreeMap<i64, u64>,
    /// Producer-state snapshots, by offset.
    pub snapshots: BTreeMap<i64, PathBuf>,
    /// `.txnindex` files, by the base offset of their segment.
    pub txn_indexes: Vec<(i64, PathBuf)>,
}

/// Lists `dir` once: removes the files a crash left over (`.deleted`, `.cleaned`, `.tmp`) and
/// the index files whose log is gone, and sorts the rest by kind.
fn list_dir(dir: &Path) -> Result<Listing> {
    let mut found = Listing::default();
    let mut indexes = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, "list", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let leftover = name
            .rfind('.')
            .is_some_and(|dot| LEFTOVER_SUFFIXES.contains(&&name[dot..]));
        if leftover {
            remove(&entry.path())?;
            continue;
        }
        let Some((base, suffix)) = split_file_name(name) else {
            continue;
        };
        match suffix {
            LOG_SUFFIX => {
                let path = entry.path();
                let len = entry
                    .metadata()
                    .map_err(|e| Error::io(&path, "stat", e))?
                    .len();
                found.logs.insert(base, len);
            }
            INDEX_SUFFIX | TIME_INDEX_SUFFIX => indexes.push((base, entry.path())),
            SNAPSHOT_SUFFIX => {
                found.snapshots.insert(base, entry.path());
            }
            TXN_INDEX_SUFFIX => found.txn_indexes.push((base, entry.path())),
            _ => {}
        }
    }
    // Index files without their log are left over from a deletion: remove them.
    for (base, path) in indexes {
        if !found.logs.contains_key(&base) {
            remove(&path)?;
        }
    }
    Ok(found)
}

fn remove(path: &Path) -> Result<()> {
    checkpoint::remove_if_exists(path).map(|_| ())
}

fn remove_segment_files(dir: &Path, base: i64) -> Result<()> {
    SegmentPaths::new(dir, base).remove_all()
}

pub(super) fn open(
    dir: &Path,
    config: Config,
    clock: Arc<dyn Clock>,
    external: ExternalCheckpoints,
) -> Result<Log> {
    config.validate()?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
    let lock = DirLock::acquire(dir)?;
    let mut found = list_dir(dir)?;

    let marker = dir.join(CLEAN_SHUTDOWN_FILE);
    let clean = fs::exists(&marker);
    // From here on a crash must lead to recovery: the marker goes before anything is touched.
    if clean {
        remove(&marker)?;
        checkpoint::sync_dir(dir)?;
    }
    // A garbled recovery point only costs a longer scan: recover everything.
    // The lower of the own file and the caller's (see `Log::open_with_checkpoints`).
    let own = checkpoint::read_offset(&dir.join(RECOVERY_POINT_FILE));
    let recovery_point = match (own, external.recovery_point) {
        (Err(_), _) => 0,
        (Ok(Some(a)), Some(b)) => a.min(b),
        (Ok(a), b) => a.or(b).unwrap_or(0),
    };
    let start_checkpoint =
        checkpoint::read_offset(&dir.join(LOG_START_OFFSET_FILE))?.or(external.log_start_offset);

    let mut bases: Vec<(i64, u64)> = std::mem::take(&mut found.logs).into_iter().collect();
    let mut report = OpenReport {
        clean,
        ..OpenReport::default()
    };
    if bases.is_empty() {
        let base = start_checkpoint.unwrap_or(0);
        bases.push((base, 0));
    }

    let now = clock.now_ms();
    if !clean {
        recover_inactive(dir, &config, &mut bases, recovery_point, &mut report)?;
    }
    let Some(&(last_base, _)) = bases.last() else {
        return Err(Error::corrupt(dir, 0, "no segment"));
    };
    let mode = if clean {
        OpenMode::Clean
    } else {
        OpenMode::Recover {
            trusted_below: recovery_point,
        }
    };
    let opened = ActiveSegment::open(dir, last_base, &config, now, mode)?;
    if !clean {
        report.segments_recovered += 1;
        report.bytes_recovered += opened.active.size() as u64;
    }
    if let Some(stop) = &opened.truncated {
        report.truncated = Some((last_base, stop.position, stop.reason.clone()));
    }
    let mut active = opened.active;
    // The log start offset was moved past what recovery kept (records deleted on request, then
    // an unflushed tail lost): nothing below it may come back, so the log restarts there empty
    // (Kafka's truncateFullyAndStartAt).
    if let Some(start) = start_checkpoint.filter(|&s| s > active.next_offset) {
        drop(active);
        for &(base, _) in &bases {
            remove_segment_files(dir, base)?;
            report.segments_removed += 1;
        }
        bases = vec![(start, 0)];
        active = ActiveSegment::create(dir, start, &config, now)?;
        checkpoint::sync_dir(dir)?;
    }

    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(bases.len());
    for pair in bases.windows(2) {
        let (base, size) = pair[0];
        segments.push(Arc::new(Segment::new(
            SegmentPaths::new(dir, base),
            base,
            size,
            pair[1].0,
        )));
    }
    segments.push(Arc::clone(&active.segment));

    let log_end_offset = active.next_offset;
    let first_base = segments.first().map_or(0, |s| s.base_offset());
    let log_start_offset = start_checkpoint
        .unwrap_or(first_base)
        .max(first_base)
        .min(log_end_offset);

    let log = Log {
        dir: dir.to_owned(),
        config,
        clock,
        segments: RwLock::new(segments),
        writer: Mutex::new(Writer {
            active: Some(active),
            unflushed_records: 0,
            last_flush_ms: now,
            producers: super::producer_state::ProducerStateManager::new_at(log_end_offset),
            producer_history_below: None,
        }),
        flush_lock: Mutex::new(()),
        structure_lock: Mutex::new(()),
        // (Set below, once this open's last directory sync is done.)
        checkpoint_lock: Mutex::new(super::CheckpointFile::default()),
        // After a clean close the file holds what that close wrote, durably; after a crash it
        // may hold a rename that never reached the disk, so it is written again at close.
        start_checkpoint: Mutex::new(super::StartCheckpoint::new(
            start_checkpoint.filter(|_| clean),
        )),
        log_end_offset: AtomicI64::new(log_end_offset),
        first_unstable_offset: AtomicI64::new(i64::MAX),
        txn_indexes: Mutex::new(Default::default()),
        log_start_offset: AtomicI64::new(log_start_offset),
        recovery_point: AtomicI64::new(recovery_point.min(log_end_offset)),
        truncations: AtomicU64::new(0),
        failed: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        mapped: Mutex::new(VecDeque::new()),
        pending_deletes: Mutex::new(Vec::new()),
        report,
        _lock: lock,
        #[cfg(test)]
        pauses: super::pause::Pauses::default(),
    };
    log.load_producer_state(clean, found)?;
    if recovery_point > log_end_offset {
        // A checkpoint past the end (a cut tail) must not outlive this open: it comes down,
        // durably (a new file renamed over the old).
        log.flush()?;
        log.reset_recovery_point(log.log_end_offset())?;
    } else if !clean {
        // Everything validated is now made durable, so the next recovery starts here: the flush
        // moves the recovery point up, in place (an older value after a power cut only costs a
        // longer scan). The directory sync makes durable the entries a crashed process may have
        // left unsynced (a segment it was rolling) and those this open created, before any
        // later flush counts on the files being there.
        log.flush()?;
        checkpoint::sync_dir(dir)?;
    }
    // Every path above synced the directory after the last change to the checkpoints' names (a
    // clean open before reading them, the others after writing them): those that exist have
    // durable names.
    let durable_name = fs::exists(&dir.join(RECOVERY_POINT_FILE));
    *super::lock(&log.checkpoint_lock) = super::CheckpointFile::new(durable_name);
    super::lock(&log.start_checkpoint).file =
        super::CheckpointFile::new(fs::exists(&dir.join(LOG_START_OFFSET_FILE)));
    Ok(log)
}

/// Recovers the inactive segments from the one holding the recovery point on: validates every
/// batch, rebuilds the indexes, trims preallocated zeros, and at the first corrupt batch cuts the
/// segment there and removes every later segment (Kafka's rule).
fn recover_inactive(
    dir: &Path,
    config: &Config,
    bases: &mut Vec<(i64, u64)>,
    recovery_point: i64,
    report: &mut OpenReport,
) -> Result<()> {
    let first = bases
        .partition_point(|&(b, _)| b <= recovery_point)
        .saturating_sub(1);
    let mut i = first;
    while i + 1 < bases.len() {
        let (base, _) = bases[i];
        let next_base = bases[i + 1].0;
        let paths = SegmentPaths::new(dir, base);
        let file = File::options()
            .read(true)
            .write(true)
            .open(&paths.log)
            .map_err(|e| Error::io(&paths.log, "open", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(&paths.log, "stat", e))?
            .len();
        let len =
            usize::try_from(len).map_err(|_| Error::corrupt(&paths.log, 0, "segment too large"))?;
        let map = SharedMap::read_only_of(&file, len as u64, len)
            .map_err(|e| Error::io(&paths.log, "mmap", e))?;
        // Not past the first hole: a sparse tail read through the map faults on a full tmpfs.
        let readable =
            crate::mmap::backed_prefix(&file, len).map_err(|e| Error::io(&paths.log, "seek", e))?;
        let data = map.slice(0, readable).unwrap_or_default();
        let bounds = Bounds {
            first_offset: base,
            end_offset: next_base,
            trusted_below: recovery_point,
        };
        let outcome = scan::scan(
            &data,
            0,
            base,
            bounds,
            Indexer::new(base, config.index_interval_bytes),
            Validation::Full,
        );
        drop(data);
        drop(map);
        report.segments_recovered += 1;
        report.bytes_recovered += outcome.valid_end;
        // A segment ending below the next one's base leaves an offset gap, legal in Kafka's
        // logs (`truncateTo` inside a batch, a compacted leader's copy); one running past it
        // stops the scan (`Bounds::end_offset`) and is cut like a bad CRC.
        let damaged = outcome
            .stop
            .as_ref()
            .filter(|s| !s.zero_tail)
            .map(|stop| (stop.position, stop.reason.clone()));
        if let Some((position, reason)) = damaged {
            // Cut here; this segment becomes the last one and is reopened as active.
            file.set_len(position)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(&paths.log, "truncate", e))?;
            crate::durability::file_synced(&paths.log);
            for &(later, _) in &bases[i + 1..] {
                remove_segment_files(dir, later)?;
                report.segments_removed += 1;
            }
            checkpoint::sync_dir(dir)?;
            bases.truncate(i + 1);
            report.truncated = Some((base, position, reason));
            return Ok(());
        }
        if outcome.valid_end < len as u64 {
            // Preallocated zeros left by a crash before the trim was durable.
            file.set_len(outcome.valid_end)
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(&paths.log, "trim", e))?;
            crate::durability::file_synced(&paths.log);
        }
        bases[i].1 = outcome.valid_end;
        outcome.write_indexes(&paths)?;
        i += 1;
    }
    Ok(())
}
