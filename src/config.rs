//! Configuration of a [`Log`](crate::log::Log), validated at open.

use crate::error::{Error, Result};

/// Per-log configuration. Every knob has Kafka's default; the README's table gives the Kafka name
/// of each.
///
/// ```
/// let config = partlog::Config { segment_bytes: 64 << 20, ..Default::default() };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest size of a segment's `.log` file (Kafka `segment.bytes`). The active segment's file
    /// is preallocated and mapped at this size. At least 1 KiB, at most `i32::MAX` (index entries
    /// store positions as i32).
    pub segment_bytes: u32,
    /// Roll to a new segment once the active one is this old, by record timestamps or by wall
    /// clock (Kafka `segment.ms`). At least 1.
    pub segment_ms: i64,
    /// Preallocated size of each index file (Kafka `segment.index.bytes`). At least 24 bytes
    /// (two time-index entries), at most `i32::MAX`.
    pub segment_index_bytes: u32,
    /// Log bytes between two sparse index entries (Kafka `index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// Largest record batch accepted by an append (Kafka `max.message.bytes`). At least 61 (one
    /// batch header). A batch must also fit in one segment: the effective limit is the smaller
    /// of this and `segment_bytes`.
    pub max_batch_bytes: u32,
    /// Check each batch's CRC-32C when reading it (partlog only; Kafka leaves this to clients).
    pub verify_crc_on_read: bool,
    /// How many inactive segments may stay memory-mapped at once; beyond this the least recently
    /// opened is unmapped (partlog only). Bounds the process's map count against
    /// `vm.max_map_count` however many segments the log has. At least 1.
    pub max_open_segments: u32,
    /// Delete a segment once its largest record timestamp is this old (Kafka `retention.ms`);
    /// -1 keeps data forever.
    pub retention_ms: i64,
    /// Delete the oldest segments while the log would still be at least this big without them
    /// (Kafka `retention.bytes`); -1 means no size limit.
    pub retention_bytes: i64,
    /// Flush after this many records were appended since the last flush (Kafka
    /// `flush.messages`); `None` leaves flushing to the OS and to explicit [`flush`] calls.
    ///
    /// [`flush`]: crate::log::Log::flush
    pub flush_messages: Option<u64>,
    /// Flush once this many milliseconds passed since the last flush (Kafka `flush.ms`),
    /// checked on append and by [`Log::tick`]; `None` never.
    ///
    /// [`Log::tick`]: crate::log::Log::tick
    pub flush_ms: Option<i64>,
    /// How long a deleted segment's files stay on disk (renamed `.deleted`) before they are
    /// removed (Kafka `file.delete.delay.ms`).
    pub file_delete_delay_ms: i64,
    /// How long a producer id's state is kept after its last batch (Kafka
    /// `producer.id.expiration.ms`, default one day); expired at each [`Log::tick`](crate::log::Log::tick).
    pub producer_id_expiration_ms: i64,
}

/// Kafka's `max.message.bytes` default.
pub const DEFAULT_MAX_BATCH_BYTES: u32 = 1_048_588;

impl Default for Config {
    fn default() -> Self {
        Config {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            verify_crc_on_read: true,
            max_open_segments: 1024,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            flush_messages: None,
            flush_ms: None,
            file_delete_delay_ms: 60_000,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

fn bad(knob: &'static str, value: impl ToString, reason: &'static str) -> Error {
    Error::Config {
        knob,
        value: value.to_string(),
        reason,
    }
}

impl Config {
    /// The largest batch an append accepts: `max_batch_bytes`, but no more than a segment.
    pub fn effective_max_batch_bytes(&self) -> usize {
        self.max_batch_bytes.min(self.segment_bytes) as usize
    }

    /// Checks every knob; the error names the first bad one.
    ///
    /// # Errors
    /// [`Error::Config`] naming the knob, its value and the rule it breaks.
    pub fn validate(&self) -> Result<()> {
        if self.segment_bytes < 1024 || self.segment_bytes > i32::MAX as u32 {
            return Err(bad(
                "segment_bytes",
                self.segment_bytes,
                "must be in [1024, 2^31-1]",
            ));
        }
        if self.segment_ms < 1 {
            return Err(bad("segment_ms", self.segment_ms, "must be at least 1"));
        }
        if self.segment_index_bytes < 24 || self.segment_index_bytes > i32::MAX as u32 {
            return Err(bad(
                "segment_index_bytes",
                self.segment_index_bytes,
                "must be in [24, 2^31-1]",
            ));
        }
        if self.index_interval_bytes > i32::MAX as u32 {
            return Err(bad(
                "index_interval_bytes",
                self.index_interval_bytes,
                "must be at most 2^31-1",
            ));
        }
        if self.max_batch_bytes < 61 || self.max_batch_bytes > i32::MAX as u32 {
            return Err(bad(
                "max_batch_bytes",
                self.max_batch_bytes,
                "must be in [61, 2^31-1]",
            ));
        }
        if self.max_open_segments < 1 {
            return Err(bad(
                "max_open_segments",
                self.max_open_segments,
                "must be at least 1",
            ));
        }
        if self.retention_ms < -1 {
            return Err(bad(
                "retention_ms",
                self.retention_ms,
                "must be -1 (forever) or at least 0",
            ));
        }
        if self.retention_bytes < -1 {
            return Err(bad(
                "retention_bytes",
                self.retention_bytes,
                "must be -1 (unlimited) or at least 0",
            ));
        }
        if self.flush_messages == Some(0) {
            return Err(bad("flush_messages", 0, "must be at least 1 (None: never)"));
        }
        if let Some(ms) = self.flush_ms.filter(|&ms| ms < 0) {
            return Err(bad("flush_ms", ms, "must be at least 0 (None: never)"));
        }
        if self.file_delete_delay_ms < 0 {
            return Err(bad(
                "file_delete_delay_ms",
                self.file_delete_delay_ms,
                "must be at least 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_knob_is_named() {
        assert!(Config::default().validate().is_ok());
        let cases: Vec<(&str, Config)> = vec![
            (
                "segment_bytes",
                Config {
                    segment_bytes: 100,
                    ..Default::default()
                },
            ),
            (
                "segment_bytes",
                Config {
                    segment_bytes: u32::MAX,
                    ..Default::default()
                },
            ),
            (
                "segment_ms",
                Config {
                    segment_ms: 0,
                    ..Default::default()
                },
            ),
            (
                "segment_index_bytes",
                Config {
                    segment_index_bytes: 12,
                    ..Default::default()
                },
            ),
            (
                "index_interval_bytes",
                Config {
                    index_interval_bytes: u32::MAX,
                    ..Default::default()
                },
            ),
            (
                "max_batch_bytes",
                Config {
                    max_batch_bytes: 10,
                    ..Default::default()
                },
            ),
            (
                "max_batch_bytes",
                Config {
                    max_batch_bytes: u32::MAX,
                    ..Default::default()
                },
            ),
            (
                "retention_ms",
                Config {
                    retention_ms: -2,
                    ..Default::default()
                },
            ),
            (
                "retention_bytes",
                Config {
                    retention_bytes: -5,
                    ..Default::default()
                },
            ),
            (
                "flush_messages",
                Config {
                    flush_messages: Some(0),
                    ..Default::default()
                },
            ),
            (
                "flush_ms",
                Config {
                    flush_ms: Some(-1),
                    ..Default::default()
                },
            ),
            (
                "file_delete_delay_ms",
                Config {
                    file_delete_delay_ms: -1,
                    ..Default::default()
                },
            ),
            (
                "max_open_segments",
                Config {
                    max_open_segments: 0,
                    ..Default::default()
                },
            ),
        ];
        for (knob, c) in cases {
            match c.validate() {
                Err(Error::Config { knob: k, .. }) => assert_eq!(k, knob),
                other => panic!("{knob}: {other:?}"),
            }
        }
    }
}
