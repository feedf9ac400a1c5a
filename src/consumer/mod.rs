//! The consumer: fetching assigned partitions with prefetching, fetch
//! sessions, read_committed filtering, and records handed out as a batch
//! ([`Consumer::poll`]) or as a [`futures_core::Stream`] ([`Consumer::stream`]).
//!
//! ```no_run
//! # async fn demo() -> ferrokafka::consumer::Result<()> {
//! use std::time::Duration;
//! use ferrokafka::consumer::{Consumer, ConsumerConfig, Offset, TopicPartition};
//! use ferrokafka::network::ClientConfig;
//!
//! let client = ClientConfig::builder().bootstrap_servers(["localhost:9092"]).build()?;
//! let consumer = Consumer::new(client, ConsumerConfig::builder().build()?).await?;
//! consumer.assign([TopicPartition::new("orders", 0), TopicPartition::new("orders", 1)])?;
//! consumer.seek(&TopicPartition::new("orders", 0), Offset::Beginning)?;
//! let batch = consumer.poll(1000, Duration::from_secs(1)).await?;
//! for record in batch.iter() {
//!     println!("{} {:?}", record.offset(), record.value());
//! }
//! # Ok(()) }
//! ```
//!
//! With a `group.id`, [`Consumer::subscribe`] (or
//! [`Consumer::subscribe_pattern`]) makes it a member of a consumer group
//! (classic protocol): `poll` joins and rebalances, the [`group`] assignors
//! split the partitions, [`RebalanceListener`] callbacks run around
//! rebalances, and offsets are committed automatically or with
//! [`Consumer::commit`]:
//!
//! ```no_run
//! # async fn demo() -> ferrokafka::consumer::Result<()> {
//! use std::time::Duration;
//! use ferrokafka::consumer::{Consumer, ConsumerConfig, Strategy};
//! use ferrokafka::network::ClientConfig;
//!
//! let client = ClientConfig::builder().bootstrap_servers(["localhost:9092"]).build()?;
//! let config = ConsumerConfig::builder()
//!     .group_id("billing")
//!     .partition_assignment_strategy(vec![Strategy::CooperativeSticky])
//!     .enable_auto_commit(false)
//!     .build()?;
//! let consumer = Consumer::new(client, config).await?;
//! consumer.subscribe(["orders"])?;
//! let batch = consumer.poll(500, Duration::from_secs(1)).await?;
//! println!("{} records from {:?}", batch.len(), consumer.assignment());
//! consumer.commit().await?;
//! consumer.close().await;
//! # Ok(()) }
//! ```
//!
//! This module depends on [`crate::network`] and [`crate::records`].

mod commit_handle;
mod config;
mod error;
mod fetch;
pub mod group;
mod handle;
mod metrics;
mod offsets;
mod record;
mod session;
mod state;
mod stream;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

pub use crate::network::{ConsumerGroupMetadata, OffsetAndMetadata};
pub use commit_handle::CommitHandle;
pub use config::{AutoOffsetReset, ConsumerConfig, ConsumerConfigBuilder, IsolationLevel};
pub use error::{ConsumerError, Result};
pub use group::{GroupMembership, MemberState, Strategy};
pub use handle::{Consumer, ListenerFuture, RebalanceListener};
pub use metrics::{ConsumerMetrics, PartitionMetrics};
pub use record::{ConsumerRecord, HeaderView, HeadersIter, RecordView, Records, RecordsIter};
pub use stream::RecordStream;

/// A topic and a partition index. Cheap to clone (the name is shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    topic: Arc<str>,
    partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

impl fmt::Debug for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Where [`Consumer::seek`] moves a partition's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offset {
    /// The log start offset.
    Beginning,
    /// The end of the log (the high watermark; the last stable offset under
    /// read_committed).
    End,
    /// An exact offset.
    At(i64),
    /// The first offset whose record timestamp is at or after these
    /// milliseconds since the epoch (the end of the log if there is none).
    Timestamp(i64),
}

/// Groups per-partition request entries by topic, keeping first-seen topic
/// order (requests list each topic once).
pub(crate) fn group_by_topic<'a, P>(
    items: impl IntoIterator<Item = (&'a TopicPartition, P)>,
) -> Vec<(String, Vec<P>)> {
    let mut out: Vec<(String, Vec<P>)> = Vec::new();
    for (tp, item) in items {
        match out.iter_mut().find(|(topic, _)| topic == tp.topic()) {
            Some((_, list)) => list.push(item),
            None => out.push((tp.topic().to_owned(), vec![item])),
        }
    }
    out
}

/// Finds each partition's answer in a per-topic response: `Ok(value)` when
/// its error code is 0, the error code otherwise (UNKNOWN_TOPIC_OR_PARTITION
/// when the response leaves it out).
pub(crate) fn partition_answers<'a, T, P: 'a>(
    partitions: impl IntoIterator<Item = &'a TopicPartition>,
    topics: &'a [T],
    topic_of: impl Fn(&T) -> (&str, &[P]),
    answer_of: impl Fn(&P) -> (i32, i16, i64),
) -> Vec<std::result::Result<i64, crate::protocol::ErrorCode>> {
    use crate::protocol::ErrorCode;
    partitions
        .into_iter()
        .map(|tp| {
            topics
                .iter()
                .map(&topic_of)
                .filter(|(name, _)| *name == tp.topic())
                .flat_map(|(_, parts)| parts)
                .map(&answer_of)
                .find(|(index, _, _)| *index == tp.partition())
                .map_or(
                    Err(ErrorCode::UnknownTopicOrPartition),
                    |(_, code, value)| match ErrorCode::from_code(code) {
                        ErrorCode::None => Ok(value),
                        code => Err(code),
                    },
                )
        })
        .collect()
}
