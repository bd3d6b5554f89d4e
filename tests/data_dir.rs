//! The data directory as Kafka lays it out (issue 18): `meta.properties`, the four shared
//! checkpoint files (`topic partition offset` lines for every partition of the directory), and
//! `partition.metadata` with the topic id in each partition directory. Kafka's bytes are written
//! by hand here as `CheckpointFile`, `PartitionMetadata` and `MetaProperties` write them.

use std::fs;
use std::path::Path;

use partlog::batch::SimpleRecord;
use partlog::checkpoint::{
    format_topic_partition_offsets, parse_topic_partition_offsets, TopicPartitionOffsets,
};
use partlog::replica::ReplicaId;
use partlog::topic::{
    read_partition_metadata, Topic, TopicConfig, TopicError, TopicOptions, Uuid,
    LOG_START_OFFSET_CHECKPOINT, META_PROPERTIES, PARTITION_METADATA, RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
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

fn record(i: i64) -> SimpleRecord {
    SimpleRecord::new(i, Some("k"), Some("v"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

fn shared(data: &Path, name: &str) -> TopicPartitionOffsets {
    parse_topic_partition_offsets(Path::new(name), &fs::read(data.join(name)).unwrap()).unwrap()
}

fn entry(topic: &str, p: u32) -> (String, u32) {
    (topic.to_owned(), p)
}

#[test]
fn a_checkpoint_in_kafkas_bytes_parses_and_partlog_writes_the_same_bytes() {
    // What Kafka's OffsetCheckpointFile writes for two entries (version, count, lines, each
    // ending in '\n').
    let kafka = b"0\n2\nrides 0 5\nrides 1 17\n";
    let parsed = parse_topic_partition_offsets(Path::new("x"), kafka).unwrap();
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[&entry("rides", 1)], 17);
    assert_eq!(format_topic_partition_offsets(&parsed), kafka);
    // Kafka writes an empty map as "0\n0\n"; an empty file means no entries.
    assert_eq!(
        format_topic_partition_offsets(&TopicPartitionOffsets::new()),
        b"0\n0\n"
    );
    for empty in [&b""[..], b"0\n0\n", b"0\n"] {
        assert!(parse_topic_partition_offsets(Path::new("x"), empty)
            .unwrap()
            .is_empty());
    }
    // Java's readLine: no final newline, "\r\n", and runs of whitespace are all fine.
    let loose = parse_topic_partition_offsets(Path::new("x"), b"0\r\n1\r\nrides  2\t9").unwrap();
    assert_eq!(loose[&entry("rides", 2)], 9);
}

#[test]
fn damaged_checkpoints_are_refused_as_kafkas_reader_refuses_them() {
    for bad in [
        &b"1\n1\nrides 0 5\n"[..],   // wrong version
        b"0\n2\nrides 0 5\n",        // count mismatch
        b"0\n1\nrides 0 5\nx 1 2\n", // count mismatch the other way
        b"0\n1\nrides 0\n",          // a line without its offset
        b"0\n1\nrides x 5\n",        // partition not a number
        b"0\n1\nrides 0 five\n",     // offset not a number
        b"0\n1\n rides 0 5\n",       // Java's split gives an empty first field
        b"0\nmany\n",                // count not a number
        b"\xff\n",                   // not UTF-8
    ] {
        let r = parse_topic_partition_offsets(Path::new("cp"), bad);
        assert!(
            matches!(r, Err(Error::Corrupt { .. })),
            "{:?}: {r:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn several_topics_share_the_checkpoint_files_and_keep_each_others_lines() {
    let data = tempfile::tempdir().unwrap();
    let a = Topic::create(data.path(), "a", 2, small()).unwrap();
    let b = Topic::create(data.path(), "b", 1, small()).unwrap();
    a.append(0, &[record(0), record(1)]).unwrap();
    b.append(0, &[record(0)]).unwrap();
    // Two handles, interleaved: each write keeps the other topic's lines.
    a.flush().unwrap();
    b.flush().unwrap();
    a.append(1, &[record(2)]).unwrap();
    a.flush().unwrap();
    let rp = shared(data.path(), RECOVERY_POINT_CHECKPOINT);
    assert_eq!(rp[&entry("a", 0)], 2);
    assert_eq!(rp[&entry("a", 1)], 1);
    assert_eq!(rp[&entry("b", 0)], 1);
    let hw = shared(data.path(), REPLICATION_OFFSET_CHECKPOINT);
    assert_eq!(hw.len(), 3);
    assert_eq!(hw[&entry("b", 0)], 1);
    // The bytes are Kafka's layout, sorted.
    assert_eq!(
        read(&data.path().join(REPLICATION_OFFSET_CHECKPOINT)),
        "0\n3\na 0 2\na 1 1\nb 0 1\n"
    );
    // A line for a partition whose directory is gone is dropped, as Kafka's next write would.
    a.close().unwrap();
    let path = data.path().join(RECOVERY_POINT_CHECKPOINT);
    fs::write(&path, "0\n2\nghost 0 7\nb 0 1\n").unwrap();
    b.close().unwrap();
    assert_eq!(shared(data.path(), RECOVERY_POINT_CHECKPOINT).len(), 1);
    assert!(!read(&path).contains("ghost"));
}

#[test]
fn meta_properties_is_created_then_verified() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 1, small()).unwrap();
    let meta = t.data_dir_files().meta_properties().clone();
    t.close().unwrap();
    let text = read(&data.path().join(META_PROPERTIES));
    assert!(text.contains("version=1\n"), "{text}");
    assert!(text.contains("node.id=0\n"), "{text}");
    assert!(text.contains(&format!("cluster.id={}\n", meta.cluster_id)));
    assert_eq!(meta.cluster_id.len(), 22);
    assert!(text.contains(&format!("directory.id={}\n", meta.directory_id.unwrap())));
    // Same node: opens. Another node: refused.
    Topic::open(data.path(), "rides").unwrap().close().unwrap();
    let other = TopicOptions {
        broker: ReplicaId(1),
        ..TopicOptions::default()
    };
    assert!(matches!(
        Topic::open_with(data.path(), "rides", other),
        Err(Error::Topic(TopicError::MetaProperties { .. }))
    ));
    // A file Kafka's StorageTool wrote (comment and date lines, any key order) opens.
    fs::write(
        data.path().join(META_PROPERTIES),
        "#\n#Sat Dec 05 15:00:00 UTC 2026\nnode.id=0\ndirectory.id=AAAAAAAAAAEAAAAAAAAAAg\n\
         version=1\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n",
    )
    .unwrap();
    let t = Topic::open(data.path(), "rides").unwrap();
    assert_eq!(
        t.data_dir_files().meta_properties().cluster_id,
        "MkU3OEVBNTcwNTJENDM2Qk"
    );
    t.close().unwrap();
    // A given cluster id must match the file's.
    let cluster = |id: &str| TopicOptions {
        cluster_id: Some(id.to_owned()),
        ..TopicOptions::default()
    };
    Topic::open_with(data.path(), "rides", cluster("MkU3OEVBNTcwNTJENDM2Qk"))
        .unwrap()
        .close()
        .unwrap();
    assert!(matches!(
        Topic::open_with(data.path(), "rides", cluster("another")),
        Err(Error::Topic(TopicError::MetaProperties { .. }))
    ));
    // A new directory takes the given one.
    let fresh = tempfile::tempdir().unwrap();
    Topic::create_with(fresh.path(), "x", 1, small(), cluster("kafka-cluster-1"))
        .unwrap()
        .close()
        .unwrap();
    assert!(read(&fresh.path().join(META_PROPERTIES)).contains("cluster.id=kafka-cluster-1\n"));
    // A ZooKeeper-era V0 file is refused, as KRaft refuses it.
    fs::write(
        data.path().join(META_PROPERTIES),
        "version=0\nbroker.id=0\ncluster.id=MkU3OEVBNTcwNTJENDM2Qk\n",
    )
    .unwrap();
    assert!(matches!(
        Topic::open(data.path(), "rides"),
        Err(Error::Topic(TopicError::MetaProperties { .. }))
    ));
}

#[test]
fn partition_metadata_holds_the_topic_id_in_kafkas_bytes_and_a_mismatch_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 2, small()).unwrap();
    let id = t.topic_id().unwrap();
    t.close().unwrap();
    for p in 0..2 {
        let dir = data.path().join(format!("rides-{p}"));
        assert_eq!(
            fs::read(dir.join(PARTITION_METADATA)).unwrap(),
            format!("version: 0\ntopic_id: {id}").into_bytes()
        );
        assert_eq!(read_partition_metadata(&dir).unwrap(), Some(id));
    }
    // A given id is used; the zero id (Kafka's "no id") is refused before anything is made.
    let given: Uuid = "MkU3OEVBNTcwNTJENDM2Qg".parse().unwrap();
    let with_id = |id| TopicOptions {
        topic_id: Some(id),
        ..TopicOptions::default()
    };
    let g = Topic::create_with(data.path(), "given", 1, small(), with_id(given)).unwrap();
    assert_eq!(g.topic_id(), Some(given));
    g.close().unwrap();
    assert!(matches!(
        Topic::create_with(data.path(), "zero", 1, small(), with_id(Uuid::ZERO)),
        Err(Error::Config { .. })
    ));
    assert!(!data.path().join("zero-0").exists());
    // The id survives reopening.
    let t = Topic::open(data.path(), "rides").unwrap();
    assert_eq!(t.topic_id(), Some(id));
    t.close().unwrap();
    // Partition 1 of another incarnation of the topic: Kafka's InconsistentTopicIdException.
    let other = Uuid::random().unwrap();
    fs::write(
        data.path().join("rides-1").join(PARTITION_METADATA),
        format!("version: 0\ntopic_id: {other}"),
    )
    .unwrap();
    let r = Topic::open(data.path(), "rides");
    assert!(
        matches!(
            &r,
            Err(Error::Topic(TopicError::InconsistentTopicId {
                partition: 1,
                ..
            }))
        ),
        "{r:?}"
    );
    // A garbled file is corrupt, not a silent new id.
    fs::write(
        data.path().join("rides-1").join(PARTITION_METADATA),
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA",
    )
    .unwrap();
    assert!(matches!(
        Topic::open(data.path(), "rides"),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn a_directory_in_the_old_per_partition_layout_opens_with_no_data_lost() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 2, small()).unwrap();
    for i in 0..5 {
        t.append(0, &[record(i)]).unwrap();
    }
    t.append(1, &[record(9)]).unwrap();
    t.close().unwrap();
    // Back to the old layout: no data-dir files, no topic ids anywhere.
    for name in [
        META_PROPERTIES,
        RECOVERY_POINT_CHECKPOINT,
        REPLICATION_OFFSET_CHECKPOINT,
        ".partlog-checkpoint.lock",
    ] {
        fs::remove_file(data.path().join(name)).unwrap();
    }
    for p in 0..2 {
        fs::remove_file(data.path().join(format!("rides-{p}/{PARTITION_METADATA}"))).unwrap();
    }
    let meta = data.path().join("rides.topic-metadata");
    let text = read(&meta);
    let kept: Vec<&str> = text
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with("topic.id "))
        .collect();
    fs::write(&meta, format!("0\n{}\n{}\n", kept.len(), kept.join("\n"))).unwrap();

    let t = Topic::open(data.path(), "rides").unwrap();
    let d = t.describe();
    assert_eq!(d.partitions[0].log_end_offset, 5);
    assert_eq!(d.partitions[0].high_watermark, 5);
    assert_eq!(d.partitions[1].high_watermark, 1);
    let id = t.topic_id().expect("an id is given on open");
    t.close().unwrap();
    assert_eq!(
        read_partition_metadata(&data.path().join("rides-0")).unwrap(),
        Some(id)
    );
    assert!(read(&meta).contains(&format!("topic.id {id}\n")));
    assert_eq!(
        shared(data.path(), REPLICATION_OFFSET_CHECKPOINT)[&entry("rides", 0)],
        5
    );
}

#[test]
fn a_partition_without_its_own_checkpoints_takes_them_from_the_shared_files() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 1, small()).unwrap();
    for i in 0..4 {
        t.append(0, &[record(i)]).unwrap();
    }
    t.partition(0).unwrap().delete_records(2).unwrap();
    t.close().unwrap();
    assert_eq!(
        read(&data.path().join(LOG_START_OFFSET_CHECKPOINT)),
        "0\n1\nrides 0 2\n"
    );
    // As a Kafka broker's partition directory: only the shared files know the offsets.
    let pdir = data.path().join("rides-0");
    for name in [
        "recovery-point-offset-checkpoint",
        "log-start-offset-checkpoint",
        "replication-offset-checkpoint",
    ] {
        fs::remove_file(pdir.join(name)).unwrap();
    }
    let t = Topic::open(data.path(), "rides").unwrap();
    let offsets = partlog::topic::TopicSource::offsets(&t, 0).unwrap();
    assert_eq!(offsets.log_start_offset, 2);
    assert_eq!(offsets.high_watermark, 4);
    assert_eq!(offsets.log_end_offset, 4);
    t.close().unwrap();
}

#[test]
fn partition_directories_a_broker_created_are_adopted_with_their_topic_id() {
    let data = tempfile::tempdir().unwrap();
    // Make partition directories, then strip partlog's own files from them, leaving what a
    // broker leaves: segments, Kafka's partition.metadata and the shared checkpoints.
    let t = Topic::create(data.path(), "orders", 2, small()).unwrap();
    t.append(1, &[record(0), record(1), record(2)]).unwrap();
    t.close().unwrap();
    let kafka_id: Uuid = "MkU3OEVBNTcwNTJENDM2Qg".parse().unwrap();
    fs::remove_file(data.path().join("orders.topic-metadata")).unwrap();
    for p in 0..2 {
        let pdir = data.path().join(format!("orders-{p}"));
        for name in [
            "recovery-point-offset-checkpoint",
            "log-start-offset-checkpoint",
            "replication-offset-checkpoint",
        ] {
            let _ = fs::remove_file(pdir.join(name));
        }
        fs::write(
            pdir.join(PARTITION_METADATA),
            format!("version: 0\ntopic_id: {kafka_id}"),
        )
        .unwrap();
    }
    assert!(matches!(
        Topic::open(data.path(), "orders"),
        Err(Error::Topic(TopicError::NotFound { .. }))
    ));
    let t = Topic::adopt(data.path(), "orders", small(), TopicOptions::default()).unwrap();
    assert_eq!(t.topic_id(), Some(kafka_id));
    assert_eq!(t.partitions().len(), 2);
    let offsets = partlog::topic::TopicSource::offsets(&t, 1).unwrap();
    assert_eq!((offsets.high_watermark, offsets.log_end_offset), (3, 3));
    t.close().unwrap();
    // From now on it is a partlog topic.
    let t = Topic::open(data.path(), "orders").unwrap();
    assert_eq!(t.topic_id(), Some(kafka_id));
    t.close().unwrap();
    // Nothing to adopt, or a gap in the numbers: refused.
    assert!(matches!(
        Topic::adopt(data.path(), "none", small(), TopicOptions::default()),
        Err(Error::Topic(TopicError::CannotAdopt { .. }))
    ));
    fs::create_dir(data.path().join("gap-0")).unwrap();
    fs::create_dir(data.path().join("gap-2")).unwrap();
    assert!(matches!(
        Topic::adopt(data.path(), "gap", small(), TopicOptions::default()),
        Err(Error::Topic(TopicError::CannotAdopt { .. }))
    ));
}

#[test]
fn a_garbled_shared_recovery_point_is_read_as_empty_but_a_garbled_high_watermark_file_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 1, small()).unwrap();
    t.append(0, &[record(0)]).unwrap();
    t.close().unwrap();
    // Kafka's LogManager resets a bad recovery-point or log-start file to empty.
    fs::write(data.path().join(RECOVERY_POINT_CHECKPOINT), "7\n").unwrap();
    fs::write(data.path().join(LOG_START_OFFSET_CHECKPOINT), "0\n9\n").unwrap();
    let t = Topic::open(data.path(), "rides").unwrap();
    assert_eq!(t.describe().partitions[0].log_end_offset, 1);
    t.close().unwrap();
    assert_eq!(
        shared(data.path(), RECOVERY_POINT_CHECKPOINT)[&entry("rides", 0)],
        1
    );
    // A bad replication-offset-checkpoint fails the directory in Kafka, and is not written over.
    let hw = data.path().join(REPLICATION_OFFSET_CHECKPOINT);
    fs::write(&hw, "0\n3\nrides 0 1\n").unwrap();
    assert!(matches!(
        Topic::open(data.path(), "rides"),
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(read(&hw), "0\n3\nrides 0 1\n");
}

#[test]
fn a_stale_shared_recovery_point_never_lets_recovery_skip_what_the_partition_has_not_synced() {
    // The shared file is written only at flush, tick and close; the partition's own recovery
    // point is lowered durably on truncation. Here the own file says 0 (nothing trusted) and the
    // shared one says the whole log: a damaged batch in the first segment must still be found.
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 1, small()).unwrap();
    let big = SimpleRecord::new(0, Some("k"), Some("v".repeat(600)));
    for _ in 0..20 {
        t.append(0, std::slice::from_ref(&big)).unwrap();
    }
    assert!(t.partition(0).unwrap().log().segment_count() > 2);
    t.close().unwrap();
    assert_eq!(
        shared(data.path(), RECOVERY_POINT_CHECKPOINT)[&entry("rides", 0)],
        20
    );
    let pdir = data.path().join("rides-0");
    // As a crash leaves it: no marker of the partition's, none of the data directory's.
    fs::remove_file(pdir.join("clean-shutdown")).unwrap();
    fs::remove_file(data.path().join(KAFKA_MARKER)).unwrap();
    fs::write(pdir.join("recovery-point-offset-checkpoint"), "0\n1\n0\n").unwrap();
    let first = pdir.join("00000000000000000000.log");
    let mut bytes = fs::read(&first).unwrap();
    bytes[100] ^= 0xff; // inside the first batch's records: its CRC fails
    fs::write(&first, &bytes).unwrap();

    let t = Topic::open(data.path(), "rides").unwrap();
    let p = t.partition(0).unwrap();
    let (base, position, _) = p
        .log()
        .open_report()
        .truncated
        .clone()
        .expect("the damaged batch is found and cut");
    assert_eq!((base, position), (0, 0));
    assert_eq!(p.log_end_offset(), 0);
    t.close().unwrap();
}

#[test]
fn tick_writes_the_shared_checkpoints() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 1, small()).unwrap();
    t.append(0, &[record(0), record(1)]).unwrap();
    assert!(!data.path().join(REPLICATION_OFFSET_CHECKPOINT).exists());
    t.tick(0).unwrap();
    assert_eq!(
        shared(data.path(), REPLICATION_OFFSET_CHECKPOINT)[&entry("rides", 0)],
        2
    );
    t.abandon();
}

#[test]
fn handles_checkpointing_from_two_threads_never_drop_each_others_lines() {
    let data = tempfile::tempdir().unwrap();
    let topics: Vec<Topic> = ["a", "b"]
        .iter()
        .map(|n| Topic::create(data.path(), n, 2, small()).unwrap())
        .collect();
    std::thread::scope(|s| {
        for t in &topics {
            s.spawn(move || {
                for i in 0..15 {
                    t.append(i % 2, &[record(i64::from(i))]).unwrap();
                    t.checkpoint().unwrap();
                }
            });
        }
    });
    // Whatever the interleaving, every partition of both topics has its latest line.
    let hw = shared(data.path(), REPLICATION_OFFSET_CHECKPOINT);
    for n in ["a", "b"] {
        assert_eq!(hw[&entry(n, 0)], 8, "{hw:?}");
        assert_eq!(hw[&entry(n, 1)], 7, "{hw:?}");
    }
    for t in topics {
        t.close().unwrap();
    }
}

/// The child half of `processes_checkpointing_one_data_dir_never_drop_each_others_lines`: run
/// only by that test, in another process, with the data directory in the environment.
#[test]
#[ignore = "run by processes_checkpointing_one_data_dir_never_drop_each_others_lines"]
fn child_checkpoints_topic_b() {
    let Ok(dir) = std::env::var("PARTLOG_DATA_DIR_CHILD") else {
        return;
    };
    let t = Topic::open(&dir, "b").unwrap();
    for i in 0..15 {
        t.append(i % 2, &[record(i64::from(i))]).unwrap();
        t.checkpoint().unwrap();
    }
    t.close().unwrap();
}

#[test]
fn processes_checkpointing_one_data_dir_never_drop_each_others_lines() {
    // The process-wide mutex cannot shut out another process: the fcntl lock does.
    let data = tempfile::tempdir().unwrap();
    let a = Topic::create(data.path(), "a", 2, small()).unwrap();
    Topic::create(data.path(), "b", 2, small())
        .unwrap()
        .close()
        .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_checkpoints_topic_b",
            "--ignored",
            "--test-threads=1",
        ])
        .env("PARTLOG_DATA_DIR_CHILD", data.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Checkpoint for as long as the child runs, so that the two overlap.
    let mut i = 0;
    let status = loop {
        a.append(i % 2, &[record(i64::from(i))]).unwrap();
        a.checkpoint().unwrap();
        i += 1;
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
    };
    assert!(status.success());
    // Read before `a` closes (its close would write its lines again).
    let hw = shared(data.path(), REPLICATION_OFFSET_CHECKPOINT);
    let d = a.describe();
    for p in 0..2 {
        assert_eq!(
            hw.get(&entry("a", p)),
            Some(&d.partitions[p as usize].high_watermark),
            "{hw:?}"
        );
    }
    assert_eq!(hw.get(&entry("b", 0)), Some(&8), "{hw:?}");
    assert_eq!(hw.get(&entry("b", 1)), Some(&7), "{hw:?}");
    a.close().unwrap();
}

/// The child half of `a_directory_a_running_broker_holds_is_refused`: locks `<dir>/.lock` as
/// Kafka's `LogManager` does (an exclusive POSIX `fcntl` lock), says so on stdout, and holds it
/// until its stdin closes.
#[test]
#[ignore = "run by a_directory_a_running_broker_holds_is_refused"]
fn child_holds_the_kafka_lock() {
    let Ok(dir) = std::env::var("PARTLOG_KAFKA_LOCK_CHILD") else {
        return;
    };
    let file = fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(Path::new(&dir).join(".lock"))
        .unwrap();
    rustix::fs::fcntl_lock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    println!("LOCKED");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest).unwrap();
    drop(file);
}

#[test]
fn a_directory_a_running_broker_holds_is_refused() {
    use std::io::BufRead;
    let data = tempfile::tempdir().unwrap();
    Topic::create(data.path(), "rides", 1, small())
        .unwrap()
        .close()
        .unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_the_kafka_lock",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PARTLOG_KAFKA_LOCK_CHILD", data.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("LOCKED") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child ended first"
        );
    }
    let r = Topic::open(data.path(), "rides");
    assert!(matches!(r, Err(Error::Locked { .. })), "{r:?}");
    assert!(matches!(
        Topic::create(data.path(), "other", 1, small()),
        Err(Error::Locked { .. })
    ));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    // The broker is gone: the directory opens again.
    Topic::open(data.path(), "rides").unwrap().close().unwrap();
}

#[test]
fn create_never_removes_partition_directories_a_broker_wrote() {
    // A broker's partition directory has records and a partition.metadata, and no partlog
    // metadata file: it is not the leftover of a crash in the middle of a create.
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 1, small()).unwrap();
    t.append(0, &[record(0), record(1)]).unwrap();
    t.close().unwrap();
    fs::remove_file(data.path().join("rides.topic-metadata")).unwrap();
    let segment = data.path().join("rides-0/00000000000000000000.log");
    let before = fs::read(&segment).unwrap();
    let r = Topic::create(data.path(), "rides", 1, small());
    assert!(
        matches!(
            &r,
            Err(Error::Topic(TopicError::ForeignPartitionDir {
                partition: 0,
                ..
            }))
        ),
        "{:?}",
        r.as_ref().err()
    );
    assert_eq!(fs::read(&segment).unwrap(), before);
    // Adopting it keeps the records.
    let t = Topic::adopt(data.path(), "rides", small(), TopicOptions::default()).unwrap();
    assert_eq!(t.describe().partitions[0].log_end_offset, 2);
    t.close().unwrap();
}

/// Kafka's data-directory clean-shutdown marker (`CleanShutdownFileHandler`): written on a clean
/// close, removed while anything in the directory is open.
const KAFKA_MARKER: &str = ".kafka_cleanshutdown";

#[test]
fn a_clean_close_writes_kafkas_clean_shutdown_marker_and_an_open_removes_it() {
    let data = tempfile::tempdir().unwrap();
    let marker = data.path().join(KAFKA_MARKER);
    let t = Topic::create(data.path(), "rides", 2, small()).unwrap();
    assert!(!marker.exists());
    t.append(0, &[record(0)]).unwrap();
    t.close().unwrap();
    // What Kafka 4.4 writes: JSON with the version and a broker epoch (none known: -1).
    assert_eq!(read(&marker), r#"{"version":0,"brokerEpoch":-1}"#);
    let t = Topic::open(data.path(), "rides").unwrap();
    assert!(!marker.exists(), "a crash now must lead to recovery");
    t.close().unwrap();
    assert!(marker.exists());
}

#[test]
fn an_unclean_close_leaves_no_clean_shutdown_marker() {
    let data = tempfile::tempdir().unwrap();
    let marker = data.path().join(KAFKA_MARKER);
    Topic::create(data.path(), "rides", 1, small())
        .unwrap()
        .close()
        .unwrap();
    // A broker's clean shutdown left it (or partlog's close did): partlog opens, then crashes.
    fs::write(&marker, r#"{"version":0,"brokerEpoch":12}"#).unwrap();
    let t = Topic::open(data.path(), "rides").unwrap();
    t.append(0, &[record(0)]).unwrap();
    t.abandon();
    assert!(
        !marker.exists(),
        "a broker would skip recovery of the abandoned log"
    );
}

#[test]
fn no_marker_is_written_while_another_topic_of_the_directory_is_open() {
    let data = tempfile::tempdir().unwrap();
    let marker = data.path().join(KAFKA_MARKER);
    let a = Topic::create(data.path(), "a", 1, small()).unwrap();
    let b = Topic::create(data.path(), "b", 1, small()).unwrap();
    a.close().unwrap();
    assert!(!marker.exists(), "b is still open");
    b.append(0, &[record(0)]).unwrap();
    b.close().unwrap();
    assert!(marker.exists());
    // A partition a crash left unclean (no partlog marker of its own) keeps the marker away.
    let b = Topic::open(data.path(), "b").unwrap();
    b.abandon();
    let a = Topic::open(data.path(), "a").unwrap();
    a.close().unwrap();
    assert!(!marker.exists(), "b-0 was not closed cleanly");
}

#[test]
fn partitions_a_kafka_broker_shut_down_cleanly_open_without_recovery() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 2, small()).unwrap();
    for i in 0..50 {
        t.append(u32::try_from(i % 2).unwrap(), &[record(i)])
            .unwrap();
    }
    t.close().unwrap();
    // As a broker leaves its directories: no partlog marker in the partitions, Kafka's at the top.
    for p in 0..2 {
        fs::remove_file(data.path().join(format!("rides-{p}/clean-shutdown"))).unwrap();
    }
    fs::write(
        data.path().join(KAFKA_MARKER),
        r#"{"version":0,"brokerEpoch":7}"#,
    )
    .unwrap();
    let t = Topic::open(data.path(), "rides").unwrap();
    for p in 0..2 {
        let report = t.partition(p).unwrap().log().open_report();
        assert!(report.clean, "rides-{p}: {report:?}");
        assert_eq!(report.segments_recovered, 0, "rides-{p}: {report:?}");
    }
    assert_eq!(t.partition(0).unwrap().log_end_offset(), 25);
    t.close().unwrap();
}

#[test]
fn a_partition_a_broker_crashed_on_after_partlog_closed_it_is_recovered() {
    let data = tempfile::tempdir().unwrap();
    let t = Topic::create(data.path(), "rides", 1, small()).unwrap();
    for i in 0..5 {
        t.append(0, &[record(i)]).unwrap();
    }
    t.close().unwrap();
    let pdir = data.path().join("rides-0");
    assert!(pdir.join("clean-shutdown").exists());
    // A broker starts (taking its marker off; partlog's own, which it does not know, stays),
    // appends, and dies in the middle of a write: a torn batch at the end of the segment.
    fs::remove_file(data.path().join(KAFKA_MARKER)).unwrap();
    let log = pdir.join("00000000000000000000.log");
    let mut bytes = fs::read(&log).unwrap();
    let torn_at = bytes.len() as u64;
    bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 1, 0, 0, 0]);
    fs::write(&log, &bytes).unwrap();

    let t = Topic::open(data.path(), "rides").unwrap();
    let p = t.partition(0).unwrap();
    let report = p.log().open_report().clone();
    assert!(!report.clean, "{report:?}");
    let (base, position, _) = report.truncated.expect("the torn batch is cut");
    assert_eq!((base, position), (0, torn_at));
    assert_eq!(p.log_end_offset(), 5);
    t.close().unwrap();
}
