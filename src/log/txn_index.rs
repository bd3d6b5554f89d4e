//! The aborted-transaction index: one `.txnindex` file per segment, in Kafka's layout (its
//! `TransactionIndex` and `AbortedTxn`), and the log's in-memory copy of every entry.
//!
//! # File layout (`<20-digit segment base offset>.txnindex`, big-endian, no header, no checksum)
//! 34-byte entries: `version: i16 = 0, producer_id: i64, first_offset: i64, last_offset: i64,
//! last_stable_offset: i64`. One entry per **aborted, non-empty** transaction, written into the
//! file of the segment that holds its ABORT marker (`last_offset`); `first_offset` is the
//! transaction's first offset (possibly in an earlier segment) and `last_stable_offset` the
//! first offset of the earliest transaction of another producer still open when the marker was
//! appended, else the marker's offset + 1. Within a file `last_offset` increases. As Kafka's
//! reader does, a trailing partial entry is ignored and a version byte above 0 is refused.
//!
//! # Invariants
//! - The files are created lazily (most segments have none), appended to and fsynced with each
//!   entry, and the directory synced when one is created (aborts are rare), so every entry below the offset of any snapshot the log may load
//!   is durable; recovery drops the entries at or above the offset its replay starts from and
//!   writes them again from the replayed markers.
//! - The in-memory entries and the files agree whenever the writer lock is free.

use crate::fs::{self, OpenOptions};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint;
use crate::error::{Error, Result};

/// File name suffix of a segment's aborted-transaction index.
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Bytes per entry.
pub const TXN_ENTRY_SIZE: usize = 34;
/// The only entry version.
const VERSION: i16 = 0;

/// One aborted transaction, as a `.txnindex` entry holds it (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AbortedTxn {
    /// The producer whose transaction was aborted.
    pub producer_id: i64,
    /// The transaction's first offset.
    pub first_offset: i64,
    /// The offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset when the marker was appended (see the module docs).
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// An entry.
    pub fn new(
        producer_id: i64,
        first_offset: i64,
        last_offset: i64,
        last_stable_offset: i64,
    ) -> Self {
        AbortedTxn {
            producer_id,
            first_offset,
            last_offset,
            last_stable_offset,
        }
    }

    /// The entry's 34 bytes.
    pub fn to_bytes(&self) -> [u8; TXN_ENTRY_SIZE] {
        let mut b = [0; TXN_ENTRY_SIZE];
        b[0..2].copy_from_slice(&VERSION.to_be_bytes());
        b[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        b[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        b[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        b[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        b
    }

    /// What a fetch response carries of it.
    pub fn as_aborted_transaction(&self) -> AbortedTransaction {
        AbortedTransaction {
            producer_id: self.producer_id,
            first_offset: self.first_offset,
        }
    }
}

/// An aborted transaction as a `read_committed` fetch returns it (Kafka's FetchResponse v4+
/// `AbortedTransactions` entry): a reader drops the records of `producer_id`'s transactional
/// batches from `first_offset` up to that producer's next ABORT marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct AbortedTransaction {
    /// The producer.
    pub producer_id: i64,
    /// The first offset of its aborted transaction.
    pub first_offset: i64,
}

impl AbortedTransaction {
    /// An entry.
    pub fn new(producer_id: i64, first_offset: i64) -> Self {
        AbortedTransaction {
            producer_id,
            first_offset,
        }
    }
}

/// Isolation level of a read (Kafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// Everything up to the bound asked for (Kafka's default): open and aborted transactions'
    /// records included.
    #[default]
    ReadUncommitted,
    /// Only up to the last stable offset, with the aborted transactions of the range, so a
    /// reader can drop their records.
    ReadCommitted,
}

/// What a `read_committed` reader keeps of the batches of one fetch (Kafka's consumer,
/// `CompletedFetch.nextFetchedRecord`): control batches never (in either isolation level they
/// are not records to deliver), and a transactional batch of a producer whose aborted
/// transaction the fetch listed, from that transaction's first offset up to the producer's
/// ABORT marker, neither.
///
/// ```
/// use partlog::batch::{BatchBuilder, EndTxnMarker, SimpleRecord, TxnResult};
/// use partlog::log::{AbortedTransaction, ReadCommittedFilter};
///
/// let mut b = BatchBuilder::new().producer(7, 0, 0).transactional(true);
/// b.push(&SimpleRecord::new(1, Some("k"), Some("v")))?;
/// let data = b.build()?;
/// let abort = EndTxnMarker::new(TxnResult::Abort, 0).build_batch(7, 0, 2)?;
/// let mut filter = ReadCommittedFilter::new(&[AbortedTransaction::new(7, 0)]);
/// assert!(!filter.keep(&data)?);
/// assert!(!filter.keep(&abort)?);
/// # Ok::<(), partlog::batch::BatchError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ReadCommittedFilter {
    /// Aborted transactions not reached yet, latest first (popped from the end).
    pending: Vec<AbortedTransaction>,
    /// Producers inside an aborted transaction at the current batch.
    aborted: std::collections::HashSet<i64>,
}

impl ReadCommittedFilter {
    /// A filter for a fetch that returned `aborted`.
    pub fn new(aborted: &[AbortedTransaction]) -> Self {
        let mut pending = aborted.to_vec();
        pending.sort_by_key(|a| std::cmp::Reverse(a.first_offset));
        ReadCommittedFilter {
            pending,
            aborted: Default::default(),
        }
    }

    /// Whether `batch`'s records are delivered; call for each batch of the fetch in order.
    ///
    /// # Errors
    /// As [`RecordBatch::end_txn_marker`](crate::batch::RecordBatch::end_txn_marker) for a
    /// control batch of a producer.
    pub fn keep(
        &mut self,
        batch: &crate::batch::RecordBatch,
    ) -> std::result::Result<bool, crate::batch::BatchError> {
        let h = batch.header();
        if h.producer_id >= 0 {
            while self
                .pending
                .last()
                .is_some_and(|a| a.first_offset <= h.last_offset())
            {
                if let Some(a) = self.pending.pop() {
                    self.aborted.insert(a.producer_id);
                }
            }
            if h.is_control() {
                if batch
                    .end_txn_marker()?
                    .is_some_and(|m| m.result == crate::batch::TxnResult::Abort)
                {
                    self.aborted.remove(&h.producer_id);
                }
                return Ok(false);
            }
            if h.is_transactional() && self.aborted.contains(&h.producer_id) {
                return Ok(false);
            }
        }
        Ok(!h.is_control())
    }
}

/// Parses the bytes of a `.txnindex` file (see the module docs).
///
/// # Errors
/// [`Error::Corrupt`] naming `path` and the entry's position for a version above 0 (Kafka's
/// reader refuses it).
pub fn parse_txn_index(bytes: &[u8], path: &Path) -> Result<Vec<AbortedTxn>> {
    let mut out = Vec::with_capacity(bytes.len() / TXN_ENTRY_SIZE);
    for (i, e) in bytes.chunks_exact(TXN_ENTRY_SIZE).enumerate() {
        let i64_at = |p: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(&e[p..p + 8]);
            i64::from_be_bytes(b)
        };
        // Kafka reads the version from the entry's first byte only.
        if e[0] as i8 > 0 {
            return Err(Error::corrupt(
                path,
                (i * TXN_ENTRY_SIZE) as u64,
                format!("aborted-transaction entry of version {}", e[0]),
            ));
        }
        out.push(AbortedTxn::new(
            i64_at(2),
            i64_at(10),
            i64_at(18),
            i64_at(26),
        ));
    }
    Ok(out)
}

/// Reads a `.txnindex` file; an absent file holds no entry.
///
/// # Errors
/// As [`parse_txn_index`]; [`Error::Io`] if the file cannot be read.
pub fn read_txn_index(path: &Path) -> Result<Vec<AbortedTxn>> {
    match fs::read(path) {
        Ok(bytes) => parse_txn_index(&bytes, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(path, "read", e)),
    }
}

/// Path of the `.txnindex` of the segment based at `base_offset` in `dir`.
pub fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(crate::segment::file_name(base_offset, TXN_INDEX_SUFFIX))
}

/// The entries of every segment's `.txnindex`, by segment base offset (segments with none are
/// absent).
#[derive(Debug, Default)]
pub(super) struct TxnIndexes {
    segments: BTreeMap<i64, Vec<AbortedTxn>>,
}

impl TxnIndexes {
    /// Reads the `.txnindex` files of the segments based at `bases`; files of other segments
    /// are removed. Returns the indexes and whether some file was damaged (it is then dropped,
    /// and the caller must rebuild every entry from a full replay).
    pub(super) fn load(files: Vec<(i64, PathBuf)>, bases: &[i64]) -> Result<(TxnIndexes, bool)> {
        let mut segments = BTreeMap::new();
        let mut damaged = false;
        for (base, path) in files {
            if bases.binary_search(&base).is_err() {
                checkpoint::remove_if_exists(&path)?;
                continue;
            }
            // Kafka's sanity check: an entry below its segment is a damaged index.
            match read_txn_index(&path) {
                Ok(e) if e.iter().all(|t| t.last_offset >= base) => {
                    let torn = fs::metadata(&path)
                        .map_err(|err| Error::io(&path, "stat", err))?
                        .len()
                        % TXN_ENTRY_SIZE as u64
                        != 0;
                    if e.is_empty() {
                        checkpoint::remove_if_exists(&path)?;
                    } else {
                        if torn {
                            // A torn last entry (a crash while appending) goes, so the next
                            // entry is appended at an entry boundary.
                            let bytes: Vec<u8> = e.iter().flat_map(|t| t.to_bytes()).collect();
                            checkpoint::write_atomically(&path, &bytes)?;
                        }
                        segments.insert(base, e);
                    }
                }
                _ => {
                    damaged = true;
                    checkpoint::remove_if_exists(&path)?;
                }
            }
        }
        Ok((TxnIndexes { segments }, damaged))
    }

    /// Appends `entries` to the index of the segment based at `base`, durably.
    pub(super) fn append(&mut self, dir: &Path, base: i64, entries: &[AbortedTxn]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let path = txn_index_path(dir, base);
        let mut bytes = Vec::with_capacity(entries.len() * TXN_ENTRY_SIZE);
        for e in entries {
            bytes.extend_from_slice(&e.to_bytes());
        }
        let existed = fs::exists(&path);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, "open", e))?;
        if !existed {
            crate::durability::created(&path);
        }
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&path, "write", e))?;
        crate::durability::file_synced(&path);
        if !existed {
            // The new name too: without it a power cut could keep a later snapshot (which
            // trusts this entry) and lose the file (the power-loss harness, seed 1436).
            checkpoint::sync_dir(dir)?;
        }
        self.segments
            .entry(base)
            .or_default()
            .extend_from_slice(entries);
        Ok(())
    }

    /// Drops the entries whose marker is at or above `offset` (Kafka's
    /// `TransactionIndex.truncateTo`), rewriting or removing the files that held them.
    pub(super) fn truncate_from(&mut self, dir: &Path, offset: i64) -> Result<()> {
        let touched: Vec<i64> = self
            .segments
            .iter()
            .filter(|(_, e)| e.last().is_some_and(|t| t.last_offset >= offset))
            .map(|(&b, _)| b)
            .collect();
        for base in touched {
            let path = txn_index_path(dir, base);
            let entries = self.segments.entry(base).or_default();
            entries.retain(|t| t.last_offset < offset);
            if entries.is_empty() {
                self.segments.remove(&base);
                checkpoint::remove_if_exists(&path)?;
            } else {
                let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_bytes()).collect();
                checkpoint::write_atomically(&path, &bytes)?;
            }
        }
        Ok(())
    }

    /// Removes the indexes of the segments based below `base` (retention, delete-records).
    pub(super) fn remove_below(&mut self, dir: &Path, base: i64) -> Result<()> {
        for b in self.forget_below(base) {
            checkpoint::remove_if_exists(&txn_index_path(dir, b))?;
        }
        Ok(())
    }

    /// Forgets the indexes of segments below `base`; returns their files (left under their
    /// names: see `Log::remove_due_files`), with the segments' base offsets.
    pub(super) fn forget_files_below(
        &mut self,
        dir: &Path,
        base: i64,
    ) -> Vec<(i64, std::path::PathBuf)> {
        self.forget_below(base)
            .into_iter()
            .map(|b| (b, txn_index_path(dir, b)))
            .collect()
    }

    /// Forgets the indexes of segments based below `base`; returns those bases.
    fn forget_below(&mut self, base: i64) -> Vec<i64> {
        let kept = self.segments.split_off(&base);
        std::mem::replace(&mut self.segments, kept)
            .into_keys()
            .collect()
    }

    /// Removes every index (a full truncation).
    pub(super) fn remove_all(&mut self, dir: &Path) -> Result<()> {
        self.remove_below(dir, i64::MAX)
    }

    /// The aborted transactions a read of `[from, upper)` must return (Kafka's
    /// `collectAbortedTxns` over the segments from the one holding `from`): entries whose marker
    /// is at or after `from` and whose transaction starts below `upper`, up to the first entry
    /// whose last stable offset reaches `upper` (no transaction open before `upper` ends later).
    pub(super) fn collect(
        &self,
        segment_base: i64,
        from: i64,
        upper: i64,
    ) -> Vec<AbortedTransaction> {
        let mut out = Vec::new();
        for entries in self.segments.range(segment_base..).map(|(_, e)| e) {
            for e in entries {
                if e.last_offset >= from && e.first_offset < upper {
                    out.push(e.as_aborted_transaction());
                }
                if e.last_stable_offset >= upper {
                    return out;
                }
            }
        }
        out
    }

    /// Every entry, by segment base offset.
    pub(super) fn all(&self) -> &BTreeMap<i64, Vec<AbortedTxn>> {
        &self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bytes_are_kafkas_layout() {
        let b = AbortedTxn::new(0x0102, 7, 9, 10).to_bytes();
        let mut want = vec![0u8, 0];
        want.extend_from_slice(&0x0102i64.to_be_bytes());
        want.extend_from_slice(&7i64.to_be_bytes());
        want.extend_from_slice(&9i64.to_be_bytes());
        want.extend_from_slice(&10i64.to_be_bytes());
        assert_eq!(&b[..], &want[..]);
        let mut with_tail = want.clone();
        with_tail.extend_from_slice(&[0; 20]);
        let parsed = parse_txn_index(&with_tail, Path::new("x")).unwrap();
        assert_eq!(parsed, vec![AbortedTxn::new(0x0102, 7, 9, 10)]);
        want[0] = 1;
        assert!(parse_txn_index(&want, Path::new("x")).is_err());
    }
}
