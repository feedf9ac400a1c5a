//! The producer: batching, compression, Java-compatible partitioning,
//! idempotence and transactions.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use bytes::Bytes;
//! use ferrokafka::network::ClientConfig;
//! use ferrokafka::producer::{Acks, Producer, ProducerConfig, ProducerRecord};
//! use ferrokafka::records::Compression;
//!
//! let client = ClientConfig::builder().bootstrap_servers(["127.0.0.1:9092"]).build()?;
//! let producer = Producer::new(client, ProducerConfig::builder()
//!     .acks(Acks::All).linger(Duration::from_millis(5)).compression(Compression::Lz4)
//!     .build()?).await?;
//! // Stage 1: enqueue (waits only when buffer.memory is full).
//! let delivery = producer
//!     .send(ProducerRecord::new("events", Bytes::from_static(b"hello")).with_key(Bytes::from_static(b"k")))
//!     .await?;
//! // Stage 2: the broker's acknowledgement.
//! let metadata = delivery.await?;
//! println!("{}-{}@{}", metadata.topic(), metadata.partition, metadata.offset);
//! producer.close(Duration::from_secs(10)).await?;
//! # Ok(()) }
//! ```
//!
//! # Design
//!
//! * `send` appends the record in place into its partition's open batch
//!   (see `accumulator`): no allocation per record, one uncontended mutex.
//! * One sender task per producer seals batches (linger, size, flush),
//!   stamps producer id/epoch/sequence and compresses each batch once, sends
//!   every ready batch for one leader in one ProduceRequest, and keeps up to
//!   `max.in.flight.requests.per.connection` requests in flight per broker,
//!   in order.
//! * A [`DeliveryHandle`] shares its batch's completion (one `Arc` per batch
//!   plus the record's offset delta).
//!
//! # Dropping the producer
//!
//! Dropping the last [`Producer`] clone without [`Producer::close`] starts a
//! close in the background: no new records are accepted, and the sender task
//! keeps running until every buffered record is acknowledged or fails
//! (at the latest after `delivery.timeout.ms`), so handles still resolve. If
//! the Tokio runtime itself shuts down first, the sender fails every
//! remaining record with [`ProducerError::DroppedOnClose`]: records are never
//! lost silently, but they are lost. Call `close` (or `flush`) to know.

mod accumulator;
mod clock;
mod config;
mod error;
mod metrics;
mod partitioner;
mod pool;
#[allow(clippy::module_inception)]
mod producer;
mod record;
mod sender;
mod state;
mod txn;

pub use config::{parse_compression, Acks, ProducerConfig, ProducerConfigBuilder};
pub use error::{ProducerError, Result};
pub use metrics::ProducerMetrics;
pub use partitioner::{murmur2, partition_for_key, DefaultPartitioner, Partitioner};
pub use producer::Producer;
pub use record::{DeliveryHandle, ProducerRecord, RecordMetadata, TrySendError};
pub use txn::{ConsumerGroupMetadata, OffsetToCommit};
