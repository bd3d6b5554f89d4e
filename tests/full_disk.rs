//! A full file system is an I/O error, never a signal (issue 17, finding 8).
//!
//! The active segment and its indexes are preallocated sparse (`set_len`), and small appends are
//! copied into a shared map of them. When the file system has no free block, a store into a page
//! that has no block yet cannot be backed, and the kernel raises SIGBUS: the process dies instead
//! of seeing ENOSPC. The log now reserves the blocks (`fallocate`) before it stores into a page,
//! so a full disk is an `Error::Io` on every path: log and index appends, the time index entry of
//! a roll, a new segment, a checkpoint.
//!
//! Each test mounts a small tmpfs (root only; skipped with a message where `mount` is refused),
//! fills it to within a few pages with a filler file, and runs the scenario in a child process
//! (this same binary, running the `#[ignore]`d `child` test), so that a SIGBUS shows up as a
//! failure naming the signal rather than killing the test harness. The scenario, for every
//! number of free pages in a range and each append path (single small records through the map,
//! large batches through `pwrite`, a follower's runs of batches, an idempotent producer's
//! batches, whose producer state a failed append must leave as it was):
//! - appends until the log reports the full disk, which must be `Error::Io` with ENOSPC;
//! - the log is fail-stop after a failed write (`Error::PreviousIo`, as Kafka takes a log
//!   directory offline on an `IOException`), and stays readable: every acknowledged record is
//!   there;
//! - reopening while the disk is still full is an error or a readable log, never a signal;
//! - once the filler is deleted, a reopen recovers every acknowledged record and appends resume.
//!
//! Reads can fault too: on tmpfs a read through a shared map of a page with no block makes the
//! kernel allocate one, and a full tmpfs answers SIGBUS. A process killed on a full disk leaves
//! its active segment and indexes sparse; the reopen's recovery scan and a read-only index open
//! now read only up to a file's first hole (`lseek(SEEK_HOLE)`): the `abandoned` and `index`
//! workloads.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use partlog::batch::{BatchBuilder, SimpleRecord};
use partlog::index::{IndexReader, OffsetEntry};
use partlog::log::AppendOrigin;
use partlog::{Config, Error, Log};

/// The directory of the mounted tmpfs, for the child.
const CHILD_DIR_ENV: &str = "PARTLOG_FULL_DISK_DIR";
/// Which workload the child runs.
const CHILD_WORKLOAD_ENV: &str = "PARTLOG_FULL_DISK_WORKLOAD";
const ENOSPC: i32 = 28;
/// The producer id of the `idempotent` workload.
const PRODUCER: i64 = 7;
const PAGE: u64 = 4096;

/// A tmpfs mounted on a temporary directory, unmounted on drop (before the directory goes).
struct SmallFs {
    path: PathBuf,
    // Dropped after `Drop::drop` unmounted the file system.
    _dir: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `size` bytes, or says why not and returns `None`.
    fn mount(size: u64) -> Option<SmallFs> {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs {
                path: dir.path().to_owned(),
                _dir: dir,
            }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a small tmpfs to fill (needs root or CAP_SYS_ADMIN): \
                     mount said {:?}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run `mount` to make a small tmpfs to fill: {e}");
                None
            }
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a child still alive?): detach it, so the directory can go.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Runs the `child` test of this binary on `fs` with `workload`, and fails if it failed, with
/// the signal that killed it if one did.
fn run_child(fs: &SmallFs, workload: &str) {
    let out = Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_ENV, &fs.path)
        .env(CHILD_WORKLOAD_ENV, workload)
        .output()
        .expect("spawn the child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Shown with `--nocapture`: where the disk filled in each case.
    println!("{stdout}");
    if let Some(signal) = out.status.signal() {
        panic!(
            "workload {workload}: the child was killed by signal {signal} ({}) instead of \
             getting an I/O error\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            if signal == 7 { "SIGBUS" } else { "not SIGBUS" }
        );
    }
    assert!(
        out.status.success(),
        "workload {workload}: the child failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("child: done"),
        "workload {workload}: the child did not run the scenario\n--- stdout\n{stdout}"
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn full_disk_fails_small_appends_with_an_io_error() {
    if let Some(fs) = SmallFs::mount(2 << 20) {
        run_child(&fs, "small");
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn full_disk_fails_large_appends_with_an_io_error() {
    if let Some(fs) = SmallFs::mount(2 << 20) {
        run_child(&fs, "large");
    }
}

/// An idempotent producer's one-batch appends (the producer state's own path): a failed write
/// or roll leaves its state as it was.
#[test]
#[cfg_attr(miri, ignore)]
fn full_disk_fails_idempotent_appends_with_an_io_error_and_the_producer_state_unchanged() {
    if let Some(fs) = SmallFs::mount(2 << 20) {
        run_child(&fs, "idempotent");
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn full_disk_fails_follower_runs_with_an_io_error() {
    if let Some(fs) = SmallFs::mount(2 << 20) {
        run_child(&fs, "follower");
    }
}

/// A process killed while the disk is full leaves its active segment and indexes preallocated
/// and sparse (nothing trimmed them); the log is reopened before space is freed. Recovery reads
/// the segment's tail and the indexes: through a map, a read of a page with no block faults on
/// a full tmpfs as a store does (the kernel must allocate a page to map it), and the process
/// dies of SIGBUS. The reopen must succeed or fail with `Error::Io`; once space is freed, every
/// acknowledged record is there and appends resume.
#[test]
#[cfg_attr(miri, ignore)]
fn reopening_a_log_abandoned_on_a_full_disk_is_never_a_signal() {
    if let Some(fs) = SmallFs::mount(2 << 20) {
        run_child(&fs, "abandoned");
    }
}

/// An index file grown sparse (as the active segment's indexes are, `set_len` to
/// `segment_index_bytes`) and opened read-only while the disk is full: its entries are read
/// through a map, and the pages past the written ones have no blocks. Opening and reading it
/// must not fault: the entries are those of the written pages (the hole holds none).
#[test]
#[cfg_attr(miri, ignore)]
fn a_sparse_index_read_on_a_full_disk_is_never_a_signal() {
    if let Some(fs) = SmallFs::mount(2 << 20) {
        run_child(&fs, "index");
    }
}

/// The scenario, run in a child process by the tests above.
#[test]
#[ignore = "run in a child process by the full_disk_* tests, on a small tmpfs they mount"]
fn child() {
    let (Ok(dir), Ok(workload)) = (
        std::env::var(CHILD_DIR_ENV),
        std::env::var(CHILD_WORKLOAD_ENV),
    ) else {
        println!("child: not run (no {CHILD_DIR_ENV}): the full_disk_* tests run it");
        return;
    };
    let root = PathBuf::from(dir);
    if workload == "index" {
        sparse_index_scenario(&root);
        println!("child: done");
        return;
    }
    // Every number of free pages from 0 to past a segment and an index page, so that the
    // disk fills on each kind of write: a log page, an index page, a roll.
    for free_pages in 0..24 {
        if workload == "abandoned" {
            abandoned_scenario(&root, free_pages);
        } else {
            scenario(&root, &workload, free_pages);
        }
    }
    println!("child: done");
}

/// Small segments and an index entry per batch: rolls and index pages come often.
fn config() -> Config {
    Config {
        segment_bytes: 32 << 10,
        segment_index_bytes: 1200,
        index_interval_bytes: 0,
        max_batch_bytes: 16 << 10,
        ..Config::default()
    }
}

/// A record of `len` bytes whose value names `i`.
fn record(i: i64, len: usize) -> SimpleRecord {
    let mut v = format!("{i:08}-").into_bytes();
    v.resize(len, b'x');
    SimpleRecord::new(1_000 + i, None::<Vec<u8>>, Some(v))
}

fn value_ok(offset: i64, value: Option<&[u8]>) -> bool {
    value.is_some_and(|v| v.starts_with(format!("{offset:08}-").as_bytes()))
}

/// Appends one unit of `workload` at the log end: returns the offsets it acknowledged.
fn append_one(log: &Log, workload: &str, leader: &Log) -> Result<i64, Error> {
    let next = log.log_end_offset();
    let info = match workload {
        // One ~150 B record per batch: copied into the map.
        "small" => log.append(&[record(next, 100)])?,
        // 3 records of 2 KiB: written with `pwrite`.
        "large" => {
            let recs: Vec<_> = (0..3).map(|j| record(next + j, 2048)).collect();
            log.append(&recs)?
        }
        // A follower's fetch: the leader's next batches, end to end, 1 to 40 batches of one
        // small record, so both the map (< 4 KiB) and `pwrite` paths are taken.
        "follower" => {
            let n = 1 + (next % 40);
            while leader.log_end_offset() < next + n {
                let o = leader.log_end_offset();
                leader
                    .append_batches(
                        &build(&[record(o, 60)]),
                        AppendOrigin::Leader { leader_epoch: 1 },
                    )
                    .expect("leader append (on the real disk)");
            }
            let mut fetched = leader.read(next, usize::MAX).expect("leader read");
            let mut end = 0;
            for b in &fetched.batches {
                if b.base_offset() >= next + n {
                    break;
                }
                end += b.as_bytes().len();
            }
            fetched.bytes.truncate(end);
            log.append_batches(&fetched.bytes, AppendOrigin::Follower)?
        }
        // One ~150 B record per batch from an idempotent producer whose sequence is the
        // offset: the one-batch producer path, through the map.
        "idempotent" => {
            let mut b = BatchBuilder::new().producer(PRODUCER, 0, next as i32);
            b.push(&record(next, 100)).unwrap();
            log.append_batch(&b.build().unwrap())?
        }
        other => panic!("unknown workload {other}"),
    };
    assert_eq!(info.first_offset, next);
    Ok(info.last_offset + 1)
}

fn build(records: &[SimpleRecord]) -> partlog::batch::RecordBatch {
    let mut b = BatchBuilder::new();
    for r in records {
        b.push(r).unwrap();
    }
    b.build().unwrap()
}

/// Reads every record of `log`; checks each value names its offset; returns the next offset.
fn check_readable(log: &Log) -> Result<i64, Error> {
    let mut next = log.log_start_offset();
    while next < log.log_end_offset() {
        let r = log.read(next, 64 << 10)?;
        assert!(r.next_offset > next, "read at {next} made no progress");
        for b in &r.batches {
            for rec in b.records().unwrap() {
                let rec = rec.unwrap();
                assert!(
                    value_ok(rec.offset, rec.value.as_deref()),
                    "offset {}: wrong value",
                    rec.offset
                );
            }
        }
        next = r.next_offset;
    }
    Ok(next)
}

/// Fills `root` with `filler` until ENOSPC, then frees `free_pages` pages of it.
fn fill(root: &Path, free_pages: u64) -> PathBuf {
    let path = root.join("filler");
    let mut f = File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 << 10];
    let mut len = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(n) => len += n as u64,
            Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
            Err(e) => panic!("filling: {e}"),
        }
    }
    let len = len - len % PAGE;
    f.set_len(len.saturating_sub(free_pages * PAGE)).unwrap();
    f.sync_all().unwrap();
    path
}

fn is_enospc(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.raw_os_error() == Some(ENOSPC))
}

fn scenario(root: &Path, workload: &str, free_pages: u64) {
    let dir = root.join(format!("log-{free_pages}"));
    // The follower's leader lives on the real disk.
    let leader_dir = tempfile::tempdir().unwrap();
    let leader = Log::open(leader_dir.path(), Config::default()).unwrap();
    let log = Log::open(&dir, config()).unwrap();
    // Some data first, then the wall.
    let mut acked = 0;
    for _ in 0..20 {
        acked = append_one(&log, workload, &leader).unwrap();
    }
    log.flush().unwrap();
    let filler = fill(root, free_pages);
    let mut appends = 0;
    let err = loop {
        match append_one(&log, workload, &leader) {
            Ok(end) => acked = end,
            Err(e) => break e,
        }
        appends += 1;
        assert!(
            appends < 100_000,
            "{workload}, {free_pages} pages free: the disk never filled"
        );
        if appends % 16 == 0 {
            // Checkpoints too.
            if let Err(e) = log.flush() {
                break e;
            }
        }
    };
    println!(
        "{workload}, {free_pages} pages free: {appends} appends, then {err} (log end {acked})"
    );
    assert!(
        is_enospc(&err),
        "{workload}, {free_pages} pages free: expected ENOSPC as Error::Io, got {err:?}"
    );
    if workload == "idempotent" {
        // The failed append left the producer state as it was: its newest batch is the log's
        // last (sequence = offset), not the one that failed.
        let e = log
            .producer_state(PRODUCER)
            .unwrap()
            .expect("the producer is known");
        let last = log.log_end_offset() - 1;
        assert_eq!(
            (e.last_sequence(), e.batches.back().map(|b| b.last_offset)),
            (last as i32, Some(last)),
            "{free_pages} pages free: the producer state moved with the failed append"
        );
    }
    // Fail-stop: no more writes until reopened.
    assert!(matches!(
        append_one(&log, workload, &leader),
        Err(Error::PreviousIo)
    ));
    // Every acknowledged record is readable (a follower's run may have landed in part).
    assert!(log.log_end_offset() >= acked);
    assert_eq!(check_readable(&log).unwrap(), log.log_end_offset());
    println!("{workload}, {free_pages} pages free: closing");
    drop(log);

    // Reopening while the disk is still full: a readable log or an error, never a signal.
    println!("{workload}, {free_pages} pages free: reopening while full");
    match Log::open(&dir, config()) {
        Ok(log) => {
            assert!(log.log_end_offset() >= acked);
            check_readable(&log).unwrap();
        }
        Err(e) => println!("{workload}, {free_pages} pages free: reopen while full: {e}"),
    }

    // Space comes back: a reopen recovers everything acknowledged, and appends resume.
    std::fs::remove_file(&filler).unwrap();
    let log = Log::open(&dir, config()).unwrap();
    assert!(log.log_end_offset() >= acked);
    let end = check_readable(&log).unwrap();
    assert!(end >= acked);
    for _ in 0..20 {
        append_one(&log, workload, &leader).unwrap();
    }
    log.flush().unwrap();
    let end = log.log_end_offset();
    log.close().unwrap();
    let log = Log::open(&dir, config()).unwrap();
    assert_eq!(check_readable(&log).unwrap(), end);
    drop(log);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A log crashes (is abandoned, its preallocated files untrimmed) with `free_pages` pages left,
/// after appending into them until the disk is full or 200 appends; reopened while the disk is
/// still full, then after space is freed.
fn abandoned_scenario(root: &Path, free_pages: u64) {
    let dir = root.join(format!("abandoned-{free_pages}"));
    let log = Log::open(&dir, config()).unwrap();
    let mut acked = 0;
    for _ in 0..20 {
        acked = append_one(&log, "small", &log).unwrap();
    }
    log.flush().unwrap();
    let filler = fill(root, free_pages);
    for _ in 0..200 {
        match append_one(&log, "small", &log) {
            Ok(end) => acked = end,
            Err(_) => break,
        }
    }
    // Killed: nothing trims the sparse preallocated tails.
    log.abandon();

    println!("abandoned, {free_pages} pages free: reopening while full");
    match Log::open(&dir, config()) {
        Ok(log) => {
            assert!(log.log_end_offset() >= acked);
            assert_eq!(check_readable(&log).unwrap(), log.log_end_offset());
            // Crashed again, before space is freed.
            log.abandon();
        }
        Err(e) => {
            assert!(
                matches!(e, Error::Io { .. }),
                "abandoned, {free_pages} pages free: reopen while full: expected Error::Io, \
                 got {e:?}"
            );
            println!("abandoned, {free_pages} pages free: reopen while full: {e}");
        }
    }

    std::fs::remove_file(&filler).unwrap();
    let log = Log::open(&dir, config()).unwrap();
    assert!(log.log_end_offset() >= acked);
    assert_eq!(check_readable(&log).unwrap(), log.log_end_offset());
    for _ in 0..20 {
        append_one(&log, "small", &log).unwrap();
    }
    log.flush().unwrap();
    let end = log.log_end_offset();
    log.close().unwrap();
    let log = Log::open(&dir, config()).unwrap();
    assert_eq!(check_readable(&log).unwrap(), end);
    drop(log);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Three offset-index entries written, the file grown to 256 KiB with no blocks past them, the
/// disk filled; then the index is opened read-only and every entry looked at.
fn sparse_index_scenario(root: &Path) {
    let path = root.join("00000000000000000000.index");
    let mut f = File::create(&path).unwrap();
    for i in 1..=3u32 {
        f.write_all(&(i * 10).to_be_bytes()).unwrap();
        f.write_all(&(i * 1000).to_be_bytes()).unwrap();
    }
    f.set_len(256 << 10).unwrap();
    f.sync_all().unwrap();
    drop(f);
    let filler = fill(root, 0);
    match IndexReader::<OffsetEntry>::open_read_only(&path) {
        Ok(index) => {
            let entries = index.entries();
            println!("index: {} entries read while full", entries.len());
            assert!(entries.len() >= 3);
            assert_eq!(entries[2].relative_offset, 30);
            // The rest of the written page reads as zero entries (not an index to search).
            let _ = index.floor(25);
            let _ = index.last();
            let _ = index.validate(1 << 20, 1 << 20);
        }
        Err(e) => assert!(
            matches!(e, Error::Io { .. }),
            "expected Error::Io, got {e:?}"
        ),
    }
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(&path).unwrap();
}
