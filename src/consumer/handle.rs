//! The [`Consumer`] handle and its background fetch driver.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::network::{ClientConfig, Cluster, ConsumerGroupMetadata, OffsetAndMetadata};
use tokio::sync::Notify;

use super::commit_handle::CommitHandle;
use super::config::{AutoOffsetReset, ConsumerConfig};
use super::error::{ConsumerError, Result};
use super::fetch::{fetch_from, Target};
use super::group::coordinator::{GroupCoordinator, GroupMembership, JoinFailure, Joined};
use super::group::session::{compile_pattern, GroupSession, Subscribed};
use super::group::RebalanceProtocol;
use super::metrics::{ConsumerMetrics, PartitionMetrics};
use super::offsets::{resolve_resets, validate_positions, ResetTarget, ValidateTarget};
use super::record::Records;
use super::session::PartitionFetch;
use super::state::{PartitionState, Shared, State};
use super::stream::RecordStream;
use super::{IsolationLevel, Offset, TopicPartition};

/// A Kafka consumer: of manually assigned partitions ([`Consumer::assign`])
/// or as a member of a consumer group ([`Consumer::subscribe`]).
///
/// A background task keeps one fetch in flight per leader broker, covering
/// every assigned, unpaused partition that broker leads, and fetches ahead
/// while the application works, up to `fetch.buffer.bytes` of buffered data.
/// [`Consumer::poll`] hands out what was fetched as [`Records`] (read in
/// place, no allocation per record); [`Consumer::stream`] as a `Stream` of
/// owned [`ConsumerRecord`](super::ConsumerRecord)s.
///
/// In a group, `poll` also drives the membership as Java's does: it joins,
/// runs the [`RebalanceListener`] callbacks on the application's task,
/// fetches committed offsets for new partitions and auto-commits; a
/// background task sends the heartbeats, whatever the time between polls.
///
/// Dropping the consumer stops its fetching (without leaving the group:
/// call [`Consumer::close`] for that).
pub struct Consumer {
    shared: Arc<Shared>,
    group: Option<Arc<GroupSession>>,
    listener: Arc<Mutex<Option<Arc<dyn RebalanceListener>>>>,
    /// Only the handle the application created stops the consumer when
    /// dropped; views lent to streams and callbacks do not.
    owner: bool,
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.shared.config.group_id)
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        if !self.owner {
            return;
        }
        self.shared.lock().closed = true;
        self.shared.data_ready.notify_waiters();
        self.shared.wake.notify_one();
        if let Some(group) = &self.group {
            group.coordinator.lock().closed = true;
            group.coordinator.heartbeat_wake.notify_one();
        }
    }
}

impl Consumer {
    /// A consumer for the cluster behind `client` (connected lazily; the
    /// bootstrap servers are contacted for metadata right away).
    pub async fn new(client: ClientConfig, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let cluster = Cluster::new(client)?;
        Self::with_cluster(cluster, config)
    }

    /// A consumer sharing an existing [`Cluster`] client (its connections and metadata).
    pub fn with_cluster(cluster: Cluster, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let group = match config.group_id {
            Some(_) => Some(Arc::new(GroupSession::new(GroupCoordinator::new(
                cluster.clone(),
                &config,
            )?))),
            None => None,
        };
        let shared = Arc::new(Shared {
            config,
            cluster,
            state: Mutex::new(State::default()),
            data_ready: Notify::new(),
            wake: Notify::new(),
            counters: Default::default(),
        });
        tokio::spawn(drive(shared.clone()));
        Ok(Consumer {
            shared,
            group,
            listener: Arc::new(Mutex::new(None)),
            owner: true,
        })
    }

    /// A handle on the same consumer that does not close it when dropped.
    fn view(&self) -> Consumer {
        Consumer {
            shared: self.shared.clone(),
            group: self.group.clone(),
            listener: self.listener.clone(),
            owner: false,
        }
    }

    /// The consumer settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    /// The cluster client the consumer fetches through.
    pub fn cluster(&self) -> &Cluster {
        &self.shared.cluster
    }

    fn initial_reset(&self) -> Option<Offset> {
        match self.shared.config.auto_offset_reset {
            AutoOffsetReset::Earliest => Some(Offset::Beginning),
            AutoOffsetReset::Latest => Some(Offset::End),
            AutoOffsetReset::None => None,
        }
    }

    /// Replaces the assignment. Partitions kept keep their position and
    /// buffered data; new ones start where `auto.offset.reset` says (or at
    /// a [`seek`](Self::seek)).
    pub fn assign<I>(&self, partitions: I) -> Result<()>
    where
        I: IntoIterator<Item = TopicPartition>,
    {
        if self.group.as_ref().is_some_and(|g| g.subscribed()) {
            return Err(ConsumerError::IllegalState(
                "assign after subscribe: subscription to topics or a pattern and manual \
                 assignment are mutually exclusive (unsubscribe first)"
                    .to_owned(),
            ));
        }
        let wanted: Vec<TopicPartition> = partitions.into_iter().collect();
        let removed: Vec<TopicPartition> = {
            let state = self.shared.lock();
            state
                .partitions
                .keys()
                .filter(|tp| !wanted.contains(tp))
                .cloned()
                .collect()
        };
        self.unassign_partitions(removed)?;
        self.assign_partitions(wanted)
    }

    /// Adds partitions to the assignment (for group rebalances); those already
    /// assigned are left as they are.
    pub fn assign_partitions<I>(&self, partitions: I) -> Result<()>
    where
        I: IntoIterator<Item = TopicPartition>,
    {
        let reset = self.initial_reset();
        let mut topics = Vec::new();
        let mut state = self.shared.lock();
        if state.closed {
            return Err(ConsumerError::Closed);
        }
        for tp in partitions {
            if !state.partitions.contains_key(&tp) {
                topics.push(tp.topic().to_owned());
                state.next_generation += 1;
                let mut p = PartitionState::new(reset);
                p.generation = state.next_generation;
                state.partitions.insert(tp, p);
            }
        }
        state.metadata_wanted |= !topics.is_empty();
        drop(state);
        self.shared.cluster.track_topics(topics);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Removes partitions from the assignment, dropping their buffered data.
    pub fn unassign_partitions<I>(&self, partitions: I) -> Result<()>
    where
        I: IntoIterator<Item = TopicPartition>,
    {
        let mut state = self.shared.lock();
        for tp in partitions {
            state.drop_buffered(&tp);
            state.partitions.remove(&tp);
        }
        drop(state);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// The assigned partitions, sorted.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let mut out: Vec<_> = self.shared.lock().partitions.keys().cloned().collect();
        out.sort();
        out
    }

    /// Moves the position of `tp`; data fetched before is dropped.
    /// [`Offset::Beginning`], [`Offset::End`] and [`Offset::Timestamp`] are
    /// looked up on the partition's leader in the background.
    pub fn seek(&self, tp: &TopicPartition, offset: Offset) -> Result<()> {
        let mut state = self.shared.lock();
        if !state.seek(tp, offset) {
            return Err(ConsumerError::NotAssigned(tp.clone()));
        }
        drop(state);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Stops fetching and handing out records of these partitions (their
    /// buffered data is kept for [`resume`](Self::resume)).
    pub fn pause<'a, I>(&self, partitions: I) -> Result<()>
    where
        I: IntoIterator<Item = &'a TopicPartition>,
    {
        self.set_paused(partitions, true)
    }

    /// Resumes paused partitions.
    pub fn resume<'a, I>(&self, partitions: I) -> Result<()>
    where
        I: IntoIterator<Item = &'a TopicPartition>,
    {
        self.set_paused(partitions, false)
    }

    fn set_paused<'a, I>(&self, partitions: I, paused: bool) -> Result<()>
    where
        I: IntoIterator<Item = &'a TopicPartition>,
    {
        let mut state = self.shared.lock();
        for tp in partitions {
            state
                .partitions
                .get_mut(tp)
                .ok_or_else(|| ConsumerError::NotAssigned(tp.clone()))?
                .paused = paused;
        }
        drop(state);
        self.shared.wake.notify_one();
        self.shared.data_ready.notify_waiters();
        Ok(())
    }

    /// The paused partitions, sorted.
    pub fn paused(&self) -> Vec<TopicPartition> {
        let state = self.shared.lock();
        let mut out: Vec<_> = state
            .partitions
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect();
        out.sort();
        out
    }

    /// The position of `tp`: the offset of the next record [`poll`](Self::poll)
    /// hands out (everything before it was handed out). `None` while a seek or
    /// reset is being resolved.
    pub fn position(&self, tp: &TopicPartition) -> Result<Option<i64>> {
        let state = self.shared.lock();
        let p = state
            .partitions
            .get(tp)
            .ok_or_else(|| ConsumerError::NotAssigned(tp.clone()))?;
        Ok(p.position.filter(|_| p.pending_reset.is_none()))
    }

    /// Waits until the position of `tp` is known (a seek or reset resolved).
    pub async fn resolved_position(
        &self,
        tp: &TopicPartition,
        timeout: Duration,
    ) -> Result<Option<i64>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(position) = self.position(tp)? {
                return Ok(Some(position));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits up to `timeout` for records and returns at most `max_records`
    /// (an empty batch when the time runs out). Errors the fetcher met
    /// (offset out of range with `auto.offset.reset=none`, truncation,
    /// corrupt data, authorization) come out here, once each.
    ///
    /// In a group, poll also joins the group, runs rebalances and their
    /// callbacks, and auto-commits; call it at least every
    /// `max.poll.interval.ms` or the member leaves the group.
    pub async fn poll(&self, max_records: usize, timeout: Duration) -> Result<Records> {
        let deadline = tokio::time::Instant::now() + timeout;
        let Some(group) = self.group.as_ref().filter(|g| g.subscribed()) else {
            // Manual assignment with a group.id still auto-commits, as in Java.
            if let Some(group) = &self.group {
                self.maybe_auto_commit(group);
            }
            return self.shared.poll(max_records, timeout).await;
        };
        // Waits in slices of a heartbeat interval: an application waiting in
        // poll is polling (as in Java), and rebalances, auto-commits and
        // new pattern matches are handled while it waits.
        let slice = self.shared.config.heartbeat_interval;
        loop {
            self.ensure_active(group, deadline).await?;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let records = self.shared.poll(max_records, remaining.min(slice)).await?;
            if !records.is_empty() || tokio::time::Instant::now() >= deadline || !group.subscribed()
            {
                return Ok(records);
            }
        }
    }

    /// The records as a `futures_core::Stream` of owned records, polled in
    /// batches of `max.poll.records`.
    pub fn stream(&self) -> RecordStream {
        let view = Arc::new(self.view());
        let max = self.shared.config.max_poll_records;
        RecordStream::new(Box::new(move || {
            let view = view.clone();
            Box::pin(async move { view.poll(max, Duration::from_secs(3600)).await })
        }))
    }

    /// A snapshot of the consumer's metrics.
    pub fn metrics(&self) -> ConsumerMetrics {
        let state = self.shared.lock();
        let read_committed = self.shared.config.isolation_level == IsolationLevel::ReadCommitted;
        let mut partitions: Vec<PartitionMetrics> = state
            .partitions
            .iter()
            .map(|(tp, p)| {
                let end = if read_committed {
                    p.last_stable_offset
                } else {
                    p.high_watermark
                };
                PartitionMetrics {
                    partition: tp.clone(),
                    position: p.position,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    lag: p
                        .position
                        .filter(|_| end >= 0)
                        .map(|pos| (end - pos).max(0)),
                    buffered_bytes: p.buffered_bytes,
                    records_consumed: p.records_consumed,
                    paused: p.paused,
                }
            })
            .collect();
        partitions.sort_by(|a, b| a.partition.cmp(&b.partition));
        ConsumerMetrics::from_counters(
            &self.shared.counters,
            state.buffered_bytes,
            self.shared.config.fetch_buffer_bytes,
            partitions,
        )
    }

    /// Closes the consumer: in a group, commits the consumed positions
    /// (with `enable.auto.commit`), runs the revoked callback and leaves the
    /// group (a static member sends no LeaveGroup: it keeps its partitions
    /// until its session times out). Then stops fetching; later calls fail
    /// with [`ConsumerError::Closed`].
    pub async fn close(&self) {
        if let Some(group) = &self.group {
            let result = if group.subscribed() {
                self.leave_subscription(group, "the consumer is closing")
                    .await
            } else if self.shared.config.enable_auto_commit {
                // Manual assignment with a group.id: commit what was consumed.
                self.commit().await
            } else {
                Ok(())
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "closing the group membership failed");
            }
            group.lock().closed = true;
            group.coordinator.lock().closed = true;
            group.coordinator.heartbeat_wake.notify_one();
        }
        self.shared.lock().closed = true;
        self.shared.data_ready.notify_waiters();
        self.shared.wake.notify_one();
    }
}

/// The future a [`RebalanceListener`] callback returns.
pub type ListenerFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Callbacks around rebalances, run inside [`Consumer::poll`] on the
/// application's task (as Java's `ConsumerRebalanceListener`). Each gets the
/// consumer, so it may commit, seek or read positions; it must not call
/// `poll`, `unsubscribe` or `close` (they would wait for the rebalance that
/// is running the callback).
///
/// ```
/// use ferrokafka::consumer::{Consumer, ListenerFuture, RebalanceListener, TopicPartition};
///
/// /// Commits what was consumed before partitions go to another member.
/// struct CommitOnRevoke;
/// impl RebalanceListener for CommitOnRevoke {
///     fn on_partitions_revoked<'a>(
///         &'a self,
///         consumer: &'a Consumer,
///         partitions: &'a [TopicPartition],
///     ) -> ListenerFuture<'a> {
///         Box::pin(async move {
///             if let Err(e) = consumer.commit().await {
///                 eprintln!("commit before losing {partitions:?} failed: {e}");
///             }
///         })
///     }
/// }
/// ```
pub trait RebalanceListener: Send + Sync {
    /// Partitions this member is about to give up in a rebalance: all of
    /// them under the eager protocol, only those moving elsewhere under the
    /// cooperative one. Their positions can still be committed here.
    fn on_partitions_revoked<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions newly assigned (under the cooperative protocol only the
    /// added ones), positioned at their committed offsets or where
    /// `auto.offset.reset` says; a seek here overrides that.
    fn on_partitions_assigned<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        let _ = (consumer, partitions);
        Box::pin(async {})
    }

    /// Partitions that already belong to another member (the session
    /// expired, the generation is gone): nothing may be committed for them.
    /// By default this calls [`on_partitions_revoked`](Self::on_partitions_revoked),
    /// as in Java, where a commit fails.
    fn on_partitions_lost<'a>(
        &'a self,
        consumer: &'a Consumer,
        partitions: &'a [TopicPartition],
    ) -> ListenerFuture<'a> {
        self.on_partitions_revoked(consumer, partitions)
    }
}

/// Which callback to run.
#[derive(Clone, Copy)]
enum Callback {
    Revoked,
    Assigned,
    Lost,
}

impl Consumer {
    fn group_session(&self) -> Result<&Arc<GroupSession>> {
        self.group.as_ref().ok_or(ConsumerError::NoGroupId)
    }

    /// Sets the callbacks run around rebalances (replacing any earlier one).
    pub fn set_rebalance_listener(&self, listener: impl RebalanceListener + 'static) {
        *self.listener.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(listener));
    }

    /// Subscribes to `topics` as a member of `group.id` (replacing an earlier
    /// subscription). The member joins at the next [`poll`](Self::poll).
    /// Fails without a `group.id` or after a manual [`assign`](Self::assign).
    ///
    /// ```no_run
    /// # async fn demo() -> ferrokafka::consumer::Result<()> {
    /// use std::time::Duration;
    /// use ferrokafka::consumer::{Consumer, ConsumerConfig};
    /// use ferrokafka::network::ClientConfig;
    ///
    /// let client = ClientConfig::builder().bootstrap_servers(["localhost:9092"]).build()?;
    /// let config = ConsumerConfig::builder().group_id("billing").build()?;
    /// let consumer = Consumer::new(client, config).await?;
    /// consumer.subscribe(["orders", "refunds"])?;
    /// loop {
    ///     let batch = consumer.poll(500, Duration::from_secs(1)).await?;
    ///     for record in batch.iter() {
    ///         println!("{} {:?}", record.offset(), record.value());
    ///     }
    /// }
    /// # }
    /// ```
    pub fn subscribe<I, S>(&self, topics: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let topics: BTreeSet<String> = topics.into_iter().map(Into::into).collect();
        if topics.iter().any(|t| t.trim().is_empty()) {
            return Err(ConsumerError::IllegalState(
                "topic names to subscribe to must not be empty".to_owned(),
            ));
        }
        if topics.is_empty() {
            return Err(ConsumerError::IllegalState(
                "subscribe to no topics: call unsubscribe instead".to_owned(),
            ));
        }
        self.shared.cluster.track_topics(topics.iter().cloned());
        self.set_subscription(Subscribed::Topics, topics)
    }

    /// Subscribes to every topic whose whole name matches the regular
    /// expression `pattern` (the `regex` crate's syntax); topics created
    /// later that match are picked up at the next metadata refresh
    /// (`metadata.max.age.ms`).
    pub fn subscribe_pattern(&self, pattern: &str) -> Result<()> {
        let regex = compile_pattern(pattern)?;
        self.set_subscription(Subscribed::Pattern(regex), BTreeSet::new())
    }

    fn set_subscription(&self, subscribed: Subscribed, topics: BTreeSet<String>) -> Result<()> {
        let group = self.group_session()?;
        {
            let state = self.shared.lock();
            if state.closed {
                return Err(ConsumerError::Closed);
            }
            if !group.subscribed() && !state.partitions.is_empty() {
                return Err(ConsumerError::IllegalState(
                    "subscribe after assign: subscription to topics or a pattern and manual \
                     assignment are mutually exclusive (assign an empty set first)"
                        .to_owned(),
                ));
            }
        }
        {
            let mut session = group.lock();
            let changed = session.topics != topics || session.subscription.is_none();
            let is_pattern = matches!(subscribed, Subscribed::Pattern(_));
            session.subscription = Some(subscribed);
            session.topics = topics;
            session.pattern_checked_at = None;
            if changed && !is_pattern {
                group.coordinator.request_rejoin("the subscription changed");
            }
        }
        let shared = Arc::downgrade(&self.shared);
        group.start_heartbeats(move || {
            if let Some(shared) = shared.upgrade() {
                shared.data_ready.notify_waiters();
            }
        });
        Ok(())
    }

    /// Leaves the group: commits consumed positions (with
    /// `enable.auto.commit`), runs the revoked callback, sends LeaveGroup
    /// (dynamic members) and drops the assignment.
    pub async fn unsubscribe(&self) -> Result<()> {
        match &self.group {
            Some(group) => {
                self.leave_subscription(group, "the consumer unsubscribed")
                    .await
            }
            None => Ok(()),
        }
    }

    async fn leave_subscription(&self, group: &Arc<GroupSession>, reason: &str) -> Result<()> {
        if !group.subscribed() {
            return Ok(());
        }
        let _gate = group.gate.lock().await;
        if let Some(join) = group.lock().join.take() {
            join.abort();
        }
        let generation = group.coordinator.lock().generation;
        let owned: Vec<TopicPartition> = group.lock().owned.iter().cloned().collect();
        let mut result = Ok(());
        if !owned.is_empty() {
            if generation >= 0 {
                if self.shared.config.enable_auto_commit {
                    result = self.commit_partitions(&owned).await;
                }
                self.run_callback(Callback::Revoked, &owned).await;
            } else {
                self.run_callback(Callback::Lost, &owned).await;
            }
        }
        group.coordinator.leave(reason).await;
        let mut session = group.lock();
        session.subscription = None;
        session.topics.clear();
        session.owned.clear();
        session.awaiting_offsets.clear();
        session.assign_pending = false;
        session.assigned_counts = None;
        session.prepared = false;
        drop(session);
        self.unassign_partitions(owned)?;
        result
    }

    /// The subscribed topics (for a pattern: the topics it matches now), sorted.
    pub fn subscription(&self) -> Vec<String> {
        self.group
            .as_ref()
            .map(|g| g.lock().topics.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The member's view of its group (member id, generation, protocol,
    /// state); `None` without a `group.id`.
    pub fn group_state(&self) -> Option<GroupMembership> {
        self.group.as_ref().map(|g| g.coordinator.snapshot())
    }

    /// The group identity that
    /// [`Producer::send_offsets_to_transaction`](crate::producer::Producer::send_offsets_to_transaction)
    /// takes, so the coordinator fences commits of a member that has left
    /// the generation; `None` without a `group.id`.
    pub fn group_metadata(&self) -> Option<ConsumerGroupMetadata> {
        let group = self.group.as_ref()?;
        let m = group.coordinator.lock();
        Some(ConsumerGroupMetadata {
            group_id: group.coordinator.group_id.clone(),
            generation_id: m.generation,
            member_id: m.member_id.clone(),
            group_instance_id: group.coordinator.instance_id.clone(),
        })
    }

    /// The partitions whose consumed positions a commit covers: the group's
    /// assignment, or every assigned partition without a subscription.
    fn commit_scope(&self) -> Vec<TopicPartition> {
        match self.group.as_ref().filter(|g| g.subscribed()) {
            Some(group) => group.lock().owned.iter().cloned().collect(),
            None => self.shared.lock().partitions.keys().cloned().collect(),
        }
    }

    async fn commit_partitions(&self, partitions: &[TopicPartition]) -> Result<()> {
        let group = self.group_session()?;
        let offsets = self.shared.lock().positions(partitions);
        group.coordinator.commit(&offsets, group.subscribed()).await
    }

    /// Commits the consumed positions (the offsets after the records
    /// handed out by poll) of the assigned partitions and waits for the
    /// answer. Fails with [`ConsumerError::CommitFailed`] when the group
    /// rebalanced and the partitions moved on, and with the retriable
    /// [`ConsumerError::RebalanceInProgress`] while a rebalance is under way
    /// (poll to complete it, then commit again).
    pub async fn commit(&self) -> Result<()> {
        let scope = self.commit_scope();
        self.commit_partitions(&scope).await
    }

    /// Commits these offsets (with their metadata) and waits for the answer.
    ///
    /// ```no_run
    /// # async fn demo(consumer: ferrokafka::consumer::Consumer) -> ferrokafka::consumer::Result<()> {
    /// use ferrokafka::consumer::{OffsetAndMetadata, TopicPartition};
    /// consumer.commit_offsets([(
    ///     TopicPartition::new("orders", 0),
    ///     OffsetAndMetadata::new(1200).with_metadata("batch 17"),
    /// )]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit_offsets<I>(&self, offsets: I) -> Result<()>
    where
        I: IntoIterator<Item = (TopicPartition, OffsetAndMetadata)>,
    {
        let offsets: Vec<_> = offsets.into_iter().collect();
        let group = self.group_session()?;
        group.coordinator.commit(&offsets, group.subscribed()).await
    }

    /// Commits the consumed positions in the background. The returned
    /// [`CommitHandle`] resolves with the coordinator's answer; dropping it
    /// lets the commit finish anyway, and a failure is then only logged (a
    /// later commit covers the same partitions).
    pub fn commit_async(&self) -> CommitHandle {
        let Some(group) = &self.group else {
            return CommitHandle::done(Err(ConsumerError::NoGroupId));
        };
        let offsets = self.shared.lock().positions(&self.commit_scope());
        spawn_commit(group, offsets, "commit_async")
    }

    /// The committed offsets of `partitions` in the group (`None` where
    /// nothing is committed), waiting for pending transactional commits.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
        self.group_session()?
            .coordinator
            .fetch_committed(partitions, self.shared.cluster.config().default_api_timeout)
            .await
    }

    async fn run_callback(&self, which: Callback, partitions: &[TopicPartition]) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(listener) = listener else {
            return;
        };
        let view = self.view();
        match which {
            Callback::Revoked => listener.on_partitions_revoked(&view, partitions).await,
            Callback::Assigned => listener.on_partitions_assigned(&view, partitions).await,
            Callback::Lost => listener.on_partitions_lost(&view, partitions).await,
        }
    }

    /// The group work of a poll: auto-commit, subscription changes, joins
    /// and rebalance callbacks, until the member is stable or `deadline`.
    async fn ensure_active(
        &self,
        group: &Arc<GroupSession>,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let _gate = group.gate.lock().await;
        group.coordinator.lock().last_poll = Instant::now();
        if let Some(e) = group.fatal_error() {
            return Err(e);
        }
        if !group.subscribed() {
            return Ok(());
        }
        if let Err(e) = group.refresh_pattern(&self.shared.cluster, false).await {
            tracing::debug!(error = %e, "listing topics for the subscription pattern failed");
        }
        self.check_metadata(group);
        self.maybe_auto_commit(group);
        loop {
            self.assign_awaiting(group, deadline).await?;
            let (rejoin, generation) = {
                let m = group.coordinator.lock();
                (m.rejoin_needed, m.generation)
            };
            let joining = group.lock().join.is_some();
            if !rejoin && !joining && generation >= 0 {
                return Ok(());
            }
            if !joining {
                // Partitions of a generation that is gone belong to others now.
                let lost: Vec<TopicPartition> = if generation < 0 {
                    let mut session = group.lock();
                    session.awaiting_offsets.clear();
                    session.assign_pending = false;
                    std::mem::take(&mut session.owned).into_iter().collect()
                } else {
                    Vec::new()
                };
                if !lost.is_empty() {
                    tracing::info!(partitions = ?lost, "partitions lost");
                    self.unassign_partitions(lost.iter().cloned())?;
                    self.run_callback(Callback::Lost, &lost).await;
                }
                if !group.lock().prepared {
                    self.prepare_join(group).await;
                }
                let retry_at = group.lock().retry_at;
                if let Some(at) = retry_at {
                    let at = tokio::time::Instant::from_std(at);
                    if at > tokio::time::Instant::now() {
                        if at > deadline {
                            return Ok(());
                        }
                        tokio::time::sleep_until(at).await;
                    }
                }
                let (topics, owned) = {
                    let session = group.lock();
                    let topics: Vec<String> = session.topics.iter().cloned().collect();
                    let owned: Vec<TopicPartition> = match group.coordinator.protocol {
                        RebalanceProtocol::Cooperative => session.owned.iter().cloned().collect(),
                        RebalanceProtocol::Eager => Vec::new(),
                    };
                    (topics, owned)
                };
                group.coordinator.lock().rejoin_needed = false;
                let coordinator = group.coordinator.clone();
                let task = tokio::spawn(async move { coordinator.join(&topics, &owned).await });
                let mut session = group.lock();
                session.join = Some(task);
                session.retry_at = None;
                session.assigned_counts = None;
            }
            // Wait for the join, as long as this poll may.
            let outcome = {
                let join = {
                    let mut session = group.lock();
                    session.join.take()
                };
                let Some(mut join) = join else { continue };
                match tokio::time::timeout_at(deadline, &mut join).await {
                    Err(_) => {
                        group.lock().join = Some(join);
                        return Ok(());
                    }
                    Ok(Err(panicked)) => {
                        return Err(ConsumerError::IllegalState(format!(
                            "the group join task failed: {panicked}"
                        )))
                    }
                    Ok(Ok(outcome)) => outcome,
                }
            };
            match outcome {
                Ok(joined) => {
                    group.lock().prepared = false;
                    self.complete_join(group, joined, deadline).await?;
                }
                Err(JoinFailure::Retry) => {
                    group.coordinator.lock().rejoin_needed = true;
                }
                Err(JoinFailure::Lost(code)) => {
                    tracing::info!(code = code.name(), "group generation lost; rejoining");
                }
                Err(JoinFailure::Backoff(reason)) => {
                    tracing::debug!(%reason, "join failed; retrying after backoff");
                    group.coordinator.lock().rejoin_needed = true;
                    group.lock().retry_at =
                        Some(Instant::now() + self.shared.cluster.config().retry_backoff);
                }
                Err(JoinFailure::Fatal(e)) => return Err(e),
            }
            if let Some(e) = group.fatal_error() {
                return Err(e);
            }
        }
    }

    /// Before a (re)join: commit consumed positions (auto-commit) and, under
    /// the eager protocol, revoke everything.
    async fn prepare_join(&self, group: &Arc<GroupSession>) {
        let owned: Vec<TopicPartition> = group.lock().owned.iter().cloned().collect();
        if !owned.is_empty() && self.shared.config.enable_auto_commit {
            if let Err(e) = self.commit_partitions(&owned).await {
                tracing::warn!(error = %e, "auto-commit before the rebalance failed");
            }
        }
        if group.coordinator.protocol == RebalanceProtocol::Eager && !owned.is_empty() {
            self.run_callback(Callback::Revoked, &owned).await;
            group.lock().owned.clear();
            let _ = self.unassign_partitions(owned);
        }
        group.lock().prepared = true;
    }

    /// After SyncGroup: revoke what moved away (cooperative), then fetch the
    /// committed offsets of what was added and hand it to the fetcher.
    async fn complete_join(
        &self,
        group: &Arc<GroupSession>,
        joined: Joined,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let subscribed = group.lock().topics.clone();
        let assigned: BTreeSet<TopicPartition> =
            joined.assignment.partitions.iter().cloned().collect();
        if assigned.iter().any(|tp| !subscribed.contains(tp.topic())) {
            tracing::warn!(
                partitions = ?assigned,
                "the assignment names topics outside the subscription"
            );
        }
        let owned = group.lock().owned.clone();
        let revoked: Vec<TopicPartition> = owned.difference(&assigned).cloned().collect();
        let added: Vec<TopicPartition> = assigned.difference(&owned).cloned().collect();
        tracing::info!(
            generation = joined.generation,
            protocol = %joined.protocol,
            assigned = ?assigned,
            added = added.len(),
            revoked = revoked.len(),
            "assignment received"
        );
        if !revoked.is_empty() {
            // Cooperative: only these stop; a follow-up rebalance hands them
            // to their new owners.
            if self.shared.config.enable_auto_commit {
                if let Err(e) = self.commit_partitions(&revoked).await {
                    tracing::warn!(error = %e, "auto-commit before revocation failed");
                }
            }
            self.run_callback(Callback::Revoked, &revoked).await;
            {
                let mut session = group.lock();
                for tp in &revoked {
                    session.owned.remove(tp);
                }
            }
            self.unassign_partitions(revoked.iter().cloned())?;
            group
                .coordinator
                .request_rejoin("partitions were revoked; a follow-up rebalance assigns them");
        }
        {
            let mut session = group.lock();
            session.owned.extend(added.iter().cloned());
            session.awaiting_offsets = added;
            session.assign_pending = true;
            session.assigned_counts = Some(self.partition_counts(&subscribed));
        }
        self.assign_awaiting(group, deadline).await
    }

    /// Fetches the committed offsets of newly assigned partitions, hands
    /// them to the fetcher there (or where `auto.offset.reset` says) and runs
    /// the assigned callback. On failure they stay waiting for the next poll.
    async fn assign_awaiting(
        &self,
        group: &Arc<GroupSession>,
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let awaiting = {
            let session = group.lock();
            if !session.assign_pending {
                return Ok(());
            }
            session.awaiting_offsets.clone()
        };
        let committed = if awaiting.is_empty() {
            HashMap::new()
        } else {
            let limit = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(self.shared.cluster.config().request_timeout);
            match group.coordinator.fetch_committed(&awaiting, limit).await {
                Ok(found) => found,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "fetching committed offsets failed; retrying at the next poll");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        };
        let added = {
            let mut session = group.lock();
            if !session.assign_pending || session.awaiting_offsets != awaiting {
                // A rebalance or unsubscribe replaced them meanwhile.
                return Ok(());
            }
            session.assign_pending = false;
            std::mem::take(&mut session.awaiting_offsets)
        };
        let reset = self.initial_reset();
        {
            let mut state = self.shared.lock();
            for tp in &added {
                let start = committed.get(tp).and_then(|c| c.as_ref()).map(|c| c.offset);
                state.add_partition(tp.clone(), start, reset);
            }
            state.metadata_wanted |= !added.is_empty();
        }
        self.shared
            .cluster
            .track_topics(added.iter().map(|tp| tp.topic().to_owned()));
        self.shared.wake.notify_one();
        if self.shared.config.enable_auto_commit {
            group.lock().next_auto_commit =
                Some(Instant::now() + self.shared.config.auto_commit_interval);
        }
        self.run_callback(Callback::Assigned, &added).await;
        Ok(())
    }

    /// Partition counts of `topics` in the current metadata.
    fn partition_counts(&self, topics: &BTreeSet<String>) -> BTreeMap<String, usize> {
        let snapshot = self.shared.cluster.snapshot();
        topics
            .iter()
            .map(|t| (t.clone(), snapshot.partition_count(t)))
            .collect()
    }

    /// Rejoins when a pattern's topics changed, or (leader) when the
    /// partition count of a topic any member subscribed to changed since
    /// the assignment.
    fn check_metadata(&self, group: &Arc<GroupSession>) {
        let (topics, counts) = {
            let session = group.lock();
            // Only against a completed assignment: not while a join runs.
            let Some(counts) = session
                .assigned_counts
                .clone()
                .filter(|_| session.join.is_none())
            else {
                return;
            };
            (session.topics.clone(), counts)
        };
        if counts.keys().ne(topics.iter()) {
            if group.coordinator.lock().generation >= 0 {
                group
                    .coordinator
                    .request_rejoin("the subscribed topics changed");
            }
            return;
        }
        let group_counts = {
            let m = group.coordinator.lock();
            if m.member_id.is_empty() || m.member_id != m.leader_id {
                return;
            }
            m.group_topic_counts.clone()
        };
        // The leader watches every member's topics, not only its own.
        let snapshot = self.shared.cluster.snapshot();
        let grown = counts.iter().chain(&group_counts).any(|(t, n)| {
            let now = snapshot.partition_count(t);
            now > 0 && now != *n
        });
        if grown {
            group
                .coordinator
                .request_rejoin("partition counts of subscribed topics changed");
        }
    }

    /// Starts an auto-commit when its interval has passed.
    fn maybe_auto_commit(&self, group: &Arc<GroupSession>) {
        if !self.shared.config.enable_auto_commit {
            return;
        }
        let now = Instant::now();
        let interval = self.shared.config.auto_commit_interval;
        let due = {
            let mut session = group.lock();
            match session.next_auto_commit {
                Some(at) if at <= now => {
                    session.next_auto_commit = Some(now + interval);
                    true
                }
                Some(_) => false,
                None => {
                    session.next_auto_commit = Some(now + interval);
                    false
                }
            }
        };
        // In a group, only in a stable generation (the commit is refused
        // otherwise; the next interval's commit covers these positions).
        if due && (!group.subscribed() || group.coordinator.lock().in_stable_generation()) {
            let offsets = self.shared.lock().positions(&self.commit_scope());
            drop(spawn_commit(group, offsets, "auto-commit"));
        }
    }
}

/// Commits in the background, logging the outcome (a refusal during a
/// rebalance at debug level: the next commit covers it).
fn spawn_commit(
    group: &Arc<GroupSession>,
    offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    what: &'static str,
) -> CommitHandle {
    if offsets.is_empty() {
        return CommitHandle::done(Ok(()));
    }
    let coordinator = group.coordinator.clone();
    let as_member = group.subscribed();
    CommitHandle::running(tokio::spawn(async move {
        let result = coordinator.commit(&offsets, as_member).await;
        match &result {
            Ok(()) => tracing::debug!(partitions = offsets.len(), "{what} done"),
            Err(e @ ConsumerError::RebalanceInProgress(_)) => {
                tracing::debug!(error = %e, "{what} deferred")
            }
            Err(e) => tracing::warn!(error = %e, "{what} failed"),
        }
        result
    }))
}

/// The background task: starts fetches, offset lookups, validations and
/// metadata refreshes as the state asks for them.
async fn drive(shared: Arc<Shared>) {
    loop {
        let mut next_check: Option<Instant> = None;
        let now = Instant::now();
        let mut fetches = Vec::new();
        let mut resets = Vec::new();
        let mut validations = Vec::new();
        let mut refresh = false;
        {
            let mut guard = shared.lock();
            let state = &mut *guard;
            if state.closed {
                return;
            }
            let metadata = shared.cluster.cached_metadata();
            let reset_ready = state.reset_backoff.map_or(true, |t| t <= now);
            if !reset_ready {
                next_check = state.reset_backoff;
            }
            let room = shared
                .config
                .fetch_buffer_bytes
                .saturating_sub(state.buffered_bytes);
            let mut per_node: BTreeMap<i32, Vec<Target>> = BTreeMap::new();
            for (tp, p) in state.partitions.iter_mut() {
                if let Some(offset) = p.pending_reset {
                    if !p.reset_in_flight && reset_ready {
                        p.reset_in_flight = true;
                        resets.push(ResetTarget {
                            partition: tp.clone(),
                            generation: p.generation,
                            offset,
                        });
                    }
                    continue;
                }
                let leader = match metadata.leader_for(tp.topic(), tp.partition()) {
                    Ok(l) => l,
                    Err(_) => {
                        if p.position.is_some() && !p.failed {
                            state.metadata_wanted = true;
                        }
                        continue;
                    }
                };
                if leader.leader_epoch > p.known_leader_epoch {
                    if p.known_leader_epoch >= 0 && p.position_epoch.is_some() {
                        p.awaiting_validation = true;
                    }
                    p.known_leader_epoch = leader.leader_epoch;
                }
                if p.awaiting_validation {
                    if !p.validation_in_flight {
                        if let (Some(position), Some(epoch)) = (p.position, p.position_epoch) {
                            p.validation_in_flight = true;
                            validations.push(ValidateTarget {
                                partition: tp.clone(),
                                generation: p.generation,
                                position,
                                position_epoch: epoch,
                                current_leader_epoch: leader.leader_epoch,
                            });
                        } else {
                            p.awaiting_validation = false;
                        }
                    }
                    continue;
                }
                if room == 0 || !p.fetchable() || state.fetching.contains(&leader.node_id) {
                    continue;
                }
                if let Some(&until) = state.backoff.get(&leader.node_id) {
                    if until > now {
                        next_check = Some(next_check.map_or(until, |n| n.min(until)));
                        continue;
                    }
                }
                per_node.entry(leader.node_id).or_default().push(Target {
                    partition: tp.clone(),
                    generation: p.generation,
                    fetch: PartitionFetch {
                        fetch_offset: p.fetch_offset,
                        current_leader_epoch: leader.leader_epoch,
                        last_fetched_epoch: p.fetch_epoch.unwrap_or(-1),
                        max_bytes: shared.config.max_partition_fetch_bytes,
                    },
                });
            }
            if std::mem::take(&mut state.renew_sessions) {
                for session in state.sessions.values_mut() {
                    session.reset();
                }
            }
            let max_bytes = room.min(shared.config.fetch_max_bytes as usize).max(1) as i32;
            for (node, targets) in per_node {
                for t in &targets {
                    if let Some(p) = state.partitions.get_mut(&t.partition) {
                        p.in_flight = true;
                    }
                }
                state.fetching.insert(node);
                state.backoff.remove(&node);
                let session = state.sessions.remove(&node).unwrap_or_default();
                fetches.push((node, session, targets, max_bytes));
            }
            if state.metadata_wanted && !state.metadata_in_flight {
                match state.metadata_not_before {
                    Some(t) if t > now => {
                        next_check = Some(next_check.map_or(t, |n| n.min(t)));
                    }
                    _ => {
                        state.metadata_wanted = false;
                        state.metadata_in_flight = true;
                        refresh = true;
                    }
                }
            }
        }
        for (node, session, targets, max_bytes) in fetches {
            tokio::spawn(fetch_from(
                shared.clone(),
                node,
                session,
                targets,
                max_bytes,
            ));
        }
        if !resets.is_empty() {
            tokio::spawn(resolve_resets(shared.clone(), resets));
        }
        if !validations.is_empty() {
            tokio::spawn(validate_positions(shared.clone(), validations));
        }
        if refresh {
            tokio::spawn(refresh_metadata(shared.clone()));
        }
        let wait = next_check
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(1));
        let _ = tokio::time::timeout(wait, shared.wake.notified()).await;
    }
}

async fn refresh_metadata(shared: Arc<Shared>) {
    let result = shared.cluster.refresh_metadata().await;
    if let Err(e) = &result {
        tracing::debug!(error = %e, "metadata refresh failed");
    }
    let mut state = shared.lock();
    state.metadata_in_flight = false;
    state.metadata_not_before = Some(Instant::now() + shared.cluster.config().retry_backoff);
    drop(state);
    shared.wake.notify_one();
}
