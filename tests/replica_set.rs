//! `ReplicaSet` scenarios, one rule each: failover with no committed loss, a rejoining replica
//! truncating by epoch and catching up, `acks=all` refused below `min_insync_replicas`, a power
//! cut taking a replica out of the ISR, an unclean election reporting what it loses.

use partlog::batch::SimpleRecord;
use partlog::replica::{
    Acks, Durability, Failure, ReplicaError, ReplicaId, ReplicaSet, ReplicaSetConfig,
    TrackerConfig, UncleanLeaderElection,
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
    common::partition_bytes(p, p.log_start_offset())
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
        // Refused before the append (Kafka's NOT_ENOUGH_REPLICAS), not after it.
        Err(Error::Replica(ReplicaError::NotEnoughReplicas {
            isr: 1,
            min_insync_replicas: 2,
        })) => {}
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

/// Replicas `leader` and the other two, in id order.
fn roles(set: &ReplicaSet) -> (ReplicaId, ReplicaId, ReplicaId) {
    let leader = set.leader().unwrap();
    let others: Vec<ReplicaId> = set
        .replica_ids()
        .into_iter()
        .filter(|&r| r != leader)
        .collect();
    (leader, others[0], others[1])
}

/// Everything `id` serves to a consumer (below its high watermark).
fn committed_bytes_of(set: &ReplicaSet, id: ReplicaId) -> Vec<u8> {
    let p = set.replica(id).unwrap();
    let mut out = Vec::new();
    let mut next = p.log_start_offset();
    while next < p.high_watermark() {
        let r = p.read_committed(next, 1 << 20).unwrap();
        if r.batches.is_empty() {
            break;
        }
        out.extend_from_slice(&r.bytes);
        next = r.next_offset;
    }
    out
}

/// Issue 17, finding 4: the rule "a follower never cuts below its high watermark unless its
/// leader was elected uncleanly" looked only at the current election. A follower whose high
/// watermark predates an unclean election, coming back under the clean election after it,
/// refused every fetch (`TruncationBelowHighWatermark`), never rejoined the ISR, and its
/// `read_committed` served records no leader has any more.
#[test]
fn a_follower_whose_high_watermark_predates_an_unclean_election_catches_up_under_a_later_clean_one()
{
    let dir = common::tmp_in_memory("partlog-rs");
    let mut set = ReplicaSet::open(
        dir.path(),
        config(Durability::OnAppend, UncleanLeaderElection::Enabled),
        0,
    )
    .unwrap();
    let (a, b, c) = roles(&set);
    for i in 0..4 {
        assert!(set.produce(&ride(i), Acks::All, 0).unwrap().acknowledged);
    }
    // b stops at 4; a and c commit 4..8 at epoch 1.
    set.fail(b, Failure::Kill, 0).unwrap();
    for i in 4..8 {
        assert!(set.produce(&ride(i), Acks::All, 0).unwrap().acknowledged);
    }
    set.replicate(0).unwrap();
    assert_eq!(set.replica(c).unwrap().high_watermark(), 8);
    // The periodic tick checkpoints every high watermark: c comes back with 8.
    set.tick(0).unwrap();
    // c stops, then a; b comes back and leads uncleanly (epoch 2), losing 4..8, and writes
    // other records there.
    set.fail(c, Failure::Kill, 0).unwrap();
    set.fail(a, Failure::Kill, 0).unwrap();
    set.restart(b, 0).unwrap();
    let unclean = set.elect(0).unwrap().expect("unclean election allowed");
    assert!(unclean.unclean);
    assert_eq!(unclean.leader, b);
    for i in 100..103 {
        set.produce(&ride(i), Acks::Leader, 0).unwrap();
    }
    // a follows epoch 2 (cutting 4..8, allowed: its leader was elected uncleanly) and joins the
    // ISR; b stops and a leads cleanly at epoch 3.
    set.restart(a, 0).unwrap();
    set.replicate(0).unwrap();
    assert!(set.isr().contains(&a));
    set.fail(b, Failure::Kill, 0).unwrap();
    let clean = set.elect(0).unwrap().expect("a is in the ISR");
    assert!(!clean.unclean);
    assert_eq!(clean.leader, a);
    // c comes back with epoch 1's 4..8 below its high watermark 8: it must cut them.
    set.restart(c, 0).unwrap();
    set.replicate(0).unwrap();
    set.replicate(0).unwrap();
    assert_eq!(bytes_of(&set, c), bytes_of(&set, a));
    assert_eq!(committed_bytes_of(&set, c), committed_bytes_of(&set, a));
    assert!(set.isr().contains(&c), "c rejoined the ISR");
}

/// Issue 17, finding 3: an unclean leader can hold the committed offsets with other bytes (an
/// older term's `acks=1` writes); the report said nothing was lost because its log was long
/// enough. The loss is where its epoch history leaves the committed one.
#[test]
fn an_unclean_leader_holding_other_bytes_at_committed_offsets_reports_them_lost() {
    let dir = common::tmp_in_memory("partlog-rs");
    let mut set = ReplicaSet::open(
        dir.path(),
        config(Durability::OnAppend, UncleanLeaderElection::Enabled),
        0,
    )
    .unwrap();
    let (first, b, c) = roles(&set);
    // The first leader takes 4 acks=1 records nobody copies, then dies.
    for i in 0..4 {
        set.produce(&ride(i), Acks::Leader, 0).unwrap();
    }
    set.fail(first, Failure::Kill, 0).unwrap();
    let clean = set.elect(0).unwrap().expect("an ISR member");
    assert!(!clean.unclean);
    // The new leader commits 4 other records at offsets 0..4 (epoch 2).
    for i in 10..14 {
        assert!(set.produce(&ride(i), Acks::All, 0).unwrap().acknowledged);
    }
    assert_eq!(set.committed(), 4);
    // Both ISR members die; the first leader comes back and leads uncleanly with its epoch-1
    // records at 0..4: every committed offset holds other bytes.
    set.fail(b, Failure::Kill, 0).unwrap();
    set.fail(c, Failure::Kill, 0).unwrap();
    set.restart(first, 0).unwrap();
    let report = set.elect(0).unwrap().expect("unclean election allowed");
    assert!(report.unclean);
    assert_eq!(report.leader, first);
    assert_eq!(report.lost, Some((0, 4)));
}
