//! Producer state at open (issue 20): a log of idempotent batches from many producers, opened
//! after an unclean stop with nothing left to recover (recovery point at the log end), so that
//! the open's only work is the producer state:
//! - `open_from_snapshot`: the producer snapshot the log left at its end is loaded (Kafka's
//!   path after a roll or a clean close): no batch is read;
//! - `open_rebuilding_by_full_scan`: every `.snapshot` removed first (untimed), so the open
//!   rebuilds the state by walking every batch header from the log start (Kafka's path with no
//!   usable snapshot).
//!
//! Sizes: ~1 GiB of ~16.5 KiB batches (16 records of 1 KiB) from 64 producers under
//! `cargo bench` (`PARTLOG_BENCH_PRODUCER_MIB` to change it); 8 MiB under `cargo test
//! --benches` or `PARTLOG_BENCH_SMALL=1`.

use std::cell::OnceCell;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use partlog::batch::BatchBuilder;
use partlog::log::CLEAN_SHUTDOWN_FILE;
use partlog::{Config, Log};
use tempfile::TempDir;

#[path = "common/mod.rs"]
mod common;
use common::{tempdir, value, Scale, MIB};

const PRODUCERS: i64 = 64;
const RECORDS_PER_BATCH: i32 = 16;
const VALUE_BYTES: usize = 1024;

struct Fixture {
    dir: TempDir,
    bytes: u64,
}

/// Writes ~`target` bytes of idempotent batches, round robin over the producers, then rolls (so
/// the active segment is empty) and closes cleanly (a snapshot at the log end).
fn build(target: u64) -> Fixture {
    let dir = tempdir();
    let log = Log::open(dir.path(), Config::default()).expect("open");
    let v = value(VALUE_BYTES, 11);
    let mut seq = vec![0i32; PRODUCERS as usize];
    let mut bytes = 0u64;
    let mut i = 0i64;
    // Record times are now: producers whose last batch is older than
    // `producer.id.expiration.ms` (a day) are dropped when the log opens, as in Kafka.
    let ts0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    while bytes < target {
        let pid = i % PRODUCERS;
        let mut b =
            BatchBuilder::with_capacity(RECORDS_PER_BATCH as usize * (VALUE_BYTES + 16) + 64)
                .producer(pid, 0, seq[pid as usize]);
        for r in 0..RECORDS_PER_BATCH {
            b.push_parts(ts0 + i * 16 + i64::from(r), None, Some(&v), &[])
                .expect("push");
        }
        let batch = b.build().expect("build");
        bytes += batch.as_bytes().len() as u64;
        log.append_batch(&batch).expect("append");
        seq[pid as usize] += RECORDS_PER_BATCH;
        i += 1;
    }
    log.roll_now().expect("roll");
    log.close().expect("close");
    Fixture { dir, bytes }
}

fn snapshots(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "snapshot"))
        .collect()
}

/// Opens the log as after an unclean stop (the clean-shutdown marker removed, untimed) and
/// times the open; checks every producer came back.
fn timed_open(fx: &Fixture) -> Duration {
    let _ = std::fs::remove_file(fx.dir.path().join(CLEAN_SHUTDOWN_FILE));
    let start = Instant::now();
    let log = Log::open(fx.dir.path(), Config::default()).expect("open");
    let took = start.elapsed();
    assert!(!log.open_report().clean);
    assert_eq!(log.producer_count().expect("count"), PRODUCERS as usize);
    log.abandon();
    took
}

fn producer_state_open(c: &mut Criterion) {
    let scale = Scale::detect();
    let target = scale.pick(
        std::env::var("PARTLOG_BENCH_PRODUCER_MIB")
            .ok()
            .and_then(|m| m.parse::<u64>().ok())
            .map_or(1024 * MIB - 64 * 1024, |m| m * MIB),
        8 * MIB,
    );
    let mut group = c.benchmark_group("producer_state_open");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    let fixture: OnceCell<Fixture> = OnceCell::new();
    let fx = || fixture.get_or_init(|| build(target));
    let param = format!("{}MiB", target.div_ceil(MIB));
    group.throughput(Throughput::Bytes(target));
    group.bench_function(BenchmarkId::new("open_from_snapshot", &param), |b| {
        let fx = fx();
        assert!(fx.bytes >= target);
        b.iter_custom(|iters| (0..iters).map(|_| timed_open(fx)).sum())
    });
    group.bench_function(
        BenchmarkId::new("open_rebuilding_by_full_scan", &param),
        |b| {
            let fx = fx();
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        for s in snapshots(fx.dir.path()) {
                            std::fs::remove_file(s).expect("remove");
                        }
                        timed_open(fx)
                    })
                    .sum()
            })
        },
    );
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    producer_state_open(&mut c);
    c.final_summary();
}
