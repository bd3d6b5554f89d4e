//! Reads that spun, and operations that waited on another's slow file work (issue 17,
//! findings 9 and 10). Each test runs the operation that used to hang or wait on a thread of
//! its own and fails (rather than hanging the suite) if it does not answer within 10 s; each
//! failed that way before its fix.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::pause::Point;
use super::tests::{config, fill};
use super::Log;
use crate::config::Config;
use crate::error::Error;
use crate::segment::SegmentPaths;

/// Runs `op` on a thread of its own; its answer, or `None` if it gave none within 10 s (the
/// thread is left behind: the test fails either way).
fn within_10s<T: Send + 'static>(op: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, answer) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(op());
    });
    answer.recv_timeout(Duration::from_secs(10)).ok()
}

/// Finding 9: a truncation marked its target segment deleted, then failed to unlink the old
/// index; the segment stayed in the list, marked deleted, and every read of an offset in it
/// retried without end (the test timed out). Now the failed log answers `PreviousIo`.
#[test]
#[cfg_attr(miri, ignore)]
fn read_after_a_truncation_that_failed_part_way_answers_previous_io() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(Log::open(dir.path(), config()).unwrap());
    fill(&log, 20);
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3, "{bases:?}");
    let target = bases[0];
    // The cut falls at the segment's second batch, so offsets below it stay in the log.
    let cut = target + 5;
    assert!(cut < bases[1]);
    // Mapped now, so the truncation does not need the index it cannot remove.
    log.read(target, 1).unwrap();
    // The old index's unlink fails (a non-empty directory stands in its place), after the
    // truncation marked the segment deleted.
    let index = SegmentPaths::new(dir.path(), target).index;
    std::fs::remove_file(&index).unwrap();
    std::fs::create_dir(&index).unwrap();
    std::fs::write(index.join("keep"), b"x").unwrap();
    let err = log.truncate_to(cut).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");

    let l = Arc::clone(&log);
    let read = within_10s(move || l.read(target, 1 << 20).map(|_| ()))
        .expect("read spun on the segment the failed truncation left marked deleted");
    assert!(matches!(read, Err(Error::PreviousIo)), "{read:?}");
    let l = Arc::clone(&log);
    let record = within_10s(move || l.read_record(target).map(|_| ()))
        .expect("read_record spun on the segment the failed truncation left marked deleted");
    assert!(matches!(record, Err(Error::PreviousIo)), "{record:?}");
    let l = Arc::clone(&log);
    let found = within_10s(move || l.offset_for_timestamp(0))
        .expect("offset_for_timestamp spun on the segment the failed truncation left");
    // Offsets 0..5 are still in the log: no answer but the typed error is right.
    assert!(matches!(found, Err(Error::PreviousIo)), "{found:?}");
    std::fs::remove_dir_all(&index).unwrap();
}

/// Finding 10: retention held the writer lock while it renamed the doomed segments' files and
/// synced the directory (21 segments of 8 MiB blocked a one-record append for 62-345 ms). Held
/// at that step, it kept an append waiting (the test timed out); now the append goes on.
#[test]
#[cfg_attr(miri, ignore)]
fn append_completes_while_retention_renames_segment_files() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(
        Log::open(
            dir.path(),
            Config {
                retention_bytes: 4096,
                ..config()
            },
        )
        .unwrap(),
    );
    fill(&log, 40);
    let before = log.segment_count();
    let gate = log.pauses.arm(Point::RetentionDetached);
    let retention = {
        let log = Arc::clone(&log);
        thread::spawn(move || log.apply_retention(0))
    };
    gate.wait_reached();
    let l = Arc::clone(&log);
    let appended = within_10s(move || {
        fill(&l, 1);
        l.log_end_offset()
    });
    gate.resume();
    let report = retention.join().unwrap().unwrap();
    let leo = appended.expect("the append waited for retention's file work");
    assert_eq!(leo, log.log_end_offset());
    assert!(report.deleted.len() >= 2, "{report:?}");
    assert!(log.segment_count() < before);
    // What retention left reads back, and the log reopens to the same state.
    let start = log.log_start_offset();
    assert_eq!(report.log_start_offset, start);
    assert!(log.read(start, 1 << 20).is_ok());
}

/// Finding 10: time retention mapped segments (to learn their largest timestamps) under the
/// writer lock. Held while it maps one, it kept an append waiting (the test timed out).
#[test]
#[cfg_attr(miri, ignore)]
fn append_completes_while_time_retention_maps_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        fill(&log, 40);
        log.close().unwrap();
    }
    // Reopened clean: no segment is mapped, and no largest timestamp known.
    let log = Arc::new(
        Log::open(
            dir.path(),
            Config {
                retention_ms: 1_000,
                ..config()
            },
        )
        .unwrap(),
    );
    let gate = log.pauses.arm(Point::RetentionMapsSegment);
    let retention = {
        let log = Arc::clone(&log);
        // Records are stamped 0..2000 ms: at 1,500 ms the oldest segments are due.
        thread::spawn(move || log.apply_retention(1_500))
    };
    gate.wait_reached();
    let l = Arc::clone(&log);
    let appended = within_10s(move || {
        fill(&l, 1);
    });
    gate.resume();
    let report = retention.join().unwrap().unwrap();
    appended.expect("the append waited for retention to map a segment");
    assert!(!report.deleted.is_empty(), "{report:?}");
}

/// Holds the next index rebuild of `log`'s first segment after its scan, before it writes the
/// files: the returned receiver says it got there, the sender lets it go on.
fn hold_rebuild_of_first_segment(log: &Log) -> (mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (reached_tx, reached) = mpsc::channel();
    let (resume, resume_rx) = mpsc::channel::<()>();
    let first = Arc::clone(&log.segments()[0]);
    *first.rebuild_hook.0.lock().unwrap() = Some(Box::new(move || {
        let _ = reached_tx.send(());
        let _ = resume_rx.recv_timeout(Duration::from_secs(10));
    }));
    (reached, resume)
}

/// Finding 10: a reader that found a segment's index missing rebuilt it (a CRC scan of the
/// whole segment and two atomic file writes with fsyncs) holding the segment's view lock, so
/// every other reader of the segment waited for it (30 ms behind a 256 MiB segment). Held in
/// the rebuild, it kept another reader waiting (the test timed out); now that reader answers
/// by walking the segment, and the rebuilt index is installed afterwards.
#[test]
#[cfg_attr(miri, ignore)]
fn reader_completes_while_another_rebuilds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), config()).unwrap();
        fill(&log, 20);
        log.close().unwrap();
    }
    let first = SegmentPaths::new(dir.path(), 0);
    std::fs::remove_file(&first.index).unwrap();
    let log = Arc::new(Log::open(dir.path(), config()).unwrap());
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 3, "{bases:?}");
    let last_in_first = bases[1] - 1;
    let (reached, resume) = hold_rebuild_of_first_segment(&log);
    let rebuilder = {
        let log = Arc::clone(&log);
        thread::spawn(move || log.read(0, 1).map(|r| r.batches[0].base_offset()))
    };
    reached
        .recv_timeout(Duration::from_secs(10))
        .expect("no reader rebuilt the index");
    // Held inside the rebuild, its files not written. Other readers of the segment answer.
    let l = Arc::clone(&log);
    let answers = within_10s(move || {
        let read = l.read(last_in_first, 1 << 20).unwrap();
        let record = l.read_record(last_in_first).unwrap().unwrap();
        let found = l.offset_for_timestamp(last_in_first * 10).unwrap();
        (
            read.batches[0].base_offset(),
            read.batches[0].last_offset(),
            record.record().offset(),
            found,
        )
    });
    resume.send(()).unwrap();
    let (base, last, record, found) =
        answers.expect("a reader waited for another reader's index rebuild");
    assert!(base <= last_in_first && last_in_first <= last);
    assert_eq!(record, last_in_first);
    assert_eq!(found, Some(last_in_first));
    assert_eq!(rebuilder.join().unwrap().unwrap(), 0);
    // The rebuilt index is on disk and in use.
    assert!(first.index.exists());
    assert!(!log.segments()[0]
        .view(128)
        .unwrap()
        .0
        .offset_index
        .is_empty());
}
