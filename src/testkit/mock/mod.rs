//! An in-process, multi-broker mock Kafka cluster for fast, deterministic
//! tests: no Python, no Docker, no JVM.
//!
//! [`MockCluster::start`] runs `n` brokers on `127.0.0.1` ports, each a set of
//! tokio tasks on the cluster's own runtime thread, answering with this
//! crate's generated codecs. It is enough of Kafka for real clients
//! (ferrokafka's, librdkafka, kafka-python) to run against it unchanged:
//!
//! * ApiVersions (only what it implements, up to the newest stable versions
//!   of this crate's codecs), Metadata with leader epochs, CreateTopics,
//!   DeleteTopics, FindCoordinator;
//! * Produce (batches stored as received, offsets assigned by the leader,
//!   idempotent sequence checks), Fetch (KIP-227 sessions, byte limits, long
//!   polls woken by produce, read_committed), ListOffsets, OffsetForLeaderEpoch;
//!   as in Kafka, a retried batch among its producer's last five is answered
//!   NONE with its original offset (DUPLICATE_SEQUENCE_NUMBER is never sent),
//!   a sequence gap, or a first sequence above 0 from an unknown producer or a
//!   new epoch, gets OUT_OF_ORDER_SEQUENCE_NUMBER, and an older epoch
//!   INVALID_PRODUCER_EPOCH (PRODUCER_FENCED for transactional batches);
//! * InitProducerId and transactions (AddPartitionsToTxn, AddOffsetsToTxn,
//!   TxnOffsetCommit, EndTxn writing control batches; LSO and aborted
//!   transaction lists for read_committed fetches);
//! * the classic group coordinator (JoinGroup with KIP-394 member ids and
//!   static members, SyncGroup, Heartbeat, LeaveGroup, session and rebalance
//!   timeouts, OffsetCommit, OffsetFetch).
//!
//! Requests for a partition to a broker that does not lead it get
//! NOT_LEADER_OR_FOLLOWER, and group or transaction requests to the wrong
//! broker NOT_COORDINATOR, as in Kafka. An API it does not implement is not
//! listed in ApiVersions and closes the connection, as a broker does.
//!
//! The control API drives what a single real broker cannot: move a
//! partition's leader (bumping its epoch) or a coordinator, stop and restart a
//! broker (its port is kept), inject a [`Fault`] into the next N requests of an
//! API (an error code, latency, a dropped connection), truncate a partition
//! (KIP-320), and inspect logs, groups and request counts.
//!
//! ```
//! use std::time::Duration;
//! use ferrokafka::protocol::{ApiKey, ErrorCode};
//! use ferrokafka::protocol::messages::{MetadataRequest, ProduceRequest};
//! use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
//! use ferrokafka::records::{Compression, RecordBatchBuilder};
//! use ferrokafka::testkit::BlockingClient;
//! use ferrokafka::testkit::mock::{Fault, MockCluster};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cluster = MockCluster::start(3)?;
//! cluster.create_topic("orders", 3, 2)?;
//! let (leader, epoch) = cluster.partition_leader("orders", 0)?;
//!
//! // Produce one record to the leader with the blocking test client.
//! let mut batch = RecordBatchBuilder::new(Compression::None);
//! batch.append(1_700_000_000_000, Some(b"k"), Some(b"v"), &[])?;
//! let produce = ProduceRequest::default()
//!     .with_acks(-1)
//!     .with_timeout_ms(5_000)
//!     .with_topic_data(vec![TopicProduceData::default()
//!         .with_name("orders".into())
//!         .with_partition_data(vec![PartitionProduceData::default()
//!             .with_index(0)
//!             .with_records(Some(batch.finish()?))])]);
//! let timeout = Duration::from_secs(5);
//! let mut client = BlockingClient::connect(&cluster.broker_address(leader)?, timeout)?;
//! let answer = client.send(9, &produce)?;
//! assert_eq!(answer.responses[0].partition_responses[0].base_offset, 0);
//!
//! // Move the leader: the old one now refuses, the epoch went up.
//! let other = cluster.broker_ids().into_iter().find(|&b| b != leader).unwrap();
//! assert_eq!(cluster.move_partition_leader("orders", 0, other)?, epoch + 1);
//! let answer = client.send(9, &produce)?;
//! assert_eq!(
//!     answer.responses[0].partition_responses[0].error_code,
//!     ErrorCode::NotLeaderOrFollower.code()
//! );
//!
//! // The next Metadata request to any broker fails once.
//! cluster.inject(Fault::error(ApiKey::Metadata, ErrorCode::RequestTimedOut));
//! let metadata = client.send(12, &MetadataRequest::default())?;
//! assert_eq!(metadata.topics.len(), 0);
//! assert_eq!(cluster.records("orders", 0)?.len(), 1);
//! # Ok(())
//! # }
//! ```

mod faults;
mod fetch;
mod group;
mod log;
mod metadata;
mod produce;
mod server;
mod state;
mod txn;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::protocol::{ApiKey, ErrorCode};
use crate::records::Record;

pub use faults::{Fault, FaultAction};
pub use group::GroupState;
pub use state::MockOptions;

use state::{Shared, State, GROUP_KEY, TXN_KEY};

/// Why a [`MockCluster`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// Binding a port or starting the runtime failed.
    #[error("{context}: {source}")]
    Io {
        /// What the mock was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// No broker has this node id.
    #[error("no broker with node id {0}")]
    UnknownBroker(i32),
    /// The broker is stopped.
    #[error("broker {0} is stopped")]
    BrokerStopped(i32),
    /// No such topic or partition.
    #[error("no partition {topic}-{partition}")]
    UnknownPartition {
        /// The topic asked for.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// The cluster refused, with the error code a broker would answer.
    #[error("the mock cluster answered {0}")]
    Refused(ErrorCode),
}

/// A snapshot of a group, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// Where the group is in its rebalance cycle.
    pub state: GroupState,
    /// The current generation.
    pub generation: i32,
    /// The member ids, in join order.
    pub members: Vec<String>,
}

struct BrokerHandle {
    node_id: i32,
    port: u16,
    stop: Option<watch::Sender<bool>>,
}

/// An in-process Kafka cluster; see the [module documentation](self).
///
/// Dropping it stops every broker and closes every connection.
pub struct MockCluster {
    shared: Arc<Shared>,
    runtime: tokio::runtime::Handle,
    brokers: Mutex<Vec<BrokerHandle>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for MockCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockCluster")
            .field("bootstrap_servers", &self.bootstrap_servers())
            .finish()
    }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> MockError {
    let context = context.into();
    move |source| MockError::Io { context, source }
}

impl MockCluster {
    /// Starts `brokers` brokers (node ids `1..=brokers`) with default options.
    pub fn start(brokers: usize) -> Result<MockCluster, MockError> {
        MockCluster::start_with(MockOptions {
            brokers,
            ..MockOptions::default()
        })
    }

    /// Starts a cluster as `options` say.
    pub fn start_with(options: MockOptions) -> Result<MockCluster, MockError> {
        let count = options.brokers.max(1);
        let mut listeners = Vec::with_capacity(count);
        for _ in 0..count {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0))
                .map_err(io_error("binding a mock broker to 127.0.0.1"))?;
            listener
                .set_nonblocking(true)
                .map_err(io_error("configuring a mock broker's listener"))?;
            listeners.push(listener);
        }
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<Result<_, _>>()
            .map_err(io_error("reading a mock broker's port"))?;
        let shared = Shared::new(State::new(options, &ports));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io_error("starting the mock cluster's runtime"))?;
        let handle = runtime.handle().clone();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let ticker_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ferrokafka-mock-cluster".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::spawn(tick(ticker_shared));
                    let _ = stopped.await;
                });
            })
            .map_err(io_error("spawning the mock cluster's thread"))?;
        let cluster = MockCluster {
            shared,
            runtime: handle,
            brokers: Mutex::new(Vec::new()),
            shutdown: Some(shutdown),
            thread: Some(thread),
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            let node_id = i as i32 + 1;
            let stop = cluster.serve(node_id, listener);
            cluster.lock_brokers().push(BrokerHandle {
                node_id,
                port: ports[i],
                stop: Some(stop),
            });
        }
        Ok(cluster)
    }

    fn serve(&self, node_id: i32, listener: std::net::TcpListener) -> watch::Sender<bool> {
        let (stop, stopped) = watch::channel(false);
        self.runtime.spawn(server::serve_broker(
            self.shared.clone(),
            node_id,
            listener,
            stopped,
        ));
        stop
    }

    fn lock_brokers(&self) -> std::sync::MutexGuard<'_, Vec<BrokerHandle>> {
        self.brokers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `127.0.0.1:PORT` of every broker, comma-separated.
    pub fn bootstrap_servers(&self) -> String {
        self.lock_brokers()
            .iter()
            .map(|b| format!("127.0.0.1:{}", b.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The node ids, `1..=n`.
    pub fn broker_ids(&self) -> Vec<i32> {
        self.lock_brokers().iter().map(|b| b.node_id).collect()
    }

    /// `127.0.0.1:PORT` of one broker.
    pub fn broker_address(&self, node_id: i32) -> Result<String, MockError> {
        self.lock_brokers()
            .iter()
            .find(|b| b.node_id == node_id)
            .map(|b| format!("127.0.0.1:{}", b.port))
            .ok_or(MockError::UnknownBroker(node_id))
    }

    /// Creates a topic, its replicas spread round-robin over the brokers
    /// (`-1` takes the defaults, as CreateTopics does).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<(), MockError> {
        self.shared
            .lock()
            .create_topic(name, partitions, replication)
            .map(|_| ())
            .map_err(MockError::Refused)
    }

    /// Grows a topic to `partitions` partitions (as CreatePartitions would);
    /// clients learn of them with their next metadata refresh.
    pub fn add_partitions(&self, name: &str, partitions: i32) -> Result<(), MockError> {
        self.shared
            .lock()
            .add_partitions(name, partitions)
            .map_err(MockError::Refused)
    }

    fn with_partition<T>(
        &self,
        topic: &str,
        partition: i32,
        f: impl FnOnce(&mut State) -> Result<T, MockError>,
    ) -> Result<T, MockError> {
        let mut state = self.shared.lock();
        if state.partition(topic, partition).is_none() {
            return Err(MockError::UnknownPartition {
                topic: topic.to_owned(),
                partition,
            });
        }
        f(&mut state)
    }

    /// The partition's leader (`-1` if none) and leader epoch.
    pub fn partition_leader(&self, topic: &str, partition: i32) -> Result<(i32, i32), MockError> {
        self.with_partition(topic, partition, |state| {
            let log = state.partition(topic, partition).expect("checked");
            Ok((log.leader, log.leader_epoch))
        })
    }

    /// The partition's replicas; the first is the preferred leader.
    pub fn partition_replicas(&self, topic: &str, partition: i32) -> Result<Vec<i32>, MockError> {
        self.with_partition(topic, partition, |state| {
            Ok(state
                .partition(topic, partition)
                .expect("checked")
                .replicas
                .clone())
        })
    }

    /// Makes `node_id` the partition's leader (adding it to the replicas if
    /// needed) in a new leader epoch, which is returned. The old leader
    /// answers NOT_LEADER_OR_FOLLOWER from now on.
    pub fn move_partition_leader(
        &self,
        topic: &str,
        partition: i32,
        node_id: i32,
    ) -> Result<i32, MockError> {
        let epoch = self.with_partition(topic, partition, |state| {
            match state.broker(node_id) {
                None => return Err(MockError::UnknownBroker(node_id)),
                Some(b) if !b.alive => return Err(MockError::BrokerStopped(node_id)),
                Some(_) => {}
            }
            let log = state.partition_mut(topic, partition).expect("checked");
            if !log.replicas.contains(&node_id) {
                log.replicas.push(node_id);
            }
            log.set_leader(node_id);
            Ok(log.leader_epoch)
        })?;
        self.shared.data_arrived.notify_waiters();
        Ok(epoch)
    }

    /// Truncates the partition from the batch holding `offset` on and starts
    /// a new leader epoch, as an unclean leader election would (KIP-320).
    pub fn truncate_partition(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), MockError> {
        self.with_partition(topic, partition, |state| {
            state
                .partition_mut(topic, partition)
                .expect("checked")
                .truncate(offset);
            Ok(())
        })?;
        self.shared.data_arrived.notify_waiters();
        Ok(())
    }

    /// Moves the partition's log start offset forward to `offset`, as
    /// DeleteRecords or retention would, and returns the new log start. The
    /// broker forgets every producer whose records are all before it: that
    /// producer's next batch with a sequence above 0 is then answered
    /// UNKNOWN_PRODUCER_ID by brokers before Kafka 2.5 (inject that with
    /// [`Fault::error`]; Produce errors carry the log start offset).
    pub fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, MockError> {
        self.with_partition(topic, partition, |state| {
            Ok(state
                .partition_mut(topic, partition)
                .expect("checked")
                .delete_records(offset))
        })
    }

    /// The partition's high watermark (every replica is in sync: the log end).
    pub fn high_watermark(&self, topic: &str, partition: i32) -> Result<i64, MockError> {
        self.with_partition(topic, partition, |state| {
            Ok(state
                .partition(topic, partition)
                .expect("checked")
                .high_watermark())
        })
    }

    /// The partition's last stable offset.
    pub fn last_stable_offset(&self, topic: &str, partition: i32) -> Result<i64, MockError> {
        self.with_partition(topic, partition, |state| {
            Ok(state
                .partition(topic, partition)
                .expect("checked")
                .last_stable_offset())
        })
    }

    /// Every data record of the partition in offset order (control records
    /// left out; aborted ones included).
    pub fn records(&self, topic: &str, partition: i32) -> Result<Vec<Record>, MockError> {
        self.with_partition(topic, partition, |state| {
            Ok(state
                .partition(topic, partition)
                .expect("checked")
                .records())
        })
    }

    fn coordinator(&self, key_type: i8, key: &str) -> i32 {
        self.shared.lock().coordinator(key_type, key)
    }

    fn move_coordinator(&self, key_type: i8, key: &str, node_id: i32) -> Result<(), MockError> {
        {
            let mut state = self.shared.lock();
            match state.broker(node_id) {
                None => return Err(MockError::UnknownBroker(node_id)),
                Some(b) if !b.alive => return Err(MockError::BrokerStopped(node_id)),
                Some(_) => {}
            }
            state
                .coordinators
                .insert((key_type, key.to_owned()), node_id);
        }
        self.shared.group_changed.notify_waiters();
        Ok(())
    }

    /// The broker coordinating `group` (chosen on first use).
    pub fn group_coordinator(&self, group: &str) -> i32 {
        self.coordinator(GROUP_KEY, group)
    }

    /// Moves `group`'s coordinator to `node_id`. The group's state moves
    /// with it, as when a `__consumer_offsets` partition changes leader; the
    /// old coordinator answers NOT_COORDINATOR, also to requests waiting in
    /// JoinGroup or SyncGroup.
    pub fn move_group_coordinator(&self, group: &str, node_id: i32) -> Result<(), MockError> {
        self.move_coordinator(GROUP_KEY, group, node_id)
    }

    /// The broker coordinating `transactional_id`.
    pub fn transaction_coordinator(&self, transactional_id: &str) -> i32 {
        self.coordinator(TXN_KEY, transactional_id)
    }

    /// Moves a transaction coordinator to `node_id`.
    pub fn move_transaction_coordinator(
        &self,
        transactional_id: &str,
        node_id: i32,
    ) -> Result<(), MockError> {
        self.move_coordinator(TXN_KEY, transactional_id, node_id)
    }

    /// A snapshot of `group`, if it exists.
    pub fn group(&self, group: &str) -> Option<GroupSnapshot> {
        self.shared.lock().groups.get(group).map(|g| GroupSnapshot {
            state: g.state,
            generation: g.generation,
            members: g.member_ids(),
        })
    }

    /// The offset `group` committed for a partition.
    pub fn committed_offset(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.shared
            .lock()
            .groups
            .get(group)?
            .offsets
            .get(&(topic.to_owned(), partition))
            .map(|c| c.offset)
    }

    /// Adds a fault; faults are matched in the order they were added.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// The faults not used up yet.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.lock().faults.clone()
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// How many requests of `api` broker `node_id` has received (faulted ones included).
    pub fn request_count(&self, node_id: i32, api: ApiKey) -> u64 {
        self.shared
            .lock()
            .request_counts
            .get(&(node_id, api))
            .copied()
            .unwrap_or(0)
    }

    /// How many requests of `api` all brokers together have received.
    pub fn total_request_count(&self, api: ApiKey) -> u64 {
        self.shared
            .lock()
            .request_counts
            .iter()
            .filter(|((_, a), _)| *a == api)
            .map(|(_, n)| n)
            .sum()
    }

    /// Whether the broker is running.
    pub fn is_running(&self, node_id: i32) -> bool {
        self.shared.lock().is_alive(node_id)
    }

    /// Stops a broker: its listener and connections close, the partitions it
    /// led move to another live replica in a new epoch (or go leaderless),
    /// and its coordinators move on their next lookup.
    pub fn stop_broker(&self, node_id: i32) -> Result<(), MockError> {
        let mut brokers = self.lock_brokers();
        let broker = brokers
            .iter_mut()
            .find(|b| b.node_id == node_id)
            .ok_or(MockError::UnknownBroker(node_id))?;
        if let Some(stop) = broker.stop.take() {
            let _ = stop.send(true);
        }
        drop(brokers);
        self.shared.lock().stop_broker(node_id);
        self.shared.data_arrived.notify_waiters();
        self.shared.group_changed.notify_waiters();
        Ok(())
    }

    /// Starts a stopped broker again on its port (waiting up to 5 s for the
    /// port to be free). Leaderless partitions it replicates get it as leader.
    pub fn restart_broker(&self, node_id: i32) -> Result<(), MockError> {
        let mut brokers = self.lock_brokers();
        let broker = brokers
            .iter_mut()
            .find(|b| b.node_id == node_id)
            .ok_or(MockError::UnknownBroker(node_id))?;
        if broker.stop.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match std::net::TcpListener::bind(("127.0.0.1", broker.port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() >= deadline => {
                    return Err(io_error(format!("rebinding 127.0.0.1:{}", broker.port))(e))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        listener
            .set_nonblocking(true)
            .map_err(io_error("configuring a mock broker's listener"))?;
        broker.stop = Some(self.serve(node_id, listener));
        drop(brokers);
        self.shared.lock().restart_broker(node_id);
        self.shared.data_arrived.notify_waiters();
        Ok(())
    }
}

impl Drop for MockCluster {
    fn drop(&mut self) {
        for broker in self.lock_brokers().iter_mut() {
            if let Some(stop) = broker.stop.take() {
                let _ = stop.send(true);
            }
        }
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Expires group members, completes overdue rebalances and aborts timed-out
/// transactions, waking whoever waits on them.
async fn tick(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(server::TICK).await;
        let (groups, txns) = {
            let mut state = shared.lock();
            let now = Instant::now();
            (group::tick(&mut state, now), txn::tick(&mut state, now))
        };
        if groups {
            shared.group_changed.notify_waiters();
        }
        if txns {
            shared.data_arrived.notify_waiters();
        }
    }
}
