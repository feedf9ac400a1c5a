//! TEMPORARY: an identical copy of `TopicPartition`, which the `admin-a`
//! branch defines in `src/admin/offsets.rs`. Delete this file (and its two
//! lines in `mod.rs`) when that branch is merged.

/// A partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic's name.
    pub topic: String,
    /// The partition's index.
    pub partition: i32,
}

impl TopicPartition {
    /// A partition of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}
