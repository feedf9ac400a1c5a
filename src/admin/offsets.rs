//! Offsets and records of partitions: list offsets (earliest, latest, by
//! timestamp, max timestamp) and delete records.
//!
//! Both are answered by each partition's leader: partitions are grouped by
//! leader, one request per leader is sent (concurrently), and partitions
//! whose leader moved are looked up again and retried.

use crate::network::RequestOptions;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::Instrument;

use crate::network::{Cluster, ClusterMetadata};
use crate::protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use crate::protocol::messages::{DeleteRecordsRequest, ListOffsetsRequest};
use crate::protocol::ApiKey;

use super::common::{
    broker_retriable, broker_side_timeout, copy_error, needs_version, negotiated, retry_each,
    TopicPartition,
};
use super::{Admin, Error, Result};

/// Which offset [`Admin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (the high watermark, or the last stable offset
    /// under `read_committed`).
    Latest,
    /// The earliest offset whose timestamp is at or after this one
    /// (milliseconds since the epoch); none when every record is older.
    Timestamp(i64),
    /// The offset and timestamp of the record with the largest timestamp
    /// (ListOffsets v7+).
    MaxTimestamp,
}

impl OffsetSpec {
    /// The request's `timestamp` field.
    fn wire_timestamp(self) -> i64 {
        match self {
            OffsetSpec::Latest => -1,
            OffsetSpec::Earliest => -2,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }

    /// The lowest ListOffsets version that can carry this spec.
    fn min_version(self) -> i16 {
        match self {
            OffsetSpec::MaxTimestamp => 7,
            _ => 0,
        }
    }
}

pub use crate::network::IsolationLevel;

/// Options of [`Admin::list_offsets`].
#[derive(Debug, Clone, Default)]
pub struct ListOffsetsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
    /// Which records count for [`OffsetSpec::Latest`].
    pub isolation_level: IsolationLevel,
}

/// A listed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record matches a timestamp.
    pub offset: i64,
    /// The matching record's timestamp, if the broker reports one.
    pub timestamp: Option<i64>,
    /// The leader epoch of the matching record, if reported (v4+).
    pub leader_epoch: Option<i32>,
}

impl ListedOffset {
    fn from_response(p: &ListOffsetsPartitionResponse, version: i16) -> Result<ListedOffset> {
        Error::check(ApiKey::ListOffsets, p.error_code, None)?;
        let offset = if version == 0 {
            p.old_style_offsets.first().copied().unwrap_or(-1)
        } else {
            p.offset
        };
        Ok(ListedOffset {
            offset,
            timestamp: (version >= 1 && p.timestamp >= 0).then_some(p.timestamp),
            leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
        })
    }
}

/// Options of [`Admin::delete_records`].
#[derive(Debug, Clone, Default)]
pub struct DeleteRecordsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`); also the
    /// time the leaders wait for their followers.
    pub timeout: Option<Duration>,
}

/// The outcome of deleting records from one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedRecords {
    /// The partition's log start offset afterwards.
    pub low_watermark: i64,
}

/// Partitions by leader, and those without a leader with the reason.
pub(super) type ByLeader = (
    BTreeMap<i32, Vec<TopicPartition>>,
    Vec<(TopicPartition, Error)>,
);

/// Groups partitions by their leader in `metadata`. Partitions without a
/// known leader come back with the reason (mostly retriable:
/// `LEADER_NOT_AVAILABLE`, `UNKNOWN_TOPIC_OR_PARTITION`).
pub(super) fn group_by_leader(
    metadata: &ClusterMetadata,
    partitions: impl IntoIterator<Item = TopicPartition>,
) -> ByLeader {
    let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
    let mut missing = Vec::new();
    for tp in partitions {
        match metadata.leader_for(&tp.topic, tp.partition) {
            Ok(leader) => by_leader.entry(leader.node_id).or_default().push(tp),
            Err(e) => missing.push((tp, e)),
        }
    }
    (by_leader, missing)
}

/// Partitions grouped by topic, in the order requests list them.
fn by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        topics.entry(&tp.topic).or_default().push(tp.partition);
    }
    topics
}

/// Looks up the leaders of `pending` (fetching metadata of topics not seen
/// before) and runs `per_leader` for each leader concurrently. Partitions
/// without a leader, and those of a leader whose request failed, get an
/// error each.
async fn fan_out_to_leaders<V, F, Fut>(
    cluster: &Cluster,
    pending: Vec<TopicPartition>,
    per_leader: F,
) -> Result<Vec<(TopicPartition, Result<V>)>>
where
    V: Send + 'static,
    F: Fn(Cluster, i32, Vec<TopicPartition>) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<(TopicPartition, Result<V>)>>> + Send + 'static,
{
    let new_topics = cluster.track_topics(pending.iter().map(|tp| tp.topic.clone()));
    let metadata = if new_topics {
        cluster.refresh_metadata().await?
    } else {
        cluster.metadata().await?
    };
    let (by_leader, missing) = group_by_leader(&metadata, pending);
    let mut out: Vec<(TopicPartition, Result<V>)> =
        missing.into_iter().map(|(tp, e)| (tp, Err(e))).collect();
    let mut tasks = JoinSet::new();
    for (leader, partitions) in by_leader {
        let task = per_leader(cluster.clone(), leader, partitions.clone());
        tasks.spawn(async move { (partitions, task.await) });
    }
    while let Some(joined) = tasks.join_next().await {
        let (partitions, result) = joined.map_err(|e| Error::Protocol {
            broker: String::new(),
            reason: format!("request task failed: {e}"),
        })?;
        match result {
            Ok(results) => out.extend(results),
            Err(e) => out.extend(partitions.into_iter().map(|tp| (tp, Err(copy_error(&e))))),
        }
    }
    Ok(out)
}

impl Admin {
    /// Looks up offsets of partitions: the earliest, the latest, the first at
    /// or after a timestamp, or the one with the largest timestamp.
    ///
    /// Requests go to each partition's leader, many partitions per request;
    /// partitions whose leader moved (`NOT_LEADER_OR_FOLLOWER`, ...) are
    /// looked up again and retried until the deadline.
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::Admin) -> Result<(), ferrokafka::admin::Error> {
    /// use std::collections::BTreeMap;
    /// use ferrokafka::admin::{OffsetSpec, TopicPartition};
    ///
    /// let specs = BTreeMap::from([
    ///     (TopicPartition::new("orders", 0), OffsetSpec::Latest),
    ///     (TopicPartition::new("orders", 1), OffsetSpec::Timestamp(1_700_000_000_000)),
    /// ]);
    /// for (tp, offset) in admin.list_offsets(&specs, Default::default()).await? {
    ///     println!("{tp}: {:?}", offset.map(|o| o.offset));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_offsets(
        &self,
        specs: &BTreeMap<TopicPartition, OffsetSpec>,
        options: ListOffsetsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<ListedOffset>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!("admin.list_offsets", partitions = specs.len());
        let isolation = options.isolation_level;
        let cluster = self.cluster();
        retry_each(
            cluster,
            "list offsets",
            timeout,
            specs.keys().cloned(),
            broker_retriable,
            |pending| {
                fan_out_to_leaders(cluster, pending, |cluster, leader, partitions| {
                    let wanted: Vec<(TopicPartition, OffsetSpec)> = partitions
                        .into_iter()
                        .map(|tp| {
                            let spec = specs[&tp];
                            (tp, spec)
                        })
                        .collect();
                    list_offsets_on(cluster, leader, wanted, isolation)
                })
            },
        )
        .instrument(span)
        .await
    }

    /// Deletes the records of each partition before the given offset (moves
    /// its log start offset), through the partition leaders. Returns the new
    /// low watermark per partition. An offset of -1 means the high
    /// watermark: everything is deleted.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<TopicPartition, i64>,
        options: DeleteRecordsOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<DeletedRecords>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!("admin.delete_records", partitions = before.len());
        let deadline = Instant::now() + timeout;
        let cluster = self.cluster();
        retry_each(
            cluster,
            "delete records",
            timeout,
            before.keys().cloned(),
            broker_retriable,
            |pending| {
                fan_out_to_leaders(cluster, pending, |cluster, leader, partitions| {
                    let wanted: Vec<(TopicPartition, i64)> = partitions
                        .into_iter()
                        .map(|tp| {
                            let offset = before[&tp];
                            (tp, offset)
                        })
                        .collect();
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    delete_records_on(cluster, leader, wanted, remaining)
                })
            },
        )
        .instrument(span)
        .await
    }
}

/// One ListOffsets request to `leader`.
async fn list_offsets_on(
    cluster: Cluster,
    leader: i32,
    wanted: Vec<(TopicPartition, OffsetSpec)>,
    isolation: IsolationLevel,
) -> Result<Vec<(TopicPartition, Result<ListedOffset>)>> {
    let conn = cluster.broker_connection(leader).await?;
    let version = negotiated(&conn, ApiKey::ListOffsets)?;
    let isolation_ok = isolation == IsolationLevel::ReadUncommitted || version >= 2;
    if !isolation_ok {
        return Err(needs_version(&conn, ApiKey::ListOffsets, 2));
    }
    // Specs this broker cannot carry fail on their own; the rest are sent.
    let (sendable, too_new): (Vec<_>, Vec<_>) = wanted
        .into_iter()
        .partition(|(_, spec)| spec.min_version() <= version);
    let mut out: Vec<(TopicPartition, Result<ListedOffset>)> = too_new
        .into_iter()
        .map(|(tp, spec)| {
            let e = needs_version(&conn, ApiKey::ListOffsets, spec.min_version());
            (tp, Err(e))
        })
        .collect();
    if sendable.is_empty() {
        return Ok(out);
    }
    let specs: BTreeMap<&TopicPartition, OffsetSpec> =
        sendable.iter().map(|(tp, spec)| (tp, *spec)).collect();
    let partitions: Vec<TopicPartition> = sendable.iter().map(|(tp, _)| tp.clone()).collect();
    let request = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: isolation.wire(),
        topics: by_topic(&partitions)
            .into_iter()
            .map(|(topic, indexes)| ListOffsetsTopic {
                name: topic.to_owned(),
                partitions: indexes
                    .into_iter()
                    .map(|partition_index| {
                        let tp = TopicPartition::new(topic, partition_index);
                        ListOffsetsPartition {
                            partition_index,
                            timestamp: specs[&tp].wire_timestamp(),
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let response = conn
        .send_with(&request, RequestOptions::default().with_version(version))
        .await?;
    for topic in response.topics {
        for p in &topic.partitions {
            let tp = TopicPartition::new(topic.name.clone(), p.partition_index);
            out.push((tp, ListedOffset::from_response(p, version)));
        }
    }
    Ok(out)
}

/// One DeleteRecords request to `leader`.
async fn delete_records_on(
    cluster: Cluster,
    leader: i32,
    wanted: Vec<(TopicPartition, i64)>,
    timeout: Duration,
) -> Result<Vec<(TopicPartition, Result<DeletedRecords>)>> {
    let conn = cluster.broker_connection(leader).await?;
    let version = negotiated(&conn, ApiKey::DeleteRecords)?;
    let (broker_timeout, send_options) = broker_side_timeout(&cluster, timeout, version);
    let offsets: BTreeMap<&TopicPartition, i64> =
        wanted.iter().map(|(tp, offset)| (tp, *offset)).collect();
    let partitions: Vec<TopicPartition> = wanted.iter().map(|(tp, _)| tp.clone()).collect();
    let request = DeleteRecordsRequest {
        topics: by_topic(&partitions)
            .into_iter()
            .map(|(topic, indexes)| DeleteRecordsTopic {
                name: topic.to_owned(),
                partitions: indexes
                    .into_iter()
                    .map(|partition_index| DeleteRecordsPartition {
                        partition_index,
                        offset: offsets[&TopicPartition::new(topic, partition_index)],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        timeout_ms: broker_timeout,
        ..Default::default()
    };
    let response = conn.send_with(&request, send_options).await?;
    let mut out = Vec::new();
    for topic in response.topics {
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.name.clone(), p.partition_index);
            let result =
                Error::check(ApiKey::DeleteRecords, p.error_code, None).map(|()| DeletedRecords {
                    low_watermark: p.low_watermark,
                });
            out.push((tp, result));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::metadata_response::{
        MetadataResponsePartition, MetadataResponseTopic,
    };
    use crate::protocol::messages::MetadataResponse;
    use crate::protocol::ErrorCode;

    #[test]
    fn partitions_group_by_leader_with_reasons_for_the_rest() {
        let partition = |index, leader| MetadataResponsePartition {
            partition_index: index,
            leader_id: leader,
            ..Default::default()
        };
        let metadata = ClusterMetadata::from_response(&MetadataResponse {
            topics: vec![MetadataResponseTopic {
                name: Some("t".into()),
                partitions: vec![
                    partition(0, 1),
                    partition(1, 2),
                    partition(2, -1),
                    partition(3, 1),
                ],
                ..Default::default()
            }],
            ..Default::default()
        });
        let wanted = [0, 1, 2, 3, 9]
            .into_iter()
            .map(|p| TopicPartition::new("t", p))
            .chain([TopicPartition::new("gone", 0)]);
        let (by_leader, missing) = group_by_leader(&metadata, wanted);
        let indexes = |leader| {
            by_leader[&leader]
                .iter()
                .map(|tp| tp.partition)
                .collect::<Vec<_>>()
        };
        assert_eq!(indexes(1), [0, 3]);
        assert_eq!(indexes(2), [1]);
        let codes: Vec<_> = missing
            .iter()
            .map(|(tp, e)| (tp.to_string(), e.error_code().unwrap()))
            .collect();
        assert_eq!(
            codes,
            [
                ("t-2".to_owned(), ErrorCode::LeaderNotAvailable),
                ("t-9".to_owned(), ErrorCode::UnknownTopicOrPartition),
                ("gone-0".to_owned(), ErrorCode::UnknownTopicOrPartition),
            ]
        );
    }

    #[test]
    fn listed_offsets_map_every_version() {
        let v0 = ListOffsetsPartitionResponse {
            old_style_offsets: vec![42],
            ..Default::default()
        };
        let got = ListedOffset::from_response(&v0, 0).unwrap();
        assert_eq!(
            (got.offset, got.timestamp, got.leader_epoch),
            (42, None, None)
        );
        let v4 = ListOffsetsPartitionResponse {
            offset: 7,
            timestamp: 1000,
            leader_epoch: 3,
            ..Default::default()
        };
        let got = ListedOffset::from_response(&v4, 4).unwrap();
        assert_eq!(
            (got.offset, got.timestamp, got.leader_epoch),
            (7, Some(1000), Some(3))
        );
        let none = ListOffsetsPartitionResponse {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
            ..Default::default()
        };
        let got = ListedOffset::from_response(&none, 4).unwrap();
        assert_eq!(
            (got.offset, got.timestamp, got.leader_epoch),
            (-1, None, None)
        );
        let failed = ListOffsetsPartitionResponse {
            error_code: ErrorCode::NotLeaderOrFollower.code(),
            ..Default::default()
        };
        let err = ListedOffset::from_response(&failed, 4).unwrap_err();
        assert!(err.is_retriable() && err.invalidates_metadata());
        assert_eq!(OffsetSpec::MaxTimestamp.wire_timestamp(), -3);
        assert_eq!(OffsetSpec::Earliest.wire_timestamp(), -2);
        assert_eq!(OffsetSpec::Latest.wire_timestamp(), -1);
        assert_eq!(OffsetSpec::Timestamp(5).wire_timestamp(), 5);
    }
}
