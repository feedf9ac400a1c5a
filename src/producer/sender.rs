//! The sender task: drains ready batches, groups them by leader into
//! ProduceRequests, keeps up to `max.in.flight` requests per broker in order,
//! and handles responses: acknowledgements, retries in sequence order after
//! fresh metadata, epoch bumps (KIP-360) and fatal errors.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tracing::Instrument;

use crate::network::{
    BrokerConnection, ConnectionRole, Error as NetError, MetadataSnapshot, RequestOptions,
};
use crate::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use crate::protocol::messages::{ProduceRequest, ProduceResponse};
use crate::protocol::ErrorCode;
use crate::records::{restamped, Compression, ProducerState, RecordBatchBuilder};

use super::accumulator::{
    take_open, PartitionQueue, PartitionState, ProducerBatch, TopicQueues, TxnPartition,
};
use super::config::Acks;
use super::error::ProducerError;
use super::metrics::Counters;
use super::record::BatchAck;
use super::state::Shared;
use super::txn;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Something the sender waited for.
enum Event {
    Produced {
        request: u64,
        result: Result<Option<ProduceResponse>, NetError>,
        latency: Duration,
    },
    Connected {
        node: i32,
        result: Result<BrokerConnection, NetError>,
    },
    /// A refresh the sender asked for: the newer snapshot, or `None` when
    /// none came within the request timeout.
    Metadata(Option<Arc<MetadataSnapshot>>),
    EpochBumped(Result<(i64, i16), ProducerError>),
    PartitionsAdded {
        partitions: Vec<(Arc<TopicQueues>, i32)>,
        result: Result<Vec<(String, i32, ErrorCode)>, ProducerError>,
    },
}

enum Conn {
    Ready(BrokerConnection),
    Connecting,
    Failed { retry_at: Instant, attempts: u32 },
}

/// Batches of one request: topic, partition, batch.
type RequestBatches = Vec<(Arc<TopicQueues>, i32, ProducerBatch)>;

struct InFlight {
    node: i32,
    batches: RequestBatches,
}

pub(crate) struct Sender {
    shared: Arc<Shared>,
    tasks: FuturesUnordered<BoxFuture<Event>>,
    conns: HashMap<i32, Conn>,
    in_flight: HashMap<u64, InFlight>,
    broker_in_flight: HashMap<i32, usize>,
    next_request: u64,
    topics: Arc<Vec<Arc<TopicQueues>>>,
    topics_generation: usize,
    metadata_wanted: bool,
    metadata_running: bool,
    metadata_retry_at: Option<Instant>,
    /// The generation of the last snapshot applied to the partitions.
    metadata_generation: u64,
    bump_wanted: bool,
    bump_running: bool,
    add_running: bool,
    add_retry_at: Option<Instant>,
    /// Where the next pass over the partitions starts.
    drain_start: usize,
}

fn merge_deadline(next: &mut Option<Instant>, at: Instant) {
    *next = Some(next.map_or(at, |n| n.min(at)));
}

impl Sender {
    pub fn new(shared: Arc<Shared>) -> Self {
        Sender {
            shared,
            tasks: FuturesUnordered::new(),
            conns: HashMap::new(),
            in_flight: HashMap::new(),
            broker_in_flight: HashMap::new(),
            next_request: 0,
            topics: Arc::new(Vec::new()),
            topics_generation: usize::MAX,
            metadata_wanted: false,
            metadata_running: false,
            metadata_retry_at: None,
            metadata_generation: 0,
            bump_wanted: false,
            bump_running: false,
            add_running: false,
            add_retry_at: None,
            drain_start: 0,
        }
    }

    pub async fn run(mut self) {
        loop {
            // While draining, every newly opened batch wakes the sender
            // again (it may have scanned that partition already).
            self.shared.set_sender_wake_at(None);
            let next = self.drain();
            if self.finished() {
                break;
            }
            self.shared.set_sender_wake_at(next);
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            // A refresh the refresher made on its own (metadata.max.age.ms)
            // may show new partitions or leaders even while nothing is sent.
            let cluster = self.shared.cluster.clone();
            let seen = self.metadata_generation;
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                Some(event) = self.tasks.next(), if !self.tasks.is_empty() => self.handle(event),
                snapshot = cluster.metadata_changed(seen) => self.apply_metadata(&snapshot),
                _ = sleep => {}
            }
            // Handle whatever else completed meanwhile before draining again.
            while let Some(Some(event)) = futures_util::FutureExt::now_or_never(self.tasks.next()) {
                self.handle(event);
            }
        }
        tracing::debug!("producer sender stopped");
    }

    fn finished(&self) -> bool {
        let closing = self.shared.closing.load(Ordering::Acquire);
        (closing
            && self.shared.outstanding.load(Ordering::Acquire) == 0
            && self.in_flight.is_empty())
            || self.shared.abandon.load(Ordering::Acquire)
    }

    fn refresh_topics(&mut self) {
        let generation = self.shared.topics_generation.load(Ordering::Acquire);
        if generation != self.topics_generation {
            self.topics = Arc::new(self.shared.all_topics());
            self.topics_generation = generation;
        }
    }

    /// Sends what can be sent; returns when something next becomes due.
    fn drain(&mut self) -> Option<Instant> {
        self.refresh_topics();
        self.apply_newer_metadata();
        let now = Instant::now();
        let mut next = None;
        if self.shared.abandon.load(Ordering::Acquire) {
            self.fail_everything(|| ProducerError::DroppedOnClose);
            return None;
        }
        if let Some(fatal) = self.shared.fatal_error() {
            self.fail_everything(|| fatal.clone());
        }
        if self.metadata_wanted && !self.metadata_running {
            match self.metadata_retry_at {
                Some(at) if at > now => merge_deadline(&mut next, at),
                _ => self.start_metadata_refresh(),
            }
        }
        if self.bump_wanted {
            if !self.bump_running && self.in_flight.is_empty() {
                self.start_epoch_bump();
            }
            // Nothing goes out until the new epoch is known; batches still
            // expire meanwhile.
            self.expire_batches(now);
            return Some(now + Duration::from_millis(50));
        }
        self.start_partition_adds(now, &mut next);
        loop {
            let sent = self.drain_once(now, &mut next);
            if !sent {
                break;
            }
        }
        // Partitions first used in the transaction during the pass.
        self.start_partition_adds(now, &mut next);
        // Partitions without a leader found during the pass.
        if self.metadata_wanted && !self.metadata_running {
            match self.metadata_retry_at {
                Some(at) if at > now => merge_deadline(&mut next, at),
                _ => self.start_metadata_refresh(),
            }
        }
        if let Some(at) = self.first_expiry() {
            merge_deadline(&mut next, at);
        }
        next
    }

    /// When the oldest waiting batch reaches `delivery.timeout.ms`.
    fn first_expiry(&self) -> Option<Instant> {
        let timeout = self.shared.config.delivery_timeout;
        let mut first: Option<Instant> = None;
        for topic in self.topics.iter() {
            for queue in topic.partitions.iter() {
                let state = queue.lock();
                let oldest = state
                    .ready
                    .front()
                    .map(|b| b.created)
                    .into_iter()
                    .chain(state.open.as_ref().map(|b| b.created))
                    .min();
                if let Some(created) = oldest {
                    merge_deadline(&mut first, created + timeout);
                }
            }
        }
        first
    }

    /// One pass over every partition, building at most one request per
    /// broker. Returns whether any request was sent.
    fn drain_once(&mut self, now: Instant, next: &mut Option<Instant>) -> bool {
        let shared = self.shared.clone();
        let config = &shared.config;
        let linger = config.linger;
        let push_all =
            shared.flushing.load(Ordering::Acquire) > 0 || shared.closing.load(Ordering::Acquire);
        let idempotent = shared.is_idempotent();
        let transactional = shared.txn.is_some();
        let (producer_id, epoch) = shared.producer_id_and_epoch();
        // Per broker: bytes so far, batches, and the connection they go out on
        // (taken when the request starts: it may close before the pass ends,
        // and then the send fails and the batches are retried).
        let mut requests: HashMap<i32, (usize, RequestBatches, BrokerConnection)> = HashMap::new();
        let mut want_connect = Vec::new();
        let topics = self.topics.clone();
        // Each pass starts after the partition the last one took a batch
        // from, so partitions that do not all fit in a request (max.request.size)
        // take turns instead of the first ones always going first.
        let total: usize = topics.iter().map(|t| t.partitions.len()).sum();
        let start = if total == 0 {
            0
        } else {
            self.drain_start % total
        };
        let partitions = topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |q| (t, q)))
            .enumerate()
            .cycle()
            .skip(start)
            .take(total);
        for (position, (topic, queue)) in partitions {
            let mut state = queue.lock();
            self.expire_partition(topic, &mut state, now);
            // An open batch whose linger.ms is over may go now, but stays
            // open (taking records, up to batch.size) until it is taken
            // for a request.
            let mut open_due = false;
            if let Some(open) = &state.open {
                if open.records == 0 {
                    // An append that failed after opening the batch.
                    if open.created + linger <= now {
                        let empty = state.open.take().expect("present");
                        shared.finish_batch(empty, Err(ProducerError::Closed));
                    }
                } else if push_all || open.created + linger <= now {
                    open_due = true;
                } else {
                    merge_deadline(next, open.created + linger);
                }
            }
            if state.ready.is_empty() && !open_due {
                continue;
            }
            if state.leader < 0 {
                self.metadata_wanted = true;
                continue;
            }
            if transactional && state.txn != TxnPartition::Added {
                if state.txn == TxnPartition::NotAdded {
                    state.txn = TxnPartition::Pending;
                    if let Some(txn) = &shared.txn {
                        txn.to_add
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((topic.clone(), queue.index));
                    }
                }
                continue;
            }
            if let Some(at) = state.retry_not_before {
                if at > now {
                    merge_deadline(next, at);
                    continue;
                }
                state.retry_not_before = None;
            }
            if state.restart_sequences {
                if state.in_flight > 0 {
                    continue;
                }
                self.restart_sequences(topic, queue, &mut state, producer_id, epoch);
                if state.ready.is_empty() && !open_due {
                    continue;
                }
            }
            // The next batch to go: the oldest sealed one, else the open one.
            let front = match state.ready.front() {
                Some(front) => front,
                None => state.open.as_ref().expect("a due open batch"),
            };
            let is_retry = front.attempts > 0;
            if (is_retry && state.in_flight > 0)
                || (idempotent && state.in_flight >= config.max_in_flight.min(5))
            {
                continue;
            }
            let node = state.leader;
            let conn = match self.conns.get(&node) {
                Some(Conn::Ready(conn)) if !conn.is_closed() => conn.clone(),
                Some(Conn::Ready(_)) => {
                    self.conns.remove(&node);
                    want_connect.push(node);
                    continue;
                }
                Some(Conn::Connecting) => continue,
                Some(Conn::Failed { retry_at, .. }) if *retry_at > now => {
                    merge_deadline(next, *retry_at);
                    continue;
                }
                _ => {
                    want_connect.push(node);
                    continue;
                }
            };
            if self.broker_in_flight.get(&node).copied().unwrap_or(0) >= config.max_in_flight {
                continue;
            }
            let entry = requests
                .entry(node)
                .or_insert_with(|| (0, Vec::new(), conn));
            let size = front
                .encoded
                .as_ref()
                .map(Bytes::len)
                .or_else(|| front.builder.as_ref().map(|b| b.size_in_bytes()))
                .unwrap_or(0);
            if !entry.1.is_empty() && entry.0 + size > config.max_request_size {
                continue;
            }
            let mut batch = match state.ready.pop_front() {
                Some(batch) => {
                    queue.queued_batches.fetch_sub(1, Ordering::Relaxed);
                    batch
                }
                None => take_open(&mut state, &shared.memory).expect("a due open batch"),
            };
            // A first send stamps the batch (its sequence) under the
            // partition's lock, then compresses it and computes its CRC
            // without: appends to the partition's next batch do not wait
            // for that.
            let unsealed = batch.encoded.is_none().then(|| {
                stamp(
                    &mut batch,
                    &mut state,
                    idempotent,
                    transactional,
                    producer_id,
                    epoch,
                )
            });
            batch.attempts += 1;
            state.in_flight += 1;
            drop(state);
            if let Some(builder) = unsealed {
                if let Err(e) = seal(topic, &mut batch, builder) {
                    queue.lock().in_flight -= 1;
                    shared.finish_batch(batch, Err(e));
                    continue;
                }
            }
            if is_retry {
                Counters::add(&shared.counters.retries, 1);
            }
            entry.0 += batch.encoded.as_ref().map_or(0, Bytes::len);
            entry.1.push((topic.clone(), queue.index, batch));
            self.drain_start = position + 1;
        }
        for node in want_connect {
            self.connect(node);
        }
        let sent = !requests.is_empty();
        for (node, (_, batches, conn)) in requests {
            self.send_request(node, conn, batches);
        }
        sent
    }

    fn connect(&mut self, node: i32) {
        let attempts = match self.conns.get(&node) {
            Some(Conn::Connecting) | Some(Conn::Ready(_)) => return,
            Some(Conn::Failed { attempts, .. }) => *attempts,
            None => 0,
        };
        self.conns.insert(node, Conn::Connecting);
        let cluster = self.shared.cluster.clone();
        let _ = attempts;
        self.tasks.push(Box::pin(async move {
            let result = cluster
                .broker_connection_for(node, ConnectionRole::Produce)
                .await;
            Event::Connected { node, result }
        }));
    }

    fn send_request(
        &mut self,
        node: i32,
        conn: BrokerConnection,
        batches: Vec<(Arc<TopicQueues>, i32, ProducerBatch)>,
    ) {
        let shared = &self.shared;
        let config = &shared.config;
        let mut topic_data: Vec<TopicProduceData> = Vec::new();
        // Written to the socket from their own buffers, not copied into the frame.
        let payloads: Vec<Bytes> = batches
            .iter()
            .filter_map(|(_, _, b)| b.encoded.clone())
            .collect();
        for (topic, partition, batch) in &batches {
            let data = PartitionProduceData::default()
                .with_index(*partition)
                .with_records(batch.encoded.clone());
            match topic_data.iter_mut().find(|t| *t.name == *topic.name) {
                Some(t) => t.partition_data.push(data),
                None => topic_data.push(
                    TopicProduceData::default()
                        .with_name(topic.name.to_string())
                        .with_partition_data(vec![data]),
                ),
            }
        }
        let request = ProduceRequest::default()
            .with_transactional_id(config.transactional_id.clone())
            .with_acks(config.acks.wire())
            .with_timeout_ms(shared.request_timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topic_data(topic_data);
        let id = self.next_request;
        self.next_request += 1;
        let acks = config.acks;
        let timeout = shared.request_timeout;
        let span = tracing::debug_span!("produce", node, request = id, batches = batches.len());
        self.in_flight.insert(id, InFlight { node, batches });
        *self.broker_in_flight.entry(node).or_default() += 1;
        Counters::add(&shared.counters.requests_sent, 1);
        Counters::add(&shared.counters.in_flight, 1);
        self.tasks.push(Box::pin(
            async move {
                let started = Instant::now();
                let options = RequestOptions::role(ConnectionRole::Produce).with_timeout(timeout);
                // Ordered pipelining: frames leave in submission order, and
                // this task submits in the order requests were built.
                let result = if acks == Acks::None {
                    conn.submit_no_response_spliced(&request, &payloads, options)
                        .await
                        .map(|()| None)
                } else {
                    match conn.submit_spliced(&request, &payloads, options).await {
                        Ok(handle) => handle.await.map(Some),
                        Err(e) => Err(e),
                    }
                };
                Event::Produced {
                    request: id,
                    result,
                    latency: started.elapsed(),
                }
            }
            .instrument(span),
        ));
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Produced {
                request,
                result,
                latency,
            } => self.handle_produced(request, result, latency),
            Event::Connected { node, result } => match result {
                Ok(conn) => {
                    self.conns.insert(node, Conn::Ready(conn));
                }
                Err(e) => {
                    tracing::debug!(node, error = %e, "producer could not connect");
                    let attempts = 1;
                    let retry_at = Instant::now() + self.shared.backoff.delay(attempts);
                    self.conns.insert(node, Conn::Failed { retry_at, attempts });
                    // The broker may be gone for good: learn the new leaders.
                    self.metadata_wanted = true;
                    self.note_error_for_node(node, &e.to_string());
                }
            },
            Event::Metadata(result) => {
                self.metadata_running = false;
                match result {
                    Some(snapshot) => {
                        self.metadata_wanted = false;
                        self.metadata_retry_at = None;
                        self.apply_metadata(&snapshot);
                    }
                    None => {
                        tracing::debug!("producer metadata refresh timed out");
                        self.metadata_retry_at =
                            Some(Instant::now() + self.shared.backoff.delay(1));
                    }
                }
            }
            Event::EpochBumped(result) => {
                self.bump_running = false;
                match result {
                    Ok((id, epoch)) => {
                        self.bump_wanted = false;
                        self.shared.set_producer_id_and_epoch(id, epoch);
                        Counters::add(&self.shared.counters.epoch_bumps, 1);
                        self.resequence(id, epoch);
                    }
                    Err(e) if e.is_fatal() => {
                        let _ = self.shared.fatal.set(e);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "epoch bump failed; retrying");
                    }
                }
            }
            Event::PartitionsAdded { partitions, result } => {
                self.add_running = false;
                self.partitions_added(partitions, result);
            }
        }
    }

    /// Remembers why batches waiting for `node` are not moving.
    fn note_error_for_node(&self, node: i32, error: &str) {
        for topic in self.topics.iter() {
            for queue in topic.partitions.iter() {
                let mut state = queue.lock();
                if state.leader == node {
                    for b in state.ready.iter_mut() {
                        b.last_error = Some(error.to_owned());
                    }
                }
            }
        }
    }

    fn start_metadata_refresh(&mut self) {
        self.metadata_running = true;
        let cluster = self.shared.cluster.clone();
        let seen = self.metadata_generation;
        let timeout = self.shared.request_timeout;
        self.tasks.push(Box::pin(async move {
            cluster.request_metadata_refresh();
            let newer = tokio::time::timeout(timeout, cluster.metadata_changed(seen)).await;
            Event::Metadata(newer.ok())
        }));
    }

    /// Applies a snapshot the cluster's refresher brought meanwhile (its
    /// periodic refresh, or one another user of the cluster asked for):
    /// lock-free, one atomic load when nothing changed.
    fn apply_newer_metadata(&mut self) {
        let snapshot = self.shared.cluster.snapshot();
        if snapshot.generation() > self.metadata_generation {
            self.apply_metadata(&snapshot);
        }
    }

    /// Leaders, available partitions and partition counts from `snapshot`.
    fn apply_metadata(&mut self, snapshot: &MetadataSnapshot) {
        if snapshot.generation() < self.metadata_generation {
            return;
        }
        self.metadata_generation = snapshot.generation();
        let mut grew = false;
        for topic in self.topics.iter() {
            let Some(metadata) = snapshot.topic(&topic.name) else {
                continue;
            };
            // Partitions are never removed from a topic; more may appear.
            let topic = if metadata.partition_count() > topic.partitions.len() {
                tracing::info!(topic = %topic.name, from = topic.partitions.len(), to = metadata.partition_count(), "topic has more partitions");
                grew = true;
                self.shared.grow_topic(topic, metadata.partition_count())
            } else {
                topic.clone()
            };
            for queue in topic.partitions.iter() {
                let leader = metadata.partition(queue.index).map_or(-1, |p| p.leader_id);
                queue.lock().leader = leader;
            }
            *topic.available.write().unwrap_or_else(|p| p.into_inner()) =
                metadata.available_partitions().into();
        }
        if grew {
            self.refresh_topics();
        }
    }

    fn handle_produced(
        &mut self,
        request: u64,
        result: Result<Option<ProduceResponse>, NetError>,
        latency: Duration,
    ) {
        let Some(InFlight { node, batches }) = self.in_flight.remove(&request) else {
            return;
        };
        let shared = self.shared.clone();
        shared.counters.record_latency(latency);
        shared.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = self.broker_in_flight.get_mut(&node) {
            *n = n.saturating_sub(1);
        }
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                tracing::debug!(node, error = %e, batches = batches.len(), "produce request failed");
                if e.invalidates_metadata() || matches!(e, NetError::RequestTimeout { .. }) {
                    self.conns.remove(&node);
                    self.metadata_wanted = true;
                }
                let retriable = e.is_retriable();
                let error = ProducerError::from(e);
                for (topic, partition, batch) in batches {
                    let queue = &topic.partitions[partition as usize];
                    let mut state = queue.lock();
                    state.in_flight -= 1;
                    if retriable {
                        state.leader = -1;
                        self.retry(&topic, &mut state, batch, error.to_string());
                    } else {
                        self.fail(&mut state, batch, error.clone());
                    }
                }
                return;
            }
        };
        for (topic, partition, batch) in batches {
            let queue = &topic.partitions[partition as usize];
            let mut state = queue.lock();
            state.in_flight -= 1;
            let Some(response) = &response else {
                // acks=0: done once written.
                shared.finish_batch(
                    batch,
                    Ok(BatchAck {
                        base_offset: -1,
                        log_append_time: -1,
                    }),
                );
                continue;
            };
            let found = response
                .responses
                .iter()
                .filter(|t| *t.name == *topic.name)
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.index == partition);
            let Some(p) = found else {
                self.retry(
                    &topic,
                    &mut state,
                    batch,
                    "partition missing from the response".into(),
                );
                continue;
            };
            let code = ErrorCode::from_code(p.error_code);
            match code {
                ErrorCode::None | ErrorCode::DuplicateSequenceNumber => {
                    if batch.base_sequence >= 0 {
                        state_acked(&mut state, &batch);
                    }
                    if p.base_offset >= 0 {
                        let last = p.base_offset + batch.records as i64 - 1;
                        state.last_acked_offset = state.last_acked_offset.max(last);
                    }
                    shared.finish_batch(
                        batch,
                        Ok(BatchAck {
                            base_offset: p.base_offset,
                            log_append_time: p.log_append_time_ms,
                        }),
                    );
                }
                ErrorCode::ProducerFenced
                | ErrorCode::InvalidProducerEpoch
                | ErrorCode::TransactionalIdAuthorizationFailed
                | ErrorCode::ClusterAuthorizationFailed => {
                    let error = match code {
                        ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
                            ProducerError::Fenced { code }
                        }
                        _ => broker_error(&topic, partition, code, p.error_message.clone()),
                    };
                    let _ = shared.fatal.set(error.clone());
                    self.fail(&mut state, batch, error);
                }
                ErrorCode::UnknownProducerId if shared.is_idempotent() => {
                    let transactional = shared.txn.is_some();
                    let action = on_unknown_producer_id(
                        p.log_start_offset,
                        state.last_acked_offset,
                        transactional,
                    );
                    tracing::warn!(topic = %topic.name, partition, log_start_offset = p.log_start_offset, last_acked_offset = state.last_acked_offset, ?action, "the broker lost the producer state");
                    match action {
                        LostProducerState::Retry => {}
                        LostProducerState::RestartSequences => state.restart_sequences = true,
                        LostProducerState::BumpEpoch => {
                            if batch.epoch == shared.producer_id_and_epoch().1 {
                                self.bump_wanted = true;
                            }
                        }
                        LostProducerState::AbortTransaction => {
                            if let Some(txn) = &shared.txn {
                                txn.epoch_bump_required.store(true, Ordering::Release);
                            }
                            let error =
                                broker_error(&topic, partition, code, p.error_message.clone());
                            self.set_abortable(error.clone());
                            self.fail(&mut state, batch, error);
                            continue;
                        }
                    }
                    self.retry(&topic, &mut state, batch, format!("{code:?}"));
                }
                ErrorCode::OutOfOrderSequenceNumber if shared.is_idempotent() => {
                    // The first unacknowledged batch itself is out of order:
                    // its predecessor is lost for good (an unresolved
                    // sequence). Otherwise a predecessor is being retried
                    // and this batch follows it.
                    if batch.base_sequence == state.next_sequence_acked() && shared.txn.is_none() {
                        tracing::warn!(topic = %topic.name, partition, ?code, "unresolved sequence: bumping the producer epoch");
                        self.bump_wanted = true;
                    }
                    if let Some(txn) = shared
                        .txn
                        .as_ref()
                        .filter(|_| batch.base_sequence == state.next_sequence_acked())
                    {
                        // The transaction must abort; the abort then starts
                        // a new epoch (KIP-360), so sequences restart at 0.
                        txn.epoch_bump_required.store(true, Ordering::Release);
                        let error = broker_error(&topic, partition, code, p.error_message.clone());
                        self.fail(&mut state, batch, error);
                    } else {
                        self.retry(&topic, &mut state, batch, format!("{code:?}"));
                    }
                }
                code if code.is_retriable() => {
                    if invalidates_leader(code) {
                        state.leader = -1;
                        self.metadata_wanted = true;
                    }
                    self.retry(&topic, &mut state, batch, format!("{code:?}"));
                }
                code => {
                    let error = broker_error(&topic, partition, code, p.error_message.clone());
                    self.fail(&mut state, batch, error);
                }
            }
        }
    }

    fn set_abortable(&self, error: ProducerError) {
        if let Some(txn) = &self.shared.txn {
            txn.abortable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(error);
        }
    }

    /// Puts a batch back for another attempt, in sequence order, or fails it
    /// when retries or `delivery.timeout.ms` ran out.
    fn retry(
        &mut self,
        topic: &TopicQueues,
        state: &mut PartitionState,
        mut batch: ProducerBatch,
        error: String,
    ) {
        let config = &self.shared.config;
        let now = Instant::now();
        if batch.created + config.delivery_timeout <= now {
            let e = ProducerError::DeliveryTimeout {
                topic: topic.name.clone(),
                partition: batch.completion.partition,
                timeout: config.delivery_timeout,
                last_error: error,
            };
            self.fail(state, batch, e);
            return;
        }
        if batch.attempts > config.retries {
            let e = ProducerError::Broker {
                topic: topic.name.clone(),
                partition: batch.completion.partition,
                code: ErrorCode::Unknown(-1),
                message: Some(format!("retries exhausted; last error: {error}")),
            };
            self.fail(state, batch, e);
            return;
        }
        batch.last_error = Some(error);
        let at = state
            .ready
            .iter()
            .position(|b| {
                b.attempts == 0 || b.base_sequence > batch.base_sequence && batch.base_sequence >= 0
            })
            .unwrap_or(state.ready.len());
        let backoff = self.shared.backoff.delay(batch.attempts.saturating_sub(1));
        state.ready.insert(at, batch);
        state.retry_not_before = Some(now + backoff);
    }

    /// Fails a batch for good. In a transaction, any failed batch (a broker
    /// error, retries or `delivery.timeout.ms` running out) makes the
    /// transaction abortable, as in the Java client: committing it would
    /// lose the record. A failed batch that had a sequence leaves a gap, so
    /// the abort starts a new epoch (KIP-360), as for a sequence error.
    fn fail(&mut self, state: &mut PartitionState, batch: ProducerBatch, error: ProducerError) {
        self.set_abortable(error.clone());
        if let Some(txn) = self
            .shared
            .txn
            .as_ref()
            .filter(|_| batch.base_sequence >= 0)
        {
            txn.epoch_bump_required.store(true, Ordering::Release);
        }
        if self.shared.is_idempotent()
            && batch.base_sequence >= 0
            && self.shared.txn.is_none()
            && !error.is_fatal()
        {
            // A sent batch that will never be acknowledged leaves a gap in
            // the sequence: start a new epoch, as the Java client does.
            self.bump_wanted = true;
        }
        let _ = state;
        self.shared.finish_batch(batch, Err(error));
    }

    fn expire_batches(&mut self, now: Instant) {
        let topics = self.topics.clone();
        for topic in topics.iter() {
            for queue in topic.partitions.iter() {
                let mut state = queue.lock();
                self.expire_partition(topic, &mut state, now);
            }
        }
    }

    /// Fails batches waiting longer than `delivery.timeout.ms`.
    fn expire_partition(&mut self, topic: &TopicQueues, state: &mut PartitionState, now: Instant) {
        let timeout = self.shared.config.delivery_timeout;
        while state
            .ready
            .front()
            .is_some_and(|b| b.created + timeout <= now)
        {
            let batch = state.ready.pop_front().expect("front exists");
            topic.partitions[batch.completion.partition as usize]
                .queued_batches
                .fetch_sub(1, Ordering::Relaxed);
            let e = ProducerError::DeliveryTimeout {
                topic: topic.name.clone(),
                partition: batch.completion.partition,
                timeout,
                last_error: batch.last_error.clone().unwrap_or_else(|| "none".into()),
            };
            self.fail(state, batch, e);
        }
        if state
            .open
            .as_ref()
            .is_some_and(|b| b.created + timeout <= now && b.records > 0)
        {
            let batch = state.open.take().expect("present");
            let e = ProducerError::DeliveryTimeout {
                topic: topic.name.clone(),
                partition: batch.completion.partition,
                timeout,
                last_error: "none".into(),
            };
            self.fail(state, batch, e);
        }
    }

    fn fail_everything(&mut self, error: impl Fn() -> ProducerError) {
        let shared = self.shared.clone();
        for topic in self.topics.clone().iter() {
            for queue in topic.partitions.iter() {
                let mut state = queue.lock();
                if let Some(open) = state.open.take() {
                    shared.finish_batch(open, Err(error()));
                }
                while let Some(b) = state.ready.pop_front() {
                    queue.queued_batches.fetch_sub(1, Ordering::Relaxed);
                    shared.finish_batch(b, Err(error()));
                }
            }
        }
        if shared.abandon.load(Ordering::Acquire) {
            for (_, request) in self.in_flight.drain() {
                for (_, _, b) in request.batches {
                    shared.finish_batch(b, Err(error()));
                }
            }
        }
    }

    fn start_epoch_bump(&mut self) {
        self.bump_running = true;
        let shared = self.shared.clone();
        self.tasks.push(Box::pin(async move {
            let (id, epoch) = shared.producer_id_and_epoch();
            let result = txn::init_producer_id(&shared, Some((id, epoch))).await;
            Event::EpochBumped(result)
        }));
    }

    /// After an epoch bump: sequences restart at 0 and every batch that was
    /// already stamped is re-stamped in order.
    fn resequence(&mut self, id: i64, epoch: i16) {
        for topic in self.topics.clone().iter() {
            for queue in topic.partitions.iter() {
                let mut state = queue.lock();
                self.restamp_from_zero(queue, &mut state, id, epoch);
            }
        }
    }

    /// The broker forgot this partition's producer state because its log
    /// start passed every acknowledged record (a transactional producer,
    /// nothing in flight): the waiting batches are re-stamped from sequence
    /// 0 with the same epoch, so the transaction goes on (the Java client's
    /// `startSequencesAtBeginning`).
    fn restart_sequences(
        &mut self,
        topic: &TopicQueues,
        queue: &PartitionQueue,
        state: &mut PartitionState,
        id: i64,
        epoch: i16,
    ) {
        tracing::info!(topic = %topic.name, partition = queue.index, "sequences restart at 0 after UNKNOWN_PRODUCER_ID");
        state.restart_sequences = false;
        self.restamp_from_zero(queue, state, id, epoch);
    }

    /// Re-stamps every sealed batch waiting in `state` with `id`, `epoch`
    /// and sequences from 0, in order; the partition's next sequence follows
    /// them.
    fn restamp_from_zero(
        &mut self,
        queue: &PartitionQueue,
        state: &mut PartitionState,
        id: i64,
        epoch: i16,
    ) {
        let transactional = self.shared.txn.is_some();
        let mut sequence = 0i32;
        let mut broken = Vec::new();
        for (index, batch) in state.ready.iter_mut().enumerate() {
            let Some(encoded) = batch.encoded.take() else {
                continue;
            };
            let stamp = ProducerState {
                producer_id: id,
                producer_epoch: epoch,
                base_sequence: sequence,
                transactional,
            };
            // In place when no request holds the batch any more.
            match restamped(encoded, stamp) {
                Ok(stamped) => batch.encoded = Some(stamped),
                Err(e) => {
                    // Cannot happen to a batch this producer sealed.
                    broken.push((index, e.to_string()));
                    continue;
                }
            }
            batch.base_sequence = sequence;
            batch.epoch = epoch;
            sequence = next_sequence(sequence, batch.records);
        }
        for (index, error) in broken.into_iter().rev() {
            let batch = state.ready.remove(index).expect("index from the scan");
            queue.queued_batches.fetch_sub(1, Ordering::Relaxed);
            self.shared
                .finish_batch(batch, Err(ProducerError::InvalidRecord(error)));
        }
        state.next_sequence = sequence;
        state.set_next_sequence_acked(0);
    }

    fn start_partition_adds(&mut self, now: Instant, next: &mut Option<Instant>) {
        let Some(txn) = &self.shared.txn else {
            return;
        };
        if self.add_running {
            return;
        }
        if let Some(at) = self.add_retry_at {
            if at > now {
                merge_deadline(next, at);
                return;
            }
        }
        let partitions: Vec<_> =
            std::mem::take(&mut *txn.to_add.lock().unwrap_or_else(|p| p.into_inner()));
        if partitions.is_empty() {
            return;
        }
        self.add_running = true;
        let shared = self.shared.clone();
        let list: Vec<(String, i32)> = partitions
            .iter()
            .map(|(t, p)| (t.name.to_string(), *p))
            .collect();
        self.tasks.push(Box::pin(async move {
            let result = txn::add_partitions(&shared, &list).await;
            Event::PartitionsAdded { partitions, result }
        }));
    }

    fn partitions_added(
        &mut self,
        partitions: Vec<(Arc<TopicQueues>, i32)>,
        result: Result<Vec<(String, i32, ErrorCode)>, ProducerError>,
    ) {
        let shared = self.shared.clone();
        let Some(txn) = &shared.txn else { return };
        let mut retry = Vec::new();
        match result {
            Err(e) if e.is_fatal() => {
                let _ = shared.fatal.set(e);
            }
            Err(e) if e.is_retriable() => retry = partitions,
            Err(e) => {
                self.set_abortable(e.clone());
                for (topic, p) in &partitions {
                    let queue = &topic.partitions[*p as usize];
                    let mut state = queue.lock();
                    state.txn = TxnPartition::NotAdded;
                    while let Some(b) = state.ready.pop_front() {
                        queue.queued_batches.fetch_sub(1, Ordering::Relaxed);
                        shared.finish_batch(b, Err(e.clone()));
                    }
                }
            }
            Ok(results) => {
                for (topic, p) in partitions {
                    let code = results
                        .iter()
                        .find(|(t, q, _)| *t == *topic.name && *q == p)
                        .map_or(ErrorCode::None, |r| r.2);
                    let queue = &topic.partitions[p as usize];
                    match code {
                        ErrorCode::None => {
                            txn.started.store(true, Ordering::Release);
                            queue.lock().txn = TxnPartition::Added;
                        }
                        c if c.is_retriable() || c == ErrorCode::OperationNotAttempted => {
                            retry.push((topic.clone(), p))
                        }
                        ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
                            let _ = shared.fatal.set(ProducerError::Fenced { code });
                        }
                        c => {
                            let e = broker_error(&topic, p, c, None);
                            self.set_abortable(e.clone());
                            let mut state = queue.lock();
                            state.txn = TxnPartition::NotAdded;
                            while let Some(b) = state.ready.pop_front() {
                                queue.queued_batches.fetch_sub(1, Ordering::Relaxed);
                                shared.finish_batch(b, Err(e.clone()));
                            }
                        }
                    }
                }
            }
        }
        if !retry.is_empty() {
            self.add_retry_at = Some(Instant::now() + shared.backoff.delay(0));
            txn.to_add
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(retry);
        } else {
            self.add_retry_at = None;
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // The runtime is shutting down (or the task was aborted): no handle
        // may hang, so every record still here fails.
        self.shared.abandon.store(true, Ordering::Release);
        self.refresh_topics();
        self.fail_everything(|| ProducerError::DroppedOnClose);
    }
}

/// Readies a batch for its first send under its partition's lock: the
/// producer id, epoch and base sequence (taken from the partition, as the
/// batch is first sent), and the transactional flag. Returns its builder
/// for [`seal`], which needs no lock.
fn stamp(
    batch: &mut ProducerBatch,
    state: &mut PartitionState,
    idempotent: bool,
    transactional: bool,
    producer_id: i64,
    epoch: i16,
) -> RecordBatchBuilder {
    let mut builder = batch.builder.take().expect("unsent batches have a builder");
    if idempotent {
        let sequence = state.next_sequence;
        builder
            .set_producer_id(producer_id)
            .set_producer_epoch(epoch)
            .set_base_sequence(sequence);
        batch.base_sequence = sequence;
        batch.epoch = epoch;
        state.next_sequence = next_sequence(sequence, batch.records);
    }
    builder.set_transactional(transactional);
    batch.uncompressed = builder.size_in_bytes();
    state.last_batch_bytes = batch.uncompressed;
    builder
}

/// Compresses a stamped batch (if it has a codec) and writes its header
/// and CRC: the batch is finished once, when first sent, and its encoded
/// bytes go out as they are on every attempt. The compression ratio it had
/// feeds the topic's estimate for the batches that follow.
fn seal(
    topic: &TopicQueues,
    batch: &mut ProducerBatch,
    mut builder: RecordBatchBuilder,
) -> Result<(), ProducerError> {
    let compressed = builder.compression() != Compression::None;
    if compressed {
        // Room for incompressible records plus the codec's framing.
        let room = batch.uncompressed + batch.uncompressed / 8 + 1024;
        builder.set_output_buffer(topic.pool.take(room));
    }
    let sealed = builder
        .seal()
        .map_err(|e| ProducerError::InvalidRecord(e.to_string()))?;
    if compressed {
        topic.observe_compression_ratio(sealed.compression_ratio);
        // The records are compressed out of their buffer: free for the
        // next batch.
        topic.pool.give(builder.into_buffer());
    }
    batch.encoded = Some(sealed.bytes);
    Ok(())
}

/// What an idempotent producer does when a partition answers
/// UNKNOWN_PRODUCER_ID (the broker has no state for the producer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LostProducerState {
    /// Send the batch again as it is.
    Retry,
    /// Restart the partition's sequences at 0 with the same epoch, then retry.
    RestartSequences,
    /// Start a new epoch (sequences restart everywhere), then retry.
    BumpEpoch,
    /// Fail the batch: the transaction must abort (the abort bumps the epoch).
    AbortTransaction,
}

/// The Java client's rule for UNKNOWN_PRODUCER_ID. The log start offset
/// the partition reported tells why the broker forgot the producer:
/// * unknown (-1, the partition moved away meanwhile): retry until a
///   response says;
/// * past the last acknowledged record: retention or DeleteRecords removed
///   every record the producer wrote, and the producer state with them;
///   nothing acknowledged is lost, so it is safe to start the sequences
///   again: at 0 in the same epoch inside a transaction (which then need
///   not abort), with a new epoch otherwise;
/// * at or before it: records the broker acknowledged are still in the log
///   but their producer state is gone, so the broker cannot tell duplicates
///   any more. An idempotent producer starts a new epoch and retries (as the
///   Java client has done since KIP-360); a transaction must abort.
///
/// A batch sent with sequences from before a restart cannot come back here
/// (restarts wait until nothing is in flight), so unlike the Java client no
/// per-batch "sequence was reset" flag is needed.
fn on_unknown_producer_id(
    log_start_offset: i64,
    last_acked_offset: i64,
    transactional: bool,
) -> LostProducerState {
    if log_start_offset < 0 {
        LostProducerState::Retry
    } else if last_acked_offset < log_start_offset {
        if transactional {
            LostProducerState::RestartSequences
        } else {
            LostProducerState::BumpEpoch
        }
    } else if transactional {
        LostProducerState::AbortTransaction
    } else {
        LostProducerState::BumpEpoch
    }
}

/// Sequences wrap from i32::MAX to 0, as in the Java client.
fn next_sequence(sequence: i32, records: usize) -> i32 {
    ((i64::from(sequence) + records as i64) % (i64::from(i32::MAX) + 1)) as i32
}

fn state_acked(state: &mut PartitionState, batch: &ProducerBatch) {
    let next = next_sequence(batch.base_sequence, batch.records);
    state.set_next_sequence_acked(next);
}

fn invalidates_leader(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
            | ErrorCode::KafkaStorageError
    )
}

fn broker_error(
    topic: &TopicQueues,
    partition: i32,
    code: ErrorCode,
    message: Option<String>,
) -> ProducerError {
    ProducerError::Broker {
        topic: topic.name.clone(),
        partition,
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_producer_id_compares_the_log_start_with_the_last_acked_offset() {
        use LostProducerState::*;
        // Log start unknown: retry, whatever else holds.
        assert_eq!(on_unknown_producer_id(-1, 10, true), Retry);
        assert_eq!(on_unknown_producer_id(-1, 10, false), Retry);
        // Every acknowledged record was deleted: safe to start again.
        assert_eq!(on_unknown_producer_id(11, 10, true), RestartSequences);
        assert_eq!(on_unknown_producer_id(11, 10, false), BumpEpoch);
        assert_eq!(on_unknown_producer_id(0, -1, true), RestartSequences);
        // Acknowledged records are still in the log: the state was lost.
        assert_eq!(on_unknown_producer_id(10, 10, true), AbortTransaction);
        assert_eq!(on_unknown_producer_id(3, 10, true), AbortTransaction);
        assert_eq!(on_unknown_producer_id(10, 10, false), BumpEpoch);
    }

    #[test]
    fn sequences_wrap_like_the_java_client() {
        assert_eq!(next_sequence(5, 3), 8);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 1, 3), 1);
    }
}
