//! Kafka compatibility of `partlog::batch`, checked against an independent implementation of
//! the v2 record batch format: the `kafka-protocol` crate.
//!
//! * kafka-protocol encodes → partlog parses (`RecordBatch::parse`, `batches`), every header
//!   field and every record compared;
//! * partlog encodes (`BatchBuilder`) → kafka-protocol decodes (which checks the CRC);
//! * both encode the same records with the same header fields → identical bytes.
//!
//! Known, legitimate differences between the two encoders (asserted below):
//! * kafka-protocol writes the *smallest* record timestamp as `baseTimestamp`; partlog, like
//!   Kafka's Java `MemoryRecordsBuilder`, writes the *first* record's timestamp. When the first
//!   record is not the earliest, `baseTimestamp`, the records' timestamp deltas (and so their
//!   lengths, the `batchLength` and the CRC) differ, while every decoded timestamp is the same.
//! * kafka-protocol keeps headers in a map, so it cannot express duplicate header keys; the
//!   tests use distinct keys.
//! * kafka-protocol never sets the timestamp-type attribute bit (LogAppendTime), so the tests
//!   use CreateTime.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KTimestampType,
};
use partlog::batch::*;

/// Header fields shared by every record of one batch.
#[derive(Clone, Copy)]
struct BatchMeta {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
}

impl Default for BatchMeta {
    fn default() -> Self {
        BatchMeta {
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
        }
    }
}

fn headers_map(headers: &[Header]) -> IndexMap<StrBytes, Option<Bytes>> {
    let mut map = IndexMap::new();
    for h in headers {
        let key = StrBytes::from_utf8(h.key.clone()).expect("UTF-8 header key");
        assert!(
            map.insert(key, h.value.clone()).is_none(),
            "test data must not repeat header keys"
        );
    }
    map
}

fn headers_vec(map: &IndexMap<StrBytes, Option<Bytes>>) -> Vec<Header> {
    map.iter()
        .map(|(k, v)| Header {
            key: Bytes::from(k.to_string()),
            value: v.clone(),
        })
        .collect()
}

/// kafka-protocol records for one batch. Its encoder starts a new batch whenever
/// `offset - sequence` changes, so record i gets sequence `base_sequence + i` (for a
/// non-idempotent batch, base -1: `i - 1`).
fn k_records(meta: BatchMeta, records: &[SimpleRecord]) -> Vec<KRecord> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| KRecord {
            transactional: meta.transactional,
            control: meta.control,
            delete_horizon: false,
            partition_leader_epoch: meta.partition_leader_epoch,
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            timestamp_type: KTimestampType::Creation,
            offset: meta.base_offset + i as i64,
            sequence: meta.base_sequence.wrapping_add(i as i32),
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: headers_map(&r.headers),
        })
        .collect()
}

fn k_encode(meta: BatchMeta, records: &[SimpleRecord], out: &mut BytesMut) {
    let krecords = k_records(meta, records);
    RecordBatchEncoder::encode(
        out,
        &krecords,
        &RecordEncodeOptions {
            version: 2,
            compression: KCompression::None,
        },
    )
    .expect("kafka-protocol encodes");
}

fn p_encode(meta: BatchMeta, records: &[SimpleRecord]) -> RecordBatch {
    assert!(!meta.control, "BatchBuilder does not write control batches");
    let mut builder = BatchBuilder::new()
        .base_offset(meta.base_offset)
        .partition_leader_epoch(meta.partition_leader_epoch)
        .producer(meta.producer_id, meta.producer_epoch, meta.base_sequence)
        .transactional(meta.transactional);
    for r in records {
        builder.push(r).expect("partlog encodes");
    }
    builder.build().expect("partlog builds")
}

fn rec(ts: i64, key: Option<&str>, value: Option<&str>) -> SimpleRecord {
    SimpleRecord {
        timestamp: ts,
        key: key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
        value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        headers: Vec::new(),
    }
}

/// Batches exercising null keys and values, empty ones, headers with null values, multi-byte
/// varints, and out-of-order timestamps.
fn sample_batches() -> Vec<(BatchMeta, Vec<SimpleRecord>)> {
    let big = "x".repeat(1000);
    vec![
        (
            BatchMeta::default(),
            vec![rec(1_700_000_000_000, Some("k"), Some("v"))],
        ),
        (
            BatchMeta {
                base_offset: 1,
                ..BatchMeta::default()
            },
            vec![
                rec(1_000, None, Some("null key")),
                rec(1_001, Some("tombstone"), None),
                rec(1_001, Some(""), Some("")),
                rec(1_002, None, None),
                rec(5_000, Some("k"), Some(&big))
                    .with_header("trace-id", Some("abc"))
                    .with_header("null-value", None::<Bytes>)
                    .with_header("", Some("empty key")),
            ],
        ),
        (
            // First record not the earliest: timestamp deltas relative to partlog's base can be
            // negative.
            BatchMeta {
                base_offset: 6,
                partition_leader_epoch: 3,
                ..BatchMeta::default()
            },
            vec![
                rec(2_000, Some("a"), Some("1")),
                rec(1_500, Some("b"), Some("2")),
                rec(-1, Some("no timestamp"), Some("3")),
                rec(2_500, Some("c"), Some("4")).with_header("h", Some("v")),
            ],
        ),
        (
            BatchMeta {
                base_offset: 10,
                partition_leader_epoch: 4,
                producer_id: 123_456,
                producer_epoch: 7,
                base_sequence: 42,
                transactional: true,
                control: false,
            },
            (0..300)
                .map(|i| {
                    rec(
                        10_000 + i,
                        Some(&format!("key-{i}")),
                        Some(&"v".repeat(i as usize)),
                    )
                })
                .collect(),
        ),
    ]
}

fn assert_header_matches(batch: &RecordBatch, meta: BatchMeta, records: &[SimpleRecord]) {
    let h = batch.header();
    let n = records.len() as i32;
    assert_eq!(h.base_offset, meta.base_offset);
    assert_eq!(h.batch_length as usize, batch.size() - LOG_OVERHEAD);
    assert_eq!(h.partition_leader_epoch, meta.partition_leader_epoch);
    assert_eq!(h.magic, MAGIC);
    assert_eq!(h.crc, compute_crc(batch.as_bytes()));
    assert_eq!(h.compression(), Compression::None);
    assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
    assert_eq!(h.is_transactional(), meta.transactional);
    assert_eq!(h.is_control(), meta.control);
    assert_eq!(h.last_offset_delta, n - 1);
    assert_eq!(
        h.max_timestamp,
        records.iter().map(|r| r.timestamp).max().unwrap()
    );
    assert_eq!(h.producer_id, meta.producer_id);
    assert_eq!(h.producer_epoch, meta.producer_epoch);
    assert_eq!(h.base_sequence, meta.base_sequence);
    assert_eq!(h.record_count, n);
    assert_eq!(batch.last_offset(), meta.base_offset + i64::from(n) - 1);
}

fn assert_records_match(batch: &RecordBatch, meta: BatchMeta, records: &[SimpleRecord]) {
    let got: Vec<Record> = batch.records().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), records.len());
    for (i, (g, want)) in got.iter().zip(records).enumerate() {
        assert_eq!(g.offset, meta.base_offset + i as i64, "record {i}");
        assert_eq!(g.timestamp, want.timestamp, "record {i}");
        assert_eq!(g.attributes, 0, "record {i}");
        assert_eq!(g.key, want.key, "record {i}");
        assert_eq!(g.value, want.value, "record {i}");
        assert_eq!(g.headers, want.headers, "record {i}");
    }
}

/// (a) kafka-protocol encodes, partlog parses.
#[test]
fn kafka_protocol_encoded_batches_parse() {
    let mut all = BytesMut::new();
    let mut expected = Vec::new();
    for (meta, records) in sample_batches() {
        let mut one = BytesMut::new();
        k_encode(meta, &records, &mut one);
        let batch = RecordBatch::parse(one.clone().freeze()).expect("partlog parses");
        assert_header_matches(&batch, meta, &records);
        // kafka-protocol's baseTimestamp is the smallest timestamp.
        assert_eq!(
            batch.base_timestamp(),
            records.iter().map(|r| r.timestamp).min().unwrap()
        );
        assert_records_match(&batch, meta, &records);
        expected.push((all.len(), meta, records));
        all.extend_from_slice(&one);
    }

    // The same batches end to end.
    let total = all.len();
    let mut iter = batches(all.freeze());
    for (pos, meta, records) in &expected {
        let (at, batch) = iter.next().unwrap().expect("valid batch");
        assert_eq!(at, *pos);
        let batch = RecordBatch::parse(batch.into_bytes()).unwrap();
        assert_header_matches(&batch, *meta, records);
        assert_records_match(&batch, *meta, records);
    }
    assert!(iter.next().is_none());
    assert_eq!(iter.position(), total);
}

/// (a) A control batch and an idempotent non-transactional one, from kafka-protocol.
#[test]
fn kafka_protocol_flags_parse() {
    for meta in [
        BatchMeta {
            control: true,
            transactional: true,
            producer_id: 9,
            producer_epoch: 0,
            base_sequence: NO_SEQUENCE,
            ..BatchMeta::default()
        },
        BatchMeta {
            producer_id: 77,
            producer_epoch: 1,
            base_sequence: 0,
            base_offset: 1 << 40,
            ..BatchMeta::default()
        },
    ] {
        let records = vec![rec(5, Some("k"), Some("v")), rec(6, None, Some("w"))];
        let mut buf = BytesMut::new();
        k_encode(meta, &records, &mut buf);
        let batch = RecordBatch::parse(buf.freeze()).unwrap();
        assert_header_matches(&batch, meta, &records);
        assert_records_match(&batch, meta, &records);
    }
}

/// (b) partlog encodes, kafka-protocol decodes (and checks the CRC).
#[test]
fn partlog_encoded_batches_decode_with_kafka_protocol() {
    let mut all = BytesMut::new();
    let mut expected = Vec::new();
    for (meta, records) in sample_batches() {
        let batch = p_encode(meta, &records);
        assert_header_matches(&batch, meta, &records);
        assert_eq!(batch.base_timestamp(), records[0].timestamp);

        let mut buf = batch.as_bytes().clone();
        let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes");
        assert!(buf.is_empty(), "kafka-protocol consumed the whole batch");
        assert_eq!(set.version, 2);
        assert_eq!(set.compression, KCompression::None);
        assert_eq!(set.records.len(), records.len());
        for (i, (k, want)) in set.records.iter().zip(&records).enumerate() {
            assert_eq!(k.offset, meta.base_offset + i as i64, "record {i}");
            assert_eq!(k.timestamp, want.timestamp, "record {i}");
            assert_eq!(k.key, want.key, "record {i}");
            assert_eq!(k.value, want.value, "record {i}");
            assert_eq!(headers_vec(&k.headers), want.headers, "record {i}");
            assert_eq!(k.partition_leader_epoch, meta.partition_leader_epoch);
            assert_eq!(k.producer_id, meta.producer_id);
            assert_eq!(k.producer_epoch, meta.producer_epoch);
            assert_eq!(k.sequence, meta.base_sequence.wrapping_add(i as i32));
            assert_eq!(k.transactional, meta.transactional);
            assert!(!k.control);
            assert_eq!(k.timestamp_type, KTimestampType::Creation);
        }
        expected.push((meta, records));
        all.extend_from_slice(batch.as_bytes());
    }

    // All at once, and the header-only view.
    let mut buf = all.clone().freeze();
    let sets = RecordBatchDecoder::decode_all(&mut buf).expect("kafka-protocol decodes all");
    assert_eq!(sets.len(), expected.len());
    let mut buf = all.clone().freeze();
    let infos = RecordBatchDecoder::decode_batch_info(&mut buf).unwrap();
    for (info, (meta, records)) in infos.iter().zip(&expected) {
        assert_eq!(info.record_count, records.len() as i32);
        assert_eq!(info.min_offset, meta.base_offset);
        assert_eq!(info.min_timestamp, records[0].timestamp); // the baseTimestamp field
        assert_eq!(info.base_sequence, meta.base_sequence);
        assert_eq!(info.partition_leader_epoch, meta.partition_leader_epoch);
        assert_eq!(info.producer_id, meta.producer_id);
        assert_eq!(info.producer_epoch, meta.producer_epoch);
        assert_eq!(info.transactional, meta.transactional);
        assert_eq!(info.version, MAGIC);
    }

    // kafka-protocol really checks the CRC: a flipped payload byte is rejected.
    let batch = p_encode(BatchMeta::default(), &[rec(1, Some("k"), Some("v"))]);
    let mut bad = batch.as_bytes().to_vec();
    *bad.last_mut().unwrap() ^= 0x01;
    assert!(RecordBatchDecoder::decode(&mut Bytes::from(bad)).is_err());
}

/// (b) Offsets and epochs patched outside the CRC after building are still accepted.
#[test]
fn patched_batches_decode_with_kafka_protocol() {
    let batch = p_encode(
        BatchMeta::default(),
        &[rec(1, Some("k"), Some("v")), rec(2, Some("k2"), None)],
    );
    let mut raw = batch.as_bytes().to_vec();
    set_base_offset(&mut raw, 1_000).unwrap();
    set_partition_leader_epoch(&mut raw, 12).unwrap();
    let set = RecordBatchDecoder::decode(&mut Bytes::from(raw.clone())).unwrap();
    assert_eq!(set.records[1].offset, 1_001);
    assert_eq!(set.records[1].partition_leader_epoch, 12);
    let batch = RecordBatch::parse(Bytes::from(raw)).unwrap();
    assert_eq!(batch.base_offset(), 1_000);
}

/// (c) Both encoders produce identical bytes when the first record is the earliest.
#[test]
fn identical_bytes_when_first_timestamp_is_smallest() {
    let mut compared = 0;
    for (meta, records) in sample_batches() {
        let min = records.iter().map(|r| r.timestamp).min().unwrap();
        if records[0].timestamp != min {
            continue;
        }
        let mut k = BytesMut::new();
        k_encode(meta, &records, &mut k);
        let p = p_encode(meta, &records);
        assert_eq!(
            p.as_bytes().as_ref(),
            k.as_ref(),
            "meta base offset {}",
            meta.base_offset
        );
        compared += 1;
    }
    assert_eq!(compared, 3);

    // A larger randomized-looking set: sizes cross the 1- and 2-byte varint boundaries.
    let records: Vec<SimpleRecord> = (0..2000i64)
        .map(|i| {
            let key = (i % 3 != 0).then(|| "k".repeat((i % 70) as usize));
            let value = (i % 5 != 0).then(|| "v".repeat(((i * 37) % 9000) as usize));
            let mut r = rec(
                1_000_000 + (i * 7919) % 100_000,
                key.as_deref(),
                value.as_deref(),
            );
            if i % 4 == 0 {
                r = r
                    .with_header("a", Some("x".repeat((i % 130) as usize)))
                    .with_header("b", None::<Bytes>);
            }
            r
        })
        .collect();
    let meta = BatchMeta {
        base_offset: 123_456_789,
        partition_leader_epoch: 2,
        producer_id: 5,
        producer_epoch: 3,
        base_sequence: 1_000,
        transactional: false,
        control: false,
    };
    let mut k = BytesMut::new();
    k_encode(meta, &records, &mut k);
    let p = p_encode(meta, &records);
    assert_eq!(p.as_bytes().len(), k.len());
    assert!(p.as_bytes().as_ref() == k.as_ref(), "bytes differ");
}

/// (c) When the first record is not the earliest the encoders legitimately differ in
/// `baseTimestamp` (first vs. smallest timestamp) and therefore in the timestamp deltas,
/// `batchLength` and CRC; everything else, and every decoded record, is equal.
#[test]
fn documented_difference_when_first_timestamp_is_not_smallest() {
    let (meta, records) = sample_batches().swap_remove(2);
    let min = records.iter().map(|r| r.timestamp).min().unwrap();
    assert_ne!(records[0].timestamp, min);

    let mut k = BytesMut::new();
    k_encode(meta, &records, &mut k);
    let k = RecordBatch::parse(k.freeze()).unwrap();
    let p = p_encode(meta, &records);

    assert_eq!(k.base_timestamp(), min);
    assert_eq!(p.base_timestamp(), records[0].timestamp);
    assert_ne!(p.as_bytes(), k.as_bytes());

    let (kh, ph) = (k.header(), p.header());
    let normalize = |h: &BatchHeader| BatchHeader {
        base_timestamp: 0,
        crc: 0,
        batch_length: 0,
        ..*h
    };
    assert_eq!(normalize(kh), normalize(ph));

    let kr: Vec<Record> = k.records().unwrap().map(Result::unwrap).collect();
    let pr: Vec<Record> = p.records().unwrap().map(Result::unwrap).collect();
    assert_eq!(kr, pr);
}

/// Whole segment files: batches encoded by kafka-protocol (as a Kafka producer would send them)
/// go through `Log::append_batch`; the resulting `.log` files, read raw from disk, decode with
/// kafka-protocol, CRCs valid, with the offsets the log assigned and the records equal; and
/// partlog's reads of them return the same bytes as the files.
#[test]
#[cfg_attr(miri, ignore)]
fn segment_files_decode_with_kafka_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let config = partlog::Config {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 128,
        ..partlog::Config::default()
    };
    let log = partlog::Log::open(dir.path(), config.clone()).unwrap();
    let mut expected: Vec<(i64, SimpleRecord)> = Vec::new();
    for round in 0..6 {
        for (meta, records) in sample_batches() {
            // kafka-protocol encodes the batch as a producer would (base offset 0).
            let mut out = BytesMut::new();
            // A producer per round: the same batch again would be a retry, answered as a
            // duplicate and not appended (issue 20).
            let meta = BatchMeta {
                base_offset: 0,
                producer_id: if meta.producer_id >= 0 {
                    meta.producer_id + 1000 * round
                } else {
                    meta.producer_id
                },
                ..meta
            };
            k_encode(meta, &records, &mut out);
            let produced = RecordBatch::parse(out.freeze()).unwrap();
            let info = log.append_batch(&produced).unwrap();
            assert!(!info.duplicate, "round {round}");
            assert_eq!(
                info.last_offset - info.first_offset + 1,
                records.len() as i64,
                "round {round}"
            );
            for (i, r) in records.iter().enumerate() {
                expected.push((info.first_offset + i as i64, r.clone()));
            }
        }
        // And partlog's own appends, in between.
        let own = vec![rec(1_000 + round, Some("own"), Some("record"))];
        let info = log.append(&own).unwrap();
        expected.push((info.first_offset, own[0].clone()));
    }
    assert!(
        log.segment_count() > 2,
        "the data spans several segment files"
    );
    let reads: Vec<Bytes> = {
        let mut v = Vec::new();
        let mut next = 0;
        while next < log.log_end_offset() {
            let r = log.read(next, 1 << 20).unwrap();
            v.push(r.bytes.clone());
            next = r.next_offset;
        }
        v
    };
    log.close().unwrap();

    // Every .log file, raw from disk, in offset order, through kafka-protocol's decoder.
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut decoded = Vec::new();
    let mut on_disk = Vec::new();
    for f in &files {
        let bytes = Bytes::from(std::fs::read(f).unwrap());
        on_disk.extend_from_slice(&bytes);
        let mut buf = bytes.clone();
        let sets = RecordBatchDecoder::decode_all(&mut buf)
            .expect("kafka-protocol decodes a segment file");
        assert!(buf.is_empty(), "{} holds only whole batches", f.display());
        for set in sets {
            decoded.extend(set.records);
        }
    }
    assert_eq!(decoded.len(), expected.len());
    for (k, (offset, want)) in decoded.iter().zip(&expected) {
        assert_eq!(k.offset, *offset);
        assert_eq!(k.timestamp, want.timestamp, "offset {offset}");
        assert_eq!(k.key, want.key, "offset {offset}");
        assert_eq!(k.value, want.value, "offset {offset}");
        assert_eq!(headers_vec(&k.headers), want.headers, "offset {offset}");
    }
    // What a read hands out is exactly what the files hold: the bytes of a Kafka fetch.
    let read_bytes: Vec<u8> = reads.iter().flat_map(|b| b.iter().copied()).collect();
    assert_eq!(read_bytes, on_disk);
    // And the reopened log reads the same.
    let log = partlog::Log::open(dir.path(), config).unwrap();
    assert_eq!(log.read(0, usize::MAX).unwrap().bytes, reads[0]);
}
