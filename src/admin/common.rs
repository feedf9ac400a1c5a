//! What every admin operation shares, and nothing else: the types several
//! operations speak of ([`TopicPartition`], [`AuthorizedOperations`]), the
//! retry loops (per key, per coordinator, per broker), version negotiation
//! and copying one error for several resources.
//!
//! The admin modules form layers, each using only those below it:
//! `common` at the bottom; `acls`, `configs`, `quotas` and `scram` on it;
//! the operations that also speak of ACL operations or config entries
//! (`topics`, `cluster_info`, `offsets`, `groups`, `producers`,
//! `transactions`) on top. No module imports from a sibling on its own level
//! or above.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::{Error, Result};
use crate::network::{
    Backoff, BrokerConnection, BrokerInfo, Cluster, CoordinatorType, RequestOptions,
};
use crate::protocol::{ApiKey, ErrorCode, VersionRange};

/// A partition of a topic.
///
/// ```
/// use ferrokafka::admin::TopicPartition;
///
/// let tp = TopicPartition::new("orders", 3);
/// assert_eq!(tp.to_string(), "orders-3");
/// assert!(TopicPartition::new("orders", 2) < tp);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The operations a client is allowed on a resource, as a broker reports
/// them: a set of ACL operation codes (3 = READ, 4 = WRITE, ... as in
/// Kafka's `AclOperation`).
///
/// ```
/// use ferrokafka::admin::AuthorizedOperations;
///
/// let ops = AuthorizedOperations::from_bits((1 << 3) | (1 << 8)).unwrap();
/// assert!(ops.contains(AuthorizedOperations::READ));
/// assert!(ops.contains(AuthorizedOperations::DESCRIBE));
/// assert!(!ops.contains(AuthorizedOperations::WRITE));
/// assert_eq!(ops.codes().collect::<Vec<_>>(), [3, 8]);
/// // i32::MIN is the wire's "not requested".
/// assert_eq!(AuthorizedOperations::from_bits(i32::MIN), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorizedOperations(i32);

impl AuthorizedOperations {
    /// `READ`.
    pub const READ: i8 = 3;
    /// `WRITE`.
    pub const WRITE: i8 = 4;
    /// `CREATE`.
    pub const CREATE: i8 = 5;
    /// `DELETE`.
    pub const DELETE: i8 = 6;
    /// `ALTER`.
    pub const ALTER: i8 = 7;
    /// `DESCRIBE`.
    pub const DESCRIBE: i8 = 8;
    /// `CLUSTER_ACTION`.
    pub const CLUSTER_ACTION: i8 = 9;
    /// `DESCRIBE_CONFIGS`.
    pub const DESCRIBE_CONFIGS: i8 = 10;
    /// `ALTER_CONFIGS`.
    pub const ALTER_CONFIGS: i8 = 11;
    /// `IDEMPOTENT_WRITE`.
    pub const IDEMPOTENT_WRITE: i8 = 12;

    /// The set a wire bit field stands for; `None` for `i32::MIN`, which
    /// brokers send when the operations were not asked for.
    pub fn from_bits(bits: i32) -> Option<Self> {
        (bits != i32::MIN).then_some(AuthorizedOperations(bits))
    }

    /// The bit field: bit `n` set when operation code `n` is allowed.
    pub fn bits(self) -> i32 {
        self.0
    }

    /// Whether operation `code` is allowed.
    pub fn contains(self, code: i8) -> bool {
        (0..32).contains(&code) && self.0 & (1 << code) != 0
    }

    /// The allowed operation codes, ascending.
    pub fn codes(self) -> impl Iterator<Item = i8> {
        (0..32i8).filter(move |&code| self.contains(code))
    }
}

/// A duration as the `timeout_ms` field of a request (saturating, at least 1).
pub(super) fn timeout_ms(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1)
}

/// The `timeout_ms` to put in a request that the broker may hold for that
/// long (CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords, ...),
/// and the options to send it with: the wire timeout is that plus
/// `request.timeout.ms`, so the client never gives up on a request the
/// broker is still allowed to be working on. (Cutting it would kill the
/// other requests on the connection and make a retry find the broker's own
/// work, e.g. TOPIC_ALREADY_EXISTS for a topic this very call created.)
pub(super) fn broker_side_timeout(
    cluster: &Cluster,
    remaining: Duration,
    version: i16,
) -> (i32, RequestOptions) {
    let broker_side = timeout_ms(remaining);
    let wire = Duration::from_millis(broker_side as u64) + cluster.config().request_timeout;
    (
        broker_side,
        RequestOptions::default()
            .with_version(version)
            .with_timeout(wire),
    )
}

/// The version `conn` negotiated for `api`.
pub(super) fn negotiated(conn: &BrokerConnection, api: ApiKey) -> Result<i16> {
    conn.api_versions()
        .map(|table| table.negotiate(api))
        .unwrap_or(Err(Error::UnsupportedVersion {
            api,
            client: api.stable_versions(),
            broker: None,
        }))
}

/// The error for an API that exists on the broker but only in versions too
/// old for what was asked (deleting by topic id, `MaxTimestamp`, ...).
pub(super) fn needs_version(conn: &BrokerConnection, api: ApiKey, min: i16) -> Error {
    Error::UnsupportedVersion {
        api,
        client: VersionRange::new(min, api.stable_versions().max),
        broker: conn.api_versions().and_then(|t| t.broker_range(api)),
    }
}

/// Whether a per-resource error is worth another attempt by the broker's own
/// classification (leader moved, coordinator loading, ...).
pub(super) fn broker_retriable(error: &Error) -> bool {
    error.is_retriable()
}

/// Runs `attempt` for the keys still pending until each has a final result
/// or `timeout` passes.
///
/// `attempt` gets the pending keys and returns a result per key; a key it
/// does not answer for gets an [`Error::Protocol`]. A per-key error for which
/// `retriable` holds keeps the key pending. An error of the whole attempt
/// (connection lost, request timed out) is retried when it is retriable and
/// returned at once otherwise. Metadata is marked stale when an error calls
/// for it, so the next attempt routes afresh. Keys still pending at the
/// deadline end with [`Error::Timeout`] carrying their last error; when no
/// attempt ever got an answer the whole call fails with it.
pub(super) async fn retry_each<K, V, F, Fut>(
    cluster: &Cluster,
    operation: &str,
    timeout: Duration,
    keys: impl IntoIterator<Item = K>,
    retriable: fn(&Error) -> bool,
    mut attempt: F,
) -> Result<BTreeMap<K, Result<V>>>
where
    K: Ord + Clone + Debug,
    F: FnMut(Vec<K>) -> Fut,
    Fut: Future<Output = Result<Vec<(K, Result<V>)>>>,
{
    let deadline = Instant::now() + timeout;
    let config = cluster.config();
    let backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
    let mut pending: BTreeSet<K> = keys.into_iter().collect();
    let mut done = BTreeMap::new();
    let mut last: BTreeMap<K, Error> = BTreeMap::new();
    let mut request_error: Option<Error> = None;
    let mut answered_once = false;
    let mut attempts = 0u32;
    while !pending.is_empty() {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let keys: Vec<K> = pending.iter().cloned().collect();
        let mut invalidate = false;
        match tokio::time::timeout(remaining, attempt(keys)).await {
            Err(_elapsed) => break,
            Ok(Err(e)) if !e.is_retriable() => return Err(e),
            Ok(Err(e)) => {
                invalidate |= e.invalidates_metadata();
                tracing::debug!(operation, attempts, error = %e, "attempt failed; retrying");
                request_error = Some(e);
            }
            Ok(Ok(results)) => {
                answered_once = true;
                request_error = None;
                let mut unanswered = pending.clone();
                for (key, result) in results {
                    if !unanswered.remove(&key) {
                        continue;
                    }
                    match result {
                        Err(e) if retriable(&e) => {
                            invalidate |= e.invalidates_metadata();
                            tracing::debug!(operation, attempts, key = ?key, error = %e, "retrying");
                            last.insert(key, e);
                        }
                        result => {
                            pending.remove(&key);
                            last.remove(&key);
                            done.insert(key, result);
                        }
                    }
                }
                for key in unanswered {
                    pending.remove(&key);
                    last.remove(&key);
                    let reason = format!("{operation}: the response has no result for {key:?}");
                    done.insert(
                        key,
                        Err(Error::Protocol {
                            broker: String::new(),
                            reason,
                        }),
                    );
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        if invalidate {
            cluster.invalidate_metadata();
        }
        let delay = backoff.delay(attempts - 1);
        if Instant::now() + delay >= deadline {
            break;
        }
        tokio::time::sleep(delay).await;
    }
    if pending.is_empty() {
        return Ok(done);
    }
    if !answered_once {
        return Err(Error::Timeout {
            operation: operation.to_owned(),
            timeout,
            attempts,
            last: request_error.map(Box::new),
        });
    }
    for key in pending {
        let last = last.remove(&key).map(Box::new);
        let error = Error::Timeout {
            operation: format!("{operation} ({key:?})"),
            timeout,
            attempts,
            last,
        };
        done.insert(key, Err(error));
    }
    Ok(done)
}

/// A copy of `error` for one of several resources a single failed request
/// covered. Broker errors are copied exactly; others keep their kind where it
/// matters for retrying (a broken connection stays retriable) and their text.
pub(super) fn copy_error(error: &Error) -> Error {
    if let Some(copy) = copy_exactly(error) {
        return copy;
    }
    match error {
        Error::RequestTimeout {
            api,
            broker,
            timeout,
        } => Error::RequestTimeout {
            api: *api,
            broker: broker.clone(),
            timeout: *timeout,
        },
        Error::Disconnected { broker, reason } => Error::Disconnected {
            broker: broker.clone(),
            reason: reason.clone(),
        },
        Error::Connect { broker, source } => Error::Connect {
            broker: broker.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::ConnectTimeout { broker, timeout } => Error::ConnectTimeout {
            broker: broker.clone(),
            timeout: *timeout,
        },
        other if other.is_retriable() => Error::Disconnected {
            broker: String::new(),
            reason: other.to_string(),
        },
        other => copy_as_protocol_error(other),
    }
}

/// A copy of `error` for a second resource that failed for the same reason
/// (the network `Error` is not `Clone`). Broker errors, version mismatches and
/// timeouts are copied exactly; other kinds are carried as a protocol error
/// that keeps the original's text.
pub(super) fn replicate_error(error: &Error) -> Error {
    if let Some(copy) = copy_exactly(error) {
        return copy;
    }
    match error {
        Error::Timeout {
            operation,
            timeout,
            attempts,
            last,
        } => Error::Timeout {
            operation: operation.clone(),
            timeout: *timeout,
            attempts: *attempts,
            last: last.as_deref().map(|e| Box::new(replicate_error(e))),
        },
        other => copy_as_protocol_error(other),
    }
}

/// An exact copy of `error` when it is one of the kinds every copy of an
/// error keeps as it is: a broker's error code, a version mismatch or an
/// unknown broker id. `None` for every other kind.
pub(super) fn copy_exactly(error: &Error) -> Option<Error> {
    match error {
        Error::Broker { api, code, message } => Some(Error::Broker {
            api: *api,
            code: *code,
            message: message.clone(),
        }),
        Error::UnsupportedVersion {
            api,
            client,
            broker,
        } => Some(Error::UnsupportedVersion {
            api: *api,
            client: *client,
            broker: *broker,
        }),
        Error::UnknownBroker(id) => Some(Error::UnknownBroker(*id)),
        _ => None,
    }
}

/// A protocol error (not retriable) that keeps `error`'s text, for a copy of
/// an error kind that cannot be copied as it is.
pub(super) fn copy_as_protocol_error(error: &Error) -> Error {
    Error::Protocol {
        broker: String::new(),
        reason: error.to_string(),
    }
}

/// Whether a per-resource error means "ask the coordinator again", after
/// looking it up again for the first two codes.
pub(super) fn is_coordinator_retriable(error: &Error) -> bool {
    matches!(
        error.error_code(),
        Some(
            ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::CoordinatorLoadInProgress
        )
    ) || (error.error_code().is_none() && error.is_retriable())
}

/// Forgets the cached coordinator of `key` when `error` says it moved: an
/// error code from a response body goes through [`Cluster::coordinator_error`]
/// (NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE forget it;
/// COORDINATOR_LOAD_IN_PROGRESS keeps it, to be retried, as in the Java
/// client); a failed request (broken connection, timeout) forgets it too.
pub(super) fn forget_moved_coordinator(
    cluster: &Cluster,
    kind: CoordinatorType,
    key: &str,
    error: &Error,
) {
    match error.error_code() {
        Some(code) => {
            cluster.coordinator_error(kind, key, code);
        }
        None if error.invalidates_coordinator() => cluster.invalidate_coordinator(kind, key),
        None => {}
    }
}

/// Runs `futures` concurrently on the runtime and returns their outputs in order.
pub(super) async fn join_all<T, F>(futures: Vec<F>) -> Vec<T>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let span = tracing::Span::current();
    let mut set = tokio::task::JoinSet::new();
    let count = futures.len();
    for (index, future) in futures.into_iter().enumerate() {
        set.spawn(async move { (index, future.await) }.instrument(span.clone()));
    }
    let mut outputs: Vec<Option<T>> = (0..count).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((index, value)) => outputs[index] = Some(value),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("admin task cancelled: {e}"),
        }
    }
    outputs
        .into_iter()
        .map(|o| o.expect("every task joined"))
        .collect()
}

/// Runs `send` for every broker in the metadata, concurrently, and returns
/// each broker's outcome (`send` does its own retries).
pub(super) async fn fan_out_to_all_brokers<T, F, Fut>(
    cluster: &Cluster,
    operation: &'static str,
    timeout: Duration,
    send: F,
) -> Result<Vec<(i32, Result<T>)>>
where
    T: Send + 'static,
    F: Fn(Cluster, i32) -> Fut,
    Fut: Future<Output = Result<T>> + Send + 'static,
{
    let metadata = cluster
        .retry(operation, Some(timeout), || cluster.metadata())
        .await?;
    let ids: Vec<i32> = metadata.brokers.keys().copied().collect();
    let futures: Vec<Fut> = ids.iter().map(|&id| send(cluster.clone(), id)).collect();
    let outcomes = join_all(futures).await;
    Ok(ids.into_iter().zip(outcomes).collect())
}

/// What a coordinator answered for one key in [`coordinator_rounds`].
pub(super) type KeyedResults<T> = Vec<(String, Result<T>)>;

/// Sends per-key requests to each key's coordinator until every key has a
/// final answer or `timeout` passes.
///
/// Each round looks up the pending keys' coordinators in one batched
/// FindCoordinator, groups the keys by coordinator and calls `send` once per
/// coordinator. Keys answered with a coordinator error (`NOT_COORDINATOR`,
/// `COORDINATOR_NOT_AVAILABLE`, `COORDINATOR_LOAD_IN_PROGRESS`) or whose
/// request failed retriably stay pending (their cached coordinator is
/// forgotten) and are retried after a backoff; when time runs out they get an
/// [`Error::Timeout`] carrying the last error.
pub(super) async fn coordinator_rounds<T, F, Fut>(
    cluster: &Cluster,
    kind: CoordinatorType,
    operation: &'static str,
    keys: Vec<String>,
    timeout: Duration,
    send: F,
) -> HashMap<String, Result<T>>
where
    F: Fn(BrokerInfo, Vec<String>) -> Fut,
    Fut: Future<Output = Result<KeyedResults<T>>>,
{
    let started = Instant::now();
    let deadline = started + timeout;
    let config = cluster.config();
    let backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
    let mut done: HashMap<String, Result<T>> = HashMap::new();
    let mut pending: BTreeMap<String, Option<Error>> = BTreeMap::new();
    for key in keys {
        pending.insert(key, None);
    }
    let mut round = 0u32;
    while !pending.is_empty() {
        round += 1;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let names: Vec<String> = pending.keys().cloned().collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let lookup = tokio::time::timeout(remaining, cluster.find_coordinators(kind, &refs)).await;
        let mut by_coordinator: BTreeMap<i32, (BrokerInfo, Vec<String>)> = BTreeMap::new();
        match lookup {
            Err(_) => break,
            Ok(Err(e)) if !e.is_retriable() => {
                for (key, _) in std::mem::take(&mut pending) {
                    done.insert(key, Err(replicate_error(&e)));
                }
                break;
            }
            Ok(Err(e)) => {
                for last in pending.values_mut() {
                    *last = Some(replicate_error(&e));
                }
            }
            Ok(Ok(found)) => {
                for (key, result) in found {
                    match result {
                        Ok(info) => {
                            by_coordinator
                                .entry(info.node_id)
                                .or_insert_with(|| (info, Vec::new()))
                                .1
                                .push(key);
                        }
                        Err(e) if e.is_retriable() => {
                            pending.insert(key, Some(e));
                        }
                        Err(e) => {
                            pending.remove(&key);
                            done.insert(key, Err(e));
                        }
                    }
                }
            }
        }
        for (_, (coordinator, group)) in by_coordinator {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let answer = tokio::time::timeout(remaining, send(coordinator, group.clone())).await;
            match answer {
                Err(_) => break,
                Ok(Err(e)) => {
                    let retry = e.is_retriable();
                    for key in &group {
                        forget_moved_coordinator(cluster, kind, key, &e);
                        if retry {
                            pending.insert(key.clone(), Some(replicate_error(&e)));
                        } else {
                            pending.remove(key);
                            done.insert(key.clone(), Err(replicate_error(&e)));
                        }
                    }
                }
                Ok(Ok(results)) => {
                    for (key, result) in results {
                        if !pending.contains_key(&key) {
                            continue;
                        }
                        match result {
                            Err(e) if is_coordinator_retriable(&e) => {
                                forget_moved_coordinator(cluster, kind, &key, &e);
                                pending.insert(key, Some(e));
                            }
                            other => {
                                pending.remove(&key);
                                done.insert(key, other);
                            }
                        }
                    }
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        let Some(delay) = delay_before_next_round(&backoff, round, deadline) else {
            break;
        };
        tracing::debug!(operation, round, pending = pending.len(), "retrying keys");
        tokio::time::sleep(delay).await;
    }
    done.extend(timed_out(pending, operation, timeout, round));
    done
}

/// The backoff to wait after retry round `round` (counted from 1), or `None`
/// when waiting it would reach `deadline` (so there is no time for another
/// round).
pub(super) fn delay_before_next_round(
    backoff: &Backoff,
    round: u32,
    deadline: Instant,
) -> Option<Duration> {
    let delay = backoff.delay(round - 1);
    (Instant::now() + delay < deadline).then_some(delay)
}

/// The results of the keys still pending when time ran out after `rounds`
/// rounds: each an [`Error::Timeout`] of `operation` carrying the key's last
/// error, if it had one.
pub(super) fn timed_out<'a, K: 'a, T: 'a>(
    pending: BTreeMap<K, Option<Error>>,
    operation: &'a str,
    timeout: Duration,
    rounds: u32,
) -> impl Iterator<Item = (K, Result<T>)> + 'a {
    pending.into_iter().map(move |(key, last)| {
        let error = Error::Timeout {
            operation: operation.to_owned(),
            timeout,
            attempts: rounds,
            last: last.map(Box::new),
        };
        (key, Err(error))
    })
}

pub(super) fn group_partitions(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    topics
}
