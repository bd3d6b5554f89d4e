//! Helpers shared by the two benches (included with `#[path]`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use partlog::batch::{BatchBuilder, RecordBatch, SimpleRecord};
use tempfile::TempDir;

pub const MIB: u64 = 1 << 20;
/// Base of the record timestamps (2024-01-01T00:00:00Z).
pub const TS0: i64 = 1_704_067_200_000;
/// Bytes asked for per sequential read, as a Kafka consumer's `max.partition.fetch.bytes`.
pub const READ_CHUNK: usize = 1 << 20;

/// Full-size fixtures under `cargo bench`; tiny ones under `cargo test --benches` (or with
/// `PARTLOG_BENCH_SMALL` set). Each bench adds its own sizes in an `impl Scale` of its own.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub full: bool,
}

impl Scale {
    pub fn detect() -> Scale {
        let mut bench = false;
        let mut test = false;
        for a in std::env::args() {
            bench |= a == "--bench";
            test |= a == "--test";
        }
        let small = std::env::var_os("PARTLOG_BENCH_SMALL").is_some();
        Scale {
            full: bench && !test && !small,
        }
    }

    pub fn pick(self, full: u64, small: u64) -> u64 {
        if self.full {
            full
        } else {
            small
        }
    }
}

/// Criterion with the benches' short settings (a full `cargo bench` stays near ten minutes on
/// 2 cores); the command line overrides them. Plots cost ~4 s per benchmark, so the HTML report
/// is made only when asked for: `PARTLOG_BENCH_PLOTS=1 cargo bench`.
pub fn criterion() -> criterion::Criterion {
    let mut c = criterion::Criterion::default();
    if std::env::var_os("PARTLOG_BENCH_PLOTS").is_none() {
        c = c.without_plots();
    }
    c.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// The `.log` file of a log's first segment (base offset 0).
pub fn first_segment(dir: &Path) -> PathBuf {
    dir.join(format!("{:020}.log", 0))
}

/// `size` pseudo-random bytes (xorshift), so that nothing compresses or folds away.
pub fn value(size: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Bytes::from(v)
}

/// `n` records with null keys, `value` as the value and timestamps `ts0, ts0 + 1, ...`.
pub fn records(n: usize, value: &Bytes, ts0: i64) -> Vec<SimpleRecord> {
    (0..n)
        .map(|i| SimpleRecord::new(ts0 + i as i64, None::<Bytes>, Some(value.clone())))
        .collect()
}

pub fn build(records: &[SimpleRecord]) -> RecordBatch {
    let mut b = BatchBuilder::new();
    for r in records {
        b.push(r).expect("push");
    }
    b.build().expect("build")
}

/// A batch of `n` records of `value_size` bytes whose timestamps start at `ts0`.
pub fn batch_of(n: usize, value_size: usize, ts0: i64) -> RecordBatch {
    let v = value(value_size, 7);
    let mut b = BatchBuilder::with_capacity(n * (value_size + 16) + 64);
    for i in 0..n {
        b.push_parts(ts0 + i as i64, None, Some(&v), &[])
            .expect("push");
    }
    b.build().expect("build")
}

/// Reads every byte (xor of 8-byte words), as a consumer that looks at all of it would.
pub fn touch(bytes: &[u8]) -> u64 {
    let mut acc = [0u64; 4];
    let mut chunks = bytes.chunks_exact(32);
    for c in &mut chunks {
        for (i, a) in acc.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&c[i * 8..i * 8 + 8]);
            *a ^= u64::from_le_bytes(w);
        }
    }
    let mut x = acc[0] ^ acc[1] ^ acc[2] ^ acc[3];
    for &b in chunks.remainder() {
        x = x.rotate_left(8) ^ u64::from(b);
    }
    x
}

/// A small deterministic generator for random offsets and timestamps.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Where the benches put their files: `PARTLOG_BENCH_DIR`, or the system temp dir (on this
/// machine the same ext4 file system as the repository).
pub fn tempdir() -> TempDir {
    match std::env::var_os("PARTLOG_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("tempdir"),
        None => tempfile::tempdir().expect("tempdir"),
    }
}

pub fn size_label(value_size: usize) -> String {
    if value_size >= 1024 {
        format!("{}KiB", value_size / 1024)
    } else {
        format!("{value_size}B")
    }
}

/// Times `iters` calls of `step` on append targets made by `open`, starting a fresh target
/// (untimed, in a fresh directory) whenever the current one took `recycle_bytes` bytes, so
/// that no sample measures a full disk or an unplanned segment roll. `discard` ends a target
/// (untimed).
pub fn timed_appends<T>(
    iters: u64,
    batch_bytes: u64,
    recycle_bytes: u64,
    open: impl Fn(&Path) -> T,
    mut step: impl FnMut(&mut T),
    discard: impl Fn(T),
) -> Duration {
    let per_target = (recycle_bytes / batch_bytes).max(1);
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(per_target);
        let dir = tempdir();
        let mut target = open(dir.path());
        let start = Instant::now();
        for _ in 0..n {
            step(&mut target);
        }
        total += start.elapsed();
        discard(target);
        drop(dir);
        left -= n;
    }
    total
}
