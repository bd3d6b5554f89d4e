//! Kafka -> partlog: partlog opens partition directories that Kafka 4.4's own log layer
//! (`UnifiedLog`) wrote, and must give Kafka's answers (issue 18).
//!
//! `interop/kafka/checks/20-kafka-to-partlog.sh` runs `KafkaWrites` (Java, Kafka's jars) into a
//! directory, then the ignored test below with `PARTLOG_INTEROP_IN=<that directory>`. Each case
//! is `<case>/{clean,crash,torn}/<topic>-0/` with a `manifest.txt` beside it holding Kafka's answers
//! (see `KafkaWrites.java`). For every case partlog opens a copy of the directory (its open
//! writes files) and must report the same log start and end offsets, segments, leader-epoch
//! history, batches (base and last offsets, positions, bytes) and time lookups.
//!
//! Kafka keeps some state at the data-directory level (`log-start-offset-checkpoint`,
//! `recovery-point-offset-checkpoint`, `.kafka_cleanshutdown`) that `UnifiedLog` does not write;
//! the manifest records Kafka's values, and the test hands them to partlog through partlog's own
//! per-partition checkpoint files and clean-shutdown marker. A `clean` case is opened twice: as
//! cleanly closed, and with no checkpoints at all (full recovery must keep everything).
//!
//! Exceptions, documented in `interop/README.md (Kafka -> partlog)`: Kafka's time lookup
//! searches only the first segment whose largest timestamp reaches the target, so after
//! delete-records it can miss records partlog finds. Time lookups inside compressed batches
//! must give Kafka's answer (partlog decompresses them since issue 19).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use partlog::log::{CLEAN_SHUTDOWN_FILE, LOG_START_OFFSET_FILE, RECOVERY_POINT_FILE};
use partlog::replica::load_epoch_cache;
use partlog::{Config, Log};

/// One batch as Kafka's read path returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KafkaBatch {
    base: i64,
    last: i64,
    segment: i64,
    position: u64,
    size: usize,
    hash: u64,
    codec: String,
}

/// Kafka's answers for one partition directory.
#[derive(Debug, Default)]
struct Manifest {
    log_start: i64,
    log_end: i64,
    recovery_point: i64,
    segments: Vec<i64>,
    epochs: Vec<(i32, i64)>,
    batches: Vec<KafkaBatch>,
    lookups: Vec<(i64, i64)>,
}

fn parse_manifest(path: &Path) -> Manifest {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut m = Manifest::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let n = |i: usize| -> i64 { f[i].parse().unwrap_or_else(|_| panic!("bad line {line}")) };
        match f[0] {
            "log_start" => m.log_start = n(1),
            "log_end" => m.log_end = n(1),
            "recovery_point" => m.recovery_point = n(1),
            "segment" => m.segments.push(n(1)),
            "epoch" => m.epochs.push((n(1) as i32, n(2))),
            "batch" => m.batches.push(KafkaBatch {
                base: n(1),
                last: n(2),
                segment: n(3),
                position: n(4) as u64,
                size: n(5) as usize,
                hash: u64::from_str_radix(f[6], 16).expect("hash"),
                codec: f[7].to_owned(),
            }),
            "ts" => m.lookups.push((n(1), n(2))),
            other => panic!("unknown manifest line kind {other}"),
        }
    }
    m
}

/// FNV-1a, 64 bits: the hash `KafkaWrites` records for each batch's bytes.
fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

fn write_checkpoint(path: &Path, offset: i64) {
    fs::write(path, format!("0\n1\n{offset}\n")).unwrap();
}

/// How partlog is told what Kafka's data directory would have told Kafka.
#[derive(Debug, Clone, Copy)]
enum Opening {
    /// Closed cleanly: clean-shutdown marker, recovery point = log end, log start.
    Clean,
    /// No checkpoints at all (but the log start): everything is recovered.
    FullRecovery,
    /// After a crash: the recovery point and log start Kafka had checkpointed.
    Crash,
    /// As `FullRecovery`, with Kafka's `.snapshot` and `.txnindex` files removed: partlog
    /// rebuilds the producer state and every aborted-transaction entry from the log alone.
    Rebuilt,
}

fn config() -> Config {
    Config {
        segment_bytes: 1 << 20,
        segment_index_bytes: 64 << 10,
        ..Config::default()
    }
}

/// Opens a copy of `dir` as `opening` says and compares everything with `m`; returns the
/// differences found.
fn check(case: &str, dir: &Path, m: &Manifest, opening: Opening, scratch: &Path) -> Vec<String> {
    let mut diffs = Vec::new();
    let mut diff = |what: String| diffs.push(format!("{case} ({opening:?}): {what}"));
    let copy = scratch.join(format!("{}-{opening:?}", case.replace('/', "-")));
    copy_dir(dir, &copy);
    if m.log_start > 0 {
        write_checkpoint(&copy.join(LOG_START_OFFSET_FILE), m.log_start);
    }
    match opening {
        Opening::Clean => {
            write_checkpoint(&copy.join(RECOVERY_POINT_FILE), m.log_end);
            fs::write(copy.join(CLEAN_SHUTDOWN_FILE), b"").unwrap();
        }
        Opening::FullRecovery => {}
        Opening::Rebuilt => {
            for e in fs::read_dir(&copy).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.ends_with(".snapshot") || name.ends_with(".txnindex") {
                    fs::remove_file(&p).unwrap();
                }
            }
        }
        Opening::Crash => write_checkpoint(&copy.join(RECOVERY_POINT_FILE), m.recovery_point),
    }
    let log = match Log::open(&copy, config()) {
        Ok(log) => log,
        Err(e) => {
            diff(format!("open failed: {e}"));
            return diffs;
        }
    };
    let report = log.open_report().clone();
    // A torn copy lost bytes Kafka never flushed: recovery must cut there, and only there (the
    // log end and the batches are compared with Kafka's below).
    let torn = case.ends_with("/torn");
    if torn && report.truncated.is_none() {
        diff(format!("recovery did not cut the torn tail: {report:?}"));
    }
    if (!torn && report.truncated.is_some()) || report.segments_removed > 0 {
        diff(format!("recovery cut data Kafka kept: {report:?}"));
    }
    if log.log_start_offset() != m.log_start {
        diff(format!(
            "log start {} != Kafka's {}",
            log.log_start_offset(),
            m.log_start
        ));
    }
    if log.log_end_offset() != m.log_end {
        diff(format!(
            "log end {} != Kafka's {}",
            log.log_end_offset(),
            m.log_end
        ));
    }
    if log.segment_base_offsets() != m.segments {
        diff(format!(
            "segments {:?} != Kafka's {:?}",
            log.segment_base_offsets(),
            m.segments
        ));
    }
    // The epoch cache as a partlog replica loads it: Kafka's file, checked against the log and
    // trimmed to the log start (Kafka trims its file asynchronously, so a crash copy may still
    // hold entries below the log start).
    match load_epoch_cache(&log) {
        Ok((cache, rebuilt)) => {
            let ours: Vec<(i32, i64)> = cache
                .entries()
                .iter()
                .map(|e| (e.leader_epoch, e.start_offset))
                .collect();
            if ours != m.epochs {
                diff(format!("epochs {ours:?} != Kafka's {:?}", m.epochs));
            }
            if rebuilt {
                diff("partlog rejected Kafka's leader-epoch-checkpoint and rebuilt it".into());
            }
        }
        Err(e) => diff(format!("leader-epoch-checkpoint: {e}")),
    }

    // Batches, through partlog's read path, from the log start to the end.
    let mut ours = Vec::new();
    let mut read_batches = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        match log.read(next, 1 << 20) {
            Ok(r) if r.batches.is_empty() => {
                diff(format!("empty read at {next}"));
                break;
            }
            Ok(r) => {
                for b in &r.batches {
                    ours.push((b.base_offset(), b.last_offset(), fnv(b.as_bytes())));
                }
                read_batches.extend(r.batches);
                next = r.next_offset;
            }
            Err(e) => {
                diff(format!("read at {next}: {e}"));
                break;
            }
        }
    }
    let theirs: Vec<(i64, i64, u64)> = m.batches.iter().map(|b| (b.base, b.last, b.hash)).collect();
    if ours != theirs {
        let first = (0..ours.len().max(theirs.len())).find(|&i| ours.get(i) != theirs.get(i));
        diff(format!(
            "batches differ: {} vs Kafka's {}, first difference at #{first:?}: {:?} vs {:?}",
            ours.len(),
            theirs.len(),
            first.and_then(|i| ours.get(i)),
            first.and_then(|i| theirs.get(i)),
        ));
    }
    // (offset, timestamp) of every record at or above the log start, for a brute-force answer
    // to each time lookup (control records count, as in Kafka); compressed batches are read
    // through partlog's own decompression (issue 19).
    let mut stamps: Vec<(i64, i64)> = Vec::new();
    for b in &read_batches {
        match b.records() {
            Ok(records) => {
                for r in records {
                    match r {
                        Ok(r) if r.offset >= m.log_start => stamps.push((r.offset, r.timestamp)),
                        Ok(_) => {}
                        Err(e) => diff(format!("batch {}: {e}", b.base_offset())),
                    }
                }
            }
            Err(e) => diff(format!("batch {}: {e}", b.base_offset())),
        }
    }
    // Positions: each batch's bytes lie where Kafka put them, in the segment files partlog kept.
    let mut files: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
    for b in &m.batches {
        let data = files.entry(b.segment).or_insert_with(|| {
            fs::read(copy.join(format!("{:020}.log", b.segment))).unwrap_or_default()
        });
        let end = b.position as usize + b.size;
        if data.get(b.position as usize..end).map(fnv) != Some(b.hash) {
            diff(format!(
                "batch {} is not at position {} of segment {}",
                b.base, b.position, b.segment
            ));
        }
    }

    // Time lookups: partlog's answer must be the brute-force one, and Kafka's but for one
    // documented exception (interop/README.md (Kafka -> partlog)). Inside a compressed batch
    // partlog now answers as Kafka does (the record, not the batch's first offset).
    let (mut mismatches, mut inside_compressed, mut kafka_quirk) = (0, 0, 0);
    for &(target, kafka) in &m.lookups {
        let got = match log.offset_for_timestamp(target) {
            Ok(o) => o.unwrap_or(-1),
            Err(e) => {
                diff(format!("offset_for_timestamp({target}): {e}"));
                break;
            }
        };
        let brute = stamps
            .iter()
            .find(|&&(_, ts)| ts >= target)
            .map_or(-1, |&(o, _)| o);
        if got != brute {
            diff(format!(
                "offset_for_timestamp({target}) = {got}, its own records say {brute}"
            ));
            continue;
        }
        if got == kafka {
            let in_compressed = m
                .batches
                .iter()
                .find(|b| b.base <= got && got <= b.last)
                .is_some_and(|b| b.codec != "none" && got != b.base);
            inside_compressed += usize::from(in_compressed);
            continue;
        }
        // Kafka searches only the first segment whose largest timestamp reaches the target,
        // from the log start; when that segment's only such records lie below the log start
        // (delete-records), Kafka answers "none" though later records reach the target.
        let first_reaching_segment_below_start = kafka == -1
            && m.batches
                .iter()
                .find(|b| b.base <= got && got <= b.last)
                .is_some_and(|b| b.segment > m.segments[0]);
        if first_reaching_segment_below_start && m.log_start > m.segments[0] {
            kafka_quirk += 1;
        } else {
            mismatches += 1;
            if mismatches <= 5 {
                diff(format!(
                    "offset_for_timestamp({target}) = {got}, Kafka says {kafka}"
                ));
            }
        }
    }
    if mismatches > 5 {
        diff(format!("... {mismatches} time lookups differ in all"));
    }
    // Kafka's producer snapshots: partlog's reader takes each one, and the open keeps each one
    // in the log's range (Kafka's load removes those past the log end or below the log start).
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name();
        let name = name.to_string_lossy();
        let Some(offset) = name
            .strip_suffix(".snapshot")
            .and_then(|s| s.parse::<i64>().ok())
        else {
            continue;
        };
        let bytes = fs::read(dir.join(&*name)).unwrap();
        let path = dir.join(&*name);
        match partlog::log::producer_state::ProducerStateManager::from_snapshot_bytes(
            &bytes, offset, &path,
        ) {
            Ok(state) => println!("{case}: {name}: {} producers", state.len()),
            Err(e) => diff(format!("{name}: partlog cannot read Kafka's snapshot: {e}")),
        }
        let in_range =
            offset >= m.log_start && offset <= m.log_end && !matches!(opening, Opening::Rebuilt);
        if in_range && fs::read(copy.join(&*name)).ok() != Some(bytes) {
            diff(format!("{name} was changed or removed by the open"));
        }
    }
    // Files partlog does not interpret must survive the open untouched.
    if fs::read(dir.join("partition.metadata")).ok()
        != fs::read(copy.join("partition.metadata")).ok()
    {
        diff("partition.metadata was changed or removed by the open".into());
    }
    // Kafka's aborted-transaction indexes: partlog reads them (or, where it recovers, rebuilds
    // them from the markers) to the same entries, byte for byte, less those of markers a torn
    // tail lost; and makes no index Kafka did not.
    let txn_files = |d: &Path| -> std::collections::BTreeMap<i64, Vec<u8>> {
        fs::read_dir(d)
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().ok()?;
                let base = name.strip_suffix(".txnindex")?.parse().ok()?;
                Some((base, fs::read(e.path()).unwrap()))
            })
            .collect()
    };
    let mut kafka_txn = std::collections::BTreeMap::new();
    for (base, bytes) in txn_files(dir) {
        let path = dir.join(format!("{base:020}.txnindex"));
        match partlog::log::txn_index::parse_txn_index(&bytes, &path) {
            Ok(entries) => {
                let kept: Vec<_> = entries
                    .into_iter()
                    .filter(|t| t.last_offset < m.log_end)
                    .collect();
                if !kept.is_empty() {
                    kafka_txn.insert(base, kept);
                }
            }
            Err(e) => diff(format!(
                "partlog cannot read Kafka's {base:020}.txnindex: {e}"
            )),
        }
    }
    let ours_txn: std::collections::BTreeMap<i64, Vec<_>> =
        log.aborted_txns().into_iter().collect();
    if ours_txn != kafka_txn {
        diff(format!(
            "aborted transactions {ours_txn:?} != Kafka's {kafka_txn:?}"
        ));
    }
    let ours_files = txn_files(&copy);
    let kafka_files: std::collections::BTreeMap<i64, Vec<u8>> = kafka_txn
        .iter()
        .map(|(&b, e)| (b, e.iter().flat_map(|t| t.to_bytes()).collect()))
        .collect();
    if ours_files != kafka_files {
        diff(format!(
            ".txnindex files of segments {:?} differ from Kafka's of {:?}",
            ours_files.keys().collect::<Vec<_>>(),
            kafka_files.keys().collect::<Vec<_>>()
        ));
    }
    if !kafka_txn.is_empty() {
        println!(
            "{case} ({opening:?}): {} aborted transactions in {} .txnindex files, as Kafka's",
            kafka_txn.values().map(Vec::len).sum::<usize>(),
            kafka_txn.len()
        );
    }
    println!(
        "{case} ({opening:?}): {} batches, {} lookups ({inside_compressed} answered \
         inside a compressed batch, as Kafka, {kafka_quirk} Kafka misses past the log start), {:?}",
        ours.len(),
        m.lookups.len(),
        report
    );
    if let Err(e) = log.close() {
        diffs.push(format!("{case} ({opening:?}): close failed: {e}"));
    }
    diffs
}

fn cases(root: &Path) -> Vec<(String, PathBuf, Manifest)> {
    let mut out = Vec::new();
    let mut names: Vec<PathBuf> = fs::read_dir(root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for case in names {
        for variant in ["clean", "crash", "torn"] {
            let vdir = case.join(variant);
            let manifest = vdir.join("manifest.txt");
            if !manifest.exists() {
                continue;
            }
            let part = fs::read_dir(&vdir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.is_dir())
                .expect("a partition directory");
            let name = format!("{}/{variant}", case.file_name().unwrap().to_string_lossy());
            out.push((name, part, parse_manifest(&manifest)));
        }
    }
    out
}

/// The check itself: every case Kafka wrote, opened every way, gives Kafka's answers.
#[test]
#[ignore = "needs directories written by Kafka: run interop/kafka/checks/20-kafka-to-partlog.sh"]
fn partlog_reads_what_kafkas_log_layer_wrote() {
    let root = PathBuf::from(
        std::env::var_os("PARTLOG_INTEROP_IN").expect("PARTLOG_INTEROP_IN=<KafkaWrites output>"),
    );
    let scratch = tempfile::tempdir().unwrap();
    let mut diffs = Vec::new();
    let all = cases(&root);
    assert!(!all.is_empty(), "no cases under {}", root.display());
    for (name, dir, m) in &all {
        let openings: &[Opening] = if name.ends_with("/clean") {
            &[Opening::Clean, Opening::FullRecovery, Opening::Rebuilt]
        } else {
            &[Opening::Crash]
        };
        for &opening in openings {
            diffs.extend(check(name, dir, m, opening, scratch.path()));
        }
    }
    for d in &diffs {
        eprintln!("DIFFERENCE {d}");
    }
    assert!(diffs.is_empty(), "{} differences from Kafka", diffs.len());
}

/// Writes a segment file at `base` holding one batch per `(base offset, records)` pair, as Kafka
/// leaves it (no index files: partlog rebuilds them).
fn write_segment(dir: &Path, base: i64, batches: &[(i64, usize)]) {
    use partlog::batch::{BatchBuilder, SimpleRecord};
    let mut data = Vec::new();
    for &(offset, n) in batches {
        let mut b = BatchBuilder::new()
            .base_offset(offset)
            .partition_leader_epoch(1);
        for i in 0..n {
            b.push(&SimpleRecord::new(
                1_700_000_000_000 + offset + i as i64,
                Some("key"),
                Some("value"),
            ))
            .unwrap();
        }
        data.extend_from_slice(b.build().unwrap().as_bytes());
    }
    fs::write(dir.join(format!("{base:020}.log")), data).unwrap();
}

/// Finding (the `gaps` case): Kafka's logs may skip offsets (a follower's copy of a compacted
/// leader; `truncateTo` an offset inside a batch, after which the next batch starts above the
/// segment's base offset). Kafka opens and serves such a log; partlog's full recovery called
/// the first gap damage, cut the segment there and removed every later segment. More cases in
/// `tests/offset_gaps.rs`.
#[test]
fn full_recovery_keeps_a_kafka_log_with_offset_gaps() {
    let dir = tempfile::tempdir().unwrap();
    // Segment 0: offsets 0-2, then 6-8 (3-5 compacted away).
    write_segment(dir.path(), 0, &[(0, 3), (6, 3)]);
    // Segment 9: starts with offset 10 (9 was truncated away inside its batch).
    write_segment(dir.path(), 9, &[(10, 2), (12, 2)]);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.segment_base_offsets(), vec![0, 9]);
    assert_eq!(log.log_end_offset(), 14);
    let mut bases = Vec::new();
    let mut next = 0;
    while next < log.log_end_offset() {
        let read = log.read(next, 1 << 20).unwrap();
        bases.extend(read.batches.iter().map(|b| b.base_offset()));
        next = read.next_offset;
    }
    assert_eq!(bases, vec![0, 6, 10, 12]);
    // An offset in a gap is answered with the next batch, as Kafka does.
    assert_eq!(log.read(4, 1 << 20).unwrap().batches[0].base_offset(), 6);
    log.close().unwrap();
}

/// Kafka 4.4 drops, every time it loads a log (clean or not), the leader-epoch entries that
/// start at or past the log end: a leader's epoch that never got a record (or whose records a
/// crash took) is forgotten (checked with Kafka 4.4: `assignEpochStartOffset(5, leo)`, close,
/// reopen: the entry is gone). The `follower/torn` case found partlog keeping it.
#[test]
fn an_epoch_entry_at_the_log_end_is_dropped_at_load_as_kafka_does() {
    use partlog::batch::{BatchBuilder, SimpleRecord};
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let mut b = BatchBuilder::new().partition_leader_epoch(1);
    b.push(&SimpleRecord::new(1_700_000_000_000, Some("k"), Some("v")))
        .unwrap();
    log.append_batch(&b.build().unwrap()).unwrap();
    log.close().unwrap();
    // Kafka's file: epoch 1 from offset 0, epoch 5 begun at the log end (1), still empty.
    fs::write(
        dir.path().join("leader-epoch-checkpoint"),
        "0\n2\n1 0\n5 1\n",
    )
    .unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let (cache, rebuilt) = load_epoch_cache(&log).unwrap();
    let entries: Vec<(i32, i64)> = cache
        .entries()
        .iter()
        .map(|e| (e.leader_epoch, e.start_offset))
        .collect();
    assert_eq!(entries, vec![(1, 0)]);
    assert!(!rebuilt);
    log.close().unwrap();
}
