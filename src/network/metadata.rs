//! Immutable snapshots of the cluster's layout.
//!
//! A [`MetadataSnapshot`] never changes once built: the cluster client's
//! refresher builds a new one from each Metadata response and swaps it in
//! atomically, so the hot path (partition → leader for every batch) reads it
//! without a lock and without allocating. Topics keep their partition tables
//! in `Arc`s, so a refresh shares nothing mutable with readers.
//!
//! Leader epochs (KIP-320): when a refresh answers with an older leader epoch
//! for a partition than the snapshot already holds (a lagging broker), the
//! newer partition entry is kept.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::protocol::messages::MetadataResponse;
use crate::protocol::{ApiKey, ErrorCode, Uuid};

use super::error::{Error, Result};

/// A broker as listed in metadata (or found as a coordinator).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerInfo {
    /// The broker's id.
    pub node_id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: i32,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, with brackets around IPv6 literals.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id, or -1 when there is none.
    pub leader_id: i32,
    /// The leader epoch, or -1 when unknown.
    pub leader_epoch: i32,
    /// All replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Offline replicas.
    pub offline_replicas: Vec<i32>,
    /// The partition-level error, if any.
    pub error: ErrorCode,
}

/// A partition's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLeader {
    /// The leader's broker id.
    pub node_id: i32,
    /// The leader epoch (-1 when the broker did not send one).
    pub leader_epoch: i32,
}

/// One topic's partition table, immutable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    name: String,
    topic_id: Uuid,
    is_internal: bool,
    error: ErrorCode,
    /// Sorted by index; normally `partitions[i].partition == i`.
    partitions: Vec<PartitionMetadata>,
    available: Vec<i32>,
}

impl TopicPartitions {
    fn new(
        name: String,
        topic_id: Uuid,
        is_internal: bool,
        error: ErrorCode,
        mut partitions: Vec<PartitionMetadata>,
    ) -> Self {
        partitions.sort_by_key(|p| p.partition);
        partitions.dedup_by_key(|p| p.partition);
        let available = partitions
            .iter()
            .filter(|p| p.leader_id >= 0)
            .map(|p| p.partition)
            .collect();
        TopicPartitions {
            name,
            topic_id,
            is_internal,
            error,
            partitions,
            available,
        }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic id ([`Uuid::ZERO`] before Metadata v10).
    pub fn topic_id(&self) -> Uuid {
        self.topic_id
    }

    /// Whether the topic is internal (`__consumer_offsets`, ...).
    pub fn is_internal(&self) -> bool {
        self.is_internal
    }

    /// The topic-level error ([`ErrorCode::None`] when the topic is usable).
    pub fn error(&self) -> ErrorCode {
        self.error
    }

    /// How many partitions the topic has.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// Partition `index`, without allocating or locking.
    ///
    /// ```
    /// # use ferrokafka::network::MetadataSnapshot;
    /// # fn demo(snapshot: &MetadataSnapshot) {
    /// if let Some(p) = snapshot.topic("orders").and_then(|t| t.partition(3)) {
    ///     println!("leader {} (epoch {})", p.leader_id, p.leader_epoch);
    /// }
    /// # }
    /// ```
    pub fn partition(&self, index: i32) -> Option<&PartitionMetadata> {
        let dense = usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
            .filter(|p| p.partition == index);
        match dense {
            Some(p) => Some(p),
            None => self
                .partitions
                .binary_search_by_key(&index, |p| p.partition)
                .ok()
                .map(|i| &self.partitions[i]),
        }
    }

    /// Every partition, sorted by index.
    pub fn partitions(&self) -> &[PartitionMetadata] {
        &self.partitions
    }

    /// The partitions that have a leader (for the sticky partitioner).
    pub fn available_partitions(&self) -> &[i32] {
        &self.available
    }

    /// The leader of partition `index`, or the error explaining why there is
    /// none (mostly retriable).
    pub fn leader(&self, index: i32) -> Result<PartitionLeader> {
        let missing = |code| Error::Broker {
            api: ApiKey::Metadata,
            code,
            message: Some(format!("{}-{index}", self.name)),
        };
        if self.error != ErrorCode::None {
            return Err(missing(self.error));
        }
        let p = self
            .partition(index)
            .ok_or_else(|| missing(ErrorCode::UnknownTopicOrPartition))?;
        if p.leader_id < 0 {
            return Err(missing(if p.error != ErrorCode::None {
                p.error
            } else {
                ErrorCode::LeaderNotAvailable
            }));
        }
        Ok(PartitionLeader {
            node_id: p.leader_id,
            leader_epoch: p.leader_epoch,
        })
    }

    /// This topic with `newer`'s partitions wherever their leader epoch is
    /// not older than ours (KIP-320). A different topic id means the topic
    /// was recreated: `newer` wins whole.
    fn merge_newer(&self, newer: TopicPartitions) -> TopicPartitions {
        let recreated = self.topic_id != newer.topic_id
            && self.topic_id != Uuid::ZERO
            && newer.topic_id != Uuid::ZERO;
        if recreated || newer.error != ErrorCode::None {
            return newer;
        }
        let partitions = newer
            .partitions
            .into_iter()
            .map(|p| match self.partition(p.partition) {
                Some(ours)
                    if ours.leader_epoch >= 0
                        && p.leader_epoch >= 0
                        && p.leader_epoch < ours.leader_epoch =>
                {
                    tracing::debug!(
                        topic = %self.name,
                        partition = p.partition,
                        stale_epoch = p.leader_epoch,
                        known_epoch = ours.leader_epoch,
                        "ignoring metadata with an older leader epoch"
                    );
                    ours.clone()
                }
                _ => p,
            })
            .collect();
        TopicPartitions::new(
            newer.name,
            newer.topic_id,
            newer.is_internal,
            newer.error,
            partitions,
        )
    }
}

/// An immutable view of the cluster: brokers, controller and the partition
/// tables of the topics the client tracks.
///
/// Get the current one from [`Cluster::snapshot`](super::Cluster::snapshot);
/// lookups take no lock and allocate nothing.
///
/// ```
/// use ferrokafka::network::MetadataSnapshot;
///
/// let empty = MetadataSnapshot::default();
/// assert_eq!(empty.generation(), 0);
/// assert!(empty.topic("orders").is_none());
/// assert_eq!(empty.brokers().count(), 0);
/// ```
#[derive(Debug, Default)]
pub struct MetadataSnapshot {
    generation: u64,
    cluster_id: Option<String>,
    controller_id: Option<i32>,
    /// Sorted by node id.
    brokers: Vec<BrokerInfo>,
    topics: HashMap<String, Arc<TopicPartitions>>,
    /// The admin-facing view, built on first use.
    legacy: OnceLock<Arc<ClusterMetadata>>,
}

impl MetadataSnapshot {
    /// Builds a snapshot from a Metadata response (generation 1, nothing
    /// merged). The cluster client uses [`MetadataSnapshot::merged`].
    pub fn from_response(response: &MetadataResponse) -> Self {
        Self::default().merged(response, 1)
    }

    /// A new snapshot: brokers and controller from `response`, its topics
    /// merged over ours (keeping newer leader epochs), other topics kept.
    pub(crate) fn merged(&self, response: &MetadataResponse, generation: u64) -> Self {
        let mut brokers: Vec<BrokerInfo> = response
            .brokers
            .iter()
            .map(|b| BrokerInfo {
                node_id: b.node_id,
                host: b.host.clone(),
                port: b.port,
                rack: b.rack.clone(),
            })
            .collect();
        brokers.sort_by_key(|b| b.node_id);
        brokers.dedup_by_key(|b| b.node_id);
        let mut topics = self.topics.clone();
        for t in &response.topics {
            let Some(name) = t.name.clone() else { continue };
            let partitions = t
                .partitions
                .iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader_id: p.leader_id,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.clone(),
                    isr: p.isr_nodes.clone(),
                    offline_replicas: p.offline_replicas.clone(),
                    error: ErrorCode::from_code(p.error_code),
                })
                .collect();
            let fresh = TopicPartitions::new(
                name.clone(),
                t.topic_id,
                t.is_internal,
                ErrorCode::from_code(t.error_code),
                partitions,
            );
            let table = match topics.get(&name) {
                Some(old) => old.merge_newer(fresh),
                None => fresh,
            };
            topics.insert(name, Arc::new(table));
        }
        MetadataSnapshot {
            generation,
            cluster_id: response.cluster_id.clone(),
            controller_id: (response.controller_id >= 0).then_some(response.controller_id),
            brokers,
            topics,
            legacy: OnceLock::new(),
        }
    }

    /// Counts completed refreshes: a later snapshot has a higher generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// A topic's partition table, if the topic is tracked and was fetched.
    pub fn topic(&self, name: &str) -> Option<&TopicPartitions> {
        self.topics.get(name).map(|t| &**t)
    }

    /// A topic's partition count: 0 when the topic is not tracked, not yet
    /// fetched, or unknown to the cluster.
    pub fn partition_count(&self, topic: &str) -> usize {
        self.topic(topic)
            .map_or(0, TopicPartitions::partition_count)
    }

    /// A broker by id.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerInfo> {
        self.brokers
            .binary_search_by_key(&node_id, |b| b.node_id)
            .ok()
            .map(|i| &self.brokers[i])
    }

    /// Every broker, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerInfo> {
        self.brokers.iter()
    }

    /// Every topic fetched so far (for regex subscriptions).
    pub fn topics(&self) -> impl Iterator<Item = &TopicPartitions> {
        self.topics.values().map(|t| &**t)
    }

    /// The controller's id, if known.
    pub fn controller_id(&self) -> Option<i32> {
        self.controller_id
    }

    /// The cluster id, if the broker sent one.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// The leader of `topic`/`partition`, or the typed error that explains
    /// why there is none (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE,
    /// ...).
    pub fn leader_for(&self, topic: &str, partition: i32) -> Result<PartitionLeader> {
        match self.topic(topic) {
            Some(t) => t.leader(partition),
            None => Err(Error::Broker {
                api: ApiKey::Metadata,
                code: ErrorCode::UnknownTopicOrPartition,
                message: Some(format!("{topic}-{partition}")),
            }),
        }
    }

    /// The same data as an owned [`ClusterMetadata`] (built once per
    /// snapshot), for the admin client.
    pub fn to_cluster_metadata(&self) -> Arc<ClusterMetadata> {
        self.legacy
            .get_or_init(|| {
                Arc::new(ClusterMetadata {
                    cluster_id: self.cluster_id.clone(),
                    controller_id: self.controller_id,
                    brokers: self
                        .brokers
                        .iter()
                        .map(|b| (b.node_id, b.clone()))
                        .collect(),
                    topics: self
                        .topics
                        .iter()
                        .map(|(name, t)| {
                            (
                                name.clone(),
                                TopicMetadata {
                                    name: name.clone(),
                                    topic_id: t.topic_id,
                                    is_internal: t.is_internal,
                                    error: t.error,
                                    partitions: t.partitions.clone(),
                                },
                            )
                        })
                        .collect(),
                })
            })
            .clone()
    }
}

/// One topic's metadata, owned (the admin-facing form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic name.
    pub name: String,
    /// The topic id ([`Uuid::ZERO`] before Metadata v10).
    pub topic_id: Uuid,
    /// Whether the topic is internal (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// The topic-level error, if any.
    pub error: ErrorCode,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionMetadata>,
}

/// The cluster's layout as owned maps (the admin-facing form of a
/// [`MetadataSnapshot`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// The cluster id, if the broker sent one.
    pub cluster_id: Option<String>,
    /// The controller's broker id, if known.
    pub controller_id: Option<i32>,
    /// Brokers by id.
    pub brokers: std::collections::BTreeMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: HashMap<String, TopicMetadata>,
}

impl ClusterMetadata {
    /// Builds the owned view of a Metadata response.
    pub fn from_response(response: &MetadataResponse) -> Self {
        let snapshot = MetadataSnapshot::from_response(response);
        let view = snapshot.to_cluster_metadata();
        Arc::try_unwrap(view).unwrap_or_else(|shared| (*shared).clone())
    }

    /// The leader of `topic`/`partition`, or the error that explains why
    /// there is none.
    pub fn leader_for(&self, topic: &str, partition: i32) -> Result<PartitionLeader> {
        let missing = |code| Error::Broker {
            api: ApiKey::Metadata,
            code,
            message: Some(format!("{topic}-{partition}")),
        };
        let t = self
            .topics
            .get(topic)
            .ok_or_else(|| missing(ErrorCode::UnknownTopicOrPartition))?;
        if t.error != ErrorCode::None {
            return Err(missing(t.error));
        }
        let p = t
            .partitions
            .binary_search_by_key(&partition, |p| p.partition)
            .map(|i| &t.partitions[i])
            .map_err(|_| missing(ErrorCode::UnknownTopicOrPartition))?;
        if p.leader_id < 0 {
            return Err(missing(if p.error != ErrorCode::None {
                p.error
            } else {
                ErrorCode::LeaderNotAvailable
            }));
        }
        Ok(PartitionLeader {
            node_id: p.leader_id,
            leader_epoch: p.leader_epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };

    fn response(epoch_of_p0: i32, leader_of_p0: i32, topic_id: Uuid) -> MetadataResponse {
        let partition = |index, leader, epoch| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(leader)
                .with_leader_epoch(epoch)
        };
        MetadataResponse::default()
            .with_brokers(vec![
                MetadataResponseBroker::default()
                    .with_node_id(2)
                    .with_host("b".into())
                    .with_port(2),
                MetadataResponseBroker::default()
                    .with_node_id(1)
                    .with_host("a".into())
                    .with_port(1),
            ])
            .with_controller_id(1)
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some("t".into()))
                .with_topic_id(topic_id)
                .with_partitions(vec![
                    partition(2, -1, 3),
                    partition(1, 2, 3),
                    partition(0, leader_of_p0, epoch_of_p0),
                ])])
    }

    #[test]
    fn lookups_and_available_partitions() {
        let s = MetadataSnapshot::from_response(&response(5, 1, Uuid::from_u64_pair(1, 1)));
        let t = s.topic("t").unwrap();
        assert_eq!(t.partition_count(), 3);
        assert_eq!(t.partition(1).unwrap().leader_id, 2);
        assert!(t.partition(3).is_none() && t.partition(-1).is_none());
        assert_eq!(t.available_partitions(), &[0, 1]);
        assert_eq!(s.broker(2).unwrap().host, "b");
        assert_eq!(
            s.brokers().map(|b| b.node_id).collect::<Vec<_>>(),
            [1, 2],
            "sorted"
        );
        assert_eq!(
            s.leader_for("t", 2).unwrap_err().error_code(),
            Some(ErrorCode::LeaderNotAvailable)
        );
        assert_eq!(
            s.leader_for("x", 0).unwrap_err().error_code(),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        let legacy = s.to_cluster_metadata();
        assert_eq!(
            legacy.leader_for("t", 0).unwrap(),
            s.leader_for("t", 0).unwrap()
        );
        assert!(Arc::ptr_eq(&legacy, &s.to_cluster_metadata()), "built once");
    }

    #[test]
    fn an_older_leader_epoch_never_replaces_a_newer_one() {
        let id = Uuid::from_u64_pair(1, 1);
        let first = MetadataSnapshot::from_response(&response(5, 1, id));
        // A lagging broker still thinks broker 2 leads with epoch 4.
        let stale = first.merged(&response(4, 2, id), 2);
        assert_eq!(stale.generation(), 2);
        assert_eq!(stale.leader_for("t", 0).unwrap().node_id, 1);
        assert_eq!(stale.leader_for("t", 0).unwrap().leader_epoch, 5);
        // A newer epoch wins.
        let newer = stale.merged(&response(6, 2, id), 3);
        assert_eq!(
            newer.leader_for("t", 0).unwrap(),
            PartitionLeader {
                node_id: 2,
                leader_epoch: 6
            }
        );
        // A recreated topic (new id) starts over, whatever its epochs.
        let recreated = newer.merged(&response(0, 1, Uuid::from_u64_pair(9, 9)), 4);
        assert_eq!(recreated.leader_for("t", 0).unwrap().leader_epoch, 0);
    }
}
