//! A fault-injecting TCP proxy for tests: put it between a client and a
//! broker, then order it to cut every connection, to black-hole traffic, or
//! to delay it.
//!
//! [`FaultProxy`] listens on `127.0.0.1` (a free port) and relays every
//! connection it accepts to one upstream address. Its faults apply to all
//! connections, open or future:
//!
//! * [`FaultProxy::cut_all`] closes every open connection at once (both
//!   sides see the socket close); new connections are accepted afterwards.
//! * [`FaultProxy::pause`] black-holes traffic: connections are still
//!   accepted and kept open, but not a byte is forwarded in either direction
//!   (new connections are not even connected upstream) until
//!   [`FaultProxy::resume`]. Bytes read meanwhile are held, not dropped, as a
//!   healed network partition would deliver them.
//! * [`FaultProxy::set_delay`] delays every chunk of bytes by a fixed time
//!   in each direction (latency, not a bandwidth limit).
//!
//! The proxy runs on its own thread with its own single-threaded tokio
//! runtime, so it works from synchronous tests and from any async runtime,
//! and its control methods never block. Dropping it closes every connection.
//!
//! # Keeping a client on the proxy
//!
//! Kafka brokers advertise their own address in Metadata responses, and a
//! client connects to the advertised address after bootstrapping. A proxy in
//! front of a broker therefore only sees the bootstrap connection, unless the
//! broker advertises the *proxy's* address. [`FaultProxy::start_with_broker`]
//! arranges exactly that: it binds the proxy first, then starts a
//! [`TestBroker`] whose advertised listener is the proxy
//! ([`BrokerOptions::advertised_port`]), so every connection a client makes
//! goes through the proxy. Only Tansu can advertise another address; for a
//! broker you start yourself, pass the proxy's port as its advertised port and
//! use [`FaultProxy::start`].
//!
//! ```no_run
//! use std::time::Duration;
//! use ferrokafka::admin::Admin;
//! use ferrokafka::network::ClientConfig;
//! use ferrokafka::testkit::fault_proxy::FaultProxy;
//! use ferrokafka::testkit::BrokerKind;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // A Tansu broker that advertises the proxy's address.
//! let (_broker, proxy) = FaultProxy::start_with_broker(BrokerKind::Tansu)?;
//! let config = ClientConfig::builder()
//!     .bootstrap_servers([proxy.bootstrap_servers()])
//!     .build()?;
//! let admin = Admin::connect(config).await?;
//!
//! proxy.cut_all(); // every connection closes; the client reconnects
//! proxy.pause(); // requests now go unanswered ...
//! tokio::time::sleep(Duration::from_secs(1)).await;
//! proxy.resume(); // ... until here
//! proxy.set_delay(Duration::from_millis(50)); // 50 ms more each way
//! admin.describe_cluster(Default::default()).await?;
//! # Ok(()) }
//! ```

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::testkit::{BrokerKind, BrokerOptions, TestBroker, TestkitError};

/// Largest chunk read from a socket at once.
const CHUNK: usize = 64 * 1024;
/// Chunks read but not yet written, per direction of a connection (bounds the
/// memory a delayed or paused connection holds).
const QUEUED_CHUNKS: usize = 256;

/// The faults currently ordered; every connection task watches them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Faults {
    /// Forward nothing while set.
    paused: bool,
    /// Added to every chunk's trip through the proxy.
    delay: Duration,
    /// Bumped by each cut: a connection accepted under an older generation closes.
    cut_generation: u64,
}

/// State shared by the handle and the proxy's tasks.
#[derive(Debug)]
struct Shared {
    faults: watch::Sender<Faults>,
    open: AtomicUsize,
    accepted: AtomicU64,
}

/// A TCP proxy on `127.0.0.1` that relays to one upstream address and injects
/// faults on command. See the [module documentation](self) for an example.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("faults", &*self.shared.faults.borrow())
            .field("open_connections", &self.open_connections())
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy on a free `127.0.0.1` port relaying to `upstream`.
    ///
    /// ```no_run
    /// use ferrokafka::testkit::fault_proxy::FaultProxy;
    ///
    /// let proxy = FaultProxy::start("127.0.0.1:9092".parse().unwrap()).unwrap();
    /// println!("clients connect to {}", proxy.bootstrap_servers());
    /// ```
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy, TestkitError> {
        FaultProxy::start_on(bind_local()?, upstream)
    }

    /// Starts a broker of `kind` behind a new proxy, the broker advertising
    /// the proxy's address so that clients keep talking through the proxy.
    /// Connect clients to [`FaultProxy::bootstrap_servers`], not to the
    /// broker's own address.
    ///
    /// Only Tansu can advertise another address: noida-db answers
    /// [`TestkitError::Unsupported`].
    pub fn start_with_broker(kind: BrokerKind) -> Result<(TestBroker, FaultProxy), TestkitError> {
        FaultProxy::start_with_broker_options(kind, BrokerOptions::default())
    }

    /// [`FaultProxy::start_with_broker`] with further broker `options` (their
    /// advertised port is replaced by the proxy's). With TLS, the proxy sits
    /// in front of the harness's TLS front and relays the encrypted bytes.
    pub fn start_with_broker_options(
        kind: BrokerKind,
        options: BrokerOptions,
    ) -> Result<(TestBroker, FaultProxy), TestkitError> {
        let listener = bind_local()?;
        let port = local_addr(&listener)?.port();
        let broker = TestBroker::start_with(kind, options.advertised_port(Some(port)))?;
        let proxy = FaultProxy::start_on(listener, broker.addr())?;
        Ok((broker, proxy))
    }

    fn start_on(
        listener: StdTcpListener,
        upstream: SocketAddr,
    ) -> Result<FaultProxy, TestkitError> {
        let addr = local_addr(&listener)?;
        listener
            .set_nonblocking(true)
            .map_err(io_error("configuring the fault proxy's listener"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(io_error("starting the fault proxy's runtime"))?;
        let shared = Arc::new(Shared {
            faults: watch::Sender::new(Faults::default()),
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
        });
        let (shutdown, stopped) = oneshot::channel();
        let task_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("testkit-fault-proxy-{}", addr.port()))
            // Dropping the runtime when the loop ends drops every connection task,
            // closing their sockets.
            .spawn(move || runtime.block_on(accept_loop(listener, upstream, task_shared, stopped)))
            .map_err(io_error("spawning the fault proxy's thread"))?;
        Ok(FaultProxy {
            addr,
            upstream,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The proxy's address (on `127.0.0.1`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:PORT` of the proxy, for a client's bootstrap servers.
    pub fn bootstrap_servers(&self) -> String {
        self.addr.to_string()
    }

    /// Where the proxy relays to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Closes every connection open now, on both sides, and returns how many
    /// there were. Connections made afterwards are relayed as usual.
    pub fn cut_all(&self) -> usize {
        let open = self.open_connections();
        self.shared
            .faults
            .send_modify(|faults| faults.cut_generation += 1);
        tracing::debug!(proxy = %self.addr, open, "fault proxy: cutting every connection");
        open
    }

    /// Black-holes traffic until [`FaultProxy::resume`]: connections are
    /// accepted and kept open, but nothing is forwarded either way.
    pub fn pause(&self) {
        self.shared
            .faults
            .send_modify(|faults| faults.paused = true);
        tracing::debug!(proxy = %self.addr, "fault proxy: paused");
    }

    /// Forwards traffic again after [`FaultProxy::pause`], starting with what
    /// was held back.
    pub fn resume(&self) {
        self.shared
            .faults
            .send_modify(|faults| faults.paused = false);
        tracing::debug!(proxy = %self.addr, "fault proxy: resumed");
    }

    /// Whether traffic is paused.
    pub fn is_paused(&self) -> bool {
        self.shared.faults.borrow().paused
    }

    /// Delays every chunk of bytes by `delay` in each direction (so a
    /// request/response round trip by twice that); `Duration::ZERO` ends
    /// the delay. Chunks already on their way keep the delay they had.
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .faults
            .send_modify(|faults| faults.delay = delay);
        tracing::debug!(proxy = %self.addr, ?delay, "fault proxy: delay set");
    }

    /// The delay set by [`FaultProxy::set_delay`].
    pub fn delay(&self) -> Duration {
        self.shared.faults.borrow().delay
    }

    /// Connections currently open through the proxy.
    pub fn open_connections(&self) -> usize {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Connections accepted since the proxy started.
    pub fn accepted_connections(&self) -> u64 {
        self.shared.accepted.load(Ordering::Acquire)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn io_error(context: &'static str) -> impl FnOnce(io::Error) -> TestkitError {
    move |source| TestkitError::Io {
        context: context.to_owned(),
        source,
    }
}

fn bind_local() -> Result<StdTcpListener, TestkitError> {
    StdTcpListener::bind(("127.0.0.1", 0)).map_err(io_error("binding the fault proxy"))
}

fn local_addr(listener: &StdTcpListener) -> Result<SocketAddr, TestkitError> {
    listener
        .local_addr()
        .map_err(io_error("reading the fault proxy's address"))
}

async fn accept_loop(
    listener: StdTcpListener,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                // The generation at accept time: a later cut closes this connection.
                let generation = shared.faults.borrow().cut_generation;
                shared.accepted.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(serve(client, upstream, shared.clone(), generation));
            }
        }
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenConnection(Arc<Shared>);

impl OpenConnection {
    fn new(shared: Arc<Shared>) -> OpenConnection {
        shared.open.fetch_add(1, Ordering::AcqRel);
        OpenConnection(shared)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Relays one client connection until either side closes, an error, or a cut.
async fn serve(client: TcpStream, upstream: SocketAddr, shared: Arc<Shared>, generation: u64) {
    let _open = OpenConnection::new(shared.clone());
    let mut cut = shared.faults.subscribe();
    let faults = shared.faults.subscribe();
    tokio::select! {
        // An error here means the proxy is gone: close as well.
        _ = cut.wait_for(|f| f.cut_generation != generation) => {}
        result = relay(client, upstream, faults) => {
            if let Err(error) = result {
                tracing::trace!(%error, "fault proxy: connection ended");
            }
        }
    }
}

async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mut faults: watch::Receiver<Faults>,
) -> io::Result<()> {
    // A black hole does not even connect upstream.
    wait_unpaused(&mut faults).await;
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // Kafka has no half-closed connections: the first direction to end ends both.
    tokio::select! {
        result = pipe(client_read, server_write, faults.clone()) => result,
        result = pipe(server_read, client_write, faults) => result,
    }
}

/// Forwards one direction: a reader queues timestamped chunks, a writer sends
/// each once its delay has passed and traffic is not paused.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faults: watch::Receiver<Faults>,
) -> io::Result<()> {
    let (queue, mut queued) = mpsc::channel::<(Instant, Bytes)>(QUEUED_CHUNKS);
    let mut reader_faults = faults.clone();
    let reader = async move {
        loop {
            wait_unpaused(&mut reader_faults).await;
            let mut chunk = BytesMut::with_capacity(CHUNK);
            if from.read_buf(&mut chunk).await? == 0 {
                return Ok::<(), io::Error>(());
            }
            if queue.send((Instant::now(), chunk.freeze())).await.is_err() {
                return Ok(());
            }
        }
    };
    let mut writer_faults = faults;
    let writer = async move {
        while let Some((read_at, chunk)) = queued.recv().await {
            let delay = writer_faults.borrow().delay;
            if !delay.is_zero() {
                tokio::time::sleep_until(read_at + delay).await;
            }
            wait_unpaused(&mut writer_faults).await;
            to.write_all(&chunk).await?;
        }
        to.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

async fn wait_unpaused(faults: &mut watch::Receiver<Faults>) {
    // The sender lives as long as any connection task: an error cannot happen
    // while this runs, and would mean the proxy is gone (the task ends anyway).
    let _ = faults.wait_for(|f| !f.paused).await;
}
