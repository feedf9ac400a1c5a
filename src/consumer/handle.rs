//! The [`Consumer`] handle and its background fetch driver.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::network::{ClientConfig, Cluster};

use super::config::{AutoOffsetReset, ConsumerConfig};
use super::error::{ConsumerError, Result};
use super::fetch::{fetch_from, Target};
use super::metrics::{ConsumerMetrics, PartitionMetrics};
use super::offsets::{resolve_resets, validate_positions, ResetTarget, ValidateTarget};
use super::record::Records;
use super::session::PartitionFetch;
use super::state::{PartitionState, Shared, State};
use super::stream::RecordStream;
use super::{IsolationLevel, Offset, TopicPartition};

/// A consumer of manually assigned partitions.
///
/// A background task keeps one fetch in flight per leader broker, covering
/// every assigned, unpaused partition that broker leads, and fetches ahead
/// while the application works, up to `fetch.buffer.bytes` of buffered data.
/// [`Consumer::poll`] hands out what was fetched as [`Records`] (read in
/// place, no allocation per record); [`Consumer::stream`] as a `Stream` of
/// owned [`ConsumerRecord`](super::ConsumerRecord)s.
///
/// Dropping the consumer stops its fetching.
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
    driver: JoinHandle<()>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.data_ready.notify_waiters();
        self.driver.abort();
    }
}

impl Consumer {
    /// A consumer for the cluster behind `client` (connected lazily; the
    /// bootstrap servers are contacted for metadata right away).
    pub async fn new(client: ClientConfig, config: ConsumerConfig) -> Result<Consumer> {
        config.validate()?;
        let cluster = Cluster::new(client)?;
        Ok(Self::with_cluster(cluster, config))
    }

    /// A consumer sharing an existing [`Cluster`] client (its connections and metadata).
    pub fn with_cluster(cluster: Cluster, config: ConsumerConfig) -> Consumer {
        let shared = Arc::new(Shared {
            config,
            cluster,
            state: Mutex::new(State::default()),
            data_ready: Notify::new(),
            wake: Notify::new(),
            counters: Default::default(),
        });
        let driver = tokio::spawn(drive(shared.clone()));
        Consumer { shared, driver }
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
    pub async fn poll(&self, max_records: usize, timeout: Duration) -> Result<Records> {
        self.shared.poll(max_records, timeout).await
    }

    /// The records as a `futures_core::Stream` of owned records, polled in
    /// batches of `max.poll.records`.
    pub fn stream(&self) -> RecordStream {
        RecordStream::new(self.shared.clone())
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

    /// Stops fetching; later calls fail with [`ConsumerError::Closed`].
    pub fn close(&self) {
        self.shared.lock().closed = true;
        self.shared.data_ready.notify_waiters();
        self.shared.wake.notify_one();
    }
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
