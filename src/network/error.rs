//! The network layer's error type.

use std::time::Duration;

use crate::protocol::{ApiKey, DecodeError, EncodeError, ErrorCode, VersionRange};

use super::config::ConfigError;

/// Why a network operation failed.
///
/// Every variant says what failed; [`Error::is_retriable`] says whether trying
/// the same operation again (possibly on a fresh connection, after a metadata
/// refresh) can succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client configuration is invalid.
    #[error("invalid client configuration: {0}")]
    Config(#[from] ConfigError),

    /// Opening the TCP connection to a broker failed.
    #[error("could not connect to broker {broker}: {source}")]
    Connect {
        /// The broker's address.
        broker: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Connection setup (TCP, TLS, ApiVersions, SASL) took longer than
    /// `socket.connection.setup.timeout.ms`.
    #[error("connecting to broker {broker} timed out after {timeout:?}")]
    ConnectTimeout {
        /// The broker's address.
        broker: String,
        /// The configured limit.
        timeout: Duration,
    },

    /// The TLS handshake with a broker failed (bad certificate, wrong name, ...).
    #[error("TLS handshake with broker {broker} failed: {source}")]
    TlsHandshake {
        /// The broker's address.
        broker: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The connection was closed or broke while a request was pending or
    /// before it could be sent.
    #[error("connection to broker {broker} is closed: {reason}")]
    Disconnected {
        /// The broker's address.
        broker: String,
        /// Why the connection closed.
        reason: String,
    },

    /// No response arrived within `request.timeout.ms` (or the per-request
    /// timeout). The connection it was sent on is closed (the broker may be
    /// gone behind a half-open TCP connection) and the other requests on it
    /// fail with [`Error::Disconnected`]; the cluster client opens a new one.
    #[error("{api:?} request to broker {broker} timed out after {timeout:?}")]
    RequestTimeout {
        /// The request's API.
        api: ApiKey,
        /// The broker's address.
        broker: String,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// A request could not be encoded.
    #[error("could not encode {api:?} v{version} request: {source}")]
    Encode {
        /// The request's API.
        api: ApiKey,
        /// The version being written.
        version: i16,
        /// The codec error.
        #[source]
        source: EncodeError,
    },

    /// A response could not be decoded.
    #[error("could not decode {api:?} v{version} response from broker {broker}: {source}")]
    Decode {
        /// The response's API.
        api: ApiKey,
        /// The version being read.
        version: i16,
        /// The broker's address.
        broker: String,
        /// The codec error.
        #[source]
        source: DecodeError,
    },

    /// A frame was larger than the configured maximum.
    #[error("frame of {size} bytes from broker {broker} exceeds the maximum of {max} bytes")]
    FrameTooLarge {
        /// The broker's address.
        broker: String,
        /// The size announced by the frame's prefix.
        size: usize,
        /// The configured maximum.
        max: usize,
    },

    /// The broker broke the protocol (unknown correlation id, bad ApiVersions
    /// answer, ...).
    #[error("protocol violation by broker {broker}: {reason}")]
    Protocol {
        /// The broker's address.
        broker: String,
        /// What went wrong.
        reason: String,
    },

    /// The client and the broker share no version of an API.
    #[error("no common version of {api:?}: client supports {client}, broker supports {}", broker.map_or_else(|| "none".to_owned(), |r| r.to_string()))]
    UnsupportedVersion {
        /// The API.
        api: ApiKey,
        /// The versions this client can send.
        client: VersionRange,
        /// The versions the broker advertised, if it knows the API at all.
        broker: Option<VersionRange>,
    },

    /// The broker answered with an error code.
    #[error("{api:?} failed with {} ({}){}", code.name(), code.code(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Broker {
        /// The request's API.
        api: ApiKey,
        /// The error code.
        code: ErrorCode,
        /// The broker's error message, if any.
        message: Option<String>,
    },

    /// SASL authentication failed (bad credentials, unsupported mechanism,
    /// malformed server messages, failed server verification).
    #[error("SASL {mechanism} authentication failed: {reason}")]
    SaslAuthentication {
        /// The mechanism in use.
        mechanism: String,
        /// What went wrong.
        reason: String,
    },

    /// A broker id is not in the cluster metadata.
    #[error("broker {0} is not in the cluster metadata")]
    UnknownBroker(i32),

    /// No broker could be reached.
    #[error("no broker could be reached (tried {tried:?}); last error: {last}")]
    NoBrokerAvailable {
        /// The addresses that were tried.
        tried: Vec<String>,
        /// The last failure.
        #[source]
        last: Box<Error>,
    },

    /// An operation was retried until its deadline and still failed.
    #[error(
        "{operation} did not succeed within {timeout:?} ({attempts} attempts){}",
        last.as_ref().map(|e| format!("; last error: {e}")).unwrap_or_default()
    )]
    Timeout {
        /// What was being attempted.
        operation: String,
        /// The overall deadline.
        timeout: Duration,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure, if an attempt finished before the deadline.
        #[source]
        last: Option<Box<Error>>,
    },
}

impl Error {
    /// Whether retrying the same operation may succeed.
    ///
    /// Broken connections, timeouts of a single request and retriable broker
    /// error codes are retriable; configuration, codec, TLS, authentication and
    /// version errors are not, nor is [`Error::Timeout`] (its deadline has
    /// already passed).
    ///
    /// ```
    /// use ferrokafka::network::Error;
    /// use ferrokafka::protocol::{ApiKey, ErrorCode};
    ///
    /// let e = Error::Broker { api: ApiKey::Metadata, code: ErrorCode::LeaderNotAvailable, message: None };
    /// assert!(e.is_retriable());
    /// let e = Error::Broker { api: ApiKey::Metadata, code: ErrorCode::TopicAuthorizationFailed, message: None };
    /// assert!(!e.is_retriable());
    /// ```
    pub fn is_retriable(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::Disconnected { .. }
            | Error::RequestTimeout { .. }
            | Error::UnknownBroker(_)
            | Error::NoBrokerAvailable { .. } => true,
            Error::Broker { code, .. } => code.is_retriable(),
            Error::Config(_)
            | Error::TlsHandshake { .. }
            | Error::Encode { .. }
            | Error::Decode { .. }
            | Error::FrameTooLarge { .. }
            | Error::Protocol { .. }
            | Error::UnsupportedVersion { .. }
            | Error::SaslAuthentication { .. }
            | Error::Timeout { .. } => false,
        }
    }

    /// The broker error code carried by this error, if any.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the cached cluster metadata should be refreshed before a retry:
    /// true for broken connections and for error codes that mean leadership or
    /// topic layout changed.
    pub fn invalidates_metadata(&self) -> bool {
        match self {
            Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::Disconnected { .. }
            | Error::RequestTimeout { .. }
            | Error::UnknownBroker(_)
            | Error::NoBrokerAvailable { .. } => true,
            Error::Broker { code, .. } => matches!(
                code,
                ErrorCode::NotLeaderOrFollower
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::UnknownLeaderEpoch
                    | ErrorCode::UnknownTopicId
                    | ErrorCode::InconsistentTopicId
                    | ErrorCode::NotController
                    | ErrorCode::BrokerNotAvailable
                    | ErrorCode::ReplicaNotAvailable
                    | ErrorCode::KafkaStorageError
                    | ErrorCode::OffsetNotAvailable
            ),
            _ => false,
        }
    }

    /// Whether a cached group/transaction coordinator should be forgotten.
    pub fn invalidates_coordinator(&self) -> bool {
        match self {
            Error::Broker { code, .. } => {
                matches!(
                    code,
                    ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
                )
            }
            Error::Disconnected { .. }
            | Error::Connect { .. }
            | Error::ConnectTimeout { .. }
            | Error::RequestTimeout { .. } => true,
            _ => false,
        }
    }

    /// A copy of this error for another caller that waited on the same
    /// attempt (I/O sources are recreated from their kind and message).
    pub(crate) fn duplicate(&self) -> Error {
        let io = |e: &std::io::Error| std::io::Error::new(e.kind(), e.to_string());
        match self {
            Error::Config(e) => Error::Config(e.clone()),
            Error::Connect { broker, source } => Error::Connect {
                broker: broker.clone(),
                source: io(source),
            },
            Error::ConnectTimeout { broker, timeout } => Error::ConnectTimeout {
                broker: broker.clone(),
                timeout: *timeout,
            },
            Error::TlsHandshake { broker, source } => Error::TlsHandshake {
                broker: broker.clone(),
                source: io(source),
            },
            Error::Disconnected { broker, reason } => Error::Disconnected {
                broker: broker.clone(),
                reason: reason.clone(),
            },
            Error::RequestTimeout {
                api,
                broker,
                timeout,
            } => Error::RequestTimeout {
                api: *api,
                broker: broker.clone(),
                timeout: *timeout,
            },
            Error::Encode {
                api,
                version,
                source,
            } => Error::Encode {
                api: *api,
                version: *version,
                source: source.clone(),
            },
            Error::Decode {
                api,
                version,
                broker,
                source,
            } => Error::Decode {
                api: *api,
                version: *version,
                broker: broker.clone(),
                source: source.clone(),
            },
            Error::FrameTooLarge { broker, size, max } => Error::FrameTooLarge {
                broker: broker.clone(),
                size: *size,
                max: *max,
            },
            Error::Protocol { broker, reason } => Error::Protocol {
                broker: broker.clone(),
                reason: reason.clone(),
            },
            Error::UnsupportedVersion {
                api,
                client,
                broker,
            } => Error::UnsupportedVersion {
                api: *api,
                client: *client,
                broker: *broker,
            },
            Error::Broker { api, code, message } => Error::Broker {
                api: *api,
                code: *code,
                message: message.clone(),
            },
            Error::SaslAuthentication { mechanism, reason } => Error::SaslAuthentication {
                mechanism: mechanism.clone(),
                reason: reason.clone(),
            },
            Error::UnknownBroker(id) => Error::UnknownBroker(*id),
            Error::NoBrokerAvailable { tried, last } => Error::NoBrokerAvailable {
                tried: tried.clone(),
                last: Box::new(last.duplicate()),
            },
            Error::Timeout {
                operation,
                timeout,
                attempts,
                last,
            } => Error::Timeout {
                operation: operation.clone(),
                timeout: *timeout,
                attempts: *attempts,
                last: last.as_ref().map(|e| Box::new(e.duplicate())),
            },
        }
    }

    /// Turns a response's error code into a result: `Ok(())` for
    /// [`ErrorCode::None`], [`Error::Broker`] otherwise.
    ///
    /// ```
    /// use ferrokafka::network::Error;
    /// use ferrokafka::protocol::ApiKey;
    ///
    /// assert!(Error::check(ApiKey::Metadata, 0, None).is_ok());
    /// let err = Error::check(ApiKey::Metadata, 6, None).unwrap_err();
    /// assert!(err.is_retriable()); // NOT_LEADER_OR_FOLLOWER
    /// ```
    pub fn check(api: ApiKey, code: i16, message: Option<&str>) -> Result<()> {
        match ErrorCode::from_code(code) {
            ErrorCode::None => Ok(()),
            code => Err(Error::Broker {
                api,
                code,
                message: message.map(str::to_owned),
            }),
        }
    }
}

/// The network layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
