//! Crash test with a real process (issue 3, part 3).
//!
//! The test re-executes its own binary (`std::env::current_exe()`) with `PARTLOG_CRASH_CHILD`
//! set, filtered to the `crash_writer_child` test: that run becomes the writer. It opens the log
//! (64 KiB segments, so it rolls), appends batches of self-describing records (each record's key,
//! value, headers and timestamp are a pure function of its offset, the value carries the offset
//! and a checksum of its payload), now and then forces a roll, truncates its unflushed tail or
//! deletes records below its flushed point (printing `start <offset>`), and flushes every few
//! batches, printing `flushed <recovery point>` after each flush returns.
//!
//! The parent kills the writer with SIGKILL at a random moment (seeded xorshift; the seed is
//! printed), then reopens the directory itself and checks:
//! - every offset below the largest flushed offset ever reported is present, with its exact
//!   key, value, headers and timestamp, from a log start offset no lower than the last one
//!   reported (deleted records stay deleted) and no higher than the flushed offset;
//! - the whole log reads from start to end with no error, every batch fully validates, offsets
//!   are contiguous, and every record is the one its offset says;
//! - the open report says the log was not closed cleanly, and the recovery point is the end;
//! - time lookups find each record by its timestamp;
//! - appends continue at the recovered end and read back.
//!
//! The next iteration reuses the directory (the parent closes it cleanly or abandons it, at
//! random), so recovery over recovered logs, and kills during recovery itself, are exercised.
//!
//! `PARTLOG_CRASH_ITERATIONS` (default 20) sets the number of kills, `PARTLOG_CRASH_SEED` the
//! seed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use partlog::batch::{Record, RecordBatch, SimpleRecord};
use partlog::{Config, Log};

/// Set in the child's environment: the log directory it writes to.
const CHILD_DIR_ENV: &str = "PARTLOG_CRASH_CHILD";
/// Set in the child's environment: the seed of its own random choices.
const CHILD_SEED_ENV: &str = "PARTLOG_CRASH_CHILD_SEED";
const TS: i64 = 1_700_000_000_000;
/// Past this log end offset the parent starts over in an empty directory (keeps each
/// verification pass short however many iterations run).
const RESTART_AT: i64 = 40_000;

fn config() -> Config {
    Config {
        segment_bytes: 64 * 1024,
        segment_index_bytes: 4096,
        index_interval_bytes: 1024,
        max_open_segments: 4,
        ..Config::default()
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.next().is_multiple_of(one_in)
    }
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The record at `offset`, whoever writes it: value = `offset (8) | fnv1a(payload) (4) |
/// payload`, payload pseudo-random of 0..400 bytes; a key on 7 of 8 records; a header on every
/// fifth; timestamp `TS + offset`.
fn expected(offset: i64) -> SimpleRecord {
    let h = splitmix(offset as u64);
    let len = (h % 400) as usize;
    let mut s = Rng::new(h);
    let payload: Vec<u8> = (0..len).map(|_| s.next() as u8).collect();
    let mut value = Vec::with_capacity(12 + len);
    value.extend_from_slice(&offset.to_be_bytes());
    value.extend_from_slice(&fnv1a(&payload).to_be_bytes());
    value.extend_from_slice(&payload);
    let key = !(h >> 40).is_multiple_of(8);
    let mut r = SimpleRecord::new(
        TS + offset,
        key.then(|| format!("key-{offset}")),
        Some(value),
    );
    if offset % 5 == 0 {
        r = r.with_header("h", Some(format!("{h:x}")));
    }
    r
}

/// Checks one record read back against [`expected`], and its value's own offset and checksum.
fn check_record(r: &Record) {
    let want = expected(r.offset);
    let value = r.value.as_deref().expect("every record has a value");
    assert!(value.len() >= 12, "offset {}: short value", r.offset);
    assert_eq!(
        i64::from_be_bytes(value[..8].try_into().unwrap()),
        r.offset,
        "value names another offset"
    );
    assert_eq!(
        u32::from_be_bytes(value[8..12].try_into().unwrap()),
        fnv1a(&value[12..]),
        "offset {}: payload checksum",
        r.offset
    );
    assert_eq!(Some(value), want.value.as_deref(), "value at {}", r.offset);
    assert_eq!(r.key, want.key, "key at {}", r.offset);
    assert_eq!(r.timestamp, want.timestamp, "timestamp at {}", r.offset);
    assert_eq!(r.headers, want.headers, "headers at {}", r.offset);
}

/// Appends one batch of `n` expected records at the log end offset.
fn append_expected(log: &Log, n: usize) -> i64 {
    let first = log.log_end_offset();
    let records: Vec<SimpleRecord> = (0..n as i64).map(|j| expected(first + j)).collect();
    let info = log.append(&records).unwrap();
    assert_eq!(info.first_offset, first);
    assert_eq!(info.last_offset, first + n as i64 - 1);
    info.last_offset + 1
}

/// The writer. A no-op in a normal test run; the crash test runs it in a child process.
#[test]
#[cfg_attr(miri, ignore)]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(CHILD_SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut rng = Rng::new(seed);
    let out = std::io::stdout();
    let say = |line: String| {
        let mut o = out.lock();
        writeln!(o, "{line}").unwrap();
        o.flush().unwrap();
    };
    let log = Log::open(&dir, config()).unwrap();
    say(format!(
        "opened {} {}",
        log.log_end_offset(),
        log.open_report().clean
    ));
    // The open made everything it found durable.
    let mut reported = log.log_end_offset();
    let started = Instant::now();
    let mut batches_until_flush = rng.range(1, 6);
    loop {
        // An orphan (the parent died) stops on its own.
        assert!(started.elapsed() < Duration::from_secs(120), "never killed");
        let n = rng.range(1, 16) as usize;
        append_expected(&log, n);
        if rng.chance(60) {
            log.roll_now().unwrap();
        }
        if rng.chance(70) {
            // Drop part of the unflushed tail (a follower truncating after a leader change):
            // what is cut is written again below with the same bytes. Never below the flushed
            // point, so every flushed offset stays.
            let rp = log.recovery_point();
            let leo = log.log_end_offset();
            if leo > rp {
                let to = rng.range(rp as u64, leo as u64 - 1) as i64;
                let new = log.truncate_to(to).unwrap();
                assert!(new >= rp && new <= to, "truncate_to({to}) = {new}, rp {rp}");
            }
        }
        if rng.chance(40) {
            // Delete records below the last flushed point reported (Kafka's DeleteRecords): the
            // new log start offset is checkpointed before `delete_records` returns.
            let lso = log.log_start_offset();
            if reported > lso {
                let to = rng.range(lso as u64 + 1, reported as u64) as i64;
                assert_eq!(log.delete_records(to).unwrap(), to);
                say(format!("start {to}"));
            }
        }
        batches_until_flush -= 1;
        if batches_until_flush == 0 {
            log.flush().unwrap();
            reported = log.recovery_point();
            say(format!("flushed {reported}"));
            batches_until_flush = rng.range(1, 6);
        }
    }
}

/// Kills the child when dropped (so a failing parent leaves no writer behind).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the child printed before it died.
#[derive(Debug, Default)]
struct ChildOutput {
    opened: Option<(i64, bool)>,
    flushed: Vec<i64>,
    starts: Vec<i64>,
    stderr: String,
}

/// Notes one line of the writer's stdout (the test harness's own lines are ignored).
fn note(line: &str, out: &mut ChildOutput) {
    // With one test thread, libtest prints `test crash_writer_child ... ` with no newline
    // before the test runs: the first line of ours follows it.
    let line = ["opened ", "flushed ", "start "]
        .iter()
        .find_map(|w| line.find(w).map(|i| &line[i..]))
        .unwrap_or("");
    let mut words = line.split_whitespace();
    match words.next() {
        Some("flushed") => out.flushed.push(words.next().unwrap().parse().unwrap()),
        Some("opened") => {
            let leo = words.next().unwrap().parse().unwrap();
            let clean = words.next().unwrap().parse().unwrap();
            out.opened = Some((leo, clean));
        }
        Some("start") => out.starts.push(words.next().unwrap().parse().unwrap()),
        _ => {}
    }
}

/// Spawns the writer, kills it at a moment chosen by `rng`, and returns what it printed.
fn run_child(dir: &Path, rng: &mut Rng) -> ChildOutput {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "crash_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_SEED_ENV, rng.next().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the writer");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let mut stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });

    let mut out = ChildOutput::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    if rng.chance(8) {
        // Anywhere from process start-up through the open (and its recovery) to the first
        // appends.
        std::thread::sleep(Duration::from_micros(rng.range(0, 40_000)));
    } else {
        // After a number of flushes, a little into the next batches.
        let flushes = rng.range(1, 12) as usize;
        while out.flushed.len() < flushes {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => note(&line, &mut out),
                Err(e) => {
                    let _ = child.0.kill();
                    let _ = child.0.wait();
                    let stderr = err_reader.join().unwrap_or_default();
                    panic!("the writer stopped talking ({e:?}) after {out:?}; stderr:\n{stderr}");
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.range(0, 4_000)));
    }
    child.0.kill().expect("SIGKILL the writer");
    let status = child.0.wait().unwrap();
    reader.join().unwrap();
    for line in rx.try_iter() {
        note(&line, &mut out);
    }
    out.stderr = err_reader.join().unwrap_or_default();
    // Killed, not exited: an exit means the writer failed an assertion.
    assert!(
        status.code().is_none(),
        "the writer exited by itself ({status}); stderr:\n{}",
        out.stderr
    );
    out
}

/// Reads the whole log and checks every record; returns the number of batches.
fn verify_all(log: &Log, rng: &mut Rng) -> usize {
    let mut next = log.log_start_offset();
    let leo = log.log_end_offset();
    let mut batches = 0;
    while next < leo {
        let max_bytes = rng.range(1, 200_000) as usize;
        let r = log
            .read(next, max_bytes)
            .unwrap_or_else(|e| panic!("read({next}) failed: {e}"));
        assert!(!r.batches.is_empty(), "read({next}) returned nothing");
        for b in &r.batches {
            // Full validation: header, CRC and every record's framing.
            RecordBatch::parse(b.as_bytes().clone())
                .unwrap_or_else(|e| panic!("batch at {} does not validate: {e}", b.base_offset()));
            assert!(b.base_offset() <= next, "gap before {}", b.base_offset());
            for rec in b.records().unwrap() {
                let rec = rec.unwrap();
                if rec.offset >= next {
                    assert_eq!(rec.offset, next, "offsets are contiguous");
                    check_record(&rec);
                    next += 1;
                }
            }
            batches += 1;
        }
        assert_eq!(r.next_offset, next);
    }
    assert_eq!(next, leo);
    batches
}

#[test]
#[cfg_attr(miri, ignore)]
fn sigkill_at_random_moments_loses_no_flushed_record() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        return; // we are the child: only `crash_writer_child` runs
    }
    let iterations: usize = std::env::var("PARTLOG_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("PARTLOG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test: seed {seed} (PARTLOG_CRASH_SEED={seed} to replay), {iterations} kills");
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let mut generation = 0;
    let mut dir = tmp.path().join("log-0");
    // The largest offset any writer reported flushed (the parent's own flushes count too).
    let mut flushed = 0i64;
    // The largest log start offset any writer reported (after `delete_records`).
    let mut start = 0i64;
    let mut deletes = 0;
    let started = Instant::now();
    let (mut total_flushes, mut early_kills, mut truncated_opens, mut batches) = (0, 0, 0, 0);

    for i in 0..iterations {
        let out = run_child(&dir, &mut rng);
        total_flushes += out.flushed.len();
        if out.opened.is_none() {
            early_kills += 1;
        }
        // What a writer reports never goes backwards: flushed data is never cut.
        for w in out.flushed.windows(2) {
            assert!(
                w[0] <= w[1],
                "iteration {i}: flushed offsets went back: {out:?}"
            );
        }
        if let Some((leo, _)) = out.opened {
            assert!(
                leo >= flushed,
                "iteration {i}: the writer opened at {leo} < {flushed}"
            );
        }
        flushed = flushed.max(out.flushed.iter().copied().max().unwrap_or(0));
        // An unclean open flushes what it recovered: the writer's open counts as a flush.
        if let Some((leo, _)) = out.opened {
            flushed = flushed.max(leo);
        }
        start = start.max(out.starts.iter().copied().max().unwrap_or(0));
        deletes += out.starts.len();

        let log = Log::open(&dir, config())
            .unwrap_or_else(|e| panic!("iteration {i} (seed {seed}): reopen failed: {e}"));
        let report = log.open_report().clone();
        if out.opened.is_some() {
            assert!(
                !report.clean,
                "iteration {i}: the writer never closed: {report:?}"
            );
        }
        if report.truncated.is_some() {
            truncated_opens += 1;
        }
        let leo = log.log_end_offset();
        assert!(
            leo >= flushed,
            "iteration {i} (seed {seed}): flushed records lost: log end {leo} < flushed \
             {flushed}; {report:?}"
        );
        assert_eq!(log.recovery_point(), leo, "iteration {i}: {report:?}");
        // Deleted records stay deleted; only records below the flushed point were deleted.
        let lso = log.log_start_offset();
        assert!(
            lso >= start && lso <= flushed,
            "iteration {i}: log start {lso}, reported {start}, flushed {flushed}"
        );
        start = lso;
        let bases = log.segment_base_offsets();
        assert!(bases[0] <= lso, "{bases:?}");
        assert!(bases.windows(2).all(|w| w[0] < w[1]), "{bases:?}");
        batches += verify_all(&log, &mut rng);

        // Time lookups land on the record with that timestamp.
        if leo > lso {
            for _ in 0..5 {
                let o = rng.range(lso as u64, leo as u64 - 1) as i64;
                assert_eq!(log.offset_for_timestamp(TS + o).unwrap(), Some(o));
            }
        }
        assert_eq!(log.offset_for_timestamp(TS + leo).unwrap(), None);

        // Appends continue at the recovered end, read back, and become the new flushed floor.
        let mut end = leo;
        for _ in 0..rng.range(1, 4) {
            end = append_expected(&log, rng.range(1, 10) as usize);
        }
        // (A read stops at a segment's end: the appends may have rolled.)
        let mut back: Vec<Record> = Vec::new();
        let mut next = leo;
        while next < end {
            let r = log.read(next, 1 << 20).unwrap();
            back.extend(
                r.batches
                    .iter()
                    .flat_map(|b| b.records().unwrap().map(Result::unwrap)),
            );
            next = r.next_offset;
        }
        let offsets: Vec<i64> = back.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (leo..end).collect::<Vec<_>>());
        back.iter().for_each(check_record);
        log.flush().unwrap();
        flushed = end;
        if rng.chance(3) {
            log.close().unwrap();
        } else {
            log.abandon();
        }

        if end > RESTART_AT {
            generation += 1;
            dir = tmp.path().join(format!("log-{generation}"));
            flushed = 0;
            start = 0;
        }
    }
    eprintln!(
        "crash test: {iterations} kills ({early_kills} before the writer's open returned), \
         {total_flushes} flushes and {deletes} record deletions reported, {truncated_opens} \
         reopens cut a torn tail, \
         {batches} batches verified, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
