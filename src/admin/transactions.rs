//! Listing and describing transactions (KIP-664).

use crate::network::RequestOptions;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tracing::Instrument;

use super::groups::{coordinator_rounds, fan_out_to_all_brokers};
use super::{Admin, Error, Result, TopicPartition};
use crate::network::CoordinatorType;
use crate::protocol::messages::{DescribeTransactionsRequest, ListTransactionsRequest};
use crate::protocol::ApiKey;

/// The state of a transaction, as its coordinator reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TransactionState {
    /// No transaction in progress.
    Empty,
    /// A transaction is open.
    Ongoing,
    /// Committing: markers are being written.
    PrepareCommit,
    /// Aborting: markers are being written.
    PrepareAbort,
    /// The last transaction committed.
    CompleteCommit,
    /// The last transaction aborted.
    CompleteAbort,
    /// The transactional id expired.
    Dead,
    /// The producer is being fenced.
    PrepareEpochFence,
    /// A state this client does not know, as the broker spelled it.
    Unknown(String),
}

impl TransactionState {
    /// Parses a state as the protocol spells it.
    pub fn parse(name: &str) -> TransactionState {
        match name {
            "Empty" => TransactionState::Empty,
            "Ongoing" => TransactionState::Ongoing,
            "PrepareCommit" => TransactionState::PrepareCommit,
            "PrepareAbort" => TransactionState::PrepareAbort,
            "CompleteCommit" => TransactionState::CompleteCommit,
            "CompleteAbort" => TransactionState::CompleteAbort,
            "Dead" => TransactionState::Dead,
            "PrepareEpochFence" => TransactionState::PrepareEpochFence,
            other => TransactionState::Unknown(other.to_owned()),
        }
    }

    /// The protocol's spelling of this state.
    pub fn as_str(&self) -> &str {
        match self {
            TransactionState::Empty => "Empty",
            TransactionState::Ongoing => "Ongoing",
            TransactionState::PrepareCommit => "PrepareCommit",
            TransactionState::PrepareAbort => "PrepareAbort",
            TransactionState::CompleteCommit => "CompleteCommit",
            TransactionState::CompleteAbort => "CompleteAbort",
            TransactionState::Dead => "Dead",
            TransactionState::PrepareEpochFence => "PrepareEpochFence",
            TransactionState::Unknown(s) => s,
        }
    }
}

/// Options of [`Admin::list_transactions`].
#[derive(Debug, Clone, Default)]
pub struct ListTransactionsOptions {
    /// Only transactions in one of these states; empty: all.
    pub states: Vec<TransactionState>,
    /// Only transactions of one of these producer ids; empty: all.
    pub producer_ids: Vec<i64>,
    /// Only transactions running longer than this (ListTransactions v1+).
    pub duration_filter: Option<Duration>,
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A transaction as [`Admin::list_transactions`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// The transactional id.
    pub transactional_id: String,
    /// The current producer id.
    pub producer_id: i64,
    /// The state.
    pub state: TransactionState,
    /// The broker that listed it (its coordinator).
    pub coordinator_id: i32,
}

/// What [`Admin::list_transactions`] found.
#[derive(Debug)]
pub struct ListTransactionsResult {
    /// The transactions, sorted by id, from every broker that answered.
    pub transactions: Vec<TransactionListing>,
    /// The brokers that could not list their transactions, and why.
    pub errors: Vec<(i32, Error)>,
    /// State filters some broker did not know.
    pub unknown_state_filters: BTreeSet<String>,
}

/// Options of [`Admin::describe_transactions`].
#[derive(Debug, Clone, Default)]
pub struct DescribeTransactionsOptions {
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A described transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// The transactional id.
    pub transactional_id: String,
    /// The coordinator that described it.
    pub coordinator_id: i32,
    /// The state.
    pub state: TransactionState,
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The transaction timeout.
    pub transaction_timeout_ms: i32,
    /// When the open transaction started (ms since the epoch), if one is open.
    pub transaction_start_time_ms: Option<i64>,
    /// The partitions in the open transaction.
    pub topic_partitions: BTreeSet<TopicPartition>,
}

impl Admin {
    /// Lists the transactions of every broker, merged; a broker that fails
    /// is reported in [`ListTransactionsResult::errors`].
    pub async fn list_transactions(
        &self,
        options: ListTransactionsOptions,
    ) -> Result<ListTransactionsResult> {
        let span = tracing::info_span!("list_transactions");
        async move {
            let timeout = self.timeout(options.timeout);
            let mut request = ListTransactionsRequest::default()
                .with_state_filters(
                    options
                        .states
                        .iter()
                        .map(|s| s.as_str().to_owned())
                        .collect(),
                )
                .with_producer_id_filters(options.producer_ids.clone());
            if let Some(d) = options.duration_filter {
                request =
                    request.with_duration_filter(i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            }
            let outcomes = fan_out_to_all_brokers(
                self.cluster(),
                "ListTransactions",
                timeout,
                |cluster, id| {
                    let request = request.clone();
                    async move {
                        cluster
                            .retry("ListTransactions", Some(timeout), || async {
                                let response = cluster
                                    .send_to_broker(id, &request, RequestOptions::default())
                                    .await?;
                                Error::check(ApiKey::ListTransactions, response.error_code, None)?;
                                Ok(response)
                            })
                            .await
                    }
                },
            )
            .await?;
            let mut transactions = Vec::new();
            let mut errors = Vec::new();
            let mut unknown_state_filters = BTreeSet::new();
            for (id, outcome) in outcomes {
                match outcome {
                    Ok(response) => {
                        unknown_state_filters.extend(response.unknown_state_filters);
                        transactions.extend(response.transaction_states.into_iter().map(|t| {
                            TransactionListing {
                                transactional_id: t.transactional_id,
                                producer_id: t.producer_id,
                                state: TransactionState::parse(&t.transaction_state),
                                coordinator_id: id,
                            }
                        }));
                    }
                    Err(e) => errors.push((id, e)),
                }
            }
            transactions.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
            Ok(ListTransactionsResult {
                transactions,
                errors,
                unknown_state_filters,
            })
        }
        .instrument(span)
        .await
    }

    /// Describes transactions, each asked of its transaction coordinator
    /// (looked up with one batched FindCoordinator, key type 1); each
    /// transactional id gets its own result.
    pub async fn describe_transactions(
        &self,
        transactional_ids: &[&str],
        options: DescribeTransactionsOptions,
    ) -> Result<HashMap<String, Result<TransactionDescription>>> {
        let span = tracing::info_span!("describe_transactions", ids = transactional_ids.len());
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            let keys = transactional_ids.iter().map(|s| s.to_string()).collect();
            Ok(coordinator_rounds(
                cluster,
                CoordinatorType::Transaction,
                "DescribeTransactions",
                keys,
                timeout,
                |coordinator, ids| async move {
                    let request =
                        DescribeTransactionsRequest::default().with_transactional_ids(ids);
                    let conn = cluster.connection(&coordinator.address()).await?;
                    let response = conn.send(&request).await?;
                    Ok(response
                        .transaction_states
                        .into_iter()
                        .map(|t| {
                            let result =
                                Error::check(ApiKey::DescribeTransactions, t.error_code, None).map(
                                    |()| TransactionDescription {
                                        transactional_id: t.transactional_id.clone(),
                                        coordinator_id: coordinator.node_id,
                                        state: TransactionState::parse(&t.transaction_state),
                                        producer_id: t.producer_id,
                                        producer_epoch: t.producer_epoch,
                                        transaction_timeout_ms: t.transaction_timeout_ms,
                                        transaction_start_time_ms: (t.transaction_start_time_ms
                                            >= 0)
                                            .then_some(t.transaction_start_time_ms),
                                        topic_partitions: t
                                            .topics
                                            .iter()
                                            .flat_map(|topic| {
                                                topic.partitions.iter().map(|&p| {
                                                    TopicPartition::new(topic.topic.clone(), p)
                                                })
                                            })
                                            .collect(),
                                    },
                                );
                            (t.transactional_id, result)
                        })
                        .collect())
                },
            )
            .await)
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for name in [
            "Empty",
            "Ongoing",
            "PrepareCommit",
            "PrepareAbort",
            "CompleteCommit",
            "CompleteAbort",
            "Dead",
            "PrepareEpochFence",
        ] {
            let state = TransactionState::parse(name);
            assert!(!matches!(state, TransactionState::Unknown(_)), "{name}");
            assert_eq!(state.as_str(), name);
        }
        assert_eq!(
            TransactionState::parse("Weird"),
            TransactionState::Unknown("Weird".into())
        );
    }
}
