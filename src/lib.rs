//! # ferrokafka
//!
//! A pure-Rust client for Apache Kafka's wire protocol.
//!
//! The crate is layered; each module depends only on those before it:
//!
//! * [`protocol`]: primitive wire types and every request/response message,
//!   generated at build time from Kafka's JSON message specs.
//! * [`records`]: record batches (message format v2, legacy v0/v1 reading) and
//!   compression codecs.
//! * [`network`]: configuration, broker connections (TLS, SASL, version
//!   negotiation, pipelining) and the cluster client.
//! * [`admin`]: the admin client (topics, configs, groups, offsets, ACLs, ...).
//! * [`producer`]: the producer (batching, compression, Java-compatible
//!   partitioning, idempotence, transactions).
//! * [`consumer`]: fetching assigned partitions (poll batches or a `Stream`).
//! * `testkit` (feature `testkit`): runs real Kafka-compatible brokers for
//!   integration tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod consumer;
pub mod network;
pub mod producer;
pub mod protocol;
pub mod records;
#[cfg(feature = "testkit")]
pub mod testkit;
