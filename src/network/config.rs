//! Client configuration: typed settings with the Java client's defaults, a
//! builder, and parsing of Java (and some librdkafka) property names.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Why a configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Properties that no part of the client understands. Never retriable:
    /// fix the configuration.
    #[error("unknown configuration properties: {}", .0.join(", "))]
    UnknownProperties(Vec<String>),
    /// A property has a value that cannot be used.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        /// The property name.
        key: String,
        /// The offending value (secrets are never stored here).
        value: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A required setting is missing.
    #[error("missing configuration: {0}")]
    Missing(&'static str),
}

/// How the client talks to brokers (`security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SecurityProtocol {
    /// Plain TCP.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// Plain TCP with SASL authentication.
    SaslPlaintext,
    /// TLS with SASL authentication.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl std::str::FromStr for SecurityProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL".into()),
        }
    }
}

/// A SASL mechanism (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): the password travels in clear; use with TLS.
    #[default]
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

impl std::str::FromStr for SaslMechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            _ => Err("supported mechanisms are PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512".into()),
        }
    }
}

/// SASL credentials. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where a PEM document comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A file holding PEM text.
    File(PathBuf),
    /// PEM text held in memory.
    Pem(String),
}

impl fmt::Debug for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemSource::File(p) => f.debug_tuple("File").field(p).finish(),
            // May be a private key: never print it.
            PemSource::Pem(_) => f.write_str("Pem(<inline>)"),
        }
    }
}

/// TLS settings, used when the security protocol is `SSL` or `SASL_SSL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA certificates to trust (`ssl.ca.location` / `ssl.ca.pem`); the
    /// system's trust store when `None`.
    pub ca: Option<PemSource>,
    /// Client certificate chain (`ssl.certificate.location` / `ssl.certificate.pem`).
    pub certificate: Option<PemSource>,
    /// Client private key (`ssl.key.location` / `ssl.key.pem`).
    pub key: Option<PemSource>,
    /// Whether the broker certificate must match the host name
    /// (`ssl.endpoint.identification.algorithm=https`, the default). The
    /// certificate chain is always verified.
    pub verify_hostname: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            ca: None,
            certificate: None,
            key: None,
            verify_hostname: true,
        }
    }
}

/// Settings shared by every connection a client opens.
///
/// Defaults follow the Java client. Build one with [`ClientConfig::builder`]
/// or from Java-style properties with [`ClientConfig::from_properties`].
///
/// ```
/// use std::time::Duration;
/// use ferrokafka::network::ClientConfig;
///
/// let config = ClientConfig::builder()
///     .bootstrap_servers(["localhost:9092"])
///     .client_id("my-app")
///     .request_timeout(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// assert_eq!(config.client_id, "my-app");
/// assert_eq!(config.retry_backoff, Duration::from_millis(100));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `host:port` pairs used to discover the cluster (`bootstrap.servers`).
    pub bootstrap_servers: Vec<String>,
    /// Sent with every request (`client.id`).
    pub client_id: String,
    /// How long to wait for a response (`request.timeout.ms`, 30 s).
    pub request_timeout: Duration,
    /// Overall deadline for retried operations (`default.api.timeout.ms`, 60 s).
    pub default_api_timeout: Duration,
    /// Maximum age of cached metadata (`metadata.max.age.ms`, 5 min).
    pub metadata_max_age: Duration,
    /// First retry backoff (`retry.backoff.ms`, 100 ms).
    pub retry_backoff: Duration,
    /// Largest retry backoff (`retry.backoff.max.ms`, 1 s).
    pub retry_backoff_max: Duration,
    /// First reconnect backoff (`reconnect.backoff.ms`, 50 ms).
    pub reconnect_backoff: Duration,
    /// Largest reconnect backoff (`reconnect.backoff.max.ms`, 1 s).
    pub reconnect_backoff_max: Duration,
    /// Limit for TCP + TLS + ApiVersions + SASL
    /// (`socket.connection.setup.timeout.ms`, 10 s).
    pub connection_setup_timeout: Duration,
    /// Idle connections are closed after this (`connections.max.idle.ms`, 9 min).
    pub connections_max_idle: Duration,
    /// Largest response frame accepted (`receive.message.max.bytes`, 100 MB + 512).
    pub max_response_size: usize,
    /// Requests in flight per produce connection
    /// (`max.in.flight.requests.per.connection`, 5). Applies to
    /// [`ConnectionRole::Produce`](super::ConnectionRole::Produce) connections
    /// only; the other roles are not capped.
    pub max_in_flight_requests_per_connection: usize,
    /// How to talk to brokers (`security.protocol`).
    pub security_protocol: SecurityProtocol,
    /// SASL settings; required for the SASL protocols.
    pub sasl: Option<SaslConfig>,
    /// TLS settings; used for the SSL protocols.
    pub tls: TlsConfig,
    /// Name sent in ApiVersions v3+ (`client.software.name`).
    pub client_software_name: String,
    /// Version sent in ApiVersions v3+ (`client.software.version`).
    pub client_software_version: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            bootstrap_servers: Vec::new(),
            client_id: "ferrokafka".to_owned(),
            request_timeout: Duration::from_millis(30_000),
            default_api_timeout: Duration::from_millis(60_000),
            metadata_max_age: Duration::from_millis(300_000),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            connection_setup_timeout: Duration::from_millis(10_000),
            connections_max_idle: Duration::from_millis(540_000),
            max_response_size: 100_000_000 + 512,
            max_in_flight_requests_per_connection: 5,
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
            tls: TlsConfig::default(),
            client_software_name: "ferrokafka".to_owned(),
            client_software_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Builds a [`ClientConfig`]; every setter overrides one default.
#[derive(Debug, Clone, Default)]
pub struct ClientConfigBuilder {
    config: ClientConfig,
}

macro_rules! duration_setters {
    ($($(#[$doc:meta])* $name:ident;)+) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: Duration) -> Self {
                self.config.$name = value;
                self
            }
        )+
    };
}

impl ClientConfigBuilder {
    /// Sets `bootstrap.servers`.
    pub fn bootstrap_servers<I, S>(mut self, servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.config.bootstrap_servers = servers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets `client.id`.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = id.into();
        self
    }

    duration_setters! {
        /// Sets `request.timeout.ms`.
        request_timeout;
        /// Sets `default.api.timeout.ms`.
        default_api_timeout;
        /// Sets `metadata.max.age.ms`.
        metadata_max_age;
        /// Sets `retry.backoff.ms`.
        retry_backoff;
        /// Sets `retry.backoff.max.ms`.
        retry_backoff_max;
        /// Sets `reconnect.backoff.ms`.
        reconnect_backoff;
        /// Sets `reconnect.backoff.max.ms`.
        reconnect_backoff_max;
        /// Sets `socket.connection.setup.timeout.ms`.
        connection_setup_timeout;
        /// Sets `connections.max.idle.ms`.
        connections_max_idle;
    }

    /// Sets the largest response frame accepted.
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.config.max_response_size = bytes;
        self
    }

    /// Sets `max.in.flight.requests.per.connection` (produce connections).
    pub fn max_in_flight_requests_per_connection(mut self, requests: usize) -> Self {
        self.config.max_in_flight_requests_per_connection = requests;
        self
    }

    /// Sets `security.protocol`.
    pub fn security_protocol(mut self, protocol: SecurityProtocol) -> Self {
        self.config.security_protocol = protocol;
        self
    }

    /// Sets SASL mechanism and credentials.
    pub fn sasl(
        mut self,
        mechanism: SaslMechanism,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.config.sasl = Some(SaslConfig {
            mechanism,
            username: username.into(),
            password: password.into(),
        });
        self
    }

    /// Sets the TLS settings.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.config.tls = tls;
        self
    }

    /// Checks the settings and returns the configuration.
    pub fn build(self) -> Result<ClientConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

/// Pieces of `sasl.jaas.config`, `sasl.username` and `sasl.password` collected
/// while parsing, merged at the end.
#[derive(Default)]
struct SaslParts {
    mechanism: Option<SaslMechanism>,
    username: Option<String>,
    password: Option<String>,
}

impl ClientConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ClientConfigBuilder {
        ClientConfigBuilder::default()
    }

    /// Parses Java client property names (and librdkafka's `sasl.username`,
    /// `sasl.password`, `ssl.*.pem`), rejecting properties it does not know.
    ///
    /// Unknown keys are an error ([`ConfigError::UnknownProperties`], listing
    /// all of them) rather than a warning: a misspelt security or timeout
    /// setting silently ignored is a worse failure than a refusal to start.
    /// Layers above this one (producer, consumer) that take extra properties
    /// use [`ClientConfig::from_properties_partial`] and handle the rest.
    ///
    /// ```
    /// use ferrokafka::network::{ClientConfig, SaslMechanism, SecurityProtocol};
    ///
    /// let config = ClientConfig::from_properties([
    ///     ("bootstrap.servers", "b1:9092,b2:9092"),
    ///     ("security.protocol", "SASL_SSL"),
    ///     ("sasl.mechanism", "SCRAM-SHA-512"),
    ///     ("sasl.jaas.config", r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cret";"#),
    /// ]).unwrap();
    /// assert_eq!(config.bootstrap_servers, ["b1:9092", "b2:9092"]);
    /// assert_eq!(config.security_protocol, SecurityProtocol::SaslSsl);
    /// let sasl = config.sasl.unwrap();
    /// assert_eq!((sasl.mechanism, sasl.username.as_str()), (SaslMechanism::ScramSha512, "alice"));
    ///
    /// assert!(ClientConfig::from_properties([("bootstrap.server", "x:1")]).is_err());
    /// ```
    pub fn from_properties<'a, I>(properties: I) -> Result<ClientConfig, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (config, unused) = Self::from_properties_partial(properties)?;
        if !unused.is_empty() {
            return Err(ConfigError::UnknownProperties(unused.into_keys().collect()));
        }
        Ok(config)
    }

    /// Like [`ClientConfig::from_properties`], but returns the properties this
    /// layer does not know instead of failing on them, for the caller to
    /// interpret.
    ///
    /// ```
    /// use ferrokafka::network::ClientConfig;
    ///
    /// let (config, rest) = ClientConfig::from_properties_partial([
    ///     ("client.id", "app"),
    ///     ("acks", "all"),
    /// ]).unwrap();
    /// assert_eq!(config.client_id, "app");
    /// assert_eq!(rest.get("acks").map(String::as_str), Some("all"));
    /// ```
    pub fn from_properties_partial<'a, I>(
        properties: I,
    ) -> Result<(ClientConfig, BTreeMap<String, String>), ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut config = ClientConfig::default();
        let mut unused = BTreeMap::new();
        let mut sasl = SaslParts::default();
        for (key, value) in properties {
            let key = key.trim();
            let value = value.trim();
            config.apply(key, value, &mut sasl, &mut unused)?;
        }
        if config.security_protocol.uses_sasl()
            || sasl.username.is_some()
            || sasl.mechanism.is_some()
        {
            if let (Some(username), Some(password)) = (sasl.username, sasl.password) {
                config.sasl = Some(SaslConfig {
                    mechanism: sasl.mechanism.unwrap_or_default(),
                    username,
                    password,
                });
            }
        }
        config.validate()?;
        Ok((config, unused))
    }

    fn apply(
        &mut self,
        key: &str,
        value: &str,
        sasl: &mut SaslParts,
        unused: &mut BTreeMap<String, String>,
    ) -> Result<(), ConfigError> {
        let invalid = |reason: &str| ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let millis = || -> Result<Duration, ConfigError> {
            value
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| invalid("expected a non-negative number of milliseconds"))
        };
        let pem = |v: &str| -> Option<PemSource> {
            (!v.is_empty()).then(|| PemSource::File(PathBuf::from(v)))
        };
        let inline = |v: &str| -> Option<PemSource> {
            (!v.is_empty()).then(|| PemSource::Pem(v.to_owned()))
        };
        match key {
            "bootstrap.servers" | "metadata.broker.list" => {
                self.bootstrap_servers = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "client.id" => self.client_id = value.to_owned(),
            "client.software.name" => self.client_software_name = value.to_owned(),
            "client.software.version" => self.client_software_version = value.to_owned(),
            "request.timeout.ms" => self.request_timeout = millis()?,
            "default.api.timeout.ms" => self.default_api_timeout = millis()?,
            "metadata.max.age.ms" => self.metadata_max_age = millis()?,
            "retry.backoff.ms" => self.retry_backoff = millis()?,
            "retry.backoff.max.ms" => self.retry_backoff_max = millis()?,
            "reconnect.backoff.ms" => self.reconnect_backoff = millis()?,
            "reconnect.backoff.max.ms" => self.reconnect_backoff_max = millis()?,
            "socket.connection.setup.timeout.ms" => self.connection_setup_timeout = millis()?,
            "connections.max.idle.ms" => self.connections_max_idle = millis()?,
            "receive.message.max.bytes" => {
                self.max_response_size = value
                    .parse()
                    .map_err(|_| invalid("expected a number of bytes"))?;
            }
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight_requests_per_connection = value
                    .parse()
                    .map_err(|_| invalid("expected a positive number of requests"))?;
            }
            // Every address a name resolves to is tried (`use_all_dns_ips`,
            // the Java default); bootstrap servers are shuffled either way.
            "client.dns.lookup"
                if matches!(
                    value,
                    "use_all_dns_ips" | "resolve_canonical_bootstrap_servers_only"
                ) => {}
            "security.protocol" => {
                self.security_protocol = value.parse().map_err(|e: String| invalid(&e))?;
            }
            "sasl.mechanism" | "sasl.mechanisms" => {
                sasl.mechanism = Some(value.parse().map_err(|e: String| invalid(&e))?);
            }
            "sasl.jaas.config" => {
                let (username, password) = parse_jaas(value).map_err(|reason| {
                    // The value holds the password: do not echo it back.
                    ConfigError::InvalidValue {
                        key: key.to_owned(),
                        value: "<redacted>".to_owned(),
                        reason,
                    }
                })?;
                sasl.username = Some(username);
                sasl.password = Some(password);
            }
            "sasl.username" => sasl.username = Some(value.to_owned()),
            "sasl.password" => sasl.password = Some(value.to_owned()),
            "ssl.ca.location" | "ssl.truststore.location" => self.tls.ca = pem(value),
            "ssl.ca.pem" | "ssl.truststore.certificates" => self.tls.ca = inline(value),
            "ssl.certificate.location" => self.tls.certificate = pem(value),
            "ssl.certificate.pem" | "ssl.keystore.certificate.chain" => {
                self.tls.certificate = inline(value)
            }
            "ssl.key.location" => self.tls.key = pem(value),
            "ssl.key.pem" | "ssl.keystore.key" => self.tls.key = inline(value),
            "ssl.endpoint.identification.algorithm" => {
                self.tls.verify_hostname = match value.to_ascii_lowercase().as_str() {
                    "https" => true,
                    "" | "none" => false,
                    _ => return Err(invalid("expected \"https\" or an empty value")),
                };
            }
            "ssl.truststore.type" | "ssl.keystore.type" if value.eq_ignore_ascii_case("PEM") => {}
            _ => {
                unused.insert(key.to_owned(), value.to_owned());
            }
        }
        Ok(())
    }

    /// Checks settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.security_protocol.uses_sasl() && self.sasl.is_none() {
            return Err(ConfigError::Missing(
                "SASL credentials (sasl.jaas.config or sasl.username/sasl.password)",
            ));
        }
        if self.tls.certificate.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Missing(
                "a client certificate and its key must be given together",
            ));
        }
        if self.max_in_flight_requests_per_connection == 0 {
            return Err(ConfigError::InvalidValue {
                key: "max.in.flight.requests.per.connection".into(),
                value: "0".into(),
                reason: "at least one request must be allowed in flight".into(),
            });
        }
        if self.max_response_size < 8 {
            return Err(ConfigError::InvalidValue {
                key: "receive.message.max.bytes".into(),
                value: self.max_response_size.to_string(),
                reason: "too small for any response".into(),
            });
        }
        for server in &self.bootstrap_servers {
            split_host_port(server).map_err(|reason| ConfigError::InvalidValue {
                key: "bootstrap.servers".into(),
                value: server.clone(),
                reason,
            })?;
        }
        Ok(())
    }
}

/// Splits `host:port` (or `[v6]:port`) into its parts.
pub(crate) fn split_host_port(addr: &str) -> Result<(&str, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err("empty host".into());
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| "port is not a number between 0 and 65535".to_owned())?;
    Ok((host, port))
}

/// Extracts `username` and `password` from a JAAS line such as
/// `org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`.
fn parse_jaas(value: &str) -> Result<(String, String), String> {
    let mut rest = value.trim();
    let module = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| "empty JAAS configuration".to_owned())?;
    if !(module.ends_with("PlainLoginModule") || module.ends_with("ScramLoginModule")) {
        return Err(format!(
            "login module {module} is not supported (use PlainLoginModule or ScramLoginModule)"
        ));
    }
    rest = rest[module.len()..].trim_start();
    let flag = rest.split_whitespace().next().unwrap_or("");
    if matches!(flag, "required" | "requisite" | "sufficient" | "optional") {
        rest = rest[flag.len()..].trim_start();
    }
    let mut username = None;
    let mut password = None;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() || rest == ";" {
            break;
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| "expected name=\"value\" options".to_owned())?;
        let name = rest[..eq].trim();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            out.push(escaped);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => out.push(c),
                }
            }
            let end = end.ok_or_else(|| format!("unterminated quoted value for {name}"))?;
            rest = &quoted[end + 1..];
            value = out;
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ';')
                .unwrap_or(rest.len());
            value = rest[..end].to_owned();
            rest = &rest[end..];
        }
        match name {
            "username" => username = Some(value),
            "password" => password = Some(value),
            _ => {}
        }
    }
    match (username, password) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err("JAAS configuration must set both username and password".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_java_client() {
        let c = ClientConfig::default();
        assert_eq!(c.request_timeout, Duration::from_millis(30_000));
        assert_eq!(c.metadata_max_age, Duration::from_millis(300_000));
        assert_eq!(c.retry_backoff, Duration::from_millis(100));
        assert_eq!(c.retry_backoff_max, Duration::from_millis(1000));
        assert_eq!(c.reconnect_backoff, Duration::from_millis(50));
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(1000));
        assert_eq!(c.connection_setup_timeout, Duration::from_millis(10_000));
        assert_eq!(c.default_api_timeout, Duration::from_millis(60_000));
        assert_eq!(c.connections_max_idle, Duration::from_millis(540_000));
        assert_eq!(c.client_id, "ferrokafka");
        assert!(c.tls.verify_hostname);
    }

    #[test]
    fn parses_every_supported_property() {
        let c = ClientConfig::from_properties([
            ("bootstrap.servers", " a:1 , [::1]:2 "),
            ("client.id", "x"),
            ("request.timeout.ms", "5"),
            ("retry.backoff.ms", "6"),
            ("retry.backoff.max.ms", "7"),
            ("metadata.max.age.ms", "8"),
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
            ("ssl.ca.location", "/ca.pem"),
            ("ssl.certificate.location", "/c.pem"),
            ("ssl.key.location", "/k.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        assert_eq!(c.bootstrap_servers, ["a:1", "[::1]:2"]);
        assert_eq!(c.client_id, "x");
        assert_eq!(c.request_timeout, Duration::from_millis(5));
        assert_eq!(c.retry_backoff, Duration::from_millis(6));
        assert_eq!(c.retry_backoff_max, Duration::from_millis(7));
        assert_eq!(c.metadata_max_age, Duration::from_millis(8));
        assert_eq!(c.security_protocol, SecurityProtocol::SaslPlaintext);
        let sasl = c.sasl.clone().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha256);
        assert_eq!((sasl.username.as_str(), sasl.password.as_str()), ("u", "p"));
        assert_eq!(c.tls.ca, Some(PemSource::File("/ca.pem".into())));
        assert_eq!(c.tls.key, Some(PemSource::File("/k.pem".into())));
        assert!(!c.tls.verify_hostname);
        assert!(
            !format!("{c:?}").contains("\"p\""),
            "password leaked in Debug"
        );
    }

    #[test]
    fn jaas_parsing() {
        // Unquoted values end at whitespace or `;`.
        let (u, p) = parse_jaas("x.ScramLoginModule required username=bob password=pw;").unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("bob", "pw"));
        let (u, p) = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="a\"b" password="p w=;";"#,
        )
        .unwrap();
        assert_eq!((u.as_str(), p.as_str()), ("a\"b", "p w=;"));
        assert!(parse_jaas("com.example.Other required username=\"a\" password=\"b\";").is_err());
        assert!(parse_jaas("x.PlainLoginModule required username=\"a\";").is_err());
        assert!(parse_jaas("x.ScramLoginModule required username=\"a\" password=\"b").is_err());
    }

    #[test]
    fn unknown_and_invalid_properties_are_typed_errors() {
        let err = ClientConfig::from_properties([("bogus", "1"), ("also.bogus", "2")]).unwrap_err();
        assert_eq!(
            err,
            ConfigError::UnknownProperties(vec!["also.bogus".into(), "bogus".into()])
        );
        let err = ClientConfig::from_properties([("request.timeout.ms", "-1")]).unwrap_err();
        assert!(
            matches!(err, ConfigError::InvalidValue { ref key, .. } if key == "request.timeout.ms")
        );
        let err = ClientConfig::from_properties([("security.protocol", "SASL_SSL")]).unwrap_err();
        assert!(matches!(err, ConfigError::Missing(_)));
        let err = ClientConfig::from_properties([("bootstrap.servers", "nohost")]).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }));
        let err = ClientConfig::from_properties([(
            "sasl.jaas.config",
            "x.PlainLoginModule required password=\"secret\";",
        )])
        .unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }
}
