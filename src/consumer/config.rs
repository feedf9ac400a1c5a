//! Consumer settings: a typed builder with the Java consumer's defaults and
//! parsing of Java property names.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::network::ConfigError;

use super::group::Strategy;

pub use crate::network::IsolationLevel;

/// Where to start when a partition has no valid position (`auto.offset.reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The end of the log (the Java default).
    #[default]
    Latest,
    /// No reset: the consumer reports [`ConsumerError::NoOffsetForPartition`](super::ConsumerError)
    /// or [`ConsumerError::OffsetOutOfRange`](super::ConsumerError).
    None,
}

/// The consumer's settings (those of the connection are in
/// [`ClientConfig`](crate::network::ClientConfig)).
///
/// ```
/// use std::time::Duration;
/// use ferrokafka::consumer::{AutoOffsetReset, ConsumerConfig, IsolationLevel};
///
/// let config = ConsumerConfig::builder()
///     .isolation_level(IsolationLevel::ReadCommitted)
///     .auto_offset_reset(AutoOffsetReset::Earliest)
///     .fetch_max_wait(Duration::from_millis(100))
///     .build()
///     .unwrap();
/// assert_eq!(config.max_poll_records, 500);
///
/// let same = ConsumerConfig::from_properties([
///     ("isolation.level", "read_committed"),
///     ("auto.offset.reset", "earliest"),
///     ("fetch.max.wait.ms", "100"),
/// ]).unwrap();
/// assert_eq!(same, config);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `fetch.min.bytes` (default 1): the broker waits for this much data.
    pub fetch_min_bytes: i32,
    /// `fetch.max.wait.ms` (default 500): how long the broker may wait for it.
    pub fetch_max_wait: Duration,
    /// `fetch.max.bytes` (default 50 MiB): data per fetch response (a first
    /// batch larger than this is still returned, KIP-74).
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes` (default 1 MiB): data per partition per fetch.
    pub max_partition_fetch_bytes: i32,
    /// `max.poll.records` (default 500): the most records one
    /// [`Consumer::poll`](super::Consumer::poll) returns when asked for more,
    /// and the batch size of [`Consumer::stream`](super::Consumer::stream).
    pub max_poll_records: usize,
    /// `check.crcs` (default true): verify each batch's CRC.
    pub check_crcs: bool,
    /// `isolation.level` (default read_uncommitted).
    pub isolation_level: IsolationLevel,
    /// `auto.offset.reset` (default latest).
    pub auto_offset_reset: AutoOffsetReset,
    /// `client.rack` (default empty): sent with fetches (KIP-392).
    pub client_rack: String,
    /// `fetch.buffer.bytes` (ferrokafka; default 64 MiB): the most fetched
    /// data held for the application. No fetch is sent while this much is
    /// buffered, and a fetch asks for no more than the room left, so memory
    /// stays bounded when the application is slow (a single batch larger than
    /// the room may still come, as the broker always returns one batch).
    pub fetch_buffer_bytes: usize,
    /// `group.id` (default none): the consumer group; needed by
    /// [`Consumer::subscribe`](super::Consumer::subscribe) and by commits.
    pub group_id: Option<String>,
    /// `group.instance.id` (default none): makes the member static (KIP-345):
    /// it keeps its partitions across restarts shorter than the session
    /// timeout, and sends no LeaveGroup on close.
    pub group_instance_id: Option<String>,
    /// `session.timeout.ms` (default 45 s): the coordinator drops a member
    /// that sends no heartbeat for this long.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms` (default 3 s): the time between heartbeats.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms` (default 300 s): a member whose application
    /// does not call poll for this long leaves the group. Also the rebalance
    /// timeout sent in JoinGroup, as in Java.
    pub max_poll_interval: Duration,
    /// `partition.assignment.strategy` (default `range,cooperative-sticky`):
    /// the assignors in preference order.
    pub partition_assignment_strategy: Vec<Strategy>,
    /// `enable.auto.commit` (default true): commit consumed positions every
    /// `auto.commit.interval.ms`, before partitions are revoked and on close.
    /// Applies only with a `group.id`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms` (default 5 s).
    pub auto_commit_interval: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            fetch_max_bytes: 52_428_800,
            max_partition_fetch_bytes: 1_048_576,
            max_poll_records: 500,
            check_crcs: true,
            isolation_level: IsolationLevel::ReadUncommitted,
            auto_offset_reset: AutoOffsetReset::Latest,
            client_rack: String::new(),
            fetch_buffer_bytes: 64 * 1024 * 1024,
            group_id: None,
            group_instance_id: None,
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            partition_assignment_strategy: Strategy::default_list(),
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
        }
    }
}

impl ConsumerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ConsumerConfigBuilder {
        ConsumerConfigBuilder::default()
    }

    /// Parses Java property names; unknown names are an error.
    pub fn from_properties<'a, I>(properties: I) -> Result<ConsumerConfig, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (config, unused) = Self::from_properties_partial(properties)?;
        if !unused.is_empty() {
            return Err(ConfigError::UnknownProperties(unused.into_keys().collect()));
        }
        Ok(config)
    }

    /// Like [`ConsumerConfig::from_properties`], returning the properties it
    /// does not know (client or group settings) for the caller to interpret.
    pub fn from_properties_partial<'a, I>(
        properties: I,
    ) -> Result<(ConsumerConfig, BTreeMap<String, String>), ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut config = ConsumerConfig::default();
        let mut unused = BTreeMap::new();
        for (key, value) in properties {
            let (key, value) = (key.trim(), value.trim());
            if !config.apply(key, value)? {
                unused.insert(key.to_owned(), value.to_owned());
            }
        }
        config.validate()?;
        Ok((config, unused))
    }

    /// Applies one property; `false` when the name is not a consumer setting.
    fn apply(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let int = || value.parse::<i64>().map_err(|_| invalid("not an integer"));
        let i32_of = |v: i64| i32::try_from(v).map_err(|_| invalid("out of range"));
        let millis = || {
            Ok::<_, ConfigError>(Duration::from_millis(
                u64::try_from(int()?).map_err(|_| invalid("negative"))?,
            ))
        };
        let boolean = || {
            value
                .parse::<bool>()
                .map_err(|_| invalid("not true or false"))
        };
        let optional = || (!value.is_empty()).then(|| value.to_owned());
        match key {
            "fetch.min.bytes" => self.fetch_min_bytes = i32_of(int()?)?,
            "fetch.max.wait.ms" => {
                self.fetch_max_wait =
                    Duration::from_millis(u64::try_from(int()?).map_err(|_| invalid("negative"))?)
            }
            "fetch.max.bytes" => self.fetch_max_bytes = i32_of(int()?)?,
            "max.partition.fetch.bytes" => self.max_partition_fetch_bytes = i32_of(int()?)?,
            "max.poll.records" => {
                self.max_poll_records = usize::try_from(int()?).map_err(|_| invalid("negative"))?
            }
            "check.crcs" => {
                self.check_crcs = value.parse().map_err(|_| invalid("not true or false"))?
            }
            "isolation.level" => {
                self.isolation_level = match value.to_ascii_lowercase().as_str() {
                    "read_uncommitted" => IsolationLevel::ReadUncommitted,
                    "read_committed" => IsolationLevel::ReadCommitted,
                    _ => return Err(invalid("expected read_uncommitted or read_committed")),
                }
            }
            "auto.offset.reset" => {
                self.auto_offset_reset = match value.to_ascii_lowercase().as_str() {
                    "earliest" => AutoOffsetReset::Earliest,
                    "latest" => AutoOffsetReset::Latest,
                    "none" => AutoOffsetReset::None,
                    _ => return Err(invalid("expected earliest, latest or none")),
                }
            }
            "client.rack" => self.client_rack = value.to_owned(),
            "fetch.buffer.bytes" => {
                self.fetch_buffer_bytes =
                    usize::try_from(int()?).map_err(|_| invalid("negative"))?
            }
            "group.id" => self.group_id = optional(),
            "group.instance.id" => self.group_instance_id = optional(),
            "session.timeout.ms" => self.session_timeout = millis()?,
            "heartbeat.interval.ms" => self.heartbeat_interval = millis()?,
            "max.poll.interval.ms" => self.max_poll_interval = millis()?,
            "partition.assignment.strategy" => {
                self.partition_assignment_strategy = Strategy::parse_list(value)?
            }
            "enable.auto.commit" => self.enable_auto_commit = boolean()?,
            "auto.commit.interval.ms" => self.auto_commit_interval = millis()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Checks that the settings can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, key: &str, value: String, reason: &str| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::InvalidValue {
                    key: key.to_owned(),
                    value,
                    reason: reason.to_owned(),
                })
            }
        };
        check(
            self.fetch_min_bytes >= 0,
            "fetch.min.bytes",
            self.fetch_min_bytes.to_string(),
            "must not be negative",
        )?;
        check(
            self.fetch_max_bytes > 0,
            "fetch.max.bytes",
            self.fetch_max_bytes.to_string(),
            "must be positive",
        )?;
        check(
            self.max_partition_fetch_bytes > 0,
            "max.partition.fetch.bytes",
            self.max_partition_fetch_bytes.to_string(),
            "must be positive",
        )?;
        check(
            self.max_poll_records > 0,
            "max.poll.records",
            self.max_poll_records.to_string(),
            "must be positive",
        )?;
        check(
            self.fetch_max_wait.as_millis() <= i32::MAX as u128,
            "fetch.max.wait.ms",
            self.fetch_max_wait.as_millis().to_string(),
            "too large",
        )?;
        check(
            self.fetch_buffer_bytes > 0,
            "fetch.buffer.bytes",
            self.fetch_buffer_bytes.to_string(),
            "must be positive",
        )?;
        let ms = |d: Duration| d.as_millis().to_string();
        check(
            !self.heartbeat_interval.is_zero() && self.heartbeat_interval < self.session_timeout,
            "heartbeat.interval.ms",
            ms(self.heartbeat_interval),
            "must be positive and below session.timeout.ms",
        )?;
        check(
            self.session_timeout.as_millis() <= i32::MAX as u128,
            "session.timeout.ms",
            ms(self.session_timeout),
            "too large",
        )?;
        check(
            !self.max_poll_interval.is_zero()
                && self.max_poll_interval.as_millis() <= i32::MAX as u128,
            "max.poll.interval.ms",
            ms(self.max_poll_interval),
            "must be positive and fit in 32 bits",
        )?;
        check(
            !self.auto_commit_interval.is_zero(),
            "auto.commit.interval.ms",
            ms(self.auto_commit_interval),
            "must be positive",
        )?;
        let mut names: Vec<&str> = self
            .partition_assignment_strategy
            .iter()
            .map(Strategy::name)
            .collect();
        let listed = names.len();
        names.sort_unstable();
        names.dedup();
        check(
            listed > 0 && names.len() == listed,
            "partition.assignment.strategy",
            self.partition_assignment_strategy
                .iter()
                .map(Strategy::name)
                .collect::<Vec<_>>()
                .join(","),
            "must list at least one assignor, each once",
        )
    }
}

/// Builds a [`ConsumerConfig`]; every setter overrides one default.
#[derive(Debug, Clone, Default)]
pub struct ConsumerConfigBuilder {
    config: ConsumerConfig,
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl ConsumerConfigBuilder {
    setter!(
        /// `fetch.min.bytes`.
        fetch_min_bytes: i32
    );
    setter!(
        /// `fetch.max.wait.ms`.
        fetch_max_wait: Duration
    );
    setter!(
        /// `fetch.max.bytes`.
        fetch_max_bytes: i32
    );
    setter!(
        /// `max.partition.fetch.bytes`.
        max_partition_fetch_bytes: i32
    );
    setter!(
        /// `max.poll.records`.
        max_poll_records: usize
    );
    setter!(
        /// `check.crcs`.
        check_crcs: bool
    );
    setter!(
        /// `isolation.level`.
        isolation_level: IsolationLevel
    );
    setter!(
        /// `auto.offset.reset`.
        auto_offset_reset: AutoOffsetReset
    );
    setter!(
        /// `fetch.buffer.bytes`: the budget of buffered fetched data.
        fetch_buffer_bytes: usize
    );
    setter!(
        /// `session.timeout.ms`.
        session_timeout: Duration
    );
    setter!(
        /// `heartbeat.interval.ms`.
        heartbeat_interval: Duration
    );
    setter!(
        /// `max.poll.interval.ms` (also the rebalance timeout).
        max_poll_interval: Duration
    );
    setter!(
        /// `partition.assignment.strategy`, in preference order.
        partition_assignment_strategy: Vec<Strategy>
    );
    setter!(
        /// `enable.auto.commit`.
        enable_auto_commit: bool
    );
    setter!(
        /// `auto.commit.interval.ms`.
        auto_commit_interval: Duration
    );

    /// `group.id`.
    pub fn group_id(mut self, group_id: impl Into<String>) -> Self {
        self.config.group_id = Some(group_id.into());
        self
    }

    /// `group.instance.id` (static membership).
    pub fn group_instance_id(mut self, id: impl Into<String>) -> Self {
        self.config.group_instance_id = Some(id.into());
        self
    }

    /// `client.rack`.
    pub fn client_rack(mut self, rack: impl Into<String>) -> Self {
        self.config.client_rack = rack.into();
        self
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<ConsumerConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_java_consumer() {
        let c = ConsumerConfig::default();
        assert_eq!(c.fetch_min_bytes, 1);
        assert_eq!(c.fetch_max_wait, Duration::from_millis(500));
        assert_eq!(c.fetch_max_bytes, 52_428_800);
        assert_eq!(c.max_partition_fetch_bytes, 1_048_576);
        assert_eq!(c.max_poll_records, 500);
        assert!(c.check_crcs);
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::Latest);
    }

    #[test]
    fn properties_parse_and_unknown_ones_are_returned_or_rejected() {
        let (c, rest) = ConsumerConfig::from_properties_partial([
            ("fetch.min.bytes", "10"),
            ("max.partition.fetch.bytes", "2048"),
            ("check.crcs", "false"),
            ("auto.offset.reset", "none"),
            ("group.id", "g"),
            ("bootstrap.servers", "b:9092"),
        ])
        .unwrap();
        assert_eq!(c.fetch_min_bytes, 10);
        assert_eq!(c.max_partition_fetch_bytes, 2048);
        assert!(!c.check_crcs);
        assert_eq!(c.auto_offset_reset, AutoOffsetReset::None);
        assert_eq!(c.group_id.as_deref(), Some("g"));
        assert_eq!(
            rest.get("bootstrap.servers").map(String::as_str),
            Some("b:9092")
        );
        assert!(matches!(
            ConsumerConfig::from_properties([("bootstrap.servers", "b:9092")]),
            Err(ConfigError::UnknownProperties(_))
        ));
        assert!(matches!(
            ConsumerConfig::from_properties([("isolation.level", "dirty")]),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(ConsumerConfig::builder()
            .max_poll_records(0)
            .build()
            .is_err());
    }

    #[test]
    fn group_properties_parse_like_java() {
        let c = ConsumerConfig::from_properties([
            ("group.id", "orders"),
            ("group.instance.id", "static-1"),
            ("session.timeout.ms", "6000"),
            ("heartbeat.interval.ms", "1000"),
            ("max.poll.interval.ms", "20000"),
            ("partition.assignment.strategy", "roundrobin,range"),
            ("enable.auto.commit", "false"),
            ("auto.commit.interval.ms", "250"),
        ])
        .unwrap();
        let built = ConsumerConfig::builder()
            .group_id("orders")
            .group_instance_id("static-1")
            .session_timeout(Duration::from_secs(6))
            .heartbeat_interval(Duration::from_secs(1))
            .max_poll_interval(Duration::from_secs(20))
            .partition_assignment_strategy(vec![Strategy::RoundRobin, Strategy::Range])
            .enable_auto_commit(false)
            .auto_commit_interval(Duration::from_millis(250))
            .build()
            .unwrap();
        assert_eq!(c, built);
        let d = ConsumerConfig::default();
        assert_eq!(d.session_timeout, Duration::from_secs(45));
        assert_eq!(d.max_poll_interval, Duration::from_secs(300));
        assert_eq!(d.partition_assignment_strategy, Strategy::default_list());
        assert!(d.enable_auto_commit);
        for bad in [
            ("heartbeat.interval.ms", "60000"),
            ("partition.assignment.strategy", "range,range"),
            ("partition.assignment.strategy", "fair"),
            ("enable.auto.commit", "yes"),
        ] {
            assert!(ConsumerConfig::from_properties([bad]).is_err(), "{bad:?}");
        }
    }
}
