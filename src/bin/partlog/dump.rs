//! `partlog dump`: the batches of a segment, or the entries of an index, for people (text) or
//! programs (one JSON object per line).

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use bytes::Bytes;
use partlog::batch::{BatchHeader, Compression, RecordBatch, TimestampType};
use partlog::index::{IndexEntry, OffsetEntry, TimeEntry};

use crate::args::{is_help, Spec};
use crate::files::{self, Kind};
use crate::json::{self, Object};
use crate::text::{preview, quoted_preview, PREVIEW_CHARS};
use crate::walk::{walk, Step};
use crate::{CliError, Outcome, USAGE};

const SPEC: Spec = Spec {
    values: &[],
    flags: &["records", "json"],
};

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
pub fn run(args: &[OsString], out: &mut dyn Write) -> Result<Outcome, CliError> {
    if is_help(args) {
        writeln!(out, "{USAGE}")?;
        return Ok(Outcome::Success);
    }
    let p = SPEC.parse(args)?;
    let path = p.one_path("PATH")?;
    let opts = Options {
        records: p.flag("records"),
        json: p.flag("json"),
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
                    writeln!(out, "{line}")?;
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
                    let mut o = Object::new();
                    o.str("type", "invalid")
                        .str("file", &file)
                        .int("position", position as u64);
                    writeln!(out, "{}", o.str("error", &reason).finish())?;
                } else {
                    writeln!(out, "position: {position} {reason}")?;
                }
            }
            Step::Zeros { position, len } => {
                if opts.json {
                    let mut o = Object::new();
                    o.str("type", "preallocated")
                        .str("file", &file)
                        .int("position", position as u64);
                    writeln!(out, "{}", o.int("bytes", len as u64).finish())?;
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

/// One batch (and its records, with `--records`) as a JSON object.
fn batch_json(
    file: &str,
    position: usize,
    h: &BatchHeader,
    batch: Option<&RecordBatch>,
    error: Option<&str>,
    opts: Options,
) -> String {
    let mut o = Object::new();
    o.str("type", "batch")
        .str("file", file)
        .int("position", position as u64)
        .int("baseOffset", h.base_offset)
        .int("lastOffset", h.last_offset())
        .int("count", h.record_count)
        .int("partitionLeaderEpoch", h.partition_leader_epoch)
        .int("baseTimestamp", h.base_timestamp)
        .int("maxTimestamp", h.max_timestamp)
        .str("timestampType", timestamp_type_name(h))
        .int("size", h.total_size() as u64)
        .int("magic", h.magic)
        .int("crc", h.crc)
        .str("compression", compression_name(h.compression()))
        .int("producerId", h.producer_id)
        .int("producerEpoch", h.producer_epoch)
        .int("baseSequence", h.base_sequence)
        .bool("isTransactional", h.is_transactional())
        .bool("isControl", h.is_control())
        .bool("valid", error.is_none());
    if let Some(e) = error {
        o.str("error", e);
    }
    if let Some(batch) = batch.filter(|_| opts.records) {
        match batch.records() {
            Ok(records) => {
                let mut items = Vec::new();
                for r in records {
                    let Ok(r) = r else {
                        // A fully validated batch has no bad record; stop if one shows anyway.
                        break;
                    };
                    let (key, key_cut) = preview_json(r.key.as_deref());
                    let (value, value_cut) = preview_json(r.value.as_deref());
                    let mut ro = Object::new();
                    ro.int("offset", r.offset)
                        .int("timestamp", r.timestamp)
                        .opt_int("keySize", r.key.as_ref().map(|k| k.len() as u64))
                        .opt_int("valueSize", r.value.as_ref().map(|v| v.len() as u64))
                        .opt_str("key", key.as_deref())
                        .bool("keyTruncated", key_cut)
                        .opt_str("value", value.as_deref())
                        .bool("valueTruncated", value_cut)
                        .int("headers", r.headers.len() as u64);
                    items.push(ro.finish());
                }
                o.raw("records", &json::array(&items));
            }
            Err(e) => {
                o.raw("records", "null").str("recordsError", &e.to_string());
            }
        }
    }
    o.finish()
}

/// How an index entry is printed.
trait DumpEntry: IndexEntry {
    /// One line of text; offsets are absolute when the segment's `base` offset is known.
    fn text(&self, base: Option<i64>) -> String;
    /// Adds the entry's fields to a JSON object.
    fn json(&self, base: Option<i64>, o: &mut Object);
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

    fn json(&self, base: Option<i64>, o: &mut Object) {
        o.opt_int("offset", absolute(base, self.relative_offset))
            .int("relativeOffset", self.relative_offset)
            .int("position", self.position);
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

    fn json(&self, base: Option<i64>, o: &mut Object) {
        o.int("timestamp", self.timestamp)
            .opt_int("offset", absolute(base, self.relative_offset))
            .int("relativeOffset", self.relative_offset);
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
            let mut o = Object::new();
            o.str("type", "entry")
                .str("file", &file)
                .int("indexPosition", (i * E::SIZE) as u64);
            e.json(base, &mut o);
            writeln!(out, "{}", o.finish())?;
        } else {
            writeln!(out, "{}", e.text(base))?;
        }
    }
    let free = (whole - used * E::SIZE) / E::SIZE;
    if free > 0 {
        let position = used * E::SIZE;
        if opts.json {
            let mut o = Object::new();
            o.str("type", "preallocated")
                .str("file", &file)
                .int("indexPosition", position as u64);
            writeln!(out, "{}", o.int("entries", free as u64).finish())?;
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
            let mut o = Object::new();
            o.str("type", "invalid")
                .str("file", &file)
                .int("indexPosition", whole as u64);
            writeln!(out, "{}", o.str("error", &reason).finish())?;
        } else {
            writeln!(out, "position: {whole} {reason}")?;
        }
    }
    Ok(partial.is_empty())
}
