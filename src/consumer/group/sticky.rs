//! The `sticky` and `cooperative-sticky` assignors (Java's
//! AbstractStickyAssignor semantics).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::consumer::TopicPartition;
use crate::protocol::messages::consumer_protocol_assignment::TopicPartition as TopicEntry;
use crate::protocol::{Decodable, Encodable};

use super::assignor::{
    empty_assignment, AssignError, Assignor, GroupAssignment, GroupMember, RebalanceProtocol,
};
use super::protocol::Assignment;

/// What a member says it owns, and from which generation.
struct MemberData {
    owned: Vec<TopicPartition>,
    generation: i32,
}

/// Balanced and sticky: every partition goes to exactly one subscribed
/// member, the counts are as even as the subscriptions allow (no partition
/// could move to a member holding two fewer), and members keep the
/// partitions they own wherever balance permits.
///
/// Ownership is generation-aware: when several members claim a partition,
/// the claim from the highest generation wins; claims from the same
/// generation cancel each other.
///
/// Under the eager protocol members revoke everything before joining, so
/// this assignor carries the previous assignment in its user data in the
/// Java StickyAssignor format (topic assignments then the generation), and
/// reads it back from every member, Java's and librdkafka's included.
#[derive(Debug, Default)]
pub struct StickyAssignor {
    memory: Mutex<Option<(Vec<TopicPartition>, i32)>>,
}

impl Assignor for StickyAssignor {
    fn name(&self) -> &str {
        "sticky"
    }

    fn subscription_user_data(&self, _topics: &[String], _generation_id: i32) -> Option<Bytes> {
        let memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let (partitions, generation) = memory.as_ref()?;
        Some(encode_sticky_user_data(partitions, *generation))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<GroupAssignment, AssignError> {
        let data = members
            .iter()
            .map(|m| {
                m.subscription
                    .user_data
                    .as_ref()
                    .filter(|d| !d.is_empty())
                    .and_then(|d| decode_sticky_user_data(d.clone()))
                    .unwrap_or(MemberData {
                        owned: m.subscription.owned_partitions.clone(),
                        generation: m.subscription.generation_id,
                    })
            })
            .collect();
        sticky_assign(partitions_per_topic, members, data, false)
    }

    fn on_assignment(&self, assignment: &Assignment, generation_id: i32) {
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        *memory = Some((assignment.partitions.clone(), generation_id));
    }
}

/// [`StickyAssignor`]'s placement under the cooperative protocol (KIP-429):
/// a partition that changes owner is left out of this assignment, so its
/// owner only revokes it now, and the next rebalance (which the revoking
/// member triggers by rejoining) hands it to its new owner.
///
/// Its user data is the generation (4 bytes), as in Java, for members whose
/// subscription version has no generation field.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &str {
        "cooperative-sticky"
    }

    fn supported_protocols(&self) -> &[RebalanceProtocol] {
        &[RebalanceProtocol::Eager, RebalanceProtocol::Cooperative]
    }

    fn subscription_user_data(&self, _topics: &[String], generation_id: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation_id.to_be_bytes()))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<GroupAssignment, AssignError> {
        let data = members
            .iter()
            .map(|m| {
                let sub = &m.subscription;
                let generation = match (&sub.user_data, sub.generation_id) {
                    (Some(d), -1) if d.len() == 4 => (&d[..]).get_i32(),
                    _ => sub.generation_id,
                };
                MemberData {
                    owned: sub.owned_partitions.clone(),
                    generation,
                }
            })
            .collect();
        sticky_assign(partitions_per_topic, members, data, true)
    }
}

/// Java's StickyAssignorUserData v1: `[topic, [partition]]` then the
/// generation. Each topic entry has the layout of the generated
/// ConsumerProtocolAssignment v0 TopicPartition.
fn encode_sticky_user_data(partitions: &[TopicPartition], generation: i32) -> Bytes {
    let topics: Vec<TopicEntry> =
        crate::consumer::group_by_topic(partitions.iter().map(|tp| (tp, tp.partition())))
            .into_iter()
            .map(|(topic, partitions)| TopicEntry {
                topic,
                partitions,
                ..Default::default()
            })
            .collect();
    let mut buf = BytesMut::new();
    buf.put_i32(topics.len() as i32);
    for topic in &topics {
        // Topic names are valid strings and partition lists are bounded by
        // memory; encoding a v0 entry cannot fail.
        if topic.encode(&mut buf, 0).is_err() {
            return Bytes::new();
        }
    }
    buf.put_i32(generation);
    buf.freeze()
}

/// Reads StickyAssignorUserData as Java and librdkafka write it (v0 has no
/// generation), or as kafka-python writes it (the same after an i16 version
/// prefix). `None` for bytes that parse as neither.
fn decode_sticky_user_data(bytes: Bytes) -> Option<MemberData> {
    parse_sticky_user_data(bytes.clone()).or_else(|| {
        let prefixed = bytes.len() >= 2 && matches!(bytes[..2], [0, 0] | [0, 1]);
        prefixed
            .then(|| parse_sticky_user_data(bytes.slice(2..)))
            .flatten()
    })
}

fn parse_sticky_user_data(mut bytes: Bytes) -> Option<MemberData> {
    if bytes.len() < 4 {
        return None;
    }
    let count = bytes.get_i32();
    // Each entry takes at least 6 bytes: bounds the loop by the input.
    if count < 0 || count as usize > bytes.len() / 6 {
        return None;
    }
    let mut owned = Vec::new();
    for _ in 0..count {
        let entry = TopicEntry::decode(&mut bytes, 0).ok()?;
        let name: Arc<str> = entry.topic.as_str().into();
        owned.extend(
            entry
                .partitions
                .iter()
                .map(|&p| TopicPartition::new(name.clone(), p)),
        );
    }
    let generation = match bytes.len() {
        0 => -1,
        4 => bytes.get_i32(),
        _ => return None,
    };
    Some(MemberData { owned, generation })
}

/// The shared sticky algorithm. `data[i]` belongs to `members[i]`.
fn sticky_assign(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &[GroupMember],
    data: Vec<MemberData>,
    cooperative: bool,
) -> Result<GroupAssignment, AssignError> {
    let mut out = empty_assignment(members)?;
    // Members by member id, for determinism.
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by(|&a, &b| members[a].member_id.cmp(&members[b].member_id));

    // Topics with at least one subscriber, and their subscribers.
    let mut subscribers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &m in &order {
        for topic in &members[m].subscription.topics {
            if partitions_per_topic.get(topic).is_some_and(|&n| n > 0) {
                let list = subscribers.entry(topic.as_str()).or_default();
                if !list.contains(&m) {
                    list.push(m);
                }
            }
        }
    }
    let exists = |tp: &TopicPartition| {
        partitions_per_topic
            .get(tp.topic())
            .is_some_and(|&n| tp.partition() >= 0 && tp.partition() < n)
    };

    // Generation-aware ownership: highest generation wins, ties cancel.
    let mut claimers: HashMap<TopicPartition, Vec<usize>> = HashMap::new();
    let mut valid: HashMap<TopicPartition, (usize, i32)> = HashMap::new();
    let mut cancelled: HashMap<TopicPartition, i32> = HashMap::new();
    for &m in &order {
        let generation = data[m].generation;
        for tp in &data[m].owned {
            if !exists(tp) || !members[m].subscribes(tp.topic()) {
                continue;
            }
            let list = claimers.entry(tp.clone()).or_default();
            if list.contains(&m) {
                continue;
            }
            list.push(m);
            if cancelled.get(tp).is_some_and(|&g| g >= generation) {
                continue;
            }
            match valid.get(tp) {
                Some(&(_, g)) if g > generation => {}
                Some(&(_, g)) if g == generation => {
                    valid.remove(tp);
                    cancelled.insert(tp.clone(), g);
                }
                _ => {
                    valid.insert(tp.clone(), (m, generation));
                }
            }
        }
    }

    // Start from the valid owned partitions.
    let mut current: Vec<Vec<TopicPartition>> = vec![Vec::new(); members.len()];
    let mut owned_sets: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); members.len()];
    for (tp, &(m, _)) in &valid {
        owned_sets[m].insert(tp.clone());
    }
    for (m, set) in owned_sets.iter().enumerate() {
        current[m].extend(set.iter().cloned());
    }

    // Hand out the rest, each to the least loaded subscriber.
    for (&topic, subs) in &subscribers {
        let name: Arc<str> = topic.into();
        for p in 0..partitions_per_topic[topic] {
            let tp = TopicPartition::new(name.clone(), p);
            if valid.contains_key(&tp) {
                continue;
            }
            if let Some(&m) = subs.iter().min_by_key(|&&m| current[m].len()) {
                current[m].push(tp);
            }
        }
    }

    // Balance: move partitions from a member to a subscriber holding at
    // least two fewer until none can move. Each move lowers the sum of
    // squared counts, so this ends. Newly handed-out partitions move first.
    loop {
        let mut heavy_first = order.clone();
        heavy_first.sort_by_key(|&m| std::cmp::Reverse(current[m].len()));
        let mut step = None;
        'search: for &heavy in &heavy_first {
            let load = current[heavy].len();
            if load < 2 {
                break;
            }
            let fresh = (0..load)
                .rev()
                .filter(|&i| !owned_sets[heavy].contains(&current[heavy][i]));
            let kept = (0..load)
                .rev()
                .filter(|&i| owned_sets[heavy].contains(&current[heavy][i]));
            for i in fresh.chain(kept) {
                let topic = current[heavy][i].topic();
                let target = subscribers[topic]
                    .iter()
                    .copied()
                    .filter(|&m| m != heavy)
                    .min_by_key(|&m| current[m].len());
                if let Some(light) = target {
                    if current[light].len() + 2 <= load {
                        step = Some((heavy, i, light));
                        break 'search;
                    }
                }
            }
        }
        match step {
            Some((heavy, i, light)) => {
                let tp = current[heavy].remove(i);
                current[light].push(tp);
            }
            None => break,
        }
    }

    for (m, mut partitions) in current.into_iter().enumerate() {
        if cooperative {
            // Withhold every partition someone else may still hold.
            partitions.retain(|tp| match valid.get(tp) {
                Some(&(owner, _)) => owner == m,
                None => claimers.get(tp).map_or(true, |c| c.iter().all(|&o| o == m)),
            });
        }
        partitions.sort();
        if let Some(assignment) = out.get_mut(&members[m].member_id) {
            assignment.partitions = partitions;
        }
    }
    Ok(out)
}
