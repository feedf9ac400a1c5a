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
//! Frames leave in the order they were queued. [`BrokerConnection::submit`]
//! returns once its frame is queued, so a task that submits A, then B, has A
//! written before B whichever [`ResponseHandle`] it awaits first (an
//! idempotent producer relies on it). A connection opened for
//! [`ConnectionRole::Produce`] caps its requests in flight at
//! `max.in.flight.requests.per.connection`: `submit` waits for a free slot,
//! which the reader task releases when the answer arrives.
//!
//! A request that gets no answer within its timeout closes the connection,
//! as in the Java client: the broker may be gone behind a half-open TCP
//! connection, so the cluster client reconnects rather than waiting on it.
//!
//! When either task fails (EOF, I/O error, unknown correlation id) the
//! connection is marked closed and every pending request fails with a
//! retriable [`Error::Disconnected`]. A response frame larger than
//! `receive.message.max.bytes` fails the request it answers with
//! [`Error::FrameTooLarge`] and the others with `Disconnected`. Requests made
//! afterwards fail at once. Closing (by [`BrokerConnection::close`], a
//! request timeout, or dropping the last handle) stops both tasks at once,
//! even a write blocked on a broker that stopped reading, and so releases the
//! socket.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::protocol::frame::encode_request_frame_spliced;
use crate::protocol::frame::peek_correlation_id;
use crate::protocol::messages::{ApiVersionsRequest, ResponseHeader};
use crate::protocol::{encode_request_frame, ApiKey, Decodable, DecodeError, Request, Response};

use super::config::{split_host_port, ClientConfig};
use super::error::{Error, Result};
use super::options::{ConnectionRole, RequestOptions};
use super::versions::{interpret_api_versions, ApiVersionsOutcome, ApiVersionsTable};

/// How many encoded frames may wait for the writer task before senders wait.
const WRITE_QUEUE: usize = 256;
/// The writer's buffer: small frames are coalesced into writes of this size.
const WRITE_BUFFER: usize = 64 * 1024;
/// The reader's buffer.
const READ_BUFFER: usize = 64 * 1024;
/// Responses at least this large are read into recycled buffers (see [`FrameBuffers`]).
const RECYCLED_FRAME_MIN: usize = 256 * 1024;
/// How many large response buffers a connection holds on to for reuse.
const RECYCLED_FRAMES: usize = 4;
/// How long a writer that stops on its own (the broker closed, a write
/// failed) spends shutting its half down (a TLS close_notify).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(100);

/// Why a connection closed.
#[derive(Debug, Clone)]
enum Closed {
    Disconnected(String),
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
            Closed::Tls(reason) => Error::TlsHandshake {
                broker: broker.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason.clone()),
            },
        }
    }
}

struct Pending {
    tx: oneshot::Sender<Result<Bytes>>,
    /// The in-flight slot of a capped connection, released with the answer.
    _slot: Option<OwnedSemaphorePermit>,
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
    /// The in-flight cap (Produce connections only).
    slots: Option<Arc<Semaphore>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every critical section is a single map operation), so keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Allocates a correlation id and registers its response slot, unless
    /// the connection is closed.
    fn register(
        &self,
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<(i32, oneshot::Receiver<Result<Bytes>>)> {
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
        state.pending.insert(id, Pending { tx, _slot: slot });
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
        self.close_failing(reason, None);
    }

    /// [`Shared::close`], failing request `special` with its own error.
    fn close_failing(&self, reason: Closed, special: Option<(i32, Error)>) {
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
        let mut special = special;
        for (id, p) in pending {
            let error = match special.take() {
                Some((special_id, e)) if special_id == id => e,
                other => {
                    special = other;
                    closed.to_error(&self.broker)
                }
            };
            let _ = p.tx.send(Err(error));
        }
        if let Some(slots) = &self.slots {
            slots.close();
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
    frames: mpsc::Sender<Frame>,
    reader: AbortHandle,
    config: Arc<ClientConfig>,
    versions: OnceLock<ApiVersionsTable>,
    role: ConnectionRole,
    /// Dies when both tasks have ended (and so the socket is released).
    #[cfg_attr(not(test), allow(dead_code))]
    tasks: std::sync::Weak<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Nobody can send or wait any more: stop both tasks now (the writer
        // does not finish writing what was queued; a producer that cares
        // about acks=0 frames keeps its connection until they are written).
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
/// use ferrokafka::network::{BrokerConnection, ClientConfig, RequestOptions};
/// use ferrokafka::protocol::messages::MetadataRequest;
///
/// let config = Arc::new(ClientConfig::default());
/// let conn = BrokerConnection::connect("localhost:9092", config).await?;
/// let request = MetadataRequest::default().with_topics(Some(vec![]));
/// let metadata = conn.send(&request).await?;
/// println!("{} brokers", metadata.brokers.len());
/// // The same in version 9, waiting at most 5 s.
/// let options = RequestOptions::default()
///     .with_version(9)
///     .with_timeout(std::time::Duration::from_secs(5));
/// conn.send_with(&request, options).await?;
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
            .field("role", &self.inner.role)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The answer to a request queued by [`BrokerConnection::submit`].
///
/// A future resolving with the decoded response or a typed error; the
/// request timeout runs from the moment the frame was queued, and expiring
/// it closes the connection (as [`BrokerConnection::send_with`] does).
/// Dropping the handle discards the answer; the request still occupies its
/// in-flight slot until the broker answers.
#[must_use = "a response handle does nothing unless awaited"]
pub struct ResponseHandle<T> {
    raw: RawHandle,
    version: i16,
    _response: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for ResponseHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseHandle")
            .field("broker", &self.raw.conn.broker())
            .field("api", &self.raw.api)
            .field("correlation_id", &self.raw.correlation_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<T> ResponseHandle<T> {
    /// The correlation id the request was sent with.
    pub fn correlation_id(&self) -> i32 {
        self.raw.correlation_id
    }

    /// The version the request was sent in.
    pub fn version(&self) -> i16 {
        self.version
    }
}

impl<T: Response> Future for ResponseHandle<T> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.raw).poll(cx) {
            Poll::Ready(Ok(frame)) => {
                Poll::Ready(this.raw.conn.decode_response::<T>(frame, this.version))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl BrokerConnection {
    /// Connects to `addr` (`host:port`): TCP (with `TCP_NODELAY`), TLS when the
    /// security protocol asks for it, ApiVersions negotiation and SASL, all
    /// within `socket.connection.setup.timeout.ms`. The connection has the
    /// [`ConnectionRole::General`] role (no in-flight cap).
    ///
    /// When `host` resolves to several addresses, each is tried in turn
    /// with an equal share of what is left of the setup timeout (the Java
    /// client's `client.dns.lookup=use_all_dns_ips`).
    pub async fn connect(addr: &str, config: Arc<ClientConfig>) -> Result<Self> {
        Self::connect_for(addr, config, ConnectionRole::General).await
    }

    /// [`BrokerConnection::connect`] for a role: a
    /// [`ConnectionRole::Produce`] connection caps its requests in flight at
    /// `max.in.flight.requests.per.connection`.
    pub async fn connect_for(
        addr: &str,
        config: Arc<ClientConfig>,
        role: ConnectionRole,
    ) -> Result<Self> {
        let tls = if config.security_protocol.uses_tls() {
            Some(super::tls::connector(&config.tls)?)
        } else {
            None
        };
        Self::connect_with(addr, config, tls.as_ref(), role).await
    }

    /// [`BrokerConnection::connect_for`] with a prepared TLS connector (so a
    /// pool reads certificates once).
    pub(crate) async fn connect_with(
        addr: &str,
        config: Arc<ClientConfig>,
        tls: Option<&tokio_rustls::TlsConnector>,
        role: ConnectionRole,
    ) -> Result<Self> {
        let span = tracing::info_span!("kafka_connect", broker = %addr, role = role.name());
        let limit = config.connection_setup_timeout;
        let started = Instant::now();
        let deadline = started + limit;
        let attempt = async {
            let (host, port) = split_host_port(addr).map_err(|reason| {
                Error::Config(super::config::ConfigError::InvalidValue {
                    key: "broker address".into(),
                    value: addr.to_owned(),
                    reason,
                })
            })?;
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|source| Error::Connect {
                    broker: addr.to_owned(),
                    source,
                })?
                .collect();
            Self::connect_addresses(addr, host, &resolved, deadline, &config, tls, role).await
        }
        .instrument(span.clone());
        match tokio::time::timeout_at(deadline.into(), attempt).await {
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

    /// Tries each resolved address in turn, giving each an equal share of
    /// the time left before `deadline`; returns the first connection set up,
    /// or the last failure.
    pub(crate) async fn connect_addresses(
        addr: &str,
        host: &str,
        resolved: &[SocketAddr],
        deadline: Instant,
        config: &Arc<ClientConfig>,
        tls: Option<&tokio_rustls::TlsConnector>,
        role: ConnectionRole,
    ) -> Result<Self> {
        let mut last = None;
        for (i, ip) in resolved.iter().enumerate() {
            let left = (resolved.len() - i) as u32;
            let share = deadline.saturating_duration_since(Instant::now()) / left;
            let attempt = Self::connect_address(addr, host, *ip, config.clone(), tls, role);
            match tokio::time::timeout(share, attempt).await {
                Ok(Ok(conn)) => return Ok(conn),
                // Wrong credentials or certificates are the same on every
                // address.
                Ok(Err(e)) if !e.is_retriable() => return Err(e),
                Ok(Err(e)) => {
                    tracing::debug!(address = %ip, error = %e, "address failed; trying the next");
                    last = Some(e);
                }
                Err(_) => {
                    tracing::debug!(address = %ip, share_ms = share.as_millis() as u64, "address timed out; trying the next");
                    last = Some(Error::ConnectTimeout {
                        broker: addr.to_owned(),
                        timeout: share,
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Connect {
            broker: addr.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{host} resolved to no address"),
            ),
        }))
    }

    /// Sets up a connection to one resolved address.
    async fn connect_address(
        addr: &str,
        host: &str,
        ip: SocketAddr,
        config: Arc<ClientConfig>,
        tls: Option<&tokio_rustls::TlsConnector>,
        role: ConnectionRole,
    ) -> Result<Self> {
        let connect_error = |source| Error::Connect {
            broker: addr.to_owned(),
            source,
        };
        let tcp = TcpStream::connect(ip).await.map_err(connect_error)?;
        tcp.set_nodelay(true).map_err(connect_error)?;
        match tls {
            Some(connector) => {
                let name = super::tls::server_name(host)?;
                let stream = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|source| handshake_error(addr, source))?;
                Self::start(stream, addr, config, role).await
            }
            None => Self::start(tcp, addr, config, role).await,
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
        Self::from_stream_for(stream, broker, config, ConnectionRole::General).await
    }

    /// [`BrokerConnection::from_stream`] for a role (see
    /// [`BrokerConnection::connect_for`]).
    pub async fn from_stream_for<S>(
        stream: S,
        broker: impl Into<String>,
        config: Arc<ClientConfig>,
        role: ConnectionRole,
    ) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let broker = broker.into();
        let limit = config.connection_setup_timeout;
        match tokio::time::timeout(limit, Self::start(stream, &broker, config, role)).await {
            Ok(result) => result,
            Err(_) => Err(Error::ConnectTimeout {
                broker,
                timeout: limit,
            }),
        }
    }

    /// Spawns the tasks, then negotiates versions and authenticates.
    async fn start<S>(
        stream: S,
        broker: &str,
        config: Arc<ClientConfig>,
        role: ConnectionRole,
    ) -> Result<Self>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let conn = Self::spawn(stream, broker, config, role);
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
    pub(crate) fn spawn<S>(
        stream: S,
        broker: &str,
        config: Arc<ClientConfig>,
        role: ConnectionRole,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read_half, write_half) = tokio::io::split(stream);
        let (shutdown, _) = watch::channel(false);
        let slots = (role == ConnectionRole::Produce).then(|| {
            Arc::new(Semaphore::new(
                config.max_in_flight_requests_per_connection.max(1),
            ))
        });
        let shared = Arc::new(Shared {
            broker: broker.to_owned(),
            state: Mutex::new(State {
                pending: HashMap::new(),
                closed: None,
                next_correlation_id: 0,
                last_active: Instant::now(),
            }),
            shutdown,
            slots,
        });
        let span = tracing::info_span!("kafka_connection", broker = %broker, role = role.name());
        let (shared_for_writer, shared_for_reader) = (shared.clone(), shared.clone());
        let max_response_size = config.max_response_size;
        let (frames_tx, frames_rx) = mpsc::channel(WRITE_QUEUE);
        let token = Arc::new(());
        let tasks = Arc::downgrade(&token);
        let writer_token = token.clone();
        tokio::spawn(
            async move {
                write_loop(write_half, frames_rx, shared_for_writer).await;
                drop(writer_token);
            }
            .instrument(span.clone()),
        );
        let reader = tokio::spawn(
            async move {
                read_loop(read_half, shared_for_reader, max_response_size).await;
                drop(token);
            }
            .instrument(span),
        )
        .abort_handle();
        BrokerConnection {
            inner: Arc::new(Inner {
                shared,
                frames: frames_tx,
                reader,
                config,
                versions: OnceLock::new(),
                role,
                tasks,
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
            let timeout = self.inner.config.request_timeout;
            let deadline = Instant::now() + timeout;
            let handle = self
                .queue(&request, &[], version, (deadline, timeout), None)
                .await?;
            let frame = handle.await?;
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

    /// The role this connection was opened for.
    pub fn role(&self) -> ConnectionRole {
        self.inner.role
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

    /// The cap on requests in flight: `max.in.flight.requests.per.connection`
    /// for a [`ConnectionRole::Produce`] connection, `usize::MAX` (no cap)
    /// for the other roles.
    pub fn max_in_flight(&self) -> usize {
        match &self.inner.shared.slots {
            Some(_) => self
                .inner
                .config
                .max_in_flight_requests_per_connection
                .max(1),
            None => usize::MAX,
        }
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
    /// [`Error::Disconnected`], and both tasks end, releasing the socket.
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

    fn version_for(&self, api: ApiKey, chosen: Option<i16>) -> Result<i16> {
        if let Some(version) = chosen {
            return Ok(version);
        }
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
        self.send_with(request, RequestOptions::default()).await
    }

    /// Sends `request` with `options` (version, timeout; the role is the
    /// connection's own and ignored here) and waits for its response.
    ///
    /// The timeout covers waiting for an in-flight slot, queueing and the
    /// answer. Cancellation safe, like [`BrokerConnection::send`].
    pub async fn send_with<R: Request>(
        &self,
        request: &R,
        options: RequestOptions,
    ) -> Result<R::Response> {
        let version = self.version_for(R::API_KEY, options.version)?;
        let span = self.request_span(R::API_KEY, version);
        async {
            let started = Instant::now();
            let result = match self.submit_in(request, &[], version, options.timeout).await {
                Ok(handle) => handle.await,
                Err(e) => Err(e),
            };
            log_outcome(started, result.as_ref().err());
            result
        }
        .instrument(span)
        .await
    }

    /// The span a request runs in (outside the generic code, so the tracing
    /// machinery is compiled once rather than per request type).
    fn request_span(&self, api: ApiKey, version: i16) -> tracing::Span {
        tracing::debug_span!(
            "kafka_request",
            api = api.name(),
            version,
            broker = %self.broker(),
        )
    }

    /// Ordered pipelining: waits for an in-flight slot (the cap of a
    /// [`ConnectionRole::Produce`] connection), queues the frame and returns
    /// at once with a handle for the answer.
    ///
    /// Frames leave in the order their `submit` calls returned, whichever
    /// handle is awaited first. The request timeout (`options.timeout`, else
    /// `request.timeout.ms`) covers the wait for a slot and the answer.
    /// Dropping this future before it returns queues nothing.
    ///
    /// ```no_run
    /// # async fn demo(conn: ferrokafka::network::BrokerConnection) -> Result<(), ferrokafka::network::Error> {
    /// use ferrokafka::network::RequestOptions;
    /// use ferrokafka::protocol::messages::ProduceRequest;
    ///
    /// let first = conn.submit(&ProduceRequest::default(), RequestOptions::default()).await?;
    /// let second = conn.submit(&ProduceRequest::default(), RequestOptions::default()).await?;
    /// // `first` was written before `second`, whatever is awaited first.
    /// let (b, a) = (second.await?, first.await?);
    /// # let _ = (a, b); Ok(()) }
    /// ```
    pub async fn submit<R: Request>(
        &self,
        request: &R,
        options: RequestOptions,
    ) -> Result<ResponseHandle<R::Response>> {
        let version = self.version_for(R::API_KEY, options.version)?;
        self.submit_in(request, &[], version, options.timeout).await
    }

    /// [`submit`](Self::submit) for a request carrying large byte strings it
    /// already holds as `Bytes` (a Produce request's record batches): each
    /// of `payloads` the request holds is written to the socket from its own
    /// buffer instead of being copied into the frame (see
    /// [`encode_request_frame_spliced`](crate::protocol::frame::encode_request_frame_spliced)).
    pub async fn submit_spliced<R: Request>(
        &self,
        request: &R,
        payloads: &[Bytes],
        options: RequestOptions,
    ) -> Result<ResponseHandle<R::Response>> {
        let version = self.version_for(R::API_KEY, options.version)?;
        self.submit_in(request, payloads, version, options.timeout)
            .await
    }

    async fn submit_in<R: Request>(
        &self,
        request: &R,
        payloads: &[Bytes],
        version: i16,
        timeout: Option<Duration>,
    ) -> Result<ResponseHandle<R::Response>> {
        let timeout = timeout.unwrap_or(self.inner.config.request_timeout);
        let deadline = Instant::now() + timeout;
        let slot = self.acquire_slot(R::API_KEY, deadline, timeout).await?;
        let raw = self
            .queue(request, payloads, version, (deadline, timeout), slot)
            .await?;
        Ok(ResponseHandle {
            raw,
            version,
            _response: PhantomData,
        })
    }

    /// Waits for an in-flight slot on a connection that caps them (not
    /// generic, so one copy of this wait is compiled for every request type).
    async fn acquire_slot(
        &self,
        api: ApiKey,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Option<OwnedSemaphorePermit>> {
        let Some(slots) = &self.inner.shared.slots else {
            return Ok(None);
        };
        match tokio::time::timeout_at(deadline.into(), slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            Ok(Err(_)) => Err(self.closed_error()),
            // The requests in flight time out by themselves; this one was
            // never sent, so the connection stays open.
            Err(_) => Err(Error::RequestTimeout {
                api,
                broker: self.broker().to_owned(),
                timeout,
            }),
        }
    }

    /// Registers `request` and queues its frame; the returned handle yields
    /// the raw response frame (header included). Only the encoding is
    /// generic; the queueing is [`BrokerConnection::enqueue`], compiled once.
    async fn queue<R: Request>(
        &self,
        request: &R,
        payloads: &[Bytes],
        version: i16,
        deadline: (Instant, Duration),
        slot: Option<OwnedSemaphorePermit>,
    ) -> Result<RawHandle> {
        let shared = &*self.inner.shared;
        let (id, rx) = shared.register(slot)?;
        let guard = RegistrationGuard {
            shared,
            id,
            armed: true,
        };
        // On an encoding error the guard unregisters the id.
        let frame = self.encode(request, payloads, id, version)?;
        self.enqueue(guard, rx, frame, R::API_KEY, deadline).await
    }

    /// Queues the frame of a registered request (the non-generic half of
    /// [`BrokerConnection::queue`]).
    async fn enqueue(
        &self,
        mut guard: RegistrationGuard<'_>,
        rx: oneshot::Receiver<Result<Bytes>>,
        frame: Frame,
        api: ApiKey,
        (deadline, timeout): (Instant, Duration),
    ) -> Result<RawHandle> {
        // Cancel safe: if this is dropped, the frame was not queued (and the
        // guard unregisters the id).
        match tokio::time::timeout_at(deadline.into(), self.inner.frames.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(self.closed_error()),
            Err(_) => return Err(self.timed_out(api, timeout)),
        }
        // Queued: the writer will send it, so the response must be read by
        // the reader task even if nobody waits for it any more.
        guard.armed = false;
        Ok(RawHandle {
            conn: self.clone(),
            rx,
            deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
            correlation_id: guard.id,
            api,
            timeout,
        })
    }

    /// Closes the connection after a request timed out and says so.
    fn timed_out(&self, api: ApiKey, timeout: Duration) -> Error {
        // As the Java client does: a broker that does not answer within the
        // request timeout is treated as gone (it may be a half-open TCP
        // connection that would never fail by itself). The other requests on
        // this connection fail with a retriable error and the cluster client
        // opens a new connection.
        self.inner.shared.close(Closed::Disconnected(format!(
            "no response to {} within {timeout:?}",
            api.name()
        )));
        Error::RequestTimeout {
            api,
            broker: self.broker().to_owned(),
            timeout,
        }
    }

    /// Queues a request that gets no response (Produce with `acks=0`), in
    /// order with submitted ones. Returns once the frame is queued; it is
    /// then written unless the connection closes first.
    pub async fn submit_no_response<R: Request>(
        &self,
        request: &R,
        options: RequestOptions,
    ) -> Result<()> {
        self.submit_no_response_spliced(request, &[], options).await
    }

    /// [`submit_no_response`](Self::submit_no_response) with `payloads`
    /// written from their own buffers, as
    /// [`submit_spliced`](Self::submit_spliced) does.
    pub async fn submit_no_response_spliced<R: Request>(
        &self,
        request: &R,
        payloads: &[Bytes],
        options: RequestOptions,
    ) -> Result<()> {
        let version = self.version_for(R::API_KEY, options.version)?;
        let shared = &self.inner.shared;
        let id = shared.next_id()?;
        let frame = self.encode(request, payloads, id, version)?;
        tracing::debug!(api = R::API_KEY.name(), version, correlation_id = id, broker = %self.broker(), "sending request without response");
        let timeout = options.timeout.unwrap_or(self.inner.config.request_timeout);
        match tokio::time::timeout(timeout, self.inner.frames.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => Err(self.timed_out(R::API_KEY, timeout)),
        }
    }

    fn encode<R: Request>(
        &self,
        request: &R,
        payloads: &[Bytes],
        id: i32,
        version: i16,
    ) -> Result<Frame> {
        let client_id = Some(&self.inner.config.client_id[..]);
        let encoded = if payloads.is_empty() {
            let mut buf = BytesMut::with_capacity(256);
            encode_request_frame(&mut buf, id, client_id, version, request)
                .map(|()| Frame::Whole(buf.freeze()))
        } else {
            encode_request_frame_spliced(id, client_id, version, request, payloads)
                .map(Frame::Parts)
        };
        encoded.map_err(|source| Error::Encode {
            api: R::API_KEY,
            version,
            source,
        })
    }

    fn closed_error(&self) -> Error {
        let closed = self.inner.shared.lock().closed.clone();
        closed
            .unwrap_or_else(|| Closed::Disconnected("writer stopped".into()))
            .to_error(self.broker())
    }

    /// A weak reference that dies when both of the connection's tasks have
    /// ended (tests use it to check that the socket was released).
    #[cfg(test)]
    pub(crate) fn task_liveness(&self) -> std::sync::Weak<()> {
        self.inner.tasks.clone()
    }

    fn decode_response<T: Response>(&self, frame: Bytes, version: i16) -> Result<T> {
        let body = self.response_body(frame, T::API_KEY, version)?;
        match T::from_bytes(body, version) {
            Ok(response) => Ok(response),
            Err(source) => Err(self.decode_error(T::API_KEY, version, source)),
        }
    }

    /// The body of a response frame: the frame after its header.
    fn response_body(&self, mut frame: Bytes, api: ApiKey, version: i16) -> Result<Bytes> {
        match ResponseHeader::decode(&mut frame, api.response_header_version(version)) {
            Ok(_) => Ok(frame),
            Err(source) => Err(self.decode_error(api, version, source)),
        }
    }

    fn decode_error(&self, api: ApiKey, version: i16, source: DecodeError) -> Error {
        Error::Decode {
            api,
            version,
            broker: self.broker().to_owned(),
            source,
        }
    }
}

/// Logs how a request ended and how long it took.
fn log_outcome(started: Instant, error: Option<&Error>) {
    let latency_us = started.elapsed().as_micros() as u64;
    match error {
        None => tracing::debug!(latency_us, "response received"),
        Some(e) => tracing::debug!(latency_us, error = %e, "request failed"),
    }
}

/// A queued request's raw answer (used for the handshake, before versions
/// are known, and wrapped by [`ResponseHandle`]).
struct RawHandle {
    conn: BrokerConnection,
    rx: oneshot::Receiver<Result<Bytes>>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    correlation_id: i32,
    api: ApiKey,
    /// What the deadline allowed, for the error message.
    timeout: Duration,
}

impl Future for RawHandle {
    type Output = Result<Bytes>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.rx).poll(cx) {
            Poll::Ready(Ok(result)) => return Poll::Ready(result),
            Poll::Ready(Err(_)) => return Poll::Ready(Err(this.conn.closed_error())),
            Poll::Pending => {}
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(this.conn.timed_out(this.api, this.timeout))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Classifies a failed TLS handshake: errors from rustls (certificates,
/// names, alerts) are [`Error::TlsHandshake`] and final; socket errors (a
/// reset, EOF) mean the broker went away and stay retriable, so bootstrap
/// moves on to the next server.
fn handshake_error(broker: &str, source: std::io::Error) -> Error {
    if is_tls_error(&source) {
        Error::TlsHandshake {
            broker: broker.to_owned(),
            source,
        }
    } else {
        Error::Disconnected {
            broker: broker.to_owned(),
            reason: format!("socket failed during the TLS handshake: {source}"),
        }
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

/// A request frame queued for the writer task.
enum Frame {
    /// Encoded in one buffer.
    Whole(Bytes),
    /// Encoded around spliced payloads: the parts, to write in order.
    Parts(Vec<Bytes>),
}

impl Frame {
    /// Writes the frame into `out` (parts at least as large as its buffer
    /// go to the socket directly, without a copy). Each part is let go as
    /// soon as it is written (copied into `out` or the socket): a spliced
    /// payload's owner (the producer's batch) can then reuse its buffer when
    /// the response comes, even while later frames are still being written.
    async fn write_to<W: AsyncWrite + Unpin>(self, out: &mut BufWriter<W>) -> std::io::Result<()> {
        match self {
            Frame::Whole(bytes) => out.write_all(&bytes).await,
            Frame::Parts(parts) => {
                for part in parts {
                    out.write_all(&part).await?;
                }
                Ok(())
            }
        }
    }
}

async fn write_loop<W>(write_half: W, mut frames: mpsc::Receiver<Frame>, shared: Arc<Shared>)
where
    W: AsyncWrite + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut out = BufWriter::with_capacity(WRITE_BUFFER, write_half);
    let work = async {
        loop {
            let Some(frame) = frames.recv().await else {
                return "connection handle dropped".to_owned();
            };
            if let Err(e) = frame.write_to(&mut out).await {
                return format!("write failed: {e}");
            }
            // Whatever else is already queued goes out with the same flush.
            while let Ok(frame) = frames.try_recv() {
                if let Err(e) = frame.write_to(&mut out).await {
                    return format!("write failed: {e}");
                }
            }
            if let Err(e) = out.flush().await {
                return format!("write failed: {e}");
            }
        }
    };
    // Every write races the shutdown signal: a broker that stopped reading
    // must not keep this task, and with it the socket, alive after close.
    let reason = tokio::select! {
        biased;
        _ = shutdown.wait_for(|closed| *closed) => None,
        reason = work => Some(reason),
    };
    if let Some(reason) = reason {
        shared.close(Closed::Disconnected(reason));
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, out.shutdown()).await;
    }
}

async fn read_loop<Rd>(read_half: Rd, shared: Arc<Shared>, max_frame: usize)
where
    Rd: AsyncRead + Unpin,
{
    let mut shutdown = shared.shutdown.subscribe();
    let mut input = BufReader::with_capacity(READ_BUFFER, read_half);
    let mut buffers = FrameBuffers::default();
    let mut first = true;
    let reason = loop {
        let frame = tokio::select! {
            frame = read_frame(&mut input, max_frame, &mut buffers) => frame,
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
            Err(ReadError::TooLarge {
                size,
                max,
                correlation_id,
            }) => {
                // Only the request this frame answers fails for good; the
                // others were fine and can be retried on a new connection.
                let special = correlation_id.map(|id| {
                    let error = Error::FrameTooLarge {
                        broker: shared.broker.clone(),
                        size,
                        max,
                    };
                    (id, error)
                });
                shared.close_failing(
                    Closed::Disconnected(format!(
                        "a {size}-byte response exceeded receive.message.max.bytes ({max})"
                    )),
                    special,
                );
                return;
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
            // A dropped receiver means the caller gave up: discard. Dropping
            // `p` releases its in-flight slot.
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
    /// A frame announced more bytes than allowed; `correlation_id` is the
    /// id it answers, when its header could be read.
    TooLarge {
        size: usize,
        max: usize,
        correlation_id: Option<i32>,
    },
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

/// Large response buffers a connection recycles.
///
/// A large response (a fetch of megabytes) is handed out zero-copy: the
/// records the application holds are slices of it, so its memory lives until
/// the last of them is dropped. A fresh buffer for every such response costs
/// a page fault per 4 KiB page on first touch (and zeroing); instead the
/// reader keeps a handle on its last [`RECYCLED_FRAMES`] large responses and
/// reads the next one into whichever is no longer referenced anywhere else.
/// Memory held beyond what callers hold: at most [`RECYCLED_FRAMES`] large
/// responses, and only until the connection's next response (a small
/// response releases every buffer nobody else references).
#[derive(Debug, Default)]
struct FrameBuffers {
    kept: Vec<Bytes>,
}

impl FrameBuffers {
    /// An empty buffer with room for a `size`-byte frame: a recycled one
    /// when the frame is large and a kept buffer is free and big enough.
    fn buffer_for(&mut self, size: usize) -> BytesMut {
        if size < RECYCLED_FRAME_MIN {
            self.kept.retain(|kept| !kept.is_unique());
            return BytesMut::with_capacity(size);
        }
        while let Some(index) = self.kept.iter().position(Bytes::is_unique) {
            // Too small a free buffer is released (dropped) here.
            if let Ok(mut buffer) = self.kept.swap_remove(index).try_into_mut() {
                if buffer.capacity() >= size {
                    buffer.clear();
                    return buffer;
                }
            }
        }
        // Some headroom, so that the next response, a little larger, fits too.
        BytesMut::with_capacity(size + size / 16)
    }

    /// Remembers a large frame's buffer for reuse once everyone has dropped it.
    fn keep(&mut self, frame: &Bytes) {
        if frame.len() >= RECYCLED_FRAME_MIN && self.kept.len() < RECYCLED_FRAMES {
            self.kept.push(frame.clone());
        }
    }
}

async fn read_frame<Rd>(
    input: &mut Rd,
    max_frame: usize,
    buffers: &mut FrameBuffers,
) -> std::result::Result<Bytes, ReadError>
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
        // Read only the correlation id, to know which request it answers.
        let mut id = [0u8; 4];
        let correlation_id = if size >= 4 {
            input
                .read_exact(&mut id)
                .await
                .ok()
                .map(|_| i32::from_be_bytes(id))
        } else {
            None
        };
        return Err(ReadError::TooLarge {
            size,
            max: max_frame,
            correlation_id,
        });
    }
    // Read straight into the buffer's spare capacity: no zeroing first.
    let mut frame = buffers.buffer_for(size);
    while frame.len() < size {
        let wanted = size - frame.len();
        match input.read_buf(&mut (&mut frame).limit(wanted)).await {
            Ok(0) => {
                return Err(Closed::Disconnected(format!(
                    "closed by the broker mid-frame ({} of {size} bytes read)",
                    frame.len()
                ))
                .into())
            }
            Ok(_) => {}
            Err(e) => {
                return Err(Closed::Disconnected(format!("read failed mid-frame: {e}")).into())
            }
        }
    }
    let frame = frame.freeze();
    buffers.keep(&frame);
    Ok(frame)
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
        let mut data: &[u8] = &[0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 9, 0, 0, 0, 42];
        assert_eq!(
            &read_frame(&mut data, 8, &mut FrameBuffers::default())
                .await
                .unwrap()[..],
            &[1, 2, 3]
        );
        assert!(matches!(
            read_frame(&mut data, 8, &mut FrameBuffers::default()).await,
            Err(ReadError::TooLarge {
                size: 9,
                max: 8,
                correlation_id: Some(42)
            })
        ));
        let mut data: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read_frame(&mut data, 8, &mut FrameBuffers::default()).await,
            Err(ReadError::Closed(Closed::Disconnected(_)))
        ));
        let mut data: &[u8] = &[0, 0, 0, 4, 1];
        assert!(matches!(
            read_frame(&mut data, 8, &mut FrameBuffers::default()).await,
            Err(ReadError::Closed(Closed::Disconnected(_)))
        ));
    }

    #[tokio::test]
    async fn large_frames_reuse_a_buffer_once_nobody_holds_it() {
        let size = RECYCLED_FRAME_MIN + 10;
        let mut wire = Vec::new();
        for fill in [1u8, 2, 3, 4] {
            wire.extend_from_slice(&(size as i32).to_be_bytes());
            wire.extend(std::iter::repeat(fill).take(size));
        }
        wire.extend_from_slice(&[0, 0, 0, 2, 9, 9]);
        let mut input = BufReader::with_capacity(READ_BUFFER, wire.as_slice());
        let mut buffers = FrameBuffers::default();
        let max = 2 * size;
        let first = read_frame(&mut input, max, &mut buffers).await.unwrap();
        let first_at = first.as_ptr();
        let held = first.slice(5..9); // the application still holds a slice
        drop(first);
        let second = read_frame(&mut input, max, &mut buffers).await.unwrap();
        assert_ne!(
            second.as_ptr(),
            first_at,
            "a buffer still referenced is not reused"
        );
        assert!(second.iter().all(|&b| b == 2) && second.len() == size);
        drop((held, second));
        let third = read_frame(&mut input, max, &mut buffers).await.unwrap();
        assert!(third.iter().all(|&b| b == 3) && third.len() == size);
        assert_eq!(
            third.as_ptr(),
            first_at,
            "the first buffer, free again, is reused"
        );
        drop(third);
        assert_eq!(buffers.kept.len(), 2);
        let fourth = read_frame(&mut input, max, &mut buffers).await.unwrap();
        assert!(fourth.iter().all(|&b| b == 4));
        // A small frame releases the buffers nobody else holds.
        let small = read_frame(&mut input, max, &mut buffers).await.unwrap();
        assert_eq!(&small[..], &[9, 9]);
        assert_eq!(buffers.kept.len(), 1, "only the held fourth frame stays");
        drop(fourth);
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
        match read_frame(&mut input, 8, &mut FrameBuffers::default()).await {
            Err(ReadError::Tls(reason)) => {
                assert!(reason.contains("CertificateRequired"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        let mut input = Failing(Some(std::io::ErrorKind::ConnectionReset.into()));
        assert!(matches!(
            read_frame(&mut input, 8, &mut FrameBuffers::default()).await,
            Err(ReadError::Closed(Closed::Disconnected(_)))
        ));
        let broker = "b:1";
        assert!(matches!(
            Closed::Tls("alert".into()).to_error(broker),
            Error::TlsHandshake { .. }
        ));
    }
}
