//! Tests of the borrowed record path: [`RecordView`] iteration, [`RecordBatch::record_at`],
//! [`PositionedBatch`] and [`BorrowedRecord`] encoding. The corruption tests of `tests.rs` also
//! run [`views_agree_with_records`] on every batch they bend.

use bytes::Bytes;

use super::header::*;
use super::tests::*;
use super::*;

/// On any bytes with a parseable header: [`RecordBatch::record_views`] yields exactly what
/// [`RecordBatch::records`] yields (the same records, then the same error); and when every
/// record validates, [`RecordBatch::record_at`] finds exactly the record a search of
/// `records()` finds, for every offset around the batch. Nothing panics either way.
pub(super) fn views_agree_with_records(v: &[u8], what: &str) {
    let Ok(batch) = RecordBatch::parse_header_only(Bytes::copy_from_slice(v)) else {
        return;
    };
    let (owned, views) = match (batch.records(), batch.record_views()) {
        (Ok(o), Ok(v)) => (o, v),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "{what}");
            return;
        }
        (a, b) => panic!("{what}: {a:?} vs {b:?}"),
    };
    let owned: Vec<_> = owned.collect();
    let views: Vec<_> = views.collect();
    assert_eq!(owned.len(), views.len(), "{what}");
    for (o, w) in owned.iter().zip(&views) {
        match (o, w) {
            (Ok(o), Ok(w)) => {
                assert!(w == o, "{what}: {w:?} vs {o:?}");
                assert_eq!(&w.to_record(), o, "{what}");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{what}"),
            _ => panic!("{what}: {o:?} vs {w:?}"),
        }
    }
    // The iterators stop at the error the detailed walk names (`validate_records`).
    let validated = batch.validate_records();
    let valid = validated.is_ok();
    assert_eq!(valid, owned.iter().all(Result::is_ok), "{what}");
    if let Err(e) = validated {
        assert_eq!(owned.last(), Some(&Err(e)), "{what}");
    }
    let first = batch.base_offset().saturating_sub(2);
    let last = batch.last_offset().saturating_add(2).min(first + 64);
    for offset in first..=last {
        let at = batch.record_at(offset);
        let positioned = batch.clone().into_positioned(offset);
        if !valid {
            // Records passed over are not checked: any answer but a panic will do.
            continue;
        }
        let expected = owned.iter().flatten().find(|r| r.offset == offset);
        match (&at, expected) {
            (Ok(Some(view)), Some(r)) => assert!(view == r, "{what}: offset {offset}"),
            (Ok(None), None) => {}
            _ => panic!("{what}: offset {offset}: {at:?} vs {expected:?}"),
        }
        let positioned = positioned.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            positioned.as_ref().map(|p| p.record()),
            at.unwrap_or_else(|e| panic!("{what}: {e}"))
        );
        if let Some(p) = positioned {
            let rest: Vec<_> = p.records().map(|r| r.unwrap().offset()).collect();
            let expected: Vec<_> = owned
                .iter()
                .flatten()
                .map(|r| r.offset)
                .filter(|&o| o >= offset)
                .collect();
            assert_eq!(rest, expected, "{what}: offset {offset}");
        }
    }
}

fn borrowed_batch(n: usize, value_len: usize) -> RecordBatch {
    let value: Vec<u8> = (0..value_len).map(|i| i as u8).collect();
    let mut b = BatchBuilder::new().base_offset(1000);
    for i in 0..n {
        let key = format!("key-{i}");
        let record = BorrowedRecord::new(5_000 + i as i64, Some(key.as_bytes()), Some(&value));
        b.push_borrowed(&record).unwrap();
    }
    b.build().unwrap()
}

#[test]
fn views_yield_what_the_owned_records_hold() {
    let v = sample();
    views_agree_with_records(&v, "sample");
    let batch = parse(&v).unwrap();
    let expected = sample_records();
    let views: Vec<RecordView<'_>> = batch.record_views().unwrap().map(Result::unwrap).collect();
    assert_eq!(views.len(), expected.len());
    for (i, (view, r)) in views.iter().zip(&expected).enumerate() {
        assert_eq!(view.offset(), i as i64);
        assert_eq!(view.timestamp(), r.timestamp);
        assert_eq!(view.attributes(), 0);
        assert_eq!(view.key(), r.key.as_deref());
        assert_eq!(view.value(), r.value.as_deref());
        assert_eq!(view.header_count(), r.headers.len());
        let headers: Vec<HeaderView<'_>> = view.headers().collect();
        assert_eq!(headers.len(), r.headers.len());
        for (h, e) in headers.iter().zip(&r.headers) {
            assert_eq!(h.key.as_bytes(), e.key.as_ref());
            assert_eq!(h.value, e.value.as_deref());
        }
    }
    // The headers of the record that has them, by name.
    let keys: Vec<&str> = views[5].headers().map(|h| h.key).collect();
    assert_eq!(keys, ["h1", "h-null", "", "h1"]);
    assert_eq!(views[5].headers().nth(1).unwrap().value, None);
}

#[test]
fn record_at_finds_every_offset_of_a_dense_batch() {
    let batch = borrowed_batch(100, 100);
    views_agree_with_records(batch.as_bytes(), "100 records");
    for i in 0..100i64 {
        let r = batch.record_at(1000 + i).unwrap().unwrap();
        assert_eq!(r.offset(), 1000 + i);
        assert_eq!(r.timestamp(), 5_000 + i);
        assert_eq!(r.key(), Some(format!("key-{i}").as_bytes()));
        assert_eq!(r.value().map(<[u8]>::len), Some(100));
        let p = batch.clone().into_positioned(1000 + i).unwrap().unwrap();
        assert_eq!((p.offset(), p.index()), (1000 + i, i as usize));
        assert_eq!(p.record(), r);
        assert_eq!(p.records().count(), 100 - i as usize);
        assert_eq!(p.records().remaining(), 100 - i as usize);
        // The position is where the record's bytes start.
        let next = p.records().nth(1).map(|_| ());
        assert_eq!(next.is_some(), i < 99);
        assert!(p.position() >= HEADER_SIZE && p.position() < batch.size());
        assert_eq!(p.batch(), &batch);
    }
    for outside in [i64::MIN, 0, 999, 1100, 1101, i64::MAX] {
        assert_eq!(batch.record_at(outside), Ok(None), "{outside}");
        assert_eq!(batch.clone().into_positioned(outside), Ok(None));
    }
}

#[test]
fn record_at_passes_over_records_of_every_length_form() {
    // Record lengths of one (< 64 B), two (< 8 KiB) and three varint bytes.
    for value_len in [10, 100, 9_000, 20_000] {
        let batch = borrowed_batch(6, value_len);
        views_agree_with_records(batch.as_bytes(), &format!("{value_len} B values"));
        for i in 0..6 {
            let r = batch.record_at(1000 + i).unwrap().unwrap();
            assert_eq!(r.offset(), 1000 + i);
            assert_eq!(r.value().map(<[u8]>::len), Some(value_len));
        }
    }
}

#[test]
fn record_at_in_a_batch_with_offset_gaps() {
    // A compacted batch: lastOffsetDelta 9, records at deltas 0, 4 and 7 only.
    let mut records = rec(0, 0, Some(b"a"), &[]);
    records.extend(rec(1, 4, Some(b"b"), &[(b"h", Some(b"x"))]));
    records.extend(rec(2, 7, None, &[]));
    let v = raw_batch(&records, 3, 9);
    views_agree_with_records(&v, "gaps");
    let batch = parse(&v).unwrap();
    let found: Vec<(i64, Option<&[u8]>)> = (0..12)
        .filter_map(|o| batch.record_at(o).unwrap())
        .map(|r| (r.offset(), r.key()))
        .collect();
    assert_eq!(
        found,
        [(0, Some(&b"a"[..])), (4, Some(&b"b"[..])), (7, None)]
    );
    let p = batch.into_positioned(4).unwrap().unwrap();
    assert_eq!(p.index(), 1);
    assert_eq!(p.record().timestamp(), 1001);
    let h: Vec<_> = p.record().headers().collect();
    assert_eq!(h, [HeaderView::new("h", Some(b"x"))]);
    let rest: Vec<i64> = p.records().map(|r| r.unwrap().offset()).collect();
    assert_eq!(rest, [4, 7]);
}

#[test]
fn record_at_reports_log_append_time() {
    let mut b = BatchBuilder::new().timestamp_type(TimestampType::LogAppendTime);
    b.push_parts(10, None, Some(b"a"), &[]).unwrap();
    b.push_parts(30, None, Some(b"b"), &[]).unwrap();
    let batch = b.build().unwrap();
    assert_eq!(batch.record_at(0).unwrap().unwrap().timestamp(), 30);
    let ts: Vec<i64> = batch
        .record_views()
        .unwrap()
        .map(|r| r.unwrap().timestamp())
        .collect();
    assert_eq!(ts, [30, 30]);
}

#[test]
fn a_codec_label_over_records_that_are_no_stream_is_a_typed_error_on_every_reader() {
    let mut v = sample();
    set_i16(&mut v, ATTRIBUTES_AT, 1); // gzip
    fix_crc(&mut v);
    let batch = RecordBatch::parse_crc_only(Bytes::from(v)).unwrap();
    let bad =
        |e: Option<BatchError>| matches!(e, Some(BatchError::BadCompressedData { codec: 1, .. }));
    assert!(bad(batch.record_views().err()));
    assert!(bad(batch.record_at(0).err()));
    assert!(bad(batch.records().err()));
    let mut scratch = Vec::new();
    assert!(bad(batch.record_views_in(&mut scratch).err()));
    assert!(bad(batch.into_positioned(0).err()));
}

/// The same records, built uncompressed and in each codec.
fn each_codec(records: &[SimpleRecord]) -> Vec<(Compression, RecordBatch)> {
    Compression::ALL
        .into_iter()
        .map(|c| {
            let mut b = BatchBuilder::new().base_offset(100).compression(c);
            for r in records {
                b.push(r).unwrap();
            }
            (c, b.build().unwrap())
        })
        .collect()
}

fn some_records(n: usize) -> Vec<SimpleRecord> {
    (0..n)
        .map(|i| {
            SimpleRecord::new(
                1_000 + i as i64,
                Some(format!("key-{}", i % 7)),
                Some(format!("value {i} {}", "x".repeat(i % 50))),
            )
            .with_header("h", Some(format!("{i}")))
        })
        .collect()
}

#[test]
fn every_reader_sees_the_same_records_in_every_codec() {
    let records = some_records(300);
    let batches = each_codec(&records);
    let plain: Vec<Record> = batches[0]
        .1
        .records()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(plain.len(), 300);
    let mut scratch = Vec::new();
    for (c, batch) in &batches {
        // The header as Kafka writes it: the codec in bits 0-2, length and CRC of what is stored.
        assert_eq!(batch.compression(), *c);
        assert_eq!(i16::from(c.codec()), batch.header().attributes & 7);
        let reparsed = RecordBatch::parse(batch.as_bytes().clone()).unwrap();
        if *c != Compression::None {
            assert!(
                batch.size() < batches[0].1.size() / 2,
                "{c}: {} bytes",
                batch.size()
            );
        }
        let owned: Vec<Record> = reparsed.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(owned, plain, "{c}: records()");
        let views: Vec<Record> = batch
            .record_views()
            .unwrap()
            .map(|r| r.unwrap().to_record())
            .collect();
        assert_eq!(views, plain, "{c}: record_views()");
        let fresh = RecordBatch::parse_crc_only(batch.as_bytes().clone()).unwrap();
        let views: Vec<Record> = fresh
            .record_views_in(&mut scratch)
            .unwrap()
            .map(|r| r.unwrap().to_record())
            .collect();
        assert_eq!(views, plain, "{c}: record_views_in()");
        for (i, want) in plain.iter().enumerate().step_by(37) {
            let got = batch.record_at(100 + i as i64).unwrap().unwrap();
            assert_eq!(got, *want, "{c}: record_at");
            let p = batch
                .clone()
                .into_positioned(100 + i as i64)
                .unwrap()
                .unwrap();
            assert_eq!(p.record(), *want, "{c}: into_positioned");
            assert_eq!(p.records().count(), 300 - i);
        }
        assert_eq!(batch.record_at(400), Ok(None));
        let d = batch.decompressed().unwrap();
        assert_eq!(d.compression(), Compression::None);
        assert_eq!(
            d, batches[0].1,
            "{c}: decompressed() is the uncompressed batch"
        );
    }
}

#[test]
fn record_views_in_reuses_one_buffer_across_batches() {
    let records = some_records(500);
    let batches = each_codec(&records);
    let mut scratch = Vec::new();
    let pass = |scratch: &mut Vec<u8>| {
        for (_, batch) in &batches[1..] {
            let fresh = RecordBatch::parse_crc_only(batch.as_bytes().clone()).unwrap();
            assert_eq!(fresh.record_views_in(scratch).unwrap().count(), 500);
        }
    };
    pass(&mut scratch);
    let (cap, ptr) = (scratch.capacity(), scratch.as_ptr());
    // Once grown to the largest batch, the buffer serves every later one as it is.
    pass(&mut scratch);
    assert_eq!(
        (scratch.capacity(), scratch.as_ptr()),
        (cap, ptr),
        "no reallocation"
    );
}

#[test]
fn a_compressed_batch_inflating_past_the_bound_is_refused_before_it_is_allocated() {
    let mut b = BatchBuilder::new().compression(Compression::Zstd);
    b.push(&SimpleRecord::new(
        0,
        None::<Bytes>,
        Some(vec![0u8; 1 << 20]),
    ))
    .unwrap();
    let batch = b.build().unwrap();
    assert!(batch.size() < 1000);
    assert!(matches!(
        batch.decompressed_with_limit(1 << 19),
        Err(BatchError::DecompressedTooLarge { codec: 4, max }) if max == 1 << 19
    ));
    assert_eq!(batch.decompressed().unwrap().record_count(), 1);
}

#[test]
fn record_at_checks_the_record_it_returns_but_not_those_it_passes() {
    // Record 1 has a header key that is not UTF-8; records 0 and 2 are fine.
    let mut records = rec(0, 0, Some(b"a"), &[]);
    records.extend(rec(0, 1, Some(b"b"), &[(&[0xff, 0xfe], None)]));
    records.extend(rec(0, 2, Some(b"c"), &[]));
    let v = raw_batch(&records, 3, 2);
    let batch = RecordBatch::parse_crc_only(Bytes::from(v)).unwrap();
    let walk_error = batch.validate_records().unwrap_err();
    assert!(matches!(
        walk_error,
        BatchError::BadRecord {
            index: 1,
            reason: "header key is not valid UTF-8",
            ..
        }
    ));
    assert_eq!(batch.record_at(0).unwrap().unwrap().key(), Some(&b"a"[..]));
    // The bad record itself: the detailed walk names the error.
    assert_eq!(batch.record_at(1), Err(walk_error.clone()));
    // Passed over by its length prefix: not decoded.
    assert_eq!(batch.record_at(2).unwrap().unwrap().key(), Some(&b"c"[..]));
    // Iterating decodes every record: the same error, after the first record.
    let views: Vec<_> = batch.record_views().unwrap().collect();
    assert_eq!(views.len(), 2);
    assert_eq!(views[1], Err(walk_error));
}

#[test]
fn record_at_falls_back_to_the_walk_when_lengths_mislead() {
    // Record 0's length prefix claims one byte too many, swallowing record 1's length: the
    // quick skip lands inside record 1, the walk reports record 0.
    let mut records = rec(0, 0, Some(b"a"), &[]);
    records[0] += 2; // zigzag: length + 1
    records.extend(rec(0, 1, Some(b"b"), &[]));
    let v = raw_batch(&records, 2, 1);
    let batch = RecordBatch::parse_crc_only(Bytes::from(v)).unwrap();
    let walk_error = batch.validate_records().unwrap_err();
    assert!(matches!(walk_error, BatchError::BadRecord { index: 0, .. }));
    assert_eq!(batch.record_at(1), Err(walk_error.clone()));
    assert_eq!(batch.record_at(0), Err(walk_error));
}

#[test]
fn push_borrowed_encodes_exactly_as_push_parts() {
    let owned = sample_records();
    let expected = build(&owned);
    let mut b = BatchBuilder::new();
    for r in &owned {
        let headers: Vec<HeaderView<'_>> = r
            .headers
            .iter()
            .map(|h| HeaderView::new(std::str::from_utf8(&h.key).unwrap(), h.value.as_deref()))
            .collect();
        let record = BorrowedRecord::new(r.timestamp, r.key.as_deref(), r.value.as_deref())
            .with_headers(&headers);
        b.push_borrowed(&record).unwrap();
    }
    assert_eq!(b.build().unwrap(), expected);

    // The builder's checks hold for borrowed records too, leaving it unchanged.
    let mut b = BatchBuilder::new();
    b.push_borrowed(&BorrowedRecord::new(i64::MIN, None, None))
        .unwrap();
    let size = b.encoded_size();
    assert_eq!(
        b.push_borrowed(&BorrowedRecord::new(1, None, None)),
        Err(BatchError::TimestampOverflow {
            base_timestamp: i64::MIN,
            timestamp: 1
        })
    );
    assert_eq!((b.len(), b.encoded_size()), (1, size));
    assert_eq!(
        BorrowedRecord::default(),
        BorrowedRecord::new(0, None, None)
    );
}

#[test]
fn header_views_stop_on_bytes_that_are_not_headers() {
    // A view can only be made by decoding, which checks the headers; the iterator still ends
    // cleanly on bytes that are not headers rather than panicking.
    let it = HeaderViews::for_tests(&[0x05, b'a'], 3);
    assert_eq!(it.count(), 0);
    let it = HeaderViews::for_tests(&[0x02, b'a', 0x01, 0x02], 2);
    assert_eq!(it.collect::<Vec<_>>(), [HeaderView::new("a", None)]);
}
