//! The client side of SCRAM (RFC 5802) with SHA-256 (RFC 7677) and SHA-512.
//!
//! Kafka brokers store SCRAM credentials from the raw UTF-8 password (Kafka's
//! own tools apply no SASLprep), so this client does the same for non-ASCII
//! text; for ASCII, SASLprep is the identity except that control characters
//! are prohibited, which is enforced.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256, Sha512};

/// The smallest iteration count accepted from a server (RFC 7677 asks for
/// at least 4096, and Kafka enforces it).
pub const MIN_ITERATIONS: u32 = 4096;
/// The largest iteration count accepted, so a hostile server cannot make
/// the client spin.
pub const MAX_ITERATIONS: u32 = 1 << 20;

/// The hash function of a SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    /// SCRAM-SHA-256.
    Sha256,
    /// SCRAM-SHA-512.
    Sha512,
}

impl ScramHash {
    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut mac =
                    Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi()` of RFC 5802: PBKDF2 with this hash's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramHash::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }

    /// `ClientKey`, `StoredKey` and `ServerKey` from a salted password.
    pub fn keys(self, salted_password: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let client_key = self.hmac(salted_password, b"Client Key");
        let stored_key = self.hash(&client_key);
        let server_key = self.hmac(salted_password, b"Server Key");
        (client_key, stored_key, server_key)
    }

    /// `HMAC(key, data)`.
    pub fn mac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        self.hmac(key, data)
    }

    /// `H(data)`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        self.hash(data)
    }
}

/// SASLprep for the cases this client handles: ASCII control characters are
/// prohibited (RFC 4013 table C.2.1), everything else is kept as is.
pub fn saslprep(value: &str) -> Result<&str, String> {
    if value.chars().any(|c| c.is_ascii_control()) {
        return Err("user names and passwords may not contain control characters".into());
    }
    Ok(value)
}

/// Escapes a user name for the `n=` attribute: `=` becomes `=3D`, `,` becomes `=2C`.
///
/// ```
/// use ferrokafka::network::sasl::scram::escape_username;
/// assert_eq!(escape_username("a=b,c"), "a=3Db=2Cc");
/// ```
pub fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Splits `a=x,b=y` into attributes; values may contain `=`.
pub fn attributes(message: &str) -> Result<Vec<(char, &str)>, String> {
    message
        .split(',')
        .map(|part| {
            let mut chars = part.chars();
            match (chars.next(), chars.next()) {
                (Some(name), Some('=')) if name.is_ascii_alphabetic() => Ok((name, &part[2..])),
                _ => Err(format!("malformed SCRAM attribute {part:?}")),
            }
        })
        .collect()
}

enum Step {
    Initial,
    ClientFirstSent,
    ClientFinalSent { server_signature: Vec<u8> },
    Done,
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Initial => "Initial",
            Step::ClientFirstSent => "ClientFirstSent",
            Step::ClientFinalSent { .. } => "ClientFinalSent",
            Step::Done => "Done",
        }
    }
}

/// A server-first message that passed every check.
struct ServerFirst {
    text: String,
    nonce: String,
    salt: Vec<u8>,
    iterations: u32,
}

/// The client side of one SCRAM exchange.
///
/// ```
/// use ferrokafka::network::sasl::scram::{ScramClient, ScramHash};
///
/// let mut client = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO").unwrap();
/// assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
/// let client_final = client
///     .handle_server_first(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
///     .unwrap();
/// assert!(client_final.ends_with(",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
/// client.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
/// ```
///
/// `Debug` shows the mechanism, the user and the step, never the password
/// or anything derived from it:
///
/// ```
/// use ferrokafka::network::sasl::scram::{ScramClient, ScramHash};
/// let client = ScramClient::new(ScramHash::Sha512, "alice", "s3cret").unwrap();
/// assert!(!format!("{client:?}").contains("s3cret"));
/// ```
pub struct ScramClient {
    hash: ScramHash,
    username: String,
    password: String,
    nonce: String,
    step: Step,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password, and the server signature derived from it, stay out.
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("step", &self.step.name())
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// A client with a fresh random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Result<Self, String> {
        let mut raw = [0u8; 24];
        rand::rng().fill(&mut raw[..]);
        Self::with_nonce(hash, username, password, &BASE64.encode(raw))
    }

    /// A client with a given nonce (for tests against published vectors).
    pub fn with_nonce(
        hash: ScramHash,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> Result<Self, String> {
        if nonce.is_empty() || nonce.contains(',') || !nonce.chars().all(|c| c.is_ascii_graphic()) {
            return Err("the client nonce must be printable ASCII without ','".into());
        }
        Ok(ScramClient {
            hash,
            username: saslprep(username)?.to_owned(),
            password: saslprep(password)?.to_owned(),
            nonce: nonce.to_owned(),
            step: Step::Initial,
        })
    }

    fn client_first_bare(&self) -> String {
        format!("n={},r={}", escape_username(&self.username), self.nonce)
    }

    /// The client-first message (no channel binding, no authorization id).
    pub fn client_first(&mut self) -> String {
        self.step = Step::ClientFirstSent;
        format!("n,,{}", self.client_first_bare())
    }

    /// Checks the server-first message and returns the client-final message
    /// carrying the proof.
    ///
    /// The key derivation (PBKDF2, up to [`MAX_ITERATIONS`] rounds) runs on
    /// the calling thread; async code uses
    /// [`ScramClient::handle_server_first_blocking_pool`] instead.
    pub fn handle_server_first(&mut self, server_first: &[u8]) -> Result<String, String> {
        let checked = self.check_server_first(server_first)?;
        let salted =
            self.hash
                .salted_password(self.password.as_bytes(), &checked.salt, checked.iterations);
        Ok(self.client_final(&checked, &salted))
    }

    /// Like [`ScramClient::handle_server_first`], but derives the key on
    /// tokio's blocking pool (`spawn_blocking`), so a SCRAM login does not
    /// stall the other tasks of the runtime thread for the PBKDF2 rounds.
    pub async fn handle_server_first_blocking_pool(
        &mut self,
        server_first: &[u8],
    ) -> Result<String, String> {
        let checked = self.check_server_first(server_first)?;
        let (hash, password, salt, iterations) = (
            self.hash,
            self.password.clone(),
            checked.salt.clone(),
            checked.iterations,
        );
        let salted = tokio::task::spawn_blocking(move || {
            hash.salted_password(password.as_bytes(), &salt, iterations)
        })
        .await
        .map_err(|e| format!("the key derivation task failed: {e}"))?;
        Ok(self.client_final(&checked, &salted))
    }

    /// Validates the server-first message (order, nonce, salt, iteration
    /// bounds) without any key derivation.
    fn check_server_first(&self, server_first: &[u8]) -> Result<ServerFirst, String> {
        if !matches!(self.step, Step::ClientFirstSent) {
            return Err("server-first message out of order".into());
        }
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| "server-first message is not UTF-8".to_owned())?;
        let attrs = attributes(server_first)?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for (i, (name, value)) in attrs.iter().enumerate() {
            match (i, name) {
                (0, 'm') => return Err("server requires an unsupported SCRAM extension".into()),
                (0, 'e') => return Err(format!("server error: {value}")),
                (0, 'r') => nonce = Some(*value),
                (1, 's') => {
                    salt = Some(
                        BASE64
                            .decode(value)
                            .map_err(|_| "salt is not valid base64".to_owned())?,
                    )
                }
                (2, 'i') => {
                    iterations = Some(
                        value
                            .parse::<u32>()
                            .map_err(|_| format!("iteration count {value:?} is not a number"))?,
                    )
                }
                // Extensions after the mandatory attributes are ignored.
                (i, _) if i >= 3 => {}
                _ => {
                    return Err(format!(
                        "unexpected attribute {name} in server-first message"
                    ))
                }
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err("server-first message lacks r=, s= or i=".into());
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "iteration count {iterations} is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}"
            ));
        }
        Ok(ServerFirst {
            text: server_first.to_owned(),
            nonce: nonce.to_owned(),
            salt,
            iterations,
        })
    }

    /// The client-final message for a checked server-first message and the
    /// salted password derived from it.
    fn client_final(&mut self, checked: &ServerFirst, salted: &[u8]) -> String {
        let (client_key, stored_key, server_key) = self.hash.keys(salted);
        // "biws" is base64 of the GS2 header "n,,".
        let without_proof = format!("c=biws,r={}", checked.nonce);
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare(),
            checked.text
        );
        let client_signature = self.hash.mac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = self.hash.mac(&server_key, auth_message.as_bytes());
        self.step = Step::ClientFinalSent { server_signature };
        format!("{without_proof},p={}", BASE64.encode(proof))
    }

    /// Checks the server-final message: the server must prove it knows the
    /// password too.
    pub fn verify_server_final(&mut self, server_final: &[u8]) -> Result<(), String> {
        let Step::ClientFinalSent { server_signature } = &self.step else {
            return Err("server-final message out of order".into());
        };
        let text = std::str::from_utf8(server_final)
            .map_err(|_| "server-final message is not UTF-8".to_owned())?;
        let attrs = attributes(text)?;
        match attrs.first() {
            Some(('e', reason)) => Err(format!("server error: {reason}")),
            Some(('v', value)) => {
                let got = BASE64
                    .decode(value)
                    .map_err(|_| "server signature is not valid base64".to_owned())?;
                if got != *server_signature {
                    return Err(
                        "server signature does not match: the server does not know the credentials"
                            .into(),
                    );
                }
                self.step = Step::Done;
                Ok(())
            }
            _ => Err("server-final message has neither v= nor e=".into()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    #[test]
    /// RFC 7677 section 3. (The proof is `...UhN+Ute9...`; a copy with `4` in
    /// place of `+` circulates but is not the RFC text.)
    fn rfc7677_sha256_vector() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
                .unwrap();
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let client_final = c.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    /// Runs `work` on a current-thread runtime next to a task that counts
    /// its own polls until `work` is done, and returns that count with
    /// `work`'s output. Work that blocks the runtime thread from its first
    /// poll to its end gives the other task no poll (0); work awaiting the
    /// blocking pool gives it at least one.
    pub(crate) async fn polls_of_a_neighbour_task<F: std::future::Future>(
        work: F,
    ) -> (F::Output, usize) {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let done = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicUsize::new(0));
        let neighbour = tokio::spawn({
            let (done, polls) = (done.clone(), polls.clone());
            async move {
                while !done.load(Ordering::SeqCst) {
                    polls.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });
        let output = work.await;
        done.store(true, Ordering::SeqCst);
        neighbour.await.unwrap();
        (output, polls.load(Ordering::SeqCst))
    }

    /// The key derivation leaves the runtime thread: on a current-thread
    /// runtime, another task keeps running while the proof is computed.
    #[tokio::test(flavor = "current_thread")]
    async fn key_derivation_runs_on_the_blocking_pool() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
                .unwrap();
        c.client_first();
        let (client_final, polls) =
            polls_of_a_neighbour_task(c.handle_server_first_blocking_pool(SERVER_FIRST.as_bytes()))
                .await;
        let client_final = client_final.unwrap();
        assert!(
            polls > 0,
            "the runtime thread was blocked for the whole key derivation"
        );
        assert!(client_final.ends_with(",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="));
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        // Checks still come first, without spawning anything.
        let mut fresh = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "abc").unwrap();
        fresh.client_first();
        assert!(fresh
            .handle_server_first_blocking_pool(b"r=xyz,s=AAAA,i=4096")
            .await
            .is_err());
    }

    #[test]
    fn wrong_server_signature_and_server_errors_are_rejected() {
        let mut c =
            ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
                .unwrap();
        c.client_first();
        c.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
        assert!(c
            .verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
        assert!(c
            .verify_server_final(b"e=invalid-proof")
            .unwrap_err()
            .contains("invalid-proof"));
    }

    #[test]
    fn hostile_server_first_messages_are_rejected() {
        let fresh = || {
            let mut c = ScramClient::with_nonce(ScramHash::Sha512, "u", "p", "abc").unwrap();
            c.client_first();
            c
        };
        for bad in [
            "r=xyz123,s=AAAA,i=4096",     // nonce not ours
            "r=abc,s=AAAA,i=4096",        // nonce not extended
            "r=abcd,s=AAAA,i=10",         // too few iterations
            "r=abcd,s=AAAA,i=99999999",   // too many iterations
            "r=abcd,s=!!!,i=4096",        // bad salt
            "m=ext,r=abcd,s=AAAA,i=4096", // mandatory extension
            "r=abcd,i=4096",              // missing salt
            "garbage",
        ] {
            assert!(
                fresh().handle_server_first(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
        assert!(fresh()
            .handle_server_first(b"r=abcd,s=AAAA,i=4096,x=future")
            .is_ok());
        // Out of order use.
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "abc").unwrap();
        assert!(c.handle_server_first(b"r=abcd,s=AAAA,i=4096").is_err());
        assert!(c.verify_server_final(b"v=AAAA").is_err());
    }

    #[test]
    fn usernames_are_escaped_and_controls_rejected() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "a,b=c", "p", "n").unwrap();
        assert_eq!(c.client_first(), "n,,n=a=2Cb=3Dc,r=n");
        assert!(ScramClient::new(ScramHash::Sha256, "bad\u{7}", "p").is_err());
        assert!(ScramClient::new(ScramHash::Sha256, "u", "p\n").is_err());
        assert!(ScramClient::with_nonce(ScramHash::Sha256, "u", "p", "a,b").is_err());
        // Random nonces differ.
        let mut a = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        let mut b = ScramClient::new(ScramHash::Sha256, "u", "p").unwrap();
        assert_ne!(a.client_first(), b.client_first());
    }
}
