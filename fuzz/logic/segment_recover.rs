//! `segment_recover`: arbitrary bytes as a segment file, opened after a crash.
//!
//! The first input byte picks the layout: bit 0 clear, the rest of the input is the only segment
//! (`00000000000000000000.log`); set, it is a second segment after a valid one (three batches,
//! offsets 0..6), named by the offset after it. Bit 1 adds a recovery-point checkpoint at the
//! start of the fuzzed segment (otherwise there is none: everything is recovered). Bit 2 appends
//! zeros after the input (preallocated space left by a crash). Bit 3 recomputes the CRC of each
//! batch framed by its `batchLength` (so mutations reach the record checks). There is never a clean-shutdown
//! marker, and there are no index files.
//!
//! Asserts: the open never panics; when it fails, the error is typed (any `partlog::Error`) and
//! is written down. When it succeeds, the log holds exactly the valid prefix of the file as
//! recovery defines it (checked independently here: whole batches that `RecordBatch::parse`
//! accepts, the first starting at or above the segment's base offset and each next one at or
//! above the offset after the previous one (offset gaps are kept, except a gap right before a
//! batch that goes back below the gapped batch's end: that batch's base offset rotted upwards),
//! last offsets within i32 of the segment's base), every read from the log start offset to the
//! end returns those batches byte for byte and each passes `RecordBatch::parse`, time lookups
//! agree with the brute force; then appending records continues at the recovered end, they
//! read back, and after a clean close and reopen, then a crash and reopen, the content is the
//! same.

use bytes::Bytes;
use partlog::batch::{BatchHeader, RecordBatch, SimpleRecord};
use partlog::segment::SegmentPaths;
use partlog::{Config, Log};

use super::model::{check_log, MBatch};

/// A small config: segments of 4 KiB (the fuzzed file may be larger), dense indexes.
pub fn config() -> Config {
    Config {
        segment_bytes: 4096,
        segment_index_bytes: 1024,
        index_interval_bytes: 64,
        max_batch_bytes: 4096,
        ..Config::default()
    }
}

/// The valid segment before the fuzzed one (layout bit 0): its bytes and batches.
fn first_segment() -> (Vec<u8>, Vec<MBatch>) {
    let mut bytes = Vec::new();
    let mut batches = Vec::new();
    let mut base = 0;
    for i in 0..3i64 {
        let mut b = partlog::batch::BatchBuilder::new().base_offset(base);
        for j in 0..2i64 {
            b.push(&SimpleRecord::new(
                1_000 + i * 10 + j,
                Some(format!("k{i}{j}")),
                Some(format!("first segment {i} {j}")),
            ))
            .expect("push");
        }
        let batch = b.build().expect("build");
        base = batch.next_offset();
        bytes.extend_from_slice(batch.as_bytes());
        batches.push(MBatch::from_bytes(batch.into_bytes()));
    }
    (bytes, batches)
}

/// The batches recovery must keep from `data`, a segment based at `base`, whose first batch
/// must start at or above `min_offset`.
pub fn expected_prefix(data: &[u8], base: i64, min_offset: i64) -> Vec<MBatch> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut min = min_offset;
    while data.len() - pos >= 61 {
        let rest = &data[pos..];
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let Ok(len) = usize::try_from(len) else { break };
        let Some(size) = len.checked_add(12).filter(|&s| s <= rest.len()) else {
            break;
        };
        let Ok(batch) = RecordBatch::parse(Bytes::copy_from_slice(&rest[..size])) else {
            break;
        };
        // Offsets grow: each batch starts at or above the offset after the previous one (the
        // first at or above the segment's base offset). Above it is an offset gap, which
        // recovery keeps (as Kafka's does); below it is damage.
        if batch.base_offset() < min || batch.last_offset() - base > i64::from(i32::MAX) {
            break;
        }
        // A batch above the expected offset whose successor (a whole, well-formed header)
        // starts below its end: offsets go backwards right after a gap, so this batch's base
        // offset (outside the CRC) rotted upwards, and recovery cuts here, not one batch later.
        let after = &rest[size..];
        let overlap_follows = BatchHeader::parse(after)
            .is_ok_and(|h| h.total_size() <= after.len() && h.base_offset < batch.next_offset());
        if batch.base_offset() > min && overlap_follows {
            break;
        }
        min = batch.next_offset();
        pos += size;
        out.push(MBatch::from_bytes(batch.into_bytes()));
    }
    out
}

/// Recomputes the CRC of every batch whose frame fits in the file, walking by `batchLength`, so
/// that mutations reach the record checks of recovery rather than stopping at the CRC.
fn fix_up(file: &mut [u8]) {
    let mut pos = 0usize;
    while file.len() - pos >= 61 {
        let len =
            i32::from_be_bytes([file[pos + 8], file[pos + 9], file[pos + 10], file[pos + 11]]);
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(12 + pos))
            .filter(|&e| e <= file.len() && e >= pos + 61)
        else {
            break;
        };
        super::fix_crc(&mut file[pos..end]);
        pos = end;
    }
}

/// Runs the target on one input.
pub fn run(data: &[u8]) {
    let Some((&layout, payload)) = data.split_first() else {
        return;
    };
    let second = layout & 1 != 0;
    let checkpoint = layout & 2 != 0;
    let zero_tail = layout & 4 != 0;
    let fix_crcs = layout & 8 != 0;

    let dir = super::tempdir();
    let (mut model, fuzz_base) = if second {
        let (bytes, batches) = first_segment();
        super::fs::write(SegmentPaths::new(dir.path(), 0).log, bytes).expect("write");
        let next = batches.last().map_or(0, MBatch::next);
        (batches, next)
    } else {
        (Vec::new(), 0)
    };
    let mut file = payload.to_vec();
    if fix_crcs {
        fix_up(&mut file);
    }
    if zero_tail {
        file.resize(file.len() + 512, 0);
    }
    super::fs::write(SegmentPaths::new(dir.path(), fuzz_base).log, &file).expect("write");
    if checkpoint {
        super::fs::write(
            dir.path().join(partlog::log::RECOVERY_POINT_FILE),
            format!("0\n1\n{fuzz_base}\n"),
        )
        .expect("write checkpoint");
    }

    let log = match Log::open(dir.path(), config()) {
        Ok(log) => log,
        Err(e) => {
            // A typed error is an acceptable answer; the replay test lists them.
            if std::env::var_os("PARTLOG_FUZZ_VERBOSE").is_some() {
                eprintln!("open refused: {e}");
            }
            return;
        }
    };
    assert!(!log.open_report().clean);
    model.extend(expected_prefix(&file, fuzz_base, fuzz_base));
    let leo = model.last().map_or(fuzz_base, MBatch::next);
    let bases = log.segment_base_offsets();
    assert_eq!(
        bases,
        if second { vec![0, fuzz_base] } else { vec![0] },
        "segments after recovery"
    );
    check_log(&log, &model, 0, leo, false);
    for b in &model {
        if b.records.is_some() {
            RecordBatch::parse(b.bytes.clone()).expect("recovered batches pass parse");
        }
    }

    // Appends continue at the recovered end.
    let records: Vec<SimpleRecord> = (0..3)
        .map(|i| SimpleRecord::new(5_000 + i, Some(format!("new-{i}")), Some(vec![b'n'; 30])))
        .collect();
    let info = log.append(&records).expect("append after recovery");
    assert_eq!(info.first_offset, leo);
    let appended = log.read(leo, usize::MAX).expect("read the append");
    assert_eq!(appended.batches.len(), 1);
    model.push(MBatch::from_bytes(appended.batches[0].as_bytes().clone()));
    let got: Vec<_> = super::records_of(&appended.batches[0])
        .iter()
        .map(super::record_content)
        .collect();
    let want: Vec<_> = records
        .iter()
        .map(|r| (r.timestamp, r.key.clone(), r.value.clone(), Vec::new()))
        .collect();
    assert_eq!(got, want, "appended records read back");
    let leo = leo + 3;
    check_log(&log, &model, 0, leo, false);
    log.close().expect("close");

    let log = Log::open(dir.path(), config()).expect("clean reopen");
    assert!(log.open_report().clean);
    check_log(&log, &model, 0, leo, false);
    log.abandon();
    let log = Log::open(dir.path(), config()).expect("reopen after a crash");
    check_log(&log, &model, 0, leo, false);
    log.close().expect("close");
}
