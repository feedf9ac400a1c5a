//! The [`Assignor`] trait and the types the leader's assignment works on.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use super::protocol::{Assignment, Subscription};

/// How members give up partitions in a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RebalanceProtocol {
    /// Every member revokes everything before joining (stop the world).
    Eager,
    /// Members keep their partitions; only the ones that move are revoked,
    /// and handed out in a following rebalance (KIP-429).
    Cooperative,
}

/// One member of the group as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The broker-given member id.
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// Its decoded subscription.
    pub subscription: Subscription,
}

impl GroupMember {
    /// A dynamic member.
    pub fn new(member_id: impl Into<String>, subscription: Subscription) -> Self {
        GroupMember {
            member_id: member_id.into(),
            group_instance_id: None,
            subscription,
        }
    }
    /// Makes it a static member with `group.instance.id`.
    #[must_use]
    pub fn with_group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.group_instance_id = Some(id.into());
        self
    }

    /// Java's member order: static members first, by group.instance.id, then
    /// dynamic members by member id.
    pub(crate) fn java_order(&self, other: &Self) -> Ordering {
        match (&self.group_instance_id, &other.group_instance_id) {
            (Some(a), Some(b)) => a.cmp(b).then_with(|| self.member_id.cmp(&other.member_id)),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => self.member_id.cmp(&other.member_id),
        }
    }

    pub(crate) fn subscribes(&self, topic: &str) -> bool {
        self.subscription.topics.iter().any(|t| t == topic)
    }
}

/// The leader's answer: an assignment per member id.
pub type GroupAssignment = BTreeMap<String, Assignment>;

/// Why an assignor could not compute an assignment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssignError {
    /// Two members have the same member id.
    #[error("member id {0} appears more than once")]
    DuplicateMember(String),
    /// A custom assignor's own failure.
    #[error("assignor {assignor} failed: {reason}")]
    Failed {
        /// The assignor name.
        assignor: String,
        /// What went wrong.
        reason: String,
    },
}

/// A partition assignment strategy, run by the group leader.
///
/// Implement it for a custom strategy and list it in the consumer's
/// assignors; `name` is what members advertise in JoinGroup, so every
/// client in the group must use the same name for the same algorithm.
///
/// ```
/// use std::collections::BTreeMap;
/// use ferrokafka::consumer::group::{
///     AssignError, Assignment, Assignor, GroupAssignment, GroupMember, Subscription,
/// };
/// use ferrokafka::consumer::TopicPartition;
///
/// /// Everything to the first member.
/// #[derive(Debug)]
/// struct AllToFirst;
/// impl Assignor for AllToFirst {
///     fn name(&self) -> &str { "all-to-first" }
///     fn assign(
///         &self,
///         partitions_per_topic: &BTreeMap<String, i32>,
///         members: &[GroupMember],
///     ) -> Result<GroupAssignment, AssignError> {
///         let mut out: GroupAssignment =
///             members.iter().map(|m| (m.member_id.clone(), Assignment::default())).collect();
///         if let Some(first) = members.first() {
///             for topic in &first.subscription.topics {
///                 for p in 0..partitions_per_topic.get(topic).copied().unwrap_or(0) {
///                     out.get_mut(&first.member_id).unwrap()
///                         .partitions.push(TopicPartition::new(topic.as_str(), p));
///                 }
///             }
///         }
///         Ok(out)
///     }
/// }
/// let members = [GroupMember::new("a", Subscription::new(["t"]))];
/// let out = AllToFirst.assign(&BTreeMap::from([("t".to_owned(), 2)]), &members).unwrap();
/// assert_eq!(out["a"].partitions.len(), 2);
/// ```
pub trait Assignor: Send + Sync + fmt::Debug {
    /// The protocol name advertised in JoinGroup (`range`, `cooperative-sticky`, ...).
    fn name(&self) -> &str;

    /// The rebalance protocols it supports, preferred last (Java's order).
    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager]
    }

    /// User data for this member's subscription, given its topics and the
    /// generation of the partitions it owns (-1 if none).
    fn subscription_user_data(&self, topics: &[String], generation_id: i32) -> Option<Bytes> {
        let _ = (topics, generation_id);
        None
    }

    /// Computes the assignment: `partitions_per_topic` holds the partition
    /// count of every subscribed topic the leader found in metadata (topics
    /// missing from it get no partitions). Every member gets an entry.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<GroupAssignment, AssignError>;

    /// Called on every member when its assignment arrives in `generation_id`.
    fn on_assignment(&self, assignment: &Assignment, generation_id: i32) {
        let _ = (assignment, generation_id);
    }
}

/// An assignment with an empty entry for every member; fails on duplicate ids.
pub(crate) fn empty_assignment(members: &[GroupMember]) -> Result<GroupAssignment, AssignError> {
    let mut out = GroupAssignment::new();
    for member in members {
        if out
            .insert(member.member_id.clone(), Assignment::default())
            .is_some()
        {
            return Err(AssignError::DuplicateMember(member.member_id.clone()));
        }
    }
    Ok(out)
}

/// Members in Java's order.
pub(crate) fn sorted_members(members: &[GroupMember]) -> Vec<&GroupMember> {
    let mut sorted: Vec<&GroupMember> = members.iter().collect();
    sorted.sort_by(|a, b| a.java_order(b));
    sorted
}
