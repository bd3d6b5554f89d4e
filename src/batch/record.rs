//! Records: decoding them out of a batch ([`RecordIter`]), and the types handed to and from callers.

use std::iter::FusedIterator;
use std::ops::Range;

use bytes::Bytes;

use super::borrowed::Steps;
use super::fast::{header_ranges, MIN_HEADER_SIZE};
use super::varint::{decode_varint, decode_varlong, VarintError};
use super::{BatchError, BatchHeader, TimestampType, HEADER_SIZE};

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The key. UTF-8 on the wire: [`super::RecordBatch::parse`], [`RecordIter`] and
    /// [`super::BatchBuilder`] reject keys that are not.
    pub key: Bytes,
    /// The value; `None` is encoded as length -1.
    pub value: Option<Bytes>,
}

impl Header {
    /// A header from anything convertible to [`Bytes`] (`&'static str`, `String`, `Vec<u8>`...).
    /// Write `None::<Bytes>` for a null value.
    pub fn new(key: impl Into<Bytes>, value: Option<impl Into<Bytes>>) -> Header {
        Header {
            key: key.into(),
            value: value.map(Into::into),
        }
    }

    /// The key as a string slice, if it is valid UTF-8 (it is for headers read from a batch).
    pub fn key_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.key).ok()
    }
}

/// A record read from a batch. `key`, `value` and header payloads are slices of the batch's
/// bytes, not copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// Absolute offset: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// Absolute timestamp: base timestamp plus the record's delta, or for a
    /// [`TimestampType::LogAppendTime`] batch the batch's `maxTimestamp` (as Kafka reports it).
    pub timestamp: i64,
    /// The record's attributes byte (unused by Kafka; 0 when written by Kafka or partlog).
    pub attributes: i8,
    /// The key; `None` if null.
    pub key: Option<Bytes>,
    /// The value; `None` if null (a tombstone).
    pub value: Option<Bytes>,
    /// The headers, in wire order (duplicate keys are kept).
    pub headers: Vec<Header>,
}

/// A record to be encoded (Kafka's `SimpleRecord`): it gets its offset from the batch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SimpleRecord {
    /// Timestamp (milliseconds since the epoch, by convention; -1 means none).
    pub timestamp: i64,
    /// The key; `None` is null.
    pub key: Option<Bytes>,
    /// The value; `None` is null.
    pub value: Option<Bytes>,
    /// The headers.
    pub headers: Vec<Header>,
}

impl SimpleRecord {
    /// A record without headers. Write `None::<Bytes>` for a null key or value.
    pub fn new(
        timestamp: i64,
        key: Option<impl Into<Bytes>>,
        value: Option<impl Into<Bytes>>,
    ) -> SimpleRecord {
        SimpleRecord {
            timestamp,
            key: key.map(Into::into),
            value: value.map(Into::into),
            headers: Vec::new(),
        }
    }

    /// About the bytes this record takes in a batch (at least; more for large varints), to
    /// size buffers before encoding.
    pub(crate) fn encoded_size_estimate(&self) -> usize {
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        let headers = self.headers.iter().fold(0usize, |n, h| {
            n.saturating_add(h.key.len() + len(&h.value) + 2)
        });
        // Length, attributes, timestamp and offset deltas, key and value lengths, header count.
        (len(&self.key) + len(&self.value)).saturating_add(headers) + 16
    }

    /// Adds a header. Write `None::<Bytes>` for a null value.
    pub fn with_header(mut self, key: impl Into<Bytes>, value: Option<impl Into<Bytes>>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

/// Receives the headers of a record as they are decoded.
pub(crate) trait HeaderSink {
    /// Called once with the (already bounds-checked) number of headers.
    fn reserve(&mut self, count: usize);
    /// Called per header with its key range and optional value range, positions in the batch.
    fn push(&mut self, key: Range<usize>, value: Option<Range<usize>>);
}

/// Validation only: headers are checked and dropped.
impl HeaderSink for () {
    #[inline]
    fn reserve(&mut self, _count: usize) {}
    #[inline]
    fn push(&mut self, _key: Range<usize>, _value: Option<Range<usize>>) {}
}

/// What the detailed walk keeps of a record.
#[derive(Debug)]
pub(crate) struct RawRecord {
    pub(crate) timestamp_delta: i64,
    pub(crate) offset_delta: i32,
    /// Position just after the record.
    pub(crate) end: usize,
}

/// Headers reserved up front per record, at most.
const MAX_HEADER_PREALLOC: usize = 16;

/// The varint fields of a record, for error messages.
#[derive(Clone, Copy)]
enum Field {
    Length,
    TimestampDelta,
    OffsetDelta,
    KeyLength,
    ValueLength,
    HeaderCount,
    HeaderKeyLength,
    HeaderValueLength,
}

fn varint_reason(field: Field, e: VarintError) -> &'static str {
    macro_rules! table {
        ($name:literal) => {
            match e {
                VarintError::Truncated => concat!($name, ": varint truncated"),
                VarintError::TooLong => concat!($name, ": varint longer than allowed"),
                VarintError::Overflow => concat!($name, ": varint overflows its type"),
            }
        };
    }
    match field {
        Field::Length => table!("record length"),
        Field::TimestampDelta => table!("timestamp delta"),
        Field::OffsetDelta => table!("offset delta"),
        Field::KeyLength => table!("key length"),
        Field::ValueLength => table!("value length"),
        Field::HeaderCount => table!("header count"),
        Field::HeaderKeyLength => table!("header key length"),
        Field::HeaderValueLength => table!("header value length"),
    }
}

/// Reads fields of one record, bounded by `end`.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
    index: usize,
}

impl Cursor<'_> {
    #[inline]
    fn bad(&self, position: usize, reason: &'static str) -> BatchError {
        BatchError::BadRecord {
            index: self.index,
            position,
            reason,
        }
    }

    #[inline]
    fn rest(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    #[inline]
    fn varint(&mut self, field: Field) -> Result<i32, BatchError> {
        match decode_varint(self.rest()) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(e) => Err(self.bad(self.pos, varint_reason(field, e))),
        }
    }

    #[inline]
    fn varlong(&mut self, field: Field) -> Result<i64, BatchError> {
        match decode_varlong(self.rest()) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(e) => Err(self.bad(self.pos, varint_reason(field, e))),
        }
    }

    #[inline]
    fn byte(&mut self, what: &'static str) -> Result<u8, BatchError> {
        match self.rest().first() {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(self.bad(self.pos, what)),
        }
    }

    /// A length-prefixed payload; `-1` is null. `at` is where the length field started.
    #[inline]
    fn payload(
        &mut self,
        len: i32,
        at: usize,
        negative: &'static str,
        too_long: &'static str,
    ) -> Result<Option<Range<usize>>, BatchError> {
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.bad(at, negative))?;
        if len > self.end - self.pos {
            return Err(self.bad(at, too_long));
        }
        let start = self.pos;
        self.pos += len;
        Ok(Some(start..self.pos))
    }
}

/// Decodes the record starting at `pos` in `buf` (a whole batch), handing its headers to `sink`.
/// `index` is only used in errors.
#[inline]
pub(crate) fn decode_record<S: HeaderSink>(
    buf: &[u8],
    pos: usize,
    index: usize,
    sink: &mut S,
) -> Result<RawRecord, BatchError> {
    let mut c = Cursor {
        buf,
        pos,
        end: buf.len(),
        index,
    };
    let length = c.varint(Field::Length)?;
    let length = usize::try_from(length).map_err(|_| c.bad(pos, "negative record length"))?;
    if length > c.end.saturating_sub(c.pos) {
        return Err(c.bad(pos, "record length exceeds the batch"));
    }
    c.end = c.pos + length;

    c.byte("attributes: record truncated")?;
    let timestamp_delta = c.varlong(Field::TimestampDelta)?;
    let offset_delta = c.varint(Field::OffsetDelta)?;

    let at = c.pos;
    let key_len = c.varint(Field::KeyLength)?;
    c.payload(
        key_len,
        at,
        "key length below -1",
        "key length exceeds the record",
    )?;

    let at = c.pos;
    let value_len = c.varint(Field::ValueLength)?;
    c.payload(
        value_len,
        at,
        "value length below -1",
        "value length exceeds the record",
    )?;

    let at = c.pos;
    let header_count = c.varint(Field::HeaderCount)?;
    let header_count =
        usize::try_from(header_count).map_err(|_| c.bad(at, "negative header count"))?;
    // Bound the allocation by the bytes present, not by the count field.
    if header_count > (c.end - c.pos) / MIN_HEADER_SIZE {
        return Err(c.bad(at, "header count exceeds the record"));
    }
    sink.reserve(header_count);
    for _ in 0..header_count {
        let at = c.pos;
        let key_len = c.varint(Field::HeaderKeyLength)?;
        if key_len < 0 {
            return Err(c.bad(at, "negative header key length"));
        }
        let key = c
            .payload(
                key_len,
                at,
                "negative header key length",
                "header key length exceeds the record",
            )?
            .unwrap_or(at..at);
        if std::str::from_utf8(buf.get(key.clone()).unwrap_or(&[])).is_err() {
            return Err(c.bad(key.start, "header key is not valid UTF-8"));
        }
        let at = c.pos;
        let value_len = c.varint(Field::HeaderValueLength)?;
        let value = c.payload(
            value_len,
            at,
            "header value length below -1",
            "header value length exceeds the record",
        )?;
        sink.push(key, value);
    }
    if c.pos != c.end {
        return Err(c.bad(pos, "record length is larger than the fields it holds"));
    }
    Ok(RawRecord {
        timestamp_delta,
        offset_delta,
        end: c.end,
    })
}

/// Iterates the records of an uncompressed batch (from [`super::RecordBatch::records`]).
///
/// Yields `Result<Record, BatchError>` and stops after the first error. Besides malformed records
/// it reports a batch whose records disagree with its header: offset deltas not strictly
/// increasing or beyond `lastOffsetDelta`, fewer or more records than `recordCount`
/// ([`BatchError::RecordCountMismatch`]), or unparseable bytes after the last record
/// ([`BatchError::TrailingBytes`]). A batch accepted by [`super::RecordBatch::parse`] never
/// yields an error.
///
/// Keys, values and header payloads are [`Bytes`] slices sharing the batch (a reference count
/// each, no copy), for records kept past the batch; [`super::RecordBatch::record_views`] borrows
/// them instead and costs nothing per record.
#[derive(Debug, Clone)]
pub struct RecordIter {
    bytes: Bytes,
    header: BatchHeader,
    steps: Steps,
}

/// The detailed record walk over one batch: it names what is wrong (which record, where, why).
/// The iterators and `records_valid` decode with the tight decoder (`super::fast`) and run this
/// only once they find a fault, to report it; `tests.rs` checks that both accept the same.
#[derive(Debug, Clone)]
pub(crate) struct Walk {
    pos: usize,
    index: usize,
    declared: usize,
    record_count: i32,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    last_offset_delta: i32,
    prev_offset_delta: i64,
    done: bool,
}

impl Walk {
    /// A walk over a batch whose header (`header`) was validated.
    pub(crate) fn new(header: &BatchHeader) -> Walk {
        Walk {
            pos: HEADER_SIZE,
            index: 0,
            declared: usize::try_from(header.record_count).unwrap_or(0),
            record_count: header.record_count,
            base_timestamp: header.base_timestamp,
            log_append_time: match header.timestamp_type() {
                TimestampType::LogAppendTime => Some(header.max_timestamp),
                TimestampType::CreateTime => None,
            },
            last_offset_delta: header.last_offset_delta,
            prev_offset_delta: -1,
            done: false,
        }
    }

    fn fail(&mut self, e: BatchError) -> Option<Result<(), BatchError>> {
        self.done = true;
        Some(Err(e))
    }

    fn bad_at(&self, position: usize, reason: &'static str) -> BatchError {
        BatchError::BadRecord {
            index: self.index,
            position,
            reason,
        }
    }

    /// Decodes the next record of `buf` (the whole batch), checking it against the header.
    #[inline]
    pub(crate) fn next_raw<S: HeaderSink>(
        &mut self,
        buf: &[u8],
        sink: &mut S,
    ) -> Option<Result<(), BatchError>> {
        if self.done {
            return None;
        }
        if self.index == self.declared {
            self.done = true;
            if self.pos >= buf.len() {
                return None;
            }
            return Some(Err(self.classify_trailing(buf)));
        }
        if self.pos >= buf.len() {
            let e = BatchError::RecordCountMismatch {
                declared: self.record_count,
                found: self.index,
            };
            return self.fail(e);
        }
        let raw = match decode_record(buf, self.pos, self.index, sink) {
            Ok(raw) => raw,
            Err(e) => return self.fail(e),
        };
        let delta = i64::from(raw.offset_delta);
        if delta < 0 {
            let e = self.bad_at(self.pos, "negative offset delta");
            return self.fail(e);
        }
        if delta <= self.prev_offset_delta {
            let e = self.bad_at(
                self.pos,
                "offset delta not greater than the previous record's",
            );
            return self.fail(e);
        }
        if raw.offset_delta > self.last_offset_delta {
            let e = self.bad_at(self.pos, "offset delta exceeds lastOffsetDelta");
            return self.fail(e);
        }
        if self.log_append_time.is_none()
            && self
                .base_timestamp
                .checked_add(raw.timestamp_delta)
                .is_none()
        {
            let e = self.bad_at(self.pos, "timestamp delta overflows the timestamp");
            return self.fail(e);
        }
        self.prev_offset_delta = delta;
        self.pos = raw.end;
        self.index += 1;
        Some(Ok(()))
    }

    /// All declared records were read but bytes remain: more well-formed records than declared
    /// is a count mismatch, anything else is trailing garbage.
    fn classify_trailing(&self, buf: &[u8]) -> BatchError {
        let mut pos = self.pos;
        let mut found = self.index;
        while pos < buf.len() {
            match decode_record(buf, pos, found, &mut ()) {
                Ok(raw) => {
                    pos = raw.end;
                    found += 1;
                }
                Err(_) => {
                    return BatchError::TrailingBytes {
                        position: self.pos,
                        remaining: buf.len().saturating_sub(self.pos),
                    }
                }
            }
        }
        BatchError::RecordCountMismatch {
            declared: self.record_count,
            found,
        }
    }
}

impl RecordIter {
    /// `bytes` must be exactly one batch whose header (`header`) was validated.
    pub(crate) fn new(bytes: Bytes, header: &BatchHeader) -> RecordIter {
        RecordIter {
            bytes,
            header: *header,
            steps: Steps::new(header, HEADER_SIZE, 0, -1),
        }
    }

    /// Number of records not yet yielded, as the header declares it.
    pub fn remaining(&self) -> usize {
        self.steps.remaining()
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record, BatchError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let step = match self.steps.step(&self.bytes, &self.header)? {
            Ok(s) => s,
            Err(e) => return Some(Err(e)),
        };
        let bytes = &self.bytes;
        let f = step.fields;
        let headers = if f.header_count == 0 {
            Vec::new()
        } else {
            // The count is bounded by the record's bytes, but a `Header` is much larger than
            // the 2 bytes a header needs on the wire: cap the up-front allocation.
            let mut headers = Vec::with_capacity(f.header_count.min(MAX_HEADER_PREALLOC));
            headers.extend(
                header_ranges(bytes, f.headers, f.header_count).map(|(k, v)| Header {
                    key: bytes.slice(k),
                    value: v.map(|v| bytes.slice(v)),
                }),
            );
            headers
        };
        Some(Ok(Record {
            offset: step.offset,
            timestamp: step.timestamp,
            attributes: f.attributes,
            key: f.key.map(|r| bytes.slice(r)),
            value: f.value.map(|r| bytes.slice(r)),
            headers,
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.steps.size_hint(&self.bytes)
    }
}

impl FusedIterator for RecordIter {}
