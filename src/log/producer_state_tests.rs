//! Kafka's producer rules, one test per rule (`ProducerAppendInfo`, `ProducerStateEntry`).

use std::path::Path;

use proptest::prelude::*;

use super::*;

/// A batch header of `records` records from producer `pid` at `epoch`, first sequence `seq`.
fn batch(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
    BatchHeader {
        base_offset: 0,
        batch_length: 100,
        partition_leader_epoch: -1,
        magic: 2,
        crc: 0,
        attributes: 0,
        last_offset_delta: records - 1,
        base_timestamp: 1000,
        max_timestamp: 1000,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        record_count: records,
    }
}

/// Appends `h` as a client at the state's end; returns the first offset given, or the duplicate.
fn client(state: &mut ProducerStateManager, h: BatchHeader) -> Result<Outcome, ProducerError> {
    let base = state.map_end_offset();
    match state.analyze(std::iter::once((&h, None)), Check::Client, &mut |_| base)? {
        Analysis::Append(u) => {
            state.apply(u, base + i64::from(h.last_offset_delta) + 1);
            Ok(Outcome::Appended(base))
        }
        Analysis::Duplicate(d) => Ok(Outcome::Duplicate(d.first_offset(), d.last_offset)),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Appended(i64),
    Duplicate(i64, i64),
}

fn follower(state: &mut ProducerStateManager, mut h: BatchHeader) {
    h.base_offset = state.map_end_offset();
    state.replay(&h, None);
}

#[test]
fn in_sequence_batches_are_appended() {
    let mut s = ProducerStateManager::default();
    assert_eq!(client(&mut s, batch(7, 0, 0, 3)), Ok(Outcome::Appended(0)));
    assert_eq!(client(&mut s, batch(7, 0, 3, 2)), Ok(Outcome::Appended(3)));
    let e = s.entry(7).unwrap();
    assert_eq!((e.producer_epoch, e.last_sequence()), (0, 4));
}

#[test]
fn an_older_epoch_is_fenced() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(7, 3, 0, 1)).unwrap();
    assert_eq!(
        client(&mut s, batch(7, 2, 1, 1)),
        Err(ProducerError::InvalidProducerEpoch {
            producer_id: 7,
            producer_epoch: 2,
            current_epoch: 3
        })
    );
}

#[test]
fn a_duplicate_of_any_of_the_last_five_batches_returns_the_original_offsets() {
    let mut s = ProducerStateManager::default();
    for i in 0..6 {
        client(&mut s, batch(7, 0, i * 2, 2)).unwrap();
    }
    // Batches 1..=5 (sequences 2..=11) are retained; each retry answers with its offsets.
    for i in 1..6 {
        assert_eq!(
            client(&mut s, batch(7, 0, i * 2, 2)),
            Ok(Outcome::Duplicate(i64::from(i) * 2, i64::from(i) * 2 + 1))
        );
    }
    assert_eq!(s.map_end_offset(), 12, "no duplicate was appended");
}

#[test]
fn a_duplicate_older_than_the_last_five_batches_is_out_of_order() {
    let mut s = ProducerStateManager::default();
    for i in 0..6 {
        client(&mut s, batch(7, 0, i, 1)).unwrap();
    }
    assert_eq!(
        client(&mut s, batch(7, 0, 0, 1)),
        Err(ProducerError::OutOfOrderSequence {
            producer_id: 7,
            producer_epoch: 0,
            first_sequence: 0,
            last_sequence: 5
        })
    );
}

#[test]
fn a_partial_overlap_with_a_retained_batch_is_not_a_duplicate() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(7, 0, 0, 4)).unwrap();
    assert!(matches!(
        client(&mut s, batch(7, 0, 0, 2)),
        Err(ProducerError::OutOfOrderSequence { .. })
    ));
}

#[test]
fn a_gap_in_sequence_is_out_of_order() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(7, 0, 0, 2)).unwrap();
    assert_eq!(
        client(&mut s, batch(7, 0, 5, 1)),
        Err(ProducerError::OutOfOrderSequence {
            producer_id: 7,
            producer_epoch: 0,
            first_sequence: 5,
            last_sequence: 1
        })
    );
}

#[test]
fn an_unknown_producer_is_accepted_at_any_sequence() {
    // Kafka 4.x (KIP-360): the log layer no longer raises UNKNOWN_PRODUCER_ID.
    let mut s = ProducerStateManager::default();
    assert_eq!(client(&mut s, batch(9, 4, 42, 1)), Ok(Outcome::Appended(0)));
    assert_eq!(client(&mut s, batch(9, 4, 43, 1)), Ok(Outcome::Appended(1)));
}

#[test]
fn sequences_wrap_from_int_max_to_zero() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(7, 0, i32::MAX - 1, 2)).unwrap();
    assert_eq!(s.entry(7).unwrap().last_sequence(), i32::MAX);
    assert_eq!(client(&mut s, batch(7, 0, 0, 1)), Ok(Outcome::Appended(2)));
    // A batch that itself wraps: last sequence = base + delta past MAX.
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(7, 0, i32::MAX - 1, 4)).unwrap();
    assert_eq!(s.entry(7).unwrap().last_sequence(), 1);
    assert_eq!(
        client(&mut s, batch(7, 0, i32::MAX - 1, 4)),
        Ok(Outcome::Duplicate(0, 3))
    );
    assert_eq!(client(&mut s, batch(7, 0, 2, 1)), Ok(Outcome::Appended(4)));
}

#[test]
fn a_new_epoch_must_start_at_sequence_zero() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(7, 0, 0, 3)).unwrap();
    assert_eq!(
        client(&mut s, batch(7, 1, 3, 1)),
        Err(ProducerError::OutOfOrderSequence {
            producer_id: 7,
            producer_epoch: 1,
            first_sequence: 3,
            last_sequence: 2
        })
    );
    assert_eq!(client(&mut s, batch(7, 1, 0, 1)), Ok(Outcome::Appended(3)));
    // The new epoch dropped the old epoch's batches: their retry is fenced, not a duplicate.
    assert!(matches!(
        client(&mut s, batch(7, 0, 0, 3)),
        Err(ProducerError::InvalidProducerEpoch { .. })
    ));
}

#[test]
fn a_batch_with_a_producer_id_and_no_sequence_is_refused() {
    let mut s = ProducerStateManager::default();
    assert_eq!(
        client(&mut s, batch(7, 0, -1, 1)),
        Err(ProducerError::InvalidSequence {
            producer_id: 7,
            base_sequence: -1
        })
    );
}

#[test]
fn a_non_transactional_batch_during_an_open_transaction_is_refused() {
    let mut s = ProducerStateManager::default();
    let mut t = batch(7, 0, 0, 1);
    t.attributes |= 0x10;
    client(&mut s, t).unwrap();
    assert_eq!(s.entry(7).unwrap().current_txn_first_offset, Some(0));
    assert_eq!(
        client(&mut s, batch(7, 0, 1, 1)),
        Err(ProducerError::InvalidTxnState {
            producer_id: 7,
            txn_first_offset: 0
        })
    );
}

#[test]
fn follower_appends_update_the_state_without_checks() {
    let mut s = ProducerStateManager::default();
    follower(&mut s, batch(7, 3, 0, 1));
    follower(&mut s, batch(7, 2, 9, 1)); // older epoch, gap: taken as is
    let e = s.entry(7).unwrap();
    assert_eq!((e.producer_epoch, e.last_sequence()), (2, 9));
}

#[test]
fn batches_without_a_producer_id_leave_the_state_alone() {
    let mut s = ProducerStateManager::default();
    assert_eq!(
        client(&mut s, batch(-1, -1, -1, 3)),
        Ok(Outcome::Appended(0))
    );
    assert!(s.is_empty());
}

#[test]
fn producers_expire_after_the_expiration_time_unless_a_transaction_is_open() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(1, 0, 0, 1)).unwrap(); // timestamp 1000
    let mut t = batch(2, 0, 0, 1);
    t.attributes |= 0x10;
    client(&mut s, t).unwrap();
    assert_eq!(s.remove_expired(1999, 1000), 0);
    assert_eq!(s.remove_expired(2000, 1000), 1);
    assert!(s.entry(1).is_none() && s.entry(2).is_some());
}

#[test]
fn a_snapshot_round_trips_the_newest_batch_of_each_producer() {
    let mut s = ProducerStateManager::default();
    for i in 0..3 {
        client(&mut s, batch(5, 1, i * 2, 2)).unwrap();
    }
    client(&mut s, batch(6, 0, i32::MAX, 2)).unwrap();
    let bytes = s.to_snapshot_bytes();
    assert_eq!(bytes.len(), 10 + 46 * 2);
    let back = ProducerStateManager::from_snapshot_bytes(&bytes, 8, Path::new("x")).unwrap();
    assert_eq!(back.map_end_offset(), 8);
    let e = back.entry(5).unwrap();
    assert_eq!(
        e.batches.len(),
        1,
        "one batch per producer after a restart, as in Kafka"
    );
    assert_eq!(
        (e.batches[0].first_sequence(), e.batches[0].first_offset()),
        (4, 4)
    );
    assert_eq!(back.entry(6).unwrap().batches[0].first_sequence(), i32::MAX);
    // The retry of the newest batch is still answered as a duplicate after the reload.
    let mut back = back;
    assert_eq!(
        client(&mut back, batch(5, 1, 4, 2)),
        Ok(Outcome::Duplicate(4, 5))
    );
}

#[test]
fn a_snapshot_with_a_bad_crc_version_or_size_is_corrupt() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(5, 1, 0, 2)).unwrap();
    let good = s.to_snapshot_bytes();
    let mut flipped = good.clone();
    flipped[20] ^= 1;
    let mut version = good.clone();
    version[1] = 2;
    for bad in [
        &flipped[..],
        &version[..],
        &good[..good.len() - 1],
        &good[..4],
    ] {
        assert!(matches!(
            ProducerStateManager::from_snapshot_bytes(bad, 0, Path::new("x")),
            Err(Error::Corrupt { .. })
        ));
    }
}

/// Appends `h` at the state's end through the one-batch path (`check_one`, then `record`), as
/// `client` does through `analyze` and `apply`.
fn one(
    state: &mut ProducerStateManager,
    mut h: BatchHeader,
    check: Check,
) -> Result<Outcome, ProducerError> {
    let base = state.map_end_offset();
    h.base_offset = base;
    match state.check_one(&h, check)? {
        One::Append(slot) => {
            if let Some(new) = slot.record() {
                state.insert_new(new);
            }
            Ok(Outcome::Appended(base))
        }
        One::Duplicate(d) => Ok(Outcome::Duplicate(d.first_offset(), d.last_offset)),
    }
}

/// `client` with either check (a follower's batch through `analyze` and `apply`).
fn general(
    state: &mut ProducerStateManager,
    h: BatchHeader,
    check: Check,
) -> Result<Outcome, ProducerError> {
    let base = state.map_end_offset();
    match state.analyze(std::iter::once((&h, None)), check, &mut |_| base)? {
        Analysis::Append(u) => {
            state.apply(u, base + i64::from(h.last_offset_delta) + 1);
            Ok(Outcome::Appended(base))
        }
        Analysis::Duplicate(d) => Ok(Outcome::Duplicate(d.first_offset(), d.last_offset)),
    }
}

/// A COMMIT or ABORT marker of `pid` at `epoch`, by the general path (the one-batch path takes
/// data batches only).
fn marker(
    state: &mut ProducerStateManager,
    pid: i64,
    epoch: i16,
    abort: bool,
    coordinator_epoch: i32,
) {
    let mut h = batch(pid, epoch, -1, 1);
    h.attributes |= 0x30;
    let m = EndTxnMarker {
        result: if abort {
            TxnResult::Abort
        } else {
            TxnResult::Commit
        },
        coordinator_epoch,
    };
    let base = state.map_end_offset();
    if let Ok(Analysis::Append(u)) =
        state.analyze(std::iter::once((&h, Some(m))), Check::Client, &mut |_| base)
    {
        state.apply(u, base + 1);
    }
}

#[test]
fn the_one_batch_path_answers_each_rule_as_the_general_path() {
    let mut s = ProducerStateManager::default();
    let mut g = ProducerStateManager::default();
    let mut t = batch(7, 0, 0, 2);
    t.attributes |= 0x10;
    let cases = [
        (batch(5, 1, 0, 2), Ok(Outcome::Appended(0))),
        (batch(5, 1, 2, 1), Ok(Outcome::Appended(2))),
        // A duplicate of an older retained batch: its offsets.
        (batch(5, 1, 0, 2), Ok(Outcome::Duplicate(0, 1))),
        // A gap, then the first sequence of a retained batch with another last one.
        (
            batch(5, 1, 4, 1),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 5,
                producer_epoch: 1,
                first_sequence: 4,
                last_sequence: 2,
            }),
        ),
        (
            batch(5, 1, 0, 1),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 5,
                producer_epoch: 1,
                first_sequence: 0,
                last_sequence: 2,
            }),
        ),
        (
            batch(5, 0, 3, 1),
            Err(ProducerError::InvalidProducerEpoch {
                producer_id: 5,
                producer_epoch: 0,
                current_epoch: 1,
            }),
        ),
        (
            batch(5, 2, 1, 1),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 5,
                producer_epoch: 2,
                first_sequence: 1,
                last_sequence: 2,
            }),
        ),
        (batch(5, 2, 0, 1), Ok(Outcome::Appended(3))),
        (
            batch(6, 0, -1, 1),
            Err(ProducerError::InvalidSequence {
                producer_id: 6,
                base_sequence: -1,
            }),
        ),
        // An unknown producer at an epoch below "none" is fenced, at any sequence accepted.
        (
            batch(6, -2, 9, 1),
            Err(ProducerError::InvalidProducerEpoch {
                producer_id: 6,
                producer_epoch: -2,
                current_epoch: -1,
            }),
        ),
        (batch(6, 0, 9, 1), Ok(Outcome::Appended(4))),
        (
            batch(6, 0, i32::MAX - 1, 2),
            Err(ProducerError::OutOfOrderSequence {
                producer_id: 6,
                producer_epoch: 0,
                first_sequence: i32::MAX - 1,
                last_sequence: 9,
            }),
        ),
        (t, Ok(Outcome::Appended(5))),
        (
            batch(7, 0, 2, 1),
            Err(ProducerError::InvalidTxnState {
                producer_id: 7,
                txn_first_offset: 5,
            }),
        ),
    ];
    for (i, (h, want)) in cases.into_iter().enumerate() {
        assert_eq!(one(&mut s, h, Check::Client), want, "case {i}");
        assert_eq!(general(&mut g, h, Check::Client), want, "case {i}");
        assert_eq!(s, g, "case {i}");
    }
    assert_eq!(s.first_unstable_offset(), Some(5));
    assert_eq!(s.entry(5).unwrap().batches.len(), 1);
}

#[test]
fn a_one_batch_check_dropped_without_its_record_changes_nothing() {
    let mut s = ProducerStateManager::default();
    client(&mut s, batch(5, 0, 0, 1)).unwrap();
    let before = s.clone();
    let mut t = batch(5, 0, 1, 1);
    t.base_offset = 1;
    t.attributes |= 0x10;
    // Checked, then the write fails: the slot is dropped.
    assert!(matches!(s.check_one(&t, Check::Client), Ok(One::Append(_))));
    assert!(matches!(
        s.check_one(&batch(9, 0, 0, 1), Check::Client),
        Ok(One::Append(_))
    ));
    assert_eq!(s, before);
    assert_eq!(s.first_unstable_offset(), None);
}

/// One step of the differential test: a data batch of producer `pid` at `epoch` whose first
/// sequence follows the producer's last one (`seq` None) or is `seq`.
#[derive(Debug, Clone)]
enum Step {
    Batch {
        pid: i64,
        epoch: i16,
        seq: Option<i32>,
        records: i32,
        transactional: bool,
        follower: bool,
    },
    Marker {
        pid: i64,
        epoch: i16,
        abort: bool,
        coordinator_epoch: i32,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let seq = prop_oneof![
        3 => Just(None),
        1 => (0i32..12).prop_map(Some),
        1 => prop_oneof![Just(-1), Just(i32::MAX - 1), Just(i32::MAX)].prop_map(Some),
    ];
    prop_oneof![
        8 => (0i64..4, -2i16..3, seq, 1i32..4, proptest::bool::weighted(0.2), proptest::bool::weighted(0.1))
            .prop_map(|(pid, epoch, seq, records, transactional, follower)| Step::Batch { pid, epoch, seq, records, transactional, follower }),
        1 => (0i64..4, 0i16..3, any::<bool>(), 0i32..3)
            .prop_map(|(pid, epoch, abort, coordinator_epoch)| Step::Marker { pid, epoch, abort, coordinator_epoch }),
    ]
}

proptest! {
    /// Any run of one-batch appends (client and follower, transactional or not, markers
    /// between them) gets the same answers and leaves the same state through `check_one` and
    /// `record` as through `analyze` and `apply`.
    #[test]
    fn the_one_batch_path_matches_the_general_path(steps in proptest::collection::vec(step(), 1..80)) {
        let mut s = ProducerStateManager::default();
        let mut g = ProducerStateManager::default();
        for (i, st) in steps.into_iter().enumerate() {
            match st {
                Step::Batch { pid, epoch, seq, records, transactional, follower } => {
                    let seq = seq.unwrap_or_else(|| {
                        s.entry(pid).map_or(0, |e| increment_sequence(e.last_sequence(), 1))
                    });
                    let mut h = batch(pid, epoch, seq, records);
                    if transactional {
                        h.attributes |= 0x10;
                    }
                    let check = if follower { Check::Replication } else { Check::Client };
                    let a = one(&mut s, h, check);
                    let b = general(&mut g, h, check);
                    prop_assert_eq!(a, b, "step {}", i);
                }
                Step::Marker { pid, epoch, abort, coordinator_epoch } => {
                    marker(&mut s, pid, epoch, abort, coordinator_epoch);
                    marker(&mut g, pid, epoch, abort, coordinator_epoch);
                }
            }
            prop_assert_eq!(&s, &g, "step {}", i);
            prop_assert_eq!(s.first_unstable_offset(), g.first_unstable_offset());
        }
    }
}

/// What an append of several batches answered: the duplicate's offsets if it was one, and the
/// transactions its ABORT markers closed.
type CallOutcome = (Option<(i64, i64)>, Vec<AbortedTxn>);

/// One append of several batches (data batches and markers) through `analyze_with` and
/// `apply`, at the state's end: what it answers, and the aborted transactions it closed.
fn call(
    state: &mut ProducerStateManager,
    batches: &[(BatchHeader, Option<EndTxnMarker>)],
    scan_limit: usize,
) -> Result<CallOutcome, ProducerError> {
    let mut next = state.map_end_offset();
    let analysis = state.analyze_with(
        batches.iter().map(|(h, m)| (h, *m)),
        Check::Client,
        &mut |h| {
            let base = next;
            next += i64::from(h.last_offset_delta) + 1;
            base
        },
        scan_limit,
    )?;
    match analysis {
        Analysis::Append(u) => Ok((None, state.apply(u, next))),
        Analysis::Duplicate(d) => Ok((Some((d.first_offset(), d.last_offset)), Vec::new())),
    }
}

proptest! {
    /// Appends of up to 40 batches of a few producers each (data batches in and out of
    /// sequence, transactional or not, markers) get the same answers and leave the same state
    /// whether the producers' states are looked up through the append's changes (every time)
    /// or kept as they go (from the first change on).
    #[test]
    fn an_append_of_many_batches_is_checked_alike_both_ways(
        calls in proptest::collection::vec(proptest::collection::vec(step(), 1..40), 1..6)
    ) {
        let mut scan = ProducerStateManager::default();
        let mut kept = ProducerStateManager::default();
        // The next sequence of each producer, as the batches of the calls so far would have it.
        let mut next_seq = std::collections::HashMap::<i64, i32>::new();
        for (i, steps) in calls.into_iter().enumerate() {
            let batches: Vec<(BatchHeader, Option<EndTxnMarker>)> = steps
                .into_iter()
                .map(|st| match st {
                    Step::Batch { pid, epoch, seq, records, transactional, .. } => {
                        let n = next_seq.entry(pid).or_insert(0);
                        let seq = seq.unwrap_or(*n);
                        *n = increment_sequence(seq, records);
                        let mut h = batch(pid, epoch, seq, records);
                        if transactional {
                            h.attributes |= 0x10;
                        }
                        (h, None)
                    }
                    Step::Marker { pid, epoch, abort, coordinator_epoch } => {
                        let mut h = batch(pid, epoch, -1, 1);
                        h.attributes |= 0x30;
                        let result = if abort { TxnResult::Abort } else { TxnResult::Commit };
                        (h, Some(EndTxnMarker { result, coordinator_epoch }))
                    }
                })
                .collect();
            let a = call(&mut scan, &batches, usize::MAX);
            let b = call(&mut kept, &batches, 0);
            prop_assert_eq!(a, b, "call {}", i);
            prop_assert_eq!(&scan, &kept, "call {}", i);
        }
    }
}

#[test]
fn producer_ids_alike_in_their_low_or_high_bits_spread_over_a_table() {
    use std::hash::BuildHasher;
    // The family's promise is about keys drawn at random: any two distinct ids share a bucket
    // with probability 1 / buckets, so the expected number of colliding pairs among `n` ids is
    // n(n-1)/2 over the number of buckets, whatever ids are chosen. It says nothing about one
    // draw's fullest bucket (an arithmetic progression of ids under one multiplier can bunch),
    // so the test draws 200 key pairs from a seeded generator (deterministic) and checks the
    // average, and that a fullest bucket of 13+ is rare (1.5-3.5 % of the draws here; one in ~40
    // with the multiply-add-shift alone made the old one-draw version of this test flaky).
    // Without the final fold, consecutive ids average 2,612 pairs over these draws (one draw
    // 99,217): the bound below fails.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        // splitmix64
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        u128::from(z ^ (z >> 31))
    };
    // 4,096 ids into 4,096 buckets (the low 12 bits of the hash, as the table takes them):
    // consecutive ids, ids differing only in their top bits, ids spaced by a power of two.
    let shapes: [Vec<i64>; 3] = [
        (0..4096).collect(),
        (0..4096).map(|i| i << 51).collect(),
        (0..4096).map(|i| (i << 20) | 7).collect(),
    ];
    let draws: u32 = 200;
    let expected_pairs = 4096.0 * 4095.0 / 2.0 / 4096.0;
    for (shape, ids) in shapes.iter().enumerate() {
        let (mut pairs, mut bunched) = (0u64, 0);
        for _ in 0..draws {
            let keys = ProducerIdHashState::with_keys(next() << 64 | next(), next() << 64 | next());
            let mut buckets = vec![0u64; 4096];
            for id in ids {
                buckets[(keys.hash_one(id) & 4095) as usize] += 1;
            }
            let p = buckets
                .iter()
                .map(|&n| n * n.saturating_sub(1) / 2)
                .sum::<u64>();
            pairs += p;
            bunched += u32::from(buckets.iter().any(|&n| n > 12));
        }
        let mean = pairs as f64 / f64::from(draws);
        assert!(
            (0.85..1.15).contains(&(mean / expected_pairs)),
            "shape {shape}: {mean} colliding pairs on average, {expected_pairs} expected"
        );
        assert!(
            bunched * 10 < draws,
            "shape {shape}: {bunched} of {draws} draws bunched"
        );
    }
    // Each map draws its own keys.
    let (keys, other) = (
        ProducerIdHashState::default(),
        ProducerIdHashState::default(),
    );
    assert_ne!(keys.hash_one(1i64), other.hash_one(1i64));
}
