//! Injected faults: for the next N requests of an API (to one broker or to
//! any), answer an error code, add latency, or drop the connection.

use std::time::Duration;

use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::{
    add_partitions_to_txn_response as aptr, list_offsets_response as lor, metadata_response as mr,
    offset_commit_response as ocr, offset_fetch_response as ofr,
    offset_for_leader_epoch_response as ofler, produce_response as pr,
    txn_offset_commit_response as tocr, AddOffsetsToTxnResponse, AddPartitionsToTxnResponse,
    ApiVersionsResponse, CreateTopicsResponse, DeleteTopicsResponse, EndTxnResponse,
    FindCoordinatorResponse, HeartbeatResponse, InitProducerIdResponse, JoinGroupResponse,
    LeaveGroupResponse, ListOffsetsResponse, MetadataResponse, OffsetCommitResponse,
    OffsetFetchResponse, OffsetForLeaderEpochResponse, ProduceResponse, SyncGroupResponse,
    TxnOffsetCommitResponse,
};
use crate::protocol::messages::{create_topics_response as ctr, delete_topics_response as dtr};
use crate::protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind};

/// What an injected [`Fault`] does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultAction {
    /// Answer with this error code (in every per-partition / per-item slot,
    /// as a broker does), without doing what the request asks.
    Error(ErrorCode),
    /// Handle the request normally after this delay.
    Latency(Duration),
    /// Close the connection without answering.
    DropConnection,
}

/// A fault for the next `times` requests of one API, to one broker or any.
///
/// ```
/// use ferrokafka::protocol::{ApiKey, ErrorCode};
/// use ferrokafka::testkit::mock::Fault;
///
/// // The next three Produce requests to broker 2 fail with NOT_LEADER_OR_FOLLOWER.
/// let fault = Fault::error(ApiKey::Produce, ErrorCode::NotLeaderOrFollower)
///     .on_broker(2)
///     .times(3);
/// assert_eq!(fault.remaining(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub(super) api: ApiKey,
    pub(super) broker: Option<i32>,
    pub(super) action: FaultAction,
    pub(super) remaining: usize,
}

impl Fault {
    /// Answer `code` to the next request of `api`.
    pub fn error(api: ApiKey, code: ErrorCode) -> Fault {
        Fault::new(api, FaultAction::Error(code))
    }

    /// Delay the next request of `api` by `delay`.
    pub fn latency(api: ApiKey, delay: Duration) -> Fault {
        Fault::new(api, FaultAction::Latency(delay))
    }

    /// Close the connection on the next request of `api`.
    pub fn drop_connection(api: ApiKey) -> Fault {
        Fault::new(api, FaultAction::DropConnection)
    }

    /// A fault doing `action` to the next request of `api`.
    pub fn new(api: ApiKey, action: FaultAction) -> Fault {
        Fault {
            api,
            broker: None,
            action,
            remaining: 1,
        }
    }

    /// Only requests to broker `node_id` (default: any broker).
    pub fn on_broker(mut self, node_id: i32) -> Fault {
        self.broker = Some(node_id);
        self
    }

    /// Apply to the next `n` matching requests (default 1).
    pub fn times(mut self, n: usize) -> Fault {
        self.remaining = n;
        self
    }

    /// Matching requests still to be hit.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// The API the fault applies to.
    pub fn api(&self) -> ApiKey {
        self.api
    }
}

/// A fault as stored in the cluster state.
pub(super) type FaultRule = Fault;

/// Takes one use of the first fault matching `api` on `broker`.
pub(super) fn take_fault(
    rules: &mut Vec<FaultRule>,
    broker: i32,
    api: ApiKey,
) -> Option<FaultAction> {
    let index = rules
        .iter()
        .position(|r| r.api == api && r.broker.map_or(true, |b| b == broker) && r.remaining > 0)?;
    let rule = &mut rules[index];
    rule.remaining -= 1;
    let action = rule.action;
    if rule.remaining == 0 {
        rules.remove(index);
    }
    Some(action)
}

/// The answer a broker gives `request` when it fails with `code` as a whole:
/// the code in every slot the response has. `None` for APIs the mock does
/// not implement, and for Fetch, whose failure goes through its session
/// (`fetch::failed_fetch`).
pub(super) fn error_response(
    request: &RequestKind,
    version: i16,
    code: ErrorCode,
) -> Option<ResponseKind> {
    let code = code.code();
    Some(match request {
        RequestKind::Produce(r) => ResponseKind::Produce(
            ProduceResponse::default().with_responses(
                r.topic_data
                    .iter()
                    .map(|t| {
                        pr::TopicProduceResponse::default()
                            .with_name(t.name.clone())
                            .with_partition_responses(
                                t.partition_data
                                    .iter()
                                    .map(|p| {
                                        pr::PartitionProduceResponse::default()
                                            .with_index(p.index)
                                            .with_error_code(code)
                                            .with_base_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(
            ListOffsetsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        lor::ListOffsetsTopicResponse::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        lor::ListOffsetsPartitionResponse::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                            .with_timestamp(-1)
                                            .with_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::Metadata(r) => ResponseKind::Metadata(
            MetadataResponse::default().with_topics(
                r.topics
                    .iter()
                    .flatten()
                    .map(|t| {
                        mr::MetadataResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_topic_id(t.topic_id)
                            .with_error_code(code)
                    })
                    .collect(),
            ),
        ),
        RequestKind::OffsetCommit(r) => ResponseKind::OffsetCommit(
            OffsetCommitResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        ocr::OffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        ocr::OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(
            OffsetFetchResponse::default()
                .with_error_code(code)
                .with_groups(
                    r.groups
                        .iter()
                        .map(|g| {
                            ofr::OffsetFetchResponseGroup::default()
                                .with_group_id(g.group_id.clone())
                                .with_error_code(code)
                        })
                        .collect(),
                ),
        ),
        RequestKind::FindCoordinator(_) if version < 4 => ResponseKind::FindCoordinator(
            FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_node_id(-1)
                .with_port(-1),
        ),
        RequestKind::FindCoordinator(r) => ResponseKind::FindCoordinator(
            FindCoordinatorResponse::default().with_coordinators(
                r.coordinator_keys
                    .iter()
                    .map(|k| {
                        Coordinator::default()
                            .with_key(k.clone())
                            .with_node_id(-1)
                            .with_port(-1)
                            .with_error_code(code)
                    })
                    .collect(),
            ),
        ),
        RequestKind::JoinGroup(_) => ResponseKind::JoinGroup(
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_generation_id(-1),
        ),
        RequestKind::Heartbeat(_) => {
            ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code))
        }
        RequestKind::LeaveGroup(_) => {
            ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(code))
        }
        RequestKind::SyncGroup(_) => {
            ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(code))
        }
        RequestKind::ApiVersions(_) => {
            ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(code))
        }
        RequestKind::CreateTopics(r) => ResponseKind::CreateTopics(
            CreateTopicsResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        ctr::CreatableTopicResult::default()
                            .with_name(t.name.clone())
                            .with_error_code(code)
                            .with_num_partitions(-1)
                            .with_replication_factor(-1)
                    })
                    .collect(),
            ),
        ),
        RequestKind::DeleteTopics(r) => ResponseKind::DeleteTopics(
            DeleteTopicsResponse::default().with_responses(
                r.topic_names
                    .iter()
                    .map(|n| Some(n.clone()))
                    .chain(r.topics.iter().map(|t| t.name.clone()))
                    .map(|name| {
                        dtr::DeletableTopicResult::default()
                            .with_name(name)
                            .with_error_code(code)
                    })
                    .collect(),
            ),
        ),
        RequestKind::InitProducerId(_) => ResponseKind::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(-1)
                .with_producer_epoch(-1),
        ),
        RequestKind::OffsetForLeaderEpoch(r) => ResponseKind::OffsetForLeaderEpoch(
            OffsetForLeaderEpochResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        ofler::OffsetForLeaderTopicResult::default()
                            .with_topic(t.topic.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        ofler::EpochEndOffset::default()
                                            .with_partition(p.partition)
                                            .with_error_code(code)
                                            .with_leader_epoch(-1)
                                            .with_end_offset(-1)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        RequestKind::AddPartitionsToTxn(r) => ResponseKind::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default()
                .with_error_code(code)
                .with_results_by_topic_v3_and_below(
                    r.v3_and_below_topics
                        .iter()
                        .map(|t| {
                            aptr::AddPartitionsToTxnTopicResult::default()
                                .with_name(t.name.clone())
                                .with_results_by_partition(
                                    t.partitions
                                        .iter()
                                        .map(|&p| {
                                            aptr::AddPartitionsToTxnPartitionResult::default()
                                                .with_partition_index(p)
                                                .with_partition_error_code(code)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        ),
        RequestKind::AddOffsetsToTxn(_) => {
            ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
        }
        RequestKind::EndTxn(_) => {
            ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(code))
        }
        RequestKind::TxnOffsetCommit(r) => ResponseKind::TxnOffsetCommit(
            TxnOffsetCommitResponse::default().with_topics(
                r.topics
                    .iter()
                    .map(|t| {
                        tocr::TxnOffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        tocr::TxnOffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        ),
        _ => return None,
    })
}
