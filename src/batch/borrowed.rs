//! Records borrowed from a batch ([`RecordView`], [`RecordViews`], [`RecordBatch::record_at`],
//! [`PositionedBatch`]) and records borrowed from the caller for encoding ([`BorrowedRecord`]).
//!
//! A view's key, value and header payloads are `&[u8]` slices of the batch: iterating allocates
//! nothing and touches no reference count. Each record is checked as it is reached, with the
//! same checks as [`RecordBatch::records`] (one tight pass, [`super::fast`]); when one fails, the
//! detailed walk runs once to name the error, so both iterators yield the same records and the
//! same error.

use std::iter::FusedIterator;
use std::ops::Range;

use bytes::Bytes;

use super::fast::{self, decode_fields, Fields};
use super::record::Walk;
use super::{BatchError, BatchHeader, Header, Record, RecordBatch, TimestampType, HEADER_SIZE};

/// A record header borrowed from a batch (when read) or from the caller (when appended).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderView<'a> {
    /// The key (UTF-8 on the wire).
    pub key: &'a str,
    /// The value; `None` is encoded as length -1.
    pub value: Option<&'a [u8]>,
}

impl<'a> HeaderView<'a> {
    /// A header from a key and an optional value.
    pub fn new(key: &'a str, value: Option<&'a [u8]>) -> HeaderView<'a> {
        HeaderView { key, value }
    }
}

/// A record read from a batch, borrowing its key, value and headers from the batch's bytes.
/// Copying it is cheap (a few words); [`RecordView::to_record`] makes an owned [`Record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordView<'a> {
    offset: i64,
    timestamp: i64,
    attributes: i8,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    header_count: usize,
    /// The headers' bytes, every header in them checked when the record was decoded.
    headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Absolute offset: the batch's base offset plus the record's offset delta.
    #[inline]
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Absolute timestamp: base timestamp plus the record's delta, or for a
    /// [`TimestampType::LogAppendTime`] batch the batch's `maxTimestamp` (as Kafka reports it).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The record's attributes byte (unused by Kafka; 0 when written by Kafka or partlog).
    #[inline]
    pub fn attributes(&self) -> i8 {
        self.attributes
    }

    /// The key; `None` if null.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value; `None` if null (a tombstone).
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// Number of headers.
    #[inline]
    pub fn header_count(&self) -> usize {
        self.header_count
    }

    /// The headers, in wire order (duplicate keys are kept), decoded as they are iterated.
    #[inline]
    pub fn headers(&self) -> HeaderViews<'a> {
        HeaderViews {
            buf: self.headers,
            remaining: self.header_count,
        }
    }

    /// An owned copy: key, value and headers copied into new [`Bytes`]. To keep records
    /// without copying their payloads, use [`RecordBatch::records`] (slices sharing the batch).
    pub fn to_record(&self) -> Record {
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            attributes: self.attributes,
            key: self.key.map(Bytes::copy_from_slice),
            value: self.value.map(Bytes::copy_from_slice),
            headers: self
                .headers()
                .map(|h| Header {
                    key: Bytes::copy_from_slice(h.key.as_bytes()),
                    value: h.value.map(Bytes::copy_from_slice),
                })
                .collect(),
        }
    }

    /// Builds the view of `f`, a record of `buf` that [`decode_fields`] accepted (so its
    /// ranges lie in `buf`; an empty slice stands in if one did not).
    #[inline(always)]
    fn new(buf: &'a [u8], f: &Fields, offset: i64, timestamp: i64) -> RecordView<'a> {
        let slice = |r: &Range<usize>| buf.get(r.clone()).unwrap_or_default();
        RecordView {
            offset,
            timestamp,
            attributes: f.attributes,
            key: f.key.as_ref().map(slice),
            value: f.value.as_ref().map(slice),
            header_count: f.header_count,
            headers: slice(&f.headers),
        }
    }
}

impl PartialEq<Record> for RecordView<'_> {
    fn eq(&self, r: &Record) -> bool {
        self.offset == r.offset
            && self.timestamp == r.timestamp
            && self.attributes == r.attributes
            && self.key == r.key.as_deref()
            && self.value == r.value.as_deref()
            && self.header_count == r.headers.len()
            && self
                .headers()
                .zip(&r.headers)
                .all(|(a, b)| a.key.as_bytes() == b.key && a.value == b.value.as_deref())
    }
}

/// The headers of a [`RecordView`], yielded as [`HeaderView`]s.
#[derive(Debug, Clone)]
pub struct HeaderViews<'a> {
    buf: &'a [u8],
    remaining: usize,
}

#[cfg(test)]
impl<'a> HeaderViews<'a> {
    /// Headers over arbitrary bytes, unchecked.
    pub(super) fn for_tests(buf: &'a [u8], remaining: usize) -> HeaderViews<'a> {
        HeaderViews { buf, remaining }
    }
}

impl<'a> Iterator for HeaderViews<'a> {
    type Item = HeaderView<'a>;

    fn next(&mut self) -> Option<HeaderView<'a>> {
        if self.remaining == 0 {
            return None;
        }
        // The record's decoding checked every header; a failure here cannot happen, and ends
        // the iteration if it does.
        let header = (|| {
            let mut p = 0;
            let key_len = usize::try_from(fast::varint(self.buf, &mut p, self.buf.len())?).ok()?;
            let key = self.buf.get(p..p.checked_add(key_len)?)?;
            p += key_len;
            let key = std::str::from_utf8(key).ok()?;
            let value = match fast::varint(self.buf, &mut p, self.buf.len())? {
                -1 => None,
                len => {
                    let len = usize::try_from(len).ok()?;
                    let v = self.buf.get(p..p.checked_add(len)?)?;
                    p += len;
                    Some(v)
                }
            };
            self.buf = self.buf.get(p..)?;
            Some(HeaderView { key, value })
        })();
        self.remaining = if header.is_some() {
            self.remaining - 1
        } else {
            0
        };
        header
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining))
    }
}

impl FusedIterator for HeaderViews<'_> {}

/// Iterates the records of an uncompressed batch as [`RecordView`]s (from
/// [`RecordBatch::record_views`] or [`PositionedBatch::records`]), without allocating.
///
/// Yields `Result<RecordView, BatchError>` and stops after the first error; records and errors
/// are exactly those [`RecordBatch::records`] yields (see [`super::RecordIter`]). No CRC is
/// computed here: the batch's parse did that, once.
#[derive(Debug, Clone)]
pub struct RecordViews<'a> {
    buf: &'a [u8],
    header: &'a BatchHeader,
    steps: Steps,
}

/// Where an iteration over the records of one batch stands; shared by [`RecordViews`] and the
/// owned [`super::RecordIter`]. Each step decodes one record with the tight decoder and checks
/// it against the header; the first failure ends the iteration with the detailed walk's error.
#[derive(Debug, Clone)]
pub(crate) struct Steps {
    pos: usize,
    index: usize,
    count: usize,
    prev_delta: i64,
    log_append_time: Option<i64>,
    done: bool,
}

/// A record found by [`Steps::step`]: where it starts, its fields, offset and timestamp.
#[derive(Debug, Clone)]
pub(crate) struct Step {
    pub(crate) pos: usize,
    pub(crate) index: usize,
    pub(crate) fields: Fields,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
}

impl Steps {
    /// The records of a batch whose validated header is `header`, from the one at `pos`, the
    /// `index`-th, whose predecessor had offset delta `prev_delta` (-1 for the first).
    pub(crate) fn new(header: &BatchHeader, pos: usize, index: usize, prev_delta: i64) -> Steps {
        Steps {
            pos,
            index,
            count: usize::try_from(header.record_count).unwrap_or(0),
            prev_delta,
            log_append_time: match header.timestamp_type() {
                TimestampType::LogAppendTime => Some(header.max_timestamp),
                TimestampType::CreateTime => None,
            },
            done: false,
        }
    }

    /// Number of records not yet yielded, as the header declares it.
    pub(crate) fn remaining(&self) -> usize {
        if self.done {
            0
        } else {
            self.count.saturating_sub(self.index)
        }
    }

    /// An upper bound on the items left in `buf` (every record takes at least
    /// `MIN_RECORD_SIZE` bytes; one more item may be an error).
    pub(crate) fn size_hint(&self, buf: &[u8]) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        let by_bytes = buf.len().saturating_sub(self.pos) / fast::MIN_RECORD_SIZE;
        (0, Some(self.remaining().min(by_bytes).saturating_add(1)))
    }

    /// The next record of `buf` (the whole batch, whose validated header is `header`).
    #[inline(always)]
    pub(crate) fn step(
        &mut self,
        buf: &[u8],
        header: &BatchHeader,
    ) -> Option<Result<Step, BatchError>> {
        if self.done {
            return None;
        }
        if self.index == self.count {
            if self.pos == buf.len() {
                self.done = true;
                return None;
            }
            return Some(Err(self.fail(buf, header)));
        }
        let Some(fields) = decode_fields(buf, self.pos) else {
            return Some(Err(self.fail(buf, header)));
        };
        let delta = i64::from(fields.offset_delta);
        if delta <= self.prev_delta || fields.offset_delta > header.last_offset_delta {
            return Some(Err(self.fail(buf, header)));
        }
        let timestamp = match self.log_append_time {
            Some(t) => t,
            None => match header.base_timestamp.checked_add(fields.timestamp_delta) {
                Some(t) => t,
                None => return Some(Err(self.fail(buf, header))),
            },
        };
        let step = Step {
            pos: self.pos,
            index: self.index,
            offset: header.base_offset.saturating_add(delta),
            timestamp,
            fields,
        };
        self.prev_delta = delta;
        self.pos = step.fields.end;
        self.index += 1;
        Some(Ok(step))
    }

    /// Ends the iteration with the error the detailed walk names for this batch.
    #[cold]
    fn fail(&mut self, buf: &[u8], header: &BatchHeader) -> BatchError {
        self.done = true;
        let mut walk = Walk::new(header);
        while let Some(r) = walk.next_raw(buf, &mut ()) {
            if let Err(e) = r {
                return e;
            }
        }
        // The fast checks are the walk's (tested to agree); should they ever differ, the
        // record is still refused.
        BatchError::BadRecord {
            index: self.index,
            position: self.pos,
            reason: "record rejected",
        }
    }
}

impl<'a> RecordViews<'a> {
    fn new(
        buf: &'a [u8],
        header: &'a BatchHeader,
        pos: usize,
        index: usize,
        prev_delta: i64,
    ) -> RecordViews<'a> {
        RecordViews {
            buf,
            header,
            steps: Steps::new(header, pos, index, prev_delta),
        }
    }

    /// The records of `buf`, a whole uncompressed batch whose records `header` describes.
    pub(super) fn over(buf: &'a [u8], header: &'a BatchHeader) -> RecordViews<'a> {
        RecordViews::new(buf, header, HEADER_SIZE, 0, -1)
    }

    /// Number of records not yet yielded, as the header declares it.
    pub fn remaining(&self) -> usize {
        self.steps.remaining()
    }
}

impl<'a> Iterator for RecordViews<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.steps
                .step(self.buf, self.header)?
                .map(|s| RecordView::new(self.buf, &s.fields, s.offset, s.timestamp)),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.steps.size_hint(self.buf)
    }
}

impl FusedIterator for RecordViews<'_> {}

/// A batch positioned at one of its records: what [`RecordBatch::into_positioned`] and
/// [`crate::Log::read_record`] return. Owns the batch (a cheap [`Bytes`] slice), so it can be
/// kept; [`PositionedBatch::record`] borrows the record from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PositionedBatch {
    batch: RecordBatch,
    found: Found,
}

/// Where a record sits in its batch, with its decoded fields.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    pos: usize,
    index: usize,
    fields: Fields,
    offset: i64,
    timestamp: i64,
}

impl From<Step> for Found {
    fn from(s: Step) -> Found {
        Found {
            pos: s.pos,
            index: s.index,
            fields: s.fields,
            offset: s.offset,
            timestamp: s.timestamp,
        }
    }
}

impl PositionedBatch {
    /// The record the batch is positioned at.
    #[inline]
    pub fn record(&self) -> RecordView<'_> {
        let f = &self.found;
        RecordView::new(self.batch.as_bytes(), &f.fields, f.offset, f.timestamp)
    }

    /// The record's offset.
    #[inline]
    pub fn offset(&self) -> i64 {
        self.found.offset
    }

    /// The record's index in the batch (0 for the first).
    #[inline]
    pub fn index(&self) -> usize {
        self.found.index
    }

    /// The record's byte position in the batch.
    #[inline]
    pub fn position(&self) -> usize {
        self.found.pos
    }

    /// The whole batch.
    #[inline]
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    /// The whole batch, giving up the position.
    #[inline]
    pub fn into_batch(self) -> RecordBatch {
        self.batch
    }

    /// The records from this one to the end of the batch, checked as
    /// [`RecordBatch::record_views`] checks them.
    pub fn records(&self) -> RecordViews<'_> {
        let f = &self.found;
        RecordViews::new(
            self.batch.as_bytes(),
            self.batch.header(),
            f.pos,
            f.index,
            i64::from(f.fields.offset_delta) - 1,
        )
    }
}

impl RecordBatch {
    /// Iterates the records as [`RecordView`]s borrowing from the batch: no allocation, no
    /// reference count, one tight pass of checks per record (the same as
    /// [`RecordBatch::records`]); no CRC (the parse checked it, once).
    ///
    /// A compressed batch is decompressed on the first call and the result kept with the batch
    /// (see [`RecordBatch`]); [`RecordBatch::record_views_in`] decompresses into a buffer of the
    /// caller's instead.
    ///
    /// # Errors
    /// For a compressed batch, as [`RecordBatch::decompressed`].
    ///
    /// ```
    /// use partlog::batch::{BatchBuilder, BorrowedRecord};
    /// let mut b = BatchBuilder::new();
    /// b.push_borrowed(&BorrowedRecord::new(1000, Some(b"k"), Some(b"v1"))).unwrap();
    /// b.push_borrowed(&BorrowedRecord::new(1001, None, Some(b"v2"))).unwrap();
    /// let batch = b.build().unwrap();
    /// let mut total = 0;
    /// for r in batch.record_views().unwrap() {
    ///     total += r.unwrap().value().map_or(0, <[u8]>::len);
    /// }
    /// assert_eq!(total, 4);
    /// ```
    pub fn record_views(&self) -> Result<RecordViews<'_>, BatchError> {
        let b = self.inflated()?;
        Ok(RecordViews::over(b.as_bytes(), b.header()))
    }

    /// The record with exactly `offset`, borrowed from the batch; `None` if the batch holds no
    /// record with that offset (outside `base_offset..=last_offset`, or in a gap a compaction
    /// left).
    ///
    /// Records before it are passed over by their length prefixes (and, in a batch with offset
    /// gaps, their offset deltas) without being decoded; the record returned is checked as
    /// [`RecordBatch::record_views`] checks it, and its offset delta must be the one its place
    /// implies. Records passed over are not checked: a batch whose CRC was verified holds the
    /// bytes its producer wrote, which the log validated when they were appended. When the
    /// quick way does not land on a well-formed record, every record up to `offset` is
    /// decoded and checked, and the first error is returned.
    ///
    /// A compressed batch is decompressed first (once, as [`RecordBatch::record_views`] does),
    /// and all its records are checked, as [`RecordBatch::validate_records`] does: nothing
    /// vouches for decompressed bytes (recovery checks a compressed batch's CRC, not its
    /// records), and the answer must not depend on where in the batch `offset` lies (a batch
    /// that [`RecordBatch::records`] fails on fails here, even for an offset it holds no record
    /// of: found by `segment_recover`, a snappy batch of `recordCount` 0 whose one decompressed
    /// byte is trailing garbage).
    pub fn record_at(&self, offset: i64) -> Result<Option<RecordView<'_>>, BatchError> {
        let b = self.inflated()?;
        if self.header().codec() != 0 {
            b.validate_records()?;
        }
        Ok(b.find(offset)?
            .map(|f| RecordView::new(b.as_bytes(), &f.fields, f.offset, f.timestamp)))
    }

    /// [`RecordBatch::record_at`], keeping the batch with the position found (`Ok(None)` if
    /// the batch has no record with `offset`).
    ///
    /// A compressed batch is kept in its uncompressed form ([`RecordBatch::decompressed`]):
    /// [`PositionedBatch::batch`] is that form, and positions are positions in it.
    ///
    /// # Errors
    /// As [`RecordBatch::record_at`].
    pub fn into_positioned(self, offset: i64) -> Result<Option<PositionedBatch>, BatchError> {
        let compressed = self.header().codec() != 0;
        let batch = self.into_inflated()?;
        if compressed {
            batch.validate_records()?;
        }
        Ok(batch
            .find(offset)?
            .map(|found| PositionedBatch { batch, found }))
    }

    fn find(&self, offset: i64) -> Result<Option<Found>, BatchError> {
        let header = self.header();
        if offset < header.base_offset || offset > header.last_offset() {
            return Ok(None);
        }
        // 0 <= target <= lastOffsetDelta, an i32.
        let target = offset - header.base_offset;
        let quick = if i64::from(header.record_count) == i64::from(header.last_offset_delta) + 1 {
            self.find_dense(target)
        } else {
            self.find_sparse(target)
        };
        match quick {
            Some(found) => Ok(found),
            None => self.find_slowly(offset),
        }
    }

    /// A batch of `lastOffsetDelta + 1` records: its deltas are 0, 1, 2... (strictly increasing
    /// within `0..=lastOffsetDelta`), so the record sought is the `target`-th. `None` if the
    /// bytes do not lead to it.
    #[inline]
    fn find_dense(&self, target: i64) -> Option<Option<Found>> {
        let buf = self.as_bytes();
        let index = usize::try_from(target).ok()?;
        let pos = fast::skip_records(buf, HEADER_SIZE, index)?;
        let found = self.found_at(pos, index, target)?;
        Some(Some(found))
    }

    /// A batch with offset gaps: the offset deltas are read until `target` is reached or
    /// passed. `None` if the bytes are malformed on the way.
    fn find_sparse(&self, target: i64) -> Option<Option<Found>> {
        let buf = self.as_bytes();
        let count = usize::try_from(self.record_count()).ok()?;
        let mut pos = HEADER_SIZE;
        let mut prev = -1;
        for index in 0..count {
            let (delta, end) = fast::peek_offset_delta(buf, pos)?;
            let delta = i64::from(delta);
            if delta <= prev {
                return None;
            }
            if delta == target {
                return Some(Some(self.found_at(pos, index, target)?));
            }
            if delta > target {
                return Some(None);
            }
            prev = delta;
            pos = end;
        }
        Some(None)
    }

    /// The record at `pos`, fully checked, if its offset delta is `target`.
    #[inline(always)]
    fn found_at(&self, pos: usize, index: usize, target: i64) -> Option<Found> {
        let header = self.header();
        let fields = decode_fields(self.as_bytes(), pos)?;
        if i64::from(fields.offset_delta) != target {
            return None;
        }
        let timestamp = match header.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => {
                header.base_timestamp.checked_add(fields.timestamp_delta)?
            }
        };
        Some(Found {
            pos,
            index,
            fields,
            offset: header.base_offset + target,
            timestamp,
        })
    }

    /// Every record decoded and checked up to the one with `offset`.
    #[cold]
    fn find_slowly(&self, offset: i64) -> Result<Option<Found>, BatchError> {
        let mut it = Steps::new(self.header(), HEADER_SIZE, 0, -1);
        while let Some(step) = it.step(self.as_bytes(), self.header()) {
            let step = step?;
            if step.offset == offset {
                return Ok(Some(step.into()));
            }
            if step.offset > offset {
                return Ok(None);
            }
        }
        Ok(None)
    }
}

/// A record to be encoded whose key, value and headers are borrowed from the caller (the
/// borrowed counterpart of [`super::SimpleRecord`]): [`super::BatchBuilder::push_borrowed`] and
/// [`crate::Log::append_records`] copy them straight into the batch, allocating nothing per
/// record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BorrowedRecord<'a> {
    /// Timestamp (milliseconds since the epoch, by convention; -1 means none).
    pub timestamp: i64,
    /// The key; `None` is null.
    pub key: Option<&'a [u8]>,
    /// The value; `None` is null.
    pub value: Option<&'a [u8]>,
    /// The headers.
    pub headers: &'a [HeaderView<'a>],
}

impl<'a> BorrowedRecord<'a> {
    /// A record without headers.
    pub fn new(timestamp: i64, key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> Self {
        BorrowedRecord {
            timestamp,
            key,
            value,
            headers: &[],
        }
    }

    /// The same record with `headers`.
    pub fn with_headers(self, headers: &'a [HeaderView<'a>]) -> Self {
        BorrowedRecord { headers, ..self }
    }

    /// About the bytes this record takes in a batch (at least; more for large varints), to
    /// size buffers before encoding.
    #[inline]
    pub(crate) fn encoded_size_estimate(&self) -> usize {
        let len = |b: Option<&[u8]>| b.map_or(0, <[u8]>::len);
        let headers = self.headers.iter().fold(0usize, |n, h| {
            n.saturating_add(h.key.len() + len(h.value) + 2)
        });
        // Length, attributes, timestamp and offset deltas, key and value lengths, header count.
        (len(self.key) + len(self.value)).saturating_add(headers) + 16
    }
}
