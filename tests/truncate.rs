//! Truncation (`Log::truncate_to`): whole batches go, readers keep what they hold, the result
//! survives a reopen, clean or not.

mod common;

use common::*;
use partlog::{Error, Log};

const TS: i64 = 1_600_000_000_000;
/// Base timestamp of records appended after a truncation: unlike the records cut, so a read
/// that served stale bytes of the cut tail would show the old timestamps.
const TS2: i64 = TS + 5_000_000;

#[test]
#[cfg_attr(miri, ignore)]
fn truncation_cuts_whole_batches_across_segments_and_survives_reopen() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config()).unwrap();
        fill(&log, 100, 4, TS);
        let segments = log.segment_count();
        assert!(segments > 4);
        // Hold a read of the tail that is about to go.
        let held = log.read(390, 1 << 20).unwrap();
        // 202 lies inside the batch 200..=203: that whole batch goes.
        assert_eq!(log.truncate_to(202).unwrap(), 200);
        assert_eq!(log.log_end_offset(), 200);
        assert!(log.segment_count() < segments);
        assert!(matches!(
            log.read(201, 100),
            Err(Error::OffsetOutOfRange {
                log_end_offset: 200,
                ..
            })
        ));
        assert_filled(&read_all(&log), 0, 200, TS);
        // Appends go on from the cut, with new data (other timestamps).
        fill(&log, 10, 4, TS2);
        let check = |log: &Log| {
            let all = read_all(log);
            assert_eq!(all.len(), 240);
            assert_filled(&all[..200], 0, 200, TS);
            assert_filled(&all[200..], 200, 240, TS2);
        };
        check(&log);
        // The held bytes are still the old records, even now that new ones took their offsets.
        assert_eq!(held.batches[0].base_offset(), 388);
        let held_records: Vec<_> = held
            .batches
            .iter()
            .flat_map(|b| b.records().unwrap().map(Result::unwrap))
            .filter(|r| r.offset >= 390)
            .collect();
        assert!(!held_records.is_empty());
        let last = held_records.last().unwrap().offset;
        assert_filled(&held_records, 390, last + 1, TS);
        if clean {
            log.close().unwrap();
        } else {
            log.abandon();
        }
        let log = Log::open(dir.path(), small_config()).unwrap();
        assert_eq!(log.log_end_offset(), 240, "clean={clean}");
        check(&log);
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn truncation_at_a_segment_base_empties_that_segment() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 100, 4, TS);
    let bases = log.segment_base_offsets();
    let cut = bases[2];
    assert_eq!(log.truncate_to(cut).unwrap(), cut);
    assert_eq!(log.segment_base_offsets(), bases[..3].to_vec());
    assert_eq!(
        std::fs::metadata(dir.path().join(format!("{cut:020}.log")))
            .unwrap()
            .len(),
        4096,
        "preallocated again"
    );
    assert!(!dir.path().join(format!("{:020}.log", bases[3])).exists());
    fill(&log, 3, 4, TS2);
    let all = read_all(&log);
    assert_eq!(all.len() as i64, cut + 12);
    assert_filled(&all[..cut as usize], 0, cut, TS);
    assert_filled(&all[cut as usize..], cut, cut + 12, TS2);
    // Truncating to the end is a no-op; below the start is refused.
    assert_eq!(log.truncate_to(i64::MAX).unwrap(), cut + 12);
    assert!(matches!(
        log.truncate_to(-1),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // Truncating everything leaves an empty log that still works.
    assert_eq!(log.truncate_to(0).unwrap(), 0);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    fill(&log, 2, 2, TS2 + 1_000_000);
    assert_filled(&read_all(&log), 0, 4, TS2 + 1_000_000);
}

fn inode(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

/// A cut inside the active segment with no reader holding its bytes is made in place (the file
/// stays the same inode: nothing was copied), indexes and all; the log then reads, appends,
/// looks up by time and reopens (clean and after a crash) as if it had been written that way.
#[test]
#[cfg_attr(miri, ignore)]
fn truncation_inside_the_active_segment_cuts_in_place() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = partlog::Config {
            segment_bytes: 1 << 20,
            segment_index_bytes: 64 << 10,
            ..small_config()
        };
        let log = Log::open(dir.path(), config.clone()).unwrap();
        fill(&log, 200, 3, TS);
        assert_eq!(log.segment_count(), 1);
        let path = dir.path().join("00000000000000000000.log");
        let before = inode(&path);
        log.flush().unwrap();
        assert_eq!(log.truncate_to(301).unwrap(), 300);
        assert_eq!(
            inode(&path),
            before,
            "the segment was rewritten, not cut in place"
        );
        assert!(log.recovery_point() <= 300);
        assert_eq!(log.offset_for_timestamp(TS + 299).unwrap(), Some(299));
        assert_eq!(log.offset_for_timestamp(TS + 300).unwrap(), None);
        fill(&log, 50, 3, TS2);
        let records = read_all(&log);
        assert_eq!(records.len(), 450);
        assert_filled(&records[..300], 0, 300, TS);
        assert_eq!(records[300].offset, 300);
        assert_eq!(records[300].timestamp, TS2 + 300);
        assert_eq!(log.offset_for_timestamp(TS2).unwrap(), Some(300));
        if clean {
            log.close().unwrap();
        } else {
            log.abandon();
        }
        let log = Log::open(dir.path(), config.clone()).unwrap();
        assert_eq!(log.log_end_offset(), 450);
        assert_eq!(read_all(&log), records);
        assert_eq!(log.offset_for_timestamp(TS2 + 400).unwrap(), Some(400));
    }
}

/// While a reader holds bytes of the active segment, a cut there rewrites the kept part to a new
/// file instead: the reader's bytes do not change.
#[test]
#[cfg_attr(miri, ignore)]
fn truncation_inside_the_active_segment_keeps_a_readers_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let config = partlog::Config {
        segment_bytes: 1 << 20,
        segment_index_bytes: 64 << 10,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    fill(&log, 100, 3, TS);
    let path = dir.path().join("00000000000000000000.log");
    let before = inode(&path);
    let held = log.read(240, 1 << 20).unwrap();
    let copy = held.bytes.to_vec();
    assert_eq!(log.truncate_to(150).unwrap(), 150);
    assert_ne!(inode(&path), before, "cut in place under a reader");
    fill(&log, 100, 3, TS2);
    assert_eq!(held.bytes.to_vec(), copy, "a reader's bytes changed");
    assert_eq!(read_all(&log).len(), 450);
}
