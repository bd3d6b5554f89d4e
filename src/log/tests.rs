//! Interleavings made deterministic with pause points: each test holds one operation at a named
//! place, runs another, then lets the first go on. Each failed every time before its fix
//! (issue 9).

use std::sync::Arc;
use std::thread;

use super::pause::Point;
use super::{Log, RECOVERY_POINT_FILE};
use crate::batch::SimpleRecord;
use crate::checkpoint;
use crate::config::Config;
use crate::error::Error;

/// Small segments (a few batches each), files removed as soon as they are deleted.
pub(super) fn config() -> Config {
    Config {
        segment_bytes: 2048,
        segment_index_bytes: 1024,
        index_interval_bytes: 128,
        file_delete_delay_ms: 0,
        ..Config::default()
    }
}

/// Appends `batches` batches of 5 records of ~60 bytes, timestamp = offset * 10.
pub(super) fn fill(log: &Log, batches: usize) {
    for _ in 0..batches {
        let first = log.log_end_offset();
        let records: Vec<SimpleRecord> = (first..first + 5)
            .map(|o| SimpleRecord::new(o * 10, Some(format!("k{o}")), Some(vec![b'v'; 50])))
            .collect();
        log.append(&records).unwrap();
    }
}

/// The syncs the durability recorder counts in `dir` while `op` runs.
fn syncs_during(dir: &std::path::Path, op: impl FnOnce()) -> crate::durability::trace::Syncs {
    let recording = crate::durability::trace::register(dir, Box::new(|_| {}));
    op();
    recording.syncs()
}

fn open(dir: &std::path::Path, config: Config) -> Arc<Log> {
    Arc::new(Log::open(dir, config).unwrap())
}

fn assert_out_of_range_excludes(err: Error, offset: i64) {
    match err {
        Error::OffsetOutOfRange {
            requested,
            log_start_offset,
            log_end_offset,
        } => {
            assert_eq!(requested, offset);
            assert!(
                requested < log_start_offset || requested > log_end_offset,
                "the error's range [{log_start_offset}, {log_end_offset}] contains {requested}"
            );
        }
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
}

/// Bug 1: retention took segments out of the list before it published the new log start, so a
/// read in that window got an `OffsetOutOfRange` naming a range that held the offset, and a time
/// lookup skipped records still at or above the published start.
#[test]
#[cfg_attr(miri, ignore)]
fn retention_publishes_the_log_start_before_segments_leave() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        Config {
            retention_bytes: 4096,
            ..config()
        },
    );
    fill(&log, 60);
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 5, "{bases:?}");
    let victim = bases[1] + 1; // in the second segment, which retention deletes

    let gate = log.pauses.arm(Point::RetentionDetached);
    let retention = {
        let log = Arc::clone(&log);
        thread::spawn(move || log.apply_retention(0).unwrap())
    };
    gate.wait_reached();
    // Held with the doomed segments out of the list, their files still there. The reads run on
    // a thread of their own: one that waited for retention to finish would hang here.
    let (done, answers) = std::sync::mpsc::channel();
    {
        let log = Arc::clone(&log);
        thread::spawn(move || {
            let read = log.read(victim, 1 << 20);
            let found = log.offset_for_timestamp(victim * 10);
            let _ = done.send((read, found, log.log_start_offset()));
        });
    }
    let (read, found, start) = answers
        .recv_timeout(std::time::Duration::from_secs(5))
        .expect("reads did not answer while retention was held");
    assert_out_of_range_excludes(read.unwrap_err(), victim);
    assert_eq!(found.unwrap(), Some(start));
    gate.resume();
    let report = retention.join().unwrap();
    assert!(report.deleted.len() >= 2, "{report:?}");
    assert_eq!(report.log_start_offset, log.log_start_offset());
}

/// Bug 2: a time lookup that chose a segment retention then deleted failed with the I/O error
/// of opening the vanished file, instead of answering from the segments that remain.
#[test]
#[cfg_attr(miri, ignore)]
fn timestamp_lookup_survives_the_deletion_of_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        fill(&log, 40);
        log.close().unwrap();
    }
    // Reopened clean: no inactive segment is mapped, so the lookup must open the files. The
    // clock stands at 0, so files deleted now are due for removal at 0.
    let clock = Arc::new(crate::clock::ManualClock::new(0));
    let log = Arc::new(Log::open_with_clock(dir.path(), config(), clock).unwrap());
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 4, "{bases:?}");
    let new_start = bases[2];

    let gate = log.pauses.arm(Point::TimestampLookupChoseSegment);
    let lookup = {
        let log = Arc::clone(&log);
        thread::spawn(move || log.offset_for_timestamp(0))
    };
    gate.wait_reached();
    log.delete_records(new_start).unwrap();
    let report = log.apply_retention(0).unwrap();
    assert!(report.files_removed >= 2, "{report:?}");
    gate.resume();
    assert_eq!(lookup.join().unwrap().unwrap(), Some(new_start));
}

/// The same race on the read path: a read that mapped a segment that truncation then cut
/// returned the cut batches (still valid bytes in its map, but no longer the log's).
#[test]
#[cfg_attr(miri, ignore)]
fn read_racing_truncation_returns_no_cut_batch() {
    racing_truncation_returns_nothing_cut(|log, offset| log.read(offset, 1 << 20).map(drop));
}

/// Holds `read` of an offset in the last segment once it mapped its segment, cuts the log
/// below that offset meanwhile, and expects an `OffsetOutOfRange` that excludes the offset.
fn racing_truncation_returns_nothing_cut(read: fn(&Log, i64) -> crate::Result<()>) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config());
    fill(&log, 40);
    let bases = log.segment_base_offsets();
    let wanted = *bases.last().unwrap() + 2;
    let cut = bases[bases.len() - 3];

    let gate = log.pauses.arm(Point::ReadMappedSegment);
    let reader = {
        let log = Arc::clone(&log);
        thread::spawn(move || read(&log, wanted))
    };
    gate.wait_reached();
    assert_eq!(log.truncate_to(cut).unwrap(), cut);
    gate.resume();
    assert_out_of_range_excludes(reader.join().unwrap().unwrap_err(), wanted);
}

/// Bug 3: a flush took the log end offset, synced, and raised the recovery point to it after a
/// truncation had lowered the end: the recovery point then lay past the log end, and batches
/// appended after the cut would be trusted by recovery without ever having been synced.
#[test]
#[cfg_attr(miri, ignore)]
fn flush_racing_truncation_never_raises_the_recovery_point_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config());
    fill(&log, 3);
    let cut = 5;

    let gate = log.pauses.arm(Point::FlushSynced);
    let flush = {
        let log = Arc::clone(&log);
        thread::spawn(move || log.flush())
    };
    gate.wait_reached();
    assert_eq!(log.truncate_to(cut).unwrap(), cut);
    fill(&log, 1); // appended after the cut, never synced
    gate.resume();
    flush.join().unwrap().unwrap();

    assert!(log.recovery_point() <= cut, "{}", log.recovery_point());
    // (No file is a recovery point of 0: a new log writes none until a flush moves it.)
    let on_disk = checkpoint::read_offset(&dir.path().join(RECOVERY_POINT_FILE))
        .unwrap()
        .unwrap_or(0);
    assert!(on_disk <= cut, "checkpoint says {on_disk}");
    // A flush after the race covers the new batch.
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), log.log_end_offset());
}

/// Bug 4: truncating to an offset inside a batch that straddles the log start cut at the batch's
/// base and lowered the log start, so deleted offsets were handed out again. Kafka empties the
/// log and starts at the target instead.
#[test]
#[cfg_attr(miri, ignore)]
fn truncation_inside_the_batch_holding_the_log_start_never_lowers_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    fill(&log, 4); // batches [0,5) [5,10) [10,15) [15,20)
    assert_eq!(log.delete_records(7).unwrap(), 7);
    assert_eq!(log.truncate_to(8).unwrap(), 8);
    assert_eq!(log.log_start_offset(), 8); // was 7; the cut batch held 5..10
    assert_eq!(log.log_end_offset(), 8);
    assert!(log.recovery_point() <= 8);
    assert_out_of_range_excludes(log.read(5, 1 << 20).unwrap_err(), 5);
    let info = log
        .append(&[SimpleRecord::new(1, None::<&str>, Some("after"))])
        .unwrap();
    assert_eq!(info.first_offset, 8);
    log.close().unwrap();

    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (8, 9));
    let read = log.read(8, 1 << 20).unwrap();
    let record = read.batches[0].records().unwrap().next().unwrap().unwrap();
    assert_eq!(record.value.as_deref(), Some(&b"after"[..]));
}

/// `truncate_fully_and_start_at` moves both ends, never the start down, and survives a crash.
#[test]
#[cfg_attr(miri, ignore)]
fn truncate_fully_and_start_at_restarts_the_log_above_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    fill(&log, 10);
    log.flush().unwrap();
    assert_eq!(log.truncate_fully_and_start_at(500).unwrap(), 500);
    assert_eq!(
        (
            log.log_start_offset(),
            log.log_end_offset(),
            log.segment_count()
        ),
        (500, 500, 1)
    );
    assert!(matches!(
        log.truncate_fully_and_start_at(499),
        Err(Error::OffsetOutOfRange { requested: 499, .. })
    ));
    fill(&log, 1);
    log.abandon(); // a crash: no clean shutdown
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (500, 505));
    assert!(log.recovery_point() <= log.log_end_offset());
}

/// Found by the stress suite (SIGBUS in CI): a reader that chose the active segment before a
/// truncation rewrote it mapped the rewritten file under the old segment (same name); a later
/// trim or in-place cut of that file, which the new segment's writer does not know is mapped
/// twice, left the reader's map reaching past the end of the file. A segment marked deleted is
/// now never mapped again, and the mark comes before the rename.
#[test]
#[cfg_attr(miri, ignore)]
fn a_reader_never_maps_a_segment_file_through_a_replaced_segment() {
    let (first, log, chosen, _dir) = read_through_a_replaced_segment(|log, offset| {
        log.read(offset, 1 << 20)
            .map(|r| r.batches[0].base_offset())
    });
    assert_eq!(first, 1500);
    assert!(
        !chosen.is_mapped(),
        "the replaced segment mapped the new segment's file"
    );
    // The new segment is trimmed and cut in place with no reader: nothing maps it twice.
    log.roll_now().unwrap();
    assert_eq!(log.truncate_to(100).unwrap(), 100);
}

/// Holds `read(1500)` once it chose its segment (the log's only one, 2000 records), has a
/// truncation to 1900 replace that segment meanwhile (a held read forces the rewrite: the new
/// segment's file has the same name), then lets the read go on. Returns its answer, the log,
/// the replaced segment and the log's directory.
fn read_through_a_replaced_segment(
    read: fn(&Log, i64) -> crate::Result<i64>,
) -> (
    i64,
    Arc<Log>,
    Arc<crate::segment::Segment>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        dir.path(),
        Config {
            segment_bytes: 1 << 20,
            segment_index_bytes: 64 << 10,
            ..config()
        },
    );
    fill(&log, 400);
    assert_eq!(log.segment_count(), 1);
    let chosen = log.floor_segment(1500).unwrap();

    let chose = log.pauses.arm(Point::ReadChoseSegment);
    let reader = {
        let log = Arc::clone(&log);
        thread::spawn(move || read(&log, 1500))
    };
    chose.wait_reached();
    let held = log.read(0, 1).unwrap();
    assert_eq!(log.truncate_to(1900).unwrap(), 1900);
    drop(held);
    assert!(chosen.is_deleted());
    chose.resume();
    let answer = reader.join().unwrap().unwrap();
    (answer, log, chosen, dir)
}

/// `read_record` (the record path, added after the races above were fixed) had none of their
/// fixes: a lookup that mapped a segment that truncation then cut returned the cut record.
#[test]
#[cfg_attr(miri, ignore)]
fn read_record_racing_truncation_returns_no_cut_record() {
    racing_truncation_returns_nothing_cut(|log, offset| log.read_record(offset).map(drop));
}

/// ... and a lookup whose segment a truncation replaced (the rewrite a held read forces) said
/// `OffsetOutOfRange` for an offset the log still held.
#[test]
#[cfg_attr(miri, ignore)]
fn read_record_survives_the_replacement_of_its_segment() {
    let (found, _log, _segment, _dir) = read_through_a_replaced_segment(|log, offset| {
        log.read_record(offset)
            .map(|found| found.map_or(-1, |f| f.record().offset()))
    });
    assert_eq!(found, 1500);
}

#[test]
fn public_checkpoint_reader_and_leftover_suffixes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(RECOVERY_POINT_FILE);
    assert_eq!(super::read_offset_checkpoint(&path).unwrap(), None);
    checkpoint::write_offset(&path, 42).unwrap();
    assert_eq!(super::read_offset_checkpoint(&path).unwrap(), Some(42));
    std::fs::write(&path, "0\n1\nx\n").unwrap();
    assert!(matches!(
        super::read_offset_checkpoint(&path),
        Err(Error::Corrupt { .. })
    ));
    // What open removes is what the constant names.
    let log_dir = dir.path().join("log");
    std::fs::create_dir(&log_dir).unwrap();
    for s in super::LEFTOVER_SUFFIXES {
        std::fs::write(log_dir.join(format!("00000000000000000000.log{s}")), b"x").unwrap();
    }
    let log = Log::open(&log_dir, Config::default()).unwrap();
    log.close().unwrap();
    for s in super::LEFTOVER_SUFFIXES {
        assert!(!log_dir
            .join(format!("00000000000000000000.log{s}"))
            .exists());
    }
}

/// Issue 21: a follower's usual truncation (a tail cut in the active segment of a cleanly
/// reopened log, so with a recovery point and a producer snapshot above the cut) makes its cut
/// durable with one directory sync: the snapshots above the cut are unlinked before the
/// recovery point's checkpoint is renamed, whose directory sync covers both (it took two).
#[test]
#[cfg_attr(miri, ignore)]
fn a_tail_cut_in_the_active_segment_syncs_the_directory_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        file_delete_delay_ms: 0,
        ..Config::default()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    fill(&log, 20);
    log.close().unwrap();
    let snapshots = |d: &std::path::Path| super::producer_state::list_snapshots(d).unwrap().len();
    assert_eq!(snapshots(dir.path()), 1, "a clean close writes a snapshot");
    let log = Log::open(dir.path(), config.clone()).unwrap();
    assert_eq!(log.recovery_point(), 100);
    let syncs = syncs_during(dir.path(), || assert_eq!(log.truncate_to(50).unwrap(), 50));
    assert_eq!(
        snapshots(dir.path()),
        0,
        "the snapshot above the cut is gone"
    );
    // Renamed, not unlinked (an unlink costs ext4 5-10x a rename); removed after the delete
    // delay, or at close.
    let renamed = dir.path().join(format!("{:020}.snapshot.deleted", 100));
    assert!(renamed.exists());
    assert_eq!(log.recovery_point(), 50);
    assert_eq!(syncs.dirs, 1, "{syncs:?}");
    assert!(syncs.files <= 2, "{syncs:?}");
    log.close().unwrap();
    assert!(!renamed.exists());
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 50);
}

/// A cut that leaves no producer snapshot to unlink lowers the recovery point in place: the
/// checkpoint file and the cut segment are synced, no directory (it was a temp file, a rename
/// and a directory sync). Where the checkpoint's name is not known durable (this log created
/// it since its open), it is still renamed into place, and the directory synced.
#[test]
#[cfg_attr(miri, ignore)]
fn a_tail_cut_lowers_a_durable_recovery_point_in_place_and_syncs_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        file_delete_delay_ms: 0,
        // (Small: the recorder reads every file when it registers.)
        segment_bytes: 1 << 20,
        ..Config::default()
    };
    let path = dir.path().join(RECOVERY_POINT_FILE);

    // A new log: no checkpoint at its open, so the one its first flush creates is not durable
    // by name, and the cut renames a new one into place.
    let log = Log::open(dir.path(), config.clone()).unwrap();
    fill(&log, 20);
    log.flush().unwrap();
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(100));
    let syncs = syncs_during(dir.path(), || assert_eq!(log.truncate_to(90).unwrap(), 90));
    assert_eq!(
        syncs.dirs, 1,
        "a checkpoint created since the open: {syncs:?}"
    );
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(90));

    // From now on its name is durable: the next cuts rewrite it in place.
    fill(&log, 2);
    log.flush().unwrap();
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(100));
    let syncs = syncs_during(dir.path(), || assert_eq!(log.truncate_to(80).unwrap(), 80));
    assert_eq!(syncs.dirs, 0, "{syncs:?}");
    assert_eq!(syncs.files, 2, "the checkpoint and the segment: {syncs:?}");
    assert_eq!(log.recovery_point(), 80);
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(80));
    log.abandon();

    // After a reopen (a crash here), the checkpoint that was there at the open is durable by
    // name: in place again.
    let log = Log::open(dir.path(), config.clone()).unwrap();
    assert!(!log.open_report().clean);
    assert_eq!(log.log_end_offset(), 80);
    fill(&log, 2);
    log.flush().unwrap();
    let syncs = syncs_during(dir.path(), || assert_eq!(log.truncate_to(85).unwrap(), 85));
    assert_eq!((syncs.dirs, syncs.files), (0, 2), "{syncs:?}");
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(85));
    log.close().unwrap();

    // A checkpoint removed by hand after the open: the cut finds it gone and renames a new one
    // into place.
    let log = Log::open(dir.path(), config.clone()).unwrap();
    assert_eq!(log.log_end_offset(), 85);
    std::fs::remove_file(&path).unwrap();
    let syncs = syncs_during(dir.path(), || assert_eq!(log.truncate_to(80).unwrap(), 80));
    assert_eq!(syncs.dirs, 1, "{syncs:?}");
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(80));
    log.close().unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 80);
}

/// delete-records writes the log-start checkpoint in place once its name is durable: one sync
/// of the file, no temp file and no directory sync (it was a temp file sync, a rename and a
/// directory sync). A new log's first checkpoint is still renamed into place.
#[test]
#[cfg_attr(miri, ignore)]
fn delete_records_writes_a_durable_log_start_checkpoint_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        segment_bytes: 1 << 20,
        ..Config::default()
    };
    let path = dir.path().join(super::LOG_START_OFFSET_FILE);
    // (files synced, directories synced) by one delete-records call.
    let delete = |log: &Log, to: i64| {
        let syncs = syncs_during(dir.path(), || {
            assert_eq!(log.delete_records(to).unwrap(), to)
        });
        (syncs.files, syncs.dirs)
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    fill(&log, 20);
    assert_eq!(
        delete(&log, 10),
        (1, 1),
        "a new checkpoint: renamed into place"
    );
    assert_eq!(delete(&log, 20), (1, 0), "in place");
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(20));
    log.abandon();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_start_offset(), 20);
    assert_eq!(delete(&log, 30), (1, 0), "in place after a reopen");
    assert_eq!(checkpoint::read_offset(&path).unwrap(), Some(30));
}
