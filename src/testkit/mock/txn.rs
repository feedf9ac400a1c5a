//! Producer ids and transactions: InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn, TxnOffsetCommit and EndTxn (writing commit/abort markers
//! into every partition of the transaction), plus transaction timeouts.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use crate::protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use crate::protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use crate::protocol::ErrorCode;

use super::group::Committed;
use super::produce::now_ms;
use super::state::{Shared, State, GROUP_KEY, TXN_KEY};

/// The largest transaction timeout accepted (`transaction.max.timeout.ms`).
const MAX_TXN_TIMEOUT: Duration = Duration::from_secs(900);

/// The coordinator's record of one transactional id.
#[derive(Debug, Clone)]
pub(super) struct Transaction {
    pub(super) producer_id: i64,
    pub(super) producer_epoch: i16,
    timeout: Duration,
    /// When the open transaction began; `None` when there is none.
    started: Option<Instant>,
    pub(super) partitions: BTreeSet<(String, i32)>,
    groups: BTreeSet<String>,
    pending_offsets: Vec<(String, String, i32, Committed)>,
    /// The outcome of the last completed transaction (an EndTxn retry gets NONE).
    last_committed: Option<bool>,
}

impl Transaction {
    fn is_open(&self) -> bool {
        self.started.is_some()
    }
}

/// Writes the markers of `txn` and closes it; offsets apply on commit.
fn complete(state: &mut State, transactional_id: &str, commit: bool) {
    let Some(txn) = state.transactions.get_mut(transactional_id) else {
        return;
    };
    let partitions = std::mem::take(&mut txn.partitions);
    let offsets = std::mem::take(&mut txn.pending_offsets);
    txn.groups.clear();
    txn.started = None;
    txn.last_committed = Some(commit);
    let (producer_id, epoch) = (txn.producer_id, txn.producer_epoch);
    let now = now_ms();
    for (topic, partition) in partitions {
        if let Some(log) = state.partition_mut(&topic, partition) {
            log.write_marker(producer_id, epoch, commit, now);
        }
    }
    if commit {
        for (group, topic, partition, committed) in offsets {
            if let Some(g) = state.groups.get_mut(&group) {
                g.offsets.insert((topic, partition), committed);
            } else {
                let mut g = super::group::Group::empty();
                g.offsets.insert((topic, partition), committed);
                state.groups.insert(group, g);
            }
        }
    }
}

/// Aborts transactions open longer than their timeout; true if any was.
pub(super) fn tick(state: &mut State, now: Instant) -> bool {
    let overdue: Vec<String> = state
        .transactions
        .iter()
        .filter(|(_, t)| t.started.is_some_and(|s| now.duration_since(s) > t.timeout))
        .map(|(id, _)| id.clone())
        .collect();
    for id in &overdue {
        complete(state, id, false);
        if let Some(t) = state.transactions.get_mut(id) {
            // The coordinator fences the producer whose transaction it aborted.
            t.producer_epoch = t.producer_epoch.saturating_add(1);
        }
    }
    !overdue.is_empty()
}

pub(super) fn init_producer_id(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    let fail = |code: ErrorCode| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(-1)
            .with_producer_epoch(-1)
    };
    let mut state = shared.lock();
    let Some(id) = request.transactional_id.clone() else {
        let (pid, epoch) = if request.producer_id >= 0 {
            (
                request.producer_id,
                request.producer_epoch.saturating_add(1),
            )
        } else {
            (state.new_producer_id(), 0)
        };
        return response.with_producer_id(pid).with_producer_epoch(epoch);
    };
    if state.check_coordinator(node_id, TXN_KEY, &id).is_err() {
        return fail(ErrorCode::NotCoordinator);
    }
    let timeout = Duration::from_millis(request.transaction_timeout_ms.max(0) as u64);
    if request.transaction_timeout_ms <= 0 || timeout > MAX_TXN_TIMEOUT {
        return fail(ErrorCode::InvalidTransactionTimeout);
    }
    let existing = state.transactions.get(&id).cloned();
    let (pid, epoch) = match existing {
        Some(t) => {
            if request.producer_id >= 0
                && (request.producer_id != t.producer_id
                    || request.producer_epoch != t.producer_epoch)
            {
                return fail(ErrorCode::ProducerFenced);
            }
            if t.is_open() {
                complete(&mut state, &id, false);
            }
            if t.producer_epoch >= i16::MAX - 1 {
                (state.new_producer_id(), 0)
            } else {
                (t.producer_id, t.producer_epoch + 1)
            }
        }
        None => (state.new_producer_id(), 0),
    };
    let txn = state.transactions.entry(id).or_insert(Transaction {
        producer_id: pid,
        producer_epoch: epoch,
        timeout,
        started: None,
        partitions: BTreeSet::new(),
        groups: BTreeSet::new(),
        pending_offsets: Vec::new(),
        last_committed: None,
    });
    txn.producer_id = pid;
    txn.producer_epoch = epoch;
    txn.timeout = timeout;
    drop(state);
    shared.data_arrived.notify_waiters();
    response.with_producer_id(pid).with_producer_epoch(epoch)
}

/// Checks the producer id and epoch a transactional request carries.
fn check_producer(
    state: &mut State,
    node_id: i32,
    key_type: i8,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<(), ErrorCode> {
    if key_type == TXN_KEY {
        state.check_coordinator(node_id, TXN_KEY, transactional_id)?;
    }
    let txn = state
        .transactions
        .get(transactional_id)
        .ok_or(ErrorCode::InvalidProducerIdMapping)?;
    if txn.producer_id != producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if txn.producer_epoch != producer_epoch {
        return Err(ErrorCode::ProducerFenced);
    }
    Ok(())
}

pub(super) fn add_partitions(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut state = shared.lock();
    let mut add = |id: &str, pid: i64, epoch: i16, topics: &[(String, Vec<i32>)]| {
        let checked =
            check_producer(&mut state, node_id, TXN_KEY, id, pid, epoch).map_err(|code| {
                if code == ErrorCode::ProducerFenced && version < 2 {
                    ErrorCode::InvalidProducerEpoch
                } else {
                    code
                }
            });
        let unknown: Vec<(String, i32)> = topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |&p| (t.clone(), p)))
            .filter(|(t, p)| state.partition(t, *p).is_none())
            .collect();
        let code_for = |t: &str, p: i32| match checked {
            Err(code) => code,
            Ok(()) if unknown.is_empty() => ErrorCode::None,
            Ok(()) if unknown.iter().any(|(ut, up)| ut == t && *up == p) => {
                ErrorCode::UnknownTopicOrPartition
            }
            Ok(()) => ErrorCode::OperationNotAttempted,
        };
        let results: Vec<AddPartitionsToTxnTopicResult> = topics
            .iter()
            .map(|(t, ps)| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.clone())
                    .with_results_by_partition(
                        ps.iter()
                            .map(|&p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_partition_error_code(code_for(t, p).code())
                            })
                            .collect(),
                    )
            })
            .collect();
        if checked.is_ok() && unknown.is_empty() {
            if let Some(txn) = state.transactions.get_mut(id) {
                txn.started.get_or_insert_with(Instant::now);
                for (t, ps) in topics {
                    for &p in ps {
                        txn.partitions.insert((t.clone(), p));
                    }
                }
            }
        }
        results
    };
    if version < 4 {
        let topics: Vec<(String, Vec<i32>)> = request
            .v3_and_below_topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions.clone()))
            .collect();
        let results = add(
            &request.v3_and_below_transactional_id,
            request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch,
            &topics,
        );
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
    } else {
        let results = request
            .transactions
            .iter()
            .map(|txn| {
                let topics: Vec<(String, Vec<i32>)> = txn
                    .topics
                    .iter()
                    .map(|t| (t.name.clone(), t.partitions.clone()))
                    .collect();
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(txn.transactional_id.clone())
                    .with_topic_results(add(
                        &txn.transactional_id,
                        txn.producer_id,
                        txn.producer_epoch,
                        &topics,
                    ))
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
    }
}

pub(super) fn add_offsets(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let mut state = shared.lock();
    let code = match check_producer(
        &mut state,
        node_id,
        TXN_KEY,
        &request.transactional_id,
        request.producer_id,
        request.producer_epoch,
    ) {
        Err(code) => code,
        Ok(()) => {
            let txn = state
                .transactions
                .get_mut(&request.transactional_id)
                .expect("checked");
            txn.started.get_or_insert_with(Instant::now);
            txn.groups.insert(request.group_id.clone());
            ErrorCode::None
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(code.code())
}

pub(super) fn txn_offset_commit(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let mut state = shared.lock();
    let checked = state
        .check_coordinator(node_id, GROUP_KEY, &request.group_id)
        .and_then(|()| {
            check_producer(
                &mut state,
                node_id,
                GROUP_KEY,
                &request.transactional_id,
                request.producer_id,
                request.producer_epoch,
            )
        })
        .and_then(|()| {
            let txn = &state.transactions[&request.transactional_id];
            if txn.groups.contains(&request.group_id) {
                Ok(())
            } else {
                Err(ErrorCode::InvalidTxnState)
            }
        });
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = match checked {
                        Err(code) => code,
                        Ok(()) if state.partition(&t.name, p.partition_index).is_none() => {
                            ErrorCode::UnknownTopicOrPartition
                        }
                        Ok(()) => {
                            let txn = state
                                .transactions
                                .get_mut(&request.transactional_id)
                                .expect("checked");
                            txn.pending_offsets.push((
                                request.group_id.clone(),
                                t.name.clone(),
                                p.partition_index,
                                Committed {
                                    offset: p.committed_offset,
                                    leader_epoch: p.committed_leader_epoch,
                                    metadata: p.committed_metadata.clone(),
                                },
                            ));
                            ErrorCode::None
                        }
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub(super) fn end_txn(
    shared: &Arc<Shared>,
    node_id: i32,
    request: &EndTxnRequest,
) -> EndTxnResponse {
    let mut state = shared.lock();
    let code = match check_producer(
        &mut state,
        node_id,
        TXN_KEY,
        &request.transactional_id,
        request.producer_id,
        request.producer_epoch,
    ) {
        Err(code) => code,
        Ok(()) => {
            let txn = &state.transactions[&request.transactional_id];
            if txn.is_open() {
                complete(&mut state, &request.transactional_id, request.committed);
                ErrorCode::None
            } else if txn.last_committed == Some(request.committed) {
                ErrorCode::None
            } else {
                ErrorCode::InvalidTxnState
            }
        }
    };
    drop(state);
    shared.data_arrived.notify_waiters();
    EndTxnResponse::default().with_error_code(code.code())
}
