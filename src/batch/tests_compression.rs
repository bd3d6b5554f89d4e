//! The codecs alone: round trips, Kafka's framing, bounds, damaged streams.

use super::compression::{compress, decompress};
use super::{BatchError, Compression, CompressionLevel};

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn sample(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
        .collect()
}

fn packed(codec: Compression, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compress(codec, CompressionLevel::default_for(codec), input, &mut out).unwrap();
    out
}

#[test]
fn every_codec_round_trips_empty_small_and_multi_block_inputs() {
    for codec in CODECS {
        for n in [0, 1, 100, 32 * 1024, 32 * 1024 + 1, 200_000] {
            let input = sample(n);
            let mut out = vec![9, 9];
            decompress(codec, &packed(codec, &input), n, &mut out).unwrap();
            assert_eq!(&out[..2], &[9, 9], "{codec}: existing bytes kept");
            assert_eq!(&out[2..], &input[..], "{codec} {n}");
        }
    }
}

#[test]
fn every_level_in_range_compresses_and_out_of_range_is_refused() {
    let input = sample(10_000);
    for (codec, levels) in [
        (Compression::Gzip, vec![-1, 1, 9]),
        (Compression::Lz4, vec![1, 9, 17]),
        (Compression::Zstd, vec![-131072, -5, 1, 3, 22]),
    ] {
        for l in levels {
            let mut out = Vec::new();
            compress(
                codec,
                CompressionLevel::new(codec, l).unwrap(),
                &input,
                &mut out,
            )
            .unwrap();
            let mut back = Vec::new();
            decompress(codec, &out, input.len(), &mut back).unwrap();
            assert_eq!(back, input, "{codec} level {l}");
        }
    }
    for (codec, l) in [
        (Compression::Gzip, 0),
        (Compression::Gzip, 10),
        (Compression::Lz4, 0),
        (Compression::Lz4, 18),
        (Compression::Zstd, 23),
        (Compression::Zstd, -131073),
        (Compression::Snappy, 1),
    ] {
        assert_eq!(
            CompressionLevel::new(codec, l),
            Err(BatchError::InvalidCompressionLevel {
                codec: codec.codec(),
                level: l
            })
        );
    }
    assert_eq!(CompressionLevel::default_for(Compression::Gzip).get(), -1);
    assert_eq!(CompressionLevel::default_for(Compression::Lz4).get(), 9);
    assert_eq!(CompressionLevel::default_for(Compression::Zstd).get(), 3);
}

#[test]
fn names_and_ids_are_kafkas() {
    for (c, name, id) in [
        (Compression::None, "none", 0),
        (Compression::Gzip, "gzip", 1),
        (Compression::Snappy, "snappy", 2),
        (Compression::Lz4, "lz4", 3),
        (Compression::Zstd, "zstd", 4),
    ] {
        assert_eq!(c.to_string(), name);
        assert_eq!(name.parse::<Compression>(), Ok(c));
        assert_eq!(c.id(), id);
        assert_eq!(Compression::from_attributes(0x30 | i16::from(id)), Some(c));
    }
    assert!("LZ4".parse::<Compression>().is_err());
    assert_eq!(Compression::from_attributes(5), None);
}

#[test]
fn snappy_is_written_in_xerial_framing_with_32k_blocks() {
    let input = sample(70_000);
    let out = packed(Compression::Snappy, &input);
    assert_eq!(
        &out[..16],
        b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
    );
    // Three blocks: 32 KiB, 32 KiB, the rest, each a BE length and a raw block.
    let mut p = 16;
    let mut sizes = Vec::new();
    while p < out.len() {
        let n = u32::from_be_bytes(out[p..p + 4].try_into().unwrap()) as usize;
        sizes.push(snap::raw::decompress_len(&out[p + 4..p + 4 + n]).unwrap());
        p += 4 + n;
    }
    assert_eq!(sizes, vec![32768, 32768, 70_000 - 65536]);
}

#[test]
fn plain_snappy_blocks_and_repeated_xerial_headers_are_read() {
    let input = sample(5_000);
    let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
    let mut out = Vec::new();
    decompress(Compression::Snappy, &raw, input.len(), &mut out).unwrap();
    assert_eq!(out, input);
    let tiny = snap::raw::Encoder::new().compress_vec(b"ab").unwrap();
    out.clear();
    decompress(Compression::Snappy, &tiny, 2, &mut out).unwrap();
    assert_eq!(out, b"ab");
    let mut twice = packed(Compression::Snappy, &input);
    twice.extend_from_slice(&packed(Compression::Snappy, &input));
    out.clear();
    decompress(Compression::Snappy, &twice, 2 * input.len(), &mut out).unwrap();
    assert_eq!(out.len(), 10_000);
}

#[test]
fn lz4_is_written_as_kafkas_frame_independent_64k_blocks_no_checksums() {
    let out = packed(Compression::Lz4, &sample(1000));
    assert_eq!(&out[..4], &[0x04, 0x22, 0x4D, 0x18]);
    assert_eq!(
        out[4], 0x60,
        "FLG: version 1, independent blocks, no checksums/size"
    );
    assert_eq!(out[5], 0x40, "BD: 64 KiB blocks");
    assert_eq!(
        &out[out.len() - 4..],
        &[0, 0, 0, 0],
        "end mark, no content checksum"
    );
}

#[test]
fn output_one_byte_past_the_bound_is_a_decompression_bomb() {
    for codec in CODECS {
        let input = vec![0u8; 1 << 20];
        let stream = packed(codec, &input);
        let mut out = Vec::new();
        decompress(codec, &stream, input.len(), &mut out).unwrap();
        out = Vec::new();
        assert_eq!(
            decompress(codec, &stream, input.len() - 1, &mut out),
            Err(BatchError::DecompressedTooLarge {
                codec: codec.codec(),
                max: input.len() - 1
            }),
            "{codec}"
        );
        assert!(
            out.capacity() <= input.len() + (1 << 16),
            "{codec}: {}",
            out.capacity()
        );
    }
}

#[test]
fn damaged_and_truncated_streams_are_typed_errors() {
    let input = sample(50_000);
    for codec in CODECS {
        let good = packed(codec, &input);
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            good[..good.len() / 2].to_vec(),
            good[..good.len() - 1].to_vec(),
            vec![0xff; 40],
        ];
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        flipped[5] ^= 0x01;
        cases.push(flipped);
        for (i, bad) in cases.iter().enumerate() {
            let mut out = Vec::new();
            match decompress(codec, bad, input.len(), &mut out) {
                Err(BatchError::BadCompressedData { codec: c, .. })
                | Err(BatchError::DecompressedTooLarge { codec: c, .. }) => {
                    assert_eq!(c, codec.codec())
                }
                // A flipped byte inside a literal run may decode to other bytes (lz4, snappy
                // carry no checksum in Kafka's framing); it must not decode to the input.
                Ok(()) => assert!(i == 4 && out != input, "{codec} case {i} decoded"),
                Err(e) => panic!("{codec} case {i}: {e:?}"),
            }
        }
    }
}

#[test]
fn none_has_nothing_to_decompress() {
    let mut out = Vec::new();
    assert_eq!(
        decompress(Compression::None, b"x", 10, &mut out),
        Err(BatchError::UnsupportedCompression { codec: 0 })
    );
}

#[test]
fn lz4_frames_with_content_size_checksums_or_several_frames_are_read() {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let input = sample(150_000);
    let mut stream = Vec::new();
    for info in [
        FrameInfo::new()
            .content_size(Some(input.len() as u64))
            .content_checksum(true),
        FrameInfo::new()
            .block_checksums(true)
            .block_size(BlockSize::Max256KB)
            .block_mode(BlockMode::Linked),
    ] {
        let mut w = FrameEncoder::with_frame_info(info, Vec::new());
        std::io::Write::write_all(&mut w, &input).unwrap();
        let frame = w.finish().unwrap();
        let mut out = Vec::new();
        decompress(Compression::Lz4, &frame, input.len(), &mut out).unwrap();
        assert_eq!(out, input);
        stream.extend_from_slice(&frame);
    }
    let mut out = Vec::new();
    decompress(Compression::Lz4, &stream, 2 * input.len(), &mut out).unwrap();
    assert_eq!(out.len(), 2 * input.len());
    // The second frame cut before its end: refused.
    let mut out = Vec::new();
    assert!(decompress(
        Compression::Lz4,
        &stream[..stream.len() - 2],
        usize::MAX,
        &mut out
    )
    .is_err());
}
