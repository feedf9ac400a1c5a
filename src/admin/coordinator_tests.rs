//! The single-group admin calls (and the per-key coordinator rounds) against
//! a two-broker fake whose group and transaction coordinator moves: the
//! broker that no longer coordinates answers NOT_COORDINATOR inside the
//! response body (per group, per partition or in the body's error code, as
//! Kafka does), and a coordinator still loading answers
//! COORDINATOR_LOAD_IN_PROGRESS. Each call must forget the coordinator it
//! had cached, look it up again and get its answer from the new one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::tests::admin_on_two_fake_brokers;
use super::*;
use crate::network::testing::{api_versions, local_brokers, Handler, Reply};
use crate::protocol::messages::delete_groups_response::DeletableGroupResult;
use crate::protocol::messages::describe_groups_response::DescribedGroup;
use crate::protocol::messages::describe_transactions_response::TransactionState as WireTxnState;
use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::leave_group_response::MemberResponse;
use crate::protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use crate::protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use crate::protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use crate::protocol::messages::{
    DeleteGroupsResponse, DescribeGroupsResponse, DescribeTransactionsResponse,
    FindCoordinatorResponse, LeaveGroupResponse, MetadataResponse, OffsetCommitResponse,
    OffsetDeleteResponse, OffsetFetchResponse,
};
use crate::protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind};

#[derive(Default)]
struct Fake {
    ports: Mutex<Vec<(i32, u16)>>,
    /// The broker coordinating every group and transactional id.
    coordinator: AtomicI32,
    /// Requests the coordinator answers COORDINATOR_LOAD_IN_PROGRESS first.
    loading: AtomicUsize,
    find_coordinator: AtomicUsize,
    /// (broker, api) of every group/transaction request.
    served: Mutex<Vec<(i32, ApiKey)>>,
}

fn metadata(fake: &Fake) -> MetadataResponse {
    MetadataResponse::default()
        .with_brokers(local_brokers(&fake.ports.lock().unwrap()))
        .with_controller_id(1)
}

/// The error a broker puts in the body: NOT_COORDINATOR when it is not the
/// coordinator, COORDINATOR_LOAD_IN_PROGRESS while it is loading, else none.
fn body_error(fake: &Fake, node: i32) -> i16 {
    if node != fake.coordinator.load(Ordering::SeqCst) {
        return ErrorCode::NotCoordinator.code();
    }
    let loading = fake
        .loading
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if loading {
        ErrorCode::CoordinatorLoadInProgress.code()
    } else {
        0
    }
}

fn handler(node: i32, fake: Arc<Fake>) -> Handler {
    Arc::new(move |header, body| {
        let reply = |body| Reply::now(body, header);
        if !matches!(
            body,
            RequestKind::ApiVersions(_)
                | RequestKind::Metadata(_)
                | RequestKind::FindCoordinator(_)
        ) {
            fake.served.lock().unwrap().push((node, body.api_key()));
        }
        match body {
            RequestKind::ApiVersions(_) => reply(ResponseKind::ApiVersions(api_versions(|api| {
                Some(api.valid_versions())
            }))),
            RequestKind::Metadata(_) => reply(ResponseKind::Metadata(metadata(&fake))),
            RequestKind::FindCoordinator(r) => {
                fake.find_coordinator.fetch_add(1, Ordering::SeqCst);
                let id = fake.coordinator.load(Ordering::SeqCst);
                let port = fake
                    .ports
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|p| p.0 == id)
                    .unwrap()
                    .1;
                let response = if r.coordinator_keys.is_empty() {
                    // v0-v3: one key, answered at the top level.
                    FindCoordinatorResponse::default()
                        .with_node_id(id)
                        .with_host("127.0.0.1".into())
                        .with_port(i32::from(port))
                } else {
                    FindCoordinatorResponse::default().with_coordinators(
                        r.coordinator_keys
                            .iter()
                            .map(|key| {
                                Coordinator::default()
                                    .with_key(key.clone())
                                    .with_node_id(id)
                                    .with_host("127.0.0.1".into())
                                    .with_port(i32::from(port))
                            })
                            .collect(),
                    )
                };
                reply(ResponseKind::FindCoordinator(response))
            }
            RequestKind::OffsetFetch(r) => {
                let code = body_error(&fake, node);
                let committed = |code: i16| (if code == 0 { 42 } else { -1 }, code);
                let response = if r.groups.is_empty() {
                    let (offset, code) = committed(code);
                    OffsetFetchResponse::default()
                        .with_error_code(code)
                        .with_topics(vec![OffsetFetchResponseTopic::default()
                            .with_name("t".into())
                            .with_partitions(vec![OffsetFetchResponsePartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(-1)
                                .with_error_code(code)])])
                } else {
                    let groups = r
                        .groups
                        .iter()
                        .map(|g| {
                            let (offset, code) = committed(code);
                            OffsetFetchResponseGroup::default()
                                .with_group_id(g.group_id.clone())
                                .with_error_code(code)
                                .with_topics(if code == 0 {
                                    vec![OffsetFetchResponseTopics::default()
                                        .with_name("t".into())
                                        .with_partitions(vec![
                                            OffsetFetchResponsePartitions::default()
                                                .with_partition_index(0)
                                                .with_committed_offset(offset)
                                                .with_committed_leader_epoch(-1),
                                        ])]
                                } else {
                                    Vec::new()
                                })
                        })
                        .collect();
                    OffsetFetchResponse::default().with_groups(groups)
                };
                reply(ResponseKind::OffsetFetch(response))
            }
            RequestKind::OffsetCommit(r) => {
                let code = body_error(&fake, node);
                let topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        OffsetCommitResponseTopic::default()
                            .with_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        OffsetCommitResponsePartition::default()
                                            .with_partition_index(p.partition_index)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                reply(ResponseKind::OffsetCommit(
                    OffsetCommitResponse::default().with_topics(topics),
                ))
            }
            RequestKind::OffsetDelete(r) => {
                let code = body_error(&fake, node);
                let topics = if code != 0 {
                    Vec::new()
                } else {
                    r.topics
                        .iter()
                        .map(|t| {
                            OffsetDeleteResponseTopic::default()
                                .with_name(t.name.clone())
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            OffsetDeleteResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                        })
                                        .collect(),
                                )
                        })
                        .collect()
                };
                reply(ResponseKind::OffsetDelete(
                    OffsetDeleteResponse::default()
                        .with_error_code(code)
                        .with_topics(topics),
                ))
            }
            RequestKind::LeaveGroup(r) => {
                let code = body_error(&fake, node);
                let members = if code != 0 {
                    Vec::new()
                } else {
                    r.members
                        .iter()
                        .map(|m| {
                            MemberResponse::default()
                                .with_member_id(m.member_id.clone())
                                .with_group_instance_id(m.group_instance_id.clone())
                        })
                        .collect()
                };
                reply(ResponseKind::LeaveGroup(
                    LeaveGroupResponse::default()
                        .with_error_code(code)
                        .with_members(members),
                ))
            }
            RequestKind::DescribeGroups(r) => {
                let groups = r
                    .groups
                    .iter()
                    .map(|g| {
                        DescribedGroup::default()
                            .with_group_id(g.clone())
                            .with_error_code(body_error(&fake, node))
                            .with_group_state("Empty".into())
                            .with_protocol_type("consumer".into())
                    })
                    .collect();
                reply(ResponseKind::DescribeGroups(
                    DescribeGroupsResponse::default().with_groups(groups),
                ))
            }
            RequestKind::DeleteGroups(r) => {
                let results = r
                    .groups_names
                    .iter()
                    .map(|g| {
                        DeletableGroupResult::default()
                            .with_group_id(g.clone())
                            .with_error_code(body_error(&fake, node))
                    })
                    .collect();
                reply(ResponseKind::DeleteGroups(
                    DeleteGroupsResponse::default().with_results(results),
                ))
            }
            RequestKind::DescribeTransactions(r) => {
                let states = r
                    .transactional_ids
                    .iter()
                    .map(|id| {
                        WireTxnState::default()
                            .with_transactional_id(id.clone())
                            .with_error_code(body_error(&fake, node))
                            .with_transaction_state("Empty".into())
                            .with_producer_id(7)
                            .with_transaction_start_time_ms(-1)
                    })
                    .collect();
                reply(ResponseKind::DescribeTransactions(
                    DescribeTransactionsResponse::default().with_transaction_states(states),
                ))
            }
            _ => Reply::Close,
        }
    })
}

async fn fake_admin() -> (Arc<Fake>, Admin) {
    let fake = Arc::new(Fake::default());
    fake.coordinator.store(1, Ordering::SeqCst);
    let admin = admin_on_two_fake_brokers(
        |id| handler(id, fake.clone()),
        |id, port| fake.ports.lock().unwrap().push((id, port)),
        Duration::from_secs(3),
    )
    .await;
    (fake, admin)
}

/// Moves the coordinator to the other broker, and has the new one answer
/// COORDINATOR_LOAD_IN_PROGRESS to its first request.
fn move_coordinator(fake: &Fake) {
    let to = 3 - fake.coordinator.load(Ordering::SeqCst);
    fake.coordinator.store(to, Ordering::SeqCst);
    fake.loading.store(1, Ordering::SeqCst);
}

/// The brokers that served `api`, in order.
fn served(fake: &Fake, api: ApiKey) -> Vec<i32> {
    fake.served
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.1 == api)
        .map(|s| s.0)
        .collect()
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

#[tokio::test]
async fn single_group_calls_follow_a_coordinator_that_moved() {
    let (fake, admin) = fake_admin().await;
    let group = "g";
    let offsets: BTreeMap<TopicPartition, OffsetAndMetadata> = [(
        tp(),
        OffsetAndMetadata {
            offset: 42,
            leader_epoch: None,
            metadata: String::new(),
        },
    )]
    .into();

    // Each call: once against broker 1 (caching it as the coordinator), then
    // again after the coordinator moved to the other broker.
    for round in 0..2 {
        let listed = admin
            .list_consumer_group_offsets(group, Some(&[tp()]), Default::default())
            .await
            .unwrap_or_else(|e| panic!("round {round}: OffsetFetch: {e}"));
        assert_eq!(listed[&tp()].as_ref().unwrap().as_ref().unwrap().offset, 42);
        move_coordinator(&fake);

        let altered = admin
            .alter_consumer_group_offsets(group, &offsets, Default::default())
            .await
            .unwrap_or_else(|e| panic!("round {round}: OffsetCommit: {e}"));
        assert!(altered[&tp()].is_ok(), "{altered:?}");
        move_coordinator(&fake);

        let deleted = admin
            .delete_consumer_group_offsets(group, &[tp()], Default::default())
            .await
            .unwrap_or_else(|e| panic!("round {round}: OffsetDelete: {e}"));
        assert!(deleted[&tp()].is_ok(), "{deleted:?}");
        move_coordinator(&fake);

        let removed = admin
            .remove_members_from_consumer_group(
                group,
                &[MemberToRemove {
                    group_instance_id: "static-1".into(),
                }],
                Default::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("round {round}: LeaveGroup: {e}"));
        assert!(removed["static-1"].is_ok(), "{removed:?}");
        move_coordinator(&fake);

        let described = admin
            .describe_consumer_groups(&[group], Default::default())
            .await
            .unwrap();
        assert!(described[group].is_ok(), "{:?}", described[group]);
        move_coordinator(&fake);

        let dropped = admin
            .delete_consumer_groups(&[group], Default::default())
            .await
            .unwrap();
        assert!(dropped[group].is_ok(), "{:?}", dropped[group]);
        move_coordinator(&fake);

        let txns = admin
            .describe_transactions(&["tx"], Default::default())
            .await
            .unwrap();
        assert_eq!(txns["tx"].as_ref().unwrap().producer_id, 7);
        move_coordinator(&fake);
    }
    // Every call's last request went to the coordinator of the moment: the
    // moves alternate 1, 2, 1, ... so the answering brokers do too.
    for api in [
        ApiKey::OffsetFetch,
        ApiKey::OffsetCommit,
        ApiKey::OffsetDelete,
        ApiKey::LeaveGroup,
        ApiKey::DescribeGroups,
        ApiKey::DeleteGroups,
        ApiKey::DescribeTransactions,
    ] {
        let brokers = served(&fake, api);
        assert!(brokers.len() >= 2, "{api:?}: {brokers:?}");
    }
    assert!(fake.find_coordinator.load(Ordering::SeqCst) >= 14);
}
