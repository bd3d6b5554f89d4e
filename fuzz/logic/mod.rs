//! The logic of partlog's fuzz targets, shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`)
//! and the stable replay test (`tests/fuzz_corpus.rs`), which both include this directory with
//! `#[path = ".../fuzz/logic/mod.rs"] mod logic;`.
//!
//! Each target is a `run(data: &[u8])` function that panics (an assertion) when partlog
//! misbehaves, and returns normally for every input that partlog handles correctly, including
//! inputs it rightly rejects with a typed error. See each module for what it asserts.
#![allow(dead_code)]

pub mod batch_decode;
pub mod compressed_batch;
pub mod index_load;
pub mod log_ops;
pub mod model;
pub mod segment_recover;

use bytes::Bytes;
use partlog::batch::{Record, RecordBatch};
/// The files the targets write themselves go through partlog's storage seam: `std::fs` in the
/// stable replay test, memory under the fuzzer (see [`tempdir`]).
pub use partlog::fs;

/// Reads structured values off the fuzzer's bytes; past the end every read returns zeros, so
/// any input decodes to something.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// True once every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The next byte, or 0.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// The next four bytes, big-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// The next eight bytes, big-endian.
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// A value in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        if n <= 256 {
            u64::from(self.u8()) % n
        } else if n <= 65536 {
            u64::from(self.u16()) % n
        } else {
            self.u64() % n
        }
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        self.take(self.data.len())
    }
}

/// Header fields of a v2 batch, written by [`write_header`]: an encoder independent of
/// partlog's, straight from the format table, used to make batches partlog's builder cannot
/// (compressed ones, control ones, gaps in offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHeader {
    pub base_offset: i64,
    pub partition_leader_epoch: i32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

/// A whole batch: `header` then `body`, with `batchLength` and the CRC-32C filled in.
pub fn write_batch(h: &RawHeader, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(61 + body.len());
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    let batch_length = i32::try_from(49 + body.len()).unwrap_or(i32::MAX);
    out.extend_from_slice(&batch_length.to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&h.attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&h.base_timestamp.to_be_bytes());
    out.extend_from_slice(&h.max_timestamp.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&h.record_count.to_be_bytes());
    out.extend_from_slice(body);
    fix_crc(&mut out);
    out
}

/// Recomputes the CRC-32C of a batch in place (bytes 21.. into bytes 17..21).
pub fn fix_crc(batch: &mut [u8]) {
    if batch.len() >= 21 {
        let crc = crc32c(&batch[21..]);
        batch[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

/// CRC-32C (Castagnoli), bitwise: slow, but independent of the `crc32c` crate partlog uses.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

/// Zigzag varint, as Kafka writes it.
pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut raw = ((v << 1) ^ (v >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// What of a record survives a round trip through the builder: timestamp, key, value, headers.
pub type Content = (
    i64,
    Option<Bytes>,
    Option<Bytes>,
    Vec<(Bytes, Option<Bytes>)>,
);

/// The fields of a record that survive a round trip through the builder (not its offset, not
/// its attributes byte).
pub fn record_content(r: &Record) -> Content {
    (
        r.timestamp,
        r.key.clone(),
        r.value.clone(),
        r.headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect(),
    )
}

/// All records of a batch that `RecordBatch::parse` accepted: they must decode.
pub fn records_of(batch: &RecordBatch) -> Vec<Record> {
    batch
        .records()
        .expect("an uncompressed batch has a record iterator")
        .map(|r| r.expect("a batch accepted by parse yields no record error"))
        .collect()
}

/// The files of a directory (name → bytes), without the lock file.
pub fn snapshot_dir(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .expect("list the log directory")
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            if name == partlog::log::LOCK_FILE || !e.file_type().ok()?.is_file() {
                return None;
            }
            Some((name, fs::read(e.path()).ok()?))
        })
        .collect();
    files.sort();
    files
}

/// Writes the files of a snapshot into `dir`.
pub fn restore_dir(dir: &std::path::Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).expect("write a log file");
    }
}

/// A temporary directory. Under the fuzzer (`cfg(fuzzing)`, which cargo-fuzz passes to every
/// crate, partlog included) an in-memory one, in the in-memory file system partlog's storage
/// seam (`partlog::fs`) then is.
#[cfg(fuzzing)]
pub fn tempdir() -> TempDir {
    partlog::fs::MemTempDir::new()
}

/// What [`tempdir`] makes.
#[cfg(fuzzing)]
pub type TempDir = partlog::fs::MemTempDir;

/// What [`tempdir`] makes.
#[cfg(not(fuzzing))]
pub type TempDir = tempfile::TempDir;

/// A temporary directory (the stable replay test: real files), on tmpfs when there is one: the
/// targets open, sync and close logs on every input, and fsync on tmpfs costs nothing.
/// `PARTLOG_FUZZ_DIR` names another parent (a disk, say).
#[cfg(not(fuzzing))]
pub fn tempdir() -> TempDir {
    if let Some(parent) = std::env::var_os("PARTLOG_FUZZ_DIR") {
        return tempfile::Builder::new()
            .prefix("partlog-fuzz-")
            .tempdir_in(parent)
            .expect("tempdir in PARTLOG_FUZZ_DIR");
    }
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("partlog-fuzz-")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().expect("tempdir")
}
