//! Partition: leader fetch answers, follower truncation (KIP-101, KIP-279), high watermark,
//! epoch cache wiring and durability modes, on real files in temp dirs.

use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::batch::SimpleRecord;
use crate::config::Config;
use crate::error::Error;

const MAX: usize = 1 << 20;

fn config(id: u32) -> PartitionConfig {
    PartitionConfig {
        log: Config {
            segment_bytes: 4096,
            segment_index_bytes: 1024,
            index_interval_bytes: 256,
            ..Config::default()
        },
        ..PartitionConfig::new("topic", 0, ReplicaId(id))
    }
}

fn open(dir: &Path, id: u32) -> Partition {
    Partition::open(dir.join(id.to_string()), config(id)).unwrap()
}

fn assignment(epoch: i32, replicas: &[u32]) -> LeaderAndIsr {
    let ids: Vec<ReplicaId> = replicas.iter().map(|&r| ReplicaId(r)).collect();
    LeaderAndIsr {
        leader_epoch: epoch,
        replicas: ids.clone(),
        isr: ids,
    }
}

/// Appends `n` one-record batches whose values name `tag`.
fn produce(p: &Partition, n: usize, tag: &str) {
    for i in 0..n {
        let value = format!("{tag}-{i}");
        p.append_records(
            &[SimpleRecord::new(
                i as i64,
                Some(tag.to_owned()),
                Some(value),
            )],
            0,
        )
        .unwrap();
    }
}

/// One fetch round trip of `max_bytes`.
fn fetch(leader: &Partition, follower: &Partition, max_bytes: usize) -> FollowerProgress {
    let request = follower.fetch_request(max_bytes).unwrap();
    let response = leader.handle_fetch(&request, 0).unwrap();
    follower.apply_fetch(&response).unwrap()
}

/// Fetches until a fetch brings nothing new and the follower has the leader's log end and high
/// watermark.
fn catch_up(leader: &Partition, follower: &Partition) -> Vec<FollowerProgress> {
    let mut steps = Vec::new();
    for _ in 0..100 {
        let p = fetch(leader, follower, MAX);
        steps.push(p);
        if matches!(
            p,
            FollowerProgress::Appended {
                records_appended: 0,
                ..
            }
        ) && follower.log_end_offset() == leader.log_end_offset()
            && follower.high_watermark() == leader.high_watermark()
        {
            return steps;
        }
    }
    panic!("no catch-up: {steps:?}");
}

fn all_bytes(p: &Partition) -> Vec<u8> {
    let log = p.log();
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, MAX).unwrap();
        out.extend_from_slice(&r.bytes);
        next = r.next_offset;
    }
    out
}

fn epochs(p: &Partition) -> Vec<(i32, i64)> {
    p.epoch_entries()
        .iter()
        .map(|e| (e.leader_epoch, e.start_offset))
        .collect()
}

fn request(fetch_offset: i64, last: Option<i32>, current: Option<i32>) -> FetchRequest {
    FetchRequest {
        replica_id: ReplicaId(2),
        fetch_offset,
        last_fetched_epoch: last,
        current_leader_epoch: current,
        max_bytes: MAX,
    }
}

// ---------------------------------------------------------------------------------------------
// Leader: every fetch answer.

/// A leader with epochs 1 at [0, 3) and 3 at [3, 5), followers 2 and 3.
fn leader_with_two_epochs(dir: &Path) -> Partition {
    let leader = open(dir, 1);
    leader.become_leader(&assignment(1, &[1, 2, 3]), 0).unwrap();
    produce(&leader, 3, "a");
    leader.become_leader(&assignment(3, &[1, 2, 3]), 0).unwrap();
    produce(&leader, 2, "b");
    assert_eq!(epochs(&leader), [(1, 0), (3, 3)]);
    leader
}

#[test]
fn fetch_from_a_non_leader_is_answered_not_leader() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1);
    let r = p.handle_fetch(&request(0, None, None), 0).unwrap();
    assert_eq!(r, FetchResponse::NotLeader);
    p.become_follower(1, Election::Clean).unwrap();
    let r = p.handle_fetch(&request(0, None, None), 0).unwrap();
    assert_eq!(r, FetchResponse::NotLeader);
}

#[test]
fn fetch_with_an_older_leader_epoch_is_fenced_and_a_newer_one_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let leader = leader_with_two_epochs(dir.path());
    let r = leader.handle_fetch(&request(0, None, Some(2)), 0).unwrap();
    assert_eq!(r, FetchResponse::FencedLeaderEpoch { leader_epoch: 3 });
    let r = leader.handle_fetch(&request(0, None, Some(4)), 0).unwrap();
    assert_eq!(r, FetchResponse::UnknownLeaderEpoch { leader_epoch: 3 });
    // Fencing comes before any other check, even a wild offset.
    let r = leader
        .handle_fetch(&request(99, Some(9), Some(2)), 0)
        .unwrap();
    assert_eq!(r, FetchResponse::FencedLeaderEpoch { leader_epoch: 3 });
}

#[test]
fn fetch_out_of_range_below_the_log_start_above_the_log_end_or_of_an_unknown_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let leader = leader_with_two_epochs(dir.path());
    let oor = FetchResponse::OffsetOutOfRange {
        log_start_offset: 0,
        log_end_offset: 5,
    };
    assert_eq!(
        leader.handle_fetch(&request(6, None, Some(3)), 0).unwrap(),
        oor
    );
    // An epoch above every known one: endOffsetFor is undefined.
    assert_eq!(
        leader
            .handle_fetch(&request(5, Some(4), Some(3)), 0)
            .unwrap(),
        oor
    );
    // Below the log start. The high watermark must pass the new start first.
    for id in [2, 3] {
        let r = leader
            .handle_fetch(
                &FetchRequest {
                    replica_id: ReplicaId(id),
                    ..request(5, Some(3), Some(3))
                },
                0,
            )
            .unwrap();
        assert!(matches!(r, FetchResponse::Records(_)), "{r:?}");
    }
    assert_eq!(leader.high_watermark(), 5);
    assert_eq!(leader.delete_records(2).unwrap(), 2);
    let r = leader.handle_fetch(&request(1, None, Some(3)), 0).unwrap();
    assert_eq!(
        r,
        FetchResponse::OffsetOutOfRange {
            log_start_offset: 2,
            log_end_offset: 5
        }
    );
    // The same check, KRaft's way.
    assert_eq!(
        leader.validate_offset_and_epoch(1, None),
        OffsetEpochCheck::OutOfRange {
            log_start_offset: 2,
            log_end_offset: 5
        }
    );
}

#[test]
fn fetch_of_a_diverged_follower_is_answered_with_the_epoch_and_its_end_and_no_records() {
    let dir = tempfile::tempdir().unwrap();
    let leader = leader_with_two_epochs(dir.path());
    // Last fetched epoch 2 is unknown to the leader: the largest below is 1, which ended at 3.
    let diverging = FetchResponse::DivergingEpoch(EpochEndOffset {
        leader_epoch: 1,
        end_offset: 3,
    });
    assert_eq!(
        leader
            .handle_fetch(&request(4, Some(2), Some(3)), 0)
            .unwrap(),
        diverging
    );
    // Epoch 1 known, but the follower holds more of it than the leader (end 3 < offset 4).
    assert_eq!(
        leader
            .handle_fetch(&request(4, Some(1), Some(3)), 0)
            .unwrap(),
        diverging
    );
    assert_eq!(
        leader.validate_offset_and_epoch(4, Some(1)),
        OffsetEpochCheck::Diverging(EpochEndOffset {
            leader_epoch: 1,
            end_offset: 3
        })
    );
    // An epoch below the first entry: (that epoch, start of the first entry).
    let leader2 = {
        let p = open(&dir.path().join("x"), 1);
        p.become_leader(&assignment(5, &[1, 2]), 0).unwrap();
        produce(&p, 2, "c");
        p
    };
    assert_eq!(
        leader2.handle_fetch(&request(1, Some(2), None), 0).unwrap(),
        FetchResponse::DivergingEpoch(EpochEndOffset {
            leader_epoch: 2,
            end_offset: 0
        })
    );
    // A diverging answer does not count as the follower's fetch: the ISR and HW do not move.
    assert_eq!(leader.high_watermark(), 0);
}

#[test]
fn fetch_records_carry_offsets_taken_before_the_read_and_move_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let leader = leader_with_two_epochs(dir.path());
    assert_eq!(
        leader.validate_offset_and_epoch(3, Some(1)),
        OffsetEpochCheck::Valid
    );
    let r = leader
        .handle_fetch(&request(3, Some(1), Some(3)), 0)
        .unwrap();
    let FetchResponse::Records(records) = r else {
        panic!("{r:?}")
    };
    assert_eq!(records.high_watermark, 0);
    assert_eq!(records.log_start_offset, 0);
    assert_eq!(records.log_end_offset, 5);
    // Whole batches, the leader's bytes.
    assert_eq!(records.records, leader.log().read(3, MAX).unwrap().bytes);
    // Follower 3 has not fetched: the high watermark waits for it.
    assert_eq!(leader.high_watermark(), 0);
    let r = leader
        .handle_fetch(
            &FetchRequest {
                replica_id: ReplicaId(3),
                ..request(4, Some(3), Some(3))
            },
            0,
        )
        .unwrap();
    let FetchResponse::Records(records) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        records.high_watermark, 0,
        "taken before this fetch moved it"
    );
    assert_eq!(leader.high_watermark(), 3);
    // At the log end: no records.
    let r = leader
        .handle_fetch(&request(5, Some(3), Some(3)), 0)
        .unwrap();
    let FetchResponse::Records(records) = r else {
        panic!("{r:?}")
    };
    assert!(records.records.is_empty());
    assert_eq!(leader.high_watermark(), 4);
    // Consumers see only what is committed.
    let committed = leader.read_committed(0, MAX).unwrap();
    assert_eq!(committed.next_offset, 4);
    assert!(committed.batches.iter().all(|b| b.last_offset() < 4));
    // An unknown replica is an error, not an answer.
    let err = leader
        .handle_fetch(
            &FetchRequest {
                replica_id: ReplicaId(9),
                ..request(5, Some(3), Some(3))
            },
            0,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Replica(ReplicaError::UnknownReplica { .. })
    ));
}

#[test]
fn leader_epochs_only_increase_and_start_at_the_log_end_before_any_record() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1);
    p.become_leader(&assignment(2, &[1]), 0).unwrap();
    produce(&p, 3, "a");
    for epoch in [2, 1] {
        let err = p.become_leader(&assignment(epoch, &[1]), 0).unwrap_err();
        assert!(matches!(
            err,
            Error::Replica(ReplicaError::EpochNotIncreasing { current: 2, .. })
        ));
    }
    p.become_leader(&assignment(4, &[1]), 0).unwrap();
    // On disk before any record of epoch 4.
    let on_disk = LeaderEpochCache::load(p.log().dir()).unwrap();
    assert_eq!(on_disk.latest_entry(), Some(EpochEntry::new(4, 3)));
    produce(&p, 1, "b");
    assert_eq!(
        p.log().read(3, 1).unwrap().batches[0].partition_leader_epoch(),
        4
    );
    // A follower cannot go back either.
    assert!(p.become_follower(3, Election::Clean).is_err());
    p.become_follower(4, Election::Clean).unwrap();
    assert!(p
        .append_records(&[SimpleRecord::new(0, None::<&str>, Some("x"))], 0)
        .is_err());
}

// ---------------------------------------------------------------------------------------------
// Follower: catch-up, high watermark, log start.

#[test]
fn follower_catches_up_byte_for_byte_and_learns_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1);
    let follower = open(dir.path(), 2);
    leader.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    follower.become_follower(1, Election::Clean).unwrap();
    produce(&leader, 40, "a");
    catch_up(&leader, &follower);
    assert_eq!(leader.high_watermark(), 40);
    assert_eq!(follower.high_watermark(), 40);
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    assert_eq!(epochs(&follower), [(1, 0)]);
    // The high watermark the follower learns is clamped to its own log: fetch only a bit of a
    // new run, while the leader's HW is ahead of it.
    produce(&leader, 5, "b");
    // A second follower absent: make the HW run ahead by a fetch at the end from the follower.
    catch_up(&leader, &follower);
    let p = fetch(&leader, &follower, 1);
    assert!(matches!(p, FollowerProgress::Appended { .. }));
    assert!(follower.high_watermark() <= follower.log_end_offset());
}

#[test]
fn follower_high_watermark_is_clamped_to_its_log_and_its_log_start_follows_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let follower = open(dir.path(), 2);
    follower.become_follower(1, Election::Clean).unwrap();
    // A hand-made answer: three batches from a leader whose HW and log start are far ahead.
    let src = open(&dir.path().join("src"), 1);
    src.become_leader(&assignment(1, &[1]), 0).unwrap();
    produce(&src, 3, "a");
    let records = src.log().read(0, MAX).unwrap().bytes;
    let p = follower
        .apply_fetch(&FetchResponse::Records(FetchedRecords {
            records,
            leader_epoch: 1,
            high_watermark: 100,
            log_start_offset: 2,
            log_end_offset: 100,
        }))
        .unwrap();
    assert_eq!(
        p,
        FollowerProgress::Appended {
            records_appended: 3,
            log_end_offset: 3,
            high_watermark: 3
        }
    );
    assert_eq!(follower.log_start_offset(), 2);
    assert_eq!(epochs(&follower), [(1, 2)]);
}

#[test]
fn follower_behind_the_leaders_log_start_restarts_there() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1);
    leader.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    produce(&leader, 10, "a");
    // The follower is not in sync; the leader commits alone after the ISR shrinks.
    let leader_alone = LeaderAndIsr {
        leader_epoch: 2,
        replicas: vec![ReplicaId(1), ReplicaId(2)],
        isr: vec![ReplicaId(1)],
    };
    leader.become_leader(&leader_alone, 0).unwrap();
    // Past the lag time, follower 2 no longer counts as caught up.
    let later = 100_000;
    leader
        .append_records(&[SimpleRecord::new(0, None::<&str>, Some("b"))], later)
        .unwrap();
    assert_eq!(leader.high_watermark(), 11);
    leader.delete_records(8).unwrap();
    let follower = open(dir.path(), 2);
    follower.become_follower(2, Election::Clean).unwrap();
    let p = fetch(&leader, &follower, MAX);
    assert_eq!(p, FollowerProgress::RestartedAt { offset: 8 });
    assert_eq!(follower.log_start_offset(), 8);
    catch_up(&leader, &follower);
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    assert_eq!(epochs(&follower), epochs(&leader));
}

// ---------------------------------------------------------------------------------------------
// Divergence: KIP-101 and KIP-279.

/// KIP-101, scenario 1: a follower that restarts with a stale high watermark must not truncate
/// to it (that lost m1 once the leader died). It keeps its log; the leader's answer finds
/// nothing to cut.
#[test]
fn kip_101_follower_restart_does_not_truncate_to_its_stale_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), 1);
    let b = open(dir.path(), 2);
    a.become_leader(&assignment(0, &[1, 2]), 0).unwrap();
    b.become_follower(0, Election::Clean).unwrap();
    produce(&a, 2, "m");
    fetch(&a, &b, MAX); // b has m0, m1; its HW is still 0
    fetch(&a, &b, MAX); // a's HW is 2; b learns it only now... stop before:
    assert_eq!(a.high_watermark(), 2);
    b.checkpoint_high_watermark().unwrap();
    // b restarts with whatever HW it had; a stays leader at epoch 0.
    b.abandon();
    let b = open(dir.path(), 2);
    b.become_follower(0, Election::Clean).unwrap();
    assert_eq!(b.log_end_offset(), 2, "nothing truncated at restart");
    let p = fetch(&a, &b, MAX);
    assert!(matches!(p, FollowerProgress::Appended { .. }), "{p:?}");
    // a dies; b leads at epoch 1 with both messages.
    a.abandon();
    b.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    assert_eq!(b.log_end_offset(), 2);
    assert_eq!(b.high_watermark(), 2);
}

/// KIP-101, scenario 2: leader A has m0, m1 (epoch 0), follower B only m0. Both crash; B comes
/// back first and leads at epoch 1, writing m2 at offset 1. A comes back as a follower: it must
/// drop m1 (offset 1) and take m2, ending byte-identical to B.
#[test]
fn kip_101_follower_with_an_uncommitted_old_epoch_tail_truncates_to_the_new_leaders_epoch_start() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), 1);
    let b = open(dir.path(), 2);
    a.become_leader(&assignment(0, &[1, 2]), 0).unwrap();
    b.become_follower(0, Election::Clean).unwrap();
    produce(&a, 1, "m0");
    catch_up(&a, &b);
    produce(&a, 1, "m1"); // never reaches b
    assert_eq!((a.high_watermark(), b.high_watermark()), (1, 1));
    a.abandon();
    b.abandon();
    let b = open(dir.path(), 2);
    b.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    produce(&b, 1, "m2");
    let a = open(dir.path(), 1);
    a.become_follower(1, Election::Clean).unwrap();
    let p = fetch(&b, &a, MAX);
    assert_eq!(
        p,
        FollowerProgress::Truncated {
            log_end_offset: 1,
            complete: true
        }
    );
    assert_eq!(epochs(&a), [(0, 0)]);
    catch_up(&b, &a);
    assert_eq!(all_bytes(&a), all_bytes(&b));
    assert_eq!(epochs(&a), [(0, 0), (1, 1)]);
}

/// KIP-279: two leader changes in a row. A leads at epoch 1 and writes m0 (committed) and m1;
/// B (with m0) leads at epoch 2 and writes m1' at offset 1; then A leads again at epoch 3 with
/// its own m1 and writes m2. B follows A: A does not know epoch 2, answers (1, 2); B's epoch 1
/// ends at 1, so B cuts m1' at 1, then copies m1 and m2 and matches A byte for byte.
#[test]
fn kip_279_follower_truncates_correctly_after_two_leader_changes_in_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), 1);
    let b = open(dir.path(), 2);
    a.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    b.become_follower(1, Election::Clean).unwrap();
    produce(&a, 1, "m0");
    catch_up(&a, &b);
    produce(&a, 1, "m1");
    a.abandon();
    b.become_leader(&assignment(2, &[1, 2]), 0).unwrap();
    produce(&b, 1, "m1-prime");
    b.abandon();
    let a = open(dir.path(), 1);
    a.become_leader(&assignment(3, &[1, 2]), 0).unwrap();
    produce(&a, 1, "m2");
    let b = open(dir.path(), 2);
    assert_eq!(epochs(&b), [(1, 0), (2, 1)]);
    b.become_follower(3, Election::Clean).unwrap();

    let request = b.fetch_request(MAX).unwrap();
    assert_eq!(
        (request.fetch_offset, request.last_fetched_epoch),
        (2, Some(2))
    );
    let response = a.handle_fetch(&request, 0).unwrap();
    assert_eq!(
        response,
        FetchResponse::DivergingEpoch(EpochEndOffset {
            leader_epoch: 1,
            end_offset: 2
        })
    );
    assert_eq!(
        b.apply_fetch(&response).unwrap(),
        FollowerProgress::Truncated {
            log_end_offset: 1,
            complete: true
        }
    );
    catch_up(&a, &b);
    assert_eq!(all_bytes(&b), all_bytes(&a));
    assert_eq!(epochs(&b), [(1, 0), (3, 2)]);
    assert_eq!(epochs(&b), epochs(&a));
}

/// KIP-279's multi-round case: the follower does not know the epoch the leader answers with,
/// so it cuts to the end of its own largest epoch below it and asks again.
/// X leads epoch 0 (offsets 0..5); L copies 0..3, F copies 0..5. L leads epoch 1 (3..6), F
/// leads epoch 2 (5..8), then L leads epoch 3 (6..9) and F follows it.
#[test]
fn kip_279_follower_that_does_not_know_the_leaders_epoch_searches_in_several_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let x = open(dir.path(), 9);
    let l = open(dir.path(), 1);
    let f = open(dir.path(), 2);
    x.become_leader(&assignment(0, &[9, 1, 2]), 0).unwrap();
    produce(&x, 5, "x");
    l.become_follower(0, Election::Clean).unwrap();
    f.become_follower(0, Election::Clean).unwrap();
    for _ in 0..3 {
        fetch(&x, &l, 1); // one batch per fetch
    }
    for _ in 0..5 {
        fetch(&x, &f, 1);
    }
    assert_eq!((l.log_end_offset(), f.log_end_offset()), (3, 5));
    l.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    produce(&l, 3, "l1");
    f.become_leader(&assignment(2, &[1, 2]), 0).unwrap();
    produce(&f, 3, "f2");
    l.become_leader(&assignment(3, &[1, 2]), 0).unwrap();
    produce(&l, 3, "l3");
    f.become_follower(3, Election::Clean).unwrap();
    assert_eq!(epochs(&l), [(0, 0), (1, 3), (3, 6)]);
    assert_eq!(epochs(&f), [(0, 0), (2, 5)]);

    let steps = catch_up(&l, &f);
    assert_eq!(
        steps[..2],
        [
            // Leader: epoch 2 unknown, largest below is 1, ending at 6. F knows no epoch 1:
            // its largest below is 0, ending at 5: cut there and ask again.
            FollowerProgress::Truncated {
                log_end_offset: 5,
                complete: false
            },
            // Leader: epoch 0 ended at 3.
            FollowerProgress::Truncated {
                log_end_offset: 3,
                complete: true
            },
        ]
    );
    assert_eq!(all_bytes(&f), all_bytes(&l));
    assert_eq!(epochs(&f), epochs(&l));
}

#[test]
fn truncation_below_the_high_watermark_is_refused_unless_the_election_was_unclean() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), 1);
    let b = open(dir.path(), 2);
    a.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    b.become_follower(1, Election::Clean).unwrap();
    produce(&a, 3, "m");
    catch_up(&a, &b);
    assert_eq!(b.high_watermark(), 3);
    // A leader that lacks committed data (elected uncleanly from outside the ISR).
    let c = open(dir.path(), 3);
    c.become_leader(&assignment(2, &[3, 2]), 0).unwrap();
    produce(&c, 1, "c");
    b.become_follower(2, Election::Clean).unwrap();
    let request = b.fetch_request(MAX).unwrap();
    let response = c.handle_fetch(&request, 0).unwrap();
    let err = b.apply_fetch(&response).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Replica(ReplicaError::TruncationBelowHighWatermark {
                offset: 0,
                high_watermark: 3
            })
        ),
        "{err:?}"
    );
    assert_eq!(b.log_end_offset(), 3, "nothing cut");
    b.become_follower(2, Election::Unclean).unwrap();
    let p = b.apply_fetch(&response).unwrap();
    assert_eq!(
        p,
        FollowerProgress::Truncated {
            log_end_offset: 0,
            complete: true
        }
    );
    assert_eq!(b.high_watermark(), 0);
    catch_up(&c, &b);
    assert_eq!(all_bytes(&b), all_bytes(&c));
}

// ---------------------------------------------------------------------------------------------
// Open: epoch cache and high watermark from disk.

#[test]
fn high_watermark_is_checkpointed_in_kafkas_layout_and_reloaded_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1);
    p.become_leader(&assignment(1, &[1]), 0).unwrap();
    produce(&p, 4, "a");
    assert_eq!(p.high_watermark(), 4);
    let pdir = p.log().dir().to_path_buf();
    p.close().unwrap();
    let text = std::fs::read_to_string(pdir.join(REPLICATION_OFFSET_CHECKPOINT_FILE)).unwrap();
    assert_eq!(text, "0\n1\ntopic 0 4\n");
    let p = open(dir.path(), 1);
    assert_eq!(p.high_watermark(), 4);
    // A checkpoint above the log (the log lost its tail) is clamped.
    drop(p);
    std::fs::write(
        pdir.join(REPLICATION_OFFSET_CHECKPOINT_FILE),
        "0\n2\nother 0 77\ntopic 0 99\n",
    )
    .unwrap();
    let p = open(dir.path(), 1);
    assert_eq!(p.high_watermark(), 4);
    drop(p);
    std::fs::write(
        pdir.join(REPLICATION_OFFSET_CHECKPOINT_FILE),
        "0\n2\ntopic 0 1\n",
    )
    .unwrap();
    let err = Partition::open(&pdir, config(1)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

/// The periodic checkpoint (`ReplicaSet::tick` runs it for every replica) rewrites the file
/// (an atomic replace: new inode, two fsyncs) only when the high watermark moved.
#[test]
#[cfg_attr(miri, ignore)]
fn an_unchanged_high_watermark_is_not_checkpointed_again() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1);
    p.become_leader(&assignment(1, &[1]), 0).unwrap();
    produce(&p, 2, "a");
    let path = p.log().dir().join(REPLICATION_OFFSET_CHECKPOINT_FILE);
    let inode = || std::fs::metadata(&path).unwrap().ino();
    p.checkpoint_high_watermark().unwrap();
    let first = inode();
    p.checkpoint_high_watermark().unwrap();
    assert_eq!(inode(), first, "the same value was written again");
    produce(&p, 1, "b");
    p.checkpoint_high_watermark().unwrap();
    assert_ne!(inode(), first, "a new high watermark was not written");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text, "0\n1\ntopic 0 3\n");
}

#[test]
fn epoch_cache_is_rebuilt_from_the_batches_when_missing_or_not_matching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let p = open(dir.path(), 1);
    p.become_leader(&assignment(1, &[1]), 0).unwrap();
    produce(&p, 2, "a");
    p.become_leader(&assignment(4, &[1]), 0).unwrap();
    produce(&p, 2, "b");
    let pdir = p.log().dir().to_path_buf();
    p.close().unwrap();
    let p = open(dir.path(), 1);
    assert!(!p.epoch_cache_rebuilt());
    assert_eq!(epochs(&p), [(1, 0), (4, 2)]);
    drop(p);
    // Missing.
    std::fs::remove_file(pdir.join(LEADER_EPOCH_CHECKPOINT_FILE)).unwrap();
    let p = open(dir.path(), 1);
    assert!(p.epoch_cache_rebuilt());
    assert_eq!(epochs(&p), [(1, 0), (4, 2)]);
    drop(p);
    // Not matching the last batch (an entry past the log end, as after a lost tail).
    std::fs::write(pdir.join(LEADER_EPOCH_CHECKPOINT_FILE), "0\n2\n1 0\n7 9\n").unwrap();
    let p = open(dir.path(), 1);
    assert!(p.epoch_cache_rebuilt());
    assert_eq!(epochs(&p), [(1, 0), (4, 2)]);
    drop(p);
    // Garbled.
    std::fs::write(pdir.join(LEADER_EPOCH_CHECKPOINT_FILE), "0\nx\n").unwrap();
    let p = open(dir.path(), 1);
    assert!(p.epoch_cache_rebuilt());
    assert_eq!(epochs(&p), [(1, 0), (4, 2)]);
}

// ---------------------------------------------------------------------------------------------
// Durability.

/// Many writer threads, acknowledge-on-flush: every acknowledged append is on disk (the
/// recovery point covers it) and flushes are shared: far fewer fsyncs than appends.
#[test]
fn group_commit_acknowledges_many_appends_per_flush() {
    let dir = tempfile::tempdir().unwrap();
    let p = Arc::new(
        Partition::open(
            dir.path().join("1"),
            PartitionConfig {
                durability: Durability::OnFlush,
                log: Config::default(),
                ..config(1)
            },
        )
        .unwrap(),
    );
    p.become_leader(&assignment(1, &[1]), 0).unwrap();
    const THREADS: usize = 8;
    const PER_THREAD: usize = 100;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let r = SimpleRecord::new(0, None::<&str>, Some(format!("{t}-{i}")));
                    let info = p.append_records(&[r], 0).unwrap();
                    assert!(p.log().recovery_point() > info.last_offset);
                    assert!(p.high_watermark() <= p.log().recovery_point());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let appends = (THREADS * PER_THREAD) as u64;
    let flushes = p.group_commit_flushes();
    eprintln!("group commit: {appends} appends, {flushes} flushes");
    assert!(
        flushes * 2 < appends,
        "{flushes} flushes for {appends} appends"
    );
    assert_eq!(p.high_watermark(), appends as i64);
}

#[test]
fn follower_on_flush_syncs_what_it_appended_before_it_fetches_again() {
    let dir = tempfile::tempdir().unwrap();
    let on_flush = |id: u32| {
        Partition::open(
            dir.path().join(id.to_string()),
            PartitionConfig {
                durability: Durability::OnFlush,
                ..config(id)
            },
        )
        .unwrap()
    };
    let leader = on_flush(1);
    let follower = on_flush(2);
    leader.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    follower.become_follower(1, Election::Clean).unwrap();
    produce(&leader, 5, "a");
    assert_eq!(leader.high_watermark(), 0, "the follower has not fetched");
    fetch(&leader, &follower, MAX);
    assert_eq!(follower.log().recovery_point(), 5);
    catch_up(&leader, &follower);
    assert_eq!(leader.high_watermark(), 5);
}

#[test]
fn leader_high_watermark_never_decreases_nor_passes_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1);
    let follower = open(dir.path(), 2);
    leader.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    follower.become_follower(1, Election::Clean).unwrap();
    produce(&leader, 5, "a");
    catch_up(&leader, &follower);
    assert_eq!(leader.high_watermark(), 5);
    // A stale fetch from further back (a delayed request) does not lower it.
    let stale = FetchRequest {
        replica_id: ReplicaId(2),
        ..request(3, Some(1), Some(1))
    };
    let r = leader.handle_fetch(&stale, 0).unwrap();
    assert!(matches!(r, FetchResponse::Records(_)));
    assert_eq!(leader.high_watermark(), 5);
    // Re-elected: kept.
    leader.become_leader(&assignment(2, &[1, 2]), 0).unwrap();
    assert_eq!(leader.high_watermark(), 5);
    produce(&leader, 2, "b");
    assert!(leader.high_watermark() <= leader.log_end_offset());
    assert_eq!(
        leader.high_watermark(),
        5,
        "the follower has not fetched epoch 2 yet"
    );
}

#[test]
fn follower_refuses_an_answer_that_does_not_continue_its_log_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(dir.path(), 1);
    let follower = open(dir.path(), 2);
    leader.become_leader(&assignment(1, &[1, 2]), 0).unwrap();
    follower.become_follower(1, Election::Clean).unwrap();
    produce(&leader, 3, "a");
    let request = follower.fetch_request(MAX).unwrap();
    let response = leader.handle_fetch(&request, 0).unwrap();
    follower.apply_fetch(&response).unwrap();
    // The same answer again (a duplicate delivery): its batches start below the log end.
    let err = follower.apply_fetch(&response).unwrap_err();
    assert!(matches!(
        err,
        Error::UnexpectedAppendOffset {
            first_offset: 0,
            log_end_offset: 3
        }
    ));
    assert_eq!(follower.log_end_offset(), 3);
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    // A leader cannot apply fetch answers, a follower cannot serve or append.
    assert!(matches!(
        leader.apply_fetch(&response).unwrap_err(),
        Error::Replica(ReplicaError::NotFollower)
    ));
    assert!(matches!(follower.fetch_request(MAX).map(|_| ()), Ok(())));
    assert!(matches!(
        leader.fetch_request(MAX).unwrap_err(),
        Error::Replica(ReplicaError::NotFollower)
    ));
}
