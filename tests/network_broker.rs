//! Against a real broker, when `KAFKA_BOOTSTRAP_SERVERS` names one
//! (e.g. a local Tansu or Apache Kafka); skipped otherwise.

use std::time::Duration;

use ferrokafka::network::{ClientConfig, Cluster};
use ferrokafka::protocol::messages::{ApiVersionsRequest, MetadataRequest};
use ferrokafka::protocol::ApiKey;

#[tokio::test]
async fn metadata_and_api_versions_from_a_real_broker() {
    let Ok(servers) = std::env::var("KAFKA_BOOTSTRAP_SERVERS") else {
        println!("skipped: set KAFKA_BOOTSTRAP_SERVERS to run against a real broker");
        return;
    };
    let config = ClientConfig::builder()
        .bootstrap_servers(servers.split(','))
        .default_api_timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let cluster = Cluster::connect(config).await.unwrap();
    let metadata = cluster.metadata().await.unwrap();
    assert!(!metadata.brokers.is_empty());

    let conn = cluster.any_connection().await.unwrap();
    assert!(conn.negotiated_version(ApiKey::Metadata).is_some());
    let versions = conn.send(&ApiVersionsRequest::default()).await.unwrap();
    assert_eq!(versions.error_code, 0);
    // Many requests in flight on one connection.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let conn = conn.clone();
        tasks.spawn(async move {
            conn.send(&MetadataRequest::default().with_topics(Some(vec![])))
                .await
                .unwrap()
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert!(!done.unwrap().brokers.is_empty());
    }
}
