//! Zigzag variable-length integers, encoded exactly as Kafka's `ByteUtils` writes them (the protobuf
//! `sint32` / `sint64` wire format).
//!
//! A value is zigzag-mapped to an unsigned integer (`0, -1, 1, -2, ...` → `0, 1, 2, 3, ...`) and
//! written 7 bits at a time, least significant group first, with the high bit of every byte but the
//! last set. A 32-bit varint takes at most [`MAX_VARINT_LEN`] bytes, a 64-bit varlong at most
//! [`MAX_VARLONG_LEN`].
//!
//! Decoding is strict where Kafka's reader is loose about bits that cannot belong to the value: a
//! final (5th or 10th) byte carrying bits beyond the type's width is rejected as
//! [`VarintError::Overflow`] (Kafka silently drops them). Non-minimal encodings such as `0x80 0x00`
//! for zero are accepted, as in Kafka.

use std::fmt;

/// Longest encoding of a 32-bit varint, in bytes.
pub const MAX_VARINT_LEN: usize = 5;
/// Longest encoding of a 64-bit varlong, in bytes.
pub const MAX_VARLONG_LEN: usize = 10;

/// Why a varint could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VarintError {
    /// The input ended before the varint's last byte (a byte without the continuation bit).
    Truncated,
    /// The varint is longer than [`MAX_VARINT_LEN`] / [`MAX_VARLONG_LEN`] bytes.
    TooLong,
    /// The last permitted byte carries bits that do not fit the 32- or 64-bit type.
    Overflow,
}

impl VarintError {
    /// A short static description, e.g. `"varint truncated"`.
    pub fn reason(self) -> &'static str {
        match self {
            VarintError::Truncated => "varint truncated",
            VarintError::TooLong => "varint longer than allowed",
            VarintError::Overflow => "varint overflows its type",
        }
    }
}

impl fmt::Display for VarintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for VarintError {}

/// Zigzag-maps a signed 32-bit value to an unsigned one (`0, -1, 1, -2` → `0, 1, 2, 3`).
#[inline]
pub fn zigzag_encode_i32(value: i32) -> u32 {
    ((value << 1) ^ (value >> 31)) as u32
}

/// Inverse of [`zigzag_encode_i32`].
#[inline]
pub fn zigzag_decode_i32(raw: u32) -> i32 {
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

/// Zigzag-maps a signed 64-bit value to an unsigned one.
#[inline]
pub fn zigzag_encode_i64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag_encode_i64`].
#[inline]
pub fn zigzag_decode_i64(raw: u64) -> i64 {
    ((raw >> 1) as i64) ^ -((raw & 1) as i64)
}

/// Decodes a zigzag varint from the start of `buf`. Returns the value and the number of bytes
/// it occupied.
#[inline]
pub fn decode_varint(buf: &[u8]) -> Result<(i32, usize), VarintError> {
    // Fast path: one byte (values -64..=63).
    match buf.first() {
        None => return Err(VarintError::Truncated),
        Some(&b) if b & 0x80 == 0 => return Ok((zigzag_decode_i32(u32::from(b)), 1)),
        Some(_) => {}
    }
    // Two bytes (-8192..=8191): lengths of records up to 8 KiB, most deltas.
    if let [b0, b1, ..] = *buf {
        if b1 & 0x80 == 0 {
            return Ok((
                zigzag_decode_i32(u32::from(b0 & 0x7f) | u32::from(b1) << 7),
                2,
            ));
        }
    }
    let mut raw: u32 = 0;
    for (i, &b) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        if i == MAX_VARINT_LEN - 1 {
            if b & 0x80 != 0 {
                return Err(VarintError::TooLong);
            }
            // 4 groups of 7 bits are already in; only 4 more bits fit.
            if b & 0x70 != 0 {
                return Err(VarintError::Overflow);
            }
        }
        raw |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((zigzag_decode_i32(raw), i + 1));
        }
    }
    Err(VarintError::Truncated)
}

/// Decodes a zigzag varlong from the start of `buf`. Returns the value and the number of bytes
/// it occupied.
#[inline]
pub fn decode_varlong(buf: &[u8]) -> Result<(i64, usize), VarintError> {
    match buf.first() {
        None => return Err(VarintError::Truncated),
        Some(&b) if b & 0x80 == 0 => return Ok((zigzag_decode_i64(u64::from(b)), 1)),
        Some(_) => {}
    }
    if let [b0, b1, ..] = *buf {
        if b1 & 0x80 == 0 {
            return Ok((
                zigzag_decode_i64(u64::from(b0 & 0x7f) | u64::from(b1) << 7),
                2,
            ));
        }
    }
    let mut raw: u64 = 0;
    for (i, &b) in buf.iter().take(MAX_VARLONG_LEN).enumerate() {
        if i == MAX_VARLONG_LEN - 1 {
            if b & 0x80 != 0 {
                return Err(VarintError::TooLong);
            }
            // 9 groups of 7 bits are already in; only 1 more bit fits.
            if b & 0x7e != 0 {
                return Err(VarintError::Overflow);
            }
        }
        raw |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((zigzag_decode_i64(raw), i + 1));
        }
    }
    Err(VarintError::Truncated)
}

#[inline]
fn unsigned_size(raw: u64) -> usize {
    // Number of significant bits (at least 1), rounded up to 7-bit groups.
    let bits = 64 - (raw | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Number of bytes [`put_varint`] writes for `value` (1..=5).
#[inline]
pub fn varint_size(value: i32) -> usize {
    unsigned_size(u64::from(zigzag_encode_i32(value)))
}

/// Number of bytes [`put_varlong`] writes for `value` (1..=10).
#[inline]
pub fn varlong_size(value: i64) -> usize {
    unsigned_size(zigzag_encode_i64(value))
}

#[inline]
fn put_unsigned(out: &mut Vec<u8>, mut raw: u64) {
    // Fast paths: one byte (-64..=63) and two bytes (-8192..=8191).
    if raw < 0x80 {
        out.push(raw as u8);
        return;
    }
    if raw < 0x4000 {
        out.extend_from_slice(&[(raw as u8) | 0x80, (raw >> 7) as u8]);
        return;
    }
    let mut tmp = [0u8; MAX_VARLONG_LEN];
    let mut n = 0;
    while raw >= 0x80 {
        tmp[n] = (raw as u8) | 0x80;
        raw >>= 7;
        n += 1;
    }
    tmp[n] = raw as u8;
    out.extend_from_slice(&tmp[..=n]);
}

/// Appends `value` to `out` as a zigzag varint.
#[inline]
pub fn put_varint(out: &mut Vec<u8>, value: i32) {
    put_unsigned(out, u64::from(zigzag_encode_i32(value)));
}

/// Appends `value` to `out` as a zigzag varlong.
#[inline]
pub fn put_varlong(out: &mut Vec<u8>, value: i64) {
    put_unsigned(out, zigzag_encode_i64(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc32(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    fn enc64(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varlong(&mut out, v);
        out
    }

    #[test]
    fn known_encodings() {
        // Values from the protobuf zigzag table and Kafka's ByteUtilsTest.
        assert_eq!(enc32(0), [0x00]);
        assert_eq!(enc32(-1), [0x01]);
        assert_eq!(enc32(1), [0x02]);
        assert_eq!(enc32(-2), [0x03]);
        assert_eq!(enc32(63), [0x7e]);
        assert_eq!(enc32(-64), [0x7f]);
        assert_eq!(enc32(64), [0x80, 0x01]);
        assert_eq!(enc32(1000), [0xd0, 0x0f]);
        assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            enc64(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            enc64(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn round_trip_edges() {
        let v32 = [
            0,
            1,
            -1,
            63,
            64,
            -64,
            -65,
            8191,
            8192,
            -8193,
            1 << 20,
            -(1 << 27),
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            i32::MIN + 1,
        ];
        for v in v32 {
            let e = enc32(v);
            assert_eq!(e.len(), varint_size(v), "{v}");
            assert_eq!(decode_varint(&e), Ok((v, e.len())), "{v}");
            // Trailing bytes are not consumed.
            let mut more = e.clone();
            more.extend_from_slice(&[0xff, 0xff]);
            assert_eq!(decode_varint(&more), Ok((v, e.len())));
        }
        let v64 = [
            0,
            1,
            -1,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            1 << 40,
            -(1 << 55),
            i64::MAX,
            i64::MIN,
            i64::MAX - 1,
            i64::MIN + 1,
        ];
        for v in v64 {
            let e = enc64(v);
            assert_eq!(e.len(), varlong_size(v), "{v}");
            assert_eq!(decode_varlong(&e), Ok((v, e.len())), "{v}");
        }
        for v in v32 {
            // A varint is a valid varlong with the same value.
            assert_eq!(
                decode_varlong(&enc32(v)),
                Ok((i64::from(v), enc32(v).len()))
            );
        }
    }

    #[test]
    fn sizes_match_boundaries() {
        for shift in 0..64u32 {
            for delta in [-1i64, 0, 1] {
                let v = (1i64 << shift).wrapping_add(delta);
                assert_eq!(varlong_size(v), enc64(v).len(), "{v}");
                assert_eq!(
                    varlong_size(v.wrapping_neg()),
                    enc64(v.wrapping_neg()).len()
                );
                if let Ok(v) = i32::try_from(v) {
                    assert_eq!(varint_size(v), enc32(v).len(), "{v}");
                }
            }
        }
    }

    #[test]
    fn truncated_input() {
        assert_eq!(decode_varint(&[]), Err(VarintError::Truncated));
        assert_eq!(decode_varlong(&[]), Err(VarintError::Truncated));
        let e = enc32(i32::MIN);
        for cut in 0..e.len() {
            assert_eq!(
                decode_varint(&e[..cut]),
                Err(VarintError::Truncated),
                "{cut}"
            );
        }
        let e = enc64(i64::MIN);
        for cut in 0..e.len() {
            assert_eq!(
                decode_varlong(&e[..cut]),
                Err(VarintError::Truncated),
                "{cut}"
            );
        }
    }

    #[test]
    fn overlong_and_overflow() {
        // Six bytes: continuation set on the fifth.
        assert_eq!(
            decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
            Err(VarintError::TooLong)
        );
        assert_eq!(decode_varint(&[0xff; 5]), Err(VarintError::TooLong));
        // Fifth byte with bits beyond 32.
        assert_eq!(
            decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]),
            Err(VarintError::Overflow)
        );
        assert_eq!(
            decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x7f]),
            Err(VarintError::Overflow)
        );
        // Eleven bytes for a varlong.
        assert_eq!(decode_varlong(&[0x80; 11]), Err(VarintError::TooLong));
        let mut ten = [0xffu8; 10];
        ten[9] = 0x02;
        assert_eq!(decode_varlong(&ten), Err(VarintError::Overflow));
        ten[9] = 0x01;
        assert_eq!(decode_varlong(&ten), Ok((i64::MIN, 10)));
        // Non-minimal encodings are accepted, as Kafka does.
        assert_eq!(decode_varint(&[0x80, 0x00]), Ok((0, 2)));
        assert_eq!(decode_varint(&[0x81, 0x80, 0x80, 0x80, 0x00]), Ok((-1, 5)));
    }

    #[test]
    fn zigzag_maps() {
        for (v, z) in [
            (0, 0u32),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i32::MAX, u32::MAX - 1),
            (i32::MIN, u32::MAX),
        ] {
            assert_eq!(zigzag_encode_i32(v), z);
            assert_eq!(zigzag_decode_i32(z), v);
        }
        for (v, z) in [
            (0, 0u64),
            (-1, 1),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ] {
            assert_eq!(zigzag_encode_i64(v), z);
            assert_eq!(zigzag_decode_i64(z), v);
        }
    }
}
