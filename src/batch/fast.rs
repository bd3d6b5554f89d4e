//! The tight record decoder: one pass over a record's fields that builds no values and no
//! errors, with the same checks as the detailed walk ([`super::record::Walk`]), which callers run
//! only to name an error once this one says no.
//!
//! Varints take a fast path for their one- and two-byte forms (values -64..=63 and
//! -8192..=8191: every delta, count and length of a record up to 8 KiB) before the general loop.
//!
//! Invariant of every function here: positions are checked against the bytes present with
//! `get`, so malformed input yields `None`, never a panic.

use std::ops::Range;

use super::varint::{zigzag_decode_i32, zigzag_decode_i64, MAX_VARINT_LEN, MAX_VARLONG_LEN};
use super::{BatchHeader, TimestampType, HEADER_SIZE};

/// The smallest possible header: key length 0 and value length -1.
pub(crate) const MIN_HEADER_SIZE: usize = 2;
/// The smallest possible record: length, attributes, timestamp delta, offset delta, key length,
/// value length, header count – one byte each.
pub(crate) const MIN_RECORD_SIZE: usize = 7;

/// The unsigned value of the varint at `*p`: at most `max` bytes, all before `end`, the last
/// permitted one without a continuation bit or any bit in `overflow` (the checks
/// [`super::varint::decode_varint`] / [`super::varint::decode_varlong`] make). Advances `*p`.
#[inline(always)]
fn unsigned(buf: &[u8], p: &mut usize, end: usize, max: usize, overflow: u8) -> Option<u64> {
    let s = buf.get(*p..end)?;
    match *s {
        [b0, ..] if b0 < 0x80 => {
            *p += 1;
            return Some(u64::from(b0));
        }
        // `max` is at least 5, so the second byte is never the last permitted one.
        [b0, b1, ..] if b1 < 0x80 => {
            *p += 2;
            return Some(u64::from(b0 & 0x7f) | u64::from(b1) << 7);
        }
        _ => {}
    }
    let mut v = 0u64;
    for i in 0..max {
        let b = *s.get(i)?;
        if i == max - 1 && b & (0x80 | overflow) != 0 {
            return None;
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            *p += i + 1;
            return Some(v);
        }
    }
    None
}

/// A zigzag varint (i32) at `*p`, before `end`.
#[inline(always)]
pub(crate) fn varint(buf: &[u8], p: &mut usize, end: usize) -> Option<i32> {
    let v = unsigned(buf, p, end, MAX_VARINT_LEN, 0x70)?;
    Some(zigzag_decode_i32(v as u32))
}

/// A zigzag varlong (i64) at `*p`, before `end`.
#[inline(always)]
pub(crate) fn varlong(buf: &[u8], p: &mut usize, end: usize) -> Option<i64> {
    let v = unsigned(buf, p, end, MAX_VARLONG_LEN, 0x7e)?;
    Some(zigzag_decode_i64(v))
}

/// A length-prefixed field at `*p`: `Some(None)` for -1 (null) if `nullable`, else its range,
/// which must end by `end`. `None` if malformed.
#[inline(always)]
fn field(buf: &[u8], p: &mut usize, end: usize, nullable: bool) -> Option<Option<Range<usize>>> {
    let len = varint(buf, p, end)?;
    if len == -1 && nullable {
        return Some(None);
    }
    let len = usize::try_from(len).ok()?;
    if len > end.checked_sub(*p)? {
        return None;
    }
    let start = *p;
    *p += len;
    Some(Some(start..*p))
}

/// One record's fields, as positions in its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) attributes: i8,
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i32,
    pub(crate) key: Option<Range<usize>>,
    pub(crate) value: Option<Range<usize>>,
    /// Number of headers.
    pub(crate) header_count: usize,
    /// The headers' bytes (after the header count), each one checked.
    pub(crate) headers: Range<usize>,
    /// Position just after the record.
    pub(crate) end: usize,
}

/// Decodes the record at `p` in `buf` (a whole batch) with every check the record walk makes on
/// a record by itself: varints in bounds and of legal length, the record's length equal to the
/// bytes its fields occupy, key, value and header value lengths >= -1 and within the record,
/// header counts and header key lengths >= 0, header keys UTF-8. What depends on the batch
/// (offset deltas increasing and within `lastOffsetDelta`, timestamps not overflowing) is the
/// caller's. `None` if any check fails.
#[inline(always)]
pub(crate) fn decode_fields(buf: &[u8], mut p: usize) -> Option<Fields> {
    let len = usize::try_from(varint(buf, &mut p, buf.len())?).ok()?;
    if len > buf.len() - p {
        return None;
    }
    let end = p + len;
    if p >= end {
        return None;
    }
    let attributes = *buf.get(p)? as i8;
    p += 1;
    let timestamp_delta = varlong(buf, &mut p, end)?;
    let offset_delta = varint(buf, &mut p, end)?;
    let key = field(buf, &mut p, end, true)?;
    let value = field(buf, &mut p, end, true)?;
    let header_count = usize::try_from(varint(buf, &mut p, end)?).ok()?;
    if header_count > (end - p) / MIN_HEADER_SIZE {
        return None;
    }
    let headers_start = p;
    for _ in 0..header_count {
        let key = field(buf, &mut p, end, false)??;
        std::str::from_utf8(buf.get(key)?).ok()?;
        field(buf, &mut p, end, true)?;
    }
    if p != end {
        return None;
    }
    Some(Fields {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        header_count,
        headers: headers_start..end,
        end,
    })
}

/// The key and value ranges of the `count` headers in `range` of `buf`, which
/// [`decode_fields`] accepted as a record's headers; ends early on bytes that are not headers.
pub(crate) fn header_ranges(
    buf: &[u8],
    range: Range<usize>,
    count: usize,
) -> impl Iterator<Item = (Range<usize>, Option<Range<usize>>)> + '_ {
    let (mut p, end) = (range.start, range.end);
    (0..count).map_while(move |_| {
        let key = field(buf, &mut p, end, false)??;
        let value = field(buf, &mut p, end, true)?;
        Some((key, value))
    })
}

/// The position of the `n`-th record after the one at `p`, each record passed over by its
/// length prefix alone (nothing inside is decoded); `None` if a length is malformed or runs
/// past `buf`.
///
/// Records of a batch often have the same size. The walk remembers the last two-byte prefix
/// it decoded and the size it meant; a record with the same two bytes is passed over by that
/// size without decoding, so the next position does not wait for the load of this one's
/// prefix (the branch predictor runs ahead on the guess, and the bytes confirm it). The
/// answer is the same as decoding every prefix: equal bytes give an equal size.
#[inline(always)]
pub(crate) fn skip_records(buf: &[u8], mut p: usize, n: usize) -> Option<usize> {
    // `u32::MAX` matches no pair of bytes.
    let (mut last_pair, mut last_step) = (u32::MAX, 0usize);
    for _ in 0..n {
        if let Some(&[b0, b1]) = buf.get(p..p.saturating_add(2)) {
            let pair = u32::from(b0) | u32::from(b1) << 8;
            if pair == last_pair {
                p = p.checked_add(last_step)?;
                continue;
            }
            if b0 >= 0x80 && b1 < 0x80 {
                let len = zigzag_decode_i32(u32::from(b0 & 0x7f) | u32::from(b1) << 7);
                let step = usize::try_from(len).ok()? + 2;
                (last_pair, last_step) = (pair, step);
                p = p.checked_add(step)?;
                continue;
            }
        }
        // The one-byte form (records up to 63 bytes) inline; the rest as `varint`.
        let len = match *buf.get(p..)? {
            [b0, ..] if b0 < 0x80 => {
                p += 1;
                zigzag_decode_i32(u32::from(b0))
            }
            _ => varint(buf, &mut p, buf.len())?,
        };
        // A negative length, or one past the end, fails here or at the next `get`.
        p = p.checked_add(usize::try_from(len).ok()?)?;
    }
    (p <= buf.len()).then_some(p)
}

/// The offset delta and the end of the record at `p`: its length, attributes byte and timestamp
/// delta are passed over, nothing after the offset delta is read. `None` if malformed.
#[inline(always)]
pub(crate) fn peek_offset_delta(buf: &[u8], mut p: usize) -> Option<(i32, usize)> {
    let len = usize::try_from(varint(buf, &mut p, buf.len())?).ok()?;
    if len > buf.len() - p {
        return None;
    }
    let end = p + len;
    if p >= end {
        return None;
    }
    p += 1;
    varlong(buf, &mut p, end)?;
    Some((varint(buf, &mut p, end)?, end))
}

/// True if every record of `buf` (a whole uncompressed batch whose header, `header`, was
/// validated) passes the checks the record walk makes, and nothing follows the last one: the
/// same verdict as walking it with [`super::record::Walk::next_raw`], in one tight pass that
/// builds no values and no errors. Callers walk again for the error when this says no.
pub(crate) fn records_valid(buf: &[u8], header: &BatchHeader) -> bool {
    records_max_timestamp(buf, header).is_some()
}

/// [`records_valid`], and the largest record timestamp when it says yes: `Some(largest)`, or
/// `Some(header.max_timestamp)` for a batch of no records or of log-append time (whose records
/// carry no time of their own); `None` when a record is malformed.
pub(crate) fn records_max_timestamp(buf: &[u8], header: &BatchHeader) -> Option<i64> {
    let count = usize::try_from(header.record_count).ok()?;
    let append_time = header.timestamp_type() == TimestampType::LogAppendTime;
    let mut p = HEADER_SIZE;
    let mut prev_delta: i64 = -1;
    let mut max_delta = i64::MIN;
    for _ in 0..count {
        let f = decode_fields(buf, p)?;
        if !append_time {
            header.base_timestamp.checked_add(f.timestamp_delta)?;
            max_delta = max_delta.max(f.timestamp_delta);
        }
        let delta = i64::from(f.offset_delta);
        if delta <= prev_delta || delta > i64::from(header.last_offset_delta) {
            return None;
        }
        prev_delta = delta;
        p = f.end;
    }
    if p != buf.len() {
        return None;
    }
    Some(if append_time || count == 0 {
        header.max_timestamp
    } else {
        // Checked above for every record, this one among them.
        header.base_timestamp + max_delta
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `skip_records` as it was before the remembered prefix: every prefix decoded.
    fn skip_by_decoding(buf: &[u8], mut p: usize, n: usize) -> Option<usize> {
        for _ in 0..n {
            let len = varint(buf, &mut p, buf.len())?;
            p = p.checked_add(usize::try_from(len).ok()?)?;
        }
        (p <= buf.len()).then_some(p)
    }

    #[test]
    fn skip_records_agrees_with_decoding_every_prefix() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut checked = 0;
        for _ in 0..3000 {
            // Records of a few repeated sizes (so that remembered prefixes are used), some
            // one-byte and some longer prefixes, then damage: flipped bytes and a cut.
            let sizes = [
                next() % 40,
                64 + next() % 200,
                100,
                100,
                9000 + next() % 100,
            ];
            let mut buf = Vec::new();
            for _ in 0..(next() % 30) {
                let size = sizes[(next() % 5) as usize] as usize;
                crate::batch::varint::put_varint(&mut buf, size as i32);
                buf.extend((0..size).map(|_| next() as u8));
            }
            for _ in 0..(next() % 3) {
                if !buf.is_empty() {
                    let at = (next() % buf.len() as u64) as usize;
                    buf[at] ^= 1 << (next() % 8);
                }
            }
            if next() % 2 == 0 {
                buf.truncate((next() % (buf.len() as u64 + 1)) as usize);
            }
            for n in 0..32 {
                assert_eq!(
                    skip_records(&buf, 0, n),
                    skip_by_decoding(&buf, 0, n),
                    "{n} records of {buf:?}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 3000 * 32);
    }
}
