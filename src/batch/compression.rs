//! The four codecs of Kafka's v2 batches, byte-compatible with Kafka's Java clients: every
//! codec-specific line of partlog lives here.
//!
//! | id | codec | stream written | streams read |
//! |---|---|---|---|
//! | 1 | gzip | one RFC 1952 member | one or more members |
//! | 2 | snappy | xerial framing: 16-byte header, then blocks of a big-endian i32 length and a raw snappy block of at most 32 KiB input | the same (a repeated header between blocks is skipped, as snappy-java does), or one raw snappy block when the input is shorter than 16 bytes or lacks the magic (other clients send those) |
//! | 3 | lz4 | the standard LZ4 frame: independent 64 KiB blocks, no block or content checksum, no content size (what Kafka's `Lz4BlockOutputStream` writes) | any LZ4 frame (header checksum verified; content size and checksums honoured when present) |
//! | 4 | zstd | one zstd frame | one or more zstd frames (skippable frames skipped) |
//!
//! [`decompress`] never lets its output pass a bound the caller gives, and never allocates past
//! it: a stream that inflates beyond it (a decompression bomb) is
//! [`BatchError::DecompressedTooLarge`] as soon as the bound is passed; a stream that is not valid
//! is [`BatchError::BadCompressedData`].

use std::fmt;
use std::io::Read;
use std::str::FromStr;

use super::BatchError;

/// The compression codec of a batch (attributes bits 0-2, numbered as Kafka numbers them).
///
/// Parsed from and displayed as Kafka's names (`none`, `gzip`, `snappy`, `lz4`, `zstd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Codec 0: records are stored as is.
    None,
    /// Codec 1: gzip.
    Gzip,
    /// Codec 2: Snappy (xerial framing).
    Snappy,
    /// Codec 3: LZ4 frame.
    Lz4,
    /// Codec 4: Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id written in the attributes (0-4).
    pub fn codec(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Same as [`Compression::codec`], under Kafka's name for it (`CompressionType.id`).
    pub fn id(self) -> u8 {
        self.codec()
    }

    /// The codec for an id; `None` for the invalid ids 5-7 (and anything larger).
    pub fn from_codec(codec: u8) -> Option<Compression> {
        match codec {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The codec named by a batch's attributes (bits 0-2); `None` for codecs 5-7.
    pub fn from_attributes(attributes: i16) -> Option<Compression> {
        Compression::from_codec((attributes & super::COMPRESSION_CODEC_MASK) as u8)
    }

    /// Kafka's name for the codec (`CompressionType.name`).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of Kafka's codec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCompression(pub String);

impl fmt::Display for UnknownCompression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown compression codec {:?}: expected none, gzip, snappy, lz4 or zstd",
            self.0
        )
    }
}

impl std::error::Error for UnknownCompression {}

impl FromStr for Compression {
    type Err = UnknownCompression;

    /// Kafka's names, exactly (as `CompressionType.forName` takes them: lower case).
    fn from_str(s: &str) -> Result<Compression, UnknownCompression> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| UnknownCompression(s.to_owned()))
    }
}

/// A compression level, checked against its codec's range (KIP-390, Kafka 3.8+:
/// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`).
///
/// | codec | range | default |
/// |---|---|---|
/// | gzip | 1..=9, or -1 (zlib's default, 6) | -1 |
/// | lz4 | 1..=17 | 9 |
/// | zstd | -131072..=22 | 3 |
/// | snappy, none | no level (0) | 0 |
///
/// partlog's lz4 encoder (lz4_flex) has no high-compression mode: every lz4 level writes what
/// Kafka's default level 9 writes (the fast compressor), so a level above 9 compresses less
/// than Kafka would; the stream is valid LZ4 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CompressionLevel {
    codec: Compression,
    level: i32,
}

impl CompressionLevel {
    /// gzip's default level: zlib's default (6).
    pub const GZIP_DEFAULT: i32 = -1;
    /// gzip's smallest level.
    pub const GZIP_MIN: i32 = 1;
    /// gzip's largest level.
    pub const GZIP_MAX: i32 = 9;
    /// lz4's default level (Kafka: the fast compressor).
    pub const LZ4_DEFAULT: i32 = 9;
    /// lz4's smallest level.
    pub const LZ4_MIN: i32 = 1;
    /// lz4's largest level.
    pub const LZ4_MAX: i32 = 17;
    /// zstd's default level.
    pub const ZSTD_DEFAULT: i32 = 3;
    /// zstd's smallest level (its fastest negative level).
    pub const ZSTD_MIN: i32 = -131072;
    /// zstd's largest level.
    pub const ZSTD_MAX: i32 = 22;

    /// The codec's default level (Kafka's).
    pub fn default_for(codec: Compression) -> CompressionLevel {
        let level = match codec {
            Compression::Gzip => Self::GZIP_DEFAULT,
            Compression::Lz4 => Self::LZ4_DEFAULT,
            Compression::Zstd => Self::ZSTD_DEFAULT,
            Compression::None | Compression::Snappy => 0,
        };
        CompressionLevel { codec, level }
    }

    /// `level` for `codec`.
    ///
    /// # Errors
    /// [`BatchError::InvalidCompressionLevel`] if the codec does not take that level (snappy and
    /// none take only 0).
    pub fn new(codec: Compression, level: i32) -> Result<CompressionLevel, BatchError> {
        let ok = match codec {
            Compression::Gzip => {
                level == Self::GZIP_DEFAULT || (Self::GZIP_MIN..=Self::GZIP_MAX).contains(&level)
            }
            Compression::Lz4 => (Self::LZ4_MIN..=Self::LZ4_MAX).contains(&level),
            Compression::Zstd => (Self::ZSTD_MIN..=Self::ZSTD_MAX).contains(&level),
            Compression::None | Compression::Snappy => level == 0,
        };
        if ok {
            Ok(CompressionLevel { codec, level })
        } else {
            Err(BatchError::InvalidCompressionLevel {
                codec: codec.codec(),
                level,
            })
        }
    }

    /// The codec the level is for.
    pub fn codec(self) -> Compression {
        self.codec
    }

    /// The level's number.
    pub fn get(self) -> i32 {
        self.level
    }
}

/// The snappy-java stream header: magic `\x82SNAPPY\0`, version 1, minimum compatible version 1
/// (both big-endian i32).
const XERIAL_HEADER: [u8; 16] = *b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// The magic that opens [`XERIAL_HEADER`].
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
/// snappy-java's block size: input is cut into blocks of this many bytes.
const XERIAL_BLOCK: usize = 32 * 1024;
/// How much output a reader asks for at a time when the stream does not say its size.
const CHUNK: usize = 64 * 1024;
/// More than any valid raw snappy block expands (64 bytes out of a 3-byte copy: ~21.3x).
const MAX_SNAPPY_EXPANSION: usize = 32;

/// Decompresses `input`, a stream of `codec`, appending the output to `out`.
///
/// At most `max_output` bytes are appended, and `out` never grows past its length plus
/// `max_output` (plus one chunk of zstd's or lz4's own working memory, bounded by the format:
/// 4 MiB at most for lz4's largest block).
///
/// # Errors
/// [`BatchError::DecompressedTooLarge`] once the output would pass `max_output`;
/// [`BatchError::BadCompressedData`] for a stream that is not valid for the codec (truncated,
/// damaged, trailing garbage); [`BatchError::UnsupportedCompression`] for [`Compression::None`]
/// (there is nothing to decompress). On error, `out` holds its original bytes plus an unspecified
/// part of the output.
pub fn decompress(
    codec: Compression,
    input: &[u8],
    max_output: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    match codec {
        Compression::None => Err(BatchError::UnsupportedCompression { codec: 0 }),
        Compression::Gzip => {
            let mut r = flate2::bufread::MultiGzDecoder::new(input);
            read_bounded(codec, &mut r, max_output, out)
        }
        Compression::Snappy => snappy_decompress(input, max_output, out),
        // Frame by frame: lz4_flex takes no bytes as no frames, a frame cut at its end mark as
        // whole, and stops after the first frame; Kafka's reader wants a frame up to its end.
        Compression::Lz4 => {
            let Some(frames) = lz4_frames(input) else {
                return Err(BatchError::BadCompressedData {
                    codec: codec.codec(),
                    reason: "stream truncated",
                });
            };
            let start = out.len();
            for frame in frames {
                let mut r = lz4_flex::frame::FrameDecoder::new(&input[frame]);
                let room = max_output - (out.len() - start);
                read_bounded(codec, &mut r, room, out).map_err(|e| match e {
                    BatchError::DecompressedTooLarge { codec, .. } => {
                        BatchError::DecompressedTooLarge {
                            codec,
                            max: max_output,
                        }
                    }
                    e => e,
                })?;
            }
            Ok(())
        }
        Compression::Zstd => zstd_decompress(input, max_output, out),
    }
}

/// Compresses `input` as `codec` at `level` (a level for another codec is replaced by `codec`'s
/// default), appending the stream to `out`.
///
/// # Errors
/// [`BatchError::UnsupportedCompression`] for [`Compression::None`];
/// [`BatchError::BadCompressedData`] if the codec library fails (it does so only when it cannot
/// allocate its working memory).
pub fn compress(
    codec: Compression,
    level: CompressionLevel,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    let level = if level.codec == codec {
        level.level
    } else {
        CompressionLevel::default_for(codec).level
    };
    let failed = |reason: &'static str| BatchError::BadCompressedData {
        codec: codec.codec(),
        reason,
    };
    match codec {
        Compression::None => Err(BatchError::UnsupportedCompression { codec: 0 }),
        Compression::Gzip => {
            let level = if level == CompressionLevel::GZIP_DEFAULT {
                flate2::Compression::default()
            } else {
                flate2::Compression::new(level.clamp(1, 9) as u32)
            };
            let mut w = flate2::write::GzEncoder::new(out, level);
            std::io::Write::write_all(&mut w, input).map_err(|_| failed("gzip encoder failed"))?;
            w.finish().map_err(|_| failed("gzip encoder failed"))?;
            Ok(())
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_HEADER);
            let mut enc = snap::raw::Encoder::new();
            for block in input.chunks(XERIAL_BLOCK) {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(block.len()), 0);
                let n = enc
                    .compress(block, &mut out[start..])
                    .map_err(|_| failed("snappy encoder failed"))?;
                out.truncate(start + n);
                // n <= max_compress_len(32 KiB), far below i32::MAX.
                out[at..start].copy_from_slice(&(n as u32).to_be_bytes());
            }
            Ok(())
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent)
                .block_checksums(false)
                .content_checksum(false);
            let mut w = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            std::io::Write::write_all(&mut w, input).map_err(|_| failed("lz4 encoder failed"))?;
            w.finish().map_err(|_| failed("lz4 encoder failed"))?;
            Ok(())
        }
        Compression::Zstd => {
            let mut cctx =
                zstd::zstd_safe::CCtx::try_create().ok_or_else(|| failed("zstd encoder failed"))?;
            cctx.set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))
                .map_err(|_| failed("zstd encoder failed"))?;
            let start = out.len();
            let bound = zstd::zstd_safe::compress_bound(input.len());
            out.resize(start + bound, 0);
            let n = cctx
                .compress2(&mut out[start..], input)
                .map_err(|_| failed("zstd encoder failed"))?;
            out.truncate(start + n);
            Ok(())
        }
    }
}

/// Reads `r` to its end into `out`, at most `max_output` bytes.
fn read_bounded(
    codec: Compression,
    r: &mut impl Read,
    max_output: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    let start = out.len();
    loop {
        let produced = out.len() - start;
        if produced == max_output {
            // Full: one more byte means the stream passes the bound.
            let mut probe = [0u8; 1];
            return match read_some(codec, r, &mut probe)? {
                0 => Ok(()),
                _ => Err(BatchError::DecompressedTooLarge {
                    codec: codec.codec(),
                    max: max_output,
                }),
            };
        }
        let want = (max_output - produced).min(CHUNK.max(produced));
        let len = out.len();
        // Exact: the vector's own doubling could pass the bound.
        out.reserve_exact(want);
        out.resize(len + want, 0);
        let n = read_some(codec, r, &mut out[len..]);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                out.truncate(len);
                return Err(e);
            }
        };
        out.truncate(len + n);
        if n == 0 {
            return Ok(());
        }
    }
}

/// One `read`, retried on `Interrupted`, its failure a typed error.
fn read_some(codec: Compression, r: &mut impl Read, buf: &mut [u8]) -> Result<usize, BatchError> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(BatchError::BadCompressedData {
                    codec: codec.codec(),
                    reason: match (codec, e.kind()) {
                        (_, std::io::ErrorKind::UnexpectedEof) => "stream truncated",
                        (Compression::Gzip, _) => "invalid gzip stream",
                        (Compression::Lz4, _) => "invalid lz4 frame",
                        _ => "invalid stream",
                    },
                })
            }
        }
    }
}

/// The LZ4 frames of `input` (skippable frames left out), `None` unless `input` is one or more
/// frames laid end to end, each up to its end mark (and content checksum when its flags announce
/// one): block lengths are followed, blocks are not decoded.
fn lz4_frames(input: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    fn u32_at(b: &[u8], p: usize) -> Option<u32> {
        let b: [u8; 4] = b.get(p..p.checked_add(4)?)?.try_into().ok()?;
        Some(u32::from_le_bytes(b))
    }
    fn frame_end(b: &[u8], p: usize) -> Option<usize> {
        let magic = u32_at(b, p)?;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            // A skippable frame: magic, length, bytes.
            let len = u32_at(b, p + 4)? as usize;
            return (p + 8).checked_add(len).filter(|&e| e <= b.len());
        }
        if magic != 0x184D_2204 {
            return None;
        }
        let flg = *b.get(p + 4)?;
        // Magic, FLG, BD; content size (FLG bit 3) and dictionary id (bit 0) when present; HC.
        let mut q =
            p + 6 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 } + 1;
        let block_checksums = flg & 0x10 != 0;
        loop {
            let len = u32_at(b, q)?;
            q += 4;
            if len == 0 {
                break;
            }
            q = q.checked_add((len & 0x7FFF_FFFF) as usize)?;
            if block_checksums {
                q += 4;
            }
        }
        if flg & 0x04 != 0 {
            q += 4;
        }
        (q <= b.len()).then_some(q)
    }
    let mut frames = Vec::new();
    let mut p = 0;
    while p < input.len() {
        let e = frame_end(input, p)?;
        if u32_at(input, p)? == 0x184D_2204 {
            frames.push(p..e);
        }
        p = e;
    }
    (!input.is_empty()).then_some(frames)
}

fn snappy_bad(reason: &'static str) -> BatchError {
    BatchError::BadCompressedData {
        codec: Compression::Snappy.codec(),
        reason,
    }
}

/// Decompresses one raw snappy block onto `out`, its declared length checked against the room
/// left (`room`) before anything is allocated.
fn snappy_block(
    block: &[u8],
    room: usize,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    let n = snap::raw::decompress_len(block).map_err(|_| snappy_bad("invalid snappy block"))?;
    // No snappy element gives more than 64 bytes from 3 (a copy with a 2-byte offset), so a
    // valid block holds at most ~21.3x its size: a preamble past 32x is a lie, refused before
    // the output is allocated and zero-filled (a 10-byte block could claim 4 GiB).
    if n > block.len().saturating_mul(MAX_SNAPPY_EXPANSION) {
        return Err(snappy_bad(
            "snappy block declares more than its bytes can hold",
        ));
    }
    if n > room {
        return Err(BatchError::DecompressedTooLarge {
            codec: Compression::Snappy.codec(),
            max,
        });
    }
    let at = out.len();
    out.reserve_exact(n);
    out.resize(at + n, 0);
    match snap::raw::Decoder::new().decompress(block, &mut out[at..]) {
        Ok(m) if m == n => Ok(()),
        _ => {
            out.truncate(at);
            Err(snappy_bad("invalid snappy block"))
        }
    }
}

/// Kafka's snappy: xerial framing, or one raw block (what snappy-java's reader falls back to).
fn snappy_decompress(input: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    let start = out.len();
    if input.len() < XERIAL_HEADER.len() || !input.starts_with(XERIAL_MAGIC) {
        return snappy_block(input, max, max, out);
    }
    // The version fields are not checked: snappy-java's reader accepts any it knows (1).
    let mut rest = &input[XERIAL_HEADER.len()..];
    while !rest.is_empty() {
        if rest.len() >= XERIAL_HEADER.len() && rest.starts_with(XERIAL_MAGIC) {
            // Concatenated streams: snappy-java skips a header between blocks.
            rest = &rest[XERIAL_HEADER.len()..];
            continue;
        }
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(snappy_bad("snappy block length truncated"));
        };
        let len = i32::from_be_bytes(*len);
        let len = usize::try_from(len).map_err(|_| snappy_bad("negative snappy block length"))?;
        let Some(block) = tail.get(..len) else {
            return Err(snappy_bad("snappy block truncated"));
        };
        let room = max - (out.len() - start);
        snappy_block(block, room, max, out)?;
        rest = &tail[len..];
    }
    Ok(())
}

fn zstd_bad(reason: &'static str) -> BatchError {
    BatchError::BadCompressedData {
        codec: Compression::Zstd.codec(),
        reason,
    }
}

/// One-shot zstd decompression straight into `out` (no window buffer: a frame's declared window
/// costs nothing), with the room doubled when it does not suffice, up to `max`.
fn zstd_decompress(input: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
    use zstd::zstd_safe;
    let too_large = BatchError::DecompressedTooLarge {
        codec: Compression::Zstd.codec(),
        max,
    };
    // The first frame's declared size, when it has one, is the first guess.
    let declared =
        zstd_safe::get_frame_content_size(input).map_err(|_| zstd_bad("invalid zstd frame"))?;
    let mut room = match declared {
        Some(n) if n > max as u64 => return Err(too_large),
        Some(n) => n as usize,
        None => input.len().saturating_mul(4).max(CHUNK),
    }
    .min(max);
    let mut dctx = zstd_safe::DCtx::try_create().ok_or_else(|| zstd_bad("zstd decoder failed"))?;
    let start = out.len();
    loop {
        // Room reserved, not zero-filled: the decoder writes into the spare capacity through a
        // cursor at the end of the bytes kept, so only what a frame really gives is touched (a
        // 17-byte frame may declare 256 MiB).
        out.reserve_exact(room);
        let mut at = std::io::Cursor::new(&mut *out);
        at.set_position(start as u64);
        match dctx.decompress(&mut at, input) {
            // The vector may have held more spare capacity than `room`: the bound is checked
            // on what was written.
            Ok(n) if n > max => {
                out.truncate(start);
                return Err(too_large);
            }
            Ok(_) => return Ok(()),
            Err(code) => {
                out.truncate(start);
                let small = zstd_safe::get_error_name(code) == "Destination buffer is too small";
                if !small {
                    return Err(zstd_bad("invalid zstd frame"));
                }
                if room >= max {
                    return Err(too_large);
                }
                // At least a chunk more: a first frame may declare 0 bytes, and 0 doubled is 0.
                room = room.saturating_mul(2).max(CHUNK).min(max);
            }
        }
    }
}
