//! Helpers shared by the admin integration tests: connecting, creating
//! topics, running a consumer group's JoinGroup/SyncGroup by hand and
//! producing idempotently, all with raw generated requests.
#![allow(dead_code)]

use ferrokafka::network::RequestOptions;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use ferrokafka::admin::{Admin, Error};
use ferrokafka::network::{ClientConfig, CoordinatorType};
use ferrokafka::protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use ferrokafka::protocol::messages::create_topics_request::CreatableTopic;
use ferrokafka::protocol::messages::join_group_request::JoinGroupRequestProtocol;
use ferrokafka::protocol::messages::leave_group_request::MemberIdentity;
use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use ferrokafka::protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use ferrokafka::protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, CreateTopicsRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ProduceRequest, SyncGroupRequest,
};
use ferrokafka::protocol::{ApiKey, Encodable, ErrorCode};
use ferrokafka::records::{Compression, RecordBatchBuilder};
use ferrokafka::testkit::TestCluster;

pub async fn connect(cluster: &TestCluster) -> Admin {
    let config = ClientConfig::builder()
        .bootstrap_servers(cluster.bootstrap_servers().split(','))
        .default_api_timeout(Duration::from_secs(20))
        .retry_backoff(Duration::from_millis(50))
        .retry_backoff_max(Duration::from_millis(500))
        .build()
        .unwrap();
    Admin::connect(config).await.unwrap()
}

/// A unique-enough suffix so that reruns against an external cluster do not collide.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

pub async fn create_topic(admin: &Admin, name: &str, partitions: i32) {
    let request = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name.to_owned())
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    let response = admin
        .cluster()
        .send_to_controller(&request, RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
    // Wait until the topic has leaders.
    for _ in 0..100 {
        let ok = (0..partitions).all(|p| {
            admin
                .cluster()
                .cached_metadata()
                .leader_for(name, p)
                .is_ok()
        });
        if ok {
            return;
        }
        admin.cluster().track_topics([name]);
        let _ = admin.cluster().refresh_metadata().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("topic {name} has no leaders");
}

fn with_version<M: Encodable>(version: i16, message: &M) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    message.encode(&mut buf, version).unwrap();
    buf.freeze()
}

/// A member that joined a group by hand.
#[derive(Debug, Clone)]
pub struct Member {
    pub group: String,
    pub member_id: String,
    pub generation: i32,
}

/// Joins `group` as its only member (subscribed to `topic`), assigns itself
/// `partitions` of `topic` and returns the member. Handles KIP-394's
/// MEMBER_ID_REQUIRED rejoin.
pub async fn join_group(
    admin: &Admin,
    group: &str,
    client_topic: &str,
    partitions: &[i32],
) -> Member {
    let cluster = admin.cluster();
    let coordinator = cluster
        .find_coordinator(CoordinatorType::Group, group)
        .await
        .unwrap();
    let conn = cluster.connection(&coordinator.address()).await.unwrap();
    let subscription = with_version(
        1,
        &ConsumerProtocolSubscription::default().with_topics(vec![client_topic.to_owned()]),
    );
    let mut member_id = String::new();
    let joined = loop {
        let request = JoinGroupRequest::default()
            .with_group_id(group.to_owned())
            .with_session_timeout_ms(6000)
            .with_rebalance_timeout_ms(6000)
            .with_member_id(member_id.clone())
            .with_protocol_type("consumer".to_owned())
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name("range".to_owned())
                .with_metadata(subscription.clone())]);
        let response = conn.send(&request).await.unwrap();
        match ErrorCode::from_code(response.error_code) {
            ErrorCode::None => break response,
            ErrorCode::MemberIdRequired => member_id = response.member_id.clone(),
            ErrorCode::CoordinatorLoadInProgress | ErrorCode::RebalanceInProgress => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("JoinGroup failed: {other:?} {response:?}"),
        }
    };
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    let assignment = with_version(
        1,
        &ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
            AssignedTopic::default()
                .with_topic(client_topic.to_owned())
                .with_partitions(partitions.to_vec()),
        ]),
    );
    let mut sync = SyncGroupRequest::default()
        .with_group_id(group.to_owned())
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(assignment.clone())]);
    if conn.negotiated_version(ApiKey::SyncGroup).unwrap_or(0) >= 5 {
        sync = sync
            .with_protocol_type(Some("consumer".to_owned()))
            .with_protocol_name(Some("range".to_owned()));
    }
    let synced = conn.send(&sync).await.unwrap();
    assert_eq!(synced.error_code, 0, "{synced:?}");
    assert_eq!(
        synced.assignment, assignment,
        "the coordinator hands back our assignment"
    );
    Member {
        group: group.to_owned(),
        member_id: joined.member_id,
        generation: joined.generation_id,
    }
}

/// Commits offsets as the member.
pub async fn commit_as_member(admin: &Admin, member: &Member, topic: &str, offsets: &[(i32, i64)]) {
    use ferrokafka::protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use ferrokafka::protocol::messages::OffsetCommitRequest;
    let request = OffsetCommitRequest::default()
        .with_group_id(member.group.clone())
        .with_generation_id_or_member_epoch(member.generation)
        .with_member_id(member.member_id.clone())
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic.to_owned())
            .with_partitions(
                offsets
                    .iter()
                    .map(|&(p, o)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_committed_metadata(Some(format!("meta-{p}")))
                    })
                    .collect(),
            )]);
    let response = admin
        .cluster()
        .send_to_coordinator(
            CoordinatorType::Group,
            &member.group,
            &request,
            RequestOptions::default(),
        )
        .await
        .unwrap();
    for t in &response.topics {
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "{response:?}");
        }
    }
}

/// Leaves the group as the member.
pub async fn leave(admin: &Admin, member: &Member) {
    let cluster = admin.cluster();
    let coordinator = cluster
        .find_coordinator(CoordinatorType::Group, &member.group)
        .await
        .unwrap();
    let conn = cluster.connection(&coordinator.address()).await.unwrap();
    let mut request = LeaveGroupRequest::default().with_group_id(member.group.clone());
    if conn.negotiated_version(ApiKey::LeaveGroup).unwrap_or(0) >= 3 {
        request = request.with_members(vec![
            MemberIdentity::default().with_member_id(member.member_id.clone())
        ]);
    } else {
        request = request.with_member_id(member.member_id.clone());
    }
    let response = conn.send(&request).await.unwrap();
    assert_eq!(response.error_code, 0, "{response:?}");
}

/// InitProducerId (idempotent when `transactional_id` is `None`).
pub async fn init_producer_id(
    admin: &Admin,
    transactional_id: Option<&str>,
) -> Result<(i64, i16), Error> {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(str::to_owned))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(-1)
        .with_producer_epoch(-1);
    let cluster = admin.cluster();
    let response = match transactional_id {
        Some(id) => {
            cluster
                .retry("InitProducerId", None, || {
                    cluster.send_to_coordinator(
                        CoordinatorType::Transaction,
                        id,
                        &request,
                        RequestOptions::default(),
                    )
                })
                .await?
        }
        None => {
            cluster
                .send_to_any(&request, RequestOptions::default())
                .await?
        }
    };
    Error::check(ApiKey::InitProducerId, response.error_code, None)?;
    Ok((response.producer_id, response.producer_epoch))
}

/// Produces `count` records to `topic`/`partition` with the producer's id,
/// epoch and `sequence`, returning the base offset.
pub async fn produce(
    admin: &Admin,
    topic: &str,
    partition: i32,
    producer: (i64, i16),
    sequence: i32,
    count: usize,
    transactional_id: Option<&str>,
) -> i64 {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    builder
        .set_producer_id(producer.0)
        .set_producer_epoch(producer.1)
        .set_base_sequence(sequence)
        .set_transactional(transactional_id.is_some());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..count {
        let value = format!("v{i}");
        builder
            .append(now, None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    let batch = builder.finish().unwrap();
    let request = ProduceRequest::default()
        .with_transactional_id(transactional_id.map(str::to_owned))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic.to_owned())
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let leader = admin.cluster().leader_for(topic, partition).await.unwrap();
    let response = admin
        .cluster()
        .send_to_broker(leader.node_id, &request, RequestOptions::default())
        .await
        .unwrap();
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "{response:?}");
    p.base_offset
}

/// Asserts that `result` failed because the broker lacks the API, and says so.
pub fn assert_unsupported<T: std::fmt::Debug>(
    kind: &str,
    what: &str,
    reason: &str,
    result: Result<T, Error>,
) {
    match result {
        Err(Error::UnsupportedVersion { api, broker, .. }) => {
            println!("{kind}: {what}: not supported by this broker ({reason}); the call failed with UnsupportedVersion for {api:?} (broker range {broker:?}) as expected");
        }
        other => panic!(
            "{kind}: {what} was expected to be unsupported ({reason}) but returned {other:?}"
        ),
    }
}
