//! Walking the bytes of a `.log` segment batch by batch, reporting exactly where and why the
//! walk stops. Shared by `dump` and `verify`.

use bytes::Bytes;
use partlog::batch::{peek_frame, BatchError, BatchHeader, RecordBatch, HEADER_SIZE, LOG_OVERHEAD};

/// One step of a walk over a segment's bytes.
#[derive(Debug)]
pub enum Step {
    /// A batch whose header parsed and whose bytes are all present. `batch` is the result of
    /// full validation ([`RecordBatch::parse`]); after an `Err` the walk ends.
    Batch {
        /// Byte position of the batch in the file.
        position: usize,
        /// Its parsed header.
        header: BatchHeader,
        /// The fully validated batch, or why it is invalid.
        batch: Result<RecordBatch, BatchError>,
    },
    /// The bytes at `position` do not start a batch (bad header). The walk ends.
    Invalid {
        /// Byte position of the bad header.
        position: usize,
        /// What is wrong.
        reason: String,
    },
    /// A batch at `position` is cut short by the end of the file. The walk ends.
    Torn {
        /// Byte position of the torn batch.
        position: usize,
        /// How much is missing.
        reason: String,
    },
    /// Every byte from `position` to the end is zero: preallocated space, not data. The walk
    /// ends.
    Zeros {
        /// Byte position where the zeros start.
        position: usize,
        /// How many zero bytes there are.
        len: usize,
    },
}

/// Iterator of [`Step`]s over a segment's bytes.
#[derive(Debug)]
pub struct Walker {
    /// The whole file.
    data: Bytes,
    /// Position of the next batch.
    pos: usize,
    /// Set once a step ended the walk.
    done: bool,
}

/// Walks `data`, the whole contents of a `.log` file.
pub fn walk(data: Bytes) -> Walker {
    Walker {
        data,
        pos: 0,
        done: false,
    }
}

impl Walker {
    /// Byte position after the last whole, valid batch yielded so far.
    pub fn valid_end(&self) -> usize {
        self.pos
    }
}

impl Iterator for Walker {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if self.done {
            return None;
        }
        let position = self.pos;
        let rest = match self.data.get(position..) {
            Some(rest) if !rest.is_empty() => rest,
            _ => {
                self.done = true;
                return None;
            }
        };
        // From here on every step but a valid batch ends the walk.
        self.done = true;
        if rest.iter().all(|&b| b == 0) {
            return Some(Step::Zeros {
                position,
                len: rest.len(),
            });
        }
        if rest.len() < HEADER_SIZE {
            // Fewer bytes than a header: a torn batch only if the declared size is that of a
            // possible batch (at least a header) and more than what is left. Anything else
            // cannot be the start of a batch.
            return Some(match peek_frame(rest) {
                None => Step::Torn {
                    position,
                    reason: format!(
                        "torn batch: {} bytes left in the file, a batch header needs {HEADER_SIZE}",
                        rest.len()
                    ),
                },
                Some((_, length)) => {
                    let declared = i64::from(length) + LOG_OVERHEAD as i64;
                    if declared >= HEADER_SIZE as i64 {
                        // `declared` > rest.len() here, since rest.len() < HEADER_SIZE.
                        Step::Torn {
                            position,
                            reason: format!(
                                "torn batch: declares {declared} bytes, {} left in the file",
                                rest.len()
                            ),
                        }
                    } else {
                        Step::Invalid {
                            position,
                            reason: format!(
                                "invalid batch header: batchLength {length} gives {declared} bytes, less than the \
                                 {HEADER_SIZE} of a batch header ({} bytes left in the file)",
                                rest.len()
                            ),
                        }
                    }
                }
            });
        }
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => {
                return Some(Step::Invalid {
                    position,
                    reason: format!("invalid batch header: {e}"),
                })
            }
        };
        let size = header.total_size();
        if size > rest.len() {
            return Some(Step::Torn {
                position,
                reason: format!(
                    "torn batch: declares {size} bytes, {} left in the file",
                    rest.len()
                ),
            });
        }
        let end = position + size;
        let batch = RecordBatch::parse(self.data.slice(position..end));
        if batch.is_ok() {
            self.pos = end;
            self.done = false;
        }
        Some(Step::Batch {
            position,
            header,
            batch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use partlog::batch::{BatchBuilder, SimpleRecord};

    fn batch_bytes(base: i64) -> Vec<u8> {
        let mut b = BatchBuilder::new().base_offset(base);
        b.push(&SimpleRecord::new(1000, Some("k"), Some("v")))
            .unwrap();
        b.build().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn walks_batches_then_zeros() {
        let mut data = batch_bytes(0);
        data.extend(batch_bytes(1));
        let size = data.len();
        data.extend([0u8; 100]);
        let steps: Vec<Step> = walk(Bytes::from(data)).collect();
        assert_eq!(steps.len(), 3);
        assert!(matches!(
            steps[0],
            Step::Batch {
                position: 0,
                batch: Ok(_),
                ..
            }
        ));
        assert!(matches!(steps[2], Step::Zeros { position, len: 100 } if position == size));
    }

    #[test]
    fn reports_torn_and_invalid() {
        // A non-zero base offset, so that no prefix of the batch is all zeros.
        let full = batch_bytes(0x0102_0304_0506_0708);
        for cut in [8, 11, 12, 40, 61, full.len() - 1] {
            let steps: Vec<Step> = walk(Bytes::copy_from_slice(&full[..cut])).collect();
            assert!(
                matches!(steps[..], [Step::Torn { position: 0, .. }]),
                "cut {cut}: {steps:?}"
            );
        }
        // Fewer bytes than a header, declaring fewer than a header: invalid, not torn.
        let mut short = full[..20].to_vec();
        short[8..12].copy_from_slice(&5i32.to_be_bytes());
        let steps: Vec<Step> = walk(Bytes::from(short)).collect();
        assert!(
            matches!(&steps[..], [Step::Invalid { position: 0, reason }] if !reason.contains("torn")),
            "{steps:?}"
        );
        let mut negative = full[..20].to_vec();
        negative[8..12].copy_from_slice(&(-1i32).to_be_bytes());
        let steps: Vec<Step> = walk(Bytes::from(negative)).collect();
        assert!(
            matches!(steps[..], [Step::Invalid { position: 0, .. }]),
            "{steps:?}"
        );
        let mut bad = full.clone();
        bad[16] = 1; // magic
        let steps: Vec<Step> = walk(Bytes::from(bad)).collect();
        assert!(matches!(steps[..], [Step::Invalid { position: 0, .. }]));
        let mut crc = full;
        let last = crc.len() - 1;
        crc[last] ^= 0xff;
        let steps: Vec<Step> = walk(Bytes::from(crc)).collect();
        assert!(matches!(steps[..], [Step::Batch { batch: Err(_), .. }]));
    }
}
