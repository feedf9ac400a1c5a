//! Producer settings: a typed builder and the Java client's property names,
//! with the Java client's defaults.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::network::{ClientConfig, ConfigError};
use crate::records::Compression;

use super::partitioner::Partitioner;

/// How many replicas must acknowledge a write (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: no acknowledgement; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader wrote the batch.
    Leader,
    /// `acks=all` (`-1`): every in-sync replica has it. The default.
    #[default]
    All,
}

impl Acks {
    /// The value sent in ProduceRequest.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(format!("expected 0, 1, all or -1, got {other:?}")),
        }
    }
}

/// Parses a `compression.type` value.
pub fn parse_compression(value: &str) -> Result<Compression, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "none" | "" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!(
            "expected none, gzip, snappy, lz4 or zstd, got {other:?}"
        )),
    }
}

/// Producer settings. Build with [`ProducerConfig::builder`] or
/// [`ProducerConfig::from_properties`]; every default is the Java client's
/// (except `linger.ms`, 5 ms as in Kafka 4.0).
///
/// ```
/// use std::time::Duration;
/// use ferrokafka::producer::{Acks, ProducerConfig};
/// use ferrokafka::records::Compression;
///
/// let config = ProducerConfig::builder()
///     .acks(Acks::Leader)
///     .linger(Duration::from_millis(10))
///     .compression(Compression::Lz4)
///     .build()
///     .unwrap();
/// assert_eq!(config.batch_size, 16 * 1024);
///
/// let same = ProducerConfig::from_properties([
///     ("acks", "1"), ("linger.ms", "10"), ("compression.type", "lz4"),
/// ]).unwrap();
/// assert_eq!(same.acks, config.acks);
/// assert_eq!(same.compression, Compression::Lz4);
/// ```
#[derive(Clone)]
pub struct ProducerConfig {
    /// `acks` (all).
    pub acks: Acks,
    /// `batch.size`: target bytes per partition batch (16384, the Java
    /// client's default).
    ///
    /// A batch is sealed once its estimated size (compressed, for a codec)
    /// reaches this; `linger.ms` seals it earlier. Buffers are sized from the
    /// partition's previous batch, so a larger value costs memory only on
    /// partitions whose batches do grow.
    ///
    /// The default stays Java's although larger batches are cheaper: with
    /// librdkafka's 1,000,000 the benchmark (`BENCHMARKS.md`, batch.size
    /// section) measured fewer client CPU-seconds per record and more records
    /// per second, most of all for 1 KiB records, because the broker's and
    /// the client's costs are per batch as much as per byte. The default is
    /// kept because a batch must fit the topic's `max.message.bytes` (and the
    /// broker's `message.max.bytes`): clusters tuned for Java producers may
    /// refuse larger batches with MESSAGE_TOO_LARGE, and a config carried
    /// over from a Java producer should batch the same. Throughput-bound
    /// producers should raise it (1 MB matches librdkafka and franz-go).
    pub batch_size: usize,
    /// `linger.ms`: how long a batch waits for more records (5 ms).
    pub linger: Duration,
    /// `max.request.size`: largest ProduceRequest, and largest record (1 MiB).
    pub max_request_size: usize,
    /// `buffer.memory`: bytes of records buffered before `send` waits (32 MiB).
    /// A waiting `send` resumes once an eighth of it is free, or after at
    /// most 100 ms as soon as its record fits.
    pub buffer_memory: usize,
    /// `max.block.ms`: how long `send` may wait for buffer space or metadata (60 s).
    pub max_block: Duration,
    /// `compression.type` (none).
    pub compression: Compression,
    /// `compression.<codec>.level` for the chosen codec (codec default).
    pub compression_level: Option<i32>,
    /// `delivery.timeout.ms`: upper bound from `send` to success or failure (120 s).
    pub delivery_timeout: Duration,
    /// `request.timeout.ms` for Produce requests; `None` uses the client's (30 s).
    pub request_timeout: Option<Duration>,
    /// `retries` (i32::MAX): bounded in practice by `delivery.timeout.ms`.
    pub retries: u32,
    /// `retry.backoff.ms`; `None` uses the client's (100 ms).
    pub retry_backoff: Option<Duration>,
    /// `retry.backoff.max.ms`; `None` uses the client's (1 s).
    pub retry_backoff_max: Option<Duration>,
    /// `enable.idempotence`: `None` means on, falling back to off (with a
    /// warning) if the broker has no InitProducerId; `Some(true)` fails instead.
    pub enable_idempotence: Option<bool>,
    /// `max.in.flight.requests.per.connection` (5; at most 5 with idempotence).
    pub max_in_flight: usize,
    /// `transactional.id` (none).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (60 s).
    pub transaction_timeout: Duration,
    /// `partitioner.adaptive.partitioning.enable` (true): keyless records
    /// prefer partitions whose leaders have less queued.
    pub adaptive_partitioning: bool,
    /// `partitioner.ignore.keys` (false): keyed records also go sticky.
    pub partitioner_ignore_keys: bool,
    /// A custom partitioner (`partitioner.class`); `None` is the default
    /// (Java's: murmur2 for keys, uniform sticky for keyless records).
    pub partitioner: Option<Arc<dyn Partitioner>>,
}

impl fmt::Debug for ProducerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProducerConfig")
            .field("acks", &self.acks)
            .field("batch_size", &self.batch_size)
            .field("linger", &self.linger)
            .field("max_request_size", &self.max_request_size)
            .field("buffer_memory", &self.buffer_memory)
            .field("max_block", &self.max_block)
            .field("compression", &self.compression)
            .field("compression_level", &self.compression_level)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retries", &self.retries)
            .field("enable_idempotence", &self.enable_idempotence)
            .field("max_in_flight", &self.max_in_flight)
            .field("transactional_id", &self.transactional_id)
            .field("transaction_timeout", &self.transaction_timeout)
            .field("adaptive_partitioning", &self.adaptive_partitioning)
            .field("partitioner_ignore_keys", &self.partitioner_ignore_keys)
            .field("custom_partitioner", &self.partitioner.is_some())
            .finish()
    }
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            batch_size: 16 * 1024,
            linger: Duration::from_millis(5),
            max_request_size: 1024 * 1024,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_secs(60),
            compression: Compression::None,
            compression_level: None,
            delivery_timeout: Duration::from_secs(120),
            request_timeout: None,
            retries: i32::MAX as u32,
            retry_backoff: None,
            retry_backoff_max: None,
            enable_idempotence: None,
            max_in_flight: 5,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
            adaptive_partitioning: true,
            partitioner_ignore_keys: false,
            partitioner: None,
        }
    }
}

impl ProducerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfigBuilder {
            config: ProducerConfig::default(),
        }
    }

    /// Settings from Java property names (`acks`, `linger.ms`, ...). Unknown
    /// names are an error; use [`ProducerConfig::from_properties_partial`]
    /// to combine with [`ClientConfig`] properties.
    pub fn from_properties<'a, I>(properties: I) -> Result<ProducerConfig, ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let (config, unused) = Self::from_properties_partial(properties)?;
        if !unused.is_empty() {
            return Err(ConfigError::UnknownProperties(
                unused.into_iter().map(|(k, _)| k).collect(),
            ));
        }
        Ok(config)
    }

    /// Like [`ProducerConfig::from_properties`], returning the properties
    /// the producer does not know.
    pub fn from_properties_partial<'a, I>(
        properties: I,
    ) -> Result<(ProducerConfig, Vec<(String, String)>), ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut config = ProducerConfig::default();
        let mut unused = Vec::new();
        let mut levels: Vec<(Compression, i32)> = Vec::new();
        for (key, value) in properties {
            let (key, value) = (key.trim(), value.trim());
            let invalid = |reason: &str| ConfigError::InvalidValue {
                key: key.to_owned(),
                value: value.to_owned(),
                reason: reason.to_owned(),
            };
            let number = || -> Result<u64, ConfigError> {
                value
                    .parse::<u64>()
                    .map_err(|_| invalid("expected a non-negative number"))
            };
            let millis = || number().map(Duration::from_millis);
            let boolean = || -> Result<bool, ConfigError> {
                match value.to_ascii_lowercase().as_str() {
                    "true" => Ok(true),
                    "false" => Ok(false),
                    _ => Err(invalid("expected true or false")),
                }
            };
            let level = || -> Result<i32, ConfigError> {
                value
                    .parse::<i32>()
                    .map_err(|_| invalid("expected an integer"))
            };
            match key {
                "acks" | "request.required.acks" => {
                    config.acks = value.parse().map_err(|e: String| invalid(&e))?
                }
                "batch.size" => config.batch_size = number()? as usize,
                "linger.ms" => config.linger = millis()?,
                "max.request.size" => config.max_request_size = number()? as usize,
                "buffer.memory" => config.buffer_memory = number()? as usize,
                "max.block.ms" => config.max_block = millis()?,
                "compression.type" | "compression.codec" => {
                    config.compression = parse_compression(value).map_err(|e| invalid(&e))?
                }
                "compression.gzip.level" => levels.push((Compression::Gzip, level()?)),
                "compression.lz4.level" => levels.push((Compression::Lz4, level()?)),
                "compression.zstd.level" => levels.push((Compression::Zstd, level()?)),
                "delivery.timeout.ms" => config.delivery_timeout = millis()?,
                "request.timeout.ms" => config.request_timeout = Some(millis()?),
                "retries" => {
                    config.retries = value
                        .parse::<i64>()
                        .map_err(|_| invalid("expected an integer"))?
                        .clamp(0, i32::MAX as i64) as u32
                }
                "retry.backoff.ms" => config.retry_backoff = Some(millis()?),
                "retry.backoff.max.ms" => config.retry_backoff_max = Some(millis()?),
                "enable.idempotence" => config.enable_idempotence = Some(boolean()?),
                "max.in.flight.requests.per.connection" => {
                    config.max_in_flight = number()? as usize
                }
                "transactional.id" => {
                    config.transactional_id = (!value.is_empty()).then(|| value.to_owned())
                }
                "transaction.timeout.ms" => config.transaction_timeout = millis()?,
                "partitioner.adaptive.partitioning.enable" => {
                    config.adaptive_partitioning = boolean()?
                }
                "partitioner.ignore.keys" => config.partitioner_ignore_keys = boolean()?,
                _ => unused.push((key.to_owned(), value.to_owned())),
            }
        }
        if let Some(&(_, level)) = levels.iter().rev().find(|(c, _)| *c == config.compression) {
            config.compression_level = Some(level);
        }
        config.validate()?;
        Ok((config, unused))
    }

    /// Producer and client settings from one list of Java properties, as a
    /// Java application would configure its `KafkaProducer`.
    ///
    /// ```
    /// use ferrokafka::producer::ProducerConfig;
    /// let (client, producer) = ProducerConfig::client_and_producer_from_properties([
    ///     ("bootstrap.servers", "127.0.0.1:9092"), ("acks", "1"), ("retry.backoff.ms", "50"),
    /// ]).unwrap();
    /// assert_eq!(client.bootstrap_servers, ["127.0.0.1:9092"]);
    /// assert_eq!(producer.acks, ferrokafka::producer::Acks::Leader);
    /// ```
    pub fn client_and_producer_from_properties<'a, I>(
        properties: I,
    ) -> Result<(ClientConfig, ProducerConfig), ConfigError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let properties: Vec<(&str, &str)> = properties.into_iter().collect();
        let (producer, rest) = Self::from_properties_partial(properties.iter().copied())?;
        let (client, unknown) = ClientConfig::from_properties_partial(
            rest.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        if !unknown.is_empty() {
            return Err(ConfigError::UnknownProperties(
                unknown.into_keys().collect(),
            ));
        }
        let mut client = client;
        client.max_in_flight_requests_per_connection = producer.max_in_flight;
        // Keys both layers read (request.timeout.ms, retry.backoff.*) land in
        // the producer's Option fields and fall back to the client's.
        Ok((client, producer))
    }

    /// Checks settings that depend on each other.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, value: String, reason: &str| ConfigError::InvalidValue {
            key: key.to_owned(),
            value,
            reason: reason.to_owned(),
        };
        if self.max_in_flight == 0 {
            return Err(invalid(
                "max.in.flight.requests.per.connection",
                "0".into(),
                "must be at least 1",
            ));
        }
        if self.enable_idempotence == Some(true) || self.transactional_id.is_some() {
            if self.max_in_flight > 5 {
                return Err(invalid(
                    "max.in.flight.requests.per.connection",
                    self.max_in_flight.to_string(),
                    "must be at most 5 with idempotence",
                ));
            }
            if self.acks != Acks::All {
                return Err(invalid(
                    "acks",
                    format!("{:?}", self.acks),
                    "idempotence requires acks=all",
                ));
            }
            if self.enable_idempotence == Some(false) && self.transactional_id.is_some() {
                return Err(invalid(
                    "enable.idempotence",
                    "false".into(),
                    "transactional.id requires idempotence",
                ));
            }
        }
        if !self.compression.is_enabled() {
            return Err(invalid(
                "compression.type",
                format!("{:?}", self.compression),
                "codec not compiled in (crate feature off)",
            ));
        }
        if self.buffer_memory == 0 || self.max_request_size == 0 {
            return Err(invalid(
                "buffer.memory",
                self.buffer_memory.to_string(),
                "buffer.memory and max.request.size must be positive",
            ));
        }
        Ok(())
    }

    /// Whether idempotence is wanted: explicitly, by default, or by a
    /// transactional id. `acks` other than all turns the default off, as in
    /// the Java client.
    pub(crate) fn wants_idempotence(&self) -> bool {
        self.transactional_id.is_some()
            || self
                .enable_idempotence
                .unwrap_or(self.acks == Acks::All && self.max_in_flight <= 5)
    }
}

/// Builds a [`ProducerConfig`]; each setter overrides one default.
#[derive(Debug, Clone)]
pub struct ProducerConfigBuilder {
    config: ProducerConfig,
}

impl ProducerConfigBuilder {
    /// `acks`.
    pub fn acks(mut self, acks: Acks) -> Self {
        self.config.acks = acks;
        self
    }
    /// `batch.size` in bytes (16384; see [`ProducerConfig::batch_size`] for
    /// when to raise it).
    pub fn batch_size(mut self, bytes: usize) -> Self {
        self.config.batch_size = bytes;
        self
    }
    /// `linger.ms`.
    pub fn linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }
    /// `max.request.size` in bytes.
    pub fn max_request_size(mut self, bytes: usize) -> Self {
        self.config.max_request_size = bytes;
        self
    }
    /// `buffer.memory` in bytes.
    pub fn buffer_memory(mut self, bytes: usize) -> Self {
        self.config.buffer_memory = bytes;
        self
    }
    /// `max.block.ms`.
    pub fn max_block(mut self, timeout: Duration) -> Self {
        self.config.max_block = timeout;
        self
    }
    /// `compression.type`.
    pub fn compression(mut self, codec: Compression) -> Self {
        self.config.compression = codec;
        self
    }
    /// `compression.<codec>.level`.
    pub fn compression_level(mut self, level: Option<i32>) -> Self {
        self.config.compression_level = level;
        self
    }
    /// `delivery.timeout.ms`.
    pub fn delivery_timeout(mut self, timeout: Duration) -> Self {
        self.config.delivery_timeout = timeout;
        self
    }
    /// `request.timeout.ms` for Produce requests.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = Some(timeout);
        self
    }
    /// `retries`.
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = retries;
        self
    }
    /// `retry.backoff.ms` and `retry.backoff.max.ms`.
    pub fn retry_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.retry_backoff = Some(initial);
        self.config.retry_backoff_max = Some(max);
        self
    }
    /// `enable.idempotence`.
    pub fn enable_idempotence(mut self, enable: bool) -> Self {
        self.config.enable_idempotence = Some(enable);
        self
    }
    /// `max.in.flight.requests.per.connection`.
    pub fn max_in_flight(mut self, requests: usize) -> Self {
        self.config.max_in_flight = requests;
        self
    }
    /// `transactional.id`.
    pub fn transactional_id(mut self, id: impl Into<String>) -> Self {
        self.config.transactional_id = Some(id.into());
        self
    }
    /// `transaction.timeout.ms`.
    pub fn transaction_timeout(mut self, timeout: Duration) -> Self {
        self.config.transaction_timeout = timeout;
        self
    }
    /// `partitioner.adaptive.partitioning.enable`.
    pub fn adaptive_partitioning(mut self, enable: bool) -> Self {
        self.config.adaptive_partitioning = enable;
        self
    }
    /// `partitioner.ignore.keys`.
    pub fn partitioner_ignore_keys(mut self, ignore: bool) -> Self {
        self.config.partitioner_ignore_keys = ignore;
        self
    }
    /// A custom partitioner.
    pub fn partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.config.partitioner = Some(partitioner);
        self
    }
    /// Validates and returns the settings.
    pub fn build(self) -> Result<ProducerConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}
