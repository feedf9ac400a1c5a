//! The admin client's topic, config, offset and cluster calls against real
//! brokers: each local broker kind chosen by `FERROKAFKA_TEST_BROKERS`
//! (default: Tansu and noida-db), or the external cluster named by
//! `KAFKA_BOOTSTRAP_SERVERS`.
//!
//! Every operation is exercised on every broker. Where a broker is known to
//! lack an API or to answer it wrongly (the testkit's capability table), the
//! test asserts the typed error or prints the wrong answer it got, naming the
//! gap, instead of skipping silently.

use ferrokafka::network::RequestOptions;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrokafka::admin::{
    Admin, AlterConfigOp, AlterConfigsOptions, ConfigResource, ConfigSource,
    CreatePartitionsOptions, CreateTopicsOptions, DeleteRecordsOptions, DescribeClusterOptions,
    DescribeConfigsOptions, DescribeTopicsOptions, Error, ListOffsetsOptions, ListTopicsOptions,
    NewPartitions, NewTopic, OffsetSpec, TopicPartition,
};
use ferrokafka::network::ClientConfig;
use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use ferrokafka::protocol::messages::ProduceRequest;
use ferrokafka::protocol::{ApiKey, ErrorCode};
use ferrokafka::records::{Compression, RecordBatchBuilder};
use ferrokafka::testkit::{test_broker_kinds, BrokerKind, Capability, TestCluster};

/// Timestamps of the produced records: BASE, BASE + 1 s, BASE + 2 s.
const BASE_TS: i64 = 1_700_000_000_000;

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn connect(bootstrap: &str) -> Admin {
    let config = ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .default_api_timeout(Duration::from_secs(15))
        .request_timeout(Duration::from_secs(10))
        .retry_backoff(Duration::from_millis(20))
        .retry_backoff_max(Duration::from_millis(200))
        .build()
        .unwrap();
    Admin::connect(config).await.unwrap()
}

fn code(e: &Error) -> Option<ErrorCode> {
    e.error_code()
}

/// Label for messages: the broker kind, or "external".
fn label(cluster: &TestCluster) -> String {
    cluster
        .kind()
        .map_or_else(|| "external".to_owned(), |k| k.name().to_owned())
}

/// A gap of the cluster's broker, if it has that one.
fn gap(cluster: &TestCluster, capability: Capability) -> Option<String> {
    cluster.skip_reason(capability)
}

async fn produce(admin: &Admin, topic: &str, partition: i32, count: i64) {
    let mut builder = RecordBatchBuilder::new(Compression::None);
    for i in 0..count {
        let value = format!("value-{i}");
        builder
            .append(BASE_TS + i * 1000, None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    let request = ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(builder.finish().unwrap()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let leader = admin.cluster().leader_for(topic, partition).await.unwrap();
    let response = admin
        .cluster()
        .send_to_broker(leader.node_id, &request, RequestOptions::default())
        .await
        .unwrap();
    let p = &response.responses[0].partition_responses[0];
    assert_eq!(p.error_code, 0, "produce: {response:?}");
}

async fn run(cluster: TestCluster) {
    let started = Instant::now();
    let who = label(&cluster);
    let admin = connect(&cluster.bootstrap_servers()).await;
    let t1 = unique("admin-a");
    let t2 = unique("admin-b");
    let mut gaps_seen = Vec::new();

    // ---------------------------------------------------------- cluster
    let description = admin
        .describe_cluster(DescribeClusterOptions {
            include_authorized_operations: true,
            ..Default::default()
        })
        .await
        .unwrap();
    println!("{who}: describe_cluster: {description:?}");
    assert!(!description.brokers.is_empty());
    assert!(description.cluster_id.is_some());
    let broker_ids: Vec<i32> = description.brokers.iter().map(|b| b.node_id).collect();

    // ---------------------------------------------------- create topics
    let validate = admin
        .create_topics(
            &[NewTopic::new(&t1, 3, 1)],
            CreateTopicsOptions {
                validate_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let validated = validate[&t1].as_ref().expect("validate_only create");
    if let Some(n) = validated.num_partitions {
        assert_eq!(n, 3);
    }
    let listed = admin
        .list_topics(ListTopicsOptions::default())
        .await
        .unwrap();
    if let Some(reason) = gap(&cluster, Capability::CreateTopicsValidateOnly) {
        assert!(listed.contains_key(&t1), "{who}: the gap is gone: {reason}");
        println!("{who}: create_topics(validate_only) created {t1}: known gap: {reason}");
        gaps_seen.push(Capability::CreateTopicsValidateOnly);
        admin
            .delete_topics(&[&t1], Default::default())
            .await
            .unwrap()[&t1]
            .as_ref()
            .expect("delete the topic validate_only created");
    } else {
        assert!(
            !listed.contains_key(&t1),
            "{who}: validate_only created the topic"
        );
    }

    let created = admin
        .create_topics(
            &[
                NewTopic::new(&t1, 3, 1).config("retention.ms", "3600000"),
                NewTopic::with_defaults(&t2),
            ],
            CreateTopicsOptions::default(),
        )
        .await
        .unwrap();
    println!("{who}: create_topics: {created:?}");
    let c1 = created[&t1].as_ref().expect("create t1");
    if let Some(n) = c1.num_partitions {
        assert_eq!(n, 3);
    }
    if let Some(rf) = c1.replication_factor {
        assert_eq!(rf, 1);
    }
    if let Some(configs) = &c1.configs {
        if let Some(retention) = configs.iter().find(|c| c.name == "retention.ms") {
            assert_eq!(retention.value.as_deref(), Some("3600000"));
        }
    }
    let t2_created = created[&t2]
        .as_ref()
        .expect("create t2 with broker defaults");
    let t2_id = t2_created.topic_id;

    let again = admin
        .create_topics(&[NewTopic::new(&t1, 3, 1)], Default::default())
        .await
        .unwrap();
    let err = again[&t1].as_ref().unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::TopicAlreadyExists), "{err}");

    // ------------------------------------------------- list and describe
    let listed = admin
        .list_topics(ListTopicsOptions::default())
        .await
        .unwrap();
    assert!(
        listed.contains_key(&t1) && listed.contains_key(&t2),
        "{listed:?}"
    );
    assert!(listed.values().all(|t| !t.is_internal));

    let missing = unique("admin-missing");
    let described = admin
        .describe_topics(
            &[t1.as_str(), missing.as_str()],
            DescribeTopicsOptions {
                include_authorized_operations: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let d1 = described[&t1].as_ref().expect("describe t1");
    println!("{who}: describe_topics: {d1:?}");
    assert_eq!(d1.name, t1);
    assert!(!d1.is_internal);
    assert_eq!(
        d1.partitions
            .iter()
            .map(|p| p.partition)
            .collect::<Vec<_>>(),
        [0, 1, 2]
    );
    for p in &d1.partitions {
        let leader = p.leader.expect("a leader");
        assert!(broker_ids.contains(&leader), "{p:?}");
        assert!(p.replicas.contains(&leader), "{p:?}");
        assert!(!p.isr.is_empty(), "{p:?}");
    }
    if let (Some(id), Some(created_id)) = (d1.topic_id, c1.topic_id) {
        assert_eq!(id, created_id);
    }
    let err = described[&missing].as_ref().unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::UnknownTopicOrPartition), "{err}");

    // ------------------------------------------------- create partitions
    let grow = BTreeMap::from([(t1.clone(), NewPartitions::increase_to(4))]);
    let validate = admin
        .create_partitions(
            &grow,
            CreatePartitionsOptions {
                validate_only: true,
                ..Default::default()
            },
        )
        .await;
    if let Some(reason) = gap(&cluster, Capability::CreatePartitions) {
        let err = validate.unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedVersion {
                    api: ApiKey::CreatePartitions,
                    ..
                }
            ),
            "{err}"
        );
        println!("{who}: create_partitions fails as expected with `{err}`: {reason}");
        gaps_seen.push(Capability::CreatePartitions);
    } else {
        validate.unwrap()[&t1]
            .as_ref()
            .expect("validate_only create partitions");
        let after = admin
            .describe_topics(&[&t1], Default::default())
            .await
            .unwrap();
        assert_eq!(after[&t1].as_ref().unwrap().partitions.len(), 3);
        let grown = admin
            .create_partitions(&grow, Default::default())
            .await
            .unwrap();
        grown[&t1].as_ref().expect("create partitions");
        let after = admin
            .describe_topics(&[&t1], Default::default())
            .await
            .unwrap();
        assert_eq!(after[&t1].as_ref().unwrap().partitions.len(), 4);
        let shrink = BTreeMap::from([(t1.clone(), NewPartitions::increase_to(2))]);
        let err = admin
            .create_partitions(&shrink, Default::default())
            .await
            .unwrap();
        let err = err[&t1].as_ref().unwrap_err();
        assert_eq!(code(err), Some(ErrorCode::InvalidPartitions), "{err}");
    }

    // ----------------------------------------------------------- configs
    let topic = ConfigResource::topic(&t1);
    let broker = ConfigResource::broker(broker_ids[0]);
    let configs = admin
        .describe_configs(
            &[topic.clone(), broker.clone()],
            DescribeConfigsOptions {
                include_synonyms: true,
                include_documentation: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let tc = configs[&topic].as_ref().expect("describe topic configs");
    let retention = tc.get("retention.ms").expect("retention.ms described");
    assert_eq!(retention.value.as_deref(), Some("3600000"), "{retention:?}");
    if let Some(reason) = gap(&cluster, Capability::DescribeConfigs) {
        println!("{who}: describe_configs: known gap, sending all keys avoids it: {reason}");
    }
    if retention.source != ConfigSource::DynamicTopicConfig {
        println!(
            "{who}: describe_configs: retention.ms source is {:?}, Kafka says DynamicTopicConfig",
            retention.source
        );
    }
    match &configs[&broker] {
        Ok(bc) => println!("{who}: broker config has {} entries", bc.entries.len()),
        Err(e) => println!(
            "{who}: describe_configs(broker {}) failed: {e}",
            broker_ids[0]
        ),
    }

    let changes = BTreeMap::from([(
        topic.clone(),
        vec![AlterConfigOp::set("retention.ms", "7200000")],
    )]);
    let validated = admin
        .incremental_alter_configs(
            &changes,
            AlterConfigsOptions {
                validate_only: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    validated[&topic]
        .as_ref()
        .expect("validate incremental alter");
    let value = |configs: &BTreeMap<ConfigResource, _>| -> Option<String> {
        let c: &Result<ferrokafka::admin::Config, Error> = &configs[&topic];
        c.as_ref().unwrap().value("retention.ms").map(str::to_owned)
    };
    let now = admin
        .describe_configs(std::slice::from_ref(&topic), Default::default())
        .await
        .unwrap();
    if let Some(reason) = gap(&cluster, Capability::IncrementalAlterConfigsValidateOnly) {
        assert_eq!(value(&now).as_deref(), Some("7200000"), "the gap is gone");
        println!("{who}: incremental_alter_configs(validate_only) applied the change: known gap: {reason}");
        gaps_seen.push(Capability::IncrementalAlterConfigsValidateOnly);
    } else {
        assert_eq!(
            value(&now).as_deref(),
            Some("3600000"),
            "{who}: validate_only changed configs"
        );
    }
    let altered = admin
        .incremental_alter_configs(&changes, Default::default())
        .await
        .unwrap();
    altered[&topic].as_ref().expect("incremental alter");
    let now = admin
        .describe_configs(std::slice::from_ref(&topic), Default::default())
        .await
        .unwrap();
    assert_eq!(value(&now).as_deref(), Some("7200000"));

    let legacy = BTreeMap::from([(
        topic.clone(),
        BTreeMap::from([("retention.ms".to_owned(), "1800000".to_owned())]),
    )]);
    let replaced = admin
        .alter_configs(&legacy, Default::default())
        .await
        .unwrap();
    if let Some(reason) = gap(&cluster, Capability::AlterConfigs) {
        let err = replaced[&topic].as_ref().unwrap_err();
        assert!(
            matches!(
                err,
                Error::UnsupportedVersion {
                    api: ApiKey::AlterConfigs,
                    ..
                }
            ),
            "{err}"
        );
        println!("{who}: alter_configs fails as expected with `{err}`: {reason}");
        gaps_seen.push(Capability::AlterConfigs);
    } else {
        replaced[&topic].as_ref().expect("alter configs");
        let now = admin
            .describe_configs(std::slice::from_ref(&topic), Default::default())
            .await
            .unwrap();
        assert_eq!(value(&now).as_deref(), Some("1800000"));
    }

    // ------------------------------------------------------ list offsets
    produce(&admin, &t1, 0, 3).await;
    let p0 = TopicPartition::new(&t1, 0);
    let p1 = TopicPartition::new(&t1, 1);
    let specs = BTreeMap::from([
        (p0.clone(), OffsetSpec::Earliest),
        (p1.clone(), OffsetSpec::Latest),
    ]);
    let offsets = admin
        .list_offsets(&specs, Default::default())
        .await
        .unwrap();
    assert_eq!(offsets[&p0].as_ref().unwrap().offset, 0);
    assert_eq!(offsets[&p1].as_ref().unwrap().offset, 0, "empty partition");
    let latest = |spec| BTreeMap::from([(p0.clone(), spec)]);
    let offsets = admin
        .list_offsets(&latest(OffsetSpec::Latest), ListOffsetsOptions::default())
        .await
        .unwrap();
    let got = offsets[&p0].as_ref().unwrap().offset;
    match gap(&cluster, Capability::ListOffsetsLatest) {
        Some(reason) => {
            println!("{who}: list_offsets(latest) = {got} (Kafka: 3); known gap: {reason}");
            gaps_seen.push(Capability::ListOffsetsLatest);
        }
        None => assert_eq!(got, 3, "{who}: latest"),
    }
    let by_time = admin
        .list_offsets(
            &latest(OffsetSpec::Timestamp(BASE_TS + 1500)),
            Default::default(),
        )
        .await
        .unwrap();
    let got = by_time[&p0].as_ref().unwrap();
    match gap(&cluster, Capability::ListOffsetsByTimestamp) {
        Some(reason) => {
            println!("{who}: list_offsets(ts) = {got:?} (Kafka: offset 2); known gap: {reason}");
            gaps_seen.push(Capability::ListOffsetsByTimestamp);
        }
        None => {
            assert_eq!(got.offset, 2, "{who}: by timestamp");
            assert_eq!(got.timestamp, Some(BASE_TS + 2000));
        }
    }
    let short = |ms| ListOffsetsOptions {
        timeout: Some(Duration::from_millis(ms)),
        ..Default::default()
    };
    if let Some(reason) = gap(&cluster, Capability::ListOffsetsMaxTimestamp) {
        let max = admin
            .list_offsets(&latest(OffsetSpec::MaxTimestamp), short(1000))
            .await
            .unwrap();
        let err = max[&p0].as_ref().unwrap_err();
        match err {
            Error::Timeout {
                last: Some(last), ..
            } => assert!(matches!(**last, Error::Disconnected { .. }), "{err}"),
            other => panic!("{who}: max timestamp: {other}"),
        }
        println!("{who}: list_offsets(max timestamp) fails as expected with `{err}`: {reason}");
        gaps_seen.push(Capability::ListOffsetsMaxTimestamp);
    } else {
        let max = admin
            .list_offsets(&latest(OffsetSpec::MaxTimestamp), Default::default())
            .await
            .unwrap();
        match &max[&p0] {
            Ok(got) => {
                assert_eq!(got.offset, 2, "{who}: max timestamp");
                assert_eq!(got.timestamp, Some(BASE_TS + 2000));
            }
            // Brokers before ListOffsets v7 (Kafka < 3.0) cannot be asked.
            Err(e) => {
                assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e}");
                println!("{who}: list_offsets(max timestamp) unsupported: {e}");
            }
        }
    }
    let nowhere = BTreeMap::from([(TopicPartition::new(&t1, 99), OffsetSpec::Earliest)]);
    let offsets = admin.list_offsets(&nowhere, short(500)).await.unwrap();
    let err = offsets.values().next().unwrap().as_ref().unwrap_err();
    match err {
        Error::Timeout {
            last: Some(last), ..
        } => {
            assert_eq!(
                code(last),
                Some(ErrorCode::UnknownTopicOrPartition),
                "{err}"
            )
        }
        other => panic!("{who}: partition 99: {other}"),
    }

    // ---------------------------------------------------- delete records
    let before = BTreeMap::from([(p0.clone(), 1)]);
    let short = DeleteRecordsOptions {
        timeout: Some(Duration::from_secs(2)),
    };
    let deleted = admin.delete_records(&before, short).await;
    if let Some(reason) = gap(&cluster, Capability::DeleteRecords) {
        let result = deleted.map(|mut r| r.remove(&p0).unwrap());
        assert!(
            result.is_err() || result.as_ref().unwrap().is_err(),
            "{result:?}"
        );
        println!("{who}: delete_records fails as expected with {result:?}: {reason}");
        gaps_seen.push(Capability::DeleteRecords);
    } else {
        let deleted = deleted.unwrap();
        assert_eq!(deleted[&p0].as_ref().unwrap().low_watermark, 1);
        let offsets = admin
            .list_offsets(&latest(OffsetSpec::Earliest), Default::default())
            .await
            .unwrap();
        assert_eq!(offsets[&p0].as_ref().unwrap().offset, 1);
        let too_far = BTreeMap::from([(p0.clone(), 100)]);
        let r = admin
            .delete_records(&too_far, Default::default())
            .await
            .unwrap();
        let err = r[&p0].as_ref().unwrap_err();
        assert_eq!(code(err), Some(ErrorCode::OffsetOutOfRange), "{err}");
    }

    // --------------------------------------------------------- log dirs
    let dirs = admin
        .describe_log_dirs(&broker_ids, Default::default())
        .await
        .unwrap();
    for (broker, result) in &dirs {
        match result {
            Ok(dirs) => {
                println!("{who}: broker {broker}: {} log dirs", dirs.len());
                for (path, dir) in dirs {
                    assert!(dir.error.is_none(), "{path}: {:?}", dir.error);
                    if let Some(replica) = dir.replicas.get(&p0) {
                        println!("{who}:   {path}: {p0} is {} bytes", replica.size);
                    }
                }
            }
            Err(e) => match gap(&cluster, Capability::DescribeLogDirs) {
                Some(reason) => {
                    assert!(
                        matches!(
                            e,
                            Error::UnsupportedVersion {
                                api: ApiKey::DescribeLogDirs,
                                ..
                            }
                        ),
                        "{e}"
                    );
                    println!("{who}: describe_log_dirs fails as expected with `{e}`: {reason}");
                    gaps_seen.push(Capability::DescribeLogDirs);
                }
                None => panic!("{who}: describe_log_dirs(broker {broker}) failed: {e}"),
            },
        }
    }

    // ---------------------------------------------------- delete topics
    let deleted = admin
        .delete_topics(&[t1.as_str(), missing.as_str()], Default::default())
        .await
        .unwrap();
    deleted[&t1].as_ref().expect("delete t1");
    let err = deleted[&missing].as_ref().unwrap_err();
    assert_eq!(code(err), Some(ErrorCode::UnknownTopicOrPartition), "{err}");
    match t2_id {
        Some(id) => {
            let by_id = admin.delete_topics_by_id(&[id], Default::default()).await;
            match by_id {
                Ok(r) => {
                    r[&id].as_ref().expect("delete t2 by id");
                }
                Err(e) => {
                    assert!(matches!(e, Error::UnsupportedVersion { .. }), "{e}");
                    println!("{who}: delete_topics_by_id unsupported ({e}); deleting by name");
                    admin
                        .delete_topics(&[&t2], Default::default())
                        .await
                        .unwrap()[&t2]
                        .as_ref()
                        .expect("delete t2");
                }
            }
        }
        None => {
            println!("{who}: create_topics reported no topic id; deleting {t2} by name");
            admin
                .delete_topics(&[&t2], Default::default())
                .await
                .unwrap()[&t2]
                .as_ref()
                .expect("delete t2");
        }
    }
    let listed = admin
        .list_topics(ListTopicsOptions::default())
        .await
        .unwrap();
    assert!(
        !listed.contains_key(&t1) && !listed.contains_key(&t2),
        "{listed:?}"
    );

    println!(
        "{who}: admin_topics passed in {:?}; known gaps exercised: {gaps_seen:?}",
        started.elapsed()
    );
}

/// Runs the suite on `kind` when it is selected (or once on the external
/// cluster, under the first selected kind).
async fn suite(kind: BrokerKind) {
    let kinds = test_broker_kinds();
    if !kinds.contains(&kind) {
        println!("{kind}: not selected by FERROKAFKA_TEST_BROKERS");
        return;
    }
    let external = std::env::var("KAFKA_BOOTSTRAP_SERVERS").is_ok_and(|v| !v.trim().is_empty());
    if external && kinds.first() != Some(&kind) {
        println!(
            "{kind}: the external cluster is tested under {:?}",
            kinds.first()
        );
        return;
    }
    let cluster = TestCluster::from_env_or_start(kind).unwrap();
    run(cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_on_tansu() {
    suite(BrokerKind::Tansu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_on_noida() {
    suite(BrokerKind::Noida).await;
}
