//! What `Log::open` and `Log::close` write: what changed, and nothing else. A checkpoint written
//! again with the same value costs a temp file, two fsyncs and a rename on every close.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use partlog::log::LOG_START_OFFSET_FILE;
use partlog::Log;

const TS: i64 = 1_700_000_000_000;

/// The inode of the log-start-offset checkpoint: a rewrite (temp file renamed over it) changes it.
fn start_checkpoint(dir: &Path) -> (u64, String) {
    let path = dir.join(LOG_START_OFFSET_FILE);
    let ino = std::fs::metadata(&path).unwrap().ino();
    (ino, std::fs::read_to_string(&path).unwrap())
}

#[test]
fn a_clean_close_does_not_rewrite_an_unchanged_log_start_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 4, 2, TS);
    log.delete_records(3).unwrap();
    let after_delete = start_checkpoint(dir.path());
    assert_eq!(after_delete.1, "0\n1\n0000000000000000003\n");
    log.close().unwrap();
    assert_eq!(start_checkpoint(dir.path()), after_delete, "first close");

    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.open_report().clean);
    assert_eq!(log.log_start_offset(), 3);
    log.close().unwrap();
    assert_eq!(
        start_checkpoint(dir.path()),
        after_delete,
        "close after a clean open"
    );

    // A change is still written, at once and at close.
    let log = Log::open(dir.path(), small_config()).unwrap();
    log.delete_records(5).unwrap();
    let moved = start_checkpoint(dir.path());
    assert_eq!(moved.1, "0\n1\n0000000000000000005\n");
    log.close().unwrap();
    assert_eq!(start_checkpoint(dir.path()), moved);
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.log_start_offset(), 5);
    assert_values(&read_all(&log), 5, 8);
}

#[test]
fn a_close_after_a_crash_writes_the_log_start_checkpoint_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 4, 2, TS);
    log.flush().unwrap();
    log.delete_records(3).unwrap();
    log.abandon();
    // The file found after a crash may hold bytes that never reached the disk: the close after
    // the unclean open writes it again. To see that it does, the file gets the same value
    // spelled otherwise by hand before the close: a close that wrote nothing would leave it so.
    // Of the fixed 24 bytes, it is rewritten in place (same inode); of another length (an older
    // partlog's unpadded text, or longer), renamed over, never cut in place (a crash between
    // the cut and the write would leave the first 24 bytes: a start of 0 for the longer one).
    for (by_hand, in_place) in [
        ("0\n1\n3\n", false),
        ("0\n1\n 000000000000000003\n", true),
        ("0\n1\n00000000000000000003\n", false),
    ] {
        let log = Log::open(dir.path(), small_config()).unwrap();
        assert!(!log.open_report().clean);
        assert_eq!(log.log_start_offset(), 3);
        std::fs::write(dir.path().join(LOG_START_OFFSET_FILE), by_hand).unwrap();
        let before = start_checkpoint(dir.path());
        log.close().unwrap();
        let after = start_checkpoint(dir.path());
        assert_eq!(after.0 == before.0, in_place, "{by_hand:?}");
        assert_eq!(after.1, "0\n1\n0000000000000000003\n", "{by_hand:?}");
        // Crashed again, for the next case.
        Log::open(dir.path(), small_config()).unwrap().abandon();
    }
}

/// The inode and text of the recovery-point checkpoint.
fn recovery_checkpoint(dir: &Path) -> (u64, String) {
    let path = dir.join("recovery-point-offset-checkpoint");
    let ino = std::fs::metadata(&path).unwrap().ino();
    (ino, std::fs::read_to_string(&path).unwrap())
}

#[test]
fn an_unclean_open_moves_the_recovery_point_up_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 2, 2, TS);
    log.flush().unwrap();
    let flushed = recovery_checkpoint(dir.path());
    fill(&log, 2, 2, TS);
    log.abandon();
    // Recovery validates offsets 4-7 and flushes them: the checkpoint goes up to 8 by a write
    // into the same file, not a new file renamed over it.
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.open_report().clean);
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.recovery_point(), 8);
    let after = recovery_checkpoint(dir.path());
    assert_eq!(after.0, flushed.0, "rewritten in place");
    assert_eq!(partlog_offset(&after.1), 8);
    log.abandon();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.recovery_point(), 8);
    assert_values(&read_all(&log), 0, 8);
}

/// The offset in an offset checkpoint's text (version, count, offset; the offset may be
/// zero-padded).
fn partlog_offset(text: &str) -> i64 {
    text.lines().nth(2).unwrap().trim().parse().unwrap()
}
