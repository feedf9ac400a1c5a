//! Topics and partitions: create, delete, list, describe, add partitions.
//!
//! Also holds the per-resource retry loop the other admin calls of this
//! crate share: each attempt sends one request for the resources still
//! pending, settles the resources whose answer is final and retries the
//! rest after a backoff, until the call's deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::network::{BrokerConnection, Cluster, RequestOptions};
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
use crate::protocol::{ApiKey, ErrorCode, Uuid};

use super::common::{
    broker_side_timeout, needs_version, negotiated, retry_each, AuthorizedOperations,
};
use super::configs::ConfigEntry;
use super::{Admin, Error, Result};

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

/// The guard of `mutex`, even if a panic poisoned it.
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl CreatedTopic {
    /// A topic that an earlier, unanswered attempt of this call created: its
    /// id and the broker's view of it are unknown, only what was asked for.
    fn created_by_unanswered_attempt(asked: &NewTopic) -> CreatedTopic {
        let request = asked.to_request();
        CreatedTopic {
            topic_id: None,
            num_partitions: (request.num_partitions >= 0).then_some(request.num_partitions),
            replication_factor: (request.replication_factor >= 0)
                .then_some(request.replication_factor),
            configs: None,
            config_error: None,
        }
    }

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
        // Topics of an attempt that got no answer (timed out, connection
        // lost): the broker may have created them, so a retry that finds
        // them existing found this call's own work.
        let maybe_created: std::sync::Mutex<BTreeSet<String>> = Default::default();
        let validate_only = options.validate_only;
        retry_each(
            self.cluster(),
            "create topics",
            timeout,
            by_name.keys().cloned(),
            controller_retriable,
            |pending| {
                let (by_name, maybe_created) = (&by_name, &maybe_created);
                async move {
                    let conn = controller_connection(self.cluster()).await?;
                    let version = negotiated(&conn, ApiKey::CreateTopics)?;
                    let (broker_timeout, send_options) = broker_side_timeout(
                        self.cluster(),
                        deadline.saturating_duration_since(Instant::now()),
                        version,
                    );
                    let request = CreateTopicsRequest {
                        topics: pending.iter().map(|n| by_name[n].to_request()).collect(),
                        timeout_ms: broker_timeout,
                        validate_only,
                        ..Default::default()
                    };
                    let response = match conn.send_with(&request, send_options).await {
                        Ok(response) => response,
                        Err(e) => {
                            if !validate_only {
                                lock(maybe_created).extend(pending);
                            }
                            return Err(e);
                        }
                    };
                    let ours = lock(maybe_created);
                    Ok(response
                        .topics
                        .into_iter()
                        .map(|t| {
                            let name = t.name.clone();
                            let result = if t.error_code == ErrorCode::TopicAlreadyExists.code()
                                && ours.contains(&name)
                            {
                                tracing::debug!(
                                    topic = %name,
                                    "TOPIC_ALREADY_EXISTS after an unanswered attempt: created by this call"
                                );
                                Ok(CreatedTopic::created_by_unanswered_attempt(by_name[&name]))
                            } else {
                                CreatedTopic::from_result(t)
                            };
                            (name, result)
                        })
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
                let (broker_timeout, send_options) = broker_side_timeout(
                    self.cluster(),
                    deadline.saturating_duration_since(Instant::now()),
                    version,
                );
                let mut request = DeleteTopicsRequest {
                    timeout_ms: broker_timeout,
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
                let response = conn.send_with(&request, send_options).await?;
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
                let (broker_timeout, send_options) = broker_side_timeout(
                    self.cluster(),
                    deadline.saturating_duration_since(Instant::now()),
                    version,
                );
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
                    timeout_ms: broker_timeout,
                    ..Default::default()
                };
                let response = conn.send_with(&request, send_options).await?;
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
                let (broker_timeout, send_options) = broker_side_timeout(
                    self.cluster(),
                    deadline.saturating_duration_since(Instant::now()),
                    version,
                );
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
                    timeout_ms: broker_timeout,
                    validate_only: options.validate_only,
                    ..Default::default()
                };
                let response = conn.send_with(&request, send_options).await?;
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
