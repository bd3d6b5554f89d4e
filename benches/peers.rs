//! partlog against the `commitlog` crate (0.2), the maintained embeddable Rust peer, on
//! identical records in the same run. See BENCHMARKS.md.
//!
//! Both get the same record values (no keys), the same counts per append, and the same flush
//! policy; throughput is counted in record payload bytes, since the two formats frame records
//! differently (commitlog: a 20-byte header per message; partlog: a 61-byte batch header plus
//! ~7 bytes per record).
//!
//! Groups:
//! - `peers_append`: values of 100 B and 1 KiB, 1, 100 and 1000 records per append, built from
//!   the raw values on every append (`Log::append` / `MessageBuf::push` + `CommitLog::append`).
//!   `/flush` variants flush after every append. commitlog's `flush()` does not fsync the segment
//!   file (it calls `File::flush`, a no-op for a `File`, and msyncs only whole index pages), so
//!   `commitlog_fsync` adds the `fdatasync` of its segment file that durability needs.
//! - `peers_sequential_read`: a ~256 MiB log of 1 KiB values, 16 per append, read front to back
//!   in 1 MiB reads with every byte touched; both check CRCs (commitlog always does).
//! - `peers_random_read`: 1M records of 100 B, 10 or 1 per append; one random offset per read.
//!   commitlog reads exactly one message; partlog returns the whole batch holding the offset
//!   (`partlog_read`) or also walks to the record (`partlog_read_record`).
//! - commitlog has no time index (`offset_for_timestamp` has no counterpart), no recovery scan
//!   and no concurrent readers (`append` takes `&mut self`), so those groups have no peer.
//!
//! Before the groups, a torn-tail comparison runs once and prints a table: N records, flush,
//! cut the last record short in the file, reopen, append, read everything back.

use std::cell::OnceCell;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use bytes::Bytes;
use commitlog::message::{MessageBuf, MessageSet};
use commitlog::{CommitLog, LogOptions, ReadLimit};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use partlog::batch::{BatchBuilder, SimpleRecord};
use partlog::{Config, Log};

#[path = "common/mod.rs"]
mod common;
use common::{
    first_segment, records, size_label, tempdir, timed_appends, touch, value, Rng, Scale, MIB,
    READ_CHUNK, TS0,
};
use tempfile::TempDir;

/// commitlog's per-message header.
const COMMITLOG_HEADER: usize = 20;

fn open_commitlog(dir: &Path) -> CommitLog {
    let mut opts = LogOptions::new(dir);
    // Large enough for 1000 x 1 KiB in one append (its default is 1,000,000 bytes).
    opts.message_max_bytes(4 << 20);
    CommitLog::new(opts).expect("commitlog open")
}

/// A partlog log that is dropped as after a crash (no flush, no trim).
struct Crashing(Option<Log>);

impl Drop for Crashing {
    fn drop(&mut self) {
        if let Some(log) = self.0.take() {
            log.abandon();
        }
    }
}

// -------------------------------------------------------------------------------------------
// peers_append

fn peers_append(c: &mut Criterion, scale: Scale) {
    let recycle = scale.pick(512 * MIB, 16 * MIB);
    for flush in [false, true] {
        let mut group = c.benchmark_group(if flush {
            "peers_append_flush"
        } else {
            "peers_append"
        });
        for value_size in [100usize, 1024] {
            for n in [1usize, 100, 1000] {
                let v = value(value_size, 1);
                let recs = records(n, &v, TS0);
                let payload = (n * value_size) as u64;
                // The bigger of the two on-disk sizes decides when to recycle.
                let disk = (n * (value_size + COMMITLOG_HEADER) + 61) as u64;
                let param = format!("{}x{n}", size_label(value_size));
                group.throughput(Throughput::Bytes(payload));
                group.bench_function(BenchmarkId::new("partlog", &param), |b| {
                    b.iter_custom(|iters| {
                        timed_appends(
                            iters,
                            disk,
                            recycle,
                            |dir| Crashing(Some(Log::open(dir, Config::default()).expect("open"))),
                            |log| {
                                let log = log.0.as_ref().expect("open");
                                log.append(&recs).expect("append");
                                if flush {
                                    log.flush().expect("flush");
                                }
                            },
                            drop,
                        )
                    })
                });
                group.bench_function(BenchmarkId::new("commitlog", &param), |b| {
                    b.iter_custom(|iters| {
                        timed_appends(
                            iters,
                            disk,
                            recycle,
                            open_commitlog,
                            |log| {
                                let mut buf = MessageBuf::default();
                                for _ in 0..n {
                                    buf.push(&v).expect("push");
                                }
                                log.append(&mut buf).expect("append");
                                if flush {
                                    log.flush().expect("flush");
                                }
                            },
                            drop,
                        )
                    })
                });
                if flush {
                    group.bench_function(BenchmarkId::new("commitlog_fsync", &param), |b| {
                        b.iter_custom(|iters| {
                            timed_appends(
                                iters,
                                disk,
                                recycle,
                                |dir| {
                                    let log = open_commitlog(dir);
                                    let seg = File::open(first_segment(dir)).expect("segment");
                                    (log, seg)
                                },
                                |(log, seg)| {
                                    let mut buf = MessageBuf::default();
                                    for _ in 0..n {
                                        buf.push(&v).expect("push");
                                    }
                                    log.append(&mut buf).expect("append");
                                    log.flush().expect("flush");
                                    seg.sync_data().expect("fdatasync");
                                },
                                drop,
                            )
                        })
                    });
                }
            }
        }
        group.finish();
    }
}

// -------------------------------------------------------------------------------------------
// peers_sequential_read

struct Pair {
    partlog_dir: TempDir,
    commitlog_dir: TempDir,
    records: i64,
}

/// The same records in both: `records` values of `value_size` bytes, `per_append` to an append.
fn build_pair(records: u64, value_size: usize, per_append: usize) -> Pair {
    let partlog_dir = tempdir();
    let commitlog_dir = tempdir();
    let v = value(value_size, 5);
    let log = Log::open(partlog_dir.path(), Config::default()).expect("open");
    let mut cl = open_commitlog(commitlog_dir.path());
    let mut written = 0u64;
    while written < records {
        let mut b = BatchBuilder::with_capacity(per_append * (value_size + 16) + 64);
        let mut buf = MessageBuf::default();
        for i in 0..per_append {
            b.push_parts(TS0 + (written + i as u64) as i64, None, Some(&v), &[])
                .expect("push");
            buf.push(&v).expect("push");
        }
        log.append_batch(&b.build().expect("build"))
            .expect("append");
        cl.append(&mut buf).expect("append");
        written += per_append as u64;
    }
    assert_eq!(log.log_end_offset() as u64, cl.next_offset());
    log.close().expect("close");
    cl.flush().expect("flush");
    drop(cl);
    Pair {
        partlog_dir,
        commitlog_dir,
        records: written as i64,
    }
}

fn peers_sequential_read(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("peers_sequential_read");
    group.sampling_mode(SamplingMode::Flat);
    let total = scale.pick(256 * MIB, 4 * MIB);
    let records = total / 1024;
    let fixture: OnceCell<Pair> = OnceCell::new();
    let fx = || fixture.get_or_init(|| build_pair(records, 1024, 16));
    let param = format!("{}MiB_1KiBx16", total / MIB);
    group.throughput(Throughput::Bytes(total));
    group.bench_function(BenchmarkId::new("partlog", &param), |b| {
        let fx = fx();
        let log = Log::open(fx.partlog_dir.path(), Config::default()).expect("open");
        b.iter(|| {
            let mut next = 0;
            let mut acc = 0;
            while next < fx.records {
                let r = log.read(next, READ_CHUNK).expect("read");
                acc ^= touch(&r.bytes);
                next = r.next_offset;
            }
            acc
        });
        log.close().expect("close");
    });
    group.bench_function(BenchmarkId::new("commitlog", &param), |b| {
        let fx = fx();
        let log = open_commitlog(fx.commitlog_dir.path());
        b.iter(|| {
            let mut next = 0u64;
            let mut acc = 0;
            while next < fx.records as u64 {
                let msgs = log
                    .read(next, ReadLimit::max_bytes(READ_CHUNK))
                    .expect("read");
                acc ^= touch(msgs.bytes());
                next += msgs.len() as u64;
            }
            acc
        });
    });
    group.finish();
}

// -------------------------------------------------------------------------------------------
// peers_random_read

fn peers_random_read(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("peers_random_read");
    group.throughput(Throughput::Elements(1));
    let n = scale.pick(1_000_000, 10_000);
    for per_append in [10usize, 1] {
        let fixture: OnceCell<Pair> = OnceCell::new();
        let fx = || fixture.get_or_init(|| build_pair(n, 100, per_append));
        let param = format!("{n}rec_100B_{per_append}perappend");
        let log: OnceCell<Log> = OnceCell::new();
        let plog = || {
            log.get_or_init(|| Log::open(fx().partlog_dir.path(), Config::default()).expect("open"))
        };
        group.bench_function(BenchmarkId::new("partlog_read", &param), |b| {
            let (fx, log) = (fx(), plog());
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                log.read(rng.below(fx.records as u64) as i64, 1)
                    .expect("read")
            })
        });
        group.bench_function(BenchmarkId::new("partlog_read_record", &param), |b| {
            let (fx, log) = (fx(), plog());
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let offset = rng.below(fx.records as u64) as i64;
                let r = log.read(offset, 1).expect("read");
                let batch = &r.batches[0];
                let record = batch
                    .records()
                    .expect("records")
                    .map(|r| r.expect("record"))
                    .find(|r| r.offset == offset)
                    .expect("record present");
                touch(record.value.as_deref().unwrap_or(&[]))
            })
        });
        drop(log);
        group.bench_function(BenchmarkId::new("commitlog_read", &param), |b| {
            let fx = fx();
            let log = open_commitlog(fx.commitlog_dir.path());
            let limit = ReadLimit::max_bytes(100 + COMMITLOG_HEADER);
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let msgs = log.read(rng.below(fx.records as u64), limit).expect("read");
                touch(msgs.bytes())
            })
        });
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// Torn tail

/// What one library did with a torn tail.
struct TornOutcome {
    case: &'static str,
    reopen: String,
    end_after_reopen: String,
    appended_at: String,
    read_from_0: String,
    intact: String,
    torn_record: String,
}

impl TornOutcome {
    /// The library did not open the cut log: nothing after the reopen column applies.
    fn failed_to_open(case: &'static str, reopen: String) -> TornOutcome {
        let na = || "-".to_string();
        TornOutcome {
            case,
            reopen,
            end_after_reopen: na(),
            appended_at: na(),
            read_from_0: na(),
            intact: na(),
            torn_record: na(),
        }
    }
}

const TORN_N: usize = 1000;

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// partlog: N one-record batches, the last one flushed or not, a crash (`abandon`) or a clean
/// close, the last batch cut in half, reopen, append, read back.
fn torn_partlog(case: &'static str, flush_last: bool, clean_close: bool) -> TornOutcome {
    let dir = tempdir();
    let v = value(100, 9);
    let log = Log::open(dir.path(), Config::default()).expect("open");
    let mut last = None;
    for i in 0..TORN_N {
        if i == TORN_N - 1 && !flush_last {
            log.flush().expect("flush");
        }
        let rec = SimpleRecord::new(TS0 + i as i64, None::<Bytes>, Some(v.clone()));
        last = Some(log.append(&[rec]).expect("append"));
    }
    if flush_last {
        log.flush().expect("flush");
    }
    if clean_close {
        log.close().expect("close");
    } else {
        log.abandon();
    }
    let last = last.expect("appended");
    let file = File::options()
        .write(true)
        .open(first_segment(dir.path()))
        .expect("segment");
    file.set_len(last.position + last.size as u64 / 2)
        .expect("cut");
    drop(file);

    let log = match Log::open(dir.path(), Config::default()) {
        Ok(l) => l,
        Err(e) => {
            return TornOutcome::failed_to_open(case, format!("error: {e}"));
        }
    };
    let report = log.open_report().clone();
    let reopen = match &report.truncated {
        Some((base, pos, reason)) => format!("cut segment {base} at byte {pos} ({reason})"),
        None => "no cut reported".into(),
    };
    let end_after_reopen = log.log_end_offset().to_string();
    let marker = SimpleRecord::new(TS0 + 5000, None::<Bytes>, Some(&b"after-reopen"[..]));
    let appended_at = match log.append(&[marker]) {
        Ok(info) => info.first_offset.to_string(),
        Err(e) => format!("error: {e}"),
    };
    let mut next = 0;
    let mut count = 0;
    let mut saw_marker = false;
    let mut read_err = None;
    while next < log.log_end_offset() {
        match log.read(next, READ_CHUNK) {
            Ok(r) => {
                for batch in &r.batches {
                    for rec in batch.records().expect("records") {
                        let rec = rec.expect("record");
                        count += 1;
                        saw_marker |= rec.value.as_deref() == Some(&b"after-reopen"[..]);
                    }
                }
                next = r.next_offset;
            }
            Err(e) => {
                read_err = Some(format!("error at {next}: {e}"));
                break;
            }
        }
    }
    let read_from_0 = match read_err {
        Some(e) => e,
        None => format!(
            "ok: {count} records{}",
            if saw_marker {
                ", new one last"
            } else {
                ", new one missing"
            }
        ),
    };
    let torn = (TORN_N - 1) as i64;
    let torn_record = match log.read(torn, 1) {
        Ok(r) if r.is_empty() => "gone (offset is the log end)".into(),
        Ok(r) => {
            let v = r.batches[0]
                .records()
                .ok()
                .and_then(|mut it| it.next())
                .and_then(|r| r.ok())
                .and_then(|r| r.value);
            if v.as_deref() == Some(&b"after-reopen"[..]) {
                "gone; its offset went to the new record".into()
            } else {
                "still readable".into()
            }
        }
        Err(e) => format!("error: {e}"),
    };
    let intact = format!("{} of {}", count.min(TORN_N - 1), TORN_N - 1);
    log.close().expect("close");
    TornOutcome {
        case,
        reopen,
        end_after_reopen,
        appended_at,
        read_from_0,
        intact,
        torn_record,
    }
}

/// commitlog: N one-message appends, flush, drop, the last message cut in half, reopen,
/// append, read back.
fn torn_commitlog() -> TornOutcome {
    let case = "commitlog 0.2: flush, drop";
    let dir = tempdir();
    let v = value(100, 9);
    {
        let mut log = open_commitlog(dir.path());
        for _ in 0..TORN_N {
            log.append_msg(&v).expect("append");
        }
        log.flush().expect("flush");
    }
    let path = first_segment(dir.path());
    let len = std::fs::metadata(&path).expect("stat").len();
    let msg = (100 + COMMITLOG_HEADER) as u64;
    let file = File::options().write(true).open(&path).expect("segment");
    file.set_len(len - msg / 2).expect("cut");
    drop(file);

    let opened = catch_unwind(AssertUnwindSafe(|| {
        let mut opts = LogOptions::new(dir.path());
        opts.message_max_bytes(4 << 20);
        CommitLog::new(opts)
    }));
    let mut log = match opened {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            return TornOutcome::failed_to_open(case, format!("error: {e}"));
        }
        Err(p) => {
            return TornOutcome::failed_to_open(case, format!("panic: {}", panic_text(p)));
        }
    };
    let reopen = "opens, nothing checked or cut".to_string();
    let end_after_reopen = log.next_offset().to_string();
    let appended_at = match log.append_msg(b"after-reopen") {
        Ok(o) => o.to_string(),
        Err(e) => format!("error: {e}"),
    };
    let end = log.next_offset();
    let read_from_0 = match log.read(0, ReadLimit::max_bytes(READ_CHUNK)) {
        Ok(m) => format!("ok: {} records", m.len()),
        Err(e) => format!("error at 0: {e}"),
    };
    // Record by record: how many are intact, and is the new one there?
    let mut intact = 0;
    let mut new_ok = false;
    for o in 0..end {
        if let Ok(m) = log.read(o, ReadLimit::max_bytes(100 + COMMITLOG_HEADER)) {
            if let Some(first) = m.iter().next() {
                if first.offset() == o && first.verify_hash() {
                    if first.payload() == b"after-reopen" {
                        new_ok = true;
                    } else {
                        intact += 1;
                    }
                }
            }
        }
    }
    let read_from_0 = format!(
        "{read_from_0}; record by record: new one {}",
        if new_ok { "readable" } else { "not readable" }
    );
    let torn = (TORN_N - 1) as u64;
    let torn_record = match log.read(torn, ReadLimit::max_bytes(READ_CHUNK)) {
        Ok(m) => match m.iter().next() {
            Some(first) if first.payload() == &v[..] => "still readable".into(),
            Some(_) => "returns other bytes".into(),
            None => "empty read".into(),
        },
        Err(e) => format!("error: {e}"),
    };
    TornOutcome {
        case,
        reopen,
        end_after_reopen,
        appended_at,
        read_from_0,
        intact: format!("{intact} of {}", TORN_N - 1),
        torn_record,
    }
}

fn torn_tail_table() {
    let rows = [
        torn_partlog("partlog: last record unflushed, crash", false, false),
        torn_partlog("partlog: all flushed, crash", true, false),
        torn_partlog("partlog: all flushed, clean close", true, true),
        torn_commitlog(),
    ];
    println!(
        "\nTorn tail: {TORN_N} records of 100 B, one per append; the last one cut in half in the \
         file; reopen; append one record; read back.\n"
    );
    println!(
        "| case | reopen | end offset after reopen | new record's offset | read from offset 0 | \
         old records intact | torn record (offset {}) |",
        TORN_N - 1
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.case,
            r.reopen,
            r.end_after_reopen,
            r.appended_at,
            r.read_from_0,
            r.intact,
            r.torn_record
        );
    }
    println!();
}

fn main() {
    let scale = Scale::detect();
    let mut c = common::criterion();
    if !std::env::args().any(|a| a == "--list") {
        torn_tail_table();
    }
    peers_append(&mut c, scale);
    peers_sequential_read(&mut c, scale);
    peers_random_read(&mut c, scale);
    c.final_summary();
}
