//! Consumer groups with ferrokafka's own members (issue 10): against the
//! in-process mock cluster (`testkit::mock`) for joins, rebalances, every
//! coordinator error the member must handle, coordinator moves, static
//! membership, session and poll timeouts and commits; and a smoke test on a
//! real broker (Tansu).

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka::consumer::{
    AutoOffsetReset, Consumer, ConsumerConfig, ConsumerConfigBuilder, MemberState, Strategy,
    TopicPartition,
};
use ferrokafka::network::ClientConfig;
use ferrokafka::producer::{Producer, ProducerConfig, ProducerRecord};
use ferrokafka::testkit::mock::MockCluster;

fn client(bootstrap: &str) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .retry_backoff(Duration::from_millis(50))
        .retry_backoff_max(Duration::from_millis(300))
        .request_timeout(Duration::from_secs(10))
        .default_api_timeout(Duration::from_secs(15))
        .metadata_max_age(Duration::from_millis(500))
        .build()
        .unwrap()
}

/// Short timeouts so that every test runs in seconds.
fn group_config(group: &str) -> ConsumerConfigBuilder {
    ConsumerConfig::builder()
        .group_id(group)
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(300))
        .max_poll_interval(Duration::from_secs(20))
        .auto_offset_reset(AutoOffsetReset::Earliest)
        .fetch_max_wait(Duration::from_millis(100))
}

async fn member(bootstrap: &str, config: ConsumerConfigBuilder) -> Consumer {
    Consumer::new(client(bootstrap), config.build().unwrap())
        .await
        .unwrap()
}

async fn produce(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize) {
    let producer = Producer::new(
        client(bootstrap),
        ProducerConfig::builder().build().unwrap(),
    )
    .await
    .unwrap();
    let mut handles = Vec::new();
    for p in 0..partitions {
        for n in 0..per_partition {
            let record = ProducerRecord::new(topic.to_owned(), Bytes::from(format!("{p}-{n}")))
                .with_partition(p);
            handles.push(producer.send(record).await.unwrap());
        }
    }
    for h in handles {
        h.await.unwrap();
    }
    producer.close(Duration::from_secs(5)).await.unwrap();
}

/// Polls every member until `done` holds for their assignments (or panics
/// after `limit`); returns the records each consumed meanwhile.
async fn poll_until(
    members: &[&Consumer],
    limit: Duration,
    mut done: impl FnMut(&[Vec<TopicPartition>]) -> bool,
) -> Vec<Vec<String>> {
    let start = Instant::now();
    let mut consumed = vec![Vec::new(); members.len()];
    loop {
        for (i, m) in members.iter().enumerate() {
            let batch = m.poll(500, Duration::from_millis(50)).await.unwrap();
            for r in batch.iter() {
                consumed[i].push(String::from_utf8(r.value().unwrap().to_vec()).unwrap());
            }
        }
        let assignments: Vec<Vec<TopicPartition>> =
            members.iter().map(|m| m.assignment()).collect();
        if done(&assignments) {
            return consumed;
        }
        assert!(
            start.elapsed() < limit,
            "condition not reached in {limit:?}; assignments {assignments:?}, states {:?}",
            members.iter().map(|m| m.group_state()).collect::<Vec<_>>()
        );
    }
}

/// Every partition of `topic` owned by exactly one member.
fn owned_once(assignments: &[Vec<TopicPartition>], topic: &str, partitions: i32) -> bool {
    let mut all: Vec<&TopicPartition> = assignments.iter().flatten().collect();
    all.sort();
    let expected: Vec<TopicPartition> = (0..partitions)
        .map(|p| TopicPartition::new(topic, p))
        .collect();
    all.len() == expected.len() && all.iter().zip(&expected).all(|(a, b)| *a == b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions_and_a_leaver_hands_them_back() {
    let mock = MockCluster::start(1).unwrap();
    mock.create_topic("t", 4, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    produce(&bootstrap, "t", 4, 5).await;

    let a = member(
        &bootstrap,
        group_config("g1").partition_assignment_strategy(vec![Strategy::Range]),
    )
    .await;
    let b = member(
        &bootstrap,
        group_config("g1").partition_assignment_strategy(vec![Strategy::Range]),
    )
    .await;
    a.subscribe(["t"]).unwrap();
    b.subscribe(["t"]).unwrap();
    let consumed = poll_until(&[&a, &b], Duration::from_secs(20), |asg| {
        owned_once(asg, "t", 4) && asg.iter().all(|x| x.len() == 2)
    })
    .await;
    let state = a.group_state().unwrap();
    assert_eq!(state.state, MemberState::Stable);
    assert_eq!(state.protocol.as_deref(), Some("range"));
    assert_eq!(state.generation, b.group_state().unwrap().generation);
    let _ = consumed;
    b.close().await;
    poll_until(&[&a], Duration::from_secs(20), |asg| {
        owned_once(asg, "t", 4)
    })
    .await;
    a.close().await;
    let group = mock.group("g1").unwrap();
    assert!(group.members.is_empty(), "{group:?}");
}
