//! Reads: by offset and by timestamp.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::txn_index::{AbortedTransaction, IsolationLevel};
use super::{lock, Log};
use crate::batch::RecordBatch;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// The answer to [`Log::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// For a `read_committed` read ([`Log::read_with_isolation`]), the aborted transactions
    /// whose records may lie in the batches returned (Kafka's FetchResponse
    /// `AbortedTransactions`, ordered by marker); `None` for any other read.
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
}

impl LogRead {
    /// True if no batch was returned (the reader is at the log end offset).
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }
}

/// Why one attempt at a read or lookup stopped without an answer.
pub(super) enum Attempt<T> {
    /// The answer.
    Done(T),
    /// A segment it chose was deleted or cut meanwhile, or a truncation ran during it: the
    /// caller starts again with fresh offsets.
    Again,
}

/// Turns the failure to map or search `seg` into [`Attempt::Again`] if the log removed the
/// segment meanwhile (its file may be gone; the error says nothing about the data).
pub(super) fn unless_vanished<T>(seg: &Segment, r: Result<T>) -> Result<Attempt<T>> {
    match r {
        Ok(v) => Ok(Attempt::Done(v)),
        Err(_) if seg.is_deleted() => Ok(Attempt::Again),
        Err(e) => Err(e),
    }
}

/// Attempts a read or lookup makes without a lock before its last one, under the structure
/// lock.
const LOCK_FREE_ATTEMPTS: u32 = 8;

impl Log {
    /// Runs `attempt` until it answers, a bounded number of times.
    ///
    /// An attempt starts again only if a truncation, retention or delete-records changed the log
    /// under it, or if it found in the list a segment marked deleted: a truncation in flight
    /// leaves one there until it finishes, and a truncation that failed part way leaves one for
    /// good. So the attempts without a lock stop early once the log is marked failed, and the
    /// last one runs under the structure lock, where no segment can leave the list and no
    /// truncation can run: it answers, or finds the list left inconsistent by a failed
    /// operation, and that is [`Error::PreviousIo`] (before this bound, such a read spun
    /// forever). Only a read that raced such operations this many times waits for one.
    pub(super) fn retry<T>(&self, mut attempt: impl FnMut() -> Result<Attempt<T>>) -> Result<T> {
        for _ in 0..LOCK_FREE_ATTEMPTS {
            if let Attempt::Done(v) = attempt()? {
                return Ok(v);
            }
            if self.failed.load(Ordering::Acquire) {
                break;
            }
        }
        let _structure = lock(&self.structure_lock);
        match attempt()? {
            Attempt::Done(v) => Ok(v),
            Attempt::Again => Err(Error::PreviousIo),
        }
    }

    /// Reads whole batches starting from the one that holds `from_offset`, up to `max_bytes`
    /// (but always at least one batch, however large, as Kafka does), from one segment.
    ///
    /// Reading at the log end offset returns no batches. Reading from an offset in an offset
    /// gap (Kafka's logs may skip offsets: a compacted leader's copy, a truncation inside a
    /// batch) starts at the next batch, as Kafka's fetch does. Batches are zero-copy slices of
    /// the segment's map; holding them keeps that map alive, even after the segment is deleted.
    ///
    /// A read that races retention or truncation answers as of one moment: if its segment goes
    /// or the log is cut while it runs, it starts again with the new offsets.
    ///
    /// # Errors
    /// [`Error::OffsetOutOfRange`] below the log start offset or above the log end offset (its
    /// range never contains `from_offset`); [`Error::Corrupt`] (naming the file and position) if
    /// a batch on disk fails its checks: bad bytes are never returned; [`Error::Io`] if a
    /// segment file cannot be mapped for a reason other than its deletion by the log.
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
        self.retry(|| self.try_read(from_offset, max_bytes, max_offset))
    }

    /// [`Log::read_up_to`] at an isolation level (Kafka's fetch `isolation_level`). With
    /// [`IsolationLevel::ReadCommitted`] the read stops at the last stable offset too, and
    /// returns the aborted transactions overlapping the batches returned (Kafka's
    /// `collectAbortedTransactions`): a reader drops, for each, the records of that producer's
    /// transactional batches from its first offset on until that producer's ABORT marker.
    ///
    /// ```
    /// use partlog::batch::{BatchBuilder, EndTxnMarker, SimpleRecord, TxnResult};
    /// use partlog::log::{AbortedTransaction, IsolationLevel};
    /// use partlog::{Config, Log};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = Log::open(dir.path(), Config::default())?;
    /// let mut b = BatchBuilder::new().producer(7, 0, 0).transactional(true);
    /// b.push(&SimpleRecord::new(1, Some("k"), Some("v")))?;
    /// log.append_batch(&b.build()?)?;
    /// let open = log.read_with_isolation(0, 1 << 20, i64::MAX, IsolationLevel::ReadCommitted)?;
    /// assert!(open.is_empty()); // nothing past the open transaction
    /// log.append_marker(7, 0, EndTxnMarker::new(TxnResult::Abort, 0), 2)?;
    /// let r = log.read_with_isolation(0, 1 << 20, i64::MAX, IsolationLevel::ReadCommitted)?;
    /// assert_eq!(r.batches.len(), 2);
    /// assert_eq!(r.aborted_transactions, Some(vec![AbortedTransaction::new(7, 0)]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Log::read`].
    pub fn read_with_isolation(
        &self,
        from_offset: i64,
        max_bytes: usize,
        max_offset: i64,
        isolation: IsolationLevel,
    ) -> Result<LogRead> {
        if isolation == IsolationLevel::ReadUncommitted {
            return self.read_up_to(from_offset, max_bytes, max_offset);
        }
        // The bound first: every `.txnindex` entry below it is written.
        let lso = self.last_stable_offset();
        let mut read = self.read_up_to(from_offset, max_bytes, max_offset.min(lso))?;
        let aborted = match read.batches.first() {
            None => Vec::new(),
            Some(_) => {
                let upper = read.next_offset;
                let from = from_offset;
                let base = self.floor_segment(from).map_or(from, |s| s.base_offset());
                lock(&self.txn_indexes).collect(base, from, upper)
            }
        };
        read.aborted_transactions = Some(aborted);
        Ok(read)
    }

    /// The entries of every `.txnindex` of the log, by segment base offset (for inspection and
    /// checks against Kafka's reader).
    pub fn aborted_txns(&self) -> Vec<(i64, Vec<super::AbortedTxn>)> {
        lock(&self.txn_indexes)
            .all()
            .iter()
            .map(|(&b, e)| (b, e.clone()))
            .collect()
    }

    fn try_read(
        &self,
        from_offset: i64,
        max_bytes: usize,
        max_offset: i64,
    ) -> Result<Attempt<LogRead>> {
        let truncations = self.truncation_count();
        // The start is loaded first: it only grows, and it is published before anything below
        // it goes, so a segment missing later means the start has moved past it.
        let log_start_offset = self.log_start_offset();
        let log_end_offset = self.log_end_offset();
        if from_offset < log_start_offset || from_offset > log_end_offset {
            if truncations != self.truncation_count() {
                return Ok(Attempt::Again);
            }
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
            aborted_transactions: None,
        };
        let limit = max_offset.min(log_end_offset);
        if from_offset >= limit {
            return Ok(Attempt::Done(empty));
        }
        // No segment at or below the offset: retention removed it since the range check.
        let Some(mut seg) = self.floor_segment(from_offset) else {
            return Ok(Attempt::Again);
        };
        loop {
            if seg.base_offset() >= limit {
                break;
            }
            self.pause(super::pause::Point::ReadChoseSegment);
            let view = match unless_vanished(&seg, self.view_of(&seg))? {
                Attempt::Done(v) => v,
                Attempt::Again => return Ok(Attempt::Again),
            };
            self.pause(super::pause::Point::ReadMappedSegment);
            let found = view.read(
                &seg,
                from_offset,
                max_bytes,
                limit,
                self.config.verify_crc_on_read,
            );
            let found = match unless_vanished(&seg, found)? {
                Attempt::Done(f) => f,
                Attempt::Again => return Ok(Attempt::Again),
            };
            if truncations != self.truncation_count() {
                // The bytes may be of batches the truncation cut.
                return Ok(Attempt::Again);
            }
            if let Some(r) = found {
                return Ok(Attempt::Done(LogRead {
                    batches: r.batches,
                    bytes: r.bytes,
                    next_offset: r.next_offset,
                    log_start_offset,
                    log_end_offset,
                    aborted_transactions: None,
                }));
            }
            match self.next_segment(seg.base_offset()) {
                Some(next) => seg = next,
                None => break,
            }
        }
        if truncations != self.truncation_count() {
            return Ok(Attempt::Again);
        }
        // Nothing at or after `from_offset` below the limit: an offset gap up to it.
        Ok(Attempt::Done(LogRead {
            next_offset: limit,
            ..empty
        }))
    }

    /// The first offset whose record timestamp is `>= timestamp`, or `None` if every record is
    /// older (Kafka's ListOffsets by timestamp). Records below the log start offset are not
    /// considered.
    ///
    /// A lookup that races retention or truncation answers as of one moment: if a segment it
    /// chose goes, or the log is cut, while it runs, it starts again.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if a batch on the way fails its checks; [`Error::Io`] if a segment
    /// file cannot be mapped for a reason other than its deletion by the log.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<i64>> {
        self.retry(|| self.try_offset_for_timestamp(timestamp))
    }

    fn try_offset_for_timestamp(&self, timestamp: i64) -> Result<Attempt<Option<i64>>> {
        let truncations = self.truncation_count();
        let log_start_offset = self.log_start_offset();
        let log_end_offset = self.log_end_offset();
        let mut after = None;
        let answer = loop {
            let Some(seg) = self.timestamp_candidate(after, log_start_offset, timestamp) else {
                break None;
            };
            self.pause(super::pause::Point::TimestampLookupChoseSegment);
            after = Some(seg.base_offset());
            let max_ts = seg.max_timestamp(self.config.index_interval_bytes);
            let (max_ts, mapped) = match unless_vanished(&seg, max_ts)? {
                Attempt::Done(m) => m,
                Attempt::Again => return Ok(Attempt::Again),
            };
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
            let found = self.view_of(&seg).and_then(|view| {
                view.offset_for_timestamp(
                    &seg,
                    timestamp,
                    log_start_offset,
                    self.config.verify_crc_on_read,
                )
            });
            match unless_vanished(&seg, found)? {
                Attempt::Done(Some(offset)) => break (offset < log_end_offset).then_some(offset),
                Attempt::Done(None) => {}
                Attempt::Again => return Ok(Attempt::Again),
            }
        };
        if truncations != self.truncation_count() {
            return Ok(Attempt::Again);
        }
        Ok(Attempt::Done(answer))
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
                // A segment marked deleted is not passed over: it is in the list only while a
                // truncation runs (the attempt then starts again) or after one failed part way
                // (the log then answers `PreviousIo`), and its records may be the answer.
                seg.end_offset() > log_start_offset
                    && (seg.damaged_at().is_some()
                        || seg.known_max_timestamp().is_none_or(|ts| ts >= timestamp))
            })
            .cloned()
    }
}
