//! Producer counters and their snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Counters updated by the sender (once per batch or request, never per record).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub records_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub uncompressed_bytes: AtomicU64,
    pub batches_sent: AtomicU64,
    pub requests_sent: AtomicU64,
    pub retries: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    pub latency_total_us: AtomicU64,
    pub latency_max_us: AtomicU64,
    pub responses: AtomicU64,
    pub epoch_bumps: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn record_latency(&self, latency: Duration) {
        let us = latency.as_micros() as u64;
        self.latency_total_us.fetch_add(us, Relaxed);
        self.latency_max_us.fetch_max(us, Relaxed);
        self.responses.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self, buffer_used: usize, buffer_total: usize) -> ProducerMetrics {
        let batches = self.batches_sent.load(Relaxed);
        let bytes = self.bytes_sent.load(Relaxed);
        let uncompressed = self.uncompressed_bytes.load(Relaxed);
        let responses = self.responses.load(Relaxed);
        ProducerMetrics {
            records_sent: self.records_sent.load(Relaxed),
            bytes_sent: bytes,
            batches_sent: batches,
            requests_sent: self.requests_sent.load(Relaxed),
            average_batch_bytes: if batches == 0 {
                0.0
            } else {
                bytes as f64 / batches as f64
            },
            compression_ratio: if uncompressed == 0 {
                1.0
            } else {
                bytes as f64 / uncompressed as f64
            },
            retries: self.retries.load(Relaxed),
            errors: self.errors.load(Relaxed),
            requests_in_flight: self.in_flight.load(Relaxed),
            buffer_used_bytes: buffer_used,
            buffer_total_bytes: buffer_total,
            request_latency_avg: Duration::from_micros(
                self.latency_total_us
                    .load(Relaxed)
                    .checked_div(responses)
                    .unwrap_or(0),
            ),
            request_latency_max: Duration::from_micros(self.latency_max_us.load(Relaxed)),
            epoch_bumps: self.epoch_bumps.load(Relaxed),
        }
    }
}

/// A snapshot of the producer's metrics ([`Producer::metrics`](super::Producer::metrics)).
#[derive(Debug, Clone, PartialEq)]
pub struct ProducerMetrics {
    /// Records acknowledged (or sent, with `acks=0`).
    pub records_sent: u64,
    /// Record batch bytes acknowledged, after compression.
    pub bytes_sent: u64,
    /// Batches acknowledged.
    pub batches_sent: u64,
    /// Produce requests sent (retries included).
    pub requests_sent: u64,
    /// `bytes_sent / batches_sent`.
    pub average_batch_bytes: f64,
    /// Compressed over uncompressed batch bytes (1.0 without compression).
    pub compression_ratio: f64,
    /// Batches sent again after a retriable error.
    pub retries: u64,
    /// Batches that failed for good.
    pub errors: u64,
    /// Produce requests awaiting a response now.
    pub requests_in_flight: u64,
    /// Bytes of `buffer.memory` in use now.
    pub buffer_used_bytes: usize,
    /// `buffer.memory`.
    pub buffer_total_bytes: usize,
    /// Mean Produce request latency.
    pub request_latency_avg: Duration,
    /// Largest Produce request latency.
    pub request_latency_max: Duration,
    /// Producer epoch bumps after sequence errors (KIP-360).
    pub epoch_bumps: u64,
}
