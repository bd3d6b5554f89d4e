//! Concurrency stress: readers, one writer and maintenance on one log at once, on small segments,
//! every returned byte checked against what was written at that offset (issue 9).
//!
//! - Readers: `read`, `read_up_to`, `read_record`, `offset_for_timestamp`, `segment_infos`.
//! - The writer: `append`, `append_batch`, `roll_now`, and `flush` (racing truncations).
//! - Maintenance: `apply_retention`, `delete_records`, `truncate_to`, `flush`, `tick`.
//!
//! Checked while running: an `OffsetOutOfRange` never names a range holding the offset asked
//! for; no other error is ever returned; the log start never decreases (as each reader sees it);
//! the recovery point never exceeds the log end offset; every batch read is a batch the writer
//! wrote at that offset, byte for byte (records carry an id, and every byte of a record derives
//! from its id); a time lookup answers an offset whose record is stamped at or after the time.
//! Checked at the end: every batch a reader saw was written at that offset with those ids.
//!
//! The budget is `PARTLOG_STRESS_SECS` seconds (default 4); `.ci/run` runs it for 30.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use partlog::batch::{BatchBuilder, RecordBatch, SimpleRecord};
use partlog::{Config, Error, Log};

mod common;

/// A written batch: (base offset, first record id, record count).
type BatchId = (i64, u64, usize);

/// Small xorshift generator: tests stay free of a `rand` dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Every byte of record `id`: its id, then a pattern derived from it.
fn value_of(id: u64) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend((0..id % 61).map(|i| (id.wrapping_mul(31).wrapping_add(i)) as u8));
    v
}

fn record_of(id: u64) -> SimpleRecord {
    // The timestamp is the id: timestamps grow with offsets, truncation or not.
    SimpleRecord::new(id as i64, Some(format!("k{}", id % 7)), Some(value_of(id)))
}

fn config() -> Config {
    Config {
        segment_bytes: 8 * 1024,
        segment_index_bytes: 1024,
        index_interval_bytes: 512,
        max_open_segments: 4,
        retention_bytes: 256 * 1024,
        file_delete_delay_ms: 0,
        ..Config::default()
    }
}

#[derive(Default)]
struct Counts {
    appends: AtomicU64,
    rolls: AtomicU64,
    reads: AtomicU64,
    record_reads: AtomicU64,
    batches_checked: AtomicU64,
    out_of_range: AtomicU64,
    lookups: AtomicU64,
    infos: AtomicU64,
    retentions: AtomicU64,
    deletes: AtomicU64,
    truncations: AtomicU64,
    flushes: AtomicU64,
    ticks: AtomicU64,
}

/// Checks one batch read at its place: ids, offsets, timestamps and every value byte.
fn check_batch(batch: &RecordBatch) -> BatchId {
    let mut first_id = None;
    let mut count = 0;
    for (i, record) in batch.records().unwrap().enumerate() {
        let record = record.unwrap();
        let value = record.value.expect("every record has a value");
        let id = u64::from_le_bytes(value[..8].try_into().unwrap());
        let first = *first_id.get_or_insert(id);
        assert_eq!(id, first + i as u64, "ids in a batch are consecutive");
        assert_eq!(record.offset, batch.base_offset() + i as i64);
        assert_eq!(record.timestamp, id as i64);
        assert_eq!(&value[..], &value_of(id)[..], "value bytes of record {id}");
        count += 1;
    }
    (
        batch.base_offset(),
        first_id.expect("a batch holds records"),
        count,
    )
}

fn check_out_of_range(e: Error, asked: i64) {
    match e {
        Error::OffsetOutOfRange {
            requested,
            log_start_offset,
            log_end_offset,
        } => {
            assert_eq!(requested, asked);
            assert!(
                requested < log_start_offset || requested > log_end_offset,
                "OffsetOutOfRange names [{log_start_offset}, {log_end_offset}], which holds {requested}"
            );
        }
        other => panic!("a read returned {other:?}"),
    }
}

fn reader(
    log: &Log,
    seed: u64,
    stop: &AtomicBool,
    counts: &Counts,
    seen: &Mutex<HashSet<BatchId>>,
) {
    let mut rng = Rng(seed);
    let mut local: HashSet<BatchId> = HashSet::new();
    let mut start_seen = i64::MIN;
    while !stop.load(Ordering::Relaxed) {
        let start = log.log_start_offset();
        assert!(
            start >= start_seen,
            "log start went down: {start_seen} -> {start}"
        );
        start_seen = start;
        let end = log.log_end_offset();
        let span = (end - start + 3) as u64;
        let asked = start - 1 + rng.below(span) as i64;
        match rng.below(10) {
            0 => {
                counts.record_reads.fetch_add(1, Ordering::Relaxed);
                match log.read_record(asked) {
                    Ok(Some(found)) => {
                        let record = found.record();
                        assert_eq!(record.offset(), asked);
                        let value = record.value().expect("every record has a value");
                        let id = u64::from_le_bytes(value[..8].try_into().unwrap());
                        assert_eq!(record.timestamp(), id as i64);
                        assert_eq!(value, &value_of(id)[..], "value bytes of record {id}");
                        local.insert(check_batch(found.batch()));
                        counts.batches_checked.fetch_add(1, Ordering::Relaxed);
                    }
                    // Only at the log end: the writer leaves no gaps.
                    Ok(None) => assert!(asked >= start, "no record at {asked}"),
                    Err(e) => {
                        counts.out_of_range.fetch_add(1, Ordering::Relaxed);
                        check_out_of_range(e, asked);
                    }
                }
            }
            1..=5 => {
                let max_bytes = 1 + rng.below(6000) as usize;
                let bounded = rng.below(3) == 0;
                let max_offset = if bounded {
                    asked + rng.below(50) as i64
                } else {
                    i64::MAX
                };
                counts.reads.fetch_add(1, Ordering::Relaxed);
                match log.read_up_to(asked, max_bytes, max_offset) {
                    Ok(r) => {
                        assert!(r.log_start_offset <= asked && asked <= r.log_end_offset);
                        let mut expect_base = None;
                        let mut total = 0;
                        for b in &r.batches {
                            if let Some(e) = expect_base {
                                assert_eq!(b.base_offset(), e, "batches follow each other");
                            } else {
                                assert!(b.base_offset() <= asked.max(b.base_offset()));
                                assert!(b.last_offset() >= asked, "first batch holds the offset");
                            }
                            assert!(b.base_offset() < max_offset);
                            expect_base = Some(b.next_offset());
                            total += b.size();
                            local.insert(check_batch(b));
                            counts.batches_checked.fetch_add(1, Ordering::Relaxed);
                        }
                        assert_eq!(r.bytes.len(), total, "bytes are the batches end to end");
                        if let Some(n) = expect_base {
                            assert_eq!(r.next_offset, n);
                        }
                    }
                    Err(e) => {
                        counts.out_of_range.fetch_add(1, Ordering::Relaxed);
                        check_out_of_range(e, asked);
                    }
                }
            }
            6..=8 => {
                counts.lookups.fetch_add(1, Ordering::Relaxed);
                let ts = rng.below(1 + seen_max_id(seen, &local)) as i64;
                let found = log.offset_for_timestamp(ts).unwrap();
                if let Some(o) = found {
                    // The record there (if still there) is stamped at or after the time.
                    if let Ok(r) = log.read(o, 1) {
                        if let Some(b) = r.batches.first() {
                            let rec = b
                                .records()
                                .unwrap()
                                .map(|r| r.unwrap())
                                .find(|r| r.offset == o)
                                .expect("the batch holds the offset");
                            assert!(
                                rec.timestamp >= ts,
                                "lookup({ts}) = {o} stamped {}",
                                rec.timestamp
                            );
                        }
                    }
                }
            }
            _ => {
                counts.infos.fetch_add(1, Ordering::Relaxed);
                let infos = log.segment_infos().unwrap();
                for pair in infos.windows(2) {
                    assert!(pair[0].base_offset < pair[1].base_offset);
                }
            }
        }
    }
    seen.lock().unwrap().extend(local);
}

fn seen_max_id(_seen: &Mutex<HashSet<BatchId>>, local: &HashSet<BatchId>) -> u64 {
    local
        .iter()
        .map(|&(_, id, n)| id + n as u64)
        .max()
        .unwrap_or(1000)
}

fn writer(log: &Log, seed: u64, stop: &AtomicBool, counts: &Counts) -> HashSet<BatchId> {
    let mut rng = Rng(seed);
    let mut written = HashSet::new();
    let mut next_id = 1u64;
    while !stop.load(Ordering::Relaxed) {
        let n = 1 + rng.below(8) as usize;
        let records: Vec<SimpleRecord> = (0..n as u64).map(|i| record_of(next_id + i)).collect();
        let info = match rng.below(20) {
            0 => {
                log.roll_now().unwrap();
                counts.rolls.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            1 => {
                // A flush off the maintenance thread, so that it can race a truncation.
                log.flush().unwrap();
                counts.flushes.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            2..=10 => log.append(&records).unwrap(),
            _ => {
                let mut b = BatchBuilder::new();
                for r in &records {
                    b.push(r).unwrap();
                }
                log.append_batch(&b.build().unwrap()).unwrap()
            }
        };
        counts.appends.fetch_add(1, Ordering::Relaxed);
        written.insert((info.first_offset, next_id, n));
        next_id += n as u64;
    }
    written
}

fn maintenance(log: &Log, seed: u64, stop: &AtomicBool, counts: &Counts, epoch: Instant) {
    let mut rng = Rng(seed);
    while !stop.load(Ordering::Relaxed) {
        let now = epoch.elapsed().as_millis() as i64;
        let start = log.log_start_offset();
        let end = log.log_end_offset();
        match rng.below(10) {
            0 | 1 => {
                log.apply_retention(now).unwrap();
                counts.retentions.fetch_add(1, Ordering::Relaxed);
            }
            2 => {
                let to = start + rng.below((end - start) as u64 / 4 + 1) as i64;
                let got = log.delete_records(to).unwrap();
                assert!(got >= to.max(start));
                counts.deletes.fetch_add(1, Ordering::Relaxed);
            }
            3 | 4 => {
                // Cut a short tail, as a follower does.
                let to = (end - rng.below(40) as i64).max(start);
                let got = log.truncate_to(to).unwrap();
                assert!(got >= start, "truncation went below the start");
                counts.truncations.fetch_add(1, Ordering::Relaxed);
            }
            5..=7 => {
                log.flush().unwrap();
                counts.flushes.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                log.tick(now).unwrap();
                counts.ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Only this thread truncates or moves the start; the writer only raises the end. So the
        // start read first and the end read second bound a moment, and so do the recovery point
        // read first and the end read second.
        let start = log.log_start_offset();
        let rp = log.recovery_point();
        let end = log.log_end_offset();
        assert!(start <= end, "log start {start} past the end {end}");
        assert!(rp <= end, "recovery point {rp} past the end {end}");
        thread::sleep(Duration::from_micros(200));
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn readers_writer_and_maintenance_at_once_see_only_written_bytes() {
    let secs: u64 = std::env::var("PARTLOG_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let seed: u64 = std::env::var("PARTLOG_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15);
    let dir = common::tmp_in_memory("partlog-stress");
    let epoch = Instant::now();
    let log = Arc::new(Log::open(dir.path(), config()).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let seen = Arc::new(Mutex::new(HashSet::new()));

    let mut readers = Vec::new();
    for i in 0..4u64 {
        let (log, stop, counts, seen) = (log.clone(), stop.clone(), counts.clone(), seen.clone());
        readers.push(thread::spawn(move || {
            reader(
                &log,
                seed ^ (i + 1).wrapping_mul(0x1234_5678_9ABC),
                &stop,
                &counts,
                &seen,
            )
        }));
    }
    let writer = {
        let (log, stop, counts) = (log.clone(), stop.clone(), counts.clone());
        thread::spawn(move || writer(&log, seed | 1, &stop, &counts))
    };
    let maintenance = {
        let (log, stop, counts) = (log.clone(), stop.clone(), counts.clone());
        thread::spawn(move || maintenance(&log, seed.rotate_left(17) | 1, &stop, &counts, epoch))
    };
    thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    maintenance.join().expect("maintenance");
    for r in readers {
        r.join().expect("reader");
    }
    let seen = seen.lock().unwrap();
    let unknown: Vec<&BatchId> = seen
        .iter()
        .filter(|b| !written.contains(b))
        .take(5)
        .collect();
    assert!(
        unknown.is_empty(),
        "batches read that were never written there: {unknown:?}"
    );

    let c = &counts;
    let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
    eprintln!(
        "stress ({secs} s, seed {seed}): {} appends, {} rolls; {} reads and {} read_record ({} batches checked, {} out of range), \
         {} time lookups, {} segment_infos; {} retentions, {} delete_records, {} truncations, {} flushes, {} ticks; \
         {} distinct batches seen",
        n(&c.appends), n(&c.rolls), n(&c.reads), n(&c.record_reads), n(&c.batches_checked), n(&c.out_of_range),
        n(&c.lookups), n(&c.infos), n(&c.retentions), n(&c.deletes), n(&c.truncations),
        n(&c.flushes), n(&c.ticks), seen.len()
    );
    assert!(n(&c.appends) > 100 && n(&c.reads) > 100 && n(&c.truncations) > 10);
    assert!(n(&c.record_reads) > 10);
    Arc::try_unwrap(log)
        .expect("threads are done")
        .close()
        .unwrap();
}

const TS: i64 = 1_600_000_000_000;

/// Readers and a writer alone (no maintenance): every read returns whole, valid batches with the
/// right records, and nothing past what was appended.

#[test]
#[cfg_attr(miri, ignore)]
fn four_readers_and_a_writer_see_only_whole_correct_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = partlog::Config {
        segment_bytes: 64 * 1024,
        max_open_segments: 4,
        ..common::small_config()
    };
    let log = Arc::new(Log::open(dir.path(), config).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let secs = std::env::var("PARTLOG_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);

    let first_reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let readers: Vec<_> = (0..4u64)
        .map(|seed| {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            let first_reads = Arc::clone(&first_reads);
            std::thread::spawn(move || {
                let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut checked = 0u64;
                let mut first = true;
                while !stop.load(Ordering::Relaxed) {
                    let leo = log.log_end_offset();
                    if leo == 0 {
                        continue;
                    }
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Half the reads chase the tail, half land anywhere. The first read chases the
                    // tail of a log one record long (the writer waits for it), so the tail's start
                    // offset is clamped at zero on every run, not only on the runs where a reader
                    // happens to look before the third record.
                    let from = if first || rng % 2 == 0 {
                        (leo - 3).max(0)
                    } else {
                        (rng % leo as u64) as i64
                    };
                    let r = log.read(from, 2000).unwrap();
                    assert!(r.log_end_offset >= leo);
                    let mut expect = None;
                    for b in &r.batches {
                        assert!(
                            b.last_offset() < r.log_end_offset,
                            "read past the log end offset"
                        );
                        for rec in b.records().unwrap() {
                            let rec = rec.unwrap();
                            if let Some(e) = expect {
                                assert_eq!(rec.offset, e, "offsets run without gaps");
                            }
                            expect = Some(rec.offset + 1);
                            assert_eq!(
                                rec.value.as_deref(),
                                Some(&common::value_of(rec.offset)[..])
                            );
                            assert_eq!(rec.timestamp, TS + rec.offset);
                            checked += 1;
                        }
                    }
                    assert!(r.batches.first().is_none_or(|b| b.base_offset() <= from));
                    if first {
                        first = false;
                        first_reads.fetch_add(1, Ordering::SeqCst);
                    }
                }
                checked
            })
        })
        .collect();

    // One record, then wait until every reader has read the log at that length.
    common::fill(&log, 1, 1, TS);
    while first_reads.load(Ordering::SeqCst) < 4 && !readers.iter().any(|h| h.is_finished()) {
        std::thread::yield_now();
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut batches = 1u64;
    while Instant::now() < deadline {
        common::fill(&log, 1, 1 + (batches % 7) as usize, TS);
        batches += 1;
        if batches.is_multiple_of(500) {
            log.flush().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let checked: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(checked > 1000, "readers checked only {checked} records");
    assert!(log.segment_count() > 2);
    common::assert_filled(&common::read_all(&log), 0, log.log_end_offset(), TS);
    eprintln!("{batches} batches appended, {checked} records checked by readers");
}
