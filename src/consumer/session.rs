//! Incremental fetch sessions (KIP-227), per broker.
//!
//! The first request of a session is a full fetch (session id 0, epoch 0);
//! when the broker answers with a session id, later requests list only the
//! partitions whose fetch parameters changed since they were last sent, and
//! name the partitions to drop as forgotten. Any session error, or a broker
//! that answers session id 0, makes the next request a full one again.
//!
//! From Fetch v13 (KIP-516) the broker keys a session's partitions by topic
//! id, not name: a topic recreated under the same name is another topic. So
//! the session remembers the id each topic was added with; when the
//! metadata's id changes, the old (id, partition) is forgotten and the new
//! one listed. A session opened with names is never continued with ids (or
//! the other way round): the next request is a full one.

use std::collections::HashMap;

use crate::protocol::{ErrorCode, Uuid};

use super::TopicPartition;

/// What a fetch request says about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionFetch {
    pub fetch_offset: i64,
    pub current_leader_epoch: i32,
    pub last_fetched_epoch: i32,
    pub max_bytes: i32,
}

/// The session part of one request.
#[derive(Debug, Clone)]
pub(crate) struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    /// Whether this is a full fetch (every wanted partition is listed).
    pub full: bool,
    /// Partitions to list in the request.
    pub send: Vec<(TopicPartition, PartitionFetch)>,
    /// Partitions to drop from the session, with the topic id they were
    /// added under ([`Uuid::ZERO`] when topics go by name).
    pub forgotten: Vec<(TopicPartition, Uuid)>,
    /// Every partition the request fetches (listed or carried by the session).
    pub wanted: HashMap<TopicPartition, PartitionFetch>,
    /// The id of each wanted topic when the request names topics by id
    /// (Fetch v13+); empty when it names them by name.
    pub topic_ids: HashMap<String, Uuid>,
}

impl SessionRequest {
    /// Whether the request names topics by id (Fetch v13+).
    pub fn by_topic_id(&self) -> bool {
        !self.topic_ids.is_empty()
    }
}

/// One broker's fetch session.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    id: i32,
    epoch: i32,
    /// The session's partitions as the broker knows them.
    partitions: HashMap<TopicPartition, PartitionFetch>,
    /// The topic ids the session's partitions were added under (empty for a
    /// session that names topics by name).
    topic_ids: HashMap<String, Uuid>,
    /// Whether the session names topics by id (Fetch v13+).
    by_topic_id: bool,
    /// Consecutive empty answers that came back well before
    /// `fetch.max.wait.ms` (see `fetch::EMPTY_ANSWER_BACKOFF_CAP`): the
    /// broker is not holding fetches, so the next one is paced.
    pub quick_empty_answers: u32,
    /// Answers received so far: full fetches list the partitions starting
    /// this far into their sorted order (see [`FetchSession::request`]).
    turn: usize,
}

/// The epoch after `epoch` (wraps to 1, never 0 or -1 which are special).
fn next_epoch(epoch: i32) -> i32 {
    if epoch >= i32::MAX - 1 {
        1
    } else {
        epoch + 1
    }
}

impl FetchSession {
    /// Whether requests are incremental now.
    pub fn is_open(&self) -> bool {
        self.id != 0
    }

    /// Plans the request that fetches exactly `wanted`; `topic_ids` holds
    /// the id of every wanted topic when the request goes by topic id
    /// (Fetch v13+), and is empty when it goes by name.
    pub fn request(
        &self,
        wanted: HashMap<TopicPartition, PartitionFetch>,
        topic_ids: HashMap<String, Uuid>,
    ) -> SessionRequest {
        let by_topic_id = !topic_ids.is_empty();
        if !self.is_open() || self.by_topic_id != by_topic_id {
            let mut send: Vec<_> = wanted.iter().map(|(tp, f)| (tp.clone(), *f)).collect();
            send.sort_by(|a, b| a.0.cmp(&b.0));
            // A broker fills a response in request order and stops at the
            // response's byte limit (only the first partition's first batch
            // goes past it), so a fixed order would starve the last
            // partitions whenever the limit binds (a small buffer room, many
            // partitions). Each full fetch starts one partition further on,
            // as the Java client moves drained partitions to the end. In a
            // session the broker orders the partitions itself.
            if !send.is_empty() {
                let start = self.turn % send.len();
                send.rotate_left(start);
            }
            return SessionRequest {
                session_id: 0,
                epoch: 0,
                full: true,
                send,
                forgotten: Vec::new(),
                wanted,
                topic_ids,
            };
        }
        let old_id = |tp: &TopicPartition| {
            self.topic_ids
                .get(tp.topic())
                .copied()
                .unwrap_or(Uuid::ZERO)
        };
        // A topic whose id changed (deleted and recreated) is another topic
        // to the broker: its partitions are forgotten under the old id and
        // listed again under the new one.
        let replaced = |tp: &TopicPartition| {
            by_topic_id
                && self.partitions.contains_key(tp)
                && topic_ids.get(tp.topic()).copied().unwrap_or(Uuid::ZERO) != old_id(tp)
        };
        let mut send: Vec<_> = wanted
            .iter()
            .filter(|(tp, f)| self.partitions.get(*tp) != Some(*f) || replaced(tp))
            .map(|(tp, f)| (tp.clone(), *f))
            .collect();
        send.sort_by(|a, b| a.0.cmp(&b.0));
        let mut forgotten: Vec<_> = self
            .partitions
            .keys()
            .filter(|tp| !wanted.contains_key(*tp) || replaced(tp))
            .map(|tp| (tp.clone(), old_id(tp)))
            .collect();
        forgotten.sort();
        SessionRequest {
            session_id: self.id,
            epoch: self.epoch,
            full: false,
            send,
            forgotten,
            wanted,
            topic_ids,
        }
    }

    /// Updates the session from the response to `request`
    /// (`error` is the top-level error code, `session_id` the answered id).
    /// Returns whether the session was reset by an error.
    pub fn on_response(
        &mut self,
        request: SessionRequest,
        error: ErrorCode,
        session_id: i32,
    ) -> bool {
        self.turn = self.turn.wrapping_add(1);
        if error != ErrorCode::None {
            tracing::debug!(session_id = self.id, %error, "fetch session reset");
            self.reset();
            return true;
        }
        if request.full {
            if session_id != 0 {
                self.id = session_id;
                self.epoch = 1;
                self.by_topic_id = request.by_topic_id();
                self.partitions = request.wanted;
                self.topic_ids = request.topic_ids;
            } else {
                // The broker keeps no session (or cannot now): stay sessionless.
                self.reset();
            }
        } else {
            self.epoch = next_epoch(self.epoch);
            self.partitions = request.wanted;
            self.topic_ids = request.topic_ids;
        }
        false
    }

    /// Forgets the session: the next request is a full fetch.
    pub fn reset(&mut self) {
        self.id = 0;
        self.epoch = 0;
        self.partitions.clear();
        self.topic_ids.clear();
        self.by_topic_id = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(offset: i64) -> PartitionFetch {
        PartitionFetch {
            fetch_offset: offset,
            current_leader_epoch: 0,
            last_fetched_epoch: -1,
            max_bytes: 100,
        }
    }

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    #[test]
    fn full_then_incremental_then_reset_on_error() {
        let mut s = FetchSession::default();
        let wanted: HashMap<_, _> = [(tp(0), f(0)), (tp(1), f(5))].into();
        let r = s.request(wanted.clone(), HashMap::new());
        assert!(r.full && r.session_id == 0 && r.epoch == 0 && r.send.len() == 2);
        assert!(!s.on_response(r, ErrorCode::None, 42));
        // Nothing changed: an incremental request listing nothing.
        let r = s.request(wanted, HashMap::new());
        assert!(
            !r.full
                && r.session_id == 42
                && r.epoch == 1
                && r.send.is_empty()
                && r.forgotten.is_empty()
        );
        s.on_response(r, ErrorCode::None, 42);
        // Partition 0 advanced, partition 1 dropped.
        let r = s.request([(tp(0), f(10))].into(), HashMap::new());
        assert_eq!(r.epoch, 2);
        assert_eq!(r.send, vec![(tp(0), f(10))]);
        assert_eq!(r.forgotten, vec![(tp(1), Uuid::ZERO)]);
        assert!(s.on_response(r, ErrorCode::InvalidFetchSessionEpoch, 0));
        let r = s.request([(tp(0), f(10))].into(), HashMap::new());
        assert!(r.full && r.session_id == 0 && r.epoch == 0);
    }

    #[test]
    fn sessionless_brokers_get_full_fetches() {
        let mut s = FetchSession::default();
        let r = s.request([(tp(0), f(0))].into(), HashMap::new());
        s.on_response(r, ErrorCode::None, 0);
        assert!(s.request([(tp(0), f(3))].into(), HashMap::new()).full);
        assert_eq!(next_epoch(i32::MAX - 1), 1);
    }

    #[test]
    fn full_fetches_start_one_partition_further_each_time() {
        let mut s = FetchSession::default();
        let wanted: HashMap<_, _> = [(tp(0), f(0)), (tp(1), f(0)), (tp(2), f(0))].into();
        let mut firsts = Vec::new();
        for _ in 0..4 {
            let r = s.request(wanted.clone(), HashMap::new());
            assert!(r.full);
            let order: Vec<i32> = r.send.iter().map(|(tp, _)| tp.partition()).collect();
            firsts.push(order[0]);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2], "every partition listed once: {order:?}");
            s.on_response(r, ErrorCode::None, 0);
        }
        assert_eq!(firsts, [0, 1, 2, 0]);
    }

    fn ids(id: u64) -> HashMap<String, Uuid> {
        [("t".to_owned(), Uuid::from_u64_pair(7, id))].into()
    }

    #[test]
    fn topic_id_sessions_forget_a_recreated_topic_under_its_old_id() {
        let mut s = FetchSession::default();
        let wanted: HashMap<_, _> = [(tp(0), f(0)), (tp(1), f(5))].into();
        let r = s.request(wanted.clone(), ids(1));
        assert!(r.full && r.by_topic_id());
        s.on_response(r, ErrorCode::None, 9);
        // Same id, nothing changed: nothing listed.
        let r = s.request(wanted.clone(), ids(1));
        assert!(!r.full && r.send.is_empty() && r.forgotten.is_empty());
        s.on_response(r, ErrorCode::None, 9);
        // The topic was recreated: both partitions forgotten under the old
        // id and listed again (under the new one).
        let r = s.request(wanted.clone(), ids(2));
        assert!(!r.full);
        assert_eq!(r.send.len(), 2);
        assert_eq!(
            r.forgotten,
            vec![
                (tp(0), Uuid::from_u64_pair(7, 1)),
                (tp(1), Uuid::from_u64_pair(7, 1))
            ]
        );
        s.on_response(r, ErrorCode::None, 9);
        let r = s.request(wanted.clone(), ids(2));
        assert!(r.send.is_empty() && r.forgotten.is_empty());
        s.on_response(r, ErrorCode::None, 9);
        // Falling back to names (a broker or topic without ids): a new,
        // full session rather than mixing names into an id session.
        let r = s.request(wanted, HashMap::new());
        assert!(r.full && r.session_id == 0 && !r.by_topic_id());
    }
}
