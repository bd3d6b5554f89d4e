//! partlog's side of the real Kafka 4.4 broker round trip (issue 18), run by
//! `interop/kafka/checks/30-broker.sh`, which starts and stops a single-node KRaft broker:
//!
//! 1. [`partlog_finds_every_ride_at_the_offset_the_broker_acknowledged`]: a Kafka producer
//!    (acks=all, idempotent, lz4) wrote the rides through the broker; partlog opens a copy of the
//!    broker's `rides-N` directories and must find every ride at the offset the broker
//!    acknowledged, in the partition Kafka's partitioner chose, and nothing else.
//! 2. [`partlog_writes_rides_into_the_brokers_partition_directories`]: partlog writes the rides
//!    into the stopped broker's own `rides-partlog-N` directories (created by the broker, so its
//!    `partition.metadata` carries the topic id); the script restarts the broker and a Kafka
//!    consumer compares what it reads with the manifest written here.
//!
//! Both are `#[ignore]`d: they need the directories the script prepares (paths in `PARTLOG_BROKER_*`
//! variables). A manifest line is `partition\toffset\tkey\ttimestamp\tvalue`.
//!
//! The lz4 batches Kafka's producer wrote are read through partlog's own record API
//! (`RecordBatch::records`, which decompresses Kafka's LZ4 frame).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use partlog::batch::{BatchBuilder, Compression, RecordBatch, SimpleRecord};
use partlog::log::AppendOrigin;
use partlog::topic::partition_for_key;
use partlog::{Config, Log};

/// Partitions of both topics the script creates.
const PARTITIONS: u32 = 2;
/// Rides per batch partlog writes (several, so that the broker reads multi-record batches).
const RIDES_PER_BATCH: usize = 8;

/// One manifest entry: (partition, offset) → (key, timestamp, value).
type Manifest = BTreeMap<(u32, i64), (String, i64, String)>;

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(
        std::env::var_os(name)
            .unwrap_or_else(|| panic!("{name} is not set (run checks/30-broker.sh)")),
    )
}

fn config() -> Config {
    // Small preallocation: these logs hold a few KiB.
    Config {
        segment_bytes: 8 << 20,
        ..Config::default()
    }
}

fn read_manifest(path: &Path) -> Manifest {
    let text = std::fs::read_to_string(path).unwrap();
    let mut m = Manifest::new();
    for line in text.lines() {
        let f: Vec<&str> = line.splitn(5, '\t').collect();
        assert_eq!(f.len(), 5, "bad manifest line {line:?}");
        let old = m.insert(
            (f[0].parse().unwrap(), f[1].parse().unwrap()),
            (f[2].to_owned(), f[3].parse().unwrap(), f[4].to_owned()),
        );
        assert!(old.is_none(), "two acknowledgements for {} {}", f[0], f[1]);
    }
    m
}

/// A log a broker closed cleanly opens with nothing cut or removed.
fn assert_untouched(log: &Log) {
    let report = log.open_report();
    assert!(
        report.truncated.is_none() && report.segments_removed == 0,
        "{}: partlog cut a log the broker wrote: {report:?}",
        log.dir().display()
    );
}

/// The batch's records, through partlog's record API (an lz4 batch decompressed by partlog).
fn records(batch: &RecordBatch) -> Vec<partlog::batch::Record> {
    match batch.compression() {
        Compression::None | Compression::Lz4 => {}
        other => panic!("the producer was set to lz4, found {other:?}"),
    }
    batch.records().unwrap().map(|r| r.unwrap()).collect()
}

/// What partlog reads from `topic`'s partitions under `logs`: every record, and how many of its
/// batches there were, were lz4 and came from an idempotent producer (had a producer id). Each record is also looked up on its own (`read(offset, 1)`), which walks the
/// offset index the broker (or partlog) wrote.
fn read_topic(logs: &Path, topic: &str) -> (Manifest, [usize; 3]) {
    let mut found = Manifest::new();
    let mut counts = [0; 3];
    for p in 0..PARTITIONS {
        let log = Log::open(logs.join(format!("{topic}-{p}")), config()).unwrap();
        assert_untouched(&log);
        assert_eq!(log.log_start_offset(), 0);
        let mut offset = 0;
        while offset < log.log_end_offset() {
            let read = log.read(offset, 1 << 20).unwrap();
            assert!(
                !read.is_empty(),
                "{topic}-{p}: nothing at {offset} below the log end offset"
            );
            for batch in &read.batches {
                batch.verify_crc().unwrap();
                assert!(!batch.header().is_control() && !batch.header().is_transactional());
                counts[0] += 1;
                counts[1] += usize::from(batch.compression() == Compression::Lz4);
                counts[2] += usize::from(batch.header().producer_id >= 0);
                let recs = records(batch);
                assert_eq!(recs.len(), usize::try_from(batch.record_count()).unwrap());
                for r in recs {
                    let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
                    let value = String::from_utf8(r.value.unwrap().to_vec()).unwrap();
                    assert!(found
                        .insert((p, r.offset), (key, r.timestamp, value))
                        .is_none());
                }
            }
            offset = read.next_offset;
        }
        for offset in 0..log.log_end_offset() {
            let read = log.read(offset, 1).unwrap();
            let first = &read.batches[0];
            assert!(
                first.base_offset() <= offset && offset <= first.last_offset(),
                "{topic}-{p}: read({offset}) starts at the batch [{}, {}]",
                first.base_offset(),
                first.last_offset()
            );
        }
        log.close().unwrap();
    }
    (found, counts)
}

/// Fails listing what `expected` holds that `found` lacks or holds differently, and the reverse.
fn assert_same(expected: &Manifest, found: &Manifest) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| found.get(k) != Some(v))
        .take(5)
        .collect();
    let extra: Vec<_> = found
        .keys()
        .filter(|k| !expected.contains_key(k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "expected but not found as expected: {missing:?}; found but not expected: {extra:?}"
    );
}

#[test]
#[ignore = "needs a Kafka broker's directories: interop/kafka/checks/30-broker.sh"]
fn partlog_finds_every_ride_at_the_offset_the_broker_acknowledged() {
    let logs = env_path("PARTLOG_BROKER_LOGS");
    let acks = read_manifest(&env_path("PARTLOG_BROKER_ACKS"));
    for ((p, offset), (key, _, _)) in &acks {
        assert_eq!(
            partition_for_key(key.as_bytes(), PARTITIONS),
            Some(*p),
            "offset {offset}: Kafka's producer put key {key} in partition {p}, partlog's partitioner disagrees"
        );
    }
    let (found, [batches, lz4, idempotent]) = read_topic(&logs, "rides");
    assert_same(&acks, &found);
    assert_eq!(
        (lz4, idempotent),
        (batches, batches),
        "every batch is lz4 and has a producer id"
    );
    println!(
        "partlog found all {} acknowledged rides in {batches} lz4 batches",
        acks.len()
    );
}

#[test]
#[ignore = "needs a Kafka broker's directories: interop/kafka/checks/30-broker.sh"]
fn partlog_reads_its_rides_back_after_the_broker_loaded_them() {
    // The broker recovered or trusted partlog's segments, rebuilt indexes, wrote producer
    // snapshots and a new leader epoch: partlog must still read exactly what it wrote.
    let logs = env_path("PARTLOG_BROKER_LOGS");
    let wrote = read_manifest(&env_path("PARTLOG_BROKER_WROTE"));
    let (found, _) = read_topic(&logs, "rides-partlog");
    assert_same(&wrote, &found);
}

#[test]
#[ignore = "needs a stopped Kafka broker's data directory: interop/kafka/checks/30-broker.sh"]
fn partlog_writes_rides_into_the_brokers_partition_directories() {
    let data = env_path("PARTLOG_BROKER_DATA");
    let csv = std::fs::read_to_string(env_path("PARTLOG_BROKER_RIDES")).unwrap();
    // Now, not the rides' 2020 times: the broker's time retention must not take them.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let now = i64::try_from(now).unwrap();
    let mut by_partition: BTreeMap<u32, Vec<(String, i64, String)>> = BTreeMap::new();
    for (i, line) in csv.lines().skip(1).filter(|l| !l.is_empty()).enumerate() {
        let key = line.split(',').next().unwrap().to_owned();
        let p = partition_for_key(key.as_bytes(), PARTITIONS).unwrap();
        let ts = now + i64::try_from(i).unwrap();
        by_partition
            .entry(p)
            .or_default()
            .push((key, ts, line.to_owned()));
    }
    let mut wrote = String::new();
    for p in 0..PARTITIONS {
        let dir = data.join(format!("rides-partlog-{p}"));
        let metadata = std::fs::read(dir.join("partition.metadata")).unwrap();
        // Small segments and a dense index: the broker loads several of partlog's segments per
        // partition, with index and time-index entries, and reads across their boundaries.
        let small = Config {
            segment_bytes: 4096,
            index_interval_bytes: 512,
            ..config()
        };
        let log = Log::open(&dir, small).unwrap();
        assert_untouched(&log);
        assert_eq!(
            log.log_end_offset(),
            0,
            "the broker's rides-partlog-{p} is empty"
        );
        for chunk in by_partition
            .get(&p)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .chunks(RIDES_PER_BATCH)
        {
            let mut b = BatchBuilder::new();
            for (key, ts, value) in chunk {
                b.push(&SimpleRecord::new(
                    *ts,
                    Some(key.clone()),
                    Some(value.clone()),
                ))
                .unwrap();
            }
            // Leader epoch 0: the epoch the broker gave the partition when it created it.
            let info = log
                .append_batches(
                    &b.build().unwrap(),
                    AppendOrigin::Leader { leader_epoch: 0 },
                )
                .unwrap();
            for ((key, ts, value), offset) in chunk.iter().zip(info.first_offset..) {
                wrote.push_str(&format!("{p}\t{offset}\t{key}\t{ts}\t{value}\n"));
            }
        }
        log.flush().unwrap();
        assert!(
            log.segment_count() > 1,
            "rides-partlog-{p}: one segment only"
        );
        log.close().unwrap();
        assert_eq!(
            std::fs::read(dir.join("partition.metadata")).unwrap(),
            metadata,
            "partition.metadata is kept"
        );
    }
    std::fs::write(env_path("PARTLOG_BROKER_WROTE"), wrote).unwrap();
}
