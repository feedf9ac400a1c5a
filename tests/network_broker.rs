//! The network layer against real brokers: Tansu and noida-db started by the
//! testkit on 127.0.0.1, or the cluster named by `KAFKA_BOOTSTRAP_SERVERS`.
//!
//! Covers version negotiation, pipelining, cancellation safety and
//! reconnection after a broker restart, for every broker in
//! `FERROKAFKA_TEST_BROKERS` (default: both).

use ferrokafka::network::RequestOptions;
use std::time::Duration;

use ferrokafka::network::{ClientConfig, Cluster};
use ferrokafka::protocol::messages::{ApiVersionsRequest, MetadataRequest};
use ferrokafka::protocol::ApiKey;
use ferrokafka::testkit::{test_broker_kinds, TestCluster};

/// ApiVersions v3+ requires a valid client software name and version (KIP-511).
fn api_versions() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name("ferrokafka-tests".into())
        .with_client_software_version("1.0".into())
}

fn config(servers: &str) -> ClientConfig {
    ClientConfig::builder()
        .bootstrap_servers(servers.split(','))
        .default_api_timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_negotiated_with_each_real_broker() {
    for kind in test_broker_kinds() {
        let cluster = TestCluster::from_env_or_start(kind).unwrap();
        let client = Cluster::connect(config(&cluster.bootstrap_servers()))
            .await
            .unwrap();
        let conn = client.any_connection().await.unwrap();
        let table = conn.api_versions().expect("ApiVersions ran on connect");
        let mut negotiated = 0;
        for &api in ApiKey::ALL {
            let ours = api.stable_versions();
            match (table.broker_range(api), conn.negotiated_version(api)) {
                (Some(theirs), Some(v)) => {
                    // The highest version both sides speak.
                    assert_eq!(v, ours.max.min(theirs.max), "{kind:?} {api:?}");
                    assert!(ours.contains(v) && theirs.contains(v));
                    negotiated += 1;
                }
                (Some(theirs), None) => {
                    assert!(
                        ours.intersect(&theirs).is_empty(),
                        "{kind:?} {api:?}: a common version exists"
                    );
                }
                (None, v) => assert_eq!(v, None, "{kind:?} {api:?}: the broker does not list it"),
            }
        }
        println!("{kind:?}: {negotiated} APIs negotiated");
        assert!(
            negotiated >= 10,
            "{kind:?}: only {negotiated} APIs in common"
        );
        let answer = conn.send(&api_versions()).await.unwrap();
        assert_eq!(answer.error_code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_and_cancelled_requests_leave_the_connection_usable() {
    for kind in test_broker_kinds() {
        let cluster = TestCluster::from_env_or_start(kind).unwrap();
        let client = Cluster::connect(config(&cluster.bootstrap_servers()))
            .await
            .unwrap();
        let conn = client.any_connection().await.unwrap();
        // Many requests in flight on one connection.
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let conn = conn.clone();
            tasks.spawn(async move {
                conn.send(&MetadataRequest::default().with_topics(Some(vec![])))
                    .await
            });
        }
        while let Some(done) = tasks.join_next().await {
            assert!(!done.unwrap().unwrap().brokers.is_empty());
        }
        // Drop request futures at many different points (before, while and
        // after the frame is written), interleaved with requests that finish.
        let mut cancelled = 0;
        for i in 0..200u64 {
            let request = MetadataRequest::default().with_topics(Some(vec![]));
            let finished = if i % 2 == 0 {
                // Cancel after a given number of polls: deterministic stages.
                let send = conn.send(&request);
                tokio::pin!(send);
                let mut polls_left = i % 7;
                loop {
                    tokio::select! {
                        biased;
                        answer = &mut send => break Some(answer),
                        _ = tokio::task::yield_now() => {
                            if polls_left == 0 {
                                break None;
                            }
                            polls_left -= 1;
                        }
                    }
                }
            } else {
                // Cancel after a given time: wherever the I/O happens to be.
                let cut = Duration::from_micros(i * 7 % 400);
                tokio::time::timeout(cut, conn.send(&request)).await.ok()
            };
            match finished {
                Some(answer) => assert!(!answer.unwrap().brokers.is_empty()),
                None => cancelled += 1,
            }
            if i % 10 == 0 {
                let answer = conn.send(&api_versions()).await.unwrap();
                assert_eq!(
                    answer.error_code, 0,
                    "{kind:?}: a later request got a wrong answer"
                );
            }
        }
        assert!(
            cancelled > 0,
            "{kind:?}: no request was cancelled; the test tests nothing"
        );
        assert!(!conn.is_closed());
        let answer = conn
            .send(&MetadataRequest::default().with_topics(Some(vec![])))
            .await
            .unwrap();
        assert!(!answer.brokers.is_empty());
        println!("{kind:?}: {cancelled} of 200 requests cancelled, connection still in sync");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_reconnects_after_a_broker_restart() {
    for kind in test_broker_kinds() {
        let mut cluster = TestCluster::from_env_or_start(kind).unwrap();
        if cluster.is_external() {
            println!("{kind:?}: restart test needs a local broker; KAFKA_BOOTSTRAP_SERVERS is set");
            continue;
        }
        let client = Cluster::connect(config(&cluster.bootstrap_servers()))
            .await
            .unwrap();
        let before = client.any_connection().await.unwrap();
        before.send(&api_versions()).await.unwrap();
        cluster.restart().unwrap();
        // The old connection is dead; the next call through the cluster client
        // must reconnect (retrying within its timeout) and succeed.
        let metadata = client
            .retry(
                "metadata after restart",
                Some(Duration::from_secs(20)),
                || async {
                    client
                        .send_to_any(
                            &MetadataRequest::default().with_topics(Some(vec![])),
                            RequestOptions::default(),
                        )
                        .await
                },
            )
            .await
            .unwrap();
        assert!(!metadata.brokers.is_empty(), "{kind:?}");
        let after = client.any_connection().await.unwrap();
        assert!(!after.is_closed());
        println!("{kind:?}: reconnected after restart");
    }
}
