//! The record path: one record read by its offset, and appends of borrowed records.

use std::cell::Cell;

use super::read::{unless_vanished, Attempt};
use super::{AppendInfo, AppendOrigin, Log};
use crate::batch::{BatchBuilder, BatchError, BorrowedRecord, PositionedBatch, HEADER_SIZE};
use crate::error::{Error, Result};

thread_local! {
    /// The buffer each appending thread encodes its batches into, reused from one append to the
    /// next (a batch is copied into the segment before the append returns).
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Largest scratch buffer kept for the next append; larger ones are freed.
const SCRATCH_KEEP_BYTES: usize = 2 << 20;

impl Log {
    /// The record with exactly `offset`, with the batch that holds it ([`PositionedBatch`]:
    /// [`PositionedBatch::record`] borrows the record, [`PositionedBatch::records`] iterates
    /// from it to the end of the batch). `Ok(None)` at the log end offset, or if no record has
    /// that offset: a gap inside a batch left by compaction, or an offset gap between batches
    /// (a compacted leader's copy, a truncation inside a batch); [`Log::read`] from such an
    /// offset answers with the next batch, as Kafka's fetch does.
    ///
    /// The batch's CRC is checked once (unless `verify_crc_on_read` is off); the record is
    /// found by walking the length prefixes of the records before it, and is itself decoded
    /// and checked ([`crate::batch::RecordBatch::record_at`]). Nothing is copied: the record
    /// borrows from the segment's map, which the batch keeps alive.
    ///
    /// ```
    /// # fn main() -> partlog::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// use partlog::{Config, Log, batch::BorrowedRecord};
    /// let log = Log::open(dir.path(), Config::default())?;
    /// let records = [
    ///     BorrowedRecord::new(1_000, None, Some(&b"first"[..])),
    ///     BorrowedRecord::new(1_001, Some(&b"k"[..]), Some(&b"second"[..])),
    /// ];
    /// log.append_records(&records)?;
    /// let found = log.read_record(1)?.expect("offset 1 exists");
    /// assert_eq!(found.record().value(), Some(&b"second"[..]));
    /// assert!(log.read_record(2)?.is_none()); // the log end offset
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A lookup that races retention or truncation answers as of one moment, as
    /// [`Log::read`] does: if its segment goes or the log is cut while it runs, it starts
    /// again with the new offsets.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] below the log start offset or above the log end offset (its
    /// range never contains `offset`); [`Error::Corrupt`] (naming the file and position) if the
    /// batch fails its CRC, its compressed records do not decompress, or the record fails its
    /// checks; [`Error::Io`] if a segment file cannot be mapped for a reason other than
    /// its deletion by the log.
    pub fn read_record(&self, offset: i64) -> Result<Option<PositionedBatch>> {
        self.retry(|| self.try_read_record(offset))
    }

    /// A record in a compressed batch is found in the batch's decompressed form, which the
    /// [`PositionedBatch`] holds ([`crate::batch::RecordBatch::into_positioned`]).
    ///
    /// One attempt at [`Log::read_record`], as [`Log::read`] makes them: [`Attempt::Again`] if
    /// its segment was removed or replaced, or a truncation ran, while it looked.
    fn try_read_record(&self, offset: i64) -> Result<Attempt<Option<PositionedBatch>>> {
        let truncations = self.truncation_count();
        // The start first: it only grows, and is published before anything below it goes.
        let log_start_offset = self.log_start_offset();
        let log_end_offset = self.log_end_offset();
        if offset < log_start_offset || offset > log_end_offset {
            if truncations != self.truncation_count() {
                return Ok(Attempt::Again);
            }
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start_offset,
                log_end_offset,
            });
        }
        if offset == log_end_offset {
            return Ok(Attempt::Done(None));
        }
        // No segment at or below the offset: retention removed it since the range check.
        let Some(seg) = self.floor_segment(offset) else {
            return Ok(Attempt::Again);
        };
        self.pause(super::pause::Point::ReadChoseSegment);
        let view = match unless_vanished(&seg, self.view_of(&seg))? {
            Attempt::Done(v) => v,
            Attempt::Again => return Ok(Attempt::Again),
        };
        self.pause(super::pause::Point::ReadMappedSegment);
        let verify_crc = self.config.verify_crc_on_read;
        let found = match unless_vanished(&seg, view.read_batch(&seg, offset, verify_crc))? {
            Attempt::Done(f) => f,
            Attempt::Again => return Ok(Attempt::Again),
        };
        if truncations != self.truncation_count() {
            // The batch may be one the truncation cut.
            return Ok(Attempt::Again);
        }
        let Some((position, batch)) = found else {
            return Ok(Attempt::Done(None));
        };
        if offset < batch.base_offset() {
            // An offset gap: the batch found is the one after it, which holds no such record
            // (nor needs opening to say so).
            return Ok(Attempt::Done(None));
        }
        match batch.into_positioned(offset) {
            Ok(found) => Ok(Attempt::Done(found)),
            // A valid batch whose records partlog cannot open: not damage.
            Err(BatchError::UnsupportedCompression { codec }) => {
                Err(Error::UnsupportedCompression { codec })
            }
            Err(e) => Err(Error::corrupt(
                &seg.paths().log,
                position as u64,
                e.to_string(),
            )),
        }
    }

    /// Appends `records` as one batch, encoding their borrowed keys, values and headers
    /// straight into it: no allocation per record (one buffer for the batch). The log assigns
    /// the offsets, as [`Log::append`] does.
    ///
    /// # Errors
    /// As [`Log::append`].
    pub fn append_records(&self, records: &[BorrowedRecord<'_>]) -> Result<AppendInfo> {
        let estimate = records.iter().fold(HEADER_SIZE, |n, r| {
            n.saturating_add(r.encoded_size_estimate())
        });
        self.append_encoded(estimate, AppendOrigin::Client, |builder| {
            records.iter().try_for_each(|r| builder.push_borrowed(r))
        })
    }

    /// Encodes one batch with `encode` (into the thread's reused buffer, `estimate` bytes
    /// reserved) and appends it for `origin`.
    pub(super) fn append_encoded(
        &self,
        estimate: usize,
        origin: AppendOrigin,
        encode: impl FnOnce(&mut BatchBuilder) -> std::result::Result<(), BatchError>,
    ) -> Result<AppendInfo> {
        let mut builder = BatchBuilder::with_buffer(SCRATCH.take(), estimate);
        encode(&mut builder)?;
        let (header, mut bytes) = builder.finish()?;
        let appended = self.append_scratch(&header, &mut bytes, origin);
        if bytes.capacity() <= SCRATCH_KEEP_BYTES {
            SCRATCH.set(bytes);
        }
        appended
    }
}
