//! Topics: names that cannot escape the data directory, create/open/describe/delete, adding
//! partitions without losing data, and Kafka's default partitioner byte for byte.

use std::fs;
use std::path::Path;

use partlog::batch::SimpleRecord;
use partlog::replica::ReplicaId;
use partlog::topic::{
    delete_topic, list_topics, murmur2, partition_for_key, Partitioner, ReplicaAssignment, Topic,
    TopicConfig, TopicError, TopicName, TopicSource,
};
use partlog::{Config, Error};

fn small() -> TopicConfig {
    TopicConfig::from(Config {
        segment_bytes: 4096,
        segment_index_bytes: 1024,
        index_interval_bytes: 256,
        max_batch_bytes: 4096,
        ..Config::default()
    })
}

/// Everything in `dir`, recursively, as paths relative to it.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        out.push(name.clone());
        if e.file_type().unwrap().is_dir() {
            out.extend(tree(&e.path()).into_iter().map(|n| format!("{name}/{n}")));
        }
    }
    out.sort();
    out
}

#[test]
fn topic_names_follow_kafkas_rules() {
    for ok in [
        "a",
        "rides",
        "RIDES.v2",
        "my_topic-1",
        "...",
        "-",
        "_",
        "a..b",
        &"x".repeat(249),
    ] {
        assert!(TopicName::new(ok).is_ok(), "{ok:?} should be valid");
    }
    for bad in [
        "",
        ".",
        "..",
        &"x".repeat(250),
        "a b",
        "a/b",
        "a\\b",
        "../x",
        "..\\x",
        "/etc/passwd",
        "/",
        "a\0b",
        "\0",
        "x\n",
        "rides:1",
        "caf\u{e9}",
        // Unicode look-alikes of legal characters: full stop, solidus, hyphen.
        "\u{2024}\u{2024}",
        "a\u{2215}b",
        "\u{ff0e}\u{ff0e}",
        "a\u{2010}b",
        "\u{ff41}",
        "a\u{200b}",
        "*",
        "a?",
        "~",
    ] {
        match TopicName::new(bad) {
            Err(TopicError::InvalidName { name, .. }) => assert_eq!(name, bad),
            other => panic!("{bad:?} accepted: {other:?}"),
        }
    }
}

#[test]
fn a_bad_name_never_touches_the_file_system() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    fs::create_dir(&data).unwrap();
    // A sibling directory that a traversal would reach.
    fs::create_dir(root.path().join("victim")).unwrap();
    fs::write(root.path().join("victim").join("keep"), b"keep").unwrap();
    let absolute = root.path().join("victim").display().to_string();
    for bad in [
        "../victim",
        "..",
        ".",
        "a/b",
        absolute.as_str(),
        "victim\0",
        "",
        &"v".repeat(250),
        "\u{ff0e}\u{ff0e}/victim",
    ] {
        for r in [
            Topic::create(&data, bad, 1, small()).map(|_| ()),
            Topic::open(&data, bad).map(|_| ()),
            delete_topic(&data, bad),
        ] {
            assert!(
                matches!(r, Err(Error::Topic(TopicError::InvalidName { .. }))),
                "{bad:?}: {r:?}"
            );
        }
    }
    assert!(tree(&data).is_empty(), "{:?}", tree(&data));
    assert_eq!(tree(&root.path().join("victim")), ["keep"]);
}

#[test]
fn create_lays_out_kafka_partition_directories_and_reopens() {
    let data = tempfile::tempdir().unwrap();
    let topic = Topic::create(data.path(), "rides", 3, small()).unwrap();
    let names: Vec<_> = tree(data.path())
        .into_iter()
        .filter(|n| !n.contains('/'))
        .collect();
    // Kafka's data-directory files beside the partitions: `meta.properties`, and partlog's
    // lock for read-modify-writes of the shared checkpoint files.
    assert_eq!(
        names,
        [
            ".partlog-checkpoint.lock",
            "meta.properties",
            "rides-0",
            "rides-1",
            "rides-2",
            "rides.topic-metadata"
        ]
    );
    for p in 0..3u32 {
        for i in 0..=p {
            topic
                .append(p, &[SimpleRecord::new(i64::from(i), Some("k"), Some("v"))])
                .unwrap();
        }
    }
    assert!(matches!(
        topic.append(3, &[SimpleRecord::new(0, Some("k"), Some("v"))]),
        Err(Error::Topic(TopicError::UnknownPartition {
            partition: 3,
            partition_count: 3,
            ..
        }))
    ));
    assert!(matches!(
        Topic::create(data.path(), "rides", 1, small()),
        Err(Error::Topic(TopicError::AlreadyExists { .. }))
    ));
    topic.close().unwrap();

    let topic = Topic::open(data.path(), "rides").unwrap();
    assert_eq!(topic.config(), &small());
    let d = topic.describe();
    assert_eq!(d.partitions.len(), 3);
    for (p, pd) in d.partitions.iter().enumerate() {
        assert_eq!(pd.partition, p as u32);
        assert_eq!(pd.log_start_offset, 0);
        assert_eq!(pd.log_end_offset, p as i64 + 1);
        assert_eq!(pd.high_watermark, p as i64 + 1);
        assert_eq!(pd.segments, 1);
        assert!(pd.size_bytes > 0);
        // Reopening made this broker leader at a new epoch.
        assert_eq!(pd.leader_epoch, Some(1));
        assert_eq!(
            pd.assignment,
            ReplicaAssignment {
                leader: Some(ReplicaId(0)),
                replicas: vec![ReplicaId(0)],
                isr: vec![ReplicaId(0)],
            }
        );
    }
    // A caller in a replicated arrangement supplies the replica set.
    let d = topic.describe_with(|p, _| ReplicaAssignment {
        leader: Some(ReplicaId(p + 1)),
        replicas: vec![ReplicaId(p + 1), ReplicaId(9)],
        isr: vec![ReplicaId(p + 1)],
    });
    assert_eq!(d.partitions[2].assignment.leader, Some(ReplicaId(3)));
    assert_eq!(topic.offsets(1).unwrap().high_watermark, 2);
    let read = topic.read_committed(2, 0, 1 << 20).unwrap();
    assert_eq!(read.next_offset, 3);
    topic.close().unwrap();
    assert!(matches!(
        Topic::open(data.path(), "nope"),
        Err(Error::Topic(TopicError::NotFound { .. }))
    ));
}

#[test]
fn partition_counts_are_checked() {
    let data = tempfile::tempdir().unwrap();
    for n in [0, partlog::topic::MAX_PARTITIONS + 1] {
        assert!(matches!(
            Topic::create(data.path(), "t", n, small()),
            Err(Error::Topic(TopicError::InvalidPartitionCount { .. }))
        ));
    }
    assert!(list_topics(data.path()).unwrap().is_empty());
    let mut t = Topic::create(data.path(), "t", 2, small()).unwrap();
    for n in [0, 1, 2] {
        assert!(matches!(
            t.add_partitions(n),
            Err(Error::Topic(TopicError::InvalidPartitionCount {
                current: 2,
                ..
            }))
        ));
    }
    assert_eq!(t.partition_count(), 2);
}

#[test]
fn adding_partitions_keeps_the_data_and_survives_reopen() {
    let data = tempfile::tempdir().unwrap();
    let mut topic = Topic::create(data.path(), "grow", 2, small()).unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("key-{i}")).collect();
    for k in &keys {
        topic
            .send(&SimpleRecord::new(0, Some(k.clone()), Some("v")))
            .unwrap();
    }
    let before: Vec<i64> = (0..2)
        .map(|p| topic.offsets(p).unwrap().log_end_offset)
        .collect();
    assert_eq!(before.iter().sum::<i64>(), 50);
    topic.add_partitions(5).unwrap();
    assert_eq!(topic.partition_count(), 5);
    for p in 0..2 {
        assert_eq!(topic.offsets(p).unwrap().log_end_offset, before[p as usize]);
    }
    let (p, _) = topic
        .send(&SimpleRecord::new(0, Some("key-7"), Some("v")))
        .unwrap();
    assert_eq!(Some(p), partition_for_key(b"key-7", 5));
    topic.close().unwrap();
    let topic = Topic::open(data.path(), "grow").unwrap();
    assert_eq!(topic.partition_count(), 5);
    let total: i64 = (0..5)
        .map(|p| topic.offsets(p).unwrap().log_end_offset)
        .sum();
    assert_eq!(total, 51);
    topic.close().unwrap();
}

#[test]
fn leftovers_of_a_crash_mid_create_or_add_are_not_data() {
    let data = tempfile::tempdir().unwrap();
    // A crash after the partition directories but before the metadata: no topic.
    let t = Topic::create(data.path(), "t", 2, small()).unwrap();
    t.append(0, &[SimpleRecord::new(0, Some("k"), Some("old"))])
        .unwrap();
    t.close().unwrap();
    fs::remove_file(data.path().join("t.topic-metadata")).unwrap();
    // Such a crash leaves no topic ids either: they are written after the metadata.
    for p in 0..2 {
        fs::remove_file(data.path().join(format!("t-{p}/partition.metadata"))).unwrap();
    }
    assert!(list_topics(data.path()).unwrap().is_empty());
    let t = Topic::create(data.path(), "t", 1, small()).unwrap();
    assert_eq!(
        t.offsets(0).unwrap().log_end_offset,
        0,
        "stale data came back"
    );
    assert!(!data.path().join("t-1").exists());
    t.close().unwrap();
    // A stray directory above the count is ignored by open and cleared by add.
    fs::create_dir(data.path().join("t-3")).unwrap();
    fs::write(data.path().join("t-3").join("junk"), b"x").unwrap();
    let mut t = Topic::open(data.path(), "t").unwrap();
    assert_eq!(t.partition_count(), 1);
    t.add_partitions(4).unwrap();
    assert!(!data.path().join("t-3").join("junk").exists());
    t.close().unwrap();
}

#[test]
fn delete_removes_only_that_topic() {
    let data = tempfile::tempdir().unwrap();
    for name in ["a", "a-1", "b"] {
        let t = Topic::create(data.path(), name, 2, small()).unwrap();
        t.append(1, &[SimpleRecord::new(0, Some("k"), Some("v"))])
            .unwrap();
        t.close().unwrap();
    }
    let names: Vec<String> = list_topics(data.path())
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["a", "a-1", "b"]);
    // While open, the topic's directories are locked.
    let open = Topic::open(data.path(), "a").unwrap();
    assert!(matches!(
        delete_topic(data.path(), "a"),
        Err(Error::Locked { .. })
    ));
    open.delete().unwrap();
    // (Kafka's clean-shutdown marker comes and goes with what is open: not this test's.)
    let left: Vec<_> = tree(data.path())
        .into_iter()
        .filter(|n| !n.contains('/') && n != ".kafka_cleanshutdown")
        .collect();
    assert_eq!(
        left,
        [
            ".partlog-checkpoint.lock",
            "a-1-0",
            "a-1-1",
            "a-1.topic-metadata",
            "b-0",
            "b-1",
            "b.topic-metadata",
            "meta.properties",
            "recovery-point-offset-checkpoint",
            "replication-offset-checkpoint"
        ]
    );
    // The deleted topic's lines are gone from the shared checkpoints; the others' stay.
    let rp = std::fs::read_to_string(data.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert!(!rp.lines().any(|l| l.starts_with("a ")), "{rp}");
    assert!(rp.lines().any(|l| l.starts_with("b ")), "{rp}");
    delete_topic(data.path(), "b").unwrap();
    assert!(matches!(
        delete_topic(data.path(), "b"),
        Err(Error::Topic(TopicError::NotFound { .. }))
    ));
    let t = Topic::open(data.path(), "a-1").unwrap();
    assert_eq!(t.offsets(1).unwrap().log_end_offset, 1);
    t.close().unwrap();
}

/// Kafka's `UtilsTest.testMurmur2` values, as the Java `int`s it asserts.
#[test]
fn murmur2_matches_kafkas_published_values() {
    let cases: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];
    for (key, want) in cases {
        assert_eq!(murmur2(key), want, "{}", String::from_utf8_lossy(key));
    }
    // Kafka's default partitioner: toPositive(murmur2) % n (sign bit cleared, not abs).
    assert_eq!(
        partition_for_key(b"21", 7),
        Some(((-973_932_308i32 & 0x7fff_ffff) % 7) as u32)
    );
    assert_eq!(partition_for_key(b"abc", 1000), Some(479_470_107 % 1000));
    assert_eq!(partition_for_key(b"abc", 0), None);
}

/// Tail lengths 0-3 all go through their own branch: each key length 0..12 hashes differently
/// from its neighbours, and the empty key hashes to the mixed seed.
#[test]
fn murmur2_covers_every_tail_length() {
    let data = b"abcdefghijkl";
    let hashes: Vec<i32> = (0..=data.len()).map(|n| murmur2(&data[..n])).collect();
    let mut unique = hashes.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), hashes.len());
    // Partitioner agrees with partition_for_key for keyed records.
    let mut p = Partitioner::default();
    for n in 1..20u32 {
        assert_eq!(
            p.partition(Some(b"foobar"), 10, n),
            partition_for_key(b"foobar", n)
        );
    }
}
