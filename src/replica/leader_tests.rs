//! The leader's terms: what a fetch or an append validated in one term may do in the next
//! (issue 17: stale fetch credit, acks=all tied to the epoch of the append), on real files in
//! temp dirs, with the log's pause points holding one thread where the race happens.

use std::path::Path;
use std::sync::Arc;
use std::thread;

use super::*;
use crate::batch::SimpleRecord;
use crate::config::Config;
use crate::error::Error;
use crate::log::Point;
use crate::AppendInfo;

const MAX: usize = 1 << 20;

fn ids(replicas: &[u32]) -> Vec<ReplicaId> {
    replicas.iter().map(|&r| ReplicaId(r)).collect()
}

fn config(id: u32, min_insync_replicas: usize) -> PartitionConfig {
    PartitionConfig {
        log: Config {
            segment_bytes: 4096,
            segment_index_bytes: 1024,
            index_interval_bytes: 256,
            ..Config::default()
        },
        tracker: TrackerConfig {
            min_insync_replicas,
            ..TrackerConfig::default()
        },
        ..PartitionConfig::new("topic", 0, ReplicaId(id))
    }
}

fn open(dir: &Path, id: u32, min_insync_replicas: usize) -> Partition {
    Partition::open(dir.join(id.to_string()), config(id, min_insync_replicas)).unwrap()
}

fn leader_and_isr(epoch: i32, replicas: &[u32], isr: &[u32]) -> LeaderAndIsr {
    LeaderAndIsr {
        leader_epoch: epoch,
        replicas: ids(replicas),
        isr: ids(isr),
    }
}

/// Appends `n` one-record batches keyed and valued `tag`; returns the last append.
fn produce(p: &Partition, n: usize, tag: &str) -> AppendInfo {
    let mut last = None;
    for _ in 0..n {
        last = Some(produce_one(p, tag).unwrap());
    }
    last.expect("n > 0")
}

/// Appends one one-record batch keyed and valued `tag`.
fn produce_one(p: &Partition, tag: &str) -> crate::Result<AppendInfo> {
    let record = SimpleRecord::new(0, Some(tag.to_owned()), Some(tag.to_owned()));
    p.append_records(&[record], 0)
}

/// Replica 1 led epoch 1; now 2 leads epoch 2 and writes Y at offsets 0..2, 1 follows, is cut
/// and copies Y, and leads again at epoch 3 with a high watermark of 2: whatever 1 appended in
/// epoch 1 that 2 never fetched is gone.
fn overwrite_and_lead_again(one: &Partition, two: &Partition) {
    two.become_leader(&leader_and_isr(2, &[1, 2], &[2]), 0)
        .unwrap();
    produce(two, 2, "y");
    one.become_follower(2, Election::Clean).unwrap();
    catch_up(two, one);
    one.become_leader(&leader_and_isr(3, &[1, 2], &[1, 2]), 0)
        .unwrap();
}

/// One fetch round trip of `max_bytes`.
fn fetch(leader: &Partition, follower: &Partition, max_bytes: usize) -> FollowerProgress {
    let request = follower.fetch_request(max_bytes).unwrap();
    let response = leader.handle_fetch(&request, 0).unwrap();
    follower.apply_fetch(&response).unwrap()
}

/// Fetches until a fetch brings nothing new and the follower has the leader's log end and high
/// watermark.
fn catch_up(leader: &Partition, follower: &Partition) {
    for _ in 0..100 {
        let idle = matches!(
            fetch(leader, follower, MAX),
            FollowerProgress::Appended {
                records_appended: 0,
                ..
            }
        );
        if idle
            && follower.log_end_offset() == leader.log_end_offset()
            && follower.high_watermark() == leader.high_watermark()
        {
            return;
        }
    }
    panic!("no catch-up");
}

// ---------------------------------------------------------------------------------------------
// Finding 1: a fetch is credited only to the term it was validated in.

/// Issue 17, finding 1. Replica 1 leads epoch 1 and serves follower 2's fetch at offset 6: the
/// fetch is validated, then held in the read. Meanwhile 1 loses leadership to 3 (epoch 2), is
/// cut to 3's four records, and leads again at epoch 3 with itself alone in the ISR (below
/// `min.insync.replicas = 2`: the high watermark is frozen) and appends four more. Follower 2
/// still holds epoch 1's records at offsets 0..6, where 1 now holds epochs 2 and 3: the held
/// fetch must not count for epoch 3 (it would put 2 into the ISR and commit offsets 4..6 on
/// the strength of records 2 does not have), and its answer must not hand 2 a batch of epoch
/// 3 to put after its epoch-1 records. Kafka holds the leader/ISR lock across the fetch; here
/// the fetch is re-validated against the term it ends in.
#[test]
#[cfg_attr(miri, ignore)]
fn stale_fetch_is_not_credited_to_a_later_term() {
    let dir = tempfile::tempdir().unwrap();
    let one = Arc::new(open(dir.path(), 1, 2));
    let two = open(dir.path(), 2, 2);
    let three = open(dir.path(), 3, 2);
    one.become_leader(&leader_and_isr(1, &[1, 2, 3], &[1, 2, 3]), 0)
        .unwrap();
    two.become_follower(1, Election::Clean).unwrap();
    three.become_follower(1, Election::Clean).unwrap();
    produce(&one, 7, "x");
    while two.log_end_offset() < 6 {
        fetch(&one, &two, 1);
    }
    // 3 never fetched in epoch 1: nothing is committed.
    assert_eq!(one.high_watermark(), 0);

    let stale = two.fetch_request(MAX).unwrap();
    assert_eq!(stale.fetch_offset, 6);
    let gate = one.log_pauses().arm(Point::ReadMappedSegment);
    let server = {
        let one = Arc::clone(&one);
        thread::spawn(move || one.handle_fetch(&stale, 0))
    };
    gate.wait_reached();

    three
        .become_leader(&leader_and_isr(2, &[1, 2, 3], &[1, 3]), 0)
        .unwrap();
    produce(&three, 4, "y");
    one.become_follower(2, Election::Clean).unwrap();
    catch_up(&three, &one);
    assert_eq!((one.log_end_offset(), one.high_watermark()), (4, 4));
    one.become_leader(&leader_and_isr(3, &[1, 2, 3], &[1]), 0)
        .unwrap();
    produce(&one, 4, "z");
    assert_eq!(one.high_watermark(), 4);

    gate.resume();
    let answer = server.join().unwrap().unwrap();
    assert_eq!(
        one.isr(),
        Some(ids(&[1])),
        "a fetch validated in epoch 1 put its follower into the ISR of epoch 3"
    );
    assert_eq!(
        one.high_watermark(),
        4,
        "a fetch validated in epoch 1 moved the high watermark of epoch 3"
    );
    assert_eq!(
        one.replica_state(ReplicaId(2)).unwrap().log_end_offset,
        None
    );
    assert_eq!(answer, FetchResponse::FencedLeaderEpoch { leader_epoch: 3 });
}

// ---------------------------------------------------------------------------------------------
// Finding 2: an acks=all append completes only while its offsets hold its epoch's batches.

/// Issue 17, finding 2. Replica 1 appends X at offset 0 in epoch 1; before follower 2 fetches
/// it, 2 leads epoch 2 and writes Y at offsets 0..2; 1 follows, is cut and copies Y, and leads
/// again at epoch 3 with a high watermark of 2. X's append is gone: its status must say so
/// (Kafka fails the delayed produce with `NOT_LEADER_OR_FOLLOWER`), not report it complete
/// because the high watermark covers offset 0, where Y now lies.
#[test]
#[cfg_attr(miri, ignore)]
fn acks_all_append_of_an_earlier_term_overwritten_since_is_not_complete() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(dir.path(), 1, 1);
    let two = open(dir.path(), 2, 1);
    one.become_leader(&leader_and_isr(1, &[1, 2], &[1, 2]), 0)
        .unwrap();
    two.become_follower(1, Election::Clean).unwrap();
    let x = produce(&one, 1, "x");
    assert_eq!(one.acks_all_status(&x).unwrap(), AcksAllStatus::Pending);

    overwrite_and_lead_again(&one, &two);
    assert_eq!(one.high_watermark(), 2);

    let status = one.acks_all_status(&x);
    assert!(
        matches!(
            status,
            Err(Error::Replica(ReplicaError::NotLeader {
                leader_epoch: Some(1)
            }))
        ),
        "X, overwritten by Y, reported as {status:?}"
    );
}

/// Issue 17, finding 2, under [`Durability::OnFlush`]: the append of X waits for its flush; by
/// the time it is durable, replica 1 has lost leadership, been cut and overwritten with Y, and
/// leads again at epoch 3. The append must not return success for X.
#[test]
#[cfg_attr(miri, ignore)]
fn on_flush_append_overwritten_while_it_waited_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let one = Arc::new(
        Partition::open(
            dir.path().join("1"),
            PartitionConfig {
                durability: Durability::OnFlush,
                ..config(1, 1)
            },
        )
        .unwrap(),
    );
    let two = open(dir.path(), 2, 1);
    one.become_leader(&leader_and_isr(1, &[1, 2], &[1, 2]), 0)
        .unwrap();
    two.become_follower(1, Election::Clean).unwrap();

    let gate = one.log_pauses().arm(Point::LeaderAppendDurable);
    let appender = {
        let one = Arc::clone(&one);
        thread::spawn(move || produce_one(&one, "x"))
    };
    gate.wait_reached();
    overwrite_and_lead_again(&one, &two);
    gate.resume();

    let x = appender.join().unwrap();
    assert!(
        matches!(
            x,
            Err(Error::Replica(ReplicaError::NotLeader {
                leader_epoch: Some(1)
            }))
        ),
        "X, overwritten by Y while its append waited for its flush, returned {x:?}"
    );
}

/// The other side of finding 2: an append of an earlier term that the replica still holds (it
/// was re-elected, nothing was cut) completes once the high watermark covers it, and every
/// leader append says which epoch it was written in.
#[test]
#[cfg_attr(miri, ignore)]
fn acks_all_append_of_an_earlier_term_still_held_completes() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(dir.path(), 1, 1);
    let two = open(dir.path(), 2, 1);
    one.become_leader(&leader_and_isr(1, &[1, 2], &[1, 2]), 0)
        .unwrap();
    two.become_follower(1, Election::Clean).unwrap();
    let x = produce(&one, 3, "x");
    assert_eq!(x.leader_epoch, Some(1));
    one.become_leader(&leader_and_isr(2, &[1, 2], &[1, 2]), 0)
        .unwrap();
    assert_eq!(one.acks_all_status(&x).unwrap(), AcksAllStatus::Pending);
    two.become_follower(2, Election::Clean).unwrap();
    catch_up(&one, &two);
    assert_eq!(one.acks_all_status(&x).unwrap(), AcksAllStatus::Complete);
    assert_eq!(produce(&one, 1, "y").leader_epoch, Some(2));
}

// ---------------------------------------------------------------------------------------------
// Finding 5: the periodic work of a partition keeps what the followers still need.

/// Issue 17, finding 5. A leader with `retention.bytes = 0` holds 150 records that its one
/// follower has not fetched (high watermark 0). Its periodic tick must not delete them: Kafka
/// deletes only below the high watermark. Before, `partition.log().tick(..)` (the log's
/// documented periodic call, reachable through the writable log) deleted every closed segment,
/// left the epoch cache untrimmed, the follower restarted at the new log start, and the
/// pending `acks=all` append reported complete for records no follower ever had.
#[test]
#[cfg_attr(miri, ignore)]
fn tick_keeps_records_above_the_high_watermark_for_the_followers() {
    let dir = tempfile::tempdir().unwrap();
    let small = |id| {
        let mut c = config(id, 1);
        c.log.retention_bytes = 0;
        Partition::open(dir.path().join(id.to_string()), c).unwrap()
    };
    let (one, two) = (small(1), small(2));
    one.become_leader(&leader_and_isr(1, &[1, 2], &[1, 2]), 0)
        .unwrap();
    two.become_follower(1, Election::Clean).unwrap();
    let first = produce(&one, 1, "first");
    produce(&one, 149, "x");
    assert!(one.log().segment_count() > 2);
    assert_eq!(one.acks_all_status(&first).unwrap(), AcksAllStatus::Pending);

    one.tick(0).unwrap();
    assert_eq!(
        one.log_start_offset(),
        0,
        "records above the high watermark deleted"
    );
    catch_up(&one, &two);
    assert_eq!(two.log_start_offset(), 0);
    assert_eq!(two.log_end_offset(), 150);
    assert_eq!(
        one.acks_all_status(&first).unwrap(),
        AcksAllStatus::Complete
    );
    // Once committed, the same tick deletes them, and the epoch cache follows the log start.
    one.tick(0).unwrap();
    assert!(one.log_start_offset() > 0);
    assert_eq!(one.epoch_entries()[0].start_offset, one.log_start_offset());
}

// ---------------------------------------------------------------------------------------------
// Finding 7: one minimum-ISR rule; the log start checked first.

/// Issue 17, finding 7: with `min.insync.replicas` above the replication factor, the high
/// watermark gate used `min(min.insync.replicas, replication factor)` while `acks=all` used
/// `min.insync.replicas`: the high watermark advanced for appends that acks=all refused. One
/// rule now (Kafka's `effectiveMinIsr`), and both agree on each side of the boundary.
#[test]
fn acks_all_and_the_high_watermark_gate_agree_at_the_min_isr_boundary() {
    let (a, b) = (ReplicaId(1), ReplicaId(2));
    for (min_insync_replicas, isr, open) in [
        (3, vec![a, b], true), // min.insync above the replication factor: 2 suffice
        (2, vec![a, b], true),
        (2, vec![a], false),
        (3, vec![a], false),
    ] {
        let config = TrackerConfig {
            min_insync_replicas,
            ..TrackerConfig::default()
        };
        let term = LeaderTerm {
            isr: isr.clone(),
            ..LeaderTerm::new(a, vec![a, b], 1, 0, 0)
        };
        let mut t = ReplicaTracker::new(config, term, 0).unwrap();
        t.set_leader_log_end(4).unwrap();
        t.on_fetch(b, 4, 4, 0).unwrap();
        let advanced = t.maybe_advance_hw(0).is_some();
        let case = format!("min.insync {min_insync_replicas}, ISR {isr:?}");
        assert_eq!(t.can_accept_acks_all(), open, "{case}: acks=all");
        assert_eq!(advanced, open, "{case}: high watermark");
        let status = t.acks_all_status(4);
        assert_eq!(
            status == AcksAllStatus::Complete,
            open,
            "{case}: {status:?}"
        );
    }
}

/// Issue 17, finding 7: a fetch below the log start is out of range even when its last
/// fetched epoch would also diverge (Kafka checks the log start first: the follower must
/// restart at the log start, not truncate towards offsets that no longer exist).
#[test]
#[cfg_attr(miri, ignore)]
fn fetch_below_the_log_start_is_out_of_range_before_it_is_diverging() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(dir.path(), 1, 1);
    one.become_leader(&leader_and_isr(1, &[1], &[1]), 0)
        .unwrap();
    produce(&one, 3, "a");
    one.become_leader(&leader_and_isr(3, &[1, 2], &[1]), 0)
        .unwrap();
    produce(&one, 3, "b");
    one.become_leader(&leader_and_isr(5, &[1, 2], &[1]), 0)
        .unwrap();
    produce(&one, 3, "c");
    assert_eq!(one.delete_records(4).unwrap(), 4);
    // A follower at offset 2 whose last epoch, 4, the leader never had: diverging at (3, 6).
    let request = FetchRequest {
        replica_id: ReplicaId(2),
        fetch_offset: 2,
        last_fetched_epoch: Some(4),
        current_leader_epoch: Some(5),
        max_bytes: MAX,
    };
    let out_of_range = FetchResponse::OffsetOutOfRange {
        log_start_offset: 4,
        log_end_offset: 9,
    };
    assert_eq!(one.handle_fetch(&request, 0).unwrap(), out_of_range);
    assert_eq!(
        one.validate_offset_and_epoch(2, Some(4)),
        OffsetEpochCheck::OutOfRange {
            log_start_offset: 4,
            log_end_offset: 9
        }
    );
}

/// The fetch answer names the leader epoch that served it.
#[test]
#[cfg_attr(miri, ignore)]
fn fetch_answer_names_the_leader_epoch_that_served_it() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(dir.path(), 1, 1);
    let two = open(dir.path(), 2, 1);
    one.become_leader(&leader_and_isr(4, &[1, 2], &[1, 2]), 0)
        .unwrap();
    two.become_follower(4, Election::Clean).unwrap();
    produce(&one, 2, "a");
    let answer = one
        .handle_fetch(&two.fetch_request(MAX).unwrap(), 0)
        .unwrap();
    let FetchResponse::Records(records) = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(records.leader_epoch, 4);
}

// ---------------------------------------------------------------------------------------------
// Finding 7: an ISR change within a leader epoch; the leader's view of each follower.

/// Issue 17, finding 7: the controller shrinks the ISR without electing a new leader (Kafka's
/// partition epoch moves, the leader epoch does not). Before, the only way in was
/// `become_leader`, which refuses the same epoch; now `update_isr` applies it, lets the high
/// watermark move without the dropped follower, and refuses a stale partition epoch.
#[test]
#[cfg_attr(miri, ignore)]
fn isr_changes_within_a_leader_epoch_by_partition_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(dir.path(), 1, 1);
    let two = open(dir.path(), 2, 1);
    one.become_leader(&leader_and_isr(1, &[1, 2, 3], &[1, 2, 3]), 0)
        .unwrap();
    two.become_follower(1, Election::Clean).unwrap();
    produce(&one, 4, "a");
    catch_up(&one, &two);
    // 3 never fetched: it holds the high watermark at 0.
    assert_eq!(one.high_watermark(), 0);
    let same_epoch = one.become_leader(&leader_and_isr(1, &[1, 2, 3], &[1, 2]), 0);
    assert!(matches!(
        same_epoch,
        Err(Error::Replica(ReplicaError::EpochNotIncreasing { .. }))
    ));

    one.update_isr(1, &ids(&[1, 2]), 10).unwrap();
    assert_eq!(one.isr(), Some(ids(&[1, 2])));
    assert_eq!(one.leader_epoch(), Some(1));
    assert_eq!(one.high_watermark(), 4);
    let three = one.replica_state(ReplicaId(3)).unwrap();
    assert!(!three.in_sync);
    assert_eq!(three.log_end_offset, None);

    let stale = one.update_isr(1, &ids(&[1, 2, 3]), 20);
    assert!(matches!(
        stale,
        Err(Error::Replica(ReplicaError::EpochNotIncreasing {
            current: 1,
            ..
        }))
    ));
    let without_leader = one.update_isr(2, &ids(&[2]), 20);
    assert!(matches!(
        without_leader,
        Err(Error::Replica(ReplicaError::LeaderNotInIsr { .. }))
    ));
    assert_eq!(one.isr(), Some(ids(&[1, 2])));
}

/// `Partition::replica_state`: a leader's view of each follower (log end, fetch and
/// caught-up times, in the ISR or not); errors for the leader itself, unknown replicas, and
/// a replica that does not lead.
#[test]
#[cfg_attr(miri, ignore)]
fn leader_reports_each_followers_state() {
    let dir = tempfile::tempdir().unwrap();
    let one = open(dir.path(), 1, 1);
    let two = open(dir.path(), 2, 1);
    one.become_leader(&leader_and_isr(1, &[1, 2, 3], &[1, 2]), 100)
        .unwrap();
    two.become_follower(1, Election::Clean).unwrap();
    produce(&one, 3, "a");
    let request = two.fetch_request(MAX).unwrap();
    two.apply_fetch(&one.handle_fetch(&request, 250).unwrap())
        .unwrap();
    let request = two.fetch_request(MAX).unwrap();
    two.apply_fetch(&one.handle_fetch(&request, 300).unwrap())
        .unwrap();

    let s2 = one.replica_state(ReplicaId(2)).unwrap();
    assert_eq!(s2.log_end_offset, Some(3));
    assert_eq!(s2.last_fetch_time_ms, 300);
    assert_eq!(s2.last_caught_up_time_ms, 300);
    assert!(s2.in_sync);
    let s3 = one.replica_state(ReplicaId(3)).unwrap();
    assert_eq!(s3.log_end_offset, None);
    assert!(!s3.in_sync);
    for missing in [1, 9] {
        assert!(matches!(
            one.replica_state(ReplicaId(missing)),
            Err(Error::Replica(ReplicaError::UnknownReplica { .. }))
        ));
    }
    assert!(matches!(
        two.replica_state(ReplicaId(1)),
        Err(Error::Replica(ReplicaError::NotLeader { .. }))
    ));
}
