//! The record path (issue 13): consumers and producers that work record by record, through the
//! public API, against the `commitlog` crate (0.2) and raw file I/O in the same run. See
//! BENCHMARKS.md.
//!
//! Records are 100 B values without keys (the same pseudo-random bytes everywhere).
//!
//! Groups:
//! - `record_sequential`: 1M records, 100 to a batch (partlog) or to an append (commitlog),
//!   read front to back in 1 MiB reads, every value byte touched; throughput in value bytes.
//!   `partlog_views` iterates `RecordBatch::record_views` (CRC checked once per batch by the
//!   read; `_nocrc` with `verify_crc_on_read` off); `partlog_records` iterates the owned
//!   `records()`. `commitlog` iterates the messages of `CommitLog::read` (it copies into a `Vec`
//!   and checks every message's CRC-32C). `raw_pread` reads a file of `[u32 length][value]`
//!   records in 1 MiB `pread`s and walks the lengths: no CRC, no decoding, no allocation.
//! - `record_random_read`: 1M records in batches of 1, 10 and 100; one record by a random
//!   offset per iteration, its value touched. `partlog` is `Log::read_record` (the batch's
//!   CRC checked, then the record found by its length prefix); `commitlog` reads exactly one
//!   message (a `ReadLimit` of its size; CRC checked); `raw_pread` has an in-memory table of
//!   every record's position (a perfect index) and `pread`s the 100 B value: no CRC, no
//!   lookup structure on disk, no decoding. `partlog_dense_index` is `read_record` on a log
//!   indexed at every batch (`index_interval_bytes = 0`, as commitlog indexes every message;
//!   batches of 1 and 10 only: 100-record batches are each indexed already).
//!   `raw_pread_batch_crc` is the floor for any reader that checks a v2 batch's CRC: an
//!   in-memory table of every batch's place (a perfect batch index), a `pread` of the whole
//!   batch from partlog's own segment file, its CRC-32C checked, the 100 B at the record's
//!   known place touched: no index on disk, no walk, no decoding. `mmap_batch_crc` is the
//!   same through a map of that file (no system call, no copy): what bringing a random batch
//!   into the CPU and checking its CRC costs on this machine, the floor under `partlog`.
//! - `record_append`: one 100 B record per append, through every public append API, and the
//!   baselines; throughput in records. See the function for what each one does.

use std::cell::OnceCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use partlog::batch::{BatchBuilder, BorrowedRecord, SimpleRecord};
use partlog::{Config, Log};

#[path = "common/mod.rs"]
mod common;
use common::{
    first_segment, tempdir, timed_appends, touch, value, Rng, Scale, MIB, READ_CHUNK, TS0,
};
use tempfile::TempDir;

/// Bytes of a record value.
const VALUE: usize = 100;
/// commitlog's per-message header.
const COMMITLOG_HEADER: usize = 20;
/// The raw file's per-record header: a little-endian u32 length.
const RAW_HEADER: usize = 4;

fn open_commitlog(dir: &Path) -> CommitLog {
    let mut opts = LogOptions::new(dir);
    opts.message_max_bytes(4 << 20);
    CommitLog::new(opts).expect("commitlog open")
}

fn config(verify_crc_on_read: bool) -> Config {
    Config {
        verify_crc_on_read,
        ..Config::default()
    }
}

/// The same `records` values in partlog (`per_batch` to a batch), commitlog (`per_batch` to an
/// append) and a raw file of `[u32 length][value]` records.
struct Fixture {
    partlog: TempDir,
    /// The same batches in a log indexed at every batch (`index_interval_bytes = 0`), for
    /// batches smaller than the default index interval.
    dense: Option<TempDir>,
    /// Position and size of every batch in the default log's one segment, in offset order: the
    /// perfect batch index of the `raw_pread_batch_crc` floor.
    batches: Vec<(u64, usize)>,
    per_batch: usize,
    commitlog: TempDir,
    _raw_dir: TempDir,
    raw: PathBuf,
    /// Position of every record's value in the raw file: the perfect index.
    raw_index: Vec<u64>,
    records: u64,
}

fn fixture(records: u64, per_batch: usize) -> Fixture {
    let partlog = tempdir();
    // Batches of 100 records (10.8 KB) are each indexed already at the default 4 KiB interval.
    let dense = (per_batch < 100).then(tempdir);
    let dense_log = dense.as_ref().map(|d| {
        let config = Config {
            index_interval_bytes: 0,
            ..Config::default()
        };
        Log::open(d.path(), config).expect("open dense")
    });
    let commitlog = tempdir();
    let raw_dir = tempdir();
    let raw = raw_dir.path().join("records.raw");
    let v = value(VALUE, 5);
    let log = Log::open(partlog.path(), Config::default()).expect("open");
    let mut cl = open_commitlog(commitlog.path());
    let mut file = BufWriter::new(File::create(&raw).expect("raw"));
    let mut raw_index = Vec::with_capacity(records as usize);
    let mut pos = 0u64;
    let mut written = 0u64;
    while written < records {
        let n = per_batch.min((records - written) as usize);
        let mut b = BatchBuilder::with_capacity(n * (VALUE + 16) + 64);
        let mut buf = MessageBuf::default();
        for i in 0..n {
            b.push_parts(TS0 + (written + i as u64) as i64, None, Some(&v), &[])
                .expect("push");
            buf.push(&v).expect("push");
            file.write_all(&(VALUE as u32).to_le_bytes()).expect("raw");
            file.write_all(&v).expect("raw");
            raw_index.push(pos + RAW_HEADER as u64);
            pos += (RAW_HEADER + VALUE) as u64;
        }
        let batch = b.build().expect("build");
        log.append_batch(&batch).expect("append");
        if let Some(d) = &dense_log {
            d.append_batch(&batch).expect("append dense");
        }
        cl.append(&mut buf).expect("append");
        written += n as u64;
    }
    assert_eq!(log.log_end_offset() as u64, cl.next_offset());
    assert_eq!(log.segment_count(), 1, "the batch table reads one segment");
    log.close().expect("close");
    if let Some(d) = dense_log {
        d.close().expect("close dense");
    }
    let segment = std::fs::read(first_segment(partlog.path())).expect("segment");
    let mut batches = Vec::new();
    let mut at = 0;
    while let Some((_, length)) = partlog::batch::peek_frame(&segment[at..]) {
        let size = length as usize + 12;
        batches.push((at as u64, size));
        at += size;
    }
    assert_eq!(batches.len() as u64, records.div_ceil(per_batch as u64));
    cl.flush().expect("flush");
    file.flush().expect("raw");
    Fixture {
        partlog,
        dense,
        batches,
        per_batch,
        commitlog,
        _raw_dir: raw_dir,
        raw,
        raw_index,
        records,
    }
}

// -------------------------------------------------------------------------------------------
// record_sequential

fn record_sequential(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("record_sequential");
    group.sampling_mode(SamplingMode::Flat);
    let records = scale.pick(1_000_000, 10_000);
    let fixture: OnceCell<Fixture> = OnceCell::new();
    let fx = || fixture.get_or_init(|| self::fixture(records, 100));
    let param = format!("{}rec_100B_100perbatch", records);
    group.throughput(Throughput::Bytes(records * VALUE as u64));
    for (name, crc) in [("partlog_views", true), ("partlog_views_nocrc", false)] {
        group.bench_function(BenchmarkId::new(name, &param), |b| {
            let fx = fx();
            let log = Log::open(fx.partlog.path(), config(crc)).expect("open");
            b.iter(|| {
                let mut next = 0;
                let mut acc = 0;
                while next < fx.records as i64 {
                    let r = log.read(next, READ_CHUNK).expect("read");
                    for batch in &r.batches {
                        for record in batch.record_views().expect("uncompressed") {
                            let record = record.expect("record");
                            acc ^= touch(record.value().unwrap_or_default());
                        }
                    }
                    next = r.next_offset;
                }
                acc
            });
            log.close().expect("close");
        });
    }
    group.bench_function(BenchmarkId::new("partlog_records", &param), |b| {
        let fx = fx();
        let log = Log::open(fx.partlog.path(), config(true)).expect("open");
        b.iter(|| {
            let mut next = 0;
            let mut acc = 0;
            while next < fx.records as i64 {
                let r = log.read(next, READ_CHUNK).expect("read");
                for batch in &r.batches {
                    for record in batch.records().expect("uncompressed") {
                        let record = record.expect("record");
                        acc ^= touch(record.value.as_deref().unwrap_or_default());
                    }
                }
                next = r.next_offset;
            }
            acc
        });
        log.close().expect("close");
    });
    group.bench_function(BenchmarkId::new("commitlog", &param), |b| {
        let fx = fx();
        let log = open_commitlog(fx.commitlog.path());
        b.iter(|| {
            let mut next = 0u64;
            let mut acc = 0;
            while next < fx.records {
                let msgs = log
                    .read(next, ReadLimit::max_bytes(READ_CHUNK))
                    .expect("read");
                for m in msgs.iter() {
                    acc ^= touch(m.payload());
                }
                next += msgs.len() as u64;
            }
            acc
        });
    });
    group.bench_function(BenchmarkId::new("raw_pread", &param), |b| {
        let fx = fx();
        let file = File::open(&fx.raw).expect("raw");
        let len = file.metadata().expect("stat").len();
        let mut buf = vec![0u8; READ_CHUNK];
        b.iter(|| {
            let mut pos = 0u64;
            let mut acc = 0;
            while pos < len {
                let n = file.read_at(&mut buf, pos).expect("pread");
                let chunk = &buf[..n];
                let mut at = 0;
                // Whole records of this chunk; a record cut at its end is read again next time.
                while let Some(h) = chunk.get(at..at + RAW_HEADER) {
                    let size = u32::from_le_bytes(h.try_into().expect("4 bytes")) as usize;
                    let Some(value) = chunk.get(at + RAW_HEADER..at + RAW_HEADER + size) else {
                        break;
                    };
                    acc ^= touch(value);
                    at += RAW_HEADER + size;
                }
                pos += at as u64;
            }
            acc
        });
    });
    group.finish();
}

// -------------------------------------------------------------------------------------------
// record_random_read

/// `Log::read_record` of a random offset below `records` per iteration, on the log in `dir`,
/// its value touched.
fn read_records_at_random(
    b: &mut criterion::Bencher<'_>,
    dir: &Path,
    config: Config,
    records: u64,
) {
    let log = Log::open(dir, config).expect("open");
    let mut rng = Rng(0x1234_5678);
    b.iter(|| {
        let offset = rng.below(records) as i64;
        let found = log.read_record(offset).expect("read").expect("present");
        touch(found.record().value().unwrap_or_default())
    });
    log.close().expect("close");
}

/// The floors' work on a whole batch of `per_batch` records: its CRC-32C checked against the
/// stored one, then the 100 B at the known place of its `record`-th record touched (found by
/// arithmetic, not searched for: the records are all the same size).
fn check_and_touch(batch: &[u8], record: usize, per_batch: usize) -> u64 {
    let stored = u32::from_be_bytes(batch[17..21].try_into().expect("4 bytes"));
    assert_eq!(partlog::batch::compute_crc(batch), stored, "crc");
    let value_at = 61 + record * (batch.len() - 61) / per_batch;
    touch(&batch[value_at..value_at + VALUE])
}

fn record_random_read(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("record_random_read");
    group.throughput(Throughput::Elements(1));
    let records = scale.pick(1_000_000, 10_000);
    for per_batch in [1usize, 10, 100] {
        let fixture: OnceCell<Fixture> = OnceCell::new();
        let fx = || fixture.get_or_init(|| self::fixture(records, per_batch));
        let param = format!("{records}rec_100B_{per_batch}perbatch");
        for (name, crc) in [("partlog", true), ("partlog_nocrc", false)] {
            group.bench_function(BenchmarkId::new(name, &param), |b| {
                let fx = fx();
                read_records_at_random(b, fx.partlog.path(), config(crc), fx.records)
            });
        }
        if per_batch < 100 {
            group.bench_function(BenchmarkId::new("partlog_dense_index", &param), |b| {
                let fx = fx();
                let dir = fx.dense.as_ref().expect("dense log");
                let config = Config {
                    index_interval_bytes: 0,
                    ..config(true)
                };
                read_records_at_random(b, dir.path(), config, fx.records)
            });
        }
        group.bench_function(BenchmarkId::new("raw_pread_batch_crc", &param), |b| {
            let fx = fx();
            let file = File::open(first_segment(fx.partlog.path())).expect("segment");
            let mut buf = vec![0u8; fx.batches.iter().map(|b| b.1).max().unwrap_or(0)];
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let offset = rng.below(fx.records) as usize;
                let (at, size) = fx.batches[offset / fx.per_batch];
                let batch = &mut buf[..size];
                file.read_exact_at(batch, at).expect("pread");
                check_and_touch(batch, offset % fx.per_batch, fx.per_batch)
            })
        });
        group.bench_function(BenchmarkId::new("mmap_batch_crc", &param), |b| {
            let fx = fx();
            let file = File::open(first_segment(fx.partlog.path())).expect("segment");
            // SAFETY: the fixture's segment file is closed by partlog and nothing writes or
            // truncates it while this map lives (the bench owns the directory).
            let map = unsafe { memmap2::Mmap::map(&file) }.expect("mmap");
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let offset = rng.below(fx.records) as usize;
                let (at, size) = fx.batches[offset / fx.per_batch];
                let batch = &map[at as usize..at as usize + size];
                check_and_touch(batch, offset % fx.per_batch, fx.per_batch)
            })
        });
        group.bench_function(BenchmarkId::new("commitlog", &param), |b| {
            let fx = fx();
            let log = open_commitlog(fx.commitlog.path());
            let limit = ReadLimit::max_bytes(VALUE + COMMITLOG_HEADER);
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let msgs = log.read(rng.below(fx.records), limit).expect("read");
                let m = msgs.iter().next().expect("one message");
                touch(m.payload())
            })
        });
        group.bench_function(BenchmarkId::new("raw_pread", &param), |b| {
            let fx = fx();
            let file = File::open(&fx.raw).expect("raw");
            let mut buf = [0u8; VALUE];
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let at = fx.raw_index[rng.below(fx.records) as usize];
                file.read_exact_at(&mut buf, at).expect("pread");
                touch(&buf)
            })
        });
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// record_append

/// One 100 B record per append:
/// - `partlog_append`: `Log::append(&[SimpleRecord])` of a record made once (its value a
///   `Bytes` shared by every append: what the API itself costs);
/// - `partlog_append_copying`: the same, but each append first makes its `SimpleRecord` from
///   the caller's `&[u8]` (`Bytes::copy_from_slice`: an allocation and a copy), as a producer
///   holding borrowed bytes must;
/// - `partlog_append_records`: `Log::append_records(&[BorrowedRecord])` of the caller's
///   `&[u8]`;
/// - `partlog_builder_append_batch`: `BatchBuilder::push_parts` + `build` + `append_batch`
///   (which validates the batch again);
/// - `commitlog`: `CommitLog::append_msg(&[u8])` (one `write` per append, CRC-32C computed);
/// - `raw_write`: `write_all` of the 100 B to a `File` (one `write` per record, unbuffered;
///   no framing, no CRC, no index).
fn record_append(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("record_append");
    group.throughput(Throughput::Elements(1));
    let recycle = scale.pick(512 * MIB, 16 * MIB);
    let v = value(VALUE, 1);
    let vs: &[u8] = &v;
    // The bigger on-disk size of a record decides when to recycle.
    let disk = (VALUE + 61 + 10) as u64;
    let param = "100B";
    let open_partlog = |dir: &Path| Log::open(dir, Config::default()).expect("open");
    let discard = |log: Log| log.abandon();
    group.bench_function(BenchmarkId::new("partlog_append", param), |b| {
        let record = SimpleRecord::new(TS0, None::<Bytes>, Some(v.clone()));
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                disk,
                recycle,
                open_partlog,
                |log| {
                    log.append(std::slice::from_ref(&record)).expect("append");
                },
                discard,
            )
        })
    });
    group.bench_function(BenchmarkId::new("partlog_append_copying", param), |b| {
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                disk,
                recycle,
                open_partlog,
                |log| {
                    let record =
                        SimpleRecord::new(TS0, None::<Bytes>, Some(Bytes::copy_from_slice(vs)));
                    log.append(&[record]).expect("append");
                },
                discard,
            )
        })
    });
    group.bench_function(BenchmarkId::new("partlog_append_records", param), |b| {
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                disk,
                recycle,
                open_partlog,
                |log| {
                    log.append_records(&[BorrowedRecord::new(TS0, None, Some(vs))])
                        .expect("append");
                },
                discard,
            )
        })
    });
    group.bench_function(
        BenchmarkId::new("partlog_builder_append_batch", param),
        |b| {
            b.iter_custom(|iters| {
                timed_appends(
                    iters,
                    disk,
                    recycle,
                    open_partlog,
                    |log| {
                        let mut builder = BatchBuilder::with_capacity(VALUE + 80);
                        builder.push_parts(TS0, None, Some(vs), &[]).expect("push");
                        log.append_batch(&builder.build().expect("build"))
                            .expect("append");
                    },
                    discard,
                )
            })
        },
    );
    group.bench_function(BenchmarkId::new("commitlog", param), |b| {
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                disk,
                recycle,
                open_commitlog,
                |log| {
                    log.append_msg(vs).expect("append");
                },
                drop,
            )
        })
    });
    group.bench_function(BenchmarkId::new("raw_write", param), |b| {
        b.iter_custom(|iters| {
            timed_appends(
                iters,
                disk,
                recycle,
                |dir| File::create(dir.join("raw")).expect("raw"),
                |file| file.write_all(vs).expect("write"),
                drop,
            )
        })
    });
    group.finish();
}

fn main() {
    let scale = Scale::detect();
    let mut c = common::criterion();
    record_append(&mut c, scale);
    record_random_read(&mut c, scale);
    record_sequential(&mut c, scale);
    c.final_summary();
}
