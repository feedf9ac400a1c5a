//! The consumer's mutable state, shared by the application side (poll,
//! seek, assign) and the background fetcher, behind one lock taken once per
//! poll and once per fetch response (never per record).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::network::Cluster;

use super::config::ConsumerConfig;
use super::error::{ConsumerError, Result};
use super::metrics::Counters;
use super::record::{Chunk, Records};
use super::session::FetchSession;
use super::{Offset, TopicPartition};

/// One assigned partition.
#[derive(Debug)]
pub(crate) struct PartitionState {
    /// The consumed position: the offset of the next record handed out.
    /// `None` until a reset resolves it.
    pub position: Option<i64>,
    /// The leader epoch of the last record handed out (KIP-320).
    pub position_epoch: Option<i32>,
    /// The next offset to fetch (ahead of `position` by what is buffered).
    pub fetch_offset: i64,
    /// The leader epoch of the last fetched batch.
    pub fetch_epoch: Option<i32>,
    /// A seek or reset still to be resolved to an offset.
    pub pending_reset: Option<Offset>,
    /// Whether a ListOffsets for `pending_reset` is on its way.
    pub reset_in_flight: bool,
    /// Whether the position waits for an OffsetForLeaderEpoch check.
    pub awaiting_validation: bool,
    /// Whether that check is on its way.
    pub validation_in_flight: bool,
    /// Paused by the application.
    pub paused: bool,
    /// Part of a fetch in flight.
    pub in_flight: bool,
    /// Failed for good (authorization, corrupt data): not fetched until a seek.
    pub failed: bool,
    /// Bumped by every seek and reset: data fetched before is dropped.
    pub generation: u64,
    /// The leader's high watermark, last stable offset and log start offset
    /// as of the last fetch (-1 until known).
    pub high_watermark: i64,
    /// See `high_watermark`.
    pub last_stable_offset: i64,
    /// See `high_watermark`.
    pub log_start_offset: i64,
    /// Records handed out from this partition.
    pub records_consumed: u64,
    /// Buffered bytes of this partition.
    pub buffered_bytes: usize,
    /// The leader epoch last seen in metadata (-1 when unknown).
    pub known_leader_epoch: i32,
}

impl PartitionState {
    pub fn new(reset: Option<Offset>) -> Self {
        PartitionState {
            position: None,
            position_epoch: None,
            fetch_offset: -1,
            fetch_epoch: None,
            pending_reset: reset,
            reset_in_flight: false,
            awaiting_validation: false,
            validation_in_flight: false,
            paused: false,
            in_flight: false,
            failed: false,
            generation: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            records_consumed: 0,
            buffered_bytes: 0,
            known_leader_epoch: -1,
        }
    }

    /// Whether the partition can go into the next fetch.
    pub fn fetchable(&self) -> bool {
        self.position.is_some()
            && self.pending_reset.is_none()
            && !self.awaiting_validation
            && !self.paused
            && !self.in_flight
            && !self.failed
    }
}

/// Everything behind the consumer's lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub partitions: HashMap<TopicPartition, PartitionState>,
    /// Fetched data in arrival order.
    pub buffer: VecDeque<Chunk>,
    pub buffered_bytes: usize,
    /// Errors for the application, reported by the next poll.
    pub errors: VecDeque<ConsumerError>,
    /// Source of partition generations (unique across the consumer's life).
    pub next_generation: u64,
    pub closed: bool,
    /// Brokers with a fetch in flight.
    pub fetching: HashSet<i32>,
    /// Each broker's fetch session (absent while its fetch is in flight).
    pub sessions: HashMap<i32, FetchSession>,
    /// Brokers not to fetch from before the instant (after a failed fetch).
    pub backoff: HashMap<i32, Instant>,
    /// No ListOffsets before this instant (after a failed one).
    pub reset_backoff: Option<Instant>,
    /// Whether a metadata refresh is wanted / running, and when the next may start.
    pub metadata_wanted: bool,
    pub metadata_in_flight: bool,
    pub metadata_not_before: Option<Instant>,
    /// Set by a seek: the next fetches are full ones (new sessions), so no
    /// broker keeps serving a session partition from its old offset.
    pub renew_sessions: bool,
}

/// What the consumer handle, its stream and the background tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: ConsumerConfig,
    pub cluster: Cluster,
    pub state: Mutex<State>,
    /// Woken when data or an error arrives for the application.
    pub data_ready: Notify,
    /// Wakes the fetch driver (a poll freed room, an assignment changed, ...).
    pub wake: Notify,
    pub counters: Counters,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Adds `tp` (when not assigned yet), starting at `start` when given,
    /// else where `reset` says; returns whether it was new.
    pub fn add_partition(
        &mut self,
        tp: TopicPartition,
        start: Option<i64>,
        reset: Option<Offset>,
    ) -> bool {
        if self.partitions.contains_key(&tp) {
            return false;
        }
        self.next_generation += 1;
        let mut p = PartitionState::new(reset);
        p.generation = self.next_generation;
        if let Some(offset) = start.filter(|o| *o >= 0) {
            p.position = Some(offset);
            p.fetch_offset = offset;
            p.pending_reset = None;
        }
        self.partitions.insert(tp, p);
        true
    }

    /// The consumed positions (and the leader epochs of the last records
    /// handed out) of `partitions` that have one.
    pub fn positions<'a>(
        &self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> Vec<(TopicPartition, crate::network::OffsetAndMetadata)> {
        partitions
            .into_iter()
            .filter_map(|tp| {
                let p = self.partitions.get(tp)?;
                let position = p.position.filter(|_| p.pending_reset.is_none())?;
                Some((
                    tp.clone(),
                    crate::network::OffsetAndMetadata::new(position)
                        .with_leader_epoch(p.position_epoch),
                ))
            })
            .collect()
    }

    /// Moves `tp` to `offset` (or schedules resolving it), dropping what was
    /// fetched for it before.
    pub fn seek(&mut self, tp: &TopicPartition, offset: Offset) -> bool {
        self.next_generation += 1;
        let generation = self.next_generation;
        let Some(p) = self.partitions.get_mut(tp) else {
            return false;
        };
        p.generation = generation;
        self.renew_sessions = true;
        // A lookup or check still running is for the old generation: its
        // answer is dropped, and this seek's own one starts afresh.
        p.reset_in_flight = false;
        p.validation_in_flight = false;
        p.failed = false;
        p.awaiting_validation = false;
        p.position_epoch = None;
        p.fetch_epoch = None;
        match offset {
            Offset::At(n) if n >= 0 => {
                p.position = Some(n);
                p.fetch_offset = n;
                p.pending_reset = None;
            }
            Offset::At(_) => {
                p.position = None;
                p.pending_reset = Some(Offset::Beginning);
            }
            other => {
                p.position = None;
                p.pending_reset = Some(other);
            }
        }
        self.drop_buffered(tp);
        true
    }

    /// Forgets the buffered chunks of `tp`.
    pub fn drop_buffered(&mut self, tp: &TopicPartition) {
        let mut freed = 0;
        self.buffer.retain(|c| {
            let keep = &c.partition != tp;
            if !keep {
                freed += c.wire_bytes;
            }
            keep
        });
        self.buffered_bytes -= freed;
        if let Some(p) = self.partitions.get_mut(tp) {
            p.buffered_bytes = 0;
        }
    }

    /// Takes up to `max_records` records for the application, advancing
    /// positions. Chunks of paused partitions stay; stale ones are dropped.
    pub fn take(&mut self, max_records: usize) -> Records {
        let mut out = Records::default();
        let mut index = 0;
        while index < self.buffer.len() && out.count < max_records {
            let chunk = &self.buffer[index];
            let Some(p) = self.partitions.get(&chunk.partition) else {
                let c = self.buffer.remove(index).expect("index in bounds");
                self.buffered_bytes -= c.wire_bytes;
                continue;
            };
            if p.generation != chunk.generation {
                let c = self.buffer.remove(index).expect("index in bounds");
                self.buffered_bytes -= c.wire_bytes;
                continue;
            }
            if p.paused {
                index += 1;
                continue;
            }
            let room = max_records - out.count;
            let chunk = if chunk.len() > room {
                self.buffer[index].split_front(room)
            } else {
                self.buffer.remove(index).expect("index in bounds")
            };
            self.buffered_bytes -= chunk.wire_bytes;
            let p = self
                .partitions
                .get_mut(&chunk.partition)
                .expect("checked above");
            p.buffered_bytes = p.buffered_bytes.saturating_sub(chunk.wire_bytes);
            p.position = Some(chunk.next_offset);
            if chunk.leader_epoch.is_some() {
                p.position_epoch = chunk.leader_epoch;
            }
            let n = chunk.len();
            p.records_consumed += n as u64;
            out.count += n;
            out.bytes += chunk.wire_bytes;
            if n > 0 {
                out.chunks.push(chunk);
            }
        }
        out
    }
}

impl Shared {
    /// Waits up to `timeout` for records (or an error) and takes up to
    /// `max_records` of them.
    pub async fn poll(&self, max_records: usize, timeout: Duration) -> Result<Records> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.data_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.lock();
                if state.closed {
                    return Err(ConsumerError::Closed);
                }
                if let Some(e) = state.errors.pop_front() {
                    return Err(e);
                }
                let had_buffer = !state.buffer.is_empty();
                let records = state.take(max_records.max(1));
                if had_buffer {
                    self.wake.notify_one();
                }
                if !records.is_empty() {
                    Counters::add(&self.counters.records_consumed, records.count as u64);
                    Counters::add(&self.counters.bytes_consumed, records.bytes as u64);
                    return Ok(records);
                }
                if let Some((tp, _)) = state
                    .partitions
                    .iter()
                    .find(|(_, p)| p.position.is_none() && p.pending_reset.is_none() && !p.failed)
                {
                    return Err(ConsumerError::NoOffsetForPartition(tp.clone()));
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Records::default());
            }
        }
    }
}
