//! The record path (issue 13): records read one at a time by offset (`Log::read_record`),
//! iterated as borrowed views, and appended from borrowed slices (`Log::append_records`).

mod common;

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};

use bytes::Bytes;
use common::{fill, read_all, record, small_config, tmp_in_memory, value_of};
use partlog::batch::{BorrowedRecord, HeaderView, SimpleRecord};
use partlog::{Config, Error, Log};

#[test]
fn read_record_returns_exactly_the_record_at_every_offset() {
    let dir = tmp_in_memory("record-path");
    let log = Log::open(dir.path(), small_config()).unwrap();
    // Batches of 1, 3 and 7 records over several segments.
    for per_batch in [1, 3, 7, 1, 7] {
        fill(&log, 12, per_batch, 10_000);
    }
    assert!(log.segment_count() > 3);
    let all = read_all(&log);
    assert_eq!(all.len() as i64, log.log_end_offset());
    for expected in &all {
        let found = log.read_record(expected.offset).unwrap().unwrap();
        assert!(found.record() == *expected, "offset {}", expected.offset);
        assert_eq!(found.offset(), expected.offset);
        let batch = found.batch();
        assert!(batch.base_offset() <= expected.offset && expected.offset <= batch.last_offset());
        // The rest of the batch from there.
        let rest: Vec<i64> = found.records().map(|r| r.unwrap().offset()).collect();
        let expected_rest: Vec<i64> = (expected.offset..=batch.last_offset()).collect();
        assert_eq!(rest, expected_rest);
    }
    let end = log.log_end_offset();
    assert!(log.read_record(end).unwrap().is_none());
    assert!(matches!(
        log.read_record(end + 1),
        Err(Error::OffsetOutOfRange { requested, .. }) if requested == end + 1
    ));
    assert!(matches!(
        log.read_record(-1),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn read_record_after_reopen_reads_inactive_segments() {
    let dir = tmp_in_memory("record-path");
    {
        let log = Log::open(dir.path(), small_config()).unwrap();
        fill(&log, 40, 5, 0);
        log.close().unwrap();
    }
    let log = Log::open(dir.path(), small_config()).unwrap();
    for offset in [0, 1, 77, 123, 199] {
        let found = log.read_record(offset).unwrap().unwrap();
        let r = found.record();
        assert_eq!(r.offset(), offset);
        assert_eq!(r.value(), Some(value_of(offset).as_slice()));
        assert_eq!(r.to_record(), {
            let mut expected = record(offset, offset).clone();
            expected.headers.clear();
            partlog::batch::Record {
                offset,
                timestamp: offset,
                attributes: 0,
                key: expected.key,
                value: expected.value,
                headers: Vec::new(),
            }
        });
    }
}

#[test]
fn read_record_reports_a_corrupt_batch() {
    read_record_reports_a_corrupt_batch_in(false);
}

/// The same in a sealed segment, whose reads slice the segment's whole bytes (the other test's
/// segment is the active one, whose reads map only the batch they return).
#[test]
fn read_record_reports_a_corrupt_batch_in_a_sealed_segment() {
    read_record_reports_a_corrupt_batch_in(true);
}

fn read_record_reports_a_corrupt_batch_in(sealed: bool) {
    let config = Config::default();
    let dir = tmp_in_memory("record-path");
    let log = Log::open(dir.path(), config.clone()).unwrap();
    let value = [7u8; 100];
    for i in 0..10 {
        let records: Vec<BorrowedRecord<'_>> = (0..10)
            .map(|j| BorrowedRecord::new(i * 10 + j, None, Some(&value[..])))
            .collect();
        log.append_records(&records).unwrap();
    }
    let info = log.read(50, 1).unwrap();
    let position = 5 * info.bytes.len() as u64;
    if sealed {
        log.roll_now().unwrap();
        log.append_records(&[BorrowedRecord::new(100, None, Some(&value[..]))])
            .unwrap();
        assert_eq!(log.segment_count(), 2);
    }
    log.close().unwrap();
    // Flip a value byte of the batch holding offsets 50..60 (all batches are the same size).
    let path = dir.path().join(format!("{:020}.log", 0));
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(position + 200)).unwrap();
    f.write_all(&[0x55]).unwrap();
    drop(f);
    let log = Log::open(dir.path(), config.clone()).unwrap();
    match log.read_record(55) {
        Err(Error::Corrupt {
            path: p,
            position: at,
            ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(at, position);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Its neighbours are intact.
    assert!(log.read_record(49).unwrap().is_some());
    assert!(log.read_record(60).unwrap().is_some());
    // With the check off, the damaged record comes back as stored, flipped byte and all.
    log.close().unwrap();
    let unchecked = Config {
        verify_crc_on_read: false,
        ..config
    };
    let log = Log::open(dir.path(), unchecked).unwrap();
    let found = log.read_record(55).unwrap().expect("present");
    assert_eq!(found.record().offset(), 55);
}

#[test]
fn append_records_stores_what_append_stores() {
    let a = tmp_in_memory("record-path");
    let b = tmp_in_memory("record-path");
    let owned_log = Log::open(a.path(), Config::default()).unwrap();
    let borrowed_log = Log::open(b.path(), Config::default()).unwrap();
    let headers = [
        HeaderView::new("trace", Some(&b"abc"[..])),
        HeaderView::new("null", None),
    ];
    for i in 0..50i64 {
        let value = value_of(i);
        let key = format!("key-{i}");
        let owned = SimpleRecord::new(i * 3, Some(key.clone()), Some(value.clone()))
            .with_header("trace", Some("abc"))
            .with_header("null", None::<Bytes>);
        let borrowed = BorrowedRecord::new(i * 3, Some(key.as_bytes()), Some(&value[..]))
            .with_headers(&headers);
        let x = owned_log.append(&[owned.clone(), owned]).unwrap();
        let y = borrowed_log.append_records(&[borrowed, borrowed]).unwrap();
        assert_eq!(x, y);
    }
    assert_eq!(read_all(&owned_log), read_all(&borrowed_log));
    // Byte for byte.
    let x = owned_log.read(0, usize::MAX).unwrap().bytes;
    let y = borrowed_log.read(0, usize::MAX).unwrap().bytes;
    assert_eq!(x, y);
    // Errors as append's: nothing to append.
    assert!(matches!(
        borrowed_log.append_records(&[]),
        Err(Error::InvalidBatch(_))
    ));
}

#[test]
fn borrowed_views_read_a_whole_log() {
    let dir = tmp_in_memory("record-path");
    let log = Log::open(dir.path(), Config::default()).unwrap();
    let value = [1u8; 100];
    let headers = [HeaderView::new("h", Some(&b"v"[..]))];
    for i in 0..20 {
        let records: Vec<BorrowedRecord<'_>> = (0..100)
            .map(|j| {
                BorrowedRecord::new(i * 100 + j, None, Some(&value[..])).with_headers(&headers)
            })
            .collect();
        log.append_records(&records).unwrap();
    }
    let read = log.read(0, usize::MAX).unwrap();
    assert_eq!(read.batches.len(), 20);

    let mut bytes = 0;
    let mut count = 0;
    for batch in &read.batches {
        for r in batch.record_views().unwrap() {
            let r = r.unwrap();
            bytes += r.value().map_or(0, <[u8]>::len);
            bytes += r.headers().map(|h| h.key.len()).sum::<usize>();
            count += 1;
        }
    }
    let found = read.batches[7].record_at(777).unwrap().unwrap();
    assert_eq!((count, bytes), (2000, 2000 * 101));
    assert_eq!(found.offset(), 777);
}

/// Batches in each of Kafka's codecs read record by record through every log API as the
/// uncompressed one does: `read_record` (positioned in the decompressed batch), `read` then
/// `records()` / `record_views()`, and `offset_for_timestamp` finds the record inside the
/// compressed batch, not just its first offset.
#[test]
fn every_record_api_reads_batches_in_every_codec() {
    use partlog::batch::{BatchBuilder, Compression, RecordBatch};
    let dir = tmp_in_memory("record-path");
    let log = Log::open(dir.path(), Config::default()).unwrap();
    // Five batches of 50 records, one per codec; record i has timestamp 1000 + i.
    for (n, codec) in Compression::ALL.into_iter().enumerate() {
        let mut b = BatchBuilder::new().compression(codec);
        for i in 0..50 {
            let offset = (n * 50 + i) as i64;
            let value = format!("{codec} value {offset}");
            b.push_parts(1000 + offset, Some(b"k"), Some(value.as_bytes()), &[])
                .unwrap();
        }
        let batch = b.build().unwrap();
        assert_eq!(batch.compression(), codec);
        let batch = RecordBatch::parse(batch.into_bytes()).unwrap();
        log.append_batch(&batch).unwrap();
    }
    assert_eq!(log.log_end_offset(), 250);
    for offset in 0..250 {
        let codec = Compression::ALL[offset as usize / 50];
        let found = log.read_record(offset).unwrap().unwrap();
        assert_eq!(found.offset(), offset);
        let want = format!("{codec} value {offset}");
        assert_eq!(found.record().value(), Some(want.as_bytes()));
        assert_eq!(found.record().timestamp(), 1000 + offset);
    }
    let read = log.read(0, usize::MAX).unwrap();
    assert_eq!(read.batches.len(), 5);
    let mut seen = 0;
    for (batch, codec) in read.batches.iter().zip(Compression::ALL) {
        assert_eq!(batch.compression(), codec, "stored as written");
        for (r, v) in batch.records().unwrap().zip(batch.record_views().unwrap()) {
            let (r, v) = (r.unwrap(), v.unwrap());
            assert_eq!(v, r);
            assert_eq!(r.offset, seen);
            seen += 1;
        }
    }
    assert_eq!(seen, 250);
    for ts in [1000, 1075, 1149, 1201, 1249] {
        assert_eq!(
            log.offset_for_timestamp(ts).unwrap(),
            Some(ts - 1000),
            "{ts}"
        );
    }
}
