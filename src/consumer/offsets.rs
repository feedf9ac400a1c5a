//! Resolving seeks to the beginning, the end or a timestamp (ListOffsets)
//! and validating positions after a leader change (OffsetForLeaderEpoch,
//! KIP-320).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use crate::network::{Error as NetworkError, RequestOptions};
use crate::protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use crate::protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use crate::protocol::messages::{ListOffsetsRequest, OffsetForLeaderEpochRequest};
use crate::protocol::{ApiKey, ErrorCode};

use super::fetch::truncated;
use super::state::Shared;
use super::{group_by_topic, partition_answers, Offset, TopicPartition};

/// A partition whose position is to be looked up.
#[derive(Debug, Clone)]
pub(crate) struct ResetTarget {
    pub partition: TopicPartition,
    pub generation: u64,
    pub offset: Offset,
}

/// A partition whose position is to be checked against the leader's log.
#[derive(Debug, Clone)]
pub(crate) struct ValidateTarget {
    pub partition: TopicPartition,
    pub generation: u64,
    pub position: i64,
    pub position_epoch: i32,
    pub current_leader_epoch: i32,
}

fn list_timestamp(offset: Offset) -> i64 {
    match offset {
        Offset::Beginning => -2,
        Offset::End => -1,
        Offset::Timestamp(ts) => ts,
        Offset::At(n) => n,
    }
}

/// Looks up the offsets of `targets` on their leaders and applies them.
pub(crate) async fn resolve_resets(shared: Arc<Shared>, targets: Vec<ResetTarget>) {
    let span = tracing::debug_span!("kafka_list_offsets", partitions = targets.len());
    async {
        let mut by_leader: BTreeMap<i32, Vec<ResetTarget>> = BTreeMap::new();
        let mut failed = Vec::new();
        for t in targets {
            match shared
                .cluster
                .leader_for(t.partition.topic(), t.partition.partition())
                .await
            {
                Ok(leader) => by_leader.entry(leader.node_id).or_default().push(t),
                Err(e) => {
                    tracing::debug!(partition = %t.partition, error = %e, "no leader for offset lookup");
                    failed.push(t);
                }
            }
        }
        for (node, targets) in by_leader {
            match list_offsets(&shared, node, &targets).await {
                Ok(found) => {
                    let mut state = shared.lock();
                    for (t, result) in targets.iter().zip(found) {
                        let Some(p) = state.partitions.get_mut(&t.partition) else {
                            continue;
                        };
                        if p.generation != t.generation || p.pending_reset != Some(t.offset) {
                            continue;
                        }
                        p.reset_in_flight = false;
                        match result {
                            Ok(offset) if offset >= 0 => {
                                tracing::debug!(partition = %t.partition, ?t.offset, offset, "position reset");
                                p.position = Some(offset);
                                p.fetch_offset = offset;
                                p.pending_reset = None;
                            }
                            // No record at or after the timestamp: the end.
                            Ok(_) => p.pending_reset = Some(Offset::End),
                            Err(code) => {
                                tracing::debug!(partition = %t.partition, %code, "offset lookup failed");
                                state.metadata_wanted = true;
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(node, error = %e, "ListOffsets failed");
                    failed.extend(targets);
                }
            }
        }
        let mut state = shared.lock();
        for t in &failed {
            if let Some(p) = state.partitions.get_mut(&t.partition) {
                p.reset_in_flight = false;
            }
        }
        if !failed.is_empty() {
            state.metadata_wanted = true;
            state.reset_backoff = Some(Instant::now() + shared.cluster.config().retry_backoff);
        }
        drop(state);
        shared.wake.notify_one();
    }
    .instrument(span)
    .await
}

async fn list_offsets(
    shared: &Shared,
    node: i32,
    targets: &[ResetTarget],
) -> Result<Vec<Result<i64, ErrorCode>>, NetworkError> {
    let conn = shared.cluster.broker_connection(node).await?;
    let topics = group_by_topic(targets.iter().map(|t| {
        let partition = ListOffsetsPartition::default()
            .with_partition_index(t.partition.partition())
            .with_timestamp(list_timestamp(t.offset));
        (&t.partition, partition)
    }))
    .into_iter()
    .map(|(name, partitions)| {
        ListOffsetsTopic::default()
            .with_name(name)
            .with_partitions(partitions)
    })
    .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(-1)
        .with_isolation_level(shared.config.isolation_level.wire())
        .with_topics(topics);
    let version = conn
        .negotiated_version(ApiKey::ListOffsets)
        .unwrap_or(1)
        .max(1);
    let response = conn
        .send_with(&request, RequestOptions::default().with_version(version))
        .await?;
    Ok(partition_answers(
        targets.iter().map(|t| &t.partition),
        &response.topics,
        |t| (t.name.as_str(), t.partitions.as_slice()),
        |p| (p.partition_index, p.error_code, p.offset),
    ))
}

/// Checks positions against the leaders' logs (KIP-320) and applies the
/// outcome: unchanged, or truncated (reset or [`LogTruncation`](super::ConsumerError::LogTruncation)).
pub(crate) async fn validate_positions(shared: Arc<Shared>, targets: Vec<ValidateTarget>) {
    let span = tracing::debug_span!("kafka_offset_for_leader_epoch", partitions = targets.len());
    async {
        let mut by_leader: BTreeMap<i32, Vec<ValidateTarget>> = BTreeMap::new();
        for t in targets {
            let leader = shared
                .cluster
                .cached_metadata()
                .leader_for(t.partition.topic(), t.partition.partition());
            match leader {
                Ok(l) => by_leader.entry(l.node_id).or_default().push(t),
                Err(_) => by_leader.entry(-1).or_default().push(t),
            }
        }
        for (node, targets) in by_leader {
            let answers = if node < 0 {
                Err(None)
            } else {
                offsets_for_epochs(&shared, node, &targets)
                    .await
                    .map_err(Some)
            };
            let mut state = shared.lock();
            for (i, t) in targets.iter().enumerate() {
                let Some(p) = state.partitions.get_mut(&t.partition) else {
                    continue;
                };
                if p.generation != t.generation {
                    continue;
                }
                p.validation_in_flight = false;
                match answers.as_ref().map(|a| a[i]) {
                    Ok(Ok(end_offset)) => {
                        p.awaiting_validation = false;
                        if end_offset >= 0 {
                            truncated(
                                &shared.config,
                                &mut state,
                                &t.partition,
                                t.position,
                                end_offset,
                            );
                        }
                    }
                    // The broker cannot validate (old version, unknown epoch): trust the position.
                    Ok(Err(ErrorCode::UnsupportedVersion)) => p.awaiting_validation = false,
                    Ok(Err(_)) | Err(_) => state.metadata_wanted = true,
                }
            }
        }
        shared.wake.notify_one();
    }
    .instrument(span)
    .await
}

async fn offsets_for_epochs(
    shared: &Shared,
    node: i32,
    targets: &[ValidateTarget],
) -> Result<Vec<Result<i64, ErrorCode>>, NetworkError> {
    let conn = shared.cluster.broker_connection(node).await?;
    let Some(version) = conn
        .negotiated_version(ApiKey::OffsetForLeaderEpoch)
        .filter(|&v| v >= 2)
    else {
        return Ok(vec![Err(ErrorCode::UnsupportedVersion); targets.len()]);
    };
    let topics = group_by_topic(targets.iter().map(|t| {
        let partition = OffsetForLeaderPartition::default()
            .with_partition(t.partition.partition())
            .with_current_leader_epoch(t.current_leader_epoch)
            .with_leader_epoch(t.position_epoch);
        (&t.partition, partition)
    }))
    .into_iter()
    .map(|(topic, partitions)| {
        OffsetForLeaderTopic::default()
            .with_topic(topic)
            .with_partitions(partitions)
    })
    .collect();
    let mut request = OffsetForLeaderEpochRequest::default().with_topics(topics);
    if version >= 3 {
        request = request.with_replica_id(-1);
    }
    let response = conn
        .send_with(&request, RequestOptions::default().with_version(version))
        .await?;
    Ok(partition_answers(
        targets.iter().map(|t| &t.partition),
        &response.topics,
        |t| (t.topic.as_str(), t.partitions.as_slice()),
        |p| (p.partition, p.error_code, p.end_offset),
    ))
}
