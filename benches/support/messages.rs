//! The large messages the protocol benchmarks encode and decode: a Metadata
//! response for a big cluster (1,000 topics × 12 partitions × 3 replicas)
//! and a Fetch response of 8 topics × 32 partitions, each partition carrying
//! the same record batch. Shared by `benches/protocol.rs` and
//! `benchmarks/codec` (included with `#[path]`).

use bytes::Bytes;
use ferrokafka::protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use ferrokafka::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use ferrokafka::protocol::messages::{FetchResponse, MetadataResponse};
use ferrokafka::protocol::Uuid;

/// A Metadata response: 6 brokers, 1,000 topics of 12 partitions.
pub fn metadata() -> MetadataResponse {
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

/// A Fetch response: 8 topics × 32 partitions, each with `records`.
pub fn fetch_response(records: Bytes) -> FetchResponse {
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
