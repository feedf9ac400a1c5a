//! Tests of the real-broker harness itself: every local broker kind chosen by
//! `FERROKAFKA_TEST_BROKERS` (default: all) is started, probed, restarted and
//! stopped. The brokers are installed by `scripts/brokers.sh` on first use.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use ferrokafka::protocol::messages::create_topics_request::CreatableTopic;
use ferrokafka::protocol::messages::metadata_request::MetadataRequestTopic;
use ferrokafka::protocol::messages::{
    ApiVersionsResponse, CreateTopicsRequest, MetadataRequest, MetadataResponse,
};
use ferrokafka::protocol::ApiKey;
use ferrokafka::testkit::{
    test_broker_kinds, BlockingClient, BrokerKind, Capability, TestBroker, TestCluster,
    TestkitError,
};

const TIMEOUT: Duration = Duration::from_secs(10);

fn api_versions(bootstrap: &str) -> ApiVersionsResponse {
    let mut client = BlockingClient::connect(bootstrap, TIMEOUT).unwrap();
    let versions = client.api_versions().unwrap();
    assert_eq!(versions.error_code, 0, "{versions:?}");
    versions
}

fn metadata(bootstrap: &str, topics: Option<Vec<String>>) -> MetadataResponse {
    let mut client = BlockingClient::connect(bootstrap, TIMEOUT).unwrap();
    let versions = client.api_versions().unwrap();
    let version = BlockingClient::common_version(&versions, ApiKey::Metadata)
        .expect("broker and crate share a Metadata version");
    let request = MetadataRequest {
        topics: topics.map(|names| {
            names
                .into_iter()
                .map(|name| MetadataRequestTopic {
                    name: Some(name),
                    ..Default::default()
                })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    client.send(version, &request).unwrap()
}

fn create_topic(bootstrap: &str, name: &str) {
    let mut client = BlockingClient::connect(bootstrap, TIMEOUT).unwrap();
    let versions = client.api_versions().unwrap();
    let version = BlockingClient::common_version(&versions, ApiKey::CreateTopics)
        .expect("broker and crate share a CreateTopics version");
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.to_owned(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let response = client.send(version, &request).unwrap();
    assert_eq!(response.topics.len(), 1, "{response:?}");
    assert_eq!(response.topics[0].error_code, 0, "{response:?}");
}

fn topic_exists(bootstrap: &str, name: &str) -> bool {
    let response = metadata(bootstrap, Some(vec![name.to_owned()]));
    response
        .topics
        .iter()
        .any(|t| t.name.as_deref() == Some(name) && t.error_code == 0)
}

fn accepts_connections(addr: std::net::SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

fn pid_alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

#[test]
fn each_broker_answers_api_versions_and_metadata() {
    for kind in test_broker_kinds() {
        let started = Instant::now();
        let broker = TestBroker::start(kind).unwrap();
        eprintln!(
            "{kind}: ready in {:?} at {}",
            started.elapsed(),
            broker.bootstrap_servers()
        );
        assert_eq!(broker.kind(), kind);
        assert_eq!(
            broker.bootstrap_servers(),
            format!("127.0.0.1:{}", broker.port())
        );

        let versions = api_versions(&broker.bootstrap_servers());
        for api in [
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::Metadata,
            ApiKey::ApiVersions,
        ] {
            assert!(
                versions.api_keys.iter().any(|k| k.api_key == api.key()),
                "{kind} does not list {api:?}: {versions:?}"
            );
        }

        // The broker advertises the address it was started on.
        let response = metadata(&broker.bootstrap_servers(), None);
        assert!(
            response
                .brokers
                .iter()
                .any(|b| b.host == "127.0.0.1" && b.port == i32::from(broker.port())),
            "{kind} advertises {:?}",
            response.brokers
        );
    }
}

#[test]
fn restart_keeps_the_port_and_data_as_documented() {
    for kind in test_broker_kinds() {
        let mut broker = TestBroker::start(kind).unwrap();
        let port = broker.port();
        let first_pid = broker.pid().unwrap();
        let topic = format!("testkit-restart-{}", kind.name());
        create_topic(&broker.bootstrap_servers(), &topic);
        assert!(topic_exists(&broker.bootstrap_servers(), &topic));

        let started = Instant::now();
        broker.restart().unwrap();
        eprintln!("{kind}: restarted in {:?}", started.elapsed());
        assert_eq!(broker.port(), port);
        assert_ne!(broker.pid().unwrap(), first_pid);
        assert!(
            !pid_alive(first_pid),
            "{kind}: old process {first_pid} still alive"
        );
        api_versions(&broker.bootstrap_servers());
        assert_eq!(
            topic_exists(&broker.bootstrap_servers(), &topic),
            kind.keeps_data_across_restart(),
            "{kind}: topic after restart"
        );
        assert_eq!(
            kind.supports(Capability::DataSurvivesRestart),
            kind.keeps_data_across_restart()
        );

        // Stop, then restart from the stopped state.
        broker.stop().unwrap();
        assert!(broker.pid().is_none());
        assert!(!broker.is_running());
        assert!(
            !accepts_connections(broker.addr()),
            "{kind}: port still open after stop"
        );
        broker.restart().unwrap();
        assert!(broker.is_running());
        api_versions(&broker.bootstrap_servers());
    }
}

#[test]
fn two_brokers_run_at_once() {
    let kinds = test_broker_kinds();
    // One of each chosen kind; two of the same when only one kind is chosen.
    let pair = match kinds.as_slice() {
        [] => return eprintln!("skipped: FERROKAFKA_TEST_BROKERS=none"),
        [only] => [*only, *only],
        [a, b, ..] => [*a, *b],
    };
    let first = TestBroker::start(pair[0]).unwrap();
    let second = TestBroker::start(pair[1]).unwrap();
    assert_ne!(first.port(), second.port());
    assert_ne!(first.dir(), second.dir());
    for broker in [&first, &second] {
        api_versions(&broker.bootstrap_servers());
    }
}

#[test]
fn drop_stops_the_process_and_removes_its_directory() {
    for kind in test_broker_kinds() {
        let broker = TestBroker::start(kind).unwrap();
        let pid = broker.pid().unwrap();
        let dir = broker.dir().to_owned();
        let addr = broker.addr();
        assert!(pid_alive(pid));
        assert!(dir.is_dir());
        drop(broker);
        assert!(!pid_alive(pid), "{kind}: process {pid} outlived drop");
        assert!(!dir.exists(), "{kind}: {} left behind", dir.display());
        assert!(!accepts_connections(addr));
    }
}

#[test]
fn explicit_bootstrap_uses_the_external_cluster() {
    let Some(&kind) = test_broker_kinds().first() else {
        return eprintln!("skipped: FERROKAFKA_TEST_BROKERS=none");
    };
    let broker = TestBroker::start(kind).unwrap();
    let mut external =
        TestCluster::from_bootstrap_or_start(Some(&broker.bootstrap_servers()), kind).unwrap();
    assert!(external.is_external());
    assert_eq!(external.kind(), None);
    assert_eq!(external.bootstrap_servers(), broker.bootstrap_servers());
    assert!(external.skip_reason(Capability::CreatePartitions).is_none());
    let mut client = external.connect(TIMEOUT).unwrap();
    assert_eq!(client.api_versions().unwrap().error_code, 0);
    assert!(matches!(
        external.stop(),
        Err(TestkitError::ExternalCluster { action: "stop", .. })
    ));
    assert!(matches!(
        external.restart(),
        Err(TestkitError::ExternalCluster {
            action: "restart",
            ..
        })
    ));
    // Neither touched the broker behind it.
    api_versions(&broker.bootstrap_servers());

    // Without a bootstrap value a local broker is started.
    let mut local = TestCluster::from_bootstrap_or_start(None, kind).unwrap();
    assert!(!local.is_external());
    assert_eq!(local.kind(), Some(kind));
    assert_ne!(local.bootstrap_servers(), broker.bootstrap_servers());
    assert_eq!(
        local.skip_reason(Capability::CreatePartitions),
        kind.skip_reason(Capability::CreatePartitions)
    );
    local.restart().unwrap();
    api_versions(&local.bootstrap_servers());
}

#[test]
fn start_failure_reports_the_broker_output() {
    // A binary that exits at once stands in for a broken broker.
    let dir = std::env::temp_dir().join(format!("ferrokafka-testkit-fake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("fake-broker");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'fake broker: cannot start' >&2\nexit 3\n",
    )
    .unwrap();
    let status = Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    assert!(status.success());
    let result = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "fake_broker_child", "--ignored", "--nocapture"])
        .env("FERROKAFKA_TANSU_BIN", &fake)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{stdout}");
    assert!(stdout.contains("START ERROR:"), "{stdout}");
    assert!(stdout.contains("fake broker: cannot start"), "{stdout}");
    assert!(stdout.contains("exited before it was ready"), "{stdout}");
}

/// Run by `start_failure_reports_the_broker_output` in a child process, with
/// `FERROKAFKA_TANSU_BIN` pointing at a fake broker.
#[test]
#[ignore = "helper: run in a child process by start_failure_reports_the_broker_output"]
fn fake_broker_child() {
    let err = TestBroker::start(BrokerKind::Tansu).unwrap_err();
    println!("START ERROR: {err}");
}

#[test]
fn broker_dies_with_the_test_process() {
    let Some(&kind) = test_broker_kinds().first() else {
        return eprintln!("skipped: FERROKAFKA_TEST_BROKERS=none");
    };
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "abandoning_child", "--ignored", "--nocapture"])
        .env("FERROKAFKA_TEST_BROKERS", kind.name())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BROKER "))
        .unwrap_or_else(|| panic!("child printed no broker: {stdout}"));
    let mut parts = line.split_whitespace();
    let pid: u32 = parts.next().unwrap().parse().unwrap();
    let addr: std::net::SocketAddr = parts.next().unwrap().parse().unwrap();
    let dir = std::path::PathBuf::from(parts.collect::<Vec<_>>().join(" "));
    // The child exited without dropping the broker: the lifeline must end it.
    assert!(
        wait_until(Duration::from_secs(15), || !pid_alive(pid)),
        "{kind} broker {pid} outlived its test process"
    );
    assert!(!accepts_connections(addr));
    // Nothing dropped the broker, so its directory is ours to remove.
    assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Run by `broker_dies_with_the_test_process` in a child process: starts a
/// broker and exits without dropping it.
#[test]
#[ignore = "helper: run in a child process by broker_dies_with_the_test_process"]
fn abandoning_child() {
    let kind = test_broker_kinds()[0];
    let broker = TestBroker::start(kind).unwrap();
    println!(
        "BROKER {} {} {}",
        broker.pid().unwrap(),
        broker.addr(),
        broker.dir().display()
    );
    std::process::exit(0);
}
