//! `log_ops`: a sequence of operations on a `Log`, checked against an in-memory model.
//!
//! The input is decoded by hand (no `arbitrary`, so that the stable replay test needs no extra
//! dependency): four config bytes (segment size 1-4 KiB, index size 24 B-1 KiB, index interval,
//! batch limit, segment age, CRC checks on read, how many segments stay mapped), then one
//! operation per byte with its arguments: append records, append a batch built elsewhere (by
//! partlog's builder with producer fields / LogAppendTime / transactional, a compressed one, one
//! with gaps between its offsets, a corrupt one), read, look up a timestamp, roll, truncate,
//! flush, clean reopen, crash (abandon) and reopen, advance the clock, and a full check.
//!
//! The model is the list of batches the log must hold, with their exact bytes (the log assigns
//! the base offset; every other byte is the appender's), the log start offset and the log end
//! offset. After every operation the log's offsets must equal the model's, and the recovery
//! point must lie in `[flushed, leo]`. Every read returns exactly the model's batches from the
//! one holding the offset, byte for byte (see `model::check_read`), time lookups equal the brute
//! force answer, a truncation keeps exactly the batches below the cut, and after a crash every
//! batch survives (abandon keeps the page cache, so nothing appended may be lost; in any case
//! nothing flushed).

use std::sync::Arc;

use bytes::Bytes;
use partlog::batch::{BatchBuilder, RecordBatch, SimpleRecord, TimestampType};
use partlog::{Clock, Config, Error, Log, ManualClock};

use super::model::{brute_offset_for_timestamp, check_log, check_read, check_time, MBatch};
use super::{put_varint, write_batch, Input, RawHeader};

const TS0: i64 = 1_700_000_000_000;
const MAX_OPS: usize = 48;

fn verbose() -> bool {
    std::env::var_os("PARTLOG_FUZZ_VERBOSE").is_some()
}

/// The config from the first five input bytes.
#[allow(clippy::needless_update)] // (knobs added later keep their defaults)
fn config(input: &mut Input) -> Config {
    let c0 = input.u8();
    let c1 = input.u8();
    let c2 = input.u8();
    let c3 = input.u8();
    let c4 = input.u8();
    let segment_bytes = 1024 + u32::from(c0 % 13) * 256;
    Config {
        segment_bytes,
        segment_index_bytes: [24, 36, 48, 64, 128, 1024][usize::from(c1 % 6)],
        index_interval_bytes: [0, 64, 128, 256, 1024, 4096][usize::from((c1 / 6) % 6)],
        max_batch_bytes: if c2 & 0x80 != 0 {
            61 + u32::from(c2 & 0x7f) * 16
        } else {
            segment_bytes
        },
        segment_ms: [7 * 24 * 3_600_000, 5_000, 60_000, 1][usize::from(c3 & 3)],
        verify_crc_on_read: c3 & 4 == 0,
        // Half the configs map few segments (1 or 3), so that reads and checks keep unmapping
        // and mapping them again; the other half (and a zero byte) keep all of them mapped,
        // which spares the full checks (every read start, two scans, every timestamp) a remap of
        // each inactive segment on every pass (a quarter of an execution's time with a budget
        // of 1-4 for all).
        max_open_segments: [64, 1, 3, 64][usize::from((c3 >> 3) & 3)],
        retention_ms: [-1, 0, 60_000, 600_000][usize::from(c4 & 3)],
        retention_bytes: [-1, 0, 1500, 6000][usize::from((c4 >> 2) & 3)],
        flush_messages: [None, None, Some(1), Some(7)][usize::from((c4 >> 4) & 3)],
        flush_ms: (c3 & 0x20 != 0).then_some(30_000),
        file_delete_delay_ms: [0, 1000, 60_000, 60_000][usize::from((c4 >> 6) & 3)],
        ..Config::default()
    }
}

struct State {
    config: Config,
    clock: ManualClock,
    log: Option<Log>,
    batches: Vec<MBatch>,
    lso: i64,
    leo: i64,
    /// Everything below was flushed.
    flushed: i64,
    /// The log start offset as last checkpointed (delete_records, retention, close write it).
    lso_checkpoint: i64,
    /// A counter that makes every record's bytes different.
    serial: u64,
    /// Last, so that it is removed after the log is dropped (fields drop in order).
    dir: super::TempDir,
}

impl State {
    fn log(&self) -> &Log {
        self.log.as_ref().expect("the log is open")
    }

    fn open(&mut self) {
        let log = Log::open_with_clock(
            self.dir.path(),
            self.config.clone(),
            Arc::new(self.clock.clone()),
        )
        .unwrap_or_else(|e| panic!("open: {e}"));
        self.log = Some(log);
    }

    /// Records from the input.
    fn records(&mut self, input: &mut Input) -> Vec<SimpleRecord> {
        let n = 1 + input.below(8) as usize;
        let base_ts = TS0 + i64::from(input.u8() as i8) * 1000;
        (0..n)
            .map(|_| {
                let flags = input.u8();
                let ts = match flags & 0x0f {
                    0 => -1,
                    1 => base_ts - 60_000,
                    _ => base_ts + i64::from(input.u8() as i8) * 100,
                };
                let key_len = usize::from(input.u8() % 24);
                let value_len = match (flags >> 4) & 7 {
                    0 => 0,
                    7 => 1500,
                    x => usize::from(x) * 37 + usize::from(input.u8() % 16),
                };
                self.serial += 1;
                let tag = format!("{:x}-", self.serial);
                let key = (flags & 0x80 == 0).then(|| {
                    let mut k = tag.clone().into_bytes();
                    k.resize(key_len.max(k.len()), b'k');
                    k
                });
                let value = (value_len > 0).then(|| {
                    let mut v = tag.into_bytes();
                    v.resize(value_len.max(v.len()), b'v');
                    v
                });
                let mut r = SimpleRecord::new(ts, key, value);
                if flags & 0x0f == 15 {
                    r = r.with_header("h", Some(&b"header value"[..]));
                    r = r.with_header("null", None::<Bytes>);
                }
                r
            })
            .collect()
    }

    /// Appends `batch` (as `append_batch` or, for `simple`, `append`) and updates the model.
    fn expect_append(&mut self, result: partlog::Result<partlog::AppendInfo>, bytes: &[u8]) {
        let size = bytes.len();
        let max = self.config.effective_max_batch_bytes();
        if size > max {
            match result {
                Err(Error::BatchTooLarge { size: s, max: m }) => assert_eq!((s, m), (size, max)),
                other => panic!("append of {size} bytes over {max}: {other:?}"),
            }
            return;
        }
        let info = result.unwrap_or_else(|e| panic!("append of {size} bytes: {e}"));
        let mut stored = bytes.to_vec();
        stored[..8].copy_from_slice(&self.leo.to_be_bytes());
        let m = MBatch::from_bytes(Bytes::from(stored));
        assert_eq!(info.first_offset, self.leo);
        assert_eq!(info.last_offset, m.last);
        assert_eq!(info.size, size);
        assert_eq!(info.max_timestamp, m.max_timestamp);
        self.leo = m.next();
        self.batches.push(m);
    }

    fn append(&mut self, input: &mut Input) {
        let records = self.records(input);
        let mut b = BatchBuilder::new();
        for r in &records {
            b.push(r).expect("push");
        }
        let batch = b.build().expect("build");
        if verbose() {
            eprintln!("append {} records, {} bytes", records.len(), batch.size());
        }
        let r = self.log().append(&records);
        self.expect_append(r, batch.as_bytes());
    }

    fn append_batch(&mut self, input: &mut Input) {
        let kind = input.u8();
        let bytes: Vec<u8> = match kind % 4 {
            0 => {
                let records = self.records(input);
                let base = input.u64() as i64;
                let mut b = BatchBuilder::new()
                    .base_offset(base)
                    .partition_leader_epoch(input.u32() as i32)
                    .producer(
                        // A new producer id per batch (any sequence is taken from an unknown
                        // producer): the producer rules have their own tests.
                        (i64::from(input.u16()) << 32) | self.serial as i64,
                        input.u8().into(),
                        i32::from(input.u16()),
                    )
                    .transactional(kind & 0x10 != 0);
                if kind & 0x20 != 0 {
                    b = b.timestamp_type(TimestampType::LogAppendTime);
                }
                for r in &records {
                    b.push(r).expect("push");
                }
                match b.build() {
                    Ok(batch) => batch.as_bytes().to_vec(),
                    // A base offset too close to i64::MAX: the builder refuses, as it should.
                    Err(_) => return,
                }
            }
            1 => {
                let lod = input.below(5) as i32;
                let count = input.below(lod as u64 + 2) as i32;
                let body_len = input.below(64) as usize;
                let body: Vec<u8> = (0..body_len).map(|i| (i as u8) ^ kind).collect();
                write_batch(
                    &RawHeader {
                        base_offset: 0,
                        partition_leader_epoch: -1,
                        attributes: 1 + i16::from(input.u8() % 4),
                        last_offset_delta: lod,
                        base_timestamp: TS0,
                        max_timestamp: TS0 + i64::from(input.u8() as i8) * 1000,
                        producer_id: -1,
                        producer_epoch: -1,
                        base_sequence: -1,
                        record_count: count,
                    },
                    &body,
                )
            }
            2 => {
                // Gaps between offsets (as left by compaction), maybe a control batch.
                let n = 1 + input.below(4) as i64;
                let mut body = Vec::new();
                let mut delta = 0i64;
                let mut max_ts = i64::MIN;
                for i in 0..n {
                    if i > 0 {
                        delta += 1 + input.below(3) as i64;
                    }
                    let ts_delta = i64::from(input.u8() as i8) * 10;
                    max_ts = max_ts.max(TS0 + ts_delta);
                    self.serial += 1;
                    let value = format!("gap-{}", self.serial).into_bytes();
                    let mut rec = vec![0u8];
                    put_varint(&mut rec, ts_delta);
                    put_varint(&mut rec, delta);
                    put_varint(&mut rec, -1);
                    put_varint(&mut rec, value.len() as i64);
                    rec.extend_from_slice(&value);
                    put_varint(&mut rec, 0);
                    put_varint(&mut body, rec.len() as i64);
                    body.extend_from_slice(&rec);
                }
                let extra = input.below(3) as i64;
                let attributes = if kind & 0x10 != 0 { 0x30 } else { 0 };
                write_batch(
                    &RawHeader {
                        base_offset: 0,
                        partition_leader_epoch: 0,
                        attributes,
                        last_offset_delta: (delta + extra) as i32,
                        base_timestamp: TS0,
                        max_timestamp: max_ts,
                        producer_id: (5 << 32) | self.serial as i64,
                        producer_epoch: 0,
                        base_sequence: 0,
                        record_count: n as i32,
                    },
                    &body,
                )
            }
            _ => {
                // A corrupt batch: rejected, the log unchanged.
                let records = self.records(input);
                let mut b = BatchBuilder::new();
                for r in &records {
                    b.push(r).expect("push");
                }
                let mut bytes = b.build().expect("build").as_bytes().to_vec();
                let at = 21 + input.below((bytes.len() - 21) as u64) as usize;
                bytes[at] ^= 1 | input.u8();
                // (A flip in a header field the header check covers is not what this tests.)
                let Ok(batch) = RecordBatch::parse_header_only(Bytes::from(bytes)) else {
                    return;
                };
                if verbose() {
                    eprintln!("append corrupt batch");
                }
                match self.log().append_batch(&batch) {
                    Err(Error::InvalidBatch(_)) => {}
                    other => panic!("append_batch of a corrupt batch: {other:?}"),
                }
                return;
            }
        };
        if verbose() {
            eprintln!("append_batch kind {} ({} bytes)", kind % 4, bytes.len());
        }
        let batch = RecordBatch::parse(Bytes::from(bytes.clone())).expect("a valid batch");
        let r = self.log().append_batch(&batch);
        if let Err(Error::Producer(
            partlog::log::producer_state::ProducerError::ControlBatchFromClient { .. },
        )) = r
        {
            // A client may not append a control batch (issue 20, as Kafka's validator): the log
            // is unchanged.
            assert!(kind % 4 == 2 && kind & 0x10 != 0, "refused a data batch");
            return;
        }
        if kind % 4 == 1 {
            // Records that are not a stream of their codec: a client's append inflates and
            // checks them (Kafka's validator), and refuses them with the log unchanged.
            if let Err(Error::InvalidRecords { .. }) = r {
                return;
            }
        }
        self.expect_append(r, &bytes);
    }

    fn truncate(&mut self, input: &mut Input) {
        let span = (self.leo - self.lso + 3) as u64;
        let to = self.lso - 1 + input.below(span) as i64;
        if verbose() {
            eprintln!("truncate_to({to})");
        }
        let r = self.log().truncate_to(to);
        if to >= self.leo {
            assert_eq!(r.expect("truncate past the end"), self.leo);
            return;
        }
        if to < self.lso {
            assert!(
                matches!(r, Err(Error::OffsetOutOfRange { .. })),
                "truncate below the start: {r:?}"
            );
            return;
        }
        let new_leo = self
            .batches
            .iter()
            .find(|b| b.last >= to)
            .map_or(to, |b| b.base.min(to));
        let got = r.unwrap_or_else(|e| panic!("truncate_to({to}): {e}"));
        if new_leo < self.lso {
            // The batch holding the start offset would go, and the start with it: the log is
            // emptied and restarts at `to` instead (the start never decreases), checkpointed.
            assert_eq!(
                got, to,
                "truncate_to({to}) inside the batch holding the start"
            );
            self.batches.clear();
            self.leo = to;
            self.lso = to;
            self.lso_checkpoint = to;
            self.flushed = to;
            return;
        }
        assert_eq!(got, new_leo, "truncate_to({to})");
        self.batches.retain(|b| b.base < new_leo);
        self.leo = new_leo;
        self.flushed = self.flushed.min(new_leo);
    }

    fn delete_records(&mut self, input: &mut Input) {
        let span = (self.leo - self.lso + 3) as u64;
        let before = self.lso - 1 + input.below(span) as i64;
        if verbose() {
            eprintln!("delete_records({before})");
        }
        let bases = self.log().segment_base_offsets();
        let r = self.log().delete_records(before);
        if before > self.leo {
            assert!(
                matches!(r, Err(Error::OffsetOutOfRange { .. })),
                "delete_records past the end: {r:?}"
            );
            return;
        }
        let got = r.unwrap_or_else(|e| panic!("delete_records({before}): {e}"));
        if before <= self.lso {
            // Documented: a smaller offset changes nothing (no segment goes either).
            assert_eq!(got, self.lso, "delete_records({before})");
            assert_eq!(self.log().segment_base_offsets(), bases);
            return;
        }
        self.lso = before;
        // Written before any segment goes.
        self.lso_checkpoint = before;
        assert_eq!(got, self.lso, "delete_records({before})");
        let mut expect = Expect::new(self, bases);
        expect.by_start_offset();
        self.after_deletion(expect);
    }

    fn retention(&mut self, tick: bool) {
        let now = self.clock.now_ms();
        if verbose() {
            eprintln!("{} at {now}", if tick { "tick" } else { "apply_retention" });
        }
        let bases = self.log().segment_base_offsets();
        let r = if tick {
            self.log().tick(now)
        } else {
            self.log().apply_retention(now)
        };
        let report = r.unwrap_or_else(|e| panic!("retention: {e}"));
        if tick && self.config.flush_ms.is_some() {
            // tick may have flushed; the recovery point says how far.
            self.flushed = self.flushed.max(self.log().recovery_point());
        }
        let mut expect = Expect::new(self, bases);
        expect.by_start_offset();
        expect.by_size(self.config.retention_bytes);
        expect.by_time(self.config.retention_ms, now);
        let deleted: Vec<i64> = report.deleted.iter().map(|d| d.base_offset).collect();
        if expect.exact {
            assert_eq!(deleted, expect.deleted, "segments deleted by retention");
        }
        self.after_deletion(expect);
        assert_eq!(report.log_start_offset, self.lso);
    }

    /// Checks the segments left after a deletion and drops the deleted batches from the model.
    fn after_deletion(&mut self, expect: Expect) {
        let bases = self.log().segment_base_offsets();
        if expect.exact {
            assert_eq!(bases, expect.bases, "segments left");
        } else {
            // Some segment's age is its file's mtime: only check that a prefix went.
            assert!(expect.bases.ends_with(&bases) || bases == [self.leo]);
        }
        let first = bases[0];
        self.batches.retain(|b| b.base >= first);
        let lso_before = self.lso;
        self.lso = self.lso.max(first).min(self.leo);
        if self.lso > lso_before {
            // Retention checkpoints the start offset when it moves it.
            self.lso_checkpoint = self.lso;
        }
    }

    fn check_offsets(&self) {
        let log = self.log();
        assert_eq!(log.log_end_offset(), self.leo, "log end offset");
        assert_eq!(log.log_start_offset(), self.lso, "log start offset");
        let rp = log.recovery_point();
        assert!(
            rp >= self.flushed && rp <= self.leo,
            "recovery point {rp} outside [{}, {}]",
            self.flushed,
            self.leo
        );
    }
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let config = config(&mut input);
    if verbose() {
        eprintln!("{config:?}");
    }
    let mut s = State {
        dir: super::tempdir(),
        config,
        clock: ManualClock::new(TS0),
        log: None,
        batches: Vec::new(),
        lso: 0,
        leo: 0,
        flushed: 0,
        lso_checkpoint: 0,
        serial: 0,
    };
    s.open();
    let mut ops = 0;
    // True while the log is as the last full check saw it.
    let mut checked = false;
    while !input.is_empty() && ops < MAX_OPS {
        ops += 1;
        let op = input.u8();
        match op % 15 {
            0 | 1 => s.append(&mut input),
            2 => s.append_batch(&mut input),
            3 => {
                let span = (s.leo - s.lso + 3) as u64;
                let from = s.lso - 1 + input.below(span) as i64;
                let max_bytes = match input.u8() % 4 {
                    0 => 1,
                    1 => usize::MAX,
                    _ => usize::from(input.u16() % 5000),
                };
                if verbose() {
                    eprintln!("read({from}, {max_bytes})");
                }
                let bases = s.log().segment_base_offsets();
                let _ = check_read(s.log(), &s.batches, &bases, s.lso, s.leo, from, max_bytes);
            }
            4 => {
                let ts = match input.u8() % 3 {
                    0 => TS0 + i64::from(input.u16() as i16) * 10,
                    1 => {
                        let all = super::model::interesting_timestamps(&s.batches);
                        all[input.below(all.len() as u64) as usize]
                    }
                    _ => input.u64() as i64,
                };
                if verbose() {
                    eprintln!(
                        "offset_for_timestamp({ts}) want {:?}",
                        brute_offset_for_timestamp(&s.batches, s.lso, s.leo, ts)
                    );
                }
                check_time(s.log(), &s.batches, s.lso, s.leo, ts);
            }
            5 => {
                if verbose() {
                    eprintln!("roll");
                }
                s.log().roll_now().expect("roll");
            }
            6 => s.truncate(&mut input),
            7 => {
                if verbose() {
                    eprintln!("flush");
                }
                s.log().flush().expect("flush");
                s.flushed = s.leo;
            }
            8 => {
                if verbose() {
                    eprintln!("close + open");
                }
                s.log.take().expect("open").close().expect("close");
                s.lso_checkpoint = s.lso;
                s.open();
                assert!(s.log().open_report().clean, "a closed log opens clean");
                s.flushed = s.leo;
            }
            9 => {
                if verbose() {
                    eprintln!("crash + open");
                }
                s.log.take().expect("open").abandon();
                s.open();
                let report = s.log().open_report().clone();
                assert!(!report.clean);
                // (Regression: truncate_to once moved the log start offset back without
                // checkpointing it, and a crash brought the old one back:
                // regressions/log_ops/truncate_below_log_start_then_crash*.bin.)
                assert!(
                    s.lso_checkpoint <= s.lso,
                    "model: checkpoint above the start offset"
                );
                // Abandon keeps the page cache: everything appended survives; flushed data
                // would survive even a power loss.
                assert!(s.log().log_end_offset() >= s.flushed, "flushed data lost");
                assert_eq!(
                    report.truncated, None,
                    "recovery cut an intact log: {report:?}"
                );
                s.flushed = s.leo;
            }
            10 => {
                let ms = i64::from(input.u16()) * 100;
                if verbose() {
                    eprintln!("clock += {ms}");
                }
                s.clock.advance(ms);
            }
            12 => s.delete_records(&mut input),
            13 | 14 => s.retention(op % 15 == 14),
            _ => {
                if verbose() {
                    eprintln!(
                        "full check{}",
                        if checked {
                            " (skipped: done, log unchanged)"
                        } else {
                            ""
                        }
                    );
                }
                if !checked {
                    check_log(s.log(), &s.batches, s.lso, s.leo, true);
                }
            }
        }
        // A full check of a log that no operation changed since the last one would make the same
        // reads with the same answers (reads, time lookups and the clock change nothing a read
        // sees): it is skipped. Inputs that repeat checks only to double edge counts (new
        // features for libFuzzer) cost one check, not several.
        checked = matches!(op % 15, 3 | 4 | 10 | 11) && (checked || op % 15 == 11);
        s.check_offsets();
    }
    if !checked {
        check_log(s.log(), &s.batches, s.lso, s.leo, false);
    }
    s.log.take().expect("open").close().expect("close");
    s.open();
    check_log(s.log(), &s.batches, s.lso, s.leo, false);
}

/// The segments retention must leave, computed from the model by Kafka's rules (see
/// `src/log/retention.rs`): each rule deletes the longest prefix of segments it allows, never the
/// empty active segment; if every segment goes, an empty one is rolled at the log end offset
/// first.
struct Expect {
    /// Base offsets of the segments, and for each its size and largest timestamp.
    bases: Vec<i64>,
    sizes: Vec<u64>,
    largest: Vec<i64>,
    leo: i64,
    lso: i64,
    deleted: Vec<i64>,
    /// False once a segment's age depends on its file's mtime (no timestamp in it).
    exact: bool,
}

impl Expect {
    fn new(s: &State, bases: Vec<i64>) -> Expect {
        let seg_of = |b: &MBatch| bases.partition_point(|&x| x <= b.base) - 1;
        let mut sizes = vec![0u64; bases.len()];
        let mut largest = vec![-1i64; bases.len()];
        for b in s.batches.iter().filter(|b| b.base >= bases[0]) {
            let i = seg_of(b);
            sizes[i] += b.size() as u64;
            largest[i] = largest[i].max(b.max_timestamp);
        }
        Expect {
            bases,
            sizes,
            largest,
            leo: s.leo,
            lso: s.lso,
            deleted: Vec::new(),
            exact: true,
        }
    }

    fn end(&self, i: usize) -> i64 {
        self.bases.get(i + 1).copied().unwrap_or(self.leo)
    }

    /// Deletes the longest prefix for which `doomed(self, i)` holds.
    fn delete_prefix(&mut self, mut doomed: impl FnMut(&mut Expect, usize) -> Option<bool>) {
        let mut n = 0;
        while n < self.bases.len() {
            if n + 1 == self.bases.len() && self.sizes[n] == 0 {
                break;
            }
            match doomed(self, n) {
                Some(true) => n += 1,
                Some(false) => break,
                None => {
                    self.exact = false;
                    break;
                }
            }
        }
        if n == 0 {
            return;
        }
        if n == self.bases.len() {
            self.bases.push(self.leo);
            self.sizes.push(0);
            self.largest.push(-1);
        }
        self.deleted.extend(self.bases.drain(..n));
        self.sizes.drain(..n);
        self.largest.drain(..n);
        self.lso = self.lso.max(self.bases[0]);
    }

    fn by_start_offset(&mut self) {
        let lso = self.lso;
        self.delete_prefix(|e, i| Some(e.end(i) <= lso));
    }

    fn by_size(&mut self, retention_bytes: i64) {
        if retention_bytes < 0 {
            return;
        }
        let mut excess = self.sizes.iter().sum::<u64>() as i64 - retention_bytes;
        self.delete_prefix(|e, i| {
            let size = e.sizes[i] as i64;
            let go = excess - size >= 0;
            if go {
                excess -= size;
            }
            Some(go)
        });
    }

    fn by_time(&mut self, retention_ms: i64, now: i64) {
        if retention_ms < 0 {
            return;
        }
        self.delete_prefix(|e, i| {
            let largest = e.largest[i];
            // No timestamp: the file's mtime counts, which the model does not know.
            (largest >= 0).then(|| now.saturating_sub(largest) > retention_ms)
        });
    }
}
