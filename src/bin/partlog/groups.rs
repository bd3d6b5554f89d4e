//! `partlog groups`: the consumer groups of a data directory, their committed offsets and lag,
//! in the manner of Kafka's `kafka-consumer-groups.sh --describe`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use partlog::topic::{Topic, TopicSource};
use serde::Serialize;

use crate::consume::coordinator;
use crate::dump::json_line;
use crate::topic::failed;
use crate::{CliError, Outcome};

/// Arguments of `groups`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// Only this group.
    #[arg(long, value_name = "G")]
    pub group: Option<String>,
    /// One JSON object per (group, topic, partition), one per line.
    #[arg(long)]
    pub json: bool,
}

/// One committed offset in `groups --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OffsetJson<'a> {
    group: &'a str,
    topic: &'a str,
    partition: u32,
    current_offset: i64,
    /// `null` when the topic or partition no longer exists.
    log_end_offset: Option<i64>,
    lag: Option<i64>,
}

/// Runs `partlog groups`.
///
/// # Errors
/// [`CliError::Failed`] if the offsets or a topic cannot be read, or `--group` names a group
/// without committed offsets.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let coordinator = coordinator(&args.data)?;
    let groups = match &args.group {
        Some(g) => {
            if coordinator.describe_group(g).is_none() {
                return Err(CliError::Failed(format!(
                    "consumer group {g} does not exist in {} (no committed offsets)",
                    args.data.display()
                )));
            }
            vec![g.clone()]
        }
        None => coordinator.list_groups(),
    };
    // Log end offsets by topic, each topic opened once (None: no longer exists).
    let mut ends: BTreeMap<String, Option<Vec<i64>>> = BTreeMap::new();
    if !args.json {
        writeln!(
            out,
            "{:<20} {:<20} {:>9} {:>15} {:>15} {:>10}",
            "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG"
        )?;
    }
    for group in &groups {
        let Some(description) = coordinator.describe_group(group) else {
            continue;
        };
        for (tp, &current) in &description.offsets {
            if !ends.contains_key(&tp.topic) {
                let found = match Topic::open(&args.data, &tp.topic) {
                    Ok(t) => {
                        let leo = (0..t.partition_count())
                            .map(|p| t.offsets(p).map(|o| o.log_end_offset))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(failed)?;
                        t.close().map_err(failed)?;
                        Some(leo)
                    }
                    Err(partlog::Error::Topic(partlog::topic::TopicError::NotFound { .. })) => None,
                    Err(e) => return Err(failed(e)),
                };
                ends.insert(tp.topic.clone(), found);
            }
            let leo = ends[&tp.topic]
                .as_ref()
                .and_then(|v| v.get(tp.partition as usize).copied());
            let lag = leo.map(|l| (l - current).max(0));
            if args.json {
                json_line(
                    out,
                    &OffsetJson {
                        group,
                        topic: &tp.topic,
                        partition: tp.partition,
                        current_offset: current,
                        log_end_offset: leo,
                        lag,
                    },
                )?;
            } else {
                let show = |o: Option<i64>| o.map_or_else(|| "-".to_owned(), |o| o.to_string());
                writeln!(
                    out,
                    "{:<20} {:<20} {:>9} {:>15} {:>15} {:>10}",
                    group,
                    tp.topic,
                    tp.partition,
                    current,
                    show(leo),
                    show(lag)
                )?;
            }
        }
    }
    Ok(Outcome::Success)
}
