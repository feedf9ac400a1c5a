//! A cluster-aware client: bootstrap, metadata cache, connection pool,
//! request routing, coordinator lookup and retries.
//!
//! Metadata is fetched lazily: on first use, when older than
//! `metadata.max.age.ms`, after [`Cluster::invalidate_metadata`] (which the
//! retry helper calls for errors that mean leadership moved), and when a
//! topic is asked about for the first time. Only topics the client asked
//! about are fetched, never the whole cluster.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rand::seq::SliceRandom;
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsConnector;
use tracing::Instrument;

use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::{FindCoordinatorRequest, MetadataRequest, MetadataResponse};
use crate::protocol::{ApiKey, ErrorCode, Request};

use super::backoff::Backoff;
use super::config::{ClientConfig, ConfigError};
use super::connection::BrokerConnection;
use super::error::{Error, Result};
use super::options::{ConnectionRole, RequestOptions};

pub use super::metadata::{
    BrokerInfo, ClusterMetadata, MetadataSnapshot, PartitionLeader, PartitionMetadata,
    TopicMetadata, TopicPartitions,
};

/// What a coordinator coordinates (FindCoordinator `key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordinatorType {
    /// A consumer group.
    Group,
    /// A transactional id.
    Transaction,
}

impl CoordinatorType {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorType::Group => 0,
            CoordinatorType::Transaction => 1,
        }
    }
}

/// One pooled connection slot per broker address and role.
#[derive(Default)]
struct Slot {
    conn: Option<BrokerConnection>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Why the last attempt failed, for callers that waited for it.
    last_failure: Option<Error>,
}

/// A slot and the number of connection attempts it has finished: a caller
/// that finds the count moved while it waited for the slot shares that
/// attempt's outcome instead of making its own.
#[derive(Default)]
struct PoolEntry {
    attempts: AtomicU64,
    slot: tokio::sync::Mutex<Slot>,
}

/// What the refresher publishes after each attempt.
#[derive(Clone, Default)]
struct RefreshStatus {
    /// Every refresh request numbered up to this one was covered by an
    /// attempt that has finished (successfully or not).
    covered: u64,
    /// Every request up to this one was covered by a successful refresh.
    fresh: u64,
    /// Why the last attempt failed, if it did.
    failure: Option<Arc<Error>>,
    /// The generation of the newest snapshot.
    generation: u64,
}

/// Who wants what refreshed; touched by callers that ask for a refresh and
/// by the refresher, never by lookups.
#[derive(Default)]
struct RefreshControl {
    /// Topics whose metadata is fetched.
    tracked: BTreeSet<String>,
    /// Numbers refresh requests: a request is satisfied by an attempt that
    /// started after it was made, i.e. one that covered its number.
    requested: u64,
    /// When the last successful refresh started.
    fetched_at: Option<Instant>,
}

/// The metadata snapshot and the refresher's bookkeeping; shared by the
/// cluster handles and the refresher task (which holds no strong reference
/// to the cluster while it waits, so it ends with the last handle).
struct MetadataState {
    snapshot: ArcSwap<MetadataSnapshot>,
    control: Mutex<RefreshControl>,
    status: watch::Sender<RefreshStatus>,
    wake: Notify,
    /// Set when the last cluster handle is dropped.
    closed: AtomicBool,
    refresher_started: AtomicBool,
    /// Dies when the refresher task ends (for tests).
    #[cfg_attr(not(test), allow(dead_code))]
    refresher_alive: Mutex<std::sync::Weak<()>>,
}

struct Inner {
    config: Arc<ClientConfig>,
    tls: Option<TlsConnector>,
    meta: Arc<MetadataState>,
    pool: Mutex<HashMap<(String, ConnectionRole), Arc<PoolEntry>>>,
    coordinators: Mutex<HashMap<(CoordinatorType, String), BrokerInfo>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.meta.closed.store(true, Ordering::Release);
        self.meta.wake.notify_one();
    }
}

/// Whether a connection has had nothing in flight for longer than `max_idle`.
fn idle_too_long(conn: &BrokerConnection, max_idle: Duration) -> bool {
    conn.idle_for().is_some_and(|idle| idle > max_idle)
}

/// A client for a whole cluster: cheap to clone, safe to share.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrokafka::network::Error> {
/// use ferrokafka::network::{ClientConfig, Cluster, RequestOptions};
/// use ferrokafka::protocol::messages::ListGroupsRequest;
///
/// let config = ClientConfig::builder().bootstrap_servers(["localhost:9092"]).build()?;
/// let cluster = Cluster::connect(config).await?;
/// let leader = cluster.leader_for("orders", 0).await?;
/// let request = ListGroupsRequest::default();
/// let groups = cluster
///     .retry("list groups", None, || {
///         cluster.send_to_broker(leader.node_id, &request, RequestOptions::default())
///     })
///     .await?;
/// println!("{} groups", groups.groups.len());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .finish_non_exhaustive()
    }
}

fn lock<T>(lock: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    lock.lock().unwrap_or_else(|p| p.into_inner())
}

impl Cluster {
    /// A client for the cluster behind `config.bootstrap_servers`; connects
    /// lazily.
    pub fn new(config: ClientConfig) -> Result<Self> {
        config.validate()?;
        if config.bootstrap_servers.is_empty() {
            return Err(ConfigError::Missing("bootstrap.servers").into());
        }
        let tls = if config.security_protocol.uses_tls() {
            Some(super::tls::connector(&config.tls)?)
        } else {
            None
        };
        let cluster = Cluster {
            inner: Arc::new(Inner {
                config: Arc::new(config),
                tls,
                meta: Arc::new(MetadataState {
                    snapshot: ArcSwap::from_pointee(MetadataSnapshot::default()),
                    control: Mutex::default(),
                    status: watch::Sender::new(RefreshStatus::default()),
                    wake: Notify::new(),
                    closed: AtomicBool::new(false),
                    refresher_started: AtomicBool::new(false),
                    refresher_alive: Mutex::new(std::sync::Weak::new()),
                }),
                pool: Mutex::default(),
                coordinators: Mutex::default(),
            }),
        };
        cluster.spawn_idle_reaper();
        Ok(cluster)
    }

    /// Closes pooled connections idle for longer than
    /// `connections.max.idle.ms`, from a background task that ends when the
    /// last clone of the cluster is dropped. (Outside a tokio runtime there is
    /// no task; idle connections are then replaced when next used.)
    fn spawn_idle_reaper(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let max_idle = self.inner.config.connections_max_idle;
        let period = (max_idle / 2).clamp(Duration::from_millis(10), Duration::from_secs(30));
        let weak = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { break };
                let slots: Vec<_> = lock(&inner.pool).values().cloned().collect();
                for entry in slots {
                    // A slot being used right now is not idle.
                    let Ok(mut slot) = entry.slot.try_lock() else {
                        continue;
                    };
                    if slot
                        .conn
                        .as_ref()
                        .is_some_and(|c| idle_too_long(c, max_idle))
                    {
                        if let Some(conn) = slot.conn.take() {
                            tracing::debug!(broker = %conn.broker(), "closing idle connection");
                            conn.close();
                        }
                    }
                }
            }
        });
    }

    /// [`Cluster::new`], then fetches metadata from the first bootstrap
    /// server that answers, retrying until `default.api.timeout.ms`.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let cluster = Self::new(config)?;
        cluster
            .retry("bootstrap", None, || cluster.refresh_metadata())
            .await?;
        Ok(cluster)
    }

    /// The configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.inner.config
    }

    // ---------------------------------------------------------------- pool

    /// The pooled [`ConnectionRole::General`] connection to `addr` (see
    /// [`Cluster::connection_for`]).
    pub async fn connection(&self, addr: &str) -> Result<BrokerConnection> {
        self.connection_for(addr, ConnectionRole::General).await
    }

    /// The pooled connection to `addr` for `role`, opening one (after the
    /// reconnect backoff, if the last attempt failed) when there is none or
    /// it broke. Callers that arrive while a connection attempt is under way
    /// share its outcome: one attempt, however many callers wait.
    pub async fn connection_for(
        &self,
        addr: &str,
        role: ConnectionRole,
    ) -> Result<BrokerConnection> {
        self.connection_inner(addr, role, true).await
    }

    async fn connection_inner(
        &self,
        addr: &str,
        role: ConnectionRole,
        wait_backoff: bool,
    ) -> Result<BrokerConnection> {
        let entry = lock(&self.inner.pool)
            .entry((addr.to_owned(), role))
            .or_default()
            .clone();
        let seen = entry.attempts.load(Ordering::Acquire);
        // Held while connecting so there is one connection per broker and
        // role; a dropped caller just releases it.
        let mut slot = entry.slot.lock().await;
        if let Some(conn) = &slot.conn {
            if !conn.is_closed() && !idle_too_long(conn, self.inner.config.connections_max_idle) {
                return Ok(conn.clone());
            }
            conn.close();
            slot.conn = None;
        }
        if entry.attempts.load(Ordering::Acquire) != seen {
            // An attempt finished while we waited for the slot, and failed
            // (a success would have left a connection): share its outcome.
            if let Some(failure) = &slot.last_failure {
                return Err(failure.duplicate());
            }
        }
        if let Some(at) = slot.retry_at {
            let now = Instant::now();
            if at > now {
                if !wait_backoff {
                    return Err(Error::Disconnected {
                        broker: addr.to_owned(),
                        reason: "waiting for the reconnect backoff".into(),
                    });
                }
                tokio::time::sleep(at - now).await;
            }
        }
        let result = BrokerConnection::connect_with(
            addr,
            self.inner.config.clone(),
            self.inner.tls.as_ref(),
            role,
        )
        .await;
        entry.attempts.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(conn) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.last_failure = None;
                slot.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let backoff = Backoff::new(
                    self.inner.config.reconnect_backoff,
                    self.inner.config.reconnect_backoff_max,
                );
                let delay = backoff.delay(slot.failures);
                slot.failures = slot.failures.saturating_add(1);
                slot.retry_at = Some(Instant::now() + delay);
                slot.last_failure = Some(e.duplicate());
                tracing::debug!(broker = addr, role = role.name(), error = %e, backoff_ms = delay.as_millis() as u64, "connection attempt failed");
                Err(e)
            }
        }
    }

    /// A connection to any broker: an open one if there is one, else the
    /// known brokers in random order, else the bootstrap servers.
    pub async fn any_connection(&self) -> Result<BrokerConnection> {
        let open: Vec<BrokerConnection> = {
            let pool = lock(&self.inner.pool);
            pool.iter()
                .filter(|((_, role), _)| *role == ConnectionRole::General)
                .filter_map(|(_, e)| e.slot.try_lock().ok().and_then(|s| s.conn.clone()))
                .filter(|c| !c.is_closed())
                .collect()
        };
        if let Some(conn) = open.into_iter().next() {
            return Ok(conn);
        }
        let mut candidates: Vec<String> = self
            .inner
            .meta
            .snapshot
            .load()
            .brokers()
            .map(BrokerInfo::address)
            .collect();
        candidates.shuffle(&mut rand::rng());
        // Bootstrap servers in random order too (as the Java client does),
        // so clients do not all pile onto the first one listed.
        let mut bootstrap: Vec<String> = self
            .inner
            .config
            .bootstrap_servers
            .iter()
            .filter(|s| !candidates.contains(s))
            .cloned()
            .collect();
        bootstrap.shuffle(&mut rand::rng());
        candidates.extend(bootstrap);
        let mut last = None;
        // First without waiting for backoffs, then waiting.
        for wait in [false, true] {
            for addr in &candidates {
                match self
                    .connection_inner(addr, ConnectionRole::General, wait)
                    .await
                {
                    Ok(conn) => return Ok(conn),
                    Err(e) if e.is_retriable() => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
        }
        Err(Error::NoBrokerAvailable {
            tried: candidates,
            last: Box::new(
                last.unwrap_or_else(|| ConfigError::Missing("bootstrap.servers").into()),
            ),
        })
    }

    /// The [`ConnectionRole::General`] connection to broker `node_id` (see
    /// [`Cluster::broker_connection_for`]).
    pub async fn broker_connection(&self, node_id: i32) -> Result<BrokerConnection> {
        self.broker_connection_for(node_id, ConnectionRole::General)
            .await
    }

    /// The pooled connection to broker `node_id` for `role` (opened lazily;
    /// one per broker and role), refreshing metadata once if the broker is
    /// unknown.
    ///
    /// ```no_run
    /// # async fn demo(cluster: ferrokafka::network::Cluster) -> Result<(), ferrokafka::network::Error> {
    /// use ferrokafka::network::ConnectionRole;
    ///
    /// let produce = cluster.broker_connection_for(1, ConnectionRole::Produce).await?;
    /// let fetch = cluster.broker_connection_for(1, ConnectionRole::Fetch).await?;
    /// assert_eq!(produce.max_in_flight(), 5); // max.in.flight.requests.per.connection
    /// assert_eq!(fetch.max_in_flight(), usize::MAX);
    /// # Ok(()) }
    /// ```
    pub async fn broker_connection_for(
        &self,
        node_id: i32,
        role: ConnectionRole,
    ) -> Result<BrokerConnection> {
        let addr = match self.broker(node_id) {
            Some(b) => b.address(),
            None => {
                self.refresh_metadata().await?;
                self.broker(node_id)
                    .ok_or(Error::UnknownBroker(node_id))?
                    .address()
            }
        };
        self.connection_for(&addr, role).await
    }

    fn broker(&self, node_id: i32) -> Option<BrokerInfo> {
        self.inner.meta.snapshot.load().broker(node_id).cloned()
    }

    // ------------------------------------------------------------ routing

    /// Notes a failed request: errors that mean the layout changed (a broken
    /// connection, a timeout, NOT_LEADER_OR_FOLLOWER, ...) ask for fresh
    /// metadata.
    fn observe<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            if e.invalidates_metadata() {
                self.invalidate_metadata();
            }
        }
        result
    }

    /// Sends `request` to broker `node_id` on the connection of
    /// `options.role`.
    ///
    /// ```no_run
    /// # async fn demo(cluster: ferrokafka::network::Cluster) -> Result<(), ferrokafka::network::Error> {
    /// use ferrokafka::network::RequestOptions;
    /// use ferrokafka::protocol::messages::ListGroupsRequest;
    ///
    /// let groups = cluster
    ///     .send_to_broker(1, &ListGroupsRequest::default(), RequestOptions::default())
    ///     .await?;
    /// # let _ = groups; Ok(()) }
    /// ```
    pub async fn send_to_broker<R: Request>(
        &self,
        node_id: i32,
        request: &R,
        options: RequestOptions,
    ) -> Result<R::Response> {
        let result = match self.broker_connection_for(node_id, options.role).await {
            Ok(conn) => conn.send_with(request, options).await,
            Err(e) => Err(e),
        };
        self.observe(result)
    }

    /// Sends `request` to any broker (on an open connection of the
    /// [`ConnectionRole::General`] role when `options.role` is general,
    /// else on that role's connection to a broker from metadata).
    pub async fn send_to_any<R: Request>(
        &self,
        request: &R,
        options: RequestOptions,
    ) -> Result<R::Response> {
        let result = async {
            let conn = self.any_connection().await?;
            let conn = if options.role == ConnectionRole::General {
                conn
            } else {
                self.connection_for(conn.broker(), options.role).await?
            };
            conn.send_with(request, options).await
        }
        .await;
        self.observe(result)
    }

    /// Sends `request` to the controller named in metadata, or to any broker
    /// when it is unknown (KRaft brokers forward controller requests).
    pub async fn send_to_controller<R: Request>(
        &self,
        request: &R,
        options: RequestOptions,
    ) -> Result<R::Response> {
        match self.fresh_snapshot().await?.controller_id() {
            Some(id) if self.broker(id).is_some() => {
                self.send_to_broker(id, request, options).await
            }
            _ => self.send_to_any(request, options).await,
        }
    }

    /// The coordinator of `key` and the pooled connection to it for `role`
    /// (usually [`ConnectionRole::Group`], so heartbeats never queue behind a
    /// fetch or a join on another connection).
    pub async fn coordinator_connection(
        &self,
        kind: CoordinatorType,
        key: &str,
        role: ConnectionRole,
    ) -> Result<(BrokerInfo, BrokerConnection)> {
        let coordinator = self.find_coordinator(kind, key).await?;
        match self.connection_for(&coordinator.address(), role).await {
            Ok(conn) => Ok((coordinator, conn)),
            Err(e) => {
                self.invalidate_coordinator(kind, key);
                Err(e)
            }
        }
    }

    /// Sends `request` to the coordinator of `key`, forgetting the cached
    /// coordinator when the connection breaks, the request times out or the
    /// answer is NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE as a typed error.
    ///
    /// Error codes inside a response body are the caller's to read: pass
    /// them to [`Cluster::coordinator_error`], which forgets the coordinator
    /// when they say it moved.
    pub async fn send_to_coordinator<R: Request>(
        &self,
        kind: CoordinatorType,
        key: &str,
        request: &R,
        options: RequestOptions,
    ) -> Result<R::Response> {
        let result = match self.coordinator_connection(kind, key, options.role).await {
            Ok((_, conn)) => conn.send_with(request, options).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if e.invalidates_coordinator() {
                self.invalidate_coordinator(kind, key);
            }
        }
        self.observe(result)
    }

    /// Handles an error code found in a coordinator's answer: for
    /// NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE it forgets the cached
    /// coordinator of `key` (the next request looks it up again) and returns
    /// `true`; other codes are left alone (`false`).
    ///
    /// ```
    /// use ferrokafka::network::{ClientConfig, Cluster, CoordinatorType};
    /// use ferrokafka::protocol::ErrorCode;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = ClientConfig::builder().bootstrap_servers(["localhost:9092"]).build().unwrap();
    /// let cluster = Cluster::new(config).unwrap();
    /// assert!(cluster.coordinator_error(CoordinatorType::Group, "g", ErrorCode::NotCoordinator));
    /// assert!(!cluster.coordinator_error(CoordinatorType::Group, "g", ErrorCode::UnknownMemberId));
    /// # }
    /// ```
    pub fn coordinator_error(&self, kind: CoordinatorType, key: &str, code: ErrorCode) -> bool {
        let moved = matches!(
            code,
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
        );
        if moved {
            tracing::debug!(
                ?kind,
                key,
                code = code.name(),
                "coordinator moved; forgetting it"
            );
            self.invalidate_coordinator(kind, key);
        }
        moved
    }

    // ----------------------------------------------------------- metadata

    /// The current metadata snapshot: lock-free and allocation-free (one
    /// atomic reference count), for hot paths such as partition → leader.
    ///
    /// ```no_run
    /// # async fn demo(cluster: ferrokafka::network::Cluster) -> Result<(), ferrokafka::network::Error> {
    /// let snapshot = cluster.metadata_for_topics(&["orders"]).await?;
    /// let leader = snapshot.topic("orders").and_then(|t| t.partition(0)).map(|p| p.leader_id);
    /// // Later, without waiting:
    /// let again = cluster.snapshot();
    /// assert!(again.generation() >= snapshot.generation());
    /// # let _ = leader; Ok(()) }
    /// ```
    pub fn snapshot(&self) -> Arc<MetadataSnapshot> {
        self.inner.meta.snapshot.load_full()
    }

    /// Registers `topics` (their metadata is fetched from now on) and waits
    /// for the first completed refresh that includes them; returns at once
    /// when the current snapshot has them all. A failed refresh that covered
    /// them is returned as its error (retriable when a retry can help).
    pub async fn metadata_for_topics(&self, topics: &[&str]) -> Result<Arc<MetadataSnapshot>> {
        let snapshot = self.snapshot();
        if snapshot.generation() > 0 && topics.iter().all(|t| snapshot.topic(t).is_some()) {
            return Ok(snapshot);
        }
        let need = {
            let mut control = lock(&self.inner.meta.control);
            for topic in topics {
                if !control.tracked.contains(*topic) {
                    control.tracked.insert((*topic).to_owned());
                }
            }
            control.requested += 1;
            control.requested
        };
        self.await_refresh(need).await
    }

    /// Asks the refresher for a refresh soon: single-flight (callers asking
    /// while one runs share the next one) and at most one per
    /// `retry.backoff.ms`. Returns at once; see [`Cluster::metadata_changed`].
    pub fn request_metadata_refresh(&self) {
        self.request_refresh();
    }

    /// Waits for a snapshot newer than generation `seen` (the generation of
    /// a snapshot you hold) and returns it. Does not itself ask for a
    /// refresh: pair it with [`Cluster::request_metadata_refresh`], or let
    /// the periodic refresh (`metadata.max.age.ms`) bring it.
    pub async fn metadata_changed(&self, seen: u64) -> Arc<MetadataSnapshot> {
        self.ensure_refresher();
        let mut status = self.inner.meta.status.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = status.wait_for(|s| s.generation > seen).await;
        self.snapshot()
    }

    /// The metadata as owned maps, refreshed first if it is missing, was
    /// invalidated or is older than `metadata.max.age.ms`.
    pub async fn metadata(&self) -> Result<Arc<ClusterMetadata>> {
        Ok(self.fresh_snapshot().await?.to_cluster_metadata())
    }

    /// The metadata as owned maps, without any refresh.
    pub fn cached_metadata(&self) -> Arc<ClusterMetadata> {
        self.snapshot().to_cluster_metadata()
    }

    /// Marks the metadata stale: the refresher fetches it again soon, and
    /// [`Cluster::metadata`] waits for that refresh (an invalidation made
    /// while a refresh is in flight asks for the next one).
    pub fn invalidate_metadata(&self) {
        self.request_refresh();
    }

    /// Adds topics to those whose metadata is fetched; returns whether any
    /// was new. A new topic asks for a refresh that includes it.
    pub fn track_topics<I, S>(&self, topics: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let added = {
            let mut control = lock(&self.inner.meta.control);
            let mut added = false;
            for t in topics {
                added |= control.tracked.insert(t.into());
            }
            if added {
                control.requested += 1;
            }
            added
        };
        if added {
            self.wake_refresher();
        }
        added
    }

    /// Fetches metadata now (through the refresher: concurrent callers share
    /// one fetch) and returns it as owned maps.
    pub async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>> {
        let need = self.request_refresh();
        Ok(self.await_refresh(need).await?.to_cluster_metadata())
    }

    /// The leader of `topic`/`partition`. Tracks the topic (fetching its
    /// metadata the first time). Errors are typed broker errors
    /// (`UNKNOWN_TOPIC_OR_PARTITION`, `LEADER_NOT_AVAILABLE`, ...), mostly
    /// retriable.
    pub async fn leader_for(&self, topic: &str, partition: i32) -> Result<PartitionLeader> {
        self.track_topics([topic]);
        self.fresh_snapshot().await?.leader_for(topic, partition)
    }

    /// The snapshot, after waiting for a refresh if one was asked for and
    /// has not completed, or the snapshot is missing or too old.
    async fn fresh_snapshot(&self) -> Result<Arc<MetadataSnapshot>> {
        let status = self.inner.meta.status.borrow().clone();
        let need = {
            let mut control = lock(&self.inner.meta.control);
            let aged = !control
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.inner.config.metadata_max_age);
            if aged && control.requested <= status.fresh {
                control.requested += 1;
            }
            (control.requested > status.fresh).then_some(control.requested)
        };
        match need {
            None => Ok(self.snapshot()),
            Some(need) => self.await_refresh(need).await,
        }
    }

    /// Numbers a new refresh request and wakes the refresher.
    fn request_refresh(&self) -> u64 {
        let need = {
            let mut control = lock(&self.inner.meta.control);
            control.requested += 1;
            control.requested
        };
        self.wake_refresher();
        need
    }

    fn wake_refresher(&self) {
        self.ensure_refresher();
        self.inner.meta.wake.notify_one();
    }

    /// Waits until an attempt covering request `need` finished.
    async fn await_refresh(&self, need: u64) -> Result<Arc<MetadataSnapshot>> {
        self.wake_refresher();
        let mut status = self.inner.meta.status.subscribe();
        let status = match status.wait_for(|s| s.covered >= need).await {
            Ok(status) => status.clone(),
            Err(_) => unreachable_closed(),
        };
        if status.fresh >= need {
            return Ok(self.snapshot());
        }
        Err(status
            .failure
            .map(|e| e.duplicate())
            .unwrap_or_else(unreachable_closed))
    }

    /// Starts the refresher task once, inside a tokio runtime.
    fn ensure_refresher(&self) {
        let meta = &self.inner.meta;
        if meta.refresher_started.load(Ordering::Acquire) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if meta.refresher_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let alive = Arc::new(());
        *lock(&meta.refresher_alive) = Arc::downgrade(&alive);
        let task = refresher(meta.clone(), Arc::downgrade(&self.inner), alive);
        runtime.spawn(task.instrument(tracing::debug_span!("kafka_metadata_refresher")));
    }

    /// A weak reference that dies when the refresher task has ended.
    #[cfg(test)]
    fn refresher_liveness(&self) -> std::sync::Weak<()> {
        lock(&self.inner.meta.refresher_alive).clone()
    }

    /// One Metadata request for `topics` to any broker.
    async fn fetch_metadata(&self, topics: &[String]) -> Result<MetadataResponse> {
        let conn = self.any_connection().await?;
        let version = conn
            .api_versions()
            .map(|t| t.negotiate(ApiKey::Metadata))
            .unwrap_or(Ok(0))?;
        let mut request = MetadataRequest::default().with_topics(Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic::default().with_name(Some(t.clone())))
                .collect(),
        ));
        if version >= 4 {
            request = request.with_allow_auto_topic_creation(false);
        }
        let started_at = Instant::now();
        let response = conn
            .send_with(&request, RequestOptions::default().with_version(version))
            .await?;
        tracing::debug!(
            broker = %conn.broker(),
            brokers = response.brokers.len(),
            topics = response.topics.len(),
            latency_us = started_at.elapsed().as_micros() as u64,
            "metadata fetched"
        );
        Ok(response)
    }

    // -------------------------------------------------------- coordinators

    /// The coordinator of `key`, from the cache or via FindCoordinator.
    pub async fn find_coordinator(&self, kind: CoordinatorType, key: &str) -> Result<BrokerInfo> {
        if let Some(found) = lock(&self.inner.coordinators).get(&(kind, key.to_owned())) {
            return Ok(found.clone());
        }
        let mut results = self.find_coordinators(kind, &[key]).await?;
        results.pop().map(|(_, r)| r).unwrap_or_else(|| {
            Err(Error::Protocol {
                broker: String::new(),
                reason: format!("FindCoordinator returned nothing for {key}"),
            })
        })
    }

    /// Looks up the coordinators of several keys: one batched request on
    /// FindCoordinator v4+, one request per key on older brokers. Successful
    /// answers are cached.
    pub async fn find_coordinators(
        &self,
        kind: CoordinatorType,
        keys: &[&str],
    ) -> Result<Vec<(String, Result<BrokerInfo>)>> {
        let conn = self.any_connection().await?;
        let version = conn
            .api_versions()
            .map(|t| t.negotiate(ApiKey::FindCoordinator))
            .unwrap_or(Ok(0))?;
        let mut results = Vec::with_capacity(keys.len());
        let to_result = |c: &Coordinator| -> Result<BrokerInfo> {
            Error::check(
                ApiKey::FindCoordinator,
                c.error_code,
                c.error_message.as_deref(),
            )?;
            Ok(BrokerInfo {
                node_id: c.node_id,
                host: c.host.clone(),
                port: c.port,
                rack: None,
            })
        };
        if version >= 4 {
            let request = FindCoordinatorRequest::default()
                .with_key_type(kind.key_type())
                .with_coordinator_keys(keys.iter().map(|k| k.to_string()).collect());
            let response = conn
                .send_with(&request, RequestOptions::default().with_version(version))
                .await?;
            for key in keys {
                let result = response
                    .coordinators
                    .iter()
                    .find(|c| c.key == *key)
                    .map(to_result)
                    .unwrap_or_else(|| {
                        Err(Error::Protocol {
                            broker: conn.broker().to_owned(),
                            reason: format!("FindCoordinator response lacks key {key}"),
                        })
                    });
                results.push((key.to_string(), result));
            }
        } else {
            for key in keys {
                let mut request = FindCoordinatorRequest::default().with_key(key.to_string());
                if version >= 1 {
                    request = request.with_key_type(kind.key_type());
                }
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                let result = Error::check(
                    ApiKey::FindCoordinator,
                    response.error_code,
                    response.error_message.as_deref(),
                )
                .map(|()| BrokerInfo {
                    node_id: response.node_id,
                    host: response.host.clone(),
                    port: response.port,
                    rack: None,
                });
                results.push((key.to_string(), result));
            }
        }
        let mut cache = lock(&self.inner.coordinators);
        for (key, result) in &results {
            if let Ok(info) = result {
                cache.insert((kind, key.clone()), info.clone());
            }
        }
        Ok(results)
    }

    /// Forgets the cached coordinator of `key`.
    pub fn invalidate_coordinator(&self, kind: CoordinatorType, key: &str) {
        lock(&self.inner.coordinators).remove(&(kind, key.to_owned()));
    }

    // -------------------------------------------------------------- retry

    /// Runs `operation` until it succeeds, fails with a non-retriable error,
    /// or `timeout` (default `default.api.timeout.ms`) runs out. Between
    /// attempts it waits an exponential backoff with jitter between
    /// `retry.backoff.ms` and `retry.backoff.max.ms`, and marks metadata
    /// stale when the error calls for it.
    pub async fn retry<T, F, Fut>(
        &self,
        operation: &str,
        timeout: Option<Duration>,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let timeout = timeout.unwrap_or(self.inner.config.default_api_timeout);
        let deadline = Instant::now() + timeout;
        let backoff = Backoff::new(
            self.inner.config.retry_backoff,
            self.inner.config.retry_backoff_max,
        );
        let mut attempts = 0u32;
        let mut last: Option<Error> = None;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let error = match tokio::time::timeout(remaining, attempt()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if !e.is_retriable() => return Err(e),
                Ok(Err(e)) => e,
                Err(_) => {
                    return Err(Error::Timeout {
                        operation: operation.to_owned(),
                        timeout,
                        attempts,
                        last: last.map(Box::new),
                    })
                }
            };
            if error.invalidates_metadata() {
                self.invalidate_metadata();
            }
            let delay = backoff.delay(attempts - 1);
            tracing::debug!(operation, attempts, error = %error, backoff_ms = delay.as_millis() as u64, "retrying");
            if Instant::now() + delay >= deadline {
                return Err(Error::Timeout {
                    operation: operation.to_owned(),
                    timeout,
                    attempts,
                    last: Some(Box::new(error)),
                });
            }
            last = Some(error);
            tokio::time::sleep(delay).await;
        }
    }
}

/// The status channel's sender lives in the state the caller holds, so it
/// never closes while anyone waits on it.
fn unreachable_closed<T>() -> T {
    unreachable!("the metadata status sender outlives every receiver")
}

/// The refresher task: the only place metadata is fetched. It waits for a
/// request (or `metadata.max.age.ms`), spaces attempts by `retry.backoff.ms`
/// (exponentially more after failures), fetches every tracked topic, merges
/// the answer into a new snapshot (keeping newer leader epochs) and swaps it
/// in. It holds the cluster only while fetching, and ends once the last
/// cluster handle is dropped.
async fn refresher(meta: Arc<MetadataState>, cluster: std::sync::Weak<Inner>, alive: Arc<()>) {
    let (min_interval, backoff, max_age) = match cluster.upgrade() {
        Some(inner) => (
            inner.config.retry_backoff,
            Backoff::new(inner.config.retry_backoff, inner.config.retry_backoff_max),
            inner.config.metadata_max_age,
        ),
        None => return,
    };
    let mut failures = 0u32;
    let mut last_start: Option<Instant> = None;
    loop {
        if meta.closed.load(Ordering::Acquire) {
            break;
        }
        // Wait until a refresh is due.
        let (due, periodic_at) = {
            let control = lock(&meta.control);
            let status = meta.status.borrow();
            let requested = control.requested > status.fresh;
            let retrying = requested && status.covered >= control.requested;
            let periodic_at = control.fetched_at.map(|at| at + max_age);
            let aged = periodic_at.is_some_and(|at| at <= Instant::now());
            (requested || aged || retrying, periodic_at)
        };
        if !due {
            match periodic_at {
                Some(at) => {
                    tokio::select! {
                        _ = meta.wake.notified() => {}
                        _ = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => meta.wake.notified().await,
            }
            continue;
        }
        // Space attempts out.
        if let Some(started) = last_start {
            let gap = if failures == 0 {
                min_interval
            } else {
                backoff.delay(failures - 1)
            };
            let earliest = started + gap;
            if earliest > Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(earliest.into()) => {}
                    // Woken early only to notice a drop; requests wait.
                    _ = wait_closed(&meta) => break,
                }
            }
        }
        let Some(inner) = cluster.upgrade() else {
            break;
        };
        let handle = Cluster { inner };
        let (covering, topics) = {
            let control = lock(&meta.control);
            let topics: Vec<String> = control.tracked.iter().cloned().collect();
            (control.requested, topics)
        };
        let started = Instant::now();
        last_start = Some(started);
        let result = handle.fetch_metadata(&topics).await;
        drop(handle);
        match result {
            Ok(response) => {
                failures = 0;
                let old = meta.snapshot.load_full();
                let generation = old.generation() + 1;
                meta.snapshot
                    .store(Arc::new(old.merged(&response, generation)));
                lock(&meta.control).fetched_at = Some(started);
                tracing::debug!(generation, topics = topics.len(), "metadata refreshed");
                meta.status.send_modify(|s| {
                    s.covered = s.covered.max(covering);
                    s.fresh = s.fresh.max(covering);
                    s.failure = None;
                    s.generation = generation;
                });
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                tracing::debug!(error = %e, failures, "metadata refresh failed");
                meta.status.send_modify(|s| {
                    s.covered = s.covered.max(covering);
                    s.failure = Some(Arc::new(e));
                });
            }
        }
    }
    drop(alive);
}

/// Resolves once the last cluster handle has been dropped.
async fn wait_closed(meta: &MetadataState) {
    while !meta.closed.load(Ordering::Acquire) {
        meta.wake.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::testing::{
        api_versions, local_brokers, spawn_counting_tcp, spawn_tcp, Reply,
    };
    use crate::protocol::messages::list_groups_response::ListedGroup;
    use crate::protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use crate::protocol::messages::{
        FindCoordinatorResponse, ListGroupsRequest, ListGroupsResponse,
    };
    use crate::protocol::Uuid;
    use crate::protocol::{RequestKind, ResponseKind, VersionRange};
    use std::sync::atomic::{AtomicI32, AtomicUsize};

    /// The shared state of a two-broker fake cluster.
    #[derive(Default)]
    struct FakeCluster {
        brokers: Mutex<Vec<(i32, u16)>>,
        controller: AtomicI32,
        leader_of_p0: AtomicI32,
        find_coordinator_max: AtomicI32,
        find_coordinator_calls: AtomicUsize,
        metadata_calls: AtomicUsize,
        /// How long Metadata answers take, in milliseconds.
        metadata_delay_ms: AtomicU64,
    }

    fn metadata(state: &FakeCluster, request: &MetadataRequest) -> MetadataResponse {
        let brokers = local_brokers(&state.brokers.lock().unwrap());
        let partition = |index: i32, leader: i32| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(leader)
                .with_leader_epoch(7)
                .with_replica_nodes(vec![1, 2])
                .with_isr_nodes(vec![1, 2])
        };
        let topics = request
            .topics
            .iter()
            .flatten()
            .filter_map(|t| t.name.clone())
            .map(|name| {
                let topic = MetadataResponseTopic::default().with_name(Some(name.clone()));
                if name.starts_with("orders") {
                    topic
                        .with_topic_id(Uuid::from_u64_pair(1, 2))
                        .with_partitions(vec![
                            partition(1, 2),
                            partition(0, state.leader_of_p0.load(Ordering::SeqCst)),
                            partition(2, -1),
                        ])
                } else {
                    topic.with_error_code(ErrorCode::UnknownTopicOrPartition.code())
                }
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_controller_id(state.controller.load(Ordering::SeqCst))
            .with_cluster_id(Some("fake".into()))
            .with_topics(topics)
    }

    fn broker_handler(node_id: i32, state: Arc<FakeCluster>) -> crate::network::testing::Handler {
        Arc::new(move |header, body| match body {
            RequestKind::ApiVersions(_) => {
                let max = state.find_coordinator_max.load(Ordering::SeqCst) as i16;
                Reply::now(
                    ResponseKind::ApiVersions(api_versions(|api| {
                        Some(if api == ApiKey::FindCoordinator {
                            VersionRange::new(0, max)
                        } else {
                            api.valid_versions()
                        })
                    })),
                    header,
                )
            }
            RequestKind::Metadata(m) => {
                state.metadata_calls.fetch_add(1, Ordering::SeqCst);
                let delay = Duration::from_millis(state.metadata_delay_ms.load(Ordering::SeqCst));
                Reply::after(ResponseKind::Metadata(metadata(&state, &m)), header, delay)
            }
            RequestKind::ListGroups(_) => Reply::now(
                ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(vec![
                    ListedGroup::default().with_group_id(format!("answered-by-{node_id}")),
                ])),
                header,
            ),
            RequestKind::Heartbeat(_) => Reply::Silent,
            // Closing is how the tests break a pooled connection.
            RequestKind::DescribeGroups(_) => Reply::Close,
            RequestKind::FindCoordinator(f) => {
                state.find_coordinator_calls.fetch_add(1, Ordering::SeqCst);
                let port = state.brokers.lock().unwrap()[1].1 as i32;
                let coordinator = |key: &str| {
                    if key == "missing" {
                        Coordinator::default()
                            .with_key(key.into())
                            .with_error_code(ErrorCode::CoordinatorNotAvailable.code())
                    } else {
                        Coordinator::default()
                            .with_key(key.into())
                            .with_node_id(2)
                            .with_host("127.0.0.1".into())
                            .with_port(port)
                    }
                };
                let response = if header.request_api_version >= 4 {
                    FindCoordinatorResponse::default().with_coordinators(
                        f.coordinator_keys.iter().map(|k| coordinator(k)).collect(),
                    )
                } else {
                    let c = coordinator(&f.key);
                    FindCoordinatorResponse::default()
                        .with_error_code(c.error_code)
                        .with_node_id(c.node_id)
                        .with_host(c.host)
                        .with_port(c.port)
                };
                Reply::now(ResponseKind::FindCoordinator(response), header)
            }
            _ => Reply::Close,
        })
    }

    async fn fake_cluster() -> (Arc<FakeCluster>, Vec<String>) {
        let state = Arc::new(FakeCluster::default());
        state.controller.store(1, Ordering::SeqCst);
        state.leader_of_p0.store(1, Ordering::SeqCst);
        state.find_coordinator_max.store(6, Ordering::SeqCst);
        let mut addrs = Vec::new();
        for id in [1, 2] {
            let addr = spawn_tcp(broker_handler(id, state.clone())).await;
            let port = addr.rsplit_once(':').unwrap().1.parse().unwrap();
            state.brokers.lock().unwrap().push((id, port));
            addrs.push(addr);
        }
        (state, addrs)
    }

    async fn dead_addr() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().to_string()
    }

    fn config(bootstrap: Vec<String>) -> ClientConfig {
        ClientConfig::builder()
            .bootstrap_servers(bootstrap)
            .retry_backoff(Duration::from_millis(5))
            .retry_backoff_max(Duration::from_millis(20))
            .reconnect_backoff(Duration::from_millis(5))
            .reconnect_backoff_max(Duration::from_millis(20))
            .default_api_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    fn answered_by(response: &ListGroupsResponse) -> &str {
        &response.groups[0].group_id
    }

    #[tokio::test]
    async fn bootstraps_past_dead_servers_and_routes_requests() {
        let (state, addrs) = fake_cluster().await;
        let dead = dead_addr().await;
        let cluster = Cluster::connect(config(vec![dead, addrs[0].clone()]))
            .await
            .unwrap();
        let metadata = cluster.metadata().await.unwrap();
        assert_eq!(metadata.brokers.len(), 2);
        assert_eq!(metadata.controller_id, Some(1));
        assert_eq!(metadata.cluster_id.as_deref(), Some("fake"));

        let request = ListGroupsRequest::default();
        let r = cluster
            .send_to_broker(2, &request, RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(answered_by(&r), "answered-by-2");
        let r = cluster
            .send_to_controller(&request, RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(answered_by(&r), "answered-by-1");
        assert!(cluster
            .send_to_any(&request, RequestOptions::default())
            .await
            .is_ok());

        // Unknown controller: any broker will do.
        state.controller.store(-1, Ordering::SeqCst);
        cluster.invalidate_metadata();
        assert!(cluster
            .send_to_controller(&request, RequestOptions::default())
            .await
            .is_ok());

        let err = cluster
            .send_to_broker(9, &request, RequestOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnknownBroker(9)), "{err}");
        assert!(err.is_retriable());
    }

    #[tokio::test]
    async fn leaders_come_from_metadata_and_follow_moves_after_errors() {
        let (state, addrs) = fake_cluster().await;
        let cluster = Cluster::connect(config(addrs)).await.unwrap();
        let leader = cluster.leader_for("orders", 1).await.unwrap();
        assert_eq!(
            leader,
            PartitionLeader {
                node_id: 2,
                leader_epoch: 7
            }
        );
        let topic = cluster.cached_metadata().topics["orders"].clone();
        assert_eq!(topic.topic_id, Uuid::from_u64_pair(1, 2));
        assert_eq!(
            topic
                .partitions
                .iter()
                .map(|p| p.partition)
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );

        let err = cluster.leader_for("orders", 2).await.unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::LeaderNotAvailable));
        assert!(err.is_retriable());
        let err = cluster.leader_for("orders", 9).await.unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition));
        let err = cluster.leader_for("nope", 0).await.unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::UnknownTopicOrPartition));

        // Leadership moves; the cache is fresh so it still says broker 1.
        assert_eq!(cluster.leader_for("orders", 0).await.unwrap().node_id, 1);
        state.leader_of_p0.store(2, Ordering::SeqCst);
        assert_eq!(cluster.leader_for("orders", 0).await.unwrap().node_id, 1);
        // An operation that fails with NOT_LEADER_OR_FOLLOWER while it talks
        // to the wrong broker: the retry helper refreshes metadata.
        let attempts = AtomicUsize::new(0);
        let leader = cluster
            .retry("produce", None, || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                let leader = cluster.leader_for("orders", 0).await?;
                if leader.node_id != 2 {
                    return Err(Error::Broker {
                        api: ApiKey::Produce,
                        code: ErrorCode::NotLeaderOrFollower,
                        message: None,
                    });
                }
                Ok(leader)
            })
            .await
            .unwrap();
        assert_eq!(leader.node_id, 2);
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn coordinators_are_found_batched_cached_and_invalidated() {
        let (state, addrs) = fake_cluster().await;
        let cluster = Cluster::connect(config(addrs.clone())).await.unwrap();
        let c = cluster
            .find_coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap();
        assert_eq!((c.node_id, c.address()), (2, addrs[1].clone()));
        assert_eq!(state.find_coordinator_calls.load(Ordering::SeqCst), 1);
        cluster
            .find_coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap();
        assert_eq!(
            state.find_coordinator_calls.load(Ordering::SeqCst),
            1,
            "not cached"
        );
        cluster.invalidate_coordinator(CoordinatorType::Group, "g");
        cluster
            .find_coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap();
        assert_eq!(state.find_coordinator_calls.load(Ordering::SeqCst), 2);

        // Batched on v4+: one request for three keys, errors per key.
        let results = cluster
            .find_coordinators(CoordinatorType::Transaction, &["a", "missing", "b"])
            .await
            .unwrap();
        assert_eq!(state.find_coordinator_calls.load(Ordering::SeqCst), 3);
        assert!(results[0].1.is_ok() && results[2].1.is_ok());
        let err = results[1].1.as_ref().unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::CoordinatorNotAvailable));
        assert!(err.is_retriable() && err.invalidates_coordinator());

        let r = cluster
            .send_to_coordinator(
                CoordinatorType::Group,
                "g",
                &ListGroupsRequest::default(),
                RequestOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(answered_by(&r), "answered-by-2");
    }

    #[tokio::test]
    async fn coordinator_lookup_falls_back_to_one_key_per_request_on_old_brokers() {
        let (state, addrs) = fake_cluster().await;
        state.find_coordinator_max.store(3, Ordering::SeqCst);
        let cluster = Cluster::connect(config(addrs)).await.unwrap();
        let results = cluster
            .find_coordinators(CoordinatorType::Group, &["x", "missing"])
            .await
            .unwrap();
        assert_eq!(state.find_coordinator_calls.load(Ordering::SeqCst), 2);
        assert_eq!(results[0].1.as_ref().unwrap().node_id, 2);
        assert_eq!(
            results[1].1.as_ref().unwrap_err().error_code(),
            Some(ErrorCode::CoordinatorNotAvailable)
        );
    }

    #[tokio::test]
    async fn broken_pooled_connections_are_replaced() {
        let (_state, addrs) = fake_cluster().await;
        let cluster = Cluster::connect(config(addrs)).await.unwrap();
        let first = cluster.broker_connection(1).await.unwrap();
        let again = cluster.broker_connection(1).await.unwrap();
        assert_eq!(first.in_flight(), again.in_flight());
        let err = cluster
            .send_to_broker(
                1,
                &crate::protocol::messages::DescribeGroupsRequest::default(),
                RequestOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Disconnected { .. }), "{err}");
        assert!(first.is_closed());
        let r = cluster
            .send_to_broker(1, &ListGroupsRequest::default(), RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(answered_by(&r), "answered-by-1");
        assert!(!cluster.broker_connection(1).await.unwrap().is_closed());
    }

    #[tokio::test]
    async fn idle_connections_are_closed_and_replaced_when_used_again() {
        let (_state, addrs) = fake_cluster().await;
        let mut config = config(addrs);
        config.connections_max_idle = Duration::from_millis(60);
        let cluster = Cluster::connect(config).await.unwrap();
        let first = cluster.broker_connection(1).await.unwrap();
        assert!(!first.is_closed());
        assert!(first.idle_for().is_some());
        // The background reaper closes it once it has been idle too long.
        tokio::time::timeout(Duration::from_secs(5), async {
            while !first.is_closed() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the idle connection was not closed");
        // The next use opens a new one.
        let r = cluster
            .send_to_broker(1, &ListGroupsRequest::default(), RequestOptions::default())
            .await
            .unwrap();
        assert_eq!(answered_by(&r), "answered-by-1");
        let second = cluster.broker_connection(1).await.unwrap();
        assert!(!second.is_closed());
    }

    #[tokio::test]
    async fn a_refresh_in_flight_loses_neither_a_new_topic_nor_an_invalidation() {
        let (state, addrs) = fake_cluster().await;
        let cluster = Cluster::connect(config(addrs)).await.unwrap();
        state.metadata_delay_ms.store(200, Ordering::SeqCst);
        // A refresh for "orders" is in flight...
        let first = {
            let cluster = cluster.clone();
            tokio::spawn(async move { cluster.leader_for("orders", 0).await })
        };
        while state.metadata_calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // ...when another caller needs a topic that refresh did not ask for.
        let late = cluster.leader_for("orders-late", 1).await;
        assert_eq!(
            late.map(|l| l.node_id).map_err(|e| e.to_string()),
            Ok(2),
            "the caller got the in-flight refresh, which lacks its topic"
        );
        assert_eq!(first.await.unwrap().unwrap().node_id, 1);

        // An invalidation during an in-flight refresh is not lost either.
        let calls = state.metadata_calls.load(Ordering::SeqCst);
        cluster.invalidate_metadata();
        let refreshing = {
            let cluster = cluster.clone();
            tokio::spawn(async move { cluster.metadata().await })
        };
        while state.metadata_calls.load(Ordering::SeqCst) <= calls {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Leadership moves after that refresh's request was answered.
        state.leader_of_p0.store(2, Ordering::SeqCst);
        cluster.invalidate_metadata();
        refreshing.await.unwrap().unwrap();
        let leader = cluster.metadata().await.unwrap().leader_for("orders", 0);
        assert_eq!(
            leader.unwrap().node_id,
            2,
            "the invalidation made during the refresh was lost"
        );
    }

    #[tokio::test]
    async fn one_refresher_single_flight_rate_limited_periodic_and_notifying() {
        let (state, addrs) = fake_cluster().await;
        let mut config = config(addrs);
        config.retry_backoff = Duration::from_millis(30);
        let cluster = Cluster::connect(config).await.unwrap();
        let before = state.metadata_calls.load(Ordering::SeqCst);
        let first = cluster.snapshot();
        assert!(first.generation() >= 1);

        // Twenty concurrent callers share at most two fetches.
        let callers: Vec<_> = (0..20)
            .map(|i| {
                let cluster = cluster.clone();
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        cluster.refresh_metadata().await.map(|_| ())
                    } else {
                        cluster.metadata_for_topics(&["orders"]).await.map(|_| ())
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap().unwrap();
        }
        let fetches = state.metadata_calls.load(Ordering::SeqCst) - before;
        assert!((1..=2).contains(&fetches), "{fetches} fetches");
        let snapshot = cluster.snapshot();
        let orders = snapshot.topic("orders").unwrap();
        assert_eq!(orders.partition(1).unwrap().leader_id, 2);
        assert_eq!(orders.available_partitions(), &[0, 1]);

        // A change notification follows a requested refresh.
        let seen = snapshot.generation();
        let waiter = {
            let cluster = cluster.clone();
            tokio::spawn(async move { cluster.metadata_changed(seen).await })
        };
        cluster.request_metadata_refresh();
        let newer = waiter.await.unwrap();
        assert!(newer.generation() > seen);

        // The refresher task ends with the last handle.
        let alive = cluster.refresher_liveness();
        assert!(alive.upgrade().is_some());
        let clone = cluster.clone();
        drop(cluster);
        assert!(alive.upgrade().is_some(), "a clone is still alive");
        drop(clone);
        tokio::time::timeout(Duration::from_secs(5), async {
            while alive.upgrade().is_some() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the refresher outlived the last cluster handle");
    }

    #[tokio::test]
    async fn metadata_is_refreshed_every_max_age() {
        let (state, addrs) = fake_cluster().await;
        let mut config = config(addrs);
        config.metadata_max_age = Duration::from_millis(40);
        let cluster = Cluster::connect(config).await.unwrap();
        let generation = cluster.snapshot().generation();
        // Nobody asks; the periodic refresh still comes.
        let newer = tokio::time::timeout(
            Duration::from_secs(5),
            cluster.metadata_changed(generation + 2),
        )
        .await
        .expect("no periodic refresh");
        assert!(newer.generation() > generation + 2);
        assert!(state.metadata_calls.load(Ordering::SeqCst) >= 3);
    }

    #[tokio::test]
    async fn callers_waiting_for_a_reconnect_share_one_attempt() {
        // Accepts TCP, never answers ApiVersions: every attempt runs into
        // the setup timeout.
        let (addr, accepted) = spawn_counting_tcp(Arc::new(|_, _| Reply::Silent)).await;
        let mut config = config(vec![addr.clone()]);
        config.connection_setup_timeout = Duration::from_millis(300);
        let cluster = Cluster::new(config).unwrap();
        let callers: Vec<_> = (0..5)
            .map(|_| {
                let (cluster, addr) = (cluster.clone(), addr.clone());
                tokio::spawn(async move { cluster.connection(&addr).await })
            })
            .collect();
        for caller in callers {
            let err = caller.await.unwrap().unwrap_err();
            assert!(matches!(err, Error::ConnectTimeout { .. }), "{err}");
            assert!(err.is_retriable());
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "each waiting caller repeated the failed attempt"
        );
    }

    #[tokio::test]
    async fn bootstrap_servers_are_tried_in_random_order() {
        let mut servers = Vec::new();
        let mut counters = Vec::new();
        for _ in 0..4 {
            let handler: crate::network::testing::Handler = Arc::new(|header, body| match body {
                RequestKind::ApiVersions(_) => Reply::now(
                    ResponseKind::ApiVersions(api_versions(|api| Some(api.valid_versions()))),
                    header,
                ),
                _ => Reply::Close,
            });
            let (addr, accepted) = spawn_counting_tcp(handler).await;
            servers.push(addr);
            counters.push(accepted);
        }
        for _ in 0..16 {
            let cluster = Cluster::new(config(servers.clone())).unwrap();
            cluster.any_connection().await.unwrap();
        }
        let used = counters
            .iter()
            .filter(|c| c.load(Ordering::SeqCst) > 0)
            .count();
        assert!(
            used > 1,
            "16 clients all bootstrapped from the first server listed"
        );
    }

    #[tokio::test]
    async fn a_request_timeout_forgets_the_coordinator_and_refreshes_metadata() {
        let (state, addrs) = fake_cluster().await;
        let cluster = Cluster::connect(config(addrs)).await.unwrap();
        let generation = cluster.snapshot().generation();
        let request = crate::protocol::messages::HeartbeatRequest::default();
        let err = cluster
            .send_to_coordinator(
                CoordinatorType::Group,
                "g",
                &request,
                RequestOptions::role(ConnectionRole::Group).with_timeout(Duration::from_millis(50)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RequestTimeout { .. }), "{err}");
        assert_eq!(state.find_coordinator_calls.load(Ordering::SeqCst), 1);
        cluster
            .find_coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap();
        assert_eq!(
            state.find_coordinator_calls.load(Ordering::SeqCst),
            2,
            "the coordinator that timed out was still cached"
        );
        // The timeout also asked for fresh metadata.
        tokio::time::timeout(Duration::from_secs(5), cluster.metadata_changed(generation))
            .await
            .expect("a request timeout did not refresh metadata");

        // Body-level NOT_COORDINATOR goes through coordinator_error.
        assert!(cluster.coordinator_error(CoordinatorType::Group, "g", ErrorCode::NotCoordinator));
        cluster
            .find_coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap();
        assert_eq!(state.find_coordinator_calls.load(Ordering::SeqCst), 3);
        assert!(!cluster.coordinator_error(
            CoordinatorType::Group,
            "g",
            ErrorCode::UnknownMemberId
        ));
        cluster
            .find_coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap();
        assert_eq!(state.find_coordinator_calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn roles_get_their_own_pooled_connections() {
        let (_state, addrs) = fake_cluster().await;
        let cluster = Cluster::connect(config(addrs)).await.unwrap();
        let general = cluster.broker_connection(1).await.unwrap();
        let produce = cluster
            .broker_connection_for(1, ConnectionRole::Produce)
            .await
            .unwrap();
        let fetch = cluster
            .broker_connection_for(1, ConnectionRole::Fetch)
            .await
            .unwrap();
        assert_eq!(produce.role(), ConnectionRole::Produce);
        assert_eq!(produce.max_in_flight(), 5);
        assert_eq!(fetch.max_in_flight(), usize::MAX);
        // Distinct connections: closing one leaves the others open.
        produce.close();
        assert!(!general.is_closed() && !fetch.is_closed());
        let again = cluster
            .broker_connection_for(1, ConnectionRole::Produce)
            .await
            .unwrap();
        assert!(!again.is_closed());
        let (info, group) = cluster
            .coordinator_connection(CoordinatorType::Group, "g", ConnectionRole::Group)
            .await
            .unwrap();
        assert_eq!((info.node_id, group.role()), (2, ConnectionRole::Group));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_heartbeat_is_answered_while_a_join_and_a_long_fetch_are_held_by_the_same_broker() {
        use crate::protocol::messages::{
            FetchRequest, FetchResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
            JoinGroupResponse,
        };
        let port = Arc::new(AtomicI32::new(0));
        let held = Duration::from_millis(1500);
        let handler: crate::network::testing::Handler = {
            let port = port.clone();
            Arc::new(move |header, body| {
                let port = port.load(Ordering::SeqCst);
                let blocking = |body| Reply::Blocking {
                    body,
                    version: header.request_api_version,
                    delay: held,
                };
                match body {
                    RequestKind::ApiVersions(_) => Reply::now(
                        ResponseKind::ApiVersions(api_versions(|api| Some(api.valid_versions()))),
                        header,
                    ),
                    RequestKind::Metadata(_) => Reply::now(
                        ResponseKind::Metadata(MetadataResponse::default().with_brokers(vec![
                            MetadataResponseBroker::default()
                                .with_node_id(1)
                                .with_host("127.0.0.1".into())
                                .with_port(port),
                        ])),
                        header,
                    ),
                    RequestKind::FindCoordinator(_) if header.request_api_version < 4 => {
                        Reply::now(
                            ResponseKind::FindCoordinator(
                                FindCoordinatorResponse::default()
                                    .with_node_id(1)
                                    .with_host("127.0.0.1".into())
                                    .with_port(port),
                            ),
                            header,
                        )
                    }
                    RequestKind::FindCoordinator(f) => Reply::now(
                        ResponseKind::FindCoordinator(
                            FindCoordinatorResponse::default().with_coordinators(
                                f.coordinator_keys
                                    .iter()
                                    .map(|k| {
                                        Coordinator::default()
                                            .with_key(k.clone())
                                            .with_node_id(1)
                                            .with_host("127.0.0.1".into())
                                            .with_port(port)
                                    })
                                    .collect(),
                            ),
                        ),
                        header,
                    ),
                    // Held like a broker holds a long-poll or a join.
                    RequestKind::Fetch(_) => {
                        blocking(ResponseKind::Fetch(FetchResponse::default()))
                    }
                    RequestKind::JoinGroup(_) => {
                        blocking(ResponseKind::JoinGroup(JoinGroupResponse::default()))
                    }
                    RequestKind::Heartbeat(_) => Reply::now(
                        ResponseKind::Heartbeat(HeartbeatResponse::default()),
                        header,
                    ),
                    _ => Reply::Close,
                }
            })
        };
        let addr = spawn_tcp(handler).await;
        port.store(
            addr.rsplit_once(':').unwrap().1.parse().unwrap(),
            Ordering::SeqCst,
        );
        let cluster = Cluster::connect(config(vec![addr])).await.unwrap();
        // The member knows its coordinator (FindCoordinator goes over the
        // general connection, which the join below holds).
        cluster
            .find_coordinator(CoordinatorType::Group, "g")
            .await
            .unwrap();
        let long = RequestOptions::default().with_timeout(Duration::from_secs(10));
        let fetch = {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let request = FetchRequest::default().with_max_wait_ms(1500);
                let options = RequestOptions {
                    role: ConnectionRole::Fetch,
                    ..long
                };
                cluster.send_to_broker(1, &request, options).await
            })
        };
        let join = {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let request = JoinGroupRequest::default().with_group_id("other".into());
                cluster
                    .send_to_coordinator(CoordinatorType::Group, "other", &request, long)
                    .await
            })
        };
        // Both are on the wire and held by the broker.
        while cluster
            .broker_connection_for(1, ConnectionRole::Fetch)
            .await
            .unwrap()
            .in_flight()
            == 0
            || cluster.broker_connection(1).await.unwrap().in_flight() == 0
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let heartbeat = HeartbeatRequest::default().with_group_id("g".into());
        cluster
            .send_to_coordinator(
                CoordinatorType::Group,
                "g",
                &heartbeat,
                RequestOptions::role(ConnectionRole::Group),
            )
            .await
            .unwrap();
        assert!(
            !fetch.is_finished() && !join.is_finished(),
            "the heartbeat was answered only after the held requests"
        );
        // The fake holds a connection like a broker does: a heartbeat queued
        // behind the fetch on the same connection waits for it.
        let mut fetch = fetch;
        cluster
            .send_to_broker(1, &heartbeat, RequestOptions::role(ConnectionRole::Fetch))
            .await
            .unwrap();
        let fetched = tokio::time::timeout(Duration::from_millis(500), &mut fetch).await;
        assert!(fetched.is_ok(), "the fake does not hold connections");
        fetched.unwrap().unwrap().unwrap();
        join.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn retry_helper_backs_off_and_respects_deadlines() {
        let cluster = Cluster::new(config(vec!["127.0.0.1:1".into()])).unwrap();
        let retriable = || Error::Broker {
            api: ApiKey::Metadata,
            code: ErrorCode::CoordinatorLoadInProgress,
            message: None,
        };
        // Succeeds on the third attempt after two backoffs.
        let attempts = AtomicUsize::new(0);
        let started = Instant::now();
        let value = cluster
            .retry("op", None, || async {
                if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(retriable())
                } else {
                    Ok(42)
                }
            })
            .await
            .unwrap();
        assert_eq!(value, 42);
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert!(
            started.elapsed() >= Duration::from_millis(4 + 8),
            "{:?}",
            started.elapsed()
        );

        // Non-retriable errors surface at once.
        let attempts = AtomicUsize::new(0);
        let err = cluster
            .retry("op", None, || async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(Error::Broker {
                    api: ApiKey::Metadata,
                    code: ErrorCode::TopicAuthorizationFailed,
                    message: None,
                })
            })
            .await
            .unwrap_err();
        assert_eq!(err.error_code(), Some(ErrorCode::TopicAuthorizationFailed));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);

        // Retriable forever: bounded by the deadline, last error kept.
        let started = Instant::now();
        let err = cluster
            .retry("op", Some(Duration::from_millis(100)), || async {
                Err::<(), _>(retriable())
            })
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(500));
        match err {
            Error::Timeout {
                attempts,
                last: Some(last),
                ..
            } => {
                assert!(attempts >= 3, "{attempts}");
                assert_eq!(
                    last.error_code(),
                    Some(ErrorCode::CoordinatorLoadInProgress)
                );
            }
            other => panic!("{other}"),
        }
        // An attempt that hangs is cut at the deadline.
        let err = cluster
            .retry("hang", Some(Duration::from_millis(30)), || {
                std::future::pending::<Result<()>>()
            })
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout { last: None, .. }), "{err}");
        assert!(!err.is_retriable());
    }

    #[tokio::test]
    async fn no_reachable_broker_is_a_retriable_typed_error() {
        let dead = dead_addr().await;
        let cluster = Cluster::new(config(vec![dead.clone()])).unwrap();
        let err = cluster.refresh_metadata().await.unwrap_err();
        match &err {
            Error::NoBrokerAvailable { tried, .. } => assert_eq!(tried, &vec![dead]),
            other => panic!("{other}"),
        }
        assert!(err.is_retriable());
        assert!(Cluster::new(ClientConfig::default()).is_err());
    }
}
