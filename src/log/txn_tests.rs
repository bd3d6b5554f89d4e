//! Transactions at points inside an append (pause points): what a crash there leaves.

use std::sync::Arc;

use super::pause::Point;
use super::{AppendOrigin, Log};
use crate::batch::{BatchBuilder, EndTxnMarker, SimpleRecord, TxnResult};
use crate::config::Config;

fn small() -> Config {
    Config {
        segment_bytes: 1024,
        segment_index_bytes: 1024,
        index_interval_bytes: 256,
        max_batch_bytes: 1024,
        ..Config::default()
    }
}

/// Copies every file of `from` into `to`: the page cache of a killed process at that moment.
fn image(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

/// A follower append whose ABORT marker lands in one segment and that rolls to the next in its
/// middle: the roll's snapshot stands for the marker, so a crash right after the roll (before
/// the append's end indexes its aborts) must find the marker's `.txnindex` entry already
/// written, or recovery (which replays only after the snapshot) never writes it.
#[test]
fn a_crash_after_a_roll_inside_an_append_keeps_the_abort_indexed_before_the_roll() {
    let dir = tempfile::tempdir().unwrap();
    let leader = Log::open(dir.path().join("leader"), Config::default()).unwrap();
    let mut t = BatchBuilder::new().producer(9, 0, 0).transactional(true);
    t.push(&SimpleRecord::new(1, None::<&str>, Some("aborted")))
        .unwrap();
    leader.append_batch(&t.build().unwrap()).unwrap();
    let marker = leader
        .append_marker(9, 0, EndTxnMarker::new(TxnResult::Abort, 0), 1)
        .unwrap()
        .first_offset;
    for i in 0..20 {
        leader
            .append(&[SimpleRecord::new(
                1,
                None::<&str>,
                Some(format!("filler {i:0>80}")),
            )])
            .unwrap();
    }
    let bytes = leader.read(0, 1 << 20).unwrap().bytes;
    assert_eq!(
        leader.read(0, 1 << 20).unwrap().next_offset,
        leader.log_end_offset()
    );

    let follower = Arc::new(Log::open(dir.path().join("follower"), small()).unwrap());
    let gate = follower.pauses().arm(Point::AppendRolledMidway);
    let appending = {
        let follower = Arc::clone(&follower);
        std::thread::spawn(move || {
            follower
                .append_batches(&bytes, AppendOrigin::Follower)
                .unwrap();
        })
    };
    gate.wait_reached();
    let crashed = dir.path().join("image");
    image(&dir.path().join("follower"), &crashed);
    gate.resume();
    appending.join().unwrap();
    assert!(follower.segment_count() > 1);

    let recovered = Log::open(&crashed, small()).unwrap();
    let entries: Vec<_> = recovered
        .aborted_txns()
        .into_iter()
        .flat_map(|(_, e)| e)
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (
            entries[0].producer_id,
            entries[0].first_offset,
            entries[0].last_offset
        ),
        (9, 0, marker)
    );
}
