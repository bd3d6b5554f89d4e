//! What an append checks inside a client's (or leader's) batch, and the codec it stores it in:
//! partlog's version of the rules of Kafka's broker-side log validator.
//!
//! For [`AppendOrigin::Client`](super::AppendOrigin::Client) and
//! [`AppendOrigin::Leader`](super::AppendOrigin::Leader) (a follower's batches are taken as the
//! leader wrote them: header, length and CRC only, never inflated):
//! - a batch larger than `max_batch_bytes` is refused before anything is inflated
//!   ([`Error::BatchTooLarge`]);
//! - an uncompressed batch is walked record by record ([`RecordBatch::validate_records`]);
//! - a compressed batch must declare as many records as its offset range
//!   (`recordCount == lastOffsetDelta + 1`, Kafka's "inconsistent batch offset range" rule for
//!   clients); its records are inflated, at most `max_decompressed_batch_bytes` of them (a
//!   decompression bomb stops there, [`BatchError::DecompressedTooLarge`]), and walked with the
//!   same rules as an uncompressed batch's: sane varints and sizes, offset deltas strictly
//!   increasing within the range (so, with the count rule, exactly `0..n-1` in order),
//!   timestamps that do not overflow, exactly `recordCount` records and nothing after them.
//!   Errors are [`Error::InvalidRecords`], naming the batch's index and base offset.
//!   Kafka rewrites a compressed batch whose inner offsets are not `0..n-1` instead of refusing
//!   it (for old clients of format v1); partlog refuses it, as it refuses such an uncompressed
//!   batch.
//!
//! The codec (Kafka's rule, "in-place assignment"): the batch is stored as sent when the target
//! codec (`compression.type`, or the batch's own codec for `producer`) is its codec, whatever the
//! level; otherwise its records are re-encoded in the target codec at the configured level
//! (an uncompressed control batch stays uncompressed, as Kafka leaves it). The new batch keeps
//! every header field but the codec bits, `batchLength` and the CRC; it must again fit
//! `max_batch_bytes` ([`Error::BatchTooLarge`]).
//!
//! `maxTimestamp` (Kafka's `setMaxTimestamp`): a stored client or leader batch carries the
//! largest timestamp of its records, whatever its header said (a copy is made, CRC recomputed,
//! only when it differs); time indexes, time lookups and time retention read it.

use bytes::Bytes;

use crate::batch::{
    compression, compute_crc, BatchError, BatchHeader, Compression, CompressionLevel, RecordBatch,
    COMPRESSION_CODEC_MASK, HEADER_SIZE, LOG_OVERHEAD,
};
use crate::config::Config;
use crate::error::{Error, Result};

/// Byte position of `batchLength`.
const LENGTH_AT: usize = 8;
/// Byte position of the CRC.
const CRC_AT: usize = 17;
/// Byte position of the attributes.
const ATTRIBUTES_AT: usize = 21;
/// Byte position of `maxTimestamp`.
const MAX_TIMESTAMP_AT: usize = 35;

/// Validates `batch`, the `index`-th batch of a client or leader append, and returns the batch
/// to store in its place, `None` to store it as sent. See the module docs.
pub(super) fn check(
    batch: &RecordBatch,
    index: usize,
    config: &Config,
) -> Result<Option<RecordBatch>> {
    let h = batch.header();
    let max = config.effective_max_batch_bytes();
    if batch.size() > max {
        return Err(Error::BatchTooLarge {
            size: batch.size(),
            max,
        });
    }
    let source = batch.compression();
    let (mut target, level) = config.compression_target(source);
    if source == Compression::None && h.is_control() {
        target = Compression::None;
    }
    let refused = |source| Error::InvalidRecords {
        batch: index,
        base_offset: h.base_offset,
        source,
    };
    let bytes = batch.as_bytes();
    if source == Compression::None {
        let max_timestamp = batch.validated_max_timestamp()?;
        if target == Compression::None {
            if max_timestamp == h.max_timestamp {
                return Ok(None);
            }
            let mut out = bytes.to_vec();
            let header = set_max_timestamp(&mut out, max_timestamp).map_err(refused)?;
            return sized(header, out, max).map(Some);
        }
        let mut header = bytes[..HEADER_SIZE].to_vec();
        header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]
            .copy_from_slice(&max_timestamp.to_be_bytes());
        let (header, out) =
            encode(&header, &bytes[HEADER_SIZE..], target, level).map_err(refused)?;
        return sized(header, out, max).map(Some);
    }
    if i64::from(h.record_count) != i64::from(h.last_offset_delta) + 1 {
        return Err(refused(BatchError::InvalidRecordCount {
            record_count: h.record_count,
            last_offset_delta: h.last_offset_delta,
        }));
    }
    let plain = inflate(
        batch,
        config.max_decompressed_batch_bytes as usize,
        target == Compression::None,
    )
    .map_err(refused)?;
    if target == source {
        if plain.max_timestamp == h.max_timestamp {
            return Ok(None);
        }
        let mut out = bytes.to_vec();
        let header = set_max_timestamp(&mut out, plain.max_timestamp).map_err(refused)?;
        return sized(header, out, max).map(Some);
    }
    let (header, out) = if target == Compression::None {
        (*plain.header(), plain.into_bytes())
    } else {
        let (header, out) =
            encode(&plain[..HEADER_SIZE], &plain[HEADER_SIZE..], target, level).map_err(refused)?;
        (header, Bytes::from(out))
    };
    sized(header, out, max).map(Some)
}

/// The re-encoded batch, if it fits.
fn sized(header: BatchHeader, bytes: impl Into<Bytes>, max: usize) -> Result<RecordBatch> {
    let bytes = bytes.into();
    if bytes.len() > max {
        return Err(Error::BatchTooLarge {
            size: bytes.len(),
            max,
        });
    }
    Ok(RecordBatch::with_header(header, bytes)?)
}

/// A compressed batch's records, inflated (at most `max` bytes of them) behind a copy of its
/// header marked uncompressed, and walked as an uncompressed batch is. `crc`: compute the new
/// batch's CRC (needed only if it is stored).
fn inflate(batch: &RecordBatch, max: usize, crc: bool) -> std::result::Result<Plain, BatchError> {
    let bytes = batch.as_bytes();
    let body = &bytes[HEADER_SIZE..];
    // Most batches inflate to a few times their size: reserve that (never past the bound).
    let guess = body.len().saturating_mul(4).min(max);
    let mut out = Vec::with_capacity(HEADER_SIZE + guess);
    out.extend_from_slice(&bytes[..HEADER_SIZE]);
    compression::decompress(batch.compression(), body, max, &mut out)?;
    let header = seal(&mut out, Compression::None, false)?;
    let unchecked = RecordBatch::with_header(header, Bytes::from(out))?;
    let max_timestamp = unchecked.validated_max_timestamp()?;
    // The stored header carries the records' largest timestamp (and, if stored, its CRC).
    let mut out = Vec::from(unchecked.into_bytes());
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    let header = seal(&mut out, Compression::None, crc)?;
    Ok(Plain {
        batch: RecordBatch::with_header(header, Bytes::from(out))?,
        max_timestamp,
    })
}

/// An inflated batch that passed the record walk, its header's `maxTimestamp` set to its
/// records' largest timestamp.
struct Plain {
    batch: RecordBatch,
    /// The largest timestamp of its records (see [`RecordBatch::validated_max_timestamp`]).
    max_timestamp: i64,
}

impl Plain {
    fn header(&self) -> &BatchHeader {
        self.batch.header()
    }

    fn into_bytes(self) -> Bytes {
        self.batch.into_bytes()
    }
}

impl std::ops::Deref for Plain {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.batch.as_bytes()
    }
}

/// Writes `max_timestamp` into the batch in `out` and recomputes its CRC; its header.
fn set_max_timestamp(
    out: &mut [u8],
    max_timestamp: i64,
) -> std::result::Result<BatchHeader, BatchError> {
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = compute_crc(out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    BatchHeader::parse(out)
}

/// A batch with `header` (the 61 bytes of a valid batch) and `records` (its uncompressed
/// records) encoded in `codec` at `level`: the header's fields kept, its codec bits, length and
/// CRC set.
pub(super) fn encode(
    header: &[u8],
    records: &[u8],
    codec: Compression,
    level: CompressionLevel,
) -> std::result::Result<(BatchHeader, Vec<u8>), BatchError> {
    let mut out = Vec::new();
    let header = encode_into(header, records, codec, level, &mut out)?;
    Ok((header, out))
}

/// [`encode`] into `out` (cleared first; its allocation is reused).
pub(super) fn encode_into(
    header: &[u8],
    records: &[u8],
    codec: Compression,
    level: CompressionLevel,
    out: &mut Vec<u8>,
) -> std::result::Result<BatchHeader, BatchError> {
    out.clear();
    // Room for incompressible records too (the fast codecs' bound is a little above the input).
    out.reserve(HEADER_SIZE + records.len() + records.len() / 64 + 64);
    out.extend_from_slice(header);
    if codec == Compression::None {
        out.extend_from_slice(records);
    } else {
        compression::compress(codec, level, records, out)?;
    }
    seal(out, codec, true)
}

/// Sets the codec bits, `batchLength` and (if `crc`) the CRC of the batch in `out`, and parses
/// its header.
fn seal(
    out: &mut [u8],
    codec: Compression,
    crc: bool,
) -> std::result::Result<BatchHeader, BatchError> {
    let too_large = BatchError::TooLarge {
        size: out.len(),
        max: i32::MAX as usize,
    };
    let length = out
        .len()
        .checked_sub(LOG_OVERHEAD)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or(too_large)?;
    out[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = i16::from_be_bytes([out[ATTRIBUTES_AT], out[ATTRIBUTES_AT + 1]]);
    let attributes = (attributes & !COMPRESSION_CODEC_MASK) | i16::from(codec.codec());
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    if crc {
        let crc = compute_crc(out);
        out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
    BatchHeader::parse(out)
}
