//! State shared by the [`Producer`](super::Producer) handle and the sender task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use tokio::sync::{Notify, Semaphore};

use crate::network::{Backoff, Cluster, TopicPartitions};
use crate::protocol::ErrorCode;

use super::accumulator::{BatchSettings, ProducerBatch, TopicQueues};
use super::config::ProducerConfig;
use super::error::ProducerError;
use super::metrics::Counters;
use super::pool::BufferPool;
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
    /// A sequence error (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID)
    /// made the transaction abortable: the abort bumps the epoch (KIP-360).
    pub epoch_bump_required: AtomicBool,
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
    /// Buffers of finished batches, for new ones (bounded; see `pool`).
    pub pool: Arc<BufferPool>,
    /// Wakes the sender: a batch was sealed, a batch was opened that is due
    /// before the sender's next wake-up, a flush or close began.
    pub wake: Notify,
    /// The origin of `sender_wake_at`.
    pub epoch: Instant,
    /// When the sleeping sender wakes up next, in ns since `epoch`;
    /// `u64::MAX` while it drains or sleeps without a deadline (then every
    /// newly opened batch wakes it).
    pub sender_wake_at: AtomicU64,
    /// The first topic `send` wrote to (most producers write one topic):
    /// found with plain loads, until it grows (`TopicQueues::replaced`).
    pub first_topic: OnceLock<Arc<TopicQueues>>,
    /// The topic of the last `send` that was not `first_topic`: found
    /// without a lock or a hash.
    pub last_topic: ArcSwapOption<TopicQueues>,
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

    /// [`add_topic`](Self::add_topic) if `metadata` can serve sends (no
    /// error, at least one partition); `None` otherwise.
    pub fn add_usable_topic(
        &self,
        name: &str,
        metadata: &TopicPartitions,
    ) -> Option<Arc<TopicQueues>> {
        (metadata.error() == ErrorCode::None && metadata.partition_count() > 0)
            .then(|| self.add_topic(name, metadata))
    }

    /// Sets up the partition queues of a topic seen in metadata for the
    /// first time (or returns those another task set up meanwhile).
    pub fn add_topic(&self, name: &str, metadata: &TopicPartitions) -> Arc<TopicQueues> {
        let queues = TopicQueues::new(
            Arc::from(name),
            metadata.partition_count(),
            metadata.available_partitions().into(),
            self.pool.clone(),
        );
        for q in queues.partitions.iter() {
            q.lock().leader = metadata.partition(q.index).map_or(-1, |p| p.leader_id);
        }
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let queues = topics
            .entry(queues.name.clone())
            .or_insert_with(|| Arc::new(queues))
            .clone();
        drop(topics);
        self.topics_generation.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_one();
        queues
    }

    /// Replaces `old` by a copy with `partition_count` partitions (the
    /// topic grew): its partitions, with their batches and sequences, are
    /// shared, the new ones start empty. Records sent from now on are
    /// partitioned over the new count, as the Java client does.
    pub fn grow_topic(&self, old: &Arc<TopicQueues>, partition_count: usize) -> Arc<TopicQueues> {
        let grown = Arc::new(old.grown(partition_count));
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.insert(grown.name.clone(), grown.clone());
        drop(topics);
        old.replaced.store(true, Ordering::Release);
        self.last_topic.store(None);
        self.topics_generation.fetch_add(1, Ordering::AcqRel);
        grown
    }

    /// After an epoch bump with nothing buffered: every partition's
    /// sequence starts again at 0.
    pub fn restart_sequences(&self) {
        for topic in self.all_topics() {
            for queue in topic.partitions.iter() {
                let mut state = queue.lock();
                state.next_sequence = 0;
                state.set_next_sequence_acked(0);
            }
        }
    }

    pub fn all_topics(&self) -> Vec<Arc<TopicQueues>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Whether the sender would sleep past `due` (a newly opened batch's
    /// linger deadline), so that it must be woken to learn of the batch.
    pub fn sender_sleeps_past(&self, due: Instant) -> bool {
        let due = due.saturating_duration_since(self.epoch).as_nanos();
        u128::from(self.sender_wake_at.load(Ordering::SeqCst)) > due
    }

    /// The sender publishes when it wakes next (`None`: no deadline, or
    /// draining). See `sender_wake_at`.
    pub fn set_sender_wake_at(&self, at: Option<Instant>) {
        let nanos = at.map_or(u64::MAX, |at| {
            u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
        });
        self.sender_wake_at.store(nanos, Ordering::SeqCst);
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
        // Memory first: once a handle resolves, its bytes are free
        // (`metrics().buffer_used_bytes` does not lag behind the handles).
        self.release(batch.reserved);
        batch.completion.complete(outcome);
        // The request that carried the batch is gone: its buffer can hold
        // the next one.
        if let Some(encoded) = batch.encoded {
            self.pool.recycle(encoded);
        }
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
