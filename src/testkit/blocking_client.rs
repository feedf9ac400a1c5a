//! A minimal blocking client for readiness probes and quick checks.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::TestkitError;
use crate::protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, ResponseHeader};
use crate::protocol::{encode_request_frame, ApiKey, Decodable, Message, Request};

/// A blocking, one-request-at-a-time Kafka connection over
/// [`std::net::TcpStream`], for readiness checks and quick probes in tests.
/// It is not the crate's client: no retries, no version negotiation.
#[derive(Debug)]
pub struct BlockingClient {
    stream: TcpStream,
    addr: String,
    next_correlation_id: i32,
}

/// The largest response frame [`BlockingClient`] accepts.
const MAX_FRAME: usize = 64 << 20;

impl BlockingClient {
    /// Connects to the first address of `bootstrap` (`host:port[,host:port...]`);
    /// `timeout` bounds the connect and each read and write.
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<BlockingClient, TestkitError> {
        let first = bootstrap.split(',').next().unwrap_or("").trim();
        let addr = first
            .to_socket_addrs()
            .map_err(|e| TestkitError::Request {
                addr: first.to_owned(),
                detail: format!("cannot resolve: {e}"),
            })?
            .next()
            .ok_or_else(|| TestkitError::Request {
                addr: first.to_owned(),
                detail: "resolves to no address".into(),
            })?;
        BlockingClient::connect_addr(addr, timeout)
    }

    /// Connects to `addr`; `timeout` bounds the connect and each read and write.
    pub fn connect_addr(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<BlockingClient, TestkitError> {
        let fail = |detail: String| TestkitError::Request {
            addr: addr.to_string(),
            detail,
        };
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .map_err(|e| fail(format!("connect: {e}")))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| fail(format!("socket options: {e}")))?;
        Ok(BlockingClient {
            stream,
            addr: addr.to_string(),
            next_correlation_id: 1,
        })
    }

    /// Sends `request` in `version` and reads its response.
    pub fn send<R: Request>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, TestkitError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let mut buf = BytesMut::new();
        encode_request_frame(
            &mut buf,
            correlation_id,
            Some("ferrokafka-testkit"),
            version,
            request,
        )
        .map_err(|e| self.fail(format!("encoding {} v{version}: {e}", R::NAME)))?;
        self.stream
            .write_all(&buf)
            .map_err(|e| self.fail(format!("writing {}: {e}", R::NAME)))?;
        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .map_err(|e| self.fail(format!("reading the {} response size: {e}", R::NAME)))?;
        let size = i32::from_be_bytes(size);
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s <= MAX_FRAME)
            .ok_or_else(|| self.fail(format!("bad response size {size}")))?;
        let mut frame = vec![0u8; size];
        self.stream
            .read_exact(&mut frame)
            .map_err(|e| self.fail(format!("reading the {} response: {e}", R::NAME)))?;
        let mut frame = Bytes::from(frame);
        let header_version = R::API_KEY.response_header_version(version);
        let header = ResponseHeader::decode(&mut frame, header_version)
            .map_err(|e| self.fail(format!("decoding the response header: {e}")))?;
        if header.correlation_id != correlation_id {
            return Err(self.fail(format!(
                "correlation id {} answers request {correlation_id}",
                header.correlation_id
            )));
        }
        R::Response::from_bytes(frame, version)
            .map_err(|e| self.fail(format!("decoding {} v{version}: {e}", R::NAME)))
    }

    /// Sends ApiVersions v3, falling back to v0 on a new connection when the
    /// broker does not take v3.
    pub fn api_versions(&mut self) -> Result<ApiVersionsResponse, TestkitError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name("ferrokafka-testkit".into())
            .with_client_software_version(env!("CARGO_PKG_VERSION").into());
        match self.send(3, &request) {
            Ok(r) if r.error_code == 0 => Ok(r),
            first => {
                let addr: SocketAddr = self
                    .addr
                    .parse()
                    .map_err(|_| self.fail("unparsable address".into()))?;
                let timeout = self
                    .stream
                    .read_timeout()
                    .ok()
                    .flatten()
                    .unwrap_or(Duration::from_secs(2));
                *self = BlockingClient::connect_addr(addr, timeout)?;
                match self.send(0, &ApiVersionsRequest::default()) {
                    Ok(r) => Ok(r),
                    Err(_) => first,
                }
            }
        }
    }

    /// The highest version of `api` both the broker (per `versions`) and this
    /// crate support, if any.
    pub fn common_version(versions: &ApiVersionsResponse, api: ApiKey) -> Option<i16> {
        let ours = api.stable_versions();
        versions
            .api_keys
            .iter()
            .find(|k| k.api_key == api.key())
            .map(|k| {
                ours.intersect(&crate::protocol::VersionRange::new(
                    k.min_version,
                    k.max_version,
                ))
            })
            .filter(|r| !r.is_empty())
            .map(|r| r.max)
    }

    fn fail(&self, detail: String) -> TestkitError {
        TestkitError::Request {
            addr: self.addr.clone(),
            detail,
        }
    }
}
