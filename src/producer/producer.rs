//! The [`Producer`] handle.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::network::{Backoff, ClientConfig, Cluster};
use crate::protocol::ErrorCode;

use super::accumulator::{
    self, append, BatchSettings, MemoryWait, RecordParts, TopicQueues, TxnPartition,
};
use super::clock;
use super::config::ProducerConfig;
use super::error::{ProducerError, Result};
use super::metrics::{Counters, ProducerMetrics};
use super::partitioner::{next_sticky_partition, partition_for_key};
use super::pool::BufferPool;
use super::record::{DeliveryHandle, ProducerRecord, RecordView, TrySendError};
use super::sender::Sender;
use super::state::{Shared, TxnShared};
use super::txn::{self, ConsumerGroupMetadata, OffsetToCommit};

/// A Kafka producer. Cheap to clone; clones share batches, connections and
/// the sender task. See the [module documentation](super) for an example
/// and for what dropping it does.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A close in the background: the sender delivers what is buffered.
        self.shared.closing.store(true, Ordering::Release);
        self.shared.wake.notify_one();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.inner.shared.config)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Connects to the cluster and, with idempotence (the default), obtains
    /// a producer id. A transactional producer gets its id from
    /// [`Producer::init_transactions`].
    ///
    /// `max.in.flight.requests.per.connection` is the smaller of the
    /// client's and the producer's setting.
    pub async fn new(mut client: ClientConfig, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        clock::calibrate();
        client.max_in_flight_requests_per_connection = client
            .max_in_flight_requests_per_connection
            .min(config.max_in_flight);
        let cluster = Cluster::connect(client.clone()).await?;
        Self::with_cluster(cluster, config).await
    }

    /// A producer over an existing [`Cluster`] (sharing its connections).
    pub async fn with_cluster(cluster: Cluster, mut config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let client = cluster.config().clone();
        config.max_in_flight = config
            .max_in_flight
            .min(client.max_in_flight_requests_per_connection);
        let backoff = Backoff::new(
            config.retry_backoff.unwrap_or(client.retry_backoff),
            config.retry_backoff_max.unwrap_or(client.retry_backoff_max),
        );
        let shared = Arc::new(Shared {
            settings: BatchSettings {
                batch_size: config.batch_size.max(1),
                compression: config.compression,
                compression_level: config.compression_level,
                max_credit: BatchSettings::max_credit(config.batch_size, config.buffer_memory),
            },
            request_timeout: config.request_timeout.unwrap_or(client.request_timeout),
            backoff,
            topics: Default::default(),
            topics_generation: AtomicUsize::new(0),
            memory: Semaphore::new(config.buffer_memory.min(Semaphore::MAX_PERMITS)),
            // Idle capacity up to 2x buffer.memory (pooled buffers are
            // rounded up, and only the part batches used is resident);
            // batches up to 4x batch.size (a compressed batch's records
            // exceed batch.size before compression).
            pool: Arc::new(BufferPool::new(
                config.buffer_memory.saturating_mul(2),
                config.batch_size.saturating_mul(4),
            )),
            wake: Notify::new(),
            epoch: Instant::now(),
            sender_wake_at: AtomicU64::new(u64::MAX),
            first_topic: OnceLock::new(),
            last_topic: ArcSwapOption::empty(),
            counters: Counters::default(),
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            abandon: AtomicBool::new(false),
            fatal: Default::default(),
            idempotent: AtomicBool::new(false),
            producer_id: AtomicI64::new(-1),
            producer_epoch: AtomicI32::new(-1),
            txn: config
                .transactional_id
                .as_ref()
                .map(|_| TxnShared::default()),
            cluster,
            config,
        });
        if shared.config.wants_idempotence() && shared.txn.is_none() {
            match txn::init_producer_id(&shared, None).await {
                Ok((id, epoch)) => {
                    shared.set_producer_id_and_epoch(id, epoch);
                    shared.idempotent.store(true, Ordering::Release);
                }
                Err(e) if shared.config.enable_idempotence.is_none() && !e.is_fatal() => {
                    tracing::warn!(error = %e, "broker cannot give a producer id: idempotence off");
                }
                Err(e) => return Err(e),
            }
        }
        let sender = tokio::spawn(Sender::new(shared.clone()).run());
        Ok(Producer {
            inner: Arc::new(Inner {
                shared,
                sender: Mutex::new(Some(sender)),
            }),
        })
    }

    /// The settings in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.inner.shared.config
    }

    /// The producer id and epoch (-1, -1 without idempotence).
    pub fn producer_id_and_epoch(&self) -> (i64, i16) {
        self.inner.shared.producer_id_and_epoch()
    }

    /// Enqueues a record: returns once it is appended to a batch, waiting
    /// while `buffer.memory` is full or the topic's metadata is unknown, at
    /// most `max.block.ms`. Await the returned [`DeliveryHandle`] for the
    /// broker's acknowledgement.
    ///
    /// The key and value are copied into the batch before `send` returns:
    /// the record, and whatever it borrows, is not needed afterwards (see
    /// [`ProducerRecord::borrowed`]).
    pub async fn send<K, V>(&self, record: ProducerRecord<K, V>) -> Result<DeliveryHandle>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.send_view(record.view()).await
    }

    /// Enqueues a record if that needs no wait: the synchronous form of
    /// [`send`](Self::send), for code that is not async or that batches its
    /// own waits (as librdkafka's `produce` does). When `send` would wait
    /// (`buffer.memory` full, or the topic's metadata not known yet), the
    /// record comes back in [`TrySendError::WouldBlock`]: pass it to `send`
    /// to wait for room, or try again later (a topic's missing metadata is
    /// asked for by the first `try_send` that lacks it).
    ///
    /// ```no_run
    /// # async fn demo(producer: ferrokafka::producer::Producer) -> ferrokafka::producer::Result<()> {
    /// use ferrokafka::producer::{ProducerRecord, TrySendError};
    ///
    /// let record = ProducerRecord::borrowed("events", b"payload");
    /// let delivery = match producer.try_send(record) {
    ///     Ok(delivery) => delivery,
    ///     Err(TrySendError::WouldBlock(record)) => producer.send(record).await?,
    ///     Err(TrySendError::Failed(e)) => return Err(e),
    /// };
    /// delivery.await?;
    /// # Ok(()) }
    /// ```
    pub fn try_send<K, V>(
        &self,
        record: ProducerRecord<K, V>,
    ) -> std::result::Result<DeliveryHandle, TrySendError<K, V>>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        let view = record.view();
        let size = self.admit(&view)?;
        let outcome = match self.append_now(&view, size, 0) {
            Some(outcome) => outcome,
            None => match self.topic_without_waiting(view.topic) {
                Some(topic) => self.append_to(topic, &view, size, 0),
                None => Ok(None),
            },
        };
        match outcome {
            Ok(Some(handle)) => Ok(handle),
            Ok(None) => Err(TrySendError::WouldBlock(record)),
            Err(e) => Err(TrySendError::Failed(e)),
        }
    }

    /// For `try_send`, a topic the producer has no queues for yet: set up
    /// from the cluster's current metadata if that has it; otherwise its
    /// metadata is asked for (`None`), so that a later `try_send` finds it
    /// without anyone having to await `send`.
    fn topic_without_waiting(&self, name: &str) -> Option<Arc<TopicQueues>> {
        let shared = &*self.inner.shared;
        let snapshot = shared.cluster.snapshot();
        let queues = snapshot
            .topic(name)
            .and_then(|t| shared.add_usable_topic(name, t));
        if queues.is_none() && !shared.cluster.track_topics([name]) {
            shared.cluster.request_metadata_refresh();
        }
        queues
    }

    /// `send`, compiled once for every key and value type.
    async fn send_view(&self, record: RecordView<'_>) -> Result<DeliveryHandle> {
        let size = self.admit(&record)?;
        // The fast path awaits nothing and takes no lock besides the
        // partition's (see `append_now`). It waits only for unknown
        // metadata or a full `buffer.memory`, both within one
        // `max.block.ms` that starts at the first wait.
        let mut waiting_since: Option<Instant> = None;
        let mut prepaid = 0;
        loop {
            // The waits are boxed: the future of `send` stays small (it is
            // moved at least once per record), and they are rare.
            let outcome = match self.append_now(&record, size, prepaid) {
                Some(outcome) => outcome,
                None => {
                    let since = *waiting_since.get_or_insert_with(Instant::now);
                    Box::pin(self.append_after_metadata(&record, size, prepaid, since)).await
                }
            };
            if let Some(handle) = outcome? {
                return Ok(handle);
            }
            // `buffer.memory` is full: wait for room (see
            // `accumulator::wait_for_memory`), then append again with this
            // record's bytes prepaid (which cannot lack memory).
            let since = *waiting_since.get_or_insert_with(Instant::now);
            Box::pin(self.wait_for_memory(size, since)).await?;
            prepaid = size;
        }
    }

    /// Whether a record may be sent now (the producer open and not failed,
    /// a transaction begun when transactional, the record within
    /// `max.request.size` and `buffer.memory`); returns its size estimate.
    fn admit(&self, record: &RecordView<'_>) -> Result<usize> {
        let shared = &*self.inner.shared;
        if shared.closing.load(Ordering::Acquire) {
            return Err(ProducerError::Closed);
        }
        if let Some(fatal) = shared.fatal_error() {
            return Err(fatal);
        }
        if let Some(txn) = &shared.txn {
            if !txn.in_transaction.load(Ordering::Acquire) {
                return Err(ProducerError::TransactionState(
                    "send outside a transaction: call begin_transaction first".into(),
                ));
            }
        }
        let size = record.size_estimate();
        if size > shared.config.max_request_size {
            return Err(ProducerError::RecordTooLarge {
                size,
                limit_name: "max.request.size",
                limit: shared.config.max_request_size,
            });
        }
        if size > shared.config.buffer_memory {
            return Err(ProducerError::RecordTooLarge {
                size,
                limit_name: "buffer.memory",
                limit: shared.config.buffer_memory,
            });
        }
        Ok(size)
    }

    /// Appends a record without waiting, if its topic's metadata is known
    /// (`None`: it is not): the producer's first topic through plain loads,
    /// the last other topic through a lock-free cache, others through the
    /// map; the memory from the open batch's credit (see
    /// `accumulator::append`).
    #[inline]
    fn append_now(
        &self,
        record: &RecordView<'_>,
        size: usize,
        prepaid: usize,
    ) -> Option<Result<Option<DeliveryHandle>>> {
        let shared = &*self.inner.shared;
        let first = shared
            .first_topic
            .get()
            .filter(|t| *t.name == *record.topic && !t.replaced.load(Ordering::Acquire));
        if let Some(topic) = first {
            return Some(self.append_record(topic, record, size, prepaid));
        }
        {
            let cached = shared.last_topic.load();
            if let Some(topic) = cached.as_deref().filter(|t| *t.name == *record.topic) {
                return Some(self.append_record(topic, record, size, prepaid));
            }
        }
        let topic = shared.topic(record.topic)?;
        Some(self.append_to(topic, record, size, prepaid))
    }

    /// `append_record` for a record of a topic first seen: waits for its
    /// metadata (within `max.block.ms` after `since`).
    async fn append_after_metadata(
        &self,
        record: &RecordView<'_>,
        size: usize,
        prepaid: usize,
        since: Instant,
    ) -> Result<Option<DeliveryHandle>> {
        match self.topic_metadata(record.topic, since).await {
            Ok(topic) => self.append_to(topic, record, size, prepaid),
            Err(e) => {
                self.inner.shared.release(prepaid);
                Err(e)
            }
        }
    }

    /// `append_record` for a topic found in the map: cached for the next
    /// records first.
    fn append_to(
        &self,
        topic: Arc<TopicQueues>,
        record: &RecordView<'_>,
        size: usize,
        prepaid: usize,
    ) -> Result<Option<DeliveryHandle>> {
        let shared = &*self.inner.shared;
        if shared.first_topic.set(topic.clone()).is_err() {
            shared.last_topic.store(Some(topic.clone()));
        }
        self.append_record(&topic, record, size, prepaid)
    }

    /// Appends a record (see `accumulator::append`, which owns `prepaid`).
    /// `None`: `buffer.memory` has no room for it now.
    fn append_record(
        &self,
        topic: &TopicQueues,
        record: &RecordView<'_>,
        size: usize,
        prepaid: usize,
    ) -> Result<Option<DeliveryHandle>> {
        let shared = &*self.inner.shared;
        let partition = match self.choose_partition(topic, record) {
            Ok(p) => p,
            Err(e) => {
                shared.release(prepaid);
                return Err(e);
            }
        };
        let queue = &topic.partitions[partition as usize];
        let timestamp = record.timestamp.unwrap_or_else(clock::now_ms);
        let (handle, appended) = append(
            topic,
            queue,
            &shared.settings,
            &shared.memory,
            &shared.outstanding,
            RecordParts {
                timestamp,
                key: record.key,
                value: record.value,
                headers: record.headers,
                size,
                prepaid,
            },
        )?;
        if appended.sealed
            && record.partition.is_none()
            && topic.sticky.load(Ordering::Relaxed) == partition
        {
            self.move_sticky(topic, partition);
        }
        if appended.sealed
            || appended
                .opened_at
                .is_some_and(|at| shared.sender_sleeps_past(at + shared.config.linger))
        {
            shared.wake.notify_one();
        }
        Ok(handle)
    }

    fn choose_partition(&self, topic: &TopicQueues, record: &RecordView<'_>) -> Result<i32> {
        let config = &self.inner.shared.config;
        let count = topic.partition_count();
        if let Some(p) = record.partition {
            if !(0..count).contains(&p) {
                return Err(ProducerError::UnknownTopicOrPartition {
                    topic: record.topic.to_string(),
                    partition: Some(p),
                });
            }
            return Ok(p);
        }
        let key = record.key;
        let chosen = match &config.partitioner {
            Some(custom) => custom.partition(&topic.name, key, count),
            None if !config.partitioner_ignore_keys => key.map(|k| partition_for_key(k, count)),
            None => None,
        };
        if let Some(p) = chosen {
            if !(0..count).contains(&p) {
                return Err(ProducerError::UnknownTopicOrPartition {
                    topic: record.topic.to_string(),
                    partition: Some(p),
                });
            }
            return Ok(p);
        }
        let sticky = topic.sticky.load(Ordering::Relaxed);
        if sticky >= 0 {
            return Ok(sticky);
        }
        Ok(self.move_sticky(topic, -1))
    }

    /// Picks a new sticky partition for keyless records (KIP-794), unless
    /// another task already moved it away from `from`.
    fn move_sticky(&self, topic: &TopicQueues, from: i32) -> i32 {
        let available = topic.available();
        let queued = |p: i32| {
            topic.partitions[p as usize]
                .queued_batches
                .load(Ordering::Relaxed)
        };
        let adaptive = self.inner.shared.config.adaptive_partitioning;
        let next = next_sticky_partition(
            &available,
            topic.partition_count(),
            adaptive.then_some(&queued as &dyn Fn(i32) -> usize),
        );
        match topic
            .sticky
            .compare_exchange(from, next, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => next,
            Err(current) => current,
        }
    }

    /// Takes `size` bytes of `buffer.memory`, waiting while it is full
    /// (see `accumulator::wait_for_memory`), until `max.block.ms` after
    /// `since`.
    async fn wait_for_memory(&self, size: usize, since: Instant) -> Result<()> {
        let shared = &*self.inner.shared;
        let max_block = shared.config.max_block;
        let limit = tokio::time::Instant::now() + max_block.saturating_sub(since.elapsed());
        let capacity = shared.config.buffer_memory;
        match accumulator::wait_for_memory(&shared.memory, capacity, size, limit).await {
            Ok(()) => Ok(()),
            Err(MemoryWait::Closed) => Err(ProducerError::Closed),
            Err(MemoryWait::TimedOut) => Err(ProducerError::MaxBlockTimeout {
                timeout: max_block,
                waiting_for: "buffer memory",
            }),
        }
    }

    /// Waits for a topic's metadata (at most `max.block.ms`) and sets up its
    /// partition queues.
    async fn topic_metadata(&self, name: &str, started: Instant) -> Result<Arc<TopicQueues>> {
        let shared = &*self.inner.shared;
        let cluster = &shared.cluster;
        let max_block = shared.config.max_block;
        let timed_out = || ProducerError::MaxBlockTimeout {
            timeout: max_block,
            waiting_for: "metadata",
        };
        let left = || max_block.saturating_sub(started.elapsed());
        let mut snapshot =
            match tokio::time::timeout(left(), cluster.metadata_for_topics(&[name])).await {
                Ok(Ok(snapshot)) => Some(snapshot),
                Ok(Err(e)) if !e.is_retriable() => return Err(e.into()),
                Ok(Err(e)) => {
                    tracing::debug!(topic = name, error = %e, "metadata not available yet");
                    None
                }
                Err(_) => return Err(timed_out()),
            };
        let mut attempt = 0;
        loop {
            if let Some(t) = snapshot.as_ref().and_then(|s| s.topic(name)) {
                if let Some(queues) = shared.add_usable_topic(name, t) {
                    return Ok(queues);
                }
                let code = t.error();
                if !code.is_retriable() && code != ErrorCode::None {
                    return Err(ProducerError::Broker {
                        topic: Arc::from(name),
                        partition: -1,
                        code,
                        message: Some("topic metadata".into()),
                    });
                }
            }
            // Not there yet (a topic being created, a leader being elected):
            // ask again after a backoff, within max.block.ms.
            let delay = shared.backoff.delay(attempt);
            attempt += 1;
            if started.elapsed() + delay > max_block {
                return Err(timed_out());
            }
            tokio::time::sleep(delay).await;
            let seen = snapshot.as_ref().map_or(0, |s| s.generation());
            cluster.request_metadata_refresh();
            match tokio::time::timeout(left(), cluster.metadata_changed(seen)).await {
                Ok(newer) => snapshot = Some(newer),
                Err(_) => return Err(timed_out()),
            }
        }
    }

    /// Sends every buffered record now (ignoring `linger.ms`) and waits
    /// until each one is acknowledged or failed. Record failures are reported
    /// through their handles, not here.
    pub async fn flush(&self) -> Result<()> {
        let shared = &*self.inner.shared;
        shared.flushing.fetch_add(1, Ordering::AcqRel);
        shared.wake.notify_one();
        loop {
            let idle = shared.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if shared.outstanding.load(Ordering::Acquire) == 0 {
                break;
            }
            idle.await;
        }
        shared.flushing.fetch_sub(1, Ordering::AcqRel);
        match shared.fatal_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops accepting records, delivers what is buffered, and stops the
    /// sender, waiting at most `timeout`. Past it, records still pending
    /// fail with [`ProducerError::DroppedOnClose`] and this returns
    /// [`ProducerError::Timeout`].
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        let shared = &*self.inner.shared;
        shared.closing.store(true, Ordering::Release);
        shared.wake.notify_one();
        let handle = self
            .inner
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(mut handle) = handle else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, &mut handle).await {
            Ok(_) => Ok(()),
            Err(_) => {
                shared.abandon.store(true, Ordering::Release);
                shared.wake.notify_one();
                let _ = handle.await;
                Err(ProducerError::Timeout {
                    operation: "close",
                    timeout,
                })
            }
        }
    }

    /// A snapshot of the producer's counters.
    pub fn metrics(&self) -> ProducerMetrics {
        let shared = &*self.inner.shared;
        shared
            .counters
            .snapshot(shared.buffer_used(), shared.config.buffer_memory)
    }

    /// The partition count of `topic` (fetching its metadata if needed).
    pub async fn partition_count(&self, topic: &str) -> Result<i32> {
        let shared = &*self.inner.shared;
        let queues = match shared.topic(topic) {
            Some(q) => q,
            None => self.topic_metadata(topic, Instant::now()).await?,
        };
        Ok(queues.partition_count())
    }

    // ------------------------------------------------------- transactions

    fn txn(&self) -> Result<&TxnShared> {
        self.inner
            .shared
            .txn
            .as_ref()
            .ok_or_else(|| ProducerError::TransactionState("no transactional.id configured".into()))
    }

    /// Registers the transactional id with its coordinator: fences older
    /// producers with the same id and aborts their open transaction. Call
    /// once before the first [`begin_transaction`](Self::begin_transaction).
    pub async fn init_transactions(&self) -> Result<()> {
        let txn = self.txn()?;
        let shared = &*self.inner.shared;
        let (id, epoch) = txn::init_producer_id(shared, None).await?;
        shared.set_producer_id_and_epoch(id, epoch);
        shared.idempotent.store(true, Ordering::Release);
        txn.initialized.store(true, Ordering::Release);
        Ok(())
    }

    /// Opens a transaction: records sent until commit or abort belong to it.
    pub fn begin_transaction(&self) -> Result<()> {
        let txn = self.txn()?;
        if let Some(e) = self.inner.shared.fatal_error() {
            return Err(e);
        }
        if !txn.initialized.load(Ordering::Acquire) {
            return Err(ProducerError::TransactionState(
                "call init_transactions first".into(),
            ));
        }
        if txn.in_transaction.swap(true, Ordering::AcqRel) {
            return Err(ProducerError::TransactionState(
                "a transaction is already open".into(),
            ));
        }
        Ok(())
    }

    /// Adds consumed offsets to the transaction: they are committed for
    /// `group` if and only if the transaction commits.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[OffsetToCommit],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self.open_txn()?;
        txn::send_offsets(&self.inner.shared, offsets, group).await?;
        txn.started.store(true, Ordering::Release);
        Ok(())
    }

    fn open_txn(&self) -> Result<&TxnShared> {
        let txn = self.txn()?;
        if let Some(e) = self.inner.shared.fatal_error() {
            return Err(e);
        }
        if !txn.in_transaction.load(Ordering::Acquire) {
            return Err(ProducerError::TransactionState(
                "no open transaction".into(),
            ));
        }
        Ok(txn)
    }

    /// Sends every record of the transaction, then commits it. If a record
    /// of the transaction failed, nothing is committed: this returns
    /// [`ProducerError::TransactionAborted`] and you must call
    /// [`abort_transaction`](Self::abort_transaction).
    pub async fn commit_transaction(&self) -> Result<()> {
        let txn = self.open_txn()?;
        self.flush().await?;
        if let Some(e) = txn
            .abortable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(ProducerError::TransactionAborted(format!(
                "a record of the transaction failed ({e}); call abort_transaction"
            )));
        }
        if txn.started.load(Ordering::Acquire) {
            txn::end_transaction(&self.inner.shared, true).await?;
        }
        self.reset_transaction(txn);
        Ok(())
    }

    /// Aborts the transaction: its records stay in the log but consumers
    /// reading committed data skip them.
    ///
    /// If the transaction failed on a sequence error (a batch lost for
    /// good, or the broker forgot the producer), the abort also bumps the
    /// producer epoch with InitProducerId (KIP-360), as the Java client
    /// does, so the next transaction starts with fresh sequences instead of
    /// failing the same way.
    pub async fn abort_transaction(&self) -> Result<()> {
        let txn = self.open_txn()?;
        let shared = &*self.inner.shared;
        self.flush().await?;
        if txn.started.load(Ordering::Acquire) {
            txn::end_transaction(shared, false).await?;
        }
        if txn.epoch_bump_required.load(Ordering::Acquire) {
            let (id, epoch) =
                txn::init_producer_id(shared, Some(shared.producer_id_and_epoch())).await?;
            tracing::info!(
                producer_id = id,
                epoch,
                "transaction aborted after a sequence error: new epoch"
            );
            shared.set_producer_id_and_epoch(id, epoch);
            shared.restart_sequences();
            Counters::add(&shared.counters.epoch_bumps, 1);
            txn.epoch_bump_required.store(false, Ordering::Release);
        }
        self.reset_transaction(txn);
        Ok(())
    }

    fn reset_transaction(&self, txn: &TxnShared) {
        for topic in self.inner.shared.all_topics() {
            for q in topic.partitions.iter() {
                q.lock().txn = TxnPartition::NotAdded;
            }
        }
        *txn.abortable.lock().unwrap_or_else(|p| p.into_inner()) = None;
        txn.started.store(false, Ordering::Release);
        txn.in_transaction.store(false, Ordering::Release);
    }
}
