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

/// A compressed batch is stored and served whole, but its records cannot be opened: a record
/// lookup inside it says so (`UnsupportedCompression`), and does not call the valid batch
/// corrupt. Its neighbours read as usual.
#[test]
fn read_record_in_a_compressed_batch_is_unsupported_not_corrupt() {
    let dir = tmp_in_memory("record-path");
    let log = Log::open(dir.path(), Config::default()).unwrap();
    log.append_records(&[BorrowedRecord::new(1, None, Some(&b"before"[..]))])
        .unwrap();
    // A batch marked gzip (attributes bits 0-2 = 1), its CRC made right: partlog keeps such
    // batches as validated opaque bytes.
    let mut b = partlog::batch::BatchBuilder::new();
    for i in 0..3 {
        b.push_parts(10 + i, None, Some(&b"zipped"[..]), &[])
            .unwrap();
    }
    let mut bytes = b.build().unwrap().as_bytes().to_vec();
    bytes[22] |= 1;
    let crc = partlog::batch::compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    partlog::batch::set_base_offset(&mut bytes, 1).unwrap();
    let batch = partlog::batch::RecordBatch::parse(Bytes::from(bytes)).unwrap();
    // Its records are not gzip: a client's append now refuses it (it is inflated and checked),
    // a follower's takes it as sent.
    log.append_batches(&batch, partlog::log::AppendOrigin::Follower)
        .unwrap();
    log.append_records(&[BorrowedRecord::new(20, None, Some(&b"after"[..]))])
        .unwrap();
    assert_eq!(log.log_end_offset(), 5);
    for offset in 1..4 {
        match log.read_record(offset) {
            Err(Error::UnsupportedCompression { codec: 1 }) => {}
            other => panic!("read_record({offset}): {other:?}"),
        }
    }
    // The batch itself reads whole.
    assert_eq!(log.read(2, 1).unwrap().batches[0].base_offset(), 1);
    let before = log.read_record(0).unwrap().unwrap();
    assert_eq!(before.record().value(), Some(&b"before"[..]));
    let after = log.read_record(4).unwrap().unwrap();
    assert_eq!(after.record().value(), Some(&b"after"[..]));
}
