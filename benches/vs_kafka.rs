//! partlog's side of the comparison with Kafka 4.4's log layer (issue 21). The Kafka side is the
//! JMH benchmark `interop/kafka/src/jmh/java/partlog/bench/VsKafka.java`, which runs the same
//! rows on the same bytes through `UnifiedLog`; `benches/vs-kafka.sh` runs both and prints the
//! ratio per row. See BENCHMARKS.md, section "Against Kafka's log layer".
//!
//! Every row is a group `vs_kafka_<row>` with one function, `partlog`, whose parameter names the
//! case; the JMH method and `@Param` of the same name measure the Kafka side. Records have null
//! keys, no headers, timestamps `TS0 + offset` (appends: `TS0 + i` within the batch) and values
//! from the same xorshift generator (seed 1) as the Java side, so both logs hold the same bytes.
//!
//! Rows:
//! - `append` / `append_flush`: one pre-built batch (1 x 100 B, 100 x 100 B, 100 x 1 KiB
//!   records) appended as the leader at epoch 0 (offsets assigned, the batch validated:
//!   `append_batches(.., AppendOrigin::Leader)`, Kafka's `appendAsLeader`), with `flush()` after
//!   every batch in `append_flush` (Kafka: `flush(false)`). A fresh log every 512 MiB (untimed).
//!   `raw_write` (both groups) is the floor: the same bytes `write`n at the end of a plain file
//!   (`sync_data` after each in `append_flush`), nothing checked or indexed.
//! - `follower`: the same batches appended as a follower (`AppendOrigin::Follower`, Kafka's
//!   `appendAsFollower`), each with its base offset set in place to the log end first.
//! - `consume`: the whole log of 100 B records, 100 to a batch, read front to back in 1 MiB
//!   reads, the batch CRC checked, every record decoded and every value byte touched.
//! - `read_record`: one record by a random offset (batches of 1, 10, 100 records), its batch's
//!   CRC checked, its value touched. `offset_for_timestamp`: a random timestamp, batches of 10.
//! - `recovery`: open after a crash (no recovery point, no producer snapshot) of a log of
//!   16 x 1 KiB batches; `clean_open`: open a cleanly closed log of many 4-batch segments;
//!   `retention`: size-based retention deleting 100 of 150 segments; `truncate`: cut the last
//!   1,000 of 10,000 batches (10 x 100 B) in the active segment. Each iteration starts from a
//!   fresh copy of the fixture (untimed).
//!
//! Sizes: `VS_KAFKA_FULL=1` the full ones (1M records, 1 GiB recovery, 10,000 segments),
//! otherwise the quick ones (200k records, 128 MiB, 1,000 segments); under `cargo test
//! --benches` (no `--bench`) or `PARTLOG_BENCH_SMALL` tiny ones.

use std::cell::OnceCell;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use partlog::batch::{set_base_offset, BatchBuilder, RecordBatch};
use partlog::log::AppendOrigin;
use partlog::{Config, Log};
use tempfile::TempDir;

#[path = "common/mod.rs"]
mod common;
use common::{build, records, tempdir, timed_appends, touch, value, Rng, MIB, READ_CHUNK, TS0};

/// Which sizes: the quick or full comparison run, or the smoke test of `cargo test`.
#[derive(Clone, Copy)]
enum Size {
    Tiny,
    Quick,
    Full,
}

impl Size {
    fn detect() -> Size {
        if !common::Scale::detect().full {
            Size::Tiny
        } else if std::env::var_os("VS_KAFKA_FULL").is_some_and(|v| v == "1") {
            Size::Full
        } else {
            Size::Quick
        }
    }
    fn pick<T>(self, tiny: T, quick: T, full: T) -> T {
        match self {
            Size::Tiny => tiny,
            Size::Quick => quick,
            Size::Full => full,
        }
    }
    fn recycle_bytes(self) -> u64 {
        self.pick(16 * MIB, 512 * MIB, 512 * MIB)
    }
    fn records(self) -> u64 {
        self.pick(5_000, 200_000, 1_000_000)
    }
    fn recovery_bytes(self) -> u64 {
        self.pick(4 * MIB, 128 * MIB, 1024 * MIB - 64 * 1024)
    }
    fn clean_open_segments(self) -> u64 {
        self.pick(20, 1_000, 10_000)
    }
    /// (segments in the fixture, segments retention deletes)
    fn retention(self) -> (u64, u64) {
        self.pick((15, 10), (150, 100), (150, 100))
    }
    /// (batches in the fixture, batches cut)
    fn truncate(self) -> (u64, u64) {
        self.pick((100, 10), (10_000, 1_000), (10_000, 1_000))
    }
}

const VALUE_SEED: u64 = 1;
const SHAPES: [(usize, usize, &str); 3] = [
    (1, 100, "1x100B"),
    (100, 100, "100x100B"),
    (100, 1024, "100x1KiB"),
];
const LEADER: AppendOrigin = AppendOrigin::Leader { leader_epoch: 0 };

/// A batch of `n` records of `value_size` bytes, timestamps from `ts0`, offsets from 0.
fn batch(n: usize, value_size: usize, ts0: i64) -> RecordBatch {
    build(&records(n, &value(value_size, VALUE_SEED), ts0))
}

/// Copies the files of `from` (flat) into a fresh temp dir on the benches' file system, synced:
/// a timed operation that syncs (a truncation does) must not pay for writing back the copy.
fn copy_dir(from: &Path) -> TempDir {
    let dir = tempdir();
    for entry in std::fs::read_dir(from).expect("list") {
        let entry = entry.expect("entry");
        let to = dir.path().join(entry.file_name());
        std::fs::copy(entry.path(), &to).expect("copy");
    }
    // One syncfs, not an fsync per file: the retention fixture has ~600 files.
    let d = File::open(dir.path()).expect("open dir");
    rustix::fs::syncfs(&d).expect("syncfs");
    dir
}

/// Where fixtures that roll many segments are written: tmpfs when there is one (a roll syncs,
/// which costs minutes on a virtual disk); they are copied to the benches' file system after.
fn build_dir() -> TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("tempdir")
    } else {
        tempdir()
    }
}

// -------------------------------------------------------------------------------------------
// append / append_flush / follower

fn append(c: &mut Criterion, size: Size, flush: bool) {
    let mut group = c.benchmark_group(if flush {
        "vs_kafka_append_flush"
    } else {
        "vs_kafka_append"
    });
    for (n, value_size, label) in SHAPES {
        let batch = batch(n, value_size, TS0);
        if !flush {
            // The same line as Kafka's side prints: benches/vs-kafka.sh checks that both sides
            // append the same bytes (size and CRC of each shape's batch).
            eprintln!(
                "vs_kafka: batch {label}: {} bytes, crc {:08x}",
                batch.size(),
                batch.crc()
            );
        }
        let bytes = batch.size() as u64;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(BenchmarkId::new("partlog", label), |b| {
            b.iter_custom(|iters| {
                timed_appends(
                    iters,
                    bytes,
                    size.recycle_bytes(),
                    |dir| Log::open(dir, Config::default()).expect("open"),
                    |log| {
                        log.append_batches(&batch, LEADER).expect("append");
                        if flush {
                            log.flush().expect("flush");
                        }
                    },
                    Log::abandon,
                )
            })
        });
        // The floor: the same bytes written at the end of a plain file (and synced).
        group.bench_function(BenchmarkId::new("raw_write", label), |b| {
            b.iter_custom(|iters| {
                timed_appends(
                    iters,
                    bytes,
                    size.recycle_bytes(),
                    |dir| File::create_new(dir.join("raw.log")).expect("create raw file"),
                    |f| {
                        f.write_all(batch.as_bytes()).expect("write");
                        if flush {
                            f.sync_data().expect("sync_data");
                        }
                    },
                    drop,
                )
            })
        });
    }
    group.finish();
}

fn follower(c: &mut Criterion, size: Size) {
    let mut group = c.benchmark_group("vs_kafka_follower");
    for (n, value_size, label) in SHAPES {
        let batch = batch(n, value_size, TS0);
        let bytes = batch.size() as u64;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(BenchmarkId::new("partlog", label), |b| {
            b.iter_custom(|iters| {
                timed_appends(
                    iters,
                    bytes,
                    size.recycle_bytes(),
                    |dir| {
                        let log = Log::open(dir, Config::default()).expect("open");
                        (log, BytesMut::from(&batch.as_bytes()[..]))
                    },
                    |(log, buf)| {
                        // As replication delivers it: the leader's batch, at this log's end.
                        set_base_offset(buf, log.log_end_offset()).expect("base offset");
                        // Taken whole (a `split` would leave `buf` sharing the allocation, and
                        // the bytes would be copied back every time), handed over as `Bytes`,
                        // and taken back without a copy once the log is done with them.
                        let frozen: Bytes = std::mem::take(buf).freeze();
                        log.append_batches(&frozen, AppendOrigin::Follower)
                            .expect("append");
                        *buf = frozen
                            .try_into_mut()
                            .unwrap_or_else(|b| BytesMut::from(&b[..]));
                    },
                    |(log, _)| log.abandon(),
                )
            })
        });
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// consume / read_record / offset_for_timestamp

/// A closed log of `records` 100 B records, `per_batch` to a batch, timestamps `TS0 + offset`.
fn read_fixture(records: u64, per_batch: usize) -> TempDir {
    let dir = tempdir();
    let log = Log::open(dir.path(), Config::default()).expect("open");
    let v = value(100, VALUE_SEED);
    let mut written = 0u64;
    while written < records {
        let n = per_batch.min((records - written) as usize);
        let mut b = BatchBuilder::with_capacity(n * 116 + 64);
        for i in 0..n {
            b.push_parts(TS0 + (written + i as u64) as i64, None, Some(&v), &[])
                .expect("push");
        }
        log.append_batches(&b.build().expect("build"), LEADER)
            .expect("append");
        written += n as u64;
    }
    log.close().expect("close");
    dir
}

fn reads(c: &mut Criterion, size: Size) {
    let records = size.records();
    let config = Config::default();
    assert!(config.verify_crc_on_read, "both sides check the CRC");

    let mut group = c.benchmark_group("vs_kafka_consume");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(records * 100));
    group.bench_function(BenchmarkId::new("partlog", "100x100B"), |b| {
        let dir = read_fixture(records, 100);
        let log = Log::open(dir.path(), config.clone()).expect("open");
        b.iter(|| {
            let mut next = 0;
            let mut acc = 0;
            while next < records as i64 {
                let r = log.read(next, READ_CHUNK).expect("read");
                for batch in &r.batches {
                    for record in batch.record_views().expect("uncompressed") {
                        acc ^= touch(record.expect("record").value().unwrap_or_default());
                    }
                }
                next = r.next_offset;
            }
            acc
        });
        log.close().expect("close");
    });
    group.finish();

    let mut group = c.benchmark_group("vs_kafka_read_record");
    group.throughput(Throughput::Elements(1));
    // Built on first use (a filtered run builds only what it measures).
    let ten: OnceCell<TempDir> = OnceCell::new();
    for per_batch in [1usize, 10, 100] {
        let other: OnceCell<TempDir> = OnceCell::new();
        let fixture = || {
            let cell = if per_batch == 10 { &ten } else { &other };
            cell.get_or_init(|| read_fixture(records, per_batch))
        };
        group.bench_function(
            BenchmarkId::new("partlog", format!("{per_batch}perbatch")),
            |b| {
                let log = Log::open(fixture().path(), config.clone()).expect("open");
                let mut rng = Rng(0x1234_5678);
                b.iter(|| {
                    let offset = rng.below(records) as i64;
                    let found = log.read_record(offset).expect("read").expect("present");
                    touch(found.record().value().unwrap_or_default())
                });
                log.close().expect("close");
            },
        );
    }
    group.finish();

    let mut group = c.benchmark_group("vs_kafka_offset_for_timestamp");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("partlog", "10perbatch"), |b| {
        let dir = ten.get_or_init(|| read_fixture(records, 10));
        let log = Log::open(dir.path(), config.clone()).expect("open");
        let mut rng = Rng(0x8765_4321);
        b.iter(|| {
            let ts = TS0 + rng.below(records) as i64;
            log.offset_for_timestamp(ts)
                .expect("lookup")
                .expect("found")
        });
        log.close().expect("close");
    });
    group.finish();
}

// -------------------------------------------------------------------------------------------
// recovery / clean_open / retention / truncate

const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";

/// Times `op` on `iters` fresh states made by `setup` (untimed); `done` ends each (untimed).
fn timed_each<S, R>(
    iters: u64,
    mut setup: impl FnMut() -> S,
    mut op: impl FnMut(&mut S) -> R,
    mut done: impl FnMut(S, R),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut state = setup();
        let start = Instant::now();
        let r = op(&mut state);
        total += start.elapsed();
        done(state, r);
    }
    total
}

fn structure(c: &mut Criterion, size: Size) {
    // Recovery: 16 x 1 KiB batches after a crash, in the one (active) segment.
    let mut group = c.benchmark_group("vs_kafka_recovery");
    group.sampling_mode(SamplingMode::Flat);
    let target = size.recovery_bytes();
    group.throughput(Throughput::Bytes(target));
    group.bench_function(BenchmarkId::new("partlog", "unclean_open"), |b| {
        let dir = tempdir();
        let log = Log::open(dir.path(), Config::default()).expect("open");
        let batch = batch(16, 1024, TS0);
        while log.size() + batch.size() as u64 <= target {
            log.append_batches(&batch, LEADER).expect("append");
        }
        let bytes = log.size();
        log.abandon();
        File::open(common::first_segment(dir.path()))
            .and_then(|f| f.sync_all())
            .expect("sync");
        b.iter_custom(|iters| {
            timed_each(
                iters,
                || {
                    // Back to "crashed": no recovery point, no producer snapshot.
                    let _ = std::fs::remove_file(dir.path().join(RECOVERY_POINT_FILE));
                    for e in std::fs::read_dir(dir.path()).expect("list") {
                        let path = e.expect("entry").path();
                        if path.extension().is_some_and(|x| x == "snapshot") {
                            std::fs::remove_file(path).expect("remove");
                        }
                    }
                },
                |()| Log::open(dir.path(), Config::default()).expect("open"),
                |(), log| {
                    assert_eq!(log.open_report().bytes_recovered, bytes);
                    log.abandon();
                },
            )
        })
    });
    group.finish();

    // Clean open of many segments of 4 batches (10 x 100 B) each.
    let mut group = c.benchmark_group("vs_kafka_clean_open");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    let small = Config {
        segment_index_bytes: 4096,
        retention_ms: -1,
        ..Config::default()
    };
    let segments = size.clean_open_segments();
    group.bench_function(BenchmarkId::new("partlog", "segments"), |b| {
        let built = many_segments(segments, &small);
        let dir = copy_dir(built.path());
        drop(built);
        b.iter_custom(|iters| {
            timed_each(
                iters,
                || (),
                |()| Log::open(dir.path(), small.clone()).expect("open"),
                |(), log| {
                    assert!(log.open_report().clean);
                    assert_eq!(log.segment_count() as u64, segments + 1);
                    log.close().expect("close");
                },
            )
        })
    });
    group.finish();

    // Retention by size, deleting `delete` of `total` full segments.
    let mut group = c.benchmark_group("vs_kafka_retention");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    let (total, delete) = size.retention();
    group.bench_function(BenchmarkId::new("partlog", "delete100"), |b| {
        let template = many_segments(total, &small);
        let segment_bytes = 4 * batch(10, 100, TS0).size() as i64;
        let config = Config {
            retention_bytes: (total - delete) as i64 * segment_bytes,
            ..small.clone()
        };
        b.iter_custom(|iters| {
            timed_each(
                iters,
                || {
                    let dir = copy_dir(template.path());
                    let log = Log::open(dir.path(), config.clone()).expect("open");
                    (dir, log)
                },
                |(_, log)| log.apply_retention(TS0).expect("retention"),
                |(dir, log), report| {
                    assert_eq!(report.deleted.len() as u64, delete);
                    log.close().expect("close");
                    drop(dir);
                },
            )
        })
    });
    group.finish();

    // Truncation of the last `cut` of `batches` batches of 10 x 100 B, in the active segment.
    let mut group = c.benchmark_group("vs_kafka_truncate");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(1));
    let (batches, cut) = size.truncate();
    group.bench_function(BenchmarkId::new("partlog", "tail1000"), |b| {
        let template = build_dir();
        let log = Log::open(template.path(), Config::default()).expect("open");
        let mut rec = BatchBuilder::new();
        let v = value(100, VALUE_SEED);
        for i in 0..batches * 10 {
            rec.push_parts(TS0 + i as i64, None, Some(&v), &[])
                .expect("push");
            if i % 10 == 9 {
                log.append_batches(&rec.build().expect("build"), LEADER)
                    .expect("append");
                rec = BatchBuilder::new();
            }
        }
        log.close().expect("close");
        let to = ((batches - cut) * 10) as i64;
        b.iter_custom(|iters| {
            timed_each(
                iters,
                || {
                    let dir = copy_dir(template.path());
                    let log = Log::open(dir.path(), Config::default()).expect("open");
                    (dir, log)
                },
                |(_, log)| log.truncate_to(to).expect("truncate"),
                |(dir, log), leo| {
                    assert_eq!(leo, to);
                    log.close().expect("close");
                    drop(dir);
                },
            )
        })
    });
    group.finish();
}

/// A cleanly closed log of `segments` full segments of 4 batches of 10 x 100 B each (and an
/// empty active one), written on tmpfs (see [`build_dir`]).
fn many_segments(segments: u64, config: &Config) -> TempDir {
    let dir = build_dir();
    let log = Log::open(dir.path(), config.clone()).expect("open");
    let v = value(100, VALUE_SEED);
    let mut offset = 0i64;
    for _ in 0..segments {
        for _ in 0..4 {
            let mut b = BatchBuilder::with_capacity(10 * 116 + 64);
            for i in 0..10 {
                b.push_parts(TS0 + offset + i, None, Some(&v), &[])
                    .expect("push");
            }
            offset += 10;
            log.append_batches(&b.build().expect("build"), LEADER)
                .expect("append");
        }
        log.roll_now().expect("roll");
    }
    log.close().expect("close");
    dir
}

fn main() {
    let size = Size::detect();
    let mut c = common::criterion();
    append(&mut c, size, false);
    append(&mut c, size, true);
    follower(&mut c, size);
    reads(&mut c, size);
    structure(&mut c, size);
    c.final_summary();
}
