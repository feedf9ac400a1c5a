//! No secret (a SASL password, a private key, anything derived from them)
//! reaches `Debug`, `Display`, an error or a log line.

use std::io::Write;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::scram::{ScramClient, ScramHash};
use crate::network::testing::{spawn_tcp, with_api_versions, Reply, ScramServer};
use crate::network::{
    tls, BrokerConnection, ClientConfig, Cluster, PemSource, SaslConfig, SaslMechanism,
    SecurityProtocol, TlsConfig,
};
use crate::protocol::messages::metadata_response::MetadataResponseBroker;
use crate::protocol::messages::{
    MetadataResponse, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use crate::protocol::{ErrorCode, RequestKind, ResponseKind};

const PASSWORD: &str = "pw-Secret-7f3a";
const WRONG_PASSWORD: &str = "pw-Wrong-91bc";

/// A real private key (PEM) and a piece of its base64 body to look for.
fn private_key() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = key.serialize_pem();
    let body_line = pem
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() >= 24)
        .unwrap();
    (pem.clone(), body_line[..24].to_owned())
}

fn assert_hidden(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

fn debug_and_display<T: std::fmt::Debug + std::fmt::Display>(value: &T) -> String {
    format!("{value:?}\n{value}\n{value:#?}")
}

#[test]
fn config_types_hide_passwords_and_private_keys() {
    let (key_pem, key_piece) = private_key();
    let secrets = [PASSWORD, key_piece.as_str()];
    let jaas = format!(
        "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"alice\" password=\"{PASSWORD}\";"
    );
    let from_jaas = ClientConfig::from_properties([
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.jaas.config", jaas.as_str()),
        ("ssl.certificate.pem", "cert"),
        ("ssl.key.pem", key_pem.as_str()),
    ])
    .unwrap();
    let from_librdkafka_names = ClientConfig::from_properties([
        ("security.protocol", "SASL_PLAINTEXT"),
        ("sasl.username", "alice"),
        ("sasl.password", PASSWORD),
    ])
    .unwrap();
    assert_eq!(from_jaas.sasl.as_ref().unwrap().password, PASSWORD);
    let tls = TlsConfig {
        key: Some(PemSource::Pem(key_pem.clone())),
        certificate: Some(PemSource::Pem("cert".into())),
        ..TlsConfig::default()
    };
    let builder = ClientConfig::builder()
        .sasl(SaslMechanism::Plain, "alice", PASSWORD)
        .tls(tls.clone());
    let sasl = SaslConfig {
        mechanism: SaslMechanism::ScramSha256,
        username: "alice".into(),
        password: PASSWORD.into(),
    };
    for (what, text) in [
        (
            "ClientConfig (jaas)",
            format!("{from_jaas:?}{from_jaas:#?}"),
        ),
        (
            "ClientConfig (sasl.password)",
            format!("{from_librdkafka_names:?}{from_librdkafka_names:#?}"),
        ),
        ("ClientConfigBuilder", format!("{builder:?}{builder:#?}")),
        ("SaslConfig", format!("{sasl:?}{sasl:#?}")),
        ("TlsConfig", format!("{tls:?}{tls:#?}")),
        (
            "PemSource",
            format!("{:?}", PemSource::Pem(key_pem.clone())),
        ),
    ] {
        assert_hidden(what, &text, &secrets);
        assert!(
            text.contains("alice") || !text.contains("username"),
            "{text}"
        );
    }

    // Configuration errors about a value holding the password.
    for bad in [
        format!("x.ScramLoginModule required username=\"a\" password=\"{PASSWORD}"),
        format!("x.ScramLoginModule required password=\"{PASSWORD}\";"),
        format!("x.ScramLoginModule required username=a password={PASSWORD} junk"),
    ] {
        let err = ClientConfig::from_properties([("sasl.jaas.config", bad.as_str())]).unwrap_err();
        assert_hidden("ConfigError", &debug_and_display(&err), &secrets);
    }
}

#[test]
fn tls_errors_hide_key_material() {
    let (key_pem, key_piece) = private_key();
    // A key whose body is damaged: the PEM parser's complaint must not
    // quote it.
    let damaged = key_pem.replacen(&key_piece, &format!("{key_piece}!!"), 1);
    let (cert_key, _) = private_key();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::from_pem(&cert_key).unwrap())
        .unwrap()
        .pem();
    for key in [
        damaged,
        "-----BEGIN PRIVATE KEY-----\n".to_owned() + &key_piece,
        key_pem,
    ] {
        // The last one is a valid key that does not match the certificate.
        let tls = TlsConfig {
            key: Some(PemSource::Pem(key.clone())),
            certificate: Some(PemSource::Pem(cert.clone())),
            ..TlsConfig::default()
        };
        let err = tls::client_config(&tls).unwrap_err();
        assert_hidden("TLS error", &debug_and_display(&err), &[key_piece.as_str()]);
    }
}

#[test]
fn scram_client_hides_the_password_at_every_step() {
    let server_first =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let mut client =
        ScramClient::with_nonce(ScramHash::Sha256, "user", PASSWORD, "rOprNGfwEbeRWgbNEkqO")
            .unwrap();
    let mut states = vec![format!("{client:?}")];
    client.client_first();
    states.push(format!("{client:#?}"));
    client.handle_server_first(server_first.as_bytes()).unwrap();
    states.push(format!("{client:?}"));
    let err = client.verify_server_final(b"v=AAAA").unwrap_err();
    states.push(err);
    for state in states {
        assert_hidden("ScramClient", &state, &[PASSWORD]);
        assert!(!state.contains(&format!("{:?}", PASSWORD.as_bytes())));
    }
}

/// A broker requiring SCRAM-SHA-256 from `alice` with [`PASSWORD`].
async fn scram_broker() -> (String, Arc<AtomicUsize>) {
    let port = Arc::new(AtomicU16::new(0));
    let server = Arc::new(Mutex::new(None::<ScramServer>));
    let step = Arc::new(AtomicUsize::new(0));
    let authenticated = Arc::new(AtomicUsize::new(0));
    let handler = with_api_versions({
        let (port, authenticated) = (port.clone(), authenticated.clone());
        move |header, body| {
            let auth = |result: Result<String, String>| match result {
                Ok(text) => SaslAuthenticateResponse::default().with_auth_bytes(text.into()),
                Err(message) => SaslAuthenticateResponse::default()
                    .with_error_code(ErrorCode::SaslAuthenticationFailed.code())
                    .with_error_message(Some(message)),
            };
            let body = match body {
                RequestKind::SaslHandshake(_) => {
                    *server.lock().unwrap() = Some(ScramServer::new(ScramHash::Sha256, PASSWORD));
                    step.store(0, Ordering::SeqCst);
                    ResponseKind::SaslHandshake(
                        SaslHandshakeResponse::default()
                            .with_mechanisms(vec!["SCRAM-SHA-256".into()]),
                    )
                }
                RequestKind::SaslAuthenticate(a) => {
                    let mut guard = server.lock().unwrap();
                    let scram = guard.as_mut().expect("handshake first");
                    let result = if step.fetch_add(1, Ordering::SeqCst) == 0 {
                        scram.first(&a.auth_bytes, "alice")
                    } else {
                        let last = scram.last(&a.auth_bytes);
                        if last.is_ok() {
                            authenticated.fetch_add(1, Ordering::SeqCst);
                        }
                        last
                    };
                    ResponseKind::SaslAuthenticate(auth(result))
                }
                RequestKind::Metadata(_) => ResponseKind::Metadata(
                    MetadataResponse::default()
                        .with_controller_id(1)
                        .with_brokers(vec![MetadataResponseBroker::default()
                            .with_node_id(1)
                            .with_host("127.0.0.1".into())
                            .with_port(i32::from(port.load(Ordering::SeqCst)))]),
                ),
                _ => return Reply::Close,
            };
            Reply::now(body, header)
        }
    });
    let addr = spawn_tcp(handler).await;
    port.store(
        addr.rsplit_once(':').unwrap().1.parse().unwrap(),
        Ordering::SeqCst,
    );
    (addr, authenticated)
}

/// Collects every log line (all levels) written on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logins_keep_the_password_out_of_errors_and_logs() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let logs = logs.clone();
            move || logs.clone()
        })
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let (addr, authenticated) = scram_broker().await;
    let config = |password: &str| {
        ClientConfig::builder()
            .bootstrap_servers([addr.clone()])
            .security_protocol(SecurityProtocol::SaslPlaintext)
            .sasl(SaslMechanism::ScramSha256, "alice", password)
            .default_api_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };

    let cluster = Cluster::connect(config(PASSWORD)).await.unwrap();
    assert_eq!(authenticated.load(Ordering::SeqCst), 1);
    let conn = BrokerConnection::connect(&addr, Arc::new(config(PASSWORD)))
        .await
        .unwrap();
    assert_hidden(
        "Cluster / BrokerConnection",
        &format!("{cluster:?}{cluster:#?}{conn:?}{conn:#?}"),
        &[PASSWORD],
    );

    for mechanism in [SaslMechanism::ScramSha256, SaslMechanism::Plain] {
        let mut wrong = config(WRONG_PASSWORD);
        wrong.sasl.as_mut().unwrap().mechanism = mechanism;
        let err = Cluster::connect(wrong.clone()).await.unwrap_err();
        assert_hidden("login error", &debug_and_display(&err), &[WRONG_PASSWORD]);
        let err = BrokerConnection::connect(&addr, Arc::new(wrong))
            .await
            .unwrap_err();
        assert_hidden("login error", &debug_and_display(&err), &[WRONG_PASSWORD]);
    }
    drop(_guard);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("SASL authentication succeeded"), "{logs}");
    assert_hidden("logs", &logs, &[PASSWORD, WRONG_PASSWORD]);
}
