//! TLS and SASL against a real broker: Tansu 0.6 started by the testkit with
//! `BrokerOptions` (TLS, required authentication, SCRAM users).
//!
//! What Tansu 0.6 cannot do is asserted here, not skipped:
//!
//! * it cannot serve TLS itself (`--cert` and `--key` are mutually exclusive
//!   flags), so TLS is terminated by the testkit's rustls proxy in front of
//!   the real broker; mutual TLS is the proxy's too;
//! * with `--authentication` it enables SCRAM-SHA-256 and SCRAM-SHA-512 but not
//!   PLAIN, so PLAIN is covered only by the in-process test double
//!   (`network::tests::sasl_exchanges_end_to_end`);
//! * no user can be created on it while it requires authentication, so SCRAM
//!   runs against it to the broker's refusal; successful logins are covered by
//!   the test double.
//!
//! These tests always start local brokers (an external cluster from
//! `KAFKA_BOOTSTRAP_SERVERS` has unknown security settings); they run unless
//! `FERROKAFKA_TEST_BROKERS` leaves Tansu out, and then say so.

use ferrokafka::network::RequestOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use ferrokafka::network::{
    BrokerConnection, ClientConfig, Cluster, Error, PemSource, SaslMechanism, SecurityProtocol,
    TlsConfig,
};
use ferrokafka::protocol::messages::{MetadataRequest, SaslHandshakeRequest};
use ferrokafka::testkit::{
    broker_binary, test_broker_kinds, BlockingClient, BrokerKind, BrokerOptions, TestBroker,
    TestkitError, TlsFiles,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

/// Whether the suite runs against Tansu; prints why not when it does not.
fn tansu_selected(test: &str) -> bool {
    let selected = test_broker_kinds().contains(&BrokerKind::Tansu);
    if !selected {
        println!("{test}: not run: FERROKAFKA_TEST_BROKERS does not include tansu");
    }
    selected
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "ferrokafka-security-{tag}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority that issues server and client certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses): (chain PEM, key PEM).
    fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("client"),
        );
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// Writes a server certificate for `names` and its key into `dir`.
    fn server_files(&self, dir: &TempDir, names: &[&str], client_ca: Option<&Ca>) -> TlsFiles {
        let (chain, key) = self.issue(names);
        TlsFiles {
            certificate_chain: dir.write("server.pem", &chain),
            private_key: dir.write("server.key", &key),
            client_ca: client_ca.map(|ca| dir.write("client-ca.pem", &ca.pem())),
        }
    }
}

// ---------------------------------------------------------------------------
// Client helpers
// ---------------------------------------------------------------------------

fn tls(ca: Option<PemSource>, verify_hostname: bool) -> TlsConfig {
    TlsConfig {
        ca,
        verify_hostname,
        ..TlsConfig::default()
    }
}

/// The `sasl.jaas.config` value of a SCRAM login as `user` with `password`.
fn scram_jaas_config(user: &str, password: &str) -> String {
    format!(
        r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";"#
    )
}

fn base_config(bootstrap: &str) -> ferrokafka::network::ClientConfigBuilder {
    ClientConfig::builder()
        .bootstrap_servers([bootstrap])
        .connection_setup_timeout(Duration::from_secs(10))
        .default_api_timeout(Duration::from_secs(15))
}

/// Bootstraps a cluster client, fetches metadata (which lists the broker at
/// the address clients were given) and sends Metadata on a pooled connection.
async fn metadata_works(config: ClientConfig, bootstrap: &str) {
    let cluster = Cluster::connect(config).await.unwrap();
    let metadata = cluster.refresh_metadata().await.unwrap();
    let addresses: Vec<String> = metadata.brokers.values().map(|b| b.address()).collect();
    assert_eq!(addresses, [bootstrap.to_owned()], "advertised brokers");
    let response = cluster
        .send_to_any(&MetadataRequest::default(), RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(response.brokers.len(), 1);
}

/// One connection attempt, returning the connection's own error.
async fn connect(bootstrap: &str, config: ClientConfig) -> Result<BrokerConnection, Error> {
    BrokerConnection::connect(bootstrap, Arc::new(config)).await
}

fn assert_tls_error(result: Result<BrokerConnection, Error>, what: &str) -> String {
    match result {
        Err(e @ Error::TlsHandshake { .. }) => {
            assert!(!e.is_retriable(), "{what}: TLS errors are not retriable");
            e.to_string()
        }
        Err(e) => panic!("{what}: expected Error::TlsHandshake, got {e:?}"),
        Ok(_) => panic!("{what}: connected"),
    }
}

/// Asserts a typed SASL failure for `mechanism` that does not reveal `password`.
fn assert_auth_error(result: Result<BrokerConnection, Error>, mechanism: &str, password: &str) {
    // A wrong password and an unknown user look the same to a SCRAM client.
    match result {
        Err(e @ Error::SaslAuthentication { .. }) => {
            let Error::SaslAuthentication { mechanism: m, .. } = &e else {
                unreachable!()
            };
            assert_eq!(m, mechanism);
            assert!(!e.is_retriable());
            let display = e.to_string();
            let debug = format!("{e:?}");
            assert!(
                !display.contains(password),
                "password in Display: {display}"
            );
            assert!(!debug.contains(password), "password in Debug: {debug}");
            println!("{mechanism} refused: {display}");
        }
        Err(e) => panic!("{mechanism}: expected Error::SaslAuthentication, got {e:?}"),
        Ok(_) => panic!("{mechanism}: authenticated with a wrong password"),
    }
}

// ---------------------------------------------------------------------------
// What Tansu itself supports
// ---------------------------------------------------------------------------

#[test]
fn tansu_cannot_serve_tls_itself() {
    if !tansu_selected("tansu_cannot_serve_tls_itself") {
        return;
    }
    // Tansu builds its TLS configuration only from --cert together with --key,
    // but declares the two flags mutually exclusive. If a later Tansu accepts
    // both, this fails: then the testkit's proxy can give way to Tansu's TLS.
    let output = Command::new(broker_binary(BrokerKind::Tansu).unwrap())
        .args([
            "broker",
            "--listener-url",
            "tcp://127.0.0.1:1",
            "--cert",
            "/nonexistent/cert.pem",
            "--key",
            "/nonexistent/key.pem",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot be used with"),
        "unexpected answer: {stderr}"
    );
    println!(
        "Tansu 0.6 refuses --cert with --key ({}), so TLS is tested through the testkit's proxy",
        stderr.lines().next().unwrap_or_default()
    );
}

#[test]
fn tansu_enables_scram_but_not_plain() {
    if !tansu_selected("tansu_enables_scram_but_not_plain") {
        return;
    }
    let broker = TestBroker::start_with(
        BrokerKind::Tansu,
        BrokerOptions::default().authentication(true),
    )
    .unwrap();
    let handshake = |mechanism: &str| {
        let mut client =
            BlockingClient::connect(&broker.bootstrap_servers(), Duration::from_secs(5)).unwrap();
        client.send(
            1,
            &SaslHandshakeRequest::default().with_mechanism(mechanism.to_owned()),
        )
    };
    for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let answer = handshake(mechanism).unwrap();
        assert_eq!(answer.error_code, 0, "{mechanism}");
        // Tansu answers with the mechanism asked for, not the enabled list.
        assert_eq!(answer.mechanisms, [mechanism.to_owned()]);
    }
    // PLAIN: Tansu closes the connection instead of answering
    // UNSUPPORTED_SASL_MECHANISM with its list.
    let plain = handshake("PLAIN");
    assert!(
        matches!(plain, Err(TestkitError::Request { .. })),
        "PLAIN: {plain:?}"
    );
    println!(
        "Tansu 0.6 enables SCRAM-SHA-256 and SCRAM-SHA-512; PLAIN is not enabled (the broker \
         closes the connection on SaslHandshake PLAIN), so PLAIN is tested only against the \
         in-process test double"
    );

    // Our client reports PLAIN's rejection as an error, never as success.
    let config = base_config(&broker.bootstrap_servers())
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl(SaslMechanism::Plain, "alice", "plain-secret")
        .build()
        .unwrap();
    let err = connect(&broker.bootstrap_servers(), config)
        .await_blocking()
        .expect_err("PLAIN must fail on Tansu");
    println!("PLAIN against Tansu: {err}");
    assert!(!err.to_string().contains("plain-secret"));
}

#[test]
fn noida_has_no_kafka_tls_or_sasl() {
    if !test_broker_kinds().contains(&BrokerKind::Noida) {
        println!("noida_has_no_kafka_tls_or_sasl: not run: FERROKAFKA_TEST_BROKERS does not include noida");
        return;
    }
    // `noida-db start` takes only --data-dir, --host, --only and ports.
    let err = TestBroker::start_with(
        BrokerKind::Noida,
        BrokerOptions::default().authentication(true),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            TestkitError::Unsupported {
                kind: BrokerKind::Noida,
                ..
            }
        ),
        "{err}"
    );
    // Its Kafka listener is plaintext and needs no login: Metadata works
    // without SASL.
    let broker = TestBroker::start(BrokerKind::Noida).unwrap();
    let mut client =
        BlockingClient::connect(&broker.bootstrap_servers(), Duration::from_secs(5)).unwrap();
    let metadata = client.send(1, &MetadataRequest::default()).unwrap();
    assert_eq!(metadata.brokers.len(), 1);
    println!("noida-db 0.2 has no Kafka TLS or SASL options; its listener is open plaintext");
}

/// Runs a future to completion on a fresh current-thread runtime (for the
/// few synchronous tests that need one async call).
trait AwaitBlocking: std::future::Future + Sized {
    fn await_blocking(self) -> Self::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(self)
    }
}

impl<F: std::future::Future> AwaitBlocking for F {}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_needs_the_right_ca() {
    if !tansu_selected("tls_needs_the_right_ca") {
        return;
    }
    let dir = TempDir::new("tls-ca");
    let ca = Ca::new("ferrokafka test CA");
    let files = ca.server_files(&dir, &["127.0.0.1", "localhost"], None);
    let broker =
        TestBroker::start_with(BrokerKind::Tansu, BrokerOptions::default().tls(files)).unwrap();
    let bootstrap = broker.bootstrap_servers();
    assert_ne!(broker.port(), broker.broker_port());

    // The right CA, from a file and inline.
    for ca_source in [
        PemSource::File(dir.write("ca.pem", &ca.pem())),
        PemSource::Pem(ca.pem()),
    ] {
        let config = base_config(&bootstrap)
            .security_protocol(SecurityProtocol::Ssl)
            .tls(tls(Some(ca_source), true))
            .build()
            .unwrap();
        metadata_works(config, &bootstrap).await;
    }

    // Another CA, and the system trust store, do not vouch for the broker.
    let other = Ca::new("some other CA");
    let config = base_config(&bootstrap)
        .security_protocol(SecurityProtocol::Ssl)
        .tls(tls(Some(PemSource::Pem(other.pem())), true))
        .build()
        .unwrap();
    let msg = assert_tls_error(connect(&bootstrap, config).await, "wrong CA");
    println!("wrong CA: {msg}");
    let config = base_config(&bootstrap)
        .security_protocol(SecurityProtocol::Ssl)
        .tls(tls(None, true))
        .build()
        .unwrap();
    assert_tls_error(connect(&bootstrap, config).await, "system trust store");
    // Turning off host name checks does not turn off chain verification.
    let config = base_config(&bootstrap)
        .security_protocol(SecurityProtocol::Ssl)
        .tls(tls(Some(PemSource::Pem(other.pem())), false))
        .build()
        .unwrap();
    assert_tls_error(
        connect(&bootstrap, config).await,
        "wrong CA, no host name check",
    );

    // A plaintext client gets no Kafka answer from a TLS listener.
    let plaintext = base_config(&bootstrap).build().unwrap();
    let err = connect(&bootstrap, plaintext)
        .await
        .expect_err("plaintext client on a TLS listener");
    println!("plaintext client on the TLS listener: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_checks_the_server_name_unless_turned_off() {
    if !tansu_selected("tls_checks_the_server_name_unless_turned_off") {
        return;
    }
    let dir = TempDir::new("tls-name");
    let ca = Ca::new("ferrokafka test CA");
    // Issued for another name than the address clients use.
    let files = ca.server_files(&dir, &["broker.invalid"], None);
    let broker =
        TestBroker::start_with(BrokerKind::Tansu, BrokerOptions::default().tls(files)).unwrap();
    let bootstrap = broker.bootstrap_servers();

    let config = base_config(&bootstrap)
        .security_protocol(SecurityProtocol::Ssl)
        .tls(tls(Some(PemSource::Pem(ca.pem())), true))
        .build()
        .unwrap();
    let msg = assert_tls_error(connect(&bootstrap, config).await, "wrong server name");
    println!("wrong server name: {msg}");

    let config = base_config(&bootstrap)
        .security_protocol(SecurityProtocol::Ssl)
        .tls(tls(Some(PemSource::Pem(ca.pem())), false))
        .build()
        .unwrap();
    metadata_works(config, &bootstrap).await;

    // The same through Java property names.
    let ca_path = dir.write("ca.pem", &ca.pem());
    let ca_path = ca_path.to_str().unwrap();
    let properties = |check: &'static str| {
        ClientConfig::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("security.protocol", "SSL"),
            ("ssl.ca.location", ca_path),
            ("ssl.endpoint.identification.algorithm", check),
        ])
        .unwrap()
    };
    assert_tls_error(
        connect(&bootstrap, properties("https")).await,
        "properties, https",
    );
    metadata_works(properties(""), &bootstrap).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_through_the_proxy() {
    if !tansu_selected("mutual_tls_through_the_proxy") {
        return;
    }
    println!(
        "Tansu 0.6 has no client-certificate option (its rustls server uses no client auth): \
         here the testkit's TLS proxy requires the client certificate"
    );
    let dir = TempDir::new("mtls");
    let ca = Ca::new("ferrokafka test CA");
    let client_ca = Ca::new("ferrokafka client CA");
    let files = ca.server_files(&dir, &["127.0.0.1"], Some(&client_ca));
    let broker =
        TestBroker::start_with(BrokerKind::Tansu, BrokerOptions::default().tls(files)).unwrap();
    let bootstrap = broker.bootstrap_servers();
    let (cert, key) = client_ca.issue(&["ferrokafka-client"]);
    let with_cert = |cert: Option<&str>, key: Option<&str>| {
        base_config(&bootstrap)
            .security_protocol(SecurityProtocol::Ssl)
            .tls(TlsConfig {
                ca: Some(PemSource::Pem(ca.pem())),
                certificate: cert.map(|c| PemSource::Pem(c.to_owned())),
                key: key.map(|k| PemSource::Pem(k.to_owned())),
                verify_hostname: true,
            })
            .build()
            .unwrap()
    };
    metadata_works(with_cert(Some(&cert), Some(&key)), &bootstrap).await;

    // No client certificate, or one from a CA the server does not trust.
    let (stranger_cert, stranger_key) = ca.issue(&["stranger"]);
    for (what, config) in [
        ("no client certificate", with_cert(None, None)),
        (
            "untrusted client certificate",
            with_cert(Some(&stranger_cert), Some(&stranger_key)),
        ),
    ] {
        let msg = assert_tls_error(connect(&bootstrap, config).await, what);
        println!("{what}: {msg}");
    }
}

// ---------------------------------------------------------------------------
// SASL
// ---------------------------------------------------------------------------

// No user can be created on an authenticating Tansu 0.6 (see the testkit's
// `BrokerOptions`), so every login here is a full SCRAM exchange with the
// real broker (client-first, Tansu's server-first with salt and iterations,
// client-final with the proof) that Tansu then refuses: the successful path is
// covered by the in-process test double (`network::tests::sasl_exchanges_end_to_end`).
const SCRAM: [(SaslMechanism, &str, &str); 2] = [
    (SaslMechanism::ScramSha256, "alice", "alice-secret-256"),
    (SaslMechanism::ScramSha512, "bob", "bob-secret-512"),
];

fn explain_no_users() {
    println!(
        "Tansu 0.6 cannot be given users while it requires authentication (user create is \
         refused before a login, memory storage does not outlive the process, S3 storage did not \
         persist them): SCRAM is checked to the broker's refusal; success is covered by the test double"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_scram_on_plaintext() {
    if !tansu_selected("sasl_scram_on_plaintext") {
        return;
    }
    explain_no_users();
    let broker = TestBroker::start_with(
        BrokerKind::Tansu,
        BrokerOptions::default().authentication(true),
    )
    .unwrap();
    let bootstrap = broker.bootstrap_servers();
    for (mechanism, user, password) in SCRAM {
        let config = base_config(&bootstrap)
            .security_protocol(SecurityProtocol::SaslPlaintext)
            .sasl(mechanism, user, password)
            .build()
            .unwrap();
        assert_auth_error(
            connect(&bootstrap, config).await,
            mechanism.name(),
            password,
        );

        // The same through Java property names.
        let jaas = scram_jaas_config(user, password);
        let config = ClientConfig::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", mechanism.name()),
            ("sasl.jaas.config", jaas.as_str()),
        ])
        .unwrap();
        assert_auth_error(
            connect(&bootstrap, config.clone()).await,
            mechanism.name(),
            password,
        );
        // Through the cluster client the failure stays typed.
        let err = Cluster::connect(config).await.unwrap_err();
        assert!(!err.is_retriable(), "{err:?}");
        assert!(!format!("{err:?}").contains(password));
    }

    // Without SASL the broker answers nothing but ApiVersions.
    let no_sasl = async {
        let config = base_config(&bootstrap)
            .default_api_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let cluster = Cluster::connect(config).await?;
        cluster.refresh_metadata().await
    }
    .await;
    let err = no_sasl.expect_err("Metadata without authentication succeeded");
    println!("Metadata without SASL: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_ssl() {
    if !tansu_selected("sasl_ssl") {
        return;
    }
    explain_no_users();
    let dir = TempDir::new("sasl-ssl");
    let ca = Ca::new("ferrokafka test CA");
    let files = ca.server_files(&dir, &["127.0.0.1"], None);
    let broker = TestBroker::start_with(
        BrokerKind::Tansu,
        BrokerOptions::default().authentication(true).tls(files),
    )
    .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let ca_path = dir.write("ca.pem", &ca.pem());

    for (mechanism, user, password) in SCRAM {
        // TLS is set up, then the SCRAM exchange runs to the broker's refusal.
        let config = base_config(&bootstrap)
            .security_protocol(SecurityProtocol::SaslSsl)
            .tls(tls(Some(PemSource::File(ca_path.clone())), true))
            .sasl(mechanism, user, password)
            .build()
            .unwrap();
        assert_auth_error(
            connect(&bootstrap, config).await,
            mechanism.name(),
            password,
        );

        // Java property names.
        let jaas = scram_jaas_config(user, password);
        let config = ClientConfig::from_properties([
            ("bootstrap.servers", bootstrap.as_str()),
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", mechanism.name()),
            ("sasl.jaas.config", jaas.as_str()),
            ("ssl.ca.location", path_str(&ca_path)),
        ])
        .unwrap();
        assert_auth_error(
            connect(&bootstrap, config).await,
            mechanism.name(),
            password,
        );
    }

    // SASL_SSL with the wrong CA fails in TLS, before any password is sent.
    let other = Ca::new("some other CA");
    let config = base_config(&bootstrap)
        .security_protocol(SecurityProtocol::SaslSsl)
        .tls(tls(Some(PemSource::Pem(other.pem())), true))
        .sasl(SaslMechanism::ScramSha256, "alice", SCRAM[0].2)
        .build()
        .unwrap();
    assert_tls_error(connect(&bootstrap, config).await, "SASL_SSL, wrong CA");
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}
