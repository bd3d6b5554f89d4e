//! Idempotent producers through the replication layer (issue 20): a retried batch answered as a
//! duplicate is acknowledged under `acks=all` once its original is committed, on the leader that
//! answered it, also after a failover.

use partlog::batch::{BatchBuilder, RecordBatch, SimpleRecord};
use partlog::replica::{
    Acks, AcksAllStatus, Durability, Failure, ReplicaSet, ReplicaSetConfig, TrackerConfig,
    UncleanLeaderElection,
};
use partlog::Config;

mod common;

fn config() -> ReplicaSetConfig {
    ReplicaSetConfig {
        log: Config {
            segment_bytes: 4096,
            segment_index_bytes: 1024,
            ..Config::default()
        },
        durability: Durability::OnAppend,
        tracker: TrackerConfig {
            min_insync_replicas: 2,
            replica_lag_time_max_ms: 1_000,
            ..TrackerConfig::default()
        },
        unclean_leader_election: UncleanLeaderElection::Disabled,
        ..ReplicaSetConfig::new("rides", 0, 3)
    }
}

/// One record from producer `pid` (epoch 0) at sequence `seq`.
fn idem(pid: i64, seq: i32) -> RecordBatch {
    let mut b = BatchBuilder::new().producer(pid, 0, seq);
    b.push(&SimpleRecord::new(
        1_000 + i64::from(seq),
        Some("k".to_string()),
        Some(format!("p{pid}-s{seq}")),
    ))
    .unwrap();
    b.build().unwrap()
}

fn values(set: &ReplicaSet) -> Vec<String> {
    let p = set.replica(set.leader().unwrap()).unwrap();
    let mut out = Vec::new();
    let mut at = p.log_start_offset();
    while at < p.log_end_offset() {
        let r = p.log().read(at, 1 << 20).unwrap();
        for b in &r.batches {
            for rec in b.records().unwrap() {
                out.push(String::from_utf8(rec.unwrap().value.unwrap().to_vec()).unwrap());
            }
        }
        at = r.next_offset;
    }
    out
}

/// Kafka answers a retried batch with the original's offsets, and an `acks=all` produce of it
/// completes once those offsets are below the high watermark. partlog's duplicate answer carried
/// no leader epoch, so `acks_all_status` called the leader "not the leader" for it.
#[test]
#[cfg_attr(miri, ignore)]
fn a_duplicate_is_complete_under_acks_all_once_its_original_is_committed() {
    let dir = common::tmp_in_memory("idem-acks");
    let mut set = ReplicaSet::open(dir.path(), config(), 0).unwrap();
    let leader = set.replica(set.leader().unwrap()).unwrap();
    let first = leader.append_as_leader(&idem(3, 0), 10).unwrap();
    assert!(!first.duplicate);
    set.replicate(10).unwrap();
    let leader = set.replica(set.leader().unwrap()).unwrap();
    assert_eq!(
        leader.acks_all_status(&first).unwrap(),
        AcksAllStatus::Complete
    );
    let retry = leader.append_as_leader(&idem(3, 0), 20).unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.first_offset, retry.last_offset),
        (first.first_offset, first.last_offset)
    );
    assert_eq!(retry.leader_epoch, first.leader_epoch);
    assert_eq!(
        leader.acks_all_status(&retry).unwrap(),
        AcksAllStatus::Complete
    );
}

/// The producer's story through `ReplicaSet::produce_batch`: the leader appends a batch and its
/// follower copies it, the leader dies before its answer reaches the producer, the producer
/// sends the batch again to the new leader: answered with the original offsets, acknowledged,
/// and in the log once.
#[test]
#[cfg_attr(miri, ignore)]
fn a_batch_retried_after_its_leader_died_is_acknowledged_with_its_original_offsets() {
    let dir = common::tmp_in_memory("idem-failover");
    let mut set = ReplicaSet::open(dir.path(), config(), 0).unwrap();
    for seq in 0..5 {
        let p = set.produce_batch(&idem(9, seq), Acks::All, 10).unwrap();
        assert!(p.acknowledged && !p.duplicate);
        assert_eq!(p.first_offset, i64::from(seq));
    }
    let old = set.leader().unwrap();
    set.fail(old, Failure::Kill, 20).unwrap();
    set.elect(30).unwrap().expect("an ISR member takes over");
    let retry = set.produce_batch(&idem(9, 4), Acks::All, 40).unwrap();
    assert!(retry.duplicate && retry.acknowledged);
    assert_eq!((retry.first_offset, retry.last_offset), (4, 4));
    let next = set.produce_batch(&idem(9, 5), Acks::All, 40).unwrap();
    assert_eq!((next.first_offset, next.duplicate), (5, false));
    let want: Vec<String> = (0..6).map(|s| format!("p9-s{s}")).collect();
    assert_eq!(values(&set), want);
}
