//! Configurations of topics, brokers and broker loggers: describe, replace
//! (legacy AlterConfigs) and change incrementally (IncrementalAlterConfigs).
//!
//! Broker and broker-logger resources are answered only by the broker they
//! name, so requests are split per broker; every other resource goes to any
//! broker (which forwards to the controller where needed).

use crate::network::RequestOptions;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tracing::Instrument;

use crate::protocol::messages::alter_configs_request::{
    AlterConfigsResource, AlterableConfig as LegacyAlterableConfig,
};
use crate::protocol::messages::create_topics_response::CreatableTopicConfigs;
use crate::protocol::messages::describe_configs_request::DescribeConfigsResource;
use crate::protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use crate::protocol::messages::incremental_alter_configs_request as incremental;
use crate::protocol::messages::{
    AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use crate::protocol::ApiKey;

use super::groups::{copy_as_protocol_error, copy_exactly};
use super::topics::{broker_retriable, negotiated, retry_each};
use super::{Admin, Error, Result};

/// The kind of a [`ConfigResource`] (the wire's `resource_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfigResourceType {
    /// A topic.
    Topic,
    /// A broker (named by its id; an empty name means the cluster-wide
    /// default broker configuration).
    Broker,
    /// A broker's log4j loggers (named by the broker id).
    BrokerLogger,
    /// A client-metrics subscription (KIP-714).
    ClientMetrics,
    /// A consumer group's configuration (KIP-848).
    Group,
    /// A type code this library does not know.
    Unknown(i8),
}

impl ConfigResourceType {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::ClientMetrics => 16,
            ConfigResourceType::Group => 32,
            ConfigResourceType::Unknown(code) => code,
        }
    }

    /// The type for a wire code.
    pub fn from_code(code: i8) -> Self {
        match code {
            2 => ConfigResourceType::Topic,
            4 => ConfigResourceType::Broker,
            8 => ConfigResourceType::BrokerLogger,
            16 => ConfigResourceType::ClientMetrics,
            32 => ConfigResourceType::Group,
            other => ConfigResourceType::Unknown(other),
        }
    }
}

/// Something that has a configuration.
///
/// ```
/// use ferrokafka::admin::{ConfigResource, ConfigResourceType};
///
/// let topic = ConfigResource::topic("orders");
/// let broker = ConfigResource::broker(1);
/// assert_eq!(broker.resource_type, ConfigResourceType::Broker);
/// assert_eq!(broker.name, "1");
/// assert_eq!(broker.broker_id(), Some(1));
/// assert_eq!(topic.broker_id(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// What kind of resource.
    pub resource_type: ConfigResourceType,
    /// Its name (a topic name, a broker id, ...).
    pub name: String,
}

impl ConfigResource {
    /// A resource of any type.
    pub fn new(resource_type: ConfigResourceType, name: impl Into<String>) -> Self {
        ConfigResource {
            resource_type,
            name: name.into(),
        }
    }

    /// A topic.
    pub fn topic(name: impl Into<String>) -> Self {
        Self::new(ConfigResourceType::Topic, name)
    }

    /// A broker, by id.
    pub fn broker(id: i32) -> Self {
        Self::new(ConfigResourceType::Broker, id.to_string())
    }

    /// The cluster-wide default broker configuration.
    pub fn broker_default() -> Self {
        Self::new(ConfigResourceType::Broker, "")
    }

    /// A broker's loggers, by broker id.
    pub fn broker_logger(id: i32) -> Self {
        Self::new(ConfigResourceType::BrokerLogger, id.to_string())
    }

    /// The broker that must answer for this resource: the named broker for
    /// broker and broker-logger resources, `None` (any broker) otherwise.
    pub fn broker_id(&self) -> Option<i32> {
        match self.resource_type {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?}", self.resource_type, self.name)
    }
}

/// Where a configuration value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// Not reported (old brokers) or unknown.
    Unknown,
    /// A dynamic override of this topic.
    DynamicTopicConfig,
    /// A dynamic override for this broker.
    DynamicBrokerConfig,
    /// A dynamic default for all brokers.
    DynamicDefaultBrokerConfig,
    /// The broker's `server.properties`.
    StaticBrokerConfig,
    /// The built-in default.
    DefaultConfig,
    /// A dynamic broker logger level.
    DynamicBrokerLoggerConfig,
    /// A client-metrics subscription.
    ClientMetricsConfig,
    /// A dynamic override of a group.
    GroupConfig,
    /// A code this library does not know.
    Other(i8),
}

impl ConfigSource {
    /// The source for a wire code.
    pub fn from_code(code: i8) -> Self {
        match code {
            0 => ConfigSource::Unknown,
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::ClientMetricsConfig,
            8 => ConfigSource::GroupConfig,
            other => ConfigSource::Other(other),
        }
    }
}

/// The declared type of a configuration value (DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigType {
    /// Not reported or unknown.
    Unknown,
    /// `true`/`false`.
    Boolean,
    /// A string.
    String,
    /// A 32-bit integer.
    Int,
    /// A 16-bit integer.
    Short,
    /// A 64-bit integer.
    Long,
    /// A floating-point number.
    Double,
    /// A comma-separated list.
    List,
    /// A Java class name.
    Class,
    /// A password (its value is never returned).
    Password,
    /// A code this library does not know.
    Other(i8),
}

impl ConfigType {
    /// The type for a wire code.
    pub fn from_code(code: i8) -> Self {
        match code {
            0 => ConfigType::Unknown,
            1 => ConfigType::Boolean,
            2 => ConfigType::String,
            3 => ConfigType::Int,
            4 => ConfigType::Short,
            5 => ConfigType::Long,
            6 => ConfigType::Double,
            7 => ConfigType::List,
            8 => ConfigType::Class,
            9 => ConfigType::Password,
            other => ConfigType::Other(other),
        }
    }
}

/// Another source of a configuration's value, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The synonym's name (often a broker-level name such as `log.retention.ms`).
    pub name: String,
    /// Its value (`None` when sensitive or unset).
    pub value: Option<String>,
    /// Where it comes from.
    pub source: ConfigSource,
}

/// One configuration entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The configuration name.
    pub name: String,
    /// Its value; `None` when sensitive or unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether the value is the default (for v0 answers this is the broker's
    /// `is_default` flag, otherwise `source == DefaultConfig`).
    pub is_default: bool,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether the value is sensitive (and so not returned).
    pub sensitive: bool,
    /// Synonyms, when asked for (DescribeConfigs v1+).
    pub synonyms: Vec<ConfigSynonym>,
    /// The value's type (DescribeConfigs v3+).
    pub config_type: ConfigType,
    /// Documentation, when asked for (DescribeConfigs v3+).
    pub documentation: Option<String>,
}

impl ConfigEntry {
    fn from_describe(c: DescribeConfigsResourceResult) -> Self {
        // v0 has `is_default` and no source; later versions the reverse.
        let source = if c.config_source < 0 {
            if c.is_default {
                ConfigSource::DefaultConfig
            } else {
                ConfigSource::Unknown
            }
        } else {
            ConfigSource::from_code(c.config_source)
        };
        ConfigEntry {
            name: c.name,
            value: c.value,
            source,
            is_default: c.is_default || source == ConfigSource::DefaultConfig,
            read_only: c.read_only,
            sensitive: c.is_sensitive,
            synonyms: c
                .synonyms
                .into_iter()
                .map(|s| ConfigSynonym {
                    name: s.name,
                    value: s.value,
                    source: ConfigSource::from_code(s.source),
                })
                .collect(),
            config_type: ConfigType::from_code(c.config_type),
            documentation: c.documentation,
        }
    }

    pub(super) fn from_created_topic(c: CreatableTopicConfigs) -> Self {
        let source = ConfigSource::from_code(c.config_source.max(0));
        ConfigEntry {
            name: c.name,
            value: c.value,
            source,
            is_default: source == ConfigSource::DefaultConfig,
            read_only: c.read_only,
            sensitive: c.is_sensitive,
            synonyms: Vec::new(),
            config_type: ConfigType::Unknown,
            documentation: None,
        }
    }
}

/// A resource's configuration as described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The entries, in the broker's order.
    pub entries: Vec<ConfigEntry>,
}

impl Config {
    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&ConfigEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The value of the entry named `name`, if it has one.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|e| e.value.as_deref())
    }
}

/// Options of [`Admin::describe_configs`].
#[derive(Debug, Clone, Default)]
pub struct DescribeConfigsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
    /// Also return each entry's synonyms (v1+).
    pub include_synonyms: bool,
    /// Also return each entry's documentation (v3+).
    pub include_documentation: bool,
}

/// Options of [`Admin::alter_configs`] and [`Admin::incremental_alter_configs`].
#[derive(Debug, Clone, Default)]
pub struct AlterConfigsOptions {
    /// Limit for the whole call (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
    /// Only check that the change would be accepted.
    pub validate_only: bool,
}

/// What an incremental change does to one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlterConfigOpType {
    /// Set the value.
    Set,
    /// Remove the override (back to the default).
    Delete,
    /// Add to a list-valued configuration.
    Append,
    /// Remove from a list-valued configuration.
    Subtract,
}

impl AlterConfigOpType {
    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            AlterConfigOpType::Set => 0,
            AlterConfigOpType::Delete => 1,
            AlterConfigOpType::Append => 2,
            AlterConfigOpType::Subtract => 3,
        }
    }
}

/// One incremental configuration change.
///
/// ```
/// use ferrokafka::admin::AlterConfigOp;
///
/// let ops = [
///     AlterConfigOp::set("retention.ms", "3600000"),
///     AlterConfigOp::delete("max.message.bytes"),
///     AlterConfigOp::append("cleanup.policy", "compact"),
/// ];
/// # let _ = ops;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigOp {
    /// The configuration name.
    pub name: String,
    /// What to do.
    pub op: AlterConfigOpType,
    /// The value (none for [`AlterConfigOpType::Delete`]).
    pub value: Option<String>,
}

impl AlterConfigOp {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Set,
            value: Some(value.into()),
        }
    }

    /// Removes the override of `name`.
    pub fn delete(name: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Delete,
            value: None,
        }
    }

    /// Adds `value` to the list `name`.
    pub fn append(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Append,
            value: Some(value.into()),
        }
    }

    /// Removes `value` from the list `name`.
    pub fn subtract(name: impl Into<String>, value: impl Into<String>) -> Self {
        AlterConfigOp {
            name: name.into(),
            op: AlterConfigOpType::Subtract,
            value: Some(value.into()),
        }
    }
}

/// Splits resources by the broker that must answer them (`None`: any).
pub(super) fn group_by_target<'a>(
    resources: impl IntoIterator<Item = &'a ConfigResource>,
) -> BTreeMap<Option<i32>, Vec<ConfigResource>> {
    let mut groups: BTreeMap<Option<i32>, Vec<ConfigResource>> = BTreeMap::new();
    for resource in resources {
        groups
            .entry(resource.broker_id())
            .or_default()
            .push(resource.clone());
    }
    groups
}

/// The resource one entry of a configs response names, with the outcome its
/// error code reports for the `api` that answered.
fn resource_result(
    api: ApiKey,
    resource_type: i8,
    resource_name: String,
    error_code: i16,
    error_message: Option<&str>,
) -> (ConfigResource, Result<()>) {
    let resource = ConfigResource::new(ConfigResourceType::from_code(resource_type), resource_name);
    (resource, Error::check(api, error_code, error_message))
}

fn describe_result(r: DescribeConfigsResult) -> (ConfigResource, Result<Config>) {
    let (resource, result) = resource_result(
        ApiKey::DescribeConfigs,
        r.resource_type,
        r.resource_name,
        r.error_code,
        r.error_message.as_deref(),
    );
    let result = result.map(|()| Config {
        entries: r
            .configs
            .into_iter()
            .map(ConfigEntry::from_describe)
            .collect(),
    });
    (resource, result)
}

impl Admin {
    /// Sends one request per target broker for `pending` (broker resources
    /// to their broker, the rest to any broker) and merges the answers.
    async fn per_target<T, F, Fut>(
        &self,
        pending: Vec<ConfigResource>,
        send: F,
    ) -> Result<Vec<(ConfigResource, Result<T>)>>
    where
        F: Fn(crate::network::BrokerConnection, Vec<ConfigResource>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(ConfigResource, Result<T>)>>>,
    {
        let mut out = Vec::new();
        for (target, resources) in group_by_target(&pending) {
            let conn = match target {
                Some(id) => self.cluster().broker_connection(id).await,
                None => self.cluster().any_connection().await,
            };
            let answered = match conn {
                Ok(conn) => send(conn, resources.clone()).await,
                Err(e) => Err(e),
            };
            match answered {
                Ok(results) => out.extend(results),
                // One broker failing must not fail the resources of the
                // others: each of its resources gets a copy of the error
                // (retried by the caller's loop when retriable).
                Err(e) => out.extend(resources.into_iter().map(|r| (r, Err(copy_error(&e))))),
            }
        }
        Ok(out)
    }

    /// Sends `send` for `resources` through [`Admin::per_target`] until every
    /// resource has a final answer or `timeout` passes, retrying the
    /// resources whose error is retriable.
    async fn retry_per_target<T, F, Fut>(
        &self,
        operation: &str,
        timeout: Duration,
        resources: impl IntoIterator<Item = ConfigResource>,
        send: F,
    ) -> Result<BTreeMap<ConfigResource, Result<T>>>
    where
        F: Fn(crate::network::BrokerConnection, Vec<ConfigResource>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<(ConfigResource, Result<T>)>>>,
    {
        retry_each(
            self.cluster(),
            operation,
            timeout,
            resources,
            broker_retriable,
            |pending| self.per_target(pending, &send),
        )
        .await
    }

    /// Describes the configuration of topics, brokers, broker loggers, ...
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::Admin) -> Result<(), ferrokafka::admin::Error> {
    /// use ferrokafka::admin::ConfigResource;
    ///
    /// let topic = ConfigResource::topic("orders");
    /// let configs = admin.describe_configs(&[topic.clone()], Default::default()).await?;
    /// let config = configs[&topic].as_ref().expect("described");
    /// println!("retention.ms = {:?}", config.value("retention.ms"));
    /// # Ok(()) }
    /// ```
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
        options: DescribeConfigsOptions,
    ) -> Result<BTreeMap<ConfigResource, Result<Config>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!("admin.describe_configs", resources = resources.len());
        let options = &options;
        self.retry_per_target(
            "describe configs",
            timeout,
            resources.iter().cloned(),
            |conn, resources| async move {
                let version = negotiated(&conn, ApiKey::DescribeConfigs)?;
                let request = DescribeConfigsRequest {
                    resources: resources
                        .iter()
                        .map(|r| DescribeConfigsResource {
                            resource_type: r.resource_type.code(),
                            resource_name: r.name.clone(),
                            // Null: every key.
                            configuration_keys: None,
                            ..Default::default()
                        })
                        .collect(),
                    include_synonyms: options.include_synonyms && version >= 1,
                    include_documentation: options.include_documentation && version >= 3,
                    ..Default::default()
                };
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                Ok(response.results.into_iter().map(describe_result).collect())
            },
        )
        .instrument(span)
        .await
    }

    /// Replaces the whole configuration of each resource (legacy
    /// AlterConfigs): every override not listed is removed. Prefer
    /// [`Admin::incremental_alter_configs`].
    pub async fn alter_configs(
        &self,
        configs: &BTreeMap<ConfigResource, BTreeMap<String, String>>,
        options: AlterConfigsOptions,
    ) -> Result<BTreeMap<ConfigResource, Result<()>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!(
            "admin.alter_configs",
            resources = configs.len(),
            validate_only = options.validate_only
        );
        let validate_only = options.validate_only;
        self.retry_per_target(
            "alter configs",
            timeout,
            configs.keys().cloned(),
            |conn, resources| async move {
                let version = negotiated(&conn, ApiKey::AlterConfigs)?;
                let request = AlterConfigsRequest {
                    resources: resources
                        .iter()
                        .map(|r| AlterConfigsResource {
                            resource_type: r.resource_type.code(),
                            resource_name: r.name.clone(),
                            configs: configs[r]
                                .iter()
                                .map(|(name, value)| LegacyAlterableConfig {
                                    name: name.clone(),
                                    value: Some(value.clone()),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    validate_only,
                    ..Default::default()
                };
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                Ok(response
                    .responses
                    .into_iter()
                    .map(|r| {
                        resource_result(
                            ApiKey::AlterConfigs,
                            r.resource_type,
                            r.resource_name,
                            r.error_code,
                            r.error_message.as_deref(),
                        )
                    })
                    .collect())
            },
        )
        .instrument(span)
        .await
    }

    /// Changes configurations incrementally: set, delete, append to or
    /// subtract from single entries, leaving the others as they are.
    ///
    /// ```no_run
    /// # async fn demo(admin: ferrokafka::admin::Admin) -> Result<(), ferrokafka::admin::Error> {
    /// use std::collections::BTreeMap;
    /// use ferrokafka::admin::{AlterConfigOp, ConfigResource};
    ///
    /// let changes = BTreeMap::from([(
    ///     ConfigResource::topic("orders"),
    ///     vec![AlterConfigOp::set("retention.ms", "3600000")],
    /// )]);
    /// let results = admin.incremental_alter_configs(&changes, Default::default()).await?;
    /// for (resource, result) in results {
    ///     println!("{resource}: {result:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, Vec<AlterConfigOp>>,
        options: AlterConfigsOptions,
    ) -> Result<BTreeMap<ConfigResource, Result<()>>> {
        let timeout = self.timeout(options.timeout);
        let span = tracing::info_span!(
            "admin.incremental_alter_configs",
            resources = changes.len(),
            validate_only = options.validate_only
        );
        let validate_only = options.validate_only;
        self.retry_per_target(
            "incremental alter configs",
            timeout,
            changes.keys().cloned(),
            |conn, resources| async move {
                let version = negotiated(&conn, ApiKey::IncrementalAlterConfigs)?;
                let request = IncrementalAlterConfigsRequest {
                    resources: resources
                        .iter()
                        .map(|r| incremental::AlterConfigsResource {
                            resource_type: r.resource_type.code(),
                            resource_name: r.name.clone(),
                            configs: changes[r]
                                .iter()
                                .map(|op| incremental::AlterableConfig {
                                    name: op.name.clone(),
                                    config_operation: op.op.code(),
                                    value: op.value.clone(),
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    validate_only,
                    ..Default::default()
                };
                let response = conn
                    .send_with(&request, RequestOptions::default().with_version(version))
                    .await?;
                Ok(response
                    .responses
                    .into_iter()
                    .map(|r| {
                        resource_result(
                            ApiKey::IncrementalAlterConfigs,
                            r.resource_type,
                            r.resource_name,
                            r.error_code,
                            r.error_message.as_deref(),
                        )
                    })
                    .collect())
            },
        )
        .instrument(span)
        .await
    }
}

/// A copy of `error` for one of several resources a single failed request
/// covered. Broker errors are copied exactly; others keep their kind where it
/// matters for retrying (a broken connection stays retriable) and their text.
pub(super) fn copy_error(error: &Error) -> Error {
    if let Some(copy) = copy_exactly(error) {
        return copy;
    }
    match error {
        Error::RequestTimeout {
            api,
            broker,
            timeout,
        } => Error::RequestTimeout {
            api: *api,
            broker: broker.clone(),
            timeout: *timeout,
        },
        Error::Disconnected { broker, reason } => Error::Disconnected {
            broker: broker.clone(),
            reason: reason.clone(),
        },
        Error::Connect { broker, source } => Error::Connect {
            broker: broker.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::ConnectTimeout { broker, timeout } => Error::ConnectTimeout {
            broker: broker.clone(),
            timeout: *timeout,
        },
        other if other.is_retriable() => Error::Disconnected {
            broker: String::new(),
            reason: other.to_string(),
        },
        other => copy_as_protocol_error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::describe_configs_response::DescribeConfigsSynonym;

    #[test]
    fn entries_map_sources_types_and_v0_defaults() {
        // v0: no source, only is_default.
        let v0 = |is_default| DescribeConfigsResourceResult {
            name: "retention.ms".into(),
            value: Some("1".into()),
            is_default,
            ..Default::default()
        };
        assert_eq!(
            ConfigEntry::from_describe(v0(true)).source,
            ConfigSource::DefaultConfig
        );
        let e = ConfigEntry::from_describe(v0(false));
        assert_eq!((e.source, e.is_default), (ConfigSource::Unknown, false));
        // v3: source, type, synonyms, documentation.
        let e = ConfigEntry::from_describe(DescribeConfigsResourceResult {
            name: "cleanup.policy".into(),
            value: None,
            read_only: true,
            is_sensitive: true,
            config_source: 4,
            config_type: 7,
            documentation: Some("doc".into()),
            synonyms: vec![DescribeConfigsSynonym {
                name: "log.cleanup.policy".into(),
                value: Some("delete".into()),
                source: 5,
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(e.source, ConfigSource::StaticBrokerConfig);
        assert_eq!(e.config_type, ConfigType::List);
        assert!(e.read_only && e.sensitive && !e.is_default);
        assert_eq!(e.synonyms[0].source, ConfigSource::DefaultConfig);
        assert_eq!(e.documentation.as_deref(), Some("doc"));
        assert_eq!(ConfigSource::from_code(42), ConfigSource::Other(42));
    }

    #[test]
    fn resources_route_to_their_broker() {
        let groups = group_by_target(&[
            ConfigResource::topic("a"),
            ConfigResource::broker(3),
            ConfigResource::broker_logger(3),
            ConfigResource::broker_default(),
            ConfigResource::topic("b"),
        ]);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[&None].len(),
            3,
            "topics and the default broker config"
        );
        assert_eq!(groups[&Some(3)].len(), 2);
        for t in [2, 4, 8, 16, 32, 99] {
            assert_eq!(ConfigResourceType::from_code(t).code(), t);
        }
        assert_eq!(
            ConfigResourceType::from_code(99),
            ConfigResourceType::Unknown(99)
        );
    }

    #[test]
    fn copied_errors_keep_their_kind() {
        let e = copy_error(&Error::Disconnected {
            broker: "b".into(),
            reason: "r".into(),
        });
        assert!(matches!(e, Error::Disconnected { .. }) && e.is_retriable());
        let e = copy_error(&Error::Broker {
            api: ApiKey::DescribeConfigs,
            code: crate::protocol::ErrorCode::NotController,
            message: Some("m".into()),
        });
        assert_eq!(
            e.error_code(),
            Some(crate::protocol::ErrorCode::NotController)
        );
        let e = copy_error(&Error::Timeout {
            operation: "x".into(),
            timeout: Duration::from_secs(1),
            attempts: 1,
            last: None,
        });
        assert!(!e.is_retriable());
    }
}
