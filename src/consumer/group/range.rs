//! The `range` assignor (Java's RangeAssignor).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::consumer::TopicPartition;

use super::assignor::{
    empty_assignment, sorted_members, AssignError, Assignor, GroupAssignment, GroupMember,
};

/// Per topic, the subscribed members in Java's order (static members by
/// `group.instance.id`, then member id) get contiguous ranges of partitions;
/// when they do not divide evenly, the first members get one more.
///
/// With C0 and C1 subscribed to t0 and t1 of 3 partitions each:
/// C0 gets t0p0, t0p1, t1p0, t1p1 and C1 gets t0p2, t1p2.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &str {
        "range"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[GroupMember],
    ) -> Result<GroupAssignment, AssignError> {
        let mut out = empty_assignment(members)?;
        let sorted = sorted_members(members);
        for (topic, &count) in partitions_per_topic {
            let subscribed: Vec<&GroupMember> = sorted
                .iter()
                .copied()
                .filter(|m| m.subscribes(topic))
                .collect();
            if subscribed.is_empty() || count <= 0 {
                continue;
            }
            let name: Arc<str> = topic.as_str().into();
            let per_member = count as usize / subscribed.len();
            let extra = count as usize % subscribed.len();
            for (i, member) in subscribed.iter().enumerate() {
                let start = per_member * i + i.min(extra);
                let len = per_member + usize::from(i < extra);
                if let Some(assignment) = out.get_mut(&member.member_id) {
                    assignment.partitions.extend(
                        (start..start + len).map(|p| TopicPartition::new(name.clone(), p as i32)),
                    );
                }
            }
        }
        Ok(out)
    }
}
