//! The classic group coordinator: JoinGroup (KIP-394 member ids, static
//! members), SyncGroup, Heartbeat, LeaveGroup, session and rebalance
//! timeouts, OffsetCommit and OffsetFetch.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::messages::join_group_response::JoinGroupResponseMember;
use crate::protocol::messages::leave_group_response::MemberResponse;
use crate::protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use crate::protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, RequestHeader, SyncGroupRequest, SyncGroupResponse,
};
use crate::protocol::ErrorCode;

use super::server::TICK;
use super::state::{Shared, State, GROUP_KEY};

/// Where a classic group is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Assigned and running.
    Stable,
}

#[derive(Debug, Clone)]
struct Member {
    id: String,
    instance_id: Option<String>,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    last_seen: Instant,
    joined: bool,
    join_response: Option<JoinGroupResponse>,
    assignment: Bytes,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Committed {
    pub(super) offset: i64,
    pub(super) leader_epoch: i32,
    pub(super) metadata: Option<String>,
}

/// One classic group.
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) state: GroupState,
    pub(super) generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: Vec<Member>,
    pending: HashSet<String>,
    rebalance_deadline: Option<Instant>,
    /// When a rebalance of a group that was empty may complete at the earliest.
    initial_delay_until: Option<Instant>,
    pub(super) offsets: BTreeMap<(String, i32), Committed>,
}

impl Group {
    /// A group with no members and no offsets.
    pub(super) fn empty() -> Group {
        Group::new()
    }

    fn new() -> Group {
        Group {
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending: HashSet::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            offsets: BTreeMap::new(),
        }
    }

    fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// The member ids of the group, for tests.
    pub(super) fn member_ids(&self) -> Vec<String> {
        self.members.iter().map(|m| m.id.clone()).collect()
    }

    /// Starts a rebalance: every member has to join again.
    fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::PreparingRebalance {
            return;
        }
        if self.state == GroupState::Empty && !initial_delay.is_zero() {
            self.initial_delay_until = Some(now + initial_delay);
        }
        self.state = GroupState::PreparingRebalance;
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.rebalance_deadline = Some(now + timeout);
        for m in &mut self.members {
            m.joined = false;
            m.join_response = None;
        }
    }

    /// Completes the join phase when everyone has joined (or, with `force`,
    /// after the rebalance timeout, dropping those who did not).
    fn try_complete_join(&mut self, now: Instant, force: bool) -> bool {
        if self.state != GroupState::PreparingRebalance {
            return false;
        }
        let all_joined = self.members.iter().all(|m| m.joined);
        let delayed = self.initial_delay_until.is_some_and(|t| now < t);
        if !force && (!all_joined || delayed) {
            return false;
        }
        self.members.retain(|m| m.joined);
        self.initial_delay_until = None;
        self.rebalance_deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            return true;
        }
        // The first protocol of the first member that every member supports.
        let protocol = self.members[0]
            .protocols
            .iter()
            .map(|(name, _)| name.clone())
            .find(|name| {
                self.members
                    .iter()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == name))
            });
        self.protocol = protocol.clone();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.iter().any(|m| &m.id == l))
        {
            self.leader = Some(self.members[0].id.clone());
        }
        let leader = self.leader.clone().unwrap_or_default();
        let listing: Vec<JoinGroupResponseMember> = self
            .members
            .iter()
            .map(|m| {
                let metadata = m
                    .protocols
                    .iter()
                    .find(|(n, _)| Some(n) == protocol.as_ref())
                    .map(|(_, md)| md.clone())
                    .unwrap_or_default();
                JoinGroupResponseMember::default()
                    .with_member_id(m.id.clone())
                    .with_group_instance_id(m.instance_id.clone())
                    .with_metadata(metadata)
            })
            .collect();
        let generation = self.generation;
        let protocol_type = self.protocol_type.clone();
        for m in &mut self.members {
            m.assignment = Bytes::new();
            m.last_seen = now;
            m.join_response = Some(
                JoinGroupResponse::default()
                    .with_generation_id(generation)
                    .with_protocol_type(protocol_type.clone())
                    .with_protocol_name(protocol.clone().or_else(|| Some(String::new())))
                    .with_leader(leader.clone())
                    .with_member_id(m.id.clone())
                    .with_members(if m.id == leader {
                        listing.clone()
                    } else {
                        Vec::new()
                    }),
            );
        }
        self.state = GroupState::CompletingRebalance;
        true
    }

    /// Removes a member; the others rebalance.
    fn remove_member(&mut self, id: &str, now: Instant) {
        self.members.retain(|m| m.id != id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, Duration::ZERO);
                if self.members.is_empty() {
                    self.try_complete_join(now, true);
                }
            }
            GroupState::PreparingRebalance => {
                self.try_complete_join(now, false);
            }
            GroupState::Empty => {}
        }
    }
}

/// Expires members and completes overdue rebalances; true when anything changed.
pub(super) fn tick(state: &mut State, now: Instant) -> bool {
    let mut changed = false;
    for group in state.groups.values_mut() {
        let expired: Vec<String> = group
            .members
            .iter()
            .filter(|m| {
                let waiting = group.state == GroupState::PreparingRebalance && m.joined;
                !waiting && now.duration_since(m.last_seen) > m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            group.remove_member(&id, now);
            changed = true;
        }
        if group.state == GroupState::PreparingRebalance {
            let overdue = group.rebalance_deadline.is_some_and(|d| now >= d);
            changed |= group.try_complete_join(now, overdue);
        }
    }
    changed
}

fn join_error(code: ErrorCode, member_id: &str) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(code.code())
        .with_generation_id(-1)
        .with_member_id(member_id.to_owned())
}

pub(super) async fn join_group(
    shared: &Arc<Shared>,
    node_id: i32,
    request: JoinGroupRequest,
    header: &RequestHeader,
    version: i16,
) -> JoinGroupResponse {
    let member_id = match start_join(shared, node_id, &request, header, version) {
        Ok(JoinStart::Waiting(id)) => id,
        Ok(JoinStart::Answered(response)) => return response,
        Err((code, id)) => return join_error(code, &id),
    };
    shared.group_changed.notify_waiters();
    shared
        .wait_for(
            &shared.group_changed,
            || TICK * 10,
            |state| {
                if state
                    .check_coordinator(node_id, GROUP_KEY, &request.group_id)
                    .is_err()
                {
                    return Some(join_error(ErrorCode::NotCoordinator, &member_id));
                }
                let Some(member) = state
                    .groups
                    .get_mut(&request.group_id)
                    .and_then(|g| g.member_mut(&member_id))
                else {
                    return Some(join_error(ErrorCode::UnknownMemberId, &member_id));
                };
                member.last_seen = Instant::now();
                member.join_response.take()
            },
        )
        .await
}

enum JoinStart {
    Waiting(String),
    Answered(JoinGroupResponse),
}

fn start_join(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &JoinGroupRequest,
    header: &RequestHeader,
    version: i16,
) -> Result<JoinStart, (ErrorCode, String)> {
    let mut state = shared.lock();
    let given = request.member_id.clone();
    let fail = |code: ErrorCode| Err((code, given.clone()));
    if state
        .check_coordinator(node_id, GROUP_KEY, &request.group_id)
        .is_err()
    {
        return fail(ErrorCode::NotCoordinator);
    }
    if request.group_id.is_empty() {
        return fail(ErrorCode::InvalidGroupId);
    }
    let (min, max) = state.options.session_timeout_range;
    let session = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
    if session < min || session > max {
        return fail(ErrorCode::InvalidSessionTimeout);
    }
    if request.protocol_type.is_empty() || request.protocols.is_empty() {
        return fail(ErrorCode::InconsistentGroupProtocol);
    }
    let rebalance = if version >= 1 {
        Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64)
    } else {
        session
    };
    let protocols: Vec<(String, Bytes)> = request
        .protocols
        .iter()
        .map(|p| (p.name.clone(), p.metadata.clone()))
        .collect();
    let initial_delay = state.options.initial_rebalance_delay;
    let next_member = state.next_member_id;
    let now = Instant::now();
    let group = state
        .groups
        .entry(request.group_id.clone())
        .or_insert_with(Group::new);
    if group.state != GroupState::Empty {
        let same_type = group.protocol_type.as_deref() == Some(request.protocol_type.as_str());
        let common = protocols.iter().any(|(name, _)| {
            group
                .members
                .iter()
                .filter(|m| m.id != given)
                .all(|m| m.protocols.iter().any(|(n, _)| n == name))
        });
        if !same_type || !common {
            return fail(ErrorCode::InconsistentGroupProtocol);
        }
    }
    let new_member = |id: String| Member {
        id,
        instance_id: request.group_instance_id.clone(),
        session_timeout: session,
        rebalance_timeout: rebalance,
        protocols: protocols.clone(),
        last_seen: now,
        joined: false,
        join_response: None,
        assignment: Bytes::new(),
    };
    let static_holder = request.group_instance_id.as_ref().and_then(|instance| {
        group
            .members
            .iter()
            .find(|m| m.instance_id.as_ref() == Some(instance))
            .map(|m| m.id.clone())
    });
    let member_id = if given.is_empty() {
        let client = header.client_id.as_deref().unwrap_or("member");
        let id = format!("{client}-{next_member:08}");
        state.next_member_id += 1;
        let group = state
            .groups
            .get_mut(&request.group_id)
            .expect("the group was just looked up");
        match static_holder {
            Some(old) => {
                // A static member rejoining under a new id replaces the old one.
                // As Kafka does, a static member's rejoin needs no rebalance
                // while the group's selected protocol is still among its own
                // (its subscription bytes, which carry its generation, may differ).
                let unchanged = group
                    .protocol
                    .as_ref()
                    .is_some_and(|selected| protocols.iter().any(|(n, _)| n == selected));
                let old_member = group.member_mut(&old).expect("holder is a member");
                old_member.id = id.clone();
                old_member.last_seen = now;
                old_member.protocols = protocols.clone();
                if group.leader.as_deref() == Some(old.as_str()) {
                    group.leader = Some(id.clone());
                } else if group.state == GroupState::Stable && unchanged {
                    return Ok(JoinStart::Answered(
                        JoinGroupResponse::default()
                            .with_generation_id(group.generation)
                            .with_protocol_type(group.protocol_type.clone())
                            .with_protocol_name(Some(group.protocol.clone().unwrap_or_default()))
                            .with_leader(group.leader.clone().unwrap_or_default())
                            .with_member_id(id),
                    ));
                }
            }
            None if version >= 4 && request.group_instance_id.is_none() => {
                group.pending.insert(id.clone());
                return Err((ErrorCode::MemberIdRequired, id));
            }
            None => group.members.push(new_member(id.clone())),
        }
        id
    } else {
        let group = state
            .groups
            .get_mut(&request.group_id)
            .expect("the group was just looked up");
        if let Some(holder) = &static_holder {
            if *holder != given {
                return fail(ErrorCode::FencedInstanceId);
            }
        }
        if let Some(member) = group.member_mut(&given) {
            let unchanged = member.protocols == protocols;
            member.protocols = protocols.clone();
            member.session_timeout = session;
            member.rebalance_timeout = rebalance;
            member.last_seen = now;
            let is_leader = group.leader.as_deref() == Some(given.as_str());
            if group.state == GroupState::Stable && unchanged && !is_leader {
                return Ok(JoinStart::Answered(
                    JoinGroupResponse::default()
                        .with_generation_id(group.generation)
                        .with_protocol_type(group.protocol_type.clone())
                        .with_protocol_name(Some(group.protocol.clone().unwrap_or_default()))
                        .with_leader(group.leader.clone().unwrap_or_default())
                        .with_member_id(given.clone()),
                ));
            }
        } else if group.pending.remove(&given) {
            group.members.push(new_member(given.clone()));
        } else {
            return fail(ErrorCode::UnknownMemberId);
        }
        given.clone()
    };
    let group = state
        .groups
        .get_mut(&request.group_id)
        .expect("the group was just looked up");
    group.protocol_type = Some(request.protocol_type.clone());
    group.prepare_rebalance(now, initial_delay);
    if let Some(member) = group.member_mut(&member_id) {
        member.joined = true;
        member.join_response = None;
    }
    group.try_complete_join(now, false);
    Ok(JoinStart::Waiting(member_id))
}

fn sync_error(code: ErrorCode) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(code.code())
}

pub(super) async fn sync_group(
    shared: &Arc<Shared>,
    node_id: i32,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    {
        let mut state = shared.lock();
        if let Err(code) = check_member(
            &mut state,
            node_id,
            &request.group_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            request.generation_id,
        ) {
            return sync_error(code);
        }
        let group = state.groups.get_mut(&request.group_id).expect("checked");
        if request
            .protocol_name
            .as_ref()
            .is_some_and(|p| group.protocol.as_ref() != Some(p))
            || request
                .protocol_type
                .as_ref()
                .is_some_and(|p| group.protocol_type.as_ref() != Some(p))
        {
            return sync_error(ErrorCode::InconsistentGroupProtocol);
        }
        match group.state {
            GroupState::PreparingRebalance => return sync_error(ErrorCode::RebalanceInProgress),
            GroupState::Empty => return sync_error(ErrorCode::UnknownMemberId),
            GroupState::Stable | GroupState::CompletingRebalance => {}
        }
        if group.state == GroupState::CompletingRebalance
            && group.leader.as_deref() == Some(request.member_id.as_str())
        {
            for m in &mut group.members {
                m.assignment = request
                    .assignments
                    .iter()
                    .find(|a| a.member_id == m.id)
                    .map(|a| a.assignment.clone())
                    .unwrap_or_default();
            }
            group.state = GroupState::Stable;
            drop(state);
            shared.group_changed.notify_waiters();
        }
    }
    shared
        .wait_for(
            &shared.group_changed,
            || TICK * 10,
            |state| {
                if state
                    .check_coordinator(node_id, GROUP_KEY, &request.group_id)
                    .is_err()
                {
                    return Some(sync_error(ErrorCode::NotCoordinator));
                }
                let Some(group) = state.groups.get_mut(&request.group_id) else {
                    return Some(sync_error(ErrorCode::UnknownMemberId));
                };
                if group.generation != request.generation_id
                    || group.state == GroupState::PreparingRebalance
                {
                    return Some(sync_error(ErrorCode::RebalanceInProgress));
                }
                let stable = group.state == GroupState::Stable;
                let protocol_type = group.protocol_type.clone();
                let protocol = group.protocol.clone();
                let Some(member) = group.member_mut(&request.member_id) else {
                    return Some(sync_error(ErrorCode::UnknownMemberId));
                };
                member.last_seen = Instant::now();
                stable.then(|| {
                    SyncGroupResponse::default()
                        .with_protocol_type(protocol_type)
                        .with_protocol_name(protocol)
                        .with_assignment(member.assignment.clone())
                })
            },
        )
        .await
}

/// Checks that `member_id` (of `generation`) belongs to the group here.
fn check_member(
    state: &mut State,
    node_id: i32,
    group_id: &str,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), ErrorCode> {
    state.check_coordinator(node_id, GROUP_KEY, group_id)?;
    let group = state
        .groups
        .get_mut(group_id)
        .ok_or(ErrorCode::UnknownMemberId)?;
    if let Some(instance) = instance_id {
        let holder = group
            .members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance));
        if holder.is_some_and(|m| m.id != member_id) {
            return Err(ErrorCode::FencedInstanceId);
        }
    }
    let member = group
        .member_mut(member_id)
        .ok_or(ErrorCode::UnknownMemberId)?;
    member.last_seen = Instant::now();
    if generation != group.generation {
        return Err(ErrorCode::IllegalGeneration);
    }
    Ok(())
}

pub(super) fn heartbeat(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &HeartbeatRequest,
) -> HeartbeatResponse {
    let mut state = shared.lock();
    let code = match check_member(
        &mut state,
        node_id,
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
    ) {
        Err(code) => code,
        Ok(()) => match state.groups.get(&request.group_id).map(|g| g.state) {
            Some(GroupState::PreparingRebalance) => ErrorCode::RebalanceInProgress,
            Some(GroupState::Empty) | None => ErrorCode::UnknownMemberId,
            Some(_) => ErrorCode::None,
        },
    };
    HeartbeatResponse::default().with_error_code(code.code())
}

pub(super) fn leave_group(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let mut state = shared.lock();
    if state
        .check_coordinator(node_id, GROUP_KEY, &request.group_id)
        .is_err()
    {
        return LeaveGroupResponse::default().with_error_code(ErrorCode::NotCoordinator.code());
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.clone(), m.group_instance_id.clone()))
            .collect()
    } else {
        vec![(request.member_id.clone(), None)]
    };
    let now = Instant::now();
    let mut results = Vec::new();
    let Some(group) = state.groups.get_mut(&request.group_id) else {
        return LeaveGroupResponse::default().with_error_code(ErrorCode::UnknownMemberId.code());
    };
    for (member_id, instance) in leaving {
        let found = group
            .members
            .iter()
            .find(|m| match &instance {
                Some(i) => m.instance_id.as_ref() == Some(i),
                None => m.id == member_id,
            })
            .map(|m| m.id.clone());
        let code = match found {
            Some(id) if instance.is_some() && !member_id.is_empty() && id != member_id => {
                ErrorCode::FencedInstanceId
            }
            Some(id) => {
                group.remove_member(&id, now);
                ErrorCode::None
            }
            None => ErrorCode::UnknownMemberId,
        };
        results.push(
            MemberResponse::default()
                .with_member_id(member_id)
                .with_group_instance_id(instance)
                .with_error_code(code.code()),
        );
    }
    drop(state);
    shared.group_changed.notify_waiters();
    if version >= 3 {
        LeaveGroupResponse::default().with_members(results)
    } else {
        LeaveGroupResponse::default().with_error_code(results[0].error_code)
    }
}

pub(super) fn offset_commit(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &OffsetCommitRequest,
) -> OffsetCommitResponse {
    let mut state = shared.lock();
    let group_error = commit_check(&mut state, node_id, request);
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = group_error.err().unwrap_or_else(|| {
                        if state.partition(&t.name, p.partition_index).is_none() {
                            return ErrorCode::UnknownTopicOrPartition;
                        }
                        let group = state
                            .groups
                            .entry(request.group_id.clone())
                            .or_insert_with(Group::new);
                        group.offsets.insert(
                            (t.name.clone(), p.partition_index),
                            Committed {
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata: p.committed_metadata.clone(),
                            },
                        );
                        ErrorCode::None
                    });
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Whether a group commit may be stored, as Kafka decides.
fn commit_check(
    state: &mut State,
    node_id: i32,
    request: &OffsetCommitRequest,
) -> Result<(), ErrorCode> {
    state.check_coordinator(node_id, GROUP_KEY, &request.group_id)?;
    if request.group_id.is_empty() {
        return Err(ErrorCode::InvalidGroupId);
    }
    let group_state = state.groups.get(&request.group_id).map(|g| g.state);
    if request.generation_id_or_member_epoch < 0
        && matches!(group_state, None | Some(GroupState::Empty))
    {
        return Ok(());
    }
    check_member(
        state,
        node_id,
        &request.group_id,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id_or_member_epoch,
    )?;
    if group_state == Some(GroupState::CompletingRebalance) {
        return Err(ErrorCode::RebalanceInProgress);
    }
    Ok(())
}

pub(super) fn offset_fetch(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut state = shared.lock();
    // Which (group, topics) are asked for; `None` topics = every committed one.
    let asked: Vec<(String, Option<TopicList>)> = if version >= 8 {
        request
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                        .collect()
                });
                (g.group_id.clone(), topics)
            })
            .collect()
    } else {
        let topics = request.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                .collect()
        });
        vec![(request.group_id.clone(), topics)]
    };
    let mut answers = Vec::new();
    for (group_id, topics) in asked {
        let error = state.check_coordinator(node_id, GROUP_KEY, &group_id).err();
        let offsets = state
            .groups
            .get(&group_id)
            .map(|g| g.offsets.clone())
            .unwrap_or_default();
        let topics: TopicList = match topics {
            Some(t) => t,
            None => {
                let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in offsets.keys() {
                    all.entry(topic.clone()).or_default().push(*partition);
                }
                all.into_iter().collect()
            }
        };
        let rows: Rows = topics
            .iter()
            .map(|(name, parts)| {
                (
                    name.clone(),
                    parts
                        .iter()
                        .map(|&p| (p, offsets.get(&(name.clone(), p)).cloned()))
                        .collect(),
                )
            })
            .collect();
        answers.push((group_id, error, rows));
    }
    if version >= 8 {
        let groups = answers
            .into_iter()
            .map(|(group_id, error, rows)| {
                let topics = rows
                    .into_iter()
                    .map(|(name, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(p)
                                            .with_committed_offset(
                                                c.as_ref().map_or(-1, |c| c.offset),
                                            )
                                            .with_committed_leader_epoch(
                                                c.as_ref().map_or(-1, |c| c.leader_epoch),
                                            )
                                            .with_metadata(Some(
                                                c.and_then(|c| c.metadata).unwrap_or_default(),
                                            ))
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(error.map_or(0, |e| e.code()))
                    .with_topics(if error.is_some() { Vec::new() } else { topics })
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let (_, error, rows) = answers.pop().expect("one group below v8");
    let topics = rows
        .into_iter()
        .map(|(name, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            let mut row = OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(c.as_ref().map_or(-1, |c| c.offset))
                                .with_metadata(Some(
                                    c.as_ref()
                                        .and_then(|c| c.metadata.clone())
                                        .unwrap_or_default(),
                                ));
                            if version >= 5 {
                                row = row.with_committed_leader_epoch(
                                    c.as_ref().map_or(-1, |c| c.leader_epoch),
                                );
                            }
                            if version < 2 {
                                row = row.with_error_code(error.map_or(0, |e| e.code()));
                            }
                            row
                        })
                        .collect(),
                )
        })
        .collect();
    let mut response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response = response.with_error_code(error.map_or(0, |e| e.code()));
    }
    response
}

/// Topics and partitions asked for.
type TopicList = Vec<(String, Vec<i32>)>;

/// Committed offsets by topic and partition, `None` where nothing was committed.
type Rows = Vec<(String, Vec<(i32, Option<Committed>)>)>;
