//! Helpers shared by the producer integration tests: a producer for a test
//! broker, topic creation, and the Python peer clients (through
//! `tests/support/peers.rs`).
#![allow(dead_code)]

#[path = "../support/peers.rs"]
pub mod peers;

use std::time::Duration;

use bytes::Bytes;
use ferrokafka::network::{ClientConfig, Cluster, RequestOptions};
use ferrokafka::producer::{Producer, ProducerConfig};
use ferrokafka::protocol::messages::create_topics_request::CreatableTopic;
use ferrokafka::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use ferrokafka::protocol::messages::CreateTopicsRequest;
use ferrokafka::protocol::messages::FetchRequest;
use ferrokafka::records::RecordStream;

pub fn client_config(bootstrap: &str) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .default_api_timeout(Duration::from_secs(20))
        .retry_backoff(Duration::from_millis(50))
        .retry_backoff_max(Duration::from_millis(500))
        .build()
        .unwrap()
}

pub async fn producer(bootstrap: &str, config: ProducerConfig) -> Producer {
    Producer::new(client_config(bootstrap), config)
        .await
        .unwrap()
}

/// A unique-enough suffix so reruns against an external cluster do not collide.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let cluster = Cluster::connect(client_config(bootstrap)).await.unwrap();
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name.to_owned())
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let response = cluster
        .send_to_controller(&request, RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
    cluster.track_topics([name]);
    for _ in 0..100 {
        let metadata = cluster.refresh_metadata().await.unwrap();
        if (0..partitions).all(|p| metadata.leader_for(name, p).is_ok()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("topic {name} has no leaders");
}

/// A record as a peer client read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

fn peer(client: &str) -> peers::Peer {
    *peers::Peer::ALL
        .iter()
        .find(|p| p.name() == client)
        .unwrap_or_else(|| panic!("unknown peer client {client}"))
}

/// Consumes `count` records of `topic` with a peer client ("librdkafka" or
/// "kafka-python").
pub async fn consume_with(
    client: &str,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    isolation: &str,
) -> Vec<Consumed> {
    peers::consume(peer(client), bootstrap, topic, partitions, count, isolation)
        .await
        .into_iter()
        .map(|r| Consumed {
            partition: r.partition,
            offset: r.offset,
            timestamp: r.timestamp.expect("consume.py prints timestamps"),
            key: r.key,
            value: r.value,
            headers: r.headers,
        })
        .collect()
}

/// The partition a peer client's default partitioner picks for each key,
/// found by producing one record per key to `topic`.
pub async fn peer_partitions(
    client: &str,
    bootstrap: &str,
    topic: &str,
    keys: &[Vec<u8>],
) -> Vec<i32> {
    assert!(
        keys.iter().skip(1).all(|k| !k.is_empty()),
        "only the first key may be empty (one hex key per line)"
    );
    let file = std::env::temp_dir().join(format!("{topic}-{client}.keys"));
    let text: Vec<String> = keys
        .iter()
        .map(|k| k.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    std::fs::write(&file, text.join("\n")).unwrap();
    let out = peers::run_peer_script_async(
        "partitions.py",
        client,
        bootstrap,
        topic,
        &["--keys-file", file.to_str().unwrap()],
    )
    .await;
    let _ = std::fs::remove_file(&file);
    let partitions: Vec<i32> = peers::json_lines(&out)
        .map(|v| v["partition"].as_i64().unwrap() as i32)
        .collect();
    assert_eq!(
        partitions.len(),
        keys.len(),
        "{client} answered for every key"
    );
    partitions
}

/// What one Fetch returned for a partition.
pub struct Fetched {
    pub records: Bytes,
    pub high_watermark: i64,
    /// (producer id, first offset) of aborted transactions (read_committed).
    pub aborted: Vec<(i64, i64)>,
}

/// One Fetch of `topic`/`partition` from `offset` at its leader;
/// `isolation` 0 = read_uncommitted, 1 = read_committed.
pub async fn fetch(
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    offset: i64,
    isolation: i8,
) -> Fetched {
    cluster.track_topics([topic]);
    let metadata = cluster.refresh_metadata().await.unwrap();
    let leader = metadata.leader_for(topic, partition).unwrap();
    let topic_id = metadata.topics[topic].topic_id;
    let request = FetchRequest::default()
        .with_max_wait_ms(200)
        .with_min_bytes(1)
        .with_max_bytes(8 << 20)
        .with_isolation_level(isolation)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic.to_owned())
            .with_topic_id(topic_id)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(4 << 20)])]);
    // A broker without topic ids (noida-db) needs a Fetch that names topics (v12-).
    let options = if topic_id == ferrokafka::protocol::Uuid::ZERO {
        RequestOptions::default().with_version(12)
    } else {
        RequestOptions::default()
    };
    let response = cluster
        .send_to_broker(leader.node_id, &request, options)
        .await
        .unwrap();
    let data = &response.responses[0].partitions[0];
    assert_eq!(data.error_code, 0, "fetch {topic}-{partition}@{offset}");
    Fetched {
        records: data.records.clone().unwrap_or_default(),
        high_watermark: data.high_watermark,
        aborted: data
            .aborted_transactions
            .clone()
            .unwrap_or_default()
            .iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect(),
    }
}

/// Every record value of a partition, in offset order, with its offset.
pub async fn read_partition(cluster: &Cluster, topic: &str, partition: i32) -> Vec<(i64, Bytes)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let fetched = fetch(cluster, topic, partition, offset, 0).await;
        let before = offset;
        for record in RecordStream::new(fetched.records) {
            let record = record.unwrap();
            if record.offset >= offset {
                offset = record.offset + 1;
                out.push((record.offset, record.value.unwrap_or_default()));
            }
        }
        if offset >= fetched.high_watermark || offset == before {
            return out;
        }
    }
}
