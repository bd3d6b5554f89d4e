//! [`BatchIter`]: batches laid end to end.

use std::iter::FusedIterator;

use bytes::Bytes;

use super::{BatchError, BatchHeader, RecordBatch};

/// Iterates the batches laid end to end in `buf` (the records of a fetch response, the bytes of
/// a segment file).
///
/// Each batch is checked like [`RecordBatch::parse_crc_only`] and yielded with its byte
/// position in `buf`. On the first bad or torn batch the iterator yields one `Err` and stops;
/// [`BatchIter::position`] then tells where that batch starts. A torn (incomplete) last batch is
/// reported as [`BatchError::TooShort`]; a zero-filled tail (e.g. a preallocated file) as
/// [`BatchError::BadMagic`]`(0)`, or `TooShort` if it is shorter than a header. The caller
/// decides what those mean. When `buf` is fully consumed the iterator returns `None`.
pub fn batches(buf: Bytes) -> BatchIter {
    BatchIter {
        buf,
        pos: 0,
        done: false,
    }
}

/// Iterator returned by [`batches`]. Yields `Result<(position, RecordBatch), BatchError>`.
#[derive(Debug, Clone)]
pub struct BatchIter {
    buf: Bytes,
    pos: usize,
    done: bool,
}

impl BatchIter {
    /// Byte position of the next batch, or, after an error, of the batch that failed. After the
    /// iterator is exhausted without error it equals the length of the buffer.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes not consumed yet (from [`BatchIter::position`] on).
    pub fn remaining(&self) -> Bytes {
        self.buf.slice(self.pos.min(self.buf.len())..)
    }

    fn fail(&mut self, e: BatchError) -> Option<<Self as Iterator>::Item> {
        self.done = true;
        Some(Err(e))
    }
}

impl Iterator for BatchIter {
    type Item = Result<(usize, RecordBatch), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = match self.buf.get(self.pos..) {
            Some(rest) if !rest.is_empty() => rest,
            _ => {
                self.done = true;
                return None;
            }
        };
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => return self.fail(e),
        };
        let size = header.total_size();
        if size > rest.len() {
            let e = BatchError::TooShort {
                needed: size,
                available: rest.len(),
            };
            return self.fail(e);
        }
        let start = self.pos;
        let end = start + size;
        let batch = match RecordBatch::with_header(header, self.buf.slice(start..end)) {
            Ok(b) => b,
            Err(e) => return self.fail(e),
        };
        if let Err(e) = batch.verify_crc() {
            return self.fail(e);
        }
        self.pos = end;
        Some(Ok((start, batch)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        // Each batch is at least a header; one more item may be an error.
        let rest = self.buf.len().saturating_sub(self.pos);
        (0, Some(rest / super::HEADER_SIZE + 1))
    }
}

impl FusedIterator for BatchIter {}
