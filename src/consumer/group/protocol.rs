//! The `consumer` protocol type's member metadata: a version prefix (i16)
//! followed by ConsumerProtocolSubscription or ConsumerProtocolAssignment,
//! encoded with the generated codecs.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::consumer::TopicPartition;
use crate::protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use crate::protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedTopic,
};
use crate::protocol::{Decodable, DecodeError, EncodeError, Message};

/// The highest ConsumerProtocol version this client knows (and writes).
pub const CONSUMER_PROTOCOL_VERSION: i16 = 3;

/// Why group member metadata could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupProtocolError {
    /// The bytes are too short to hold the version prefix.
    #[error("consumer protocol metadata is {0} bytes, too short for its version")]
    MissingVersion(usize),
    /// The version prefix is negative.
    #[error("unsupported consumer protocol version {0}")]
    UnsupportedVersion(i16),
    /// The body could not be decoded. Not retriable: the sender wrote bad metadata.
    #[error("invalid consumer protocol {what}: {source}")]
    Decode {
        /// Subscription or assignment.
        what: &'static str,
        /// The codec's error.
        #[source]
        source: DecodeError,
    },
    /// The body could not be encoded in the requested version.
    #[error("cannot encode consumer protocol {what}: {source}")]
    Encode {
        /// Subscription or assignment.
        what: &'static str,
        /// The codec's error.
        #[source]
        source: EncodeError,
    },
}

/// Reads the version prefix; versions above the known ones read as the
/// highest known, as the Java client does (newer versions only append fields).
fn split_version(bytes: &mut Bytes) -> Result<i16, GroupProtocolError> {
    if bytes.len() < 2 {
        return Err(GroupProtocolError::MissingVersion(bytes.len()));
    }
    let version = bytes.get_i16();
    if version < 0 {
        return Err(GroupProtocolError::UnsupportedVersion(version));
    }
    Ok(version.min(CONSUMER_PROTOCOL_VERSION))
}

fn encode_versioned<M: Message>(
    message: &M,
    version: i16,
    what: &'static str,
) -> Result<Bytes, GroupProtocolError> {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(version);
    message
        .encode(&mut buf, version)
        .map_err(|source| GroupProtocolError::Encode { what, source })?;
    Ok(buf.freeze())
}

/// Groups partitions by topic, topics in first-seen order.
fn by_topic(partitions: &[TopicPartition]) -> Vec<(String, Vec<i32>)> {
    crate::consumer::group_by_topic(partitions.iter().map(|tp| (tp, tp.partition())))
}

fn flatten<'a>(topics: impl IntoIterator<Item = (&'a str, &'a [i32])>) -> Vec<TopicPartition> {
    let mut out = Vec::new();
    for (topic, partitions) in topics {
        let name: std::sync::Arc<str> = topic.into();
        out.extend(
            partitions
                .iter()
                .map(|&p| TopicPartition::new(name.clone(), p)),
        );
    }
    out
}

/// A member's subscription, sent in JoinGroup (ConsumerProtocolSubscription).
///
/// ```
/// use ferrokafka::consumer::group::Subscription;
/// use ferrokafka::consumer::TopicPartition;
///
/// let sub = Subscription::new(["orders"])
///     .with_owned_partitions(vec![TopicPartition::new("orders", 0)])
///     .with_generation_id(4);
/// let bytes = sub.encode().unwrap();
/// assert_eq!(Subscription::decode(bytes).unwrap(), sub);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// The subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific data (null when `None`).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns now (v1+).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation in which it got them, -1 when unknown (v2+).
    pub generation_id: i32,
    /// The member's `client.rack` (v3+).
    pub rack_id: Option<String>,
}

impl Subscription {
    /// A subscription to `topics`, owning nothing, generation -1.
    pub fn new<S: Into<String>>(topics: impl IntoIterator<Item = S>) -> Self {
        Subscription {
            topics: topics.into_iter().map(Into::into).collect(),
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
    /// Sets the assignor's user data.
    #[must_use]
    pub fn with_user_data(mut self, user_data: Option<Bytes>) -> Self {
        self.user_data = user_data;
        self
    }
    /// Sets the owned partitions.
    #[must_use]
    pub fn with_owned_partitions(mut self, owned: Vec<TopicPartition>) -> Self {
        self.owned_partitions = owned;
        self
    }
    /// Sets the generation of the owned partitions.
    #[must_use]
    pub fn with_generation_id(mut self, generation_id: i32) -> Self {
        self.generation_id = generation_id;
        self
    }
    /// Sets the rack.
    #[must_use]
    pub fn with_rack_id(mut self, rack_id: Option<String>) -> Self {
        self.rack_id = rack_id;
        self
    }

    /// Encodes in the highest version, with its version prefix.
    pub fn encode(&self) -> Result<Bytes, GroupProtocolError> {
        self.encode_version(CONSUMER_PROTOCOL_VERSION)
    }

    /// Encodes in `version` (fields the version lacks are left out).
    pub fn encode_version(&self, version: i16) -> Result<Bytes, GroupProtocolError> {
        let message = ConsumerProtocolSubscription {
            topics: self.topics.clone(),
            user_data: self.user_data.clone(),
            owned_partitions: by_topic(&self.owned_partitions)
                .into_iter()
                .map(|(topic, partitions)| OwnedTopic {
                    topic,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            generation_id: self.generation_id,
            rack_id: self.rack_id.clone(),
            ..Default::default()
        };
        encode_versioned(&message, version, "subscription")
    }

    /// Decodes JoinGroup member metadata (version prefix and body). Bytes
    /// after the known fields (from newer versions) are ignored.
    pub fn decode(mut bytes: Bytes) -> Result<Self, GroupProtocolError> {
        let version = split_version(&mut bytes)?;
        let message =
            ConsumerProtocolSubscription::decode(&mut bytes, version).map_err(|source| {
                GroupProtocolError::Decode {
                    what: "subscription",
                    source,
                }
            })?;
        Ok(Subscription {
            owned_partitions: flatten(
                message
                    .owned_partitions
                    .iter()
                    .map(|t| (t.topic.as_str(), t.partitions.as_slice())),
            ),
            topics: message.topics,
            user_data: message.user_data,
            generation_id: message.generation_id,
            rack_id: message.rack_id,
        })
    }
}

/// A member's assignment, sent in SyncGroup (ConsumerProtocolAssignment).
///
/// ```
/// use ferrokafka::consumer::group::Assignment;
/// use ferrokafka::consumer::TopicPartition;
///
/// let assignment = Assignment::new(vec![TopicPartition::new("orders", 1)]);
/// let bytes = assignment.encode().unwrap();
/// assert_eq!(Assignment::decode(bytes).unwrap(), assignment);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The assigned partitions.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific data.
    pub user_data: Option<Bytes>,
}

impl Assignment {
    /// An assignment of `partitions` without user data.
    pub fn new(partitions: Vec<TopicPartition>) -> Self {
        Assignment {
            partitions,
            user_data: None,
        }
    }

    /// Encodes in the highest version, with its version prefix.
    pub fn encode(&self) -> Result<Bytes, GroupProtocolError> {
        self.encode_version(CONSUMER_PROTOCOL_VERSION)
    }

    /// Encodes in `version`.
    pub fn encode_version(&self, version: i16) -> Result<Bytes, GroupProtocolError> {
        let message = ConsumerProtocolAssignment {
            assigned_partitions: by_topic(&self.partitions)
                .into_iter()
                .map(|(topic, partitions)| AssignedTopic {
                    topic,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            user_data: self.user_data.clone(),
            ..Default::default()
        };
        encode_versioned(&message, version, "assignment")
    }

    /// Decodes SyncGroup assignment bytes (version prefix and body). An empty
    /// input is an empty assignment, as brokers send to members the leader
    /// gave nothing.
    pub fn decode(mut bytes: Bytes) -> Result<Self, GroupProtocolError> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let version = split_version(&mut bytes)?;
        let message =
            ConsumerProtocolAssignment::decode(&mut bytes, version).map_err(|source| {
                GroupProtocolError::Decode {
                    what: "assignment",
                    source,
                }
            })?;
        Ok(Assignment {
            partitions: flatten(
                message
                    .assigned_partitions
                    .iter()
                    .map(|t| (t.topic.as_str(), t.partitions.as_slice())),
            ),
            user_data: message.user_data,
        })
    }
}
