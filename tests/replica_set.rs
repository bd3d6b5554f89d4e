//! `ReplicaSet` scenarios, one rule each: failover with no committed loss, a rejoining replica
//! truncating by epoch and catching up, `acks=all` refused below `min_insync_replicas`, a power
//! cut taking a replica out of the ISR, an unclean election reporting what it loses.

use partlog::batch::SimpleRecord;
use partlog::replica::{
    Acks, Durability, Failure, ReplicaId, ReplicaSet, ReplicaSetConfig, TrackerConfig,
    UncleanLeaderElection,
};
use partlog::{Config, Error};

mod common;

fn config(durability: Durability, unclean: UncleanLeaderElection) -> ReplicaSetConfig {
    ReplicaSetConfig {
        log: Config {
            segment_bytes: 4096,
            segment_index_bytes: 1024,
            ..Config::default()
        },
        durability,
        tracker: TrackerConfig {
            min_insync_replicas: 2,
            replica_lag_time_max_ms: 1_000,
            ..TrackerConfig::default()
        },
        unclean_leader_election: unclean,
        ..ReplicaSetConfig::new("rides", 0, 3)
    }
}

fn ride(i: u64) -> Vec<SimpleRecord> {
    vec![SimpleRecord::new(
        i as i64,
        Some(format!("vendor-{}", i % 2)),
        Some(format!("ride-{i}")),
    )]
}

fn bytes_of(set: &ReplicaSet, id: ReplicaId) -> Vec<u8> {
    let p = set.replica(id).unwrap();
    let mut out = Vec::new();
    let mut next = p.log_start_offset();
    while next < p.log_end_offset() {
        let r = p.log().read(next, 1 << 20).unwrap();
        out.extend_from_slice(&r.bytes);
        next = r.next_offset;
    }
    out
}

#[test]
fn leader_failover_keeps_every_acknowledged_record_and_the_old_leader_catches_up() {
    let dir = common::tmp_in_memory("partlog-rs");
    let mut set = ReplicaSet::open(
        dir.path(),
        config(Durability::OnAppend, UncleanLeaderElection::Disabled),
        0,
    )
    .unwrap();
    let first = set.leader().unwrap();
    for i in 0..20 {
        assert!(set.produce(&ride(i), Acks::All, 10).unwrap().acknowledged);
    }
    // The leader also takes a batch no follower copied: not acknowledged under acks=all.
    set.produce(&ride(99), Acks::Leader, 10).unwrap();
    set.fail(first, Failure::Kill, 20).unwrap();
    let report = set.elect(30).unwrap().expect("an ISR member takes over");
    assert!(!report.unclean && report.lost.is_none());
    assert_ne!(report.leader, first);
    assert_eq!(report.leader_epoch, 2);
    for i in 20..30 {
        assert!(set.produce(&ride(i), Acks::All, 40).unwrap().acknowledged);
    }
    // The old leader comes back, cuts its unreplicated epoch-1 tail, and copies epoch 2.
    set.restart(first, 50).unwrap();
    set.replicate(60).unwrap();
    let leader_bytes = bytes_of(&set, report.leader);
    for id in set.replica_ids() {
        assert_eq!(bytes_of(&set, id), leader_bytes, "replica {id} differs");
    }
    assert_eq!(set.replica(first).unwrap().log_end_offset(), 30);
    // Every batch carries the epoch it was produced in (stamped outside the CRC: reads check
    // it): 1 before the failover, 2 after.
    let leader = set.replica(report.leader).unwrap();
    assert_eq!(
        leader.log().read(19, 1).unwrap().batches[0].partition_leader_epoch(),
        1
    );
    assert_eq!(
        leader.log().read(20, 1).unwrap().batches[0].partition_leader_epoch(),
        2
    );
    assert!(
        set.isr().contains(&first),
        "the old leader rejoined the ISR"
    );
}

#[test]
fn acks_all_is_refused_below_min_insync_replicas() {
    let dir = common::tmp_in_memory("partlog-rs");
    let mut set = ReplicaSet::open(
        dir.path(),
        config(Durability::OnAppend, UncleanLeaderElection::Disabled),
        0,
    )
    .unwrap();
    let leader = set.leader().unwrap();
    let followers: Vec<ReplicaId> = set
        .replica_ids()
        .into_iter()
        .filter(|&r| r != leader)
        .collect();
    assert!(set.produce(&ride(1), Acks::All, 0).unwrap().acknowledged);
    // Dead followers leave the ISR (the controller fences their brokers): acks=all is refused.
    set.fail(followers[0], Failure::Kill, 0).unwrap();
    set.fail(followers[1], Failure::Kill, 0).unwrap();
    assert_eq!(set.isr(), &[leader]);
    let end = set.replica(leader).unwrap().log_end_offset();
    match set.produce(&ride(2), Acks::All, 5_000) {
        Err(Error::Replica(e)) => assert!(e.to_string().contains("min.insync"), "{e}"),
        other => panic!("expected NotEnoughReplicas, got {other:?}"),
    }
    assert_eq!(
        set.replica(leader).unwrap().log_end_offset(),
        end,
        "nothing written"
    );
    assert!(
        set.produce(&ride(3), Acks::Leader, 5_000)
            .unwrap()
            .acknowledged
    );
    // Back and caught up, a follower rejoins and acks=all works again.
    set.restart(followers[0], 6_000).unwrap();
    set.replicate(6_000).unwrap();
    assert!(set.isr().contains(&followers[0]));
    assert!(
        set.produce(&ride(4), Acks::All, 6_000)
            .unwrap()
            .acknowledged
    );
}

#[test]
fn a_power_cut_takes_the_replica_out_of_the_isr_and_acknowledge_on_flush_loses_nothing() {
    let dir = common::tmp_in_memory("partlog-rs");
    let mut set = ReplicaSet::open(
        dir.path(),
        config(Durability::OnFlush, UncleanLeaderElection::Disabled),
        0,
    )
    .unwrap();
    for i in 0..10 {
        assert!(set.produce(&ride(i), Acks::All, 0).unwrap().acknowledged);
    }
    let victim = set
        .replica_ids()
        .into_iter()
        .find(|&r| Some(r) != set.leader())
        .unwrap();
    set.fail(victim, Failure::PowerCut, 10).unwrap();
    assert!(!set.isr().contains(&victim));
    // Every replica loses power at once: acknowledged on flush, nothing is lost.
    for id in set.replica_ids() {
        set.fail(id, Failure::PowerCut, 20).unwrap();
    }
    for id in set.replica_ids() {
        set.restart(id, 30).unwrap();
    }
    set.elect(30).unwrap().expect("a leader");
    set.replicate(40).unwrap();
    for id in set.replica_ids() {
        assert_eq!(
            set.replica(id).unwrap().log_end_offset(),
            10,
            "replica {id}"
        );
    }
}

#[test]
fn an_unclean_election_reports_the_committed_offsets_it_loses() {
    let dir = common::tmp_in_memory("partlog-rs");
    let mut set = ReplicaSet::open(
        dir.path(),
        config(Durability::OnAppend, UncleanLeaderElection::Enabled),
        0,
    )
    .unwrap();
    let leader = set.leader().unwrap();
    let laggard = set
        .replica_ids()
        .into_iter()
        .find(|&r| r != leader)
        .unwrap();
    for i in 0..5 {
        set.produce(&ride(i), Acks::All, 0).unwrap();
    }
    // The laggard stops; the ISR shrinks to the other two, which take 5 more committed records.
    set.fail(laggard, Failure::Kill, 0).unwrap();
    set.tick(2_000).unwrap();
    for i in 5..10 {
        assert!(
            set.produce(&ride(i), Acks::All, 2_000)
                .unwrap()
                .acknowledged
        );
    }
    assert_eq!(set.committed(), 10);
    // Both ISR members die; only the laggard comes back.
    for id in set.replica_ids() {
        if id != laggard {
            set.fail(id, Failure::Kill, 3_000).unwrap();
        }
    }
    set.restart(laggard, 3_000).unwrap();
    let report = set.elect(3_000).unwrap().expect("unclean election allowed");
    assert!(report.unclean);
    assert_eq!(report.leader, laggard);
    assert_eq!(report.lost, Some((5, 10)));
}
