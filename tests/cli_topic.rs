//! Integration tests of the topic commands of the `partlog` tool (`topic`, `produce-topic`,
//! `consume`, `groups`): they run the built binary on real files in temporary directories.
#![cfg(feature = "cli")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use partlog::topic::partition_for_key;
use serde_json::Value;

mod common;
use common::cli::{p, partlog, partlog_with_stdin, Output};

/// The JSON lines a run printed.
fn json(out: &Output) -> Vec<Value> {
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn ok<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(args: &[S]) -> Output {
    let out = partlog(args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.all());
    out
}

fn int(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} not an int: {v}"))
}

#[test]
fn topic_create_describe_list_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let data = p(&tmp.path().join("data"));
    let out = ok(&[
        "topic",
        "create",
        &data,
        "--topic",
        "rides",
        "--partitions",
        "3",
    ]);
    assert!(out.stdout.contains("Created topic rides"), "{}", out.stdout);
    ok(&[
        "topic",
        "create",
        &data,
        "--topic",
        "fares",
        "--partitions",
        "1",
    ]);
    for p in 0..3 {
        assert!(tmp.path().join(format!("data/rides-{p}")).is_dir());
    }
    let out = ok(&["topic", "list", &data]);
    assert_eq!(out.stdout, "fares\nrides\n");

    // A second create of the same name fails, without usage.
    let out = partlog(&[
        "topic",
        "create",
        &data,
        "--topic",
        "rides",
        "--partitions",
        "3",
    ]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);

    let out = ok(&["topic", "describe", &data, "--topic", "rides"]);
    assert!(out.stdout.contains("PartitionCount: 3"), "{}", out.stdout);
    // Kafka's `kafka-topics --describe` names the topic id; so does partlog.
    assert!(out.stdout.contains("\tTopicId: "), "{}", out.stdout);
    assert!(!out.stdout.contains("TopicId: none"), "{}", out.stdout);
    assert_eq!(
        out.stdout.matches("\tPartition: ").count(),
        3,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("HighWatermark: 0"), "{}", out.stdout);

    // Some records, then describe shows them.
    let input = "a\nb\nc\n";
    let out = partlog_with_stdin(
        &["produce-topic", &data, "--topic", "rides", "--file", "-"],
        Some(input),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("produced 3 records"), "{}", out.stdout);
    let out = ok(&["topic", "describe", &data, "--json"]);
    let parts = json(&out);
    assert_eq!(parts.len(), 4, "{}", out.stdout);
    let rides: Vec<&Value> = parts.iter().filter(|v| v["topic"] == "rides").collect();
    assert_eq!(rides.len(), 3);
    let total: i64 = rides.iter().map(|v| int(v, "logEndOffset")).sum();
    assert_eq!(total, 3);
    for v in &rides {
        assert_eq!(int(v, "highWatermark"), int(v, "logEndOffset"));
        assert_eq!(int(v, "logStartOffset"), 0);
        assert_eq!(int(v, "segments"), 1);
        assert!(int(v, "size") > 0 || int(v, "logEndOffset") == 0);
    }

    let out = ok(&["topic", "delete", &data, "--topic", "rides"]);
    assert!(out.stdout.contains("Deleted topic rides"), "{}", out.stdout);
    assert_eq!(ok(&["topic", "list", &data]).stdout, "fares\n");
    assert!(!tmp.path().join("data/rides-0").exists());
    let out = partlog(&["topic", "describe", &data, "--topic", "rides"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    let out = partlog(&["topic", "delete", &data, "--topic", "rides"]);
    assert_eq!(out.code, 1, "{}", out.all());
}

/// The ride lines of `../shared/data/rides.csv` (without the header), or None when absent.
fn rides_csv() -> Option<(std::path::PathBuf, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/rides.csv");
    let text = std::fs::read_to_string(&path).ok()?;
    let rides = text
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    Some((path, rides))
}

/// Checks consumed records against the rides: each exactly once, in the partition Kafka's
/// partitioner picks for its VendorID, its offsets in order.
fn check_exactly_once(rides: &[String], records: &[Value]) {
    let mut seen: BTreeMap<(i64, i64), &str> = BTreeMap::new();
    for r in records {
        let key = r["key"].as_str().expect("key");
        let value = r["value"].as_str().expect("value");
        let partition = int(r, "partition");
        assert_eq!(value.split(',').next(), Some(key), "key is the VendorID");
        assert_eq!(
            Some(partition as u32),
            partition_for_key(key.as_bytes(), 2),
            "{r}"
        );
        let prev = seen.insert((partition, int(r, "offset")), value);
        assert!(prev.is_none(), "consumed twice: {r}");
    }
    // As many records as rides, and the same multiset of lines.
    let mut want: Vec<&str> = rides.iter().map(String::as_str).collect();
    let mut got: Vec<&str> = seen.values().copied().collect();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the consumed lines are not the rides");
    // Offsets of each partition are 0..n, none missing.
    for part in 0..2 {
        let offsets: Vec<i64> = seen
            .keys()
            .filter(|(p, _)| *p == part)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
}

#[test]
fn rides_csv_through_a_group_of_two_exactly_once() {
    let Some((csv, rides)) = rides_csv() else {
        eprintln!("skipped: ../shared/data/rides.csv is absent");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = p(tmp.path());
    ok(&[
        "topic",
        "create",
        &data,
        "--topic",
        "rides",
        "--partitions",
        "2",
    ]);
    let out = ok(&[
        "produce-topic",
        &data,
        "--topic",
        "rides",
        "--file",
        &p(&csv),
        "--csv",
        "--key-column",
        "VendorID",
        "--timestamp-column",
        "tpep_pickup_datetime",
    ]);
    assert!(
        out.stdout
            .contains(&format!("produced {} records", rides.len())),
        "{}",
        out.stdout
    );

    // Timestamps are the pickup times, as UTC.
    let out = ok(&[
        "consume",
        &data,
        "--topic",
        "rides",
        "--partition",
        "0",
        "--offset",
        "0",
        "--max",
        "1",
        "--json",
    ]);
    let first = &json(&out)[0];
    let pickup = first["value"].as_str().unwrap().split(',').nth(1).unwrap();
    let (date, time) = pickup.split_once(' ').unwrap();
    assert!(date.starts_with("20") && time.len() == 8, "{pickup}");
    let ts = int(first, "timestamp");
    assert!(ts > 1_500_000_000_000 && ts < 2_000_000_000_000, "{ts}");

    // Group "riders": two members in one process, stopping after 100 records; then two members
    // in another process consume the rest. Each partition goes to one member of a run.
    let first = ok(&[
        "consume",
        &data,
        "--topic",
        "rides",
        "--group",
        "riders",
        "--members",
        "2",
        "--from-beginning",
        "--max",
        "100",
        "--json",
    ]);
    let mut records = json(&first);
    assert_eq!(records.len(), 100);
    assert!(
        first.stderr.contains("assigned partitions [0]")
            && first.stderr.contains("assigned partitions [1]"),
        "{}",
        first.stderr
    );

    // Lag after the first run: what is left.
    let out = ok(&["groups", &data, "--group", "riders", "--json"]);
    let lag: i64 = json(&out).iter().map(|v| int(v, "lag")).sum();
    let committed: i64 = json(&out).iter().map(|v| int(v, "currentOffset")).sum();
    assert_eq!(committed, 100, "{}", out.stdout);
    assert_eq!(lag, rides.len() as i64 - 100, "{}", out.stdout);
    let text = ok(&["groups", &data]);
    assert!(text.stdout.contains("LAG"), "{}", text.stdout);
    assert!(text.stdout.contains("riders"), "{}", text.stdout);

    let second = ok(&[
        "consume",
        &data,
        "--topic",
        "rides",
        "--group",
        "riders",
        "--members",
        "2",
        "--json",
    ]);
    records.extend(json(&second));
    for r in &records {
        assert!(r["member"].is_string(), "{r}");
    }
    // Within a run, each partition was read by one member only.
    for run in [json(&first), json(&second)] {
        let mut owner: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
        for r in &run {
            owner
                .entry(int(r, "partition"))
                .or_default()
                .insert(r["member"].as_str().unwrap().to_owned());
        }
        assert!(owner.values().all(|m| m.len() == 1), "{owner:?}");
    }
    check_exactly_once(&rides, &records);

    // Nothing left: a third run consumes nothing, and the lag is 0.
    let third = ok(&["consume", &data, "--topic", "rides", "--group", "riders"]);
    assert_eq!(third.stdout, "");
    let out = ok(&["groups", &data, "--json"]);
    let rows = json(&out);
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    for v in &rows {
        assert_eq!(int(v, "lag"), 0, "{v}");
        assert_eq!(int(v, "currentOffset"), int(v, "logEndOffset"));
    }

    // One member alone, sequential runs of 50: the same exactly-once result.
    let mut single = Vec::new();
    loop {
        let out = ok(&[
            "consume",
            &data,
            "--topic",
            "rides",
            "--group",
            "solo",
            "--from-beginning",
            "--max",
            "50",
            "--json",
        ]);
        let got = json(&out);
        if got.is_empty() {
            break;
        }
        assert!(got.len() <= 50);
        single.extend(got);
    }
    check_exactly_once(&rides, &single);

    // Without a group, from the beginning: every ride, and text output names partition and
    // offset.
    let all = ok(&[
        "consume",
        &data,
        "--topic",
        "rides",
        "--from-beginning",
        "--json",
    ]);
    check_exactly_once(&rides, &json(&all));
    let text = ok(&[
        "consume",
        &data,
        "--topic",
        "rides",
        "--from-beginning",
        "--max",
        "3",
    ]);
    assert_eq!(text.stdout.lines().count(), 3, "{}", text.stdout);
    assert!(
        text.stdout.starts_with("Partition:0\tOffset:0\tKey:"),
        "{}",
        text.stdout
    );
}

#[test]
fn keyless_lines_and_skip_header() {
    let tmp = tempfile::tempdir().unwrap();
    let data = p(tmp.path());
    ok(&[
        "topic",
        "create",
        &data,
        "--topic",
        "notes",
        "--partitions",
        "2",
    ]);
    let file = tmp.path().join("notes.txt");
    std::fs::write(&file, "title\none\ntwo\n\nthree\r\n").unwrap();
    let out = ok(&[
        "produce-topic",
        &data,
        "--topic",
        "notes",
        "--file",
        &p(&file),
        "--skip-header",
    ]);
    assert!(out.stdout.contains("produced 3 records"), "{}", out.stdout);
    let all = ok(&[
        "consume",
        &data,
        "--topic",
        "notes",
        "--from-beginning",
        "--json",
    ]);
    let mut values: Vec<String> = json(&all)
        .iter()
        .map(|v| {
            assert!(v["key"].is_null());
            v["value"].as_str().unwrap().to_owned()
        })
        .collect();
    values.sort();
    assert_eq!(values, ["one", "three", "two"]);
}

#[test]
fn bad_arguments_and_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = p(tmp.path());
    ok(&[
        "topic",
        "create",
        &data,
        "--topic",
        "t",
        "--partitions",
        "1",
    ]);
    let usage_cases: Vec<Vec<&str>> = vec![
        vec!["topic"],
        vec!["topic", "create", &data],
        vec!["topic", "create", &data, "--topic", "x"],
        vec![
            "topic",
            "create",
            &data,
            "--topic",
            "x",
            "--partitions",
            "0",
        ],
        vec![
            "topic",
            "create",
            &data,
            "--topic",
            "x",
            "--partitions",
            "two",
        ],
        vec!["topic", "frobnicate", &data],
        vec!["produce-topic", &data, "--topic", "t"],
        vec![
            "produce-topic",
            &data,
            "--topic",
            "t",
            "--file",
            "-",
            "--key-column",
            "a",
        ],
        vec!["consume", &data],
        vec![
            "consume", &data, "--topic", "t", "--group", "g", "--offset", "1",
        ],
        vec!["consume", &data, "--topic", "t", "--offset", "1"],
        vec!["consume", &data, "--topic", "t", "--members", "2"],
        vec!["groups"],
    ];
    for args in usage_cases {
        let out = partlog(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        assert!(
            out.stderr.contains("Usage:") || out.stderr.contains("try '--help'"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Bad topic names: a clear error naming the rule, nothing created outside the data dir.
    for name in ["../escape", "a/b", "..", ".", "", "x y", &"n".repeat(250)] {
        let out = partlog(&[
            "topic",
            "create",
            &data,
            "--topic",
            name,
            "--partitions",
            "1",
        ]);
        assert_eq!(out.code, 2, "{name:?}: {}", out.all());
        assert!(out.stderr.contains("invalid topic name"), "{}", out.stderr);
    }
    assert!(!tmp.path().parent().unwrap().join("escape-0").exists());
    let out = partlog(&["consume", &data, "--topic", "../t", "--from-beginning"]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(out.stderr.contains("invalid topic name"), "{}", out.stderr);
    // A topic that does not exist, a missing file, a missing column: failures (exit 1).
    let out = partlog(&["consume", &data, "--topic", "nope", "--from-beginning"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("topic nope does not exist"),
        "{}",
        out.stderr
    );
    let missing = p(&tmp.path().join("missing.csv"));
    let out = partlog(&["produce-topic", &data, "--topic", "t", "--file", &missing]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("missing.csv"), "{}", out.stderr);
    let out = partlog_with_stdin(
        &[
            "produce-topic",
            &data,
            "--topic",
            "t",
            "--file",
            "-",
            "--csv",
            "--key-column",
            "Vendor",
        ],
        Some("VendorID,x\n1,2\n"),
    );
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("no such column"), "{}", out.stderr);
    let out = partlog(&["consume", &data, "--topic", "t", "--partition", "5"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("no partition 5"), "{}", out.stderr);
    let out = partlog(&["groups", &data, "--group", "nobody"]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("nobody"), "{}", out.stderr);
    // Help.
    let out = ok(&["topic", "--help"]);
    assert!(out.stdout.contains("create"), "{}", out.stdout);
    let out = ok(&["help"]);
    assert!(
        out.stdout.contains("partlog consume DATA"),
        "{}",
        out.stdout
    );
}

/// `produce-topic --compression` compresses the producer's batches; the topic's
/// `--compression-type` (kept in its metadata) decides how they are stored: `producer` keeps the
/// producer's codec, a codec re-encodes into it. Every record reads back through `consume`.
#[test]
fn produce_topic_compression_and_topic_compression_type() {
    use partlog::batch::Compression;
    let dir = tempfile::tempdir().unwrap();
    let data = p(dir.path());
    let csv = dir.path().join("lines.txt");
    let lines: Vec<String> = (0..300).map(|i| format!("ride {i} from A to B")).collect();
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    for (topic, topic_type, producer, stored) in [
        ("kept", None, "lz4", Compression::Lz4),
        ("zstd", Some("zstd"), "gzip", Compression::Zstd),
        ("plain", Some("uncompressed"), "snappy", Compression::None),
    ] {
        let mut create = vec![
            "topic",
            "create",
            &data,
            "--topic",
            topic,
            "--partitions",
            "1",
        ];
        if let Some(t) = topic_type {
            create.extend(["--compression-type", t]);
        }
        ok(&create);
        let described = ok(&["topic", "describe", &data, "--topic", topic]);
        let want = format!("CompressionType: {}", topic_type.unwrap_or("producer"));
        assert!(described.stdout.contains(&want), "{}", described.stdout);
        let json = ok(&["topic", "describe", &data, "--topic", topic, "--json"]);
        let want = format!(
            "\"compressionType\":\"{}\"",
            topic_type.unwrap_or("producer")
        );
        assert!(json.stdout.contains(&want), "{}", json.stdout);
        ok(&[
            "produce-topic",
            &data,
            "--topic",
            topic,
            "--file",
            &p(&csv),
            "--compression",
            producer,
        ]);
        let t = partlog::topic::Topic::open(dir.path(), topic).unwrap();
        let read = t.partition(0).unwrap().log().read(0, 1 << 20).unwrap();
        assert!(!read.batches.is_empty());
        for b in &read.batches {
            assert_eq!(b.compression(), stored, "{topic}");
        }
        t.close().unwrap();
        let out = ok(&[
            "consume",
            &data,
            "--topic",
            topic,
            "--partition",
            "0",
            "--offset",
            "0",
        ]);
        assert_eq!(out.stdout.lines().count(), 300, "{topic}: {}", out.stdout);
    }
    // Bad names are usage errors.
    let out = partlog(&[
        "topic",
        "create",
        &data,
        "--topic",
        "x",
        "--partitions",
        "1",
        "--compression-type",
        "brotli",
    ]);
    assert_ne!(out.code, 0);
    let out = partlog(&[
        "produce-topic",
        &data,
        "--topic",
        "kept",
        "--file",
        &p(&csv),
        "--compression",
        "lzma",
    ]);
    assert_ne!(out.code, 0);
}

/// The sub-directories of `data` a Kafka 4.4 broker would refuse at startup: its `LogManager`
/// loads every sub-directory as a partition (`<topic>-<partition>`), skipping only
/// `remote-log-index-cache` and `__cluster_metadata-N`, and refuses the whole directory when one
/// does not parse.
fn dirs_a_broker_refuses(data: &Path) -> Vec<String> {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| {
            let partition = name.rsplit_once('-').map(|(t, p)| (t, p.parse::<u32>()));
            !matches!(partition, Some((t, Ok(_))) if !t.is_empty())
                && name != "remote-log-index-cache"
        })
        .collect()
}

#[test]
fn committed_group_offsets_leave_the_data_dir_loadable_by_a_kafka_broker() {
    let tmp = tempfile::tempdir().unwrap();
    let data = p(&tmp.path().join("data"));
    ok(&[
        "topic",
        "create",
        &data,
        "--topic",
        "t",
        "--partitions",
        "2",
    ]);
    let out = partlog_with_stdin(
        &["produce-topic", &data, "--topic", "t", "--file", "-"],
        Some("a\nb\nc\n"),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    let first = ok(&[
        "consume",
        &data,
        "--topic",
        "t",
        "--group",
        "g",
        "--from-beginning",
    ]);
    assert_eq!(first.stdout.lines().count(), 3, "{}", first.stdout);
    assert_eq!(
        dirs_a_broker_refuses(Path::new(&data)),
        Vec::<String>::new(),
        "directories a broker would refuse the data directory for"
    );
    // The offsets are still there for the next run.
    let second = ok(&["consume", &data, "--topic", "t", "--group", "g"]);
    assert_eq!(second.stdout, "");
}

#[test]
fn offsets_committed_in_the_old_consumer_offsets_dir_are_kept_and_moved_out_of_it() {
    use partlog::topic::{GroupCoordinator, TopicPartition};
    let tmp = tempfile::tempdir().unwrap();
    let data_path = tmp.path().join("data");
    let data = p(&data_path);
    ok(&[
        "topic",
        "create",
        &data,
        "--topic",
        "t",
        "--partitions",
        "1",
    ]);
    let out = partlog_with_stdin(
        &["produce-topic", &data, "--topic", "t", "--file", "-"],
        Some("r0\nr1\nr2\nr3\nr4\n"),
    );
    assert_eq!(out.code, 0, "{}", out.all());
    // The layout of earlier versions: the store in DATA/__consumer_offsets/.
    {
        let old = GroupCoordinator::open(data_path.join("__consumer_offsets")).unwrap();
        old.commit_standalone("g", &[(TopicPartition::new("t", 0), 3)])
            .unwrap();
    }
    let out = ok(&["consume", &data, "--topic", "t", "--group", "g"]);
    let values: Vec<_> = out
        .stdout
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    assert_eq!(values, ["r3", "r4"], "{}", out.all());
    assert!(
        !data_path.join("__consumer_offsets").exists(),
        "the old directory is gone"
    );
    assert_eq!(dirs_a_broker_refuses(&data_path), Vec::<String>::new());
    let rows = json(&ok(&["groups", &data, "--json"]));
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(int(&rows[0], "currentOffset"), 5);
}
