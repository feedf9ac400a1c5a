//! The rdkafka (bundled librdkafka) side: `BaseProducer` with a counting
//! delivery callback, and `BaseConsumer` with every partition assigned.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::measure::{RunReport, Window};
use crate::workload::{batch_size, Codec, Data, Workload, ACKS_LEADER, LINGER_MS, PARTITIONS};

#[derive(Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.delivered.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn producer_config(bootstrap: &str, workload: &Workload) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "bench-rdkafka")
        .set("acks", ACKS_LEADER.to_string())
        .set("linger.ms", LINGER_MS.to_string())
        .set("batch.size", batch_size().to_string())
        .set("enable.idempotence", "false")
        .set(
            "compression.type",
            match workload.codec {
                Codec::None => "none",
                Codec::Lz4 => "lz4",
            },
        );
    config
}

/// Produces `records` records of `workload` to `topic`; timed from the first
/// send until every delivery report is in.
pub fn produce(bootstrap: &str, topic: &str, workload: &Workload, records: u64) -> String {
    let data = Data::new(workload, records);
    let producer: BaseProducer<Deliveries> = producer_config(bootstrap, workload)
        .create_with_context(Deliveries::default())
        .expect("rdkafka producer");
    // Connect and learn the topic's partitions before the timed window.
    producer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");

    let window = Window::start();
    for i in 0..records {
        let key = data.key(i);
        let value = data.value(i);
        let mut record = BaseRecord::to(topic).key(key).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(5));
                }
                Err((error, _)) => panic!("rdkafka send: {error}"),
            }
        }
    }
    producer
        .flush(Duration::from_secs(300))
        .expect("rdkafka flush");
    let (wall, cpu) = window.finish();
    let context = producer.context();
    let delivered = context.delivered.load(Ordering::Relaxed);
    let failed = context.failed.load(Ordering::Relaxed);
    assert_eq!(
        (delivered, failed),
        (records, 0),
        "rdkafka: every record must be delivered"
    );
    RunReport {
        client: "rdkafka",
        workload: workload.name,
        records,
        payload_bytes: records * (workload.key_size + workload.value_size) as u64,
        wall,
        cpu,
    }
    .json()
}

/// Produces `records` records of `workload` to `topic`, untimed (fills the
/// consume workload's topic).
pub fn fill(bootstrap: &str, topic: &str, workload: &Workload, records: u64) {
    let line = produce(bootstrap, topic, workload, records);
    eprintln!("filled: {line}");
}

/// Reads `records` records from the beginning of all partitions of `topic`;
/// timed from the assignment until the last record is handed out.
pub fn consume(bootstrap: &str, topic: &str, workload: &Workload, records: u64) -> String {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "bench-rdkafka")
        // Required by librdkafka's consumer; no group is joined with assign().
        .set("group.id", "bench-rdkafka-unused")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()
        .expect("rdkafka consumer");
    consumer
        .client()
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("assignment");
    }

    let window = Window::start();
    consumer.assign(&assignment).expect("assign");
    let mut seen = 0u64;
    let mut payload_bytes = 0u64;
    while seen < records {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(message)) => {
                seen += 1;
                payload_bytes +=
                    (message.payload_len() + message.key().map_or(0, <[u8]>::len)) as u64;
            }
            Some(Err(error)) => panic!("rdkafka consume: {error}"),
            None => panic!("rdkafka consume: nothing for 10 s after {seen} records"),
        }
    }
    let (wall, cpu) = window.finish();
    RunReport {
        client: "rdkafka",
        workload: workload.name,
        records: seen,
        payload_bytes,
        wall,
        cpu,
    }
    .json()
}
