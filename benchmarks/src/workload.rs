//! The workloads, and their data, identical for every client.

use bytes::Bytes;

/// Compression of a produce workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None,
    Lz4,
}

/// A workload: what is produced (or, for a consume workload, what the topic holds).
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub consume: bool,
    pub default_records: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub codec: Codec,
}

pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "P100",
        consume: false,
        default_records: 2_000_000,
        key_size: 16,
        value_size: 100,
        codec: Codec::None,
    },
    Workload {
        name: "P100-lz4",
        consume: false,
        default_records: 2_000_000,
        key_size: 16,
        value_size: 100,
        codec: Codec::Lz4,
    },
    Workload {
        name: "P1K",
        consume: false,
        default_records: 500_000,
        key_size: 16,
        value_size: 1024,
        codec: Codec::None,
    },
    Workload {
        name: "C100",
        consume: true,
        default_records: 2_000_000,
        key_size: 16,
        value_size: 100,
        codec: Codec::None,
    },
];

pub fn workload(name: &str) -> Option<Workload> {
    WORKLOADS.iter().copied().find(|w| w.name == name)
}

/// Acknowledgements asked of the broker by every produce workload (acks=1).
pub const ACKS_LEADER: i16 = 1;
/// linger.ms of every produce workload.
pub const LINGER_MS: u64 = 5;
/// batch.size of every produce workload, for both clients: librdkafka's
/// default (ferrokafka's default is the Java client's 16 KiB; see BENCHMARKS.md).
pub const BATCH_SIZE: usize = 1_000_000;

/// The batch.size of this run: `BENCH_BATCH_SIZE` (bytes) if set, else
/// [`BATCH_SIZE`]; for comparing batch sizes, never for the table.
pub fn batch_size() -> usize {
    match std::env::var("BENCH_BATCH_SIZE") {
        Ok(v) => v.parse().expect("BENCH_BATCH_SIZE is a number of bytes"),
        Err(_) => BATCH_SIZE,
    }
}
/// Partitions of every benchmark topic.
pub const PARTITIONS: i32 = 6;

/// Distinct values cycled through: some structure (so lz4 has something to
/// find) and some noise (so it is not trivial).
const DISTINCT_VALUES: usize = 1024;

/// Every record's key and value, built before the timed window so that both
/// clients spend their CPU on producing only.
pub struct Data {
    keys: Vec<u8>,
    key_size: usize,
    values: Vec<Bytes>,
}

impl Data {
    pub fn new(workload: &Workload, records: u64) -> Data {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut keys = Vec::with_capacity(records as usize * workload.key_size);
        assert_eq!(workload.key_size, 16, "keys are 16 hex digits");
        for i in 0..records {
            // Distinct, well spread keys: the record number scrambled, in hex.
            let key = format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            keys.extend_from_slice(key.as_bytes());
        }
        let words: [&[u8]; 8] = [
            b"order ",
            b"customer ",
            b"amount ",
            b"currency EUR ",
            b"status shipped ",
            b"warehouse ",
            b"priority ",
            b"{\"id\": ",
        ];
        let values = (0..DISTINCT_VALUES)
            .map(|_| {
                let mut value = Vec::with_capacity(workload.value_size);
                while value.len() < workload.value_size {
                    let r = next();
                    if r % 3 == 0 {
                        value.extend_from_slice(&r.to_le_bytes());
                    } else {
                        value.extend_from_slice(words[(r >> 8) as usize % words.len()]);
                    }
                }
                value.truncate(workload.value_size);
                Bytes::from(value)
            })
            .collect();
        Data {
            keys,
            key_size: workload.key_size,
            values,
        }
    }

    /// Record `i`'s key, borrowed from one shared buffer (no copy, no
    /// reference count: both clients copy it into their batches).
    pub fn key(&self, i: u64) -> &[u8] {
        let start = i as usize * self.key_size;
        &self.keys[start..start + self.key_size]
    }

    /// Record `i`'s value (a shared buffer: no copy).
    pub fn value(&self, i: u64) -> &Bytes {
        &self.values[i as usize % DISTINCT_VALUES]
    }
}
