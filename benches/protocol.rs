//! Encode and decode throughput of large generated messages: a Metadata
//! response for a big cluster (1,000 topics × 12 partitions × 3 replicas) and
//! a Fetch response carrying 256 partitions of 64 KiB record batches.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrokafka::protocol::messages::FetchResponse;
use ferrokafka::protocol::{Decodable, Encodable};
use ferrokafka::records::{Compression, RecordBatchBuilder};

#[path = "support/messages.rs"]
mod messages;
use messages::{fetch_response, metadata};

const METADATA_VERSION: i16 = 12;
const FETCH_VERSION: i16 = 16;

fn fetch() -> FetchResponse {
    let mut batch = RecordBatchBuilder::new(Compression::None);
    let value = [b'x'; 100];
    while batch.size_in_bytes() < 64 * 1024 {
        batch
            .append(1_700_000_000_000, Some(b"key"), Some(&value), &[])
            .expect("append");
    }
    fetch_response(batch.finish().expect("finish"))
}

fn bench_message<M: Encodable + Decodable>(
    c: &mut Criterion,
    name: &str,
    message: &M,
    version: i16,
) {
    let mut encoded = BytesMut::new();
    message.encode(&mut encoded, version).expect("encode");
    let encoded = encoded.freeze();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function("encode", |b| {
        let mut buf = BytesMut::with_capacity(encoded.len());
        b.iter(|| {
            buf.clear();
            message.encode(&mut buf, version).expect("encode");
            black_box(buf.len())
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| black_box(M::decode(&mut encoded.clone(), version).expect("decode")))
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    bench_message(
        c,
        "metadata_response_1000_topics",
        &metadata(),
        METADATA_VERSION,
    );
    bench_message(
        c,
        "fetch_response_256_partitions_64KiB",
        &fetch(),
        FETCH_VERSION,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
