//! The one append seam (issue 10, item 1): client, leader and follower appends of one or many
//! batches; a follower append that breaks a rule is refused whole, with nothing written.

mod common;

use bytes::{Bytes, BytesMut};
use common::{record, small_config};
use partlog::batch::{self, BatchBuilder, RecordBatch};
use partlog::log::AppendOrigin;
use partlog::{Config, Error, Log};

/// A batch of `n` records, base offset `base`, epoch `epoch`.
fn batch_at(base: i64, n: i64, epoch: i32) -> RecordBatch {
    let mut b = BatchBuilder::new()
        .base_offset(base)
        .partition_leader_epoch(epoch);
    for i in 0..n {
        b.push(&record(base + i, 1_000 + base + i)).unwrap();
    }
    b.build().unwrap()
}

fn concat(batches: &[RecordBatch]) -> Bytes {
    let mut out = BytesMut::new();
    for b in batches {
        out.extend_from_slice(b.as_bytes());
    }
    out.freeze()
}

fn all_bytes(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 1 << 20).unwrap();
        out.extend_from_slice(&r.bytes);
        next = r.next_offset;
    }
    out
}

fn open(dir: &std::path::Path, config: Config) -> Log {
    Log::open(dir, config).unwrap()
}

#[test]
fn client_append_of_many_batches_assigns_contiguous_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    // Producer batches all claim base offset 0 and epoch -1.
    let sent: Vec<RecordBatch> = (0..4).map(|_| batch_at(0, 3, -1)).collect();
    let info = log
        .append_batches(&concat(&sent), AppendOrigin::Client)
        .unwrap();
    assert_eq!((info.first_offset, info.last_offset), (0, 11));
    assert_eq!(info.size, sent.iter().map(RecordBatch::size).sum::<usize>());
    assert_eq!(log.log_end_offset(), 12);
    let read = log.read(0, 1 << 20).unwrap();
    let bases: Vec<i64> = read.batches.iter().map(|b| b.base_offset()).collect();
    assert_eq!(bases, [0, 3, 6, 9]);
    assert!(read
        .batches
        .iter()
        .all(|b| b.partition_leader_epoch() == -1));
}

#[test]
fn leader_append_stamps_its_epoch_outside_the_crc() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    let sent = batch_at(0, 3, -1);
    log.append_batch(&sent).unwrap();
    let info = log
        .append_batches(&sent, AppendOrigin::Leader { leader_epoch: 7 })
        .unwrap();
    assert_eq!(info.first_offset, 3);
    let stored = log.read(3, 1).unwrap().batches[0].clone();
    assert_eq!(stored.partition_leader_epoch(), 7);
    assert_eq!(stored.base_offset(), 3);
    stored.verify_crc().unwrap();
    // Everything but the two patched fields is the producer's bytes.
    let mut expect = BytesMut::from(&sent.as_bytes()[..]);
    batch::set_base_offset(&mut expect, 3).unwrap();
    batch::set_partition_leader_epoch(&mut expect, 7).unwrap();
    assert_eq!(stored.as_bytes(), &expect.freeze());
    // The records-built path stamps too.
    let log_epoch = log.read(0, 1).unwrap().batches[0].partition_leader_epoch();
    assert_eq!(log_epoch, -1, "client appends keep the producer's epoch");
}

#[test]
fn leader_append_refuses_a_negative_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    let err = log
        .append_batches(
            &batch_at(0, 1, -1),
            AppendOrigin::Leader { leader_epoch: -1 },
        )
        .unwrap_err();
    assert!(matches!(
        err,
        Error::NegativeLeaderEpoch { leader_epoch: -1 }
    ));
    assert_eq!(log.log_end_offset(), 0);
}

#[test]
fn follower_append_keeps_offsets_epochs_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let leader = open(&dir.path().join("leader"), small_config());
    let follower = open(&dir.path().join("follower"), small_config());
    for epoch in [1, 1, 2, 4] {
        leader
            .append_batches(
                &batch_at(0, 5, -1),
                AppendOrigin::Leader {
                    leader_epoch: epoch,
                },
            )
            .unwrap();
    }
    // Copy in several fetches of whatever size the leader returns.
    let mut next = 0;
    while next < leader.log_end_offset() {
        let r = leader.read(next, 300).unwrap();
        let info = follower
            .append_batches(&r.bytes, AppendOrigin::Follower)
            .unwrap();
        assert_eq!(info.first_offset, next);
        next = r.next_offset;
    }
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(all_bytes(&follower), all_bytes(&leader));
    // Also as parsed batches.
    let f2 = open(&dir.path().join("f2"), small_config());
    let parsed = leader.read(0, 1 << 20).unwrap().batches;
    f2.append_batches(&parsed, AppendOrigin::Follower).unwrap();
    assert_eq!(f2.log_end_offset(), parsed.last().unwrap().next_offset());
}

/// Every follower rule, and that a refused append writes nothing: not even the valid batches
/// in front of the bad one.
#[test]
fn follower_append_that_breaks_a_rule_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), small_config());
    log.append_batches(&batch_at(0, 2, 1), AppendOrigin::Follower)
        .unwrap();
    let before = all_bytes(&log);
    let check = |batches: Vec<RecordBatch>, expect: &dyn Fn(&Error) -> bool| {
        let bytes = concat(&batches);
        for err in [
            log.append_batches(&bytes, AppendOrigin::Follower)
                .unwrap_err(),
            log.append_batches(&batches, AppendOrigin::Follower)
                .unwrap_err(),
        ] {
            assert!(expect(&err), "{err:?}");
            assert_eq!(log.log_end_offset(), 2);
            assert_eq!(all_bytes(&log), before);
        }
    };
    // Below the log end offset (above it is an offset gap, which is kept: see
    // `tests/offset_gaps.rs`).
    {
        let first = 1;
        check(vec![batch_at(first, 1, 1)], &|e| {
            matches!(
                e,
                Error::UnexpectedAppendOffset {
                    log_end_offset: 2,
                    ..
                }
            )
        });
    }
    // An overlap after a valid first batch (a gap is kept).
    {
        let second = 3;
        check(vec![batch_at(2, 2, 1), batch_at(second, 1, 1)], &|e| {
            matches!(
                e,
                Error::NonContiguousBatches {
                    expected_offset: 4,
                    ..
                }
            )
        });
    }
    // Epochs going down.
    check(vec![batch_at(2, 1, 3), batch_at(3, 1, 2)], &|e| {
        matches!(
            e,
            Error::EpochDecreased {
                previous_epoch: 3,
                leader_epoch: 2,
                base_offset: 3
            }
        )
    });
    // A bad CRC in the second batch.
    let good = batch_at(2, 1, 1);
    let mut bad = BytesMut::from(&batch_at(3, 1, 1).as_bytes()[..]);
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let mut bytes = BytesMut::from(&good.as_bytes()[..]);
    bytes.extend_from_slice(&bad);
    let err = log
        .append_batches(&bytes.freeze(), AppendOrigin::Follower)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidBatch(_)), "{err:?}");
    // A torn last batch.
    let whole = concat(&[batch_at(2, 1, 1), batch_at(3, 1, 1)]);
    let torn = whole.slice(..whole.len() - 3);
    let err = log
        .append_batches(&torn, AppendOrigin::Follower)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidBatch(_)), "{err:?}");
    // Nothing at all.
    let err = log
        .append_batches(&Bytes::new(), AppendOrigin::Follower)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidBatch(_)), "{err:?}");
    assert_eq!(all_bytes(&log), before);
    // And the log still takes a good append.
    log.append_batches(&batch_at(2, 1, 1), AppendOrigin::Follower)
        .unwrap();
    assert_eq!(log.log_end_offset(), 3);
}

#[test]
fn one_call_rolls_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        segment_bytes: 1024,
        ..small_config()
    };
    let log = open(dir.path(), config);
    let sent: Vec<RecordBatch> = (0..20).map(|_| batch_at(0, 3, -1)).collect();
    assert!(sent[0].size() > 100 && sent[0].size() < 1024);
    log.append_batches(&sent, AppendOrigin::Client).unwrap();
    let total: usize = sent.iter().map(RecordBatch::size).sum();
    assert!(
        log.segment_count() >= total / 1024,
        "{}",
        log.segment_count()
    );
    assert!(log.segment_count() > 1);
    let bases = log.segment_base_offsets();
    assert!(bases.iter().all(|b| b % 3 == 0), "{bases:?}");
    // Reopened after a crash, every batch is there.
    log.abandon();
    let log = open(dir.path(), small_config());
    assert_eq!(log.log_end_offset(), 60);
}
