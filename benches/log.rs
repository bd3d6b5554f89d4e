//! partlog against the machine: every group measures partlog and a raw-file baseline doing the
//! same work on the same bytes, in the same run. See BENCHMARKS.md for the numbers and the
//! commands.
//!
//! Groups:
//! - `append` / `append_flush`: record values of 100 B and 1 KiB, batches of 1, 100 and 1000
//!   records; `Log::append` (builds the batch), `Log::append_batch` (a pre-built batch) and the
//!   baseline, one `write()` of the same batch bytes per batch (`sync_data` after each in
//!   `append_flush`, where partlog calls `flush()` after each batch). `append` also has a run
//!   with 64 MiB segments, so that segment rolls (trim + fsync) are inside the measurement.
//! - `sequential_read`: a ~256 MiB log read front to back with `read(next, 1 MiB)`, every byte
//!   touched, CRC checked and not; baseline: `pread` of the same `.log` bytes into a 1 MiB
//!   buffer with the same touch (and with a CRC-32C over them). Page cache warm for all.
//! - `random_read`: `read(random offset, 1)` and `offset_for_timestamp(random ts)` over a log of
//!   1M records; baseline: a binary search in an in-memory table of every batch + `pread` of the
//!   batch (and a binary search over every record's timestamp).
//! - `recovery`: reopen after `abandon()` (an unclean stop) with ~1 GiB after the recovery point;
//!   baseline: `pread` + CRC-32C of the same bytes. `clean_open`: open a cleanly closed log of
//!   10,000 small segments; baseline: list the directory and stat every file.
//! - `concurrent`: N = 1, 2, 4 reader threads each reading a 64 MiB prefix while one writer
//!   appends 16 KiB batches at ~16 MB/s; baseline: N threads `pread`ing the same file.
//!
//! Run under `cargo test --benches` (criterion's test mode: no `--bench` argument) every fixture
//! is shrunk so that the run takes seconds; `PARTLOG_BENCH_SMALL=1` does the same under
//! `cargo bench`.

use std::cell::OnceCell;
use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use partlog::batch::{BatchBuilder, RecordBatch};
use partlog::{Config, Log};

#[path = "common/mod.rs"]
mod common;
use common::{
    batch_of, build, first_segment, records, size_label, tempdir, timed_appends, touch, value, Rng,
    Scale, MIB, READ_CHUNK, TS0,
};
use tempfile::TempDir;

const KIB: u64 = 1 << 10;

// -------------------------------------------------------------------------------------------
// Sizes.

impl Scale {
    /// A fresh append target is started (untimed) once this many bytes went into one.
    fn recycle_bytes(self) -> u64 {
        self.pick(512 * MIB, 16 * MIB)
    }
    fn sequential_bytes(self) -> u64 {
        self.pick(
            env_mib("PARTLOG_BENCH_SEQ_MIB").unwrap_or(256) * MIB,
            4 * MIB,
        )
    }
    fn random_records(self) -> u64 {
        self.pick(1_000_000, 10_000)
    }
    fn recovery_bytes(self) -> u64 {
        // Just under one default segment, so that all of it is in the active segment.
        self.pick(
            env_mib("PARTLOG_BENCH_RECOVERY_MIB").map_or(1024 * MIB - 64 * KIB, |m| m * MIB),
            8 * MIB,
        )
    }
    fn clean_open_segments(self) -> u64 {
        self.pick(10_000, 50)
    }
    fn concurrent_prefix(self) -> u64 {
        self.pick(64 * MIB, 2 * MIB)
    }
}

fn env_mib(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

// -------------------------------------------------------------------------------------------
// Data.

fn raw_file(dir: &Path) -> File {
    File::options()
        .create_new(true)
        .write(true)
        .open(dir.join("raw.log"))
        .expect("create raw file")
}

// -------------------------------------------------------------------------------------------
// append / append_flush

fn append(c: &mut Criterion, scale: Scale, flush: bool) {
    let mut group = c.benchmark_group(if flush { "append_flush" } else { "append" });
    let recycle = scale.recycle_bytes();
    for value_size in [100usize, 1024] {
        for n in [1usize, 100, 1000] {
            let v = value(value_size, 1);
            let recs = records(n, &v, TS0);
            let batch = build(&recs);
            let bytes = batch.as_bytes().clone();
            let size = bytes.len() as u64;
            let param = format!("{}x{n}", size_label(value_size));
            group.throughput(Throughput::Bytes(size));
            let config = Config::default();
            let open = |dir: &Path| Log::open(dir, config.clone()).expect("open");
            group.bench_function(BenchmarkId::new("partlog_append", &param), |b| {
                b.iter_custom(|iters| {
                    timed_appends(
                        iters,
                        size,
                        recycle,
                        open,
                        |log| {
                            log.append(&recs).expect("append");
                            if flush {
                                log.flush().expect("flush");
                            }
                        },
                        Log::abandon,
                    )
                })
            });
            group.bench_function(BenchmarkId::new("partlog_append_batch", &param), |b| {
                b.iter_custom(|iters| {
                    timed_appends(
                        iters,
                        size,
                        recycle,
                        open,
                        |log| {
                            log.append_batch(&batch).expect("append_batch");
                            if flush {
                                log.flush().expect("flush");
                            }
                        },
                        Log::abandon,
                    )
                })
            });
            // The same batch from an idempotent producer (issue 20): each append is checked
            // against the producer's state and updates it. Each append needs its own batch (the
            // sequence moves on), so a log takes at most 32 MiB here and its batches are built
            // up front; `partlog_append_batch_many` appends as many distinct batches with no
            // producer id, the baseline with the same memory traffic.
            let idem_recycle = recycle.min(32 * MIB);
            let many = |producer: bool| -> Vec<RecordBatch> {
                (0..(idem_recycle / size).max(1))
                    .map(|j| {
                        let mut b = BatchBuilder::new();
                        if producer {
                            b = b.producer(1, 0, (j as usize * n) as i32);
                        }
                        for r in &recs {
                            b.push(r).expect("push");
                        }
                        b.build().expect("build")
                    })
                    .collect()
            };
            for (name, list) in [
                ("partlog_append_batch_many", many(false)),
                ("partlog_append_batch_idempotent", many(true)),
            ] {
                group.bench_function(BenchmarkId::new(name, &param), |b| {
                    b.iter_custom(|iters| {
                        timed_appends(
                            iters,
                            size,
                            idem_recycle,
                            |dir| (open(dir), 0usize),
                            |(log, i)| {
                                let info = log.append_batch(&list[*i]).expect("append_batch");
                                debug_assert!(!info.duplicate);
                                *i += 1;
                                if flush {
                                    log.flush().expect("flush");
                                }
                            },
                            |(log, _)| log.abandon(),
                        )
                    })
                });
            }
            group.bench_function(BenchmarkId::new("raw_write", &param), |b| {
                b.iter_custom(|iters| {
                    timed_appends(
                        iters,
                        size,
                        recycle,
                        raw_file,
                        |f| {
                            f.write_all(&bytes).expect("write");
                            if flush {
                                f.sync_data().expect("sync_data");
                            }
                        },
                        drop,
                    )
                })
            });
            if !flush && value_size == 1024 && n == 100 {
                // Small segments: every 64 MiB the segment rolls (trim, msync, fsync) inside
                // the measurement.
                let small = Config {
                    segment_bytes: 64 << 20,
                    ..Config::default()
                };
                group.bench_function(
                    BenchmarkId::new("partlog_append_batch_seg64MiB", &param),
                    |b| {
                        b.iter_custom(|iters| {
                            timed_appends(
                                iters,
                                size,
                                recycle,
                                |dir| Log::open(dir, small.clone()).expect("open"),
                                |log| {
                                    log.append_batch(&batch).expect("append_batch");
                                },
                                Log::abandon,
                            )
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// sequential_read

/// A closed log of 1 KiB records in batches of 16 (~16.5 KiB, a Kafka producer's default
/// `batch.size`), in one segment.
struct SeqLog {
    dir: TempDir,
    size: u64,
    log_end_offset: i64,
}

fn build_seq_log(target: u64) -> SeqLog {
    let dir = tempdir();
    let log = Log::open(dir.path(), Config::default()).expect("open");
    let batch = batch_of(16, 1024, TS0);
    while log.size() < target {
        log.append_batch(&batch).expect("append");
    }
    let size = log.size();
    let log_end_offset = log.log_end_offset();
    log.close().expect("close");
    SeqLog {
        dir,
        size,
        log_end_offset,
    }
}

/// Reads `[0, end)` through `read(next, 1 MiB)`, touching every byte; returns the touch.
fn read_all(log: &Log, end: i64) -> u64 {
    let mut next = 0;
    let mut acc = 0;
    while next < end {
        let r = log.read_up_to(next, READ_CHUNK, end).expect("read");
        acc ^= touch(&r.bytes);
        next = r.next_offset;
    }
    acc
}

/// `pread`s `[0, size)` of `file` in 1 MiB pieces, touching every byte (and CRC-32C'ing it).
fn pread_all(file: &File, size: u64, buf: &mut [u8], crc: bool) -> u64 {
    let mut pos = 0;
    let mut acc = 0;
    while pos < size {
        let n = (size - pos).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], pos).expect("pread");
        acc ^= touch(&buf[..n]);
        if crc {
            acc ^= u64::from(partlog::batch::crc32c(&buf[..n]));
        }
        pos += n as u64;
    }
    acc
}

fn sequential_read(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("sequential_read");
    group.sampling_mode(SamplingMode::Flat);
    let fixture: OnceCell<SeqLog> = OnceCell::new();
    let fx = || fixture.get_or_init(|| build_seq_log(scale.sequential_bytes()));
    let param = format!("{}MiB", scale.sequential_bytes() / MIB);
    // Throughput needs the size before the fixture exists; it is within one batch of this.
    group.throughput(Throughput::Bytes(scale.sequential_bytes()));
    for verify in [true, false] {
        let log: OnceCell<Log> = OnceCell::new();
        let name = if verify {
            "partlog_crc"
        } else {
            "partlog_nocrc"
        };
        group.bench_function(BenchmarkId::new(name, &param), |b| {
            let fx = fx();
            let log = log.get_or_init(|| {
                let config = Config {
                    verify_crc_on_read: verify,
                    ..Config::default()
                };
                Log::open(fx.dir.path(), config).expect("open")
            });
            b.iter(|| read_all(log, fx.log_end_offset))
        });
        drop(log);
    }
    for crc in [false, true] {
        let name = if crc { "raw_pread_crc" } else { "raw_pread" };
        group.bench_function(BenchmarkId::new(name, &param), |b| {
            let fx = fx();
            let file = File::open(first_segment(fx.dir.path())).expect("open");
            let mut buf = vec![0u8; READ_CHUNK];
            b.iter(|| pread_all(&file, fx.size, &mut buf, crc))
        });
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// random_read

/// A closed log of `records` records of 100 B, `per_batch` to a batch, record `o` stamped
/// `TS0 + o`; and every batch's (base offset, position, size), the baseline's perfect index.
struct RandomLog {
    dir: TempDir,
    records: i64,
    batches: Vec<(i64, u64, usize)>,
}

fn build_random_log(records: u64, per_batch: usize) -> RandomLog {
    let dir = tempdir();
    let log = Log::open(dir.path(), Config::default()).expect("open");
    let v = value(100, 3);
    let mut batches = Vec::new();
    let mut next = 0i64;
    while (next as u64) < records {
        let mut b = BatchBuilder::with_capacity(per_batch * 120 + 64);
        for i in 0..per_batch {
            b.push_parts(TS0 + next + i as i64, None, Some(&v), &[])
                .expect("push");
        }
        let info = log
            .append_batch(&b.build().expect("build"))
            .expect("append");
        batches.push((info.first_offset, info.position, info.size));
        next = info.last_offset + 1;
    }
    log.close().expect("close");
    RandomLog {
        dir,
        records: next,
        batches,
    }
}

fn random_read(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("random_read");
    group.throughput(Throughput::Elements(1));
    let n = scale.random_records();
    for per_batch in [10usize, 1] {
        let fixture: OnceCell<RandomLog> = OnceCell::new();
        let fx = || fixture.get_or_init(|| build_random_log(n, per_batch));
        let param = format!("{}rec_{per_batch}perbatch", n);
        for verify in [true, false] {
            let log: OnceCell<Log> = OnceCell::new();
            let name = if verify {
                "partlog_read_crc"
            } else {
                "partlog_read_nocrc"
            };
            group.bench_function(BenchmarkId::new(name, &param), |b| {
                let fx = fx();
                let log = log.get_or_init(|| {
                    let config = Config {
                        verify_crc_on_read: verify,
                        ..Config::default()
                    };
                    Log::open(fx.dir.path(), config).expect("open")
                });
                let mut rng = Rng(0x1234_5678);
                let records = fx.records as u64;
                b.iter(|| {
                    let offset = rng.below(records) as i64;
                    log.read(offset, 1).expect("read")
                })
            });
            if verify {
                group.bench_function(
                    BenchmarkId::new("partlog_offset_for_timestamp", &param),
                    |b| {
                        let fx = fx();
                        let log = log.get_or_init(|| {
                            Log::open(fx.dir.path(), Config::default()).expect("open")
                        });
                        let mut rng = Rng(0x8765_4321);
                        let records = fx.records as u64;
                        b.iter(|| {
                            let ts = TS0 + rng.below(records) as i64;
                            log.offset_for_timestamp(ts).expect("lookup")
                        })
                    },
                );
            }
            drop(log);
        }
        group.bench_function(BenchmarkId::new("baseline_index_pread", &param), |b| {
            let fx = fx();
            let file = File::open(first_segment(fx.dir.path())).expect("open");
            let mut buf = vec![0u8; 1 << 16];
            let mut rng = Rng(0x1234_5678);
            let records = fx.records as u64;
            b.iter(|| {
                let offset = rng.below(records) as i64;
                let i = fx.batches.partition_point(|e| e.0 <= offset) - 1;
                let (_, pos, size) = fx.batches[i];
                file.read_exact_at(&mut buf[..size], pos).expect("pread");
                buf[size - 1]
            })
        });
        group.bench_function(BenchmarkId::new("baseline_timestamp_search", &param), |b| {
            let fx = fx();
            let timestamps: Vec<i64> = (0..fx.records).map(|o| TS0 + o).collect();
            let mut rng = Rng(0x8765_4321);
            let records = fx.records as u64;
            b.iter(|| {
                let ts = TS0 + rng.below(records) as i64;
                timestamps.partition_point(|&t| t < ts)
            })
        });
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// recovery / clean_open

/// An abandoned log: `size` bytes of 16 KiB batches after a recovery point of 0, synced to
/// disk (so that every timed open finds the same clean page cache).
struct CrashedLog {
    dir: TempDir,
    size: u64,
}

fn build_crashed_log(target: u64) -> CrashedLog {
    let dir = tempdir();
    let log = Log::open(dir.path(), Config::default()).expect("open");
    let batch = batch_of(16, 1024, TS0);
    while log.size() + batch.size() as u64 <= target {
        log.append_batch(&batch).expect("append");
    }
    let size = log.size();
    log.abandon();
    File::open(first_segment(dir.path()))
        .and_then(|f| f.sync_all())
        .expect("sync");
    CrashedLog { dir, size }
}

/// A cleanly closed log of `segments` segments of 4 batches of 10 x 100 B records, written
/// through the API. Every roll syncs several files, which costs minutes on a virtual disk, so
/// the log is written on tmpfs (`/dev/shm`, where fsync is free) when there is one and then
/// copied file by file into the benchmark's directory: the same bytes, on the file system
/// under test.
fn build_many_segments(segments: u64, config: &Config) -> TempDir {
    let shm = Path::new("/dev/shm");
    let build_dir = if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir")
    } else {
        tempdir()
    };
    let log = Log::open(build_dir.path(), config.clone()).expect("open");
    let batch = batch_of(10, 100, TS0);
    while (log.segment_count() as u64) < segments {
        for _ in 0..4 {
            log.append_batch(&batch).expect("append");
        }
        log.roll_now().expect("roll");
    }
    log.close().expect("close");
    if !shm.is_dir() {
        return build_dir;
    }
    let dir = tempdir();
    for entry in std::fs::read_dir(build_dir.path()).expect("list") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    File::open(dir.path())
        .and_then(|d| d.sync_all())
        .expect("sync dir");
    dir
}

const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";

fn recovery(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("recovery");
    group.sampling_mode(SamplingMode::Flat);
    let target = scale.recovery_bytes();
    let fixture: OnceCell<CrashedLog> = OnceCell::new();
    let fx = || fixture.get_or_init(|| build_crashed_log(target));
    let param = format!("{}MiB", target.div_ceil(MIB));
    group.throughput(Throughput::Bytes(target));
    group.bench_function(BenchmarkId::new("partlog_unclean_open", &param), |b| {
        let fx = fx();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Back to "crashed with recovery point 0": recovery moves it to the end.
                let _ = std::fs::remove_file(fx.dir.path().join(RECOVERY_POINT_FILE));
                let start = Instant::now();
                let log = Log::open(fx.dir.path(), Config::default()).expect("open");
                total += start.elapsed();
                let report = log.open_report();
                assert!(!report.clean && report.truncated.is_none());
                assert_eq!(report.bytes_recovered, fx.size);
                log.abandon();
            }
            total
        })
    });
    // The same open with the producer snapshots gone: the producer state is rebuilt by a walk
    // of every batch header (issue 20) instead of loaded from the snapshot at the log end.
    group.bench_function(
        BenchmarkId::new("partlog_unclean_open_no_producer_snapshot", &param),
        |b| {
            let fx = fx();
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let _ = std::fs::remove_file(fx.dir.path().join(RECOVERY_POINT_FILE));
                    for e in std::fs::read_dir(fx.dir.path()).expect("list") {
                        let path = e.expect("entry").path();
                        if path.extension().is_some_and(|x| x == "snapshot") {
                            std::fs::remove_file(path).expect("remove");
                        }
                    }
                    let start = Instant::now();
                    let log = Log::open(fx.dir.path(), Config::default()).expect("open");
                    total += start.elapsed();
                    log.abandon();
                }
                total
            })
        },
    );
    for crc in [false, true] {
        let name = if crc { "raw_pread_crc" } else { "raw_pread" };
        group.bench_function(BenchmarkId::new(name, &param), |b| {
            let fx = fx();
            let file = File::open(first_segment(fx.dir.path())).expect("open");
            let mut buf = vec![0u8; READ_CHUNK];
            b.iter(|| pread_all(&file, fx.size, &mut buf, crc))
        });
    }
    drop(fixture);

    // Clean open of many small segments.
    let segments = scale.clean_open_segments();
    let small = Config {
        segment_bytes: 64 << 10,
        segment_index_bytes: 4096,
        ..Config::default()
    };
    let fixture: OnceCell<TempDir> = OnceCell::new();
    let fx = || fixture.get_or_init(|| build_many_segments(segments, &small));
    let param = format!("{segments}segments");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("partlog_clean_open", &param), |b| {
        let dir = fx();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let log = Log::open(dir.path(), small.clone()).expect("open");
                total += start.elapsed();
                assert!(log.open_report().clean);
                assert_eq!(log.segment_count() as u64, segments);
                log.close().expect("close");
            }
            total
        })
    });
    group.bench_function(BenchmarkId::new("baseline_list_and_stat", &param), |b| {
        let dir = fx();
        b.iter(|| {
            let mut total = 0u64;
            for entry in std::fs::read_dir(dir.path()).expect("list") {
                total += entry.expect("entry").metadata().expect("stat").len();
            }
            total
        })
    });
    group.finish();
}

// -------------------------------------------------------------------------------------------
// concurrent

fn concurrent(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("concurrent");
    group.sampling_mode(SamplingMode::Flat);
    let prefix_target = scale.concurrent_prefix();
    let dir = tempdir();
    let log = Arc::new(Log::open(dir.path(), Config::default()).expect("open"));
    let batch = batch_of(16, 1024, TS0);
    let stop = Arc::new(AtomicBool::new(false));
    let mut prefix: Option<(i64, u64)> = None;
    let mut writer = None;
    let mut setup = || -> (i64, u64) {
        *prefix.get_or_insert_with(|| {
            while log.size() < prefix_target {
                log.append_batch(&batch).expect("append");
            }
            let end = (log.log_end_offset(), log.size());
            // The writer: one 16 KiB batch per millisecond (~16 MB/s) until the group ends.
            let (log, stop, batch) = (Arc::clone(&log), Arc::clone(&stop), batch.clone());
            writer = Some(std::thread::spawn(move || {
                let mut appended = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    log.append_batch(&batch).expect("writer append");
                    appended += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                appended
            }));
            end
        })
    };
    let param_bytes = prefix_target;
    for readers in [1u64, 2, 4] {
        let param = format!("{readers}readers");
        group.throughput(Throughput::Bytes(readers * param_bytes));
        group.bench_function(BenchmarkId::new("partlog_read", &param), |b| {
            let (end, _) = setup();
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..readers {
                        s.spawn(|| {
                            for _ in 0..iters {
                                black_box(read_all(&log, end));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
        group.bench_function(BenchmarkId::new("raw_pread", &param), |b| {
            let (_, size) = setup();
            let path = first_segment(dir.path());
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..readers {
                        s.spawn(|| {
                            let file = File::open(&path).expect("open");
                            let mut buf = vec![0u8; READ_CHUNK];
                            for _ in 0..iters {
                                black_box(pread_all(&file, size, &mut buf, false));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
    stop.store(true, Ordering::Relaxed);
    if let Some(w) = writer {
        let appended = w.join().expect("writer");
        eprintln!("concurrent: the writer appended {appended} batches meanwhile");
    }
    drop(log);
}

fn main() {
    let scale = Scale::detect();
    let mut c = common::criterion();
    append(&mut c, scale, false);
    append(&mut c, scale, true);
    sequential_read(&mut c, scale);
    random_read(&mut c, scale);
    recovery(&mut c, scale);
    concurrent(&mut c, scale);
    c.final_summary();
}
