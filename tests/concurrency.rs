//! One writer and several readers at once: every read returns whole, valid batches with the
//! right records, and nothing past what was appended.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use partlog::Log;

const TS: i64 = 1_600_000_000_000;

#[test]
#[cfg_attr(miri, ignore)]
fn four_readers_and_a_writer_see_only_whole_correct_batches() {
    let dir = tempfile::tempdir().unwrap();
    let config = partlog::Config {
        segment_bytes: 64 * 1024,
        max_open_segments: 4,
        ..small_config()
    };
    let log = Arc::new(Log::open(dir.path(), config).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let secs = std::env::var("PARTLOG_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);

    let readers: Vec<_> = (0..4u64)
        .map(|seed| {
            let log = Arc::clone(&log);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let mut checked = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let leo = log.log_end_offset();
                    if leo == 0 {
                        continue;
                    }
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Half the reads chase the tail, half land anywhere.
                    let from = if rng % 2 == 0 {
                        leo.saturating_sub(3)
                    } else {
                        (rng % leo as u64) as i64
                    };
                    let r = log.read(from, 2000).unwrap();
                    assert!(r.log_end_offset >= leo);
                    let mut expect = None;
                    for b in &r.batches {
                        assert!(
                            b.last_offset() < r.log_end_offset,
                            "read past the log end offset"
                        );
                        for rec in b.records().unwrap() {
                            let rec = rec.unwrap();
                            if let Some(e) = expect {
                                assert_eq!(rec.offset, e, "offsets run without gaps");
                            }
                            expect = Some(rec.offset + 1);
                            assert_eq!(rec.value.as_deref(), Some(&value_of(rec.offset)[..]));
                            assert_eq!(rec.timestamp, TS + rec.offset);
                            checked += 1;
                        }
                    }
                    assert!(r.batches.first().is_none_or(|b| b.base_offset() <= from));
                }
                checked
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut batches = 0u64;
    while Instant::now() < deadline {
        fill(&log, 1, 1 + (batches % 7) as usize, TS);
        batches += 1;
        if batches.is_multiple_of(500) {
            log.flush().unwrap();
        }
    }
    stop.store(true, Ordering::Relaxed);
    let checked: u64 = readers.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(checked > 1000, "readers checked only {checked} records");
    assert!(log.segment_count() > 2);
    assert_filled(&read_all(&log), 0, log.log_end_offset(), TS);
    eprintln!("{batches} batches appended, {checked} records checked by readers");
}
