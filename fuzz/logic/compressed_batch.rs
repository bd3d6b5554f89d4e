//! `compressed_batch`: the four codecs and the compressed-batch readers under hostile input.
//!
//! Input: byte 0 picks the codec (gzip, snappy, lz4, zstd) and the mode, bytes 1-2 the
//! decompression bound (0..=65535 bytes), the rest is mode data:
//!
//! * mode 0, a hostile stream: the rest is handed to `compression::decompress` as it is;
//! * mode 1, a damaged stream: the rest is records' bytes, compressed at a level from the
//!   input, round-tripped (must give the input back), then damaged (bytes flipped, cut,
//!   spliced at positions from the input) and decompressed again;
//! * mode 2, a compressed batch: records built from the rest with `BatchBuilder` in the codec
//!   must read back through `records()`, `record_views()`, `record_views_in()` and `record_at()`;
//!   then the batch's records section is damaged (CRC fixed up so the damage reaches the
//!   codec) and every reader must agree: records that decode, or the same typed error;
//! * mode 3, a bomb: a run of up to 256 KiB of one byte, compressed, decompressed under a bound
//!   below its size.
//!
//! Asserted for every call: no panic; `Ok` output at most the bound; `Err` is
//! `BadCompressedData` or `DecompressedTooLarge` naming the codec; the output vector's
//! capacity never passes what was in it plus the bound (nothing allocated past the bound).

use bytes::Bytes;
use partlog::batch::compression::{compress, decompress};
use partlog::batch::{
    BatchBuilder, BatchError, Compression, CompressionLevel, RecordBatch, SimpleRecord,
};

use super::Input;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// Decompresses `stream` under `max` into a vector holding `prefix` bytes already, checking the
/// bound, the capacity and the error's type; the output on success.
fn bounded(codec: Compression, stream: &[u8], max: usize, prefix: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(prefix);
    out.resize(prefix, 7);
    let r = decompress(codec, stream, max, &mut out);
    assert!(
        out.capacity() <= prefix + max,
        "{codec}: capacity {} past the bound {max} (+{prefix})",
        out.capacity()
    );
    assert!(
        out[..prefix].iter().all(|&b| b == 7),
        "{codec}: bytes before kept"
    );
    match r {
        Ok(()) => {
            assert!(out.len() - prefix <= max, "{codec}: output past the bound");
            Some(out.split_off(prefix))
        }
        Err(BatchError::BadCompressedData { codec: c, .. }) => {
            assert_eq!(c, codec.codec());
            None
        }
        Err(BatchError::DecompressedTooLarge { codec: c, max: m }) => {
            assert_eq!((c, m), (codec.codec(), max));
            None
        }
        Err(e) => panic!("{codec}: untyped error {e:?}"),
    }
}

fn level(codec: Compression, input: &mut Input) -> CompressionLevel {
    let n = i32::from(input.u8());
    let l = match codec {
        Compression::Gzip => [-1, 1, 5, 9][(n % 4) as usize],
        Compression::Lz4 => 1 + n % 17,
        Compression::Zstd => [-50, -1, 1, 3, 6][(n % 5) as usize],
        _ => 0,
    };
    CompressionLevel::new(codec, l).expect("level in range")
}

/// Damages `stream` as the input says: flips, a cut, a splice of a copy of itself.
fn damage(stream: &mut Vec<u8>, input: &mut Input) {
    for _ in 0..1 + input.below(3) {
        if stream.is_empty() {
            return;
        }
        let at = input.below(stream.len() as u64) as usize;
        match input.u8() % 4 {
            0 | 1 => stream[at] ^= input.u8() | 1,
            2 => stream.truncate(at),
            _ => {
                let copy = stream[at..].to_vec();
                let to = input.below(stream.len() as u64 + 1) as usize;
                stream.splice(to..to, copy);
            }
        }
    }
}

fn records(input: &mut Input) -> Vec<SimpleRecord> {
    let n = 1 + input.below(40) as usize;
    (0..n)
        .map(|i| {
            let len = input.below(300) as usize;
            let fill = input.u8();
            let value: Vec<u8> = (0..len).map(|j| fill.wrapping_add((j % 5) as u8)).collect();
            let key = (!input.u8().is_multiple_of(3)).then(|| format!("k{}", i % 4));
            SimpleRecord::new(1_000 + i as i64, key, Some(value))
        })
        .collect()
}

/// Every reader of `batch` agrees: the same records or the same error.
fn readers_agree(batch: &RecordBatch) -> Option<Vec<partlog::batch::Record>> {
    let owned = batch.records().map(|it| it.collect::<Result<Vec<_>, _>>());
    let mut scratch = vec![1, 2, 3];
    let fresh = RecordBatch::parse_crc_only(batch.as_bytes().clone()).expect("CRC fixed");
    let views = fresh.record_views_in(&mut scratch).map(|it| {
        it.map(|r| r.map(|v| v.to_record()))
            .collect::<Result<Vec<_>, _>>()
    });
    let cached = batch.record_views().map(|it| {
        it.map(|r| r.map(|v| v.to_record()))
            .collect::<Result<Vec<_>, _>>()
    });
    assert_eq!(owned, views, "records() vs record_views_in()");
    assert_eq!(owned, cached, "records() vs record_views()");
    let parsed = fresh.validate_records();
    match owned {
        Ok(Ok(records)) => {
            assert!(
                parsed.is_ok(),
                "validate_records refuses what the readers read"
            );
            for r in records.iter().take(4) {
                assert!(batch.record_at(r.offset).expect("valid").expect("found") == *r);
            }
            Some(records)
        }
        Ok(Err(e)) | Err(e) => {
            assert_eq!(
                parsed,
                Err(e.clone()),
                "validate_records and the readers differ"
            );
            assert!(
                !matches!(e, BatchError::UnsupportedCompression { .. }),
                "codecs 1-4 are supported"
            );
            None
        }
    }
}

pub fn run(data: &[u8]) {
    let mut input = Input::new(data);
    let first = input.u8();
    let codec = CODECS[usize::from(first % 4)];
    let max = usize::from(input.u16());
    let prefix = usize::from(first >> 6);
    match (first >> 2) % 4 {
        0 => {
            let rest = input.rest();
            bounded(codec, rest, max, prefix);
        }
        1 => {
            let level = level(codec, &mut input);
            let n = input.below(4096) as usize;
            let plain = input.take(n).to_vec();
            let mut stream = Vec::new();
            compress(codec, level, &plain, &mut stream).expect("compress");
            let back = bounded(codec, &stream, plain.len(), 0).expect("round trip");
            assert_eq!(back, plain, "{codec}: round trip");
            if !plain.is_empty() {
                assert!(bounded(codec, &stream, plain.len() - 1, prefix).is_none());
            }
            damage(&mut stream, &mut input);
            bounded(codec, &stream, max, prefix);
        }
        2 => {
            let level = level(codec, &mut input);
            let want = records(&mut input);
            let mut b = BatchBuilder::new().base_offset(10).compression_level(level);
            for r in &want {
                b.push(r).expect("push");
            }
            let batch = b.build().expect("build");
            assert_eq!(batch.compression(), codec);
            let got = readers_agree(&batch).expect("a built batch reads");
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(
                    (&g.key, &g.value, g.timestamp),
                    (&w.key, &w.value, w.timestamp)
                );
            }
            let mut bytes = batch.as_bytes().to_vec();
            let mut section = bytes.split_off(61);
            damage(&mut section, &mut input);
            bytes.extend_from_slice(&section);
            let len = i32::try_from(bytes.len() - 12).expect("small");
            bytes[8..12].copy_from_slice(&len.to_be_bytes());
            super::fix_crc(&mut bytes);
            if let Ok(damaged) = RecordBatch::parse_crc_only(Bytes::from(bytes)) {
                readers_agree(&damaged);
                match damaged.decompressed_with_limit(max) {
                    Ok(d) => assert!(d.size() <= 61 + max),
                    Err(BatchError::BadCompressedData { .. })
                    | Err(BatchError::DecompressedTooLarge { .. }) => {}
                    Err(e) => panic!("decompressed_with_limit: {e:?}"),
                }
            }
        }
        _ => {
            let size = 1 + input.below(256 * 1024) as usize;
            let plain = vec![input.u8(); size];
            let mut stream = Vec::new();
            compress(codec, level(codec, &mut input), &plain, &mut stream).expect("compress");
            let bound = max.min(size - 1);
            assert!(
                bounded(codec, &stream, bound, prefix).is_none(),
                "{codec}: bomb passed"
            );
        }
    }
}
