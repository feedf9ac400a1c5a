//! The producer when brokers misbehave: backpressure with a bounded
//! `buffer.memory` and a typed `max.block.ms` timeout, and every pending
//! delivery handle failing with a typed `delivery.timeout.ms` error when the
//! broker is gone (none hangs). On Tansu and noida-db.

mod producer_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrokafka::producer::{ProducerConfig, ProducerError, ProducerRecord};
use ferrokafka::testkit::{BrokerKind, TestCluster};
use producer_support::*;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Acknowledged offsets per partition are contiguous from 0 and in send order.
async fn produce_and_check_order(bootstrap: &str, topic: &str, records: usize) {
    let producer = producer(bootstrap, ProducerConfig::builder().build().unwrap()).await;
    assert!(
        producer.producer_id_and_epoch().0 >= 0,
        "idempotence is on by default"
    );
    let mut handles = Vec::new();
    for i in 0..records {
        let key = Bytes::from(format!("key-{}", i % 17));
        let value = Bytes::from(format!("{i}"));
        handles.push(
            producer
                .send(ProducerRecord::new(topic.to_owned(), value).with_key(key))
                .await
                .unwrap(),
        );
    }
    let mut per_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for h in handles {
        let m = h.await.unwrap();
        per_partition.entry(m.partition).or_default().push(m.offset);
    }
    for (p, offsets) in per_partition {
        let want: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, want, "partition {p}: offsets in send order");
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

async fn delivery_timeout_with_broker_stopped(kind: BrokerKind) {
    let mut cluster = TestCluster::from_env_or_start(kind).unwrap();
    if cluster.is_external() {
        eprintln!("external cluster: cannot stop it, skipping");
        return;
    }
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique("delivery-timeout");
    create_topic(&bootstrap, &topic, 3).await;
    produce_and_check_order(&bootstrap, &topic, 2_000).await;

    let producer = producer(
        &bootstrap,
        ProducerConfig::builder()
            .delivery_timeout(Duration::from_secs(3))
            .request_timeout(Duration::from_secs(1))
            .build()
            .unwrap(),
    )
    .await;
    // Metadata and connections are in place before the broker goes away.
    producer
        .send(ProducerRecord::new(
            topic.clone(),
            Bytes::from_static(b"warm"),
        ))
        .await
        .unwrap()
        .await
        .unwrap();
    cluster.stop().unwrap();
    let mut handles = Vec::new();
    for i in 0..1_000 {
        let record = ProducerRecord::new(topic.clone(), Bytes::from(format!("lost-{i}")))
            .with_key(Bytes::from(format!("{i}")));
        handles.push(producer.send(record).await.unwrap());
    }
    let started = Instant::now();
    let mut timeouts = 0;
    for h in handles {
        // A generous guard: a hanging handle fails the test instead of the suite.
        match tokio::time::timeout(Duration::from_secs(30), h).await {
            Ok(Err(ProducerError::DeliveryTimeout { timeout, .. })) => {
                assert_eq!(timeout, Duration::from_secs(3));
                timeouts += 1;
            }
            Ok(other) => panic!("{kind:?}: expected a delivery timeout, got {other:?}"),
            Err(_) => panic!("{kind:?}: a delivery handle hung"),
        }
    }
    assert_eq!(timeouts, 1_000);
    println!(
        "{kind:?}: all 1000 handles failed with DeliveryTimeout within {:?}",
        started.elapsed()
    );
    let metrics = producer.metrics();
    assert_eq!(metrics.buffer_used_bytes, 0, "{metrics:?}");
    // Closing with nothing left to deliver is immediate.
    producer.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_timeout_fails_every_pending_handle_with_tansu_stopped() {
    delivery_timeout_with_broker_stopped(BrokerKind::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_timeout_fails_every_pending_handle_with_noida_stopped() {
    delivery_timeout_with_broker_stopped(BrokerKind::Noida).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_makes_send_wait_then_time_out_typed() {
    let mut cluster = TestCluster::from_env_or_start(BrokerKind::Tansu).unwrap();
    if cluster.is_external() {
        eprintln!("external cluster: cannot stop it, skipping");
        return;
    }
    let bootstrap = cluster.bootstrap_servers();
    let topic = unique("backpressure");
    create_topic(&bootstrap, &topic, 2).await;
    let max_block = Duration::from_millis(500);
    let producer = producer(
        &bootstrap,
        ProducerConfig::builder()
            .buffer_memory(1024 * 1024)
            .max_block(max_block)
            .delivery_timeout(Duration::from_secs(4))
            .request_timeout(Duration::from_secs(2))
            .build()
            .unwrap(),
    )
    .await;
    producer
        .send(ProducerRecord::new(
            topic.clone(),
            Bytes::from_static(b"warm"),
        ))
        .await
        .unwrap()
        .await
        .unwrap();
    cluster.stop().unwrap();
    let value = Bytes::from(vec![7u8; 10 * 1024]);
    let rss_before = rss_kib();
    let mut accepted = Vec::new();
    let mut blocked = None;
    // 100 MiB offered against a 1 MiB buffer.
    for _ in 0..10_000 {
        let started = Instant::now();
        match producer
            .send(ProducerRecord::new(topic.clone(), value.clone()))
            .await
        {
            Ok(h) => accepted.push(h),
            Err(e) => {
                blocked = Some((e, started.elapsed()));
                break;
            }
        }
    }
    let (error, waited) = blocked.expect("send must block once buffer.memory is full");
    assert!(
        matches!(
            error,
            ProducerError::MaxBlockTimeout {
                waiting_for: "buffer memory",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        waited >= max_block,
        "send returned after {waited:?}, before max.block.ms"
    );
    let buffered = accepted.len() * value.len();
    assert!(
        buffered <= 1024 * 1024,
        "{buffered} bytes accepted past buffer.memory"
    );
    assert!(
        accepted.len() >= 90,
        "only {} records fit in 1 MiB",
        accepted.len()
    );
    let metrics = producer.metrics();
    assert!(metrics.buffer_used_bytes <= 1024 * 1024, "{metrics:?}");
    let grown = rss_kib().saturating_sub(rss_before);
    assert!(
        grown < 64 * 1024,
        "RSS grew {grown} KiB with a 1 MiB buffer"
    );

    // The broker stays away: the buffered records fail typed after
    // delivery.timeout.ms, which frees the buffer, so send accepts again
    // without waiting.
    for h in accepted {
        let outcome = tokio::time::timeout(Duration::from_secs(60), h)
            .await
            .expect("a delivery handle hung");
        assert!(
            matches!(outcome, Err(ProducerError::DeliveryTimeout { .. })),
            "{outcome:?}"
        );
    }
    assert_eq!(producer.metrics().buffer_used_bytes, 0);
    let started = Instant::now();
    let again = producer
        .send(ProducerRecord::new(topic.clone(), value.clone()))
        .await
        .unwrap();
    assert!(
        started.elapsed() < max_block,
        "send waited with an empty buffer"
    );
    drop(again);
    // Close gives up on the record the stopped broker cannot take.
    let _ = producer.close(Duration::from_millis(200)).await;
}
