//! The mock cluster (`ferrokafka::testkit::mock`) as real clients see it:
//! librdkafka (confluent-kafka) and kafka-python produce, consume and run a
//! consumer group through a 3-broker mock; ferrokafka's own `Cluster` and
//! admin client see metadata, created topics and leader moves; injected
//! retriable errors are retried by `Cluster::retry`; and the wire semantics
//! the producer, consumer and group work relies on (idempotent sequences,
//! fetch sessions, transactions, KIP-320 epochs, KIP-394 member ids, broker
//! stop/restart) are checked request by request.
//!
//! The Python clients come from `scripts/brokers.sh install`; their absence
//! is a failure, not a skip.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka::admin::{Admin, CreateTopicsOptions, DescribeTopicsOptions, NewTopic};
use ferrokafka::network::{ClientConfig, Cluster, Error, RequestOptions};
use ferrokafka::protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use ferrokafka::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use ferrokafka::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use ferrokafka::protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use ferrokafka::protocol::messages::{
    AddPartitionsToTxnRequest, ApiVersionsRequest, EndTxnRequest, FetchRequest,
    FindCoordinatorRequest, InitProducerIdRequest, JoinGroupRequest, OffsetForLeaderEpochRequest,
    ProduceRequest, ProduceResponse,
};
use ferrokafka::protocol::{ApiKey, ErrorCode};
use ferrokafka::records::{BatchReader, Compression, RecordBatchBuilder};
use ferrokafka::testkit::mock::{Fault, GroupState, MockCluster};
use ferrokafka::testkit::BlockingClient;
use support::peers::{self, wait_until_blocking, GroupMember, MemberOptions, Peer, PeerRecord};

const TIMEOUT: Duration = Duration::from_secs(10);
/// How long the group tests hold each JoinGroup at the coordinator that is
/// about to move, so that the move lands inside the rebalance.
const JOIN_HELD: Duration = Duration::from_millis(500);

fn client(cluster: &MockCluster, node_id: i32) -> BlockingClient {
    BlockingClient::connect(&cluster.broker_address(node_id).unwrap(), TIMEOUT).unwrap()
}

fn batch(producer: (i64, i16, i32), values: &[&str]) -> Bytes {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder
        .set_producer_id(producer.0)
        .set_producer_epoch(producer.1)
        .set_base_sequence(producer.2);
    for (i, v) in values.iter().enumerate() {
        builder
            .append(1_700_000_000_000 + i as i64, None, Some(v.as_bytes()), &[])
            .unwrap();
    }
    builder.finish().unwrap()
}

fn produce_request(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic.into())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

fn partition_result(response: &ProduceResponse) -> (i16, i64) {
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

// ---------------------------------------------------------------- Python clients

/// Produces `count` records with a Python client; returns (partition, offset, value).
fn python_produce(
    client: &str,
    bootstrap: &str,
    topic: &str,
    count: usize,
) -> Vec<(i64, i64, String)> {
    let count = count.to_string();
    let out = peers::run_peer_script("produce.py", client, bootstrap, topic, &["--count", &count]);
    parse_lines(&out)
}

fn python_consume(
    client: &str,
    bootstrap: &str,
    topic: &str,
    partitions: usize,
    count: usize,
) -> Vec<(i64, i64, String)> {
    let (partitions, count) = (partitions.to_string(), count.to_string());
    let out = peers::run_peer_script(
        "consume.py",
        client,
        bootstrap,
        topic,
        &["--partitions", &partitions, "--count", &count],
    );
    parse_lines(&out)
}

fn parse_lines(stdout: &str) -> Vec<(i64, i64, String)> {
    peers::json_lines(stdout)
        .map(|v| {
            let r = PeerRecord::from_json(&v);
            (
                i64::from(r.partition),
                r.offset,
                String::from_utf8(r.value.unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn librdkafka_and_kafka_python_produce_and_consume_through_three_brokers() {
    let cluster = MockCluster::start(3).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let count = 60;
    for producer in ["librdkafka", "kafka-python"] {
        let topic = format!("round-trip-{producer}");
        cluster.create_topic(&topic, 3, 2).unwrap();
        let produced = python_produce(producer, &bootstrap, &topic, count);
        assert_eq!(produced.len(), count, "{producer} delivered");
        // Stored in the mock exactly as delivered: every partition's offsets 0.. dense.
        let mut stored = 0;
        for p in 0..3 {
            let records = cluster.records(&topic, p).unwrap();
            for (i, r) in records.iter().enumerate() {
                assert_eq!(r.offset, i as i64, "{producer} partition {p}");
                assert!(produced.contains(&(
                    i64::from(p),
                    r.offset,
                    String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap()
                )));
            }
            stored += records.len();
        }
        assert_eq!(stored, count, "{producer}: no loss, no duplicate");
        let used: BTreeSet<i64> = produced.iter().map(|r| r.0).collect();
        assert!(
            used.len() > 1,
            "{producer} spread keys over partitions: {used:?}"
        );
        for consumer in ["librdkafka", "kafka-python"] {
            let mut consumed = python_consume(consumer, &bootstrap, &topic, 3, count);
            let mut want = produced.clone();
            consumed.sort();
            want.sort();
            assert_eq!(consumed, want, "{consumer} reads what {producer} wrote");
        }
        println!("{producer} -> librdkafka, kafka-python: {count} records over 3 partitions");
    }
    // librdkafka produced idempotently: it asked for a producer id.
    let init: u64 = cluster
        .broker_ids()
        .iter()
        .map(|&b| cluster.request_count(b, ApiKey::InitProducerId))
        .sum();
    assert!(
        init >= 1,
        "librdkafka's idempotent producer used InitProducerId"
    );
}

fn run_group(client: Peer) {
    let cluster = MockCluster::start(3).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let topic = format!("group-topic-{client}");
    let group = format!("group-{client}");
    cluster.create_topic(&topic, 4, 3).unwrap();
    let options = MemberOptions::new(client, &bootstrap, &topic, &group, "range");
    let first = GroupMember::start("first", &options);
    // Generous: under the suite's parallel load a Python client can take a
    // while to start, find the coordinator and join (seen once at 20 s).
    wait_until_blocking(
        "the first member to own every partition",
        TIMEOUT * 6,
        || first.partitions() == vec![0, 1, 2, 3],
    );
    let generation = cluster.group(&group).unwrap().generation;
    let old = cluster.group_coordinator(&group);
    // The second join starts a rebalance; move the coordinator in the middle
    // of it. Left alone, that rebalance can be over in 3 ms: the first
    // member learns of it from its next heartbeat (every 300 ms), and when
    // that heartbeat comes right after the second join, the rejoin, the
    // assignment and the sync follow at once, between two looks at the
    // group. So every JoinGroup at the old coordinator is held for a while
    // first: the first member's rejoin too, which keeps the group waiting
    // for it (PreparingRebalance) for at least that long.
    cluster.inject(
        Fault::latency(ApiKey::JoinGroup, JOIN_HELD)
            .on_broker(old)
            .times(usize::MAX),
    );
    let second = GroupMember::start("second", &options);
    wait_until_blocking("the rebalance to start", TIMEOUT * 2, || {
        cluster
            .group(&group)
            .is_some_and(|g| g.state != GroupState::Stable)
    });
    let new = cluster
        .broker_ids()
        .into_iter()
        .find(|&b| b != old)
        .unwrap();
    cluster.move_group_coordinator(&group, new).unwrap();
    // JoinGroups already held end in NOT_COORDINATOR; the new coordinator
    // holds none.
    cluster.clear_faults();
    wait_until_blocking(
        "the rebalance to complete on the new coordinator",
        TIMEOUT * 3,
        || {
            let a = first.partitions();
            let b = second.partitions();
            let all: BTreeSet<i32> = a.iter().chain(&b).copied().collect();
            !a.is_empty()
                && !b.is_empty()
                && a.len() + b.len() == 4
                && all.len() == 4
                && cluster.group(&group).is_some_and(|g| {
                    g.state == GroupState::Stable
                        && g.members.len() == 2
                        && g.generation > generation
                })
        },
    );
    let joins_at_new = cluster.request_count(new, ApiKey::JoinGroup);
    let syncs_at_new = cluster.request_count(new, ApiKey::SyncGroup);
    assert!(
        joins_at_new >= 1 && syncs_at_new >= 1,
        "{client}: the group rejoined at broker {new}"
    );
    let heartbeats: u64 = cluster
        .broker_ids()
        .iter()
        .map(|&b| cluster.request_count(b, ApiKey::Heartbeat))
        .sum();
    assert!(heartbeats > 0, "{client} members heartbeat");
    println!(
        "{client}: coordinator {old} -> {new} mid-rebalance; generation {} with {:?} / {:?}",
        cluster.group(&group).unwrap().generation,
        first.partitions(),
        second.partitions()
    );
    second.stop();
    // The leaving member's partitions go back to the first one.
    wait_until_blocking(
        "the first member to own every partition again",
        TIMEOUT * 2,
        || first.partitions() == vec![0, 1, 2, 3],
    );
    first.stop();
    wait_until_blocking("the group to empty", TIMEOUT, || {
        cluster
            .group(&group)
            .is_some_and(|g| g.state == GroupState::Empty)
    });
}

#[test]
fn librdkafka_group_members_complete_a_rebalance_across_a_coordinator_move() {
    run_group(Peer::Librdkafka);
}

#[test]
fn kafka_python_group_members_complete_a_rebalance_across_a_coordinator_move() {
    run_group(Peer::KafkaPython);
}

// ---------------------------------------------------------------- ferrokafka's own clients

async fn admin(cluster: &MockCluster) -> Admin {
    let config = ClientConfig::builder()
        .bootstrap_servers(cluster.bootstrap_servers().split(','))
        .default_api_timeout(Duration::from_secs(10))
        .retry_backoff(Duration::from_millis(10))
        .retry_backoff_max(Duration::from_millis(50))
        .build()
        .unwrap();
    Admin::connect(config).await.unwrap()
}

#[tokio::test]
async fn admin_client_creates_describes_and_sees_a_leader_move() {
    let mock = MockCluster::start(3).unwrap();
    let admin = admin(&mock).await;
    let created = admin
        .create_topics(
            &[NewTopic::new("moves", 3, 3)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    assert!(created["moves"].is_ok(), "{created:?}");
    let again = admin
        .create_topics(
            &[NewTopic::new("moves", 3, 3)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        again["moves"].as_ref().unwrap_err().error_code(),
        Some(ErrorCode::TopicAlreadyExists)
    );
    let described = admin
        .describe_topics(&["moves"], DescribeTopicsOptions::default())
        .await
        .unwrap();
    let topic = described["moves"].as_ref().unwrap();
    assert_eq!(topic.partitions.len(), 3);
    let leaders: BTreeSet<i32> = topic.partitions.iter().filter_map(|p| p.leader).collect();
    assert_eq!(
        leaders.len(),
        3,
        "leaders spread over the brokers: {topic:?}"
    );
    for p in &topic.partitions {
        assert_eq!(p.leader_epoch, Some(0));
        assert_eq!(p.replicas.len(), 3);
        assert_eq!(p.isr.len(), 3);
    }

    let cluster: &Cluster = admin.cluster();
    cluster.track_topics(["moves"]);
    let before = cluster.leader_for("moves", 1).await.unwrap();
    let target = mock
        .broker_ids()
        .into_iter()
        .find(|&b| b != before.node_id)
        .unwrap();
    let epoch = mock.move_partition_leader("moves", 1, target).unwrap();
    assert_eq!(epoch, before.leader_epoch + 1);
    cluster.invalidate_metadata();
    let after = cluster.leader_for("moves", 1).await.unwrap();
    assert_eq!((after.node_id, after.leader_epoch), (target, epoch));

    // A stopped broker leaves metadata; its partitions get new leaders.
    mock.stop_broker(target).unwrap();
    cluster.invalidate_metadata();
    // The connection to the stopped broker may be the one picked: a
    // retriable disconnect, retried.
    let metadata = cluster
        .retry("metadata", None, || cluster.refresh_metadata())
        .await
        .unwrap();
    assert!(!metadata.brokers.contains_key(&target));
    let moved = cluster.leader_for("moves", 1).await.unwrap();
    assert_ne!(moved.node_id, target);
    assert_eq!(moved.leader_epoch, epoch + 1);
    mock.restart_broker(target).unwrap();
    cluster.invalidate_metadata();
    let metadata = cluster
        .retry("metadata", None, || cluster.refresh_metadata())
        .await
        .unwrap();
    assert!(metadata.brokers.contains_key(&target));

    // A controller: the lowest live node id; it moves when that broker stops.
    let controller =
        |d: &ferrokafka::admin::ClusterDescription| d.controller.as_ref().map(|b| b.node_id);
    let described = admin.describe_cluster(Default::default()).await.unwrap();
    assert_eq!(
        (controller(&described), described.brokers.len()),
        (Some(1), 3)
    );
    assert!(described.cluster_id.is_some());
    mock.stop_broker(1).unwrap();
    let described = admin.describe_cluster(Default::default()).await.unwrap();
    assert_eq!(
        (controller(&described), described.brokers.len()),
        (Some(2), 2)
    );
}

#[tokio::test]
async fn injected_retriable_produce_errors_are_retried_by_cluster_retry() {
    let mock = MockCluster::start(3).unwrap();
    mock.create_topic("retried", 1, 3).unwrap();
    let admin = admin(&mock).await;
    let cluster = admin.cluster();
    let (leader, _) = mock.partition_leader("retried", 0).unwrap();
    for (round, code) in [
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::RequestTimedOut,
        ErrorCode::NotEnoughReplicas,
    ]
    .into_iter()
    .enumerate()
    {
        mock.inject(
            Fault::error(ApiKey::Produce, code)
                .on_broker(leader)
                .times(3),
        );
        let before = mock.request_count(leader, ApiKey::Produce);
        let request = produce_request("retried", 0, batch((-1, -1, -1), &["x"]));
        let base = cluster
            .retry("produce", None, || async {
                let response = cluster
                    .send_to_broker(leader, &request, RequestOptions::default())
                    .await?;
                let (code, base) = partition_result(&response);
                Error::check(ApiKey::Produce, code, None)?;
                Ok::<_, Error>(base)
            })
            .await
            .unwrap();
        assert_eq!(
            base, round as i64,
            "{code:?}: appended once, after the faults"
        );
        assert_eq!(
            mock.request_count(leader, ApiKey::Produce) - before,
            4,
            "{code:?}"
        );
        assert!(mock.pending_faults().is_empty());
    }
    assert_eq!(mock.records("retried", 0).unwrap().len(), 3);

    // Latency and a dropped connection are retried too.
    mock.inject(Fault::latency(ApiKey::Produce, Duration::from_millis(50)));
    mock.inject(Fault::drop_connection(ApiKey::Produce));
    let request = produce_request("retried", 0, batch((-1, -1, -1), &["y"]));
    let started = Instant::now();
    cluster
        .retry("produce", None, || {
            cluster.send_to_broker(leader, &request, RequestOptions::default())
        })
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(mock.records("retried", 0).unwrap().len(), 4);
}

// ---------------------------------------------------------------- wire semantics

#[test]
fn api_versions_lists_only_what_the_mock_serves() {
    let cluster = MockCluster::start(1).unwrap();
    let mut c = client(&cluster, 1);
    let versions = c.api_versions().unwrap();
    let listed: BTreeSet<i16> = versions.api_keys.iter().map(|k| k.api_key).collect();
    assert!(listed.contains(&ApiKey::Produce.key()));
    assert!(!listed.contains(&ApiKey::DescribeAcls.key()));
    let produce = versions
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Produce.key())
        .unwrap();
    assert_eq!(produce.max_version, ApiKey::Produce.stable_versions().max);
    // An API it does not serve closes the connection instead of hanging.
    let err = c.send(
        0,
        &ferrokafka::protocol::messages::DescribeAclsRequest::default(),
    );
    assert!(err.is_err());
    // A too-new ApiVersions gets UNSUPPORTED_VERSION in v0 with the list.
    let mut c = client(&cluster, 1);
    let v = c.send(3, &ApiVersionsRequest::default()).unwrap();
    assert_eq!(v.error_code, 0);
}

/// Every API issue 11 lists is served, at the newest version ferrokafka
/// sends; nothing else is listed.
#[tokio::test]
async fn ferrokafka_negotiates_its_newest_version_of_every_listed_api() {
    let mock = MockCluster::start(1).unwrap();
    let admin = admin(&mock).await;
    let connection = admin.cluster().broker_connection(1).await.unwrap();
    let listed: BTreeSet<i16> = client(&mock, 1)
        .api_versions()
        .unwrap()
        .api_keys
        .iter()
        .map(|k| k.api_key)
        .collect();
    let issue = [
        ApiKey::ApiVersions,
        ApiKey::Metadata,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::ListOffsets,
        ApiKey::OffsetForLeaderEpoch,
        ApiKey::InitProducerId,
        ApiKey::AddPartitionsToTxn,
        ApiKey::AddOffsetsToTxn,
        ApiKey::EndTxn,
        ApiKey::TxnOffsetCommit,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
    ];
    assert_eq!(
        listed,
        issue.iter().map(|a| a.key()).collect::<BTreeSet<i16>>()
    );
    for api in issue {
        assert_eq!(
            connection.negotiated_version(api),
            Some(api.stable_versions().max),
            "{api:?}"
        );
    }
}

#[test]
fn idempotent_sequences_are_checked_as_kafka_does() {
    let cluster = MockCluster::start(1).unwrap();
    cluster.create_topic("idem", 1, 1).unwrap();
    let mut c = client(&cluster, 1);
    let init = c
        .send(
            4,
            &InitProducerIdRequest::default().with_transaction_timeout_ms(60_000),
        )
        .unwrap();
    assert_eq!(init.error_code, 0);
    let pid = (init.producer_id, init.producer_epoch);
    let send = |c: &mut BlockingClient, seq: i32, values: &[&str]| {
        partition_result(
            &c.send(
                9,
                &produce_request("idem", 0, batch((pid.0, pid.1, seq), values)),
            )
            .unwrap(),
        )
    };
    assert_eq!(send(&mut c, 0, &["a", "b"]), (0, 0));
    assert_eq!(send(&mut c, 2, &["c"]), (0, 2));
    // A retried batch (same sequences) is acknowledged with its first offset, not stored again.
    assert_eq!(send(&mut c, 0, &["a", "b"]), (0, 0));
    // A gap is refused.
    assert_eq!(
        send(&mut c, 5, &["x"]).0,
        ErrorCode::OutOfOrderSequenceNumber.code()
    );
    assert_eq!(cluster.records("idem", 0).unwrap().len(), 3);
}

#[test]
fn fetch_sessions_answer_incrementally_and_long_polls_wake_on_produce() {
    let cluster = MockCluster::start(1).unwrap();
    cluster.create_topic("fs", 2, 1).unwrap();
    let mut producer = client(&cluster, 1);
    producer
        .send(9, &produce_request("fs", 0, batch((-1, -1, -1), &["a"])))
        .unwrap();
    let mut c = client(&cluster, 1);
    let fetch = |session_id: i32, epoch: i32, offsets: &[(i32, i64)], wait: i32| {
        FetchRequest::default()
            .with_max_wait_ms(wait)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_session_id(session_id)
            .with_session_epoch(epoch)
            .with_topics(vec![FetchTopic::default()
                .with_topic("fs".into())
                .with_partitions(
                    offsets
                        .iter()
                        .map(|&(p, o)| {
                            FetchPartition::default()
                                .with_partition(p)
                                .with_fetch_offset(o)
                                .with_partition_max_bytes(1 << 20)
                        })
                        .collect(),
                )])
    };
    let full = c.send(12, &fetch(0, 0, &[(0, 0), (1, 0)], 0)).unwrap();
    assert_eq!(full.error_code, 0);
    let session = full.session_id;
    assert!(session > 0);
    assert_eq!(
        full.responses[0].partitions.len(),
        2,
        "a full fetch lists every partition"
    );
    // Incremental: nothing changed, so after the wait nothing is listed.
    let started = Instant::now();
    let empty = c.send(12, &fetch(session, 1, &[(0, 1)], 100)).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(
        empty.responses.iter().all(|t| t.partitions.is_empty()),
        "{empty:?}"
    );
    // A long poll is woken by a produce to a partition of the session.
    let waker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        producer
            .send(9, &produce_request("fs", 1, batch((-1, -1, -1), &["b"])))
            .unwrap();
    });
    let started = Instant::now();
    let woken = c.send(12, &fetch(session, 2, &[], 5_000)).unwrap();
    waker.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    let partitions = &woken.responses[0].partitions;
    assert_eq!(partitions.len(), 1);
    assert_eq!(partitions[0].partition_index, 1);
    let records = BatchReader::new(partitions[0].records.clone().unwrap())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(records.len(), 1);
    // A wrong epoch is refused.
    let wrong = c.send(12, &fetch(session, 9, &[], 0)).unwrap();
    assert_eq!(wrong.error_code, ErrorCode::InvalidFetchSessionEpoch.code());
}

#[test]
fn transactions_write_markers_and_read_committed_sees_the_lso() {
    let cluster = MockCluster::start(3).unwrap();
    cluster.create_topic("txn", 1, 3).unwrap();
    let coordinator = cluster.transaction_coordinator("tx-1");
    let mut tc = client(&cluster, coordinator);
    let found = tc
        .send(
            3,
            &FindCoordinatorRequest::default()
                .with_key("tx-1".into())
                .with_key_type(1),
        )
        .unwrap();
    assert_eq!(found.node_id, coordinator);
    let init = tc
        .send(
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(Some("tx-1".into()))
                .with_transaction_timeout_ms(60_000),
        )
        .unwrap();
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let (leader, _) = cluster.partition_leader("txn", 0).unwrap();
    let mut pc = client(&cluster, leader);
    let txn_batch = |seq: i32, value: &str| {
        let mut b = RecordBatchBuilder::new(Compression::None);
        b.set_producer_id(pid)
            .set_producer_epoch(epoch)
            .set_base_sequence(seq)
            .set_transactional(true);
        b.append(1, None, Some(value.as_bytes()), &[]).unwrap();
        produce_request("txn", 0, b.finish().unwrap()).with_transactional_id(Some("tx-1".into()))
    };
    // Not added to the transaction yet: refused.
    let refused = pc.send(9, &txn_batch(0, "early")).unwrap();
    assert_eq!(
        partition_result(&refused).0,
        ErrorCode::InvalidTxnState.code()
    );
    let add = |tc: &mut BlockingClient| {
        tc.send(
            3,
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id("tx-1".into())
                .with_v3_and_below_producer_id(pid)
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name("txn".into())
                    .with_partitions(vec![0])]),
        )
        .unwrap()
    };
    assert_eq!(
        add(&mut tc).results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(
        partition_result(&pc.send(9, &txn_batch(0, "aborted")).unwrap()).0,
        0
    );
    assert_eq!(cluster.last_stable_offset("txn", 0).unwrap(), 0);
    let end = |tc: &mut BlockingClient, commit: bool| {
        tc.send(
            3,
            &EndTxnRequest::default()
                .with_transactional_id("tx-1".into())
                .with_producer_id(pid)
                .with_producer_epoch(epoch)
                .with_committed(commit),
        )
        .unwrap()
        .error_code
    };
    assert_eq!(end(&mut tc, false), 0);
    add(&mut tc);
    assert_eq!(
        partition_result(&pc.send(9, &txn_batch(1, "committed")).unwrap()).0,
        0
    );
    assert_eq!(end(&mut tc, true), 0);
    // Data at 0 (aborted), abort marker at 1, data at 2, commit marker at 3.
    assert_eq!(cluster.high_watermark("txn", 0).unwrap(), 4);
    assert_eq!(cluster.last_stable_offset("txn", 0).unwrap(), 4);
    let fetched = pc
        .send(
            12,
            &FetchRequest::default()
                .with_max_bytes(1 << 20)
                .with_isolation_level(1)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic("txn".into())
                    .with_partitions(vec![
                        FetchPartition::default().with_partition_max_bytes(1 << 20)
                    ])]),
        )
        .unwrap();
    let p = &fetched.responses[0].partitions[0];
    assert_eq!(p.last_stable_offset, 4);
    let aborted = p.aborted_transactions.as_ref().unwrap();
    assert_eq!((aborted[0].producer_id, aborted[0].first_offset), (pid, 0));
    let batches = BatchReader::new(p.records.clone().unwrap())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(batches.iter().filter(|b| b.is_control()).count(), 2);
}

#[test]
fn leader_epochs_fence_and_truncation_shows_in_offset_for_leader_epoch() {
    let cluster = MockCluster::start(2).unwrap();
    cluster.create_topic("epochs", 1, 2).unwrap();
    let (leader, _) = cluster.partition_leader("epochs", 0).unwrap();
    let mut c = client(&cluster, leader);
    for v in ["a", "b", "c"] {
        c.send(9, &produce_request("epochs", 0, batch((-1, -1, -1), &[v])))
            .unwrap();
    }
    let other = cluster
        .broker_ids()
        .into_iter()
        .find(|&b| b != leader)
        .unwrap();
    assert_eq!(
        cluster.move_partition_leader("epochs", 0, other).unwrap(),
        1
    );
    let mut n = client(&cluster, other);
    n.send(
        9,
        &produce_request("epochs", 0, batch((-1, -1, -1), &["d"])),
    )
    .unwrap();
    cluster.truncate_partition("epochs", 0, 2).unwrap();
    let ask = |epoch: i32, current: i32| {
        OffsetForLeaderEpochRequest::default().with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic("epochs".into())
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(current)
                .with_leader_epoch(epoch)])])
    };
    let answer = n.send(4, &ask(0, 2)).unwrap();
    let end = &answer.topics[0].partitions[0];
    assert_eq!(
        (end.error_code, end.leader_epoch, end.end_offset),
        (0, 0, 2)
    );
    let fenced = n.send(4, &ask(0, 1)).unwrap();
    assert_eq!(
        fenced.topics[0].partitions[0].error_code,
        ErrorCode::FencedLeaderEpoch.code()
    );
    assert_eq!(cluster.high_watermark("epochs", 0).unwrap(), 2);
}

/// ListOffsets as Kafka answers it (Tansu gets latest and timestamps wrong,
/// so the mock is where the consumer's seeks have a reference): earliest,
/// latest, max-timestamp and by-timestamp lookups with the epoch of the
/// batch found; the old leader refuses; stale and future epochs are fenced.
#[test]
fn list_offsets_answers_earliest_latest_max_timestamp_and_by_timestamp() {
    use ferrokafka::protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsTopic,
    };
    use ferrokafka::protocol::messages::ListOffsetsRequest;

    let cluster = MockCluster::start(2).unwrap();
    cluster.create_topic("times", 1, 2).unwrap();
    let stamped = |stamps: &[i64]| {
        let mut builder = RecordBatchBuilder::new(Compression::None);
        for &ts in stamps {
            builder.append(ts, None, Some(b"v"), &[]).unwrap();
        }
        produce_request("times", 0, builder.finish().unwrap())
    };
    let (first, _) = cluster.partition_leader("times", 0).unwrap();
    let mut old = client(&cluster, first);
    old.send(9, &stamped(&[100, 300, 200])).unwrap();
    let second = cluster
        .broker_ids()
        .into_iter()
        .find(|&b| b != first)
        .unwrap();
    assert_eq!(
        cluster.move_partition_leader("times", 0, second).unwrap(),
        1
    );
    let mut leader = client(&cluster, second);
    leader.send(9, &stamped(&[400, 250])).unwrap();

    let ask = |c: &mut BlockingClient, timestamp: i64, epoch: i32| {
        let request = ListOffsetsRequest::default()
            .with_replica_id(-1)
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name("times".into())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_current_leader_epoch(epoch)
                    .with_timestamp(timestamp)])]);
        let answer = c.send(9, &request).unwrap();
        let p = &answer.topics[0].partitions[0];
        (p.error_code, p.timestamp, p.offset, p.leader_epoch)
    };
    // (error, timestamp, offset, epoch of the batch found)
    assert_eq!(ask(&mut leader, -2, 1), (0, -1, 0, 0), "earliest");
    assert_eq!(ask(&mut leader, -1, 1), (0, -1, 5, 1), "latest");
    assert_eq!(ask(&mut leader, -3, 1), (0, 400, 3, 1), "max timestamp");
    assert_eq!(
        ask(&mut leader, 250, -1),
        (0, 300, 1, 0),
        "first at or after 250"
    );
    assert_eq!(ask(&mut leader, 401, 1), (0, -1, -1, -1), "none that late");
    let code = |c: &mut BlockingClient, epoch: i32| ask(c, -1, epoch).0;
    assert_eq!(code(&mut old, 1), ErrorCode::NotLeaderOrFollower.code());
    assert_eq!(code(&mut leader, 0), ErrorCode::FencedLeaderEpoch.code());
    assert_eq!(code(&mut leader, 2), ErrorCode::UnknownLeaderEpoch.code());
}

#[test]
fn join_group_asks_for_a_member_id_first() {
    let cluster = MockCluster::start(3).unwrap();
    let coordinator = cluster.group_coordinator("kip-394");
    let mut c = client(&cluster, coordinator);
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id("kip-394".into())
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(member.into())
            .with_protocol_type("consumer".into())
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name("range".into())
                .with_metadata(Bytes::from_static(b"meta"))])
    };
    let first = c.send(9, &join("")).unwrap();
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired.code());
    assert!(!first.member_id.is_empty());
    let joined = c.send(9, &join(&first.member_id)).unwrap();
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.leader, first.member_id);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.members.len(), 1);
    // Another broker is not the coordinator.
    let other = cluster
        .broker_ids()
        .into_iter()
        .find(|&b| b != coordinator)
        .unwrap();
    let wrong = client(&cluster, other)
        .send(9, &join(&first.member_id))
        .unwrap();
    assert_eq!(wrong.error_code, ErrorCode::NotCoordinator.code());
    let g = cluster.group("kip-394").unwrap();
    assert_eq!(g.state, GroupState::CompletingRebalance);
}

#[test]
fn static_members_rejoin_without_a_rebalance_and_sessions_expire() {
    use ferrokafka::protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use ferrokafka::protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
    use ferrokafka::protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use ferrokafka::protocol::messages::{
        HeartbeatRequest, OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest,
    };

    let cluster = MockCluster::start(1).unwrap();
    cluster.create_topic("static", 1, 1).unwrap();
    let mut c = client(&cluster, 1);
    let join = |member: &str, instance: Option<&str>, session_ms: i32| {
        JoinGroupRequest::default()
            .with_group_id("static-group".into())
            .with_session_timeout_ms(session_ms)
            .with_rebalance_timeout_ms(5_000)
            .with_member_id(member.into())
            .with_group_instance_id(instance.map(str::to_owned))
            .with_protocol_type("consumer".into())
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name("range".into())
                .with_metadata(Bytes::from_static(b"m"))])
    };
    // A static member gets its id at once (no MEMBER_ID_REQUIRED round trip).
    let leader = c.send(9, &join("", Some("instance-a"), 10_000)).unwrap();
    assert_eq!(leader.error_code, 0);
    let sync = |c: &mut BlockingClient, member: &str, generation: i32, assign: bool| {
        let assignments = if assign {
            vec![SyncGroupRequestAssignment::default()
                .with_member_id(member.into())
                .with_assignment(Bytes::from_static(b"all"))]
        } else {
            Vec::new()
        };
        c.send(
            5,
            &SyncGroupRequest::default()
                .with_group_id("static-group".into())
                .with_generation_id(generation)
                .with_member_id(member.into())
                .with_group_instance_id(Some("instance-a".into()))
                .with_protocol_type(Some("consumer".into()))
                .with_protocol_name(Some("range".into()))
                .with_assignments(assignments),
        )
        .unwrap()
    };
    let synced = sync(&mut c, &leader.member_id, leader.generation_id, true);
    assert_eq!(
        (synced.error_code, &synced.assignment[..]),
        (0, &b"all"[..])
    );
    let heartbeat = |c: &mut BlockingClient, member: &str, generation: i32| {
        c.send(
            4,
            &HeartbeatRequest::default()
                .with_group_id("static-group".into())
                .with_generation_id(generation)
                .with_member_id(member.into()),
        )
        .unwrap()
        .error_code
    };
    assert_eq!(
        heartbeat(&mut c, &leader.member_id, leader.generation_id),
        0
    );
    assert_eq!(
        heartbeat(&mut c, &leader.member_id, leader.generation_id + 1),
        ErrorCode::IllegalGeneration.code()
    );

    // Commit and fetch an offset as a member of the generation.
    let committed = c
        .send(
            8,
            &OffsetCommitRequest::default()
                .with_group_id("static-group".into())
                .with_generation_id_or_member_epoch(leader.generation_id)
                .with_member_id(leader.member_id.clone())
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name("static".into())
                    .with_partitions(vec![OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(42)])]),
        )
        .unwrap();
    assert_eq!(committed.topics[0].partitions[0].error_code, 0);
    let fetched = c
        .send(
            7,
            &OffsetFetchRequest::default()
                .with_group_id("static-group".into())
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name("static".into())
                    .with_partition_indexes(vec![0])])),
        )
        .unwrap();
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 42);
    assert_eq!(
        cluster.committed_offset("static-group", "static", 0),
        Some(42)
    );

    // A second static member joins (its JoinGroup waits for the leader to rejoin).
    let address = cluster.broker_address(1).unwrap();
    let join_b = join("", Some("instance-b"), 10_000);
    let second = std::thread::spawn(move || {
        let mut b = BlockingClient::connect(&address, TIMEOUT).unwrap();
        let joined = b.send(9, &join_b).unwrap();
        (b, joined)
    });
    wait_until_blocking("the rebalance to start", TIMEOUT, || {
        cluster
            .group("static-group")
            .is_some_and(|g| g.state == GroupState::PreparingRebalance)
    });
    assert_eq!(
        heartbeat(&mut c, &leader.member_id, leader.generation_id),
        ErrorCode::RebalanceInProgress.code()
    );
    let rejoined = c
        .send(9, &join(&leader.member_id, Some("instance-a"), 10_000))
        .unwrap();
    let (mut b, follower) = second.join().unwrap();
    assert_eq!((rejoined.error_code, follower.error_code), (0, 0));
    assert_eq!(rejoined.members.len(), 2, "the leader sees both members");
    assert_eq!(follower.generation_id, rejoined.generation_id);
    let synced = sync(&mut c, &leader.member_id, rejoined.generation_id, true);
    assert_eq!(synced.error_code, 0);
    let generation = rejoined.generation_id;
    // B restarts: a join without member id under its instance id takes its
    // place at once, in the same generation, and fences the old id.
    let restarted = b.send(9, &join("", Some("instance-b"), 10_000)).unwrap();
    assert_eq!(restarted.error_code, 0);
    assert_eq!(restarted.generation_id, generation, "no rebalance");
    assert_ne!(restarted.member_id, follower.member_id);
    let fenced = b
        .send(
            4,
            &HeartbeatRequest::default()
                .with_group_id("static-group".into())
                .with_generation_id(generation)
                .with_member_id(follower.member_id.clone())
                .with_group_instance_id(Some("instance-b".into())),
        )
        .unwrap();
    assert_eq!(fenced.error_code, ErrorCode::FencedInstanceId.code());
    let g = cluster.group("static-group").unwrap();
    assert_eq!(
        (g.state, g.generation, g.members.len()),
        (GroupState::Stable, generation, 2)
    );

    // A member whose session lapses is removed.
    let short = MockCluster::start(1).unwrap();
    let mut s = client(&short, 1);
    let first = s.send(9, &join("", Some("lapsing"), 200)).unwrap();
    assert_eq!(first.error_code, 0);
    assert_eq!(short.group("static-group").unwrap().members.len(), 1);
    wait_until_blocking("the session to expire", TIMEOUT, || {
        short
            .group("static-group")
            .is_some_and(|g| g.members.is_empty() && g.state == GroupState::Empty)
    });
}

/// Every served API answers every version it advertises: the mock never
/// writes a field a version cannot carry (which would close the connection).
#[test]
fn every_advertised_version_of_every_served_api_gets_an_answer() {
    use bytes::BytesMut;
    use ferrokafka::protocol::messages::metadata_request::MetadataRequestTopic;
    use ferrokafka::protocol::messages::*;
    use ferrokafka::protocol::{decode_response_frame, Encodable, RequestKind};
    use std::io::{Read, Write};

    let cluster = MockCluster::start(1).unwrap();
    cluster.create_topic("t", 1, 1).unwrap();
    let requests = vec![
        RequestKind::Produce(produce_request("t", 0, batch((-1, -1, -1), &["v"]))),
        RequestKind::Fetch(
            FetchRequest::default()
                .with_max_bytes(1 << 20)
                .with_topics(vec![FetchTopic::default()
                    .with_topic("t".into())
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition_max_bytes(1 << 20)])]),
        ),
        RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
            ferrokafka::protocol::messages::list_offsets_request::ListOffsetsTopic::default()
                .with_name("t".into())
                .with_partitions(vec![
                    ferrokafka::protocol::messages::list_offsets_request::ListOffsetsPartition::default()
                        .with_timestamp(-1),
                ]),
        ])),
        RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some("t".into())),
        ]))),
        RequestKind::OffsetCommit(OffsetCommitRequest::default().with_group_id("g".into())),
        RequestKind::OffsetFetch(OffsetFetchRequest::default().with_group_id("g".into())),
        RequestKind::FindCoordinator(FindCoordinatorRequest::default().with_key("g".into())),
        RequestKind::JoinGroup(JoinGroupRequest::default().with_group_id("g".into())),
        RequestKind::Heartbeat(HeartbeatRequest::default().with_group_id("g".into())),
        RequestKind::LeaveGroup(LeaveGroupRequest::default().with_group_id("g".into())),
        RequestKind::SyncGroup(SyncGroupRequest::default().with_group_id("g".into())),
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
        RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
            ferrokafka::protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name("t".into())
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])),
        RequestKind::DeleteTopics(
            DeleteTopicsRequest::default().with_topic_names(vec!["missing".into()]),
        ),
        RequestKind::InitProducerId(
            InitProducerIdRequest::default().with_transaction_timeout_ms(1000),
        ),
        RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(
            vec![OffsetForLeaderTopic::default()
                .with_topic("t".into())
                .with_partitions(vec![OffsetForLeaderPartition::default()])],
        )),
        RequestKind::AddPartitionsToTxn(AddPartitionsToTxnRequest::default()),
        RequestKind::AddOffsetsToTxn(AddOffsetsToTxnRequest::default()),
        RequestKind::EndTxn(EndTxnRequest::default()),
        RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default()),
    ];
    let address = cluster.broker_address(1).unwrap();
    let mut versions = client(&cluster, 1).api_versions().unwrap();
    versions.api_keys.sort_by_key(|k| k.api_key);
    assert_eq!(
        versions.api_keys.len(),
        requests.len(),
        "one request per served API"
    );
    let mut answered = 0;
    for request in &requests {
        let api = request.api_key();
        let range = versions
            .api_keys
            .iter()
            .find(|k| k.api_key == api.key())
            .unwrap_or_else(|| panic!("{api:?} is not advertised"));
        for version in range.min_version..=range.max_version {
            let mut frame = BytesMut::from(&[0u8; 4][..]);
            let header = RequestHeader::default()
                .with_request_api_key(api.key())
                .with_request_api_version(version)
                .with_correlation_id(7)
                .with_client_id(Some("versions".into()));
            if header
                .encode(&mut frame, api.request_header_version(version))
                .and_then(|()| request.encode(&mut frame, version))
                .is_err()
            {
                continue; // this request cannot be written in that version
            }
            let size = (frame.len() - 4) as u32;
            frame[..4].copy_from_slice(&size.to_be_bytes());
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            stream.set_read_timeout(Some(TIMEOUT)).unwrap();
            stream.write_all(&frame).unwrap();
            let mut size = [0u8; 4];
            stream
                .read_exact(&mut size)
                .unwrap_or_else(|e| panic!("{api:?} v{version}: no answer ({e})"));
            let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
            stream.read_exact(&mut body).unwrap();
            let (header, _) = decode_response_frame(Bytes::from(body), api, version)
                .unwrap_or_else(|e| panic!("{api:?} v{version}: bad answer ({e})"));
            assert_eq!(header.correlation_id, 7);
            answered += 1;
        }
    }
    println!("{answered} (API, version) pairs answered");
    assert!(answered >= 140, "{answered}");
}
