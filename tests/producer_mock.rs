//! The producer against the in-process mock cluster (`testkit::mock`), for
//! what a single-node broker cannot show: partition leaders moving between
//! brokers mid-produce, and retriable errors injected for a while. With
//! idempotence on, every record must land exactly once, in send order per
//! partition, and every delivery handle must resolve successfully.

mod producer_support;

use std::time::Duration;

use bytes::Bytes;
use ferrokafka::producer::{
    Acks, DeliveryHandle, ProducerConfig, ProducerConfigBuilder, ProducerError, ProducerRecord,
    TrySendError,
};
use ferrokafka::protocol::{ApiKey, ErrorCode};
use ferrokafka::testkit::mock::{Fault, MockCluster};
use producer_support::producer;

const PARTITIONS: i32 = 3;

/// Sends `count` records numbered from `first`, round robin over the
/// partitions, and returns their delivery handles.
async fn send_numbered(
    producer: &ferrokafka::producer::Producer,
    topic: &str,
    first: usize,
    count: usize,
) -> Vec<DeliveryHandle> {
    let mut handles = Vec::with_capacity(count);
    for n in first..first + count {
        let record = ProducerRecord::new(topic.to_owned(), Bytes::from(format!("record-{n:08}")))
            .with_partition((n % PARTITIONS as usize) as i32);
        handles.push(producer.send(record).await.expect("enqueued"));
    }
    handles
}

/// Every handle succeeds, and each partition's log holds exactly the records
/// sent to it, once each, in send order.
async fn assert_exactly_once_in_order(
    mock: &MockCluster,
    topic: &str,
    handles: Vec<DeliveryHandle>,
    total: usize,
) {
    for handle in handles {
        let metadata = tokio::time::timeout(Duration::from_secs(60), handle)
            .await
            .expect("a delivery handle resolves")
            .expect("delivered");
        assert!(metadata.offset >= 0, "{metadata:?}");
    }
    for partition in 0..PARTITIONS {
        let expected: Vec<String> = (0..total)
            .filter(|n| n % PARTITIONS as usize == partition as usize)
            .map(|n| format!("record-{n:08}"))
            .collect();
        let logged: Vec<String> = mock
            .records(topic, partition)
            .unwrap()
            .into_iter()
            .map(|r| String::from_utf8(r.value.unwrap().to_vec()).unwrap())
            .collect();
        assert_eq!(
            logged.len(),
            expected.len(),
            "partition {partition}: every record once"
        );
        assert!(
            logged == expected,
            "partition {partition}: the log holds the records in send order"
        );
    }
}

fn idempotent_config() -> ProducerConfig {
    ProducerConfig::builder()
        .acks(Acks::All)
        .enable_idempotence(true)
        .linger(Duration::from_millis(2))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaders_moving_mid_produce_keep_order_with_no_loss_or_duplicate() {
    let mock = MockCluster::start(3).unwrap();
    let topic = "produce-leader-moves";
    mock.create_topic(topic, PARTITIONS, 3).unwrap();
    let producer = producer(&mock.bootstrap_servers(), idempotent_config()).await;

    const ROUNDS: usize = 4;
    const PER_ROUND: usize = 3_000;
    let mut handles = Vec::new();
    let mut moved_to = Vec::new();
    for round in 0..ROUNDS {
        handles.extend(send_numbered(&producer, topic, round * PER_ROUND, PER_ROUND).await);
        // Move every partition's leader to the next broker while the round's
        // batches are still being sent.
        for partition in 0..PARTITIONS {
            let (leader, epoch) = mock.partition_leader(topic, partition).unwrap();
            let ids = mock.broker_ids();
            let next = ids[(ids.iter().position(|&id| id == leader).unwrap() + 1) % ids.len()];
            let new_epoch = mock.move_partition_leader(topic, partition, next).unwrap();
            assert!(new_epoch > epoch);
            moved_to.push(next);
        }
    }
    assert_exactly_once_in_order(&mock, topic, handles, ROUNDS * PER_ROUND).await;
    // The records written after the last move can only have gone to the new
    // leaders: the producer followed the moves.
    for &node in &moved_to[moved_to.len() - PARTITIONS as usize..] {
        assert!(mock.request_count(node, ApiKey::Produce) > 0);
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_retriable_produce_errors_are_retried_exactly_once_in_order() {
    let mock = MockCluster::start(3).unwrap();
    let topic = "produce-injected-errors";
    mock.create_topic(topic, PARTITIONS, 3).unwrap();
    let producer = producer(&mock.bootstrap_servers(), idempotent_config()).await;

    let mut handles = send_numbered(&producer, topic, 0, 1_000).await;
    for code in [
        ErrorCode::NotLeaderOrFollower,
        ErrorCode::RequestTimedOut,
        ErrorCode::NotEnoughReplicas,
    ] {
        let before: u64 = mock
            .broker_ids()
            .into_iter()
            .map(|id| mock.request_count(id, ApiKey::Produce))
            .sum();
        for id in mock.broker_ids() {
            mock.inject(Fault::error(ApiKey::Produce, code).on_broker(id).times(3));
        }
        let first = handles.len();
        handles.extend(send_numbered(&producer, topic, first, 1_000).await);
        producer.flush().await.unwrap();
        assert!(
            mock.pending_faults().is_empty(),
            "{code:?}: every injected answer was given: {:?}",
            mock.pending_faults()
        );
        let after: u64 = mock
            .broker_ids()
            .into_iter()
            .map(|id| mock.request_count(id, ApiKey::Produce))
            .sum();
        assert!(after > before, "{code:?}: the producer retried");
    }
    let total = handles.len();
    assert_exactly_once_in_order(&mock, topic, handles, total).await;
    let metrics = producer.metrics();
    assert!(metrics.retries > 0, "{metrics:?}");
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// A broker stopped mid-produce: its connections close and the partitions it
/// led move to another replica in a new epoch. The idempotent producer
/// follows them; after the broker restarts and takes a partition back, that
/// partition's records go to it again. Every record lands once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_and_restarted_mid_produce_loses_and_repeats_nothing() {
    let mock = MockCluster::start(3).unwrap();
    let topic = "produce-broker-stops";
    mock.create_topic(topic, PARTITIONS, 3).unwrap();
    let producer = producer(&mock.bootstrap_servers(), idempotent_config()).await;

    let mut handles = send_numbered(&producer, topic, 0, 3_000).await;
    let (stopped, epoch) = mock.partition_leader(topic, 0).unwrap();
    mock.stop_broker(stopped).unwrap();
    let (successor, new_epoch) = mock.partition_leader(topic, 0).unwrap();
    assert!(successor != stopped && new_epoch > epoch);
    handles.extend(send_numbered(&producer, topic, 3_000, 3_000).await);
    producer.flush().await.unwrap();
    assert!(mock.request_count(successor, ApiKey::Produce) > 0);

    mock.restart_broker(stopped).unwrap();
    mock.move_partition_leader(topic, 0, stopped).unwrap();
    let before = mock.request_count(stopped, ApiKey::Produce);
    handles.extend(send_numbered(&producer, topic, 6_000, 3_000).await);
    assert_exactly_once_in_order(&mock, topic, handles, 9_000).await;
    assert!(
        mock.request_count(stopped, ApiKey::Produce) > before,
        "the restarted broker leads partition 0 again and got its records"
    );
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// The transaction coordinator moves inside transactions on 3 brokers: once
/// after the partitions were added (the EndTxn meets the move), once before
/// anything was added (the AddPartitionsToTxn meets it). The old coordinator
/// answers NOT_COORDINATOR; the producer finds the new one, and both
/// transactions commit there: every record once, in order, committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_across_transaction_coordinator_moves() {
    let mock = MockCluster::start(3).unwrap();
    let topic = "produce-txn-coordinator-moves";
    let id = "txn-coordinator-moves";
    mock.create_topic(topic, PARTITIONS, 3).unwrap();
    let config = ProducerConfig::builder()
        .acks(Acks::All)
        .transactional_id(id)
        .linger(Duration::from_millis(2))
        .build()
        .unwrap();
    let producer = producer(&mock.bootstrap_servers(), config).await;
    producer.init_transactions().await.unwrap();
    let next = |node: i32| node % 3 + 1;

    producer.begin_transaction().unwrap();
    let mut handles = send_numbered(&producer, topic, 0, 300).await;
    producer.flush().await.unwrap();
    let first = mock.transaction_coordinator(id);
    mock.move_transaction_coordinator(id, next(first)).unwrap();
    handles.extend(send_numbered(&producer, topic, 300, 300).await);
    producer.commit_transaction().await.unwrap();
    assert!(mock.request_count(next(first), ApiKey::EndTxn) >= 1);

    let second = next(first);
    mock.move_transaction_coordinator(id, next(second)).unwrap();
    producer.begin_transaction().unwrap();
    handles.extend(send_numbered(&producer, topic, 600, 300).await);
    producer.commit_transaction().await.unwrap();
    assert!(mock.request_count(next(second), ApiKey::AddPartitionsToTxn) >= 1);
    assert!(mock.request_count(next(second), ApiKey::EndTxn) >= 1);

    assert_exactly_once_in_order(&mock, topic, handles, 900).await;
    for partition in 0..PARTITIONS {
        assert_eq!(
            mock.last_stable_offset(topic, partition).unwrap(),
            mock.high_watermark(topic, partition).unwrap(),
            "partition {partition}: both transactions ended with a commit marker"
        );
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_to_a_topic_are_used_after_the_next_metadata_refresh() {
    let mock = MockCluster::start(1).unwrap();
    let topic = "produce-growing-topic";
    mock.create_topic(topic, 2, 1).unwrap();
    let client = ferrokafka::network::ClientConfig::builder()
        .bootstrap_servers([mock.bootstrap_servers()])
        .metadata_max_age(Duration::from_millis(200))
        .build()
        .unwrap();
    let producer = ferrokafka::producer::Producer::new(client, idempotent_config())
        .await
        .unwrap();
    let before = ProducerRecord::new(topic, Bytes::from_static(b"before")).with_partition(1);
    let before = producer.send(before).await.unwrap();
    assert_eq!(producer.partition_count(topic).await.unwrap(), 2);
    let beyond = ProducerRecord::new(topic, Bytes::from_static(b"x")).with_partition(3);
    assert!(
        producer.send(beyond).await.is_err(),
        "partition 3 does not exist yet"
    );

    mock.add_partitions(topic, 4).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while producer.partition_count(topic).await.unwrap() != 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the producer never saw the new partitions"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // New partitions take records; the old ones keep their sequences.
    let mut handles = vec![before];
    for partition in [1, 2, 3] {
        let record = ProducerRecord::new(topic, Bytes::from(format!("after-{partition}")))
            .with_partition(partition);
        handles.push(producer.send(record).await.unwrap());
    }
    for handle in handles {
        tokio::time::timeout(Duration::from_secs(30), handle)
            .await
            .expect("a delivery handle resolves")
            .expect("delivered");
    }
    let values = |partition| -> Vec<Bytes> {
        mock.records(topic, partition)
            .unwrap()
            .into_iter()
            .map(|r| r.value.unwrap())
            .collect()
    };
    assert_eq!(values(1), [&b"before"[..], b"after-1"]);
    assert_eq!(values(2), [&b"after-2"[..]]);
    assert_eq!(values(3), [&b"after-3"[..]]);
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_size_bounds_compressed_batches_by_the_estimated_ratio() {
    let mock = MockCluster::start(1).unwrap();
    let topic = "produce-compressed-batch-size";
    mock.create_topic(topic, 1, 1).unwrap();
    const BATCH_SIZE: usize = 16 * 1024;
    let config = ProducerConfig::builder()
        .acks(Acks::Leader)
        .enable_idempotence(false)
        .compression(ferrokafka::records::Compression::Lz4)
        .batch_size(BATCH_SIZE)
        .linger(Duration::from_secs(5))
        .build()
        .unwrap();
    let producer = producer(&mock.bootstrap_servers(), config).await;
    // Very compressible values: lz4 shrinks them several times.
    let value = Bytes::from("compressible value, ".repeat(10));
    // At most 3,000 records (more than a full batch holds) ahead of the
    // acknowledgements: the ratio is learnt from sealed batches, so a
    // sender starved of CPU (a loaded machine) must not let the whole run
    // append at the first estimates.
    let mut handles = std::collections::VecDeque::new();
    for _ in 0..40_000 {
        let record = ProducerRecord::new(topic, value.clone());
        handles.push_back(producer.send(record).await.unwrap());
        if handles.len() > 3_000 {
            handles.pop_front().unwrap().await.expect("delivered");
        }
    }
    producer.flush().await.unwrap();
    for handle in handles {
        handle.await.expect("delivered");
    }
    let metrics = producer.metrics();
    let uncompressed = metrics.bytes_sent as f64 / metrics.compression_ratio;
    assert!(metrics.compression_ratio < 0.5, "{metrics:?}");
    // Counting uncompressed bytes would need at least this many batches.
    let uncompressed_batches = uncompressed / BATCH_SIZE as f64;
    assert!(
        (metrics.batches_sent as f64) < 0.5 * uncompressed_batches,
        "batches fill up to batch.size once compressed: {metrics:?}"
    );
    assert!(
        metrics.average_batch_bytes <= BATCH_SIZE as f64,
        "compressed batches stay within batch.size: {metrics:?}"
    );
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// The values of the records in partition 0 (control records left out).
fn values_in_partition_0(mock: &MockCluster, topic: &str) -> Vec<Bytes> {
    mock.records(topic, 0)
        .unwrap()
        .into_iter()
        .filter_map(|r| r.value)
        .collect()
}

/// The open transaction cannot commit (a record failed); aborting it starts
/// a new epoch of the same producer id (KIP-360).
async fn commit_fails_and_abort_bumps_the_epoch(
    producer: &ferrokafka::producer::Producer,
    (id, epoch): (i64, i16),
) {
    let commit = producer.commit_transaction().await;
    assert!(
        matches!(
            commit,
            Err(ferrokafka::producer::ProducerError::TransactionAborted(_))
        ),
        "{commit:?}"
    );
    producer.abort_transaction().await.unwrap();
    assert_eq!(
        producer.producer_id_and_epoch(),
        (id, epoch + 1),
        "the abort started a new epoch of the same producer id"
    );
}

/// A transactional producer on a 1-broker mock whose first record fails for
/// good under `fault`: its handle fails as `failed` expects, the commit
/// refuses (TransactionAborted) instead of committing without the record,
/// the abort starts a new epoch of the same producer id (KIP-360: the failed
/// batch left a sequence gap), and the next transaction commits its record.
async fn a_failed_record_aborts_the_transaction(
    name: &str,
    config: ferrokafka::producer::ProducerConfigBuilder,
    fault: Fault,
    failed: impl Fn(&ProducerError) -> bool,
) {
    let mock = MockCluster::start(1).unwrap();
    mock.create_topic(name, 1, 1).unwrap();
    let config = config
        .acks(Acks::All)
        .transactional_id(name)
        .linger(Duration::from_millis(2))
        .build()
        .unwrap();
    let producer = producer(&mock.bootstrap_servers(), config).await;
    producer.init_transactions().await.unwrap();
    let (id, epoch) = producer.producer_id_and_epoch();

    producer.begin_transaction().unwrap();
    mock.inject(fault);
    let lost = producer
        .send(ProducerRecord::new(
            name.to_owned(),
            Bytes::from_static(b"lost"),
        ))
        .await
        .unwrap();
    let error = lost.await.expect_err("the record fails");
    assert!(failed(&error), "{error:?}");
    mock.clear_faults();
    commit_fails_and_abort_bumps_the_epoch(&producer, (id, epoch)).await;

    producer.begin_transaction().unwrap();
    let kept = producer
        .send(ProducerRecord::new(
            name.to_owned(),
            Bytes::from_static(b"kept"),
        ))
        .await
        .unwrap();
    producer.commit_transaction().await.unwrap();
    assert!(kept.await.unwrap().offset >= 0);
    assert_eq!(values_in_partition_0(&mock, name), [&b"kept"[..]]);
    assert_eq!(
        mock.last_stable_offset(name, 0).unwrap(),
        mock.high_watermark(name, 0).unwrap(),
        "the second transaction ended with a commit marker"
    );
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// A transactional producer whose 3 records were acknowledged at offsets
/// 0..=2, in an open transaction on a 1-partition topic.
async fn transaction_with_three_acked_records(
    mock: &MockCluster,
    topic: &str,
    transactional_id: &str,
) -> ferrokafka::producer::Producer {
    mock.create_topic(topic, 1, 1).unwrap();
    let config = ProducerConfig::builder()
        .acks(Acks::All)
        .transactional_id(transactional_id)
        .linger(Duration::from_millis(2))
        .build()
        .unwrap();
    let producer = producer(&mock.bootstrap_servers(), config).await;
    producer.init_transactions().await.unwrap();
    producer.begin_transaction().unwrap();
    let mut handles = Vec::new();
    for value in ["before-1", "before-2", "before-3"] {
        let record = ProducerRecord::new(topic.to_owned(), Bytes::from(value));
        handles.push(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    for (expected, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().offset, expected as i64);
    }
    producer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_producer_id_after_the_log_start_passed_every_acked_record_restarts_sequences() {
    // The broker forgot the producer because retention (here DeleteRecords)
    // removed every record it wrote: the log start (3) is past the last
    // acknowledged offset (2). As the Java client does, the partition's
    // sequences restart at 0 in the same epoch and the transaction goes on.
    let mock = MockCluster::start(1).unwrap();
    let topic = "produce-upid-log-start-passed";
    let producer = transaction_with_three_acked_records(&mock, topic, "txn-upid-safe").await;
    let before = producer.producer_id_and_epoch();
    assert_eq!(mock.delete_records(topic, 0, 3).unwrap(), 3);
    // A broker older than 2.5 answers a forgotten producer's next sequence (3)
    // with UNKNOWN_PRODUCER_ID and its log start offset.
    mock.inject(Fault::error(ApiKey::Produce, ErrorCode::UnknownProducerId).times(1));
    let mut handles = Vec::new();
    for value in ["after-1", "after-2"] {
        let record = ProducerRecord::new(topic, Bytes::from(value));
        handles.push(producer.send(record).await.unwrap());
    }
    producer
        .commit_transaction()
        .await
        .expect("the transaction commits: nothing acknowledged was lost");
    for handle in handles {
        assert!(handle.await.expect("delivered").offset >= 3);
    }
    assert_eq!(
        producer.producer_id_and_epoch(),
        before,
        "same producer id and epoch"
    );
    assert_eq!(
        values_in_partition_0(&mock, topic),
        [&b"after-1"[..], &b"after-2"[..]]
    );
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_producer_id_with_acked_records_still_in_the_log_aborts_the_transaction() {
    // The producer state is gone although acknowledged records are still in
    // the log (log start 0 <= last acknowledged offset 2): duplicates can no
    // longer be told apart, so the transaction must abort, and the abort
    // starts a new epoch.
    let mock = MockCluster::start(1).unwrap();
    let topic = "produce-upid-state-lost";
    let producer = transaction_with_three_acked_records(&mock, topic, "txn-upid-lost").await;
    let (id, epoch) = producer.producer_id_and_epoch();
    mock.inject(Fault::error(ApiKey::Produce, ErrorCode::UnknownProducerId).times(1));
    let failed = producer
        .send(ProducerRecord::new(topic, Bytes::from_static(b"failed")))
        .await
        .unwrap();
    let error = failed.await.expect_err("the batch fails");
    assert!(
        matches!(
            error,
            ferrokafka::producer::ProducerError::Broker {
                code: ErrorCode::UnknownProducerId,
                ..
            }
        ),
        "{error:?}"
    );
    commit_fails_and_abort_bumps_the_epoch(&producer, (id, epoch)).await;
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_error_aborts_the_transaction_and_the_abort_bumps_the_epoch() {
    a_failed_record_aborts_the_transaction(
        "txn-sequence-error",
        ProducerConfig::builder(),
        Fault::error(ApiKey::Produce, ErrorCode::OutOfOrderSequenceNumber),
        |e| !matches!(e, ProducerError::DeliveryTimeout { .. }),
    )
    .await;
}

/// NOT_ENOUGH_REPLICAS on every attempt until `delivery.timeout.ms` runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_timing_out_in_a_transaction_makes_the_commit_refuse() {
    a_failed_record_aborts_the_transaction(
        "txn-timeout",
        ProducerConfig::builder()
            .request_timeout(Duration::from_millis(500))
            .delivery_timeout(Duration::from_millis(800)),
        Fault::error(ApiKey::Produce, ErrorCode::NotEnoughReplicas).times(1_000_000),
        |e| matches!(e, ProducerError::DeliveryTimeout { .. }),
    )
    .await;
}

/// acks=1 without idempotence, linger.ms 1, and one request in flight per
/// broker: the sender's choices then show in the order of the requests.
fn one_request_at_a_time() -> ProducerConfigBuilder {
    ProducerConfig::builder()
        .acks(Acks::Leader)
        .enable_idempotence(false)
        .linger(Duration::from_millis(1))
        .max_in_flight(1)
}

/// A one-broker mock cluster with `topic` (`partitions` partitions), and a
/// producer with `config` that already knows the topic's partitions.
async fn producer_on_new_topic(
    topic: &str,
    partitions: i32,
    config: ProducerConfig,
) -> (MockCluster, ferrokafka::producer::Producer) {
    let mock = MockCluster::start(1).unwrap();
    mock.create_topic(topic, partitions, 1).unwrap();
    let producer = producer(&mock.bootstrap_servers(), config).await;
    producer.partition_count(topic).await.unwrap();
    (mock, producer)
}

/// While the broker has every request slot taken, a batch whose linger.ms
/// is over stays open and keeps taking records (up to batch.size), as the
/// Java client's batches do until the sender drains them: a slow broker
/// gets fewer, larger batches instead of one per linger period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_past_linger_keeps_taking_records_while_no_request_slot_is_free() {
    let topic = "produce-batch-held-open";
    let config = one_request_at_a_time().batch_size(1 << 20).build().unwrap();
    let (mock, producer) = producer_on_new_topic(topic, 1, config).await;
    // The first request takes the only slot for 2 s.
    mock.inject(Fault::latency(ApiKey::Produce, Duration::from_secs(2)));
    let first = producer
        .send(ProducerRecord::new(topic, Bytes::from_static(b"first")).with_partition(0))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Many linger periods pass between these records.
    let mut handles = Vec::new();
    for i in 0..20 {
        let record =
            ProducerRecord::new(topic, Bytes::from(format!("later-{i}"))).with_partition(0);
        handles.push(producer.send(record).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.await.expect("delivered");
    for handle in handles {
        handle.await.expect("delivered");
    }
    let metrics = producer.metrics();
    assert_eq!(
        metrics.batches_sent, 2,
        "the later records in one batch: {metrics:?}"
    );
    assert_eq!(mock.total_request_count(ApiKey::Produce), 2);
    let values = values_in_partition_0(&mock, topic);
    let expected: Vec<Bytes> = std::iter::once(Bytes::from_static(b"first"))
        .chain((0..20).map(|i| Bytes::from(format!("later-{i}"))))
        .collect();
    assert_eq!(values, expected, "in send order");
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// When a broker's batches do not all fit in one request
/// (`max.request.size`), each pass over the partitions starts after the one
/// the last took a batch from: partitions take turns, the first ones do not
/// always go first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_take_turns_when_their_batches_do_not_fit_in_one_request() {
    let topic = "produce-partitions-take-turns";
    // One 400-byte record per batch, one batch per request, one request at a time.
    let config = one_request_at_a_time()
        .batch_size(512)
        .max_request_size(700)
        .build()
        .unwrap();
    let (mock, producer) = producer_on_new_topic(topic, 2, config).await;
    // Each request is answered after 30 ms, so acknowledgements come in
    // request order, far apart.
    mock.inject(Fault::latency(ApiKey::Produce, Duration::from_millis(30)).times(100));
    let value = Bytes::from(vec![7u8; 400]);
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut waiters = Vec::new();
    for partition in [0, 0, 0, 0, 1, 1, 1, 1] {
        let record = ProducerRecord::new(topic, value.clone()).with_partition(partition);
        let handle = producer.send(record).await.unwrap();
        let order = order.clone();
        waiters.push(tokio::spawn(async move {
            handle.await.expect("delivered");
            order.lock().unwrap().push(partition);
        }));
    }
    for waiter in waiters {
        waiter.await.unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(order.len(), 8);
    assert_eq!(mock.total_request_count(ApiKey::Produce), 8, "{order:?}");
    // Partition 0's batches were all queued first; taking turns, partition
    // 1's first batch goes before partition 0's last.
    let first_of_1 = order.iter().position(|&p| p == 1).unwrap();
    let last_of_0 = order.iter().rposition(|&p| p == 0).unwrap();
    assert!(first_of_1 < last_of_0, "{order:?}");
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// Borrowed keys and values (one reused serialization buffer, as an
/// application would have) and other byte containers (`String`, `Vec<u8>`)
/// are sent like `Bytes`: each record lands with the bytes it had when it
/// was sent, and a borrowed tombstone has a null value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn borrowed_and_owned_keys_and_values_land_as_they_were_when_sent() {
    let topic = "produce-borrowed";
    let config = ProducerConfig::builder().build().unwrap();
    let (mock, producer) = producer_on_new_topic(topic, 1, config).await;
    let mut handles = Vec::new();
    let mut key = Vec::new();
    let mut value = Vec::new();
    for i in 0..50 {
        key.clear();
        value.clear();
        key.extend_from_slice(format!("key-{i}").as_bytes());
        value.extend_from_slice(format!("value-{i}").repeat(i % 7 + 1).as_bytes());
        let record = ProducerRecord::borrowed(topic, &value).with_key(&key);
        handles.push(producer.send(record).await.unwrap());
    }
    let owned = ProducerRecord::with_parts(
        topic.into(),
        Some(String::from("string-key")),
        Some(vec![0u8, 1, 2]),
    );
    handles.push(producer.send(owned).await.unwrap());
    let tombstone = ProducerRecord::borrowed_tombstone(topic, b"gone").with_timestamp(7);
    handles.push(producer.send(tombstone).await.unwrap());
    for (offset, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().offset, offset as i64);
    }
    let records = mock.records(topic, 0).unwrap();
    assert_eq!(records.len(), 52);
    for (i, record) in records[..50].iter().enumerate() {
        assert_eq!(record.key.as_deref(), Some(format!("key-{i}").as_bytes()));
        let expected = format!("value-{i}").repeat(i % 7 + 1);
        assert_eq!(record.value.as_deref(), Some(expected.as_bytes()));
    }
    assert_eq!(records[50].key.as_deref(), Some(&b"string-key"[..]));
    assert_eq!(records[50].value.as_deref(), Some(&[0u8, 1, 2][..]));
    assert_eq!(records[51].key.as_deref(), Some(&b"gone"[..]));
    assert_eq!(
        (records[51].value.as_deref(), records[51].timestamp),
        (None, 7)
    );
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// `try_send` enqueues without waiting, and hands the record back where
/// `send` would wait: for a topic whose metadata is unknown (which it asks
/// for, so a later `try_send` succeeds), and while `buffer.memory` is full
/// (the broker holding the only request slot). The record handed back is
/// the one given, and `send` then delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_send_hands_the_record_back_where_send_would_wait() {
    let topic = "produce-try-send";
    let config = one_request_at_a_time()
        .buffer_memory(64 * 1024)
        .batch_size(16 * 1024)
        .build()
        .unwrap();
    let (mock, producer) = producer_on_new_topic(topic, 1, config).await;

    mock.create_topic("produce-try-send-unknown", 1, 1).unwrap();
    let record = ProducerRecord::borrowed("produce-try-send-unknown", b"first").with_key(b"k");
    let Err(TrySendError::WouldBlock(back)) = producer.try_send(record.clone()) else {
        panic!("a topic without metadata must not be appended to without waiting");
    };
    assert_eq!(back, record);
    // That try_send asked for the topic's metadata: try_send alone gets
    // there, without an awaited send.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let first = loop {
        match producer.try_send(record.clone()) {
            Ok(handle) => break handle,
            Err(TrySendError::WouldBlock(_)) => {
                assert!(std::time::Instant::now() < deadline, "metadata never came");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(TrySendError::Failed(e)) => panic!("try_send failed: {e}"),
        }
    };
    assert_eq!(first.await.unwrap().offset, 0);
    let again = ProducerRecord::borrowed("produce-try-send-unknown", b"second");
    assert_eq!(producer.try_send(again).unwrap().await.unwrap().offset, 1);

    // The broker holds the first request for 2 s: buffer.memory fills up.
    mock.inject(Fault::latency(ApiKey::Produce, Duration::from_secs(2)));
    let value = [7u8; 1000];
    let mut handles = Vec::new();
    let back = loop {
        match producer.try_send(ProducerRecord::borrowed(topic, &value)) {
            Ok(handle) => handles.push(handle),
            Err(TrySendError::WouldBlock(back)) => break back,
            Err(TrySendError::Failed(e)) => panic!("try_send failed: {e}"),
        }
        assert!(
            handles.len() < 1000,
            "64 KiB of buffer.memory never filled up"
        );
    };
    assert!(!handles.is_empty());
    assert_eq!(back.value, Some(&value[..]));
    handles.push(producer.send(back).await.unwrap());
    let count = handles.len();
    for (offset, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.await.unwrap().offset, offset as i64);
    }
    assert_eq!(mock.records(topic, 0).unwrap().len(), count);

    producer.close(Duration::from_secs(10)).await.unwrap();
    let closed = producer.try_send(ProducerRecord::borrowed(topic, b"late"));
    assert!(matches!(
        closed,
        Err(TrySendError::Failed(ProducerError::Closed))
    ));
}
