//! What a log must hold, as plain data, and checks of a `Log` against it: shared by
//! `index_load`, `segment_recover` and `log_ops`.

use bytes::Bytes;
use partlog::batch::{Record, RecordBatch, TimestampType};
use partlog::{Error, Log};

/// One batch as the log must store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MBatch {
    /// The exact bytes on disk (base offset as assigned by the log).
    pub bytes: Bytes,
    pub base: i64,
    pub last: i64,
    pub max_timestamp: i64,
    pub log_append_time: bool,
    /// The records, `None` for a batch whose records do not decode (the generators' compressed
    /// batches, whose records section is no stream of their codec).
    pub records: Option<Vec<Record>>,
}

impl MBatch {
    /// The model of a stored batch; `bytes` must pass `parse_crc_only`.
    pub fn from_bytes(bytes: Bytes) -> MBatch {
        let b = RecordBatch::parse_crc_only(bytes).expect("a model batch is a valid batch");
        let records = b
            .records()
            .ok()
            .and_then(|it| it.collect::<Result<Vec<_>, _>>().ok());
        MBatch {
            base: b.base_offset(),
            last: b.last_offset(),
            max_timestamp: b.max_timestamp(),
            log_append_time: b.timestamp_type() == TimestampType::LogAppendTime,
            records,
            bytes: b.into_bytes(),
        }
    }

    pub fn next(&self) -> i64 {
        self.last + 1
    }

    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

/// The segment holding `offset` among `bases` (sorted): index of the last base `<= offset`.
fn segment_of(bases: &[i64], offset: i64) -> Option<usize> {
    bases.partition_point(|&b| b <= offset).checked_sub(1)
}

/// Kafka's ListOffsets by timestamp, by brute force over the model: the first batch (holding an
/// offset at or after the log start offset) whose `maxTimestamp` reaches `ts`; in it, the first
/// record at or after the log start offset with a timestamp `>= ts`, or the batch's base offset
/// (clamped to the log start offset) when its records are all stamped with the append time. A
/// batch whose records all fall short is passed over. `Err` when the search reaches a batch
/// whose records do not decode (partlog must call it corrupt).
pub fn brute_offset_for_timestamp(
    batches: &[MBatch],
    lso: i64,
    leo: i64,
    ts: i64,
) -> Result<Option<i64>, ()> {
    for b in batches {
        if b.last < lso || b.max_timestamp < ts {
            continue;
        }
        let found = match &b.records {
            _ if b.log_append_time => Some(b.base.max(lso)),
            Some(records) => records
                .iter()
                .find(|r| r.offset >= lso && r.timestamp >= ts)
                .map(|r| r.offset),
            None => return Err(()),
        };
        if let Some(offset) = found {
            return Ok((offset < leo).then_some(offset));
        }
    }
    Ok(None)
}

/// Timestamps worth asking about: every record's and batch's, their neighbours, the extremes.
pub fn interesting_timestamps(batches: &[MBatch]) -> Vec<i64> {
    let mut ts = vec![i64::MIN, -1, 0, i64::MAX];
    for b in batches {
        ts.push(b.max_timestamp);
        for r in b.records.iter().flatten() {
            ts.push(r.timestamp);
        }
    }
    let mut out: Vec<i64> = ts
        .iter()
        .flat_map(|&t| [t.saturating_sub(1), t, t.saturating_add(1)])
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Checks `log.read(from, max_bytes)` against the model: an out-of-range error outside
/// `[lso, leo]`; otherwise whole batches from the one holding `from` (or the first after it),
/// consecutive, from one segment, at least one, as many as fit in `max_bytes`, byte for byte.
/// Returns the read's next offset (`None` for an out-of-range read).
pub fn check_read(
    log: &Log,
    batches: &[MBatch],
    bases: &[i64],
    lso: i64,
    leo: i64,
    from: i64,
    max_bytes: usize,
) -> Option<i64> {
    check_read_record(log, batches, lso, leo, from);
    let r = log.read(from, max_bytes);
    if from < lso || from > leo {
        match r {
            Err(Error::OffsetOutOfRange {
                requested,
                log_start_offset,
                log_end_offset,
            }) => {
                assert_eq!(
                    (requested, log_start_offset, log_end_offset),
                    (from, lso, leo)
                );
            }
            other => panic!("read({from}) outside [{lso}, {leo}]: {other:?}"),
        }
        return None;
    }
    let r = r.unwrap_or_else(|e| panic!("read({from}, {max_bytes}) in [{lso}, {leo}]: {e}"));
    assert_eq!((r.log_start_offset, r.log_end_offset), (lso, leo));
    // The first batch ending at or after `from` (the model is in offset order, checked by
    // `check_log`: a binary search, not a walk over every batch on every read).
    let first = Some(batches.partition_point(|b| b.last < from))
        .filter(|&i| batches.get(i).is_some_and(|b| b.base < leo));
    let Some(i) = first.filter(|_| from < leo) else {
        assert!(
            r.is_empty(),
            "read({from}) past the last batch returned data"
        );
        assert_eq!(r.next_offset, if from < leo { leo } else { from });
        return Some(r.next_offset);
    };
    assert!(
        !r.is_empty(),
        "read({from}) returned nothing, batch {i} holds it"
    );
    let seg = segment_of(bases, batches[i].base);
    let mut size = 0usize;
    for (k, got) in r.batches.iter().enumerate() {
        let want = batches
            .get(i + k)
            .unwrap_or_else(|| panic!("read({from}) returned more batches than the model has"));
        assert_eq!(
            got.as_bytes(),
            &want.bytes,
            "read({from}, {max_bytes}): batch {k} (model batch at {})",
            want.base
        );
        assert_eq!(
            segment_of(bases, want.base),
            seg,
            "a read stays in one segment"
        );
        // `r.bytes` is the batches back to back: this batch's bytes are at `size`.
        assert_eq!(
            r.bytes.get(size..size + want.size()),
            Some(&want.bytes[..]),
            "read({from}, {max_bytes}): the read's bytes at batch {k}"
        );
        size += want.size();
    }
    let k = r.batches.len();
    assert!(k == 1 || size <= max_bytes, "read past max_bytes");
    if let Some(next) = batches.get(i + k).filter(|b| b.base < leo) {
        if segment_of(bases, next.base) == seg {
            assert!(
                size + next.size() > max_bytes,
                "read({from}, {max_bytes}) stopped before a batch that fits"
            );
        }
    }
    assert_eq!(r.bytes.len(), size, "the read's bytes are its batches'");
    assert_eq!(r.next_offset, batches[i + k - 1].next());
    Some(r.next_offset)
}

/// `read_record(offset)` against the model: out of range exactly as `read` is; `None` at the log
/// end offset and in offset gaps; `Corrupt` inside a batch whose records do not decode; otherwise
/// the model's record, in the model batch's exact bytes.
pub fn check_read_record(log: &Log, batches: &[MBatch], lso: i64, leo: i64, offset: i64) {
    let r = log.read_record(offset);
    if offset < lso || offset > leo {
        match r {
            Err(Error::OffsetOutOfRange {
                requested,
                log_start_offset,
                log_end_offset,
            }) => assert_eq!(
                (requested, log_start_offset, log_end_offset),
                (offset, lso, leo)
            ),
            other => panic!("read_record({offset}) outside [{lso}, {leo}]: {other:?}"),
        }
        return;
    }
    // The batch holding `offset`, by binary search (the model is in offset order).
    let holder = batches
        .get(batches.partition_point(|b| b.last < offset))
        .filter(|b| b.base <= offset && offset <= b.last && b.base < leo);
    let found = match (offset == leo, holder) {
        (true, _) | (false, None) => {
            assert!(matches!(r, Ok(None)), "read_record({offset}): {r:?}");
            return;
        }
        (false, Some(b)) => b,
    };
    let Some(records) = &found.records else {
        assert!(
            matches!(r, Err(Error::Corrupt { .. })),
            "read_record({offset}) in a batch whose records do not decode: {r:?}"
        );
        return;
    };
    match (records.iter().find(|rec| rec.offset == offset), r) {
        (None, Ok(None)) => {}
        (Some(want), Ok(Some(got))) => {
            assert_eq!(got.offset(), offset);
            assert!(
                got.record() == *want,
                "read_record({offset}) returns the record"
            );
            assert_eq!(
                got.batch().as_bytes(),
                &found.bytes[..],
                "in its batch's bytes"
            );
        }
        (want, r) => panic!("read_record({offset}): the model has {want:?}, the log {r:?}"),
    }
}

/// Reads the whole log, from the log start offset to the log end offset, in steps of
/// `max_bytes`, checking each read against the model.
pub fn check_scan(log: &Log, batches: &[MBatch], lso: i64, leo: i64, max_bytes: usize) {
    let bases = log.segment_base_offsets();
    let mut next = lso;
    let mut steps = 0;
    while next < leo {
        // (check_read's own read: reading again for the next offset doubled the scans' cost.)
        let next_offset =
            check_read(log, batches, &bases, lso, leo, next, max_bytes).expect("read in range");
        assert!(next_offset > next, "read({next}) made no progress");
        next = next_offset;
        steps += 1;
        assert!(steps <= batches.len() + 1, "scan does not end");
    }
    assert_eq!(next, leo);
}

/// Everything about `log` that the model fixes: offsets, every read start, a scan, and time
/// lookups.
pub fn check_log(log: &Log, batches: &[MBatch], lso: i64, leo: i64, every_offset: bool) {
    assert_eq!(log.log_end_offset(), leo, "log end offset");
    assert_eq!(log.log_start_offset(), lso, "log start offset");
    assert!(
        batches.iter().all(|b| b.base <= b.last)
            && batches.windows(2).all(|w| w[0].last < w[1].base),
        "the model's batches are in offset order (check_read's binary searches need it)"
    );
    let bases = log.segment_base_offsets();
    assert!(!bases.is_empty());
    assert!(bases.windows(2).all(|w| w[0] < w[1]), "segments in order");
    assert!(
        bases[0] <= lso,
        "the first segment holds the log start offset"
    );
    for b in batches.iter().filter(|b| b.base < leo) {
        // A batch lies in one segment.
        let s = segment_of(&bases, b.base).expect("a segment holds each batch");
        if let Some(&next_base) = bases.get(s + 1) {
            assert!(b.last < next_base, "batch {} crosses a segment", b.base);
        }
    }
    let total: u64 = batches
        .iter()
        .filter(|b| b.base >= bases[0])
        .map(|b| b.size() as u64)
        .sum();
    assert_eq!(log.size(), total, "log size");
    check_scan(log, batches, lso, leo, usize::MAX);
    check_scan(log, batches, lso, leo, 1);
    if every_offset {
        for from in lso.saturating_sub(1)..=leo.saturating_add(1) {
            let _ = check_read(log, batches, &bases, lso, leo, from, 300);
        }
    }
    for ts in interesting_timestamps(batches) {
        check_time(log, batches, lso, leo, ts);
    }
}

/// `offset_for_timestamp(ts)` against the brute force answer.
pub fn check_time(log: &Log, batches: &[MBatch], lso: i64, leo: i64, ts: i64) {
    let got = log.offset_for_timestamp(ts);
    let Ok(want) = brute_offset_for_timestamp(batches, lso, leo, ts) else {
        assert!(
            matches!(got, Err(Error::Corrupt { .. })),
            "offset_for_timestamp({ts}) reaching records that do not decode: {got:?}"
        );
        return;
    };
    let got = got.unwrap_or_else(|e| panic!("offset_for_timestamp({ts}): {e}"));
    // (Regression: partlog once clamped an answer found below the log start offset up to it:
    // regressions/log_ops/offset_for_timestamp_below_log_start.bin.)
    assert_eq!(got, want, "offset_for_timestamp({ts})");
}
