//! The leader-side rules of Kafka's `Partition`/`Replica` (high watermark, ISR shrink and expand,
//! `lastCaughtUpTimeMs`, min.insync.replicas, acks=all) and KRaft's majority high watermark.

use super::*;
use crate::clock::{Clock, ManualClock};

const A: ReplicaId = ReplicaId(1);
const B: ReplicaId = ReplicaId(2);
const C: ReplicaId = ReplicaId(3);
const D: ReplicaId = ReplicaId(4);
const E: ReplicaId = ReplicaId(5);
const LAG: i64 = 30_000;

fn config(min_insync_replicas: usize, policy: HighWatermarkPolicy) -> TrackerConfig {
    TrackerConfig {
        min_insync_replicas,
        replica_lag_time_max_ms: LAG,
        policy,
    }
}

/// Leader A at epoch 0 from offset 0, replicas `ids` (A first), all in sync, clock at 1000.
fn tracker(ids: &[ReplicaId], min_insync: usize, policy: HighWatermarkPolicy) -> ReplicaTracker {
    let term = LeaderTerm::new(A, ids.to_vec(), 0, 0, 0);
    ReplicaTracker::new(config(min_insync, policy), term, 1_000).unwrap()
}

fn isr_tracker(ids: &[ReplicaId]) -> ReplicaTracker {
    tracker(ids, 1, HighWatermarkPolicy::InSyncReplicas)
}

fn replica_err(r: Result<impl std::fmt::Debug>) -> ReplicaError {
    match r {
        Err(Error::Replica(e)) => e,
        other => panic!("expected a replica error, got {other:?}"),
    }
}

// ---- high watermark, Kafka's ISR policy ----

#[test]
fn hw_is_min_log_end_offset_over_isr_including_leader() {
    let mut t = isr_tracker(&[A, B, C]);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 8, 10, 1_100).unwrap();
    t.on_fetch(C, 5, 10, 1_100).unwrap();
    assert_eq!(t.maybe_advance_hw(1_100), Some(5));
    assert_eq!(t.high_watermark(), 5);
    assert_eq!(t.maybe_advance_hw(1_100), None, "no change, no report");
    t.on_fetch(C, 10, 10, 1_200).unwrap();
    assert_eq!(t.maybe_advance_hw(1_200), Some(8));
    t.on_fetch(B, 10, 10, 1_300).unwrap();
    assert_eq!(t.maybe_advance_hw(1_300), Some(10));
}

#[test]
fn hw_waits_for_isr_members_that_have_not_fetched_yet() {
    let mut t = isr_tracker(&[A, B, C]);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, 1_100).unwrap();
    // C is in the ISR but its offset is unknown under this leader: it holds the watermark.
    assert_eq!(t.maybe_advance_hw(1_100), None);
    assert_eq!(t.high_watermark(), 0);
}

#[test]
fn hw_never_decreases_when_a_follower_goes_back() {
    let mut t = isr_tracker(&[A, B]);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, 1_100).unwrap();
    assert_eq!(t.maybe_advance_hw(1_100), Some(10));
    // B truncated and fetches from 4 again (e.g. after a restart).
    t.on_fetch(B, 4, 10, 1_200).unwrap();
    assert_eq!(t.replica_state(B).unwrap().log_end_offset, Some(4));
    assert_eq!(t.maybe_advance_hw(1_200), None);
    assert_eq!(t.high_watermark(), 10);
}

#[test]
fn hw_is_clamped_to_the_leader_log_end_offset() {
    for policy in [
        HighWatermarkPolicy::InSyncReplicas,
        HighWatermarkPolicy::Majority,
    ] {
        let mut t = tracker(&[A, B, C], 1, policy);
        t.set_leader_log_end(10).unwrap();
        t.on_fetch(B, 10, 10, 1_100).unwrap();
        t.on_fetch(C, 10, 10, 1_100).unwrap();
        // The leader's end moves back (never below the watermark, which is still 0).
        t.set_leader_log_end(7).unwrap();
        assert_eq!(t.maybe_advance_hw(1_100), Some(7), "{policy:?}");
        assert!(t.high_watermark() <= t.log_end_offset());
    }
}

#[test]
fn hw_waits_for_a_caught_up_follower_outside_the_isr() {
    // Kafka's shouldWaitForReplicaToJoinIsr: a follower caught up within the lag time, but not
    // yet in the ISR, holds the watermark so that it can reach it and join.
    let clock = ManualClock::new(1_000);
    let term = LeaderTerm {
        isr: vec![A, B],
        ..LeaderTerm::new(A, vec![A, B, C], 0, 0, 0)
    };
    let mut t = ReplicaTracker::new(
        config(1, HighWatermarkPolicy::InSyncReplicas),
        term,
        clock.now_ms(),
    )
    .unwrap();
    t.set_leader_log_end(5).unwrap();
    t.on_fetch(C, 5, 5, clock.now_ms()).unwrap(); // caught up now
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, clock.now_ms()).unwrap();
    assert_eq!(t.maybe_advance_hw(clock.now_ms()), Some(5));
    clock.advance(LAG);
    assert_eq!(
        t.maybe_advance_hw(clock.now_ms()),
        None,
        "still within the lag time"
    );
    clock.advance(1);
    assert_eq!(
        t.maybe_advance_hw(clock.now_ms()),
        Some(10),
        "C fell behind: not waited for"
    );
}

#[test]
fn hw_advances_only_while_isr_reaches_min_insync_capped_by_replication_factor() {
    let clock = ManualClock::new(1_000);
    let mut t = tracker(&[A, B, C], 2, HighWatermarkPolicy::InSyncReplicas);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, clock.now_ms()).unwrap();
    t.on_fetch(C, 3, 10, clock.now_ms()).unwrap();
    assert_eq!(t.maybe_advance_hw(clock.now_ms()), Some(3));
    clock.advance(LAG + 1);
    assert_eq!(t.shrink_isr(clock.now_ms()), vec![C]);
    assert_eq!(
        t.maybe_advance_hw(clock.now_ms()),
        Some(10),
        "ISR {{A, B}} meets 2"
    );
    t.set_leader_log_end(20).unwrap();
    t.on_fetch(B, 10, 20, clock.now_ms()).unwrap();
    clock.advance(LAG + 1);
    assert_eq!(t.shrink_isr(clock.now_ms()), vec![B]);
    assert_eq!(t.isr(), vec![A]);
    // Only the leader is in sync: below min.insync.replicas = 2, the watermark stays.
    assert_eq!(t.maybe_advance_hw(clock.now_ms()), None);
    assert_eq!(t.high_watermark(), 10);

    // Replication factor 1 with min.insync.replicas 2: the effective minimum is 1.
    let mut single = tracker(&[A], 2, HighWatermarkPolicy::InSyncReplicas);
    single.set_leader_log_end(4).unwrap();
    assert_eq!(single.maybe_advance_hw(0), Some(4));
    assert!(
        single.can_accept_acks_all(),
        "and acks=all is taken by the same rule"
    );
}

// ---- last caught-up time (Kafka's Replica.updateFetchState) ----

#[test]
fn fetch_at_leader_end_is_caught_up_now() {
    let mut t = isr_tracker(&[A, B]);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, 5_000).unwrap();
    let s = t.replica_state(B).unwrap();
    assert_eq!(s.last_caught_up_time_ms, 5_000);
    assert_eq!(s.last_fetch_time_ms, 5_000);
    assert_eq!(s.last_fetch_leader_log_end_offset, Some(10));
    assert_eq!(s.log_end_offset, Some(10));
}

#[test]
fn fetch_reaching_previous_fetchs_leader_end_is_caught_up_at_previous_fetch_time() {
    let mut t = isr_tracker(&[A, B]);
    t.set_leader_log_end(20).unwrap();
    // First fetch: B at 5 while the leader was at 10 (the caught-up time stays at the reset).
    t.on_fetch(B, 5, 10, 2_000).unwrap();
    assert_eq!(t.replica_state(B).unwrap().last_caught_up_time_ms, 1_000);
    // Second fetch: B at 10 (>= the leader's end at the first fetch) while the leader is at 20:
    // B was caught up with the leader as of the first fetch, at 2000.
    t.on_fetch(B, 10, 20, 3_000).unwrap();
    assert_eq!(t.replica_state(B).unwrap().last_caught_up_time_ms, 2_000);
    // Third fetch: B at 15, below the leader's end at the second fetch (20): unchanged.
    t.on_fetch(B, 15, 25, 4_000).unwrap();
    assert_eq!(t.replica_state(B).unwrap().last_caught_up_time_ms, 2_000);
}

#[test]
fn caught_up_time_never_moves_back() {
    let mut t = isr_tracker(&[A, B]);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, 5_000).unwrap();
    // A fetch reported with an older timestamp (reordered) cannot move it back.
    t.on_fetch(B, 10, 10, 4_000).unwrap();
    assert_eq!(t.replica_state(B).unwrap().last_caught_up_time_ms, 5_000);
}

// ---- ISR shrink ----

#[test]
fn shrink_removes_followers_not_caught_up_within_lag_time() {
    let clock = ManualClock::new(1_000);
    let mut t = isr_tracker(&[A, B, C]);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, clock.now_ms()).unwrap();
    t.on_fetch(C, 4, 10, clock.now_ms()).unwrap();
    clock.advance(LAG);
    assert!(
        t.shrink_isr(clock.now_ms()).is_empty(),
        "exactly the lag time is still in sync"
    );
    clock.advance(1);
    // B is at the leader's end offset: in sync however long ago it fetched.
    assert_eq!(t.shrink_isr(clock.now_ms()), vec![C]);
    assert_eq!(t.isr(), vec![A, B]);
    assert!(!t.is_in_sync(C));
    t.set_leader_log_end(11).unwrap();
    assert_eq!(t.shrink_isr(clock.now_ms()), vec![B]);
    assert_eq!(t.isr(), vec![A], "the leader always stays");
    assert!(t.shrink_isr(clock.now_ms() + 10 * LAG).is_empty());
}

#[test]
fn shrink_removes_isr_members_that_never_fetched_after_lag_time() {
    let mut t = isr_tracker(&[A, B]);
    assert!(t.shrink_isr(1_000 + LAG).is_empty());
    assert_eq!(t.shrink_isr(1_001 + LAG), vec![B]);
}

// ---- ISR expand ----

#[test]
fn expand_needs_high_watermark_and_epoch_start() {
    let term = LeaderTerm {
        isr: vec![A],
        epoch_start_offset: 20,
        ..LeaderTerm::new(A, vec![A, B], 3, 30, 15)
    };
    let mut t = ReplicaTracker::new(TrackerConfig::default(), term, 1_000).unwrap();
    // No fetch yet: unknown offset, cannot join.
    assert!(!t.maybe_expand_isr(B).unwrap());
    t.on_fetch(B, 14, 30, 1_100).unwrap();
    assert!(
        !t.maybe_expand_isr(B).unwrap(),
        "below the high watermark 15"
    );
    t.on_fetch(B, 19, 30, 1_200).unwrap();
    assert!(!t.maybe_expand_isr(B).unwrap(), "below the epoch start 20");
    t.on_fetch(B, 20, 30, 1_300).unwrap();
    assert!(t.maybe_expand_isr(B).unwrap());
    assert_eq!(t.isr(), vec![A, B]);
    assert!(!t.maybe_expand_isr(B).unwrap(), "already in sync");
    assert_eq!(
        replica_err(t.maybe_expand_isr(C)),
        ReplicaError::UnknownReplica { replica: C }
    );
    assert_eq!(
        replica_err(t.maybe_expand_isr(A)),
        ReplicaError::UnknownReplica { replica: A }
    );
}

// ---- acks=all ----

#[test]
fn acks_all_accepted_only_while_isr_meets_min_insync() {
    let clock = ManualClock::new(1_000);
    let mut t = tracker(&[A, B, C], 2, HighWatermarkPolicy::InSyncReplicas);
    assert!(t.can_accept_acks_all());
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, clock.now_ms()).unwrap();
    t.on_fetch(C, 10, 10, clock.now_ms()).unwrap();
    assert_eq!(t.acks_all_status(10), AcksAllStatus::Pending);
    assert_eq!(t.maybe_advance_hw(clock.now_ms()), Some(10));
    assert_eq!(t.acks_all_status(10), AcksAllStatus::Complete);
    assert_eq!(t.acks_all_status(11), AcksAllStatus::Pending);
    assert!(t.is_committed(9));
    assert!(!t.is_committed(10));
    t.set_leader_log_end(12).unwrap();
    clock.advance(LAG + 1);
    assert_eq!(t.shrink_isr(clock.now_ms()), vec![B, C]);
    assert!(!t.can_accept_acks_all());
    // An append acknowledged by the watermark after the ISR shrank below min.insync.
    assert_eq!(
        t.acks_all_status(10),
        AcksAllStatus::NotEnoughReplicasAfterAppend
    );
}

// ---- majority policy (KRaft) ----

#[test]
fn majority_of_three_is_second_highest_past_epoch_start() {
    let term = LeaderTerm::new(A, vec![A, B, C], 2, 5, 0);
    let mut t = ReplicaTracker::new(config(3, HighWatermarkPolicy::Majority), term, 0).unwrap();
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 3, 10, 10).unwrap();
    assert_eq!(
        t.maybe_advance_hw(10),
        None,
        "C unknown: the 2nd highest is B's 3"
    );
    t.on_fetch(C, 5, 10, 10).unwrap();
    assert_eq!(
        t.maybe_advance_hw(10),
        None,
        "2nd highest is 5 = the epoch start: no record of epoch 2 on a majority yet"
    );
    t.on_fetch(C, 7, 10, 20).unwrap();
    assert_eq!(t.maybe_advance_hw(20), Some(7), "B lagging does not matter");
    t.on_fetch(B, 9, 10, 30).unwrap();
    assert_eq!(t.maybe_advance_hw(30), Some(9));
    // The ISR (and min.insync 3) does not gate the majority policy.
    assert_eq!(t.shrink_isr(30 + LAG + 1), vec![B, C]);
    assert!(t.can_accept_acks_all());
    t.on_fetch(C, 10, 10, 40).unwrap();
    assert_eq!(t.maybe_advance_hw(40), Some(10));
    assert_eq!(t.acks_all_status(10), AcksAllStatus::Complete);
}

#[test]
fn majority_of_five_is_third_highest() {
    let term = LeaderTerm::new(A, vec![A, B, C, D, E], 1, 0, 0);
    let mut t = ReplicaTracker::new(config(1, HighWatermarkPolicy::Majority), term, 0).unwrap();
    t.set_leader_log_end(20).unwrap();
    t.on_fetch(B, 15, 20, 1).unwrap();
    assert_eq!(t.maybe_advance_hw(1), None, "only 2 of 5 known");
    t.on_fetch(C, 4, 20, 1).unwrap();
    assert_eq!(t.maybe_advance_hw(1), Some(4));
    t.on_fetch(D, 12, 20, 2).unwrap();
    assert_eq!(t.maybe_advance_hw(2), Some(12), "[20, 15, 12, 4, ?]");
    t.on_fetch(E, 18, 20, 3).unwrap();
    assert_eq!(t.maybe_advance_hw(3), Some(15), "[20, 18, 15, 12, 4]");
    // Two followers going back cannot lower it.
    t.on_fetch(B, 0, 20, 4).unwrap();
    t.on_fetch(E, 0, 20, 4).unwrap();
    assert_eq!(t.maybe_advance_hw(4), None);
    assert_eq!(t.high_watermark(), 15);
}

// ---- elections and bad input ----

#[test]
fn start_epoch_moves_epoch_start_to_log_end_and_resets_followers() {
    let mut t = isr_tracker(&[A, B, C]);
    t.set_leader_log_end(10).unwrap();
    t.on_fetch(B, 10, 10, 2_000).unwrap();
    t.on_fetch(C, 6, 10, 2_000).unwrap();
    assert_eq!(
        replica_err(t.start_epoch(0, &[A, B], 3_000)),
        ReplicaError::EpochNotIncreasing {
            current: 0,
            requested: 0
        }
    );
    t.start_epoch(1, &[A, B], 3_000).unwrap();
    assert_eq!(t.leader_epoch(), 1);
    assert_eq!(t.epoch_start_offset(), 10);
    assert_eq!(t.isr(), vec![A, B]);
    let b = t.replica_state(B).unwrap();
    assert_eq!(
        (b.log_end_offset, b.last_caught_up_time_ms),
        (Some(10), 3_000)
    );
    let c = t.replica_state(C).unwrap();
    assert_eq!(
        (c.log_end_offset, c.last_caught_up_time_ms),
        (Some(6), i64::MIN)
    );
    assert_eq!(
        replica_err(t.start_epoch(2, &[B], 3_000)),
        ReplicaError::LeaderNotInIsr { leader: A }
    );
    assert_eq!(t.leader_epoch(), 1, "nothing changed on error");
}

#[test]
fn on_fetch_rejects_bad_fetches_and_changes_nothing() {
    let mut t = isr_tracker(&[A, B]);
    t.set_leader_log_end(10).unwrap();
    let before = t.replica_state(B);
    assert_eq!(
        replica_err(t.on_fetch(D, 1, 10, 5)),
        ReplicaError::UnknownReplica { replica: D }
    );
    assert_eq!(
        replica_err(t.on_fetch(A, 1, 10, 5)),
        ReplicaError::UnknownReplica { replica: A }
    );
    assert_eq!(
        replica_err(t.on_fetch(B, -1, 10, 5)),
        ReplicaError::NegativeOffset {
            what: "fetch_offset",
            offset: -1
        }
    );
    assert_eq!(
        replica_err(t.on_fetch(B, 11, 10, 5)),
        ReplicaError::FetchOffsetBeyondLogEnd {
            replica: B,
            fetch_offset: 11,
            log_end_offset: 10
        }
    );
    assert_eq!(t.replica_state(B), before);
}

#[test]
fn leader_log_end_cannot_fall_below_high_watermark() {
    let mut t = isr_tracker(&[A]);
    t.set_leader_log_end(10).unwrap();
    assert_eq!(t.maybe_advance_hw(0), Some(10));
    assert_eq!(
        replica_err(t.set_leader_log_end(9)),
        ReplicaError::LogEndBelowHighWatermark {
            log_end_offset: 9,
            high_watermark: 10
        }
    );
    assert_eq!(t.log_end_offset(), 10);
}

#[test]
fn inconsistent_terms_and_configs_are_rejected() {
    let ok = LeaderTerm::new(A, vec![A, B, C], 0, 10, 5);
    let cases: Vec<(LeaderTerm, ReplicaError)> = vec![
        (
            LeaderTerm {
                replicas: vec![A, B, B],
                ..ok.clone()
            },
            ReplicaError::DuplicateReplica { replica: B },
        ),
        (
            LeaderTerm {
                leader: D,
                isr: vec![D],
                ..ok.clone()
            },
            ReplicaError::UnknownReplica { replica: D },
        ),
        (
            LeaderTerm {
                isr: vec![B, C],
                ..ok.clone()
            },
            ReplicaError::LeaderNotInIsr { leader: A },
        ),
        (
            LeaderTerm {
                isr: vec![A, D],
                ..ok.clone()
            },
            ReplicaError::UnknownReplica { replica: D },
        ),
        (
            LeaderTerm {
                isr: vec![A, A],
                ..ok.clone()
            },
            ReplicaError::DuplicateReplica { replica: A },
        ),
        (
            LeaderTerm {
                high_watermark: 11,
                ..ok.clone()
            },
            ReplicaError::LogEndBelowHighWatermark {
                log_end_offset: 10,
                high_watermark: 11,
            },
        ),
        (
            LeaderTerm {
                epoch_start_offset: 11,
                ..ok.clone()
            },
            ReplicaError::EpochStartBeyondLogEnd {
                epoch_start_offset: 11,
                log_end_offset: 10,
            },
        ),
        (
            LeaderTerm {
                leader_epoch: -1,
                ..ok.clone()
            },
            ReplicaError::InvalidEpochEntry {
                leader_epoch: -1,
                start_offset: 10,
            },
        ),
        (
            LeaderTerm {
                high_watermark: -1,
                ..ok.clone()
            },
            ReplicaError::NegativeOffset {
                what: "high_watermark",
                offset: -1,
            },
        ),
    ];
    for (term, expected) in cases {
        assert_eq!(
            replica_err(ReplicaTracker::new(TrackerConfig::default(), term, 0)),
            expected
        );
    }
    for (bad, knob) in [
        (
            TrackerConfig {
                min_insync_replicas: 0,
                ..Default::default()
            },
            "min_insync_replicas",
        ),
        (
            TrackerConfig {
                replica_lag_time_max_ms: -1,
                ..Default::default()
            },
            "replica_lag_time_max_ms",
        ),
    ] {
        match ReplicaTracker::new(bad, ok.clone(), 0) {
            Err(Error::Config { knob: k, .. }) => assert_eq!(k, knob),
            other => panic!("expected a config error, got {other:?}"),
        }
    }
    let t = ReplicaTracker::new(TrackerConfig::default(), ok, 0).unwrap();
    assert_eq!(t.replicas(), vec![A, B, C]);
    assert_eq!(t.replication_factor(), 3);
    assert_eq!(t.high_watermark(), 5);
}

#[test]
fn replicas_are_listed_in_id_order_whatever_the_leader() {
    let term = LeaderTerm::new(C, vec![E, A, C, B], 0, 0, 0);
    let t = ReplicaTracker::new(TrackerConfig::default(), term, 0).unwrap();
    assert_eq!(t.replicas(), vec![A, B, C, E]);
    assert_eq!(t.isr(), vec![A, B, C, E]);
    assert_eq!(t.leader(), C);
}

#[test]
fn majority_of_four_needs_three_voters() {
    // With an even count a half is not a majority: the 3rd highest of 4, not the 2nd.
    let term = LeaderTerm::new(A, vec![A, B, C, D], 1, 0, 0);
    let mut t = ReplicaTracker::new(config(1, HighWatermarkPolicy::Majority), term, 0).unwrap();
    t.set_leader_log_end(20).unwrap();
    t.on_fetch(B, 16, 20, 1).unwrap();
    t.on_fetch(C, 8, 20, 1).unwrap();
    t.on_fetch(D, 2, 20, 1).unwrap();
    assert_eq!(t.maybe_advance_hw(1), Some(8), "[20, 16, 8, 2]");
}
