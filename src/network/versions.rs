//! API version negotiation (ApiVersions, KIP-35 and KIP-511).
//!
//! On connect the client sends ApiVersions in the highest version it knows.
//! A broker that does not know that version answers with
//! `UNSUPPORTED_VERSION` in the v0 body format, listing at least its own
//! ApiVersions range; the client then retries with the highest version both
//! sides know. Afterwards each API is sent in the highest version that is both
//! in [`ApiKey::stable_versions`] and in the broker's advertised range.

use std::collections::HashMap;

use bytes::Bytes;

use crate::protocol::messages::{ApiVersionsResponse, ResponseHeader};
use crate::protocol::{ApiKey, Decodable, ErrorCode, Message, VersionRange};

use super::error::{Error, Result};

/// The API versions a broker advertised, and the versions chosen for this
/// client.
///
/// ```
/// use ferrokafka::network::ApiVersionsTable;
/// use ferrokafka::protocol::{ApiKey, VersionRange};
///
/// let table = ApiVersionsTable::from_ranges([(ApiKey::Metadata, VersionRange::new(0, 9))]);
/// assert_eq!(table.negotiate(ApiKey::Metadata).unwrap(), 9);
/// assert!(table.negotiate(ApiKey::Produce).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionsTable {
    broker: HashMap<ApiKey, VersionRange>,
}

impl ApiVersionsTable {
    /// A table from the broker's advertised ranges.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (ApiKey, VersionRange)>) -> Self {
        ApiVersionsTable {
            broker: ranges.into_iter().collect(),
        }
    }

    /// A table from an ApiVersions response; API keys this library does not
    /// know are skipped.
    pub fn from_response(response: &ApiVersionsResponse) -> Self {
        Self::from_ranges(response.api_keys.iter().filter_map(|k| {
            ApiKey::from_key(k.api_key)
                .map(|api| (api, VersionRange::new(k.min_version, k.max_version)))
        }))
    }

    /// The range the broker advertised for `api`, if any.
    pub fn broker_range(&self, api: ApiKey) -> Option<VersionRange> {
        self.broker.get(&api).copied()
    }

    /// The highest version of `api` that this client sends and the broker
    /// accepts, or [`Error::UnsupportedVersion`].
    pub fn negotiate(&self, api: ApiKey) -> Result<i16> {
        self.negotiate_within(api, api.stable_versions())
    }

    /// Like [`ApiVersionsTable::negotiate`], limited to the versions in `allowed`
    /// (for callers that need, say, a version with a particular field).
    pub fn negotiate_within(&self, api: ApiKey, allowed: VersionRange) -> Result<i16> {
        let client = api.stable_versions().intersect(&allowed);
        let broker = self.broker_range(api);
        match broker.map(|b| b.intersect(&client)) {
            Some(common) if !common.is_empty() => Ok(common.max),
            _ => Err(Error::UnsupportedVersion {
                api,
                client,
                broker,
            }),
        }
    }
}

/// What to do with an ApiVersions response.
#[derive(Debug)]
pub(crate) enum ApiVersionsOutcome {
    /// The broker accepted the version: here are its ranges.
    Done(ApiVersionsResponse),
    /// The broker rejected the version; retry with this one.
    Retry(i16),
}

/// Interprets an ApiVersions response frame (after the size prefix) to a
/// request sent in `sent_version`.
///
/// The header is always v0. An `UNSUPPORTED_VERSION` answer uses the v0 body
/// layout whatever version was asked, so the error code is read first and the
/// body decoded in v0 in that case.
pub(crate) fn interpret_api_versions(
    mut frame: Bytes,
    sent_version: i16,
    broker: &str,
) -> Result<ApiVersionsOutcome> {
    let decode_err = |version: i16, source| Error::Decode {
        api: ApiKey::ApiVersions,
        version,
        broker: broker.to_owned(),
        source,
    };
    ResponseHeader::decode(&mut frame, 0).map_err(|e| decode_err(0, e))?;
    let code = frame
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| {
            decode_err(
                sent_version,
                crate::protocol::DecodeError::UnexpectedEof {
                    needed: 2,
                    remaining: frame.len(),
                },
            )
        })?;
    if ErrorCode::from_code(code) == ErrorCode::UnsupportedVersion {
        // KIP-511: the body is v0; its ApiVersions entry says what to use.
        let v0 = ApiVersionsResponse::from_bytes(frame, 0).map_err(|e| decode_err(0, e))?;
        let ours = ApiKey::ApiVersions.stable_versions();
        let theirs = v0
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::ApiVersions.key())
            .map(|k| VersionRange::new(k.min_version, k.max_version));
        let next = match theirs.map(|t| t.intersect(&ours)) {
            Some(common) if !common.is_empty() => common.max,
            // Every broker understands v0.
            _ => 0,
        };
        if next >= sent_version {
            return Err(Error::Protocol {
                broker: broker.to_owned(),
                reason: format!(
                    "ApiVersions v{sent_version} rejected as unsupported, yet the broker advertises v{next}"
                ),
            });
        }
        return Ok(ApiVersionsOutcome::Retry(next));
    }
    let response = ApiVersionsResponse::from_bytes(frame, sent_version)
        .map_err(|e| decode_err(sent_version, e))?;
    Error::check(ApiKey::ApiVersions, response.error_code, None)?;
    Ok(ApiVersionsOutcome::Done(response))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::messages::api_versions_response::ApiVersion;
    use crate::protocol::Encodable;
    use bytes::BytesMut;

    fn frame(correlation: i32, body: &ApiVersionsResponse, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation)
            .encode(&mut buf, 0)
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.freeze()
    }

    fn entry(api: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(api.key())
            .with_min_version(min)
            .with_max_version(max)
    }

    #[test]
    fn negotiation_picks_the_highest_common_stable_version() {
        let table = ApiVersionsTable::from_ranges([
            (ApiKey::Metadata, VersionRange::new(0, i16::MAX)),
            (ApiKey::Fetch, VersionRange::new(4, 4)),
        ]);
        assert_eq!(
            table.negotiate(ApiKey::Metadata).unwrap(),
            ApiKey::Metadata.stable_versions().max
        );
        assert_eq!(table.negotiate(ApiKey::Fetch).unwrap(), 4);
        assert_eq!(
            table
                .negotiate_within(ApiKey::Metadata, VersionRange::new(0, 3))
                .unwrap(),
            3
        );
        let table = ApiVersionsTable::from_ranges([(ApiKey::Fetch, VersionRange::new(500, 600))]);
        match table.negotiate(ApiKey::Fetch) {
            Err(Error::UnsupportedVersion { api, broker, .. }) => {
                assert_eq!(api, ApiKey::Fetch);
                assert_eq!(broker, Some(VersionRange::new(500, 600)));
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        assert!(!table.negotiate(ApiKey::Produce).unwrap_err().is_retriable());
    }

    #[test]
    fn unsupported_version_answer_is_read_as_v0() {
        let body = ApiVersionsResponse::default()
            .with_error_code(ErrorCode::UnsupportedVersion.code())
            .with_api_keys(vec![entry(ApiKey::ApiVersions, 0, 2)]);
        let outcome = interpret_api_versions(frame(1, &body, 0), 3, "b").unwrap();
        assert!(
            matches!(outcome, ApiVersionsOutcome::Retry(2)),
            "{outcome:?}"
        );

        // A broker that lists nothing useful: fall back to v0.
        let body =
            ApiVersionsResponse::default().with_error_code(ErrorCode::UnsupportedVersion.code());
        let outcome = interpret_api_versions(frame(1, &body, 0), 3, "b").unwrap();
        assert!(matches!(outcome, ApiVersionsOutcome::Retry(0)));

        // Rejecting v0 is a protocol violation, not a loop.
        assert!(matches!(
            interpret_api_versions(frame(1, &body, 0), 0, "b"),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn accepted_answer_is_decoded_in_the_sent_version() {
        let body = ApiVersionsResponse::default()
            .with_api_keys(vec![entry(ApiKey::Metadata, 0, 12)])
            .with_throttle_time_ms(5);
        match interpret_api_versions(frame(9, &body, 3), 3, "b").unwrap() {
            ApiVersionsOutcome::Done(r) => {
                assert_eq!(r, body);
                let table = ApiVersionsTable::from_response(&r);
                assert_eq!(
                    table.broker_range(ApiKey::Metadata),
                    Some(VersionRange::new(0, 12))
                );
            }
            other => panic!("{other:?}"),
        }
        let body = ApiVersionsResponse::default()
            .with_error_code(ErrorCode::ClusterAuthorizationFailed.code());
        assert!(matches!(
            interpret_api_versions(frame(9, &body, 3), 3, "b"),
            Err(Error::Broker {
                code: ErrorCode::ClusterAuthorizationFailed,
                ..
            })
        ));
    }
}
