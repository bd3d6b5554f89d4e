//! Benches of what replication does to a log. `truncate_tail`: a follower cutting a small tail
//! (one batch, ~16 KiB) off its active segment, as it does on a diverging-epoch answer, for
//! segments of several sizes (the cost must not grow with the segment):
//! - `partlog_in_place`: `Log::truncate_to` with no reader holding the segment: the log map,
//!   file and index entries are cut in place, then one fsync;
//! - `partlog_rewrite`: the same cut while a reader holds bytes of the segment, which forces the
//!   old path: the kept part is copied to a new file, synced and renamed over the segment;
//! - `raw_ftruncate`: the baseline, `set_len` of a plain file of the same size to the same
//!   length, then `sync_all` (no index, no checkpoint, no reader safety).
//!
//! Each iteration appends the cut batch back (untimed) before the next cut.

#[path = "common/mod.rs"]
mod common;

use std::fs::File;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{Scale, MIB, TS0};
use criterion::{BenchmarkId, Criterion};
use partlog::{Config, Log};

/// Records per batch and value size: a 16 KiB batch.
const PER_BATCH: usize = 16;
const VALUE: usize = 1000;

fn truncate_tail(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("truncate_tail");
    let sizes: Vec<u64> = if scale.full {
        vec![16 * MIB, 128 * MIB, 512 * MIB]
    } else {
        vec![MIB]
    };
    let value = common::value(VALUE, 7);
    for size in sizes {
        let dir = common::tempdir();
        let config = Config {
            segment_bytes: u32::try_from(size + 64 * MIB).unwrap_or(u32::MAX),
            segment_index_bytes: 64 << 20,
            ..Config::default()
        };
        let log = Log::open(dir.path(), config).unwrap();
        let records = common::records(PER_BATCH, &value, TS0);
        while log.size() < size {
            log.append(&records).unwrap();
        }
        log.flush().unwrap();
        assert_eq!(log.segment_count(), 1, "the fixture is one active segment");
        let label = format!("{}MiB", size / MIB);

        let cut = |hold_reader: bool, iters: u64| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let end = log.log_end_offset();
                let to = end - PER_BATCH as i64;
                let held = hold_reader.then(|| log.read(0, 1).unwrap());
                let start = Instant::now();
                assert_eq!(log.truncate_to(to).unwrap(), to);
                total += start.elapsed();
                drop(held);
                log.append(&records).unwrap();
            }
            total
        };
        group.bench_function(BenchmarkId::new("partlog_in_place", &label), |b| {
            b.iter_custom(|iters| cut(false, iters))
        });
        if size <= 128 * MIB {
            group.bench_function(BenchmarkId::new("partlog_rewrite", &label), |b| {
                b.iter_custom(|iters| cut(true, iters))
            });
        }

        let raw_path = dir.path().join("raw");
        let mut raw = File::create(&raw_path).unwrap();
        let chunk = vec![7u8; MIB as usize];
        for _ in 0..size / MIB {
            raw.write_all(&chunk).unwrap();
        }
        raw.sync_all().unwrap();
        let tail = (PER_BATCH * (VALUE + 20)) as u64;
        group.bench_function(BenchmarkId::new("raw_ftruncate", &label), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    raw.set_len(size - tail).unwrap();
                    raw.sync_all().unwrap();
                    total += start.elapsed();
                    raw.set_len(size).unwrap();
                }
                total
            })
        });
    }
    group.finish();
}

fn main() {
    let scale = Scale::detect();
    let mut c = common::criterion();
    truncate_tail(&mut c, scale);
    c.final_summary();
}
