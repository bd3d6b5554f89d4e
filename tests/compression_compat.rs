//! Compressed batches against an independent Kafka codec (the `kafka-protocol` crate, whose
//! lz4 is the C liblz4 frame encoder (`lz4` crate), snappy its own xerial framing over `snap`,
//! gzip `flate2` and zstd the `zstd` crate): its batches in each codec decode in partlog,
//! record for record, and partlog's decode in it.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KTimestampType,
};
use partlog::batch::{BatchBuilder, Compression, CompressionLevel, RecordBatch, SimpleRecord};

const CODECS: [(Compression, KCompression); 5] = [
    (Compression::None, KCompression::None),
    (Compression::Gzip, KCompression::Gzip),
    (Compression::Snappy, KCompression::Snappy),
    (Compression::Lz4, KCompression::Lz4),
    (Compression::Zstd, KCompression::Zstd),
];

/// Records that compress (repeated keys and words) and span several codec blocks (> 64 KiB).
fn records(n: usize) -> Vec<SimpleRecord> {
    (0..n)
        .map(|i| {
            let value = format!(
                "ride {i}: vendor {} fare {}.{:02} {}",
                i % 3,
                i % 90,
                i % 100,
                "lorem ipsum ".repeat(i % 20)
            );
            let key = (i % 5 != 4).then(|| format!("vendor-{}", i % 3));
            let mut r = SimpleRecord::new(1_700_000_000_000 + i as i64, key, Some(value));
            if i % 7 == 0 {
                r = r.with_header("trace", Some(format!("{i:08x}")));
            }
            r
        })
        .collect()
}

fn k_encode(codec: KCompression, base_offset: i64, records: &[SimpleRecord]) -> Bytes {
    let krecords: Vec<KRecord> = records
        .iter()
        .enumerate()
        .map(|(i, r)| KRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 7,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: KTimestampType::Creation,
            offset: base_offset + i as i64,
            sequence: -1 + i as i32,
            timestamp: r.timestamp,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r
                .headers
                .iter()
                .map(|h| (StrBytes::from_utf8(h.key.clone()).unwrap(), h.value.clone()))
                .collect::<IndexMap<_, _>>(),
        })
        .collect();
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        &krecords,
        &RecordEncodeOptions {
            version: 2,
            compression: codec,
        },
    )
    .expect("kafka-protocol encodes");
    out.freeze()
}

#[test]
fn kafka_protocol_batches_in_every_codec_decode_in_partlog() {
    let want = records(2_000);
    let mut scratch = Vec::new();
    for (codec, kcodec) in CODECS {
        let bytes = k_encode(kcodec, 500, &want);
        let batch = RecordBatch::parse(bytes).expect("partlog parses");
        batch
            .validate_records()
            .expect("partlog validates the records");
        assert_eq!(batch.compression(), codec);
        assert_eq!(batch.record_count(), 2_000);
        assert_eq!(batch.partition_leader_epoch(), 7);
        let got: Vec<_> = batch.records().unwrap().map(Result::unwrap).collect();
        assert_eq!(got.len(), want.len(), "{codec}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.offset, 500 + i as i64, "{codec} record {i}");
            assert_eq!(
                (g.timestamp, &g.key, &g.value),
                (w.timestamp, &w.key, &w.value)
            );
            assert_eq!(g.headers, w.headers, "{codec} record {i}");
        }
        let fresh = RecordBatch::parse_crc_only(batch.as_bytes().clone()).unwrap();
        for (v, g) in fresh.record_views_in(&mut scratch).unwrap().zip(&got) {
            assert_eq!(v.unwrap(), *g);
        }
        assert_eq!(batch.record_at(1_999).unwrap().unwrap(), got[1_499]);
    }
}

#[test]
fn partlog_batches_in_every_codec_and_level_decode_in_kafka_protocol() {
    let want = records(2_000);
    let mut levels: Vec<CompressionLevel> = CODECS
        .iter()
        .map(|(c, _)| CompressionLevel::default_for(*c))
        .collect();
    for (c, l) in [
        (Compression::Gzip, 1),
        (Compression::Gzip, 9),
        (Compression::Lz4, 1),
        (Compression::Lz4, 17),
        (Compression::Zstd, -5),
        (Compression::Zstd, 12),
    ] {
        levels.push(CompressionLevel::new(c, l).unwrap());
    }
    for level in levels {
        let codec = level.codec();
        let mut b = BatchBuilder::new().base_offset(42).compression_level(level);
        for r in &want {
            b.push(r).unwrap();
        }
        let batch = b.build().unwrap();
        let mut buf = batch.as_bytes().clone();
        let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decodes");
        assert!(buf.is_empty());
        let kcodec = CODECS.iter().find(|(c, _)| *c == codec).unwrap().1;
        assert_eq!(set.compression, kcodec, "{codec} level {}", level.get());
        assert_eq!(set.records.len(), want.len());
        for (i, (k, w)) in set.records.iter().zip(&want).enumerate() {
            assert_eq!(k.offset, 42 + i as i64);
            assert_eq!(
                (k.timestamp, &k.key, &k.value),
                (w.timestamp, &w.key, &w.value)
            );
            assert_eq!(k.headers.len(), w.headers.len(), "{codec} record {i}");
        }
    }
}
