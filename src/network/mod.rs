//! Talking to brokers: configuration, connections with pipelined requests,
//! version negotiation, TLS, SASL and a cluster-aware client.
//!
//! * [`ClientConfig`]: typed settings with the Java client's defaults.
//! * [`BrokerConnection`]: one connection, many requests in flight,
//!   cancellation safe.
//! * [`Cluster`]: bootstrap, metadata cache, connection pool, routing,
//!   coordinator lookup and retries.
//!
//! This module depends only on [`crate::protocol`].

pub mod backoff;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod error;
pub mod group_types;
pub mod metadata;
pub mod options;
pub mod sasl;
pub mod tls;
pub mod versions;

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub use cluster::{Cluster, CoordinatorType};
pub use config::{
    ClientConfig, ClientConfigBuilder, ConfigError, PemSource, SaslConfig, SaslMechanism,
    SecurityProtocol, TlsConfig,
};
pub use connection::{BrokerConnection, ResponseHandle};
pub use error::{Error, Result};
pub use group_types::{ConsumerGroupMetadata, OffsetAndMetadata};
pub use metadata::{
    BrokerInfo, ClusterMetadata, MetadataSnapshot, PartitionLeader, PartitionMetadata,
    TopicMetadata, TopicPartitions,
};
pub use options::{ConnectionRole, IsolationLevel, RequestOptions};
pub use versions::ApiVersionsTable;
