//! Validation of compressed batches on append (Kafka's broker-side log validator), and the
//! log's `compression.type`: which batches are kept as sent and which are re-encoded. Every test
//! appends to a real log on disk and reads the stored bytes back.

use bytes::Bytes;
use partlog::batch::compression::{compress, decompress};
use partlog::batch::{
    compute_crc, BatchBuilder, BatchError, BorrowedRecord, Compression, CompressionLevel,
    RecordBatch, SimpleRecord, HEADER_SIZE,
};
use partlog::config::CompressionType;
use partlog::log::AppendOrigin;
use partlog::{Config, Error, Log};

/// An uncompressed batch of `n` small records (timestamps all 1000: one-byte deltas).
fn plain(n: usize) -> RecordBatch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.push(&SimpleRecord::new(
            1000,
            Some(format!("k{i}")),
            Some(format!("v{i}")),
        ))
        .unwrap();
    }
    b.build().unwrap()
}

/// `header` (61 bytes) and `records` made into one batch in `codec`: codec bits, length and CRC
/// set, the rest of the header kept.
fn seal(header: &[u8], records: &[u8], codec: Compression) -> RecordBatch {
    let mut out = header[..HEADER_SIZE].to_vec();
    if codec == Compression::None {
        out.extend_from_slice(records);
    } else {
        compress(
            codec,
            CompressionLevel::default_for(codec),
            records,
            &mut out,
        )
        .unwrap();
    }
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let attrs = i16::from_be_bytes([out[21], out[22]]);
    let attrs = (attrs & !7) | i16::from(codec.codec());
    out[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    RecordBatch::parse_crc_only(Bytes::from(out)).unwrap()
}

/// `batch` (uncompressed) with its records compressed in `codec`.
fn compressed(batch: &RecordBatch, codec: Compression) -> RecordBatch {
    let b = batch.as_bytes();
    seal(&b[..HEADER_SIZE], &b[HEADER_SIZE..], codec)
}

/// The records section of a stored batch, inflated if it is compressed.
fn records_of(batch: &RecordBatch) -> Vec<u8> {
    let body = &batch.as_bytes()[HEADER_SIZE..];
    match batch.compression() {
        Compression::None => body.to_vec(),
        c => {
            let mut out = Vec::new();
            decompress(c, body, 1 << 30, &mut out).unwrap();
            out
        }
    }
}

fn open(dir: &tempfile::TempDir, config: Config) -> Log {
    Log::open(dir.path().join("log"), config).unwrap()
}

fn with_type(t: CompressionType) -> Config {
    Config {
        compression_type: t,
        ..Config::default()
    }
}

fn stored(log: &Log) -> Vec<RecordBatch> {
    log.read(0, 64 << 20).unwrap().batches
}

fn expect_refused(r: partlog::Result<partlog::log::AppendInfo>) -> BatchError {
    match r {
        Err(Error::InvalidRecords { source, .. }) => source,
        other => panic!("expected InvalidRecords, got {other:?}"),
    }
}

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn compressed_batch_declaring_more_records_than_it_holds_is_refused() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, Config::default());
        // Two records, a header that says three (offset range 0..=2 agrees with it).
        let two = plain(2);
        let mut header = two.as_bytes()[..HEADER_SIZE].to_vec();
        header[23..27].copy_from_slice(&2i32.to_be_bytes());
        header[57..61].copy_from_slice(&3i32.to_be_bytes());
        let bad = seal(&header, &two.as_bytes()[HEADER_SIZE..], codec);
        let e = expect_refused(log.append_batch(&bad));
        assert!(
            matches!(
                e,
                BatchError::RecordCountMismatch {
                    declared: 3,
                    found: 2
                }
            ),
            "{codec}: {e:?}"
        );
        assert_eq!(log.log_end_offset(), 0, "{codec}: nothing written");
    }
}

#[test]
fn compressed_batch_whose_count_differs_from_its_offset_range_is_refused() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, Config::default());
        // Two records (deltas 0, 1) in an offset range of three: a compacted batch's shape,
        // which Kafka refuses from a client.
        let two = plain(2);
        let mut header = two.as_bytes()[..HEADER_SIZE].to_vec();
        header[23..27].copy_from_slice(&2i32.to_be_bytes());
        let bad = seal(&header, &two.as_bytes()[HEADER_SIZE..], codec);
        let e = expect_refused(log.append_batch(&bad));
        assert!(
            matches!(
                e,
                BatchError::InvalidRecordCount {
                    record_count: 2,
                    last_offset_delta: 2
                }
            ),
            "{codec}: {e:?}"
        );
        assert_eq!(log.log_end_offset(), 0);
    }
}

#[test]
fn compressed_batch_with_offset_deltas_out_of_order_is_refused() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, Config::default());
        let two = plain(2);
        let mut records = two.as_bytes()[HEADER_SIZE..].to_vec();
        // Record 0: length varint (1 byte) + its body; record 1's offsetDelta lies after its
        // length (1), attributes (1) and timestampDelta (1, zero): zigzag(1) = 2 -> zigzag(0).
        let second = 1 + (records[0] as usize >> 1);
        assert_eq!(records[second + 3], 2);
        records[second + 3] = 0;
        let bad = seal(&two.as_bytes()[..HEADER_SIZE], &records, codec);
        let e = expect_refused(log.append_batch(&bad));
        assert!(
            matches!(e, BatchError::BadRecord { index: 1, .. }),
            "{codec}: {e:?}"
        );
        assert_eq!(log.log_end_offset(), 0);
    }
}

#[test]
fn compressed_stream_that_does_not_decode_is_refused() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, Config::default());
        let good = compressed(&plain(3), codec);
        let b = good.as_bytes();
        // Keep the first bytes of the stream (its magic/header), then garbage.
        let cut = HEADER_SIZE + (b.len() - HEADER_SIZE) / 2;
        let mut body = b[HEADER_SIZE..cut].to_vec();
        body.extend_from_slice(&[0xA5; 40]);
        let mut out = b[..HEADER_SIZE].to_vec();
        out.extend_from_slice(&body);
        let len = (out.len() - 12) as i32;
        out[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = compute_crc(&out);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        let bad = RecordBatch::parse_crc_only(Bytes::from(out)).unwrap();
        let e = expect_refused(log.append_batch(&bad));
        assert!(
            matches!(
                e,
                BatchError::BadCompressedData { .. }
                    | BatchError::BadRecord { .. }
                    | BatchError::RecordCountMismatch { .. }
                    | BatchError::TrailingBytes { .. }
            ),
            "{codec}: {e:?}"
        );
        assert_eq!(log.log_end_offset(), 0);
    }
}

/// One record whose value is `size` zero bytes, compressed: a few KiB that inflate to `size`.
fn bomb(codec: Compression, size: usize) -> RecordBatch {
    let zeros = vec![0u8; size];
    let mut b = BatchBuilder::new();
    b.push(&SimpleRecord::new(
        1000,
        None::<Bytes>,
        Some(Bytes::from(zeros)),
    ))
    .unwrap();
    compressed(&b.build().unwrap(), codec)
}

#[test]
fn decompression_bomb_is_refused_once_past_the_bound() {
    let config = Config {
        max_batch_bytes: 1 << 20,
        max_decompressed_batch_bytes: 2 << 20,
        ..Config::default()
    };
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, config.clone());
        let b = bomb(codec, 8 << 20);
        assert!(
            b.size() < 1 << 20,
            "{codec}: the bomb itself fits ({})",
            b.size()
        );
        let e = expect_refused(log.append_batch(&b));
        assert!(
            matches!(e, BatchError::DecompressedTooLarge { max, .. } if max == 2 << 20),
            "{codec}: {e:?}"
        );
        assert_eq!(log.log_end_offset(), 0);
        // Just under the bound: accepted.
        let ok = bomb(codec, (2 << 20) - 200);
        log.append_batch(&ok).unwrap();
        assert_eq!(log.log_end_offset(), 1);
    }
}

#[test]
fn follower_takes_a_compressed_batch_as_the_leader_wrote_it() {
    let config = Config {
        max_batch_bytes: 1 << 20,
        max_decompressed_batch_bytes: 2 << 20,
        compression_type: CompressionType::Codec(Compression::Zstd),
        ..Config::default()
    };
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, config.clone());
        // A bomb and a batch whose count disagrees with its records: both refused from a
        // client, both copied by a follower byte for byte (header, length and CRC only), and
        // never recompressed.
        let two = plain(2);
        let mut header = two.as_bytes()[..HEADER_SIZE].to_vec();
        header[23..27].copy_from_slice(&2i32.to_be_bytes());
        header[57..61].copy_from_slice(&3i32.to_be_bytes());
        let miscounted = seal(&header, &two.as_bytes()[HEADER_SIZE..], codec);
        let b = bomb(codec, 8 << 20);
        assert!(log.append_batch(&b).is_err());
        log.append_batches(&b, AppendOrigin::Follower).unwrap();
        let mut next = miscounted.as_bytes().to_vec();
        next[..8].copy_from_slice(&1i64.to_be_bytes());
        let next = RecordBatch::parse_crc_only(Bytes::from(next)).unwrap();
        log.append_batches(&next, AppendOrigin::Follower).unwrap();
        let got = stored(&log);
        assert_eq!(got[0].as_bytes(), b.as_bytes(), "{codec}");
        assert_eq!(got[1].as_bytes(), next.as_bytes(), "{codec}");
        assert_eq!(log.log_end_offset(), 4);
    }
}

#[test]
fn producer_keeps_every_codec_as_sent() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, Config::default());
        log.append(&[SimpleRecord::new(1, Some("a"), Some("b"))])
            .unwrap();
        let b = compressed(&plain(5), codec);
        let info = log.append_batch(&b).unwrap();
        assert_eq!((info.first_offset, info.last_offset), (1, 5));
        let got = &stored(&log)[1];
        // Only the base offset (outside the CRC) differs.
        assert_eq!(got.as_bytes()[8..], b.as_bytes()[8..], "{codec}");
        assert_eq!(got.compression(), codec);
    }
}

#[test]
fn batch_in_the_configured_codec_is_kept_at_any_level() {
    let config = Config {
        compression_type: CompressionType::Codec(Compression::Zstd),
        compression_zstd_level: 19,
        ..Config::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, config);
    // Compressed at level 3 by its producer; the log's level 19 does not matter (Kafka's rule).
    let b = compressed(&plain(50), Compression::Zstd);
    log.append_batch(&b).unwrap();
    assert_eq!(stored(&log)[0].as_bytes()[8..], b.as_bytes()[8..]);
}

#[test]
fn batch_in_another_codec_is_recompressed_to_the_configured_one() {
    for source in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        for target in CODECS {
            let dir = tempfile::tempdir().unwrap();
            let log = open(&dir, with_type(CompressionType::Codec(target)));
            let raw = plain(20);
            let sent = if source == Compression::None {
                raw.clone()
            } else {
                compressed(&raw, source)
            };
            log.append(&[SimpleRecord::new(1, Some("a"), Some("b"))])
                .unwrap();
            let info = log.append_batch(&sent).unwrap();
            assert_eq!((info.first_offset, info.last_offset), (1, 20));
            let got = &stored(&log)[1];
            assert_eq!(got.compression(), target, "{source} -> {target}");
            got.verify_crc().unwrap();
            assert_eq!(got.base_offset(), 1);
            assert_eq!(got.header().last_offset_delta, 19);
            assert_eq!(got.max_timestamp(), raw.max_timestamp());
            assert_eq!(records_of(got), records_of(&raw), "{source} -> {target}");
            if source == target {
                assert_eq!(got.as_bytes()[8..], sent.as_bytes()[8..]);
            }
        }
    }
}

#[test]
fn uncompressed_type_stores_compressed_batches_uncompressed() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, with_type(CompressionType::Uncompressed));
        let raw = plain(7);
        log.append_batch(&compressed(&raw, codec)).unwrap();
        let got = &stored(&log)[0];
        assert_eq!(got.compression(), Compression::None);
        assert_eq!(
            got.as_bytes()[8..],
            raw.as_bytes()[8..],
            "{codec}: the original batch"
        );
        let keys: Vec<_> = got.records().unwrap().map(|r| r.unwrap().key).collect();
        assert_eq!(keys.len(), 7);
    }
}

#[test]
fn appended_records_are_written_in_the_configured_codec() {
    for codec in CODECS {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, with_type(CompressionType::Codec(codec)));
        log.append(&[SimpleRecord::new(1000, Some("k0"), Some("v0"))])
            .unwrap();
        log.append_records(&[BorrowedRecord::new(
            1000,
            Some(&b"k1"[..]),
            Some(&b"v1"[..]),
        )])
        .unwrap();
        let got = stored(&log);
        assert_eq!(got.len(), 2);
        for b in &got {
            assert_eq!(b.compression(), codec);
            b.verify_crc().unwrap();
        }
        assert_eq!(log.log_end_offset(), 2);
        // The records are what an uncompressed append would have written.
        let dir2 = tempfile::tempdir().unwrap();
        let plain_log = open(&dir2, Config::default());
        plain_log
            .append(&[SimpleRecord::new(1000, Some("k0"), Some("v0"))])
            .unwrap();
        assert_eq!(records_of(&got[0]), records_of(&stored(&plain_log)[0]));
    }
}

#[test]
fn uncompressed_control_batch_stays_uncompressed() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, with_type(CompressionType::Codec(Compression::Gzip)));
    let raw = plain(1);
    let mut header = raw.as_bytes()[..HEADER_SIZE].to_vec();
    let attrs = i16::from_be_bytes([header[21], header[22]]) | 0x30; // control + transactional
    header[21..23].copy_from_slice(&attrs.to_be_bytes());
    let control = seal(&header, &raw.as_bytes()[HEADER_SIZE..], Compression::None);
    // Only a coordinator appends control batches (a client's or leader's is refused, issue 20).
    log.append_batches(
        &control,
        AppendOrigin::Coordinator {
            leader_epoch: Some(0),
        },
    )
    .unwrap();
    assert_eq!(stored(&log)[0].compression(), Compression::None);
}

#[test]
fn recompressed_batch_must_still_fit_max_batch_bytes() {
    // Incompressible values: gzip makes them a little larger than uncompressed.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = vec![0u8; 6000];
    for byte in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *byte = x as u8;
    }
    let mut b = BatchBuilder::new();
    b.push(&SimpleRecord::new(
        1000,
        None::<Bytes>,
        Some(Bytes::from(noise)),
    ))
    .unwrap();
    let raw = b.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = open(
        &dir,
        Config {
            max_batch_bytes: raw.size() as u32,
            compression_type: CompressionType::Codec(Compression::Gzip),
            ..Config::default()
        },
    );
    match log.append_batch(&raw) {
        Err(Error::BatchTooLarge { size, max }) => assert!(size > max && max == raw.size()),
        other => panic!("{other:?}"),
    }
    assert_eq!(log.log_end_offset(), 0);
}

/// A leader whose log has `compression.type` zstd writes every produced batch in zstd (its
/// epoch stamped outside the CRC); its followers copy those batches byte for byte (never
/// re-encoded), and a producer's lz4 batch appended on the leader is stored re-encoded.
#[test]
fn replicas_copy_the_batches_their_leader_compressed() {
    use partlog::replica::{Acks, ReplicaSet, ReplicaSetConfig, TrackerConfig};
    let dir = tempfile::tempdir().unwrap();
    let config = ReplicaSetConfig {
        log: with_type(CompressionType::Codec(Compression::Zstd)),
        tracker: TrackerConfig {
            min_insync_replicas: 2,
            ..TrackerConfig::default()
        },
        ..ReplicaSetConfig::new("rides", 0, 3)
    };
    let mut set = ReplicaSet::open(dir.path(), config, 0).unwrap();
    for i in 0..10 {
        let records: Vec<SimpleRecord> = (0..20)
            .map(|j| {
                SimpleRecord::new(
                    1000 + j,
                    Some(format!("v{}", j % 2)),
                    Some(format!("ride {i}.{j}")),
                )
            })
            .collect();
        assert!(set.produce(&records, Acks::All, 10).unwrap().acknowledged);
    }
    let leader = set.leader().unwrap();
    set.replica(leader)
        .unwrap()
        .append_as_leader(&compressed(&plain(5), Compression::Lz4), 10)
        .unwrap();
    set.replicate(20).unwrap();
    let read = |id| set.replica(id).unwrap().log().read(0, 1 << 20).unwrap();
    let lead = read(leader);
    assert_eq!(lead.batches.len(), 11);
    for b in &lead.batches {
        assert_eq!(b.compression(), Compression::Zstd);
        assert_eq!(b.partition_leader_epoch(), 1);
        b.verify_crc().unwrap();
    }
    assert_eq!(records_of(&lead.batches[10]), records_of(&plain(5)));
    for id in set.replica_ids() {
        assert_eq!(read(id).bytes, lead.bytes, "replica {id}");
    }
}

/// A batch of records stamped 1000..1000+n-1 whose header claims `claimed` as its largest
/// timestamp (CRC made right), uncompressed or in `codec`.
fn claiming_max_timestamp(n: usize, claimed: i64, codec: Compression) -> RecordBatch {
    let mut b = BatchBuilder::new();
    for i in 0..n {
        b.push(&SimpleRecord::new(
            1000 + i as i64,
            Some(format!("k{i}")),
            Some(format!("v{i}")),
        ))
        .unwrap();
    }
    let good = b.build().unwrap();
    let mut header = good.as_bytes()[..HEADER_SIZE].to_vec();
    header[35..43].copy_from_slice(&claimed.to_be_bytes());
    seal(&header, &good.as_bytes()[HEADER_SIZE..], codec)
}

/// Kafka's validator sets a client batch's `maxTimestamp` to the largest timestamp of its
/// records (`setMaxTimestamp`, CRC recomputed), kept as sent or re-encoded alike: a header that
/// claims a year 2286 timestamp must not hold the segment back from time retention or steer time
/// lookups. A follower's batch is the leader's, kept byte for byte.
#[test]
fn a_client_batch_claiming_a_wrong_max_timestamp_is_stored_with_its_records_true_one() {
    let lie = 10_000_000_000_000;
    for (codec, t) in [
        (Compression::None, CompressionType::Producer),
        (Compression::Lz4, CompressionType::Producer),
        (Compression::Gzip, CompressionType::Codec(Compression::Zstd)),
        (Compression::Snappy, CompressionType::Uncompressed),
        (Compression::None, CompressionType::Codec(Compression::Lz4)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(&dir, with_type(t));
        let info = log
            .append_batch(&claiming_max_timestamp(5, lie, codec))
            .unwrap();
        assert_eq!(info.max_timestamp, 1004, "{codec} into {t}");
        let kept = stored(&log);
        assert_eq!(kept[0].max_timestamp(), 1004, "{codec} into {t}");
        RecordBatch::parse(kept[0].as_bytes().clone()).expect("the CRC covers the new field");
        assert_eq!(log.offset_for_timestamp(1003).unwrap(), Some(3));
        assert_eq!(log.offset_for_timestamp(1005).unwrap(), None);
        // Smaller than the records' largest: raised to it.
        let info = log
            .append_batch(&claiming_max_timestamp(3, 0, codec))
            .unwrap();
        assert_eq!(info.max_timestamp, 1002, "{codec} into {t}");
    }
    // A follower keeps the leader's bytes.
    let dir = tempfile::tempdir().unwrap();
    let log = open(&dir, Config::default());
    let sent = claiming_max_timestamp(5, lie, Compression::Lz4);
    log.append_batches(&sent, AppendOrigin::Follower).unwrap();
    assert_eq!(stored(&log)[0].as_bytes(), sent.as_bytes());
}
