//! Hostile compressed streams that declare a huge output in a few bytes (issue 19, found by the
//! `compressed_batch` fuzz target as a 355-byte input that took seconds): refused with a typed
//! error, without zero-filling the declared size first. Measured by the page faults the calling
//! thread takes (`getrusage(RUSAGE_THREAD)`), which count the memory actually touched: a
//! 200 MiB zero-fill is ~51,200 faults, the bound asserted is 2,048 (8 MiB).

use partlog::batch::compression::decompress;
use partlog::batch::{BatchError, Compression};

const DECLARED: u64 = 200 << 20;
const MAX: usize = 256 << 20;
const FAULT_BOUND: i64 = 2_048;

/// Minor page faults of this thread so far.
fn faults() -> i64 {
    let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // The call only writes the struct it is given.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, u.as_mut_ptr()) };
    assert_eq!(rc, 0);
    // getrusage succeeded: the struct is filled in.
    let u = unsafe { u.assume_init() };
    u.ru_minflt
}

/// Decompresses under the 256 MiB bound, returning the error and the faults it took.
fn refused(codec: Compression, stream: &[u8]) -> (BatchError, i64) {
    let mut out = Vec::new();
    let before = faults();
    let r = decompress(codec, stream, MAX, &mut out);
    let took = faults() - before;
    drop(out);
    (
        r.expect_err("a stream that cannot give what it declares"),
        took,
    )
}

/// A zstd frame whose header declares 200 MiB of content (single segment, 8-byte content
/// size) and whose only block is a 100-byte RLE block.
fn zstd_liar() -> Vec<u8> {
    let mut f = 0xFD2F_B528u32.to_le_bytes().to_vec();
    f.push(0b1110_0000); // content size in 8 bytes, single segment, no checksum, no dictionary
    f.extend_from_slice(&DECLARED.to_le_bytes());
    let block_header: u32 = 1 | (1 << 1) | (100 << 3); // last, RLE, 100 bytes
    f.extend_from_slice(&block_header.to_le_bytes()[..3]);
    f.push(b'x');
    f
}

#[test]
fn a_zstd_frame_declaring_200_mib_in_17_bytes_is_refused_without_touching_200_mib() {
    let (e, took) = refused(Compression::Zstd, &zstd_liar());
    assert!(
        matches!(e, BatchError::BadCompressedData { codec: 4, .. }),
        "{e:?}"
    );
    assert!(took < FAULT_BOUND, "{took} page faults");
}

/// A raw snappy block whose preamble declares 200 MiB, followed by one 4-byte literal.
fn snappy_liar() -> Vec<u8> {
    let mut b = Vec::new();
    let mut n = DECLARED;
    while n >= 0x80 {
        b.push((n as u8) | 0x80);
        n >>= 7;
    }
    b.push(n as u8);
    b.push(3 << 2); // literal of 4 bytes
    b.extend_from_slice(b"abcd");
    b
}

#[test]
fn a_snappy_block_declaring_200_mib_in_10_bytes_is_refused_without_touching_200_mib() {
    for stream in [snappy_liar(), {
        // The same block in the xerial framing Kafka's Java producer writes.
        let block = snappy_liar();
        let mut x = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
        x.extend_from_slice(&(block.len() as u32).to_be_bytes());
        x.extend_from_slice(&block);
        x
    }] {
        let (e, took) = refused(Compression::Snappy, &stream);
        assert!(
            matches!(e, BatchError::BadCompressedData { codec: 2, .. }),
            "{e:?}"
        );
        assert!(took < FAULT_BOUND, "{took} page faults");
    }
}

/// What the bounds must not refuse: the largest output a valid stream of each codec gives
/// from few bytes (a long run of one byte) still decompresses.
#[test]
fn highly_compressible_streams_still_decompress() {
    let plain = vec![b'z'; 4 << 20];
    for codec in [
        Compression::Zstd,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Gzip,
    ] {
        let mut stream = Vec::new();
        partlog::batch::compression::compress(
            codec,
            partlog::batch::CompressionLevel::default_for(codec),
            &plain,
            &mut stream,
        )
        .unwrap();
        let mut out = Vec::new();
        decompress(codec, &stream, MAX, &mut out).unwrap();
        assert!(out == plain, "{codec}");
    }
}

/// Two zstd frames, the first declaring (and holding) no content: the output's first guess was
/// that declared 0, and the doubling of a room of 0 stayed 0, so decompression looped forever
/// (found by the `compressed_batch` fuzz target as a 10-byte timeout). Run on a thread with a
/// deadline so that a regression fails instead of hanging.
#[test]
fn a_zstd_stream_whose_first_frame_declares_no_content_decompresses() {
    let level = partlog::batch::CompressionLevel::default_for(Compression::Zstd);
    let mut stream = Vec::new();
    partlog::batch::compression::compress(Compression::Zstd, level, b"", &mut stream).unwrap();
    let plain = b"rides in the second frame".repeat(100);
    partlog::batch::compression::compress(Compression::Zstd, level, &plain, &mut stream).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let r = decompress(Compression::Zstd, &stream, MAX, &mut out);
        let _ = tx.send(r.map(|()| out));
    });
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("decompression did not finish in 20 s")
        .unwrap();
    assert!(got == plain);
}
