//! Unit tests of the batch module as a whole: round trips, corruption of every field,
//! truncation, hostile lengths.

use bytes::Bytes;

use super::header::*;
use super::varint::{put_varint, put_varlong};
use super::*;

// ------------------------------------------------------------------------------------------
// Helpers.

pub(super) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(super) fn sample_records() -> Vec<SimpleRecord> {
    vec![
        SimpleRecord::new(1_000, Some("key-0"), Some("value-0")),
        SimpleRecord::new(1_005, None::<Bytes>, Some("no key")),
        SimpleRecord::new(990, Some("tombstone"), None::<Bytes>), // negative delta
        SimpleRecord::new(1_001, Some(""), Some("")),             // empty, not null
        SimpleRecord::new(1_002, None::<Bytes>, None::<Bytes>),
        SimpleRecord::new(-5, Some("k"), Some(vec![7u8; 300])) // multi-byte lengths
            .with_header("h1", Some("v1"))
            .with_header("h-null", None::<Bytes>)
            .with_header("", Some(""))
            .with_header("h1", Some("duplicate keys are kept")),
        SimpleRecord::new(i64::from(i32::MAX) * 4, Some("far"), Some("future")),
    ]
}

pub(super) fn build(records: &[SimpleRecord]) -> RecordBatch {
    let mut builder = BatchBuilder::new();
    for r in records {
        builder.push(r).unwrap();
    }
    builder.build().unwrap()
}

pub(super) fn sample() -> Vec<u8> {
    build(&sample_records()).as_bytes().to_vec()
}

pub(super) fn parse(v: &[u8]) -> Result<RecordBatch, BatchError> {
    RecordBatch::parse(Bytes::copy_from_slice(v))
}

pub(super) fn fix_crc(v: &mut [u8]) {
    let crc = compute_crc(v);
    v[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

pub(super) fn set_i32(v: &mut [u8], at: usize, x: i32) {
    v[at..at + 4].copy_from_slice(&x.to_be_bytes());
}

pub(super) fn set_i64(v: &mut [u8], at: usize, x: i64) {
    v[at..at + 8].copy_from_slice(&x.to_be_bytes());
}

pub(super) fn set_i16(v: &mut [u8], at: usize, x: i16) {
    v[at..at + 2].copy_from_slice(&x.to_be_bytes());
}

/// Sets an i32 header field and fixes the CRC.
fn with_i32(v: &[u8], at: usize, x: i32) -> Vec<u8> {
    let mut v = v.to_vec();
    set_i32(&mut v, at, x);
    fix_crc(&mut v);
    v
}

/// A batch around hand-written record bytes, with a valid header and CRC.
pub(super) fn raw_batch(records: &[u8], record_count: i32, last_offset_delta: i32) -> Vec<u8> {
    let mut v = vec![0u8; HEADER_SIZE];
    v.extend_from_slice(records);
    let len = v.len() as i32 - LOG_OVERHEAD as i32;
    set_i32(&mut v, BATCH_LENGTH_AT, len);
    set_i32(&mut v, PARTITION_LEADER_EPOCH_AT, -1);
    v[MAGIC_AT] = 2;
    set_i32(&mut v, LAST_OFFSET_DELTA_AT, last_offset_delta);
    set_i64(&mut v, BASE_TIMESTAMP_AT, 1000);
    set_i64(&mut v, MAX_TIMESTAMP_AT, 1000);
    set_i64(&mut v, PRODUCER_ID_AT, -1);
    set_i16(&mut v, PRODUCER_EPOCH_AT, -1);
    set_i32(&mut v, BASE_SEQUENCE_AT, -1);
    set_i32(&mut v, RECORD_COUNT_AT, record_count);
    fix_crc(&mut v);
    v
}

/// Encodes a well-formed record body field by field.
pub(super) fn rec(
    ts_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varlong(&mut body, ts_delta);
    put_varint(&mut body, offset_delta);
    field(&mut body, key);
    field(&mut body, Some(b"v"));
    put_varint(&mut body, headers.len() as i32);
    for (k, v) in headers {
        field(&mut body, Some(k));
        field(&mut body, *v);
    }
    with_length(&body)
}

pub(super) fn field(out: &mut Vec<u8>, f: Option<&[u8]>) {
    match f {
        None => put_varint(out, -1),
        Some(f) => {
            put_varint(out, f.len() as i32);
            out.extend_from_slice(f);
        }
    }
}

pub(super) fn with_length(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, body.len() as i32);
    out.extend_from_slice(body);
    out
}

fn bad_record_reason(r: Result<RecordBatch, BatchError>) -> &'static str {
    match r {
        Err(BatchError::BadRecord { reason, .. }) => reason,
        other => panic!("expected BadRecord, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Round trips.

#[test]
fn round_trip_all_shapes() {
    let input = sample_records();
    let batch = build(&input);
    let h = *batch.header();
    assert_eq!(h.magic, MAGIC);
    assert_eq!(h.base_offset, 0);
    assert_eq!(h.record_count, input.len() as i32);
    assert_eq!(h.last_offset_delta, input.len() as i32 - 1);
    assert_eq!(
        h.base_timestamp, 1_000,
        "base timestamp is the first record's"
    );
    assert_eq!(h.max_timestamp, i64::from(i32::MAX) * 4);
    assert_eq!(h.partition_leader_epoch, NO_PARTITION_LEADER_EPOCH);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, NO_SEQUENCE)
    );
    assert_eq!(h.compression(), Compression::None);
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert!(!h.is_transactional() && !h.is_control());
    assert_eq!(batch.size(), h.total_size());

    // The built batch passes full validation.
    let reparsed = RecordBatch::parse(batch.as_bytes().clone()).unwrap();
    assert_eq!(reparsed, batch);

    let records: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), input.len());
    for (i, (got, want)) in records.iter().zip(&input).enumerate() {
        assert_eq!(got.offset, i as i64);
        assert_eq!(got.timestamp, want.timestamp);
        assert_eq!(got.attributes, 0);
        assert_eq!(got.key, want.key);
        assert_eq!(got.value, want.value);
        assert_eq!(got.headers, want.headers);
    }
    // Some(empty) and None stay distinct.
    assert_eq!(records[3].key, Some(Bytes::new()));
    assert_eq!(records[4].key, None);
    assert_eq!(records[5].headers[1].value, None);
    assert_eq!(records[5].headers[2].key_str(), Some(""));
    // Payloads are slices of the batch, not copies.
    let base = batch.as_bytes().as_ptr() as usize;
    let v = records[0].value.as_ref().unwrap().as_ptr() as usize;
    assert!(v > base && v < base + batch.size());
}

#[test]
fn builder_header_options() {
    let mut builder = BatchBuilder::with_capacity(4096)
        .base_offset(1_000_000)
        .partition_leader_epoch(17)
        .producer(4242, 3, 99)
        .transactional(true)
        .timestamp_type(TimestampType::LogAppendTime);
    for ts in [5, 50, 7] {
        builder.push_parts(ts, Some(b"k"), None, &[]).unwrap();
    }
    let batch = builder.build().unwrap();
    let h = batch.header();
    assert_eq!(batch.base_offset(), 1_000_000);
    assert_eq!(batch.last_offset(), 1_000_002);
    assert_eq!(batch.next_offset(), 1_000_003);
    assert_eq!(batch.partition_leader_epoch(), 17);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (4242, 3, 99)
    );
    assert!(h.is_transactional());
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    assert_eq!(batch.max_timestamp(), 50);
    assert_eq!(batch.base_timestamp(), 5);
    // LogAppendTime: every record reports the batch's maxTimestamp, as in Kafka.
    let ts: Vec<i64> = batch
        .records()
        .unwrap()
        .map(|r| r.unwrap().timestamp)
        .collect();
    assert_eq!(ts, [50, 50, 50]);
    let offsets: Vec<i64> = batch
        .records()
        .unwrap()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(offsets, [1_000_000, 1_000_001, 1_000_002]);
}

#[test]
fn many_records_round_trip() {
    let mut builder = BatchBuilder::new().base_offset(5);
    for i in 0..1000i64 {
        let key = format!("key-{i}");
        let value = vec![i as u8; (i as usize * 7) % 200];
        builder
            .push_parts(10_000 - i * 3, Some(key.as_bytes()), Some(&value), &[])
            .unwrap();
    }
    let batch = RecordBatch::parse(builder.build().unwrap().into_bytes()).unwrap();
    assert_eq!(batch.record_count(), 1000);
    assert_eq!(batch.max_timestamp(), 10_000);
    let mut iter = batch.records().unwrap();
    assert_eq!(iter.remaining(), 1000);
    let (_, upper) = iter.size_hint();
    assert!(upper.unwrap() >= 1000);
    for i in 0..1000i64 {
        let r = iter.next().unwrap().unwrap();
        assert_eq!(r.offset, 5 + i);
        assert_eq!(r.timestamp, 10_000 - i * 3);
        assert_eq!(r.key.unwrap(), format!("key-{i}").as_bytes());
        assert_eq!(r.value.unwrap().len(), (i as usize * 7) % 200);
    }
    assert!(iter.next().is_none());
    assert!(iter.next().is_none());
    assert_eq!(iter.size_hint(), (0, Some(0)));
}

#[test]
fn empty_batch_is_valid() {
    // Compaction can leave a batch with no records (to keep producer state).
    let v = raw_batch(&[], 0, 5);
    let batch = parse(&v).unwrap();
    assert_eq!(batch.record_count(), 0);
    assert_eq!(batch.next_offset(), 6);
    assert_eq!(batch.records().unwrap().count(), 0);
}

#[test]
fn offset_gaps_are_valid() {
    // Compacted batches keep lastOffsetDelta but lose records.
    let mut records = rec(0, 0, Some(b"a"), &[]);
    records.extend(rec(1, 4, Some(b"b"), &[]));
    let v = raw_batch(&records, 2, 9);
    let batch = parse(&v).unwrap();
    let offsets: Vec<i64> = batch
        .records()
        .unwrap()
        .map(|r| r.unwrap().offset)
        .collect();
    assert_eq!(offsets, [0, 4]);
    assert_eq!(batch.last_offset(), 9);
}

// ------------------------------------------------------------------------------------------
// Header fields, one at a time.

#[test]
fn header_parse_basic() {
    let v = sample();
    let h = BatchHeader::parse(&v).unwrap();
    assert_eq!(h.total_size(), v.len());
    assert_eq!(BatchHeader::parse(&v[..HEADER_SIZE]).unwrap(), h);
    assert_eq!(
        BatchHeader::parse(&v[..HEADER_SIZE - 1]),
        Err(BatchError::TooShort {
            needed: HEADER_SIZE,
            available: HEADER_SIZE - 1
        })
    );
    assert_eq!(peek_frame(&v), Some((0, v.len() as i32 - 12)));
    assert_eq!(peek_frame(&v[..12]), Some((0, v.len() as i32 - 12)));
    assert_eq!(peek_frame(&v[..11]), None);
    assert_eq!(compute_crc(&v), h.crc);
    assert_eq!(compute_crc(&v[..5]), 0);
}

#[test]
fn corrupt_batch_length() {
    let v = sample();
    let real = v.len() as i32 - 12;
    for bad in [-1, i32::MIN, 0, 48] {
        // batchLength lies before byte 21: the CRC does not cover it.
        let mut w = v.clone();
        set_i32(&mut w, BATCH_LENGTH_AT, bad);
        assert_eq!(
            parse(&w),
            Err(BatchError::InvalidLength { batch_length: bad }),
            "{bad}"
        );
    }
    for bad in [49, real - 1, real + 1, i32::MAX] {
        let mut w = v.clone();
        set_i32(&mut w, BATCH_LENGTH_AT, bad);
        assert_eq!(
            parse(&w),
            Err(BatchError::LengthMismatch {
                declared: bad as usize + 12,
                available: v.len()
            }),
            "{bad}"
        );
        // In a stream, a length beyond the buffer is a torn batch; a shorter one cuts a batch
        // whose CRC then fails.
        let first = batches(Bytes::from(w)).next().unwrap();
        if bad > real {
            assert_eq!(
                first.unwrap_err(),
                BatchError::TooShort {
                    needed: bad as usize + 12,
                    available: v.len()
                }
            );
        } else {
            assert!(
                matches!(first, Err(BatchError::CrcMismatch { .. })),
                "{first:?}"
            );
        }
    }
}

#[test]
fn corrupt_magic() {
    let v = sample();
    for m in [0u8, 1, 3, 0xff] {
        let mut w = v.clone();
        w[MAGIC_AT] = m;
        assert_eq!(parse(&w), Err(BatchError::BadMagic(m as i8)));
    }
}

#[test]
fn corrupt_crc() {
    let v = sample();
    let stored = compute_crc(&v);
    let mut w = v.clone();
    w[CRC_AT] ^= 0x01;
    let corrupted = u32::from_be_bytes(w[CRC_AT..CRC_AT + 4].try_into().unwrap());
    assert_eq!(
        parse(&w),
        Err(BatchError::CrcMismatch {
            stored: corrupted,
            computed: stored
        })
    );
    assert!(RecordBatch::parse_crc_only(Bytes::from(w.clone())).is_err());
    // The header-only parser trusts the caller.
    assert!(RecordBatch::parse_header_only(Bytes::from(w)).is_ok());
}

#[test]
fn every_byte_under_the_crc_is_covered() {
    let v = sample();
    for i in CRC_START..v.len() {
        for bit in [0x01u8, 0x80] {
            let mut w = v.clone();
            w[i] ^= bit;
            let e = parse(&w).unwrap_err();
            // Either a header check that precedes the CRC check, or the CRC itself.
            assert!(
                matches!(
                    e,
                    BatchError::CrcMismatch { .. }
                        | BatchError::InvalidAttributes(_)
                        | BatchError::InvalidLastOffsetDelta(_)
                        | BatchError::InvalidRecordCount { .. }
                ),
                "byte {i}: {e:?}"
            );
        }
    }
}

#[test]
fn corrupt_attributes() {
    let v = sample();
    for codec in 5..=7i16 {
        for extra in [0i16, 0x08, 0x30] {
            let mut w = v.clone();
            set_i16(&mut w, ATTRIBUTES_AT, codec | extra);
            fix_crc(&mut w);
            assert_eq!(parse(&w), Err(BatchError::InvalidAttributes(codec | extra)));
        }
    }
    // Valid codecs over records that are not a stream of the codec: the parsers take them
    // (header, length, CRC), the record readers name the bad stream.
    for (codec, c) in [
        (1u8, Compression::Gzip),
        (2, Compression::Snappy),
        (3, Compression::Lz4),
        (4, Compression::Zstd),
    ] {
        let mut w = v.clone();
        set_i16(&mut w, ATTRIBUTES_AT, i16::from(codec));
        fix_crc(&mut w);
        let batch = parse(&w).unwrap();
        assert_eq!(batch.compression(), c);
        assert_eq!(c.codec(), codec);
        assert_eq!(Compression::from_codec(codec), Some(c));
        assert!(matches!(
            batch.records().err(),
            Some(BatchError::BadCompressedData { codec: c2, .. }) if c2 == codec
        ));
        assert!(matches!(
            batch.validate_records(),
            Err(BatchError::BadCompressedData { codec: c2, .. }) if c2 == codec
        ));
        // The crate error maps it to its own variant.
        assert!(matches!(
            crate::Error::from(BatchError::UnsupportedCompression { codec }),
            crate::Error::UnsupportedCompression { codec: c2 } if c2 == codec
        ));
    }
    // Control and transactional flags.
    let mut w = v.clone();
    set_i16(&mut w, ATTRIBUTES_AT, 0x30);
    fix_crc(&mut w);
    let h = *parse(&w).unwrap().header();
    assert!(h.is_control() && h.is_transactional());
}

#[test]
fn corrupt_last_offset_delta() {
    let v = sample();
    let n = sample_records().len() as i32;
    for bad in [-1, i32::MIN] {
        assert_eq!(
            parse(&with_i32(&v, LAST_OFFSET_DELTA_AT, bad)),
            Err(BatchError::InvalidLastOffsetDelta(bad))
        );
    }
    // Smaller than the records need: the record count no longer fits.
    assert_eq!(
        parse(&with_i32(&v, LAST_OFFSET_DELTA_AT, n - 2)),
        Err(BatchError::InvalidRecordCount {
            record_count: n,
            last_offset_delta: n - 2
        })
    );
    // Larger: valid (compaction gaps), last offset follows it.
    let batch = parse(&with_i32(&v, LAST_OFFSET_DELTA_AT, n + 10)).unwrap();
    assert_eq!(batch.last_offset(), i64::from(n + 10));
}

#[test]
fn corrupt_record_count() {
    let v = sample();
    let n = sample_records().len() as i32;
    for bad in [-1, i32::MIN] {
        assert_eq!(
            parse(&with_i32(&v, RECORD_COUNT_AT, bad)),
            Err(BatchError::InvalidRecordCount {
                record_count: bad,
                last_offset_delta: n - 1
            })
        );
    }
    assert_eq!(
        parse(&with_i32(&v, RECORD_COUNT_AT, n + 1)),
        Err(BatchError::InvalidRecordCount {
            record_count: n + 1,
            last_offset_delta: n - 1
        })
    );
    // Fewer than present.
    for declared in [0, 1, n - 1] {
        assert_eq!(
            parse(&with_i32(&v, RECORD_COUNT_AT, declared)),
            Err(BatchError::RecordCountMismatch {
                declared,
                found: n as usize
            })
        );
    }
    // More than present, allowed by lastOffsetDelta.
    let mut w = with_i32(&v, LAST_OFFSET_DELTA_AT, n + 5);
    set_i32(&mut w, RECORD_COUNT_AT, n + 3);
    fix_crc(&mut w);
    assert_eq!(
        parse(&w),
        Err(BatchError::RecordCountMismatch {
            declared: n + 3,
            found: n as usize
        })
    );
    // The CRC-only parser does not walk; the iterator reports it at the end.
    let batch = RecordBatch::parse_crc_only(Bytes::from(w)).unwrap();
    let items: Vec<_> = batch.records().unwrap().collect();
    assert_eq!(items.len(), n as usize + 1);
    assert!(items[..n as usize].iter().all(Result::is_ok));
    assert_eq!(
        items[n as usize],
        Err(BatchError::RecordCountMismatch {
            declared: n + 3,
            found: n as usize
        })
    );
}

#[test]
fn huge_record_count_does_not_allocate() {
    // recordCount 2^31 - 1 in a tiny batch: must fail fast, without reserving for it.
    let records = rec(0, 0, Some(b"k"), &[]);
    let v = raw_batch(&records, i32::MAX, i32::MAX - 1);
    assert_eq!(
        parse(&v),
        Err(BatchError::RecordCountMismatch {
            declared: i32::MAX,
            found: 1
        })
    );
    let batch = RecordBatch::parse_crc_only(Bytes::from(v)).unwrap();
    let iter = batch.records().unwrap();
    let (_, upper) = iter.size_hint();
    assert!(upper.unwrap() <= 2, "{upper:?}");
    let items: Vec<_> = iter.collect();
    assert_eq!(items.len(), 2);
}

#[test]
fn corrupt_base_offset_and_epoch() {
    // Outside the CRC: any value is accepted except one whose last offset overflows.
    let v = sample();
    let n = sample_records().len() as i64;
    let mut w = v.clone();
    set_i64(&mut w, BASE_OFFSET_AT, i64::MAX - n);
    assert_eq!(parse(&w).unwrap().next_offset(), i64::MAX);
    for bad in [i64::MAX - n + 1, i64::MAX] {
        set_i64(&mut w, BASE_OFFSET_AT, bad);
        assert_eq!(
            parse(&w),
            Err(BatchError::OffsetOverflow {
                base_offset: bad,
                last_offset_delta: n as i32 - 1
            })
        );
    }
    let mut w = v.clone();
    set_i32(&mut w, PARTITION_LEADER_EPOCH_AT, 12345);
    assert_eq!(parse(&w).unwrap().partition_leader_epoch(), 12345);
}

#[test]
fn corrupt_fields_without_checks_are_caught_by_the_crc() {
    let v = sample();
    for at in [
        BASE_TIMESTAMP_AT,
        MAX_TIMESTAMP_AT,
        PRODUCER_ID_AT,
        PRODUCER_EPOCH_AT,
        BASE_SEQUENCE_AT,
    ] {
        let mut w = v.clone();
        w[at + 1] ^= 0x40;
        assert!(
            matches!(parse(&w), Err(BatchError::CrcMismatch { .. })),
            "{at}"
        );
        // With a recomputed CRC the header is still valid: these fields carry no invariant.
        fix_crc(&mut w);
        assert!(parse(&w).is_ok(), "{at}");
    }
    // A base timestamp that makes record timestamps overflow is caught by the record walk.
    let w = {
        let mut w = v.clone();
        set_i64(&mut w, BASE_TIMESTAMP_AT, i64::MAX);
        fix_crc(&mut w);
        w
    };
    assert_eq!(
        bad_record_reason(parse(&w)),
        "timestamp delta overflows the timestamp"
    );
}

#[test]
fn truncation_at_every_byte() {
    let v = sample();
    for cut in 0..v.len() {
        let part = Bytes::copy_from_slice(&v[..cut]);
        let e = RecordBatch::parse(part.clone()).unwrap_err();
        if cut < HEADER_SIZE {
            assert_eq!(
                e,
                BatchError::TooShort {
                    needed: HEADER_SIZE,
                    available: cut
                }
            );
        } else {
            assert_eq!(
                e,
                BatchError::LengthMismatch {
                    declared: v.len(),
                    available: cut
                }
            );
        }
        assert!(RecordBatch::parse_crc_only(part.clone()).is_err());
        assert!(RecordBatch::parse_header_only(part.clone()).is_err());
        let mut it = batches(part);
        if cut == 0 {
            assert!(it.next().is_none());
        } else {
            let needed = if cut < HEADER_SIZE {
                HEADER_SIZE
            } else {
                v.len()
            };
            assert_eq!(
                it.next().unwrap().unwrap_err(),
                BatchError::TooShort {
                    needed,
                    available: cut
                }
            );
            assert!(it.next().is_none());
            assert_eq!(it.position(), 0);
        }
    }
    // Extra bytes after the batch.
    let mut w = v.clone();
    w.push(0);
    assert_eq!(
        parse(&w),
        Err(BatchError::LengthMismatch {
            declared: v.len(),
            available: v.len() + 1
        })
    );
}

// ------------------------------------------------------------------------------------------
// Records, field by field (header and CRC valid).

#[test]
fn hand_written_records_parse() {
    let mut records = rec(-3, 0, None, &[(b"a", None), (b"", Some(b"x"))]);
    records.extend(rec(7, 1, Some(b"kk"), &[]));
    let v = raw_batch(&records, 2, 1);
    let batch = parse(&v).unwrap();
    let r: Vec<Record> = batch.records().unwrap().map(Result::unwrap).collect();
    assert_eq!(r[0].timestamp, 997);
    assert_eq!(r[0].key, None);
    assert_eq!(
        r[0].headers,
        vec![Header::new("a", None::<Bytes>), Header::new("", Some("x"))]
    );
    assert_eq!(r[1].timestamp, 1007);
    assert_eq!(r[1].key, Some(b("kk")));
}

#[test]
fn bad_records() {
    let ok = rec(0, 0, Some(b"k"), &[]);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // Record length.
        (vec![0x01], "negative record length"),
        (vec![0x7e], "record length exceeds the batch"),
        (
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            "record length: varint longer than allowed",
        ),
        (
            vec![0xff, 0xff, 0xff, 0xff, 0x7f],
            "record length: varint overflows its type",
        ),
        (vec![0x80], "record length: varint truncated"),
        (vec![0x00], "attributes: record truncated"),
        // Length larger than the fields: one spare byte inside the record.
        (
            {
                let mut body = ok[1..].to_vec();
                body.push(0);
                with_length(&body)
            },
            "record length is larger than the fields it holds",
        ),
        // Timestamp delta: 11-byte varlong.
        (
            with_length(&[&[0u8][..], &[0x80; 10], &[0x00], &[0, 2, b'k', 2, b'v', 0]].concat()),
            "timestamp delta: varint longer than allowed",
        ),
        (with_length(&[0, 0x80]), "timestamp delta: varint truncated"),
        (with_length(&[0, 0]), "offset delta: varint truncated"),
        (
            with_length(&[0, 0, 0x01, 0x01, 0x01, 0]),
            "negative offset delta",
        ),
        (
            with_length(&[0, 0, 0, 0x03, 0x01, 0]),
            "key length below -1",
        ),
        (
            with_length(&[0, 0, 0, 0x0a, b'k', 0x01, 0]),
            "key length exceeds the record",
        ),
        (
            with_length(&[0, 0, 0, 0x01]),
            "value length: varint truncated",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x05, 0]),
            "value length below -1",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x0a, b'v', 0]),
            "value length exceeds the record",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01]),
            "header count: varint truncated",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x01]),
            "negative header count",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x04, 0, 0x01]),
            "header count exceeds the record",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f]),
            "header count exceeds the record",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x02, 0x01, 0x01]),
            "negative header key length",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x02, 0x0a, b'h', 0x01]),
            "header key length exceeds the record",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x02, 0x02, 0xc3, 0x01]),
            "header key is not valid UTF-8",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x02, 0x00, 0x03]),
            "header value length below -1",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x02, 0x00, 0x04, 0x01]),
            "header value length exceeds the record",
        ),
        (
            with_length(&[0, 0, 0, 0x01, 0x01, 0x02, 0x00, 0x80]),
            "header value length: varint truncated",
        ),
    ];
    for (record, reason) in cases {
        let v = raw_batch(&record, 1, 0);
        assert_eq!(bad_record_reason(parse(&v)), reason, "{record:02x?}");
        // The iterator over a CRC-only batch reports the same error once, then stops.
        let batch = RecordBatch::parse_crc_only(Bytes::from(v)).unwrap();
        let mut it = batch.records().unwrap();
        assert!(
            matches!(it.next(), Some(Err(BatchError::BadRecord { reason: r, .. })) if r == reason)
        );
        assert!(it.next().is_none());
    }
}

#[test]
fn bad_record_positions() {
    let mut records = rec(0, 0, Some(b"k"), &[]);
    let second = records.len();
    records.extend(with_length(&[0, 0, 0x02, 0x03, 0x01, 0]));
    let v = raw_batch(&records, 2, 1);
    assert_eq!(
        parse(&v),
        Err(BatchError::BadRecord {
            index: 1,
            position: HEADER_SIZE + second + 4,
            reason: "key length below -1"
        })
    );
}

#[test]
fn offset_deltas_must_increase() {
    let mut records = rec(0, 1, None, &[]);
    records.extend(rec(0, 1, None, &[]));
    assert_eq!(
        bad_record_reason(parse(&raw_batch(&records, 2, 3))),
        "offset delta not greater than the previous record's"
    );
    let mut records = rec(0, 2, None, &[]);
    records.extend(rec(0, 1, None, &[]));
    assert_eq!(
        bad_record_reason(parse(&raw_batch(&records, 2, 3))),
        "offset delta not greater than the previous record's"
    );
    let records = rec(0, 4, None, &[]);
    assert_eq!(
        bad_record_reason(parse(&raw_batch(&records, 1, 3))),
        "offset delta exceeds lastOffsetDelta"
    );
    let records = rec(0, -1, None, &[]);
    assert_eq!(
        bad_record_reason(parse(&raw_batch(&records, 1, 3))),
        "negative offset delta"
    );
}

#[test]
fn trailing_bytes_after_records() {
    let mut records = rec(0, 0, None, &[]);
    let end = records.len();
    records.extend([0xff, 0xff]);
    assert_eq!(
        parse(&raw_batch(&records, 1, 0)),
        Err(BatchError::TrailingBytes {
            position: HEADER_SIZE + end,
            remaining: 2
        })
    );
}

#[test]
fn timestamp_overflow_in_record() {
    let records = rec(i64::MAX, 0, None, &[]);
    let mut v = raw_batch(&records, 1, 0);
    assert_eq!(
        bad_record_reason(parse(&v)),
        "timestamp delta overflows the timestamp"
    );
    // Under LogAppendTime the delta is ignored, as Kafka does.
    set_i16(&mut v, ATTRIBUTES_AT, TIMESTAMP_TYPE_MASK);
    fix_crc(&mut v);
    let batch = parse(&v).unwrap();
    assert_eq!(
        batch.records().unwrap().next().unwrap().unwrap().timestamp,
        1000
    );
}

// ------------------------------------------------------------------------------------------
// Patching the fields outside the CRC.

#[test]
fn set_fields_outside_crc() {
    let mut v = sample();
    set_base_offset(&mut v, 777).unwrap();
    set_partition_leader_epoch(&mut v, 9).unwrap();
    let batch = parse(&v).unwrap();
    assert_eq!(batch.base_offset(), 777);
    assert_eq!(batch.partition_leader_epoch(), 9);
    assert_eq!(
        batch.records().unwrap().next().unwrap().unwrap().offset,
        777
    );

    let before = v.clone();
    assert_eq!(
        set_base_offset(&mut v, i64::MAX),
        Err(BatchError::OffsetOverflow {
            base_offset: i64::MAX,
            last_offset_delta: sample_records().len() as i32 - 1
        })
    );
    assert_eq!(v, before);

    let mut short = vec![0u8; HEADER_SIZE - 1];
    assert_eq!(
        set_base_offset(&mut short, 1),
        Err(BatchError::TooShort {
            needed: HEADER_SIZE,
            available: HEADER_SIZE - 1
        })
    );
    assert!(set_partition_leader_epoch(&mut short, 1).is_err());
    assert!(set_partition_leader_epoch(&mut [], 1).is_err());
    assert!(short.iter().all(|&b| b == 0));
}

// ------------------------------------------------------------------------------------------
// Batches end to end.

#[test]
fn batch_stream() {
    let mut stream = Vec::new();
    let mut starts = Vec::new();
    for i in 0..5i64 {
        let mut builder = BatchBuilder::new().base_offset(i * 10);
        for j in 0..=i {
            builder.push_parts(j, Some(b"k"), Some(b"v"), &[]).unwrap();
        }
        starts.push(stream.len());
        stream.extend_from_slice(builder.build().unwrap().as_bytes());
    }
    let end = stream.len();
    let got: Vec<(usize, RecordBatch)> = batches(Bytes::from(stream.clone()))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got.iter().map(|(p, _)| *p).collect::<Vec<_>>(), starts);
    assert_eq!(got[3].1.base_offset(), 30);
    assert_eq!(got[3].1.record_count(), 4);

    // Zero-filled tail (preallocated file).
    let mut zeros = stream.clone();
    zeros.extend_from_slice(&[0u8; 100]);
    let mut it = batches(Bytes::from(zeros));
    assert_eq!(it.by_ref().take(5).filter(Result::is_ok).count(), 5);
    assert_eq!(it.position(), end);
    assert_eq!(it.next(), Some(Err(BatchError::BadMagic(0))));
    assert_eq!(it.next(), None);
    assert_eq!(it.position(), end);
    assert_eq!(it.remaining().len(), 100);

    // A short zero tail.
    let mut zeros = stream.clone();
    zeros.extend_from_slice(&[0u8; 20]);
    let items: Vec<_> = batches(Bytes::from(zeros)).collect();
    assert_eq!(
        items.last().unwrap(),
        &Err(BatchError::TooShort {
            needed: HEADER_SIZE,
            available: 20
        })
    );

    // A bad CRC in the middle stops the walk there.
    let mut bad = stream.clone();
    bad[starts[2] + HEADER_SIZE] ^= 0xff;
    let mut it = batches(Bytes::from(bad));
    assert!(it.next().unwrap().is_ok());
    assert!(it.next().unwrap().is_ok());
    assert!(matches!(
        it.next(),
        Some(Err(BatchError::CrcMismatch { .. }))
    ));
    assert_eq!(it.position(), starts[2]);
    assert!(it.next().is_none());

    assert!(batches(Bytes::new()).next().is_none());
}

// ------------------------------------------------------------------------------------------
// Hostile input: nothing panics, and parse() success means the records iterate cleanly.

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_mutations_never_panic() {
    let v = sample();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut w = v.clone();
        let flips = 1 + rng.next() % 4;
        for _ in 0..flips {
            let i = HEADER_SIZE + (rng.next() as usize % (v.len() - HEADER_SIZE));
            w[i] = rng.next() as u8;
        }
        if round % 2 == 0 {
            fix_crc(&mut w);
        }
        super::tests_views::views_agree_with_records(&w, "random mutation");
        if let Ok(batch) = parse(&w) {
            accepted += 1;
            let records: Vec<_> = batch.records().unwrap().collect();
            assert_eq!(records.len(), batch.record_count() as usize);
            assert!(records.iter().all(Result::is_ok));
        }
        // The lenient paths must not panic either.
        if let Ok(batch) = RecordBatch::parse_header_only(Bytes::from(w)) {
            if let Ok(it) = batch.records() {
                let n = it.count();
                assert!(n <= batch.record_count() as usize + 1);
            }
        }
    }
    assert!(accepted > 0);

    // Random bytes as a stream.
    for _ in 0..2_000 {
        let len = rng.next() as usize % 200;
        let mut w: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if len > HEADER_SIZE && rng.next() & 1 == 0 {
            w[MAGIC_AT] = 2;
            set_i32(&mut w, BATCH_LENGTH_AT, len as i32 - 12);
        }
        // Whatever the stream yields passed the full parse: it parses again, and its records
        // iterate to exactly `recordCount` without an error.
        for (_, batch) in batches(Bytes::from(w.clone())).flatten() {
            let again = RecordBatch::parse(batch.as_bytes().clone());
            assert_eq!(again.as_ref(), Ok(&batch));
            if let Ok(it) = batch.records() {
                let records: Vec<_> = it.collect();
                assert_eq!(records.len(), batch.record_count() as usize);
                assert!(records.iter().all(Result::is_ok));
            }
        }
        // A header-only parse promises nothing about the records; validation and iteration
        // must agree on whether they are whole.
        if let Ok(batch) = RecordBatch::parse_header_only(Bytes::from(w)) {
            if let Ok(it) = batch.records() {
                let all_ok = it.clone().all(|r| r.is_ok());
                let whole = all_ok && it.count() == batch.record_count() as usize;
                assert_eq!(batch.validate_records().is_ok(), whole);
            }
        }
    }
}

#[test]
fn errors_display() {
    let all = [
        BatchError::TooShort {
            needed: 61,
            available: 3,
        },
        BatchError::LengthMismatch {
            declared: 70,
            available: 69,
        },
        BatchError::InvalidLength { batch_length: -1 },
        BatchError::BadMagic(0),
        BatchError::CrcMismatch {
            stored: 1,
            computed: 2,
        },
        BatchError::InvalidAttributes(5),
        BatchError::UnsupportedCompression { codec: 4 },
        BatchError::InvalidLastOffsetDelta(-1),
        BatchError::InvalidRecordCount {
            record_count: 5,
            last_offset_delta: 0,
        },
        BatchError::OffsetOverflow {
            base_offset: i64::MAX,
            last_offset_delta: 1,
        },
        BatchError::RecordCountMismatch {
            declared: 2,
            found: 1,
        },
        BatchError::BadRecord {
            index: 0,
            position: 61,
            reason: "negative record length",
        },
        BatchError::TrailingBytes {
            position: 70,
            remaining: 2,
        },
        BatchError::Empty,
        BatchError::TooLarge {
            size: usize::MAX,
            max: 1,
        },
        BatchError::TimestampOverflow {
            base_timestamp: 0,
            timestamp: 1,
        },
        BatchError::InvalidHeaderKey { header: 0 },
    ];
    for e in all {
        let s = e.to_string();
        assert!(!s.is_empty());
        let _: &dyn std::error::Error = &e;
    }
    assert_eq!(
        BatchError::CrcMismatch {
            stored: 1,
            computed: 0xabcdef
        }
        .to_string(),
        "CRC mismatch: stored 0x00000001, computed 0x00abcdef"
    );
}

// ------------------------------------------------------------------------------------------
// peek_span: the walk's cheap header check must accept exactly what a full parse accepts.

/// `peek_span` and `BatchHeader::parse` (plus "the whole batch is there") agree on every bit
/// flip of the header, on every cut of the batch, and on hostile lengths and offsets.
#[test]
fn peek_span_accepts_exactly_what_parse_accepts() {
    let good = sample();
    let agree = |v: &[u8], what: &str| {
        let full = BatchHeader::parse(v)
            .ok()
            .filter(|h| h.total_size() <= v.len());
        let span = peek_span(v);
        assert_eq!(
            span.is_some(),
            full.is_some(),
            "{what}: peek_span {span:?}, parse {full:?}"
        );
        if let (Some(s), Some(h)) = (span, full) {
            assert_eq!(s.base_offset, h.base_offset, "{what}");
            assert_eq!(s.last_offset(), h.last_offset(), "{what}");
            assert_eq!(s.next_offset(), h.next_offset(), "{what}");
            assert_eq!(s.total_size, h.total_size(), "{what}");
        }
    };
    agree(&good, "intact");
    let mut accepted = 0;
    for at in 0..HEADER_SIZE {
        for bit in 0..8 {
            let mut v = good.clone();
            v[at] ^= 1 << bit;
            agree(&v, &format!("byte {at} bit {bit}"));
            accepted += usize::from(peek_span(&v).is_some());
        }
    }
    // Flips of fields the header checks do not constrain (CRC, timestamps, producer) pass.
    assert!(accepted > 100 && accepted < HEADER_SIZE * 8, "{accepted}");
    for cut in 0..good.len() {
        agree(&good[..cut], &format!("cut at {cut}"));
    }
    for (at, x) in [
        (BATCH_LENGTH_AT, i32::MAX),
        (BATCH_LENGTH_AT, -1),
        (BATCH_LENGTH_AT, MIN_BATCH_LENGTH - 1),
        (LAST_OFFSET_DELTA_AT, i32::MAX),
        (LAST_OFFSET_DELTA_AT, -1),
        (RECORD_COUNT_AT, -1),
        (RECORD_COUNT_AT, i32::MAX),
    ] {
        let mut v = good.clone();
        set_i32(&mut v, at, x);
        agree(&v, &format!("i32 {x} at {at}"));
    }
    for base in [i64::MAX, i64::MAX - 6, i64::MAX - 7, i64::MIN, -1] {
        let mut v = good.clone();
        set_i64(&mut v, BASE_OFFSET_AT, base);
        agree(&v, &format!("base offset {base}"));
    }
}

// ------------------------------------------------------------------------------------------
// The CRC: the engine's pick (crc-fast, partlog's fold, the `crc32c` crate) against the `crc32c`
// crate and a bitwise reference.

/// CRC-32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78).
pub(super) fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82F6_3B78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// `n` bytes of xorshift noise from `seed`.
pub(super) fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every length to 2 KiB at every alignment to 64 bytes, plus the sizes where SIMD paths switch
/// (folding blocks of 64, 128, 256 bytes and more) and large buffers, agree with two
/// independent implementations; so does the standard check value. Each implementation the
/// pick chooses from is checked on its own at every length too (the pick uses only some of
/// them on a given CPU).
#[test]
fn crc_agrees_with_two_independent_implementations() {
    assert_eq!(super::header::crc32c(b"123456789"), 0xE306_9283);
    let data = noise((1 << 20) + 64, 0x9E37_79B9_7F4A_7C15);
    #[cfg(target_arch = "x86_64")]
    let fold = super::crc_fold::available();
    #[cfg(target_arch = "x86_64")]
    if !fold {
        eprintln!("crc_fold not checked: no AVX2 + VPCLMULQDQ on this CPU");
    }
    let check = |s: &[u8], len: usize, align: usize| {
        let want = ::crc32c::crc32c(s);
        let fast = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, s) as u32;
        assert_eq!(fast, want, "crc-fast: len {len} align {align}");
        #[cfg(target_arch = "x86_64")]
        if fold {
            let folded = super::crc_fold::crc32c(s);
            assert_eq!(folded, Some(want), "crc_fold: len {len} align {align}");
        }
        assert_eq!(super::header::crc32c(s), want, "len {len} align {align}");
    };
    for align in 0..64 {
        for len in 0..2048 {
            check(&data[align..align + len], len, align);
        }
    }
    for len in [
        4095,
        4096,
        4097,
        8191,
        16 << 10,
        (16 << 10) + 13,
        100_000,
        103_433,
        1 << 20,
    ] {
        for align in [0, 1, 7, 63] {
            check(&data[align..align + len], len, align);
        }
    }
    for len in [
        0, 1, 61, 127, 128, 129, 255, 256, 257, 383, 511, 512, 1000, 4096,
    ] {
        assert_eq!(
            super::header::crc32c(&data[..len]),
            crc32c_bitwise(&data[..len]),
            "len {len}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// records_valid: the fast record check must give the record walk's verdict.

/// The walk's verdict on `v` (a batch with a valid header): true if it accepts every record.
fn walk_accepts(v: &[u8]) -> bool {
    let header = BatchHeader::parse(v).unwrap();
    let mut walk = super::record::Walk::new(&header);
    while let Some(r) = walk.next_raw(v, &mut ()) {
        if r.is_err() {
            return false;
        }
    }
    true
}

fn agree_on_records(v: &[u8], what: &str) -> bool {
    let Ok(header) = BatchHeader::parse(v) else {
        return false;
    };
    let fast = super::fast::records_valid(v, &header);
    assert_eq!(fast, walk_accepts(v), "{what}");
    super::tests_views::views_agree_with_records(v, what);
    fast
}

/// Every bit of every record byte flipped, every record-affecting header field bent, and
/// hostile varints spliced in: `records_valid` says yes exactly when the walk does.
#[test]
fn records_valid_agrees_with_the_walk() {
    let good = sample();
    assert!(agree_on_records(&good, "intact"));
    let mut accepted = 0;
    let mut cases = 0;
    for at in HEADER_SIZE..good.len() {
        for bit in 0..8 {
            let mut v = good.clone();
            v[at] ^= 1 << bit;
            accepted += usize::from(agree_on_records(&v, &format!("byte {at} bit {bit}")));
            cases += 1;
        }
    }
    // Payload flips keep the batch valid, length and varint flips do not: both kinds occur.
    assert!(accepted > 0 && accepted < cases, "{accepted} of {cases}");
    // Header fields the record walk checks against.
    for count in [-1, 0, 1, 6, 7, 8, 100, i32::MAX] {
        let mut v = good.clone();
        set_i32(&mut v, RECORD_COUNT_AT, count);
        agree_on_records(&v, &format!("record count {count}"));
    }
    for delta in [0, 5, 6, 7, 1000] {
        let mut v = good.clone();
        set_i32(&mut v, LAST_OFFSET_DELTA_AT, delta);
        agree_on_records(&v, &format!("last offset delta {delta}"));
    }
    for ts in [i64::MAX, i64::MAX - 1_000, i64::MIN, 0] {
        for log_append_time in [false, true] {
            let mut v = good.clone();
            set_i64(&mut v, BASE_TIMESTAMP_AT, ts);
            if log_append_time {
                v[ATTRIBUTES_AT + 1] |= TIMESTAMP_TYPE_MASK as u8;
            }
            agree_on_records(
                &v,
                &format!("base timestamp {ts}, append time {log_append_time}"),
            );
        }
    }
    // Trailing bytes, a missing tail, and overlong or overflowing varints in the first record.
    for extra in [&[][..], &[0], &[0x80], &[2, 0, 0, 0, 1, 1, 0]] {
        let mut v = good.clone();
        v.extend_from_slice(extra);
        agree_on_records(&v, &format!("trailing {extra:?}"));
    }
    for cut in HEADER_SIZE..good.len() {
        agree_on_records(&good[..cut], &format!("cut at {cut}"));
    }
    for splice in [
        &[0xff, 0xff, 0xff, 0xff, 0x7f][..],
        &[0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
        &[0x80, 0x00],
        &[0x81, 0x80, 0x00],
    ] {
        for field in 0..4 {
            let mut v = good[..HEADER_SIZE].to_vec();
            let rest = &good[HEADER_SIZE..];
            // Replace the first byte of the first record, or of a later field, by the splice.
            let at = [0, 1, 2, 3][field];
            v.extend_from_slice(&rest[..at]);
            v.extend_from_slice(splice);
            v.extend_from_slice(&rest[at + 1..]);
            agree_on_records(&v, &format!("splice {splice:?} at record byte {at}"));
        }
    }
}
