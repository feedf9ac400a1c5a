//! One connection to one broker, with pipelined requests.
//!
//! # Design
//!
//! The socket is split in two halves, each owned by one task:
//!
//! * the **writer task** takes complete, already encoded frames from a
//!   bounded channel and writes them whole (coalescing whatever is queued
//!   into one flush);
//! * the **reader task** reads size-prefixed frames, peeks at the correlation
//!   id and hands the frame to the oneshot sender registered for that id.
//!
//! A request registers its correlation id *before* its frame is queued, so a
//! response can never arrive for an unknown id. Queueing a frame is atomic:
//! either the whole frame is in the channel or none of it is, and once queued
//! the writer task writes it whatever happens to the caller. Dropping a request
//! future therefore never leaves a half-written frame: before the frame is
//! queued a drop guard unregisters the id; after, the response is still read
//! by the reader task and discarded because its receiver is gone.
//!
//! A request that gets no answer within its timeout closes the connection,
//! as in the Java client: the broker may be gone behind a half-open TCP
//! connection, so the cluster client reconnects rather than waiting on it.
//!
//! When either task fails (EOF, I/O error, oversized frame, unknown
//! correlation id) the connection is marked closed and every pending request
//! fails with a retriable [`Error::Disconnected`] (or the non-retriable
//! [`Error::FrameTooLarge`]). Requests made afterwards fail at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::protocol::frame::peek_correlation_id;
use crate::protocol::messages::{ApiVersionsRequest, ResponseHeader};
use crate::protocol::{encode_request_frame, ApiKey, Decodable, Message, Request};

use super::config::{split_host_port, ClientConfig};
use super::error::{Error, Result};
use super::versions::{interpret_api_versions, ApiVersionsOutcome, ApiVersionsTable};

/// How many encoded frames may wait for the writer task before senders wait.
const WRITE_QUEUE: usize = 256;
/// The writer's buffer: small frames are coalesced into writes of this size.
const WRITE_BUFFER: usize = 64 * 1024;
/// The reader's buffer.
const READ_BUFFER: usize = 64 * 1024;

/// Why a connection closed.
#[derive(Debug, Clone)]
enum Closed {
    Disconnected(String),
    FrameTooLarge {
        size: usize,
        max: usize,
    },
    /// TLS failed before the broker's first response: with TLS 1.3 a broker
    /// that rejects the client certificate says so only after the client's
    /// side of the handshake has finished, in an alert the first read meets.
    Tls(String),
}

impl Closed {
    fn to_error(&self, broker: &str) -> Error {
        match self {
            Closed::Disconnected(reason) => Error::Disconnected {
                broker: broker.to_owned(),
                reason: reason.clone(),
            },
            Closed::FrameTooLarge { size, max } => Error::FrameTooLarge {
                broker: broker.to_owned(),
                size: *size,
                max: *max,
            },
            Closed::Tls(reason) => Error::TlsHandshake {
                broker: broker.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason.clone()),
            },
        }
    }
}

struct Pending {
    tx: oneshot::Sender<Result<Bytes>>,
}

struct State {
    pending: HashMap<i32, Pending>,
    closed: Option<Closed>,
    next_correlation_id: i32,
    /// When a request was last sent or answered.
    last_active: Instant,
}

/// State shared by the handle and both tasks.
struct Shared {
    broker: String,
    state: Mutex<State>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single map operation), so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Allocates a correlation id and registers its response slot, unless
    /// the connection is closed.
    fn register(&self) -> Result<(i32, oneshot::Receiver<Result<Bytes>>)> {
        let mut state = self.lock();
        if let Some(closed) = &state.closed {
            return Err(closed.to_error(&self.broker));
        }
        let mut id = state.next_correlation_id;
        while state.pending.contains_key(&id) {
            id = id.wrapping_add(1).max(0);
        }
        state.next_correlation_id = id.wrapping_add(1).max(0);
        state.last_active = Instant::now();
        let (tx, rx) = oneshot::channel();
        state.pending.insert(id, Pending { tx });
        Ok((id, rx))
    }

    /// Allocates a correlation id for a request without a response.
    fn next_id(&self) -> Result<i32> {
        let mut state = self.lock();
        if let Some(closed) = &state.closed {
            return Err(closed.to_error(&self.broker));
        }
        let id = state.next_correlation_id;
        state.next_correlation_id = id.wrapping_add(1).max(0);
        state.last_active = Instant::now();
        Ok(id)
    }

    fn unregister(&self, id: i32) {
        self.lock().pending.remove(&id);
    }

    /// Marks the connection closed and fails every pending request. The first
    /// reason wins.
    fn close(&self, reason: Closed) {
        let (pending, closed) = {
            let mut state = self.lock();
            if state.closed.is_none() {
                tracing::debug!(broker = %self.broker, reason = ?reason, "connection closed");
                state.closed = Some(reason);
            }
            let closed = state
                .closed
                .clone()
                .unwrap_or(Closed::Disconnected(String::new()));
            (std::mem::take(&mut state.pending), closed)
        };
        for (_, p) in pending {
            let _ = p.tx.send(Err(closed.to_error(&self.broker)));
        }
        self.shutdown.send_replace(true);
    }

    fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }
}

/// Unregisters a correlation id if the request is dropped before its frame
/// reached the writer's queue.
struct RegistrationGuard<'a> {
    shared: &'a Shared,
    id: i32,
    armed: bool,
}

impl Drop for RegistrationGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.unregister(self.id);
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
    frames: mpsc::Sender<Bytes>,
    reader: AbortHandle,
    config: Arc<ClientConfig>,
    versions: OnceLock<ApiVersionsTable>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer ends by itself once the queue's sender is gone, after
        // writing what was queued.
        self.reader.abort();
        self.shared
            .close(Closed::Disconnected("connection handle dropped".into()));
    }
}

/// A connection to one broker that pipelines requests.
///
/// Cloning is cheap and shares the connection; it closes when the last clone
/// is dropped. Every method takes `&self`, so many tasks can have requests in
/// flight at once; responses are matched by correlation id.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrokafka::network::Error> {
/// use std::sync::Arc;
/// use ferrokafka::network::{BrokerConnection, ClientConfig};
/// use ferrokafka::protocol::messages::MetadataRequest;
///
/// let config = Arc::new(ClientConfig::default());
/// let conn = BrokerConnection::connect("localhost:9092", config).await?;
/// let metadata = conn.send(&MetadataRequest::default().with_topics(Some(vec![]))).await?;
/// println!("{} brokers", metadata.brokers.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BrokerConnection {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BrokerConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerConnection")
            .field("broker", &self.inner.shared.broker)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl BrokerConnection {
    /// Connects to `addr` (`host:port`): TCP (with `TCP_NODELAY`), TLS when the
    /// security protocol asks for it, ApiVersions negotiation and SASL, all
    /// within `socket.connection.setup.timeout.ms`.
    pub async fn connect(addr: &str, config: Arc<ClientConfig>) -> Result<Self> {
        let tls = if config.security_protocol.uses_tls() {
            Some(super::tls::connector(&config.tls)?)
        } else {
            None
        };
        Self::connect_with(addr, config, tls.as_ref()).await
    }

    /// [`BrokerConnection::connect`] with a prepared TLS connector (so a pool
    /// reads certificates once).
    pub(crate) async fn connect_with(
        addr: &str,
        config: Arc<ClientConfig>,
        tls: Option<&tokio_rustls::TlsConnector>,
    ) -> Result<Self> {
        let span = tracing::info_span!("kafka_connect", broker = %addr);
        let limit = config.connection_setup_timeout;
        let started = Instant::now();
        let attempt = async {
            let (host, port) = split_host_port(addr).map_err(|reason| {
                Error::Config(super::config::ConfigError::InvalidValue {
                    key: "broker address".into(),
                    value: addr.to_owned(),
                    reason,
                })
            })?;
            let tcp = TcpStream::connect((host, port))
                .await
                .map_err(|source| Error::Connect {
                    broker: addr.to_owned(),
                    source,
                })?;
            tcp.set_nodelay(true).map_err(|source| Error::Connect {
                broker: addr.to_owned(),
                source,
            })?;
            match tls {
                Some(connector) => {
                    let name = super::tls::server_name(host)?;
                    let stream = connector.connect(name, tcp).await.map_err(|source| {
                        Error::TlsHandshake {
                            broker: addr.to_owned(),
                            source,
                        }
                    })?;
                    Self::start(stream, addr, config.clone()).await
                }
                None => Self::start(tcp, addr, config.clone()).await,
            }
        }
        .instrument(span.clone());
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(conn)) => {
                span.in_scope(|| {
                    tracing::debug!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "connected"
                    )
                });
                Ok(conn)
            }
            Ok(Err(e)) => {
                span.in_scope(|| tracing::debug!(error = %e, "connection failed"));
                Err(e)
            }
            Err(_) => Err(Error::ConnectTimeout {
                broker: addr.to_owned(),
                timeout: limit,
            }),
        }
    }

    /// Runs the Kafka protocol over an already established byte stream (a TCP
    /// or TLS stream, an in-memory pipe, a proxy tunnel): negotiates versions
    /// and authenticates like [`BrokerConnection::connect`]. `broker` names
    /// the peer in errors and logs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use ferrokafka::network::{BrokerConnection, ClientConfig, Error};
    ///
    /// let (client, server) = tokio::io::duplex(1024);
    /// drop(server); // nobody answers
    /// let err = BrokerConnection::from_stream(client, "in-memory", Arc::new(ClientConfig::default()))
    ///     .await
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Disconnected { .. }));
    /// # }
    /// ```
    pub async fn from_stream<S>(
        stream: S,
        broker: impl Into<String>,
        config: Arc<ClientConfig>,
    ) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let broker = broker.into();
        let limit = config.connection_setup_timeout;
        match tokio::time::timeout(limit, Self::start(stream, &broker, config)).await {
            Ok(result) => result,
            Err(_) => Err(Error::ConnectTimeout {
                broker,
                timeout: limit,
            }),
        }
    }

    /// Spawns the tasks, then negotiates versions and authenticates.
    async fn start<S>(stream: S, broker: &str, config: Arc<ClientConfig>) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let conn = Self::spawn(stream, broker, config);
        conn.negotiate_versions().await?;
        if conn.inner.config.security_protocol.uses_sasl() {
            let sasl = conn.inner.config.sasl.clone().ok_or(Error::Config(
                super::config::ConfigError::Missing("SASL credentials"),
            ))?;
            super::sasl::authenticate(&conn, &sasl).await?;
        }
        Ok(conn)
    }

    /// Spawns the reader and writer tasks over `stream`, without any handshake.
    pub(crate) fn spawn<S>(stream: S, broker: &str, config: Arc<ClientConfig>) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read_half, write_half) = tokio::io::split(stream);
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            broker: broker.to_owned(),
            state: Mutex::new(State {
                pending: HashMap::new(),
                closed: None,
                next_correlation_id: 0,
                last_active: Instant::now(),
            }),
            shutdown,
        });
        let span = tracing::info_span!("kafka_connection", broker = %broker);
        let (frames_tx, frames_rx) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(write_loop(write_half, frames_rx, shared.clone()).instrument(span.clone()));
        let reader = tokio::spawn(
            read_loop(read_half, shared.clone(), config.max_response_size).instrument(span),
        )
        .abort_handle();
        BrokerConnection {
            inner: Arc::new(Inner {
                shared,
                frames: frames_tx,
                reader,
                config,
                versions: OnceLock::new(),
            }),
        }
    }

    /// Sends ApiVersions, stepping down when the broker rejects the version.
    async fn negotiate_versions(&self) -> Result<()> {
        let mut version = ApiKey::ApiVersions.stable_versions().max;
        let request = ApiVersionsRequest::default()
            .with_client_software_name(sanitize_software_field(
                &self.inner.config.client_software_name,
            ))
            .with_client_software_version(sanitize_software_field(
                &self.inner.config.client_software_version,
            ));
        // Each step strictly lowers the version, so this ends.
        loop {
            let frame = self
                .round_trip(&request, version, self.inner.config.request_timeout)
                .await?;
            match interpret_api_versions(frame, version, self.broker())? {
                ApiVersionsOutcome::Done(response) => {
                    let table = ApiVersionsTable::from_response(&response);
                    tracing::debug!(
                        broker = %self.broker(),
                        api_versions_version = version,
                        apis = response.api_keys.len(),
                        "negotiated API versions"
                    );
                    let _ = self.inner.versions.set(table);
                    return Ok(());
                }
                ApiVersionsOutcome::Retry(next) => {
                    tracing::debug!(
                        rejected = version,
                        next,
                        "broker rejected ApiVersions version"
                    );
                    version = next;
                }
            }
        }
    }

    /// The broker's address as given to `connect`.
    pub fn broker(&self) -> &str {
        &self.inner.shared.broker
    }

    /// The configuration this connection was opened with.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.inner.config
    }

    /// Whether the connection is closed; requests on it fail at once.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// How many requests wait for a response (including abandoned ones whose
    /// response has not arrived yet).
    pub fn in_flight(&self) -> usize {
        self.inner.shared.lock().pending.len()
    }

    /// How long the connection has had nothing to do: `None` while a request
    /// is in flight, else the time since the last request was sent or answered.
    pub fn idle_for(&self) -> Option<Duration> {
        let state = self.inner.shared.lock();
        state
            .pending
            .is_empty()
            .then(|| state.last_active.elapsed())
    }

    /// Closes the connection: pending requests fail with
    /// [`Error::Disconnected`].
    pub fn close(&self) {
        self.inner
            .shared
            .close(Closed::Disconnected("closed by the client".into()));
    }

    /// The version ranges the broker advertised.
    pub fn api_versions(&self) -> Option<&ApiVersionsTable> {
        self.inner.versions.get()
    }

    /// The version [`BrokerConnection::send`] uses for `api`, or `None` if
    /// there is no common version.
    pub fn negotiated_version(&self, api: ApiKey) -> Option<i16> {
        self.api_versions()?.negotiate(api).ok()
    }

    fn version_for(&self, api: ApiKey) -> Result<i16> {
        match self.api_versions() {
            Some(table) => table.negotiate(api),
            None => Err(Error::UnsupportedVersion {
                api,
                client: api.stable_versions(),
                broker: None,
            }),
        }
    }

    /// Sends `request` in the highest version both sides support and waits
    /// for its response, at most `request.timeout.ms`.
    ///
    /// Cancellation safe: dropping the future at any point leaves the
    /// connection usable.
    pub async fn send<R: Request>(&self, request: &R) -> Result<R::Response> {
        let version = self.version_for(R::API_KEY)?;
        self.send_with_version(request, version).await
    }

    /// Like [`BrokerConnection::send`] with an explicit timeout.
    pub async fn send_with_timeout<R: Request>(
        &self,
        request: &R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let version = self.version_for(R::API_KEY)?;
        self.send_with_version_timeout(request, version, timeout)
            .await
    }

    /// Sends `request` in `version` (not checked against the broker's range).
    pub async fn send_with_version<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<R::Response> {
        self.send_with_version_timeout(request, version, self.inner.config.request_timeout)
            .await
    }

    /// Sends `request` in `version` and waits at most `timeout`.
    pub async fn send_with_version_timeout<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let span = tracing::debug_span!(
            "kafka_request",
            api = R::API_KEY.name(),
            version,
            broker = %self.broker(),
        );
        async {
            let started = Instant::now();
            let result = self.round_trip(request, version, timeout).await;
            let latency_us = started.elapsed().as_micros() as u64;
            match &result {
                Ok(_) => tracing::debug!(latency_us, "response received"),
                Err(e) => tracing::debug!(latency_us, error = %e, "request failed"),
            }
            self.decode_response::<R>(result?, version)
        }
        .instrument(span)
        .await
    }

    /// Sends a request that gets no response (Produce with `acks=0`), in the
    /// negotiated version. Returns once the frame is queued for writing; it
    /// is then written whatever happens to the caller.
    pub async fn send_no_response<R: Request>(&self, request: &R) -> Result<()> {
        let version = self.version_for(R::API_KEY)?;
        self.send_no_response_with_version(request, version).await
    }

    /// [`BrokerConnection::send_no_response`] in an explicit version.
    pub async fn send_no_response_with_version<R: Request>(
        &self,
        request: &R,
        version: i16,
    ) -> Result<()> {
        let shared = &self.inner.shared;
        let id = shared.next_id()?;
        let frame = self.encode(request, id, version)?;
        tracing::debug!(api = R::API_KEY.name(), version, correlation_id = id, broker = %self.broker(), "sending request without response");
        self.inner
            .frames
            .send(frame)
            .await
            .map_err(|_| self.closed_error())
    }

    fn encode<R: Request>(&self, request: &R, id: i32, version: i16) -> Result<Bytes> {
        let mut buf = BytesMut::with_capacity(256);
        encode_request_frame(
            &mut buf,
            id,
            Some(&self.inner.config.client_id),
            version,
            request,
        )
        .map_err(|source| Error::Encode {
            api: R::API_KEY,
            version,
            source,
        })?;
        Ok(buf.freeze())
    }

    fn closed_error(&self) -> Error {
        let closed = self.inner.shared.lock().closed.clone();
        closed
            .unwrap_or_else(|| Closed::Disconnected("writer stopped".into()))
            .to_error(self.broker())
    }

    /// Registers, queues and awaits one request; returns the response frame
    /// (header included, size prefix excluded).
    async fn round_trip<R: Request>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<Bytes> {
        let shared = &*self.inner.shared;
        let (id, rx) = shared.register()?;
        let mut guard = RegistrationGuard {
            shared,
            id,
            armed: true,
        };
        let frame = self.encode(request, id, version)?;
        let exchange = async {
            // Cancel safe: if this is dropped, the frame was not queued.
            self.inner
                .frames
                .send(frame)
                .await
                .map_err(|_| self.closed_error())?;
            // Queued: the writer will send it, so the response must be read
            // by the reader task even if nobody waits for it any more.
            guard.armed = false;
            match rx.await {
                Ok(result) => result,
                Err(_) => Err(self.closed_error()),
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                // As the Java client does: a broker that does not answer within
                // the request timeout is treated as gone (it may be a half-open
                // TCP connection that would never fail by itself). The other
                // requests on this connection fail with a retriable error and
                // the cluster client opens a new connection.
                self.inner.shared.close(Closed::Disconnected(format!(
                    "no response to {} within {timeout:?}",
                    R::API_KEY.name()
                )));
                Err(Error::RequestTimeout {
                    api: R::API_KEY,
                    broker: self.broker().to_owned(),
                    timeout,
                })
            }
        }
    }

    fn decode_response<R: Request>(&self, mut frame: Bytes, version: i16) -> Result<R::Response> {
        let decode_err = |source| Error::Decode {
            api: R::API_KEY,
            version,
            broker: self.broker().to_owned(),
            source,
        };
        ResponseHeader::decode(&mut frame, R::API_KEY.response_header_version(version))
            .map_err(decode_err)?;
        R::Response::from_bytes(frame, version).map_err(decode_err)
    }
}

/// KIP-511 restricts the software name and version to
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`; replace anything else.
fn sanitize_software_field(value: &str) -> String {
    let mapped: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "unknown".to_owned()
    } else {
        trimmed.to_owned()
    }
}

async fn write_loop<W>(write_half: W, mut frames: mpsc::Receiver<Bytes>, shared: Arc<Shared>)
where
    W: AsyncWrite + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write_half);
    let reason = loop {
        let frame = tokio::select! {
            biased;
            frame = frames.recv() => frame,
            _ = shutdown.wait_for(|closed| *closed) => break None,
        };
        let Some(frame) = frame else {
            break Some("connection handle dropped".to_owned());
        };
        if let Err(e) = out.write_all(&frame).await {
            break Some(format!("write failed: {e}"));
        }
        // Whatever else is already queued goes out with the same flush.
        let mut failed = None;
        while let Ok(frame) = frames.try_recv() {
            if let Err(e) = out.write_all(&frame).await {
                failed = Some(format!("write failed: {e}"));
                break;
            }
        }
        if failed.is_some() {
            break failed;
        }
        if let Err(e) = out.flush().await {
            break Some(format!("write failed: {e}"));
        }
    };
    let _ = out.shutdown().await;
    if let Some(reason) = reason {
        shared.close(Closed::Disconnected(reason));
    }
}

async fn read_loop<Rd>(read_half: Rd, shared: Arc<Shared>, max_frame: usize)
where
    Rd: AsyncRead + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut input = BufReader::with_capacity(READ_BUFFER, read_half);
    let mut first = true;
    let reason = loop {
        let frame = tokio::select! {
            frame = read_frame(&mut input, max_frame) => frame,
            _ = shutdown.wait_for(|closed| *closed) => return,
        };
        let frame = match frame {
            Ok(frame) => frame,
            // Once a response has arrived, TLS was set up: later failures
            // are broken connections like any other.
            Err(ReadError::Tls(reason)) if first => break Closed::Tls(reason),
            Err(ReadError::Tls(reason)) => {
                break Closed::Disconnected(format!("read failed: {reason}"))
            }
            Err(ReadError::Closed(closed)) => break closed,
        };
        first = false;
        let id = match peek_correlation_id(&frame) {
            Ok(id) => id,
            Err(_) => {
                break Closed::Disconnected("response frame shorter than its header".into());
            }
        };
        let pending = {
            let mut state = shared.lock();
            state.last_active = Instant::now();
            state.pending.remove(&id)
        };
        match pending {
            // A dropped receiver means the caller gave up: discard.
            Some(p) => {
                let _ = p.tx.send(Ok(frame));
            }
            None => {
                break Closed::Disconnected(format!(
                    "response with unknown correlation id {id}; connection out of sync"
                ));
            }
        }
    };
    shared.close(reason);
}

/// Why reading a frame failed.
#[derive(Debug)]
enum ReadError {
    /// The TLS layer failed (an alert from the broker, a bad record).
    Tls(String),
    Closed(Closed),
}

impl From<Closed> for ReadError {
    fn from(closed: Closed) -> Self {
        ReadError::Closed(closed)
    }
}

/// Whether `e` comes from rustls rather than from the socket.
fn is_tls_error(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

async fn read_frame<Rd>(input: &mut Rd, max_frame: usize) -> std::result::Result<Bytes, ReadError>
where
    Rd: AsyncRead + Unpin,
{
    let mut prefix = [0u8; 4];
    input.read_exact(&mut prefix).await.map_err(|e| {
        if is_tls_error(&e) {
            ReadError::Tls(e.to_string())
        } else if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Closed::Disconnected("closed by the broker".to_owned()).into()
        } else {
            Closed::Disconnected(format!("read failed: {e}")).into()
        }
    })?;
    let size = i32::from_be_bytes(prefix);
    let size = usize::try_from(size)
        .map_err(|_| Closed::Disconnected(format!("negative frame size {size}")))?;
    if size > max_frame {
        return Err(Closed::FrameTooLarge {
            size,
            max: max_frame,
        }
        .into());
    }
    let mut frame = BytesMut::zeroed(size);
    input
        .read_exact(&mut frame)
        .await
        .map_err(|e| Closed::Disconnected(format!("read failed mid-frame: {e}")))?;
    Ok(frame.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_fields_follow_kip_511() {
        assert_eq!(sanitize_software_field("ferrokafka"), "ferrokafka");
        assert_eq!(sanitize_software_field("0.1.0-rc.1"), "0.1.0-rc.1");
        assert_eq!(sanitize_software_field(" my app/2 "), "my-app-2");
        assert_eq!(sanitize_software_field("--"), "unknown");
    }

    #[tokio::test]
    async fn frames_are_size_prefixed_and_bounded() {
        let mut data: &[u8] = &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 9];
        assert_eq!(&read_frame(&mut data, 8).await.unwrap()[..], &[1, 2, 3]);
        assert!(matches!(
            read_frame(&mut data, 8).await,
            Err(ReadError::Closed(Closed::FrameTooLarge { size: 9, max: 8 }))
        ));
        let mut data: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut data, 8).await,
            Err(ReadError::Closed(Closed::Disconnected(_)))
        ));
        let mut data: &[u8] = &[0, 0, 0, 4, 1];
        assert!(matches!(
            read_frame(&mut data, 8).await,
            Err(ReadError::Closed(Closed::Disconnected(_)))
        ));
    }

    /// Reads fail with `error`.
    struct Failing(Option<std::io::Error>);

    impl AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Err(self.0.take().expect("read once")))
        }
    }

    #[tokio::test]
    async fn tls_failures_are_told_apart_from_socket_failures() {
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        let mut input = Failing(Some(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            alert,
        )));
        match read_frame(&mut input, 8).await {
            Err(ReadError::Tls(reason)) => {
                assert!(reason.contains("CertificateRequired"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let mut input = Failing(Some(std::io::ErrorKind::ConnectionReset.into()));
        assert!(matches!(
            read_frame(&mut input, 8).await,
            Err(ReadError::Closed(Closed::Disconnected(_)))
        ));
        let broker = "b:1";
        assert!(matches!(
            Closed::Tls("alert".into()).to_error(broker),
            Error::TlsHandshake { .. }
        ));
    }
}
