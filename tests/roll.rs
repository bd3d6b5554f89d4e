//! Rolling to a new segment on each of Kafka's four conditions (`LogSegment.shouldRoll`).

mod common;

use std::sync::Arc;

use common::*;
use partlog::batch::{self, BatchBuilder, RecordBatch, SimpleRecord};
use partlog::{Config, Log, ManualClock};

const TS: i64 = 1_650_000_000_000;

fn one(log: &Log, ts: i64) -> i64 {
    let o = log.log_end_offset();
    log.append(&[record(o, ts)]).unwrap().first_offset
}

#[test]
#[cfg_attr(miri, ignore)]
fn rolls_when_the_next_batch_would_pass_segment_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(
        dir.path(),
        Config {
            segment_bytes: 1024,
            max_batch_bytes: 1024,
            ..Config::default()
        },
    )
    .unwrap();
    let mut sizes = Vec::new();
    while log.segment_count() == 1 {
        let o = log.log_end_offset();
        // Timestamps rise then fall back: the segment's largest is not its last.
        let ts = TS + if o < 5 { o * 100 } else { 0 };
        sizes.push(log.append(&[record(o, ts)]).unwrap().size as u64);
    }
    // On roll the time index gets a final entry with the segment's largest timestamp.
    let time_index = std::fs::read(dir.path().join(format!("{:020}.timeindex", 0))).unwrap();
    assert_eq!(
        &time_index[time_index.len() - 12..time_index.len() - 4],
        &(TS + 400).to_be_bytes()
    );
    // The segment was filled as far as the next batch allowed, and no further.
    let first = dir.path().join(format!("{:020}.log", 0));
    let kept: u64 = sizes[..sizes.len() - 1].iter().sum();
    assert_eq!(
        std::fs::metadata(&first).unwrap().len(),
        kept,
        "rolled segment is trimmed"
    );
    assert!(kept <= 1024 && kept + sizes[sizes.len() - 1] > 1024);
    assert_eq!(log.segment_base_offsets(), vec![0, sizes.len() as i64 - 1]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn rolls_when_the_segment_is_older_than_segment_ms_by_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(TS);
    let config = Config {
        segment_ms: 60_000,
        ..Config::default()
    };
    let log = Log::open_with_clock(dir.path(), config, Arc::new(clock.clone())).unwrap();
    one(&log, TS);
    clock.advance(60_000);
    one(&log, TS);
    assert_eq!(
        log.segment_count(),
        1,
        "exactly segment_ms old is not too old"
    );
    clock.advance(1);
    one(&log, TS);
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn rolls_when_record_timestamps_span_more_than_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(TS);
    let config = Config {
        segment_ms: 60_000,
        ..Config::default()
    };
    let log = Log::open_with_clock(dir.path(), config, Arc::new(clock)).unwrap();
    one(&log, TS);
    one(&log, TS + 60_000);
    assert_eq!(log.segment_count(), 1);
    one(&log, TS + 60_001);
    assert_eq!(log.segment_base_offsets(), vec![0, 2]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn rolls_when_the_offset_index_is_full() {
    let dir = tempfile::tempdir().unwrap();
    // 48 bytes: 6 offset entries, 4 time entries; an entry after every batch past the first.
    let config = Config {
        segment_index_bytes: 48,
        index_interval_bytes: 0,
        ..Config::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    // Equal timestamps: the time index gets one entry and never fills.
    for _ in 0..7 {
        one(&log, TS);
    }
    assert_eq!(log.segment_count(), 1);
    one(&log, TS);
    assert_eq!(
        log.segment_base_offsets(),
        vec![0, 7],
        "6 entries = batches 1..=6, batch 7 rolls"
    );
    let index = std::fs::metadata(dir.path().join(format!("{:020}.index", 0)))
        .unwrap()
        .len();
    assert_eq!(index, 48, "the full index is trimmed to its six entries");
}

#[test]
#[cfg_attr(miri, ignore)]
fn rolls_when_the_time_index_is_full_keeping_its_last_slot() {
    let dir = tempfile::tempdir().unwrap();
    // 36 bytes: 3 time entries, one kept for the entry written at roll.
    let config = Config {
        segment_index_bytes: 36,
        index_interval_bytes: 0,
        ..Config::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    for i in 0..3 {
        one(&log, TS + i);
    }
    assert_eq!(log.segment_count(), 1);
    one(&log, TS + 3);
    assert_eq!(log.segment_count(), 2);
    let time_index = std::fs::read(dir.path().join(format!("{:020}.timeindex", 0))).unwrap();
    // Batch 0 opens the segment; batches 1 and 2 each add an entry, leaving only the slot kept
    // for the final entry, so batch 3 rolls. The largest timestamp is already indexed.
    assert_eq!(log.segment_base_offsets(), vec![0, 3]);
    assert_eq!(time_index.len(), 24);
    assert_eq!(&time_index[12..20], &(TS + 2).to_be_bytes());
}

/// A batch whose last offset delta is `delta` although it holds one record (as compaction
/// leaves them): the next offset jumps by `delta + 1`.
fn sparse_batch(delta: i32) -> RecordBatch {
    let mut b = BatchBuilder::new();
    b.push(&SimpleRecord::new(TS, Some("k"), Some("v")))
        .unwrap();
    let mut bytes = b.build().unwrap().into_bytes().to_vec();
    bytes[23..27].copy_from_slice(&delta.to_be_bytes());
    let crc = batch::compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    RecordBatch::parse(bytes.into()).unwrap()
}

#[test]
#[cfg_attr(miri, ignore)]
fn rolls_when_an_offset_would_not_fit_a_relative_i32() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    one(&log, TS);
    let info = log.append_batch(&sparse_batch(i32::MAX - 1)).unwrap();
    assert_eq!(info.last_offset, i64::from(i32::MAX));
    assert_eq!(log.segment_count(), 1, "still fits");
    // The next batch's offsets would be more than i32::MAX past the base offset 0.
    let next = one(&log, TS);
    assert_eq!(log.segment_base_offsets(), vec![0, next]);
    // Reads still find both sides.
    assert_eq!(
        log.read(1, 1).unwrap().batches[0].last_offset(),
        info.last_offset
    );
    assert_eq!(log.read(next, 1).unwrap().batches[0].base_offset(), next);
    log.close().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    assert_eq!(log.log_end_offset(), next + 1);
}

#[test]
#[cfg_attr(miri, ignore)]
fn forced_roll_of_an_empty_segment_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.roll_now().unwrap();
    assert_eq!(log.segment_count(), 1);
    one(&log, TS);
    log.roll_now().unwrap();
    assert_eq!(log.segment_base_offsets(), vec![0, 1]);
    fill(&log, 3, 2, TS);
    assert_eq!(read_all(&log).len(), 7);
}
