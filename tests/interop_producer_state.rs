//! partlog -> Kafka, producer state (issue 20): partlog writes a log with idempotent producers
//! (several, a sequence wrap-around, an epoch bump, an open transaction, plain batches between)
//! into `PARTLOG_INTEROP_OUT`, closes it cleanly (snapshots at every roll and at the log end),
//! and lists what each `.snapshot` file holds, as partlog reads it, in `expected.txt`:
//! `interop/kafka/checks/40-producer-state.sh` reads the same files with Kafka's
//! `ProducerStateManager.readSnapshot` and compares.
//!
//! Transactions: partlog also writes a log of interleaved transactional producers with random
//! commits and aborts across segments (`txnlog`), and lists each `.txnindex` entry as partlog
//! reads it in `expected-txn.txt`; the check reads the files with Kafka's `TransactionIndex`
//! (`sanityCheck`, `allAbortedTxns`) and compares.

use std::fmt::Write as _;
use std::path::PathBuf;

use partlog::batch::{BatchBuilder, SimpleRecord};
use partlog::log::producer_state::ProducerStateManager;
use partlog::{Config, Log};

fn batch(
    pid: i64,
    epoch: i16,
    seq: i32,
    n: i32,
    ts: i64,
    txn: bool,
) -> partlog::batch::RecordBatch {
    let mut b = BatchBuilder::new()
        .producer(pid, epoch, seq)
        .transactional(txn);
    for i in 0..n {
        let v = format!("p{pid}-e{epoch}-s{}", seq.wrapping_add(i));
        b.push(&SimpleRecord::new(ts + i64::from(i), Some("k"), Some(v)))
            .unwrap();
    }
    b.build().unwrap()
}

/// Writes the log and `expected.txt` under `out`.
fn write(out: &std::path::Path) {
    let dir = out.join("log");
    let config = Config {
        segment_bytes: 4096,
        producer_id_expiration_ms: i64::MAX,
        ..Config::default()
    };
    let log = Log::open(&dir, config).unwrap();
    let ts = 1_700_000_000_000;
    let mut seqs = [0i32; 4];
    seqs[2] = i32::MAX - 40;
    for round in 0..60 {
        for (p, seq) in seqs.iter_mut().enumerate() {
            let pid = 1_000 + p as i64;
            let n = 1 + (round + p as i32) % 3;
            let epoch = if p == 1 && round >= 30 { 1 } else { 0 };
            if p == 1 && round == 30 {
                *seq = 0;
            }
            let txn = p == 3 && round == 59;
            let info = log
                .append_batch(&batch(
                    pid,
                    epoch as i16,
                    *seq,
                    n,
                    ts + i64::from(round),
                    txn,
                ))
                .unwrap();
            assert!(!info.duplicate);
            *seq = seq.wrapping_add(n);
            if *seq < 0 {
                *seq -= i32::MIN; // past i32::MAX, as Kafka's incrementSequence wraps
            }
        }
        log.append(&[SimpleRecord::new(ts, None::<&[u8]>, Some(&b"plain"[..]))])
            .unwrap();
    }
    assert!(log.segment_count() > 3);
    log.close().unwrap();
    let mut expected = String::new();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    names.sort();
    let mut lines = Vec::new();
    for name in &names {
        let path = dir.join(name);
        let offset: i64 = name.trim_end_matches(".snapshot").parse().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let state = ProducerStateManager::from_snapshot_bytes(&bytes, offset, &path).unwrap();
        for e in state.entries() {
            let (seq, off, delta, ts) =
                e.batches.back().map_or((-1, -1, 0, e.last_timestamp), |b| {
                    (b.last_sequence, b.last_offset, b.offset_delta, b.timestamp)
                });
            lines.push(format!(
                "{name} {} {} {seq} {off} {delta} {ts} {} {}",
                e.producer_id,
                e.producer_epoch,
                e.coordinator_epoch,
                e.current_txn_first_offset.unwrap_or(-1)
            ));
        }
    }
    lines.sort();
    for l in lines {
        writeln!(expected, "{l}").unwrap();
    }
    std::fs::write(out.join("expected.txt"), expected).unwrap();
}

/// Writes the transactional log and `expected-txn.txt` under `out`: one line per entry,
/// `file producerId firstOffset lastOffset lastStableOffset`, in file order.
fn write_txn(out: &std::path::Path) -> usize {
    use partlog::batch::{EndTxnMarker, TxnResult};
    let dir = out.join("txnlog");
    let config = Config {
        segment_bytes: 4096,
        producer_id_expiration_ms: i64::MAX,
        ..Config::default()
    };
    let log = Log::open(&dir, config).unwrap();
    let ts = 1_700_000_000_000;
    let mut seqs = [0i32; 4];
    let mut open = [false; 4];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for round in 0..400 {
        let p = next(4) as usize;
        let pid = 2_000 + p as i64;
        match next(5) {
            0..=2 => {
                let n = 1 + next(3) as i32;
                log.append_batch(&batch(pid, 0, seqs[p], n, ts + round, true))
                    .unwrap();
                seqs[p] += n;
                open[p] = true;
            }
            k => {
                let result = if k == 3 {
                    TxnResult::Abort
                } else {
                    TxnResult::Commit
                };
                log.append_marker(pid, 0, EndTxnMarker::new(result, 3), ts + round)
                    .unwrap();
                open[p] = false;
            }
        }
    }
    assert!(log.segment_count() > 3);
    log.close().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".txnindex"))
        .collect();
    names.sort();
    let mut expected = String::new();
    let mut n = 0;
    for name in &names {
        let entries = partlog::log::txn_index::read_txn_index(&dir.join(name)).unwrap();
        for t in entries {
            n += 1;
            writeln!(
                expected,
                "{name} {} {} {} {}",
                t.producer_id, t.first_offset, t.last_offset, t.last_stable_offset
            )
            .unwrap();
        }
    }
    std::fs::write(out.join("expected-txn.txt"), expected).unwrap();
    n
}

#[test]
#[ignore = "writes for Kafka to read: run interop/kafka/checks/40-producer-state.sh"]
fn partlog_writes_txn_indexes_kafka_reads() {
    let out = PathBuf::from(std::env::var("PARTLOG_INTEROP_OUT").expect("PARTLOG_INTEROP_OUT"));
    std::fs::create_dir_all(&out).unwrap();
    write_txn(&out);
}

#[test]
fn the_interop_txn_log_has_aborts_in_several_segments() {
    let out = tempfile::tempdir().unwrap();
    assert!(write_txn(out.path()) > 10);
    let files = std::fs::read_dir(out.path().join("txnlog"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".txnindex")
        })
        .count();
    assert!(files > 2, "{files} .txnindex files");
}

#[test]
#[ignore = "writes for Kafka to read: run interop/kafka/checks/40-producer-state.sh"]
fn partlog_writes_producer_snapshots_kafka_reads() {
    let out = PathBuf::from(std::env::var("PARTLOG_INTEROP_OUT").expect("PARTLOG_INTEROP_OUT"));
    std::fs::create_dir_all(&out).unwrap();
    write(&out);
}

#[test]
fn the_interop_log_is_written_with_snapshots_of_every_producer() {
    let out = tempfile::tempdir().unwrap();
    write(out.path());
    let expected = std::fs::read_to_string(out.path().join("expected.txt")).unwrap();
    let last = expected.lines().rfind(|l| l.contains(" 1003 ")).unwrap();
    assert!(
        !last.ends_with(" -1"),
        "the open transaction is kept: {last}"
    );
    assert!(
        expected.lines().any(|l| l.contains(" 1001 1 ")),
        "the epoch bump"
    );
}
