//! [`RecordBatch`]: a validated zero-copy view of one batch.

use std::sync::OnceLock;

use bytes::Bytes;

use super::borrowed::Steps;
use super::fast::{records_max_timestamp, records_valid};
use super::record::{RecordIter, Walk};
use super::{
    compression, compute_crc, BatchError, BatchHeader, Compression, TimestampType,
    COMPRESSION_CODEC_MASK, HEADER_SIZE, LOG_OVERHEAD,
};

/// The most bytes of records a compressed batch may inflate to when partlog reads it: 256 MiB,
/// far past Kafka's default `max.message.bytes` (1 MiB of compressed records) at any realistic
/// ratio, and a bound on what a decompression bomb can make a reader allocate.
/// [`RecordBatch::decompressed_with_limit`] takes another bound.
pub const MAX_DECOMPRESSED_SIZE: usize = 256 << 20;

/// A validated, zero-copy view of exactly one v2 batch. Cloning is cheap (a [`Bytes`] refcount).
///
/// Built by one of three parsers that differ in how much they check:
/// [`parse`](RecordBatch::parse) (everything), [`parse_crc_only`](RecordBatch::parse_crc_only)
/// (header, length, CRC) and [`parse_header_only`](RecordBatch::parse_header_only) (header,
/// length).
///
/// A compressed batch's records are decompressed the first time a record API needs them
/// ([`RecordBatch::records`], [`RecordBatch::record_views`], [`RecordBatch::record_at`]...), at
/// most [`MAX_DECOMPRESSED_SIZE`] bytes, and the result is kept with the batch (and its clones
/// made afterwards) for the next call; [`RecordBatch::record_views_in`] decompresses into a
/// buffer of the caller's instead, reused across batches.
#[derive(Debug, Clone)]
pub struct RecordBatch {
    header: BatchHeader,
    bytes: Bytes,
    /// A compressed batch's uncompressed equivalent, once a record API needed it.
    inflated: OnceLock<Box<RecordBatch>>,
}

impl PartialEq for RecordBatch {
    fn eq(&self, other: &RecordBatch) -> bool {
        self.header == other.header && self.bytes == other.bytes
    }
}

impl Eq for RecordBatch {}

impl std::hash::Hash for RecordBatch {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.header.hash(state);
        self.bytes.hash(state);
    }
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
    /// A compressed batch is accepted after the CRC check, as Kafka's log recovery and
    /// replication accept one (`ensureValid`): its records are decompressed and checked when a
    /// record API reads them, or by an explicit [`RecordBatch::validate_records`].
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
        Ok(RecordBatch {
            header,
            bytes,
            inflated: OnceLock::new(),
        })
    }

    /// Checks the stored CRC against bytes 21..end ([`BatchError::CrcMismatch`]).
    pub fn verify_crc(&self) -> Result<(), BatchError> {
        check_crc(&self.bytes, self.header.crc)
    }

    /// [`RecordBatch::validate_records`] of an uncompressed batch, and the largest timestamp of
    /// its records (the header's `maxTimestamp` for a batch of no records or of log-append
    /// time): what Kafka's validator writes into a client batch's header.
    ///
    /// # Errors
    /// As [`RecordBatch::validate_records`]; [`BatchError::UnsupportedCompression`] for a
    /// compressed batch (inflate it first).
    pub(crate) fn validated_max_timestamp(&self) -> Result<i64, BatchError> {
        if self.header.codec() != 0 {
            return Err(BatchError::UnsupportedCompression {
                codec: self.header.codec(),
            });
        }
        if let Some(max) = records_max_timestamp(&self.bytes, &self.header) {
            return Ok(max);
        }
        self.validate_records()?;
        // The walk accepted what the tight pass refused: they disagree (a bug); the header's
        // value is kept rather than a guess.
        Ok(self.header.max_timestamp)
    }

    /// Walks every record of an uncompressed batch without copying anything: each varint is in
    /// bounds and at most 5 (varint) or 10 (varlong) bytes long; each record's length equals the
    /// bytes its fields occupy; key, value and header value lengths are >= -1 and within the
    /// record; header counts and header key lengths are >= 0; header keys are UTF-8; offset
    /// deltas are strictly increasing and at most `lastOffsetDelta`; timestamps do not overflow;
    /// the number of records equals `recordCount`; nothing follows the last record.
    ///
    /// A compressed batch is decompressed first (see [`RecordBatch::decompressed`] for its
    /// errors); positions in errors about its records are positions in
    /// [`RecordBatch::decompressed`]'s bytes.
    pub fn validate_records(&self) -> Result<(), BatchError> {
        if self.header.codec() != 0 {
            return self.inflated()?.validate_records();
        }
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
    /// A compressed batch is decompressed, and all its records checked, first.
    pub(crate) fn first_offset_reaching(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<i64>, BatchError> {
        if self.header.codec() != 0 {
            // Every record of the decompressed batch is checked first, as `record_at` does:
            // nothing vouched for them, and a search that stops at an early record must not
            // answer for a batch `records()` fails on (fuzz/README.md, bug 8).
            let b = self.inflated()?;
            b.validate_records()?;
            return b.first_offset_reaching(timestamp, min_offset);
        }
        let mut steps = Steps::new(&self.header, HEADER_SIZE, 0, -1);
        while let Some(r) = steps.step(&self.bytes, &self.header) {
            let r = r?;
            if r.offset >= min_offset && r.timestamp >= timestamp {
                return Ok(Some(r.offset));
            }
        }
        Ok(None)
    }

    /// The batch itself if uncompressed, else its uncompressed equivalent, decompressed on the
    /// first call and kept.
    pub(super) fn inflated(&self) -> Result<&RecordBatch, BatchError> {
        if self.header.codec() == 0 {
            return Ok(self);
        }
        if let Some(b) = self.inflated.get() {
            return Ok(b);
        }
        let b = self.decompressed()?;
        Ok(self.inflated.get_or_init(|| Box::new(b)))
    }

    /// The batch itself if uncompressed, else its uncompressed equivalent (the kept one if a
    /// record API made it already).
    pub(super) fn into_inflated(self) -> Result<RecordBatch, BatchError> {
        if self.header.codec() == 0 {
            return Ok(self);
        }
        let RecordBatch {
            header,
            bytes,
            inflated,
        } = self;
        match inflated.into_inner() {
            Some(b) => Ok(*b),
            None => RecordBatch {
                header,
                bytes,
                inflated: OnceLock::new(),
            }
            .decompressed(),
        }
    }

    /// Appends the batch's records section, decompressed, to `out` (copied as is for an
    /// uncompressed batch): at most `max_output` bytes.
    ///
    /// # Errors
    /// [`BatchError::DecompressedTooLarge`] if the records pass `max_output` bytes (nothing
    /// past the bound is allocated); [`BatchError::BadCompressedData`] if they are not a valid
    /// stream of the batch's codec.
    pub fn decompress_records_into(
        &self,
        max_output: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), BatchError> {
        let section = &self.bytes[HEADER_SIZE..];
        match Compression::from_codec(self.header.codec()) {
            Some(Compression::None) => {
                if section.len() > max_output {
                    return Err(BatchError::DecompressedTooLarge {
                        codec: 0,
                        max: max_output,
                    });
                }
                out.extend_from_slice(section);
                Ok(())
            }
            Some(codec) => compression::decompress(codec, section, max_output, out),
            // Parsed headers name codecs 0-4 only.
            None => Err(BatchError::UnsupportedCompression {
                codec: self.header.codec(),
            }),
        }
    }

    /// The uncompressed equivalent of this batch: the same header with codec 0 in the
    /// attributes, `batchLength` and the CRC of the decompressed records; the records as the
    /// producer encoded them. An uncompressed batch returns a clone of itself. The records are
    /// not checked (the record APIs check them as they are reached).
    ///
    /// # Errors
    /// [`BatchError::DecompressedTooLarge`] past [`MAX_DECOMPRESSED_SIZE`] bytes of records;
    /// [`BatchError::BadCompressedData`] for a bad stream.
    pub fn decompressed(&self) -> Result<RecordBatch, BatchError> {
        self.decompressed_with_limit(MAX_DECOMPRESSED_SIZE)
    }

    /// [`RecordBatch::decompressed`] with at most `max_output` bytes of records.
    ///
    /// # Errors
    /// As [`RecordBatch::decompressed`]; [`BatchError::TooLarge`] if the records do not fit a
    /// batch (`batchLength` is an i32).
    pub fn decompressed_with_limit(&self, max_output: usize) -> Result<RecordBatch, BatchError> {
        if self.header.codec() == 0 {
            return Ok(self.clone());
        }
        let mut buf = Vec::new();
        self.inflate_into(max_output, &mut buf)?;
        let header = BatchHeader::parse(&buf)?;
        Self::with_header(header, Bytes::from(buf))
    }

    /// Writes the uncompressed equivalent of the batch into `buf` (cleared first).
    fn inflate_into(&self, max_output: usize, buf: &mut Vec<u8>) -> Result<(), BatchError> {
        buf.clear();
        buf.extend_from_slice(&self.bytes[..HEADER_SIZE]);
        self.decompress_records_into(max_output, buf)?;
        let max = i32::MAX as usize;
        let batch_length = buf.len() - LOG_OVERHEAD;
        if batch_length > max {
            return Err(BatchError::TooLarge {
                size: buf.len(),
                max,
            });
        }
        buf[8..12].copy_from_slice(&(batch_length as i32).to_be_bytes());
        let attributes = self.header.attributes & !COMPRESSION_CODEC_MASK;
        buf[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = compute_crc(buf);
        buf[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// [`RecordBatch::record_views`] for a batch of any codec, decompressing a compressed batch's
    /// records into `scratch` (cleared first; its allocation is reused, so one buffer serves a
    /// whole read of many batches without allocating per batch). An uncompressed batch's views
    /// borrow from the batch and leave `scratch` alone.
    ///
    /// # Errors
    /// As [`RecordBatch::decompressed`].
    pub fn record_views_in<'b>(
        &'b self,
        scratch: &'b mut Vec<u8>,
    ) -> Result<super::RecordViews<'b>, BatchError> {
        if self.header.codec() == 0 {
            return self.record_views();
        }
        if let Some(b) = self.inflated.get() {
            return b.record_views();
        }
        self.inflate_into(MAX_DECOMPRESSED_SIZE, scratch)?;
        // The header is unchanged but for the codec, length and CRC, which the walk does not read.
        Ok(super::RecordViews::over(scratch, &self.header))
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
    /// A compressed batch is decompressed (once: see [`RecordBatch`]); its records are then
    /// slices of the decompressed bytes.
    ///
    /// # Errors
    /// For a compressed batch, as [`RecordBatch::decompressed`].
    pub fn records(&self) -> Result<RecordIter, BatchError> {
        let b = self.inflated()?;
        Ok(RecordIter::new(b.bytes.clone(), &b.header))
    }
}
