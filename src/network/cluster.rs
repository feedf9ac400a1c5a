//! A cluster-aware client: bootstrap, metadata cache, connection pool,
//! request routing, coordinator lookup and retries.
//!
//! Metadata is fetched lazily: on first use, when older than
//! `metadata.max.age.ms`, after [`Cluster::invalidate_metadata`] (which the
//! retry helper calls for errors that mean leadership moved), and when a
//! topic is asked about for the first time. Only topics the client asked
//! about are fetched, never the whole cluster.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use tokio_rustls::TlsConnector;

use crate::protocol::messages::find_coordinator_response::Coordinator;
use crate::protocol::messages::metadata_request::MetadataRequestTopic;
use crate::protocol::messages::{FindCoordinatorRequest, MetadataRequest, MetadataResponse};
use crate::protocol::{ApiKey, ErrorCode, Request, Uuid};

use super::backoff::Backoff;
use super::config::{ClientConfig, ConfigError};
use super::connection::BrokerConnection;
use super::error::{Error, Result};
use super::options::{ConnectionRole, RequestOptions};

/// A broker as listed in metadata (or found as a coordinator).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerInfo {
    /// The broker's id.
    pub node_id: i32,
    /// Its advertised host.
    pub host: String,
    /// Its advertised port.
    pub port: i32,
    /// Its rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// `host:port`, with brackets around IPv6 literals.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The partition index.
    pub partition: i32,
    /// The leader's broker id, or -1 when there is none.
    pub leader_id: i32,
    /// The leader epoch, or -1 when unknown.
    pub leader_epoch: i32,
    /// All replicas.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Offline replicas.
    pub offline_replicas: Vec<i32>,
    /// The partition-level error, if any.
    pub error: ErrorCode,
}

/// One topic's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// The topic name.
    pub name: String,
    /// The topic id ([`Uuid::ZERO`] before Metadata v10).
    pub topic_id: Uuid,
    /// Whether the topic is internal (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// The topic-level error, if any.
    pub error: ErrorCode,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionMetadata>,
}

/// A snapshot of the cluster's layout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// The cluster id, if the broker sent one.
    pub cluster_id: Option<String>,
    /// The controller's broker id, if known.
    pub controller_id: Option<i32>,
    /// Brokers by id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: HashMap<String, TopicMetadata>,
}

impl ClusterMetadata {
    /// Builds a snapshot from a Metadata response.
    pub fn from_response(response: &MetadataResponse) -> Self {
        let brokers = response
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id,
                    BrokerInfo {
                        node_id: b.node_id,
                        host: b.host.clone(),
                        port: b.port,
                        rack: b.rack.clone(),
                    },
                )
            })
            .collect();
        let topics = response
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.clone()?;
                let mut partitions: Vec<_> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionMetadata {
                        partition: p.partition_index,
                        leader_id: p.leader_id,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.clone(),
                        isr: p.isr_nodes.clone(),
                        offline_replicas: p.offline_replicas.clone(),
                        error: ErrorCode::from_code(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                Some((
                    name.clone(),
                    TopicMetadata {
                        name,
                        topic_id: t.topic_id,
                        is_internal: t.is_internal,
                        error: ErrorCode::from_code(t.error_code),
                        partitions,
                    },
                ))
            })
            .collect();
        ClusterMetadata {
            cluster_id: response.cluster_id.clone(),
            controller_id: (response.controller_id >= 0).then_some(response.controller_id),
            brokers,
            topics,
        }
    }

    /// The leader of `topic`/`partition`, or the error that explains why
    /// there is none.
    pub fn leader_for(&self, topic: &str, partition: i32) -> Result<PartitionLeader> {
        let missing = |code| Error::Broker {
            api: ApiKey::Metadata,
            code,
            message: Some(format!("{topic}-{partition}")),
        };
        let t = self
            .topics
            .get(topic)
            .ok_or_else(|| missing(ErrorCode::UnknownTopicOrPartition))?;
        if t.error != ErrorCode::None {
            return Err(missing(t.error));
        }
        let p = t
            .partitions
            .binary_search_by_key(&partition, |p| p.partition)
            .map(|i| &t.partitions[i])
            .map_err(|_| missing(ErrorCode::UnknownTopicOrPartition))?;
        if p.leader_id < 0 {
            return Err(missing(if p.error != ErrorCode::None {
                p.error
            } else {
                ErrorCode::LeaderNotAvailable
            }));
        }
        Ok(PartitionLeader {
            node_id: p.leader_id,
            leader_epoch: p.leader_epoch,
        })
    }
}

/// A partition's leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLeader {
    /// The leader's broker id.
    pub node_id: i32,
    /// The leader epoch (-1 when the broker did not send one).
    pub leader_epoch: i32,
}

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

struct Cached {
    metadata: Arc<ClusterMetadata>,
    fetched_at: Option<Instant>,
    stale: bool,
    generation: u64,
}

struct Inner {
    config: Arc<ClientConfig>,
    tls: Option<TlsConnector>,
    cache: RwLock<Cached>,
    refresh: tokio::sync::Mutex<()>,
    topics: Mutex<BTreeSet<String>>,
    pool: Mutex<HashMap<(String, ConnectionRole), Arc<PoolEntry>>>,
    coordinators: Mutex<HashMap<(CoordinatorType, String), BrokerInfo>>,
}

/// Whether a connection has had nothing in flight for longer than `max_idle`.
fn idle_too_long(conn: &BrokerConnection, max_idle: Duration) -> bool {
    conn.idle_for().is_some_and(|idle| idle > max_idle)
}

/// A client for a whole cluster: cheap to clone, safe to share.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrokafka::network::Error> {
/// use ferrokafka::network::{ClientConfig, Cluster};
/// use ferrokafka::protocol::messages::ListGroupsRequest;
///
/// let config = ClientConfig::builder().bootstrap_servers(["localhost:9092"]).build()?;
/// let cluster = Cluster::connect(config).await?;
/// let leader = cluster.leader_for("orders", 0).await?;
/// let request = ListGroupsRequest::default();
/// let groups = cluster
///     .retry("list groups", None, || cluster.send_to_broker(leader.node_id, &request))
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

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
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
                cache: RwLock::new(Cached {
                    metadata: Arc::default(),
                    fetched_at: None,
                    stale: true,
                    generation: 0,
                }),
                refresh: tokio::sync::Mutex::new(()),
                topics: Mutex::default(),
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
        let mut candidates: Vec<String> = read(&self.inner.cache)
            .metadata
            .brokers
            .values()
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
        read(&self.inner.cache)
            .metadata
            .brokers
            .get(&node_id)
            .cloned()
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
        match self.metadata().await?.controller_id {
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

    /// The cached metadata, refreshed first if it is missing, stale or older
    /// than `metadata.max.age.ms`.
    pub async fn metadata(&self) -> Result<Arc<ClusterMetadata>> {
        {
            let cache = read(&self.inner.cache);
            let fresh = cache
                .fetched_at
                .is_some_and(|at| at.elapsed() < self.inner.config.metadata_max_age);
            if fresh && !cache.stale {
                return Ok(cache.metadata.clone());
            }
        }
        self.refresh_metadata().await
    }

    /// The cached metadata without any refresh.
    pub fn cached_metadata(&self) -> Arc<ClusterMetadata> {
        read(&self.inner.cache).metadata.clone()
    }

    /// Marks the metadata stale: the next use refreshes it.
    pub fn invalidate_metadata(&self) {
        write(&self.inner.cache).stale = true;
    }

    /// Adds topics to those whose metadata is fetched; returns whether any
    /// was new. A new topic marks the cached metadata stale, so the next use
    /// fetches it.
    pub fn track_topics<I, S>(&self, topics: I) -> bool
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut tracked = lock(&self.inner.topics);
        let mut added = false;
        for t in topics {
            added |= tracked.insert(t.into());
        }
        drop(tracked);
        if added {
            self.invalidate_metadata();
        }
        added
    }

    /// Fetches metadata now (concurrent callers share one fetch).
    pub async fn refresh_metadata(&self) -> Result<Arc<ClusterMetadata>> {
        let started = read(&self.inner.cache).generation;
        let _single_flight = self.inner.refresh.lock().await;
        {
            let cache = read(&self.inner.cache);
            if cache.generation != started && !cache.stale {
                // Someone refreshed while we waited.
                return Ok(cache.metadata.clone());
            }
        }
        let topics: Vec<String> = lock(&self.inner.topics).iter().cloned().collect();
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
        let metadata = Arc::new(ClusterMetadata::from_response(&response));
        tracing::debug!(
            broker = %conn.broker(),
            brokers = metadata.brokers.len(),
            topics = metadata.topics.len(),
            latency_us = started_at.elapsed().as_micros() as u64,
            "metadata refreshed"
        );
        let mut cache = write(&self.inner.cache);
        cache.metadata = metadata.clone();
        cache.fetched_at = Some(Instant::now());
        cache.stale = false;
        cache.generation += 1;
        Ok(metadata)
    }

    /// The leader of `topic`/`partition`. Tracks the topic (fetching its
    /// metadata the first time). Errors are typed broker errors
    /// (`UNKNOWN_TOPIC_OR_PARTITION`, `LEADER_NOT_AVAILABLE`, ...), mostly
    /// retriable.
    pub async fn leader_for(&self, topic: &str, partition: i32) -> Result<PartitionLeader> {
        self.track_topics([topic]);
        self.metadata().await?.leader_for(topic, partition)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::testing::{api_versions, spawn_tcp, Reply};
    use crate::protocol::messages::list_groups_response::ListedGroup;
    use crate::protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use crate::protocol::messages::{
        FindCoordinatorResponse, ListGroupsRequest, ListGroupsResponse,
    };
    use crate::protocol::{RequestKind, ResponseKind, VersionRange};
    use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

    /// The shared state of a two-broker fake cluster.
    #[derive(Default)]
    struct FakeCluster {
        brokers: Mutex<Vec<(i32, u16)>>,
        controller: AtomicI32,
        leader_of_p0: AtomicI32,
        find_coordinator_max: AtomicI32,
        find_coordinator_calls: AtomicUsize,
        metadata_calls: AtomicUsize,
    }

    fn metadata(state: &FakeCluster, request: &MetadataRequest) -> MetadataResponse {
        let brokers = state
            .brokers
            .lock()
            .unwrap()
            .iter()
            .map(|&(id, port)| {
                MetadataResponseBroker::default()
                    .with_node_id(id)
                    .with_host("127.0.0.1".into())
                    .with_port(port as i32)
            })
            .collect();
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
                if name == "orders" {
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
                Reply::now(ResponseKind::Metadata(metadata(&state, &m)), header)
            }
            RequestKind::ListGroups(_) => Reply::now(
                ResponseKind::ListGroups(ListGroupsResponse::default().with_groups(vec![
                    ListedGroup::default().with_group_id(format!("answered-by-{node_id}")),
                ])),
                header,
            ),
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
