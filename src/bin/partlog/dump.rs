//! `partlog dump`: the batches of a segment, or the entries of an index, for people (text) or
//! programs (one JSON object per line).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use partlog::batch::{BatchHeader, Compression, RecordBatch, TimestampType};
use partlog::index::{IndexEntry, OffsetEntry, TimeEntry};

use serde::Serialize;

use crate::files::{self, Kind};
use crate::text::{preview, quoted_preview, PREVIEW_CHARS};
use crate::walk::{walk, Step};
use crate::{CliError, Outcome};

/// Arguments of `dump`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A .log, .index or .timeindex file, or a log directory.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Also print every record of each batch.
    #[arg(long)]
    pub records: bool,
    /// Print one JSON object per line. The walk of a file stops at its first invalid batch
    /// (reported with its position and the reason); the exit status is then 1.
    #[arg(long)]
    pub json: bool,
}

/// Writes `value` as one line of JSON.
pub fn json_line(out: &mut dyn Write, value: &impl Serialize) -> Result<(), CliError> {
    serde_json::to_writer(&mut *out, value).map_err(|e| CliError::Output(e.into()))?;
    writeln!(out)?;
    Ok(())
}

/// A line of `dump --json` that is not a batch or an entry: an invalid batch or entry, or
/// preallocated space.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Marker<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<u64>,
}

impl<'a> Marker<'a> {
    fn new(kind: &'static str, file: &'a str) -> Self {
        Marker {
            kind,
            file,
            position: None,
            index_position: None,
            error: None,
            bytes: None,
            entries: None,
        }
    }
}

/// How to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Print every record of each batch.
    pub records: bool,
    /// One JSON object per line instead of text.
    pub json: bool,
}

/// Runs `partlog dump`.
///
/// # Errors
/// [`CliError::Usage`] for bad arguments or a path of unknown kind, [`CliError::Failed`] if a
/// file cannot be read.
pub fn run(args: &Args, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let path = args.path.clone();
    let opts = Options {
        records: args.records,
        json: args.json,
    };
    let meta = fs::metadata(&path)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
    let clean = if meta.is_dir() {
        let listing = files::list(&path)
            .map_err(|e| CliError::Failed(format!("cannot list {}: {e}", path.display())))?;
        if listing.logs.is_empty() && !opts.json {
            writeln!(out, "no segment files in {}", path.display())?;
        }
        let mut clean = true;
        for log in listing.logs.values() {
            match dump_log(log, opts, out) {
                Ok(ok) => clean &= ok,
                // The reader went away after a bad segment was reported: keep the outcome
                // (the caller's flush then meets the same closed pipe).
                Err(CliError::Output(e)) if !clean && e.kind() == io::ErrorKind::BrokenPipe => {
                    return Ok(Outcome::Problems)
                }
                Err(e) => return Err(e),
            }
        }
        clean
    } else {
        match files::classify(&path) {
            Some((Kind::Log, _)) => dump_log(&path, opts, out)?,
            Some((Kind::OffsetIndex, base)) => dump_index::<OffsetEntry>(&path, base, opts, out)?,
            Some((Kind::TimeIndex, base)) => dump_index::<TimeEntry>(&path, base, opts, out)?,
            None => {
                return Err(CliError::Usage(format!(
                    "cannot tell what {} is: expected a .log, .index or .timeindex file, or a directory",
                    path.display()
                )))
            }
        }
    };
    Ok(if clean {
        Outcome::Success
    } else {
        Outcome::Problems
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    fs::read(path).map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))
}

/// Kafka's name for a codec.
pub fn compression_name(c: Compression) -> &'static str {
    match c {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

fn timestamp_type_name(h: &BatchHeader) -> &'static str {
    match h.timestamp_type() {
        TimestampType::CreateTime => "CreateTime",
        TimestampType::LogAppendTime => "LogAppendTime",
    }
}

/// Prints the batches of one `.log` file; returns whether it held only valid batches (and
/// perhaps preallocated zeros).
fn dump_log(path: &Path, opts: Options, out: &mut dyn Write) -> Result<bool, CliError> {
    let data = Bytes::from(read(path)?);
    let file = path.display().to_string();
    if !opts.json {
        writeln!(out, "Dumping {file}")?;
        if let Some((_, Some(base))) = files::classify(path) {
            writeln!(out, "Starting offset: {base}")?;
        }
    }
    let (mut batches, mut records, mut bytes) = (0u64, 0u64, 0u64);
    let mut clean = true;
    for step in walk(data) {
        match step {
            Step::Batch {
                position,
                header,
                batch,
            } => {
                let error = batch.as_ref().err().map(ToString::to_string);
                if opts.json {
                    let line = batch_json(
                        &file,
                        position,
                        &header,
                        batch.as_ref().ok(),
                        error.as_deref(),
                        opts,
                    );
                    json_line(out, &line)?;
                } else {
                    print_batch(
                        out,
                        position,
                        &header,
                        batch.as_ref().ok(),
                        error.as_deref(),
                        opts,
                    )?;
                }
                if batch.is_ok() {
                    batches += 1;
                    records += u64::try_from(header.record_count).unwrap_or(0);
                    bytes += header.total_size() as u64;
                } else {
                    clean = false;
                }
            }
            Step::Invalid { position, reason } | Step::Torn { position, reason } => {
                clean = false;
                if opts.json {
                    let mut m = Marker::new("invalid", &file);
                    m.position = Some(position as u64);
                    m.error = Some(&reason);
                    json_line(out, &m)?;
                } else {
                    writeln!(out, "position: {position} {reason}")?;
                }
            }
            Step::Zeros { position, len } => {
                if opts.json {
                    let mut m = Marker::new("preallocated", &file);
                    m.position = Some(position as u64);
                    m.bytes = Some(len as u64);
                    json_line(out, &m)?;
                } else {
                    writeln!(
                        out,
                        "position: {position} end of data ({len} zero bytes of preallocated space)"
                    )?;
                }
            }
        }
    }
    if !opts.json {
        let status = if clean {
            ""
        } else {
            " before the first invalid batch"
        };
        writeln!(
            out,
            "{batches} valid batches, {records} records, {bytes} bytes{status}"
        )?;
    }
    Ok(clean)
}

/// Prints one batch header line (and its records, with `--records`) as text.
fn print_batch(
    out: &mut dyn Write,
    position: usize,
    h: &BatchHeader,
    batch: Option<&RecordBatch>,
    error: Option<&str>,
    opts: Options,
) -> Result<(), CliError> {
    write!(
        out,
        "position: {position} baseOffset: {} lastOffset: {} count: {} partitionLeaderEpoch: {} maxTimestamp: {} \
         ({}) size: {} crc: {} compression: {} valid: {}",
        h.base_offset,
        h.last_offset(),
        h.record_count,
        h.partition_leader_epoch,
        h.max_timestamp,
        timestamp_type_name(h),
        h.total_size(),
        h.crc,
        compression_name(h.compression()),
        error.is_none(),
    )?;
    if h.producer_id >= 0 {
        write!(
            out,
            " producerId: {} producerEpoch: {} baseSequence: {}",
            h.producer_id, h.producer_epoch, h.base_sequence
        )?;
    }
    if h.is_transactional() {
        write!(out, " isTransactional: true")?;
    }
    if h.is_control() {
        write!(out, " isControl: true")?;
    }
    match error {
        Some(e) => writeln!(out, " error: {e}")?,
        None => writeln!(out)?,
    }
    let Some(batch) = batch.filter(|_| opts.records) else {
        return Ok(());
    };
    let records = match batch.records() {
        Ok(r) => r,
        Err(e) => {
            writeln!(out, "| records not shown: {e}")?;
            return Ok(());
        }
    };
    for r in records {
        match r {
            Ok(r) => writeln!(
                out,
                "| offset: {} timestamp: {} keySize: {} valueSize: {} headers: {} key: {} value: {}",
                r.offset,
                r.timestamp,
                r.key.as_ref().map_or(-1, |k| k.len() as i64),
                r.value.as_ref().map_or(-1, |v| v.len() as i64),
                r.headers.len(),
                quoted_preview(r.key.as_deref()),
                quoted_preview(r.value.as_deref()),
            )?,
            Err(e) => {
                writeln!(out, "| bad record: {e}")?;
                break;
            }
        }
    }
    Ok(())
}

/// A key or value as JSON: `null`, or its lossy UTF-8 preview.
fn preview_json(bytes: Option<&[u8]>) -> (Option<String>, bool) {
    match bytes {
        None => (None, false),
        Some(b) => {
            let (s, cut) = preview(b, PREVIEW_CHARS);
            (Some(s), cut)
        }
    }
}

/// One record in `dump --json --records`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordJson {
    offset: i64,
    timestamp: i64,
    key_size: Option<u64>,
    value_size: Option<u64>,
    key: Option<String>,
    key_truncated: bool,
    value: Option<String>,
    value_truncated: bool,
    headers: u64,
}

/// One batch in `dump --json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchJson<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    file: &'a str,
    position: u64,
    base_offset: i64,
    last_offset: i64,
    count: i32,
    partition_leader_epoch: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    timestamp_type: &'static str,
    size: u64,
    magic: i8,
    crc: u32,
    compression: &'static str,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    is_transactional: bool,
    is_control: bool,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// Absent without `--records`; `null` when the records cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    records: Option<Option<Vec<RecordJson>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    records_error: Option<String>,
}

/// One batch (and its records, with `--records`) as a JSON object.
fn batch_json<'a>(
    file: &'a str,
    position: usize,
    h: &BatchHeader,
    batch: Option<&RecordBatch>,
    error: Option<&'a str>,
    opts: Options,
) -> BatchJson<'a> {
    let mut b = BatchJson {
        kind: "batch",
        file,
        position: position as u64,
        base_offset: h.base_offset,
        last_offset: h.last_offset(),
        count: h.record_count,
        partition_leader_epoch: h.partition_leader_epoch,
        base_timestamp: h.base_timestamp,
        max_timestamp: h.max_timestamp,
        timestamp_type: timestamp_type_name(h),
        size: h.total_size() as u64,
        magic: h.magic,
        crc: h.crc,
        compression: compression_name(h.compression()),
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        is_transactional: h.is_transactional(),
        is_control: h.is_control(),
        valid: error.is_none(),
        error,
        records: None,
        records_error: None,
    };
    if let Some(batch) = batch.filter(|_| opts.records) {
        match batch.records() {
            Ok(records) => {
                let mut items = Vec::new();
                for r in records {
                    let Ok(r) = r else {
                        // A fully validated batch has no bad record; stop if one shows anyway.
                        break;
                    };
                    let (key, key_truncated) = preview_json(r.key.as_deref());
                    let (value, value_truncated) = preview_json(r.value.as_deref());
                    items.push(RecordJson {
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key_size: r.key.as_ref().map(|k| k.len() as u64),
                        value_size: r.value.as_ref().map(|v| v.len() as u64),
                        key,
                        key_truncated,
                        value,
                        value_truncated,
                        headers: r.headers.len() as u64,
                    });
                }
                b.records = Some(Some(items));
            }
            Err(e) => {
                b.records = Some(None);
                b.records_error = Some(e.to_string());
            }
        }
    }
    b
}

/// How an index entry is printed.
trait DumpEntry: IndexEntry {
    /// One line of text; offsets are absolute when the segment's `base` offset is known.
    fn text(&self, base: Option<i64>) -> String;
    /// The entry's fields as JSON, after `type`, `file` and `indexPosition`.
    fn json(&self, base: Option<i64>) -> serde_json::Map<String, serde_json::Value>;
}

/// `base + relative`, if the base is known (and the sum fits).
fn absolute(base: Option<i64>, relative: i32) -> Option<i64> {
    base.and_then(|b| b.checked_add(i64::from(relative)))
}

impl DumpEntry for OffsetEntry {
    fn text(&self, base: Option<i64>) -> String {
        match absolute(base, self.relative_offset) {
            Some(o) => format!(
                "offset: {o} relativeOffset: {} position: {}",
                self.relative_offset, self.position
            ),
            None => format!(
                "relativeOffset: {} position: {}",
                self.relative_offset, self.position
            ),
        }
    }

    fn json(&self, base: Option<i64>) -> serde_json::Map<String, serde_json::Value> {
        let mut o = serde_json::Map::new();
        o.insert("offset".into(), absolute(base, self.relative_offset).into());
        o.insert("relativeOffset".into(), self.relative_offset.into());
        o.insert("position".into(), self.position.into());
        o
    }
}

impl DumpEntry for TimeEntry {
    fn text(&self, base: Option<i64>) -> String {
        match absolute(base, self.relative_offset) {
            Some(o) => format!(
                "timestamp: {} offset: {o} relativeOffset: {}",
                self.timestamp, self.relative_offset
            ),
            None => format!(
                "timestamp: {} relativeOffset: {}",
                self.timestamp, self.relative_offset
            ),
        }
    }

    fn json(&self, base: Option<i64>) -> serde_json::Map<String, serde_json::Value> {
        let mut o = serde_json::Map::new();
        o.insert("timestamp".into(), self.timestamp.into());
        o.insert("offset".into(), absolute(base, self.relative_offset).into());
        o.insert("relativeOffset".into(), self.relative_offset.into());
        o
    }
}

/// Prints the entries of an index file; returns whether the file is whole entries. A trailing
/// run of all-zero entries is reported as preallocated space where the file may hold some (see
/// [`files::used_entries`]). In JSON, `indexPosition` is the
/// byte position in the index file (an offset entry's `position` is the one in the `.log`).
fn dump_index<E: DumpEntry>(
    path: &Path,
    base: Option<i64>,
    opts: Options,
    out: &mut dyn Write,
) -> Result<bool, CliError> {
    let data = read(path)?;
    let file = path.display().to_string();
    let whole = data.len() - data.len() % E::SIZE;
    let (entries, partial) = data.split_at(whole);
    // In an index that may be preallocated, entries up to the last one with a non-zero byte are
    // data and the zeros after are free slots; otherwise zero entries are data too.
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let used = files::used_entries(
        entries,
        E::SIZE,
        files::index_may_be_preallocated(dir, base),
    );
    if !opts.json {
        writeln!(out, "Dumping {file}")?;
        let base_text = base.map_or_else(|| "unknown".to_owned(), |b| b.to_string());
        writeln!(out, "{}: {used} entries, base offset {base_text}", E::NAME)?;
    }
    for (i, chunk) in entries.chunks_exact(E::SIZE).take(used).enumerate() {
        let e = E::decode(chunk);
        if opts.json {
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct EntryJson<'a> {
                #[serde(rename = "type")]
                kind: &'static str,
                file: &'a str,
                index_position: u64,
                #[serde(flatten)]
                fields: serde_json::Map<String, serde_json::Value>,
            }
            let line = EntryJson {
                kind: "entry",
                file: &file,
                index_position: (i * E::SIZE) as u64,
                fields: e.json(base),
            };
            json_line(out, &line)?;
        } else {
            writeln!(out, "{}", e.text(base))?;
        }
    }
    let free = (whole - used * E::SIZE) / E::SIZE;
    if free > 0 {
        let position = used * E::SIZE;
        if opts.json {
            let mut m = Marker::new("preallocated", &file);
            m.index_position = Some(position as u64);
            m.entries = Some(free as u64);
            json_line(out, &m)?;
        } else {
            writeln!(
                out,
                "position: {position} end of data ({free} zero entries, {} bytes, of preallocated space)",
                free * E::SIZE
            )?;
        }
    }
    if !partial.is_empty() {
        let reason = format!(
            "{} trailing bytes do not form a whole entry of {} bytes",
            partial.len(),
            E::SIZE
        );
        if opts.json {
            let mut m = Marker::new("invalid", &file);
            m.index_position = Some(whole as u64);
            m.error = Some(&reason);
            json_line(out, &m)?;
        } else {
            writeln!(out, "position: {whole} {reason}")?;
        }
    }
    Ok(partial.is_empty())
}
