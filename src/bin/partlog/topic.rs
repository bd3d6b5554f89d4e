//! `partlog topic`: create, describe, delete and list the topics of a data directory, in the
//! manner of Kafka's `kafka-topics.sh`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use partlog::batch::Compression;
use partlog::config::CompressionType;
use partlog::topic::{delete_topic, list_topics, Topic, TopicConfig, TopicDescription, TopicName};
use partlog::Config;
use serde::Serialize;

use crate::dump::json_line;
use crate::text::human_bytes;
use crate::{parse_count, CliError, Outcome};

/// The `topic` subcommands.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic: one sub-directory `<topic>-<partition>` per partition.
    Create {
        /// The data directory (created if absent).
        #[arg(value_name = "DATA")]
        data: PathBuf,
        /// The topic's name: [a-zA-Z0-9._-], at most 249 characters, not "." or "..".
        #[arg(long, value_name = "T")]
        topic: String,
        /// Number of partitions.
        #[arg(long, value_name = "N", value_parser = parse_count::<u32>)]
        partitions: u32,
        /// Segment size of the partitions' logs, in bytes.
        #[arg(long, value_name = "S", value_parser = parse_count::<u32>)]
        segment_bytes: Option<u32>,
        /// Kafka's topic `compression.type`: producer (keep each batch's codec), uncompressed,
        /// gzip, snappy, lz4 or zstd (batches in another codec are re-encoded on append).
        #[arg(long, value_name = "C")]
        compression_type: Option<String>,
        /// The level the topic compresses with (KIP-390's compression.<codec>.level of the
        /// --compression-type codec).
        #[arg(
            long,
            value_name = "L",
            requires = "compression_type",
            allow_negative_numbers = true
        )]
        compression_level: Option<i32>,
    },
    /// Describe every partition of a topic (of every topic without --topic): log start, log
    /// end, high watermark, size, segments.
    Describe {
        /// The data directory.
        #[arg(value_name = "DATA")]
        data: PathBuf,
        /// Only this topic.
        #[arg(long, value_name = "T")]
        topic: Option<String>,
        /// One JSON object per partition, one per line.
        #[arg(long)]
        json: bool,
    },
    /// Delete a topic and its partitions' data.
    Delete {
        /// The data directory.
        #[arg(value_name = "DATA")]
        data: PathBuf,
        /// The topic.
        #[arg(long, value_name = "T")]
        topic: String,
    },
    /// List the topics of a data directory, one per line.
    List {
        /// The data directory.
        #[arg(value_name = "DATA")]
        data: PathBuf,
    },
}

/// A library error as the CLI reports it.
pub fn failed(e: impl std::fmt::Display) -> CliError {
    CliError::Failed(e.to_string())
}

/// Checks a topic name before anything touches the disk (a bad name is a usage error).
pub fn topic_name(name: &str) -> Result<TopicName, CliError> {
    TopicName::new(name).map_err(|e| CliError::Usage(e.to_string()))
}

/// Opens topic `name` in `data`, failing with a clear message if it does not exist.
pub fn open(data: &Path, name: &str) -> Result<Topic, CliError> {
    topic_name(name)?;
    Topic::open(data, name).map_err(failed)
}

/// Runs `partlog topic ...`.
///
/// # Errors
/// [`CliError::Usage`] for a bad topic name or partition count, [`CliError::Failed`] if the
/// library fails (topic missing or present, I/O).
pub fn run(command: &TopicCommand, out: &mut dyn Write) -> Result<Outcome, CliError> {
    match command {
        TopicCommand::Create {
            data,
            topic,
            partitions,
            segment_bytes,
            compression_type,
            compression_level,
        } => {
            topic_name(topic)?;
            if *partitions == 0 || *partitions > partlog::topic::MAX_PARTITIONS {
                return Err(CliError::Usage(format!(
                    "--partitions must be between 1 and {}",
                    partlog::topic::MAX_PARTITIONS
                )));
            }
            let mut log = Config::default();
            if let Some(s) = segment_bytes {
                log.segment_bytes = *s;
                log.max_batch_bytes = log.max_batch_bytes.min(*s);
            }
            if let Some(c) = compression_type {
                log.compression_type = c
                    .parse()
                    .map_err(|e: partlog::Error| CliError::Usage(e.to_string()))?;
            }
            if let Some(level) = *compression_level {
                match log.compression_type {
                    CompressionType::Codec(Compression::Gzip) => log.compression_gzip_level = level,
                    CompressionType::Codec(Compression::Lz4) => log.compression_lz4_level = level,
                    CompressionType::Codec(Compression::Zstd) => log.compression_zstd_level = level,
                    t => {
                        return Err(CliError::Usage(format!(
                            "--compression-level: compression type {t} takes no level"
                        )))
                    }
                }
            }
            log.validate().map_err(|e| CliError::Usage(e.to_string()))?;
            let t =
                Topic::create(data, topic, *partitions, TopicConfig::from(log)).map_err(failed)?;
            t.close().map_err(failed)?;
            writeln!(
                out,
                "Created topic {topic} with {partitions} partitions in {}.",
                data.display()
            )?;
        }
        TopicCommand::Describe { data, topic, json } => {
            let names = match topic {
                Some(t) => vec![topic_name(t)?],
                None => list_topics(data).map_err(failed)?,
            };
            for name in names {
                let t = open(data, name.as_str())?;
                let d = t.describe();
                t.close().map_err(failed)?;
                if *json {
                    describe_json(&d, out)?;
                } else {
                    describe_text(&d, out)?;
                }
            }
        }
        TopicCommand::Delete { data, topic } => {
            topic_name(topic)?;
            delete_topic(data, topic).map_err(failed)?;
            writeln!(out, "Deleted topic {topic}.")?;
        }
        TopicCommand::List { data } => {
            for name in list_topics(data).map_err(failed)? {
                writeln!(out, "{name}")?;
            }
        }
    }
    Ok(Outcome::Success)
}

fn describe_text(d: &TopicDescription, out: &mut dyn Write) -> Result<(), CliError> {
    writeln!(
        out,
        "Topic: {}\tTopicId: {}\tPartitionCount: {}\tSegmentBytes: {}\tRetentionMs: {}\t\
         RetentionBytes: {}\tCompressionType: {}",
        d.name,
        d.topic_id
            .map_or_else(|| "none".to_owned(), |id| id.to_string()),
        d.partitions.len(),
        d.config.log.segment_bytes,
        d.config.log.retention_ms,
        d.config.log.retention_bytes,
        d.config.log.compression_type,
    )?;
    for p in &d.partitions {
        let ids = |v: &[partlog::replica::ReplicaId]| {
            v.iter()
                .map(|r| r.0.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        writeln!(
            out,
            "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tLogStartOffset: {}\t\
             LogEndOffset: {}\tHighWatermark: {}\tSize: {} ({})\tSegments: {}",
            d.name,
            p.partition,
            p.assignment
                .leader
                .map_or_else(|| "none".to_owned(), |l| l.0.to_string()),
            ids(&p.assignment.replicas),
            ids(&p.assignment.isr),
            p.log_start_offset,
            p.log_end_offset,
            p.high_watermark,
            p.size_bytes,
            human_bytes(p.size_bytes),
            p.segments,
        )?;
    }
    Ok(())
}

/// One partition in `topic describe --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PartitionJson<'a> {
    topic: &'a str,
    partition: u32,
    log_start_offset: i64,
    log_end_offset: i64,
    high_watermark: i64,
    size: u64,
    segments: usize,
    leader: Option<u32>,
    replicas: Vec<u32>,
    isr: Vec<u32>,
    /// The topic's `compression.type` (Kafka's name).
    compression_type: String,
}

fn describe_json(d: &TopicDescription, out: &mut dyn Write) -> Result<(), CliError> {
    for p in &d.partitions {
        json_line(
            out,
            &PartitionJson {
                topic: d.name.as_str(),
                partition: p.partition,
                log_start_offset: p.log_start_offset,
                log_end_offset: p.log_end_offset,
                high_watermark: p.high_watermark,
                size: p.size_bytes,
                segments: p.segments,
                leader: p.assignment.leader.map(|l| l.0),
                replicas: p.assignment.replicas.iter().map(|r| r.0).collect(),
                isr: p.assignment.isr.iter().map(|r| r.0).collect(),
                compression_type: d.config.log.compression_type.to_string(),
            },
        )?;
    }
    Ok(())
}
