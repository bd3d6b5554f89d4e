//! `partlog consume`: a topic's records, in the manner of Kafka's `kafka-console-consumer.sh`:
//! as members of a consumer group (join, poll the assigned partitions from the committed
//! offsets, commit, leave), or without a group from the beginning or from an offset.
//!
//! The group coordinator is in-process (its offsets are durable, in `DATA/partlog-consumer-offsets.log`,
//! but its membership lives only while the command runs): `--members N` makes the command run
//! N members of the group at once, to see each partition go to exactly one of them. Unlike
//! Kafka's console consumer, which waits for new records forever, the command stops once every
//! partition it reads is consumed up to its high watermark (or after `--max` records).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use partlog::topic::{
    Consumer, ConsumerConfig, ConsumerRecord, GroupCoordinator, OffsetReset, Topic, TopicPartition,
    TopicSource,
};
use serde::Serialize;

use crate::dump::json_line;
use crate::topic::{failed, open};
use crate::{parse_count, CliError, Outcome};

/// Opens the group coordinator of `data` (its offsets in `DATA/partlog-consumer-offsets.log`,
/// moved there from an earlier version's `DATA/__consumer_offsets/`).
pub fn coordinator(data: &Path) -> Result<GroupCoordinator, CliError> {
    GroupCoordinator::open_data_dir(data).map_err(failed)
}

/// Arguments of `consume`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// The topic.
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// Consume as members of this group, from its committed offsets, and commit.
    #[arg(long, value_name = "G", conflicts_with_all = ["offset", "partition"])]
    pub group: Option<String>,
    /// How many members of the group this command runs (each prints its records with its
    /// member id).
    #[arg(long, value_name = "N", default_value = "1", requires = "group",
          value_parser = parse_count::<usize>)]
    pub members: usize,
    /// Start where nothing is committed (or without a group) at the log start offset; without
    /// it, at the high watermark (only new records), as Kafka's auto.offset.reset=latest.
    #[arg(long, conflicts_with = "offset")]
    pub from_beginning: bool,
    /// Read only this partition (without a group).
    #[arg(long, value_name = "P", value_parser = parse_count::<u32>)]
    pub partition: Option<u32>,
    /// Start at this offset of --partition.
    #[arg(long, value_name = "N", requires = "partition", value_parser = parse_count::<i64>)]
    pub offset: Option<i64>,
    /// Stop after this many records.
    #[arg(long, value_name = "N", value_parser = parse_count::<u64>)]
    pub max: Option<u64>,
    /// One JSON object per record, one per line.
    #[arg(long)]
    pub json: bool,
}

/// One record in `consume --json`.
#[derive(Debug, Serialize)]
struct RecordJson<'a> {
    topic: &'a str,
    partition: u32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    member: Option<&'a str>,
}

fn lossy(b: Option<&[u8]>) -> Option<String> {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn print(
    out: &mut dyn Write,
    json: bool,
    r: &ConsumerRecord,
    member: Option<&str>,
) -> Result<(), CliError> {
    if json {
        return json_line(
            out,
            &RecordJson {
                topic: r.topic.as_str(),
                partition: r.partition,
                offset: r.offset,
                timestamp: r.timestamp,
                key: lossy(r.key.as_deref()),
                value: lossy(r.value.as_deref()),
                member,
            },
        );
    }
    let show = |b: Option<&[u8]>| lossy(b).unwrap_or_else(|| "null".to_owned());
    if let Some(m) = member {
        write!(out, "Member:{m}\t")?;
    }
    writeln!(
        out,
        "Partition:{}\tOffset:{}\tKey:{}\t{}",
        r.partition,
        r.offset,
        show(r.key.as_deref()),
        show(r.value.as_deref())
    )?;
    Ok(())
}

/// Runs `partlog consume`.
///
/// # Errors
/// [`CliError::Usage`] for bad arguments, [`CliError::Failed`] if the topic or the group fails.
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CliError> {
    if args.members == 0 {
        return Err(CliError::Usage("--members must be at least 1".into()));
    }
    let topic = open(&args.data, &args.topic)?;
    let count = topic.partition_count();
    if let Some(p) = args.partition.filter(|&p| p >= count) {
        return Err(CliError::Failed(format!(
            "topic {} has no partition {p} (it has {count})",
            args.topic
        )));
    }
    let result = match &args.group {
        Some(group) => consume_group(&topic, group, args, out, err),
        None => consume_plain(&topic, args, out),
    };
    let closed = topic.close().map_err(failed);
    let consumed = result?;
    closed?;
    let _ = writeln!(err, "Processed a total of {consumed} messages");
    Ok(Outcome::Success)
}

/// Without a group: every partition (or `--partition`) from the log start, the high watermark
/// or `--offset`, up to the high watermark. Returns the number of records printed.
fn consume_plain(topic: &Topic, args: &Args, out: &mut dyn Write) -> Result<u64, CliError> {
    let partitions: Vec<u32> = match args.partition {
        Some(p) => vec![p],
        None => (0..topic.partition_count()).collect(),
    };
    let mut left = args.max.unwrap_or(u64::MAX);
    let mut printed = 0;
    for p in partitions {
        let offsets = topic.offsets(p).map_err(failed)?;
        let mut next = match (args.offset, args.from_beginning) {
            (Some(o), _) => o.max(offsets.log_start_offset),
            (None, true) => offsets.log_start_offset,
            (None, false) => offsets.high_watermark,
        };
        while next < offsets.high_watermark && left > 0 {
            let read = topic.read_committed(p, next, 1 << 20).map_err(failed)?;
            if read.batches.is_empty() {
                break;
            }
            for batch in &read.batches {
                for record in batch.records().map_err(failed)? {
                    let record = record.map_err(failed)?;
                    if record.offset < next || left == 0 {
                        continue;
                    }
                    if record.offset >= offsets.high_watermark {
                        break;
                    }
                    next = record.offset + 1;
                    let r = ConsumerRecord {
                        topic: topic.name().clone(),
                        partition: p,
                        offset: record.offset,
                        timestamp: record.timestamp,
                        key: record.key,
                        value: record.value,
                        headers: record.headers,
                    };
                    print(out, args.json, &r, None)?;
                    printed += 1;
                    left -= 1;
                }
                next = next.max(batch.next_offset().min(offsets.high_watermark));
            }
        }
    }
    Ok(printed)
}

/// As `--members` members of `group`: join, poll in turn until every assigned partition is
/// consumed up to its high watermark or `--max` records were printed, commit, leave. Returns
/// the number of records printed.
fn consume_group(
    topic: &Topic,
    group: &str,
    args: &Args,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<u64, CliError> {
    let coordinator = coordinator(&args.data)?;
    let mut config = ConsumerConfig::new(group);
    config.client_id = "partlog-consume".into();
    if args.from_beginning {
        config.auto_offset_reset = OffsetReset::Earliest;
    }
    let sources: [&dyn TopicSource; 1] = [topic];
    let mut members = Vec::with_capacity(args.members);
    for _ in 0..args.members {
        members.push(Consumer::join(&coordinator, &sources, config.clone()).map_err(failed)?);
    }
    let mut left = args.max.unwrap_or(u64::MAX);
    let mut printed = 0u64;
    // Heartbeat every member once, so that all adopt the final assignment before any reads.
    for m in &mut members {
        m.heartbeat().map_err(failed)?;
    }
    for m in &members {
        let parts: Vec<String> = m
            .assignment()
            .iter()
            .map(|tp| tp.partition.to_string())
            .collect();
        let _ = writeln!(
            err,
            "member {} (generation {}) assigned partitions [{}] of {}",
            m.member_id(),
            m.generation(),
            parts.join(","),
            args.topic
        );
    }
    let multi = args.members > 1;
    loop {
        let mut any = false;
        for m in &mut members {
            if left == 0 {
                break;
            }
            let records = m.poll().map_err(failed)?;
            any |= !records.is_empty();
            let take = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(records.len());
            // Records polled beyond --max are not consumed: move the positions back to them,
            // so that the commit leaves them for the next consumer.
            let mut rewind: BTreeMap<TopicPartition, i64> = BTreeMap::new();
            for r in &records[take..] {
                let tp = TopicPartition::new(r.topic.as_str(), r.partition);
                let e = rewind.entry(tp).or_insert(r.offset);
                *e = (*e).min(r.offset);
            }
            for (tp, offset) in &rewind {
                m.seek(tp, *offset).map_err(failed)?;
            }
            let id = m.member_id().to_owned();
            for r in &records[..take] {
                print(out, args.json, r, multi.then_some(id.as_str()))?;
            }
            printed += take as u64;
            left -= take as u64;
            m.commit().map_err(failed)?;
        }
        if left == 0 || !any {
            break;
        }
    }
    // Every member commits, also one that did not poll (--max reached first): its partitions
    // then have a committed offset, and `groups` shows their lag. All commit before any leaves
    // (a leave starts a new generation, in which the others' commits would be refused).
    for m in &mut members {
        m.commit().map_err(failed)?;
    }
    for m in members {
        m.leave().map_err(failed)?;
    }
    Ok(printed)
}
