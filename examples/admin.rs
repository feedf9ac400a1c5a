//! A tour of the admin client: create a topic, describe it, change one of
//! its configs, list topics and consumer groups, delete the topic.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 cargo run --example admin
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrokafka::admin::{
    Admin, AlterConfigOp, ConfigResource, CreateTopicsOptions, ListTopicsOptions, NewTopic,
};
use ferrokafka::network::ClientConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    println!("connecting to {bootstrap}");
    let config = ClientConfig::builder()
        .bootstrap_servers(bootstrap.split(','))
        .default_api_timeout(Duration::from_secs(30))
        .build()?;
    let admin = Admin::connect(config).await?;

    let cluster = admin.describe_cluster(Default::default()).await?;
    println!(
        "cluster {:?}: controller {:?}, brokers {:?}",
        cluster.cluster_id,
        cluster.controller.as_ref().map(|b| b.node_id),
        cluster
            .brokers
            .iter()
            .map(|b| b.address())
            .collect::<Vec<_>>()
    );

    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let name = format!("ferrokafka-example-{secs}");
    println!("creating topic {name} (3 partitions, replication factor 1)");
    let created = admin
        .create_topics(
            &[NewTopic::new(&name, 3, 1).config("retention.ms", "3600000")],
            CreateTopicsOptions::default(),
        )
        .await?;
    let topic = created[&name].as_ref().map_err(|e| e.to_string())?;
    println!("  created: topic id {:?}", topic.topic_id);

    let described = admin.describe_topics(&[&name], Default::default()).await?;
    let description = described[&name].as_ref().map_err(|e| e.to_string())?;
    println!("describing {name}:");
    for p in &description.partitions {
        println!(
            "  partition {}: leader {:?}, replicas {:?}, isr {:?}",
            p.partition, p.leader, p.replicas, p.isr
        );
    }

    let resource = ConfigResource::topic(&name);
    println!("setting retention.ms=7200000 on {name} (incrementally)");
    let changes = BTreeMap::from([(
        resource.clone(),
        vec![AlterConfigOp::set("retention.ms", "7200000")],
    )]);
    let altered = admin
        .incremental_alter_configs(&changes, Default::default())
        .await?;
    altered[&resource].as_ref().map_err(|e| e.to_string())?;
    let configs = admin
        .describe_configs(std::slice::from_ref(&resource), Default::default())
        .await?;
    let config = configs[&resource].as_ref().map_err(|e| e.to_string())?;
    println!("  retention.ms is now {:?}", config.value("retention.ms"));

    let topics = admin.list_topics(ListTopicsOptions::default()).await?;
    println!(
        "{} topics: {:?}",
        topics.len(),
        topics.keys().collect::<Vec<_>>()
    );

    let groups = admin.list_groups(Default::default()).await?;
    println!(
        "{} groups: {:?}",
        groups.groups.len(),
        groups
            .groups
            .iter()
            .map(|g| (&g.group_id, &g.state))
            .collect::<Vec<_>>()
    );
    for (broker, error) in &groups.errors {
        println!("  broker {broker} could not list its groups: {error}");
    }

    println!("deleting {name}");
    let deleted = admin.delete_topics(&[&name], Default::default()).await?;
    deleted[&name].as_ref().map_err(|e| e.to_string())?;
    println!("  deleted");
    Ok(())
}
