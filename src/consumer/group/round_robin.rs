//! The `roundrobin` assignor (Java's RoundRobinAssignor).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::consumer::TopicPartition;

use super::assignor::{
    empty_assignment, sorted_members, AssignError, Assignor, GroupAssignment, GroupMember,
};

/// All partitions of all subscribed topics, sorted by topic then partition,
/// dealt in turn to the members in Java's order, skipping members not
/// subscribed to a partition's topic.
///
/// With C0, C1, C2 where C0 subscribes to t0, C1 to t0 and t1, C2 to t0, t1
/// and t2 (t0 has 1 partition, t1 2, t2 3): C0 gets t0p0, C1 gets t1p0,
/// C2 gets t1p1, t2p0, t2p1, t2p2.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &str {
        "roundrobin"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<GroupAssignment, AssignError> {
        let mut out = empty_assignment(members)?;
        let sorted = sorted_members(members);
        if sorted.is_empty() {
            return Ok(out);
        }
        let mut next = 0usize;
        // BTreeMap iteration is sorted by topic name.
        for (topic, &count) in partitions_per_topic {
            if !sorted.iter().any(|m| m.subscribes(topic)) {
                continue;
            }
            let name: Arc<str> = topic.as_str().into();
            for partition in 0..count.max(0) {
                while !sorted[next % sorted.len()].subscribes(topic) {
                    next += 1;
                }
                let member = sorted[next % sorted.len()];
                next += 1;
                if let Some(assignment) = out.get_mut(&member.member_id) {
                    assignment
                        .partitions
                        .push(TopicPartition::new(name.clone(), partition));
                }
            }
        }
        Ok(out)
    }
}
