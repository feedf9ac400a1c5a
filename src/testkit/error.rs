//! The harness's error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use super::BrokerKind;
#[cfg(doc)]
use super::BrokerOptions;

/// Why the harness could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The broker binary was neither configured, installed nor installable.
    #[error("{kind} broker binary not available: {detail}")]
    NotInstalled {
        /// The broker asked for.
        kind: BrokerKind,
        /// What was tried and what went wrong.
        detail: String,
    },
    /// The broker process could not be spawned.
    #[error("could not spawn the {kind} broker {binary:?}: {source}")]
    Spawn {
        /// The broker asked for.
        kind: BrokerKind,
        /// The binary that failed to start.
        binary: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The broker process exited before it answered ApiVersions.
    #[error("{kind} broker on {addr} exited before it was ready ({status})\n--- broker output (last lines) ---\n{output}")]
    Exited {
        /// The broker asked for.
        kind: BrokerKind,
        /// The address it was to listen on.
        addr: String,
        /// How it exited.
        status: String,
        /// The tail of its standard output and error.
        output: String,
    },
    /// The broker did not answer ApiVersions in time.
    #[error("{kind} broker on {addr} not ready after {waited:?}; last attempt: {last_error}\n--- broker output (last lines) ---\n{output}")]
    NotReady {
        /// The broker asked for.
        kind: BrokerKind,
        /// The address it listens on.
        addr: String,
        /// How long the harness waited.
        waited: Duration,
        /// Why the last readiness probe failed.
        last_error: String,
        /// The tail of its standard output and error.
        output: String,
    },
    /// An operation that needs a local process was asked of an external cluster.
    #[error(
        "cannot {action} an external cluster ({bootstrap}): it was not started by this harness"
    )]
    ExternalCluster {
        /// What was asked (`stop`, `restart`).
        action: &'static str,
        /// The external cluster's bootstrap servers.
        bootstrap: String,
    },
    /// A request to a broker failed.
    #[error("request to {addr} failed: {detail}")]
    Request {
        /// The broker's address.
        addr: String,
        /// What went wrong.
        detail: String,
    },
    /// The broker cannot be run with the requested [`BrokerOptions`].
    #[error("{kind} cannot be started with {what}")]
    Unsupported {
        /// The broker asked for.
        kind: BrokerKind,
        /// The option it cannot honour, and why.
        what: String,
    },
    /// A name that is not a broker kind.
    #[error("unknown broker kind {0:?} (expected `tansu` or `noida`)")]
    UnknownKind(String),
    /// A file-system or process-control operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
}

pub(super) fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> TestkitError {
    let context = context.into();
    move |source| TestkitError::Io { context, source }
}
