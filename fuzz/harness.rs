//! What each fuzz target does with its input, shared by the cargo-fuzz targets
//! in `fuzz_targets/` and by the corpus replay in the crate's test suite
//! (`tests/fuzz_replay.rs`), so both exercise exactly the same code.
//!
//! Each function must return normally for any input: a panic is a bug.

use bytes::Bytes;
use ferrokafka::protocol::{
    decode_request_frame, decode_response_frame, ApiKey, Message, RequestKind, ResponseKind,
};

/// Picks an API and a valid version from the first two bytes, so that random
/// inputs spend their time inside real decoders rather than failing on the key.
fn api_and_version(data: &[u8]) -> Option<(ApiKey, i16, &[u8])> {
    let (&[key_byte, version_byte], rest) = data.split_first_chunk::<2>()?;
    let api = ApiKey::ALL[usize::from(key_byte) % ApiKey::ALL.len()];
    let versions = api.valid_versions();
    let span = (versions.max - versions.min + 1) as u8;
    let version = versions.min + i16::from(version_byte % span);
    Some((api, version, rest))
}

/// Input: API selector byte, version selector byte, then a response frame
/// (header and body, no size prefix). Decodes it, and if that succeeds,
/// re-encodes and decodes again, which must give the same value.
pub fn decode_response(data: &[u8]) {
    let Some((api, version, frame)) = api_and_version(data) else {
        return;
    };
    if let Ok((_header, body)) = decode_response_frame(Bytes::copy_from_slice(frame), api, version)
    {
        check_reencode_response(&body, api, version);
    }
    // The body alone, as the network layer decodes it after the header.
    let mut body = Bytes::copy_from_slice(frame);
    let _ = ResponseKind::decode(api, &mut body, version);
}

/// A decoded value, once re-encoded, must decode and re-encode to the same
/// bytes. (Bytes, not values, are compared: a float64 may hold NaN.)
fn check_reencode_response(body: &ResponseKind, api: ApiKey, version: i16) {
    let mut first = bytes::BytesMut::new();
    if body.encode(&mut first, version).is_ok() {
        let first = first.freeze();
        let again = ResponseKind::decode(api, &mut first.clone(), version)
            .expect("re-encoded response decodes");
        let mut second = bytes::BytesMut::new();
        again.encode(&mut second, version).expect("re-encodes");
        assert_eq!(
            first,
            second.freeze(),
            "{api:?} v{version}: re-encoding is not stable"
        );
    }
}

/// Input: API selector byte, version selector byte, then a request frame with
/// its header (the header's key and version are overwritten to the selected ones).
pub fn decode_request(data: &[u8]) {
    let Some((api, version, rest)) = api_and_version(data) else {
        return;
    };
    let mut frame = Vec::with_capacity(rest.len() + 4);
    frame.extend_from_slice(&api.key().to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(rest);
    if let Ok((header, body)) = decode_request_frame(Bytes::from(frame)) {
        assert_eq!(header.request_api_key, api.key());
        let mut first = bytes::BytesMut::new();
        if body.encode(&mut first, version).is_ok() {
            let first = first.freeze();
            let again = RequestKind::decode(api, &mut first.clone(), version)
                .expect("re-encoded request decodes");
            let mut second = bytes::BytesMut::new();
            again.encode(&mut second, version).expect("re-encodes");
            assert_eq!(
                first,
                second.freeze(),
                "{api:?} v{version}: re-encoding is not stable"
            );
        }
    }
    // Header messages on their own.
    for header_version in 0..=2 {
        let _ = ferrokafka::protocol::messages::RequestHeader::from_bytes(
            Bytes::copy_from_slice(rest),
            header_version,
        );
    }
}
