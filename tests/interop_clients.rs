//! Interoperability: record batches that ferrokafka builds, with every codec,
//! are produced to a real broker and consumed back by two independent
//! clients, librdkafka (confluent-kafka) and kafka-python, which must see
//! exactly the records that were sent: keys, values, nulls, empty values,
//! duplicate and null-valued headers, and values large enough to span several
//! lz4 blocks and snappy chunks. (The other direction, batches those clients
//! produce decoding here, is `tests/golden.rs`.)
//!
//! The Python clients come from `scripts/brokers.sh install clients` (the
//! test suite command installs every part; this test asks for the clients
//! itself, which is a no-op once they are there, so `cargo test` works after
//! `scripts/quickstart.sh` installed the broker alone). Their absence is a
//! failure, not a skip.

mod support;

use std::time::Duration;

use ferrokafka::network::{ClientConfig, Cluster, RequestOptions};
use ferrokafka::protocol::messages::create_topics_request::CreatableTopic;
use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use ferrokafka::protocol::messages::{CreateTopicsRequest, ProduceRequest};
use ferrokafka::records::{Compression, RecordBatchBuilder};
use ferrokafka::testkit::{BrokerKind, TestCluster};
use support::peers::{self, Peer, PeerRecord};

type Header = (String, Option<Vec<u8>>);

#[derive(Debug, Clone, PartialEq)]
struct Sent {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn records() -> Vec<Sent> {
    let mut noise = 0x9E37_79B9_u32;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 17;
                noise ^= noise << 5;
                noise as u8
            })
            .collect()
    };
    let text: Vec<u8> = (0..150_000)
        .map(|i| b"the quick brown fox "[i % 20])
        .collect();
    vec![
        Sent {
            key: Some(b"k1".to_vec()),
            value: Some(b"plain value".to_vec()),
            headers: vec![],
        },
        Sent {
            key: None,
            value: Some(b"null key".to_vec()),
            headers: vec![],
        },
        Sent {
            key: Some(b"tombstone".to_vec()),
            value: None,
            headers: vec![],
        },
        Sent {
            key: Some(Vec::new()),
            value: Some(Vec::new()),
            headers: vec![],
        },
        Sent {
            key: Some(b"headers".to_vec()),
            value: Some("h\u{e9}llo \u{1f980}".as_bytes().to_vec()),
            headers: vec![
                ("dup".into(), Some(b"first".to_vec())),
                ("dup".into(), Some(b"second".to_vec())),
                ("null-value".into(), None),
                ("empty".into(), Some(Vec::new())),
            ],
        },
        Sent {
            key: Some(b"large-text".to_vec()),
            value: Some(text),
            headers: vec![],
        },
        Sent {
            key: Some(b"large-random".to_vec()),
            value: Some(random(90_000)),
            headers: vec![],
        },
        Sent {
            key: Some(random(16)),
            value: Some(random(300)),
            headers: vec![("bin".into(), Some(random(40)))],
        },
    ]
}

fn batch(codec: Compression, records: &[Sent]) -> bytes::Bytes {
    let mut builder = RecordBatchBuilder::new(codec);
    for (i, r) in records.iter().enumerate() {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        builder
            .append(
                1_700_000_000_000 + i as i64,
                r.key.as_deref(),
                r.value.as_deref(),
                &headers,
            )
            .unwrap();
    }
    builder.finish().unwrap()
}

fn consume_with(peer: Peer, bootstrap: &str, topic: &str, count: usize) -> Vec<Sent> {
    let count = count.to_string();
    let out = peers::run_peer_script(
        "consume.py",
        peer.name(),
        bootstrap,
        topic,
        &["--count", &count],
    );
    peers::json_lines(&out)
        .map(|v| {
            let r = PeerRecord::from_json(&v);
            Sent {
                key: r.key,
                value: r.value,
                headers: r.headers,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn librdkafka_and_kafka_python_read_what_ferrokafka_produces_with_every_codec() {
    // Tansu: noida-db 0.2's fetch loop makes these Python consumers spin (see
    // scripts/golden/README.md), which would test the broker, not the codecs.
    peers::install_python_clients();
    let broker = TestCluster::from_env_or_start(BrokerKind::Tansu).unwrap();
    let bootstrap = broker.bootstrap_servers();
    let config = ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .default_api_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let cluster = Cluster::connect(config).await.unwrap();
    let sent = records();
    let run = std::process::id();
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let topic = format!("interop-{}-{run}", format!("{codec:?}").to_lowercase());
        let created = cluster
            .send_to_controller(
                &CreateTopicsRequest::default()
                    .with_timeout_ms(10_000)
                    .with_topics(vec![CreatableTopic::default()
                        .with_name(topic.clone())
                        .with_num_partitions(1)
                        .with_replication_factor(1)]),
                RequestOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(created.topics[0].error_code, 0, "{topic}");
        cluster.track_topics([topic.as_str()]);
        let leader = cluster.leader_for(&topic, 0).await.unwrap();
        let produce = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic.clone())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(codec, &sent)))])]);
        let response = cluster
            .send_to_broker(leader.node_id, &produce, RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(
            response.responses[0].partition_responses[0].error_code, 0,
            "{topic}"
        );
        for client in Peer::ALL {
            let got = consume_with(client, &bootstrap, &topic, sent.len());
            for (i, (got, want)) in got.iter().zip(&sent).enumerate() {
                assert_eq!(got, want, "{client} {codec:?}: record {i} differs");
            }
            assert_eq!(got.len(), sent.len(), "{client} {codec:?}");
            println!(
                "{client} read all {} records of the {codec:?} batch",
                sent.len()
            );
        }
    }
}
