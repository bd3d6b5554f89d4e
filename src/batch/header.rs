//! The fixed 61-byte batch header, and helpers that work on raw batch bytes.

use super::{
    BatchError, Compression, TimestampType, COMPRESSION_CODEC_MASK, CONTROL_FLAG_MASK, HEADER_SIZE,
    LOG_OVERHEAD, MAGIC, MIN_BATCH_LENGTH, TIMESTAMP_TYPE_MASK, TRANSACTIONAL_FLAG_MASK,
};

// Field positions in the header.
pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const BATCH_LENGTH_AT: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const BASE_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORD_COUNT_AT: usize = 57;
/// The CRC covers the batch from the attributes to the end.
pub(crate) const CRC_START: usize = ATTRIBUTES_AT;

#[inline]
fn array<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[inline]
pub(crate) fn get_i64(buf: &[u8], at: usize) -> Option<i64> {
    array(buf, at).map(i64::from_be_bytes)
}

#[inline]
pub(crate) fn get_i32(buf: &[u8], at: usize) -> Option<i32> {
    array(buf, at).map(i32::from_be_bytes)
}

#[inline]
fn get_u32(buf: &[u8], at: usize) -> Option<u32> {
    array(buf, at).map(u32::from_be_bytes)
}

#[inline]
fn get_i16(buf: &[u8], at: usize) -> Option<i16> {
    array(buf, at).map(i16::from_be_bytes)
}

#[inline]
fn get_i8(buf: &[u8], at: usize) -> Option<i8> {
    buf.get(at).map(|&b| b as i8)
}

/// Writes `src` at `at`; `false` if `buf` is too short.
#[inline]
pub(crate) fn put(buf: &mut [u8], at: usize, src: &[u8]) -> bool {
    match at
        .checked_add(src.len())
        .and_then(|end| buf.get_mut(at..end))
    {
        Some(dst) => {
            dst.copy_from_slice(src);
            true
        }
        None => false,
    }
}

/// The parsed fixed header of a v2 batch.
///
/// Values from [`BatchHeader::parse`] are validated (see there); the accessors are meaningful only
/// for such values, but never panic on hand-built ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record (`baseOffset`).
    pub base_offset: i64,
    /// Bytes after the `batchLength` field (`batchLength`).
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch, or -1 (`partitionLeaderEpoch`).
    pub partition_leader_epoch: i32,
    /// Format version, always 2 after parsing (`magic`).
    pub magic: i8,
    /// CRC-32C of bytes 21..end, as stored (`crc`).
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags (`attributes`).
    pub attributes: i16,
    /// Offset of the last record minus `base_offset` (`lastOffsetDelta`).
    pub last_offset_delta: i32,
    /// Timestamp the record timestamp deltas are relative to (`baseTimestamp`).
    pub base_timestamp: i64,
    /// Largest record timestamp, or the log append time (`maxTimestamp`).
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1 (`producerId`).
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1 (`producerEpoch`).
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1 (`baseSequence`).
    pub base_sequence: i32,
    /// Number of records (`recordCount`).
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses and validates the first 61 bytes of `buf`.
    ///
    /// Checks, in this order: `buf` holds a whole header ([`BatchError::TooShort`]); magic is 2
    /// ([`BatchError::BadMagic`]); `batchLength` is at least 49 and the total size fits a `usize`
    /// ([`BatchError::InvalidLength`]); the codec is 0-4 ([`BatchError::InvalidAttributes`]);
    /// `lastOffsetDelta >= 0` ([`BatchError::InvalidLastOffsetDelta`]);
    /// `0 <= recordCount <= lastOffsetDelta + 1` ([`BatchError::InvalidRecordCount`]);
    /// `baseOffset + lastOffsetDelta + 1` fits an i64 ([`BatchError::OffsetOverflow`]).
    ///
    /// Does not check the CRC, nor that `buf` holds the whole batch.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        let header = Self::read(buf).ok_or(BatchError::TooShort {
            needed: HEADER_SIZE,
            available: buf.len(),
        })?;
        header.validate()?;
        Ok(header)
    }

    /// Reads the fields without validating them; `None` if `buf` is shorter than the header.
    fn read(buf: &[u8]) -> Option<BatchHeader> {
        let h = buf.get(..HEADER_SIZE)?;
        Some(BatchHeader {
            base_offset: get_i64(h, BASE_OFFSET_AT)?,
            batch_length: get_i32(h, BATCH_LENGTH_AT)?,
            partition_leader_epoch: get_i32(h, PARTITION_LEADER_EPOCH_AT)?,
            magic: get_i8(h, MAGIC_AT)?,
            crc: get_u32(h, CRC_AT)?,
            attributes: get_i16(h, ATTRIBUTES_AT)?,
            last_offset_delta: get_i32(h, LAST_OFFSET_DELTA_AT)?,
            base_timestamp: get_i64(h, BASE_TIMESTAMP_AT)?,
            max_timestamp: get_i64(h, MAX_TIMESTAMP_AT)?,
            producer_id: get_i64(h, PRODUCER_ID_AT)?,
            producer_epoch: get_i16(h, PRODUCER_EPOCH_AT)?,
            base_sequence: get_i32(h, BASE_SEQUENCE_AT)?,
            record_count: get_i32(h, RECORD_COUNT_AT)?,
        })
    }

    fn validate(&self) -> Result<(), BatchError> {
        check_fields(
            self.magic,
            self.batch_length,
            self.attributes,
            self.last_offset_delta,
            self.record_count,
            self.base_offset,
        )
    }

    /// Size of the whole batch in bytes: `batch_length + LOG_OVERHEAD`.
    #[inline]
    pub fn total_size(&self) -> usize {
        usize::try_from(self.batch_length)
            .unwrap_or(0)
            .saturating_add(LOG_OVERHEAD)
    }

    /// Offset of the last record: `base_offset + last_offset_delta`.
    #[inline]
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset after this batch: `last_offset() + 1`.
    #[inline]
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// The raw compression codec id (attributes bits 0-2).
    #[inline]
    pub fn codec(&self) -> u8 {
        (self.attributes & COMPRESSION_CODEC_MASK) as u8
    }

    /// The compression codec. Parsed headers always have a valid one; for a hand-built header
    /// with codec 5-7 this returns [`Compression::None`] (check [`BatchHeader::codec`]).
    #[inline]
    pub fn compression(&self) -> Compression {
        Compression::from_codec(self.codec()).unwrap_or(Compression::None)
    }

    /// What the record timestamps mean (attributes bit 3).
    #[inline]
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_MASK != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether the batch is part of a transaction (attributes bit 4).
    #[inline]
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }

    /// Whether the batch holds control records (attributes bit 5).
    #[inline]
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }
}

/// The checks [`BatchHeader::parse`] makes (see there), on the fields they involve; shared with
/// [`peek_span`] so that both accept exactly the same headers.
#[inline]
fn check_fields(
    magic: i8,
    batch_length: i32,
    attributes: i16,
    last_offset_delta: i32,
    record_count: i32,
    base_offset: i64,
) -> Result<(), BatchError> {
    if magic != MAGIC {
        return Err(BatchError::BadMagic(magic));
    }
    let total = usize::try_from(batch_length)
        .ok()
        .and_then(|l| l.checked_add(LOG_OVERHEAD));
    if batch_length < MIN_BATCH_LENGTH || total.is_none() {
        return Err(BatchError::InvalidLength { batch_length });
    }
    if Compression::from_codec((attributes & COMPRESSION_CODEC_MASK) as u8).is_none() {
        return Err(BatchError::InvalidAttributes(attributes));
    }
    if last_offset_delta < 0 {
        return Err(BatchError::InvalidLastOffsetDelta(last_offset_delta));
    }
    if record_count < 0 || i64::from(record_count) > i64::from(last_offset_delta) + 1 {
        return Err(BatchError::InvalidRecordCount {
            record_count,
            last_offset_delta,
        });
    }
    check_offsets(base_offset, last_offset_delta)
}

/// `base_offset + last_offset_delta + 1` must be representable.
pub(super) fn check_offsets(base_offset: i64, last_offset_delta: i32) -> Result<(), BatchError> {
    base_offset
        .checked_add(i64::from(last_offset_delta))
        .and_then(|last| last.checked_add(1))
        .map(|_| ())
        .ok_or(BatchError::OffsetOverflow {
            base_offset,
            last_offset_delta,
        })
}

/// Reads `baseOffset` and `batchLength` (the first 12 bytes), e.g. to learn the size of a batch
/// before all of it is available. `None` if `buf` is shorter than 12 bytes. Nothing is validated.
#[inline]
pub fn peek_frame(buf: &[u8]) -> Option<(i64, i32)> {
    Some((
        get_i64(buf, BASE_OFFSET_AT)?,
        get_i32(buf, BATCH_LENGTH_AT)?,
    ))
}

/// Reads `partitionLeaderEpoch` (bytes 12..16); `None` if `buf` is shorter. Nothing is validated.
#[inline]
pub fn peek_partition_leader_epoch(buf: &[u8]) -> Option<i32> {
    get_i32(buf, PARTITION_LEADER_EPOCH_AT)
}

/// Where a batch starts and ends, in offsets and bytes: what a walk over consecutive batches
/// needs, without building a whole [`BatchHeader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchSpan {
    /// `baseOffset`.
    pub(crate) base_offset: i64,
    /// `lastOffsetDelta`.
    pub(crate) last_offset_delta: i32,
    /// Bytes of the whole batch.
    pub(crate) total_size: usize,
}

impl BatchSpan {
    /// Offset of the last record.
    #[inline]
    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The offset after the batch.
    #[inline]
    pub(crate) fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

/// The span of the batch at the start of `buf`, with every check [`BatchHeader::parse`]
/// makes, plus that `buf` holds the whole batch; `None` if any fails (then `parse` says which).
/// Cheaper than `parse` for a walk that passes over most of the batches it reads.
#[inline]
pub(crate) fn peek_span(buf: &[u8]) -> Option<BatchSpan> {
    let h: &[u8; HEADER_SIZE] = buf.get(..HEADER_SIZE)?.try_into().ok()?;
    let base_offset = get_i64(h, BASE_OFFSET_AT)?;
    let batch_length = get_i32(h, BATCH_LENGTH_AT)?;
    let last_offset_delta = get_i32(h, LAST_OFFSET_DELTA_AT)?;
    check_fields(
        get_i8(h, MAGIC_AT)?,
        batch_length,
        get_i16(h, ATTRIBUTES_AT)?,
        last_offset_delta,
        get_i32(h, RECORD_COUNT_AT)?,
        base_offset,
    )
    .ok()?;
    let total_size = usize::try_from(batch_length).ok()? + LOG_OVERHEAD;
    (total_size <= buf.len()).then_some(BatchSpan {
        base_offset,
        last_offset_delta,
        total_size,
    })
}

/// CRC-32C (Castagnoli) of `batch[21..]`, the value a v2 batch stores in its `crc` field.
/// `batch` must hold exactly one batch; if it is shorter than 21 bytes the CRC of nothing (0)
/// is returned.
#[inline]
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c(batch.get(CRC_START..).unwrap_or(&[]))
}

/// CRC-32C (Castagnoli, CRC-32/ISCSI) of `data`: the checksum v2 batches carry (over
/// `batch[21..]`, see [`compute_crc`]). Hardware-accelerated where the CPU allows.
///
/// Three implementations, picked by what the CPU has and the length:
/// - with AVX-512, `crc-fast` (512-bit VPCLMULQDQ folding with the CRC32 instruction), except
///   from 256 to 399 bytes, where partlog's own 256-bit fold (`crc_fold`) is faster: on the
///   2-vCPU AMD EPYC Zen 4 partlog is measured on, 17-32 against 9-16 GB/s; from 400 bytes
///   `crc-fast` takes its wide path and is faster (39 against 30 GB/s at 400 B, 56-59 against
///   27-29 GB/s on 103 KB);
/// - with AVX2 and VPCLMULQDQ but no AVX-512 (Zen 3, recent Intel client cores), where
///   `crc-fast` only has its 128-bit path, partlog's fold from 256 bytes: on a Zen 3 EPYC
///   15.4 against 9.7 (`crc32c` crate) and 5.7 GB/s (`crc-fast`) on 1 KiB, 16.9 against 13.3
///   and 9.8 on 11 KB, even with the `crc32c` crate on 103 KB;
/// - otherwise the `crc32c` crate (the CRC32 instruction, three streams) from 512 bytes, and
///   `crc-fast` below.
#[inline]
pub fn crc32c(data: &[u8]) -> u32 {
    let wide = crc_fast_folds_wide();
    #[cfg(target_arch = "x86_64")]
    if data.len() >= super::crc_fold::MIN_BYTES && (data.len() < AVX512_MIN_BYTES || !wide) {
        if let Some(crc) = super::crc_fold::crc32c(data) {
            return crc;
        }
    }
    if data.len() >= CRC32_STREAMS_MIN_BYTES && !wide {
        return ::crc32c::crc32c(data);
    }
    // The 32-bit algorithm's checksum fits a u32; the crate returns it widened.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// From this length on, with AVX-512, `crc-fast` is the fastest (its wide path starts at 400
/// bytes: 39 GB/s there against 12 at 399; see [`crc32c()`]).
#[cfg(target_arch = "x86_64")]
const AVX512_MIN_BYTES: usize = 400;

/// From this length on, without AVX-512 or VPCLMULQDQ, the `crc32c` crate is the fastest (see
/// [`crc32c()`]).
const CRC32_STREAMS_MIN_BYTES: usize = 512;

/// True if `crc-fast` has its AVX-512 paths on this CPU (std caches the detection), or the CPU
/// is not x86-64 (where `crc-fast` has its own paths, and partlog no measurement against the
/// `crc32c` crate).
#[inline]
fn crc_fast_folds_wide() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vl")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        true
    }
}

/// Overwrites `baseOffset` (outside the CRC, so the batch stays valid), as a leader does when it
/// assigns offsets.
///
/// Errors: [`BatchError::TooShort`] if `buf` is shorter than the header;
/// [`BatchError::OffsetOverflow`] if `base_offset` plus the batch's `lastOffsetDelta` plus one
/// would not fit an i64 (the buffer is then left unchanged). Nothing else is validated.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) -> Result<(), BatchError> {
    let too_short = BatchError::TooShort {
        needed: HEADER_SIZE,
        available: buf.len(),
    };
    if buf.len() < HEADER_SIZE {
        return Err(too_short);
    }
    let last_offset_delta = get_i32(buf, LAST_OFFSET_DELTA_AT).ok_or(too_short.clone())?;
    check_offsets(base_offset, last_offset_delta)?;
    if put(buf, BASE_OFFSET_AT, &base_offset.to_be_bytes()) {
        Ok(())
    } else {
        Err(too_short)
    }
}

/// Overwrites `partitionLeaderEpoch` (outside the CRC, so the batch stays valid), as a leader
/// does when it appends a batch.
///
/// Errors: [`BatchError::TooShort`] if `buf` is shorter than the header. Nothing is validated.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    if buf.len() >= HEADER_SIZE && put(buf, PARTITION_LEADER_EPOCH_AT, &epoch.to_be_bytes()) {
        Ok(())
    } else {
        Err(BatchError::TooShort {
            needed: HEADER_SIZE,
            available: buf.len(),
        })
    }
}
