//! The consumer's error type.

use crate::network::ConfigError;
use crate::network::Error as NetworkError;
use crate::records::RecordsError;

use super::TopicPartition;

/// Why a consumer operation failed.
///
/// [`ConsumerError::is_retriable`] says whether calling again can succeed
/// without the application changing anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsumerError {
    /// The configuration is invalid.
    #[error("invalid consumer configuration: {0}")]
    Config(#[from] ConfigError),
    /// A network or broker error that the consumer could not recover from.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// The operation names a partition that is not assigned.
    #[error("partition {0} is not assigned to this consumer")]
    NotAssigned(TopicPartition),
    /// `auto.offset.reset` is `none` and the partition has no position.
    #[error("no offset for partition {0} and auto.offset.reset is none")]
    NoOffsetForPartition(TopicPartition),
    /// The position is outside the log and `auto.offset.reset` is `none`.
    #[error(
        "offset {offset} is out of range for partition {partition} and auto.offset.reset is none"
    )]
    OffsetOutOfRange {
        /// The partition.
        partition: TopicPartition,
        /// The position the broker refused.
        offset: i64,
    },
    /// The log was truncated below the position (KIP-320) and
    /// `auto.offset.reset` is `none`; seek to `divergent_offset` or elsewhere.
    #[error("log truncation on {partition}: position {offset} is past the leader's end offset {divergent_offset}")]
    LogTruncation {
        /// The partition.
        partition: TopicPartition,
        /// The position that no longer exists.
        offset: i64,
        /// The first offset known to diverge.
        divergent_offset: i64,
    },
    /// A record batch could not be decoded (corrupt data, bad CRC, ...).
    /// The position stays before the batch; seek past it to skip it.
    #[error("corrupt records in partition {partition} at offset {offset}: {source}")]
    CorruptRecords {
        /// The partition.
        partition: TopicPartition,
        /// Where the bad data starts.
        offset: i64,
        /// The decoding error.
        #[source]
        source: RecordsError,
    },
    /// The broker refused the partition for good (authorization, ...).
    #[error("fetching partition {partition} failed: {code}")]
    Partition {
        /// The partition.
        partition: TopicPartition,
        /// The broker's error code.
        code: crate::protocol::ErrorCode,
    },
    /// The consumer was closed.
    #[error("the consumer is closed")]
    Closed,
    /// Subscribing, committing or asking for committed offsets needs a `group.id`.
    #[error("this operation needs a group.id in the consumer configuration")]
    NoGroupId,
    /// The call does not fit the consumer's state (as Java's
    /// IllegalStateException): mixing `subscribe` with `assign`, ...
    #[error("{0}")]
    IllegalState(String),
    /// The subscription pattern is not a valid regular expression.
    #[error("invalid subscription pattern: {0}")]
    InvalidPattern(String),
    /// Another consumer with the same `group.instance.id` joined the group
    /// (FENCED_INSTANCE_ID): this one is out of the group for good.
    #[error("fenced: {0}")]
    FencedInstanceId(String),
    /// The group coordinator refused the member for good (authorization,
    /// inconsistent protocols, invalid session timeout, ...).
    #[error("consumer group error {code}: {reason}")]
    Group {
        /// The broker's error code.
        code: crate::protocol::ErrorCode,
        /// What was refused.
        reason: String,
    },
    /// The group's member metadata or assignment could not be encoded or decoded.
    #[error("consumer group protocol: {0}")]
    GroupProtocol(String),
    /// The commit cannot succeed: the group rebalanced and the member's
    /// generation is gone (Java's CommitFailedException). The partitions
    /// will be consumed again from the last committed offsets by their new
    /// owner.
    #[error("commit failed: {0}")]
    CommitFailed(String),
    /// The commit was refused because the group is rebalancing (Java's
    /// RebalanceInProgressException): the member still may own the
    /// partitions afterwards. Retriable: poll to complete the rebalance,
    /// then commit again.
    #[error("commit refused during a rebalance: {0}")]
    RebalanceInProgress(String),
}

impl ConsumerError {
    /// Whether retrying the same call can succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ConsumerError::Network(e) => e.is_retriable(),
            ConsumerError::Partition { code, .. } => code.is_retriable(),
            ConsumerError::RebalanceInProgress(_) => true,
            _ => false,
        }
    }
}

/// The consumer's result type.
pub type Result<T, E = ConsumerError> = std::result::Result<T, E>;
