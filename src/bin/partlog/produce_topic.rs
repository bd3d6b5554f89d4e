//! `partlog produce-topic`: the lines of a CSV or text file (or stdin) to a topic, in the manner
//! of Kafka's `kafka-console-producer.sh`: each line one record, its key taken from a named CSV
//! column and its timestamp from another, partitioned by Kafka's default partitioner.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use partlog::batch::{Compression, CompressionLevel, SimpleRecord};
use partlog::topic::{Producer, ProducerConfig};

use crate::topic::{failed, open};
use crate::{CliError, Outcome};

/// Arguments of `produce-topic`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data directory.
    #[arg(value_name = "DATA")]
    pub data: PathBuf,
    /// The topic (it must exist: `partlog topic create`).
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// The file to read, one record per line; `-` for standard input.
    #[arg(long, value_name = "F|-")]
    pub file: PathBuf,
    /// The file is CSV: its first line is a header naming the columns (not produced).
    #[arg(long)]
    pub csv: bool,
    /// The CSV column holding the key (by header name, or 0-based index); without it records
    /// have no key and Kafka's sticky partitioning spreads them.
    #[arg(long, value_name = "C", requires = "csv")]
    pub key_column: Option<String>,
    /// The CSV column holding the timestamp: `YYYY-MM-DD HH:MM:SS[.fff]` (taken as UTC) or epoch
    /// milliseconds. Without it records get the current time.
    #[arg(long, value_name = "C", requires = "csv")]
    pub timestamp_column: Option<String>,
    /// Skip the first line (a header) of a text file; implied by --csv.
    #[arg(long)]
    pub skip_header: bool,
    /// The producer's codec (Kafka's producer compression.type): none, gzip, snappy, lz4 or
    /// zstd. Each batch is compressed before it is appended; the topic's own compression.type
    /// decides how it is stored.
    #[arg(long, value_name = "CODEC", default_value = "none")]
    pub compression: String,
    /// The producer's compression level (KIP-390; the codec's default without it).
    #[arg(long, value_name = "L", allow_negative_numbers = true)]
    pub compression_level: Option<i32>,
}

/// Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A timestamp in milliseconds: epoch milliseconds, or `YYYY-MM-DD HH:MM:SS[.fff]` (or with a
/// `T`) as UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, mo, day) = (d.next()??, d.next()??, d.next()??);
    let (time, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = time.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let ok = (1..=12).contains(&mo)
        && (1..=31).contains(&day)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..=60).contains(&sec);
    if !ok {
        return None;
    }
    let ms = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        digits.parse::<i64>().ok()?
    };
    Some(((days_from_civil(y, mo, day) * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

/// Splits one CSV line into its fields (RFC 4180 quoting, within the line).
pub fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if field.is_empty() => quoted = true,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// The index of column `spec` in `header`: a header name, or else a 0-based index.
fn column(header: &[String], spec: &str, option: &str) -> Result<usize, CliError> {
    if let Some(i) = header.iter().position(|h| h.trim() == spec) {
        return Ok(i);
    }
    match spec.parse::<usize>() {
        Ok(i) if i < header.len() => Ok(i),
        _ => Err(CliError::Failed(format!(
            "{option} {spec:?}: no such column in the header ({})",
            header.join(",")
        ))),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Runs `partlog produce-topic`.
///
/// # Errors
/// [`CliError::Usage`] for bad arguments, [`CliError::Failed`] if the file cannot be read, a
/// line lacks its key or timestamp column, or the topic fails.
pub fn run(args: &Args, out: &mut dyn Write, err: &mut dyn Write) -> Result<Outcome, CliError> {
    crate::topic::topic_name(&args.topic)?;
    let from_stdin = args.file.as_os_str() == "-";
    let input: Box<dyn BufRead> = if from_stdin {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let f = File::open(&args.file)
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", args.file.display())))?;
        Box::new(BufReader::with_capacity(1 << 16, f))
    };
    let name = if from_stdin {
        "stdin".to_owned()
    } else {
        args.file.display().to_string()
    };
    let codec: Compression = args.compression.parse().map_err(
        |e: partlog::batch::compression::UnknownCompression| {
            CliError::Usage(format!("--compression: {e}"))
        },
    )?;
    let compression = match args.compression_level {
        None => CompressionLevel::default_for(codec),
        Some(l) => CompressionLevel::new(codec, l)
            .map_err(|e| CliError::Usage(format!("--compression-level: {e}")))?,
    };
    let topic = open(&args.data, &args.topic)?;
    let partitions = topic.partitions().len();
    let mut producer = Producer::new(
        &topic,
        ProducerConfig {
            compression,
            ..ProducerConfig::default()
        },
    );
    let mut per_partition = vec![0u64; partitions];
    let mut lines = input.lines();
    let (mut key_col, mut ts_col) = (None, None);
    if args.csv || args.skip_header {
        let header = match lines.next() {
            Some(l) => l.map_err(|e| CliError::Failed(format!("cannot read {name}: {e}")))?,
            None => String::new(),
        };
        let header = split_csv(&header);
        if let Some(spec) = &args.key_column {
            key_col = Some(column(&header, spec, "--key-column")?);
        }
        if let Some(spec) = &args.timestamp_column {
            ts_col = Some(column(&header, spec, "--timestamp-column")?);
        }
    }
    let start = Instant::now();
    let mut last_report = start;
    let mut produced = 0u64;
    let mut bytes = 0u64;
    // Line numbers in messages count from 1, the header included.
    let first_line = 1 + usize::from(args.csv || args.skip_header);
    for (line_no, line) in (first_line..).zip(lines) {
        let line = line.map_err(|e| CliError::Failed(format!("cannot read {name}: {e}")))?;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() {
            continue;
        }
        let (mut key, mut timestamp) = (None, now_ms());
        if key_col.is_some() || ts_col.is_some() {
            let fields = split_csv(line);
            let field = |i: usize, what: &str| {
                fields.get(i).ok_or_else(|| {
                    CliError::Failed(format!(
                        "{name}:{line_no}: no {what} column (the line has {} fields)",
                        fields.len()
                    ))
                })
            };
            if let Some(i) = key_col {
                key = Some(Bytes::from(field(i, "key")?.clone()));
            }
            if let Some(i) = ts_col {
                let raw = field(i, "timestamp")?;
                timestamp = parse_timestamp(raw).ok_or_else(|| {
                    CliError::Failed(format!(
                        "{name}:{line_no}: timestamp {raw:?} is neither YYYY-MM-DD HH:MM:SS nor epoch \
                         milliseconds"
                    ))
                })?;
            }
        }
        bytes += line.len() as u64;
        let record = SimpleRecord {
            timestamp,
            key,
            value: Some(Bytes::copy_from_slice(line.as_bytes())),
            headers: Vec::new(),
        };
        let p = producer.send(record).map_err(failed)?;
        per_partition[p as usize] += 1;
        produced += 1;
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            let _ = writeln!(
                err,
                "produce-topic: {produced} records ({:.0} records/s)",
                produced as f64 / secs
            );
        }
    }
    producer.flush().map_err(failed)?;
    topic.flush().map_err(failed)?;
    let description = topic.describe();
    topic.close().map_err(failed)?;
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    writeln!(
        out,
        "produced {produced} records ({bytes} bytes of values) from {name} to topic {} in {secs:.3} s \
         ({:.0} records/s)",
        args.topic,
        produced as f64 / secs
    )?;
    for (p, n) in per_partition.iter().enumerate() {
        let leo = description.partitions[p].log_end_offset;
        writeln!(out, "partition {p}: {n} records (log end offset {leo})")?;
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0));
        assert_eq!(
            parse_timestamp("2020-07-01 00:25:32"),
            Some(1_593_563_132_000)
        );
        assert_eq!(
            parse_timestamp("2020-07-01T00:25:32.5"),
            Some(1_593_563_132_500)
        );
        assert_eq!(parse_timestamp("1593563132000"), Some(1_593_563_132_000));
        assert_eq!(parse_timestamp("2020-13-01 00:00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn csv_fields() {
        assert_eq!(split_csv("a,b,,c"), ["a", "b", "", "c"]);
        assert_eq!(
            split_csv(r#""x,y","say ""hi""",z"#),
            ["x,y", r#"say "hi""#, "z"]
        );
        assert_eq!(split_csv(""), [""]);
    }
}
