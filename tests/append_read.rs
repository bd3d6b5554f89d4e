//! Appending and reading: offsets, whole batches, segment boundaries, timestamps, reopen.

mod common;

use common::*;
use partlog::batch::{BatchBuilder, RecordBatch, SimpleRecord};
use partlog::{Config, Error, Log};

const TS: i64 = 1_600_000_000_000;

#[test]
#[cfg_attr(miri, ignore)]
fn records_read_back_across_segment_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 200, 5, TS);
    assert_eq!(log.log_end_offset(), 1000);
    assert!(log.segment_count() > 10, "{} segments", log.segment_count());
    let records = read_all(&log);
    assert_filled(&records, 0, 1000, TS);
    // Every segment file is named by its base offset, and that is the first offset it holds.
    for (path, base) in log_files(dir.path()).iter().zip(log.segment_base_offsets()) {
        assert_eq!(
            path.file_name().unwrap().to_str().unwrap(),
            format!("{base:020}.log")
        );
        let first = log.read(base, 1).unwrap();
        assert_eq!(first.batches[0].base_offset(), base);
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn read_returns_whole_batches_at_least_one_and_the_next_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    fill(&log, 10, 10, TS);
    // From the middle of a batch: that whole batch comes back.
    let r = log.read(15, 1).unwrap();
    assert_eq!(r.batches.len(), 1, "max_bytes=1 still returns one batch");
    assert_eq!(r.batches[0].base_offset(), 10);
    assert_eq!(r.next_offset, 20);
    assert_eq!(&r.bytes[..], &r.batches[0].as_bytes()[..]);
    // A budget of two batches and a half returns two.
    let size = r.batches[0].size();
    let r = log.read(20, size * 5 / 2).unwrap();
    assert_eq!(
        r.batches
            .iter()
            .map(|b| b.base_offset())
            .collect::<Vec<_>>(),
        vec![20, 30]
    );
    assert_eq!(r.next_offset, 40);
    assert_eq!(
        r.bytes.len(),
        r.batches.iter().map(|b| b.size()).sum::<usize>()
    );
    // At the log end offset: nothing, and the same offset to ask again.
    let r = log.read(100, 1 << 20).unwrap();
    assert!(r.is_empty());
    assert_eq!(r.next_offset, 100);
    // Past it, or below the start: out of range, with the range.
    for bad in [101, -1, i64::MAX, i64::MIN] {
        match log.read(bad, 100) {
            Err(Error::OffsetOutOfRange {
                requested,
                log_start_offset: 0,
                log_end_offset: 100,
            }) => assert_eq!(requested, bad),
            other => panic!("read({bad}) gave {other:?}"),
        }
    }
    // The upper bound of read_up_to excludes batches starting at or above it.
    let r = log.read_up_to(0, 1 << 20, 35).unwrap();
    assert_eq!(r.batches.last().unwrap().base_offset(), 30);
    assert_eq!(log.read_up_to(40, 1 << 20, 40).unwrap().batches.len(), 0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn appended_batch_keeps_producer_bytes_except_the_base_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    fill(&log, 1, 3, TS);
    let mut b = BatchBuilder::new().producer(7, 1, 0);
    for i in 0..4 {
        b.push(&SimpleRecord::new(TS + i, Some("k"), None::<&[u8]>))
            .unwrap();
    }
    let produced = b.build().unwrap();
    let info = log.append_batch(&produced).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (3, 6));
    let stored = log.read(3, 1 << 20).unwrap().batches[0].clone();
    assert_eq!(stored.base_offset(), 3);
    assert_eq!(
        stored.header().crc,
        produced.header().crc,
        "offsets lie outside the CRC"
    );
    assert_eq!(&stored.as_bytes()[8..], &produced.as_bytes()[8..]);
    let offsets: Vec<i64> = stored
        .records()
        .unwrap()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(offsets, vec![3, 4, 5, 6]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn bad_appends_are_refused_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        max_batch_bytes: 200,
        ..Config::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    assert!(matches!(log.append(&[]), Err(Error::InvalidBatch(_))));
    let big = SimpleRecord::new(TS, None::<&[u8]>, Some(vec![0u8; 500]));
    assert!(matches!(
        log.append(&[big]),
        Err(Error::BatchTooLarge { max: 200, .. })
    ));
    // A batch with a broken CRC is refused by append_batch.
    let good = BatchBuilder::new();
    let mut good = good;
    good.push(&SimpleRecord::new(TS, Some("k"), Some("v")))
        .unwrap();
    let mut bytes = good.build().unwrap().into_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let bad = RecordBatch::parse_header_only(bytes.into()).unwrap();
    assert!(matches!(
        log.append_batch(&bad),
        Err(Error::InvalidBatch(_))
    ));
    assert_eq!(log.log_end_offset(), 0, "nothing was appended");
}

#[test]
#[cfg_attr(miri, ignore)]
fn reopen_after_clean_close_reads_identically_and_scans_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 150, 4, TS);
    let before: Vec<(i64, Vec<u8>)> = (0..600)
        .step_by(7)
        .map(|o| {
            let r = log.read(o, 700).unwrap();
            (r.next_offset, r.bytes.to_vec())
        })
        .collect();
    let segments = log.segment_base_offsets();
    log.close().unwrap();
    // A clean close trims every file to its data.
    for p in log_files(dir.path()) {
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len < 4096, "{} is {len} bytes", p.display());
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.open_report().clean);
    assert_eq!(log.open_report().bytes_recovered, 0);
    assert_eq!(
        log.mapped_segments(),
        0,
        "inactive segments are mapped lazily"
    );
    assert_eq!(log.segment_base_offsets(), segments);
    assert_eq!(log.log_end_offset(), 600);
    assert_eq!(log.recovery_point(), 600);
    let after: Vec<(i64, Vec<u8>)> = (0..600)
        .step_by(7)
        .map(|o| {
            let r = log.read(o, 700).unwrap();
            (r.next_offset, r.bytes.to_vec())
        })
        .collect();
    assert_eq!(before, after);
    // Appends continue where the log ended, in the same active segment.
    fill(&log, 10, 4, TS);
    assert_filled(&read_all(&log), 0, 640, TS);
}

#[test]
#[cfg_attr(miri, ignore)]
fn offset_for_timestamp_matches_a_linear_search_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    // Timestamps wander: mostly rising, sometimes falling back (producers' clocks differ).
    let mut all = Vec::new();
    for b in 0..120i64 {
        let first = log.log_end_offset();
        let records: Vec<SimpleRecord> = (0..4)
            .map(|j| {
                let o = first + j;
                let ts = TS + o * 10 - if o % 7 == 0 { 95 } else { 0 }
                    + if b % 13 == 0 { 400 } else { 0 };
                all.push((o, ts));
                record(o, ts)
            })
            .collect();
        log.append(&records).unwrap();
    }
    assert!(log.segment_count() > 3);
    let brute = |t: i64| all.iter().find(|&&(_, ts)| ts >= t).map(|&(o, _)| o);
    let check = |log: &Log| {
        for t in (TS - 200..TS + 5_200).step_by(13) {
            assert_eq!(
                log.offset_for_timestamp(t).unwrap(),
                brute(t),
                "timestamp {t}"
            );
        }
        assert_eq!(log.offset_for_timestamp(i64::MIN).unwrap(), Some(0));
        assert_eq!(log.offset_for_timestamp(i64::MAX).unwrap(), None);
    };
    check(&log);
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    check(&log);
}

#[test]
#[cfg_attr(miri, ignore)]
fn second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    assert!(matches!(
        Log::open(dir.path(), Config::default()),
        Err(Error::Locked { .. })
    ));
    drop(log);
    Log::open(dir.path(), Config::default()).unwrap();
}

#[test]
#[cfg_attr(miri, ignore)]
fn bad_config_is_refused_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("log");
    let config = Config {
        segment_bytes: 10,
        ..Config::default()
    };
    assert!(matches!(
        Log::open(&sub, config),
        Err(Error::Config {
            knob: "segment_bytes",
            ..
        })
    ));
    assert!(!sub.exists());
}

#[test]
#[cfg_attr(miri, ignore)]
fn bounded_number_of_inactive_segments_stay_mapped() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        max_open_segments: 3,
        ..small_config()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    fill(&log, 300, 4, TS);
    assert!(log.segment_count() > 10);
    assert!(log.mapped_segments() <= 3);
    log.close().unwrap();
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.mapped_segments(), 0);
    let held = log.read(0, 100).unwrap();
    assert_filled(&read_all(&log), 0, 1200, TS);
    assert!(
        log.mapped_segments() <= 3,
        "{} mapped",
        log.mapped_segments()
    );
    // Bytes read from a segment that has since been unmapped are still valid.
    assert_eq!(
        held.batches[0]
            .records()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .offset,
        0
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn reopening_with_smaller_segments_and_indexes_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let big = Config {
        segment_bytes: 1 << 20,
        segment_index_bytes: 1 << 16,
        index_interval_bytes: 64,
        ..Config::default()
    };
    let log = Log::open(dir.path(), big.clone()).unwrap();
    fill(&log, 200, 3, TS);
    log.close().unwrap();
    let small = Config {
        segment_bytes: 4096,
        segment_index_bytes: 48,
        ..big
    };
    for unclean in [false, true] {
        let log = Log::open(dir.path(), small.clone()).unwrap();
        assert_filled(&read_all(&log), 0, log.log_end_offset(), TS);
        fill(&log, 5, 3, TS);
        assert!(
            log.segment_count() >= 2,
            "the oversized active segment rolled"
        );
        assert_filled(&read_all(&log), 0, log.log_end_offset(), TS);
        if unclean {
            log.abandon();
        } else {
            log.close().unwrap();
        }
        std::fs::remove_file(dir.path().join("clean-shutdown")).ok();
    }
    let log = Log::open(dir.path(), small).unwrap();
    assert_eq!(log.log_end_offset(), 630);
    assert_filled(&read_all(&log), 0, 630, TS);
}

#[test]
#[cfg_attr(miri, ignore)]
fn large_and_small_batches_mix_and_survive_a_crash() {
    // Batches of 4 KiB and more are written with pwrite, smaller ones through the map: both
    // paths must land in the same place, visible to readers and to recovery.
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        segment_bytes: 256 << 10,
        ..Config::default()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    let mut expect = Vec::new();
    for i in 0..40i64 {
        let n = if i % 3 == 0 { 40 } else { 1 };
        let records: Vec<SimpleRecord> = (0..n)
            .map(|j| {
                SimpleRecord::new(
                    TS + i,
                    Some(format!("k{i}-{j}")),
                    Some(vec![(i + j) as u8; 1000]),
                )
            })
            .collect();
        let info = log.append(&records).unwrap();
        assert_eq!(info.size >= 4 * 1024, n == 40);
        expect.extend(records.into_iter().map(|r| r.value));
        if i == 20 {
            log.flush().unwrap();
        }
    }
    assert!(log.segment_count() > 1);
    let check = |log: &Log| {
        let mut got = Vec::new();
        let mut next = 0;
        while next < log.log_end_offset() {
            let r = log.read(next, 1 << 20).unwrap();
            for b in &r.batches {
                got.extend(b.records().unwrap().map(|r| r.unwrap().value));
            }
            next = r.next_offset;
        }
        assert_eq!(got, expect);
    };
    check(&log);
    log.abandon();
    let log = Log::open(dir.path(), config).unwrap();
    assert!(!log.open_report().clean);
    check(&log);
}
