//! Encode and decode throughput of large generated messages: a Metadata
//! response for a big cluster (1,000 topics × 12 partitions × 3 replicas) and
//! a Fetch response carrying 256 partitions of 64 KiB record batches.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrokafka::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use ferrokafka::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use ferrokafka::protocol::messages::{FetchResponse, MetadataResponse};
use ferrokafka::protocol::{Decodable, Encodable, Uuid};
use ferrokafka::records::{Compression, RecordBatchBuilder};

const METADATA_VERSION: i16 = 12;
const FETCH_VERSION: i16 = 16;

fn metadata() -> MetadataResponse {
    let brokers = (0..6)
        .map(|id| {
            MetadataResponseBroker::default()
                .with_node_id(id)
                .with_host(format!("broker-{id}.kafka.internal"))
                .with_port(9092)
                .with_rack(Some(format!("rack-{}", id % 3)))
        })
        .collect();
    let topics = (0..1000)
        .map(|t| {
            let partitions = (0..12)
                .map(|p| {
                    let replicas = vec![p % 6, (p + 1) % 6, (p + 2) % 6];
                    MetadataResponsePartition::default()
                        .with_partition_index(p)
                        .with_leader_id(p % 6)
                        .with_leader_epoch(7)
                        .with_isr_nodes(replicas.clone())
                        .with_replica_nodes(replicas)
                })
                .collect();
            MetadataResponseTopic::default()
                .with_name(Some(format!("service.events.topic-{t:04}")))
                .with_topic_id(Uuid::from_u64_pair(t as u64, !(t as u64)))
                .with_partitions(partitions)
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some("cluster-1".into()))
        .with_controller_id(1)
        .with_topics(topics)
}

fn fetch() -> FetchResponse {
    let mut batch = RecordBatchBuilder::new(Compression::None);
    let value = [b'x'; 100];
    while batch.size_in_bytes() < 64 * 1024 {
        batch
            .append(1_700_000_000_000, Some(b"key"), Some(&value), &[])
            .expect("append");
    }
    let records: Bytes = batch.finish().expect("finish");
    let topics = (0..8)
        .map(|t| {
            let partitions = (0..32)
                .map(|p| {
                    PartitionData::default()
                        .with_partition_index(p)
                        .with_high_watermark(1_000_000)
                        .with_last_stable_offset(1_000_000)
                        .with_log_start_offset(0)
                        .with_records(Some(records.clone()))
                })
                .collect();
            FetchableTopicResponse::default()
                .with_topic_id(Uuid::from_u64_pair(t, t))
                .with_partitions(partitions)
        })
        .collect();
    FetchResponse::default().with_responses(topics)
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
