//! Torn and rotten files (issue 3, part 4): files cut at every byte of their last batches,
//! flipped bytes, damaged, swapped and missing index and checkpoint files, a clean-shutdown
//! marker that lies, and absurd length fields. Every case must end in a typed error or a correct
//! recovery: never a panic, a hang, a huge allocation, or a record that is not the one written.
//!
//! `tests/recovery.rs` covers the cut of the last batch of the last segment, one flipped byte,
//! and garbled/deleted indexes; this file extends each to windows of batches, every segment
//! position, and sampled bytes.
//!
//! Decisions documented here (what partlog must do):
//! - A torn or corrupt batch found by recovery (a segment after the recovery point, or the
//!   last segment) cuts the log there; later segments go (Kafka's rule). Flushed data before
//!   it stays.
//! - Damage below the recovery point is not looked for at open (that is what makes opening
//!   cheap); reads of a damaged batch report `Error::Corrupt` naming the file and the batch's
//!   position, and never return its bytes.
//! - The partition leader epoch (bytes 12..16) is outside the CRC by Kafka's design, so a
//!   flipped epoch cannot be detected; the records themselves still read back exactly.
//! - Offset gaps are legal (issue 18), as in Kafka's logs; a batch starting below the end of
//!   the one before it is damage. A base offset rotted upwards (outside the CRC) leaves a gap
//!   followed by an overlap, which is called damage at the gapped batch; the last batch of a
//!   segment has no batch after it to tell, and a base offset rotted upwards there (below the
//!   next segment's base) reads as a gap, as in Kafka.
//! - A clean-shutdown marker is a promise about the indexes and the tail, not about the data:
//!   with the marker present, a torn last segment is still cut, and damage elsewhere is still
//!   reported on read.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use partlog::batch::{self, RecordBatch};
use partlog::{Config, Error, Log};

const TS: i64 = 1_700_000_000_000;

// ------------------------------------------------------------------------------------------
// Guards: no huge allocation, no hang.

/// Records the largest single allocation made by this test binary.
struct LargestAllocation;

static LARGEST: AtomicUsize = AtomicUsize::new(0);
/// No case here needs more than a few MiB in one piece.
const ALLOCATION_LIMIT: usize = 64 << 20;

// SAFETY: forwards every call to `System` unchanged; only records the requested sizes.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

fn assert_no_huge_allocation(what: &str) {
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < ALLOCATION_LIMIT,
        "{what}: an allocation of {largest} bytes"
    );
}

/// Runs `f` on its own thread; fails if it takes more than 10 s or allocates hugely.
fn guarded<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {}
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: hung for more than 10 s"),
    }
    let r = handle
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p));
    assert_no_huge_allocation(&what);
    r
}

// ------------------------------------------------------------------------------------------
// The log's files as written, read independently of the log.

#[derive(Debug, Clone, Copy)]
struct BatchAt {
    base: i64,
    next: i64,
    pos: usize,
    size: usize,
}

impl BatchAt {
    fn end(&self) -> usize {
        self.pos + self.size
    }
}

#[derive(Debug, Clone)]
struct SegFile {
    base: i64,
    path: PathBuf,
    bytes: Vec<u8>,
    batches: Vec<BatchAt>,
}

impl SegFile {
    fn name(&self) -> PathBuf {
        PathBuf::from(self.path.file_name().unwrap())
    }
    fn batch_bytes(&self, b: &BatchAt) -> &[u8] {
        &self.bytes[b.pos..b.end()]
    }
    /// The batch holding byte `pos`.
    fn batch_at_byte(&self, pos: usize) -> Option<BatchAt> {
        self.batches
            .iter()
            .copied()
            .find(|b| b.pos <= pos && pos < b.end())
    }
}

/// Every segment file of `dir` and its batches (up to the first bad or zero bytes).
fn layout(dir: &Path) -> Vec<SegFile> {
    log_files(dir)
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_str().unwrap();
            let base: i64 = name.trim_end_matches(".log").parse().unwrap();
            let bytes = fs::read(&path).unwrap();
            let batches = batch::batches(Bytes::from(bytes.clone()))
                .map_while(Result::ok)
                .map(|(pos, b)| BatchAt {
                    base: b.base_offset(),
                    next: b.next_offset(),
                    pos,
                    size: b.size(),
                })
                .collect();
            SegFile {
                base,
                path,
                bytes,
                batches,
            }
        })
        .collect()
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

/// A temporary directory, in memory where possible (see [`tmp_in_memory`]).
fn tmp() -> tempfile::TempDir {
    tmp_in_memory("partlog-torn-")
}

/// A fresh copy of `src` (a log directory) to damage.
fn copy_of(src: &Path) -> tempfile::TempDir {
    let dir = tmp();
    copy_dir(src, dir.path());
    dir
}

/// The answer `offset_for_timestamp` must give for a log filled by [`fill`] (timestamps
/// `TS + offset`) holding `[start, end)`.
fn time_answer(target: i64, start: i64, end: i64) -> Option<i64> {
    let o = (target - TS).max(start);
    (o < end).then_some(o)
}

/// The log holds exactly the records [`fill`] wrote at `[0, end)`, by reads and time lookups.
fn assert_holds(log: &Log, end: i64, what: &str) {
    assert_eq!(log.log_end_offset(), end, "{what}: log end offset");
    assert_filled(&read_all(log), 0, end, TS);
    for t in [
        TS - 5,
        TS,
        TS + end / 3,
        TS + end / 2,
        TS + end - 1,
        TS + end,
    ] {
        assert_eq!(
            log.offset_for_timestamp(t).unwrap(),
            time_answer(t, 0, end),
            "{what}: time lookup {}",
            t - TS
        );
    }
}

/// Appends go on at the end, survive a clean reopen, and the whole log still reads back.
fn assert_appends_continue(log: Log, dir: &Path, config: &Config, what: &str) {
    let end = log.log_end_offset();
    fill(&log, 2, 3, TS);
    assert_holds(&log, end + 6, what);
    log.close().unwrap();
    let log = Log::open(dir, config.clone()).unwrap();
    assert!(log.open_report().clean, "{what}");
    assert_holds(&log, end + 6, what);
}

/// What a read of one batch gave.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    /// Exactly the bytes written.
    Good,
    /// The bytes written except the partition leader epoch (outside the CRC).
    EpochChanged,
    Corrupt {
        path: PathBuf,
        position: u64,
    },
    OutOfRange,
    /// No batch (a read at the log end offset).
    Empty,
    /// Not the bytes written: the one outcome never allowed.
    Wrong(String),
}

/// Reads the batch `b` of `seg` (as written) at offset `from` and classifies the answer; any
/// other batch, or other bytes, fails the test.
fn read_batch(log: &Log, seg: &SegFile, b: &BatchAt, from: i64) -> Got {
    match log.read(from, 1) {
        Ok(r) => {
            let Some(got) = r.batches.first() else {
                return Got::Empty;
            };
            let got = got.as_bytes();
            let want = seg.batch_bytes(b);
            if got[..] == want[..] {
                return Got::Good;
            }
            let same_but_epoch =
                got.len() == want.len() && got[..12] == want[..12] && got[16..] == want[16..];
            if !same_but_epoch {
                return Got::Wrong(format!(
                    "read({from}) returned a batch at {} of {} bytes, written was the batch at {} \
                     of {} bytes ({})",
                    RecordBatch::parse_header_only(got.clone())
                        .map(|b| b.base_offset())
                        .unwrap_or(-1),
                    got.len(),
                    b.base,
                    want.len(),
                    seg.path.display()
                ));
            }
            Got::EpochChanged
        }
        Err(Error::Corrupt { path, position, .. }) => Got::Corrupt { path, position },
        Err(Error::OffsetOutOfRange { .. }) => Got::OutOfRange,
        Err(e) => panic!("read({from}): unexpected error {e:?}"),
    }
}

fn is_corrupt_in(got: &Got, file: &Path) -> bool {
    matches!(got, Got::Corrupt { path, .. } if path == file)
}

fn small() -> Config {
    small_config()
}

/// A log of several 4 KiB segments: flushed up to `flush_after` batches, then more appended
/// unflushed, then abandoned (a crash), with the recovery-point checkpoint at the flush. (A
/// roll syncs the segment it closes and may move the recovery point up to the next one; the
/// checkpoint is put back to the flush so that recovery must scan the segments after it, as
/// after a crash before those checkpoint writes were durable.) Returns the directory, its
/// layout and the flushed offset.
fn crashed_log(batches: usize, flush_after: usize) -> (tempfile::TempDir, Vec<SegFile>, i64) {
    let dir = tmp();
    let log = Log::open(dir.path(), small()).unwrap();
    fill(&log, flush_after, 3, TS);
    log.flush().unwrap();
    let flushed = log.log_end_offset();
    fill(&log, batches - flush_after, 3, TS);
    log.abandon();
    set_recovery_point(dir.path(), flushed);
    let segs = layout(dir.path());
    (dir, segs, flushed)
}

fn set_recovery_point(dir: &Path, offset: i64) {
    fs::write(dir.join(RECOVERY_POINT), format!("0\n1\n{offset}\n")).unwrap();
}

// ------------------------------------------------------------------------------------------
// Torn files.

/// Cuts the last segment at every byte of its last three batches, with the file ending at the
/// cut or zero-filled after it (the preallocated space), and reopens after a crash.
#[test]
#[cfg_attr(miri, ignore)]
fn last_segment_cut_at_every_byte_of_its_last_three_batches() {
    let (src, segs, flushed) = crashed_log(60, 10);
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let last = segs.last().unwrap();
    assert!(last.batches.len() >= 4);
    let window = &last.batches[last.batches.len() - 3..];
    let full_end = window[2].next;
    let preallocated = last.bytes.len() as u64;
    let mut cases = 0;
    for cut in window[0].pos..=window[2].end() {
        for zero_filled in [false, true] {
            let dir = copy_of(src.path());
            let path = dir.path().join(last.name());
            set_len(&path, cut as u64);
            if zero_filled {
                set_len(&path, preallocated);
            }
            let (want_end, reported) = match last.batch_at_byte(cut) {
                None => (full_end, None),
                Some(b) => {
                    let intact = zero_filled && last.bytes[cut..b.end()].iter().all(|&x| x == 0);
                    let fragment_is_data = last.bytes[b.pos..cut].iter().any(|&x| x != 0);
                    if intact {
                        (b.next, None)
                    } else {
                        (b.base, fragment_is_data.then_some(b.pos as u64))
                    }
                }
            };
            let what = format!("cut at {cut} (zero filled: {zero_filled})");
            let log = Log::open(dir.path(), small()).unwrap();
            let report = log.open_report().clone();
            assert!(!report.clean, "{what}");
            assert!(want_end >= flushed);
            assert_eq!(
                report.truncated.as_ref().map(|t| (t.0, t.1)),
                reported.map(|p| (last.base, p)),
                "{what}: {report:?}"
            );
            assert_eq!(report.segments_removed, 0, "{what}");
            assert_holds(&log, want_end, &what);
            assert_eq!(log.recovery_point(), want_end, "{what}");
            assert_appends_continue(log, dir.path(), &small(), &what);
            cases += 1;
        }
    }
    eprintln!("{cases} cuts of the last segment");
}

/// Cuts a segment that is neither the first nor the last, and lies after the recovery point,
/// at every byte of its last batch: recovery cuts the log there and removes later segments.
/// (Cuts that leave only zeros of the batch, including a cut exactly at its start, leave a
/// segment that ends early without a torn batch: see
/// `regression_unflushed_segment_that_lost_its_last_batch_leaves_a_hole`.)
#[test]
#[cfg_attr(miri, ignore)]
fn unflushed_middle_segment_cut_at_every_byte_of_its_last_batch() {
    let (src, segs, flushed) = crashed_log(100, 5);
    assert!(segs.len() >= 5, "{} segments", segs.len());
    assert!(
        flushed < segs[1].base,
        "segments 1.. lie after the recovery point"
    );
    let target = &segs[2];
    let b = *target.batches.last().unwrap();
    let mut cases = 0;
    for cut in b.pos..b.end() {
        if target.bytes[b.pos..cut].iter().all(|&x| x == 0) {
            continue; // no torn batch left: the hole case
        }
        for zero_filled in [false, true] {
            if zero_filled && target.bytes[cut..b.end()].iter().all(|&x| x == 0) {
                continue; // the batch is intact
            }
            let dir = copy_of(src.path());
            let path = dir.path().join(target.name());
            set_len(&path, cut as u64);
            if zero_filled {
                set_len(&path, target.bytes.len() as u64);
            }
            let what = format!("cut at {cut} (zero filled: {zero_filled})");
            let log = guarded(what.clone(), {
                let dir = dir.path().to_owned();
                move || Log::open(dir, small()).unwrap()
            });
            let report = log.open_report().clone();
            assert!(!report.clean);
            assert_eq!(
                report.truncated.as_ref().map(|t| (t.0, t.1)),
                Some((target.base, b.pos as u64)),
                "{what}: {report:?}"
            );
            assert_eq!(report.segments_removed, segs.len() - 3, "{what}");
            assert_eq!(
                log.segment_base_offsets(),
                segs[..3].iter().map(|s| s.base).collect::<Vec<_>>()
            );
            for later in &segs[3..] {
                assert!(!dir.path().join(later.name()).exists(), "{what}");
            }
            assert_holds(&log, b.base, &what);
            assert_appends_continue(log, dir.path(), &small(), &what);
            cases += 1;
        }
    }
    eprintln!("{cases} cuts of a middle segment");
}

/// A segment below the recovery point (flushed, so not scanned at open) cut at sampled bytes
/// of its last batch: whether the open is clean or not, reads of the torn batch report it;
/// everything else reads back exactly.
#[test]
#[cfg_attr(miri, ignore)]
fn flushed_middle_segment_cut_is_reported_on_read() {
    let (src, segs, _) = crashed_log(100, 100);
    let target = &segs[2];
    let b = *target.batches.last().unwrap();
    let mut cases = 0;
    for cut in (b.pos + 1..b.end()).step_by(5) {
        for clean in [false, true] {
            let dir = copy_of(src.path());
            if clean {
                fs::write(dir.path().join("clean-shutdown"), b"").unwrap();
            }
            set_len(&dir.path().join(target.name()), cut as u64);
            let what = format!("cut at {cut} (clean: {clean})");
            let log = Log::open(dir.path(), small()).unwrap();
            assert_eq!(
                log.log_end_offset(),
                segs.last().unwrap().batches.last().unwrap().next
            );
            for (si, seg) in segs.iter().enumerate() {
                for x in &seg.batches {
                    let got = read_batch(&log, seg, x, x.base);
                    let damaged = Got::Corrupt {
                        path: dir.path().join(target.name()),
                        position: b.pos as u64,
                    };
                    if si == 2 && x.base == b.base {
                        assert_eq!(got, damaged, "{what}");
                    } else {
                        assert_eq!(got, Got::Good, "{what}: batch at {}", x.base);
                    }
                }
            }
            fill(&log, 2, 3, TS);
            cases += 1;
        }
    }
    eprintln!("{cases} cuts of a flushed segment");
}

// ------------------------------------------------------------------------------------------
// Rotten bytes.

/// Flips every header byte and every 7th record byte of three flushed batches: one in the
/// first segment, one in a middle segment, one in the last (active) segment. Reads of that
/// batch report `Corrupt` with its file and position, never its bytes (except the partition
/// leader epoch, outside the CRC); batches before it read back exactly; batches after it read
/// back exactly or report damage in that file. Violations are collected by class (segment,
/// header field, open mode) and listed before the test fails.
#[test]
#[cfg_attr(miri, ignore)]
fn flipped_bytes_in_flushed_batches_are_reported_never_returned() {
    let src = tmp();
    let log = Log::open(src.path(), small()).unwrap();
    fill(&log, 70, 3, TS);
    log.close().unwrap();
    let segs = layout(src.path());
    let n = segs.len();
    assert!(n >= 3);
    let victims = [
        (0, segs[0].batches.len() / 2),
        (n / 2, 1),
        (n - 1, segs[n - 1].batches.len() - 2),
    ];
    let mut cases = 0;
    let mut violations: std::collections::BTreeMap<String, (usize, String)> = Default::default();
    for (si, bi) in victims {
        let seg = &segs[si];
        let b = seg.batches[bi];
        // Every bit of every header byte; one bit of every 7th record byte.
        let flips: Vec<(usize, u8)> = (0..61)
            .flat_map(|at| (0..8).map(move |bit| (at, 1u8 << bit)))
            .chain((61..b.size).step_by(7).map(|at| (at, 1u8 << (at % 8))))
            .collect();
        // Only the last segment is scanned at an unclean open.
        let modes: &[bool] = if si == n - 1 { &[true, false] } else { &[true] };
        for (at, mask) in flips {
            for &clean in modes {
                let dir = copy_of(src.path());
                if !clean {
                    // A crash after everything was flushed: the open scans only the last
                    // segment.
                    fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
                }
                let path = dir.path().join(seg.name());
                let mut bytes = seg.bytes.clone();
                bytes[b.pos + at] ^= mask;
                fs::write(&path, &bytes).unwrap();
                let what = format!(
                    "segment {si} batch {bi} (offset {}) byte {at} ^ {mask:#04x}, clean: {clean}",
                    b.base
                );
                let log = guarded(what.clone(), {
                    let dir = dir.path().to_owned();
                    move || Log::open(dir, small()).unwrap()
                });
                let role = if si == 0 {
                    "first"
                } else if si == n - 1 {
                    "last"
                } else {
                    "middle"
                };
                let class = format!("{role} segment, {}, clean: {clean}", field_of(at));
                for v in check_flip(&log, &segs, si, b, at, dir.path()) {
                    let e = violations
                        .entry(class.clone())
                        .or_insert((0, String::new()));
                    e.0 += 1;
                    if e.1.is_empty() {
                        e.1 = format!("{what}: {v}");
                    }
                }
                cases += 1;
            }
        }
    }
    eprintln!("{cases} flipped bytes");
    for (class, (count, example)) in &violations {
        eprintln!("VIOLATION x{count} [{class}] e.g. {example}");
    }
    assert!(
        violations.is_empty(),
        "{} classes of violations",
        violations.len()
    );
}

/// The header field holding byte `at` of a batch.
fn field_of(at: usize) -> &'static str {
    match at {
        0..=7 => "baseOffset",
        8..=11 => "batchLength",
        12..=15 => "partitionLeaderEpoch",
        16 => "magic",
        17..=20 => "crc",
        21..=22 => "attributes",
        23..=26 => "lastOffsetDelta",
        27..=34 => "baseTimestamp",
        35..=42 => "maxTimestamp",
        43..=50 => "producerId",
        51..=52 => "producerEpoch",
        53..=56 => "baseSequence",
        57..=60 => "recordCount",
        _ => "records",
    }
}

/// After flipping byte `at` of batch `b` of segment `si`: what went wrong, if anything.
fn check_flip(
    log: &Log,
    segs: &[SegFile],
    si: usize,
    b: BatchAt,
    at: usize,
    dir: &Path,
) -> Vec<String> {
    let mut out = Vec::new();
    let n = segs.len();
    let seg = &segs[si];
    let end = segs[n - 1].batches.last().unwrap().next;
    // Recovery may instead cut the last segment at the damaged batch.
    let cut_at_open = log.log_end_offset() != end;
    if cut_at_open {
        let t = log.open_report().truncated.clone();
        if si != n - 1 || log.log_end_offset() != b.base {
            out.push(format!(
                "cut at open to {} (damaged batch at {}): {t:?}",
                log.log_end_offset(),
                b.base
            ));
        }
    }
    let damaged = Got::Corrupt {
        path: dir.join(seg.name()),
        position: b.pos as u64,
    };
    for (sj, other) in segs.iter().enumerate() {
        // Reads in other segments cannot reach the damage (but reads in this one can reach
        // them): one batch of each is enough.
        let batches = if sj == si {
            &other.batches[..]
        } else {
            &other.batches[..1]
        };
        for x in batches {
            for from in [x.base, x.next - 1] {
                let got = read_batch(log, other, x, from);
                let ok = if cut_at_open && from >= log.log_end_offset() {
                    got == Got::OutOfRange || (got == Got::Empty && from == log.log_end_offset())
                } else if sj == si && x.base == b.base {
                    if (12..16).contains(&at) {
                        got == Got::EpochChanged
                    } else {
                        got == damaged
                    }
                } else if sj == si && x.base > b.base {
                    // Reached by walking over the damaged header, unless an index entry
                    // skips it: reporting damage is right too (a derailed walk may name
                    // where it derailed rather than the damaged batch).
                    got == Got::Good || is_corrupt_in(&got, &dir.join(seg.name()))
                } else {
                    got == Got::Good
                };
                if !ok {
                    let which = if sj != si {
                        "other segment"
                    } else if x.base < b.base {
                        "earlier batch"
                    } else if x.base == b.base {
                        "damaged batch"
                    } else {
                        "later batch"
                    };
                    out.push(format!("{which}: read({from}) gave {got:?}"));
                }
            }
        }
    }
    out
}

// ------------------------------------------------------------------------------------------
// Index files: swapped, cut, zeroed, deleted.

/// A log whose segments have different batch layouts (so one segment's index is wrong for
/// another), closed cleanly; with every read and time lookup answered before any damage.
struct Reference {
    dir: tempfile::TempDir,
    config: Config,
    end: i64,
    reads: Vec<(i64, Vec<u8>)>,
    times: Vec<(i64, Option<i64>)>,
}

fn reference_log() -> Reference {
    let dir = tmp();
    let config = Config {
        segment_bytes: 8192,
        index_interval_bytes: 128,
        ..small()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    for (batches, per_batch) in [(12, 2), (6, 5), (25, 1), (9, 3), (7, 4)] {
        fill(&log, batches, per_batch, TS);
        log.roll_now().unwrap();
    }
    fill(&log, 8, 2, TS);
    let end = log.log_end_offset();
    // The reference is what the intact log answers: first check it against what was written.
    assert_holds(&log, end, "reference log");
    let reads = (0..end)
        .map(|o| (o, log.read(o, 700).unwrap().bytes.to_vec()))
        .collect();
    let times: Vec<(i64, Option<i64>)> = (-2..end + 2)
        .map(|t| (TS + t, log.offset_for_timestamp(TS + t).unwrap()))
        .collect();
    for &(t, got) in &times {
        assert_eq!(got, time_answer(t, 0, end), "reference log: time {t}");
    }
    log.close().unwrap();
    Reference {
        dir,
        config,
        end,
        reads,
        times,
    }
}

impl Reference {
    /// Opens `dir` twice (the first open may rebuild indexes) and compares every read and time
    /// lookup with the reference; returns what differed.
    fn check(&self, dir: &Path, what: &str) -> Vec<String> {
        let mut out = Vec::new();
        for round in 0..2 {
            let log = guarded(format!("{what}: open"), {
                let (dir, config) = (dir.to_owned(), self.config.clone());
                move || Log::open(dir, config).unwrap()
            });
            if log.log_end_offset() != self.end {
                out.push(format!("round {round}: log end {}", log.log_end_offset()));
            }
            for (o, want) in &self.reads {
                match log.read(*o, 700) {
                    Ok(r) if &r.bytes.to_vec() == want => {}
                    Ok(r) => out.push(format!(
                        "round {round}: read({o}) WRONG: batches at {:?}",
                        r.batches
                            .iter()
                            .map(|b| b.base_offset())
                            .collect::<Vec<_>>()
                    )),
                    Err(e) => out.push(format!("round {round}: read({o}): {e}")),
                }
            }
            for (t, want) in &self.times {
                match log.offset_for_timestamp(*t) {
                    Ok(got) if got == *want => {}
                    got => out.push(format!(
                        "round {round}: offset_for_timestamp({}) = {got:?}, want {want:?}",
                        t - TS
                    )),
                }
            }
            log.close().unwrap();
        }
        out
    }

    fn index_files(&self, dir: &Path, ext: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == ext))
            .collect();
        v.sort();
        v
    }
}

/// A named way to damage a log directory.
type Damage = Box<dyn Fn(&Path)>;

fn swap(a: &Path, b: &Path) {
    let (x, y) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    fs::write(a, y).unwrap();
    fs::write(b, x).unwrap();
}

#[test]
#[cfg_attr(miri, ignore)]
fn swapped_index_files_are_detected_and_rebuilt() {
    let reference = reference_log();
    let src = reference.dir.path();
    let index = reference.index_files(src, "index");
    let time = reference.index_files(src, "timeindex");
    let n = index.len();
    assert_eq!(n, 6);
    let mut cases: Vec<(String, Damage)> = Vec::new();
    for (i, j) in [(0, 1), (1, 2), (2, 3), (0, 4), (3, 4), (4, 5), (0, 5)] {
        for (kind, files) in [("index", &index), ("timeindex", &time)] {
            let (a, b) = (files[i].file_name().unwrap(), files[j].file_name().unwrap());
            let (a, b) = (PathBuf::from(a), PathBuf::from(b));
            cases.push((
                format!("{kind} of segments {i} and {j} swapped"),
                Box::new(move |d: &Path| swap(&d.join(&a), &d.join(&b))),
            ));
        }
    }
    for i in 0..n {
        let (a, b) = (
            PathBuf::from(index[i].file_name().unwrap()),
            PathBuf::from(time[i].file_name().unwrap()),
        );
        cases.push((
            format!("index and timeindex of segment {i} swapped"),
            Box::new(move |d: &Path| swap(&d.join(&a), &d.join(&b))),
        ));
    }
    let mut failures = Vec::new();
    for (what, damage) in cases {
        let dir = copy_of(src);
        damage(dir.path());
        let v = reference.check(dir.path(), &what);
        if !v.is_empty() {
            failures.push(format!("{what}: {} differences, first: {}", v.len(), v[0]));
        }
    }
    for f in &failures {
        eprintln!("FAILED {f}");
    }
    assert!(failures.is_empty());
}

#[test]
#[cfg_attr(miri, ignore)]
fn cut_zeroed_and_deleted_index_files_are_rebuilt() {
    let reference = reference_log();
    let src = reference.dir.path();
    let mut files = reference.index_files(src, "index");
    files.extend(reference.index_files(src, "timeindex"));
    for file in &files {
        let name = PathBuf::from(file.file_name().unwrap());
        let len = fs::metadata(file).unwrap().len();
        let mut damages: Vec<(String, Damage)> = Vec::new();
        for new_len in [0, 1, 7, 11, 13, len / 2 + 3, len.saturating_sub(1), len + 5] {
            let name = name.clone();
            damages.push((
                format!("{} cut to {new_len}", name.display()),
                Box::new(move |d: &Path| set_len(&d.join(&name), new_len)),
            ));
        }
        {
            let name = name.clone();
            damages.push((
                format!("{} zeroed", name.display()),
                Box::new(move |d: &Path| {
                    fs::write(d.join(&name), vec![0u8; len as usize]).unwrap()
                }),
            ));
        }
        {
            let name = name.clone();
            damages.push((
                format!("{} doubled", name.display()),
                Box::new(move |d: &Path| {
                    let mut v = fs::read(d.join(&name)).unwrap();
                    v.extend(v.clone());
                    fs::write(d.join(&name), v).unwrap()
                }),
            ));
        }
        for (label, rel, pos) in [
            ("i32::MAX entries", i32::MAX, i32::MAX),
            ("negative entries", -1, -1),
            ("i32::MIN entries", i32::MIN, i32::MIN),
        ] {
            // Whole entries of the right size, with absurd values, after the real ones.
            let name = name.clone();
            let time = name.extension().is_some_and(|x| x == "timeindex");
            damages.push((
                format!("{} with {label}", name.display()),
                Box::new(move |d: &Path| {
                    let mut v = fs::read(d.join(&name)).unwrap();
                    for _ in 0..2 {
                        if time {
                            v.extend_from_slice(&i64::from(pos).to_be_bytes());
                            v.extend_from_slice(&rel.to_be_bytes());
                        } else {
                            v.extend_from_slice(&rel.to_be_bytes());
                            v.extend_from_slice(&pos.to_be_bytes());
                        }
                    }
                    fs::write(d.join(&name), v).unwrap()
                }),
            ));
        }
        damages.push((
            format!("{} deleted", name.display()),
            Box::new(move |d: &Path| fs::remove_file(d.join(&name)).unwrap()),
        ));
        for (what, damage) in damages {
            for clean in [true, false] {
                let dir = copy_of(src);
                damage(dir.path());
                if !clean {
                    fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
                }
                let what = format!("{what}, clean: {clean}");
                let v = reference.check(dir.path(), &what);
                assert!(v.is_empty(), "{what}: {v:?}");
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Checkpoints and the clean-shutdown marker.

const RECOVERY_POINT: &str = "recovery-point-offset-checkpoint";
const LOG_START: &str = "log-start-offset-checkpoint";

/// The recovery point checkpoint pointing anywhere (or unreadable, or missing) after a crash
/// that tore the last batch: the torn batch is always cut (the last segment is always
/// scanned), the checkpoint is rewritten to the end, and a corrupt unflushed middle segment is
/// cut when the checkpoint lets recovery see it, and reported on read when it does not.
#[test]
#[cfg_attr(miri, ignore)]
fn recovery_point_checkpoint_anywhere_or_nowhere() {
    let (src, segs, flushed) = crashed_log(100, 5);
    let last = segs.last().unwrap();
    let torn = *last.batches.last().unwrap();
    let end = segs.last().unwrap().batches.last().unwrap().next;
    let contents: Vec<(&str, Option<String>)> = vec![
        ("beyond the end", Some(format!("0\n1\n{}\n", end + 1000))),
        ("i64::MAX", Some(format!("0\n1\n{}\n", i64::MAX))),
        ("zero", Some("0\n1\n0\n".into())),
        ("the true flush point", Some(format!("0\n1\n{flushed}\n"))),
        (
            "inside the middle segment",
            Some(format!("0\n1\n{}\n", segs[2].base + 1)),
        ),
        ("negative", Some("0\n1\n-7\n".into())),
        ("garbage", Some("\u{0}\u{1}zz\n\n".into())),
        ("empty", Some(String::new())),
        ("two entries", Some(format!("0\n2\n{flushed}\n{end}\n"))),
        ("missing", None),
    ];
    for (name, content) in contents {
        for middle_damage in [false, true] {
            let dir = copy_of(src.path());
            let cp = dir.path().join(RECOVERY_POINT);
            match &content {
                Some(c) => fs::write(&cp, c).unwrap(),
                None => fs::remove_file(&cp).unwrap(),
            }
            let last_path = dir.path().join(last.name());
            set_len(&last_path, (torn.pos + torn.size / 2) as u64);
            // A flipped record byte in the middle segment's second batch.
            let mid = &segs[2];
            let mb = mid.batches[1];
            if middle_damage {
                let mut bytes = mid.bytes.clone();
                bytes[mb.pos + 70] ^= 0x10;
                fs::write(dir.path().join(mid.name()), &bytes).unwrap();
            }
            let what = format!("recovery point {name}, middle damaged: {middle_damage}");
            let log = guarded(what.clone(), {
                let dir = dir.path().to_owned();
                move || Log::open(dir, small()).unwrap()
            });
            assert!(!log.open_report().clean);
            let scanned_middle = !matches!(name, "beyond the end" | "i64::MAX");
            let want_end = if middle_damage && scanned_middle {
                mb.base
            } else {
                torn.base
            };
            assert_eq!(
                log.log_end_offset(),
                want_end,
                "{what}: {:?}",
                log.open_report()
            );
            assert_eq!(log.recovery_point(), want_end, "{what}");
            // Rewritten: renamed over (moving down) or in place, zero-padded (moving up).
            let text = fs::read_to_string(&cp).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 3, "{what}: {text:?}");
            assert_eq!(
                (lines[0], lines[1], lines[2].parse::<i64>().ok()),
                ("0", "1", Some(want_end)),
                "{what}: the checkpoint is rewritten"
            );
            if middle_damage && !scanned_middle {
                // Damage the checkpoint hid from recovery is still never returned.
                assert_eq!(
                    read_batch(&log, mid, &mb, mb.base),
                    Got::Corrupt {
                        path: dir.path().join(mid.name()),
                        position: mb.pos as u64
                    },
                    "{what}"
                );
                fill(&log, 1, 3, TS);
                log.abandon();
            } else {
                assert_holds(&log, want_end, &what);
                assert_appends_continue(log, dir.path(), &small(), &what);
            }
        }
    }
}

/// The log-start-offset checkpoint beyond the end, inside a batch, or missing. Beyond the end
/// (records deleted on request, then an unflushed tail lost, or a damaged checkpoint) the log
/// restarts empty at that offset, as Kafka's `truncateFullyAndStartAt`: nothing below it may
/// come back. Inside a batch: reads start from the batch holding it; nothing below it is found
/// by time. Missing: the first segment's base offset.
#[test]
#[cfg_attr(miri, ignore)]
fn log_start_checkpoint_beyond_the_end_or_inside_a_batch() {
    let src = tmp();
    let log = Log::open(src.path(), small()).unwrap();
    fill(&log, 40, 3, TS);
    let end = log.log_end_offset();
    log.close().unwrap();
    for (name, start, clean) in [
        ("beyond the end", Some(end + 500), true),
        ("beyond the end, crash", Some(end + 500), false),
        ("i64::MAX", Some(i64::MAX), true),
        ("inside a batch", Some(31), true),
        ("inside a batch, crash", Some(31), false),
        ("missing", None, false),
    ] {
        let dir = copy_of(src.path());
        let cp = dir.path().join(LOG_START);
        match start {
            Some(s) => fs::write(&cp, format!("0\n1\n{s}\n")).unwrap(),
            None => {
                let _ = fs::remove_file(&cp);
            }
        }
        if !clean {
            fs::remove_file(dir.path().join("clean-shutdown")).unwrap();
        }
        let what = format!("log start {name}");
        let log = guarded(what.clone(), {
            let dir = dir.path().to_owned();
            move || Log::open(dir, small()).unwrap()
        });
        let want_start = start.unwrap_or(0);
        let want_end = end.max(want_start);
        assert_eq!(log.log_end_offset(), want_end, "{what}");
        assert_eq!(log.log_start_offset(), want_start, "{what}");
        if want_end > end {
            assert_eq!(log.segment_base_offsets(), vec![want_start], "{what}");
            assert_eq!(
                log_files(dir.path()).len(),
                1,
                "{what}: old segments removed"
            );
            assert!(log.read(want_start, 100).unwrap().is_empty());
        }
        if want_start > 0 {
            assert!(
                matches!(
                    log.read(want_start - 1, 100),
                    Err(Error::OffsetOutOfRange { .. })
                ),
                "{what}"
            );
        }
        for t in [TS - 1, TS, TS + 30, TS + 31, TS + end - 1, TS + end] {
            let want = if want_end > end {
                None
            } else {
                time_answer(t, want_start, end)
            };
            assert_eq!(
                log.offset_for_timestamp(t).unwrap(),
                want,
                "{what}: time {}",
                t - TS
            );
        }
        // Reads from the start return whole batches, the first holding the start.
        if want_start < end {
            let r = log.read(want_start, 1).unwrap();
            let b = &r.batches[0];
            assert!(b.base_offset() <= want_start && want_start <= b.last_offset());
        }
        if want_end == i64::MAX {
            // No offset left to give: a typed refusal.
            assert!(
                matches!(
                    log.append(&[record(0, TS)]),
                    Err(Error::InvalidOffset { .. })
                ),
                "{what}"
            );
            continue;
        }
        let first = log.append(&[record(want_end, TS + want_end)]).unwrap();
        assert_eq!(first.first_offset, want_end, "{what}");
        let r = log.read(want_end, 1 << 20).unwrap();
        assert_eq!(r.next_offset, want_end + 1, "{what}");
        log.close().unwrap();
        let log = Log::open(dir.path(), small()).unwrap();
        assert_eq!(log.log_start_offset(), want_start, "{what}: after reopen");
        assert_eq!(log.log_end_offset(), want_end + 1, "{what}: after reopen");
    }
}

/// The clean-shutdown marker is present but the files say otherwise (a lie): a torn last
/// segment is still cut; preallocated zeros are still preallocated space; a torn or rotten
/// batch elsewhere is reported on read; data is never returned wrong.
#[test]
#[cfg_attr(miri, ignore)]
fn clean_shutdown_marker_that_lies() {
    let (src, segs, _) = crashed_log(100, 100);
    let n = segs.len();
    let last = &segs[n - 1];
    let end = last.batches.last().unwrap().next;
    let marker = |d: &Path| fs::write(d.join("clean-shutdown"), b"").unwrap();

    // 1. Torn last batch of the last segment, file still preallocated, at several cuts.
    let torn = *last.batches.last().unwrap();
    for cut in (torn.pos + 9..torn.end()).step_by(13) {
        let dir = copy_of(src.path());
        marker(dir.path());
        let p = dir.path().join(last.name());
        set_len(&p, cut as u64);
        set_len(&p, last.bytes.len() as u64);
        let log = Log::open(dir.path(), small()).unwrap();
        let what = format!("marker + torn last batch cut at {cut}");
        assert_holds(&log, torn.base, &what);
        assert_appends_continue(log, dir.path(), &small(), &what);
    }

    // 2. Not trimmed (preallocated zeros) but otherwise whole.
    let dir = copy_of(src.path());
    marker(dir.path());
    let log = Log::open(dir.path(), small()).unwrap();
    assert_holds(&log, end, "marker + untrimmed last segment");
    assert_appends_continue(log, dir.path(), &small(), "marker + untrimmed last segment");

    // 3. A flipped record byte in the last segment's last batch and in its first batch.
    for b in [*last.batches.last().unwrap(), last.batches[0]] {
        let dir = copy_of(src.path());
        marker(dir.path());
        let p = dir.path().join(last.name());
        let mut bytes = last.bytes.clone();
        bytes[b.pos + b.size - 3] ^= 0x04;
        fs::write(&p, &bytes).unwrap();
        let what = format!(
            "marker + flipped byte in the last segment's batch at {}",
            b.base
        );
        let log = Log::open(dir.path(), small()).unwrap();
        if log.log_end_offset() == b.base {
            assert_holds(&log, b.base, &what); // cut at open: fine too
        } else {
            assert_eq!(log.log_end_offset(), end, "{what}");
            assert_eq!(
                read_batch(&log, last, &b, b.base),
                Got::Corrupt {
                    path: p.clone(),
                    position: b.pos as u64
                },
                "{what}"
            );
        }
        fill(&log, 1, 3, TS);
    }

    // 4. Torn middle segment and rotten first segment, with the marker.
    let dir = copy_of(src.path());
    marker(dir.path());
    let mid = &segs[n / 2];
    let mb = *mid.batches.last().unwrap();
    set_len(&dir.path().join(mid.name()), (mb.pos + 40) as u64);
    let first = &segs[0];
    let fb = first.batches[3];
    let mut bytes = first.bytes.clone();
    bytes[fb.pos + 80] ^= 0x80;
    fs::write(dir.path().join(first.name()), &bytes).unwrap();
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.log_end_offset(), end);
    for (seg, b) in [(mid, mb), (first, fb)] {
        assert_eq!(
            read_batch(&log, seg, &b, b.base),
            Got::Corrupt {
                path: dir.path().join(seg.name()),
                position: b.pos as u64
            },
            "marker + damage in {}",
            seg.path.display()
        );
    }
    for seg in &segs {
        for x in &seg.batches {
            if x.base != mb.base && x.base != fb.base {
                let got = read_batch(&log, seg, x, x.base);
                assert_eq!(got, Got::Good, "batch at {}", x.base);
            }
        }
    }
    fill(&log, 2, 3, TS);
}

// ------------------------------------------------------------------------------------------
// Absurd length fields.

/// `batchLength` set to absurd values in a batch of the last segment and of a middle segment,
/// with the segment scanned by recovery (after the recovery point) or not (flushed, clean
/// open): a typed error on read or a cut at that batch, never a panic, a hang or a huge
/// allocation.
#[test]
#[cfg_attr(miri, ignore)]
fn absurd_batch_lengths() {
    let (unflushed, segs_u, flushed_u) = crashed_log(100, 5);
    let (flushed, segs_f, _) = crashed_log(100, 100);
    assert_eq!(segs_u.len(), segs_f.len());
    let mut cases = 0;
    for (src, segs, scanned_middle) in [(&unflushed, &segs_u, true), (&flushed, &segs_f, false)] {
        let n = segs.len();
        let end = segs[n - 1].batches.last().unwrap().next;
        for (si, which) in [
            (n - 1, "last"),
            (n - 1, "middle"),
            (2, "last"),
            (2, "first"),
        ] {
            let seg = &segs[si];
            let bi = match which {
                "last" => seg.batches.len() - 1,
                "middle" => seg.batches.len() / 2,
                _ => 0,
            };
            let b = seg.batches[bi];
            let file_len = seg.bytes.len() as i64;
            let lengths: Vec<(String, i32)> = vec![
                ("-1".into(), -1),
                ("i32::MIN".into(), i32::MIN),
                ("0".into(), 0),
                ("48".into(), 48),
                ("49".into(), 49),
                ("actual - 1".into(), b.size as i32 - 13),
                ("actual + 1".into(), b.size as i32 - 11),
                (
                    "one past the file".into(),
                    (file_len - b.pos as i64 - 12 + 1) as i32,
                ),
                ("one past the segment size".into(), 4096),
                ("i32::MAX".into(), i32::MAX),
            ];
            for (name, len) in lengths {
                for clean in [false, true] {
                    let dir = copy_of(src.path());
                    if clean {
                        fs::write(dir.path().join("clean-shutdown"), b"").unwrap();
                    }
                    let path = dir.path().join(seg.name());
                    let mut bytes = seg.bytes.clone();
                    bytes[b.pos + 8..b.pos + 12].copy_from_slice(&len.to_be_bytes());
                    fs::write(&path, &bytes).unwrap();
                    let what =
                        format!(
                        "batchLength {name} ({len}) in the {which} batch (offset {}) of segment \
                         {si}/{n}, {}, clean: {clean}",
                        b.base,
                        if scanned_middle { "unflushed" } else { "flushed" }
                    );
                    let segs = segs.clone();
                    let dir_path = dir.path().to_owned();
                    let what2 = what.clone();
                    guarded(what.clone(), move || {
                        check_absurd(&dir_path, &segs, si, b, end, &what2, flushed_u);
                    });
                    cases += 1;
                }
            }
        }
    }
    eprintln!("{cases} absurd lengths");
}

/// After damaging batch `b` of segment `si`: opens, and checks reads of every batch.
fn check_absurd(
    dir: &Path,
    segs: &[SegFile],
    si: usize,
    b: BatchAt,
    end: i64,
    what: &str,
    min_end: i64,
) {
    let log = match Log::open(dir, small()) {
        Ok(log) => log,
        Err(e) => panic!("{what}: open failed: {e}"),
    };
    let leo = log.log_end_offset();
    let seg = &segs[si];
    let path = dir.join(seg.name());
    if leo != end {
        // Cut at open: exactly at the damaged batch, keeping everything before it.
        assert_eq!(leo, b.base, "{what}: {:?}", log.open_report());
        assert!(leo >= min_end);
        let t = log.open_report().truncated.clone();
        assert_eq!(
            t.map(|t| (t.0, t.1)),
            Some((seg.base, b.pos as u64)),
            "{what}"
        );
        assert_holds(&log, leo, what);
        fill(&log, 2, 3, TS);
        assert_holds(&log, leo + 6, what);
        return;
    }
    let damaged = Got::Corrupt {
        path,
        position: b.pos as u64,
    };
    for (sj, other) in segs.iter().enumerate() {
        for x in &other.batches {
            let got = read_batch(&log, other, x, x.base);
            if sj == si && x.base == b.base {
                assert_eq!(got, damaged, "{what}: read({})", x.base);
            } else if sj == si && x.base > b.base {
                // Reached only through the damaged header, unless an index entry skips it.
                assert!(
                    got == Got::Good || is_corrupt_in(&got, &dir.join(seg.name())),
                    "{what}: {got:?}"
                );
            } else {
                assert_eq!(got, Got::Good, "{what}: read({})", x.base);
            }
        }
    }
    // Time lookups: a typed error or a right answer.
    for t in [TS, TS + b.base, TS + b.next, TS + end - 1] {
        match log.offset_for_timestamp(t) {
            Ok(got) => {
                let want = time_answer(t, 0, end);
                assert!(got == want, "{what}: time {}: {got:?}", t - TS);
            }
            Err(Error::Corrupt { .. }) => {}
            Err(e) => panic!("{what}: time lookup: {e:?}"),
        }
    }
    fill(&log, 1, 3, TS);
    assert_eq!(log.log_end_offset(), end + 3);
}

/// A batch whose CRC was recomputed over garbage records (hostile, not rotten, bytes) in a
/// segment nobody scans: reads return it (the CRC matches, and reads check only the CRC), but
/// decoding its records gives a typed error, never a panic; a recovery scan cuts it.
#[test]
#[cfg_attr(miri, ignore)]
fn garbage_records_under_a_valid_crc() {
    let (src, segs, _) = crashed_log(100, 100);
    let seg = &segs[1];
    let b = seg.batches[2];
    for (name, patch) in [
        ("key length 2^31-1", vec![0xfe, 0xff, 0xff, 0xff, 0x0f]),
        ("record length -1", vec![0x01]),
        ("varint of 10 bytes", vec![0xff; 10]),
    ] {
        for scanned in [false, true] {
            let dir = copy_of(src.path());
            if scanned {
                fs::write(dir.path().join(RECOVERY_POINT), "0\n1\n0\n").unwrap();
            }
            let mut bytes = seg.bytes.clone();
            let at = b.pos + 61;
            bytes[at..at + patch.len()].copy_from_slice(&patch);
            let crc = batch::compute_crc(&bytes[b.pos..b.end()]);
            bytes[b.pos + 17..b.pos + 21].copy_from_slice(&crc.to_be_bytes());
            fs::write(dir.path().join(seg.name()), &bytes).unwrap();
            let what = format!("{name}, scanned: {scanned}");
            let dir_path = dir.path().to_owned();
            let seg = seg.clone();
            guarded(what.clone(), move || {
                let log = Log::open(&dir_path, small()).unwrap();
                if scanned {
                    assert_eq!(log.log_end_offset(), b.base, "{what}");
                    assert_holds(&log, b.base, &what);
                    return;
                }
                let r = log.read(b.base, 1).unwrap();
                assert_eq!(&r.batches[0].as_bytes()[..], &bytes[b.pos..b.end()]);
                let decoded: Result<Vec<_>, _> = r.batches[0]
                    .records()
                    .map_err(Error::from)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>().map_err(Error::from));
                assert!(
                    matches!(decoded, Err(Error::InvalidBatch(_))),
                    "{what}: {decoded:?}"
                );
                assert!(RecordBatch::parse(r.batches[0].as_bytes().clone()).is_err());
                let next = &seg.batches[3];
                assert_eq!(read_batch(&log, &seg, next, next.base), Got::Good);
            });
        }
    }
}

// ------------------------------------------------------------------------------------------
// Regression tests: each the smallest case of a wrong behaviour the sweeps above found (now
// fixed).

/// A log of `segments` segments of three 3-record batches each (plus the active one holding
/// one batch), closed cleanly.
fn three_batch_segments(segments: usize) -> (tempfile::TempDir, Vec<SegFile>) {
    let dir = tmp();
    let log = Log::open(dir.path(), small()).unwrap();
    for _ in 0..segments {
        fill(&log, 3, 3, TS);
        log.roll_now().unwrap();
    }
    fill(&log, 1, 3, TS);
    log.close().unwrap();
    let segs = layout(dir.path());
    (dir, segs)
}

fn patch(seg: &SegFile, dir: &Path, at: usize, bytes: &[u8]) {
    let mut v = seg.bytes.clone();
    v[at..at + bytes.len()].copy_from_slice(bytes);
    fs::write(dir.join(seg.name()), v).unwrap();
}

fn offsets_of(r: &partlog::LogRead) -> Vec<i64> {
    r.batches
        .iter()
        .flat_map(|b| b.records().unwrap().map(|r| r.unwrap().offset))
        .collect()
}

/// Regression test: a batch whose base offset (outside the CRC) rotted from 3 to 4 was served as
/// offsets 4..=6; batches must continue one another, so the read must report `Corrupt`.
#[test]
fn regression_flipped_base_offset_serves_records_under_wrong_offsets() {
    let (dir, segs) = three_batch_segments(1);
    let b = segs[0].batches[1];
    assert_eq!(b.base, 3);
    patch(&segs[0], dir.path(), b.pos, &4i64.to_be_bytes());
    let log = Log::open(dir.path(), small()).unwrap();
    match log.read(3, 1) {
        Err(Error::Corrupt { position, .. }) => assert_eq!(position, b.pos as u64),
        Ok(r) => {
            let records: Vec<_> = r.batches[0]
                .records()
                .unwrap()
                .map(Result::unwrap)
                .collect();
            panic!(
                "read(3) returned offsets {:?} holding values {:?}",
                records.iter().map(|r| r.offset).collect::<Vec<_>>(),
                records
                    .iter()
                    .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).into_owned())
                    .collect::<Vec<_>>()
            )
        }
        Err(e) => panic!("{e:?}"),
    }
}

/// Regression test: recovery kept a batch whose base offset rotted to 3 + 2^24 and cut the good
/// batches after it, moving the log end offset to 2^24 + 6; it must cut at the damaged batch (3).
#[test]
fn regression_flipped_base_offset_makes_recovery_cut_good_batches() {
    let dir = tmp();
    let log = Log::open(dir.path(), small()).unwrap();
    fill(&log, 4, 3, TS);
    log.flush().unwrap();
    log.abandon();
    let segs = layout(dir.path());
    let b = segs[0].batches[1];
    patch(
        &segs[0],
        dir.path(),
        b.pos,
        &(3i64 + (1 << 24)).to_be_bytes(),
    );
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(
        log.log_end_offset(),
        3,
        "recovery kept the rotted batch: {:?}",
        log.open_report()
    );
}

/// Regression test: `read` parsed the next batch's header before checking `max_bytes`, so a good
/// batch before a damaged header could not be read; `read(3, 1)` must return batch 3..=5.
#[test]
fn regression_good_batch_unreadable_when_the_next_header_is_damaged() {
    let (dir, segs) = three_batch_segments(1);
    let next = segs[0].batches[2];
    patch(&segs[0], dir.path(), next.pos + 8, &(-1i32).to_be_bytes());
    let log = Log::open(dir.path(), small()).unwrap();
    assert!(matches!(log.read(6, 1), Err(Error::Corrupt { .. })));
    match log.read(3, 1) {
        Ok(r) => assert_eq!(offsets_of(&r), vec![3, 4, 5]),
        Err(e) => panic!("read(3, 1) of a good batch: {e}"),
    }
}

/// Regression test: a time lookup that a damaged batch would answer skipped it and answered a
/// later offset (9); it must report the damage (`Corrupt`).
#[test]
fn regression_time_lookup_skips_a_damaged_batch() {
    let (dir, segs) = three_batch_segments(2);
    let b = segs[0].batches[2];
    assert_eq!(b.base, 6);
    patch(&segs[0], dir.path(), b.pos + 8, &(-1i32).to_be_bytes());
    let log = Log::open(dir.path(), small()).unwrap();
    match log.offset_for_timestamp(TS + 6) {
        Err(Error::Corrupt { position, .. }) => assert_eq!(position, b.pos as u64),
        other => panic!("offset_for_timestamp(TS + 6) = {other:?}"),
    }
}

/// Regression test: on a clean open the active segment's time index was checked for shape only,
/// so one swapped in from another segment gave wrong time lookups; it must be detected and
/// rebuilt (`offset_for_timestamp(TS + 40)` = 40).
#[test]
fn regression_active_segment_time_index_is_not_checked_against_its_batches() {
    let dir = tmp();
    let log = Log::open(dir.path(), small()).unwrap();
    fill(&log, 10, 3, TS);
    log.roll_now().unwrap();
    fill(&log, 10, 3, TS);
    log.close().unwrap();
    let time_files: Vec<PathBuf> = log_files(dir.path())
        .iter()
        .map(|p| p.with_extension("timeindex"))
        .collect();
    swap(&time_files[0], &time_files[1]);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.offset_for_timestamp(TS + 40).unwrap(), Some(40));
}

/// A segment that lost its last batch whole (no torn batch: a hole at 15..18 before the next
/// segment's base 18) is an offset gap, legal in Kafka's logs (`truncateTo` inside a batch, a
/// compacted leader's copy), so recovery keeps the later segments (issue 18; before, it cut the
/// log at 15, and before that fix it kept the hole silently). partlog's own crashes do not
/// leave this: an mmap'd segment loses its tail as zeros or a torn batch, which are still cut
/// (`unflushed_middle_segment_cut_at_every_byte_of_its_last_batch`).
#[test]
fn a_segment_that_lost_its_last_batch_whole_is_an_offset_gap_recovery_keeps() {
    let dir = tmp();
    let log = Log::open(dir.path(), small()).unwrap();
    for _ in 0..3 {
        fill(&log, 3, 3, TS);
        log.roll_now().unwrap();
    }
    log.abandon();
    set_recovery_point(dir.path(), 0); // recovery scans every segment
    let segs = layout(dir.path());
    let b = segs[1].batches[2];
    assert_eq!(b.base, 15);
    set_len(&dir.path().join(segs[1].name()), b.pos as u64);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.log_end_offset(), 27);
    assert!(log.read_record(15).unwrap().is_none());
    assert_eq!(offsets_of(&log.read(15, 1).unwrap()), vec![18, 19, 20]);
}

/// In a flushed segment that lost its last batch, `read(15)` answers with the next segment's
/// batch at 18, as Kafka answers a read of an offset in a gap (issue 18; before, it reported
/// `Corrupt`).
#[test]
fn a_read_of_an_offset_in_a_hole_answers_with_the_next_batch_as_kafka_does() {
    let (dir, segs) = three_batch_segments(3);
    let b = segs[1].batches[2];
    assert_eq!(b.base, 15);
    set_len(&dir.path().join(segs[1].name()), b.pos as u64);
    let log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(offsets_of(&log.read(15, 1).unwrap()), vec![18, 19, 20]);
    assert!(log.read_record(16).unwrap().is_none());
}
