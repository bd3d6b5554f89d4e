//! `partlog produce`: synthetic load.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use partlog::batch::{SimpleRecord, HEADER_SIZE};
use partlog::{Config, Log};

use crate::text::human_bytes;
use crate::{parse_count, CliError, Outcome};

/// Arguments of `produce`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The log directory (created if absent).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Number of records to append.
    #[arg(long, value_name = "N", value_parser = parse_count::<u64>)]
    pub records: u64,
    /// Bytes per record value.
    #[arg(long, value_name = "B", value_parser = parse_count::<usize>)]
    pub record_size: usize,
    /// Records per batch.
    #[arg(long, value_name = "R", value_parser = parse_count::<usize>)]
    pub batch: usize,
    /// Segment size in bytes.
    #[arg(long, value_name = "S", value_parser = parse_count::<u32>)]
    pub segment_bytes: Option<u32>,
    /// Bytes between sparse index entries.
    #[arg(long, value_name = "I", value_parser = parse_count::<u32>)]
    pub index_interval_bytes: Option<u32>,
    /// Flush every K batches.
    #[arg(long, value_name = "K", value_parser = parse_count::<u64>)]
    pub flush_every: Option<u64>,
}

/// The smallest encoding of one record besides its value: length, attributes, timestamp
/// delta, offset delta, key length, a key of at least five bytes ("key-0"), value length and
/// header count.
const MIN_RECORD_OVERHEAD: u64 = 12;

/// What `produce` was asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Number of records to append.
    pub records: u64,
    /// Bytes per record value.
    pub record_size: usize,
    /// Records per batch.
    pub batch: usize,
    /// Flush every this many batches, if set.
    pub flush_every: Option<u64>,
    /// The log's configuration.
    pub config: Config,
}

/// A cheap deterministic pseudo-random generator (xorshift64*).
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (a zero seed is replaced, as xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with printable pseudo-random bytes (letters, digits, `-` and `_`), so that
    /// dumps of the values stay readable.
    pub fn fill_printable(&mut self, buf: &mut [u8]) {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for chunk in buf.chunks_mut(8) {
            let bits = self.next_u64().to_le_bytes();
            for (dst, b) in chunk.iter_mut().zip(bits) {
                *dst = ALPHABET[usize::from(b & 63)];
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn plan(args: &Args) -> Result<Plan, CliError> {
    let Args {
        records,
        record_size,
        batch,
        flush_every,
        ..
    } = *args;
    if batch == 0 {
        return Err(CliError::Usage("--batch must be at least 1".into()));
    }
    if flush_every == Some(0) {
        return Err(CliError::Usage("--flush-every must be at least 1".into()));
    }
    let mut config = Config::default();
    if let Some(s) = args.segment_bytes {
        config.segment_bytes = s;
        config.max_batch_bytes = config.max_batch_bytes.min(s);
    }
    if let Some(i) = args.index_interval_bytes {
        config.index_interval_bytes = i;
    }
    config
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    // Refuse batches that cannot fit before building them (and allocating their values).
    let min_batch = (batch as u64)
        .saturating_mul((record_size as u64).saturating_add(MIN_RECORD_OVERHEAD))
        .saturating_add(HEADER_SIZE as u64);
    if records > 0 && min_batch > u64::from(config.max_batch_bytes) {
        return Err(CliError::Usage(format!(
            "a batch of {batch} records of {record_size} bytes takes at least {min_batch} bytes, more than \
             the largest batch accepted ({} bytes): lower --batch or --record-size",
            config.max_batch_bytes
        )));
    }
    Ok(Plan {
        records,
        record_size,
        batch,
        flush_every,
        config,
    })
}

/// Runs `partlog produce`.
///
/// # Errors
/// [`CliError::Usage`] for bad arguments, [`CliError::Failed`] if the log fails.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let plan = plan(args)?;
    produce(&args.dir, &plan, out)
}

fn failed(dir: &Path, what: &str, e: partlog::Error) -> CliError {
    CliError::Failed(format!("{what} {}: {e}", dir.display()))
}

/// Appends the planned records to the log in `dir` and prints what happened.
fn produce(dir: &Path, plan: &Plan, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let start = Instant::now();
    let log = Log::open(dir, plan.config.clone())
        .map_err(|e| failed(dir, "cannot open the log in", e))?;
    let report = log.open_report().clone();
    if let Some((base, position, reason)) = &report.truncated {
        writeln!(
            out,
            "note: opening recovered the log: segment {base} cut at byte {position} ({reason}), {} later \
             segment(s) removed",
            report.segments_removed
        )?;
    }
    let mut rng = XorShift::new(0x0123_4567_89AB_CDEF);
    let mut first_offset = None;
    let mut last_offset = None;
    let mut bytes_appended = 0u64;
    let mut batches = 0u64;
    let mut done = 0u64;
    let size = plan.record_size;
    while done < plan.records {
        let n =
            usize::try_from(plan.records - done).map_or(plan.batch, |left| left.min(plan.batch));
        let mut values = vec![0u8; n.saturating_mul(size)];
        rng.fill_printable(&mut values);
        let values = Bytes::from(values);
        let timestamp = now_ms();
        let records: Vec<SimpleRecord> = (0..n)
            .map(|j| SimpleRecord {
                timestamp,
                key: Some(Bytes::from(format!("key-{}", done + j as u64))),
                value: Some(values.slice(j * size..(j + 1) * size)),
                headers: Vec::new(),
            })
            .collect();
        let info = log
            .append(&records)
            .map_err(|e| failed(dir, "append to", e))?;
        first_offset.get_or_insert(info.first_offset);
        last_offset = Some(info.last_offset);
        bytes_appended += info.size as u64;
        batches += 1;
        done += n as u64;
        if plan.flush_every.is_some_and(|k| batches.is_multiple_of(k)) {
            log.flush().map_err(|e| failed(dir, "flush", e))?;
        }
    }
    log.flush().map_err(|e| failed(dir, "flush", e))?;
    let log_end_offset = log.log_end_offset();
    let segments = log.segment_count();
    log.close().map_err(|e| failed(dir, "close", e))?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);

    let show = |o: Option<i64>| o.map_or_else(|| "none".to_owned(), |o| o.to_string());
    writeln!(
        out,
        "produced {} records of {} bytes in {batches} batches of up to {} into {}",
        plan.records,
        plan.record_size,
        plan.batch,
        dir.display()
    )?;
    writeln!(out, "first offset: {}", show(first_offset))?;
    writeln!(out, "last offset: {}", show(last_offset))?;
    writeln!(out, "log end offset: {log_end_offset}")?;
    writeln!(out, "segments: {segments}")?;
    writeln!(
        out,
        "bytes appended: {bytes_appended} ({})",
        human_bytes(bytes_appended)
    )?;
    writeln!(out, "elapsed: {secs:.3} s")?;
    writeln!(
        out,
        "throughput: {:.0} records/s, {:.1} MB/s",
        plan.records as f64 / secs,
        bytes_appended as f64 / 1e6 / secs
    )?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_is_deterministic_and_printable() {
        let mut a = XorShift::new(1);
        let mut b = XorShift::new(1);
        let mut x = [0u8; 37];
        let mut y = [0u8; 37];
        a.fill_printable(&mut x);
        b.fill_printable(&mut y);
        assert_eq!(x, y);
        assert!(x
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_'));
        assert_ne!(XorShift::new(0).next_u64(), 0);
    }
}
