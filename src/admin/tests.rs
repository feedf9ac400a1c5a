//! The admin calls against an in-process two-broker fake cluster: routing
//! (controller, leaders, named brokers), per-resource results and
//! retries after NOT_CONTROLLER and NOT_LEADER_OR_FOLLOWER.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::common::{broker_retriable, retry_each};
use super::*;
use crate::network::testing::{api_versions, spawn_tcp, Handler, Reply};
use crate::network::ClientConfig;
use crate::protocol::messages::create_topics_response::CreatableTopicResult;
use crate::protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use crate::protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use crate::protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use crate::protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use crate::protocol::messages::{
    CreateTopicsResponse, DescribeConfigsResponse, IncrementalAlterConfigsResponse,
    ListOffsetsResponse, MetadataResponse,
};
use crate::protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind, Uuid};

/// Shared state of the fake cluster.
#[derive(Default)]
struct Fake {
    ports: Mutex<Vec<(i32, u16)>>,
    controller: AtomicI32,
    leader_of_p1: AtomicI32,
    /// (broker, partitions) of each ListOffsets request.
    list_offsets: Mutex<Vec<(i32, Vec<i32>)>>,
    create_topics_calls: AtomicUsize,
    /// (broker, resource names) of each config request.
    config_requests: Mutex<Vec<(i32, Vec<String>)>>,
}

fn metadata(fake: &Fake) -> MetadataResponse {
    let brokers = fake
        .ports
        .lock()
        .unwrap()
        .iter()
        .map(|&(id, port)| MetadataResponseBroker {
            node_id: id,
            host: "127.0.0.1".into(),
            port: i32::from(port),
            ..Default::default()
        })
        .collect();
    let partition = |index, leader| MetadataResponsePartition {
        partition_index: index,
        leader_id: leader,
        leader_epoch: 4,
        replica_nodes: vec![1, 2],
        isr_nodes: vec![1, 2],
        ..Default::default()
    };
    MetadataResponse {
        brokers,
        cluster_id: Some("fake".into()),
        controller_id: fake.controller.load(Ordering::SeqCst),
        topics: vec![MetadataResponseTopic {
            name: Some("t".into()),
            topic_id: Uuid::from_u64_pair(7, 7),
            partitions: vec![
                partition(0, 1),
                partition(1, fake.leader_of_p1.load(Ordering::SeqCst)),
                partition(2, 1),
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn handler(node: i32, fake: Arc<Fake>) -> Handler {
    Arc::new(move |header, body| {
        let reply = |body| Reply::now(body, header);
        match body {
            RequestKind::ApiVersions(_) => reply(ResponseKind::ApiVersions(api_versions(|api| {
                Some(api.valid_versions())
            }))),
            RequestKind::Metadata(_) => reply(ResponseKind::Metadata(metadata(&fake))),
            RequestKind::CreateTopics(r) => {
                fake.create_topics_calls.fetch_add(1, Ordering::SeqCst);
                // Broker 2 is the controller, though metadata first says 1.
                let controller = 2;
                let topics = r
                    .topics
                    .iter()
                    .map(|t| {
                        let mut result = CreatableTopicResult {
                            name: t.name.clone(),
                            num_partitions: t.num_partitions,
                            replication_factor: t.replication_factor,
                            ..Default::default()
                        };
                        if node != controller {
                            result.error_code = ErrorCode::NotController.code();
                        } else if t.name == "exists" {
                            result.error_code = ErrorCode::TopicAlreadyExists.code();
                            result.error_message = Some("it does".into());
                        } else {
                            result.topic_id = Uuid::from_u64_pair(1, 2);
                        }
                        result
                    })
                    .collect();
                // Metadata tells the truth from the first refusal on.
                fake.controller.store(controller, Ordering::SeqCst);
                reply(ResponseKind::CreateTopics(CreateTopicsResponse {
                    topics,
                    ..Default::default()
                }))
            }
            RequestKind::ListOffsets(r) => {
                let mut seen = Vec::new();
                let topics = r
                    .topics
                    .iter()
                    .map(|t| ListOffsetsTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| {
                                seen.push(p.partition_index);
                                let mut answer = ListOffsetsPartitionResponse {
                                    partition_index: p.partition_index,
                                    offset: i64::from(p.partition_index) * 100 + i64::from(node),
                                    timestamp: p.timestamp,
                                    leader_epoch: 4,
                                    ..Default::default()
                                };
                                if p.partition_index == 1 && node == 2 {
                                    // Leadership of p1 moved to broker 1.
                                    fake.leader_of_p1.store(1, Ordering::SeqCst);
                                    answer.error_code = ErrorCode::NotLeaderOrFollower.code();
                                }
                                answer
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect();
                fake.list_offsets.lock().unwrap().push((node, seen));
                reply(ResponseKind::ListOffsets(ListOffsetsResponse {
                    topics,
                    ..Default::default()
                }))
            }
            RequestKind::DescribeConfigs(r) => {
                let names = r.resources.iter().map(|r| r.resource_name.clone());
                fake.config_requests
                    .lock()
                    .unwrap()
                    .push((node, names.collect()));
                let results = r
                    .resources
                    .iter()
                    .map(|res| DescribeConfigsResult {
                        resource_type: res.resource_type,
                        resource_name: res.resource_name.clone(),
                        configs: vec![DescribeConfigsResourceResult {
                            name: "answered.by".into(),
                            value: Some(node.to_string()),
                            config_source: 1,
                            config_type: 3,
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect();
                reply(ResponseKind::DescribeConfigs(DescribeConfigsResponse {
                    results,
                    ..Default::default()
                }))
            }
            RequestKind::IncrementalAlterConfigs(r) => {
                let names = r.resources.iter().map(|r| r.resource_name.clone());
                fake.config_requests
                    .lock()
                    .unwrap()
                    .push((node, names.collect()));
                let responses = r
                    .resources
                    .iter()
                    .map(|res| {
                        let bad = res.configs.iter().any(|c| c.name == "bad");
                        AlterConfigsResourceResponse {
                            resource_type: res.resource_type,
                            resource_name: res.resource_name.clone(),
                            error_code: if bad {
                                ErrorCode::InvalidConfig.code()
                            } else {
                                0
                            },
                            ..Default::default()
                        }
                    })
                    .collect();
                reply(ResponseKind::IncrementalAlterConfigs(
                    IncrementalAlterConfigsResponse {
                        responses,
                        ..Default::default()
                    },
                ))
            }
            _ => Reply::Close,
        }
    })
}

/// Starts fake brokers 1 and 2 (`handler` of each id), tells `started` the
/// port of each before any client connects, and returns an admin client
/// bootstrapped from both with short backoffs and `api_timeout`.
pub(super) async fn admin_on_two_fake_brokers(
    handler: impl Fn(i32) -> Handler,
    mut started: impl FnMut(i32, u16),
    api_timeout: Duration,
) -> Admin {
    let mut addrs = Vec::new();
    for id in [1, 2] {
        let addr = spawn_tcp(handler(id)).await;
        started(id, addr.rsplit_once(':').unwrap().1.parse().unwrap());
        addrs.push(addr);
    }
    let config = ClientConfig::builder()
        .bootstrap_servers(addrs)
        .retry_backoff(Duration::from_millis(5))
        .retry_backoff_max(Duration::from_millis(20))
        .default_api_timeout(api_timeout)
        .build()
        .unwrap();
    Admin::connect(config).await.unwrap()
}

async fn fake_admin() -> (Arc<Fake>, Admin) {
    let fake = Arc::new(Fake::default());
    fake.controller.store(1, Ordering::SeqCst);
    fake.leader_of_p1.store(2, Ordering::SeqCst);
    let admin = admin_on_two_fake_brokers(
        |id| handler(id, fake.clone()),
        |id, port| fake.ports.lock().unwrap().push((id, port)),
        Duration::from_secs(5),
    )
    .await;
    (fake, admin)
}

#[tokio::test]
async fn create_topics_follows_a_moved_controller_and_reports_per_topic() {
    let (fake, admin) = fake_admin().await;
    let created = admin
        .create_topics(
            &[NewTopic::new("a", 3, 2), NewTopic::new("exists", 1, 1)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    // First attempt: broker 1 answers NOT_CONTROLLER for both; the retry
    // goes to broker 2 after the metadata refresh.
    assert_eq!(fake.create_topics_calls.load(Ordering::SeqCst), 2);
    let a = created["a"].as_ref().unwrap();
    assert_eq!(a.topic_id, Some(Uuid::from_u64_pair(1, 2)));
    assert_eq!((a.num_partitions, a.replication_factor), (Some(3), Some(2)));
    let err = created["exists"].as_ref().unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::TopicAlreadyExists));
    assert!(err.to_string().contains("it does"), "{err}");
}

#[tokio::test]
async fn list_offsets_groups_by_leader_and_retries_moved_partitions() {
    let (fake, admin) = fake_admin().await;
    let specs: BTreeMap<TopicPartition, OffsetSpec> = (0..3)
        .map(|p| (TopicPartition::new("t", p), OffsetSpec::Latest))
        .collect();
    let offsets = admin
        .list_offsets(&specs, Default::default())
        .await
        .unwrap();
    let got: Vec<i64> = offsets
        .values()
        .map(|r| r.as_ref().unwrap().offset)
        .collect();
    // Partition p answered by broker b has offset 100 p + b; p1 moved to 1.
    assert_eq!(got, [1, 101, 201]);
    assert_eq!(
        offsets[&TopicPartition::new("t", 0)]
            .as_ref()
            .unwrap()
            .leader_epoch,
        Some(4)
    );
    let mut requests = fake.list_offsets.lock().unwrap().clone();
    requests.sort();
    // One request per leader (p0 and p2 together), then p1 again at its new leader.
    assert_eq!(requests, [(1, vec![0, 2]), (1, vec![1]), (2, vec![1])]);
}

#[tokio::test]
async fn configs_of_a_broker_go_to_that_broker() {
    let (fake, admin) = fake_admin().await;
    let topic = ConfigResource::topic("t");
    let broker2 = ConfigResource::broker(2);
    let described = admin
        .describe_configs(
            &[topic.clone(), broker2.clone()],
            DescribeConfigsOptions::default(),
        )
        .await
        .unwrap();
    let entry = described[&broker2]
        .as_ref()
        .unwrap()
        .get("answered.by")
        .unwrap()
        .clone();
    assert_eq!(entry.value.as_deref(), Some("2"));
    assert_eq!(entry.source, ConfigSource::DynamicTopicConfig);
    assert!(described[&topic].is_ok());
    let requests = fake.config_requests.lock().unwrap().clone();
    assert!(
        requests.contains(&(2, vec!["2".to_owned()])),
        "{requests:?}"
    );
    assert!(requests.iter().any(|(_, names)| names == &["t".to_owned()]));

    let changes = BTreeMap::from([
        (topic.clone(), vec![AlterConfigOp::set("retention.ms", "1")]),
        (
            ConfigResource::topic("u"),
            vec![AlterConfigOp::set("bad", "x")],
        ),
    ]);
    let altered = admin
        .incremental_alter_configs(&changes, Default::default())
        .await
        .unwrap();
    assert!(altered[&topic].is_ok());
    let err = altered[&ConfigResource::topic("u")].as_ref().unwrap_err();
    assert_eq!(err.error_code(), Some(ErrorCode::InvalidConfig));
}

#[tokio::test]
async fn describe_topics_maps_metadata_and_missing_topics() {
    let (_fake, admin) = fake_admin().await;
    let described = admin
        .describe_topics(&["t"], DescribeTopicsOptions::default())
        .await
        .unwrap();
    let t = described["t"].as_ref().unwrap();
    assert_eq!(t.topic_id, Some(Uuid::from_u64_pair(7, 7)));
    assert_eq!(t.partitions.len(), 3);
    assert_eq!(t.partitions[1].leader, Some(2));
    assert_eq!(t.partitions[1].leader_epoch, Some(4));
    assert_eq!(t.authorized_operations, None);
    // The fake answers only for "t": other names get a protocol error.
    let described = admin
        .describe_topics(&["nope"], Default::default())
        .await
        .unwrap();
    assert!(matches!(described["nope"], Err(Error::Protocol { .. })));
}

#[tokio::test]
async fn retry_each_settles_retries_and_times_out_per_key() {
    let cluster = Cluster::new(
        ClientConfig::builder()
            .bootstrap_servers(["127.0.0.1:1"])
            .retry_backoff(Duration::from_millis(1))
            .retry_backoff_max(Duration::from_millis(5))
            .build()
            .unwrap(),
    )
    .unwrap();
    let broker = |code: ErrorCode| Error::Broker {
        api: ApiKey::CreateTopics,
        code,
        message: None,
    };
    let attempts = AtomicUsize::new(0);
    let results = retry_each(
        &cluster,
        "test",
        Duration::from_millis(200),
        ["ok", "final", "again", "forever", "silent"],
        controller_retriable,
        |pending| {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 1 {
                    // A whole attempt failing retriably is retried.
                    return Err(Error::Disconnected {
                        broker: "x".into(),
                        reason: "test".into(),
                    });
                }
                Ok(pending
                    .into_iter()
                    .filter(|k| *k != "silent")
                    .map(|k| {
                        let r = match k {
                            "ok" => Ok(k.len()),
                            "final" => Err(broker(ErrorCode::InvalidReplicationFactor)),
                            "again" if n < 2 => Err(broker(ErrorCode::NotController)),
                            "again" => Ok(0),
                            _ => Err(broker(ErrorCode::ThrottlingQuotaExceeded)),
                        };
                        (k, r)
                    })
                    .collect())
            }
        },
    )
    .await
    .unwrap();
    assert_eq!(*results["ok"].as_ref().unwrap(), 2);
    assert_eq!(
        results["final"].as_ref().unwrap_err().error_code(),
        Some(ErrorCode::InvalidReplicationFactor)
    );
    assert_eq!(*results["again"].as_ref().unwrap(), 0);
    match results["forever"].as_ref().unwrap_err() {
        Error::Timeout {
            last: Some(last), ..
        } => {
            assert_eq!(last.error_code(), Some(ErrorCode::ThrottlingQuotaExceeded))
        }
        other => panic!("{other}"),
    }
    assert!(matches!(results["silent"], Err(Error::Protocol { .. })));
    assert!(attempts.load(Ordering::SeqCst) >= 4);

    // No answer at all before the deadline: the call fails as a whole.
    let err = retry_each(
        &cluster,
        "test",
        Duration::from_millis(50),
        [1],
        broker_retriable,
        |_| async {
            Err::<Vec<(i32, Result<()>)>, _>(Error::Disconnected {
                broker: "x".into(),
                reason: "down".into(),
            })
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Timeout { last: Some(_), .. }), "{err}");
    // A non-retriable failure of a whole attempt is returned at once.
    let err = retry_each(
        &cluster,
        "test",
        Duration::from_secs(5),
        [1],
        broker_retriable,
        |_| async {
            Err::<Vec<(i32, Result<()>)>, _>(Error::Protocol {
                broker: "x".into(),
                reason: "garbage".into(),
            })
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
}

/// A one-broker cluster whose controller creates a topic on the first
/// CreateTopics and then answers it only after `first_answer_delay`
/// (a broker finishing the creation within the request's `timeout_ms`), or
/// never (`None`: the connection is closed); later CreateTopics find the
/// topic and answer TOPIC_ALREADY_EXISTS at once.
async fn slow_creating_controller(
    first_answer_delay: Option<Duration>,
) -> (Arc<AtomicUsize>, Arc<Mutex<Vec<i32>>>, String) {
    let calls = Arc::new(AtomicUsize::new(0));
    let broker_timeouts = Arc::new(Mutex::new(Vec::new()));
    let port = Arc::new(AtomicI32::new(0));
    let handler: Handler = Arc::new({
        let (calls, broker_timeouts, port) = (calls.clone(), broker_timeouts.clone(), port.clone());
        move |header, body| match body {
            RequestKind::ApiVersions(_) => Reply::now(
                ResponseKind::ApiVersions(api_versions(|api| Some(api.valid_versions()))),
                header,
            ),
            RequestKind::Metadata(_) => Reply::now(
                ResponseKind::Metadata(MetadataResponse {
                    brokers: vec![MetadataResponseBroker {
                        node_id: 1,
                        host: "127.0.0.1".into(),
                        port: port.load(Ordering::SeqCst),
                        ..Default::default()
                    }],
                    controller_id: 1,
                    ..Default::default()
                }),
                header,
            ),
            RequestKind::CreateTopics(r) => {
                broker_timeouts.lock().unwrap().push(r.timeout_ms);
                let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
                let topics = r
                    .topics
                    .iter()
                    .map(|t| CreatableTopicResult {
                        name: t.name.clone(),
                        error_code: if first {
                            0
                        } else {
                            ErrorCode::TopicAlreadyExists.code()
                        },
                        topic_id: Uuid::from_u64_pair(3, 3),
                        num_partitions: t.num_partitions,
                        replication_factor: t.replication_factor,
                        ..Default::default()
                    })
                    .collect();
                let body = ResponseKind::CreateTopics(CreateTopicsResponse {
                    topics,
                    ..Default::default()
                });
                match (first, first_answer_delay) {
                    (false, _) => Reply::now(body, header),
                    (true, Some(delay)) => Reply::after(body, header, delay),
                    (true, None) => Reply::Close,
                }
            }
            _ => Reply::Close,
        }
    });
    let addr = spawn_tcp(handler).await;
    port.store(
        addr.rsplit_once(':').unwrap().1.parse().unwrap(),
        Ordering::SeqCst,
    );
    (calls, broker_timeouts, addr)
}

fn short_wire_timeout_config(addr: String) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers([addr])
        .request_timeout(Duration::from_millis(300))
        .retry_backoff(Duration::from_millis(5))
        .retry_backoff_max(Duration::from_millis(20))
        .default_api_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The broker may hold CreateTopics for its `timeout_ms` (here the call's
/// 5 s); the wire timeout (request.timeout.ms = 300 ms) must not cut it.
/// Before: the request was cut after 300 ms, retried, and the topic this
/// call had created came back as TOPIC_ALREADY_EXISTS.
#[tokio::test]
async fn create_topics_waits_as_long_as_the_broker_may_take() {
    let (calls, broker_timeouts, addr) =
        slow_creating_controller(Some(Duration::from_millis(900))).await;
    let admin = Admin::connect(short_wire_timeout_config(addr))
        .await
        .unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new("slow", 2, 1)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    let slow = created["slow"].as_ref().unwrap();
    assert_eq!(slow.topic_id, Some(Uuid::from_u64_pair(3, 3)));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "one attempt, answered");
    let broker_side = broker_timeouts.lock().unwrap()[0];
    assert!(
        broker_side > 4_000,
        "timeout_ms is the call's remaining time: {broker_side}"
    );
}

/// An attempt that got no answer may have created the topic: a retry's
/// TOPIC_ALREADY_EXISTS for it is this call's own success.
#[tokio::test]
async fn create_topics_retry_finding_its_own_topic_is_a_success() {
    let (calls, _, addr) = slow_creating_controller(None).await;
    let admin = Admin::connect(short_wire_timeout_config(addr))
        .await
        .unwrap();
    let created = admin
        .create_topics(
            &[NewTopic::new("mine", 2, 1)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    let mine = created["mine"].as_ref().unwrap();
    assert_eq!(
        (mine.num_partitions, mine.replication_factor),
        (Some(2), Some(1))
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the lost attempt and the retry"
    );

    // A topic that existed before the call still fails.
    let created = admin
        .create_topics(
            &[NewTopic::new("mine", 2, 1)],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        created["mine"].as_ref().unwrap_err().error_code(),
        Some(ErrorCode::TopicAlreadyExists)
    );
}
