//! Walking a segment's bytes batch by batch: what recovery and index rebuilds stand on. The scan
//! returns facts (how many bytes are valid, the index entries, where and why it stopped); the
//! caller decides what to cut.

use bytes::Bytes;

use crate::batch::{self, BatchHeader, RecordBatch, HEADER_SIZE, LOG_OVERHEAD};
use crate::index::{OffsetEntry, TimeEntry};

/// "No timestamp", as Kafka writes it.
pub const NO_TIMESTAMP: i64 = -1;

/// Decides which batches get sparse index entries, exactly as appends do (one mechanism for
/// both live appends and rebuilds): an offset entry once more than `interval` bytes were written
/// since the last one, and with it a time entry if the largest timestamp grew. As Kafka writes
/// them (`LogSegment.append`), an offset entry names its batch by the batch's last offset, and a
/// time entry the last offset of the batch that reached the timestamp.
#[derive(Debug, Clone)]
pub(crate) struct Indexer {
    base_offset: i64,
    interval: u64,
    bytes_since_last_entry: u64,
    /// Largest batch max-timestamp seen in the segment, or [`NO_TIMESTAMP`].
    pub(crate) max_timestamp: i64,
    /// Last offset of the batch that first reached `max_timestamp` (Kafka's
    /// `shallowOffsetOfMaxTimestampSoFar`).
    pub(crate) offset_of_max_timestamp: i64,
    /// Timestamp of the last time-index entry written (entries must grow).
    last_time_entry: i64,
}

/// Index entries to write for one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NewEntries {
    pub(crate) offset: Option<OffsetEntry>,
    pub(crate) time: Option<TimeEntry>,
}

impl Indexer {
    pub(crate) fn new(base_offset: i64, interval: u32) -> Self {
        Indexer {
            base_offset,
            interval: u64::from(interval),
            bytes_since_last_entry: 0,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            last_time_entry: NO_TIMESTAMP,
        }
    }

    /// Resumes indexing a segment whose indexes already end with the given entries and whose
    /// log holds `log_size` bytes.
    pub(crate) fn resume(
        base_offset: i64,
        interval: u32,
        last_offset_entry: Option<OffsetEntry>,
        last_time_entry: Option<TimeEntry>,
        log_size: u64,
    ) -> Self {
        let mut ix = Indexer::new(base_offset, interval);
        let indexed_position = last_offset_entry.map_or(0, |e| e.position as u64);
        ix.bytes_since_last_entry = log_size.saturating_sub(indexed_position);
        if let Some(t) = last_time_entry {
            ix.max_timestamp = t.timestamp;
            ix.offset_of_max_timestamp = base_offset + i64::from(t.relative_offset);
            ix.last_time_entry = t.timestamp;
        }
        ix
    }

    fn relative(&self, offset: i64) -> i32 {
        // The roll rule keeps every offset of a segment within i32 of its base.
        i32::try_from(offset - self.base_offset).unwrap_or(i32::MAX)
    }

    /// Notes that a batch with `header` was written at `position`, and says which index entries
    /// to add for it.
    pub(crate) fn on_batch(&mut self, header: &BatchHeader, position: u64) -> NewEntries {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        let mut out = NewEntries::default();
        if self.bytes_since_last_entry > self.interval {
            out.offset = Some(OffsetEntry {
                relative_offset: self.relative(header.last_offset()),
                position: i32::try_from(position).unwrap_or(i32::MAX),
            });
            out.time = self.time_entry();
            self.bytes_since_last_entry = 0;
        }
        self.bytes_since_last_entry += header.total_size() as u64;
        out
    }

    /// The time entry to add now, if the largest timestamp grew since the last entry; marks it
    /// written.
    pub(crate) fn time_entry(&mut self) -> Option<TimeEntry> {
        if self.max_timestamp > self.last_time_entry {
            self.last_time_entry = self.max_timestamp;
            Some(TimeEntry {
                timestamp: self.max_timestamp,
                relative_offset: self.relative(self.offset_of_max_timestamp),
            })
        } else {
            None
        }
    }
}

/// How thoroughly each batch is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Validation {
    /// Header, CRC and every record's framing (recovery).
    Full,
    /// Header and CRC.
    Crc,
    /// Header only (a clean segment's tail, which was validated when written).
    Header,
}

/// How far past a bad batch the scan looks for non-zero bytes before calling the rest
/// preallocated space. Bounded so that a crash in a 1 GiB preallocated segment does not make
/// recovery read (and fault in) every page of its sparse tail.
const ZERO_TAIL_WINDOW: usize = 64 * 1024;

/// Why a scan stopped before the end of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanStop {
    /// Byte position of the first bad batch.
    pub(crate) position: u64,
    /// What was wrong with it.
    pub(crate) reason: String,
    /// The bytes from `position` on are zero (as far as `ZERO_TAIL_WINDOW` reaches):
    /// preallocated space, not damage.
    pub(crate) zero_tail: bool,
}

/// What a scan found.
#[derive(Debug, Clone)]
pub(crate) struct ScanOutcome {
    /// Bytes of whole valid batches from the scan's start position.
    pub(crate) valid_end: u64,
    /// Offset after the last valid batch, if any batch was valid.
    pub(crate) next_offset: Option<i64>,
    /// Number of valid batches.
    pub(crate) batches: u64,
    /// Max timestamp of the first batch of the segment (for time-based rolling).
    pub(crate) first_batch_timestamp: Option<i64>,
    /// Index entries for the valid batches.
    pub(crate) offset_entries: Vec<OffsetEntry>,
    /// Time index entries for the valid batches.
    pub(crate) time_entries: Vec<TimeEntry>,
    /// The indexing state after the last valid batch.
    pub(crate) indexer: Indexer,
    /// Set when the scan stopped at a bad batch rather than at the end of the bytes.
    pub(crate) stop: Option<ScanStop>,
}

/// What a scan expects of the batches it walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The offset the first batch scanned must start at.
    pub(crate) first_offset: i64,
    /// No batch may hold this offset or a later one (the next segment's base offset).
    pub(crate) end_offset: i64,
    /// Batches ending at or below this offset (flushed data) get a header check only.
    pub(crate) trusted_below: i64,
}

impl Bounds {
    /// From `first_offset`, unbounded above, every batch checked in full.
    pub(crate) fn from(first_offset: i64) -> Self {
        Bounds {
            first_offset,
            end_offset: i64::MAX,
            trusted_below: i64::MIN,
        }
    }
}

impl ScanOutcome {
    /// Writes the index files of an inactive segment from this scan (with the final time
    /// entry a rolled segment carries); returns the segment's largest timestamp.
    pub(crate) fn write_indexes(
        mut self,
        paths: &super::SegmentPaths,
    ) -> crate::error::Result<i64> {
        self.time_entries.extend(self.indexer.time_entry());
        crate::index::write_index_file(&paths.index, &self.offset_entries)?;
        crate::index::write_index_file(&paths.time_index, &self.time_entries)?;
        Ok(self.indexer.max_timestamp)
    }
}

/// Scans the batches in `data[start..]` of a segment with base offset `base_offset`.
///
/// Offsets only grow: the first batch scanned must start at or above `bounds.first_offset`,
/// each next one at or above the offset after the previous one, all below `bounds.end_offset`
/// and within i32 of the base offset. A batch starting ABOVE the expected offset leaves an
/// offset gap, which is legal (Kafka's logs have them: a compacted leader's copy, `truncateTo`
/// inside a batch); one starting BELOW it (an overlap) is damage, as Kafka's recovery calls it.
/// partlog's own appends leave no gaps, but a gap is not how its own damage shows: a lost
/// batch in the middle of a file shows as zeros or a torn length, not as a clean batch further
/// on. The scan stops at the first batch that fails; a trailing run of zero bytes is reported
/// as such.
pub(crate) fn scan(
    data: &Bytes,
    start: u64,
    base_offset: i64,
    bounds: Bounds,
    mut indexer: Indexer,
    validation: Validation,
) -> ScanOutcome {
    let mut out = ScanOutcome {
        valid_end: start,
        next_offset: None,
        batches: 0,
        first_batch_timestamp: None,
        offset_entries: Vec::new(),
        time_entries: Vec::new(),
        indexer: indexer.clone(),
        stop: None,
    };
    let initial_indexer = indexer.clone();
    let mut pos = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
    let mut expected = bounds.first_offset;
    // The last batch accepted on a header check alone, if it was: (position, header).
    let mut last_trusted: Option<(usize, BatchHeader)> = None;
    while pos < data.len() {
        match check_batch(data, pos, base_offset, expected, bounds, validation) {
            Ok(header) => {
                last_trusted =
                    (header.next_offset() <= bounds.trusted_below).then_some((pos, header));
                if out.batches == 0 && pos == 0 {
                    out.first_batch_timestamp = Some(header.max_timestamp);
                }
                let entries = indexer.on_batch(&header, pos as u64);
                out.offset_entries.extend(entries.offset);
                out.time_entries.extend(entries.time);
                pos += header.total_size();
                expected = header.next_offset();
                out.next_offset = Some(header.next_offset());
                out.batches += 1;
                out.valid_end = pos as u64;
            }
            Err(reason) => {
                // A batch taken on its header alone may be what derailed the walk (a rotted
                // length or offset delta): if its CRC fails, the damage starts there.
                if let Some((at, h)) = last_trusted {
                    let bytes = data.slice(at..at + h.total_size());
                    if RecordBatch::parse_crc_only(bytes).is_err() {
                        let bounds = Bounds {
                            trusted_below: h.base_offset,
                            ..bounds
                        };
                        return scan(
                            data,
                            start,
                            base_offset,
                            bounds,
                            initial_indexer,
                            validation,
                        );
                    }
                }
                let window = &data[pos..data.len().min(pos + ZERO_TAIL_WINDOW)];
                let zero_tail = window.iter().all(|&b| b == 0);
                out.stop = Some(ScanStop {
                    position: pos as u64,
                    reason,
                    zero_tail,
                });
                break;
            }
        }
    }
    out.indexer = indexer;
    out
}

/// Checks the batch at `data[pos..]`, which must start at or above offset `expected` and stay
/// within `bounds`; returns its header.
fn check_batch(
    data: &Bytes,
    pos: usize,
    base_offset: i64,
    expected: i64,
    bounds: Bounds,
    validation: Validation,
) -> Result<BatchHeader, String> {
    let rest = &data[pos..];
    if rest.len() < LOG_OVERHEAD {
        return Err(format!(
            "torn batch: {} bytes left, a batch needs at least {HEADER_SIZE}",
            rest.len()
        ));
    }
    let header = BatchHeader::parse(rest).map_err(|e| e.to_string())?;
    let size = header.total_size();
    if size > rest.len() {
        return Err(format!(
            "torn batch: declares {size} bytes, {} left in the file",
            rest.len()
        ));
    }
    if header.base_offset < expected {
        return Err(format!(
            "batch base offset {} below offset {expected}, where the previous batch ended (or the segment begins)",
            header.base_offset
        ));
    }
    if header.base_offset > expected
        && super::overlap_follows(data, pos, size, header.next_offset())
    {
        return Err(format!(
            "batch base offset {} leaves a gap after offset {expected} and the next batch starts below its end \
             (a base offset rotted upwards)",
            header.base_offset
        ));
    }
    if header.next_offset() > bounds.end_offset {
        return Err(format!(
            "batch runs to offset {}, past the next segment's base offset {}",
            header.last_offset(),
            bounds.end_offset
        ));
    }
    if header.last_offset() - base_offset > i64::from(i32::MAX) {
        return Err(format!(
            "batch last offset {} does not fit the segment based at {base_offset}",
            header.last_offset()
        ));
    }
    let bytes = data.slice(pos..pos + size);
    let validation = if header.next_offset() <= bounds.trusted_below {
        Validation::Header
    } else {
        validation
    };
    let parsed = match validation {
        Validation::Full => RecordBatch::parse(bytes).map(|_| ()),
        Validation::Crc => RecordBatch::parse_crc_only(bytes).map(|_| ()),
        Validation::Header => Ok(()),
    };
    parsed.map_err(|e| e.to_string())?;
    Ok(header)
}

/// Reads only the frame and header at `pos` (no CRC), for walking a clean segment.
pub(crate) fn peek_header(data: &[u8], pos: usize) -> Option<BatchHeader> {
    let rest = data.get(pos..)?;
    batch::peek_frame(rest)?;
    let h = BatchHeader::parse(rest).ok()?;
    (h.total_size() <= rest.len()).then_some(h)
}
