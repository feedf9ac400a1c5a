//! CPU of the producer's per-record path: the sending thread's CPU time per
//! record (`send` + awaiting every delivery handle), against the in-process
//! mock cluster, so that the broker, the sender task and other processes on
//! a shared machine do not count. The workload is the side-by-side
//! benchmark's P100, with its records (`benchmarks/src/workload.rs`, shared
//! with `#[path]`), 6 partitions, acks=1, linger 5 ms, batch.size 1 MB.
//!
//! ```sh
//! cargo bench --features testkit --bench send            # none and lz4
//! cargo bench --features testkit --bench send -- lz4     # one codec
//! ```
//!
//! Prints, per codec, the sending thread's CPU ns per record for each round
//! and their median. The whole-process figure that the issue's targets use
//! comes from `scripts/bench.sh` against a real broker.

use std::collections::VecDeque;
use std::time::Duration;

use ferrokafka::network::ClientConfig;
use ferrokafka::producer::{
    Acks, DeliveryHandle, Producer, ProducerConfig, ProducerRecord, TrySendError,
};
use ferrokafka::records::Compression;
use ferrokafka::testkit::mock::MockCluster;

// Only its thread CPU clock is used here.
#[allow(dead_code)]
#[path = "support/cpu_clock.rs"]
mod cpu_clock;
use cpu_clock::thread_cpu_nanos;

#[path = "../benchmarks/src/workload.rs"]
#[allow(dead_code)]
mod workload;

const RECORDS: u64 = 400_000;
const ROUNDS: usize = 7;
const PARTITIONS: i32 = 6;
/// Handles awaited in order once this many are outstanding (as in `benchmarks/`).
const OUTSTANDING_HANDLES: usize = 100_000;

/// One round: CPU ns of this thread per record.
async fn round(
    bootstrap: &str,
    topic: &'static str,
    compression: Compression,
    data: &workload::Data,
) -> f64 {
    let config = ProducerConfig::builder()
        .acks(Acks::Leader)
        .batch_size(1_000_000)
        .linger(Duration::from_millis(5))
        .compression(compression)
        .enable_idempotence(false)
        .build()
        .expect("producer config");
    let client = ClientConfig::builder()
        .bootstrap_servers([bootstrap])
        .build()
        .expect("client config");
    let producer = Producer::new(client, config).await.expect("producer");
    producer.partition_count(topic).await.expect("metadata");
    let started = thread_cpu_nanos();
    let mut pending: VecDeque<DeliveryHandle> = VecDeque::with_capacity(OUTSTANDING_HANDLES);
    for i in 0..RECORDS {
        let key = data.key(i);
        let record = ProducerRecord::borrowed(topic, data.value(i)).with_key(key);
        let delivery = match producer.try_send(record) {
            Ok(delivery) => delivery,
            // A full buffer.memory: wait for room (the rdkafka side polls).
            Err(TrySendError::WouldBlock(record)) => producer.send(record).await.expect("send"),
            Err(TrySendError::Failed(e)) => panic!("ferrokafka send: {e}"),
        };
        if pending.len() == OUTSTANDING_HANDLES {
            pending
                .pop_front()
                .expect("a handle")
                .await
                .expect("delivery");
        }
        pending.push_back(delivery);
    }
    producer.flush().await.expect("flush");
    for delivery in pending {
        delivery.await.expect("delivery");
    }
    let cpu = thread_cpu_nanos() - started;
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
    cpu as f64 / RECORDS as f64
}

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The side-by-side benchmark's own records.
    let data = workload::Data::new(
        &workload::workload("P100").expect("the P100 workload"),
        RECORDS,
    );
    for (name, compression) in [("none", Compression::None), ("lz4", Compression::Lz4)] {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let mut per_record = Vec::new();
        for r in 0..ROUNDS {
            // A fresh cluster per round: the mock keeps every record.
            let mock = MockCluster::start(1).expect("mock cluster");
            let topic: &'static str = Box::leak(format!("send-{name}-{r}").into_boxed_str());
            mock.create_topic(topic, PARTITIONS, 1).expect("topic");
            let ns = runtime.block_on(round(&mock.bootstrap_servers(), topic, compression, &data));
            per_record.push(ns);
        }
        let rounds: Vec<String> = per_record.iter().map(|ns| format!("{ns:.0}")).collect();
        per_record.sort_by(f64::total_cmp);
        println!(
            "send/{name}: {:.0} ns CPU per record on the sending thread (median of {ROUNDS}; rounds: {})",
            per_record[ROUNDS / 2],
            rounds.join(" ")
        );
    }
}
