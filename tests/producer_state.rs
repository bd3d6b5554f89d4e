//! Idempotent producers on a `Log` (issue 20): a retried batch is answered with its original
//! offsets and never appended twice, across rolls, clean closes, crashes, truncations and
//! retention; the state lives in Kafka's `<offset>.snapshot` files.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use common::record;
use partlog::batch::{BatchBuilder, RecordBatch};
use partlog::log::producer_state::ProducerStateManager;
use partlog::log::AppendOrigin;
use partlog::{Clock, Config, Error, Log, ManualClock};

/// A batch of `n` records from producer `pid` at `epoch`, first sequence `seq`; record values
/// name `(pid, seq + i)`.
fn idem(pid: i64, epoch: i16, seq: i32, n: i32) -> RecordBatch {
    idem_at(pid, epoch, seq, n, now_ms())
}

/// The wall clock: batches of a producer older than a day expire when a log opens.
fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

/// [`idem`] with record timestamps `ts`.
fn idem_at(pid: i64, epoch: i16, seq: i32, n: i32, ts: i64) -> RecordBatch {
    let mut b = BatchBuilder::new().producer(pid, epoch, seq);
    for i in 0..n {
        let mut r = record(i64::from(seq + i), ts);
        r.value = Some(format!("p{pid}-s{}", seq + i).into_bytes().into());
        b.push(&r).unwrap();
    }
    b.build().unwrap()
}

/// Every record value in the log, in offset order.
fn values(log: &Log) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20).unwrap();
        for b in &r.batches {
            for rec in b.records().unwrap() {
                let rec = rec.unwrap();
                out.push(String::from_utf8(rec.value.unwrap().to_vec()).unwrap());
            }
        }
        next = r.next_offset;
    }
    out
}

/// Segments of 1 KiB: a dozen small batches each.
fn small_config() -> Config {
    Config {
        segment_bytes: 1024,
        segment_index_bytes: 1024,
        index_interval_bytes: 256,
        max_batch_bytes: 1024,
        ..Config::default()
    }
}

fn snapshots(dir: &Path) -> BTreeSet<i64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".snapshot")?;
            assert_eq!(stem.len(), 20, "Kafka's 20-digit name: {name}");
            stem.parse().ok()
        })
        .collect()
}

#[test]
fn a_retried_batch_is_answered_with_its_original_offsets_and_not_appended_again() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append(&[record(0, 5)]).unwrap();
    let first = log.append_batch(&idem(7, 0, 0, 3)).unwrap();
    assert_eq!(
        (first.first_offset, first.last_offset, first.duplicate),
        (1, 3, false)
    );
    let again = log.append_batch(&idem(7, 0, 0, 3)).unwrap();
    assert!(again.duplicate);
    assert_eq!(
        (
            again.first_offset,
            again.last_offset,
            again.position,
            again.size
        ),
        (1, 3, first.position, first.size)
    );
    assert_eq!(log.log_end_offset(), 4);
    // As a leader's append too (Kafka's appendAsLeader is a client origin).
    let leader = log
        .append_batches(&idem(7, 0, 0, 3), AppendOrigin::Leader { leader_epoch: 2 })
        .unwrap();
    assert!(leader.duplicate);
    assert_eq!(log.log_end_offset(), 4);
}

#[test]
fn refusals_are_typed_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append_batch(&idem(7, 1, 0, 2)).unwrap();
    assert!(matches!(
        log.append_batch(&idem(7, 0, 2, 1)),
        Err(Error::Producer(
            partlog::log::producer_state::ProducerError::InvalidProducerEpoch { .. }
        ))
    ));
    assert!(matches!(
        log.append_batch(&idem(7, 1, 5, 1)),
        Err(Error::Producer(
            partlog::log::producer_state::ProducerError::OutOfOrderSequence { .. }
        ))
    ));
    assert_eq!(log.log_end_offset(), 2);
    // A follower takes what its leader has, with no check.
    let mut b = BatchBuilder::new().producer(7, 0, 9).base_offset(2);
    b.push(&record(2, 1)).unwrap();
    log.append_batches(&b.build().unwrap(), AppendOrigin::Follower)
        .unwrap();
    assert_eq!(log.producer_state(7).unwrap().unwrap().producer_epoch, 0);
}

/// A log in `dir` (small segments: several rolls, so several snapshots) holding 40 one-record
/// batches of producer 3, sequences 0..40.
fn forty_batches_of_producer_3(dir: &Path) -> Log {
    let log = Log::open(dir, small_config()).unwrap();
    for seq in 0..40 {
        log.append_batch(&idem(3, 0, seq, 1)).unwrap();
    }
    log
}

#[test]
fn snapshots_are_written_at_every_roll_and_at_a_clean_close_and_keep_duplicates_detected() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    for seq in 0..40 {
        log.append_batch(&idem(3, 0, seq * 2, 2)).unwrap();
    }
    let bases = log.segment_base_offsets();
    assert!(bases.len() > 3);
    let snaps = snapshots(dir.path());
    for b in &bases[1..] {
        assert!(
            snaps.contains(b),
            "a snapshot at the roll to {b}: {snaps:?}"
        );
    }
    log.close().unwrap();
    assert!(
        snapshots(dir.path()).contains(&80),
        "a snapshot at the log end"
    );
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(log.open_report().clean);
    let e = log.producer_state(3).unwrap().unwrap();
    assert_eq!(e.last_sequence(), 79);
    assert!(log.append_batch(&idem(3, 0, 78, 2)).unwrap().duplicate);
    assert_eq!(
        log.append_batch(&idem(3, 0, 80, 2)).unwrap().first_offset,
        80
    );
}

#[test]
fn after_a_crash_the_state_is_the_newest_snapshot_plus_the_batches_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    for seq in 0..30 {
        log.append_batch(&idem(3, 0, seq, 1)).unwrap();
        log.append_batch(&idem(4, 2, seq * 3, 3)).unwrap();
    }
    log.flush().unwrap();
    log.abandon();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert!(!log.open_report().clean);
    assert!(log.append_batch(&idem(3, 0, 29, 1)).unwrap().duplicate);
    assert!(log.append_batch(&idem(4, 2, 87, 3)).unwrap().duplicate);
    assert!(!log.append_batch(&idem(3, 0, 30, 1)).unwrap().duplicate);
    // The snapshots are the only source: with them gone, a full replay finds the same state.
    let before = log.producer_state(4).unwrap();
    log.abandon();
    for s in snapshots(dir.path()) {
        std::fs::remove_file(dir.path().join(format!("{s:020}.snapshot"))).unwrap();
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.producer_state(4).unwrap(), before);
}

#[test]
fn a_corrupt_snapshot_is_removed_and_an_older_one_used() {
    let dir = tempfile::tempdir().unwrap();
    let log = forty_batches_of_producer_3(dir.path());
    log.close().unwrap();
    let newest = *snapshots(dir.path()).last().unwrap();
    let path = dir.path().join(format!("{newest:020}.snapshot"));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[12] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let log = Log::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.producer_state(3).unwrap().unwrap().last_sequence(), 39);
    assert!(log.append_batch(&idem(3, 0, 39, 1)).unwrap().duplicate);
}

#[test]
fn an_open_removes_the_snapshots_past_the_log_end_or_below_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = forty_batches_of_producer_3(dir.path());
    log.delete_records(20).unwrap();
    log.close().unwrap();
    let newest = *snapshots(dir.path()).last().unwrap();
    assert_eq!(newest, 40);
    let bytes = std::fs::read(dir.path().join(format!("{newest:020}.snapshot"))).unwrap();
    // Stray copies: one past the log end (it would be the newest), one below the log start.
    for stray in [500, 5] {
        std::fs::write(dir.path().join(format!("{stray:020}.snapshot")), &bytes).unwrap();
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    let left = snapshots(dir.path());
    assert!(
        !left.contains(&500) && !left.contains(&5),
        "stray snapshots left: {left:?}"
    );
    assert!(left.contains(&40));
    assert_eq!(log.producer_state(3).unwrap().unwrap().last_sequence(), 39);
    assert!(log.append_batch(&idem(3, 0, 39, 1)).unwrap().duplicate);
}

#[test]
fn truncation_removes_the_snapshots_above_the_cut_and_rebuilds_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = forty_batches_of_producer_3(dir.path());
    log.truncate_to(10).unwrap();
    assert!(snapshots(dir.path()).iter().all(|&s| s <= 10));
    let e = log.producer_state(3).unwrap().unwrap();
    assert_eq!(e.last_sequence(), 9);
    // The cut batch is gone: its retry is appended, not answered as a duplicate.
    let again = log.append_batch(&idem(3, 0, 10, 1)).unwrap();
    assert_eq!((again.first_offset, again.duplicate), (10, false));
    log.truncate_fully_and_start_at(20).unwrap();
    assert!(snapshots(dir.path()).is_empty());
    assert_eq!(log.producer_count().unwrap(), 0);
}

#[test]
fn retention_and_delete_records_remove_the_snapshots_below_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        file_delete_delay_ms: 0,
        ..small_config()
    };
    let log = Log::open(dir.path(), config).unwrap();
    for seq in 0..60 {
        log.append_batch(&idem(3, 0, seq, 1)).unwrap();
    }
    let bases = log.segment_base_offsets();
    log.delete_records(bases[2] + 1).unwrap();
    assert_eq!(log.log_start_offset(), bases[2] + 1);
    // Removed with the segments' files by the next maintenance call (no delay here).
    assert!(snapshots(dir.path()).iter().any(|&s| s < bases[2]));
    log.tick(now_ms()).unwrap();
    let snaps = snapshots(dir.path());
    assert!(snaps.iter().all(|&s| s >= bases[2]), "{snaps:?}");
    // Producer entries stay (Kafka keeps them): the latest retry is still a duplicate.
    assert!(log.append_batch(&idem(3, 0, 59, 1)).unwrap().duplicate);
}

/// The names in `dir` that end with `suffix`, sorted.
fn names_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// Retention leaves a deleted segment's producer snapshot in place, as it leaves the segment's
/// index files, and removes it with them once `file_delete_delay_ms` has passed (Kafka's
/// `removeAndMarkSnapshotForDeletion` renames it `.deleted` meanwhile; a rename is 18-25 µs on
/// ext4, and an unlink inside the call 5-8x that). One a crash leaves behind goes at the next
/// open, as every snapshot below the log start does.
#[test]
fn retention_removes_the_snapshots_below_the_log_start_after_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(now_ms()));
    let config = Config {
        file_delete_delay_ms: 60_000,
        ..small_config()
    };
    let log = Log::open_with_clock(dir.path(), config.clone(), clock.clone()).unwrap();
    for seq in 0..60 {
        log.append_batch(&idem(3, 0, seq, 1)).unwrap();
    }
    let bases = log.segment_base_offsets();
    let all = snapshots(dir.path());
    assert!(
        all.iter().any(|&s| s < bases[2]),
        "snapshots written at the rolls"
    );
    log.delete_records(bases[2]).unwrap();
    // Not before the delay...
    assert_eq!(snapshots(dir.path()), all);
    clock.advance(59_999);
    log.tick(clock.now_ms()).unwrap();
    assert_eq!(snapshots(dir.path()), all);
    // ...and then with the segments' files.
    clock.advance(1);
    log.tick(clock.now_ms()).unwrap();
    let kept: BTreeSet<i64> = all.iter().copied().filter(|&s| s >= bases[2]).collect();
    assert_eq!(snapshots(dir.path()), kept);
    assert!(names_ending(dir.path(), ".deleted").is_empty());
    assert!(log.append_batch(&idem(3, 0, 59, 1)).unwrap().duplicate);

    // A crash with snapshots still waiting: the next open removes them.
    let bases = log.segment_base_offsets();
    log.delete_records(bases[1]).unwrap();
    assert!(snapshots(dir.path()).iter().any(|&s| s < bases[1]));
    log.abandon();
    let log = Log::open_with_clock(dir.path(), config, clock).unwrap();
    assert!(snapshots(dir.path()).iter().all(|&s| s >= bases[1]));
    assert!(names_ending(dir.path(), ".deleted").is_empty());
    assert_eq!(log.log_start_offset(), bases[1]);
    assert!(log.append_batch(&idem(3, 0, 59, 1)).unwrap().duplicate);
}

#[test]
fn producer_ids_expire_after_producer_id_expiration_ms() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000));
    let config = Config {
        producer_id_expiration_ms: 10_000,
        ..Config::default()
    };
    let log = Log::open_with_clock(dir.path(), config, clock.clone()).unwrap();
    log.append_batch(&idem_at(3, 0, 0, 1, 1_000)).unwrap();
    log.tick(10_999).unwrap();
    assert_eq!(log.producer_count().unwrap(), 1);
    log.tick(11_000).unwrap();
    assert_eq!(log.producer_count().unwrap(), 0);
    // Forgotten: any sequence is taken again (unknown producer).
    assert!(
        !log.append_batch(&idem_at(3, 0, 0, 1, 11_000))
            .unwrap()
            .duplicate
    );
    assert_eq!(values(&log), ["p3-s0", "p3-s0"]);
}

/// A small seeded generator (xorshift64*): the same seed, the same schedule.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// One producer of the model: its batches (record counts), which of them the log answered
/// with success, and how many the log has appended.
struct Producer {
    id: i64,
    sizes: Vec<i32>,
    acked: Vec<bool>,
    first_unacked: usize,
    appended: usize,
}

impl Producer {
    fn first_sequence(&self, i: usize) -> i32 {
        self.sizes[..i].iter().sum()
    }
}

/// Many producers send batches with up to five in flight, as Kafka's client does, and any
/// in-flight batch may arrive again (a retry) or before an earlier one (reordering); the log
/// is closed, or dropped as by a crash, and reopened at random. Every record ends up in the
/// log exactly once, in each producer's order, and every answer is the one Kafka gives.
#[test]
fn producers_retrying_at_random_leave_every_record_in_the_log_exactly_once() {
    for seed in 1..=4u64 {
        let dir = common::tmp_in_memory("producers-model");
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut producers: Vec<Producer> = (0..8)
            .map(|p| {
                let n = 10 + rng.below(20) as usize;
                Producer {
                    id: 1000 + p,
                    sizes: (0..n).map(|_| 1 + rng.below(4) as i32).collect(),
                    acked: vec![false; n],
                    first_unacked: 0,
                    appended: 0,
                }
            })
            .collect();
        let mut log = Some(Log::open(dir.path(), small_config()).unwrap());
        let mut steps = 0;
        while producers.iter().any(|p| p.first_unacked < p.sizes.len()) {
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: no progress");
            match rng.below(100) {
                0 => log.take().unwrap().close().unwrap(),
                1 => log.take().unwrap().abandon(),
                _ => {}
            }
            let l = log.get_or_insert_with(|| Log::open(dir.path(), small_config()).unwrap());
            let p = &mut producers[rng.below(8) as usize];
            if p.first_unacked == p.sizes.len() {
                continue;
            }
            let window = p.first_unacked..(p.first_unacked + 5).min(p.sizes.len());
            // A producer's first batch reaches the log first (the client sends in order; and
            // an unknown producer is accepted at any sequence, KIP-360); after that any batch
            // in flight may come, again or early.
            let i = if p.appended == 0 {
                0
            } else {
                window.start + rng.below(window.len() as u64) as usize
            };
            let seq = p.first_sequence(i);
            let mut b = BatchBuilder::new().producer(p.id, 0, seq);
            for k in 0..p.sizes[i] {
                let mut r = record(0, now_ms());
                r.value = Some(format!("p{}-s{}", p.id, seq + k).into_bytes().into());
                b.push(&r).unwrap();
            }
            match l.append_batch(&b.build().unwrap()) {
                Ok(info) if !info.duplicate => {
                    assert_eq!(
                        i, p.appended,
                        "seed {seed}: only the next batch is appended"
                    );
                    p.appended += 1;
                    p.acked[i] = true;
                }
                Ok(_) => {
                    assert!(
                        i < p.appended,
                        "seed {seed}: a duplicate of a batch not in the log"
                    );
                    p.acked[i] = true;
                }
                Err(Error::Producer(
                    partlog::log::producer_state::ProducerError::OutOfOrderSequence { .. },
                )) => assert!(i > p.appended, "seed {seed}: batch {i} refused"),
                Err(e) => panic!("seed {seed}: {e}"),
            }
            while p.first_unacked < p.sizes.len() && p.acked[p.first_unacked] {
                p.first_unacked += 1;
            }
        }
        let l = log.take().unwrap();
        let got = values(&l);
        for p in &producers {
            let mine: Vec<&String> = got
                .iter()
                .filter(|v| v.starts_with(&format!("p{}-", p.id)))
                .collect();
            let total: i32 = p.sizes.iter().sum();
            let want: Vec<String> = (0..total).map(|s| format!("p{}-s{s}", p.id)).collect();
            assert_eq!(mine, want.iter().collect::<Vec<_>>(), "seed {seed}");
        }
        assert!(l.segment_count() > 2, "seed {seed}: the run spans rolls");
    }
}

/// The seed's story: a producer's batch reaches the leader and its followers, the leader dies
/// before the producer hears back, and the producer retries on the new leader. The follower
/// kept the producer state with the batches it copied, so the retry is answered with the
/// original offsets and the record is in the log once.
#[test]
fn a_retry_after_a_failover_is_answered_by_the_new_leader_as_a_duplicate() {
    use partlog::replica::{
        Durability, Failure, ReplicaSet, ReplicaSetConfig, TrackerConfig, UncleanLeaderElection,
    };
    let dir = common::tmp_in_memory("producers-failover");
    let config = ReplicaSetConfig {
        log: small_config(),
        durability: Durability::OnAppend,
        tracker: TrackerConfig {
            min_insync_replicas: 2,
            replica_lag_time_max_ms: 1_000,
            ..TrackerConfig::default()
        },
        unclean_leader_election: UncleanLeaderElection::Disabled,
        ..ReplicaSetConfig::new("rides", 0, 3)
    };
    let mut set = ReplicaSet::open(dir.path(), config, 0).unwrap();
    let first = set.leader().unwrap();
    for seq in 0..10 {
        let leader = set.replica(set.leader().unwrap()).unwrap();
        leader.append_as_leader(&idem(5, 0, seq, 1), 10).unwrap();
    }
    set.replicate(10).unwrap();
    // The last batch was copied, but its answer never reached the producer.
    set.fail(first, Failure::Kill, 20).unwrap();
    set.elect(30).unwrap().expect("an ISR member takes over");
    let new = set.replica(set.leader().unwrap()).unwrap();
    let retry = new.append_as_leader(&idem(5, 0, 9, 1), 40).unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.first_offset, 9);
    let next = new.append_as_leader(&idem(5, 0, 10, 1), 40).unwrap();
    assert_eq!((next.first_offset, next.duplicate), (10, false));
    let mut seen = Vec::new();
    let mut at = 0;
    while at < new.log_end_offset() {
        let r = new.log().read(at, 1 << 20).unwrap();
        for b in &r.batches {
            for rec in b.records().unwrap() {
                seen.push(String::from_utf8(rec.unwrap().value.unwrap().to_vec()).unwrap());
            }
        }
        at = r.next_offset;
    }
    let want: Vec<String> = (0..11).map(|s| format!("p5-s{s}")).collect();
    assert_eq!(seen, want);
}

/// A snapshot of a history a truncation cut away must not describe the new one: after a cut
/// below a snapshot's offset and new appends past it (no roll there), a crash, and a reopen, the
/// new producer's retry is still a duplicate (with the cut's snapshot left behind, the reopen
/// loaded it, skipped the new producer's batches below it, and appended the retry again).
#[test]
fn a_snapshot_above_a_truncation_never_describes_the_history_written_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    for seq in 0..20 {
        log.append_batch(&idem(1, 0, seq, 1)).unwrap();
    }
    log.roll_now().unwrap();
    for seq in 20..30 {
        log.append_batch(&idem(1, 0, seq, 1)).unwrap();
    }
    assert!(snapshots(dir.path()).contains(&20));
    log.truncate_to(10).unwrap();
    for seq in 0..10 {
        log.append_batch(&idem(2, 0, seq, 1)).unwrap();
    }
    for i in 0..5 {
        log.append(&[record(i, now_ms())]).unwrap();
    }
    assert_eq!(log.log_end_offset(), 25);
    log.flush().unwrap();
    log.abandon();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let retry = log.append_batch(&idem(2, 0, 9, 1)).unwrap();
    assert!(retry.duplicate, "{retry:?}");
    assert_eq!(retry.first_offset, 19);
}

/// A follower copies many batches in one call, rolling segments in its middle: the snapshot at
/// each roll holds, for each producer, exactly its last batch below the roll's offset.
#[test]
fn snapshots_taken_at_rolls_inside_one_follower_append_hold_the_state_at_the_roll() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(dir.path().join("leader"), Config::default()).unwrap();
    let mut seqs = [0i32; 3];
    for round in 0..40 {
        for (p, seq) in seqs.iter_mut().enumerate() {
            let n = 1 + (round + p as i32) % 3;
            leader
                .append_batch(&idem(10 + p as i64, 0, *seq, n))
                .unwrap();
            *seq += n;
        }
    }
    let all = leader.read(0, 1 << 30).unwrap();
    assert_eq!(
        all.next_offset,
        leader.log_end_offset(),
        "one read holds the whole log"
    );
    let fdir = dir.path().join("follower");
    let follower = Log::open(&fdir, small_config()).unwrap();
    follower
        .append_batches(&all.bytes, AppendOrigin::Follower)
        .unwrap();
    let bases = follower.segment_base_offsets();
    assert!(bases.len() > 3, "the append rolled: {bases:?}");
    for &x in &bases[1..] {
        let path = fdir.join(format!("{x:020}.snapshot"));
        let bytes = std::fs::read(&path).unwrap();
        let state = ProducerStateManager::from_snapshot_bytes(&bytes, x, &path).unwrap();
        for pid in 10..13 {
            let want = all
                .batches
                .iter()
                .map(RecordBatch::header)
                .filter(|h| h.producer_id == pid && h.last_offset() < x)
                .last()
                .map(|h| (h.base_sequence + h.last_offset_delta, h.last_offset()));
            let got = state
                .entry(pid)
                .and_then(|e| e.batches.back())
                .map(|b| (b.last_sequence, b.last_offset));
            assert_eq!(got, want, "producer {pid} in the snapshot at {x}");
        }
    }
}
