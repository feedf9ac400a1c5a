//! The subscription side of a group member: what it subscribed to, what it
//! owns, the join in flight and the auto-commit timer. The consumer's poll
//! drives it (see `Consumer::poll`); the membership itself and the wire
//! exchanges are in [`super::coordinator`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::network::{Cluster, RequestOptions};
use crate::protocol::messages::MetadataRequest;

use super::super::error::{ConsumerError, Result};
use super::super::TopicPartition;
use super::coordinator::{GroupCoordinator, JoinFailure, Joined};

/// What the member subscribed to.
#[derive(Debug, Clone)]
pub(crate) enum Subscribed {
    /// A fixed list of topics (in [`SessionState::topics`]).
    Topics,
    /// Every topic whose name matches (anchored as Java's `Pattern.matches`).
    Pattern(regex::Regex),
}

/// The poll-driven part of a group member.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    pub subscription: Option<Subscribed>,
    /// The topics subscribed now (for a pattern: the matching topics).
    pub topics: BTreeSet<String>,
    /// Partitions the group assigned to this member.
    pub owned: BTreeSet<TopicPartition>,
    /// Assigned partitions whose committed offsets are still to be fetched
    /// (they are not handed to the fetcher before that).
    pub awaiting_offsets: Vec<TopicPartition>,
    /// Set by a completed join until its assigned callback ran.
    pub assign_pending: bool,
    /// The join in flight.
    pub join: Option<JoinHandle<std::result::Result<Joined, JoinFailure>>>,
    /// Whether the pre-join work (commit, eager revocation) is done for the
    /// rebalance under way.
    pub prepared: bool,
    /// No join before this instant (after a retriable failure).
    pub retry_at: Option<Instant>,
    pub next_auto_commit: Option<Instant>,
    /// When the pattern was last matched against the cluster's topics.
    pub pattern_checked_at: Option<Instant>,
    /// Partition counts of the subscribed topics at the last completed
    /// assignment (`None` while none is in force, e.g. during a join).
    pub assigned_counts: Option<BTreeMap<String, usize>>,
    pub closed: bool,
}

/// A member's subscription and membership, shared by the consumer handle
/// and its views (streams).
#[derive(Debug)]
pub(crate) struct GroupSession {
    pub coordinator: Arc<GroupCoordinator>,
    state: Mutex<SessionState>,
    /// One poll at a time drives joins and callbacks.
    pub gate: tokio::sync::Mutex<()>,
    pub heartbeat: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for GroupSession {
    fn drop(&mut self) {
        if let Some(task) = self.heartbeat.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
        if let Some(join) = self.state.get_mut().ok().and_then(|s| s.join.take()) {
            join.abort();
        }
    }
}

impl GroupSession {
    pub fn new(coordinator: GroupCoordinator) -> GroupSession {
        GroupSession {
            coordinator: Arc::new(coordinator),
            state: Mutex::new(SessionState::default()),
            gate: tokio::sync::Mutex::new(()),
            heartbeat: Mutex::new(None),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a subscription is active.
    pub fn subscribed(&self) -> bool {
        self.lock().subscription.is_some()
    }

    /// The fatal error recorded by the membership, if any, as an error for
    /// the application.
    pub fn fatal_error(&self) -> Option<ConsumerError> {
        let m = self.coordinator.lock();
        let (code, reason) = m.fatal.clone()?;
        Some(if code == crate::protocol::ErrorCode::FencedInstanceId {
            ConsumerError::FencedInstanceId(reason)
        } else {
            ConsumerError::Group { code, reason }
        })
    }

    /// Starts the heartbeat task once; `wake_poll` wakes a waiting poll.
    pub fn start_heartbeats(&self, wake_poll: impl Fn() + Send + Sync + 'static) {
        let mut task = self.heartbeat.lock().unwrap_or_else(|p| p.into_inner());
        if task.is_none() {
            *task = Some(tokio::spawn(super::coordinator::heartbeat_loop(
                self.coordinator.clone(),
                wake_poll,
            )));
        }
    }

    /// Matches the pattern against every topic in the cluster (a Metadata
    /// request for all topics, at most once per `metadata.max.age.ms` unless
    /// `force`); returns whether the matching topics changed.
    pub async fn refresh_pattern(&self, cluster: &Cluster, force: bool) -> Result<bool> {
        let regex = {
            let state = self.lock();
            let Some(Subscribed::Pattern(regex)) = &state.subscription else {
                return Ok(false);
            };
            let due = state
                .pattern_checked_at
                .map_or(true, |t| t.elapsed() >= cluster.config().metadata_max_age);
            if !force && !due {
                return Ok(false);
            }
            regex.clone()
        };
        let request = MetadataRequest::default().with_topics(None);
        let response = cluster
            .send_to_any(&request, RequestOptions::default())
            .await?;
        let matched: BTreeSet<String> = response
            .topics
            .into_iter()
            .filter(|t| !t.is_internal)
            .filter_map(|t| t.name)
            .filter(|name| regex.is_match(name))
            .collect();
        let mut state = self.lock();
        state.pattern_checked_at = Some(Instant::now());
        if matched == state.topics {
            return Ok(false);
        }
        tracing::info!(topics = ?matched, "pattern subscription matches new topics");
        cluster.track_topics(matched.iter().cloned());
        state.topics = matched;
        Ok(true)
    }
}

/// Compiles a subscription pattern, anchored at both ends (a topic matches
/// when the whole name matches, as in Java).
pub(crate) fn compile_pattern(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| ConsumerError::InvalidPattern(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_topic_names() {
        let regex = compile_pattern("orders-.*|payments").unwrap();
        assert!(regex.is_match("orders-eu"));
        assert!(regex.is_match("payments"));
        assert!(!regex.is_match("old-orders-eu"));
        assert!(!regex.is_match("payments-dlq"));
        assert!(matches!(
            compile_pattern("("),
            Err(ConsumerError::InvalidPattern(_))
        ));
    }
}
