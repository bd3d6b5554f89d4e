//! The `replication-offset-checkpoint` file: the high watermark, in Kafka's layout (line 1 the
//! version `0`, line 2 the entry count, then `topic partition high_watermark` per line). Kafka
//! keeps one per data directory for every partition in it; a `Partition` keeps one per partition
//! directory, with that partition's line, and the topic layer also writes Kafka's shared one
//! (`topic::DataDir`). Written atomically (temp file, fsync, rename).

use std::path::Path;

use crate::checkpoint::write_atomically;
use crate::error::{Error, Result};

/// Name of the high-watermark checkpoint in a partition directory (Kafka's name).
pub const REPLICATION_OFFSET_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";

/// Writes `high_watermark` for `topic`/`partition` to the checkpoint in `dir`.
pub(crate) fn write(dir: &Path, topic: &str, partition: u32, high_watermark: i64) -> Result<()> {
    let text = format!("0\n1\n{topic} {partition} {high_watermark}\n");
    write_atomically(
        &dir.join(REPLICATION_OFFSET_CHECKPOINT_FILE),
        text.as_bytes(),
    )
}

/// Reads the high watermark of `topic`/`partition` from the checkpoint in `dir`; `None` if the
/// file or the partition's line is missing.
///
/// # Errors
/// [`Error::Corrupt`] (with the byte position of the bad line) if the file is not a valid
/// checkpoint; [`Error::Io`] if it cannot be read.
pub(crate) fn read(dir: &Path, topic: &str, partition: u32) -> Result<Option<i64>> {
    let path = dir.join(REPLICATION_OFFSET_CHECKPOINT_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, "read", e)),
    };
    let bad = |position: usize, reason: &str| {
        Error::corrupt(
            &path,
            position as u64,
            format!("replication offset checkpoint: {reason}"),
        )
    };
    let text = std::str::from_utf8(&text).map_err(|e| bad(e.valid_up_to(), "not UTF-8"))?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(bad(text.len(), "empty, or the last line has no newline"));
    };
    let mut position = 0;
    let mut lines = body.split('\n').map(|line| {
        let at = position;
        position += line.len() + 1;
        (at, line)
    });
    match lines.next() {
        Some((_, "0")) => {}
        _ => return Err(bad(0, "unknown version")),
    }
    let (at, count) = lines
        .next()
        .ok_or_else(|| bad(text.len(), "no count line"))?;
    let count: usize = count.parse().map_err(|_| bad(at, "bad count"))?;
    let mut found = None;
    let mut entries = 0;
    for (at, line) in lines {
        let mut fields = line.split(' ');
        let (Some(t), Some(p), Some(hw), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad(at, "entry is not `topic partition high_watermark`"));
        };
        let p: u32 = p.parse().map_err(|_| bad(at, "bad partition"))?;
        let hw: i64 = hw
            .parse()
            .ok()
            .filter(|hw| *hw >= 0)
            .ok_or_else(|| bad(at, "bad high watermark"))?;
        if t == topic && p == partition {
            found = Some(hw);
        }
        entries += 1;
    }
    if entries != count {
        return Err(bad(text.len(), "count does not match the entries"));
    }
    Ok(found)
}
