//! Power-loss harness (issue 9). A seeded workload runs on a log whose directory is recorded by
//! the durability seam (`crate::durability`); at random crash points, inside operations (at
//! every sync, rename, unlink and directory sync) and between them, it builds the disk images a
//! power cut could leave there, then opens each image and checks:
//! - the log opens; `recovery_point <= log_end` and `log_start <= log_end` hold;
//! - no flushed record is lost: every batch that lay below the recovery point (or a completed
//!   flush) before the crash, and at or above the image's log start, is there with its bytes;
//! - no corrupt or invented byte is returned: every batch read is one the workload wrote at that
//!   offset, record ids, timestamps and value bytes checked;
//! - the log start is one the log had (never below a checkpointed one, never above the highest);
//! - the recovered log takes new appends at its log end, and keeps them across a clean reopen;
//! - the last five idempotent batches of the producer of the newest one in the image, retried,
//!   are answered as duplicates with their offsets and not appended again (issue 20: the
//!   producer state, rebuilt from `.snapshot` files and the log after them, matches the image;
//!   the batches a snapshot dropped are looked up in the log);
//! - transactions (issue 20): a `read_committed` walk of the image shows no record of an aborted
//!   or open transaction (as the image's markers tell them) and every committed record below the
//!   last stable offset: the `.txnindex` entries and the open transactions, rebuilt from the
//!   snapshots and the log after them, match the image.
//!
//! `PARTLOG_POWER_SEED=<seed>` replays one seed (a failure prints it).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::batch::{BatchBuilder, EndTxnMarker, RecordBatch, SimpleRecord, TxnResult};
use crate::clock::{Clock, ManualClock};
use crate::config::Config;
use crate::durability::trace::{self, Rng};
use crate::error::{Error, ProducerError};
use crate::Log;

/// A batch the workload wrote: (base offset, first record id, record count).
type BatchId = (i64, u64, usize);

/// What the workload wrote: every batch, and the idempotent ones as built (for retries).
#[derive(Default)]
struct Written {
    ids: HashSet<BatchId>,
    idempotent: HashMap<BatchId, RecordBatch>,
}

/// What an image taken now must show.
#[derive(Debug, Clone, Default)]
struct Expect {
    /// The log's batches, oldest first.
    batches: Vec<BatchId>,
    /// Every batch below this offset was made durable.
    durable_upto: i64,
    /// The image's log start is at least this (checkpointed)...
    start_floor: i64,
    /// ...and at most this.
    start_ceiling: i64,
}

struct Image {
    dir: std::path::PathBuf,
    expect: Expect,
    described: String,
    at_event: u64,
}

/// State the crash-point callback shares with the workload.
struct Shared {
    rng: Rng,
    expect: Expect,
    images: Vec<Image>,
    budget: usize,
    one_in: u64,
    root: std::path::PathBuf,
    events: u64,
}

fn value_of(id: u64) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend((0..id % 61).map(|i| (id.wrapping_mul(31).wrapping_add(i)) as u8));
    v
}

/// A value of 5 KiB for record `id`, every byte derived from it.
fn big_value_of(id: u64) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend((0..5 * 1024u64).map(|i| (id ^ i.wrapping_mul(7)) as u8));
    v
}

fn config() -> Config {
    Config {
        segment_bytes: 8192,
        segment_index_bytes: 256,
        index_interval_bytes: 128,
        max_open_segments: 2,
        retention_bytes: 40 * 1024,
        retention_ms: -1,
        file_delete_delay_ms: 0,
        // Record timestamps are record ids (1970): producers must not expire at open.
        producer_id_expiration_ms: i64::MAX,
        ..Config::default()
    }
}

/// Checks one batch's records against the ids they carry; returns its id triple.
fn check_batch(batch: &RecordBatch) -> Result<BatchId, String> {
    let mut first = None;
    let mut count = 0;
    for (i, record) in batch.records().map_err(|e| e.to_string())?.enumerate() {
        let record = record.map_err(|e| e.to_string())?;
        let value = record.value.ok_or("a record without a value")?;
        let id = u64::from_le_bytes(
            value
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or("value too short")?,
        );
        let first_id = *first.get_or_insert(id);
        if id != first_id + i as u64
            || record.offset != batch.base_offset() + i as i64
            || record.timestamp != id as i64
            || (value[..] != value_of(id)[..] && value[..] != big_value_of(id)[..])
        {
            return Err(format!(
                "record {i} of batch {} is not what was written",
                batch.base_offset()
            ));
        }
        count += 1;
    }
    Ok((batch.base_offset(), first.ok_or("empty batch")?, count))
}

/// Opens the image and checks it (see the module docs).
fn check_image(image: &Image, written: &Written) -> Result<(), String> {
    let e = &image.expect;
    let log = Log::open(&image.dir, config()).map_err(|err| format!("open failed: {err}"))?;
    let (start, end, rp) = (
        log.log_start_offset(),
        log.log_end_offset(),
        log.recovery_point(),
    );
    if rp > end || start > end {
        return Err(format!(
            "start {start}, recovery point {rp}, end {end} out of order"
        ));
    }
    if start < e.start_floor || start > e.start_ceiling {
        return Err(format!(
            "log start {start} outside [{}, {}]",
            e.start_floor, e.start_ceiling
        ));
    }
    let mut found: HashSet<BatchId> = HashSet::new();
    let mut next = start;
    while next < end {
        let r = log
            .read(next, 1 << 20)
            .map_err(|err| format!("read({next}) of [{start}, {end}): {err}"))?;
        if r.batches.is_empty() {
            return Err(format!("read({next}) of [{start}, {end}) returned nothing"));
        }
        for b in &r.batches {
            if b.header().is_control() {
                continue;
            }
            let id = check_batch(b)?;
            if !written.ids.contains(&id) {
                return Err(format!("batch {id:?} was never written at that offset"));
            }
            found.insert(id);
        }
        next = r.next_offset;
    }
    for b in &e.batches {
        let last = b.0 + b.2 as i64 - 1;
        if last >= start && b.0 + (b.2 as i64) <= e.durable_upto && !found.contains(b) {
            return Err(format!(
                "flushed batch {b:?} (durable below {}) lost; log is [{start}, {end})",
                e.durable_upto
            ));
        }
    }
    // Retries are never appended twice: the producer of the newest idempotent batch in the
    // image retries each of its batches there, oldest first; each is answered as a duplicate
    // with its offsets or refused (older than the five the state keeps: out of order), and its
    // last five are always duplicates (also those a snapshot dropped: `Log::append_one` looks
    // them up).
    let newest = found
        .iter()
        .filter(|id| written.idempotent.contains_key(id))
        .max_by_key(|id| id.0);
    if let Some(newest) = newest {
        let pid = written.idempotent[newest].header().producer_id;
        let mut mine: Vec<&BatchId> = found
            .iter()
            .filter(|id| {
                written
                    .idempotent
                    .get(id)
                    .is_some_and(|b| b.header().producer_id == pid)
            })
            .collect();
        mine.sort_by_key(|id| id.0);
        let last_five = mine.len().saturating_sub(5);
        for (i, id) in mine.into_iter().enumerate() {
            match log.append_batch(&written.idempotent[id]) {
                Ok(info) if info.duplicate && info.first_offset == id.0 => {}
                Err(crate::Error::Producer(_)) if i < last_five => {}
                other => {
                    return Err(format!(
                        "retry of idempotent batch {id:?} (newest {newest:?}): {other:?}"
                    ))
                }
            }
        }
    }
    check_transactions(&log)?;
    // The recovered log goes on at its end, across a clean reopen.
    let record = SimpleRecord::new(0, None::<&[u8]>, Some(&b"after"[..]));
    let info = log
        .append(std::slice::from_ref(&record))
        .map_err(|err| format!("append after recovery: {err}"))?;
    if info.first_offset != end {
        return Err(format!(
            "append after recovery got {}, not {end}",
            info.first_offset
        ));
    }
    log.close().map_err(|err| format!("close: {err}"))?;
    let log = Log::open(&image.dir, config()).map_err(|err| format!("reopen: {err}"))?;
    if log.log_end_offset() != end + 1 || log.log_start_offset() != start {
        return Err("a clean reopen changed the offsets".into());
    }
    Ok(())
}

/// The transactions of the image, as its batches and markers tell them, against what a
/// `read_committed` reader sees (see the module docs).
fn check_transactions(log: &Log) -> Result<(), String> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    // Record offsets: visible to read_committed, or hidden (aborted or still open).
    let mut committed: HashSet<i64> = HashSet::new();
    let mut hidden: HashSet<i64> = HashSet::new();
    let mut pending: HashMap<i64, Vec<i64>> = HashMap::new();
    let mut next = start;
    while next < end {
        let r = log.read(next, 1 << 20).map_err(|e| e.to_string())?;
        for b in &r.batches {
            let h = b.header();
            let offsets = (h.base_offset..=h.last_offset()).filter(|&o| o >= start);
            if h.is_control() {
                let marker = b.end_txn_marker().map_err(|e| e.to_string())?;
                let txn = pending.remove(&h.producer_id).unwrap_or_default();
                match marker.map(|m| m.result) {
                    Some(TxnResult::Commit) => committed.extend(txn),
                    _ => hidden.extend(txn),
                }
            } else if h.is_transactional() {
                pending.entry(h.producer_id).or_default().extend(offsets);
            } else {
                committed.extend(offsets);
            }
        }
        next = r.next_offset;
    }
    hidden.extend(pending.into_values().flatten());
    let lso = log.last_stable_offset();
    let mut seen: HashSet<i64> = HashSet::new();
    let mut next = start;
    while next < lso {
        let r = log
            .read_with_isolation(next, 700, i64::MAX, super::IsolationLevel::ReadCommitted)
            .map_err(|e| e.to_string())?;
        if r.is_empty() {
            break;
        }
        let aborted = r.aborted_transactions.clone().unwrap_or_default();
        let mut filter = super::ReadCommittedFilter::new(&aborted);
        for b in &r.batches {
            if filter.keep(b).map_err(|e| e.to_string())? {
                let h = b.header();
                seen.extend((h.base_offset..=h.last_offset()).filter(|&o| o >= next));
            }
        }
        next = r.next_offset;
    }
    if let Some(o) = seen.iter().find(|o| hidden.contains(o)) {
        return Err(format!(
            "read_committed shows offset {o} of an aborted or open transaction"
        ));
    }
    if let Some(o) = committed.iter().find(|&&o| o < lso && !seen.contains(&o)) {
        return Err(format!(
            "read_committed misses committed offset {o} below the stable offset {lso}"
        ));
    }
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one seeded workload, building up to `budget` images (about one crash point in
/// `one_in`); returns the images with what each must show, the batches written, and the events.
fn run_workload(seed: u64, root: &Path, budget: usize, one_in: u64) -> (Vec<Image>, Written, u64) {
    let dir = root.join("log");
    std::fs::create_dir_all(&dir).unwrap();
    let shared = Arc::new(Mutex::new(Shared {
        rng: Rng(seed),
        expect: Expect::default(),
        images: Vec::new(),
        budget,
        one_in,
        root: root.to_owned(),
        events: 0,
    }));
    let on_point = {
        let shared = Arc::clone(&shared);
        Box::new(move |r: &trace::Recorder| {
            let mut guard = lock(&shared);
            let s = &mut *guard;
            s.events += 1;
            if s.images.len() >= s.budget || s.rng.below(s.one_in) != 0 {
                return;
            }
            let out = s.root.join(format!("image-{}", s.images.len()));
            std::fs::create_dir_all(&out).unwrap();
            let described = r.image(&mut s.rng, &out);
            let (expect, at_event) = (s.expect.clone(), s.events);
            s.images.push(Image {
                dir: out,
                expect,
                described,
                at_event,
            });
        })
    };
    let recording = trace::register(&dir, on_point);
    let clock = Arc::new(ManualClock::new(1_000));
    let open = || Log::open_with_clock(&dir, config(), clock.clone()).unwrap();
    let mut log = Some(open());
    let mut rng = Rng(seed ^ 0x5EED);
    let mut written = Written::default();
    let mut next_id = 1u64;
    // The idempotent producer of `append_batch`: a new id whenever a truncation may have cut
    // its sequence (its next batch would be out of order).
    let (mut producer_id, mut next_seq) = (1i64, 0i32);
    // The transactional producer (ids from 1000): its sequence, and whether a transaction is
    // open.
    let (mut txn_id, mut txn_seq, mut txn_open) = (1_000i64, 0i32, false);
    // The end of the transactional producer's last data batch.
    let mut txn_data_end = 0i64;
    let set = |f: &dyn Fn(&mut Expect)| f(&mut lock(&shared).expect);

    let verbose = std::env::var_os("PARTLOG_POWER_VERBOSE").is_some();
    for step in 0..40 {
        let l = log.as_ref().unwrap();
        let (start, end) = (l.log_start_offset(), l.log_end_offset());
        let op = rng.below(16);
        if verbose {
            let s = lock(&shared);
            eprintln!(
                "step {step}: op {op}, log [{start}, {end}), {} crash points, {} images",
                s.events,
                s.images.len()
            );
        }
        match op {
            0..=6 if txn_open && rng.below(4) == 0 => {
                // The transaction ends (the marker's offset holds no workload record).
                let result = if rng.coin() {
                    TxnResult::Commit
                } else {
                    TxnResult::Abort
                };
                l.append_marker(txn_id, 0, EndTxnMarker::new(result, 0), 1_000)
                    .unwrap();
                txn_open = false;
            }
            0..=6 => {
                // Mostly small batches; now and then one record of 5 KiB, which takes the
                // write-through-the-file path and rolls the segment.
                let big = rng.below(8) == 0;
                let n = if big { 1 } else { 1 + rng.below(8) as usize };
                let id = (end, next_id, n);
                written.ids.insert(id);
                let records: Vec<SimpleRecord> = (next_id..next_id + n as u64)
                    .map(|i| {
                        let value = if big { big_value_of(i) } else { value_of(i) };
                        SimpleRecord::new(i as i64, Some(format!("k{i}")), Some(value))
                    })
                    .collect();
                let info = if rng.below(4) == 0 {
                    let txn_batch = |id: i64, seq: i32| {
                        let mut b = BatchBuilder::new().producer(id, 0, seq).transactional(true);
                        for r in &records {
                            b.push(r).unwrap();
                        }
                        b.build().unwrap()
                    };
                    let info = match l.append_batch(&txn_batch(txn_id, txn_seq)) {
                        // Kafka's rule, not a loss: after a reopen the state is rebuilt from the
                        // log start, and if every data batch of this producer lies below it
                        // while one of its markers does not, the marker alone makes the
                        // producer known with no sequence (Kafka's `checkSequence` then refuses
                        // any sequence but 0; the producer bumps its epoch, KIP-360). Seed 1106 of
                        // the long run. Go on as a new producer.
                        Err(Error::Producer(ProducerError::OutOfOrderSequence { .. }))
                            if !txn_open && txn_data_end <= start =>
                        {
                            (txn_id, txn_seq) = (txn_id + 1, 0);
                            l.append_batch(&txn_batch(txn_id, txn_seq)).unwrap()
                        }
                        r => r.unwrap(),
                    };
                    txn_seq += n as i32;
                    txn_open = true;
                    txn_data_end = end + n as i64;
                    info
                } else if rng.coin() {
                    l.append(&records).unwrap()
                } else {
                    let mut b = BatchBuilder::new().producer(producer_id, 0, next_seq);
                    for r in &records {
                        b.push(r).unwrap();
                    }
                    let batch = b.build().unwrap();
                    next_seq += n as i32;
                    let info = l.append_batch(&batch).unwrap();
                    assert!(!info.duplicate);
                    written.idempotent.insert(id, batch);
                    info
                };
                assert_eq!(info.first_offset, end);
                next_id += n as u64;
                set(&|e| e.batches.push(id));
            }
            7 | 8 => {
                l.flush().unwrap();
            }
            9 => l.roll_now().unwrap(),
            10 => {
                let to = (end - rng.below(12) as i64).max(start);
                let batches = lock(&shared).expect.batches.clone();
                let holder = batches.iter().find(|b| b.0 <= to && to < b.0 + b.2 as i64);
                let cut = holder.map_or(to, |b| b.0);
                let fully = cut < start;
                let new_end = if fully { to } else { cut };
                set(&|e| {
                    e.durable_upto = e.durable_upto.min(new_end);
                    if fully {
                        e.start_ceiling = e.start_ceiling.max(to);
                    }
                });
                assert_eq!(l.truncate_to(to).unwrap(), new_end);
                (producer_id, next_seq) = (producer_id + 1, 0);
                (txn_id, txn_seq, txn_open) = (txn_id + 1, 0, false);
                set(&|e| {
                    e.batches.retain(|b| b.0 < new_end);
                    if fully {
                        e.batches.clear();
                        e.start_floor = to;
                    }
                });
            }
            11 => {
                let to = start + rng.below((end - start) as u64 + 1) as i64;
                set(&|e| e.start_ceiling = e.start_ceiling.max(to));
                let got = l.delete_records(to).unwrap();
                set(&|e| e.start_floor = e.start_floor.max(got));
            }
            12 => {
                set(&|e| e.start_ceiling = e.start_ceiling.max(end));
                l.apply_retention(clock.now_ms()).unwrap();
                let start = l.log_start_offset();
                set(&|e| {
                    e.start_floor = e.start_floor.max(start);
                    e.start_ceiling = start.max(e.start_floor);
                });
            }
            13 => {
                log.take().unwrap().close().unwrap();
                log = Some(open());
            }
            14 => {
                // A killed process: the page cache keeps what was written.
                log.take().unwrap().abandon();
                log = Some(open());
            }
            15 if rng.below(4) == 0 => {
                // A follower whose log end fell below its leader's log start.
                let to = end + rng.below(20) as i64;
                set(&|e| {
                    e.durable_upto = e.durable_upto.min(start);
                    e.start_ceiling = e.start_ceiling.max(to);
                });
                assert_eq!(l.truncate_fully_and_start_at(to).unwrap(), to);
                (producer_id, next_seq) = (producer_id + 1, 0);
                (txn_id, txn_seq, txn_open) = (txn_id + 1, 0, false);
                set(&|e| {
                    e.batches.clear();
                    e.start_floor = to;
                });
            }
            _ => {
                clock.advance(1_000);
                set(&|e| e.start_ceiling = e.start_ceiling.max(end));
                l.tick(clock.now_ms()).unwrap();
                let start = l.log_start_offset();
                set(&|e| {
                    e.start_floor = e.start_floor.max(start);
                    e.start_ceiling = start.max(e.start_floor);
                });
            }
        }
        let l = log.as_ref().unwrap();
        let (rp, end) = (l.recovery_point(), l.log_end_offset());
        assert!(rp <= end, "recovery point {rp} past the end {end}");
        set(&|e| {
            e.durable_upto = e.durable_upto.max(rp);
            e.start_ceiling = e.start_ceiling.max(e.start_floor);
        });
        recording.crash_point();
    }
    let events = recording.events();
    drop(recording);
    drop(log);
    let images = std::mem::take(&mut lock(&shared).images);
    (images, written, events)
}

/// Runs `seeds` seeds from `first`, about `per_seed` images each; panics with the seed of the
/// first failure. Returns (images checked, durability events recorded).
fn run(first: u64, seeds: u64, per_seed: usize) -> (usize, u64) {
    let mut checked = 0;
    let mut events = 0;
    for seed in first..first + seeds {
        let root = tempfile::tempdir().unwrap();
        let (images, written, n) = run_workload(seed, root.path(), per_seed, 6);
        events += n;
        for (i, image) in images.iter().enumerate() {
            if let Err(why) = check_image(image, &written) {
                panic!(
                    "power-loss image {i} of seed {seed} (crash point {}; {}): {why}\n\
                     replay with PARTLOG_POWER_SEED={seed}",
                    image.at_event, image.described
                );
            }
        }
        checked += images.len();
    }
    (checked, events)
}

fn seed_from_env() -> Option<u64> {
    std::env::var("PARTLOG_POWER_SEED").ok()?.parse().ok()
}

#[test]
#[cfg_attr(miri, ignore)]
fn power_cut_images_lose_no_flushed_record() {
    if let Some(seed) = seed_from_env() {
        let (checked, events) = run(seed, 1, 64);
        eprintln!("power loss, seed {seed}: {checked} images checked, {events} crash points");
        return;
    }
    let (checked, events) = run(0, 25, 5);
    eprintln!("power loss: {checked} images checked, {events} crash points");
    assert!(checked >= 100, "only {checked} images");
}

/// Seeds on which the harness found a bug:
/// - 1925: a crash during `truncate_fully_and_start_at` kept a newer segment whose older
///   neighbour's unlink had reached the disk (unlinks are unordered without a directory sync
///   between them); the log reopened with a start offset it never had. Fixed by syncing the
///   directory after each segment a truncation removes.
/// - 1106: the workload's transactional producer was refused (OUT_OF_ORDER_SEQUENCE) after a
///   reopen whose log start had passed all its data but not its last marker: Kafka's rule, so
///   the workload now goes on as a new producer there.
/// - 1436: an ABORT marker's new `.txnindex` was fsynced but its name was not: a power cut kept
///   the snapshot written after it (which trusts every entry below its offset) and lost the
///   file, so `read_committed` served the aborted record. Fixed by syncing the directory when a
///   `.txnindex` is created.
/// - 1709: `close` synced the directory once, after creating the clean-shutdown marker: a power
///   cut could keep the marker and lose the new producer snapshot's name, and the clean open
///   started with no producer state (a retried idempotent batch was appended twice). Fixed by
///   syncing the directory before the marker is created.
#[test]
#[cfg_attr(miri, ignore)]
fn power_cut_regression_seeds() {
    // 1925 with every crash point imaged; the others as the long run found them (its budget of
    // 5 images and one crash point in 6: the same choices, so the same images).
    for (seed, budget, one_in) in [
        (1925, usize::MAX, 1),
        (1106, 5, 6),
        (1436, 5, 6),
        (1709, 5, 6),
    ] {
        let root = tempfile::tempdir().unwrap();
        let (images, written, _) = run_workload(seed, root.path(), budget, one_in);
        for (i, image) in images.iter().enumerate() {
            if let Err(why) = check_image(image, &written) {
                panic!("seed {seed}, image {i} ({}): {why}", image.described);
            }
        }
    }
}

#[test]
#[ignore = "10,000 images, several minutes: cargo test --release --lib power_loss -- --ignored"]
fn power_cut_images_lose_no_flushed_record_long() {
    let (checked, events) = run(1_000, 2_000, 5);
    eprintln!("power loss: {checked} images checked, {events} crash points");
    assert!(checked >= 9_000, "only {checked} images");
}
