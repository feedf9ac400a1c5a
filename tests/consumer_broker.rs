//! The consumer against real brokers (Tansu and noida-db, started by the
//! testkit) and the mock cluster: records librdkafka and kafka-python
//! produced with every codec read back record for record; seeks; pause,
//! resume and assignment changes while fetching; read_committed over librdkafka transactions
//! (Tansu's gap asserted); a broker restart and a leader move mid-consume
//! resume at the right offset with nothing skipped or repeated; on the mock
//! cluster, injected fetch errors are retried without skips or repeats and a
//! log truncated after a leader move is detected (KIP-320).
//!
//! Fetch sessions go incremental where the broker keeps them (neither local
//! broker does: the gap is asserted). Fetch-session errors, read_committed
//! filtering, truncation, the buffer budget, batches cut at the response
//! limit, batches larger than every limit and partitions taking turns are
//! also covered against a fake cluster in `src/consumer/tests.rs`.

mod support;

use std::time::{Duration, Instant};

use ferrokafka::admin::{Admin, CreateTopicsOptions, DeleteTopicsOptions, NewTopic};
use ferrokafka::consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, IsolationLevel, Offset, RecordView, TopicPartition,
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
    support::trace_if_asked();
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

/// Polls (at most `max_per_poll` records a time) until `n` records came;
/// returns what `map` makes of each.
async fn consume_mapped<T>(
    consumer: &Consumer,
    n: usize,
    max_per_poll: usize,
    mut map: impl FnMut(&RecordView<'_>) -> T,
) -> Vec<T> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records; {:?}",
            out.len(),
            consumer.metrics()
        );
        let batch = consumer
            .poll(max_per_poll.min(n - out.len()), Duration::from_millis(500))
            .await
            .unwrap();
        out.extend(batch.iter().map(|r| map(&r)));
    }
    out
}

/// Polls until `n` records came; returns (offset, record).
async fn consume(consumer: &Consumer, n: usize, max_per_poll: usize) -> Vec<(i64, Rec)> {
    consume_mapped(consumer, n, max_per_poll, |r| {
        (
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
        )
    })
    .await
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
                match kind.gap(Capability::FetchByTopicId) {
                    None => assert_eq!(
                        m.fetches_by_topic_id, m.fetch_requests,
                        "{kind} serves Fetch v13+ with topic ids: every fetch goes by id"
                    ),
                    Some(gap) => assert_eq!(
                        m.fetches_by_topic_id, 0,
                        "{kind} fetches by topic id now: drop the gap ({gap})"
                    ),
                }
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
async fn fetch_sessions_go_incremental_where_the_broker_keeps_them() {
    let run = std::process::id();
    let mut seen = Vec::new();
    for kind in BrokerKind::ALL {
        let broker = TestCluster::from_env_or_start(kind).unwrap();
        let bootstrap = broker.bootstrap_servers();
        let topic = format!("consume-sessions-{run}");
        create_topic(&bootstrap, &topic, 1).await;
        let sent = produce("librdkafka", &bootstrap, &topic, "none", &[]);
        let consumer = consumer(&bootstrap, config()).await;
        consumer
            .assign([TopicPartition::new(topic.as_str(), 0)])
            .unwrap();
        let got = consume(&consumer, sent.len(), 100).await;
        assert_consecutive(&got, 0);
        // At the end of the log: a few more fetches, each answered empty.
        let idle = Instant::now();
        while idle.elapsed() < Duration::from_millis(1500) {
            let more = consumer
                .poll(100, Duration::from_millis(300))
                .await
                .unwrap();
            assert!(more.is_empty(), "{kind}: nothing past the end");
        }
        let m = consumer.metrics();
        seen.push((kind, m.fetch_requests, m.incremental_fetches));
        assert!(
            m.fetch_requests >= 4,
            "{kind}: {} fetches",
            m.fetch_requests
        );
        assert_eq!(m.fetch_session_resets, 0, "{kind}: no session errors");
    }
    // Each message shows (broker, fetches, incremental ones) of every broker.
    for &(kind, fetches, incremental) in &seen {
        match kind.gap(Capability::FetchSessions) {
            None => assert_eq!(
                incremental,
                fetches - 1,
                "{kind} keeps sessions: every fetch after the first is incremental; {seen:?}"
            ),
            Some(gap) => assert_eq!(
                incremental, 0,
                "{kind} keeps fetch sessions now: drop the gap ({gap}); {seen:?}"
            ),
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

/// Retriable fetch errors injected on every broker of a 3-broker mock for a
/// while (each broker answers NOT_LEADER_OR_FOLLOWER, then REQUEST_TIMED_OUT,
/// in every partition of its fetch session, then adds latency, then drops the
/// connection): the consumer retries, and reads every record exactly once,
/// in order, with its fetch sessions intact (the mock moves a session on
/// through a failed fetch, as a broker does).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_injected_fetch_errors_are_retried_without_skips_or_repeats() {
    use ferrokafka::protocol::{ApiKey, ErrorCode};
    use ferrokafka::testkit::mock::Fault;

    let mock = MockCluster::start(3).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let topic = "consume-fetch-faults";
    mock.create_topic(topic, 3, 3).unwrap();
    produce_sized(&bootstrap, topic, 3, 300, 32).await;
    let consumer = consumer(&bootstrap, config()).await;
    consumer
        .assign((0..3).map(|p| TopicPartition::new(topic, p)))
        .unwrap();
    let mut got = consume_values(&consumer, 90).await;
    let fetches = mock.total_request_count(ApiKey::Fetch);
    for id in mock.broker_ids() {
        for code in [ErrorCode::NotLeaderOrFollower, ErrorCode::RequestTimedOut] {
            mock.inject(Fault::error(ApiKey::Fetch, code).on_broker(id).times(3));
        }
        mock.inject(Fault::latency(ApiKey::Fetch, Duration::from_millis(30)).on_broker(id));
        mock.inject(Fault::drop_connection(ApiKey::Fetch).on_broker(id));
    }
    produce_sized(&bootstrap, topic, 3, 300, 32).await;
    got.extend(consume_values(&consumer, 600 - got.len()).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !mock.pending_faults().is_empty() {
        assert!(
            Instant::now() < deadline,
            "faults not reached: {:?}",
            mock.pending_faults()
        );
        let stray = consumer.poll(10, Duration::from_millis(100)).await.unwrap();
        assert_eq!(stray.len(), 0, "nothing beyond the 600 records");
    }
    let after = mock.total_request_count(ApiKey::Fetch);
    assert!(after >= fetches + 3 * 8, "every fault answered a fetch");
    for p in 0..3 {
        let offsets: Vec<i64> = got.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
        assert_eq!(
            offsets,
            (0..200).collect::<Vec<i64>>(),
            "partition {p}: no skip, no repeat"
        );
    }
    // Each round numbered its records 0..300 round robin over the partitions.
    for &(p, offset, number) in &got {
        let round_offset = (offset % 100) as u64;
        assert_eq!(number, round_offset * 3 + p as u64, "{p}@{offset}");
    }
    let m = consumer.metrics();
    assert_eq!(
        m.fetch_session_resets, 0,
        "failed fetches moved the sessions on: {m:?}"
    );
    assert!(m.incremental_fetches > 0, "{m:?}");
}

/// KIP-320 on the mock: the leader moves and the new leader's log is
/// truncated below what the consumer read (an unclean election). A consumer
/// with `auto.offset.reset=none` reports LogTruncation at its position with
/// the divergent offset; one with a reset policy continues at the divergent
/// offset and reads what the new leader writes there, skipping nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_truncation_after_a_leader_move_is_detected() {
    use ferrokafka::consumer::ConsumerError;

    let mock = MockCluster::start(2).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let topic = "consume-truncated";
    let tp = TopicPartition::new(topic, 0);
    mock.create_topic(topic, 1, 2).unwrap();
    // Two batches, 0..12 and 12..20, so that truncating at 12 keeps the first.
    produce_sized(&bootstrap, topic, 1, 12, 32).await;
    produce_sized(&bootstrap, topic, 1, 8, 32).await;
    let strict = consumer(
        &bootstrap,
        ConsumerConfig::builder()
            .auto_offset_reset(AutoOffsetReset::None)
            .fetch_max_wait(Duration::from_millis(100))
            .build()
            .unwrap(),
    )
    .await;
    let resetting = consumer(&bootstrap, config()).await;
    for c in [&strict, &resetting] {
        c.assign([tp.clone()]).unwrap();
        c.seek(&tp, Offset::Beginning).unwrap();
        let read = consume_values(c, 20).await;
        assert_eq!(read.last().map(|r| r.1), Some(19));
    }
    let (leader, _) = mock.partition_leader(topic, 0).unwrap();
    let other = mock
        .broker_ids()
        .into_iter()
        .find(|&b| b != leader)
        .unwrap();
    mock.move_partition_leader(topic, 0, other).unwrap();
    mock.truncate_partition(topic, 0, 12).unwrap();
    assert_eq!(mock.high_watermark(topic, 0).unwrap(), 12);

    let deadline = Instant::now() + Duration::from_secs(20);
    let error = loop {
        assert!(Instant::now() < deadline, "{:?}", strict.metrics());
        match strict.poll(10, Duration::from_millis(100)).await {
            Err(e) => break e,
            Ok(batch) => assert_eq!(batch.len(), 0),
        }
    };
    match error {
        ConsumerError::LogTruncation {
            partition,
            offset,
            divergent_offset,
        } => assert_eq!((partition, offset, divergent_offset), (tp.clone(), 20, 12)),
        other => panic!("expected LogTruncation, got {other}"),
    }

    // The other consumer moves back to 12 and reads the new leader's records.
    let deadline = Instant::now() + Duration::from_secs(20);
    while resetting.position(&tp).unwrap() != Some(12) {
        assert!(Instant::now() < deadline, "{:?}", resetting.metrics());
        let stray = resetting
            .poll(10, Duration::from_millis(100))
            .await
            .unwrap();
        assert_eq!(stray.len(), 0);
    }
    produce_sized(&bootstrap, topic, 1, 5, 32).await;
    let after = consume_values(&resetting, 5).await;
    let offsets: Vec<(i64, u64)> = after.iter().map(|r| (r.1, r.2)).collect();
    assert_eq!(offsets, (12..17).zip(0..5).collect::<Vec<(i64, u64)>>());
    assert!(mock.request_count(other, ferrokafka::protocol::ApiKey::Fetch) > 0);
}

/// Produces `count` records of `size` bytes round-robin over `partitions`
/// with ferrokafka's producer; the value starts with the record's number.
async fn produce_sized(bootstrap: &str, topic: &str, partitions: i32, count: usize, size: usize) {
    use ferrokafka::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
    let producer = Producer::new(
        client_config(bootstrap),
        ProducerConfig::builder()
            .acks(Acks::Leader)
            .linger(Duration::from_millis(5))
            .batch_size(256 * 1024)
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    let mut handles = Vec::with_capacity(count);
    for i in 0..count {
        let mut value = format!("{i:>12}").into_bytes();
        value.resize(size, b'.');
        let record = ProducerRecord::new(topic.to_owned(), bytes::Bytes::from(value))
            .with_partition(i as i32 % partitions);
        handles.push(producer.send(record).await.unwrap());
    }
    for h in handles {
        h.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// Issue 9's bounded memory on a real broker: a 100 MB topic
/// (`FK_BOUNDED_MEMORY_MB` changes the size; about 11 s on two busy cores)
/// read by an application slower than the
/// fetcher, with a 4 MiB buffer budget: the buffered bytes never pass the
/// budget by more than one fetch response, the buffer does fill (so the
/// bound was tested), and every record comes, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_application_keeps_buffered_bytes_under_the_budget_on_tansu() {
    let megabytes: usize = std::env::var("FK_BOUNDED_MEMORY_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    const RECORD: usize = 1024;
    const PARTITIONS: i32 = 3;
    let count = megabytes * 1024 * 1024 / RECORD;
    let broker = TestCluster::from_env_or_start(BrokerKind::Tansu).unwrap();
    let bootstrap = broker.bootstrap_servers();
    let topic = format!("consume-bounded-{}", std::process::id());
    let admin = Admin::connect(client_config(&bootstrap)).await.unwrap();
    admin
        .create_topics(
            &[NewTopic::new(topic.as_str(), PARTITIONS, 1)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap()[topic.as_str()]
    .as_ref()
    .unwrap();
    let started = Instant::now();
    produce_sized(&bootstrap, &topic, PARTITIONS, count, RECORD).await;
    let produced_in = started.elapsed();

    let budget = 4 * 1024 * 1024;
    let response_max = 1024 * 1024;
    let consumer = consumer(
        &bootstrap,
        ConsumerConfig::builder()
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .fetch_max_wait(Duration::from_millis(100))
            .fetch_buffer_bytes(budget)
            .fetch_max_bytes(response_max as i32)
            .max_partition_fetch_bytes(response_max as i32)
            .build()
            .unwrap(),
    )
    .await;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    consumer.assign(tps.clone()).unwrap();
    let started = Instant::now();
    let mut next = vec![0i64; PARTITIONS as usize];
    let mut seen = 0usize;
    let mut polls = 0u64;
    while seen < count {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{seen} of {count} records; {:?}",
            consumer.metrics()
        );
        let batch = consumer.poll(64, Duration::from_secs(5)).await.unwrap();
        for r in batch.iter() {
            let p = r.partition() as usize;
            assert_eq!(r.offset(), next[p], "partition {p}");
            next[p] += 1;
            assert_eq!(r.value().unwrap().len(), RECORD);
        }
        seen += batch.len();
        polls += 1;
        let buffered = consumer.metrics().buffered_bytes;
        assert!(
            buffered <= budget + response_max,
            "{buffered} bytes buffered (budget {budget})"
        );
        // The application is slow: 64 records (64 KiB) per 2 ms at most
        // (32 MB/s), slower than the fetcher reads from a local broker.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let consumed_in = started.elapsed();
    let m = consumer.metrics();
    assert_eq!(seen, count);
    assert_eq!(m.records_consumed, count as u64);
    for (p, tp) in tps.iter().enumerate() {
        assert_eq!(consumer.position(tp).unwrap(), Some(next[p]));
    }
    assert!(
        m.max_buffered_bytes <= budget + response_max,
        "max {} buffered (budget {budget})",
        m.max_buffered_bytes
    );
    assert!(
        m.max_buffered_bytes >= budget / 2,
        "the buffer never filled ({} bytes at most): the application was not slower than \
         the fetcher, so the bound was not exercised",
        m.max_buffered_bytes
    );
    eprintln!(
        "bounded memory: {megabytes} MB ({count} records) produced in {produced_in:?}, consumed \
         in {consumed_in:?} over {polls} polls; max buffered {} bytes (budget {budget}); \
         {} fetches, {} by topic id",
        m.max_buffered_bytes, m.fetch_requests, m.fetches_by_topic_id
    );
}

/// Fetch v13+ (KIP-516) on the mock cluster, which serves it: fetches name
/// topics by id from the metadata. When the topic is deleted and created
/// again under the same name (a new id), the broker answers UNKNOWN_TOPIC_ID
/// for the old id; the consumer refreshes its metadata, moves its fetch
/// session to the new id and reads what is written to the new topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mock_cluster_fetches_by_topic_id_and_follows_a_recreated_topic() {
    let mock = MockCluster::start(1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let topic = "consume-ids";
    mock.create_topic(topic, 2, 1).unwrap();
    produce_sized(&bootstrap, topic, 2, 40, 32).await;
    let tps = [TopicPartition::new(topic, 0), TopicPartition::new(topic, 1)];
    let consumer = consumer(&bootstrap, config()).await;
    consumer.assign(tps.clone()).unwrap();
    let first = consume_values(&consumer, 40).await;
    assert_eq!(first.len(), 40);
    let m = consumer.metrics();
    assert!(m.fetch_requests > 0);
    assert_eq!(
        m.fetches_by_topic_id, m.fetch_requests,
        "the mock serves Fetch v13+ and Metadata with topic ids: every fetch goes by id"
    );

    let admin = Admin::connect(client_config(&bootstrap)).await.unwrap();
    admin
        .delete_topics(&[topic], Default::default())
        .await
        .unwrap()[topic]
        .as_ref()
        .unwrap();
    mock.create_topic(topic, 2, 1).unwrap();
    // The old id is unknown now; with the new one the positions (20) are past
    // the new, empty log's end: KIP-320 validation finds the log "truncated"
    // to 0 and, with auto.offset.reset set, the consumer continues from there.
    let deadline = Instant::now() + Duration::from_secs(30);
    while tps
        .iter()
        .any(|tp| consumer.position(tp).unwrap() != Some(0))
    {
        assert!(Instant::now() < deadline, "{:?}", consumer.metrics());
        let stray = consumer.poll(10, Duration::from_millis(100)).await.unwrap();
        assert_eq!(stray.len(), 0);
    }
    produce_sized(&bootstrap, topic, 2, 10, 32).await;
    let second = consume_values(&consumer, 10).await;
    let mut offsets: Vec<(i32, i64)> = second.iter().map(|r| (r.0, r.1)).collect();
    offsets.sort();
    let want: Vec<(i32, i64)> = (0..2).flat_map(|p| (0..5).map(move |o| (p, o))).collect();
    assert_eq!(offsets, want, "the new topic read from its start");
    let m = consumer.metrics();
    assert_eq!(m.fetches_by_topic_id, m.fetch_requests, "{m:?}");
    assert!(
        m.incremental_fetches > 0,
        "the mock keeps fetch sessions: {m:?}"
    );
}

/// Polls until `n` records came; returns (partition, offset, number in the value).
async fn consume_values(consumer: &Consumer, n: usize) -> Vec<(i32, i64, u64)> {
    consume_mapped(consumer, n, 100, |r| {
        let value = r.value().unwrap();
        let number = std::str::from_utf8(&value[..12])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        (r.partition(), r.offset(), number)
    })
    .await
}

/// Pause, resume and assignment changes while fetching, on both real
/// brokers: a paused partition hands out nothing while the others flow, and
/// after resume it continues where it stopped; a partition added mid-fetch
/// starts from the beginning (auto.offset.reset earliest) and one removed
/// hands out nothing more, even when new records arrive for it. Every
/// partition's offsets come consecutively: nothing skipped or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_and_assignment_changes_while_fetching() {
    let run = std::process::id();
    for kind in BrokerKind::ALL {
        let broker = TestCluster::from_env_or_start(kind).unwrap();
        let bootstrap = broker.bootstrap_servers();
        let topic = format!("consume-pause-{run}");
        let admin = Admin::connect(client_config(&bootstrap)).await.unwrap();
        let created = admin
            .create_topics(
                &[NewTopic::new(&topic, 3, 1)],
                CreateTopicsOptions::default(),
            )
            .await
            .unwrap();
        created[topic.as_str()].as_ref().unwrap();
        // 100 records per partition (record i goes to partition i % 3).
        produce_sized(&bootstrap, &topic, 3, 300, 40).await;
        let tp = |p: i32| TopicPartition::new(topic.as_str(), p);
        let consumer = consumer(&bootstrap, config()).await;
        consumer.assign([tp(0), tp(1)]).unwrap();
        let mut seen: Seen = Default::default();
        let deadline = Instant::now() + Duration::from_secs(30);
        // Some of partition 0 first, at most 10 records a poll.
        while seen.get(&0).map_or(0, Vec::len) < 10 {
            assert!(Instant::now() < deadline, "{kind}: partition 0 never came");
            let batch = consumer.poll(10, Duration::from_millis(200)).await.unwrap();
            note(&mut seen, &batch);
        }
        consumer.pause([&tp(0)]).unwrap();
        assert_eq!(consumer.paused(), vec![tp(0)]);
        let paused_at = seen[&0].len();
        // While 0 is paused, 1 is read to its end and 2 is added mid-fetch.
        let mut added = false;
        while seen.get(&1).map_or(0, Vec::len) < 100 || seen.get(&2).map_or(0, Vec::len) < 100 {
            assert!(
                Instant::now() < deadline,
                "{kind}: partitions 1 and 2 stalled while 0 was paused: {:?}",
                seen.iter().map(|(p, o)| (p, o.len())).collect::<Vec<_>>()
            );
            let batch = consumer.poll(10, Duration::from_millis(200)).await.unwrap();
            let from = note(&mut seen, &batch);
            assert!(
                !from.contains(&0),
                "{kind}: a paused partition handed out records"
            );
            if !added && seen.get(&1).map_or(0, Vec::len) >= 20 {
                consumer.assign([tp(0), tp(1), tp(2)]).unwrap();
                added = true;
            }
        }
        assert_eq!(
            seen[&0].len(),
            paused_at,
            "{kind}: records of the paused partition"
        );
        consumer.resume([&tp(0)]).unwrap();
        // Partition 1 leaves the assignment; new records for it never come.
        consumer.assign([tp(0), tp(2)]).unwrap();
        produce_sized(&bootstrap, &topic, 3, 30, 40).await;
        while seen[&0].len() < 110 || seen[&2].len() < 110 {
            assert!(
                Instant::now() < deadline,
                "{kind}: after resume: {:?}",
                seen.iter().map(|(p, o)| (p, o.len())).collect::<Vec<_>>()
            );
            let batch = consumer.poll(50, Duration::from_millis(200)).await.unwrap();
            let from = note(&mut seen, &batch);
            assert!(
                !from.contains(&1),
                "{kind}: an unassigned partition handed out records"
            );
        }
        for (p, offsets) in &seen {
            let want: Vec<i64> = (0..offsets.len() as i64).collect();
            assert_eq!(offsets, &want, "{kind}: partition {p} skipped or repeated");
        }
        assert_eq!(
            seen[&1].len(),
            100,
            "{kind}: partition 1 after it was removed"
        );
        consumer.close().await;
        let _ = admin
            .delete_topics(&[topic.as_str()], DeleteTopicsOptions::default())
            .await;
    }
}

/// Offsets handed out, per partition, in order.
type Seen = std::collections::BTreeMap<i32, Vec<i64>>;

/// Notes a batch's offsets; returns the partitions it came from.
fn note(seen: &mut Seen, batch: &ferrokafka::consumer::Records) -> Vec<i32> {
    let mut partitions = Vec::new();
    for r in batch.iter() {
        seen.entry(r.partition()).or_default().push(r.offset());
        partitions.push(r.partition());
    }
    partitions
}
