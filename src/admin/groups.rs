//! Consumer groups: listing, describing and deleting groups, and reading,
//! altering and deleting their committed offsets.
//!
//! This file also holds the private routing helpers that the other
//! coordinator-routed calls of this crate's admin client share (fan-out to
//! every broker, per-key coordinator rounds with retries).

use crate::network::RequestOptions;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tracing::Instrument;

use super::acls::{authorized_operations, AclOperation};
use super::common::{
    coordinator_rounds, fan_out_to_all_brokers, group_partitions, is_coordinator_retriable,
    replicate_error, TopicPartition,
};
use super::{Admin, Error, Result};
use crate::network::{BrokerConnection, BrokerInfo, Cluster, CoordinatorType};
use crate::protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use crate::protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use crate::protocol::messages::leave_group_request::MemberIdentity;
use crate::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use crate::protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use crate::protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, LeaveGroupRequest, ListGroupsRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
};
use crate::protocol::{ApiKey, Decodable, ErrorCode};

// ------------------------------------------------------------------ helpers

/// The connection to the coordinator of `key` and the coordinator itself.
pub(super) async fn coordinator_connection(
    cluster: &Cluster,
    kind: CoordinatorType,
    key: &str,
) -> Result<(BrokerInfo, BrokerConnection)> {
    let coordinator = cluster.find_coordinator(kind, key).await?;
    match cluster.connection(&coordinator.address()).await {
        Ok(conn) => Ok((coordinator, conn)),
        Err(e) => {
            if e.invalidates_coordinator() {
                cluster.invalidate_coordinator(kind, key);
            }
            Err(e)
        }
    }
}

/// Forgets the coordinator of `key` when `error` says it moved, and returns
/// the error.
fn forget_coordinator(cluster: &Cluster, key: &str, error: Error) -> Error {
    if error.invalidates_coordinator() {
        cluster.invalidate_coordinator(CoordinatorType::Group, key);
    }
    error
}

// -------------------------------------------------------------------- types

/// The state of a group, as the coordinator reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupState {
    /// Members are (re)joining.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Members have their assignments.
    Stable,
    /// The group is being removed.
    Dead,
    /// No members, but possibly committed offsets.
    Empty,
    /// (KIP-848 groups) assigning partitions.
    Assigning,
    /// (KIP-848 groups) members are converging on their assignments.
    Reconciling,
    /// A state this client does not know, as the broker spelled it.
    Unknown(String),
}

impl GroupState {
    /// Parses a state as the protocol spells it.
    pub fn parse(name: &str) -> GroupState {
        match name {
            "PreparingRebalance" => GroupState::PreparingRebalance,
            "CompletingRebalance" | "AwaitingSync" => GroupState::CompletingRebalance,
            "Stable" => GroupState::Stable,
            "Dead" => GroupState::Dead,
            "Empty" => GroupState::Empty,
            "Assigning" => GroupState::Assigning,
            "Reconciling" => GroupState::Reconciling,
            other => GroupState::Unknown(other.to_owned()),
        }
    }

    /// The protocol's spelling of this state.
    pub fn as_str(&self) -> &str {
        match self {
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
            GroupState::Empty => "Empty",
            GroupState::Assigning => "Assigning",
            GroupState::Reconciling => "Reconciling",
            GroupState::Unknown(s) => s,
        }
    }
}

/// The kind of a group (KIP-848 `group.type`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupType {
    /// A classic group (JoinGroup/SyncGroup protocol).
    Classic,
    /// A consumer group of the KIP-848 protocol.
    Consumer,
    /// A share group (KIP-932).
    Share,
    /// A type this client does not know.
    Unknown(String),
}

impl GroupType {
    /// Parses a type as the protocol spells it (case-insensitively).
    pub fn parse(name: &str) -> GroupType {
        match name.to_ascii_lowercase().as_str() {
            "classic" => GroupType::Classic,
            "consumer" => GroupType::Consumer,
            "share" => GroupType::Share,
            _ => GroupType::Unknown(name.to_owned()),
        }
    }

    /// The protocol's spelling of this type.
    pub fn as_str(&self) -> &str {
        match self {
            GroupType::Classic => "classic",
            GroupType::Consumer => "consumer",
            GroupType::Share => "share",
            GroupType::Unknown(s) => s,
        }
    }
}

/// Options of [`Admin::list_groups`].
#[derive(Debug, Clone, Default)]
pub struct ListGroupsOptions {
    /// Only groups in one of these states (ListGroups v4+); empty: all.
    pub states: Vec<GroupState>,
    /// Only groups of one of these types (ListGroups v5+); empty: all.
    pub types: Vec<GroupType>,
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A group as [`Admin::list_groups`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group id.
    pub group_id: String,
    /// The protocol type (`consumer` for consumer groups, empty for groups
    /// that only commit offsets).
    pub protocol_type: String,
    /// The state, when the broker reports it (ListGroups v4+).
    pub state: Option<GroupState>,
    /// The type, when the broker reports it (ListGroups v5+).
    pub group_type: Option<GroupType>,
    /// The broker that listed it (the group's coordinator).
    pub coordinator_id: i32,
}

/// What [`Admin::list_groups`] found.
#[derive(Debug)]
pub struct ListGroupsResult {
    /// The groups, sorted by id, from every broker that answered.
    pub groups: Vec<GroupListing>,
    /// The brokers that could not list their groups, and why.
    pub errors: Vec<(i32, Error)>,
}

/// Options of [`Admin::describe_consumer_groups`].
#[derive(Debug, Clone, Default)]
pub struct DescribeConsumerGroupsOptions {
    /// Ask for the operations the caller may perform on each group.
    pub include_authorized_operations: bool,
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A member's subscription, decoded from the consumer protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerSubscription {
    /// The version of the consumer protocol the member wrote.
    pub version: i16,
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// The assignor's user data.
    pub user_data: Option<Bytes>,
    /// The partitions the member owned before this rebalance (v1+).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation the member last joined (v2+; -1 if unknown).
    pub generation_id: i32,
    /// The member's rack (v3+).
    pub rack_id: Option<String>,
}

/// A member's assignment, decoded from the consumer protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerAssignment {
    /// The version of the consumer protocol the leader wrote.
    pub version: i16,
    /// The assigned partitions.
    pub partitions: Vec<TopicPartition>,
    /// The assignor's user data.
    pub user_data: Option<Bytes>,
}

/// Why consumer-protocol bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid consumer protocol {what}: {reason}")]
pub struct ConsumerProtocolError {
    /// `subscription` or `assignment`.
    pub what: &'static str,
    /// What was wrong.
    pub reason: String,
}

fn split_version(
    what: &'static str,
    bytes: &[u8],
) -> std::result::Result<(i16, Bytes), ConsumerProtocolError> {
    if bytes.len() < 2 {
        return Err(ConsumerProtocolError {
            what,
            reason: format!("{} bytes is too short for a version", bytes.len()),
        });
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    let version = buf.get_i16();
    if version < 0 {
        return Err(ConsumerProtocolError {
            what,
            reason: format!("negative version {version}"),
        });
    }
    Ok((version, buf))
}

/// One [`TopicPartition`] per partition of each `(topic, partitions)` pair,
/// as the consumer protocol lists owned and assigned partitions.
fn flatten(topics: impl IntoIterator<Item = (String, Vec<i32>)>) -> Vec<TopicPartition> {
    topics
        .into_iter()
        .flat_map(|(topic, partitions)| {
            partitions
                .into_iter()
                .map(move |p| TopicPartition::new(topic.clone(), p))
        })
        .collect()
}

impl ConsumerSubscription {
    /// Decodes a member's metadata as the consumer protocol writes it: a
    /// big-endian `i16` version, then a `ConsumerProtocolSubscription` of
    /// that version. Versions newer than this client knows are read as the
    /// newest known one (the protocol only appends fields).
    ///
    /// ```
    /// use ferrokafka::admin::ConsumerSubscription;
    ///
    /// // v0: version 0, one topic "t", no user data.
    /// let bytes = [0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];
    /// let s = ConsumerSubscription::decode(&bytes).unwrap();
    /// assert_eq!(s.topics, vec!["t".to_owned()]);
    /// ```
    pub fn decode(
        bytes: &[u8],
    ) -> std::result::Result<ConsumerSubscription, ConsumerProtocolError> {
        let (version, mut body) = split_version("subscription", bytes)?;
        let read = version.min(3);
        let m = ConsumerProtocolSubscription::decode(&mut body, read).map_err(|e| {
            ConsumerProtocolError {
                what: "subscription",
                reason: e.to_string(),
            }
        })?;
        Ok(ConsumerSubscription {
            version,
            topics: m.topics,
            user_data: m.user_data,
            owned_partitions: flatten(
                m.owned_partitions
                    .into_iter()
                    .map(|t| (t.topic, t.partitions)),
            ),
            generation_id: m.generation_id,
            rack_id: m.rack_id,
        })
    }
}

impl ConsumerAssignment {
    /// Decodes a member's assignment as the consumer protocol writes it: a
    /// big-endian `i16` version, then a `ConsumerProtocolAssignment` of that
    /// version (newer versions are read as the newest known one).
    pub fn decode(bytes: &[u8]) -> std::result::Result<ConsumerAssignment, ConsumerProtocolError> {
        let (version, mut body) = split_version("assignment", bytes)?;
        let read = version.min(3);
        let m = ConsumerProtocolAssignment::decode(&mut body, read).map_err(|e| {
            ConsumerProtocolError {
                what: "assignment",
                reason: e.to_string(),
            }
        })?;
        let partitions = flatten(
            m.assigned_partitions
                .into_iter()
                .map(|t| (t.topic, t.partitions)),
        );
        Ok(ConsumerAssignment {
            version,
            partitions,
            user_data: m.user_data,
        })
    }
}

/// A member of a consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// The static membership id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the coordinator saw it.
    pub host: String,
    /// The decoded subscription: `None` when the metadata is empty,
    /// `Some(Err(..))` when it is not valid consumer-protocol data (for
    /// example in a group of another protocol type).
    pub subscription: Option<std::result::Result<ConsumerSubscription, ConsumerProtocolError>>,
    /// The decoded assignment: `None` when empty (mid-rebalance), as above.
    pub assignment: Option<std::result::Result<ConsumerAssignment, ConsumerProtocolError>>,
    /// The raw member metadata.
    pub raw_metadata: Bytes,
    /// The raw member assignment.
    pub raw_assignment: Bytes,
}

impl MemberDescription {
    /// The assigned partitions (empty when there is no decodable assignment).
    pub fn assigned_partitions(&self) -> &[TopicPartition] {
        match &self.assignment {
            Some(Ok(a)) => &a.partitions,
            _ => &[],
        }
    }
}

/// A described consumer group.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumerGroupDescription {
    /// The group id.
    pub group_id: String,
    /// The state.
    pub state: GroupState,
    /// The protocol type: `consumer`, or empty for a group that only
    /// commits offsets (a "simple" consumer group).
    pub protocol_type: String,
    /// The assignor the group chose (the protocol name), when stable.
    pub partition_assignor: String,
    /// The coordinator that described it.
    pub coordinator: BrokerInfo,
    /// The members.
    pub members: Vec<MemberDescription>,
    /// The operations the caller may perform, if asked for and reported.
    pub authorized_operations: Option<BTreeSet<AclOperation>>,
}

impl ConsumerGroupDescription {
    /// Whether this is a group without members that only commits offsets.
    pub fn is_simple_consumer_group(&self) -> bool {
        self.protocol_type.is_empty()
    }
}

/// Options of calls on one group's offsets or on deleting groups.
#[derive(Debug, Clone, Default)]
pub struct GroupOptions {
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Options of [`Admin::list_consumer_group_offsets`].
#[derive(Debug, Clone, Default)]
pub struct ListConsumerGroupOffsetsOptions {
    /// Ask the coordinator to wait for pending transactional commits
    /// (`require_stable`, OffsetFetch v7+).
    pub require_stable: bool,
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

pub use crate::network::OffsetAndMetadata;

/// A member to remove with [`Admin::remove_members_from_consumer_group`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberToRemove {
    /// The member's static `group.instance.id`.
    pub group_instance_id: String,
}

/// Options of [`Admin::remove_members_from_consumer_group`].
#[derive(Debug, Clone, Default)]
pub struct RemoveMembersOptions {
    /// Why the members are removed (LeaveGroup v5+).
    pub reason: Option<String>,
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A per-partition outcome.
pub type PartitionResults<T> = BTreeMap<TopicPartition, Result<T>>;

// ---------------------------------------------------------------- the calls

impl Admin {
    /// Lists the groups of every broker, merged (as the Java client does:
    /// each broker only reports the groups it coordinates).
    ///
    /// A broker that fails (after retries within the timeout) is reported in
    /// [`ListGroupsResult::errors`]; the groups of the others are still
    /// returned. Filtering by state needs ListGroups v4+ and by type v5+.
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::Admin) -> Result<(), ferrokafka::admin::Error> {
    /// use ferrokafka::admin::{GroupState, ListGroupsOptions};
    /// let options = ListGroupsOptions { states: vec![GroupState::Stable], ..Default::default() };
    /// for group in admin.list_groups(options).await?.groups {
    ///     println!("{} ({:?})", group.group_id, group.state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_groups(&self, options: ListGroupsOptions) -> Result<ListGroupsResult> {
        let span = tracing::info_span!("list_groups");
        async move {
            let timeout = self.timeout(options.timeout);
            let request = ListGroupsRequest::default()
                .with_states_filter(
                    options
                        .states
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                )
                .with_types_filter(
                    options
                        .types
                        .iter()
                        .map(|t| t.as_str().to_owned())
                        .collect(),
                );
            let outcomes =
                fan_out_to_all_brokers(self.cluster(), "ListGroups", timeout, |cluster, id| {
                    let request = request.clone();
                    async move {
                        cluster
                            .retry("ListGroups", Some(timeout), || async {
                                let response = cluster
                                    .send_to_broker(id, &request, RequestOptions::default())
                                    .await?;
                                Error::check(ApiKey::ListGroups, response.error_code, None)?;
                                Ok(response.groups)
                            })
                            .await
                    }
                })
                .await?;
            let mut groups: BTreeMap<String, GroupListing> = BTreeMap::new();
            let mut errors = Vec::new();
            for (id, outcome) in outcomes {
                match outcome {
                    Ok(listed) => {
                        for g in listed {
                            let state = (!g.group_state.is_empty())
                                .then(|| GroupState::parse(&g.group_state));
                            let group_type =
                                (!g.group_type.is_empty()).then(|| GroupType::parse(&g.group_type));
                            groups.insert(
                                g.group_id.clone(),
                                GroupListing {
                                    group_id: g.group_id,
                                    protocol_type: g.protocol_type,
                                    state,
                                    group_type,
                                    coordinator_id: id,
                                },
                            );
                        }
                    }
                    Err(e) => errors.push((id, e)),
                }
            }
            Ok(ListGroupsResult {
                groups: groups.into_values().collect(),
                errors,
            })
        }
        .instrument(span)
        .await
    }

    /// Describes consumer groups: state, protocol, assignor, coordinator and
    /// members with their decoded subscriptions and assignments.
    ///
    /// Each group is asked of its coordinator (looked up in one batched
    /// FindCoordinator); each gets its own result.
    pub async fn describe_consumer_groups(
        &self,
        group_ids: &[&str],
        options: DescribeConsumerGroupsOptions,
    ) -> Result<HashMap<String, Result<ConsumerGroupDescription>>> {
        let span = tracing::info_span!("describe_consumer_groups", groups = group_ids.len());
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            let keys = group_ids.iter().map(|s| s.to_string()).collect();
            Ok(coordinator_rounds(
                cluster,
                CoordinatorType::Group,
                "DescribeGroups",
                keys,
                timeout,
                |coordinator, groups| async move {
                    let request = DescribeGroupsRequest::default()
                        .with_groups(groups)
                        .with_include_authorized_operations(options.include_authorized_operations);
                    let conn = cluster.connection(&coordinator.address()).await?;
                    let response = conn.send(&request).await?;
                    Ok(response
                        .groups
                        .into_iter()
                        .map(|g| {
                            let result = Error::check(ApiKey::DescribeGroups, g.error_code, None)
                                .map(|()| {
                                    let consumer =
                                        g.protocol_type == "consumer" || g.protocol_type.is_empty();
                                    let members = g
                                        .members
                                        .into_iter()
                                        .map(|m| MemberDescription {
                                            member_id: m.member_id,
                                            group_instance_id: m.group_instance_id,
                                            client_id: m.client_id,
                                            host: m.client_host,
                                            subscription: (consumer
                                                && !m.member_metadata.is_empty())
                                            .then(|| {
                                                ConsumerSubscription::decode(&m.member_metadata)
                                            }),
                                            assignment: (consumer
                                                && !m.member_assignment.is_empty())
                                            .then(|| {
                                                ConsumerAssignment::decode(&m.member_assignment)
                                            }),
                                            raw_metadata: m.member_metadata,
                                            raw_assignment: m.member_assignment,
                                        })
                                        .collect();
                                    ConsumerGroupDescription {
                                        group_id: g.group_id.clone(),
                                        state: GroupState::parse(&g.group_state),
                                        protocol_type: g.protocol_type,
                                        partition_assignor: g.protocol_data,
                                        coordinator: coordinator.clone(),
                                        members,
                                        authorized_operations: authorized_operations(
                                            g.authorized_operations,
                                        ),
                                    }
                                });
                            (g.group_id, result)
                        })
                        .collect())
                },
            )
            .await)
        }
        .instrument(span)
        .await
    }

    /// Deletes consumer groups (they must be empty); each gets its own result.
    pub async fn delete_consumer_groups(
        &self,
        group_ids: &[&str],
        options: GroupOptions,
    ) -> Result<HashMap<String, Result<()>>> {
        let span = tracing::info_span!("delete_consumer_groups", groups = group_ids.len());
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            let keys = group_ids.iter().map(|s| s.to_string()).collect();
            Ok(coordinator_rounds(
                cluster,
                CoordinatorType::Group,
                "DeleteGroups",
                keys,
                timeout,
                |coordinator, groups| async move {
                    let request = DeleteGroupsRequest::default().with_groups_names(groups);
                    let conn = cluster.connection(&coordinator.address()).await?;
                    let response = conn.send(&request).await?;
                    Ok(response
                        .results
                        .into_iter()
                        .map(|r| {
                            (
                                r.group_id,
                                Error::check(ApiKey::DeleteGroups, r.error_code, None),
                            )
                        })
                        .collect())
                },
            )
            .await)
        }
        .instrument(span)
        .await
    }

    /// The committed offsets of `group_id`: of `partitions`, or of every
    /// partition it has offsets for when `None`.
    ///
    /// A partition without a committed offset maps to `Ok(None)`. Uses the
    /// multi-group form of OffsetFetch (v8+) when the coordinator supports
    /// it, the single-group form otherwise.
    pub async fn list_consumer_group_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[TopicPartition]>,
        options: ListConsumerGroupOffsetsOptions,
    ) -> Result<PartitionResults<Option<OffsetAndMetadata>>> {
        let span = tracing::info_span!("list_consumer_group_offsets", group = group_id);
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            cluster
                .retry("OffsetFetch", Some(timeout), || async {
                    let (_, conn) =
                        coordinator_connection(cluster, CoordinatorType::Group, group_id).await?;
                    let version = conn
                        .api_versions()
                        .map(|t| t.negotiate(ApiKey::OffsetFetch))
                        .unwrap_or(Ok(0))?;
                    let topics = partitions.map(group_partitions);
                    let mut request = OffsetFetchRequest::default();
                    if version >= 8 {
                        let group = OffsetFetchRequestGroup::default()
                            .with_group_id(group_id.to_owned())
                            .with_topics(topics.map(|t| {
                                t.into_iter()
                                    .map(|(name, ps)| {
                                        OffsetFetchRequestTopics::default()
                                            .with_name(name.to_owned())
                                            .with_partition_indexes(ps)
                                    })
                                    .collect()
                            }));
                        request = request.with_groups(vec![group]);
                    } else {
                        request =
                            request
                                .with_group_id(group_id.to_owned())
                                .with_topics(topics.map(|t| {
                                    t.into_iter()
                                        .map(|(name, ps)| {
                                            OffsetFetchRequestTopic::default()
                                                .with_name(name.to_owned())
                                                .with_partition_indexes(ps)
                                        })
                                        .collect()
                                }));
                    }
                    if version >= 7 {
                        request = request.with_require_stable(options.require_stable);
                    }
                    let response = conn
                        .send_with(&request, RequestOptions::default().with_version(version))
                        .await
                        .map_err(|e| forget_coordinator(cluster, group_id, e))?;
                    // (partition, offset, epoch, metadata, error)
                    let mut rows: Vec<(TopicPartition, i64, i32, Option<String>, i16)> = Vec::new();
                    if version >= 8 {
                        let group = response
                            .groups
                            .into_iter()
                            .find(|g| g.group_id == group_id)
                            .ok_or_else(|| Error::Protocol {
                                broker: conn.broker().to_owned(),
                                reason: format!("OffsetFetch response lacks group {group_id}"),
                            })?;
                        Error::check(ApiKey::OffsetFetch, group.error_code, None)
                            .map_err(|e| forget_coordinator(cluster, group_id, e))?;
                        for t in group.topics {
                            for p in t.partitions {
                                rows.push((
                                    TopicPartition::new(t.name.clone(), p.partition_index),
                                    p.committed_offset,
                                    p.committed_leader_epoch,
                                    p.metadata,
                                    p.error_code,
                                ));
                            }
                        }
                    } else {
                        Error::check(ApiKey::OffsetFetch, response.error_code, None)
                            .map_err(|e| forget_coordinator(cluster, group_id, e))?;
                        for t in response.topics {
                            for p in t.partitions {
                                rows.push((
                                    TopicPartition::new(t.name.clone(), p.partition_index),
                                    p.committed_offset,
                                    p.committed_leader_epoch,
                                    p.metadata,
                                    p.error_code,
                                ));
                            }
                        }
                    }
                    let mut out = BTreeMap::new();
                    for (tp, offset, epoch, metadata, code) in rows {
                        let result = match Error::check(ApiKey::OffsetFetch, code, None) {
                            // Pending transactional commits: ask again.
                            Err(e) if e.error_code() == Some(ErrorCode::UnstableOffsetCommit) => {
                                return Err(e)
                            }
                            Err(e) if is_coordinator_retriable(&e) => {
                                return Err(forget_coordinator(cluster, group_id, e))
                            }
                            Err(e) => Err(e),
                            Ok(()) if offset < 0 => Ok(None),
                            Ok(()) => Ok(Some(OffsetAndMetadata {
                                offset,
                                leader_epoch: (epoch >= 0).then_some(epoch),
                                metadata: metadata.unwrap_or_default(),
                            })),
                        };
                        out.insert(tp, result);
                    }
                    Ok(out)
                })
                .await
        }
        .instrument(span)
        .await
    }

    /// Commits `offsets` for `group_id` as an admin does: with generation -1
    /// and no member id, which the coordinator only accepts while the group
    /// has no active members.
    pub async fn alter_consumer_group_offsets(
        &self,
        group_id: &str,
        offsets: &BTreeMap<TopicPartition, OffsetAndMetadata>,
        options: GroupOptions,
    ) -> Result<PartitionResults<()>> {
        let span = tracing::info_span!(
            "alter_consumer_group_offsets",
            group = group_id,
            partitions = offsets.len()
        );
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
            for (tp, om) in offsets {
                topics.entry(&tp.topic).or_default().push(
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(tp.partition)
                        .with_committed_offset(om.offset)
                        .with_committed_leader_epoch(om.leader_epoch.unwrap_or(-1))
                        .with_committed_metadata(Some(om.metadata.clone())),
                );
            }
            let request = OffsetCommitRequest::default()
                .with_group_id(group_id.to_owned())
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(String::new())
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, ps)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(name.to_owned())
                                .with_partitions(ps)
                        })
                        .collect(),
                );
            cluster
                .retry("OffsetCommit", Some(timeout), || async {
                    let response = cluster
                        .send_to_coordinator(
                            CoordinatorType::Group,
                            group_id,
                            &request,
                            RequestOptions::default(),
                        )
                        .await?;
                    let mut out = BTreeMap::new();
                    for t in response.topics {
                        for p in t.partitions {
                            let result = Error::check(ApiKey::OffsetCommit, p.error_code, None);
                            if let Err(e) = &result {
                                if is_coordinator_retriable(e) {
                                    return Err(forget_coordinator(
                                        cluster,
                                        group_id,
                                        replicate_error(e),
                                    ));
                                }
                            }
                            out.insert(
                                TopicPartition::new(t.name.clone(), p.partition_index),
                                result,
                            );
                        }
                    }
                    Ok(out)
                })
                .await
        }
        .instrument(span)
        .await
    }

    /// Deletes the committed offsets of `partitions` for `group_id`
    /// (OffsetDelete). The group must not be subscribed to those topics.
    pub async fn delete_consumer_group_offsets(
        &self,
        group_id: &str,
        partitions: &[TopicPartition],
        options: GroupOptions,
    ) -> Result<PartitionResults<()>> {
        let span = tracing::info_span!(
            "delete_consumer_group_offsets",
            group = group_id,
            partitions = partitions.len()
        );
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            let request = OffsetDeleteRequest::default()
                .with_group_id(group_id.to_owned())
                .with_topics(
                    group_partitions(partitions)
                        .into_iter()
                        .map(|(name, ps)| {
                            OffsetDeleteRequestTopic::default()
                                .with_name(name.to_owned())
                                .with_partitions(
                                    ps.into_iter()
                                        .map(|p| {
                                            OffsetDeleteRequestPartition::default()
                                                .with_partition_index(p)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            cluster
                .retry("OffsetDelete", Some(timeout), || async {
                    let response = cluster
                        .send_to_coordinator(
                            CoordinatorType::Group,
                            group_id,
                            &request,
                            RequestOptions::default(),
                        )
                        .await?;
                    Error::check(ApiKey::OffsetDelete, response.error_code, None)
                        .map_err(|e| forget_coordinator(cluster, group_id, e))?;
                    let mut out = BTreeMap::new();
                    for t in response.topics {
                        for p in t.partitions {
                            out.insert(
                                TopicPartition::new(t.name.clone(), p.partition_index),
                                Error::check(ApiKey::OffsetDelete, p.error_code, None),
                            );
                        }
                    }
                    Ok(out)
                })
                .await
        }
        .instrument(span)
        .await
    }

    /// Removes static members (by `group.instance.id`) from a group with
    /// LeaveGroup v3+; each member gets its own result.
    pub async fn remove_members_from_consumer_group(
        &self,
        group_id: &str,
        members: &[MemberToRemove],
        options: RemoveMembersOptions,
    ) -> Result<BTreeMap<String, Result<()>>> {
        let span = tracing::info_span!("remove_members_from_consumer_group", group = group_id);
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            cluster
                .retry("LeaveGroup", Some(timeout), || async {
                    let (_, conn) =
                        coordinator_connection(cluster, CoordinatorType::Group, group_id).await?;
                    let version = conn
                        .api_versions()
                        .map(|t| t.negotiate(ApiKey::LeaveGroup))
                        .unwrap_or(Ok(0))?;
                    if version < 3 {
                        return Err(Error::UnsupportedVersion {
                            api: ApiKey::LeaveGroup,
                            client: crate::protocol::VersionRange::new(3, 5),
                            broker: conn
                                .api_versions()
                                .and_then(|t| t.broker_range(ApiKey::LeaveGroup)),
                        });
                    }
                    let identities = members
                        .iter()
                        .map(|m| {
                            let mut identity = MemberIdentity::default()
                                .with_member_id(String::new())
                                .with_group_instance_id(Some(m.group_instance_id.clone()));
                            if version >= 5 {
                                identity = identity.with_reason(options.reason.clone());
                            }
                            identity
                        })
                        .collect();
                    let request = LeaveGroupRequest::default()
                        .with_group_id(group_id.to_owned())
                        .with_members(identities);
                    let response = conn
                        .send_with(&request, RequestOptions::default().with_version(version))
                        .await
                        .map_err(|e| forget_coordinator(cluster, group_id, e))?;
                    Error::check(ApiKey::LeaveGroup, response.error_code, None)
                        .map_err(|e| forget_coordinator(cluster, group_id, e))?;
                    Ok(response
                        .members
                        .into_iter()
                        .map(|m| {
                            (
                                m.group_instance_id.unwrap_or(m.member_id),
                                Error::check(ApiKey::LeaveGroup, m.error_code, None),
                            )
                        })
                        .collect())
                })
                .await
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
    use crate::protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
    use crate::protocol::Encodable;
    use bytes::{BufMut, BytesMut};

    fn with_version<M: Encodable>(version: i16, message: &M, encode_as: i16) -> Vec<u8> {
        let mut buf = BytesMut::new();
        buf.put_i16(version);
        message.encode(&mut buf, encode_as).unwrap();
        buf.to_vec()
    }

    #[test]
    fn subscription_decodes_every_version() {
        let message = ConsumerProtocolSubscription::default()
            .with_topics(vec!["a".into(), "b".into()])
            .with_user_data(Some(Bytes::from_static(b"ud")))
            .with_owned_partitions(vec![OwnedTopic::default()
                .with_topic("a".into())
                .with_partitions(vec![0, 2])])
            .with_generation_id(7)
            .with_rack_id(Some("r1".into()));
        let v3 = ConsumerSubscription::decode(&with_version(3, &message, 3)).unwrap();
        assert_eq!(v3.version, 3);
        assert_eq!(v3.topics, vec!["a".to_owned(), "b".to_owned()]);
        assert_eq!(v3.user_data.as_deref(), Some(&b"ud"[..]));
        assert_eq!(
            v3.owned_partitions,
            vec![TopicPartition::new("a", 0), TopicPartition::new("a", 2)]
        );
        assert_eq!(v3.generation_id, 7);
        assert_eq!(v3.rack_id.as_deref(), Some("r1"));

        let v0_message = ConsumerProtocolSubscription::default().with_topics(vec!["a".into()]);
        let v0 = ConsumerSubscription::decode(&with_version(0, &v0_message, 0)).unwrap();
        assert_eq!(v0.version, 0);
        assert_eq!(v0.topics, vec!["a".to_owned()]);
        assert!(v0.owned_partitions.is_empty());
        assert_eq!(v0.rack_id, None);

        // A newer version than known is read as v3 (fields are only appended).
        let v9 = ConsumerSubscription::decode(&with_version(9, &message, 3)).unwrap();
        assert_eq!(v9.version, 9);
        assert_eq!(v9.rack_id.as_deref(), Some("r1"));
    }

    #[test]
    fn assignment_decodes_and_bad_bytes_are_errors() {
        let message = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            AssignedTopic::default()
                .with_topic("t".into())
                .with_partitions(vec![1, 0]),
            AssignedTopic::default()
                .with_topic("u".into())
                .with_partitions(vec![3]),
        ]);
        let a = ConsumerAssignment::decode(&with_version(1, &message, 1)).unwrap();
        assert_eq!(
            a.partitions,
            vec![
                TopicPartition::new("t", 1),
                TopicPartition::new("t", 0),
                TopicPartition::new("u", 3)
            ]
        );
        assert_eq!(a.user_data, None);

        assert!(ConsumerAssignment::decode(&[0]).is_err());
        assert!(ConsumerAssignment::decode(&[0xff, 0xff, 0, 0]).is_err());
        // Truncated body.
        let bytes = with_version(1, &message, 1);
        let err = ConsumerAssignment::decode(&bytes[..bytes.len() - 3]).unwrap_err();
        assert_eq!(err.what, "assignment");
        assert!(ConsumerSubscription::decode(&[0, 0, 0, 5, b'x']).is_err());
    }

    #[test]
    fn group_state_and_type_parse() {
        for s in [
            "PreparingRebalance",
            "CompletingRebalance",
            "Stable",
            "Dead",
            "Empty",
            "Assigning",
            "Reconciling",
        ] {
            let state = GroupState::parse(s);
            assert!(!matches!(state, GroupState::Unknown(_)));
            assert_eq!(state.as_str(), s);
        }
        assert_eq!(
            GroupState::parse("AwaitingSync"),
            GroupState::CompletingRebalance
        );
        assert_eq!(GroupType::parse("Classic"), GroupType::Classic);
        assert_eq!(GroupType::parse("x").as_str(), "x");
    }

    #[test]
    fn replicated_errors_keep_their_code() {
        let e = Error::Broker {
            api: ApiKey::DeleteGroups,
            code: ErrorCode::NonEmptyGroup,
            message: Some("m".into()),
        };
        let copy = replicate_error(&e);
        assert_eq!(copy.error_code(), Some(ErrorCode::NonEmptyGroup));
        assert!(is_coordinator_retriable(&Error::Broker {
            api: ApiKey::DescribeGroups,
            code: ErrorCode::CoordinatorLoadInProgress,
            message: None
        }));
        assert!(!is_coordinator_retriable(&copy));
    }
}
