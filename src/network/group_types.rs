//! Types that the consumer, the producer and the admin client share about
//! consumer groups: a committed offset ([`OffsetAndMetadata`]) and a group
//! member's identity for transactional offset commits
//! ([`ConsumerGroupMetadata`]). They live here, below those three sibling
//! layers, so that each can name them without importing another.

/// A committed offset: the offset of the next record to consume, the leader
/// epoch of the last consumed record, and free-form metadata.
///
/// ```
/// use ferrokafka::network::OffsetAndMetadata;
///
/// let offset = OffsetAndMetadata::new(42).with_metadata("checkpoint 7");
/// assert_eq!((offset.offset, offset.metadata.as_str()), (42, "checkpoint 7"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetAndMetadata {
    /// The offset of the next record to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, if known.
    pub leader_epoch: Option<i32>,
    /// Free-form metadata stored with the offset.
    pub metadata: String,
}

impl OffsetAndMetadata {
    /// An offset without leader epoch or metadata.
    pub fn new(offset: i64) -> OffsetAndMetadata {
        OffsetAndMetadata {
            offset,
            leader_epoch: None,
            metadata: String::new(),
        }
    }

    /// The same offset with `metadata` stored beside it.
    #[must_use]
    pub fn with_metadata(mut self, metadata: impl Into<String>) -> OffsetAndMetadata {
        self.metadata = metadata.into();
        self
    }

    /// The same offset with the leader epoch of the last consumed record.
    #[must_use]
    pub fn with_leader_epoch(mut self, leader_epoch: Option<i32>) -> OffsetAndMetadata {
        self.leader_epoch = leader_epoch;
        self
    }
}

/// A consumer group member's identity, as the producer's
/// `send_offsets_to_transaction` takes it (the Java `ConsumerGroupMetadata`):
/// the coordinator fences commits of a member that is no longer in the
/// group's current generation.
///
/// ```
/// use ferrokafka::network::ConsumerGroupMetadata;
///
/// let metadata = ConsumerGroupMetadata::new("orders-service");
/// assert_eq!((metadata.generation_id, metadata.member_id.as_str()), (-1, ""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerGroupMetadata {
    /// The group id.
    pub group_id: String,
    /// The generation the consumer is in (-1 without group membership).
    pub generation_id: i32,
    /// The member id ("" without group membership).
    pub member_id: String,
    /// The static member id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata for a group id alone (no generation fencing).
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}
