//! Stalls: how long one operation waits behind another's slow file work (issue 17, finding 10).
//! Criterion measures means, and a stall is a tail, so each row times every operation of a
//! window and reports that window's 99th percentile:
//!
//! - `append_during_retention`: one thread appends one-record batches (100 B) without pause
//!   while another runs time retention that deletes 21 segments of 1 MiB, reopened first so
//!   that retention must map each one to learn its largest timestamp, then renames its files
//!   and syncs the directory. A window runs from the start of retention to its end.
//! - `read_during_index_rebuild`: a log whose first segment (64 MiB, 1 KiB records, 16 to a
//!   batch) lost its offset index is reopened; one thread reads from that segment, which
//!   rebuilds the index (a CRC scan of the segment and two atomic file writes with fsyncs),
//!   while another reads random offsets of the same segment. A window runs until the rebuild
//!   has ended.
//!
//! For each row, criterion's value is the mean over windows of each window's p99 (one window
//! per iteration: its "time" is that p99). After each row the p50 / p99 / max over all the
//! operations of all its windows, and how many there were, are printed to stderr.
//!
//! Under `cargo test --benches` (or with `PARTLOG_BENCH_SMALL`) the fixtures are small.

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{tempdir, value, Scale, MIB, TS0};
use criterion::{Criterion, SamplingMode};
use partlog::{Config, Log};

/// Segments retention deletes in a window (the measurement had 21).
const DOOMED_SEGMENTS: u64 = 21;

/// Latencies of every operation of every window of a row.
static ALL: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The window's p99, after adding its latencies to `ALL`.
fn p99_of(mut window: Vec<Duration>) -> Duration {
    window.sort_unstable();
    let p99 = percentile(&window, 0.99);
    ALL.lock().unwrap().extend(window);
    p99
}

fn report(row: &str) {
    let mut all = std::mem::take(&mut *ALL.lock().unwrap());
    all.sort_unstable();
    eprintln!(
        "stalls/{row}: {} ops, p50 {:?}, p99 {:?}, p99.9 {:?}, max {:?}",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 0.999),
        all.last().copied().unwrap_or_default(),
    );
}

fn retention_config(segment_bytes: u64) -> Config {
    Config {
        segment_bytes: segment_bytes as u32,
        retention_ms: 24 * 60 * 60 * 1000,
        ..Config::default()
    }
}

/// One window of `append_during_retention`: the append latencies while retention runs.
fn append_during_retention(scale: Scale) -> Vec<Duration> {
    let segment_bytes = scale.pick(MIB, 64 << 10);
    let dir = tempdir();
    let config = retention_config(segment_bytes);
    let v = value(100, 1);
    {
        let log = Log::open(dir.path(), config.clone()).unwrap();
        let old = [partlog::batch::SimpleRecord::new(
            TS0,
            None::<Vec<u8>>,
            Some(v.clone()),
        )];
        while (log.segment_count() as u64) < DOOMED_SEGMENTS {
            log.append(&old).unwrap();
        }
        log.roll_now().unwrap();
        log.close().unwrap();
    }
    let log = Arc::new(Log::open(dir.path(), config).unwrap());
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let fresh = [partlog::batch::SimpleRecord::new(
        now(),
        None::<Vec<u8>>,
        Some(v),
    )];
    log.append(&fresh).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let retention = {
        let (log, done) = (Arc::clone(&log), Arc::clone(&done));
        thread::spawn(move || {
            let report = log.apply_retention(now()).unwrap();
            done.store(true, Ordering::Release);
            report.deleted.len()
        })
    };
    let mut latencies = Vec::new();
    while !done.load(Ordering::Acquire) {
        let start = Instant::now();
        log.append(&fresh).unwrap();
        latencies.push(start.elapsed());
    }
    let deleted = retention.join().unwrap();
    assert_eq!(
        deleted as u64, DOOMED_SEGMENTS,
        "retention deleted {deleted}"
    );
    latencies
}

/// The fixture of `read_during_index_rebuild`: a first segment of `segment_bytes` and a
/// second one, so that the first is inactive. Returns the first segment's end offset.
fn rebuild_fixture(dir: &std::path::Path, segment_bytes: u64) -> i64 {
    let log = Log::open(dir, rebuild_config(segment_bytes)).unwrap();
    let batch = common::batch_of(16, 1024, TS0);
    while log.segment_count() < 2 {
        log.append_batch(&batch).unwrap();
    }
    let end = log.segment_base_offsets()[1];
    log.close().unwrap();
    end
}

fn rebuild_config(segment_bytes: u64) -> Config {
    Config {
        segment_bytes: segment_bytes as u32,
        retention_ms: -1,
        ..Config::default()
    }
}

/// One window of `read_during_index_rebuild`: the latencies of reads of the segment issued
/// while another reader rebuilds its index.
fn read_during_index_rebuild(
    dir: &std::path::Path,
    segment_bytes: u64,
    end: i64,
    rng: &mut common::Rng,
) -> Vec<Duration> {
    std::fs::remove_file(dir.join(format!("{:020}.index", 0))).unwrap();
    let log = Arc::new(Log::open(dir, rebuild_config(segment_bytes)).unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let (started, start) = mpsc::channel();
    let rebuilder = {
        let (log, done) = (Arc::clone(&log), Arc::clone(&done));
        thread::spawn(move || {
            started.send(()).unwrap();
            let t = Instant::now();
            log.read(end / 2, 1).unwrap();
            let took = t.elapsed();
            done.store(true, Ordering::Release);
            took
        })
    };
    start.recv().unwrap();
    // Let the rebuilder be first to map the segment (a bench, not a test: a head start).
    thread::sleep(Duration::from_micros(500));
    let mut latencies = Vec::new();
    while !done.load(Ordering::Acquire) {
        let offset = rng.below(end as u64) as i64;
        let t = Instant::now();
        let r = log.read(offset, 1).unwrap();
        latencies.push(t.elapsed());
        assert!(!r.batches.is_empty());
    }
    let _rebuild = rebuilder.join().unwrap();
    drop(log);
    latencies
}

fn main() {
    let scale = Scale::detect();
    let mut c: Criterion = common::criterion()
        // One window per sample: each is a whole fixture, and its value is a percentile.
        .warm_up_time(Duration::from_nanos(1))
        .measurement_time(Duration::from_nanos(1));
    {
        let mut g = c.benchmark_group("stalls");
        g.sampling_mode(SamplingMode::Flat).sample_size(10);
        g.bench_function("append_during_retention_p99", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| p99_of(append_during_retention(scale)))
                    .sum()
            })
        });
        g.finish();
    }
    report("append_during_retention");
    {
        let segment_bytes = scale.pick(64 * MIB, 2 * MIB);
        let dir = tempdir();
        let end = rebuild_fixture(dir.path(), segment_bytes);
        let mut rng = common::Rng(0x5eed);
        let mut g = c.benchmark_group("stalls");
        g.sampling_mode(SamplingMode::Flat).sample_size(10);
        g.bench_function("read_during_index_rebuild_p99", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        p99_of(read_during_index_rebuild(
                            dir.path(),
                            segment_bytes,
                            end,
                            &mut rng,
                        ))
                    })
                    .sum()
            })
        });
        g.finish();
    }
    report("read_during_index_rebuild");
    c.final_summary();
}
