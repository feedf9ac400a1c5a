//! Per-partition batches that records are appended to in place, shared by
//! the `send` callers and the sender task.
//!
//! # Design (the per-record path)
//!
//! `send` looks up its topic's [`TopicQueues`] under a read lock, picks a
//! partition, takes `buffer.memory` permits with one atomic operation, and
//! appends the record straight into the partition's open
//! [`RecordBatchBuilder`] under that partition's mutex. The mutex is
//! uncontended in the common case (one producing task per partition at a
//! time; the sender holds it only to take whole batches), so the per-record
//! cost is an uncontended lock, the encoding of the record into the batch
//! buffer, and one reference-count increment for the delivery handle. Nothing
//! is allocated per record: batch buffers and batch completions are
//! allocated once per batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use bytes::Bytes;

use crate::records::{
    Compression, CompressionRatio, Header, RecordBatchBuilder, RECORD_BATCH_OVERHEAD,
};

use super::error::{ProducerError, Result};
use super::pool::BufferPool;
use super::record::{BatchCompletion, DeliveryHandle};

/// Whether a partition was added to the current transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum TxnPartition {
    /// Not part of the transaction yet.
    #[default]
    NotAdded,
    /// Registered for AddPartitionsToTxn; batches wait.
    Pending,
    /// Added: batches may be sent.
    Added,
}

/// A batch that has left the open slot: waiting to be sent, in flight, or
/// waiting to be retried.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    /// The builder until the batch is first sent.
    pub builder: Option<RecordBatchBuilder>,
    /// The finished (compressed, stamped) batch once it was first sent.
    pub encoded: Option<Bytes>,
    pub completion: Arc<BatchCompletion>,
    pub created: Instant,
    /// `buffer.memory` permits held until the batch completes.
    pub reserved: usize,
    pub records: usize,
    /// Bytes before compression.
    pub uncompressed: usize,
    /// Sends so far.
    pub attempts: u32,
    /// The first record's sequence (-1 without idempotence or before the first send).
    pub base_sequence: i32,
    /// The producer epoch the batch was stamped with.
    pub epoch: i16,
    /// The last retriable error, for a delivery timeout's message.
    pub last_error: Option<String>,
}

/// One partition's batches plus the sender's view of the partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    pub open: Option<ProducerBatch>,
    pub ready: VecDeque<ProducerBatch>,
    /// The leader's node id, -1 when unknown.
    pub leader: i32,
    pub in_flight: usize,
    /// The next sequence to assign.
    pub next_sequence: i32,
    /// No send before this (retry backoff).
    pub retry_not_before: Option<Instant>,
    pub txn: TxnPartition,
    /// The sequence the next acknowledged batch starts with.
    acked_sequence: i32,
    /// The offset of the last record acknowledged (-1 before the first):
    /// compared with the log start offset on UNKNOWN_PRODUCER_ID.
    pub last_acked_offset: i64,
    /// A transactional producer's partition whose broker lost the producer
    /// state only because the log start passed every acknowledged record:
    /// its sequences restart at 0 (same epoch) once nothing is in flight.
    pub restart_sequences: bool,
    /// Uncompressed bytes of the last batch sealed, to size the next one's
    /// buffer (0 before the first).
    pub last_batch_bytes: usize,
}

impl PartitionState {
    /// The base sequence of the first batch not yet acknowledged.
    pub fn next_sequence_acked(&self) -> i32 {
        self.acked_sequence
    }

    pub fn set_next_sequence_acked(&mut self, sequence: i32) {
        self.acked_sequence = sequence;
    }

    /// The buffer to reserve for a new batch: the last batch's size plus an
    /// eighth (batches cut by `linger.ms` vary in size), or up to 16 KiB at
    /// first. A large `batch.size` thus costs memory only where batches do
    /// get large; a batch that outgrows its buffer reallocates once. No more
    /// than `batch.size` after a batch of at most `batch.size` (a full
    /// uncompressed batch does not grow); a compressed batch's records may
    /// exceed it.
    pub fn batch_capacity(&self, batch_size: usize) -> usize {
        const FIRST_BATCH_CAPACITY: usize = 16 * 1024;
        if self.last_batch_bytes == 0 {
            batch_size.min(FIRST_BATCH_CAPACITY)
        } else {
            (self.last_batch_bytes + self.last_batch_bytes / 8)
                .min(batch_size.max(self.last_batch_bytes))
        }
    }
}

/// One partition.
#[derive(Debug)]
pub(crate) struct PartitionQueue {
    pub index: i32,
    state: Mutex<PartitionState>,
    /// Batches waiting (for the adaptive partitioner).
    pub queued_batches: AtomicUsize,
}

impl PartitionQueue {
    fn new(index: usize) -> Arc<Self> {
        Arc::new(PartitionQueue {
            index: index as i32,
            state: Mutex::new(PartitionState {
                open: None,
                ready: VecDeque::new(),
                leader: -1,
                in_flight: 0,
                next_sequence: 0,
                retry_not_before: None,
                txn: TxnPartition::NotAdded,
                acked_sequence: 0,
                last_acked_offset: -1,
                restart_sequences: false,
                last_batch_bytes: 0,
            }),
            queued_batches: AtomicUsize::new(0),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, PartitionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One topic's partitions.
#[derive(Debug)]
pub(crate) struct TopicQueues {
    pub name: Arc<str>,
    /// Shared with the copy made when the topic grows (see `grown`).
    pub partitions: Box<[Arc<PartitionQueue>]>,
    /// The sticky partition for keyless records.
    pub sticky: AtomicI32,
    /// Partitions with a leader, from the last metadata.
    pub available: RwLock<Arc<[i32]>>,
    /// The topic's compression ratio estimate (the records layer's rule,
    /// as the Java client's per-topic estimator): read when a batch opens,
    /// updated when one is sealed.
    ratio: Mutex<CompressionRatio>,
    /// The producer's batch buffers (shared by every topic).
    pub pool: Arc<BufferPool>,
}

impl TopicQueues {
    pub fn new(
        name: Arc<str>,
        partition_count: usize,
        available: Arc<[i32]>,
        pool: Arc<BufferPool>,
    ) -> Self {
        TopicQueues {
            name,
            partitions: (0..partition_count).map(PartitionQueue::new).collect(),
            sticky: AtomicI32::new(-1),
            available: RwLock::new(available),
            ratio: Mutex::new(CompressionRatio::default()),
            pool,
        }
    }

    /// A copy with `partition_count` partitions: the existing ones shared,
    /// the new ones empty (without a leader until the sender applies the
    /// metadata that showed them).
    pub fn grown(&self, partition_count: usize) -> Self {
        let partitions = self
            .partitions
            .iter()
            .cloned()
            .chain((self.partitions.len()..partition_count).map(PartitionQueue::new))
            .collect();
        TopicQueues {
            name: self.name.clone(),
            partitions,
            sticky: AtomicI32::new(self.sticky.load(Ordering::Relaxed)),
            available: RwLock::new(self.available()),
            ratio: Mutex::new(*self.ratio.lock().unwrap_or_else(|p| p.into_inner())),
            pool: self.pool.clone(),
        }
    }

    /// The compression ratio new batches assume (1.0 until a batch was sealed).
    pub fn compression_ratio(&self) -> f32 {
        self.ratio.lock().unwrap_or_else(|p| p.into_inner()).get()
    }

    /// Folds in the ratio a sealed batch had.
    pub fn observe_compression_ratio(&self, observed: f32) {
        self.ratio
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .update(observed);
    }

    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    pub fn available(&self) -> Arc<[i32]> {
        self.available
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// How batches are built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchSettings {
    pub batch_size: usize,
    pub compression: Compression,
    pub compression_level: Option<i32>,
}

/// What an append did besides adding the record.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Appended {
    /// A new batch was opened at this instant (the sender must learn its
    /// linger deadline).
    pub opened_at: Option<Instant>,
    /// A batch was sealed full (ready to send; sticky partitioning moves on).
    pub sealed: bool,
}

/// A record's parts, borrowed for the append.
pub(crate) struct RecordParts<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    /// `size_estimate`, already reserved from `buffer.memory`.
    pub size: usize,
}

/// Up to this many headers are passed to the batch builder from the stack.
const INLINE_HEADERS: usize = 8;

/// Appends a record to the partition's open batch, opening a new batch (and
/// sealing the full one) when it does not fit.
/// A header's key as the batch builder takes it: Kafka header keys are text.
fn header_key(header: &Header) -> Result<&str> {
    header
        .key_str()
        .map_err(|_| ProducerError::InvalidRecord("a header key is not valid UTF-8".into()))
}

pub(crate) fn append(
    topic: &TopicQueues,
    queue: &PartitionQueue,
    settings: &BatchSettings,
    outstanding: &AtomicUsize,
    record: RecordParts<'_>,
) -> Result<(DeliveryHandle, Appended)> {
    let mut inline: [(&str, Option<&[u8]>); INLINE_HEADERS];
    let spilled: Vec<(&str, Option<&[u8]>)>;
    let headers: &[(&str, Option<&[u8]>)] = if record.headers.is_empty() {
        &[]
    } else if record.headers.len() <= INLINE_HEADERS {
        inline = [("", None); INLINE_HEADERS];
        for (slot, h) in inline.iter_mut().zip(record.headers) {
            *slot = (header_key(h)?, h.value.as_deref());
        }
        &inline[..record.headers.len()]
    } else {
        spilled = record
            .headers
            .iter()
            .map(|h| Ok((header_key(h)?, h.value.as_deref())))
            .collect::<Result<_>>()?;
        &spilled
    };
    let mut appended = Appended::default();
    let mut state = queue.lock();
    // `batch.size` bounds the estimated size once compressed (the Java
    // client's rule): the compressed bytes so far, estimated with the
    // topic's compression ratio, plus this record uncompressed.
    let fits = state.open.as_ref().is_some_and(|b| {
        let builder = b.builder.as_ref().expect("open batches have a builder");
        builder.is_empty() || builder.estimated_size_in_bytes() + record.size <= settings.batch_size
    });
    if !fits {
        if let Some(full) = state.open.take() {
            state.ready.push_back(full);
            queue.queued_batches.fetch_add(1, Ordering::Relaxed);
            appended.sealed = true;
        }
        // A buffer of an earlier batch when one is free (see `pool`).
        let capacity = state.batch_capacity(settings.batch_size).max(record.size);
        let mut builder = RecordBatchBuilder::with_buffer(
            settings.compression,
            topic
                .pool
                .take(RECORD_BATCH_OVERHEAD.saturating_add(capacity)),
        );
        builder
            .set_compression_level(settings.compression_level)
            .set_estimated_compression_ratio(topic.compression_ratio());
        let created = Instant::now();
        state.open = Some(ProducerBatch {
            builder: Some(builder),
            encoded: None,
            completion: BatchCompletion::new(topic.name.clone(), queue.index),
            created,
            reserved: 0,
            records: 0,
            uncompressed: 0,
            attempts: 0,
            base_sequence: -1,
            epoch: -1,
            last_error: None,
        });
        // Counted before the lock is released, so that flush and close
        // never see the batch sent but not counted.
        outstanding.fetch_add(1, Ordering::AcqRel);
        appended.opened_at = Some(created);
    }
    let batch = state.open.as_mut().expect("opened above");
    let builder = batch.builder.as_mut().expect("open batches have a builder");
    let delta = builder
        .append(record.timestamp, record.key, record.value, headers)
        .map_err(|e| ProducerError::InvalidRecord(e.to_string()))?;
    batch.reserved += record.size;
    batch.records += 1;
    let handle = DeliveryHandle::new(batch.completion.clone(), delta, record.timestamp);
    // A batch that reached batch.size is sealed now, so the sender need not
    // wait for the next record (or linger) to send it.
    if builder.estimated_size_in_bytes() >= settings.batch_size {
        let full = state.open.take().expect("present");
        state.ready.push_back(full);
        queue.queued_batches.fetch_add(1, Ordering::Relaxed);
        appended.sealed = true;
    }
    Ok((handle, appended))
}
