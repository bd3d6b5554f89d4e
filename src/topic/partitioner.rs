//! Which partition a record goes to, as Kafka's default producer decides.
//!
//! - A record with a key goes to `toPositive(murmur2(key)) % partitions`: the same partition a
//!   Kafka producer (Java, librdkafka's `murmur2_random`, franz-go's sticky key partitioner)
//!   would choose for the same key bytes and partition count. Kafka's murmur2 is MurmurHash2
//!   (32-bit) with seed `0x9747b28c`, `m = 0x5bd1e995`, `r = 24`, reading 4-byte little-endian
//!   blocks and folding a 1-3 byte tail in before the final mix; "to positive" clears the sign
//!   bit (`& 0x7fffffff`), it does not take the absolute value.
//! - A record without a key goes to a *sticky* partition (KIP-480, KIP-794): every keyless
//!   record goes to the same partition until `batch_size` bytes were sent to it, so batches
//!   fill up; then a new partition is drawn at random, never the same one again when there is
//!   more than one to choose from.

/// Kafka's murmur2 of `data`, as the Java `int` `Utils.murmur2` returns.
///
/// ```
/// // Kafka's UtilsTest: murmur2("21") == -973932308.
/// assert_eq!(partlog::topic::murmur2(b"21"), -973_932_308);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka takes the length as a Java int; a key longer than i32::MAX cannot be sent.
    let mut h = SEED ^ (data.len() as u32);
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate().rev() {
            h ^= u32::from(b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: the sign bit cleared (so `i32::MIN` becomes 0, not an overflow).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives a record with key `key` in a topic of
/// `partitions` partitions; `None` if `partitions` is 0.
///
/// ```
/// assert_eq!(partlog::topic::partition_for_key(b"21", 2), Some(0));
/// ```
pub fn partition_for_key(key: &[u8], partitions: u32) -> Option<u32> {
    if partitions == 0 {
        return None;
    }
    // to_positive is in [0, i32::MAX], so the cast is exact.
    Some(to_positive(murmur2(key)) as u32 % partitions)
}

/// Kafka's default `batch.size`.
pub const DEFAULT_BATCH_SIZE: usize = 16_384;

/// Kafka's default partitioner: murmur2 for keyed records, sticky for keyless ones.
///
/// Deterministic for a given seed (the random draws of the sticky partition come from a
/// xorshift generator), so tests can replay it.
#[derive(Debug, Clone)]
pub struct Partitioner {
    batch_size: usize,
    rng: u64,
    /// The sticky partition and the bytes sent to it since it was chosen.
    sticky: Option<(u32, usize)>,
}

impl Partitioner {
    /// A partitioner switching the sticky partition every `batch_size` bytes (at least 1),
    /// drawing partitions from a generator seeded with `seed`.
    pub fn new(batch_size: usize, seed: u64) -> Self {
        Partitioner {
            batch_size: batch_size.max(1),
            // xorshift must not start at 0.
            rng: (seed ^ 0x9e37_79b9_7f4a_7c15) | 1,
            sticky: None,
        }
    }

    /// The partition for a record of `size` bytes with `key` (or none) in a topic of
    /// `partitions` partitions; `None` if `partitions` is 0. A keyless record counts its size
    /// towards the sticky partition's batch.
    pub fn partition(&mut self, key: Option<&[u8]>, size: usize, partitions: u32) -> Option<u32> {
        if let Some(key) = key {
            return partition_for_key(key, partitions);
        }
        if partitions == 0 {
            return None;
        }
        let (partition, sent) = match self.sticky {
            Some((p, sent)) if p < partitions && sent < self.batch_size => (p, sent),
            previous => (self.draw(previous.map(|(p, _)| p), partitions), 0),
        };
        self.sticky = Some((partition, sent.saturating_add(size)));
        Some(partition)
    }

    /// The current sticky partition, if one was chosen.
    pub fn sticky_partition(&self) -> Option<u32> {
        self.sticky.map(|(p, _)| p)
    }

    /// A random partition in `[0, partitions)`, other than `previous` when there is a choice.
    fn draw(&mut self, previous: Option<u32>, partitions: u32) -> u32 {
        match previous.filter(|&p| p < partitions && partitions > 1) {
            // Draw among the other partitions-1 and skip over the previous one.
            Some(prev) => {
                let p = (self.next_u64() % u64::from(partitions - 1)) as u32;
                if p >= prev {
                    p + 1
                } else {
                    p
                }
            }
            None => (self.next_u64() % u64::from(partitions)) as u32,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64* (Vigna): enough to spread partitions, not for cryptography.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Default for Partitioner {
    fn default() -> Self {
        Partitioner::new(DEFAULT_BATCH_SIZE, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(-10), 0x7fff_fff6);
        assert_eq!(to_positive(10), 10);
    }

    #[test]
    fn sticky_partition_fills_a_batch_then_moves_to_another() {
        let mut p = Partitioner::new(100, 7);
        let first = p.partition(None, 10, 4).unwrap();
        for _ in 0..9 {
            assert_eq!(p.partition(None, 10, 4), Some(first));
        }
        // 100 bytes sent: the next record starts a new batch elsewhere.
        let second = p.partition(None, 10, 4).unwrap();
        assert_ne!(second, first);
        // Keyed records do not disturb the sticky partition.
        assert_eq!(
            p.partition(Some(b"21"), 1000, 4),
            partition_for_key(b"21", 4)
        );
        assert_eq!(p.partition(None, 10, 4), Some(second));
        // One partition: always it.
        let mut one = Partitioner::new(1, 1);
        for _ in 0..10 {
            assert_eq!(one.partition(None, 5, 1), Some(0));
        }
        assert_eq!(one.partition(None, 5, 0), None);
    }

    #[test]
    fn sticky_partitions_are_spread_over_all_partitions() {
        let mut p = Partitioner::new(1, 42);
        let mut seen = [0u32; 5];
        let mut last = None;
        for _ in 0..5000 {
            let q = p.partition(None, 1, 5).unwrap();
            assert_ne!(Some(q), last, "never the same partition twice in a row");
            last = Some(q);
            seen[q as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
    }
}
