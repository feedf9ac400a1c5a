//! The cluster itself: its id, controller and brokers, and the log
//! directories of each broker.

use crate::network::RequestOptions;
use std::collections::BTreeMap;
use std::time::Duration;

use tracing::Instrument;

use crate::network::BrokerInfo;
use crate::protocol::messages::{
    DescribeClusterRequest, DescribeLogDirsRequest, DescribeLogDirsResponse, MetadataRequest,
};
use crate::protocol::ApiKey;

use super::offsets::TopicPartition;
use super::topics::{broker_retriable, negotiated, retry_each};
use super::{Admin, Error, Result};

/// The operations a client is allowed on a resource, as a broker reports
/// them: a set of ACL operation codes (3 = READ, 4 = WRITE, ... as in
/// Kafka's `AclOperation`).
///
/// ```
/// use ferrokafka::admin::AuthorizedOperations;
///
/// let ops = AuthorizedOperations::from_bits((1 << 3) | (1 << 8)).unwrap();
/// assert!(ops.contains(AuthorizedOperations::READ));
/// assert!(ops.contains(AuthorizedOperations::DESCRIBE));
/// assert!(!ops.contains(AuthorizedOperations::WRITE));
/// assert_eq!(ops.codes().collect::<Vec<_>>(), [3, 8]);
/// // i32::MIN is the wire's "not requested".
/// assert_eq!(AuthorizedOperations::from_bits(i32::MIN), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorizedOperations(i32);

impl AuthorizedOperations {
    /// `READ`.
    pub const READ: i8 = 3;
    /// `WRITE`.
    pub const WRITE: i8 = 4;
    /// `CREATE`.
    pub const CREATE: i8 = 5;
    /// `DELETE`.
    pub const DELETE: i8 = 6;
    /// `ALTER`.
    pub const ALTER: i8 = 7;
    /// `DESCRIBE`.
    pub const DESCRIBE: i8 = 8;
    /// `CLUSTER_ACTION`.
    pub const CLUSTER_ACTION: i8 = 9;
    /// `DESCRIBE_CONFIGS`.
    pub const DESCRIBE_CONFIGS: i8 = 10;
    /// `ALTER_CONFIGS`.
    pub const ALTER_CONFIGS: i8 = 11;
    /// `IDEMPOTENT_WRITE`.
    pub const IDEMPOTENT_WRITE: i8 = 12;

    /// The set a wire bit field stands for; `None` for `i32::MIN`, which
    /// brokers send when the operations were not asked for.
    pub fn from_bits(bits: i32) -> Option<Self> {
        (bits != i32::MIN).then_some(AuthorizedOperations(bits))
    }

    /// The bit field: bit `n` set when operation code `n` is allowed.
    pub fn bits(self) -> i32 {
        self.0
    }

    /// Whether operation `code` is allowed.
    pub fn contains(self, code: i8) -> bool {
        (0..32).contains(&code) && self.0 & (1 << code) != 0
    }

    /// The allowed operation codes, ascending.
    pub fn codes(self) -> impl Iterator<Item = i8> {
        (0..32i8).filter(move |&code| self.contains(code))
    }
}

/// Options of [`Admin::describe_cluster`].
#[derive(Debug, Clone, Default)]
pub struct DescribeClusterOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
    /// Ask for the operations this client may perform on the cluster.
    pub include_authorized_operations: bool,
}

/// The cluster as described by a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// The cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// The controller (or, on KRaft clusters, the broker the client should
    /// send controller requests to), if known.
    pub controller: Option<BrokerInfo>,
    /// The live brokers, by id.
    pub brokers: Vec<BrokerInfo>,
    /// What this client may do with the cluster, when asked for and reported.
    pub authorized_operations: Option<AuthorizedOperations>,
}

/// Options of [`Admin::describe_log_dirs`].
#[derive(Debug, Clone, Default)]
pub struct DescribeLogDirsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// One replica in a log directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// Its size on disk in bytes.
    pub size: i64,
    /// How far it lags the leader's log end (0 for the leader; for a future
    /// replica, how far it lags the current one).
    pub offset_lag: i64,
    /// Whether it is a future replica (being moved to this directory).
    pub is_future: bool,
}

/// One log directory of a broker.
#[derive(Debug)]
pub struct LogDirDescription {
    /// The directory's error (`KAFKA_STORAGE_ERROR` for an offline dir).
    pub error: Option<Error>,
    /// The replicas it holds.
    pub replicas: BTreeMap<TopicPartition, ReplicaInfo>,
    /// The volume's total size in bytes (v4+).
    pub total_bytes: Option<i64>,
    /// The volume's usable bytes (v4+).
    pub usable_bytes: Option<i64>,
}

fn log_dirs(response: DescribeLogDirsResponse) -> Result<BTreeMap<String, LogDirDescription>> {
    Error::check(ApiKey::DescribeLogDirs, response.error_code, None)?;
    Ok(response
        .results
        .into_iter()
        .map(|dir| {
            let replicas = dir
                .topics
                .into_iter()
                .flat_map(|topic| {
                    let name = topic.name;
                    topic.partitions.into_iter().map(move |p| {
                        (
                            TopicPartition::new(name.clone(), p.partition_index),
                            ReplicaInfo {
                                size: p.partition_size,
                                offset_lag: p.offset_lag,
                                is_future: p.is_future_key,
                            },
                        )
                    })
                })
                .collect();
            let description = LogDirDescription {
                error: Error::check(ApiKey::DescribeLogDirs, dir.error_code, Some(&dir.log_dir))
                    .err(),
                replicas,
                total_bytes: (dir.total_bytes >= 0).then_some(dir.total_bytes),
                usable_bytes: (dir.usable_bytes >= 0).then_some(dir.usable_bytes),
            };
            (dir.log_dir, description)
        })
        .collect())
}

impl Admin {
    /// Describes the cluster: its id, controller, brokers and optionally the
    /// operations this client may perform on it.
    ///
    /// Uses DescribeCluster when the broker has it, Metadata otherwise.
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::Admin) -> Result<(), ferrokafka::admin::Error> {
    /// let cluster = admin.describe_cluster(Default::default()).await?;
    /// println!("cluster {:?}: {} brokers", cluster.cluster_id, cluster.brokers.len());
    /// # Ok(()) }
    /// ```
    pub async fn describe_cluster(
        &self,
        options: DescribeClusterOptions,
    ) -> Result<ClusterDescription> {
        let span = tracing::info_span!("admin.describe_cluster");
        let cluster = self.cluster();
        let include = options.include_authorized_operations;
        cluster
            .retry(
                "describe cluster",
                Some(self.timeout(options.timeout)),
                || async {
                    let conn = cluster.any_connection().await?;
                    if let Ok(version) = negotiated(&conn, ApiKey::DescribeCluster) {
                        let request = DescribeClusterRequest {
                            include_cluster_authorized_operations: include,
                            ..Default::default()
                        };
                        let r = conn
                            .send_with(&request, RequestOptions::default().with_version(version))
                            .await?;
                        Error::check(
                            ApiKey::DescribeCluster,
                            r.error_code,
                            r.error_message.as_deref(),
                        )?;
                        let brokers: Vec<BrokerInfo> = r
                            .brokers
                            .into_iter()
                            .map(|b| BrokerInfo {
                                node_id: b.broker_id,
                                host: b.host,
                                port: b.port,
                                rack: b.rack,
                            })
                            .collect();
                        return Ok(describe(
                            Some(r.cluster_id),
                            r.controller_id,
                            brokers,
                            if include {
                                AuthorizedOperations::from_bits(r.cluster_authorized_operations)
                            } else {
                                None
                            },
                        ));
                    }
                    let version = negotiated(&conn, ApiKey::Metadata)?;
                    let mut request = MetadataRequest {
                        // No topics from v1 on (v0 reads an empty list as all).
                        topics: Some(Vec::new()),
                        allow_auto_topic_creation: version < 4,
                        ..Default::default()
                    };
                    let ops_in_metadata = (8..=10).contains(&version);
                    if ops_in_metadata {
                        request.include_cluster_authorized_operations = include;
                    }
                    let r = conn
                        .send_with(&request, RequestOptions::default().with_version(version))
                        .await?;
                    let brokers = r
                        .brokers
                        .into_iter()
                        .map(|b| BrokerInfo {
                            node_id: b.node_id,
                            host: b.host,
                            port: b.port,
                            rack: b.rack,
                        })
                        .collect();
                    Ok(describe(
                        r.cluster_id,
                        r.controller_id,
                        brokers,
                        if include && ops_in_metadata {
                            AuthorizedOperations::from_bits(r.cluster_authorized_operations)
                        } else {
                            None
                        },
                    ))
                },
            )
            .instrument(span)
            .await
    }

    /// Describes the log directories of the given brokers: per broker, per
    /// directory, its error, the replicas it holds (size, offset lag,
    /// whether it is a future replica) and the volume's total and usable
    /// bytes. Each broker is asked directly; a broker that cannot be asked
    /// fails on its own.
    pub async fn describe_log_dirs(
        &self,
        brokers: &[i32],
        options: DescribeLogDirsOptions,
    ) -> Result<BTreeMap<i32, Result<BTreeMap<String, LogDirDescription>>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!("admin.describe_log_dirs", brokers = brokers.len());
        let cluster = self.cluster();
        retry_each(
            cluster,
            "describe log dirs",
            timeout,
            brokers.iter().copied(),
            broker_retriable,
            |pending| async move {
                let mut out = Vec::with_capacity(pending.len());
                for id in pending {
                    let result = async {
                        let conn = cluster.broker_connection(id).await?;
                        let version = negotiated(&conn, ApiKey::DescribeLogDirs)?;
                        // Null: every topic.
                        let request = DescribeLogDirsRequest {
                            topics: None,
                            ..Default::default()
                        };
                        log_dirs(
                            conn.send_with(
                                &request,
                                RequestOptions::default().with_version(version),
                            )
                            .await?,
                        )
                    }
                    .await;
                    out.push((id, result));
                }
                Ok(out)
            },
        )
        .instrument(span)
        .await
    }
}

fn describe(
    cluster_id: Option<String>,
    controller_id: i32,
    brokers: Vec<BrokerInfo>,
    authorized_operations: Option<AuthorizedOperations>,
) -> ClusterDescription {
    let controller = brokers.iter().find(|b| b.node_id == controller_id).cloned();
    let mut brokers = brokers;
    brokers.sort_by_key(|b| b.node_id);
    ClusterDescription {
        cluster_id,
        controller,
        brokers,
        authorized_operations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::describe_log_dirs_response::{
        DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
    };
    use crate::protocol::ErrorCode;

    #[test]
    fn log_dirs_map_replicas_errors_and_sizes() {
        let response = DescribeLogDirsResponse {
            results: vec![
                DescribeLogDirsResult {
                    log_dir: "/a".into(),
                    topics: vec![DescribeLogDirsTopic {
                        name: "t".into(),
                        partitions: vec![DescribeLogDirsPartition {
                            partition_index: 1,
                            partition_size: 100,
                            offset_lag: 2,
                            is_future_key: true,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    total_bytes: 1000,
                    usable_bytes: 10,
                    ..Default::default()
                },
                DescribeLogDirsResult {
                    log_dir: "/b".into(),
                    error_code: ErrorCode::KafkaStorageError.code(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let dirs = log_dirs(response).unwrap();
        let a = &dirs["/a"];
        assert!(a.error.is_none());
        assert_eq!(
            a.replicas[&TopicPartition::new("t", 1)],
            ReplicaInfo {
                size: 100,
                offset_lag: 2,
                is_future: true
            }
        );
        assert_eq!((a.total_bytes, a.usable_bytes), (Some(1000), Some(10)));
        let b = &dirs["/b"];
        assert_eq!(
            b.error.as_ref().unwrap().error_code(),
            Some(ErrorCode::KafkaStorageError)
        );
        assert_eq!((b.total_bytes, b.usable_bytes), (None, None));
        let whole = DescribeLogDirsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        };
        assert_eq!(
            log_dirs(whole).unwrap_err().error_code(),
            Some(ErrorCode::ClusterAuthorizationFailed)
        );
    }

    #[test]
    fn controller_is_found_among_the_brokers() {
        let broker = |id| BrokerInfo {
            node_id: id,
            host: "h".into(),
            port: 1,
            rack: None,
        };
        let d = describe(Some("c".into()), 2, vec![broker(3), broker(2)], None);
        assert_eq!(d.controller.unwrap().node_id, 2);
        assert_eq!(
            d.brokers.iter().map(|b| b.node_id).collect::<Vec<_>>(),
            [2, 3]
        );
        assert!(describe(None, -1, vec![broker(1)], None)
            .controller
            .is_none());
    }
}
