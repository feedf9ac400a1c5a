//! ferrokafka's `Consumer`: all partitions assigned, batch polls.

use std::time::Duration;

use ferrokafka::consumer::{Consumer, ConsumerConfig, Offset, TopicPartition};

use super::{client_config, runtime};
use crate::measure::{RunReport, Window};
use crate::workload::{Workload, PARTITIONS};

/// Reads `records` records from the beginning of all partitions of `topic`;
/// timed from the assignment until the last record is handed out.
pub fn consume(bootstrap: &str, topic: &str, workload: &Workload, records: u64) -> String {
    runtime().block_on(async {
        let consumer = Consumer::new(
            client_config(bootstrap),
            ConsumerConfig::builder().build().expect("consumer config"),
        )
        .await
        .expect("ferrokafka consumer");
        let partitions: Vec<TopicPartition> = (0..PARTITIONS)
            .map(|partition| TopicPartition::new(topic, partition))
            .collect();

        let window = Window::start();
        consumer.assign(partitions.clone()).expect("assign");
        for partition in &partitions {
            consumer
                .seek(partition, Offset::Beginning)
                .expect("seek to the beginning");
        }
        let mut seen = 0u64;
        let mut payload_bytes = 0u64;
        while seen < records {
            let batch = consumer
                .poll(10_000, Duration::from_secs(10))
                .await
                .expect("ferrokafka poll");
            let before = seen;
            for record in batch.iter() {
                seen += 1;
                payload_bytes += (record.value().map_or(0, |v| v.len())
                    + record.key().map_or(0, |k| k.len())) as u64;
            }
            assert!(
                seen > before,
                "ferrokafka consume: nothing for 10 s after {seen} records"
            );
        }
        let (wall, cpu) = window.finish();
        if std::env::var_os("BENCH_METRICS").is_some() {
            let m = consumer.metrics();
            eprintln!(
                "ferrokafka consumer: {} fetches, {} bytes fetched ({} per fetch), at most {} bytes buffered",
                m.fetch_requests,
                m.bytes_fetched,
                m.bytes_fetched / m.fetch_requests.max(1),
                m.max_buffered_bytes
            );
        }
        RunReport {
            client: "ferrokafka",
            workload: workload.name,
            records: seen,
            payload_bytes,
            wall,
            cpu,
        }
        .json()
    })
}
