//! Incremental fetch sessions (KIP-227), per broker.
//!
//! The first request of a session is a full fetch (session id 0, epoch 0);
//! when the broker answers with a session id, later requests list only the
//! partitions whose fetch parameters changed since they were last sent, and
//! name the partitions to drop as forgotten. Any session error, or a broker
//! that answers session id 0, makes the next request a full one again.

use std::collections::HashMap;

use crate::protocol::ErrorCode;

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
    /// Partitions to drop from the session.
    pub forgotten: Vec<TopicPartition>,
    /// Every partition the request fetches (listed or carried by the session).
    pub wanted: HashMap<TopicPartition, PartitionFetch>,
}

/// One broker's fetch session.
#[derive(Debug, Default)]
pub(crate) struct FetchSession {
    id: i32,
    epoch: i32,
    /// The session's partitions as the broker knows them.
    partitions: HashMap<TopicPartition, PartitionFetch>,
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

    /// Plans the request that fetches exactly `wanted`.
    pub fn request(&self, wanted: HashMap<TopicPartition, PartitionFetch>) -> SessionRequest {
        if !self.is_open() {
            let mut send: Vec<_> = wanted.iter().map(|(tp, f)| (tp.clone(), *f)).collect();
            send.sort_by(|a, b| a.0.cmp(&b.0));
            return SessionRequest {
                session_id: 0,
                epoch: 0,
                full: true,
                send,
                forgotten: Vec::new(),
                wanted,
            };
        }
        let mut send: Vec<_> = wanted
            .iter()
            .filter(|(tp, f)| self.partitions.get(*tp) != Some(*f))
            .map(|(tp, f)| (tp.clone(), *f))
            .collect();
        send.sort_by(|a, b| a.0.cmp(&b.0));
        let mut forgotten: Vec<_> = self
            .partitions
            .keys()
            .filter(|tp| !wanted.contains_key(*tp))
            .cloned()
            .collect();
        forgotten.sort();
        SessionRequest {
            session_id: self.id,
            epoch: self.epoch,
            full: false,
            send,
            forgotten,
            wanted,
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
        if error != ErrorCode::None {
            tracing::debug!(session_id = self.id, %error, "fetch session reset");
            self.reset();
            return true;
        }
        if request.full {
            if session_id != 0 {
                self.id = session_id;
                self.epoch = 1;
                self.partitions = request.wanted;
            } else {
                // The broker keeps no session (or cannot now): stay sessionless.
                self.reset();
            }
        } else {
            self.epoch = next_epoch(self.epoch);
            self.partitions = request.wanted;
        }
        false
    }

    /// Forgets the session: the next request is a full fetch.
    pub fn reset(&mut self) {
        self.id = 0;
        self.epoch = 0;
        self.partitions.clear();
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
        let r = s.request(wanted.clone());
        assert!(r.full && r.session_id == 0 && r.epoch == 0 && r.send.len() == 2);
        assert!(!s.on_response(r, ErrorCode::None, 42));
        // Nothing changed: an incremental request listing nothing.
        let r = s.request(wanted);
        assert!(
            !r.full
                && r.session_id == 42
                && r.epoch == 1
                && r.send.is_empty()
                && r.forgotten.is_empty()
        );
        s.on_response(r, ErrorCode::None, 42);
        // Partition 0 advanced, partition 1 dropped.
        let r = s.request([(tp(0), f(10))].into());
        assert_eq!(r.epoch, 2);
        assert_eq!(r.send, vec![(tp(0), f(10))]);
        assert_eq!(r.forgotten, vec![tp(1)]);
        assert!(s.on_response(r, ErrorCode::InvalidFetchSessionEpoch, 0));
        let r = s.request([(tp(0), f(10))].into());
        assert!(r.full && r.session_id == 0 && r.epoch == 0);
    }

    #[test]
    fn sessionless_brokers_get_full_fetches() {
        let mut s = FetchSession::default();
        let r = s.request([(tp(0), f(0))].into());
        s.on_response(r, ErrorCode::None, 0);
        assert!(s.request([(tp(0), f(3))].into()).full);
        assert_eq!(next_epoch(i32::MAX - 1), 1);
    }
}
