//! Produce: batches appended as received, offsets assigned by the leader,
//! idempotent and transactional checks as Kafka makes them.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::protocol::messages::produce_response::{
    LeaderIdAndEpoch, PartitionProduceResponse, TopicProduceResponse,
};
use crate::protocol::messages::{ProduceRequest, ProduceResponse};
use crate::protocol::ErrorCode;

use super::state::Shared;

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Handles a Produce request; `None` for acks=0 (no answer is sent).
pub(super) fn produce(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let mut appended = false;
    let responses = {
        let mut state = shared.lock();
        let state = &mut *state;
        let bad_acks = !matches!(request.acks, -1..=1);
        request
            .topic_data
            .iter()
            .map(|topic| {
                let partitions = topic
                    .partition_data
                    .iter()
                    .map(|p| {
                        let response = PartitionProduceResponse::default().with_index(p.index);
                        let leader = state.led_partition(node_id, &topic.name, p.index).err();
                        let outcome = if bad_acks {
                            Err(ErrorCode::InvalidRequiredAcks)
                        } else if let Some(code) = leader {
                            Err(code)
                        } else {
                            let records = p.records.clone().unwrap_or_default();
                            append(
                                state,
                                &topic.name,
                                p.index,
                                &records,
                                request.transactional_id.as_deref(),
                            )
                        };
                        let log = state.partition(&topic.name, p.index);
                        match outcome {
                            Ok(base) => {
                                appended = true;
                                response
                                    .with_base_offset(base)
                                    .with_log_append_time_ms(-1)
                                    .with_log_start_offset(log.map_or(-1, |l| l.log_start))
                            }
                            Err(code) => {
                                let mut response = response
                                    .with_error_code(code.code())
                                    .with_base_offset(-1)
                                    .with_log_append_time_ms(-1)
                                    .with_log_start_offset(-1);
                                if version >= 8 {
                                    response = response
                                        .with_error_message(Some(code.description().into()));
                                }
                                if version >= 10 && code == ErrorCode::NotLeaderOrFollower {
                                    if let Some(log) = log {
                                        response = response.with_current_leader(
                                            LeaderIdAndEpoch::default()
                                                .with_leader_id(log.leader)
                                                .with_leader_epoch(log.leader_epoch),
                                        );
                                    }
                                }
                                response
                            }
                        }
                    })
                    .collect();
                TopicProduceResponse::default()
                    .with_name(topic.name.clone())
                    .with_partition_responses(partitions)
            })
            .collect()
    };
    if appended {
        shared.data_arrived.notify_waiters();
    }
    if request.acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}

/// Sets the log start offset of every partition in `response` that
/// `node_id` leads (others keep -1, as a broker that no longer leads the
/// partition answers).
pub(super) fn fill_log_start_offsets(
    shared: &Arc<Shared>,
    node_id: i32,
    response: &mut ProduceResponse,
) {
    let state = shared.lock();
    for topic in &mut response.responses {
        for p in &mut topic.partition_responses {
            if state.led_partition(node_id, &topic.name, p.index).is_ok() {
                if let Some(log) = state.partition(&topic.name, p.index) {
                    p.log_start_offset = log.log_start;
                }
            }
        }
    }
}

/// Appends to a partition, checking a transactional batch against its
/// transaction's partitions.
fn append(
    state: &mut super::state::State,
    topic: &str,
    partition: i32,
    records: &bytes::Bytes,
    transactional_id: Option<&str>,
) -> Result<i64, ErrorCode> {
    let txn = transactional_id.and_then(|id| state.transactions.get(id));
    let member = txn.map(|t| {
        (
            t.producer_id,
            t.partitions.contains(&(topic.to_owned(), partition)),
        )
    });
    let log = state
        .partition_mut(topic, partition)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    let appended = log.append(records, |producer_id| {
        member.is_some_and(|(id, added)| id == producer_id && added)
    })?;
    Ok(appended.base_offset)
}
