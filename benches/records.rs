//! Encode and decode throughput of a v2 batch of 1000 records of 100 bytes,
//! uncompressed and with each enabled codec.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrokafka::records::{Compression, RecordBatchBuilder, RecordStream};

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

fn bench(c: &mut Criterion) {
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
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
