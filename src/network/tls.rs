//! TLS client setup with rustls (ring provider).
//!
//! Trust comes from the configured CA certificates, or from the system's trust
//! store when none are configured. The broker's certificate chain is always
//! verified; its host name is checked too unless the configuration turns that
//! off explicitly (`ssl.endpoint.identification.algorithm=`).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::TlsConnector;

use super::config::{ConfigError, PemSource, TlsConfig};
use super::error::{Error, Result};

fn tls_error(what: &str, reason: impl std::fmt::Display) -> Error {
    Error::Config(ConfigError::InvalidValue {
        key: what.to_owned(),
        value: String::new(),
        reason: reason.to_string(),
    })
}

fn read_certs(source: &PemSource, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs: std::result::Result<Vec<_>, _> = match source {
        PemSource::File(path) => CertificateDer::pem_file_iter(path)
            .map_err(|e| tls_error(what, format!("cannot read {}: {e}", path.display())))?
            .collect(),
        PemSource::Pem(text) => CertificateDer::pem_slice_iter(text.as_bytes()).collect(),
    };
    let certs = certs.map_err(|e| tls_error(what, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(what, "no certificate found in the PEM data"));
    }
    Ok(certs)
}

fn read_key(source: &PemSource) -> Result<PrivateKeyDer<'static>> {
    let what = "ssl.key.location";
    match source {
        PemSource::File(path) => PrivateKeyDer::from_pem_file(path),
        PemSource::Pem(text) => PrivateKeyDer::from_pem_slice(text.as_bytes()),
    }
    // The error never contains key material, only the PEM parser's reason.
    .map_err(|e| tls_error(what, format!("no usable private key: {e}")))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for `tls`.
///
/// ```
/// use ferrokafka::network::{tls, TlsConfig};
///
/// let config = tls::client_config(&TlsConfig::default()).unwrap();
/// assert!(config.alpn_protocols.is_empty());
/// ```
pub fn client_config(tls: &TlsConfig) -> Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    match &tls.ca {
        Some(source) => {
            for cert in read_certs(source, "ssl.ca.location")? {
                roots
                    .add(cert)
                    .map_err(|e| tls_error("ssl.ca.location", e))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!("no system CA certificates found; set ssl.ca.location");
            }
        }
    }
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls", e))?;
    let builder = if tls.verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| tls_error("ssl.ca.location", e))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipHostnameVerifier { inner }))
    };
    match (&tls.certificate, &tls.key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(
                read_certs(cert, "ssl.certificate.location")?,
                read_key(key)?,
            )
            .map_err(|e| tls_error("ssl.certificate.location", e)),
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A connector built from [`client_config`].
pub(crate) fn connector(tls: &TlsConfig) -> Result<TlsConnector> {
    Ok(TlsConnector::from(Arc::new(client_config(tls)?)))
}

/// The name to verify a broker's certificate against.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).map_err(|e| tls_error("broker host", e))
}

/// Verifies the chain and signatures but accepts a certificate issued for
/// another name. Only used when host name checking is explicitly disabled.
#[derive(Debug)]
struct SkipHostnameVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for SkipHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
