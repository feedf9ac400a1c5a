//! Per-partition batches that records are appended to in place, shared by
//! the `send` callers and the sender task.
//!
//! # Design (the per-record path)
//!
//! `send` finds its topic's [`TopicQueues`] through a lock-free cache, picks
//! a partition, and appends the record straight into the partition's open
//! [`RecordBatchBuilder`] under that partition's mutex. The mutex is
//! uncontended in the common case (one producing task per partition at a
//! time; the sender holds it only to take whole batches). `buffer.memory`
//! is taken from the semaphore by the open batch in growing steps ahead of
//! its records (see [`append`]), so most records take their memory from the
//! batch's credit without an atomic operation. The per-record cost is thus
//! an uncontended lock, the encoding of the record into the batch buffer,
//! and one reference-count increment for the delivery handle. Nothing is
//! allocated per record: batch buffers and batch completions are allocated
//! once per batch.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Semaphore;

use crate::records::{
    Compression, CompressionRatio, Header, HeaderRef, RecordBatchBuilder, RECORD_BATCH_OVERHEAD,
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
    /// `buffer.memory` permits held until the batch completes: the bytes
    /// of its records plus `credit`.
    pub reserved: usize,
    /// Permits taken ahead for the next records of the open batch (see
    /// [`append`]); given back when the batch stops taking records (sealed
    /// by an append, or taken by the sender: [`take_open`]).
    pub credit: usize,
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
    /// A copy with more partitions replaced this one (see `grown`): sends
    /// must look the topic up again.
    pub replaced: AtomicBool,
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
            replaced: AtomicBool::new(false),
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
            replaced: AtomicBool::new(false),
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
    /// The most `buffer.memory` an open batch takes ahead of its records
    /// at once (see [`append`]).
    pub max_credit: usize,
}

impl BatchSettings {
    /// `max_credit` for a producer: at most a batch, and at most 1/16 of
    /// `buffer.memory`, so that credit held ahead never starves other
    /// partitions of a small buffer.
    pub fn max_credit(batch_size: usize, buffer_memory: usize) -> usize {
        batch_size.min(buffer_memory / 16).max(1)
    }
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
    /// `size_estimate`: what the record counts against `buffer.memory`.
    pub size: usize,
    /// `buffer.memory` permits the caller already took for this record
    /// (0, or `size` after waiting for memory). [`append`] owns them: they
    /// join the batch's credit, or are given back if the append fails
    /// before a batch is chosen.
    pub prepaid: usize,
}

/// Up to this many headers are passed to the batch builder from the stack.
const INLINE_HEADERS: usize = 8;

/// A header's key as the batch builder takes it: Kafka header keys are text.
fn header_key(header: &Header) -> Result<&str> {
    header
        .key_str()
        .map_err(|_| ProducerError::InvalidRecord("a header key is not valid UTF-8".into()))
}

/// Takes `bytes` permits of `buffer.memory` if they are free now.
fn try_take(memory: &Semaphore, bytes: usize) -> bool {
    let Ok(permits) = u32::try_from(bytes) else {
        return false;
    };
    match memory.try_acquire_many(permits) {
        Ok(p) => {
            p.forget();
            true
        }
        Err(_) => false,
    }
}

/// Gives `bytes` permits back to `buffer.memory`.
pub(crate) fn give_back(memory: &Semaphore, bytes: usize) {
    if bytes > 0 {
        memory.add_permits(bytes);
    }
}

/// Takes the partition's open batch (to seal or send it), giving back the
/// credit it took ahead and will no longer use.
pub(crate) fn take_open(state: &mut PartitionState, memory: &Semaphore) -> Option<ProducerBatch> {
    let mut batch = state.open.take()?;
    let unused = std::mem::take(&mut batch.credit);
    batch.reserved -= unused;
    give_back(memory, unused);
    Some(batch)
}

/// Moves the open batch to the ready queue (see [`take_open`]).
fn seal_open(queue: &PartitionQueue, state: &mut PartitionState, memory: &Semaphore) -> bool {
    let Some(full) = take_open(state, memory) else {
        return false;
    };
    state.ready.push_back(full);
    queue.queued_batches.fetch_add(1, Ordering::Relaxed);
    true
}

/// Appends a record to the partition's open batch, opening a new batch (and
/// sealing the full one) when it does not fit.
///
/// # `buffer.memory`
///
/// The open batch takes permits from `memory` ahead of its records, in
/// steps that grow with the batch (as many bytes as its records hold so
/// far, at most [`BatchSettings::max_credit`]), so a batch of `n` records
/// costs about `log2(n)` semaphore operations instead of `n`. Every byte a
/// record counts is held before the record is appended, so the bytes
/// buffered never exceed `buffer.memory`; credit not used yet is at most
/// what the batch's records hold and is given back when the batch stops
/// taking records (sealed by an append or taken by the sender).
///
/// Returns no handle when `memory` has no room for the record now: the
/// caller waits for `record.size` permits and appends again with them
/// prepaid (such an append always finds its memory).
pub(crate) fn append(
    topic: &TopicQueues,
    queue: &PartitionQueue,
    settings: &BatchSettings,
    memory: &Semaphore,
    outstanding: &AtomicUsize,
    record: RecordParts<'_>,
) -> Result<(Option<DeliveryHandle>, Appended)> {
    let mut inline: [HeaderRef<'_>; INLINE_HEADERS];
    let mut spilled: Option<Vec<HeaderRef<'_>>> = None;
    let headers: Result<&[HeaderRef<'_>]> = 'headers: {
        if record.headers.is_empty() {
            Ok(&[])
        } else if record.headers.len() <= INLINE_HEADERS {
            inline = [("", None); INLINE_HEADERS];
            for (slot, h) in inline.iter_mut().zip(record.headers) {
                match header_key(h) {
                    Ok(key) => *slot = (key, h.value.as_deref()),
                    Err(e) => break 'headers Err(e),
                }
            }
            Ok(&inline[..record.headers.len()])
        } else {
            record
                .headers
                .iter()
                .map(|h| Ok((header_key(h)?, h.value.as_deref())))
                .collect::<Result<_>>()
                .map(|v| spilled.insert(v).as_slice())
        }
    };
    // A record refused here gives back the permits it brought.
    let headers = match headers {
        Ok(headers) => headers,
        Err(e) => {
            give_back(memory, record.prepaid);
            return Err(e);
        }
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
    if !fits && seal_open(queue, &mut state, memory) {
        appended.sealed = true;
    }
    // The record's memory, before a batch is opened for it.
    let (credit, used) = state
        .open
        .as_ref()
        .map_or((0, 0), |b| (b.credit, b.reserved - b.credit));
    let mut taken = record.prepaid;
    if credit + taken < record.size {
        let needed = record.size - credit - taken;
        let ahead = needed.max(used.min(settings.max_credit));
        if try_take(memory, ahead) {
            taken += ahead;
        } else if ahead > needed && try_take(memory, needed) {
            taken += needed;
        } else {
            drop(state);
            give_back(memory, taken);
            return Ok((None, appended));
        }
    }
    if state.open.is_none() {
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
            credit: 0,
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
    // From here the permits are the batch's: a failed append leaves them
    // as credit, given back with the batch.
    batch.reserved += taken;
    batch.credit += taken;
    // The handle's reference (a locked increment) is taken before the
    // record is copied in, not after: a locked instruction waits for the
    // earlier stores to reach the cache, which after the copy are the
    // record's, to batch lines that may still be missing. Measured A/B:
    // P100 0.362 -> 0.341 CPU-s per million, P100-lz4 0.587 -> 0.561
    // (BENCHMARKS.md, "The handle's reference before the copy").
    let completion = batch.completion.clone();
    let builder = batch.builder.as_mut().expect("open batches have a builder");
    let delta = builder
        .append(record.timestamp, record.key, record.value, headers)
        .map_err(|e| ProducerError::InvalidRecord(e.to_string()))?;
    batch.credit -= record.size;
    batch.records += 1;
    let handle = DeliveryHandle::new(completion, delta, record.timestamp);
    // A batch that reached batch.size is sealed now, so the sender need not
    // wait for the next record (or linger) to send it.
    if builder.estimated_size_in_bytes() >= settings.batch_size {
        seal_open(queue, &mut state, memory);
        appended.sealed = true;
    }
    Ok((Some(handle), appended))
}

/// A blocked `send` resumes once this fraction of `buffer.memory` is free
/// (waiting at most [`RESUME_WAIT`] for it), not as soon as its own record
/// fits.
///
/// Why: with the broker the bottleneck, memory frees one acknowledged batch
/// at a time. Resumed for every batch, the producing thread sleeps and wakes
/// once per batch, and each wake-up finds its caches cold (the batch it
/// appends to, the values it copies): on 1 KiB records that cost about a
/// tenth of the producer's CPU (BENCHMARKS.md, "a blocked send resumes
/// after an eighth of the buffer"). Resumed
/// after an eighth of the buffer, it appends a few batches' worth of records
/// per wake-up, while seven eighths of the buffer stay queued for the broker.
const RESUME_FRACTION: usize = 8;

/// The longest a blocked `send` waits for [`RESUME_FRACTION`] of the buffer
/// before it settles for room for its own record: memory held by batches
/// that cannot go out (a partition without a leader, say) must not keep it
/// waiting for memory that no acknowledgement will free.
const RESUME_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Why [`wait_for_memory`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemoryWait {
    /// `limit` passed first.
    TimedOut,
    /// The semaphore was closed (the producer is closing).
    Closed,
}

/// Takes `size` bytes of `buffer.memory` (`capacity` bytes in all) from
/// `memory`, waiting until `limit` at the latest. While the buffer is full
/// the wait lasts until `capacity / RESUME_FRACTION` bytes are free, or
/// [`RESUME_WAIT`] has passed, and then until `size` bytes are.
pub(crate) async fn wait_for_memory(
    memory: &Semaphore,
    capacity: usize,
    size: usize,
    limit: tokio::time::Instant,
) -> std::result::Result<(), MemoryWait> {
    // Not `clamp`, which panics for a record above u32::MAX bytes.
    let resume_at = (capacity / RESUME_FRACTION)
        .min(u32::MAX as usize)
        .max(size);
    if resume_at > size {
        let first = limit.min(tokio::time::Instant::now() + RESUME_WAIT);
        match acquire(memory, resume_at, first).await {
            Ok(()) => {
                memory.add_permits(resume_at - size);
                return Ok(());
            }
            // Free memory stays with the semaphore: the wait below takes it.
            Err(MemoryWait::TimedOut) => {}
            Err(closed) => return Err(closed),
        }
    }
    acquire(memory, size, limit).await
}

/// Takes `bytes` permits from `memory` for good, waiting until `deadline`.
async fn acquire(
    memory: &Semaphore,
    bytes: usize,
    deadline: tokio::time::Instant,
) -> std::result::Result<(), MemoryWait> {
    match tokio::time::timeout_at(deadline, memory.acquire_many(bytes as u32)).await {
        Ok(Ok(permits)) => {
            permits.forget();
            Ok(())
        }
        Ok(Err(_)) => Err(MemoryWait::Closed),
        Err(_) => Err(MemoryWait::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `wait_for_memory` for `size` of an 800-byte buffer that is full.
    fn blocked_wait(
        memory: &Arc<Semaphore>,
        size: usize,
        limit: std::time::Duration,
    ) -> tokio::task::JoinHandle<std::result::Result<(), MemoryWait>> {
        let memory = memory.clone();
        let limit = tokio::time::Instant::now() + limit;
        tokio::spawn(async move { wait_for_memory(&memory, 800, size, limit).await })
    }

    #[tokio::test(start_paused = true)]
    async fn a_blocked_send_resumes_once_an_eighth_of_the_buffer_is_free() {
        let memory = Arc::new(Semaphore::new(0));
        let wait = blocked_wait(&memory, 10, std::time::Duration::from_secs(60));
        tokio::task::yield_now().await;
        // Room for the record, not yet for an eighth (100 bytes).
        memory.add_permits(60);
        tokio::time::sleep(RESUME_WAIT / 2).await;
        assert!(!wait.is_finished(), "resumed with 60 of 100 bytes free");
        memory.add_permits(40);
        wait.await.unwrap().expect("memory");
        // It took its record's 10 bytes and left the rest.
        assert_eq!(memory.available_permits(), 90);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_that_no_acknowledgement_frees_does_not_hold_a_send_past_the_resume_wait() {
        let memory = Arc::new(Semaphore::new(0));
        let started = tokio::time::Instant::now();
        let wait = blocked_wait(&memory, 10, std::time::Duration::from_secs(60));
        tokio::task::yield_now().await;
        memory.add_permits(30);
        wait.await.unwrap().expect("memory");
        assert!(
            started.elapsed() >= RESUME_WAIT,
            "resumed before the resume wait"
        );
        assert!(started.elapsed() < RESUME_WAIT * 2);
        assert_eq!(memory.available_permits(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_buffer_times_out_at_the_limit_and_a_closed_one_fails_at_once() {
        let memory = Arc::new(Semaphore::new(0));
        let started = tokio::time::Instant::now();
        let limit = std::time::Duration::from_secs(5);
        let wait = blocked_wait(&memory, 10, limit);
        assert_eq!(wait.await.unwrap(), Err(MemoryWait::TimedOut));
        assert_eq!(started.elapsed(), limit);
        // A limit shorter than the resume wait is kept too.
        let started = tokio::time::Instant::now();
        let short = RESUME_WAIT / 4;
        assert_eq!(
            blocked_wait(&memory, 10, short).await.unwrap(),
            Err(MemoryWait::TimedOut)
        );
        assert_eq!(started.elapsed(), short);
        let wait = blocked_wait(&memory, 10, limit);
        tokio::task::yield_now().await;
        memory.close();
        assert_eq!(wait.await.unwrap(), Err(MemoryWait::Closed));
        // A record as large as an eighth of the buffer waits for its own size.
        let memory = Arc::new(Semaphore::new(0));
        let wait = blocked_wait(&memory, 200, limit);
        tokio::task::yield_now().await;
        memory.add_permits(200);
        wait.await.unwrap().expect("memory");
        assert_eq!(memory.available_permits(), 0);
    }

    const BUFFER_MEMORY: usize = 10_000;
    const VALUE: &[u8] = &[7; 100];
    /// `size_estimate` of the test record (16-byte key, 100-byte value).
    const SIZE: usize = 137;

    /// One partition, `buffer.memory` and the producer's batch counter.
    struct Fixture {
        topic: TopicQueues,
        memory: Semaphore,
        outstanding: AtomicUsize,
        settings: BatchSettings,
    }

    impl Fixture {
        fn new(batch_size: usize, permits: usize) -> Fixture {
            Fixture {
                topic: TopicQueues::new(
                    "t".into(),
                    1,
                    Arc::from([0]),
                    Arc::new(crate::producer::pool::BufferPool::new(1 << 20, 1 << 20)),
                ),
                memory: Semaphore::new(permits),
                outstanding: AtomicUsize::new(0),
                settings: BatchSettings {
                    batch_size,
                    compression: Compression::None,
                    compression_level: None,
                    max_credit: BatchSettings::max_credit(batch_size, BUFFER_MEMORY),
                },
            }
        }

        fn queue(&self) -> &PartitionQueue {
            &self.topic.partitions[0]
        }

        /// Appends the test record with `prepaid` permits.
        fn append(
            &self,
            prepaid: usize,
            headers: &[Header],
        ) -> Result<(Option<DeliveryHandle>, Appended)> {
            let record = RecordParts {
                timestamp: 1_700_000_000_000,
                key: Some(b"0123456789abcdef"),
                value: Some(VALUE),
                headers,
                size: SIZE,
                prepaid,
            };
            append(
                &self.topic,
                self.queue(),
                &self.settings,
                &self.memory,
                &self.outstanding,
                record,
            )
        }

        /// Permits held by the partition's batches, and the bytes their
        /// records count.
        fn held(&self) -> (usize, usize) {
            let state = self.queue().lock();
            state
                .ready
                .iter()
                .chain(state.open.as_ref())
                .fold((0, 0), |(reserved, used), b| {
                    (reserved + b.reserved, used + b.reserved - b.credit)
                })
        }
    }

    #[test]
    fn credit_never_lets_buffered_bytes_exceed_buffer_memory() {
        for batch_size in [1_000_000, 16 * 1024, 1_000] {
            let f = Fixture::new(batch_size, BUFFER_MEMORY);
            let mut appended = 0;
            while let (Some(_), _) = f.append(0, &[]).unwrap() {
                appended += 1;
                let (reserved, used) = f.held();
                // Every permit is either free or held by a batch.
                assert_eq!(reserved + f.memory.available_permits(), BUFFER_MEMORY);
                assert_eq!(used, appended * SIZE);
                // Credit taken ahead is at most what the records hold.
                assert!(reserved - used <= used.max(SIZE), "{reserved} for {used}");
            }
            // Full: the records fill buffer.memory up to less than one
            // record plus the credit of the open batch.
            let (reserved, used) = f.held();
            assert!(used <= BUFFER_MEMORY);
            assert!(
                BUFFER_MEMORY - used < SIZE + f.settings.max_credit,
                "batch.size {batch_size}: {used} bytes used, {reserved} reserved"
            );
        }
    }

    #[test]
    fn a_batch_sealed_by_an_append_gives_its_credit_back() {
        // Batches of 5 records (61-byte header + 5 * 122-byte records).
        let f = Fixture::new(700, BUFFER_MEMORY);
        for _ in 0..12 {
            assert!(f.append(0, &[]).unwrap().0.is_some());
        }
        let state = f.queue().lock();
        assert!(state.ready.len() >= 2);
        for batch in &state.ready {
            assert_eq!(batch.credit, 0);
            assert_eq!(batch.reserved, batch.records * SIZE);
        }
        let open = state.open.as_ref().unwrap();
        assert_eq!(
            f.memory.available_permits(),
            BUFFER_MEMORY - 12 * SIZE - open.credit
        );
    }

    #[test]
    fn an_open_batch_taken_by_the_sender_gives_its_credit_back() {
        let f = Fixture::new(1_000_000, BUFFER_MEMORY);
        for _ in 0..5 {
            assert!(f.append(0, &[]).unwrap().0.is_some());
        }
        let mut state = f.queue().lock();
        assert!(
            state.open.as_ref().unwrap().credit > 0,
            "credit was taken ahead"
        );
        let batch = take_open(&mut state, &f.memory).unwrap();
        assert!(state.open.is_none());
        assert_eq!((batch.credit, batch.reserved), (0, 5 * SIZE));
        assert_eq!(f.memory.available_permits(), BUFFER_MEMORY - 5 * SIZE);
    }

    #[test]
    fn without_memory_the_append_waits_and_a_prepaid_one_succeeds() {
        let f = Fixture::new(16 * 1024, 100);
        let (handle, appended) = f.append(0, &[]).unwrap();
        assert!(handle.is_none());
        // No batch was opened for a record that could not be appended.
        assert!(appended.opened_at.is_none() && f.queue().lock().open.is_none());
        assert_eq!(f.memory.available_permits(), 100);
        assert!(f.append(SIZE, &[]).unwrap().0.is_some());
        assert_eq!(f.held(), (SIZE, SIZE));
        assert_eq!(f.memory.available_permits(), 100);
    }

    #[test]
    fn a_refused_record_gives_its_prepaid_memory_back() {
        let f = Fixture::new(16 * 1024, 0);
        let bad = [Header {
            key: Bytes::from_static(&[0xff, 0xfe]),
            value: None,
        }];
        let refused = f.append(SIZE, &bad);
        assert!(matches!(refused, Err(ProducerError::InvalidRecord(_))));
        assert_eq!(f.memory.available_permits(), SIZE);
        assert_eq!(f.held(), (0, 0));
    }
}
