//! [`BatchBuilder`]: encodes records into one v2 batch, uncompressed or in any Kafka codec.

use bytes::Bytes;

use super::header::{
    check_offsets, put, ATTRIBUTES_AT, BASE_OFFSET_AT, BASE_SEQUENCE_AT, BASE_TIMESTAMP_AT,
    BATCH_LENGTH_AT, CRC_AT, LAST_OFFSET_DELTA_AT, MAGIC_AT, MAX_TIMESTAMP_AT,
    PARTITION_LEADER_EPOCH_AT, PRODUCER_EPOCH_AT, PRODUCER_ID_AT, RECORD_COUNT_AT,
};
use super::varint::{put_varint, put_varlong, varint_size, varlong_size};
use super::{
    compression, compute_crc, BatchError, BatchHeader, BorrowedRecord, Compression,
    CompressionLevel, Header, HeaderView, RecordBatch, SimpleRecord, TimestampType,
    CONTROL_FLAG_MASK, HEADER_SIZE, LOG_OVERHEAD, MAGIC, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_FLAG_MASK,
};

/// The largest batch the format can describe: `batchLength` is an i32.
const MAX_BATCH_SIZE: usize = i32::MAX as usize + LOG_OVERHEAD;

/// Encodes records into one v2 batch, exactly as Kafka's `MemoryRecordsBuilder` lays them out:
/// offset deltas 0, 1, 2..., timestamp deltas relative to the first record's timestamp
/// (negative for earlier records), record attributes 0; with a codec
/// ([`BatchBuilder::compression`]), the records section compressed as Kafka's producer
/// compresses it, the codec in the attributes, `batchLength` and the CRC over the compressed
/// bytes.
///
/// Defaults: base offset 0, partition leader epoch -1, producer id / epoch / base sequence -1,
/// [`TimestampType::CreateTime`], not transactional, uncompressed.
///
/// ```
/// use partlog::batch::{BatchBuilder, SimpleRecord};
/// let mut b = BatchBuilder::new().base_offset(42);
/// b.push(&SimpleRecord::new(1000, Some("k"), Some("v"))).unwrap();
/// b.push_parts(999, None, Some(b"tombstone?"), &[]).unwrap();
/// let batch = b.build().unwrap();
/// assert_eq!((batch.base_offset(), batch.last_offset()), (42, 43));
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    /// Header placeholder followed by the encoded records.
    buf: Vec<u8>,
    count: usize,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    timestamp_type: TimestampType,
    transactional: bool,
    control: bool,
    base_timestamp: i64,
    max_timestamp: i64,
    compression: CompressionLevel,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder with the defaults.
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// An empty builder whose buffer has room for `bytes` bytes (header included) before it
    /// reallocates.
    pub fn with_capacity(bytes: usize) -> Self {
        Self::with_buffer(Vec::new(), bytes)
    }

    /// An empty builder with the defaults that encodes into `buf` (its contents are dropped,
    /// its allocation kept), reserving room for `bytes` bytes: to reuse one buffer across
    /// batches.
    pub(crate) fn with_buffer(mut buf: Vec<u8>, bytes: usize) -> Self {
        buf.clear();
        buf.reserve(bytes.max(HEADER_SIZE));
        buf.resize(HEADER_SIZE, 0);
        BatchBuilder {
            buf,
            count: 0,
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            base_timestamp: 0,
            max_timestamp: 0,
            compression: CompressionLevel::default_for(Compression::None),
        }
    }

    /// Compresses the records with `codec` at its default level (Kafka's).
    ///
    /// ```
    /// use partlog::batch::{BatchBuilder, Compression, SimpleRecord};
    /// let mut b = BatchBuilder::new().compression(Compression::Zstd);
    /// b.push(&SimpleRecord::new(1000, Some("k"), Some("v"))).unwrap();
    /// let batch = b.build().unwrap();
    /// assert_eq!(batch.compression(), Compression::Zstd);
    /// assert_eq!(batch.records().unwrap().next().unwrap().unwrap().value.unwrap(), "v");
    /// ```
    pub fn compression(self, codec: Compression) -> Self {
        self.compression_level(CompressionLevel::default_for(codec))
    }

    /// Compresses the records with `level`'s codec at that level.
    pub fn compression_level(mut self, level: CompressionLevel) -> Self {
        self.compression = level;
        self
    }

    /// Sets the offset of the first record.
    pub fn base_offset(mut self, offset: i64) -> Self {
        self.base_offset = offset;
        self
    }

    /// Sets the partition leader epoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the idempotent-producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets the timestamp type. With [`TimestampType::LogAppendTime`] readers report the batch's
    /// `maxTimestamp` (the largest timestamp pushed) as every record's timestamp.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Marks the batch as transactional (or not).
    pub fn transactional(mut self, yes: bool) -> Self {
        self.transactional = yes;
        self
    }

    /// Marks the batch as holding control records (attributes bit 5, [`CONTROL_FLAG_MASK`]), or
    /// not. Kafka's consumers skip control batches; their records' keys start with a version
    /// and a type (both i16), which this builder leaves to the caller.
    ///
    /// ```
    /// use partlog::batch::{BatchBuilder, SimpleRecord};
    /// let mut b = BatchBuilder::new().control(true);
    /// b.push(&SimpleRecord::new(0, Some(&[0u8, 0, 0x7f, 0][..]), None::<&[u8]>)).unwrap();
    /// assert!(b.build().unwrap().header().is_control());
    /// ```
    pub fn control(mut self, yes: bool) -> Self {
        self.control = yes;
        self
    }

    /// Appends a record. See [`BatchBuilder::push_parts`].
    pub fn push(&mut self, record: &SimpleRecord) -> Result<(), BatchError> {
        self.push_parts(
            record.timestamp,
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
        )
    }

    /// Appends a record from its parts, copying them into the batch buffer (the only
    /// allocation).
    ///
    /// Errors, leaving the builder unchanged: [`BatchError::TooLarge`] if the batch would exceed
    /// the i32 `batchLength` (or a field its i32 length); [`BatchError::TimestampOverflow`] if
    /// `timestamp` minus the first record's timestamp does not fit an i64;
    /// [`BatchError::InvalidHeaderKey`] if a header key is not UTF-8.
    pub fn push_parts(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> Result<(), BatchError> {
        self.push_fields(timestamp, key, value, headers)
    }

    /// Appends a record whose key, value and headers are borrowed, copying them into the batch
    /// buffer (the only allocation, shared by all records). Errors as
    /// [`BatchBuilder::push_parts`] (header keys are `&str`, so always UTF-8).
    #[inline]
    pub fn push_borrowed(&mut self, record: &BorrowedRecord<'_>) -> Result<(), BatchError> {
        self.push_fields(record.timestamp, record.key, record.value, record.headers)
    }

    /// [`BatchBuilder::push_parts`] for any kind of header.
    #[inline]
    pub(crate) fn push_fields<H: EncodeHeader>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[H],
    ) -> Result<(), BatchError> {
        let base_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let timestamp_delta =
            timestamp
                .checked_sub(base_timestamp)
                .ok_or(BatchError::TimestampOverflow {
                    base_timestamp,
                    timestamp,
                })?;
        let too_large = |size: Option<usize>| BatchError::TooLarge {
            size: size.unwrap_or(usize::MAX),
            max: MAX_BATCH_SIZE,
        };
        let offset_delta = i32::try_from(self.count).map_err(|_| too_large(None))?;
        let header_count = i32::try_from(headers.len()).map_err(|_| too_large(None))?;

        // Size of the record after its length field.
        let mut body = Some(1 + varlong_size(timestamp_delta) + varint_size(offset_delta));
        body = add(body, field_size(key));
        body = add(body, field_size(value));
        body = add(body, Some(varint_size(header_count)));
        for (i, h) in headers.iter().enumerate() {
            if !h.key_is_utf8() {
                return Err(BatchError::InvalidHeaderKey { header: i });
            }
            body = add(body, field_size(Some(h.key())));
            body = add(body, field_size(h.value()));
        }
        let body_len = body
            .and_then(|b| i32::try_from(b).ok())
            .ok_or_else(|| too_large(body))?;
        let record_size = body.map(|b| b + varint_size(body_len));
        let new_size = add(record_size, Some(self.buf.len()));
        match new_size {
            Some(size) if size <= MAX_BATCH_SIZE => {}
            _ => return Err(too_large(new_size)),
        }

        // All checks passed: nothing below can fail.
        self.buf.reserve(record_size.unwrap_or(0));
        put_varint(&mut self.buf, body_len);
        self.buf.push(0); // record attributes
        put_varlong(&mut self.buf, timestamp_delta);
        put_varint(&mut self.buf, offset_delta);
        put_field(&mut self.buf, key);
        put_field(&mut self.buf, value);
        put_varint(&mut self.buf, header_count);
        for h in headers {
            put_field(&mut self.buf, Some(h.key()));
            put_field(&mut self.buf, h.value());
        }

        if self.count == 0 {
            self.base_timestamp = timestamp;
            self.max_timestamp = timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(timestamp);
        }
        self.count += 1;
        Ok(())
    }

    /// Number of records pushed.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size in bytes of the batch [`BatchBuilder::build`] would return now.
    pub fn encoded_size(&self) -> usize {
        self.buf.len()
    }

    /// Finishes the batch: writes the header (`lastOffsetDelta` = count - 1, `baseTimestamp` =
    /// the first record's timestamp, `maxTimestamp` = the largest) and the CRC.
    ///
    /// Errors: [`BatchError::Empty`] without records; [`BatchError::OffsetOverflow`] if the base
    /// offset plus the record count does not fit an i64; [`BatchError::TooLarge`] if the batch
    /// does not fit the format.
    pub fn build(self) -> Result<RecordBatch, BatchError> {
        let (header, buf) = self.finish()?;
        RecordBatch::with_header(header, Bytes::from(buf))
    }

    /// [`BatchBuilder::build`], returning the validated header and the batch's bytes in the
    /// builder's own buffer (for callers that reuse it, see [`BatchBuilder::with_buffer`]).
    pub(crate) fn finish(self) -> Result<(BatchHeader, Vec<u8>), BatchError> {
        let BatchBuilder { mut buf, .. } = self;
        if self.count == 0 {
            return Err(BatchError::Empty);
        }
        let codec = self.compression.codec();
        if codec != Compression::None {
            let mut packed = Vec::with_capacity(HEADER_SIZE + (buf.len() - HEADER_SIZE) / 2);
            packed.resize(HEADER_SIZE, 0);
            compression::compress(codec, self.compression, &buf[HEADER_SIZE..], &mut packed)?;
            buf = packed;
        }
        let too_large = BatchError::TooLarge {
            size: buf.len(),
            max: MAX_BATCH_SIZE,
        };
        let record_count = i32::try_from(self.count).map_err(|_| too_large.clone())?;
        let last_offset_delta = record_count - 1;
        let batch_length = i32::try_from(buf.len() - LOG_OVERHEAD).map_err(|_| too_large)?;
        // The only header check that can fail for what the builder writes.
        check_offsets(self.base_offset, last_offset_delta)?;
        let mut attributes = i16::from(codec.codec());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_MASK;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_FLAG_MASK;
        }
        if self.control {
            attributes |= CONTROL_FLAG_MASK;
        }

        let mut header = BatchHeader {
            base_offset: self.base_offset,
            batch_length,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: MAGIC,
            crc: 0,
            attributes,
            last_offset_delta,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            record_count,
        };
        write_header(&mut buf, &header);
        header.crc = compute_crc(&buf);
        put(&mut buf, CRC_AT, &header.crc.to_be_bytes());
        debug_assert_eq!(BatchHeader::parse(&buf), Ok(header));
        Ok((header, buf))
    }
}

/// A header as the builder encodes it: [`Header`] (owned) or [`HeaderView`] (borrowed).
pub(crate) trait EncodeHeader {
    /// The key's bytes.
    fn key(&self) -> &[u8];
    /// The value's bytes; `None` is null.
    fn value(&self) -> Option<&[u8]>;
    /// Whether the key is UTF-8.
    fn key_is_utf8(&self) -> bool;
}

impl EncodeHeader for Header {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.key
    }
    #[inline]
    fn value(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }
    #[inline]
    fn key_is_utf8(&self) -> bool {
        std::str::from_utf8(&self.key).is_ok()
    }
}

impl EncodeHeader for HeaderView<'_> {
    #[inline]
    fn key(&self) -> &[u8] {
        self.key.as_bytes()
    }
    #[inline]
    fn value(&self) -> Option<&[u8]> {
        self.value
    }
    #[inline]
    fn key_is_utf8(&self) -> bool {
        true
    }
}

#[inline]
fn add(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    a?.checked_add(b?)
}

/// Encoded size of a length-prefixed field; `None` if its length does not fit an i32.
#[inline]
fn field_size(field: Option<&[u8]>) -> Option<usize> {
    match field {
        None => Some(1),
        Some(f) => {
            let len = i32::try_from(f.len()).ok()?;
            Some(varint_size(len) + f.len())
        }
    }
}

/// Writes a length-prefixed field whose size [`field_size`] accepted.
#[inline]
fn put_field(buf: &mut Vec<u8>, field: Option<&[u8]>) {
    match field {
        None => put_varint(buf, -1),
        Some(f) => {
            put_varint(buf, i32::try_from(f.len()).unwrap_or(i32::MAX));
            buf.extend_from_slice(f);
        }
    }
}

/// Writes every header field but the CRC into `buf[..HEADER_SIZE]`.
fn write_header(buf: &mut [u8], h: &BatchHeader) {
    put(buf, BASE_OFFSET_AT, &h.base_offset.to_be_bytes());
    put(buf, BATCH_LENGTH_AT, &h.batch_length.to_be_bytes());
    put(
        buf,
        PARTITION_LEADER_EPOCH_AT,
        &h.partition_leader_epoch.to_be_bytes(),
    );
    put(buf, MAGIC_AT, &h.magic.to_be_bytes());
    put(buf, ATTRIBUTES_AT, &h.attributes.to_be_bytes());
    put(
        buf,
        LAST_OFFSET_DELTA_AT,
        &h.last_offset_delta.to_be_bytes(),
    );
    put(buf, BASE_TIMESTAMP_AT, &h.base_timestamp.to_be_bytes());
    put(buf, MAX_TIMESTAMP_AT, &h.max_timestamp.to_be_bytes());
    put(buf, PRODUCER_ID_AT, &h.producer_id.to_be_bytes());
    put(buf, PRODUCER_EPOCH_AT, &h.producer_epoch.to_be_bytes());
    put(buf, BASE_SEQUENCE_AT, &h.base_sequence.to_be_bytes());
    put(buf, RECORD_COUNT_AT, &h.record_count.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes of a one-record batch, written out from the format description – not from the
    /// encoder – with the CRC computed by `crc32c` directly.
    #[test]
    fn golden_single_record() {
        #[rustfmt::skip]
        let mut expected: Vec<u8> = vec![
            0, 0, 0, 0, 0, 0, 0, 0,             // baseOffset 0
            0, 0, 0, 58,                        // batchLength: 70 - 12
            0xff, 0xff, 0xff, 0xff,             // partitionLeaderEpoch -1
            2,                                  // magic
            0, 0, 0, 0,                         // crc, filled in below
            0, 0,                               // attributes
            0, 0, 0, 0,                         // lastOffsetDelta 0
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // baseTimestamp 1000
            0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // maxTimestamp 1000
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId -1
            0xff, 0xff,                         // producerEpoch -1
            0xff, 0xff, 0xff, 0xff,             // baseSequence -1
            0, 0, 0, 1,                         // recordCount 1
            // record
            0x10,                               // length 8, zigzag 16
            0,                                  // attributes
            0,                                  // timestampDelta 0
            0,                                  // offsetDelta 0
            0x02, b'k',                         // keyLength 1, key
            0x02, b'v',                         // valueLength 1, value
            0,                                  // headerCount 0
        ];
        assert_eq!(expected.len(), 70);
        let crc = ::crc32c::crc32c(&expected[21..]);
        expected[17..21].copy_from_slice(&crc.to_be_bytes());

        let mut b = BatchBuilder::new();
        b.push(&SimpleRecord::new(1000, Some("k"), Some("v")))
            .unwrap();
        assert_eq!(b.encoded_size(), 70);
        let batch = b.build().unwrap();
        assert_eq!(batch.as_bytes().as_ref(), expected.as_slice());
        assert_eq!(batch.header().crc, crc);
        RecordBatch::parse(batch.into_bytes()).unwrap();
    }

    /// Same, with a null key, a negative timestamp delta, a second record and a header with a
    /// null value.
    #[test]
    fn golden_two_records() {
        #[rustfmt::skip]
        let mut expected: Vec<u8> = vec![
            0, 0, 0, 0, 0, 0, 0, 7,             // baseOffset 7
            0, 0, 0, 0,                         // batchLength, below
            0, 0, 0, 3,                         // partitionLeaderEpoch 3
            2,                                  // magic
            0, 0, 0, 0,                         // crc, below
            0, 0x18,                            // attributes: LogAppendTime | transactional
            0, 0, 0, 1,                         // lastOffsetDelta 1
            0, 0, 0, 0, 0, 0, 0, 100,           // baseTimestamp 100
            0, 0, 0, 0, 0, 0, 0, 100,           // maxTimestamp 100
            0, 0, 0, 0, 0, 0, 0, 9,             // producerId 9
            0, 1,                               // producerEpoch 1
            0, 0, 0, 5,                         // baseSequence 5
            0, 0, 0, 2,                         // recordCount 2
            // record 0: key null, value "ab", no header
            0x10,                               // length 8
            0, 0, 0,                            // attributes, timestampDelta 0, offsetDelta 0
            0x01,                               // keyLength -1
            0x04, b'a', b'b',                   // valueLength 2, value
            0,                                  // headerCount
            // record 1: timestamp 99 (delta -1), key "", value null, header "h" -> null
            0x12,                               // length 9
            0, 0x01, 0x02,                      // attributes, timestampDelta -1, offsetDelta 1
            0x00,                               // keyLength 0
            0x01,                               // valueLength -1
            0x02,                               // headerCount 1
            0x02, b'h', 0x01,                   // key "h", value null
        ];
        let len = expected.len() as i32 - 12;
        expected[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = ::crc32c::crc32c(&expected[21..]);
        expected[17..21].copy_from_slice(&crc.to_be_bytes());

        let mut b = BatchBuilder::new()
            .base_offset(7)
            .partition_leader_epoch(3)
            .producer(9, 1, 5)
            .timestamp_type(TimestampType::LogAppendTime)
            .transactional(true);
        b.push_parts(100, None, Some(b"ab"), &[]).unwrap();
        b.push(&SimpleRecord::new(99, Some(""), None::<Bytes>).with_header("h", None::<Bytes>))
            .unwrap();
        assert_eq!(b.len(), 2);
        let batch = b.build().unwrap();
        assert_eq!(batch.as_bytes().as_ref(), expected.as_slice());
    }

    #[test]
    fn builder_errors() {
        assert_eq!(BatchBuilder::new().build(), Err(BatchError::Empty));
        assert!(BatchBuilder::default().is_empty());

        let mut b = BatchBuilder::new();
        b.push_parts(i64::MIN, None, None, &[]).unwrap();
        let size = b.encoded_size();
        assert_eq!(
            b.push_parts(1, None, None, &[]),
            Err(BatchError::TimestampOverflow {
                base_timestamp: i64::MIN,
                timestamp: 1
            })
        );
        // A failed push leaves the builder unchanged.
        assert_eq!((b.len(), b.encoded_size()), (1, size));
        b.push_parts(-1, None, None, &[]).unwrap();

        let bad_key = Header {
            key: Bytes::from_static(&[0xff, 0xfe]),
            value: None,
        };
        let ok = Header::new("ok", Some("v"));
        assert_eq!(
            b.push_parts(-2, None, None, &[ok, bad_key]),
            Err(BatchError::InvalidHeaderKey { header: 1 })
        );
        assert_eq!(b.len(), 2);
        let batch = b.build().unwrap();
        assert_eq!(batch.base_timestamp(), i64::MIN);
        assert_eq!(batch.max_timestamp(), -1);

        let mut b = BatchBuilder::new().base_offset(i64::MAX - 1);
        b.push_parts(0, None, None, &[]).unwrap();
        assert!(b.clone().build().is_ok()); // last offset i64::MAX - 1, next i64::MAX
        b.push_parts(0, None, None, &[]).unwrap();
        assert_eq!(
            b.build(),
            Err(BatchError::OffsetOverflow {
                base_offset: i64::MAX - 1,
                last_offset_delta: 1
            })
        );
    }

    #[test]
    fn field_sizes() {
        assert_eq!(field_size(None), Some(1));
        assert_eq!(field_size(Some(b"")), Some(1));
        assert_eq!(field_size(Some(&[0; 63])), Some(64));
        assert_eq!(field_size(Some(&[0; 64])), Some(66));
        assert_eq!(add(Some(usize::MAX), Some(1)), None);
        assert_eq!(add(None, Some(1)), None);
    }
}
