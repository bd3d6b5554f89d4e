//! A follower's catch-up in the cases where it stalled forever (issue 17): the leader's log
//! start inside a batch (finding 6), a high watermark from before an earlier unclean election,
//! and a cut below the follower's own log start after an unclean election (finding 4). Driven
//! through the public `Partition` API, one fetch at a time.

use partlog::batch::SimpleRecord;
use partlog::replica::{
    Election, FollowerProgress, LeaderAndIsr, Partition, PartitionConfig, ReplicaId,
};

mod common;

fn open(dir: &std::path::Path, id: u32) -> Partition {
    Partition::open(
        dir.join(format!("replica-{id}")),
        PartitionConfig::new("rides", 0, ReplicaId(id)),
    )
    .unwrap()
}

fn lead(p: &Partition, epoch: i32, isr: &[u32]) {
    p.become_leader(
        &LeaderAndIsr {
            leader_epoch: epoch,
            replicas: (0..3).map(ReplicaId).collect(),
            isr: isr.iter().copied().map(ReplicaId).collect(),
        },
        0,
    )
    .unwrap();
}

/// One batch of `n` records with values `tag-i`.
fn batch(tag: &str, n: u64) -> Vec<SimpleRecord> {
    (0..n)
        .map(|i| SimpleRecord::new(0, None::<&str>, Some(format!("{tag}-{i}"))))
        .collect()
}

/// Fetches until an answer changes nothing; at most `rounds` fetches. Panics on an error.
fn catch_up(leader: &Partition, follower: &Partition, rounds: usize) {
    for _ in 0..rounds {
        let request = follower.fetch_request(64).unwrap();
        let response = leader.handle_fetch(&request, 0).unwrap();
        match follower.apply_fetch(&response) {
            Ok(FollowerProgress::Appended {
                records_appended: 0,
                high_watermark,
                ..
            }) if high_watermark == leader.high_watermark() => return,
            Ok(_) => {}
            Err(e) => panic!("fetch at {}: {e}", request.fetch_offset),
        }
    }
    panic!("no catch-up in {rounds} fetches");
}

/// Epoch 1 on replicas a, b, c (ids 0, 1, 2): a leads, b copies 0..4 and leaves the ISR, c
/// copies 0..8 and learns the high watermark 8.
fn b_behind_c_ahead(dir: &std::path::Path) -> [Partition; 3] {
    let [a, b, c] = [0, 1, 2].map(|id| open(dir, id));
    lead(&a, 1, &[0, 1, 2]);
    b.become_follower(1, Election::Clean).unwrap();
    c.become_follower(1, Election::Clean).unwrap();
    a.append_records(&batch("a", 4), 0).unwrap();
    catch_up(&a, &b, 10);
    // b stops fetching and leaves the ISR.
    a.remove_from_isr(ReplicaId(1), 0).unwrap();
    a.append_records(&batch("a2", 4), 0).unwrap();
    catch_up(&a, &c, 10);
    [a, b, c]
}

/// Issue 17, finding 6: after `delete_records` to an offset inside a batch, an empty follower
/// fetching at the leader's log start gets the whole batch (base below its fetch offset).
/// Kafka's follower empties its log and starts at the batch's base, then appends; partlog's
/// failed with `UnexpectedAppendOffset` on every fetch.
#[test]
fn an_empty_follower_catches_up_when_the_leaders_log_start_is_inside_a_batch() {
    let dir = common::tmp_in_memory("partlog-follower");
    let leader = open(dir.path(), 0);
    let follower = open(dir.path(), 1);
    lead(&leader, 1, &[0]);
    leader.append_records(&batch("a", 10), 0).unwrap();
    leader.append_records(&batch("b", 3), 0).unwrap();
    assert_eq!(leader.delete_records(5).unwrap(), 5);
    follower.become_follower(1, Election::Clean).unwrap();
    catch_up(&leader, &follower, 10);
    assert_eq!(follower.log_end_offset(), 13);
    assert_eq!(follower.log_start_offset(), 5);
    assert_eq!(follower.high_watermark(), 13);
    assert_eq!(
        common::partition_bytes(&follower, 5),
        common::partition_bytes(&leader, 5)
    );
    // What a consumer reads from the follower starts at its log start, as on the leader.
    let first = follower.read_committed(5, 1 << 20).unwrap();
    assert_eq!(first.batches[0].base_offset(), 0);
}

/// Issue 17, finding 4: the "never below my high watermark unless my leader was elected
/// uncleanly" rule looked only at the current election. A follower whose high watermark
/// predates an unclean election (epoch 2) and that hears of it only under the clean election
/// after it (epoch 3) refused every fetch with `TruncationBelowHighWatermark`. The unclean
/// history is an epoch the follower is told.
#[test]
fn a_high_watermark_from_before_an_unclean_election_may_be_cut_under_a_later_clean_leader() {
    let dir = common::tmp_in_memory("partlog-follower");
    let [_a, b, c] = b_behind_c_ahead(dir.path());
    assert_eq!(c.high_watermark(), 8, "c's high watermark");
    // Epoch 2: b leads uncleanly without 4..8 and writes other records there; epoch 3: b is
    // elected again, cleanly (its ISR). c, away through epoch 2, follows epoch 3.
    lead(&b, 2, &[1]);
    b.append_records(&batch("b", 3), 0).unwrap();
    lead(&b, 3, &[1]);
    c.become_follower(3, Election::CleanAfterUnclean { unclean_epoch: 2 })
        .unwrap();
    catch_up(&b, &c, 10);
    assert_eq!(
        common::partition_bytes(&c, 0),
        common::partition_bytes(&b, 0)
    );
    assert_eq!(c.high_watermark(), b.high_watermark());
}

/// A follower whose committed records belong to epochs after the latest unclean election still
/// refuses to cut them: the unclean history excuses only records older than it.
#[test]
fn a_clean_leader_after_an_unclean_one_cannot_cut_records_committed_since() {
    let dir = common::tmp_in_memory("partlog-follower");
    let a = open(dir.path(), 0);
    let c = open(dir.path(), 2);
    // Epoch 2 (unclean) leader a; c copies everything with high watermark 4.
    lead(&a, 2, &[0, 2]);
    c.become_follower(2, Election::Unclean).unwrap();
    a.append_records(&batch("a", 4), 0).unwrap();
    catch_up(&a, &c, 10);
    assert_eq!(c.high_watermark(), 4);
    // A (buggy) leader at epoch 3 without those records: c must not cut epoch-2 records below
    // its high watermark, whatever the history says about epoch 2.
    let b = open(dir.path(), 1);
    lead(&b, 3, &[1]);
    c.become_follower(3, Election::CleanAfterUnclean { unclean_epoch: 2 })
        .unwrap();
    let response = b.handle_fetch(&c.fetch_request(64).unwrap(), 0).unwrap();
    let err = c.apply_fetch(&response).unwrap_err();
    assert!(
        err.to_string().contains("high watermark"),
        "unexpected error: {err}"
    );
    assert_eq!(c.log_end_offset(), 4);
}

/// Issue 17, finding 4 (second half): after an unclean election a follower may have to cut
/// below its own log start (it deleted records the new leader never had). It empties its log
/// and starts at the cut (Kafka's `truncateFullyAndStartAt`) instead of failing every fetch.
#[test]
fn after_an_unclean_election_a_cut_below_the_follower_log_start_restarts_its_log_there() {
    let dir = common::tmp_in_memory("partlog-follower");
    let [_a, b, c] = b_behind_c_ahead(dir.path());
    // c deletes its records below 6.
    assert_eq!(c.delete_records(6).unwrap(), 6);
    // b leads uncleanly without 4..8; c must cut to 4, below its log start 6.
    lead(&b, 2, &[1]);
    b.append_records(&batch("b", 3), 0).unwrap();
    c.become_follower(2, Election::Unclean).unwrap();
    catch_up(&b, &c, 10);
    assert_eq!(c.log_start_offset(), 4);
    assert_eq!(c.log_end_offset(), b.log_end_offset());
    assert_eq!(
        common::partition_bytes(&c, 4),
        common::partition_bytes(&b, 4)
    );
}

/// Issue 17 ("Also"): an embedder can cut the power of one `Partition`, as `ReplicaSet` does
/// for its replicas: what was not durable is gone, what was flushed stays.
#[test]
fn a_power_cut_of_one_partition_keeps_what_was_flushed_and_nothing_after() {
    let dir = common::tmp_in_memory("partlog-follower");
    let a = open(dir.path(), 0);
    lead(&a, 1, &[0]);
    a.append_records(&batch("kept", 4), 0).unwrap();
    a.flush().unwrap();
    a.append_records(&batch("lost", 3), 0).unwrap();
    assert_eq!(a.log_end_offset(), 7);
    let a = a.power_cut().unwrap();
    assert_eq!(a.log_end_offset(), 4);
    assert!(a.leader_epoch().is_none(), "no role after the cut");
    let read = a.log().read(0, 1 << 20).unwrap();
    assert_eq!(read.batches.len(), 1);
    assert_eq!(read.batches[0].base_offset(), 0);
}

/// Issue 18: a compacted leader's log skips offsets, and Kafka's follower copies it as it is
/// (a fetched batch may start above the follower's log end, and batches of one fetch may leave
/// gaps between them). partlog's follower refused such a fetch with `UnexpectedAppendOffset`
/// (and `NonContiguousBatches` within one), so it could never catch up. The leader here opens a
/// directory a compaction left: offsets 0-2, 6-8, then (after its own appends) the rest.
#[test]
fn a_follower_copies_the_offset_gaps_of_a_compacted_leader() {
    use partlog::batch::BatchBuilder;
    let dir = common::tmp_in_memory("partlog-follower");
    let leader_dir = dir.path().join("replica-0");
    std::fs::create_dir_all(&leader_dir).unwrap();
    let mut segment = Vec::new();
    for (base, n) in [(0i64, 3), (6, 3)] {
        let mut b = BatchBuilder::new()
            .base_offset(base)
            .partition_leader_epoch(1);
        for i in 0..n {
            b.push(&SimpleRecord::new(
                0,
                None::<&str>,
                Some(format!("c-{}", base + i)),
            ))
            .unwrap();
        }
        segment.extend_from_slice(b.build().unwrap().as_bytes());
    }
    std::fs::write(leader_dir.join(format!("{:020}.log", 0)), segment).unwrap();
    let leader = open(dir.path(), 0);
    assert_eq!(leader.log_end_offset(), 9);
    let follower = open(dir.path(), 1);
    lead(&leader, 2, &[0]);
    leader.append_records(&batch("a", 2), 0).unwrap();
    follower.become_follower(2, Election::Clean).unwrap();
    // One batch per fetch: the second fetch starts at 3, inside the gap, and gets batch 6-8.
    for _ in 0..10 {
        let request = follower.fetch_request(1).unwrap();
        let response = leader.handle_fetch(&request, 0).unwrap();
        follower
            .apply_fetch(&response)
            .unwrap_or_else(|e| panic!("fetch at {}: {e}", request.fetch_offset));
        if follower.log_end_offset() == leader.log_end_offset() {
            break;
        }
    }
    assert_eq!(follower.log_end_offset(), 11);
    assert_eq!(
        common::partition_bytes(&follower, 0),
        common::partition_bytes(&leader, 0)
    );
    assert!(follower.log().read_record(4).unwrap().is_none());
    let read = follower.log().read(3, 1 << 20).unwrap();
    assert_eq!(read.batches[0].base_offset(), 6);
}
