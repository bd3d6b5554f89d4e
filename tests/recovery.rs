//! Recovery: torn tails, flipped bytes, damaged and missing index files, the recovery point.
//! Mirrors Kafka's `testPartialWrite`, `testCorruptLog`, `testCorruptIndexRebuild`,
//! `testIndexRebuild`, `testBogusIndexSegmentsAreRemoved`, `testCleanShutdownFile`.

mod common;

use std::fs::{self, OpenOptions};
use std::path::Path;

use common::*;
use partlog::{Config, Error, Log};

const TS: i64 = 1_700_000_000_000;

fn config() -> Config {
    Config {
        segment_bytes: 16 * 1024,
        ..small_config()
    }
}

/// Positions (in the last segment) of its batches, read through the public API.
fn batch_positions(log: &Log) -> Vec<(i64, u64, usize)> {
    let base = *log.segment_base_offsets().last().unwrap();
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut next = base;
    while next < log.log_end_offset() {
        let r = log.read(next, 1).unwrap();
        let b = &r.batches[0];
        out.push((b.base_offset(), pos, b.size()));
        pos += b.size() as u64;
        next = r.next_offset;
    }
    out
}

#[test]
#[cfg_attr(miri, ignore)]
fn torn_tail_cut_at_every_byte_recovers_to_the_last_whole_batch() {
    let src = tempfile::tempdir().unwrap();
    let log = Log::open(src.path(), config()).unwrap();
    fill(&log, 30, 3, TS);
    let positions = batch_positions(&log);
    let last_log = log_files(src.path()).pop().unwrap();
    let (last_base, last_pos, last_size) = *positions.last().unwrap();
    let (prev_base, _, _) = positions[positions.len() - 2];
    log.flush().unwrap();
    let leo = log.log_end_offset();
    log.abandon();
    let original = fs::read(&last_log).unwrap();

    for cut in last_pos..last_pos + last_size as u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let name = last_log.file_name().unwrap();
        // The crash left the file cut at `cut`: zeros after it (preallocated space), or the
        // file itself ending there.
        let f = OpenOptions::new()
            .write(true)
            .open(dir.path().join(name))
            .unwrap();
        let zero_filled = cut % 2 == 1;
        f.set_len(cut).unwrap();
        if zero_filled {
            f.set_len(16 * 1024).unwrap();
        }
        drop(f);
        // Zeroing bytes that were zero already (a record's trailing header count) leaves the
        // batch whole: then it must be kept.
        let end = (last_pos + last_size as u64) as usize;
        let intact = zero_filled && original[cut as usize..end].iter().all(|&b| b == 0);
        let last_base = if intact { leo } else { last_base };
        let log = Log::open(dir.path(), config()).unwrap();
        let report = log.open_report().clone();
        assert!(!report.clean);
        assert_eq!(log.log_end_offset(), last_base, "cut at {cut}");
        // (The first bytes of a batch are its base offset's high zero bytes: a cut inside
        // them leaves only zeros, which is preallocated space, not a torn batch.)
        if cut >= last_pos + 8 && !intact {
            let (seg, pos, _) = report.truncated.clone().expect("a torn batch is reported");
            assert_eq!(pos, last_pos, "cut at {cut}: {report:?}");
            assert!(seg <= prev_base);
        }
        assert_filled(&read_all(&log), 0, last_base, TS);
        // Appends continue at the recovered end.
        fill(&log, 2, 3, TS);
        assert_filled(&read_all(&log), 0, last_base + 6, TS);
        log.close().unwrap();
        let log = Log::open(dir.path(), config()).unwrap();
        assert_filled(&read_all(&log), 0, last_base + 6, TS);
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn flipped_byte_in_a_flushed_batch_is_reported_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    fill(&log, 20, 5, TS);
    let positions = batch_positions(&log);
    log.close().unwrap();
    let path = log_files(dir.path())[0].clone();
    let mut bytes = fs::read(&path).unwrap();
    // Flip a byte inside the 8th batch's records (past its 61-byte header).
    let (victim, pos, size) = positions[7];
    let flip = pos as usize + 61 + (size - 61) / 2;
    bytes[flip] ^= 0x40;
    fs::write(&path, &bytes).unwrap();

    let log = Log::open(dir.path(), Config::default()).unwrap();
    assert!(
        log.open_report().clean,
        "a clean open does not read the data"
    );
    for from in victim..victim + 5 {
        match log.read(from, 1 << 20) {
            Err(Error::Corrupt {
                path: p,
                position,
                reason,
            }) => {
                assert_eq!(p, path);
                assert_eq!(position, pos, "{reason}");
            }
            other => panic!("read({from}) returned {other:?}"),
        }
    }
    // Earlier batches still read: a read that would run into the bad batch returns the good
    // ones before it, and the read that starts at the bad one reports it.
    let r = log.read(0, 1).unwrap();
    assert_eq!(r.batches.len(), 1);
    let r = log.read(0, 1 << 20).unwrap();
    assert_eq!(r.next_offset, victim);
    assert!(r.batches.iter().all(|b| b.last_offset() < victim));
    // Later batches are unaffected.
    let r = log.read(victim + 5, 1).unwrap();
    assert_eq!(r.batches[0].base_offset(), victim + 5);
}

#[test]
#[cfg_attr(miri, ignore)]
fn corrupt_batch_after_the_recovery_point_is_cut_with_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    fill(&log, 10, 3, TS);
    log.flush().unwrap();
    let flushed = log.log_end_offset();
    fill(&log, 600, 3, TS);
    let segments_before = log.segment_count();
    assert!(segments_before > 3);
    // Every roll synced its segment and moved the recovery point to the new segment's base.
    assert_eq!(
        log.recovery_point(),
        *log.segment_base_offsets().last().unwrap()
    );
    log.abandon();
    // Put the recovery point back to the first segment's end (as an older checkpoint would
    // have it), then damage a batch in the second segment: now after the recovery point.
    let first_end = Log::open(dir.path(), config()).map(|l| {
        let b = l.segment_base_offsets()[1];
        l.abandon();
        b
    });
    let first_end = first_end.unwrap();
    fs::write(
        dir.path().join("recovery-point-offset-checkpoint"),
        format!("0\n1\n{first_end}\n"),
    )
    .unwrap();
    let files = log_files(dir.path());
    let mut bytes = fs::read(&files[1]).unwrap();
    bytes[300] ^= 0xff;
    fs::write(&files[1], &bytes).unwrap();

    let log = Log::open(dir.path(), config()).unwrap();
    let report = log.open_report().clone();
    let (seg, _, _) = report.truncated.clone().unwrap();
    assert_eq!(seg, log.segment_base_offsets()[1]);
    assert_eq!(report.segments_removed, segments_before - 2);
    assert_eq!(log.segment_count(), 2);
    assert!(log.log_end_offset() >= flushed, "flushed records survive");
    assert_filled(&read_all(&log), 0, log.log_end_offset(), TS);
    assert_eq!(log.recovery_point(), log.log_end_offset());
}

/// The recovery-point checkpoint written after a crash (a new file renamed in) and the one each
/// later flush rewrites in place are the same file: after crash, open, append, flush and close,
/// the next clean open finds the recovery point at the log end offset. (A held-open handle once
/// kept writing to the file the rename had replaced.)
#[test]
#[cfg_attr(miri, ignore)]
fn recovery_point_after_a_crash_follows_later_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    fill(&log, 3, 3, TS);
    log.abandon();
    for round in 0..3 {
        let log = Log::open(dir.path(), config()).unwrap();
        fill(&log, 4, 3, TS);
        log.flush().unwrap();
        let leo = log.log_end_offset();
        assert_eq!(log.recovery_point(), leo, "round {round}");
        let text = fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
        let on_disk: i64 = text.lines().nth(2).unwrap().parse().unwrap();
        assert_eq!(
            on_disk, leo,
            "round {round}: the checkpoint file after a flush"
        );
        if round == 1 {
            log.close().unwrap();
            let log = Log::open(dir.path(), config()).unwrap();
            assert!(log.open_report().clean);
            assert_eq!(log.recovery_point(), leo, "after a clean close");
            log.abandon();
        } else {
            log.abandon();
        }
        let log = Log::open(dir.path(), config()).unwrap();
        let report = log.open_report().clone();
        assert!(!report.clean);
        assert_eq!(report.truncated, None, "round {round}: {report:?}");
        assert_eq!(log.log_end_offset(), leo);
        log.abandon();
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn unclean_open_scans_only_from_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    fill(&log, 300, 3, TS);
    log.flush().unwrap();
    fill(&log, 5, 3, TS);
    let leo = log.log_end_offset();
    log.abandon();
    // Damage an early (flushed, inactive) segment: recovery must not read it.
    let first = log_files(dir.path())[0].clone();
    let mut bytes = fs::read(&first).unwrap();
    bytes[100] ^= 1;
    fs::write(&first, &bytes).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let report = log.open_report();
    assert!(!report.clean);
    assert!(report.segments_recovered <= 2, "{report:?}");
    assert_eq!(report.truncated, None);
    assert_eq!(
        log.log_end_offset(),
        leo,
        "unflushed records in the page cache survive a process crash"
    );
    assert!(matches!(log.read(0, 1 << 20), Err(Error::Corrupt { .. })));
}

fn damage_indexes(dir: &Path) {
    let mut index_files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "index" || x == "timeindex")
        })
        .collect();
    index_files.sort();
    assert!(index_files.len() >= 8);
    for (i, p) in index_files.iter().enumerate() {
        match i % 4 {
            0 => fs::remove_file(p).unwrap(),
            1 => fs::write(p, vec![0xa5u8; 96]).unwrap(),
            2 => {
                // Plausible-looking but wrong: valid shape, offsets pointing past the log.
                let mut v = Vec::new();
                for k in 0..4i32 {
                    v.extend_from_slice(&(k * 1000).to_be_bytes());
                    v.extend_from_slice(&(k * 100_000).to_be_bytes());
                    if p.extension().unwrap() == "timeindex" {
                        v.extend_from_slice(&[0, 0, 0, 0]);
                    }
                }
                fs::write(p, v).unwrap();
            }
            _ => {
                let len = fs::metadata(p).unwrap().len();
                OpenOptions::new()
                    .write(true)
                    .open(p)
                    .unwrap()
                    .set_len(len / 2 + 1)
                    .unwrap();
            }
        }
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn deleted_and_garbage_index_files_are_rebuilt() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), small_config()).unwrap();
        fill(&log, 120, 4, TS);
        let reads: Vec<Vec<u8>> = (0..480)
            .step_by(11)
            .map(|o| log.read(o, 500).unwrap().bytes.to_vec())
            .collect();
        let times: Vec<Option<i64>> = (0..500)
            .step_by(9)
            .map(|t| log.offset_for_timestamp(TS + t).unwrap())
            .collect();
        if clean {
            log.close().unwrap();
        } else {
            log.flush().unwrap();
            log.abandon();
        }
        damage_indexes(dir.path());
        let log = Log::open(dir.path(), small_config()).unwrap();
        let reads2: Vec<Vec<u8>> = (0..480)
            .step_by(11)
            .map(|o| log.read(o, 500).unwrap().bytes.to_vec())
            .collect();
        assert_eq!(reads, reads2, "clean={clean}");
        let times2: Vec<Option<i64>> = (0..500)
            .step_by(9)
            .map(|t| log.offset_for_timestamp(TS + t).unwrap())
            .collect();
        assert_eq!(times, times2, "clean={clean}");
        assert_filled(&read_all(&log), 0, 480, TS);
        log.close().unwrap();
        // The rebuilt files are good on the next open, too.
        let log = Log::open(dir.path(), small_config()).unwrap();
        assert_filled(&read_all(&log), 0, 480, TS);
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn orphan_index_files_and_leftovers_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 40, 4, TS);
    log.close().unwrap();
    let orphan = dir.path().join(format!("{:020}.index", 99_999));
    let orphan_time = dir.path().join(format!("{:020}.timeindex", 99_999));
    let deleted = dir.path().join(format!("{:020}.log.deleted", 5));
    let tmp = dir.path().join("recovery-point-offset-checkpoint.tmp");
    for p in [&orphan, &orphan_time, &deleted, &tmp] {
        fs::write(p, b"junk").unwrap();
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    for p in [&orphan, &orphan_time, &deleted, &tmp] {
        assert!(!p.exists(), "{} was left", p.display());
    }
    assert_filled(&read_all(&log), 0, 160, TS);
}

#[test]
#[cfg_attr(miri, ignore)]
fn damaged_checkpoints_give_recovery_or_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    fill(&log, 40, 4, TS);
    log.close().unwrap();
    // A garbled recovery point only makes recovery start from the beginning.
    fs::write(
        dir.path().join("recovery-point-offset-checkpoint"),
        b"\xff\xfe garbage",
    )
    .unwrap();
    fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.open_report().segments_recovered, log.segment_count());
    assert_filled(&read_all(&log), 0, 160, TS);
    log.close().unwrap();
    // A garbled log start offset is not guessed at: it could expose deleted records.
    fs::write(
        dir.path().join("log-start-offset-checkpoint"),
        b"0\n1\nabc\n",
    )
    .unwrap();
    match Log::open(dir.path(), small_config()) {
        Err(Error::Corrupt { path, .. }) => assert!(path.ends_with("log-start-offset-checkpoint")),
        other => panic!("{other:?}"),
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn recovery_with_an_empty_active_segment_keeps_the_log_end_offset() {
    // Kafka's testRecoverWithEmptyActiveSegment.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    fill(&log, 20, 3, TS);
    log.roll_now().unwrap();
    assert_eq!(*log.segment_base_offsets().last().unwrap(), 60);
    log.abandon();
    let log = Log::open(dir.path(), config()).unwrap();
    assert!(!log.open_report().clean);
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(*log.segment_base_offsets().last().unwrap(), 60);
    assert_filled(&read_all(&log), 0, 60, TS);
    fill(&log, 1, 3, TS);
    assert_filled(&read_all(&log), 0, 63, TS);
}

#[test]
#[cfg_attr(miri, ignore)]
fn repeated_crashes_recover_to_the_same_offsets() {
    // Kafka's testLogRecoversToCorrectOffset, over several crash/reopen rounds.
    let dir = tempfile::tempdir().unwrap();
    let mut expected = 0;
    for round in 0..5 {
        let log = Log::open(dir.path(), config()).unwrap();
        assert_eq!(log.log_end_offset(), expected, "round {round}");
        assert_eq!(log.recovery_point(), expected);
        fill(&log, 30 + round, 2, TS);
        expected = log.log_end_offset();
        if round % 2 == 0 {
            log.flush().unwrap();
        }
        log.abandon();
    }
    let log = Log::open(dir.path(), config()).unwrap();
    assert_filled(&read_all(&log), 0, expected, TS);
}
