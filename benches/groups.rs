//! Commits per second of consumer-group offsets, on the real disk (a temp dir next to
//! `target/`, not `/tmp` if that is memory):
//! - `offset_store_commit`: `OffsetStore::commit` of one partition's offset: one 35-byte
//!   CRC-framed record appended to `consumer-offsets.log`, then `fdatasync` (compaction
//!   included, as it comes);
//! - `raw_append_fdatasync`: the baseline, the same 35 bytes `pwrite`n at the end of a plain
//!   file, then `fdatasync`: no framing, no CRC, no map update;
//! - `checkpoint_rewrite`: the alternative design, the offsets rewritten as a checkpoint file
//!   per commit: temp file, write, `fsync`, rename, `fsync` of the directory.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use partlog::topic::{OffsetStore, TopicPartition};

/// Bytes of one single-partition commit frame (group "g", topic "rides"): 9 header + 2 + 1 +
/// 4 + 2 + 5 + 4 + 8.
const FRAME: usize = 35;

fn bench_dir() -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    fs::create_dir_all(&base).unwrap();
    tempfile::tempdir_in(base).unwrap()
}

fn commits(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_commit");
    group.throughput(Throughput::Elements(1));
    group.sample_size(30);
    group.measurement_time(Duration::from_secs(5));

    let dir = bench_dir();
    let mut store = OffsetStore::open(dir.path()).unwrap();
    let tp = TopicPartition::new("rides", 0);
    let mut offset = 0i64;
    group.bench_function("offset_store_commit", |b| {
        b.iter(|| {
            offset += 1;
            store.commit("g", &[(tp.clone(), offset)]).unwrap();
        })
    });
    // (Skipped by a criterion filter, the commit bench ran nothing to check.)
    if offset > 0 {
        assert_eq!(store.committed("g", &tp), Some(offset));
    }

    let raw = dir.path().join("raw");
    let f = File::create(&raw).unwrap();
    let bytes = [0x5au8; FRAME];
    let mut end = 0u64;
    group.bench_function("raw_append_fdatasync", |b| {
        b.iter(|| {
            f.write_all_at(&bytes, end).unwrap();
            f.sync_data().unwrap();
            end += FRAME as u64;
        })
    });

    let checkpoint = dir.path().join("offsets-checkpoint");
    let tmp = dir.path().join("offsets-checkpoint.tmp");
    group.bench_function("checkpoint_rewrite", |b| {
        b.iter(|| {
            let mut t = File::create(&tmp).unwrap();
            t.write_all(&bytes).unwrap();
            t.sync_all().unwrap();
            fs::rename(&tmp, &checkpoint).unwrap();
            File::open(dir.path()).unwrap().sync_all().unwrap();
        })
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    commits(&mut c);
    c.final_summary();
}
