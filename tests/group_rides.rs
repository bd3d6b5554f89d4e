//! End to end: the real NYC TLC rides (266) of `../shared/data/rides.csv` (skipped when absent)
//! into a 2-partition topic keyed by VendorID with the pickup time as timestamp, consumed by a
//! two-member group, one of which dies midway: every ride is consumed exactly once, from the
//! partition Kafka's default partitioner chooses for its key.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use partlog::batch::SimpleRecord;
use partlog::topic::{
    partition_for_key, Consumer, ConsumerConfig, GroupCoordinator, OffsetReset, Producer,
    ProducerConfig, Topic, TopicConfig,
};
use partlog::ManualClock;

// The taxi example's reader of TLC times (one parser for the example and this test).
#[path = "../examples/taxi_rides/rides.rs"]
#[allow(dead_code)]
mod rides;
use rides::parse_time;

#[test]
fn every_ride_is_consumed_exactly_once_from_the_partition_kafka_chooses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/rides.csv");
    let Ok(csv) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} not found", path.display());
        return;
    };
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (vendor, pickup) = (col("VendorID"), col("tpep_pickup_datetime"));

    let data = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_600_000_000_000);
    let topic = Topic::create(data.path(), "rides", 2, TopicConfig::default()).unwrap();
    // Small batches, so the rides spread over many batches per partition.
    let mut producer = Producer::new(
        &topic,
        ProducerConfig {
            batch_size: 2048,
            seed: 1,
            ..ProducerConfig::default()
        },
    );
    // ride number -> (partition Kafka picks, pickup time)
    let mut expected = BTreeMap::new();
    for (i, line) in lines.enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let key = fields[vendor].to_owned();
        let ts = parse_time(fields[pickup]).unwrap();
        let record = SimpleRecord::new(ts, Some(key.clone()), Some(line.to_owned()))
            .with_header("ride", Some(i.to_string()));
        let p = producer.send(record).unwrap();
        let kafka = partition_for_key(key.as_bytes(), 2).unwrap();
        assert_eq!(p, kafka);
        expected.insert(i, (kafka, ts));
    }
    producer.flush().unwrap();
    // The issue says 265 rides; the file holds 266 (its last line has no newline). Count them.
    let rides = csv.lines().skip(1).filter(|l| !l.is_empty()).count();
    assert!(rides >= 265);
    assert_eq!(expected.len(), rides);
    let d = topic.describe();
    let produced: i64 = d.partitions.iter().map(|p| p.high_watermark).sum();
    assert_eq!(produced, rides as i64);
    // VendorID 1 and 2 hash to different partitions of 2.
    assert_ne!(partition_for_key(b"1", 2), partition_for_key(b"2", 2));
    assert!(d.partitions.iter().all(|p| p.high_watermark > 0));

    let coordinator =
        GroupCoordinator::open_data_dir_with_clock(data.path(), Arc::new(clock.clone())).unwrap();
    let config = |client: &str| ConsumerConfig {
        client_id: client.into(),
        session_timeout_ms: 10_000,
        auto_offset_reset: OffsetReset::Earliest,
        max_poll_records: 20,
        ..ConsumerConfig::new("riders")
    };
    let mut a = Consumer::join(&coordinator, &[&topic], config("a")).unwrap();
    let mut b = Consumer::join(&coordinator, &[&topic], config("b")).unwrap();
    a.heartbeat().unwrap();
    assert_eq!(a.assignment().len() + b.assignment().len(), 2);
    assert_eq!(a.assignment().len(), 1, "one partition each");

    let mut consumed: BTreeMap<usize, usize> = BTreeMap::new();
    let mut check = |records: &[partlog::topic::ConsumerRecord]| {
        for r in records {
            let ride: usize = r.headers[0]
                .value
                .as_deref()
                .map(|v| std::str::from_utf8(v).unwrap().parse().unwrap())
                .unwrap();
            let (partition, ts) = expected[&ride];
            assert_eq!(r.partition, partition, "ride {ride} in the wrong partition");
            assert_eq!(r.timestamp, ts);
            *consumed.entry(ride).or_default() += 1;
        }
    };
    // Both read and commit for a while; then b dies (no heartbeat, no leave) after a commit.
    for _ in 0..3 {
        clock.advance(1_000);
        let got = a.poll().unwrap();
        check(&got);
        a.commit().unwrap();
        let got = b.poll().unwrap();
        check(&got);
        b.commit().unwrap();
    }
    let b_partitions = b.assignment().to_vec();
    drop(b);
    // a keeps polling; after b's session timeout it is given b's partition too.
    let mut idle = 0;
    while idle < 3 {
        clock.advance(2_000);
        let got = a.poll().unwrap();
        if got.is_empty() && a.assignment().len() == 2 {
            idle += 1;
        }
        check(&got);
        a.commit().unwrap();
    }
    assert!(b_partitions.iter().all(|tp| a.assignment().contains(tp)));
    assert_eq!(consumed.len(), rides, "every ride consumed");
    assert!(consumed.values().all(|&n| n == 1), "a ride consumed twice");
    // The group's committed offsets are the partitions' ends.
    let g = coordinator.describe_group("riders").unwrap();
    for p in &d.partitions {
        let tp = partlog::topic::TopicPartition::new("rides", p.partition);
        assert_eq!(g.offsets.get(&tp).copied().unwrap_or(0), p.high_watermark);
    }
}
