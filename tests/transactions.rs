//! Transactions on a `Log` (issue 20, part 2): COMMIT / ABORT markers appended through the
//! coordinator origin with Kafka's checks, the last stable offset, the aborted-transaction index
//! (`.txnindex`, Kafka's 34-byte entries) across rolls, crashes, truncation and retention, and
//! `read_committed` reads that never show an aborted or open transaction.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use partlog::batch::{BatchBuilder, EndTxnMarker, RecordBatch, SimpleRecord, TxnResult};
use partlog::log::producer_state::ProducerError;
use partlog::log::{
    AbortedTransaction, AbortedTxn, AppendOrigin, IsolationLevel, ReadCommittedFilter,
};
use partlog::{Config, Error, Log};

/// A transactional batch of `n` records from `pid` at `epoch`, first sequence `seq`; values
/// name `p{pid}-s{seq}`.
fn txn(pid: i64, epoch: i16, seq: i32, n: i32) -> RecordBatch {
    let mut b = BatchBuilder::new()
        .producer(pid, epoch, seq)
        .transactional(true);
    for i in 0..n {
        b.push(&SimpleRecord::new(
            now_ms(),
            None::<&str>,
            Some(format!("p{pid}-s{}", seq + i)),
        ))
        .unwrap();
    }
    b.build().unwrap()
}

/// The wall clock: producers idle for a day expire when a log opens.
fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

fn plain(value: &str) -> RecordBatch {
    let mut b = BatchBuilder::new();
    b.push(&SimpleRecord::new(
        1_000,
        None::<&str>,
        Some(value.to_string()),
    ))
    .unwrap();
    b.build().unwrap()
}

fn commit(log: &Log, pid: i64, epoch: i16) -> i64 {
    log.append_marker(
        pid,
        epoch,
        EndTxnMarker::new(TxnResult::Commit, 0),
        now_ms(),
    )
    .unwrap()
    .first_offset
}

fn abort(log: &Log, pid: i64, epoch: i16) -> i64 {
    log.append_marker(pid, epoch, EndTxnMarker::new(TxnResult::Abort, 0), now_ms())
        .unwrap()
        .first_offset
}

/// Every value a `read_committed` consumer sees, reading from the log start in fetches of
/// `max_bytes`, as Kafka's consumer filters them.
fn committed_values(log: &Log, max_bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    loop {
        let r = log
            .read_with_isolation(next, max_bytes, i64::MAX, IsolationLevel::ReadCommitted)
            .unwrap();
        if r.is_empty() {
            break;
        }
        let mut filter = ReadCommittedFilter::new(r.aborted_transactions.as_deref().unwrap());
        for b in &r.batches {
            if !filter.keep(b).unwrap() {
                continue;
            }
            for rec in b.records().unwrap() {
                let rec = rec.unwrap();
                if rec.offset >= next {
                    out.push(String::from_utf8(rec.value.unwrap().to_vec()).unwrap());
                }
            }
        }
        next = r.next_offset;
    }
    out
}

fn small_config() -> Config {
    Config {
        segment_bytes: 1024,
        segment_index_bytes: 1024,
        index_interval_bytes: 256,
        max_batch_bytes: 1024,
        ..Config::default()
    }
}

/// The `.txnindex` files of `dir`: base offset -> bytes.
fn txn_files(dir: &Path) -> Vec<(i64, Vec<u8>)> {
    let mut out: Vec<(i64, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let stem = name.strip_suffix(".txnindex")?;
            Some((stem.parse().unwrap(), std::fs::read(e.path()).unwrap()))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_marker_for_a_producer_with_no_open_transaction_is_written_and_records_no_abort() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let at = abort(&log, 5, 0);
    assert_eq!(at, 0);
    assert_eq!(log.log_end_offset(), 1);
    assert_eq!(log.last_stable_offset(), 1);
    assert!(log.aborted_txns().is_empty());
    assert!(txn_files(dir.path()).is_empty());
    let e = log.producer_state(5).unwrap().unwrap();
    assert_eq!((e.producer_epoch, e.current_txn_first_offset), (0, None));
}

#[test]
fn a_client_may_not_append_a_control_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let marker = EndTxnMarker::new(TxnResult::Commit, 0)
        .build_batch(5, 0, 1)
        .unwrap();
    for origin in [
        AppendOrigin::Client,
        AppendOrigin::Leader { leader_epoch: 0 },
    ] {
        match log.append_batches(&vec![plain("a"), marker.clone()], origin) {
            Err(Error::Producer(ProducerError::ControlBatchFromClient { batch: 1 })) => {}
            other => panic!("{origin:?}: {other:?}"),
        }
    }
    assert_eq!(log.log_end_offset(), 0, "nothing written");
}

#[test]
fn a_marker_of_an_older_producer_or_coordinator_epoch_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append_batch(&txn(5, 3, 0, 1)).unwrap();
    let old = log.append_marker(5, 2, EndTxnMarker::new(TxnResult::Commit, 0), 1);
    assert!(
        matches!(
            old,
            Err(Error::Producer(ProducerError::InvalidProducerEpoch {
                producer_epoch: 2,
                current_epoch: 3,
                ..
            }))
        ),
        "{old:?}"
    );
    log.append_marker(5, 3, EndTxnMarker::new(TxnResult::Commit, 4), 1)
        .unwrap();
    log.append_batch(&txn(5, 3, 1, 1)).unwrap();
    let stale = log.append_marker(5, 3, EndTxnMarker::new(TxnResult::Abort, 3), 1);
    assert!(
        matches!(
            stale,
            Err(Error::Producer(ProducerError::CoordinatorFenced {
                coordinator_epoch: 3,
                current_coordinator_epoch: 4,
                ..
            }))
        ),
        "{stale:?}"
    );
    assert_eq!(log.log_end_offset(), 3, "the refused markers wrote nothing");
    assert_eq!(log.first_unstable_offset(), Some(2));
}

#[test]
fn a_commit_makes_the_transaction_visible_under_read_committed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append_batch(&plain("before")).unwrap();
    log.append_batch(&txn(5, 0, 0, 2)).unwrap();
    log.append_batch(&plain("during")).unwrap();
    assert_eq!(committed_values(&log, 1 << 20), ["before"]);
    commit(&log, 5, 0);
    assert_eq!(
        committed_values(&log, 1 << 20),
        ["before", "p5-s0", "p5-s1", "during"]
    );
    let r = log
        .read_with_isolation(0, 1 << 20, i64::MAX, IsolationLevel::ReadCommitted)
        .unwrap();
    assert_eq!(r.aborted_transactions, Some(vec![]));
    // read_uncommitted carries no aborted list.
    let r = log
        .read_with_isolation(0, 1 << 20, i64::MAX, IsolationLevel::ReadUncommitted)
        .unwrap();
    assert_eq!(r.aborted_transactions, None);
}

#[test]
fn an_abort_hides_the_transaction_under_read_committed() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append_batch(&txn(5, 0, 0, 2)).unwrap();
    log.append_batch(&txn(6, 0, 0, 1)).unwrap();
    log.append_batch(&txn(5, 0, 2, 1)).unwrap();
    let at = abort(&log, 5, 0);
    // Producer 6's transaction is still open: the stable offset stops at its first offset.
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(
        log.aborted_txns(),
        vec![(0, vec![AbortedTxn::new(5, 0, at, 2)])]
    );
    commit(&log, 6, 0);
    assert_eq!(committed_values(&log, 1 << 20), ["p6-s0"]);
    // One batch per fetch: each fetch names the aborted transaction it overlaps.
    assert_eq!(committed_values(&log, 1), ["p6-s0"]);
    let r = log
        .read_with_isolation(0, 1 << 20, i64::MAX, IsolationLevel::ReadCommitted)
        .unwrap();
    assert_eq!(
        r.aborted_transactions,
        Some(vec![AbortedTransaction::new(5, 0)])
    );
    // A fetch past the aborted transaction's marker does not name it.
    let r = log
        .read_with_isolation(at + 1, 1 << 20, i64::MAX, IsolationLevel::ReadCommitted)
        .unwrap();
    assert_eq!(r.aborted_transactions, Some(vec![]));
}

#[test]
fn the_last_stable_offset_never_passes_an_open_transaction_and_never_decreases() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let mut last = log.last_stable_offset();
    let mut check = |log: &Log, want: i64| {
        let lso = log.last_stable_offset();
        assert_eq!(lso, want);
        assert!(lso >= last, "{lso} < {last}");
        last = lso;
    };
    log.append_batch(&plain("a")).unwrap();
    check(&log, 1);
    log.append_batch(&txn(1, 0, 0, 3)).unwrap();
    check(&log, 1);
    log.append_batch(&txn(2, 0, 0, 1)).unwrap();
    log.append_batch(&plain("b")).unwrap();
    check(&log, 1);
    commit(&log, 1, 0);
    check(&log, 4);
    abort(&log, 2, 0);
    check(&log, log.log_end_offset());
    assert_eq!(log.first_unstable_offset(), None);
}

#[test]
fn txnindex_bytes_are_a_hand_built_kafka_entry() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append_batch(&txn(0x0102_0304_0506, 0, 0, 2)).unwrap();
    log.append_batch(&plain("x")).unwrap();
    abort(&log, 0x0102_0304_0506, 0);
    // version 0, producer id, first offset 0, last offset 3, last stable offset 4.
    let mut want = vec![0u8, 0];
    want.extend_from_slice(&0x0102_0304_0506i64.to_be_bytes());
    want.extend_from_slice(&0i64.to_be_bytes());
    want.extend_from_slice(&3i64.to_be_bytes());
    want.extend_from_slice(&4i64.to_be_bytes());
    assert_eq!(want.len(), 34);
    assert_eq!(txn_files(dir.path()), vec![(0, want)]);
}

#[test]
fn an_abort_is_indexed_in_the_segment_holding_its_marker() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    log.append_batch(&txn(9, 0, 0, 1)).unwrap();
    for i in 0..40 {
        log.append_batch(&plain(&format!("filler-{i}"))).unwrap();
    }
    let at = abort(&log, 9, 0);
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 2);
    let last = *bases.last().unwrap();
    assert_eq!(
        log.aborted_txns(),
        vec![(last, vec![AbortedTxn::new(9, 0, at, at + 1)])]
    );
    assert_eq!(txn_files(dir.path()).len(), 1);
    assert_eq!(txn_files(dir.path())[0].0, last);
}

/// A log with aborts and commits across several segments, a transaction left open.
fn busy_log(log: &Log) {
    for round in 0..6i32 {
        for pid in 1..=3i64 {
            log.append_batch(&txn(pid, 0, round * 2, 2)).unwrap();
            log.append_batch(&plain(&format!("r{round}-{pid}")))
                .unwrap();
        }
        for pid in 1..=3i64 {
            if (round + pid as i32) % 2 == 0 {
                abort(log, pid, 0);
            } else {
                commit(log, pid, 0);
            }
        }
    }
    log.append_batch(&txn(4, 0, 0, 1)).unwrap();
}

#[test]
fn recovery_after_a_crash_rebuilds_the_same_txnindex_and_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    busy_log(&log);
    let files = txn_files(dir.path());
    let entries = log.aborted_txns();
    let lso = log.last_stable_offset();
    let seen = committed_values(&log, 1 << 20);
    assert!(entries.len() > 1, "aborts in several segments: {entries:?}");
    log.flush().unwrap();
    log.abandon();
    // A crash may lose the index entries after the last snapshot, or leave them torn: gone
    // and cut files are rebuilt from the replay.
    for (base, bytes) in &files {
        let path = dir.path().join(format!("{base:020}.txnindex"));
        if base % 2 == 0 {
            std::fs::remove_file(&path).unwrap();
        } else {
            std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        }
    }
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "snapshot") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.open_report().clean);
    assert_eq!(txn_files(dir.path()), files);
    assert_eq!(log.aborted_txns(), entries);
    assert_eq!(log.last_stable_offset(), lso);
    assert_eq!(committed_values(&log, 1 << 20), seen);
    // A clean close and open keeps them, with no replay.
    log.close().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.open_report().clean);
    assert_eq!(txn_files(dir.path()), files);
    assert_eq!(log.last_stable_offset(), lso);
}

#[test]
fn truncation_trims_the_txnindex() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    busy_log(&log);
    let entries: Vec<AbortedTxn> = log
        .aborted_txns()
        .into_iter()
        .flat_map(|(_, e)| e)
        .collect();
    let cut = entries[entries.len() / 2].last_offset;
    log.truncate_to(cut).unwrap();
    let kept: Vec<AbortedTxn> = log
        .aborted_txns()
        .into_iter()
        .flat_map(|(_, e)| e)
        .collect();
    assert_eq!(kept, entries[..entries.len() / 2].to_vec());
    let on_disk: usize = txn_files(dir.path())
        .iter()
        .map(|(_, b)| b.len() / 34)
        .sum();
    assert_eq!(on_disk, kept.len());
    assert!(log.last_stable_offset() <= log.log_end_offset());
    log.truncate_fully_and_start_at(1_000).unwrap();
    assert!(txn_files(dir.path()).is_empty());
    assert!(log.aborted_txns().is_empty());
    assert_eq!(log.last_stable_offset(), 1_000);
}

#[test]
fn retention_removes_the_txnindex_with_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        file_delete_delay_ms: 0,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    busy_log(&log);
    let before: BTreeSet<i64> = txn_files(dir.path()).iter().map(|(b, _)| *b).collect();
    assert!(before.len() > 1);
    let second = *before.iter().nth(1).unwrap();
    log.delete_records(second).unwrap();
    let start_base = log.segment_base_offsets()[0];
    // It waits under its name (as the segment's index files do) until the next maintenance
    // call after the delay (none here).
    assert!(txn_files(dir.path()).iter().any(|(b, _)| *b < start_base));
    log.tick(now_ms()).unwrap();
    let after: BTreeSet<i64> = txn_files(dir.path()).iter().map(|(b, _)| *b).collect();
    assert!(after.iter().all(|&b| b >= start_base), "{after:?}");
    assert!(!after.contains(before.iter().next().unwrap()));
    assert!(log.aborted_txns().iter().all(|(b, _)| *b >= start_base));
}

#[test]
fn a_follower_copy_indexes_the_aborted_transactions_of_its_leader() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(dir.path().join("l"), small_config()).unwrap();
    let follower = Log::open(dir.path().join("f"), small_config()).unwrap();
    busy_log(&leader);
    let mut next = 0;
    while next < leader.log_end_offset() {
        let r = leader.read(next, 4096).unwrap();
        follower
            .append_batches(&r.bytes, AppendOrigin::Follower)
            .unwrap();
        next = r.next_offset;
    }
    assert_eq!(follower.aborted_txns(), leader.aborted_txns());
    assert_eq!(follower.last_stable_offset(), leader.last_stable_offset());
}

/// Found by the replica fault simulation (seed 6000, producers shape): a replica that lost its
/// log copied it back in one fetch holding two aborted transactions of one producer, and served
/// the second one's records under `read_committed`. Every split of such a copy into appends
/// must index both transactions as the leader did.
#[test]
fn a_follower_copying_two_aborted_transactions_of_one_producer_in_one_append_indexes_both() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        segment_bytes: 1 << 20,
        ..small_config()
    };
    let leader = Log::open(dir.path().join("l"), config.clone()).unwrap();
    leader
        .append_batches(&txn(7, 0, 0, 2), AppendOrigin::Client)
        .unwrap();
    leader
        .append_batches(&plain("x"), AppendOrigin::Client)
        .unwrap();
    abort(&leader, 7, 0);
    leader
        .append_batches(&txn(7, 0, 2, 3), AppendOrigin::Client)
        .unwrap();
    abort(&leader, 7, 0);
    leader
        .append_batches(&txn(8, 0, 0, 1), AppendOrigin::Client)
        .unwrap();
    commit(&leader, 8, 0);
    let want = leader.aborted_txns();
    assert_eq!(want.iter().map(|(_, t)| t.len()).sum::<usize>(), 2);
    assert_eq!(committed_values(&leader, 1 << 20), ["x", "p8-s0"]);
    let all = leader.read(0, 1 << 20).unwrap();
    let ends: Vec<usize> = {
        let mut at = 0;
        all.batches
            .iter()
            .map(|b| {
                at += b.as_bytes().len();
                at
            })
            .collect()
    };
    // Every way to cut the copy in two appends (the first cut: all in one).
    for (k, &cut) in std::iter::once(&0).chain(&ends).enumerate() {
        let follower = Log::open(dir.path().join(format!("f{k}")), config.clone()).unwrap();
        for part in [all.bytes.slice(..cut), all.bytes.slice(cut..)] {
            if !part.is_empty() {
                follower
                    .append_batches(&part, AppendOrigin::Follower)
                    .unwrap();
            }
        }
        assert_eq!(follower.aborted_txns(), want, "cut after {cut} bytes");
        // Reads ending anywhere: the aborted transactions each must list are all there.
        for max_bytes in (1..=all.bytes.len()).step_by(37) {
            assert_eq!(
                committed_values(&follower, max_bytes),
                ["x", "p8-s0"],
                "cut after {cut} bytes, reads of {max_bytes} bytes"
            );
        }
    }
}

/// xorshift64*: a seeded schedule.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

#[test]
fn interleaved_transactions_with_crashes_never_show_an_aborted_record_and_show_every_committed_one()
{
    for seed in 1..=4u64 {
        let dir = common::tmp_in_memory("txn-model");
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        // Per producer: next sequence, the values of its open transaction.
        let mut seq = [0i32; 5];
        let mut open: Vec<Vec<String>> = vec![Vec::new(); 5];
        let mut committed: BTreeSet<String> = BTreeSet::new();
        let mut aborted: BTreeSet<String> = BTreeSet::new();
        let mut log = Log::open(dir.path(), small_config()).unwrap();
        let mut last_lso = log.last_stable_offset();
        for step in 0..300 {
            let p = rng.below(5) as usize;
            let pid = 100 + p as i64;
            match rng.below(20) {
                0..=9 => {
                    let n = 1 + rng.below(3) as i32;
                    log.append_batch(&txn(pid, 0, seq[p], n)).unwrap();
                    open[p].extend((0..n).map(|i| format!("p{pid}-s{}", seq[p] + i)));
                    seq[p] += n;
                }
                10..=13 => {
                    commit(&log, pid, 0);
                    committed.extend(open[p].drain(..));
                }
                14..=16 => {
                    abort(&log, pid, 0);
                    aborted.extend(open[p].drain(..));
                }
                17 => {
                    let v = format!("plain-{step}");
                    log.append_batch(&plain(&v)).unwrap();
                    committed.insert(v);
                }
                18 => {
                    // A crash: everything was flushed (the model keeps acknowledged state).
                    log.flush().unwrap();
                    log.abandon();
                    log = Log::open(dir.path(), small_config()).unwrap();
                }
                _ => {
                    log.close().unwrap();
                    log = Log::open(dir.path(), small_config()).unwrap();
                }
            }
            let lso = log.last_stable_offset();
            assert!(
                lso >= last_lso,
                "seed {seed} step {step}: {lso} < {last_lso}"
            );
            last_lso = lso;
            let open_first = open
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_empty())
                .map(|(p, _)| log.producer_state(100 + p as i64).unwrap().unwrap())
                .filter_map(|e| e.current_txn_first_offset)
                .min();
            assert_eq!(
                log.first_unstable_offset(),
                open_first,
                "seed {seed} step {step}"
            );
            if step % 25 == 0 {
                let seen: BTreeSet<String> = committed_values(&log, 64 + rng.below(2000) as usize)
                    .into_iter()
                    .collect();
                assert!(seen.is_disjoint(&aborted), "seed {seed} step {step}");
                let open_now: BTreeSet<String> = open.iter().flatten().cloned().collect();
                assert!(seen.is_disjoint(&open_now), "seed {seed} step {step}");
                // Everything committed below the stable offset is seen; the rest is behind an
                // open transaction.
                assert!(seen.is_subset(&committed), "seed {seed} step {step}");
            }
        }
        for (p, txn) in open.iter_mut().enumerate() {
            commit(&log, 100 + p as i64, 0);
            committed.append(&mut std::mem::take(txn).into_iter().collect());
        }
        let seen: BTreeSet<String> = committed_values(&log, 300).into_iter().collect();
        assert_eq!(seen, committed, "seed {seed}");
        assert!(seen.is_disjoint(&aborted));
    }
}

/// The values a fresh consumer of group `group` polls from partition 0 of `topic`.
fn poll_all(
    topic: &partlog::topic::Topic,
    coordinator: &partlog::topic::GroupCoordinator,
    group: &str,
    isolation: IsolationLevel,
) -> Vec<String> {
    use partlog::topic::{Consumer, ConsumerConfig, OffsetReset};
    let mut cfg = ConsumerConfig::new(group);
    cfg.auto_offset_reset = OffsetReset::Earliest;
    cfg.isolation_level = isolation;
    let mut consumer = Consumer::join(coordinator, &[topic], cfg).unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        for r in consumer.poll().unwrap() {
            got.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    consumer.leave().unwrap();
    got
}

#[test]
fn consumers_never_deliver_markers_and_read_committed_ones_skip_aborted_transactions() {
    use partlog::topic::{GroupCoordinator, Topic, TopicConfig};
    let data = tempfile::tempdir().unwrap();
    let topic = Topic::create(data.path(), "t", 1, TopicConfig::default()).unwrap();
    let p = topic.partition(0).unwrap();
    topic.append_batch(0, &plain("a")).unwrap();
    topic.append_batch(0, &txn(5, 0, 0, 1)).unwrap();
    topic.append_batch(0, &txn(6, 0, 0, 1)).unwrap();
    p.append_marker(5, 0, EndTxnMarker::new(TxnResult::Abort, 0), now_ms(), 0)
        .unwrap();
    topic.append_batch(0, &plain("b")).unwrap();
    let c = GroupCoordinator::open(data.path().join("__consumer_offsets")).unwrap();
    assert_eq!(
        p.last_stable_offset(),
        2,
        "producer 6's transaction is open"
    );
    assert_eq!(
        poll_all(&topic, &c, "committed-1", IsolationLevel::ReadCommitted),
        ["a"]
    );
    p.append_marker(6, 0, EndTxnMarker::new(TxnResult::Commit, 0), now_ms(), 0)
        .unwrap();
    assert_eq!(p.last_stable_offset(), p.high_watermark());
    assert_eq!(
        poll_all(&topic, &c, "uncommitted", IsolationLevel::ReadUncommitted),
        ["a", "p5-s0", "p6-s0", "b"],
        "records of every transaction, no marker"
    );
    assert_eq!(
        poll_all(&topic, &c, "committed-2", IsolationLevel::ReadCommitted),
        ["a", "p6-s0", "b"]
    );
}

#[test]
fn an_open_transaction_below_the_log_start_bounds_nothing_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        file_delete_delay_ms: 0,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    log.append_batch(&txn(9, 0, 0, 1)).unwrap();
    for i in 0..40 {
        log.append_batch(&plain(&format!("filler-{i}"))).unwrap();
    }
    assert_eq!(log.last_stable_offset(), 0);
    log.delete_records(20).unwrap();
    // Kafka raises the first unstable offset to the log start.
    assert_eq!(log.first_unstable_offset(), Some(0));
    assert_eq!(log.last_stable_offset(), 20);
    let r = log
        .read_with_isolation(20, 1 << 20, i64::MAX, IsolationLevel::ReadCommitted)
        .unwrap();
    assert!(r.is_empty());
}

/// One fetch of `follower` from `leader`.
fn fetch_once(leader: &partlog::replica::Partition, follower: &partlog::replica::Partition) {
    let request = follower.fetch_request(1 << 20).unwrap();
    let response = leader.handle_fetch(&request, 0).unwrap();
    follower.apply_fetch(&response).unwrap();
}

#[test]
fn a_partitions_last_stable_offset_never_passes_its_high_watermark_and_followers_index_aborts() {
    use partlog::replica::{Election, LeaderAndIsr, Partition, PartitionConfig, ReplicaId};
    let dir = tempfile::tempdir().unwrap();
    let open = |id: u32| {
        Partition::open(
            dir.path().join(format!("replica-{id}")),
            PartitionConfig::new("t", 0, ReplicaId(id)),
        )
        .unwrap()
    };
    let (leader, follower) = (open(0), open(1));
    leader
        .become_leader(
            &LeaderAndIsr {
                leader_epoch: 1,
                replicas: vec![ReplicaId(0), ReplicaId(1)],
                isr: vec![ReplicaId(0), ReplicaId(1)],
            },
            0,
        )
        .unwrap();
    follower.become_follower(1, Election::Clean).unwrap();
    leader.append_as_leader(&txn(5, 0, 0, 2), 0).unwrap();
    leader
        .append_marker(5, 0, EndTxnMarker::new(TxnResult::Abort, 0), now_ms(), 0)
        .unwrap();
    leader.append_as_leader(&plain("after"), 0).unwrap();
    // Stable in the log, but nothing is replicated yet.
    assert_eq!(leader.log().last_stable_offset(), 4);
    assert_eq!(leader.high_watermark(), 0);
    assert_eq!(leader.last_stable_offset(), 0);
    let r = leader
        .read_isolated(0, 1 << 20, IsolationLevel::ReadCommitted)
        .unwrap();
    assert!(r.is_empty());
    fetch_once(&leader, &follower);
    fetch_once(&leader, &follower);
    assert_eq!(leader.high_watermark(), 4);
    assert_eq!(leader.last_stable_offset(), 4);
    let r = leader
        .read_isolated(0, 1 << 20, IsolationLevel::ReadCommitted)
        .unwrap();
    assert_eq!(
        r.aborted_transactions,
        Some(vec![AbortedTransaction::new(5, 0)])
    );
    assert_eq!(follower.log().aborted_txns(), leader.log().aborted_txns());
    assert!(follower.last_stable_offset() <= follower.high_watermark());
}
