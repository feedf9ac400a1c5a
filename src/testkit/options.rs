//! How a broker is started: TLS and required authentication.

use std::path::PathBuf;

#[cfg(doc)]
use super::TestBroker;
use super::{BrokerKind, TestkitError};

/// PEM files for a broker's TLS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate, followed by any intermediates.
    pub certificate_chain: PathBuf,
    /// The server's private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// When set, clients must present a certificate issued by one of these
    /// CA certificates (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// How [`TestBroker::start_with`] runs a broker. The default is what
/// [`TestBroker::start`] does: plaintext, no authentication.
///
/// Only Tansu takes options, and Tansu 0.6 cannot do everything itself:
///
/// * **TLS**: `tansu broker` declares `--cert` and `--key` as mutually
///   exclusive, yet builds its TLS configuration only from both, so it cannot
///   serve TLS at all. With [`BrokerOptions::tls`] the harness puts its own
///   TLS-terminating proxy (rustls, on 127.0.0.1) in front of the broker and
///   advertises the proxy's address in metadata, so every connection a client
///   makes is TLS. The proxy can also require client certificates
///   ([`TlsFiles::client_ca`]); Tansu itself has no mutual TLS.
/// * **Authentication**: `--authentication` makes Tansu require SASL; it
///   enables SCRAM-SHA-256 and SCRAM-SHA-512 (not PLAIN).
/// * **Users**: none can be created for an authenticating Tansu 0.6. It
///   refuses every request but ApiVersions and SASL before a login (so
///   `tansu user create` and AlterUserScramCredentials are refused), memory
///   storage is gone when the process stops, and its S3 storage (tried with
///   moto) did not write the users before a restart. An authenticating Tansu
///   is therefore good for failed logins only: every user is unknown to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerOptions {
    /// Serve TLS with these files (through the harness's proxy).
    pub tls: Option<TlsFiles>,
    /// Require SASL authentication (`tansu broker --authentication`).
    pub authentication: bool,
}

impl BrokerOptions {
    /// Serve TLS with `files`.
    pub fn tls(mut self, files: TlsFiles) -> BrokerOptions {
        self.tls = Some(files);
        self
    }

    /// Require SASL authentication.
    pub fn authentication(mut self, required: bool) -> BrokerOptions {
        self.authentication = required;
        self
    }

    pub(super) fn check(&self, kind: BrokerKind) -> Result<(), TestkitError> {
        let unsupported = |what: &str| {
            Err(TestkitError::Unsupported {
                kind,
                what: what.to_owned(),
            })
        };
        if kind == BrokerKind::Noida && *self != BrokerOptions::default() {
            return unsupported(
                "TLS or authentication: noida-db 0.2 has no option for Kafka TLS or SASL",
            );
        }
        Ok(())
    }
}
