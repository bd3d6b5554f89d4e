//! `batch_decode`: arbitrary bytes into the batch parsers, the batch walker and the record
//! iterator.
//!
//! The input is run twice: as it is, and "fixed up" (its `batchLength` set to the input's length
//! minus 12 and its CRC recomputed), so that mutations reach the record decoder instead of
//! dying at the CRC check. For each, it asserts:
//!
//! 1. The three parsers agree: `parse` accepts ⇒ `parse_crc_only` accepts ⇒ `parse_header_only`
//!    accepts, all with the same header; an uncompressed batch that passes the CRC is accepted by
//!    `parse` exactly when `validate_records` succeeds, and exactly when an independent reference
//!    decoder (below, written from the format description and the documented rules) accepts it.
//! 2. When `parse` accepts: `records()` yields exactly `recordCount` records and no error, the
//!    same records (offset, timestamp, attributes, key, value, headers) as the reference decoder,
//!    and for a LogAppendTime batch every timestamp is `maxTimestamp`. When `parse` rejects an
//!    uncompressed batch whose CRC passes, `records()` ends in an error.
//! 3. Re-encoding: the records pushed into a `BatchBuilder` with the batch's base offset, leader
//!    epoch, producer fields, timestamp type and transactional flag build a batch that `parse`
//!    accepts and that holds the same record contents (timestamp, key, value, headers) at offsets
//!    `base, base+1, ...`. The batch is *canonical* when: uncompressed, not control, no attribute
//!    bits but timestamp type and transactional, CreateTime, every record's attributes byte 0,
//!    offset deltas exactly `0..n-1` with `lastOffsetDelta = n-1`, `baseTimestamp` the first
//!    record's timestamp and `maxTimestamp` the largest. A canonical batch re-encodes to the
//!    same bytes whenever it is as short as the re-encoding (its varints are then all minimal);
//!    otherwise it must be strictly longer (a non-minimal varint). `recordCount = 0` cannot be
//!    re-encoded (`BatchError::Empty`), and a builder may refuse only with
//!    `TimestampOverflow` when two timestamps are more than i64 apart.
//! 4. `batches()` over the input yields consecutive batches whose positions add up, each one
//!    equal to `parse_crc_only` of its bytes (and checked as in 2-3 when `parse` accepts it), and
//!    stops at the first bad one with `position()` on it.
//!
//! Nothing may panic, whatever the bytes.

use bytes::Bytes;
use partlog::batch::{
    batches, BatchBuilder, BatchError, Record, RecordBatch, SimpleRecord, TimestampType,
    CONTROL_FLAG_MASK, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_FLAG_MASK,
};

use super::{record_content, records_of};

/// Runs every check on `data`.
pub fn run(data: &[u8]) {
    check_bytes(Bytes::copy_from_slice(data));
    if data.len() >= 61 {
        let mut fixed = data.to_vec();
        let batch_length = i32::try_from(data.len() - 12).unwrap_or(i32::MAX);
        fixed[8..12].copy_from_slice(&batch_length.to_be_bytes());
        super::fix_crc(&mut fixed);
        check_bytes(Bytes::from(fixed));
    }
}

fn check_bytes(bytes: Bytes) {
    check_one(&bytes);
    check_walk(&bytes);
}

/// Checks 1-3 on `bytes` taken as exactly one batch.
fn check_one(bytes: &Bytes) {
    let full = RecordBatch::parse(bytes.clone());
    let crc_only = RecordBatch::parse_crc_only(bytes.clone());
    let header_only = RecordBatch::parse_header_only(bytes.clone());
    if let Ok(b) = &full {
        let c = crc_only
            .as_ref()
            .expect("parse accepts ⇒ parse_crc_only accepts");
        assert_eq!(b.header(), c.header());
    }
    if let Ok(c) = &crc_only {
        let h = header_only
            .as_ref()
            .expect("parse_crc_only accepts ⇒ parse_header_only accepts");
        assert_eq!(c.header(), h.header());
        assert_eq!(c.size(), bytes.len());
        assert_eq!(c.header().magic, 2);
        if c.header().codec() == 0 {
            let validated = c.validate_records();
            assert_eq!(validated.is_ok(), full.is_ok(), "validate_records vs parse");
            let reference = reference_decode(bytes);
            assert_eq!(
                reference.is_ok(),
                full.is_ok(),
                "reference decoder {:?} vs parse {:?}",
                reference.as_ref().err(),
                full.as_ref().err()
            );
            check_views(c);
            if full.is_err() {
                let mut it = c.records().expect("uncompressed");
                assert!(
                    it.by_ref().any(|r| r.is_err()),
                    "records() of a batch parse rejects must end in an error"
                );
                assert!(it.next().is_none(), "the iterator stops after an error");
            }
        } else {
            // A compressed batch: parse accepts it after its CRC; validate_records accepts it
            // exactly when its records decompress and every one of them reads.
            assert!(full.is_ok(), "a compressed batch is accepted after its CRC");
            let records = c.records().map(|it| it.collect::<Result<Vec<_>, _>>());
            assert_eq!(
                matches!(records, Ok(Ok(_))),
                c.validate_records().is_ok(),
                "validate_records vs records() of a compressed batch: {records:?}"
            );
            assert!(!matches!(
                records,
                Err(BatchError::UnsupportedCompression { .. })
            ));
            if matches!(records, Ok(Ok(_))) {
                check_views(c);
            }
        }
    }
    if let Ok(b) = &full {
        check_accepted(b);
    }
}

/// Check 4: the walker.
fn check_walk(bytes: &Bytes) {
    let mut it = batches(bytes.clone());
    let mut expected = 0usize;
    let mut count = 0usize;
    loop {
        match it.next() {
            None => {
                assert_eq!(expected, bytes.len(), "walk ended early without an error");
                assert_eq!(it.position(), bytes.len());
                break;
            }
            Some(Ok((pos, batch))) => {
                assert_eq!(pos, expected);
                let end = pos + batch.size();
                assert!(end <= bytes.len());
                assert_eq!(batch.as_bytes(), &bytes[pos..end]);
                let again = RecordBatch::parse_crc_only(batch.as_bytes().clone())
                    .expect("a walked batch passes parse_crc_only");
                assert_eq!(again.header(), batch.header());
                if count < 8 {
                    if let Ok(full) = RecordBatch::parse(batch.as_bytes().clone()) {
                        check_accepted(&full);
                    }
                }
                expected = end;
                count += 1;
            }
            Some(Err(_)) => {
                assert_eq!(it.position(), expected, "an error is reported at its batch");
                assert!(it.next().is_none(), "the walk stops after an error");
                break;
            }
        }
    }
}

/// Check 2b (the borrowed path), on an uncompressed batch whose CRC passed: `record_views()`
/// yields exactly what `records()` yields, records and error; if every record is valid,
/// `record_at(o)` is the record with offset `o` for each one, `None` in the offset gaps, and the
/// batch positioned there iterates the rest.
fn check_views(batch: &RecordBatch) {
    let owned: Vec<_> = batch.records().expect("uncompressed").collect();
    let views: Vec<_> = batch.record_views().expect("uncompressed").collect();
    assert_eq!(
        owned.len(),
        views.len(),
        "record_views and records yield as many"
    );
    for (o, v) in owned.iter().zip(&views) {
        match (o, v) {
            (Ok(o), Ok(v)) => assert!(v == o, "record_views and records agree"),
            (Err(a), Err(b)) => assert_eq!(a, b, "record_views and records fail alike"),
            _ => panic!("record_views {v:?} vs records {o:?}"),
        }
    }
    if !owned.iter().all(Result::is_ok) {
        return;
    }
    let mut expected = owned.iter().flatten().peekable();
    let last = batch
        .last_offset()
        .min(batch.base_offset().saturating_add(256));
    for offset in batch.base_offset()..=last {
        let found = batch.record_at(offset).expect("record_at of a valid batch");
        match expected.next_if(|r| r.offset == offset) {
            Some(r) => {
                let view = found.expect("record_at finds each record");
                assert!(view == *r, "record_at returns the record");
                let p = batch
                    .clone()
                    .into_positioned(offset)
                    .expect("valid")
                    .expect("found");
                let rest = p
                    .records()
                    .map(|v| v.expect("valid").offset())
                    .collect::<Vec<_>>();
                let want = owned
                    .iter()
                    .flatten()
                    .map(|r| r.offset)
                    .filter(|&o| o >= offset);
                assert_eq!(
                    rest,
                    want.collect::<Vec<_>>(),
                    "positioned batch iterates the rest"
                );
            }
            None => assert!(found.is_none(), "no record in an offset gap"),
        }
    }
}

/// Checks 2-3 on a batch `parse` accepted.
fn check_accepted(batch: &RecordBatch) {
    let h = *batch.header();
    if h.codec() != 0 {
        return;
    }
    let records = records_of(batch);
    assert_eq!(
        records.len(),
        h.record_count as usize,
        "recordCount records"
    );
    let reference = reference_decode(batch.as_bytes()).expect("reference accepts what parse does");
    assert_eq!(records, reference, "partlog and the reference decode alike");
    let log_append = batch.timestamp_type() == TimestampType::LogAppendTime;
    for (i, r) in records.iter().enumerate() {
        assert!(r.offset >= h.base_offset && r.offset <= batch.last_offset());
        if i > 0 {
            assert!(r.offset > records[i - 1].offset);
        }
        if log_append {
            assert_eq!(r.timestamp, h.max_timestamp);
        }
    }

    // Re-encode.
    let mut builder = BatchBuilder::new()
        .base_offset(h.base_offset)
        .partition_leader_epoch(h.partition_leader_epoch)
        .producer(h.producer_id, h.producer_epoch, h.base_sequence)
        .timestamp_type(batch.timestamp_type())
        .transactional(h.is_transactional());
    for r in &records {
        let simple = SimpleRecord {
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        };
        if let Err(e) = builder.push(&simple) {
            let first = records[0].timestamp;
            assert!(
                matches!(e, BatchError::TimestampOverflow { .. })
                    && r.timestamp.checked_sub(first).is_none(),
                "builder refused a record it decoded: {e:?}"
            );
            return;
        }
    }
    let rebuilt = match builder.build() {
        Ok(b) => b,
        Err(e) => {
            assert!(
                records.is_empty() && e == BatchError::Empty,
                "builder refused to build: {e:?}"
            );
            return;
        }
    };
    let again = RecordBatch::parse(rebuilt.as_bytes().clone()).expect("a rebuilt batch parses");
    let rh = again.header();
    let n = records.len() as i32;
    assert_eq!(rh.base_offset, h.base_offset);
    assert_eq!(rh.partition_leader_epoch, h.partition_leader_epoch);
    assert_eq!(
        (rh.producer_id, rh.producer_epoch, rh.base_sequence),
        (h.producer_id, h.producer_epoch, h.base_sequence)
    );
    assert_eq!(rh.record_count, n);
    assert_eq!(rh.last_offset_delta, n - 1);
    assert_eq!(again.timestamp_type(), batch.timestamp_type());
    assert_eq!(rh.is_transactional(), h.is_transactional());
    assert!(!rh.is_control());
    let re_records = records_of(&again);
    assert_eq!(re_records.len(), records.len());
    for (i, (a, b)) in records.iter().zip(&re_records).enumerate() {
        assert_eq!(b.offset, h.base_offset + i as i64);
        assert_eq!(b.attributes, 0);
        assert_eq!(record_content(a), record_content(b), "record {i}");
    }
    let max_ts = records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
    if !log_append {
        assert_eq!(rh.base_timestamp, records[0].timestamp);
        assert_eq!(rh.max_timestamp, max_ts);
    }

    let canonical = h.attributes & !(TIMESTAMP_TYPE_MASK | TRANSACTIONAL_FLAG_MASK) == 0
        && h.attributes & CONTROL_FLAG_MASK == 0
        && !log_append
        && records.iter().all(|r| r.attributes == 0)
        && records
            .iter()
            .enumerate()
            .all(|(i, r)| r.offset == h.base_offset + i as i64)
        && h.last_offset_delta == n - 1
        && h.base_timestamp == records[0].timestamp
        && h.max_timestamp == max_ts;
    if canonical {
        if batch.size() == again.size() {
            assert_eq!(
                batch.as_bytes(),
                again.as_bytes(),
                "a canonical batch re-encodes to the same bytes"
            );
        } else {
            assert!(
                batch.size() > again.size(),
                "a canonical batch can only be longer than its re-encoding (non-minimal varints)"
            );
        }
    }
}

// -------------------------------------------------------------------------------------------
// The reference decoder: the v2 record format and partlog's documented validation rules
// (`RecordBatch::validate_records`), written independently of partlog's decoder. It assumes a
// header that `parse_crc_only` accepted.

#[derive(Debug)]
pub struct RefError(&'static str);

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap_or([0; 8]))
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap_or([0; 4]))
}

/// Unsigned LEB128 of at most `max_len` bytes whose value fits `max_value`, then zigzag.
fn ref_varint(
    b: &[u8],
    pos: &mut usize,
    end: usize,
    max_len: usize,
    max_value: u128,
) -> Result<i64, RefError> {
    let mut raw: u128 = 0;
    for i in 0..max_len {
        if *pos >= end {
            return Err(RefError("varint truncated"));
        }
        let byte = b[*pos];
        *pos += 1;
        raw |= u128::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if raw > max_value {
                return Err(RefError("varint overflows"));
            }
            let raw = raw as u64;
            return Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64));
        }
    }
    Err(RefError("varint too long"))
}

fn vint(b: &[u8], pos: &mut usize, end: usize) -> Result<i64, RefError> {
    ref_varint(b, pos, end, 5, u128::from(u32::MAX))
}

fn vlong(b: &[u8], pos: &mut usize, end: usize) -> Result<i64, RefError> {
    ref_varint(b, pos, end, 10, u128::from(u64::MAX))
}

/// A length-prefixed field: `None` for length -1.
fn field(
    b: &Bytes,
    pos: &mut usize,
    end: usize,
    allow_null: bool,
) -> Result<Option<Bytes>, RefError> {
    let len = vint(b, pos, end)?;
    if len == -1 && allow_null {
        return Ok(None);
    }
    if len < 0 {
        return Err(RefError("negative length"));
    }
    let len = len as usize;
    if len > end - *pos {
        return Err(RefError("length past the record"));
    }
    let out = b.slice(*pos..*pos + len);
    *pos += len;
    Ok(Some(out))
}

/// Decodes every record of an uncompressed batch, or says why it is invalid.
pub fn reference_decode(b: &Bytes) -> Result<Vec<Record>, RefError> {
    let base_offset = be_i64(b, 0);
    let attributes = i16::from_be_bytes([b[21], b[22]]);
    let last_offset_delta = be_i32(b, 23);
    let base_timestamp = be_i64(b, 27);
    let max_timestamp = be_i64(b, 35);
    let record_count = be_i32(b, 57);
    let log_append = attributes & TIMESTAMP_TYPE_MASK != 0;
    let mut pos = 61;
    let mut out = Vec::new();
    let mut prev_delta: i64 = -1;
    while pos < b.len() {
        let len = vint(b, &mut pos, b.len())?;
        if len < 0 || len as usize > b.len() - pos {
            return Err(RefError("bad record length"));
        }
        let end = pos + len as usize;
        if pos >= end {
            return Err(RefError("record truncated"));
        }
        let rec_attributes = b[pos] as i8;
        pos += 1;
        let ts_delta = vlong(b, &mut pos, end)?;
        let offset_delta = vint(b, &mut pos, end)?;
        let key = field(b, &mut pos, end, true)?;
        let value = field(b, &mut pos, end, true)?;
        let count = vint(b, &mut pos, end)?;
        if count < 0 {
            return Err(RefError("negative header count"));
        }
        let mut headers = Vec::new();
        for _ in 0..count {
            let hk = field(b, &mut pos, end, false)?.unwrap_or_default();
            if std::str::from_utf8(&hk).is_err() {
                return Err(RefError("header key not UTF-8"));
            }
            let hv = field(b, &mut pos, end, true)?;
            headers.push(partlog::batch::Header { key: hk, value: hv });
        }
        if pos != end {
            return Err(RefError("record length disagrees with its fields"));
        }
        if offset_delta <= prev_delta || offset_delta > i64::from(last_offset_delta) {
            return Err(RefError("bad offset delta"));
        }
        prev_delta = offset_delta;
        let timestamp = if log_append {
            max_timestamp
        } else {
            base_timestamp
                .checked_add(ts_delta)
                .ok_or(RefError("timestamp overflow"))?
        };
        out.push(Record {
            offset: base_offset + offset_delta,
            timestamp,
            attributes: rec_attributes,
            key,
            value,
            headers,
        });
        if out.len() > record_count.max(0) as usize {
            return Err(RefError("more records than recordCount"));
        }
    }
    if out.len() != record_count.max(0) as usize {
        return Err(RefError("fewer records than recordCount"));
    }
    Ok(out)
}
