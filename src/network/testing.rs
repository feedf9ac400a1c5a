//! An in-process fake broker for tests, built on the generated protocol types.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::protocol::messages::api_versions_response::ApiVersion;
use crate::protocol::messages::{ApiVersionsResponse, RequestHeader, ResponseHeader};
use crate::protocol::{
    decode_request_frame, ApiKey, Encodable, RequestKind, ResponseKind, VersionRange,
};

use super::sasl::scram::{attributes, ScramHash};

/// What the fake broker does with one request.
pub(crate) enum Reply {
    /// Answer with `body` encoded in `version`, after `delay`.
    Send {
        body: ResponseKind,
        version: i16,
        delay: Duration,
    },
    /// Send these bytes verbatim (size prefix included).
    Raw(Bytes),
    /// Answer with what `body` resolves to (nothing if `None`), encoded in
    /// `version`, whenever it resolves; later requests are served meanwhile.
    Later {
        body: std::pin::Pin<Box<dyn std::future::Future<Output = Option<ResponseKind>> + Send>>,
        version: i16,
    },
    /// Hold the connection for `delay` (read nothing more, as a Kafka
    /// broker that processes one request per connection at a time), then
    /// answer with `body`.
    Blocking {
        body: ResponseKind,
        version: i16,
        delay: Duration,
    },
    /// Never answer.
    Silent,
    /// Stop reading from the client (a hung broker) but keep the socket open.
    Stall,
    /// Close the connection.
    Close,
}

impl Reply {
    pub(crate) fn now(body: ResponseKind, header: &RequestHeader) -> Reply {
        Reply::Send {
            body,
            version: header.request_api_version,
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn after(body: ResponseKind, header: &RequestHeader, delay: Duration) -> Reply {
        Reply::Send {
            body,
            version: header.request_api_version,
            delay,
        }
    }
}

pub(crate) type Handler = Arc<dyn Fn(&RequestHeader, RequestKind) -> Reply + Send + Sync>;

/// Metadata entries for fake brokers listening on 127.0.0.1, one per
/// `(node id, port)`.
pub(crate) fn local_brokers(
    ports: &[(i32, u16)],
) -> Vec<crate::protocol::messages::metadata_response::MetadataResponseBroker> {
    ports
        .iter()
        .map(|&(id, port)| {
            crate::protocol::messages::metadata_response::MetadataResponseBroker::default()
                .with_node_id(id)
                .with_host("127.0.0.1".into())
                .with_port(i32::from(port))
        })
        .collect()
}

/// Encodes a response frame with its size prefix.
pub(crate) fn response_frame(correlation_id: i32, body: &ResponseKind, version: i16) -> Bytes {
    let api = body.api_key();
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let size = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// Serves one connection until the client leaves or a handler says `Close`.
pub(crate) async fn serve<S>(stream: S, handler: Handler)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    loop {
        let mut size = [0u8; 4];
        if rd.read_exact(&mut size).await.is_err() {
            break;
        }
        let mut frame = BytesMut::zeroed(u32::from_be_bytes(size) as usize);
        if rd.read_exact(&mut frame).await.is_err() {
            break;
        }
        let (header, body) = decode_request_frame(frame.freeze()).expect("client sent a bad frame");
        match handler(&header, body) {
            Reply::Send {
                body,
                version,
                delay,
            } => {
                let frame = response_frame(header.correlation_id, &body, version);
                if delay.is_zero() {
                    let _ = tx.send(frame);
                } else {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = tx.send(frame);
                    });
                }
            }
            Reply::Raw(bytes) => {
                let _ = tx.send(bytes);
            }
            Reply::Later { body, version } => {
                let tx = tx.clone();
                let id = header.correlation_id;
                tokio::spawn(async move {
                    if let Some(body) = body.await {
                        let _ = tx.send(response_frame(id, &body, version));
                    }
                });
            }
            Reply::Blocking {
                body,
                version,
                delay,
            } => {
                tokio::time::sleep(delay).await;
                let _ = tx.send(response_frame(header.correlation_id, &body, version));
            }
            Reply::Silent => {}
            Reply::Stall => {
                std::future::pending::<()>().await;
            }
            Reply::Close => {
                writer.abort();
                return;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// An ApiVersions response advertising `range(api)` for each API.
pub(crate) fn api_versions(range: impl Fn(ApiKey) -> Option<VersionRange>) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ApiKey::ALL
            .iter()
            .filter_map(|&api| {
                range(api).map(|r| {
                    ApiVersion::default()
                        .with_api_key(api.key())
                        .with_min_version(r.min)
                        .with_max_version(r.max)
                })
            })
            .collect(),
    )
}

/// Answers ApiVersions advertising every valid version; hands everything
/// else to `rest`.
pub(crate) fn with_api_versions(
    rest: impl Fn(&RequestHeader, RequestKind) -> Reply + Send + Sync + 'static,
) -> Handler {
    Arc::new(move |header, body| match body {
        RequestKind::ApiVersions(_) => Reply::now(
            ResponseKind::ApiVersions(api_versions(|api| Some(api.valid_versions()))),
            header,
        ),
        other => rest(header, other),
    })
}

/// Starts a fake broker on 127.0.0.1 serving every accepted connection with
/// `handler`; returns its `host:port`.
pub(crate) async fn spawn_tcp(handler: Handler) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream, handler.clone()));
        }
    });
    addr
}

/// [`spawn_tcp`] that also counts accepted connections.
pub(crate) async fn spawn_counting_tcp(
    handler: Handler,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(serve(stream, handler.clone()));
        }
    });
    (addr, accepted)
}

/// The server side of SCRAM, checking the client's proof as a broker would.
pub(crate) struct ScramServer {
    hash: ScramHash,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    state: Option<(String, String, String)>,
}

impl ScramServer {
    pub(crate) fn new(hash: ScramHash, password: &str) -> Self {
        let salt = b"fake-broker-salt".to_vec();
        let iterations = 4096;
        let salted = hash.salted_password(password.as_bytes(), &salt, iterations);
        let (_, stored_key, server_key) = hash.keys(&salted);
        ScramServer {
            hash,
            salt,
            iterations,
            stored_key,
            server_key,
            state: None,
        }
    }

    /// Handles client-first; returns server-first.
    pub(crate) fn first(
        &mut self,
        client_first: &[u8],
        expected_user: &str,
    ) -> Result<String, String> {
        use base64::Engine;
        let text = std::str::from_utf8(client_first).map_err(|e| e.to_string())?;
        let bare = text.strip_prefix("n,,").ok_or("bad GS2 header")?;
        let attrs = attributes(bare)?;
        match attrs.as_slice() {
            [('n', user), ('r', nonce)] => {
                if *user != expected_user {
                    return Err(format!("unknown user {user}"));
                }
                let nonce = format!("{nonce}srv-nonce");
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    base64::engine::general_purpose::STANDARD.encode(&self.salt),
                    self.iterations
                );
                self.state = Some((bare.to_owned(), server_first.clone(), nonce));
                Ok(server_first)
            }
            _ => Err("bad client-first".into()),
        }
    }

    /// Handles client-final; returns server-final `v=...` or an error.
    pub(crate) fn last(&mut self, client_final: &[u8]) -> Result<String, String> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (bare, server_first, nonce) = self.state.take().ok_or("out of order")?;
        let text = std::str::from_utf8(client_final).map_err(|e| e.to_string())?;
        let (without_proof, proof) = text.rsplit_once(",p=").ok_or("no proof")?;
        if without_proof != format!("c=biws,r={nonce}") {
            return Err("bad channel binding or nonce".into());
        }
        let auth_message = format!("{bare},{server_first},{without_proof}");
        let proof = b64.decode(proof).map_err(|e| e.to_string())?;
        let signature = self.hash.mac(&self.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if self.hash.digest(&client_key) != self.stored_key {
            return Err("invalid proof".into());
        }
        let server_signature = self.hash.mac(&self.server_key, auth_message.as_bytes());
        Ok(format!("v={}", b64.encode(server_signature)))
    }
}
