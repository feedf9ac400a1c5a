//! SCRAM credentials: describing users' credentials and upserting or
//! deleting them.

use crate::network::RequestOptions;
use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use tracing::Instrument;

use super::{Admin, Error, Result};
use crate::network::sasl::scram::ScramHash;
use crate::protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use crate::protocol::messages::describe_user_scram_credentials_request::UserName;
use crate::protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use crate::protocol::ApiKey;

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// A mechanism this client does not know (code 0 or unknown).
    Unknown,
    /// SCRAM-SHA-256 (code 1).
    ScramSha256,
    /// SCRAM-SHA-512 (code 2).
    ScramSha512,
}

impl ScramMechanism {
    /// The protocol's code.
    pub const fn code(self) -> i8 {
        match self {
            ScramMechanism::Unknown => 0,
            ScramMechanism::ScramSha256 => 1,
            ScramMechanism::ScramSha512 => 2,
        }
    }

    /// The mechanism of a protocol code.
    pub const fn from_code(code: i8) -> ScramMechanism {
        match code {
            1 => ScramMechanism::ScramSha256,
            2 => ScramMechanism::ScramSha512,
            _ => ScramMechanism::Unknown,
        }
    }

    /// The SASL mechanism name, e.g. `SCRAM-SHA-256`.
    pub const fn name(self) -> &'static str {
        match self {
            ScramMechanism::Unknown => "UNKNOWN",
            ScramMechanism::ScramSha256 => "SCRAM-SHA-256",
            ScramMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    fn hash(self) -> Option<ScramHash> {
        match self {
            ScramMechanism::ScramSha256 => Some(ScramHash::Sha256),
            ScramMechanism::ScramSha512 => Some(ScramHash::Sha512),
            ScramMechanism::Unknown => None,
        }
    }

    /// `Hi(password, salt, iterations)` of RFC 5802 (PBKDF2 with this
    /// mechanism's HMAC), the salted password a broker stores. `None` for
    /// [`ScramMechanism::Unknown`].
    ///
    /// ```
    /// use ferrokafka::admin::ScramMechanism;
    /// let salted = ScramMechanism::ScramSha512.salted_password("secret", b"salt", 4096).unwrap();
    /// assert_eq!(salted.len(), 64);
    /// ```
    pub fn salted_password(self, password: &str, salt: &[u8], iterations: u32) -> Option<Vec<u8>> {
        Some(
            self.hash()?
                .salted_password(password.as_bytes(), salt, iterations),
        )
    }
}

/// One credential of a user: its mechanism and iteration count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScramCredentialInfo {
    /// The mechanism.
    pub mechanism: ScramMechanism,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

/// The credentials of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentialsDescription {
    /// The user.
    pub user: String,
    /// One entry per mechanism the user has a credential for.
    pub credentials: Vec<ScramCredentialInfo>,
}

/// A change to a user's SCRAM credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserScramCredentialAlteration {
    /// Creates or replaces the credential of `user` for `mechanism`.
    ///
    /// The password never leaves the client: the salted password is
    /// computed here with a fresh random salt (or `salt` if given).
    Upsertion {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
        /// The PBKDF2 iteration count (brokers require 4096 to 16384).
        iterations: i32,
        /// The password.
        password: String,
        /// The salt; `None` for 32 random bytes.
        salt: Option<Vec<u8>>,
    },
    /// Deletes the credential of `user` for `mechanism`.
    Deletion {
        /// The user.
        user: String,
        /// The mechanism.
        mechanism: ScramMechanism,
    },
}

impl UserScramCredentialAlteration {
    /// An upsertion with a random salt.
    pub fn upsert(
        user: impl Into<String>,
        mechanism: ScramMechanism,
        iterations: i32,
        password: impl Into<String>,
    ) -> Self {
        UserScramCredentialAlteration::Upsertion {
            user: user.into(),
            mechanism,
            iterations,
            password: password.into(),
            salt: None,
        }
    }

    /// A deletion.
    pub fn delete(user: impl Into<String>, mechanism: ScramMechanism) -> Self {
        UserScramCredentialAlteration::Deletion {
            user: user.into(),
            mechanism,
        }
    }

    /// The user concerned.
    pub fn user(&self) -> &str {
        match self {
            UserScramCredentialAlteration::Upsertion { user, .. }
            | UserScramCredentialAlteration::Deletion { user, .. } => user,
        }
    }
}

/// Options of the SCRAM calls.
#[derive(Debug, Clone, Default)]
pub struct ScramOptions {
    /// The call's time limit (default `default.api.timeout.ms`).
    pub timeout: Option<Duration>,
}

/// Builds an upsertion's wire form: the salt and the salted password.
fn upsertion(
    user: &str,
    mechanism: ScramMechanism,
    iterations: i32,
    password: &str,
    salt: Option<&[u8]>,
) -> Result<ScramCredentialUpsertion> {
    let salt = match salt {
        Some(s) => s.to_vec(),
        None => {
            let mut s = vec![0u8; 32];
            rand::rng().fill_bytes(&mut s);
            s
        }
    };
    let salted = match (u32::try_from(iterations), mechanism.hash()) {
        (Ok(n), Some(hash)) if n > 0 => hash.salted_password(password.as_bytes(), &salt, n),
        // Let the broker judge the request; it answers with a typed error
        // (UNSUPPORTED_SASL_MECHANISM or UNACCEPTABLE_CREDENTIAL).
        _ => Vec::new(),
    };
    Ok(ScramCredentialUpsertion::default()
        .with_name(user.to_owned())
        .with_mechanism(mechanism.code())
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt))
        .with_salted_password(Bytes::from(salted)))
}

impl Admin {
    /// The SCRAM credentials of `users`, or of every user with credentials
    /// when `None`. Each asked-for user gets its own result
    /// (`RESOURCE_NOT_FOUND` when it has none).
    pub async fn describe_user_scram_credentials(
        &self,
        users: Option<&[&str]>,
        options: ScramOptions,
    ) -> Result<BTreeMap<String, Result<UserScramCredentialsDescription>>> {
        let span = tracing::info_span!("describe_user_scram_credentials");
        async move {
            let timeout = self.timeout(options.timeout);
            let request =
                DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
                    u.iter()
                        .map(|name| UserName::default().with_name(name.to_string()))
                        .collect()
                }));
            let cluster = self.cluster();
            cluster
                .retry("DescribeUserScramCredentials", Some(timeout), || async {
                    let response = cluster
                        .send_to_any(&request, RequestOptions::default())
                        .await?;
                    Error::check(
                        ApiKey::DescribeUserScramCredentials,
                        response.error_code,
                        response.error_message.as_deref(),
                    )?;
                    Ok(response
                        .results
                        .into_iter()
                        .map(|r| {
                            let result = Error::check(
                                ApiKey::DescribeUserScramCredentials,
                                r.error_code,
                                r.error_message.as_deref(),
                            )
                            .map(|()| {
                                UserScramCredentialsDescription {
                                    user: r.user.clone(),
                                    credentials: r
                                        .credential_infos
                                        .iter()
                                        .map(|c| ScramCredentialInfo {
                                            mechanism: ScramMechanism::from_code(c.mechanism),
                                            iterations: c.iterations,
                                        })
                                        .collect(),
                                }
                            });
                            (r.user, result)
                        })
                        .collect())
                })
                .await
        }
        .instrument(span)
        .await
    }

    /// Upserts and deletes SCRAM credentials; each user gets its own result.
    pub async fn alter_user_scram_credentials(
        &self,
        alterations: &[UserScramCredentialAlteration],
        options: ScramOptions,
    ) -> Result<BTreeMap<String, Result<()>>> {
        let span = tracing::info_span!(
            "alter_user_scram_credentials",
            alterations = alterations.len()
        );
        async move {
            let timeout = self.timeout(options.timeout);
            let mut request = AlterUserScramCredentialsRequest::default();
            for alteration in alterations {
                match alteration {
                    UserScramCredentialAlteration::Upsertion {
                        user,
                        mechanism,
                        iterations,
                        password,
                        salt,
                    } => request.upsertions.push(upsertion(
                        user,
                        *mechanism,
                        *iterations,
                        password,
                        salt.as_deref(),
                    )?),
                    UserScramCredentialAlteration::Deletion { user, mechanism } => {
                        request.deletions.push(
                            ScramCredentialDeletion::default()
                                .with_name(user.clone())
                                .with_mechanism(mechanism.code()),
                        )
                    }
                }
            }
            let cluster = self.cluster();
            let response = cluster
                .retry("AlterUserScramCredentials", Some(timeout), || {
                    cluster.send_to_controller(&request, RequestOptions::default())
                })
                .await?;
            Ok(response
                .results
                .into_iter()
                .map(|r| {
                    let result = Error::check(
                        ApiKey::AlterUserScramCredentials,
                        r.error_code,
                        r.error_message.as_deref(),
                    );
                    (r.user, result)
                })
                .collect())
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn salted_password_matches_pbkdf2_known_answers() {
        // PBKDF2-HMAC-SHA256, P="password", S="salt", c=4096, dkLen=32
        // (RFC 7914-era test vectors for SHA-256).
        let s = ScramMechanism::ScramSha256
            .salted_password("password", b"salt", 4096)
            .unwrap();
        assert_eq!(
            hex(&s),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        // PBKDF2-HMAC-SHA512, P="password", S="salt", c=1, dkLen=64.
        let s = ScramMechanism::ScramSha512
            .salted_password("password", b"salt", 1)
            .unwrap();
        assert_eq!(
            hex(&s),
            "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252\
             c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce"
        );
        assert!(ScramMechanism::Unknown
            .salted_password("p", b"s", 1)
            .is_none());
    }

    #[test]
    fn upsertion_salts_randomly_and_hashes_client_side() {
        let a = upsertion("alice", ScramMechanism::ScramSha256, 4096, "pw", None).unwrap();
        let b = upsertion("alice", ScramMechanism::ScramSha256, 4096, "pw", None).unwrap();
        assert_eq!(a.salt.len(), 32);
        assert_ne!(a.salt, b.salt, "salts are random");
        assert_ne!(a.salted_password, b.salted_password);
        assert_eq!(a.mechanism, 1);
        let fixed = upsertion(
            "alice",
            ScramMechanism::ScramSha256,
            4096,
            "password",
            Some(b"salt"),
        )
        .unwrap();
        assert_eq!(
            hex(&fixed.salted_password),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        assert_eq!(&fixed.salt[..], b"salt");
    }

    #[test]
    fn mechanism_codes() {
        assert_eq!(ScramMechanism::from_code(1), ScramMechanism::ScramSha256);
        assert_eq!(ScramMechanism::from_code(2), ScramMechanism::ScramSha512);
        assert_eq!(ScramMechanism::from_code(7), ScramMechanism::Unknown);
        assert_eq!(ScramMechanism::ScramSha512.name(), "SCRAM-SHA-512");
    }
}
