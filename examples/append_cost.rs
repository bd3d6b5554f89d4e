//! The instruction-count driver of BENCHMARKS.md's idempotent-append overhead: appends `N`
//! pre-built one-record batches (100 B values, as `partlog_append_batch_many` /
//! `partlog_append_batch_idempotent` in `benches/log.rs`) with [`Log::append_batch`], either
//! with no producer id (`plain`) or from one idempotent producer (`idempotent`, sequences
//! 0, 1, 2, ...), into a fresh log under `DIR` (default `/dev/shm`, else the temp dir).
//!
//! Run it under callgrind twice, with `N` and `2N`, and divide the difference of
//! `append_batches`' inclusive cost by `N`: setup and teardown cancel out.
//!
//! ```text
//! cargo build --profile bench --example append_cost
//! valgrind --tool=callgrind --callgrind-out-file=cg.plain.10k \
//!     target/release/examples/append_cost plain 10000
//! callgrind_annotate --inclusive=yes cg.plain.10k | grep 'append_batches'
//! ```
//! `multi` appends batches of several producers in one call instead (`N` calls of four
//! one-record batches from four producers), for the multi-batch path; `multi-plain` the same
//! batches with no producer id. `one-call` appends `N` one-record batches of `N` producers in
//! a single call and prints the time it took.

use std::path::PathBuf;

use partlog::batch::{BatchBuilder, RecordBatch};
use partlog::log::AppendOrigin;
use partlog::{Config, Log};

fn batch(producer: Option<(i64, i32)>, value: &[u8]) -> RecordBatch {
    let mut b = BatchBuilder::new();
    if let Some((id, seq)) = producer {
        b = b.producer(id, 0, seq);
    }
    b.push_parts(1_700_000_000_000, None, Some(value), &[])
        .expect("push");
    b.build().expect("build")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: append_cost plain|idempotent|multi|multi-plain|one-call N [DIR]";
    let mode = args.next().ok_or(usage)?;
    let n: usize = args.next().ok_or(usage)?.parse()?;
    let base = args.next().map(PathBuf::from).unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let value = vec![0x5a_u8; 100];
    let dir = tempfile::tempdir_in(base)?;
    let log = Log::open(dir.path().join("log"), Config::default())?;
    match mode.as_str() {
        "plain" | "idempotent" => {
            let idempotent = mode == "idempotent";
            let batches: Vec<RecordBatch> = (0..n)
                .map(|i| batch(idempotent.then_some((1, i as i32)), &value))
                .collect();
            for b in &batches {
                let info = log.append_batch(b)?;
                assert!(!info.duplicate);
            }
        }
        "multi" | "multi-plain" => {
            const PRODUCERS: i64 = 4;
            let idempotent = mode == "multi";
            let calls: Vec<Vec<RecordBatch>> = (0..n)
                .map(|i| {
                    (0..PRODUCERS)
                        .map(|p| batch(idempotent.then_some((p + 1, i as i32)), &value))
                        .collect()
                })
                .collect();
            for c in &calls {
                let info = log.append_batches(c, AppendOrigin::Client)?;
                assert!(!info.duplicate);
            }
        }
        "one-call" => {
            // One call of `N` one-record batches, each from a producer of its own.
            let batches: Vec<RecordBatch> = (0..n)
                .map(|i| batch(Some((i as i64 + 1, 0)), &value))
                .collect();
            let start = std::time::Instant::now();
            log.append_batches(&batches, AppendOrigin::Client)?;
            println!("one call of {n} batches: {:?}", start.elapsed());
        }
        _ => return Err(usage.into()),
    }
    println!(
        "{mode}: {n} appends, log end offset {}",
        log.log_end_offset()
    );
    log.close()?;
    Ok(())
}
