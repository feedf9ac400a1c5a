//! ferrokafka's `Producer`: borrowed records, every delivery handle awaited.

use std::collections::VecDeque;
use std::time::Duration;

use ferrokafka::producer::{
    Acks, DeliveryHandle, Producer, ProducerConfig, ProducerRecord, TrySendError,
};
use ferrokafka::records::Compression;

use super::{client_config, runtime};
use crate::measure::{RunReport, Window};
use crate::workload::{batch_size, Codec, Data, Workload, LINGER_MS};

/// Delivery handles awaited in order once this many are outstanding (they
/// complete roughly in send order; this bounds the handles held, not the
/// records in flight, which `buffer.memory` bounds).
const OUTSTANDING_HANDLES: usize = 100_000;

/// Produces `records` records of `workload` to `topic`; timed from the first
/// send until every delivery handle has resolved.
pub fn produce(bootstrap: &str, topic: &str, workload: &Workload, records: u64) -> String {
    let data = Data::new(workload, records);
    // A `&'static str` topic: records then borrow it instead of each owning a copy.
    let topic: &'static str = Box::leak(topic.to_owned().into_boxed_str());
    runtime().block_on(async {
        let config = ProducerConfig::builder()
            .acks(Acks::Leader)
            .batch_size(batch_size())
            .linger(Duration::from_millis(LINGER_MS))
            .compression(match workload.codec {
                Codec::None => Compression::None,
                Codec::Lz4 => Compression::Lz4,
            })
            .enable_idempotence(false)
            .build()
            .expect("producer config");
        let producer = Producer::new(client_config(bootstrap), config)
            .await
            .expect("ferrokafka producer");
        // Connect and learn the topic's partitions before the timed window.
        producer
            .partition_count(topic)
            .await
            .expect("ferrokafka metadata");

        let window = Window::start();
        let mut pending: VecDeque<DeliveryHandle> = VecDeque::with_capacity(OUTSTANDING_HANDLES);
        for i in 0..records {
            // Borrowed key and value, as the rdkafka side's `BaseRecord`.
            let key = data.key(i);
            let record = ProducerRecord::borrowed(topic, data.value(i)).with_key(key);
            let delivery = match producer.try_send(record) {
                Ok(delivery) => delivery,
                // A full buffer.memory: wait for room (the rdkafka side polls).
                Err(TrySendError::WouldBlock(record)) => {
                    producer.send(record).await.expect("ferrokafka send")
                }
                Err(TrySendError::Failed(e)) => panic!("ferrokafka send: {e}"),
            };
            if pending.len() == OUTSTANDING_HANDLES {
                let oldest = pending.pop_front().expect("a handle");
                oldest.await.expect("ferrokafka delivery");
            }
            pending.push_back(delivery);
        }
        producer.flush().await.expect("ferrokafka flush");
        for delivery in pending {
            delivery.await.expect("ferrokafka delivery");
        }
        let (wall, cpu) = window.finish();
        if std::env::var_os("BENCH_METRICS").is_some() {
            // Diagnostics on stderr: the JSON line on stdout stays the result.
            eprintln!("{:?}", producer.metrics());
        }
        producer
            .close(Duration::from_secs(10))
            .await
            .expect("ferrokafka close");
        RunReport {
            client: "ferrokafka",
            workload: workload.name,
            records,
            payload_bytes: records * (workload.key_size + workload.value_size) as u64,
            wall,
            cpu,
        }
        .json()
    })
}
