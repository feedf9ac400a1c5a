//! The TLS front: a rustls-terminating proxy for brokers that cannot serve TLS.

use std::fmt;
use std::io;
use std::net::TcpListener;
use std::path::Path;

use super::error::io_err;
use super::{TestkitError, TlsFiles};

/// A TLS-terminating proxy on 127.0.0.1 in front of a plaintext broker port:
/// its own thread runs a single-threaded tokio runtime; dropping the proxy
/// stops it and closes every connection.
pub(super) struct TlsProxy {
    pub(super) port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsProxy {
    pub(super) fn start(files: &TlsFiles, upstream: u16) -> Result<TlsProxy, TestkitError> {
        let config = proxy_tls_config(files)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).map_err(io_err("binding the TLS proxy"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("configuring the TLS proxy"))?;
        let port = listener
            .local_addr()
            .map_err(io_err("reading the TLS proxy's address"))?
            .port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(io_err("starting the TLS proxy's runtime"))?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("testkit-tls-proxy-{port}"))
            .spawn(move || runtime.block_on(run_proxy(listener, acceptor, upstream, stopped)))
            .map_err(io_err("spawning the TLS proxy"))?;
        Ok(TlsProxy {
            port,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn run_proxy(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: u16,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let acceptor = acceptor.clone();
                // Dropped with the runtime when the proxy stops.
                tokio::spawn(async move {
                    // A failed handshake closes the connection; the client
                    // reports why.
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut broker) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = broker.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut broker).await;
                });
            }
        }
    }
}

fn proxy_tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, TestkitError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    let bad = |what: &Path, e: &dyn fmt::Display| TestkitError::Io {
        context: format!("TLS proxy: reading {}", what.display()),
        source: io::Error::new(io::ErrorKind::InvalidData, e.to_string()),
    };
    let certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>, TestkitError> {
        CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(path, &e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(path, &e))
    };
    let chain = certs(&files.certificate_chain)?;
    let key = PrivateKeyDer::from_pem_file(&files.private_key)
        .map_err(|e| bad(&files.private_key, &e))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&files.certificate_chain, &e))?;
    let builder = match &files.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(ca)? {
                roots.add(cert).map_err(|e| bad(ca, &e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                std::sync::Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| bad(ca, &e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| bad(&files.certificate_chain, &e))
}
