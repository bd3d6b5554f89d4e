//! Reads: by offset and by timestamp.

use std::sync::Arc;

use bytes::Bytes;

use super::Log;
use crate::batch::RecordBatch;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// The answer to [`Log::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRead {
    /// Whole batches, each validated (CRC checked unless `verify_crc_on_read` is off).
    pub batches: Vec<RecordBatch>,
    /// The same batches laid end to end exactly as on disk (and as a Kafka fetch response
    /// carries them): one zero-copy slice of the segment.
    pub bytes: Bytes,
    /// The offset to ask for next.
    pub next_offset: i64,
    /// The log start offset when the read began.
    pub log_start_offset: i64,
    /// The log end offset when the read began.
    pub log_end_offset: i64,
}

impl LogRead {
    /// True if no batch was returned (the reader is at the log end offset).
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

impl Log {
    /// Reads whole batches starting from the one that holds `from_offset`, up to `max_bytes`
    /// (but always at least one batch, however large, as Kafka does), from one segment.
    ///
    /// Reading at the log end offset returns no batches. Batches are zero-copy slices of the
    /// segment's map; holding them keeps that map alive, even after the segment is deleted.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] below the log start offset or above the log end offset;
    /// [`Error::Corrupt`] (naming the file and position) if a batch on disk fails its checks:
    /// bad bytes are never returned.
    pub fn read(&self, from_offset: i64, max_bytes: usize) -> Result<LogRead> {
        self.read_up_to(from_offset, max_bytes, i64::MAX)
    }

    /// [`Log::read`], returning only batches that start below `max_offset` (for example the
    /// high watermark).
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read_up_to(
        &self,
        from_offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<LogRead> {
        let log_end_offset = self.log_end_offset();
        let log_start_offset = self.log_start_offset();
        if from_offset < log_start_offset || from_offset > log_end_offset {
            return Err(Error::OffsetOutOfRange {
                requested: from_offset,
                log_start_offset,
                log_end_offset,
            });
        }
        let empty = LogRead {
            batches: Vec::new(),
            bytes: Bytes::new(),
            next_offset: from_offset,
            log_start_offset,
            log_end_offset,
        };
        let limit = max_offset.min(log_end_offset);
        if from_offset >= limit {
            return Ok(empty);
        }
        let out_of_range = || Error::OffsetOutOfRange {
            requested: from_offset,
            log_start_offset: self.log_start_offset(),
            log_end_offset: self.log_end_offset(),
        };
        // No segment at or below the offset: retention removed it since the range check.
        let mut segment = Some(self.floor_segment(from_offset).ok_or_else(out_of_range)?);
        while let Some(seg) = segment {
            if seg.base_offset() >= limit {
                break;
            }
            let view = match self.view_of(&seg) {
                Ok(v) => v,
                // Deleted (and unmapped) between the lookup and the mapping.
                Err(_) if seg.is_deleted() => return Err(out_of_range()),
                Err(e) => return Err(e),
            };
            let found = view.read(
                &seg,
                from_offset,
                max_bytes,
                limit,
                self.config.verify_crc_on_read,
            )?;
            if let Some(r) = found {
                return Ok(LogRead {
                    batches: r.batches,
                    bytes: r.bytes,
                    next_offset: r.next_offset,
                    log_start_offset,
                    log_end_offset,
                });
            }
            segment = self.next_segment(seg.base_offset());
        }
        // Nothing at or after `from_offset` below the limit: an offset gap up to it.
        Ok(LogRead {
            next_offset: limit,
            ..empty
        })
    }

    /// The first offset whose record timestamp is `>= timestamp`, or `None` if every record is
    /// older (Kafka's ListOffsets by timestamp). Records below the log start offset are not
    /// considered.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a batch on the way fails its checks.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        let log_start_offset = self.log_start_offset();
        let log_end_offset = self.log_end_offset();
        let mut after = None;
        while let Some(seg) = self.timestamp_candidate(after, log_start_offset, timestamp) {
            after = Some(seg.base_offset());
            let (max_ts, mapped) = seg.max_timestamp(self.config.index_interval_bytes)?;
            if mapped {
                self.note_mapped(Arc::clone(&seg));
            }
            if max_ts < timestamp {
                if let Some(position) = seg.damaged_at() {
                    // Part of the segment cannot be read: the answer may lie there.
                    return Err(Error::corrupt(
                        &seg.paths().log,
                        position,
                        "damaged batch: the timestamps from here on are unknown",
                    ));
                }
                continue;
            }
            let view = self.view_of(&seg)?;
            let found = view.offset_for_timestamp(
                &seg,
                timestamp,
                log_start_offset,
                self.config.verify_crc_on_read,
            )?;
            if let Some(offset) = found {
                if offset >= log_end_offset {
                    return Ok(None);
                }
                return Ok(Some(offset));
            }
        }
        Ok(None)
    }

    /// The first segment after the one based at `after` (from the log start if `None`) that
    /// may hold a record stamped `timestamp` or later, or is damaged: segments whose largest
    /// timestamp is known and older are passed over under the lock, without cloning the list.
    fn timestamp_candidate(
        &self,
        after: Option<i64>,
        log_start_offset: i64,
        timestamp: i64,
    ) -> Option<Arc<Segment>> {
        let segs = self.segments();
        let first = match after {
            Some(base) => segs.partition_point(|s| s.base_offset() <= base),
            None => 0,
        };
        segs.get(first..)?
            .iter()
            .find(|seg| {
                seg.end_offset() > log_start_offset
                    && !seg.is_deleted()
                    && (seg.damaged_at().is_some()
                        || seg.known_max_timestamp().is_none_or(|ts| ts >= timestamp))
            })
            .cloned()
    }
}
