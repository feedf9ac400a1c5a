//! Requests to the transaction coordinator (InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, EndTxn) and to the group coordinator (TxnOffsetCommit),
//! with the retries the Java client makes.

use std::sync::Arc;
use std::time::Instant;

use crate::network::{CoordinatorType, Error as NetError, RequestOptions};
use crate::protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use crate::protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use crate::protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, InitProducerIdRequest,
    TxnOffsetCommitRequest,
};
use crate::protocol::{ErrorCode, Request};

use super::error::{ProducerError, Result};
use super::state::Shared;

pub use crate::network::ConsumerGroupMetadata;

/// An offset to commit with a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OffsetToCommit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record (-1 if unknown).
    pub leader_epoch: i32,
    /// Free-form metadata.
    pub metadata: Option<String>,
}

fn code_error(
    api: crate::protocol::ApiKey,
    code: ErrorCode,
    message: Option<String>,
) -> ProducerError {
    match code {
        ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
            ProducerError::Fenced { code }
        }
        _ => ProducerError::Network(Arc::new(NetError::Broker { api, code, message })),
    }
}

/// Sends `request` to the coordinator (`kind`/`key`), or to any broker when
/// `kind` is `None`, retrying retriable failures with backoff until
/// `max.block.ms` passes. `max_version` caps the version; `code_of` reads the
/// response's top-level error.
async fn call<R, F>(
    shared: &Shared,
    kind: Option<(CoordinatorType, &str)>,
    request: &R,
    max_version: Option<i16>,
    code_of: F,
) -> Result<R::Response>
where
    R: Request,
    F: Fn(&R::Response) -> ErrorCode,
{
    let cluster = &shared.cluster;
    let deadline = Instant::now() + shared.config.max_block;
    let mut attempt = 0u32;
    loop {
        let result: std::result::Result<R::Response, NetError> = async {
            let conn = match kind {
                Some((kind, key)) => {
                    let broker = cluster.find_coordinator(kind, key).await?;
                    cluster.connection(&broker.address()).await?
                }
                None => cluster.any_connection().await?,
            };
            match max_version {
                Some(max) => {
                    let version = conn
                        .api_versions()
                        .map(|t| t.negotiate(R::API_KEY))
                        .unwrap_or(Ok(0))?;
                    conn.send_with(
                        request,
                        RequestOptions::default().with_version(version.min(max)),
                    )
                    .await
                }
                None => conn.send(request).await,
            }
        }
        .await;
        let error = match result {
            Ok(response) => match code_of(&response) {
                ErrorCode::None => return Ok(response),
                code => NetError::Broker {
                    api: R::API_KEY,
                    code,
                    message: None,
                },
            },
            Err(e) => e,
        };
        if let Some((kind, key)) = kind {
            if error.invalidates_coordinator() {
                cluster.invalidate_coordinator(kind, key);
            }
        }
        let retriable = error.is_retriable()
            || matches!(error.error_code(), Some(ErrorCode::ConcurrentTransactions));
        if !retriable {
            return Err(match error.error_code() {
                Some(code) => code_error(R::API_KEY, code, None),
                None => ProducerError::from(error),
            });
        }
        let delay = shared.backoff.delay(attempt);
        attempt += 1;
        if Instant::now() + delay > deadline {
            tracing::debug!(api = R::API_KEY.name(), error = %error, "giving up after max.block.ms");
            return Err(ProducerError::Timeout {
                operation: "transaction coordinator request",
                timeout: shared.config.max_block,
            });
        }
        tracing::debug!(api = R::API_KEY.name(), error = %error, ?delay, "retrying");
        tokio::time::sleep(delay).await;
    }
}

fn txn_coordinator(shared: &Shared) -> Option<(CoordinatorType, &str)> {
    shared
        .config
        .transactional_id
        .as_deref()
        .map(|id| (CoordinatorType::Transaction, id))
}

/// InitProducerId: a new producer id, or (with `current`, KIP-360) the same
/// id with a bumped epoch. Brokers before InitProducerId v3 cannot bump:
/// they hand out a new id.
pub(crate) async fn init_producer_id(
    shared: &Shared,
    current: Option<(i64, i16)>,
) -> Result<(i64, i16)> {
    let (id, epoch) = current.unwrap_or((-1, -1));
    let request = InitProducerIdRequest::default()
        .with_transactional_id(shared.config.transactional_id.clone())
        .with_transaction_timeout_ms(
            shared
                .config
                .transaction_timeout
                .as_millis()
                .min(i32::MAX as u128) as i32,
        )
        .with_producer_id(id)
        .with_producer_epoch(epoch);
    let response = call(shared, txn_coordinator(shared), &request, None, |r| {
        ErrorCode::from_code(r.error_code)
    })
    .await?;
    tracing::debug!(
        producer_id = response.producer_id,
        epoch = response.producer_epoch,
        "producer id initialized"
    );
    Ok((response.producer_id, response.producer_epoch))
}

/// AddPartitionsToTxn (v3 or lower: v4+ is for brokers). Returns each
/// partition's error code.
pub(crate) async fn add_partitions(
    shared: &Shared,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, i32, ErrorCode)>> {
    let (id, epoch) = shared.producer_id_and_epoch();
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (topic, p) in partitions {
        match topics.iter_mut().find(|t| t.name == *topic) {
            Some(t) => t.partitions.push(*p),
            None => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(topic.clone())
                    .with_partitions(vec![*p]),
            ),
        }
    }
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(
            shared.config.transactional_id.clone().unwrap_or_default(),
        )
        .with_v3_and_below_producer_id(id)
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics);
    // Up to v3 a coordinator error comes in every partition's slot (the
    // top-level code is v4+): treat it as the request's, so that `call`
    // looks the coordinator up again instead of retrying the old one.
    let response = call(shared, txn_coordinator(shared), &request, Some(3), |r| {
        let top = ErrorCode::from_code(r.error_code);
        if top != ErrorCode::None {
            return top;
        }
        r.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| &t.results_by_partition)
            .map(|p| ErrorCode::from_code(p.partition_error_code))
            .find(|&code| {
                matches!(
                    code,
                    ErrorCode::NotCoordinator
                        | ErrorCode::CoordinatorNotAvailable
                        | ErrorCode::CoordinatorLoadInProgress
                )
            })
            .unwrap_or(ErrorCode::None)
    })
    .await?;
    Ok(response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition.iter().map(move |p| {
                (
                    t.name.clone(),
                    p.partition_index,
                    ErrorCode::from_code(p.partition_error_code),
                )
            })
        })
        .collect())
}

/// EndTxn: commit or abort.
pub(crate) async fn end_transaction(shared: &Shared, commit: bool) -> Result<()> {
    let (id, epoch) = shared.producer_id_and_epoch();
    let request = EndTxnRequest::default()
        .with_transactional_id(shared.config.transactional_id.clone().unwrap_or_default())
        .with_producer_id(id)
        .with_producer_epoch(epoch)
        .with_committed(commit);
    call(shared, txn_coordinator(shared), &request, None, |r| {
        ErrorCode::from_code(r.error_code)
    })
    .await?;
    Ok(())
}

/// AddOffsetsToTxn then TxnOffsetCommit to the group's coordinator.
pub(crate) async fn send_offsets(
    shared: &Shared,
    offsets: &[OffsetToCommit],
    group: &ConsumerGroupMetadata,
) -> Result<()> {
    let (id, epoch) = shared.producer_id_and_epoch();
    let transactional_id = shared.config.transactional_id.clone().unwrap_or_default();
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(transactional_id.clone())
        .with_producer_id(id)
        .with_producer_epoch(epoch)
        .with_group_id(group.group_id.clone());
    call(shared, txn_coordinator(shared), &add, None, |r| {
        ErrorCode::from_code(r.error_code)
    })
    .await?;
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for o in offsets {
        let p = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(o.partition)
            .with_committed_offset(o.offset)
            .with_committed_leader_epoch(o.leader_epoch)
            .with_committed_metadata(o.metadata.clone());
        match topics.iter_mut().find(|t| t.name == o.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                TxnOffsetCommitRequestTopic::default()
                    .with_name(o.topic.clone())
                    .with_partitions(vec![p]),
            ),
        }
    }
    let commit = TxnOffsetCommitRequest::default()
        .with_transactional_id(transactional_id)
        .with_group_id(group.group_id.clone())
        .with_producer_id(id)
        .with_producer_epoch(epoch)
        .with_generation_id(group.generation_id)
        .with_member_id(group.member_id.clone())
        .with_group_instance_id(group.group_instance_id.clone())
        .with_topics(topics);
    let response = call(
        shared,
        Some((CoordinatorType::Group, group.group_id.as_str())),
        &commit,
        None,
        |r| {
            // Retry the whole commit while any partition says to.
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|p| ErrorCode::from_code(p.error_code))
                .find(|c| c.is_retriable())
                .unwrap_or(ErrorCode::None)
        },
    )
    .await?;
    for t in &response.topics {
        for p in &t.partitions {
            let code = ErrorCode::from_code(p.error_code);
            if code != ErrorCode::None {
                return Err(code_error(
                    crate::protocol::ApiKey::TxnOffsetCommit,
                    code,
                    Some(format!("{}-{}", t.name, p.partition_index)),
                ));
            }
        }
    }
    Ok(())
}
