//! Describing the active producers of partitions (KIP-664).

use crate::network::RequestOptions;
use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::groups::{delay_before_next_round, group_partitions, replicate_error, timed_out};
use super::{Admin, Error, Result, TopicPartition};
use crate::network::Backoff;
use crate::protocol::messages::describe_producers_request::TopicRequest;
use crate::protocol::messages::DescribeProducersRequest;
use crate::protocol::ApiKey;

/// Options of [`Admin::describe_producers`].
#[derive(Debug, Clone, Default)]
pub struct DescribeProducersOptions {
    /// Ask this broker instead of each partition's leader (for example to
    /// look at a follower's state).
    pub broker_id: Option<i32>,
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// A producer with state on a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerState {
    /// The producer id.
    pub producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i32,
    /// The sequence number of the producer's last appended record.
    pub last_sequence: i32,
    /// The timestamp of the producer's last appended record.
    pub last_timestamp: i64,
    /// The epoch of the transaction coordinator that last wrote a marker,
    /// if any.
    pub coordinator_epoch: Option<i32>,
    /// The first offset of the producer's open transaction, if any.
    pub current_transaction_start_offset: Option<i64>,
}

impl Admin {
    /// The active producers of each partition, asked of each partition's
    /// leader (or of [`DescribeProducersOptions::broker_id`]).
    ///
    /// Each partition gets its own result; partitions whose leader moved
    /// (`NOT_LEADER_OR_FOLLOWER`, ...) are retried against the new leader
    /// within the timeout.
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
        options: DescribeProducersOptions,
    ) -> Result<BTreeMap<TopicPartition, Result<Vec<ProducerState>>>> {
        let span = tracing::info_span!("describe_producers", partitions = partitions.len());
        async move {
            let timeout = self.timeout(options.timeout);
            let cluster = self.cluster();
            let deadline = Instant::now() + timeout;
            let config = cluster.config();
            let backoff = Backoff::new(config.retry_backoff, config.retry_backoff_max);
            let mut done = BTreeMap::new();
            let mut pending: BTreeMap<TopicPartition, Option<Error>> =
                partitions.iter().map(|tp| (tp.clone(), None)).collect();
            let mut round = 0u32;
            while !pending.is_empty() {
                round += 1;
                // Route each pending partition.
                let mut by_broker: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
                let keys: Vec<TopicPartition> = pending.keys().cloned().collect();
                for tp in keys {
                    let target = match options.broker_id {
                        Some(id) => Ok(id),
                        None => cluster
                            .leader_for(&tp.topic, tp.partition)
                            .await
                            .map(|l| l.node_id),
                    };
                    match target {
                        Ok(id) if id >= 0 => by_broker.entry(id).or_default().push(tp),
                        Ok(_) => {
                            pending.insert(
                                tp,
                                Some(Error::Broker {
                                    api: ApiKey::Metadata,
                                    code: crate::protocol::ErrorCode::LeaderNotAvailable,
                                    message: None,
                                }),
                            );
                        }
                        Err(e) if e.is_retriable() => {
                            pending.insert(tp, Some(e));
                        }
                        Err(e) => {
                            pending.remove(&tp);
                            done.insert(tp, Err(e));
                        }
                    }
                }
                for (broker, tps) in by_broker {
                    let request = DescribeProducersRequest::default().with_topics(
                        group_partitions(&tps)
                            .into_iter()
                            .map(|(name, ps)| {
                                TopicRequest::default()
                                    .with_name(name.to_owned())
                                    .with_partition_indexes(ps)
                            })
                            .collect(),
                    );
                    let remaining = deadline.saturating_duration_since(Instant::now());
                    let answer = tokio::time::timeout(
                        remaining,
                        cluster.send_to_broker(broker, &request, RequestOptions::default()),
                    )
                    .await;
                    match answer {
                        Err(_) => break,
                        Ok(Err(e)) => {
                            if e.invalidates_metadata() {
                                cluster.invalidate_metadata();
                            }
                            for tp in tps {
                                if e.is_retriable() {
                                    pending.insert(tp, Some(replicate_error(&e)));
                                } else {
                                    pending.remove(&tp);
                                    done.insert(tp, Err(replicate_error(&e)));
                                }
                            }
                        }
                        Ok(Ok(response)) => {
                            for topic in response.topics {
                                for p in topic.partitions {
                                    let tp =
                                        TopicPartition::new(topic.name.clone(), p.partition_index);
                                    if !pending.contains_key(&tp) {
                                        continue;
                                    }
                                    match Error::check(
                                        ApiKey::DescribeProducers,
                                        p.error_code,
                                        p.error_message.as_deref(),
                                    ) {
                                        // A fixed broker is asked as told: no re-routing.
                                        Err(e)
                                            if e.is_retriable() && options.broker_id.is_none() =>
                                        {
                                            if e.invalidates_metadata() {
                                                cluster.invalidate_metadata();
                                            }
                                            pending.insert(tp, Some(e));
                                        }
                                        Err(e) => {
                                            pending.remove(&tp);
                                            done.insert(tp, Err(e));
                                        }
                                        Ok(()) => {
                                            pending.remove(&tp);
                                            let states = p
                                                .active_producers
                                                .into_iter()
                                                .map(|s| ProducerState {
                                                    producer_id: s.producer_id,
                                                    producer_epoch: s.producer_epoch,
                                                    last_sequence: s.last_sequence,
                                                    last_timestamp: s.last_timestamp,
                                                    coordinator_epoch: (s.coordinator_epoch >= 0)
                                                        .then_some(s.coordinator_epoch),
                                                    current_transaction_start_offset: (s
                                                        .current_txn_start_offset
                                                        >= 0)
                                                        .then_some(s.current_txn_start_offset),
                                                })
                                                .collect();
                                            done.insert(tp, Ok(states));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                if pending.is_empty() {
                    break;
                }
                let Some(delay) = delay_before_next_round(&backoff, round, deadline) else {
                    break;
                };
                tokio::time::sleep(delay).await;
            }
            done.extend(timed_out(pending, "DescribeProducers", timeout, round));
            Ok(done)
        }
        .instrument(span)
        .await
    }
}
