//! SASL authentication (KIP-43, KIP-152): SaslHandshake v1 then
//! SaslAuthenticate round trips, with the PLAIN and SCRAM-SHA-256/512
//! mechanisms.
//!
//! Re-authentication (KIP-368) is not performed: a broker that enforces
//! `connections.max.reauth.ms` closes the connection when the session
//! expires, and the pool reconnects.

pub mod scram;

use super::options::RequestOptions;
use bytes::Bytes;

use crate::protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use crate::protocol::{ApiKey, ErrorCode, VersionRange};

use super::config::{SaslConfig, SaslMechanism};
use super::connection::BrokerConnection;
use super::error::{Error, Result};
use scram::{ScramClient, ScramHash};

fn failure(mechanism: SaslMechanism, reason: impl Into<String>) -> Error {
    Error::SaslAuthentication {
        mechanism: mechanism.name().to_owned(),
        reason: reason.into(),
    }
}

/// The PLAIN initial response (RFC 4616): `authzid NUL authcid NUL password`,
/// with an empty authorization id.
///
/// ```
/// use ferrokafka::network::sasl::plain_message;
/// assert_eq!(plain_message("alice", "pw"), b"\0alice\0pw");
/// ```
pub fn plain_message(username: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(username.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

/// Authenticates `conn` with `sasl`. Called by the connection right after
/// version negotiation.
pub(crate) async fn authenticate(conn: &BrokerConnection, sasl: &SaslConfig) -> Result<()> {
    let mechanism = sasl.mechanism;
    let table = conn.api_versions().cloned().unwrap_or_default();
    // v0 of SaslHandshake means raw (unframed) tokens follow; only v1+ is
    // supported, where the tokens travel in SaslAuthenticate requests.
    let handshake_version =
        table.negotiate_within(ApiKey::SaslHandshake, VersionRange::new(1, i16::MAX))?;
    let auth_version = table.negotiate(ApiKey::SaslAuthenticate)?;
    let handshake = conn
        .send_with(
            &SaslHandshakeRequest::default().with_mechanism(mechanism.name().to_owned()),
            RequestOptions::default().with_version(handshake_version),
        )
        .await?;
    match ErrorCode::from_code(handshake.error_code) {
        ErrorCode::None => {}
        ErrorCode::UnsupportedSaslMechanism => {
            return Err(failure(
                mechanism,
                format!(
                    "the broker does not enable it; enabled mechanisms: {}",
                    handshake.mechanisms.join(", ")
                ),
            ))
        }
        code => {
            return Err(failure(
                mechanism,
                format!("SaslHandshake failed with {}", code.name()),
            ))
        }
    }

    let step = |token: Vec<u8>| async move {
        let response = conn
            .send_with(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
                RequestOptions::default().with_version(auth_version),
            )
            .await?;
        match ErrorCode::from_code(response.error_code) {
            ErrorCode::None => Ok(response.auth_bytes),
            code => Err(failure(
                mechanism,
                format!(
                    "{}{}",
                    code.name(),
                    response
                        .error_message
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            )),
        }
    };

    match mechanism {
        SaslMechanism::Plain => {
            step(plain_message(&sasl.username, &sasl.password)).await?;
        }
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            let hash = if mechanism == SaslMechanism::ScramSha256 {
                ScramHash::Sha256
            } else {
                ScramHash::Sha512
            };
            let mut client = ScramClient::new(hash, &sasl.username, &sasl.password)
                .map_err(|reason| failure(mechanism, reason))?;
            let server_first = step(client.client_first().into_bytes()).await?;
            let client_final = client
                .handle_server_first(&server_first)
                .map_err(|reason| failure(mechanism, reason))?;
            let server_final = step(client_final.into_bytes()).await?;
            client
                .verify_server_final(&server_final)
                .map_err(|reason| failure(mechanism, reason))?;
        }
    }
    tracing::debug!(mechanism = mechanism.name(), broker = %conn.broker(), user = %sasl.username, "SASL authentication succeeded");
    Ok(())
}
