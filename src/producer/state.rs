//! State shared by the [`Producer`](super::Producer) handle and the sender task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::network::{Backoff, Cluster};

use super::accumulator::{BatchSettings, ProducerBatch, TopicQueues};
use super::config::ProducerConfig;
use super::error::ProducerError;
use super::metrics::Counters;
use super::record::BatchAck;

/// Transaction bookkeeping shared with the sender.
#[derive(Debug, Default)]
pub(crate) struct TxnShared {
    /// Partitions that need AddPartitionsToTxn before their batches go out.
    pub to_add: Mutex<Vec<(Arc<TopicQueues>, i32)>>,
    /// An error that forces the transaction to abort (set by the sender).
    pub abortable: Mutex<Option<ProducerError>>,
    /// Whether a transaction is open (records may be sent).
    pub in_transaction: AtomicBool,
    /// Whether the open transaction has partitions or offsets at the
    /// coordinator (otherwise EndTxn is skipped, as in the Java client).
    pub started: AtomicBool,
    /// Whether `init_transactions` succeeded.
    pub initialized: AtomicBool,
}

pub(crate) struct Shared {
    pub config: ProducerConfig,
    pub cluster: Cluster,
    pub settings: BatchSettings,
    pub request_timeout: Duration,
    pub backoff: Backoff,
    pub topics: RwLock<HashMap<Arc<str>, Arc<TopicQueues>>>,
    /// Bumped whenever `topics` changes, so the sender re-reads it.
    pub topics_generation: AtomicUsize,
    /// `buffer.memory` as permits of one byte.
    pub memory: Semaphore,
    /// Wakes the sender: a batch was opened or sealed, a flush or close began.
    pub wake: Notify,
    pub counters: Counters,
    /// Batches opened and not yet completed.
    pub outstanding: AtomicUsize,
    /// Notified (all waiters) whenever `outstanding` drops to zero.
    pub idle: Notify,
    /// Flushes under way: batches go out without waiting for linger.
    pub flushing: AtomicUsize,
    /// Close began: no new records; the sender stops once everything ended.
    pub closing: AtomicBool,
    /// Close gave up waiting: the sender fails what is left and stops.
    pub abandon: AtomicBool,
    pub fatal: OnceLock<ProducerError>,
    /// Idempotence in use (decided when the producer starts).
    pub idempotent: AtomicBool,
    pub producer_id: AtomicI64,
    pub producer_epoch: AtomicI32,
    pub txn: Option<TxnShared>,
}

impl Shared {
    pub fn topic(&self, name: &str) -> Option<Arc<TopicQueues>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all_topics(&self) -> Vec<Arc<TopicQueues>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn is_idempotent(&self) -> bool {
        self.idempotent.load(Ordering::Relaxed)
    }

    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        (
            self.producer_id.load(Ordering::Acquire),
            self.producer_epoch.load(Ordering::Acquire) as i16,
        )
    }

    pub fn set_producer_id_and_epoch(&self, id: i64, epoch: i16) {
        self.producer_id.store(id, Ordering::Release);
        self.producer_epoch
            .store(i32::from(epoch), Ordering::Release);
    }

    /// Gives back `buffer.memory` permits.
    pub fn release(&self, bytes: usize) {
        if bytes > 0 {
            self.memory.add_permits(bytes);
        }
    }

    /// Ends a batch: sets its outcome, frees its memory, counts it.
    pub fn finish_batch(&self, batch: ProducerBatch, outcome: Result<BatchAck, ProducerError>) {
        match &outcome {
            Ok(_) => {
                Counters::add(&self.counters.records_sent, batch.records as u64);
                Counters::add(&self.counters.batches_sent, 1);
                if let Some(encoded) = &batch.encoded {
                    Counters::add(&self.counters.bytes_sent, encoded.len() as u64);
                    Counters::add(&self.counters.uncompressed_bytes, batch.uncompressed as u64);
                }
            }
            Err(e) => {
                tracing::debug!(topic = %batch.completion.topic, partition = batch.completion.partition, records = batch.records, error = %e, "batch failed");
                Counters::add(&self.counters.errors, 1);
            }
        }
        batch.completion.complete(outcome);
        self.release(batch.reserved);
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }

    /// Bytes of `buffer.memory` in use.
    pub fn buffer_used(&self) -> usize {
        self.config
            .buffer_memory
            .saturating_sub(self.memory.available_permits())
    }

    /// The error every record gets once the producer is in a fatal state.
    pub fn fatal_error(&self) -> Option<ProducerError> {
        self.fatal.get().map(|e| match e {
            ProducerError::Fenced { .. } | ProducerError::Fatal(_) => e.clone(),
            other => ProducerError::Fatal(Arc::new(other.clone())),
        })
    }
}
