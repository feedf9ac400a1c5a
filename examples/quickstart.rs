//! Quickstart: starts a local Kafka-compatible broker (Tansu, on 127.0.0.1)
//! unless `KAFKA_BOOTSTRAP_SERVERS` names a cluster, then, with the admin
//! client, describes the cluster and creates a topic; produces compressed
//! batches to every partition and consumes them back (with protocol-level
//! Produce and Fetch requests: the producer and consumer APIs come next);
//! lists offsets and groups; and deletes the topic.
//!
//! Run it with `scripts/quickstart.sh` (which installs the broker first), or
//! `cargo run --features testkit --example quickstart`.

use ferrokafka::network::RequestOptions;
use std::collections::BTreeMap;
use std::time::Duration;

use ferrokafka::admin::{Admin, NewTopic, OffsetSpec, TopicPartition};
use ferrokafka::network::ClientConfig;
use ferrokafka::protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use ferrokafka::protocol::messages::{FetchRequest, ProduceRequest};
use ferrokafka::protocol::ErrorCode;
use ferrokafka::records::{Compression, RecordBatchBuilder, RecordStream};
use ferrokafka::testkit::{BrokerKind, TestCluster};

const TOPIC: &str = "ferrokafka-quickstart";
const PARTITIONS: i32 = 3;
const RECORDS_PER_PARTITION: usize = 5;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let local = TestCluster::from_env_or_start(BrokerKind::Tansu)?;
    let bootstrap = local.bootstrap_servers();
    println!(
        "broker: {bootstrap}{}",
        if local.is_external() {
            " (external)"
        } else {
            " (local Tansu)"
        }
    );

    let config = ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .client_id("ferrokafka-quickstart")
        .default_api_timeout(Duration::from_secs(15))
        .build()?;
    let admin = Admin::connect(config).await?;
    let cluster = admin.cluster().clone();

    // Administer: describe the cluster, create the topic, describe it.
    let description = admin.describe_cluster(Default::default()).await?;
    println!(
        "cluster {:?}: controller {:?}, {} broker(s)",
        description.cluster_id,
        description.controller.as_ref().map(|b| b.node_id),
        description.brokers.len()
    );
    let created = admin
        .create_topics(&[NewTopic::new(TOPIC, PARTITIONS, 1)], Default::default())
        .await?;
    let created = created[TOPIC]
        .as_ref()
        .map_err(|e| format!("create {TOPIC}: {e}"))?;
    println!("created topic {TOPIC} (id {:?})", created.topic_id);
    let described = admin.describe_topics(&[TOPIC], Default::default()).await?;
    let topic = described[TOPIC]
        .as_ref()
        .map_err(|e| format!("describe {TOPIC}: {e}"))?
        .clone();
    for p in &topic.partitions {
        println!(
            "  partition {}: leader {:?}, replicas {:?}",
            p.partition, p.leader, p.replicas
        );
    }
    let topic_id = topic.topic_id.unwrap_or_default();

    // Produce: one lz4-compressed batch per partition, acks=all, to each leader.
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let mut batch = RecordBatchBuilder::new(Compression::Lz4);
        for i in 0..RECORDS_PER_PARTITION {
            let value = format!("hello #{i} from partition {partition}");
            batch.append(
                1_700_000_000_000 + i as i64,
                Some(format!("key-{i}").as_bytes()),
                Some(value.as_bytes()),
                &[("source", Some(b"quickstart"))],
            )?;
            sent.entry(partition).or_default().push(value);
        }
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TOPIC.into())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(batch.finish()?))])]);
        let leader = cluster.leader_for(TOPIC, partition).await?;
        let response = cluster
            .send_to_broker(leader.node_id, &request, RequestOptions::default())
            .await?;
        let answer = &response.responses[0].partition_responses[0];
        println!(
            "produced {RECORDS_PER_PARTITION} records to {TOPIC}/{partition} at base offset {}: {}",
            answer.base_offset,
            ErrorCode::from_code(answer.error_code)
        );
    }

    // Consume: fetch every partition from its leader and decode the batches.
    for partition in 0..PARTITIONS {
        let leader = cluster.leader_for(TOPIC, partition).await?;
        let request = FetchRequest::default()
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TOPIC.into())
                .with_topic_id(topic_id)
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]);
        let response = cluster
            .send_to_broker(leader.node_id, &request, RequestOptions::default())
            .await?;
        let data = &response.responses[0].partitions[0];
        let records = data.records.clone().unwrap_or_default();
        let mut values = Vec::new();
        for record in RecordStream::new(records) {
            let record = record?;
            let value =
                String::from_utf8_lossy(record.value.as_deref().unwrap_or_default()).into_owned();
            println!("consumed {TOPIC}/{partition}@{}: {value}", record.offset);
            values.push(value);
        }
        if values != sent[&partition] {
            return Err(format!(
                "partition {partition}: consumed {values:?}, produced {:?}",
                sent[&partition]
            )
            .into());
        }
    }

    // Administer: offsets, groups, and delete the topic again.
    let earliest: BTreeMap<TopicPartition, OffsetSpec> = (0..PARTITIONS)
        .map(|p| (TopicPartition::new(TOPIC, p), OffsetSpec::Earliest))
        .collect();
    for (tp, offset) in admin.list_offsets(&earliest, Default::default()).await? {
        println!("earliest offset of {tp}: {:?}", offset.map(|o| o.offset));
    }
    let groups = admin.list_groups(Default::default()).await?;
    println!("{} consumer group(s)", groups.groups.len());
    let deleted = admin.delete_topics(&[TOPIC], Default::default()).await?;
    deleted[TOPIC]
        .as_ref()
        .map_err(|e| format!("delete {TOPIC}: {e}"))?;
    println!("deleted topic {TOPIC}");
    println!("quickstart finished: every produced record was consumed back");
    Ok(())
}
