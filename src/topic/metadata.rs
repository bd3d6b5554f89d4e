//! The topic metadata file, `<data dir>/<topic>.topic-metadata`: the topic's name, its partition
//! count and the configuration of its partitions' logs.
//!
//! Kafka's text checkpoint layout (as `checkpoint.rs` uses): line 1 the version (0), line 2
//! the number of entries, then one `key value` entry per line, keys named as Kafka names the
//! topic configs. Written with `checkpoint::write_atomically` (temp file, fsync, rename, fsync
//! the directory): the file is the commit point of create, add-partitions and delete, so a crash
//! leaves either the old topic or the new one.

use std::fs;
use std::path::{Path, PathBuf};

use super::data_dir::Uuid;
use super::name::TopicName;
use crate::checkpoint;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::replica::Durability;

/// Suffix of topic metadata files.
pub const TOPIC_METADATA_SUFFIX: &str = ".topic-metadata";

/// Largest metadata file read (a real one is a few hundred bytes).
const MAX_METADATA_BYTES: u64 = 64 << 10;

/// How a topic's partitions are set up: stored in its metadata file at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// Each partition's log configuration (Kafka's per-topic configs).
    pub log: Config,
    /// When an append counts as done and visible to consumers.
    pub durability: Durability,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            log: Config::default(),
            durability: Durability::OnAppend,
        }
    }
}

impl From<Config> for TopicConfig {
    fn from(log: Config) -> Self {
        TopicConfig {
            log,
            durability: Durability::OnAppend,
        }
    }
}

/// What a topic metadata file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicMetadata {
    pub name: TopicName,
    pub partitions: u32,
    pub config: TopicConfig,
    /// The topic id (Kafka's, also in each partition's `partition.metadata`); `None` in files
    /// written before partlog kept one.
    pub topic_id: Option<Uuid>,
}

pub(crate) fn path(data_dir: &Path, name: &TopicName) -> PathBuf {
    data_dir.join(format!("{name}{TOPIC_METADATA_SUFFIX}"))
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

impl TopicMetadata {
    fn entries(&self) -> Vec<(&'static str, String)> {
        let c = &self.config.log;
        let mut entries = vec![
            ("name", self.name.to_string()),
            ("partitions", self.partitions.to_string()),
            ("segment.bytes", c.segment_bytes.to_string()),
            ("segment.ms", c.segment_ms.to_string()),
            ("segment.index.bytes", c.segment_index_bytes.to_string()),
            ("index.interval.bytes", c.index_interval_bytes.to_string()),
            ("max.message.bytes", c.max_batch_bytes.to_string()),
            (
                "partlog.verify.crc.on.read",
                c.verify_crc_on_read.to_string(),
            ),
            ("partlog.max.open.segments", c.max_open_segments.to_string()),
            ("retention.ms", c.retention_ms.to_string()),
            ("retention.bytes", c.retention_bytes.to_string()),
            (
                "flush.messages",
                opt(c
                    .flush_messages
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX))),
            ),
            ("flush.ms", opt(c.flush_ms)),
            ("file.delete.delay.ms", c.file_delete_delay_ms.to_string()),
            ("compression.type", c.compression_type.to_string()),
            (
                "compression.gzip.level",
                c.compression_gzip_level.to_string(),
            ),
            ("compression.lz4.level", c.compression_lz4_level.to_string()),
            (
                "compression.zstd.level",
                c.compression_zstd_level.to_string(),
            ),
            (
                "partlog.max.decompressed.batch.bytes",
                c.max_decompressed_batch_bytes.to_string(),
            ),
            (
                "partlog.durability",
                match self.config.durability {
                    Durability::OnFlush => "on_flush",
                    _ => "on_append",
                }
                .to_owned(),
            ),
        ];
        if let Some(id) = self.topic_id {
            entries.push(("topic.id", id.to_string()));
        }
        entries
    }

    /// Writes the file atomically.
    pub(crate) fn write(&self, data_dir: &Path) -> Result<()> {
        let entries = self.entries();
        let mut text = format!("0\n{}\n", entries.len());
        for (k, v) in entries {
            text.push_str(k);
            text.push(' ');
            text.push_str(&v);
            text.push('\n');
        }
        checkpoint::write_atomically(&path(data_dir, &self.name), text.as_bytes())
    }

    /// Reads the metadata of `name`; `Ok(None)` if there is no such file.
    pub(crate) fn read(data_dir: &Path, name: &TopicName) -> Result<Option<TopicMetadata>> {
        let path = path(data_dir, name);
        let text = match fs::File::open(&path) {
            Ok(f) => {
                use std::io::Read;
                let mut text = Vec::new();
                f.take(MAX_METADATA_BYTES + 1)
                    .read_to_end(&mut text)
                    .map_err(|e| Error::io(&path, "read", e))?;
                text
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, "open", e)),
        };
        parse(&path, name, &text).map(Some)
    }
}

fn parse(path: &Path, expected: &TopicName, text: &[u8]) -> Result<TopicMetadata> {
    let corrupt = |position: usize, reason: String| Error::corrupt(path, position as u64, reason);
    if text.len() as u64 > MAX_METADATA_BYTES {
        return Err(corrupt(0, "topic metadata file is too large".into()));
    }
    let text = std::str::from_utf8(text)
        .map_err(|e| corrupt(e.valid_up_to(), "topic metadata file is not UTF-8".into()))?;
    if !text.ends_with('\n') {
        return Err(corrupt(
            text.len(),
            "topic metadata file is cut short".into(),
        ));
    }
    let mut position = 0usize;
    let mut lines = Vec::new();
    for line in text[..text.len() - 1].split('\n') {
        lines.push((position, line));
        position += line.len() + 1;
    }
    let mut it = lines.into_iter();
    match it.next() {
        Some((_, "0")) => {}
        Some((p, v)) => return Err(corrupt(p, format!("unknown metadata version {v:?}"))),
        None => return Err(corrupt(0, "empty topic metadata file".into())),
    }
    let count: usize = match it.next() {
        Some((p, v)) => v
            .parse()
            .map_err(|_| corrupt(p, format!("bad entry count {v:?}")))?,
        None => return Err(corrupt(position, "no entry count".into())),
    };
    let entries: Vec<(usize, &str)> = it.collect();
    if entries.len() != count {
        return Err(corrupt(
            0,
            format!("{} entries, but the header says {count}", entries.len()),
        ));
    }
    let mut name = None;
    let mut partitions = None;
    let mut c = Config::default();
    let mut durability = Durability::OnAppend;
    let mut topic_id = None;
    for (p, line) in entries {
        let (k, v) = line
            .split_once(' ')
            .ok_or_else(|| corrupt(p, format!("entry {line:?} is not 'key value'")))?;
        let bad = || corrupt(p, format!("bad value {v:?} for {k}"));
        let int = || v.parse::<i64>().map_err(|_| bad());
        let uint = || v.parse::<u32>().map_err(|_| bad());
        let level = || v.parse::<i32>().map_err(|_| bad());
        let optional = || -> Result<Option<i64>> {
            if v == "none" {
                Ok(None)
            } else {
                int().map(Some)
            }
        };
        match k {
            "name" => name = Some(TopicName::new(v).map_err(|_| bad())?),
            "partitions" => partitions = Some(uint()?),
            "segment.bytes" => c.segment_bytes = uint()?,
            "segment.ms" => c.segment_ms = int()?,
            "segment.index.bytes" => c.segment_index_bytes = uint()?,
            "index.interval.bytes" => c.index_interval_bytes = uint()?,
            "max.message.bytes" => c.max_batch_bytes = uint()?,
            "partlog.verify.crc.on.read" => c.verify_crc_on_read = v.parse().map_err(|_| bad())?,
            "partlog.max.open.segments" => c.max_open_segments = uint()?,
            "retention.ms" => c.retention_ms = int()?,
            "retention.bytes" => c.retention_bytes = int()?,
            "flush.messages" => {
                c.flush_messages = optional()?
                    .map(|n| u64::try_from(n).map_err(|_| bad()))
                    .transpose()?;
            }
            "flush.ms" => c.flush_ms = optional()?,
            "file.delete.delay.ms" => c.file_delete_delay_ms = int()?,
            "compression.type" => c.compression_type = v.parse().map_err(|_| bad())?,
            "compression.gzip.level" => c.compression_gzip_level = level()?,
            "compression.lz4.level" => c.compression_lz4_level = level()?,
            "compression.zstd.level" => c.compression_zstd_level = level()?,
            "partlog.max.decompressed.batch.bytes" => c.max_decompressed_batch_bytes = uint()?,
            "partlog.durability" => {
                durability = match v {
                    "on_append" => Durability::OnAppend,
                    "on_flush" => Durability::OnFlush,
                    _ => return Err(bad()),
                }
            }
            "topic.id" => topic_id = Some(v.parse::<Uuid>().map_err(|_| bad())?),
            _ => return Err(corrupt(p, format!("unknown key {k:?}"))),
        }
    }
    let name = name.ok_or_else(|| corrupt(0, "no topic name".into()))?;
    if &name != expected {
        return Err(corrupt(
            0,
            format!("the file names topic {name}, not {expected}"),
        ));
    }
    let partitions = partitions
        .filter(|&n| (1..=super::MAX_PARTITIONS).contains(&n))
        .ok_or_else(|| corrupt(0, "missing or impossible partition count".into()))?;
    Ok(TopicMetadata {
        name,
        partitions,
        config: TopicConfig { log: c, durability },
        topic_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_garbage_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let name = TopicName::new("rides").unwrap();
        assert_eq!(TopicMetadata::read(dir.path(), &name).unwrap(), None);
        let meta = TopicMetadata {
            name: name.clone(),
            partitions: 3,
            config: TopicConfig {
                log: Config {
                    segment_bytes: 4096,
                    flush_messages: Some(5),
                    compression_type: crate::config::CompressionType::Codec(
                        crate::batch::Compression::Lz4,
                    ),
                    compression_lz4_level: 3,
                    ..Config::default()
                },
                durability: Durability::OnFlush,
            },
            topic_id: Some(Uuid([7; 16])),
        };
        meta.write(dir.path()).unwrap();
        assert_eq!(TopicMetadata::read(dir.path(), &name).unwrap(), Some(meta));
        let p = path(dir.path(), &name);
        let good = fs::read(&p).unwrap();
        // Every truncation is refused as corrupt, never read as another topic.
        for cut in 0..good.len() {
            fs::write(&p, &good[..cut]).unwrap();
            assert!(
                matches!(
                    TopicMetadata::read(dir.path(), &name),
                    Err(Error::Corrupt { .. })
                ),
                "cut at {cut}"
            );
        }
        let other = TopicName::new("other").unwrap();
        fs::write(path(dir.path(), &other), &good).unwrap();
        assert!(matches!(
            TopicMetadata::read(dir.path(), &other),
            Err(Error::Corrupt { .. })
        ));
    }
}
