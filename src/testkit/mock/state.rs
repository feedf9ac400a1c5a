//! The cluster's shared state: brokers, topics, coordinators, groups,
//! transactions, fetch sessions and injected faults, behind one mutex that is
//! never held across an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::protocol::{ApiKey, ErrorCode, Uuid};

use super::faults::FaultRule;
use super::fetch::FetchSession;
use super::group::Group;
use super::log::PartitionLog;
use super::txn::Transaction;

/// `FindCoordinator` key types.
pub(super) const GROUP_KEY: i8 = 0;
/// The transaction coordinator key type.
pub(super) const TXN_KEY: i8 = 1;

/// Tunables of a [`super::MockCluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockOptions {
    /// Number of brokers, with node ids `1..=brokers`.
    pub brokers: usize,
    /// Whether Metadata may create a missing topic (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (`num.partitions`).
    pub default_partitions: i32,
    /// How long a new group waits for more members before its first
    /// rebalance completes (`group.initial.rebalance.delay.ms`; Kafka's
    /// default is 3 s, the mock's is 0 so tests stay fast).
    pub initial_rebalance_delay: Duration,
    /// The smallest and largest session timeouts accepted
    /// (`group.min.session.timeout.ms`, `group.max.session.timeout.ms`).
    pub session_timeout_range: (Duration, Duration),
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            brokers: 3,
            auto_create_topics: false,
            default_partitions: 1,
            initial_rebalance_delay: Duration::ZERO,
            session_timeout_range: (Duration::from_millis(100), Duration::from_secs(1800)),
        }
    }
}

/// One broker's place in the cluster.
#[derive(Debug, Clone)]
pub(super) struct BrokerState {
    pub(super) node_id: i32,
    pub(super) port: u16,
    pub(super) alive: bool,
}

/// A topic: its id and partitions.
#[derive(Debug, Clone)]
pub(super) struct Topic {
    pub(super) id: Uuid,
    pub(super) partitions: Vec<PartitionLog>,
}

/// Everything the brokers share.
#[derive(Debug)]
pub(super) struct State {
    pub(super) options: MockOptions,
    pub(super) cluster_id: String,
    pub(super) brokers: Vec<BrokerState>,
    pub(super) topics: BTreeMap<String, Topic>,
    next_topic_id: u64,
    pub(super) coordinators: HashMap<(i8, String), i32>,
    pub(super) groups: HashMap<String, Group>,
    pub(super) transactions: HashMap<String, Transaction>,
    pub(super) next_producer_id: i64,
    pub(super) fetch_sessions: HashMap<(i32, i32), FetchSession>,
    pub(super) next_session_id: i32,
    pub(super) faults: Vec<FaultRule>,
    pub(super) request_counts: HashMap<(i32, ApiKey), u64>,
    pub(super) next_member_id: u64,
}

/// The state and the wake-ups waiting requests listen to.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Records or markers were appended (fetch long-polls wake up).
    pub(super) data_arrived: Notify,
    /// A group or a coordinator changed (join and sync waits wake up).
    pub(super) group_changed: Notify,
}

impl Shared {
    pub(super) fn new(state: State) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(state),
            data_arrived: Notify::new(),
            group_changed: Notify::new(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `check` under the lock until it gives an answer, again after each
    /// wake-up of `notify` or after `recheck()` has passed (whichever is first).
    pub(super) async fn wait_for<T>(
        &self,
        notify: &Notify,
        recheck: impl Fn() -> Duration,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> T {
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a wake-up after it is not missed.
            notified.as_mut().enable();
            if let Some(answer) = check(&mut self.lock()) {
                return answer;
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(recheck()) => {}
            }
        }
    }
}

impl State {
    pub(super) fn new(options: MockOptions, ports: &[u16]) -> State {
        let brokers = ports
            .iter()
            .enumerate()
            .map(|(i, &port)| BrokerState {
                node_id: i as i32 + 1,
                port,
                alive: true,
            })
            .collect();
        State {
            options,
            cluster_id: "ferrokafka-mock-cluster".into(),
            brokers,
            topics: BTreeMap::new(),
            next_topic_id: 1,
            coordinators: HashMap::new(),
            groups: HashMap::new(),
            transactions: HashMap::new(),
            next_producer_id: 1000,
            fetch_sessions: HashMap::new(),
            next_session_id: 1,
            faults: Vec::new(),
            request_counts: HashMap::new(),
            next_member_id: 1,
        }
    }

    pub(super) fn broker(&self, node_id: i32) -> Option<&BrokerState> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    pub(super) fn is_alive(&self, node_id: i32) -> bool {
        self.broker(node_id).is_some_and(|b| b.alive)
    }

    fn alive_ids(&self) -> Vec<i32> {
        self.brokers
            .iter()
            .filter(|b| b.alive)
            .map(|b| b.node_id)
            .collect()
    }

    /// The controller: the lowest live node id.
    pub(super) fn controller(&self) -> i32 {
        self.alive_ids().first().copied().unwrap_or(-1)
    }

    /// Creates a topic with replicas spread round-robin over the brokers.
    pub(super) fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication: i16,
    ) -> Result<Uuid, ErrorCode> {
        if self.topics.contains_key(name) {
            return Err(ErrorCode::TopicAlreadyExists);
        }
        if name.is_empty()
            || name.len() > 249
            || !name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(&c))
        {
            return Err(ErrorCode::InvalidTopicException);
        }
        let partitions = if partitions == -1 {
            self.options.default_partitions
        } else {
            partitions
        };
        if partitions <= 0 {
            return Err(ErrorCode::InvalidPartitions);
        }
        let replication = if replication == -1 {
            self.brokers.len().min(3) as i16
        } else {
            replication
        };
        if replication <= 0 || replication as usize > self.brokers.len() {
            return Err(ErrorCode::InvalidReplicationFactor);
        }
        let start = self.next_topic_id as usize;
        let logs = (0..partitions as usize)
            .map(|p| self.new_partition_log(start + p, replication as usize))
            .collect();
        let id = Uuid::from_u64_pair(
            0x6d6f_636b_0000_0000 | self.next_topic_id,
            self.next_topic_id,
        );
        self.next_topic_id += 1;
        self.topics.insert(
            name.to_owned(),
            Topic {
                id,
                partitions: logs,
            },
        );
        Ok(id)
    }

    /// A new partition's log: `replication` replicas round-robin from
    /// broker `slot`, led by the first live one.
    fn new_partition_log(&self, slot: usize, replication: usize) -> PartitionLog {
        let ids: Vec<i32> = self.brokers.iter().map(|b| b.node_id).collect();
        let replicas: Vec<i32> = (0..replication)
            .map(|r| ids[(slot + r) % ids.len()])
            .collect();
        let mut log = PartitionLog::new(replicas.clone());
        if !self.is_alive(log.leader) {
            log.leader = replicas
                .iter()
                .copied()
                .find(|&r| self.is_alive(r))
                .unwrap_or(-1);
        }
        log
    }

    /// Grows a topic to `partitions` partitions (as CreatePartitions does),
    /// with the replication of its first partition.
    pub(super) fn add_partitions(&mut self, name: &str, partitions: i32) -> Result<(), ErrorCode> {
        let (current, replication) = match self.topics.get(name) {
            Some(t) => (t.partitions.len(), t.partitions[0].replicas.len()),
            None => return Err(ErrorCode::UnknownTopicOrPartition),
        };
        let wanted = usize::try_from(partitions).map_err(|_| ErrorCode::InvalidPartitions)?;
        if wanted <= current {
            return Err(ErrorCode::InvalidPartitions);
        }
        let logs: Vec<PartitionLog> = (current..wanted)
            .map(|p| self.new_partition_log(p, replication))
            .collect();
        if let Some(topic) = self.topics.get_mut(name) {
            topic.partitions.extend(logs);
        }
        Ok(())
    }

    pub(super) fn topic_name_by_id(&self, id: Uuid) -> Option<String> {
        self.topics
            .iter()
            .find(|(_, t)| t.id == id)
            .map(|(n, _)| n.clone())
    }

    pub(super) fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionLog> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    pub(super) fn partition_mut(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Option<&mut PartitionLog> {
        self.topics
            .get_mut(topic)?
            .partitions
            .get_mut(usize::try_from(partition).ok()?)
    }

    /// The partition if `broker` leads it, else the error Kafka answers.
    pub(super) fn led_partition(
        &self,
        broker: i32,
        topic: &str,
        partition: i32,
    ) -> Result<&PartitionLog, ErrorCode> {
        let log = self
            .partition(topic, partition)
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        if log.leader == broker {
            Ok(log)
        } else if log.leader < 0 {
            Err(ErrorCode::LeaderNotAvailable)
        } else {
            Err(ErrorCode::NotLeaderOrFollower)
        }
    }

    /// The coordinator of `key`, chosen (and kept) among live brokers.
    pub(super) fn coordinator(&mut self, key_type: i8, key: &str) -> i32 {
        let current = self.coordinators.get(&(key_type, key.to_owned())).copied();
        if let Some(node) = current.filter(|&n| self.is_alive(n)) {
            return node;
        }
        let alive = self.alive_ids();
        if alive.is_empty() {
            return -1;
        }
        let hash = key
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let node = alive[hash as usize % alive.len()];
        self.coordinators.insert((key_type, key.to_owned()), node);
        node
    }

    /// `Ok` if `broker` coordinates `key`, else the error Kafka answers.
    pub(super) fn check_coordinator(
        &mut self,
        broker: i32,
        key_type: i8,
        key: &str,
    ) -> Result<(), ErrorCode> {
        if self.coordinator(key_type, key) == broker {
            Ok(())
        } else {
            Err(ErrorCode::NotCoordinator)
        }
    }

    /// Marks a broker down: its partitions elect another live replica (in a
    /// new epoch) or go leaderless; its coordinators move on next lookup.
    pub(super) fn stop_broker(&mut self, node_id: i32) {
        if let Some(b) = self.brokers.iter_mut().find(|b| b.node_id == node_id) {
            b.alive = false;
        }
        let alive: Vec<i32> = self.alive_ids();
        for topic in self.topics.values_mut() {
            for log in &mut topic.partitions {
                if log.leader == node_id {
                    let next = log
                        .replicas
                        .iter()
                        .copied()
                        .find(|r| alive.contains(r))
                        .unwrap_or(-1);
                    log.set_leader(next);
                }
            }
        }
        self.fetch_sessions.retain(|&(b, _), _| b != node_id);
    }

    /// Marks a broker up again; leaderless partitions it replicates get it back.
    pub(super) fn restart_broker(&mut self, node_id: i32) {
        if let Some(b) = self.brokers.iter_mut().find(|b| b.node_id == node_id) {
            b.alive = true;
        }
        for topic in self.topics.values_mut() {
            for log in &mut topic.partitions {
                if log.leader < 0 && log.replicas.contains(&node_id) {
                    log.set_leader(node_id);
                }
            }
        }
    }

    pub(super) fn new_producer_id(&mut self) -> i64 {
        let id = self.next_producer_id;
        self.next_producer_id += 1;
        id
    }
}
