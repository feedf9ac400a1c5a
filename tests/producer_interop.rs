//! The producer against real brokers and peer clients: what it produces
//! with every codec is read intact by librdkafka (confluent-kafka) and
//! kafka-python, and its key partitioning equals theirs (the Java client's).

mod producer_support;

use std::time::Duration;

use bytes::Bytes;
use ferrokafka::producer::{Acks, ProducerConfig, ProducerRecord};
use ferrokafka::records::Compression;
use ferrokafka::testkit::{BrokerKind, TestCluster};
use producer_support::*;

fn records(topic: &str) -> Vec<ProducerRecord> {
    let topic = topic.to_owned();
    let text: Vec<u8> = (0..40_000)
        .map(|i| b"the quick brown fox "[i % 20])
        .collect();
    vec![
        ProducerRecord::new(topic.clone(), Bytes::from_static(b"plain value"))
            .with_key(Bytes::from_static(b"k1"))
            .with_timestamp(1_700_000_000_001),
        // Null key, explicit partition.
        ProducerRecord::new(topic.clone(), Bytes::from_static(b"null key"))
            .with_partition(1)
            .with_timestamp(1_700_000_000_002),
        // Empty key and empty value.
        ProducerRecord::new(topic.clone(), Bytes::new())
            .with_key(Bytes::new())
            .with_timestamp(1_700_000_000_003),
        // Null value (tombstone).
        ProducerRecord::tombstone(topic.clone(), Bytes::from_static(b"gone"))
            .with_timestamp(1_700_000_000_004),
        // Duplicate header keys, a null header value, non-ASCII.
        ProducerRecord::new(topic.clone(), Bytes::from("h\u{e9}llo \u{1f980}"))
            .with_key(Bytes::from("schl\u{fc}ssel"))
            .with_header("dup", Some(Bytes::from_static(b"first")))
            .with_header("dup", Some(Bytes::from_static(b"second")))
            .with_header("null-value", None)
            .with_header("empty", Some(Bytes::new()))
            .with_timestamp(1_700_000_000_005),
        ProducerRecord::new(topic.clone(), Bytes::from(text))
            .with_key(Bytes::from_static(b"large"))
            .with_timestamp(1_700_000_000_006),
        // Keyless, stamped by the producer.
        ProducerRecord::new(topic, Bytes::from_static(b"sticky")),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_is_read_intact_by_librdkafka_and_kafka_python() {
    // Tansu: noida-db 0.2's fetch loop makes these Python consumers spin
    // (scripts/golden/README.md); noida-db is covered by producer_delivery.
    let broker = TestCluster::from_env_or_start(BrokerKind::Tansu).unwrap();
    let bootstrap = broker.bootstrap_servers();
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = unique(&format!("produce-{}", format!("{codec:?}").to_lowercase()));
        create_topic(&bootstrap, &topic, 3).await;
        let producer = producer(
            &bootstrap,
            ProducerConfig::builder()
                .compression(codec)
                .acks(Acks::All)
                .build()
                .unwrap(),
        )
        .await;
        let sent = records(&topic);
        let mut handles = Vec::new();
        for r in &sent {
            handles.push(producer.send(r.clone()).await.unwrap());
        }
        let mut acked = Vec::new();
        for h in handles {
            acked.push(h.await.unwrap());
        }
        producer.close(Duration::from_secs(10)).await.unwrap();
        let metrics = producer.metrics();
        assert_eq!(metrics.records_sent, sent.len() as u64, "{metrics:?}");
        assert_eq!(acked[1].partition, 1);
        for client in ["librdkafka", "kafka-python"] {
            let got = consume_with(
                client,
                &bootstrap,
                &topic,
                3,
                sent.len(),
                "read_uncommitted",
            )
            .await;
            assert_eq!(got.len(), sent.len(), "{client} {codec:?}");
            for (record, meta) in sent.iter().zip(&acked) {
                let read = got
                    .iter()
                    .find(|c| c.partition == meta.partition && c.offset == meta.offset)
                    .unwrap_or_else(|| panic!("{client} {codec:?}: no record at {meta:?}"));
                assert_eq!(
                    read.key,
                    record.key.as_ref().map(|k| k.to_vec()),
                    "{client} {codec:?}"
                );
                assert_eq!(
                    read.value,
                    record.value.as_ref().map(|v| v.to_vec()),
                    "{client} {codec:?}"
                );
                let headers: Vec<(String, Option<Vec<u8>>)> = record
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.key_str().expect("test header keys are text").to_owned(),
                            h.value.as_ref().map(|v| v.to_vec()),
                        )
                    })
                    .collect();
                assert_eq!(read.headers, headers, "{client} {codec:?}");
                assert_eq!(read.timestamp, meta.timestamp, "{client} {codec:?}");
                if let Some(ts) = record.timestamp {
                    assert_eq!(read.timestamp, ts, "{client} {codec:?}");
                }
            }
            println!(
                "{client} read all {} records produced with {codec:?}",
                sent.len()
            );
        }
    }
}

/// 10,000 keys: the empty key, ASCII, non-ASCII UTF-8, binary, lengths 1..64.
fn varied_keys() -> Vec<Vec<u8>> {
    let mut keys = vec![Vec::new()];
    let mut noise = 0x2545_F491_u32;
    for i in 1..10_000u32 {
        let key = match i % 4 {
            0 => format!("user-{i}").into_bytes(),
            1 => format!("schl\u{fc}ssel-\u{65e5}\u{672c}-{i}").into_bytes(),
            2 => (0..(i % 64 + 1))
                .map(|_| {
                    noise ^= noise << 13;
                    noise ^= noise >> 17;
                    noise ^= noise << 5;
                    noise as u8
                })
                .collect(),
            _ => vec![b'k'; (i % 7 + 1) as usize],
        };
        keys.push(key);
    }
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_partitions_equal_librdkafka_murmur2_random_and_kafka_python() {
    let broker = TestCluster::from_env_or_start(BrokerKind::Tansu).unwrap();
    let bootstrap = broker.bootstrap_servers();
    let keys = varied_keys();
    for partitions in [1, 3, 6, 7, 100] {
        let topic = unique(&format!("partitioner-{partitions}"));
        create_topic(&bootstrap, &topic, partitions).await;
        let producer = producer(
            &bootstrap,
            ProducerConfig::builder()
                .acks(Acks::Leader)
                .enable_idempotence(false)
                .build()
                .unwrap(),
        )
        .await;
        let mut ours = Vec::with_capacity(keys.len());
        for key in &keys {
            let handle = producer
                .send(
                    ProducerRecord::new(topic.clone(), Bytes::new())
                        .with_key(Bytes::from(key.clone())),
                )
                .await
                .unwrap();
            ours.push(handle.partition());
        }
        producer.flush().await.unwrap();
        producer.close(Duration::from_secs(10)).await.unwrap();
        for client in ["librdkafka", "kafka-python"] {
            let theirs = peer_partitions(client, &bootstrap, &topic, &keys).await;
            let differing: Vec<_> = (0..keys.len()).filter(|&i| ours[i] != theirs[i]).collect();
            assert!(
                differing.is_empty(),
                "{client}, {partitions} partitions: {} keys differ, first {:?} (ours {}, theirs {})",
                differing.len(),
                keys[differing[0]],
                ours[differing[0]],
                theirs[differing[0]]
            );
        }
        println!(
            "{partitions} partitions: all {} keys placed as librdkafka and kafka-python place them",
            keys.len()
        );
    }
}
