//! Topics and partitions: create, delete, list, describe, add partitions.
//!
//! Also holds the per-resource retry loop the other admin calls of this
//! crate share: each attempt sends one request for the resources still
//! pending, settles the resources whose answer is final and retries the
//! rest after a backoff, until the call's deadline.

use crate::network::RequestOptions;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::network::{Backoff, BrokerConnection, Cluster};
use crate::protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use crate::protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use crate::protocol::messages::create_topics_response::CreatableTopicResult;
use crate::protocol::messages::delete_topics_request::DeleteTopicState;
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::metadata_response::MetadataResponseTopic;
use crate::protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, MetadataRequest,
};
use crate::protocol::{ApiKey, ErrorCode, Uuid, VersionRange};

use super::cluster_info::AuthorizedOperations;
use super::configs::ConfigEntry;
use super::{Admin, Error, Result};

// ---------------------------------------------------------------------------
// Shared plumbing for this crate's admin calls
// ---------------------------------------------------------------------------

/// A duration as the `timeout_ms` field of a request (saturating, at least 1).
pub(super) fn timeout_ms(timeout: Duration) -> i32 {
    i32::try_from(timeout.as_millis())
        .unwrap_or(i32::MAX)
        .max(1)
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

/// A connection to the controller named in metadata, or to any broker when
/// the controller is unknown (KRaft brokers forward controller requests).
pub(super) async fn controller_connection(cluster: &Cluster) -> Result<BrokerConnection> {
    let metadata = cluster.metadata().await?;
    match metadata.controller_id {
        Some(id) if metadata.brokers.contains_key(&id) => cluster.broker_connection(id).await,
        _ => cluster.any_connection().await,
    }
}

/// Whether a per-topic error of CreateTopics, DeleteTopics or
/// CreatePartitions is worth another attempt: the controller moved or the
/// controller mutation quota was hit. Everything else is the broker's final
/// word on that topic.
pub(super) fn controller_retriable(error: &Error) -> bool {
    matches!(
        error.error_code(),
        Some(ErrorCode::NotController | ErrorCode::ThrottlingQuotaExceeded)
    )
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

// ---------------------------------------------------------------------------
// Creating topics
// ---------------------------------------------------------------------------

/// A topic to create.
///
/// ```
/// use ferrokafka::admin::NewTopic;
///
/// // 6 partitions, 3 replicas each, compacted.
/// let topic = NewTopic::new("users", 6, 3).config("cleanup.policy", "compact");
/// // The broker's defaults for both.
/// let defaults = NewTopic::with_defaults("events");
/// // Partition 0 on brokers 1 and 2, partition 1 on brokers 2 and 3.
/// let placed = NewTopic::with_assignments("placed", [(0, vec![1, 2]), (1, vec![2, 3])]);
/// # let _ = (topic, defaults, placed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic's name.
    pub name: String,
    /// The number of partitions; `None` for the broker's `num.partitions`
    /// (needs CreateTopics v4+). Ignored when `assignments` is not empty.
    pub num_partitions: Option<i32>,
    /// The replication factor; `None` for the broker's
    /// `default.replication.factor` (needs CreateTopics v4+). Ignored when
    /// `assignments` is not empty.
    pub replication_factor: Option<i16>,
    /// An explicit placement: partition index → broker ids (the first is the
    /// preferred leader). Empty to let the controller place replicas.
    pub assignments: BTreeMap<i32, Vec<i32>>,
    /// Topic configuration overrides (`retention.ms`, `cleanup.policy`, ...).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with `num_partitions` partitions of `replication_factor` replicas.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            num_partitions: Some(num_partitions),
            replication_factor: Some(replication_factor),
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    /// A topic with the broker's default partition count and replication factor.
    pub fn with_defaults(name: impl Into<String>) -> Self {
        NewTopic {
            name: name.into(),
            num_partitions: None,
            replication_factor: None,
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        }
    }

    /// A topic placed explicitly: partition index → replica broker ids.
    pub fn with_assignments(
        name: impl Into<String>,
        assignments: impl IntoIterator<Item = (i32, Vec<i32>)>,
    ) -> Self {
        NewTopic {
            assignments: assignments.into_iter().collect(),
            ..NewTopic::with_defaults(name)
        }
    }

    /// Adds a configuration override.
    #[must_use]
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(name.into(), value.into());
        self
    }

    fn to_request(&self) -> CreatableTopic {
        let explicit = !self.assignments.is_empty();
        CreatableTopic {
            name: self.name.clone(),
            num_partitions: if explicit {
                -1
            } else {
                self.num_partitions.unwrap_or(-1)
            },
            replication_factor: if explicit {
                -1
            } else {
                self.replication_factor.unwrap_or(-1)
            },
            assignments: self
                .assignments
                .iter()
                .map(|(&partition_index, brokers)| CreatableReplicaAssignment {
                    partition_index,
                    broker_ids: brokers.clone(),
                    ..Default::default()
                })
                .collect(),
            configs: self
                .configs
                .iter()
                .map(|(name, value)| CreatableTopicConfig {
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }
}

/// Options of [`Admin::create_topics`].
#[derive(Debug, Clone, Default)]
pub struct CreateTopicsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`); also sent
    /// to the controller as the request's timeout.
    pub timeout: Option<Duration>,
    /// Only check that the topics could be created (CreateTopics v1+).
    pub validate_only: bool,
}

/// What the controller reports about a created (or validated) topic.
///
/// Brokers before CreateTopics v5 report nothing but success, so every
/// field is optional.
#[derive(Debug)]
pub struct CreatedTopic {
    /// The new topic's id (CreateTopics v7+, not for `validate_only`).
    pub topic_id: Option<Uuid>,
    /// The number of partitions (v5+).
    pub num_partitions: Option<i32>,
    /// The replication factor (v5+).
    pub replication_factor: Option<i16>,
    /// The topic's resulting configuration (v5+), unless the broker could not
    /// describe it (see `config_error`).
    pub configs: Option<Vec<ConfigEntry>>,
    /// Why the configuration is missing although the topic was created, if
    /// the broker said so (for example when describing configs is not
    /// authorized).
    pub config_error: Option<Error>,
}

impl CreatedTopic {
    fn from_result(result: CreatableTopicResult) -> Result<CreatedTopic> {
        Error::check(
            ApiKey::CreateTopics,
            result.error_code,
            result.error_message.as_deref(),
        )?;
        let config_error =
            Error::check(ApiKey::CreateTopics, result.topic_config_error_code, None).err();
        Ok(CreatedTopic {
            topic_id: (result.topic_id != Uuid::ZERO).then_some(result.topic_id),
            num_partitions: (result.num_partitions >= 0).then_some(result.num_partitions),
            replication_factor: (result.replication_factor >= 0)
                .then_some(result.replication_factor),
            configs: result.configs.map(|configs| {
                configs
                    .into_iter()
                    .map(ConfigEntry::from_created_topic)
                    .collect()
            }),
            config_error,
        })
    }
}

// ---------------------------------------------------------------------------
// Deleting, listing and describing topics
// ---------------------------------------------------------------------------

/// Options of [`Admin::delete_topics`] and [`Admin::delete_topics_by_id`].
#[derive(Debug, Clone, Default)]
pub struct DeleteTopicsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Options of [`Admin::list_topics`].
#[derive(Debug, Clone, Default)]
pub struct ListTopicsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
    /// Also list internal topics (`__consumer_offsets`, ...).
    pub include_internal: bool,
}

/// A topic as [`Admin::list_topics`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// The topic's name.
    pub name: String,
    /// Its id (Metadata v10+).
    pub topic_id: Option<Uuid>,
    /// Whether it is internal.
    pub is_internal: bool,
}

/// Options of [`Admin::describe_topics`].
#[derive(Debug, Clone, Default)]
pub struct DescribeTopicsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
    /// Ask for the operations this client may perform on each topic
    /// (Metadata v8+).
    pub include_authorized_operations: bool,
}

/// One partition of a described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitionInfo {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id, `None` while there is no leader.
    pub leader: Option<i32>,
    /// The leader epoch (Metadata v7+).
    pub leader_epoch: Option<i32>,
    /// All replicas' broker ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on offline log dirs (Metadata v5+).
    pub offline_replicas: Vec<i32>,
}

/// A described topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicDescription {
    /// The topic's name.
    pub name: String,
    /// Its id (Metadata v10+).
    pub topic_id: Option<Uuid>,
    /// Whether it is internal.
    pub is_internal: bool,
    /// Its partitions, by index.
    pub partitions: Vec<TopicPartitionInfo>,
    /// What this client may do with the topic, when asked for and reported.
    pub authorized_operations: Option<AuthorizedOperations>,
}

impl TopicDescription {
    fn from_metadata(topic: MetadataResponseTopic, name: String) -> Result<TopicDescription> {
        Error::check(ApiKey::Metadata, topic.error_code, Some(&name))?;
        let mut partitions: Vec<TopicPartitionInfo> = topic
            .partitions
            .into_iter()
            .map(|p| TopicPartitionInfo {
                partition: p.partition_index,
                leader: (p.leader_id >= 0).then_some(p.leader_id),
                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                replicas: p.replica_nodes,
                isr: p.isr_nodes,
                offline_replicas: p.offline_replicas,
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        Ok(TopicDescription {
            name,
            topic_id: (topic.topic_id != Uuid::ZERO).then_some(topic.topic_id),
            is_internal: topic.is_internal,
            partitions,
            authorized_operations: AuthorizedOperations::from_bits(
                topic.topic_authorized_operations,
            ),
        })
    }
}

/// New partitions for an existing topic, for [`Admin::create_partitions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    /// The topic's partition count after the call (not the number added).
    pub total_count: i32,
    /// Optionally, the replicas of each new partition, in order (broker ids,
    /// preferred leader first); one entry per added partition.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl NewPartitions {
    /// Grow the topic to `total_count` partitions, placed by the controller.
    pub fn increase_to(total_count: i32) -> Self {
        NewPartitions {
            total_count,
            assignments: None,
        }
    }

    /// Grow the topic to `total_count` partitions placed as given.
    pub fn increase_to_with(total_count: i32, assignments: Vec<Vec<i32>>) -> Self {
        NewPartitions {
            total_count,
            assignments: Some(assignments),
        }
    }
}

/// Options of [`Admin::create_partitions`].
#[derive(Debug, Clone, Default)]
pub struct CreatePartitionsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
    /// Only check that the partitions could be created.
    pub validate_only: bool,
}

fn topic_names<S: AsRef<str>>(names: &[S]) -> Vec<String> {
    names.iter().map(|n| n.as_ref().to_owned()).collect()
}

impl Admin {
    /// Creates topics, through the controller.
    ///
    /// Returns a result per topic; the outer error is for failures of the
    /// whole call (no broker reachable, no common CreateTopics version, the
    /// deadline passed before any answer). Topics the controller refuses
    /// (`TOPIC_ALREADY_EXISTS`, `INVALID_REPLICATION_FACTOR`,
    /// `POLICY_VIOLATION`, ...) fail on their own; `NOT_CONTROLLER` and
    /// `THROTTLING_QUOTA_EXCEEDED` are retried until the deadline.
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::Admin) -> Result<(), ferrokafka::admin::Error> {
    /// use ferrokafka::admin::{CreateTopicsOptions, NewTopic};
    ///
    /// let topics = [NewTopic::new("orders", 12, 3).config("retention.ms", "86400000")];
    /// let created = admin.create_topics(&topics, CreateTopicsOptions::default()).await?;
    /// match &created["orders"] {
    ///     Ok(topic) => println!("created with id {:?}", topic.topic_id),
    ///     Err(e) => println!("not created: {e}"),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn create_topics(
        &self,
        topics: &[NewTopic],
        options: CreateTopicsOptions,
    ) -> Result<BTreeMap<String, Result<CreatedTopic>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!(
            "admin.create_topics",
            topics = topics.len(),
            validate_only = options.validate_only
        );
        let by_name: BTreeMap<String, &NewTopic> =
            topics.iter().map(|t| (t.name.clone(), t)).collect();
        let deadline = Instant::now() + timeout;
        retry_each(
            self.cluster(),
            "create topics",
            timeout,
            by_name.keys().cloned(),
            controller_retriable,
            |pending| {
                let by_name = &by_name;
                async move {
                    let conn = controller_connection(self.cluster()).await?;
                    let version = negotiated(&conn, ApiKey::CreateTopics)?;
                    let request = CreateTopicsRequest {
                        topics: pending.iter().map(|n| by_name[n].to_request()).collect(),
                        timeout_ms: timeout_ms(deadline.saturating_duration_since(Instant::now())),
                        validate_only: options.validate_only,
                        ..Default::default()
                    };
                    let response = conn
                        .send_with(&request, RequestOptions::default().with_version(version))
                        .await?;
                    Ok(response
                        .topics
                        .into_iter()
                        .map(|t| (t.name.clone(), CreatedTopic::from_result(t)))
                        .collect())
                }
            },
        )
        .instrument(span)
        .await
    }

    /// Deletes topics by name, through the controller.
    ///
    /// A topic that does not exist fails with `UNKNOWN_TOPIC_OR_PARTITION`.
    pub async fn delete_topics<S: AsRef<str>>(
        &self,
        names: &[S],
        options: DeleteTopicsOptions,
    ) -> Result<BTreeMap<String, Result<()>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!("admin.delete_topics", topics = names.len());
        let deadline = Instant::now() + timeout;
        retry_each(
            self.cluster(),
            "delete topics",
            timeout,
            topic_names(names),
            controller_retriable,
            |pending| async move {
                let conn = controller_connection(self.cluster()).await?;
                let version = negotiated(&conn, ApiKey::DeleteTopics)?;
                let mut request = DeleteTopicsRequest {
                    timeout_ms: timeout_ms(deadline.saturating_duration_since(Instant::now())),
                    ..Default::default()
                };
                if version >= 6 {
                    request.topics = pending
                        .iter()
                        .map(|name| DeleteTopicState {
                            name: Some(name.clone()),
                            ..Default::default()
                        })
                        .collect();
                } else {
                    request.topic_names = pending;
                }
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                Ok(response
                    .responses
                    .into_iter()
                    .filter_map(|r| {
                        let result = Error::check(
                            ApiKey::DeleteTopics,
                            r.error_code,
                            r.error_message.as_deref(),
                        );
                        r.name.map(|name| (name, result))
                    })
                    .collect())
            },
        )
        .instrument(span)
        .await
    }

    /// Deletes topics by id (DeleteTopics v6+), through the controller.
    ///
    /// Fails as a whole with [`Error::UnsupportedVersion`] on brokers without
    /// DeleteTopics v6.
    pub async fn delete_topics_by_id(
        &self,
        ids: &[Uuid],
        options: DeleteTopicsOptions,
    ) -> Result<BTreeMap<Uuid, Result<()>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!("admin.delete_topics_by_id", topics = ids.len());
        let deadline = Instant::now() + timeout;
        retry_each(
            self.cluster(),
            "delete topics by id",
            timeout,
            ids.iter().copied(),
            controller_retriable,
            |pending| async move {
                let conn = controller_connection(self.cluster()).await?;
                let version = negotiated(&conn, ApiKey::DeleteTopics)?;
                if version < 6 {
                    return Err(needs_version(&conn, ApiKey::DeleteTopics, 6));
                }
                let request = DeleteTopicsRequest {
                    topics: pending
                        .iter()
                        .map(|&topic_id| DeleteTopicState {
                            name: None,
                            topic_id,
                            ..Default::default()
                        })
                        .collect(),
                    timeout_ms: timeout_ms(deadline.saturating_duration_since(Instant::now())),
                    ..Default::default()
                };
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                Ok(response
                    .responses
                    .into_iter()
                    .map(|r| {
                        let result = Error::check(
                            ApiKey::DeleteTopics,
                            r.error_code,
                            r.error_message.as_deref(),
                        );
                        (r.topic_id, result)
                    })
                    .collect())
            },
        )
        .instrument(span)
        .await
    }

    /// Lists the cluster's topics by name (without internal topics unless
    /// asked), from any broker.
    pub async fn list_topics(
        &self,
        options: ListTopicsOptions,
    ) -> Result<BTreeMap<String, TopicListing>> {
        let span = tracing::info_span!("admin.list_topics");
        let cluster = self.cluster();
        let response = cluster
            .retry(
                "list topics",
                Some(self.timeout(options.timeout)),
                || async {
                    let conn = cluster.any_connection().await?;
                    let version = negotiated(&conn, ApiKey::Metadata)?;
                    let request = MetadataRequest {
                        // Null asks for every topic from v1 on; v0 uses an empty list.
                        topics: if version >= 1 { None } else { Some(Vec::new()) },
                        allow_auto_topic_creation: version < 4,
                        ..Default::default()
                    };
                    conn.send_with(&request, RequestOptions::default().with_version(version))
                        .await
                },
            )
            .instrument(span)
            .await?;
        Ok(response
            .topics
            .into_iter()
            .filter(|t| options.include_internal || !t.is_internal)
            // A topic still electing leaders is listed; one the broker
            // refuses to describe (unauthorized, invalid) is not.
            .filter(|t| t.error_code == 0 || t.error_code == ErrorCode::LeaderNotAvailable.code())
            .filter_map(|t| {
                let name = t.name?;
                Some((
                    name.clone(),
                    TopicListing {
                        name,
                        topic_id: (t.topic_id != Uuid::ZERO).then_some(t.topic_id),
                        is_internal: t.is_internal,
                    },
                ))
            })
            .collect())
    }

    /// Describes topics from any broker's metadata: partitions with leader,
    /// leader epoch, replicas, ISR and offline replicas, the topic id, whether
    /// it is internal, and optionally the authorized operations.
    ///
    /// A missing topic fails with `UNKNOWN_TOPIC_OR_PARTITION`; a topic
    /// still being created (`LEADER_NOT_AVAILABLE`) is asked for again until
    /// the deadline.
    pub async fn describe_topics<S: AsRef<str>>(
        &self,
        names: &[S],
        options: DescribeTopicsOptions,
    ) -> Result<BTreeMap<String, Result<TopicDescription>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!("admin.describe_topics", topics = names.len());
        let cluster = self.cluster();
        retry_each(
            cluster,
            "describe topics",
            timeout,
            topic_names(names),
            |e| e.error_code() == Some(ErrorCode::LeaderNotAvailable),
            |pending| async move {
                let conn = cluster.any_connection().await?;
                let version = negotiated(&conn, ApiKey::Metadata)?;
                let mut request = MetadataRequest {
                    topics: Some(
                        pending
                            .iter()
                            .map(|name| MetadataRequestTopic {
                                name: Some(name.clone()),
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    allow_auto_topic_creation: version < 4,
                    ..Default::default()
                };
                if version >= 8 {
                    request.include_topic_authorized_operations =
                        options.include_authorized_operations;
                }
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                Ok(response
                    .topics
                    .into_iter()
                    .filter_map(|t| {
                        let name = t.name.clone()?;
                        let mut description = TopicDescription::from_metadata(t, name.clone());
                        if !options.include_authorized_operations {
                            if let Ok(d) = &mut description {
                                d.authorized_operations = None;
                            }
                        }
                        Some((name, description))
                    })
                    .collect())
            },
        )
        .instrument(span)
        .await
    }

    /// Adds partitions to existing topics, through the controller
    /// (CreatePartitions). Each topic's `total_count` is the count after the
    /// call; asking for fewer or the same number of partitions fails with
    /// `INVALID_PARTITIONS`.
    pub async fn create_partitions(
        &self,
        topics: &BTreeMap<String, NewPartitions>,
        options: CreatePartitionsOptions,
    ) -> Result<BTreeMap<String, Result<()>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!(
            "admin.create_partitions",
            topics = topics.len(),
            validate_only = options.validate_only
        );
        let deadline = Instant::now() + timeout;
        retry_each(
            self.cluster(),
            "create partitions",
            timeout,
            topics.keys().cloned(),
            controller_retriable,
            |pending| async move {
                let conn = controller_connection(self.cluster()).await?;
                let version = negotiated(&conn, ApiKey::CreatePartitions)?;
                let request = CreatePartitionsRequest {
                    topics: pending
                        .iter()
                        .map(|name| {
                            let new = &topics[name];
                            CreatePartitionsTopic {
                                name: name.clone(),
                                count: new.total_count,
                                assignments: new.assignments.as_ref().map(|a| {
                                    a.iter()
                                        .map(|brokers| CreatePartitionsAssignment {
                                            broker_ids: brokers.clone(),
                                            ..Default::default()
                                        })
                                        .collect()
                                }),
                                ..Default::default()
                            }
                        })
                        .collect(),
                    timeout_ms: timeout_ms(deadline.saturating_duration_since(Instant::now())),
                    validate_only: options.validate_only,
                    ..Default::default()
                };
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                Ok(response
                    .results
                    .into_iter()
                    .map(|r| {
                        let result = Error::check(
                            ApiKey::CreatePartitions,
                            r.error_code,
                            r.error_message.as_deref(),
                        );
                        (r.name, result)
                    })
                    .collect())
            },
        )
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    //! The admin calls against an in-process two-broker fake cluster: routing
    //! (controller, leaders, named brokers), per-resource results and
    //! retries after NOT_CONTROLLER and NOT_LEADER_OR_FOLLOWER.

    use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::admin::{
        AlterConfigOp, ConfigResource, ConfigSource, DescribeConfigsOptions, OffsetSpec,
        TopicPartition,
    };
    use crate::network::testing::{api_versions, spawn_tcp, Handler, Reply};
    use crate::network::ClientConfig;
    use crate::protocol::messages::create_topics_response::CreatableTopicResult;
    use crate::protocol::messages::describe_configs_response::{
        DescribeConfigsResourceResult, DescribeConfigsResult,
    };
    use crate::protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    use crate::protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use crate::protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition,
    };
    use crate::protocol::messages::{
        CreateTopicsResponse, DescribeConfigsResponse, IncrementalAlterConfigsResponse,
        ListOffsetsResponse, MetadataResponse,
    };
    use crate::protocol::{RequestKind, ResponseKind};

    /// Shared state of the fake cluster.
    #[derive(Default)]
    struct Fake {
        ports: Mutex<Vec<(i32, u16)>>,
        controller: AtomicI32,
        leader_of_p1: AtomicI32,
        /// (broker, partitions) of each ListOffsets request.
        list_offsets: Mutex<Vec<(i32, Vec<i32>)>>,
        create_topics_calls: AtomicUsize,
        /// (broker, resource names) of each config request.
        config_requests: Mutex<Vec<(i32, Vec<String>)>>,
    }

    fn metadata(fake: &Fake) -> MetadataResponse {
        let brokers = fake
            .ports
            .lock()
            .unwrap()
            .iter()
            .map(|&(id, port)| MetadataResponseBroker {
                node_id: id,
                host: "127.0.0.1".into(),
                port: i32::from(port),
                ..Default::default()
            })
            .collect();
        let partition = |index, leader| MetadataResponsePartition {
            partition_index: index,
            leader_id: leader,
            leader_epoch: 4,
            replica_nodes: vec![1, 2],
            isr_nodes: vec![1, 2],
            ..Default::default()
        };
        MetadataResponse {
            brokers,
            cluster_id: Some("fake".into()),
            controller_id: fake.controller.load(Ordering::SeqCst),
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                topic_id: Uuid::from_u64_pair(7, 7),
                partitions: vec![
                    partition(0, 1),
                    partition(1, fake.leader_of_p1.load(Ordering::SeqCst)),
                    partition(2, 1),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn handler(node: i32, fake: Arc<Fake>) -> Handler {
        Arc::new(move |header, body| {
            let reply = |body| Reply::now(body, header);
            match body {
                RequestKind::ApiVersions(_) => {
                    reply(ResponseKind::ApiVersions(api_versions(|api| {
                        Some(api.valid_versions())
                    })))
                }
                RequestKind::Metadata(_) => reply(ResponseKind::Metadata(metadata(&fake))),
                RequestKind::CreateTopics(r) => {
                    fake.create_topics_calls.fetch_add(1, Ordering::SeqCst);
                    // Broker 2 is the controller, though metadata first says 1.
                    let controller = 2;
                    let topics = r
                        .topics
                        .iter()
                        .map(|t| {
                            let mut result = CreatableTopicResult {
                                name: t.name.clone(),
                                num_partitions: t.num_partitions,
                                replication_factor: t.replication_factor,
                                ..Default::default()
                            };
                            if node != controller {
                                result.error_code = ErrorCode::NotController.code();
                            } else if t.name == "exists" {
                                result.error_code = ErrorCode::TopicAlreadyExists.code();
                                result.error_message = Some("it does".into());
                            } else {
                                result.topic_id = Uuid::from_u64_pair(1, 2);
                            }
                            result
                        })
                        .collect();
                    // Metadata tells the truth from the first refusal on.
                    fake.controller.store(controller, Ordering::SeqCst);
                    reply(ResponseKind::CreateTopics(CreateTopicsResponse {
                        topics,
                        ..Default::default()
                    }))
                }
                RequestKind::ListOffsets(r) => {
                    let mut seen = Vec::new();
                    let topics = r
                        .topics
                        .iter()
                        .map(|t| ListOffsetsTopicResponse {
                            name: t.name.clone(),
                            partitions: t
                                .partitions
                                .iter()
                                .map(|p| {
                                    seen.push(p.partition_index);
                                    let mut answer = ListOffsetsPartitionResponse {
                                        partition_index: p.partition_index,
                                        offset: i64::from(p.partition_index) * 100
                                            + i64::from(node),
                                        timestamp: p.timestamp,
                                        leader_epoch: 4,
                                        ..Default::default()
                                    };
                                    if p.partition_index == 1 && node == 2 {
                                        // Leadership of p1 moved to broker 1.
                                        fake.leader_of_p1.store(1, Ordering::SeqCst);
                                        answer.error_code = ErrorCode::NotLeaderOrFollower.code();
                                    }
                                    answer
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect();
                    fake.list_offsets.lock().unwrap().push((node, seen));
                    reply(ResponseKind::ListOffsets(ListOffsetsResponse {
                        topics,
                        ..Default::default()
                    }))
                }
                RequestKind::DescribeConfigs(r) => {
                    let names = r.resources.iter().map(|r| r.resource_name.clone());
                    fake.config_requests
                        .lock()
                        .unwrap()
                        .push((node, names.collect()));
                    let results = r
                        .resources
                        .iter()
                        .map(|res| DescribeConfigsResult {
                            resource_type: res.resource_type,
                            resource_name: res.resource_name.clone(),
                            configs: vec![DescribeConfigsResourceResult {
                                name: "answered.by".into(),
                                value: Some(node.to_string()),
                                config_source: 1,
                                config_type: 3,
                                ..Default::default()
                            }],
                            ..Default::default()
                        })
                        .collect();
                    reply(ResponseKind::DescribeConfigs(DescribeConfigsResponse {
                        results,
                        ..Default::default()
                    }))
                }
                RequestKind::IncrementalAlterConfigs(r) => {
                    let names = r.resources.iter().map(|r| r.resource_name.clone());
                    fake.config_requests
                        .lock()
                        .unwrap()
                        .push((node, names.collect()));
                    let responses = r
                        .resources
                        .iter()
                        .map(|res| {
                            let bad = res.configs.iter().any(|c| c.name == "bad");
                            AlterConfigsResourceResponse {
                                resource_type: res.resource_type,
                                resource_name: res.resource_name.clone(),
                                error_code: if bad {
                                    ErrorCode::InvalidConfig.code()
                                } else {
                                    0
                                },
                                ..Default::default()
                            }
                        })
                        .collect();
                    reply(ResponseKind::IncrementalAlterConfigs(
                        IncrementalAlterConfigsResponse {
                            responses,
                            ..Default::default()
                        },
                    ))
                }
                _ => Reply::Close,
            }
        })
    }

    async fn fake_admin() -> (Arc<Fake>, Admin) {
        let fake = Arc::new(Fake::default());
        fake.controller.store(1, Ordering::SeqCst);
        fake.leader_of_p1.store(2, Ordering::SeqCst);
        let mut addrs = Vec::new();
        for id in [1, 2] {
            let addr = spawn_tcp(handler(id, fake.clone())).await;
            let port = addr.rsplit_once(':').unwrap().1.parse().unwrap();
            fake.ports.lock().unwrap().push((id, port));
            addrs.push(addr);
        }
        let config = ClientConfig::builder()
            .bootstrap_servers(addrs)
            .retry_backoff(Duration::from_millis(5))
            .retry_backoff_max(Duration::from_millis(20))
            .default_api_timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        (fake, Admin::connect(config).await.unwrap())
    }

    #[tokio::test]
    async fn create_topics_follows_a_moved_controller_and_reports_per_topic() {
        let (fake, admin) = fake_admin().await;
        let created = admin
            .create_topics(
                &[NewTopic::new("a", 3, 2), NewTopic::new("exists", 1, 1)],
                CreateTopicsOptions::default(),
            )
            .await
            .unwrap();
        // First attempt: broker 1 answers NOT_CONTROLLER for both; the retry
        // goes to broker 2 after the metadata refresh.
        assert_eq!(fake.create_topics_calls.load(Ordering::SeqCst), 2);
        let a = created["a"].as_ref().unwrap();
        assert_eq!(a.topic_id, Some(Uuid::from_u64_pair(1, 2)));
        assert_eq!((a.num_partitions, a.replication_factor), (Some(3), Some(2)));
        let err = created["exists"].as_ref().unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::TopicAlreadyExists));
        assert!(err.to_string().contains("it does"), "{err}");
    }

    #[tokio::test]
    async fn list_offsets_groups_by_leader_and_retries_moved_partitions() {
        let (fake, admin) = fake_admin().await;
        let specs: BTreeMap<TopicPartition, OffsetSpec> = (0..3)
            .map(|p| (TopicPartition::new("t", p), OffsetSpec::Latest))
            .collect();
        let offsets = admin
            .list_offsets(&specs, Default::default())
            .await
            .unwrap();
        let got: Vec<i64> = offsets
            .values()
            .map(|r| r.as_ref().unwrap().offset)
            .collect();
        // Partition p answered by broker b has offset 100 p + b; p1 moved to 1.
        assert_eq!(got, [1, 101, 201]);
        assert_eq!(
            offsets[&TopicPartition::new("t", 0)]
                .as_ref()
                .unwrap()
                .leader_epoch,
            Some(4)
        );
        let mut requests = fake.list_offsets.lock().unwrap().clone();
        requests.sort();
        // One request per leader (p0 and p2 together), then p1 again at its new leader.
        assert_eq!(requests, [(1, vec![0, 2]), (1, vec![1]), (2, vec![1])]);
    }

    #[tokio::test]
    async fn configs_of_a_broker_go_to_that_broker() {
        let (fake, admin) = fake_admin().await;
        let topic = ConfigResource::topic("t");
        let broker2 = ConfigResource::broker(2);
        let described = admin
            .describe_configs(
                &[topic.clone(), broker2.clone()],
                DescribeConfigsOptions::default(),
            )
            .await
            .unwrap();
        let entry = described[&broker2]
            .as_ref()
            .unwrap()
            .get("answered.by")
            .unwrap()
            .clone();
        assert_eq!(entry.value.as_deref(), Some("2"));
        assert_eq!(entry.source, ConfigSource::DynamicTopicConfig);
        assert!(described[&topic].is_ok());
        let requests = fake.config_requests.lock().unwrap().clone();
        assert!(
            requests.contains(&(2, vec!["2".to_owned()])),
            "{requests:?}"
        );
        assert!(requests.iter().any(|(_, names)| names == &["t".to_owned()]));

        let changes = BTreeMap::from([
            (topic.clone(), vec![AlterConfigOp::set("retention.ms", "1")]),
            (
                ConfigResource::topic("u"),
                vec![AlterConfigOp::set("bad", "x")],
            ),
        ]);
        let altered = admin
            .incremental_alter_configs(&changes, Default::default())
            .await
            .unwrap();
        assert!(altered[&topic].is_ok());
        let err = altered[&ConfigResource::topic("u")].as_ref().unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::InvalidConfig));
    }

    #[tokio::test]
    async fn describe_topics_maps_metadata_and_missing_topics() {
        let (_fake, admin) = fake_admin().await;
        let described = admin
            .describe_topics(&["t"], DescribeTopicsOptions::default())
            .await
            .unwrap();
        let t = described["t"].as_ref().unwrap();
        assert_eq!(t.topic_id, Some(Uuid::from_u64_pair(7, 7)));
        assert_eq!(t.partitions.len(), 3);
        assert_eq!(t.partitions[1].leader, Some(2));
        assert_eq!(t.partitions[1].leader_epoch, Some(4));
        assert_eq!(t.authorized_operations, None);
        // The fake answers only for "t": other names get a protocol error.
        let described = admin
            .describe_topics(&["nope"], Default::default())
            .await
            .unwrap();
        assert!(matches!(described["nope"], Err(Error::Protocol { .. })));
    }

    #[tokio::test]
    async fn retry_each_settles_retries_and_times_out_per_key() {
        let cluster = Cluster::new(
            ClientConfig::builder()
                .bootstrap_servers(["127.0.0.1:1"])
                .retry_backoff(Duration::from_millis(1))
                .retry_backoff_max(Duration::from_millis(5))
                .build()
                .unwrap(),
        )
        .unwrap();
        let broker = |code: ErrorCode| Error::Broker {
            api: ApiKey::CreateTopics,
            code,
            message: None,
        };
        let attempts = AtomicUsize::new(0);
        let results = retry_each(
            &cluster,
            "test",
            Duration::from_millis(200),
            ["ok", "final", "again", "forever", "silent"],
            controller_retriable,
            |pending| {
                let n = attempts.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 1 {
                        // A whole attempt failing retriably is retried.
                        return Err(Error::Disconnected {
                            broker: "x".into(),
                            reason: "test".into(),
                        });
                    }
                    Ok(pending
                        .into_iter()
                        .filter(|k| *k != "silent")
                        .map(|k| {
                            let r = match k {
                                "ok" => Ok(k.len()),
                                "final" => Err(broker(ErrorCode::InvalidReplicationFactor)),
                                "again" if n < 2 => Err(broker(ErrorCode::NotController)),
                                "again" => Ok(0),
                                _ => Err(broker(ErrorCode::ThrottlingQuotaExceeded)),
                            };
                            (k, r)
                        })
                        .collect())
                }
            },
        )
        .await
        .unwrap();
        assert_eq!(*results["ok"].as_ref().unwrap(), 2);
        assert_eq!(
            results["final"].as_ref().unwrap_err().error_code(),
            Some(ErrorCode::InvalidReplicationFactor)
        );
        assert_eq!(*results["again"].as_ref().unwrap(), 0);
        match results["forever"].as_ref().unwrap_err() {
            Error::Timeout {
                last: Some(last), ..
            } => {
                assert_eq!(last.error_code(), Some(ErrorCode::ThrottlingQuotaExceeded))
            }
            other => panic!("{other}"),
        }
        assert!(matches!(results["silent"], Err(Error::Protocol { .. })));
        assert!(attempts.load(Ordering::SeqCst) >= 4);

        // No answer at all before the deadline: the call fails as a whole.
        let err = retry_each(
            &cluster,
            "test",
            Duration::from_millis(50),
            [1],
            broker_retriable,
            |_| async {
                Err::<Vec<(i32, Result<()>)>, _>(Error::Disconnected {
                    broker: "x".into(),
                    reason: "down".into(),
                })
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Timeout { last: Some(_), .. }), "{err}");
        // A non-retriable failure of a whole attempt is returned at once.
        let err = retry_each(
            &cluster,
            "test",
            Duration::from_secs(5),
            [1],
            broker_retriable,
            |_| async {
                Err::<Vec<(i32, Result<()>)>, _>(Error::Protocol {
                    broker: "x".into(),
                    reason: "garbage".into(),
                })
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Protocol { .. }), "{err}");
    }
}
