//! The producer's error type.

use std::sync::Arc;
use std::time::Duration;

use crate::network::ConfigError;
use crate::protocol::ErrorCode;

/// Why producing failed.
///
/// Cheap to clone: one failure of a batch is reported to every record in it.
/// [`ProducerError::is_retriable`] says whether sending the record again may
/// succeed; [`ProducerError::is_fatal`] whether the producer itself is unusable.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProducerError {
    /// The configuration is invalid.
    #[error("invalid producer configuration: {0}")]
    Config(Arc<ConfigError>),

    /// The network layer failed (connection, encoding, negotiation, ...).
    #[error("network error: {0}")]
    Network(Arc<crate::network::Error>),

    /// `send` could not enqueue within `max.block.ms`: the buffer stayed full
    /// or the topic's metadata did not arrive.
    #[error("send blocked longer than max.block.ms ({timeout:?}) waiting for {waiting_for}")]
    MaxBlockTimeout {
        /// The configured `max.block.ms`.
        timeout: Duration,
        /// What was missing: "buffer memory" or "metadata".
        waiting_for: &'static str,
    },

    /// The record was not acknowledged within `delivery.timeout.ms`.
    #[error("record for {topic}-{partition} not acknowledged within delivery.timeout.ms ({timeout:?}); last error: {last_error}")]
    DeliveryTimeout {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The configured `delivery.timeout.ms`.
        timeout: Duration,
        /// The last error seen while retrying ("none" if it never got an answer).
        last_error: String,
    },

    /// The broker rejected the batch with a non-retriable error (or retries ran out).
    #[error("broker rejected the batch for {topic}-{partition}: {code:?}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Broker {
        /// The topic.
        topic: Arc<str>,
        /// The partition.
        partition: i32,
        /// The error code.
        code: ErrorCode,
        /// The broker's message, if any.
        message: Option<String>,
    },

    /// The record alone exceeds `max.request.size` or `buffer.memory`.
    #[error("record of {size} bytes exceeds {limit_name} ({limit})")]
    RecordTooLarge {
        /// The record's encoded size estimate.
        size: usize,
        /// Which limit.
        limit_name: &'static str,
        /// The limit.
        limit: usize,
    },

    /// The record cannot be encoded (too large for the v2 format, timestamp out of range).
    #[error("invalid record: {0}")]
    InvalidRecord(String),

    /// The topic does not exist, or the partition is outside its partition count.
    #[error("unknown topic or partition: {topic}{}", partition.map(|p| format!("-{p}")).unwrap_or_default())]
    UnknownTopicOrPartition {
        /// The topic.
        topic: String,
        /// The partition asked for, if any.
        partition: Option<i32>,
    },

    /// A newer producer with the same transactional id (or producer id) took
    /// over: PRODUCER_FENCED / INVALID_PRODUCER_EPOCH. Fatal: close the producer.
    #[error(
        "producer fenced ({code:?}): another producer with the same transactional id is active"
    )]
    Fenced {
        /// PRODUCER_FENCED or INVALID_PRODUCER_EPOCH.
        code: ErrorCode,
    },

    /// A transactional call was made in a state that does not allow it.
    #[error("transaction state error: {0}")]
    TransactionState(String),

    /// The transaction was aborted (records of an aborted transaction, or a
    /// transaction that must be aborted after an error).
    #[error("transaction aborted: {0}")]
    TransactionAborted(String),

    /// The producer is closed, or closing and no longer accepts records.
    #[error("the producer is closed")]
    Closed,

    /// The record was dropped because the producer closed (or was dropped)
    /// before it could be delivered.
    #[error("record dropped: the producer closed before delivering it")]
    DroppedOnClose,

    /// `flush` or `close` did not finish within its timeout.
    #[error("{operation} did not finish within {timeout:?}")]
    Timeout {
        /// "close", "flush", ...
        operation: &'static str,
        /// The limit.
        timeout: Duration,
    },

    /// The producer hit a fatal error earlier (fenced, authorization, ...)
    /// and accepts no more records.
    #[error("the producer is in a fatal state: {0}")]
    Fatal(Arc<ProducerError>),
}

impl ProducerError {
    /// Whether sending the record again may succeed.
    pub fn is_retriable(&self) -> bool {
        match self {
            ProducerError::Network(e) => e.is_retriable(),
            ProducerError::Broker { code, .. } => code.is_retriable(),
            ProducerError::MaxBlockTimeout { .. } | ProducerError::DeliveryTimeout { .. } => true,
            _ => false,
        }
    }

    /// Whether the producer is unusable after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ProducerError::Fenced { .. } | ProducerError::Fatal(_))
    }

    /// The broker error code carried by this error, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            ProducerError::Broker { code, .. } | ProducerError::Fenced { code } => Some(*code),
            ProducerError::Network(e) => e.error_code(),
            ProducerError::Fatal(e) => e.error_code(),
            _ => None,
        }
    }
}

impl From<crate::network::Error> for ProducerError {
    fn from(e: crate::network::Error) -> Self {
        match e.error_code() {
            Some(code @ (ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch)) => {
                ProducerError::Fenced { code }
            }
            _ => ProducerError::Network(Arc::new(e)),
        }
    }
}

impl From<ConfigError> for ProducerError {
    fn from(e: ConfigError) -> Self {
        ProducerError::Config(Arc::new(e))
    }
}

/// The producer's result type.
pub type Result<T, E = ProducerError> = std::result::Result<T, E>;
