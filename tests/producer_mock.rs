//! The producer against the in-process mock cluster (`testkit::mock`), for
//! what a single-node broker cannot show: partition leaders moving between
//! brokers mid-produce, and retriable errors injected for a while. With
//! idempotence on, every record must land exactly once, in send order per
//! partition, and every delivery handle must resolve successfully.

mod producer_support;

use std::time::Duration;

use bytes::Bytes;
use ferrokafka::producer::{Acks, DeliveryHandle, ProducerConfig, ProducerRecord};
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
