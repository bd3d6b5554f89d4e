//! Kafka record batches, format v2 (magic 2), byte for byte.
//!
//! A batch is a 61-byte big-endian header followed by its records:
//!
//! | offset | field | type |
//! |---|---|---|
//! | 0 | baseOffset | i64 |
//! | 8 | batchLength (bytes after this field) | i32 |
//! | 12 | partitionLeaderEpoch | i32 |
//! | 16 | magic (= 2) | i8 |
//! | 17 | crc (CRC-32C of bytes 21..end) | u32 |
//! | 21 | attributes | i16 |
//! | 23 | lastOffsetDelta | i32 |
//! | 27 | baseTimestamp | i64 |
//! | 35 | maxTimestamp | i64 |
//! | 43 | producerId | i64 |
//! | 51 | producerEpoch | i16 |
//! | 53 | baseSequence | i32 |
//! | 57 | recordCount | i32 |
//!
//! Each record is: length varint, attributes i8, timestampDelta varlong, offsetDelta varint,
//! keyLength varint (-1 = null), key, valueLength varint (-1 = null), value, headerCount varint, and
//! per header keyLength varint, UTF-8 key, valueLength varint (-1 = null), value. All varints are
//! zigzag ([`varint`]).
//!
//! * [`RecordBatch`] is a validated zero-copy view of one batch ([`RecordBatch::parse`],
//!   [`RecordBatch::parse_crc_only`], [`RecordBatch::parse_header_only`]), and
//!   [`RecordBatch::records`] iterates its records without copying payloads.
//! * [`RecordBatch::record_views`] iterates the records as [`RecordView`]s that borrow key, value
//!   and headers from the batch (no allocation, no reference count);
//!   [`RecordBatch::record_at`] finds one record by offset, passing over the records before it
//!   by their length prefixes; [`PositionedBatch`] keeps a batch with the position found.
//! * [`batches`] walks batches laid end to end (a fetch response, a segment file).
//! * [`BatchBuilder`] encodes records into a new batch, uncompressed or in any of Kafka's
//!   codecs ([`BatchBuilder::compression`]), from owned ([`SimpleRecord`]) or borrowed
//!   ([`BorrowedRecord`]) records.
//! * [`set_base_offset`] / [`set_partition_leader_epoch`] patch the two fields outside the CRC.
//!
//! Compressed batches (gzip, snappy, lz4, zstd: [`compression`], byte-compatible with Kafka's
//! Java clients) are stored as written; every record API decompresses them (once per batch, at
//! most [`MAX_DECOMPRESSED_SIZE`] bytes: a bomb is [`BatchError::DecompressedTooLarge`], a bad
//! stream [`BatchError::BadCompressedData`]), and [`RecordBatch::record_views_in`] decompresses
//! into a buffer the caller reuses across batches. [`BatchError::UnsupportedCompression`] is
//! left for [`compression::decompress`] asked to decompress codec 0.
//!
//! Nothing in this module panics on malformed input, and nothing allocates in proportion to a
//! length field before checking it against the bytes actually present.

mod borrowed;
mod builder;
pub mod compression;
mod control;
#[cfg(target_arch = "x86_64")]
mod crc_fold;
mod error;
mod fast;
mod header;
mod iter;
mod record;
pub mod varint;
mod view;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compression;
#[cfg(test)]
mod tests_views;

pub use borrowed::{
    BorrowedRecord, HeaderView, HeaderViews, PositionedBatch, RecordView, RecordViews,
};
pub use builder::BatchBuilder;
pub use compression::{Compression, CompressionLevel};
pub use control::{EndTxnMarker, TxnResult};
pub use error::BatchError;
pub use header::{
    compute_crc, crc32c, peek_frame, peek_partition_leader_epoch, set_base_offset,
    set_partition_leader_epoch, BatchHeader,
};
pub(crate) use header::{peek_span, BatchSpan};
pub use iter::{batches, BatchIter};
pub use record::{Header, Record, RecordIter, SimpleRecord};
pub(crate) use view::check_crc;
pub use view::{RecordBatch, MAX_DECOMPRESSED_SIZE};

/// Size of the v2 batch header in bytes.
pub const HEADER_SIZE: usize = 61;
/// Bytes before the part counted by `batchLength`: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// The smallest valid `batchLength`: a header without records.
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;
/// The batch format version this module reads and writes.
pub const MAGIC: i8 = 2;
/// `producerId` of a batch from a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch from a non-idempotent producer.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch from a non-idempotent producer.
pub const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` of a batch no leader has stamped yet.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;

/// Attributes bits 0-2: the compression codec.
pub const COMPRESSION_CODEC_MASK: i16 = 0x07;
/// Attributes bit 3: timestamps are the log append time.
pub const TIMESTAMP_TYPE_MASK: i16 = 0x08;
/// Attributes bit 4: the batch is part of a transaction.
pub const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
/// Attributes bit 5: the batch holds control records (transaction markers).
pub const CONTROL_FLAG_MASK: i16 = 0x20;

/// What record timestamps mean (attributes bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Bit 3 clear: the producer's timestamps.
    CreateTime,
    /// Bit 3 set: the broker's append time, stored as the batch's `maxTimestamp`; readers report
    /// it as the timestamp of every record (as Kafka does).
    LogAppendTime,
}
