//! Small files that must never be half-written: a log's recovery point and log start offset, and
//! the data directory's shared checkpoints (`topic partition offset` per line, for every partition
//! in the directory: [`read_topic_partition_offsets`], [`write_topic_partition_offsets`]).
//!
//! They use Kafka's text checkpoint layout (`CheckpointFile`): line 1 the version (0), line 2 the
//! number of entries, then one entry per line. They are written to `<name>.tmp`, synced, renamed
//! over the old file, and the directory is synced, so a crash leaves either the old or the new
//! file, never a mix.
//!
//! [`write_atomically`] is public for crates built over partlog that keep small files of their
//! own beside a log (`partlog-raft` keeps the Raft vote this way).

use crate::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::durability;
use crate::error::{Error, Result};

/// Writes `contents` to `path` atomically: `<path>.tmp` is written and fsynced, renamed over
/// `path`, and the directory is fsynced. After a crash `path` holds the old contents or the new
/// ones, never a mix (a `<path>.tmp` may be left behind; the next write replaces it).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("vote");
/// partlog::checkpoint::write_atomically(&path, b"term 3")?;
/// assert_eq!(std::fs::read(&path)?, b"term 3");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] naming the file and the operation that failed.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = Path::new(&tmp);
    let mut f = File::create(tmp).map_err(|e| Error::io(tmp, "create", e))?;
    durability::created(tmp);
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(tmp, "write", e))?;
    durability::file_synced(tmp);
    drop(f);
    fs::rename(tmp, path).map_err(|e| Error::io(path, "rename", e))?;
    durability::renamed(tmp, path);
    sync_parent(path)
}

/// Removes `path`; `Ok(false)` if it was already gone.
pub(crate) fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            durability::removed(path);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, "remove", e)),
    }
}

/// Renames `path` to `<path>.deleted` (Kafka's suffix for files that wait out
/// `file.delete.delay.ms`, and a leftover an open removes); `Ok(None)` if it was already gone.
/// Cheaper than an unlink where it matters: ext4 frees a file's blocks in the unlink, a rename
/// touches only the directory.
pub(crate) fn rename_to_deleted(path: &Path) -> Result<Option<std::path::PathBuf>> {
    let mut to = path.as_os_str().to_owned();
    to.push(".deleted");
    let to = std::path::PathBuf::from(to);
    match fs::rename(path, &to) {
        Ok(()) => {
            durability::renamed(path, &to);
            Ok(Some(to))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "rename", e)),
    }
}

/// Fsyncs the directory holding `path`, so a create, rename or delete in it is durable.
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) => sync_dir(dir),
        None => Ok(()),
    }
}

/// Fsyncs a directory.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, "fsync directory", e))?;
    durability::dir_synced(dir);
    Ok(())
}

/// Writes a checkpoint holding one offset, in the fixed 24-byte layout of
/// [`write_offset_relaxed`] (zero-padded), so that later in-place rewrites never change its size.
pub(crate) fn write_offset(path: &Path, offset: i64) -> Result<()> {
    write_atomically(path, offset_text(offset).as_bytes())
}

/// An offset checkpoint's bytes: version 0, one entry, the offset zero-padded to 19 digits
/// ([`OFFSET_CHECKPOINT_LEN`] bytes in all).
fn offset_text(offset: i64) -> String {
    format!("0\n1\n{offset:019}\n")
}

/// Writes a checkpoint holding one offset in place, without waiting for the disk: the offset is
/// zero-padded so the file always has the same 24 bytes, and one small `pwrite` through `f`
/// (held open, see [`open_for_rewrite`]) rewrites it; no temp file, since a rename costs ext4 a
/// forced flush (~0.2 ms). Only for values where an older file, or a garbled one, is safe after
/// a crash: the recovery point moving *up* (an older, lower one only makes recovery scan more;
/// a garbled one makes it scan everything).
pub(crate) fn write_offset_relaxed(f: &File, path: &Path, offset: i64) -> Result<()> {
    use crate::fs::FileExt;
    f.write_all_at(offset_text(offset).as_bytes(), 0)
        .map_err(|e| Error::io(path, "write", e))
}

/// Opens (creating if needed) a checkpoint file for [`write_offset_relaxed`], cut to the size
/// every offset checkpoint has (24 bytes), so that in-place rewrites leave nothing behind; with
/// the length it had (0 for a file it created).
pub(crate) fn open_for_rewrite(path: &Path) -> Result<(File, u64)> {
    let f = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, "open", e))?;
    durability::created(path);
    let len = f.metadata().map_err(|e| Error::io(path, "stat", e))?.len();
    if len > OFFSET_CHECKPOINT_LEN {
        f.set_len(OFFSET_CHECKPOINT_LEN)
            .map_err(|e| Error::io(path, "truncate", e))?;
    }
    Ok((f, len))
}

/// Bytes of an offset checkpoint: `0\n1\n` and 19 zero-padded digits and `\n`.
pub(crate) const OFFSET_CHECKPOINT_LEN: u64 = 24;

/// Reads a checkpoint holding one offset; `Ok(None)` if the file does not exist. A file that does
/// not parse is reported as corrupt, with the byte position of the bad line.
pub(crate) fn read_offset(path: &Path) -> Result<Option<i64>> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, "read", e)),
    };
    let mut position = 0u64;
    let mut fields = Vec::with_capacity(3);
    for line in text.split(|&b| b == b'\n') {
        let parsed = std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok());
        match parsed {
            Some(v) if fields.len() < 3 => fields.push(v),
            None if line.is_empty() && fields.len() == 3 => {}
            _ => {
                return Err(Error::corrupt(
                    path,
                    position,
                    "checkpoint line is not a number",
                ))
            }
        }
        position += line.len() as u64 + 1;
    }
    match fields[..] {
        [0, 1, offset] if offset >= 0 => Ok(Some(offset)),
        [0, 1, _] => Err(Error::corrupt(path, 0, "negative offset in checkpoint")),
        [0, ..] => Err(Error::corrupt(
            path,
            0,
            "checkpoint must hold exactly one entry",
        )),
        _ => Err(Error::corrupt(path, 0, "unknown checkpoint version")),
    }
}

/// A data-directory checkpoint's entries: `(topic, partition)` → offset, in the order partlog
/// writes them (by topic, then partition).
pub type TopicPartitionOffsets = std::collections::BTreeMap<(String, u32), i64>;

/// Renders the entries in Kafka's `CheckpointFile` layout, version 0: `0\n`, the count and
/// `\n`, then `topic partition offset\n` per entry, byte for byte what Kafka's
/// `OffsetCheckpointFile` writes for the same entries (Kafka writes them in hash-map order;
/// partlog sorts them, which Kafka's reader does not care about).
pub fn format_topic_partition_offsets(entries: &TopicPartitionOffsets) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut text = format!("0\n{}\n", entries.len());
    for ((topic, partition), offset) in entries {
        let _ = writeln!(text, "{topic} {partition} {offset}");
    }
    text.into_bytes()
}

/// Parses a data-directory checkpoint (`recovery-point-offset-checkpoint`,
/// `log-start-offset-checkpoint`, `replication-offset-checkpoint`, `cleaner-offset-checkpoint`)
/// as Kafka's `CheckpointFile` reader does: lines as Java's `readLine` sees them (`\n` or
/// `\r\n`, the last newline optional), fields split on runs of whitespace. An empty file, or
/// one with only the version line, holds no entries (Kafka returns an empty list for both).
///
/// # Errors
/// [`Error::Corrupt`] with the byte position of the bad line for what Kafka refuses: a version
/// other than 0, a count that is not a number or does not match the entries, a line that is not
/// `topic partition offset` with a non-negative partition and a number for the offset, and
/// (beyond Kafka, which would fail later) a negative offset or a file that is not UTF-8.
pub fn parse_topic_partition_offsets(path: &Path, text: &[u8]) -> Result<TopicPartitionOffsets> {
    let bad = |position: usize, reason: String| Error::corrupt(path, position as u64, reason);
    let text = std::str::from_utf8(text)
        .map_err(|e| bad(e.valid_up_to(), "checkpoint file is not UTF-8".into()))?;
    let mut entries = TopicPartitionOffsets::new();
    if text.is_empty() {
        return Ok(entries);
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    let mut position = 0;
    let mut lines = body.split('\n').map(|line| {
        let at = position;
        position += line.len() + 1;
        (at, line.strip_suffix('\r').unwrap_or(line))
    });
    match lines.next() {
        // Java's `Integer.parseInt`: no surrounding blanks.
        Some((_, v)) if v.parse::<i32>() == Ok(0) => {}
        Some((at, v)) => return Err(bad(at, format!("unrecognised checkpoint version {v:?}"))),
        None => return Ok(entries),
    }
    let Some((at, count)) = lines.next() else {
        return Ok(entries);
    };
    let count: usize = count
        .parse()
        .map_err(|_| bad(at, format!("bad entry count {count:?}")))?;
    let mut found = 0usize;
    for (at, line) in lines {
        let malformed = || bad(at, format!("malformed checkpoint line {line:?}"));
        // Java's `split("\\s+")`: a leading separator makes an empty first field.
        let mut fields: Vec<&str> = line.split(|c: char| c.is_ascii_whitespace()).collect();
        let first = fields.first().copied().unwrap_or_default();
        fields.retain(|f| !f.is_empty());
        let [topic, partition, offset] = fields[..] else {
            return Err(malformed());
        };
        if first.is_empty() {
            return Err(malformed());
        }
        let partition: u32 = partition.parse().map_err(|_| malformed())?;
        let offset: i64 = offset
            .parse()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(malformed)?;
        entries.insert((topic.to_owned(), partition), offset);
        found += 1;
    }
    if found != count {
        return Err(bad(
            0,
            format!("checkpoint holds {found} entries, but its count line says {count}"),
        ));
    }
    Ok(entries)
}

/// Reads a data-directory checkpoint; `Ok(None)` if the file does not exist.
///
/// # Errors
/// As [`parse_topic_partition_offsets`]; [`Error::Io`] if it cannot be read.
pub fn read_topic_partition_offsets(path: &Path) -> Result<Option<TopicPartitionOffsets>> {
    match fs::read(path) {
        Ok(text) => parse_topic_partition_offsets(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "read", e)),
    }
}

/// Writes a data-directory checkpoint atomically (as [`write_atomically`]), in Kafka's layout
/// ([`format_topic_partition_offsets`]).
///
/// # Errors
/// As [`write_atomically`].
pub fn write_topic_partition_offsets(path: &Path, entries: &TopicPartitionOffsets) -> Result<()> {
    write_atomically(path, &format_topic_partition_offsets(entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_checkpoint_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("recovery-point-offset-checkpoint");
        assert_eq!(read_offset(&p).unwrap(), None);
        write_offset(&p, 42).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "0\n1\n0000000000000000042\n",
            "zero-padded: in-place rewrites never change the size"
        );
        assert_eq!(read_offset(&p).unwrap(), Some(42));
        assert!(!dir
            .path()
            .join("recovery-point-offset-checkpoint.tmp")
            .exists());
        for bad in [
            "",
            "0\n",
            "1\n1\n5\n",
            "0\n2\n5\n",
            "0\n1\n-3\n",
            "0\n1\nx\n",
            "0\n1\n5\n6\n",
            "\u{0}\u{0}",
        ] {
            fs::write(&p, bad).unwrap();
            assert!(
                matches!(read_offset(&p), Err(Error::Corrupt { .. })),
                "{bad:?}"
            );
        }
    }
}
