//! Retention by time and size, the log start offset and delete-records, `.deleted` files, the
//! flush policy. Every test drives an injected clock.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use partlog::batch::SimpleRecord;
use partlog::log::RetentionReason;
use partlog::{Clock, Config, Error, Log, ManualClock};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000;

fn open(dir: &Path, config: Config, clock: &ManualClock) -> Log {
    Log::open_with_clock(dir, config, Arc::new(clock.clone())).unwrap()
}

/// One segment per call: a batch of `n` records with timestamp `ts`, then a roll.
fn segment(log: &Log, n: usize, ts: i64) {
    let first = log.log_end_offset();
    let recs: Vec<SimpleRecord> = (0..n as i64).map(|j| record(first + j, ts)).collect();
    log.append(&recs).unwrap();
    log.roll_now().unwrap();
}

fn deleted_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".deleted")
        })
        .count()
}

/// The names of the files in `dir` named for an offset below `offset` (any suffix), sorted.
fn files_below(dir: &Path, offset: i64) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.get(..20)
                .and_then(|d| d.parse::<i64>().ok())
                .is_some_and(|o| o < offset)
        })
        .collect();
    names.sort();
    names
}

/// A log (`retention_config`) of two segments of 3 records at `T0` (bases 0 and 3) and one
/// record at `T0 + 20h` in the active segment (base 6): retention at `T0 + 11h` deletes the two.
fn two_old_segments(dir: &Path, clock: &ManualClock) -> Log {
    let log = open(dir, retention_config(), clock);
    segment(&log, 3, T0);
    segment(&log, 3, T0);
    log.append(&[record(6, T0 + 20 * HOUR)]).unwrap();
    log
}

fn retention_config() -> Config {
    Config {
        retention_ms: 10 * HOUR,
        file_delete_delay_ms: 1000,
        ..small_config()
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn time_retention_deletes_only_an_expired_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), retention_config(), &clock);
    segment(&log, 3, T0); // base 0
    segment(&log, 3, T0 + 2 * HOUR); // base 3
    segment(&log, 3, T0 + 5 * HOUR); // base 6
    segment(&log, 3, T0 + HOUR); // base 9: old, but behind a younger one
    segment(&log, 3, T0 + 9 * HOUR); // base 12
    log.append(&[record(15, T0 + 9 * HOUR)]).unwrap(); // active, base 15

    let r = log.apply_retention(T0 + 10 * HOUR).unwrap();
    assert!(
        r.deleted.is_empty(),
        "exactly retention_ms old is kept: {r:?}"
    );
    let r = log.apply_retention(T0 + 12 * HOUR + 1).unwrap();
    let gone: Vec<i64> = r.deleted.iter().map(|d| d.base_offset).collect();
    assert_eq!(gone, vec![0, 3]);
    assert_eq!(
        r.deleted[1].reason,
        RetentionReason::Time {
            largest_timestamp: T0 + 2 * HOUR
        }
    );
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(r.log_start_offset, 6);
    // 15h: base 6 (5h) and base 9 (1h, behind it) go; base 12 (9h) stays.
    let r = log.apply_retention(T0 + 15 * HOUR + 1).unwrap();
    assert_eq!(
        r.deleted.iter().map(|d| d.base_offset).collect::<Vec<_>>(),
        vec![6, 9]
    );
    assert_eq!(log.segment_base_offsets(), vec![12, 15]);
    assert!(matches!(
        log.read(11, 100),
        Err(Error::OffsetOutOfRange {
            log_start_offset: 12,
            ..
        })
    ));
    assert_values(&read_all(&log), 12, 16);
}

#[test]
#[cfg_attr(miri, ignore)]
fn future_timestamps_pin_a_segment_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), retention_config(), &clock);
    segment(&log, 2, T0);
    segment(&log, 2, T0 + 1000 * HOUR); // a producer with a broken clock
    segment(&log, 2, T0);
    let r = log.apply_retention(T0 + 20 * HOUR).unwrap();
    assert_eq!(
        r.deleted.iter().map(|d| d.base_offset).collect::<Vec<_>>(),
        vec![0]
    );
    assert_eq!(r.pinned_by_future_timestamp, Some((2, T0 + 1000 * HOUR)));
    let infos = log.segment_infos().unwrap();
    assert_eq!(infos[0].base_offset, 2);
    assert_eq!(infos[0].largest_timestamp, T0 + 1000 * HOUR);
    assert_eq!(infos[0].end_offset, 4);
    // Once the clock passes it, both go.
    let r = log.apply_retention(T0 + 1011 * HOUR).unwrap();
    assert_eq!(r.deleted.len(), 2);
    assert_eq!(r.pinned_by_future_timestamp, None);
}

#[test]
#[cfg_attr(miri, ignore)]
fn segments_without_timestamps_age_by_file_mtime() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), retention_config(), &clock);
    segment(&log, 2, -1); // records without a timestamp
    segment(&log, 2, -1);
    log.append(&[record(4, T0)]).unwrap();
    let infos = log.segment_infos().unwrap();
    assert_eq!(infos[0].largest_timestamp, -1);
    // Back-date the first file to T0 - 1h; the second stays at its real mtime (now, which is far
    // after T0 because T0 is in 2023).
    let first = std::fs::File::options()
        .write(true)
        .open(dir.path().join(format!("{:020}.log", 0)))
        .unwrap();
    first
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_millis((T0 - HOUR) as u64))
        .unwrap();
    let r = log.apply_retention(T0 + 9 * HOUR + 1).unwrap();
    assert_eq!(
        r.deleted.iter().map(|d| d.base_offset).collect::<Vec<_>>(),
        vec![0]
    );
    assert!(
        matches!(r.deleted[0].reason, RetentionReason::Time { largest_timestamp } if largest_timestamp == T0 - HOUR)
    );
    assert_eq!(log.segment_base_offsets(), vec![2, 4]);
}

#[test]
#[cfg_attr(miri, ignore)]
fn size_retention_at_the_exact_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(
        dir.path(),
        Config {
            retention_ms: -1,
            ..retention_config()
        },
        &clock,
    );
    for _ in 0..4 {
        segment(&log, 3, T0);
    }
    log.append(&[record(12, T0)]).unwrap();
    let infos = log.segment_infos().unwrap();
    let total: u64 = infos.iter().map(|i| i.size).sum();
    // Limit = total minus the first segment: without it the log is exactly at the limit, so it
    // goes (Kafka: delete while size - segment >= retention.bytes); the second would leave the
    // log under the limit, so it stays.
    let limit = (total - infos[0].size) as i64;
    drop(log);
    let log = open(
        dir.path(),
        Config {
            retention_bytes: limit,
            retention_ms: -1,
            ..retention_config()
        },
        &clock,
    );
    let r = log.apply_retention(T0).unwrap();
    assert_eq!(r.deleted.len(), 1);
    assert_eq!(
        r.deleted[0].reason,
        RetentionReason::Size {
            retention_bytes: limit
        }
    );
    assert_eq!(log.size() as i64, limit);
    // One byte under: nothing more goes.
    drop(log);
    let log = open(
        dir.path(),
        Config {
            retention_bytes: limit - 1,
            retention_ms: -1,
            ..retention_config()
        },
        &clock,
    );
    assert!(log.apply_retention(T0).unwrap().deleted.is_empty());
    assert_eq!(log.log_start_offset(), 3);
}

#[test]
#[cfg_attr(miri, ignore)]
fn when_every_segment_expires_the_log_end_offset_stays_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), retention_config(), &clock);
    segment(&log, 3, T0);
    log.append(&[record(3, T0), record(4, T0)]).unwrap(); // active segment, not empty
    let r = log.apply_retention(T0 + 11 * HOUR).unwrap();
    assert_eq!(
        r.deleted.len(),
        2,
        "the active one too, after a roll: {r:?}"
    );
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(log.log_start_offset(), 5);
    assert_eq!(log.segment_base_offsets(), vec![5]);
    assert!(log.read(5, 100).unwrap().is_empty());
    assert!(matches!(
        log.read(4, 100),
        Err(Error::OffsetOutOfRange { .. })
    ));
    // An empty active segment is never deleted.
    assert!(log
        .apply_retention(T0 + 100 * HOUR)
        .unwrap()
        .deleted
        .is_empty());
    fill(&log, 2, 2, T0);
    assert_filled(&read_all(&log), 5, 9, T0);
    log.close().unwrap();
    let log = open(dir.path(), retention_config(), &clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (5, 9));
}

#[test]
#[cfg_attr(miri, ignore)]
fn delete_records_below_inside_and_beyond_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), retention_config(), &clock);
    fill(&log, 200, 4, T0);
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 4);
    // Inside the log, in the middle of a segment: whole segments below go, the rest stays.
    let target = bases[3] + 2;
    assert_eq!(log.delete_records(target).unwrap(), target);
    assert_eq!(log.log_start_offset(), target);
    assert_eq!(log.segment_base_offsets()[0], bases[3]);
    assert!(matches!(
        log.read(target - 1, 10),
        Err(Error::OffsetOutOfRange { requested, log_start_offset, log_end_offset: 800 })
            if requested == target - 1 && log_start_offset == target
    ));
    let recs = read_all(&log);
    assert_filled(&recs, target, 800, T0);
    // Below the start: never backward.
    assert_eq!(log.delete_records(1).unwrap(), target);
    assert_eq!(log.log_start_offset(), target);
    // Beyond the end: refused, with the range.
    assert!(matches!(
        log.delete_records(801),
        Err(Error::OffsetOutOfRange { requested: 801, .. })
    ));
    // Restart keeps the start offset (checkpointed), both clean and after a crash.
    log.close().unwrap();
    let log = open(dir.path(), retention_config(), &clock);
    assert_eq!(log.log_start_offset(), target);
    assert_eq!(log.delete_records(target + 10).unwrap(), target + 10);
    log.abandon();
    let log = open(dir.path(), retention_config(), &clock);
    assert_eq!(log.log_start_offset(), target + 10);
    assert_filled(&read_all(&log), target + 10, 800, T0);
    // Up to the very end: everything goes, the log end offset stays.
    assert_eq!(log.delete_records(800).unwrap(), 800);
    assert_eq!(log.segment_base_offsets(), vec![800]);
    fill(&log, 1, 2, T0);
    assert_filled(&read_all(&log), 800, 802, T0);
}

#[test]
#[cfg_attr(miri, ignore)]
fn start_offset_past_a_lost_tail_restarts_the_log_empty_there() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(dir.path(), retention_config(), &clock);
    fill(&log, 10, 4, T0);
    log.close().unwrap();
    // As if delete-records had moved the start to 100 and the tail was then lost.
    std::fs::write(
        dir.path().join("log-start-offset-checkpoint"),
        "0\n1\n100\n",
    )
    .unwrap();
    let log = open(dir.path(), retention_config(), &clock);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (100, 100));
    assert!(matches!(
        log.read(0, 10),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.append(&[record(100, T0)]).unwrap().first_offset, 100);
}

#[test]
#[cfg_attr(miri, ignore)]
fn deleted_files_wait_for_the_delay_and_readers_keep_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = two_old_segments(dir.path(), &clock);
    // A reader holds the first segment's bytes (mapped), another only the segment handle.
    let held = log.read(0, 1 << 20).unwrap();
    let r = log.apply_retention(T0 + 11 * HOUR).unwrap();
    assert_eq!(r.deleted.len(), 2);
    // The two segments' `.log`s are renamed `.deleted`; their indexes, and the producer
    // snapshot taken when the second was rolled in (at offset 3; the one at 6 belongs to the
    // segment kept), wait under their names.
    let waiting = [
        "00000000000000000000.index",
        "00000000000000000000.log.deleted",
        "00000000000000000000.timeindex",
        "00000000000000000003.index",
        "00000000000000000003.log.deleted",
        "00000000000000000003.snapshot",
        "00000000000000000003.timeindex",
    ];
    assert_eq!(files_below(dir.path(), 6), waiting, "not yet removed");
    assert_eq!(deleted_files(dir.path()), 2);
    assert!(dir.path().join(format!("{:020}.snapshot", 6)).exists());
    // Not yet due.
    assert_eq!(
        log.apply_retention(T0 + 11 * HOUR + 999)
            .unwrap()
            .files_removed,
        0
    );
    assert_eq!(files_below(dir.path(), 6), waiting);
    assert_eq!(
        log.apply_retention(T0 + 11 * HOUR + 1000)
            .unwrap()
            .files_removed,
        7
    );
    assert!(files_below(dir.path(), 6).is_empty());
    assert!(dir.path().join(format!("{:020}.snapshot", 6)).exists());
    assert!(dir.path().join(format!("{:020}.index", 6)).exists());
    // The held batches still read, byte for byte.
    let recs: Vec<_> = held.batches[0]
        .records()
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_values(&recs, 0, 3);
}

/// A deleted segment's index files wait under their names, which a full truncation below them
/// (`reset_to`) can hand to new segments: the ones in its way go at once, and when the delay
/// passes nothing of a live segment goes with the rest.
#[test]
#[cfg_attr(miri, ignore)]
fn a_reset_below_deleted_segments_keeps_the_files_of_the_segments_that_reuse_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = two_old_segments(dir.path(), &clock);
    assert_eq!(
        log.apply_retention(T0 + 11 * HOUR).unwrap().deleted.len(),
        2
    );
    log.reset_to(0).unwrap();
    // The renamed logs wait; the indexes the new segments could take are gone.
    assert_eq!(
        files_below(dir.path(), 6),
        [
            "00000000000000000000.index",
            "00000000000000000000.log",
            "00000000000000000000.log.deleted",
            "00000000000000000000.timeindex",
            "00000000000000000003.log.deleted",
        ]
    );
    // New segments at 0 and 3, as before the reset, with records retention keeps.
    let recs: Vec<_> = (0..7).map(|o| record(o, T0 + 20 * HOUR)).collect();
    log.append(&recs[..3]).unwrap();
    log.roll_now().unwrap();
    log.append(&recs[3..]).unwrap();
    assert_eq!(log.segment_base_offsets(), [0, 3]);
    let r = log.apply_retention(T0 + 11 * HOUR + 1000).unwrap();
    assert!(r.deleted.is_empty());
    assert_eq!(r.files_removed, 2, "the two renamed logs");
    for base in [0, 3] {
        for suffix in ["log", "index", "timeindex"] {
            let name = format!("{base:020}.{suffix}");
            assert!(dir.path().join(&name).exists(), "{name}");
        }
    }
    log.close().unwrap();
    let log = open(dir.path(), retention_config(), &clock);
    assert!(log.open_report().clean);
    let read = log.read(0, 1 << 20).unwrap();
    let got: Vec<_> = read.batches[0]
        .records()
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_values(&got, 0, 3);
    assert_eq!(log.log_end_offset(), 7);
}

#[test]
#[cfg_attr(miri, ignore)]
fn leftover_deleted_files_are_removed_at_open_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = open(
        dir.path(),
        Config {
            file_delete_delay_ms: 1 << 40,
            ..retention_config()
        },
        &clock,
    );
    segment(&log, 3, T0);
    log.append(&[record(3, T0 + 20 * HOUR)]).unwrap();
    log.apply_retention(T0 + 11 * HOUR).unwrap();
    assert_eq!(deleted_files(dir.path()), 1);
    assert_eq!(
        files_below(dir.path(), 3).len(),
        3,
        "the .log and its indexes"
    );
    log.abandon(); // a crash leaves them
    assert_eq!(files_below(dir.path(), 3).len(), 3);
    let log = open(dir.path(), retention_config(), &clock);
    assert!(files_below(dir.path(), 3).is_empty(), "open removes them");
    segment(&log, 1, T0);
    log.apply_retention(T0 + 31 * HOUR).unwrap();
    assert!(deleted_files(dir.path()) > 0);
    let start = log.log_start_offset();
    assert!(!files_below(dir.path(), start).is_empty());
    log.close().unwrap();
    assert!(
        files_below(dir.path(), start).is_empty(),
        "close removes pending deletions"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn flush_policy_moves_the_recovery_point_exactly_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let config = Config {
        flush_messages: Some(5),
        flush_ms: Some(1000),
        ..retention_config()
    };
    let log = open(dir.path(), config, &clock);
    let checkpoint =
        || std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).ok();
    log.append(&[record(0, T0), record(1, T0)]).unwrap();
    log.append(&[record(2, T0), record(3, T0)]).unwrap();
    assert_eq!(log.recovery_point(), 0, "4 records < flush_messages");
    log.append(&[record(4, T0)]).unwrap();
    assert_eq!(log.recovery_point(), 5, "the 5th record flushes");
    assert_eq!(checkpoint().as_deref(), Some("0\n1\n0000000000000000005\n"));
    log.append(&[record(5, T0)]).unwrap();
    clock.advance(999);
    log.tick(clock.now_ms()).unwrap();
    assert_eq!(log.recovery_point(), 5, "999 ms < flush_ms");
    clock.advance(1);
    log.tick(clock.now_ms()).unwrap();
    assert_eq!(log.recovery_point(), 6, "flush_ms passed");
    // An append after flush_ms flushes by itself.
    clock.advance(1000);
    log.append(&[record(6, T0)]).unwrap();
    assert_eq!(log.recovery_point(), 7);
    // Without a policy, only flush() (or a roll, which syncs the segment) moves it.
    drop(log);
    let log = open(
        dir.path(),
        Config {
            segment_bytes: 1 << 20,
            retention_ms: -1,
            ..retention_config()
        },
        &clock,
    );
    fill(&log, 20, 5, T0);
    clock.advance(1 << 30);
    log.tick(clock.now_ms()).unwrap();
    assert_eq!(log.recovery_point(), 7);
    log.flush().unwrap();
    assert_eq!(log.recovery_point(), 107);
}

#[test]
#[cfg_attr(miri, ignore)]
fn maintenance_thread_applies_retention() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let log = Arc::new(open(
        dir.path(),
        Config {
            file_delete_delay_ms: 0,
            ..retention_config()
        },
        &clock,
    ));
    segment(&log, 3, T0);
    log.append(&[record(3, T0 + 20 * HOUR)]).unwrap();
    // A panic in `on_error` would die with the thread unseen (stopping discards it): collect
    // the errors and check them after the thread has stopped.
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&errors);
    let m = Log::spawn_maintenance(
        Arc::clone(&log),
        std::time::Duration::from_millis(5),
        move |e| sink.lock().unwrap().push(e.to_string()),
    );
    clock.set(T0 + 11 * HOUR);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while log.log_start_offset() != 3 {
        assert!(std::time::Instant::now() < deadline, "retention never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    m.stop();
    assert_eq!(
        *errors.lock().unwrap(),
        Vec::<String>::new(),
        "the maintenance thread reported errors"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn soak_append_read_and_retention_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(T0);
    let retention_bytes = 32 * 1024;
    let segment_bytes = 4096u64;
    let config = Config {
        retention_bytes,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        ..small_config()
    };
    let log = Arc::new(open(dir.path(), config, &clock));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3u64)
        .map(|seed| {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut ok, mut out_of_range) = (0u64, 0u64);
                let mut rng = seed * 7919 + 1;
                while !stop.load(Ordering::Relaxed) {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let (start, end) = (log.log_start_offset(), log.log_end_offset());
                    let from = start + (rng >> 33) as i64 % (end - start + 1);
                    match log.read(from, 1500) {
                        Ok(r) => {
                            for b in &r.batches {
                                for rec in b.records().unwrap() {
                                    let rec = rec.unwrap();
                                    assert_eq!(
                                        rec.value.as_deref(),
                                        Some(&value_of(rec.offset)[..])
                                    );
                                }
                            }
                            ok += 1;
                        }
                        Err(Error::OffsetOutOfRange { .. }) => out_of_range += 1,
                        Err(e) => panic!("read({from}) failed with {e}"),
                    }
                }
                (ok, out_of_range)
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut max_disk = 0u64;
    while std::time::Instant::now() < deadline {
        fill(&log, 5, 3, T0);
        log.apply_retention(clock.now_ms()).unwrap();
        let disk: u64 = log_files(dir.path())
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        // The active segment's file is preallocated to segment_bytes; count data instead.
        max_disk = max_disk.max(log.size());
        assert!(
            disk <= retention_bytes as u64 + 2 * segment_bytes,
            "{disk} bytes of files"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let mut totals = (0, 0);
    for r in readers {
        let (a, b) = r.join().unwrap();
        totals.0 += a;
        totals.1 += b;
    }
    assert!(
        max_disk <= retention_bytes as u64 + segment_bytes,
        "log grew to {max_disk}"
    );
    assert!(totals.0 > 100, "{totals:?}");
    assert!(log.log_start_offset() > 0, "retention ran");
    assert_filled(
        &read_all(&log),
        log.log_start_offset(),
        log.log_end_offset(),
        T0,
    );
    eprintln!(
        "reads ok {}, out of range {}, start offset {}",
        totals.0,
        totals.1,
        log.log_start_offset()
    );
}

/// `apply_retention_below` never deletes a segment that ends past its bound (a leader keeps
/// what its followers have not copied yet: Kafka deletes only below the high watermark).
#[test]
#[cfg_attr(miri, ignore)]
fn retention_below_a_bound_keeps_the_segments_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = partlog::Config {
        retention_bytes: 0,
        file_delete_delay_ms: 0,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    fill(&log, 60, 5, 1_600_000_000_000);
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 5, "{bases:?}");
    // A bound inside the fourth segment: the first three go, nothing from the fourth on.
    let bound = bases[3] + 1;
    let report = log.apply_retention_below(0, bound).unwrap();
    assert_eq!(report.deleted.len(), 3, "{report:?}");
    assert!(report.deleted.iter().all(|d| d.end_offset <= bound));
    assert_eq!(log.log_start_offset(), bases[3]);
    // Without the bound, retention_bytes = 0 takes every segment but an empty active one.
    let report = log.apply_retention(0).unwrap();
    assert!(!report.deleted.is_empty());
    assert_eq!(log.log_start_offset(), log.log_end_offset());
}
