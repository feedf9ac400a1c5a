//! Choosing a partition: the Java client's murmur2 for keyed records and
//! uniform sticky partitioning (KIP-794) for keyless ones.

use rand::Rng;

/// Chooses the partition of a record that names none.
///
/// Return `None` to let the built-in uniform sticky partitioner place the
/// record (what the Java client does for keyless records).
///
/// ```
/// use ferrokafka::producer::Partitioner;
///
/// /// Every record with a key to partition 0, the rest sticky.
/// struct KeyedToZero;
/// impl Partitioner for KeyedToZero {
///     fn partition(&self, _topic: &str, key: Option<&[u8]>, _partitions: i32) -> Option<i32> {
///         key.map(|_| 0)
///     }
/// }
/// assert_eq!(KeyedToZero.partition("t", Some(b"k"), 3), Some(0));
/// ```
pub trait Partitioner: Send + Sync + 'static {
    /// The partition in `0..partition_count` for a record with this key, or
    /// `None` for the built-in sticky choice.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> Option<i32>;
}

/// The Java client's default: `toPositive(murmur2(key)) % partitions` for
/// keyed records, sticky for keyless ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPartitioner;

impl Partitioner for DefaultPartitioner {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, partition_count: i32) -> Option<i32> {
        key.map(|k| partition_for_key(k, partition_count))
    }
}

/// The partition the Java client (and librdkafka's `murmur2_random`) picks
/// for a key: `toPositive(murmur2(key)) % partition_count`.
///
/// ```
/// use ferrokafka::producer::partition_for_key;
/// assert_eq!(partition_for_key(b"abc", 1), 0);
/// assert!(partition_for_key("schlüssel".as_bytes(), 7) < 7);
/// ```
pub fn partition_for_key(key: &[u8], partition_count: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partition_count.max(1)
}

/// The Java client's 32-bit murmur2 (seed `0x9747b28c`), as a signed int.
///
/// ```
/// assert_eq!(ferrokafka::producer::murmur2(b"21"), -973932308);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Picks the next sticky partition (KIP-794): uniformly among partitions
/// with a leader or, when adaptive, weighted towards partitions with less
/// queued (weight `max_queue + 1 - queue`), as the Java client does.
pub(crate) fn next_sticky_partition(
    available: &[i32],
    partition_count: i32,
    queued: Option<&dyn Fn(i32) -> usize>,
) -> i32 {
    let mut rng = rand::rng();
    if available.is_empty() {
        return rng.random_range(0..partition_count.max(1));
    }
    if available.len() == 1 {
        return available[0];
    }
    if let Some(queued) = queued {
        let max = available.iter().map(|&p| queued(p)).max().unwrap_or(0);
        let min = available.iter().map(|&p| queued(p)).min().unwrap_or(0);
        if max != min {
            let total: usize = available.iter().map(|&p| max + 1 - queued(p)).sum();
            let mut pick = rng.random_range(0..total);
            for &p in available {
                let w = max + 1 - queued(p);
                if pick < w {
                    return p;
                }
                pick -= w;
            }
        }
    }
    available[rng.random_range(0..available.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_the_java_client_vectors() {
        // From the Java client's UtilsTest.
        for (input, want) in [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ] {
            assert_eq!(murmur2(input.as_bytes()), want, "{input}");
        }
    }

    #[test]
    fn keyed_partitions_are_in_range_and_keyless_go_sticky() {
        for n in [1, 3, 7, 100] {
            for k in 0..200u32 {
                let p = partition_for_key(&k.to_le_bytes(), n);
                assert!((0..n).contains(&p));
            }
        }
        assert_eq!(DefaultPartitioner.partition("t", None, 3), None);
        assert_eq!(partition_for_key(b"", 1), 0);
    }

    #[test]
    fn sticky_choice_prefers_short_queues_when_adaptive() {
        let queues = [100usize, 0, 100];
        let q = |p: i32| queues[p as usize];
        let mut ones = 0;
        for _ in 0..1000 {
            let p = next_sticky_partition(&[0, 1, 2], 3, Some(&q));
            assert!((0..3).contains(&p));
            ones += usize::from(p == 1);
        }
        assert!(ones > 900, "{ones}");
        assert_eq!(next_sticky_partition(&[2], 3, None), 2);
        assert!((0..5).contains(&next_sticky_partition(&[], 5, None)));
    }
}
