//! Connection tests against the in-process fake broker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;

use super::testing::{
    api_versions, serve, spawn_tcp, with_api_versions, Handler, Reply, ScramServer,
};
use super::*;
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::metadata_response::MetadataResponseTopic;
use crate::protocol::messages::{
    ApiVersionsResponse, FetchRequest, MetadataRequest, MetadataResponse, ProduceRequest,
    SaslAuthenticateResponse, SaslHandshakeResponse,
};
use crate::protocol::{ApiKey, ErrorCode, RequestKind, ResponseKind, VersionRange};
use sasl::scram::ScramHash;

/// A Metadata request naming one topic; the fake echoes the name back.
fn tagged(tag: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(tag.to_owned()))
    ]))
}

fn tag_of(request: &MetadataRequest) -> String {
    request
        .topics
        .as_ref()
        .and_then(|t| t.first())
        .and_then(|t| t.name.clone())
        .unwrap_or_default()
}

fn echoed(response: &MetadataResponse) -> &str {
    response.topics[0].name.as_deref().unwrap()
}

fn echo(tag: &str) -> ResponseKind {
    ResponseKind::Metadata(MetadataResponse::default().with_topics(vec![
        MetadataResponseTopic::default().with_name(Some(tag.to_owned())),
    ]))
}

/// Echoes Metadata tags. Tags look like `name/delay_us/mode` where mode is
/// `silent`, `close` or empty.
fn echo_handler() -> Handler {
    with_api_versions(|header, body| match body {
        RequestKind::Metadata(m) => {
            let tag = tag_of(&m);
            let mut parts = tag.split('/');
            let _name = parts.next();
            let delay = parts.next().and_then(|d| d.parse().ok()).unwrap_or(0);
            match parts.next() {
                Some("silent") => Reply::Silent,
                Some("close") => Reply::Close,
                _ => Reply::after(echo(&tag), header, Duration::from_micros(delay)),
            }
        }
        _ => Reply::Close,
    })
}

fn config() -> Arc<ClientConfig> {
    Arc::new(ClientConfig::default())
}

async fn duplex_connection(
    handler: Handler,
    config: Arc<ClientConfig>,
) -> Result<BrokerConnection> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(serve(server, handler));
    BrokerConnection::from_stream(client, "fake", config).await
}

#[tokio::test]
async fn single_request_round_trip_over_tcp() {
    let addr = spawn_tcp(echo_handler()).await;
    let conn = BrokerConnection::connect(&addr, config()).await.unwrap();
    assert_eq!(
        conn.negotiated_version(ApiKey::Metadata),
        Some(ApiKey::Metadata.stable_versions().max)
    );
    let response = conn.send(&tagged("hello")).await.unwrap();
    assert_eq!(echoed(&response), "hello");
    assert!(!conn.is_closed());
    assert_eq!(conn.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_get_their_own_responses_out_of_order() {
    let conn = duplex_connection(echo_handler(), config()).await.unwrap();
    let n = 100u64;
    let started = std::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let conn = conn.clone();
        // Later requests answer sooner, so responses come back reversed.
        let tag = format!("t{i}/{}/", (n - i) * 1000);
        tasks.spawn(async move {
            let response = conn.send(&tagged(&tag)).await.unwrap();
            assert_eq!(echoed(&response), tag);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    // Serial round trips would take at least the sum of delays (5 s).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(conn.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_requests_never_desynchronise_the_connection() {
    let conn = duplex_connection(echo_handler(), config()).await.unwrap();
    let completed = Arc::new(AtomicUsize::new(0));
    let cancelled = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let conn = conn.clone();
        let completed = completed.clone();
        let cancelled = cancelled.clone();
        let (delay, cut) = {
            let mut rng = rand::rng();
            (rng.random_range(0..800u64), rng.random_range(0..600u64))
        };
        let tag = format!("r{i}/{delay}/");
        tasks.spawn(async move {
            let request = tagged(&tag);
            let outcome = match i % 3 {
                // Cut off by a timeout at a random point.
                0 => tokio::time::timeout(Duration::from_micros(cut), conn.send(&request))
                    .await
                    .ok(),
                // Cut off by another select! branch.
                1 => tokio::select! {
                    r = conn.send(&request) => Some(r),
                    _ = tokio::time::sleep(Duration::from_micros(cut)) => None,
                },
                // Left to finish.
                _ => Some(conn.send(&request).await),
            };
            match outcome {
                Some(result) => {
                    assert_eq!(echoed(&result.unwrap()), tag, "got someone else's response");
                    completed.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    cancelled.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    assert!(completed.load(Ordering::Relaxed) >= 133);
    assert!(
        cancelled.load(Ordering::Relaxed) > 0,
        "no request was cancelled"
    );
    // The connection still works, and abandoned responses drain.
    for i in 0..5 {
        let tag = format!("after{i}");
        assert_eq!(echoed(&conn.send(&tagged(&tag)).await.unwrap()), tag);
    }
    tokio::time::timeout(Duration::from_secs(5), async {
        while conn.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("abandoned responses were not drained");
    assert!(!conn.is_closed());
}

#[tokio::test]
async fn a_request_timeout_is_retriable_and_closes_the_connection() {
    let conn = duplex_connection(echo_handler(), config()).await.unwrap();
    // Another request in flight when the timeout hits fails too, retriably.
    let other = {
        let conn = conn.clone();
        tokio::spawn(async move { conn.send(&tagged("other/0/silent")).await })
    };
    tokio::task::yield_now().await;
    let err = conn
        .send_with(
            &tagged("never/0/silent"),
            RequestOptions::default().with_timeout(Duration::from_millis(30)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::RequestTimeout {
                api: ApiKey::Metadata,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_retriable());
    assert!(
        conn.is_closed(),
        "a broker that does not answer is treated as gone"
    );
    let other = other.await.unwrap().unwrap_err();
    assert!(matches!(other, Error::Disconnected { .. }), "{other}");
    assert!(other.is_retriable());
    let after = conn.send(&tagged("after/0/")).await.unwrap_err();
    assert!(matches!(after, Error::Disconnected { .. }), "{after}");
    assert_eq!(conn.in_flight(), 0);
}

#[tokio::test]
async fn broken_connection_fails_every_pending_request() {
    let conn = duplex_connection(echo_handler(), config()).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..10 {
        let conn = conn.clone();
        pending.push(tokio::spawn(async move {
            conn.send(&tagged(&format!("p{i}/0/silent"))).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(conn.in_flight(), 10);
    let err = conn.send(&tagged("boom/0/close")).await.unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }), "{err}");
    for task in pending {
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
        assert!(err.is_retriable());
    }
    assert!(conn.is_closed());
    let err = conn.send(&tagged("after")).await.unwrap_err();
    assert!(matches!(err, Error::Disconnected { .. }));
    assert_eq!(conn.in_flight(), 0);
}

#[tokio::test]
async fn oversized_frame_fails_only_its_request_and_unknown_frames_close_the_connection() {
    let handler = with_api_versions(|header, body| match body {
        RequestKind::Metadata(m) if tag_of(&m) == "huge" => {
            // A size far above the limit, then the header's correlation id.
            let mut frame = vec![0x7f, 0, 0, 0];
            frame.extend_from_slice(&header.correlation_id.to_be_bytes());
            Reply::Raw(bytes::Bytes::from(frame))
        }
        RequestKind::Metadata(m) if tag_of(&m).ends_with("silent") => Reply::Silent,
        RequestKind::Metadata(_) => {
            // A response for a correlation id nobody asked for.
            Reply::Raw(super::testing::response_frame(
                header.correlation_id + 1000,
                &echo("x"),
                header.request_api_version,
            ))
        }
        _ => Reply::Close,
    });
    let small = Arc::new(
        ClientConfig::builder()
            .max_response_size(1 << 20)
            .build()
            .unwrap(),
    );
    let conn = duplex_connection(handler.clone(), small.clone())
        .await
        .unwrap();
    let bystanders: Vec<_> = (0..3)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.send(&tagged(&format!("b{i}/silent"))).await })
        })
        .collect();
    while conn.in_flight() < 3 {
        tokio::task::yield_now().await;
    }
    let err = conn.send(&tagged("huge")).await.unwrap_err();
    assert!(
        matches!(err, Error::FrameTooLarge { max: 1048576, .. }),
        "{err}"
    );
    assert!(!err.is_retriable());
    assert!(conn.is_closed());
    // The requests it did not answer were fine: they may be retried.
    for bystander in bystanders {
        let err = bystander.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
        assert!(err.is_retriable());
    }

    let conn = duplex_connection(handler, small).await.unwrap();
    let err = conn.send(&tagged("other")).await.unwrap_err();
    assert!(
        matches!(err, Error::Disconnected { ref reason, .. } if reason.contains("correlation")),
        "{err}"
    );
}

/// A broker that records the order requests arrive in and answers each one
/// only when the test releases it.
struct GatedBroker {
    arrived: Mutex<Vec<String>>,
    gates: Mutex<Vec<tokio::sync::oneshot::Sender<()>>>,
    outstanding: AtomicUsize,
    max_outstanding: AtomicUsize,
}

impl GatedBroker {
    fn new() -> Arc<Self> {
        Arc::new(GatedBroker {
            arrived: Mutex::new(Vec::new()),
            gates: Mutex::new(Vec::new()),
            outstanding: AtomicUsize::new(0),
            max_outstanding: AtomicUsize::new(0),
        })
    }

    fn handler(self: &Arc<Self>) -> Handler {
        let broker = self.clone();
        with_api_versions(move |header, body| match body {
            RequestKind::Metadata(m) => {
                let tag = tag_of(&m);
                broker.arrived.lock().unwrap().push(tag.clone());
                let now = broker.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
                broker.max_outstanding.fetch_max(now, Ordering::SeqCst);
                let (tx, rx) = tokio::sync::oneshot::channel();
                broker.gates.lock().unwrap().push(tx);
                let broker = broker.clone();
                Reply::Later {
                    body: Box::pin(async move {
                        rx.await.ok()?;
                        broker.outstanding.fetch_sub(1, Ordering::SeqCst);
                        Some(echo(&tag))
                    }),
                    version: header.request_api_version,
                }
            }
            // acks=0: recorded, never answered.
            RequestKind::Produce(_) => {
                broker.arrived.lock().unwrap().push("produce".into());
                Reply::Silent
            }
            _ => Reply::Close,
        })
    }

    /// Answers every request that arrived so far, newest first.
    fn release_all(&self) -> usize {
        let gates: Vec<_> = self.gates.lock().unwrap().drain(..).rev().collect();
        let n = gates.len();
        for gate in gates {
            let _ = gate.send(());
        }
        n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submitted_frames_leave_in_submission_order_and_the_in_flight_cap_holds() {
    const CAP: usize = 3;
    const N: usize = 40;
    let broker = GatedBroker::new();
    let config = Arc::new(
        ClientConfig::builder()
            .max_in_flight_requests_per_connection(CAP)
            .build()
            .unwrap(),
    );
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(serve(server, broker.handler()));
    let conn = BrokerConnection::from_stream_for(client, "fake", config, ConnectionRole::Produce)
        .await
        .unwrap();
    assert_eq!(conn.max_in_flight(), CAP);

    // CAP submissions return at once, each with a handle...
    let mut handles = Vec::new();
    for i in 0..CAP {
        let handle = conn
            .submit(&tagged(&format!("r{i}")), RequestOptions::default())
            .await
            .unwrap();
        assert!(conn.in_flight() <= CAP);
        handles.push(handle);
    }
    // ...and the next one waits for a free slot.
    let blocked = tokio::time::timeout(
        Duration::from_millis(50),
        conn.submit(&tagged("blocked"), RequestOptions::default()),
    )
    .await;
    assert!(blocked.is_err(), "the cap of {CAP} did not hold");

    // One task keeps submitting while the broker answers out of order.
    let submitter = {
        let conn = conn.clone();
        tokio::spawn(async move {
            let mut handles = Vec::new();
            for i in CAP..N {
                let handle = conn
                    .submit(&tagged(&format!("r{i}")), RequestOptions::default())
                    .await
                    .unwrap();
                assert!(conn.in_flight() <= CAP, "{} in flight", conn.in_flight());
                handles.push((i, handle));
            }
            handles
        })
    };
    let mut answered = 0;
    while answered < N {
        answered += broker.release_all();
        tokio::task::yield_now().await;
    }
    // Handles are awaited last-first: their order does not matter.
    for (i, handle) in handles.into_iter().enumerate().rev() {
        assert_eq!(echoed(&handle.await.unwrap()), format!("r{i}"));
    }
    let rest = submitter.await.unwrap();
    for (i, handle) in rest.into_iter().rev() {
        assert_eq!(echoed(&handle.await.unwrap()), format!("r{i}"));
    }
    let expected: Vec<String> = (0..N).map(|i| format!("r{i}")).collect();
    assert_eq!(*broker.arrived.lock().unwrap(), expected);
    let max = broker.max_outstanding.load(Ordering::SeqCst);
    assert!(max <= CAP, "the broker saw {max} requests outstanding");
    assert_eq!(max, CAP, "pipelining never filled the window");
    assert_eq!(conn.in_flight(), 0);

    // General connections are not capped.
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(serve(server, broker.handler()));
    let general = BrokerConnection::from_stream(client, "fake", config_with_cap(CAP))
        .await
        .unwrap();
    assert_eq!(general.max_in_flight(), usize::MAX);
    let mut handles = Vec::new();
    for i in 0..2 * CAP {
        handles.push(
            general
                .submit(&tagged(&format!("g{i}")), RequestOptions::default())
                .await
                .unwrap(),
        );
    }
    assert_eq!(general.in_flight(), 2 * CAP);
    let mut released = 0;
    while released < 2 * CAP {
        released += broker.release_all();
        tokio::task::yield_now().await;
    }
    for handle in handles {
        handle.await.unwrap();
    }
}

fn config_with_cap(cap: usize) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder()
            .max_in_flight_requests_per_connection(cap)
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn submit_no_response_keeps_submission_order() {
    let broker = GatedBroker::new();
    let (client, server) = tokio::io::duplex(64 * 1024);
    tokio::spawn(serve(server, broker.handler()));
    let conn = BrokerConnection::from_stream_for(
        client,
        "fake",
        config_with_cap(2),
        ConnectionRole::Produce,
    )
    .await
    .unwrap();
    let a = conn
        .submit(&tagged("a"), RequestOptions::default())
        .await
        .unwrap();
    // No response expected: it takes no in-flight slot.
    conn.submit_no_response(
        &ProduceRequest::default().with_acks(0),
        RequestOptions::default(),
    )
    .await
    .unwrap();
    let c = conn
        .submit(&tagged("c"), RequestOptions::default())
        .await
        .unwrap();
    while broker.arrived.lock().unwrap().len() < 3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(*broker.arrived.lock().unwrap(), ["a", "produce", "c"]);
    broker.release_all();
    assert_eq!(echoed(&c.await.unwrap()), "c");
    assert_eq!(echoed(&a.await.unwrap()), "a");
}

/// A TCP broker that answers ApiVersions, then stops reading when it gets a
/// Metadata request tagged `stall`, leaving the client's writes to block.
async fn stalling_broker() -> String {
    spawn_tcp(with_api_versions(|header, body| match body {
        RequestKind::Metadata(m) if tag_of(&m) == "stall" => Reply::Stall,
        RequestKind::Metadata(m) => Reply::now(echo(&tag_of(&m)), header),
        _ => Reply::Close,
    }))
    .await
}

/// Queues enough big frames behind a `stall` that the writer task blocks in
/// a write to the socket.
async fn block_the_writer(conn: &BrokerConnection) {
    conn.submit_no_response(&tagged("stall"), RequestOptions::default())
        .await
        .unwrap();
    // About 1 MiB per frame, in topic names no longer than a Kafka string
    // may be (0x7fff bytes).
    let big = MetadataRequest::default().with_topics(Some(
        (0..64)
            .map(|_| MetadataRequestTopic::default().with_name(Some("x".repeat(1 << 14))))
            .collect(),
    ));
    for _ in 0..24 {
        conn.submit_no_response(&big, RequestOptions::default())
            .await
            .unwrap();
    }
    // Let the writer run into the full socket buffer.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

async fn tasks_end(liveness: std::sync::Weak<()>) -> bool {
    tokio::time::timeout(Duration::from_secs(5), async {
        while liveness.upgrade().is_some() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_timeout_and_drop_end_both_tasks_even_with_a_write_blocked() {
    let addr = stalling_broker().await;

    // close()
    let conn = BrokerConnection::connect(&addr, config()).await.unwrap();
    block_the_writer(&conn).await;
    let liveness = conn.task_liveness();
    assert!(liveness.upgrade().is_some());
    conn.close();
    assert!(
        tasks_end(liveness).await,
        "close() left the writer blocked on a broker that stopped reading"
    );

    // A request timeout.
    let conn = BrokerConnection::connect(&addr, config()).await.unwrap();
    block_the_writer(&conn).await;
    let liveness = conn.task_liveness();
    let err = conn
        .send_with(
            &tagged("late"),
            RequestOptions::default().with_timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RequestTimeout { .. }), "{err}");
    assert!(conn.is_closed());
    assert!(
        tasks_end(liveness).await,
        "a request timeout left the writer and the socket alive"
    );

    // Dropping every handle.
    let conn = BrokerConnection::connect(&addr, config()).await.unwrap();
    block_the_writer(&conn).await;
    let liveness = conn.task_liveness();
    drop(conn);
    assert!(
        tasks_end(liveness).await,
        "dropping the last handle did not release the socket"
    );

    // An idle connection also ends at once when dropped.
    let conn = BrokerConnection::connect(&addr, config()).await.unwrap();
    assert_eq!(echoed(&conn.send(&tagged("ok")).await.unwrap()), "ok");
    let liveness = conn.task_liveness();
    drop(conn);
    assert!(tasks_end(liveness).await);
}

#[tokio::test]
async fn requests_without_response_are_written_and_keep_the_connection_in_sync() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let handler = with_api_versions(move |header, body| match body {
        RequestKind::Produce(_) => {
            seen2.lock().unwrap().push(header.correlation_id);
            Reply::Silent
        }
        RequestKind::Metadata(m) => Reply::now(echo(&tag_of(&m)), header),
        _ => Reply::Close,
    });
    let conn = duplex_connection(handler, config()).await.unwrap();
    let produce = ProduceRequest::default().with_acks(0);
    conn.submit_no_response(&produce, RequestOptions::default())
        .await
        .unwrap();
    conn.submit_no_response(&produce, RequestOptions::default())
        .await
        .unwrap();
    assert_eq!(echoed(&conn.send(&tagged("m")).await.unwrap()), "m");
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(conn.in_flight(), 0);
}

/// A broker that knows ApiVersions only up to v2, and some APIs not at all.
fn old_broker(seen_versions: Arc<Mutex<Vec<i16>>>) -> Handler {
    Arc::new(move |header, body| match body {
        RequestKind::ApiVersions(_) => {
            let version = header.request_api_version;
            seen_versions.lock().unwrap().push(version);
            let ranges = |api: ApiKey| match api {
                ApiKey::ApiVersions => Some(VersionRange::new(0, 2)),
                ApiKey::Metadata => Some(VersionRange::new(0, 5)),
                ApiKey::Fetch => Some(VersionRange::new(500, 600)),
                _ => None,
            };
            if version > 2 {
                let body = ApiVersionsResponse::default()
                    .with_error_code(ErrorCode::UnsupportedVersion.code())
                    .with_api_keys(
                        api_versions(|api| {
                            (api == ApiKey::ApiVersions).then(|| ranges(api).unwrap())
                        })
                        .api_keys,
                    );
                Reply::Send {
                    body: ResponseKind::ApiVersions(body),
                    version: 0,
                    delay: Duration::ZERO,
                }
            } else {
                Reply::now(ResponseKind::ApiVersions(api_versions(ranges)), header)
            }
        }
        RequestKind::Metadata(m) => Reply::now(echo(&tag_of(&m)), header),
        _ => Reply::Close,
    })
}

#[tokio::test]
async fn version_negotiation_steps_down_for_old_brokers() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let conn = duplex_connection(old_broker(seen.clone()), config())
        .await
        .unwrap();
    let first = ApiKey::ApiVersions.stable_versions().max;
    assert!(first >= 3);
    assert_eq!(*seen.lock().unwrap(), vec![first, 2]);
    assert_eq!(conn.negotiated_version(ApiKey::Metadata), Some(5));
    assert_eq!(echoed(&conn.send(&tagged("v5")).await.unwrap()), "v5");

    // No common version: a typed, non-retriable error, nothing sent.
    let err = conn.send(&FetchRequest::default()).await.unwrap_err();
    match &err {
        Error::UnsupportedVersion { api, broker, .. } => {
            assert_eq!(*api, ApiKey::Fetch);
            assert_eq!(*broker, Some(VersionRange::new(500, 600)));
        }
        other => panic!("{other}"),
    }
    assert!(!err.is_retriable());
    // An API the broker does not list at all.
    let err = conn.send(&ProduceRequest::default()).await.unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { broker: None, .. }),
        "{err}"
    );
    assert!(!conn.is_closed());
}

/// A broker requiring SASL with the given mechanism and credentials.
fn sasl_broker(mechanism: &'static str, user: &'static str, password: &'static str) -> Handler {
    let scram = Arc::new(Mutex::new(None::<ScramServer>));
    let authenticated = Arc::new(Mutex::new(false));
    let step = Arc::new(AtomicUsize::new(0));
    with_api_versions(move |header, body| {
        let fail = |message: String| {
            ResponseKind::SaslAuthenticate(
                SaslAuthenticateResponse::default()
                    .with_error_code(ErrorCode::SaslAuthenticationFailed.code())
                    .with_error_message(Some(message)),
            )
        };
        let ok = |bytes: Vec<u8>| {
            ResponseKind::SaslAuthenticate(
                SaslAuthenticateResponse::default().with_auth_bytes(bytes.into()),
            )
        };
        match body {
            RequestKind::SaslHandshake(h) => {
                let code = if h.mechanism == mechanism {
                    if mechanism != "PLAIN" {
                        let hash = if mechanism == "SCRAM-SHA-256" {
                            ScramHash::Sha256
                        } else {
                            ScramHash::Sha512
                        };
                        *scram.lock().unwrap() = Some(ScramServer::new(hash, password));
                    }
                    ErrorCode::None
                } else {
                    ErrorCode::UnsupportedSaslMechanism
                };
                Reply::now(
                    ResponseKind::SaslHandshake(
                        SaslHandshakeResponse::default()
                            .with_error_code(code.code())
                            .with_mechanisms(vec![mechanism.to_owned()]),
                    ),
                    header,
                )
            }
            RequestKind::SaslAuthenticate(a) => {
                let reply = if mechanism == "PLAIN" {
                    if a.auth_bytes[..] == sasl::plain_message(user, password)[..] {
                        *authenticated.lock().unwrap() = true;
                        ok(Vec::new())
                    } else {
                        fail("bad credentials".into())
                    }
                } else {
                    let mut guard = scram.lock().unwrap();
                    let server = guard.as_mut().expect("handshake first");
                    let result = if step.fetch_add(1, Ordering::SeqCst) == 0 {
                        server.first(&a.auth_bytes, user)
                    } else {
                        server.last(&a.auth_bytes).inspect(|_| {
                            *authenticated.lock().unwrap() = true;
                        })
                    };
                    match result {
                        Ok(message) => ok(message.into_bytes()),
                        Err(e) => fail(e),
                    }
                };
                Reply::now(reply, header)
            }
            RequestKind::Metadata(m) if *authenticated.lock().unwrap() => {
                Reply::now(echo(&tag_of(&m)), header)
            }
            _ => Reply::Close,
        }
    })
}

fn sasl_config(mechanism: SaslMechanism, user: &str, password: &str) -> Arc<ClientConfig> {
    Arc::new(
        ClientConfig::builder()
            .security_protocol(SecurityProtocol::SaslPlaintext)
            .sasl(mechanism, user, password)
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn sasl_exchanges_end_to_end() {
    for (mechanism, name) in [
        (SaslMechanism::Plain, "PLAIN"),
        (SaslMechanism::ScramSha256, "SCRAM-SHA-256"),
        (SaslMechanism::ScramSha512, "SCRAM-SHA-512"),
    ] {
        let conn = duplex_connection(
            sasl_broker(name, "alice", "s3cret"),
            sasl_config(mechanism, "alice", "s3cret"),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(echoed(&conn.send(&tagged("in")).await.unwrap()), "in");

        let err = duplex_connection(
            sasl_broker(name, "alice", "s3cret"),
            sasl_config(mechanism, "alice", "wrong"),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::SaslAuthentication { .. }),
            "{name}: {err}"
        );
        assert!(!err.is_retriable());
        assert!(!err.to_string().contains("wrong"), "password leaked: {err}");
    }
    let err = duplex_connection(
        sasl_broker("SCRAM-SHA-512", "alice", "s3cret"),
        sasl_config(SaslMechanism::Plain, "alice", "s3cret"),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("SCRAM-SHA-512"), "{err}");
}

#[tokio::test]
async fn every_resolved_address_gets_a_share_of_the_setup_timeout() {
    // The first address accepts TCP and never answers; the second works.
    let silent = spawn_tcp(Arc::new(|_, _| Reply::Silent)).await;
    let good = spawn_tcp(echo_handler()).await;
    let config = Arc::new(
        ClientConfig::builder()
            .connection_setup_timeout(Duration::from_millis(400))
            .build()
            .unwrap(),
    );
    let resolved: Vec<std::net::SocketAddr> = vec![silent.parse().unwrap(), good.parse().unwrap()];
    let deadline = std::time::Instant::now() + config.connection_setup_timeout;
    let conn = BrokerConnection::connect_addresses(
        "broker.example:9092",
        "broker.example",
        &resolved,
        deadline,
        &config,
        None,
        ConnectionRole::General,
    )
    .await
    .unwrap();
    assert_eq!(
        echoed(&conn.send(&tagged("second")).await.unwrap()),
        "second"
    );
    // Only silent addresses: the last failure is a setup timeout.
    let resolved: Vec<std::net::SocketAddr> = vec![silent.parse().unwrap()];
    let deadline = std::time::Instant::now() + Duration::from_millis(100);
    let err = BrokerConnection::connect_addresses(
        "broker.example:9092",
        "broker.example",
        &resolved,
        deadline,
        &config,
        None,
        ConnectionRole::General,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::ConnectTimeout { .. }), "{err}");
}

#[tokio::test]
async fn connect_failures_are_typed() {
    // Nothing listens on a port we just freed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let err = BrokerConnection::connect(&addr, config())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err}");
    assert!(err.is_retriable());

    // A broker that accepts but never answers ApiVersions.
    let silent = spawn_tcp(Arc::new(|_, _| Reply::Silent)).await;
    let quick = Arc::new(
        ClientConfig::builder()
            .connection_setup_timeout(Duration::from_millis(50))
            .build()
            .unwrap(),
    );
    let err = BrokerConnection::connect(&silent, quick).await.unwrap_err();
    assert!(matches!(err, Error::ConnectTimeout { .. }), "{err}");
}

mod tls_tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    struct Pki {
        ca_pem: String,
        ca: rcgen::Certificate,
        ca_key: KeyPair,
    }

    fn pki(name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = params.self_signed(&ca_key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
            ca_key,
        }
    }

    /// A leaf certificate for `names`, signed by `pki`: (cert PEM, key PEM, cert DER, key DER).
    fn leaf(
        pki: &Pki,
        names: &[&str],
    ) -> (
        String,
        String,
        CertificateDer<'static>,
        PrivateKeyDer<'static>,
    ) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &pki.ca, &pki.ca_key).unwrap();
        (
            cert.pem(),
            key.serialize_pem(),
            cert.der().clone(),
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
    }

    /// A TLS fake broker for `localhost`; with `client_ca`, it requires a
    /// client certificate signed by it.
    async fn tls_broker(server_pki: &Pki, client_ca: Option<&Pki>) -> u16 {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (_, _, cert, key) = leaf(server_pki, &["localhost"]);
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.ca.der().clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let server = builder.with_single_cert(vec![cert], key).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        serve(stream, echo_handler()).await;
                    }
                });
            }
        });
        port
    }

    fn tls_config(tls: TlsConfig) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder()
                .security_protocol(SecurityProtocol::Ssl)
                .tls(tls)
                .connection_setup_timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        )
    }

    /// A server that reads the start of the ClientHello, then resets the
    /// connection.
    async fn resetting_server() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                use tokio::io::AsyncReadExt;
                let mut hello = [0u8; 16];
                let _ = tcp.read(&mut hello).await;
                let _ = tcp.set_zero_linger();
                drop(tcp);
            }
        });
        port
    }

    #[tokio::test]
    async fn a_socket_reset_during_the_tls_handshake_is_retriable_and_bootstrap_moves_on() {
        let good = pki("good ca");
        let port = tls_broker(&good, None).await;
        let config = tls_config(TlsConfig {
            ca: Some(PemSource::Pem(good.ca_pem.clone())),
            ..TlsConfig::default()
        });
        let reset = resetting_server().await;
        let err = BrokerConnection::connect(&format!("localhost:{reset}"), config.clone())
            .await
            .unwrap_err();
        assert!(
            err.is_retriable(),
            "a reset during the handshake is not a TLS failure: {err}"
        );
        assert!(!matches!(err, Error::TlsHandshake { .. }), "{err}");

        // Bootstrap: three servers that reset, then the real one.
        let mut servers = Vec::new();
        for _ in 0..3 {
            servers.push(format!("localhost:{}", resetting_server().await));
        }
        servers.push(format!("localhost:{port}"));
        let mut cluster_config = (*config).clone();
        cluster_config.bootstrap_servers = servers;
        let cluster = Cluster::new(cluster_config).unwrap();
        let conn = cluster.any_connection().await.unwrap();
        assert_eq!(conn.broker(), format!("localhost:{port}"));
    }

    #[tokio::test]
    async fn tls_connects_with_the_right_ca_and_name_only() {
        let good = pki("good ca");
        let bad = pki("bad ca");
        let port = tls_broker(&good, None).await;

        // Right CA (from a file), right name.
        let dir =
            std::env::temp_dir().join(format!("ferrokafka-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, &good.ca_pem).unwrap();
        let config = tls_config(TlsConfig {
            ca: Some(PemSource::File(ca_file)),
            ..TlsConfig::default()
        });
        let conn = BrokerConnection::connect(&format!("localhost:{port}"), config)
            .await
            .unwrap();
        assert_eq!(echoed(&conn.send(&tagged("tls")).await.unwrap()), "tls");
        std::fs::remove_dir_all(&dir).unwrap();

        // Wrong CA.
        let config = tls_config(TlsConfig {
            ca: Some(PemSource::Pem(bad.ca_pem.clone())),
            ..TlsConfig::default()
        });
        let err = BrokerConnection::connect(&format!("localhost:{port}"), config)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TlsHandshake { .. }), "{err}");
        assert!(!err.is_retriable());

        // Right CA, wrong name: the certificate is for localhost only.
        let right_ca = TlsConfig {
            ca: Some(PemSource::Pem(good.ca_pem.clone())),
            ..TlsConfig::default()
        };
        let err =
            BrokerConnection::connect(&format!("127.0.0.1:{port}"), tls_config(right_ca.clone()))
                .await
                .unwrap_err();
        assert!(matches!(err, Error::TlsHandshake { .. }), "{err}");

        // Name checking off, explicitly: chain still verified.
        let no_names = TlsConfig {
            verify_hostname: false,
            ..right_ca
        };
        let conn = BrokerConnection::connect(&format!("127.0.0.1:{port}"), tls_config(no_names))
            .await
            .unwrap();
        assert_eq!(echoed(&conn.send(&tagged("x")).await.unwrap()), "x");
        let err = BrokerConnection::connect(
            &format!("127.0.0.1:{port}"),
            tls_config(TlsConfig {
                ca: Some(PemSource::Pem(bad.ca_pem.clone())),
                verify_hostname: false,
                ..TlsConfig::default()
            }),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::TlsHandshake { .. }), "{err}");
    }

    #[tokio::test]
    async fn tls_client_certificates() {
        let server_pki = pki("server ca");
        let client_pki = pki("client ca");
        let port = tls_broker(&server_pki, Some(&client_pki)).await;
        let (cert_pem, key_pem, _, _) = leaf(&client_pki, &["client"]);
        let with_cert = tls_config(TlsConfig {
            ca: Some(PemSource::Pem(server_pki.ca_pem.clone())),
            certificate: Some(PemSource::Pem(cert_pem)),
            key: Some(PemSource::Pem(key_pem)),
            verify_hostname: true,
        });
        let conn = BrokerConnection::connect(&format!("localhost:{port}"), with_cert)
            .await
            .unwrap();
        assert_eq!(echoed(&conn.send(&tagged("mtls")).await.unwrap()), "mtls");

        let without = tls_config(TlsConfig {
            ca: Some(PemSource::Pem(server_pki.ca_pem.clone())),
            ..TlsConfig::default()
        });
        // TLS 1.3: the rejection arrives as an alert after the client's side
        // of the handshake; it is still a TLS error, not a retriable
        // disconnect.
        let err = BrokerConnection::connect(&format!("localhost:{port}"), without)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TlsHandshake { .. }), "{err:?}");
        assert!(!err.is_retriable());
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let err = tls::client_config(&TlsConfig {
            ca: Some(PemSource::Pem("not pem".into())),
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        let err = tls::client_config(&TlsConfig {
            ca: Some(PemSource::File("/nonexistent/ca.pem".into())),
            ..TlsConfig::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
