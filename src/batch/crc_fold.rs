//! CRC-32C by folding with 256-bit carry-less multiplies (AVX2 + VPCLMULQDQ), for x86-64 CPUs
//! that have VPCLMULQDQ but not AVX-512 (with AVX-512, `crc-fast` folds 512 bits at a time).
//! [`crate::batch::crc32c`] picks it from 256 bytes on such CPUs, and for 256-399 bytes with
//! AVX-512, where it is also the faster one.
//!
//! The message is read 128 bytes at a time into four 256-bit accumulators (eight 128-bit
//! lanes). Each step *folds* every lane forward by 128 bytes: a lane `L = H * x^64 + Lo` (its
//! first eight bytes are `H`, in the reflected bit order of CRC-32C) stands for
//! `L * x^(8 * bytes after it)` of the message polynomial, and
//! `L * x^1024 = H * x^1088 + Lo * x^1024`, which is congruent, modulo the CRC polynomial `P`,
//! to `H * (x^1088 mod P) + Lo * (x^1024 mod P)`: two 64 x 32-bit carry-less products that fit
//! a lane, XORed into the lane 128 bytes on. So after the last full block the four
//! accumulators hold 128 bytes whose CRC register value (from 0) equals that of everything
//! folded into them. The CRC32 instruction then takes those 128 bytes, from register value 0,
//! and the tail, and the result is inverted, as CRC-32C's definition asks. The initial
//! register value (all ones) is XORed into the message's first four bytes, which is the same
//! thing as starting from it.
//!
//! The constants are computed at compile time from the polynomial (no table is copied in).
//! `batch::tests::crc_agrees_with_two_independent_implementations` compares the fold with two
//! independent implementations at every length to 2 KiB at 64 alignments, and larger ones.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m256i, _mm256_clmulepi64_epi128, _mm256_loadu_si256, _mm256_set_epi64x, _mm256_storeu_si256,
    _mm256_xor_si256, _mm_crc32_u64, _mm_crc32_u8,
};

/// Bytes folded per step: four 256-bit accumulators.
const BLOCK: usize = 128;

/// The CRC-32C polynomial without its `x^32` term, normal bit order (bit `i`: `x^i`).
const POLY: u32 = 0x1EDC_6F41;

/// `x^n mod P`, normal bit order.
const fn x_pow_mod(n: u32) -> u32 {
    let mut r: u32 = 1;
    let mut i = 0;
    while i < n {
        let carry = r & 0x8000_0000 != 0;
        r <<= 1;
        if carry {
            r ^= POLY;
        }
        i += 1;
    }
    r
}

/// A polynomial of degree below 32 as the high half of a reflected 64-bit operand (bit `j`:
/// `x^(63 - j)`), as the carry-less multiply takes it.
const fn reflected(k: u32) -> i64 {
    ((k.reverse_bits() as u64) << 32) as i64
}

/// The fold constants for `BLOCK` bytes: for a lane's first eight bytes `x^(8 * BLOCK + 64)`,
/// for its last eight `x^(8 * BLOCK)`, each divided by `x` (both modulo `P`): the carry-less
/// product of two reflected 64-bit operands comes out one bit position off (it stands for
/// `x * A * B`), and the smaller exponent takes that back.
const K_FIRST: i64 = reflected(x_pow_mod(8 * BLOCK as u32 + 64 - 1));
const K_LAST: i64 = reflected(x_pow_mod(8 * BLOCK as u32 - 1));

/// From this many bytes on, [`crc32c()`] is worth its setup and its 128-byte finish.
pub(super) const MIN_BYTES: usize = 2 * BLOCK;

/// True if this CPU has what [`crc32c()`] needs (std caches the detection).
#[inline]
pub(super) fn available() -> bool {
    is_x86_feature_detected!("vpclmulqdq")
        && is_x86_feature_detected!("pclmulqdq")
        && is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("sse4.2")
}

/// CRC-32C of `data`; `None` if the CPU lacks a feature the fold needs (see [`available`]).
#[inline]
pub(super) fn crc32c(data: &[u8]) -> Option<u32> {
    if !available() {
        return None;
    }
    // SAFETY: `fold` needs AVX2, PCLMULQDQ, VPCLMULQDQ and SSE4.2 (its `target_feature`s), and
    // the CPU has all four: `available()` detected them just above.
    Some(unsafe { fold(data) })
}

#[inline]
#[target_feature(enable = "avx2")]
fn load(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: reads the 32 bytes `bytes` refers to; the unaligned load has no alignment
    // requirement.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2")]
fn store(v: __m256i, bytes: &mut [u8; 32]) {
    // SAFETY: writes the 32 bytes `bytes` refers to, exclusively borrowed; the unaligned
    // store has no alignment requirement.
    unsafe { _mm256_storeu_si256(bytes.as_mut_ptr().cast(), v) }
}

/// One fold step of an accumulator into the next 32 bytes of the message.
#[inline]
#[target_feature(enable = "avx2,pclmulqdq,vpclmulqdq")]
fn fold_into(acc: __m256i, k: __m256i, next: __m256i) -> __m256i {
    let first = _mm256_clmulepi64_epi128(acc, k, 0x00);
    let last = _mm256_clmulepi64_epi128(acc, k, 0x11);
    _mm256_xor_si256(_mm256_xor_si256(first, last), next)
}

/// The CRC32 instruction over `bytes`, from register value `reg`. Not the `crc32c` crate's
/// `crc32c_append`, which does the same but costs ~13 ns more a call here (the fold of 256
/// bytes took 37 ns with it, against 9.5 without), and the fold is picked for inputs that short.
#[inline]
#[target_feature(enable = "sse4.2")]
fn crc_bytes(mut reg: u64, bytes: &[u8]) -> u64 {
    let (words, rest) = bytes.as_chunks::<8>();
    for w in words {
        reg = _mm_crc32_u64(reg, u64::from_le_bytes(*w));
    }
    for &b in rest {
        reg = u64::from(_mm_crc32_u8(reg as u32, b));
    }
    reg
}

/// The CRC-32C of `data` as described in the module docs.
#[target_feature(enable = "avx2,pclmulqdq,vpclmulqdq,sse4.2")]
fn fold(data: &[u8]) -> u32 {
    let (blocks, tail) = data.as_chunks::<BLOCK>();
    let Some((first, rest)) = blocks.split_first() else {
        return !(crc_bytes(u64::from(u32::MAX), data) as u32);
    };
    let (q, _) = first.as_chunks::<32>();
    // The initial register value, all ones, XORed into the first four bytes.
    let mut head = q[0];
    for b in &mut head[..4] {
        *b = !*b;
    }
    let mut acc = [load(&head), load(&q[1]), load(&q[2]), load(&q[3])];
    let k = _mm256_set_epi64x(K_LAST, K_FIRST, K_LAST, K_FIRST);
    for block in rest {
        let (q, _) = block.as_chunks::<32>();
        for (a, q) in acc.iter_mut().zip(q) {
            *a = fold_into(*a, k, load(q));
        }
    }
    let mut folded = [[0u8; 32]; 4];
    for (a, out) in acc.iter().zip(&mut folded) {
        store(*a, out);
    }
    let reg = crc_bytes(0, folded.as_flattened());
    !(crc_bytes(reg, tail) as u32)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{crc32c_bitwise, noise};
    use super::*;

    #[test]
    fn the_constants_are_powers_of_x_modulo_the_polynomial() {
        assert_eq!(x_pow_mod(0), 1);
        assert_eq!(x_pow_mod(31), 0x8000_0000);
        // x^32 = POLY (mod P). POLY's highest term is x^28, so up to x^35 = x^3 * POLY no
        // reduction is needed, and x^36 reduces once (x^28 * x^4 = x^32 = POLY again).
        assert_eq!(x_pow_mod(32), POLY);
        assert_eq!(x_pow_mod(35), POLY << 3);
        assert_eq!(x_pow_mod(36), (POLY << 4) ^ POLY);
    }

    /// Every bit of a long input reaches the result, wherever it lies in a 128-byte block or
    /// the tail (lengths and alignments: `batch::tests::crc_agrees_with_two_independent_implementations`).
    #[test]
    fn every_bit_of_the_input_changes_the_fold() {
        if !available() {
            eprintln!("skipped: no AVX2 + VPCLMULQDQ on this CPU");
            return;
        }
        let mut s = noise(5000, 3);
        let clean = crc32c(&s);
        assert_eq!(clean, Some(crc32c_bitwise(&s)));
        for bit in [0, 1, 31, 32, 255, 256, 1023, 1024, 8 * 4991, 8 * 4999 + 7] {
            s[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(crc32c(&s), clean, "bit {bit}");
            assert_eq!(crc32c(&s), Some(crc32c_bitwise(&s)), "bit {bit}");
            s[bit / 8] ^= 1 << (bit % 8);
        }
    }
}
