//! Appends with the durability callback: P concurrent proposers (1, 8, 64), each sending one
//! entry and waiting until it is durable, through one appender task (as openraft's core is: it
//! takes what is queued, appends it, and moves on; the callbacks report durability later).
//!
//! - `partlog-raft`: `LogStore::append_then`, group-committed by the store's flushing thread;
//! - `fsync-file`: the same bytes (one Kafka v2 batch per entry) written to a plain file with
//!   `write_all` + `sync_data` by the appender itself before it answers (everything queued during
//!   an fsync goes in the next write: the naive group commit);
//! - `memory`: entries pushed into a `Vec` and answered at once: the upper bound. (openraft's
//!   `openraft-memstore` 0.9.25 cannot stand in: it implements the v1 `RaftStorage` trait, which
//!   the `storage-v2` feature this crate needs configures out of openraft.)
//!
//! Criterion reports entries per second; p99 latency (proposal to durable) is printed per case.
//! Entries are 120-byte JSON strings, as a small taxi ride.

use std::io::{Cursor, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use partlog::batch::BatchBuilder;
use partlog_raft::{LogStore, StoreConfig};
use tokio::sync::{mpsc, oneshot};

openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);

type Reply = oneshot::Sender<()>;

#[derive(Clone, Copy, Debug)]
enum Target {
    PartlogRaft,
    FsyncFile,
    Memory,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::PartlogRaft => "partlog-raft",
            Target::FsyncFile => "fsync-file",
            Target::Memory => "memory",
        }
    }
}

fn payload() -> String {
    "x".repeat(118)
}

/// One Kafka v2 batch holding one record with `value`, as the store writes an entry.
fn batch_bytes(offset: i64, value: &[u8]) -> Vec<u8> {
    let mut b = BatchBuilder::new()
        .base_offset(offset)
        .partition_leader_epoch(1);
    b.push_parts(0, None, Some(value), &[]).expect("push");
    b.build().expect("build").as_bytes().to_vec()
}

/// Runs the appender for `target` until the proposers hang up.
async fn appender(
    target: Target,
    mut rx: mpsc::UnboundedReceiver<Reply>,
    store: Option<LogStore<TypeConfig>>,
    mut file: Option<std::fs::File>,
) {
    let value = serde_json::to_vec(&payload()).expect("json");
    let mut next: u64 = 0;
    let mut memory: Vec<Vec<u8>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut replies = vec![first];
        while let Ok(r) = rx.try_recv() {
            replies.push(r);
        }
        let n = replies.len() as u64;
        match target {
            Target::PartlogRaft => {
                let entries = (next..next + n).map(|i| Entry::<TypeConfig> {
                    log_id: LogId::new(CommittedLeaderId::new(1, 0), i),
                    payload: EntryPayload::Normal(payload()),
                });
                let store = store.as_ref().expect("store");
                store
                    .append_then(
                        entries,
                        Box::new(move |r| {
                            r.expect("durable");
                            for reply in replies {
                                let _ = reply.send(());
                            }
                        }),
                    )
                    .expect("append");
            }
            Target::FsyncFile => {
                let file = file.as_mut().expect("file");
                let mut bytes = Vec::new();
                for i in next..next + n {
                    bytes.extend_from_slice(&batch_bytes(i as i64, &value));
                }
                file.write_all(&bytes)
                    .and_then(|()| file.sync_data())
                    .expect("write");
                for reply in replies {
                    let _ = reply.send(());
                }
            }
            Target::Memory => {
                for i in next..next + n {
                    memory.push(batch_bytes(i as i64, &value));
                }
                for reply in replies {
                    let _ = reply.send(());
                }
            }
        }
        next += n;
    }
}

/// `entries` proposals from `proposers` concurrent proposers; returns the elapsed time and
/// adds each proposal's latency to `latencies`.
async fn run(
    target: Target,
    proposers: usize,
    entries: u64,
    latencies: &Mutex<Vec<Duration>>,
) -> Duration {
    let dir = tempfile::tempdir().expect("dir");
    let (tx, rx) = mpsc::unbounded_channel::<Reply>();
    // Opened before the clock starts (a new log preallocates its index files).
    let store = match target {
        Target::PartlogRaft => {
            Some(LogStore::<TypeConfig>::open(dir.path(), StoreConfig::default()).expect("open"))
        }
        _ => None,
    };
    let file = match target {
        Target::FsyncFile => {
            Some(std::fs::File::create(dir.path().join("plain.log")).expect("create"))
        }
        _ => None,
    };
    let appender = tokio::spawn(appender(target, rx, store, file));
    let per = entries.div_ceil(proposers as u64);
    let start = Instant::now();
    let tasks: Vec<_> = (0..proposers)
        .map(|_| {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per as usize);
                for _ in 0..per {
                    let t = Instant::now();
                    let (reply, done) = oneshot::channel();
                    tx.send(reply).expect("send");
                    done.await.expect("reply");
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    drop(tx);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("proposer"));
    }
    let elapsed = start.elapsed();
    appender.await.expect("appender");
    latencies.lock().expect("lock").extend(all);
    elapsed
}

fn p99(latencies: &mut [Duration]) -> Duration {
    latencies.sort();
    latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("append_durable");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_millis(500));
    for proposers in [1usize, 8, 64] {
        for target in [Target::PartlogRaft, Target::FsyncFile, Target::Memory] {
            let latencies = Mutex::new(Vec::new());
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(
                BenchmarkId::new(target.name(), proposers),
                &proposers,
                |b, &p| {
                    b.to_async(&rt).iter_custom(|iters| {
                        let latencies = &latencies;
                        async move {
                            // At least one proposal per proposer; time scaled back to `iters`.
                            let n = iters.max(p as u64);
                            let took = run(target, p, n, latencies).await;
                            took.mul_f64(iters as f64 / n as f64)
                        }
                    });
                },
            );
            let mut l = latencies.into_inner().expect("lock");
            println!(
                "{} with {proposers} proposers: p99 latency {:?} over {} proposals",
                target.name(),
                p99(&mut l),
                l.len()
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
