//! Encode and decode throughput of a v2 batch of 1000 records of 100 bytes,
//! uncompressed and with each enabled codec; what a consumer pays for a fetch
//! made of many small compressed batches (per-batch decoder setup); and
//! decoding records with headers.
//!
//! `decode/*` reads owned `Record`s (key, value and headers as `Bytes`
//! handles sharing the batch: a reference count each); `decode_borrowed/*`
//! reads the same records as borrowed `RecordRef`s (`&[u8]` slices, through
//! `FetchedRecords::next_ref`). Throughput counts the records' key + value
//! bytes (not the batch framing, the record overhead or the headers), per
//! second of time: for `records/*`, 1,000 records of a 10-byte key and a
//! 100-byte value, 110,000 bytes per batch.
//!
//! Times are wall-clock by default. On a shared machine, set
//! `FERROKAFKA_BENCH_CLOCK=cpu` to measure the benchmark thread's CPU time
//! instead (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`), which other processes
//! competing for the cores inflate far less.

use std::hint::black_box;

use bytes::Bytes;
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use ferrokafka::records::{Compression, FetchedRecords, RecordBatchBuilder, RecordStream};

#[path = "support/cpu_clock.rs"]
mod cpu_clock;

const RECORDS: usize = 1000;
const VALUE_LEN: usize = 100;

/// Values that compress roughly like real JSON-ish payloads: varied text.
fn values() -> Vec<Vec<u8>> {
    let mut state = 0x1234_5678_u32;
    (0..RECORDS)
        .map(|i| {
            let mut v =
                format!("{{\"id\":{i},\"user\":\"u{}\",\"payload\":\"", i % 97).into_bytes();
            while v.len() < VALUE_LEN - 2 {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                v.push(b'a' + (state % 26) as u8);
            }
            v.extend_from_slice(b"\"}");
            v.truncate(VALUE_LEN);
            v
        })
        .collect()
}

fn encode(codec: Compression, keys: &[Vec<u8>], values: &[Vec<u8>]) -> Bytes {
    let mut b = RecordBatchBuilder::with_capacity(codec, RECORDS * (VALUE_LEN + 32));
    for (i, (k, v)) in keys.iter().zip(values).enumerate() {
        b.append(1_700_000_000_000 + i as i64, Some(k), Some(v), &[])
            .expect("append");
    }
    b.finish().expect("finish")
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let values = values();
    let keys: Vec<Vec<u8>> = (0..RECORDS)
        .map(|i| format!("key-{i:06}").into_bytes())
        .collect();
    let payload: u64 = values.iter().map(|v| v.len() as u64).sum::<u64>()
        + keys.iter().map(|k| k.len() as u64).sum::<u64>();
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    let mut group = c.benchmark_group("records");
    group.throughput(Throughput::Bytes(payload));
    for codec in codecs.into_iter().filter(|c| c.is_enabled()) {
        let name = format!("{codec:?}").to_lowercase();
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| encode(codec, black_box(&keys), black_box(&values)))
        });
        let batch = encode(codec, &keys, &values);
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| {
                let mut n = 0usize;
                for r in RecordStream::new(black_box(batch.clone())) {
                    n += r.expect("record").value.map_or(0, |v| v.len());
                }
                n
            })
        });
        group.bench_function(format!("decode_borrowed/{name}"), |b| {
            b.iter(|| read_borrowed(black_box(&batch)))
        });
    }
    group.finish();

    // A fetch of 200 small batches (10 records of ~100 bytes each, ~545
    // bytes once compressed): per-batch decoder setup dominates.
    let mut group = c.benchmark_group("fetch_200_small_batches");
    group.throughput(Throughput::Bytes(payload * 2));
    for codec in codecs.into_iter().filter(|c| c.is_enabled()) {
        let name = format!("{codec:?}").to_lowercase();
        let mut blob = Vec::new();
        for batch in 0..200 {
            blob.extend_from_slice(&small_batch(codec, batch, &keys, &values));
        }
        let blob = Bytes::from(blob);
        bench_fetch(&mut group, &format!("decode/{name}"), blob.clone());
        group.bench_function(format!("decode_borrowed/{name}"), |b| {
            b.iter(|| read_borrowed(black_box(&blob)))
        });
    }
    // zstd as the Java client writes it (zstd-jni's stream): frames that do
    // not declare their content size, so only their block headers bound them.
    #[cfg(feature = "zstd")]
    {
        let mut blob = Vec::new();
        for batch in 0..200 {
            let plain = small_batch(Compression::None, batch, &keys, &values);
            let frame = zstd::stream::encode_all(&plain[61..], 3).expect("zstd");
            blob.extend_from_slice(&with_section(&plain, Compression::Zstd, &frame));
        }
        bench_fetch(&mut group, "decode/zstd-streamed", Bytes::from(blob));
    }
    group.finish();

    // 1000 records with three headers each (keys as on real traffic).
    let mut group = c.benchmark_group("records_with_headers");
    group.throughput(Throughput::Bytes(payload));
    let mut b = RecordBatchBuilder::with_capacity(Compression::None, RECORDS * (VALUE_LEN + 96));
    for (i, (k, v)) in keys.iter().zip(&values).enumerate() {
        let headers = [
            (
                "traceparent",
                Some(&b"00-4bf92f3577b34da6-00f067aa0ba902b7-01"[..]),
            ),
            ("content-type", Some(&b"application/json"[..])),
            ("retry", None),
        ];
        b.append(1_700_000_000_000 + i as i64, Some(k), Some(v), &headers)
            .expect("append");
    }
    let batch = b.finish().expect("finish");
    group.bench_function("decode/none", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for r in RecordStream::new(black_box(batch.clone())) {
                let r = r.expect("record");
                n += r.headers.iter().map(|h| h.key.len()).sum::<usize>();
            }
            n
        })
    });
    group.bench_function("decode_borrowed/none", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut records = FetchedRecords::new(black_box(batch.clone()), 0);
            while let Some(r) = records.next_ref() {
                n += r
                    .expect("record")
                    .headers()
                    .map(|h| h.key.len())
                    .sum::<usize>();
            }
            n
        })
    });
    group.finish();
}

/// Reads every record of `blob` as a borrowed `RecordRef` (the lending walk
/// of `FetchedRecords`): sum of the value lengths.
fn read_borrowed(blob: &Bytes) -> usize {
    let mut n = 0usize;
    let mut records = FetchedRecords::new(blob.clone(), 0);
    while let Some(r) = records.next_ref() {
        n += r.expect("record").value().map_or(0, <[u8]>::len);
    }
    n
}

/// Batch `index` of a fetch of small batches: 10 records of ~100 bytes, at
/// offsets from `index * 10`.
fn small_batch(codec: Compression, index: usize, keys: &[Vec<u8>], values: &[Vec<u8>]) -> Bytes {
    let mut b = RecordBatchBuilder::new(codec);
    b.set_base_offset(index as i64 * 10);
    for i in 0..10 {
        let r = (index * 10 + i) % RECORDS;
        b.append(
            1_700_000_000_000 + r as i64,
            Some(&keys[r]),
            Some(&values[r]),
            &[],
        )
        .expect("append");
    }
    b.finish().expect("finish")
}

/// Reads every record of a fetch, as a consumer does.
fn bench_fetch<M: Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    name: &str,
    blob: Bytes,
) {
    group.bench_function(name, |b| {
        b.iter(|| {
            let mut n = 0usize;
            for r in FetchedRecords::new(black_box(blob.clone()), 0) {
                n += r.expect("record").value.map_or(0, |v| v.len());
            }
            n
        })
    });
}

/// `batch` (uncompressed) with its records section replaced by `section`,
/// compressed with `codec`: the length, attributes and CRC are rewritten.
#[cfg(feature = "zstd")]
fn with_section(batch: &[u8], codec: Compression, section: &[u8]) -> Vec<u8> {
    let mut out = batch[..61].to_vec();
    out.extend_from_slice(section);
    let length = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[22] = (out[22] & !0x07) | codec.id();
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

fn main() {
    cpu_clock::run_with_clock_from_env(bench, bench);
}
