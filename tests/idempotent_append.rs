//! A producer's appends on one log, through both of the log's paths for them: one data batch
//! (the producer looked up once, its entry updated in place after the write) and several
//! batches in one call (checked together, applied together). Each test states what Kafka's
//! rules say, on real files:
//! - a batch whose roll fails writes nothing and leaves its producer's state as it was (the
//!   log is fail-stop, and after a reopen the retry is appended, not taken as a duplicate);
//! - an append of several batches of several producers in one call gives each producer its
//!   own offsets and sequences, its batches are answered as duplicates when retried one by one,
//!   and an out-of-order batch among them refuses the whole call.

use std::sync::Arc;

use partlog::batch::{BatchBuilder, RecordBatch};
use partlog::log::producer_state::ProducerError;
use partlog::log::AppendOrigin;
use partlog::segment::SegmentPaths;
use partlog::{Config, Error, Log, ManualClock};

const T0: i64 = 1_700_000_000_000;

/// A one-record batch of `producer` (epoch 0) at `seq`, timestamp `ts`; transactional if asked.
fn batch(producer: i64, seq: i32, ts: i64, transactional: bool) -> RecordBatch {
    let mut b = BatchBuilder::new()
        .producer(producer, 0, seq)
        .transactional(transactional);
    b.push_parts(ts, None, Some(format!("{producer}-{seq}").as_bytes()), &[])
        .unwrap();
    b.build().unwrap()
}

/// A one-record batch with no producer id.
fn plain(ts: i64) -> RecordBatch {
    let mut b = BatchBuilder::new();
    b.push_parts(ts, None, Some(b"plain"), &[]).unwrap();
    b.build().unwrap()
}

/// (last sequence, last offset) of the newest batch the log holds for `producer`.
fn newest(log: &Log, producer: i64) -> Option<(i32, i64)> {
    let e = log.producer_state(producer).unwrap()?;
    e.batches.back().map(|b| (b.last_sequence, b.last_offset))
}

#[test]
fn a_failed_roll_leaves_the_producer_state_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    let config = Config {
        segment_ms: 60_000,
        ..Config::default()
    };
    let clock = ManualClock::new(T0);
    let log = Log::open_with_clock(&path, config.clone(), Arc::new(clock.clone())).unwrap();
    for seq in 0..3 {
        log.append_batch(&batch(7, seq, T0, false)).unwrap();
    }
    // Producer 9's transaction stays open: the failed append must not touch it either.
    log.append_batch(&batch(9, 0, T0, true)).unwrap();
    let before = log.producer_state(7).unwrap().unwrap();
    let before_txn = log.producer_state(9).unwrap().unwrap();
    assert_eq!(newest(&log, 7), Some((2, 2)));
    assert_eq!(log.segment_base_offsets(), vec![0]);

    // Past `segment.ms` the next append rolls to a segment at offset 4, whose `.log` cannot be
    // created: a non-empty directory stands at its name.
    clock.advance(120_000);
    let blocked = SegmentPaths::new(&path, 4).log;
    std::fs::create_dir(&blocked).unwrap();
    std::fs::write(blocked.join("keep"), b"x").unwrap();
    let err = log
        .append_batch(&batch(7, 3, T0 + 120_000, false))
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert_eq!(log.log_end_offset(), 4);
    assert_eq!(log.producer_state(7).unwrap().unwrap(), before);
    assert_eq!(log.producer_state(9).unwrap().unwrap(), before_txn);
    // Fail-stop until reopened.
    assert!(matches!(
        log.append_batch(&batch(7, 3, T0 + 120_000, false)),
        Err(Error::PreviousIo)
    ));
    drop(log);

    std::fs::remove_dir_all(&blocked).unwrap();
    let log = Log::open_with_clock(&path, config, Arc::new(clock)).unwrap();
    assert_eq!(newest(&log, 7), Some((2, 2)));
    // The retry is a new batch (the failed one was never written) ...
    let info = log.append_batch(&batch(7, 3, T0 + 120_000, false)).unwrap();
    assert_eq!((info.first_offset, info.duplicate), (4, false));
    // ... and a retry of an older one is answered with its offsets.
    let info = log.append_batch(&batch(7, 2, T0, false)).unwrap();
    assert_eq!((info.first_offset, info.duplicate), (2, true));
    assert_eq!(newest(&log, 7), Some((3, 4)));
}

#[test]
fn an_append_of_several_producers_batches_keeps_each_producers_state() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append_batch(&batch(1, 0, T0, false)).unwrap();
    let call = vec![
        batch(1, 1, T0, false),
        batch(2, 0, T0, false),
        plain(T0),
        batch(1, 2, T0, false),
        batch(3, 0, T0, true),
        batch(2, 1, T0, false),
    ];
    let info = log.append_batches(&call, AppendOrigin::Client).unwrap();
    assert_eq!((info.first_offset, info.last_offset), (1, 6));
    assert_eq!(newest(&log, 1), Some((2, 4)));
    assert_eq!(newest(&log, 2), Some((1, 6)));
    assert_eq!(newest(&log, 3), Some((0, 5)));
    assert_eq!(log.producer_state(1).unwrap().unwrap().batches.len(), 3);
    assert_eq!(
        log.producer_state(3)
            .unwrap()
            .unwrap()
            .current_txn_first_offset,
        Some(5)
    );
    assert_eq!(log.first_unstable_offset(), Some(5));

    // Each batch of the call, retried alone, is answered with its own offsets.
    for (b, offset) in [(&call[0], 1), (&call[1], 2), (&call[3], 4), (&call[5], 6)] {
        let info = log.append_batch(b).unwrap();
        assert_eq!((info.first_offset, info.duplicate), (offset, true));
    }
    // One batch alone after the call goes on from each producer's last sequence.
    let info = log.append_batch(&batch(2, 2, T0, false)).unwrap();
    assert_eq!((info.first_offset, info.duplicate), (7, false));

    // An out-of-order batch in a call refuses all of it: nothing written, no state changed.
    let states: Vec<_> = (1..=3).map(|p| log.producer_state(p).unwrap()).collect();
    let bad = vec![batch(1, 3, T0, false), batch(2, 5, T0, false)];
    let err = log.append_batches(&bad, AppendOrigin::Client).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Producer(ProducerError::OutOfOrderSequence { producer_id: 2, .. })
        ),
        "{err:?}"
    );
    assert_eq!(log.log_end_offset(), 8);
    let after: Vec<_> = (1..=3).map(|p| log.producer_state(p).unwrap()).collect();
    assert_eq!(after, states);
    // Two batches of one producer in one call: the second is checked against the first.
    let info = log
        .append_batches(
            &vec![batch(1, 3, T0, false), batch(1, 4, T0, false)],
            AppendOrigin::Client,
        )
        .unwrap();
    assert_eq!((info.first_offset, info.last_offset), (8, 9));
    assert_eq!(newest(&log, 1), Some((4, 9)));
}
