//! `index_load`: arbitrary `.index` / `.timeindex` files next to a valid log.
//!
//! A valid log of a few segments (small config; plain, LogAppendTime and compressed batches,
//! timestamps out of order) is built once and kept as file images, cleanly closed and crashed
//! (flushed, then abandoned). Per input, the first byte picks:
//! * bits 0-1: the segment (modulo the segment count);
//! * bits 2-3: 0 = the input is the `.index`, 1 = the `.timeindex`, 2 = both (first half
//!   `.index`, second half `.timeindex`), 3 = the `.index` is deleted and the input is the
//!   `.timeindex`;
//! * bit 4: crashed image (no clean-shutdown marker) instead of the clean one;
//! * bit 5: the input is XORed onto the real file (zero-extended) instead of replacing it, so
//!   that small mutations give plausible indexes.
//!
//! Index files are not trusted, so whatever they hold, the log must open, hold exactly the
//! original batches (every read start, byte for byte, and whole scans), answer every time lookup
//! as the brute force over the records does, close cleanly and reopen with the same content.

use std::sync::OnceLock;

use bytes::Bytes;
use partlog::batch::{BatchBuilder, RecordBatch, SimpleRecord, TimestampType};
use partlog::index::{IndexReader, OffsetEntry, TimeEntry};
use partlog::log::AppendOrigin;
use partlog::segment::SegmentPaths;
use partlog::{Config, Log};

use super::model::{check_log, MBatch};
use super::{restore_dir, snapshot_dir, write_batch, RawHeader};

/// The log's config: four to five segments of a few batches, dense indexes.
pub fn config() -> Config {
    Config {
        segment_bytes: 1024,
        segment_index_bytes: 1024,
        index_interval_bytes: 100,
        max_batch_bytes: 1024,
        ..Config::default()
    }
}

/// The valid log, as file images.
pub struct Template {
    pub clean: Vec<(String, Vec<u8>)>,
    pub crashed: Vec<(String, Vec<u8>)>,
    pub batches: Vec<MBatch>,
    pub bases: Vec<i64>,
    pub leo: i64,
}

/// Appends the template's batches to `log`.
fn fill(log: &Log) {
    let ts0 = 1_700_000_000_000i64;
    for i in 0..18i64 {
        let n = 1 + (i % 3);
        let records: Vec<SimpleRecord> = (0..n)
            .map(|j| {
                // Out of order within and across batches, with repeats.
                let ts = ts0 + ((i * 7 + j * 13) % 23) * 1000 + i * 100;
                let key = (j % 2 == 0).then(|| format!("key-{i}-{j}"));
                SimpleRecord::new(
                    ts,
                    key,
                    Some(vec![b'a' + (i % 26) as u8; 40 + (i as usize * 5) % 60]),
                )
            })
            .collect();
        match i {
            5 | 12 => {
                let mut b = BatchBuilder::new()
                    .base_offset(999)
                    .timestamp_type(TimestampType::LogAppendTime)
                    .producer(77 + i, 1, 5);
                for r in &records {
                    b.push(r).expect("push");
                }
                log.append_batch(&b.build().expect("build"))
                    .expect("append_batch");
            }
            9 => {
                // Codec 1 (gzip), records that are not gzip: a follower's append stores it as
                // the leader wrote it (a client's would inflate and refuse it).
                let bytes = write_batch(
                    &RawHeader {
                        base_offset: log.log_end_offset(),
                        partition_leader_epoch: -1,
                        attributes: 1,
                        last_offset_delta: 2,
                        base_timestamp: ts0 + 500,
                        max_timestamp: ts0 + 21_000,
                        producer_id: -1,
                        producer_epoch: -1,
                        base_sequence: -1,
                        record_count: 3,
                    },
                    b"\x1f\x8b not really gzip, never decoded",
                );
                let batch = RecordBatch::parse_crc_only(Bytes::from(bytes)).expect("valid");
                log.append_batches(&batch, AppendOrigin::Follower)
                    .expect("append_batch");
            }
            _ => {
                log.append(&records).expect("append");
            }
        }
    }
}

/// The template, built once per process.
pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = super::tempdir();
        let log = Log::open(dir.path(), config()).expect("open");
        fill(&log);
        log.flush().expect("flush");
        let leo = log.log_end_offset();
        let bases = log.segment_base_offsets();
        let mut batches = Vec::new();
        let mut next = 0;
        while next < leo {
            let r = log.read(next, 1).expect("read");
            batches.push(MBatch::from_bytes(r.batches[0].as_bytes().clone()));
            next = r.next_offset;
        }
        log.abandon();
        let crashed = snapshot_dir(dir.path());
        let log = Log::open(dir.path(), config()).expect("reopen");
        log.close().expect("close");
        let clean = snapshot_dir(dir.path());
        assert!(bases.len() >= 4, "the template has several segments");
        Template {
            clean,
            crashed,
            batches,
            bases,
            leo,
        }
    })
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let t = template();
    let seg = t.bases[usize::from(selector & 3) % t.bases.len()];
    let which = (selector >> 2) & 3;
    let crashed = selector & 0x10 != 0;
    let xor = selector & 0x20 != 0;

    let dir = super::tempdir();
    restore_dir(dir.path(), if crashed { &t.crashed } else { &t.clean });
    let paths = SegmentPaths::new(dir.path(), seg);
    let put = |path: &std::path::Path, bytes: &[u8]| {
        let content = if xor {
            let mut real = super::fs::read(path).unwrap_or_default();
            if real.len() < bytes.len() {
                real.resize(bytes.len(), 0);
            }
            for (r, b) in real.iter_mut().zip(bytes) {
                *r ^= b;
            }
            real
        } else {
            bytes.to_vec()
        };
        super::fs::write(path, content).expect("write index");
    };
    match which {
        0 => put(&paths.index, payload),
        1 => put(&paths.time_index, payload),
        2 => {
            let (a, b) = payload.split_at(payload.len() / 2);
            put(&paths.index, a);
            put(&paths.time_index, b);
        }
        _ => {
            super::fs::remove_file(&paths.index).expect("remove index");
            put(&paths.time_index, payload);
        }
    }

    let verbose = std::env::var_os("PARTLOG_FUZZ_VERBOSE").is_some();
    if verbose {
        eprintln!("segment {seg}, which {which}, crashed {crashed}, xor {xor}");
        for (i, b) in t.batches.iter().enumerate() {
            eprintln!(
                "batch {i}: offsets {}..={} size {}",
                b.base,
                b.last,
                b.size()
            );
        }
        let real = SegmentPaths::new(dir.path(), seg);
        if let Ok(ix) = IndexReader::<OffsetEntry>::open_read_only(&real.index) {
            eprintln!("offset index: {:?}", ix.entries());
        }
        if let Ok(ix) = IndexReader::<TimeEntry>::open_read_only(&real.time_index) {
            eprintln!("time index: {:?}", ix.entries());
        }
    }
    let log = Log::open(dir.path(), config())
        .unwrap_or_else(|e| panic!("a log with a bad index file must open: {e}"));
    assert_eq!(log.open_report().clean, !crashed);
    assert_eq!(log.segment_base_offsets(), t.bases);
    // Whatever the index files hold, the log answers exactly as the template does: wrong
    // entries are found (at load, or when a lookup lands on a batch that does not match them)
    // and the index is rebuilt or bypassed.
    check_log(&log, &t.batches, 0, t.leo, true);
    log.close().expect("close");
    let log = Log::open(dir.path(), config()).expect("reopen");
    assert!(log.open_report().clean);
    check_log(&log, &t.batches, 0, t.leo, false);
    log.close().expect("close");

    // Whatever the index files said, no record was lost or changed on disk: without them the
    // log is rebuilt from its segments alone.
    for &base in &t.bases {
        let p = SegmentPaths::new(dir.path(), base);
        let _ = super::fs::remove_file(&p.index);
        let _ = super::fs::remove_file(&p.time_index);
    }
    let log = Log::open(dir.path(), config()).expect("open without index files");
    check_log(&log, &t.batches, 0, t.leo, false);
    log.close().expect("close");
}
