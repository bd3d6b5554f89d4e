//! [`BatchError`]: everything that can be wrong with a record batch.

use std::fmt;

/// A record batch is malformed, or cannot be built or decoded.
///
/// Positions are byte positions from the start of the batch (its `baseOffset` field).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than needed: shorter than the header, or a torn batch at the end of a buffer.
    TooShort {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The bytes handed over as one batch are not exactly `batchLength + 12` long.
    LengthMismatch {
        /// The size the header declares (`batchLength + 12`).
        declared: usize,
        /// The number of bytes given.
        available: usize,
    },
    /// `batchLength` is negative or smaller than a header without records (49).
    InvalidLength {
        /// The `batchLength` field.
        batch_length: i32,
    },
    /// The magic byte is not 2 (a v0/v1 message set, or garbage such as zero fill).
    BadMagic(i8),
    /// The stored CRC-32C does not match bytes 21..end.
    CrcMismatch {
        /// The `crc` field.
        stored: u32,
        /// The CRC-32C of the bytes.
        computed: u32,
    },
    /// The attributes name compression codec 5, 6 or 7.
    InvalidAttributes(i16),
    /// The batch is compressed with a valid codec; its records cannot be decoded here.
    UnsupportedCompression {
        /// The codec id (attributes bits 0-2).
        codec: u8,
    },
    /// A compressed batch's records section is not a valid stream of its codec (truncated,
    /// damaged, or trailing bytes that do not decode).
    BadCompressedData {
        /// The codec id (attributes bits 0-2).
        codec: u8,
        /// What is wrong.
        reason: &'static str,
    },
    /// A compressed batch's records inflate past the bound the reader allows (a decompression
    /// bomb, or a batch larger than the bound).
    DecompressedTooLarge {
        /// The codec id (attributes bits 0-2).
        codec: u8,
        /// The bound, in bytes of decompressed records.
        max: usize,
    },
    /// A compression level outside its codec's range.
    InvalidCompressionLevel {
        /// The codec id.
        codec: u8,
        /// The level given.
        level: i32,
    },
    /// `lastOffsetDelta` is negative.
    InvalidLastOffsetDelta(i32),
    /// `recordCount` is negative or larger than `lastOffsetDelta + 1`.
    InvalidRecordCount {
        /// The `recordCount` field.
        record_count: i32,
        /// The `lastOffsetDelta` field.
        last_offset_delta: i32,
    },
    /// `baseOffset + lastOffsetDelta + 1` (the next offset) does not fit in an i64.
    OffsetOverflow {
        /// The `baseOffset` field.
        base_offset: i64,
        /// The `lastOffsetDelta` field.
        last_offset_delta: i32,
    },
    /// The records present are well formed but their number differs from `recordCount`.
    RecordCountMismatch {
        /// The `recordCount` field.
        declared: i32,
        /// The number of records found.
        found: usize,
    },
    /// A record is malformed.
    BadRecord {
        /// Index of the record in the batch (0-based).
        index: usize,
        /// Byte position of the offending field.
        position: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes follow the last record that do not form records.
    TrailingBytes {
        /// Byte position where they start.
        position: usize,
        /// How many there are.
        remaining: usize,
    },
    /// A batch must hold at least one record to be built.
    Empty,
    /// The batch (or one of its fields) would not fit the format's i32 lengths.
    TooLarge {
        /// The size that was needed, in bytes (saturated at `usize::MAX`).
        size: usize,
        /// The largest size allowed.
        max: usize,
    },
    /// A record's timestamp minus the batch's base timestamp does not fit in an i64.
    TimestampOverflow {
        /// The batch's base timestamp (the first record's).
        base_timestamp: i64,
        /// The record's timestamp.
        timestamp: i64,
    },
    /// A header key handed to the builder is not valid UTF-8.
    InvalidHeaderKey {
        /// Index of the header in the record.
        header: usize,
    },
    /// A control batch's record is not a control record Kafka can read: no record, a key
    /// shorter than 4 bytes or with a negative version, or a COMMIT / ABORT marker whose value
    /// is shorter than 6 bytes or has a negative version.
    InvalidControlRecord {
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::TooShort { needed, available } => {
                write!(
                    f,
                    "batch truncated: needs {needed} bytes, {available} present"
                )
            }
            BatchError::LengthMismatch {
                declared,
                available,
            } => write!(
                f,
                "batch declares {declared} bytes (batchLength + 12) but {available} were given"
            ),
            BatchError::InvalidLength { batch_length } => write!(
                f,
                "invalid batchLength {batch_length}: the smallest batch has {}",
                super::MIN_BATCH_LENGTH
            ),
            BatchError::BadMagic(m) => write!(f, "unsupported magic {m}: expected 2"),
            BatchError::CrcMismatch { stored, computed } => write!(
                f,
                "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            BatchError::InvalidAttributes(a) => write!(
                f,
                "invalid attributes {a:#06x}: compression codec {} does not exist",
                a & super::COMPRESSION_CODEC_MASK
            ),
            BatchError::UnsupportedCompression { codec } => {
                write!(f, "compressed batch (codec {codec}) cannot be decoded")
            }
            BatchError::BadCompressedData { codec, reason } => {
                write!(f, "compressed records (codec {codec}): {reason}")
            }
            BatchError::DecompressedTooLarge { codec, max } => write!(
                f,
                "compressed records (codec {codec}) inflate past {max} bytes"
            ),
            BatchError::InvalidCompressionLevel { codec, level } => {
                write!(
                    f,
                    "compression level {level} is out of range for codec {codec}"
                )
            }
            BatchError::InvalidLastOffsetDelta(d) => {
                write!(f, "invalid lastOffsetDelta {d}: must be >= 0")
            }
            BatchError::InvalidRecordCount {
                record_count,
                last_offset_delta,
            } => write!(
                f,
                "invalid recordCount {record_count}: must be in 0..=lastOffsetDelta + 1 \
                 (lastOffsetDelta {last_offset_delta})"
            ),
            BatchError::OffsetOverflow {
                base_offset,
                last_offset_delta,
            } => write!(
                f,
                "offset overflow: baseOffset {base_offset} + lastOffsetDelta {last_offset_delta} \
                 + 1 exceeds i64"
            ),
            BatchError::RecordCountMismatch { declared, found } => write!(
                f,
                "recordCount is {declared} but the batch holds {found} records"
            ),
            BatchError::BadRecord {
                index,
                position,
                reason,
            } => write!(f, "record {index} at byte {position}: {reason}"),
            BatchError::TrailingBytes {
                position,
                remaining,
            } => write!(
                f,
                "{remaining} unexpected bytes after the last record, at byte {position}"
            ),
            BatchError::Empty => write!(f, "a batch needs at least one record"),
            BatchError::TooLarge { size, max } => {
                write!(f, "batch too large: {size} bytes, at most {max} allowed")
            }
            BatchError::TimestampOverflow {
                base_timestamp,
                timestamp,
            } => write!(
                f,
                "timestamp {timestamp} is too far from the base timestamp {base_timestamp}"
            ),
            BatchError::InvalidHeaderKey { header } => {
                write!(f, "record header {header}: key is not valid UTF-8")
            }
            BatchError::InvalidControlRecord { reason } => {
                write!(f, "invalid control record: {reason}")
            }
        }
    }
}

impl std::error::Error for BatchError {}
