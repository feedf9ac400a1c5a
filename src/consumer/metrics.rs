//! The consumer's counters and the [`ConsumerMetrics`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::TopicPartition;

/// Counters updated by the fetcher (relaxed atomics: no lock).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub fetch_requests: AtomicU64,
    pub incremental_fetches: AtomicU64,
    pub fetches_by_topic_id: AtomicU64,
    pub fetch_session_resets: AtomicU64,
    pub fetch_errors: AtomicU64,
    pub fetch_latency_total_us: AtomicU64,
    pub fetch_latency_max_us: AtomicU64,
    pub bytes_fetched: AtomicU64,
    pub records_consumed: AtomicU64,
    pub bytes_consumed: AtomicU64,
    pub max_buffered_bytes: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_latency(&self, latency: Duration) {
        let us = latency.as_micros() as u64;
        Self::add(&self.fetch_latency_total_us, us);
        self.fetch_latency_max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn record_buffered(&self, bytes: usize) {
        self.max_buffered_bytes
            .fetch_max(bytes as u64, Ordering::Relaxed);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// One partition in a [`ConsumerMetrics`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetrics {
    /// The partition.
    pub partition: TopicPartition,
    /// The consumed position, if known.
    pub position: Option<i64>,
    /// The high watermark from the last fetch (-1 until known).
    pub high_watermark: i64,
    /// The last stable offset from the last fetch (-1 until known).
    pub last_stable_offset: i64,
    /// Records between the position and the end of the log visible under the
    /// isolation level (`None` until both are known).
    pub lag: Option<i64>,
    /// Fetched bytes of this partition not yet handed out.
    pub buffered_bytes: usize,
    /// Records handed out.
    pub records_consumed: u64,
    /// Whether the application paused it.
    pub paused: bool,
}

/// A snapshot of the consumer's metrics ([`Consumer::metrics`](super::Consumer::metrics)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMetrics {
    /// Records handed to the application.
    pub records_consumed: u64,
    /// Fetched bytes handed to the application (as on the wire).
    pub bytes_consumed: u64,
    /// Fetch requests sent.
    pub fetch_requests: u64,
    /// Of those, incremental fetches of an open fetch session (KIP-227).
    pub incremental_fetches: u64,
    /// Of those, fetches naming topics by id (Fetch v13+, KIP-516).
    pub fetches_by_topic_id: u64,
    /// Fetch sessions dropped after a session error.
    pub fetch_session_resets: u64,
    /// Fetch requests that failed (connection, timeout, top-level error).
    pub fetch_errors: u64,
    /// Mean fetch round trip.
    pub fetch_latency_avg: Duration,
    /// Longest fetch round trip.
    pub fetch_latency_max: Duration,
    /// Bytes received in fetch responses' records.
    pub bytes_fetched: u64,
    /// Fetched bytes buffered now.
    pub buffered_bytes: usize,
    /// The most fetched bytes ever buffered at once.
    pub max_buffered_bytes: usize,
    /// The buffer budget (`fetch.buffer.bytes`).
    pub buffer_budget: usize,
    /// Per assigned partition, sorted.
    pub partitions: Vec<PartitionMetrics>,
}

impl ConsumerMetrics {
    pub(crate) fn from_counters(
        c: &Counters,
        buffered_bytes: usize,
        buffer_budget: usize,
        partitions: Vec<PartitionMetrics>,
    ) -> Self {
        let requests = Counters::get(&c.fetch_requests);
        let total = Counters::get(&c.fetch_latency_total_us);
        ConsumerMetrics {
            records_consumed: Counters::get(&c.records_consumed),
            bytes_consumed: Counters::get(&c.bytes_consumed),
            fetch_requests: requests,
            incremental_fetches: Counters::get(&c.incremental_fetches),
            fetches_by_topic_id: Counters::get(&c.fetches_by_topic_id),
            fetch_session_resets: Counters::get(&c.fetch_session_resets),
            fetch_errors: Counters::get(&c.fetch_errors),
            fetch_latency_avg: Duration::from_micros(total.checked_div(requests).unwrap_or(0)),
            fetch_latency_max: Duration::from_micros(Counters::get(&c.fetch_latency_max_us)),
            bytes_fetched: Counters::get(&c.bytes_fetched),
            buffered_bytes,
            max_buffered_bytes: Counters::get(&c.max_buffered_bytes) as usize,
            buffer_budget,
            partitions,
        }
    }
}
