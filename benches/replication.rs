//! Benches of what replication costs, each against a baseline doing the same work on the same
//! bytes in the same run. See BENCHMARKS.md ("Replication") for the numbers and the commands.
//!
//! - `truncate_tail`: a follower cutting a small tail (one batch, ~16 KiB) off its active
//!   segment, as it does on a diverging-epoch answer, for segments of several sizes (the cost
//!   must not grow with the segment):
//!   - `partlog_in_place`: `Log::truncate_to` with no reader holding the segment: the log map,
//!     file and index entries are cut in place, then one fsync;
//!   - `partlog_rewrite`: the same cut while a reader holds bytes of the segment, which forces
//!     the old path: the kept part is copied to a new file, synced and renamed over the segment;
//!   - `raw_ftruncate`: the baseline, `set_len` of a plain file of the same size to the same
//!     length, then `sync_all` (no index, no checkpoint, no reader safety).
//!
//!   Each iteration appends the cut batch back (untimed) before the next cut.
//! - `follower_catch_up`: a fresh follower `Partition` copies a leader's ~256 MiB log (1 KiB
//!   records, 16 to a batch) with 1 MiB fetches (`fetch_request` -> `handle_fetch` ->
//!   `apply_fetch`), under `Durability::OnAppend` and `OnFlush` (a flush per fetch); baseline:
//!   `pread` of the leader's `.log` file in 1 MiB chunks and `write_all` to a new file (plus
//!   `sync_data` per chunk against `OnFlush`), no validation; and `raw_copy_per_batch`, the
//!   same with one `write_all` per batch, the follower's write pattern.
//! - `fetch`: the leader's `handle_fetch` at a random offset of that log, budgets of one batch
//!   and 1 MiB; baselines: `Log::read` of the same offset (no epoch validation, no replica
//!   bookkeeping) and a `pread` of the same bytes at a position known in advance.
//! - `produce_acks_all`: a leader and two followers in-process (`min_insync_replicas` 2): the
//!   leader appends a batch of 10 records of 100 B, then the followers fetch in turn until the
//!   leader's high watermark covers it; `OnAppend` and `OnFlush`. Baselines: the leader alone
//!   (replication factor 1) and `Log::append` alone (acks=1, plus `flush` for `OnFlush`).
//!   Per-produce percentiles are printed to stderr after the group.
//!
//! Under `cargo test --benches` (or with `PARTLOG_BENCH_SMALL`) the fixtures are small.

#[path = "common/mod.rs"]
mod common;

use std::cell::OnceCell;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    batch_of, build, first_segment, records, tempdir, timed_appends, value, Rng, Scale, MIB, TS0,
};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use partlog::batch::SimpleRecord;
use partlog::replica::{
    AcksAllStatus, Durability, Election, FetchRequest, FetchResponse, FollowerProgress,
    LeaderAndIsr, Partition, PartitionConfig, ReplicaId,
};
use partlog::{Config, Log};
use tempfile::TempDir;

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

// -------------------------------------------------------------------------------------------
// Shared by the replication groups below.

/// The leader's log: 1 KiB records, 16 to a ~16.5 KiB batch (a Kafka producer's default
/// `batch.size`), in one segment.
const LOG_VALUE: usize = 1024;
const LOG_PER_BATCH: usize = 16;
/// A follower's fetch budget (Kafka's `replica.fetch.max.bytes`).
const FETCH_MAX: usize = 1 << 20;
const LEADER: ReplicaId = ReplicaId(1);

impl Scale {
    /// Size of the leader's log that a fresh follower copies (and that `fetch` reads).
    fn leader_bytes(self) -> u64 {
        self.pick(256 * MIB, 4 * MIB)
    }
    /// `produce_acks_all`: a fresh replica set (untimed) once the leader's log took this much.
    fn produce_recycle_bytes(self) -> u64 {
        self.pick(256 * MIB, 4 * MIB)
    }
}

fn partition(dir: &Path, id: u32, durability: Durability, min_isr: usize) -> Partition {
    let mut config = PartitionConfig::new("bench", 0, ReplicaId(id));
    config.durability = durability;
    config.tracker.min_insync_replicas = min_isr;
    Partition::open(dir, config).expect("open partition")
}

/// A leader at epoch 1 whose log holds `target` bytes of 16.5 KiB batches, and every batch's
/// (base offset, position, size) for the raw baselines.
struct LeaderLog {
    dir: TempDir,
    leader: Partition,
    batches: Vec<(i64, u64, usize)>,
    size: u64,
    end: i64,
}

fn build_leader(target: u64) -> LeaderLog {
    let dir = tempdir();
    let leader = partition(&dir.path().join("leader"), 1, Durability::OnAppend, 1);
    // Replica 2 is every follower the benches make (a fresh one for each catch-up).
    let assignment = LeaderAndIsr {
        leader_epoch: 1,
        replicas: vec![LEADER, ReplicaId(2)],
        isr: vec![LEADER],
    };
    leader.become_leader(&assignment, 0).expect("become leader");
    let batch = batch_of(LOG_PER_BATCH, LOG_VALUE, TS0);
    let mut batches = Vec::new();
    while leader.log().size() < target {
        let info = leader.append_as_leader(&batch, 0).expect("append");
        batches.push((info.first_offset, info.position, info.size));
    }
    leader.flush().expect("flush");
    assert_eq!(
        leader.log().segment_count(),
        1,
        "the fixture is one segment"
    );
    LeaderLog {
        size: leader.log().size(),
        end: leader.log_end_offset(),
        dir,
        leader,
        batches,
    }
}

impl LeaderLog {
    fn segment(&self) -> PathBuf {
        first_segment(&self.dir.path().join("leader"))
    }
}

// -------------------------------------------------------------------------------------------
// follower_catch_up

/// A fresh follower (in `dir`) fetches from `leader` with 1 MiB budgets until its log ends at
/// `end`. Returns the fetches made.
fn catch_up(leader: &Partition, follower: &Partition, end: i64) -> u64 {
    let mut fetches = 0;
    while follower.log_end_offset() < end {
        let request = follower.fetch_request(FETCH_MAX).expect("fetch request");
        let response = leader.handle_fetch(&request, 0).expect("handle fetch");
        let progress = follower.apply_fetch(&response).expect("apply fetch");
        assert!(
            matches!(progress, FollowerProgress::Appended { records_appended, .. } if records_appended > 0),
            "{progress:?}"
        );
        fetches += 1;
    }
    fetches
}

/// Copies `[0, size)` of `src` to a new file in `dir` in 1 MiB `pread` + `write_all` steps
/// (`sync_data` after each with `sync`).
fn raw_copy(src: &File, size: u64, dir: &Path, buf: &mut [u8], sync: bool) -> File {
    let mut dst = File::create_new(dir.join("copy.log")).expect("create copy");
    let mut pos = 0;
    while pos < size {
        let n = (size - pos).min(buf.len() as u64) as usize;
        src.read_exact_at(&mut buf[..n], pos).expect("pread");
        dst.write_all(&buf[..n]).expect("write");
        if sync {
            dst.sync_data().expect("sync_data");
        }
        pos += n as u64;
    }
    dst
}

/// [`raw_copy`] in the follower's write pattern: each 1 MiB `pread` holds whole batches (as a
/// fetch answer does), and each batch goes to the new file with its own `write_all`.
fn raw_copy_per_batch(
    src: &File,
    batches: &[(i64, u64, usize)],
    dir: &Path,
    buf: &mut [u8],
) -> File {
    let mut dst = File::create_new(dir.join("copy.log")).expect("create copy");
    let mut i = 0;
    while i < batches.len() {
        let (pos, len) = span(batches, batches[i].0, buf.len());
        src.read_exact_at(&mut buf[..len], pos).expect("pread");
        let mut at = 0;
        while at < len {
            let size = batches[i].2;
            dst.write_all(&buf[at..at + size]).expect("write");
            at += size;
            i += 1;
        }
    }
    dst
}

fn follower_catch_up<'f>(c: &mut Criterion, scale: Scale, fixture: &dyn Fn() -> &'f LeaderLog) {
    let mut group = c.benchmark_group("follower_catch_up");
    group.sampling_mode(SamplingMode::Flat);
    // Throughput needs the size before the fixture exists; it is within one batch of this.
    group.throughput(Throughput::Bytes(scale.leader_bytes()));
    let param = format!("{}MiB", scale.leader_bytes() / MIB);
    for durability in [Durability::OnAppend, Durability::OnFlush] {
        let (name, raw_name, sync) = match durability {
            Durability::OnAppend => ("partlog_on_append", "raw_copy", false),
            _ => ("partlog_on_flush", "raw_copy_sync", true),
        };
        group.bench_function(BenchmarkId::new(name, &param), |b| {
            let fx = fixture();
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempdir();
                    let follower = partition(dir.path(), 2, durability, 1);
                    follower
                        .become_follower(1, Election::Clean)
                        .expect("become follower");
                    let start = Instant::now();
                    catch_up(&fx.leader, &follower, fx.end);
                    total += start.elapsed();
                    assert_eq!(follower.log().size(), fx.size);
                    follower.abandon();
                }
                total
            })
        });
        group.bench_function(BenchmarkId::new(raw_name, &param), |b| {
            let fx = fixture();
            let src = File::open(fx.segment()).expect("open segment");
            let mut buf = vec![0u8; FETCH_MAX];
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempdir();
                    let start = Instant::now();
                    let copy = raw_copy(&src, fx.size, dir.path(), &mut buf, sync);
                    total += start.elapsed();
                    drop(copy);
                }
                total
            })
        });
        if !sync {
            group.bench_function(BenchmarkId::new("raw_copy_per_batch", &param), |b| {
                let fx = fixture();
                let src = File::open(fx.segment()).expect("open segment");
                let mut buf = vec![0u8; FETCH_MAX];
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let dir = tempdir();
                        let start = Instant::now();
                        let copy = raw_copy_per_batch(&src, &fx.batches, dir.path(), &mut buf);
                        total += start.elapsed();
                        assert_eq!(copy.metadata().expect("stat").len(), fx.size);
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// fetch

fn fetch_request(offset: i64, max_bytes: usize) -> FetchRequest {
    FetchRequest {
        replica_id: ReplicaId(2),
        fetch_offset: offset,
        last_fetched_epoch: Some(1),
        current_leader_epoch: Some(1),
        max_bytes,
    }
}

/// Where the bytes that a read of `offset` with `budget` returns lie in the segment, from the
/// table of batches: whole batches from the one holding the offset, at least one, while they
/// fit in the budget. `(position, length)`.
fn span(batches: &[(i64, u64, usize)], offset: i64, budget: usize) -> (u64, usize) {
    let i = batches.partition_point(|e| e.0 <= offset) - 1;
    let pos = batches[i].1;
    let fit = batches[i + 1..].partition_point(|e| e.1 + e.2 as u64 <= pos + budget as u64);
    let last = &batches[i + fit];
    (pos, (last.1 + last.2 as u64 - pos) as usize)
}

/// Checks that the three paths of `fetch` return the same bytes.
fn check_fetch_paths(fx: &LeaderLog) {
    let file = File::open(fx.segment()).expect("open segment");
    let mut rng = Rng(0x5eed);
    for budget in [1, FETCH_MAX] {
        for _ in 0..16 {
            let offset = rng.below(fx.end as u64) as i64;
            let response = fx
                .leader
                .handle_fetch(&fetch_request(offset, budget), 0)
                .expect("fetch");
            let FetchResponse::Records(r) = response else {
                panic!("not a records answer: {response:?}");
            };
            let read = fx.leader.log().read(offset, budget).expect("read");
            assert_eq!(r.records, read.bytes);
            let (pos, len) = span(&fx.batches, offset, budget);
            let mut raw = vec![0u8; len];
            file.read_exact_at(&mut raw, pos).expect("pread");
            assert_eq!(&raw[..], &read.bytes[..]);
        }
    }
}

fn fetch<'f>(c: &mut Criterion, fixture: &dyn Fn() -> &'f LeaderLog) {
    let mut group = c.benchmark_group("fetch");
    group.throughput(Throughput::Elements(1));
    for (label, budget) in [("1batch", 1usize), ("1MiB", FETCH_MAX)] {
        group.bench_function(BenchmarkId::new("partlog_handle_fetch", label), |b| {
            let fx = fixture();
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let offset = rng.below(fx.end as u64) as i64;
                fx.leader
                    .handle_fetch(&fetch_request(offset, budget), 0)
                    .expect("fetch")
            })
        });
        group.bench_function(BenchmarkId::new("partlog_log_read", label), |b| {
            let fx = fixture();
            let mut rng = Rng(0x1234_5678);
            b.iter(|| {
                let offset = rng.below(fx.end as u64) as i64;
                fx.leader.log().read(offset, budget).expect("read")
            })
        });
        group.bench_function(BenchmarkId::new("raw_pread", label), |b| {
            let fx = fixture();
            let file = File::open(fx.segment()).expect("open segment");
            let mut rng = Rng(0x1234_5678);
            let mut buf = vec![0u8; FETCH_MAX + (64 << 10)];
            b.iter(|| {
                let offset = rng.below(fx.end as u64) as i64;
                let (pos, len) = span(&fx.batches, offset, budget);
                file.read_exact_at(&mut buf[..len], pos).expect("pread");
                buf[len - 1]
            })
        });
    }
    group.finish();
}

// -------------------------------------------------------------------------------------------
// produce_acks_all

/// A leader (replica 1) and two followers (2, 3) at epoch 1, all in the ISR,
/// `min_insync_replicas` 2, every replica with the same durability.
struct ReplicaSet {
    _dir: TempDir,
    leader: Partition,
    followers: Vec<Partition>,
}

fn replica_set(durability: Durability) -> ReplicaSet {
    let dir = tempdir();
    let ids = [1u32, 2, 3];
    let leader = partition(&dir.path().join("1"), 1, durability, 2);
    let all: Vec<ReplicaId> = ids.iter().map(|&i| ReplicaId(i)).collect();
    let assignment = LeaderAndIsr {
        leader_epoch: 1,
        replicas: all.clone(),
        isr: all,
    };
    leader.become_leader(&assignment, 0).expect("become leader");
    let followers = ids[1..]
        .iter()
        .map(|&i| {
            let f = partition(&dir.path().join(i.to_string()), i, durability, 2);
            f.become_follower(1, Election::Clean)
                .expect("become follower");
            f
        })
        .collect();
    ReplicaSet {
        _dir: dir,
        leader,
        followers,
    }
}

impl ReplicaSet {
    /// One `acks=all` produce: the leader appends, then every follower fetches in turn (and
    /// applies the answer) until the leader's high watermark covers the batch. Returns the
    /// fetch rounds it took.
    fn produce(&self, records: &[SimpleRecord]) -> u32 {
        let info = self.leader.append_records(records, 0).expect("append");
        let mut rounds = 0;
        while self.leader.acks_all_status(&info).expect("status") == AcksAllStatus::Pending {
            for f in &self.followers {
                let request = f.fetch_request(FETCH_MAX).expect("fetch request");
                let response = self.leader.handle_fetch(&request, 0).expect("handle fetch");
                f.apply_fetch(&response).expect("apply fetch");
            }
            rounds += 1;
            assert!(rounds <= 2, "the high watermark did not follow");
        }
        assert_eq!(
            self.leader.acks_all_status(&info).expect("status"),
            AcksAllStatus::Complete
        );
        rounds
    }

    fn abandon(self) {
        self.leader.abandon();
        for f in self.followers {
            f.abandon();
        }
    }
}

/// Per-produce latencies of one benchmark (warm-up included), summarised after the group.
#[derive(Default)]
struct Latencies(Vec<(String, Vec<Duration>)>);

impl Latencies {
    fn add(&mut self, name: String) -> &mut Vec<Duration> {
        self.0.push((name, Vec::new()));
        &mut self.0.last_mut().expect("just pushed").1
    }

    fn report(mut self) {
        for (name, samples) in &mut self.0 {
            if samples.is_empty() {
                continue;
            }
            samples.sort_unstable();
            let n = samples.len();
            let q = |p: f64| samples[((n as f64 * p) as usize).min(n - 1)];
            let mean = samples.iter().sum::<Duration>() / n as u32;
            eprintln!(
                "produce_acks_all/{name}: n={n} mean={mean:.2?} p50={:.2?} p99={:.2?} p99.9={:.2?} max={:.2?}",
                q(0.50),
                q(0.99),
                q(0.999),
                samples[n - 1]
            );
        }
    }
}

fn produce_acks_all(c: &mut Criterion, scale: Scale) {
    let mut group = c.benchmark_group("produce_acks_all");
    group.throughput(Throughput::Elements(1));
    let recycle = scale.produce_recycle_bytes();
    let value = value(100, 5);
    let recs = records(10, &value, TS0);
    let batch_bytes = build(&recs).size() as u64;
    let mut latencies = Latencies::default();
    for durability in [Durability::OnAppend, Durability::OnFlush] {
        let flush = durability == Durability::OnFlush;
        let mode = if flush { "on_flush" } else { "on_append" };

        let samples = latencies.add(format!("partlog_3_replicas/{mode}"));
        let mut set: Option<ReplicaSet> = None;
        let mut rounds = 0u64;
        let mut produces = 0u64;
        group.bench_function(BenchmarkId::new("partlog_3_replicas", mode), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    if set
                        .as_ref()
                        .is_some_and(|s| s.leader.log().size() >= recycle)
                    {
                        set.take().expect("set").abandon();
                    }
                    let rs = set.get_or_insert_with(|| replica_set(durability));
                    let start = Instant::now();
                    rounds += u64::from(rs.produce(&recs));
                    let took = start.elapsed();
                    total += took;
                    samples.push(took);
                    produces += 1;
                }
                total
            })
        });
        if let Some(s) = set.take() {
            s.abandon();
        }
        if produces > 0 {
            eprintln!(
                "produce_acks_all/partlog_3_replicas/{mode}: {:.2} fetch rounds per produce",
                rounds as f64 / produces as f64
            );
        }

        // The leader alone (replication factor 1): what the partition adds over the log.
        let samples = latencies.add(format!("partlog_leader_only/{mode}"));
        group.bench_function(BenchmarkId::new("partlog_leader_only", mode), |b| {
            b.iter_custom(|iters| {
                timed_appends(
                    iters,
                    batch_bytes,
                    recycle,
                    |dir| {
                        let p = partition(dir, 1, durability, 1);
                        let assignment = LeaderAndIsr {
                            leader_epoch: 1,
                            replicas: vec![LEADER],
                            isr: vec![LEADER],
                        };
                        p.become_leader(&assignment, 0).expect("become leader");
                        p
                    },
                    |p| {
                        let start = Instant::now();
                        p.append_records(&recs, 0).expect("append");
                        samples.push(start.elapsed());
                    },
                    Partition::abandon,
                )
            })
        });

        // Baseline: the log alone (acks=1, no replication), plus a flush in OnFlush.
        let samples = latencies.add(format!("raw_log_append/{mode}"));
        group.bench_function(BenchmarkId::new("raw_log_append", mode), |b| {
            b.iter_custom(|iters| {
                timed_appends(
                    iters,
                    batch_bytes,
                    recycle,
                    |dir| Log::open(dir, Config::default()).expect("open"),
                    |log| {
                        let start = Instant::now();
                        log.append(&recs).expect("append");
                        if flush {
                            log.flush().expect("flush");
                        }
                        samples.push(start.elapsed());
                    },
                    Log::abandon,
                )
            })
        });
    }
    group.finish();
    latencies.report();
}

fn main() {
    let scale = Scale::detect();
    let mut c = common::criterion();
    truncate_tail(&mut c, scale);
    let leader: OnceCell<LeaderLog> = OnceCell::new();
    let fixture = || {
        leader.get_or_init(|| {
            let fx = build_leader(scale.leader_bytes());
            check_fetch_paths(&fx);
            fx
        })
    };
    follower_catch_up(&mut c, scale, &fixture);
    fetch(&mut c, &fixture);
    drop(leader);
    produce_acks_all(&mut c, scale);
    c.final_summary();
}
