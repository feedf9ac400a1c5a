//! Request and response framing: the 4-byte size prefix, the request and
//! response headers, and the body.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::messages::ApiVersionsResponse;
use super::messages::{RequestHeader, ResponseHeader};
use super::primitives::read_i16;
use super::{
    ApiKey, Decodable, DecodeError, Encodable, EncodeError, Message, Request, RequestKind,
    Response, ResponseKind,
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
    encode_frame(
        buf,
        &request_header(R::API_KEY, correlation_id, client_id, version),
        R::API_KEY.request_header_version(version),
        body,
        version,
    )
}

fn request_header(
    api: ApiKey,
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
) -> RequestHeader {
    RequestHeader {
        request_api_key: api.key(),
        request_api_version: version,
        correlation_id,
        client_id: client_id.map(str::to_owned),
        ..Default::default()
    }
}

/// Encodes a complete request frame as [`encode_request_frame`] does,
/// except that each of `payloads` the request carries in a nullable bytes
/// field (a Produce request's record batches, say) is referenced instead of
/// copied: the frame comes back as parts to write in order, the payloads
/// among them. A payload must be the very `Bytes` the request holds (same
/// address and length) and at least 512 bytes long (shorter ones cost more
/// as a part of their own than as a copy); anything else is copied as usual.
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use ferrokafka::protocol::frame::encode_request_frame_spliced;
/// use ferrokafka::protocol::encode_request_frame;
/// use ferrokafka::protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
/// use ferrokafka::protocol::messages::ProduceRequest;
///
/// let batch = Bytes::from(vec![7u8; 4096]);
/// let request = ProduceRequest::default().with_acks(1).with_timeout_ms(1000).with_topic_data(vec![
///     TopicProduceData::default().with_name("t".into()).with_partition_data(vec![
///         PartitionProduceData::default().with_index(0).with_records(Some(batch.clone())),
///     ]),
/// ]);
/// let parts = encode_request_frame_spliced(1, Some("app"), 9, &request, &[batch.clone()])?;
/// assert!(parts.iter().any(|p| p.as_ptr() == batch.as_ptr())); // not copied
/// let mut whole = BytesMut::new();
/// encode_request_frame(&mut whole, 1, Some("app"), 9, &request)?;
/// assert_eq!(parts.concat(), whole.to_vec()); // the same bytes on the wire
/// # Ok::<(), ferrokafka::protocol::EncodeError>(())
/// ```
pub fn encode_request_frame_spliced<R: Request>(
    correlation_id: i32,
    client_id: Option<&str>,
    version: i16,
    body: &R,
    payloads: &[Bytes],
) -> Result<Vec<Bytes>, EncodeError> {
    let header = request_header(R::API_KEY, correlation_id, client_id, version);
    let header_version = R::API_KEY.request_header_version(version);
    encode_spliced((&header, header_version), body, version, payloads)
}

/// The non-generic body of [`encode_request_frame_spliced`].
fn encode_spliced(
    (header, header_version): (&RequestHeader, i16),
    body: &dyn Encodable,
    version: i16,
    payloads: &[Bytes],
) -> Result<Vec<Bytes>, EncodeError> {
    let payload_bytes: usize = payloads.iter().map(Bytes::len).sum();
    let encoded = header.encoded_len(header_version) + body.encoded_len(version);
    let mut buf = BytesMut::with_capacity(4 + encoded.saturating_sub(payload_bytes));
    let (result, points) = super::splice::with_payloads(payloads, || {
        write_frame(&mut buf, (header, header_version), body, version)
    });
    result?;
    // The size prefix counts the spliced payloads too.
    let spliced: usize = points.iter().map(|(_, p)| p.len()).sum();
    let size = buf.len() - 4 + spliced;
    let size = u32::try_from(size).map_err(|_| EncodeError::TooLarge(size))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    let mut rest = buf.freeze();
    let mut parts = Vec::with_capacity(2 * points.len() + 1);
    let mut taken = 0;
    for (offset, payload) in points {
        parts.push(rest.split_to(offset - taken));
        taken = offset;
        parts.push(payload);
    }
    parts.push(rest);
    parts.retain(|p| !p.is_empty());
    Ok(parts)
}

/// Appends a complete response frame (size prefix, header, body) to `buf`, as a
/// broker would: for fake brokers, proxies and tests.
///
/// ```
/// use bytes::BytesMut;
/// use ferrokafka::protocol::{decode_response_frame, encode_response_frame, ApiKey, ResponseKind};
/// use ferrokafka::protocol::messages::ApiVersionsResponse;
///
/// let mut buf = BytesMut::new();
/// encode_response_frame(&mut buf, 7, 3, &ApiVersionsResponse::default()).unwrap();
/// let frame = buf.split_off(4).freeze(); // without the size prefix
/// let (header, body) = decode_response_frame(frame, ApiKey::ApiVersions, 3).unwrap();
/// assert_eq!(header.correlation_id, 7);
/// assert!(matches!(body, ResponseKind::ApiVersions(_)));
/// ```
pub fn encode_response_frame<R: Response>(
    buf: &mut BytesMut,
    correlation_id: i32,
    version: i16,
    body: &R,
) -> Result<(), EncodeError> {
    if !R::VERSIONS.contains(version) {
        return Err(EncodeError::UnsupportedVersion {
            message: R::NAME,
            version,
        });
    }
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    encode_frame(
        buf,
        &header,
        R::API_KEY.response_header_version(version),
        body,
        version,
    )
}

/// Appends size prefix, header and body, reserving the frame's exact size once.
/// Takes `dyn` values so that it is compiled once, not once per message type
/// (one virtual call per frame).
fn encode_frame(
    buf: &mut BytesMut,
    header: &dyn Encodable,
    header_version: i16,
    body: &dyn Encodable,
    version: i16,
) -> Result<(), EncodeError> {
    buf.reserve(4 + header.encoded_len(header_version) + body.encoded_len(version));
    write_frame(buf, (header, header_version), body, version)
}

/// [`encode_frame`] into a buffer already sized for it.
fn write_frame(
    buf: &mut BytesMut,
    (header, header_version): (&dyn Encodable, i16),
    body: &dyn Encodable,
    version: i16,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_u32(0);
    let result = header
        .encode(buf, header_version)
        .and_then(|()| body.encode(buf, version));
    if let Err(e) = result {
        buf.truncate(start);
        return Err(e);
    }
    let size = buf.len() - start - 4;
    let size = match u32::try_from(size) {
        Ok(size) => size,
        Err(_) => {
            buf.truncate(start);
            return Err(EncodeError::TooLarge(size));
        }
    };
    buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Decodes a request frame (without its size prefix), as a broker would.
/// Bytes left after the body are an error.
// Inline: a broker's side, compiled only in a crate that uses it (see
// `messages`: request decoders are `#[inline]` for the same reason).
#[inline]
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
    let total = frame.len();
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))?;
    let body_start = total - frame.len();
    let body = RequestKind::decode(api, &mut frame, version).map_err(|e| e.in_frame(body_start))?;
    if frame.has_remaining() {
        return Err(DecodeError::TrailingBytes(frame.remaining()));
    }
    Ok((header, body))
}

/// Decodes a response frame (without its size prefix) for a request of API
/// `api` sent in `version`. Bytes left after the body are an error.
///
/// ApiVersions follows KIP-511 as Java's client does: a broker that does not
/// support the requested ApiVersions version answers UNSUPPORTED_VERSION in the
/// v0 layout, so a body that does not decode in `version` is decoded again as
/// v0 (its `api_keys` say which version to retry with).
pub fn decode_response_frame(
    mut frame: Bytes,
    api: ApiKey,
    version: i16,
) -> Result<(ResponseHeader, ResponseKind), DecodeError> {
    let total = frame.len();
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
    let body_start = total - frame.len();
    let decoded = decode_whole_body(api, frame.clone(), version);
    let body = match decoded {
        Err(e) if api == ApiKey::ApiVersions && version > 0 => {
            match ApiVersionsResponse::from_bytes(frame, 0) {
                Ok(v0) => ResponseKind::ApiVersions(v0),
                Err(_) => return Err(e.in_frame(body_start)),
            }
        }
        other => other.map_err(|e| e.in_frame(body_start))?,
    };
    Ok((header, body))
}

/// Decodes a response body that must fill `body` exactly.
fn decode_whole_body(
    api: ApiKey,
    mut body: Bytes,
    version: i16,
) -> Result<ResponseKind, DecodeError> {
    let decoded = ResponseKind::decode(api, &mut body, version)?;
    if body.has_remaining() {
        return Err(DecodeError::TrailingBytes(body.remaining()));
    }
    Ok(decoded)
}

/// Reads the correlation id at the front of a response frame without consuming it.
pub fn peek_correlation_id(frame: &Bytes) -> Result<i32, DecodeError> {
    let mut peek = frame.clone();
    super::primitives::read_i32(&mut peek)
}
