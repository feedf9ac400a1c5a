//! Request and response framing: the 4-byte size prefix, the request and
//! response headers, and the body.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::messages::{RequestHeader, ResponseHeader};
use super::primitives::read_i16;
use super::{
    ApiKey, Decodable, DecodeError, Encodable, EncodeError, Request, RequestKind, ResponseKind,
};

impl ApiKey {
    /// The request header version used with request `version` of this API:
    /// 2 for flexible versions, 1 otherwise (0 only for ControlledShutdown v0).
    pub fn request_header_version(self, version: i16) -> i16 {
        if self.flexible_versions().contains(version) {
            2
        } else if self == ApiKey::ControlledShutdown && version == 0 {
            0
        } else {
            1
        }
    }

    /// The response header version used with response `version` of this API:
    /// 1 for flexible versions, 0 otherwise, and always 0 for ApiVersions (so
    /// that a client can read the answer before it knows what the broker speaks).
    pub fn response_header_version(self, version: i16) -> i16 {
        if self != ApiKey::ApiVersions && self.response_flexible_versions().contains(version) {
            1
        } else {
            0
        }
    }
}

/// Appends a complete request frame (size prefix, header, body) to `buf`.
///
/// ```
/// use bytes::BytesMut;
/// use ferrokafka::protocol::{encode_request_frame, messages::ApiVersionsRequest};
///
/// let mut buf = BytesMut::new();
/// let request = ApiVersionsRequest::default()
///     .with_client_software_name("ferrokafka".into())
///     .with_client_software_version("0.1.0".into());
/// encode_request_frame(&mut buf, 7, Some("my-app"), 3, &request).unwrap();
/// let size = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
/// assert_eq!(size, buf.len() - 4);
/// ```
pub fn encode_request_frame<R: Request>(
    buf: &mut BytesMut,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &R,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_u32(0);
    let header = RequestHeader {
        request_api_key: R::API_KEY.key(),
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    };
    let result = header
        .encode(buf, R::API_KEY.request_header_version(version))
        .and_then(|()| body.encode(buf, version));
    if let Err(e) = result {
        buf.truncate(start);
        return Err(e);
    }
    let size = buf.len() - start - 4;
    let size = u32::try_from(size).map_err(|_| EncodeError::TooLarge(size))?;
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Decodes a request frame (without its size prefix), as a broker would.
/// Bytes left after the body are an error.
pub fn decode_request_frame(mut frame: Bytes) -> Result<(RequestHeader, RequestKind), DecodeError> {
    let mut peek = frame.clone();
    let key = read_i16(&mut peek)?;
    let version = read_i16(&mut peek)?;
    let api = ApiKey::from_key(key).ok_or(DecodeError::UnknownApiKey(key))?;
    if !api.valid_versions().contains(version) {
        return Err(DecodeError::UnsupportedVersion {
            message: api.name(),
            version,
        });
    }
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))?;
    let body = RequestKind::decode(api, &mut frame, version)?;
    if frame.has_remaining() {
        return Err(DecodeError::TrailingBytes(frame.remaining()));
    }
    Ok((header, body))
}

/// Decodes a response frame (without its size prefix) for a request of API
/// `api` sent in `version`. Bytes left after the body are an error.
pub fn decode_response_frame(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseKind), DecodeError> {
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
    let body = ResponseKind::decode(api, &mut frame, version)?;
    if frame.has_remaining() {
        return Err(DecodeError::TrailingBytes(frame.remaining()));
    }
    Ok((header, body))
}

/// Reads the correlation id at the front of a response frame without consuming it.
pub fn peek_correlation_id(frame: &Bytes) -> Result<i32, DecodeError> {
    let mut peek = frame.clone();
    super::primitives::read_i32(&mut peek)
}
