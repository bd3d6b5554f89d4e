//! Truncation (`Log::truncate_to`): whole batches go, readers keep what they hold, the result
//! survives a reopen, clean or not.

mod common;

use common::*;
use partlog::{Error, Log};

const TS: i64 = 1_600_000_000_000;

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
        // The held bytes are still the old records.
        let rec = held.batches[0].records().unwrap().next().unwrap().unwrap();
        assert_eq!(rec.value.as_deref(), Some(&value_of(rec.offset)[..]));
        // Appends go on from the cut, with new data.
        fill(&log, 10, 4, TS);
        assert_filled(&read_all(&log), 0, 240, TS);
        if clean {
            log.close().unwrap();
        } else {
            log.abandon();
        }
        let log = Log::open(dir.path(), small_config()).unwrap();
        assert_eq!(log.log_end_offset(), 240, "clean={clean}");
        assert_filled(&read_all(&log), 0, 240, TS);
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
    fill(&log, 3, 4, TS);
    assert_filled(&read_all(&log), 0, cut + 12, TS);
    // Truncating to the end is a no-op; below the start is refused.
    assert_eq!(log.truncate_to(i64::MAX).unwrap(), cut + 12);
    assert!(matches!(
        log.truncate_to(-1),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // Truncating everything leaves an empty log that still works.
    assert_eq!(log.truncate_to(0).unwrap(), 0);
    assert_eq!(log.segment_base_offsets(), vec![0]);
    fill(&log, 2, 2, TS);
    assert_filled(&read_all(&log), 0, 4, TS);
}
