//! The testkit's fault-injecting proxy against a real Tansu broker that
//! advertises the proxy: cutting connections, black-holing traffic and
//! delaying it, seen by the admin client and by the testkit's blocking client.

use std::time::{Duration, Instant};

use ferrokafka::admin::{Admin, DescribeClusterOptions};
use ferrokafka::network::ClientConfig;
use ferrokafka::protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use ferrokafka::testkit::fault_proxy::FaultProxy;
use ferrokafka::testkit::{
    test_broker_kinds, BlockingClient, BrokerKind, TestBroker, TestkitError,
};

/// A Tansu broker behind a fault proxy, or `None` when this run excludes Tansu.
fn tansu_behind_proxy() -> Option<(TestBroker, FaultProxy)> {
    if !test_broker_kinds().contains(&BrokerKind::Tansu) {
        eprintln!("skipped: FERROKAFKA_TEST_BROKERS excludes tansu");
        return None;
    }
    Some(FaultProxy::start_with_broker(BrokerKind::Tansu).unwrap())
}

async fn admin_through(proxy: &FaultProxy) -> Admin {
    let config = ClientConfig::builder()
        .bootstrap_servers([proxy.bootstrap_servers()])
        .client_id("ferrokafka-fault-proxy-test")
        .default_api_timeout(Duration::from_secs(20))
        .reconnect_backoff(Duration::from_millis(20))
        .reconnect_backoff_max(Duration::from_millis(200))
        .build()
        .unwrap();
    Admin::connect(config).await.unwrap()
}

/// One ApiVersions v0 round trip on this very connection (unlike
/// `BlockingClient::api_versions`, which reconnects and retries on failure).
fn round_trip(probe: &mut BlockingClient) -> Result<ApiVersionsResponse, TestkitError> {
    probe.send(0, &ApiVersionsRequest::default())
}

fn describe_within(timeout: Duration) -> DescribeClusterOptions {
    DescribeClusterOptions {
        timeout: Some(timeout),
        ..Default::default()
    }
}

/// Waits (up to 10 s) until `condition` holds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_advertises_the_proxy_so_every_connection_goes_through_it() {
    let Some((broker, proxy)) = tansu_behind_proxy() else {
        return;
    };
    assert_eq!(proxy.upstream(), broker.addr());
    let admin = admin_through(&proxy).await;
    let cluster = admin.describe_cluster(Default::default()).await.unwrap();
    assert!(!cluster.brokers.is_empty());
    for described in &cluster.brokers {
        assert_eq!(
            (described.host.as_str(), described.port),
            ("127.0.0.1", i32::from(proxy.port())),
            "metadata must send clients to the proxy"
        );
    }
    assert!(proxy.accepted_connections() >= 1);
    assert!(proxy.open_connections() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_all_closes_every_connection_and_the_client_reconnects() {
    let Some((_broker, proxy)) = tansu_behind_proxy() else {
        return;
    };
    let admin = admin_through(&proxy).await;
    admin.describe_cluster(Default::default()).await.unwrap();
    let mut probe = BlockingClient::connect(&proxy.bootstrap_servers(), Duration::from_secs(5))
        .expect("connect through the proxy");
    round_trip(&mut probe).expect("a request through the proxy");
    eventually("both connections are open", || {
        proxy.open_connections() >= 2
    })
    .await;
    let accepted = proxy.accepted_connections();

    let cut = proxy.cut_all();
    assert!(cut >= 2, "{cut} connections cut");
    eventually("no connection is left open", || {
        proxy.open_connections() == 0
    })
    .await;
    // The probe's socket was closed under it.
    assert!(
        round_trip(&mut probe).is_err(),
        "a cut connection still answered"
    );

    // The admin client reconnects through the proxy and carries on.
    admin.describe_cluster(Default::default()).await.unwrap();
    assert!(proxy.accepted_connections() > accepted);
    let mut fresh = BlockingClient::connect(&proxy.bootstrap_servers(), Duration::from_secs(5))
        .expect("a new connection after the cut");
    round_trip(&mut fresh).expect("new connections are relayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_black_holes_traffic_until_resumed() {
    let Some((_broker, proxy)) = tansu_behind_proxy() else {
        return;
    };
    let admin = admin_through(&proxy).await;
    admin.describe_cluster(Default::default()).await.unwrap();

    proxy.pause();
    assert!(proxy.is_paused());
    // An open connection gets no answer ...
    let error = admin
        .describe_cluster(describe_within(Duration::from_millis(700)))
        .await
        .expect_err("a paused proxy answered");
    println!("while paused: {error}");
    // ... and a new one is accepted but not answered either.
    let accepted = proxy.accepted_connections();
    let mut probe = BlockingClient::connect(&proxy.bootstrap_servers(), Duration::from_millis(500))
        .expect("a paused proxy still accepts connections");
    assert!(
        matches!(round_trip(&mut probe), Err(TestkitError::Request { .. })),
        "a paused proxy relayed a request"
    );
    assert_eq!(proxy.accepted_connections(), accepted + 1);

    // A request sent while paused completes once traffic resumes.
    let paused_at = Instant::now();
    let pending = tokio::spawn({
        let admin = admin.clone();
        async move {
            admin
                .describe_cluster(describe_within(Duration::from_secs(20)))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!pending.is_finished(), "answered while paused");
    proxy.resume();
    assert!(!proxy.is_paused());
    pending.await.unwrap().expect("answered after resume");
    assert!(paused_at.elapsed() >= Duration::from_millis(800));
    admin.describe_cluster(Default::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_adds_latency_each_way_until_cleared() {
    let Some((_broker, proxy)) = tansu_behind_proxy() else {
        return;
    };
    let mut probe = BlockingClient::connect(&proxy.bootstrap_servers(), Duration::from_secs(10))
        .expect("connect through the proxy");
    round_trip(&mut probe).unwrap();

    let delay = Duration::from_millis(250);
    proxy.set_delay(delay);
    assert_eq!(proxy.delay(), delay);
    let started = Instant::now();
    round_trip(&mut probe).expect("a delayed request is still answered");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= 2 * delay,
        "round trip {elapsed:?} is shorter than the delay each way"
    );
    // The admin client gets its answers too, just later.
    let admin = admin_through(&proxy).await;
    admin.describe_cluster(Default::default()).await.unwrap();

    proxy.set_delay(Duration::ZERO);
    assert_eq!(proxy.delay(), Duration::ZERO);
    round_trip(&mut probe).expect("answered after the delay is cleared");
}

#[test]
fn noida_cannot_advertise_the_proxy() {
    // noida-db 0.2 has no advertised-listener option: a proxy in front of it
    // would only see the bootstrap connection. Assert the gap.
    let error = FaultProxy::start_with_broker(BrokerKind::Noida).expect_err("noida advertised");
    assert!(
        matches!(
            error,
            TestkitError::Unsupported {
                kind: BrokerKind::Noida,
                ..
            }
        ),
        "{error}"
    );
}
