//! `.index`: maps a relative offset to the byte position of the batch that holds it.

use super::IndexEntry;

/// One `.index` entry: 4-byte relative offset, 4-byte file position, big-endian.
///
/// As Kafka (`LogSegment.append`), partlog indexes the *last* offset of a batch (relative to the
/// segment's base offset) and the position where the batch starts: a lookup takes the largest
/// entry at or below the offset sought and walks forward from its batch. Readers also accept an
/// entry naming any other offset of the batch at its position (the base offset, as partlog wrote
/// before it matched Kafka).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Offset minus the segment's base offset.
    pub relative_offset: i32,
    /// Byte position of the batch in the `.log` file.
    pub position: i32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    const NAME: &'static str = "offset index";

    fn decode(b: &[u8]) -> Self {
        // A fixed-size read (no copy loop): callers pass whole entries; anything shorter
        // reads as zeros.
        let w: [u8; 8] = b.get(..8).and_then(|s| s.try_into().ok()).unwrap_or([0; 8]);
        OffsetEntry {
            relative_offset: i32::from_be_bytes([w[0], w[1], w[2], w[3]]),
            position: i32::from_be_bytes([w[4], w[5], w[6], w[7]]),
        }
    }

    fn encode(&self, out: &mut [u8]) {
        out[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }

    fn key(&self) -> i64 {
        i64::from(self.relative_offset)
    }

    fn relative_offset(&self) -> i32 {
        self.relative_offset
    }

    fn check(
        &self,
        prev: Option<&Self>,
        log_size: u64,
        relative_end: i64,
    ) -> Result<(), &'static str> {
        if self.relative_offset < 0 || self.position < 0 {
            return Err("negative relative offset or position");
        }
        if i64::from(self.relative_offset) >= relative_end {
            return Err("relative offset beyond the segment");
        }
        if self.position as u64 >= log_size {
            return Err("position beyond the end of the log file");
        }
        if let Some(p) = prev {
            if self.relative_offset <= p.relative_offset || self.position <= p.position {
                return Err("entries not strictly increasing");
            }
        }
        Ok(())
    }
}
