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

/// Kafka's producer snapshot keeps each producer's last batch only, so a restarted Kafka log
/// answers the retry of an earlier one of its last five OUT_OF_ORDER_SEQUENCE, and the
/// producer's caller gets an error for a batch that is in the log (the replica simulation's
/// producers met it hundreds of times per thousand seeds). partlog looks the dropped batches up
/// in the log at the first such refusal: after a clean close (state from the snapshot at the
/// log end), after a crash (an older snapshot and a replay), and with the batches spread over
/// several segments, a retry of any of the last five is answered as a duplicate with its
/// original offsets, through the one-batch path and through an append of several batches;
/// one older than the last five is still refused, and the next sequence is appended.
#[test]
fn after_a_reopen_a_retry_of_any_of_the_last_five_batches_is_a_duplicate() {
    for (crash, several) in [(false, false), (true, false), (false, true)] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            segment_bytes: 1024,
            ..Config::default()
        };
        let clock = ManualClock::new(T0);
        let open =
            || Log::open_with_clock(dir.path(), config.clone(), Arc::new(clock.clone())).unwrap();
        let log = open();
        let mut first = Vec::new();
        for seq in 0..8 {
            first.push(
                log.append_batch(&batch(7, seq, T0, false))
                    .unwrap()
                    .first_offset,
            );
            // Other traffic between the producer's batches.
            for _ in 0..6 {
                log.append_batch(&plain(T0)).unwrap();
            }
        }
        assert!(log.segment_count() > 3, "the batches span several segments");
        if crash {
            log.flush().unwrap();
            log.abandon();
        } else {
            log.close().unwrap();
        }
        let log = open();
        if several {
            // The first retry after the reopen: two batches in one call.
            let r = log
                .append_batches(
                    &vec![batch(7, 3, T0, false), batch(7, 4, T0, false)],
                    AppendOrigin::Client,
                )
                .unwrap();
            assert!(r.duplicate, "several in one call: appended again");
            assert_eq!(r.first_offset, first[3]);
        }
        for seq in 3..8 {
            let r = log.append_batch(&batch(7, seq, T0, false)).unwrap();
            assert!(r.duplicate, "crash {crash}: seq {seq} appended again");
            assert_eq!(
                r.first_offset, first[seq as usize],
                "crash {crash}: seq {seq}"
            );
        }
        assert!(
            matches!(
                log.append_batch(&batch(7, 2, T0, false)),
                Err(Error::Producer(ProducerError::OutOfOrderSequence { .. }))
            ),
            "crash {crash}: a batch older than the last five"
        );
        let end = log.log_end_offset();
        let r = log.append_batch(&batch(7, 8, T0, false)).unwrap();
        assert_eq!((r.duplicate, r.first_offset), (false, end));
        let retained: Vec<i32> = log
            .producer_state(7)
            .unwrap()
            .unwrap()
            .batches
            .iter()
            .map(|b| b.last_sequence)
            .collect();
        assert_eq!(retained, [4, 5, 6, 7, 8], "crash {crash}");
        log.close().unwrap();
    }
}
