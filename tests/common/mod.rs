//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

#[cfg(feature = "cli")]
pub mod cli;

use bytes::Bytes;
use partlog::batch::{Record, SimpleRecord};
use partlog::{Config, Log};

/// A config with small segments and dense indexes, so tests see many of both.
pub fn small_config() -> Config {
    Config {
        segment_bytes: 4096,
        segment_index_bytes: 1024,
        index_interval_bytes: 256,
        max_batch_bytes: 4096,
        ..Config::default()
    }
}

/// A temporary directory named `prefix...`, in memory when the machine has `/dev/shm`: for
/// suites that open and close logs thousands of times, where each open or close syncs files and
/// durability is not what they test (the crash test runs on the real disk).
pub fn tmp_in_memory(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix(prefix).tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

/// The value of record number `i`: self-describing, so readers can check it.
pub fn value_of(i: i64) -> Vec<u8> {
    format!("value-{i:08}-{}", "x".repeat((i % 37) as usize)).into_bytes()
}

/// A record whose key and value name `i`; every third has a null key.
pub fn record(i: i64, timestamp: i64) -> SimpleRecord {
    let key = (i % 3 != 0).then(|| format!("key-{i}"));
    SimpleRecord::new(timestamp, key, Some(value_of(i)))
}

/// Appends `batches` batches of `per_batch` records numbered from the log end offset, with
/// timestamps `base_ts + offset`.
pub fn fill(log: &Log, batches: usize, per_batch: usize, base_ts: i64) {
    for _ in 0..batches {
        let first = log.log_end_offset();
        let records: Vec<SimpleRecord> = (0..per_batch as i64)
            .map(|j| record(first + j, base_ts + first + j))
            .collect();
        let info = log.append(&records).unwrap();
        assert_eq!(info.first_offset, first);
        assert_eq!(info.last_offset, first + per_batch as i64 - 1);
    }
}

/// Every record from the log start offset to the log end offset, read in small steps.
pub fn read_all(log: &Log) -> Vec<Record> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1000).unwrap();
        assert!(
            !r.is_empty() || r.next_offset > next,
            "read at {next} made no progress"
        );
        for b in &r.batches {
            for rec in b.records().unwrap() {
                let rec = rec.unwrap();
                if rec.offset >= next {
                    out.push(rec);
                }
            }
        }
        next = r.next_offset;
    }
    out
}

/// Checks that `records` are exactly offsets `from..to` as written by [`fill`].
pub fn assert_filled(records: &[Record], from: i64, to: i64, base_ts: i64) {
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (from..to).collect::<Vec<_>>());
    for r in records {
        let want = record(r.offset, base_ts + r.offset);
        assert_eq!(
            r.value.as_deref(),
            want.value.as_deref(),
            "value at {}",
            r.offset
        );
        assert_eq!(r.key, want.key, "key at {}", r.offset);
        assert_eq!(r.timestamp, want.timestamp, "timestamp at {}", r.offset);
    }
}

/// Copies every regular file of `from` into `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() && e.file_name() != ".lock" {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The `.log` files of a log directory, in offset order.
pub fn log_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

/// Bytes of `b` as an owned vector (for comparing reads).
pub fn to_vec(b: &Bytes) -> Vec<u8> {
    b.to_vec()
}

/// Checks that `records` are exactly offsets `from..to` with the values [`fill`] and [`record`]
/// give them (whatever their timestamps).
pub fn assert_values(records: &[Record], from: i64, to: i64) {
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (from..to).collect::<Vec<_>>());
    for r in records {
        assert_eq!(
            r.value.as_deref(),
            Some(&value_of(r.offset)[..]),
            "value at {}",
            r.offset
        );
    }
}

/// Every byte of `p`'s log from `from` to its log end, as its reads return them.
pub fn partition_bytes(p: &partlog::replica::Partition, from: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = from;
    while next < p.log_end_offset() {
        let r = p.log().read(next, 1 << 20).unwrap();
        out.extend_from_slice(&r.bytes);
        next = r.next_offset;
    }
    out
}
