//! Quickstart: starts a local Kafka-compatible broker (Tansu, on 127.0.0.1)
//! unless `KAFKA_BOOTSTRAP_SERVERS` names a cluster, then, with the admin
//! client, describes the cluster and creates a topic; produces lz4-compressed
//! records to every partition with the producer; reads them back with a
//! consumer in a consumer group and commits; shows the group and its
//! committed offsets with the admin client; and deletes the topic and group.
//!
//! Run it with `scripts/quickstart.sh` (which installs the broker first), or
//! `cargo run --features testkit --example quickstart`.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use ferrokafka::admin::{Admin, NewTopic, OffsetSpec, TopicPartition};
use ferrokafka::consumer::{AutoOffsetReset, Consumer, ConsumerConfig};
use ferrokafka::network::ClientConfig;
use ferrokafka::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
use ferrokafka::records::Compression;
use ferrokafka::testkit::{BrokerKind, TestCluster};

const TOPIC: &str = "ferrokafka-quickstart";
const GROUP: &str = "ferrokafka-quickstart-group";
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
    let admin = Admin::connect(config.clone()).await?;

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

    // Produce with the producer: lz4 batches, acks=all, idempotent; every
    // record to an explicit partition so the consumer can check the order.
    let producer = Producer::new(
        config.clone(),
        ProducerConfig::builder()
            .acks(Acks::All)
            .compression(Compression::Lz4)
            .build()?,
    )
    .await?;
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let mut deliveries = Vec::new();
    for partition in 0..PARTITIONS {
        for i in 0..RECORDS_PER_PARTITION {
            let value = format!("hello #{i} from partition {partition}");
            let record = ProducerRecord::new(TOPIC, Bytes::from(value.clone()))
                .with_key(Bytes::from(format!("key-{i}")))
                .with_partition(partition)
                .with_header("source", Some(Bytes::from_static(b"quickstart")));
            // Awaiting `send` enqueues the record; the handle resolves when
            // the broker has acknowledged it.
            deliveries.push(producer.send(record).await?);
            sent.entry(partition).or_default().push(value);
        }
    }
    for delivery in deliveries {
        let metadata = delivery.await?;
        println!(
            "produced to {}/{} at offset {}",
            metadata.topic(),
            metadata.partition,
            metadata.offset
        );
    }
    producer.close(Duration::from_secs(10)).await?;

    // Consume in a consumer group: subscribe, let poll join the group (this
    // member gets every partition), read from the beginning (no committed
    // offsets yet), then commit what was consumed.
    let consumer = Consumer::new(
        config.clone(),
        ConsumerConfig::builder()
            .group_id(GROUP)
            .auto_offset_reset(AutoOffsetReset::Earliest)
            .enable_auto_commit(false)
            .session_timeout(Duration::from_secs(6))
            .heartbeat_interval(Duration::from_secs(1))
            .build()?,
    )
    .await?;
    consumer.subscribe([TOPIC])?;
    let mut consumed: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let total = PARTITIONS as usize * RECORDS_PER_PARTITION;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while consumed.values().map(Vec::len).sum::<usize>() < total {
        if tokio::time::Instant::now() > deadline {
            return Err(format!("consumed {consumed:?}, produced {sent:?}").into());
        }
        let batch = consumer.poll(100, Duration::from_millis(500)).await?;
        for record in batch.iter() {
            let value = String::from_utf8_lossy(record.value().unwrap_or_default()).into_owned();
            println!(
                "consumed {}/{}@{}: {value}",
                record.topic(),
                record.partition(),
                record.offset()
            );
            consumed.entry(record.partition()).or_default().push(value);
        }
    }
    let membership = consumer.group_state().expect("a group member");
    println!(
        "group {GROUP}: member {} in generation {}, assignor {:?}, partitions {:?}",
        membership.member_id,
        membership.generation,
        membership.protocol.as_deref().unwrap_or("?"),
        consumer.assignment()
    );
    consumer.commit().await?;
    println!("committed the consumed positions");
    if consumed != sent {
        return Err(format!("consumed {consumed:?}, produced {sent:?}").into());
    }

    // Administer: offsets, groups, and delete the topic again.
    let earliest: BTreeMap<TopicPartition, OffsetSpec> = (0..PARTITIONS)
        .map(|p| (TopicPartition::new(TOPIC, p), OffsetSpec::Earliest))
        .collect();
    for (tp, offset) in admin.list_offsets(&earliest, Default::default()).await? {
        println!("earliest offset of {tp}: {:?}", offset.map(|o| o.offset));
    }
    let groups = admin.list_groups(Default::default()).await?;
    for group in &groups.groups {
        println!(
            "group {} (protocol type {:?}, state {:?})",
            group.group_id, group.protocol_type, group.state
        );
    }
    if !groups.groups.iter().any(|g| g.group_id == GROUP) {
        return Err(format!("{GROUP} missing from ListGroups").into());
    }
    let described = admin
        .describe_consumer_groups(&[GROUP], Default::default())
        .await?;
    if let Some(Ok(group)) = described.get(GROUP) {
        println!(
            "described {GROUP}: state {:?}, assignor {:?}, {} member(s)",
            group.state,
            group.partition_assignor,
            group.members.len()
        );
    }
    let committed = admin
        .list_consumer_group_offsets(GROUP, None, Default::default())
        .await?;
    for (tp, offset) in &committed {
        let offset = offset
            .as_ref()
            .map_err(|e| format!("committed offset of {tp}: {e}"))?;
        println!(
            "committed offset of {tp}: {:?}",
            offset.as_ref().map(|o| o.offset)
        );
    }
    let expected = RECORDS_PER_PARTITION as i64;
    if committed.len() != PARTITIONS as usize
        || committed
            .values()
            .any(|o| !matches!(o, Ok(Some(o)) if o.offset == expected))
    {
        return Err(format!("committed offsets {committed:?}, expected {expected} each").into());
    }
    // Leave the group (LeaveGroup), then delete it.
    consumer.close().await;
    let deleted = admin
        .delete_consumer_groups(&[GROUP], Default::default())
        .await?;
    match &deleted[GROUP] {
        Ok(()) => println!("deleted group {GROUP}"),
        Err(e) => println!("deleting group {GROUP}: {e}"),
    }
    let deleted = admin.delete_topics(&[TOPIC], Default::default()).await?;
    deleted[TOPIC]
        .as_ref()
        .map_err(|e| format!("delete {TOPIC}: {e}"))?;
    println!("deleted topic {TOPIC}");
    println!(
        "quickstart finished: every produced record was consumed back in a group and committed"
    );
    Ok(())
}
