//! The consumer against real brokers (Tansu and noida-db, started by the
//! testkit) and the mock cluster: records librdkafka and kafka-python
//! produced with every codec read back record for record; seeks; pause is
//! covered in the unit tests; read_committed over librdkafka transactions
//! (Tansu's gap asserted); a broker restart and a leader move mid-consume
//! resume at the right offset with nothing skipped or repeated.
//!
//! Fetch-session errors, read_committed filtering, truncation and the buffer
//! budget are also covered against a fake cluster in `src/consumer/tests.rs`.

mod support;

use std::time::{Duration, Instant};

use ferrokafka::admin::{Admin, CreateTopicsOptions, NewTopic};
use ferrokafka::consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, IsolationLevel, Offset, TopicPartition,
};
use ferrokafka::network::ClientConfig;
use ferrokafka::testkit::mock::MockCluster;
use ferrokafka::testkit::{BrokerKind, Capability, TestCluster};
use support::peers::{self, PeerRecord};

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

/// Runs scripts/interop/produce_varied.py; returns (record, committed) in produce order.
fn produce(
    client: &str,
    bootstrap: &str,
    topic: &str,
    codec: &str,
    extra: &[&str],
) -> Vec<(Rec, bool)> {
    let mut args = vec!["--codec", codec];
    args.extend_from_slice(extra);
    let out = peers::run_peer_script("produce_varied.py", client, bootstrap, topic, &args);
    peers::json_lines(&out)
        .map(|v| {
            let r = PeerRecord::from_json(&v);
            let rec = Rec {
                key: r.key,
                value: r.value,
                headers: r.headers,
                timestamp: r.timestamp.expect("produce_varied.py prints timestamps"),
            };
            (rec, v["committed"].as_bool().unwrap())
        })
        .collect()
}

fn client_config(bootstrap: &str) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .retry_backoff(Duration::from_millis(50))
        .default_api_timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn create_topic(bootstrap: &str, topic: &str, replication: i16) {
    let admin = Admin::connect(client_config(bootstrap)).await.unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new(topic, 1, replication)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    created[topic].as_ref().unwrap();
}

async fn consumer(bootstrap: &str, config: ConsumerConfig) -> Consumer {
    if std::env::var_os("FK_TRACE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_test_writer()
            .try_init();
    }
    Consumer::new(client_config(bootstrap), config)
        .await
        .unwrap()
}

fn config() -> ConsumerConfig {
    ConsumerConfig::builder()
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_max_wait(Duration::from_millis(100))
        .build()
        .unwrap()
}

/// Polls until `n` records came; returns (offset, record).
async fn consume(consumer: &Consumer, n: usize, max_per_poll: usize) -> Vec<(i64, Rec)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records: {out:?}; {:?}",
            out.len(),
            consumer.metrics()
        );
        let batch = consumer
            .poll(max_per_poll.min(n - out.len()), Duration::from_millis(500))
            .await
            .unwrap();
        for r in batch.iter() {
            out.push((
                r.offset(),
                Rec {
                    key: r.key().map(<[u8]>::to_vec),
                    value: r.value().map(<[u8]>::to_vec),
                    headers: r
                        .headers()
                        .map(|h| (h.key().to_owned(), h.value().map(<[u8]>::to_vec)))
                        .collect(),
                    timestamp: r.timestamp(),
                },
            ));
        }
    }
    out
}

fn assert_consecutive(got: &[(i64, Rec)], from: i64) {
    let offsets: Vec<i64> = got.iter().map(|r| r.0).collect();
    let expected: Vec<i64> = (from..from + got.len() as i64).collect();
    assert_eq!(offsets, expected, "offsets skipped or repeated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_what_librdkafka_produced_with_every_codec() {
    consumes_what_peers_produced(&["librdkafka"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_what_kafka_python_produced_with_every_codec() {
    consumes_what_peers_produced(&["kafka-python"]).await;
}

async fn consumes_what_peers_produced(clients: &[&str]) {
    let run = std::process::id();
    for kind in BrokerKind::ALL {
        let broker = TestCluster::from_env_or_start(kind).unwrap();
        let bootstrap = broker.bootstrap_servers();
        let codecs: &[&str] = match kind {
            BrokerKind::Tansu => &["none", "gzip", "snappy", "lz4", "zstd"],
            // The codecs are the client's business; one plain and one compressed run suffices here.
            BrokerKind::Noida => &["none", "zstd"],
        };
        for &client in clients {
            for codec in codecs {
                let topic = format!("consume-{client}-{codec}-{run}");
                create_topic(&bootstrap, &topic, 1).await;
                let sent = produce(client, &bootstrap, &topic, codec, &[]);
                let consumer = consumer(&bootstrap, config()).await;
                consumer
                    .assign([TopicPartition::new(topic.as_str(), 0)])
                    .unwrap();
                let got = consume(&consumer, sent.len(), 7).await;
                assert_consecutive(&got, 0);
                for ((_, g), (s, _)) in got.iter().zip(&sent) {
                    assert_eq!(g, s, "{kind} {client} {codec}");
                }
                let m = consumer.metrics();
                assert_eq!(m.records_consumed, sent.len() as u64);
                assert_eq!(m.partitions[0].position, Some(sent.len() as i64));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_to_beginning_offset_end_and_timestamp() {
    let run = std::process::id();
    for kind in BrokerKind::ALL {
        let broker = TestCluster::from_env_or_start(kind).unwrap();
        let bootstrap = broker.bootstrap_servers();
        let topic = format!("consume-seek-{run}");
        create_topic(&bootstrap, &topic, 1).await;
        let sent = produce("librdkafka", &bootstrap, &topic, "none", &[]);
        let tp = TopicPartition::new(topic.as_str(), 0);
        let consumer = consumer(&bootstrap, config()).await;
        consumer.assign([tp.clone()]).unwrap();

        consumer.seek(&tp, Offset::At(10)).unwrap();
        let got = consume(&consumer, 3, 3).await;
        assert_eq!(got[0].0, 10);
        assert_eq!(got[0].1, sent[10].0);

        consumer.seek(&tp, Offset::Beginning).unwrap();
        let got = consume(&consumer, sent.len(), 100).await;
        assert_consecutive(&got, 0);

        let wait = Duration::from_secs(10);
        consumer.seek(&tp, Offset::End).unwrap();
        let end = consumer
            .resolved_position(&tp, wait)
            .await
            .unwrap()
            .unwrap();
        match kind.gap(Capability::ListOffsetsLatest) {
            None => assert_eq!(end, sent.len() as i64, "{kind}: seek to end"),
            Some(gap) => assert_ne!(
                end,
                sent.len() as i64,
                "{kind} answers latest right now: drop the gap ({gap})"
            ),
        }

        consumer
            .seek(&tp, Offset::Timestamp(sent[7].0.timestamp))
            .unwrap();
        let at = consumer
            .resolved_position(&tp, wait)
            .await
            .unwrap()
            .unwrap();
        match kind.gap(Capability::ListOffsetsByTimestamp) {
            None => assert_eq!(at, 7, "{kind}: seek to timestamp"),
            Some(gap) => assert_ne!(
                at, 7,
                "{kind} answers timestamps right now: drop the gap ({gap})"
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_skips_aborted_librdkafka_transactions() {
    let run = std::process::id();
    for kind in BrokerKind::ALL {
        let broker = TestCluster::from_env_or_start(kind).unwrap();
        let bootstrap = broker.bootstrap_servers();
        let topic = format!("consume-txn-{run}");
        create_topic(&bootstrap, &topic, 1).await;
        let sent = produce(
            "librdkafka",
            &bootstrap,
            &topic,
            "none",
            &["--transactions"],
        );
        let committed: Vec<Rec> = sent.iter().filter(|r| r.1).map(|r| r.0.clone()).collect();
        let all: Vec<Rec> = sent.iter().map(|r| r.0.clone()).collect();
        let tp = TopicPartition::new(topic.as_str(), 0);

        let uncommitted = consumer(&bootstrap, config()).await;
        uncommitted.assign([tp.clone()]).unwrap();
        let got: Vec<Rec> = consume(&uncommitted, all.len(), 100)
            .await
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(
            got, all,
            "{kind}: read_uncommitted sees every data record, no markers"
        );

        let mut rc = config();
        rc.isolation_level = IsolationLevel::ReadCommitted;
        let reader = consumer(&bootstrap, rc).await;
        reader.assign([tp.clone()]).unwrap();
        match kind.gap(Capability::ReadCommitted) {
            None => {
                let got: Vec<Rec> = consume(&reader, committed.len(), 100)
                    .await
                    .into_iter()
                    .map(|r| r.1)
                    .collect();
                assert_eq!(got, committed, "{kind}: only committed records");
                let more = reader.poll(100, Duration::from_millis(500)).await.unwrap();
                assert!(
                    more.is_empty(),
                    "{kind}: nothing after the committed records"
                );
            }
            Some(gap) => {
                // The broker sends no aborted-transaction list, so aborted
                // records come through: assert the gap so a fix shows up.
                let got: Vec<Rec> = consume(&reader, all.len(), 100)
                    .await
                    .into_iter()
                    .map(|r| r.1)
                    .collect();
                assert_eq!(
                    got, all,
                    "{kind} filters read_committed now: drop the gap ({gap})"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_consume_resumes_without_skips_or_repeats() {
    let kind = BrokerKind::Noida;
    assert!(kind.supports(Capability::DataSurvivesRestart));
    let mut broker = TestCluster::from_env_or_start(kind).unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = format!("consume-restart-{}", std::process::id());
    create_topic(&bootstrap, &topic, 1).await;
    let sent = produce("librdkafka", &bootstrap, &topic, "none", &["--count", "40"]);
    let tp = TopicPartition::new(topic.as_str(), 0);
    let consumer = consumer(&bootstrap, config()).await;
    consumer.assign([tp.clone()]).unwrap();
    let mut got = consume(&consumer, 15, 5).await;
    broker.restart().unwrap();
    got.extend(consume(&consumer, sent.len() - got.len(), 5).await);
    assert_consecutive(&got, 0);
    for ((_, g), (s, _)) in got.iter().zip(&sent) {
        assert_eq!(g, s);
    }
    assert_eq!(consumer.position(&tp).unwrap(), Some(sent.len() as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_leader_move_mid_consume_resumes_at_the_same_offset() {
    let mock = MockCluster::start(3).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let topic = "consume-moves";
    mock.create_topic(topic, 1, 3).unwrap();
    let mut sent = produce("librdkafka", &bootstrap, topic, "lz4", &["--count", "30"]);
    let tp = TopicPartition::new(topic, 0);
    let consumer = consumer(&bootstrap, config()).await;
    consumer.assign([tp.clone()]).unwrap();
    let mut got = consume(&consumer, 30, 5).await;
    let (leader, _) = mock.partition_leader(topic, 0).unwrap();
    let next = mock
        .broker_ids()
        .into_iter()
        .find(|&id| id != leader)
        .unwrap();
    mock.move_partition_leader(topic, 0, next).unwrap();
    // Records written after the move can only come from the new leader.
    sent.extend(produce(
        "librdkafka",
        &bootstrap,
        topic,
        "lz4",
        &["--count", "30"],
    ));
    got.extend(consume(&consumer, sent.len() - got.len(), 5).await);
    assert_consecutive(&got, 0);
    for ((_, g), (s, _)) in got.iter().zip(&sent) {
        assert_eq!(g, s);
    }
    assert!(
        mock.request_count(next, ferrokafka::protocol::ApiKey::Fetch) > 0,
        "fetched from the new leader"
    );
    let m = consumer.metrics();
    assert!(
        m.incremental_fetches > 0,
        "the mock keeps fetch sessions: {m:?}"
    );
}
