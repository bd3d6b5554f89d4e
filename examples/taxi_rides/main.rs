//! NYC taxi rides through a replicated topic: the Kafka course's story, end to end, in one
//! process with nothing to download.
//!
//! - Three brokers, each a directory (`broker-0`, `broker-1`, `broker-2`).
//! - Topic `rides`, 2 partitions, replication factor 2: `rides-0` led by broker 0 and followed
//!   by broker 1, `rides-1` led by broker 1 and followed by broker 2: broker 1 leads one
//!   partition and follows the other.
//! - Rides in the NYC TLC yellow-taxi CSV schema, key = VendorID (Kafka's murmur2 partitioner
//!   picks the partition), timestamp = pickup time, produced with `acks=all`: by default a
//!   built-in generator (1,000,000 rides, pickups moving forward through July 2020), or
//!   `--csv PATH` for real TLC files, plain or `.csv.gz`.
//! - A consumer group of two reads the topic (each partition feeds exactly one consumer) and
//!   commits its offsets.
//! - The producer is idempotent (producer id, epoch and a sequence per partition, as Kafka's
//!   producer by default): when broker 0 dies its last answer is lost, the producer sends that
//!   batch again to the new leader, which answers with the original offsets: written once.
//! - Midway broker 0 dies: its follower (broker 1) takes over `rides-0` at a new leader epoch.
//!   Later broker 0 comes back, truncates by epoch and catches up. One consumer dies too: its
//!   partition moves to the other, which goes on from the committed offset.
//! - Time retention (21 days of ride time) removes the oldest segments.
//! - At the end: rides per partition and per vendor, produced, acknowledged, consumed, lost
//!   (must be 0), written twice by the producer (must be 0), duplicated (read again after the
//!   consumer's death: at least once),
//!   throughput.
//!
//! ```text
//! cargo run --release --example taxi_rides [-- --rides N] [--csv rides.csv.gz] [--data DIR]
//!     [--compression none|gzip|snappy|lz4|zstd]
//! ```
//! `--data DIR` keeps the brokers' directories for a look with the `partlog` tool.
//! `--compression` sets the topic's `compression.type`: the leaders write every batch in that
//! codec, the followers copy the compressed batches, the consumers decompress them.

mod rides;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use partlog::batch::{BatchBuilder, Compression, RecordBatch, SimpleRecord};
use partlog::clock::ManualClock;
use partlog::config::CompressionType;
use partlog::log::LogRead;
use partlog::replica::{Acks, Failure, ReplicaId, ReplicaSet, ReplicaSetConfig, TrackerConfig};
use partlog::topic::{
    partition_for_key, Consumer, ConsumerConfig, GroupCoordinator, OffsetReset, PartitionOffsets,
    TopicError, TopicName, TopicSource,
};
use partlog::{Config, Error, Result};

use rides::{Generator, Ride};

const TOPIC: &str = "rides";
const PARTITIONS: u32 = 2;
const BROKERS: u32 = 3;
/// Which brokers hold each partition, leader first.
const PLACEMENT: [[u32; 2]; 2] = [[0, 1], [1, 2]];
const GROUP: &str = "ride-stats";
const BATCH: usize = 500;
const DAY_MS: i64 = 86_400_000;
const RETENTION_MS: i64 = 21 * DAY_MS;
const SESSION_TIMEOUT_MS: i64 = 10_000;
/// The producer's id (a broker's coordinator would hand it out) and epoch.
const PRODUCER_ID: i64 = 4_000;
const PRODUCER_EPOCH: i16 = 0;

struct Args {
    compression: Compression,
    rides: u64,
    csv: Option<PathBuf>,
    data: Option<PathBuf>,
}

fn parse_args() -> std::result::Result<Args, String> {
    let mut args = Args {
        compression: Compression::None,
        rides: 1_000_000,
        csv: None,
        data: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--rides" => {
                args.rides = value()?.parse().map_err(|e| format!("--rides: {e}"))?;
            }
            "--csv" => args.csv = Some(PathBuf::from(value()?)),
            "--data" => args.data = Some(PathBuf::from(value()?)),
            "--compression" => {
                args.compression = value()?
                    .parse()
                    .map_err(|e| format!("--compression: {e}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: taxi_rides [--rides N] [--csv PATH[.gz]] [--data DIR] \
                     [--compression none|gzip|snappy|lz4|zstd]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    Ok(args)
}

/// The topic as the brokers hold it: one replica set per partition, each replica in
/// `<data>/broker-<b>/rides-<p>` as Kafka lays out a broker's log directory.
struct ReplicatedTopic {
    name: TopicName,
    partitions: Vec<Mutex<ReplicaSet>>,
}

impl ReplicatedTopic {
    fn create(data: &Path, compression: Compression) -> Result<Self> {
        let name = TopicName::new(TOPIC)?;
        let mut partitions = Vec::new();
        for (p, brokers) in PLACEMENT.iter().enumerate() {
            let dirs: Vec<PathBuf> = brokers
                .iter()
                .map(|b| {
                    data.join(format!("broker-{b}"))
                        .join(format!("{TOPIC}-{p}"))
                })
                .collect();
            let config = ReplicaSetConfig {
                log: Config {
                    segment_bytes: 8 << 20,
                    retention_ms: RETENTION_MS,
                    file_delete_delay_ms: 0,
                    compression_type: CompressionType::Codec(compression),
                    ..Config::default()
                },
                tracker: TrackerConfig {
                    min_insync_replicas: 1,
                    ..TrackerConfig::default()
                },
                ..ReplicaSetConfig::new(TOPIC, p as u32, brokers.len() as u32)
            };
            partitions.push(Mutex::new(ReplicaSet::open_at(&dirs, config, 0)?));
        }
        Ok(ReplicatedTopic { name, partitions })
    }

    fn set(&self, p: u32) -> Result<MutexGuard<'_, ReplicaSet>> {
        let set = self
            .partitions
            .get(p as usize)
            .ok_or(TopicError::UnknownPartition {
                topic: TOPIC.into(),
                partition: p,
                partition_count: PARTITIONS,
            })?;
        Ok(set.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The replica id that broker `b` has in partition `p`, if it holds one.
    fn replica_of(p: u32, b: u32) -> Option<ReplicaId> {
        PLACEMENT[p as usize]
            .iter()
            .position(|&x| x == b)
            .map(|i| ReplicaId(i as u32))
    }

    fn broker_of(p: u32, r: ReplicaId) -> u32 {
        PLACEMENT[p as usize][r.0 as usize]
    }
}

impl TopicSource for ReplicatedTopic {
    fn topic_name(&self) -> &TopicName {
        &self.name
    }

    fn partition_count(&self) -> u32 {
        PARTITIONS
    }

    fn offsets(&self, partition: u32) -> Result<PartitionOffsets> {
        let set = self.set(partition)?;
        let leader = set.leader().and_then(|l| set.replica(l));
        let leader = leader.ok_or(partlog::replica::ReplicaError::NoLeader)?;
        Ok(PartitionOffsets {
            log_start_offset: leader.log_start_offset(),
            high_watermark: leader.high_watermark(),
            log_end_offset: leader.log_end_offset(),
        })
    }

    fn read_committed(
        &self,
        partition: u32,
        from_offset: i64,
        max_bytes: usize,
    ) -> Result<LogRead> {
        let set = self.set(partition)?;
        let leader = set.leader().and_then(|l| set.replica(l));
        let leader = leader.ok_or(partlog::replica::ReplicaError::NoLeader)?;
        leader.read_committed(from_offset, max_bytes)
    }
}

/// Where the rides come from.
enum Source {
    Generated(Generator, u64),
    File(std::vec::IntoIter<Ride>),
}

impl Iterator for Source {
    type Item = Ride;
    fn next(&mut self) -> Option<Ride> {
        match self {
            Source::Generated(g, left) => {
                if *left == 0 {
                    return None;
                }
                *left -= 1;
                Some(g.next_ride())
            }
            Source::File(it) => it.next(),
        }
    }
}

#[derive(Default)]
struct Tally {
    produced: u64,
    acknowledged: u64,
    bytes: u64,
    per_partition: [u64; PARTITIONS as usize],
    per_vendor: BTreeMap<String, u64>,
    /// Per partition, the ride number at each offset.
    ride_at: [Vec<u64>; PARTITIONS as usize],
    /// Per ride number: times consumed.
    consumed: Vec<u8>,
    /// Rides the producer sent again because it never got the answer.
    retried: u64,
    /// Of those, rides the leader answered as duplicates (already in its log).
    retried_duplicates: u64,
}

fn progress(done: u64, total: u64, started: Instant, note: &str) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let width = 30;
    let filled = (done * width / total.max(1)) as usize;
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
    eprint!(
        "\r[{}{}] {:>3}% {done:>9} rides {:>9.0} rides/s  {note:<44}",
        "#".repeat(filled),
        ".".repeat(width as usize - filled),
        done * 100 / total.max(1),
        rate
    );
    let _ = std::io::stderr().flush();
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("\ntaxi_rides failed: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    let (source, total, origin) = match &args.csv {
        Some(path) => {
            let rides = rides::read_csv(path).map_err(|e| Error::Io {
                path: path.clone(),
                op: "read",
                source: e,
            })?;
            let n = rides.len() as u64;
            (
                Source::File(rides.into_iter()),
                n,
                path.display().to_string(),
            )
        }
        None => (
            Source::Generated(Generator::new(2020), args.rides),
            args.rides,
            "the built-in generator (TLC schema, July 2020)".to_string(),
        ),
    };
    let temp;
    let data = match &args.data {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::Io {
                path: d.clone(),
                op: "create directory",
                source: e,
            })?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir().map_err(|e| Error::Io {
                path: std::env::temp_dir(),
                op: "create directory",
                source: e,
            })?;
            temp.path().to_owned()
        }
    };
    println!("partlog taxi rides: {total} rides from {origin}");
    println!(
        "{BROKERS} brokers in {}; topic {TOPIC}: {PARTITIONS} partitions, replication factor 2",
        data.display()
    );
    let topic = ReplicatedTopic::create(&data, args.compression)?;
    for p in 0..PARTITIONS {
        let set = topic.set(p)?;
        let leader = set.leader().map(|r| ReplicatedTopic::broker_of(p, r));
        println!(
            "  {TOPIC}-{p}: leader broker {}, replicas on brokers {:?}",
            leader.map_or("none".into(), |b| b.to_string()),
            PLACEMENT[p as usize]
        );
    }

    // The group coordinator keeps the committed offsets on broker 2, in its data directory's
    // own offsets file (where a Kafka broker would not mistake it for a partition).
    let clock = Arc::new(ManualClock::new(0));
    let coordinator =
        GroupCoordinator::open_data_dir_with_clock(data.join("broker-2"), clock.clone())?;
    let consumer_config = |client: &str| ConsumerConfig {
        client_id: client.into(),
        session_timeout_ms: SESSION_TIMEOUT_MS,
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records: 5_000,
        ..ConsumerConfig::new(GROUP)
    };
    let sources: [&dyn TopicSource; 1] = [&topic];
    let mut c1 = Consumer::join(&coordinator, &sources, consumer_config("consumer-1"))?;
    let mut c2 = Some(Consumer::join(
        &coordinator,
        &sources,
        consumer_config("consumer-2"),
    )?);
    c1.heartbeat()?;
    println!(
        "consumer group {GROUP}: consumer-1 reads {:?}, consumer-2 reads {:?}",
        c1.assignment()
            .iter()
            .map(|tp| tp.partition)
            .collect::<Vec<_>>(),
        c2.as_ref()
            .map(|c| c
                .assignment()
                .iter()
                .map(|tp| tp.partition)
                .collect::<Vec<_>>())
            .unwrap_or_default()
    );

    let mut tally = Tally::default();
    let started = Instant::now();
    let mut events: Vec<String> = Vec::new();
    let mut pending: [Vec<(u64, Ride)>; PARTITIONS as usize] = Default::default();
    // The idempotent producer: the next sequence per partition, and the last batch sent to
    // each (kept for a retry, as a producer keeps its in-flight batches).
    let mut sequence = [0i32; PARTITIONS as usize];
    let mut in_flight: [Option<(RecordBatch, usize)>; PARTITIONS as usize] = Default::default();
    let (mut broker_0_down, mut broker_0_back, mut consumer_2_down) = (false, false, false);
    let mut latest_pickup = 0i64;
    let mut deleted_segments = 0usize;
    let mut next_retention = total / 10;
    let mut now_ms = 0i64;
    let mut round = 0u64;

    let mut rides = source.peekable();
    let mut n = 0u64;
    while rides.peek().is_some() || pending.iter().any(|p| !p.is_empty()) {
        // Fill the partitions' batches.
        for ride in rides.by_ref() {
            let p = partition_for_key(ride.vendor.as_bytes(), PARTITIONS).unwrap_or(0);
            latest_pickup = latest_pickup.max(ride.pickup_ms);
            pending[p as usize].push((n, ride));
            n += 1;
            if pending[p as usize].len() >= BATCH {
                break;
            }
        }
        // Produce every full batch (and the last ones), acks=all.
        for p in 0..PARTITIONS {
            let batch = &mut pending[p as usize];
            if batch.is_empty() || (batch.len() < BATCH && rides.peek().is_some()) {
                continue;
            }
            let mut builder =
                BatchBuilder::new().producer(PRODUCER_ID, PRODUCER_EPOCH, sequence[p as usize]);
            for (_, r) in batch.iter() {
                builder
                    .push(&SimpleRecord::new(
                        r.pickup_ms,
                        Some(r.vendor.clone()),
                        Some(r.line.clone()),
                    ))
                    .map_err(Error::from)?;
            }
            let sent = builder.build().map_err(Error::from)?;
            // Sequences wrap from i32::MAX to 0, as Kafka's producer's do.
            sequence[p as usize] =
                ((i64::from(sequence[p as usize]) + batch.len() as i64) % (1 << 31)) as i32;
            let produced = topic.set(p)?.produce_batch(&sent, Acks::All, now_ms)?;
            in_flight[p as usize] = Some((sent, batch.len()));
            tally.produced += batch.len() as u64;
            if produced.acknowledged {
                tally.acknowledged += batch.len() as u64;
            }
            let at = &mut tally.ride_at[p as usize];
            at.resize(produced.first_offset as usize, u64::MAX);
            for (i, (id, r)) in batch.iter().enumerate() {
                debug_assert_eq!(at.len() as i64, produced.first_offset + i as i64);
                at.push(*id);
                tally.per_partition[p as usize] += 1;
                *tally.per_vendor.entry(r.vendor.clone()).or_default() += 1;
                tally.bytes += r.line.len() as u64;
            }
            batch.clear();
        }
        now_ms += 10;
        clock.set(now_ms);

        // Consumers read what is committed and commit their positions. consumer-2's last poll
        // before it dies is never committed: consumer-1 reads those rides again (at least
        // once).
        let consumer_2_dies_now = !consumer_2_down && n >= total * 6 / 10;
        // Commits every 50 rounds (each one an fsync of the offsets log), as a consumer's
        // auto-commit interval does.
        round += 1;
        let commit_now = round.is_multiple_of(50);
        for (i, c) in std::iter::once(&mut c1).chain(c2.as_mut()).enumerate() {
            loop {
                let records = c.poll()?;
                if records.is_empty() {
                    break;
                }
                for r in &records {
                    let id = tally.ride_at[r.partition as usize][r.offset as usize];
                    if tally.consumed.len() <= id as usize {
                        tally.consumed.resize(id as usize + 1, 0);
                    }
                    tally.consumed[id as usize] = tally.consumed[id as usize].saturating_add(1);
                }
                if commit_now && !(consumer_2_dies_now && i == 1) {
                    c.commit()?;
                }
            }
        }

        // The story's events.
        if !broker_0_down && n >= total / 2 {
            broker_0_down = true;
            for p in 0..PARTITIONS {
                if let Some(r) = ReplicatedTopic::replica_of(p, 0) {
                    let mut set = topic.set(p)?;
                    let led = set.leader() == Some(r);
                    set.fail(r, Failure::Kill, now_ms)?;
                    if set.leader().is_none() {
                        let report = set.elect(now_ms)?;
                        let leader = report
                            .as_ref()
                            .map(|r| ReplicatedTopic::broker_of(p, r.leader));
                        events.push(format!(
                            "broker 0 died at ride {n}: {TOPIC}-{p} is now led by broker {} at leader epoch {}",
                            leader.map_or("none".into(), |b| b.to_string()),
                            set.leader_epoch()
                        ));
                    }
                    // Broker 0 died before its answer to the last batch reached the producer:
                    // the producer sends it again, to the new leader.
                    if let (true, Some((sent, len))) = (led, in_flight[p as usize].take()) {
                        let again = set.produce_batch(&sent, Acks::All, now_ms)?;
                        tally.retried += len as u64;
                        if again.duplicate {
                            tally.retried_duplicates += len as u64;
                        } else {
                            // Not in the new leader's log (never copied): written now, at
                            // the offsets it gives.
                            let at = &mut tally.ride_at[p as usize];
                            let ids = at[at.len() - len..].to_vec();
                            let first = again.first_offset as usize;
                            at.resize(at.len().max(first + len), u64::MAX);
                            at[first..first + len].copy_from_slice(&ids);
                        }
                        events.push(format!(
                            "the producer sent its last {TOPIC}-{p} batch again ({len} rides) to the new leader: {}",
                            if again.duplicate {
                                format!("a duplicate, answered with its offsets {}..={}", again.first_offset, again.last_offset)
                            } else {
                                format!("appended again at {}", again.first_offset)
                            }
                        ));
                    }
                }
            }
        }
        if !consumer_2_down && n >= total * 6 / 10 {
            if let Some(c) = c2.take() {
                // Dies without leaving: the coordinator notices when its session times out.
                drop(c);
                consumer_2_down = true;
                // Time passes; consumer-1 keeps heartbeating, consumer-2 does not.
                for _ in 0..=SESSION_TIMEOUT_MS / 1_000 {
                    now_ms += 1_000;
                    clock.set(now_ms);
                    c1.heartbeat()?;
                    coordinator.expire_sessions();
                }
                c1.heartbeat()?;
                events.push(format!(
                    "consumer-2 died at ride {n}: after its session timed out, consumer-1 reads {:?}",
                    c1.assignment().iter().map(|tp| tp.partition).collect::<Vec<_>>()
                ));
            }
        }
        if broker_0_down && !broker_0_back && n >= total * 3 / 4 {
            broker_0_back = true;
            for p in 0..PARTITIONS {
                if let Some(r) = ReplicatedTopic::replica_of(p, 0) {
                    let mut set = topic.set(p)?;
                    set.restart(r, now_ms)?;
                    let copied = set.replicate(now_ms)?;
                    events.push(format!(
                        "broker 0 came back at ride {n}: it caught up on {TOPIC}-{p} ({copied} records copied), in sync again: {}",
                        set.isr().contains(&r)
                    ));
                }
            }
        }
        if n >= next_retention {
            next_retention += total / 10;
            for p in 0..PARTITIONS {
                let mut set = topic.set(p)?;
                let deleted: usize = set
                    .apply_retention(latest_pickup)?
                    .iter()
                    .map(|(_, d)| d)
                    .sum();
                deleted_segments += deleted;
            }
        }
        if n % 20_000 < BATCH as u64 || rides.peek().is_none() {
            progress(
                n,
                total,
                started,
                events
                    .last()
                    .map_or("", |e| e.split(':').next().unwrap_or("")),
            );
        }
    }
    let elapsed = started.elapsed();
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }

    for e in &events {
        println!("{e}");
    }
    if deleted_segments > 0 {
        println!(
            "time retention ({} days of ride time) deleted {deleted_segments} segments over the replicas",
            RETENTION_MS / DAY_MS
        );
    }
    for p in 0..PARTITIONS {
        let set = topic.set(p)?;
        let leader = set.leader().and_then(|l| set.replica(l));
        if let Some(l) = leader {
            println!(
                "  {TOPIC}-{p}: {} rides, log [{}, {}), high watermark {}, leader epoch {}, in-sync brokers {:?}",
                tally.per_partition[p as usize],
                l.log_start_offset(),
                l.log_end_offset(),
                l.high_watermark(),
                set.leader_epoch(),
                set.isr()
                    .iter()
                    .map(|&r| ReplicatedTopic::broker_of(p, r))
                    .collect::<Vec<_>>()
            );
        }
    }
    for (vendor, count) in &tally.per_vendor {
        println!(
            "  VendorID {vendor}: {count} rides, all in {TOPIC}-{}",
            partition_for_key(vendor.as_bytes(), PARTITIONS).unwrap_or(0)
        );
    }
    let consumed = tally.consumed.iter().filter(|&&c| c > 0).count() as u64;
    let duplicated = tally.consumed.iter().filter(|&&c| c > 1).count() as u64;
    let lost = tally.acknowledged - consumed.min(tally.acknowledged);
    // Rides at more than one offset of the leaders' logs: the producer wrote them twice.
    let mut offsets_of: BTreeMap<u64, u32> = BTreeMap::new();
    for p in 0..PARTITIONS {
        let set = topic.set(p)?;
        if let Some(l) = set.leader().and_then(|l| set.replica(l)) {
            let at = &tally.ride_at[p as usize];
            let end = (l.log_end_offset().max(0) as usize).min(at.len());
            for &id in &at[..end] {
                if id != u64::MAX {
                    *offsets_of.entry(id).or_default() += 1;
                }
            }
        }
    }
    let written_twice = offsets_of.values().filter(|&&c| c > 1).count() as u64;
    println!(
        "produced {}, acknowledged {}, consumed {consumed}, lost {lost}, duplicated {duplicated} (consumer, at least once)",
        tally.produced, tally.acknowledged
    );
    println!(
        "idempotent producer: {} rides sent again after broker 0 died, {} of them answered as duplicates; written twice by the producer: {written_twice}",
        tally.retried, tally.retried_duplicates
    );
    println!(
        "{:.1} s: {:.0} rides/s, {:.1} MB/s of ride data (each written twice: replication factor 2)",
        elapsed.as_secs_f64(),
        tally.produced as f64 / elapsed.as_secs_f64(),
        tally.bytes as f64 / 1e6 / elapsed.as_secs_f64()
    );
    println!("compression.type {}", args.compression);
    if let Some(d) = &args.data {
        println!(
            "data kept in {}: try `cargo run --features cli -- verify {}/broker-0/{TOPIC}-0`",
            d.display(),
            d.display()
        );
    }
    c1.commit()?;
    c1.leave()?;
    let ReplicatedTopic { partitions, .. } = topic;
    for set in partitions {
        set.into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .close()?;
    }
    if written_twice != 0 {
        return Err(Error::Corrupt {
            path: data,
            position: 0,
            reason: format!("{written_twice} rides were written twice by the producer"),
        });
    }
    if lost != 0 {
        return Err(Error::Corrupt {
            path: data,
            position: 0,
            reason: format!("{lost} acknowledged rides were never consumed"),
        });
    }
    Ok(())
}
