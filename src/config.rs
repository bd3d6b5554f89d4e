//! Configuration of a [`Log`](crate::log::Log), validated at open.

use std::fmt;
use std::str::FromStr;

use crate::batch::{Compression, CompressionLevel};
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
    /// How long a deleted segment's files stay on disk (its `.log` renamed `.deleted`) before
    /// they are removed, at the next maintenance call after that (Kafka `file.delete.delay.ms`).
    pub file_delete_delay_ms: i64,
    /// The codec batches are stored in (Kafka `compression.type`): a client's batch in another
    /// codec is decompressed, validated and recompressed on append, as Kafka's broker does it
    /// (see `log::append`). [`CompressionType::Producer`] keeps each batch's own codec.
    pub compression_type: CompressionType,
    /// gzip level when the log compresses (Kafka `compression.gzip.level`): 1-9, or -1 for
    /// zlib's default.
    pub compression_gzip_level: i32,
    /// lz4 level when the log compresses (Kafka `compression.lz4.level`): 1-17.
    pub compression_lz4_level: i32,
    /// zstd level when the log compresses (Kafka `compression.zstd.level`): -131072 to 22.
    pub compression_zstd_level: i32,
    /// The most bytes a compressed batch's records may inflate to when an append validates
    /// them (partlog only): past it the append is refused with
    /// [`BatchError::DecompressedTooLarge`](crate::batch::BatchError::DecompressedTooLarge)
    /// before more is inflated (a decompression bomb). Kafka bounds only the compressed size
    /// (`max.message.bytes`); this bound is `max.message.bytes`' default times 64 (64 MiB and
    /// a bit), which passes every batch a producer with Kafka's limits builds (a producer's
    /// request is at most `max.request.size`, 1 MiB by default, before compression of records
    /// that compress well rarely beyond 10x). At least `max_batch_bytes`.
    pub max_decompressed_batch_bytes: u32,
    /// How long a producer id's state is kept after its last batch (Kafka
    /// `producer.id.expiration.ms`, default one day); expired at each [`Log::tick`](crate::log::Log::tick).
    pub producer_id_expiration_ms: i64,
}

/// Kafka's `compression.type` topic config: which codec a log stores batches in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CompressionType {
    /// `producer`: every batch is kept in the codec its producer chose (Kafka's default).
    #[default]
    Producer,
    /// `uncompressed`: compressed batches are decompressed and stored uncompressed.
    Uncompressed,
    /// `gzip`, `snappy`, `lz4` or `zstd`: batches in any other codec are recompressed.
    Codec(Compression),
}

impl CompressionType {
    /// The codec a batch sent in `source` is stored in.
    pub fn target(self, source: Compression) -> Compression {
        match self {
            CompressionType::Producer => source,
            CompressionType::Uncompressed => Compression::None,
            CompressionType::Codec(c) => c,
        }
    }

    /// Kafka's name for the setting.
    pub fn name(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed | CompressionType::Codec(Compression::None) => {
                "uncompressed"
            }
            CompressionType::Codec(c) => c.name(),
        }
    }
}

impl fmt::Display for CompressionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CompressionType {
    type Err = Error;

    /// Kafka's names: `producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd` (and `none`,
    /// taken as `uncompressed`).
    ///
    /// # Errors
    /// [`Error::Config`] naming `compression_type` for any other name.
    fn from_str(s: &str) -> Result<CompressionType> {
        match s {
            "producer" => Ok(CompressionType::Producer),
            "uncompressed" | "none" => Ok(CompressionType::Uncompressed),
            _ => s
                .parse::<Compression>()
                .map(CompressionType::Codec)
                .map_err(|_| {
                    bad(
                        "compression_type",
                        s,
                        "must be producer, uncompressed, gzip, snappy, lz4 or zstd",
                    )
                }),
        }
    }
}

/// Kafka's `max.message.bytes` default.
pub const DEFAULT_MAX_BATCH_BYTES: u32 = 1_048_588;

/// Default of [`Config::max_decompressed_batch_bytes`]: 64 times [`DEFAULT_MAX_BATCH_BYTES`].
pub const DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES: u32 = 64 * DEFAULT_MAX_BATCH_BYTES;

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
            compression_type: CompressionType::Producer,
            compression_gzip_level: CompressionLevel::GZIP_DEFAULT,
            compression_lz4_level: CompressionLevel::LZ4_DEFAULT,
            compression_zstd_level: CompressionLevel::ZSTD_DEFAULT,
            max_decompressed_batch_bytes: DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES,
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

    /// The codec and level a batch sent in `source` is stored in (see
    /// [`Config::compression_type`]).
    pub fn compression_target(&self, source: Compression) -> (Compression, CompressionLevel) {
        let codec = self.compression_type.target(source);
        let level = match codec {
            Compression::Gzip => self.compression_gzip_level,
            Compression::Lz4 => self.compression_lz4_level,
            Compression::Zstd => self.compression_zstd_level,
            _ => 0,
        };
        let level = CompressionLevel::new(codec, level)
            .unwrap_or_else(|_| CompressionLevel::default_for(codec));
        (codec, level)
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
        let levels = [
            (
                "compression_gzip_level",
                Compression::Gzip,
                self.compression_gzip_level,
                "must be in [1, 9] or -1",
            ),
            (
                "compression_lz4_level",
                Compression::Lz4,
                self.compression_lz4_level,
                "must be in [1, 17]",
            ),
            (
                "compression_zstd_level",
                Compression::Zstd,
                self.compression_zstd_level,
                "must be in [-131072, 22]",
            ),
        ];
        for (knob, codec, level, reason) in levels {
            if CompressionLevel::new(codec, level).is_err() {
                return Err(bad(knob, level, reason));
            }
        }
        if self.max_decompressed_batch_bytes < self.max_batch_bytes {
            return Err(bad(
                "max_decompressed_batch_bytes",
                self.max_decompressed_batch_bytes,
                "must be at least max_batch_bytes",
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
            (
                "compression_gzip_level",
                Config {
                    compression_gzip_level: 0,
                    ..Default::default()
                },
            ),
            (
                "compression_lz4_level",
                Config {
                    compression_lz4_level: 18,
                    ..Default::default()
                },
            ),
            (
                "compression_zstd_level",
                Config {
                    compression_zstd_level: 23,
                    ..Default::default()
                },
            ),
            (
                "max_decompressed_batch_bytes",
                Config {
                    max_decompressed_batch_bytes: DEFAULT_MAX_BATCH_BYTES - 1,
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

    #[test]
    fn compression_type_takes_kafkas_names_and_refuses_others() {
        for (name, t) in [
            ("producer", CompressionType::Producer),
            ("uncompressed", CompressionType::Uncompressed),
            ("gzip", CompressionType::Codec(Compression::Gzip)),
            ("snappy", CompressionType::Codec(Compression::Snappy)),
            ("lz4", CompressionType::Codec(Compression::Lz4)),
            ("zstd", CompressionType::Codec(Compression::Zstd)),
        ] {
            assert_eq!(name.parse::<CompressionType>().unwrap(), t);
            assert_eq!(t.to_string(), name);
        }
        for bad in ["", "LZ4", "brotli", "zstd "] {
            match bad.parse::<CompressionType>() {
                Err(Error::Config { knob, value, .. }) => {
                    assert_eq!((knob, value.as_str()), ("compression_type", bad))
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn compression_target_follows_kafkas_rule() {
        let c = Config::default();
        assert_eq!(c.compression_target(Compression::Lz4).0, Compression::Lz4);
        let c = Config {
            compression_type: CompressionType::Codec(Compression::Zstd),
            compression_zstd_level: 7,
            ..Default::default()
        };
        let (codec, level) = c.compression_target(Compression::Gzip);
        assert_eq!((codec, level.get()), (Compression::Zstd, 7));
        let c = Config {
            compression_type: CompressionType::Uncompressed,
            ..Default::default()
        };
        assert_eq!(
            c.compression_target(Compression::Snappy).0,
            Compression::None
        );
    }
}
