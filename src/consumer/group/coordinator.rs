//! A group member's side of the classic group protocol: its membership state
//! (a small state machine), the JoinGroup / SyncGroup exchange with the
//! leader's assignment, heartbeats, LeaveGroup, and offset commits and
//! fetches.
//!
//! The consumer's poll drives joins (so that rebalance callbacks run on the
//! application's task); a background task sends heartbeats on a connection
//! of its own ([`ConnectionRole::GroupHeartbeat`]), so a JoinGroup that the
//! coordinator holds never delays them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::network::{
    BrokerConnection, Cluster, ConnectionRole, CoordinatorType, Error as NetError,
    OffsetAndMetadata, RequestOptions,
};
use crate::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use crate::protocol::messages::leave_group_request::MemberIdentity;
use crate::protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use crate::protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use crate::protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use crate::protocol::messages::{
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use crate::protocol::{ApiKey, ErrorCode};

use super::super::config::ConsumerConfig;
use super::super::error::{ConsumerError, Result};
use super::super::{group_by_topic, TopicPartition};
use super::assignor::{Assignor, GroupMember, RebalanceProtocol};
use super::protocol::{Assignment, Subscription};
use super::strategy::rebalance_protocol;

/// The `consumer` protocol type of classic groups.
const PROTOCOL_TYPE: &str = "consumer";

/// Where a member is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemberState {
    /// Not in the group (never joined, left, or dropped by the coordinator).
    Unjoined,
    /// A JoinGroup is on its way or held by the coordinator.
    PreparingRebalance,
    /// Joined; waiting for the SyncGroup answer with the assignment.
    CompletingRebalance,
    /// Assigned; heartbeating.
    Stable,
}

/// A member's view of its group, for tests and metrics
/// ([`Consumer::group_state`](crate::consumer::Consumer::group_state)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    /// The group id.
    pub group_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The member id the coordinator gave ("" before the first join).
    pub member_id: String,
    /// The generation of the last completed join (-1 when none is valid).
    pub generation: i32,
    /// The assignor the group uses (the protocol name), once joined.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader_id: String,
    /// Whether this member is the leader.
    pub is_leader: bool,
    /// Where the member is in the rebalance cycle.
    pub state: MemberState,
    /// Whether the member will rejoin at its next poll.
    pub rejoin_needed: bool,
    /// Completed joins (SyncGroup answers) since the consumer started.
    pub rebalances: u64,
}

/// The mutable membership, behind the coordinator's lock.
#[derive(Debug)]
pub(crate) struct Membership {
    pub member_id: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader_id: String,
    pub state: MemberState,
    pub rejoin_needed: bool,
    pub rejoin_reason: String,
    /// A fatal error for the application (FENCED_INSTANCE_ID, ...), reported
    /// by the next poll.
    pub fatal: Option<(ErrorCode, String)>,
    /// When the application last called poll.
    pub last_poll: Instant,
    /// When the last heartbeat was answered without error.
    pub last_heartbeat_ok: Instant,
    pub rebalances: u64,
    /// As leader: the partition count of every topic any member subscribed
    /// to, as the last assignment saw them (0 for a topic not yet there).
    /// A change makes the leader rebalance, as Java's leader watches the
    /// whole group's subscription.
    pub group_topic_counts: BTreeMap<String, usize>,
    /// Set on close: the heartbeat task ends.
    pub closed: bool,
}

impl Membership {
    /// In a generation the coordinator completed, with no join under way:
    /// the only state in which the member commits offsets as a member.
    pub fn in_stable_generation(&self) -> bool {
        self.state == MemberState::Stable && self.generation >= 0
    }
}

/// What a completed join brings: the assignment of this member.
#[derive(Debug, Clone)]
pub(crate) struct Joined {
    pub generation: i32,
    pub protocol: String,
    pub assignment: Assignment,
}

/// Why a join attempt ended without an assignment.
#[derive(Debug)]
pub(crate) enum JoinFailure {
    /// Try again at once (new member id, rebalance in progress, ...).
    Retry,
    /// Try again after the retry backoff (coordinator moved or loading,
    /// connection failure).
    Backoff(String),
    /// The coordinator no longer knows our generation or member id: what we
    /// own is lost.
    Lost(ErrorCode),
    /// The application must hear about it (fenced, unauthorized, bad config).
    Fatal(ConsumerError),
}

/// A member of one group: configuration, state and the wire exchanges.
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    pub cluster: Cluster,
    pub group_id: String,
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub rebalance_timeout: Duration,
    pub assignors: Vec<Arc<dyn Assignor>>,
    pub protocol: RebalanceProtocol,
    pub rack: Option<String>,
    membership: Mutex<Membership>,
    /// Wakes the heartbeat task (a join completed, close, ...).
    pub heartbeat_wake: Notify,
}

impl GroupCoordinator {
    /// A member of `config.group_id` (which must be set).
    pub fn new(cluster: Cluster, config: &ConsumerConfig) -> Result<GroupCoordinator> {
        let group_id = config.group_id.clone().ok_or(ConsumerError::NoGroupId)?;
        let assignors: Vec<Arc<dyn Assignor>> = config
            .partition_assignment_strategy
            .iter()
            .map(|s| s.assignor())
            .collect();
        let protocol = rebalance_protocol(&assignors).ok_or_else(|| {
            ConsumerError::Config(crate::network::ConfigError::InvalidValue {
                key: "partition.assignment.strategy".to_owned(),
                value: assignors
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(","),
                reason: "the assignors share no rebalance protocol".to_owned(),
            })
        })?;
        let now = Instant::now();
        Ok(GroupCoordinator {
            cluster,
            group_id,
            instance_id: config.group_instance_id.clone(),
            session_timeout: config.session_timeout,
            heartbeat_interval: config.heartbeat_interval,
            rebalance_timeout: config.max_poll_interval,
            assignors,
            protocol,
            rack: (!config.client_rack.is_empty()).then(|| config.client_rack.clone()),
            membership: Mutex::new(Membership {
                member_id: String::new(),
                generation: -1,
                protocol: None,
                leader_id: String::new(),
                state: MemberState::Unjoined,
                rejoin_needed: true,
                rejoin_reason: "initial join".to_owned(),
                fatal: None,
                last_poll: now,
                last_heartbeat_ok: now,
                rebalances: 0,
                group_topic_counts: BTreeMap::new(),
                closed: false,
            }),
            heartbeat_wake: Notify::new(),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, Membership> {
        self.membership.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The public view of the membership.
    pub fn snapshot(&self) -> GroupMembership {
        let m = self.lock();
        GroupMembership {
            group_id: self.group_id.clone(),
            group_instance_id: self.instance_id.clone(),
            member_id: m.member_id.clone(),
            generation: m.generation,
            protocol: m.protocol.clone(),
            leader_id: m.leader_id.clone(),
            is_leader: !m.member_id.is_empty() && m.member_id == m.leader_id,
            state: m.state,
            rejoin_needed: m.rejoin_needed,
            rebalances: m.rebalances,
        }
    }

    /// Asks for a rejoin at the next poll.
    pub fn request_rejoin(&self, reason: impl Into<String>) {
        let mut m = self.lock();
        if !m.rejoin_needed {
            m.rejoin_needed = true;
            m.rejoin_reason = reason.into();
            tracing::debug!(group = %self.group_id, reason = %m.rejoin_reason, "rejoin requested");
        }
    }

    /// Forgets the generation (and the member id when `member_id` is set):
    /// the partitions owned are lost and the member joins afresh.
    pub fn reset_generation(&self, member_id: bool, reason: &str) {
        let mut m = self.lock();
        self.reset_locked(&mut m, member_id, reason);
    }

    fn reset_locked(&self, m: &mut Membership, member_id: bool, reason: &str) {
        m.generation = -1;
        m.protocol = None;
        m.state = MemberState::Unjoined;
        if member_id {
            m.member_id.clear();
        }
        m.rejoin_needed = true;
        m.rejoin_reason = reason.to_owned();
        tracing::info!(group = %self.group_id, reason, "group generation reset");
    }

    /// Resets the generation after a heartbeat or commit sent as `sent`
    /// (member id, generation) was refused with UNKNOWN_MEMBER_ID or
    /// ILLEGAL_GENERATION, but only while that is still the member's
    /// generation and no join is under way: an answer about a generation
    /// the member already left (a join completed or is in flight since the
    /// request went out) says nothing about the current one. Resetting then
    /// would throw the new generation away and start one more rebalance for
    /// the whole group (Java checks the same). Returns whether it reset.
    fn reset_if_current(&self, sent: &(String, i32), member_id: bool, reason: &str) -> bool {
        let mut m = self.lock();
        let current = sent.1 >= 0
            && m.generation == sent.1
            && m.member_id == sent.0
            && m.state != MemberState::PreparingRebalance;
        if current {
            self.reset_locked(&mut m, member_id, reason);
        } else {
            tracing::debug!(
                group = %self.group_id,
                reason,
                sent_generation = sent.1,
                generation = m.generation,
                "ignored: the request's generation is no longer the member's"
            );
        }
        current
    }

    fn is_dynamic(&self) -> bool {
        self.instance_id.is_none()
    }

    /// The connection to the coordinator for `role` and the negotiated
    /// version of `api` on it.
    async fn coordinator(
        &self,
        role: ConnectionRole,
        api: ApiKey,
    ) -> std::result::Result<(BrokerConnection, i16), NetError> {
        let (_, conn) = self
            .cluster
            .coordinator_connection(CoordinatorType::Group, &self.group_id, role)
            .await?;
        let version = match conn.api_versions() {
            Some(table) => table.negotiate(api)?,
            None => 0,
        };
        Ok((conn, version))
    }

    /// Sends a heartbeat, commit or offset fetch on the member's own
    /// connection, forgetting the coordinator when the connection failed.
    async fn send_member<R: crate::protocol::Request>(
        &self,
        conn: &BrokerConnection,
        request: &R,
        version: i16,
    ) -> std::result::Result<R::Response, NetError> {
        conn.send_with(
            request,
            RequestOptions::role(ConnectionRole::GroupHeartbeat).with_version(version),
        )
        .await
        .inspect_err(|e| self.transport_failure(e))
    }

    /// Reads a coordinator-level error code: forgets a moved coordinator.
    fn coordinator_moved(&self, code: ErrorCode) -> bool {
        self.cluster
            .coordinator_error(CoordinatorType::Group, &self.group_id, code)
    }

    fn transport_failure(&self, e: &NetError) {
        if e.invalidates_coordinator() || e.is_retriable() {
            self.cluster
                .invalidate_coordinator(CoordinatorType::Group, &self.group_id);
        }
    }

    /// One join: JoinGroup (repeated once for KIP-394's member id), the
    /// leader's assignment, SyncGroup. `topics` is the subscription and
    /// `owned` what the member holds now (cooperative protocol).
    pub async fn join(
        &self,
        topics: &[String],
        owned: &[TopicPartition],
    ) -> std::result::Result<Joined, JoinFailure> {
        let (member_id, generation) = {
            let mut m = self.lock();
            m.state = MemberState::PreparingRebalance;
            (m.member_id.clone(), m.generation)
        };
        let mut protocols = Vec::with_capacity(self.assignors.len());
        for assignor in &self.assignors {
            let subscription = Subscription::new(topics.iter().cloned())
                .with_user_data(assignor.subscription_user_data(topics, generation))
                .with_owned_partitions(owned.to_vec())
                .with_generation_id(generation)
                .with_rack_id(self.rack.clone());
            let metadata = subscription
                .encode()
                .map_err(|e| JoinFailure::Fatal(ConsumerError::GroupProtocol(e.to_string())))?;
            protocols.push(
                JoinGroupRequestProtocol::default()
                    .with_name(assignor.name().to_owned())
                    .with_metadata(metadata),
            );
        }
        let (conn, version) = self
            .coordinator(ConnectionRole::Group, ApiKey::JoinGroup)
            .await
            .map_err(|e| self.join_transport(e))?;
        let reason = self.lock().rejoin_reason.clone();
        let mut request = JoinGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_session_timeout_ms(self.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(self.rebalance_timeout.as_millis() as i32)
            .with_member_id(member_id)
            .with_protocol_type(PROTOCOL_TYPE.to_owned())
            .with_protocols(protocols);
        if version >= 5 {
            request = request.with_group_instance_id(self.instance_id.clone());
        } else if self.instance_id.is_some() {
            return Err(JoinFailure::Fatal(ConsumerError::Group {
                code: ErrorCode::UnsupportedVersion,
                reason: format!(
                    "static membership needs JoinGroup v5; the coordinator speaks v{version}"
                ),
            }));
        }
        if version >= 8 {
            request = request.with_reason(Some(reason));
        }
        tracing::debug!(group = %self.group_id, version, "sending JoinGroup");
        let response = self.send_rebalance(&conn, &request, version).await?;
        self.on_join_response(response, topics).await
    }

    /// Sends a JoinGroup or SyncGroup, which the coordinator may hold until
    /// every member rejoined or the rebalance timeout passed.
    async fn send_rebalance<R: crate::protocol::Request>(
        &self,
        conn: &BrokerConnection,
        request: &R,
        version: i16,
    ) -> std::result::Result<R::Response, JoinFailure> {
        let wait = self.rebalance_timeout + self.cluster.config().request_timeout;
        conn.send_with(
            request,
            RequestOptions::role(ConnectionRole::Group)
                .with_version(version)
                .with_timeout(wait),
        )
        .await
        .map_err(|e| self.join_transport(e))
    }

    fn join_transport(&self, e: NetError) -> JoinFailure {
        self.transport_failure(&e);
        self.lock().state = MemberState::Unjoined;
        if e.is_retriable() || e.invalidates_coordinator() {
            JoinFailure::Backoff(e.to_string())
        } else {
            JoinFailure::Fatal(ConsumerError::Network(e))
        }
    }

    /// Handles a JoinGroup answer, and on success runs the assignment (as
    /// leader) and SyncGroup.
    async fn on_join_response(
        &self,
        response: JoinGroupResponse,
        topics: &[String],
    ) -> std::result::Result<Joined, JoinFailure> {
        let code = ErrorCode::from_code(response.error_code);
        if let Some(failure) = self.join_error(code, "JoinGroup", &response.member_id) {
            return Err(failure);
        }
        let protocol = response.protocol_name.clone().unwrap_or_default();
        let is_leader = response.leader == response.member_id;
        {
            let mut m = self.lock();
            m.member_id = response.member_id.clone();
            m.generation = response.generation_id;
            m.leader_id = response.leader.clone();
            m.protocol = Some(protocol.clone());
            m.state = MemberState::CompletingRebalance;
        }
        // Heartbeats run from here on (as in Java's COMPLETING_REBALANCE).
        self.heartbeat_wake.notify_one();
        tracing::info!(
            group = %self.group_id,
            member = %response.member_id,
            generation = response.generation_id,
            protocol = %protocol,
            leader = is_leader,
            "joined group"
        );
        let assignments = if is_leader && !response.skip_assignment {
            self.leader_assign(&protocol, &response, topics)
                .await
                .map_err(JoinFailure::Fatal)?
        } else {
            Vec::new()
        };
        let (conn, version) = match self
            .coordinator(ConnectionRole::Group, ApiKey::SyncGroup)
            .await
        {
            Ok(found) => found,
            Err(e) => return Err(self.join_transport(e)),
        };
        let mut request = SyncGroupRequest::default()
            .with_group_id(self.group_id.clone())
            .with_generation_id(response.generation_id)
            .with_member_id(response.member_id.clone())
            .with_assignments(assignments);
        if version >= 3 {
            request = request.with_group_instance_id(self.instance_id.clone());
        }
        if version >= 5 {
            request = request
                .with_protocol_type(Some(PROTOCOL_TYPE.to_owned()))
                .with_protocol_name(Some(protocol.clone()));
        }
        let sync = self.send_rebalance(&conn, &request, version).await?;
        let code = ErrorCode::from_code(sync.error_code);
        if let Some(failure) = self.join_error(code, "SyncGroup", &response.member_id) {
            return Err(failure);
        }
        let assignment = if sync.assignment.is_empty() {
            Assignment::default()
        } else {
            Assignment::decode(sync.assignment.clone())
                .map_err(|e| JoinFailure::Fatal(ConsumerError::GroupProtocol(e.to_string())))?
        };
        {
            let mut m = self.lock();
            // A heartbeat may have asked for another rebalance meanwhile.
            if m.generation == response.generation_id && m.state != MemberState::Unjoined {
                m.state = MemberState::Stable;
            }
            m.rebalances += 1;
            m.last_heartbeat_ok = Instant::now();
        }
        self.heartbeat_wake.notify_one();
        if let Some(a) = self.assignors.iter().find(|a| a.name() == protocol) {
            a.on_assignment(&assignment, response.generation_id);
        }
        Ok(Joined {
            generation: response.generation_id,
            protocol,
            assignment,
        })
    }

    /// Maps a JoinGroup / SyncGroup error code to what to do (None: no error).
    fn join_error(&self, code: ErrorCode, api: &str, member_id: &str) -> Option<JoinFailure> {
        let failure = match code {
            ErrorCode::None => return None,
            ErrorCode::MemberIdRequired => {
                // KIP-394: the coordinator gave us our id; join again with it.
                let mut m = self.lock();
                m.member_id = member_id.to_owned();
                m.state = MemberState::Unjoined;
                JoinFailure::Retry
            }
            ErrorCode::RebalanceInProgress => {
                let mut m = self.lock();
                m.state = MemberState::Unjoined;
                m.rejoin_needed = true;
                JoinFailure::Retry
            }
            ErrorCode::UnknownMemberId => {
                self.reset_generation(true, &format!("{api}: UNKNOWN_MEMBER_ID"));
                JoinFailure::Lost(code)
            }
            ErrorCode::IllegalGeneration => {
                self.reset_generation(false, &format!("{api}: ILLEGAL_GENERATION"));
                JoinFailure::Lost(code)
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator_moved(code);
                self.lock().state = MemberState::Unjoined;
                JoinFailure::Backoff(format!("{api}: {}", code.name()))
            }
            ErrorCode::CoordinatorLoadInProgress => {
                self.lock().state = MemberState::Unjoined;
                JoinFailure::Backoff(format!("{api}: {}", code.name()))
            }
            ErrorCode::FencedInstanceId => {
                let reason = format!(
                    "{api}: another member with group.instance.id {:?} fenced this one",
                    self.instance_id.as_deref().unwrap_or_default()
                );
                self.fail(code, &reason);
                JoinFailure::Fatal(ConsumerError::FencedInstanceId(reason))
            }
            other if other.is_retriable() => {
                self.lock().state = MemberState::Unjoined;
                JoinFailure::Backoff(format!("{api}: {}", other.name()))
            }
            other => {
                let reason = format!("{api} failed: {}", other.name());
                self.fail(other, &reason);
                JoinFailure::Fatal(ConsumerError::Group {
                    code: other,
                    reason,
                })
            }
        };
        tracing::debug!(group = %self.group_id, api, code = code.name(), "join error");
        Some(failure)
    }

    /// Records a fatal error: the member stops heartbeating.
    fn fail(&self, code: ErrorCode, reason: &str) {
        let mut m = self.lock();
        m.fatal = Some((code, reason.to_owned()));
        m.state = MemberState::Unjoined;
    }

    /// The leader's part: every member's subscription through the chosen
    /// assignor, with partition counts from metadata.
    async fn leader_assign(
        &self,
        protocol: &str,
        response: &JoinGroupResponse,
        own_topics: &[String],
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let assignor = self
            .assignors
            .iter()
            .find(|a| a.name() == protocol)
            .ok_or_else(|| ConsumerError::Group {
                code: ErrorCode::InconsistentGroupProtocol,
                reason: format!("the coordinator chose assignor {protocol:?}, which we lack"),
            })?;
        let mut members = Vec::with_capacity(response.members.len());
        let mut all_topics: Vec<String> = own_topics.to_vec();
        for member in &response.members {
            let subscription = Subscription::decode(member.metadata.clone())
                .map_err(|e| ConsumerError::GroupProtocol(e.to_string()))?;
            all_topics.extend(subscription.topics.iter().cloned());
            members.push(GroupMember {
                member_id: member.member_id.clone(),
                group_instance_id: member.group_instance_id.clone(),
                subscription,
            });
        }
        all_topics.sort();
        all_topics.dedup();
        let names: Vec<&str> = all_topics.iter().map(String::as_str).collect();
        let snapshot = self.cluster.metadata_for_topics(&names).await?;
        self.lock().group_topic_counts = all_topics
            .iter()
            .map(|t| (t.clone(), snapshot.partition_count(t)))
            .collect();
        let partitions: BTreeMap<String, i32> = all_topics
            .iter()
            .filter_map(|t| {
                let topic = snapshot.topic(t)?;
                (topic.error() == ErrorCode::None && topic.partition_count() > 0)
                    .then(|| (t.clone(), topic.partition_count() as i32))
            })
            .collect();
        let assignment =
            assignor
                .assign(&partitions, &members)
                .map_err(|e| ConsumerError::Group {
                    code: ErrorCode::UnknownServerError,
                    reason: e.to_string(),
                })?;
        tracing::debug!(
            group = %self.group_id,
            assignor = protocol,
            members = members.len(),
            "leader computed the assignment"
        );
        let mut out = Vec::with_capacity(members.len());
        for member in &members {
            let bytes = assignment
                .get(&member.member_id)
                .cloned()
                .unwrap_or_default()
                .encode()
                .map_err(|e| ConsumerError::GroupProtocol(e.to_string()))?;
            out.push(
                SyncGroupRequestAssignment::default()
                    .with_member_id(member.member_id.clone())
                    .with_assignment(bytes),
            );
        }
        Ok(out)
    }

    /// One heartbeat; the error code the coordinator answered (transport
    /// failures as COORDINATOR_NOT_AVAILABLE after forgetting the coordinator).
    pub async fn heartbeat(&self) -> (ErrorCode, (String, i32)) {
        let sent = {
            let m = self.lock();
            (m.member_id.clone(), m.generation)
        };
        (self.heartbeat_as(&sent).await, sent)
    }

    async fn heartbeat_as(&self, (member_id, generation): &(String, i32)) -> ErrorCode {
        let (conn, version) = match self
            .coordinator(ConnectionRole::GroupHeartbeat, ApiKey::Heartbeat)
            .await
        {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!(group = %self.group_id, error = %e, "heartbeat: no coordinator");
                self.transport_failure(&e);
                return ErrorCode::CoordinatorNotAvailable;
            }
        };
        let mut request = HeartbeatRequest::default()
            .with_group_id(self.group_id.clone())
            .with_generation_id(*generation)
            .with_member_id(member_id.clone());
        if version >= 3 {
            request = request.with_group_instance_id(self.instance_id.clone());
        }
        match conn
            .send_with(
                &request,
                RequestOptions::role(ConnectionRole::GroupHeartbeat).with_version(version),
            )
            .await
        {
            Ok(response) => ErrorCode::from_code(response.error_code),
            Err(e) => {
                tracing::debug!(group = %self.group_id, error = %e, "heartbeat failed");
                self.transport_failure(&e);
                ErrorCode::CoordinatorNotAvailable
            }
        }
    }

    /// Handles the answer to a heartbeat sent as `sent` (member id,
    /// generation), as Java does.
    pub fn on_heartbeat(&self, code: ErrorCode, sent: &(String, i32)) {
        match code {
            ErrorCode::None => self.lock().last_heartbeat_ok = Instant::now(),
            ErrorCode::RebalanceInProgress => {
                self.lock().last_heartbeat_ok = Instant::now();
                self.request_rejoin("the coordinator started a rebalance");
            }
            ErrorCode::IllegalGeneration => {
                self.reset_if_current(sent, false, "heartbeat: ILLEGAL_GENERATION");
            }
            ErrorCode::UnknownMemberId => {
                self.reset_if_current(sent, true, "heartbeat: UNKNOWN_MEMBER_ID");
            }
            ErrorCode::FencedInstanceId => self.fail(
                code,
                &format!(
                    "heartbeat: another member with group.instance.id {:?} fenced this one",
                    self.instance_id.as_deref().unwrap_or_default()
                ),
            ),
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator_moved(code);
            }
            ErrorCode::CoordinatorLoadInProgress => {}
            other => {
                tracing::warn!(group = %self.group_id, code = other.name(), "heartbeat error")
            }
        }
    }

    /// LeaveGroup (dynamic members only; best effort), then forgets the
    /// membership.
    pub async fn leave(&self, reason: &str) {
        let (member_id, joined) = {
            let m = self.lock();
            (
                m.member_id.clone(),
                m.state != MemberState::Unjoined || m.generation >= 0,
            )
        };
        if self.is_dynamic() && !member_id.is_empty() && joined {
            match self
                .coordinator(ConnectionRole::GroupHeartbeat, ApiKey::LeaveGroup)
                .await
            {
                Ok((conn, version)) => {
                    let mut request =
                        LeaveGroupRequest::default().with_group_id(self.group_id.clone());
                    request = if version >= 3 {
                        let mut identity = MemberIdentity::default().with_member_id(member_id);
                        if version >= 5 {
                            identity = identity.with_reason(Some(reason.to_owned()));
                        }
                        request.with_members(vec![identity])
                    } else {
                        request.with_member_id(member_id)
                    };
                    let result = conn
                        .send_with(
                            &request,
                            RequestOptions::role(ConnectionRole::GroupHeartbeat)
                                .with_version(version),
                        )
                        .await;
                    tracing::info!(group = %self.group_id, reason, ok = result.is_ok(), "left group");
                }
                Err(e) => {
                    tracing::debug!(group = %self.group_id, error = %e, "LeaveGroup: no coordinator")
                }
            }
        }
        let mut m = self.lock();
        m.generation = -1;
        m.protocol = None;
        m.state = MemberState::Unjoined;
        if self.is_dynamic() {
            m.member_id.clear();
        }
        m.rejoin_needed = true;
        m.rejoin_reason = reason.to_owned();
    }

    /// Commits `offsets`: as a member of the current generation when the
    /// group assigns the partitions (`as_member`), otherwise as a simple
    /// consumer (generation -1) that only stores offsets in the group.
    /// Per-partition errors come back as [`ConsumerError::CommitFailed`],
    /// [`ConsumerError::RebalanceInProgress`] or a retriable group error.
    pub async fn commit(
        &self,
        offsets: &[(TopicPartition, OffsetAndMetadata)],
        as_member: bool,
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let sent = if as_member {
            self.commit_generation()?
        } else {
            (String::new(), -1)
        };
        let (member_id, generation) = sent.clone();
        let (conn, version) = self
            .coordinator(ConnectionRole::GroupHeartbeat, ApiKey::OffsetCommit)
            .await
            .inspect_err(|e| self.transport_failure(e))?;
        let topics = group_by_topic(offsets.iter().map(|(tp, om)| {
            let mut p = OffsetCommitRequestPartition::default()
                .with_partition_index(tp.partition())
                .with_committed_offset(om.offset)
                .with_committed_metadata(Some(om.metadata.clone()));
            if version >= 6 {
                p = p.with_committed_leader_epoch(om.leader_epoch.unwrap_or(-1));
            }
            (tp, p)
        }));
        let mut request = OffsetCommitRequest::default()
            .with_group_id(self.group_id.clone())
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(member_id)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(name)
                            .with_partitions(partitions)
                    })
                    .collect(),
            );
        if (2..=4).contains(&version) {
            request = request.with_retention_time_ms(-1);
        }
        if version >= 7 {
            request = request.with_group_instance_id(self.instance_id.clone());
        }
        let response = self.send_member(&conn, &request, version).await?;
        let mut first_error = None;
        for topic in &response.topics {
            for p in &topic.partitions {
                let code = ErrorCode::from_code(p.error_code);
                if code != ErrorCode::None && first_error.is_none() {
                    first_error = Some((
                        TopicPartition::new(topic.name.as_str(), p.partition_index),
                        code,
                    ));
                }
            }
        }
        let Some((tp, code)) = first_error else {
            tracing::debug!(group = %self.group_id, partitions = offsets.len(), "offsets committed");
            return Ok(());
        };
        Err(self.commit_error(tp, code, &sent))
    }

    /// The member id and generation a group member commits with: only a
    /// stable generation, as Java does. While a join is under way the commit
    /// is refused as retriable (the partitions may move; commit again after
    /// the rebalance), and outside any generation it has no owner to speak
    /// for. A member told to rejoin is still stable until it sends its
    /// JoinGroup, so the commit before revocation goes out.
    fn commit_generation(&self) -> Result<(String, i32)> {
        let m = self.lock();
        if m.in_stable_generation() {
            return Ok((m.member_id.clone(), m.generation));
        }
        match m.state {
            MemberState::PreparingRebalance | MemberState::CompletingRebalance => {
                Err(ConsumerError::RebalanceInProgress(
                    "the member is rejoining the group; commit after the rebalance completes"
                        .to_owned(),
                ))
            }
            _ => Err(ConsumerError::CommitFailed(
                "the member is not in an active generation of the group (it lost its \
                 partitions or has not joined yet); the offsets were not committed"
                    .to_owned(),
            )),
        }
    }

    fn commit_error(
        &self,
        tp: TopicPartition,
        code: ErrorCode,
        sent: &(String, i32),
    ) -> ConsumerError {
        match code {
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => {
                let reason = format!("commit: {}", code.name());
                if self.reset_if_current(sent, code == ErrorCode::UnknownMemberId, &reason)
                    || sent.1 < 0
                {
                    ConsumerError::CommitFailed(format!(
                        "the group rebalanced and moved the partitions on ({} for {tp}); \
                         the offsets were not committed",
                        code.name()
                    ))
                } else {
                    ConsumerError::RebalanceInProgress(format!(
                        "{} for {tp}: the commit was sent in generation {}, which the member \
                         has left since; commit again in the new generation",
                        code.name(),
                        sent.1
                    ))
                }
            }
            ErrorCode::RebalanceInProgress => {
                let m = self.lock();
                let current = m.generation == sent.1 && m.member_id == sent.0;
                drop(m);
                if current {
                    self.request_rejoin("commit: rebalance in progress");
                }
                ConsumerError::RebalanceInProgress(format!(
                    "the coordinator is rebalancing the group ({tp}); commit after it completes"
                ))
            }
            ErrorCode::FencedInstanceId => {
                let reason = "commit: this static member was fenced".to_owned();
                self.fail(code, &reason);
                ConsumerError::FencedInstanceId(reason)
            }
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => {
                self.coordinator_moved(code);
                ConsumerError::Network(NetError::Broker {
                    api: ApiKey::OffsetCommit,
                    code,
                    message: None,
                })
            }
            code => ConsumerError::Partition {
                partition: tp,
                code,
            },
        }
    }

    /// The committed offsets of `partitions` (`None` where nothing is
    /// committed), waiting for pending transactional commits
    /// (`require_stable`) when the coordinator supports it.
    pub async fn fetch_committed(
        &self,
        partitions: &[TopicPartition],
        timeout: Duration,
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let backoff = self.cluster.config().retry_backoff;
        loop {
            let error = match self.fetch_committed_once(partitions).await {
                Ok(found) => return Ok(found),
                Err(e) if e.is_retriable() => e,
                Err(e) => return Err(e),
            };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(error);
            }
            tracing::debug!(group = %self.group_id, error = %error, "OffsetFetch retried");
            tokio::time::sleep(backoff).await;
        }
    }

    async fn fetch_committed_once(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<OffsetAndMetadata>>> {
        let mut out = HashMap::with_capacity(partitions.len());
        if partitions.is_empty() {
            return Ok(out);
        }
        let (conn, version) = self
            .coordinator(ConnectionRole::GroupHeartbeat, ApiKey::OffsetFetch)
            .await
            .inspect_err(|e| self.transport_failure(e))?;
        let topics = group_by_topic(partitions.iter().map(|tp| (tp, tp.partition())));
        let mut request = OffsetFetchRequest::default();
        if version >= 8 {
            request = request.with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(self.group_id.clone())
                .with_topics(Some(
                    topics
                        .into_iter()
                        .map(|(name, ps)| {
                            OffsetFetchRequestTopics::default()
                                .with_name(name)
                                .with_partition_indexes(ps)
                        })
                        .collect(),
                ))]);
        } else {
            request = request
                .with_group_id(self.group_id.clone())
                .with_topics(Some(
                    topics
                        .into_iter()
                        .map(|(name, ps)| {
                            OffsetFetchRequestTopic::default()
                                .with_name(name)
                                .with_partition_indexes(ps)
                        })
                        .collect(),
                ));
        }
        if version >= 7 {
            request = request.with_require_stable(true);
        }
        let response = self.send_member(&conn, &request, version).await?;
        // (topic, partition, offset, epoch, metadata, error)
        let mut rows: Vec<(String, i32, i64, i32, Option<String>, i16)> = Vec::new();
        // The single-group (v0-7) and multi-group (v8+) forms have the same
        // fields in different types.
        macro_rules! collect_rows {
            ($topics:expr) => {
                for t in $topics {
                    for p in t.partitions {
                        rows.push((
                            t.name.clone(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.metadata,
                            p.error_code,
                        ));
                    }
                }
            };
        }
        let group_code = if version >= 8 {
            let Some(group) = response
                .groups
                .into_iter()
                .find(|g| g.group_id == self.group_id)
            else {
                return Err(ConsumerError::GroupProtocol(
                    "OffsetFetch response lacks the group".to_owned(),
                ));
            };
            collect_rows!(group.topics);
            group.error_code
        } else {
            collect_rows!(response.topics);
            response.error_code
        };
        let check = |code: i16| -> Result<()> {
            let code = ErrorCode::from_code(code);
            if code == ErrorCode::None {
                return Ok(());
            }
            self.coordinator_moved(code);
            Err(ConsumerError::Network(NetError::Broker {
                api: ApiKey::OffsetFetch,
                code,
                message: None,
            }))
        };
        check(group_code)?;
        for (topic, partition, offset, epoch, metadata, code) in rows {
            check(code)?;
            let committed = (offset >= 0).then(|| OffsetAndMetadata {
                offset,
                leader_epoch: (epoch >= 0).then_some(epoch),
                metadata: metadata.unwrap_or_default(),
            });
            out.insert(TopicPartition::new(topic, partition), committed);
        }
        for tp in partitions {
            out.entry(tp.clone()).or_insert(None);
        }
        Ok(out)
    }
}

/// The heartbeat task: a heartbeat every `heartbeat.interval.ms` while the
/// member is in a generation, on its own connection, whatever the
/// application does; and the `max.poll.interval.ms` check, which makes a
/// member whose application stopped polling leave the group.
pub(crate) async fn heartbeat_loop(coordinator: Arc<GroupCoordinator>, wake_poll: impl Fn()) {
    let mut next = tokio::time::Instant::now();
    loop {
        let (state, closed, fatal, last_poll, last_ok) = {
            let m = coordinator.lock();
            (
                m.state,
                m.closed,
                m.fatal.is_some(),
                m.last_poll,
                m.last_heartbeat_ok,
            )
        };
        if closed {
            return;
        }
        let active = matches!(
            state,
            MemberState::Stable | MemberState::CompletingRebalance
        ) && !fatal;
        if active && last_poll.elapsed() > coordinator.rebalance_timeout {
            tracing::warn!(
                group = %coordinator.group_id,
                max_poll_interval = ?coordinator.rebalance_timeout,
                "the application did not poll within max.poll.interval.ms; leaving the group"
            );
            coordinator.leave("consumer poll timeout has expired").await;
            if !coordinator.is_dynamic() {
                // A static member sends no LeaveGroup; it is only reset.
                coordinator.reset_generation(false, "consumer poll timeout has expired");
            }
            wake_poll();
            continue;
        }
        if active && tokio::time::Instant::now() >= next {
            if last_ok.elapsed() > coordinator.session_timeout {
                // Java marks the coordinator unknown when heartbeats fail for a
                // whole session: look it up again.
                coordinator
                    .cluster
                    .invalidate_coordinator(CoordinatorType::Group, &coordinator.group_id);
            }
            let (code, sent) = coordinator.heartbeat().await;
            let was_rejoin = coordinator.lock().rejoin_needed;
            coordinator.on_heartbeat(code, &sent);
            let backoff = coordinator.cluster.config().retry_backoff;
            next = tokio::time::Instant::now()
                + match code {
                    ErrorCode::None | ErrorCode::RebalanceInProgress => {
                        coordinator.heartbeat_interval
                    }
                    _ => backoff,
                };
            let m = coordinator.lock();
            if (m.rejoin_needed && !was_rejoin) || m.fatal.is_some() || m.generation < 0 {
                drop(m);
                wake_poll();
            }
            continue;
        }
        let until = if active {
            let poll_deadline =
                tokio::time::Instant::from_std(last_poll + coordinator.rebalance_timeout);
            next.min(poll_deadline + Duration::from_millis(1))
        } else {
            tokio::time::Instant::now() + coordinator.heartbeat_interval
        };
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {}
            _ = coordinator.heartbeat_wake.notified() => {
                if coordinator.lock().state == MemberState::CompletingRebalance {
                    next = tokio::time::Instant::now() + coordinator.heartbeat_interval;
                }
            }
        }
    }
}
