//! Compression on the taxi rides: for each codec and batches of 100 and 1,000 rides (keyed by
//! VendorID, the TLC CSV line as the value), next to the codec crate alone on the same bytes:
//!
//! - `floor_compress`: `batch::compression::compress` of each batch's uncompressed records;
//! - `append`: `Log::append_records` into a log whose `compression.type` is the codec (encode
//!   the batch, compress it, write it);
//! - `floor_decompress`: `batch::compression::decompress` of each compressed batch's records;
//! - `append_producer_batch`: `Log::append_batch` of the producer's compressed batch into a
//!   `producer` log (Kafka's validator: inflate, walk every record, write as sent);
//! - `consume`: `Log::read` from offset 0 to the end, every batch's records decompressed
//!   (`record_views_in`, one reused buffer) and every record's key and value touched.
//!
//! Throughput is in bytes of uncompressed batches, so the rows compare. The compression ratio
//! of each codec (uncompressed batch bytes / stored batch bytes) is printed at setup.
//!
//! The rides are `../shared/data/rides.csv` (the TLC's rows; `PARTLOG_RIDES_CSV` names another
//! path) repeated, or, without that file, rows of the same shape from a seeded generator.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{criterion, touch, Rng, Scale, TS0};
use criterion::{BenchmarkId, Criterion, Throughput};
use partlog::batch::compression::{compress, decompress};
use partlog::batch::{
    BatchBuilder, BorrowedRecord, Compression, CompressionLevel, RecordBatch, HEADER_SIZE,
};
use partlog::config::CompressionType;
use partlog::{Config, Log};

/// One ride: its VendorID (the key) and its CSV line (the value).
struct Ride {
    vendor: Vec<u8>,
    line: Vec<u8>,
}

/// The TLC rows of `../shared/data/rides.csv`, or generated rows of the same shape.
fn source_rows() -> (Vec<Ride>, &'static str) {
    let path = std::env::var_os("PARTLOG_RIDES_CSV").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/rides.csv"),
        PathBuf::from,
    );
    if let Ok(text) = std::fs::read_to_string(&path) {
        let rows: Vec<Ride> = text
            .lines()
            .skip(1)
            .filter(|l| !l.is_empty())
            .map(|l| Ride {
                vendor: l.split(',').next().unwrap_or("").as_bytes().to_vec(),
                line: l.as_bytes().to_vec(),
            })
            .collect();
        if !rows.is_empty() {
            return (rows, "the TLC rows of rides.csv");
        }
    }
    let mut rng = Rng(0x5EED_CAB5);
    let rows = (0..266)
        .map(|i| {
            let vendor = 1 + rng.below(2);
            let (m, s) = (rng.below(60), rng.below(60));
            let dist = rng.below(2000);
            let fare = 25 + rng.below(600);
            let line = format!(
                "{vendor},2020-07-01 {:02}:{m:02}:{s:02},2020-07-01 {:02}:{:02}:{s:02},{},{}.{:02},1,N,{},{},{},{}.{},0.5,0.5,{},0,0.3,{}.{},2.5",
                i / 12,
                i / 12,
                (m + 7) % 60,
                1 + rng.below(3),
                dist / 100,
                dist % 100,
                1 + rng.below(265),
                1 + rng.below(265),
                1 + rng.below(2),
                fare / 10,
                fare % 10,
                rng.below(5),
                fare / 10 + 1,
                fare % 10,
            );
            Ride {
                vendor: vendor.to_string().into_bytes(),
                line: line.into_bytes(),
            }
        })
        .collect();
    (rows, "generated TLC-shaped rows")
}

/// `total` rides (the source rows repeated), cut into batches of `per_batch`.
fn batches_of(rows: &[Ride], total: usize, per_batch: usize) -> Vec<Vec<BorrowedRecord<'_>>> {
    let all: Vec<BorrowedRecord<'_>> = (0..total)
        .map(|i| {
            let r = &rows[i % rows.len()];
            BorrowedRecord::new(
                TS0 + i as i64 * 1000,
                Some(&r.vendor[..]),
                Some(&r.line[..]),
            )
        })
        .collect();
    all.chunks(per_batch).map(<[_]>::to_vec).collect()
}

fn build(records: &[BorrowedRecord<'_>], codec: Compression) -> RecordBatch {
    let mut b = BatchBuilder::new().compression(codec);
    for r in records {
        b.push_borrowed(r).unwrap();
    }
    b.build().unwrap()
}

fn tmp() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

fn log_config(t: CompressionType) -> Config {
    Config {
        segment_bytes: 256 << 20,
        segment_index_bytes: 1 << 20,
        compression_type: t,
        ..Config::default()
    }
}

fn open(dir: &Path, t: CompressionType) -> Log {
    Log::open(dir, log_config(t)).unwrap()
}

/// A fresh log per timed pass (opening it is not timed).
fn fresh(n: u64) -> PathBuf {
    PathBuf::from(format!("log-{n}"))
}

fn bench_compression(c: &mut Criterion) {
    let scale = Scale::detect();
    let total = scale.pick(20_000, 2_000) as usize;
    let (rows, origin) = source_rows();
    eprintln!("compression bench: {total} rides from {origin}");
    for per_batch in [100usize, 1000] {
        let batches = batches_of(&rows, total, per_batch);
        let plain: Vec<RecordBatch> = batches
            .iter()
            .map(|b| build(b, Compression::None))
            .collect();
        let plain_bytes: u64 = plain.iter().map(|b| b.size() as u64).sum();
        for codec in Compression::ALL {
            let mut g = c.benchmark_group(format!("compression/{codec}/batch_{per_batch}"));
            g.throughput(Throughput::Bytes(plain_bytes));
            let packed: Vec<RecordBatch> = batches.iter().map(|b| build(b, codec)).collect();
            let packed_bytes: u64 = packed.iter().map(|b| b.size() as u64).sum();
            eprintln!(
                "ratio {codec} batch {per_batch}: {plain_bytes} / {packed_bytes} = {:.2}",
                plain_bytes as f64 / packed_bytes as f64
            );
            let level = CompressionLevel::default_for(codec);
            if codec != Compression::None {
                g.bench_function(BenchmarkId::new("floor_compress", ""), |b| {
                    let mut out = Vec::new();
                    b.iter(|| {
                        let mut n = 0;
                        for p in &plain {
                            out.clear();
                            compress(codec, level, &p.as_bytes()[HEADER_SIZE..], &mut out).unwrap();
                            n += out.len();
                        }
                        n
                    })
                });
                g.bench_function(BenchmarkId::new("floor_decompress", ""), |b| {
                    let mut out = Vec::new();
                    b.iter(|| {
                        let mut n = 0;
                        for p in &packed {
                            out.clear();
                            decompress(codec, &p.as_bytes()[HEADER_SIZE..], usize::MAX, &mut out)
                                .unwrap();
                            n += out.len();
                        }
                        n
                    })
                });
            }
            g.bench_function(BenchmarkId::new("append", ""), |b| {
                let dir = tmp();
                let mut pass = 0;
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        pass += 1;
                        let log =
                            open(&dir.path().join(fresh(pass)), CompressionType::Codec(codec));
                        let t = Instant::now();
                        for records in &batches {
                            log.append_records(records).unwrap();
                        }
                        spent += t.elapsed();
                        log.close().unwrap();
                        std::fs::remove_dir_all(dir.path().join(fresh(pass))).unwrap();
                    }
                    spent
                })
            });
            g.bench_function(BenchmarkId::new("append_producer_batch", ""), |b| {
                let dir = tmp();
                let mut pass = 0;
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        pass += 1;
                        let log = open(&dir.path().join(fresh(pass)), CompressionType::Producer);
                        let t = Instant::now();
                        for batch in &packed {
                            log.append_batch(batch).unwrap();
                        }
                        spent += t.elapsed();
                        log.close().unwrap();
                        std::fs::remove_dir_all(dir.path().join(fresh(pass))).unwrap();
                    }
                    spent
                })
            });
            let dir = tmp();
            let log = open(dir.path(), CompressionType::Producer);
            for batch in &packed {
                log.append_batch(batch).unwrap();
            }
            let end = log.log_end_offset();
            g.bench_function(BenchmarkId::new("consume", ""), |b| {
                let mut scratch = Vec::new();
                b.iter(|| {
                    let mut offset = 0;
                    let mut sum = 0u64;
                    while offset < end {
                        let read = log.read(offset, 1 << 20).unwrap();
                        for batch in &read.batches {
                            for r in batch.record_views_in(&mut scratch).unwrap() {
                                let r = r.unwrap();
                                sum = sum.wrapping_add(r.offset() as u64);
                                sum ^= touch(r.key().unwrap_or_default());
                                sum ^= touch(r.value().unwrap_or_default());
                            }
                        }
                        offset = read.next_offset;
                    }
                    sum
                })
            });
            g.finish();
            log.close().unwrap();
        }
    }
}

fn main() {
    let mut c = criterion();
    bench_compression(&mut c);
    c.final_summary();
}
