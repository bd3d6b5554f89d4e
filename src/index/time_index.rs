//! `.timeindex`: maps a timestamp to the offset where the segment's largest timestamp so far was
//! first reached.

use super::IndexEntry;

/// One `.timeindex` entry: 8-byte timestamp, 4-byte relative offset, big-endian.
///
/// Every batch before the one holding `relative_offset` has only timestamps below `timestamp`;
/// that batch holds a record with exactly `timestamp`. As Kafka writes it
/// (`shallowOffsetOfMaxTimestampSoFar`), the offset is that batch's last offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// Offset minus the segment's base offset.
    pub relative_offset: i32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    const NAME: &'static str = "time index";

    fn decode(b: &[u8]) -> Self {
        // A fixed-size read (no copy loop): callers pass whole entries; anything shorter
        // reads as zeros.
        let w: [u8; 12] = b
            .get(..12)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; 12]);
        TimeEntry {
            timestamp: i64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
            relative_offset: i32::from_be_bytes([w[8], w[9], w[10], w[11]]),
        }
    }

    fn encode(&self, out: &mut [u8]) {
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }

    fn key(&self) -> i64 {
        self.timestamp
    }

    fn relative_offset(&self) -> i32 {
        self.relative_offset
    }

    fn check(
        &self,
        prev: Option<&Self>,
        _log_size: u64,
        relative_end: i64,
    ) -> Result<(), &'static str> {
        if self.relative_offset < 0 {
            return Err("negative relative offset");
        }
        if i64::from(self.relative_offset) >= relative_end {
            return Err("relative offset beyond the segment");
        }
        if let Some(p) = prev {
            if self.timestamp <= p.timestamp || self.relative_offset < p.relative_offset {
                return Err("entries not increasing");
            }
        }
        Ok(())
    }
}
