//! Per-request options: which pooled connection carries a request, how long
//! to wait for its answer and which version to send.

use std::time::Duration;

/// What a pooled connection is used for.
///
/// A broker answers the requests of one connection one at a time, in order,
/// so a request that the broker holds on purpose (a JoinGroup waiting for the
/// rebalance, a Fetch long-poll) stalls everything queued behind it on the
/// same socket. The cluster client therefore keeps one connection per broker
/// *and role*, opened the first time a role is used.
///
/// ```
/// use ferrokafka::network::ConnectionRole;
///
/// assert_eq!(ConnectionRole::default(), ConnectionRole::General);
/// assert_ne!(ConnectionRole::Fetch, ConnectionRole::Group);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConnectionRole {
    /// Metadata, admin and anything else short.
    #[default]
    General,
    /// Produce requests; the only role whose requests in flight are capped
    /// (`max.in.flight.requests.per.connection`).
    Produce,
    /// Fetch long-polls and offset lookups of a consumer.
    Fetch,
    /// Coordinator traffic: JoinGroup, SyncGroup, Heartbeat, commits.
    Group,
    /// A group member's heartbeats and offset commits/fetches, on their own
    /// connection so they never queue behind a JoinGroup that the
    /// coordinator holds until the rebalance completes.
    GroupHeartbeat,
}

impl ConnectionRole {
    /// Every role, for iteration.
    pub const ALL: [ConnectionRole; 5] = [
        ConnectionRole::General,
        ConnectionRole::Produce,
        ConnectionRole::Fetch,
        ConnectionRole::Group,
        ConnectionRole::GroupHeartbeat,
    ];

    /// A short lower-case name for logs.
    pub fn name(self) -> &'static str {
        match self {
            ConnectionRole::General => "general",
            ConnectionRole::Produce => "produce",
            ConnectionRole::Fetch => "fetch",
            ConnectionRole::Group => "group",
            ConnectionRole::GroupHeartbeat => "group-heartbeat",
        }
    }
}

/// How one request is sent: on which role's connection, with which wire
/// timeout, in which version.
///
/// ```
/// use std::time::Duration;
/// use ferrokafka::network::{ConnectionRole, RequestOptions};
///
/// // A JoinGroup may legitimately take the whole rebalance timeout.
/// let join = RequestOptions::role(ConnectionRole::Group)
///     .with_timeout(Duration::from_secs(300) + Duration::from_secs(5));
/// assert_eq!(join.role, ConnectionRole::Group);
/// assert_eq!(join.version, None); // the highest version both sides speak
/// let old = RequestOptions::default().with_version(0);
/// assert_eq!((old.role, old.version), (ConnectionRole::General, Some(0)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// The connection role (default [`ConnectionRole::General`]).
    pub role: ConnectionRole,
    /// How long to wait for the answer; `None` means `request.timeout.ms`.
    pub timeout: Option<Duration>,
    /// The version to send; `None` means the highest both sides support.
    pub version: Option<i16>,
}

impl RequestOptions {
    /// Default options on the connection of `role`.
    pub fn role(role: ConnectionRole) -> Self {
        RequestOptions {
            role,
            ..Self::default()
        }
    }

    /// Waits at most `timeout` for the answer.
    pub fn with_timeout(self, timeout: Duration) -> Self {
        RequestOptions {
            timeout: Some(timeout),
            ..self
        }
    }

    /// Sends version `version` (not checked against the broker's range).
    pub fn with_version(self, version: i16) -> Self {
        RequestOptions {
            version: Some(version),
            ..self
        }
    }
}

/// Which records a read may see (`isolation.level`), as the Fetch and
/// ListOffsets requests carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsolationLevel {
    /// Every record, including those of open and aborted transactions: reads
    /// go up to the high watermark.
    #[default]
    ReadUncommitted,
    /// Only records up to the last stable offset, without aborted
    /// transactions (ListOffsets v2+).
    ReadCommitted,
}

impl IsolationLevel {
    /// The wire value of the Fetch and ListOffsets `isolation_level` field.
    pub fn wire(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}
