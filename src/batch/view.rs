//! [`RecordBatch`]: a validated zero-copy view of one batch.

use bytes::Bytes;

use super::borrowed::Steps;
use super::fast::records_valid;
use super::record::{RecordIter, Walk};
use super::{compute_crc, BatchError, BatchHeader, Compression, TimestampType, HEADER_SIZE};

/// A validated, zero-copy view of exactly one v2 batch. Cloning is cheap (a [`Bytes`] refcount).
///
/// Built by one of three parsers that differ in how much they check:
/// [`parse`](RecordBatch::parse) (everything), [`parse_crc_only`](RecordBatch::parse_crc_only)
/// (header, length, CRC) and [`parse_header_only`](RecordBatch::parse_header_only) (header,
/// length).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
}

/// Checks `batch` (the bytes of one whole batch) against the CRC its header stores
/// ([`BatchError::CrcMismatch`] if they differ).
pub(crate) fn check_crc(batch: &[u8], stored: u32) -> Result<(), BatchError> {
    let computed = compute_crc(batch);
    if computed == stored {
        Ok(())
    } else {
        Err(BatchError::CrcMismatch { stored, computed })
    }
}

impl RecordBatch {
    /// Full validation of `bytes` as exactly one batch: the header checks of
    /// [`BatchHeader::parse`]; `bytes.len()` equals `batchLength + 12`
    /// ([`BatchError::LengthMismatch`]); the CRC ([`BatchError::CrcMismatch`]); and, for an
    /// uncompressed batch, every record (see [`RecordBatch::validate_records`]).
    ///
    /// A compressed batch is accepted after the CRC check; its records are not inspected.
    pub fn parse(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let batch = Self::parse_crc_only(bytes)?;
        if batch.header.codec() == 0 {
            batch.validate_records()?;
        }
        Ok(batch)
    }

    /// Header, length and CRC checks only, without walking the records: the hot read path.
    pub fn parse_crc_only(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let batch = Self::parse_header_only(bytes)?;
        batch.verify_crc()?;
        Ok(batch)
    }

    /// Header and length checks only; the caller vouches for the CRC (e.g. bytes it wrote
    /// itself or already checked).
    pub fn parse_header_only(bytes: Bytes) -> Result<RecordBatch, BatchError> {
        let header = BatchHeader::parse(&bytes)?;
        Self::with_header(header, bytes)
    }

    /// `header` must be the validated header of `bytes`; checks the length.
    pub(crate) fn with_header(
        header: BatchHeader,
        bytes: Bytes,
    ) -> Result<RecordBatch, BatchError> {
        let declared = header.total_size();
        if bytes.len() != declared {
            return Err(BatchError::LengthMismatch {
                declared,
                available: bytes.len(),
            });
        }
        Ok(RecordBatch { header, bytes })
    }

    /// Checks the stored CRC against bytes 21..end ([`BatchError::CrcMismatch`]).
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        check_crc(&self.bytes, self.header.crc)
    }

    /// Walks every record of an uncompressed batch without copying anything: each varint is in
    /// bounds and at most 5 (varint) or 10 (varlong) bytes long; each record's length equals the
    /// bytes its fields occupy; key, value and header value lengths are >= -1 and within the
    /// record; header counts and header key lengths are >= 0; header keys are UTF-8; offset
    /// deltas are strictly increasing and at most `lastOffsetDelta`; timestamps do not overflow;
    /// the number of records equals `recordCount`; nothing follows the last record.
    ///
    /// Compressed batch: [`BatchError::UnsupportedCompression`].
    pub fn validate_records(&self) -> Result<(), BatchError> {
        self.check_uncompressed()?;
        if records_valid(&self.bytes, &self.header) {
            return Ok(());
        }
        // Walk again, slowly, for the error (the walk has the last word).
        let mut walk = Walk::new(&self.header);
        while let Some(r) = walk.next_raw(&self.bytes, &mut ()) {
            r?;
        }
        Ok(())
    }

    /// The offset of the first record at or above `min_offset` whose timestamp is
    /// `>= timestamp`, `None` if there is none; records are checked as
    /// [`RecordBatch::validate_records`] checks them, up to the one found. Decodes only what
    /// the answer needs (no key, value or header is sliced out).
    ///
    /// Compressed batch: [`BatchError::UnsupportedCompression`].
    pub(crate) fn first_offset_reaching(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<i64>, BatchError> {
        self.check_uncompressed()?;
        let mut steps = Steps::new(&self.header, HEADER_SIZE, 0, -1);
        while let Some(r) = steps.step(&self.bytes, &self.header) {
            let r = r?;
            if r.offset >= min_offset && r.timestamp >= timestamp {
                return Ok(Some(r.offset));
            }
        }
        Ok(None)
    }

    pub(super) fn check_uncompressed(&self) -> Result<(), BatchError> {
        match self.header.codec() {
            0 => Ok(()),
            codec => Err(BatchError::UnsupportedCompression { codec }),
        }
    }

    /// The parsed header.
    #[inline]
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Offset of the first record.
    #[inline]
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// Offset of the last record (`base_offset + lastOffsetDelta`).
    #[inline]
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    /// The offset after this batch.
    #[inline]
    pub fn next_offset(&self) -> i64 {
        self.header.next_offset()
    }

    /// Number of records, as declared by the header.
    #[inline]
    pub fn record_count(&self) -> i32 {
        self.header.record_count
    }

    /// Largest record timestamp (or the log append time).
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        self.header.max_timestamp
    }

    /// The timestamp record deltas are relative to (the first record's, when written by Kafka
    /// or partlog).
    #[inline]
    pub fn base_timestamp(&self) -> i64 {
        self.header.base_timestamp
    }

    /// Epoch of the leader that appended the batch, or -1.
    #[inline]
    pub fn partition_leader_epoch(&self) -> i32 {
        self.header.partition_leader_epoch
    }

    /// The compression codec.
    #[inline]
    pub fn compression(&self) -> Compression {
        self.header.compression()
    }

    /// What the record timestamps mean.
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        self.header.timestamp_type()
    }

    /// The stored CRC.
    #[inline]
    pub fn crc(&self) -> u32 {
        self.header.crc
    }

    /// Size of the batch in bytes.
    #[inline]
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The batch's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The batch's bytes.
    #[inline]
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// Iterates the records without copying payloads: keys, values and header payloads are
    /// slices of the batch's [`Bytes`].
    ///
    /// Compressed batch: [`BatchError::UnsupportedCompression`].
    pub fn records(&self) -> Result<RecordIter, BatchError> {
        self.check_uncompressed()?;
        Ok(RecordIter::new(self.bytes.clone(), &self.header))
    }
}
